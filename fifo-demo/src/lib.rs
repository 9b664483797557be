//! fifo-demo: a FIFO, or named pipe: a pipe with a name in the file system.
//!
//! Follows `000_5e93fa56600d397d.txt`, "2. Named PIPE(FIFO)"; `001_ffa78007200462ad.txt`,
//! "(2) FIFO(named pipe)"; and `003_5ebb38e0b36eb300.txt`, "3.7.4.2 지명 파이프".
//! `mkfifo(3)` puts a special file (type `p` in `ls -l`) in a folder; any process that may
//! open that path can then use the pipe behind it, so the two sides need no common
//! parent. The data still goes through a buffer in the kernel, never through the disk.
//!
//! - [`make_or_find`] and [`open_end`]: how the two sides meet (`mkfifo`, then `open`,
//!   which waits for the other side);
//! - [`exchange`]: both roles in one terminal; `producer` and `consumer` run them in two;
//! - [`consume_raw`] and [`produce_lines`]: plain bytes, to pair with `echo` and `cat`;
//! - [`server`] and [`client`]: full duplex with a well-known request FIFO and one reply
//!   FIFO per client (TLPI's sequence-number server);
//! - [`writers`]: several writers on one FIFO; writes of at most PIPE_BUF bytes never
//!   interleave;
//! - [`clean`]: removes FIFOs that killed runs left behind.
//!
//! Usage: `cargo run -p fifo-demo -- --help`. See also: mkfifo(3), fifo(7), pipe(7),
//! and TLPI section 44.7 "FIFOs" and 44.8 (the sequence-number server).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cleanup::{self, Guard};
use common::message;
use common::narrate::print_summary;
use common::owner::{Kind, fstat_ours, lstat_ours};
use common::process::{self, Fork};
use common::stream::{self, FdStream, NARRATED_MESSAGES};
use common::{Context, Error, Narrator, Result};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FlockArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{FileStat, Mode};
use nix::unistd::{self, PathconfVar, Pid};

/// Where the FIFO goes unless `--path` says otherwise: the per-user private folder.
pub fn default_path(name: &str) -> Result<PathBuf> {
    Ok(common::paths::private_dir()?.join(name))
}

// ANCHOR: make_or_find
/// Creates the FIFO at `path` with mode 0600, or uses the one already there (made by the
/// other role, or left by a run that was killed). Returns a guard that removes it if
/// this process made it; `None` if it was there already.
pub fn make_or_find(n: &Narrator, path: &Path) -> Result<Option<Guard>> {
    let shown = path.display();
    match n.call(format_args!("mkfifo({shown:?}, 0600)"), || {
        unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR)
    }) {
        Ok(()) => {
            n.say(format_args!(
                "I made the FIFO, and I remove it when I end; look: ls -l {shown}"
            ));
            Ok(Some(cleanup::unlink_on_drop(n, path)))
        }
        Err(e) if e.errno() == Some(Errno::EEXIST) => {
            check_is_fifo(path)?;
            n.say(format_args!(
                "{shown} exists already: the other side made it, or a killed run left it \
                 (`fifo-demo clean` removes it); I use it"
            ));
            Ok(None)
        }
        Err(e) => Err(e.hint("does the folder exist, and may you write in it?")),
    }
}
// ANCHOR_END: make_or_find

/// Refuses anything at `path` that is not a FIFO of ours: a regular file there is some
/// other program's, a FIFO of another user's could be a trap, and a symbolic link is
/// never followed (`lstat`, which describes the link itself).
fn check_is_fifo(path: &Path) -> Result<FileStat> {
    match lstat_ours(path, Kind::Fifo) {
        Ok(Some(st)) => Ok(st),
        Ok(None) => Err(Error::sys(
            format!("lstat({:?})", path.display().to_string()),
            Errno::ENOENT,
        )
        .hint("the FIFO vanished just now (its maker ended?); start again")),
        Err(e) => Err(e.hint(
            "it is not ours to use or remove: choose another --path (a symbolic link is never followed)",
        )),
    }
}

