//! The shared region: its layout, and a safe API over the raw memory.
//!
//! Every byte of the region can be written by the other process, which may be buggy,
//! killed half-way, or hostile. So this module never hands out a reference to a plain
//! value in the region: the counters are atomics, the slots are copied out (and their
//! lengths checked) before anyone looks at them, and the header is checked on open.
//! A field is read once: what the checks passed is copied into [`Region`] (the shape,
//! the way of waiting, the producer's pid) and only that copy is used afterwards, since
//! the other process could change the field between a check and a second read.
//! All the `unsafe` of shm-demo is here, each block with the reason it is sound.
//!
//! ```text
//! offset  size       field
//! 0       8          magic "IPCDSHM1"          written last by the producer: "ready"
//! 8       4          version (1)
//! 12      4          slot_size                 bytes per slot, a multiple of 8
//! 16      4          slots                     how many slots the ring has
//! 20      4          wait                      0 = block (semaphores), 1 = spin
//! 24      4          producer pid
//! 28      4          consumer pid              0 until a consumer attaches
//! 32      8          count                     messages the producer will send
//! 64      8          head                      messages published (producer writes)
//! 128     8          tail                      messages taken (consumer writes)
//! 192     32         full                      sem_t: slots holding a message
//! 256     32         empty                     sem_t: slots free
//! 512     slots × slot_size                    the ring; each slot: u32 length, 4
//!                                              bytes of padding, then the frame
//! ```

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

/// The bytes at offset 0 of a ready region.
pub const MAGIC: [u8; 8] = *b"IPCDSHM1";
/// The layout version this code reads and writes.
pub const VERSION: u32 = 1;
/// Bytes before the first slot.
pub const HEADER: usize = 512;
/// Bytes at the start of each slot before the frame: its length, then padding.
pub const SLOT_HEADER: usize = 8;
/// Offset of `head`, for tests that corrupt it on purpose.
pub const HEAD_OFFSET: usize = 64;
/// Offset of `magic`.
pub const MAGIC_OFFSET: usize = 0;
/// Offset of the producer's pid (an `i32`), for `clean` and for tests.
pub const PRODUCER_OFFSET: usize = 24;
/// The most slots a ring may have.
pub const MAX_SLOTS: u32 = 4096;
/// The largest payload a message may carry: 64 MiB.
pub const MAX_PAYLOAD: usize = 64 << 20;
/// The largest slot: the largest payload, its frame's header and trailer, and the slot's
/// own header, rounded up.
pub const MAX_SLOT_SIZE: u32 = (MAX_PAYLOAD + 64) as u32;
/// The largest region.
pub const MAX_REGION: usize = 1 << 30;

const VERSION_OFFSET: usize = 8;
const SLOT_SIZE_OFFSET: usize = 12;
const SLOTS_OFFSET: usize = 16;
const WAIT_OFFSET: usize = 20;
const CONSUMER_OFFSET: usize = 28;
const COUNT_OFFSET: usize = 32;
const TAIL_OFFSET: usize = 128;
const FULL_OFFSET: usize = 192;
const EMPTY_OFFSET: usize = 256;

/// How the two sides wait for each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Wait {
    /// Sleep in the kernel: process-shared semaphores in the region (sem_wait, sem_post).
    Block,
    /// Keep a CPU busy re-reading the counters until they change.
    Spin,
}

/// The shape of a ring: how many slots, how large each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Slots in the ring.
    pub slots: u32,
    /// Bytes per slot, including the 8-byte slot header.
    pub slot_size: u32,
}

impl Shape {
    /// The ring for frames of up to `frame_len` bytes in `slots` slots.
    pub fn for_frames(slots: u32, frame_len: usize) -> Option<Shape> {
        let slot_size = u32::try_from((SLOT_HEADER + frame_len).div_ceil(8) * 8).ok()?;
        let shape = Shape { slots, slot_size };
        shape.is_valid().then_some(shape)
    }

    /// The region's size in bytes.
    pub fn region_len(&self) -> usize {
        HEADER + self.slots as usize * self.slot_size as usize
    }

