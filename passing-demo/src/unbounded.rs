//! "Unbounded" capacity: ask each kind of link for room without limit, and find the
//! limit anyway.
//!
//! Note 001, IPC models, section 3, lists an unbounded link, whose sender never waits.
//! No real link is one: each kernel object has a bound, and whatever lifts it meets the
//! memory of the machine. The lesson asks each link for `--ask` bytes (4 MiB by
//! default), fills it with no receiver and non-blocking sends until it refuses, and
//! reports what it held and which limit it met:
//!
//! - a System V queue: `msg_qbytes` starts at /proc/sys/kernel/msgmnb; raising it above
//!   that needs CAP_SYS_RESOURCE (EPERM otherwise, msgctl(2));
//! - a pipe: `F_SETPIPE_SZ` above /proc/sys/fs/pipe-max-size needs CAP_SYS_RESOURCE
//!   too (EPERM), and a user's pipes together are bounded by pipe-user-pages-soft and
//!   -hard (pipe(7));
//! - a socket pair: the sender's send buffer (SO_SNDBUF, from
//!   /proc/sys/net/core/wmem_default, at most wmem_max) bounds what waits in it;
//! - a POSIX queue: its whole size is charged to the user's RLIMIT_MSGQUEUE when it is
//!   created, and a queue over the limit is refused with EMFILE (mq_overview(7)). The
//!   lesson lowers its own soft limit first, so the refusal comes at once, for root too.
//!
//! - a receiver that keeps every message in its own memory, so that the sender never
//!   waits for room ([`memory`]): its memory is the bound. The lesson lowers the relay's
//!   RLIMIT_AS so that it meets it after a few mebibytes.
//!
//! A privileged user can lift some of these limits; what stays is memory, and the lesson
//! does not go looking for the machine's on a shared machine: `--ask` is at most 64 MiB.
//!
//! Usage: `passing-demo unbounded [--ask 4M]`. See also: msgctl(2), fcntl(2)
//! "F_SETPIPE_SZ", pipe(7), socket(7) "SO_SNDBUF", mq_overview(7), getrlimit(2).

mod memory;

use std::os::fd::OwnedFd;

use common::narrate::print_summary;
use common::{Error, Narrator, Result, cleanup, say, tr};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::sys::resource::Resource;
use nix::sys::socket::SockType;

use crate::sys::{self, Limit};
use crate::{Names, Purpose};

/// The largest `--ask`: enough to pass every default limit, small enough for a shared
/// machine.
pub const MAX_ASK: usize = 64 << 20;

/// Bytes per message while filling (a System V message may hold up to msgmax, 8192 by
/// default; a pipe write of one page fills one page).
const CHUNK: usize = 4096;

/// The soft RLIMIT_MSGQUEUE the lesson sets for itself: far below any real queue.
const MQ_LIMIT: u64 = 4096;

/// The word for a raise the kernel allowed or refused.
fn raised(result: Result<()>) -> Result<&'static str> {
    match result {
        Ok(()) => Ok("ok"),
        Err(e) if e.errno() == Some(Errno::EPERM) => Ok("EPERM"),
        Err(e) => Err(e),
    }
}

// ANCHOR: unbounded
/// Asks every kind of link for `ask` bytes and fills it without a receiver.
pub fn unbounded(n: &Narrator, names: &Names, ask: usize) -> Result<()> {
    if !(CHUNK..=MAX_ASK).contains(&ask) {
        return Err(Error::usage(tr!(
            "--ask goes from {min} to {max} bytes",
            min = CHUNK,
            max = MAX_ASK
        )));
    }
    // The relay is a forked child: it comes before the Ctrl-C handler, a thread.
    let memory = memory::relay(n)?;
    cleanup::exit_on_interrupt(n)?;
    let queue = queue(n, names, ask)?;
    let pipe = pipe(n, ask)?;
    let socket = socket(n)?;
    let mq = posix_queue(n, names)?;
    print_summary(format_args!(
        "summary: {queue} {pipe} {socket} mq_open={mq} relay_mib={memory}"
    ))
}

/// A System V queue asked for `ask` bytes, then filled.
fn queue(n: &Narrator, names: &Names, ask: usize) -> Result<String> {
    let mut q = sys::msgget_create(n, names.key(Purpose::Unbounded))?;
    let id = q.id();
    let _remove = cleanup::Guard::new({
        let n = n.clone();
        move || {
            let _ = sys::msgctl_rmid(&n, id);
        }
    });
    let usual = sys::msgctl_stat(n, &q)?.capacity;
    say!(
        n,
        "a new queue holds {usual} bytes (msgmnb); I ask for {ask}",
        usual,
        ask
    );
    let raise = raised(sys::msgctl_set_qbytes(n, &q, ask as u64))?;
    if raise == "EPERM" {
        say!(
            n,
            "EPERM: above msgmnb only a process with CAP_SYS_RESOURCE may go"
        );
    }
    let capacity = sys::msgctl_stat(n, &q)?.capacity;
    let text = vec![b'q'; CHUNK];
    let mut held = 0u64;
    for _ in n.first_few(0.., tr!("filling the queue without narration")) {
        match sys::msgsnd(n, &mut q, 1, &text, true) {
            Ok(()) => held += CHUNK as u64,
            Err(e) if e.errno() == Some(Errno::EAGAIN) => break,
            Err(e) => return Err(e),
        }
    }
    say!(
        n,
        "the queue took {held} bytes and no more: msg_qbytes is {capacity}",
        held,
        capacity
    );
    Ok(format!(
        "queue_raise={raise} queue_capacity={capacity} queue_held={held}"
    ))
}

