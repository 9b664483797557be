//! socket-demo as a student runs it: the built binary, real sockets, several processes.
//! Clients start only after the server has said it listens; nothing waits on time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says it failed by panicking

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use nix::sys::signal::Signal;
use testkit::{Process, Scratch, perfect, run};

const BIN: &str = env!("CARGO_BIN_EXE_socket-demo");

fn socket_demo(args: &[&str]) -> testkit::Run {
    run(BIN, args, b"")
}

/// Starts a server and returns it with the address it printed ("listening on ADDR;").
fn server(args: &[&str]) -> (Process, String) {
    let mut server = Process::start(BIN, &[&["server"], args].concat());
    let line = server.wait_for_line("listening on ");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_string();
    (server, addr)
}

#[test]
fn server_and_client_in_one_terminal() {
    let dir = Scratch::new("sock-exchange");
    let r = socket_demo(&["--unix", &dir.arg("socket")]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(3, 64));
    for call in [
        "socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = ",
        "bind(",
        "listen(",
        "accept(",
        "connect(",
    ] {
        assert!(r.stdout.contains(call), "no {call} in:\n{r}");
    }
    assert!(r.stdout.contains("getsockopt(SO_PEERCRED) = {pid="), "{r}");
    dir.assert_empty();
}

#[test]
fn a_hundred_thousand_round_trips_over_a_unix_socket() {
    let dir = Scratch::new("sock-unix-100k");
    let path = dir.arg("socket");
    let (server, _) = server(&["--unix", &path, "--clients", "1", "--quiet"]);
    let client = socket_demo(&["client", "--unix", &path, "--count", "100000", "--quiet"]);
    client.assert_code(0);
    assert_eq!(client.summary(), perfect(100_000, 64));
    let r = server.finish();
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: clients=1 messages=100000 errors=0");
    dir.assert_empty();
}

#[test]
fn a_hundred_thousand_round_trips_over_tcp() {
    let (server, addr) = server(&["--tcp", "--clients", "1", "--quiet"]);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let client = socket_demo(&["client", "--tcp", &addr, "--count", "100000", "--quiet"]);
    client.assert_code(0);
    assert_eq!(client.summary(), perfect(100_000, 64));
    server.finish().assert_code(0);
}

#[test]
fn several_clients_are_served_at_once() {
    let dir = Scratch::new("sock-several");
    let path = dir.arg("socket");
    let (server, _) = server(&["--unix", &path, "--clients", "4", "--quiet"]);
    let clients: Vec<Process> = (0..4)
        .map(|_| {
            Process::start(
                BIN,
                &["client", "--unix", &path, "--count", "5000", "--quiet"],
            )
        })
        .collect();
    for client in clients {
        let r = client.finish();
        r.assert_code(0);
        assert_eq!(r.summary(), perfect(5000, 64));
    }
    let r = server.finish();
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: clients=4 messages=20000 errors=0");
}

#[test]
fn one_mebibyte_messages_keep_their_framing() {
    let dir = Scratch::new("sock-big");
    let path = dir.arg("socket");
    let (server, _) = server(&["--unix", &path, "--clients", "1", "--quiet"]);
    let client = socket_demo(&[
        "client", "--unix", &path, "--count", "100", "--size", "1M", "--quiet",
    ]);
    client.assert_code(0);
    assert_eq!(client.summary(), perfect(100, 1 << 20));
    server.finish().assert_code(0);
}

#[test]
fn a_killed_server_gives_the_client_a_clear_error() {
    let dir = Scratch::new("sock-killed");
    let path = dir.arg("socket");
    let (server, _) = server(&["--unix", &path]);
    let mut client = Process::start(BIN, &["client", "--unix", &path, "--count", "100000000"]);
    client.wait_for_line("the rest without narration");
    server.signal(Signal::SIGKILL);
    assert_eq!(server.finish().code, None);
    let r = client.finish();
    r.assert_code(1);
    // Whether the client notices in write (EPIPE), in read (ECONNRESET) or at the end of
    // the stream, it says the same thing.
    assert!(r.stderr.contains("the server has gone"), "{r}");
    assert!(!r.stderr.contains("panicked"), "{r}");
    // The killed server could not remove its socket file; clean does.
    socket_demo(&["clean", "--unix", &path]).assert_code(0);
    dir.assert_empty();
}

#[test]
fn clean_leaves_a_file_that_is_not_a_socket() {
    let dir = Scratch::new("sock-clean-file");
    let path = dir.arg("socket");
    std::fs::write(dir.path("socket"), b"someone's notes").unwrap();
    let r = socket_demo(&["clean", "--unix", &path]);
    r.assert_code(1);
    assert!(r.stderr.contains("it is not a socket"), "{r}");
    assert_eq!(
        std::fs::read(dir.path("socket")).unwrap(),
        b"someone's notes"
    );
    std::fs::remove_file(dir.path("socket")).unwrap();
    dir.assert_empty();
}

