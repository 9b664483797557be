//! The receiver of the ping-pong: answers each SIGUSR1 of its sender, and only its
//! sender's.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use common::narrate::FIRST_FEW;
use common::process;
use common::{Error, HintOn, Narrator, Result, say, sys as common_sys, tr};
use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::signal::Signal;
use nix::unistd::{self, Pid};

use crate::handler::{self, Records};
use crate::sys;

/// What the receiver did in one conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conversation {
    /// SIGUSR1 signals from the sender, each acknowledged.
    pub received: u64,
    /// Signals from anyone else (or that may have been forged), reported and not answered.
    pub ignored: u64,
}

/// How often the receiver, waiting for a signal, checks that its sender still lives.
pub const LIVENESS_CHECK: Duration = Duration::from_secs(1);

// ANCHOR: receive
/// The receiver: installs its handlers, calls `ready` with its pid (to print it, or to
/// tell a parent), then acknowledges each SIGUSR1 from its sender with a SIGUSR1 back,
/// until a SIGUSR2 from the sender says it was the last.
///
/// The sender is `sender` if it is given, or else the first process that sends SIGUSR1
/// and is ready for the answer (see [`Partner::judge`]). A signal from anyone else is
/// reported, never answered: an answer goes to one process, which asked for it. While it
/// waits, the receiver checks every [`LIVENESS_CHECK`] that its sender is still alive.
pub fn receive(
    n: &Narrator,
    sender: Option<Pid>,
    ready: impl FnOnce(Pid) -> Result<()>,
) -> Result<Conversation> {
    let handlers = handler::install_handlers(n)?;
    let mut partner = Partner::new(sender)?;
    ready(partner.me)?;
    let mut talk = Conversation::default();
    let mut records = Records::default();
    // One turn a wake-up, for as long as the conversation lasts (it ends by a return).
    for () in n.first_few(
        std::iter::repeat(()),
        tr!("acknowledging the rest without narration"),
    ) {
        wait_for_records(n, &handlers.wake, partner.sender)?;
        records.read(n, &handlers.wake)?;
        if let Some(stop) = handler::stop_requested() {
            n.announce(tr!(
                "{stop} arrived: stopping after {received} signals",
                stop = stop.as_str(),
                received = talk.received
            ));
            return Err(Error::interrupted(stop.as_str()));
        }
        while let Some((signal, code, pid)) = records.next() {
            let verdict = partner.judge(code, pid, signal == libc::SIGUSR2);
            match (signal, verdict) {
                (libc::SIGUSR1, Ok(sender)) => {
                    talk.received += 1;
                    say!(
                        n,
                        "SIGUSR1 #{number} from pid {sender}",
                        number = talk.received,
                        sender
                    );
                    acknowledge(n, &partner, sender)?;
                }
                (libc::SIGUSR2, Ok(_)) => {
                    n.announce(tr!("SIGUSR2: that was the last one"));
                    handler::report_lost(n);
                    return Ok(talk);
                }
                (libc::SIGUSR1 | libc::SIGUSR2, Err(why)) => {
                    talk.ignored += 1;
                    if talk.ignored <= FIRST_FEW {
                        n.announce(tr!(
                            "{signal} claiming to be from pid {pid}: ignored, not answered: {why}",
                            signal = sys::name(signal),
                            pid,
                            why
                        ));
                    }
                }
                // SIGINT and SIGTERM were handled above, through STOP.
                _ => {}
            }
        }
    }
    // Not reached: repeat(()) never runs out.
    Ok(talk)
}

/// Sends the acknowledgement: one SIGUSR1 to `sender`, who [`Partner::judge`] said may
/// have it. The last check is here too, next to the call it guards: `kill(2)` refuses a
/// pid of 0 or less (a whole group, or every process we may signal), and our own pid
/// would start an endless conversation with no one.
fn acknowledge(n: &Narrator, partner: &Partner, sender: Pid) -> Result<()> {
    if sender == partner.me {
        return Err(Error::bad_data(
            tr!("answer pid {sender}", sender),
            tr!("refused: that is my own pid"),
        ));
    }
    common_sys::kill(n, sender, Signal::SIGUSR1).hint_on(
        Errno::ESRCH,
        tr!(
            "the sender (pid {sender}) has gone: it was killed or crashed before the end",
            sender
        ),
    )
}

