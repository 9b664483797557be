//! msgq-demo as a student runs it: the built binary, real queues, two processes.
//!
//! Every test uses its own key (or POSIX name) made from the test process's pid, checks
//! the summary lines, and checks afterwards that no queue is left.

use std::time::Duration;

use msgq_demo::sysv;
use nix::sys::signal::Signal;
use testkit::{
    Closed, Process, Scratch, as_nobody, lines_of, number_after, perfect, run, run_closed,
    wait_until_gone,
};

const BIN: &str = env!("CARGO_BIN_EXE_msgq-demo");

fn msgq_demo(args: &[&str]) -> testkit::Run {
    run(BIN, args, b"")
}

/// A System V key no other test (or other run of the suite) uses.
fn key_value(test: u32) -> sysv::Key {
    (0x4d00_0000 | ((std::process::id() & 0xffff) << 8) | test) as sysv::Key
}

/// The same key, as the command line takes it.
fn key(test: u32) -> String {
    format!("{:#x}", key_value(test))
}

fn queue_exists(test: u32) -> bool {
    sysv::msgget(key_value(test), 0).is_ok()
}

/// A POSIX queue name no other test uses.
fn mq_name(test: &str) -> String {
    format!("/ipc-demos-test-{}-{test}", std::process::id())
}

fn mq_exists(name: &str) -> bool {
    use nix::mqueue::{MQ_OFlag, mq_open};
    mq_open(
        name,
        MQ_OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
        None,
    )
    .is_ok()
}

#[test]
fn both_roles_in_one_terminal_and_the_queue_is_removed() {
    let k = key(1);
    let r = msgq_demo(&["--key", &k]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(3, 64));
    assert!(r.stdout.contains("IPC_CREAT|IPC_EXCL|0600) = "), "{r}");
    assert!(r.stdout.contains("IPC_RMID, NULL) = 0"), "{r}");
    assert!(!queue_exists(1));
}

#[test]
fn over_a_hundred_thousand_messages_of_three_types_arrive_in_order_per_type() {
    let k = key(2);
    let r = msgq_demo(&[
        "--key", &k, "--types", "1,2,3", "--count", "34000", "--quiet",
    ]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(102_000, 64));
    assert!(!queue_exists(2));
}

#[test]
fn the_queue_outlives_the_producer_and_consumers_choose_by_type() {
    let k = key(3);
    let producer = msgq_demo(&["producer", "--key", &k, "--types", "1,2,3", "--count", "50"]);
    producer.assert_code(0);
    assert!(
        producer
            .stdout
            .contains("stays after I exit; see `ipcs -q`"),
        "{producer}"
    );
    assert!(queue_exists(3), "the queue must outlive its producer");

    let status = msgq_demo(&["status", "--key", &k]);
    status.assert_code(0);
    assert!(
        status
            .summary()
            .starts_with("summary: messages=150 bytes=12000 capacity="),
        "{status}"
    );
    let sender = status
        .summary()
        .split("last_sender=")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap();
    assert!(sender.parse::<i32>().unwrap() > 0, "{status}");

    // Type 2 only: the other 100 messages stay for someone else.
    let two = msgq_demo(&[
        "consumer", "--key", &k, "--types", "1,2,3", "--count", "50", "--type", "2",
    ]);
    two.assert_code(0);
    assert_eq!(two.summary(), perfect(50, 64));
    assert!(
        two.stdout
            .contains("100 messages are left for other consumers"),
        "{two}"
    );
    assert!(queue_exists(3));

    // -3: the lowest type up to 3 first, so all of type 1 before any of type 3.
    let rest = msgq_demo(&[
        "consumer", "--key", &k, "--types", "1,3", "--count", "50", "--type", "-3",
    ]);
    rest.assert_code(0);
    assert_eq!(rest.summary(), perfect(100, 64));
    let types: Vec<&str> = rest
        .stdout
        .lines()
        .filter_map(|l| l.split("(mtype=").nth(1))
        .collect();
    assert_eq!(types.first(), Some(&"1)"), "{rest}");
    assert!(
        !queue_exists(3),
        "the last consumer removes the empty queue"
    );
}

#[test]
fn a_key_from_ftok_on_a_shared_path_joins_the_two_sides() {
    let dir = Scratch::new("msgq-ftok");
    let path = dir.arg("");
    let producer = msgq_demo(&["producer", "--path", &path, "--count", "5"]);
    producer.assert_code(0);
    assert!(producer.stdout.contains("ftok("), "{producer}");
    let consumer = msgq_demo(&["consumer", "--path", &path, "--count", "5"]);
    consumer.assert_code(0);
    assert_eq!(consumer.summary(), perfect(5, 64));
}

