//! `half-duplex`: one FIFO that both sides open O_RDWR carries data either way, one
//! direction at a time.
//!
//! Note 003 (3.7.4.2) calls a named pipe bidirectional. On Linux a FIFO is one pipe: one
//! buffer, one stream of bytes, no idea who wrote which byte or who may read it. Opened
//! O_RDWR (which Linux allows, fifo(7)), it lets each side both write and read, so the
//! data can go A to B and then B to A: *half duplex*, as long as the two sides take
//! turns. The turn is theirs to keep: a side that reads before the other side has taken
//! what it wrote may read its own bytes back. Here the rule is "after writing, wait until
//! the other side has taken my message, then read". The FIFO wakes nobody for that: the
//! writer looks at the count of unread bytes (FIONREAD) every millisecond, until it is
//! no longer its own message's length. That count says how many bytes, not whose, so B
//! answers with messages twice as long as A's: A's message still waiting and B's answer
//! already there never look alike. Each message is one `write` of at most PIPE_BUF bytes,
//! read with one `read`, so the count never stops halfway.
//!
//! `--no-turns` breaks the rule: both write before either reads, and each reads its own
//! message back. Two FIFOs, one per direction, are the usual full-duplex set-up (the
//! `server` and `client` lessons).
//!
//! See also: fifo(7), pipe(7), ioctl_fionread(2).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use common::narrate::print_summary;
use common::process::{self, Fork};
use common::stream::FdStream;
use common::{Narrator, Result, cleanup, message, say, sys, tr};
use nix::fcntl::OFlag;
use nix::poll::PollFlags;

use crate::make_or_find;
use crate::meet::open_fifo;
use crate::sys as my;

/// How long a side waits between two looks at a FIFO that still holds its bytes.
const LOOK_AGAIN: Duration = Duration::from_millis(1);

/// How long a read waits before it checks that the other side lives.
const PEER_CHECK: Duration = Duration::from_millis(500);

/// One side of the conversation: its letter fills its messages' payloads, so that a
/// reader can tell whose bytes it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

impl Side {
    fn letter(self) -> u8 {
        match self {
            Side::A => b'a',
            Side::B => b'b',
        }
    }

    /// The other side.
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// The payload bytes of this side's messages: A's are `size`; with turns, B answers
    /// with twice that, so that the count of unread bytes tells whose message waits.
    /// Without turns both are `size`: nobody looks at the count to take turns.
    fn payload(self, size: usize, turns: bool) -> usize {
        match self {
            Side::B if turns => 2 * size,
            _ => size,
        }
    }

    /// The bytes of one of this side's messages in the FIFO.
    fn frame_len(self, size: usize, turns: bool) -> usize {
        self.payload(size, turns) + message::OVERHEAD
    }

    fn name(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }
}

/// What one side read: from the other side, its own bytes back, or neither.
#[derive(Debug, Default)]
struct Counts {
    sent: u64,
    from_other: u64,
    own: u64,
    corrupt: u64,
    bytes_in: u64,
}

/// One side's FIFO, peer, and counts.
struct End<'a> {
    n: &'a Narrator,
    side: Side,
    fd: OwnedFd,
    peer: (&'static str, i32),
    size: usize,
    turns: bool,
    counts: Counts,
    frame: Vec<u8>,
    buf: Vec<u8>,
}

impl End<'_> {
    /// Writes message `seq`, its payload all this side's letter.
    fn send(&mut self, seq: u64) -> Result<()> {
        let payload = vec![self.side.letter(); self.side.payload(self.size, self.turns)];
        message::encode_payload(seq, &payload, &mut self.frame);
        FdStream::new(&self.fd, self.n).write_all(&self.frame)?;
        self.counts.sent += 1;
        Ok(())
    }

    /// Waits until the count of unread bytes in the FIFO is `done(count)`. A FIFO wakes
    /// nobody for that, so this looks (FIONREAD), and looks again every millisecond,
    /// quietly, checking now and then that the peer lives.
    fn wait_until(&mut self, done: impl Fn(usize) -> bool) -> Result<()> {
        let fd = self.fd.as_fd();
        if done(my::ioctl_fionread(self.n, &fd)?) {
            return Ok(());
        }
        say!(
            self.n,
            "not yet: I look again every {every} (busy waiting: a FIFO tells a writer nothing about its reader)",
            every = format!("{LOOK_AGAIN:?}")
        );
        let quiet = Narrator::silent(self.n.role());
        let mut looks = 0u64;
        loop {
            sys::poll(&quiet, &[], Some(LOOK_AGAIN))?;
            looks += 1;
            if looks % 500 == 0 {
                alive(self.peer)?;
            }
            if done(my::ioctl_fionread(&quiet, &fd)?) {
                break;
            }
        }
        my::ioctl_fionread(self.n, &fd).map(drop)
    }

    /// Reads one message, and tells whose it is by its letters.
    fn receive(&mut self) -> Result<()> {
        loop {
            let ready = sys::poll(
                self.n,
                &[(self.fd.as_fd(), PollFlags::POLLIN)],
                Some(PEER_CHECK),
            )?;
            if !ready.timed_out() {
                break;
            }
            alive(self.peer)?;
        }
        // One read of a whole message: it was one write of at most PIPE_BUF bytes, so it
        // is all there at once (pipe(7)), and the count of unread bytes never stops
        // halfway through it.
        let want = self.side.other().frame_len(self.size, self.turns);
        self.buf.resize(want, 0);
        let got = sys::read(self.n, &self.fd, &mut self.buf)?;
        let max = Side::B.payload(self.size, self.turns);
        let Ok(frame) = message::decode(&self.buf[..got], max) else {
            self.counts.corrupt += 1;
            return Ok(());
        };
        self.counts.bytes_in += frame.payload.len() as u64;
        let (own, other) = (self.side.letter(), self.side.other().letter());
        if frame.payload.iter().all(|&b| b == other) {
            self.counts.from_other += 1;
        } else if frame.payload.iter().all(|&b| b == own) {
            self.counts.own += 1;
            say!(
                self.n,
                "that was my own message: I took it back before the other side could read it"
            );
        } else {
            self.counts.corrupt += 1;
        }
        Ok(())
    }

    /// With turns, every round must bring exactly the other side's message, whole.
    fn verdict(&self, rounds: u64) -> Result<()> {
        let c = &self.counts;
        if !self.turns || (c.own == 0 && c.corrupt == 0 && c.from_other == rounds) {
            return Ok(());
        }
        Err(common::Error::bad_data(
            tr!("take turns on the FIFO"),
            tr!(
                "of {rounds} messages, {other} came from the other side, {own} were my own, {corrupt} were neither",
                rounds,
                other = c.from_other,
                own = c.own,
                corrupt = c.corrupt
            ),
        ))
    }

    /// The side's summary line.
    fn summary(&self) -> Result<()> {
        let c = &self.counts;
        print_summary(format_args!(
            "summary: side={} sent={} received_from_other={} own_read_back={} corrupt={} bytes_in={}",
            self.side.name(),
            c.sent,
            c.from_other,
            c.own,
            c.corrupt,
            c.bytes_in
        ))
    }
}

