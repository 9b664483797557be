//! The system calls only ports-demo makes, narrated the way `common::sys` narrates the
//! shared ones: one function per call, named as in section 2 of the manual, each building
//! its `strace`-style line from its typed arguments.
//!
//! - descriptors and sockets: [`poll`], [`shutdown`], [`fstat`], [`getsockopt_sndbuf`],
//!   [`getsockopt_peercred`], [`getsockopt_peerpidfd`], [`umask`];
//! - processes: [`prctl_set_pdeathsig`], [`prctl_set_ptracer`], [`pidfd_open`],
//!   [`pidfd_getfd`], [`readlink`];
//! - memory: [`mmap_shared`], [`mmap_anonymous`] (both give a [`Mapping`]),
//!   [`process_vm_readv`], [`process_vm_writev`].
//!
//! All of the crate's `unsafe` is in this file, each block with the reason it is sound.
//! See also: poll(2), shutdown(2), unix(7), socket(7), prctl(2), pidfd_open(2),
//! pidfd_getfd(2), mmap(2), process_vm_readv(2), ptrace(2) ("Ptrace access mode checking").

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::ptr::NonNull;
use std::time::Duration;

use common::narrate::Shown;
use common::{Error, Narrator, Result, tr};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::mman::{self, MapFlags, ProtFlags};
use nix::sys::socket::{self, Shutdown, UnixCredentials, sockopt};
use nix::sys::stat::{FileStat, Mode};
use nix::sys::uio::RemoteIoVec;
use nix::unistd::Pid;

/// `PR_SET_PTRACER` from `<linux/prctl.h>` ("Yama" in ASCII): which process may ptrace
/// this one when Yama's `ptrace_scope` is 1. The libc crate does not export it for glibc.
const PR_SET_PTRACER: libc::c_int = 0x5961_6d61;

