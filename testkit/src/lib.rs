//! Test support: run a demo binary as a real process and read what it printed.
//!
//! Every integration test of every demo runs the built binary (`CARGO_BIN_EXE_<name>`)
//! as a child process, feeds its standard input if asked, and waits for it with a
//! time-out: a watchdog thread kills a process that hangs, and the test then fails with
//! a message that says so. No test sleeps to order events; ordering comes from the
//! processes themselves (a pipe, a readiness line) and the time-out is only a safety net.
//!
//! Not a mock of anything: it starts programs and reports what they did.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test support: a panic is a failed test

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long any one demo run may take before the test calls it hung.
pub const TIME_OUT: Duration = Duration::from_secs(60);

/// What a finished run printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    /// The exit code; `None` if a signal ended it.
    pub code: Option<i32>,
    /// Standard output, as text.
    pub stdout: String,
    /// Standard error, as text.
    pub stderr: String,
}

impl Run {
    /// The one line that starts with `summary:`; panics (fails the test) if there is not
    /// exactly one.
    pub fn summary(&self) -> &str {
        let lines: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| l.starts_with("summary:"))
            .collect();
        assert_eq!(lines.len(), 1, "expected one summary line in:\n{self}");
        lines[0]
    }

    /// Panics with the whole output unless the exit code is `code`.
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "unexpected exit status:\n{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `program` with `args` and `input` on standard input, waits at most [`TIME_OUT`].
pub fn run(program: &str, args: &[&str], input: &[u8]) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let pid = Pid::from_raw(child.id() as i32);
    // Closing stdin after writing gives the program end-of-file, as a terminal's Ctrl-D.
    let mut stdin = child.stdin.take().expect("stdin was piped");
    stdin
        .write_all(input)
        .expect("write to the program's stdin");
    drop(stdin);

    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(TIME_OUT).is_err() {
            // Still running after the time-out: kill it so wait_with_output returns.
            let _ = kill(pid, Signal::SIGKILL);
            return true;
        }
        false
    });
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for the program");
    let _ = done.send(());
    let hung = watchdog.join().expect("watchdog thread");
    let run = Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(
        !hung,
        "{program} {args:?} did not finish within {TIME_OUT:?} and was killed:\n{run}"
    );
    run
}

/// The summary line a perfect run of `count` messages of `size` bytes ends with.
pub fn perfect(count: u64, size: u64) -> String {
    format!(
        "summary: received={count} ok={count} corrupt=0 out_of_order=0 missing=0 bytes={}",
        count * size
    )
}
