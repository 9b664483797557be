//! How each number is taken: two processes, pinned to CPUs, one link between them.
//!
//! - latency: the parent sends a frame, the child sends it back, the parent receives it:
//!   one round trip. Round trips shorter than a microsecond are timed in batches, so that
//!   the clock's own cost does not dominate.
//! - throughput: the parent sends many frames without waiting; the child receives them
//!   all and answers once. Payload bytes divided by the time.
//! - the floors: what the hardware and the kernel cost at the least, measured the same way.
//!   Each floor is measured several times and reported with its spread ([`Spread`]): a
//!   floor whose runs disagree by more than 2x is measured again, and if it still does,
//!   every ratio against it is flagged in the report, never used silently.
//! - the reference rows ([`crate::reference`]): the same bytes with no demo code around
//!   them, measured by the same functions as the mechanisms.
//!
//! Setting up (creating the objects, forking, warming up) is never inside the timing.

use std::time::Instant;

use common::message;
use common::process::{self, Fork};
use common::{Error, Narrator, Result};
use hdrhistogram::Histogram;
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{self, Pid};

use crate::SIZES;
use crate::mechanisms::{self, Link, Spec};
use crate::reference;
use crate::report::{Floors, Row};

/// Which CPUs the two processes run on.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    /// The parent's CPU.
    pub parent: usize,
    /// The child's CPU.
    pub child: usize,
}

/// `sched_setaffinity(0, {cpu})`: this process runs on `cpu` only.
pub fn pin(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)
        .map_err(|e| Error::sys(format!("CPU_SET({cpu})"), e))?;
    sched_setaffinity(Pid::from_raw(0), &set)
        .map_err(|e| Error::sys(format!("sched_setaffinity(0, {{{cpu}}})"), e))
}

/// Percentiles of one measurement, in nanoseconds per round trip.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
    /// Round trips per timed sample (1, or more for sub-microsecond round trips).
    pub batch: u32,
}

/// How many round trips or messages to time.
#[derive(Debug, Clone, Copy)]
pub struct Amount {
    /// Timed samples (latency) or messages (throughput).
    pub count: u64,
    /// Untimed ones before.
    pub warmup: u64,
}

/// Runs that disagree by more than this factor (the slowest over the fastest) do not make
/// a floor: issue 19 saw the cache-line floor read 27 ns in one run and 220 to 250 ns in
/// the next two.
pub const UNSTEADY: f64 = 2.0;

/// One floor, measured several times: what the report uses (the median) and how far the
/// runs were from each other.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Spread {
    /// The median of `runs`: the value ratios are taken against.
    pub median: f64,
    /// The lowest of `runs`.
    pub min: f64,
    /// The highest of `runs`.
    pub max: f64,
    /// The runs used, in the order they were taken.
    pub runs: Vec<f64>,
    /// Runs set aside: the first round, when it disagreed by more than [`UNSTEADY`] and
    /// a second round agreed.
    pub discarded: Vec<f64>,
    /// Whether the first round disagreed by more than [`UNSTEADY`], so the floor was
    /// measured again.
    pub remeasured: bool,
    /// Whether the runs used agree within [`UNSTEADY`]. When not, the report flags
    /// every ratio taken against this floor.
    pub steady: bool,
}

impl Spread {
    /// The spread of `runs` (at least one), as measured once.
    pub fn of(mut runs: Vec<f64>) -> Spread {
        if runs.is_empty() {
            runs.push(f64::NAN);
        }
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        Spread {
            median: sorted[sorted.len() / 2],
            min,
            max,
            runs,
            discarded: Vec::new(),
            remeasured: false,
            steady: max <= UNSTEADY * min,
        }
    }

    /// The runs of `self` and `other` together (measured at two times of one run): their
    /// discarded runs and whether either was measured again are kept.
    pub fn merge(self, other: Spread) -> Spread {
        let mut runs = self.runs;
        runs.extend(other.runs);
        let mut discarded = self.discarded;
        discarded.extend(other.discarded);
        Spread {
            discarded,
            remeasured: self.remeasured || other.remeasured,
            ..Spread::of(runs)
        }
    }

    /// The slowest run over the fastest (for a time; for a rate, the fastest over the
    /// slowest): 1.0 when the runs agree.
    pub fn disagreement(&self) -> f64 {
        self.max / self.min
    }
}