/// Waits until the self-pipe has a record to read, a [`LIVENESS_CHECK`] at a time, and
/// between two waits checks that the sender (once there is one) still lives: a sender
/// killed mid-conversation sends no SIGUSR2, and nothing else would ever wake us.
fn wait_for_records(n: &Narrator, wake: &OwnedFd, sender: Option<Pid>) -> Result<()> {
    let ask = [(wake.as_fd(), PollFlags::POLLIN)];
    for _ in n.first_few(
        std::iter::repeat(()),
        tr!("waiting on for a signal without narration (every second: is my sender alive?)"),
    ) {
        if !common_sys::poll(n, &ask, Some(LIVENESS_CHECK))?.timed_out() {
            return Ok(());
        }
        if let Some(sender) = sender.filter(|s| !process::is_alive(s.as_raw())) {
            return Err(process::gone("sender", sender.as_raw()));
        }
    }
    // Not reached: repeat(()) never runs out.
    Ok(())
}
// ANCHOR_END: receive

/// Whom the receiver answers, and the checks that keep its answers from hitting anyone
/// else.
#[derive(Debug)]
pub(crate) struct Partner {
    /// Our own pid.
    pub(crate) me: Pid,
    /// The sender: named on the command line, or adopted from its first signal.
    pub(crate) sender: Option<Pid>,
}

impl Partner {
    fn new(sender: Option<Pid>) -> Result<Partner> {
        let me = unistd::getpid();
        if let Some(pid) = sender {
            if pid == me || pid.as_raw() <= 0 {
                return Err(Error::usage(tr!(
                    "--sender {pid}: the sender must be another process",
                    pid
                )));
            }
            if !process::is_alive(pid.as_raw()) {
                return Err(process::gone("sender", pid.as_raw()).hint(tr!(
                    "no running process has pid {pid}: start the sender first, or leave out --sender",
                    pid
                )));
            }
        }
        Ok(Partner { me, sender })
    }

    /// Decides whether a signal with this `si_code` and `si_pid` comes from our sender,
    /// and returns the sender's pid if so; otherwise, why not.
    ///
    /// - `si_pid` is the kernel's word only when `si_code` is SI_USER (`kill(2)`) or
    ///   SI_TKILL (`tgkill(2)`): with `sigqueue(3)` or `rt_sigqueueinfo(2)` (SI_QUEUE and
    ///   other negative codes), the sender writes the whole siginfo_t itself, any
    ///   `si_pid` included (rt_sigqueueinfo(2) forbids only codes >= 0 and SI_TKILL);
    /// - a pid of 0 or less is no single process (0 also comes from a sender in a parent
    ///   pid namespace), and our own is not a partner;
    /// - with no sender yet, the first process that blocks, catches or ignores SIGUSR1
    ///   (`/proc/PID/status`) becomes the sender: one that does none of these would be
    ///   ended by our acknowledgement, SIGUSR1's default action. A shell or a program that
    ///   happens to send us SIGUSR1 is not a partner.
    ///
    /// A SIGUSR2 (`last`) from a trusted pid ends a conversation that has no sender yet
    /// (a sender with nothing to send), without making that process our sender.
    pub(crate) fn judge(&mut self, code: i32, pid: i32, last: bool) -> Result<Pid, String> {
        if code != libc::SI_USER && code != libc::SI_TKILL {
            return Err(tr!(
                "its si_code is {code}, not SI_USER: it was sent with sigqueue or \
                 rt_sigqueueinfo, which let the sender write any si_pid",
                code
            ));
        }
        if pid <= 0 {
            return Err(tr!("pid {pid} is not one process", pid));
        }
        let pid = Pid::from_raw(pid);
        if pid == self.me {
            return Err(tr!("that is my own pid"));
        }
        match self.sender {
            Some(sender) if sender == pid => Ok(pid),
            Some(sender) => Err(tr!("my sender is pid {sender}", sender)),
            None if last => Ok(pid),
            None => {
                ready_for_answer(pid)?;
                self.sender = Some(pid);
                Ok(pid)
            }
        }
    }
}

