//! The fast ring (`--ring fast`): the bounded buffer of `ring.rs`, built the way queues
//! that must be quick are built (one producer and one consumer, a sequence number in
//! each slot, a futex event count). It
//! moves the same frames through the same header and slots; four things differ, and
//! each is a lesson of its own (docs/src/shm.md, "The fast ring"):
//!
//! 1. **A stamp inside each slot.** The textbook consumer waits until `head` moves, then
//!    reads the slot: two places, two cache lines that must travel between the CPUs. Here
//!    the producer writes into each slot the number of the message it holds, plus one,
//!    after the frame. The consumer waits on the slot itself, and the stamp arrives in
//!    the same cache line as the first bytes of the message.
//! 2. **Positions kept privately; nothing written back into the slot.** Each side knows
//!    which message comes next (`seq`). The consumer publishes how far it has taken in
//!    `tail`, on a line of its own, and writes nothing into the slots: a slot's lines
//!    are written by the producer only, and cross to the consumer once per message. The
//!    producer keeps a private copy of `tail` and reads the consumer's counter again
//!    only when that copy says the ring is full: about once per lap, not per message.
//!    (An earlier version had the consumer write "free" into each stamp, as Dmitry
//!    Vyukov's bounded queue does for many producers and consumers; with one of each,
//!    that store only sent the line back to the producer on every message, and the
//!    bench measured the round trip about a sixth faster without it.)
//! 3. **Slots padded to whole cache lines** (`Shape::new(Ring::Fast, ..)`), so that the
//!    producer writing slot 5 never fights over a line with the consumer reading slot 4
//!    (false sharing, which `shm-demo false-sharing` shows and measures).
//! 4. **Spin briefly, then sleep; wake only a sleeper.** The textbook's `sem_post` and
//!    `sem_timedwait` cost system calls, and a sleeping side costs a wake-up (tens of
//!    microseconds on a virtual machine). A side that must wait here first spins for up
//!    to [`SPIN_FOR`], if the other side runs on another CPU (each side notes its CPU at
//!    every step); most waits end there. Only
//!    then does it write 1 into its futex word and sleep on it (`FUTEX_WAIT`); the other
//!    side, after each step, makes the `FUTEX_WAKE` system call only if the word says
//!    someone sleeps. glibc's adaptive mutexes and futex-based event counts work so.
//!
//! What stays: every field from the other process is read once and checked (a stamp that
//! no step writes is an error, and so is a `tail` past what was put; a length is
//! checked against the slot), the size of the
//! object is checked every [`SIZE_WINDOW`] messages, and a side that waits checks every
//! 200 ms that the other side lives.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};

use common::mapping::{self, CHECK_EVERY, Looking};
use common::{Narrator, Result, say, tr};
use nix::errno::Errno;

use crate::SIZE_WINDOW;
use crate::region::{Corrupt, Region, Wait};
use crate::ring::can_end;
use crate::sys::{self, Futex};

/// How long a side that must wait spins before it sleeps, when the other side last
/// ran on another CPU. About what sleeping and being woken costs (5 to 80 µs on the
/// virtual machines this was measured on), so spinning costs at most about as much as
/// sleeping would have; and far longer than the other side needs for one step (well
/// under a microsecond), so that while both are busy, neither sleeps.
pub const SPIN_FOR: Duration = Duration::from_micros(20);

/// Notes the CPU this side runs on, for the other side's waits (only the blocking wait
/// reads it). `sched_getcpu` reads a number the kernel keeps in this process's memory: no
/// system call, a few nanoseconds.
fn note_cpu(region: &Region, side: Side) {
    if region.wait() == Wait::Block {
        if let Some(here) = sys::sched_getcpu() {
            region.note_cpu(side == Side::Consumer, here);
        }
    }
}

/// Which side waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The producer, for a free slot (it sleeps on `room`).
    Producer,
    /// The consumer, for a message (it sleeps on `data`).
    Consumer,
}

