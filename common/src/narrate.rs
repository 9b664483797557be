//! Narration: every system call that matters, printed as it happens.
//!
//! A line looks like a line of `strace`, tagged with the role and the pid of the process
//! that made the call, so that two processes writing to one terminal can be told apart:
//!
//! ```text
//! [producer 4242] pipe() = [3, 4]
//! [producer 4242] fork() = 4243
//! [consumer 4243] close(4) = 0      the consumer never writes; see below why it must close
//! ```
//!
//! `--quiet` turns narration off (the summary line is still printed), and `--step` waits
//! for Enter before each narrated call, so a class can look at the kernel object from
//! another terminal between two calls. A loop of thousands of calls narrates the first
//! few and then [`Narrator::mute`]s itself, saying so; `--rate N` paces every loop that
//! goes through [`Narrator::first_few`] to N iterations a second, narrated or not, so that
//! a class watching the kernel object (`ipc-watch`) sees a buffer fill, a producer block
//! and a consumer drain it.
//!
//! ## `--step` with one or two processes on a terminal
//!
//! Each narrated call first prints its prompt, `[producer 4242] next: write(4, buf, 80)
//! [Enter]`, and waits for a line on standard input. The prompt is the call's only
//! before-line: on a terminal it is printed without a line end, and the Enter the user
//! types ends it (the terminal echoes it), so a step adds one line, not three (prompt,
//! an empty echoed line, and `write(...) ...`). Then the call runs and its result line
//! follows, `[producer 4242] write(4, buf, 80) = 80`.
//!
//! Two rules keep two processes that share one terminal (after `fork`, or a producer and
//! a consumer started in one shell) from taking each other's Enter:
//!
//! - **One prompt at a time.** Around its prompt and the read of the answer, a process
//!   holds an exclusive `flock(2)` on its *own* open of the terminal (it opens
//!   `/proc/self/fd/N` of its standard input again, a new open file description of the
//!   same device). Locks of `flock` belong to an open file description, and a forked
//!   child shares its parent's descriptors, so each process must make its own open: then
//!   the two locks are on the same inode and exclude each other. The other process waits
//!   for the lock before it prints its prompt, so the prompt on the screen is always the
//!   one the next Enter answers; the prompts take turns in the order the kernel grants the
//!   lock, and no prompt is ever printed while another is waiting for its answer. Nothing
//!   is created on disk for this; when standard input is not a terminal (a pipe, in
//!   tests), there is no lock, and each line still goes to exactly one process because
//!   prompts read one byte at a time.
//! - **Typing ahead does not count.** Before each prompt, under the lock, the process
//!   discards what was typed and not yet read (`tcflush(fd, TCIFLUSH)`, termios(3)), so
//!   an Enter pressed while a process was blocked in `read` or `sem_wait` does not answer
//!   a prompt that was not yet on the screen.
//!
//! Narration is written to a copy of standard output made when the narrator is created
//! (and `--step` reads from a copy of standard input), both close-on-exec. So a child
//! that `dup2`s a pipe onto its fd 0 or 1, as a shell does for `ls | grep`, still
//! narrates to the terminal, and the programs it `exec`s never see the copies.
//!
//! This module prints; it does not decide what is worth printing. Each demo does.

use std::fmt::{self, Display};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::unistd::{self, Pid};

use crate::error::{Error, Result, errno_name};

/// The options every demo takes for narration; `#[command(flatten)]` them into a CLI.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct NarrationArgs {
    /// Print only the summary (and errors), no narration.
    #[arg(long, global = true, conflicts_with = "step")]
    pub quiet: bool,
    /// Wait for Enter before each narrated system call (for walking through in class).
    #[arg(long, global = true)]
    pub step: bool,
    /// Narrate every iteration of every loop, not only the first few (to watch a buffer
    /// fill, a writer block and an index wrap around).
    #[arg(long, global = true, conflicts_with = "quiet")]
    pub all: bool,
    /// At most N iterations a second in every loop (0.5 to 1000; e.g. --rate 2), narrated
    /// or not, so that a class can watch a buffer fill, a writer block and a reader drain
    /// it (with `ipc-watch` in a third terminal).
    #[arg(long, global = true, value_name = "N", value_parser = rate)]
    pub rate: Option<f64>,
}

/// The slowest and the fastest `--rate`.
pub const RATE_RANGE: std::ops::RangeInclusive<f64> = 0.5..=1000.0;

