//! The POSIX message queue (mq_overview(7)): the same idea as System V's with a name like
//! a file's (`/ipc-demos-mq-0`, visible in `/dev/mqueue`), priorities instead of types,
//! and a size fixed when it is created.
//!
//! The lesson follows the three ways note 003, "3.7.2 Mach 메시지 전달", lists for a
//! sender that finds the queue full: wait until there is room (`mq_send`), wait at most
//! N milliseconds (`mq_timedsend`), or return at once (`O_NONBLOCK`). It also shows that
//! a receiver takes the highest priority first.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use common::message;
use common::narrate::{Shown, print_summary};
use common::process::{self, Fork};
use common::stream::{self, FdStream, NARRATED_MESSAGES};
use common::tally::Tally;
use common::{Error, Narrator, Result, cleanup};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT, mq_close, mq_getattr, mq_open, mq_send, mq_unlink};
use nix::sys::stat::Mode;
use nix::unistd;

use crate::{Cleaned, PEER_CHECK, Peer, Waiting, patiently, sysv};

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

/// The three notes sent with priorities before the messages, in this order; a receiver
/// takes them highest first.
const NOTES: [(u32, &str); 3] = [(1, "low"), (9, "high"), (5, "middle")];

/// Checks a queue name and the sizes against this machine's limits (usage errors).
pub fn check(name: &str, size: usize, capacity: i64) -> Result<()> {
    if !name.starts_with('/') || name.len() < 2 || name[1..].contains('/') {
        return Err(Error::usage(format!(
            "--name {name:?}: a POSIX queue name is one slash and a name, like /ipc-demos-mq"
        )));
    }
    let msgsize_max = sysv::limit(MSGSIZE_MAX_PATH).unwrap_or(8192);
    if size + message::OVERHEAD > msgsize_max {
        return Err(Error::usage(format!(
            "--size {size}: a message of {} bytes is over the POSIX limit of {msgsize_max} ({MSGSIZE_MAX_PATH})",
            size + message::OVERHEAD
        )));
    }
    let msg_max = sysv::limit(MSG_MAX_PATH).unwrap_or(10);
    if usize::try_from(capacity).map_or(true, |c| c < NOTES.len() + 1 || c > msg_max) {
        return Err(Error::usage(format!(
            "--capacity {capacity}: a queue here holds {} to {msg_max} messages ({MSG_MAX_PATH})",
            NOTES.len() + 1
        )));
    }
    Ok(())
}

/// What `mq_receive` got: a length and a priority.
struct Taken(usize, u32);

impl Shown for Taken {
    fn shown(&self) -> String {
        format!("{}   (priority {})", self.0, self.1)
    }
}

impl Shown for MqAttrShown {
    fn shown(&self) -> String {
        format!(
            "0   {{mq_maxmsg={}, mq_msgsize={}, mq_curmsgs={}}}",
            self.0.maxmsg(),
            self.0.msgsize(),
            self.0.curmsgs()
        )
    }
}

struct MqAttrShown(MqAttr);