// ANCHOR: fast_put
/// Puts message `seq` into the fast ring: makes sure its slot is free (from the
/// producer's own copy of the consumer's `tail`, which it reads again only when that
/// copy says the ring is full), copies the frame in, and sets the slot's stamp to
/// `seq + 1`: "message `seq` is in". Then wakes the consumer, if it sleeps.
pub fn put(n: &Narrator, region: &Region, seq: u64, frame: &[u8]) -> Result<()> {
    if seq % SIZE_WINDOW == 0 {
        region.check_size()?;
    }
    let slots = u64::from(region.shape().slots);
    note_cpu(region, Side::Producer);
    // Message `seq` needs message `seq - slots` taken out of its slot, that is,
    // `tail > seq - slots`. The copy of `tail` kept privately usually says so already;
    // between two busy processes the producer reads the consumer's counter about once
    // per lap of the ring, not once per message.
    if seq >= region.tail_seen() + slots {
        wait_for_room(n, region, seq, slots)?;
    }
    let at = region.slot_at(seq);
    region.write_slot_at(n, at, seq, frame)?;
    // For observers (ipc-watch) and the producer's last wait: the consumer never reads
    // it on the way. Stored before the stamp, so nobody sees tail pass head.
    region.set_head(seq + 1);
    // Release: the frame and its length are visible to whoever sees this stamp. Stamps
    // are u32 and wrap around; only equality matters.
    let is_in = seq.wrapping_add(1) as u32;
    region.stamp_at(at).store(is_in, Ordering::Release);
    say!(
        n,
        "slot {slot}: wrote message {seq} ({len} bytes); stamp = {stamp}",
        slot = seq % slots,
        seq,
        len = frame.len(),
        stamp = is_in
    );
    wake(n, region, region.data())
}

/// Takes message `seq` out of the fast ring into `out`: waits until its slot's stamp says
/// "message `seq` is in", copies the frame out, and sets `tail` to `seq + 1`: the slot
/// is free for the message one lap later. It writes nothing into the slot, so the
/// slot's cache line is only read here, and travels back to the producer only when the
/// producer writes it again. Then wakes the producer, if it sleeps.
pub fn take(n: &Narrator, region: &Region, seq: u64, out: &mut Vec<u8>) -> Result<()> {
    if seq % SIZE_WINDOW == 0 {
        region.check_size()?;
    }
    let slots = u64::from(region.shape().slots);
    note_cpu(region, Side::Consumer);
    let at = region.slot_at(seq);
    let stamp = region.stamp_at(at);
    // Until message `seq` is in, the slot's stamp says it last held message
    // `seq - slots`: its number + 1.
    let is_in = seq.wrapping_add(1) as u32;
    let before = seq.wrapping_sub(slots).wrapping_add(1) as u32;
    // One look first: between two busy processes the message is often there already,
    // and the waiting machinery need not be set up at all.
    if stamp.load(Ordering::Acquire) != is_in {
        wait_for_stamp(n, region, seq, stamp, is_in, before).map_err(|e| shrunk_or(region, e))?;
    }
    region
        .read_slot_at(n, at, seq, out)
        .map_err(|e| shrunk_or(region, e))?;
    // Release: the copy above is done before the producer, seeing this, writes the slot
    // again.
    region.set_tail(seq + 1);
    say!(
        n,
        "slot {slot}: copied message {seq} out ({len} bytes); tail = {tail}",
        slot = seq % slots,
        seq,
        len = out.len(),
        tail = seq + 1
    );
    wake(n, region, region.room())
}
// ANCHOR_END: fast_put

/// A slot that reads as nonsense may be one that is gone: a peer that shrank the object
/// to within its first page leaves zeros where the slots were, not a SIGBUS. The size
/// says which, and the error names the cause.
#[cold]
fn shrunk_or(region: &Region, e: common::Error) -> common::Error {
    match region.check_size() {
        Err(shrunk) => shrunk,
        Ok(()) => e,
    }
}

/// The producer's wait for a free slot for message `seq`: until the consumer's `tail`
/// is past `seq - slots`. A `tail` beyond what was ever put is no step of the ring.
#[cold]
#[inline(never)]
fn wait_for_room(n: &Narrator, region: &Region, seq: u64, slots: u64) -> Result<()> {
    let need = seq + 1 - slots;
    // `tail` only grows, and never passes what was put: a value behind the one seen
    // before, or past `seq`, is no step of the consumer. Taken for progress, a `tail`
    // that went back would leave both sides waiting for each other for ever.
    let seen = region.tail_seen();
    let bad = Cell::new(None);
    let ready = || {
        let tail = region.tail();
        if tail > seq || tail < seen {
            bad.set(Some(tail));
            return true;
        }
        region.see_tail(tail);
        tail >= need
    };
    let what = || {
        tr!(
            "wait until tail >= {need} (slot {slot} free for message {seq})",
            need,
            slot = seq % slots,
            seq
        )
    };
    wait_until(n, region, Side::Producer, what, ready, || Ok(()))?;
    match bad.get() {
        Some(value) => Err(Corrupt::BadIndex {
            what: "tail",
            value,
            allowed: format!("{seen} ..= {seq}"),
        }
        .into()),
        None => Ok(()),
    }
}

