//! The narrated system calls every demo shares, one function per call, named as in
//! section 2 of the manual.
//!
//! A lesson reads like a TLPI listing, one statement per system call:
//!
//! ```ignore
//! let (read_end, write_end) = sys::pipe(n)?;            // [producer 4242] pipe() = [3, 4]
//! sys::close(n, read_end)?;                               // [producer 4242] close(3) = 0
//! sys::write(n, &write_end, &frame)?;                     // [producer 4242] write(4, buf, 92) ...
//!                                                         // [producer 4242] write(4, buf, 92) = 92
//! ```
//!
//! Each wrapper builds its `strace`-style line from its typed arguments, waits for Enter
//! under `--step`, and returns an [`Error`](crate::Error) that names the call with its
//! arguments. A call that can block, or that hands something to another process, prints
//! its line before it starts and its result when it returns
//! ([`Narrator::call_blocking`]), so that two processes on one terminal keep cause before
//! effect. A hint for one errno is one more line: `.hint_on(Errno::EEXIST, "...")`
//! ([`HintOn`]).
//!
//! What lives here: the calls of more than one mechanism (descriptors, files, FIFOs,
//! sockets, signals, processes). A call of one mechanism only (`msgget`, `shm_open`,
//! `sem_wait`) lives in that demo's own `sys.rs`, built the same way on
//! [`Narrator::call`]. No call is described in two places.

use std::ffi::CStr;
use std::fmt::{self, Display};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{self, FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{self, Signal};
use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, SockaddrIn, SockaddrIn6, SockaddrLike, UnixAddr, UnixCredentials, sockopt,
};
use nix::sys::stat::Mode;
use nix::sys::wait::{self, WaitStatus};
use nix::unistd::{self, Pid};

use crate::error::{Error, Result};
use crate::narrate::{Narrator, Shown};

/// A hint for one errno, in one line: `sys::mkfifo(n, path, 0o600).hint_on(Errno::EEXIST,
/// "...")?`. Errors with another errno pass through unchanged.
pub trait HintOn<T> {
    /// Attaches `hint` if the call failed with `errno`.
    fn hint_on(self, errno: Errno, hint: impl Into<String>) -> Result<T>;
}

impl<T> HintOn<T> for Result<T> {
    fn hint_on(self, errno: Errno, hint: impl Into<String>) -> Result<T> {
        self.map_err(|e| {
            if e.errno() == Some(errno) {
                e.hint(hint)
            } else {
                e
            }
        })
    }
}

// ---------------------------------------------------------------------------------------
// How arguments are shown: the way strace shows them.

/// A path as strace shows it: in double quotes.
struct Quoted<'a>(&'a Path);

impl Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.display().to_string())
    }
}

/// `O_WRONLY|O_CREAT|O_EXCL`: the access mode first (it is a number, not a bit), then
/// each flag by name.
pub fn oflags(flags: OFlag) -> String {
    let access = match flags & OFlag::O_ACCMODE {
        f if f == OFlag::O_WRONLY => "O_WRONLY",
        f if f == OFlag::O_RDWR => "O_RDWR",
        _ => "O_RDONLY",
    };
    let mut shown = access.to_string();
    for (name, _) in (flags - OFlag::O_ACCMODE).iter_names() {
        // O_NDELAY is another name for O_NONBLOCK's bit, and nix declares it first; the
        // man pages and strace say O_NONBLOCK.
        let name = if name == "O_NDELAY" {
            "O_NONBLOCK"
        } else {
            name
        };
        shown.push('|');
        shown.push_str(name);
    }
    shown
}

/// Flags that hold no access mode (`pipe2`'s, `F_SETFL`'s), by name:
/// `O_CLOEXEC|O_NONBLOCK`, or `0` for none.
fn flags_only(flags: OFlag) -> String {
    let shown = oflags(flags - OFlag::O_ACCMODE);
    match shown.strip_prefix("O_RDONLY|") {
        Some(names) => names.to_string(),
        None => "0".into(),
    }
}

/// A mode as the man pages write it: `0600`.
pub fn mode(mode: Mode) -> String {
    format!("{:04o}", mode.bits())
}

/// `SOCK_STREAM|SOCK_CLOEXEC`.
fn socktype(kind: SockType, flags: SockFlag) -> String {
    let mut shown = match kind {
        SockType::Stream => "SOCK_STREAM",
        SockType::Datagram => "SOCK_DGRAM",
        SockType::SeqPacket => "SOCK_SEQPACKET",
        _ => "SOCK_RAW",
    }
    .to_string();
    for (name, _) in flags.iter_names() {
        shown.push('|');
        shown.push_str(name);
    }
    shown
}

