//! ALPC, rebuilt: a real server process, real clients, real sections and real reads of
//! another process's memory; ordered by the lines they print, never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testkit::{Process, Run, Scratch};

const BIN: &str = env!("CARGO_BIN_EXE_ports-demo");

/// An ALPC server at `scratch/alpc` that ends after `clients` channels, ready.
fn server(s: &Scratch, clients: &str) -> Process {
    let mut p = Process::start(
        BIN,
        &[
            "alpc-server",
            "--port",
            &s.arg("alpc"),
            "--clients",
            clients,
        ],
    );
    p.wait_for_line("connection port ready");
    p
}

fn run(s: &Scratch, args: &[&str]) -> Run {
    let port = s.arg("alpc");
    let mut all = args.to_vec();
    all.extend(["--port", &port]);
    testkit::run(BIN, &all, b"")
}

/// The word after `name=` in the summary line.
fn word(run: &Run, name: &str) -> String {
    run.summary()
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name}= in {run}"))
        .to_string()
}

#[test]
fn each_path_and_the_callback_carry_the_right_bytes() {
    let s = Scratch::new("alpc-paths");
    let srv = server(&s, "1");
    // 100 bytes inline, 10 KiB through the 64 KiB sections, 1 MiB read from and written
    // into the client's memory; then greet(), which calls back.
    let client = run(&s, &["alpc-client", "--sizes", "100,10K,1M"]);
    client.assert_code(0);
    assert_eq!(
        client.summary(),
        "summary: calls=4 ok=4 wrong=0 inline=2 section=1 direct=1 reply_inline=2 reply_section=1 reply_direct=1 callbacks=1",
        "{client}"
    );
    let served = srv.finish();
    served.assert_code(0);
    assert_eq!(
        served.summary(),
        "summary: channels=1 requests=4 refused=0 vanished=0 direct=2 callbacks=1",
        "{served}"
    );
    assert!(served.stdout.contains("process_vm_readv("), "{served}");
    assert!(served.stdout.contains("process_vm_writev("), "{served}");
    s.assert_empty();
}

#[test]
fn a_smaller_section_sends_more_data_down_the_direct_path() {
    let s = Scratch::new("alpc-small-section");
    let srv = server(&s, "1");
    let client = run(&s, &["alpc-client", "--section", "4K", "--sizes", "300,5K"]);
    client.assert_code(0);
    assert_eq!(
        (
            client.field("section"),
            client.field("direct"),
            client.field("ok")
        ),
        (1, 1, 3),
        "{client}"
    );
    srv.finish().assert_code(0);
    s.assert_empty();
}

#[test]
fn rpc_stubs_marshal_the_arguments_and_unmarshal_the_results() {
    let s = Scratch::new("alpc-rpc");
    let srv = server(&s, "1");
    let rpc = run(&s, &["rpc", "--large", "20K"]);
    rpc.assert_code(0);
    assert_eq!(
        (rpc.field("calls"), rpc.field("ok"), rpc.field("wrong")),
        (4, 4, 0),
        "{rpc}"
    );
    assert_eq!(
        (rpc.field("section"), rpc.field("callbacks")),
        (1, 1),
        "{rpc}"
    );
    assert!(
        rpc.stdout.contains(
            "rpc add(2, 40): arguments marshaled into 16 bytes: 02 00 00 00 00 00 00 00 28 00"
        ),
        "{rpc}"
    );
    assert!(rpc.stdout.contains("add(2, 40) = 42"), "{rpc}");
    srv.finish().assert_code(0);
    s.assert_empty();
}

