//! The system calls only ports-demo makes, narrated the way `common::sys` narrates the
//! shared ones: one function per call, named as in section 2 of the manual, each building
//! its `strace`-style line from its typed arguments.
//!
//! - descriptors and sockets: [`shutdown`], [`fstat`], [`getsockopt_peerpidfd`],
//!   [`umask`];
//! - processes: [`prctl_set_pdeathsig`], [`prctl_set_ptracer`], [`pidfd_open`],
//!   [`pidfd_getfd`], [`readlink`];
//! - memory ([`memory`]): [`mmap_shared`], [`mmap_anonymous`] (both give a
//!   [`Mapping`]), [`process_vm_readv`], [`process_vm_writev`].
//!
//! The calls other demos make too (`poll`, `getsockopt(SO_SNDBUF)`,
//! `getsockopt(SO_PEERCRED)`, `socket`, `sendmsg`, ...) are [`common::sys`]'s, called
//! by that name, so that no call is described twice.
//!
//! All of the crate's `unsafe` is in this module, each block with the reason it is sound.
//! See also: shutdown(2), unix(7), socket(7), prctl(2), pidfd_open(2),
//! pidfd_getfd(2), mmap(2), process_vm_readv(2), ptrace(2) ("Ptrace access mode checking").

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use common::narrate::Shown;
use common::{Narrator, Result};
use nix::errno::Errno;
use nix::sys::socket::{self, Shutdown};
use nix::sys::stat::{FileStat, Mode};
use nix::unistd::Pid;

pub mod memory;
pub use memory::{Mapping, mmap_anonymous, mmap_shared, process_vm_readv, process_vm_writev};

/// `PR_SET_PTRACER` from `<linux/prctl.h>` ("Yama" in ASCII): which process may ptrace
/// this one when Yama's `ptrace_scope` is 1. The libc crate does not export it for glibc.
const PR_SET_PTRACER: libc::c_int = 0x5961_6d61;

// ---------------------------------------------------------------------------------------
// Descriptors and sockets.

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