fn family(family: AddressFamily) -> &'static str {
    match family {
        AddressFamily::Unix => "AF_UNIX",
        AddressFamily::Inet => "AF_INET",
        AddressFamily::Inet6 => "AF_INET6",
        _ => "AF_?",
    }
}

/// A socket address as strace shows it: `{AF_UNIX, "/run/x"}`, `{AF_INET, 127.0.0.1:80}`.
pub trait ShowAddr: SockaddrLike {
    /// The address in braces.
    fn show(&self) -> String;
}

impl ShowAddr for UnixAddr {
    fn show(&self) -> String {
        match (self.path(), self.as_abstract()) {
            (Some(path), _) => format!("{{AF_UNIX, {}}}", Quoted(path)),
            (None, Some(name)) => format!("{{AF_UNIX, @{:?}}}", String::from_utf8_lossy(name)),
            (None, None) => "{AF_UNIX}".into(),
        }
    }
}

impl ShowAddr for SockaddrIn {
    fn show(&self) -> String {
        format!("{{AF_INET, {self}}}")
    }
}

impl ShowAddr for SockaddrIn6 {
    fn show(&self) -> String {
        format!("{{AF_INET6, {self}}}")
    }
}

/// Takes ownership of a descriptor a nix call returned as a number.
fn own(raw: RawFd) -> OwnedFd {
    // SAFETY: every caller passes a descriptor that the kernel has just returned to this
    // process (accept4, recvmsg's SCM_RIGHTS) and that nothing else owns yet.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

// ---------------------------------------------------------------------------------------
// Descriptors: pipe(2), close(2), dup2(2), fcntl(2), read(2), write(2).

/// `pipe(2)`: a one-way byte stream in the kernel; `[read end, write end]`. Both ends are
/// inherited by `fork` (and by `exec`: no `O_CLOEXEC`, as in the notes).
pub fn pipe(n: &Narrator) -> Result<(OwnedFd, OwnedFd)> {
    n.call("pipe()", unistd::pipe)
}

/// `pipe2(2)` with flags, for a pipe that must not leak into programs we `exec`
/// (`O_CLOEXEC`) or whose ends must never block (`O_NONBLOCK`).
pub fn pipe2(n: &Narrator, flags: OFlag) -> Result<(OwnedFd, OwnedFd)> {
    n.call(format_args!("pipe2({})", flags_only(flags)), || {
        unistd::pipe2(flags)
    })
}

/// `close(2)`. Closing is how a process tells the kernel it is done with its end: a
/// reader sees end-of-file only when every copy of the write end is closed.
pub fn close(n: &Narrator, fd: OwnedFd) -> Result<()> {
    let raw = fd.as_raw_fd();
    n.call(format_args!("close({raw})"), || unistd::close(fd))
}

/// `dup2(2)` onto standard input, output or error (0, 1, 2): what a shell does before
/// it `exec`s the two sides of `ls | grep`.
pub fn dup2(n: &Narrator, fd: &impl AsFd, target: RawFd) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    // dup2 returns the new descriptor's number, as strace shows it.
    n.call(format_args!("dup2({raw}, {target})"), || match target {
        0 => unistd::dup2_stdin(fd).map(|()| target),
        1 => unistd::dup2_stdout(fd).map(|()| target),
        2 => unistd::dup2_stderr(fd).map(|()| target),
        _ => Err(Errno::EINVAL),
    })
    .map(drop)
}

/// `fcntl(2)`, for the commands the demos use; returns what the call returns (a size,
/// the flags, or 0).
pub fn fcntl(n: &Narrator, fd: &impl AsFd, arg: FcntlArg<'_>) -> Result<i32> {
    let raw = fd.as_fd().as_raw_fd();
    let shown = match &arg {
        FcntlArg::F_GETPIPE_SZ => "F_GETPIPE_SZ".to_string(),
        FcntlArg::F_SETPIPE_SZ(size) => format!("F_SETPIPE_SZ, {size}"),
        FcntlArg::F_GETFL => "F_GETFL".to_string(),
        FcntlArg::F_SETFL(flags) => format!("F_SETFL, {}", flags_only(*flags)),
        FcntlArg::F_GETFD => "F_GETFD".to_string(),
        FcntlArg::F_ADD_SEALS(seals) => {
            let names: Vec<&str> = seals.iter_names().map(|(name, _)| name).collect();
            format!("F_ADD_SEALS, {}", names.join("|"))
        }
        FcntlArg::F_GET_SEALS => "F_GET_SEALS".to_string(),
        other => format!("{other:?}"),
    };
    n.call(format_args!("fcntl({raw}, {shown})"), || {
        fcntl::fcntl(fd, arg)
    })
}

