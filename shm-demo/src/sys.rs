//! The narrated calls of POSIX shared memory, of its process-shared semaphores and of
//! the fast ring's futexes, one function per call, named as in the manual (msgq-demo's
//! `sysv.rs` is the model).
//!
//! Each builds its line from its typed arguments, the way the man page writes the call:
//!
//! ```text
//! [producer 4242] shm_open("/ipc-demo-shm-1000", O_CREAT|O_EXCL|O_RDWR, 0600) = 3
//! [producer 4242] sem_init(&full, 1, 0) = 0
//! [consumer 4243] sem_timedwait(&full, now+200ms) ...
//! [consumer 4243] sem_timedwait(&full, now+200ms) = 0
//! ```
//!
//! The calls that can block or that wake the other process (`sem_timedwait`, `sem_wait`,
//! `sem_post`) print their line before and after ([`Narrator::call_blocking`]), so that
//! with both processes on one terminal a `sem_post` is on the screen before the
//! `sem_timedwait` it ends returns. The calls every demo makes (`ftruncate`, `close`,
//! `mmap`) are in `common::sys` and `common::mapping`.
//!
//! The semaphores are C library objects that live inside the shared mapping; the calls
//! on them are the `unsafe` of shm-demo, each block with the reason it is sound. See
//! also: shm_open(3), shm_unlink(3), sem_init(3), sem_wait(3), sem_post(3),
//! sem_overview(7), futex(2), futex(7).

use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use common::mapping::{Mapping, Outside};
use common::{Narrator, Result, sys};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman;
use nix::sys::stat::Mode;

/// `O_CREAT|O_EXCL|O_RDWR`, in the order shm_open(3) writes it: the flags that say how
/// to create, then the access mode.
fn oflags(flags: OFlag) -> String {
    let shown = sys::oflags(flags);
    match shown.split_once('|') {
        Some((access, rest)) => format!("{rest}|{access}"),
        None => shown,
    }
}

/// `shm_open(3)`: creates (with `O_CREAT`) or opens the shared memory object `name`, a
/// file in `/dev/shm` on Linux, and returns a descriptor for it.
pub fn shm_open(n: &Narrator, name: &str, flags: OFlag, mode: Mode) -> Result<OwnedFd> {
    let mode_shown = if flags.contains(OFlag::O_CREAT) {
        sys::mode(mode)
    } else {
        "0".to_string()
    };
    n.call(
        format_args!("shm_open({name:?}, {}, {mode_shown})", oflags(flags)),
        || mman::shm_open(name, flags, mode),
    )
}

/// `shm_unlink(3)`: removes the name; the object goes when the last process unmaps it.
pub fn shm_unlink(n: &Narrator, name: &str) -> Result<()> {
    n.call(format_args!("shm_unlink({name:?})"), || {
        mman::shm_unlink(name)
    })
}

/// A process-shared semaphore that lives in a mapping: a place the mapping checked
/// (inside, aligned for a `sem_t`, writable), borrowed from it, and the name the
/// narration gives it (`&full`).
#[derive(Debug, Clone, Copy)]
pub struct Sem<'m> {
    at: NonNull<libc::sem_t>,
    name: &'static str,
    _mapping: PhantomData<&'m Mapping>,
}

impl<'m> Sem<'m> {
    /// The `sem_t` at `offset` of `map`, called `name` in the narration.
    pub fn at(map: &'m Mapping, offset: usize, name: &'static str) -> Result<Sem<'m>, Outside> {
        Ok(Sem {
            at: map.ptr_at::<libc::sem_t>(offset)?,
            name,
            _mapping: PhantomData,
        })
    }

    /// A named semaphore (`sem_open`), called `name` in the narration: the same calls
    /// work on it as on one in a mapping.
    pub fn named(sem: &'m crate::ipc_sys::Named, name: &'static str) -> Sem<'m> {
        Sem {
            // The C library's pointer, valid until sem_close, which only consumes `sem`,
            // so not while this Sem borrows it.
            at: sem.at(),
            name,
            _mapping: PhantomData,
        }
    }

    /// The semaphore, for the C library.
    ///
    /// Every call below may rely on this: the pointer is inside a mapping that outlives
    /// `'m`, aligned for a `sem_t`, and writable (Mapping::ptr_at checked the three). A
    /// peer that scribbles on the 32 bytes can make a call fail (EINVAL) or count wrong,
    /// not reach outside them: a glibc semaphore is a counter and a futex word within
    /// the `sem_t`.
    fn ptr(&self) -> *mut libc::sem_t {
        self.at.as_ptr()
    }
}