#[test]
fn a_client_with_an_oversized_frame_is_cut_off_and_the_others_are_served() {
    let dir = Scratch::new("sock-oversized");
    let path = dir.arg("socket");
    let (mut server, _) = server(&["--unix", &path, "--clients", "2", "--max", "1K"]);
    // A hostile client: a header that announces 4 GiB of payload.
    let mut bad = UnixStream::connect(dir.path("socket")).unwrap();
    let mut header = 0u64.to_le_bytes().to_vec();
    header.extend_from_slice(&u32::MAX.to_le_bytes());
    bad.write_all(&header).unwrap();
    let mut rest = Vec::new();
    bad.read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "the server must close the connection, not answer"
    );
    server.wait_for_line("disconnected it, serving the others");
    let good = socket_demo(&["client", "--unix", &path, "--count", "10", "--size", "1K"]);
    good.assert_code(0);
    assert_eq!(good.summary(), perfect(10, 1024));
    let r = server.finish();
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: clients=2 messages=10 errors=1");
    assert!(r.stdout.contains("over the limit of 1024"), "{r}");
}

#[test]
fn a_stale_socket_file_is_replaced_but_a_live_server_is_not() {
    let dir = Scratch::new("sock-stale");
    let path = dir.arg("socket");
    // A socket file with nobody listening: what a killed server leaves.
    drop(UnixListener::bind(dir.path("socket")).unwrap());
    let r = socket_demo(&["--unix", &path]);
    r.assert_code(0);
    assert!(
        r.stdout.contains("nobody answers: a stale socket file"),
        "{r}"
    );
    assert_eq!(r.summary(), perfect(3, 64));
    // A live server is another matter. The second server finds out by connecting, so the
    // live one sees two clients: that probe, and the real client after it.
    let (live, _) = server(&["--unix", &path, "--clients", "2"]);
    let second = socket_demo(&["server", "--unix", &path]);
    second.assert_code(1);
    assert!(
        second
            .stderr
            .contains("a server is running on this path already"),
        "{second}"
    );
    socket_demo(&["client", "--unix", &path, "--count", "1"]).assert_code(0);
    let live = live.finish();
    live.assert_code(0);
    assert_eq!(live.summary(), "summary: clients=2 messages=1 errors=0");
    dir.assert_empty();
}

#[test]
fn a_client_without_a_server_says_so() {
    let dir = Scratch::new("sock-no-server");
    let r = socket_demo(&["client", "--unix", &dir.arg("socket")]);
    r.assert_code(1);
    assert!(r.stderr.contains("ENOENT"), "{r}");
    assert!(r.stderr.contains("start the server first"), "{r}");
    let r = socket_demo(&["client", "--tcp", "127.0.0.1:1"]);
    r.assert_code(1);
    assert!(r.stderr.contains("ECONNREFUSED"), "{r}");
}

#[test]
fn a_python_client_talks_to_the_raw_server() {
    let dir = Scratch::new("sock-python");
    let path = dir.arg("socket");
    let (server, _) = server(&["--unix", &path, "--raw", "--clients", "1"]);
    let peer = format!(
        r#"
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect({path:?})
s.sendall(b"hello\n")
print(s.recv(6).decode(), end="")
"#
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &peer])
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "HELLO\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.finish().assert_code(0);
}

#[test]
fn the_raw_client_sends_lines_and_prints_answers() {
    let dir = Scratch::new("sock-raw");
    let path = dir.arg("socket");
    let (server, _) = server(&["--unix", &path, "--raw", "--clients", "1"]);
    let r = run(
        BIN,
        &["client", "--raw", "--unix", &path, "--quiet"],
        b"abc\nxyz\n",
    );
    r.assert_code(0);
    assert_eq!(r.stdout, "ABC\nXYZ\nsummary: lines=2\n");
    server.finish().assert_code(0);
}

#[test]
fn without_framing_bytes_arrive_but_boundaries_do_not() {
    let r = socket_demo(&["no-framing", "--count", "1000", "--size", "100"]);
    r.assert_code(0);
    let s = r.summary();
    assert!(s.starts_with("summary: writes=1000 reads="), "{s}");
    assert!(s.ends_with("bytes=100000"), "{s}");
}

#[test]
fn datagrams_keep_their_boundaries() {
    let r = socket_demo(&["dgram", "--count", "10000", "--quiet"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(10_000, 64));
}

#[test]
fn a_datagram_over_the_limit_is_emsgsize() {
    let r = socket_demo(&["dgram", "--count", "1", "--size", "300K"]);
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("EMSGSIZE (Message too long); hint: a datagram must fit"),
        "{r}"
    );
}

