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
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(run) if !run.is_empty() => PathBuf::from(run).join("ipc-demos"),
        _ => std::env::temp_dir().join(format!("ipc-demos-{}", Uid::current())),
    };
    make_private(dir)
}

/// Creates `dir` with mode 0700 if it is missing, and checks that it is a folder that
/// belongs to us and that nobody else may enter.
fn make_private(dir: PathBuf) -> Result<PathBuf> {
    let uid = Uid::current();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ipc-demos-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&dir);
        dir
    }

    #[test]
    fn a_missing_folder_is_created_with_mode_0700() {
        let dir = scratch("new");
        assert_eq!(make_private(dir.clone()), Ok(dir.clone()));
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_folder_others_can_enter_is_refused_with_a_hint() {
        let dir = scratch("open");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = make_private(dir.clone()).unwrap_err().to_string();
        std::fs::remove_dir(&dir).unwrap();
        assert!(err.contains("not a folder that only you can use"), "{err}");
        assert!(err.contains("chmod 700"), "{err}");
    }

    #[test]
    fn a_file_in_its_place_is_refused() {
        let path = scratch("file");
        std::fs::write(&path, b"").unwrap();
        let result = make_private(path.clone());
        std::fs::remove_file(&path).unwrap();
        assert!(result.is_err());
    }
}
