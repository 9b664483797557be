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
//! - [`clean`]: `shm_unlink` of an object a killed run left behind, and nothing else.
//!
//! Nothing in the region is trusted (see [`region`]), nor is the object itself: a
//! consumer refuses an object another user created under its name, checks with `fstat`
//! that the producer has not shrunk it, and turns the SIGBUS that a shrinking between
//! the check and the access raises into a clear error ([`common::fault`]).
//!
//! Usage: `cargo run -p shm-demo -- --help`. See also: shm_overview(7), shm_open(3),
//! mmap(2), sem_overview(7), and TLPI chapters 48 to 54.

pub mod region;

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::cleanup::{self, Guard};
use common::fault::{self, Remove};
use common::message;
use common::narrate::{Shown, print_summary};
use common::owner::{self, Kind};
use common::process::{self, Fork};
use common::stream::{self, NARRATED_MESSAGES};
use common::tally::{MAX_COUNT, Tally};
use common::{Error, Narrator, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{FileStat, Mode, fchmod, fstat};
use nix::unistd;

use crate::region::{Corrupt, MAGIC, PRODUCER_OFFSET, Region, Shape, Wait};

/// The program's name, which starts its error lines.
const PROGRAM: &str = "shm-demo";
/// The permission bits of a new object unless `--mode` says otherwise: the owner only.
pub const DEFAULT_MODE: u32 = 0o600;
/// A consumer asks the object's size with `fstat` before every this many messages (and
/// whenever it wakes up to check on the producer): an access window. Asking before every
/// message would add a system call to each, which shared memory exists to avoid; a
/// shrinking inside a window is caught as SIGBUS by [`common::fault`].
pub const SIZE_WINDOW: u64 = 1024;

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

/// The object `name` cannot be used, found when opening it.
fn corrupt(name: &str, why: Corrupt) -> Error {
    let hint = if why.has_magic() {
        format!(
            "something damaged it; once no producer uses it, `shm-demo clean --name {name}` removes it"
        )
    } else {
        format!(
            "it is not a shm-demo ring (no magic), so `shm-demo clean` leaves it; if it is yours, \
             `rm /dev/shm{name}` removes it, or use another --name"
        )
    };
    Error::bad_data(format!("the shared memory object {name}"), why.to_string()).hint(hint)
}

/// The ring went bad during the run.
fn damaged(why: Corrupt) -> Error {
    Error::bad_data("the shared ring", why.to_string())
        .hint("the other process wrote something a ring cannot hold: a bug, or not a shm-demo peer")
}

/// [`create_with_mode`] with the [`DEFAULT_MODE`], 0600.
pub fn create(
    n: &Narrator,
    name: &str,
    shape: Shape,
    wait: Wait,
    count: u64,
) -> Result<(Region, Guard)> {
    create_with_mode(n, name, DEFAULT_MODE, shape, wait, count)
}

// ANCHOR: create
/// The producer's side of note 003's three calls: `shm_open` creates the object (it must
/// not exist: O_EXCL) with permission bits `mode` (0600 unless `--mode`), `ftruncate`
/// gives it a size, `mmap` maps it. The descriptor is closed afterwards: the mapping
/// stays. Returns the ring and a guard that unlinks the object.
pub fn create_with_mode(
    n: &Narrator,
    name: &str,
    mode: u32,
    shape: Shape,
    wait: Wait,
    count: u64,
) -> Result<(Region, Guard)> {
    let mode = mode & 0o777;
    let fd = n
        .call(format_args!("shm_open({name:?}, O_CREAT|O_EXCL|O_RDWR, {mode:04o})"), || {
            shm_open(name, OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR, Mode::from_bits_truncate(mode))
        })
        .map_err(|e| match e.errno() {
            Some(Errno::EEXIST) => e.hint(format!(
                "the object exists already (ls -l /dev/shm): another producer's, or left by a killed run; \
                 `shm-demo clean --name {name}` removes it if a killed run left it"
            )),
            _ => e,
        })?;
    let unlink = unlink_on_drop(n, name);
    exact_mode(n, &fd, mode)?;
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

/// The mode given to `shm_open` passes through the process's umask, as for `open(2)`:
/// 0666 with the usual umask 022 becomes 0644. If the umask took bits away, `fchmod(2)`
/// sets exactly the mode asked for.
fn exact_mode(n: &Narrator, fd: &OwnedFd, mode: u32) -> Result<()> {
    let st = fstat(fd).map_err(|e| Error::sys(format!("fstat({})", fd.as_raw_fd()), e))?;
    let got = st.st_mode & 0o777;
    if got != mode {
        n.call(
            format_args!(
                "fchmod({}, {mode:04o})   (the umask made it {got:04o}; see umask(2))",
                fd.as_raw_fd()
            ),
            || fchmod(fd, Mode::from_bits_truncate(mode)),
        )?;
    }
    Ok(())
}

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
/// The consumer's side: `shm_open` the existing object, check with `fstat` that it is
/// this user's, map it, then check its header. If the producer is not there yet, waits
/// for it (saying so), unless `no_wait`. The descriptor stays open, for `fstat` to tell
/// later whether the object was shrunk under the mapping.
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
        // Anyone may create a name in /dev/shm first: use only an object of this user.
        let st = ours(&fd, name)?;
        let len = usize::try_from(st.st_size).unwrap_or(0);
        let attached = if len == 0 {
            Err(Corrupt::NotReady)
        } else {
            let base = map(n, &fd, len)?;
            // SAFETY: `base` is the mapping of `len` bytes made just above, used by
            // nothing else; attach checks the header before anything else reads it.
            unsafe { Region::attach(base, len) }
        };
        match attached {
            Ok(mut region) => {
                region.keep_descriptor(fd);
                return Ok(region);
            }
            // The producer made the object but has not finished ftruncate or the header.
            Err(Corrupt::NotReady) if started.elapsed() < SETUP_TIME => {
                stream::close(n, fd)?;
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(why) => return Err(corrupt(name, why)),
        }
    }
}
// ANCHOR_END: open

/// `fstat(2)` on the object `name` and the type and owner check of [`owner::check`].
fn ours(fd: &OwnedFd, name: &str) -> Result<FileStat> {
    let call = format!("fstat({}) of {name:?}", fd.as_raw_fd());
    let st = fstat(fd).map_err(|e| Error::sys(call.clone(), e))?;
    owner::check(&st, Kind::File, &call)?;
    Ok(st)
}

/// Asks the object's size with `fstat` on the descriptor a consumer kept: a peer may have
/// shrunk it (ftruncate) under the mapping, and touching the part that is gone would
/// raise SIGBUS. A side without the descriptor (the producer) has nothing to ask.
fn check_size(region: &Region) -> Result<()> {
    match region.descriptor() {
        Some(fd) => fault::check_size(fd, "the shared memory object", region.len()),
        None => Ok(()),
    }
}

/// Waits until `ready` is true, with `wait`'s method, checking every [`CHECK_PEER`] that
/// the object still has its size and that the process `peer` (0: not known yet) is alive.
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
        check_size(region)?;
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
    if seq % SIZE_WINDOW == 0 {
        check_size(region)?;
    }
    // `tail` comes from the other process: saturating_sub, so that a corrupt one cannot
    // make this subtraction overflow.
    wait_until(region, wait, Semaphore::Empty, consumer, || {
        seq.saturating_sub(region.tail()) < slots
    })?;
    region.write_slot(seq, frame).map_err(damaged)?;
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
    if seq % SIZE_WINDOW == 0 {
        check_size(region)?;
    }
    wait_until(region, wait, Semaphore::Full, producer, || {
        region.head() > seq
    })?;
    region.checked_head(seq).map_err(damaged)?;
    region.read_slot(seq, out).map_err(damaged)?;
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
        return Err(damaged(Corrupt::BadIndex {
            what: "count",
            value: count,
            allowed: format!("0 ..= {MAX_COUNT}"),
        }));
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
    n.announce(format_args!(
        "ready: run `shm-demo consumer --name {name}` in another terminal"
    ));
    produce(n, &region, count, size)
}

