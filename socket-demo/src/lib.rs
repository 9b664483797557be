//! socket-demo: sockets, the one mechanism of the notes that crosses machines.
//!
//! Follows `000_5e93fa56600d397d.txt`, "6. 소켓 (Socket)"; `001_ffa78007200462ad.txt`,
//! "(5) Socket"; the port table of `003_5ebb38e0b36eb300.txt`, "IPC 포트 vs 네트워크 포트
//! 개념 정리"; and, for `pass-fd` and `section`, "3.7.2 Mach 메시지 전달" and
//! "3.7.3 Windows" of the same note.
//!
//! A socket is an endpoint the kernel connects to another endpoint: in the same machine
//! (a Unix domain socket, named by a path) or anywhere on a network (TCP, named by an IP
//! address and a port). A server `bind`s to a name and `listen`s; a client `connect`s;
//! each connection is a full-duplex byte stream.
//!
//! - [`listen`], [`connect`], [`serve`], [`client`]: a server that answers every message
//!   of several clients at once, over Unix or TCP;
//! - [`no_framing`]: what a byte stream does to message boundaries;
//! - [`dgram`]: Unix datagram sockets, which keep boundaries, and their size limit;
//! - [`pass_fd`]: sending an open file descriptor (SCM_RIGHTS), and SO_PEERCRED;
//! - [`section`]: Windows ALPC's idea on Linux: small messages copied, large ones in
//!   shared memory whose descriptor was passed once;
//! - [`serve_raw`], [`client_raw`]: plain bytes, for socat or Python peers.
//!
//! Usage: `cargo run -p socket-demo -- --help`. See also: socket(7), unix(7), tcp(7),
//! cmsg(3), memfd_create(2), and TLPI chapters 56 to 61.

use std::io::{BufRead, IoSlice, IoSliceMut};
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use common::cleanup::{self, Guard};
use common::message::{self, Frame};
use common::narrate::{Shown, print_summary};
use common::owner::{Kind, lstat_ours};
use common::process::{self, Fork};
use common::stream::{self, FdStream, NARRATED_MESSAGES};
use common::tally::Tally;
use common::{Context, Error, Narrator, Result};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, SockaddrIn, SockaddrStorage, UnixAddr, sockopt,
};
use nix::sys::stat::{Mode, fchmod};
use nix::sys::time::TimeVal;
use nix::unistd;

/// The largest frame payload a server accepts from a client unless told otherwise.
pub const DEFAULT_MAX: usize = 16 << 20;
/// Messages of at most this many bytes go through the socket in `section`; larger ones
/// through the shared section, as in ALPC (note 003, 3.7.3).
pub const INLINE_LIMIT: usize = 256;

/// Where a server listens and a client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix domain stream socket, named by a path in the file system.
    Unix(PathBuf),
    /// A TCP socket: an IPv4 address and a port.
    Tcp(SocketAddrV4),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

/// A descriptor returned by `socket`, `accept`, ... shown as its number.
struct Fd(OwnedFd);

impl Shown for Fd {
    fn shown(&self) -> String {
        self.0.as_raw_fd().to_string()
    }
}