/// `open(2)` of a FIFO with O_NOFOLLOW (a symbolic link planted at the path makes it
/// fail with ELOOP instead of sending us elsewhere), then `fstat(2)` on what was opened:
/// a FIFO of ours, or the descriptor is closed again. The check is on the descriptor,
/// so nothing can be swapped between the check and the use.
fn open_fifo(n: &Narrator, path: &Path, flags: OFlag, shown_flags: &str) -> Result<OwnedFd> {
    let shown = path.display();
    let fd = n
        .call(format_args!("open({shown:?}, {shown_flags}|O_NOFOLLOW)"), || {
            open(
                path,
                flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        })
        .map_err(|e| match e.errno() {
            Some(Errno::ENOENT) => e.hint("there is no FIFO at this path: start the other side first, or give both the same --path"),
            Some(Errno::EACCES) => e.hint("the FIFO's permissions do not let you open it"),
            Some(Errno::ELOOP) => e.hint("a symbolic link is at this path, and the demo never follows one: someone may have planted it; remove it yourself if it is yours, or use another --path"),
            _ => e,
        })?;
    fstat_ours(&fd, Kind::Fifo).map_err(|e| {
        e.hint("what was opened is not a FIFO of yours; it is left alone: use another --path")
    })?;
    Ok(fd)
}

// ANCHOR: open_end
/// Opens one end of the FIFO. A blocking `open` of a FIFO waits until some process has
/// opened the other end (fifo(7)): that is how the two sides meet.
pub fn open_end(n: &Narrator, path: &Path, write: bool) -> Result<OwnedFd> {
    let (flags, name, other) = if write {
        (OFlag::O_WRONLY, "O_WRONLY", "reader")
    } else {
        (OFlag::O_RDONLY, "O_RDONLY", "writer")
    };
    n.announce(format_args!(
        "open({:?}, {name}) waits until a {other} opens the other end ...",
        path.display()
    ));
    open_fifo(n, path, flags, name)
}
// ANCHOR_END: open_end

/// Takes the FIFO for this role alone: `flock(fd, LOCK_EX|LOCK_NB)`. A FIFO has no
/// idea how many processes write into it or read from it; two producers on one path
/// would mix their messages, and two servers would each take half of every client's
/// requests. So a producer and a server lock the FIFO they opened, and the second one
/// is refused at once (EWOULDBLOCK) with the pid of the first, from /proc/locks.
///
/// The lock belongs to this open file description (flock(2)) and goes when the last
/// descriptor to it is closed, which ends the role: no unlock to forget, and a killed
/// process holds nothing. (Several writers on purpose is the `writers` lesson.)
pub fn claim(n: &Narrator, fd: &OwnedFd, path: &Path, role: &str) -> Result<()> {
    // nix's Flock owns the descriptor and unlocks when dropped; here the lock must live
    // exactly as long as the descriptor the role uses, so the plain call it deprecates.
    #[allow(deprecated)]
    let locked = n.call(
        format_args!(
            "flock({}, LOCK_EX|LOCK_NB)   (one {role} per FIFO)",
            fd.as_raw_fd()
        ),
        || nix::fcntl::flock(fd.as_raw_fd(), FlockArg::LockExclusiveNonblock),
    );
    locked.map_err(|e| {
        if e.errno() != Some(Errno::EWOULDBLOCK) {
            return e;
        }
        let holder = nix::sys::stat::fstat(fd)
            .ok()
            .and_then(|st| lock_holder(&st))
            .map(|pid| format!(" (pid {pid}, says /proc/locks)"))
            .unwrap_or_default();
        e.hint(format!(
            "another {role} uses {} already{holder}: two {role}s on one FIFO would mix their bytes; wait for it to end, or use another --path",
            path.display()
        ))
    })
}

/// The pid that holds a `flock` on the file `st` describes, from /proc/locks (proc(5)):
/// lines such as `1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF`, where the device's
/// major and minor numbers are in hexadecimal and the inode in decimal.
pub fn lock_holder(st: &FileStat) -> Option<i32> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let me = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(st.st_dev),
        nix::sys::stat::minor(st.st_dev),
        st.st_ino
    );
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A line with "->" is a process waiting for the lock, not holding it.
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, file, ..] if *file == me => pid.parse().ok(),
            _ => None,
        }
    })
}

