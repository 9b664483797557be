//! The narrated calls of the key-based System V IPC of note 002 (shared memory segments
//! and semaphore sets) and of POSIX named semaphores, one function per call, named as in
//! the manual: [`ftok`], [`shmget`], [`shmctl_stat`], [`shmctl_rmid`], [`semget`],
//! [`semop`], [`semtimedop`], [`semctl_setval`], [`semctl_getval`], [`semctl_stat`],
//! [`semctl_rmid`], [`sem_open`], [`sem_close`], [`sem_unlink`]. `shmat` and `shmdt`
//! make and undo a mapping, so they are [`common::mapping::Mapping`]'s (where the
//! `unsafe` of every mapping is), narrated there.
//!
//! Each builds its line from its typed arguments, the way the man page writes the call:
//!
//! ```text
//! [producer 4242] shmget(0x53020f3a, 4608, IPC_CREAT|IPC_EXCL|0600) = 32769
//! [holder 4243] semop(5, {0, -1, SEM_UNDO}, 1) = 0
//! [waiter 4244] semtimedop(5, {0, -1, SEM_UNDO}, 1, 2000ms) ...
//! ```
//!
//! nix wraps none of these, so the calls go to the C library (libc) here, each `unsafe`
//! block with the reason it is sound. See also: svipc(7), shmget(2), shmctl(2),
//! semget(2), semop(2), semctl(2), sem_overview(7), sem_open(3), sem_unlink(3).

use std::ffi::CString;
use std::ptr::NonNull;
use std::time::Duration;

use common::narrate::Shown;
use common::{Narrator, Result};
use nix::errno::Errno;

pub use common::sysv::{Get, Key, ftok, key_shown};

// ---------------------------------------------------------------------------------------
// Shared memory segments (shmget(2), shmctl(2)).

/// `shmget(2)`: the identifier of the segment of `size` bytes for `key`. An existing
/// segment smaller than `size` is EINVAL; `size` 0 opens one of any size.
pub fn shmget(n: &Narrator, key: Key, size: usize, how: Get) -> Result<i32> {
    let (shown, flags) = how.flags();
    n.call(
        format_args!("shmget({}, {size}, {shown})", key_shown(key)),
        || {
            // SAFETY: shmget takes plain integers.
            Errno::result(unsafe { libc::shmget(key, size, flags) })
        },
    )
}

/// Whether a segment has `key` now (a silent `shmget(key, 0, 0)`): anything but ENOENT
/// counts as yes, so that the caller's narrated `shmget` reports the error itself.
pub fn key_has_segment(key: Key) -> bool {
    // SAFETY: shmget takes plain integers; size 0 and no flags only look the key up.
    let id = unsafe { libc::shmget(key, 0, 0) };
    id != -1 || Errno::last() != Errno::ENOENT
}

/// The `mode` bit the kernel sets on a segment that `IPC_RMID` marked for destruction
/// while processes still had it attached (`SHM_DEST` in linux/shm.h; `ipcs -m` shows it
/// as the status "dest").
pub const SHM_DEST: u32 = 0o1000;

/// What `shmctl(IPC_STAT)` says about a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The key it was made for (`shm_perm.__key`; 0 once it is marked for destruction).
    pub key: Key,
    /// Its size in bytes (`shm_segsz`).
    pub size: usize,
    /// Processes that have it attached (`shm_nattch`), the `nattch` of `ipcs -m`.
    pub nattch: u64,
    /// The pid that created it (`shm_cpid`).
    pub creator_pid: i32,
    /// The pid of the last `shmat` or `shmdt` (`shm_lpid`).
    pub last_pid: i32,
    /// The effective uid of its creator (`shm_perm.cuid`).
    pub creator: u32,
    /// Its owner's uid (`shm_perm.uid`).
    pub owner: u32,
    /// Permission bits and `SHM_DEST` (`shm_perm.mode`).
    pub mode: u32,
}

impl Segment {
    /// Whether `IPC_RMID` marked it: it goes when the last process detaches.
    pub fn marked(&self) -> bool {
        self.mode & SHM_DEST != 0
    }
}

impl Shown for Segment {
    fn shown(&self) -> String {
        format!(
            "0   (shm_segsz={}, shm_nattch={}, shm_cpid={}, shm_lpid={})",
            self.size, self.nattch, self.creator_pid, self.last_pid
        )
    }
}

