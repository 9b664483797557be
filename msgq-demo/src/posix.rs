//! The POSIX message queue (mq_overview(7)): the same idea as System V's with a name like
//! a file's (`/ipc-demos-mq-0`, visible in `/dev/mqueue`), priorities instead of types,
//! and a size fixed when it is created.
//!
//! The lesson follows the three ways note 003, "3.7.2 Mach 메시지 전달", lists for a
//! sender that finds the queue full: wait until there is room (`mq_send`), wait at most
//! N milliseconds (`mq_timedsend`), or return at once (`O_NONBLOCK`). It also shows that
//! a receiver takes the highest priority first.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use common::message;
use common::narrate::print_summary;
use common::process::{self, Fork, Patience};
use common::tally::Tally;
use common::{Error, HintOn, Narrator, Result, cleanup, say, sys as common_sys, tr};
use nix::errno::Errno;
use nix::mqueue::MqdT;
use nix::unistd;

use crate::peer::{self, PEER_CHECK, Peer};
use crate::status::Cleaned;
use crate::sys::{self, Open};
use crate::sysv;

/// Where the largest POSIX message is set.
pub const MSGSIZE_MAX_PATH: &str = "/proc/sys/fs/mqueue/msgsize_max";
/// Where the most messages per POSIX queue (for an ordinary user) is set.
pub const MSG_MAX_PATH: &str = "/proc/sys/fs/mqueue/msg_max";

/// What the sender does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Full {
    /// `mq_send` waits until a receiver makes room.
    Wait,
    /// `mq_timedsend` waits at most `--timeout-ms`, then fails with ETIMEDOUT.
    Timeout,
    /// With O_NONBLOCK, `mq_send` fails at once with EAGAIN.
    Nonblock,
}

/// What the `posix` lesson sends, and how it meets a full queue.
#[derive(Debug, Clone, Copy)]
pub struct Args {
    /// Messages to send (after the three notes).
    pub count: u64,
    /// Payload bytes per message.
    pub size: usize,
    /// How many messages the queue holds (`mq_maxmsg`).
    pub capacity: i64,
    /// What the sender does when the queue is full.
    pub full: Full,
    /// For [`Full::Timeout`]: how long `mq_timedsend` waits.
    pub timeout: Duration,
}

/// The three notes sent with priorities before the messages, in this order; a receiver
/// takes them highest first.
const NOTES: [(u32, &str); 3] = [(1, "low"), (9, "high"), (5, "middle")];

/// Checks a queue name and the sizes against this machine's limits (usage errors).
pub fn check(name: &str, size: usize, capacity: i64) -> Result<()> {
    if !name.starts_with('/') || name.len() < 2 || name[1..].contains('/') {
        return Err(Error::usage(tr!(
            "--name {name}: a POSIX queue name is one slash and a name, like /ipc-demos-mq",
            name = format!("{name:?}")
        )));
    }
    let msgsize_max = sysv::limit(MSGSIZE_MAX_PATH).unwrap_or(8192);
    if size + message::OVERHEAD > msgsize_max {
        return Err(Error::usage(tr!(
            "--size {size}: a message of {bytes} bytes is over the POSIX limit of {most} ({path})",
            size,
            bytes = size + message::OVERHEAD,
            most = msgsize_max,
            path = MSGSIZE_MAX_PATH
        )));
    }
    let msg_max = sysv::limit(MSG_MAX_PATH).unwrap_or(10);
    if usize::try_from(capacity).map_or(true, |c| c < NOTES.len() + 1 || c > msg_max) {
        return Err(Error::usage(tr!(
            "--capacity {capacity}: a queue here holds {least} to {most} messages ({path})",
            capacity,
            least = NOTES.len() + 1,
            most = msg_max,
            path = MSG_MAX_PATH
        )));
    }
    Ok(())
}

// ANCHOR: posix
/// Creates the queue, forks a consumer that waits for a word to start, sends three notes
/// with priorities and fills the queue with messages, shows what the chosen `full`
/// behaviour does with one more, then lets the consumer go and sends the rest.
pub fn posix(n: &Narrator, name: &str, args: &Args) -> Result<()> {
    let frame_len = args.size + message::OVERHEAD;
    let new = Open::New {
        capacity: args.capacity,
        msgsize: frame_len as i64,
    };
    let mq = sys::mq_open(n, name, new).hint_on(
        Errno::EEXIST,
        tr!("the queue exists already (see /dev/mqueue): `msgq-demo clean` removes it"),
    )?;
    let _unlink = unlink_on_drop(n, name);
    say!(
        n,
        "look: cat /dev/mqueue{name} (where the mqueue file system is mounted: mount -t mqueue none /dev/mqueue)",
        name
    );
    let (go_read, go_write) = common_sys::pipe(n)?;
    say!(
        n,
        "that pipe lets the consumer start when I say so, once the queue is full"
    );
    let parent = unistd::getpid().as_raw();
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            let producer = Peer::Known {
                role: "producer",
                pid: parent,
            };
            let result = common_sys::close(&me, go_write)
                .and_then(|()| receive_all(&me, &mq, producer, go_read, args.count, frame_len));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            let consumer = Peer::Known {
                role: "consumer",
                pid: child.as_raw(),
            };
            cleanup::exit_on_interrupt(n)?;
            common_sys::close(n, go_read)?;
            send_all(n, &mq, consumer, go_write, args)?;
            process::wait_for(n, child, "consumer")
        }
    }
}

