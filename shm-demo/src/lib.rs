//! shm-demo: POSIX shared memory, and why it needs synchronisation.
//!
//! Follows `003_5ebb38e0b36eb300.txt`, "3.7.1 POSIX 공유 메모리"; `000_5e93fa56600d397d.txt`,
//! "4. 공유 메모리 (Shared Memory)"; `002_c8d20cee4fe5d0b4.txt`, "3. Shared Memory (공유
//! 메모리)"; and `004_591acb9035e2e6fa.txt`, "공유메모리(shared memory)", with the
//! synchronisation problem of `001_ffa78007200462ad.txt`, "2. IPC 모델 - Shared Memory".
//!
//! The producer makes a shared memory object with `shm_open`, sizes it with `ftruncate`
//! and maps it with `mmap`; the consumer opens and maps the same object. From then on the
//! data moves with ordinary loads and stores, no system call per message. What the
//! kernel no longer does, the two processes must do themselves: agree on a layout
//! ([`region`]), and take turns, here through a ring of slots with two process-shared
//! semaphores (`--wait block`) or by spinning on two counters (`--wait spin`). A second
//! ring (`--ring fast`) shows how queues that must be quick take turns instead.
//!
//! One lesson a module, each a listing of the calls it teaches:
//!
//! - `object`: [`create`] and [`open`], the object and its mapping as note 003 lists
//!   the calls, and [`clean`], `shm_unlink` of an object a killed run left behind;
//! - `ring`: `put`, `take`, [`produce`] and [`consume`], the bounded buffer of the
//!   textbook, their roles, and [`exchange`], both roles in one terminal;
//! - `fast`: the fast ring's `put` and `take`: a stamp in each slot, private positions,
//!   slots padded to cache lines, and a wait that spins briefly before it sleeps on a
//!   futex ([`put`] and [`take`] choose the ring the region holds);
//! - `false_sharing`: [`false_sharing`], two counters in one cache line against two
//!   counters a line apart, measured;
//! - `race`: [`race`], two processes incrementing one counter, with and without
//!   synchronisation;
//! - [`sys`]: the narrated calls of this mechanism only (`shm_open`, `sem_*`, `futex`), where
//!   the `unsafe` of the semaphores and the futexes is;
//! - [`segment`]: the same ring in a System V segment found by a key (note 002's
//!   `shmget`, `shmat`, `shmdt`, `shmctl`), `--api sysv`;
//! - [`sem`]: the three kinds of semaphore side by side (unnamed, POSIX named, System
//!   V), [`holder`]: what each does when its holder is killed, and [`locked_race`]: the
//!   race with each of them as the lock (`race --lock`), and [`sem_roles`]: a named or
//!   System V semaphore between two terminals (`sem-hold`, `sem-wait`);
//! - [`leftovers`]: what `status` lists and `clean` removes of the semaphores;
//! - [`ipc_sys`]: the narrated System V calls and POSIX named-semaphore calls.
//!
//! Nothing in the region is trusted (see [`region`]), nor is the object itself: a
//! consumer refuses an object another user created under its name, checks with `fstat`
//! that the producer has not shrunk it, and turns the SIGBUS that a shrinking between
//! the check and the access raises into a clear error ([`common::fault`]).
//!
//! Usage: `cargo run -p shm-demo -- --help`. See also: shm_overview(7), shm_open(3),
//! mmap(2), sem_overview(7), and TLPI chapters 48 to 54.

mod false_sharing;
mod fast;
pub mod holder;
pub mod ipc_sys;
pub mod leftovers;
pub mod locked_race;
mod object;
mod race;
pub mod region;
mod ring;
pub mod segment;
pub mod sem;
pub mod sem_roles;
pub mod sys;

pub use false_sharing::{FalseSharing, false_sharing};
pub use fast::SPIN_FOR;
pub use object::{DEFAULT_MODE, clean, create, create_with_mode, open};
pub use race::{Increment, RaceResult, race};
pub use ring::{consume, consumer_role, exchange, produce, producer_role};

use common::{Error, Narrator, Result, tr};
use region::{Region, Ring, Shape};

/// Puts message `seq` (a whole frame) into the ring the region holds: the textbook's
/// (`ring.rs`) or the fast one (`fast.rs`). The producer's step, which the bench
/// measures too.
pub fn put(n: &Narrator, region: &Region, seq: u64, frame: &[u8]) -> Result<()> {
    match region.shape().ring {
        Ring::Textbook => ring::put(n, region, seq, frame),
        Ring::Fast => fast::put(n, region, seq, frame),
    }
}

/// Takes message `seq` out of the ring the region holds into `out`. The consumer's
/// step, which the bench measures too.
pub fn take(n: &Narrator, region: &Region, seq: u64, out: &mut Vec<u8>) -> Result<()> {
    match region.shape().ring {
        Ring::Textbook => ring::take(n, region, seq, out),
        Ring::Fast => fast::take(n, region, seq, out),
    }
}

/// The program's name, which starts its error lines.
const PROGRAM: &str = "shm-demo";
/// A consumer asks the object's size with `fstat` before every this many messages (and
/// whenever it wakes up to check on the producer): an access window. Asking before every
/// message would add a system call to each, which shared memory exists to avoid; a
/// shrinking inside a window is caught as SIGBUS by [`common::fault`].
pub const SIZE_WINDOW: u64 = 1024;

/// The default name: `/ipc-demo-shm-UID`, so that two users of one machine do not meet.
pub fn default_name() -> String {
    format!("/ipc-demo-shm-{}", nix::unistd::Uid::current())
}

/// The object's name: `name` if given (`--name`), else [`default_name`]. A POSIX shared
/// memory name is one slash and a name (shm_overview(7)); anything else is a usage error.
pub fn object_name(name: Option<String>) -> Result<String> {
    let name = name.unwrap_or_else(default_name);
    if !name.starts_with('/') || name.len() < 2 || name[1..].contains('/') {
        return Err(Error::usage(tr!(
            "--name {name}: a shared memory name is one slash and a name, like /ipc-demo-shm",
            name = format!("{name:?}")
        )));
    }
    Ok(name)
}

/// The `ring` for messages of `size` payload bytes in `slots` slots, or a usage error if
/// it would be over the 1 GiB a region may have.
pub fn ring_shape(ring: Ring, slots: u32, size: usize) -> Result<Shape> {
    Shape::new(ring, slots, size + common::message::OVERHEAD).ok_or_else(|| {
        Error::usage(tr!(
            "{slots} slots of {size} bytes is over the 1 GiB this demo allows for a region",
            slots,
            size
        ))
    })
}
