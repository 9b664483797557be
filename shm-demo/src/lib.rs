//! shm-demo: POSIX shared memory, and why it needs synchronisation.
//!
//! Follows `003_5ebb38e0b36eb300.txt`, "3.7.1 POSIX 공유 메모리"; `000_5e93fa56600d397d.txt`,
//! "4. 공유 메모리 (Shared Memory)"; `002_c8d20cee4fe5d0b4.txt`, "3. Shared Memory (공유
//! 메모리)"; and `004_591acb9035e2e6fa.txt`, "공유메모리(shared memory)", with the
//! synchronisation problem of `001_ffa78007200462ad.txt`, "2. IPC 모델 - Shared Memory".
//!
//! The producer makes a shared memory object with `shm_open`, sizes it with `ftruncate`
//! and maps it with `mmap`; the consumer opens and maps the same object. From then on the
//! data moves with ordinary loads and stores, no system call per message. What the
//! kernel no longer does, the two processes must do themselves: agree on a layout
//! ([`region`]), and take turns, here through a ring of slots with two process-shared
//! semaphores (`--wait block`) or by spinning on two counters (`--wait spin`).
//!
//! - [`create`] and [`open`]: the object and its mapping, as note 003 lists the calls;
//! - [`produce`] and [`consume`]: the bounded buffer of the textbook;
//! - [`exchange`]: both roles in one terminal;
//! - [`race`]: two processes incrementing one counter, with and without synchronisation;
//! - [`clean`]: `shm_unlink` of an object a killed run left behind.
//!
//! Usage: `cargo run -p shm-demo -- --help`. See also: shm_overview(7), shm_open(3),
//! mmap(2), sem_overview(7), and TLPI chapters 48 to 54.