/// Parses `--rate N`: iterations a second, a number in [`RATE_RANGE`].
pub fn rate(text: &str) -> std::result::Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if RATE_RANGE.contains(&rate) => Ok(rate),
        _ => Err(crate::tr!(
            "`{text}` is not a rate: give iterations a second, from {low} to {high}",
            text,
            low = RATE_RANGE.start(),
            high = RATE_RANGE.end()
        )),
    }
}

/// Prints what one role of one process does. Cheap to clone; a clone shares the mute switch.
#[derive(Debug, Clone)]
pub struct Narrator {
    role: &'static str,
    pid: Pid,
    quiet: bool,
    /// `--all`: loops never go quiet.
    all: bool,
    /// `--step` is on; it turns itself off when standard input ends.
    step: Arc<AtomicBool>,
    /// `--rate`: the time between two iterations of a loop.
    interval: Option<Duration>,
    muted: Arc<AtomicBool>,
    /// Where narration goes and where `--step` reads (see the module documentation).
    terminal: Arc<Terminal>,
}

/// Close-on-exec copies of standard output and input; `None` if a copy could not be made,
/// and then the process's own descriptor is used.
#[derive(Debug)]
struct Terminal {
    output: Option<OwnedFd>,
    input: Option<OwnedFd>,
}

impl Terminal {
    fn copy() -> Terminal {
        fn dup_cloexec(fd: std::os::fd::BorrowedFd<'_>) -> Option<OwnedFd> {
            // F_DUPFD_CLOEXEC gives the lowest free descriptor >= 100, with FD_CLOEXEC set.
            // Starting high leaves 3, 4, ... to the demo, so that `pipe()` returns [3, 4]
            // as in the man pages and the notes.
            let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(100)).ok()?;
            // SAFETY: fcntl just returned `raw` as a new descriptor that nothing else
            // owns, so OwnedFd may take it and close it when dropped.
            Some(unsafe { OwnedFd::from_raw_fd(raw) })
        }
        Terminal {
            output: dup_cloexec(std::io::stdout().as_fd()),
            input: dup_cloexec(std::io::stdin().as_fd()),
        }
    }

    /// Where `--step` reads its Enter: the copy of standard input, or standard input.
    fn input(&self) -> BorrowedFd<'_> {
        match &self.input {
            Some(fd) => fd.as_fd(),
            // SAFETY: descriptor 0 is only borrowed for a read; the demos never close it
            // (a child may dup2 onto it, which replaces it without closing it).
            None => unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) },
        }
    }

    /// Where narration goes: the copy of standard output, or standard output.
    fn output(&self) -> BorrowedFd<'_> {
        match &self.output {
            Some(fd) => fd.as_fd(),
            // SAFETY: as in `input`, for descriptor 1.
            None => unsafe { BorrowedFd::borrow_raw(libc::STDOUT_FILENO) },
        }
    }
}

/// Whether `fd` is a terminal (isatty(3)).
fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: isatty only looks at the descriptor, which is open for the borrow's life.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}

/// Whether the terminal at `fd` echoes what is typed (the ECHO flag, termios(3)): then the
/// Enter that answers a prompt ends the prompt's line on the screen.
fn echoes(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: termios is plain data, for which all zero bytes are a valid value.
    let mut modes: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr fills `modes`, a valid termios, for an open descriptor.
    let ok = unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut modes) } == 0;
    ok && modes.c_lflag & libc::ECHO != 0
}

/// The turn of one process at the terminal: an exclusive `flock(2)` on this process's own
/// open of the terminal, released when dropped (closing the descriptor releases the lock).
/// See the module documentation for why the open must be this process's own.
struct Turn(OwnedFd);

