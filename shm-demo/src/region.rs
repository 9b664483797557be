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
//! 40      4          ring                      0 = textbook, 1 = fast
//! 64      8          head                      messages published (producer writes)
//! 128     8          tail                      messages taken (consumer writes)
//! 192     32         full                      sem_t: slots holding a message
//! 256     32         empty                     sem_t: slots free
//! 320     4          data                      fast ring: 1 while the consumer sleeps
//! 324     4          consumer's CPU            fast ring: where the consumer last ran
//! 384     4          room                      fast ring: 1 while the producer sleeps
//! 388     4          producer's CPU            fast ring: where the producer last ran
//! 512     slots × slot_size                    the ring; each slot: u32 length, then
//!                                              u32 padding (textbook) or stamp (fast),
//!                                              then the frame
//! ```
//!
//! The textbook ring (`--ring textbook`) is the bounded buffer of the notes: `head` and
//! `tail` say which slots hold messages, and the semaphores `full` and `empty` count
//! them (or the sides spin on `head` and `tail`). The fast ring (`--ring fast`, see
//! `fast.rs`) keeps the same header and slots, and differs where speed is: each slot
//! carries its own stamp (the sequence number of the message it holds or waits for),
//! so a side waits on the slot itself; each side keeps its position in private memory;
//! slots are padded to whole cache lines; and a side that must wait spins briefly, then
//! sleeps on a futex word (`data`, `room`) that the other side wakes only if it is set.

use common::mapping::bytes_at;
use common::{Error, Result, tr};

mod mapped;

pub use mapped::Region;

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
/// Offset of `ring` (a `u32`: 0 textbook, 1 fast).
pub const RING_OFFSET: usize = 40;
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
/// Offset of the fast ring's futex word `data` (a `u32`): 1 while the consumer sleeps
/// waiting for a message. A cache line of its own, shared only with the next field.
pub const DATA_OFFSET: usize = 320;
/// Offset of the CPU the consumer last ran on (a `u32`, `u32::MAX`: not known yet).
pub const CONSUMER_CPU_OFFSET: usize = 324;
/// Offset of the fast ring's futex word `room` (a `u32`): 1 while the producer sleeps
/// waiting for a free slot.
pub const ROOM_OFFSET: usize = 384;
/// Offset of the CPU the producer last ran on (a `u32`, `u32::MAX`: not known yet).
pub const PRODUCER_CPU_OFFSET: usize = 388;
/// Offset of the fast ring's stamp within a slot (a `u32`), after the length.
pub const STAMP_OFFSET: usize = 4;
/// The size of a cache line on the machines this runs on (x86-64, and most arm64): the
/// unit in which CPUs move memory between them, and the fast ring pads slots to.
pub const CACHE_LINE: usize = 64;
/// The most slots a ring may have.
pub const MAX_SLOTS: u32 = 4096;
/// The largest payload a message may carry: 64 MiB.
pub const MAX_PAYLOAD: usize = 64 << 20;
/// The largest slot: the largest payload, its frame's header and trailer, and the slot's
/// own header, rounded up.
pub const MAX_SLOT_SIZE: u32 = (MAX_PAYLOAD + 64) as u32;
/// The largest region.
pub const MAX_REGION: usize = 1 << 30;

/// Which ring the region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ring {
    /// The bounded buffer of the notes: head and tail, and two semaphores (or spinning
    /// on head and tail).
    Textbook,
    /// A stamp in each slot, slots padded to cache lines, and a wait that spins briefly
    /// before it sleeps on a futex.
    Fast,
}

/// How the two sides wait for each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Wait {
    /// Sleep in the kernel: process-shared semaphores in the region (sem_wait, sem_post).
    Block,
    /// Keep a CPU busy re-reading the counters until they change.
    Spin,
}

/// The shape of a ring: how many slots, how large each, and which ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Slots in the ring.
    pub slots: u32,
    /// Bytes per slot, including the 8-byte slot header.
    pub slot_size: u32,
    /// The textbook ring or the fast one.
    pub ring: Ring,
}

impl Shape {
    /// The textbook ring for frames of up to `frame_len` bytes in `slots` slots.
    pub fn for_frames(slots: u32, frame_len: usize) -> Option<Shape> {
        Shape::new(Ring::Textbook, slots, frame_len)
    }

    /// The `ring` for frames of up to `frame_len` bytes in `slots` slots: slots of the
    /// textbook ring are rounded up to 8 bytes, those of the fast ring to whole cache
    /// lines, so that no two slots share one.
    pub fn new(ring: Ring, slots: u32, frame_len: usize) -> Option<Shape> {
        let unit = match ring {
            Ring::Textbook => 8,
            Ring::Fast => CACHE_LINE,
        };
        let slot_size = u32::try_from((SLOT_HEADER + frame_len).div_ceil(unit) * unit).ok()?;
        let shape = Shape {
            slots,
            slot_size,
            ring,
        };
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
            && (self.ring == Ring::Textbook || self.slot_size as usize % CACHE_LINE == 0)
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
    /// A fast ring's slot whose stamp still says "not in" while `head` says the message
    /// was put, at two looks 200 ms apart: the stamp or `head` was written by something
    /// other than the producer.
    StaleStamp {
        /// The message waited for.
        seq: u64,
        /// What `head` says.
        head: u64,
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
    /// A ring other than 0 (textbook) and 1 (fast).
    BadRing(u32),
    /// A fast ring's slot stamp that is neither what the waiting side expects nor what
    /// the other side leaves while it is not done yet.
    BadStamp {
        /// The slot's message number (the one the waiting side wants).
        seq: u64,
        /// The stamp found.
        stamp: u32,
    },
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
            Corrupt::BadRing(r) => tr!("ring {r}, not 0 (textbook) or 1 (fast)", r),
            Corrupt::StaleStamp { seq, head } => tr!(
                "head = {head} says message {seq} was put, but its slot's stamp still says it was not, 200 ms later: the stamp or head was written by another program",
                head,
                seq
            ),
            Corrupt::BadStamp { seq, stamp } => tr!(
                "the slot of message {seq} has the stamp {stamp}, which no step of the fast ring writes there",
                seq,
                stamp
            ),
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

// ANCHOR: parse_header
/// Checks a copy of a region's header: `h` holds the first [`HEADER`] bytes (or more) of
/// an object of `len` bytes, copied out once, so that every field checked is the field
/// used. The checks a consumer makes before it uses a ring, and that `ipc-watch` makes
/// before it draws one: the magic (all zero: not ready yet), the version, the ring, the
/// shape and that the object holds it, the way of waiting, and a producer pid that is a
/// process.
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
    let ring = match u32_at(RING_OFFSET) {
        0 => Ring::Textbook,
        1 => Ring::Fast,
        other => return Err(Corrupt::BadRing(other)),
    };
    let shape = Shape {
        slots: u32_at(SLOTS_OFFSET),
        slot_size: u32_at(SLOT_SIZE_OFFSET),
        ring,
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
