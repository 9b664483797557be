//! Zero capacity, and the rendezvous: a send that returns only once the receiver has
//! taken the message.
//!
//! Note 001, IPC models, section 3, lists a link of zero capacity, where every send
//! waits. Linux has no such link, and the lesson first shows what the kernel does
//! instead when asked for one:
//!
//! - a System V queue accepts `msg_qbytes` 0 (msgctl(2) only checks the upper bound),
//!   but then no message ever fits: `msgsnd` fails with EAGAIN (IPC_NOWAIT), or would
//!   wait forever, even with a receiver waiting, because the kernel looks for room
//!   before it looks for a waiting receiver (`ipc/msg.c`, `do_msgsnd`);
//! - a pipe asked for 0 bytes with `F_SETPIPE_SZ` gets one page (fcntl(2));
//! - a POSIX queue asked for `mq_maxmsg` 0 is EINVAL (mq_open(3)).
//!
//! Then it builds the link honestly from two messages: the sender sends, then waits for
//! the receiver's acknowledgement, which the receiver sends only after it took the
//! message. Both sides block: that is the rendezvous. The kernel still holds the message
//! for the moment between the two calls; what makes the capacity zero is that the
//! sender cannot run ahead of the receiver. The [`crate::timeline`] proves it: the
//! receiver's record "took message k" is written before it acknowledges, and the
//! sender's "the send of message k returned" after the acknowledgement arrived, so the
//! first comes before the second in the pipe, always.
//!
//! Usage: `passing-demo zero [--count 5]` (also `rendezvous`). See also: msgctl(2),
//! msgop(2), fcntl(2) "F_SETPIPE_SZ", mq_open(3), [`crate::sync`] for bounded links.

use common::message;
use common::narrate::print_summary;
use common::timing::Stopwatch;
use common::{Error, HintOn, Narrator, Result, cleanup, say, tr};
use msgq_demo::sysv::{self, Key};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};

use crate::crew::Crew;
use crate::timeline::{Recorder, Timeline, What};
use crate::{Names, Purpose, sys};

/// The type of the messages, and of the acknowledgements, on the one queue.
const DATA: i64 = 1;
const ACK: i64 = 2;

/// Payload bytes per message.
const SIZE: usize = 32;

// ANCHOR: offers
/// What the kernel does when asked for a link of capacity zero; returns the three
/// answers for the summary.
fn what_the_kernel_offers(n: &Narrator, names: &Names, q: &mut sysv::Queue) -> Result<[String; 3]> {
    let usual = sys::msgctl_stat(n, q)?.capacity;
    sys::msgctl_set_qbytes(n, q, 0)?;
    say!(
        n,
        "the kernel accepts a queue of 0 bytes; now a one-byte message:"
    );
    let queue = match sys::msgsnd(n, q, DATA, b"x", true) {
        Err(e) if e.errno() == Some(Errno::EAGAIN) => "EAGAIN".to_string(),
        Err(e) => return Err(e),
        Ok(()) => "accepted".to_string(),
    };
    say!(
        n,
        "a queue of 0 bytes is not a rendezvous: nothing ever fits, and a blocking msgsnd would wait forever, even with a receiver waiting in msgrcv (the kernel checks for room first)"
    );
    sys::msgctl_set_qbytes(n, q, usual)?;

    let (r, w) = common::sys::pipe2(n, OFlag::O_CLOEXEC)?;
    let pipe = common::sys::fcntl(n, &w, FcntlArg::F_SETPIPE_SZ(0))?;
    say!(
        n,
        "a pipe asked for 0 bytes holds {pipe}: the smallest pipe is one page",
        pipe
    );
    common::sys::close(n, r)?;
    common::sys::close(n, w)?;

    let asked = sys::mq_open(n, &names.mq(), 0, 64).hint_on(
        Errno::EEXIST,
        tr!("a queue of this name is left from a killed run: `passing-demo clean`"),
    );
    let mq = match asked {
        Err(e) if e.errno() == Some(Errno::EINVAL) => "EINVAL".to_string(),
        Err(e) => return Err(e),
        Ok(mq) => {
            sys::mq_close(n, mq)?;
            sys::mq_unlink(n, &names.mq())?;
            "accepted".to_string()
        }
    };
    say!(n, "a POSIX queue for 0 messages is refused outright");
    Ok([queue, pipe.to_string(), mq])
}
// ANCHOR_END: offers