/// Measures a floor `times` times (at least 3) with `once`. If the runs disagree by more
/// than [`UNSTEADY`], they are measured once more: a second round that agrees replaces
/// the first (kept as `discarded`); one that does not is merged with the first into an
/// unsteady [`Spread`], which the report flags wherever it is used.
pub fn spread(times: u32, mut once: impl FnMut() -> Result<f64>) -> Result<Spread> {
    let times = times.max(3);
    let mut round = || (0..times).map(|_| once()).collect::<Result<Vec<f64>>>();
    let first = Spread::of(round()?);
    if first.steady {
        return Ok(first);
    }
    let second = Spread::of(round()?);
    if second.steady {
        return Ok(Spread {
            discarded: first.runs,
            remeasured: true,
            ..second
        });
    }
    let mut all = first.runs;
    all.extend(second.runs);
    Ok(Spread {
        remeasured: true,
        ..Spread::of(all)
    })
}

/// Forks a child that runs `child` with its side of the link (pinned to its CPU), runs
/// `parent` with the other side (pinned), then ends the child and waits for it.
fn with_pair<T>(
    spec: &Spec,
    frame_len: usize,
    placement: Placement,
    child: impl FnOnce(&mut dyn Link) -> Result<()>,
    parent: impl FnOnce(&mut dyn Link) -> Result<T>,
) -> Result<T> {
    let setup = if reference::is_reference(spec) {
        reference::setup(spec, frame_len)?
    } else {
        mechanisms::setup(spec, frame_len, &common::paths::private_dir()?)?
    };
    let quiet = Narrator::silent("bench");
    let me = unistd::getpid();
    match process::fork(&quiet, "echo")? {
        Fork::Child(me_child) => {
            let result = pin(placement.child)
                .and_then(|()| setup.child(me))
                .and_then(|mut link| child(link.as_mut()));
            process::exit_child(&me_child, result)
        }
        Fork::Parent { child: pid } => {
            // The echo side may be waiting for a message that will never come (a queue or
            // a ring has no end-of-file): end it and reap it while our side of the link is
            // still open, so that it never sees an end of stream it would report as an error.
            let finish = || {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
            };
            match pin(placement.parent).and_then(|()| setup.parent()) {
                Ok(mut link) => {
                    let value = parent(link.as_mut());
                    finish();
                    drop(link);
                    value
                }
                Err(e) => {
                    finish();
                    Err(e)
                }
            }
        }
    }
}

/// The round-trip latency of `spec` with `size`-byte payloads.
pub fn latency(spec: &Spec, size: usize, amount: Amount, placement: Placement) -> Result<Latency> {
    let frame = frame(spec, size);
    let echo = |link: &mut dyn Link| -> Result<()> {
        let mut buf = Vec::new();
        loop {
            link.recv(&mut buf)?;
            link.send(&buf)?;
        }
    };
    with_pair(spec, frame.len(), placement, echo, |link| {
        let mut buf = Vec::new();
        let mut round_trip = || -> Result<()> {
            link.send(&frame)?;
            link.recv(&mut buf)
        };
        for _ in 0..amount.warmup {
            round_trip()?;
        }
        // Calibrate: if a round trip takes under a microsecond, time them in batches.
        let start = Instant::now();
        for _ in 0..100 {
            round_trip()?;
        }
        let each = start.elapsed().as_nanos() as f64 / 100.0;
        let batch = if each < 1000.0 {
            (2000.0 / each.max(1.0)).ceil() as u32
        } else {
            1
        };
        let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)
            .map_err(|e| Error::bad_data("histogram", e.to_string()))?;
        for _ in 0..amount.count {
            let start = Instant::now();
            for _ in 0..batch {
                round_trip()?;
            }
            let ns = (start.elapsed().as_nanos() / u128::from(batch)).max(1) as u64;
            hist.record(ns)
                .map_err(|e| Error::bad_data("histogram", e.to_string()))?;
        }
        let q = |quantile: f64| hist.value_at_quantile(quantile) as f64;
        Ok(Latency {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: hist.max() as f64,
            batch,
        })
    })
}

