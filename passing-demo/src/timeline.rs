//! The timeline: one pipe into which every process of a lesson writes its events, read
//! by the observer, the process that forked them.
//!
//! "The receiver took message 3" and "the sender's send of message 3 returned" happen in
//! two processes. To say which came first without trusting two clocks, each process
//! writes a 24-byte record into the same pipe the moment the event happens. A write of
//! at most PIPE_BUF bytes to a pipe is atomic, and the pipe hands the bytes to its reader
//! in the order the writes were made (pipe(7)). So if one event causes another (the
//! receiver takes the message, then acknowledges it; the acknowledgement lets the send
//! return), its record is written first and read first. The observer numbers the records
//! as it reads them: #1, #2, ... is an order the kernel kept, not one a clock suggests.
//!
//! The record (little-endian): `what` (1 byte), the actor (1 byte), 2 zero bytes, the
//! writer's pid (4 bytes), a message number (8 bytes), a value (8 bytes). The records
//! are written and read without narration: they are the lesson's instruments, not its
//! subject; the observer narrates them instead, as the `[timeline PID]` lines.
//!
//! See also: pipe(7) "PIPE_BUF", and the lessons that use it: [`crate::sync`],
//! [`crate::zero`], [`crate::mailbox`].

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use common::{Error, Narrator, Result, say, tr};
use nix::fcntl::OFlag;

use crate::crew::Crew;
use crate::sys::{self, Ready};

/// Bytes in one record.
pub const RECORD: usize = 24;

// A record must fit in one atomic pipe write (pipe(7), PIPE_BUF).
const _: () = assert!(RECORD <= libc::PIPE_BUF);

/// How often the observer, while no event arrives, checks that no member has failed.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Events per narrated round: the timeline shows the first few rounds of this many
/// events ([`Narrator::first_few`]), or all of them with `--all`.
const ROUND: usize = 4;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// A send of message `seq` returned: the link accepted it.
    Sent,
    /// Message `seq` was taken from the link by a receiver.
    Took,
    /// The link is full: it holds `value` messages, and message `seq` did not fit.
    Full,
    /// A first attempt on an empty (`seq` 0) or full (`seq` 1) link ended as `value`
    /// says (an [`Outcome`]).
    Probe,
    /// A sender has sent all it had (`value` messages).
    Done,
    /// A receiver starts taking messages, from message `seq` on.
    Receiving,
}

impl What {
    fn code(self) -> u8 {
        match self {
            What::Sent => 1,
            What::Took => 2,
            What::Full => 3,
            What::Probe => 4,
            What::Done => 5,
            What::Receiving => 6,
        }
    }

    fn from_code(code: u8) -> Option<What> {
        Some(match code {
            1 => What::Sent,
            2 => What::Took,
            3 => What::Full,
            4 => What::Probe,
            5 => What::Done,
            6 => What::Receiving,
            _ => return None,
        })
    }
}

/// How a first attempt on an empty or a full link ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It went through: a receive returned a message, a send returned.
    Through = 1,
    /// It failed at once with EAGAIN (or ENOMSG for a System V receive).
    Eagain = 2,
    /// It waited for its time-out, then failed.
    Timeout = 3,
}

impl Outcome {
    /// The word in the summary line.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Through => "through",
            Outcome::Eagain => "EAGAIN",
            Outcome::Timeout => "timeout",
        }
    }

    /// The outcome a record's value names.
    pub fn from_value(value: u64) -> Option<Outcome> {
        [Outcome::Through, Outcome::Eagain, Outcome::Timeout]
            .into_iter()
            .find(|o| *o as u64 == value)
    }
}

/// One record of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub what: What,
    /// Who made it happen: an index the lesson gives its roles.
    pub actor: u8,
    /// The pid of the process that wrote the record.
    pub pid: i32,
    /// The message it is about.
    pub seq: u64,
    /// Anything else (a count, an [`Outcome`]).
    pub value: u64,
}

impl Event {
    /// The record's bytes.
    pub fn encode(&self) -> [u8; RECORD] {
        let mut out = [0u8; RECORD];
        out[0] = self.what.code();
        out[1] = self.actor;
        out[4..8].copy_from_slice(&self.pid.to_le_bytes());
        out[8..16].copy_from_slice(&self.seq.to_le_bytes());
        out[16..24].copy_from_slice(&self.value.to_le_bytes());
        out
    }

    /// Reads a record; `None` if it is not one (it comes from another process, so it is
    /// checked like any other data from outside).
    pub fn decode(bytes: &[u8]) -> Option<Event> {
        let bytes: &[u8; RECORD] = bytes.try_into().ok()?;
        let word = |range: std::ops::Range<usize>| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(range)?.try_into().ok()?))
        };
        Some(Event {
            what: What::from_code(bytes[0])?,
            actor: bytes[1],
            pid: i32::from_le_bytes(bytes[4..8].try_into().ok()?),
            seq: word(8..16)?,
            value: word(16..24)?,
        })
    }
}

/// The timeline's pipe, made by the observer before it forks the processes that write.
#[derive(Debug)]
pub struct Timeline {
    read_end: OwnedFd,
    write_end: OwnedFd,
}

