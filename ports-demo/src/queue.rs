//! A port's bounded queue, the four things a sender may do when it is full, and the order
//! messages arrive in (note 003, 3.7.2).
//!
//! - [`receive`] registers a port under a name and takes what arrives; with `--hold` it
//!   takes nothing until Enter, so the queue fills. It checks, per sender, that sequence
//!   numbers arrive in order, and counts how often one sender's messages are interleaved
//!   with another's.
//! - [`send`] looks the name up and sends COUNT messages with one of the four options:
//!   `wait`, `timeout` (at most N ms), `now`, `notify`. Then it sends an end mark, waiting
//!   for room, so that the receiver knows what to expect.
//!
//! The note says Mach keeps no absolute order even among one sender's messages. Mach does
//! keep one sender's messages in order (its queues are FIFO; what it does not promise is
//! an order between senders), and so does this rebuild: run three senders at once and
//! the receiver counts interleavings but never a message out of order within a sender.
//!
//! ```text
//! cargo run -p ports-demo -- bootstrap                          # terminal 1
//! cargo run -p ports-demo -- receive --name q --hold            # terminal 2
//! cargo run -p ports-demo -- send --name q --full timeout       # terminal 3
//! ```
//!
//! Message body (12 bytes, little-endian): the sender's pid (u32), a sequence number
//! (u64); id 1 is data, id 2 the end mark (its sequence number = messages sent).
//!
//! See also: socket(7) (SO_SNDBUF), poll(2), send(2) (MSG_DONTWAIT).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::narrate::print_summary;
use common::{Error, Narrator, Result, say, sys, tr};
use nix::poll::PollFlags;

use crate::bootstrap;
use crate::mach_client::wait_for_enter;
use crate::port::{self, Outgoing, Received, SendOption, Sent};
use crate::wire::{Reader, Writer};

/// A data message.
pub const DATA: u32 = 1;
/// A sender's end mark.
pub const END: u32 = 2;

fn body(pid: u32, seq: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.u32(pid).u64(seq);
    w.0
}

/// What the receiver saw of one sender.
#[derive(Debug, Default)]
struct Sender {
    next: u64,
    received: u64,
    out_of_order: u64,
    ended: Option<u64>,
}

// ANCHOR: receive
/// Registers a port as `name` and takes messages until `senders` end marks have come.
/// `patience` bounds the wait for the bootstrap server's answer, not for the senders.
pub fn receive(
    n: &Narrator,
    bootstrap_path: &Path,
    name: &str,
    senders: u64,
    hold: bool,
    queue_bytes: usize,
    patience: Option<Duration>,
) -> Result<()> {
    let (port, send) = port::allocate(n, queue_bytes)?;
    bootstrap::register(n, bootstrap_path, name, &send, patience)?;
    sys::close(n, send.0)?;
    n.essential(tr!("receiver ready: {name} is registered", name));
    if hold {
        n.essential(tr!(
            "holding: I take no message until you press Enter, so the queue fills"
        ));
        wait_for_enter(n)?;
    }
    let mut seen: BTreeMap<u32, Sender> = BTreeMap::new();
    let (mut previous, mut interleavings, mut refused, mut ended) = (None, 0u64, 0u64, 0u64);
    for _ in n.first_few(0u64.., tr!("further messages, without narration")) {
        if ended == senders {
            break;
        }
        let msg = match port::receive(n, &port)? {
            Received::Message(m) => m,
            Received::Refused { why, .. } => {
                refused += 1;
                n.essential(tr!("refused a message: {why}", why));
                continue;
            }
            Received::NoSenders => {
                return Err(Error::bad_data(
                    tr!("receive"),
                    tr!(
                        "every send right is gone before {senders} end marks came",
                        senders
                    ),
                ));
            }
        };
        let mut r = Reader::new(&msg.body, "a queue message");
        let (Ok(pid), Ok(seq), Ok(())) = (r.u32("pid"), r.u64("seq"), r.end()) else {
            refused += 1;
            n.essential(tr!(
                "refused a message: its body is not a pid and a sequence number"
            ));
            continue;
        };
        let sender = seen.entry(pid).or_default();
        if msg.header.id == END {
            sender.ended = Some(seq);
            ended += 1;
            continue;
        }
        if seq != sender.next {
            sender.out_of_order += 1;
        }
        sender.next = seq + 1;
        sender.received += 1;
        if previous.is_some_and(|p| p != pid) {
            interleavings += 1;
        }
        previous = Some(pid);
    }
    let (mut received, mut out_of_order, mut missing) = (0, 0, 0);
    for (pid, s) in &seen {
        let sent = s.ended.unwrap_or(s.received);
        n.announce(tr!(
            "sender {pid}: {received} of {sent} messages, {out} out of order",
            pid,
            received = s.received,
            sent,
            out = s.out_of_order
        ));
        received += s.received;
        out_of_order += s.out_of_order;
        missing += sent.saturating_sub(s.received);
    }
    print_summary(format_args!(
        "summary: received={received} senders={} out_of_order={out_of_order} missing={missing} interleavings={interleavings} refused={refused}",
        seen.len()
    ))
}
// ANCHOR_END: receive

