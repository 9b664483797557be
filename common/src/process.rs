//! `fork()` and `waitpid()` for the demos that run both roles in one terminal.
//!
//! [`fork`] is `fork(2)` narrated, returned as an enum to `match` on, the way a C
//! program writes `switch (fork())`. In the child arm, the demo runs the child's role and
//! ends with [`exit_child`], which leaves by `_exit(2)`: the child must never return into
//! the parent's code, where it would run the parent's destructors and remove the
//! parent's objects. [`wait_for`] reaps a child and turns an unhappy end into an error.

use std::io::Write;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{self, ForkResult, Pid};

use crate::cleanup;
use crate::error::{Error, Result, errno_name};
use crate::narrate::Narrator;

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
    // threads that no longer exist. The demos fork before starting any thread
    // (design.md: no interrupt-handler thread before fork), so this process has one
    // thread and the child is a complete copy of it.
    match unsafe { unistd::fork() } {
        Err(errno) => {
            n.say(format_args!("fork() = -1 {}", errno_name(errno)));
            Err(Error::sys("fork()", errno).hint("too many processes? see `ulimit -u`"))
        }
        Ok(ForkResult::Parent { child }) => {
            n.say(format_args!(
                "fork() = {child}   (in the parent: the child's pid)"
            ));
            Ok(Fork::Parent { child })
        }
        Ok(ForkResult::Child) => {
            // First of all, before anything can wait (not even for --step's Enter).
            let death = die_with_parent(parent);
            cleanup::forget_inherited();
            let me = n.for_role(child_role);
            me.say("fork() = 0   (in the child: a copy of the parent, descriptors and all)");
            match death {
                Ok(()) => me.say(
                    "prctl(PR_SET_PDEATHSIG, SIGKILL) = 0   (if my parent dies, the kernel kills me)",
                ),
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
        return Err(Error::sys(
            format!("getppid() = {now}   (is my parent, pid {parent}, alive?)"),
            nix::errno::Errno::ESRCH,
        )
        .hint("the parent ended before its child could start: nothing left to do"));
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

/// Waits for `child` with `waitpid(2)`. A child that exited with a status other than 0,
/// or was killed by a signal, is an error with exit code 1.
pub fn wait_for(n: &Narrator, child: Pid, role: &str) -> Result<()> {
    let status = n.call(format_args!("waitpid({child}, &status, 0)"), || {
        waitpid(child, None)
    })?;
    match status {
        WaitStatus::Exited(_, 0) => Ok(()),
        WaitStatus::Exited(_, code) => Err(Error::bad_data(
            format!("the {role} (pid {child})"),
            format!("it exited with status {code}"),
        )
        .hint(format!("the {role}'s own error message above says why"))),
        WaitStatus::Signaled(_, signal, _) => Err(Error::bad_data(
            format!("the {role} (pid {child})"),
            format!("it was killed by {signal}"),
        )),
        other => Err(Error::bad_data(
            format!("waitpid({child})"),
            format!("unexpected status {other:?}"),
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
    Error::sys(
        format!("kill({pid}, 0)   (is the {role} alive?)"),
        nix::errno::Errno::ESRCH,
    )
    .hint(format!(
        "the {role} (pid {pid}) has gone: it was killed or crashed before the end"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_is_alive_and_a_pid_past_pid_max_is_not() {
        assert!(super::is_alive(std::process::id() as i32));
        assert!(!super::is_alive(i32::MAX));
    }

    // fork, exit_child and wait_for are exercised by every demo's integration tests,
    // which run the demos as real processes; forking inside the multi-threaded test
    // harness would break the very rule fork documents.
}
