//! The bounded buffer of the textbook, in a shared ring: [`put`] and [`take`] (one
//! message each, which the bench measures too), the producer's and the consumer's loops,
//! their roles in two terminals, and [`exchange`], both in one.
//!
//! The two sides take turns through two counting semaphores in the region (`--wait
//! block`): `empty` counts the free slots, `full` the slots holding a message. Or they
//! spin (`--wait spin`), re-reading the other side's counter (`head`, `tail`) until it
//! moves. Either way, a side that waits checks every 200 ms that the other side lives
//! and that the object still has its size: a semaphore or a counter cannot tell it that
//! the other process is gone.

use common::cleanup;
use common::fault::{self, Remove};
use common::mapping::{self, CHECK_EVERY, Looking};
use common::message;
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::tally::{MAX_COUNT, Tally};
use common::{Error, Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::sys::stat::fstat;
use nix::unistd;

use crate::object::{create_with_mode, open, remove_after_dead_producer};
use crate::region::{Corrupt, Region, Ring, Shape, Wait};
use crate::sys::{self, Sem};
use crate::{PROGRAM, SIZE_WINDOW};

/// Whether the wait for `role` (pid `pid`, 0 if not known yet) can still end: the
/// object still has its size, and the other process lives.
pub(crate) fn can_end(region: &Region, role: &str, pid: i32) -> Result<()> {
    region.check_size()?;
    mapping::peer_alive(role, pid)
}

// ANCHOR: sem_wait
/// Takes one from `sem`, in slices of 200 ms (`sem_timedwait`), checking between two
/// slices that the wait can still end (`check`). A slice that ends without the
/// semaphore is narrated too (`= -1 ETIMEDOUT`), the first few of them.
fn wait_on(n: &Narrator, sem: Sem<'_>, check: impl Fn() -> Result<()>) -> Result<()> {
    let timed_out = |e: &Error| matches!(e.errno(), Some(Errno::ETIMEDOUT | Errno::EINTR));
    match sys::sem_timedwait(n, sem, CHECK_EVERY) {
        Err(e) if timed_out(&e) => {}
        done => return done,
    }
    // Not within 200 ms: is the other side still there? Then wait on, slice by slice.
    let again = tr!("still waiting: sem_timedwait again every 200 ms, without narration");
    for _ in n.first_few(0u64.., again) {
        if let Err(e) = check() {
            // The other side may have posted just before it exited: one more look.
            return if sys::sem_trywait(n, sem)? {
                Ok(())
            } else {
                Err(e)
            };
        }
        match sys::sem_timedwait(n, sem, CHECK_EVERY) {
            Err(e) if timed_out(&e) => {}
            done => return done,
        }
    }
    Ok(())
}
// ANCHOR_END: sem_wait

/// The producer waits until the slot of message `seq` is free.
fn wait_for_room(n: &Narrator, region: &Region, seq: u64) -> Result<()> {
    let check = || can_end(region, "consumer", region.consumer_pid());
    match region.wait() {
        Wait::Block => wait_on(n, region.empty(), check),
        Wait::Spin => {
            let slots = u64::from(region.shape().slots);
            // `tail` comes from the other process: saturating_sub, so that a corrupt one
            // cannot make this subtraction overflow.
            let free = || seq.saturating_sub(region.tail()) < slots;
            let tail = seq.saturating_sub(slots);
            let what = || tr!("spin until tail > {tail} (a slot is free)", tail);
            mapping::spin_until(n, what, Looking::Spin, free, check)
        }
    }
}

/// The consumer waits until message `seq` is in the ring.
fn wait_for_message(n: &Narrator, region: &Region, seq: u64) -> Result<()> {
    let check = || can_end(region, "producer", region.producer_pid());
    match region.wait() {
        Wait::Block => wait_on(n, region.full(), check),
        Wait::Spin => {
            let what = || tr!("spin until head > {seq} (message {seq} is in)", seq);
            mapping::spin_until(n, what, Looking::Spin, || region.head() > seq, check)
        }
    }
}

// ANCHOR: put
/// Puts message `seq` (a whole frame) into the ring: waits for its slot to be free,
/// copies the frame in, publishes it (head), and signals it. The producer's step, which
/// the bench measures too.
pub fn put(n: &Narrator, region: &Region, seq: u64, frame: &[u8]) -> Result<()> {
    if seq % SIZE_WINDOW == 0 {
        region.check_size()?;
    }
    wait_for_room(n, region, seq)?;
    region.write_slot(n, seq, frame)?;
    region.set_head(seq + 1);
    let slot = seq % u64::from(region.shape().slots);
    say!(
        n,
        "slot {slot}: wrote message {seq} ({len} bytes); head = {head}",
        slot,
        seq,
        len = frame.len(),
        head = seq + 1
    );
    if region.wait() == Wait::Block {
        sys::sem_post(n, region.full())?;
    }
    Ok(())
}

/// Takes message `seq` out of the ring into `out`: waits for it, checks the producer's
/// head, copies the frame out, and frees the slot. The consumer's step, which the bench
/// measures too.
pub fn take(n: &Narrator, region: &Region, seq: u64, out: &mut Vec<u8>) -> Result<()> {
    if seq % SIZE_WINDOW == 0 {
        region.check_size()?;
    }
    wait_for_message(n, region, seq)?;
    region.checked_head(seq)?;
    region.read_slot(n, seq, out)?;
    region.set_tail(seq + 1);
    let slot = seq % u64::from(region.shape().slots);
    say!(
        n,
        "slot {slot}: copied message {seq} out ({len} bytes); tail = {tail}",
        slot,
        seq,
        len = out.len(),
        tail = seq + 1
    );
    if region.wait() == Wait::Block {
        sys::sem_post(n, region.empty())?;
    }
    Ok(())
}
// ANCHOR_END: put

// ANCHOR: produce
/// The producer's loop: puts each message into the ring (the textbook's [`put`], or
/// `fast::put` for `--ring fast`). At the end, it waits until the consumer has taken all.
pub fn produce(n: &Narrator, region: &Region, count: u64, size: usize) -> Result<()> {
    let slots = u64::from(region.shape().slots);
    let mut frame = Vec::with_capacity(size + message::OVERHEAD);
    for seq in n.first_few(0..count, tr!("the rest without narration")) {
        if seq == slots && region.consumer_pid() == 0 {
            n.announce(tr!("the ring is full; waiting for a consumer"));
        }
        message::encode_into(seq, size, &mut frame);
        crate::put(n, region, seq, &frame)?;
    }
    say!(
        n,
        "all sent; waiting until the consumer has taken everything"
    );
    if region.shape().ring == Ring::Fast {
        return crate::fast::wait_all_taken(n, region, count);
    }
    let check = || can_end(region, "consumer", region.consumer_pid());
    match region.wait() {
        // `empty` counts the free slots. Taking back all of them means the consumer has
        // freed every slot, so it has taken every message.
        Wait::Block => {
            for _ in n.first_few(0..slots, tr!("the other free slots without narration")) {
                wait_on(n, region.empty(), check)?;
            }
            Ok(())
        }
        Wait::Spin => {
            let what = || tr!("spin until tail = {count} (all taken)", count);
            mapping::spin_until(n, what, Looking::Spin, || region.tail() == count, check)
        }
    }
}
// ANCHOR_END: produce

// ANCHOR: consume
/// The consumer's loop: takes each message out of the ring and checks it. The count is
/// the copy `open` read from the header, checked here against what a tally can count.
pub fn consume(n: &Narrator, region: &Region) -> Result<()> {
    region.set_consumer_pid(unistd::getpid().as_raw());
    let count = region.count();
    if count > MAX_COUNT {
        return Err(Corrupt::BadIndex {
            what: "count",
            value: count,
            allowed: format!("0 ..= {MAX_COUNT}"),
        }
        .into());
    }
    let (slots, wait) = (region.shape().slots, format!("{:?}", region.wait()));
    say!(
        n,
        "the header says: {count} messages, {slots} slots, waiting by {wait}",
        count,
        slots,
        wait
    );
    let mut tally = Tally::new(count);
    let mut frame = Vec::new();
    let clock = common::timing::Stopwatch::start();
    for seq in n.first_few(0..count, tr!("the rest without narration")) {
        crate::take(n, region, seq, &mut frame)?;
        match message::decode(&frame, region.slot_capacity()) {
            Ok(f) => tally.record(&f),
            Err(_) => tally.record_undecodable(frame.len()),
        }
    }
    say!(
        n,
        "{rate} in {seconds} s",
        rate = common::timing::rate(count, tally.bytes(), clock.elapsed()),
        seconds = format!("{:.3}", clock.elapsed().as_secs_f64())
    );
    print_summary(tally.summary())?;
    tally.verdict()
}
// ANCHOR_END: consume

/// The producer's whole role, with the object removed at the end, on Ctrl-C, and on the
/// SIGBUS of a consumer that shrank it.
pub fn producer_role(
    n: &Narrator,
    name: &str,
    mode: u32,
    shape: Shape,
    wait: Wait,
    count: u64,
    size: usize,
) -> Result<()> {
    let (region, _unlink) = create_with_mode(n, name, mode, shape, wait, count)?;
    fault::exit_on_sigbus(PROGRAM, name, Remove::ShmObject(name.to_string()))?;
    cleanup::exit_on_interrupt(n)?;
    n.announce(tr!(
        "ready: run `shm-demo consumer --name {name}` in another terminal",
        name
    ));
    produce(n, &region, count, size)?;
    region.munmap(n)
}

/// The consumer's whole role. It creates nothing, so a SIGBUS leaves nothing behind. If
/// the producer died, nobody else will remove its object, so the consumer does, if the
/// name still holds that object; otherwise it says how to remove what is there.
pub fn consumer_role(n: &Narrator, name: &str, no_wait: bool) -> Result<()> {
    fault::exit_on_sigbus(PROGRAM, name, Remove::Nothing)?;
    let region = open(n, name, no_wait)?;
    match consume(n, &region) {
        Ok(()) => region.munmap(n),
        Err(e) if e.errno() == Some(Errno::ESRCH) => {
            let fd = region.mapping().descriptor();
            let used = fd
                .and_then(|fd| fstat(fd).ok())
                .map(|st| (st.st_dev, st.st_ino));
            drop(region);
            remove_after_dead_producer(n, name, used);
            Err(e)
        }
        Err(e) => Err(e),
    }
}

// ANCHOR: exchange
/// Both roles in one terminal: the parent creates the object and forks; the child opens
/// it by name, as an unrelated process would, and consumes.
pub fn exchange(
    n: &Narrator,
    name: &str,
    mode: u32,
    shape: Shape,
    wait: Wait,
    count: u64,
    size: usize,
) -> Result<()> {
    let (region, _unlink) = create_with_mode(n, name, mode, shape, wait, count)?;
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            // The child inherited the parent's mapping too; it maps the object again by
            // name to show what a second program does. The object is its parent's: on
            // SIGBUS the child removes nothing.
            drop(region);
            let result = fault::exit_on_sigbus(PROGRAM, name, Remove::Nothing)
                .and_then(|()| open(&me, name, true))
                .and_then(|region| consume(&me, &region).and_then(|()| region.munmap(&me)));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            fault::exit_on_sigbus(PROGRAM, name, Remove::ShmObject(name.to_string()))?;
            cleanup::exit_on_interrupt(n)?;
            produce(n, &region, count, size)?;
            process::wait_for(n, child, "consumer")?;
            region.munmap(n)
        }
    }
}
// ANCHOR_END: exchange
