//! What happens to a semaphore when the process holding it dies (`shm-demo holder-dies`).
//!
//! A holder process takes the lock and is killed with SIGKILL while it holds it, so no
//! code of its own runs afterwards. The other process then tries to take the lock,
//! with a time-out so that the lesson ends: an unnamed or a named semaphore stays at 0,
//! and without the time-out the waiter would wait forever (`sem_timedwait` ends with
//! ETIMEDOUT). A System V semaphore taken with `SEM_UNDO` is given back by the kernel as
//! the holder exits (semop(2): the "semadj" of each process is applied at its exit), so
//! `semtimedop` takes it at once. Without `SEM_UNDO` (`--no-undo`) it stays taken too.

use std::time::Duration;

use common::mapping::Mapping;
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::{Error, Narrator, Result, say, tr};
use nix::sys::signal::Signal;

use crate::sem::{self, Kind, Place};

/// Where the unnamed semaphore is in the anonymous page.
const LOCK_AT: usize = 0;

/// What the waiter saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It took the lock: the kernel gave it back when the holder died.
    Took,
    /// Its time ran out: the lock stayed taken by a process that no longer exists.
    TimedOut,
}

// ANCHOR: holder_dies
/// The lesson: a lock of `kind`, a holder child that takes it and is killed with
/// SIGKILL, and this process trying to take it within `timeout`.
pub fn holder_dies(
    n: &Narrator,
    kind: Kind,
    place: &Place,
    undo: bool,
    timeout: Duration,
) -> Result<Outcome> {
    // Only the unnamed kind needs memory the two processes share; the child inherits it.
    let shared = match kind {
        Kind::Unnamed => Some(Mapping::anonymous(n, 4096)?),
        _ => None,
    };
    let (lock, _remove) = sem::make(n, kind, shared.as_ref(), LOCK_AT, place, 1, undo)?;
    // The holder says "I hold it" through a pipe: an event to wait for, not a guess.
    let (ready_r, ready_w) = common::sys::pipe(n)?;
    let holder = match process::fork(n, "holder")? {
        Fork::Child(me) => {
            drop(ready_r);
            let held = lock
                .take(&me)
                .and_then(|()| common::sys::write(&me, &ready_w, b"1").map(drop));
            if held.is_err() {
                process::exit_child(&me, held);
            }
            say!(me, "I hold the lock, and never give it back: kill me");
            // Wait for the SIGKILL (or the parent's death, PR_SET_PDEATHSIG).
            loop {
                nix::unistd::pause();
            }
        }
        Fork::Parent { child } => child,
    };
    drop(ready_w);
    let mut byte = [0u8; 1];
    if common::sys::read(n, &ready_r, &mut byte)? != 1 {
        return Err(Error::bad_data(
            tr!("the holder (pid {pid})", pid = holder),
            tr!("it ended before it took the lock"),
        ));
    }
    common::sys::kill(n, holder, Signal::SIGKILL)?;
    // Reaped: the holder has fully exited, so the kernel has done whatever it does at
    // a process's exit (for SEM_UNDO, the undo) before the waiter looks.
    common::sys::waitpid(n, holder)?;
    say!(n, "the holder is gone; the lock's value now:");
    lock.value(n)?;
    let took = lock.take_within(n, timeout)?;
    if took {
        n.announce(tr!(
            "took it: the kernel undid the dead holder's semop (SEM_UNDO)"
        ));
        lock.give(n)?;
    } else {
        n.announce(tr!(
            "timed out: the lock stays taken by a process that no longer exists; without a \
             time-out this wait would never end"
        ));
    }
    drop(lock);
    if let Some(shared) = shared {
        shared.munmap(n)?;
    }
    Ok(if took {
        Outcome::Took
    } else {
        Outcome::TimedOut
    })
}
// ANCHOR_END: holder_dies

/// The lesson and its summary line: `summary: kind=sysv undo=yes waiter=took`.
pub fn run(n: &Narrator, kind: Kind, place: &Place, undo: bool, timeout: Duration) -> Result<()> {
    let undo = undo && kind == Kind::Sysv;
    let outcome = holder_dies(n, kind, place, undo, timeout)?;
    print_summary(format_args!(
        "summary: kind={} undo={} waiter={}",
        kind.word(),
        if undo { "yes" } else { "no" },
        match outcome {
            Outcome::Took => "took",
            Outcome::TimedOut => "timed_out",
        }
    ))
}
