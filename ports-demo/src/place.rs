//! The one name in the file system each rebuilt system has: the bootstrap server's path
//! (Mach) and the connection port's path (ALPC). Both are `SOCK_SEQPACKET` Unix sockets:
//! connection-oriented like a stream, but each `sendmsg` arrives as one message, with its
//! boundaries, as a Mach or ALPC message does (unix(7)).
//!
//! What this module guarantees about the path:
//! - it is created with mode 0600 (`umask(0177)` around `bind`, which takes no mode);
//! - a path that is already there is replaced only if it is a socket of ours
//!   (`common::owner::lstat_ours`) and nobody answers on it (`connect` fails with
//!   ECONNREFUSED: a killed server left it); a live server's socket is never removed;
//! - at the end (or on Ctrl-C) the path is removed only if it is still the socket this
//!   process bound (same inode), never a successor's.
//!
//! See also: unix(7), bind(2), umask(2), lstat(2).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use common::cleanup::Guard;
use common::owner::{self, Kind};
use common::{Error, HintOn, Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockType, UnixAddr};
use nix::sys::stat::Mode;

use crate::sys as my;

fn address(path: &Path) -> Result<UnixAddr> {
    UnixAddr::new(path).map_err(|errno| {
        Error::sys(
            format!("sockaddr_un {{{:?}}}", path.display().to_string()),
            errno,
        )
        .hint(tr!(
            "a Unix socket path must be shorter than 108 bytes: choose a shorter path"
        ))
    })
}

// ANCHOR: listen
/// `socket`, `bind` (mode 0600), `listen`: a well-known name other processes can find.
/// Returns the listening socket and the guard that removes the path at the end.
pub fn listen(n: &Narrator, path: &Path, what: &str) -> Result<(OwnedFd, Guard)> {
    let addr = address(path)?;
    let fd = sys::socket(n, AddressFamily::Unix, SockType::SeqPacket)?;
    // bind() creates the path with 0777 minus the umask: mask everything but the owner.
    let old = my::umask(n, Mode::from_bits_truncate(0o177))?;
    let bound = match sys::bind(n, &fd, &addr) {
        Err(e) if e.errno() == Some(Errno::EADDRINUSE) => {
            replace_stale(n, path, what).and_then(|()| sys::bind(n, &fd, &addr))
        }
        other => other,
    };
    my::umask(n, old)?;
    bound?;
    let guard = remove_on_drop(n, path)?;
    sys::listen(n, &fd, 16)?;
    say!(
        n,
        "look: ls -l {path} (type s, mode 0600); ss -xl | grep {path}",
        path = path.display()
    );
    Ok((fd, guard))
}
// ANCHOR_END: listen

/// Something is at `path`. Replace it only if it is our socket and no server answers.
fn replace_stale(n: &Narrator, path: &Path, what: &str) -> Result<()> {
    owner::lstat_ours(path, Kind::Socket)?;
    let probe = sys::socket(n, AddressFamily::Unix, SockType::SeqPacket)?;
    match sys::connect(n, &probe, &address(path)?) {
        Ok(()) => Err(Error::sys(
            format!("bind({:?})", path.display().to_string()),
            Errno::EADDRINUSE,
        )
        .hint(tr!(
            "a {what} is running on this path already: stop it, or give another path",
            what
        ))),
        Err(e) if e.errno() == Some(Errno::ECONNREFUSED) => {
            say!(
                n,
                "nobody answers there: a socket left by a {what} that was killed; replacing it",
                what
            );
            sys::unlink(n, path)
        }
        Err(e) => Err(e),
    }
}

/// A guard that removes `path` if it is still the socket this process bound.
fn remove_on_drop(n: &Narrator, path: &Path) -> Result<Guard> {
    let ours = owner::lstat_ours(path, Kind::Socket)?.ok_or_else(|| {
        Error::sys(
            format!("lstat({:?})", path.display().to_string()),
            Errno::ENOENT,
        )
    })?;
    let (n, path): (Narrator, PathBuf) = (n.clone(), path.to_path_buf());
    Ok(Guard::new(move || {
        // Another server may have replaced the path after ours was removed by hand; its
        // socket is not ours to remove.
        match owner::lstat_ours(&path, Kind::Socket) {
            Ok(Some(st)) if st.st_ino == ours.st_ino && st.st_dev == ours.st_dev => {
                let _ = sys::unlink(&n, &path);
            }
            _ => say!(
                n,
                "{path} is no longer the socket I made: I leave it",
                path = path.display()
            ),
        }
    }))
}

/// `accept4` of the next client, or `None` if that client gave up between its `connect`
/// and this call (ECONNABORTED) or a signal came: a server goes on serving the others.
pub fn accept(n: &Narrator, listener: &OwnedFd) -> Result<Option<OwnedFd>> {
    match sys::accept(n, listener) {
        Ok(fd) => Ok(Some(fd)),
        Err(e)
            if matches!(
                e.errno(),
                Some(Errno::ECONNABORTED | Errno::EINTR | Errno::EAGAIN)
            ) =>
        {
            say!(n, "that client is gone already: {e}", e);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `socket` and `connect` to a server's well-known path.
pub fn connect(n: &Narrator, path: &Path, what: &str) -> Result<OwnedFd> {
    let fd = sys::socket(n, AddressFamily::Unix, SockType::SeqPacket)?;
    sys::connect(n, &fd, &address(path)?)
        .hint_on(
            Errno::ENOENT,
            tr!(
                "no {what} at this path: start it first, with the same path",
                what
            ),
        )
        .hint_on(
            Errno::ECONNREFUSED,
            tr!(
                "the {what} that made this path has ended: start it again",
                what
            ),
        )?;
    Ok(fd)
}

/// The `clean` subcommand's work for one path: removes the socket a killed server left at
/// `path`, only if it is a socket of ours and nobody answers on it. Returns whether it
/// removed something.
pub fn clean(n: &Narrator, path: &Path, what: &str) -> Result<bool> {
    match owner::lstat_ours(path, Kind::Socket)? {
        None => {
            say!(n, "nothing at {path}", path = path.display());
            Ok(false)
        }
        Some(_) => replace_stale(n, path, what).map(|()| true),
    }
}
