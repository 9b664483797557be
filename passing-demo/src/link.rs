//! The link of [`crate::sync`]: one sender, one receiver, and what each side's calls do
//! in each mode.
//!
//! Three links, chosen with `--via`:
//!
//! - `socket`: a Unix datagram socket pair. It has all three modes natively: a call
//!   waits (blocking), fails at once with EAGAIN (`O_NONBLOCK`), or waits at most a
//!   time-out and then fails with EAGAIN (`SO_SNDTIMEO`, `SO_RCVTIMEO`, socket(7)). Its
//!   capacity is the sender's send buffer, SO_SNDBUF.
//! - `pipe`: blocking or `O_NONBLOCK`; a pipe has no time-out of its own. Its capacity is
//!   set with `fcntl(F_SETPIPE_SZ)`, in whole pages.
//! - `queue`: a System V queue, blocking or IPC_NOWAIT, no time-out either (msgop(2)).
//!   Its capacity is `msg_qbytes`, set with `msgctl(IPC_SET)`. It has no descriptor, so a
//!   non-blocking user cannot ask `poll(2)` when to try again: it can only try later.
//!
//! A non-blocking call that fails is followed by `poll(2)`, which waits until a retry can
//! succeed: non-blocking calls move the waiting somewhere else, they do not remove it.

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::time::Duration;

use common::cleanup::Guard;
use common::sys::Opt;
use common::{Error, HintOn, Narrator, Result, say, tr};
use msgq_demo::sysv;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::sys::socket::SockType;

use crate::sys::{self, Ready};
use crate::{Names, Purpose};

/// Which link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// A Unix datagram socket pair (all three modes).
    Socket,
    /// A pipe (blocking or non-blocking; capacity with F_SETPIPE_SZ).
    Pipe,
    /// A System V message queue (blocking or non-blocking; capacity with msg_qbytes).
    Queue,
}

impl Via {
    /// The word in the summary line.
    pub fn word(self) -> &'static str {
        match self {
            Via::Socket => "socket",
            Via::Pipe => "pipe",
            Via::Queue => "queue",
        }
    }
}

/// How one side calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The call waits until it can go through.
    Block,
    /// The call fails at once with EAGAIN when it cannot go through.
    Nonblock,
    /// The call waits at most `--timeout-ms`, then fails.
    Timeout,
}

impl Mode {
    /// The word in the summary line.
    pub fn word(self) -> &'static str {
        match self {
            Mode::Block => "block",
            Mode::Nonblock => "nonblock",
            Mode::Timeout => "timeout",
        }
    }
}

/// What one attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Try {
    /// It went through, with this many bytes (0 on a receive: no more will come).
    Done(usize),
    /// It could not go through at once: EAGAIN (ENOMSG for a System V receive).
    Again,
    /// It waited for its time-out and could not go through.
    TimedOut,
}

/// Data messages and the empty end message have this type on a queue.
const MTYPE: i64 = 1;

/// How long a non-blocking System V user waits before it tries again: it has nothing
/// to wait on.
const RETRY_AFTER: Duration = Duration::from_millis(5);

/// The link as the observer makes it, before it forks the two sides.
pub struct Link {
    via: Via,
    /// The sender's descriptor (socket or pipe write end), until a side takes it.
    send_end: RefCell<Option<OwnedFd>>,
    /// The receiver's descriptor (socket or pipe read end).
    recv_end: RefCell<Option<OwnedFd>>,
    /// The queue's key, for the children's `msgget`.
    key: sysv::Key,
    /// Bytes the link holds, as the kernel reports it (pipe size, msg_qbytes); 0 for the
    /// socket pair, whose limit is a send buffer shared with bookkeeping.
    capacity: u64,
    _remove: Option<Guard>,
}

