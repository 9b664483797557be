//! msgq-demo: message queues, where the kernel keeps whole messages with a type.
//!
//! Follows `000_5e93fa56600d397d.txt`, "3. Message Queue"; `001_ffa78007200462ad.txt`,
//! "(3) Message Queue"; `002_c8d20cee4fe5d0b4.txt`, "2. Message Queue (메시지 큐)"; and,
//! for the POSIX queue's three ways to send to a full queue, `003_5ebb38e0b36eb300.txt`,
//! "3.7.2 Mach 메시지 전달".
//!
//! A System V message queue is a list of messages inside the kernel, found by a numeric
//! key. Unlike a pipe, it keeps message boundaries (one `msgsnd` is one `msgrcv`), each
//! message has a type the receiver can choose by, and the queue stays after every process
//! that used it has exited, until someone removes it.
//!
//! - [`create`] and [`open`]: `msgget` with a key from `ftok` or the command line;
//! - [`produce`] and [`consume`]: typed messages, checked per type; the queue outlives
//!   the producer, and the consumer removes it when it is empty;
//! - [`consume_raw`]: prints each message's type and bytes, for peers in other languages;
//! - [`status`] and [`clean`]: `msgctl` IPC_STAT and IPC_RMID;
//! - [`posix`]: the same over a POSIX queue (`mq_open`), with priorities and the three
//!   ways to send to a full queue.
//!
//! Usage: `cargo run -p msgq-demo -- --help`. See also: svipc(7), msgget(2), msgsnd(2),
//! msgctl(2), mq_overview(7), and TLPI chapters 46 and 52.

pub mod posix;
pub mod sysv;

use std::collections::BTreeMap;

use common::cleanup::{self, Guard};
use common::message;
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::stream::NARRATED_MESSAGES;
use common::tally::Tally;
use common::{Error, Narrator, Result};
use nix::errno::Errno;

use crate::sysv::{Key, Queue};

/// Where the largest System V message is set, and what it is when it cannot be read.
pub const MSGMAX_PATH: &str = "/proc/sys/kernel/msgmax";
const MSGMAX_DEFAULT: usize = 8192;

/// The largest message text (`msgmax`): a frame must fit in it.
pub fn msgmax() -> usize {
    sysv::limit(MSGMAX_PATH).unwrap_or(MSGMAX_DEFAULT)
}

/// Checks that a frame with a `size`-byte payload fits in one System V message.
pub fn check_size(size: usize) -> Result<()> {
    let max = msgmax();
    if size + message::OVERHEAD > max {
        return Err(Error::usage(format!(
            "--size {size}: a message of {} bytes (with the 16-byte frame) is over msgmax, {max} bytes on this machine ({MSGMAX_PATH}); use --size {} or less",
            size + message::OVERHEAD,
            max - message::OVERHEAD
        )));
    }
    Ok(())
}

fn key_shown(key: Key) -> String {
    format!("{:#010x}", key as u32)
}

// ANCHOR: create
/// Creates a new queue for `key` (IPC_CREAT | IPC_EXCL: it must not exist yet) with
/// permission bits `mode`.
pub fn create(n: &Narrator, key: Key, mode: u32) -> Result<Queue> {
    if mode & 0o066 != 0 {
        n.announce(format_args!(
            "mode {mode:04o} lets other users on this machine read or write the queue: fine on your own \
             computer, unsafe on a shared one"
        ));
    }
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | (mode & 0o777) as libc::c_int;
    n.call(format_args!("msgget({}, IPC_CREAT|IPC_EXCL|{mode:04o})", key_shown(key)), || sysv::msgget(key, flags))
        .map_err(|e| match e.errno() {
            Some(Errno::EEXIST) => e.hint(
                "a queue with this key exists already (see `ipcs -q`): another producer's, or one a killed run \
                 left; `msgq-demo clean` removes it",
            ),
            _ => e,
        })
}

