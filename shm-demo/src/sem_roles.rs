//! A semaphore between two unrelated processes, in two terminals (`shm-demo sem-hold`
//! and `shm-demo sem-wait`): what the unnamed kind cannot do without shared memory, a
//! named semaphore does by its name and a System V set by its key.
//!
//! ```text
//! cargo run -p shm-demo -- sem-hold --kind named    # terminal 1: makes it, takes it
//! cargo run -p shm-demo -- sem-wait --kind named    # terminal 2: waits for it
//! ```
//!
//! The holder gives the lock when Enter is pressed in its terminal; the waiter takes it,
//! says so, and gives it back; a second Enter removes it. Kill the holder
//! with `kill -9` instead, and the waiter's time-out shows what `holder-dies` shows in one
//! terminal: a named semaphore stays taken, a System V one taken with SEM_UNDO comes back.

use std::io::BufRead;
use std::time::Duration;

use common::cleanup;
use common::narrate::print_summary;
use common::owner::{self, Kind as FileKind};
use common::{Error, HintOn, Narrator, Result, tr};
use nix::errno::Errno;
use nix::unistd::Uid;

use crate::ipc_sys::{self, Get, key_shown};
use crate::leftovers::sem_file;
use crate::sem::{self, Kind, Lock, Place};

/// The unnamed kind lives in memory the two processes share; between two terminals
/// there is none, so these roles refuse it.
fn not_unnamed(kind: Kind) -> Result<()> {
    if kind == Kind::Unnamed {
        return Err(Error::usage(tr!(
            "an unnamed semaphore lives in memory both processes map; two unrelated \
             processes have none, so use --kind named or --kind sysv (holder-dies and race \
             show the unnamed kind)"
        )));
    }
    Ok(())
}

// ANCHOR: open_lock
/// Opens the semaphore the holder made: by its name (`sem_open` without O_CREAT), after
/// checking that `/dev/shm/sem.NAME` is a file of this user; or by its key (`semget`
/// with no flags), after checking with `semctl(IPC_STAT)` that this user made the set.
fn open_lock(n: &Narrator, kind: Kind, place: &Place) -> Result<Lock<'static>> {
    match kind {
        Kind::Named => {
            if owner::lstat_ours(&sem_file(&place.name), FileKind::File)?.is_none() {
                return Err(Error::sys(
                    format!("lstat({:?})", sem_file(&place.name).display().to_string()),
                    Errno::ENOENT,
                )
                .hint(tr!(
                    "no such semaphore: start `shm-demo sem-hold --kind named` first"
                )));
            }
            Ok(Lock::Named(ipc_sys::sem_open(n, &place.name, None)?))
        }
        _ => {
            let id = ipc_sys::semget(n, place.key, 0, Get::Existing).hint_on(
                Errno::ENOENT,
                tr!("no set has that key: start `shm-demo sem-hold --kind sysv` first"),
            )?;
            let set = ipc_sys::semctl_stat(n, id)?;
            let me = Uid::current().as_raw();
            if set.creator != me || set.nsems != 1 {
                return Err(Error::bad_data(
                    tr!("the semaphore set {id}", id),
                    tr!(
                        "user {uid} made it with {nsems} semaphores: not one the holder made",
                        uid = set.creator,
                        nsems = set.nsems
                    ),
                ));
            }
            Ok(Lock::Sysv { id, undo: true })
        }
    }
}
// ANCHOR_END: open_lock

/// `sem-hold`: makes the semaphore (value 1), takes it, and holds it until Enter; then
/// gives it, and removes it at the next Enter.
pub fn hold(n: &Narrator, kind: Kind, place: &Place) -> Result<()> {
    not_unnamed(kind)?;
    let (lock, _remove) = sem::make(n, kind, None, 0, place, 1, true)?;
    cleanup::exit_on_interrupt(n)?;
    lock.take(n)?;
    let other = match kind {
        Kind::Sysv => format!("--key {}", key_shown(place.key)),
        _ => format!("--sem-name {}", place.name),
    };
    n.essential(tr!(
        "holding it: run `shm-demo sem-wait --kind {kind} {other}` in another terminal, then \
         press Enter here to give it (or kill -9 {pid} to see what a dead holder leaves)",
        kind = kind.word(),
        other,
        pid = nix::unistd::getpid()
    ));
    enter();
    lock.give(n)?;
    n.essential(tr!(
        "given: the waiter can take it now; press Enter to remove it (the waiter should be done)"
    ));
    enter();
    drop(lock);
    print_summary(format_args!("summary: kind={} holder=done", kind.word()))
}

/// Waits for a line on standard input; its end counts as Enter too, so that a script or
/// a test can answer by closing it.
fn enter() {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

/// `sem-wait`: opens the holder's semaphore and takes it within `timeout`; gives it back
/// if it took it.
pub fn wait(n: &Narrator, kind: Kind, place: &Place, timeout: Duration) -> Result<()> {
    not_unnamed(kind)?;
    let lock = open_lock(n, kind, place)?;
    let took = lock.take_within(n, timeout)?;
    if took {
        n.announce(tr!("took it from the holder; giving it back"));
        lock.give(n)?;
    } else {
        n.announce(tr!(
            "timed out: the holder still has it, or died holding it (no SEM_UNDO gave it back)"
        ));
    }
    drop(lock);
    print_summary(format_args!(
        "summary: kind={} waiter={}",
        kind.word(),
        if took { "took" } else { "timed_out" }
    ))
}