pub mod region;

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::cleanup::{self, Guard};
use common::message;
use common::narrate::{Shown, print_summary};
use common::process::{self, Fork};
use common::stream::{self, NARRATED_MESSAGES};
use common::tally::{MAX_COUNT, Tally};
use common::{Error, Narrator, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::Mode;
use nix::unistd;

use crate::region::{Corrupt, Region, Shape, Wait};

/// How often a side that waits checks that the other side is still alive.
pub const CHECK_PEER: Duration = Duration::from_millis(200);
/// How long a consumer waits for a producer that has created the object but not yet
/// finished setting it up, before it calls the object broken.
pub const SETUP_TIME: Duration = Duration::from_secs(5);

/// The default name: `/ipc-demo-shm-UID`, so that two users of one machine do not meet.
pub fn default_name() -> String {
    format!("/ipc-demo-shm-{}", unistd::Uid::current())
}

/// A mapped address, shown as `mmap` returns it.
struct Address(std::ptr::NonNull<u8>);

impl Shown for Address {
    fn shown(&self) -> String {
        format!("{:p}", self.0)
    }
}

fn corrupt(name: &str, why: Corrupt) -> Error {
    Error::bad_data(format!("the shared memory object {name}"), why.to_string())
        .hint("it is not a shm-demo ring, or something damaged it: `shm-demo clean` removes it")
}

// ANCHOR: create
/// The producer's side of note 003's three calls: `shm_open` creates the object (it must
/// not exist: O_EXCL), `ftruncate` gives it a size, `mmap` maps it. The descriptor is
/// closed afterwards: the mapping stays. Returns the ring and a guard that unlinks the
/// object.
pub fn create(
    n: &Narrator,
    name: &str,
    shape: Shape,
    wait: Wait,
    count: u64,
) -> Result<(Region, Guard)> {
    let fd = n
        .call(format_args!("shm_open({name:?}, O_CREAT|O_EXCL|O_RDWR, 0600)"), || {
            shm_open(name, OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR, Mode::S_IRUSR | Mode::S_IWUSR)
        })
        .map_err(|e| match e.errno() {
            Some(Errno::EEXIST) => e.hint(format!(
                "the object exists already (ls -l /dev/shm): another producer's, or left by a killed run; \
                 `shm-demo clean --name {name}` removes it"
            )),
            _ => e,
        })?;
    let unlink = unlink_on_drop(n, name);
    let len = shape.region_len();
    n.call(format_args!("ftruncate({}, {len})", fd.as_raw_fd()), || {
        unistd::ftruncate(&fd, len as i64)
    })?;
    let base = map(n, &fd, len)?;
    stream::close(n, fd)?;
    n.say("the descriptor is closed; the mapping stays until munmap (or exit)");
    // SAFETY: `base` is the fresh mapping of `len` = shape.region_len() bytes made just
    // above; no other process can use it before the magic is written, because a consumer
    // waits for the magic.
    let region = unsafe { Region::initialise(base, shape, wait, count) }
        .map_err(|errno| Error::sys("sem_init(&full, 1, 0), sem_init(&empty, 1, slots)", errno))?;
    n.say(format_args!(
        "ring ready: {} slots of {} bytes, waiting by {wait:?}; look: ls -l /dev/shm, grep {} /proc/{}/maps",
        shape.slots,
        shape.slot_size,
        name.trim_start_matches('/'),
        unistd::getpid()
    ));
    Ok((region, unlink))
}
// ANCHOR_END: create

fn map(n: &Narrator, fd: &OwnedFd, len: usize) -> Result<std::ptr::NonNull<u8>> {
    n.call(
        format_args!(
            "mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, {}, 0)",
            fd.as_raw_fd()
        ),
        || region::map_shared(fd, len).map(Address),
    )
    .map(|a| a.0)
}

/// A guard that `shm_unlink`s the object when dropped or on Ctrl-C.
fn unlink_on_drop(n: &Narrator, name: &str) -> Guard {
    let (n, name) = (n.clone(), name.to_string());
    Guard::new(move || {
        let _ = n.call(format_args!("shm_unlink({name:?})"), || {
            shm_unlink(name.as_str())
        });
    })
}

// ANCHOR: open
/// The consumer's side: `shm_open` the existing object and map it, then check its header.
/// If the producer is not there yet, waits for it (saying so), unless `no_wait`.
pub fn open(n: &Narrator, name: &str, no_wait: bool) -> Result<Region> {
    let started = Instant::now();
    let mut said = false;
    loop {
        let fd = match shm_open(name, OFlag::O_RDWR, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !no_wait => {
                if !said {
                    n.announce(format_args!(
                        "waiting for a producer to create {name} (Ctrl-C to stop)"
                    ));
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(errno) => {
                let e = Error::sys(format!("shm_open({name:?}, O_RDWR, 0)"), errno);
                return Err(match errno {
                    Errno::ENOENT => {
                        e.hint("no such object: start the producer first, or leave out --no-wait")
                    }
                    Errno::EACCES => e.hint("the object belongs to another user"),
                    _ => e,
                });
            }
        };
        n.say(format_args!(
            "shm_open({name:?}, O_RDWR, 0) = {}",
            fd.as_raw_fd()
        ));
        let len = stream::fd_len(&fd)?;
        let attached = if len == 0 {
            Err(Corrupt::NotReady)
        } else {
            let base = map(n, &fd, len)?;
            // SAFETY: `base` is the mapping of `len` bytes made just above, used by
            // nothing else; attach checks the header before anything else reads it.
            unsafe { Region::attach(base, len) }
        };
        stream::close(n, fd)?;
        match attached {
            Ok(region) => return Ok(region),
            // The producer made the object but has not finished ftruncate or the header.
            Err(Corrupt::NotReady) if started.elapsed() < SETUP_TIME => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(why) => return Err(corrupt(name, why)),
        }
    }
}
// ANCHOR_END: open

/// Waits until `ready` is true, with `wait`'s method, checking every [`CHECK_PEER`] that
/// the process `peer` (0: not known yet) is alive.
fn wait_until(
    region: &Region,
    wait: Wait,
    semaphore: Semaphore,
    peer: impl Fn() -> (i32, &'static str),
    ready: impl Fn() -> bool,
) -> Result<()> {
    let mut last_check = Instant::now();
    let mut spins = 0u32;
    loop {
        match wait {
            Wait::Block => {
                let result = match semaphore {
                    Semaphore::Full => region.wait_full(CHECK_PEER),
                    Semaphore::Empty => region.wait_empty(CHECK_PEER),
                };
                match result {
                    Ok(()) => return Ok(()),
                    Err(Errno::ETIMEDOUT | Errno::EINTR) => {}
                    Err(errno) => return Err(Error::sys("sem_timedwait", errno)),
                }
            }
            Wait::Spin => {
                if ready() {
                    return Ok(());
                }
                std::hint::spin_loop();
                // Reading the clock costs more than a spin: look at it only now and then.
                spins = spins.wrapping_add(1);
                if spins % 1024 != 0 || last_check.elapsed() < CHECK_PEER {
                    continue;
                }
                last_check = Instant::now();
            }
        }
        let (pid, role) = peer();
        if pid != 0 && !process::is_alive(pid) {
            // The peer may have done its part and exited since we last looked: one more
            // look, without waiting, before calling it gone too early.
            let done = match wait {
                Wait::Block => match semaphore {
                    Semaphore::Full => region.try_full(),
                    Semaphore::Empty => region.try_empty(),
                },
                Wait::Spin => ready(),
            };
            return if done {
                Ok(())
            } else {
                Err(process::gone(role, pid))
            };
        }
    }
}

#[derive(Clone, Copy)]
enum Semaphore {
    Full,
    Empty,
}

// ANCHOR: put
/// Puts message `seq` (a whole frame) into the ring: waits for its slot to be free,
/// copies the frame in, publishes it (head), and signals it. The producer's step, which
/// the bench measures too.
pub fn put(n: &Narrator, region: &Region, seq: u64, frame: &[u8]) -> Result<()> {
    let (wait, slots) = (region.wait(), u64::from(region.shape().slots));
    let consumer = || (region.consumer_pid(), "consumer");
    // `tail` comes from the other process: saturating_sub, so that a corrupt one cannot
    // make this subtraction overflow.
    wait_until(region, wait, Semaphore::Empty, consumer, || {
        seq.saturating_sub(region.tail()) < slots
    })?;
    region
        .write_slot(seq, frame)
        .map_err(|why| corrupt("ring", why))?;
    region.set_head(seq + 1);
    n.say(format_args!(
        "slot {}: wrote message {seq} ({} bytes) with memcpy; head = {}",
        seq % slots,
        frame.len(),
        seq + 1
    ));
    if wait == Wait::Block {
        n.call("sem_post(&full)", || region.post_full())?;
    }
    Ok(())
}

/// Takes message `seq` out of the ring into `out`: waits for it, checks the producer's
/// head, copies the frame out, and frees the slot. The consumer's step, which the bench
/// measures too.
pub fn take(n: &Narrator, region: &Region, seq: u64, out: &mut Vec<u8>) -> Result<()> {
    let (wait, slots) = (region.wait(), u64::from(region.shape().slots));
    let producer = || (region.producer_pid(), "producer");
    wait_until(region, wait, Semaphore::Full, producer, || {
        region.head() > seq
    })?;
    region
        .checked_head(seq)
        .map_err(|why| corrupt("ring", why))?;
    region
        .read_slot(seq, out)
        .map_err(|why| corrupt("ring", why))?;
    region.set_tail(seq + 1);
    n.say(format_args!(
        "slot {}: copied message {seq} out ({} bytes); tail = {}",
        seq % slots,
        out.len(),
        seq + 1
    ));
    if wait == Wait::Block {
        n.call("sem_post(&empty)", || region.post_empty())?;
    }
    Ok(())
}
// ANCHOR_END: put

// ANCHOR: produce
/// The producer's loop: for each message, wait for a free slot, write the frame into it,
/// publish it (head), and signal it. At the end, wait until the consumer has taken all.
pub fn produce(n: &Narrator, region: &Region, count: u64, size: usize) -> Result<()> {
    let wait = region.wait();
    let slots = u64::from(region.shape().slots);
    let consumer = || (region.consumer_pid(), "consumer");
    let mut frame = Vec::with_capacity(size + message::OVERHEAD);
    for seq in 0..count {
        if seq == NARRATED_MESSAGES {
            n.mute("... the rest without narration");
        }
        if seq == slots && region.consumer_pid() == 0 {
            n.announce("the ring is full; waiting for a consumer");
        }
        n.step(format_args!(
            "wait for a free slot ({})",
            if wait == Wait::Block {
                "sem_wait(&empty)"
            } else {
                "spin on tail"
            }
        ));
        message::encode_into(seq, size, &mut frame);
        put(n, region, seq, &frame)?;
    }
    n.unmute();
    n.say("all sent; waiting until the consumer has taken everything");
    match wait {
        // `empty` counts the free slots. Taking back all of them means the consumer has
        // freed every slot, so it has taken every message.
        Wait::Block => (0..slots)
            .try_for_each(|_| wait_until(region, wait, Semaphore::Empty, consumer, || true)),
        Wait::Spin => wait_until(region, wait, Semaphore::Empty, consumer, || {
            region.tail() == count
        }),
    }
}
// ANCHOR_END: produce

// ANCHOR: consume
/// The consumer's loop: for each message, wait for a full slot, check the producer's head
/// against the ring, copy the frame out, check it, and free the slot.
pub fn consume(n: &Narrator, region: &Region) -> Result<()> {
    region.set_consumer_pid(unistd::getpid().as_raw());
    let count = region.count();
    if count > MAX_COUNT {
        return Err(corrupt(
            "ring",
            Corrupt::BadIndex {
                what: "count",
                value: count,
                allowed: format!("0 ..= {MAX_COUNT}"),
            },
        ));
    }
    let wait = region.wait();
    let slots = u64::from(region.shape().slots);
    n.say(format_args!(
        "the header says: {count} messages, {slots} slots, waiting by {wait:?}"
    ));
    let mut tally = Tally::new(count);
    let mut frame = Vec::new();
    let clock = common::timing::Stopwatch::start();
    for seq in 0..count {
        if seq == NARRATED_MESSAGES {
            n.mute("... the rest without narration");
        }
        n.step(format_args!(
            "wait for a message ({})",
            if wait == Wait::Block {
                "sem_wait(&full)"
            } else {
                "spin on head"
            }
        ));
        take(n, region, seq, &mut frame)?;
        match message::decode(&frame, region.slot_capacity()) {
            Ok(f) => tally.record(&f),
            Err(_) => tally.record_undecodable(frame.len()),
        }
    }
    n.unmute();
    n.say(format_args!(
        "{} in {:.3} s",
        common::timing::rate(count, tally.bytes(), clock.elapsed()),
        clock.elapsed().as_secs_f64()
    ));
    print_summary(tally.summary())?;
    tally.verdict()
}
// ANCHOR_END: consume

/// The producer's whole role, with the object removed at the end or on Ctrl-C.
pub fn producer_role(
    n: &Narrator,
    name: &str,
    shape: Shape,
    wait: Wait,
    count: u64,
    size: usize,
) -> Result<()> {
    let (region, _unlink) = create(n, name, shape, wait, count)?;
    cleanup::exit_on_interrupt(n)?;
    n.announce(format_args!(
        "ready: run `shm-demo consumer --name {name}` in another terminal"
    ));
    produce(n, &region, count, size)
}

/// The consumer's whole role. If the producer died, nobody else will remove its object,
/// so the consumer does.
pub fn consumer_role(n: &Narrator, name: &str, no_wait: bool) -> Result<()> {
    let region = open(n, name, no_wait)?;
    let result = consume(n, &region);
    if result
        .as_ref()
        .is_err_and(|e| e.errno() == Some(Errno::ESRCH))
    {
        drop(region);
        n.announce("the producer cannot remove its object any more, so I do");
        let _ = n.call(format_args!("shm_unlink({name:?})"), || shm_unlink(name));
    }
    result
}

// ANCHOR: exchange
/// Both roles in one terminal: the parent creates the object and forks; the child opens
/// it by name, as an unrelated process would, and consumes.
pub fn exchange(
    n: &Narrator,
    name: &str,
    shape: Shape,
    wait: Wait,
    count: u64,
    size: usize,
) -> Result<()> {
    let (region, _unlink) = create(n, name, shape, wait, count)?;
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            // The child inherited the parent's mapping too; it maps the object again by
            // name to show what a second program does.
            drop(region);
            let result = open(&me, name, true).and_then(|region| consume(&me, &region));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            cleanup::exit_on_interrupt(n)?;
            produce(n, &region, count, size)?;
            process::wait_for(n, child, "consumer")
        }
    }
}
// ANCHOR_END: exchange

/// What [`race`] counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaceResult {
    /// 2 × count: what a correct run ends with.
    pub expected: u64,
    /// Without synchronisation.
    pub unsynchronised: u64,
    /// With an atomic fetch-and-add.
    pub atomic: u64,
    /// With a process-shared semaphore as a lock.
    pub semaphore: u64,
}

/// How the increments of [`race`] are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Increment {
    /// Load, wait a little, store: the window in which the other process's update is lost.
    Unsynchronised,
    /// One `lock xadd` instruction: the hardware makes it indivisible.
    Atomic,
    /// `sem_wait`, load, store, `sem_post`: a lock around the same code.
    Semaphore,
}