    fn is_valid(&self) -> bool {
        (1..=MAX_SLOTS).contains(&self.slots)
            && (SLOT_HEADER as u32 + 8..=MAX_SLOT_SIZE).contains(&self.slot_size)
            && self.slot_size % 8 == 0
            && self.region_len() <= MAX_REGION
    }
}

/// Why a region cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corrupt {
    /// Smaller than its header says it must be.
    TooSmall {
        /// Bytes the object has.
        len: usize,
        /// Bytes it needs.
        need: usize,
    },
    /// Not ready yet (magic still zero): the producer is still setting it up.
    NotReady,
    /// Something other than our magic: not an ipc-demos region at all.
    BadMagic([u8; 8]),
    /// Another layout version.
    BadVersion(u32),
    /// Slot count or size out of range.
    BadShape(Shape),
    /// A ring counter out of range.
    BadIndex {
        /// The counter's name.
        what: &'static str,
        /// Its value.
        value: u64,
        /// What it had to be within.
        allowed: String,
    },
    /// A slot's length does not fit in the slot.
    BadSlotLength {
        /// The slot.
        slot: u64,
        /// The length it claims.
        len: u32,
    },
    /// A way of waiting other than 0 (block) and 1 (spin).
    BadWait(u32),
    /// A producer pid that is no process (0 or negative). Taken as it is, it would turn
    /// off the check that the producer is alive, so it is refused.
    BadPid(i32),
}

impl Corrupt {
    /// Whether the region carried the magic: the object is an shm-demo ring, only a
    /// damaged or a shrunk one. Without the magic, nothing says whose it is.
    pub fn has_magic(&self) -> bool {
        !matches!(
            self,
            Corrupt::NotReady | Corrupt::BadMagic(_) | Corrupt::TooSmall { need: HEADER, .. }
        )
    }
}

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Corrupt::TooSmall { len, need } => {
                write!(f, "the object is {len} bytes, its header needs {need}")
            }
            Corrupt::NotReady => write!(f, "the producer has not finished setting it up"),
            Corrupt::BadMagic(m) => {
                write!(f, "it starts with {m:02x?}, not the magic \"IPCDSHM1\"")
            }
            Corrupt::BadVersion(v) => write!(f, "layout version {v}, not {VERSION}"),
            Corrupt::BadShape(s) => write!(
                f,
                "{} slots of {} bytes is out of range",
                s.slots, s.slot_size
            ),
            Corrupt::BadIndex {
                what,
                value,
                allowed,
            } => write!(f, "ring index {what} = {value}, not in {allowed}"),
            Corrupt::BadSlotLength { slot, len } => write!(
                f,
                "slot {slot} claims {len} bytes, more than the slot holds"
            ),
            Corrupt::BadWait(w) => write!(f, "way of waiting {w}, not 0 (block) or 1 (spin)"),
            Corrupt::BadPid(pid) => write!(
                f,
                "producer pid {pid} is no process, so nobody could tell if the producer dies"
            ),
        }
    }
}

/// A mapping of the whole region, unmapped when dropped, with the header fields that
/// were checked when it was made or attached.
#[derive(Debug)]
pub struct Region {
    base: NonNull<u8>,
    len: usize,
    shape: Shape,
    wait: Wait,
    /// The producer's pid, read once on attach and checked to be a process id.
    producer: i32,
    /// The first consumer pid seen in the header; 0 until a consumer attaches.
    consumer: Cell<i32>,
    /// The object's descriptor, kept by a consumer to `fstat` its size (None: closed).
    fd: Option<OwnedFd>,
}

// ANCHOR: map
/// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`: maps `len` bytes of the
/// object. MAP_SHARED is what makes it shared: stores go to the object's pages, which
/// every process that maps it sees.
pub fn map_shared(fd: impl AsFd, len: usize) -> nix::Result<NonNull<u8>> {
    let len = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
    // SAFETY: a new mapping at an address the kernel chooses does not alias any Rust
    // object; Region keeps it alive until it unmaps it in Drop.
    let ptr = unsafe {
        mmap(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
            fd,
            0,
        )?
    };
    Ok(ptr.cast())
}
// ANCHOR_END: map

