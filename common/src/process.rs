//! `fork()` and `waitpid()` for the demos that run both roles in one terminal, and the
//! wait for a peer that may die.
//!
//! [`fork`] is `fork(2)` narrated, returned as an enum to `match` on, the way a C
//! program writes `switch (fork())`. In the child arm, the demo runs the child's role and
//! ends with [`exit_child`], which leaves by `_exit(2)`: the child must never return into
//! the parent's code, where it would run the parent's destructors and remove the
//! parent's objects. [`wait_for`] reaps a child with [`sys::waitpid`] and turns an
//! unhappy end into an error.
//!
//! A blocking call that waits for a peer (`msgsnd` on a full queue, `msgrcv` on an empty
//! one, `poll` on a self-pipe) would wait for ever if the peer died: System V message
//! calls have no time-out at all. [`Ticker`] interrupts such a call every so often with a
//! timer signal, as TLPI section 23.3 ("Setting Timeouts on Blocking Operations") does
//! with `alarm`, and [`patiently`] makes the call again after each interruption, once
//! [`Patience`] has checked that the peer still lives ([`is_alive`], [`gone`]). The
//! narration shows one call that waits: its line before it blocks, and its result when it
//! returns.

use std::fmt::Display;
use std::io::Write;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::WaitStatus;
use nix::unistd::{self, ForkResult, Pid};

use crate::cleanup;
use crate::error::{Error, Result, errno_name};
use crate::narrate::{Narrator, Shown};
use crate::{sys, tr};

/// Which side of `fork()` we are on.
#[derive(Debug)]
pub enum Fork {
    /// The original process; `child` is the new one's pid.
    Parent {
        /// The child's pid, for [`wait_for`].
        child: Pid,
    },
    /// The new process, with a narrator that speaks for its role and pid.
    Child(Narrator),
}

// ANCHOR: fork
/// `fork(2)`, narrated in both processes. The child's narrator speaks for `child_role`.
///
/// The child dies with its parent (see [`die_with_parent`]), so that no demo leaves a
/// child running after Ctrl-C, SIGTERM or SIGKILL has ended the parent.
///
/// Call it before any thread is started (no interrupt handler yet, see
/// [`crate::cleanup`]).
pub fn fork(n: &Narrator, child_role: &'static str) -> Result<Fork> {
    n.step("fork()");
    // Anything still in our stdout buffer would be printed twice, once by each process.
    let _ = std::io::stdout().flush();
    // Taken before the fork: in the child, getppid() says whether this parent still lives.
    let parent = unistd::getpid();
    // SAFETY: fork() in a multi-threaded process may leave the child with locks held by
    // threads that no longer exist. The demos fork before starting any thread (no
    // interrupt-handler thread before fork, see crate::cleanup), so this process has one
    // thread and the child is a complete copy of it.
    match unsafe { unistd::fork() } {
        Err(errno) => {
            n.say(format_args!("fork() = -1 {}", errno_name(errno)));
            Err(Error::sys("fork()", errno).hint(tr!("too many processes? see `ulimit -u`")))
        }
        Ok(ForkResult::Parent { child }) => {
            // The call's line is the same in every language; the words after it are not.
            let why = tr!("in the parent: the child's pid");
            n.say(format_args!("fork() = {child}   ({why})"));
            Ok(Fork::Parent { child })
        }
        Ok(ForkResult::Child) => {
            // First of all, before anything can wait (not even for --step's Enter).
            let death = die_with_parent(parent);
            cleanup::forget_inherited();
            let me = n.for_role(child_role);
            let why = tr!("in the child: a copy of the parent, descriptors and all");
            me.say(format_args!("fork() = 0   ({why})"));
            match death {
                Ok(()) => {
                    let why = tr!("if my parent dies, the kernel kills me");
                    me.say(format_args!(
                        "prctl(PR_SET_PDEATHSIG, SIGKILL) = 0   ({why})"
                    ));
                }
                Err(why) => exit_child(&me, Err(why)),
            }
            Ok(Fork::Child(me))
        }
    }
}