/// `sem_init(sem, 1, value)`: a semaphore shared between processes (`pshared` = 1: it
/// must then live in memory they share, sem_init(3)), starting at `value`.
pub fn sem_init(n: &Narrator, sem: Sem<'_>, value: u32) -> Result<()> {
    n.call(format_args!("sem_init(&{}, 1, {value})", sem.name), || {
        // SAFETY: see Sem::ptr; sem_init may be called on any bytes, initialised or not,
        // as long as no process uses the semaphore yet, which the producer ensures by
        // publishing the magic only afterwards.
        Errno::result(unsafe { libc::sem_init(sem.ptr(), 1, value) }).map(drop)
    })
}

/// `sem_post(sem)`: adds one, and wakes a process waiting in `sem_wait`, if any.
pub fn sem_post(n: &Narrator, sem: Sem<'_>) -> Result<()> {
    n.call_blocking(format_args!("sem_post(&{})", sem.name), || {
        // SAFETY: see Sem::ptr; the semaphore was initialised before the magic was
        // published, and both sides use it only after that.
        Errno::result(unsafe { libc::sem_post(sem.ptr()) }).map(drop)
    })
}

/// `sem_wait(sem)`: takes one, waiting for as long as it takes. A signal handler that
/// interrupts it (EINTR, which sem_wait(3) returns even with SA_RESTART) is not the end
/// of the wait: it is made again.
pub fn sem_wait(n: &Narrator, sem: Sem<'_>) -> Result<()> {
    n.call_blocking(format_args!("sem_wait(&{})", sem.name), || {
        loop {
            // SAFETY: as in sem_post.
            match Errno::result(unsafe { libc::sem_wait(sem.ptr()) }) {
                Err(Errno::EINTR) => continue,
                other => return other.map(drop),
            }
        }
    })
}

/// `sem_timedwait(sem, now + timeout)`: takes one, or fails with ETIMEDOUT once
/// `timeout` has passed. A semaphore does not notice that the process that should post
/// it has died, so a side that waits for its peer waits in slices and checks the peer
/// between them.
pub fn sem_timedwait(n: &Narrator, sem: Sem<'_>, timeout: Duration) -> Result<()> {
    n.call_blocking(
        format_args!(
            "sem_timedwait(&{}, now+{}ms)",
            sem.name,
            timeout.as_millis()
        ),
        || {
            let deadline = common::timing::realtime_deadline(timeout)?;
            // SAFETY: as in sem_post; `deadline` is valid for the call.
            Errno::result(unsafe { libc::sem_timedwait(sem.ptr(), &deadline) }).map(drop)
        },
    )
}