impl Timeline {
    /// `pipe2(O_CLOEXEC)`: the timeline, narrated by the observer.
    pub fn new(n: &Narrator) -> Result<Timeline> {
        let (read_end, write_end) = common::sys::pipe2(n, OFlag::O_CLOEXEC)?;
        say!(
            n,
            "that pipe is the timeline: each process writes a record into it when something happens, and I number them in the order the kernel keeps"
        );
        Ok(Timeline {
            read_end,
            write_end,
        })
    }

    /// In a forked child: the recorder that writes this process's events as `actor`.
    pub fn recorder(&self, actor: u8) -> Recorder<'_> {
        Recorder {
            fd: self.write_end.as_fd(),
            actor,
            pid: nix::unistd::getpid().as_raw(),
            quiet: Narrator::silent("timeline"),
        }
    }

    /// In the observer, after the last fork: closes its own write end, then reads and
    /// numbers every record until every writer has exited (end of file), passing each to
    /// `on_event` with its number (from 1). It narrates the first few events, and after
    /// them those for which `on_event` returns `true` (the ones the lesson is about).
    /// While nothing arrives, it checks that no member of `crew` has failed; if one has,
    /// it stops the others and returns that failure.
    pub fn follow(
        self,
        n: &Narrator,
        crew: &Crew,
        mut on_event: impl FnMut(usize, &Event) -> Result<bool>,
    ) -> Result<()> {
        let Timeline {
            read_end,
            write_end,
        } = self;
        drop(write_end);
        let shown = n.for_role("timeline");
        let mut rounds = shown.first_few(
            0..,
            tr!("the rest of the timeline without narration (the summary checks all of it)"),
        );
        let quiet = Narrator::silent("timeline");
        let (mut buf, mut have, mut number) = ([0u8; RECORD * 64], 0usize, 0usize);
        loop {
            if !sys::poll(&quiet, &read_end, Ready::Read, Some(CHECK_EVERY))?.0 {
                if let Some(failure) = crew.failed() {
                    crew.stop_all(n);
                    return Err(failure);
                }
                continue;
            }
            let got = common::sys::read(&quiet, &read_end, &mut buf[have..])?;
            if got == 0 {
                break;
            }
            have += got;
            let whole = have - have % RECORD;
            for record in buf[..whole].chunks_exact(RECORD) {
                number += 1;
                let event = Event::decode(record).ok_or_else(|| {
                    Error::bad_data("read(timeline)", tr!("a record that is not an event"))
                })?;
                if number % ROUND == 1 {
                    rounds.next();
                }
                match on_event(number, &event) {
                    Ok(true) => shown.announce(describe(number, &event, crew)),
                    Ok(false) => shown.say(describe(number, &event, crew)),
                    Err(e) => {
                        crew.stop_all(n);
                        return Err(e);
                    }
                }
            }
            buf.copy_within(whole..have, 0);
            have -= whole;
        }
        if have != 0 {
            return Err(Error::bad_data(
                "read(timeline)",
                tr!("the timeline ended inside a record"),
            ));
        }
        Ok(())
    }
}

/// One event in words: `#3 receiver-1 took message 0`.
fn describe(number: usize, e: &Event, crew: &Crew) -> String {
    let who = crew.role_of(e.pid).unwrap_or("?");
    let (seq, value) = (e.seq, e.value);
    match e.what {
        What::Sent => tr!(
            "#{number} {who}: the send of message {seq} returned",
            number,
            who,
            seq
        ),
        What::Took => tr!("#{number} {who} took message {seq}", number, who, seq),
        What::Full => tr!(
            "#{number} {who}: the link is full with {value} messages; message {seq} did not fit",
            number,
            who,
            value,
            seq
        ),
        What::Probe => {
            let how = Outcome::from_value(value).map_or("?", Outcome::word);
            match seq {
                0 => tr!(
                    "#{number} {who}: its receive on the empty link: {how}",
                    number,
                    who,
                    how
                ),
                _ => tr!(
                    "#{number} {who}: its send on the full link: {how}",
                    number,
                    who,
                    how
                ),
            }
        }
        What::Done => tr!(
            "#{number} {who} has sent all {value} messages",
            number,
            who,
            value
        ),
        What::Receiving => tr!("#{number} {who} starts taking messages", number, who),
    }
}

/// Writes one process's events into the timeline.
#[derive(Debug)]
pub struct Recorder<'a> {
    fd: std::os::fd::BorrowedFd<'a>,
    actor: u8,
    pid: i32,
    quiet: Narrator,
}

impl Recorder<'_> {
    /// Records `what` about message `seq`, with `value`: one `write(2)` of one record.
    pub fn record(&self, what: What, seq: u64, value: u64) -> Result<()> {
        let event = Event {
            what,
            actor: self.actor,
            pid: self.pid,
            seq,
            value,
        };
        let wrote = common::sys::write(&self.quiet, &self.fd, &event.encode())?;
        if wrote != RECORD {
            // A pipe write of at most PIPE_BUF bytes is all or nothing (pipe(7)).
            return Err(Error::bad_data(
                "write(timeline)",
                tr!("a record was cut short"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_survives_its_record_and_garbage_is_refused() {
        let e = Event {
            what: What::Full,
            actor: 7,
            pid: 4242,
            seq: 1 << 40,
            value: 64,
        };
        assert_eq!(Event::decode(&e.encode()), Some(e));
        let mut bad = e.encode();
        bad[0] = 99;
        assert_eq!(Event::decode(&bad), None);
        assert_eq!(Event::decode(&bad[..10]), None);
    }
}