#[test]
fn a_python_peer_can_send_to_the_raw_consumer() {
    // The layout in the book: a C long mtype, then the bytes. Python's ctypes sends it.
    let k = key(5);
    let peer = format!(
        r#"
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
class Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 5)]
qid = libc.msgget({key}, 0o1600)   # IPC_CREAT | 0600
assert qid >= 0, ctypes.get_errno()
assert libc.msgsnd(qid, ctypes.byref(Msg(7, b"hello")), 5, 0) == 0
"#,
        key = key_value(5)
    );
    let python = std::process::Command::new("python3")
        .args(["-c", &peer])
        .output()
        .expect("python3");
    assert!(
        python.status.success(),
        "{}",
        String::from_utf8_lossy(&python.stderr)
    );
    let r = msgq_demo(&["consumer", "--raw", "--key", &k, "--count", "1"]);
    r.assert_code(0);
    assert!(
        r.stdout.lines().any(|l| l == "type=7 bytes=5: hello"),
        "{r}"
    );
    assert_eq!(r.summary(), "summary: messages=1 bytes=5");
    assert!(!queue_exists(5));
}

#[test]
fn a_left_over_queue_is_reported_and_clean_removes_it() {
    let k = key(6);
    let leftover =
        sysv::msgget(key_value(6), libc::IPC_CREAT | libc::IPC_EXCL | 0o600).expect("make a queue");
    let r = msgq_demo(&["producer", "--key", &k]);
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("failed: EEXIST (File exists); hint: a queue with this key exists already"),
        "{r}"
    );
    let clean = msgq_demo(&["clean", "--key", &k, "--name", &mq_name("unused")]);
    clean.assert_code(0);
    assert!(
        clean
            .stdout
            .contains(&format!("msgctl({}, IPC_RMID, NULL) = 0", leftover.id())),
        "{clean}"
    );
    assert!(!queue_exists(6));
}

#[test]
fn a_full_queue_with_nowait_is_eagain_and_nothing_is_left() {
    let k = key(7);
    let r = msgq_demo(&[
        "producer",
        "--key",
        &k,
        "--capacity",
        "1024",
        "--nowait",
        "--count",
        "100",
    ]);
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("failed: EAGAIN (Resource temporarily unavailable); hint: the queue is full"),
        "{r}"
    );
    assert!(!queue_exists(7));
}

/// A producer of `count` messages (and `extra` options) for a queue of 1024 bytes, which
/// 12 messages fill: returned once it says that it waits for a consumer.
fn producer_at_a_full_queue(k: &str, count: u64, extra: &[&str]) -> Process {
    let count = count.to_string();
    let mut args = vec![
        "producer",
        "--key",
        k,
        "--capacity",
        "1024",
        "--count",
        &count,
    ];
    args.extend(extra);
    let mut producer = Process::start(BIN, &args);
    producer.wait_for_line("the queue is full (1024 bytes): I wait for a consumer");
    producer
}

#[test]
fn a_full_queue_makes_the_producer_wait_for_the_consumer() {
    let k = key(8);
    let producer = producer_at_a_full_queue(&k, 1000, &[]);
    let consumer = msgq_demo(&["consumer", "--key", &k, "--count", "1000", "--quiet"]);
    consumer.assert_code(0);
    assert_eq!(consumer.summary(), perfect(1000, 64));
    producer.finish().assert_code(0);
    assert!(!queue_exists(8));
}

#[test]
fn a_producer_in_front_of_a_full_queue_blocks_in_msgsnd_and_says_so_first() {
    // --all: every call is narrated, the one that blocks too. 12 messages of 80 bytes fit
    // in 1024 bytes; the 13th waits for the consumer.
    let k = key(35);
    let producer = producer_at_a_full_queue(&k, 20, &["--all"]);
    let consumer = msgq_demo(&["consumer", "--key", &k, "--count", "20", "--quiet"]);
    consumer.assert_code(0);
    let r = producer.finish();
    r.assert_code(0);
    let mine = lines_of(&r, "producer");
    let sends: Vec<&&str> = mine.iter().filter(|l| l.starts_with("msgsnd(")).collect();
    // A blocking msgsnd (flags 0), never IPC_NOWAIT: the wait is the call itself.
    assert!(sends.iter().all(|l| l.contains(", 80, 0)")), "{r}");
    assert!(!r.stdout.contains("IPC_NOWAIT"), "{r}");
    // Announced before it blocks, then why it waits, then its result.
    let waiting = mine
        .iter()
        .position(|l| l.starts_with("the queue is full (1024 bytes): I wait"))
        .expect("the waiting line");
    assert!(
        mine[waiting - 1].starts_with("msgsnd(") && mine[waiting - 1].ends_with(", 80, 0) ..."),
        "{r}"
    );
    assert!(
        mine[waiting + 1].starts_with("msgsnd(") && mine[waiting + 1].ends_with(", 80, 0) = 0"),
        "{r}"
    );
    // 20 sends, each announced and answered.
    assert_eq!(sends.len(), 40, "{r}");
    assert!(!queue_exists(35));
}

#[test]
fn a_consumer_without_a_queue_says_to_start_the_producer() {
    let r = msgq_demo(&["consumer", "--key", &key(9)]);
    r.assert_code(1);
    assert!(r.stderr.contains("ENOENT"), "{r}");
    assert!(r.stderr.contains("start the producer first"), "{r}");
}