/// `read(2)`: at most `buf.len()` bytes; 0 means end of file. It waits while there is
/// nothing to read and a writer still exists, so it is narrated before and after.
pub fn read(n: &Narrator, fd: &impl AsFd, buf: &mut [u8]) -> Result<usize> {
    let (raw, len) = (fd.as_fd().as_raw_fd(), buf.len());
    // format_args!, not format!: the line is only made if it is printed or names an
    // error, so a quiet loop of a million reads allocates nothing for it.
    let desc = format_args!("read({raw}, buf, {len})");
    if may_block(n, fd) {
        n.call_blocking(desc, || unistd::read(fd, buf))
    } else {
        n.call(desc, || unistd::read(fd, buf))
    }
}

/// `write(2)`: may take fewer bytes than offered, and waits while the pipe or socket is
/// full. Rust ignores SIGPIPE, so a write with no reader left fails with EPIPE.
pub fn write(n: &Narrator, fd: &impl AsFd, buf: &[u8]) -> Result<usize> {
    let (raw, len) = (fd.as_fd().as_raw_fd(), buf.len());
    let desc = format_args!("write({raw}, buf, {len})");
    if may_block(n, fd) {
        n.call_blocking(desc, || unistd::write(fd, buf))
    } else {
        n.call(desc, || unistd::write(fd, buf))
    }
}

/// Flags as strace shows them: `POLLIN|POLLOUT`, or `0` for none.
fn poll_flags(flags: PollFlags) -> String {
    let names: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

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

    /// Whether the time ran out with nothing ready (`poll` returned 0).
    pub fn timed_out(&self) -> bool {
        self.revents.iter().all(PollFlags::is_empty)
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
/// no limit). `POLLHUP` and `POLLERR` are always reported, even when not asked for.
/// A wait that can last is narrated before and after ([`Narrator::call_blocking`]).
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

/// Whether a `read` or `write` on `fd` is narrated as a call that can block: not when
/// the descriptor is `O_NONBLOCK` (it fails with EAGAIN instead of waiting). Asked only
/// when the line will be printed, so a quiet loop makes no extra call.
fn may_block(n: &Narrator, fd: &impl AsFd) -> bool {
    if n.is_silent() {
        return true;
    }
    fcntl::fcntl(fd, FcntlArg::F_GETFL)
        .map(|flags| !OFlag::from_bits_truncate(flags).contains(OFlag::O_NONBLOCK))
        .unwrap_or(true)
}

/// `pread(2)`: reads at most `buf.len()` bytes at `offset` of a file, without moving the
/// file's offset; 0 at or past its end. Unlike a load from a mapping of the file, a read
/// past the end of a file a peer shrank is not SIGBUS, only a short count.
pub fn pread(n: &Narrator, fd: &impl AsFd, buf: &mut [u8], offset: u64) -> Result<usize> {
    let (raw, len) = (fd.as_fd().as_raw_fd(), buf.len());
    n.call(format_args!("pread({raw}, buf, {len}, {offset})"), || {
        let offset = i64::try_from(offset).map_err(|_| Errno::EOVERFLOW)?;
        nix::sys::uio::pread(fd.as_fd(), buf, offset)
    })
}

// ---------------------------------------------------------------------------------------
// Names in the file system: open(2), mkfifo(3), unlink(2), ftruncate(2), flock(2).

/// `open(2)`. The open of a FIFO waits for the other end (fifo(7)), so on a FIFO it is
/// narrated before and after; on anything else, once.
pub fn open(n: &Narrator, path: &Path, flags: OFlag, mode: Mode) -> Result<OwnedFd> {
    let desc = if flags.contains(OFlag::O_CREAT) {
        format!(
            "open({}, {}, {})",
            Quoted(path),
            oflags(flags),
            self::mode(mode)
        )
    } else {
        format!("open({}, {})", Quoted(path), oflags(flags))
    };
    let waits = !flags.contains(OFlag::O_NONBLOCK)
        && nix::sys::stat::lstat(path).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO);
    let open = || fcntl::open(path, flags, mode);
    if waits {
        n.call_blocking(desc, open)
    } else {
        n.call(desc, open)
    }
}

/// `mkfifo(3)`: a named pipe, a name in the file system for a pipe in the kernel.
pub fn mkfifo(n: &Narrator, path: &Path, perm: Mode) -> Result<()> {
    n.call(
        format_args!("mkfifo({}, {})", Quoted(path), mode(perm)),
        || unistd::mkfifo(path, perm),
    )
}

/// `unlink(2)`: removes a name; the object goes when the last descriptor to it closes.
/// Callers check first that the name is theirs ([`crate::owner`]).
pub fn unlink(n: &Narrator, path: &Path) -> Result<()> {
    n.call(format_args!("unlink({})", Quoted(path)), || {
        unistd::unlink(path)
    })
}

/// `ftruncate(2)`: sets the size of a file, a shared memory object or a memfd.
pub fn ftruncate(n: &Narrator, fd: &impl AsFd, len: u64) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    let off = i64::try_from(len).map_err(|_| Error::usage(format!("size {len} is too large")))?;
    n.call(format_args!("ftruncate({raw}, {len})"), || {
        unistd::ftruncate(fd, off)
    })
}