/// The streaming throughput of `spec` with `size`-byte payloads, in bytes per second.
pub fn throughput(spec: &Spec, size: usize, amount: Amount, placement: Placement) -> Result<f64> {
    let frame = frame(spec, size);
    let ack = frame.clone();
    let sink = move |link: &mut dyn Link| -> Result<()> {
        let mut buf = Vec::new();
        for round in [amount.warmup, amount.count] {
            for _ in 0..round {
                link.recv(&mut buf)?;
            }
            link.send(&ack)?;
        }
        // Stay until the parent ends us: the parent's last receive needs our answer.
        loop {
            std::thread::park();
        }
    };
    with_pair(spec, frame.len(), placement, sink, |link| {
        let mut buf = Vec::new();
        for _ in 0..amount.warmup {
            link.send(&frame)?;
        }
        link.recv(&mut buf)?;
        let start = Instant::now();
        for _ in 0..amount.count {
            link.send(&frame)?;
        }
        link.recv(&mut buf)?;
        let seconds = start.elapsed().as_secs_f64();
        Ok(amount.count as f64 * size as f64 / seconds.max(1e-9))
    })
}

/// One cell of the table to measure: a mechanism or reference row, a test and a size,
/// how much to send, and the runs taken so far. The runs of all cells are interleaved
/// (run 1 of every cell, then run 2 of every cell, ...), so that each cell's median and
/// range come from the whole length of the bench: a cell is not measured only while
/// another program happens to load the machine, and two cells compared in a ratio saw
/// the same conditions.
pub struct Cell {
    /// The row: its status says why there is no number, if there is none.
    pub row: Row,
    /// How much each run sends; `None` if the cell is not measured.
    amount: Option<Amount>,
    /// The runs taken.
    latencies: Vec<Latency>,
    /// The runs taken (throughput, bytes/s).
    rates: Vec<f64>,
}

impl Cell {
    /// Plans one cell, or says why it has no number (spinning on one CPU, no payload, a
    /// size over the mechanism's limit).
    pub fn plan(spec: &Spec, test: &str, size: usize, quick: bool, placement: Placement) -> Cell {
        let mut row = Row::new(spec, test, size);
        let skip = |row: &mut Row, why: &str| row.status = why.into();
        let measured = if spec.spins && placement.parent == placement.child {
            skip(
                &mut row,
                "skipped (same CPU: spinning would only wait for the scheduler)",
            );
            false
        } else if !spec.carries_data && (test == "throughput" || size != SIZES[0]) {
            // A signal carries no payload: its round trip is measured once, as "64 B".
            skip(&mut row, "n/a (no payload)");
            false
        } else if spec.carries_data
            && mechanisms::limit(spec).is_some_and(|limit| size + message::OVERHEAD > limit)
        {
            skip(&mut row, "n/a (limit)");
            false
        } else {
            true
        };
        let scale = if quick { 40 } else { 1 };
        let count = if test == "latency" {
            match size {
                64 | 4096 => 6_000,
                65_536 => 2_000,
                _ => 400,
            }
        } else {
            ((32usize << 20) / size).clamp(100, 200_000) as u64
        } / scale;
        // Warm up for at least two laps of a 16-slot ring, so that every page the
        // mechanism uses is mapped before the clock starts.
        let amount = measured.then_some(Amount {
            count: count.max(10),
            warmup: (count / 10).max(32),
        });
        Cell {
            row,
            amount,
            latencies: Vec::new(),
            rates: Vec::new(),
        }
    }

    /// Takes one more run of the cell (nothing if it is not measured).
    pub fn run(&mut self, placement: Placement) -> Result<()> {
        let Some(amount) = self.amount else {
            return Ok(());
        };
        let (spec, size) = (self.row.spec, self.row.size);
        let work = spec.name == reference::WORK;
        if self.row.test == "latency" {
            self.latencies.push(if work {
                reference::work_latency(size, amount)?
            } else {
                latency(&spec, size, amount, placement)?
            });
        } else {
            self.rates.push(if work {
                reference::work_throughput(size, amount)?
            } else {
                throughput(&spec, size, amount, placement)?
            });
        }
        Ok(())
    }

    /// The row, with the median run and the range of the runs. Its ratio to its floor is
    /// set at the end of the run ([`crate::report::set_ratio`]), once the floors have
    /// been measured a second time.
    pub fn finish(mut self) -> Row {
        let mut all = self.latencies;
        if !all.is_empty() {
            all.sort_by(|a, b| a.p50.total_cmp(&b.p50));
            self.row.latency = Some(all[all.len() / 2]);
            self.row.range = Some((all[0].p50, all[all.len() - 1].p50));
            self.row.status = "ok".into();
        }
        let mut all = self.rates;
        if !all.is_empty() {
            all.sort_by(f64::total_cmp);
            self.row.bytes_per_s = Some(all[all.len() / 2]);
            self.row.range = Some((all[0], all[all.len() - 1]));
            self.row.status = "ok".into();
        }
        self.row
    }
}