impl Turn {
    /// Waits for the turn at the terminal `input`; `None` if no lock can be had (the
    /// prompt then goes ahead without one, as before there was a lock).
    fn take(input: BorrowedFd<'_>) -> Option<Turn> {
        let path = format!("/proc/self/fd/{}", input.as_raw_fd());
        // O_NOCTTY: opening a terminal must not make it this process's controlling one.
        let fd = nix::fcntl::open(
            path.as_str(),
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_NOCTTY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()?;
        loop {
            // SAFETY: flock takes a descriptor that is open (owned by `fd`) and a flag.
            match Errno::result(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) }) {
                Ok(_) => return Some(Turn(fd)),
                Err(Errno::EINTR) => continue,
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Closing would release the lock too; unlocking first says so in the code.
        // SAFETY: the descriptor is open until `self.0` is dropped right after.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl Narrator {
    /// A narrator for `role` in this process.
    pub fn new(role: &'static str, args: NarrationArgs) -> Narrator {
        let n = Narrator {
            role,
            pid: unistd::getpid(),
            quiet: args.quiet,
            all: args.all,
            step: Arc::new(AtomicBool::new(args.step && !args.quiet)),
            interval: args.rate.map(|rate| Duration::from_secs_f64(1.0 / rate)),
            muted: Arc::new(AtomicBool::new(false)),
            terminal: Arc::new(Terminal::copy()),
        };
        if n.step.load(Ordering::Relaxed) {
            crate::say!(
                n,
                "--step: I wait for Enter before each system call (Ctrl-D stops waiting)"
            );
        }
        n
    }

    /// A narrator that prints nothing: for code that runs a lesson without an audience
    /// (the bench, unit tests).
    pub fn silent(role: &'static str) -> Narrator {
        Narrator::new(
            role,
            NarrationArgs {
                quiet: true,
                ..NarrationArgs::default()
            },
        )
    }

    /// A narrator for a new role in *this* process: call it in a child right after
    /// `fork()`, so that its lines carry the child's own pid.
    pub fn for_role(&self, role: &'static str) -> Narrator {
        Narrator {
            role,
            pid: unistd::getpid(),
            quiet: self.quiet,
            all: self.all,
            step: Arc::new(AtomicBool::new(self.step.load(Ordering::Relaxed))),
            interval: self.interval,
            muted: Arc::new(AtomicBool::new(false)),
            terminal: self.terminal.clone(),
        }
    }

    /// The role this narrator speaks for (`producer`, `consumer`, ...).
    pub fn role(&self) -> &'static str {
        self.role
    }

    /// Whether narration is off, by `--quiet` or by [`Narrator::mute`].
    #[inline]
    pub fn is_silent(&self) -> bool {
        self.quiet || self.muted.load(Ordering::Relaxed)
    }

    /// Prints one tagged line, unless silent: `[producer 4242] text`.
    pub fn say(&self, text: impl Display) {
        if !self.is_silent() {
            self.print(format_args!("{text}"));
        }
    }

    /// Prints a tagged line even when muted (but not with `--quiet`): for things that
    /// happen once, such as the end of the stream, after a loop has muted the narrator.
    pub fn announce(&self, text: impl Display) {
        if !self.quiet {
            self.print(format_args!("{text}"));
        }
    }

    /// Prints a tagged line even with `--quiet`: for what a user must know to go on, such
    /// as the port a server was given. Use it rarely.
    pub fn essential(&self, text: impl Display) {
        self.print(format_args!("{text}"));
    }

    fn print(&self, text: fmt::Arguments<'_>) {
        self.write_line(text, "\n");
    }

    /// Writes `[role pid] text` and `end` (a line end, or nothing for a prompt whose line
    /// the echoed Enter ends) with one write, so that lines of two processes sharing a
    /// terminal do not mix.
    fn write_line(&self, text: fmt::Arguments<'_>, end: &str) {
        let line = format!("[{} {}] {}{end}", self.role, self.pid, text);
        self.write_raw(line.as_bytes());
    }

    fn write_raw(&self, bytes: &[u8]) {
        let stdout = std::io::stdout();
        // Whatever println! has buffered goes first, so lines keep their order.
        let _ = stdout.lock().flush();
        match &self.terminal.output {
            Some(fd) => {
                let mut rest = bytes;
                while !rest.is_empty() {
                    match unistd::write(fd, rest) {
                        Ok(wrote) => rest = &rest[wrote..],
                        Err(Errno::EINTR) => continue,
                        // Nowhere left to narrate to (the terminal is gone): stay silent.
                        Err(_) => return,
                    }
                }
            }
            None => {
                let _ = stdout.lock().write_all(bytes);
            }
        }
    }

    /// Stops narrating calls from here on, and says why (`why` is printed once).
    pub fn mute(&self, why: impl Display) {
        if !self.is_silent() {
            self.print(format_args!("{why}"));
        }
        self.muted.store(true, Ordering::Relaxed);
    }

    /// Narrates calls again after [`Narrator::mute`] (a loop is over).
    pub fn unmute(&self) {
        self.muted.store(false, Ordering::Relaxed);
    }

    /// Makes one system call, narrated: waits for Enter first under `--step`, runs `f`,
    /// then prints `desc = result` (or `desc = -1 EPIPE (Broken pipe)`).
    ///
    /// `desc` is the call as a man page writes it, with its arguments, e.g.
    /// `format_args!("write({fd}, buf, {len})")`; it names the call in the error too.
    /// Lessons do not call this directly: they call the wrappers of [`crate::sys`] (or
    /// their demo's own `sys.rs`), which build `desc` from their typed arguments.
    pub fn call<T: Shown>(
        &self,
        desc: impl Display,
        f: impl FnOnce() -> nix::Result<T>,
    ) -> Result<T> {
        self.run(desc, false, f)
    }

    /// Like [`Narrator::call`], for a call that can block or that hands something to
    /// another process (`read`, `write`, `accept`, `sem_wait`, `kill`, ...): it prints
    /// `desc ...` *before* the call and `desc = result` after it. With two processes on
    /// one terminal, cause then comes before effect: the writer's `write(4, buf, 80) ...`
    /// is printed before its bytes can reach the reader, whose `read(3, ...) = 80` can only
    /// be printed after that; and a process that waits says so while it waits.
    pub fn call_blocking<T: Shown>(
        &self,
        desc: impl Display,
        f: impl FnOnce() -> nix::Result<T>,
    ) -> Result<T> {
        self.run(desc, true, f)
    }

    #[inline]
    fn run<T: Shown>(
        &self,
        desc: impl Display,
        blocks: bool,
        f: impl FnOnce() -> nix::Result<T>,
    ) -> Result<T> {
        // Silent, nothing is printed and --step does not stop (see `step`): the call
        // alone, with no line made. The bench makes millions of calls this way, so this
        // part is inlined into the caller, and the narrating part is not.
        if self.is_silent() {
            return f().map_err(|errno| Error::sys(desc.to_string(), errno));
        }
        self.run_narrated(desc, blocks, f)
    }

    /// [`Narrator::run`] for a narrator that prints.
    #[inline(never)]
    fn run_narrated<T: Shown>(
        &self,
        desc: impl Display,
        blocks: bool,
        f: impl FnOnce() -> nix::Result<T>,
    ) -> Result<T> {
        let stepped = self.step(&desc);
        let silent = self.is_silent();
        if blocks && !silent && !stepped {
            // Under --step the prompt line already showed the call before it ran.
            self.print(format_args!("{desc} ..."));
        }
        match f() {
            Ok(value) => {
                if !silent {
                    self.print(format_args!("{desc} = {}", value.shown()));
                }
                Ok(value)
            }
            Err(errno) => {
                if !silent {
                    self.print(format_args!("{desc} = -1 {}", errno_name(errno)));
                }
                Err(Error::sys(desc.to_string(), errno))
            }
        }
    }

    /// Narrates the first few iterations of a loop over `items` and then goes quiet,
    /// saying once what it leaves out (`rest`, printed when the first silent iteration
    /// starts); `--all` narrates every iteration. Narration comes back when the loop ends,
    /// however it ends: the iterator restores it when it is dropped, an early `?` or
    /// `break` included.
    ///
    /// ```ignore
    /// for seq in n.first_few(0..count, "the remaining messages, without narration") {
    ///     sys::write(n, &fd, &frame)?;
    /// }
    /// ```
    pub fn first_few<I: IntoIterator>(
        &self,
        items: I,
        rest: impl Display,
    ) -> FirstFew<I::IntoIter> {
        FirstFew {
            items: items.into_iter(),
            n: self.clone(),
            rest: rest.to_string(),
            seen: 0,
            muted_here: false,
            next_at: None,
        }
    }

    /// Under `--step` (and not silent): shows the next call and waits for a line on
    /// standard input. [`Narrator::call`] does this by itself; call it directly only
    /// before a call that cannot go through `call`, such as `fork()`.
    /// Returns whether it showed the call (and so waited).
    ///
    /// The prompt is printed and answered during this process's turn at the terminal, after
    /// what was typed ahead is discarded (see the module documentation).
    pub fn step(&self, desc: impl Display) -> bool {
        if self.is_silent() || !self.step.load(Ordering::Relaxed) {
            return false;
        }
        // After Ctrl-C the removals on the way out are narrated but not stepped: the
        // student asked to stop, and must not have to press Enter for each clean-up call.
        if crate::cleanup::interrupted() {
            return false;
        }
        let input = self.terminal.input();
        let terminal = is_terminal(input);
        let _turn = if terminal { Turn::take(input) } else { None };
        if terminal {
            // An Enter typed while this process was busy or blocked is not an answer to
            // the prompt below, which was not on the screen yet: discard it.
            // SAFETY: tcflush takes an open descriptor (borrowed) and a constant.
            unsafe { libc::tcflush(input.as_raw_fd(), libc::TCIFLUSH) };
        }
        // On a terminal that echoes, the typed Enter ends the prompt's line; otherwise
        // (a pipe, a file) the prompt ends its own line.
        let echoed = terminal && echoes(input) && is_terminal(self.terminal.output());
        self.write_line(
            format_args!("next: {desc}  [Enter]"),
            if echoed { "" } else { "\n" },
        );
        // Read byte by byte with read(2) rather than through Rust's buffered stdin: after
        // fork() two processes may share this input, and a buffer could swallow a line
        // meant for the other one.
        let mut byte = [0u8; 1];
        loop {
            match unistd::read(input, &mut byte) {
                Ok(1) if byte[0] != b'\n' => continue,
                Ok(1) => return true,
                Err(Errno::EINTR) => continue,
                // End of input (Ctrl-D, or no terminal at all): stop waiting from now on.
                _ => {
                    self.step.store(false, Ordering::Relaxed);
                    if echoed {
                        // Ctrl-D echoes nothing: end the prompt's line here.
                        self.write_raw(b"\n");
                    }
                    self.print(format_args!(
                        "{}",
                        crate::tr!("standard input ended: --step stops waiting")
                    ));
                    return true;
                }
            }
        }
    }
}

/// How many iterations of a loop are narrated before it goes quiet (without `--all`).
pub const FIRST_FEW: u64 = 3;

/// The iterator of [`Narrator::first_few`].
#[derive(Debug)]
pub struct FirstFew<I> {
    items: I,
    n: Narrator,
    rest: String,
    seen: u64,
    /// Whether this loop muted the narrator (and so must unmute it): a loop inside an
    /// already quiet loop leaves the outer loop's silence alone.
    muted_here: bool,
    /// Under `--rate`: when the next iteration may start.
    next_at: Option<Instant>,
}

impl<I: Iterator> Iterator for FirstFew<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.items.next()?;
        self.pace();
        if self.seen == FIRST_FEW && !self.n.all && !self.n.is_silent() {
            self.n.mute(format_args!("... {}", self.rest));
            self.muted_here = true;
        }
        self.seen += 1;
        Some(item)
    }
}

