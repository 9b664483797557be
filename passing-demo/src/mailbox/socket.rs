//! The mailbox as a datagram socket bound at a path.
//!
//! Senders name the mailbox by its path with `sendto(2)` from sockets of their own that
//! have no name at all. The mailbox itself is the socket bound at the path: the observer
//! binds it and forks the receivers, so that each inherits the very same socket, and each
//! datagram goes to whichever receiver asks first.
//!
//! Who owns it: the path belongs to the user who bound it, and a sender needs write
//! permission on it (unix(7)). When it goes away: when the last process holding the
//! socket closes it, the mailbox and anything queued in it are gone; the path stays
//! behind, a name with nothing to deliver to, and a `sendto` there fails with
//! ECONNREFUSED until someone unlinks it.

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use common::cleanup::{self, Guard};
use common::owner::{Kind, lstat_ours};
use common::{Error, HintOn, Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockType, UnixAddr};

use super::{Mailbox, Plan};
use crate::{Names, sys};

/// The observer's side.
pub struct Socket {
    addr: UnixAddr,
    path: PathBuf,
    /// The bound socket: the mailbox. The receivers inherit it; the observer and the
    /// senders close their copies.
    bound: RefCell<Option<OwnedFd>>,
    remove: Option<Guard>,
}

fn datagram_socket(n: &Narrator) -> Result<OwnedFd> {
    common::sys::socket(n, AddressFamily::Unix, SockType::Datagram)
}

impl Mailbox for Socket {
    type Sender = (OwnedFd, UnixAddr);
    type Receiver = OwnedFd;

    fn create(n: &Narrator, names: &Names, _plan: &Plan) -> Result<Socket> {
        let path = names.mailbox_socket()?;
        let addr = UnixAddr::new(&path)
            .map_err(|e| Error::sys(format!("sockaddr_un({})", path.display()), e))?;
        let sock = datagram_socket(n)?;
        sys::fchmod_0600(n, &sock)?;
        common::sys::bind(n, &sock, &addr).hint_on(
            Errno::EADDRINUSE,
            tr!("something is at this path already: another run's socket, or one a killed run left: `passing-demo clean`"),
        )?;
        let remove = cleanup::unlink_on_drop(n, &path);
        if let Some(st) = lstat_ours(&path, Kind::Socket)? {
            let (uid, mode) = (st.st_uid, format!("{:04o}", st.st_mode & 0o777));
            say!(
                n,
                "the mailbox's name is the path; it belongs to uid {uid}, mode {mode}: a sender needs write permission on it",
                uid,
                mode
            );
        }
        Ok(Socket {
            addr,
            path,
            bound: RefCell::new(Some(sock)),
            remove: Some(remove),
        })
    }

    fn open_sender(&self, me: &Narrator) -> Result<(OwnedFd, UnixAddr)> {
        if let Some(fd) = self.bound.borrow_mut().take() {
            say!(
                me,
                "fork gave me a copy of the mailbox socket; a sender does not receive, so I close it"
            );
            common::sys::close(me, fd)?;
        }
        let sock = datagram_socket(me)?;
        say!(
            me,
            "my socket has no name: I name only the mailbox, by its path"
        );
        Ok((sock, self.addr))
    }

    fn open_receiver(&self, me: &Narrator) -> Result<OwnedFd> {
        say!(
            me,
            "I inherited the mailbox socket from the observer: every receiver holds the same one"
        );
        self.bound
            .borrow_mut()
            .take()
            .ok_or_else(|| Error::bad_data("fork", tr!("the mailbox socket was not inherited")))
    }

    fn put(me: &Narrator, sender: &mut (OwnedFd, UnixAddr), frame: &[u8]) -> Result<()> {
        sys::sendto(me, &sender.0, frame, &sender.1).map(drop)
    }

    fn take(me: &Narrator, fd: &mut OwnedFd, buf: &mut [u8]) -> Result<Option<usize>> {
        match common::sys::recv(me, fd, buf)? {
            0 => Ok(None),
            len => Ok(Some(len)),
        }
    }

    fn all_forked(&mut self, n: &Narrator) -> Result<()> {
        if let Some(fd) = self.bound.borrow_mut().take() {
            common::sys::close(n, fd)?;
        }
        say!(
            n,
            "I closed my copy: the mailbox now lives as long as one receiver holds it"
        );
        Ok(())
    }

    fn no_more(&mut self, n: &Narrator, receivers: usize) -> Result<()> {
        let sock = datagram_socket(n)?;
        for _ in 0..receivers {
            sys::sendto(n, &sock, &[], &self.addr)?;
        }
        common::sys::close(n, sock)
    }

    fn finish(mut self, n: &Narrator) -> Result<()> {
        let sock = datagram_socket(n)?;
        match sys::sendto(n, &sock, &[], &self.addr) {
            Err(e) if e.errno() == Some(Errno::ECONNREFUSED) => say!(
                n,
                "ECONNREFUSED: the receivers have exited and the mailbox with them; the path {path} is only a name now",
                path = self.path.display()
            ),
            Err(e) => return Err(e),
            Ok(_) => {
                return Err(Error::bad_data(
                    "sendto",
                    tr!(
                        "a socket is still bound at the mailbox's path after every receiver exited"
                    ),
                ));
            }
        }
        common::sys::close(n, sock)?;
        // Dropping the guard unlinks the name, narrated.
        drop(self.remove.take());
        Ok(())
    }
}