/// `memfd_create(2)`: an anonymous file in memory, with no name in any folder; it lives
/// while a descriptor or a mapping refers to it.
pub fn memfd_create(n: &Narrator, name: &CStr) -> Result<OwnedFd> {
    memfd_create_flags(n, name, nix::sys::memfd::MFdFlags::empty())
}

/// `memfd_create(2)` with `MFD_CLOEXEC` and `flags` (such as `MFD_ALLOW_SEALING`, so that
/// `fcntl(F_ADD_SEALS)` can later forbid shrinking it: a peer that maps it then never
/// meets SIGBUS).
pub fn memfd_create_flags(
    n: &Narrator,
    name: &CStr,
    flags: nix::sys::memfd::MFdFlags,
) -> Result<OwnedFd> {
    let flags = flags | nix::sys::memfd::MFdFlags::MFD_CLOEXEC;
    let shown: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    n.call(
        format_args!("memfd_create({name:?}, {})", shown.join("|")),
        || nix::sys::memfd::memfd_create(name, flags),
    )
}

/// `flock(fd, LOCK_EX|LOCK_NB)`: takes the whole-file lock or fails at once with
/// EWOULDBLOCK (= EAGAIN) when another open file holds it. The lock goes with the last
/// descriptor of this open file, so a killed process never leaves it behind.
pub fn flock_exclusive(n: &Narrator, fd: &impl AsFd) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(format_args!("flock({raw}, LOCK_EX|LOCK_NB)"), || {
        // SAFETY: flock(2) only reads its two integer arguments; the descriptor is
        // borrowed for the duration of the call.
        Errno::result(unsafe { libc::flock(raw, libc::LOCK_EX | libc::LOCK_NB) }).map(drop)
    })
}

/// `fchmod(2)`: sets the permission bits of the file behind a descriptor (a socket
/// before `bind`, a shared memory object after the umask took bits away).
pub fn fchmod(n: &Narrator, fd: &impl AsFd, perm: Mode) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(format_args!("fchmod({raw}, {})", mode(perm)), || {
        nix::sys::stat::fchmod(fd, perm)
    })
}

// ---------------------------------------------------------------------------------------
// Sockets: socket(2), socketpair(2), bind(2), listen(2), accept4(2), connect(2),
// send(2), recv(2), sendmsg(2)/recvmsg(2) with SCM_RIGHTS, setsockopt(2), getsockopt(2).

/// `socket(2)`: an endpoint with no name yet; always `SOCK_CLOEXEC` here.
pub fn socket(n: &Narrator, domain: AddressFamily, kind: SockType) -> Result<OwnedFd> {
    n.call(
        format_args!(
            "socket({}, {}, 0)",
            family(domain),
            socktype(kind, SockFlag::SOCK_CLOEXEC)
        ),
        || socket::socket(domain, kind, SockFlag::SOCK_CLOEXEC, None),
    )
}

