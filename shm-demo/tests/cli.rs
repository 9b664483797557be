//! shm-demo as a student runs it: the built binary, a real shared memory object, two
//! processes. Corruption is done for real: the test opens the object and writes into it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says it failed by panicking

use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sys::mman::shm_open;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use shm_demo::region;
use testkit::{Process, perfect, run};

const BIN: &str = env!("CARGO_BIN_EXE_shm-demo");

fn shm_demo(args: &[&str]) -> testkit::Run {
    run(BIN, args, b"")
}

/// An object name no other test uses.
fn name(test: &str) -> String {
    format!("/ipc-demos-test-{}-{test}", std::process::id())
}

fn exists(name: &str) -> bool {
    shm_open(name, OFlag::O_RDONLY, Mode::empty()).is_ok()
}

/// Writes `bytes` at `offset` of the object `name`, as a buggy or hostile peer could.
fn scribble(name: &str, offset: u64, bytes: &[u8]) {
    let fd: OwnedFd = shm_open(name, OFlag::O_RDWR, Mode::empty()).expect("open the object");
    nix::sys::uio::pwrite(&fd, bytes, offset as i64).expect("write into the object");
}

#[test]
fn both_roles_in_one_terminal_and_the_object_is_removed() {
    let n = name("exchange");
    let r = shm_demo(&["--name", &n]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(3, 64));
    for call in [
        "shm_open(",
        "O_CREAT|O_EXCL|O_RDWR, 0600) = ",
        "ftruncate(",
        "PROT_READ|PROT_WRITE, MAP_SHARED,",
        "shm_unlink(",
    ] {
        assert!(r.stdout.contains(call), "no {call} in:\n{r}");
    }
    assert!(!exists(&n));
}

fn many(test: &str, wait: &str, count: &str, size: &str, slots: &str) {
    let n = name(test);
    let r = shm_demo(&[
        "--name", &n, "--wait", wait, "--count", count, "--size", size, "--slots", slots, "--quiet",
    ]);
    r.assert_code(0);
    let size = if size == "1M" {
        1 << 20
    } else {
        size.parse().unwrap()
    };
    assert_eq!(r.summary(), perfect(count.parse().unwrap(), size));
    assert!(!exists(&n));
}

#[test]
fn a_million_small_messages_with_semaphores() {
    many("million-block", "block", "1000000", "64", "64");
}

#[test]
fn a_million_small_messages_by_spinning() {
    many("million-spin", "spin", "1000000", "64", "64");
}

#[test]
fn a_thousand_messages_of_one_mebibyte_with_semaphores() {
    many("big-block", "block", "1000", "1M", "8");
}

#[test]
fn a_thousand_messages_of_one_mebibyte_by_spinning() {
    many("big-spin", "spin", "1000", "1M", "8");
}

#[test]
fn a_consumer_started_first_waits_for_the_producer() {
    let n = name("consumer-first");
    let mut consumer = Process::start(BIN, &["consumer", "--name", &n]);
    consumer.wait_for_line("waiting for a producer to create");
    let producer = shm_demo(&["producer", "--name", &n, "--count", "1000", "--quiet"]);
    producer.assert_code(0);
    let consumer = consumer.finish();
    consumer.assert_code(0);
    assert_eq!(consumer.summary(), perfect(1000, 64));
    assert!(!exists(&n));
}

#[test]
fn a_consumer_with_no_wait_fails_with_a_hint() {
    let r = shm_demo(&["consumer", "--name", &name("no-wait"), "--no-wait"]);
    r.assert_code(1);
    assert!(r.stderr.contains("ENOENT"), "{r}");
    assert!(r.stderr.contains("start the producer first"), "{r}");
}

#[test]
fn a_killed_producer_does_not_hang_the_consumer() {
    for wait in ["block", "spin"] {
        let n = name(&format!("killed-{wait}"));
        let mut producer = Process::start(
            BIN,
            &[
                "producer",
                "--name",
                &n,
                "--wait",
                wait,
                "--count",
                "100000000",
            ],
        );
        producer.wait_for_line("ready: run `shm-demo consumer");
        let mut consumer = Process::start(BIN, &["consumer", "--name", &n]);
        consumer.wait_for_line("the rest without narration");
        producer.signal(Signal::SIGKILL);
        assert_eq!(producer.finish().code, None);
        let r = consumer.finish();
        r.assert_code(1);
        assert!(
            r.stderr.contains("has gone: it was killed or crashed"),
            "{wait}: {r}"
        );
        assert!(
            r.stdout
                .contains("the producer cannot remove its object any more, so I do"),
            "{wait}: {r}"
        );
        assert!(!exists(&n), "{wait}: {n} left behind");
    }
}

