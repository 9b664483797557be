//! Server and client meet: `socket`, `bind`, `listen` on one side, `socket`, `connect` on
//! the other, and what a server finds at its path when a killed server left its socket
//! file there ([`probe`], [`clean`]).

use std::os::fd::OwnedFd;
use std::path::Path;

use common::cleanup::{self, Guard};
use common::narrate::print_summary;
use common::owner::{Kind, lstat_ours};
use common::sys::{self, Opt};
use common::{Error, HintOn, Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockType, SockaddrIn, UnixAddr};
use nix::sys::stat::Mode;
use nix::unistd;

use crate::{Endpoint, sys as my, unix_addr};

// ANCHOR: listen
/// The server's side: `socket`, `bind` to the endpoint, `listen`. For a Unix socket, a
/// path left by a killed server is replaced, but only if it is a socket of ours and no
/// server answers on it; the returned guard removes the path at the end. For TCP with
/// port 0, the kernel picks a free port, and the returned endpoint says which.
pub fn listen(n: &Narrator, endpoint: &Endpoint) -> Result<(OwnedFd, Endpoint, Option<Guard>)> {
    match endpoint {
        Endpoint::Unix(path) => {
            let fd = sys::socket(n, AddressFamily::Unix, SockType::Stream)?;
            // bind(2) has no mode argument: Linux gives the socket file the mode of the
            // socket's own inode minus the umask (net/unix/af_unix.c, unix_bind_bsd), and
            // a new socket's inode has mode 0777, so the file would be 0755, or 0777 under
            // umask 0: anyone could connect. Changing the socket's mode *before* bind makes
            // the file 0600 from the moment it exists, with no window open to all (as
            // chmod after bind would leave) and nothing process-wide (as umask(2), which
            // every thread shares). This is Linux's behaviour, not POSIX's.
            sys::fchmod(n, &fd, Mode::S_IRUSR | Mode::S_IWUSR)?;
            say!(
                n,
                "the file that bind makes gets the socket's mode: 0600, only I may connect"
            );
            let addr = unix_addr(path)?;
            common::owner::parent_ours_or_root(path)?;
            if let Err(e) = sys::bind(n, &fd, &addr) {
                if e.errno() != Some(Errno::EADDRINUSE) {
                    return Err(e);
                }
                replace_stale(n, path)?;
                sys::bind(n, &fd, &addr)?;
            }
            let guard = cleanup::unlink_on_drop(n, path);
            sys::listen(n, &fd, 16)?;
            let name = path
                .file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default();
            say!(
                n,
                "look: ls -l {path} (type s, mode 0600); ss -xl | grep {name}",
                path = path.display(),
                name
            );
            Ok((fd, endpoint.clone(), Some(guard)))
        }
        Endpoint::Tcp(addr) => {
            let fd = sys::socket(n, AddressFamily::Inet, SockType::Stream)?;
            // SO_REUSEADDR: a server restarted at once may bind its port again, even while
            // the old connections linger in TIME_WAIT (socket(7)).
            sys::setsockopt(n, &fd, Opt::ReuseAddr)?;
            sys::bind(n, &fd, &SockaddrIn::from(*addr))
                .hint_on(Errno::EADDRINUSE, tr!("another program listens on this port: choose another, or port 0 for any free one"))
                .hint_on(Errno::EADDRNOTAVAIL, tr!("this machine has no such address"))?;
            sys::listen(n, &fd, 16)?;
            let bound = my::getsockname(n, &fd)?;
            say!(n, "look: ss -tln | grep {port}", port = bound.port());
            Ok((fd, Endpoint::Tcp(bound), None))
        }
    }
}
// ANCHOR_END: listen

/// `bind` found something at `path`: replace it if it is a killed server's leftover.
fn replace_stale(n: &Narrator, path: &Path) -> Result<()> {
    let stale = Stale {
        found: tr!(
            "nobody answers: a stale socket file, left by a server that was killed; replacing it"
        ),
        not_ours: tr!(
            "bind(2) found this at the path; only a socket of yours on which no server answers is replaced, anything else is left alone: remove it yourself if it is yours, or use another --unix path"
        ),
    };
    let alive = || {
        Error::sys(format!("bind({:?})", path.display()), Errno::EADDRINUSE).hint(tr!(
            "a server is running on this path already; stop it, or use another --unix path"
        ))
    };
    remove_stale(n, path, &stale, alive).map(drop)
}

/// What [`remove_stale`] says: when it removes a stale socket, and when what it found
/// is not a socket of ours.
struct Stale {
    found: String,
    not_ours: String,
}