/// The frame every measurement sends: made once, so that the bench measures moving it
/// (written into the mechanism on send, checksummed on receive), not making it.
fn frame(spec: &Spec, size: usize) -> Vec<u8> {
    let mut frame = Vec::new();
    if spec.carries_data {
        message::encode_into(0, size, &mut frame);
    }
    frame
}

/// What `Instant::now()` costs, in nanoseconds: the clock's own share of a timing.
pub fn timer_cost() -> f64 {
    let start = Instant::now();
    let mut last = start;
    for _ in 0..100_000 {
        last = std::hint::black_box(Instant::now());
    }
    (last - start).as_nanos() as f64 / 100_000.0
}

/// The floors: the least a round trip or a copy can cost here.
pub mod floors {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A page of anonymous shared memory for the two processes of a floor.
    struct Page(std::ptr::NonNull<u8>);

    impl Page {
        fn new() -> Result<Page> {
            let len =
                std::num::NonZeroUsize::new(4096).ok_or_else(|| Error::bad_data("page", "zero"))?;
            // SAFETY: a new anonymous mapping at an address the kernel chooses aliases no
            // Rust object; it lives until the process exits (the floors map one each).
            let ptr = unsafe {
                nix::sys::mman::mmap_anonymous(
                    None,
                    len,
                    nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                    nix::sys::mman::MapFlags::MAP_SHARED,
                )
            }
            .map_err(|e| Error::sys("mmap(MAP_SHARED|MAP_ANONYMOUS)", e))?;
            Ok(Page(ptr.cast()))
        }

        fn word(&self) -> &AtomicU32 {
            // SAFETY: offset 0 of a live, page-aligned mapping; every access is atomic.
            unsafe { AtomicU32::from_ptr(self.0.as_ptr().cast::<u32>()) }
        }
    }