/// `socketpair(2)`: two connected Unix sockets, like a pipe that works both ways.
pub fn socketpair(n: &Narrator, kind: SockType) -> Result<(OwnedFd, OwnedFd)> {
    n.call(
        format_args!(
            "socketpair(AF_UNIX, {}, 0)",
            socktype(kind, SockFlag::SOCK_CLOEXEC)
        ),
        || socket::socketpair(AddressFamily::Unix, kind, None, SockFlag::SOCK_CLOEXEC),
    )
}

/// `bind(2)`: gives the socket its name (a path, or an address and port).
pub fn bind(n: &Narrator, fd: &impl AsFd, addr: &impl ShowAddr) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(format_args!("bind({raw}, {})", addr.show()), || {
        socket::bind(raw, addr)
    })
}

/// `listen(2)`: the socket now accepts connections; up to `backlog` wait to be accepted.
pub fn listen(n: &Narrator, fd: &impl AsFd, backlog: i32) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(format_args!("listen({raw}, {backlog})"), || {
        let backlog = Backlog::new(backlog).unwrap_or(Backlog::MAXCONN);
        socket::listen(&fd.as_fd(), backlog)
    })
}

/// `accept4(2)`: waits for the next client and returns a new socket for it alone.
pub fn accept(n: &Narrator, listener: &impl AsFd) -> Result<OwnedFd> {
    let raw = listener.as_fd().as_raw_fd();
    n.call_blocking(
        format_args!("accept4({raw}, NULL, NULL, SOCK_CLOEXEC)"),
        || socket::accept4(raw, SockFlag::SOCK_CLOEXEC).map(own),
    )
}

/// `connect(2)`: reaches the socket bound at `addr`.
pub fn connect(n: &Narrator, fd: &impl AsFd, addr: &impl ShowAddr) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    n.call_blocking(format_args!("connect({raw}, {})", addr.show()), || {
        socket::connect(raw, addr)
    })
}

/// `send(2)` with no flags: one datagram, or bytes on a stream.
pub fn send(n: &Narrator, fd: &impl AsFd, buf: &[u8]) -> Result<usize> {
    let (raw, len) = (fd.as_fd().as_raw_fd(), buf.len());
    n.call_blocking(format_args!("send({raw}, buf, {len}, 0)"), || {
        socket::send(raw, buf, MsgFlags::empty())
    })
}

/// `recv(2)` with no flags: one datagram (cut to `buf.len()`), or bytes from a stream.
pub fn recv(n: &Narrator, fd: &impl AsFd, buf: &mut [u8]) -> Result<usize> {
    let (raw, len) = (fd.as_fd().as_raw_fd(), buf.len());
    n.call_blocking(format_args!("recv({raw}, buf, {len}, 0)"), || {
        socket::recv(raw, buf, MsgFlags::empty())
    })
}

/// `sendmsg(2)` of `data` with the descriptors `fds` beside it (an SCM_RIGHTS control
/// message): the kernel installs copies of them in the receiver.
pub fn sendmsg_fds(n: &Narrator, sock: &impl AsFd, data: &[u8], fds: &[RawFd]) -> Result<usize> {
    sendmsg_flags(n, sock, data, fds, MsgFlags::empty())
}

/// `sendmsg(2)` as [`sendmsg_fds`], with `flags` for this one call: `MSG_DONTWAIT` fails
/// with EAGAIN instead of waiting for room, without setting `O_NONBLOCK` on the open file
/// that every holder of the descriptor shares. With no `fds`, no control message is sent.
pub fn sendmsg_flags(
    n: &Narrator,
    sock: &impl AsFd,
    data: &[u8],
    fds: &[RawFd],
    flags: MsgFlags,
) -> Result<usize> {
    let raw = sock.as_fd().as_raw_fd();
    let iov = [std::io::IoSlice::new(data)];
    let rights = if fds.is_empty() {
        String::new()
    } else {
        let shown: Vec<String> = fds.iter().map(|fd| fd.to_string()).collect();
        format!(", SCM_RIGHTS [{}]", shown.join(", "))
    };
    let mut shown_flags: Vec<&str> = flags.iter_names().map(|(name, _)| name).collect();
    if shown_flags.is_empty() {
        shown_flags.push("0");
    }
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsgs };
    n.call_blocking(
        format_args!(
            "sendmsg({raw}, {{{} bytes{rights}}}, {})",
            data.len(),
            shown_flags.join("|")
        ),
        || socket::sendmsg::<()>(raw, &iov, cmsgs, flags, None),
    )
}

