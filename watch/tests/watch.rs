//! ipc-watch beside real demo processes: what `--once` shows, and that the demos' own
//! summary lines come out the same with a watcher as without one.
//!
//! The demos' binaries are the ones `cargo test --workspace` (or `cargo build
//! --workspace`) built next to this test, in the same target folder. No test sleeps to
//! order events: each waits for a line a demo prints, or for the object to reach a state,
//! with testkit's time-out.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a panic is a failed test

use std::path::PathBuf;
use std::time::Instant;

use testkit::{Process, Scratch, TIME_OUT, perfect, run};

const WATCH: &str = env!("CARGO_BIN_EXE_ipc-watch");

/// The path of a demo binary built beside this test (target/debug/NAME).
fn demo(name: &str) -> String {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/debug/deps/watch-HASH -> target/debug/NAME
    let path: PathBuf = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` (or `cargo test --workspace`) first",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// One frame of `ipc-watch --once ARGS`, which must succeed.
fn watch(args: &[&str]) -> String {
    let mut all = vec!["--once"];
    all.extend_from_slice(args);
    let r = run(WATCH, &all, b"");
    r.assert_code(0);
    r.stdout
}

/// Frames of `ipc-watch --once ARGS` until one contains `text` (the object reaches that
/// state), failing after testkit's time-out.
fn watch_until(args: &[&str], text: &str) -> String {
    let deadline = Instant::now() + TIME_OUT;
    loop {
        let frame = watch(args);
        if frame.contains(text) {
            return frame;
        }
        assert!(
            Instant::now() < deadline,
            "no frame with {text:?}; the last:\n{frame}"
        );
    }
}

/// Answers every `--step` prompt of `p` with Enter until it prints a prompt for which
/// `stop` is true, and returns that prompt (unanswered).
fn step_until(p: &mut Process, mut stop: impl FnMut(&str) -> bool) -> String {
    loop {
        let prompt = p.wait_for_line("[Enter]");
        if stop(&prompt) {
            return prompt;
        }
        p.send(b"\n");
    }
}

/// A System V key for this test process and `n`: tests run in parallel, each with its own.
fn key(n: u32) -> String {
    format!(
        "{:#x}",
        0x5700_0000 + (std::process::id() % 0x10_0000) * 16 + n
    )
}

/// Removes the queue with `key` when dropped, so that a failed test leaves nothing.
struct CleanQueue(String);

impl Drop for CleanQueue {
    fn drop(&mut self) {
        let _ = run(
            &demo("msgq-demo"),
            &["clean", "--key", &self.0, "--quiet"],
            b"",
        );
    }
}

#[test]
fn a_queue_left_by_a_producer_shows_exactly_its_messages_and_bytes_and_keeps_them() {
    let msgq = demo("msgq-demo");
    let k = key(1);
    let _clean = CleanQueue(k.clone());
    let produce = [
        "producer", "--key", &k, "--types", "1,2", "--count", "3", "--quiet",
    ];
    run(&msgq, &produce, b"").assert_code(0);
    let status = || {
        run(&msgq, &["status", "--key", &k, "--quiet"], b"")
            .summary()
            .to_string()
    };
    let before = status();

    let frame = watch(&["msgq", "--key", &k]);
    // 2 types x 3 messages, each a 64-byte payload in a 16-byte frame.
    assert!(frame.contains("messages (msg_qnum): 6 messages"), "{frame}");
    assert!(
        frame.contains("bytes (msg_cbytes of msg_qbytes): 480 of"),
        "{frame}"
    );
    assert!(
        frame.contains("type 1: 240 bytes, seq 0..2: 3 of 6 messages"),
        "{frame}"
    );
    assert!(
        frame.contains("type 2: 240 bytes, seq 0..2: 3 of 6 messages"),
        "{frame}"
    );
    assert!(frame.contains("last msgrcv: nobody yet"), "{frame}");

    // Watching took nothing and changed no counter, not even the last receiver's pid.
    assert_eq!(status(), before);
    let consume = [
        "consumer", "--key", &k, "--types", "1,2", "--count", "3", "--quiet",
    ];
    let r = run(&msgq, &consume, b"");
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(6, 64));
    let frame = watch(&["msgq", "--key", &k]);
    assert!(frame.contains("no queue has this key"), "{frame}");
}

#[test]
fn a_ring_with_a_paused_consumer_shows_its_slots_full_and_the_run_ends_as_without_a_watcher() {
    let shm = demo("shm-demo");
    let name = format!("/ipc-watch-test-{}-ring", std::process::id());
    let ring = ["--name", &name, "--count", "12", "--slots", "4"];
    let mut producer = Process::start(&shm, &[&["producer"][..], &ring].concat());
    let mut consumer = Process::start(&shm, &["consumer", "--name", &name, "--step"]);
    producer.wait_for_line("the ring is full; waiting for a consumer");
    // The consumer is paused at its first prompt: it has not attached yet.
    step_until(&mut consumer, |_| true);
    let frame = watch(&["shm", "--name", &name]);
    assert!(frame.contains("slots full: 4 of 4 slots"), "{frame}");
    assert!(frame.contains("slots: [####] head=0 tail=0"), "{frame}");
    assert!(
        frame.contains("head = 4 (published), tail = 0 (taken), of 12"),
        "{frame}"
    );
    assert!(frame.contains("semaphores: full = 4, empty = 0"), "{frame}");
    assert!(frame.contains("who waits: the ring is full"), "{frame}");
    assert!(frame.contains("consumer: not attached yet"), "{frame}");

    // Let the consumer take one message and pause it again: the producer refills the
    // freed slot, and the ring is full again one slot further on.
    consumer.send(b"\n");
    let mut waits = 0;
    step_until(&mut consumer, |p| {
        waits += usize::from(p.contains("next: sem_timedwait(&full"));
        waits == 2
    });
    let frame = watch_until(&["shm", "--name", &name], "head = 5");
    assert!(frame.contains("slots: [####] head=1 tail=1"), "{frame}");
    assert!(frame.contains("tail = 1 (taken)"), "{frame}");
    assert!(frame.contains("consumer: pid"), "{frame}");

    consumer.close_stdin();
    let with_watcher = consumer.finish();
    producer.finish().assert_code(0);
    with_watcher.assert_code(0);
    // The same run without a watcher (and without --step) ends with the same summary.
    let alone = run(&shm, &[&["--quiet"][..], &ring].concat(), b"");
    assert_eq!(with_watcher.summary(), alone.summary());
    assert_eq!(with_watcher.summary(), perfect(12, 64));
    assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists());
}

#[test]
fn a_full_pipe_shows_the_bytes_written_and_not_yet_read() {
    let pipe = demo("pipe-demo");
    let mut p = Process::start(&pipe, &["capacity", "--step"]);
    // Every write is done and no read yet: the pipe holds what was written.
    step_until(&mut p, |prompt| prompt.contains("next: read("));
    let pid = p.pid().to_string();
    let frame = watch(&["pipe", "--pid", &pid]);
    p.close_stdin();
    let r = p.finish();
    r.assert_code(0);
    let filled = r.field("filled");
    assert!(filled > 0);
    assert!(
        frame.contains(&format!("bytes waiting: {filled} of {filled} bytes")),
        "{frame}"
    );
    assert!(frame.contains("read ends: fd 3 of pid"), "{frame}");
    assert!(frame.contains("write ends: fd 4 of pid"), "{frame}");
    // The watcher's duplicate was no reader: the demo drained exactly what it wrote.
    assert_eq!(r.field("drained"), filled);
}

#[test]
fn a_fifo_shows_the_bytes_a_writer_left_and_no_write_end() {
    let fifo = demo("fifo-demo");
    let dir = Scratch::new("watch-fifo");
    let path = dir.arg("fifo");
    let mut consumer = Process::start(&fifo, &["consumer", "--path", &path, "--step"]);
    // Let the consumer make the FIFO and open it; the producer's open meets its open.
    step_until(&mut consumer, |p| p.contains("next: open("));
    let mut producer = Process::start(
        &fifo,
        &["producer", "--path", &path, "--count", "3", "--quiet"],
    );
    consumer.send(b"\n");
    step_until(&mut consumer, |p| p.contains("next: read("));
    producer.close_stdin();
    producer.finish().assert_code(0);
    // The producer wrote 3 frames of 80 bytes and exited; nobody has read them yet.
    let frame = watch(&["fifo", "--path", &path]);
    assert!(frame.contains("bytes waiting: 240 of"), "{frame}");
    assert!(frame.contains("write ends: none"), "{frame}");
    assert!(frame.contains("read ends: fd"), "{frame}");
    consumer.close_stdin();
    let r = consumer.finish();
    r.assert_code(0);
    // The watcher added no end: the consumer got all three messages, then end-of-file.
    assert_eq!(r.summary(), perfect(3, 64));
    dir.assert_empty();
}

#[test]
fn a_blocked_signal_shows_as_pending() {
    let signal = demo("signal-demo");
    let mut p = Process::start(&signal, &["coalesce", "--count", "3", "--step"]);
    // Stop at the sender's last step: every SIGUSR1 is sent, the receiver still blocks it.
    // The receiver's pid is in the tag of its own prompts, which come before that.
    let mut receiver = None;
    step_until(&mut p, |prompt| {
        if let Some(rest) = prompt.strip_prefix("[receiver ") {
            receiver = rest.split(']').next().map(str::to_string);
        }
        prompt.starts_with("[sender ") && prompt.contains("next: write(")
    });
    let pid = receiver.expect("a prompt of the receiver");
    let frame = watch(&["signal", "--pid", &pid]);
    p.close_stdin();
    let r = p.finish();
    r.assert_code(0);
    assert!(frame.contains("pending: SIGUSR1"), "{frame}");
    assert!(frame.contains("blocked: SIGUSR1"), "{frame}");
    assert!(
        frame.contains("caught: ") && frame.contains("SIGUSR1"),
        "{frame}"
    );
    assert_eq!(r.summary(), "summary: sent=3 received=1");
}

#[test]
fn a_missing_object_is_said_and_bad_usage_is_exit_2() {
    let frame = watch(&["shm", "--name", "/ipc-watch-test-nothing-here"]);
    assert!(frame.contains("no such object (yet)"), "{frame}");
    let frame = watch(&["signal", "--pid", "999999999"]);
    assert!(frame.contains("no process 999999999"), "{frame}");
    let r = run(WATCH, &["--once", "msgq", "--key", "0"], b"");
    r.assert_code(2);
    assert!(r.stderr.contains("IPC_PRIVATE"), "{r}");
    // The live view needs a terminal; here standard output is a pipe.
    let r = run(WATCH, &["shm"], b"");
    r.assert_code(2);
    assert!(r.stderr.contains("--once"), "{r}");
}

/// Watching a FIFO by mistake (`lazy` or `mmap` given a FIFO's path, or a FIFO planted at
/// the default path) must not open it: even a non-blocking read-only open would wake a
/// writer waiting in its own `open`, whose bytes would then go nowhere.
#[test]
fn a_fifo_at_a_watched_path_is_refused_without_waking_its_writer() {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let scratch = Scratch::new("fifo-at-path");
    let path = scratch.path("not-a-file");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    // A writer that waits in open(O_WRONLY) until some reader opens the FIFO, then
    // writes one byte (an EPIPE if that reader has gone already) and closes.
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        if let Ok(mut w) = std::fs::OpenOptions::new().write(true).open(&writer_path) {
            let _ = w.write_all(b"x");
        }
    });
    for view in ["lazy", "mmap"] {
        let frame = watch(&[view, "--path", &path.to_string_lossy()]);
        assert!(
            frame.contains("it is a FIFO, not a regular file"),
            "{frame}"
        );
    }
    // Now this test opens the FIFO itself. If no watcher opened it, the writer is still
    // waiting: it wakes now and its byte arrives. Had a watcher opened it, the writer
    // would have written into a FIFO with no reader and gone: end of file at once.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .expect("open the FIFO to read");
    writer.join().expect("the writer thread");
    let mut got = Vec::new();
    let _ = reader.read_to_end(&mut got);
    assert_eq!(got, b"x", "a watcher opened the FIFO and woke its writer");
}

/// A huge sparse file at `lazy`'s path (a terabyte is a `truncate` away) must not make
/// the view allocate a byte per page: with the data segment limited to 256 MiB
/// (`prlimit --data`), an earlier version's two vectors of 268 million pages each made
/// the allocation fail and the process abort.
#[test]
fn lazy_looks_at_a_terabyte_sparse_file_in_bounded_memory() {
    let scratch = Scratch::new("lazy-terabyte");
    let path = scratch.path("sparse");
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(1 << 40))
        .expect("a sparse file of 1 TiB");
    let path = path.to_string_lossy().into_owned();
    let args = ["--data=268435456", WATCH, "--once", "lazy", "--path", &path];
    let r = run("prlimit", &args, b"");
    r.assert_code(0);
    assert!(
        r.stdout
            .contains("pages in memory (mincore): 0 of 16777216 pages"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("looked at: the first 16777216 of 268435456 pages"),
        "{r}"
    );
    std::fs::remove_file(&path).expect("remove the sparse file");
}
