//! The narrated system calls of signals, one function per call, named as in the manual:
//! [`sigaction`], [`sigprocmask`], [`sigpending`], [`sigqueue`], [`sigtimedwait`],
//! [`sigwaitinfo`]. (`kill`, `pipe2`, `read` and `poll` are `common::sys`'s: other demos
//! make them too.)
//!
//! Each builds its `strace`-style line from its typed arguments, as `common::sys` does
//! (`sigprocmask(SIG_BLOCK, {SIGUSR1}, NULL) = 0`), and returns an error that names the
//! call. nix does not wrap the calls of real-time signals (`sigqueue`, `sigwaitinfo`) nor
//! sets that hold them, so this module holds the `unsafe` of the crate's calls, each
//! block with the reason it is sound.

use std::ffi::c_void;
use std::fmt;
use std::time::Duration;

use common::narrate::Shown;
use common::{Narrator, Result};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

/// A signal's name: `SIGUSR1`, or `SIGRTMIN+2` for a real-time signal, which has no
/// name of its own.
pub fn name(signal: libc::c_int) -> String {
    match Signal::try_from(signal) {
        Ok(standard) => standard.as_str().to_string(),
        Err(_) => match signal - libc::SIGRTMIN() {
            0 => "SIGRTMIN".to_string(),
            n => format!("SIGRTMIN+{n}"),
        },
    }
}

/// A set of signals, real-time ones included (nix's `SigSet` cannot name those), shown
/// as the man pages write it: `{SIGUSR1, SIGRTMIN}`.
#[derive(Clone, Copy)]
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    /// The set of `signals`.
    pub fn of(signals: &[libc::c_int]) -> SignalSet {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t; sigaddset ignores (EINVAL) a bad number.
        unsafe {
            libc::sigemptyset(&mut set);
            for &signal in signals {
                libc::sigaddset(&mut set, signal);
            }
        }
        SignalSet(set)
    }

    /// Whether `signal` is in the set.
    pub fn contains(&self, signal: libc::c_int) -> bool {
        // SAFETY: the set is initialised; sigismember only reads it.
        unsafe { libc::sigismember(&self.0, signal) == 1 }
    }

    /// The set as libc takes it.
    pub fn as_raw(&self) -> &libc::sigset_t {
        &self.0
    }
}

impl fmt::Display for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = (1..=libc::SIGRTMAX())
            .filter(|&s| self.contains(s))
            .map(name)
            .collect();
        write!(f, "{{{}}}", names.join(", "))
    }
}

impl fmt::Debug for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignalSet{self}")
    }
}

/// The flags of a `sigaction`, in the order a C program writes them.
fn sa_flags(flags: SaFlags) -> String {
    let named = [
        (SaFlags::SA_SIGINFO, "SA_SIGINFO"),
        (SaFlags::SA_RESTART, "SA_RESTART"),
        (SaFlags::SA_NODEFER, "SA_NODEFER"),
        (SaFlags::SA_RESETHAND, "SA_RESETHAND"),
        (SaFlags::SA_ONSTACK, "SA_ONSTACK"),
    ];
    let shown: Vec<&str> = named
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
    if shown.is_empty() {
        "0".into()
    } else {
        shown.join("|")
    }
}

/// A handler that takes a `siginfo_t` (installed with `SA_SIGINFO`).
pub type InfoHandler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void);

/// `sigaction(2)`: installs `handler` (called `handler_name` in the narration) for
/// `signal`, with `flags`.
///
/// # Safety
///
/// `handler` runs in the middle of whatever the process is doing: it must do only
/// async-signal-safe work (signal-safety(7)), such as lock-free atomics and `write(2)`,
/// and save and restore `errno` if it changes it.
pub unsafe fn sigaction(
    n: &Narrator,
    signal: Signal,
    handler_name: &str,
    handler: InfoHandler,
    flags: SaFlags,
) -> Result<()> {
    // An empty mask: no other signal is blocked while the handler runs.
    let action = SigAction::new(SigHandler::SigAction(handler), flags, SigSet::empty());
    n.call(
        format_args!(
            "sigaction({signal}, {{{handler_name}, {}}}, NULL)",
            sa_flags(flags)
        ),
        // SAFETY: the caller promises that `handler` is async-signal-safe.
        || unsafe { nix::sys::signal::sigaction(signal, &action) }.map(drop),
    )
}

/// What `sigprocmask` does with the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// `SIG_BLOCK`: add the set to the blocked signals.
    Block,
    /// `SIG_UNBLOCK`: take the set out of the blocked signals. A pending signal that is
    /// unblocked is delivered before `sigprocmask` returns.
    Unblock,
}

/// `sigprocmask(2)`: blocks or unblocks `set` in this process (its one thread). A
/// blocked signal stays pending until it is unblocked or taken by `sigwaitinfo`.
pub fn sigprocmask(n: &Narrator, how: How, set: &SignalSet) -> Result<()> {
    let (shown, raw) = match how {
        How::Block => ("SIG_BLOCK", libc::SIG_BLOCK),
        How::Unblock => ("SIG_UNBLOCK", libc::SIG_UNBLOCK),
    };
    n.call(format_args!("sigprocmask({shown}, {set}, NULL)"), || {
        // SAFETY: `set` is an initialised sigset_t; no old mask is asked for.
        Errno::result(unsafe { libc::sigprocmask(raw, set.as_raw(), std::ptr::null_mut()) })
            .map(drop)
    })
}