/// Flags as strace shows them: `POLLIN|POLLOUT`, or `0` for none.
fn poll_flags(flags: PollFlags) -> String {
    let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

// ---------------------------------------------------------------------------------------
// Descriptors and sockets.

/// What [`poll`] found: for each descriptor asked about, in the same order, the events
/// that happened (`revents`); empty if none.
#[derive(Debug)]
pub struct Polled {
    /// The `revents` of each descriptor, in the order they were given.
    pub revents: Vec<PollFlags>,
    fds: Vec<RawFd>,
}

impl Polled {
    /// Whether descriptor number `i` (in the order given) has any of `flags`.
    pub fn has(&self, i: usize, flags: PollFlags) -> bool {
        self.revents.get(i).is_some_and(|r| r.intersects(flags))
    }
}

impl Shown for Polled {
    fn shown(&self) -> String {
        let ready: Vec<String> = self
            .fds
            .iter()
            .zip(&self.revents)
            .filter(|(_, r)| !r.is_empty())
            .map(|(fd, r)| format!("{{fd={fd}, revents={}}}", poll_flags(*r)))
            .collect();
        if ready.is_empty() {
            "0 (Timeout)".into()
        } else {
            format!("{} ([{}])", ready.len(), ready.join(", "))
        }
    }
}

/// `poll(2)`: waits until one of `fds` has one of its events, or `timeout` passes (`None`:
/// no limit). `POLLHUP` and `POLLERR` are always reported, even when not asked for: that is
/// how a holder of a send right learns that the port's receiver has gone.
pub fn poll(
    n: &Narrator,
    fds: &[(BorrowedFd<'_>, PollFlags)],
    timeout: Option<Duration>,
) -> Result<Polled> {
    // Whole milliseconds, rounded up: a wait never ends before the time asked for.
    let ms = |d: Duration| i32::try_from(d.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
    let millis = timeout.map_or(-1, ms);
    let shown: Vec<String> = fds
        .iter()
        .map(|(fd, ev)| format!("{{fd={}, events={}}}", fd.as_raw_fd(), poll_flags(*ev)))
        .collect();
    let desc = format!("poll([{}], {}, {millis})", shown.join(", "), fds.len());
    let call = || {
        let mut pollfds: Vec<PollFd<'_>> =
            fds.iter().map(|(fd, ev)| PollFd::new(*fd, *ev)).collect();
        let start = std::time::Instant::now();
        // poll(2) is never restarted after a signal handler (signal(7)), even with
        // SA_RESTART; restart it here with the time left, so that Ctrl-C reaches the
        // cleanup handler instead of failing the call.
        loop {
            let left = timeout.map_or(-1, |d| ms(d.saturating_sub(start.elapsed())));
            let limit = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            match nix::poll::poll(&mut pollfds, limit) {
                Err(Errno::EINTR) => continue,
                other => other?,
            };
            break;
        }
        Ok(Polled {
            revents: pollfds
                .iter()
                .map(|p| p.revents().unwrap_or(PollFlags::empty()))
                .collect(),
            fds: fds.iter().map(|(fd, _)| fd.as_raw_fd()).collect(),
        })
    };
    if millis == 0 {
        n.call(desc, call)
    } else {
        n.call_blocking(desc, call)
    }
}

/// `shutdown(2)`: closes one direction of a socket for every holder of it. A port's
/// receive right is shut for writing and its send right for reading, so that a port
/// carries messages one way only, as Mach's do.
pub fn shutdown(n: &Narrator, fd: &impl AsFd, how: Shutdown) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    let shown = match how {
        Shutdown::Read => "SHUT_RD",
        Shutdown::Write => "SHUT_WR",
        Shutdown::Both => "SHUT_RDWR",
    };
    n.call(format_args!("shutdown({raw}, {shown})"), || {
        socket::shutdown(raw, how)
    })
}

/// A file status, shown by the two fields the demos look at.
#[derive(Debug)]
pub struct Status(pub FileStat);

impl Shown for Status {
    fn shown(&self) -> String {
        format!(
            "0 ({}, st_ino={})",
            common::owner::describe(self.0.st_mode),
            self.0.st_ino
        )
    }
}

/// `fstat(2)`: what a descriptor refers to. Two descriptors with the same `st_ino` (and
/// `st_dev`) are the same kernel object, which is how a server tells that two rights it
/// received name the same port.
pub fn fstat(n: &Narrator, fd: &impl AsFd) -> Result<Status> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(format_args!("fstat({raw}, &st)"), || {
        nix::sys::stat::fstat(fd.as_fd()).map(Status)
    })
}

/// A number a call returned, shown as is.
#[derive(Debug, Clone, Copy)]
pub struct Value(pub usize);

impl Shown for Value {
    fn shown(&self) -> String {
        format!("0 ({})", self.0)
    }
}

/// `getsockopt(SO_SNDBUF)`: the bytes this socket may have in flight. The kernel stores
/// twice what `setsockopt` asked for (socket(7)), and never less than its minimum.
pub fn getsockopt_sndbuf(n: &Narrator, fd: &impl AsFd) -> Result<usize> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(
        format_args!("getsockopt({raw}, SOL_SOCKET, SO_SNDBUF)"),
        || socket::getsockopt(&fd.as_fd(), sockopt::SndBuf).map(Value),
    )
    .map(|v| v.0)
}

/// The credentials of a socket's peer, as the kernel recorded them at `connect`.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub UnixCredentials);

impl Shown for Peer {
    fn shown(&self) -> String {
        format!(
            "0 ({{pid={}, uid={}, gid={}}})",
            self.0.pid(),
            self.0.uid(),
            self.0.gid()
        )
    }
}

/// `getsockopt(SO_PEERCRED)`: the pid, uid and gid of the process at the other end of a
/// connected Unix socket, from the kernel, not from anything the peer claims (unix(7)).
pub fn getsockopt_peercred(n: &Narrator, fd: &impl AsFd) -> Result<UnixCredentials> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(
        format_args!("getsockopt({raw}, SOL_SOCKET, SO_PEERCRED)"),
        || socket::getsockopt(&fd.as_fd(), sockopt::PeerCredentials).map(Peer),
    )
    .map(|p| p.0)
}