/// Removes the socket file at `path` if, and only if, it is what a killed server leaves:
/// a socket (`lstat`, which does not follow a link), owned by this user, on which no
/// server answers. A regular file, a symbolic link, another user's socket give an error
/// with `stale.not_ours` as its hint; a live server's socket gives `alive()`. Returns
/// whether there was anything to remove.
fn remove_stale(
    n: &Narrator,
    path: &Path,
    stale: &Stale,
    alive: impl FnOnce() -> Error,
) -> Result<bool> {
    let not_ours = |e: Error| e.hint(stale.not_ours.clone());
    let Some(judged) = lstat_ours(path, Kind::Socket).map_err(not_ours)? else {
        return Ok(false);
    };
    if probe(n, path)? {
        return Err(alive());
    }
    n.say(&stale.found);
    // unlink(2) has no "only if it is still the file I judged" form, so look once more
    // that the name still leads to the same socket. Between this look and the unlink,
    // only someone allowed to rename in the folder could swap it: nobody else in the
    // private folder (0700), nor in a sticky one such as /tmp (inode(7), S_ISVTX).
    let now = lstat_ours(path, Kind::Socket).map_err(not_ours)?;
    if now.map(|st| (st.st_dev, st.st_ino)) != Some((judged.st_dev, judged.st_ino)) {
        return Err(Error::bad_data(
            format!("lstat({:?})", path.display()),
            tr!("the socket file changed while I checked it"),
        )
        .hint(tr!(
            "another program is using this path right now; try again, or use another --unix path"
        )));
    }
    sys::unlink(n, path)?;
    Ok(true)
}

/// The beginning of the abstract name a [`probe`] binds to, so that a live server can
/// tell the probe from a client.
pub(crate) const PROBE_NAME: &str = "ipc-demos-probe-";

/// Is a server listening on the socket at `path`? A `connect` that succeeds means yes;
/// ECONNREFUSED means the file is there but nobody listens (a killed server's leftover).
///
/// The probe's own socket is bound first to an abstract name, `@ipc-demos-probe-PID`
/// (unix(7), "Abstract sockets": a name with no file, gone when the socket closes). A
/// socket-demo server that accepts it asks who connected (`getpeername`), sees that
/// name, and closes it without counting it as a client.
pub fn probe(n: &Narrator, path: &Path) -> Result<bool> {
    let name = format!("{PROBE_NAME}{}", unistd::getpid());
    let me = UnixAddr::new_abstract(name.as_bytes())
        .map_err(|e| Error::sys(format!("sockaddr_un for @{name}"), e))?;
    say!(
        n,
        "is a server there? I connect from an abstract name, @{name}, so that a live server sees it is only a probe",
        name
    );
    let probe = sys::socket(n, AddressFamily::Unix, SockType::Stream)?;
    sys::bind(n, &probe, &me)?;
    match sys::connect(n, &probe, &unix_addr(path)?) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(Errno::ECONNREFUSED) => Ok(false),
        Err(e) => Err(e.hint(tr!(
            "could not tell whether a server listens on this socket"
        ))),
    }
}

// ANCHOR: connect
/// The client's side: `socket` and `connect` to the endpoint.
pub fn connect(n: &Narrator, endpoint: &Endpoint) -> Result<OwnedFd> {
    let connected = match endpoint {
        Endpoint::Unix(path) => {
            let fd = sys::socket(n, AddressFamily::Unix, SockType::Stream)?;
            sys::connect(n, &fd, &unix_addr(path)?).map(|()| fd)
        }
        Endpoint::Tcp(addr) => {
            let fd = sys::socket(n, AddressFamily::Inet, SockType::Stream)?;
            sys::connect(n, &fd, &SockaddrIn::from(*addr)).map(|()| fd)
        }
    };
    connected
        .hint_on(
            Errno::ENOENT,
            tr!("no socket at this path: start the server first (with the same --unix)"),
        )
        .hint_on(
            Errno::ECONNREFUSED,
            tr!("nobody listens there: is the server running, on this address and port?"),
        )
}
// ANCHOR_END: connect

/// `clean`: removes the socket file a killed server left at `path`. Only a socket of
/// this user's on which no server answers: a live server's socket is how its clients
/// find it, and anything else at the path is somebody else's. What it refuses, it names.
pub fn clean(n: &Narrator, path: &Path) -> Result<()> {
    let stale = Stale {
        found: tr!(
            "nobody answers: a stale socket file, left by a server that was killed; removing it"
        ),
        not_ours: tr!(
            "it is not ours to remove: clean removes only a socket of yours that no server answers on"
        ),
    };
    let alive = || {
        Error::bad_data(
            format!("clean {:?}", path.display()),
            tr!("a server answers on this socket (connect succeeded): it is alive, and its socket is how clients find it"),
        )
        .hint(tr!("stop that server (Ctrl-C) and it removes its socket itself; clean is for what a killed server left"))
    };
    let removed = remove_stale(n, path, &stale, alive)?;
    if !removed {
        say!(n, "nothing at {path}", path = path.display());
    }
    print_summary(format_args!("summary: removed={}", u8::from(removed)))
}
