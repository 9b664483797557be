//! Test support: run a demo binary as a real process and read what it printed.
//!
//! Every integration test of every demo runs the built binary (`CARGO_BIN_EXE_<name>`)
//! as a child process, feeds its standard input if asked, and waits for it with a
//! time-out: a watchdog thread kills a process that hangs, and the test then fails with
//! a message that says so. No test sleeps to order events; ordering comes from the
//! processes themselves (a pipe, a readiness line) and the time-out is only a safety net.
//!
//! Every process starts with the locale pinned: `LANGUAGE`, `LC_ALL`, `LC_MESSAGES` and
//! `LANG` are removed from its environment unless the test set them on the command
//! itself ([`Process::spawn`] with `Command::env`, or [`lang::run_in`]). The programs
//! choose Korean from a locale that begins with `ko` (`common::i18n::from_env`), so
//! without this an English assertion would fail on a Korean machine.
//!
//! Not a mock of anything: it starts programs and reports what they did.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test support: a panic is a failed test

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub mod lang;

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
/// waits at most [`TIME_OUT`] for it to finish. The locale is pinned (see the module
/// documentation): the program speaks English unless told otherwise.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S], input: &[u8]) -> Run {
    let mut p = Process::start(program, args);
    p.send(input);
    p.close_stdin();
    p.finish()
}