/// Spins between the load and the store of an unsynchronised increment, so that the other
/// process's increments fall into the window often, even when both share one CPU.
const WINDOW: u32 = 64;

// ANCHOR: race
/// Two processes each add 1 to one counter in shared memory `count` times, in each of the
/// three ways of [`Increment`]. Returns the three totals.
pub fn race(n: &Narrator, count: u64) -> Result<RaceResult> {
    let shared = n.call(
        "mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)",
        || region::map_anonymous(4096),
    )?;
    n.call("sem_init(&lock, 1, 1)", || shared.init_lock())?;
    let mut totals = [0; 3];
    for (total, how) in totals.iter_mut().zip([
        Increment::Unsynchronised,
        Increment::Atomic,
        Increment::Semaphore,
    ]) {
        shared
            .atomic()
            .store(0, std::sync::atomic::Ordering::SeqCst);
        let mut children = Vec::new();
        for _ in 0..2 {
            match process::fork(n, "incrementer")? {
                Fork::Child(me) => {
                    me.mute("counting");
                    let result = increment(&shared, how, count);
                    process::exit_child(&me, result)
                }
                Fork::Parent { child } => children.push(child),
            }
        }
        for child in children {
            process::wait_for(n, child, "incrementer")?;
        }
        *total = shared.atomic().load(std::sync::atomic::Ordering::SeqCst);
        n.announce(format_args!(
            "{how:?}: expected {}, got {total}, lost {}",
            2 * count,
            (2 * count).saturating_sub(*total)
        ));
    }
    let [unsynchronised, atomic, semaphore] = totals;
    Ok(RaceResult {
        expected: 2 * count,
        unsynchronised,
        atomic,
        semaphore,
    })
}