#[test]
fn a_corrupt_header_is_rejected_with_a_clear_message() {
    let n = name("bad-magic");
    let fd = shm_open(
        n.as_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::S_IRWXU,
    )
    .expect("create");
    nix::unistd::ftruncate(&fd, 4096).expect("size");
    drop(fd);
    scribble(&n, region::MAGIC_OFFSET as u64, b"NOTMAGIC");
    let r = shm_demo(&["consumer", "--name", &n]);
    r.assert_code(1);
    assert!(r.stderr.contains("not the magic \"IPCDSHM1\""), "{r}");
    assert!(r.stderr.contains("`shm-demo clean` removes it"), "{r}");
    let clean = shm_demo(&["clean", "--name", &n]);
    clean.assert_code(0);
    assert_eq!(clean.summary(), "summary: removed=1");
    assert!(!exists(&n));
}

#[test]
fn a_corrupt_ring_index_is_rejected_and_the_producer_notices() {
    let n = name("bad-head");
    // A ring of 2 slots, and no consumer: the producer fills it and waits.
    let mut producer = Process::start(
        BIN,
        &["producer", "--name", &n, "--slots", "2", "--count", "10"],
    );
    producer.wait_for_line("the ring is full; waiting for a consumer");
    scribble(&n, region::HEAD_OFFSET as u64, &u64::MAX.to_ne_bytes());
    let consumer = shm_demo(&["consumer", "--name", &n]);
    consumer.assert_code(1);
    assert!(
        consumer
            .stderr
            .contains("ring index head = 18446744073709551615, not in 1 ..= 2"),
        "{consumer}"
    );
    // The consumer attached, then exited: the producer must see that, not wait forever.
    let r = producer.finish();
    r.assert_code(1);
    assert!(r.stderr.contains("the consumer (pid"), "{r}");
    assert!(!exists(&n));
}

#[test]
fn a_left_over_object_is_reported_and_clean_removes_it() {
    let n = name("leftover");
    let fd = shm_open(n.as_str(), OFlag::O_CREAT | OFlag::O_RDWR, Mode::S_IRWXU).expect("create");
    drop(fd);
    let r = shm_demo(&["producer", "--name", &n]);
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("failed: EEXIST (File exists); hint: the object exists already"),
        "{r}"
    );
    shm_demo(&["clean", "--name", &n]).assert_code(0);
    assert!(!exists(&n));
    let again = shm_demo(&["clean", "--name", &n]);
    again.assert_code(0);
    assert_eq!(again.summary(), "summary: removed=0");
}

#[test]
fn without_synchronisation_updates_are_lost_and_with_it_none_are() {
    let r = shm_demo(&["race", "--count", "1000000"]);
    r.assert_code(0);
    assert_eq!(r.field("expected"), 2_000_000);
    assert_eq!(r.field("atomic"), 2_000_000);
    assert_eq!(r.field("semaphore"), 2_000_000);
    // How many unsynchronised updates are lost depends on scheduling; that the total is
    // never more than expected is all that is always true.
    assert!(r.field("unsynchronised") <= 2_000_000, "{r}");
    assert!(
        r.stdout.contains("Unsynchronised: expected 2000000, got"),
        "{r}"
    );
}

#[test]
fn bad_usage_is_exit_2() {
    shm_demo(&["--size", "0"]).assert_code(2);
    shm_demo(&["--slots", "0"]).assert_code(2);
    shm_demo(&["--slots", "5000"]).assert_code(2);
    shm_demo(&["--wait", "sometimes"]).assert_code(2);
    shm_demo(&["--name", "no-slash"]).assert_code(2);
    shm_demo(&["--slots", "4096", "--size", "1M"]).assert_code(2);
}

#[test]
fn help_explains_the_mechanism_with_an_example() {
    let r = shm_demo(&["--help"]);
    r.assert_code(0);
    assert!(
        r.stdout
            .contains("POSIX shared memory: two processes map the same pages"),
        "{r}"
    );
    for role in ["producer", "consumer", "race", "clean"] {
        let r = shm_demo(&[role, "--help"]);
        r.assert_code(0);
        assert!(
            r.stdout.contains("Example: cargo run -p shm-demo -- "),
            "{role}: {r}"
        );
    }
}