impl Region {
    /// Takes over a fresh mapping of `len` bytes (made with [`map_shared`], zero-filled by
    /// ftruncate) and initialises the header and the semaphores for `shape`. The magic is
    /// written last, so a consumer that sees it sees everything else too.
    ///
    /// # Safety
    /// `base` must be a mapping of at least `shape.region_len()` bytes that nothing else
    /// in this process uses, and no other process may use it before the magic is set.
    pub unsafe fn initialise(
        base: NonNull<u8>,
        shape: Shape,
        wait: Wait,
        count: u64,
    ) -> nix::Result<Region> {
        let producer = nix::unistd::getpid().as_raw();
        let region = Region {
            base,
            len: shape.region_len(),
            shape,
            wait,
            producer,
            consumer: Cell::new(0),
            fd: None,
        };
        region.put_u32(VERSION_OFFSET, VERSION);
        region.put_u32(SLOT_SIZE_OFFSET, shape.slot_size);
        region.put_u32(SLOTS_OFFSET, shape.slots);
        region.put_u32(WAIT_OFFSET, wait as u32);
        region
            .pid(PRODUCER_OFFSET)
            .store(producer, Ordering::SeqCst);
        region.counter(COUNT_OFFSET).store(count, Ordering::SeqCst);
        // SAFETY: the semaphores lie inside the mapping (offsets 192 and 256, 32 bytes
        // each, within HEADER) and are aligned; pshared = 1 makes them usable by every
        // process that maps the region (sem_init(3)).
        unsafe {
            Errno::result(libc::sem_init(region.sem(FULL_OFFSET), 1, 0))?;
            Errno::result(libc::sem_init(region.sem(EMPTY_OFFSET), 1, shape.slots))?;
        }
        // The magic goes last, with a release store: "everything above is ready".
        region
            .counter(MAGIC_OFFSET)
            .store(u64::from_ne_bytes(MAGIC), Ordering::Release);
        Ok(region)
    }

    /// Checks the header of an existing region mapped at `base` (`len` bytes) and takes
    /// over the mapping. On error the mapping is unmapped.
    ///
    /// # Safety
    /// `base` must be a mapping of `len` bytes that nothing else in this process uses.
    pub unsafe fn attach(base: NonNull<u8>, len: usize) -> Result<Region, Corrupt> {
        // Until the header is checked, the fields are only guesses that keep Drop right.
        let mut region = Region {
            base,
            len,
            shape: Shape {
                slots: 0,
                slot_size: 0,
            },
            wait: Wait::Block,
            producer: 0,
            consumer: Cell::new(0),
            fd: None,
        };
        if len < HEADER {
            return Err(Corrupt::TooSmall { len, need: HEADER });
        }
        let magic = region
            .counter(MAGIC_OFFSET)
            .load(Ordering::Acquire)
            .to_ne_bytes();
        if magic == [0; 8] {
            return Err(Corrupt::NotReady);
        }
        if magic != MAGIC {
            return Err(Corrupt::BadMagic(magic));
        }
        let version = region.get_u32(VERSION_OFFSET);
        if version != VERSION {
            return Err(Corrupt::BadVersion(version));
        }
        let shape = Shape {
            slots: region.get_u32(SLOTS_OFFSET),
            slot_size: region.get_u32(SLOT_SIZE_OFFSET),
        };
        if !shape.is_valid() {
            return Err(Corrupt::BadShape(shape));
        }
        if len < shape.region_len() {
            return Err(Corrupt::TooSmall {
                len,
                need: shape.region_len(),
            });
        }
        region.wait = match region.get_u32(WAIT_OFFSET) {
            0 => Wait::Block,
            1 => Wait::Spin,
            other => return Err(Corrupt::BadWait(other)),
        };
        // The producer wrote its pid before the magic; 0 or less is no process, and
        // would make "is the producer alive?" impossible to ask (kill(2) on pid 0 or -1
        // means a process group or every process).
        let producer = region.pid(PRODUCER_OFFSET).load(Ordering::Acquire);
        if producer <= 0 {
            return Err(Corrupt::BadPid(producer));
        }
        region.producer = producer;
        region.shape = shape;
        Ok(region)
    }