/// `getsockopt(SO_PEERPIDFD)` (Linux 6.5): a pidfd for the peer process, which, unlike
/// its pid, can never come to mean another process (pidfd_open(2)).
pub fn getsockopt_peerpidfd(n: &Narrator, fd: &impl AsFd) -> Result<OwnedFd> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(
        format_args!("getsockopt({raw}, SOL_SOCKET, SO_PEERPIDFD)"),
        || {
            let mut pidfd: libc::c_int = -1;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: the kernel writes at most `len` bytes (one int) into `pidfd`, a local
            // that outlives the call, and updates `len`.
            let rc = unsafe {
                libc::getsockopt(
                    raw,
                    libc::SOL_SOCKET,
                    libc::SO_PEERPIDFD,
                    (&raw mut pidfd).cast::<c_void>(),
                    &mut len,
                )
            };
            Errno::result(rc)?;
            // SAFETY: on success the kernel installed `pidfd` as a new descriptor of this
            // process that nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(pidfd) })
        },
    )
}

/// The old mask [`umask`] returns.
#[derive(Debug, Clone, Copy)]
pub struct OldMask(pub Mode);

impl Shown for OldMask {
    fn shown(&self) -> String {
        common::sys::mode(self.0)
    }
}

/// `umask(2)`: which permission bits new files (and socket paths) will *not* get. A Unix
/// socket's path is made by `bind`, which takes no mode, so the mask is how it gets 0600.
/// Returns the previous mask, to put back.
pub fn umask(n: &Narrator, mask: Mode) -> Result<Mode> {
    n.call(format_args!("umask({})", common::sys::mode(mask)), || {
        Ok(OldMask(nix::sys::stat::umask(mask)))
    })
    .map(|m| m.0)
}

// ---------------------------------------------------------------------------------------
// Processes.

/// `prctl(PR_SET_PDEATHSIG, sig)`: the kernel sends `sig` to this process when its parent
/// ends, so a forked role never outlives the run that started it.
pub fn prctl_set_pdeathsig(n: &Narrator, sig: nix::sys::signal::Signal) -> Result<()> {
    n.call(
        format_args!("prctl(PR_SET_PDEATHSIG, {})", sig.as_str()),
        || nix::sys::prctl::set_pdeathsig(sig),
    )
}

/// `prctl(PR_SET_PTRACER, pid)`: under Yama's `ptrace_scope` = 1, lets process `pid` (and
/// only it) read and write this process's memory with `process_vm_readv`/`writev`, as if
/// it were an ancestor. Without Yama the call fails with EINVAL and nothing needs it.
pub fn prctl_set_ptracer(n: &Narrator, pid: Pid) -> Result<()> {
    n.call(format_args!("prctl(PR_SET_PTRACER, {pid})"), || {
        // SAFETY: prctl(2) with PR_SET_PTRACER reads its integer arguments only.
        let rc = unsafe {
            libc::prctl(
                PR_SET_PTRACER,
                libc::c_ulong::from(pid.as_raw().unsigned_abs()),
                0,
                0,
                0,
            )
        };
        Errno::result(rc).map(drop)
    })
}