impl<I> FirstFew<I> {
    /// Under `--rate`: waits until this iteration's time comes. The schedule is one
    /// interval after the previous iteration started, or after now if that iteration
    /// took longer (it blocked on a full buffer): a producer that was held up does not
    /// then rush to catch up, which would hide from the class what it just saw.
    fn pace(&mut self) {
        let Some(interval) = self.n.interval else {
            return;
        };
        let now = Instant::now();
        if let Some(at) = self.next_at {
            if at > now {
                // Pacing for people to watch, not ordering: nothing waits for this sleep.
                std::thread::sleep(at - now);
            }
        }
        self.next_at = Some(Instant::now().max(self.next_at.unwrap_or(now)) + interval);
    }
}

impl<I> Drop for FirstFew<I> {
    fn drop(&mut self) {
        if self.muted_here {
            self.n.unmute();
        }
    }
}

/// Prints a result line such as the summary on standard output. Unlike `println!`, a
/// closed standard output (`pipe-demo | head -1`) is an error to report, not a panic.
pub fn print_summary(line: impl Display) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| {
            Error::sys(
                "write(1, summary)",
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
            .hint(crate::tr!(
                "standard output was closed early (for example by `| head`)"
            ))
        })
}

/// How a system call's result is printed after ` = `, the way `strace` prints it.
pub trait Shown {
    /// The result as text: a number, or `[3, 4]` for the two ends of a pipe.
    fn shown(&self) -> String;
}

