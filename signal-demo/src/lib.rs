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
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
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
/// The pid that sent the last SIGUSR1.
static LAST_SENDER: AtomicI32 = AtomicI32::new(0);
/// A SIGUSR2 ("that was the last one") has arrived.
static DONE: AtomicBool = AtomicBool::new(false);
/// The number of a SIGINT or SIGTERM that asked us to stop, or 0.
static STOP: AtomicI32 = AtomicI32::new(0);

// ANCHOR: handler
/// The signal handler. It runs in the middle of whatever the process was doing, so it
/// does only what is safe there: it records the signal in atomics and writes one byte to
/// the self-pipe to wake the main loop, which does the real work (and the printing).
extern "C" fn on_signal(signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut c_void) {
    // SAFETY: __errno_location returns this thread's errno, valid while the thread lives.
    // The handler saves and restores errno because its write() may change it, and the
    // code it interrupted may be just about to read it.
    let saved_errno = unsafe { *libc::__errno_location() };
    // SAFETY: the handler is installed with SA_SIGINFO, so the kernel passes a valid
    // siginfo_t; si_pid is set for signals sent with kill(2) and sigqueue(3).
    let sender = unsafe { (*info).si_pid() };
    match signal {
        libc::SIGUSR1 => {
            LAST_SENDER.store(sender, Ordering::SeqCst);
            TICKS.fetch_add(1, Ordering::SeqCst);
        }
        libc::SIGUSR2 => DONE.store(true, Ordering::SeqCst),
        other => STOP.store(other, Ordering::SeqCst),
    }
    let fd = SELF_PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; `fd` is the self-pipe's write end, which
        // is non-blocking (a full pipe loses the byte, never blocks the handler), and the
        // buffer is a one-byte static.
        unsafe { libc::write(fd, b"!".as_ptr().cast(), 1) };
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

// ANCHOR: receive
/// The receiver: installs its handlers, calls `ready` with its pid (to print it, or to
/// tell a parent), then acknowledges each SIGUSR1 with a SIGUSR1 back to its sender until
/// a SIGUSR2 says it was the last. Returns how many it received.
pub fn receive(n: &Narrator, ready: impl FnOnce(Pid) -> Result<()>) -> Result<u64> {
    let handlers = install_handlers(n)?;
    ready(unistd::getpid())?;
    let mut acknowledged = 0;
    let mut buf = [0u8; 64];
    loop {
        // Sleep in read(2) until a handler writes to the self-pipe.
        match n.call(
            format_args!(
                "read({}, buf, 64)   (wait for a signal)",
                handlers.wake.as_raw_fd()
            ),
            || unistd::read(&handlers.wake, &mut buf),
        ) {
            Ok(_) => {}
            Err(e) if e.errno() == Some(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
        if let Ok(stop) = Signal::try_from(STOP.load(Ordering::SeqCst)) {
            n.announce(format_args!(
                "{stop} arrived: stopping after {acknowledged} signals"
            ));
            return Err(Error::interrupted(stop.as_str()));
        }
        // Acknowledge every SIGUSR1 the handler has counted and we have not answered.
        while acknowledged < TICKS.load(Ordering::SeqCst) {
            let sender = Pid::from_raw(LAST_SENDER.load(Ordering::SeqCst));
            n.say(format_args!(
                "SIGUSR1 #{} from pid {sender}",
                acknowledged + 1
            ));
            n.call(
                format_args!("kill({sender}, SIGUSR1)   (acknowledge)"),
                || signal::kill(sender, Signal::SIGUSR1),
            )?;
            acknowledged += 1;
            if acknowledged == NARRATED {
                n.mute("... acknowledging the rest without narration");
            }
        }
        if DONE.load(Ordering::SeqCst) {
            n.unmute();
            n.say("SIGUSR2: that was the last one");
            return Ok(acknowledged);
        }
    }
}
// ANCHOR_END: receive

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

/// Waits for a SIGUSR1 from `target`, ignoring any from other processes.
fn wait_for_ack(n: &Narrator, acks: &SigSet, target: Pid, timeout: Duration) -> Result<()> {
    loop {
        match n.call(
            format_args!("sigtimedwait({{SIGUSR1}}, &info, {timeout:?})"),
            || wait_signal(acks.as_ref(), Some(timeout)),
        ) {
            Ok(caught) if caught.sender == target => return Ok(()),
            Ok(_) => continue,
            Err(e) if e.errno() == Some(Errno::EAGAIN) => {
                return Err(e.hint(format!(
                    "no acknowledgement from pid {target} within {timeout:?}: is it stopped, or busy?"
                )));
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
    match process::fork(n, "receiver")? {
        Fork::Child(me) => {
            let result = stream::close(&me, ready_read)
                .and_then(|()| {
                    receive(&me, |_| {
                        let mut pipe = FdStream::new(ready_write, &me);
                        pipe.write_all(b"r")
                    })
                })
                .and_then(|received| print_summary(format_args!("summary: received={received}")));
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
