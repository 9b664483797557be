//! The signal handler and the self-pipe: what a handler may do, and how it hands the
//! real work to the main loop.
//!
//! A handler runs in the middle of whatever the process was doing, so it may touch only
//! lock-free atomics and async-signal-safe calls (signal-safety(7)). [`on_signal`] counts
//! the signal and writes a 12-byte record of it into a pipe whose other end the main
//! loop waits on (the "self-pipe trick", TLPI section 63.5.2); [`Records`] reads the
//! records back.

use std::ffi::c_void;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use common::{Narrator, Result, say, sys as common_sys, tr};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{SaFlags, Signal};

use crate::sys;

// What the handler knows, for the main loop to read. A handler may touch only lock-free
// atomics and async-signal-safe calls (signal-safety(7)); these statics are all it uses.
/// The write end of the self-pipe, or -1.
static SELF_PIPE: AtomicI32 = AtomicI32::new(-1);
/// SIGUSR1 signals caught so far.
static TICKS: AtomicU64 = AtomicU64::new(0);
/// The number of a SIGINT or SIGTERM that asked us to stop, or 0.
static STOP: AtomicI32 = AtomicI32::new(0);
/// Records the self-pipe had no room for (it holds thousands: only a flood fills it).
static LOST: AtomicU64 = AtomicU64::new(0);

/// What the handler passes to the main loop for each signal, through the self-pipe: the
/// signal's number, its `si_code` (how it was sent) and its `si_pid` (who says they sent
/// it), three native-endian `i32`s. A write of 12 bytes to a pipe is atomic (pipe(7):
/// up to PIPE_BUF bytes), so records never mix.
const RECORD: usize = 12;

// ANCHOR: handler
/// The signal handler. It runs in the middle of whatever the process was doing, so it
/// does only what is safe there: it counts the signal in atomics and writes what the
/// kernel told about it (number, `si_code`, `si_pid`) as one record into the self-pipe,
/// which wakes the main loop; the main loop judges the record and does the real work
/// (answering, printing).
extern "C" fn on_signal(signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut c_void) {
    // SAFETY: __errno_location returns this thread's errno, valid while the thread lives.
    // The handler saves and restores errno because its write() may change it, and the
    // code it interrupted may be just about to read it.
    let saved_errno = unsafe { *libc::__errno_location() };
    // SAFETY: the handler is installed with SA_SIGINFO, so the kernel passes a valid
    // siginfo_t; si_code is always set, si_pid for signals sent by a process.
    let (code, sender) = unsafe { ((*info).si_code, (*info).si_pid()) };
    match signal {
        libc::SIGUSR1 => {
            TICKS.fetch_add(1, Ordering::SeqCst);
        }
        libc::SIGINT | libc::SIGTERM => STOP.store(signal, Ordering::SeqCst),
        _ => {}
    }
    let fd = SELF_PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        let mut record = [0u8; RECORD];
        record[0..4].copy_from_slice(&signal.to_ne_bytes());
        record[4..8].copy_from_slice(&code.to_ne_bytes());
        record[8..12].copy_from_slice(&sender.to_ne_bytes());
        // SAFETY: write(2) is async-signal-safe; `fd` is the self-pipe's write end, which
        // is non-blocking (a full pipe loses the record, never blocks the handler), and
        // `record` is a local array valid for the call.
        let wrote = unsafe { libc::write(fd, record.as_ptr().cast(), RECORD) };
        if wrote != RECORD as isize {
            LOST.fetch_add(1, Ordering::SeqCst);
        }
    }
    // SAFETY: as above; this puts back the errno the interrupted code had.
    unsafe { *libc::__errno_location() = saved_errno };
}
// ANCHOR_END: handler

/// The self-pipe and the installed handlers: the receiver's side of the conversation.
/// Dropping it stops the handler from writing to the pipe before the pipe is closed.
#[derive(Debug)]
pub struct Handlers {
    /// The read end, which the main loop waits on.
    pub wake: OwnedFd,
    _write_end: OwnedFd,
}

impl Drop for Handlers {
    fn drop(&mut self) {
        SELF_PIPE.store(-1, Ordering::SeqCst);
    }
}