impl Shown for () {
    fn shown(&self) -> String {
        "0".into()
    }
}

impl Shown for usize {
    fn shown(&self) -> String {
        self.to_string()
    }
}

impl Shown for i32 {
    fn shown(&self) -> String {
        self.to_string()
    }
}

impl Shown for Pid {
    fn shown(&self) -> String {
        self.to_string()
    }
}

impl Shown for OwnedFd {
    fn shown(&self) -> String {
        self.as_raw_fd().to_string()
    }
}

impl Shown for nix::mqueue::MqdT {
    /// A POSIX message queue descriptor is a file descriptor on Linux.
    fn shown(&self) -> String {
        self.as_fd().as_raw_fd().to_string()
    }
}

impl Shown for (OwnedFd, OwnedFd) {
    fn shown(&self) -> String {
        format!("[{}, {}]", self.0.as_raw_fd(), self.1.as_raw_fd())
    }
}

impl Shown for nix::sys::wait::WaitStatus {
    fn shown(&self) -> String {
        use nix::sys::wait::WaitStatus::*;
        match *self {
            Exited(pid, code) => format!("{pid} (exited with status {code})"),
            Signaled(pid, sig, _) => format!("{pid} (killed by {sig})"),
            other => format!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Narrator {
        Narrator::silent("test")
    }

    #[test]
    fn a_failed_call_becomes_an_error_naming_it() {
        let err = quiet()
            .call("close(-1)", || Err::<(), _>(Errno::EBADF))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "close(-1) failed: EBADF (Bad file descriptor)"
        );
    }

    #[test]
    fn a_successful_call_returns_its_value() {
        assert_eq!(quiet().call("getpid()", || Ok(7usize)), Ok(7));
    }

    #[test]
    fn mute_silences_the_narrator_and_its_clones() {
        let n = Narrator::new("test", NarrationArgs::default());
        let clone = n.clone();
        assert!(!clone.is_silent());
        n.mute("enough");
        assert!(clone.is_silent());
        assert!(!n.for_role("child").is_silent());
    }

    #[test]
    fn a_loop_goes_quiet_after_the_first_few_and_speaks_again_however_it_ends() {
        let n = Narrator::new("test", NarrationArgs::default());
        let seen: Vec<bool> = n
            .first_few(0..5, "the rest")
            .map(|_| n.is_silent())
            .collect();
        assert_eq!(seen, [false, false, false, true, true]);
        assert!(!n.is_silent());
        // An early return out of the loop (a `?`) drops the iterator: narration is back.
        let failing = || -> Result<()> {
            for i in n.first_few(0..10, "the rest") {
                if i == 6 {
                    return Err(Error::usage("stop"));
                }
            }
            Ok(())
        };
        assert!(failing().is_err());
        assert!(!n.is_silent());
        // A quiet inner loop inside a quiet outer loop leaves the outer silence alone.
        let mut inner_silent_after = Vec::new();
        for _ in n.first_few(0..5, "outer rest") {
            for _ in n.first_few(0..5, "inner rest") {}
            inner_silent_after.push(n.is_silent());
        }
        assert_eq!(inner_silent_after, [false, false, false, true, true]);
        assert!(!n.is_silent());
    }

    #[test]
    fn with_all_every_iteration_is_narrated() {
        let args = NarrationArgs {
            all: true,
            ..NarrationArgs::default()
        };
        let n = Narrator::new("test", args);
        assert!(n.first_few(0..10, "the rest").all(|_| !n.is_silent()));
    }

    #[test]
    fn a_rate_is_a_number_of_iterations_a_second_within_range() {
        assert_eq!(rate("2"), Ok(2.0));
        assert_eq!(rate("0.5"), Ok(0.5));
        for bad in ["0", "-1", "0.1", "1001", "fast", "NaN", "inf"] {
            let err = rate(bad).unwrap_err();
            assert!(err.contains("not a rate"), "{bad}: {err}");
        }
    }

    #[test]
    fn with_a_rate_every_iteration_waits_its_turn_narrated_or_not() {
        // 100 a second: 8 iterations (most of them muted) take at least 7 intervals.
        let n = Narrator::new(
            "test",
            NarrationArgs {
                quiet: true,
                rate: Some(100.0),
                ..NarrationArgs::default()
            },
        );
        let started = Instant::now();
        assert_eq!(n.first_few(0..8, "the rest").count(), 8);
        assert!(
            started.elapsed() >= Duration::from_millis(70),
            "{:?}",
            started.elapsed()
        );
        // Without --rate, no iteration waits.
        let started = Instant::now();
        assert_eq!(quiet().first_few(0..1000, "the rest").count(), 1000);
        assert!(started.elapsed() < Duration::from_millis(70));
    }

    #[test]
    fn pipe_ends_are_shown_as_strace_shows_them() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let shown = (r, w).shown();
        assert!(shown.starts_with('[') && shown.contains(", "), "{shown}");
    }
}