/// `pidfd_open(2)`: a descriptor that refers to process `pid` itself, not to its number.
pub fn pidfd_open(n: &Narrator, pid: Pid) -> Result<OwnedFd> {
    n.call(format_args!("pidfd_open({pid}, 0)"), || {
        // SAFETY: the system call takes two integers and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
        let fd = Errno::result(fd)?;
        let fd = RawFd::try_from(fd).map_err(|_| Errno::EBADF)?;
        // SAFETY: the kernel just installed `fd` for this process; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
}

/// `pidfd_getfd(2)`: a copy of descriptor `target` of the process behind `pidfd`. The
/// kernel allows it only with ptrace access to that process (PTRACE_MODE_ATTACH_REALCREDS).
pub fn pidfd_getfd(n: &Narrator, pidfd: &impl AsFd, target: RawFd) -> Result<OwnedFd> {
    let raw = pidfd.as_fd().as_raw_fd();
    n.call(format_args!("pidfd_getfd({raw}, {target}, 0)"), || {
        // SAFETY: the system call takes three integers and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, raw, target, 0) };
        let fd = Errno::result(fd)?;
        let fd = RawFd::try_from(fd).map_err(|_| Errno::EBADF)?;
        // SAFETY: the kernel just installed `fd` for this process; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
}

/// What a link points to, shown in quotes.
#[derive(Debug)]
pub struct Target(pub String);

impl Shown for Target {
    fn shown(&self) -> String {
        format!("{:?}", self.0)
    }
}

/// `readlink(2)`: where a symbolic link points; for `/proc/PID/fd/N`, what the descriptor
/// is (`socket:[12345]` for a socket, which has no path).
pub fn readlink(n: &Narrator, path: &Path) -> Result<String> {
    n.call(
        format_args!("readlink({:?})", path.display().to_string()),
        || nix::fcntl::readlink(path).map(|t| Target(t.to_string_lossy().into_owned())),
    )
    .map(|t| t.0)
}

// ---------------------------------------------------------------------------------------
// Memory.

/// A mapping made by [`mmap_shared`] or [`mmap_anonymous`], unmapped when dropped.
///
/// Its bytes may be changed at any time by another process (a shared section) or by the
/// kernel on another process's behalf (`process_vm_writev`), so the program never holds a
/// Rust reference into it: bytes go in and out by copies with checked bounds
/// ([`Mapping::read`], [`Mapping::write`]), and what is read is copied once before it is
/// looked at.
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<c_void>,
    len: usize,
    writable: bool,
}

impl Shown for Mapping {
    fn shown(&self) -> String {
        format!("{:#x}", self.addr())
    }
}

impl Mapping {
    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never: `mmap` refuses a length of 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its address in this process, as another process names it in `process_vm_readv`.
    pub fn addr(&self) -> u64 {
        self.base.as_ptr() as usize as u64
    }

    fn check(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::bad_data(
                tr!("copy at offset {offset}, length {len}"),
                tr!("it ends outside the {size}-byte mapping", size = self.len),
            )),
        }
    }

    /// Copies `len` bytes at `offset` out of the mapping (a bounds error if they do not
    /// lie inside it).
    pub fn read(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        self.check(offset, len)?;
        let mut out = vec![0u8; len];
        // SAFETY: offset + len <= self.len (checked above), so the source lies inside the
        // mapping, which stays mapped while `self` lives; `out` is a new private buffer, so
        // the two do not overlap. Another process may write the source at the same time; the
        // copy then holds a mix of old and new bytes, which every caller checks as
        // untrusted data before use.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().cast::<u8>().add(offset),
                out.as_mut_ptr(),
                len,
            );
        }
        Ok(out)
    }

    /// Copies `data` into the mapping at `offset` (a bounds error if it does not fit, or
    /// if the mapping is read-only).
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::bad_data(
                tr!("copy into a mapping"),
                tr!("it is mapped read-only"),
            ));
        }
        self.check(offset, data.len())?;
        // SAFETY: offset + data.len() <= self.len (checked above) and the mapping is
        // writable and stays mapped while `self` lives; `data` is private memory of this
        // process, not inside the mapping, so the regions do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.base.as_ptr().cast::<u8>().add(offset),
                data.len(),
            );
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base and len are exactly what mmap returned and was given; no Rust
        // reference into the mapping exists (all access is by copies), so nothing can
        // use it after this.
        let _ = unsafe { mman::munmap(self.base, self.len) };
    }
}

fn prot_shown(writable: bool) -> &'static str {
    if writable {
        "PROT_READ|PROT_WRITE"
    } else {
        "PROT_READ"
    }
}