#[test]
fn a_channel_cannot_be_reached_by_another_process() {
    let s = Scratch::new("alpc-private");
    let srv = server(&s, "2");
    let mut holder = Process::start(BIN, &["alpc-client", "--port", &s.arg("alpc"), "--hold"]);
    let line = holder.wait_for_line("holding: channel on fd");
    let fd = line
        .split("on fd ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    let pid = holder.pid().to_string();
    // The same user: the socket has no name, and /proc will not open it; pidfd_getfd
    // works only because this user may ptrace the client (the chapter says so).
    let same = testkit::run(BIN, &["alpc-peek", "--pid", &pid, "--fd", &fd], b"");
    same.assert_code(0);
    assert_eq!(word(&same, "open"), "ENXIO", "{same}");
    assert!(same.stdout.contains("a socket with no path"), "{same}");
    // Another user gets nothing at all (and the demo makes nothing of theirs on disk).
    let their_folder = std::env::temp_dir().join("ipc-demos-65534");
    let existed = their_folder.exists();
    let as_nobody = |args: &[&str]| {
        let mut all = vec![
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            BIN,
        ];
        all.extend(args);
        testkit::run("setpriv", &all, b"")
    };
    // Only when setpriv cannot start the demo at all (not root, or the binary unreadable
    // for uid 65534) is this half skipped; a failing peek is a failed test.
    let can = as_nobody(&["--version"]);
    if can.code == Some(0) {
        let other = as_nobody(&["alpc-peek", "--pid", &pid, "--fd", &fd]);
        other.assert_code(0);
        assert_eq!(
            other.summary(),
            "summary: readlink=EACCES open=EACCES pidfd_getfd=EPERM",
            "{other}"
        );
        assert!(
            existed || !their_folder.exists(),
            "alpc-peek created {}",
            their_folder.display()
        );
    } else {
        println!("skipped the second-user half: setpriv cannot run the demo as uid 65534:\n{can}");
    }
    // A second client is given a channel of its own, and the first goes on undisturbed.
    let second = run(&s, &["alpc-client", "--sizes", "100"]);
    second.assert_code(0);
    assert!(second.stdout.contains("channel 2:"), "{second}");
    holder.send(b"\n");
    let first = holder.finish();
    first.assert_code(0);
    assert_eq!(first.field("ok"), 4, "{first}");
    assert!(first.stdout.contains("channel 1:"), "{first}");
    srv.finish().assert_code(0);
    s.assert_empty();
}

#[test]
fn lies_are_refused_a_vanished_client_ends_only_its_channel() {
    let s = Scratch::new("alpc-bad");
    let srv = server(&s, "5");
    for (how, says) in [
        (
            "lying-length",
            "its header says 200 bytes of data, but 10 came with it",
        ),
        ("section-bounds", "it ends outside the 65536-byte mapping"),
        ("bad-address", "EFAULT"),
    ] {
        let bad = run(&s, &["alpc-client", "--bad", how]);
        bad.assert_code(0);
        assert_eq!((bad.field("refused"), bad.field("ok")), (1, 1), "{bad}");
        assert!(bad.stdout.contains(says), "{how}: {bad}");
    }
    let gone = run(&s, &["alpc-client", "--bad", "vanish"]);
    gone.assert_code(0);
    assert_eq!(word(&gone, "bad"), "vanish", "{gone}");
    let good = run(&s, &["alpc-client", "--sizes", "100,10K,1M"]);
    good.assert_code(0);
    assert_eq!(good.field("ok"), 4, "{good}");
    let served = srv.finish();
    served.assert_code(0);
    assert_eq!(
        (
            served.field("channels"),
            served.field("refused"),
            served.field("vanished")
        ),
        (5, 3, 1),
        "{served}"
    );
    s.assert_empty();
}

#[test]
fn one_terminal_runs_the_server_and_the_client() {
    let s = Scratch::new("alpc-tour");
    let run = run(&s, &["alpc", "--sizes", "100,10K,1M"]);
    run.assert_code(0);
    assert_eq!(run.field("ok"), 4, "{run}");
    assert_eq!(run.field("direct"), 1, "{run}");
    s.assert_empty();
}

#[test]
fn an_interrupted_server_removes_its_connection_port() {
    let s = Scratch::new("alpc-interrupt");
    let srv = server(&s, "10");
    assert!(s.path("alpc").exists());
    srv.signal(Signal::SIGINT);
    srv.finish().assert_code(130);
    s.assert_empty();
    let none = run(&s, &["alpc-client"]);
    none.assert_code(1);
    assert!(
        none.stderr.contains("no ALPC server at this path"),
        "{none}"
    );
}

/// A client never hands its section (nor the right to read its memory) to a server of
/// another user: SO_PEERCRED names the server's uid, and the client refuses before it
/// makes the section (attack review: it used to send it, saying "the same user").
#[test]
fn a_client_refuses_a_server_of_another_user() {
    use std::os::unix::fs::PermissionsExt;
    // A folder nobody (65534) may create the port in, and root may pass through; in
    // /tmp itself, since a scratch folder of root's would not let nobody in.
    let theirs = std::env::temp_dir().join(format!("ipc-demos-test-{}-theirs", std::process::id()));
    std::fs::create_dir(&theirs).expect("mkdir");
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o711)).expect("chmod");
    if nix::unistd::chown(&theirs, Some(65534.into()), Some(65534.into())).is_err() {
        println!("skipped: cannot give a folder to uid 65534 (not root)");
        return;
    }
    let nobody = [
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        BIN,
        "--version",
    ];
    let can = testkit::run("setpriv", &nobody, b"");
    if can.code != Some(0) {
        println!("skipped: setpriv cannot run the demo as uid 65534:\n{can}");
        let _ = std::fs::remove_dir(&theirs);
        return;
    }
    let port = theirs.join("alpc");
    let port_arg = port.to_string_lossy().into_owned();
    let mut srv = Process::start(
        "setpriv",
        &[
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            BIN,
            "alpc-server",
            "--port",
            &port_arg,
            "--clients",
            "1",
        ],
    );
    srv.wait_for_line("connection port ready");
    let client = testkit::run(BIN, &["alpc-client", "--port", &port_arg], b"");
    client.assert_code(1);
    assert!(
        client.stderr.contains("the server runs as uid 65534"),
        "{client}"
    );
    assert!(
        !client.stdout.contains("memfd_create"),
        "the section was made:\n{client}"
    );
    srv.signal(Signal::SIGINT);
    let _ = srv.finish();
    let _ = std::fs::remove_file(&port);
    let _ = std::fs::remove_dir(&theirs);
}

