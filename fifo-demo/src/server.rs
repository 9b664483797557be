//! TLPI's sequence-number server (section 44.8): requests come in on one well-known
//! FIFO, and each client gets its answer on a FIFO of its own.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use common::cleanup;
use common::narrate::print_summary;
use common::owner::{Kind, fstat_ours, lstat_ours};
use common::stream::FdStream;
use common::{Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::meet::open_fifo;
use crate::{Claimant, claim, make_or_find};

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
    say!(
        n,
        "I open my FIFO for reading and for writing: with a writer of my own, read never sees end-of-file between two clients"
    );
    let (inbox, _keep_open) = open_both_ends(n, path)?;
    claim(n, &inbox, path, Claimant::Server)?;
    n.announce(tr!("ready for requests"));
    let pid_max = pid_max();
    let (mut next, mut served) = (0u64, 0u64);
    for _ in n.first_few(0.., tr!("serving the rest without narration")) {
        if requests == Some(served) {
            break;
        }
        let mut request = [0u8; REQUEST_LEN];
        // One read, not "read until 8 bytes": how many bytes one read finds is the check.
        let got = FdStream::new(&inbox, n).read(&mut request)?;
        if got == 0 {
            break; // Never, while we hold a writer of our own; but not a reason to spin.
        }
        if got < REQUEST_LEN {
            n.announce(tr!("read {got} bytes, fewer than a request: clients write each request whole, so these are not one; discarded", got));
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
            n.announce(tr!("not a request (pid {pid}, count {len}): the FIFO holds bytes out of step with the requests; discarded them and the {dropped} bytes after them, so that the next request starts on a boundary (a client whose request was among them times out)", pid, len, dropped));
            continue;
        };
        if reply(n, &client_fifo(path, pid), next)? {
            next += u64::from(len);
        }
        served += 1;
    }
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
    let path = fifo.display();
    let refuse = |why: &dyn std::fmt::Display| {
        n.announce(tr!("not replying on {path}: {why}", path, why));
        Ok(false)
    };
    let gone = || {
        n.announce(tr!("the client of {path} is gone; no reply", path));
        Ok(false)
    };
    let judged = match lstat_ours(fifo, Kind::Fifo) {
        Ok(Some(st)) => st,
        Ok(None) => return gone(),
        Err(e) => return refuse(&e),
    };
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match sys::open(n, fifo, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if matches!(e.errno(), Some(Errno::ENXIO | Errno::ENOENT)) => return gone(),
        Err(e) => return refuse(&e),
    };
    match fstat_ours(&fd, Kind::Fifo) {
        Ok(st) if (st.st_dev, st.st_ino) == (judged.st_dev, judged.st_ino) => {}
        Ok(_) => return refuse(&tr!("the FIFO was replaced between lstat and open")),
        Err(e) => return refuse(&e),
    }
    let mut out = FdStream::new(fd, n);
    match out.write_all(&first.to_le_bytes()) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(Errno::EPIPE) => Ok(false),
        // A client that asks and never reads fills its FIFO; that is its problem.
        Err(e) if e.errno() == Some(Errno::EAGAIN) => refuse(&tr!(
            "its FIFO is full: the client does not read its replies"
        )),
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
    sys::fcntl(n, fifo, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
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
    sys::fcntl(n, fifo, FcntlArg::F_SETFL(OFlag::empty()))?;
    say!(n, "reads wait again");
    result
}

/// Opens a FIFO for reading without waiting for a writer, and then for writing too.
/// Holding a write end of our own means `read` never returns end-of-file just because
/// the other side closed its end between two messages: it waits for the next one.
/// Returns the read end (blocking again) and our write end.
pub(crate) fn open_both_ends(n: &Narrator, path: &Path) -> Result<(OwnedFd, OwnedFd)> {
    // O_NONBLOCK: a read-only open of a FIFO then returns at once, writer or not (fifo(7)).
    say!(
        n,
        "O_NONBLOCK: this open for reading does not wait for a writer"
    );
    let read_end = open_fifo(n, path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
    // A write-only open does not wait either: there is a reader now, ourselves.
    let write_end = open_fifo(n, path, OFlag::O_WRONLY)?;
    sys::fcntl(n, &read_end, FcntlArg::F_SETFL(OFlag::empty()))?;
    say!(n, "reads wait again");
    Ok((read_end, write_end))
}