/// `shmctl(id, IPC_STAT, &ds)` without narration: for `status`, which looks at many.
pub fn shm_stat(id: i32) -> nix::Result<Segment> {
    // SAFETY: shmid_ds is plain data, for which all zero bytes are a valid value.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is valid for the kernel to write a shmid_ds into.
    Errno::result(unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) })?;
    Ok(Segment {
        key: ds.shm_perm.__key,
        size: ds.shm_segsz,
        nattch: ds.shm_nattch,
        creator_pid: ds.shm_cpid,
        last_pid: ds.shm_lpid,
        creator: ds.shm_perm.cuid,
        owner: ds.shm_perm.uid,
        mode: u32::from(ds.shm_perm.mode),
    })
}

/// `shmctl(id, IPC_STAT, &ds)`: what the kernel knows about the segment.
pub fn shmctl_stat(n: &Narrator, id: i32) -> Result<Segment> {
    n.call(format_args!("shmctl({id}, IPC_STAT, &ds)"), || shm_stat(id))
}

/// `shmctl(id, IPC_RMID, NULL)`: removes the segment, or, while processes have it
/// attached, marks it for destruction (its key is freed at once; the memory goes with
/// the last `shmdt`).
pub fn shmctl_rmid(n: &Narrator, id: i32) -> Result<()> {
    n.call(format_args!("shmctl({id}, IPC_RMID, NULL)"), || {
        // SAFETY: IPC_RMID reads no buffer; a null pointer is what shmctl(2) expects.
        Errno::result(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
    })
}

/// The identifiers of every segment the kernel has, as `ipcs -m` lists them: the
/// second column of `/proc/sysvipc/shm` (proc(5)). Not narrated: a look.
pub fn all_segments() -> Vec<i32> {
    ids_in("/proc/sysvipc/shm")
}

/// The identifiers of every semaphore set, as `ipcs -s` lists them
/// (`/proc/sysvipc/sem`).
pub fn all_sets() -> Vec<i32> {
    ids_in("/proc/sysvipc/sem")
}

/// The second column of each line after the heading of a `/proc/sysvipc` table.
fn ids_in(table: &str) -> Vec<i32> {
    std::fs::read_to_string(table)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Semaphore sets (semget(2), semop(2), semctl(2)).

/// One operation of a `semop`: on semaphore `num`, add `delta` (-1 takes one, waiting
/// while the value is 0; +1 gives one back), with `SEM_UNDO` or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// The semaphore in the set.
    pub num: u16,
    /// What to add to its value.
    pub delta: i16,
    /// `SEM_UNDO`: the kernel remembers the change and reverses it when the process
    /// exits, however it exits (semop(2)): a lock a killed holder had is given back.
    pub undo: bool,
}

impl Op {
    fn raw(self) -> libc::sembuf {
        libc::sembuf {
            sem_num: self.num,
            sem_op: self.delta,
            sem_flg: if self.undo { libc::SEM_UNDO as i16 } else { 0 },
        }
    }

    fn shown(ops: &[Op]) -> String {
        let each: Vec<String> = ops
            .iter()
            .map(|op| {
                let flags = if op.undo { "SEM_UNDO" } else { "0" };
                format!("{{{}, {}, {flags}}}", op.num, op.delta)
            })
            .collect();
        format!("{}, {}", each.join(", "), ops.len())
    }
}

/// `semget(2)`: the identifier of the set of `nsems` semaphores for `key`. A new set's
/// semaphores start at 0 (Linux; POSIX leaves them undefined, so `semctl(SETVAL)` sets
/// them).
pub fn semget(n: &Narrator, key: Key, nsems: i32, how: Get) -> Result<i32> {
    let (shown, flags) = how.flags();
    n.call(
        format_args!("semget({}, {nsems}, {shown})", key_shown(key)),
        || {
            // SAFETY: semget takes plain integers.
            Errno::result(unsafe { libc::semget(key, nsems, flags) })
        },
    )
}

/// `semop(2)`: makes all of `ops` at once, waiting for as long as it takes (a signal
/// that interrupts it, EINTR, makes it again).
pub fn semop(n: &Narrator, id: i32, ops: &[Op]) -> Result<()> {
    let mut raw: Vec<libc::sembuf> = ops.iter().map(|op| op.raw()).collect();
    n.call_blocking(format_args!("semop({id}, {})", Op::shown(ops)), || {
        loop {
            // SAFETY: `raw` holds `raw.len()` sembufs, valid for the call.
            match Errno::result(unsafe { libc::semop(id, raw.as_mut_ptr(), raw.len()) }) {
                Err(Errno::EINTR) => continue,
                other => return other.map(drop),
            }
        }
    })
}

mod c {
    unsafe extern "C" {
        /// glibc's `semtimedop(2)`, which the libc crate does not declare.
        pub fn semtimedop(
            semid: libc::c_int,
            sops: *mut libc::sembuf,
            nsops: libc::size_t,
            timeout: *const libc::timespec,
        ) -> libc::c_int;
    }
}

/// `semtimedop(2)`: [`semop`], or EAGAIN once `timeout` has passed (a relative time,
/// unlike `sem_timedwait`'s deadline).
pub fn semtimedop(n: &Narrator, id: i32, ops: &[Op], timeout: Duration) -> Result<()> {
    let mut raw: Vec<libc::sembuf> = ops.iter().map(|op| op.raw()).collect();
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    n.call_blocking(
        format_args!(
            "semtimedop({id}, {}, {}ms)",
            Op::shown(ops),
            timeout.as_millis()
        ),
        || {
            // SAFETY: `raw` holds `raw.len()` sembufs and `ts` a timespec, both valid for
            // the call.
            Errno::result(unsafe { c::semtimedop(id, raw.as_mut_ptr(), raw.len(), &ts) }).map(drop)
        },
    )
}

/// `semctl(id, num, SETVAL, value)`: sets one semaphore's value.
pub fn semctl_setval(n: &Narrator, id: i32, num: i32, value: i32) -> Result<()> {
    n.call(format_args!("semctl({id}, {num}, SETVAL, {value})"), || {
        // SAFETY: SETVAL takes the value as its fourth argument (an int in the union
        // semun, which is passed as an int on Linux).
        Errno::result(unsafe { libc::semctl(id, num, libc::SETVAL, value) }).map(drop)
    })
}

/// `semctl(id, num, GETVAL)`: one semaphore's value.
pub fn semctl_getval(n: &Narrator, id: i32, num: i32) -> Result<i32> {
    n.call(format_args!("semctl({id}, {num}, GETVAL)"), || {
        // SAFETY: GETVAL takes no fourth argument.
        Errno::result(unsafe { libc::semctl(id, num, libc::GETVAL) })
    })
}

/// `semctl(id, num, GETPID)`: the pid of the last `semop` on one semaphore.
pub fn semctl_getpid(n: &Narrator, id: i32, num: i32) -> Result<i32> {
    n.call(format_args!("semctl({id}, {num}, GETPID)"), || {
        // SAFETY: GETPID takes no fourth argument.
        Errno::result(unsafe { libc::semctl(id, num, libc::GETPID) })
    })
}

/// What `semctl(IPC_STAT)` says about a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Set {
    /// The key it was made for.
    pub key: Key,
    /// Semaphores in the set (`sem_nsems`).
    pub nsems: u64,
    /// The effective uid of its creator (`sem_perm.cuid`).
    pub creator: u32,
    /// Its owner's uid (`sem_perm.uid`).
    pub owner: u32,
    /// Permission bits (`sem_perm.mode`).
    pub mode: u32,
}

