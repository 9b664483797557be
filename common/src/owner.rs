//! Whose is it? The checks a demo makes before it writes into, replaces or removes a path
//! or a descriptor's object.
//!
//! A name in the file system (a FIFO, a socket, a file) or in `/dev/shm` may belong to
//! somebody else: another user who got there first, a symbolic link planted to send us
//! into a file of theirs or of root's, or simply an unrelated file of the same name. So
//! before a demo touches an object it did not just create with `O_EXCL`, it asks the
//! kernel what the object is and who owns it, and refuses anything that is not of the
//! type the demo makes and owned by the user running it:
//!
//! - [`lstat_ours`]: `lstat(2)`, which describes a symbolic link itself instead of
//!   following it (a link is never ours to follow);
//! - [`fstat_ours`]: `fstat(2)` on a descriptor already open (after `shm_open`, or an
//!   `open` with `O_NOFOLLOW`), so that nothing can be swapped between the check and
//!   the use.
//!
//! A refusal is an [`Error`] naming the call, what was found, and what to do about it.
//! See inode(7) for the type bits and the owner, and TLPI 15.1 ("Retrieving File
//! Information: stat()").

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::{FileStat, fstat, lstat};
use nix::unistd::Uid;

use crate::error::{Error, Result};

/// The type of object a demo creates at a path or behind a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A named pipe, made by `mkfifo(3)`.
    Fifo,
    /// A Unix domain socket's path, made by `bind(2)`.
    Socket,
    /// A regular file (also what `shm_open(3)` gives: a file in `/dev/shm`).
    File,
    /// A folder.
    Dir,
}

impl Kind {
    /// The `S_IF*` type bits of this kind (inode(7)).
    fn bits(self) -> libc::mode_t {
        match self {
            Kind::Fifo => libc::S_IFIFO,
            Kind::Socket => libc::S_IFSOCK,
            Kind::File => libc::S_IFREG,
            Kind::Dir => libc::S_IFDIR,
        }
    }

    /// The kind as a reader says it: "a FIFO", "a socket", ...
    pub fn name(self) -> &'static str {
        match self {
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::File => "a regular file",
            Kind::Dir => "a folder",
        }
    }
}

/// What the type bits of `mode` say the object is, in words.
pub fn describe(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a folder",
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        _ => "an object of unknown type",
    }
}

/// What the type bits of `mode` say the object is, in the chosen language, for a
/// sentence ([`describe`] is the English word a system-call line shows).
pub fn said(mode: libc::mode_t) -> String {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => crate::tr!("a FIFO"),
        libc::S_IFSOCK => crate::tr!("a socket"),
        libc::S_IFREG => crate::tr!("a regular file"),
        libc::S_IFDIR => crate::tr!("a folder"),
        libc::S_IFLNK => crate::tr!("a symbolic link"),
        libc::S_IFCHR => crate::tr!("a character device"),
        libc::S_IFBLK => crate::tr!("a block device"),
        _ => crate::tr!("an object of unknown type"),
    }
}

/// Checks a status against the kind the demo makes and the user running it. `call` names
/// the call that produced the status, for the error.
pub fn check(st: &FileStat, kind: Kind, call: &str) -> Result<()> {
    let found = st.st_mode & libc::S_IFMT;
    if found != kind.bits() {
        let hint = if found == libc::S_IFLNK {
            crate::tr!(
                "a symbolic link is never followed: someone may have planted it to send the demo into a file of theirs or of yours; remove it yourself if it is yours, or use another --name/--path"
            )
        } else {
            crate::tr!(
                "the demo only touches {kind} it made; that object is someone else's: use another --name/--path",
                kind = said(kind.bits())
            )
        };
        return Err(Error::bad_data(
            call,
            crate::tr!(
                "it is {found}, not {kind}",
                found = said(st.st_mode),
                kind = said(kind.bits())
            ),
        )
        .hint(hint));
    }
    let me = Uid::effective().as_raw();
    if st.st_uid != me {
        return Err(Error::bad_data(
            call,
            crate::tr!(
                "it belongs to uid {owner}, not to you (uid {me})",
                owner = st.st_uid,
                me
            ),
        )
        .hint(crate::tr!(
            "another user made it: the demo never uses or removes another user's object; choose another --name/--path"
        )));
    }
    Ok(())
}

