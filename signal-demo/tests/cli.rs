//! signal-demo as a student runs it: the built binary, real processes, real signals.
//!
//! Ordering comes from the processes themselves (the receiver's "ready" line, the
//! acknowledgements); the only time-outs are safety nets, and the one deliberate time-out
//! (a peer that never answers) is asserted as such.

use std::os::unix::process::CommandExt;

use nix::sys::signal::Signal;
use testkit::{Process, run};

const BIN: &str = env!("CARGO_BIN_EXE_signal-demo");

fn signal_demo(args: &[&str]) -> testkit::Run {
    run(BIN, args, b"")
}

#[test]
fn the_default_run_acknowledges_every_signal() {
    let r = signal_demo(&[]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: received=3");
    assert!(
        r.stdout
            .contains("sigaction(SIGUSR1, {on_signal, SA_SIGINFO|SA_RESTART}, NULL) = 0"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("sigtimedwait({SIGUSR1}, &info, 5s) = SIGUSR1 (from pid"),
        "{r}"
    );
}

#[test]
fn ten_thousand_acknowledged_signals_all_arrive() {
    let r = signal_demo(&["--quiet", "--count", "10000"]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: received=10000");
}

#[test]
fn a_receiver_and_a_sender_in_two_processes() {
    let mut receiver = Process::start(BIN, &["receiver"]);
    let ready = receiver.wait_for_line("ready: my pid is");
    let pid = ready
        .split("my pid is ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .expect("pid in the ready line");
    let sender = signal_demo(&["sender", "--pid", pid, "--count", "500", "--quiet"]);
    sender.assert_code(0);
    assert_eq!(sender.summary(), "summary: sent=500 acknowledged=500");
    let receiver = receiver.finish();
    receiver.assert_code(0);
    assert_eq!(receiver.summary(), "summary: received=500");
}

#[test]
fn blocked_standard_signals_coalesce() {
    let r = signal_demo(&["coalesce", "--count", "1000"]);
    r.assert_code(0);
    let (sent, received) = (r.field("sent"), r.field("received"));
    assert_eq!(sent, 1000);
    assert!(
        (1..=sent).contains(&received),
        "received {received} of {sent}"
    );
    assert!(r.stdout.contains("sigpending() = {SIGUSR1}"), "{r}");
}

#[test]
fn queued_real_time_signals_all_arrive_in_order_with_their_values() {
    let r = signal_demo(&["queue", "--count", "20000", "--quiet"]);
    r.assert_code(0);
    assert_eq!(
        r.summary(),
        "summary: sent=20000 received=20000 in_order=20000"
    );
}

#[test]
fn queue_shows_the_value_each_signal_carries() {
    let r = signal_demo(&["queue", "--count", "3"]);
    r.assert_code(0);
    for value in 0..3 {
        let line = r
            .stdout
            .lines()
            .filter(|l| l.contains("= SIGRTMIN (from pid "))
            .nth(value)
            .expect("a sigwaitinfo line");
        assert!(line.ends_with(&format!("value {value})")), "{line}");
    }
}

fn graceful_stopped_by(signal: Signal) {
    let mut worker = Process::start(BIN, &["graceful"]);
    worker.wait_for_line("working; stop me with");
    worker.signal(signal);
    let r = worker.finish();
    r.assert_code(130);
    assert!(r.summary().ends_with("stopped_by=signal"), "{r}");
    assert!(r.stdout.contains("finishing cleanly"), "{r}");
}

#[test]
fn graceful_stops_cleanly_on_sigint() {
    graceful_stopped_by(Signal::SIGINT);
}

#[test]
fn graceful_stops_cleanly_on_sigterm() {
    graceful_stopped_by(Signal::SIGTERM);
}

#[test]
fn sigkill_cannot_be_caught() {
    let mut worker = Process::start(BIN, &["graceful"]);
    worker.wait_for_line("working; stop me with");
    worker.signal(Signal::SIGKILL);
    let r = worker.finish();
    assert_eq!(
        r.code, None,
        "SIGKILL must end it without an exit status: {r}"
    );
    assert!(!r.stdout.contains("finishing cleanly"), "{r}");
}

#[test]
fn graceful_also_ends_by_itself() {
    let r = signal_demo(&["graceful", "--steps", "2"]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: steps=2 stopped_by=none");
}

#[test]
fn an_interrupted_receiver_exits_130() {
    let mut receiver = Process::start(BIN, &["receiver"]);
    receiver.wait_for_line("ready: my pid is");
    receiver.signal(Signal::SIGINT);
    let r = receiver.finish();
    r.assert_code(130);
    assert!(r.stdout.contains("SIGINT arrived"), "{r}");
    assert!(r.stderr.contains("interrupted by SIGINT"), "{r}");
}

#[test]
fn a_pid_that_does_not_exist_is_esrch() {
    // Above the largest pid Linux can give (pid_max is at most 2^22).
    let r = signal_demo(&["sender", "--pid", "2147483647"]);
    r.assert_code(1);
    assert!(
        r.stderr.contains("failed: ESRCH (No such process); hint:"),
        "{r}"
    );
    let r = signal_demo(&["kill", "--pid", "2147483647", "--signal", "TERM"]);
    r.assert_code(1);
    assert!(r.stderr.contains("ESRCH"), "{r}");
}

#[test]
fn a_process_of_another_user_is_eperm() {
    // As root, run the sender as `nobody` against this (root) test process; as anyone
    // else, aim at init (pid 1), which belongs to root. Either way the kernel refuses,
    // and the sender only ever sends signal 0.
    let mut sender = std::process::Command::new(BIN);
    if nix::unistd::Uid::effective().is_root() {
        sender
            .args(["sender", "--pid", &std::process::id().to_string()])
            .uid(65534)
            .gid(65534);
    } else {
        sender.args(["sender", "--pid", "1"]);
    }
    let out = sender.output().expect("run the sender");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .contains("EPERM (Operation not permitted); hint: the process belongs to another user"),
        "{stderr}"
    );
}

#[test]
fn the_sender_refuses_a_process_that_is_not_a_receiver() {
    // This test process would die of SIGUSR1; the sender must not send it.
    let r = signal_demo(&["sender", "--pid", &std::process::id().to_string()]);
    r.assert_code(1);
    assert!(r.stderr.contains("not a signal-demo receiver"), "{r}");
}

#[test]
fn a_peer_that_never_acknowledges_is_reported_after_the_time_out() {
    // A signal-demo that is not a receiver: SIGUSR1's default action ends it, so the
    // acknowledgement never comes and the sender's deliberate time-out is what ends it.
    let mut worker = Process::start(BIN, &["graceful"]);
    let line = worker.wait_for_line("working; stop me with");
    let pid = line
        .split("kill -TERM ")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .expect("pid");
    let r = signal_demo(&["sender", "--pid", pid, "--timeout-ms", "300"]);
    r.assert_code(1);
    assert!(r.stderr.contains("sigtimedwait"), "{r}");
    assert!(r.stderr.contains("EAGAIN"), "{r}");
    assert!(r.stderr.contains("no acknowledgement from pid"), "{r}");
    assert_eq!(
        worker.finish().code,
        None,
        "SIGUSR1's default action ends the worker"
    );
}

#[test]
fn bad_usage_is_exit_2() {
    signal_demo(&["kill", "--pid", "1", "--signal", "FOO"]).assert_code(2);
    signal_demo(&["sender", "--pid", "0"]).assert_code(2);
    signal_demo(&["sender", "--pid", "-5"]).assert_code(2);
    signal_demo(&["--frobnicate"]).assert_code(2);
    signal_demo(&["coalesce", "--count", "0"]).assert_code(2);
}

#[test]
fn help_explains_the_mechanism_with_an_example() {
    let r = signal_demo(&["--help"]);
    r.assert_code(0);
    assert!(r.stdout.contains("Signals, the smallest IPC"), "{r}");
    for lesson in [
        "receiver", "sender", "kill", "coalesce", "queue", "graceful",
    ] {
        let r = signal_demo(&[lesson, "--help"]);
        r.assert_code(0);
        assert!(
            r.stdout.contains("Example: cargo run -p signal-demo -- "),
            "{lesson}: {r}"
        );
    }
}
