//! passing-demo as a student runs it: the built binary, real processes, real kernel
//! objects. Every test uses its own `--name` (the test's pid and a word), checks the
//! summary line (and, for the rendezvous, the timeline itself), and checks afterwards
//! that nothing of that name is left: no queue under its keys, no file in the private
//! folder, no POSIX queue.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says it failed by panicking

use std::collections::BTreeMap;

use nix::sys::signal::Signal;
use passing_demo::{Names, Purpose};
use testkit::lang::says;
use testkit::{Process, Run, run};

const BIN: &str = env!("CARGO_BIN_EXE_passing-demo");

/// A `--name` no other test (or other run of the suite) uses.
fn name(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

/// Runs a lesson in English, whatever the machine's locale: the tests read its sentences.
fn demo(name: &str, args: &[&str]) -> Run {
    let mut all = vec!["--name", name];
    all.extend_from_slice(args);
    testkit::lang::english(BIN, &all)
}

/// The text after `key=` in the summary line.
fn word<'a>(r: &'a Run, key: &str) -> &'a str {
    r.summary()
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the summary:\n{r}"))
}

/// Fails the test if anything made from `name` is still there.
fn assert_nothing_left(name: &str) {
    let names = Names::new(name).expect("the private folder");
    let table = std::fs::read_to_string("/proc/sysvipc/msg").expect("/proc/sysvipc/msg");
    for purpose in Purpose::ALL {
        let key = names.key(purpose).to_string();
        let left = table
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some(key.as_str()));
        assert!(
            !left,
            "a queue with key {key} ({purpose:?}) is left:\n{table}"
        );
    }
    // This name's files only: `passing-NAME.fifo`, `passing-NAME.sock` and the address
    // files `passing-NAME@PID.sock`, not those of a test whose name starts the same way.
    let (dotted, at) = (format!("passing-{name}."), format!("passing-{name}@"));
    let dir = names.dir().expect("the private folder");
    let files: Vec<String> = std::fs::read_dir(dir)
        .expect("the private folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with(&dotted) || f.starts_with(&at))
        .collect();
    assert!(files.is_empty(), "left in {}: {files:?}", dir.display());
    let mq = nix::mqueue::mq_open(
        names.mq().as_str(),
        nix::mqueue::MQ_OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
        None,
    );
    assert!(mq.is_err(), "the POSIX queue {} is left", names.mq());
}

#[test]
fn the_map_lists_a_command_for_every_choice_and_each_command_runs() {
    let r = run(BIN, &[] as &[&str], b"");
    r.assert_code(0);
    for command in [
        "direct",
        "datagram",
        "mailbox",
        "sync",
        "zero",
        "bounded",
        "unbounded",
    ] {
        assert!(
            r.stdout.contains(&format!("passing-demo {command}")),
            "{command}:\n{r}"
        );
        run(BIN, &[command, "--help"], b"").assert_code(0);
    }
}

#[test]
fn direct_senders_name_the_receiver_by_pid_and_si_pid_names_each_sender() {
    let n = name("direct");
    let r = demo(&n, &["direct", "--senders", "3", "--count", "4"]);
    r.assert_code(0);
    assert_eq!(
        r.summary(),
        "summary: signals=12 senders=3 from_senders=12 unknown=0"
    );
    // Each sender's pid, as its own lines give it, is the si_pid the receiver reports.
    for role in ["sender-1", "sender-2", "sender-3"] {
        let pid = pid_of(&r, role);
        assert!(
            r.stdout.contains(&format!("{role} (pid {pid}) sent 4")),
            "{role}:\n{r}"
        );
    }
}

/// The pid in `[role PID]`, from the role's first line.
fn pid_of(r: &Run, role: &str) -> i32 {
    let tag = format!("[{role} ");
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&tag)?.split(']').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no line of {role}:\n{r}"))
}

#[test]
fn a_datagram_names_its_sender_by_the_address_it_came_from() {
    let n = name("datagram");
    let r = demo(&n, &["datagram", "--senders", "3", "--count", "5"]);
    r.assert_code(0);
    assert_eq!(
        r.summary(),
        "summary: received=15 senders=3 named_by_address=15 unknown=0"
    );
    assert_nothing_left(&n);
}

