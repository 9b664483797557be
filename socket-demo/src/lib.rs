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
//! One lesson per module, each a function the command line (`main.rs`) runs:
//!
//! - [`listen`](mod@listen): [`listen()`], [`connect`], and what a server finds at its
//!   path ([`probe`], [`clean`]);
//! - [`serve`](mod@serve): [`server`] and [`serve()`], several clients at once, each on a
//!   thread, and [`serve_raw`] for socat or Python peers;
//! - [`client`](mod@client): [`client()`], which checks every answer, and [`client_raw`];
//! - [`together`](mod@together): the server and its clients in one terminal (no
//!   subcommand);
//! - [`no_framing`](mod@no_framing): what a byte stream does to message boundaries;
//! - [`dgram`](mod@dgram): Unix datagram sockets, which keep boundaries, and their limit;
//! - [`pass_fd`](mod@pass_fd): sending an open file descriptor (SCM_RIGHTS), SO_PEERCRED;
//! - [`pass_pipe`](mod@pass_pipe): a pipe's read end sent to a process that is not a child.
//!
//! Windows ALPC's shared section, once a lesson here, is taught with the rest of ALPC in
//! ports-demo (note 003, 3.7.3).
//!
//! The system calls are narrated one statement each, through `common::sys` (the calls
//! several demos make) and [`sys`] (the two only this demo makes).
//!
//! Usage: `cargo run -p socket-demo -- --help`. See also: socket(7), unix(7), tcp(7),
//! cmsg(3), memfd_create(2), and TLPI chapters 56 to 61.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use common::{Error, Result, tr};
use nix::sys::socket::UnixAddr;

pub mod client;
pub mod dgram;
pub mod listen;
pub mod no_framing;
pub mod pass_fd;
pub mod pass_pipe;
pub mod serve;
pub mod sys;
pub mod together;

pub use client::{client, client_raw};
pub use dgram::dgram;
pub use listen::{clean, connect, listen, probe};
pub use no_framing::no_framing;
pub use pass_fd::pass_fd;
pub use serve::{DEFAULT_MAX_CLIENTS, Served, serve, serve_raw, server};
pub use together::together;

/// The largest frame payload a server accepts from a client unless told otherwise.
pub const DEFAULT_MAX: usize = 16 << 20;

/// Where a server listens and a client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix domain stream socket, named by a path in the file system.
    Unix(PathBuf),
    /// A TCP socket: an IPv4 address and a port.
    Tcp(SocketAddrV4),
}

impl Endpoint {
    /// The endpoint the command line names: `--tcp ADDRESS:PORT`, else `--unix PATH`,
    /// else the socket `socket` in the private per-user folder ([`common::paths`]).
    pub fn choose(tcp: Option<SocketAddrV4>, unix: Option<PathBuf>) -> Result<Endpoint> {
        Ok(match (tcp, unix) {
            (Some(addr), _) => Endpoint::Tcp(addr),
            (None, Some(path)) => Endpoint::Unix(path),
            (None, None) => Endpoint::Unix(common::paths::private_dir()?.join("socket")),
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

/// The `sockaddr_un` for `path`; a path longer than `sun_path` (108 bytes) is an error.
fn unix_addr(path: &Path) -> Result<UnixAddr> {
    UnixAddr::new(path).map_err(|e| {
        Error::sys(format!("sockaddr_un for {:?}", path.display()), e).hint(tr!(
            "a Unix socket's path is at most 107 bytes long (unix(7))"
        ))
    })
}
