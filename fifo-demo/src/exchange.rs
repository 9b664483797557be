//! The producer and the consumer of a FIFO: in one terminal ([`exchange`]), each in a
//! terminal of its own ([`producer`], [`consumer`]), or with plain bytes so that `echo`
//! and `cat` can be the other side ([`produce_lines`], [`consume_raw`]).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use common::cleanup::{self, Guard};
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::stream::{self, FdStream};
use common::{Context, Narrator, Result, say, sys, tr};

use crate::{Claimant, claim, make_or_find, open_end};

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
            claim(n, &fd, path, Claimant::Producer)?;
            stream::produce(n, fd, count, size)?;
            process::wait_for(n, child, "consumer")
        }
    }
}
// ANCHOR_END: exchange

/// The `producer` role, in a terminal of its own: makes or finds the FIFO, waits for a
/// reader, takes the FIFO for itself, and sends `count` messages of `size` bytes, or
/// the lines of standard input (`stdin`). With `keep`, a FIFO it made stays at the end.
pub fn producer(
    n: &Narrator,
    path: &Path,
    count: u64,
    size: usize,
    stdin: bool,
    keep: bool,
) -> Result<()> {
    let fifo = make_or_find(n, path)?;
    cleanup::exit_on_interrupt(n)?;
    let fd = open_end(n, path, true)?;
    claim(n, &fd, path, Claimant::Producer)?;
    let result = if stdin {
        produce_lines(n, fd)
    } else {
        stream::produce(n, fd, count, size)
    };
    keep_if_asked(n, fifo, keep, path);
    result
}

/// The `consumer` role, in a terminal of its own: makes or finds the FIFO, waits for a
/// writer, and checks `count` messages, or prints whatever arrives (`raw`). With `keep`,
/// a FIFO it made stays at the end.
pub fn consumer(n: &Narrator, path: &Path, count: u64, raw: bool, keep: bool) -> Result<()> {
    let fifo = make_or_find(n, path)?;
    cleanup::exit_on_interrupt(n)?;
    let fd = open_end(n, path, false)?;
    let result = if raw {
        consume_raw(n, fd)
    } else {
        stream::consume(n, fd, count, stream::MAX_SIZE)
    };
    keep_if_asked(n, fifo, keep, path);
    result
}

/// With `--keep`, the FIFO this role made stays after it ends (its guard is disarmed),
/// to show that a FIFO is a file that outlives the processes that used it.
fn keep_if_asked(n: &Narrator, fifo: Option<Guard>, keep: bool, path: &Path) {
    match fifo {
        Some(guard) if keep => {
            guard.disarm();
            n.announce(tr!(
                "--keep: {path} stays; see `ls -l` (type p), remove it with `fifo-demo clean`",
                path = path.display()
            ));
        }
        other => drop(other),
    }
}

/// The consumer's `--raw` mode: copies whatever arrives to standard output, so that
/// `echo hello > PATH` from a shell is a producer. Ends at end-of-file.
pub fn consume_raw(n: &Narrator, fd: OwnedFd) -> Result<()> {
    let mut fifo = FdStream::new(fd, n);
    let mut buf = vec![0; 64 << 10];
    let (mut bytes, mut reads) = (0u64, 0u64);
    let mut out = std::io::stdout().lock();
    for _ in n.first_few(0.., tr!("copying the rest without narration")) {
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
    say!(
        n,
        "read() = 0: end of file, every writer has closed the FIFO"
    );
    print_summary(format_args!("summary: bytes={bytes} reads={reads}"))
}

/// The producer's `--stdin` mode: sends each line of standard input with one `write`, so
/// that `cat PATH` or `consumer --raw` shows them.
pub fn produce_lines(n: &Narrator, fd: OwnedFd) -> Result<()> {
    let mut fifo = FdStream::new(fd, n);
    let mut lines = 0u64;
    let mut line = String::new();
    let stdin = std::io::stdin();
    for _ in n.first_few(0.., tr!("sending the rest without narration")) {
        line.clear();
        if std::io::BufRead::read_line(&mut stdin.lock(), &mut line).context("read(0)")? == 0 {
            break;
        }
        fifo.write_all(line.as_bytes())?;
        lines += 1;
    }
    say!(
        n,
        "sent {lines} lines; closing the FIFO gives the reader end-of-file",
        lines
    );
    sys::close(n, fifo.into_inner())
}