#[test]
fn symmetric_naming_makes_the_kernel_refuse_an_outsider_with_eperm() {
    let n = name("symmetric");
    let r = demo(
        &n,
        &["datagram", "--senders", "3", "--count", "2", "--symmetric"],
    );
    r.assert_code(0);
    assert_eq!(word(&r, "partner"), "2");
    assert_eq!(word(&r, "refused"), "2");
    let refusals = r
        .stdout
        .lines()
        .filter(|l| l.contains("sendto(") && l.ends_with("= -1 EPERM (Operation not permitted)"))
        .count();
    assert_eq!(refusals, 2, "{r}");
    assert_nothing_left(&n);
}

/// The mailbox with three senders and three receivers: every message taken exactly once.
fn mailbox_of_many(via: &str) -> Run {
    let n = name(&format!("mailbox-{via}"));
    let r = demo(
        &n,
        &[
            "mailbox",
            "--via",
            via,
            "--senders",
            "3",
            "--receivers",
            "3",
            "--count",
            "200",
        ],
    );
    r.assert_code(0);
    assert_eq!(
        r.summary(),
        format!(
            "summary: via={via} senders=3 receivers=3 sent=600 received=600 duplicated=0 missing=0 corrupt=0 out_of_order=0"
        )
    );
    // Every receiver took from the one link until it said no more would come.
    for role in ["receiver-1", "receiver-2", "receiver-3"] {
        let pid = pid_of(&r, role);
        assert!(
            r.stdout.contains(&format!(
                "[{role} {pid}] no more messages will come; I took"
            )),
            "{role}:\n{r}"
        );
    }
    assert_nothing_left(&n);
    r
}

#[test]
fn a_queue_mailbox_joins_six_processes_and_outlives_them_until_removed() {
    let r = mailbox_of_many("queue");
    assert!(r.stdout.contains("msg_lspid = "), "{r}");
    assert!(r.stdout.contains("the mailbox is still here"), "{r}");
    assert!(r.stdout.contains("IPC_RMID, NULL) = 0"), "{r}");
}

#[test]
fn a_fifo_mailbox_ends_for_its_receivers_when_the_last_writer_closes() {
    let r = mailbox_of_many("fifo");
    // The observer holds it open for writing until every sender is done, and every
    // child closes the copy of that descriptor it inherited.
    assert!(r.stdout.contains("O_RDWR|O_CLOEXEC|O_NOFOLLOW) = "), "{r}");
    let closed_copies = r
        .stdout
        .lines()
        .filter(|l| l.contains("fork gave me a copy of the observer's descriptor"))
        .count();
    assert_eq!(closed_copies, 6, "{r}");
    assert!(
        r.stdout.contains("now only the senders hold the FIFO open"),
        "{r}"
    );
    assert!(r.stdout.contains(".fifo\") = 0"), "{r}");
}

#[test]
fn a_fifo_receiver_that_opens_late_still_sees_the_end() {
    // One message and eight receivers: the sender is done long before the last
    // receiver opens the FIFO. "No more" must wait for every receiver to have it open,
    // or a late one waits forever in open(2) for a writer that is gone. The race is the
    // scheduler's, so the run is repeated (before the fix about one run in twenty hung).
    let n = name("fifo-late");
    for _ in 0..10 {
        let r = demo(
            &n,
            &[
                "--quiet",
                "mailbox",
                "--via",
                "fifo",
                "--senders",
                "1",
                "--receivers",
                "8",
                "--count",
                "1",
            ],
        );
        r.assert_code(0);
        assert_eq!(r.field("received"), 1, "{r}");
    }
    assert_nothing_left(&n);
}

#[test]
fn a_socket_mailbox_goes_with_its_receivers_and_leaves_a_refusing_name() {
    let r = mailbox_of_many("socket");
    assert!(
        r.stdout.contains("= -1 ECONNREFUSED (Connection refused)"),
        "{r}"
    );
}

