//! fifo-demo as a student runs it: the built binary, two processes, a real FIFO.
//!
//! Each test has its own folder (`Scratch`), checks that the demo removed what it made,
//! and orders its processes by their narration ("waits until a writer ...") or by the
//! FIFO itself, never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says it failed by panicking

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use nix::sys::signal::Signal;
use testkit::{Process, Scratch, perfect, run};

const BIN: &str = env!("CARGO_BIN_EXE_fifo-demo");

fn fifo_demo(args: &[&str]) -> testkit::Run {
    run(BIN, args, b"")
}

fn is_fifo(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// A `--path` through a link into another user's folder: the FIFO would be made there.
#[test]
fn a_path_through_a_link_into_another_users_folder_is_refused() {
    Scratch::new("fifo-other-folder").assert_refuses_another_users_folder(BIN, "fifo", |path| {
        vec!["producer".into(), "--path".into(), path.into()]
    });
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
    // The open that waits is narrated before it waits, and said why.
    assert!(
        r.stdout
            .contains("the open of a FIFO for reading waits until a writer opens the other end"),
        "{r}"
    );
    assert!(
        r.stdout.contains(", O_RDONLY|O_CLOEXEC|O_NOFOLLOW) ...\n"),
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
    assert_eq!(clean.summary(), "summary: removed=1 refused=0");
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
    assert!(r.stderr.contains("it is a regular file, not a FIFO"), "{r}");
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
fn every_writer_is_read_even_one_that_opens_after_another_has_finished() {
    // Sixteen writers of one frame each: some finish before others have even opened the
    // FIFO. A reader that took the first end-of-file for the end missed their frames
    // (3 runs in 10 did, before the reader kept a write end for the writers to inherit).
    for round in 0..10 {
        let dir = Scratch::new(&format!("fifo-writers-late-{round}"));
        let r = fifo_demo(&[
            "writers",
            "--path",
            &dir.arg("fifo"),
            "--writers",
            "16",
            "--count",
            "1",
            "--size",
            "100",
            "--quiet",
        ]);
        r.assert_code(0);
        assert_eq!(
            r.summary(),
            "summary: writers=16 frame_bytes=116 pipe_buf=4096 intact=16 framing=kept",
            "round {round}"
        );
        dir.assert_empty();
    }
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
    fifo_demo(&["client", "--timeout", "-1"]).assert_code(2);
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

/// Writes `bytes` into the FIFO at `path` with one write(2), as a client (or anyone who
/// may open it) does; the open waits for the server, which is already reading.
fn write_into(path: &Path, bytes: &[u8]) {
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open the FIFO for writing");
    fifo.write_all(bytes).expect("write");
}

/// A request as the server's protocol writes it: pid (u32), count (u32), little-endian.
fn request(pid: u32, count: u32) -> Vec<u8> {
    [pid.to_le_bytes(), count.to_le_bytes()].concat()
}

#[test]
fn a_reply_never_goes_into_a_file_or_through_a_link() {
    // The server builds the reply path from a pid that anyone may write into its FIFO.
    let dir = Scratch::new("fifo-reply-trap");
    let path = dir.arg("server");
    std::fs::write(dir.path("server-4242"), b"precious data").unwrap();
    std::fs::write(dir.path("target"), b"also precious").unwrap();
    std::os::unix::fs::symlink(dir.path("target"), dir.path("server-4243")).unwrap();
    let mut server = Process::start(BIN, &["server", "--path", &path, "--requests", "2"]);
    server.wait_for_line("ready for requests");
    write_into(&dir.path("server"), &request(4242, 1));
    server.wait_for_line("server-4242: lstat(");
    write_into(&dir.path("server"), &request(4243, 1));
    server.wait_for_line("server-4243: lstat(");
    let r = server.finish();
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: requests=2 next=0");
    assert!(
        r.stdout.contains("it is a regular file, not a FIFO")
            && r.stdout.contains("it is a symbolic link, not a FIFO"),
        "{r}"
    );
    assert_eq!(
        std::fs::read(dir.path("server-4242")).unwrap(),
        b"precious data"
    );
    assert_eq!(std::fs::read(dir.path("target")).unwrap(), b"also precious");
    assert!(
        std::fs::symlink_metadata(dir.path("server-4243"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_symbolic_link_at_the_fifos_path_is_refused_not_followed() {
    let dir = Scratch::new("fifo-link");
    nix::unistd::mkfifo(&dir.path("elsewhere"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::os::unix::fs::symlink(dir.path("elsewhere"), dir.path("fifo")).unwrap();
    for role in ["consumer", "producer"] {
        let r = fifo_demo(&[role, "--path", &dir.arg("fifo")]);
        r.assert_code(1);
        assert!(
            r.stderr.contains("it is a symbolic link, not a FIFO"),
            "{r}"
        );
    }
    assert!(is_fifo(&dir.path("elsewhere")));
}

#[test]
fn clean_removes_only_the_demos_own_fifos_and_names_the_rest() {
    use nix::sys::stat::Mode;
    let dir = Scratch::new("fifo-clean-mixed");
    let path = dir.arg("P");
    let dead = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let alive = std::process::id();
    let fifo = |name: &str| nix::unistd::mkfifo(&dir.path(name), Mode::S_IRWXU).unwrap();
    fifo("P"); // a killed producer's FIFO: removed
    fifo(&format!("P-{dead}")); // a dead client's FIFO: removed
    fifo("P-control"); // not a name the demo makes: left, named
    fifo(&format!("P-{alive}")); // a running process's: left
    fifo("P-999999"); // another user's FIFO: left
    std::os::unix::fs::lchown(dir.path("P-999999"), Some(65534), Some(65534)).unwrap();
    std::fs::write(dir.path("P-888888"), b"a file").unwrap(); // not a FIFO: left
    std::os::unix::fs::symlink(dir.path("P-control"), dir.path("P-777777")).unwrap(); // left
    let r = fifo_demo(&["clean", "--path", &path]);
    r.assert_code(1);
    assert_eq!(r.summary(), "summary: removed=2 refused=4");
    for (name, why) in [
        ("P-control", "not a name fifo-demo makes"),
        (&format!("P-{alive}"), "is running"),
        ("P-999999", "it belongs to uid 65534"),
        ("P-888888", "it is a regular file, not a FIFO"),
        ("P-777777", "it is a symbolic link, not a FIFO"),
    ] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.contains(&format!("left {}", dir.arg(name))) && l.contains(why)),
            "{name}: {r}"
        );
    }
    let mut expected = vec![
        format!("P-{alive}"),
        "P-777777".to_string(),
        "P-888888".to_string(),
        "P-999999".to_string(),
        "P-control".to_string(),
    ];
    expected.sort();
    assert_eq!(dir.leftovers(), expected);
}

#[test]
fn clean_leaves_a_fifo_in_use() {
    let dir = Scratch::new("fifo-clean-live");
    let path = dir.arg("server");
    let mut server = Process::start(BIN, &["server", "--path", &path, "--requests", "1"]);
    server.wait_for_line("ready for requests");
    let r = fifo_demo(&["clean", "--path", &path]);
    r.assert_code(1);
    assert!(
        r.stdout.contains(&format!(
            "pid {} holds a lock on it (/proc/locks)",
            server.pid()
        )),
        "{r}"
    );
    assert!(is_fifo(&dir.path("server")));
    fifo_demo(&["client", "--path", &path, "--count", "1"]).assert_code(0);
    server.finish().assert_code(0);
    dir.assert_empty();
}

#[test]
fn junk_in_the_request_fifo_is_discarded_and_the_next_client_served() {
    let dir = Scratch::new("fifo-junk");
    let path = dir.arg("server");
    let mut server = Process::start(BIN, &["server", "--path", &path, "--requests", "2"]);
    server.wait_for_line("ready for requests");
    // Three bytes alone: fewer than a request.
    write_into(&dir.path("server"), b"abc");
    server.wait_for_line("read 3 bytes, fewer than a request");
    let client = fifo_demo(&["client", "--path", &path, "--count", "1", "--timeout", "20"]);
    client.assert_code(0);
    // Three bytes and then a request, in one write: the request is out of step.
    write_into(
        &dir.path("server"),
        &[b"xyz".as_slice(), &request(4242, 1)].concat(),
    );
    server.wait_for_line("discarded them and the 3 bytes after them");
    let client = fifo_demo(&["client", "--path", &path, "--count", "1", "--timeout", "20"]);
    client.assert_code(0);
    let r = server.finish();
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: requests=2 next=2");
    dir.assert_empty();
}

#[test]
fn a_client_gives_up_on_a_server_that_never_replies() {
    // A "server" that holds its FIFO open for reading and never answers.
    let dir = Scratch::new("fifo-silent");
    nix::unistd::mkfifo(&dir.path("server"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let _silent = nix::fcntl::open(
        &dir.path("server"),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let r = fifo_demo(&["client", "--path", &dir.arg("server"), "--timeout", "1"]);
    r.assert_code(1);
    assert!(r.stderr.contains("no reply within 1 s"), "{r}");
    std::fs::remove_file(dir.path("server")).unwrap();
    dir.assert_empty();
}

#[test]
fn a_client_notices_within_seconds_that_its_server_died() {
    let dir = Scratch::new("fifo-server-died");
    nix::unistd::mkfifo(&dir.path("server"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let reader = nix::fcntl::open(
        &dir.path("server"),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let mut client = Process::start(
        BIN,
        &["client", "--path", &dir.arg("server"), "--timeout", "0"],
    );
    client.wait_for_line(", buf, 8) = 8");
    let clock = std::time::Instant::now();
    drop(reader); // the server dies: nobody reads its FIFO any more
    let r = client.finish();
    r.assert_code(1);
    assert!(r.stderr.contains("ENXIO"), "{r}");
    assert!(r.stderr.contains("the server has gone"), "{r}");
    assert!(
        clock.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        clock.elapsed()
    );
    std::fs::remove_file(dir.path("server")).unwrap();
    dir.assert_empty();
}

#[test]
fn a_second_producer_on_the_same_fifo_is_refused() {
    let dir = Scratch::new("fifo-two-producers");
    let path = dir.arg("fifo");
    let mut consumer = Process::start(BIN, &["consumer", "--raw", "--path", &path]);
    consumer.wait_for_line("waits until a writer opens the other end");
    // The first producer holds the FIFO while it waits for lines on its standard input.
    let mut first = Process::start(BIN, &["producer", "--stdin", "--path", &path]);
    let line = first.wait_for_line("flock(");
    assert!(line.ends_with(" = 0"), "{line}");
    let second = fifo_demo(&["producer", "--path", &path, "--count", "1"]);
    second.assert_code(1);
    assert!(
        second.stderr.contains(&format!(
            "another producer uses {path} already (pid {}",
            first.pid()
        )),
        "{second}"
    );
    first.send(b"only mine\n");
    first.close_stdin();
    first.finish().assert_code(0);
    let r = consumer.finish();
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: bytes=10 reads=1");
    dir.assert_empty();
}

#[test]
fn a_second_server_on_the_same_fifo_is_refused() {
    let dir = Scratch::new("fifo-two-servers");
    let path = dir.arg("server");
    let mut first = Process::start(BIN, &["server", "--path", &path, "--requests", "1"]);
    first.wait_for_line("ready for requests");
    let second = fifo_demo(&["server", "--path", &path]);
    second.assert_code(1);
    assert!(
        second.stderr.contains(&format!(
            "another server uses {path} already (pid {}",
            first.pid()
        )),
        "{second}"
    );
    fifo_demo(&["client", "--path", &path, "--count", "1"]).assert_code(0);
    let r = first.finish();
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: requests=1 next=1");
    dir.assert_empty();
}

/// The address space of a process, from /proc/PID/status (proc(5)), in KiB.
fn address_space_kib(pid: nix::unistd::Pid) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_frame_too_large_for_a_small_ulimit_is_an_error_not_an_abort() {
    let dir = Scratch::new("fifo-ulimit");
    let path = dir.arg("fifo");
    let mut consumer = Process::start(BIN, &["consumer", "--path", &path, "--count", "1"]);
    consumer.wait_for_line("waits until a writer opens the other end");
    // Give the consumer 24 MiB more address space than it has now (ulimit -v, set from
    // outside with prlimit(1)): far less than the 64 MiB frame about to come.
    let limit = (address_space_kib(consumer.pid()) + 24 * 1024) * 1024;
    let set = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", consumer.pid()))
        .arg(format!("--as={limit}:{limit}"))
        .output();
    if !set.as_ref().is_ok_and(|out| out.status.success()) {
        eprintln!("skipped: prlimit(1) could not limit the consumer: {set:?}");
        consumer.signal(Signal::SIGTERM);
        let _ = consumer.finish();
        return;
    }
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path("fifo"))
        .unwrap();
    let mut head = 0u64.to_le_bytes().to_vec();
    head.extend_from_slice(&(64u32 << 20).to_le_bytes());
    let chunk = vec![b'a'; 1 << 20];
    // The consumer gives up part of the way: then the writes fail with EPIPE.
    let _ = fifo
        .write_all(&head)
        .and_then(|()| (0..64).try_for_each(|_| fifo.write_all(&chunk)));
    drop(fifo);
    let r = consumer.finish();
    r.assert_code(1);
    assert!(r.stderr.contains("ENOMEM"), "{r}");
    assert!(r.stderr.contains("ulimit -v"), "{r}");
    dir.assert_empty();
}

#[test]
fn a_private_folder_that_is_a_symbolic_link_is_refused() {
    // XDG_RUNTIME_DIR/ipc-demos is a link (another user's, if we can make it so) to a
    // folder that passes every check when followed.
    let dir = Scratch::new("fifo-private-link");
    std::fs::create_dir(dir.path("target")).unwrap();
    std::os::unix::fs::symlink(dir.path("target"), dir.path("ipc-demos")).unwrap();
    let _ = std::os::unix::fs::lchown(dir.path("ipc-demos"), Some(65534), Some(65534));
    let r = run(
        "env",
        &[
            &format!("XDG_RUNTIME_DIR={}", dir.arg("")),
            BIN,
            "--count",
            "1",
        ],
        b"",
    );
    r.assert_code(1);
    assert!(
        r.stderr.contains("it is a symbolic link, not a folder"),
        "{r}"
    );
    assert!(!r.stdout.contains("mkfifo("), "{r}");
    assert_eq!(std::fs::read_dir(dir.path("target")).unwrap().count(), 0);
}

/// The summary line of side `side` ("a" or "b").
fn side_summary(r: &testkit::Run, side: &str) -> String {
    let start = format!("summary: side={side} ");
    r.stdout
        .lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no {start} line in:\n{r}"))
        .to_string()
}

/// One FIFO, opened O_RDWR by both sides, carries A's messages to B and B's answers
/// (twice as long) back to A, one direction at a time, and nobody reads its own bytes.
#[test]
fn half_duplex_carries_data_both_ways_on_one_fifo() {
    let dir = Scratch::new("fifo-half-duplex");
    let r = fifo_demo(&[
        "half-duplex",
        "--path",
        &dir.arg("f"),
        "--rounds",
        "200",
        "--size",
        "100",
    ]);
    r.assert_code(0);
    assert_eq!(
        side_summary(&r, "a"),
        "summary: side=a sent=200 received_from_other=200 own_read_back=0 corrupt=0 bytes_in=40000"
    );
    assert_eq!(
        side_summary(&r, "b"),
        "summary: side=b sent=200 received_from_other=200 own_read_back=0 corrupt=0 bytes_in=20000"
    );
    assert_eq!(
        r.stdout.matches("O_RDWR|O_CLOEXEC|O_NOFOLLOW) = ").count(),
        2,
        "{r}"
    );
    dir.assert_empty();
}

/// Both write before either reads: each reads its own message back.
#[test]
fn half_duplex_without_turns_reads_its_own_bytes_back() {
    let dir = Scratch::new("fifo-half-duplex-no-turns");
    let r = fifo_demo(&["half-duplex", "--path", &dir.arg("f"), "--no-turns"]);
    r.assert_code(0);
    for side in ["a", "b"] {
        assert_eq!(
            side_summary(&r, side),
            format!(
                "summary: side={side} sent=1 received_from_other=0 own_read_back=1 corrupt=0 bytes_in=64"
            )
        );
    }
    dir.assert_empty();
}

#[test]
fn half_duplex_refuses_a_message_that_would_not_be_one_atomic_write() {
    let r = fifo_demo(&["half-duplex", "--size", "2041"]);
    r.assert_code(2);
}
