//! The narrated calls of POSIX shared memory and of its process-shared semaphores, one
//! function per call, named as in the manual (msgq-demo's `sysv.rs` is the model).
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
//! sem_overview(7).

use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;
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

/// `fchmod(2)`: sets the permission bits of the object `fd` refers to, exactly (the
/// umask, which `shm_open` applies, does not apply here).
pub fn fchmod(n: &Narrator, fd: &impl AsFd, mode: Mode) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(format_args!("fchmod({raw}, {})", sys::mode(mode)), || {
        nix::sys::stat::fchmod(fd, mode)
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