/// Opens the existing queue for `key`.
pub fn open(n: &Narrator, key: Key) -> Result<Queue> {
    n.call(format_args!("msgget({}, 0)", key_shown(key)), || {
        sysv::msgget(key, 0)
    })
    .map_err(|e| match e.errno() {
        Some(Errno::ENOENT) => {
            e.hint("no queue has this key: start the producer first (with the same --key)")
        }
        _ => e,
    })
}
// ANCHOR_END: create

impl common::narrate::Shown for Queue {
    /// msgget returns the queue identifier.
    fn shown(&self) -> String {
        self.id().to_string()
    }
}

impl common::narrate::Shown for sysv::Status {
    fn shown(&self) -> String {
        "0".into()
    }
}

/// A guard that removes the queue when dropped (on an error, or on Ctrl-C).
fn remove_on_drop(n: &Narrator, q: &Queue) -> Guard {
    let (n, id) = (n.clone(), q.id());
    Guard::new(move || {
        let _ = n.call(format_args!("msgctl({id}, IPC_RMID, NULL)"), || {
            sysv::msgctl_rmid(id)
        });
    })
}

// ANCHOR: produce
/// Sends `count` messages of each type in `types`, in turn, each a frame with a
/// `size`-byte payload numbered per type. A full queue makes `msgsnd` wait for a
/// consumer, or with `nowait` fail with EAGAIN.
pub fn produce(
    n: &Narrator,
    q: &mut Queue,
    types: &[i64],
    count: u64,
    size: usize,
    nowait: bool,
) -> Result<()> {
    let mut frame = Vec::with_capacity(size + message::OVERHEAD);
    let mut told_full = false;
    for seq in 0..count {
        if seq == NARRATED_MESSAGES {
            n.mute("... sending the rest without narration");
        }
        for &mtype in types {
            message::encode_into(seq, size, &mut frame);
            let desc = format!(
                "msgsnd({}, {{mtype={mtype}, seq={seq}}}, {}, IPC_NOWAIT)",
                q.id(),
                frame.len()
            );
            match n.call(&desc, || q.msgsnd(mtype, &frame, true)) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(Errno::EAGAIN) && !nowait => {
                    if !told_full {
                        let capacity = q.stat().map(|s| s.capacity).unwrap_or(0);
                        n.announce(format_args!(
                            "the queue is full ({capacity} bytes): msgsnd now waits for a consumer to make room"
                        ));
                        told_full = true;
                    }
                    n.call(
                        format!(
                            "msgsnd({}, {{mtype={mtype}, seq={seq}}}, {}, 0)",
                            q.id(),
                            frame.len()
                        ),
                        || q.msgsnd(mtype, &frame, false),
                    )?;
                }
                Err(e) if e.errno() == Some(Errno::EAGAIN) => {
                    return Err(e.hint(
                        "the queue is full; without --nowait, msgsnd would wait for a consumer",
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }
    n.unmute();
    Ok(())
}
// ANCHOR_END: produce

/// The types a receive with `msgtyp` can take, of those the producer sends (msgrcv(2)):
/// 0 takes any type, N > 0 type N only, N < 0 any type up to |N|, lowest first.
pub fn matching_types(msgtyp: i64, types: &[i64]) -> Vec<i64> {
    types
        .iter()
        .copied()
        .filter(|&t| msgtyp == 0 || t == msgtyp || (msgtyp < 0 && t <= -msgtyp))
        .collect()
}

/// A `--type` that can take none of the producer's types would wait forever: refuse it.
pub fn check_type(msgtyp: i64, types: &[i64]) -> Result<()> {
    if matching_types(msgtyp, types).is_empty() {
        return Err(Error::usage(format!(
            "--type {msgtyp} matches none of the types {types:?}"
        )));
    }
    Ok(())
}

// ANCHOR: consume
/// Receives with `msgtyp` until it has `count` messages of each type it can take, checks
/// each type's messages as one stream, and prints one summary for all of them.
pub fn consume(n: &Narrator, q: &mut Queue, msgtyp: i64, types: &[i64], count: u64) -> Result<()> {
    let wanted = matching_types(msgtyp, types);
    if wanted.is_empty() {
        return Err(Error::usage(format!(
            "--type {msgtyp} matches none of the types {types:?}"
        )));
    }
    let max = msgmax();
    let mut tallies: BTreeMap<i64, Tally> =
        wanted.iter().map(|&t| (t, Tally::new(count))).collect();
    let total = count * wanted.len() as u64;
    for received in 0..total {
        if received == NARRATED_MESSAGES {
            n.mute("... receiving the rest without narration");
        }
        let Received(mtype, len) = receive(n, q, msgtyp, max)?;
        let text = q.text(len);
        match (tallies.get_mut(&mtype), message::decode(text, max)) {
            (Some(tally), Ok(frame)) => tally.record(&frame),
            (Some(tally), Err(_)) => tally.record_undecodable(text.len()),
            (None, _) => {
                return Err(Error::bad_data(
                    format!("msgrcv({}, .., {msgtyp})", q.id()),
                    format!("a message of type {mtype}, which is not one of {wanted:?}"),
                ));
            }
        }
    }
    n.unmute();
    let mut all = Tally::new(0);
    for (mtype, tally) in &tallies {
        n.say(format_args!(
            "type {mtype}: {}",
            tally.summary().trim_start_matches("summary: ")
        ));
        all.absorb(tally);
    }
    print_summary(all.summary())?;
    all.verdict()
}
// ANCHOR_END: consume

/// What one `msgrcv` got: its type and its length (the text stays in the queue's buffer).
struct Received(i64, usize);

impl common::narrate::Shown for Received {
    fn shown(&self) -> String {
        format!("{}   (mtype={})", self.1, self.0)
    }
}

/// One blocking `msgrcv`, narrated.
fn receive(n: &Narrator, q: &mut Queue, msgtyp: i64, max: usize) -> Result<Received> {
    let id = q.id();
    n.call(
        format_args!("msgrcv({id}, buf, {max}, {msgtyp}, 0)"),
        || {
            q.msgrcv(msgtyp, max, false)
                .map(|(mtype, len)| Received(mtype, len))
        },
    )
    .map_err(|e| match e.errno() {
        Some(Errno::EIDRM) => {
            e.hint("the queue was removed while I waited (by `clean`, or another consumer)")
        }
        _ => e,
    })
}

/// The producer's whole role: makes the queue, optionally shrinks it, sends, and leaves
/// the queue (with its messages) for the consumer. Returns the queue's identifier.
pub fn producer_role(
    n: &Narrator,
    key: Key,
    mode: u32,
    capacity: Option<u64>,
    plan: &Plan,
) -> Result<()> {
    let mut q = create(n, key, mode)?;
    let remove = remove_on_drop(n, &q);
    cleanup::exit_on_interrupt(n)?;
    if let Some(bytes) = capacity {
        n.call(
            format_args!("msgctl({}, IPC_SET, {{msg_qbytes={bytes}}})", q.id()),
            || q.set_capacity(bytes),
        )
        .map_err(|e| e.hint("only root may raise the capacity above /proc/sys/kernel/msgmnb"))?;
    }
    produce(n, &mut q, &plan.types, plan.count, plan.size, plan.nowait)?;
    // The queue is the consumer's now: it outlives this process.
    remove.disarm();
    n.announce(format_args!(
        "done: the queue (key {}, id {}) stays after I exit; see `ipcs -q`",
        key_shown(key),
        q.id()
    ));
    Ok(())
}

/// The consumer's whole role: opens the queue, receives, and removes the queue if it is
/// empty (if not, the messages left are for other consumers, and the last one removes it).
pub fn consumer_role(n: &Narrator, key: Key, msgtyp: i64, plan: &Plan) -> Result<()> {
    check_type(msgtyp, &plan.types)?;
    let mut q = open(n, key)?;
    let remove = remove_on_drop(n, &q);
    cleanup::exit_on_interrupt(n)?;
    consume(n, &mut q, msgtyp, &plan.types, plan.count)?;
    finish(n, &q, remove)
}

/// Removes the queue if it is empty (the guard does it as it drops), or leaves it for
/// the other consumers.
fn finish(n: &Narrator, q: &Queue, remove: Guard) -> Result<()> {
    match q.stat() {
        Ok(status) if status.messages > 0 => {
            remove.disarm();
            n.say(format_args!(
                "{} messages are left for other consumers; the last one removes the queue",
                status.messages
            ));
        }
        // Empty, or already removed by another consumer: nothing to keep.
        _ => drop(remove),
    }
    Ok(())
}

/// What the producer sends: `count` messages of each type, `size` bytes each.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Message types, each at least 1.
    pub types: Vec<i64>,
    /// Messages of each type.
    pub count: u64,
    /// Payload bytes per message.
    pub size: usize,
    /// Fail with EAGAIN instead of waiting when the queue is full.
    pub nowait: bool,
}

// ANCHOR: exchange
/// Both roles in one terminal: the parent creates the queue and forks; the child opens
/// it by the same key and consumes while the parent produces.
pub fn exchange(n: &Narrator, key: Key, mode: u32, plan: &Plan) -> Result<()> {
    let mut q = create(n, key, mode)?;
    let remove = remove_on_drop(n, &q);
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            let result =
                open(&me, key).and_then(|mut q| consume(&me, &mut q, 0, &plan.types, plan.count));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            cleanup::exit_on_interrupt(n)?;
            produce(n, &mut q, &plan.types, plan.count, plan.size, plan.nowait)?;
            process::wait_for(n, child, "consumer")?;
            drop(remove);
            Ok(())
        }
    }
}
// ANCHOR_END: exchange

/// `--raw`: prints each message's type and text as it arrives, `count` messages in all,
/// so that a producer in another language can be checked by eye.
pub fn consume_raw(n: &Narrator, key: Key, msgtyp: i64, count: u64) -> Result<()> {
    let mut q = open(n, key)?;
    let remove = remove_on_drop(n, &q);
    cleanup::exit_on_interrupt(n)?;
    let max = msgmax();
    let mut bytes = 0;
    for _ in 0..count {
        let Received(mtype, len) = receive(n, &mut q, msgtyp, max)?;
        let text = q.text(len);
        bytes += text.len();
        print_summary(format_args!(
            "type={mtype} bytes={}: {}",
            text.len(),
            String::from_utf8_lossy(text).escape_debug()
        ))?;
    }
    print_summary(format_args!("summary: messages={count} bytes={bytes}"))?;
    finish(n, &q, remove)
}

// ANCHOR: status
/// `msgctl(IPC_STAT)`: what the kernel knows about the queue.
pub fn status(n: &Narrator, key: Key) -> Result<()> {
    let q = open(n, key)?;
    let s = n.call(format_args!("msgctl({}, IPC_STAT, &ds)", q.id()), || {
        q.stat()
    })?;
    n.say(format_args!(
        "{} messages, {} bytes of {} (capacity), last msgsnd by pid {}, last msgrcv by pid {}, mode {:04o}",
        s.messages, s.bytes, s.capacity, s.last_sender, s.last_receiver, s.mode
    ));
    print_summary(format_args!(
        "summary: messages={} bytes={} capacity={} last_sender={} last_receiver={}",
        s.messages, s.bytes, s.capacity, s.last_sender, s.last_receiver
    ))
}
// ANCHOR_END: status

/// Removes the queue for `key`, if there is one (`msgctl(IPC_RMID)`).
pub fn clean(n: &Narrator, key: Key) -> Result<()> {
    match n.call(format_args!("msgget({}, 0)", key_shown(key)), || {
        sysv::msgget(key, 0)
    }) {
        Ok(q) => {
            n.call(format_args!("msgctl({}, IPC_RMID, NULL)", q.id()), || {
                q.remove()
            })?;
            print_summary("summary: removed=1")
        }
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            n.say("no queue has this key: nothing to clean");
            print_summary("summary: removed=0")
        }
        Err(e) => Err(e),
    }
}
