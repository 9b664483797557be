//! The private folder where demos put what needs a path (FIFOs, sockets, files).
//!
//! A path in a world-writable folder such as `/tmp` can be taken by another user first
//! (a symlink or a FIFO of theirs waiting for us). So the demos use a folder only this
//! user can enter: `$XDG_RUNTIME_DIR/ipc-demos` when the login session provides one,
//! otherwise `/tmp/ipc-demos-UID`, created with mode 0700 and checked to be ours.
//!
//! The check uses `lstat(2)`, which describes a symbolic link itself. `stat(2)` would
//! follow it: another user could plant `/tmp/ipc-demos-0` as a link to a folder of
//! root's that only root may enter, the check would see that folder (root's, mode
//! 0700) and accept it, and the demos would create their FIFOs and sockets inside it.
//! `/tmp` has the sticky bit (see inode(7), "S_ISVTX"), so once the folder found at
//! that name is a real folder of ours, nobody else can rename or replace it.

use std::path::PathBuf;

use nix::sys::stat::Mode;
use nix::unistd::{self, Uid};

use crate::error::{Error, Result};
use crate::owner::{Kind, lstat_ours};

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
    const HINT: &str = "remove it or `chmod 700` it, or set XDG_RUNTIME_DIR";
    // mkdir(2) never follows a symbolic link at the last component: a link there (even
    // one that points nowhere) makes it fail with EEXIST, and lstat below judges it.
    match unistd::mkdir(&dir, Mode::S_IRWXU) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(errno) => return Err(Error::sys(format!("mkdir({}, 0700)", dir.display()), errno)),
    }
    // lstat, not stat: a symbolic link is refused as itself, wherever it points.
    let st = match lstat_ours(&dir, Kind::Dir) {
        Ok(Some(st)) => st,
        Ok(None) => {
            return Err(Error::sys(
                format!("lstat({:?})", dir.display().to_string()),
                nix::errno::Errno::ENOENT,
            )
            .hint("the folder vanished right after mkdir: is something removing it? try again"));
        }
        Err(e) => return Err(e.hint(HINT)),
    };
    if st.st_mode & 0o077 != 0 {
        return Err(Error::bad_data(
            format!("private folder {}", dir.display()),
            "it is not a folder that only you can use",
        )
        .hint(HINT));
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
    fn a_symbolic_link_to_a_private_folder_is_refused_as_itself() {
        // What another user could plant in /tmp: a link, owned by them, to a folder that
        // passes every check when the link is followed (here a scratch folder of ours
        // with mode 0700, standing in for one of root's).
        let target = scratch("link-target");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = scratch("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        if Uid::effective().is_root() {
            // As root, make the link really belong to someone else (nobody).
            std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
        }
        let result = make_private(link.clone());
        std::fs::remove_file(&link).unwrap();
        let left: Vec<_> = std::fs::read_dir(&target).unwrap().collect();
        std::fs::remove_dir(&target).unwrap();
        let err = result.unwrap_err().to_string();
        assert!(err.starts_with("lstat("), "{err}");
        assert!(err.contains("it is a symbolic link, not a folder"), "{err}");
        assert!(err.contains("set XDG_RUNTIME_DIR"), "{err}");
        assert!(left.is_empty());
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