/// What `sigpending` filled in.
#[derive(Debug, Clone, Copy)]
pub struct Pending(pub SignalSet);

impl Shown for Pending {
    fn shown(&self) -> String {
        format!("0, set = {}", self.0)
    }
}

/// `sigpending(2)`: the signals that are pending for this process, waiting to be
/// unblocked: one bit per standard signal, however many times it was sent.
pub fn sigpending(n: &Narrator) -> Result<Pending> {
    n.call("sigpending(&set)", || {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it, and sigpending
        // fills it; both only write to `set`.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        Errno::result(unsafe { libc::sigemptyset(&mut set) })?;
        // SAFETY: as above.
        Errno::result(unsafe { libc::sigpending(&mut set) })?;
        Ok(Pending(SignalSet(set)))
    })
}

/// `sigqueue(3)`: sends `signal` to `pid` with `value` as its data (`sival_int`); a
/// real-time signal is queued, once per call. It hands something to another process, so
/// it is narrated before and after. EAGAIN: the per-user limit of queued signals
/// (RLIMIT_SIGPENDING, `ulimit -i`) is reached.
pub fn sigqueue(n: &Narrator, pid: Pid, signal: libc::c_int, value: u64) -> Result<()> {
    n.call_blocking(
        format_args!("sigqueue({pid}, {}, {{sival_int={value}}})", name(signal)),
        || {
            // The value travels in a union sigval; the libc crate spells it as a pointer.
            let sigval = libc::sigval {
                sival_ptr: value as usize as *mut c_void,
            };
            // SAFETY: sigqueue only reads its arguments, all passed by value.
            Errno::result(unsafe { libc::sigqueue(pid.as_raw(), signal, sigval) }).map(drop)
        },
    )
}

/// What `sigtimedwait` or `sigwaitinfo` took.
#[derive(Debug, Clone, Copy)]
pub struct Caught {
    /// The signal's number.
    pub signal: i32,
    /// Who sent it.
    pub sender: Pid,
    /// The value sent with sigqueue (0 for kill).
    pub value: u64,
}

impl Shown for Caught {
    fn shown(&self) -> String {
        // Only real-time signals carry a value worth showing.
        if Signal::try_from(self.signal).is_ok() {
            format!("{} (from pid {})", name(self.signal), self.sender)
        } else {
            format!(
                "{} (from pid {}, value {})",
                name(self.signal),
                self.sender,
                self.value
            )
        }
    }
}

/// `sigtimedwait(2)`, or with no time-out `sigwaitinfo(2)`, without narration: takes one
/// pending signal of `set` (which must be blocked) and returns what it carried.
fn take_signal(set: &SignalSet, timeout: Option<Duration>) -> nix::Result<Caught> {
    let timespec = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().try_into().unwrap_or(libc::time_t::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    let timeout_ptr = timespec
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: siginfo_t is plain data, for which all zero bytes are a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` and `info` are valid for the call; `timeout_ptr` is null or points to
    // `timespec`, which outlives the call.
    let signal = unsafe { libc::sigtimedwait(set.as_raw(), &mut info, timeout_ptr) };
    if signal < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel filled `info` for the signal it returned; si_pid and si_value are
    // set for signals sent with kill(2) and sigqueue(3).
    let (sender, value) = unsafe { (info.si_pid(), info.si_value().sival_ptr as usize as u64) };
    Ok(Caught {
        signal,
        sender: Pid::from_raw(sender),
        value,
    })
}

/// `sigtimedwait(2)`: waits at most `timeout` for a signal of `set` (blocked beforehand)
/// and takes it, without running any handler; EAGAIN if none came in time.
pub fn sigtimedwait(n: &Narrator, set: &SignalSet, timeout: Duration) -> Result<Caught> {
    n.call_blocking(
        format_args!("sigtimedwait({set}, &info, {timeout:?})"),
        || take_signal(set, Some(timeout)),
    )
}

/// `sigwaitinfo(2)`: waits for a signal of `set` (blocked beforehand) and takes it.
pub fn sigwaitinfo(n: &Narrator, set: &SignalSet) -> Result<Caught> {
    n.call_blocking(format_args!("sigwaitinfo({set}, &info)"), || {
        take_signal(set, None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_flags_are_shown_as_a_c_program_writes_them() {
        let set = SignalSet::of(&[libc::SIGUSR1, libc::SIGRTMIN(), libc::SIGRTMIN() + 2]);
        assert_eq!(set.to_string(), "{SIGUSR1, SIGRTMIN, SIGRTMIN+2}");
        assert_eq!(SignalSet::of(&[]).to_string(), "{}");
        assert_eq!(
            sa_flags(SaFlags::SA_RESTART | SaFlags::SA_SIGINFO),
            "SA_SIGINFO|SA_RESTART"
        );
        assert_eq!(sa_flags(SaFlags::empty()), "0");
    }
}