/// In a new child: asks the kernel to send it SIGKILL when `parent` ends, and checks
/// that `parent` has not ended already.
///
/// `PR_SET_PDEATHSIG` (prctl(2)) is the kernel's promise that an orphan will not live on.
/// The signal is SIGKILL rather than SIGTERM: a forked child of the demos owns no object
/// of its own (the parent holds every guard, and the child leaves by `_exit`), so a
/// handler would have nothing to clean up, while SIGTERM can be ignored (a disposition
/// that survives `fork` and `execve`, as under `trap '' TERM`), blocked, or caught by a
/// handler that keeps the process alive. SIGKILL cannot be caught, blocked or ignored.
///
/// The request only covers a parent that dies *after* it is made: if the parent died
/// between `fork` and `prctl`, the child has already been handed to another process
/// (init or a subreaper) and `getppid()` no longer names `parent`.
pub fn die_with_parent(parent: Pid) -> Result<()> {
    nix::sys::prctl::set_pdeathsig(Some(nix::sys::signal::Signal::SIGKILL))
        .map_err(|errno| Error::sys("prctl(PR_SET_PDEATHSIG, SIGKILL)", errno))?;
    let now = unistd::getppid();
    if now != parent {
        let question = tr!("is my parent, pid {parent}, alive?", parent);
        return Err(
            Error::sys(format!("getppid() = {now}   ({question})"), Errno::ESRCH).hint(tr!(
                "the parent ended before its child could start: nothing left to do"
            )),
        );
    }
    Ok(())
}
// ANCHOR_END: fork

/// Ends a forked child: prints its error if it has one, and leaves with `_exit` (status 0,
/// or the error's exit code) without running any destructor.
pub fn exit_child(me: &Narrator, result: Result<()>) -> ! {
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            // Not eprintln!, which panics when standard error is a closed pipe: the
            // message is lost then, but the exit code still says what happened.
            let _ = writeln!(
                std::io::stderr(),
                "[{} {}] {e}",
                me.role(),
                unistd::getpid()
            );
            i32::from(e.exit_code())
        }
    };
    let _ = std::io::stdout().flush();
    // SAFETY: _exit(2) ends the process at once, without running atexit handlers or Rust
    // destructors: exactly what a forked child must do, so that it does not remove its
    // parent's objects. nix has no wrapper for it.
    unsafe { libc::_exit(code) }
}

/// Waits for `child` with `waitpid(2)` ([`sys::waitpid`]). A child that exited with a
/// status other than 0, or was killed by a signal, is an error with exit code 1.
pub fn wait_for(n: &Narrator, child: Pid, role: &str) -> Result<()> {
    let who = || tr!("the {role} (pid {child})", role, child);
    match sys::waitpid(n, child)? {
        WaitStatus::Exited(_, 0) => Ok(()),
        WaitStatus::Exited(_, code) => Err(Error::bad_data(
            who(),
            tr!("it exited with status {code}", code),
        )
        .hint(tr!("the {role}'s own error message above says why", role))),
        WaitStatus::Signaled(_, signal, _) => Err(Error::bad_data(
            who(),
            tr!("it was killed by {signal}", signal = signal.as_str()),
        )),
        other => Err(Error::bad_data(
            format!("waitpid({child})"),
            tr!("unexpected status {status}", status = format!("{other:?}")),
        )),
    }
}

/// Whether process `pid` is still running: it exists and is not a zombie (a child that
/// has exited but not yet been waited for, which `kill(pid, 0)` would still find). For
/// peers that share memory and cannot be told by the kernel that the other side is gone.
pub fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command name, which is in parentheses
        // and may itself contain ") ", hence the last one (proc(5)).
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The error for a peer that [`is_alive`] found gone: ESRCH, as `kill(pid, 0)` says it.
pub fn gone(role: &str, pid: i32) -> Error {
    let question = tr!("is the {role} alive?", role);
    Error::sys(format!("kill({pid}, 0)   ({question})"), Errno::ESRCH).hint(tr!(
        "the {role} (pid {pid}) has gone: it was killed or crashed before the end",
        role,
        pid
    ))
}

// ANCHOR: ticker
/// A timer that interrupts this thread's blocking system calls every `every`, so that a
/// role waiting for its peer can check that the peer still lives (TLPI 23.3).
///
/// `msgsnd` and `msgrcv` have no time-out, and a `poll` or `mq_send` could wait for ever
/// for a peer that was killed. So, while a role waits, a POSIX timer (timer_create(2))
/// sends SIGALRM to this thread alone (`SIGEV_THREAD_ID`, not to the process, where a
/// thread such as the Ctrl-C handler's could take it), every `every`. Its handler does
/// nothing and is installed without `SA_RESTART`, so the signal ends the blocking call
/// with EINTR (signal(7): `msgsnd`, `msgrcv`, `poll` and the others are then not
/// restarted), and [`patiently`] makes the call again after checking the peer. Calls that
/// do not block are not interrupted; the few that could be and must not fail (the
/// narration's own writes, `--step`'s read) make themselves again after EINTR.
///
/// Dropping the ticker deletes the timer (timer_delete(2)). A tick already pending is
/// handled (by the empty handler) as `timer_delete` returns, so it ends no later call.
#[derive(Debug)]
pub struct Ticker {
    n: Narrator,
    timer: libc::timer_t,
}

