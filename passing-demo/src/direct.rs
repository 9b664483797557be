//! Direct naming with signals: the sender names the receiving *process*, by its pid.
//!
//! Note 001, IPC models, section 3 ("direct communication"): in direct communication the
//! sender names the process it talks to. On Linux the most direct name a process has is
//! its pid, and the message that goes straight to a pid is a signal: `kill(pid, sig)`.
//! The receiver here names nobody. It takes whatever arrives and learns from the kernel
//! who sent it: `sigtimedwait(2)` returns `si_pid`, which the kernel itself writes for a
//! signal sent with `kill(2)` (`si_code` SI_USER; a process that uses
//! `rt_sigqueueinfo(2)` supplies its own `si_pid`, so a careful receiver checks
//! `si_code` too). That is *asymmetric* naming: only the sender names its partner.
//!
//! The signal is SIGRTMIN, a real-time signal, because a real-time signal is queued:
//! three sent are three received, each with its own `si_pid`. A standard signal such as
//! SIGUSR1 is one pending bit, and two senders at once would be one signal (see
//! `signal-demo coalesce`). The receiver blocks SIGRTMIN first, so that a signal waits
//! for `sigtimedwait` instead of running its default action, which ends the process.
//!
//! Usage: `passing-demo direct [--senders 2] [--count 3]`. See also: kill(2),
//! sigtimedwait(2) (signal-demo's narrated wrapper), signal(7) "Real-time signals", [`crate::datagram`] for direct
//! naming by address, and signal-demo for what else signals do.

use std::collections::BTreeMap;
use std::time::Duration;

use common::narrate::print_summary;
use common::{Error, Narrator, Result, cleanup, say, tr};
use nix::errno::Errno;
use nix::unistd;
use signal_demo::sys::{self as signals, How, SignalSet};

use crate::SENDERS;
use crate::crew::Crew;

/// How long the receiver waits for a signal before it checks that no sender has failed.
const CHECK_EVERY: Duration = Duration::from_secs(1);

// ANCHOR: direct
/// Forks `senders` processes that each send `count` SIGRTMIN to this process, named by
/// its pid; takes them all with `sigtimedwait` and says who sent each, from `si_pid`.
pub fn direct(n: &Narrator, senders: usize, count: u64) -> Result<()> {
    let me = unistd::getpid();
    let set = SignalSet::of(&[libc::SIGRTMIN()]);
    // Before the fork and before any thread: every thread then blocks SIGRTMIN, so a
    // signal sent to the process waits until this thread takes it.
    signals::sigprocmask(n, How::Block, &set)?;
    say!(n, "my pid, {me}, is my name: a sender names me with it", me);
    let mut crew = Crew::new();
    for role in SENDERS.iter().take(senders) {
        crew.spawn(n, role, |s| {
            for _ in s.first_few(0..count, tr!("the remaining signals without narration")) {
                common::sys::kill_rt(s, me, 0)?;
            }
            Ok(())
        })?;
    }
    cleanup::exit_on_interrupt(n)?;
    let expected = senders as u64 * count;
    let mut by_sender: BTreeMap<i32, u64> = BTreeMap::new();
    let (mut from_crew, mut unknown) = (0u64, 0u64);
    let mut signals = n.first_few(0.., tr!("the remaining signals without narration"));
    while from_crew < expected {
        signals.next();
        let caught = match signals::sigtimedwait(n, &set, CHECK_EVERY) {
            Ok(caught) => caught,
            Err(e) if e.errno() == Some(Errno::EAGAIN) => match crew.failed() {
                Some(failure) => return Err(failure),
                None => continue,
            },
            Err(e) => return Err(e),
        };
        let sender = caught.sender.as_raw();
        match crew.role_of(sender) {
            Some(role) => {
                say!(
                    n,
                    "si_pid = {sender}: the kernel says {role} sent it",
                    sender,
                    role
                );
                *by_sender.entry(sender).or_default() += 1;
                from_crew += 1;
            }
            None => {
                // Anyone allowed to signal this process can: the receiver named nobody.
                n.announce(tr!(
                    "si_pid = {sender}: a process I did not start sent it; I count it apart",
                    sender
                ));
                unknown += 1;
            }
        }
    }
    drop(signals);
    crew.wait_all(n)?;
    for (pid, got) in &by_sender {
        let role = crew.role_of(*pid).unwrap_or("?");
        say!(n, "{role} (pid {pid}) sent {got}", role, pid, got);
    }
    print_summary(format_args!(
        "summary: signals={} senders={} from_senders={from_crew} unknown={unknown}",
        from_crew + unknown,
        by_sender.len()
    ))?;
    if by_sender.len() != senders {
        return Err(Error::bad_data(
            "sigtimedwait",
            tr!("not every sender was heard from"),
        ));
    }
    Ok(())
}
// ANCHOR_END: direct

/// Checks `--senders` and `--count` before anything is made. The kernel queues at most
/// RLIMIT_SIGPENDING signals for this user (`ulimit -i`); the limit here stays far below.
pub fn check(senders: usize, count: u64) -> Result<()> {
    if !(1..=crate::MAX_CREW).contains(&senders) || !(1..=1000).contains(&count) {
        return Err(Error::usage(tr!(
            "direct takes --senders 1 to {max} and --count 1 to 1000",
            max = crate::MAX_CREW
        )));
    }
    Ok(())
}
