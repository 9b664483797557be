//! The mailbox as a FIFO, named by a path.
//!
//! Everyone opens the FIFO by its path. Messages are frames of one size, each written
//! with one `write(2)` of at most PIPE_BUF bytes, which the kernel keeps whole among
//! other writers' (pipe(7)); a receiver reads exactly one frame's bytes, so it takes
//! exactly one message, never half of one.
//!
//! Who owns it: the path belongs to its creator, and its mode decides who may open it.
//! When it goes away: the *name* stays until it is unlinked, but the pipe behind it
//! exists only while some process has it open. The moment the last process closes it,
//! whatever is still in it is gone. That is also how the receivers learn that no more
//! messages will come: a read returns 0 (end of file) once no process has it open for
//! writing. The observer holds it open for writing itself until every sender is done
//! and every receiver has opened it, so that a receiver never sees end of file between
//! two senders, and never opens it after the last writer is gone (an `open` for reading
//! then waits for a writer that will not come, fifo(7)).

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use common::cleanup::{self, Guard};
use common::owner::{Kind, fstat_ours, lstat_ours};
use common::{Error, HintOn, Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::{Mailbox, Plan};
use crate::Names;

/// The observer's side: the path, and its own descriptor that keeps the FIFO open.
pub struct Fifo {
    path: PathBuf,
    /// The observer's read-write descriptor. Every forked child inherits a copy, which it
    /// must close: while any copy is open, no receiver ever sees end of file.
    keep_alive: RefCell<Option<OwnedFd>>,
    remove: Option<Guard>,
}

impl Fifo {
    /// In a child: closes the copy of the observer's descriptor that came with fork.
    fn drop_inherited(&self, me: &Narrator) -> Result<()> {
        if let Some(fd) = self.keep_alive.borrow_mut().take() {
            say!(
                me,
                "fork gave me a copy of the observer's descriptor for the FIFO; I close it, or the receivers would never see end of file"
            );
            common::sys::close(me, fd)?;
        }
        Ok(())
    }

    /// `open(2)` by the path alone, never through a symbolic link, then a check that
    /// it is our FIFO.
    fn open(&self, me: &Narrator, access: OFlag) -> Result<OwnedFd> {
        self.drop_inherited(me)?;
        let flags = access | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = common::sys::open(me, &self.path, flags, Mode::empty())?;
        fstat_ours(&fd, Kind::Fifo)?;
        say!(me, "found the mailbox by its path alone");
        Ok(fd)
    }
}

impl Mailbox for Fifo {
    type Sender = OwnedFd;
    type Receiver = OwnedFd;

    fn create(n: &Narrator, names: &Names, _plan: &Plan) -> Result<Fifo> {
        let path = names.fifo()?;
        common::sys::mkfifo(n, &path, Mode::S_IRUSR | Mode::S_IWUSR).hint_on(
            Errno::EEXIST,
            tr!("something is at this path already: another run's FIFO, or one a killed run left: `passing-demo clean`"),
        )?;
        let remove = cleanup::unlink_on_drop(n, &path);
        if let Some(st) = lstat_ours(&path, Kind::Fifo)? {
            let (uid, mode) = (st.st_uid, format!("{:04o}", st.st_mode & 0o777));
            say!(
                n,
                "the mailbox's name is the path; the FIFO belongs to uid {uid}, mode {mode} (ls -l shows a p)",
                uid,
                mode
            );
        }
        let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let keep_alive = common::sys::open(n, &path, flags, Mode::empty())?;
        say!(
            n,
            "I hold the FIFO open for writing myself (Linux opens a FIFO O_RDWR at once, fifo(7)), so that no receiver sees end of file before every sender is done"
        );
        Ok(Fifo {
            path,
            keep_alive: RefCell::new(Some(keep_alive)),
            remove: Some(remove),
        })
    }

    fn open_sender(&self, me: &Narrator) -> Result<OwnedFd> {
        self.open(me, OFlag::O_WRONLY)
    }

    fn open_receiver(&self, me: &Narrator) -> Result<OwnedFd> {
        self.open(me, OFlag::O_RDONLY)
    }

    fn put(me: &Narrator, fd: &mut OwnedFd, frame: &[u8]) -> Result<()> {
        let wrote = common::sys::write(me, fd, frame)?;
        if wrote != frame.len() {
            // A write of at most PIPE_BUF bytes is all or nothing (pipe(7)).
            return Err(Error::bad_data("write", tr!("a message was cut short")));
        }
        Ok(())
    }

    fn take(me: &Narrator, fd: &mut OwnedFd, buf: &mut [u8]) -> Result<Option<usize>> {
        match common::sys::read(me, fd, buf)? {
            0 => Ok(None),
            len if len == buf.len() => Ok(Some(len)),
            len => Err(Error::bad_data(
                "read",
                tr!(
                    "{len} bytes: part of a message, though every message was one atomic write",
                    len
                ),
            )),
        }
    }

    fn all_forked(&mut self, _n: &Narrator) -> Result<()> {
        Ok(())
    }

    fn no_more(&mut self, n: &Narrator, _receivers: usize) -> Result<()> {
        if let Some(fd) = self.keep_alive.borrow_mut().take() {
            common::sys::close(n, fd)?;
        }
        say!(
            n,
            "now only the senders hold the FIFO open for writing: when the last has exited, each receiver's read returns 0"
        );
        Ok(())
    }

    fn finish(mut self, n: &Narrator) -> Result<()> {
        if lstat_ours(&self.path, Kind::Fifo)?.is_some() {
            say!(
                n,
                "every process has closed the FIFO: the pipe behind it is gone, with anything left in it; the name stays until it is unlinked"
            );
        }
        // Dropping the guard unlinks the name, narrated.
        drop(self.remove.take());
        Ok(())
    }
}