/// Removes from `command`'s environment each locale variable
/// ([`lang::LOCALE_VARIABLES`]) the test did not set on it, so that the machine's own
/// locale cannot choose the program's language.
fn pin_locale(command: &mut Command) {
    let set: Vec<String> = command
        .get_envs()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    for name in lang::LOCALE_VARIABLES {
        if !set.iter().any(|s| s == name) {
            command.env_remove(name);
        }
    }
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
    /// The thread collecting standard error; taken by [`Process::finish_within`].
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Process {
    /// A test that fails half-way drops its processes: one still running is killed and
    /// reaped, so that no demo of a failed test lives on (holding a queue, or waiting
    /// forever for a peer).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Process {
    /// Starts `program` with `args`; its standard input stays open until [`Process::close_stdin`].
    pub fn start<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Process {
        Process::spawn(Command::new(program).args(args))
    }

    /// Starts a command the test has prepared (another user, its own process group, a
    /// locale, ...); its standard streams are pipes to the test, as with
    /// [`Process::start`], and the locale variables it does not set are removed.
    pub fn spawn(command: &mut Command) -> Process {
        Process::spawn_closing(command, None)
    }

    fn spawn_closing(command: &mut Command, closed: Option<Closed>) -> Process {
        pin_locale(command);
        command.stdin(Stdio::piped());
        command.stdout(match closed {
            Some(Closed::Stdout) => closed_pipe(),
            _ => Stdio::piped(),
        });
        command.stderr(match closed {
            Some(Closed::Stderr) => closed_pipe(),
            _ => Stdio::piped(),
        });
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let (send, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if send.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        let stderr = child.stderr.take();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut stderr) = stderr {
                let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            }
            text
        });
        let stdin = child.stdin.take();
        Process {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
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

    /// Waits until the process has printed a line containing each of `texts`, in any
    /// order (two processes sharing one output, a parent and its child, print in an
    /// order nobody chooses), and returns those lines in the order of `texts`.
    pub fn wait_for_all(&mut self, texts: &[&str]) -> Vec<String> {
        let mut found: Vec<Option<String>> = vec![None; texts.len()];
        let deadline = std::time::Instant::now() + TIME_OUT;
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    for (text, slot) in texts.iter().zip(&mut found) {
                        if slot.is_none() && line.contains(text) {
                            *slot = Some(line.clone());
                        }
                    }
                    self.seen.push(line);
                }
                Err(why) => {
                    let _ = kill(self.pid(), Signal::SIGKILL);
                    panic!(
                        "no lines containing all of {texts:?} ({why:?}); stdout so far:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
        found.into_iter().flatten().collect()
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
    pub fn finish(self) -> Run {
        self.finish_within(TIME_OUT)
    }

    /// As [`Process::finish`], but the process must end within `limit`: for a test whose
    /// point is that something happens soon (a dead peer noticed within seconds).
    pub fn finish_within(mut self, limit: Duration) -> Run {
        let stderr = self.stderr.take();
        let (done, finished) = mpsc::channel::<()>();
        let pid = self.pid();
        let watchdog = std::thread::spawn(move || {
            let hung = finished.recv_timeout(limit).is_err();
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
            stderr: stderr.and_then(|t| t.join().ok()).unwrap_or_default(),
        };
        assert!(
            !hung,
            "the process did not finish within {limit:?} and was killed:\n{run}"
        );
        run
    }
}

/// Which standard stream of a process is a pipe that nobody reads any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Standard output, as in `demo | head -1` after `head` has exited.
    Stdout,
    /// Standard error, as in `demo 2>&1 | head -1`.
    Stderr,
}

/// A pipe's write end whose read end is already closed: a write to it fails with EPIPE
/// (Rust programs ignore SIGPIPE). The pipe is close-on-exec, so that no process another
/// test starts meanwhile can inherit the read end and keep it open.
fn closed_pipe() -> Stdio {
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2(O_CLOEXEC)");
    drop(read_end);
    Stdio::from(write_end)
}

/// Runs `program` with `args`, one of its output streams a closed pipe, and waits at most
/// [`TIME_OUT`]. What it wrote to the other stream is in the [`Run`].
pub fn run_closed<S: AsRef<OsStr>>(program: &str, args: &[S], closed: Closed) -> Run {
    let mut p = Process::spawn_closing(Command::new(program).args(args), Some(closed));
    p.close_stdin();
    p.finish()
}

/// The number right after `marker` in `line` (a pid in `fork() = 4243`, in `my pid is
/// 4242;`); fails the test if there is none.
pub fn number_after(line: &str, marker: &str) -> i32 {
    line.split_once(marker)
        .map(|(_, rest)| {
            rest.chars()
                .skip_while(|c| *c == ' ')
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no number after {marker:?} in {line:?}"))
}

/// Waits until process `pid` has ended (it no longer exists, or is a zombie nobody has
/// reaped yet), at most `limit`. Returns whether it ended. It looks at `/proc` every 10
/// milliseconds: the test waits *for* an event, with a deadline, rather than sleeping to
/// let it happen.
pub fn wait_until_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !common::process::is_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A Unix `SOCK_SEQPACKET` connection to the server listening at `path`, on which the
/// test will send nothing: the silent client a server must not wait for forever.
pub fn silent_connection(path: &std::path::Path) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    let addr = UnixAddr::new(path).expect("a socket path");
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)
        .unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()));
    fd
}

/// Whether the peer of the socket `fd` has closed its end: waits at most `limit` (a
/// safety net, not an ordering) for `fd` to become readable, then reads without waiting;
/// end-of-file (0 bytes) means closed. Nothing arriving, or data, is `false`.
pub fn closed_by_peer(fd: &std::os::fd::OwnedFd, limit: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
    if poll(&mut fds, ms).expect("poll") == 0 {
        return false;
    }
    let mut buf = [0u8; 64];
    let got = nix::sys::socket::recv(
        std::os::fd::AsRawFd::as_raw_fd(fd),
        &mut buf,
        nix::sys::socket::MsgFlags::MSG_DONTWAIT,
    );
    got == Ok(0)
}

/// The uid of the second user the tests run processes as: `nobody`.
pub const NOBODY: u32 = 65534;

/// A command that runs `program` as user and group 65534 (`nobody`) with no
/// supplementary groups, through `setpriv(1)`; `None`, after printing why, where this
/// machine cannot do that (not root, or no setpriv), so that the test can skip itself.
pub fn as_nobody(program: &str) -> Option<Command> {
    let prefix = ["--reuid", "65534", "--regid", "65534", "--clear-groups"];
    let works = Command::new("setpriv")
        .args(prefix)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        println!(
            "skipped: this machine cannot run a process as uid 65534 with setpriv (not root?)"
        );
        return None;
    }
    let mut command = Command::new("setpriv");
    command.args(prefix).arg(program);
    Some(command)
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

    /// A folder of another user's (nobody, uid 65534) inside this one, open to all
    /// (0777), and a link `link` to it: a path through `link` lands in the other user's
    /// folder. Returns the link's path, or `None` where this process may not give a
    /// folder away (`chown` needs root, as CI runs).
    pub fn link_to_another_users_folder(&self) -> Option<std::path::PathBuf> {
        use std::os::unix::fs::{PermissionsExt, chown, symlink};
        let theirs = self.path("theirs");
        std::fs::create_dir(&theirs).expect("create the other user's folder");
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o777))
            .expect("chmod 777");
        chown(&theirs, Some(65534), Some(65534)).ok()?;
        symlink(&theirs, self.path("link")).expect("symlink");
        Some(self.path("link"))
    }

    /// What is in the other user's folder of [`Scratch::link_to_another_users_folder`].
    pub fn in_another_users_folder(&self) -> usize {
        std::fs::read_dir(self.path("theirs")).map_or(0, |d| d.count())
    }

    /// Runs `program` with `args(path)`, where `path` is `name` in another user's folder,
    /// reached through a link: the demo must stop with exit 1 and `common::owner`'s error,
    /// and make nothing there. Returns early where the folder cannot be given away
    /// (without root).
    pub fn assert_refuses_another_users_folder(
        &self,
        program: &str,
        name: &str,
        args: impl Fn(&str) -> Vec<String>,
    ) {
        let Some(link) = self.link_to_another_users_folder() else {
            return;
        };
        let path = link.join(name).to_string_lossy().into_owned();
        let r = run(program, &args(&path), b"");
        r.assert_code(1);
        assert!(r.stderr.contains("the folder belongs to uid 65534"), "{r}");
        assert_eq!(self.in_another_users_folder(), 0, "{r}");
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

/// As [`lang::same_in_korean`], for a lesson that ends with exit code `code` (an error's
/// problem and hint are then on standard error) or whose call lines carry what differs
/// from run to run: `same` rewrites each (a queue's identifier, say) before they are
/// compared. Returns the Korean run.
pub fn same_in_korean_as(
    program: &str,
    args: &[&str],
    code: i32,
    same: impl Fn(&str) -> String,
) -> Run {
    let (en, ko) = (lang::english(program, args), lang::korean(program, args));
    en.assert_code(code);
    ko.assert_code(code);
    if code == 0 {
        assert_eq!(ko.summary(), en.summary(), "{ko}");
    }
    let calls = |r: &Run| -> Vec<String> {
        let mut all: Vec<String> = lang::calls(r).iter().map(|c| same(c)).collect();
        all.sort();
        all
    };
    assert_eq!(
        calls(&ko),
        calls(&en),
        "the system calls differ:\n{en}\n{ko}"
    );
    let said = |r: &Run| format!("{}{}", r.stdout, r.stderr);
    assert!(
        !lang::has_korean(&said(&en)),
        "English run with Korean in it: {en}"
    );
    assert!(
        lang::has_korean(&said(&ko)),
        "Korean run without Korean: {ko}"
    );
    ko
}

/// The pid in the `[role PID]` tag of the first line `role` narrated; fails the test if
/// there is none.
pub fn pid_of(r: &Run, role: &str) -> String {
    let tag = format!("[{role} ");
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&tag)?.split(']').next())
        .unwrap_or_else(|| panic!("no {tag}...] line in:\n{r}"))
        .to_string()
}