impl Link {
    /// Makes the link, with `capacity` bytes if asked (pipe and queue only).
    pub fn create(n: &Narrator, names: &Names, via: Via, capacity: Option<usize>) -> Result<Link> {
        let mut link = Link {
            via,
            send_end: RefCell::new(None),
            recv_end: RefCell::new(None),
            key: names.key(Purpose::Link),
            capacity: 0,
            _remove: None,
        };
        match via {
            Via::Socket => {
                let (a, b) = common::sys::socketpair(n, SockType::Datagram)?;
                say!(
                    n,
                    "a socket pair: what one end sends, the other receives; the sender's send buffer (SO_SNDBUF) is the link's capacity"
                );
                *link.send_end.borrow_mut() = Some(a);
                *link.recv_end.borrow_mut() = Some(b);
            }
            Via::Pipe => {
                let (r, w) = common::sys::pipe2(n, OFlag::O_CLOEXEC)?;
                if let Some(bytes) = capacity {
                    let bytes = i32::try_from(bytes).unwrap_or(i32::MAX);
                    common::sys::fcntl(n, &w, FcntlArg::F_SETPIPE_SZ(bytes)).hint_on(
                        Errno::EPERM,
                        tr!("only a privileged process may go above /proc/sys/fs/pipe-max-size"),
                    )?;
                }
                let size = common::sys::fcntl(n, &w, FcntlArg::F_GETPIPE_SZ)?;
                link.capacity = u64::try_from(size).unwrap_or(0);
                say!(
                    n,
                    "the pipe holds {size} bytes: the kernel rounds a size up to whole pages",
                    size
                );
                *link.send_end.borrow_mut() = Some(w);
                *link.recv_end.borrow_mut() = Some(r);
            }
            Via::Queue => {
                let q = sys::msgget_create(n, link.key).hint_on(
                    Errno::EEXIST,
                    tr!("a queue with this key exists: another run's, or one a killed run left: `passing-demo clean`"),
                )?;
                let (id, quiet) = (q.id(), n.clone());
                link._remove = Some(Guard::new(move || {
                    let _ = sys::msgctl_rmid(&quiet, id);
                }));
                if let Some(bytes) = capacity {
                    sys::msgctl_set_qbytes(n, &q, bytes as u64).hint_on(
                        Errno::EPERM,
                        tr!("only a privileged process may go above /proc/sys/kernel/msgmnb"),
                    )?;
                }
                link.capacity = sys::msgctl_stat(n, &q)?.capacity;
                let capacity = link.capacity;
                say!(
                    n,
                    "the queue holds {capacity} bytes of messages (msg_qbytes)",
                    capacity
                );
            }
        }
        Ok(link)
    }

    /// How many messages of `frame_len` bytes the kernel's rules say fit, where they say
    /// it exactly: a pipe fills page by page, each page with whole messages (a message
    /// of at most PIPE_BUF bytes is never split, pipe(7)); a queue holds messages while
    /// their bytes fit in msg_qbytes (msgsnd(2)).
    pub fn expected(&self, frame_len: usize) -> Option<u64> {
        let frame = u64::try_from(frame_len).ok().filter(|&f| f > 0)?;
        match self.via {
            Via::Socket => None,
            Via::Pipe => {
                let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
                    .ok()
                    .flatten()
                    .and_then(|p| u64::try_from(p).ok())
                    .filter(|&p| p > 0)?;
                Some(self.capacity / page * (page / frame))
            }
            Via::Queue => Some(self.capacity / frame),
        }
    }

    /// In the sender, after the fork: its end of the link, in `mode`.
    pub fn sender(&self, me: &Narrator, mode: Mode, timeout: Duration) -> Result<End> {
        self.end(me, Side::Send, mode, timeout)
    }

    /// In the receiver, after the fork: its end of the link, in `mode`.
    pub fn receiver(&self, me: &Narrator, mode: Mode, timeout: Duration) -> Result<End> {
        self.end(me, Side::Receive, mode, timeout)
    }

    fn end(&self, me: &Narrator, side: Side, mode: Mode, timeout: Duration) -> Result<End> {
        let (mine, other) = match side {
            Side::Send => (&self.send_end, &self.recv_end),
            Side::Receive => (&self.recv_end, &self.send_end),
        };
        if let Some(fd) = other.borrow_mut().take() {
            // For a pipe this matters: the receiver sees end of file only when every
            // copy of the write end, its own inherited one included, is closed.
            common::sys::close(me, fd)?;
        }
        let kind = match mine.borrow_mut().take() {
            Some(fd) => Kind::Fd(fd),
            None => Kind::Queue(sys::msgget(me, self.key)?),
        };
        let mut end = End {
            kind,
            socket: self.via == Via::Socket,
            mode,
            nowait: false,
            told_retry: false,
        };
        match mode {
            Mode::Block => {}
            Mode::Nonblock => end.set_nonblocking(me, true)?,
            Mode::Timeout => {
                let Kind::Fd(fd) = &end.kind else {
                    return Err(Error::usage(tr!("a System V queue has no time-out")));
                };
                let opt = match side {
                    Side::Send => Opt::SndTimeo(timeout),
                    Side::Receive => Opt::RcvTimeo(timeout),
                };
                common::sys::setsockopt(me, fd, opt)?;
            }
        }
        Ok(end)
    }