/// The handler of the ticker's SIGALRM: nothing to do, its arrival is the point.
extern "C" fn on_tick(_signal: libc::c_int) {}

impl Ticker {
    /// Starts interrupting this thread every `every` (at least a millisecond).
    pub fn start(n: &Narrator, every: Duration) -> Result<Ticker> {
        // No SA_RESTART: an interrupted msgsnd, msgrcv, mq_send or poll returns EINTR.
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_tick),
            nix::sys::signal::SaFlags::empty(),
            nix::sys::signal::SigSet::empty(),
        );
        n.call("sigaction(SIGALRM, {on_tick, 0}, NULL)", || {
            // SAFETY: on_tick does nothing at all, which is async-signal-safe.
            unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGALRM, &action) }
                .map(drop)
        })?;
        // SAFETY: gettid(2) only returns this thread's id.
        let tid = unsafe { libc::gettid() };
        // SAFETY: sigevent is plain data, for which all zero bytes are a valid value.
        let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
        event.sigev_notify = libc::SIGEV_THREAD_ID;
        event.sigev_signo = libc::SIGALRM;
        event.sigev_notify_thread_id = tid;
        let mut timer: libc::timer_t = std::ptr::null_mut();
        n.call(
            format_args!(
                "timer_create(CLOCK_MONOTONIC, {{SIGEV_THREAD_ID, SIGALRM, tid={tid}}}, &timer)"
            ),
            || {
                // SAFETY: `event` and `timer` are valid for the call; the kernel writes
                // the new timer's id into `timer`.
                Errno::result(unsafe {
                    libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer)
                })
                .map(drop)
            },
        )?;
        // Owned from here on: Drop deletes the timer, also if timer_settime fails.
        let ticker = Ticker {
            n: n.clone(),
            timer,
        };
        let every = every.max(Duration::from_millis(1));
        let spec = libc::timespec {
            tv_sec: every.as_secs().try_into().unwrap_or(libc::time_t::MAX),
            tv_nsec: every.subsec_nanos().into(),
        };
        let times = libc::itimerspec {
            it_interval: spec,
            it_value: spec,
        };
        n.call(
            format_args!(
                "timer_settime(timer, 0, {{it_value={every:?}, it_interval={every:?}}}, NULL)"
            ),
            || {
                // SAFETY: `ticker.timer` is the timer just created; `times` is valid for
                // the call, and no old value is asked for.
                Errno::result(unsafe {
                    libc::timer_settime(ticker.timer, 0, &times, std::ptr::null_mut())
                })
                .map(drop)
            },
        )?;
        Ok(ticker)
    }
}

/// Says why a role's blocking `call` will be interrupted (its `peer`, a role's name, might
/// die while it waits), and starts the [`Ticker`] that interrupts it every `every`.
pub fn tick_while_waiting(n: &Narrator, call: &str, peer: &str, every: Duration) -> Result<Ticker> {
    crate::say!(
        n,
        "{call} waits for as long as it takes: a timer interrupts it every {every} (EINTR), \
         so that I can check that the {peer} still lives",
        call,
        every = format!("{every:?}"),
        peer
    );
    Ticker::start(n, every)
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let timer = self.timer;
        let _ = self.n.call("timer_delete(timer)", || {
            // SAFETY: the timer was created by Ticker::start and is deleted only here.
            Errno::result(unsafe { libc::timer_delete(timer) }).map(drop)
        });
    }
}
// ANCHOR_END: ticker

/// What a role does while one of its calls waits for the peer: says once why it waits,
/// and checks, each time the wait is interrupted, that the peer still lives.
pub struct Patience<'a> {
    /// Who says why we wait, and what (once, the first time the wait is interrupted).
    waiting: Option<(Narrator, String)>,
    /// Fails if the peer is gone.
    alive: Box<dyn FnMut() -> Result<()> + 'a>,
}