fn own(raw: RawFd) -> Fd {
    // SAFETY: `raw` was just returned by a successful socket(2) or accept(2): a new
    // descriptor that nothing else owns.
    Fd(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn new_socket(n: &Narrator, family: AddressFamily, kind: SockType) -> Result<OwnedFd> {
    let (family_name, kind_name) = (format!("{family:?}"), format!("{kind:?}"));
    n.call(
        format_args!(
            "socket(AF_{}, SOCK_{}|SOCK_CLOEXEC, 0)",
            family_name.to_uppercase(),
            kind_name.to_uppercase()
        ),
        || socket::socket(family, kind, SockFlag::SOCK_CLOEXEC, None).map(Fd),
    )
    .map(|fd| fd.0)
}

// ANCHOR: listen
/// The server's side: `socket`, `bind` to the endpoint, `listen`. For a Unix socket, a
/// path left by a killed server is replaced, but only if it is a socket of ours and no
/// server answers on it; the returned guard removes the path at the end. For TCP with
/// port 0, the kernel picks a free port, and the returned endpoint says which.
pub fn listen(n: &Narrator, endpoint: &Endpoint) -> Result<(OwnedFd, Endpoint, Option<Guard>)> {
    match endpoint {
        Endpoint::Unix(path) => {
            let fd = new_socket(n, AddressFamily::Unix, SockType::Stream)?;
            // bind(2) has no mode argument: Linux gives the socket file the mode of the
            // socket's own inode minus the umask (net/unix/af_unix.c, unix_bind_bsd), and
            // a new socket's inode has mode 0777, so the file would be 0755, or 0777 under
            // umask 0: anyone could connect. Changing the socket's mode *before* bind makes
            // the file 0600 from the moment it exists, with no window open to all (as
            // chmod after bind would leave) and nothing process-wide (as umask(2), which
            // every thread shares). This is Linux's behaviour, not POSIX's.
            n.call(
                format_args!(
                    "fchmod({}, 0600)   (the file bind makes gets this mode)",
                    fd.as_raw_fd()
                ),
                || fchmod(&fd, Mode::S_IRUSR | Mode::S_IWUSR),
            )?;
            let addr = UnixAddr::new(path)
                .map_err(|e| Error::sys(format!("sockaddr_un for {}", path.display()), e))?;
            let shown = path.display();
            match n.call(
                format_args!("bind({}, {{AF_UNIX, {shown:?}}})", fd.as_raw_fd()),
                || socket::bind(fd.as_raw_fd(), &addr),
            ) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(Errno::EADDRINUSE) => {
                    replace_stale(n, path)?;
                    n.call(
                        format_args!("bind({}, {{AF_UNIX, {shown:?}}})", fd.as_raw_fd()),
                        || socket::bind(fd.as_raw_fd(), &addr),
                    )?;
                }
                Err(e) => return Err(e),
            }
            let guard = cleanup::unlink_on_drop(n, path);
            n.call(format_args!("listen({}, 16)", fd.as_raw_fd()), || {
                socket::listen(&fd, Backlog::new(16).unwrap_or(Backlog::MAXCONN))
            })?;
            n.say(format_args!(
                "look: ls -l {shown} (type s, mode 0600); ss -xl | grep {}",
                path.file_name()
                    .map(|f| f.to_string_lossy())
                    .unwrap_or_default()
            ));
            Ok((fd, endpoint.clone(), Some(guard)))
        }
        Endpoint::Tcp(addr) => {
            let fd = new_socket(n, AddressFamily::Inet, SockType::Stream)?;
            // SO_REUSEADDR: a server restarted at once may bind its port again, even while
            // the old connections linger in TIME_WAIT.
            n.call(
                format_args!(
                    "setsockopt({}, SOL_SOCKET, SO_REUSEADDR, 1)",
                    fd.as_raw_fd()
                ),
                || socket::setsockopt(&fd, sockopt::ReuseAddr, &true),
            )?;
            let sin = SockaddrIn::from(*addr);
            n.call(format_args!("bind({}, {{AF_INET, {addr}}})", fd.as_raw_fd()), || socket::bind(fd.as_raw_fd(), &sin))
                .map_err(|e| match e.errno() {
                    Some(Errno::EADDRINUSE) => e.hint("another program listens on this port: choose another, or port 0 for any free one"),
                    Some(Errno::EADDRNOTAVAIL) => e.hint("this machine has no such address"),
                    _ => e,
                })?;
            n.call(format_args!("listen({}, 16)", fd.as_raw_fd()), || {
                socket::listen(&fd, Backlog::new(16).unwrap_or(Backlog::MAXCONN))
            })?;
            let bound: SockaddrIn =
                socket::getsockname(fd.as_raw_fd()).map_err(|e| Error::sys("getsockname", e))?;
            let actual = SocketAddrV4::new(bound.ip(), bound.port());
            n.say(format_args!("look: ss -tln | grep {}", actual.port()));
            Ok((fd, Endpoint::Tcp(actual), None))
        }
    }
}
// ANCHOR_END: listen

/// `bind` found something at `path`: replace it if it is a killed server's leftover.
fn replace_stale(n: &Narrator, path: &Path) -> Result<()> {
    remove_stale(
        n,
        path,
        "replacing it",
        "bind(2) found this at the path; only a socket of yours on which no server answers is replaced, anything else is left alone: remove it yourself if it is yours, or use another --unix path",
        || {
            Error::sys(format!("bind({:?})", path.display()), Errno::EADDRINUSE).hint(
                "a server is running on this path already; stop it, or use another --unix path",
            )
        },
    )
    .map(drop)
}

/// Removes the socket file at `path` if, and only if, it is what a killed server leaves:
/// a socket (`lstat`, which does not follow a link), owned by this user, on which no
/// server answers. A regular file, a symbolic link, another user's socket give an error
/// with `not_ours` as its hint; a live server's socket gives `alive()`. `action` says
/// what the removal is for. Returns whether there was anything to remove.
fn remove_stale(
    n: &Narrator,
    path: &Path,
    action: &str,
    not_ours: &str,
    alive: impl FnOnce() -> Error,
) -> Result<bool> {
    let Some(judged) = lstat_ours(path, Kind::Socket).map_err(|e| e.hint(not_ours))? else {
        return Ok(false);
    };
    if probe(n, path)? {
        return Err(alive());
    }
    n.say(format_args!(
        "nobody answers: a stale socket file, left by a server that was killed; {action}"
    ));
    // unlink(2) has no "only if it is still the file I judged" form, so look once more
    // that the name still leads to the same socket. Between this look and the unlink,
    // only someone allowed to rename in the folder could swap it: nobody else in the
    // private folder (0700), nor in a sticky one such as /tmp (inode(7), S_ISVTX).
    let now = lstat_ours(path, Kind::Socket).map_err(|e| e.hint(not_ours))?;
    if now.map(|st| (st.st_dev, st.st_ino)) != Some((judged.st_dev, judged.st_ino)) {
        return Err(Error::bad_data(
            format!("lstat({:?})", path.display()),
            "the socket file changed while I checked it",
        )
        .hint(
            "another program is using this path right now; try again, or use another --unix path",
        ));
    }
    n.call(format_args!("unlink({:?})", path.display()), || {
        unistd::unlink(path)
    })?;
    Ok(true)
}

/// The beginning of the abstract name a [`probe`] binds to, so that a live server can
/// tell the probe from a client.
const PROBE_NAME: &str = "ipc-demos-probe-";

/// Is a server listening on the socket at `path`? A `connect` that succeeds means yes;
/// ECONNREFUSED means the file is there but nobody listens (a killed server's leftover).
///
/// The probe's own socket is bound first to an abstract name, `@ipc-demos-probe-PID`
/// (unix(7), "Abstract sockets": a name with no file, gone when the socket closes). A
/// socket-demo server that accepts it asks who connected (`getpeername`), sees that
/// name, and closes it without counting it as a client.
pub fn probe(n: &Narrator, path: &Path) -> Result<bool> {
    let probe = new_socket(n, AddressFamily::Unix, SockType::Stream)?;
    let name = format!("{PROBE_NAME}{}", unistd::getpid());
    let me = UnixAddr::new_abstract(name.as_bytes())
        .map_err(|e| Error::sys(format!("sockaddr_un for @{name}"), e))?;
    n.call(
        format_args!(
            "bind({}, {{AF_UNIX, @{name}}})   (an abstract name: a live server sees it is only a probe)",
            probe.as_raw_fd()
        ),
        || socket::bind(probe.as_raw_fd(), &me),
    )?;
    let addr = UnixAddr::new(path).map_err(|e| Error::sys("sockaddr_un", e))?;
    match n.call(
        format_args!(
            "connect({}, {{AF_UNIX, {:?}}})   (is a server there?)",
            probe.as_raw_fd(),
            path.display()
        ),
        || socket::connect(probe.as_raw_fd(), &addr),
    ) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(Errno::ECONNREFUSED) => Ok(false),
        Err(e) => Err(e.hint("could not tell whether a server listens on this socket")),
    }
}

