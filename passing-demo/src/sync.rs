//! Synchronisation: blocking, non-blocking and time-out sends and receives, in every
//! combination, and what each side sees.
//!
//! Note 001, IPC models, section 3, says a blocking call waits and a non-blocking one
//! returns at once. Which one waits, and for what, depends on the link's state: a
//! receive can only wait on an *empty* link, a send only on a *full* one. So the lesson
//! puts each side in front of the case where its mode matters:
//!
//! 1. The receiver makes its first receive on the empty link (the sender waits for a
//!    word on a control pipe before it sends anything): blocking, it waits and returns
//!    with the first message; non-blocking, it fails at once with EAGAIN; with a
//!    time-out, it waits that long, then fails with EAGAIN.
//! 2. The sender fills the link while the receiver waits for a word on the other control
//!    pipe, and counts how many messages it held. Its next send meets the full link:
//!    non-blocking, EAGAIN at once; with a time-out, a failure after it; blocking, it
//!    waits for the receiver. The observer checks that on the [`crate::timeline`]: the
//!    receiver started taking messages after the link was full and before that send
//!    returned. (The receiver's record of *which* message it took may come after the
//!    sender's: a record is written after its call returns, and the take that made room
//!    is what let the send return, not the record of it.)
//! 3. The receiver drains the link while the sender sends the rest in its mode; a
//!    non-blocking side waits with `poll(2)` before it tries again.
//!
//! `bounded` is the same lesson with both sides blocking, over a pipe or a queue whose
//! capacity is set, where the number of messages held can be computed beforehand.
//!
//! Usage: `passing-demo sync --send block|nonblock|timeout --receive ... [--via
//! socket|pipe|queue]`, `passing-demo bounded [--via pipe|queue] [--capacity BYTES]`.
//! See also: socket(7) (SO_RCVTIMEO, SO_SNDTIMEO), pipe(7), msgop(2), poll(2), and
//! `msgq-demo posix --full`, which shows the three sends to a full POSIX queue.

use std::os::fd::OwnedFd;
use std::time::Duration;

use common::message;
use common::timing::Stopwatch;
use common::{Error, Narrator, Result, cleanup, say, tr};
use nix::fcntl::OFlag;

use crate::Names;
use crate::crew::Crew;
use crate::link::{End, Link, Mode, Try, Via};
use crate::sys::Ready;
use crate::timeline::{Outcome, Recorder, Timeline, What};
use watch::Watch;

mod watch;

/// A link that takes more messages than this without ever being full is a bug.
const FILL_LIMIT: u64 = 1 << 20;

/// The lesson's choices.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The link.
    pub via: Via,
    /// How the sender sends.
    pub send: Mode,
    /// How the receiver receives.
    pub receive: Mode,
    /// The link's capacity in bytes, if set (pipe and queue).
    pub capacity: Option<usize>,
    /// Messages sent after the one that met the full link.
    pub extra: u64,
    /// Payload bytes per message.
    pub size: usize,
    /// The time-out of a `timeout` side.
    pub timeout: Duration,
}

impl Plan {
    /// Refuses what a link cannot do (exit code 2).
    pub fn check(&self) -> Result<()> {
        let no_timeout = self.via != Via::Socket
            && (self.send == Mode::Timeout || self.receive == Mode::Timeout);
        if no_timeout {
            return Err(Error::usage(tr!(
                "--via {via} has no time-out of its own (only poll(2) could add one); use --via socket, whose SO_SNDTIMEO and SO_RCVTIMEO are one",
                via = self.via.word()
            )));
        }
        if self.via == Via::Socket && self.capacity.is_some() {
            return Err(Error::usage(tr!(
                "--capacity is for --via pipe or queue; a socket pair holds what its send buffer (SO_SNDBUF) allows"
            )));
        }
        let max = libc::PIPE_BUF - message::OVERHEAD;
        if !(1..=max).contains(&self.size) || self.extra > 100_000 {
            return Err(Error::usage(tr!(
                "--size goes from 1 to {max} (a message is one atomic pipe write) and --extra up to 100000",
                max
            )));
        }
        Ok(())
    }

    fn frame_len(&self) -> usize {
        message::OVERHEAD + self.size
    }
}