impl std::fmt::Debug for Patience<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patience")
            .field("waiting", &self.waiting.as_ref().map(|(_, text)| text))
            .finish_non_exhaustive()
    }
}

impl<'a> Patience<'a> {
    /// Says `waiting` the first time a wait is interrupted (even in a loop that has gone
    /// quiet: a role that stops is news), and calls `alive` at every interruption.
    pub fn new(
        n: &Narrator,
        waiting: impl Into<String>,
        alive: impl FnMut() -> Result<()> + 'a,
    ) -> Patience<'a> {
        Patience {
            waiting: Some((n.clone(), waiting.into())),
            alive: Box::new(alive),
        }
    }

    /// Waits as long as it takes, without a word: for a peer that cannot die alone (the
    /// bench's two processes), or a call that is never interrupted.
    pub fn forever() -> Patience<'static> {
        Patience {
            waiting: None,
            alive: Box::new(|| Ok(())),
        }
    }

    /// A wait was interrupted: says why we wait (the first time) and checks the peer.
    fn interrupted(&mut self) -> Result<()> {
        if let Some((n, text)) = self.waiting.take() {
            n.announce(text);
        }
        (self.alive)()
    }
}

/// Makes a call that waits for a peer, narrated as one call: `desc ...` before it blocks
/// and `desc = result` when it returns ([`Narrator::call_blocking`]). Each time the call
/// is interrupted (EINTR, from a [`Ticker`] or any other handled signal), `patience`
/// checks the peer, and the call is made again; if the peer is gone, the wait ends with
/// the last result (`= -1 EINTR`) on the screen and [`gone`]'s error. The wrappers of the
/// demos' `sys.rs` that can wait for a peer (`sys::msgsnd`, `sys::poll`, ...) use it.
pub fn patiently<T: Shown>(
    n: &Narrator,
    desc: impl Display,
    patience: &mut Patience<'_>,
    mut op: impl FnMut() -> nix::Result<T>,
) -> Result<T> {
    let mut gone = None;
    let result = n.call_blocking(desc, || {
        loop {
            match op() {
                Err(Errno::EINTR) => match patience.interrupted() {
                    Ok(()) => continue,
                    Err(e) => {
                        gone = Some(e);
                        return Err(Errno::EINTR);
                    }
                },
                other => return other,
            }
        }
    });
    match gone {
        Some(e) => Err(e),
        None => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_pid_past_pid_max_is_not() {
        assert!(is_alive(std::process::id() as i32));
        assert!(!is_alive(i32::MAX));
    }

    #[test]
    fn a_wait_is_interrupted_checks_the_peer_and_goes_on_until_the_data_comes() {
        let n = Narrator::silent("test");
        let (r, w) = nix::unistd::pipe().unwrap();
        let _ticker = Ticker::start(&n, Duration::from_millis(5)).unwrap();
        let mut checks = 0;
        let mut patience = Patience::new(&n, "waiting for the writer", || {
            checks += 1;
            // The peer acts at the third check: the read that waits gets its byte.
            if checks == 3 {
                nix::unistd::write(&w, b"x").unwrap();
            }
            Ok(())
        });
        let mut buf = [0u8; 4];
        let got = patiently(&n, "read(3, buf, 4)", &mut patience, || {
            nix::unistd::read(&r, &mut buf)
        });
        drop(patience);
        assert_eq!(got, Ok(1));
        assert_eq!(checks, 3);
    }

    #[test]
    fn a_wait_for_a_peer_that_is_gone_ends_with_gone_s_error() {
        let n = Narrator::silent("test");
        let (r, _w) = nix::unistd::pipe().unwrap();
        let _ticker = Ticker::start(&n, Duration::from_millis(5)).unwrap();
        let mut checks = 0;
        let mut patience = Patience::new(&n, "waiting for the writer", || {
            checks += 1;
            if checks < 2 {
                Ok(())
            } else {
                Err(gone("writer", i32::MAX))
            }
        });
        let mut buf = [0u8; 4];
        let err = patiently(&n, "read(3, buf, 4)", &mut patience, || {
            nix::unistd::read(&r, &mut buf)
        })
        .unwrap_err();
        assert_eq!(err.errno(), Some(Errno::ESRCH));
        assert!(err.to_string().contains("(is the writer alive?)"), "{err}");
    }

    // fork, exit_child and wait_for are exercised by every demo's integration tests,
    // which run the demos as real processes; forking inside the multi-threaded test
    // harness would break the very rule fork documents.
}