// ANCHOR: connect
/// The client's side: `socket` and `connect` to the endpoint.
pub fn connect(n: &Narrator, endpoint: &Endpoint) -> Result<OwnedFd> {
    let result = match endpoint {
        Endpoint::Unix(path) => {
            let fd = new_socket(n, AddressFamily::Unix, SockType::Stream)?;
            let addr = UnixAddr::new(path).map_err(|e| Error::sys("sockaddr_un", e))?;
            n.call(
                format_args!(
                    "connect({}, {{AF_UNIX, {:?}}})",
                    fd.as_raw_fd(),
                    path.display()
                ),
                || socket::connect(fd.as_raw_fd(), &addr),
            )
            .map(|()| fd)
        }
        Endpoint::Tcp(addr) => {
            let fd = new_socket(n, AddressFamily::Inet, SockType::Stream)?;
            let sin = SockaddrIn::from(*addr);
            n.call(
                format_args!("connect({}, {{AF_INET, {addr}}})", fd.as_raw_fd()),
                || socket::connect(fd.as_raw_fd(), &sin),
            )
            .map(|()| fd)
        }
    };
    result.map_err(|e| match e.errno() {
        Some(Errno::ENOENT) => {
            e.hint("no socket at this path: start the server first (with the same --unix)")
        }
        Some(Errno::ECONNREFUSED) => {
            e.hint("nobody listens there: is the server running, on this address and port?")
        }
        _ => e,
    })
}
// ANCHOR_END: connect

/// The counters of a server, shared by its client threads.
#[derive(Debug, Default)]
pub struct Served {
    /// Connections accepted as clients (probes and refused connections are not).
    pub clients: AtomicU64,
    /// Messages answered.
    pub messages: AtomicU64,
    /// Connections that ended with an error (a bad frame, a reset).
    pub errors: AtomicU64,
}

/// How many clients a server serves at once unless told otherwise (`--max-clients`).
pub const DEFAULT_MAX_CLIENTS: usize = 16;

/// Who is at the other end of an accepted connection, as the kernel tells it.
#[derive(Debug)]
enum Peer {
    /// A Unix socket client: its credentials (SO_PEERCRED).
    Unix(socket::UnixCredentials),
    /// A TCP client: its address and port (getpeername).
    Tcp(SocketAddrV4),
    /// Another socket-demo's [`probe`], named by its abstract address.
    Probe(String),
    /// The kernel would not say.
    Unknown,
}

/// `getpeername` on an accepted connection, and, on a Unix socket, SO_PEERCRED.
fn peer_of(conn: &OwnedFd) -> Peer {
    let Ok(addr) = socket::getpeername::<SockaddrStorage>(conn.as_raw_fd()) else {
        return Peer::Unknown;
    };
    if let Some(sin) = addr.as_sockaddr_in() {
        return Peer::Tcp(SocketAddrV4::new(sin.ip(), sin.port()));
    }
    let probe = addr
        .as_unix_addr()
        .and_then(|unix| unix.as_abstract())
        .filter(|name| name.starts_with(PROBE_NAME.as_bytes()));
    if let Some(name) = probe {
        return Peer::Probe(String::from_utf8_lossy(name).into_owned());
    }
    socket::getsockopt(conn, sockopt::PeerCredentials).map_or(Peer::Unknown, Peer::Unix)
}

/// Counts a client thread as running until it ends: the count goes down when this is
/// dropped, at the end of the thread, even if the thread panics.
struct Running(Arc<AtomicUsize>);