/// The consumer's wait until `stamp`, the stamp of message `seq`'s slot, is `want`.
/// While the producer is not done, the stamp is `before`; any other value is no step of
/// this ring, and an error.
#[cold]
#[inline(never)]
fn wait_for_stamp(
    n: &Narrator,
    region: &Region,
    seq: u64,
    stamp: &AtomicU32,
    want: u32,
    before: u32,
) -> Result<()> {
    let bad = Cell::new(None);
    // Each look reads the stamp once, and decides on that one value.
    let ready = || match stamp.load(Ordering::Acquire) {
        now if now == want => true,
        now if now == before => false,
        now => {
            bad.set(Some(now));
            true
        }
    };
    let what = || {
        tr!(
            "wait until slot {slot}'s stamp is {want} (message {seq} is in)",
            slot = seq % u64::from(region.shape().slots),
            want,
            seq
        )
    };
    // `head` is written just before the stamp. If `head` says message `seq` was put
    // but the stamp still says it was not, at two checks 200 ms apart, something other
    // than the producer wrote the stamp (or `head`): waiting on would be for ever, since
    // the producer believes its step is done.
    let mut strikes = 0;
    let also = || {
        if region.head() > seq && stamp.load(Ordering::Acquire) == before {
            strikes += 1;
            if strikes >= 2 {
                return Err(Corrupt::StaleStamp {
                    seq,
                    head: region.head(),
                }
                .into());
            }
        } else {
            strikes = 0;
        }
        Ok(())
    };
    wait_until(n, region, Side::Consumer, what, ready, also)?;
    match bad.get() {
        Some(stamp) => Err(Corrupt::BadStamp { seq, stamp }.into()),
        None => Ok(()),
    }
}

/// The producer's last wait: until the consumer has taken all `count` messages (its
/// `tail` says so; it wakes `room` after each message, as it does for a free slot).
pub fn wait_all_taken(n: &Narrator, region: &Region, count: u64) -> Result<()> {
    let what = || tr!("wait until tail = {count} (all taken)", count);
    // As in `wait_for_room`: a `tail` behind the one seen, or past `count`, is refused.
    let seen = region.tail_seen();
    let bad = Cell::new(None);
    let ready = || {
        let tail = region.tail();
        if tail > count || tail < seen {
            bad.set(Some(tail));
            return true;
        }
        tail == count
    };
    wait_until(n, region, Side::Producer, what, ready, || Ok(()))?;
    match bad.get() {
        Some(value) => Err(Corrupt::BadIndex {
            what: "tail",
            value,
            allowed: format!("{seen} ..= {count}"),
        }
        .into()),
        None => Ok(()),
    }
}

/// Waits until `ready()`, by the region's way of waiting: spinning only (`--wait spin`),
/// or spinning briefly and then sleeping on a futex (`--wait block`).
///
/// Every 200 ms it asks whether the other side still lives, and then `also()`, a check
/// of the waiter's own (see `wait_for_stamp`).
fn wait_until(
    n: &Narrator,
    region: &Region,
    side: Side,
    what: impl FnOnce() -> String,
    mut ready: impl FnMut() -> bool,
    mut also: impl FnMut() -> Result<()>,
) -> Result<()> {
    let check = move || {
        match side {
            Side::Producer => can_end(region, "consumer", region.consumer_pid()),
            Side::Consumer => can_end(region, "producer", region.producer_pid()),
        }?;
        also()
    };
    match region.wait() {
        Wait::Spin => mapping::spin_until(n, what, Looking::Spin, ready, check),
        Wait::Block => {
            if ready() {
                return Ok(());
            }
            // Made only for a reader: the bench waits, silent, on almost every message.
            if !n.is_silent() {
                let what = what();
                if !n.step(&what) {
                    n.say(format_args!("{what} ..."));
                }
            }
            spin_then_sleep(n, region, side, ready, check)
        }
    }
}