#[test]
fn a_message_over_msgmax_is_refused_with_the_limit() {
    let msgmax: usize = std::fs::read_to_string("/proc/sys/kernel/msgmax")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let too_big = (msgmax - 15).to_string();
    let r = msgq_demo(&["producer", "--key", &key(10), "--size", &too_big]);
    r.assert_code(2);
    assert!(r.stderr.contains("is over msgmax"), "{r}");
    assert!(r.stderr.contains("/proc/sys/kernel/msgmax"), "{r}");
    assert!(!queue_exists(10));
}

#[test]
fn a_type_that_matches_nothing_is_a_usage_error() {
    let r = msgq_demo(&[
        "consumer",
        "--key",
        &key(11),
        "--types",
        "1,2",
        "--type",
        "5",
    ]);
    r.assert_code(2);
    assert!(
        r.stderr
            .contains("--type 5 matches none of the types [1, 2]"),
        "{r}"
    );
}

#[test]
fn mode_0666_works_but_warns() {
    let k = key(12);
    let r = msgq_demo(&["--key", &k, "--mode", "0666"]);
    r.assert_code(0);
    assert!(r.stdout.contains("unsafe on a shared one"), "{r}");
}

#[test]
fn a_posix_queue_over_the_users_rlimit_msgqueue_is_refused_with_a_hint() {
    // RLIMIT_MSGQUEUE caps the bytes all of a user's queues may hold; prlimit(1) lowers
    // it for one run, to less than the lesson's 8 messages of 80 bytes need.
    let name = mq_name("rlimit");
    let args = ["--msgqueue=1000", BIN, "posix", "--name", &name];
    let r = run("prlimit", &args, b"");
    r.assert_code(1);
    assert!(r.stderr.contains("failed: EMFILE"), "{r}");
    assert!(
        r.stderr.contains("RLIMIT_MSGQUEUE allows (ulimit -q"),
        "{r}"
    );
    assert!(!mq_exists(&name), "{name} was left behind");
}