    /// In the observer, after both forks: closes its copies of the descriptors.
    pub fn close_ends(&self, n: &Narrator) -> Result<()> {
        for end in [&self.send_end, &self.recv_end] {
            if let Some(fd) = end.borrow_mut().take() {
                common::sys::close(n, fd)?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Send,
    Receive,
}

enum Kind {
    Fd(OwnedFd),
    Queue(sysv::Queue),
}

/// One side's end of the link.
pub struct End {
    kind: Kind,
    socket: bool,
    mode: Mode,
    /// IPC_NOWAIT on every queue call.
    nowait: bool,
    told_retry: bool,
}

impl End {
    /// Turns non-blocking calls on or off: `fcntl(F_SETFL, O_NONBLOCK)` on a
    /// descriptor; on a queue, IPC_NOWAIT in each call from now on.
    pub fn set_nonblocking(&mut self, me: &Narrator, on: bool) -> Result<()> {
        match &self.kind {
            Kind::Fd(fd) => {
                let flags = if on {
                    OFlag::O_NONBLOCK
                } else {
                    OFlag::empty()
                };
                common::sys::fcntl(me, fd, FcntlArg::F_SETFL(flags)).map(drop)
            }
            Kind::Queue(_) => {
                self.nowait = on;
                Ok(())
            }
        }
    }

    /// EAGAIN means "not now" in non-blocking mode, and "not in time" after a time-out.
    fn again(&self) -> Try {
        if self.mode == Mode::Timeout {
            Try::TimedOut
        } else {
            Try::Again
        }
    }

    /// One send of `frame`.
    pub fn send(&mut self, me: &Narrator, frame: &[u8]) -> Result<Try> {
        let again = self.again();
        let sent = match &mut self.kind {
            Kind::Fd(fd) if self.socket => common::sys::send(me, fd, frame),
            Kind::Fd(fd) => common::sys::write(me, fd, frame),
            Kind::Queue(q) => sys::msgsnd(me, q, MTYPE, frame, self.nowait).map(|()| frame.len()),
        };
        match sent {
            Ok(len) if len == frame.len() => Ok(Try::Done(len)),
            // A write of at most PIPE_BUF bytes is all or nothing (pipe(7)).
            Ok(_) => Err(Error::bad_data("write", tr!("a message was cut short"))),
            Err(e) if e.errno() == Some(Errno::EAGAIN) => Ok(again),
            Err(e) => Err(e),
        }
    }

    /// One receive into `buf`: `Done(0)` when no more will come (the empty end message,
    /// or end of file on a pipe).
    pub fn recv(&mut self, me: &Narrator, buf: &mut [u8]) -> Result<Try> {
        let again = self.again();
        let got = match &mut self.kind {
            Kind::Fd(fd) if self.socket => common::sys::recv(me, fd, buf),
            Kind::Fd(fd) => common::sys::read(me, fd, buf),
            Kind::Queue(q) => match sys::msgrcv(me, q, MTYPE, buf.len(), self.nowait) {
                Ok(taken) => {
                    let text = q.text(taken.len);
                    let len = text.len().min(buf.len());
                    buf[..len].copy_from_slice(&text[..len]);
                    Ok(len)
                }
                // A System V receive finds nothing with ENOMSG, not EAGAIN (msgrcv(2)).
                Err(e) if e.errno() == Some(Errno::ENOMSG) => return Ok(Try::Again),
                Err(e) => Err(e),
            },
        };
        match got {
            Ok(len) => Ok(Try::Done(len)),
            Err(e) if e.errno() == Some(Errno::EAGAIN) => Ok(again),
            Err(e) => Err(e),
        }
    }

    /// After a non-blocking call failed: waits until a retry can succeed. A descriptor
    /// asks `poll(2)`; a System V queue has none, so it can only wait a little and retry.
    pub fn wait_ready(&mut self, me: &Narrator, want: Ready) -> Result<()> {
        match &self.kind {
            Kind::Fd(fd) => sys::poll(me, fd, want, None).map(drop),
            Kind::Queue(_) => {
                if !self.told_retry {
                    say!(
                        me,
                        "a System V queue has no descriptor for poll(2): a non-blocking user can only try again later, here every few milliseconds"
                    );
                    self.told_retry = true;
                }
                std::thread::sleep(RETRY_AFTER);
                Ok(())
            }
        }
    }

    /// Tells the receiver that no more will come: an empty message, or for a pipe,
    /// closing the write end (the receiver's read then returns 0).
    pub fn finish(mut self, me: &Narrator) -> Result<()> {
        if let Kind::Fd(fd) = self.kind {
            if !self.socket {
                return common::sys::close(me, fd);
            }
            self.kind = Kind::Fd(fd);
        }
        loop {
            match self.send(me, &[])? {
                Try::Done(_) => return Ok(()),
                Try::Again => self.wait_ready(me, Ready::Write)?,
                Try::TimedOut => {}
            }
        }
    }
}
