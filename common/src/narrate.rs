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
//! few and then [`Narrator::mute`]s itself, saying so.
//!
//! Narration is written to a copy of standard output made when the narrator is created
//! (and `--step` reads from a copy of standard input), both close-on-exec. So a child
//! that `dup2`s a pipe onto its fd 0 or 1, as a shell does for `ls | grep`, still
//! narrates to the terminal, and the programs it `exec`s never see the copies.
//!
//! This module prints; it does not decide what is worth printing. Each demo does.

use std::fmt::{self, Display};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
            muted: Arc::new(AtomicBool::new(false)),
            terminal: Arc::new(Terminal::copy()),
        };
        if n.step.load(Ordering::Relaxed) {
            n.say(format_args!(
                "--step: I wait for Enter before each system call (Ctrl-D stops waiting)"
            ));
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
            muted: Arc::new(AtomicBool::new(false)),
            terminal: self.terminal.clone(),
        }
    }

    /// The role this narrator speaks for (`producer`, `consumer`, ...).
    pub fn role(&self) -> &'static str {
        self.role
    }

    /// Whether narration is off, by `--quiet` or by [`Narrator::mute`].
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
        // One write per line: lines of two processes sharing a terminal do not mix.
        let line = format!("[{} {}] {}\n", self.role, self.pid, text);
        let stdout = std::io::stdout();
        // Whatever println! has buffered goes first, so lines keep their order.
        let _ = stdout.lock().flush();
        match &self.terminal.output {
            Some(fd) => {
                let mut rest = line.as_bytes();
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
                let _ = stdout.lock().write_all(line.as_bytes());
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

    fn run<T: Shown>(
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
        }
    }

    /// Under `--step` (and not silent): shows the next call and waits for a line on
    /// standard input. [`Narrator::call`] does this by itself; call it directly only
    /// before a call that cannot go through `call`, such as `fork()`.
    /// Returns whether it showed the call (and so waited).
    pub fn step(&self, desc: impl Display) -> bool {
        if self.is_silent() || !self.step.load(Ordering::Relaxed) {
            return false;
        }
        self.print(format_args!("next: {desc}  [Enter]"));
        // Read byte by byte with read(2) rather than through Rust's buffered stdin: after
        // fork() two processes may share this terminal, and a buffer could swallow a line
        // meant for the other one.
        let mut byte = [0u8; 1];
        loop {
            let read = match &self.terminal.input {
                Some(fd) => unistd::read(fd, &mut byte),
                None => unistd::read(std::io::stdin(), &mut byte),
            };
            match read {
                Ok(1) if byte[0] != b'\n' => continue,
                Ok(1) => return true,
                Err(Errno::EINTR) => continue,
                // End of input (Ctrl-D, or no terminal at all): stop waiting from now on.
                _ => {
                    self.step.store(false, Ordering::Relaxed);
                    self.print(format_args!("standard input ended: --step stops waiting"));
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
}

impl<I: Iterator> Iterator for FirstFew<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.items.next()?;
        if self.seen == FIRST_FEW && !self.n.all && !self.n.is_silent() {
            self.n.mute(format_args!("... {}", self.rest));
            self.muted_here = true;
        }
        self.seen += 1;
        Some(item)
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
            .hint("standard output was closed early (for example by `| head`)")
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
    fn pipe_ends_are_shown_as_strace_shows_them() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let shown = (r, w).shown();
        assert!(shown.starts_with('[') && shown.contains(", "), "{shown}");
    }
}