fn posix_run(test: &str, full: &str, expect: &str) -> testkit::Run {
    let name = mq_name(test);
    let r = msgq_demo(&["posix", "--name", &name, "--full", full, "--count", "12"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(12, 64));
    assert!(r.stdout.contains(expect), "{r}");
    assert!(
        r.stdout
            .contains("the notes arrived in the order of their priorities: [9, 5, 1]"),
        "{r}"
    );
    assert!(!mq_exists(&name), "{name} was left behind");
    r
}

#[test]
fn posix_a_full_queue_with_o_nonblock_returns_eagain_at_once() {
    posix_run(
        "nonblock",
        "nonblock",
        "= -1 EAGAIN (Resource temporarily unavailable)",
    );
}

#[test]
fn posix_a_full_queue_with_mq_timedsend_gives_up_with_etimedout() {
    posix_run("timeout", "timeout", "mq_timedsend(");
}

#[test]
fn posix_a_full_queue_makes_mq_send_wait() {
    let r = posix_run("wait", "wait", "and this mq_send waits for room");
    // The send to the full queue, after the consumer was let go: announced before it
    // blocks, and its next line (but for the one that says why it waits) is its result.
    let mine = lines_of(&r, "producer");
    let said = mine
        .iter()
        .position(|l| l.ends_with("and this mq_send waits for room"))
        .expect("the explanation");
    let blocked = said
        + mine[said..]
            .iter()
            .position(|l| l.starts_with("mq_send(3, buf, 80, 0) ..."))
            .unwrap_or_else(|| panic!("no blocking mq_send after it:\n{r}"));
    let next = mine[blocked + 1..]
        .iter()
        .find(|l| !l.starts_with("the queue is full: I wait for the consumer"))
        .copied();
    assert_eq!(next, Some("mq_send(3, buf, 80, 0) = 0"), "{r}");
}

#[test]
fn posix_a_full_queue_makes_mq_send_wait_even_for_a_slow_consumer() {
    // Enough messages that the sender waits many times; the consumer is the bottleneck.
    let name = mq_name("slow");
    let r = msgq_demo(&["posix", "--name", &name, "--count", "20000", "--quiet"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(20000, 64));
    assert!(!mq_exists(&name), "{name} was left behind");
}

#[test]
fn posix_limits_are_usage_errors() {
    msgq_demo(&["posix", "--name", &mq_name("big"), "--size", "1M"]).assert_code(2);
    msgq_demo(&["posix", "--name", &mq_name("many"), "--capacity", "100000"]).assert_code(2);
    msgq_demo(&["posix", "--name", "no-slash"]).assert_code(2);
}

#[test]
fn bad_usage_is_exit_2() {
    msgq_demo(&["--types", "0"]).assert_code(2);
    msgq_demo(&["--types", "1,1"]).assert_code(2);
    msgq_demo(&["--key", "0"]).assert_code(2);
    msgq_demo(&["--mode", "999"]).assert_code(2);
    msgq_demo(&["--frobnicate"]).assert_code(2);
}

#[test]
fn help_explains_the_mechanism_with_an_example() {
    let r = msgq_demo(&["--help"]);
    r.assert_code(0);
    assert!(
        r.stdout
            .contains("Message queues: the kernel keeps whole messages"),
        "{r}"
    );
    for role in ["producer", "consumer", "status", "clean", "posix"] {
        let r = msgq_demo(&[role, "--help"]);
        r.assert_code(0);
        assert!(
            r.stdout.contains("Example: cargo run -p msgq-demo -- "),
            "{role}: {r}"
        );
    }
}

/// Removes the System V queue of test `test` if one is left (after a failure, or one a
/// test made on purpose as another user).
fn remove_queue(test: u32) {
    if let Ok(q) = sysv::msgget(key_value(test), 0) {
        let _ = q.remove();
    }
}

// ---- dead peers (the other side killed with SIGKILL, which nothing can catch)

#[test]
fn a_consumer_notices_that_the_producer_died_and_the_queue_will_not_fill_again() {
    let k = key(20);
    let producer = producer_at_a_full_queue(&k, 1000, &[]);
    let producer_pid = producer.pid().as_raw();
    producer.signal(Signal::SIGKILL);
    assert_eq!(producer.finish().code, None);
    // 12 messages are in the queue, 988 will never come.
    let consumer = Process::start(BIN, &["consumer", "--key", &k, "--count", "1000"]);
    let r = consumer.finish_within(Duration::from_secs(10));
    remove_queue(20);
    r.assert_code(1);
    assert!(
        r.stderr.contains(&format!(
            "kill({producer_pid}, 0)   (is the producer alive?) failed: ESRCH"
        )),
        "{r}"
    );
    assert!(
        r.stderr
            .contains("the messages it did not send will never come"),
        "{r}"
    );
    assert!(
        !queue_exists(20),
        "the consumer removes the queue it gave up on"
    );
}

#[test]
fn a_producer_notices_that_the_consumer_died_in_front_of_a_full_queue() {
    let k = key(21);
    let producer = producer_at_a_full_queue(&k, 1000, &[]);
    // A consumer that takes one message and is then killed: msg_lrpid names it.
    let mut consumer = Process::start(BIN, &["consumer", "--key", &k, "--count", "1000", "--step"]);
    loop {
        consumer.send(b"\n");
        let line = consumer.wait_for_line("] ");
        if line.contains("msgrcv(") && line.contains(" = 80 ") {
            break;
        }
    }
    let consumer_pid = consumer.pid().as_raw();
    consumer.signal(Signal::SIGKILL);
    assert_eq!(consumer.finish().code, None);
    let r = producer.finish_within(Duration::from_secs(10));
    remove_queue(21);
    r.assert_code(1);
    assert!(
        r.stderr.contains(&format!(
            "kill({consumer_pid}, 0)   (is the consumer alive?) failed: ESRCH"
        )),
        "{r}"
    );
    assert!(r.stderr.contains("nobody is left to make room"), "{r}");
    assert!(
        !queue_exists(21),
        "the producer removes the queue it failed to fill"
    );
}

#[test]
fn in_one_terminal_the_producer_notices_a_killed_consumer() {
    let k = key(22);
    let mut both = Process::start(BIN, &["--key", &k, "--count", "1000000"]);
    let line = both.wait_for_line("(in the parent: the child's pid)");
    let child = number_after(&line, "fork() =");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), Signal::SIGKILL).expect("kill");
    let r = both.finish_within(Duration::from_secs(20));
    remove_queue(22);
    r.assert_code(1);
    assert!(
        r.stderr.contains(&format!(
            "kill({child}, 0)   (is the consumer alive?) failed: ESRCH"
        )),
        "{r}"
    );
    assert!(!queue_exists(22));
}

#[test]
fn posix_the_sender_notices_a_killed_consumer() {
    let name = mq_name("dead-consumer");
    let mut both = Process::start(BIN, &["posix", "--name", &name, "--count", "1000000"]);
    let lines = both.wait_for_all(&["(in the parent: the child's pid)", "priority 9:"]);
    let child = number_after(&lines[0], "fork() =");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), Signal::SIGKILL).expect("kill");
    let r = both.finish_within(Duration::from_secs(20));
    r.assert_code(1);
    assert!(
        r.stderr.contains(&format!(
            "kill({child}, 0)   (is the consumer alive?) failed: ESRCH"
        )),
        "{r}"
    );
    assert!(!mq_exists(&name), "{name} was left behind");
}

// ---- orphans: the forked consumer dies with its parent

