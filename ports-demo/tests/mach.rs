//! Mach, rebuilt: real processes (a bootstrap server, servers, clients, senders) talking
//! through real kernel objects, ordered by the lines they print, never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testkit::{Process, Run, Scratch};

const BIN: &str = env!("CARGO_BIN_EXE_ports-demo");

/// A bootstrap server at `scratch/boot`, ready.
fn bootstrap(s: &Scratch) -> Process {
    let mut p = Process::start(BIN, &["bootstrap", "--bootstrap", &s.arg("boot")]);
    p.wait_for_line("bootstrap server ready");
    p
}

/// A server registered as `name`, ready; `extra` are more options.
fn server(s: &Scratch, name: &str, extra: &[&str]) -> Process {
    let boot = s.arg("boot");
    let mut args = vec!["server", "--bootstrap", &boot, "--name", name];
    args.extend(extra);
    let mut p = Process::start(BIN, &args);
    p.wait_for_line("server ready");
    p
}

/// Runs `ports-demo ARGS --bootstrap scratch/boot` to its end.
fn run(s: &Scratch, args: &[&str]) -> Run {
    let boot = s.arg("boot");
    let mut all = args.to_vec();
    all.extend(["--bootstrap", &boot]);
    testkit::run(BIN, &all, b"")
}

/// Ctrl-C's twin, SIGTERM: the process must clean up and exit with 130.
fn stop(p: Process) -> Run {
    p.signal(Signal::SIGTERM);
    let run = p.finish();
    run.assert_code(130);
    run
}

/// A `--bootstrap` path through a link into another user's folder: bind would make the
/// socket's file there.
#[test]
fn a_path_through_a_link_into_another_users_folder_is_refused() {
    Scratch::new("ports-other-folder").assert_refuses_another_users_folder(BIN, "boot", |path| {
        vec!["bootstrap".into(), "--bootstrap".into(), path.into()]
    });
}

#[test]
fn one_terminal_runs_a_bootstrap_server_a_server_and_a_client() {
    let s = Scratch::new("tour");
    let run = run(&s, &["--count", "4", "--size", "100"]);
    run.assert_code(0);
    assert_eq!(
        run.summary(),
        "summary: requests=4 ok=4 wrong=0 refused=0",
        "{run}"
    );
    assert!(run.stdout.contains("look-up echo: send right"), "{run}");
    s.assert_empty();
}

#[test]
fn look_up_gives_a_send_right_and_an_unknown_or_dead_name_is_a_clear_error() {
    let s = Scratch::new("look-up");
    let boot = bootstrap(&s);
    let srv = server(&s, "echo", &[]);
    let found = run(&s, &["look-up", "echo"]);
    found.assert_code(0);
    assert_eq!(
        found.summary(),
        "summary: name=echo found=1 dead=0",
        "{found}"
    );
    let unknown = run(&s, &["look-up", "nobody-here"]);
    unknown.assert_code(1);
    assert!(
        unknown
            .stderr
            .contains("BOOTSTRAP_UNKNOWN_SERVICE (1102): no port is registered under nobody-here"),
        "{unknown}"
    );
    let bad_name = run(&s, &["look-up", "no/slashes"]);
    bad_name.assert_code(2);
    stop(srv);
    let dead = run(&s, &["look-up", "echo"]);
    dead.assert_code(1);
    assert!(
        dead.stderr.contains("its port is a dead name now"),
        "{dead}"
    );
    stop(boot);
    s.assert_empty();
}

#[test]
fn every_request_is_answered_on_its_own_reply_port() {
    let s = Scratch::new("reply-ports");
    let boot = bootstrap(&s);
    let srv = server(&s, "echo", &["--requests", "50"]);
    let boot_path = s.arg("boot");
    // Two clients at once: each gets only its own replies, because each reply goes to the
    // reply port that rode in its request.
    let a = Process::start(
        BIN,
        &[
            "client",
            "--bootstrap",
            &boot_path,
            "--count",
            "25",
            "--size",
            "10",
        ],
    );
    let b = Process::start(
        BIN,
        &[
            "client",
            "--bootstrap",
            &boot_path,
            "--count",
            "25",
            "--size",
            "900",
        ],
    );
    for c in [a.finish(), b.finish()] {
        c.assert_code(0);
        assert_eq!(c.field("ok"), 25, "{c}");
        assert_eq!(c.field("wrong"), 0, "{c}");
    }
    let served = srv.finish();
    served.assert_code(0);
    assert_eq!(
        served.summary(),
        "summary: served=50 refused=0 dead_replies=0 kept=0 dropped=0",
        "{served}"
    );
    stop(boot);
    s.assert_empty();
}

