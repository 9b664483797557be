//! The race of note 001 ("동기화 문제"): two processes add 1 to one counter in shared
//! memory, without synchronisation, with an atomic instruction, and with a semaphore.
//!
//! The memory is anonymous (`MAP_SHARED|MAP_ANONYMOUS`): it has no name, and the two
//! children share it because they inherit the mapping from the parent that forks them.

use std::sync::atomic::{AtomicU64, Ordering};

use common::mapping::Mapping;
use common::process::{self, Fork};
use common::{Narrator, Result, tr};

use crate::sys::{self, Sem};

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
    /// A load, a short wait, a store: two separate atomic accesses, and the window
    /// between them in which the other process's update is lost.
    Unsynchronised,
    /// One `fetch_add` (`lock xadd` on x86): the read-modify-write is one indivisible
    /// instruction.
    Atomic,
    /// `sem_wait`, load, store, `sem_post`: a lock around the same load and store.
    Semaphore,
}

impl Increment {
    /// The three, in the order the lesson runs them.
    pub const ALL: [Increment; 3] = [
        Increment::Unsynchronised,
        Increment::Atomic,
        Increment::Semaphore,
    ];

    /// The way's name, as the lesson prints it.
    pub fn label(self) -> String {
        match self {
            Increment::Unsynchronised => tr!("Unsynchronised"),
            Increment::Atomic => tr!("Atomic"),
            Increment::Semaphore => tr!("Semaphore"),
        }
    }
}

/// Spins between the load and the store of an unsynchronised increment, so that the other
/// process's increments fall into the window often, even when both share one CPU.
const WINDOW: u32 = 64;
/// Where the counter and the lock are in the anonymous page.
const COUNTER: usize = 0;
const LOCK: usize = 64;

// ANCHOR: race
/// Two processes each add 1 to one counter in shared memory `count` times, in each of the
/// three ways of [`Increment`]. Returns the three totals.
pub fn race(n: &Narrator, count: u64) -> Result<RaceResult> {
    let shared = Mapping::anonymous(n, 4096)?;
    let (counter, lock) = (shared.u64_at(COUNTER)?, Sem::at(&shared, LOCK, "lock")?);
    sys::sem_init(n, lock, 1)?;
    let mut totals = [0; 3];
    for (total, how) in totals.iter_mut().zip(Increment::ALL) {
        counter.store(0, Ordering::SeqCst);
        let mut children = Vec::new();
        for _ in 0..2 {
            match process::fork(n, "incrementer")? {
                Fork::Child(me) => {
                    let result = increment(&me, counter, lock, how, count);
                    process::exit_child(&me, result)
                }
                Fork::Parent { child } => children.push(child),
            }
        }
        for child in children {
            process::wait_for(n, child, "incrementer")?;
        }
        *total = counter.load(Ordering::SeqCst);
        let (expected, lost) = (2 * count, (2 * count).saturating_sub(*total));
        n.announce(tr!(
            "{how}: expected {expected}, got {total}, lost {lost}",
            how = how.label(),
            expected,
            total = *total,
            lost
        ));
    }
    shared.munmap(n)?;
    let [unsynchronised, atomic, semaphore] = totals;
    Ok(RaceResult {
        expected: 2 * count,
        unsynchronised,
        atomic,
        semaphore,
    })
}

/// One child's `count` increments of `counter`, the `how` way.
fn increment(
    me: &Narrator,
    counter: &AtomicU64,
    lock: Sem<'_>,
    how: Increment,
    count: u64,
) -> Result<()> {
    match how {
        Increment::Unsynchronised => bump_unsynchronised(counter, count),
        Increment::Atomic => bump_atomic(counter, count),
        Increment::Semaphore => {
            for _ in me.first_few(0..count, tr!("the remaining increments without narration")) {
                sys::sem_wait(me, lock)?;
                let value = counter.load(Ordering::Relaxed);
                counter.store(value + 1, Ordering::Relaxed);
                sys::sem_post(me, lock)?;
            }
        }
    }
    Ok(())
}
// ANCHOR_END: race

// ANCHOR: bump
/// `count` increments of `counter` without synchronisation.
pub(crate) fn bump_unsynchronised(counter: &AtomicU64, count: u64) {
    for _ in 0..count {
        // Each access is atomic (Relaxed): neither can be torn or half-seen. The
        // update is lost between them: the other process may store in the window,
        // and this store then writes back a value that no longer counts its add.
        let value = counter.load(Ordering::Relaxed);
        for _ in 0..WINDOW {
            std::hint::spin_loop();
        }
        counter.store(value + 1, Ordering::Relaxed);
    }
}

/// `count` increments of `counter`, each one atomic read-modify-write.
pub(crate) fn bump_atomic(counter: &AtomicU64, count: u64) {
    for _ in 0..count {
        // Relaxed too: the ordering is not what makes it exact, the one
        // indivisible read-modify-write is.
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
// ANCHOR_END: bump