/// `sem_trywait(sem)`: takes one if there is one, without waiting: `Ok(false)` (and the
/// line `= -1 EAGAIN`) if there was none.
pub fn sem_trywait(n: &Narrator, sem: Sem<'_>) -> Result<bool> {
    let tried = n.call(format_args!("sem_trywait(&{})", sem.name), || {
        // SAFETY: as in sem_post.
        Errno::result(unsafe { libc::sem_trywait(sem.ptr()) }).map(drop)
    });
    match tried {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(Errno::EAGAIN) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What `sem_getvalue` returns (0) and what it wrote into `value`.
struct Value(i32);

impl common::narrate::Shown for Value {
    fn shown(&self) -> String {
        format!("0   (value={})", self.0)
    }
}

/// `sem_getvalue(sem, &value)`: the semaphore's value now (0: taken, or none left).
pub fn sem_getvalue(n: &Narrator, sem: Sem<'_>) -> Result<i32> {
    n.call(format_args!("sem_getvalue(&{}, &value)", sem.name), || {
        let mut value: libc::c_int = 0;
        // SAFETY: as in sem_post; `value` is valid for sem_getvalue to write.
        Errno::result(unsafe { libc::sem_getvalue(sem.ptr(), &mut value) })?;
        Ok(Value(value))
    })
    .map(|value| value.0)
}

/// `shmat(shmid, NULL, 0)`: attaches a System V segment; see [`Mapping::shmat`], where
/// the `unsafe` of every mapping is. [`Mapping::munmap`] detaches it with `shmdt`.
pub fn shmat(n: &Narrator, shmid: i32, len: usize, prot: common::mapping::Prot) -> Result<Mapping> {
    Mapping::shmat(n, shmid, len, prot)
}

/// A futex word that lives in a mapping (the fast ring's `data` and `room`): a `u32` the
/// mapping checked (inside, aligned), and the name the narration gives it (`&data`).
///
/// A futex (futex(2)) is the kernel's smallest way to sleep: "put me to sleep if this
/// word still holds this value", and "wake whoever sleeps on this word". glibc builds its
/// mutexes and semaphores on it; the fast ring uses it bare, to sleep only when spinning
/// did not help and to make a system call to wake the other side only when it sleeps.
#[derive(Debug, Clone, Copy)]
pub struct Futex<'m> {
    word: &'m AtomicU32,
    name: &'static str,
}

impl<'m> Futex<'m> {
    /// The `u32` at `offset` of `map`, called `name` in the narration.
    pub fn at(map: &'m Mapping, offset: usize, name: &'static str) -> Result<Futex<'m>, Outside> {
        Ok(Futex {
            word: map.u32_at(offset)?,
            name,
        })
    }

    /// The word, for the atomic loads and stores around the calls.
    pub fn word(&self) -> &'m AtomicU32 {
        self.word
    }

    /// The name the narration gives it (`data`, `room`).
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// `futex(&word, FUTEX_WAIT, expected, &timeout)`: sleeps while the word holds
/// `expected`, for at most `timeout`. Returns at once with EAGAIN if the word holds
/// something else already (the other side changed it between our last look and the
/// call: the check and the sleep are one step in the kernel, so no wake-up is lost), and
/// with ETIMEDOUT when the time is up, so that the caller can check that the other side
/// still lives.
pub fn futex_wait(n: &Narrator, f: Futex<'_>, expected: u32, timeout: Duration) -> Result<()> {
    n.call_blocking(
        format_args!(
            "futex(&{}, FUTEX_WAIT, {expected}, {{{}ms}})",
            f.name,
            timeout.as_millis()
        ),
        || {
            let timeout = libc::timespec {
                tv_sec: timeout.as_secs() as libc::time_t,
                tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
            };
            // SAFETY: the word is an aligned u32 inside a mapping that outlives the call
            // (Mapping::u32_at checked both). FUTEX_WAIT reads it atomically and sleeps;
            // it is not FUTEX_PRIVATE_FLAG because the word is in memory two processes
            // share (MAP_SHARED), and the kernel must find it by its page, not by this
            // process's address. `timeout` is a relative time, valid during the call;
            // the last two arguments are unused by FUTEX_WAIT.
            Errno::result(unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    f.word.as_ptr(),
                    libc::FUTEX_WAIT,
                    expected,
                    &timeout as *const libc::timespec,
                    std::ptr::null::<u32>(),
                    0u32,
                )
            })
            .map(drop)
        },
    )
}

/// `futex(&word, FUTEX_WAKE, count)`: wakes at most `count` processes sleeping on the
/// word, and returns how many it woke.
pub fn futex_wake(n: &Narrator, f: Futex<'_>, count: u32) -> Result<usize> {
    n.call_blocking(
        format_args!("futex(&{}, FUTEX_WAKE, {count})", f.name),
        || {
            // SAFETY: as in futex_wait; FUTEX_WAKE only looks the word's page up to find
            // who sleeps on it, and reads or writes nothing else (the other arguments
            // are unused).
            let woken = Errno::result(unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    f.word.as_ptr(),
                    libc::FUTEX_WAKE,
                    count,
                    std::ptr::null::<libc::timespec>(),
                    std::ptr::null::<u32>(),
                    0u32,
                )
            })?;
            Ok(usize::try_from(woken).unwrap_or(0))
        },
    )
}

/// `sched_getcpu(3)`: the CPU this process runs on right now (it may move right after).
/// Not a system call in practice: glibc reads it from memory the kernel keeps up to date
/// for each thread (rseq, or the vDSO). `None` if it cannot tell.
pub fn sched_getcpu() -> Option<u32> {
    // SAFETY: sched_getcpu takes no arguments and touches no memory of ours.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}

/// The first two CPUs this process may run on (sched_getaffinity(2)), or `None` if it
/// may run on only one.
pub fn two_cpus() -> Option<[usize; 2]> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    let mut allowed =
        (0..nix::sched::CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false));
    Some([allowed.next()?, allowed.next()?])
}

/// `sched_setaffinity(0, {cpu})`: this process runs on CPU `cpu` only, from now on.
pub fn sched_setaffinity(n: &Narrator, cpu: usize) -> Result<()> {
    n.call(format_args!("sched_setaffinity(0, {{{cpu}}})"), || {
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu)?;
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
    })
}
