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
//!   process bound (same inode), never a successor's;
//! - `clean` removes only such a stale socket of ours, and names everything it leaves;
//! - a client that connects to it gives up on a server that does not answer within its
//!   time-out (`SO_RCVTIMEO`), instead of waiting as long as a silent server lives.
//!
//! See also: unix(7), bind(2), umask(2), lstat(2), socket(7) (SO_RCVTIMEO).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cleanup::Guard;
use common::narrate::print_summary;
use common::owner::{self, Kind};
use common::{Error, HintOn, Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockType, UnixAddr};
use nix::sys::stat::{FileStat, Mode};

use crate::sys as my;

/// Which of the two servers a path belongs to: how a sentence names it, and the option
/// that chooses its path, so that every hint names an option ports-demo really has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// Mach's name server, at `--bootstrap PATH`.
    Bootstrap,
    /// ALPC's connection port, at `--port PATH`.
    Alpc,
}

impl Server {
    /// The server in words, in the chosen language: "bootstrap server".
    pub fn what(self) -> String {
        match self {
            Server::Bootstrap => tr!("bootstrap server"),
            Server::Alpc => tr!("ALPC server"),
        }
    }

    /// The command-line option that chooses this server's path.
    pub fn option(self) -> &'static str {
        match self {
            Server::Bootstrap => "--bootstrap",
            Server::Alpc => "--port",
        }
    }
}

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
pub fn listen(n: &Narrator, path: &Path, server: Server) -> Result<(OwnedFd, Guard)> {
    let addr = address(path)?;
    common::owner::parent_ours_or_root(path)?;
    let fd = sys::socket(n, AddressFamily::Unix, SockType::SeqPacket)?;
    // bind() creates the path with 0777 minus the umask: mask everything but the owner.
    let old = my::umask(n, Mode::from_bits_truncate(0o177))?;
    let bound = match sys::bind(n, &fd, &addr) {
        Err(e) if e.errno() == Some(Errno::EADDRINUSE) => {
            replace_stale(n, path, server).and_then(|()| sys::bind(n, &fd, &addr))
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

/// `lstat` of `path`, accepting only a socket of this user's (or nothing). Anything else
/// (a file, a symbolic link, another user's socket) is refused with `common::owner`'s
/// reason, and a hint that names the option choosing this path: `owner`'s own hint names
/// the options of the other demos.
fn lstat_socket(path: &Path, server: Server) -> Result<Option<FileStat>> {
    owner::lstat_ours(path, Kind::Socket).map_err(|e| match e.errno() {
        // The kernel refused the lstat itself; its errno says why, and the error stays.
        Some(_) => e,
        None => e.hint(tr!(
            "ports-demo uses and removes only sockets of yours, and never follows a symbolic link: if that is yours, remove it yourself; or give ports-demo another path with {option} PATH",
            option = server.option()
        )),
    })
}

/// Whether a server answers at `path`: `connect` works (a live server) or fails with
/// ECONNREFUSED (nobody listens: a socket left by a server that was killed).
fn answers(n: &Narrator, path: &Path) -> Result<bool> {
    let probe = sys::socket(n, AddressFamily::Unix, SockType::SeqPacket)?;
    match sys::connect(n, &probe, &address(path)?) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(Errno::ECONNREFUSED) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Something is at `path`. Replace it only if it is our socket and no server answers.
fn replace_stale(n: &Narrator, path: &Path, server: Server) -> Result<()> {
    lstat_socket(path, server)?;
    let what = server.what();
    if answers(n, path)? {
        return Err(Error::sys(
            format!("bind({:?})", path.display().to_string()),
            Errno::EADDRINUSE,
        )
        .hint(tr!(
            "a {what} is running on this path already: stop it, or give another path with {option} PATH",
            what,
            option = server.option()
        )));
    }
    say!(
        n,
        "nobody answers there: a socket left by a {what} that was killed; replacing it",
        what
    );
    sys::unlink(n, path)
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

/// `socket` and `connect` to a server's well-known path; then, given a `patience`,
/// `SO_RCVTIMEO`: a receive on the connection that waits longer fails with EAGAIN, so
/// that a server that is running but never answers cannot keep its client waiting
/// forever (`None`: wait as long as the server lives, for `--timeout 0`).
pub fn connect(
    n: &Narrator,
    path: &Path,
    server: Server,
    patience: Option<Duration>,
) -> Result<OwnedFd> {
    let what = server.what();
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
    if let Some(patience) = patience {
        sys::setsockopt(n, &fd, sys::Opt::RcvTimeo(patience))?;
    }
    Ok(fd)
}

/// The hint for a receive from `server` that gave up: EAGAIN is the time-out [`connect`]
/// set; any other error passes through as it is.
pub fn no_answer(e: Error, server: Server, patience: Option<Duration>) -> Error {
    match (e.errno(), patience) {
        (Some(Errno::EAGAIN), Some(patience)) => e.hint(tr!(
            "no answer from the {what} within {seconds} s (SO_RCVTIMEO): it is running but stuck, or paused (Ctrl-Z, --step); --timeout SECONDS waits longer, --timeout 0 forever",
            what = server.what(),
            seconds = patience.as_secs_f64()
        )),
        _ => e,
    }
}

/// What [`clean`] did with one path.
#[derive(Debug)]
enum Cleaned {
    /// A socket of ours that nobody answers on: removed.
    Removed,
    /// Nothing was there.
    Absent,
    /// Something is there that is not ours to remove; the error says what and why.
    Refused(Error),
}

/// One path of [`clean`]: removes the socket a killed server left there, only if it is a
/// socket of ours and nobody answers on it.
fn clean_one(n: &Narrator, path: &Path, server: Server) -> Cleaned {
    let shown = path.display();
    let found = lstat_socket(path, server).and_then(|st| match st {
        None => Ok(None),
        Some(_) => answers(n, path).map(Some),
    });
    match found {
        Err(e) => Cleaned::Refused(e),
        Ok(None) => {
            say!(n, "nothing at {path}", path = shown);
            Cleaned::Absent
        }
        Ok(Some(true)) => Cleaned::Refused(
            Error::bad_data(
                tr!("remove {path}", path = shown),
                tr!(
                    "a {what} answers there: clean never removes a running server's socket",
                    what = server.what()
                ),
            )
            .hint(tr!(
                "stop that server (Ctrl-C removes its socket), or leave it; another class can use another path with {option} PATH",
                option = server.option()
            )),
        ),
        Ok(Some(false)) => {
            say!(
                n,
                "nobody answers there: a socket left by a {what} that was killed; removing it",
                what = server.what()
            );
            match sys::unlink(n, path) {
                Ok(()) => Cleaned::Removed,
                Err(e) => Cleaned::Refused(e),
            }
        }
    }
}

/// The `clean` subcommand: looks at every path in `candidates` (each with the server it
/// belongs to), removes each socket a killed server left behind, and leaves alone, one
/// line each on standard error, whatever is not its own or still answers. Prints
/// `summary: removed=N`; fails (exit 1) if it left anything alone, so that a script
/// notices.
pub fn clean(n: &Narrator, candidates: &[(PathBuf, Server)]) -> Result<()> {
    let (mut removed, mut refused) = (0u32, 0u32);
    for (path, server) in candidates {
        match clean_one(n, path, *server) {
            Cleaned::Removed => removed += 1,
            Cleaned::Absent => {}
            Cleaned::Refused(why) => {
                refused += 1;
                // On standard error, where the program's own error goes, one line each.
                // Not eprintln!, which panics when standard error is a closed pipe.
                let _ = writeln!(
                    std::io::stderr(),
                    "ports-demo: {}",
                    tr!("refused: {why}", why)
                );
            }
        }
    }
    print_summary(format_args!("summary: removed={removed}"))?;
    if refused == 0 {
        return Ok(());
    }
    Err(Error::bad_data(
        tr!("clean"),
        tr!(
            "{refused} of {total} paths were left alone; each is named above",
            refused,
            total = candidates.len()
        ),
    )
    .hint(tr!(
        "clean removes only sockets of yours that no server answers on; choose the paths with --bootstrap PATH and --port PATH"
    )))
}
