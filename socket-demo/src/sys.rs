//! The system calls only socket-demo makes, narrated the way `common::sys` narrates the
//! shared ones: one function per call, named as in section 2 of the manual, each building
//! its `strace`-style line from its typed arguments.
//!
//! - [`getsockname`]: the address the kernel gave a socket (the port of `bind` to port 0);
//! - [`getpeername`]: who is at the other end of a connection;
//! - [`getppid`]: who this process's parent is (is a peer my child?);
//! - [`readlink`]: what a descriptor is, as `/proc/self/fd` names it (`pipe:[INODE]`).
//!
//! See also: getsockname(2), getpeername(2), unix(7) ("Address format").

use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd};

use common::narrate::Shown;
use common::sys::ShowAddr;
use common::{Error, Narrator, Result, tr};
use nix::sys::socket::{self, SockaddrIn, SockaddrLike, SockaddrStorage};

/// The address a call wrote into its `sockaddr` argument, shown after the call's 0.
#[derive(Debug)]
pub struct Address(pub SockaddrStorage);

impl Shown for Address {
    fn shown(&self) -> String {
        let shown = if let Some(sin) = self.0.as_sockaddr_in() {
            sin.show()
        } else if let Some(unix) = self.0.as_unix_addr() {
            unix.show()
        } else {
            format!("{:?}", self.0.family())
        };
        format!("0 ({shown})")
    }
}

/// `getsockname(2)` on a TCP socket: the address and port it is bound to. After `bind` to
/// port 0, this is how a server learns which free port the kernel chose.
pub fn getsockname(n: &Narrator, fd: &impl AsFd) -> Result<SocketAddrV4> {
    let raw = fd.as_fd().as_raw_fd();
    let bound = n.call(format_args!("getsockname({raw})"), || {
        socket::getsockname::<SockaddrStorage>(raw).map(Address)
    })?;
    let sin: &SockaddrIn = bound.0.as_sockaddr_in().ok_or_else(|| {
        Error::bad_data(
            format!("getsockname({raw})"),
            tr!("the socket is not an IPv4 socket"),
        )
    })?;
    Ok(SocketAddrV4::new(sin.ip(), sin.port()))
}

/// `getpeername(2)`: the address of the socket at the other end of a connection: a TCP
/// client's address and port, a Unix client's name (most have none, `{AF_UNIX}`; a
/// [`crate::probe`] has an abstract one).
pub fn getpeername(n: &Narrator, fd: &impl AsFd) -> Result<SockaddrStorage> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(format_args!("getpeername({raw})"), || {
        socket::getpeername::<SockaddrStorage>(raw).map(Address)
    })
    .map(|a| a.0)
}

/// A path a call returned, shown in quotes as strace shows it.
#[derive(Debug)]
pub struct Link(pub std::path::PathBuf);

impl Shown for Link {
    fn shown(&self) -> String {
        format!("{:?}", self.0.display().to_string())
    }
}

/// `getppid(2)`: the pid of this process's parent. It never fails.
pub fn getppid(n: &Narrator) -> i32 {
    n.call("getppid()", || Ok(nix::unistd::getppid().as_raw()))
        .unwrap_or_default()
}

/// `readlink(2)` of `/proc/self/fd/FD`: what the descriptor `fd` refers to; for a pipe,
/// `pipe:[INODE]`, the same inode in every process that holds an end of the same pipe
/// (proc(5)).
pub fn readlink(n: &Narrator, fd: &impl AsFd) -> Result<std::path::PathBuf> {
    let path = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    n.call(format_args!("readlink({path:?})"), || {
        nix::fcntl::readlink(path.as_str()).map(|target| Link(target.into()))
    })
    .map(|link| link.0)
}