// ANCHOR: install
/// Makes the self-pipe and installs [`on_signal`] for SIGUSR1, SIGUSR2, SIGINT and
/// SIGTERM with `sigaction`.
pub fn install_handlers(n: &Narrator) -> Result<Handlers> {
    // Both ends non-blocking: the handler must never wait for room, and the main loop
    // reads only what is there.
    let (wake, write_end) = common_sys::pipe2(n, OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    say!(
        n,
        "that is the self-pipe: the handler writes a record of each signal to fd {write}, \
         and I wait on fd {read}",
        write = write_end.as_raw_fd(),
        read = wake.as_raw_fd()
    );
    SELF_PIPE.store(write_end.as_raw_fd(), Ordering::SeqCst);
    for signal in [
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGINT,
        Signal::SIGTERM,
    ] {
        // SA_SIGINFO: the handler gets a siginfo_t, with the sender's pid. SA_RESTART: a
        // slow call (a read) that the signal interrupts starts again by itself.
        let flags = SaFlags::SA_SIGINFO | SaFlags::SA_RESTART;
        // SAFETY: on_signal does only async-signal-safe work (atomics and write(2)), and
        // restores errno, as signal-safety(7) requires of a handler.
        unsafe { sys::sigaction(n, signal, "on_signal", on_signal, flags) }?;
    }
    Ok(Handlers {
        wake,
        _write_end: write_end,
    })
}
// ANCHOR_END: install

/// SIGUSR1 signals the handler has caught so far.
pub fn caught() -> u64 {
    TICKS.load(Ordering::SeqCst)
}

/// The SIGINT or SIGTERM that asked us to stop, if one did.
pub fn stop_requested() -> Option<Signal> {
    Signal::try_from(STOP.load(Ordering::SeqCst)).ok()
}

/// Says how many signals the self-pipe had no room for, if any.
pub fn report_lost(n: &Narrator) {
    let lost = LOST.load(Ordering::SeqCst);
    if lost > 0 {
        n.announce(tr!(
            "{lost} signals could not be recorded: the self-pipe was full (a flood of signals)",
            lost
        ));
    }
}

/// Reads records from the self-pipe and hands them out one by one.
#[derive(Debug, Default)]
pub(crate) struct Records {
    bytes: Vec<u8>,
    at: usize,
}

impl Records {
    /// One narrated `read` of what the self-pipe holds (it never waits: the pipe is
    /// non-blocking, and called after poll said there is data).
    pub(crate) fn read(&mut self, n: &Narrator, wake: &OwnedFd) -> Result<()> {
        self.bytes.drain(..self.at);
        self.at = 0;
        let mut buf = [0u8; 16 * RECORD];
        let got = loop {
            match common_sys::read(n, wake, &mut buf) {
                // A signal came between poll and read: its handler ran, read again.
                Err(e) if e.errno() == Some(Errno::EINTR) => continue,
                // Nothing after all (another wake-up took it): no record this time.
                Err(e) if e.errno() == Some(Errno::EAGAIN) => break 0,
                other => break other?,
            }
        };
        self.bytes.extend_from_slice(&buf[..got]);
        Ok(())
    }

    /// The next whole record: (signal, si_code, si_pid).
    pub(crate) fn next(&mut self) -> Option<(i32, i32, i32)> {
        let record = self.bytes.get(self.at..self.at + RECORD)?;
        let field = |i: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&record[i * 4..i * 4 + 4]);
            i32::from_ne_bytes(word)
        };
        let parsed = (field(0), field(1), field(2));
        self.at += RECORD;
        Some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_whole() {
        let mut r = Records::default();
        for word in [10i32, 0, 42, 12, -1, 7] {
            r.bytes.extend_from_slice(&word.to_ne_bytes());
        }
        r.bytes.extend_from_slice(&[1, 2, 3]); // part of a record still on its way
        assert_eq!(r.next(), Some((10, 0, 42)));
        assert_eq!(r.next(), Some((12, -1, 7)));
        assert_eq!(r.next(), None);
    }
}