fn increment(shared: &region::AnonymousRegion, how: Increment, count: u64) -> Result<()> {
    for _ in 0..count {
        match how {
            Increment::Unsynchronised => {
                let value = shared.racy_load();
                for _ in 0..WINDOW {
                    std::hint::spin_loop();
                }
                shared.racy_store(value + 1);
            }
            Increment::Atomic => {
                shared
                    .atomic()
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Increment::Semaphore => {
                shared
                    .lock_wait()
                    .map_err(|e| Error::sys("sem_wait(&lock)", e))?;
                let value = shared.racy_load();
                shared.racy_store(value + 1);
                shared
                    .lock_post()
                    .map_err(|e| Error::sys("sem_post(&lock)", e))?;
            }
        }
    }
    Ok(())
}
// ANCHOR_END: race

impl Shown for region::AnonymousRegion {
    fn shown(&self) -> String {
        format!("{:p}", self.address())
    }
}

/// Removes the object `name` if a killed run left it.
pub fn clean(n: &Narrator, name: &str) -> Result<()> {
    match n.call(format_args!("shm_unlink({name:?})"), || shm_unlink(name)) {
        Ok(()) => print_summary("summary: removed=1"),
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            n.say("no such object: nothing to clean");
            print_summary("summary: removed=0")
        }
        Err(e) => Err(e),
    }
}
