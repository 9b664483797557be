//! The reference rows: each figure of the table, without the demos' code around it.
//!
//! A mechanism's figure mixes two things: what the mechanism itself costs (a cache line
//! crossing between CPUs, a system call and a copy through the kernel) and what the
//! demo's code adds (a ring's indices and slot headers, the frame's length read first,
//! the checksum). The floors (`measure::floors`) say what the hardware allows at the
//! least, but they move no payload. These rows move the same bytes as the mechanisms,
//! with as little code as a C programmer would write, measured the same way in the same
//! run (issue 19):
//!
//! - `ref-flag`: shared memory at its plainest. One word is both the flag and the length
//!   (0: empty; n + 1: n bytes are there), the bytes start right after it, in the same
//!   cache line, and each side spins on the word. No ring, no indices, no checksum: what `shm-spin`
//!   is compared to.
//! - `ref-pipe`: a pipe moving the same bytes with bare `read(2)`/`write(2)`, as
//!   `dd bs=64k | dd bs=64k` does: one `write` per message, `read`s until the message's
//!   bytes are in, no header read first, no checksum. What `pipe` and `fifo` are
//!   compared to.
//! - `frame-check`: no IPC at all. The demos' own work per message, alone: checking a
//!   frame's header and CRC-32, as every receiver of the bench does (two per round trip,
//!   one per streamed message). Encoding one, which the demos' producers do per message
//!   and the bench once before the clock starts, is timed beside it.
//!
//! What this module is not: a second implementation of a demo. The mechanisms' rows
//! still run the demos' own code (`mechanisms.rs`); these rows exist so that a reader
//! sees which part of each of those figures is the mechanism.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Error, Result, message};
use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, munmap};
use nix::unistd::{self, Pid};

use crate::measure::{Amount, Latency};
use crate::mechanisms::{Floor, Link, Setup, Spec};

/// The name of the shared-memory reference row.
pub const FLAG: &str = "ref-flag";
/// The name of the bare-pipe reference row.
pub const PIPE: &str = "ref-pipe";
/// The name of the demos' own work, measured without IPC.
pub const WORK: &str = "frame-check";

/// The reference rows, in the order the report prints them.
pub const REFERENCES: &[Spec] = &[
    Spec {
        name: FLAG,
        model: "reference",
        unit: "flag + bytes",
        direction: "two-way",
        scope: "same machine",
        floor: Floor::CacheLine,
        spins: true,
        spins_first: false,
        carries_data: true,
    },
    Spec {
        name: PIPE,
        model: "reference",
        unit: "bytes",
        direction: "one-way",
        scope: "same machine",
        floor: Floor::Futex,
        spins: false,
        spins_first: false,
        carries_data: true,
    },
    Spec {
        name: WORK,
        model: "reference",
        unit: "frame",
        direction: "-",
        scope: "no IPC",
        floor: Floor::Futex,
        spins: false,
        spins_first: false,
        carries_data: true,
    },
];

/// Whether `spec` is one of the reference rows.
pub fn is_reference(spec: &Spec) -> bool {
    REFERENCES.iter().any(|r| r.name == spec.name)
}

/// Makes what a two-process reference row needs before the fork, for frames of
/// `frame_len` bytes. Nothing has a name: nothing can be left behind.
pub fn setup(spec: &Spec, frame_len: usize) -> Result<Box<dyn Setup>> {
    match spec.name {
        FLAG => Ok(Box::new(FlagPage::new(frame_len)?)),
        PIPE => {
            let pipe = || unistd::pipe().map_err(|e| Error::sys("pipe()", e));
            Ok(Box::new(BarePipes {
                down: pipe()?,
                up: pipe()?,
                len: frame_len,
            }))
        }
        other => Err(Error::usage(format!("{other} is not a two-process row"))),
    }
}

/// How long a spinning side waits for a peer that does not answer before it gives up:
/// the peer died or was stopped (a bench run takes no pause this long on purpose).
const PEER_TIME_OUT: Duration = Duration::from_secs(10);

/// Bytes before the payload in each direction's channel: the flag word, then padding to
/// 8 bytes so that the payload starts aligned, in the same cache line as the flag.
const FLAG_HEADER: usize = 8;

/// A MAP_SHARED|MAP_ANONYMOUS mapping made before the fork: both processes see the same
/// pages, and no name exists that anyone could open or would have to remove.
struct Shared {
    base: NonNull<u8>,
    len: usize,
}