impl Shown for Set {
    fn shown(&self) -> String {
        format!("0   (sem_nsems={})", self.nsems)
    }
}

/// `semctl(id, 0, IPC_STAT, &ds)` without narration.
pub fn sem_stat(id: i32) -> nix::Result<Set> {
    // SAFETY: semid_ds is plain data, for which all zero bytes are a valid value.
    let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes a semid_ds through the pointer given as the fourth
    // argument (the union semun's `buf`), which `ds` is valid for.
    Errno::result(unsafe { libc::semctl(id, 0, libc::IPC_STAT, &mut ds as *mut libc::semid_ds) })?;
    Ok(Set {
        key: ds.sem_perm.__key,
        nsems: ds.sem_nsems,
        creator: ds.sem_perm.cuid,
        owner: ds.sem_perm.uid,
        mode: u32::from(ds.sem_perm.mode),
    })
}

/// `semctl(id, 0, IPC_STAT, &ds)`: what the kernel knows about the set.
pub fn semctl_stat(n: &Narrator, id: i32) -> Result<Set> {
    n.call(format_args!("semctl({id}, 0, IPC_STAT, &ds)"), || {
        sem_stat(id)
    })
}

/// `semctl(id, 0, IPC_RMID)`: removes the set at once; processes waiting in `semop` on
/// it wake up with EIDRM.
pub fn semctl_rmid(n: &Narrator, id: i32) -> Result<()> {
    n.call(format_args!("semctl({id}, 0, IPC_RMID)"), || {
        // SAFETY: IPC_RMID takes no fourth argument.
        Errno::result(unsafe { libc::semctl(id, 0, libc::IPC_RMID) }).map(drop)
    })
}

