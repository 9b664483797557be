//! The shared region: its layout, and a safe view of it.
//!
//! Every byte of the region can be written by the other process, which may be buggy,
//! killed half-way, or hostile. So nothing here is a plain value in the region: the
//! counters are atomics, the slots are copied out (and their lengths checked) before
//! anyone looks at them, and the header is copied out once and checked
//! ([`parse_header`]) before the region is used. What the checks passed is kept in
//! [`Region`] (the shape, the way of waiting, the producer's pid, the count), and only
//! that copy is used afterwards, since the other process could change a field between a
//! check and a second read.
//!
//! There is no `unsafe` here: the region lives in a [`Mapping`], which checks every
//! offset (common/src/mapping.rs), and the two semaphores are handed to the calls of
//! [`crate::sys`] as places the mapping checked.
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
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use common::mapping::{Mapping, inside};
use common::{Error, Narrator, Result, tr};

use crate::sys::Sem;

/// The bytes at offset 0 of a ready region.
pub const MAGIC: [u8; 8] = *b"IPCDSHM1";
/// The layout version this code reads and writes.
pub const VERSION: u32 = 1;
/// Bytes before the first slot.
pub const HEADER: usize = 512;
/// Bytes at the start of each slot before the frame: its length, then padding.
pub const SLOT_HEADER: usize = 8;
/// Offset of `magic`.
pub const MAGIC_OFFSET: usize = 0;
/// Offset of `version` (a `u32`).
pub const VERSION_OFFSET: usize = 8;
/// Offset of `slot_size` (a `u32`).
pub const SLOT_SIZE_OFFSET: usize = 12;
/// Offset of `slots` (a `u32`).
pub const SLOTS_OFFSET: usize = 16;
/// Offset of `wait` (a `u32`: 0 block, 1 spin).
pub const WAIT_OFFSET: usize = 20;
/// Offset of the producer's pid (an `i32`).
pub const PRODUCER_OFFSET: usize = 24;
/// Offset of the consumer's pid (an `i32`, 0 until a consumer attaches).
pub const CONSUMER_OFFSET: usize = 28;
/// Offset of `count` (a `u64`).
pub const COUNT_OFFSET: usize = 32;
/// Offset of `head` (a `u64`), on a cache line of its own.
pub const HEAD_OFFSET: usize = 64;
/// Offset of `tail` (a `u64`), on a cache line of its own.
pub const TAIL_OFFSET: usize = 128;
/// Offset of the semaphore `full` (a `sem_t`).
pub const FULL_OFFSET: usize = 192;
/// Offset of the semaphore `empty` (a `sem_t`).
pub const EMPTY_OFFSET: usize = 256;
/// Bytes the header gives each semaphore (a glibc `sem_t` is 32 bytes on Linux).
pub const SEM_SIZE: usize = 32;
/// The most slots a ring may have.
pub const MAX_SLOTS: u32 = 4096;
/// The largest payload a message may carry: 64 MiB.
pub const MAX_PAYLOAD: usize = 64 << 20;
/// The largest slot: the largest payload, its frame's header and trailer, and the slot's
/// own header, rounded up.
pub const MAX_SLOT_SIZE: u32 = (MAX_PAYLOAD + 64) as u32;
/// The largest region.
pub const MAX_REGION: usize = 1 << 30;

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
        let text = match self {
            Corrupt::TooSmall { len, need } => {
                tr!(
                    "the object is {len} bytes, its header needs {need}",
                    len,
                    need
                )
            }
            Corrupt::NotReady => tr!("the producer has not finished setting it up"),
            Corrupt::BadMagic(m) => tr!(
                "it starts with {bytes}, not the magic \"IPCDSHM1\"",
                bytes = format!("{m:02x?}")
            ),
            Corrupt::BadVersion(v) => {
                tr!("layout version {v}, not {version}", v, version = VERSION)
            }
            Corrupt::BadShape(s) => tr!(
                "{slots} slots of {size} bytes is out of range",
                slots = s.slots,
                size = s.slot_size
            ),
            Corrupt::BadIndex {
                what,
                value,
                allowed,
            } => tr!(
                "ring index {what} = {value}, not in {allowed}",
                what,
                value,
                allowed
            ),
            Corrupt::BadSlotLength { slot, len } => tr!(
                "slot {slot} claims {len} bytes, more than the slot holds",
                slot,
                len
            ),
            Corrupt::BadWait(w) => tr!("way of waiting {w}, not 0 (block) or 1 (spin)", w),
            Corrupt::BadPid(pid) => tr!(
                "producer pid {pid} is no process, so nobody could tell if the producer dies",
                pid
            ),
        };
        f.write_str(&text)
    }
}