#[test]
fn a_dropped_receive_right_leaves_a_dead_name() {
    // One terminal: the receiver ends, the next send fails with EPIPE.
    let one = testkit::run(BIN, &["dead"], b"");
    one.assert_code(0);
    assert_eq!(one.summary(), "summary: sent=1 dead_name=1", "{one}");
    // Between terminals: the server ends after one request; the client's second request
    // meets a dead name (at its send, or while it waits for the reply).
    let s = Scratch::new("dead-name");
    let boot = bootstrap(&s);
    let srv = server(&s, "echo", &["--requests", "1"]);
    let client = run(&s, &["client", "--count", "2"]);
    client.assert_code(1);
    assert!(client.stderr.contains("dead name"), "{client}");
    srv.finish().assert_code(0);
    stop(boot);
    s.assert_empty();
}

/// A receiver that holds its queue until Enter, and one sender with `--full option`.
/// Returns the sender's and the receiver's runs.
fn full_queue(test: &str, option: &str, marker: &str, extra: &[&str]) -> (Run, Run) {
    let s = Scratch::new(test);
    let boot = bootstrap(&s);
    let boot_path = s.arg("boot");
    let mut recv = Process::start(
        BIN,
        &[
            "receive",
            "--bootstrap",
            &boot_path,
            "--name",
            "q",
            "--hold",
        ],
    );
    recv.wait_for_line("holding");
    let mut args = vec![
        "send",
        "--bootstrap",
        &boot_path,
        "--name",
        "q",
        "--count",
        "10",
        "--full",
        option,
    ];
    args.extend(extra);
    let mut send = Process::start(BIN, &args);
    // The queue is full and the sender has chosen what to do: let the receiver take.
    send.wait_for_line(marker);
    recv.send(b"\n");
    let (sent, received) = (send.finish(), recv.finish());
    sent.assert_code(0);
    received.assert_code(0);
    stop(boot);
    s.assert_empty();
    // Whatever the option, what the sender says it sent is what arrived, in order.
    assert_eq!(
        received.field("received"),
        sent.field("sent"),
        "{sent}\n{received}"
    );
    assert_eq!(received.field("out_of_order"), 0, "{received}");
    assert_eq!(received.field("missing"), 0, "{received}");
    (sent, received)
}

#[test]
fn full_queue_wait_sleeps_until_there_is_room() {
    let (sent, _) = full_queue("full-wait", "wait", "option wait", &[]);
    assert_eq!(sent.field("sent"), 10, "{sent}");
    assert!(sent.field("waited") >= 1, "{sent}");
}

#[test]
fn full_queue_timeout_gives_up_after_the_time_out() {
    let (sent, _) = full_queue(
        "full-timeout",
        "timeout",
        "timed out after",
        &["--timeout-ms", "200"],
    );
    assert_eq!(sent.field("timed_out"), 1, "{sent}");
    assert!(sent.field("sent") >= 1 && sent.field("sent") < 10, "{sent}");
    assert!(sent.field("blocked_ms") >= 200, "{sent}");
}

#[test]
fn full_queue_now_returns_at_once() {
    let (sent, _) = full_queue("full-now", "now", "is not sent", &[]);
    assert_eq!(sent.field("refused"), 1, "{sent}");
    assert!(sent.field("sent") >= 1 && sent.field("sent") < 10, "{sent}");
}

#[test]
fn full_queue_notify_keeps_the_message_until_there_is_room() {
    let (sent, _) = full_queue("full-notify", "notify", "kept message", &[]);
    assert_eq!(sent.field("sent"), 10, "{sent}");
    assert!(sent.field("kept") >= 1, "{sent}");
}

