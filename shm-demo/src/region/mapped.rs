//! [`Region`]: the whole region in this process's mapping, and the accessors of its
//! fields (atomics at the header's offsets, slots copied in and out), over a
//! [`Mapping`] that checks every offset.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use common::mapping::{FirstPid, Mapping, inside};
use common::{Narrator, Result, tr};

use super::{
    CONSUMER_CPU_OFFSET, CONSUMER_OFFSET, COUNT_OFFSET, Corrupt, DATA_OFFSET, EMPTY_OFFSET,
    FULL_OFFSET, HEAD_OFFSET, HEADER, MAGIC, MAGIC_OFFSET, PRODUCER_CPU_OFFSET, PRODUCER_OFFSET,
    RING_OFFSET, ROOM_OFFSET, Ring, SLOT_HEADER, SLOT_SIZE_OFFSET, SLOTS_OFFSET, STAMP_OFFSET,
    Shape, TAIL_OFFSET, VERSION, VERSION_OFFSET, WAIT_OFFSET, Wait, parse_header,
};
use crate::sys::{Futex, Sem};

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
    consumer: FirstPid,
    /// The last slot this side asked for: a message number and its slot's offset, so
    /// that the next one is found by an addition, not a division ([`Region::slot_at`]).
    last_slot: Cell<(u64, usize)>,
    /// The producer's private copy of how far the consumer's `tail` was when it last
    /// read it (fast ring): messages below `tail + slots` have a free slot, and the
    /// producer reads the consumer's counter again only when it reaches that bound.
    tail_seen: Cell<u64>,
    /// The CPU this process last wrote into the producer's and the consumer's CPU word
    /// (`u32::MAX`: none yet), so that it writes a word only when its CPU changes.
    cpu_written: Cell<[u32; 2]>,
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
            consumer: FirstPid::default(),
            last_slot: Cell::new((0, HEADER)),
            tail_seen: Cell::new(0),
            cpu_written: Cell::new([u32::MAX; 2]),
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
        region
            .u32(RING_OFFSET)
            .store(shape.ring as u32, Ordering::Relaxed);
        if shape.ring == Ring::Fast {
            // A stamp is the number of the last message its slot held, plus one. A new
            // slot i is as if it had held message i - slots (modulo 2^32, as stamps
            // are): so the consumer's first wait, for stamp i + 1, is like every other.
            // No CPU is known yet.
            let slots = u64::from(shape.slots);
            for slot in 0..slots {
                let held = slot.wrapping_sub(slots);
                region
                    .stamp(slot)
                    .store(held.wrapping_add(1) as u32, Ordering::Relaxed);
            }
            region
                .u32(PRODUCER_CPU_OFFSET)
                .store(u32::MAX, Ordering::Relaxed);
            region
                .u32(CONSUMER_CPU_OFFSET)
                .store(u32::MAX, Ordering::Relaxed);
        }
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
            consumer: FirstPid::default(),
            last_slot: Cell::new((0, HEADER)),
            tail_seen: Cell::new(0),
            cpu_written: Cell::new([u32::MAX; 2]),
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
        self.consumer.seen(self.pid(CONSUMER_OFFSET))
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

    /// The producer's private copy of the consumer's `tail` (fast ring), as last read.
    pub fn tail_seen(&self) -> u64 {
        self.tail_seen.get()
    }

    /// Keeps `tail` as the producer's private copy of the consumer's counter.
    pub fn see_tail(&self, tail: u64) {
        self.tail_seen.set(tail);
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

    /// The stamp of the slot that message `seq` goes in (fast ring): the number of the
    /// last message the slot held, plus one, modulo 2^32, as `fast.rs` describes.
    pub fn stamp(&self, seq: u64) -> &AtomicU32 {
        self.stamp_at(self.slot_offset(seq))
    }

    /// The stamp of the slot at `at` (an offset from [`Region::slot_offset`]).
    pub fn stamp_at(&self, at: usize) -> &AtomicU32 {
        self.u32(at + STAMP_OFFSET)
    }

    /// The futex word the consumer sleeps on (fast ring), set to 1 while it sleeps.
    pub fn data(&self) -> Futex<'_> {
        inside(Futex::at(&self.map, DATA_OFFSET, "data"))
    }

    /// The futex word the producer sleeps on (fast ring), set to 1 while it sleeps.
    pub fn room(&self) -> Futex<'_> {
        inside(Futex::at(&self.map, ROOM_OFFSET, "room"))
    }

    /// Writes the CPU this side (the consumer if `consumer`) runs on into its CPU word,
    /// if it changed since it last did (fast ring). The other side reads it before it
    /// spins: on the same CPU, spinning would only keep this side from running.
    pub fn note_cpu(&self, consumer: bool, here: u32) {
        let mut written = self.cpu_written.get();
        let role = usize::from(consumer);
        if written[role] != here {
            self.cpu(consumer).store(here, Ordering::Relaxed);
            written[role] = here;
            self.cpu_written.set(written);
        }
    }

    /// Where the consumer (`consumer` true) or the producer last ran: a CPU number,
    /// `u32::MAX` if not known (fast ring).
    pub fn cpu(&self, consumer: bool) -> &AtomicU32 {
        self.u32(if consumer {
            CONSUMER_CPU_OFFSET
        } else {
            PRODUCER_CPU_OFFSET
        })
    }

    /// Where the slot of message `seq` starts, as [`Region::slot_offset`] computes it, but
    /// without its division when `seq` is the message after the last one asked for (or
    /// that one again): each side goes through the messages in order, so it keeps its
    /// place in private memory and moves on by one slot. A 64-bit division costs tens of
    /// cycles, more than anything else in a step of the fast ring.
    pub fn slot_at(&self, seq: u64) -> usize {
        let (last, at) = self.last_slot.get();
        let at = if seq == last {
            at
        } else if seq == last.wrapping_add(1) {
            let next = at + self.shape.slot_size as usize;
            if next >= self.shape.region_len() {
                HEADER
            } else {
                next
            }
        } else {
            self.slot_offset(seq)
        };
        self.last_slot.set((seq, at));
        at
    }

    /// Where the slot that message `seq` goes in starts.
    pub fn slot_offset(&self, seq: u64) -> usize {
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
        self.write_slot_at(n, self.slot_offset(seq), seq, frame)
    }

    /// [`Region::write_slot`] into the slot at `at` ([`Region::slot_offset`] of `seq`).
    pub fn write_slot_at(&self, n: &Narrator, at: usize, seq: u64, frame: &[u8]) -> Result<()> {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        if frame.len() > self.slot_capacity() {
            return Err(Corrupt::BadSlotLength { slot: seq, len }.into());
        }
        self.map.copy_in(n, at + SLOT_HEADER, frame)?;
        self.u32(at).store(len, Ordering::Release);
        Ok(())
    }

    /// Copies the frame in the slot of message `seq` into `out` (a narrated `memcpy`),
    /// after reading the length the slot claims, once, and checking it.
    pub fn read_slot(&self, n: &Narrator, seq: u64, out: &mut Vec<u8>) -> Result<()> {
        self.read_slot_at(n, self.slot_offset(seq), seq, out)
    }

    /// [`Region::read_slot`] from the slot at `at` ([`Region::slot_offset`] of `seq`).
    pub fn read_slot_at(&self, n: &Narrator, at: usize, seq: u64, out: &mut Vec<u8>) -> Result<()> {
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