/// Starts the one-terminal demo with `args`, waits until the child runs and the parent
/// has printed `after` (a call it makes once its Ctrl-C handler is in place), signals the
/// parent, and checks that the child ends too.
fn the_consumer_dies_with_its_parent(args: &[&str], after: &str, signal: Signal) {
    let mut parent = Process::start(BIN, args);
    let after = format!("[producer {}] {after}", parent.pid());
    let lines = parent.wait_for_all(&[
        "(in the parent: the child's pid)",
        "prctl(PR_SET_PDEATHSIG, SIGKILL) = 0",
        &after,
    ]);
    let child = number_after(&lines[0], "fork() =");
    parent.signal(signal);
    let gone = wait_until_gone(child, Duration::from_secs(5));
    if !gone {
        // Ours, left running by the bug this test is about.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), Signal::SIGKILL);
    }
    assert!(
        gone,
        "the consumer {child} outlived its parent ({signal}) by 5 s"
    );
    parent.finish();
}

#[test]
fn the_sysv_consumer_dies_with_a_killed_parent() {
    let k = key(23);
    the_consumer_dies_with_its_parent(
        &["--key", &k, "--count", "1000000"],
        "msgsnd(",
        Signal::SIGKILL,
    );
    remove_queue(23);
}

#[test]
fn the_posix_consumer_dies_with_a_killed_parent() {
    let name = mq_name("orphan-kill");
    the_consumer_dies_with_its_parent(
        &["posix", "--name", &name, "--count", "1000000"],
        "close(",
        Signal::SIGKILL,
    );
    let _ = nix::mqueue::mq_unlink(name.as_str());
}

#[test]
fn the_posix_consumer_dies_with_an_interrupted_parent() {
    let name = mq_name("orphan-int");
    the_consumer_dies_with_its_parent(
        &["posix", "--name", &name, "--count", "1000000"],
        "close(",
        Signal::SIGINT,
    );
    assert!(!mq_exists(&name), "{name} was left behind after Ctrl-C");
}

#[test]
fn the_posix_consumer_dies_with_a_terminated_parent() {
    let name = mq_name("orphan-term");
    the_consumer_dies_with_its_parent(
        &["posix", "--name", &name, "--count", "1000000"],
        "close(",
        Signal::SIGTERM,
    );
    assert!(!mq_exists(&name), "{name} was left behind after SIGTERM");
}

// ---- capacity

#[test]
fn a_capacity_smaller_than_one_message_is_refused() {
    let r = msgq_demo(&["producer", "--key", &key(24), "--capacity", "1"]);
    r.assert_code(2);
    assert!(
        r.stderr
            .contains("could not hold even one message of 80 bytes"),
        "{r}"
    );
    let r = msgq_demo(&["producer", "--key", &key(24), "--capacity", "79"]);
    r.assert_code(2);
    assert!(!queue_exists(24));
    // Exactly one message fits: the producer then waits for each consumer's take.
    let mut producer = Process::start(
        BIN,
        &[
            "producer",
            "--key",
            &key(24),
            "--capacity",
            "80",
            "--count",
            "20",
        ],
    );
    producer.wait_for_line("the queue is full (80 bytes)");
    let consumer = msgq_demo(&["consumer", "--key", &key(24), "--count", "20", "--quiet"]);
    consumer.assert_code(0);
    assert_eq!(consumer.summary(), perfect(20, 64));
    producer.finish().assert_code(0);
    assert!(!queue_exists(24));
}

#[test]
fn a_capacity_the_kernel_would_store_as_zero_is_refused() {
    // 2^32: msgctl(IPC_SET) takes it and keeps msg_qbytes = 0, a queue that can hold
    // nothing.
    let r = msgq_demo(&["producer", "--key", &key(25), "--capacity", "4294967296"]);
    r.assert_code(2);
    assert!(!queue_exists(25));
}

// ---- another user's queue at our key

#[test]
fn a_queue_another_user_created_at_our_key_is_refused() {
    let Some(mut nobody) = as_nobody(BIN) else {
        return;
    };
    let k = key(26);
    // As nobody, a producer with mode 0666 that leaves three messages: root could read
    // and remove them, and the consumer used to count them as its own (ok=3).
    let out = nobody
        .args(["producer", "--key", &k, "--mode", "0666", "--quiet"])
        .output()
        .expect("run the producer as nobody");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let consumer = msgq_demo(&["consumer", "--key", &k]);
    let raw = msgq_demo(&["consumer", "--raw", "--key", &k]);
    let clean = msgq_demo(&["clean", "--key", &k, "--name", &mq_name("unused-26")]);
    let still_there = queue_exists(26);
    remove_queue(26);
    consumer.assert_code(1);
    assert!(
        consumer
            .stderr
            .contains("was created by uid 65534 and is owned by uid 65534, not by you"),
        "{consumer}"
    );
    assert!(
        consumer
            .stderr
            .contains("never reads or removes another user's queue"),
        "{consumer}"
    );
    raw.assert_code(1);
    assert!(raw.stderr.contains("was created by uid 65534"), "{raw}");
    clean.assert_code(1);
    assert_eq!(clean.summary(), "summary: removed=0");
    assert!(clean.stdout.contains("refused: "), "{clean}");
    assert!(still_there, "the stranger's queue must stay");
}

// ---- a queue removed under a running role