impl Running {
    /// The thread is done: the count goes down now; returns how many are still running.
    fn end(self) -> usize {
        let count = Arc::clone(&self.0);
        drop(self);
        count.load(Ordering::SeqCst)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

// ANCHOR: serve
/// Accepts connections (all of them, or `clients` of them) and gives each one to
/// `handle` on a thread of its own, so several clients are served at once, at most
/// `max_clients` at a time: a connection beyond that is closed at once, and said so, so
/// that idle connections cannot pile up threads and buffers without end. A liveness
/// probe of another socket-demo is closed too, and is not a client. Returns when every
/// connection has ended.
fn accept_each(
    n: &Narrator,
    listener: &OwnedFd,
    clients: Option<u64>,
    max_clients: usize,
    handle: impl Fn(u64, OwnedFd, Peer) + Clone + Send + 'static,
) -> Result<()> {
    let running = Arc::new(AtomicUsize::new(0));
    let mut threads: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut accepted = 0;
    while clients != Some(accepted) {
        let conn = n
            .call(
                format_args!("accept({}, NULL, NULL)", listener.as_raw_fd()),
                || socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC).map(own),
            )?
            .0;
        let peer = peer_of(&conn);
        if let Peer::Probe(name) = &peer {
            n.announce(format_args!(
                "connection {} is from @{name} (getpeername): another program checking that I am alive; closed, not a client",
                conn.as_raw_fd()
            ));
            continue;
        }
        if running.load(Ordering::SeqCst) >= max_clients {
            n.announce(format_args!(
                "connection {} refused: I serve {max_clients} clients at once already (--max-clients); closing it",
                conn.as_raw_fd()
            ));
            continue;
        }
        accepted += 1;
        running.fetch_add(1, Ordering::SeqCst);
        let (handle, count, id) = (handle.clone(), Running(Arc::clone(&running)), accepted);
        let narrator = n.clone();
        // Builder::spawn, not thread::spawn: the system may refuse a thread (no memory
        // for its stack under `ulimit -v`, or too many threads), and that is an error to
        // report, not a panic (pthread_create(3), EAGAIN).
        let thread = std::thread::Builder::new()
            .name(format!("client-{id}"))
            .spawn(move || {
                handle(id, conn, peer);
                let now = count.end();
                narrator.say(format_args!("client {id} is done; {now} being served"));
            })
            .context(format!("pthread_create(a thread for client {id})"))
            .map_err(|e| {
                e.hint("the system refused a new thread: too little memory for its stack (see `ulimit -v`) or too many threads (`ulimit -u`); serve fewer clients at once")
            })?;
        // Forget the threads that have ended, so the list does not grow with every client.
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
    }
    // Each connection ends when its client closes; wait for all of them before returning.
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

/// Answers each message of each connection with the same message, its payload in
/// capital letters, to at most `max_clients` clients at once. A client that sends a
/// frame longer than `max` bytes is disconnected; the others go on.
pub fn serve(
    n: &Narrator,
    listener: &OwnedFd,
    clients: Option<u64>,
    max: usize,
    max_clients: usize,
) -> Result<Arc<Served>> {
    let served = Arc::new(Served::default());
    // The closure runs on each client's thread, so it owns its own handles to both.
    let (narrator, counters) = (n.clone(), Arc::clone(&served));
    accept_each(n, listener, clients, max_clients, move |id, conn, peer| {
        counters.clients.fetch_add(1, Ordering::SeqCst);
        match peer {
            Peer::Unix(cred) => narrator.say(format_args!(
                "client {id}: getsockopt(SO_PEERCRED) = {{pid={}, uid={}, gid={}}}: the kernel says who connected",
                cred.pid(),
                cred.uid(),
                cred.gid()
            )),
            Peer::Tcp(addr) => narrator.say(format_args!(
                "client {id}: getpeername() = {addr}: over TCP the kernel knows only the peer's address and port (SO_PEERCRED means something only on Unix sockets)"
            )),
            Peer::Probe(_) | Peer::Unknown => {}
        }
        if let Err(e) = answer(&narrator, conn, &counters, max) {
            counters.errors.fetch_add(1, Ordering::SeqCst);
            narrator.announce(format_args!(
                "client {id}: {e}; disconnected it, serving the others"
            ));
        }
    })?;
    Ok(served)
}

/// One connection: read a frame, answer it shouted, until the client closes.
fn answer(n: &Narrator, conn: OwnedFd, served: &Served, max: usize) -> Result<()> {
    let mut stream = FdStream::new(conn, n);
    let (mut buf, mut reply) = (Vec::new(), Vec::new());
    while let Some(request) = stream.read_frame(&mut buf, max)? {
        if served.messages.fetch_add(1, Ordering::SeqCst) == NARRATED_MESSAGES {
            n.mute("... answering the rest without narration");
        }
        message::encode_payload(
            request.seq,
            &request.payload.to_ascii_uppercase(),
            &mut reply,
        );
        stream.write_all(&reply)?;
    }
    Ok(())
}
// ANCHOR_END: serve

/// Makes reads and writes on a client's socket give up after `patience` (SO_RCVTIMEO,
/// SO_SNDTIMEO, socket(7)) with EAGAIN, instead of waiting forever for a server that
/// accepted the connection but never answers. A server that dies is noticed at once
/// anyway: the kernel closes its end, and a read returns 0 or ECONNRESET.
fn set_patience(n: &Narrator, fd: &OwnedFd, patience: Option<Duration>) -> Result<()> {
    let Some(patience) = patience else {
        return Ok(());
    };
    let limit = TimeVal::new(
        i64::try_from(patience.as_secs()).unwrap_or(i64::MAX),
        i64::from(patience.subsec_micros()),
    );
    let secs = patience.as_secs_f64();
    n.call(
        format_args!(
            "setsockopt({}, SOL_SOCKET, SO_RCVTIMEO, {secs} s)",
            fd.as_raw_fd()
        ),
        || socket::setsockopt(fd, sockopt::ReceiveTimeout, &limit),
    )?;
    n.call(
        format_args!(
            "setsockopt({}, SOL_SOCKET, SO_SNDTIMEO, {secs} s)",
            fd.as_raw_fd()
        ),
        || socket::setsockopt(fd, sockopt::SendTimeout, &limit),
    )
}

/// The hint for an exchange with the server that failed: EAGAIN is the time-out of
/// [`set_patience`]; anything else means the connection is gone.
fn server_trouble(e: Error, patience: Option<Duration>) -> Error {
    match (e.errno(), patience) {
        (Some(Errno::EAGAIN), Some(patience)) => e.hint(format!(
            "no answer from the server within {} s (SO_RCVTIMEO): it is stuck, paused (Ctrl-Z, --step), or not a socket-demo server; `client --timeout 0` waits forever",
            patience.as_secs_f64()
        )),
        _ => e.hint(
            "the server has gone (killed), or it closed my connection (a frame over its --max, or more clients than its --max-clients); its output says which",
        ),
    }
}

// ANCHOR: client
/// A client: sends `count` messages of `size` bytes, one at a time, and checks that each
/// reply is its message in capital letters. It waits at most `patience` for each reply.
pub fn client(
    n: &Narrator,
    endpoint: &Endpoint,
    count: u64,
    size: usize,
    patience: Option<Duration>,
) -> Result<()> {
    let fd = connect(n, endpoint)?;
    set_patience(n, &fd, patience)?;
    let mut stream = FdStream::new(fd, n);
    let mut tally = Tally::new(count);
    let (mut frame, mut buf, mut expected) = (Vec::new(), Vec::new(), vec![0; size]);
    let clock = common::timing::Stopwatch::start();
    for seq in 0..count {
        if seq == NARRATED_MESSAGES {
            n.mute("... the rest without narration");
        }
        message::encode_into(seq, size, &mut frame);
        stream
            .write_all(&frame)
            .map_err(|e| server_trouble(e, patience))?;
        let reply = stream
            .read_frame(&mut buf, size)
            .map_err(|e| server_trouble(e, patience))?
            .ok_or_else(|| {
                server_trouble(Error::bad_data("read a reply", "end of stream"), patience)
            })?;
        message::fill_payload(seq, &mut expected);
        expected.make_ascii_uppercase();
        let intact = reply.intact && reply.payload == expected.as_slice();
        tally.record(&Frame { intact, ..reply });
    }
    n.unmute();
    n.say(format_args!(
        "{} round trips in {:.3} s: {}",
        count,
        clock.elapsed().as_secs_f64(),
        common::timing::rate(count, tally.bytes(), clock.elapsed())
    ));
    print_summary(tally.summary())?;
    tally.verdict()
}
// ANCHOR_END: client

/// `--raw` server: echoes whatever each client sends in capital letters, so `socat` or a
/// Python socket can be the client.
pub fn serve_raw(
    n: &Narrator,
    listener: &OwnedFd,
    clients: Option<u64>,
    max_clients: usize,
) -> Result<()> {
    let narrator = n.clone();
    accept_each(n, listener, clients, max_clients, move |_, conn, _| {
        let mut stream = FdStream::new(conn, &narrator);
        let mut buf = [0u8; 4096];
        while let Ok(got @ 1..) = stream.read(&mut buf) {
            if stream.write_all(&buf[..got].to_ascii_uppercase()).is_err() {
                break;
            }
        }
    })
}

/// `--raw` client: sends each line of standard input and prints what comes back.
pub fn client_raw(n: &Narrator, endpoint: &Endpoint, patience: Option<Duration>) -> Result<()> {
    let fd = connect(n, endpoint)?;
    set_patience(n, &fd, patience)?;
    let mut stream = FdStream::new(fd, n);
    let mut lines = 0;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("read(0)")? + "\n";
        stream
            .write_all(line.as_bytes())
            .map_err(|e| server_trouble(e, patience))?;
        let mut back = vec![0u8; line.len()];
        if !stream
            .read_full(&mut back)
            .map_err(|e| server_trouble(e, patience))?
        {
            return Err(server_trouble(
                Error::bad_data("read the answer", "the server closed the connection"),
                patience,
            ));
        }
        print_summary(String::from_utf8_lossy(&back).trim_end())?;
        lines += 1;
    }
    print_summary(format_args!("summary: lines={lines}"))
}

/// `socketpair(AF_UNIX, kind, 0)`: two connected Unix sockets, for a parent and the child
/// it forks, with no name in the file system.
fn socketpair(n: &Narrator, kind: SockType) -> Result<(OwnedFd, OwnedFd)> {
    let name = if kind == SockType::Datagram {
        "SOCK_DGRAM"
    } else {
        "SOCK_STREAM"
    };
    n.call(format_args!("socketpair(AF_UNIX, {name}, 0)"), || {
        socket::socketpair(AddressFamily::Unix, kind, None, SockFlag::SOCK_CLOEXEC)
    })
}

// ANCHOR: no_framing
/// A byte stream keeps bytes, not messages. A child writes `count` messages of `size`
/// bytes, each with its own `write` and no length in front; the parent reads with a large
/// buffer and shows how the writes arrived: merged, and sometimes cut.
pub fn no_framing(n: &Narrator, count: u64, size: usize) -> Result<()> {
    let (reader, writer) = socketpair(n, SockType::Stream)?;
    match process::fork(n, "writer")? {
        Fork::Child(me) => {
            let result = stream::close(&me, reader).and_then(|()| {
                let mut out = FdStream::new(writer, &me);
                let mut payload = vec![0; size];
                me.mute(format_args!(
                    "writing {count} messages of {size} bytes, one write each"
                ));
                (0..count).try_for_each(|seq| {
                    message::fill_payload(seq, &mut payload);
                    out.write_all(&payload)
                })
            });
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            stream::close(n, writer)?;
            let mut input = FdStream::new(reader, n);
            let mut buf = vec![0; 64 << 10];
            let (mut reads, mut bytes, mut cut) = (0u64, 0u64, 0u64);
            loop {
                let got = input.read(&mut buf)? as u64;
                if got == 0 {
                    break;
                }
                // A read that does not end on a message boundary has cut a message in two.
                cut += u64::from((bytes + got) % size as u64 != 0);
                reads += 1;
                bytes += got;
                if reads == NARRATED_MESSAGES {
                    n.mute("... reading the rest without narration");
                }
            }
            n.unmute();
            process::wait_for(n, child, "writer")?;
            n.say(format_args!(
                "{count} writes of {size} bytes arrived as {reads} reads; {cut} reads ended in the middle of a message"
            ));
            print_summary(format_args!(
                "summary: writes={count} reads={reads} cut={cut} bytes={bytes}"
            ))
        }
    }
}
// ANCHOR_END: no_framing

// ANCHOR: dgram
/// Unix datagram sockets: each `send` is one datagram and each `recv` takes exactly one,
/// so no framing is needed; a datagram larger than the socket's send buffer is refused
/// with EMSGSIZE.
pub fn dgram(n: &Narrator, count: u64, size: usize) -> Result<()> {
    let (receiver, sender) = socketpair(n, SockType::Datagram)?;
    let sndbuf = socket::getsockopt(&sender, sockopt::SndBuf)
        .map_err(|e| Error::sys("getsockopt(SO_SNDBUF)", e))?;
    n.say(format_args!(
        "getsockopt({}, SOL_SOCKET, SO_SNDBUF) = {sndbuf}: no datagram may be larger",
        sender.as_raw_fd()
    ));
    match process::fork(n, "sender")? {
        Fork::Child(me) => {
            let result = stream::close(&me, receiver)
                .and_then(|()| send_datagrams(&me, &sender, count, size));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            stream::close(n, sender)?;
            // A datagram socket has no end-of-file: if the sender dies, recv would wait
            // forever. So wait at most 200 ms at a time, and check on the sender between.
            let patience = nix::sys::time::TimeVal::new(0, 200_000);
            n.call(
                format_args!(
                    "setsockopt({}, SOL_SOCKET, SO_RCVTIMEO, 200 ms)",
                    receiver.as_raw_fd()
                ),
                || socket::setsockopt(&receiver, sockopt::ReceiveTimeout, &patience),
            )?;
            let mut tally = Tally::new(count);
            let mut buf = vec![0; size + message::OVERHEAD + 1];
            for seq in 0..count {
                if seq == NARRATED_MESSAGES {
                    n.mute("... receiving the rest without narration");
                }
                let got = loop {
                    match n.call(
                        format_args!("recv({}, buf, {}, 0)", receiver.as_raw_fd(), buf.len()),
                        || socket::recv(receiver.as_raw_fd(), &mut buf, MsgFlags::empty()),
                    ) {
                        Ok(got) => break got,
                        Err(e)
                            if e.errno() == Some(Errno::EAGAIN)
                                && process::is_alive(child.as_raw()) =>
                        {
                            continue;
                        }
                        Err(e) if e.errno() == Some(Errno::EAGAIN) => {
                            process::wait_for(n, child, "sender")?;
                            return Err(Error::bad_data(
                                "recv",
                                format!("the sender ended after {seq} of {count} datagrams"),
                            ));
                        }
                        Err(e) => return Err(e),
                    }
                };
                match message::decode(&buf[..got], size) {
                    Ok(frame) => tally.record(&frame),
                    Err(_) => tally.record_undecodable(got),
                }
            }
            n.unmute();
            n.say("every recv returned exactly one whole datagram: the boundaries are kept");
            process::wait_for(n, child, "sender")?;
            print_summary(tally.summary())?;
            tally.verdict()
        }
    }
}

fn send_datagrams(me: &Narrator, sender: &OwnedFd, count: u64, size: usize) -> Result<()> {
    let mut frame = Vec::new();
    for seq in 0..count {
        if seq == NARRATED_MESSAGES {
            me.mute("... sending the rest without narration");
        }
        message::encode_into(seq, size, &mut frame);
        me.call(format_args!("send({}, buf, {}, 0)", sender.as_raw_fd(), frame.len()), || {
            socket::send(sender.as_raw_fd(), &frame, MsgFlags::empty())
        })
        .map_err(|e| match e.errno() {
            Some(Errno::EMSGSIZE) => e.hint(
                "a datagram must fit in the socket's send buffer (SO_SNDBUF, from /proc/sys/net/core/wmem_default); \
                 use a smaller --size, or a stream socket",
            ),
            _ => e,
        })?;
    }
    me.unmute();
    Ok(())
}
// ANCHOR_END: dgram

/// The text of the file `pass-fd` hands over.
const SECRET: &str = "this file was opened by the sender; its name is gone\n";

// ANCHOR: scm_rights
/// `sendmsg` with an SCM_RIGHTS control message: sends one byte of data and, beside it,
/// the descriptor `fd`, which the kernel installs as a new descriptor in the receiver.
fn send_fd(n: &Narrator, socket: &OwnedFd, fd: &OwnedFd, what: &str) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let iov = [IoSlice::new(b"f")];
    n.call(
        format_args!(
            "sendmsg({}, {{\"f\", SCM_RIGHTS [{}]}}, 0)   ({what})",
            socket.as_raw_fd(),
            fds[0]
        ),
        || {
            socket::sendmsg::<()>(
                socket.as_raw_fd(),
                &iov,
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::empty(),
                None,
            )
        },
    )
    .map(drop)
}