/// What [`recvmsg_fds`] received: the bytes' count and the descriptors that came with
/// them (new descriptors in this process, close-on-exec).
#[derive(Debug)]
pub struct Received {
    /// Bytes of data received (0: the peer closed the socket).
    pub len: usize,
    /// Descriptors passed with SCM_RIGHTS.
    pub fds: Vec<OwnedFd>,
}

impl Shown for Received {
    fn shown(&self) -> String {
        let fds: Vec<String> = self
            .fds
            .iter()
            .map(|fd| fd.as_raw_fd().to_string())
            .collect();
        if fds.is_empty() {
            self.len.to_string()
        } else {
            format!("{}, with SCM_RIGHTS [{}]", self.len, fds.join(", "))
        }
    }
}

/// `recvmsg(2)` into `buf`, with room for up to `MAX` descriptors (SCM_RIGHTS).
pub fn recvmsg_fds(n: &Narrator, sock: &impl AsFd, buf: &mut [u8]) -> Result<Received> {
    const MAX: usize = 4;
    let (raw, len) = (sock.as_fd().as_raw_fd(), buf.len());
    n.call_blocking(
        format_args!("recvmsg({raw}, {{buf, {len}}}, MSG_CMSG_CLOEXEC)"),
        || {
            let mut iov = [std::io::IoSliceMut::new(buf)];
            let mut space = nix::cmsg_space!([RawFd; MAX]);
            let msg =
                socket::recvmsg::<()>(raw, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
            let mut fds = Vec::new();
            for cmsg in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(raws) = cmsg {
                    fds.extend(raws.into_iter().map(own));
                }
            }
            Ok(Received {
                len: msg.bytes,
                fds,
            })
        },
    )
}

/// A socket option the demos set.
#[derive(Debug, Clone, Copy)]
pub enum Opt {
    /// `SO_REUSEADDR`: bind a TCP port again at once after a server stopped.
    ReuseAddr,
    /// `SO_RCVTIMEO`: a receive that waits longer fails with EAGAIN.
    RcvTimeo(Duration),
    /// `SO_SNDTIMEO`: a send that waits longer fails with EAGAIN.
    SndTimeo(Duration),
    /// `SO_SNDBUF`: the bytes a socket may have sent and not yet had received; the kernel
    /// doubles the value for its bookkeeping and has a minimum (socket(7)).
    SndBuf(usize),
}

/// `setsockopt(2)` at level `SOL_SOCKET`.
pub fn setsockopt(n: &Narrator, fd: &impl AsFd, opt: Opt) -> Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    let shown = match opt {
        Opt::ReuseAddr => "SO_REUSEADDR, 1".to_string(),
        Opt::RcvTimeo(d) => format!("SO_RCVTIMEO, {} ms", d.as_millis()),
        Opt::SndTimeo(d) => format!("SO_SNDTIMEO, {} ms", d.as_millis()),
        Opt::SndBuf(bytes) => format!("SO_SNDBUF, {bytes}"),
    };
    let timeval = |d: Duration| {
        let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        nix::sys::time::TimeVal::new(micros / 1_000_000, micros % 1_000_000)
    };
    n.call(
        format_args!("setsockopt({raw}, SOL_SOCKET, {shown})"),
        || match opt {
            Opt::ReuseAddr => socket::setsockopt(&fd.as_fd(), sockopt::ReuseAddr, &true),
            Opt::RcvTimeo(d) => {
                socket::setsockopt(&fd.as_fd(), sockopt::ReceiveTimeout, &timeval(d))
            }
            Opt::SndTimeo(d) => socket::setsockopt(&fd.as_fd(), sockopt::SendTimeout, &timeval(d)),
            Opt::SndBuf(bytes) => socket::setsockopt(&fd.as_fd(), sockopt::SndBuf, &bytes),
        },
    )
}

/// A number a call returned through its arguments, shown after the call's 0.
#[derive(Debug, Clone, Copy)]
pub struct Value(pub usize);

impl Shown for Value {
    fn shown(&self) -> String {
        format!("0 ({})", self.0)
    }
}

/// `getsockopt(SO_SNDBUF)`: the bytes this socket may have in flight; no datagram may be
/// larger. The kernel stores twice what `setsockopt` asked for (socket(7)), and never
/// less than its minimum.
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

// ---------------------------------------------------------------------------------------
// Processes and signals: kill(2), waitpid(2), execvp(3). (fork(2) is
// crate::process::fork, which also sets up the child's narrator.)