#[test]
fn a_queue_removed_under_a_waiting_producer_says_so() {
    let k = key(27);
    let producer = producer_at_a_full_queue(&k, 1000, &[]);
    sysv::msgget(key_value(27), 0)
        .expect("the queue")
        .remove()
        .expect("IPC_RMID");
    let r = producer.finish_within(Duration::from_secs(10));
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("hint: the queue was removed (ipcrm or clean) while we used it"),
        "{r}"
    );
}

#[test]
fn a_queue_removed_under_a_waiting_consumer_says_so() {
    let k = key(28);
    // An empty queue that nobody has sent to yet: the consumer waits for a producer.
    let q = sysv::msgget(key_value(28), libc::IPC_CREAT | libc::IPC_EXCL | 0o600)
        .expect("make a queue");
    let mut consumer = Process::start(BIN, &["consumer", "--key", &k]);
    consumer.wait_for_line("no message for me yet: I wait for the producer");
    q.remove().expect("IPC_RMID");
    let r = consumer.finish_within(Duration::from_secs(10));
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("hint: the queue was removed (ipcrm or clean) while we used it"),
        "{r}"
    );
}

// ---- interrupted roles exit 130, and remove what they own

#[test]
fn an_interrupted_consumer_exits_130() {
    let k = key(29);
    let q = sysv::msgget(key_value(29), libc::IPC_CREAT | libc::IPC_EXCL | 0o600)
        .expect("make a queue");
    let mut consumer = Process::start(BIN, &["consumer", "--key", &k]);
    consumer.wait_for_line("no message for me yet");
    consumer.signal(Signal::SIGINT);
    let r = consumer.finish();
    let _ = q.remove();
    r.assert_code(130);
}

#[test]
fn a_producer_interrupted_before_it_owns_anything_exits_130() {
    // --step: the producer waits for Enter before its first call, owning nothing yet.
    let k = key(30);
    let mut producer = Process::start(BIN, &["producer", "--key", &k, "--step"]);
    producer.wait_for_line("next: ");
    producer.signal(Signal::SIGTERM);
    let r = producer.finish();
    r.assert_code(130);
    assert!(
        r.stderr.contains("msgq-demo: interrupted by SIGTERM"),
        "{r}"
    );
    assert!(!queue_exists(30));
}

// ---- a closed standard error

#[test]
fn an_error_with_a_closed_standard_error_still_exits_1() {
    let r = run_closed(BIN, &["consumer", "--key", &key(31)], Closed::Stderr);
    r.assert_code(1);
}

// ---- clean

#[test]
fn clean_counts_both_queues_it_removed_and_speaks_as_clean() {
    let k = key(32);
    let name = mq_name("clean-both");
    let _q = sysv::msgget(key_value(32), libc::IPC_CREAT | libc::IPC_EXCL | 0o600)
        .expect("make a queue");
    let mq = nix::mqueue::mq_open(
        name.as_str(),
        nix::mqueue::MQ_OFlag::O_CREAT
            | nix::mqueue::MQ_OFlag::O_EXCL
            | nix::mqueue::MQ_OFlag::O_RDWR,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        None,
    )
    .expect("make a POSIX queue");
    nix::mqueue::mq_close(mq).expect("mq_close");
    let r = msgq_demo(&["clean", "--key", &k, "--name", &name]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: removed=2");
    assert!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with('['))
            .all(|l| l.starts_with("[clean ")),
        "{r}"
    );
    assert!(!queue_exists(32));
    assert!(!mq_exists(&name));
    // Nothing left: nothing removed.
    let again = msgq_demo(&["clean", "--key", &k, "--name", &name]);
    again.assert_code(0);
    assert_eq!(again.summary(), "summary: removed=0");
}

#[test]
fn clean_leaves_another_users_posix_queue() {
    let name = mq_name("clean-stranger");
    let mq = nix::mqueue::mq_open(
        name.as_str(),
        nix::mqueue::MQ_OFlag::O_CREAT
            | nix::mqueue::MQ_OFlag::O_EXCL
            | nix::mqueue::MQ_OFlag::O_RDWR,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        None,
    )
    .expect("make a POSIX queue");
    // Give it to nobody, as if nobody had made it (root may; anyone else skips).
    use std::os::fd::AsFd;
    if nix::unistd::fchown(
        mq.as_fd(),
        Some(nix::unistd::Uid::from_raw(testkit::NOBODY)),
        None,
    )
    .is_err()
    {
        let _ = nix::mqueue::mq_unlink(name.as_str());
        println!("skipped: cannot give a queue to another user here");
        return;
    }
    nix::mqueue::mq_close(mq).expect("mq_close");
    let r = msgq_demo(&["clean", "--key", &key(33), "--name", &name]);
    let still_there = mq_exists(&name);
    let _ = nix::mqueue::mq_unlink(name.as_str());
    r.assert_code(1);
    assert_eq!(r.summary(), "summary: removed=0");
    assert!(
        r.stderr.contains("it belongs to uid 65534, not to you"),
        "{r}"
    );
    assert!(still_there, "the stranger's queue must stay");
}

