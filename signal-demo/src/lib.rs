//! signal-demo: signals, the smallest IPC.
//!
//! Follows `002_c8d20cee4fe5d0b4.txt`, "다양한 IPC 기법" (item 5, Signal). A signal
//! carries no data: only its number, the sender's pid and, for real-time signals sent
//! with `sigqueue`, one word. The kernel keeps one *pending* bit per standard signal, so
//! standard signals sent while the receiver blocks them are merged into one; real-time
//! signals are queued, each one delivered, in order.
//!
//! - [`receive`] and [`send`]: a ping-pong of SIGUSR1, each one acknowledged, between a
//!   receiver whose handler is installed with `sigaction` and a sender that waits for
//!   each acknowledgement with `sigtimedwait` (no subcommand, or `receiver` and `sender`
//!   in two terminals);
//! - [`coalesce`]: many SIGUSR1 sent while the receiver blocks them; one arrives;
//! - [`queue`]: real-time signals sent with `sigqueue`, each carrying a number; all arrive;
//! - [`graceful`]: Ctrl-C and SIGTERM end a worker cleanly (the `ctrlc` crate); SIGKILL
//!   cannot be caught;
//! - [`kill`]: one signal by name, as `kill(1)` sends it.
//!
//! Usage: `cargo run -p signal-demo -- --help`. See also: signal(7), sigaction(2),
//! signal-safety(7), sigqueue(3), sigwaitinfo(2), and TLPI chapters 20 to 22.

use std::ffi::c_void;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::narrate::{Shown, print_summary};
use common::process::{self, Fork};
use common::stream::{self, FdStream};
use common::{Error, Narrator, Result};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{self, Pid};

/// How many signals are narrated one by one before a loop goes quiet.
pub const NARRATED: u64 = 3;

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
struct Handlers {
    wake: OwnedFd,
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
fn install_handlers(n: &Narrator) -> Result<Handlers> {
    let (wake, write_end) = n.call("pipe2(O_CLOEXEC)   (the self-pipe)", || {
        unistd::pipe2(OFlag::O_CLOEXEC)
    })?;
    n.call(
        format_args!("fcntl({}, F_SETFL, O_NONBLOCK)", write_end.as_raw_fd()),
        || fcntl(&write_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)),
    )?;
    SELF_PIPE.store(write_end.as_raw_fd(), Ordering::SeqCst);
    // SA_SIGINFO: the handler gets a siginfo_t, with the sender's pid. SA_RESTART: a slow
    // call (read on the self-pipe) that the signal interrupts starts again by itself.
    let action = SigAction::new(
        SigHandler::SigAction(on_signal),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGINT,
        Signal::SIGTERM,
    ] {
        n.call(
            format_args!("sigaction({signal}, {{on_signal, SA_SIGINFO|SA_RESTART}}, NULL)"),
            || {
                // SAFETY: on_signal does only async-signal-safe work (atomics and
                // write(2)), as signal-safety(7) requires of a handler.
                unsafe { signal::sigaction(signal, &action) }.map(drop)
            },
        )?;
    }
    Ok(Handlers {
        wake,
        _write_end: write_end,
    })
}
// ANCHOR_END: install

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
    let handlers = install_handlers(n)?;
    let mut partner = Partner::new(sender)?;
    ready(partner.me)?;
    let mut talk = Conversation::default();
    let mut records = Records::default();
    loop {
        wait_for_signal(&handlers.wake, &partner)?;
        // The pipe has data: this read does not wait.
        records.read(n, &handlers.wake)?;
        if let Ok(stop) = Signal::try_from(STOP.load(Ordering::SeqCst)) {
            n.unmute();
            n.announce(format_args!(
                "{stop} arrived: stopping after {} signals",
                talk.received
            ));
            return Err(Error::interrupted(stop.as_str()));
        }
        while let Some((signal, code, pid)) = records.next() {
            let verdict = partner.judge(code, pid, signal == libc::SIGUSR2);
            match (signal, verdict) {
                (libc::SIGUSR1, Ok(sender)) => {
                    talk.received += 1;
                    n.say(format_args!("SIGUSR1 #{} from pid {sender}", talk.received));
                    acknowledge(n, &partner, sender)?;
                    if talk.received == NARRATED {
                        n.mute("... acknowledging the rest without narration");
                    }
                }
                (libc::SIGUSR2, Ok(_)) => {
                    n.unmute();
                    n.say("SIGUSR2: that was the last one");
                    report_lost(n);
                    return Ok(talk);
                }
                (libc::SIGUSR1 | libc::SIGUSR2, Err(why)) => {
                    talk.ignored += 1;
                    if talk.ignored <= NARRATED {
                        let name = if signal == libc::SIGUSR1 {
                            "SIGUSR1"
                        } else {
                            "SIGUSR2"
                        };
                        n.announce(format_args!(
                            "{name} claiming to be from pid {pid}: ignored, not answered: {why}"
                        ));
                    }
                }
                // SIGINT and SIGTERM were handled above, through STOP.
                _ => {}
            }
        }
    }
}

