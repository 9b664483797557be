//! The private folder where demos put what needs a path (FIFOs, sockets, files).
//!
//! A path in a world-writable folder such as `/tmp` can be taken by another user first
//! (a symlink or a FIFO of theirs waiting for us). So the demos use a folder only this
//! user can enter: `$XDG_RUNTIME_DIR/ipc-demos` when the login session provides one,
//! otherwise `/tmp/ipc-demos-UID`, created with mode 0700 and checked to be ours.

use std::path::PathBuf;

use nix::sys::stat::{Mode, stat};
use nix::unistd::{self, Uid};

use crate::error::{Context, Error, Result};

/// The folder, created if missing. It is left in place (like `$XDG_RUNTIME_DIR` itself);
/// the demos remove what they put in it.
pub fn private_dir() -> Result<PathBuf> {
    let uid = Uid::current();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(run) if !run.is_empty() => PathBuf::from(run).join("ipc-demos"),
        _ => std::env::temp_dir().join(format!("ipc-demos-{uid}")),
    };
    match unistd::mkdir(&dir, Mode::S_IRWXU) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(errno) => return Err(Error::sys(format!("mkdir({}, 0700)", dir.display()), errno)),
    }
    let st = stat(&dir).context(format!("stat({})", dir.display()))?;
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if !is_dir || st.st_uid != uid.as_raw() || st.st_mode & 0o077 != 0 {
        return Err(Error::bad_data(
            format!("private folder {}", dir.display()),
            "it is not a folder that only you can use",
        )
        .hint("remove it or `chmod 700` it, or set XDG_RUNTIME_DIR"));
    }
    Ok(dir)
}
