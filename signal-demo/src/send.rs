//! The sender of the ping-pong: a SIGUSR1, then a wait for the answer, and again.

use std::time::{Duration, Instant};

use common::process;
use common::{Error, HintOn, Narrator, Result, say, sys as common_sys, tr};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::sys::{self, How, SignalSet};

/// How long the sender waits in one `sigtimedwait` before it checks that the receiver is
/// still alive.
const ACK_SLICE: Duration = Duration::from_millis(500);

// ANCHOR: send
/// The sender: checks that `target` is a signal-demo receiver, sends `count` SIGUSR1
/// and waits for each acknowledgement (at most `timeout`), then sends SIGUSR2.
pub fn send(n: &Narrator, target: Pid, count: u64, timeout: Duration) -> Result<u64> {
    check_receiver(n, target)?;
    say!(
        n,
        "I block SIGUSR1 before I send anything: an acknowledgement that comes back before \
         I wait for it then stays pending, instead of ending me (SIGUSR1's default action)"
    );
    let acks = SignalSet::of(&[libc::SIGUSR1]);
    sys::sigprocmask(n, How::Block, &acks)?;
    for _ in n.first_few(0..count, tr!("sending the rest without narration")) {
        common_sys::kill(n, target, Signal::SIGUSR1)
            .hint_on(Errno::ESRCH, tr!("the receiver has exited"))?;
        wait_for_ack(n, &acks, target, timeout)?;
    }
    say!(n, "SIGUSR2 tells the receiver that that was the last one");
    common_sys::kill(n, target, Signal::SIGUSR2)
        .hint_on(Errno::ESRCH, tr!("the receiver has exited"))?;
    Ok(count)
}

/// Waits for a SIGUSR1 from `target`, ignoring any from other processes. It waits in
/// slices of [`ACK_SLICE`], and between two checks that `target` is still alive: a dead
/// receiver is reported within half a second, not after the whole `timeout`.
fn wait_for_ack(n: &Narrator, acks: &SignalSet, target: Pid, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Whole milliseconds, as a person would write the time-out.
        let slice = Duration::from_millis(left.min(ACK_SLICE).as_millis() as u64);
        match sys::sigtimedwait(n, acks, slice) {
            Ok(caught) if caught.sender == target => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.errno() == Some(Errno::EAGAIN) => {
                if !process::is_alive(target.as_raw()) {
                    return Err(process::gone("receiver", target.as_raw()));
                }
                if Instant::now() >= deadline {
                    return Err(e.hint(tr!(
                        "no acknowledgement from pid {target} within {timeout}: is it stopped, or busy?",
                        target,
                        timeout = format!("{timeout:?}")
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: send

/// Refuses a target that is not there, that we may not signal, or that is not a
/// signal-demo: SIGUSR1's default action would kill an ordinary program.
fn check_receiver(n: &Narrator, target: Pid) -> Result<()> {
    say!(
        n,
        "signal 0 is never delivered: kill only checks that pid {target} exists and that I \
         may signal it",
        target
    );
    common_sys::kill(n, target, None)
        .hint_on(
            Errno::ESRCH,
            tr!("no process has this pid; the receiver prints its pid when it starts"),
        )
        .hint_on(
            Errno::EPERM,
            tr!("the process belongs to another user, and only root may signal it"),
        )?;
    let comm_path = format!("/proc/{target}/comm");
    let comm = std::fs::read_to_string(&comm_path).unwrap_or_default();
    let comm = comm.trim_end();
    if comm != "signal-demo" {
        return Err(Error::bad_data(
            format!("read({comm_path})"),
            tr!(
                "pid {target} is `{comm}`, not a signal-demo receiver",
                target,
                comm
            ),
        )
        .hint(tr!(
            "SIGUSR1 would end an ordinary program; to send one signal to any process, use `signal-demo kill`"
        )));
    }
    Ok(())
}