/// Sends the acknowledgement: one SIGUSR1 to `sender`, who [`Partner::judge`] said may
/// have it. The last check is here too, next to the call it guards: `kill(2)` with a pid
/// of 0 or less, or our own, would signal a whole group, every process we may signal, or
/// ourselves (an endless conversation with no one).
fn acknowledge(n: &Narrator, partner: &Partner, sender: Pid) -> Result<()> {
    if sender.as_raw() <= 0 || sender == partner.me {
        return Err(Error::bad_data(
            format!("kill({sender}, SIGUSR1)"),
            "refused: that pid is not one other process",
        ));
    }
    n.call(
        format_args!("kill({sender}, SIGUSR1)   (acknowledge)"),
        || signal::kill(sender, Signal::SIGUSR1),
    )
    .map_err(|e| match e.errno() {
        Some(Errno::ESRCH) => e.hint(format!(
            "the sender (pid {sender}) has gone: it was killed or crashed before the end"
        )),
        _ => e,
    })?;
    Ok(())
}
// ANCHOR_END: receive

/// Whom the receiver answers, and the checks that keep its answers from hitting anyone
/// else.
#[derive(Debug)]
struct Partner {
    /// Our own pid.
    me: Pid,
    /// The sender: named on the command line, or adopted from its first signal.
    sender: Option<Pid>,
}