#[test]
fn every_combination_of_modes_meets_the_empty_and_the_full_socket_pair() {
    let n = name("sync");
    for send in ["block", "nonblock", "timeout"] {
        for receive in ["block", "nonblock", "timeout"] {
            let r = demo(
                &n,
                &[
                    "--quiet",
                    "sync",
                    "--send",
                    send,
                    "--receive",
                    receive,
                    "--timeout-ms",
                    "50",
                ],
            );
            r.assert_code(0);
            let empty = match receive {
                "block" => "through",
                "nonblock" => "EAGAIN",
                _ => "timeout",
            };
            let full = match send {
                "block" => "waited",
                "nonblock" => "EAGAIN",
                _ => "timeout",
            };
            assert_eq!(word(&r, "empty_link"), empty, "{r}");
            assert_eq!(word(&r, "full_link"), full, "{r}");
            assert_eq!(r.field("sent"), r.field("received"), "{r}");
            assert!(
                r.field("held") > 0 && r.field("sent") > r.field("held"),
                "{r}"
            );
        }
    }
    assert_nothing_left(&n);
}

#[test]
fn a_pipe_and_a_queue_hold_what_the_kernel_sizes_say_in_every_mode() {
    let n = name("sync-sized");
    for via in ["pipe", "queue"] {
        for send in ["block", "nonblock"] {
            for receive in ["block", "nonblock"] {
                let r = demo(
                    &n,
                    &[
                        "--quiet",
                        "sync",
                        "--via",
                        via,
                        "--send",
                        send,
                        "--receive",
                        receive,
                        "--capacity",
                        "4096",
                    ],
                );
                r.assert_code(0);
                // A 48-byte payload is a 64-byte message: 64 fit in a page, or in 4096
                // bytes of msg_qbytes.
                assert_eq!(r.field("held"), 64, "{r}");
                assert_eq!(r.field("expected"), 64, "{r}");
            }
        }
    }
    assert_nothing_left(&n);
}

#[test]
fn bounded_links_make_the_sender_wait_when_full() {
    let n = name("bounded");
    // 100-byte payloads are 116-byte messages: 35 fit in a page, 70 in two.
    let r = demo(
        &n,
        &[
            "--quiet",
            "bounded",
            "--via",
            "pipe",
            "--capacity",
            "8K",
            "--size",
            "100",
        ],
    );
    r.assert_code(0);
    assert_eq!((r.field("held"), r.field("expected")), (70, 70), "{r}");
    assert_eq!(word(&r, "full_link"), "waited");
    let r = demo(
        &n,
        &["--quiet", "bounded", "--via", "queue", "--capacity", "2K"],
    );
    r.assert_code(0);
    assert_eq!((r.field("held"), r.field("expected")), (32, 32), "{r}");
    assert_eq!(word(&r, "full_link"), "waited");
    assert_nothing_left(&n);
}

#[test]
fn a_time_out_on_a_link_that_has_none_is_bad_usage() {
    let n = name("no-timeout");
    for via in ["pipe", "queue"] {
        let r = demo(&n, &["sync", "--via", via, "--receive", "timeout"]);
        r.assert_code(2);
        assert!(r.stderr.contains("has no time-out of its own"), "{r}");
    }
    let r = demo(&n, &["bounded", "--via", "socket"]);
    r.assert_code(2);
    assert_nothing_left(&n);
}

#[test]
fn the_rendezvous_sender_never_returns_before_the_receiver_took_the_message() {
    let n = name("zero");
    let r = demo(&n, &["--all", "zero", "--count", "100"]);
    r.assert_code(0);
    assert_eq!(
        r.summary(),
        "summary: messages=100 took_before_send_returned=100 returned_early=0 qbytes_zero=EAGAIN pipe_zero=4096 mq_maxmsg_zero=EINVAL"
    );
    // The test reads the timeline itself: the number of each event is the order in
    // which the kernel kept its record in one pipe.
    let (mut took, mut returned) = (BTreeMap::new(), BTreeMap::new());
    for line in r.stdout.lines().filter(|l| l.starts_with("[timeline ")) {
        let Some((_, event)) = line.split_once("] #") else {
            continue;
        };
        let (number, what) = event.split_once(' ').expect("#N what");
        let number: u64 = number.parse().expect("an event number");
        if let Some(seq) = what.strip_prefix("receiver took message ") {
            took.insert(seq.parse::<u64>().expect("seq"), number);
        } else if let Some(rest) = what.strip_prefix("sender: the send of message ") {
            let seq = rest.strip_suffix(" returned").expect("returned");
            returned.insert(seq.parse::<u64>().expect("seq"), number);
        }
    }
    assert_eq!(took.len(), 100, "{r}");
    assert_eq!(returned.len(), 100, "{r}");
    for (seq, back) in &returned {
        assert!(
            took[seq] < *back,
            "message {seq}: the send returned (#{back}) before the take (#{}):\n{r}",
            took[seq]
        );
    }
    assert_nothing_left(&n);
}

