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
use std::sync::atomic::{AtomicU64, Ordering};

use common::cleanup::{self, Guard};
use common::message::{self, Frame};
use common::narrate::{Shown, print_summary};
use common::process::{self, Fork};
use common::stream::{self, FdStream, NARRATED_MESSAGES};
use common::tally::Tally;
use common::{Context, Error, Narrator, Result};
use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, SockaddrIn, UnixAddr, sockopt,
};
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
/// path left by a killed server is replaced, but only if no server answers on it; the
/// returned guard removes the path at the end. For TCP with port 0, the kernel picks a
/// free port, and the returned endpoint says which.
pub fn listen(n: &Narrator, endpoint: &Endpoint) -> Result<(OwnedFd, Endpoint, Option<Guard>)> {
    match endpoint {
        Endpoint::Unix(path) => {
            let fd = new_socket(n, AddressFamily::Unix, SockType::Stream)?;
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
                "look: ls -l {shown} (type s); ss -xl | grep {}",
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

/// A socket file exists at `path`. If a server answers there, refuse; if nobody does
/// (ECONNREFUSED: a killed server left it), remove it so that `bind` can try again.
fn replace_stale(n: &Narrator, path: &Path) -> Result<()> {
    let probe = new_socket(n, AddressFamily::Unix, SockType::Stream)?;
    let addr = UnixAddr::new(path).map_err(|e| Error::sys("sockaddr_un", e))?;
    match n.call(
        format_args!(
            "connect({}, {:?})   (is a server there?)",
            probe.as_raw_fd(),
            path.display()
        ),
        || socket::connect(probe.as_raw_fd(), &addr),
    ) {
        Ok(()) => Err(
            Error::sys(format!("bind({:?})", path.display()), Errno::EADDRINUSE).hint(
                "a server is running on this path already; stop it, or use another --unix path",
            ),
        ),
        Err(e) if e.errno() == Some(Errno::ECONNREFUSED) => {
            n.say("nobody answers: a stale socket file, left by a server that was killed; replacing it");
            n.call(format_args!("unlink({:?})", path.display()), || {
                unistd::unlink(path)
            })
        }
        Err(e) => {
            Err(e.hint("there is something at this path that is not a socket of a live server"))
        }
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
    /// Connections accepted.
    pub clients: AtomicU64,
    /// Messages answered.
    pub messages: AtomicU64,
    /// Connections that ended with an error (a bad frame, a reset).
    pub errors: AtomicU64,
}

// ANCHOR: serve
/// Accepts connections (all of them, or `clients` of them) and gives each one to
/// `handle` on a thread of its own, so several clients are served at once. Returns when
/// every connection has ended.
fn accept_each(
    n: &Narrator,
    listener: &OwnedFd,
    clients: Option<u64>,
    handle: impl Fn(u64, OwnedFd) + Clone + Send + 'static,
) -> Result<()> {
    let mut threads = Vec::new();
    let mut accepted = 0;
    while clients != Some(accepted) {
        let conn = n.call(
            format_args!("accept({}, NULL, NULL)", listener.as_raw_fd()),
            || socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC).map(own),
        )?;
        accepted += 1;
        let (handle, id) = (handle.clone(), accepted);
        threads.push(std::thread::spawn(move || handle(id, conn.0)));
    }
    // Each connection ends when its client closes; wait for all of them before returning.
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

/// Answers each message of each connection with the same message, its payload in
/// capital letters. A client that sends a frame longer than `max` bytes is disconnected;
/// the others go on.
pub fn serve(
    n: &Narrator,
    listener: &OwnedFd,
    clients: Option<u64>,
    max: usize,
) -> Result<Arc<Served>> {
    let served = Arc::new(Served::default());
    // The closure runs on each client's thread, so it owns its own handles to both.
    let (narrator, counters) = (n.clone(), Arc::clone(&served));
    accept_each(n, listener, clients, move |id, conn| {
        counters.clients.fetch_add(1, Ordering::SeqCst);
        if let Ok(peer) = socket::getsockopt(&conn, sockopt::PeerCredentials) {
            narrator.say(format_args!(
                "client {id}: getsockopt(SO_PEERCRED) = {{pid={}, uid={}, gid={}}}: the kernel says who connected",
                peer.pid(),
                peer.uid(),
                peer.gid()
            ));
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

// ANCHOR: client
/// A client: sends `count` messages of `size` bytes, one at a time, and checks that each
/// reply is its message in capital letters.
pub fn client(n: &Narrator, endpoint: &Endpoint, count: u64, size: usize) -> Result<()> {
    let mut stream = FdStream::new(connect(n, endpoint)?, n);
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
            .map_err(|e| e.hint("the server has gone (killed, or it disconnected me)"))?;
        let reply = stream
            .read_frame(&mut buf, size)
            .map_err(|e| e.hint("the server has gone, or its reply is not a frame"))?
            .ok_or_else(|| {
                Error::bad_data("read a reply", "end of stream")
                    .hint("the server has gone (killed, or it disconnected me)")
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
pub fn serve_raw(n: &Narrator, listener: &OwnedFd, clients: Option<u64>) -> Result<()> {
    let narrator = n.clone();
    accept_each(n, listener, clients, move |_, conn| {
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
pub fn client_raw(n: &Narrator, endpoint: &Endpoint) -> Result<()> {
    let mut stream = FdStream::new(connect(n, endpoint)?, n);
    let mut lines = 0;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("read(0)")? + "\n";
        stream.write_all(line.as_bytes())?;
        let mut back = vec![0u8; line.len()];
        if !stream.read_full(&mut back)? {
            return Err(Error::bad_data(
                "read the answer",
                "the server closed the connection",
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
            std::fs::write(&path, SECRET).context(format!("write {}", path.display()))?;
            let file = n.call(format_args!("open({:?}, O_RDONLY)", path.display()), || {
                nix::fcntl::open(
                    &path,
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map(Fd)
            })?;
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
            let memfd = n.call("memfd_create(\"ipc-demos-section\", MFD_CLOEXEC)", || {
                nix::sys::memfd::memfd_create(
                    "ipc-demos-section",
                    nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
                )
                .map(Fd)
            })?;
            n.call(
                format_args!("ftruncate({}, {largest})", memfd.0.as_raw_fd()),
                || unistd::ftruncate(&memfd.0, largest as i64),
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

/// The server of [`section`]: receives the section's descriptor, maps it, and takes each
/// message from the socket or from the section, checking every offset and length.
fn section_server(me: &Narrator, conn: OwnedFd, count: u64, largest: usize) -> Result<()> {
    let fd = Fd(recv_fd(me, &conn)?);
    let len = stream::fd_len(&fd.0)?;
    me.say(format_args!(
        "received the section (fd {}, {len} bytes); mapping it",
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

/// Removes a socket file a killed server left at `path` (only a socket).
pub fn clean(n: &Narrator, path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    common::cleanup::remove_leftover(n, path, "a socket", |t| t.is_socket())
}