/// `kill(2)`: sends `sig` to one process; `None` is signal 0, which is never delivered:
/// the call only checks that the process exists (ESRCH if not) and that we may signal
/// it (EPERM if not). Refuses a pid <= 0 without making the call: those mean "my
/// process group" (0) and "every process I may signal" (-1), and a demo only ever
/// signals one process it started or was told to signal.
pub fn kill(n: &Narrator, pid: Pid, sig: impl Into<Option<Signal>>) -> Result<()> {
    let sig = sig.into();
    let desc = format!("kill({pid}, {})", sig.map_or("0", Signal::as_str));
    one_process(pid, &desc)?;
    n.call_blocking(desc, || signal::kill(pid, sig))
}

/// `kill(2)` with the real-time signal `SIGRTMIN+offset`, which nix's `Signal` cannot
/// name. Unlike a standard signal, every real-time signal sent is queued and delivered
/// with the sender's pid (signal(7), "Real-time signals"), so a signal is a message that
/// is never merged with another. Refuses a pid <= 0 as [`kill`] does.
pub fn kill_rt(n: &Narrator, pid: Pid, offset: i32) -> Result<()> {
    let name = match offset {
        0 => "SIGRTMIN".to_string(),
        _ => format!("SIGRTMIN+{offset}"),
    };
    let desc = format!("kill({pid}, {name})");
    one_process(pid, &desc)?;
    let signo = libc::SIGRTMIN() + offset;
    if offset < 0 || signo > libc::SIGRTMAX() {
        return Err(Error::bad_data(desc, "there is no such real-time signal")
            .hint("real-time signals go from SIGRTMIN to SIGRTMAX (`kill -l`)"));
    }
    n.call_blocking(desc, || {
        // SAFETY: kill(2) only reads its two integer arguments.
        Errno::result(unsafe { libc::kill(pid.as_raw(), signo) }).map(drop)
    })
}

/// The refusal [`kill`] and [`kill_rt`] share: a pid <= 0 is not one process.
fn one_process(pid: Pid, desc: &str) -> Result<()> {
    if pid.as_raw() <= 0 {
        return Err(
            Error::bad_data(desc, format!("pid {pid} is not one process")).hint(
                "0 and negative pids signal whole groups of processes; the demos never send those",
            ),
        );
    }
    Ok(())
}

/// `waitpid(pid, &status, 0)`: waits for the child to end and collects its status, so
/// that it does not stay a zombie.
pub fn waitpid(n: &Narrator, pid: Pid) -> Result<WaitStatus> {
    n.call_blocking(format_args!("waitpid({pid}, &status, 0)"), || {
        wait::waitpid(pid, None)
    })
}

