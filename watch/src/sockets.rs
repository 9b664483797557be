//! Sockets: each connection's receive and send queues, as `ss` shows them.
//!
//! Unix domain sockets are asked for with a `sock_diag` netlink dump (sock_diag(7),
//! `UNIX_DIAG_RQLEN`): for each socket, the bytes in its receive queue and the bytes it
//! sent that its peer has not read yet. TCP connections come from `/proc/net/tcp` and
//! `/proc/net/tcp6` (proc(5)): `tx_queue` (sent, not yet acknowledged) and `rx_queue`
//! (arrived, not yet read). Both are the kernel's bookkeeping: asking reads no data.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

use crate::procfs;
use crate::view::{Part, Screen, Unit};

// From <linux/sock_diag.h> and <linux/unix_diag.h> (sock_diag(7)).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UDIAG_SHOW_MEMINFO: u32 = 0x20;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_MEMINFO: u16 = 5;
/// The index of the send buffer size in the UNIX_DIAG_MEMINFO array (SK_MEMINFO_SNDBUF).
const SK_MEMINFO_SNDBUF: usize = 3;
/// TCP_LISTEN and TCP_ESTABLISHED, as the kernel numbers socket states.
const STATE_LISTEN: u8 = 10;
const STATE_ESTABLISHED: u8 = 1;

/// One Unix socket, as the dump describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct UnixSocket {
    ino: u32,
    state: u8,
    name: Option<String>,
    peer: Option<u32>,
    /// Receive queue: bytes (a connection), or connections waiting (a listener).
    rqueue: u32,
    /// Send queue: bytes sent and not read by the peer (or a listener's backlog).
    wqueue: u32,
    sndbuf: Option<u32>,
}

/// The Unix sockets bound to `path` (the listener, and the server's side of each
/// connection) and the clients connected to them.
pub fn look_unix(path: &Path) -> Screen {
    let mut screen = Screen::new(common::tr!("Unix socket {path}", path = path.display()));
    let all = match dump_unix() {
        Ok(all) => all,
        Err(errno) => {
            screen.push(Part::Missing(format!(
                "sock_diag (NETLINK_SOCK_DIAG) = -1 {}",
                common::error::errno_name(errno)
            )));
            return screen;
        }
    };
    let wanted = path.to_string_lossy();
    let named: Vec<&UnixSocket> = all
        .iter()
        .filter(|s| s.name.as_deref() == Some(&*wanted))
        .collect();
    if named.is_empty() {
        screen.push(Part::Missing(common::tr!(
            "no socket is bound to this path (yet): waiting for `socket-demo server`"
        )));
        return screen;
    }
    let by_ino: BTreeMap<u32, &UnixSocket> = all.iter().map(|s| (s.ino, s)).collect();
    let holders = socket_holders();
    let holder = |ino: u32| {
        holders
            .get(&u64::from(ino))
            .map_or_else(|| common::tr!("?"), |pid| procfs::who(*pid))
    };
    for listener in named.iter().filter(|s| s.state == STATE_LISTEN) {
        screen.push(Part::Heading(common::tr!(
            "listening: socket {ino} of {who}",
            ino = listener.ino,
            who = holder(listener.ino)
        )));
        screen.gauge(
            common::tr!("waiting to be accepted"),
            u64::from(listener.rqueue),
            u64::from(listener.wqueue),
            Unit::Connections,
        );
    }
    let connections: Vec<&&UnixSocket> = named
        .iter()
        .filter(|s| s.state == STATE_ESTABLISHED)
        .collect();
    if connections.is_empty() {
        screen.line(common::tr!("connections"), common::tr!("none yet"));
    }
    for (n, server) in connections.into_iter().enumerate() {
        let client = server.peer.and_then(|p| by_ino.get(&p));
        screen.push(Part::Heading(common::tr!(
            "connection {n}: client {client} <-> server {server}",
            n = n + 1,
            client = server.peer.map_or_else(|| "?".into(), holder),
            server = holder(server.ino)
        )));
        let (to_client, to_server) = match client {
            Some(c) => (u64::from(c.rqueue), u64::from(server.rqueue)),
            None => (0, u64::from(server.rqueue)),
        };
        screen.gauge(
            common::tr!("to the server, unread (server's receive queue)"),
            to_server,
            client.and_then(|c| c.sndbuf).map_or(0, u64::from),
            Unit::Bytes,
        );
        screen.gauge(
            common::tr!("to the client, unread (client's receive queue)"),
            to_client,
            server.sndbuf.map_or(0, u64::from),
            Unit::Bytes,
        );
        if let Some(c) = client {
            screen.line(
                common::tr!("send queues"),
                common::tr!(
                    "client {c} bytes, server {s} bytes (sent, not yet read by the other side)",
                    c = c.wqueue,
                    s = server.wqueue
                ),
            );
        }
    }
    screen
}