/// The ring went bad during the run: something the other process wrote.
impl From<Corrupt> for Error {
    fn from(why: Corrupt) -> Error {
        Error::bad_data(tr!("the shared ring"), why.to_string()).hint(tr!(
            "the other process wrote something a ring cannot hold: a bug, or not a shm-demo peer"
        ))
    }
}

/// What a region's header says, every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The ring's shape.
    pub shape: Shape,
    /// How the two sides wait.
    pub wait: Wait,
    /// The producer's pid (> 0).
    pub producer: i32,
    /// The consumer's pid, 0 until one attaches.
    pub consumer: i32,
    /// Messages the producer will send (untrusted beyond this: a consumer checks it
    /// against what it can count).
    pub count: u64,
    /// Messages published.
    pub head: u64,
    /// Messages taken.
    pub tail: u64,
}

/// `N` bytes of the copy `h` at `at`, or zeros where `h` is too short (never, once
/// [`parse_header`] has checked its length).
fn bytes_at<const N: usize>(h: &[u8], at: usize) -> [u8; N] {
    let mut word = [0u8; N];
    if let Some(bytes) = h.get(at..at + N) {
        word.copy_from_slice(bytes);
    }
    word
}

// ANCHOR: parse_header
/// Checks a copy of a region's header: `h` holds the first [`HEADER`] bytes (or more) of
/// an object of `len` bytes, copied out once, so that every field checked is the field
/// used. The checks a consumer makes before it uses a ring, and that `ipc-watch` makes
/// before it draws one: the magic (all zero: not ready yet), the version, the shape and
/// that the object holds it, the way of waiting, and a producer pid that is a process.
pub fn parse_header(h: &[u8], len: usize) -> Result<Header, Corrupt> {
    if len < HEADER || h.len() < HEADER {
        return Err(Corrupt::TooSmall {
            len: len.min(h.len()),
            need: HEADER,
        });
    }
    let magic: [u8; 8] = bytes_at(h, MAGIC_OFFSET);
    if magic == [0; 8] {
        return Err(Corrupt::NotReady);
    }
    if magic != MAGIC {
        return Err(Corrupt::BadMagic(magic));
    }
    let u32_at = |at| u32::from_ne_bytes(bytes_at(h, at));
    let version = u32_at(VERSION_OFFSET);
    if version != VERSION {
        return Err(Corrupt::BadVersion(version));
    }
    let shape = Shape {
        slots: u32_at(SLOTS_OFFSET),
        slot_size: u32_at(SLOT_SIZE_OFFSET),
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
    let wait = match u32_at(WAIT_OFFSET) {
        0 => Wait::Block,
        1 => Wait::Spin,
        other => return Err(Corrupt::BadWait(other)),
    };
    // 0 or less is no process, and would make "is the producer alive?" impossible to
    // ask (kill(2) on pid 0 or -1 means a process group or every process).
    let producer = i32::from_ne_bytes(bytes_at(h, PRODUCER_OFFSET));
    if producer <= 0 {
        return Err(Corrupt::BadPid(producer));
    }
    Ok(Header {
        shape,
        wait,
        producer,
        consumer: i32::from_ne_bytes(bytes_at(h, CONSUMER_OFFSET)),
        count: u64::from_ne_bytes(bytes_at(h, COUNT_OFFSET)),
        head: u64::from_ne_bytes(bytes_at(h, HEAD_OFFSET)),
        tail: u64::from_ne_bytes(bytes_at(h, TAIL_OFFSET)),
    })
}
// ANCHOR_END: parse_header

/// The whole region, mapped, with the header fields that were checked when it was made
/// or attached. Unmapped when dropped (or by [`Region::munmap`]).
#[derive(Debug)]
pub struct Region {
    map: Mapping,
    shape: Shape,
    wait: Wait,
    /// The producer's pid, read once on attach and checked to be a process id.
    producer: i32,
    /// Messages the producer said it will send, read once (checked by the consumer).
    count: u64,
    /// The first consumer pid seen in the header; 0 until a consumer attaches.
    consumer: Cell<i32>,
}

impl Region {
    /// Takes over the producer's fresh mapping (zero-filled by ftruncate, at least
    /// `shape.region_len()` bytes) and writes the header for `shape`, all but the magic:
    /// the semaphores are set up next ([`crate::sys::sem_init`]), and [`Region::publish`]
    /// writes the magic last.
    pub fn initialise(map: Mapping, shape: Shape, wait: Wait, count: u64) -> Result<Region> {
        if map.len() < shape.region_len() {
            return Err(Corrupt::TooSmall {
                len: map.len(),
                need: shape.region_len(),
            }
            .into());
        }
        let region = Region {
            map,
            shape,
            wait,
            producer: nix::unistd::getpid().as_raw(),
            count,
            consumer: Cell::new(0),
        };
        region.u32(VERSION_OFFSET).store(VERSION, Ordering::Relaxed);
        region
            .u32(SLOT_SIZE_OFFSET)
            .store(shape.slot_size, Ordering::Relaxed);
        region
            .u32(SLOTS_OFFSET)
            .store(shape.slots, Ordering::Relaxed);
        region
            .u32(WAIT_OFFSET)
            .store(wait as u32, Ordering::Relaxed);
        region
            .pid(PRODUCER_OFFSET)
            .store(region.producer, Ordering::Relaxed);
        region.u64(COUNT_OFFSET).store(count, Ordering::Relaxed);
        Ok(region)
    }

    /// Writes the magic, last, with a release store: a consumer that loads it with
    /// acquire sees everything written before it, the header and the semaphores.
    pub fn publish(&self) {
        self.u64(MAGIC_OFFSET)
            .store(u64::from_ne_bytes(MAGIC), Ordering::Release);
    }

    /// Checks the header of an existing region (see [`parse_header`]) and takes over
    /// the mapping. On error the mapping is unmapped.
    pub fn attach(map: Mapping) -> Result<Region, Corrupt> {
        if map.len() < HEADER {
            return Err(Corrupt::TooSmall {
                len: map.len(),
                need: HEADER,
            });
        }
        // Acquire: what the producer wrote before the magic is visible after it.
        if map
            .u64_at(MAGIC_OFFSET)
            .map_or(0, |magic| magic.load(Ordering::Acquire))
            == 0
        {
            return Err(Corrupt::NotReady);
        }
        // One copy of the header, which is then checked and used: never a second read.
        let mut h = vec![0u8; HEADER];
        map.read(0, &mut h).map_err(|_| Corrupt::TooSmall {
            len: map.len(),
            need: HEADER,
        })?;
        let header = parse_header(&h, map.len())?;
        Ok(Region {
            map,
            shape: header.shape,
            wait: header.wait,
            producer: header.producer,
            count: header.count,
            consumer: Cell::new(0),
        })
    }

    /// The mapping under the region.
    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// Keeps the object's descriptor, so that its size can be asked with `fstat`.
    pub fn keep_descriptor(&mut self, fd: std::os::fd::OwnedFd) {
        self.map.keep_descriptor(fd);
    }

    /// `fstat` on the kept descriptor: an error if a peer shrank the object.
    pub fn check_size(&self) -> Result<()> {
        self.map.check_size(&tr!("the shared memory object"))
    }

    /// `munmap` of the region, narrated.
    pub fn munmap(self, n: &Narrator) -> Result<()> {
        self.map.munmap(n)
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the mapping is empty (never: a region has at least its header).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The ring's shape (checked on attach).
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// How the producer said the two sides wait (read once, on attach).
    pub fn wait(&self) -> Wait {
        self.wait
    }

    /// Messages the producer said it will send (read once; untrusted: check it).
    pub fn count(&self) -> u64 {
        self.count
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
        self.u64(HEAD_OFFSET).load(Ordering::Acquire)
    }

    /// Publishes messages up to `head`. Release: the slot written before is visible first.
    pub fn set_head(&self, head: u64) {
        self.u64(HEAD_OFFSET).store(head, Ordering::Release);
    }

    /// Messages taken so far.
    pub fn tail(&self) -> u64 {
        self.u64(TAIL_OFFSET).load(Ordering::Acquire)
    }

    /// Frees slots up to `tail`.
    pub fn set_tail(&self, tail: u64) {
        self.u64(TAIL_OFFSET).store(tail, Ordering::Release);
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

    /// The semaphore `full`: slots holding a message.
    pub fn full(&self) -> Sem<'_> {
        inside(Sem::at(&self.map, FULL_OFFSET, "full"))
    }

    /// The semaphore `empty`: slots free.
    pub fn empty(&self) -> Sem<'_> {
        inside(Sem::at(&self.map, EMPTY_OFFSET, "empty"))
    }

    /// The slot that message `seq` goes in.
    fn slot_offset(&self, seq: u64) -> usize {
        HEADER + (seq % u64::from(self.shape.slots)) as usize * self.shape.slot_size as usize
    }

    /// The most frame bytes one slot holds.
    pub fn slot_capacity(&self) -> usize {
        self.shape.slot_size as usize - SLOT_HEADER
    }

    /// Copies `frame` into the slot of message `seq` (a narrated `memcpy`), then sets the
    /// slot's length. The caller owns the slot (it waited for it); a frame longer than a
    /// slot is refused.
    pub fn write_slot(&self, n: &Narrator, seq: u64, frame: &[u8]) -> Result<()> {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        if frame.len() > self.slot_capacity() {
            return Err(Corrupt::BadSlotLength { slot: seq, len }.into());
        }
        let at = self.slot_offset(seq);
        self.map.copy_in(n, at + SLOT_HEADER, frame)?;
        self.u32(at).store(len, Ordering::Release);
        Ok(())
    }

    /// Copies the frame in the slot of message `seq` into `out` (a narrated `memcpy`),
    /// after reading the length the slot claims, once, and checking it.
    pub fn read_slot(&self, n: &Narrator, seq: u64, out: &mut Vec<u8>) -> Result<()> {
        let at = self.slot_offset(seq);
        let len = self.u32(at).load(Ordering::Acquire);
        if len as usize > self.slot_capacity() {
            return Err(Corrupt::BadSlotLength { slot: seq, len }.into());
        }
        out.resize(len as usize, 0);
        self.map.copy_out(n, at + SLOT_HEADER, out)
    }

    fn u64(&self, at: usize) -> &AtomicU64 {
        inside(self.map.u64_at(at))
    }

    fn u32(&self, at: usize) -> &AtomicU32 {
        // A slot's length too: slot_offset stays inside the ring, which the shape fits.
        inside(self.map.u32_at(at))
    }

    fn pid(&self, at: usize) -> &AtomicI32 {
        inside(self.map.i32_at(at))
    }
}
