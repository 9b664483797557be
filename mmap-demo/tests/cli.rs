//! mmap-demo as a student runs it: the built binary, a real file, real mappings, two
//! processes. Each test has its own folder and checks that the demo removed its files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says it failed by panicking

use nix::sys::signal::Signal;
use testkit::{Process, Scratch, perfect, run};

const BIN: &str = env!("CARGO_BIN_EXE_mmap-demo");

fn mmap_demo(args: &[&str]) -> testkit::Run {
    run(BIN, args, b"")
}

#[test]
fn both_roles_in_one_terminal_share_a_mapped_file() {
    let dir = Scratch::new("mmap-exchange");
    let r = mmap_demo(&["--path", &dir.arg("file")]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(3, 64));
    assert!(
        r.stdout.contains("PROT_READ|PROT_WRITE, MAP_SHARED,"),
        "{r}"
    );
    assert!(r.stdout.contains("msync(addr, len, MS_SYNC)"), "{r}");
    assert!(r.stdout.contains("no read()"), "{r}");
    dir.assert_empty();
}

#[test]
fn a_consumer_started_first_waits_and_reads_everything() {
    let dir = Scratch::new("mmap-consumer-first");
    let path = dir.arg("file");
    let mut consumer = Process::start(BIN, &["consumer", "--path", &path]);
    consumer.wait_for_line("waiting for a producer to create");
    mmap_demo(&["producer", "--path", &path, "--count", "100000", "--quiet"]).assert_code(0);
    let r = consumer.finish();
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(100_000, 64));
    dir.assert_empty();
}

