//! The narrated system calls of passing-demo that [`common::sys`] does not have, one
//! function per call, named as in the manual and built like `common::sys` on
//! [`Narrator::call`] and [`Narrator::call_blocking`].
//!
//! - System V queues: the calls themselves are msgq-demo's ([`msgq_demo::sysv`], which
//!   holds their `unsafe`); here they only get their narration: [`msgget`],
//!   [`msgget_create`], [`msgsnd`], [`msgrcv`], [`msgctl_stat`], [`msgctl_set_qbytes`],
//!   [`msgctl_rmid`].
//! - Datagrams to and from a named address: [`sendto`], [`recvfrom`], and the mode
//!   of the file a socket is bound at, [`fchmod_0600`].
//! - Waiting for a descriptor: [`poll`].
//! - Signals: [`sigprocmask_block`], and [`sigtimedwait`] over signal-demo's
//!   `wait_signal`.
//! - Limits: [`getrlimit`], [`setrlimit`], and the POSIX queue calls that meet
//!   RLIMIT_MSGQUEUE, [`mq_open`], [`mq_open_existing`], [`mq_close`] and [`mq_unlink`].
//!
//! A call that can wait, or that hands something to another process, prints its line
//! before it starts and its result when it returns.

use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use common::narrate::Shown;
use common::sys::ShowAddr;
use common::{Narrator, Result};
use msgq_demo::sysv::{self, Key, Queue, Status};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT};
use nix::sys::resource::Resource;
use nix::sys::socket::{self, MsgFlags, UnixAddr};
use nix::sys::stat::Mode;

use crate::key_shown;

// ---------------------------------------------------------------------------------------
// System V message queues (svipc(7), msgget(2), msgop(2), msgctl(2)).

/// `msgget(key, IPC_CREAT|IPC_EXCL|0600)`: a new queue for `key`, which must not exist.
pub fn msgget_create(n: &Narrator, key: Key) -> Result<Queue> {
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | 0o600;
    n.call(
        format_args!("msgget({}, IPC_CREAT|IPC_EXCL|0600)", key_shown(key)),
        || sysv::msgget(key, flags),
    )
}

/// `msgget(key, 0)`: the existing queue for `key`, found by its name, the key.
pub fn msgget(n: &Narrator, key: Key) -> Result<Queue> {
    n.call(format_args!("msgget({}, 0)", key_shown(key)), || {
        sysv::msgget(key, 0)
    })
}

fn nowait_flag(nowait: bool) -> &'static str {
    if nowait { "IPC_NOWAIT" } else { "0" }
}

/// `msgsnd(2)`: adds a message of type `mtype` to the queue. It waits while the queue
/// is full, unless `nowait` (IPC_NOWAIT), which fails with EAGAIN at once instead.
pub fn msgsnd(n: &Narrator, q: &mut Queue, mtype: i64, text: &[u8], nowait: bool) -> Result<()> {
    let (id, len) = (q.id(), text.len());
    n.call_blocking(
        format_args!(
            "msgsnd({id}, {{mtype={mtype}, {len} bytes}}, {len}, {})",
            nowait_flag(nowait)
        ),
        || q.msgsnd(mtype, text, nowait),
    )
}

/// What [`msgrcv`] took: the message's type and the length of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// The message's type.
    pub mtype: i64,
    /// Bytes of text (see [`Queue::text`]).
    pub len: usize,
}

impl Shown for Taken {
    fn shown(&self) -> String {
        format!("{} (mtype={})", self.len, self.mtype)
    }
}

/// `msgrcv(2)`: takes the first message `msgtyp` selects (0: any; N > 0: type N), of at
/// most `max` bytes. It waits while there is none, unless `nowait`, which fails with
/// ENOMSG at once instead.
pub fn msgrcv(n: &Narrator, q: &mut Queue, msgtyp: i64, max: usize, nowait: bool) -> Result<Taken> {
    let id = q.id();
    n.call_blocking(
        format_args!(
            "msgrcv({id}, buf, {max}, {msgtyp}, {})",
            nowait_flag(nowait)
        ),
        || {
            q.msgrcv(msgtyp, max, nowait)
                .map(|(mtype, len)| Taken { mtype, len })
        },
    )
}