#[test]
fn unbounded_links_all_meet_a_limit() {
    let n = name("unbounded");
    let r = demo(&n, &["--quiet", "unbounded"]);
    r.assert_code(0);
    assert_eq!(r.field("pipe_held"), r.field("pipe_capacity"), "{r}");
    let (held, capacity) = (r.field("queue_held"), r.field("queue_capacity"));
    assert!(
        held > 0 && held <= capacity && held + 4096 > capacity,
        "{r}"
    );
    assert!(r.field("socket_held") > 0, "{r}");
    assert_eq!(word(&r, "mq_open"), "EMFILE", "{r}");
    // The relay allows itself 16 MiB more than it uses, so it runs out within that.
    let relay = r.field("relay_mib");
    assert!((1..=17).contains(&relay), "{r}");
    assert_nothing_left(&n);
}

/// Runs `args` as the unprivileged user nobody, or returns `None` (and says why) if
/// this machine cannot.
fn as_nobody(args: &[&str]) -> Option<Run> {
    let mut all = vec![
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        BIN,
    ];
    all.extend_from_slice(args);
    let r = run("setpriv", &all, b"");
    if r.code == Some(127) || r.stderr.contains("setpriv:") {
        println!(
            "skipped: setpriv cannot run the demo as nobody here: {}",
            r.stderr
        );
        return None;
    }
    Some(r)
}

#[test]
fn an_unprivileged_user_cannot_raise_the_queue_or_the_pipe() {
    let n = name("nobody");
    let Some(r) = as_nobody(&["--name", &n, "--quiet", "unbounded"]) else {
        return;
    };
    r.assert_code(0);
    assert_eq!(word(&r, "queue_raise"), "EPERM", "{r}");
    assert_eq!(word(&r, "pipe_raise"), "EPERM", "{r}");
    assert_eq!(word(&r, "mq_open"), "EMFILE", "{r}");
}

#[test]
fn bad_plans_and_names_are_refused_before_anything_is_made() {
    let n = name("usage");
    for args in [
        &["mailbox", "--senders", "0"][..],
        &["mailbox", "--receivers", "9"],
        &["mailbox", "--size", "5000"],
        &["datagram", "--symmetric", "--senders", "1"],
        &["direct", "--count", "0"],
        &["zero", "--count", "0"],
    ] {
        let r = demo(&n, args);
        r.assert_code(2);
        assert!(
            r.stderr.starts_with("passing-demo: command line failed"),
            "{args:?}: {r}"
        );
    }
    // clap refuses what it can check itself, with its own message (exit code 2 too).
    let r = demo(&n, &["unbounded", "--ask", "1G"]);
    r.assert_code(2);
    assert!(r.stderr.contains("invalid value '1G' for '--ask"), "{r}");
    let r = run(BIN, &["--name", "../up", "zero"], b"");
    r.assert_code(2);
    assert!(r.stderr.contains("--name"), "{r}");
    assert_nothing_left(&n);
}