#[test]
fn a_producer_started_first_waits_for_its_consumer() {
    let dir = Scratch::new("mmap-producer-first");
    let path = dir.arg("file");
    let mut producer = Process::start(
        BIN,
        &[
            "producer", "--path", &path, "--count", "1000", "--size", "4K",
        ],
    );
    producer.wait_for_line("ready: run `mmap-demo consumer");
    let r = mmap_demo(&["consumer", "--path", &path, "--quiet"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(1000, 4096));
    producer.finish().assert_code(0);
    dir.assert_empty();
}

#[test]
fn a_killed_producer_does_not_hang_the_consumer() {
    let dir = Scratch::new("mmap-killed");
    let path = dir.arg("file");
    // Under --step the producer stops before its first message until it gets an Enter,
    // which never comes: it is killed there.
    let mut producer = Process::start(BIN, &["producer", "--path", &path, "--step"]);
    // Answer every prompt (ftruncate, mmap, ...) until the one before the first message.
    while !producer.wait_for_line("next: ").contains("write message 0") {
        producer.send(b"\n");
    }
    let mut consumer = Process::start(BIN, &["consumer", "--path", &path]);
    consumer.wait_for_line("MAP_SHARED, 3, 0) = ");
    producer.signal(Signal::SIGKILL);
    assert_eq!(producer.finish().code, None);
    let r = consumer.finish();
    r.assert_code(1);
    assert!(r.stderr.contains("the producer (pid"), "{r}");
    assert!(r.stderr.contains("has gone"), "{r}");
    assert!(
        dir.leftovers().is_empty(),
        "the consumer removes a dead producer's file: {:?}",
        dir.leftovers()
    );
}

#[test]
fn map_private_changes_stay_private() {
    let dir = Scratch::new("mmap-private");
    let r = mmap_demo(&["private", "--path", &dir.arg("file")]);
    r.assert_code(0);
    assert_eq!(
        r.summary(),
        "summary: private_view=changed file=unchanged other_process=unchanged"
    );
    assert!(
        r.stdout
            .contains("my MAP_SHARED view: \"original content\""),
        "{r}"
    );
    dir.assert_empty();
}

#[test]
fn only_touched_pages_of_a_sparse_mapping_are_loaded() {
    let dir = Scratch::new("mmap-lazy");
    let r = mmap_demo(&[
        "lazy",
        "--path",
        &dir.arg("file"),
        "--size",
        "1G",
        "--touch",
        "10",
    ]);
    r.assert_code(0);
    let s = r.summary();
    let pages = (1u64 << 30) / 4096;
    assert_eq!(r.field("mapped"), 1 << 30);
    assert_eq!(r.field("touched"), 10);
    // Every first touch of a page faults; without readahead, the touched pages and
    // little else are in memory; and a sparse file holds almost nothing on the disk.
    assert!(r.field("faults") >= 10, "{s}");
    assert!(
        (10..pages / 100).contains(&r.field("resident_random")),
        "{s}"
    );
    assert!(r.field("disk_bytes") < (1 << 30) / 100, "{s}");
    dir.assert_empty();
}

#[test]
fn touching_past_the_end_of_a_shrunk_file_is_sigbus() {
    let dir = Scratch::new("mmap-resize");
    let r = mmap_demo(&["resize", "--path", &dir.arg("file")]);
    r.assert_code(0);
    assert_eq!(
        r.summary(),
        "summary: truncate=allowed access_beyond_end=SIGBUS"
    );
    assert!(r.stdout.contains("(killed by SIGBUS)"), "{r}");
    assert!(
        dir.leftovers().is_empty(),
        "left behind (a core file?): {:?}",
        dir.leftovers()
    );
}

#[test]
fn a_polled_file_and_a_pipe_deliver_every_line() {
    let dir = Scratch::new("mmap-poll");
    let r = mmap_demo(&[
        "file-poll",
        "--path",
        &dir.arg("file"),
        "--count",
        "5",
        "--poll-ms",
        "20",
    ]);
    r.assert_code(0);
    // How late each side is depends on the machine; the count does not.
    assert_eq!(r.field("lines"), 5);
    assert!(r.stdout.contains("file, polled every 20 ms"), "{r}");
    dir.assert_empty();
}

#[test]
fn a_left_over_file_is_reported_and_clean_removes_it() {
    let dir = Scratch::new("mmap-stale");
    let path = dir.arg("file");
    std::fs::write(dir.path("file"), b"left over").unwrap();
    let r = mmap_demo(&["producer", "--path", &path]);
    r.assert_code(1);
    assert!(r.stderr.contains("EEXIST"), "{r}");
    assert!(r.stderr.contains("`mmap-demo clean` removes it"), "{r}");
    let clean = mmap_demo(&["clean", "--path", &path]);
    clean.assert_code(0);
    assert_eq!(clean.summary(), "summary: removed=1");
    dir.assert_empty();
}

#[test]
fn clean_leaves_what_is_not_a_regular_file() {
    let dir = Scratch::new("mmap-clean-dir");
    let path = dir.arg("file");
    std::fs::create_dir(dir.path("file")).unwrap();
    let r = mmap_demo(&["clean", "--path", &path]);
    r.assert_code(1);
    assert!(r.stderr.contains("it is not a regular file"), "{r}");
    assert!(dir.path("file").is_dir(), "clean removed a directory");
    std::fs::remove_dir(dir.path("file")).unwrap();
    dir.assert_empty();
}

#[test]
fn a_file_that_is_not_a_message_file_is_refused() {
    let dir = Scratch::new("mmap-corrupt");
    let path = dir.arg("file");
    std::fs::write(dir.path("file"), [b'x'; 4096]).unwrap();
    let r = mmap_demo(&["consumer", "--path", &path]);
    r.assert_code(1);
    assert!(r.stderr.contains("not \"IPCDMAP1\""), "{r}");
}

#[test]
fn bad_usage_is_exit_2() {
    mmap_demo(&["--size", "0"]).assert_code(2);
    mmap_demo(&["--count", "100000", "--size", "64M"]).assert_code(2);
    mmap_demo(&["lazy", "--touch", "0"]).assert_code(2);
    mmap_demo(&["--frobnicate"]).assert_code(2);
}

#[test]
fn help_explains_the_mechanism_with_an_example() {
    let r = mmap_demo(&["--help"]);
    r.assert_code(0);
    assert!(r.stdout.contains("File-backed mmap"), "{r}");
    for lesson in [
        "producer",
        "consumer",
        "private",
        "lazy",
        "resize",
        "file-poll",
        "clean",
    ] {
        let r = mmap_demo(&[lesson, "--help"]);
        r.assert_code(0);
        assert!(
            r.stdout.contains("Example: cargo run -p mmap-demo -- "),
            "{lesson}: {r}"
        );
    }
}