// ANCHOR: fast_wait
/// The blocking wait of the fast ring, as glibc's adaptive mutexes wait: spin first, for
/// at most [`SPIN_FOR`] and only if the other side last ran on another CPU (on the
/// same CPU it cannot run while this side spins); then write 1 into this side's futex
/// word ("I sleep"), look once more, and sleep on the word with `FUTEX_WAIT`. The other
/// side wakes it only if the word says so ([`wake`]). Every 200 ms asleep, `check()`
/// asks whether the other side still lives and the object still has its size.
fn spin_then_sleep(
    n: &Narrator,
    region: &Region,
    side: Side,
    mut ready: impl FnMut() -> bool,
    mut check: impl FnMut() -> Result<()>,
) -> Result<()> {
    let consumer = side == Side::Consumer;
    let word = if consumer {
        region.data()
    } else {
        region.room()
    };
    // Where this side runs, and where the other side last ran (each notes it at every
    // step). On the same CPU, the other side cannot run while this one spins.
    let here = sys::sched_getcpu().unwrap_or(u32::MAX);
    let there = region.cpu(!consumer).load(Ordering::Relaxed);
    if there != here {
        let us = SPIN_FOR.as_micros();
        if there == u32::MAX {
            say!(
                n,
                "this side runs on CPU {here}, the other has not run a step yet: spin up to {us} µs first",
                here,
                us
            );
        } else {
            say!(
                n,
                "this side runs on CPU {here}, the other last ran on CPU {there}: spin up to {us} µs first",
                here,
                there,
                us
            );
        }
        // Reading the clock costs more than a look: do it only every 64 looks, and not
        // at all for a wait that ends before (most of them, between two busy processes).
        let mut start: Option<Instant> = None;
        let mut looks = 0u32;
        loop {
            if ready() {
                return Ok(());
            }
            std::hint::spin_loop();
            looks = looks.wrapping_add(1);
            if looks % 64 == 0 {
                let now = Instant::now();
                if now.duration_since(*start.get_or_insert(now)) >= SPIN_FOR {
                    break;
                }
            }
        }
    }
    let mut last_check = Instant::now();
    let again = tr!("still waiting: futex FUTEX_WAIT again, without narration");
    for _ in n.first_few(0u64.., again) {
        // "I sleep", then one more look: the other side either sees the 1 after its step
        // and wakes us, or took its step before, and this look sees it. The SeqCst fence
        // here and the one in `wake` make "neither" impossible.
        word.word().store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if ready() {
            word.word().store(0, Ordering::Relaxed);
            return Ok(());
        }
        match sys::futex_wait(n, word, 1, CHECK_EVERY) {
            Ok(()) => {}
            // EAGAIN: woken already (the word is 0 again); ETIMEDOUT: time to check.
            Err(e)
                if matches!(
                    e.errno(),
                    Some(Errno::EAGAIN | Errno::ETIMEDOUT | Errno::EINTR)
                ) => {}
            Err(e) => return Err(e),
        }
        if ready() {
            return Ok(());
        }
        if last_check.elapsed() >= CHECK_EVERY {
            last_check = Instant::now();
            if let Err(e) = check() {
                // The other side may have taken its step just before it exited.
                return if ready() { Ok(()) } else { Err(e) };
            }
        }
    }
    Ok(())
}

/// After a step: wakes the side that sleeps on `word`, if, and only if, the word says it
/// sleeps, and clears the word so that the next step does not wake it again. While both
/// sides are busy this is one load, and no system call.
fn wake(n: &Narrator, region: &Region, word: Futex<'_>) -> Result<()> {
    if region.wait() == Wait::Spin {
        return Ok(());
    }
    // Pairs with the fence in spin_then_sleep: our stamp is visible before we look.
    fence(Ordering::SeqCst);
    if word.word().load(Ordering::Relaxed) == 1 && word.word().swap(0, Ordering::SeqCst) == 1 {
        sys::futex_wake(n, word, 1)?;
    } else {
        say!(
            n,
            "nobody sleeps on &{word}: no futex call",
            word = word.name()
        );
    }
    Ok(())
}
// ANCHOR_END: fast_wait

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test says it failed by panicking

    use super::*;
    use crate::region::{Ring, Shape};

    /// Each side notes its CPU at every step, not only when it waits: in a ping-pong the
    /// producer of a ring never waits for room, and the consumer, not knowing where it
    /// runs, spun its 20 µs on every wait even when both shared one CPU (a 46 µs round
    /// trip where a futex one takes 2 µs).
    #[test]
    fn every_step_notes_where_its_side_runs() {
        let n = Narrator::silent("test");
        let name = format!("/ipc-demos-test-{}-fast-cpu", std::process::id());
        let shape = Shape::new(Ring::Fast, 4, 80).unwrap();
        let (region, _unlink) = crate::create(&n, &name, shape, Wait::Block, 1).unwrap();
        assert_eq!(region.cpu(false).load(Ordering::Relaxed), u32::MAX);
        assert_eq!(region.cpu(true).load(Ordering::Relaxed), u32::MAX);
        let mut frame = Vec::new();
        common::message::encode_into(0, 64, &mut frame);
        put(&n, &region, 0, &frame).unwrap();
        assert_ne!(region.cpu(false).load(Ordering::Relaxed), u32::MAX);
        let mut out = Vec::new();
        take(&n, &region, 0, &mut out).unwrap();
        assert_eq!(out, frame);
        assert_ne!(region.cpu(true).load(Ordering::Relaxed), u32::MAX);
    }
}