/// `stat(2)` on the folder `path` would be made in, following links, since that is where
/// the object would land: it must be a folder of this user's or of root's (a shared one
/// such as `/tmp`). `O_EXCL`, `O_NOFOLLOW` and `bind`'s EADDRINUSE guard only the last
/// part of a path; a link earlier in it (`/tmp/x/link/file`, `link` planted by another
/// user) could lead the demo to make, and later remove, an object in another user's
/// folder. That is refused here, before anything is made.
pub fn parent_ours_or_root(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let call = format!("stat({:?})", parent.display().to_string());
    let st = nix::sys::stat::stat(parent).map_err(|errno| Error::sys(call.clone(), errno))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(Error::bad_data(
            call,
            crate::tr!(
                "it is {found}, not {kind}",
                found = said(st.st_mode),
                kind = said(libc::S_IFDIR)
            ),
        ));
    }
    let me = Uid::effective().as_raw();
    if st.st_uid != me && st.st_uid != 0 {
        return Err(Error::bad_data(
            call,
            crate::tr!(
                "the folder belongs to uid {owner}, neither to you (uid {me}) nor to root",
                owner = st.st_uid,
                me
            ),
        )
        .hint(crate::tr!(
            "the demo makes its objects only in a folder of yours, or in a shared one of root's such as /tmp; a link in the path may lead into another user's folder: give a path in a folder of yours"
        )));
    }
    Ok(())
}

/// `lstat(2)` on `path` and [`check`] it: `Ok(None)` if nothing is there, `Ok(Some(st))`
/// if it is `kind` and ours, an error otherwise (a symbolic link included).
pub fn lstat_ours(path: &Path, kind: Kind) -> Result<Option<FileStat>> {
    let call = format!("lstat({:?})", path.display().to_string());
    match lstat(path) {
        Err(Errno::ENOENT) => Ok(None),
        Err(errno) => Err(Error::sys(call, errno)),
        Ok(st) => check(&st, kind, &call).map(|()| Some(st)),
    }
}

/// Where `shm_open(3)` keeps the object `name` on Linux: `/dev/shm/NAME` (a tmpfs). A
/// demo that only looks at an object `lstat`s this path before it opens the name, so
/// that a FIFO planted there by another user neither blocks the `open` nor wakes a
/// writer waiting on it.
pub fn shm_path(name: &str) -> std::path::PathBuf {
    Path::new("/dev/shm").join(name.trim_start_matches('/'))
}

/// `fstat(2)` on an open descriptor and [`check`] it.
pub fn fstat_ours(fd: impl AsFd, kind: Kind) -> Result<FileStat> {
    let raw = fd.as_fd().as_raw_fd();
    let call = format!("fstat({raw})");
    let st = fstat(fd.as_fd()).map_err(|errno| Error::sys(call.clone(), errno))?;
    check(&st, kind, &call)?;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("ipc-demos-owner-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn a_missing_path_is_none_and_our_file_is_accepted() {
        let p = scratch("file");
        assert_eq!(lstat_ours(&p, Kind::File).map(|s| s.is_some()), Ok(false));
        std::fs::write(&p, b"x").unwrap();
        let found = lstat_ours(&p, Kind::File).map(|s| s.is_some());
        let as_fifo = lstat_ours(&p, Kind::Fifo).unwrap_err().to_string();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(found, Ok(true));
        assert!(
            as_fifo.contains("it is a regular file, not a FIFO"),
            "{as_fifo}"
        );
    }

    #[test]
    fn a_symbolic_link_is_refused_as_itself() {
        let p = scratch("link");
        std::os::unix::fs::symlink("/", &p).unwrap();
        let err = lstat_ours(&p, Kind::Dir).unwrap_err().to_string();
        std::fs::remove_file(&p).unwrap();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn an_open_descriptor_is_checked_by_fstat() {
        let p = scratch("fd");
        let f = std::fs::File::create(&p).unwrap();
        let ok = fstat_ours(&f, Kind::File).is_ok();
        let err = fstat_ours(&f, Kind::Socket).unwrap_err().to_string();
        std::fs::remove_file(&p).unwrap();
        assert!(ok);
        assert!(err.starts_with("fstat("), "{err}");
    }
}