// ANCHOR: exchange
/// Both roles in one terminal: the parent makes the FIFO and forks; the child opens it
/// for reading and consumes, the parent opens it for writing and produces. Unlike a pipe,
/// nothing passes through `fork` but the path: each opens the FIFO by its name.
pub fn exchange(n: &Narrator, path: &Path, count: u64, size: usize) -> Result<()> {
    let _fifo = make_or_find(n, path)?;
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            let result = open_end(&me, path, false)
                .and_then(|fd| stream::consume(&me, fd, count, stream::MAX_SIZE));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            cleanup::exit_on_interrupt(n)?;
            let fd = open_end(n, path, true)?;
            claim(n, &fd, path, "producer")?;
            stream::produce(n, fd, count, size)?;
            process::wait_for(n, child, "consumer")
        }
    }
}
// ANCHOR_END: exchange

/// The consumer's `--raw` mode: copies whatever arrives to standard output, so that
/// `echo hello > PATH` from a shell is a producer. Ends at end-of-file.
pub fn consume_raw(n: &Narrator, fd: OwnedFd) -> Result<()> {
    let mut fifo = FdStream::new(fd, n);
    let mut buf = vec![0; 64 << 10];
    let (mut bytes, mut reads) = (0u64, 0u64);
    let mut out = std::io::stdout().lock();
    loop {
        let got = fifo.read(&mut buf)?;
        if got == 0 {
            break;
        }
        out.write_all(&buf[..got])
            .and_then(|()| out.flush())
            .context("write(1)")?;
        bytes += got as u64;
        reads += 1;
    }
    drop(out);
    n.say("read() = 0: end of file, every writer has closed the FIFO");
    print_summary(format_args!("summary: bytes={bytes} reads={reads}"))
}

/// The producer's `--stdin` mode: sends each line of standard input with one `write`, so
/// that `cat PATH` or `consumer --raw` shows them.
pub fn produce_lines(n: &Narrator, fd: OwnedFd) -> Result<()> {
    let mut fifo = FdStream::new(fd, n);
    let mut lines = 0u64;
    let mut line = String::new();
    let stdin = std::io::stdin();
    loop {
        line.clear();
        if std::io::BufRead::read_line(&mut stdin.lock(), &mut line).context("read(0)")? == 0 {
            break;
        }
        fifo.write_all(line.as_bytes())?;
        lines += 1;
    }
    n.say(format_args!(
        "sent {lines} lines; closing the FIFO gives the reader end-of-file"
    ));
    stream::close(n, fifo.into_inner())
}

// ANCHOR: server
/// A request: the client's pid, then how many sequence numbers it wants (u32 each,
/// little-endian). 8 bytes, well under PIPE_BUF, so requests from many clients written
/// to one FIFO never mix.
pub const REQUEST_LEN: usize = 8;
/// The largest count one request may ask for.
pub const MAX_REQUEST: u32 = 1_000_000;

/// The reply FIFO of the client with `pid`: the server's path with `-PID` appended.
pub fn client_fifo(server_path: &Path, pid: Pid) -> PathBuf {
    let mut name = server_path.as_os_str().to_owned();
    name.push(format!("-{pid}"));
    PathBuf::from(name)
}