/// `recvmsg` of what [`send_fd`] sent: the byte, and the new descriptor it carried.
fn recv_fd(n: &Narrator, socket: &OwnedFd) -> Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = socket::recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::sys(format!("recvmsg({})", socket.as_raw_fd()), e))?;
    let mut received = None;
    for cmsg in msg
        .cmsgs()
        .map_err(|e| Error::sys("recvmsg: control messages", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            received = fds.first().copied();
        }
    }
    let raw = received
        .ok_or_else(|| Error::bad_data("recvmsg", "no descriptor came with the message"))?;
    n.say(format_args!(
        "recvmsg({}, ..) = 1, with SCM_RIGHTS [{raw}]: a new descriptor, to the sender's open file",
        socket.as_raw_fd()
    ));
    Ok(own(raw).0)
}
// ANCHOR_END: scm_rights

// ANCHOR: pass_fd
/// The sender opens a file, removes its name, and sends the open descriptor over a Unix
/// socket with SCM_RIGHTS; the receiver reads the file it never opened, and asks the
/// kernel who is at the other end of the socket (SO_PEERCRED).
pub fn pass_fd(n: &Narrator, dir: &Path) -> Result<()> {
    let (near, far) = socketpair(n, SockType::Stream)?;
    match process::fork(n, "receiver")? {
        Fork::Child(me) => {
            let result = stream::close(&me, near).and_then(|()| receive_fd(&me, &far));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            stream::close(n, far)?;
            let path = dir.join(format!("pass-fd-{}", unistd::getpid()));
            let file = write_secret(n, &path)?;
            n.call(
                format_args!(
                    "unlink({:?})   (the file has no name now; only my descriptor keeps it)",
                    path.display()
                ),
                || unistd::unlink(&path),
            )?;
            send_fd(n, &near, &file.0, "the open file")?;
            drop(file);
            process::wait_for(n, child, "receiver")?;
            print_summary(format_args!(
                "summary: passed_fd=yes read_by_receiver=yes peer_pid={}",
                unistd::getpid()
            ))
        }
    }
}