    /// Keeps the object's descriptor, so that the size can be asked with `fstat`.
    pub fn keep_descriptor(&mut self, fd: OwnedFd) {
        self.fd = Some(fd);
    }

    /// The object's descriptor, if this side kept it.
    pub fn descriptor(&self) -> Option<&OwnedFd> {
        self.fd.as_ref()
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: a region has at least its header).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ring's shape (checked on attach).
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// How the producer said the two sides wait (read once, on attach).
    pub fn wait(&self) -> Wait {
        self.wait
    }

    /// Messages the producer will send, as it wrote it (untrusted: check it).
    pub fn count(&self) -> u64 {
        self.counter(COUNT_OFFSET).load(Ordering::Acquire)
    }

    /// The producer's pid, as it wrote it before the magic (read once, checked > 0).
    pub fn producer_pid(&self) -> i32 {
        self.producer
    }

    /// The consumer's pid, 0 until one attaches. The first pid above 0 seen in the
    /// header is kept: a later write (a second consumer, or a 0 written back) does not
    /// stop the producer from watching the consumer it has.
    pub fn consumer_pid(&self) -> i32 {
        if self.consumer.get() == 0 {
            let pid = self.pid(CONSUMER_OFFSET).load(Ordering::Acquire);
            if pid > 0 {
                self.consumer.set(pid);
            }
        }
        self.consumer.get()
    }

    /// A consumer writes its pid, so that the producer can tell if it dies.
    pub fn set_consumer_pid(&self, pid: i32) {
        self.pid(CONSUMER_OFFSET).store(pid, Ordering::Release);
    }

    /// Messages published so far. Acquire: the slots they filled are visible after it.
    pub fn head(&self) -> u64 {
        self.counter(HEAD_OFFSET).load(Ordering::Acquire)
    }

    /// Publishes messages up to `head`. Release: the slot written before is visible first.
    pub fn set_head(&self, head: u64) {
        self.counter(HEAD_OFFSET).store(head, Ordering::Release);
    }

    /// Messages taken so far.
    pub fn tail(&self) -> u64 {
        self.counter(TAIL_OFFSET).load(Ordering::Acquire)
    }

    /// Frees slots up to `tail`.
    pub fn set_tail(&self, tail: u64) {
        self.counter(TAIL_OFFSET).store(tail, Ordering::Release);
    }

    /// Checks the producer's `head` against what this consumer has taken (`tail`): it
    /// must be ahead by 1 to `slots`.
    pub fn checked_head(&self, tail: u64) -> Result<u64, Corrupt> {
        let head = self.head();
        let slots = u64::from(self.shape.slots);
        if head <= tail || head - tail > slots {
            return Err(Corrupt::BadIndex {
                what: "head",
                value: head,
                allowed: format!("{} ..= {}", tail + 1, tail + slots),
            });
        }
        Ok(head)
    }

    /// The slot that message `seq` goes in.
    fn slot_offset(&self, seq: u64) -> usize {
        HEADER + (seq % u64::from(self.shape.slots)) as usize * self.shape.slot_size as usize
    }

    /// The most frame bytes one slot holds.
    pub fn slot_capacity(&self) -> usize {
        self.shape.slot_size as usize - SLOT_HEADER
    }