    /// Runs `parent` and `child` in two pinned processes sharing one [`Page`].
    fn pair(
        placement: Placement,
        child: fn(&AtomicU32),
        parent: impl FnOnce(&AtomicU32) -> f64,
    ) -> Result<f64> {
        let page = Page::new()?;
        let quiet = Narrator::silent("floor");
        match process::fork(&quiet, "floor")? {
            Fork::Child(me) => {
                let result = pin(placement.child).map(|()| child(page.word()));
                process::exit_child(&me, result)
            }
            Fork::Parent { child: pid } => {
                let value = pin(placement.parent).map(|()| parent(page.word()));
                let _ = kill(pid, Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
                value
            }
        }
    }

    /// The median of `samples` timings, each of `batch` rounds of `round`, in ns per
    /// round: floors are medians, as the mechanisms' latencies are.
    fn median(samples: u64, batch: u32, mut round: impl FnMut(u32)) -> f64 {
        let mut times: Vec<f64> = (0..samples)
            .map(|s| {
                let start = Instant::now();
                for b in 0..batch {
                    round(s as u32 * batch + b);
                }
                start.elapsed().as_nanos() as f64 / f64::from(batch)
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    }

    /// Two processes spinning on one cache line, passing a counter back and forth: the
    /// least a spinning round trip costs (median ns; timed in batches of 100).
    pub fn cache_line(placement: Placement, rounds: u64) -> Result<f64> {
        pair(
            placement,
            |word| loop {
                let v = word.load(Ordering::Acquire);
                if v % 2 == 1 {
                    word.store(v + 1, Ordering::Release);
                }
                std::hint::spin_loop();
            },
            |word| {
                median((rounds / 100).max(1), 100, |i| {
                    word.store(2 * i + 1, Ordering::Release);
                    while word.load(Ordering::Acquire) != 2 * i + 2 {
                        std::hint::spin_loop();
                    }
                })
            },
        )
    }

    fn futex(word: &AtomicU32, op: libc::c_int, value: u32) {
        // SAFETY: `word` is a live, aligned u32 in shared memory; FUTEX_WAIT and
        // FUTEX_WAKE (without FUTEX_PRIVATE_FLAG, since two processes share it) read it
        // and nothing else; a null timeout waits for as long as it takes.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                op,
                value,
                std::ptr::null::<libc::timespec>(),
                0,
                0,
            );
        }
    }

    /// Two processes waking each other with futexes: the least a round trip costs when
    /// the other side sleeps (median ns).
    pub fn futex_round_trip(placement: Placement, rounds: u64) -> Result<f64> {
        pair(
            placement,
            |word| loop {
                // Wait while the word is 0, then answer by setting it back to 0.
                while word.load(Ordering::Acquire) == 0 {
                    futex(word, libc::FUTEX_WAIT, 0);
                }
                word.store(0, Ordering::Release);
                futex(word, libc::FUTEX_WAKE, 1);
            },
            |word| {
                median(rounds.max(1), 1, |_| {
                    word.store(1, Ordering::Release);
                    futex(word, libc::FUTEX_WAKE, 1);
                    while word.load(Ordering::Acquire) == 1 {
                        futex(word, libc::FUTEX_WAIT, 1);
                    }
                })
            },
        )
    }

    /// Every floor, each measured `runs` times (at least 3) with its [`Spread`], and
    /// measured again where its runs disagree (see [`spread`]). The bench calls it at
    /// the start of a run, and [`again`] at its end.
    pub fn all(placement: Placement, quick: bool, runs: u32) -> Result<Floors> {
        let rounds = if quick { 2_000 } else { 200_000 };
        Ok(Floors {
            timer_ns: spread(runs, || Ok(timer_cost()))?,
            null_syscall_ns: spread(runs, || {
                Ok(null_syscall(if quick { 100_000 } else { 500_000 }))
            })?,
            cache_line_ns: if placement.parent == placement.child {
                None
            } else {
                Some(spread(runs, || cache_line(placement, rounds))?)
            },
            futex_ns: spread(runs, || {
                futex_round_trip(placement, if quick { 200 } else { 5_000 })
            })?,
            memcpy: SIZES
                .iter()
                .chain(&[64 << 20])
                .map(|&size| {
                    let total = if quick { 64 << 20 } else { 512 << 20 };
                    Ok((size, spread(runs, || Ok(memcpy(size, total)))?))
                })
                .collect::<Result<Vec<_>>>()?,
        })
    }

    /// Measures every floor once more, at the end of the run, and merges the new runs
    /// into `first`'s. A floor is read minutes before the last mechanism is measured, and
    /// the machine may have changed in between (another program, a CPU's clock): runs at
    /// both ends make the spread say so, and a floor that moved by more than 2x is
    /// unsteady, flagged wherever it is used.
    pub fn again(first: Floors, placement: Placement, quick: bool, runs: u32) -> Result<Floors> {
        let second = all(placement, quick, runs)?;
        let memcpy = first
            .memcpy
            .into_iter()
            .zip(second.memcpy)
            .map(|((size, a), (_, b))| (size, a.merge(b)))
            .collect();
        Ok(Floors {
            timer_ns: first.timer_ns.merge(second.timer_ns),
            null_syscall_ns: first.null_syscall_ns.merge(second.null_syscall_ns),
            cache_line_ns: match (first.cache_line_ns, second.cache_line_ns) {
                (Some(a), Some(b)) => Some(a.merge(b)),
                (a, b) => a.or(b),
            },
            futex_ns: first.futex_ns.merge(second.futex_ns),
            memcpy,
        })
    }

    /// A system call that does nothing (getppid, which glibc does not cache) (ns).
    pub fn null_syscall(calls: u64) -> f64 {
        let start = Instant::now();
        for _ in 0..calls {
            // SAFETY: getppid takes no arguments and cannot fail.
            std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
        }
        start.elapsed().as_nanos() as f64 / calls as f64
    }

    /// memcpy of `size` bytes, repeated until about `total` bytes are copied (bytes/s).
    pub fn memcpy(size: usize, total: usize) -> f64 {
        let src = vec![7u8; size];
        let mut dst = vec![0u8; size];
        let rounds = (total / size).max(1);
        // One untimed copy first: the destination's pages are mapped on first touch, and
        // page faults are not what this floor is about.
        dst.copy_from_slice(&src);
        let start = Instant::now();
        for _ in 0..rounds {
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&mut dst);
        }
        (rounds * size) as f64 / start.elapsed().as_secs_f64().max(1e-9)
    }
}
