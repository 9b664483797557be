//! Semaphores as an IPC mechanism of their own (note 002, item 6 of its list of
//! techniques): the three kinds Linux has, side by side, each used as a lock between two
//! processes.
//!
//! - unnamed and process-shared: a `sem_t` that lives in memory both processes map,
//!   made with `sem_init(sem, 1, value)` (the ring's `full` and `empty` are two);
//! - POSIX named: `sem_open("/NAME", O_CREAT|O_EXCL, 0600, value)`, found by name by
//!   any process, even an unrelated one in another terminal; on Linux it is the file
//!   `/dev/shm/sem.NAME`, which stays until `sem_unlink`;
//! - System V: a set made with `semget(key, nsems, IPC_CREAT|IPC_EXCL|0600)`, changed
//!   with `semop`, set and removed with `semctl`; `ipcs -s` lists it, and it stays until
//!   `semctl(IPC_RMID)`.
//!
//! The difference that matters most is what happens when a process dies holding one
//! (see `holder`): only System V, with `SEM_UNDO`, gives the lock back.

use std::time::Duration;

use common::cleanup::Guard;
use common::mapping::Mapping;
use common::{Error, HintOn, Narrator, Result, say, tr};
use nix::errno::Errno;

use crate::ipc_sys::{self, Get, Key, Named, Op};
use crate::sys::{self, Sem};

/// The three kinds of semaphore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// `sem_init(sem, 1, value)` on a `sem_t` in shared memory.
    Unnamed,
    /// `sem_open("/NAME", ...)`: `/dev/shm/sem.NAME`.
    Named,
    /// `semget(key, 1, ...)`, `semop`, `semctl`: `ipcs -s`.
    Sysv,
}

impl Kind {
    /// The kind as the command line and the summary write it.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Unnamed => "unnamed",
            Kind::Named => "named",
            Kind::Sysv => "sysv",
        }
    }
}

/// Where a lock of each kind is found: the POSIX name of a named one, the key of a
/// System V set. The defaults are this user's (`/ipc-demo-sem-UID`, and
/// `ftok(private folder, 's')`), so that `shm-demo clean` can find what a killed run
/// left; a test, or a second run beside the first, gives its own (`--sem-name`, `--key`).
#[derive(Debug, Clone)]
pub struct Place {
    /// The named semaphore's name.
    pub name: String,
    /// The System V key.
    pub key: Key,
}

/// The project letter of the semaphore set's default key.
pub const SET_PROJECT: u8 = b's';

/// The default name of the named semaphore: `/ipc-demo-sem-UID`.
pub fn default_sem_name() -> String {
    format!("/ipc-demo-sem-{}", nix::unistd::Uid::current())
}

impl Place {
    /// The place given on the command line, or the default for what is not given (the
    /// key only when `kind` needs one, since `ftok` is narrated).
    pub fn resolve(
        n: &Narrator,
        kind: Option<Kind>,
        name: Option<String>,
        key: Option<Key>,
    ) -> Result<Place> {
        let name = name.unwrap_or_else(default_sem_name);
        check_sem_name(&name)?;
        let key = match key {
            Some(key) => key,
            None if kind == Some(Kind::Sysv) => default_key(n, SET_PROJECT)?,
            None => libc::IPC_PRIVATE,
        };
        Ok(Place { name, key })
    }
}

/// A named semaphore's name is one slash and a name without another slash (sem_overview(7)).
pub fn check_sem_name(name: &str) -> Result<()> {
    if !name.starts_with('/') || name.len() < 2 || name[1..].contains('/') || name.len() > 250 {
        return Err(Error::usage(tr!(
            "--sem-name {name}: a semaphore's name is one slash and a name, like /ipc-demo-sem",
            name = format!("{name:?}")
        )));
    }
    Ok(())
}

/// The demo's default key for `project`: `ftok` of this user's private folder, which
/// exists for as long as the user uses the demos.
pub fn default_key(n: &Narrator, project: u8) -> Result<Key> {
    let folder = common::paths::private_dir()?;
    ipc_sys::ftok(n, &folder, project)
}

/// One semaphore used as a lock, of any kind, with what removes it.
pub enum Lock<'m> {
    /// A `sem_t` in a mapping both processes share.
    Unnamed(Sem<'m>),
    /// A named semaphore, open in this process.
    Named(Named),
    /// A System V set of one semaphore; `undo` says whether `semop` uses `SEM_UNDO`.
    Sysv {
        /// The set's identifier.
        id: i32,
        /// `SEM_UNDO` on each operation.
        undo: bool,
    },
}