#[test]
fn clean_leaves_a_queue_in_use() {
    let k = key(34);
    let producer = producer_at_a_full_queue(&k, 1000, &[]);
    let r = msgq_demo(&["clean", "--key", &k, "--name", &mq_name("unused-34")]);
    let still_there = queue_exists(34);
    producer.signal(Signal::SIGINT);
    producer.finish().assert_code(130);
    r.assert_code(1);
    assert!(
        r.stderr.contains("last sent to it and is still running"),
        "{r}"
    );
    assert!(still_there, "a running producer's queue must stay");
    assert!(!queue_exists(34), "Ctrl-C removes the producer's queue");
}

// ---- Korean (issue 13): explanations and hints in Korean; the system calls, errno
// names, [role pid] tags and summary lines the same as in English.

use testkit::lang::{assert_locale_picks_korean, has_korean, run_in, says};
use testkit::same_in_korean_as;

/// A call line with the queue's identifier, which the kernel gives anew each run,
/// replaced by `ID` (in `msgget(...) = ID` and as the first argument of the others).
fn same_id(call: &str) -> String {
    if call.contains("] msgget(") {
        if let Some((call, _)) = call.rsplit_once(" = ") {
            return format!("{call} = ID");
        }
    }
    for name in ["msgsnd(", "msgrcv(", "msgctl("] {
        if let Some((before, after)) = call.split_once(name) {
            if let Some((_, rest)) = after.split_once(',') {
                return format!("{before}{name}ID,{rest}");
            }
        }
    }
    call.to_string()
}

#[test]
fn lang_ko_explains_the_default_run_in_korean_with_the_same_calls_and_summary() {
    let k = key(40);
    let r = same_in_korean_as(BIN, &["--key", &k], 0, same_id);
    assert_eq!(r.summary(), perfect(3, 64));
    assert!(
        r.stdout
            .contains("msgsnd 호출은 필요한 만큼 얼마든지 기다립니다"),
        "{r}"
    );
    assert!(r.stdout.contains("] msgrcv("), "{r}");
    assert!(!r.stdout.contains("waits for as long as it takes"), "{r}");
    assert!(!queue_exists(40));
}

#[test]
fn lang_ko_producer_status_consumers_and_clean_keep_their_summaries() {
    let k = key(41);
    let ko = |args: &[&str]| {
        let mut all = vec!["--lang", "ko"];
        all.extend(args);
        msgq_demo(&all)
    };
    let producer = ko(&["producer", "--key", &k, "--types", "1,2", "--count", "5"]);
    producer.assert_code(0);
    assert!(
        producer
            .stdout
            .contains("는 내가 종료한 뒤에도 남습니다. `ipcs -q`로 확인하세요"),
        "{producer}"
    );
    let status = ko(&["status", "--key", &k]);
    status.assert_code(0);
    assert!(
        status
            .summary()
            .starts_with("summary: messages=10 bytes=800 capacity="),
        "{status}"
    );
    assert!(status.stdout.contains("메시지 10개,"), "{status}");
    let two = ko(&[
        "consumer", "--key", &k, "--types", "1,2", "--count", "5", "--type", "2",
    ]);
    two.assert_code(0);
    assert_eq!(two.summary(), perfect(5, 64));
    assert!(
        two.stdout
            .contains("메시지 5개가 다른 소비자를 위해 남아 있습니다"),
        "{two}"
    );
    let raw = ko(&[
        "consumer", "--raw", "--key", &k, "--count", "5", "--type", "1",
    ]);
    raw.assert_code(0);
    assert_eq!(raw.summary(), "summary: messages=5 bytes=400");
    assert!(has_korean(&raw.stdout), "{raw}");
    assert!(
        !queue_exists(41),
        "the last consumer removes the empty queue"
    );
    let clean = ko(&["clean", "--key", &k, "--name", &mq_name("ko-clean")]);
    clean.assert_code(0);
    assert_eq!(clean.summary(), "summary: removed=0");
    assert!(
        clean
            .stdout
            .contains("이 키의 System V 큐가 없습니다: 지울 것이 없습니다"),
        "{clean}"
    );
}