/// The sender: the notes, the messages that fill the queue, the one more that finds it
/// full, and the rest once the consumer runs.
fn send_all(n: &Narrator, mq: &MqdT, consumer: Peer, go: OwnedFd, args: &Args) -> Result<()> {
    let mut patience = peer::patience(
        n,
        consumer,
        None,
        tr!(
            "the queue is full: I wait for the consumer (mq_send blocks; every {every} the \
             timer interrupts it, and I check that the consumer lives)",
            every = format!("{PEER_CHECK:?}")
        ),
    );
    let _ticker = peer::start_ticker(n, "mq_send", "consumer")?;
    for (priority, note) in NOTES {
        sys::mq_send(n, mq, note.as_bytes(), priority, &mut patience)?;
    }
    // The consumer takes nothing yet: the notes and these messages fill the queue.
    let room = u64::try_from(args.capacity).unwrap_or(0) - NOTES.len() as u64;
    let mut frame = Vec::new();
    for seq in n.first_few(
        0..room.min(args.count),
        tr!("filling the queue without narration"),
    ) {
        message::encode_into(seq, args.size, &mut frame);
        sys::mq_send(n, mq, &frame, 0, &mut patience)?;
    }
    let mut next = room.min(args.count);
    let mut go = Some(go);
    if next < args.count {
        let state = sys::mq_getattr(n, mq)?;
        say!(
            n,
            "the queue is full: {current} of {most} messages",
            current = state.0.curmsgs(),
            most = state.0.maxmsg()
        );
        message::encode_into(next, args.size, &mut frame);
        if full_queue(n, mq, &frame, args, &mut go, &mut patience)? {
            next += 1;
        }
    } else {
        say!(
            n,
            "all the messages fit in the queue, so it never became full: use a larger --count"
        );
    }
    release(n, &mut go)?;
    for seq in n.first_few(next..args.count, tr!("sending the rest without narration")) {
        message::encode_into(seq, args.size, &mut frame);
        sys::mq_send(n, mq, &frame, 0, &mut patience)?;
    }
    Ok(())
}

/// The chosen behaviour for one send to a full queue. Returns whether the message went
/// in: after `Timeout` and `Nonblock` fail, it is sent again later, with the rest.
fn full_queue(
    n: &Narrator,
    mq: &MqdT,
    frame: &[u8],
    args: &Args,
    go: &mut Option<OwnedFd>,
    patience: &mut Patience<'_>,
) -> Result<bool> {
    match args.full {
        Full::Nonblock => {
            sys::mq_setattr(n, mq, true)?;
            let sent = sys::mq_send(n, mq, frame, 0, patience);
            expect_failure(
                sent,
                Errno::EAGAIN,
                n,
                tr!("returns at once: the queue is full"),
            )?;
            sys::mq_setattr(n, mq, false)?;
        }
        Full::Timeout => {
            let sent = sys::mq_timedsend(n, mq, frame, 0, args.timeout);
            let waited = tr!(
                "waited {ms} ms, and the queue stayed full",
                ms = args.timeout.as_millis()
            );
            expect_failure(sent, Errno::ETIMEDOUT, n, waited)?;
        }
        Full::Wait => {
            say!(
                n,
                "a send to a full queue waits until a receiver takes a message: I let the \
                 consumer start, and this mq_send waits for room"
            );
            release(n, go)?;
            sys::mq_send(n, mq, frame, 0, patience)?;
            return Ok(true);
        }
    }
    Ok(false)
}
// ANCHOR_END: posix

/// A send to a full queue that must fail with `expected`: says what it means, or turns
/// anything else into an error.
fn expect_failure(sent: Result<()>, expected: Errno, n: &Narrator, meaning: String) -> Result<()> {
    match sent {
        Err(e) if e.errno() == Some(expected) => {
            say!(
                n,
                "{errno}: {meaning}; I will send it again once the consumer runs",
                errno = format!("{expected:?}"),
                meaning
            );
            Ok(())
        }
        Err(e) => Err(e),
        Ok(()) => Err(Error::bad_data(
            tr!("send to a full queue"),
            tr!(
                "it succeeded; {errno} was expected",
                errno = format!("{expected:?}")
            ),
        )),
    }
}