/// A server that completes the handshake, takes the request, and never answers (a Python
/// peer written from the book's message format): the client gives up after `--timeout`
/// with one line naming the call and its errno, and a hint, and exit code 1 (attack
/// review: it waited as long as the server lived).
#[test]
fn an_alpc_client_gives_up_on_a_server_that_never_answers() {
    let python = std::process::Command::new("python3")
        .arg("--version")
        .output();
    if !python.is_ok_and(|o| o.status.success()) {
        println!("skipped: python3 is missing");
        return;
    }
    let s = Scratch::new("alpc-silent");
    let peer = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/silent_alpc.py");
    let mut silent = Process::start("python3", &[peer, &s.arg("alpc")]);
    silent.wait_for_line("listening at");
    let start = Instant::now();
    let client = Process::start(
        BIN,
        &[
            "alpc-client",
            "--port",
            &s.arg("alpc"),
            "--sizes",
            "100",
            "--timeout",
            "1",
        ],
    )
    .finish_within(Duration::from_secs(20));
    let took = start.elapsed();
    client.assert_code(1);
    assert!(
        took >= Duration::from_secs(1),
        "gave up after {took:?}:\n{client}"
    );
    // The handshake worked; the call is what found no answer.
    assert!(client.stdout.contains("channel 1:"), "{client}");
    assert_eq!(client.stderr.lines().count(), 1, "{client}");
    assert!(
        client.stderr.contains("recvmsg(")
            && client.stderr.contains("failed: EAGAIN")
            && client
                .stderr
                .contains("no answer from the ALPC server within 1 s (SO_RCVTIMEO)")
            && client.stderr.contains("--timeout 0"),
        "{client}"
    );
    let peer = silent.finish();
    peer.assert_code(0);
    assert!(peer.stdout.contains("took request 1"), "{peer}");
    assert!(peer.stdout.contains("the client closed its end"), "{peer}");
    s.assert_empty();
}

/// A helper process (`sleep`) whose standard input is `stdin`, killed and reaped when
/// dropped, so that a failing test leaves none behind.
struct Helper(std::process::Child);