    /// Writes `frame` into the slot of message `seq`. The caller owns the slot (it waited
    /// for `empty`); `frame` must fit (checked: a longer one is refused).
    pub fn write_slot(&self, seq: u64, frame: &[u8]) -> Result<(), Corrupt> {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        if frame.len() > self.slot_capacity() {
            return Err(Corrupt::BadSlotLength { slot: seq, len });
        }
        let at = self.slot_offset(seq);
        // SAFETY: the slot starts at `at` and holds SLOT_HEADER + slot_capacity bytes, all
        // inside the mapping (checked on attach or set on initialise); `frame` is ours, so
        // the regions do not overlap. By the protocol, the consumer does not read this
        // slot until head moves past it; a peer that breaks the protocol can only get
        // wrong bytes, which its checksum catches.
        unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.base.as_ptr().add(at + SLOT_HEADER),
                frame.len(),
            );
        }
        self.put_u32(at, len);
        Ok(())
    }

    /// Copies the frame in the slot of message `seq` into `out`, after checking the
    /// length the slot claims.
    pub fn read_slot(&self, seq: u64, out: &mut Vec<u8>) -> Result<(), Corrupt> {
        let at = self.slot_offset(seq);
        let len = self.get_u32(at);
        if len as usize > self.slot_capacity() {
            return Err(Corrupt::BadSlotLength { slot: seq, len });
        }
        out.resize(len as usize, 0);
        // SAFETY: the length was checked against the slot's capacity just above, so the
        // copy stays inside the slot, inside the mapping; `out` is ours. The bytes are
        // copied once, into private memory, before anything interprets them.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(at + SLOT_HEADER),
                out.as_mut_ptr(),
                len as usize,
            );
        }
        Ok(())
    }

    /// `sem_timedwait` on `full` (a message is there) for at most `timeout`.
    pub fn wait_full(&self, timeout: Duration) -> nix::Result<()> {
        self.sem_timedwait(FULL_OFFSET, timeout)
    }

    /// `sem_timedwait` on `empty` (a slot is free) for at most `timeout`.
    pub fn wait_empty(&self, timeout: Duration) -> nix::Result<()> {
        self.sem_timedwait(EMPTY_OFFSET, timeout)
    }

    /// `sem_trywait` on `full`: takes a message's permit if there is one, without waiting.
    pub fn try_full(&self) -> bool {
        // SAFETY: as in post_full.
        unsafe { libc::sem_trywait(self.sem(FULL_OFFSET)) == 0 }
    }

    /// `sem_trywait` on `empty`: takes a free slot's permit if there is one.
    pub fn try_empty(&self) -> bool {
        // SAFETY: as in post_full.
        unsafe { libc::sem_trywait(self.sem(EMPTY_OFFSET)) == 0 }
    }

    /// `sem_post` on `full`: one more message.
    pub fn post_full(&self) -> nix::Result<()> {
        // SAFETY: the semaphore was initialised by the producer (the magic says so) and
        // lies inside the mapping.
        Errno::result(unsafe { libc::sem_post(self.sem(FULL_OFFSET)) }).map(drop)
    }

    /// `sem_post` on `empty`: one more free slot.
    pub fn post_empty(&self) -> nix::Result<()> {
        // SAFETY: as in post_full.
        Errno::result(unsafe { libc::sem_post(self.sem(EMPTY_OFFSET)) }).map(drop)
    }

    fn sem_timedwait(&self, offset: usize, timeout: Duration) -> nix::Result<()> {
        let deadline = common::timing::realtime_deadline(timeout)?;
        // SAFETY: the semaphore was initialised by the producer and lies inside the
        // mapping; `deadline` is valid for the call.
        Errno::result(unsafe { libc::sem_timedwait(self.sem(offset), &deadline) }).map(drop)
    }

    fn sem(&self, offset: usize) -> *mut libc::sem_t {
        // SAFETY: FULL_OFFSET and EMPTY_OFFSET + size_of::<sem_t>() are within HEADER,
        // which every region has (checked on attach).
        unsafe { self.base.as_ptr().add(offset).cast::<libc::sem_t>() }
    }

    fn counter(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset % 8 == 0 && offset + 8 <= HEADER);
        // SAFETY: `offset` is one of the header's 8-aligned u64 fields, inside the
        // mapping, which page-aligns its base; AtomicU64 has the layout of u64, and every
        // access to these fields (here and in the other process) is atomic. The reference
        // lives no longer than `self`, which keeps the mapping.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().add(offset).cast::<u64>()) }
    }

    fn pid(&self, offset: usize) -> &AtomicI32 {
        // SAFETY: as in `counter`, for the 4-aligned pid fields.
        unsafe { AtomicI32::from_ptr(self.base.as_ptr().add(offset).cast::<i32>()) }
    }

    fn get_u32(&self, offset: usize) -> u32 {
        // SAFETY: every caller passes an offset of a 4-aligned u32 inside the mapping (a
        // header field, or a slot's length, whose slot was bounds-checked). The value may
        // be changed by the other process at any time, so it is read once, atomically.
        unsafe {
            std::sync::atomic::AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast::<u32>())
        }
        .load(Ordering::Acquire)
    }

    fn put_u32(&self, offset: usize, value: u32) {
        // SAFETY: as in get_u32.
        unsafe {
            std::sync::atomic::AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast::<u32>())
        }
        .store(value, Ordering::Release);
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` describe the mapping this Region owns; nothing borrows
        // from it any more once it is dropped.
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}

/// Maps an anonymous shared region of `len` bytes: shared with children forked after
/// this, and with no name anyone else could open (for the `race` lesson).
pub fn map_anonymous(len: usize) -> nix::Result<AnonymousRegion> {
    let size = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
    // SAFETY: as in map_shared; the mapping is zero-filled.
    let ptr = unsafe {
        nix::sys::mman::mmap_anonymous(
            None,
            size,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )?
    };
    Ok(AnonymousRegion {
        base: ptr.cast(),
        len,
    })
}

/// A MAP_SHARED|MAP_ANONYMOUS mapping holding a counter at offset 0 and a semaphore at
/// offset 64, for the `race` lesson.
#[derive(Debug)]
pub struct AnonymousRegion {
    base: NonNull<u8>,
    len: usize,
}

impl AnonymousRegion {
    /// Where the mapping starts in this process.
    pub fn address(&self) -> *const u8 {
        self.base.as_ptr()
    }

    /// The counter, read the way an unsynchronised C program reads an `int`: a plain
    /// (volatile) load, with nothing that orders it against the other process.
    pub fn racy_load(&self) -> u64 {
        // SAFETY: offset 0 is inside the mapping and 8-aligned. The volatile access
        // keeps the compiler from merging loads and stores across iterations, which
        // would hide the race this lesson shows; the race itself is the point.
        unsafe { std::ptr::read_volatile(self.base.as_ptr().cast::<u64>()) }
    }

    /// The matching plain store.
    pub fn racy_store(&self, value: u64) {
        // SAFETY: as in racy_load.
        unsafe { std::ptr::write_volatile(self.base.as_ptr().cast::<u64>(), value) }
    }

    /// The counter as an atomic, for the synchronised runs.
    pub fn atomic(&self) -> &AtomicU64 {
        // SAFETY: offset 0 is inside the mapping and 8-aligned; in the synchronised runs
        // every access to it is atomic.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().cast::<u64>()) }
    }

    /// Initialises the semaphore at offset 64 as a process-shared lock (value 1).
    pub fn init_lock(&self) -> nix::Result<()> {
        // SAFETY: offset 64 plus size_of::<sem_t>() is inside the mapping (it is at least
        // a page); pshared = 1 because children will share it.
        Errno::result(unsafe { libc::sem_init(self.lock(), 1, 1) }).map(drop)
    }

    /// `sem_wait` on the lock.
    pub fn lock_wait(&self) -> nix::Result<()> {
        loop {
            // SAFETY: the semaphore was initialised by init_lock before any fork.
            match Errno::result(unsafe { libc::sem_wait(self.lock()) }) {
                Err(Errno::EINTR) => continue,
                other => return other.map(drop),
            }
        }
    }

    /// `sem_post` on the lock.
    pub fn lock_post(&self) -> nix::Result<()> {
        // SAFETY: as in lock_wait.
        Errno::result(unsafe { libc::sem_post(self.lock()) }).map(drop)
    }

    fn lock(&self) -> *mut libc::sem_t {
        // SAFETY: offset 64 is inside the mapping (at least one page long).
        unsafe { self.base.as_ptr().add(64).cast::<libc::sem_t>() }
    }
}

impl Drop for AnonymousRegion {
    fn drop(&mut self) {
        // SAFETY: base and len describe the mapping this value owns.
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}