#[test]
fn a_receiver_killed_mid_run_stops_the_others_and_the_mailbox_is_removed() {
    let n = name("killed");
    let mut p = Process::start(
        BIN,
        &[
            "--name",
            &n,
            "mailbox",
            "--via",
            "queue",
            "--senders",
            "1",
            "--receivers",
            "1",
            "--count",
            "100000",
        ],
    );
    let line = p.wait_for_line("[receiver-1 ");
    let pid: i32 = line
        .strip_prefix("[receiver-1 ")
        .and_then(|rest| rest.split(']').next())
        .and_then(|pid| pid.parse().ok())
        .expect("the receiver's pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).expect("kill");
    let r = p.finish();
    r.assert_code(1);
    assert!(
        r.stderr
            .contains(&format!("the receiver-1 (pid {pid}) failed")),
        "{r}"
    );
    assert!(r.stderr.contains("SIGKILL"), "{r}");
    assert_nothing_left(&n);
}

#[test]
fn ctrl_c_removes_the_queue_and_exits_130() {
    let n = name("interrupt");
    let mut p = Process::start(BIN, &["--name", &n, "zero", "--count", "100000"]);
    // The first event on the timeline: the handler is installed by then.
    p.wait_for_line("[timeline ");
    p.signal(Signal::SIGINT);
    let r = p.finish();
    r.assert_code(130);
    assert!(r.stdout.contains("IPC_RMID, NULL) = 0"), "{r}");
    assert_nothing_left(&n);
}

#[test]
fn ctrl_c_stops_the_receivers_of_a_socket_mailbox_that_would_wait_forever() {
    let n = name("interrupt-socket");
    let mut p = Process::start(
        BIN,
        &[
            "--name",
            &n,
            "mailbox",
            "--via",
            "socket",
            "--senders",
            "1",
            "--receivers",
            "2",
            "--count",
            "100000",
        ],
    );
    // Both receivers have the mailbox open once the timeline says so, and the observer
    // reads the timeline only after its Ctrl-C handler is installed. Their own lines
    // give their pids; the lines come in any order, so read them as they come.
    let mut pids = BTreeMap::new();
    let mut started = 0;
    while started < 2 || pids.len() < 2 {
        let line = p.wait_for_line("]");
        for role in ["receiver-1", "receiver-2"] {
            if let Some(rest) = line.strip_prefix(&format!("[{role} ")) {
                let pid = rest.split(']').next().expect("a pid").to_string();
                pids.insert(role, pid);
            }
            if line.starts_with("[timeline ")
                && line.ends_with(&format!("{role} starts taking messages"))
            {
                started += 1;
            }
        }
    }
    p.signal(Signal::SIGINT);
    // finish() returns only when every process holding the output has ended: the
    // receivers, who would otherwise wait for a message nobody will send, included.
    let r = p.finish();
    r.assert_code(130);
    for pid in pids.values() {
        assert!(
            r.stdout.contains(&format!("kill({pid}, SIGTERM) = 0")),
            "{pid}:\n{r}"
        );
    }
    assert_nothing_left(&n);
}

#[test]
fn clean_removes_a_leftover_of_ours_and_refuses_what_is_not() {
    let n = name("clean");
    let names = Names::new(&n).expect("names");
    // A queue a killed run left: ours.
    let key = names.key(Purpose::Mailbox);
    let q = msgq_demo::sysv::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600).expect("msgget");
    // A regular file where the FIFO would be: not a FIFO, so not ours to remove.
    std::fs::write(names.fifo().unwrap(), b"mine").expect("a scratch file");
    // A symbolic link where the mailbox socket would be: refused as itself.
    std::os::unix::fs::symlink(names.fifo().unwrap(), names.mailbox_socket().unwrap())
        .expect("a symlink");
    let r = demo(&n, &["clean"]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: removed=1 refused=2", "{r}");
    assert!(
        msgq_demo::sysv::msgget(key, 0).is_err(),
        "the queue must be gone"
    );
    assert_eq!(
        std::fs::read(names.fifo().unwrap()).expect("the file stays"),
        b"mine"
    );
    assert!(
        std::fs::symlink_metadata(names.mailbox_socket().unwrap()).is_ok(),
        "the link stays"
    );
    std::fs::remove_file(names.mailbox_socket().unwrap()).expect("remove the link");
    std::fs::remove_file(names.fifo().unwrap()).expect("remove the file");
    let _ = q;
    assert_nothing_left(&n);
}

/// Tests that fork in this (multi-threaded) test process take turns.
static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn clean_leaves_a_queue_another_user_made_at_our_key() {
    let n = name("clean-other");
    let key = Names::new(&n).expect("names").key(Purpose::Zero);
    let _turn = FORK.lock().unwrap_or_else(|p| p.into_inner());
    // A child becomes nobody and creates a queue at our key, as another user who
    // guessed it could: keys are only numbers (svipc(7)).
    // SAFETY: the child only makes raw system calls and leaves with _exit; it runs no
    // code that could need a lock another thread of the test held at the fork.
    let child = match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            // SAFETY: raw system calls with integer arguments; nothing else runs here.
            unsafe {
                let ok = libc::syscall(libc::SYS_setresgid, 65534, 65534, 65534) == 0
                    && libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) == 0
                    && libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) >= 0;
                libc::_exit(if ok { 0 } else { 1 })
            }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
    assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
    let r = demo(&n, &["clean"]);
    let theirs = msgq_demo::sysv::msgget(key, 0).expect("their queue stays");
    // The test removes it itself: root may, and the test made it.
    msgq_demo::sysv::msgctl_rmid(theirs.id()).expect("IPC_RMID");
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: removed=0 refused=1", "{r}");
    assert!(r.stdout.contains("created by uid 65534, not by you"), "{r}");
    assert_nothing_left(&n);
}