/// The consumer's whole role. It creates nothing, so a SIGBUS leaves nothing behind. If
/// the producer died, nobody else will remove its object, so the consumer does, if the
/// name still holds that object; otherwise it says how to remove what is there.
pub fn consumer_role(n: &Narrator, name: &str, no_wait: bool) -> Result<()> {
    fault::exit_on_sigbus(PROGRAM, name, Remove::Nothing)?;
    let region = open(n, name, no_wait)?;
    let result = consume(n, &region);
    if result
        .as_ref()
        .is_err_and(|e| e.errno() == Some(Errno::ESRCH))
    {
        let used = region.descriptor().and_then(|fd| fstat(fd).ok());
        drop(region);
        remove_after_dead_producer(n, name, used);
    }
    result
}

/// Removes what a dead producer left at `name`, if it is the object this consumer used
/// (`used`: its `fstat`) and [`leftover`] finds it removable. Otherwise it leaves the
/// object and says why, and which command removes it.
fn remove_after_dead_producer(n: &Narrator, name: &str, used: Option<FileStat>) {
    let used = used.map(|st| (st.st_dev, st.st_ino));
    let another = || {
        n.essential(format_args!(
            "I leave {name}: it now names another object than the one my producer made; \
             if that is a leftover too, `shm-demo clean --name {name}` checks it and removes it"
        ));
    };
    // fstat first: an object that took the name is judged by clean, not here.
    match shm_open(name, OFlag::O_RDONLY, Mode::empty()).and_then(|fd| fstat(&fd)) {
        Err(Errno::ENOENT) => return n.say(format_args!("nothing is left at {name}")),
        Err(errno) => {
            let e = Error::sys(format!("shm_open({name:?}, O_RDONLY, 0)"), errno);
            return n.essential(format_args!("I leave {name}: {e}"));
        }
        Ok(now) if used != Some((now.st_dev, now.st_ino)) => return another(),
        Ok(_) => {}
    }
    match leftover(n, name) {
        Ok(None) => n.say(format_args!("nothing is left at {name}")),
        Ok(Some(found)) if used == Some((found.st.st_dev, found.st.st_ino)) => {
            n.announce("the producer cannot remove its object any more, so I do");
            if let Err(e) = n.call(format_args!("shm_unlink({name:?})"), || shm_unlink(name)) {
                n.essential(format_args!(
                    "I could not remove {name}: {e}; `shm-demo clean --name {name}` removes it"
                ));
            }
        }
        Ok(Some(_)) => another(),
        Err(e) => n.essential(format_args!("I leave {name}: {e}")),
    }
}