#[test]
fn each_senders_messages_arrive_in_order() {
    let s = Scratch::new("order");
    let boot = bootstrap(&s);
    let boot_path = s.arg("boot");
    let mut recv = Process::start(
        BIN,
        &[
            "receive",
            "--bootstrap",
            &boot_path,
            "--name",
            "q",
            "--senders",
            "3",
        ],
    );
    recv.wait_for_line("receiver ready");
    let senders: Vec<Process> = (0..3)
        .map(|_| {
            Process::start(
                BIN,
                &[
                    "send",
                    "--bootstrap",
                    &boot_path,
                    "--name",
                    "q",
                    "--count",
                    "300",
                    "--quiet",
                ],
            )
        })
        .collect();
    for p in senders {
        let run = p.finish();
        run.assert_code(0);
        assert_eq!(run.field("sent"), 300, "{run}");
    }
    let received = recv.finish();
    received.assert_code(0);
    assert_eq!(received.field("received"), 900, "{received}");
    assert_eq!(received.field("senders"), 3, "{received}");
    assert_eq!(received.field("out_of_order"), 0, "{received}");
    assert_eq!(received.field("missing"), 0, "{received}");
    stop(boot);
    s.assert_empty();
}

#[test]
fn a_server_keeps_one_reply_for_a_full_reply_port_and_serves_the_others() {
    let s = Scratch::new("notify-server");
    let boot = bootstrap(&s);
    let mut srv = server(&s, "echo", &[]);
    let boot_path = s.arg("boot");
    let mut slow = Process::start(
        BIN,
        &["client", "--bootstrap", &boot_path, "--hold-replies"],
    );
    slow.wait_for_line("holding");
    srv.wait_for_line("kept: the reply port is full");
    // While one reply waits for room, another client is served in full.
    let fast = run(&s, &["client", "--count", "5"]);
    fast.assert_code(0);
    assert_eq!(fast.field("ok"), 5, "{fast}");
    slow.send(b"\n");
    let slow = slow.finish();
    slow.assert_code(0);
    assert_eq!(slow.field("ok"), slow.field("requests"), "{slow}");
    srv.wait_for_line("notified: the reply port has room");
    stop(srv);
    stop(boot);
    s.assert_empty();
}

#[test]
fn broken_rules_are_refused_and_the_server_goes_on() {
    let s = Scratch::new("bad");
    let boot = bootstrap(&s);
    let srv = server(&s, "echo", &["--requests", "8"]);
    let lying = run(&s, &["client", "--bad", "lying-size"]);
    lying.assert_code(0);
    assert!(
        lying
            .stdout
            .contains("its header says 140 bytes, but 40 arrived"),
        "{lying}"
    );
    assert_eq!(
        (lying.field("refused"), lying.field("ok")),
        (1, 1),
        "{lying}"
    );
    for how in ["missing-right", "undeclared-right"] {
        let bad = run(&s, &["client", "--bad", how]);
        bad.assert_code(0);
        assert_eq!(bad.field("ok"), 1, "{bad}");
    }
    run(&s, &["client", "--bad", "vanish"]).assert_code(0);
    let good = run(&s, &["client", "--count", "1"]);
    good.assert_code(0);
    assert_eq!(good.field("ok"), 1, "{good}");
    let served = srv.finish();
    served.assert_code(0);
    assert_eq!(
        served.summary(),
        "summary: served=4 refused=3 dead_replies=1 kept=0 dropped=0",
        "{served}"
    );
    assert!(
        served
            .stdout
            .contains("declares a right (disposition 21), but no descriptor came"),
        "{served}"
    );
    assert!(
        served
            .stdout
            .contains("1 descriptors came with it, but its header declares no right"),
        "{served}"
    );
    assert!(
        served.stdout.contains("the client vanished mid-call"),
        "{served}"
    );
    stop(boot);
    s.assert_empty();
}

