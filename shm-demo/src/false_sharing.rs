//! False sharing: two processes that never touch each other's data can still slow each
//! other down, if their data shares a cache line.
//!
//! CPUs do not move single bytes between their caches: they move cache lines (64 bytes
//! on x86-64). A CPU that stores into a line must own it alone, so a store by the other
//! CPU into *the same line*, even into different bytes, takes the line away, and the next
//! store must fetch it back. Two counters side by side, each written by its own process,
//! make the line travel on every increment; a line apart, each stays in its CPU's cache.
//! This is why the fast ring (`fast.rs`) pads its slots to whole lines, and why the
//! region gives `head` and `tail` a line each.
//!
//! The lesson measures it: two children, pinned to two CPUs, each add 1 to its own
//! counter `count` times, first with the counters at offsets 0 and 8 of a shared page
//! (one line), then at offsets 0 and 128 (two lines apart: many Intel CPUs fetch lines in
//! pairs, so one line apart can still interfere a little). On one CPU there is nothing to
//! see: the two never run at the same time.

use std::sync::atomic::Ordering;
use std::time::Instant;

use common::mapping::Mapping;
use common::process::{self, Fork};
use common::{Error, Narrator, Result, say, tr};

use crate::sys;

/// What [`false_sharing`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FalseSharing {
    /// Increments each process made, in each layout.
    pub increments: u64,
    /// Nanoseconds per increment with both counters in one cache line (the slower of
    /// the two processes).
    pub same_line_ns: f64,
    /// Nanoseconds per increment with the counters two cache lines apart.
    pub padded_ns: f64,
    /// Whether the two processes ran on two CPUs (on one, there is no false sharing).
    pub two_cpus: bool,
}

/// Where the two counters are: one cache line, or two lines apart.
const LAYOUTS: [(usize, usize); 2] = [(0, 8), (0, 128)];
/// Where the two children meet before they start (a line of its own).
const START: usize = 1024;
/// Where each child writes how long its increments took, in ns (a line each).
const TOOK: [usize; 2] = [2048, 2112];

// ANCHOR: false_sharing
/// Two children add 1 to their own counters `count` times each, with the counters in one
/// cache line, then two lines apart; returns the time per increment of each layout.
pub fn false_sharing(n: &Narrator, count: u64) -> Result<FalseSharing> {
    let shared = Mapping::anonymous(n, 4096)?;
    let cpus = sys::two_cpus();
    if cpus.is_none() {
        n.announce(tr!(
            "this process may run on one CPU only: the two children take turns, and no line \
             travels between CPUs (run it where two CPUs are free to see false sharing)"
        ));
    }
    let mut times = [0.0; 2];
    for ((a, b), time) in LAYOUTS.into_iter().zip(&mut times) {
        say!(
            n,
            "counters at offsets {a} and {b}: {lines}",
            a,
            b,
            lines = if a / 64 == b / 64 {
                tr!("one cache line")
            } else {
                tr!("different cache lines")
            }
        );
        for at in [a, b, START, TOOK[0], TOOK[1]] {
            shared.u64_at(at)?.store(0, Ordering::SeqCst);
        }
        let mut children = Vec::new();
        for (i, at) in [a, b].into_iter().enumerate() {
            match process::fork(n, "incrementer")? {
                Fork::Child(me) => {
                    let result = (|| {
                        if let Some(cpus) = cpus {
                            sys::sched_setaffinity(&me, cpus[i])?;
                        }
                        let took = increment(&shared, at, count)?;
                        shared.u64_at(TOOK[i])?.store(took, Ordering::SeqCst);
                        Ok(())
                    })();
                    process::exit_child(&me, result)
                }
                Fork::Parent { child } => children.push(child),
            }
        }
        for child in children {
            process::wait_for(n, child, "incrementer")?;
        }
        for at in [a, b] {
            let got = shared.u64_at(at)?.load(Ordering::SeqCst);
            if got != count {
                return Err(Error::bad_data(
                    tr!("a counter of its own"),
                    tr!("{got} increments, not {count}", got, count),
                ));
            }
        }
        let slower = TOOK
            .iter()
            .map(|&at| shared.u64_at(at).map(|t| t.load(Ordering::SeqCst)))
            .collect::<std::result::Result<Vec<u64>, _>>()?
            .into_iter()
            .max()
            .unwrap_or(0);
        *time = slower as f64 / count as f64;
        n.announce(tr!(
            "counters at offsets {a} and {b}: {ns} ns per increment",
            a,
            b,
            ns = format!("{:.2}", *time)
        ));
    }
    shared.munmap(n)?;
    let [same_line_ns, padded_ns] = times;
    n.announce(tr!(
        "in one cache line, each increment took {ratio} times as long",
        ratio = format!("{:.1}", same_line_ns / padded_ns.max(f64::MIN_POSITIVE))
    ));
    Ok(FalseSharing {
        increments: count,
        same_line_ns,
        padded_ns,
        two_cpus: cpus.is_some(),
    })
}

/// One child's increments of the counter at `at`, timed from the moment both children
/// are ready (each waits for the other, so that they really run at the same time).
/// Returns the time they took, in ns.
fn increment(shared: &Mapping, at: usize, count: u64) -> Result<u64> {
    let (counter, start) = (shared.u64_at(at)?, shared.u64_at(START)?);
    start.fetch_add(1, Ordering::SeqCst);
    while start.load(Ordering::SeqCst) < 2 {
        // On one CPU the other child can only get ready if this one lets it run.
        std::thread::yield_now();
    }
    let clock = Instant::now();
    for _ in 0..count {
        // An atomic add (`lock xadd` on x86), as counters shared between CPUs are kept:
        // the CPU must own the line while it adds. A plain load and store would not
        // show the cost: the load takes the value from this CPU's own store buffer, and
        // the stores reach the line in batches, whenever it comes back.
        counter.fetch_add(1, Ordering::Relaxed);
    }
    Ok(u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX))
}
// ANCHOR_END: false_sharing
