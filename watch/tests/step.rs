//! `--step` on a real terminal (a pseudo-terminal this test opens), with the demos a class
//! would step through: the prompts of two processes take turns, an Enter typed while a
//! process is blocked does not answer a later prompt, and a step is one line.
//!
//! Ordering comes from the processes' own state, read from `/proc/PID/syscall`: the test
//! types the next Enter only when every process of the demo is asleep in a system call
//! (at a prompt, or blocked), never after a sleep.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a panic is a failed test

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use testkit::TIME_OUT;

fn demo(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(|d| d.parent()).unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// A demo running on a pseudo-terminal: the test holds the master side, the demo has
/// the slave side as standard input, output and error, as in a terminal window.
struct OnTerminal {
    child: Child,
    master: std::fs::File,
    /// Everything the demo printed so far, with the echo of what the test typed.
    screen: String,
}

impl OnTerminal {
    fn start(program: &str, args: &[&str]) -> OnTerminal {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two descriptors; the name, modes and size may be null.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty just returned both as new descriptors owned by nobody else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // Non-blocking reads of the master: the test drains what is there and moves on.
        nix::fcntl::fcntl(
            &master,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        OnTerminal {
            child,
            master: std::fs::File::from(master),
            screen: String::new(),
        }
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        loop {
            match self.master.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(got) => self.screen.push_str(&String::from_utf8_lossy(&buf[..got])),
            }
        }
    }

    fn type_text(&mut self, text: &[u8]) {
        nix::unistd::write(&self.master, text).unwrap();
    }

    /// The demo's processes: the one started and its descendants.
    fn pids(&self) -> Vec<i32> {
        let mut all = vec![self.child.id() as i32];
        let mut i = 0;
        while i < all.len() {
            let pid = all[i];
            if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
                all.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
            i += 1;
        }
        all
    }

    /// Prompts printed and not answered yet, given how many Enters were typed.
    fn outstanding(&self, typed: usize) -> usize {
        self.screen.matches("[Enter]").count().saturating_sub(typed)
    }

    /// Waits until every process is asleep in a system call (none is running) and
    /// `ready` holds for the screen, draining the terminal meanwhile.
    fn settle(&mut self, what: &str, ready: impl Fn(&OnTerminal) -> bool) {
        let deadline = Instant::now() + TIME_OUT;
        loop {
            self.drain();
            let asleep = self.pids().iter().all(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/syscall"))
                    .map_or(true, |s| !s.starts_with("running"))
            });
            if asleep && ready(self) {
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("never settled with {what}; the screen:\n{}", self.screen);
            }
            std::thread::yield_now();
        }
    }

    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        self.drain();
        (status, std::mem::take(&mut self.screen))
    }
}

impl Drop for OnTerminal {
    /// A failed test leaves no demo behind waiting at a prompt: the processes it started
    /// are killed (the descendants first, then the one it started).
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            for pid in self.pids().into_iter().rev() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = self.child.wait();
        }
    }
}

#[test]
fn two_processes_on_one_terminal_take_turns_and_a_step_is_one_line() {
    let mut t = OnTerminal::start(&demo("pipe-demo"), &["--step", "--count", "2"]);
    let mut typed = 0;
    while t.child.try_wait().unwrap().is_none() {
        t.settle("a prompt on the screen, or the end", |t| {
            t.outstanding(typed) >= 1 || t.screen.contains("summary:")
        });
        // Never two prompts waiting at once: the other process waits for its turn before
        // it prints its prompt, so the prompt on the screen is the one Enter answers.
        assert!(
            t.outstanding(typed) <= 1,
            "two prompts at once:\n{}",
            t.screen
        );
        if t.outstanding(typed) == 1 {
            t.type_text(b"\n");
            typed += 1;
        } else {
            break;
        }
    }
    let (status, screen) = t.finish();
    assert!(status.success(), "{screen}");
    assert!(screen.contains("summary: received=2 ok=2"), "{screen}");
    assert!(
        screen.contains("[consumer "),
        "both processes prompted:\n{screen}"
    );
    // The echoed Enter ends the prompt's line: no empty line after a prompt.
    let lines: Vec<&str> = screen.split("\r\n").collect();
    for pair in lines.windows(2) {
        if pair[0].ends_with("[Enter]") {
            assert!(
                !pair[1].is_empty(),
                "an empty line after a prompt:\n{screen}"
            );
        }
    }
}

#[test]
fn an_enter_typed_while_blocked_does_not_answer_the_next_prompt() {
    let dir = testkit::Scratch::new("step-typeahead");
    let path = dir.arg("fifo");
    let mut t = OnTerminal::start(&demo("fifo-demo"), &["consumer", "--path", &path, "--step"]);
    let mut typed = 0;
    // Answer every prompt up to and including open(O_RDONLY)'s, which then blocks
    // until a writer comes.
    loop {
        t.settle("a prompt", |t| t.outstanding(typed) >= 1);
        let last = t
            .screen
            .rsplit("next: ")
            .next()
            .unwrap_or_default()
            .to_string();
        t.type_text(b"\n");
        typed += 1;
        if last.starts_with("open(") {
            break;
        }
    }
    let pid = t.child.id() as i32;
    t.settle("blocked in open", |_| {
        std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .is_ok_and(|s| s.split_whitespace().next() == Some(&libc::SYS_openat.to_string()))
    });
    // Blocked in open: this Enter is typed ahead, for no prompt on the screen.
    t.type_text(b"\n");
    let producer = Command::new(demo("fifo-demo"))
        .args(["producer", "--path", &path, "--count", "3", "--quiet"])
        .output()
        .unwrap();
    assert!(producer.status.success());
    // The consumer's open returned; it prompts for its first read and waits for Enter.
    t.settle("the first read's prompt", |t| {
        t.screen.contains("next: read(")
    });
    assert_eq!(
        t.screen.matches("next: read(").count(),
        1,
        "the Enter typed while blocked answered a later prompt:\n{}",
        t.screen
    );
    // Ctrl-D: end of input, --step stops waiting, and the consumer reads everything.
    t.type_text(b"\x04");
    let (status, screen) = t.finish();
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains("summary: received=3 ok=3 corrupt=0 out_of_order=0 missing=0"),
        "{screen}"
    );
    dir.assert_empty();
}