/// Which process holds each socket inode (the first of this user's processes found).
fn socket_holders() -> BTreeMap<u64, i32> {
    let mut found = BTreeMap::new();
    for (pid, _) in procfs::our_processes() {
        for (_, target) in procfs::fds(pid) {
            if let Some(ino) = procfs::inode_in(&target, "socket") {
                found.entry(ino).or_insert(pid);
            }
        }
    }
    found
}

/// Asks the kernel for every Unix socket of this network namespace, with name, peer,
/// queue lengths and buffer sizes (what `ss -x` asks for).
fn dump_unix() -> nix::Result<Vec<UnixSocket>> {
    // SAFETY: socket takes three integers and returns a new descriptor.
    let raw = Errno::result(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    })?;
    // SAFETY: the kernel just returned `raw` as a new descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // struct nlmsghdr (16 bytes) + struct unix_diag_req (24 bytes).
    let mut request = Vec::with_capacity(40);
    request.extend_from_slice(&40u32.to_ne_bytes());
    request.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    request.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    request.push(libc::AF_UNIX as u8); // sdiag_family
    request.push(0); // sdiag_protocol
    request.extend_from_slice(&0u16.to_ne_bytes()); // pad
    request.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    request.extend_from_slice(&0u32.to_ne_bytes()); // any inode
    let show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO;
    request.extend_from_slice(&show.to_ne_bytes());
    request.extend_from_slice(&[0xff; 8]); // no cookie
    // SAFETY: the buffer is valid for its length; the socket is open.
    Errno::result(unsafe {
        libc::send(sock.as_raw_fd(), request.as_ptr().cast(), request.len(), 0)
    })?;
    let mut sockets = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // SAFETY: the buffer is valid and writable for its length.
        let got = Errno::result(unsafe {
            libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
        })? as usize;
        if got == 0 {
            return Ok(sockets);
        }
        if parse_messages(&buf[..got], &mut sockets)? {
            return Ok(sockets);
        }
    }
}

/// Parses one datagram of netlink messages into `out`; returns whether the dump ended
/// (NLMSG_DONE). Lengths come from the kernel but are still checked before use.
fn parse_messages(mut data: &[u8], out: &mut Vec<UnixSocket>) -> nix::Result<bool> {
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        if len < 16 || len > data.len() {
            return Err(Errno::EBADMSG);
        }
        let body = &data[16..len];
        match i32::from(kind) {
            libc::NLMSG_DONE => return Ok(true),
            libc::NLMSG_ERROR => {
                let code = body
                    .get(..4)
                    .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                return Err(Errno::from_raw(-code));
            }
            _ => {
                if let Some(s) = parse_unix(body) {
                    out.push(s);
                }
            }
        }
        data = &data[len.next_multiple_of(4).min(data.len())..];
    }
    Ok(false)
}

/// A `struct unix_diag_msg` (16 bytes) and its attributes.
fn parse_unix(body: &[u8]) -> Option<UnixSocket> {
    if body.len() < 16 {
        return None;
    }
    let mut s = UnixSocket {
        state: body[2],
        ino: u32::from_ne_bytes(body[4..8].try_into().ok()?),
        ..UnixSocket::default()
    };
    let mut attrs = &body[16..];
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            break;
        }
        let value = &attrs[4..len];
        let word = |i: usize| {
            value
                .get(i * 4..i * 4 + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_ne_bytes)
        };
        match kind {
            UNIX_DIAG_NAME => {
                // An abstract name starts with a NUL byte; a path is not NUL-terminated.
                s.name = Some(String::from_utf8_lossy(value).into_owned());
            }
            UNIX_DIAG_PEER => s.peer = word(0),
            UNIX_DIAG_RQLEN => {
                s.rqueue = word(0).unwrap_or(0);
                s.wqueue = word(1).unwrap_or(0);
            }
            UNIX_DIAG_MEMINFO => s.sndbuf = word(SK_MEMINFO_SNDBUF),
            _ => {}
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    Some(s)
}

