//! The narrated system calls of message queues, one function per call, named as in the
//! manual: System V's [`ftok`], [`msgget`], [`msgsnd`], [`msgrcv`] (and
//! [`msgrcv_nowait`], which passing-demo's non-blocking receiver makes), [`msgctl_stat`],
//! [`msgctl_set_qbytes`] and [`msgctl_rmid`], and POSIX's [`mq_open`], [`mq_send`],
//! [`mq_timedsend`], [`mq_receive`], [`mq_getattr`], [`mq_setattr`], [`mq_close`] and
//! [`mq_unlink`].
//!
//! Each builds its `strace`-style line from its typed arguments, as `common::sys` does
//! (`msgsnd(3, {mtype=1, ...}, 80, 0) = 0`), and returns an error that names the call;
//! the calls themselves are [`crate::sysv`]'s (where the `unsafe` is) and nix's.
//!
//! The calls that wait for the other process (`msgsnd` on a full queue, `msgrcv` on an
//! empty one, `mq_send`, `mq_receive`) are narrated before they block and when they
//! return, and take a [`Patience`]: while they wait, the role's
//! [`common::process::Ticker`] interrupts them every so often, the patience checks that
//! the peer still lives, and the call is made again (see [`process::patiently`]).

use std::fmt;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use common::narrate::Shown;
use common::process::{self, Patience};
use common::sys::HintOn;
use common::{Narrator, Result, tr};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT};
use nix::sys::stat::Mode;

use crate::sysv::{self, Key, Queue, Status};

pub use common::sysv::{Get, ftok, key_shown};

impl Shown for Queue {
    /// msgget returns the queue identifier.
    fn shown(&self) -> String {
        self.id().to_string()
    }
}

/// `msgget(2)`: the queue for `key`, existing or new.
pub fn msgget(n: &Narrator, key: Key, how: Get) -> Result<Queue> {
    let (shown, flags) = how.flags();
    n.call(format_args!("msgget({}, {shown})", key_shown(key)), || {
        sysv::msgget(key, flags)
    })
}

/// Whether a send or receive waits (`0`) or fails at once (`IPC_NOWAIT`).
fn msgflg(nowait: bool) -> &'static str {
    if nowait { "IPC_NOWAIT" } else { "0" }
}

/// `msgsnd(2)`: adds a message of type `mtype` carrying `text`. On a full queue, it
/// waits for room (while `patience` finds the consumer alive), or with `nowait`
/// (IPC_NOWAIT) fails at once with EAGAIN.
pub fn msgsnd(
    n: &Narrator,
    q: &mut Queue,
    mtype: i64,
    text: &[u8],
    nowait: bool,
    patience: &mut Patience<'_>,
) -> Result<()> {
    let (id, len, flags) = (q.id(), text.len(), msgflg(nowait));
    let desc = format_args!("msgsnd({id}, {{mtype={mtype}, ...}}, {len}, {flags})");
    process::patiently(n, desc, patience, || q.msgsnd(mtype, text, nowait))
}

/// What one `msgrcv` took: its type and its length (the text stays in the queue's
/// buffer, [`Queue::text`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The message's type.
    pub mtype: i64,
    /// The length of its text.
    pub len: usize,
}

impl Shown for Received {
    fn shown(&self) -> String {
        format!("{}   (mtype={})", self.len, self.mtype)
    }
}

/// `msgrcv(2)`: takes the first message chosen by `msgtyp` (0: any; N > 0: type N;
/// N < 0: the lowest type up to |N|), of at most `max` bytes. On a queue with no
/// such message, it waits (while `patience` finds the producer alive).
pub fn msgrcv(
    n: &Narrator,
    q: &mut Queue,
    msgtyp: i64,
    max: usize,
    patience: &mut Patience<'_>,
) -> Result<Received> {
    let id = q.id();
    let desc = format_args!("msgrcv({id}, buf, {max}, {msgtyp}, 0)");
    process::patiently(n, desc, patience, || {
        q.msgrcv(msgtyp, max, false)
            .map(|(mtype, len)| Received { mtype, len })
    })
}

/// `msgrcv(2)` with IPC_NOWAIT: takes the first message chosen by `msgtyp`, as
/// [`msgrcv`] does, or fails at once with ENOMSG (not EAGAIN, msgrcv(2)) when the queue
/// holds no such message. It never waits, so it is narrated once, when it returns.
pub fn msgrcv_nowait(n: &Narrator, q: &mut Queue, msgtyp: i64, max: usize) -> Result<Received> {
    let id = q.id();
    n.call(
        format_args!("msgrcv({id}, buf, {max}, {msgtyp}, {})", msgflg(true)),
        || {
            q.msgrcv(msgtyp, max, true)
                .map(|(mtype, len)| Received { mtype, len })
        },
    )
}

impl Shown for Status {
    fn shown(&self) -> String {
        "0".into()
    }
}