#[test]
fn lang_ko_explains_posix_in_korean_with_the_same_calls_and_summary() {
    let name = mq_name("ko-posix");
    let r = same_in_korean_as(
        BIN,
        &[
            "posix", "--name", &name, "--count", "12", "--full", "nonblock",
        ],
        0,
        same_id,
    );
    assert_eq!(r.summary(), perfect(12, 64));
    assert!(
        r.stdout
            .contains("메모들은 우선순위 순서대로 도착했습니다: [9, 5, 1]"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("EAGAIN: 곧바로 돌아옵니다: 큐가 가득 찼습니다"),
        "{r}"
    );
    assert!(!mq_exists(&name), "{name} was left behind");
}

#[test]
fn lang_ko_gives_errors_and_hints_in_korean_with_the_same_call_and_errno() {
    let r = same_in_korean_as(BIN, &["consumer", "--key", &key(42)], 1, same_id);
    assert!(
        r.stderr.contains(
            "실패: ENOENT (No such file or directory); 힌트: 이 키의 큐가 없습니다: 생산자를 (같은 --key로) 먼저 시작하세요"
        ),
        "{r}"
    );
}

#[test]
fn a_korean_locale_alone_picks_korean_and_lang_en_overrides_it() {
    let k = key(43);
    let korean = assert_locale_picks_korean(
        BIN,
        &["--key", &k],
        "호출은 필요한 만큼 얼마든지 기다립니다",
    );
    assert_eq!(korean.summary(), perfect(3, 64));
    let english = run_in(
        &["LANG=ko_KR.UTF-8"],
        BIN,
        &["--lang", "en", "--key", &k],
        b"",
    );
    english.assert_code(0);
    assert!(!has_korean(&english.stdout), "{english}");
    says(&english, "msgsnd waits for as long as it takes");
    assert_eq!(english.summary(), korean.summary());
    assert!(!queue_exists(43));
}

/// One queue both ways, two clients in their own processes at once (TLPI 46.7): each
/// takes only the replies typed by its own pid, all of them, in order.
#[test]
fn two_clients_on_one_queue_get_only_their_own_replies() {
    let k = key(44);
    let mut server = Process::start(BIN, &["server", "--key", &k, "--clients", "2"]);
    server.wait_for_line("ready: start 2 clients");
    let args = ["client", "--key", &k, "--count", "300"];
    let (a, b) = (Process::start(BIN, &args), Process::start(BIN, &args));
    let (a_pid, b_pid) = (a.pid(), b.pid());
    let (a, b) = (a.finish(), b.finish());
    for (r, pid) in [(&a, a_pid), (&b, b_pid)] {
        r.assert_code(0);
        assert_eq!(r.summary(), perfect(300, 64), "{r}");
        assert!(
            r.stdout.contains(&format!(
                "300 replies were addressed to me (pid {pid}), 0 to another client"
            )),
            "{r}"
        );
        // The client receives with msgtyp = its pid, and the kernel hands it its type.
        assert!(
            r.stdout
                .contains(&format!(", {pid}, 0) = 88   (mtype={pid})")),
            "{r}"
        );
    }
    let server = server.finish();
    server.assert_code(0);
    assert_eq!(
        server.summary(),
        "summary: clients=2 requests=600 replies=600 refused=0"
    );
    assert!(!queue_exists(44));
}

#[test]
fn two_way_in_one_terminal_serves_its_forked_clients_and_removes_the_queue() {
    let k = key(45);
    let r = msgq_demo(&["two-way", "--key", &k, "--clients", "3", "--count", "50"]);
    r.assert_code(0);
    let summaries: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("summary:"))
        .collect();
    assert_eq!(summaries.len(), 4, "{r}");
    assert_eq!(
        summaries.iter().filter(|l| **l == perfect(50, 64)).count(),
        3,
        "{r}"
    );
    assert!(
        r.stdout
            .contains("summary: clients=3 requests=150 replies=150 refused=0"),
        "{r}"
    );
    assert!(!queue_exists(45));
}

#[test]
fn a_server_whose_client_is_killed_mid_conversation_says_so_and_removes_the_queue() {
    let k = key(46);
    let mut server = Process::start(BIN, &["server", "--key", &k]);
    server.wait_for_line("ready:");
    let mut client = Process::start(BIN, &["client", "--key", &k, "--count", "100000000"]);
    client.wait_for_line("(mtype=");
    client.signal(Signal::SIGKILL);
    let client = client.finish();
    assert_eq!(client.code, None);
    let server = server.finish_within(Duration::from_secs(5));
    server.assert_code(1);
    assert!(
        server.stderr.contains("died before its goodbye"),
        "{server}"
    );
    assert!(!queue_exists(46));
}

#[test]
fn a_client_without_a_server_is_told_to_start_one() {
    let k = key(47);
    let r = msgq_demo(&["client", "--key", &k]);
    r.assert_code(1);
    assert!(r.stderr.contains("ENOENT"), "{r}");
    assert!(!queue_exists(47));
}

/// `two-way` in Korean: the server's and the clients' sentences are Korean, the summary
/// lines the same bytes.
#[test]
fn two_way_in_korean() {
    let k = key(48);
    let r = testkit::lang::korean(BIN, &["two-way", "--key", &k, "--clients", "2"]);
    r.assert_code(0);
    assert!(
        r.stdout
            .contains("summary: clients=2 requests=6 replies=6 refused=0"),
        "{r}"
    );
    assert_eq!(r.stdout.matches(&perfect(3, 64)).count(), 2, "{r}");
    testkit::lang::says(&r, "응답 3개는 나(pid ");
    testkit::lang::says(&r, "다른 클라이언트에게 온 것입니다");
    assert!(!queue_exists(48));
}
