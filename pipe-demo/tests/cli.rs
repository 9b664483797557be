//! pipe-demo as a student runs it: the built binary, real pipes, real fork.
//!
//! Every test starts `pipe-demo` as a process and checks its summary line and exit code.
//! The producer and the consumer are two processes (the demo forks); the pipe between
//! them is the ordering, so no test waits on time.

use testkit::{perfect, run};

const BIN: &str = env!("CARGO_BIN_EXE_pipe-demo");

fn pipe_demo(args: &[&str]) -> testkit::Run {
    run(BIN, args, b"")
}

#[test]
fn the_default_run_is_narrated_and_verified() {
    let r = pipe_demo(&[]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(3, 64));
    // Both processes narrate, each closes the end it does not use, and the child sees EOF.
    assert!(r.stdout.contains("pipe() = [3, 4]"), "{r}");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("[consumer ") && l.contains("close(4) = 0")),
        "{r}"
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("[producer ") && l.contains("close(3) = 0")),
        "{r}"
    );
    assert!(r.stdout.contains("read() = 0: end of file"), "{r}");
}

#[test]
fn a_hundred_thousand_small_messages_arrive_complete_and_in_order() {
    let r = pipe_demo(&["--quiet", "--count", "100000", "--size", "64"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(100_000, 64));
}

#[test]
fn a_hundred_messages_of_one_mebibyte_arrive_complete_and_in_order() {
    let r = pipe_demo(&["--quiet", "--count", "100", "--size", "1M"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(100, 1 << 20));
}

#[test]
fn quiet_prints_the_summary_and_nothing_else() {
    let r = pipe_demo(&["--quiet", "--count", "2"]);
    r.assert_code(0);
    assert_eq!(r.stdout, format!("{}\n", perfect(2, 64)));
}

#[test]
fn count_zero_sends_nothing_and_says_so() {
    let r = pipe_demo(&["--count", "0"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(0, 64));
}

#[test]
fn step_waits_for_enter_before_each_call_and_stops_waiting_at_end_of_input() {
    // One Enter: the first call (pipe) goes ahead after it, the next prompt meets
    // end-of-file and the run finishes without waiting.
    let r = run(BIN, &["--step", "--count", "1"], b"\n");
    r.assert_code(0);
    assert!(r.stdout.contains("next: pipe()  [Enter]"), "{r}");
    assert!(
        r.stdout
            .contains("standard input ended: --step stops waiting"),
        "{r}"
    );
    assert_eq!(r.summary(), perfect(1, 64));
}

#[test]
fn duplex_answers_every_request_over_a_second_pipe() {
    let r = pipe_demo(&["duplex", "--count", "1000", "--size", "100"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(1000, 100));
    assert!(
        r.stdout.contains("(requests: client -> server) = [3, 4]"),
        "{r}"
    );
    assert!(
        r.stdout.contains("(replies:  server -> client) = [5, 6]"),
        "{r}"
    );
}

#[test]
fn shell_runs_ls_into_grep_through_a_pipe_and_removes_its_folder() {
    let r = pipe_demo(&["shell"]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: ls=exited(0) grep=exited(0)");
    // grep's own output went to our stdout: only the names with "hello" in them.
    let found: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with('[') && !l.starts_with("summary"))
        .collect();
    assert_eq!(found, ["hello.txt", "hello_world.c"], "{r}");
    assert!(r.stdout.contains("dup2(4, 1) = 1"), "{r}");
    assert!(r.stdout.contains("dup2(3, 0) = 0"), "{r}");
    // The narration names the folder; it must be gone now.
    let made = r
        .stdout
        .lines()
        .find_map(|l| l.split("made ").nth(1))
        .expect("folder line");
    let dir = made.split(" with ").next().expect("folder path");
    assert!(!std::path::Path::new(dir).exists(), "{dir} was left behind");
}

#[test]
fn capacity_fills_exactly_what_the_kernel_reports() {
    let r = pipe_demo(&["capacity"]);
    r.assert_code(0);
    let summary = r.summary();
    assert!(r.field("capacity") >= 4096, "{summary}");
    assert_eq!(r.field("filled"), r.field("capacity"), "{summary}");
    assert_eq!(r.field("drained"), r.field("filled"), "{summary}");
    assert!(r.stdout.contains("= -1 EAGAIN"), "{r}");
}

#[test]
fn capacity_can_be_changed_with_f_setpipe_sz() {
    let r = pipe_demo(&["capacity", "--set", "256K"]);
    r.assert_code(0);
    assert_eq!(
        r.summary(),
        "summary: capacity=262144 filled=262144 drained=262144"
    );
}

#[test]
fn broken_shows_eof_without_writers_and_epipe_without_readers() {
    let r = pipe_demo(&["broken"]);
    r.assert_code(0);
    assert_eq!(
        r.summary(),
        "summary: read_without_writers=EOF write_without_readers=EPIPE"
    );
    assert!(r.stdout.contains("= -1 EPIPE (Broken pipe)"), "{r}");
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let r = pipe_demo(&["--frobnicate"]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("unexpected argument '--frobnicate'"),
        "{r}"
    );
}

#[test]
fn size_zero_is_refused_with_the_range() {
    let r = pipe_demo(&["--size", "0"]);
    r.assert_code(2);
    assert!(
        r.stderr
            .contains("outside this mechanism's range of 1 bytes to 67108864 bytes (64 MiB)"),
        "{r}"
    );
}

#[test]
fn a_size_over_the_limit_is_refused_before_anything_is_created() {
    let r = pipe_demo(&["--size", "65M"]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("invalid value '65M' for '--size <SIZE>'"),
        "{r}"
    );
    assert!(r.stdout.is_empty(), "nothing may run: {r}");
}

#[test]
fn a_count_over_the_limit_is_refused() {
    let r = pipe_demo(&["--count", "100000001"]);
    r.assert_code(2);
}

#[test]
fn help_explains_the_mechanism_with_an_example() {
    let r = pipe_demo(&["--help"]);
    r.assert_code(0);
    assert!(r.stdout.contains("fork + pipe"), "{r}");
    assert!(r.stdout.contains("Example:"), "{r}");
    for lesson in ["duplex", "shell", "capacity", "broken"] {
        let r = pipe_demo(&[lesson, "--help"]);
        r.assert_code(0);
        assert!(
            r.stdout.contains("Example: cargo run -p pipe-demo -- "),
            "{lesson}: {r}"
        );
    }
}

#[test]
fn a_closed_standard_output_is_an_error_not_a_panic() {
    // Run the demo with its stdout already closed by the reader: the summary cannot be
    // written, and the consumer must say so and exit 1 rather than panic.
    // O_CLOEXEC: tests run in parallel threads, and a process another test spawns must not
    // inherit the read end, or the pipe would still have a reader.
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    drop(read_end);
    let status = std::process::Command::new(BIN)
        .args(["--quiet"])
        .stdout(write_end)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("write(1, summary) failed: EPIPE"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