/// The two control pipes: the receiver's word to the sender ("I tried", "I took the
/// first message") and the sender's word to the receiver ("the link is full"). They are
/// not the link; they only order the steps, so that each side meets the case its mode is
/// about.
struct Control {
    to_sender: (OwnedFd, OwnedFd),
    to_receiver: (OwnedFd, OwnedFd),
}

impl Control {
    fn new(n: &Narrator) -> Result<Control> {
        let to_sender = common::sys::pipe2(n, OFlag::O_CLOEXEC)?;
        let to_receiver = common::sys::pipe2(n, OFlag::O_CLOEXEC)?;
        say!(
            n,
            "those two pipes are not the link: they only tell each side when to take its next step"
        );
        Ok(Control {
            to_sender,
            to_receiver,
        })
    }
}

fn tell(me: &Narrator, pipe: &(OwnedFd, OwnedFd)) -> Result<()> {
    common::sys::write(me, &pipe.1, b"!").map(drop)
}

fn wait_word(me: &Narrator, pipe: &(OwnedFd, OwnedFd)) -> Result<()> {
    let mut word = [0u8; 1];
    match common::sys::read(me, &pipe.0, &mut word)? {
        1 => Ok(()),
        _ => Err(Error::bad_data(
            "read(control)",
            tr!("the other side has gone"),
        )),
    }
}

// ANCHOR: sync
/// Runs the lesson: forks the receiver and the sender, follows the timeline, prints the
/// summary and checks what the kernel guarantees.
pub fn sync(n: &Narrator, names: &Names, plan: Plan) -> Result<()> {
    plan.check()?;
    let link = Link::create(n, names, plan.via, plan.capacity)?;
    let control = Control::new(n)?;
    let timeline = Timeline::new(n)?;
    let mut crew = Crew::new();
    crew.spawn(n, "receiver", |me| {
        receiver(me, &link, &control, &timeline.recorder(1), &plan)
    })?;
    crew.spawn(n, "sender", |me| {
        sender(me, &link, &control, &timeline.recorder(0), &plan)
    })?;
    link.close_ends(n)?;
    cleanup::exit_on_interrupt(n)?;
    let mut watch = Watch::default();
    timeline.follow(n, &crew, |_, event| Ok(watch.see(event)))?;
    crew.wait_all(n)?;
    let expected = link.expected(plan.frame_len());
    watch.finish(n, &plan, expected)
}

/// The sender: waits for the receiver's first attempt, fills the link, meets the full
/// link in its mode, and sends the rest.
fn sender(
    me: &Narrator,
    link: &Link,
    ctl: &Control,
    rec: &Recorder<'_>,
    plan: &Plan,
) -> Result<()> {
    let mut end = link.sender(me, plan.send, plan.timeout)?;
    let mut out = Outbox::default();
    wait_word(me, &ctl.to_sender)?;
    if plan.receive == Mode::Block {
        // The receiver waits in its receive: the first message goes to it, and the link
        // is empty again before it is filled.
        out.put(me, &mut end, rec, plan)?;
        wait_word(me, &ctl.to_sender)?;
    }
    if plan.send == Mode::Block {
        say!(
            me,
            "to find where the link is full without waiting there, I fill it with O_NONBLOCK on, then turn it off"
        );
        end.set_nonblocking(me, true)?;
    }
    let mut held = 0;
    let mut fill = me.first_few(0.., tr!("filling the link without narration"));
    let (refused, waited) = loop {
        fill.next();
        message::encode_into(out.seq, plan.size, &mut out.frame);
        let clock = Stopwatch::start();
        match end.send(me, &out.frame)? {
            Try::Done(_) => {
                rec.record(What::Sent, out.seq, 0)?;
                out.seq += 1;
                held += 1;
            }
            Try::Again => break (Outcome::Eagain, clock.elapsed()),
            Try::TimedOut => break (Outcome::Timeout, clock.elapsed()),
        }
        if held > FILL_LIMIT {
            return Err(Error::bad_data("send", tr!("the link never became full")));
        }
    };
    drop(fill);
    rec.record(What::Full, out.seq, held)?;
    if plan.send == Mode::Block {
        end.set_nonblocking(me, false)?;
        say!(
            me,
            "the link is full with {held} messages; now a blocking send must wait for the receiver",
            held
        );
    } else {
        rec.record(What::Probe, 1, refused as u64)?;
        let (how, ms) = (refused.word(), waited.as_millis());
        say!(
            me,
            "the link is full with {held} messages: my next send failed with {how} after {ms} ms; I let the receiver start, and try again",
            held,
            how,
            ms
        );
    }
    tell(me, &ctl.to_receiver)?;
    for _ in me.first_few(0..=plan.extra, tr!("the rest without narration")) {
        out.put(me, &mut end, rec, plan)?;
    }
    end.finish(me)?;
    rec.record(What::Done, 0, out.seq)
}

