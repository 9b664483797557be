//! The system calls only ports-demo makes, narrated the way `common::sys` narrates the
//! shared ones: one function per call, named as in section 2 of the manual, each building
//! its `strace`-style line from its typed arguments.
//!
//! - descriptors and sockets: [`poll`], [`shutdown`], [`fstat`], [`getsockopt_sndbuf`],
//!   [`getsockopt_peercred`], [`getsockopt_peerpidfd`], [`umask`];
//! - processes: [`prctl_set_pdeathsig`], [`prctl_set_ptracer`], [`pidfd_open`],
//!   [`pidfd_getfd`], [`readlink`];
//! - memory ([`memory`]): [`mmap_shared`], [`mmap_anonymous`] (both give a
//!   [`Mapping`]), [`process_vm_readv`], [`process_vm_writev`].
//!
//! All of the crate's `unsafe` is in this module, each block with the reason it is sound.
//! See also: poll(2), shutdown(2), unix(7), socket(7), prctl(2), pidfd_open(2),
//! pidfd_getfd(2), mmap(2), process_vm_readv(2), ptrace(2) ("Ptrace access mode checking").

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use common::narrate::Shown;
use common::{Narrator, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, Shutdown, UnixCredentials, sockopt};
use nix::sys::stat::{FileStat, Mode};
use nix::unistd::Pid;

pub mod memory;
pub use memory::{Mapping, mmap_anonymous, mmap_shared, process_vm_readv, process_vm_writev};

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
