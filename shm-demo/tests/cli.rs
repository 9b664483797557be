//! shm-demo as a student runs it: the built binary, a real shared memory object, two
//! processes. Corruption is done for real: the test opens the object and writes into it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says it failed by panicking

use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::sys::mman::shm_open;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use shm_demo::region;
use testkit::{Process, lang, perfect, run};

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
    many_in("textbook", test, wait, count, size, slots);
}

fn many_in(ring: &str, test: &str, wait: &str, count: &str, size: &str, slots: &str) {
    let n = name(test);
    let r = shm_demo(&[
        "--name", &n, "--ring", ring, "--wait", wait, "--count", count, "--size", size, "--slots",
        slots, "--quiet",
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
fn a_million_small_messages_through_the_fast_ring_with_futexes() {
    many_in("fast", "fast-million-block", "block", "1000000", "64", "64");
}

#[test]
fn a_million_small_messages_through_the_fast_ring_by_spinning() {
    many_in("fast", "fast-million-spin", "spin", "1000000", "64", "64");
}

#[test]
fn a_thousand_messages_of_one_mebibyte_through_the_fast_ring() {
    many_in("fast", "fast-big-block", "block", "1000", "1M", "8");
    many_in("fast", "fast-big-spin", "spin", "1000", "1M", "2");
}

#[test]
fn the_fast_ring_stamps_its_slots_and_uses_no_semaphore() {
    let n = name("fast-stamps");
    let r = shm_demo(&["--name", &n, "--ring", "fast"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(3, 64));
    for line in [
        "Fast ring ready: 8 slots of 128 bytes, waiting by Block",
        // Slot 0 holds message 0 as stamp 1; the consumer writes nothing into the
        // slot, only how far it has taken into tail.
        "slot 0: wrote message 0 (80 bytes); stamp = 1",
        "slot 0: copied message 0 out (80 bytes); tail = 1",
        "slot 2: copied message 2 out (80 bytes); tail = 3",
    ] {
        assert!(r.stdout.contains(line), "no {line:?} in:\n{r}");
    }
    assert!(!r.stdout.contains("sem_"), "{r}");
    // After each step a side either wakes the other with a system call or says why it
    // needs none; which one depends on timing, so both are accepted, never neither.
    let wakes =
        r.stdout.matches("FUTEX_WAKE, 1) = ").count() + r.stdout.matches("no futex call").count();
    assert!(wakes >= 6, "{r}");
    assert!(!exists(&n));
}

/// A fast-ring producer of 10 messages in 2 slots, with no consumer yet, started with
/// `extra` options: it has put messages 0 and 1 and waits for room.
fn fast_producer_at_a_full_ring(name: &str, extra: &[&str]) -> Process {
    let mut args = vec![
        "producer", "--name", name, "--ring", "fast", "--slots", "2", "--count", "10",
    ];
    args.extend_from_slice(extra);
    let mut producer = Process::start(BIN, &args);
    producer.wait_for_line("the ring is full; waiting for a consumer");
    producer
}

/// The producer stops with `error` (exit 1) and removes its object.
fn producer_refuses(name: &str, producer: Process, error: &str) {
    let r = producer.finish();
    r.assert_code(1);
    assert!(r.stderr.contains(error), "{r}");
    assert!(!exists(name));
}

/// A consumer started now stops with `error` (exit 1); its producer then finds it gone
/// and removes the object.
fn consumer_refuses(name: &str, producer: Process, error: &str) {
    let consumer = shm_demo(&["consumer", "--name", name]);
    consumer.assert_code(1);
    assert!(consumer.stderr.contains(error), "{consumer}");
    producer_refuses(name, producer, "the consumer (pid");
}

#[test]
fn a_tail_that_goes_back_is_refused_by_the_producer() {
    let n = name("tail-back");
    let mut producer = fast_producer_at_a_full_ring(&n, &["--all"]);
    // A consumer takes message 0 (tail = 1) and is held at its next step; the producer
    // puts message 2 into the freed slot and waits for tail = 2.
    let mut consumer = Process::start(BIN, &["consumer", "--name", &n, "--step"]);
    loop {
        let line = consumer.wait_for_line("] ");
        if line.contains("copied message 0 out") {
            break;
        }
        if line.contains("next: ") {
            consumer.send(b"\n");
        }
    }
    producer.wait_for_line("wait until tail >= 2 (slot 1 free for message 3)");
    // A hostile peer sets tail back to 0: taken for progress, both sides would wait for
    // each other for ever.
    scribble(&n, region::TAIL_OFFSET as u64, &0u64.to_ne_bytes());
    producer_refuses(&n, producer, "ring index tail = 0, not in 1 ..= 3");
    consumer.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = consumer.finish();
}

#[test]
fn a_tail_past_the_count_is_refused_in_the_producers_last_wait() {
    let n = name("tail-past-count");
    let mut producer = Process::start(
        BIN,
        &["producer", "--name", &n, "--ring", "fast", "--count", "3"],
    );
    producer.wait_for_line("all sent; waiting until the consumer has taken everything");
    scribble(&n, region::TAIL_OFFSET as u64, &1000u64.to_ne_bytes());
    producer_refuses(&n, producer, "ring index tail = 1000, not in 0 ..= 3");
}

#[test]
fn a_stamp_set_back_under_a_moved_head_is_refused_by_the_consumer() {
    let n = name("stale-stamp");
    let producer = fast_producer_at_a_full_ring(&n, &[]);
    // Slot 0 holds message 0 (stamp 1) and head is 2; a hostile peer sets the stamp back
    // to "held message -2" (stamp -1), as if message 0 had never been put.
    let slot_0 = region::HEADER + region::STAMP_OFFSET;
    scribble(&n, slot_0 as u64, &u32::MAX.to_ne_bytes());
    consumer_refuses(
        &n,
        producer,
        "head = 2 says message 0 was put, but its slot's stamp still says it was not",
    );
}

#[test]
fn the_fast_ring_works_with_one_slot() {
    // The stamp says "message seq is in" (seq + 1) or "the slot still holds message seq - 1"
    // (seq): different values even with one slot.
    let r = shm_demo(&[
        "--ring",
        "fast",
        "--slots",
        "1",
        "--count",
        "20",
        "--name",
        &name("fast-one"),
    ]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(20, 64));
}

#[test]
fn a_stamp_no_step_writes_is_refused_by_the_consumer() {
    let n = name("bad-stamp");
    let producer = fast_producer_at_a_full_ring(&n, &[]);
    // Slot 1 holds message 1 (stamp 2); a hostile peer writes 12345 there. The consumer
    // takes message 0 (tail = 1) and stops at slot 1; the producer writes message 2 into
    // slot 0, then waits for tail = 2 and finds the consumer gone.
    let slot_1 = region::HEADER + 128 + region::STAMP_OFFSET;
    scribble(&n, slot_1 as u64, &12345u32.to_ne_bytes());
    consumer_refuses(
        &n,
        producer,
        "the slot of message 1 has the stamp 12345, which no step of the fast ring writes there",
    );
}

#[test]
fn a_tail_past_what_was_put_is_refused_by_the_producer() {
    let n = name("bad-tail");
    let producer = fast_producer_at_a_full_ring(&n, &[]);
    // Messages 0 and 1 are in; a hostile peer says 1000 were taken.
    scribble(&n, region::TAIL_OFFSET as u64, &1000u64.to_ne_bytes());
    producer_refuses(&n, producer, "ring index tail = 1000, not in 0 ..= 2");
}

#[test]
fn false_sharing_is_measured_in_both_layouts() {
    let r = shm_demo(&["false-sharing", "--count", "100000"]);
    r.assert_code(0);
    assert_eq!(r.field("increments"), 100_000);
    let ns = |field: &str| -> f64 {
        let summary = r.summary();
        let value = summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(field)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {field}= in {summary}"));
        value.parse().unwrap_or_else(|_| panic!("{field}={value}"))
    };
    for field in ["same_line_ns", "padded_ns"] {
        let v = ns(field);
        assert!(v.is_finite() && v > 0.0, "{field} = {v}: {r}");
    }
    for line in [
        "MAP_SHARED|MAP_ANONYMOUS",
        "counters at offsets 0 and 8: one cache line",
        "counters at offsets 0 and 128: different cache lines",
        "in one cache line, each increment took",
    ] {
        assert!(r.stdout.contains(line), "no {line:?} in:\n{r}");
    }
    let cpus = r.field("cpus");
    if cpus == 2 {
        assert!(r.stdout.contains("sched_setaffinity(0, {"), "{r}");
    }
    // Anonymous memory has no name.
    shm_demo(&["false-sharing", "--name", "/x"]).assert_code(2);
    shm_demo(&["false-sharing", "--count", "0"]).assert_code(2);
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
    for (ring, wait) in [
        ("textbook", "block"),
        ("textbook", "spin"),
        ("fast", "block"),
        ("fast", "spin"),
    ] {
        let n = name(&format!("killed-{ring}-{wait}"));
        let mut producer = Process::start(
            BIN,
            &[
                "producer",
                "--name",
                &n,
                "--ring",
                ring,
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
    // Without the magic nothing says the object is the demo's: `clean` leaves it, and
    // the hint says how the user removes it if it is theirs.
    assert!(
        r.stderr.contains(&format!("`rm /dev/shm{n}` removes it")),
        "{r}"
    );
    let clean = shm_demo(&["clean", "--name", &n]);
    clean.assert_code(1);
    assert!(clean.stderr.contains("magic \"IPCDSHM1\""), "{clean}");
    assert!(exists(&n));
    nix::sys::mman::shm_unlink(n.as_str()).expect("remove the test's object");
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
    // A producer killed with SIGKILL cannot remove its object.
    let mut killed = Process::start(BIN, &["producer", "--name", &n]);
    killed.wait_for_line("ready: run `shm-demo consumer");
    killed.signal(Signal::SIGKILL);
    assert_eq!(killed.finish().code, None);
    let r = shm_demo(&["producer", "--name", &n]);
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("failed: EEXIST (File exists); hint: the object exists already"),
        "{r}"
    );
    let clean = shm_demo(&["clean", "--name", &n]);
    clean.assert_code(0);
    assert_eq!(clean.summary(), "summary: removed=1");
    assert!(clean.stdout.contains("is gone: a leftover"), "{clean}");
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

/// The documented offset of the producer's pid in the header (shm.md's layout table).
const PRODUCER_PID_OFFSET: u64 = 24;

/// Whether this machine can run a command as a second user (`nobody`); says why not if not.
fn a_second_user_is_available() -> bool {
    let ok = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "true",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: `setpriv --reuid 65534` does not work here, so no second user");
    }
    ok
}

/// Whether python3 runs here; says why the test is skipped if not.
fn python_is_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "pass"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: no python3 to play the hostile peer");
    }
    ok
}

/// A Python peer truncates the object `name` to 0 bytes, as `os.ftruncate` does.
fn truncate_with_python(name: &str) {
    let r = run(
        "python3",
        &[
            "-c",
            "import os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\nos.ftruncate(fd, 0)",
            &format!("/dev/shm{name}"),
        ],
        b"",
    );
    r.assert_code(0);
}

#[test]
fn a_consumer_refuses_an_object_another_user_created_and_clean_leaves_it() {
    if !a_second_user_is_available() {
        return;
    }
    let n = name("stranger");
    // `nobody` gets there first, with a real ring under the name the consumer will use.
    let stranger_args = [
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        BIN,
        "producer",
        "--name",
        &n,
    ];
    let mut stranger = Process::start("setpriv", &stranger_args);
    stranger.wait_for_line("ready: run `shm-demo consumer");
    let r = shm_demo(&["consumer", "--name", &n]);
    r.assert_code(1);
    assert!(r.stderr.contains("it belongs to uid 65534"), "{r}");
    assert!(
        !r.stdout.contains("summary:"),
        "it used the stranger's ring: {r}"
    );
    let clean = shm_demo(&["clean", "--name", &n]);
    clean.assert_code(1);
    assert!(clean.stderr.contains("it belongs to uid 65534"), "{clean}");
    assert!(exists(&n), "clean removed another user's object");
    // The stranger removes its own object when told to stop.
    stranger.signal(Signal::SIGTERM);
    stranger.finish().assert_code(130);
    assert!(!exists(&n));
}

#[test]
fn a_header_with_producer_pid_0_is_refused_as_corrupt() {
    let n = name("pid-0");
    let mut producer = Process::start(
        BIN,
        &["producer", "--name", &n, "--slots", "2", "--count", "10"],
    );
    producer.wait_for_line("the ring is full; waiting for a consumer");
    // Pid 0 would turn the consumer's "is the producer alive?" check off.
    scribble(&n, PRODUCER_PID_OFFSET, &0i32.to_ne_bytes());
    let r = shm_demo(&["consumer", "--name", &n]);
    r.assert_code(1);
    assert!(r.stderr.contains("producer pid 0"), "{r}");
    producer.signal(Signal::SIGTERM);
    producer.finish().assert_code(130);
    assert!(!exists(&n));
}

#[test]
fn a_peer_that_truncates_the_object_gives_a_clear_error_not_sigbus() {
    if !python_is_available() {
        return;
    }
    for wait in ["block", "spin"] {
        let n = name(&format!("truncated-{wait}"));
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
        truncate_with_python(&n);
        for (role, r) in [
            ("consumer", consumer.finish()),
            ("producer", producer.finish()),
        ] {
            r.assert_code(1);
            assert!(
                r.stderr.contains("the peer shrank the shared object"),
                "{wait} {role}: {r}"
            );
            // Either the access past the new end raised SIGBUS, or (block mode) glibc's
            // sem_timedwait got EFAULT from futex(2) for the vanished page and called
            // abort(): both are caught and said, each naming what happened.
            assert!(
                r.stderr.contains("raised SIGBUS")
                    || r.stderr.contains("futex(2) failed with EFAULT"),
                "{wait} {role}: {r}"
            );
        }
        assert!(!exists(&n), "{wait}: {n} left behind");
    }
}

#[test]
fn clean_leaves_a_live_producer_s_object_and_one_without_the_magic() {
    let n = name("clean-live");
    let mut producer = Process::start(BIN, &["producer", "--name", &n]);
    producer.wait_for_line("ready: run `shm-demo consumer");
    let live = shm_demo(&["clean", "--name", &n]);
    live.assert_code(1);
    assert!(live.stderr.contains("is still running"), "{live}");
    assert!(exists(&n), "clean removed a live producer's object");
    let consumer = shm_demo(&["consumer", "--name", &n]);
    consumer.assert_code(0);
    assert_eq!(consumer.summary(), perfect(3, 64));
    producer.finish().assert_code(0);
    assert!(!exists(&n));

    // An object of ours without the magic is not known to be the demo's: named, left.
    let other = name("clean-other");
    let fd = shm_open(
        other.as_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .expect("create");
    nix::unistd::ftruncate(&fd, 4096).expect("size");
    drop(fd);
    let refused = shm_demo(&["clean", "--name", &other]);
    refused.assert_code(1);
    assert!(refused.stderr.contains("IPCDSHM1"), "{refused}");
    assert!(
        exists(&other),
        "clean removed an object that is not the demo's"
    );
    nix::sys::mman::shm_unlink(other.as_str()).expect("remove the test's object");
}

#[test]
fn a_consumer_whose_producer_died_leaves_an_object_that_replaced_it() {
    let n = name("replaced");
    let mut producer = Process::start(BIN, &["producer", "--name", &n, "--count", "100000000"]);
    producer.wait_for_line("ready: run `shm-demo consumer");
    let mut consumer = Process::start(BIN, &["consumer", "--name", &n]);
    consumer.wait_for_line("the rest without narration");
    // Someone removes the name and makes a new object under it; both roles keep their
    // mappings of the old one. Then the producer dies.
    nix::sys::mman::shm_unlink(n.as_str()).expect("unlink");
    let fd = shm_open(
        n.as_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .expect("create the new object");
    drop(fd);
    producer.signal(Signal::SIGKILL);
    assert_eq!(producer.finish().code, None);
    let r = consumer.finish();
    r.assert_code(1);
    assert!(r.stderr.contains("has gone"), "{r}");
    assert!(
        r.stdout
            .contains(&format!("I leave {n}: it now names another object")),
        "{r}"
    );
    assert!(
        r.stdout
            .contains(&format!("`shm-demo clean --name {n}` checks it")),
        "{r}"
    );
    assert!(
        exists(&n),
        "the consumer removed an object that was not its producer's"
    );
    nix::sys::mman::shm_unlink(n.as_str()).expect("remove the test's object");
}

#[test]
fn mode_sets_the_object_s_permissions_even_past_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    for (mode, expected) in [("0640", 0o640), ("0666", 0o666)] {
        let n = name(&format!("mode-{mode}"));
        let mut producer = Process::start(BIN, &["producer", "--name", &n, "--mode", mode]);
        let line = producer.wait_for_line("O_CREAT|O_EXCL|O_RDWR");
        assert!(line.contains(&format!(", {mode}) = ")), "{line}");
        producer.wait_for_line("ready: run `shm-demo consumer");
        let meta = std::fs::metadata(format!("/dev/shm{n}")).expect("stat the object");
        assert_eq!(meta.permissions().mode() & 0o777, expected, "--mode {mode}");
        shm_demo(&["consumer", "--name", &n]).assert_code(0);
        producer.finish().assert_code(0);
        assert!(!exists(&n));
    }
    shm_demo(&["--mode", "0888"]).assert_code(2);
    shm_demo(&["--mode", "1777"]).assert_code(2);
    let help = shm_demo(&["producer", "--help"]);
    assert!(help.stdout.contains("--mode"), "{help}");
    assert!(help.stdout.contains("0666"), "{help}");
    assert!(help.stdout.contains("unsafe on a shared machine"), "{help}");
}

#[test]
fn options_a_subcommand_does_not_use_are_refused() {
    let r = shm_demo(&["race", "--name", "/ipc-demos-unused", "--count", "10"]);
    r.assert_code(2);
    assert!(r.stderr.contains("--name"), "{r}");
    shm_demo(&["--slots", "4", "race", "--count", "10"]).assert_code(2);
    shm_demo(&["--count", "4", "consumer", "--no-wait"]).assert_code(2);
}

#[test]
fn the_largest_size_the_help_promises_is_accepted() {
    let help = shm_demo(&["--help"]);
    assert!(help.stdout.contains("up to 64M"), "{help}");
    let n = name("64m");
    let r = shm_demo(&[
        "--name", &n, "--size", "64M", "--count", "2", "--slots", "1", "--quiet",
    ]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(2, 64 << 20));
    assert!(!exists(&n));
    shm_demo(&["--size", "67108865"]).assert_code(2);
}

#[test]
fn a_partly_shrunk_object_is_noticed_by_fstat_before_the_next_window() {
    if !python_is_available() {
        return;
    }
    // The default ring is 1216 bytes, one page. Shrunk to 600 bytes, the page still has
    // the file behind it, so no access raises SIGBUS: only the size check sees it.
    let n = name("partly-shrunk");
    let mut producer = Process::start(BIN, &["producer", "--name", &n, "--count", "100000000"]);
    producer.wait_for_line("ready: run `shm-demo consumer");
    let mut consumer = Process::start(BIN, &["consumer", "--name", &n]);
    consumer.wait_for_line("the rest without narration");
    run(
        "python3",
        &[
            "-c",
            "import os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\nos.ftruncate(fd, 600)",
            &format!("/dev/shm{n}"),
        ],
        b"",
    )
    .assert_code(0);
    let r = consumer.finish();
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("the peer shrank the shared object to 600 bytes, under a mapping of 1216"),
        "{r}"
    );
    let r = producer.finish();
    r.assert_code(1);
    assert!(r.stderr.contains("the consumer (pid"), "{r}");
    assert!(!exists(&n));
}

// Narration (issue 12): every wait where it happens, cause before effect, the real calls.

/// The index of the first line of `r` that starts with `[role ` and contains `text`.
fn first_line(r: &testkit::Run, role: &str, text: &str) -> usize {
    r.stdout
        .lines()
        .position(|l| l.starts_with(&format!("[{role} ")) && l.contains(text))
        .unwrap_or_else(|| panic!("no {role} line with {text:?} in:\n{r}"))
}

#[test]
fn every_wait_is_narrated_before_and_after_and_a_post_comes_before_the_wait_it_ends() {
    let n = name("waits");
    let r = shm_demo(&["--name", &n]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(3, 64));
    // The producer waits for a free slot and the consumer for a message: both narrated,
    // before the call ("...") and when it returns.
    for (role, sem) in [("producer", "empty"), ("consumer", "full")] {
        first_line(&r, role, &format!("sem_timedwait(&{sem}, now+200ms) ..."));
        first_line(&r, role, &format!("sem_timedwait(&{sem}, now+200ms) = 0"));
    }
    // The consumer's first wait ends because of the producer's first post, so on one
    // terminal the post is on the screen first.
    let posted = first_line(&r, "producer", "] sem_post(&full) ...");
    let woken = first_line(&r, "consumer", "] sem_timedwait(&full, now+200ms) = 0");
    assert!(
        posted < woken,
        "the consumer's wait ended before the post:\n{r}"
    );
    // The copies in and out of the mapping, and the mapping's end, as the calls they are.
    first_line(&r, "producer", "] memcpy(0x");
    first_line(&r, "consumer", ", 80) = 0x");
    let mapped = r.stdout.lines().find_map(|l| {
        let rest = l.strip_prefix("[producer ")?;
        rest.split_once("] mmap(NULL, 1216, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = ")
            .map(|(_, address)| address.to_string())
    });
    let mapped = mapped.unwrap_or_else(|| panic!("no mmap by the producer in:\n{r}"));
    first_line(&r, "producer", &format!("] munmap({mapped}, 1216) = 0"));
    first_line(&r, "consumer", "] munmap(0x");
    assert!(!exists(&n));
}

#[test]
fn a_spin_wait_is_announced_and_step_stops_there() {
    let n = name("spin-step");
    // No consumer: the second message needs a slot that nobody frees.
    let args = [
        "producer", "--name", &n, "--wait", "spin", "--slots", "1", "--count", "2", "--step",
    ];
    let mut producer = Process::start(BIN, &args);
    loop {
        let prompt = producer.wait_for_line("[Enter]");
        if prompt.contains("] next: spin until tail > 0 (a slot is free)") {
            break;
        }
        assert!(
            !prompt.contains("spin until"),
            "a spin before it had to: {prompt}"
        );
        producer.send(b"\n");
    }
    // End of input ends --step (the cleanup after SIGTERM would otherwise wait for an
    // Enter before its shm_unlink too).
    producer.close_stdin();
    producer.wait_for_line("--step stops waiting");
    producer.signal(Signal::SIGTERM);
    producer.finish().assert_code(130);
    assert!(!exists(&n));
}

#[test]
fn all_narrates_every_message_and_without_it_the_rest_goes_quiet() {
    let n = name("all");
    let all = shm_demo(&["--name", &n, "--count", "5", "--all"]);
    all.assert_code(0);
    assert_eq!(all.summary(), perfect(5, 64));
    first_line(
        &all,
        "producer",
        "slot 4: wrote message 4 (80 bytes); head = 5",
    );
    first_line(
        &all,
        "consumer",
        "slot 4: copied message 4 out (80 bytes); tail = 5",
    );
    assert!(!all.stdout.contains("without narration"), "{all}");
    let some = shm_demo(&["--name", &n, "--count", "5"]);
    some.assert_code(0);
    first_line(&some, "consumer", "... the rest without narration");
    assert!(!some.stdout.contains("message 4"), "{some}");
    assert!(!exists(&n));
}

// Korean (issue 13): explanations and hints in Korean; the system calls, errno names, the
// [role pid] tag and the summary line the same as in English.

/// A call line whose result differs from run to run (an address, or a wait that timed
/// out as often as scheduling made it): not compared between languages.
fn varies(call: &str) -> bool {
    call.contains("0x") || call.contains("ETIMEDOUT")
}

/// Runs shm-demo in English and with `--lang ko`, and checks what must not change: the
/// exit code, the summary line, and the system calls. Returns the Korean run.
fn same_in_korean(args: &[&str]) -> testkit::Run {
    let (en, ko) = (lang::english(BIN, args), lang::korean(BIN, args));
    lang::assert_same(&en, &ko, varies);
    ko
}

#[test]
fn lang_ko_explains_the_default_run_in_korean_with_the_same_calls_and_summary() {
    let n = name("ko-default");
    let r = same_in_korean(&["--name", &n]);
    lang::says(&r, "헤더 내용: 메시지 3개, 슬롯 8개");
    lang::says(&r, "] 슬롯 0: 0번 메시지를 썼습니다 (80바이트); head = 1\n");
    lang::says(&r, "] sem_post(&full) ...\n");
    assert!(!r.stdout.contains("wrote message"), "{r}");
    assert!(!exists(&n));
}

#[test]
fn lang_ko_explains_producer_and_consumer_in_korean_with_the_same_summary() {
    let n = name("ko-roles");
    let mut producer = lang::start_korean(BIN, &["producer", "--name", &n]);
    producer.wait_for_line("준비 완료: 다른 터미널에서 `shm-demo consumer --name");
    let consumer = lang::korean(BIN, &["consumer", "--name", &n]);
    consumer.assert_code(0);
    assert_eq!(consumer.summary(), perfect(3, 64));
    lang::says(
        &consumer,
        "] 슬롯 2: 2번 메시지를 복사해 냈습니다 (80바이트); tail = 3\n",
    );
    let producer = producer.finish();
    producer.assert_code(0);
    lang::says(&producer, "모두 보냈습니다.");
    assert!(!exists(&n));
    // An error: the call and the errno as in English, the words around them in Korean.
    let missing = lang::korean(BIN, &["consumer", "--name", &n, "--no-wait"]);
    missing.assert_code(1);
    assert!(
        missing.stderr.contains(
            "O_RDWR, 0) 실패: ENOENT (No such file or directory); 힌트: 그런 객체가 없습니다"
        ),
        "{missing}"
    );
}

#[test]
fn lang_ko_explains_race_and_clean_in_korean_with_the_same_calls_and_summaries() {
    // How many unsynchronised updates are lost differs from run to run: the summaries
    // are compared field by field, the calls in full.
    let race = ["race", "--count", "1000"];
    let (en, ko) = (lang::english(BIN, &race), lang::korean(BIN, &race));
    for r in [&en, &ko] {
        r.assert_code(0);
        let exact = (r.field("expected"), r.field("atomic"), r.field("semaphore"));
        assert_eq!(exact, (2000, 2000, 2000), "{r}");
    }
    let calls = |r: &testkit::Run| -> Vec<String> {
        lang::calls(r).into_iter().filter(|c| !varies(c)).collect()
    };
    assert_eq!(calls(&ko), calls(&en), "the calls differ:\n{en}\n{ko}");
    lang::says(&ko, "] 세마포어: 기대값 2000, 결과 2000, 잃어버린 갱신 0\n");
    lang::says(&ko, "] 동기화 없음: 기대값 2000, 결과 ");
    let clean = same_in_korean(&["clean", "--name", &name("ko-clean")]);
    lang::says(&clean, "그런 객체가 없습니다: 정리할 것이 없습니다");
}

#[test]
fn a_korean_locale_alone_picks_korean_and_lc_all_c_keeps_english() {
    let n = name("ko-locale");
    let args = ["--name", n.as_str(), "--count", "1"];
    let korean = lang::assert_locale_picks_korean(BIN, &args, "헤더 내용: 메시지 1개");
    assert_eq!(korean.summary(), perfect(1, 64));
    assert!(!exists(&n));
}

/// A FIFO planted at /dev/shm/NAME (by another user, or by mistake) must not make `clean`
/// wait forever in a read-only open: it is looked at with lstat and refused by name.
#[test]
fn clean_refuses_a_fifo_in_dev_shm_at_once() {
    let n = name("clean-fifo");
    let path = common::owner::shm_path(&n);
    nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR).expect("mkfifo in /dev/shm");
    let r = shm_demo(&["clean", "--name", &n]);
    let _ = std::fs::remove_file(&path);
    r.assert_code(1);
    assert!(r.stderr.contains("it is a FIFO, not a regular file"), "{r}");
}