/// `msgctl(id, IPC_STAT, &ds)`: the queue's owner, size and last users.
pub fn msgctl_stat(n: &Narrator, q: &Queue) -> Result<Status> {
    n.call(format_args!("msgctl({}, IPC_STAT, &ds)", q.id()), || {
        q.stat()
    })
}

/// `msgctl(id, IPC_SET, &ds)` with a new `msg_qbytes`: how many bytes of text the queue
/// holds. Raising it above /proc/sys/kernel/msgmnb needs CAP_SYS_RESOURCE (msgctl(2)).
pub fn msgctl_set_qbytes(n: &Narrator, q: &Queue, bytes: u64) -> Result<()> {
    n.call(
        format_args!("msgctl({}, IPC_SET, {{msg_qbytes={bytes}}})", q.id()),
        || q.set_capacity(bytes),
    )
}

/// `msgctl(id, IPC_RMID, NULL)`: removes the queue at once; a process waiting on it
/// wakes up with EIDRM.
pub fn msgctl_rmid(n: &Narrator, id: libc::c_int) -> Result<()> {
    n.call(format_args!("msgctl({id}, IPC_RMID, NULL)"), || {
        sysv::msgctl_rmid(id)
    })
}

// ---------------------------------------------------------------------------------------
// Datagrams with addresses: sendto(2), recvfrom(2), fchmod(2).

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

/// `fchmod(fd, 0600)` on a socket before `bind(2)`: the file `bind` makes takes the
/// socket's mode (less the umask), so only its owner may then connect or send to it
/// (unix(7): that needs write permission on the file).
pub fn fchmod_0600(n: &Narrator, fd: &impl AsFd) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(format_args!("fchmod({raw}, 0600)"), || {
        nix::sys::stat::fchmod(fd, Mode::S_IRUSR | Mode::S_IWUSR)
    })
}

// ---------------------------------------------------------------------------------------
// Waiting: poll(2).

/// What [`poll`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// POLLIN: something to read (or the other end is gone).
    Read,
    /// POLLOUT: room to write.
    Write,
}

/// The result of [`poll`]: the descriptor is ready, or the time ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled(pub bool);

impl Shown for Polled {
    /// As strace prints it: `1` with the descriptor, or `0 (Timeout)`.
    fn shown(&self) -> String {
        if self.0 {
            "1".into()
        } else {
            "0 (Timeout)".into()
        }
    }
}

/// `poll(2)` on one descriptor: waits until it is ready for `want`, or for `timeout`
/// (`None`: as long as it takes). This is how a program that uses non-blocking calls
/// waits without spinning: it asks the kernel to wake it when a retry can succeed.
pub fn poll(
    n: &Narrator,
    fd: &impl AsFd,
    want: Ready,
    timeout: Option<Duration>,
) -> Result<Polled> {
    let raw = fd.as_fd().as_raw_fd();
    let (events, name) = match want {
        Ready::Read => (libc::POLLIN, "POLLIN"),
        Ready::Write => (libc::POLLOUT, "POLLOUT"),
    };
    let ms: libc::c_int = match timeout {
        Some(t) => libc::c_int::try_from(t.as_millis()).unwrap_or(libc::c_int::MAX),
        None => -1,
    };
    n.call_blocking(
        format_args!("poll([{{fd={raw}, events={name}}}], 1, {ms})"),
        || {
            let mut fds = [libc::pollfd {
                fd: raw,
                events,
                revents: 0,
            }];
            // SAFETY: `fds` is a valid array of one pollfd for the duration of the call,
            // and the descriptor is borrowed, so it stays open.
            let ready = Errno::result(unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) })?;
            // POLLHUP or POLLERR count as ready: the next call reports what happened.
            Ok(Polled(ready > 0))
        },
    )
}

// ---------------------------------------------------------------------------------------
// Limits: getrlimit(2), setrlimit(2); POSIX queues: mq_open(3), mq_unlink(3).

/// A resource limit: the soft value the kernel enforces and the hard ceiling for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The value in force.
    pub soft: u64,
    /// How far the process may raise `soft` without privilege.
    pub hard: u64,
}