#[test]
fn a_live_bootstrap_socket_is_never_replaced_and_a_stale_one_is() {
    let s = Scratch::new("stale");
    let boot = bootstrap(&s);
    let second = run(&s, &["bootstrap"]);
    second.assert_code(1);
    assert!(
        second.stderr.contains("EADDRINUSE")
            && second.stderr.contains("is running on this path already"),
        "{second}"
    );
    assert!(s.path("boot").exists());
    // A clean refuses the live one too.
    run(&s, &["clean", "--port", &s.arg("alpc")]).assert_code(1);
    assert!(s.path("boot").exists());
    // Killed without a chance to clean up: the path stays, and a new server replaces it.
    boot.signal(Signal::SIGKILL);
    boot.finish();
    assert!(s.path("boot").exists());
    let mut again = bootstrap_replacing(&s);
    again.wait_for_line("bootstrap server ready");
    stop(again);
    // And clean removes what a killed server left.
    let killed = bootstrap(&s);
    killed.signal(Signal::SIGKILL);
    killed.finish();
    let clean = run(&s, &["clean", "--port", &s.arg("alpc")]);
    clean.assert_code(0);
    assert_eq!(clean.summary(), "summary: removed=1", "{clean}");
    s.assert_empty();
}

/// Starts `ports-demo ARGS`, waits for its `ready` line, and kills it with SIGKILL, so
/// that it cannot remove its socket: what a killed server leaves behind.
fn killed(args: &[&str], ready: &str) {
    let mut p = Process::start(BIN, args);
    p.wait_for_line(ready);
    p.signal(Signal::SIGKILL);
    p.finish();
}

/// `clean` looks at both paths whatever it finds at the first: what is not its own (a
/// symbolic link, somebody's file) is named on a line of its own, with a hint that names
/// ports-demo's real option, and left alone; a socket a killed server left is removed.
/// (Attack review: it stopped at its first refusal, and its hints named --name/--path,
/// which ports-demo does not have.)
#[test]
fn clean_removes_a_stale_socket_and_names_what_it_leaves_alone() {
    let s = Scratch::new("clean-all");
    let (boot, alpc) = (s.arg("boot"), s.arg("alpc"));
    let refusals = |r: &Run| -> Vec<String> {
        r.stderr
            .lines()
            .filter(|l| l.contains("refused: "))
            .map(String::from)
            .collect()
    };
    // A symbolic link at the bootstrap path (the first one clean looks at), and the
    // socket of an ALPC server killed with SIGKILL at the other.
    std::fs::write(s.path("target"), b"precious").unwrap();
    std::os::unix::fs::symlink(s.path("target"), s.path("boot")).unwrap();
    killed(&["alpc-server", "--port", &alpc], "connection port ready");
    let clean = run(&s, &["clean", "--port", &alpc]);
    clean.assert_code(1);
    assert_eq!(clean.summary(), "summary: removed=1", "{clean}");
    assert!(s.path("alpc").symlink_metadata().is_err(), "{clean}");
    assert!(s.path("boot").symlink_metadata().unwrap().is_symlink());
    assert_eq!(std::fs::read(s.path("target")).unwrap(), b"precious");
    let refused = refusals(&clean);
    assert_eq!(refused.len(), 1, "{clean}");
    assert!(
        refused[0].contains("symbolic link") && refused[0].contains("--bootstrap PATH"),
        "{clean}"
    );
    assert!(!clean.stderr.contains("--name"), "{clean}");
    assert!(
        clean.stderr.contains("1 of 2 paths were left alone"),
        "{clean}"
    );
    // The other way round: somebody's file at the ALPC path, a stale bootstrap socket.
    std::fs::remove_file(s.path("boot")).unwrap();
    std::fs::remove_file(s.path("target")).unwrap();
    std::fs::write(s.path("alpc"), b"a file of someone's").unwrap();
    killed(
        &["bootstrap", "--bootstrap", &boot],
        "bootstrap server ready",
    );
    let clean = run(&s, &["clean", "--port", &alpc]);
    clean.assert_code(1);
    assert_eq!(clean.summary(), "summary: removed=1", "{clean}");
    assert!(s.path("boot").symlink_metadata().is_err(), "{clean}");
    assert_eq!(
        std::fs::read(s.path("alpc")).unwrap(),
        b"a file of someone's"
    );
    let refused = refusals(&clean);
    assert_eq!(refused.len(), 1, "{clean}");
    assert!(
        refused[0].contains("it is a regular file, not a socket")
            && refused[0].contains("--port PATH"),
        "{clean}"
    );
    assert!(!clean.stderr.contains("--name"), "{clean}");
    std::fs::remove_file(s.path("alpc")).unwrap();
    s.assert_empty();
}