/// The sequence-number server: reads requests from its well-known FIFO and answers each
/// on the client's own FIFO with the first number of the range it grants (u64,
/// little-endian). Stops after `requests` requests, or on Ctrl-C.
///
/// Anyone who may open the FIFO may write into it, so the server trusts no byte of it.
/// Every client writes a request whole, with one `write` of 8 bytes, and a write of at
/// most PIPE_BUF bytes reaches a FIFO in one piece (pipe(7)); so a `read` that finds
/// fewer than 8 bytes has found bytes that are not a request, and a request that makes
/// no sense means the bytes are out of step with the requests. Either way the server
/// throws away what is there and starts again on a boundary, and says so.
pub fn server(n: &Narrator, path: &Path, requests: Option<u64>) -> Result<()> {
    let _fifo = make_or_find(n, path)?;
    cleanup::exit_on_interrupt(n)?;
    let (inbox, _keep_open) = open_both_ends(n, path)?;
    claim(n, &inbox, path, "server")?;
    n.announce("ready for requests");
    let pid_max = pid_max();
    let (mut next, mut served) = (0u64, 0u64);
    while requests != Some(served) {
        let mut request = [0u8; REQUEST_LEN];
        // One read, not "read until 8 bytes": how many bytes one read finds is the check.
        let got = FdStream::new(&inbox, n).read(&mut request)?;
        if got == 0 {
            break; // Never, while we hold a writer of our own; but not a reason to spin.
        }
        if got < REQUEST_LEN {
            n.announce(format_args!(
                "read {got} bytes, fewer than a request: clients write each request whole, so these are not one; discarded"
            ));
            continue;
        }
        let pid = u32::from_le_bytes([request[0], request[1], request[2], request[3]]);
        let len = u32::from_le_bytes([request[4], request[5], request[6], request[7]]);
        // The request comes from another process: check it before using it.
        let valid = i32::try_from(pid)
            .ok()
            .filter(|pid| (1..=pid_max).contains(pid) && (1..=MAX_REQUEST).contains(&len));
        let Some(pid) = valid.map(Pid::from_raw) else {
            let dropped = drain(n, &inbox)?;
            n.announce(format_args!(
                "not a request (pid {pid}, count {len}): the FIFO holds bytes out of step with the requests; \
                 discarded them and the {dropped} bytes after them, so that the next request starts on a boundary \
                 (a client whose request was among them times out)"
            ));
            continue;
        };
        if reply(n, &client_fifo(path, pid), next)? {
            next += u64::from(len);
        }
        served += 1;
        if served == NARRATED_MESSAGES {
            n.mute("... serving the rest without narration");
        }
    }
    n.unmute();
    print_summary(format_args!("summary: requests={served} next={next}"))
}

/// Writes `first` to the client's FIFO, if it is a FIFO of ours: the path is built from
/// a pid another process wrote, so whatever is there (a regular file, a symbolic link
/// to one, another user's FIFO) is looked at with `lstat` before it is opened, opened
/// with O_NOFOLLOW, and checked again with `fstat`; anything else gets no reply, and the
/// server says why and goes on. `O_NONBLOCK` makes `open` fail with ENXIO at once if the
/// client is gone, instead of waiting forever for a reader. Returns whether the client
/// got its reply.
fn reply(n: &Narrator, fifo: &Path, first: u64) -> Result<bool> {
    let shown = fifo.display();
    let refuse = |why: &dyn std::fmt::Display| {
        n.announce(format_args!("not replying on {shown}: {why}"));
        Ok(false)
    };
    let judged = match lstat_ours(fifo, Kind::Fifo) {
        Ok(Some(st)) => st,
        Ok(None) => {
            n.announce(format_args!("the client of {shown} is gone; no reply"));
            return Ok(false);
        }
        Err(e) => return refuse(&e),
    };
    let fd = match n.call(
        format_args!("open({shown:?}, O_WRONLY|O_NONBLOCK|O_NOFOLLOW)"),
        || {
            open(
                fifo,
                OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        },
    ) {
        Ok(fd) => fd,
        Err(e) if matches!(e.errno(), Some(Errno::ENXIO | Errno::ENOENT)) => {
            n.announce(format_args!("the client of {shown} is gone; no reply"));
            return Ok(false);
        }
        Err(e) => return refuse(&e),
    };
    match fstat_ours(&fd, Kind::Fifo) {
        Ok(st) if (st.st_dev, st.st_ino) == (judged.st_dev, judged.st_ino) => {}
        Ok(_) => return refuse(&"the FIFO was replaced between lstat and open"),
        Err(e) => return refuse(&e),
    }
    let mut out = FdStream::new(fd, n);
    match out.write_all(&first.to_le_bytes()) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(Errno::EPIPE) => Ok(false),
        // A client that asks and never reads fills its FIFO; that is its problem.
        Err(e) if e.errno() == Some(Errno::EAGAIN) => {
            refuse(&"its FIFO is full: the client does not read its replies")
        }
        Err(e) => Err(e),
    }
}
// ANCHOR_END: server

