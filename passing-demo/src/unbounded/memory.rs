//! The last "unbounded" link: a receiver that takes every message at once and keeps it
//! in its own memory, so that its sender never waits. Its bound is that memory.
//!
//! The relay is a forked child. It lowers its own RLIMIT_AS (the address space it may
//! have, getrlimit(2)) to what it uses now and a little more, so that it runs out after a
//! few mebibytes instead of taking the machine's memory, then reads 1 MiB pieces from a
//! pipe into buffers it keeps. The sender writes until the relay stops taking: when an
//! allocation fails (`mmap` refuses it under the limit, and Rust's `try_reserve` reports
//! it instead of aborting), the relay lets go of one buffer (room to speak), says how
//! much it held, and exits; the sender's next `write` fails with EPIPE.

use std::os::fd::OwnedFd;

use common::process::{self, Fork};
use common::{Error, Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::resource::Resource;

use crate::sys::{self, Limit};

/// Bytes per piece, sent and kept.
const PIECE: usize = 1 << 20;

/// How much more address space than it uses now the relay allows itself.
const HEADROOM: u64 = 16 << 20;

/// Forks the relay, sends it 1 MiB pieces until it stops taking them, and returns how
/// many mebibytes the pipe accepted.
pub fn relay(n: &Narrator) -> Result<u64> {
    let (read_end, write_end) = common::sys::pipe2(n, OFlag::O_CLOEXEC)?;
    say!(
        n,
        "a relay will take everything I send and keep it: the sender never waits, as on an unbounded link, until the relay's memory ends"
    );
    match process::fork(n, "relay")? {
        Fork::Child(me) => {
            let result =
                common::sys::close(&me, write_end).and_then(|()| keep_everything(&me, read_end));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            common::sys::close(n, read_end)?;
            let sent = send_until_refused(n, &write_end)?;
            common::sys::close(n, write_end)?;
            process::wait_for(n, child, "relay")?;
            Ok(sent)
        }
    }
}

/// The sender: 1 MiB writes until EPIPE; returns the mebibytes written.
fn send_until_refused(n: &Narrator, fd: &OwnedFd) -> Result<u64> {
    let piece = vec![b'm'; PIECE];
    let mut sent = 0u64;
    for _ in n.first_few(0.., tr!("sending the rest without narration")) {
        let mut rest = piece.as_slice();
        while !rest.is_empty() {
            match common::sys::write(n, fd, rest) {
                Ok(wrote) => rest = &rest[wrote..],
                Err(e) if e.errno() == Some(Errno::EPIPE) => {
                    n.announce(tr!(
                        "EPIPE after {sent} MiB: the relay has stopped taking; its memory was the bound",
                        sent
                    ));
                    return Ok(sent);
                }
                Err(e) => return Err(e),
            }
        }
        sent += 1;
    }
    Ok(sent)
}

/// The relay: lowers its RLIMIT_AS, then reads and keeps 1 MiB pieces until it cannot
/// allocate another.
fn keep_everything(me: &Narrator, fd: OwnedFd) -> Result<()> {
    let limit = sys::getrlimit(me, Resource::RLIMIT_AS)?;
    let used = address_space()?;
    let low = Limit {
        soft: (used + HEADROOM).min(limit.soft),
        hard: limit.hard,
    };
    say!(
        me,
        "I use {used} bytes of address space; I let myself have {more} more",
        used,
        more = HEADROOM
    );
    sys::setrlimit(me, Resource::RLIMIT_AS, low)?;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for _ in me.first_few(0.., tr!("keeping the rest without narration")) {
        let mut piece = Vec::new();
        if piece.try_reserve_exact(PIECE).is_err() || kept.try_reserve(1).is_err() {
            // Let one piece go, so that there is room to say what happened.
            let held = kept.len();
            kept.pop();
            me.announce(tr!(
                "no memory for another piece after {held} MiB (RLIMIT_AS): I stop taking",
                held
            ));
            return common::sys::close(me, fd);
        }
        piece.resize(PIECE, 0);
        let mut filled = 0;
        // A pipe hands over at most what it holds (64 KiB) per read.
        for _ in me.first_few(0.., tr!("the rest of this piece without narration")) {
            match common::sys::read(me, &fd, &mut piece[filled..])? {
                0 => return Err(Error::bad_data("read", tr!("the sender stopped first"))),
                got => filled += got,
            }
            if filled == PIECE {
                break;
            }
        }
        kept.push(piece);
    }
    Ok(())
}

/// This process's address space in bytes, from /proc/self/status (`VmSize`, proc(5)).
fn address_space() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| Error::bad_data("read(/proc/self/status)", e.to_string()))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| Error::bad_data("read(/proc/self/status)", tr!("no VmSize line")))
}