// ANCHOR: make_lock
/// Makes a semaphore of `kind` with value `value` (1: a free lock): in `shared` (the
/// unnamed kind, at offset `at`; it needs memory both processes map), or at `place`. Returns it with a guard that removes it
/// (`sem_unlink`, `semctl(IPC_RMID)`; an unnamed one goes with its memory).
pub fn make<'m>(
    n: &Narrator,
    kind: Kind,
    shared: Option<&'m Mapping>,
    at: usize,
    place: &Place,
    value: u32,
    undo: bool,
) -> Result<(Lock<'m>, Option<Guard>)> {
    match kind {
        Kind::Unnamed => {
            let shared = shared.ok_or_else(|| {
                Error::usage(tr!("an unnamed semaphore needs memory both processes map"))
            })?;
            let sem = Sem::at(shared, at, "lock")?;
            sys::sem_init(n, sem, value)?;
            Ok((Lock::Unnamed(sem), None))
        }
        Kind::Named => {
            let sem = ipc_sys::sem_open(n, &place.name, Some((0o600, value))).hint_on(
                Errno::EEXIST,
                tr!(
                    "a semaphore has that name already (ls -l /dev/shm/sem.*); `shm-demo clean` \
                     removes one a killed run left"
                ),
            )?;
            let guard = unlink_on_drop(n, &place.name);
            say!(
                n,
                "look: ls -l /dev/shm/sem.{name}",
                name = place.name.trim_start_matches('/')
            );
            Ok((Lock::Named(sem), Some(guard)))
        }
        Kind::Sysv => {
            let id = ipc_sys::semget(n, place.key, 1, Get::New { mode: 0o600 }).hint_on(
                Errno::EEXIST,
                tr!("the key has a set already (ipcs -s); `shm-demo clean --api sysv` removes one a killed run left"),
            )?;
            let guard = rmid_on_drop(n, id);
            ipc_sys::semctl_setval(n, id, 0, i32::try_from(value).unwrap_or(i32::MAX))?;
            say!(n, "look: ipcs -s -i {id}", id);
            Ok((Lock::Sysv { id, undo }, Some(guard)))
        }
    }
}
// ANCHOR_END: make_lock

/// A guard that `sem_unlink`s `name`.
fn unlink_on_drop(n: &Narrator, name: &str) -> Guard {
    let (n, name) = (n.clone(), name.to_string());
    Guard::new(move || {
        // A failure here has nobody left to report to but the narration itself.
        let _ = ipc_sys::sem_unlink(&n, &name);
    })
}

/// A guard that removes the set `id` with `semctl(IPC_RMID)`.
pub fn rmid_on_drop(n: &Narrator, id: i32) -> Guard {
    let n = n.clone();
    Guard::new(move || {
        let _ = ipc_sys::semctl_rmid(&n, id);
    })
}

impl Lock<'_> {
    /// The kind of this lock.
    pub fn kind(&self) -> Kind {
        match self {
            Lock::Unnamed(_) => Kind::Unnamed,
            Lock::Named(_) => Kind::Named,
            Lock::Sysv { .. } => Kind::Sysv,
        }
    }

    fn op(&self, delta: i16) -> Op {
        let undo = matches!(self, Lock::Sysv { undo: true, .. });
        Op {
            num: 0,
            delta,
            undo,
        }
    }

    // ANCHOR: take_give
    /// Takes the lock, waiting for as long as it takes: `sem_wait`, or `semop` of -1.
    pub fn take(&self, n: &Narrator) -> Result<()> {
        match self {
            Lock::Unnamed(sem) => sys::sem_wait(n, *sem),
            Lock::Named(sem) => sys::sem_wait(n, Sem::named(sem, "lock")),
            Lock::Sysv { id, .. } => ipc_sys::semop(n, *id, &[self.op(-1)]),
        }
    }

    /// Gives the lock back: `sem_post`, or `semop` of +1.
    pub fn give(&self, n: &Narrator) -> Result<()> {
        match self {
            Lock::Unnamed(sem) => sys::sem_post(n, *sem),
            Lock::Named(sem) => sys::sem_post(n, Sem::named(sem, "lock")),
            Lock::Sysv { id, .. } => ipc_sys::semop(n, *id, &[self.op(1)]),
        }
    }

    /// Takes the lock if that happens within `timeout`: `sem_timedwait` (a deadline on
    /// the realtime clock) or `semtimedop` (a relative time). `Ok(false)`: the time ran
    /// out (ETIMEDOUT, or EAGAIN for `semtimedop`), which is a result here, not an error.
    pub fn take_within(&self, n: &Narrator, timeout: Duration) -> Result<bool> {
        let tried = match self {
            Lock::Unnamed(sem) => sys::sem_timedwait(n, *sem, timeout),
            Lock::Named(sem) => sys::sem_timedwait(n, Sem::named(sem, "lock"), timeout),
            Lock::Sysv { id, .. } => ipc_sys::semtimedop(n, *id, &[self.op(-1)], timeout),
        };
        match tried {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.errno(), Some(Errno::ETIMEDOUT | Errno::EAGAIN)) => Ok(false),
            Err(e) => Err(e),
        }
    }
    // ANCHOR_END: take_give

    /// Its value now (`sem_getvalue`, `semctl(GETVAL)`): 1 free, 0 taken.
    pub fn value(&self, n: &Narrator) -> Result<i32> {
        match self {
            Lock::Unnamed(sem) => sys::sem_getvalue(n, *sem),
            Lock::Named(sem) => sys::sem_getvalue(n, Sem::named(sem, "lock")),
            Lock::Sysv { id, .. } => ipc_sys::semctl_getval(n, *id, 0),
        }
    }
}

/// A timeout given on the command line in milliseconds, within what a lesson should wait.
pub fn timeout_ms(text: &str) -> std::result::Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(ms) if (1..=600_000).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(tr!("a time in milliseconds from 1 to 600000")),
    }
}

/// A System V key from the command line: decimal, or hex with 0x, as `ipcs` prints it.
pub fn parse_key(text: &str) -> std::result::Result<Key, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse::<u32>().ok(),
    };
    match parsed {
        // 0 is IPC_PRIVATE, which no other process can find: not a key to share.
        Some(key) if key != 0 => Ok(key as Key),
        _ => Err(tr!(
            "a key is a number other than 0, in decimal or as 0x hex (ipcs shows keys in hex)"
        )),
    }
}