impl Shared {
    fn new(len: usize) -> Result<Shared> {
        let size = NonZeroUsize::new(len).ok_or_else(|| Error::bad_data("mmap", "length 0"))?;
        // SAFETY: a new anonymous mapping at an address the kernel chooses aliases no
        // Rust object; `Shared` unmaps it in Drop, and nothing borrows from it longer.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(|e| Error::sys(format!("mmap(NULL, {len}, MAP_SHARED|MAP_ANONYMOUS)"), e))?;
        Ok(Shared {
            base: ptr.cast(),
            len,
        })
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` describe the mapping this value owns; the channels
        // that point into it belong to the same link and are dropped with it.
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}

/// One direction of the flag page: the word at `at`, then room for `capacity` bytes.
#[derive(Clone, Copy)]
struct Channel {
    at: usize,
    capacity: usize,
}

/// Two channels in one anonymous shared mapping, one each way, a page apart so that the
/// two directions never share a cache line.
struct FlagPage {
    shared: Shared,
    down: Channel,
    up: Channel,
}

impl FlagPage {
    fn new(frame_len: usize) -> Result<FlagPage> {
        let stride = (FLAG_HEADER + frame_len).div_ceil(4096) * 4096;
        let capacity = stride - FLAG_HEADER;
        // A frame longer than u32 allows could not be announced in the flag word.
        if u32::try_from(capacity).is_err() {
            return Err(Error::usage(format!("a frame of {frame_len} bytes")));
        }
        Ok(FlagPage {
            shared: Shared::new(2 * stride)?,
            down: Channel { at: 0, capacity },
            up: Channel {
                at: stride,
                capacity,
            },
        })
    }
}

/// One side of the flag page: sends on `tx`, receives on `rx`.
struct FlagLink {
    shared: Shared,
    tx: Channel,
    rx: Channel,
}

impl FlagLink {
    fn word(&self, channel: Channel) -> &AtomicU32 {
        // SAFETY: `channel.at` is 0 or a multiple of the page size, inside the mapping
        // this link owns (page-aligned, so the word is aligned); both processes access
        // the word only atomically. The reference lives no longer than `self`.
        unsafe { AtomicU32::from_ptr(self.shared.base.as_ptr().add(channel.at).cast::<u32>()) }
    }

    /// Spins until `word` satisfies `ready`, and returns the value that did. Gives up
    /// with an error after [`PEER_TIME_OUT`] (looking at the clock every 64 Ki spins).
    fn spin(word: &AtomicU32, ready: impl Fn(u32) -> bool) -> Result<u32> {
        let mut since: Option<Instant> = None;
        let mut spins = 0u32;
        loop {
            let value = word.load(Ordering::Acquire);
            if ready(value) {
                return Ok(value);
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % (1 << 16) == 0 {
                let start = *since.get_or_insert_with(Instant::now);
                if start.elapsed() > PEER_TIME_OUT {
                    return Err(Error::bad_data(
                        "wait for the flag",
                        "the other process has not answered for 10 s",
                    ));
                }
            }
        }
    }
}

impl Link for FlagLink {
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        let tx = self.tx;
        if frame.len() > tx.capacity {
            return Err(Error::bad_data(
                "send on the flag page",
                format!("{} bytes, more than {}", frame.len(), tx.capacity),
            ));
        }
        // Wait for the receiver to have emptied the channel (0), then copy, then publish.
        Self::spin(self.word(tx), |v| v == 0)?;
        // SAFETY: the channel's payload area starts FLAG_HEADER bytes after its word and
        // holds `capacity` bytes inside the mapping; `frame` fits (checked above) and is
        // private memory, so the two do not overlap. By the protocol the receiver does
        // not read the area while the word is 0.
        unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.shared.base.as_ptr().add(tx.at + FLAG_HEADER),
                frame.len(),
            );
        }
        // The length fits in u32 (checked when the page was made); + 1 makes it non-zero.
        // Release: the bytes copied above are visible to whoever sees this value.
        self.word(tx)
            .store(frame.len() as u32 + 1, Ordering::Release);
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        let rx = self.rx;
        // Read the word once; the length is the other process's word: check it.
        let len = Self::spin(self.word(rx), |v| v != 0)? as usize - 1;
        if len > rx.capacity {
            return Err(Error::bad_data(
                "receive on the flag page",
                format!("the flag announces {len} bytes, more than {}", rx.capacity),
            ));
        }
        buf.resize(len, 0);
        // SAFETY: `len` was checked against the channel's capacity, so the copy stays in
        // the payload area, inside the mapping; `buf` is private and `len` bytes long.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.shared.base.as_ptr().add(rx.at + FLAG_HEADER),
                buf.as_mut_ptr(),
                len,
            );
        }
        self.word(rx).store(0, Ordering::Release);
        Ok(())
    }
}

impl Setup for FlagPage {
    fn parent(self: Box<Self>) -> Result<Box<dyn Link>> {
        let FlagPage { shared, down, up } = *self;
        Ok(Box::new(FlagLink {
            shared,
            tx: down,
            rx: up,
        }))
    }

    fn child(self: Box<Self>, _: Pid) -> Result<Box<dyn Link>> {
        let FlagPage { shared, down, up } = *self;
        Ok(Box::new(FlagLink {
            shared,
            tx: up,
            rx: down,
        }))
    }
}

/// Two pipes, one each way, and the length of every message (both sides know it: there
/// is no header to read it from).
struct BarePipes {
    down: (OwnedFd, OwnedFd),
    up: (OwnedFd, OwnedFd),
    len: usize,
}

/// One side of the bare pipes.
struct BarePipeLink {
    tx: OwnedFd,
    rx: OwnedFd,
    len: usize,
}

impl Link for BarePipeLink {
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        let mut done = 0;
        while done < frame.len() {
            match unistd::write(self.tx.as_fd(), &frame[done..]) {
                Ok(wrote) => done += wrote,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("write(pipe)", e)),
            }
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(self.len, 0);
        let mut have = 0;
        while have < self.len {
            match unistd::read(self.rx.as_fd(), &mut buf[have..]) {
                Ok(0) => {
                    return Err(Error::bad_data(
                        "read(pipe)",
                        "end of file in the middle of a message",
                    ));
                }
                Ok(got) => have += got,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("read(pipe)", e)),
            }
        }
        Ok(())
    }
}

impl Setup for BarePipes {
    fn parent(self: Box<Self>) -> Result<Box<dyn Link>> {
        // The ends this side does not use are closed here (dropped), so that a peer that
        // dies is seen as end of file.
        let BarePipes { down, up, len } = *self;
        Ok(Box::new(BarePipeLink {
            tx: down.1,
            rx: up.0,
            len,
        }))
    }

    fn child(self: Box<Self>, _: Pid) -> Result<Box<dyn Link>> {
        let BarePipes { down, up, len } = *self;
        Ok(Box::new(BarePipeLink {
            tx: up.1,
            rx: down.0,
            len,
        }))
    }
}

/// Checks `frame` as every receiver of the bench does (header, length, CRC-32), and
/// says whether it was intact. `black_box` keeps the compiler from skipping the work.
fn check(frame: &[u8], size: usize) -> bool {
    matches!(message::decode(std::hint::black_box(frame), size), Ok(f) if f.intact)
}

/// Times `rounds` calls of `work` in batches (so that a batch takes a couple of
/// microseconds at least) and returns the percentiles of ns per call, as the latency of
/// a mechanism is reported.
fn timed(rounds: u64, mut work: impl FnMut() -> Result<()>) -> Result<Latency> {
    for _ in 0..rounds.min(100) {
        work()?;
    }
    let start = Instant::now();
    for _ in 0..100 {
        work()?;
    }
    let each = start.elapsed().as_nanos() as f64 / 100.0;
    let batch = if each < 1000.0 {
        (2000.0 / each.max(1.0)).ceil() as u32
    } else {
        1
    };
    let mut samples: Vec<f64> = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..batch {
            work()?;
        }
        samples.push((start.elapsed().as_nanos() as f64 / f64::from(batch)).max(1.0));
    }
    samples.sort_by(f64::total_cmp);
    let q = |quantile: f64| {
        let at = ((samples.len() as f64 * quantile).ceil() as usize).clamp(1, samples.len());
        samples[at - 1]
    };
    Ok(Latency {
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max: q(1.0),
        batch,
    })
}

/// A frame of `size` payload bytes, as the bench sends it.
fn frame(size: usize) -> Vec<u8> {
    let mut frame = Vec::new();
    message::encode_into(0, size, &mut frame);
    frame
}

/// The demos' own work in one round trip of `size` bytes: two frame checks, one in each
/// process (the echo's and the parent's), in ns.
pub fn work_latency(size: usize, amount: Amount) -> Result<Latency> {
    let frame = frame(size);
    timed(amount.count, || {
        if check(&frame, size) && check(&frame, size) {
            Ok(())
        } else {
            Err(Error::bad_data(
                "check a frame",
                "its checksum does not match",
            ))
        }
    })
}

/// The demos' own work while streaming `size` bytes: how many payload bytes per second
/// one receiver can check, if checking were all it did.
pub fn work_throughput(size: usize, amount: Amount) -> Result<f64> {
    let frame = frame(size);
    for _ in 0..amount.warmup {
        check(&frame, size);
    }
    let start = Instant::now();
    let mut intact = 0u64;
    for _ in 0..amount.count {
        intact += u64::from(check(&frame, size));
    }
    let seconds = start.elapsed().as_secs_f64();
    if intact != amount.count {
        return Err(Error::bad_data(
            "check a frame",
            "its checksum does not match",
        ));
    }
    Ok(amount.count as f64 * size as f64 / seconds.max(1e-9))
}

/// What encoding one frame of `size` payload bytes costs (ns, the median of batches):
/// the producers' share of the demos' work, which the bench pays once, before timing.
pub fn encode_ns(size: usize, rounds: u64) -> Result<f64> {
    let mut out = Vec::with_capacity(size + message::OVERHEAD);
    let mut seq = 0u64;
    let latency = timed(rounds, || {
        message::encode_into(seq, size, &mut out);
        std::hint::black_box(&mut out);
        seq += 1;
        Ok(())
    })?;
    Ok(latency.p50)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_row_has_its_own_name() {
        for r in REFERENCES {
            assert!(
                crate::mechanisms::ALL.iter().all(|m| m.name != r.name),
                "{} is also a mechanism",
                r.name
            );
            assert!(is_reference(r));
        }
        assert!(!is_reference(&crate::mechanisms::ALL[0]));
    }

    #[test]
    fn the_flag_page_carries_frames_both_ways_and_refuses_a_lie() {
        // One process, both sides: the protocol does not need two processes to be
        // right, only to be timed.
        let page = Box::new(FlagPage::new(100).unwrap());
        let base = page.shared.base;
        let (down, up) = (page.down, page.up);
        let mut parent = page.parent().unwrap();
        let sent = frame(84);
        parent.send(&sent).unwrap();
        // The child's side, over the same memory (no fork: a second link on the page).
        let shadow = Shared {
            base,
            len: 2 * (down.capacity + FLAG_HEADER),
        };
        let mut child = FlagLink {
            shared: shadow,
            tx: up,
            rx: down,
        };
        let mut got = Vec::new();
        child.recv(&mut got).unwrap();
        assert_eq!(got, sent);
        child.send(&got).unwrap();
        parent.recv(&mut got).unwrap();
        assert_eq!(got, sent);
        // A flag that announces more than the channel holds is an error, not a read
        // past the end.
        child
            .word(down)
            .store(down.capacity as u32 + 2, Ordering::Release);
        let err = child.recv(&mut got).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        // The shadow must not unmap what `parent` still owns.
        std::mem::forget(child);
    }

    #[test]
    fn bare_pipes_move_exactly_one_message_per_receive() {
        let (r, w) = unistd::pipe().unwrap();
        let mut link = BarePipeLink {
            tx: w,
            rx: r,
            len: 80,
        };
        // Two messages in the pipe at once: each receive takes one, no more.
        let one: Vec<u8> = (0..80).collect();
        link.send(&one).unwrap();
        link.send(&one).unwrap();
        let mut got = Vec::new();
        link.recv(&mut got).unwrap();
        assert_eq!(got, one);
        link.recv(&mut got).unwrap();
        assert_eq!(got, one);
    }

    #[test]
    fn a_bare_pipe_side_keeps_only_its_own_ends() {
        // The parent's side closes the child's ends (no fork here): its receiving pipe
        // has no writer left, so a receive sees end of file instead of waiting forever.
        let mut parent = setup(&REFERENCES[1], 80).unwrap().parent().unwrap();
        let err = parent.recv(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("end of file"), "{err}");
    }

    #[test]
    fn the_work_rows_check_real_frames() {
        let amount = Amount {
            count: 20,
            warmup: 2,
        };
        let l = work_latency(4096, amount).unwrap();
        assert!(l.p50 > 0.0 && l.p50 <= l.max);
        assert!(work_throughput(4096, amount).unwrap() > 0.0);
        assert!(encode_ns(64, 20).unwrap() > 0.0);
    }
}