fn bootstrap_replacing(s: &Scratch) -> Process {
    let mut p = Process::start(BIN, &["bootstrap", "--bootstrap", &s.arg("boot")]);
    p.wait_for_line("nobody answers there");
    p
}

#[test]
fn what_is_at_the_path_and_not_ours_is_left_alone() {
    let s = Scratch::new("not-ours");
    std::fs::write(s.path("boot"), b"a file of someone's").unwrap();
    let file = run(&s, &["bootstrap"]);
    file.assert_code(1);
    assert!(
        file.stderr.contains("it is a regular file, not a socket"),
        "{file}"
    );
    assert_eq!(
        std::fs::read(s.path("boot")).unwrap(),
        b"a file of someone's"
    );
    std::fs::remove_file(s.path("boot")).unwrap();
    std::fs::write(s.path("target"), b"precious").unwrap();
    std::os::unix::fs::symlink(s.path("target"), s.path("boot")).unwrap();
    let link = run(&s, &["clean", "--port", &s.arg("alpc")]);
    link.assert_code(1);
    assert!(link.stderr.contains("symbolic link"), "{link}");
    assert!(s.path("boot").symlink_metadata().is_ok());
    assert_eq!(std::fs::read(s.path("target")).unwrap(), b"precious");
}

#[test]
fn a_name_that_is_taken_by_a_live_port_cannot_be_registered_again() {
    let s = Scratch::new("name-in-use");
    let boot = bootstrap(&s);
    let first = server(&s, "echo", &[]);
    let second = run(&s, &["server", "--name", "echo"]);
    second.assert_code(1);
    assert!(
        second.stderr.contains("BOOTSTRAP_NAME_IN_USE (1101)"),
        "{second}"
    );
    stop(first);
    // Its port is dead now: the name can be taken again.
    let third = server(&s, "echo", &["--requests", "1"]);
    run(&s, &["client", "--count", "1"]).assert_code(0);
    third.finish().assert_code(0);
    stop(boot);
    s.assert_empty();
}

#[test]
fn a_client_that_connects_and_says_nothing_holds_up_nobody() {
    let s = Scratch::new("silent");
    let boot = bootstrap(&s);
    let silent = testkit::silent_connection(&s.path("boot"));
    let srv = server(&s, "echo", &["--requests", "1"]);
    let client = run(&s, &["client", "--count", "1"]);
    client.assert_code(0);
    assert_eq!(client.field("ok"), 1, "{client}");
    srv.finish().assert_code(0);
    drop(silent);
    stop(boot);
    s.assert_empty();
}

