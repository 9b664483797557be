//! `common::cleanup` with real signals: a process that created a file is interrupted,
//! and the file must be gone and the exit code 130; ending normally also removes it.

use nix::sys::signal::Signal;
use testkit::Process;

const PROBE: &str = env!("CARGO_BIN_EXE_cleanup-probe");

fn probe_file(test: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ipc-demos-probe-{}-{test}", std::process::id()))
}

fn interrupted_by(signal: Signal, test: &str) {
    let file = probe_file(test);
    let mut p = Process::start(PROBE, &[&file]);
    p.wait_for_line("ready");
    assert!(file.exists(), "the probe did not create {}", file.display());
    p.signal(signal);
    let run = p.finish();
    run.assert_code(130);
    assert!(
        run.stdout.contains("interrupted (SIGINT or SIGTERM)"),
        "{run}"
    );
    assert!(
        !file.exists(),
        "{} was left behind after {signal}",
        file.display()
    );
}

#[test]
fn ctrl_c_removes_what_was_created_and_exits_130() {
    interrupted_by(Signal::SIGINT, "sigint");
}

#[test]
fn sigterm_removes_what_was_created_and_exits_130() {
    interrupted_by(Signal::SIGTERM, "sigterm");
}

#[test]
fn a_normal_end_removes_what_was_created_and_exits_0() {
    let file = probe_file("normal");
    let mut p = Process::start(PROBE, &[&file]);
    p.wait_for_line("ready");
    p.close_stdin();
    p.finish().assert_code(0);
    assert!(!file.exists(), "{} was left behind", file.display());
}
