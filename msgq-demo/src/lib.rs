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
//! - [`status`] and [`clean`]: `msgctl` IPC_STAT and IPC_RMID (only of the user's own
//!   queue, and not while a process that used it still runs);
//! - [`posix`]: the same over a POSIX queue (`mq_open`), with priorities and the three
//!   ways to send to a full queue.
//!
//! A System V queue has no end-of-file and no time-out: a `msgrcv` waiting for a producer
//! that was killed waits forever. So every wait here is a loop of `msgsnd`/`msgrcv` with
//! IPC_NOWAIT and short pauses, which checks between two tries that the process on the
//! other side still lives (see [`patiently`]).
//!
//! Usage: `cargo run -p msgq-demo -- --help`. See also: svipc(7), msgget(2), msgsnd(2),
//! msgctl(2), mq_overview(7), and TLPI chapters 46 and 52.

pub mod posix;
pub mod sysv;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cleanup::{self, Guard};
use common::message;
use common::narrate::{Shown, print_summary};
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

/// Opens the existing queue for `key`, and refuses it unless this user created and owns
/// it (see [`check_owner`]).
pub fn open(n: &Narrator, key: Key) -> Result<Queue> {
    let q = n
        .call(format_args!("msgget({}, 0)", key_shown(key)), || {
            sysv::msgget(key, 0)
        })
        .map_err(|e| match e.errno() {
            Some(Errno::ENOENT) => {
                e.hint("no queue has this key: start the producer first (with the same --key)")
            }
            _ => e,
        })?;
    check_owner(n, &q, key)?;
    Ok(q)
}