/// The lesson: what the kernel offers, then `count` rendezvous between a sender and a
/// receiver over one System V queue (messages of type 1, acknowledgements of type 2).
pub fn zero(n: &Narrator, names: &Names, count: u64) -> Result<()> {
    if !(1..=100_000).contains(&count) {
        return Err(Error::usage(tr!("zero takes --count 1 to 100000")));
    }
    let key = names.key(Purpose::Zero);
    let mut q = sys::msgget_create(n, key).hint_on(
        Errno::EEXIST,
        tr!("a queue with this key exists: another run's, or one a killed run left: `passing-demo clean`"),
    )?;
    let id = q.id();
    let _remove = cleanup::Guard::new({
        let n = n.clone();
        move || {
            let _ = sys::msgctl_rmid(&n, id);
        }
    });
    let [queue, pipe, mq] = what_the_kernel_offers(n, names, &mut q)?;
    say!(
        n,
        "so the zero-capacity link is built from two messages: a send, and an acknowledgement the sender waits for"
    );
    let timeline = Timeline::new(n)?;
    let mut crew = Crew::new();
    crew.spawn(n, "receiver", |me| {
        receiver(me, key, &timeline.recorder(1), count)
    })?;
    crew.spawn(n, "sender", |me| {
        sender(me, key, &timeline.recorder(0), count)
    })?;
    cleanup::exit_on_interrupt(n)?;
    let clock = Stopwatch::start();
    // For each message, the event number of its take, then whether its send returned
    // after that.
    let mut took_at = vec![None; usize::try_from(count).unwrap_or(0)];
    let (mut in_order, mut early) = (0u64, 0u64);
    timeline.follow(n, &crew, |number, e| {
        let slot = usize::try_from(e.seq).ok().and_then(|i| took_at.get_mut(i));
        let Some(slot) = slot else {
            return Err(Error::bad_data(
                "read(timeline)",
                tr!("an event that cannot be"),
            ));
        };
        match e.what {
            What::Took => *slot = Some(number),
            What::Sent if slot.is_some() => in_order += 1,
            What::Sent => early += 1,
            _ => {
                return Err(Error::bad_data(
                    "read(timeline)",
                    tr!("an event that cannot be"),
                ));
            }
        }
        Ok(false)
    })?;
    crew.wait_all(n)?;
    let each = clock.elapsed() / u32::try_from(count).unwrap_or(u32::MAX);
    let micros = each.as_micros();
    say!(
        n,
        "about {micros} µs per rendezvous: two messages and two wake-ups each",
        micros
    );
    print_summary(format_args!(
        "summary: messages={count} took_before_send_returned={in_order} returned_early={early} qbytes_zero={queue} pipe_zero={pipe} mq_maxmsg_zero={mq}"
    ))?;
    if in_order != count || early != 0 {
        return Err(Error::bad_data(
            "check the timeline",
            tr!("a send returned before the receiver had taken its message"),
        ));
    }
    Ok(())
}

// ANCHOR: rendezvous
/// The sender: each send is a `msgsnd` followed by a `msgrcv` of the acknowledgement;
/// only then has the send returned.
fn sender(me: &Narrator, key: Key, rec: &Recorder<'_>, count: u64) -> Result<()> {
    let mut q = sys::msgget(me, key)?;
    let mut frame = Vec::new();
    for seq in me.first_few(0..count, tr!("the remaining rendezvous without narration")) {
        message::encode_into(seq, SIZE, &mut frame);
        sys::msgsnd(me, &mut q, DATA, &frame, false)?;
        let ack = sys::msgrcv(me, &mut q, ACK, 8, false)?;
        if q.text(ack.len) != seq.to_le_bytes() {
            return Err(Error::bad_data(
                "msgrcv",
                tr!("an acknowledgement for another message"),
            ));
        }
        say!(
            me,
            "the receiver has taken message {seq}: my send returns",
            seq
        );
        rec.record(What::Sent, seq, 0)?;
    }
    Ok(())
}

/// The receiver: takes a message, records that it took it, and only then acknowledges.
fn receiver(me: &Narrator, key: Key, rec: &Recorder<'_>, count: u64) -> Result<()> {
    let mut q = sys::msgget(me, key)?;
    for expected in me.first_few(0..count, tr!("the remaining rendezvous without narration")) {
        let taken = sys::msgrcv(me, &mut q, DATA, message::OVERHEAD + SIZE, false)?;
        let seq = match message::decode(q.text(taken.len), SIZE) {
            Ok(frame) if frame.intact && frame.seq == expected => frame.seq,
            _ => {
                return Err(Error::bad_data(
                    "msgrcv",
                    tr!("a damaged or unexpected message"),
                ));
            }
        };
        rec.record(What::Took, seq, 0)?;
        sys::msgsnd(me, &mut q, ACK, &seq.to_le_bytes(), false)?;
    }
    Ok(())
}
// ANCHOR_END: rendezvous