/// What the processes of role `role` narrated, in their order, without the tags.
pub fn lines_of<'a>(r: &'a Run, role: &str) -> Vec<&'a str> {
    let tag = format!("[{role} ");
    r.stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&tag)?.split_once("] ").map(|(_, rest)| rest))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The locale variables `command` sets (`Some`) or removes (`None`).
    fn locale_of(command: &Command) -> Vec<(String, Option<String>)> {
        let mut seen: Vec<(String, Option<String>)> = command
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .filter(|(k, _)| lang::LOCALE_VARIABLES.contains(&k.as_str()))
            .collect();
        seen.sort();
        seen
    }

    #[test]
    fn the_machines_locale_is_removed_and_what_the_test_sets_is_kept() {
        // Nothing set: all four are removed, so a Korean machine's LANG cannot reach the
        // program.
        let mut plain = Command::new("env");
        pin_locale(&mut plain);
        let removed: Vec<(String, Option<String>)> = {
            let mut all: Vec<_> = lang::LOCALE_VARIABLES
                .iter()
                .map(|v| (v.to_string(), None))
                .collect();
            all.sort();
            all
        };
        assert_eq!(locale_of(&plain), removed);
        // LANG set by the test: kept, the other three removed.
        let mut korean = Command::new("env");
        korean.env("LANG", "ko_KR.UTF-8");
        pin_locale(&mut korean);
        let kept = locale_of(&korean);
        assert!(
            kept.contains(&("LANG".into(), Some("ko_KR.UTF-8".into()))),
            "{kept:?}"
        );
        assert_eq!(
            kept.iter().filter(|(_, v)| v.is_none()).count(),
            3,
            "{kept:?}"
        );
    }

    #[test]
    fn a_started_program_sees_only_the_locale_the_test_gives_it() {
        // Through Process::spawn, as every demo is started: only LANG, which the test set.
        let r = Process::spawn(Command::new("env").env("LANG", "ko_KR.UTF-8")).finish();
        r.assert_code(0);
        let seen: Vec<&str> = r
            .stdout
            .lines()
            .filter(|l| {
                lang::LOCALE_VARIABLES
                    .iter()
                    .any(|v| l.starts_with(&format!("{v}=")))
            })
            .collect();
        assert_eq!(seen, ["LANG=ko_KR.UTF-8"]);
    }
}