/// A pipe asked for `ask` bytes, then filled.
fn pipe(n: &Narrator, ask: usize) -> Result<String> {
    let (r, w) = common::sys::pipe2(n, OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    let wanted = i32::try_from(ask).unwrap_or(i32::MAX);
    let raise = raised(common::sys::fcntl(n, &w, FcntlArg::F_SETPIPE_SZ(wanted)).map(drop))?;
    if raise == "EPERM" {
        say!(
            n,
            "EPERM: above /proc/sys/fs/pipe-max-size only a process with CAP_SYS_RESOURCE may go"
        );
    }
    let capacity = common::sys::fcntl(n, &w, FcntlArg::F_GETPIPE_SZ)?;
    let held = fill(n, &w, CHUNK, common::sys::write)?;
    say!(
        n,
        "the pipe took {held} bytes and no more: its size is {capacity}",
        held,
        capacity
    );
    common::sys::close(n, r)?;
    common::sys::close(n, w)?;
    Ok(format!(
        "pipe_raise={raise} pipe_capacity={capacity} pipe_held={held}"
    ))
}

/// A datagram socket pair, filled from one end.
fn socket(n: &Narrator) -> Result<String> {
    let (a, b) = common::sys::socketpair(n, SockType::Datagram)?;
    common::sys::fcntl(n, &a, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    };
    let (default, max) = (read("wmem_default"), read("wmem_max"));
    say!(
        n,
        "a socket's send buffer is wmem_default ({default}) bytes, at most wmem_max ({max}): a larger SO_SNDBUF is quietly cut down",
        default,
        max
    );
    const DATAGRAM: usize = 1024;
    let held = fill(n, &a, DATAGRAM, common::sys::send)?;
    let datagrams = held / DATAGRAM as u64;
    say!(
        n,
        "{datagrams} datagrams of {size} bytes wait in the socket and no more: each also costs the kernel's bookkeeping",
        datagrams,
        size = DATAGRAM
    );
    common::sys::close(n, a)?;
    common::sys::close(n, b)?;
    Ok(format!("socket_held={held} socket_datagrams={datagrams}"))
}

/// Sends `chunk`-byte pieces on `fd` (non-blocking) until EAGAIN; returns the bytes.
fn fill(
    n: &Narrator,
    fd: &OwnedFd,
    chunk: usize,
    put: impl Fn(&Narrator, &OwnedFd, &[u8]) -> Result<usize>,
) -> Result<u64> {
    let buf = vec![b'u'; chunk];
    let mut held = 0u64;
    for _ in n.first_few(0.., tr!("filling without narration")) {
        match put(n, fd, &buf) {
            Ok(wrote) => held += wrote as u64,
            Err(e) if e.errno() == Some(Errno::EAGAIN) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(held)
}

/// A POSIX queue under a lowered RLIMIT_MSGQUEUE: refused with EMFILE.
fn posix_queue(n: &Narrator, names: &Names) -> Result<&'static str> {
    let limit = sys::getrlimit(n, Resource::RLIMIT_MSGQUEUE)?;
    say!(
        n,
        "every POSIX queue a user creates is charged in full to RLIMIT_MSGQUEUE (ulimit -q); I lower my own soft limit to {low} bytes",
        low = MQ_LIMIT
    );
    let low = Limit {
        soft: MQ_LIMIT.min(limit.soft),
        hard: limit.hard,
    };
    sys::setrlimit(n, Resource::RLIMIT_MSGQUEUE, low)?;
    let name = names.mq();
    let asked = sys::mq_open(n, &name, 10, 1024);
    // Put the limit back before anything else: it is this process's, but only for now.
    sys::setrlimit(n, Resource::RLIMIT_MSGQUEUE, limit)?;
    match asked {
        Err(e) if e.errno() == Some(Errno::EMFILE) => {
            say!(
                n,
                "EMFILE: ten messages of 1 KiB would pass the limit; the kernel refuses the whole queue at once, for root too"
            );
            Ok("EMFILE")
        }
        Err(e) => Err(e),
        Ok(mq) => {
            sys::mq_close(n, mq)?;
            sys::mq_unlink(n, &name)?;
            Ok("accepted")
        }
    }
}
// ANCHOR_END: unbounded
