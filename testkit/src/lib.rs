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

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
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

    /// The number after `name=` in the summary line; panics (fails the test) if there is
    /// none.
    pub fn field(&self, name: &str) -> u64 {
        let summary = self.summary();
        summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {summary:?}"))
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

/// Runs `program` with `args` and `input` on standard input (then end-of-file), and
/// waits at most [`TIME_OUT`] for it to finish.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S], input: &[u8]) -> Run {
    let mut p = Process::start(program, args);
    p.send(input);
    p.close_stdin();
    p.finish()
}

/// The summary line a perfect run of `count` messages of `size` bytes ends with.
pub fn perfect(count: u64, size: u64) -> String {
    format!(
        "summary: received={count} ok={count} corrupt=0 out_of_order=0 missing=0 bytes={}",
        count * size
    )
}

/// A demo process that keeps running while the test talks to it: start it, wait for a
/// line it prints (a readiness line such as "waiting for a writer"), signal it, finish.
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Process {
    /// Starts `program` with `args`; its standard input stays open until [`Process::close_stdin`].
    pub fn start<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Process {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let stdout = child.stdout.take().expect("stdout was piped");
        let mut stderr = child.stderr.take().expect("stderr was piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let stdin = child.stdin.take();
        Process {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The process id, to signal it.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits until the process prints a line containing `text` and returns that line;
    /// fails the test if it ends or [`TIME_OUT`] passes first.
    pub fn wait_for_line(&mut self, text: &str) -> String {
        let deadline = std::time::Instant::now() + TIME_OUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(why) => {
                    let _ = kill(self.pid(), Signal::SIGKILL);
                    panic!(
                        "no line containing {text:?} ({why:?}); stdout so far:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// Writes `bytes` to the process's standard input.
    pub fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin
            .write_all(bytes)
            .expect("write to the process's stdin");
    }

    /// Closes the process's standard input (end-of-file, as Ctrl-D).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("kill");
    }

    /// Waits for the end (killing it after [`TIME_OUT`]) and returns everything it printed.
    /// Standard input stays open until the process has ended: a test that wants the
    /// process to see end-of-file calls [`Process::close_stdin`] first.
    pub fn finish(mut self) -> Run {
        let (done, finished) = mpsc::channel::<()>();
        let pid = self.pid();
        let watchdog = std::thread::spawn(move || {
            let hung = finished.recv_timeout(TIME_OUT).is_err();
            if hung {
                let _ = kill(pid, Signal::SIGKILL);
            }
            hung
        });
        let status = self.child.wait().expect("wait for the process");
        let _ = done.send(());
        self.stdin = None;
        let hung = watchdog.join().expect("watchdog thread");
        self.seen.extend(self.lines.iter());
        let run = Run {
            code: status.code(),
            stdout: self.seen.iter().map(|l| format!("{l}\n")).collect(),
            stderr: self.stderr.join().unwrap_or_default(),
        };
        assert!(
            !hung,
            "the process did not finish within {TIME_OUT:?} and was killed:\n{run}"
        );
        run
    }
}

/// A private folder for one test's paths (FIFOs, sockets, files), so that tests running
/// in parallel never share a name. Removed, with anything left in it, when dropped;
/// [`Scratch::leftovers`] lets a test assert first that the demo removed its own files.
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    /// Makes `ipc-demos-test-PID-NAME` (mode 0700) in the temporary folder.
    pub fn new(test: &str) -> Scratch {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("ipc-demos-test-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create the scratch folder");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod 700");
        Scratch(dir)
    }

    /// A path inside the folder.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }

    /// The same, as a string for a command line.
    pub fn arg(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    /// Fails the test if the demo left anything in the folder.
    pub fn assert_empty(&self) {
        let left = self.leftovers();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    /// The names of whatever is in the folder now.
    pub fn leftovers(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read the scratch folder")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