impl Helper {
    fn start(stdin: std::process::Stdio) -> Helper {
        use std::process::{Command, Stdio};
        let child = Command::new("sleep")
            .arg("600")
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sleep");
        Helper(child)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// alpc-peek opens nothing but a channel. Given a descriptor of another process that is a
/// FIFO or /dev/null, it looks with `O_PATH` and `fstat`, refuses in one line (exit 1),
/// and never opens the object for reading or writing (attack review: it opened
/// /proc/PID/fd/N with O_RDWR, whatever that was: a FIFO's reader was woken, a device's
/// driver ran its open).
#[test]
fn alpc_peek_refuses_a_descriptor_that_is_not_a_socket() {
    use std::os::unix::fs::OpenOptionsExt;
    let s = Scratch::new("peek-not-socket");
    nix::unistd::mkfifo(
        &s.path("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    // Read and write, without waiting: on Linux such an open of a FIFO returns at once.
    let fifo = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(s.path("fifo"))
        .unwrap();
    for (stdin, found) in [
        (std::process::Stdio::from(fifo), "a FIFO"),
        (std::process::Stdio::null(), "a character device"),
    ] {
        let helper = Helper::start(stdin);
        let pid = helper.0.id().to_string();
        let peek = testkit::run(BIN, &["alpc-peek", "--pid", &pid, "--fd", "0"], b"");
        drop(helper);
        peek.assert_code(1);
        assert_eq!(peek.stderr.lines().count(), 1, "{peek}");
        assert!(
            peek.stderr.contains(&format!(
                "descriptor 0 of process {pid} is {found}, not a socket"
            )),
            "{peek}"
        );
        assert!(peek.stdout.contains("O_PATH) = "), "{peek}");
        assert!(
            !peek.stdout.contains("O_RDWR"),
            "opened for reading and writing:\n{peek}"
        );
        assert!(!peek.stdout.contains("pidfd_getfd("), "{peek}");
    }
    std::fs::remove_file(s.path("fifo")).unwrap();
    s.assert_empty();
}

/// A client that connects and never sends its connect message is given up on after
/// `--idle-timeout`: its channel's thread ends, its connection is closed, and the server
/// goes on. (Attack review: the thread waited for it forever.)
#[test]
fn an_alpc_server_gives_up_on_a_client_that_never_sends() {
    let s = Scratch::new("alpc-idle");
    let mut srv = Process::start(
        BIN,
        &[
            "alpc-server",
            "--port",
            &s.arg("alpc"),
            "--clients",
            "2",
            "--idle-timeout",
            "1",
        ],
    );
    srv.wait_for_line("connection port ready");
    let start = Instant::now();
    let silent = testkit::silent_connection(&s.path("alpc"));
    let ended = srv.wait_for_line("channel 1 ended: ");
    assert!(start.elapsed() >= Duration::from_secs(1), "{ended}");
    assert!(
        ended.contains("wait for the connect of channel 1 failed: ETIMEDOUT")
            && ended.contains("--idle-timeout"),
        "{ended}"
    );
    assert!(testkit::closed_by_peer(&silent, Duration::from_secs(10)));
    let good = run(&s, &["alpc-client", "--sizes", "100"]);
    good.assert_code(0);
    assert_eq!(good.field("ok"), 2, "{good}");
    let served = srv.finish();
    served.assert_code(0);
    assert_eq!(served.field("channels"), 2, "{served}");
    drop(silent);
    s.assert_empty();
}

/// Connections that say nothing cannot take every channel: with all of them held, a
/// newcomer takes the place of the one silent longest, and a real client is served.
/// (Attack review: once the channels were full, every new connection was closed at once.)
#[test]
fn silent_connections_cannot_keep_a_real_alpc_client_out() {
    let s = Scratch::new("alpc-slots");
    let places = ports_demo::alpc_server::MAX_CHANNELS;
    // Every place taken, one connection more, and the real client.
    let clients = (places + 2).to_string();
    let srv = server(&s, &clients);
    let idle: Vec<std::os::fd::OwnedFd> = (0..=places)
        .map(|_| testkit::silent_connection(&s.path("alpc")))
        .collect();
    let good = run(&s, &["alpc-client", "--sizes", "100"]);
    good.assert_code(0);
    assert_eq!(good.field("ok"), 2, "{good}");
    // The first silent connection was silent longest: it lost its place first.
    assert!(testkit::closed_by_peer(&idle[0], Duration::from_secs(10)));
    // The others end when their clients close them; then the server ends.
    drop(idle);
    let served = srv.finish();
    served.assert_code(0);
    let making_room =
        format!("{places} channels are open already: I close channel 1, silent longest");
    assert!(served.stdout.contains(&making_room), "{served}");
    s.assert_empty();
}