impl Limit {
    /// `{rlim_cur=4096, rlim_max=RLIM_INFINITY}`, as strace shows a `struct rlimit`.
    fn show(&self) -> String {
        let show = |v: u64| {
            if v == libc::RLIM_INFINITY {
                "RLIM_INFINITY".to_string()
            } else {
                v.to_string()
            }
        };
        format!(
            "{{rlim_cur={}, rlim_max={}}}",
            show(self.soft),
            show(self.hard)
        )
    }
}

impl Shown for Limit {
    fn shown(&self) -> String {
        format!("0   {}", self.show())
    }
}

fn resource_name(resource: Resource) -> &'static str {
    match resource {
        Resource::RLIMIT_MSGQUEUE => "RLIMIT_MSGQUEUE",
        Resource::RLIMIT_AS => "RLIMIT_AS",
        _ => "RLIMIT_?",
    }
}

/// `getrlimit(2)`.
pub fn getrlimit(n: &Narrator, resource: Resource) -> Result<Limit> {
    n.call(
        format_args!("getrlimit({}, &rlim)", resource_name(resource)),
        || nix::sys::resource::getrlimit(resource).map(|(soft, hard)| Limit { soft, hard }),
    )
}

/// `setrlimit(2)`: changes this process's own limit (and its future children's).
pub fn setrlimit(n: &Narrator, resource: Resource, limit: Limit) -> Result<()> {
    n.call(
        format_args!("setrlimit({}, {})", resource_name(resource), limit.show()),
        || nix::sys::resource::setrlimit(resource, limit.soft, limit.hard),
    )
}

/// `mq_open(name, O_CREAT|O_EXCL|O_RDWR, 0600, {mq_maxmsg, mq_msgsize})`: a new POSIX
/// queue sized for `maxmsg` messages of `msgsize` bytes. The kernel charges its size to
/// the user's RLIMIT_MSGQUEUE when it is created (mq_overview(7)).
pub fn mq_open(n: &Narrator, name: &str, maxmsg: i64, msgsize: i64) -> Result<MqdT> {
    let attr = MqAttr::new(0, maxmsg, msgsize, 0);
    n.call(
        format_args!(
            "mq_open({name:?}, O_CREAT|O_EXCL|O_RDWR, 0600, {{mq_maxmsg={maxmsg}, mq_msgsize={msgsize}}})"
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
}

/// `mq_open(name, O_RDONLY)`: an existing POSIX queue, to look at it.
pub fn mq_open_existing(n: &Narrator, name: &str) -> Result<MqdT> {
    n.call(format_args!("mq_open({name:?}, O_RDONLY)"), || {
        nix::mqueue::mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None)
    })
}

/// `mq_close(3)`.
pub fn mq_close(n: &Narrator, mq: MqdT) -> Result<()> {
    let raw = mq.as_fd().as_raw_fd();
    n.call(format_args!("mq_close({raw})"), || {
        nix::mqueue::mq_close(mq)
    })
}

/// `mq_unlink(3)`: removes the queue's name; the queue goes when the last descriptor
/// to it is closed.
pub fn mq_unlink(n: &Narrator, name: &str) -> Result<()> {
    n.call(format_args!("mq_unlink({name:?})"), || {
        nix::mqueue::mq_unlink(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::HintOn;

    fn quiet() -> Narrator {
        Narrator::silent("test")
    }

    #[test]
    fn poll_reports_a_time_out_and_a_ready_pipe() {
        let n = quiet();
        let (r, w) = common::sys::pipe(&n).unwrap();
        let waited = poll(&n, &r, Ready::Read, Some(Duration::from_millis(1))).unwrap();
        assert_eq!(waited, Polled(false));
        common::sys::write(&n, &w, b"x").unwrap();
        assert_eq!(poll(&n, &r, Ready::Read, None), Ok(Polled(true)));
        assert_eq!(
            poll(&n, &w, Ready::Write, Some(Duration::ZERO)),
            Ok(Polled(true))
        );
    }

    #[test]
    fn a_queue_error_names_the_call_and_takes_a_hint() {
        let mut q = sysv::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600).unwrap();
        let id = q.id();
        let err = msgrcv(&quiet(), &mut q, 0, 16, true)
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