impl Partner {
    fn new(sender: Option<Pid>) -> Result<Partner> {
        let me = unistd::getpid();
        if let Some(pid) = sender {
            if pid == me || pid.as_raw() <= 0 {
                return Err(Error::usage(format!(
                    "--sender {pid}: the sender must be another process"
                )));
            }
            if !process::is_alive(pid.as_raw()) {
                return Err(process::gone("sender", pid.as_raw()).hint(format!(
                    "no running process has pid {pid}: start the sender first, or leave out --sender"
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
    fn judge(&mut self, code: i32, pid: i32, last: bool) -> Result<Pid, String> {
        if code != libc::SI_USER && code != libc::SI_TKILL {
            return Err(format!(
                "its si_code is {code}, not SI_USER: it was sent with sigqueue or \
                 rt_sigqueueinfo, which let the sender write any si_pid"
            ));
        }
        if pid <= 0 {
            return Err(format!("pid {pid} is not one process"));
        }
        let pid = Pid::from_raw(pid);
        if pid == self.me {
            return Err("that is my own pid".into());
        }
        match self.sender {
            Some(sender) if sender == pid => Ok(pid),
            Some(sender) => Err(format!("my sender is pid {sender}")),
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
            .map_err(|_| format!("pid {pid} has gone"))?;
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
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(format!(
        "pid {pid} ({command}) neither blocks nor catches SIGUSR1, so an acknowledgement \
         would end it; to answer it anyway, start the receiver with --sender {pid}"
    ))
}

/// Waits until the self-pipe has something to read, checking every [`LIVENESS_CHECK`]
/// that the sender (once there is one) is alive: a sender killed mid-conversation sends
/// no SIGUSR2, and nothing else would ever wake us.
fn wait_for_signal(wake: &OwnedFd, partner: &Partner) -> Result<()> {
    loop {
        let mut fds = libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = LIVENESS_CHECK.as_millis() as libc::c_int;
        // SAFETY: `fds` is one valid pollfd for the call. poll(2) is never restarted
        // after a handler (signal(7)): EINTR then means the self-pipe has a record.
        let ready = unsafe { libc::poll(&mut fds, 1, ms) };
        match ready {
            1.. => return Ok(()),
            0 => {
                if let Some(sender) = partner.sender
                    && !process::is_alive(sender.as_raw())
                {
                    return Err(process::gone("sender", sender.as_raw()));
                }
            }
            _ if Errno::last() == Errno::EINTR => continue,
            _ => return Err(Error::sys("poll(self-pipe, POLLIN)", Errno::last())),
        }
    }
}

/// Reads records from the self-pipe and hands them out one by one.
#[derive(Default)]
struct Records {
    bytes: Vec<u8>,
    at: usize,
}

impl Records {
    /// One narrated `read` of what the self-pipe holds (it never waits: called after
    /// poll said there is data).
    fn read(&mut self, n: &Narrator, wake: &OwnedFd) -> Result<()> {
        self.bytes.drain(..self.at);
        self.at = 0;
        let mut buf = [0u8; 16 * RECORD];
        let got = n.call(
            format_args!(
                "read({}, buf, {})   (what the handler wrote)",
                wake.as_raw_fd(),
                buf.len()
            ),
            || loop {
                match unistd::read(wake, &mut buf) {
                    Err(Errno::EINTR) => continue,
                    other => return other,
                }
            },
        )?;
        self.bytes.extend_from_slice(&buf[..got]);
        Ok(())
    }

    /// The next whole record: (signal, si_code, si_pid).
    fn next(&mut self) -> Option<(i32, i32, i32)> {
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

fn report_lost(n: &Narrator) {
    let lost = LOST.load(Ordering::SeqCst);
    if lost > 0 {
        n.announce(format_args!(
            "{lost} signals could not be recorded: the self-pipe was full (a flood of signals)"
        ));
    }
}

/// How long the sender waits in one `sigtimedwait` before it checks that the receiver is
/// still alive.
const ACK_SLICE: Duration = Duration::from_millis(500);

// ANCHOR: send
/// The sender: checks that `target` is a signal-demo receiver, sends `count` SIGUSR1
/// and waits for each acknowledgement (at most `timeout`), then sends SIGUSR2.
pub fn send(n: &Narrator, target: Pid, count: u64, timeout: Duration) -> Result<u64> {
    check_receiver(n, target)?;
    // Block SIGUSR1 here, so that an acknowledgement that comes back before we wait for it
    // stays pending instead of running the default action (which would end us).
    let mut acks = SigSet::empty();
    acks.add(Signal::SIGUSR1);
    n.call("sigprocmask(SIG_BLOCK, {SIGUSR1}, NULL)", || {
        signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&acks), None)
    })?;
    for seq in 0..count {
        if seq == NARRATED {
            n.mute("... sending the rest without narration");
        }
        n.call(format_args!("kill({target}, SIGUSR1)"), || {
            signal::kill(target, Signal::SIGUSR1)
        })
        .map_err(|e| e.hint("the receiver has exited"))?;
        wait_for_ack(n, &acks, target, timeout)?;
    }
    n.unmute();
    n.call(
        format_args!("kill({target}, SIGUSR2)   (that was the last one)"),
        || signal::kill(target, Signal::SIGUSR2),
    )?;
    Ok(count)
}

/// Waits for a SIGUSR1 from `target`, ignoring any from other processes. It waits in
/// slices of [`ACK_SLICE`], and between two checks that `target` is still alive: a dead
/// receiver is reported within half a second, not after the whole `timeout`.
fn wait_for_ack(n: &Narrator, acks: &SigSet, target: Pid, timeout: Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // Whole milliseconds, as a person would write the time-out.
        let slice = Duration::from_millis(left.min(ACK_SLICE).as_millis() as u64);
        match n.call(
            format_args!("sigtimedwait({{SIGUSR1}}, &info, {slice:?})"),
            || wait_signal(acks.as_ref(), Some(slice)),
        ) {
            Ok(caught) if caught.sender == target => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.errno() == Some(Errno::EAGAIN) => {
                if !process::is_alive(target.as_raw()) {
                    return Err(process::gone("receiver", target.as_raw()));
                }
                if std::time::Instant::now() >= deadline {
                    return Err(e.hint(format!(
                        "no acknowledgement from pid {target} within {timeout:?}: is it stopped, or busy?"
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
    // Signal 0 is never delivered: kill(2) only checks that the process exists and that
    // we are allowed to signal it.
    n.call(
        format_args!("kill({target}, 0)   (is it there, and may I signal it?)"),
        || signal::kill(target, None),
    )
    .map_err(|e| match e.errno() {
        Some(Errno::ESRCH) => {
            e.hint("no process has this pid; the receiver prints its pid when it starts")
        }
        Some(Errno::EPERM) => {
            e.hint("the process belongs to another user, and only root may signal it")
        }
        _ => e,
    })?;
    let comm_path = format!("/proc/{target}/comm");
    let comm = std::fs::read_to_string(&comm_path).unwrap_or_default();
    if comm.trim_end() != "signal-demo" {
        return Err(Error::bad_data(
            format!("read({comm_path})"),
            format!("pid {target} is `{}`, not a signal-demo receiver", comm.trim_end()),
        )
        .hint("SIGUSR1 would end an ordinary program; to send one signal to any process, use `signal-demo kill`"));
    }
    Ok(())
}

/// What `sigtimedwait` or `sigwaitinfo` returned.
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
        match Signal::try_from(self.signal) {
            Ok(standard) => format!("{standard} (from pid {})", self.sender),
            // Real-time signals have no names of their own, only SIGRTMIN+n; and only
            // they carry a value worth showing.
            Err(_) => match self.signal - libc::SIGRTMIN() {
                0 => format!("SIGRTMIN (from pid {}, value {})", self.sender, self.value),
                n => format!(
                    "SIGRTMIN+{n} (from pid {}, value {})",
                    self.sender, self.value
                ),
            },
        }
    }
}

/// `sigtimedwait(2)` (or, with no time-out, `sigwaitinfo(2)`): takes one pending signal
/// of `set`, which must be blocked, and returns what it carried. nix has no wrapper.
pub fn wait_signal(set: &libc::sigset_t, timeout: Option<Duration>) -> nix::Result<Caught> {
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
    let signal = unsafe { libc::sigtimedwait(set, &mut info, timeout_ptr) };
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

/// Both roles in one terminal: the child receives, the parent sends. A pipe tells the
/// parent when the child's handlers are installed: a signal sent before that would
/// meet SIGUSR1's default action and kill the child.
pub fn ping_pong(n: &Narrator, count: u64, timeout: Duration) -> Result<()> {
    let (ready_read, ready_write) = n.call("pipe()   (for \"ready\")", unistd::pipe)?;
    // The child's sender is this process: it answers no one else.
    let parent = unistd::getpid();
    match process::fork(n, "receiver")? {
        Fork::Child(me) => {
            let result = stream::close(&me, ready_read)
                .and_then(|()| {
                    receive(&me, Some(parent), |_| {
                        let mut pipe = FdStream::new(ready_write, &me);
                        pipe.write_all(b"r")
                    })
                })
                .and_then(|talk| print_conversation(&talk));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            stream::close(n, ready_write)?;
            wait_until_ready(n, ready_read)?;
            send(n, child, count, timeout)?;
            process::wait_for(n, child, "receiver")
        }
    }
}

/// The receiver's summary line: `summary: received=N ignored=K`.
pub fn print_conversation(talk: &Conversation) -> Result<()> {
    print_summary(format_args!(
        "summary: received={} ignored={}",
        talk.received, talk.ignored
    ))
}

/// Reads the child's one-byte "ready"; end-of-file means the child died first.
fn wait_until_ready(n: &Narrator, ready_read: OwnedFd) -> Result<()> {
    let mut byte = [0u8; 1];
    if FdStream::new(ready_read, n).read(&mut byte)? == 0 {
        return Err(Error::bad_data(
            "wait for the receiver",
            "it exited before it was ready",
        ));
    }
    Ok(())
}

// ANCHOR: coalesce
/// Sends `count` SIGUSR1 to a child that blocks them, then lets the child unblock: the
/// kernel kept one pending bit, so the handler runs once.
pub fn coalesce(n: &Narrator, count: u64) -> Result<()> {
    let (ready_read, ready_write) = n.call("pipe()   (receiver -> sender: ready)", unistd::pipe)?;
    let (go_read, go_write) = n.call(
        "pipe()   (sender -> receiver: how many I sent)",
        unistd::pipe,
    )?;
    match process::fork(n, "receiver")? {
        Fork::Child(me) => {
            let result = stream::close(&me, ready_read)
                .and_then(|()| stream::close(&me, go_write))
                .and_then(|()| blocked_receiver(&me, ready_write, go_read));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            stream::close(n, ready_write)?;
            stream::close(n, go_read)?;
            wait_until_ready(n, ready_read)?;
            for seq in 0..count {
                if seq == NARRATED {
                    n.mute(format_args!(
                        "... sending SIGUSR1 {} more times without narration",
                        count - seq
                    ));
                }
                n.call(format_args!("kill({child}, SIGUSR1)"), || {
                    signal::kill(child, Signal::SIGUSR1)
                })?;
            }
            n.unmute();
            FdStream::new(go_write, n).write_all(&count.to_le_bytes())?;
            process::wait_for(n, child, "receiver")
        }
    }
}

fn blocked_receiver(me: &Narrator, ready_write: OwnedFd, go_read: OwnedFd) -> Result<()> {
    let _handlers = install_handlers(me)?;
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    me.call("sigprocmask(SIG_BLOCK, {SIGUSR1}, NULL)", || {
        signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&usr1), None)
    })?;
    FdStream::new(ready_write, me).write_all(b"r")?;
    let mut sent = [0u8; 8];
    if !FdStream::new(go_read, me).read_full(&mut sent)? {
        return Err(Error::bad_data(
            "wait for the sender",
            "it exited without saying how many it sent",
        ));
    }
    let sent = u64::from_le_bytes(sent);
    me.say(format_args!(
        "the sender sent SIGUSR1 {sent} times while I was blocking it"
    ));
    me.say(format_args!(
        "sigpending() = {{{}}}: one pending bit per signal number",
        pending_names()
    ));
    me.call("sigprocmask(SIG_UNBLOCK, {SIGUSR1}, NULL)", || {
        signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&usr1), None)
    })?;
    // A pending signal that is unblocked is delivered before sigprocmask returns
    // (sigprocmask(2)), so the handler has run by now.
    let received = TICKS.load(Ordering::SeqCst);
    me.say(format_args!(
        "the handler ran {received} time(s) for {sent} signals sent"
    ));
    print_summary(format_args!("summary: sent={sent} received={received}"))
}

/// The names of this process's pending standard signals, from `sigpending(2)`.
fn pending_names() -> String {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before sigpending fills it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t for both calls.
    let ok = unsafe { libc::sigemptyset(&mut set) == 0 && libc::sigpending(&mut set) == 0 };
    if !ok {
        return "?".into();
    }
    Signal::iterator()
        // SAFETY: `set` was filled by sigpending; sigismember only reads it.
        .filter(|s| unsafe { libc::sigismember(&set, *s as libc::c_int) } == 1)
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
// ANCHOR_END: coalesce

// ANCHOR: queue
/// Real-time signals: the parent queues `count` SIGRTMIN with `sigqueue`, each carrying
/// its sequence number; the child takes them with `sigwaitinfo` and checks all arrived,
/// in order.
pub fn queue(n: &Narrator, count: u64) -> Result<()> {
    let rtmin = libc::SIGRTMIN();
    let set = signal_set(rtmin);
    // Block SIGRTMIN before fork: the child inherits the mask, so every signal the parent
    // queues waits for the child's sigwaitinfo. (Delivered unblocked, with no handler, a
    // real-time signal's default action ends the process.)
    n.call("sigprocmask(SIG_BLOCK, {SIGRTMIN}, NULL)", || {
        // SAFETY: `set` is a valid, initialised sigset_t; no old mask is asked for.
        Errno::result(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) })
            .map(drop)
    })?;
    match process::fork(n, "receiver")? {
        Fork::Child(me) => process::exit_child(&me, take_queued(&me, &set, count)),
        Fork::Parent { child } => {
            let mut told_full = false;
            for value in 0..count {
                if value == NARRATED {
                    n.mute("... queueing the rest without narration");
                }
                loop {
                    match n.call(
                        format_args!("sigqueue({child}, SIGRTMIN, {{sival_int={value}}})"),
                        || sigqueue(child, rtmin, value),
                    ) {
                        Ok(()) => break,
                        // The per-user limit of queued signals (RLIMIT_SIGPENDING, `ulimit
                        // -i`) is reached: let the receiver take some, then try again.
                        Err(e) if e.errno() == Some(Errno::EAGAIN) => {
                            if !told_full {
                                n.announce("sigqueue = -1 EAGAIN: the queue is full (ulimit -i); waiting for the receiver");
                                told_full = true;
                            }
                            std::thread::yield_now();
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            n.unmute();
            process::wait_for(n, child, "receiver")
        }
    }
}

fn take_queued(me: &Narrator, set: &libc::sigset_t, count: u64) -> Result<()> {
    let mut in_order = 0;
    for expected in 0..count {
        if expected == NARRATED {
            me.mute("... taking the rest without narration");
        }
        let caught = me.call("sigwaitinfo({SIGRTMIN}, &info)", || wait_signal(set, None))?;
        in_order += u64::from(caught.value == expected);
    }
    me.unmute();
    print_summary(format_args!(
        "summary: sent={count} received={count} in_order={in_order}"
    ))?;
    if in_order != count {
        return Err(Error::bad_data(
            "check the order",
            format!("{} of {count} out of order", count - in_order),
        ));
    }
    Ok(())
}

/// `sigqueue(3)`: sends `signal` to `pid` with `value` as its data. nix has no wrapper.
fn sigqueue(pid: Pid, signal: libc::c_int, value: u64) -> nix::Result<()> {
    // The value travels in a union sigval; the libc crate spells it as a pointer.
    let value = libc::sigval {
        sival_ptr: value as usize as *mut c_void,
    };
    // SAFETY: sigqueue only reads its arguments, all passed by value.
    Errno::result(unsafe { libc::sigqueue(pid.as_raw(), signal, value) }).map(drop)
}

/// A signal set holding `signal` alone (for real-time signals, which nix's `SigSet`
/// cannot name).
pub fn signal_set(signal: libc::c_int) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it, sigaddset adds a valid
    // signal number to it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        set
    }
}
// ANCHOR_END: queue

// ANCHOR: graceful
/// A worker that stops cleanly on Ctrl-C (SIGINT) or SIGTERM: the `ctrlc` crate's
/// handler only sends on a channel, and the worker notices between two steps of work.
/// With `steps`, it also stops by itself after that many. Returns the steps done, or an
/// "interrupted" error (exit code 130) after saying so.
pub fn graceful(n: &Narrator, steps: Option<u64>, step_time: Duration) -> Result<u64> {
    let (stop, stopped) = mpsc::channel();
    n.say("installing a SIGINT and SIGTERM handler with the ctrlc crate (a thread that waits for the signal)");
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|e| Error::bad_data("sigaction(SIGINT/SIGTERM) via ctrlc", e.to_string()))?;
    let pid = unistd::getpid();
    n.announce(format_args!(
        "working; stop me with Ctrl-C or `kill -TERM {pid}` (`kill -KILL {pid}` cannot be caught)"
    ));
    let mut done = 0;
    while steps != Some(done) {
        // One step of (simulated) work; a signal ends the wait at once.
        match stopped.recv_timeout(step_time) {
            Ok(()) => {
                n.announce(format_args!(
                    "SIGINT or SIGTERM: finishing cleanly after {done} steps"
                ));
                print_summary(format_args!("summary: steps={done} stopped_by=signal"))?;
                return Err(Error::interrupted("SIGINT or SIGTERM"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => done += 1,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::bad_data(
                    "wait for a signal",
                    "the ctrlc handler is gone",
                ));
            }
        }
        if done <= NARRATED {
            n.say(format_args!("step {done} done"));
        }
    }
    print_summary(format_args!("summary: steps={done} stopped_by=none"))?;
    Ok(done)
}
// ANCHOR_END: graceful

/// `kill(2)`: sends `signal` to `pid` once, as the `kill` command does.
pub fn kill(n: &Narrator, pid: Pid, signal: Signal) -> Result<()> {
    n.call(format_args!("kill({pid}, {signal})"), || {
        signal::kill(pid, signal)
    })
    .map_err(|e| match e.errno() {
        Some(Errno::ESRCH) => e.hint("no process has this pid"),
        Some(Errno::EPERM) => {
            e.hint("the process belongs to another user, and only root may signal it")
        }
        _ => e,
    })?;
    print_summary(format_args!("summary: sent={signal} to={pid}"))
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
