//! fifo-demo as a student runs it: the built binary, two processes, a real FIFO.
//!
//! Each test has its own folder (`Scratch`), checks that the demo removed what it made,
//! and orders its processes by their narration ("waits until a writer ...") or by the
//! FIFO itself, never by sleeping.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;

use nix::sys::signal::Signal;
use testkit::{Process, Scratch, perfect, run};

const BIN: &str = env!("CARGO_BIN_EXE_fifo-demo");

fn fifo_demo(args: &[&str]) -> testkit::Run {
    run(BIN, args, b"")
}

fn is_fifo(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[test]
fn both_roles_in_one_terminal_meet_at_the_fifo_and_remove_it() {
    let dir = Scratch::new("fifo-exchange");
    let r = fifo_demo(&["--path", &dir.arg("fifo")]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(3, 64));
    assert!(
        r.stdout.contains(r#"mkfifo(""#) && r.stdout.contains(r#"", 0600) = 0"#),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("O_RDONLY) waits until a writer opens the other end"),
        "{r}"
    );
    assert!(r.stdout.contains("unlink("), "{r}");
    dir.assert_empty();
}

#[test]
fn a_consumer_started_first_receives_a_hundred_thousand_messages() {
    let dir = Scratch::new("fifo-consumer-first");
    let path = dir.arg("fifo");
    let mut consumer = Process::start(BIN, &["consumer", "--path", &path, "--count", "100000"]);
    consumer.wait_for_line("waits until a writer opens the other end");
    let producer = fifo_demo(&["producer", "--path", &path, "--count", "100000", "--quiet"]);
    producer.assert_code(0);
    let consumer = consumer.finish();
    consumer.assert_code(0);
    assert_eq!(consumer.summary(), perfect(100_000, 64));
    dir.assert_empty();
}

#[test]
fn a_producer_started_first_waits_for_its_consumer() {
    let dir = Scratch::new("fifo-producer-first");
    let path = dir.arg("fifo");
    let mut producer = Process::start(
        BIN,
        &[
            "producer", "--path", &path, "--count", "100", "--size", "1M",
        ],
    );
    producer.wait_for_line("waits until a reader opens the other end");
    let consumer = fifo_demo(&["consumer", "--path", &path, "--count", "100", "--quiet"]);
    consumer.assert_code(0);
    assert_eq!(consumer.summary(), perfect(100, 1 << 20));
    producer.finish().assert_code(0);
    dir.assert_empty();
}

#[test]
fn a_shell_can_write_to_the_raw_consumer() {
    let dir = Scratch::new("fifo-raw");
    let path = dir.arg("fifo");
    let mut consumer = Process::start(BIN, &["consumer", "--raw", "--path", &path]);
    consumer.wait_for_line("waits until a writer opens the other end");
    // What `echo hello > PATH` does: open the FIFO for writing, write, close.
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open the FIFO");
    fifo.write_all(b"hello\n").expect("write");
    drop(fifo);
    let r = consumer.finish();
    r.assert_code(0);
    assert!(r.stdout.lines().any(|l| l == "hello"), "{r}");
    assert_eq!(r.summary(), "summary: bytes=6 reads=1");
}

#[test]
fn producer_stdin_sends_lines_to_the_raw_consumer() {
    let dir = Scratch::new("fifo-stdin");
    let path = dir.arg("fifo");
    let mut consumer = Process::start(BIN, &["consumer", "--raw", "--path", &path]);
    consumer.wait_for_line("waits until a writer opens the other end");
    let producer = run(
        BIN,
        &["producer", "--stdin", "--path", &path],
        b"first line\nsecond line\n",
    );
    producer.assert_code(0);
    let r = consumer.finish();
    r.assert_code(0);
    // The data lines, without the narration that may come between them.
    let data: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with('[') && !l.starts_with("summary:"))
        .collect();
    assert_eq!(data, ["first line", "second line"], "{r}");
    // Two writes may be read by one read() (a FIFO is a stream): the byte count is exact,
    // the number of reads is 1 or 2.
    let summary = r.summary();
    assert!(
        summary == "summary: bytes=23 reads=1" || summary == "summary: bytes=23 reads=2",
        "{summary}"
    );
}

#[test]
fn keep_leaves_a_fifo_that_outlives_the_processes_and_clean_removes_it() {
    let dir = Scratch::new("fifo-keep");
    let path = dir.arg("fifo");
    let mut consumer = Process::start(
        BIN,
        &["consumer", "--keep", "--path", &path, "--count", "1"],
    );
    consumer.wait_for_line("waits until a writer opens the other end");
    fifo_demo(&["producer", "--path", &path, "--count", "1"]).assert_code(0);
    consumer.finish().assert_code(0);
    assert!(
        is_fifo(&dir.path("fifo")),
        "the FIFO should still be there: {:?}",
        dir.leftovers()
    );
    let clean = fifo_demo(&["clean", "--path", &path]);
    clean.assert_code(0);
    assert_eq!(clean.summary(), "summary: removed=1");
    dir.assert_empty();
}

#[test]
fn a_left_over_fifo_is_used_said_so_and_cleaned() {
    let dir = Scratch::new("fifo-stale");
    let path = dir.arg("fifo");
    nix::unistd::mkfifo(&dir.path("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let r = fifo_demo(&["--path", &path, "--count", "5"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(5, 64));
    assert!(
        r.stdout
            .contains("exists already: the other side made it, or a killed run left it"),
        "{r}"
    );
    assert!(
        is_fifo(&dir.path("fifo")),
        "a FIFO it did not make is not its to remove"
    );
    fifo_demo(&["clean", "--path", &path]).assert_code(0);
    dir.assert_empty();
}

#[test]
fn a_regular_file_in_the_way_is_refused_and_never_removed() {
    let dir = Scratch::new("fifo-file");
    let path = dir.arg("fifo");
    std::fs::write(dir.path("fifo"), b"someone's data").expect("write a file");
    let r = fifo_demo(&["producer", "--path", &path]);
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("it exists but is not a FIFO (it is a regular file)"),
        "{r}"
    );
    let clean = fifo_demo(&["clean", "--path", &path]);
    clean.assert_code(1);
    assert_eq!(
        std::fs::read(dir.path("fifo")).expect("still there"),
        b"someone's data"
    );
}

#[test]
fn a_consumer_killed_mid_stream_gives_the_producer_epipe() {
    let dir = Scratch::new("fifo-killed");
    let path = dir.arg("fifo");
    let mut consumer = Process::start(BIN, &["consumer", "--path", &path, "--count", "100000000"]);
    consumer.wait_for_line("waits until a writer opens the other end");
    let producer = Process::start(BIN, &["producer", "--path", &path, "--count", "100000000"]);
    consumer.wait_for_line("reading the rest without narration");
    consumer.signal(Signal::SIGKILL);
    assert_eq!(consumer.finish().code, None);
    let r = producer.finish();
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("failed: EPIPE (Broken pipe); hint: no process has the reading end open"),
        "{r}"
    );
    // The consumer made the FIFO and was killed before it could remove it.
    assert!(is_fifo(&dir.path("fifo")));
    fifo_demo(&["clean", "--path", &path]).assert_code(0);
    dir.assert_empty();
}

#[test]
fn a_server_answers_three_clients_at_once() {
    let dir = Scratch::new("fifo-server");
    let path = dir.arg("server");
    let mut server = Process::start(BIN, &["server", "--path", &path, "--requests", "300"]);
    server.wait_for_line("ready for requests");
    let clients: Vec<Process> = (0..3)
        .map(|_| {
            Process::start(
                BIN,
                &["client", "--path", &path, "--count", "100", "--quiet"],
            )
        })
        .collect();
    for client in clients {
        let r = client.finish();
        r.assert_code(0);
        assert_eq!(
            r.summary(),
            "summary: requests=100 replies=100 increasing=100"
        );
    }
    let r = server.finish();
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: requests=300 next=300");
    dir.assert_empty();
}

#[test]
fn a_client_without_a_server_says_so() {
    let dir = Scratch::new("fifo-no-server");
    let r = fifo_demo(&["client", "--path", &dir.arg("server")]);
    r.assert_code(1);
    assert!(r.stderr.contains("ENOENT"), "{r}");
    assert!(r.stderr.contains("start the other side first"), "{r}");
    assert!(
        dir.leftovers().is_empty(),
        "its own reply FIFO must go too: {:?}",
        dir.leftovers()
    );
}

#[test]
fn writes_of_at_most_pipe_buf_bytes_never_interleave() {
    let dir = Scratch::new("fifo-writers-small");
    let r = fifo_demo(&[
        "writers",
        "--path",
        &dir.arg("fifo"),
        "--writers",
        "4",
        "--count",
        "500",
        "--size",
        "4080",
    ]);
    r.assert_code(0);
    assert_eq!(
        r.summary(),
        "summary: writers=4 frame_bytes=4096 pipe_buf=4096 intact=2000 framing=kept"
    );
    dir.assert_empty();
}

#[test]
fn larger_writes_may_interleave_and_the_reader_says_which() {
    // Whether 1 MiB writes interleave depends on scheduling, so only what is always true
    // is asserted: the run ends, every writer finishes, and the verdict is one of the two.
    let dir = Scratch::new("fifo-writers-large");
    let r = fifo_demo(&[
        "writers",
        "--path",
        &dir.arg("fifo"),
        "--writers",
        "4",
        "--count",
        "10",
        "--size",
        "1M",
    ]);
    r.assert_code(0);
    let summary = r.summary();
    assert!(
        summary.starts_with("summary: writers=4 frame_bytes=1048592 pipe_buf=4096 intact="),
        "{summary}"
    );
    assert!(
        summary.ends_with("framing=kept") || summary.ends_with("framing=lost"),
        "{summary}"
    );
    dir.assert_empty();
}

#[test]
fn bad_usage_is_exit_2() {
    fifo_demo(&["--size", "0"]).assert_code(2);
    fifo_demo(&["producer", "--size", "65M"]).assert_code(2);
    fifo_demo(&["--frobnicate"]).assert_code(2);
    fifo_demo(&["writers", "--writers", "0"]).assert_code(2);
}

#[test]
fn help_explains_the_mechanism_with_an_example() {
    let r = fifo_demo(&["--help"]);
    r.assert_code(0);
    assert!(r.stdout.contains("mkfifo: a pipe with a name"), "{r}");
    for role in [
        "producer", "consumer", "server", "client", "writers", "clean",
    ] {
        let r = fifo_demo(&[role, "--help"]);
        r.assert_code(0);
        assert!(
            r.stdout.contains("Example: cargo run -p fifo-demo -- "),
            "{role}: {r}"
        );
    }
}
