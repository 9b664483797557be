//! The narrated system calls only passing-demo makes, one function per call, named as
//! in the manual and built like `common::sys` on [`Narrator::call_blocking`]: datagrams
//! to and from a named address, [`sendto`] and [`recvfrom`].
//!
//! Every other call of the lessons is described once, where other demos find it too:
//! the System V and POSIX queue calls in msgq-demo's `sys` (`msgget`, `msgsnd`, `msgrcv`,
//! `msgctl`, `mq_open`, `mq_close`, `mq_unlink`), `sigprocmask` and `sigtimedwait` in
//! signal-demo's, and the rest (`poll`, `fchmod`, `getrlimit`, `setrlimit`, sockets,
//! pipes) in `common::sys`.
//!
//! A call that can wait, or that hands something to another process, prints its line
//! before it starts and its result when it returns.

use std::os::fd::{AsFd, AsRawFd};

use common::narrate::Shown;
use common::sys::ShowAddr;
use common::{Narrator, Result};
use nix::sys::socket::{self, MsgFlags, UnixAddr};

// ---------------------------------------------------------------------------------------
// Datagrams with addresses: sendto(2), recvfrom(2).

/// `sendto(2)`: one datagram to the socket bound at `to`, whoever holds it.
pub fn sendto(n: &Narrator, fd: &impl AsFd, buf: &[u8], to: &UnixAddr) -> Result<usize> {
    let (raw, len) = (fd.as_fd().as_raw_fd(), buf.len());
    n.call_blocking(
        format_args!("sendto({raw}, buf, {len}, 0, {})", to.show()),
        || socket::sendto(raw, buf, to, MsgFlags::empty()),
    )
}

/// What [`recvfrom`] received: the datagram's length and the address it came from.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// Bytes received.
    pub len: usize,
    /// The sender's address, as the kernel reports it (`None` if it reports none).
    pub from: Option<UnixAddr>,
}

impl Shown for Datagram {
    fn shown(&self) -> String {
        match &self.from {
            Some(addr) => format!("{}, from {}", self.len, addr.show()),
            None => format!("{}, from no address", self.len),
        }
    }
}

/// `recvfrom(2)`: one datagram, and the address of the socket that sent it. An unbound
/// sender has no address to report (`{AF_UNIX}`).
pub fn recvfrom(n: &Narrator, fd: &impl AsFd, buf: &mut [u8]) -> Result<Datagram> {
    let (raw, len) = (fd.as_fd().as_raw_fd(), buf.len());
    n.call_blocking(
        format_args!("recvfrom({raw}, buf, {len}, 0, &addr, &addrlen)"),
        || socket::recvfrom::<UnixAddr>(raw, buf).map(|(len, from)| Datagram { len, from }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Narrator {
        Narrator::silent("test")
    }

    #[test]
    fn a_datagram_names_its_sender() {
        let n = quiet();
        let dir = std::env::temp_dir().join(format!("passing-sys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let (a_path, b_path) = (dir.join("a"), dir.join("b"));
        let a = common::sys::socket(&n, socket::AddressFamily::Unix, socket::SockType::Datagram)
            .unwrap();
        let b = common::sys::socket(&n, socket::AddressFamily::Unix, socket::SockType::Datagram)
            .unwrap();
        common::sys::bind(&n, &a, &UnixAddr::new(&a_path).unwrap()).unwrap();
        common::sys::bind(&n, &b, &UnixAddr::new(&b_path).unwrap()).unwrap();
        sendto(&n, &a, b"hi", &UnixAddr::new(&b_path).unwrap()).unwrap();
        let mut buf = [0u8; 8];
        let got = recvfrom(&n, &b, &mut buf).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got.len, 2);
        assert_eq!(
            got.from.and_then(|f| f.path().map(|p| p.to_path_buf())),
            Some(a_path)
        );
    }
}