/// Fails if the other side (`role`, `pid`) is gone: with O_RDWR, nobody ever sees end of
/// file, so a dead peer would otherwise be waited for for ever.
fn alive((role, pid): (&'static str, i32)) -> Result<()> {
    if process::is_alive(pid) {
        Ok(())
    } else {
        Err(process::gone(role, pid))
    }
}

// ANCHOR: half_duplex
/// A (the parent) and B (a forked child) each open the FIFO O_RDWR. With turns, for each
/// of `rounds`: A writes, waits until B has taken it, and reads B's answer; B reads, then
/// writes its answer and waits until A has taken it. With `no_turns`, both write first
/// and read after, and each reads its own message back.
pub fn half_duplex(n: &Narrator, path: &Path, rounds: u64, size: usize, turns: bool) -> Result<()> {
    let _fifo = make_or_find(n, path)?;
    let fd = open_rdwr(n, path)?;
    // In --no-turns, A writes before B exists: A's message is the first in the FIFO.
    if !turns {
        say!(n, "no turns: I write, B writes, and only then do we read");
    }
    let mut a = end(n, Side::A, fd, ("b", 0), size, turns);
    if !turns {
        a.send(0)?;
    }
    let parent = nix::unistd::getpid().as_raw();
    match process::fork(n, "b")? {
        Fork::Child(me) => {
            let result = sys::close(&me, a.fd)
                .and_then(|()| open_rdwr(&me, path))
                .and_then(|fd| {
                    let mut b = end(&me, Side::B, fd, ("a", parent), size, turns);
                    let done = if turns {
                        answer(&mut b, rounds)
                    } else {
                        // A's message and mine are both in; A reads first.
                        let mine = Side::B.frame_len(size, turns);
                        b.send(0)
                            .and_then(|()| b.wait_until(|unread| unread == mine))
                            .and_then(|()| b.receive())
                    };
                    done.and_then(|()| b.summary())
                        .and_then(|()| b.verdict(rounds))
                });
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            cleanup::exit_on_interrupt(n)?;
            a.peer = ("b", child.as_raw());
            if turns {
                ask(&mut a, rounds)?;
            } else {
                // Both messages in the FIFO: B has written too.
                let both = Side::A.frame_len(size, turns) + Side::B.frame_len(size, turns);
                a.wait_until(|unread| unread == both)?;
                a.receive()?;
            }
            a.summary()?;
            a.verdict(rounds)?;
            process::wait_for(n, child, "b")
        }
    }
}

/// A's turns: write, wait until B has taken it (the count is no longer my message's
/// length: 0, or B's answer), read B's answer.
fn ask(a: &mut End<'_>, rounds: u64) -> Result<()> {
    for seq in
        a.n.first_few(0..rounds, tr!("the rest of the turns without narration"))
    {
        a.send(seq)?;
        let mine = Side::A.frame_len(a.size, true);
        a.wait_until(|unread| unread != mine)?;
        a.receive()?;
    }
    Ok(())
}

/// B's turns: read A's message, write the answer, wait until A has taken it (0, or A's
/// next message).
fn answer(b: &mut End<'_>, rounds: u64) -> Result<()> {
    for seq in
        b.n.first_few(0..rounds, tr!("the rest of the turns without narration"))
    {
        b.receive()?;
        b.send(seq)?;
        let mine = Side::B.frame_len(b.size, true);
        b.wait_until(|unread| unread != mine)?;
    }
    Ok(())
}
// ANCHOR_END: half_duplex

/// `open(path, O_RDWR)`: on Linux it never waits, since this process is a reader and a
/// writer at once (fifo(7); POSIX leaves it undefined).
fn open_rdwr(n: &Narrator, path: &Path) -> Result<OwnedFd> {
    say!(
        n,
        "open O_RDWR: I both read and write this FIFO; the open does not wait for anyone"
    );
    open_fifo(n, path, OFlag::O_RDWR)
}

fn end<'a>(
    n: &'a Narrator,
    side: Side,
    fd: OwnedFd,
    peer: (&'static str, i32),
    size: usize,
    turns: bool,
) -> End<'a> {
    End {
        n,
        side,
        fd,
        peer,
        size,
        turns,
        counts: Counts::default(),
        frame: Vec::new(),
        buf: Vec::new(),
    }
}