/// What [`leftover`] found: an object that may be removed.
struct Leftover {
    /// Its `fstat`.
    st: FileStat,
    /// The producer pid its header names (dead, or no process at all).
    producer: i32,
}

/// Opens `name` read-only and checks that the object there may be removed: this user's
/// (fstat: a regular file, the user's uid), shm-demo's (its magic), and not a live
/// producer's (the pid in its header). `Ok(None)` if nothing has that name; an error
/// saying why if it must stay. The header is read with `pread`, not mapped, so that a
/// shrunk object cannot raise SIGBUS here.
fn leftover(n: &Narrator, name: &str) -> Result<Option<Leftover>> {
    let fd = match shm_open(name, OFlag::O_RDONLY, Mode::empty()) {
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => {
            return Err(Error::sys(
                format!("shm_open({name:?}, O_RDONLY, 0)"),
                errno,
            ));
        }
        Ok(fd) => fd,
    };
    n.say(format_args!(
        "shm_open({name:?}, O_RDONLY, 0) = {}",
        fd.as_raw_fd()
    ));
    let st = ours(&fd, name)?;
    let mut header = [0u8; PRODUCER_OFFSET + 4];
    let call = format!("pread({}, buf, {}, 0)", fd.as_raw_fd(), header.len());
    let got = n.call(&call, || nix::sys::uio::pread(&fd, &mut header, 0))?;
    if got < header.len() || header[..MAGIC.len()] != MAGIC {
        return Err(Error::bad_data(
            format!("{call} of {name:?}"),
            "it does not start with the magic \"IPCDSHM1\", so nothing says it is shm-demo's",
        )
        .hint(format!(
            "clean removes only shm-demo's own objects; if it is yours, `rm /dev/shm{name}` removes it"
        )));
    }
    let mut pid = [0u8; 4];
    pid.copy_from_slice(&header[PRODUCER_OFFSET..]);
    let producer = i32::from_ne_bytes(pid);
    if producer > 0 && process::is_alive(producer) {
        return Err(Error::bad_data(
            format!("the shared memory object {name}"),
            format!("its producer (pid {producer}) is still running"),
        )
        .hint("stop that producer (Ctrl-C): it removes its object itself"));
    }
    Ok(Some(Leftover { st, producer }))
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
                .and_then(|region| consume(&me, &region));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            fault::exit_on_sigbus(PROGRAM, name, Remove::ShmObject(name.to_string()))?;
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

/// Removes the object `name` if a killed run left it: only an object of this user, with
/// shm-demo's magic, whose producer is not running. Anything else stays, and the error
/// says why.
pub fn clean(n: &Narrator, name: &str) -> Result<()> {
    let Some(found) = leftover(n, name)? else {
        n.say("no such object: nothing to clean");
        return print_summary("summary: removed=0");
    };
    if found.producer > 0 {
        n.say(format_args!(
            "its producer (pid {}) is gone: a leftover",
            found.producer
        ));
    } else {
        n.say(format_args!(
            "its header names producer pid {}, which is no process: a damaged ring",
            found.producer
        ));
    }
    // Only this user (and root) can remove it: /dev/shm is sticky (S_ISVTX), so between
    // the checks above and this call, nobody else can swap another object in.
    n.call(format_args!("shm_unlink({name:?})"), || shm_unlink(name))?;
    print_summary("summary: removed=1")
}