/// Whether process `pid` is ready for a SIGUSR1: it blocks, catches or ignores it, as
/// `/proc/PID/status` shows in its `SigBlk`, `SigCgt` and `SigIgn` masks (proc(5); signal
/// n is bit n - 1), or it is waiting for signals in `sigtimedwait`/`sigwaitinfo`, as
/// `/proc/PID/wchan` shows. The second case is needed because, for the time of that
/// wait, the kernel takes the awaited signals out of the blocked mask (they are taken by
/// the call, not delivered), so that `SigBlk` no longer shows them.
///
/// A sender passes from one state to the other (it blocks SIGUSR1, signals us, then
/// waits), and for a few microseconds inside the kernel is in neither: so a process
/// that is not ready is looked at again, for up to 20 milliseconds, before it is refused.
fn ready_for_answer(pid: Pid) -> Result<(), String> {
    let bit = 1u64 << (libc::SIGUSR1 - 1);
    let mut command = String::from("?");
    for _ in 0..20 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|_| tr!("pid {pid} has gone", pid))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
        };
        let mask = |name: &str| {
            field(name)
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                .unwrap_or(0)
        };
        if (mask("SigBlk:") | mask("SigCgt:") | mask("SigIgn:")) & bit != 0 {
            return Ok(());
        }
        let waiting = std::fs::read_to_string(format!("/proc/{pid}/wchan"))
            .is_ok_and(|wchan| wchan.starts_with("do_sigtimedwait"));
        if waiting {
            return Ok(());
        }
        command = field("Name:").unwrap_or("?").to_string();
        // Not ordering: a second look at a process that is between two states.
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(tr!(
        "pid {pid} ({command}) neither blocks nor catches SIGUSR1, so an acknowledgement \
         would end it; to answer it anyway, start the receiver with --sender {pid}",
        pid,
        command
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partner as the receiver makes it, in this test process, which never signals
    /// anyone here: `judge` only decides.
    fn partner(sender: Option<i32>) -> Partner {
        Partner {
            me: unistd::getpid(),
            sender: sender.map(Pid::from_raw),
        }
    }

    #[test]
    fn only_the_kernels_word_on_the_sender_is_taken() {
        let me = unistd::getpid().as_raw();
        let sender = me + 1;
        let mut p = partner(Some(sender));
        assert_eq!(
            p.judge(libc::SI_USER, sender, false),
            Ok(Pid::from_raw(sender))
        );
        assert_eq!(
            p.judge(libc::SI_TKILL, sender, false),
            Ok(Pid::from_raw(sender))
        );
        // sigqueue(3) and rt_sigqueueinfo(2) write si_pid themselves.
        let forged = p.judge(libc::SI_QUEUE, sender, false).unwrap_err();
        assert!(forged.contains("not SI_USER"), "{forged}");
    }

    #[test]
    fn no_pid_of_zero_or_less_nor_our_own_is_ever_a_partner() {
        let me = unistd::getpid().as_raw();
        for sender in [None, Some(me + 1)] {
            let mut p = partner(sender);
            for pid in [-1, 0, i32::MIN] {
                let why = p.judge(libc::SI_USER, pid, false).unwrap_err();
                assert!(why.contains("is not one process"), "{why}");
                assert!(p.judge(libc::SI_USER, pid, true).is_err());
            }
            let why = p.judge(libc::SI_USER, me, false).unwrap_err();
            assert_eq!(why, "that is my own pid");
        }
    }

    #[test]
    fn a_stranger_is_refused_once_there_is_a_sender() {
        let me = unistd::getpid().as_raw();
        let mut p = partner(Some(me + 1));
        let why = p.judge(libc::SI_USER, me + 2, false).unwrap_err();
        assert_eq!(why, format!("my sender is pid {}", me + 1));
        // Its SIGUSR2 does not end the conversation either.
        assert!(p.judge(libc::SI_USER, me + 2, true).is_err());
    }
}