/// Creates the file `pass-fd` hands over, writes [`SECRET`] into it, and opens it again
/// for reading. O_EXCL|O_NOFOLLOW: the demo writes only into a file it has just created
/// itself, never into whatever (or wherever a symbolic link) already was at the path.
fn write_secret(n: &Narrator, path: &Path) -> Result<Fd> {
    use nix::fcntl::{OFlag, open};
    let shown = path.display();
    let created = n.call(
        format_args!("open({shown:?}, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW, 0600)"),
        || {
            open(
                path,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::S_IRUSR | Mode::S_IWUSR,
            )
            .map(Fd)
        },
    )?;
    // Removed on any early return; the lesson unlinks it itself once it is open.
    let guard = cleanup::unlink_on_drop(n, path);
    FdStream::new(created.0, n).write_all(SECRET.as_bytes())?;
    let file = n.call(format_args!("open({shown:?}, O_RDONLY|O_NOFOLLOW)"), || {
        open(
            path,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(Fd)
    })?;
    guard.disarm();
    Ok(file)
}

fn receive_fd(me: &Narrator, far: &OwnedFd) -> Result<()> {
    let peer = socket::getsockopt(far, sockopt::PeerCredentials)
        .map_err(|e| Error::sys("getsockopt(SO_PEERCRED)", e))?;
    me.say(format_args!(
        "getsockopt({}, SO_PEERCRED) = {{pid={}, uid={}, gid={}}}",
        far.as_raw_fd(),
        peer.pid(),
        peer.uid(),
        peer.gid()
    ));
    let file = recv_fd(me, far)?;
    let mut content = Vec::new();
    FdStream::new(file, me).read_to_end(&mut content)?;
    me.say(format_args!(
        "read it: {:?}",
        String::from_utf8_lossy(&content)
    ));
    if content != SECRET.as_bytes() {
        return Err(Error::bad_data(
            "read the passed file",
            "its content is not what the sender wrote",
        ));
    }
    Ok(())
}
// ANCHOR_END: pass_fd

// ANCHOR: section
/// ALPC's three ways on Linux (note 003, 3.7.3): the client makes a shared section
/// (memfd), maps it, and passes its descriptor to the server once. Then each message of
/// at most [`INLINE_LIMIT`] bytes is copied through the socket; a larger one is written
/// into the section, and only its offset and length go through the socket.
pub fn section(n: &Narrator, sizes: &[usize], count: u64) -> Result<()> {
    let largest = sizes.iter().copied().max().unwrap_or(0) + message::OVERHEAD;
    let (client_end, server_end) = socketpair(n, SockType::Stream)?;
    match process::fork(n, "server")? {
        Fork::Child(me) => {
            let result = stream::close(&me, client_end)
                .and_then(|()| section_server(&me, server_end, count, largest));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            stream::close(n, server_end)?;
            let memfd = n.call(
                "memfd_create(\"ipc-demos-section\", MFD_CLOEXEC|MFD_ALLOW_SEALING)",
                || {
                    nix::sys::memfd::memfd_create(
                        "ipc-demos-section",
                        nix::sys::memfd::MFdFlags::MFD_CLOEXEC
                            | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
                    )
                    .map(Fd)
                },
            )?;
            n.call(
                format_args!("ftruncate({}, {largest})", memfd.0.as_raw_fd()),
                || unistd::ftruncate(&memfd.0, largest as i64),
            )?;
            // Seal the size (memfd_create(2), "File sealing"): from now on nobody, the
            // client included, can shrink the section under the server's mapping, where
            // the server's next read would die of SIGBUS. The server checks the seals.
            n.call(
                format_args!(
                    "fcntl({}, F_ADD_SEALS, F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL)",
                    memfd.0.as_raw_fd()
                ),
                || {
                    fcntl(
                        &memfd.0,
                        FcntlArg::F_ADD_SEALS(SIZE_SEALS | SealFlag::F_SEAL_SEAL),
                    )
                },
            )?;
            let mut section = Section::map(n, &memfd.0, largest)?;
            send_fd(n, &client_end, &memfd.0, "the section, once")?;
            let mut socket = FdStream::new(client_end, n);
            let mut frame = Vec::new();
            let (mut inline, mut shared) = (0u64, 0u64);
            for seq in 0..count {
                let size = sizes[seq as usize % sizes.len()];
                message::encode_into(seq, size, &mut frame);
                if frame.len() <= INLINE_LIMIT {
                    // Tag 0, then the frame itself: copied through the socket.
                    socket.write_all(&[0])?;
                    socket.write_all(&frame)?;
                    inline += 1;
                    n.say(format_args!(
                        "message {seq} ({} bytes): through the socket",
                        frame.len()
                    ));
                } else {
                    // Tag 1, then offset and length: the frame is in the section.
                    section.write(0, &frame);
                    let mut note = [1u8; 17];
                    note[1..9].copy_from_slice(&0u64.to_le_bytes());
                    note[9..].copy_from_slice(&(frame.len() as u64).to_le_bytes());
                    socket.write_all(&note)?;
                    shared += 1;
                    n.say(format_args!("message {seq} ({} bytes): into the section; through the socket only offset 0, length {}", frame.len(), frame.len()));
                }
                // Wait for the server's acknowledgement before the section is reused.
                let mut ack = [0u8; 1];
                if !socket.read_full(&mut ack)? {
                    return Err(Error::bad_data(
                        "wait for the server",
                        "it closed the connection",
                    ));
                }
                if seq + 1 == NARRATED_MESSAGES + sizes.len() as u64 {
                    n.mute("... the rest without narration");
                }
            }
            n.unmute();
            drop(socket);
            process::wait_for(n, child, "server")?;
            n.announce(format_args!(
                "{inline} messages went through the socket, {shared} through the section"
            ));
            Ok(())
        }
    }
}

// ANCHOR_END: section

/// The seals a section must carry before the server maps it: its size is fixed.
const SIZE_SEALS: SealFlag = SealFlag::F_SEAL_SHRINK.union(SealFlag::F_SEAL_GROW);

/// The server of [`section`]: receives the section's descriptor, maps it, and takes each
/// message from the socket or from the section, checking every offset and length.
///
/// The section is memory the client can change at any moment, so the server never
/// trusts it: it maps the section only if its size is sealed (a client that could
/// shrink it would kill the server with SIGBUS), checks the note's offset and length
/// against the size it mapped, copies the frame out of the section once, and decodes,
/// checks and counts only that private copy. A field read twice from shared memory
/// could change between the check and the use.
fn section_server(me: &Narrator, conn: OwnedFd, count: u64, largest: usize) -> Result<()> {
    let fd = Fd(recv_fd(me, &conn)?);
    let seals = me.call(
        format_args!("fcntl({}, F_GET_SEALS)", fd.0.as_raw_fd()),
        || fcntl(&fd.0, FcntlArg::F_GET_SEALS),
    )?;
    if !SealFlag::from_bits_truncate(seals).contains(SIZE_SEALS) {
        return Err(Error::bad_data(
            "check the section's seals",
            "its size is not sealed (F_SEAL_SHRINK, F_SEAL_GROW): the client could shrink it under my mapping, and my next read would die of SIGBUS",
        )
        .hint("a section must be made with MFD_ALLOW_SEALING and sealed with F_ADD_SEALS before it is passed (memfd_create(2), \"File sealing\")"));
    }
    // The size cannot change any more: read it once, and map exactly that.
    let len = stream::fd_len(&fd.0)?;
    me.say(format_args!(
        "received the section (fd {}, {len} bytes, its size sealed); mapping it",
        fd.0.as_raw_fd()
    ));
    let section = Section::map(me, &fd.0, len)?;
    let mut socket = FdStream::new(conn, me);
    let mut tally = Tally::new(count);
    let mut buf = Vec::new();
    for _ in 0..count {
        let mut tag = [0u8; 1];
        if !socket.read_full(&mut tag)? {
            return Err(Error::bad_data(
                "read a message",
                "the client closed the connection early",
            ));
        }
        match tag[0] {
            0 => match socket.read_frame(&mut buf, INLINE_LIMIT)? {
                Some(frame) => tally.record(&frame),
                None => {
                    return Err(Error::bad_data(
                        "read a message",
                        "the client closed the connection early",
                    ));
                }
            },
            1 => {
                let mut note = [0u8; 16];
                if !socket.read_full(&mut note)? {
                    return Err(Error::bad_data(
                        "read a section note",
                        "the client closed the connection early",
                    ));
                }
                let offset = u64::from_le_bytes(note[..8].try_into().unwrap_or_default());
                let length = u64::from_le_bytes(note[8..].try_into().unwrap_or_default());
                // Both numbers come from the other process: check them against the section.
                let end = offset
                    .checked_add(length)
                    .filter(|&end| end <= section.len as u64 && length <= largest as u64);
                let Some(end) = end else {
                    return Err(Error::bad_data(
                        "a section note",
                        format!(
                            "offset {offset} and length {length} do not fit the {}-byte section",
                            section.len
                        ),
                    ));
                };
                // One copy out of the shared section; from here on only the copy is read.
                section.read(offset as usize, (end - offset) as usize, &mut buf);
                match message::decode(&buf, largest) {
                    Ok(frame) => tally.record(&frame),
                    Err(_) => tally.record_undecodable(buf.len()),
                }
            }
            other => {
                return Err(Error::bad_data(
                    "read a message",
                    format!("unknown tag {other}"),
                ));
            }
        }
        socket.write_all(&[1])?;
    }
    print_summary(tally.summary())?;
    tally.verdict()
}

/// A MAP_SHARED mapping of a memfd section.
struct Section {
    base: std::ptr::NonNull<u8>,
    len: usize,
}

impl Section {
    fn map(n: &Narrator, fd: &OwnedFd, len: usize) -> Result<Section> {
        let size = std::num::NonZeroUsize::new(len)
            .ok_or_else(|| Error::bad_data("map the section", "it is empty"))?;
        n.step(format_args!(
            "mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, {}, 0)",
            fd.as_raw_fd()
        ));
        // SAFETY: a new mapping at an address the kernel chooses aliases no Rust object;
        // Section unmaps it in Drop and hands out only copies of its bytes.
        let ptr = unsafe {
            nix::sys::mman::mmap(
                None,
                size,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
                fd.as_fd(),
                0,
            )
        }
        .map_err(|e| {
            Error::sys(
                format!("mmap(NULL, {len}, .., MAP_SHARED, {}, 0)", fd.as_raw_fd()),
                e,
            )
        })?;
        n.say(format_args!(
            "mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, {}, 0) = {:p}",
            fd.as_raw_fd(),
            ptr
        ));
        Ok(Section {
            base: ptr.cast(),
            len,
        })
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        assert!(
            offset + bytes.len() <= self.len,
            "the section was sized for the largest message"
        );
        // SAFETY: the range was checked to be inside the mapping just above; the server
        // reads it only after the note that names it, and acknowledges before reuse.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.base.as_ptr().add(offset),
                bytes.len(),
            )
        };
    }

    fn read(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        out.resize(len, 0);
        // SAFETY: the caller checked offset + len <= self.len; the bytes are copied once
        // into private memory before they are interpreted.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.as_ptr().add(offset), out.as_mut_ptr(), len)
        };
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        // SAFETY: base and len describe the mapping this Section owns.
        let _ = unsafe { nix::sys::mman::munmap(self.base.cast(), self.len) };
    }
}