/// The largest pid this system hands out (/proc/sys/kernel/pid_max, proc(5)); a request
/// naming a larger one is not a request. 4194304 (2^22, the kernel's own limit on 64-bit
/// systems) if the file cannot be read.
fn pid_max() -> i32 {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(4_194_304)
}

/// Reads and throws away everything waiting in the FIFO, without waiting for more
/// (O_NONBLOCK for the while: a read that would wait fails with EAGAIN instead). Returns
/// how many bytes it threw away.
fn drain(n: &Narrator, fifo: &OwnedFd) -> Result<usize> {
    let raw = fifo.as_raw_fd();
    n.call(format_args!("fcntl({raw}, F_SETFL, O_NONBLOCK)"), || {
        fcntl(fifo, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
    })?;
    let mut dropped = 0;
    let mut buf = [0u8; 4096];
    let result = loop {
        match FdStream::new(fifo, n).read(&mut buf) {
            Ok(0) => break Ok(dropped),
            Ok(got) => dropped += got,
            Err(e) if e.errno() == Some(Errno::EAGAIN) => break Ok(dropped),
            Err(e) => break Err(e),
        }
    };
    n.call(
        format_args!("fcntl({raw}, F_SETFL, 0)   (reads wait again)"),
        || fcntl(fifo, FcntlArg::F_SETFL(OFlag::empty())),
    )?;
    result
}

/// Opens a FIFO for reading without waiting for a writer, and then for writing too.
/// Holding a write end of our own means `read` never returns end-of-file just because
/// the other side closed its end between two messages: it waits for the next one.
/// Returns the read end (blocking again) and our write end.
fn open_both_ends(n: &Narrator, path: &Path) -> Result<(OwnedFd, OwnedFd)> {
    // O_NONBLOCK: a read-only open of a FIFO then returns at once, writer or not (fifo(7)).
    let read_end = open_fifo(
        n,
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK,
        "O_RDONLY|O_NONBLOCK",
    )?;
    // A write-only open does not wait either: there is a reader now, ourselves.
    n.say("our own writer next: read never sees end-of-file");
    let write_end = open_fifo(n, path, OFlag::O_WRONLY, "O_WRONLY")?;
    n.call(
        format_args!(
            "fcntl({}, F_SETFL, 0)   (reads wait again)",
            read_end.as_raw_fd()
        ),
        || fcntl(&read_end, FcntlArg::F_SETFL(OFlag::empty())),
    )?;
    Ok((read_end, write_end))
}

/// The client's end of the server's FIFO. O_NONBLOCK: with no server reading, `open`
/// fails at once with ENXIO (fifo(7)) instead of waiting for one forever; then the
/// descriptor is made blocking again for the writes.
fn open_server(n: &Narrator, path: &Path) -> Result<OwnedFd> {
    let fd = open_fifo(n, path, OFlag::O_WRONLY | OFlag::O_NONBLOCK, "O_WRONLY|O_NONBLOCK")
        .map_err(|e| match e.errno() {
            Some(Errno::ENXIO) => e.hint(
                "nobody reads this FIFO: the server is not running (a killed server's FIFO? `fifo-demo clean` removes it)",
            ),
            _ => e,
        })?;
    n.call(
        format_args!(
            "fcntl({}, F_SETFL, 0)   (writes wait again)",
            fd.as_raw_fd()
        ),
        || fcntl(&fd, FcntlArg::F_SETFL(OFlag::empty())),
    )?;
    Ok(fd)
}

/// How long a client waits in one `poll` before it looks whether the server still lives.
const TICK: Duration = Duration::from_secs(1);

/// Waits until the client's reply FIFO has a reply to read. The client holds a writer of
/// its own reply FIFO (so that `read` never sees end-of-file), which also means that
/// nothing would ever tell it the server died: so it waits in `poll` a second at a time,
/// checks between two waits that some process still reads the server's FIFO, and gives
/// up after `patience`.
fn await_reply(
    n: &Narrator,
    replies: &OwnedFd,
    server_path: &Path,
    patience: Option<Duration>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        let tick = patience.map_or(TICK, |p| TICK.min(p.saturating_sub(start.elapsed())));
        let ms = u16::try_from(tick.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(replies.as_fd(), PollFlags::POLLIN)];
        match n.call(
            format_args!(
                "poll([{{fd={}, events=POLLIN}}], 1, {ms})",
                replies.as_raw_fd()
            ),
            || poll(&mut fds, PollTimeout::from(ms)),
        ) {
            Ok(1..) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.errno() == Some(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        check_server(n, server_path)?;
        if let Some(patience) = patience.filter(|p| start.elapsed() >= *p) {
            return Err(Error::bad_data(
                "wait for a reply",
                format!("no reply within {} s", patience.as_secs_f64()),
            )
            .hint("the server reads its FIFO but did not answer: it is busy, paused (Ctrl-Z, --step), or lost my request (its output says so); `client --timeout 0` waits forever"));
        }
    }
}

/// Whether some process still has the server's FIFO open for reading: an `open` for
/// writing with O_NONBLOCK fails with ENXIO when none has (fifo(7)), and never waits.
fn check_server(n: &Narrator, path: &Path) -> Result<()> {
    match n.call(
        format_args!(
            "open({:?}, O_WRONLY|O_NONBLOCK|O_NOFOLLOW)   (does the server still read?)",
            path.display()
        ),
        || {
            open(
                path,
                OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        },
    ) {
        Ok(_probe) => Ok(()),
        Err(e) if matches!(e.errno(), Some(Errno::ENXIO | Errno::ENOENT)) => {
            Err(e.hint("the server has gone (killed, or it ended) while I waited for its reply"))
        }
        Err(e) => Err(e),
    }
}

// ANCHOR: client
/// A client: makes its reply FIFO, sends `count` requests for one number each to the
/// server's FIFO, and checks that the numbers it gets only go up. It waits at most
/// `patience` for each reply, and notices within a second or two if the server dies.
pub fn client(
    n: &Narrator,
    server_path: &Path,
    count: u64,
    patience: Option<Duration>,
) -> Result<()> {
    let me = unistd::getpid();
    let reply_path = client_fifo(server_path, me);
    let _fifo = make_or_find(n, &reply_path)?;
    cleanup::exit_on_interrupt(n)?;
    let (replies, _keep_open) = open_both_ends(n, &reply_path)?;
    let mut requests = FdStream::new(open_server(n, server_path)?, n);
    let mut request = [0u8; REQUEST_LEN];
    request[..4].copy_from_slice(&(me.as_raw() as u32).to_le_bytes());
    request[4..].copy_from_slice(&1u32.to_le_bytes());
    let (mut last, mut increasing) = (None, 0u64);
    for seq in 0..count {
        if seq == NARRATED_MESSAGES {
            n.mute("... the remaining requests without narration");
        }
        requests
            .write_all(&request)
            .map_err(|e| e.hint("the server has exited"))?;
        await_reply(n, &replies, server_path, patience)?;
        let mut number = [0u8; 8];
        if !FdStream::new(&replies, n).read_full(&mut number)? {
            return Err(Error::bad_data("read a reply", "end of file"));
        }
        let number = u64::from_le_bytes(number);
        if last.is_none_or(|last| number > last) {
            increasing += 1;
        }
        last = Some(number);
    }
    n.unmute();
    print_summary(format_args!(
        "summary: requests={count} replies={count} increasing={increasing}"
    ))?;
    if increasing != count {
        return Err(Error::bad_data(
            "check the replies",
            "a number did not go up",
        ));
    }
    Ok(())
}
// ANCHOR_END: client

// ANCHOR: writers
/// `writers` children write `count` frames each of `size` payload bytes into one FIFO at
/// once, and the parent reads them. Writes of at most PIPE_BUF bytes are atomic: they
/// never mix with other writers' bytes. Larger writes may be split and interleaved, and
/// the first frame that does not check out shows where.
pub fn writers(n: &Narrator, path: &Path, writers: u32, count: u64, size: usize) -> Result<()> {
    let _fifo = make_or_find(n, path)?;
    let mut children = Vec::new();
    for w in 0..writers {
        match process::fork(n, "writer")? {
            Fork::Child(me) => {
                let result = open_end(&me, path, true).and_then(|fd| {
                    me.mute("writing without narration");
                    let mut fifo = FdStream::new(fd, &me);
                    let mut frame = Vec::new();
                    (0..count).try_for_each(|i| {
                        message::encode_into(u64::from(w) * count + i, size, &mut frame);
                        fifo.write_all(&frame)
                    })
                });
                process::exit_child(&me, result)
            }
            Fork::Parent { child } => children.push(child),
        }
    }
    cleanup::exit_on_interrupt(n)?;
    let fd = open_end(n, path, false)?;
    let pipe_buf = unistd::fpathconf(&fd, PathconfVar::PIPE_BUF)
        .ok()
        .flatten()
        .unwrap_or(0);
    let frame_len = size + message::OVERHEAD;
    n.say(format_args!(
        "PIPE_BUF = {pipe_buf}: each frame is {frame_len} bytes, so writes are {}",
        if i64::try_from(frame_len).is_ok_and(|f| f <= pipe_buf) {
            "atomic"
        } else {
            "NOT guaranteed to be atomic"
        }
    ));
    let mut fifo = FdStream::new(fd, n);
    n.mute("reading without narration");
    let (mut frames, mut intact, mut lost_at) = (0u64, 0u64, None);
    let mut buf = Vec::new();
    while lost_at.is_none() {
        match fifo.read_frame(&mut buf, size) {
            Ok(None) => break,
            Ok(Some(frame)) if frame.intact && frame.payload.len() == size => {
                frames += 1;
                intact += 1;
            }
            // A bad checksum or a bad header: bytes of two writers mixed. The stream has
            // lost its framing; nothing after this point can be trusted.
            Ok(Some(_)) | Err(_) => {
                frames += 1;
                lost_at = Some(frames);
            }
        }
    }
    // Read on to end-of-file, so that no writer blocks on a full FIFO.
    while fifo.read(&mut vec![0; 64 << 10])? > 0 {}
    n.unmute();
    for child in children {
        process::wait_for(n, child, "writer")?;
    }
    match lost_at {
        None => n.say("every frame arrived whole: no write was mixed with another"),
        Some(at) => n.say(format_args!(
            "frame {at} did not check out: two writers' bytes were mixed"
        )),
    }
    print_summary(format_args!(
        "summary: writers={writers} frame_bytes={frame_len} pipe_buf={pipe_buf} intact={intact} framing={}",
        if lost_at.is_none() { "kept" } else { "lost" }
    ))
}
// ANCHOR_END: writers

/// `clean`: removes what killed runs left at each of `paths`: the FIFO at the path and
/// the client FIFOs beside it (`PATH-PID`). Only what the demo makes is removed: a FIFO
/// (`lstat`, so a symbolic link is judged as itself), owned by this user, named `PATH`
/// or `PATH-PID`, that no process is using (no producer or server holds a lock on it,
/// see [`claim`], and the client PID is not running). Everything else is left alone and
/// named, and clean goes on to the next. Ends with an error if it left anything that
/// bears a name the demo makes.
pub fn clean(n: &Narrator, paths: &[PathBuf]) -> Result<()> {
    let (mut removed, mut refused) = (0u64, 0u64);
    for path in paths {
        let others: Vec<&PathBuf> = paths.iter().filter(|p| *p != path).collect();
        let mut candidates = vec![(path.clone(), None)];
        candidates.extend(client_fifos(n, path, &others));
        for (candidate, pid) in candidates {
            match verdict(&candidate, pid) {
                Verdict::Missing => {}
                Verdict::Refuse(why) => {
                    n.essential(format_args!("left {}: {why}", candidate.display()));
                    refused += 1;
                }
                Verdict::Remove => {
                    // In the private folder (0700), nobody else can swap the file between
                    // the look and the unlink; in a folder shared with others, use the
                    // sticky bit (as /tmp does) so that they cannot rename ours.
                    n.call(format_args!("unlink({:?})", candidate.display()), || {
                        unistd::unlink(&candidate)
                    })?;
                    removed += 1;
                }
            }
        }
    }
    if removed + refused == 0 {
        n.say("nothing to clean");
    }
    print_summary(format_args!("summary: removed={removed} refused={refused}"))?;
    if refused > 0 {
        return Err(Error::bad_data(
            "clean",
            format!("left {refused} object(s) that are not its to remove (named above)"),
        )
        .hint("clean removes only FIFOs of yours, named PATH or PATH-PID, that nobody uses; remove the others yourself if they are yours"));
    }
    Ok(())
}

/// What [`clean`] does with one path.
enum Verdict {
    Missing,
    Remove,
    Refuse(String),
}

/// Judges `path`, a FIFO of the demo's name (a client's, if `pid` is given).
fn verdict(path: &Path, pid: Option<i32>) -> Verdict {
    let st = match lstat_ours(path, Kind::Fifo) {
        Ok(None) => return Verdict::Missing,
        Ok(Some(st)) => st,
        Err(e) => return Verdict::Refuse(e.to_string()),
    };
    if let Some(holder) = lock_holder(&st) {
        return Verdict::Refuse(format!(
            "pid {holder} holds a lock on it (/proc/locks): a producer or server is using it"
        ));
    }
    if let Some(pid) = pid.filter(|&pid| process::is_alive(pid)) {
        return Verdict::Refuse(format!(
            "pid {pid} is running: the client whose reply FIFO it is may be waiting on it"
        ));
    }
    Verdict::Remove
}

/// The entries beside `path` named `NAME-PID`, the client FIFOs a server's clients make,
/// sorted, with their pids. Other entries whose names start with `NAME-` are not the
/// demo's: each is named and left alone (except those that belong to one of `others`,
/// the other paths being cleaned).
fn client_fifos(n: &Narrator, path: &Path, others: &[&PathBuf]) -> Vec<(PathBuf, Option<i32>)> {
    let Some(name) = path.file_name().map(|f| f.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let prefix = format!("{name}-");
    let mut siblings: Vec<PathBuf> = path
        .parent()
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    siblings.sort();
    let mut found = Vec::new();
    for sibling in siblings {
        let other = others.iter().any(|o| {
            let mut o_prefix = o.as_os_str().to_owned();
            o_prefix.push("-");
            sibling == **o
                || sibling
                    .as_os_str()
                    .as_encoded_bytes()
                    .starts_with(o_prefix.as_encoded_bytes())
        });
        if other {
            continue;
        }
        let suffix = sibling
            .file_name()
            .map(|f| f.to_string_lossy()[prefix.len()..].to_string())
            .unwrap_or_default();
        match suffix.parse::<i32>() {
            Ok(pid) if pid > 0 && suffix.bytes().all(|b| b.is_ascii_digit()) => {
                found.push((sibling, Some(pid)));
            }
            _ => n.announce(format_args!(
                "left {}: not a name fifo-demo makes ({name} and {name}-PID)",
                sibling.display()
            )),
        }
    }
    found
}