// ANCHOR: posix
/// Creates the queue, forks a consumer that waits for a signal to start, sends three
/// notes with priorities and fills the queue with messages, shows what the chosen `full`
/// behaviour does with one more, then lets the consumer go and sends the rest.
pub fn posix(
    n: &Narrator,
    name: &str,
    count: u64,
    size: usize,
    capacity: i64,
    full: Full,
    timeout: Duration,
) -> Result<()> {
    let frame_len = size + message::OVERHEAD;
    let attr = MqAttr::new(0, capacity, frame_len as i64, 0);
    let mq = n
        .call(
            format_args!("mq_open({name:?}, O_CREAT|O_EXCL|O_RDWR, 0600, {{mq_maxmsg={capacity}, mq_msgsize={frame_len}}})"),
            || mq_open(name, MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr)),
        )
        .map_err(|e| match e.errno() {
            Some(Errno::EEXIST) => e.hint("the queue exists already (see /dev/mqueue): `msgq-demo clean` removes it"),
            _ => e,
        })?;
    let _unlink = unlink_on_drop(n, name);
    n.say(format_args!(
        "look: cat /dev/mqueue{name} (where the mqueue file system is mounted: mount -t mqueue none /dev/mqueue)"
    ));
    let (go_read, go_write) = n.call("pipe()   (sender -> receiver: start now)", unistd::pipe)?;
    let parent = unistd::getpid().as_raw();
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            let producer = Peer::Known {
                role: "producer",
                pid: parent,
            };
            let result = stream::close(&me, go_write)
                .and_then(|()| receive_all(&me, &mq, producer, go_read, count, frame_len));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            let consumer = Peer::Known {
                role: "consumer",
                pid: child.as_raw(),
            };
            cleanup::exit_on_interrupt(n)?;
            stream::close(n, go_read)?;
            for (priority, note) in NOTES {
                n.call(
                    format_args!(
                        "mq_send({}, {note:?}, {}, {priority})",
                        raw(&mq),
                        note.len()
                    ),
                    || mq_send(&mq, note.as_bytes(), priority),
                )?;
            }
            let mut frame = Vec::with_capacity(frame_len);
            let mut seq = 0;
            // Fill the queue while the consumer is not taking anything yet.
            while seq < count && mq_getattr(&mq).is_ok_and(|a| a.curmsgs() < capacity) {
                message::encode_into(seq, size, &mut frame);
                send(n, &mq, seq, &frame)?;
                seq += 1;
            }
            let mut go = Some(go_write);
            if seq < count {
                let state = n.call(format_args!("mq_getattr({})", raw(&mq)), || {
                    mq_getattr(&mq).map(MqAttrShown)
                })?;
                n.say(format_args!(
                    "the queue is full: {} of {} messages",
                    state.0.curmsgs(),
                    state.0.maxmsg()
                ));
                message::encode_into(seq, size, &mut frame);
                if full_queue(n, &mq, consumer, &frame, full, timeout, &mut go)? {
                    seq += 1;
                }
            } else {
                n.say("all the messages fit in the queue, so it never became full: use a larger --count");
            }
            release(n, &mut go)?;
            let mut waiting = waiting_for_consumer();
            while seq < count {
                if seq == NARRATED_MESSAGES + capacity as u64 {
                    n.mute("... sending the rest without narration");
                }
                message::encode_into(seq, size, &mut frame);
                let desc = format!(
                    "mq_timedsend({}, {{seq={seq}}}, {}, 0, {PEER_CHECK:?} from now)",
                    raw(&mq),
                    frame.len()
                );
                send_patiently(n, &mq, consumer, &desc, &frame, &mut waiting)?;
                seq += 1;
            }
            n.unmute();
            process::wait_for(n, child, "consumer")
        }
    }
}

/// The chosen behaviour for one send to a full queue. Returns whether the message went
/// in: after `Timeout` and `Nonblock` fail, it is sent again later, with the rest.
fn full_queue(
    n: &Narrator,
    mq: &MqdT,
    consumer: Peer,
    frame: &[u8],
    full: Full,
    timeout: Duration,
    go: &mut Option<OwnedFd>,
) -> Result<bool> {
    match full {
        Full::Nonblock => {
            n.call(
                format_args!("mq_setattr({}, {{mq_flags=O_NONBLOCK}})", raw(mq)),
                || nix::mqueue::mq_set_nonblock(mq).map(drop),
            )?;
            expect_failure(
                n,
                "mq_send",
                mq,
                frame,
                Errno::EAGAIN,
                "returns at once: the queue is full",
                || mq_send(mq, frame, 0),
            )?;
            n.call(
                format_args!("mq_setattr({}, {{mq_flags=0}})", raw(mq)),
                || nix::mqueue::mq_remove_nonblock(mq).map(drop),
            )?;
        }
        Full::Timeout => {
            let ms = timeout.as_millis();
            expect_failure(
                n,
                "mq_timedsend",
                mq,
                frame,
                Errno::ETIMEDOUT,
                &format!("waited {ms} ms, and the queue stayed full"),
                || mq_timedsend(mq, frame, 0, timeout),
            )?;
        }
        Full::Wait => {
            n.say(format_args!(
                "a send to a full queue waits until a receiver takes a message; letting the consumer start \
                 (mq_send would wait for ever; mq_timedsend waits {PEER_CHECK:?} at a time, so that I can check the consumer lives)"
            ));
            release(n, go)?;
            let desc = format!(
                "mq_timedsend({}, buf, {}, 0, {PEER_CHECK:?} from now)   (waits for room)",
                raw(mq),
                frame.len()
            );
            send_patiently(n, mq, consumer, &desc, frame, &mut waiting_for_consumer())?;
            return Ok(true);
        }
    }
    Ok(false)
}
// ANCHOR_END: posix

