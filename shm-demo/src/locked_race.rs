//! `shm-demo race --lock KIND`: the race of note 001 with one chosen way of keeping the
//! two processes' increments apart, so that the kinds of semaphore can be compared on
//! the same work: none, an atomic instruction, or a lock of each kind of semaphore
//! (see [`crate::sem`]).

use std::sync::atomic::Ordering;

use common::mapping::Mapping;
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::{Narrator, Result, tr};

use crate::race::{bump_atomic, bump_unsynchronised};
use crate::sem::{self, Kind, Lock, Place};

/// How the increments are kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RaceLock {
    /// Not at all: a load and a store, and updates lost between them.
    None,
    /// One atomic read-modify-write (`fetch_add`).
    Atomic,
    /// An unnamed process-shared semaphore in the shared page.
    Unnamed,
    /// A POSIX named semaphore (`sem_open`).
    Named,
    /// A System V semaphore (`semop` with SEM_UNDO).
    Sysv,
}

impl RaceLock {
    fn word(self) -> &'static str {
        match self {
            RaceLock::None => "none",
            RaceLock::Atomic => "atomic",
            RaceLock::Unnamed => "unnamed",
            RaceLock::Named => "named",
            RaceLock::Sysv => "sysv",
        }
    }

    /// The kind of semaphore this lock uses, if it uses one.
    pub fn semaphore(self) -> Option<Kind> {
        match self {
            RaceLock::None | RaceLock::Atomic => None,
            RaceLock::Unnamed => Some(Kind::Unnamed),
            RaceLock::Named => Some(Kind::Named),
            RaceLock::Sysv => Some(Kind::Sysv),
        }
    }
}

/// Where the counter and the unnamed semaphore are in the anonymous page.
const COUNTER: usize = 0;
const LOCK_AT: usize = 64;

// ANCHOR: race_with
/// Two processes each add 1 to one counter in shared memory `count` times, kept apart
/// by `how`. Returns the total, which is `2 × count` when nothing was lost.
pub fn race_with(n: &Narrator, how: RaceLock, place: &Place, count: u64) -> Result<u64> {
    let shared = Mapping::anonymous(n, 4096)?;
    let counter = shared.u64_at(COUNTER)?;
    let lock = match how.semaphore() {
        Some(kind) => Some(sem::make(n, kind, Some(&shared), LOCK_AT, place, 1, true)?),
        None => None,
    };
    let mut children = Vec::new();
    for _ in 0..2 {
        match process::fork(n, "incrementer")? {
            Fork::Child(me) => {
                let result = match &lock {
                    Some((lock, _)) => locked(&me, lock, counter, count),
                    None if how == RaceLock::Atomic => {
                        bump_atomic(counter, count);
                        Ok(())
                    }
                    None => {
                        bump_unsynchronised(counter, count);
                        Ok(())
                    }
                };
                process::exit_child(&me, result)
            }
            Fork::Parent { child } => children.push(child),
        }
    }
    for child in children {
        process::wait_for(n, child, "incrementer")?;
    }
    let total = counter.load(Ordering::SeqCst);
    drop(lock);
    shared.munmap(n)?;
    Ok(total)
}

/// One child's increments, each inside the lock.
fn locked(
    me: &Narrator,
    lock: &Lock<'_>,
    counter: &std::sync::atomic::AtomicU64,
    count: u64,
) -> Result<()> {
    for _ in me.first_few(0..count, tr!("the remaining increments without narration")) {
        lock.take(me)?;
        let value = counter.load(Ordering::Relaxed);
        counter.store(value + 1, Ordering::Relaxed);
        lock.give(me)?;
    }
    Ok(())
}
// ANCHOR_END: race_with

/// The lesson and its summary: `summary: lock=named expected=2000 got=2000 lost=0`.
pub fn run(n: &Narrator, how: RaceLock, place: &Place, count: u64) -> Result<()> {
    let total = race_with(n, how, place, count)?;
    let (expected, lost) = (2 * count, (2 * count).saturating_sub(total));
    n.announce(tr!(
        "{how}: expected {expected}, got {total}, lost {lost}",
        how = how.word(),
        expected,
        total,
        lost
    ));
    print_summary(format_args!(
        "summary: lock={} expected={expected} got={total} lost={lost}",
        how.word()
    ))
}