/// One line of /proc/net/tcp.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TcpSocket {
    local: String,
    local_port: u16,
    remote: String,
    remote_port: u16,
    state: u8,
    tx_queue: u64,
    rx_queue: u64,
    ino: u64,
}

/// The TCP sockets on `port`: the listener and both ends of each connection to it.
pub fn look_tcp(port: u16) -> Screen {
    let mut screen = Screen::new(common::tr!("TCP port {port}", port));
    let mut all = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            all.extend(text.lines().skip(1).filter_map(parse_tcp_line));
        }
    }
    let ours: Vec<&TcpSocket> = all
        .iter()
        .filter(|s| s.local_port == port || (s.remote_port == port && s.state != STATE_LISTEN))
        .collect();
    if ours.is_empty() {
        screen.push(Part::Missing(common::tr!(
            "nothing on this port (yet): waiting for `socket-demo server --tcp`"
        )));
        return screen;
    }
    let holders = socket_holders();
    for s in ours {
        let who = holders
            .get(&s.ino)
            .map_or_else(|| common::tr!("?"), |pid| procfs::who(*pid));
        if s.state == STATE_LISTEN {
            screen.push(Part::Heading(common::tr!(
                "listening on {local}:{port} ({who})",
                local = s.local,
                port = s.local_port,
                who
            )));
            screen.gauge(
                common::tr!("waiting to be accepted"),
                s.rx_queue,
                0,
                Unit::Connections,
            );
            continue;
        }
        screen.push(Part::Heading(format!(
            "{}:{} -> {}:{} ({who})",
            s.local, s.local_port, s.remote, s.remote_port
        )));
        screen.gauge(
            common::tr!("receive queue (arrived, unread)"),
            s.rx_queue,
            0,
            Unit::Bytes,
        );
        screen.gauge(
            common::tr!("send queue (sent, not acknowledged)"),
            s.tx_queue,
            0,
            Unit::Bytes,
        );
    }
    screen
}

/// `  0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 ... 1000 0 12345 ...`
fn parse_tcp_line(line: &str) -> Option<TcpSocket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (local, local_port) = parse_address(fields.get(1)?)?;
    let (remote, remote_port) = parse_address(fields.get(2)?)?;
    let state = u8::from_str_radix(fields.get(3)?, 16).ok()?;
    let (tx, rx) = fields.get(4)?.split_once(':')?;
    Some(TcpSocket {
        local,
        local_port,
        remote,
        remote_port,
        state,
        tx_queue: u64::from_str_radix(tx, 16).ok()?,
        rx_queue: u64::from_str_radix(rx, 16).ok()?,
        ino: fields.get(9)?.parse().ok()?,
    })
}

/// `0100007F:1F90` is 127.0.0.1 port 8080 (the address in the kernel's byte order, as
/// 32-bit words in hexadecimal).
fn parse_address(text: &str) -> Option<(String, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..addr.len() / 8)
        .map(|i| u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let shown = match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            std::net::Ipv6Addr::from(octets).to_string()
        }
        _ => return None,
    };
    Some((shown, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proc_net_tcp_line_is_read() {
        let s = parse_tcp_line(
            "   1: 0100007F:1F90 0100007F:C350 01 00000010:00000020 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1",
        )
        .unwrap();
        assert_eq!((s.local.as_str(), s.local_port), ("127.0.0.1", 8080));
        assert_eq!(s.remote_port, 50000);
        assert_eq!((s.state, s.tx_queue, s.rx_queue, s.ino), (1, 16, 32, 4242));
    }

    #[test]
    fn a_unix_socket_pair_shows_the_bytes_each_side_has_not_read() {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        nix::unistd::write(&a, b"0123456789").unwrap();
        let ino = |fd: &OwnedFd| nix::sys::stat::fstat(fd).unwrap().st_ino as u32;
        let all = dump_unix().unwrap();
        let side_b = all.iter().find(|s| s.ino == ino(&b)).unwrap();
        assert_eq!(side_b.rqueue, 10);
        assert_eq!(side_b.peer, Some(ino(&a)));
    }
}