// Korean (issue 13): explanations and hints in Korean; the system calls, errno names, the
// [role pid] tag and the summary line the same bytes as in English.

#[test]
fn lang_ko_explains_direct_in_korean_with_the_same_calls_and_summary() {
    let n = name("direct-ko");
    let args = ["--name", &n, "direct", "--senders", "2", "--count", "3"];
    let (en, r) = (
        testkit::lang::english(BIN, &args),
        testkit::lang::korean(BIN, &args),
    );
    // The sender whose signals the receiver takes first changes from run to run, and
    // its explanation `si_pid = PID: ...` reads like a call: leave those lines out.
    testkit::lang::assert_same(&en, &r, |call| call.starts_with("[receiver] si_pid = "));
    assert_eq!(
        r.summary(),
        "summary: signals=6 senders=2 from_senders=6 unknown=0"
    );
    let receiver = pid_of(&r, "receiver");
    says(
        &r,
        &format!("내 이름은 pid {receiver}입니다: 송신자(sender)는 이 pid로 나를 지목합니다"),
    );
    says(&r, &format!("] kill({receiver}, SIGRTMIN) = 0\n"));
    for role in ["sender-1", "sender-2"] {
        let pid = pid_of(&r, role);
        says(&r, &format!("{role} (pid {pid}): 시그널 3개를 보냈습니다"));
    }
    // The receiver narrates its first three signals: each names a sender by si_pid.
    let named = r
        .stdout
        .lines()
        .filter(|l| l.contains(": 커널이 알려 준 송신자는 sender-"))
        .count();
    assert_eq!(named, 3, "{r}");
    says(&r, "... 나머지 시그널은 출력 없이 진행합니다");
    assert!(!r.stdout.contains("is my name"), "{r}");
    assert_nothing_left(&n);
}

#[test]
fn lang_ko_explains_zero_in_korean_with_the_same_calls_and_summary() {
    let n = name("zero-ko");
    let args = ["--name", &n, "zero", "--count", "5"];
    let en = testkit::lang::english(BIN, &args);
    let ko = testkit::lang::korean(BIN, &args);
    en.assert_code(0);
    ko.assert_code(0);
    assert_eq!(
        ko.summary(),
        "summary: messages=5 took_before_send_returned=5 returned_early=0 qbytes_zero=EAGAIN pipe_zero=4096 mq_maxmsg_zero=EINVAL",
        "{ko}"
    );
    assert_eq!(ko.summary(), en.summary());
    // Each run gets a new queue id from the kernel: compare the calls with it as QID.
    assert_eq!(
        calls_with_queue_id(&ko),
        calls_with_queue_id(&en),
        "the system calls differ:\n{en}\n{ko}"
    );
    assert!(!testkit::lang::has_korean(&en.stdout), "{en}");
    for korean in [
        "커널은 0바이트 큐를 받아들입니다. 이제 1바이트 메시지를 보냅니다:",
        "0바이트 큐는 랑데부(rendezvous)가 아닙니다:",
        "0바이트를 요청한 파이프는 4096바이트를 담습니다: 가장 작은 파이프는 한 페이지입니다",
        "메시지 0개짜리 POSIX 큐는 아예 거절됩니다",
        "그래서 용량 0(zero capacity)인 링크는 메시지 두 개로 만듭니다",
        "[sender ",
        "수신자가 메시지 0번을 가져갔습니다: 이제 내 보내기가 돌아옵니다",
        "µs가 걸립니다: 한 번마다 메시지 두 개를 주고받고 프로세스를 두 번 깨웁니다",
    ] {
        says(&ko, korean);
    }
    // The timeline in Korean: the take of message 0 is always the first record, and
    // the return of its send the second (the receiver records before it acknowledges).
    let timeline: Vec<&str> = ko
        .stdout
        .lines()
        .filter_map(|l| {
            l.strip_prefix("[timeline ")?
                .split_once("] ")
                .map(|(_, e)| e)
        })
        .collect();
    assert_eq!(
        timeline[..2],
        [
            "#1 receiver: 메시지 0번을 가져갔습니다",
            "#2 sender: 메시지 0번 보내기가 돌아왔습니다"
        ],
        "{ko}"
    );
    // What is never translated: the calls' results with their errno names.
    says(
        &ko,
        "IPC_NOWAIT) = -1 EAGAIN (Resource temporarily unavailable)\n",
    );
    says(&ko, "= -1 EINVAL (Invalid argument)\n");
    assert!(!ko.stdout.contains("the kernel accepts a queue"), "{ko}");
    assert_nothing_left(&n);
}