// ---------------------------------------------------------------------------------------
// POSIX named semaphores (sem_overview(7)): /dev/shm/sem.NAME on Linux.

/// A named semaphore this process has open (`sem_open`), closed when dropped (or by
/// [`sem_close`]). The `sem_t` lives in a small mapping of `/dev/shm/sem.NAME` that
/// the C library made and owns.
#[derive(Debug)]
pub struct Named {
    at: NonNull<libc::sem_t>,
    name: String,
}

impl Named {
    /// The semaphore, for the C library: valid from `sem_open` until `sem_close`, which
    /// only `Drop` and [`sem_close`] call, consuming `self`.
    pub fn ptr(&self) -> *mut libc::sem_t {
        self.at.as_ptr()
    }

    /// The same, as the non-null pointer it is.
    pub fn at(&self) -> NonNull<libc::sem_t> {
        self.at
    }

    /// Its name, as given to `sem_open`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Shown for Named {
    fn shown(&self) -> String {
        format!("{:p}", self.at.as_ptr())
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        // SAFETY: the pointer came from sem_open and is closed only here (sem_close
        // forgets `self`).
        unsafe { libc::sem_close(self.at.as_ptr()) };
    }
}

/// `sem_open(3)`: opens the named semaphore `name` (one slash and a name), or with
/// `create` makes it (`O_CREAT|O_EXCL`, `mode`, starting at `value`).
pub fn sem_open(n: &Narrator, name: &str, create: Option<(u32, u32)>) -> Result<Named> {
    let shown = match create {
        Some((mode, value)) => format!("{name:?}, O_CREAT|O_EXCL, {:04o}, {value}", mode & 0o777),
        None => format!("{name:?}, 0"),
    };
    n.call(format_args!("sem_open({shown})"), || {
        let c = CString::new(name).map_err(|_| Errno::EINVAL)?;
        let sem = match create {
            // SAFETY: `c` is a valid string; with O_CREAT, sem_open reads a mode_t and
            // an unsigned int as its variadic arguments, which are given.
            Some((mode, value)) => unsafe {
                libc::sem_open(
                    c.as_ptr(),
                    libc::O_CREAT | libc::O_EXCL,
                    (mode & 0o777) as libc::c_uint,
                    value as libc::c_uint,
                )
            },
            // SAFETY: `c` is a valid string; without O_CREAT there are no more arguments.
            None => unsafe { libc::sem_open(c.as_ptr(), 0) },
        };
        if sem == libc::SEM_FAILED {
            return Err(Errno::last());
        }
        let at = NonNull::new(sem).ok_or(Errno::EINVAL)?;
        Ok(Named {
            at,
            name: name.to_string(),
        })
    })
}

/// `sem_close(3)`: closes this process's handle; the semaphore stays until unlinked.
pub fn sem_close(n: &Narrator, sem: Named) -> Result<()> {
    let sem = std::mem::ManuallyDrop::new(sem);
    n.call(format_args!("sem_close({})", sem.shown()), || {
        // SAFETY: the pointer came from sem_open; `sem` is not dropped, so it is closed
        // once.
        Errno::result(unsafe { libc::sem_close(sem.ptr()) }).map(drop)
    })
}

/// `sem_unlink(3)`: removes the name (`/dev/shm/sem.NAME`); processes that have it open
/// keep using it until they close it.
pub fn sem_unlink(n: &Narrator, name: &str) -> Result<()> {
    n.call(format_args!("sem_unlink({name:?})"), || {
        let c = CString::new(name).map_err(|_| Errno::EINVAL)?;
        // SAFETY: `c` is a valid NUL-terminated string.
        Errno::result(unsafe { libc::sem_unlink(c.as_ptr()) }).map(drop)
    })
}