/// A key is only a number: anyone may create a queue at it first, another user included,
/// and with mode 0666 the queue would let us read and remove it. So before using or
/// removing a queue it did not create, the demo asks `msgctl(IPC_STAT)` who created it
/// (`msg_perm.cuid`) and who owns it (`msg_perm.uid`), and refuses a queue that is not
/// entirely the user's (svipc(7)).
pub fn check_owner(n: &Narrator, q: &Queue, key: Key) -> Result<sysv::Status> {
    let call = format!("msgctl({}, IPC_STAT, &ds)", q.id());
    let status = n.call(&call, || q.stat()).map_err(vanished)?;
    let me = nix::unistd::Uid::effective().as_raw();
    if status.creator != me || status.owner != me {
        return Err(Error::bad_data(
            call,
            format!(
                "the queue with key {} was created by uid {} and is owned by uid {}, not by you (uid {me})",
                key_shown(key),
                status.creator,
                status.owner
            ),
        )
        .hint(format!(
            "another user made a queue at your key first: the demo never reads or removes \
             another user's queue; use another --key or --path, and ask its owner to remove \
             it (`ipcrm -q {}`)",
            q.id()
        )));
    }
    Ok(status)
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

/// Adds the hint for a queue that was removed while we used it: a call on an identifier
/// that no longer exists fails with EINVAL, one that was waiting when it was removed
/// with EIDRM (msgsnd(2), msgrcv(2)).
pub fn vanished(e: Error) -> Error {
    match e.errno() {
        Some(Errno::EINVAL | Errno::EIDRM) => {
            e.hint("the queue was removed (ipcrm or clean) while we used it")
        }
        _ => e,
    }
}

/// The process on the other side of a wait, whose death ends the wait.
#[derive(Debug, Clone, Copy)]
pub enum Peer {
    /// A process we know by its pid: the forked consumer, or the parent producer.
    Known {
        /// What it is, for the message: "producer", "consumer".
        role: &'static str,
        /// Its pid.
        pid: i32,
    },
    /// The producer, known only as the last process that sent to the queue
    /// (`msg_lspid`); a consumer in its own terminal waits for it.
    LastSender,
    /// A consumer, known only as the last process that received from the queue
    /// (`msg_lrpid`); a producer in its own terminal, in front of a full queue, waits for it.
    LastReceiver,
}

impl Peer {
    /// Fails if the peer is known and no longer alive. A `LastSender` or `LastReceiver`
    /// of pid 0 has not come yet: waiting for it is what a role in its own terminal does.
    pub fn check(&self, q: &Queue) -> Result<()> {
        let (role, pid) = match *self {
            Peer::Known { role, pid } => (role, pid),
            Peer::LastSender => ("producer", q.stat().map(|s| s.last_sender).unwrap_or(0)),
            Peer::LastReceiver => ("consumer", q.stat().map(|s| s.last_receiver).unwrap_or(0)),
        };
        if pid > 0 && !process::is_alive(pid) {
            let after = match self {
                Peer::LastSender => {
                    "and nothing more is in the queue for me: the messages it did not send will never come"
                }
                Peer::LastReceiver => "and the queue is full: nobody is left to make room",
                Peer::Known { .. } => "before the end",
            };
            return Err(process::gone(role, pid).hint(format!(
                "the {role} (pid {pid}) has gone (killed, or ended without me), {after}"
            )));
        }
        Ok(())
    }
}

/// How often a waiting role checks that its peer lives.
pub const PEER_CHECK: Duration = Duration::from_millis(500);

/// What a role says when it first has to wait, and whether it has said it.
#[derive(Debug)]
pub struct Waiting {
    text: String,
    told: bool,
}

impl Waiting {
    /// A line to say once, at the first wait.
    pub fn new(text: impl Into<String>) -> Waiting {
        Waiting {
            text: text.into(),
            told: false,
        }
    }
}

/// Makes `op` (described by `desc`: a `msgsnd` or `msgrcv` with IPC_NOWAIT, or an
/// `mq_timedsend` or `mq_timedreceive` with a deadline [`PEER_CHECK`] away) until it no
/// longer finds the queue full or without a message for us (EAGAIN, ENOMSG, ETIMEDOUT).
///
/// The first try is narrated; if it must wait, the demo says so (`waiting`, the first
/// time only, even when narration is muted), tries again without narration, and every [`PEER_CHECK`] calls `alive`, which fails when
/// the process on the other side is gone. After EAGAIN or ENOMSG (the call returned at
/// once) it pauses between tries, from nothing up to 5 ms. A plain blocking call would
/// wait without a CPU cycle, but for ever if the peer is dead: System V message calls
/// have no time-out at all, and a POSIX queue has no end-of-file.
pub fn patiently<C: ?Sized, T: Shown>(
    n: &Narrator,
    ctx: &mut C,
    desc: &str,
    waiting: &mut Waiting,
    mut alive: impl FnMut(&C) -> Result<()>,
    mut op: impl FnMut(&mut C) -> nix::Result<T>,
) -> Result<T> {
    let idle = |errno: Errno| matches!(errno, Errno::EAGAIN | Errno::ENOMSG | Errno::ETIMEDOUT);
    match n.call(desc, || op(ctx)) {
        Err(e) if e.errno().is_some_and(idle) => {}
        other => return other.map_err(vanished),
    }
    if !waiting.told {
        n.announce(&waiting.text);
        waiting.told = true;
    }
    let mut tries = 0u32;
    let mut checked = Instant::now();
    loop {
        let errno = match op(ctx) {
            Ok(value) => {
                n.say(format_args!("{desc} = {}   (after waiting)", value.shown()));
                return Ok(value);
            }
            Err(errno) if idle(errno) => errno,
            Err(errno) => return Err(vanished(Error::sys(desc, errno))),
        };
        if checked.elapsed() >= PEER_CHECK {
            alive(ctx)?;
            checked = Instant::now();
        }
        if errno == Errno::ETIMEDOUT {
            // The call itself waited.
            continue;
        }
        // A few hundred tries at once (a peer on another CPU is often that close), then
        // pauses of 50 us doubling up to 5 ms: a wait of seconds costs a few hundred
        // wake-ups, and a message is seen at most 5 ms after it came.
        tries += 1;
        if tries < 200 {
            std::thread::yield_now();
        } else {
            let shift = (tries - 200).min(7);
            std::thread::sleep(Duration::from_micros(50 << shift).min(Duration::from_millis(5)));
        }
    }
}

// ANCHOR: produce
/// Sends `count` messages of each type in `types`, in turn, each a frame with a
/// `size`-byte payload numbered per type. A full queue makes the producer wait for a
/// consumer (while `peer` lives), or with `nowait` fail with EAGAIN.
pub fn produce(n: &Narrator, q: &mut Queue, peer: Peer, plan: &Plan) -> Result<()> {
    let mut frame = Vec::with_capacity(plan.size + message::OVERHEAD);
    let capacity = q
        .stat()
        .map(|s| s.capacity)
        .map_err(|e| vanished(Error::sys("msgctl(IPC_STAT)", e)))?;
    let mut waiting = Waiting::new(format!(
        "the queue is full ({capacity} bytes): I wait for a consumer to make room \
         (msgsnd again every few ms; every {PEER_CHECK:?}, is the consumer alive?)"
    ));
    for seq in 0..plan.count {
        if seq == NARRATED_MESSAGES {
            n.mute("... sending the rest without narration");
        }
        for &mtype in &plan.types {
            message::encode_into(seq, plan.size, &mut frame);
            let desc = format!(
                "msgsnd({}, {{mtype={mtype}, seq={seq}}}, {}, IPC_NOWAIT)",
                q.id(),
                frame.len()
            );
            if plan.nowait {
                n.call(&desc, || q.msgsnd(mtype, &frame, true))
                    .map_err(|e| match e.errno() {
                        Some(Errno::EAGAIN) => e.hint(
                            "the queue is full; without --nowait, the producer would wait for a consumer",
                        ),
                        _ => vanished(e),
                    })?;
                continue;
            }
            patiently(
                n,
                q,
                &desc,
                &mut waiting,
                |q| peer.check(q),
                |q| q.msgsnd(mtype, &frame, true),
            )?;
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
pub fn consume(
    n: &Narrator,
    q: &mut Queue,
    peer: Peer,
    msgtyp: i64,
    types: &[i64],
    count: u64,
) -> Result<()> {
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
    let mut waiting = waiting_for_producer();
    for received in 0..total {
        if received == NARRATED_MESSAGES {
            n.mute("... receiving the rest without narration");
        }
        let Received(mtype, len) = receive(n, q, peer, msgtyp, max, &mut waiting)?;
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

/// One `msgrcv`, narrated, which waits (see [`patiently`]) while the queue has no
/// message for us and the producer (`peer`) lives.
/// What a consumer says when it first has to wait for the producer.
fn waiting_for_producer() -> Waiting {
    Waiting::new(format!(
        "no message for me yet: I wait for the producer (msgrcv again every few ms; every \
         {PEER_CHECK:?}, is the producer alive?)"
    ))
}

fn receive(
    n: &Narrator,
    q: &mut Queue,
    peer: Peer,
    msgtyp: i64,
    max: usize,
    waiting: &mut Waiting,
) -> Result<Received> {
    let desc = format!("msgrcv({}, buf, {max}, {msgtyp}, IPC_NOWAIT)", q.id());
    patiently(
        n,
        q,
        &desc,
        waiting,
        |q| peer.check(q),
        |q| {
            q.msgrcv(msgtyp, max, true)
                .map(|(mtype, len)| Received(mtype, len))
        },
    )
}

/// The producer's whole role: makes the queue, optionally shrinks it, sends, and leaves
/// the queue (with its messages) for the consumer.
pub fn producer_role(
    n: &Narrator,
    key: Key,
    mode: u32,
    capacity: Option<u64>,
    plan: &Plan,
) -> Result<()> {
    if let Some(bytes) = capacity {
        check_capacity(bytes, plan.size)?;
    }
    let mut q = create(n, key, mode)?;
    let remove = remove_on_drop(n, &q);
    cleanup::exit_on_interrupt(n)?;
    if let Some(bytes) = capacity {
        set_capacity(n, &q, bytes)?;
    }
    produce(n, &mut q, Peer::LastReceiver, plan)?;
    // The queue is the consumer's now: it outlives this process.
    remove.disarm();
    n.announce(format_args!(
        "done: the queue (key {}, id {}) stays after I exit; see `ipcs -q`",
        key_shown(key),
        q.id()
    ));
    Ok(())
}

/// The largest `--capacity`: the kernel takes `msg_qbytes` as a 32-bit `int` (on this
/// machine, 4294967296 was stored as 0 and 4294967301 as 5, and 2147483648 refused), so
/// a larger number cannot mean what it says.
pub const MAX_CAPACITY: u64 = i32::MAX as u64;

/// Refuses a capacity that could never hold one message: `msgsnd` would wait for room
/// for ever, since no consumer can take a message that never got in.
pub fn check_capacity(bytes: u64, size: usize) -> Result<()> {
    let one = (size + message::OVERHEAD) as u64;
    if bytes < one {
        return Err(Error::usage(format!(
            "--capacity {bytes}: the queue could not hold even one message of {one} bytes \
             (--size {size} and the 16-byte frame), so the producer would wait for ever; \
             use --capacity {one} or more"
        )));
    }
    if bytes > MAX_CAPACITY {
        return Err(Error::usage(format!(
            "--capacity {bytes}: over {MAX_CAPACITY}, the largest msg_qbytes the kernel takes"
        )));
    }
    Ok(())
}

/// `msgctl(IPC_SET)` of the capacity, then `msgctl(IPC_STAT)` to check what the kernel
/// kept: a value it stored differently would make the lesson (and the wait) wrong.
fn set_capacity(n: &Narrator, q: &Queue, bytes: u64) -> Result<()> {
    n.call(
        format_args!("msgctl({}, IPC_SET, {{msg_qbytes={bytes}}})", q.id()),
        || q.set_capacity(bytes),
    )
    .map_err(|e| match e.errno() {
        Some(Errno::EPERM) => {
            e.hint("only root may raise the capacity above /proc/sys/kernel/msgmnb")
        }
        _ => vanished(e),
    })?;
    let kept = q.stat().map(|s| s.capacity).unwrap_or(0);
    if kept != bytes {
        return Err(Error::bad_data(
            format!("msgctl({}, IPC_STAT, &ds)", q.id()),
            format!("the kernel kept msg_qbytes={kept}, not the {bytes} asked for"),
        ));
    }
    Ok(())
}

/// The consumer's whole role: opens the queue, receives, and removes the queue if it is
/// empty (if not, the messages left are for other consumers, and the last one removes it).
pub fn consumer_role(n: &Narrator, key: Key, msgtyp: i64, plan: &Plan) -> Result<()> {
    check_type(msgtyp, &plan.types)?;
    let mut q = open(n, key)?;
    let remove = remove_on_drop(n, &q);
    cleanup::exit_on_interrupt(n)?;
    consume(n, &mut q, Peer::LastSender, msgtyp, &plan.types, plan.count)?;
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
/// it by the same key and consumes while the parent produces. Each watches the other.
pub fn exchange(n: &Narrator, key: Key, mode: u32, plan: &Plan) -> Result<()> {
    let mut q = create(n, key, mode)?;
    let remove = remove_on_drop(n, &q);
    let parent = nix::unistd::getpid().as_raw();
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            let producer = Peer::Known {
                role: "producer",
                pid: parent,
            };
            let result = open(&me, key)
                .and_then(|mut q| consume(&me, &mut q, producer, 0, &plan.types, plan.count));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            cleanup::exit_on_interrupt(n)?;
            let consumer = Peer::Known {
                role: "consumer",
                pid: child.as_raw(),
            };
            produce(n, &mut q, consumer, plan)?;
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
    let mut waiting = waiting_for_producer();
    for _ in 0..count {
        let Received(mtype, len) = receive(n, &mut q, Peer::LastSender, msgtyp, max, &mut waiting)?;
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
    // Looking is harmless: status shows any queue it may read, another user's too.
    let q = n
        .call(format_args!("msgget({}, 0)", key_shown(key)), || {
            sysv::msgget(key, 0)
        })
        .map_err(|e| match e.errno() {
            Some(Errno::ENOENT) => e.hint("no queue has this key"),
            _ => e,
        })?;
    let s = n.call(format_args!("msgctl({}, IPC_STAT, &ds)", q.id()), || {
        q.stat()
    })?;
    n.say(format_args!(
        "{} messages, {} bytes of {} (capacity), last msgsnd by pid {}, last msgrcv by pid {}, mode {:04o}, created by uid {}",
        s.messages, s.bytes, s.capacity, s.last_sender, s.last_receiver, s.mode, s.creator
    ));
    print_summary(format_args!(
        "summary: messages={} bytes={} capacity={} last_sender={} last_receiver={}",
        s.messages, s.bytes, s.capacity, s.last_sender, s.last_receiver
    ))
}
// ANCHOR_END: status

/// What `clean` did with one object.
#[derive(Debug)]
pub enum Cleaned {
    /// It was there, ours, unused: removed.
    Removed,
    /// Nothing was there.
    Absent,
    /// Something was there that is not ours to remove; the error says what and why.
    Refused(Error),
}

/// `clean`: removes what a killed run left behind, the System V queue for `key` and the
/// POSIX queue `name`, but only what is the user's own and unused. Prints what it
/// refuses and why, then `summary: removed=N`; exit code 1 if it refused anything.
pub fn clean(n: &Narrator, key: Key, name: &str) -> Result<()> {
    let results = [clean_sysv(n, key)?, posix::clean(n, name)?];
    let removed = results
        .iter()
        .filter(|r| matches!(r, Cleaned::Removed))
        .count();
    let mut refused = Vec::new();
    for result in results {
        if let Cleaned::Refused(why) = result {
            n.announce(format_args!("refused: {why}"));
            refused.push(why);
        }
    }
    print_summary(format_args!("summary: removed={removed}"))?;
    match refused.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(()),
    }
}

/// Removes the System V queue for `key` (`msgctl(IPC_RMID)`) if it is there, ours
/// ([`check_owner`]), and no process that used it still runs.
pub fn clean_sysv(n: &Narrator, key: Key) -> Result<Cleaned> {
    let q = match n.call(format_args!("msgget({}, 0)", key_shown(key)), || {
        sysv::msgget(key, 0)
    }) {
        Ok(q) => q,
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            n.say("no System V queue has this key: nothing to clean");
            return Ok(Cleaned::Absent);
        }
        Err(e) => return Err(e),
    };
    let status = match check_owner(n, &q, key) {
        Ok(status) => status,
        Err(why) => return Ok(Cleaned::Refused(why)),
    };
    // The last sender or receiver may still be at work (a producer waiting for room, a
    // consumer between two messages): its queue is not a leftover.
    let me = nix::unistd::getpid().as_raw();
    for (pid, did) in [
        (status.last_sender, "sent to it"),
        (status.last_receiver, "received from it"),
    ] {
        if pid > 0 && pid != me && process::is_alive(pid) {
            return Ok(Cleaned::Refused(
                Error::bad_data(
                    format!("msgctl({}, IPC_STAT, &ds)", q.id()),
                    format!("pid {pid} last {did} and is still running"),
                )
                .hint("the queue is in use, not left behind: stop that process first (Ctrl-C removes what it made)"),
            ));
        }
    }
    n.call(format_args!("msgctl({}, IPC_RMID, NULL)", q.id()), || {
        q.remove()
    })
    .map_err(vanished)?;
    Ok(Cleaned::Removed)
}