/// Lets the consumer start (writes one byte to its pipe), once.
fn release(n: &Narrator, go: &mut Option<OwnedFd>) -> Result<()> {
    match go.take() {
        Some(fd) => common_sys::write(n, &fd, b"g").map(drop),
        None => Ok(()),
    }
}

/// The consumer: waits for the go-ahead, then takes the three notes (highest priority
/// first) and `count` messages, and checks them.
fn receive_all(
    me: &Narrator,
    mq: &MqdT,
    producer: Peer,
    go: OwnedFd,
    count: u64,
    frame_len: usize,
) -> Result<()> {
    say!(
        me,
        "waiting until the sender lets me start, so that the queue fills up"
    );
    if common_sys::read(me, &go, &mut [0u8; 1])? == 0 {
        return Err(Error::bad_data(
            tr!("wait for the sender"),
            tr!("it exited first"),
        ));
    }
    let mut patience = peer::patience(
        me,
        producer,
        None,
        tr!(
            "the queue is empty: I wait for the producer (mq_receive blocks; every {every} \
             the timer interrupts it, and I check that the producer lives)",
            every = format!("{PEER_CHECK:?}")
        ),
    );
    let ticker = peer::start_ticker(me, "mq_receive", "producer")?;
    let mut buf = vec![0u8; frame_len];
    let mut priorities = Vec::new();
    let mut tally = Tally::new(count);
    let all = count + NOTES.len() as u64;
    for _ in me.first_few(0..all, tr!("receiving the rest without narration")) {
        let got = sys::mq_receive(me, mq, &mut buf, &mut patience)?;
        let text = &buf[..got.len];
        if got.priority > 0 {
            say!(
                me,
                "priority {priority}: {text}",
                priority = got.priority,
                text = format!("{:?}", String::from_utf8_lossy(text))
            );
            priorities.push(got.priority);
            continue;
        }
        match message::decode(text, frame_len) {
            Ok(frame) => tally.record(&frame),
            Err(_) => tally.record_undecodable(text.len()),
        }
    }
    drop(ticker);
    let mut expected: Vec<u32> = NOTES.iter().map(|(p, _)| *p).collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    say!(
        me,
        "the notes arrived in the order of their priorities: {priorities}",
        priorities = format!("{priorities:?}")
    );
    print_summary(tally.summary())?;
    if priorities != expected {
        return Err(Error::bad_data(
            tr!("check the priorities"),
            tr!(
                "{got}, not {expected}",
                got = format!("{priorities:?}"),
                expected = format!("{expected:?}")
            ),
        ));
    }
    tally.verdict()
}

/// A guard that removes the queue's name (`mq_unlink`) when dropped or on Ctrl-C.
fn unlink_on_drop(n: &Narrator, name: &str) -> cleanup::Guard {
    let (n, name) = (n.clone(), name.to_string());
    cleanup::Guard::new(move || {
        // Nobody is left to report a failure to; the narration shows it.
        let _ = sys::mq_unlink(&n, &name);
    })
}

/// Removes the POSIX queue `name` if it is there and the user's own: opened read-only
/// (which changes nothing), its owner checked with `fstat` on the descriptor (on Linux a
/// POSIX queue is a file of the mqueue file system, owned by its creator), then
/// `mq_unlink`. Between the check and the unlink, only the owner could replace the
/// queue (`/dev/mqueue` is sticky, as `/tmp` is). Whether a process still uses the queue
/// cannot be known (the kernel does not say who has it open), unlike a System V queue.
pub fn clean(n: &Narrator, name: &str) -> Result<Cleaned> {
    let mq = match sys::mq_open(n, name, Open::ReadOnly) {
        Ok(mq) => mq,
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            say!(n, "no POSIX queue is named {name}: nothing to clean", name);
            return Ok(Cleaned::Absent);
        }
        Err(e) if e.errno() == Some(Errno::EACCES) => {
            return Ok(Cleaned::Refused(e.hint(tr!(
                "the queue is another user's (we may not even open it): the demo never removes another user's queue"
            ))));
        }
        Err(e) => return Err(e),
    };
    let owner = common::owner::fstat_ours(mq.as_fd(), common::owner::Kind::File);
    sys::mq_close(n, mq)?;
    if let Err(why) = owner {
        return Ok(Cleaned::Refused(why));
    }
    sys::mq_unlink(n, name)?;
    Ok(Cleaned::Removed)
}