/// `execvp(3)`: replaces this process's program with `argv[0]`, found on `PATH`.
/// It returns only if it failed, so the call is narrated before it is made.
pub fn execvp(n: &Narrator, argv: &[std::ffi::CString]) -> Result<()> {
    let shown: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    let program = argv.first().map(|a| format!("{a:?}")).unwrap_or_default();
    let desc = format!("execvp({program}, [{}])", shown.join(", "));
    n.call_blocking(desc, || match argv.first() {
        Some(file) => unistd::execvp(file, argv).map(drop),
        None => Err(Errno::EINVAL),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Narrator {
        Narrator::silent("test")
    }

    #[test]
    fn flags_and_modes_are_shown_as_the_man_pages_write_them() {
        assert_eq!(oflags(OFlag::O_RDONLY), "O_RDONLY");
        assert_eq!(
            oflags(OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL),
            "O_WRONLY|O_CREAT|O_EXCL"
        );
        assert_eq!(mode(Mode::from_bits_truncate(0o600)), "0600");
        assert_eq!(
            oflags(OFlag::O_RDONLY | OFlag::O_NONBLOCK),
            "O_RDONLY|O_NONBLOCK"
        );
    }

    #[test]
    fn an_error_names_the_call_with_its_arguments_and_takes_a_hint() {
        let (r, w) = pipe(&quiet()).unwrap();
        drop(r);
        let err = write(&quiet(), &w, b"abc")
            .hint_on(Errno::EPIPE, "the reader has gone")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("write({}, buf, 3) failed: EPIPE", w.as_raw_fd())),
            "{err}"
        );
        assert!(err.ends_with("hint: the reader has gone"), "{err}");
        let other = close(&quiet(), w).hint_on(Errno::EPIPE, "unused");
        assert_eq!(other, Ok(()));
    }

    #[test]
    fn kill_refuses_groups_and_everyone_without_calling_the_kernel() {
        for pid in [0, -1, -42] {
            let err = kill(&quiet(), Pid::from_raw(pid), Signal::SIGUSR1).unwrap_err();
            assert_eq!(err.errno(), None, "{err}");
            assert!(err.to_string().contains("not one process"), "{err}");
            let err = kill_rt(&quiet(), Pid::from_raw(pid), 0).unwrap_err();
            assert_eq!(err.errno(), None, "{err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("kill({pid}, SIGRTMIN)")),
                "{err}"
            );
        }
    }

    #[test]
    fn kill_rt_refuses_a_signal_past_sigrtmax_without_calling_the_kernel() {
        let me = nix::unistd::getpid();
        for offset in [-1, libc::SIGRTMAX() - libc::SIGRTMIN() + 1] {
            let err = kill_rt(&quiet(), me, offset).unwrap_err();
            assert_eq!(err.errno(), None, "{err}");
            assert!(
                err.to_string().contains("no such real-time signal"),
                "{err}"
            );
        }
    }

    #[test]
    fn poll_says_what_is_ready_and_times_out_otherwise() {
        let n = quiet();
        let (r, w) = pipe(&n).unwrap();
        let ask = [(r.as_fd(), PollFlags::POLLIN)];
        let waited = poll(&n, &ask, Some(Duration::from_millis(1))).unwrap();
        assert!(waited.timed_out());
        assert_eq!(waited.shown(), "0 (Timeout)");
        write(&n, &w, b"x").unwrap();
        let ready = poll(&n, &ask, Some(Duration::from_secs(10))).unwrap();
        assert!(!ready.timed_out() && ready.has(0, PollFlags::POLLIN));
        assert_eq!(
            ready.shown(),
            format!("1 ([{{fd={}, revents=POLLIN}}])", r.as_raw_fd())
        );
    }

    #[test]
    fn msg_dontwait_fails_at_once_on_a_full_socket_and_shows_its_flag() {
        let n = quiet();
        let (a, _b) = socketpair(&n, SockType::SeqPacket).unwrap();
        setsockopt(&n, &a, Opt::SndBuf(1)).unwrap();
        let mut sent = 0;
        let err = loop {
            match sendmsg_flags(&n, &a, &[0u8; 64], &[], MsgFlags::MSG_DONTWAIT) {
                Ok(_) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 10_000, "the socket never filled");
        };
        assert!(sent > 0);
        assert_eq!(err.errno(), Some(Errno::EAGAIN));
        assert!(
            err.to_string().starts_with(&format!(
                "sendmsg({}, {{64 bytes}}, MSG_DONTWAIT) failed",
                a.as_raw_fd()
            )),
            "{err}"
        );
    }

    #[test]
    fn a_socket_pair_knows_its_peer_and_its_send_buffer() {
        let n = quiet();
        let (a, _b) = socketpair(&n, SockType::Stream).unwrap();
        let peer = getsockopt_peercred(&n, &a).unwrap();
        assert_eq!(peer.pid(), std::process::id() as i32);
        assert!(getsockopt_sndbuf(&n, &a).unwrap() > 0);
        fchmod(&n, &a, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
    }

    #[test]
    fn descriptors_travel_over_a_socket_pair() {
        let n = quiet();
        let (a, b) = socketpair(&n, SockType::Stream).unwrap();
        let (r, w) = pipe(&n).unwrap();
        sendmsg_fds(&n, &a, b"f", &[r.as_raw_fd()]).unwrap();
        drop(r);
        let mut buf = [0u8; 8];
        let got = recvmsg_fds(&n, &b, &mut buf).unwrap();
        assert_eq!((got.len, got.fds.len(), &buf[..1]), (1, 1, &b"f"[..]));
        write(&n, &w, b"hi").unwrap();
        let mut two = [0u8; 2];
        assert_eq!(read(&n, &got.fds[0], &mut two), Ok(2));
        assert_eq!(&two, b"hi");
    }

    #[test]
    fn pipe2_and_f_setfl_show_their_flags_without_an_access_mode() {
        assert_eq!(
            flags_only(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK),
            "O_CLOEXEC|O_NONBLOCK"
        );
        assert_eq!(flags_only(OFlag::empty()), "0");
    }
}