/// The sender's next message number and its buffer.
#[derive(Default)]
struct Outbox {
    seq: u64,
    frame: Vec<u8>,
}

impl Outbox {
    /// Sends the next message in the side's mode, trying again until it goes through.
    fn put(&mut self, me: &Narrator, end: &mut End, rec: &Recorder<'_>, plan: &Plan) -> Result<()> {
        message::encode_into(self.seq, plan.size, &mut self.frame);
        loop {
            match end.send(me, &self.frame)? {
                Try::Done(_) => break,
                Try::Again => end.wait_ready(me, Ready::Write)?,
                Try::TimedOut => {}
            }
        }
        rec.record(What::Sent, self.seq, 0)?;
        self.seq += 1;
        Ok(())
    }
}

/// The receiver: its first attempt on the empty link, then, once the sender says the
/// link is full, every message until the end, checked and in order.
fn receiver(
    me: &Narrator,
    link: &Link,
    ctl: &Control,
    rec: &Recorder<'_>,
    plan: &Plan,
) -> Result<()> {
    let mut end = link.receiver(me, plan.receive, plan.timeout)?;
    let mut buf = vec![0u8; plan.frame_len()];
    let mut next = 0;
    if plan.receive == Mode::Block {
        tell(me, &ctl.to_sender)?;
        say!(
            me,
            "the link is empty; a blocking receive waits until a message comes"
        );
        match end.recv(me, &mut buf)? {
            Try::Done(len) if len > 0 => take(rec, &buf[..len], &mut next, plan)?,
            _ => return Err(Error::bad_data("receive", tr!("no first message"))),
        }
        rec.record(What::Probe, 0, Outcome::Through as u64)?;
        tell(me, &ctl.to_sender)?;
    } else {
        let clock = Stopwatch::start();
        let outcome = match end.recv(me, &mut buf)? {
            Try::Again => Outcome::Eagain,
            Try::TimedOut => Outcome::Timeout,
            Try::Done(_) => {
                return Err(Error::bad_data(
                    "receive",
                    tr!("the link should have been empty"),
                ));
            }
        };
        let ms = clock.elapsed().as_millis();
        say!(
            me,
            "the link is empty: my receive failed after {ms} ms; I could do other work now",
            ms
        );
        rec.record(What::Probe, 0, outcome as u64)?;
        tell(me, &ctl.to_sender)?;
    }
    wait_word(me, &ctl.to_receiver)?;
    rec.record(What::Receiving, next, 0)?;
    for _ in me.first_few(0.., tr!("the rest without narration")) {
        match end.recv(me, &mut buf)? {
            Try::Done(0) => break,
            Try::Done(len) => take(rec, &buf[..len], &mut next, plan)?,
            Try::Again => end.wait_ready(me, Ready::Read)?,
            Try::TimedOut => {}
        }
    }
    me.announce(tr!(
        "the sender says no more will come; I took {next}",
        next
    ));
    Ok(())
}

/// Checks one message (it comes from another process: untrusted) and records it.
fn take(rec: &Recorder<'_>, bytes: &[u8], next: &mut u64, plan: &Plan) -> Result<()> {
    let frame =
        message::decode(bytes, plan.size).map_err(|e| Error::bad_data("decode", e.to_string()))?;
    if !frame.intact || frame.seq != *next {
        return Err(Error::bad_data(
            "decode",
            tr!(
                "message {seq} is damaged or out of order (expected {next})",
                seq = frame.seq,
                next = *next
            ),
        ));
    }
    rec.record(What::Took, frame.seq, 0)?;
    *next += 1;
    Ok(())
}
// ANCHOR_END: sync