/// The system calls of a run (as [`testkit::lang::calls`] gives them) with the queue's id
/// written `QID`: where `msgget` returns it, and as the first argument of a call.
fn calls_with_queue_id(r: &Run) -> Vec<String> {
    let calls = testkit::lang::calls(r);
    let id = calls
        .iter()
        .find_map(|c| {
            let rest = c.strip_prefix("[observer] msgget(")?;
            Some(rest.rsplit_once(" = ")?.1.to_string())
        })
        .unwrap_or_else(|| panic!("no msgget by the observer:\n{r}"));
    let (result, argument) = (format!(" = {id}"), format!("({id}, "));
    calls
        .into_iter()
        .map(|c| {
            let c = c.replace(&argument, "(QID, ");
            match c.strip_suffix(&result) {
                Some(call) => format!("{call} = QID"),
                None => c,
            }
        })
        .collect()
}

#[test]
fn lang_ko_map_is_korean_and_its_commands_stay_in_one_column() {
    let en = testkit::lang::english(BIN, &[] as &[&str]);
    let ko = testkit::lang::korean(BIN, &[] as &[&str]);
    for r in [&en, &ko] {
        r.assert_code(0);
        // A terminal gives a Hangul syllable two columns: the command must start at the
        // same column in every row, in both languages.
        let starts: Vec<usize> = r
            .stdout
            .lines()
            .filter_map(|l| {
                let at = l.find("passing-demo ")?;
                Some(
                    l[..at]
                        .chars()
                        .map(|c| {
                            if testkit::lang::has_korean(&c.to_string()) {
                                2
                            } else {
                                1
                            }
                        })
                        .sum(),
                )
            })
            .collect();
        assert_eq!(starts.len(), 9, "{r}");
        assert!(starts.iter().all(|&s| s == starts[0]), "{starts:?}:\n{r}");
    }
    says(&ko, "메시지 전달(message passing), 노트 001 3절");
    says(&ko, "명명: 간접, 여럿이 쓰는 메일박스");
    says(&ko, "버퍼링: 용량 0");
    assert!(!ko.stdout.contains("naming: direct"), "{ko}");
}

/// `clean` never removes a running class's mailbox: neither the socket somebody is bound
/// to nor the FIFO somebody has open (attack review: it used to unlink both, and every
/// sender of the live run then failed with ENOENT).
#[test]
fn clean_leaves_a_live_mailbox_alone() {
    for via in ["socket", "fifo"] {
        let n = name(&format!("live-{via}-cleaned"));
        let mut live = Process::start(
            BIN,
            &[
                "--lang",
                "en",
                "--name",
                &n,
                "mailbox",
                "--via",
                via,
                "--senders",
                "1",
                "--receivers",
                "1",
                "--count",
                "6",
                "--rate",
                "4",
            ],
        );
        live.wait_for_line("receiver-1 starts taking messages");
        let c = demo(&n, &["clean"]);
        assert!(
            c.stdout.contains("a running process still uses it"),
            "{via}: {c}"
        );
        assert!(
            c.stdout.contains("summary: removed=0 refused=1"),
            "{via}: {c}"
        );
        let r = live.finish();
        r.assert_code(0);
        assert_nothing_left(&n);
    }
}
