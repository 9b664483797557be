//! Stopping cleanly on Ctrl-C or SIGTERM, and the one signal that cannot be caught.

use std::sync::mpsc;
use std::time::Duration;

use common::narrate::print_summary;
use common::{Error, HintOn, Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::{self, Pid};

// ANCHOR: graceful
/// A worker that stops cleanly on Ctrl-C (SIGINT) or SIGTERM: the `ctrlc` crate's
/// handler only sends on a channel, and the worker notices between two steps of work.
/// With `steps`, it also stops by itself after that many. Returns the steps done, or an
/// "interrupted" error (exit code 130) after saying so.
pub fn graceful(n: &Narrator, steps: Option<u64>, step_time: Duration) -> Result<u64> {
    let (stop, stopped) = mpsc::channel();
    say!(
        n,
        "installing a SIGINT and SIGTERM handler with the ctrlc crate (a thread that waits \
         for the signal)"
    );
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|e| Error::bad_data("sigaction(SIGINT/SIGTERM) via ctrlc", e.to_string()))?;
    let pid = unistd::getpid();
    n.announce(tr!(
        "working; stop me with Ctrl-C or `kill -TERM {pid}` (`kill -KILL {pid}` cannot be caught)",
        pid
    ));
    let all: Box<dyn Iterator<Item = u64>> = match steps {
        Some(steps) => Box::new(1..=steps),
        None => Box::new(1..),
    };
    let mut done = 0;
    for step in n.first_few(all, tr!("working on without narration")) {
        // One step of (simulated) work; a signal ends the wait at once.
        match stopped.recv_timeout(step_time) {
            Ok(()) => {
                n.announce(tr!(
                    "SIGINT or SIGTERM: finishing cleanly after {done} steps",
                    done
                ));
                print_summary(format_args!("summary: steps={done} stopped_by=signal"))?;
                return Err(Error::interrupted("SIGINT or SIGTERM"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => done = step,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::bad_data(
                    tr!("wait for a signal"),
                    tr!("the ctrlc handler is gone"),
                ));
            }
        }
        say!(n, "step {step} done", step);
    }
    print_summary(format_args!("summary: steps={done} stopped_by=none"))?;
    Ok(done)
}
// ANCHOR_END: graceful

/// `kill(2)`: sends `signal` to `pid` once, as the `kill` command does.
pub fn kill(n: &Narrator, pid: Pid, signal: Signal) -> Result<()> {
    sys::kill(n, pid, signal)
        .hint_on(Errno::ESRCH, tr!("no process has this pid"))
        .hint_on(
            Errno::EPERM,
            tr!("the process belongs to another user, and only root may signal it"),
        )?;
    print_summary(format_args!("summary: sent={signal} to={pid}"))
}
