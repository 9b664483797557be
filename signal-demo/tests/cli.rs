//! signal-demo as a student runs it: the built binary, real processes, real signals.
//!
//! Ordering comes from the processes themselves (the receiver's "ready" line, the
//! acknowledgements); the only time-outs are safety nets, and the one deliberate time-out
//! (a peer that never answers) is asserted as such.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use testkit::{Process, as_nobody, number_after, run, wait_until_gone};

const BIN: &str = env!("CARGO_BIN_EXE_signal-demo");

fn signal_demo(args: &[&str]) -> testkit::Run {
    run(BIN, args, b"")
}

#[test]
fn the_default_run_acknowledges_every_signal() {
    let r = signal_demo(&[]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: received=3 ignored=0");
    assert!(
        r.stdout
            .contains("sigaction(SIGUSR1, {on_signal, SA_SIGINFO|SA_RESTART}, NULL) = 0"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("sigtimedwait({SIGUSR1}, &info, 500ms) = SIGUSR1 (from pid"),
        "{r}"
    );
}

#[test]
fn ten_thousand_acknowledged_signals_all_arrive() {
    let r = signal_demo(&["--quiet", "--count", "10000"]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: received=10000 ignored=0");
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
    assert_eq!(receiver.summary(), "summary: received=500 ignored=0");
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
    assert!(
        r.stdout
            .contains("] sigpending(&set) = 0, set = {SIGUSR1}\n"),
        "{r}"
    );
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
    // A receiver stopped with SIGSTOP is alive but cannot answer: the sender's deliberate
    // time-out is what ends the wait.
    let mut receiver = Process::start(BIN, &["receiver"]);
    let pid = receiver_pid(&mut receiver);
    receiver.signal(Signal::SIGSTOP);
    let r = signal_demo(&["sender", "--pid", &pid.to_string(), "--timeout-ms", "300"]);
    receiver.signal(Signal::SIGCONT);
    receiver.signal(Signal::SIGINT);
    receiver.finish().assert_code(130);
    r.assert_code(1);
    assert!(r.stderr.contains("sigtimedwait"), "{r}");
    assert!(r.stderr.contains("EAGAIN"), "{r}");
    assert!(r.stderr.contains("no acknowledgement from pid"), "{r}");
}

#[test]
fn a_receiver_that_dies_is_noticed_within_a_second_not_at_the_time_out() {
    // A signal-demo that is not a receiver: SIGUSR1's default action ends it, and the
    // sender, which would wait a minute for the answer, sees it gone.
    let mut worker = Process::start(BIN, &["graceful"]);
    let line = worker.wait_for_line("working; stop me with");
    let pid = number_after(&line, "kill -TERM ").to_string();
    let sender = Process::start(BIN, &["sender", "--pid", &pid, "--timeout-ms", "60000"]);
    let r = sender.finish_within(Duration::from_secs(10));
    r.assert_code(1);
    assert!(
        r.stderr.contains(&format!(
            "kill({pid}, 0)   (is the receiver alive?) failed: ESRCH"
        )),
        "{r}"
    );
    assert_eq!(
        worker.finish().code,
        None,
        "SIGUSR1's default action ends the worker"
    );
}

/// The pid a receiver prints in its ready line.
fn receiver_pid(receiver: &mut Process) -> i32 {
    let ready = receiver.wait_for_line("ready: my pid is");
    number_after(&ready, "my pid is")
}

/// A Python process that sends `signal` to `target` with os.kill, as a shell's `kill`
/// does, says so, and then waits for its standard input to end: alive until then, unless
/// a signal ends it.
fn python_stranger(target: i32, signal: &str) -> Process {
    let script = format!(
        "import os, signal, sys\n\
         os.kill({target}, signal.{signal})\n\
         print('sent', flush=True)\n\
         sys.stdin.read()\n"
    );
    let mut stranger = Process::spawn(Command::new("python3").args(["-c", &script]));
    stranger.wait_for_line("sent");
    stranger
}

#[test]
fn a_strangers_signal_is_reported_not_answered_and_the_stranger_lives() {
    // The issue's shell: a program that sends the receiver one SIGUSR1 and has no handler
    // for SIGUSR1 would be ended by an answer.
    let mut receiver = Process::start(BIN, &["receiver"]);
    let pid = receiver_pid(&mut receiver);
    let stranger = python_stranger(pid, "SIGUSR1");
    let ignored = receiver.wait_for_line("ignored, not answered");
    assert!(
        ignored.contains(&format!(
            "SIGUSR1 claiming to be from pid {}",
            stranger.pid()
        )),
        "{ignored}"
    );
    assert!(
        ignored.contains("neither blocks nor catches SIGUSR1"),
        "{ignored}"
    );
    // The conversation with a real sender still works, and the stranger is still alive.
    let sender = signal_demo(&["sender", "--pid", &pid.to_string(), "--count", "2"]);
    sender.assert_code(0);
    let receiver = receiver.finish();
    receiver.assert_code(0);
    assert_eq!(receiver.summary(), "summary: received=2 ignored=1");
    let mut stranger = stranger;
    stranger.close_stdin();
    stranger.finish().assert_code(0);
}

#[test]
fn a_named_sender_is_the_only_one_answered() {
    let sender_first = std::process::id().to_string();
    // This test process stands for the named sender; it never sends. A real sender's
    // SIGUSR1 is then a stranger's, reported and not answered; the sender times out.
    let mut receiver = Process::start(BIN, &["receiver", "--sender", &sender_first]);
    let pid = receiver_pid(&mut receiver).to_string();
    let r = signal_demo(&["sender", "--pid", &pid, "--timeout-ms", "300"]);
    r.assert_code(1);
    assert!(r.stderr.contains("no acknowledgement from pid"), "{r}");
    receiver.signal(Signal::SIGINT);
    let receiver = receiver.finish();
    receiver.assert_code(130);
    assert!(
        receiver.stdout.contains(&format!(
            "ignored, not answered: my sender is pid {sender_first}"
        )),
        "{receiver}"
    );
    // The receiver's only kill is an acknowledgement: none was sent.
    assert!(!receiver.stdout.contains("] kill("), "{receiver}");
}

/// Sends SIGUSR1 to `target` with a siginfo_t written by hand (`rt_sigqueueinfo(2)`, as
/// `sigqueue(3)` does), whose si_pid claims `claimed`. None if python3 or ctypes cannot.
fn forge_sigusr1(target: i32, claimed: i32) -> Option<()> {
    let script = format!(
        r#"
import ctypes, os, signal, struct
libc = ctypes.CDLL(None, use_errno=True)
SYS_rt_sigqueueinfo = {{"x86_64": 129, "aarch64": 138}}[os.uname().machine]
# siginfo_t: si_signo, si_errno, si_code, then (on 64-bit) the union at offset 16,
# whose first two fields are si_pid and si_uid; 128 bytes in all.
info = struct.pack("iii4xiI", signal.SIGUSR1, 0, -1, {claimed}, os.getuid()).ljust(128, b"\0")
buf = ctypes.create_string_buffer(info, 128)
r = libc.syscall(SYS_rt_sigqueueinfo, {target}, signal.SIGUSR1, buf)
assert r == 0, os.strerror(ctypes.get_errno())
"#
    );
    let out = match Command::new("python3").args(["-c", &script]).output() {
        Ok(out) => out,
        Err(e) => {
            println!("skipped: cannot run python3: {e}");
            return None;
        }
    };
    if !out.status.success() {
        println!(
            "skipped: python3 cannot call rt_sigqueueinfo here: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(())
}

/// A receiver in its own process group (a kill(0, ...) could reach no test process),
/// run as `nobody` when the machine can (a kill(-1, ...) could then reach only nobody's
/// processes). The fix makes both impossible; this is only in case it did not.
fn contained_receiver() -> Process {
    let mut command = as_nobody(BIN).unwrap_or_else(|| Command::new(BIN));
    command.arg("receiver").process_group(0);
    Process::spawn(&mut command)
}

#[test]
fn a_forged_sender_pid_of_minus_one_zero_or_its_own_makes_it_signal_no_one() {
    let mut receiver = contained_receiver();
    let pid = receiver_pid(&mut receiver);
    for claimed in [-1, 0, pid] {
        if forge_sigusr1(pid, claimed).is_none() {
            receiver.signal(Signal::SIGKILL);
            return;
        }
        let line = receiver.wait_for_line("ignored, not answered");
        assert!(
            line.contains(&format!("claiming to be from pid {claimed}:")),
            "{line}"
        );
        assert!(line.contains("its si_code is -1, not SI_USER"), "{line}");
    }
    // Still listening (no endless loop): SIGTERM ends it at once, with 130.
    receiver.signal(Signal::SIGTERM);
    let r = receiver.finish_within(Duration::from_secs(10));
    r.assert_code(130);
    // The receiver's only kill is an acknowledgement: none was sent.
    assert!(!r.stdout.contains("] kill("), "{r}");
}

#[test]
fn a_forged_sender_pid_does_not_make_it_signal_a_bystander() {
    // The bystander is a `sleep` of this test, which SIGUSR1 would end. The receiver runs
    // as this user so that, without the fix, it could indeed signal the bystander.
    let bystander = Process::start("sleep", &["60"]);
    let mut command = Command::new(BIN);
    command.arg("receiver").process_group(0);
    let mut receiver = Process::spawn(&mut command);
    let pid = receiver_pid(&mut receiver);
    let claimed = bystander.pid().as_raw();
    if forge_sigusr1(pid, claimed).is_none() {
        return;
    }
    receiver.wait_for_line(&format!("from pid {claimed}"));
    receiver.signal(Signal::SIGTERM);
    let r = receiver.finish();
    // Alive, not a zombie killed by SIGUSR1; dropping the Process then kills it.
    let alive = common::process::is_alive(claimed);
    assert!(alive, "the bystander was signalled:\n{r}");
    r.assert_code(130);
}

#[test]
fn a_sender_killed_mid_conversation_is_noticed_by_the_receiver() {
    let mut receiver = Process::start(BIN, &["receiver"]);
    let pid = receiver_pid(&mut receiver).to_string();
    let sender = Process::start(
        BIN,
        &["sender", "--pid", &pid, "--count", "1000000", "--quiet"],
    );
    let first = receiver.wait_for_line("SIGUSR1 #1 from pid");
    let sender_pid = sender.pid().as_raw();
    assert_eq!(number_after(&first, "from pid"), sender_pid);
    sender.signal(Signal::SIGKILL);
    assert_eq!(sender.finish().code, None);
    let r = receiver.finish_within(Duration::from_secs(10));
    r.assert_code(1);
    // Seen while waiting (is the sender alive?), or by the acknowledgement itself if
    // the sender died just after its last signal: ESRCH either way.
    assert!(r.stderr.contains("failed: ESRCH (No such process)"), "{r}");
    assert!(
        r.stderr
            .contains(&format!("the sender (pid {}) has gone", sender_pid)),
        "{r}"
    );
}

#[test]
fn a_named_sender_that_is_not_running_is_an_error() {
    let r = signal_demo(&["receiver", "--sender", "2147483647"]);
    r.assert_code(1);
    assert!(r.stderr.contains("start the sender first"), "{r}");
}

#[test]
fn an_interrupted_sender_exits_130() {
    // The sender waits for an acknowledgement that a stopped receiver cannot send; it
    // has nothing to clean up, and still leaves with 130, not killed by SIGINT.
    let mut receiver = Process::start(BIN, &["receiver"]);
    let pid = receiver_pid(&mut receiver).to_string();
    receiver.signal(Signal::SIGSTOP);
    let mut sender = Process::start(BIN, &["sender", "--pid", &pid, "--timeout-ms", "60000"]);
    sender.wait_for_line("kill(");
    sender.signal(Signal::SIGINT);
    let r = sender.finish();
    receiver.signal(Signal::SIGCONT);
    receiver.signal(Signal::SIGINT);
    receiver.finish();
    r.assert_code(130);
    assert!(
        r.stderr.contains("signal-demo: interrupted by SIGINT"),
        "{r}"
    );
}

fn the_receiver_child_dies_with_its_parent(signal: Signal) {
    let mut parent = Process::start(BIN, &["--count", "1000000"]);
    let lines = parent.wait_for_all(&[
        "(in the parent: the child's pid)",
        "prctl(PR_SET_PDEATHSIG, SIGKILL) = 0",
    ]);
    let child = number_after(&lines[0], "fork() =");
    parent.signal(signal);
    let gone = wait_until_gone(child, Duration::from_secs(5));
    if !gone {
        // Ours, left running by the bug this test is about.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), Signal::SIGKILL);
    }
    assert!(gone, "the receiver {child} outlived its parent ({signal})");
    parent.finish();
}

#[test]
fn the_receiver_child_dies_with_a_killed_parent() {
    the_receiver_child_dies_with_its_parent(Signal::SIGKILL);
}

#[test]
fn the_receiver_child_dies_with_a_terminated_parent() {
    the_receiver_child_dies_with_its_parent(Signal::SIGTERM);
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

#[test]
fn a_python_peer_following_the_books_protocol_is_answered() {
    // The protocol of the signals chapter: block SIGUSR1, then send and wait for each
    // answer with sigtimedwait. The receiver needs no --sender: the peer is ready for
    // the answer, which /proc/PID/status (or wchan, while it waits) shows.
    let mut receiver = Process::start(BIN, &["receiver"]);
    let pid = receiver_pid(&mut receiver);
    let script = format!(
        "import os, signal\n\
         signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGUSR1}})\n\
         answered = 0\n\
         for n in range(5):\n\
         \x20   os.kill({pid}, signal.SIGUSR1)\n\
         \x20   info = signal.sigtimedwait({{signal.SIGUSR1}}, 5)\n\
         \x20   answered += info is not None and info.si_pid == {pid}\n\
         os.kill({pid}, signal.SIGUSR2)\n\
         print('answered', answered)\n"
    );
    let peer = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    let r = receiver.finish();
    assert_eq!(
        String::from_utf8_lossy(&peer.stdout).trim(),
        "answered 5",
        "{}",
        String::from_utf8_lossy(&peer.stderr)
    );
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: received=5 ignored=0");
}

// ---- Korean (issue 13): explanations and hints in Korean; the system calls, errno
// names, [role pid] tags and summary lines the same as in English.

use testkit::lang::{assert_locale_picks_korean, has_korean, run_in, same_in_korean};
use testkit::{pid_of, same_in_korean_as};

#[test]
fn lang_ko_explains_the_default_run_in_korean_with_the_same_calls_and_summary() {
    let r = same_in_korean(BIN, &[]);
    assert_eq!(r.summary(), "summary: received=3 ignored=0");
    assert!(
        r.stdout
            .contains("이것이 셀프 파이프(self-pipe)입니다: 핸들러(handler)는 시그널마다"),
        "{r}"
    );
    assert!(r.stdout.contains("(부모 쪽: 자식의 pid)"), "{r}");
    assert!(
        r.stdout
            .contains("] sigaction(SIGUSR1, {on_signal, SA_SIGINFO|SA_RESTART}, NULL) = 0\n"),
        "{r}"
    );
    assert!(!r.stdout.contains("the self-pipe"), "{r}");
}

#[test]
fn lang_ko_explains_coalesce_queue_and_graceful_in_korean_with_the_same_calls() {
    let r = same_in_korean(BIN, &["coalesce", "--count", "10"]);
    assert!(
        r.stdout
            .contains("내가 SIGUSR1을 블록(block)하고 있는 동안 송신자가 10번 보냈습니다"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("] sigpending(&set) = 0, set = {SIGUSR1}\n"),
        "{r}"
    );
    let r = same_in_korean(BIN, &["queue", "--count", "5"]);
    assert_eq!(r.summary(), "summary: sent=5 received=5 in_order=5");
    assert!(r.stdout.contains("나머지는 출력 없이 가져옵니다"), "{r}");
    // graceful narrates no system call (ctrlc installs its handler): nothing to compare
    // there, so same_in_korean_as, which does not ask for calls.
    let r = same_in_korean_as(BIN, &["graceful", "--steps", "2"], 0, str::to_string);
    assert_eq!(r.summary(), "summary: steps=2 stopped_by=none");
    assert!(
        r.stdout.contains("ctrlc 크레이트로 SIGINT와 SIGTERM"),
        "{r}"
    );
    assert!(r.stdout.contains("2단계를 마쳤습니다"), "{r}");
}

#[test]
fn lang_ko_gives_kill_s_error_and_hint_in_korean_with_the_same_call_and_errno() {
    let r = same_in_korean_as(
        BIN,
        &["kill", "--pid", "2147483647", "--signal", "TERM"],
        1,
        str::to_string,
    );
    assert!(
        r.stderr.contains(
            "kill(2147483647, SIGTERM) 실패: ESRCH (No such process); 힌트: 이 pid의 프로세스가 없습니다"
        ),
        "{r}"
    );
}

#[test]
fn lang_ko_receiver_and_sender_in_two_processes_keep_their_summaries() {
    let mut receiver = Process::start(BIN, &["--lang", "ko", "receiver"]);
    let ready = receiver.wait_for_line("준비됨: 내 pid는");
    let pid = number_after(&ready, "내 pid는").to_string();
    let sender = signal_demo(&["--lang", "ko", "sender", "--pid", &pid, "--count", "5"]);
    sender.assert_code(0);
    assert_eq!(sender.summary(), "summary: sent=5 acknowledged=5");
    assert!(
        sender
            .stdout
            .contains("무엇을 보내기 전에 먼저 SIGUSR1을 블록(block)합니다"),
        "{sender}"
    );
    let receiver = receiver.finish();
    receiver.assert_code(0);
    assert_eq!(receiver.summary(), "summary: received=5 ignored=0");
    assert!(
        receiver
            .stdout
            .contains("SIGUSR2: 방금 것이 마지막이었습니다"),
        "{receiver}"
    );
    assert!(
        receiver.stdout.contains(&format!(
            "] kill({}, SIGUSR1) = 0\n",
            pid_of(&sender, "sender")
        )),
        "{receiver}"
    );
}

#[test]
fn a_korean_locale_alone_picks_korean_and_lang_en_overrides_it() {
    let korean = assert_locale_picks_korean(
        BIN,
        &["--count", "1"],
        "이것이 셀프 파이프(self-pipe)입니다",
    );
    assert_eq!(korean.summary(), "summary: received=1 ignored=0");
    let english = run_in(
        &["LANG=ko_KR.UTF-8"],
        BIN,
        &["--lang", "en", "--count", "1"],
        b"",
    );
    english.assert_code(0);
    assert!(!has_korean(&english.stdout), "{english}");
    assert_eq!(english.summary(), korean.summary());
}

#[test]
fn an_interrupted_sender_says_so_in_korean() {
    // The sender owns nothing: the first SIGINT handler (common::cleanup) ends it with 130
    // and one line, in the language the command line chose.
    let mut receiver = Process::start(BIN, &["receiver"]);
    let pid = receiver_pid(&mut receiver).to_string();
    receiver.signal(Signal::SIGSTOP);
    let mut sender = Process::start(
        BIN,
        &[
            "--lang",
            "ko",
            "sender",
            "--pid",
            &pid,
            "--timeout-ms",
            "60000",
        ],
    );
    sender.wait_for_line("kill(");
    sender.signal(Signal::SIGINT);
    let r = sender.finish();
    receiver.signal(Signal::SIGCONT);
    receiver.signal(Signal::SIGINT);
    receiver.finish();
    r.assert_code(130);
    assert_eq!(r.stderr, "signal-demo: SIGINT 시그널로 중단됨\n", "{r}");
}