fn expect_failure(
    n: &Narrator,
    call: &str,
    mq: &MqdT,
    frame: &[u8],
    expected: Errno,
    meaning: &str,
    send: impl FnOnce() -> nix::Result<()>,
) -> Result<()> {
    match n.call(
        format_args!("{call}({}, buf, {}, 0)", raw(mq), frame.len()),
        send,
    ) {
        Err(e) if e.errno() == Some(expected) => {
            n.say(format_args!(
                "{expected:?}: {meaning}; I will send it again once the consumer runs"
            ));
            Ok(())
        }
        Err(e) => Err(e),
        Ok(()) => Err(Error::bad_data(
            "send to a full queue",
            format!("it succeeded; {expected:?} was expected"),
        )),
    }
}

/// Lets the consumer start (writes one byte to its pipe), once.
fn release(n: &Narrator, go: &mut Option<OwnedFd>) -> Result<()> {
    match go.take() {
        Some(fd) => FdStream::new(fd, n).write_all(b"g"),
        None => Ok(()),
    }
}

fn send(n: &Narrator, mq: &MqdT, seq: u64, frame: &[u8]) -> Result<()> {
    n.call(
        format_args!("mq_send({}, {{seq={seq}}}, {}, 0)", raw(mq), frame.len()),
        || mq_send(mq, frame, 0),
    )
}

/// `mq_timedsend` of `frame`, again and again while the queue stays full and the
/// consumer lives (see [`patiently`]).
/// What the sender says when it first finds the queue full.
fn waiting_for_consumer() -> Waiting {
    Waiting::new(format!(
        "the queue is full: I wait for the consumer (mq_timedsend again; every {PEER_CHECK:?}, is the consumer alive?)"
    ))
}

fn send_patiently(
    n: &Narrator,
    mq: &MqdT,
    consumer: Peer,
    desc: &str,
    frame: &[u8],
    waiting: &mut Waiting,
) -> Result<()> {
    patiently(
        n,
        &mut (),
        desc,
        waiting,
        |_| alive(consumer),
        |_| mq_timedsend(mq, frame, 0, PEER_CHECK),
    )
}

/// Fails if the (known) peer is gone: a POSIX queue does not say who uses it.
fn alive(peer: Peer) -> Result<()> {
    match peer {
        Peer::Known { role, pid } if !process::is_alive(pid) => Err(process::gone(role, pid)),
        _ => Ok(()),
    }
}

fn raw(mq: &MqdT) -> i32 {
    mq.as_fd().as_raw_fd()
}

/// `mq_timedsend(3)`, which nix does not wrap: like `mq_send`, but gives up with
/// ETIMEDOUT at an absolute time on CLOCK_REALTIME, here `timeout` from now.
fn mq_timedsend(mq: &MqdT, frame: &[u8], priority: u32, timeout: Duration) -> nix::Result<()> {
    let deadline = common::timing::realtime_deadline(timeout)?;
    // SAFETY: `frame` and `deadline` are valid for the call; the descriptor is an open
    // message queue, borrowed from `mq`.
    Errno::result(unsafe {
        libc::mq_timedsend(
            raw(mq),
            frame.as_ptr().cast(),
            frame.len(),
            priority,
            &deadline,
        )
    })
    .map(drop)
}