/// `msgctl(id, IPC_STAT, &ds)`: what the kernel knows about the queue.
pub fn msgctl_stat(n: &Narrator, id: libc::c_int) -> Result<Status> {
    n.call(msgctl_stat_call(id), || sysv::stat(id))
}

/// The line of [`msgctl_stat`], for an error about what it found (a stranger's queue, a
/// queue in use).
pub fn msgctl_stat_call(id: libc::c_int) -> String {
    format!("msgctl({id}, IPC_STAT, &ds)")
}

/// `msgctl(id, IPC_SET, &ds)` of `msg_qbytes`: how many bytes of text the queue may
/// hold. Only root may raise it above /proc/sys/kernel/msgmnb.
pub fn msgctl_set_qbytes(n: &Narrator, q: &Queue, bytes: u64) -> Result<()> {
    n.call(
        format_args!("msgctl({}, IPC_SET, {{msg_qbytes={bytes}}})", q.id()),
        || q.set_capacity(bytes),
    )
}

/// `msgctl(id, IPC_RMID, NULL)`: removes the queue at once; processes waiting in msgsnd
/// or msgrcv on it wake up with EIDRM.
pub fn msgctl_rmid(n: &Narrator, id: libc::c_int) -> Result<()> {
    n.call(format_args!("msgctl({id}, IPC_RMID, NULL)"), || {
        sysv::msgctl_rmid(id)
    })
}

// ---------------------------------------------------------------------------------------
// POSIX queues (mq_overview(7)).

/// A POSIX queue descriptor as a number: on Linux it is a file descriptor.
fn raw(mq: &MqdT) -> i32 {
    mq.as_fd().as_raw_fd()
}

/// A buffer as strace shows it: its text in quotes when it is short and printable (the
/// notes), else `buf`.
fn shown_buf(buf: &[u8]) -> String {
    match std::str::from_utf8(buf) {
        Ok(text) if text.len() <= 32 && text.chars().all(|c| c.is_ascii_graphic() || c == ' ') => {
            format!("{text:?}")
        }
        _ => "buf".into(),
    }
}

/// How `mq_open` opens its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// `O_CREAT|O_EXCL|O_RDWR, 0600` with room for `capacity` messages of `msgsize` bytes.
    New {
        /// `mq_maxmsg`.
        capacity: i64,
        /// `mq_msgsize`.
        msgsize: i64,
    },
    /// `O_RDONLY`: only to look (its owner, its attributes); changes nothing.
    ReadOnly,
}

/// `mq_open(3)`: the queue `name`, new or existing.
pub fn mq_open(n: &Narrator, name: &str, how: Open) -> Result<MqdT> {
    match how {
        Open::New { capacity, msgsize } => {
            let attr = MqAttr::new(0, capacity, msgsize, 0);
            n.call(
                format_args!(
                    "mq_open({name:?}, O_CREAT|O_EXCL|O_RDWR, 0600, \
                     {{mq_maxmsg={capacity}, mq_msgsize={msgsize}}})"
                ),
                || {
                    nix::mqueue::mq_open(
                        name,
                        MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR,
                        Mode::S_IRUSR | Mode::S_IWUSR,
                        Some(&attr),
                    )
                },
            )
            // The kernel says EMFILE also when the new queue would take this user past
            // RLIMIT_MSGQUEUE, the bytes all of its open queues may hold (mq_open(3),
            // mq_overview(7)).
            .hint_on(
                Errno::EMFILE,
                tr!(
                    "the queues this user has open may already hold all that RLIMIT_MSGQUEUE allows (ulimit -q, 819200 bytes by default): close or remove some (ls /dev/mqueue), or ask for fewer or smaller messages"
                ),
            )
        }
        Open::ReadOnly => n.call(format_args!("mq_open({name:?}, O_RDONLY)"), || {
            nix::mqueue::mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None)
        }),
    }
}

/// `mq_send(3)`: adds `buf` with `priority`. On a full queue it waits for room (while
/// `patience` finds the consumer alive), unless the queue is O_NONBLOCK: then EAGAIN.
pub fn mq_send(
    n: &Narrator,
    mq: &MqdT,
    buf: &[u8],
    priority: u32,
    patience: &mut Patience<'_>,
) -> Result<()> {
    let (fd, shown, len) = (raw(mq), shown_buf(buf), buf.len());
    let desc = format_args!("mq_send({fd}, {shown}, {len}, {priority})");
    process::patiently(n, desc, patience, || {
        nix::mqueue::mq_send(mq, buf, priority)
    })
}