#[test]
fn a_descriptor_is_passed_and_the_peer_is_known() {
    let r = socket_demo(&["pass-fd"]);
    r.assert_code(0);
    assert!(
        r.summary()
            .starts_with("summary: passed_fd=yes read_by_receiver=yes peer_pid="),
        "{r}"
    );
    assert!(r.stdout.contains("SCM_RIGHTS"), "{r}");
    assert!(
        r.stdout
            .contains("this file was opened by the sender; its name is gone"),
        "{r}"
    );
    assert!(r.stdout.contains("SO_PEERCRED) = {pid="), "{r}");
}

#[test]
fn small_messages_go_through_the_socket_and_large_ones_through_the_section() {
    let r = socket_demo(&["section", "--count", "8"]);
    r.assert_code(0);
    // Two rounds of 64, 200, 1000 and 65536 bytes.
    assert_eq!(
        r.summary(),
        "summary: received=8 ok=8 corrupt=0 out_of_order=0 missing=0 bytes=133600"
    );
    assert!(
        r.stdout
            .contains("4 messages went through the socket, 4 through the section"),
        "{r}"
    );
}

/// Two network namespaces joined by a veth pair: two hosts on one machine, so that TCP
/// really goes from one network stack to another. Needs root and `ip`; without them the
/// test says why and does nothing.
#[test]
fn tcp_between_two_network_namespaces() {
    let tag = std::process::id() % 100_000;
    let (a, b) = (format!("ipcd-a{tag}"), format!("ipcd-b{tag}"));
    let ip = |args: &[&str]| std::process::Command::new("ip").args(args).output();
    match ip(&["netns", "add", &a]) {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "skipped: cannot create a network namespace here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("skipped: cannot run `ip`: {e}");
            return;
        }
    }
    struct Namespaces(Vec<String>);
    impl Drop for Namespaces {
        fn drop(&mut self) {
            for ns in &self.0 {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", ns])
                    .output();
            }
        }
    }
    let _cleanup = Namespaces(vec![a.clone(), b.clone()]);
    let (va, vb) = (format!("va{tag}"), format!("vb{tag}"));
    for args in [
        vec!["netns", "add", &b],
        vec!["link", "add", &va, "type", "veth", "peer", "name", &vb],
        vec!["link", "set", &va, "netns", &a],
        vec!["link", "set", &vb, "netns", &b],
        vec!["-n", &a, "addr", "add", "10.77.0.1/24", "dev", &va],
        vec!["-n", &b, "addr", "add", "10.77.0.2/24", "dev", &vb],
        vec!["-n", &a, "link", "set", &va, "up"],
        vec!["-n", &b, "link", "set", &vb, "up"],
        vec!["-n", &a, "link", "set", "lo", "up"],
        vec!["-n", &b, "link", "set", "lo", "up"],
    ] {
        let out = ip(&args).unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut server = Process::start(
        "ip",
        &[
            "netns",
            "exec",
            &a,
            BIN,
            "server",
            "--tcp",
            "10.77.0.1:0",
            "--clients",
            "1",
        ],
    );
    let line = server.wait_for_line("listening on ");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap()
        .to_string();
    let client = run(
        "ip",
        &[
            "netns", "exec", &b, BIN, "client", "--tcp", &addr, "--count", "1000", "--quiet",
        ],
        b"",
    );
    client.assert_code(0);
    assert_eq!(client.summary(), perfect(1000, 64));
    server.finish().assert_code(0);
}

#[test]
fn bad_usage_is_exit_2() {
    socket_demo(&["--size", "0"]).assert_code(2);
    socket_demo(&["--tcp", "not-an-address"]).assert_code(2);
    socket_demo(&["--tcp", "--unix", "/tmp/x"]).assert_code(2);
    socket_demo(&["clean", "--tcp"]).assert_code(2);
    socket_demo(&["--frobnicate"]).assert_code(2);
}

#[test]
fn help_explains_the_mechanism_with_an_example() {
    let r = socket_demo(&["--help"]);
    r.assert_code(0);
    assert!(r.stdout.contains("Sockets: a server binds a name"), "{r}");
    for lesson in [
        "server",
        "client",
        "no-framing",
        "dgram",
        "pass-fd",
        "section",
        "clean",
    ] {
        let r = socket_demo(&[lesson, "--help"]);
        r.assert_code(0);
        assert!(
            r.stdout.contains("Example: cargo run -p socket-demo -- "),
            "{lesson}: {r}"
        );
    }
}