/// `mq_timedreceive(3)`, which nix does not wrap: like `mq_receive`, but gives up with
/// ETIMEDOUT `timeout` from now. Returns the length and the priority.
fn mq_timedreceive(mq: &MqdT, buf: &mut [u8], timeout: Duration) -> nix::Result<Taken> {
    let deadline = common::timing::realtime_deadline(timeout)?;
    let mut priority = 0;
    // SAFETY: `buf`, `priority` and `deadline` are valid for the call, and `buf.len()` is
    // the room mq_timedreceive may fill; the descriptor is borrowed from `mq`.
    let got = unsafe {
        libc::mq_timedreceive(
            raw(mq),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut priority,
            &deadline,
        )
    };
    let len = usize::try_from(got).map_err(|_| Errno::last())?;
    Ok(Taken(len, priority))
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
    let mut byte = [0u8; 1];
    me.say("waiting until the sender lets me start, so that the queue fills up");
    if FdStream::new(go, me).read(&mut byte)? == 0 {
        return Err(Error::bad_data("wait for the sender", "it exited first"));
    }
    let mut buf = vec![0u8; frame_len];
    let mut priorities = Vec::new();
    let mut tally = Tally::new(count);
    let mut waiting = Waiting::new(format!(
        "the queue is empty: I wait for the producer (mq_timedreceive again; every {PEER_CHECK:?}, is the producer alive?)"
    ));
    for taken in 0..count + NOTES.len() as u64 {
        if taken == NARRATED_MESSAGES + NOTES.len() as u64 {
            me.mute("... receiving the rest without narration");
        }
        let desc = format!(
            "mq_timedreceive({}, buf, {frame_len}, &prio, {PEER_CHECK:?} from now)",
            raw(mq)
        );
        let Taken(len, priority) = patiently(
            me,
            &mut buf,
            &desc,
            &mut waiting,
            |_| alive(producer),
            |buf| mq_timedreceive(mq, buf, PEER_CHECK),
        )?;
        let text = &buf[..len];
        if priority > 0 {
            me.say(format_args!(
                "priority {priority}: {:?}",
                String::from_utf8_lossy(text)
            ));
            priorities.push(priority);
            continue;
        }
        match message::decode(text, frame_len) {
            Ok(frame) => tally.record(&frame),
            Err(_) => tally.record_undecodable(text.len()),
        }
    }
    me.unmute();
    let mut expected: Vec<u32> = NOTES.iter().map(|(p, _)| *p).collect();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    me.say(format_args!(
        "the notes arrived in the order of their priorities: {priorities:?}"
    ));
    print_summary(tally.summary())?;
    if priorities != expected {
        return Err(Error::bad_data(
            "check the priorities",
            format!("{priorities:?}, not {expected:?}"),
        ));
    }
    tally.verdict()
}

/// A guard that removes the queue's name (`mq_unlink`) when dropped or on Ctrl-C.
fn unlink_on_drop(n: &Narrator, name: &str) -> cleanup::Guard {
    let (n, name) = (n.clone(), name.to_string());
    cleanup::Guard::new(move || {
        let _ = n.call(format_args!("mq_unlink({name:?})"), || {
            mq_unlink(name.as_str())
        });
    })
}

/// Removes the POSIX queue `name` if it is there and the user's own: opened read-only
/// (which changes nothing), its owner checked with `fstat` on the descriptor (on Linux a
/// POSIX queue is a file of the mqueue file system, owned by its creator), then
/// `mq_unlink`. Between the check and the unlink, only the owner could replace the
/// queue (`/dev/mqueue` is sticky, as `/tmp` is). Whether a process still uses the queue
/// cannot be known (the kernel does not say who has it open), unlike a System V queue.
pub fn clean(n: &Narrator, name: &str) -> Result<Cleaned> {
    let mq = match n.call(format_args!("mq_open({name:?}, O_RDONLY)"), || {
        mq_open(name, MQ_OFlag::O_RDONLY, Mode::empty(), None)
    }) {
        Ok(mq) => mq,
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            n.say(format_args!(
                "no POSIX queue is named {name}: nothing to clean"
            ));
            return Ok(Cleaned::Absent);
        }
        Err(e) if e.errno() == Some(Errno::EACCES) => {
            return Ok(Cleaned::Refused(e.hint(
                "the queue is another user's (we may not even open it): the demo never removes another user's queue",
            )));
        }
        Err(e) => return Err(e),
    };
    let owner = common::owner::fstat_ours(mq.as_fd(), common::owner::Kind::File);
    // MqdT does not close itself when dropped.
    n.call(format_args!("mq_close({})", raw(&mq)), || mq_close(mq))?;
    if let Err(why) = owner {
        return Ok(Cleaned::Refused(why));
    }
    n.call(format_args!("mq_unlink({name:?})"), || mq_unlink(name))?;
    Ok(Cleaned::Removed)
}