/// What a sender counts.
#[derive(Debug, Default)]
struct Counts {
    sent: u64,
    full: u64,
    waited: u64,
    timed_out: u64,
    refused: u64,
    kept: u64,
    blocked: Duration,
}

// ANCHOR: send
/// Looks `name` up and sends `count` messages with `option` for a full queue; stops at
/// the first message the option gives up on; then sends the end mark, waiting for room.
/// `patience` bounds the wait for the bootstrap server's answer to the look-up.
pub fn send(
    n: &Narrator,
    bootstrap_path: &Path,
    name: &str,
    count: u64,
    option: SendOption,
    patience: Option<Duration>,
) -> Result<()> {
    let dest = bootstrap::look_up(n, bootstrap_path, name, patience)?;
    let pid = std::process::id();
    let mut c = Counts::default();
    for seq in 0..count {
        let msg = Outgoing {
            id: DATA,
            body: body(pid, seq),
            disposition: 0,
        };
        let start = Instant::now();
        let outcome = port::send(n, &dest, &msg, None, option)?;
        match outcome {
            Sent::Queued { waited } => {
                c.sent += 1;
                if waited {
                    c.full += 1;
                    c.waited += 1;
                    c.blocked += start.elapsed();
                }
            }
            Sent::TimedOut(after) => {
                c.full += 1;
                c.timed_out += 1;
                c.blocked += after;
                n.announce(tr!("timed out after {ms} ms: message {seq} is not sent (MACH_SEND_TIMED_OUT); I stop here", ms = after.as_millis(), seq));
                break;
            }
            Sent::Full if option == SendOption::Now => {
                c.full += 1;
                c.refused += 1;
                n.announce(tr!("message {seq} is not sent: the queue is full and option now does not wait; I stop here", seq));
                break;
            }
            Sent::Full => {
                c.full += 1;
                c.kept += 1;
                n.announce(tr!("kept message {seq}: the queue is full; I hold it and ask poll(2) to tell me when there is room (MACH_SEND_NOTIFY)", seq));
                deliver_when_room(n, &dest, &msg)?;
                c.blocked += start.elapsed();
                c.sent += 1;
            }
        }
        if c.full == 1 && outcome != (Sent::Queued { waited: false }) {
            n.mute(tr!(
                "... the queue has been full once; the rest without narration"
            ));
        }
    }
    n.unmute();
    // The end mark waits for room whatever the option, so that it always arrives.
    let end = Outgoing {
        id: END,
        body: body(pid, c.sent),
        disposition: 0,
    };
    port::send(n, &dest, &end, None, SendOption::Wait)?;
    print_summary(format_args!(
        "summary: sent={} full={} waited={} timed_out={} refused={} kept={} blocked_ms={}",
        c.sent,
        c.full,
        c.waited,
        c.timed_out,
        c.refused,
        c.kept,
        c.blocked.as_millis()
    ))
}
// ANCHOR_END: send

// ANCHOR: notify
/// The kept message's delivery: `poll` for POLLOUT (the notification) and send it; if
/// another sender took the room first, wait again.
fn deliver_when_room(n: &Narrator, dest: &port::SendRight, msg: &Outgoing) -> Result<()> {
    loop {
        let ready = sys::poll(
            n,
            &[(std::os::fd::AsFd::as_fd(dest), PollFlags::POLLOUT)],
            None,
        )?;
        if ready.has(0, PollFlags::POLLHUP | PollFlags::POLLERR) {
            return Err(Error::bad_data(
                tr!("wait for room"),
                tr!("the port is a dead name: its receiver has ended"),
            ));
        }
        if let Sent::Queued { .. } = port::send(n, dest, msg, None, SendOption::Notify)? {
            say!(
                n,
                "notified: there was room, and the kept message is in the queue"
            );
            return Ok(());
        }
    }
}
// ANCHOR_END: notify