/// `mq_timedsend(3)`, which nix does not wrap: like `mq_send`, but on a full queue it
/// gives up with ETIMEDOUT at an absolute time on CLOCK_REALTIME, here `timeout` from
/// now.
pub fn mq_timedsend(
    n: &Narrator,
    mq: &MqdT,
    buf: &[u8],
    priority: u32,
    timeout: Duration,
) -> Result<()> {
    n.call_blocking(
        format_args!(
            "mq_timedsend({}, {}, {}, {priority}, {timeout:?} from now)",
            raw(mq),
            shown_buf(buf),
            buf.len()
        ),
        || {
            // An absolute deadline, taken once: a call that a signal interrupts (EINTR, the
            // role's ticker) is simply made again, and still ends at the same moment.
            let deadline = common::timing::realtime_deadline(timeout)?;
            loop {
                // SAFETY: `buf` and `deadline` are valid for the call; the descriptor is
                // an open message queue, borrowed from `mq`.
                let r = Errno::result(unsafe {
                    libc::mq_timedsend(raw(mq), buf.as_ptr().cast(), buf.len(), priority, &deadline)
                });
                match r {
                    Err(Errno::EINTR) => continue,
                    other => return other.map(drop),
                }
            }
        },
    )
}

/// What `mq_receive` took: its length and its priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The message's length.
    pub len: usize,
    /// Its priority.
    pub priority: u32,
}

impl Shown for Taken {
    fn shown(&self) -> String {
        format!("{}   (priority {})", self.len, self.priority)
    }
}

/// `mq_receive(3)`: takes the oldest message of the highest priority into `buf` (which
/// must hold `mq_msgsize` bytes). On an empty queue it waits (while `patience` finds the
/// producer alive).
pub fn mq_receive(
    n: &Narrator,
    mq: &MqdT,
    buf: &mut [u8],
    patience: &mut Patience<'_>,
) -> Result<Taken> {
    let (fd, len) = (raw(mq), buf.len());
    let desc = format_args!("mq_receive({fd}, buf, {len}, &prio)");
    process::patiently(n, desc, patience, || {
        let mut priority = 0;
        nix::mqueue::mq_receive(mq, buf, &mut priority).map(|len| Taken { len, priority })
    })
}

/// What `mq_getattr` says, after ` = 0`.
#[derive(Debug, Clone, Copy)]
pub struct Attributes(pub MqAttr);

impl Shown for Attributes {
    fn shown(&self) -> String {
        format!(
            "0   {{mq_maxmsg={}, mq_msgsize={}, mq_curmsgs={}}}",
            self.0.maxmsg(),
            self.0.msgsize(),
            self.0.curmsgs()
        )
    }
}

impl fmt::Display for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.shown())
    }
}

/// `mq_getattr(3)`: the queue's size, its message size and how many messages it holds.
pub fn mq_getattr(n: &Narrator, mq: &MqdT) -> Result<Attributes> {
    n.call(format_args!("mq_getattr({}, &attr)", raw(mq)), || {
        nix::mqueue::mq_getattr(mq).map(Attributes)
    })
}

/// `mq_setattr(3)` of `mq_flags`: O_NONBLOCK (a send to a full queue fails at once with
/// EAGAIN) or 0 (it waits).
pub fn mq_setattr(n: &Narrator, mq: &MqdT, nonblock: bool) -> Result<()> {
    let flags = if nonblock { "O_NONBLOCK" } else { "0" };
    n.call(
        format_args!("mq_setattr({}, {{mq_flags={flags}}}, NULL)", raw(mq)),
        || {
            if nonblock {
                nix::mqueue::mq_set_nonblock(mq).map(drop)
            } else {
                nix::mqueue::mq_remove_nonblock(mq).map(drop)
            }
        },
    )
}

/// `mq_close(3)`. (An `MqdT` does not close itself when dropped.)
pub fn mq_close(n: &Narrator, mq: MqdT) -> Result<()> {
    n.call(format_args!("mq_close({})", raw(&mq)), || {
        nix::mqueue::mq_close(mq)
    })
}

/// `mq_unlink(3)`: removes the queue's name; the queue goes when the last descriptor to
/// it closes.
pub fn mq_unlink(n: &Narrator, name: &str) -> Result<()> {
    n.call(format_args!("mq_unlink({name:?})"), || {
        nix::mqueue::mq_unlink(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_printable_buffers_are_shown_and_others_are_buf() {
        assert_eq!(shown_buf(b"middle"), "\"middle\"");
        assert_eq!(shown_buf(&[0, 1, 2]), "buf");
        assert_eq!(shown_buf(&[b'x'; 64]), "buf");
        assert_eq!(key_shown(0x7100_0001), "0x71000001");
    }

    #[test]
    fn a_receive_with_ipc_nowait_on_an_empty_queue_fails_at_once_with_enomsg() {
        use common::HintOn;
        let n = Narrator::silent("test");
        let mut q = sysv::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600).unwrap();
        let id = q.id();
        let err = msgrcv_nowait(&n, &mut q, 0, 16)
            .hint_on(Errno::ENOMSG, "empty")
            .unwrap_err();
        sysv::msgctl_rmid(id).unwrap();
        assert_eq!(err.errno(), Some(Errno::ENOMSG));
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("msgrcv({id}, buf, 16, 0, IPC_NOWAIT) failed")),
            "{text}"
        );
        assert!(text.ends_with("hint: empty"), "{text}");
    }
}