/// `clean`: removes the socket file a killed server left at `path`. Only a socket of
/// this user's on which no server answers: a live server's socket is how its clients
/// find it, and anything else at the path is somebody else's. What it refuses, it names.
pub fn clean(n: &Narrator, path: &Path) -> Result<()> {
    let removed = remove_stale(
        n,
        path,
        "removing it",
        "it is not ours to remove: clean removes only a socket of yours that no server answers on",
        || {
            Error::bad_data(
                format!("clean {:?}", path.display()),
                "a server answers on this socket (connect succeeded): it is alive, and its socket is how clients find it",
            )
            .hint("stop that server (Ctrl-C) and it removes its socket itself; clean is for what a killed server left")
        },
    )?;
    if !removed {
        n.say(format_args!("nothing at {}", path.display()));
    }
    print_summary(format_args!("summary: removed={}", u8::from(removed)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test says it failed by panicking
    use super::*;

    #[test]
    fn the_section_server_refuses_a_section_whose_size_is_not_sealed() {
        // A client that passes a memfd without seals could shrink it under the server's
        // mapping. Real kernel objects: a socketpair and a memfd, in one process (the
        // descriptor waits in the socket until the server takes it).
        let n = Narrator::silent("test");
        let (client, server) = socketpair(&n, SockType::Stream).unwrap();
        let memfd =
            nix::sys::memfd::memfd_create("unsealed", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .unwrap();
        unistd::ftruncate(&memfd, 4096).unwrap();
        send_fd(&n, &client, &memfd, "an unsealed section").unwrap();
        drop(client);
        let err = section_server(&n, server, 1, 4096).unwrap_err().to_string();
        assert!(
            err.contains("its size is not sealed (F_SEAL_SHRINK"),
            "{err}"
        );
    }
}
