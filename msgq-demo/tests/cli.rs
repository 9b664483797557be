//! msgq-demo as a student runs it: the built binary, real queues, two processes.
//!
//! Every test uses its own key (or POSIX name) made from the test process's pid, checks
//! the summary lines, and checks afterwards that no queue is left.

use msgq_demo::sysv;
use testkit::{Process, Scratch, perfect, run};

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

#[test]
fn a_full_queue_makes_the_producer_wait_for_the_consumer() {
    let k = key(8);
    let mut producer = Process::start(
        BIN,
        &[
            "producer",
            "--key",
            &k,
            "--capacity",
            "1024",
            "--count",
            "1000",
        ],
    );
    producer.wait_for_line("the queue is full (1024 bytes): msgsnd now waits");
    let consumer = msgq_demo(&["consumer", "--key", &k, "--count", "1000", "--quiet"]);
    consumer.assert_code(0);
    assert_eq!(consumer.summary(), perfect(1000, 64));
    producer.finish().assert_code(0);
    assert!(!queue_exists(8));
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

fn posix_run(test: &str, full: &str, expect: &str) {
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
    posix_run("wait", "wait", "(waits for room) = 0");
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