/// A server whose port lives but that never replies (a `receive --hold` registered as
/// echo takes nothing until Enter): the client gives up after `--timeout` with one line
/// naming the call and ETIMEDOUT, and a hint, exit code 1 (attack review: `wait_reply`
/// waited as long as the server lived).
#[test]
fn a_client_gives_up_on_a_server_that_never_replies() {
    let s = Scratch::new("no-reply");
    let boot = bootstrap(&s);
    let boot_path = s.arg("boot");
    let mut silent = Process::start(
        BIN,
        &[
            "receive",
            "--bootstrap",
            &boot_path,
            "--name",
            "echo",
            "--hold",
        ],
    );
    silent.wait_for_line("holding");
    let start = Instant::now();
    let client = Process::start(
        BIN,
        &[
            "client",
            "--bootstrap",
            &boot_path,
            "--count",
            "1",
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
    assert_eq!(client.stderr.lines().count(), 1, "{client}");
    assert!(
        client.stderr.contains("poll(POLLIN) on reply port ")
            && client.stderr.contains("failed: ETIMEDOUT")
            && client.stderr.contains("MACH_RCV_TIMED_OUT")
            && client.stderr.contains("--timeout 0"),
        "{client}"
    );
    stop(silent);
    stop(boot);
    s.assert_empty();
}

/// A bootstrap server that takes the connection and never answers (a listening socket
/// the test holds and never accepts on), and no `--timeout`: the default is a bounded
/// wait too, 5 seconds, after which the look-up fails with the receive's EAGAIN.
#[test]
fn a_look_up_gives_up_on_a_bootstrap_server_that_never_answers() {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, bind, listen, socket};
    let s = Scratch::new("silent-bootstrap");
    let listener = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&listener),
        &UnixAddr::new(&s.path("boot")).unwrap(),
    )
    .unwrap();
    listen(&listener, nix::sys::socket::Backlog::new(4).unwrap()).unwrap();
    let start = Instant::now();
    let look = Process::start(BIN, &["look-up", "echo", "--bootstrap", &s.arg("boot")])
        .finish_within(Duration::from_secs(30));
    let took = start.elapsed();
    look.assert_code(1);
    assert!(
        took >= Duration::from_secs(5),
        "gave up after {took:?}:\n{look}"
    );
    assert_eq!(look.stderr.lines().count(), 1, "{look}");
    assert!(
        look.stderr.contains("recvmsg(")
            && look.stderr.contains("failed: EAGAIN")
            && look
                .stderr
                .contains("no answer from the bootstrap server within 5 s (SO_RCVTIMEO)"),
        "{look}"
    );
    drop(listener);
    std::fs::remove_file(s.path("boot")).unwrap();
    s.assert_empty();
}

/// Idle connections cannot lock real clients out of the bootstrap server: the test opens
/// more connections than it has slots and sends nothing on them, and still a server
/// registers and a client looks it up, because the connection silent longest gives its
/// slot to a newcomer. (Attack review: once the slots were full, every new connection
/// was closed at once, so one user could deny the service by connecting and waiting.)
#[test]
fn idle_connections_cannot_keep_real_clients_out_of_the_bootstrap_server() {
    let s = Scratch::new("idle-slots");
    let boot = bootstrap(&s);
    let idle: Vec<std::os::fd::OwnedFd> = (0..ports_demo::bootstrap::MAX_CONNECTIONS + 4)
        .map(|_| testkit::silent_connection(&s.path("boot")))
        .collect();
    // Every idle connection is accepted before these (the backlog is first come, first
    // served), so the slots are all taken when the real ones arrive.
    let srv = server(&s, "echo", &["--requests", "1"]);
    let client = run(&s, &["client", "--count", "1"]);
    client.assert_code(0);
    assert_eq!(client.field("ok"), 1, "{client}");
    srv.finish().assert_code(0);
    // The first idle connection was silent longest: it lost its slot first.
    assert!(testkit::closed_by_peer(&idle[0], Duration::from_secs(10)));
    let served = stop(boot);
    let making_room = format!(
        "{} clients are connected already: I close the one silent longest",
        ports_demo::bootstrap::MAX_CONNECTIONS
    );
    assert!(served.stdout.contains(&making_room), "{served}");
    drop(idle);
    s.assert_empty();
}

/// A connection that sends nothing is closed after `--idle-timeout`, with nobody else
/// around to need its slot.
#[test]
fn the_bootstrap_server_closes_a_connection_that_stays_silent() {
    let s = Scratch::new("idle-timeout");
    let mut boot = Process::start(
        BIN,
        &[
            "bootstrap",
            "--bootstrap",
            &s.arg("boot"),
            "--idle-timeout",
            "1",
        ],
    );
    boot.wait_for_line("bootstrap server ready");
    let start = Instant::now();
    let silent = testkit::silent_connection(&s.path("boot"));
    boot.wait_for_line("a client sent nothing for 1 s: I close its connection");
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert!(testkit::closed_by_peer(&silent, Duration::from_secs(10)));
    // The server goes on answering.
    let unknown = run(&s, &["look-up", "nobody-here"]);
    unknown.assert_code(1);
    assert!(
        unknown.stderr.contains("BOOTSTRAP_UNKNOWN_SERVICE"),
        "{unknown}"
    );
    stop(boot);
    drop(silent);
    s.assert_empty();
}
