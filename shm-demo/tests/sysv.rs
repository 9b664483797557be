//! The key-based System V path and the three kinds of semaphore, as a student runs them:
//! the built binary, real segments and semaphore sets, real processes, a real SIGKILL.
//! Each test uses its own key and semaphore name (the test process's pid and a number),
//! and checks that nothing of its own is left in `ipcs -m -s` or `/dev/shm`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says it failed by panicking

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use testkit::{Process, perfect, run};

const BIN: &str = env!("CARGO_BIN_EXE_shm-demo");

fn shm_demo(args: &[&str]) -> testkit::Run {
    run(BIN, args, b"")
}

/// A key no other test uses: 0x53 ('S'), 16 bits of this process's pid, and `test`.
fn key(test: u8) -> (i32, String) {
    let key = (0x53u32 << 24) | ((std::process::id() & 0xffff) << 8) | u32::from(test);
    (key as i32, format!("{key:#010x}"))
}

/// A semaphore name no other test uses.
fn sem_name(test: &str) -> String {
    format!("/ipc-demos-test-{}-{test}", std::process::id())
}

/// The segment with `key`, if any (`shmget(key, 0, 0)`).
fn segment(key: i32) -> Option<i32> {
    // SAFETY: shmget takes plain integers; size 0 and no flags only look the key up.
    let id = unsafe { libc::shmget(key, 0, 0) };
    (id >= 0).then_some(id)
}

/// The semaphore set with `key`, if any.
fn set(key: i32) -> Option<i32> {
    // SAFETY: semget takes plain integers; no flags only look the key up.
    let id = unsafe { libc::semget(key, 0, 0) };
    (id >= 0).then_some(id)
}

fn assert_nothing_left(key: i32, sem: Option<&str>) {
    assert_eq!(segment(key), None, "a segment with key {key:#x} is left");
    assert_eq!(set(key), None, "a semaphore set with key {key:#x} is left");
    if let Some(name) = sem {
        let file = format!("/dev/shm/sem.{}", name.trim_start_matches('/'));
        assert!(!Path::new(&file).exists(), "{file} is left");
    }
}