/// `mmap(2)` of the file behind `fd` (a memfd section), `MAP_SHARED`: what one process
/// writes there, the other sees, with no copy through the kernel.
pub fn mmap_shared(n: &Narrator, fd: &impl AsFd, len: usize, writable: bool) -> Result<Mapping> {
    let raw = fd.as_fd().as_raw_fd();
    let size = NonZeroUsize::new(len)
        .ok_or_else(|| Error::bad_data(tr!("mmap of fd {raw}"), tr!("the length is 0")))?;
    let prot = if writable {
        ProtFlags::PROT_READ | ProtFlags::PROT_WRITE
    } else {
        ProtFlags::PROT_READ
    };
    n.call(
        format_args!(
            "mmap(NULL, {len}, {}, MAP_SHARED, {raw}, 0)",
            prot_shown(writable)
        ),
        || {
            // SAFETY: a new mapping at an address the kernel chooses overlaps no Rust
            // object. The callers seal the memfd against shrinking (F_SEAL_SHRINK) or
            // check that the peer did, so no access inside `len` can meet SIGBUS.
            let base = unsafe { mman::mmap(None, size, prot, MapFlags::MAP_SHARED, fd, 0)? };
            Ok(Mapping {
                base,
                len,
                writable,
            })
        },
    )
}

/// `mmap(2)` of fresh private memory (`MAP_PRIVATE|MAP_ANONYMOUS`), zero-filled: the
/// client's own buffers, which the ALPC server reads or writes with `process_vm_readv` /
/// `process_vm_writev`.
pub fn mmap_anonymous(n: &Narrator, len: usize) -> Result<Mapping> {
    let size = NonZeroUsize::new(len)
        .ok_or_else(|| Error::bad_data(tr!("mmap of anonymous memory"), tr!("the length is 0")))?;
    n.call(
        format_args!("mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)"),
        || {
            // SAFETY: a new anonymous mapping at an address the kernel chooses overlaps no
            // Rust object, and anonymous memory cannot be truncated under us.
            let base = unsafe {
                mman::mmap_anonymous(
                    None,
                    size,
                    ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                    MapFlags::MAP_PRIVATE,
                )?
            };
            Ok(Mapping {
                base,
                len,
                writable: true,
            })
        },
    )
}

/// `process_vm_readv(2)`: copies `out.len()` bytes at address `remote` in process `pid`
/// into `out`, with no shared memory and no help from that process. The kernel checks
/// ptrace access (same user and not made undumpable, or CAP_SYS_PTRACE; and Yama's
/// `ptrace_scope`). Returns the bytes copied, which may be fewer than asked if the range
/// runs into unmapped memory.
pub fn process_vm_readv(n: &Narrator, pid: Pid, out: &mut [u8], remote: u64) -> Result<usize> {
    let len = out.len();
    let base = usize::try_from(remote).map_err(|_| Errno::EFAULT);
    n.call_blocking(
        format_args!(
            "process_vm_readv({pid}, [{{buf, {len}}}], 1, [{{{remote:#x}, {len}}}], 1, 0)"
        ),
        || {
            let remote = [RemoteIoVec { base: base?, len }];
            let mut local = [std::io::IoSliceMut::new(out)];
            nix::sys::uio::process_vm_readv(pid, &mut local, &remote)
        },
    )
}

/// `process_vm_writev(2)`: copies `data` to address `remote` in process `pid` (the same
/// permission check as [`process_vm_readv`]). Returns the bytes copied.
pub fn process_vm_writev(n: &Narrator, pid: Pid, data: &[u8], remote: u64) -> Result<usize> {
    let len = data.len();
    let base = usize::try_from(remote).map_err(|_| Errno::EFAULT);
    n.call_blocking(
        format_args!(
            "process_vm_writev({pid}, [{{buf, {len}}}], 1, [{{{remote:#x}, {len}}}], 1, 0)"
        ),
        || {
            let remote = [RemoteIoVec { base: base?, len }];
            let local = [std::io::IoSlice::new(data)];
            nix::sys::uio::process_vm_writev(pid, &local, &remote)
        },
    )
}