/// Makes a segment of `size` bytes with `key` as a stranger to the demo would, writes
/// `bytes` at its start, and returns its id (removed by [`remove`]).
fn foreign_segment(key: i32, size: usize, bytes: &[u8]) -> i32 {
    // SAFETY: shmget takes plain integers.
    let id = unsafe { libc::shmget(key, size, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
    // SAFETY: attaches the new segment at an address the kernel chooses.
    let at = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    assert_ne!(at as isize, -1);
    assert!(bytes.len() <= size);
    // SAFETY: the segment has `size` bytes and `bytes` is no longer (asserted); `at` is
    // the attachment's start, detached right after the copy.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), at.cast::<u8>(), bytes.len());
        libc::shmdt(at);
    }
    id
}

fn remove(id: i32) {
    // SAFETY: IPC_RMID reads no buffer.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
}

#[test]
fn both_roles_over_a_segment_in_one_terminal_and_it_goes() {
    let (k, key) = key(1);
    let r = shm_demo(&["--api", "sysv", "--key", &key]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(3, 64));
    for call in [
        &format!("shmget({key}, "),
        ", IPC_CREAT|IPC_EXCL|0600) = ",
        &format!("shmget({key}, 0, 0) = "),
        ", NULL, 0) = 0x",
        "shm_nattch=1",
        ", IPC_RMID, NULL) = 0",
        "status dest",
        "shmdt(0x",
    ] {
        assert!(r.stdout.contains(call), "no {call} in:\n{r}");
    }
    assert_nothing_left(k, None);
}

#[test]
fn producer_and_consumer_in_two_terminals_find_each_other_by_key() {
    let (k, key) = key(2);
    let mut producer = Process::start(
        BIN,
        &["producer", "--api", "sysv", "--key", &key, "--count", "50"],
    );
    producer.wait_for_line("ready: run `shm-demo consumer --api sysv");
    let consumer = shm_demo(&["consumer", "--api", "sysv", "--key", &key, "--quiet"]);
    consumer.assert_code(0);
    assert_eq!(consumer.summary(), perfect(50, 64));
    producer.finish().assert_code(0);
    assert_nothing_left(k, None);
}

#[test]
fn a_segment_too_small_or_of_another_layout_is_refused_without_reading_past_it() {
    let (k, key) = key(3);
    let args = ["consumer", "--api", "sysv", "--key", &key, "--no-wait"];
    // Smaller than the header.
    let id = foreign_segment(k, 100, b"");
    let r = shm_demo(&args);
    remove(id);
    r.assert_code(1);
    assert!(r.stderr.contains("100 bytes"), "{r}");
    // Large enough, but not ours: no magic.
    let id = foreign_segment(k, 4096, b"not a ring at all");
    let r = shm_demo(&args);
    remove(id);
    r.assert_code(1);
    assert!(r.stderr.contains("not the magic"), "{r}");
    assert!(r.stderr.contains("ipcrm -m"), "{r}");
    // The magic, and a header whose ring is larger than the segment: refused before
    // any slot is read.
    let mut header = Vec::from(*b"IPCDSHM1");
    for field in [1u32, 4096, 4096, 0, std::process::id(), 0] {
        header.extend_from_slice(&field.to_ne_bytes());
    }
    let id = foreign_segment(k, 4096, &header);
    let r = shm_demo(&args);
    remove(id);
    r.assert_code(1);
    assert!(r.stderr.contains("needs"), "{r}");
    assert_nothing_left(k, None);
}

#[test]
fn another_users_segment_is_refused_and_ours_is_closed_to_another_user() {
    let (k, key) = key(4);
    // Another user makes the segment first: root could attach it, the demo refuses.
    let Some(mut command) = testkit::as_nobody(BIN) else {
        return;
    };
    command.args(["producer", "--api", "sysv", "--key", &key, "--count", "20"]);
    let mut stranger = Process::spawn(&mut command);
    stranger.wait_for_line("ready:");
    let r = shm_demo(&["consumer", "--api", "sysv", "--key", &key, "--no-wait"]);
    r.assert_code(1);
    assert!(r.stderr.contains("EACCES"), "{r}");
    assert!(r.stderr.contains("shm_perm.cuid=65534"), "{r}");
    assert!(r.stderr.contains("another user"), "{r}");
    stranger.signal(Signal::SIGTERM);
    assert_eq!(stranger.finish().code, Some(130));
    assert_eq!(
        segment(k),
        None,
        "the stranger's producer removed its segment"
    );
    // Ours, 0600: another user's consumer gets EACCES from the kernel itself.
    let mut producer = Process::start(
        BIN,
        &["producer", "--api", "sysv", "--key", &key, "--count", "20"],
    );
    producer.wait_for_line("ready:");
    let mut command = testkit::as_nobody(BIN).unwrap();
    command.args(["consumer", "--api", "sysv", "--key", &key, "--no-wait"]);
    let stranger = Process::spawn(&mut command).finish();
    stranger.assert_code(1);
    assert!(stranger.stderr.contains("EACCES"), "{stranger}");
    assert!(
        stranger.stderr.contains("another user made it"),
        "{stranger}"
    );
    producer.signal(Signal::SIGTERM);
    producer.finish();
    assert_nothing_left(k, None);
}

#[test]
fn a_killed_producer_leaves_its_segment_and_clean_removes_only_a_leftover() {
    let (k, key) = key(5);
    let mut producer = Process::start(
        BIN,
        &["producer", "--api", "sysv", "--key", &key, "--count", "20"],
    );
    producer.wait_for_line("ready:");
    // Attached by a live producer: not a leftover.
    let r = shm_demo(&["clean", "--api", "sysv", "--key", &key]);
    r.assert_code(1);
    assert!(r.stderr.contains("attached"), "{r}");
    producer.signal(Signal::SIGKILL);
    producer.finish();
    // The segment outlives its process: nattch 0, still there.
    let id = segment(k).expect("a segment outlives the producer killed with SIGKILL");
    let r = shm_demo(&["clean", "--api", "sysv", "--key", &key]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: removed=1");
    assert!(
        r.stdout
            .contains(&format!("shmctl({id}, IPC_RMID, NULL) = 0")),
        "{r}"
    );
    assert_nothing_left(k, None);
    let r = shm_demo(&["clean", "--api", "sysv", "--key", &key]);
    assert_eq!(r.summary(), "summary: removed=0");
}

fn holder_dies(kind: &str, extra: &[&str], test: u8) -> testkit::Run {
    let (k, key) = key(test);
    let name = sem_name(&format!("holder-{test}"));
    let mut args = vec![
        "holder-dies",
        "--kind",
        kind,
        "--key",
        &key,
        "--sem-name",
        &name,
    ];
    args.extend_from_slice(extra);
    let r = shm_demo(&args);
    r.assert_code(0);
    assert!(r.stdout.contains(", SIGKILL) = 0"), "{r}");
    assert_nothing_left(k, Some(&name));
    r
}

#[test]
fn a_killed_holder_keeps_an_unnamed_semaphore_taken() {
    let r = holder_dies("unnamed", &["--timeout-ms", "300"], 10);
    assert_eq!(
        r.summary(),
        "summary: kind=unnamed undo=no waiter=timed_out"
    );
    assert!(
        r.stdout
            .contains("sem_timedwait(&lock, now+300ms) = -1 ETIMEDOUT"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("sem_getvalue(&lock, &value) = 0   (value=0)"),
        "{r}"
    );
}

#[test]
fn a_killed_holder_keeps_a_named_semaphore_taken() {
    let r = holder_dies("named", &["--timeout-ms", "300"], 11);
    assert_eq!(r.summary(), "summary: kind=named undo=no waiter=timed_out");
    assert!(r.stdout.contains("sem_open(\"/ipc-demos-test-"), "{r}");
    assert!(r.stdout.contains("-1 ETIMEDOUT"), "{r}");
    assert!(r.stdout.contains("sem_unlink("), "{r}");
}

#[test]
fn sem_undo_gives_a_killed_holders_system_v_semaphore_back() {
    let r = holder_dies("sysv", &[], 12);
    assert_eq!(r.summary(), "summary: kind=sysv undo=yes waiter=took");
    assert!(r.stdout.contains("{0, -1, SEM_UNDO}, 1) = 0"), "{r}");
    assert!(r.stdout.contains(", 0, GETVAL) = 1"), "{r}");
}

#[test]
fn without_sem_undo_a_system_v_semaphore_stays_taken_too() {
    let r = holder_dies("sysv", &["--no-undo", "--timeout-ms", "300"], 13);
    assert_eq!(r.summary(), "summary: kind=sysv undo=no waiter=timed_out");
    assert!(
        r.stdout.contains("{0, -1, 0}, 1, 300ms) = -1 EAGAIN"),
        "{r}"
    );
}

fn race(lock: &str, test: u8) -> testkit::Run {
    let (k, key) = key(test);
    let name = sem_name(&format!("race-{test}"));
    let r = shm_demo(&[
        "race",
        "--lock",
        lock,
        "--count",
        "3000",
        "--key",
        &key,
        "--sem-name",
        &name,
    ]);
    r.assert_code(0);
    assert_nothing_left(k, Some(&name));
    r
}

#[test]
fn every_lock_keeps_every_increment() {
    for (test, lock) in [(20, "atomic"), (21, "unnamed"), (22, "named"), (23, "sysv")] {
        let r = race(lock, test);
        assert_eq!(
            r.summary(),
            format!("summary: lock={lock} expected=6000 got=6000 lost=0")
        );
    }
}

#[test]
fn without_a_lock_the_race_reports_what_it_got() {
    let r = race("none", 24);
    let got = r.field("got");
    assert!(got <= 6000, "{r}");
    assert_eq!(r.field("lost"), 6000 - got);
}

#[test]
fn a_python_peer_reads_the_documented_layout_by_key() {
    let python = Command::new("python3")
        .args(["-c", "import sysv_ipc"])
        .status();
    if !python.is_ok_and(|s| s.success()) {
        println!("skipped: python3 or its sysv_ipc package is missing (pip install sysv_ipc)");
        return;
    }
    let (k, key) = key(30);
    let mut producer = Process::start(
        BIN,
        &[
            "producer", "--api", "sysv", "--key", &key, "--wait", "spin", "--count", "40",
            "--slots", "4",
        ],
    );
    producer.wait_for_line("ready:");
    let peer = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer.py");
    let r = run("python3", &[peer, &key], b"");
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(40, 64));
    producer
        .finish_within(Duration::from_secs(30))
        .assert_code(0);
    assert_nothing_left(k, None);
}

#[test]
fn a_named_semaphore_left_by_a_killed_run_is_listed_and_cleaned_only_once_unused() {
    let name = sem_name("left-named");
    let file = format!("/dev/shm/sem.{}", name.trim_start_matches('/'));
    // The waiter of holder-dies holds the semaphore open while it waits; killed there
    // with SIGKILL, it cannot remove it.
    let mut waiter = Process::start(
        BIN,
        &[
            "holder-dies",
            "--kind",
            "named",
            "--sem-name",
            &name,
            "--timeout-ms",
            "600000",
        ],
    );
    waiter.wait_for_line("sem_timedwait(&lock, now+600000ms) ...");
    let r = shm_demo(&["clean", "--sem-name", &name]);
    r.assert_code(1);
    assert!(r.stderr.contains("have it open"), "{r}");
    waiter.signal(Signal::SIGKILL);
    waiter.finish();
    assert!(
        Path::new(&file).exists(),
        "a named semaphore outlives its processes"
    );
    let status = shm_demo(&["status"]);
    status.assert_code(0);
    assert!(
        status.stdout.contains(&format!("named semaphore {name}")),
        "{status}"
    );
    let r = shm_demo(&["clean", "--sem-name", &name]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: removed=1");
    assert!(
        r.stdout.contains(&format!("sem_unlink({name:?}) = 0")),
        "{r}"
    );
    assert!(!Path::new(&file).exists());
}

#[test]
fn a_semaphore_set_left_by_a_killed_run_is_listed_and_cleaned() {
    let (k, key) = key(40);
    let mut waiter = Process::start(
        BIN,
        &[
            "holder-dies",
            "--kind",
            "sysv",
            "--no-undo",
            "--key",
            &key,
            "--timeout-ms",
            "600000",
        ],
    );
    waiter.wait_for_line("600000ms) ...");
    waiter.signal(Signal::SIGKILL);
    waiter.finish();
    assert!(set(k).is_some(), "a System V set outlives its processes");
    let status = shm_demo(&["status", "--key", &key]);
    assert_eq!(status.summary(), "summary: found=1");
    assert!(
        status.stdout.contains(&format!("semaphore set key {key}")),
        "{status}"
    );
    let r = shm_demo(&["clean", "--api", "sysv", "--key", &key]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: removed=1");
    assert!(r.stdout.contains(", 0, IPC_RMID) = 0"), "{r}");
    assert_nothing_left(k, None);
}

#[test]
fn holder_dies_explains_itself_in_korean_with_the_same_calls_and_summary() {
    let (k, key) = key(41);
    let args = ["holder-dies", "--kind", "sysv", "--key", &key];
    let (en, ko) = (
        testkit::lang::english(BIN, &args),
        testkit::lang::korean(BIN, &args),
    );
    en.assert_code(0);
    ko.assert_code(0);
    assert_eq!(ko.summary(), en.summary());
    assert!(testkit::lang::has_korean(&ko.stdout), "{ko}");
    assert!(!testkit::lang::has_korean(&en.stdout), "{en}");
    assert!(ko.stdout.contains("SEM_UNDO"), "{ko}");
    // The calls are the same bytes but for the set's id and the addresses. The holder's
    // write is left out: the parent kills it as soon as the byte arrives, sometimes
    // before the holder has printed that its write returned.
    let shape = |r: &testkit::Run| -> Vec<String> {
        testkit::lang::calls(r)
            .into_iter()
            .map(|c| c.split('(').next().unwrap_or("").to_string())
            .filter(|c| c != "[holder] write")
            .collect()
    };
    assert_eq!(shape(&ko), shape(&en));
    assert_nothing_left(k, None);
}

fn two_terminals(kind: &str, test: u8, kill_holder: bool) -> testkit::Run {
    let (k, key) = key(test);
    let name = sem_name(&format!("two-{test}"));
    let place = ["--kind", kind, "--key", &key, "--sem-name", &name];
    let mut holder = Process::start(BIN, &[&["sem-hold"], &place[..]].concat());
    holder.wait_for_line("holding it: run `shm-demo sem-wait");
    let mut wait_args = [&["sem-wait"], &place[..]].concat();
    wait_args.extend_from_slice(&["--timeout-ms", "3000"]);
    let mut waiter = Process::start(BIN, &wait_args);
    // The waiter is in its wait: the holder may now give it, or die holding it.
    waiter.wait_for_line("3000ms) ...");
    if kill_holder {
        holder.signal(Signal::SIGKILL);
    } else {
        holder.send(b"\n");
    }
    let r = waiter.finish();
    r.assert_code(0);
    if kill_holder {
        holder.finish();
        // Nobody removed it: clean does, as after any killed run.
        let api = if kind == "sysv" { "sysv" } else { "posix" };
        let c = shm_demo(&["clean", "--api", api, "--key", &key, "--sem-name", &name]);
        assert_eq!(c.summary(), "summary: removed=1", "{c}");
    } else {
        holder.close_stdin();
        let h = holder.finish();
        h.assert_code(0);
        assert_eq!(h.summary(), format!("summary: kind={kind} holder=done"));
    }
    assert_nothing_left(k, Some(&name));
    r
}

#[test]
fn a_named_semaphore_between_two_unrelated_processes() {
    let r = two_terminals("named", 50, false);
    assert_eq!(r.summary(), "summary: kind=named waiter=took");
    assert!(r.stdout.contains("sem_open(\"/ipc-demos-test-"), "{r}");
    assert!(r.stdout.contains(", 0) = 0x"), "{r}");
}

#[test]
fn a_system_v_semaphore_between_two_unrelated_processes() {
    let r = two_terminals("sysv", 51, false);
    assert_eq!(r.summary(), "summary: kind=sysv waiter=took");
}

#[test]
fn across_two_terminals_a_killed_holder_keeps_a_named_semaphore_but_not_a_system_v_one() {
    let r = two_terminals("named", 52, true);
    assert_eq!(r.summary(), "summary: kind=named waiter=timed_out");
    let r = two_terminals("sysv", 53, true);
    assert_eq!(r.summary(), "summary: kind=sysv waiter=took");
}

#[test]
fn a_key_without_sysv_or_a_name_with_it_is_a_usage_error() {
    let r = shm_demo(&["producer", "--key", "0x53000009"]);
    r.assert_code(2);
    assert!(r.stderr.contains("add --api sysv"), "{r}");
    let r = shm_demo(&["consumer", "--api", "sysv", "--name", "/x"]);
    r.assert_code(2);
    assert!(r.stderr.contains("found by --key"), "{r}");
    let r = shm_demo(&["--api", "sysv", "--key", "0"]);
    r.assert_code(2);
    let r = shm_demo(&["sem-wait", "--kind", "unnamed"]);
    r.assert_code(2);
    assert!(r.stderr.contains("--kind named or --kind sysv"), "{r}");
}

#[test]
fn a_consumer_whose_producer_was_killed_says_so_and_removes_the_segment() {
    let (k, key) = key(60);
    let mut producer = Process::start(
        BIN,
        &[
            "producer", "--api", "sysv", "--key", &key, "--count", "100", "--slots", "4",
        ],
    );
    producer.wait_for_line("ready:");
    producer.signal(Signal::SIGKILL);
    producer.finish();
    assert!(segment(k).is_some(), "the killed producer's segment stays");
    let r = shm_demo(&["consumer", "--api", "sysv", "--key", &key, "--no-wait"]);
    r.assert_code(1);
    assert!(r.stderr.contains("ESRCH"), "{r}");
    assert!(r.stdout.contains("IPC_RMID, NULL) = 0"), "{r}");
    assert_nothing_left(k, None);
}
