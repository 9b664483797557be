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

/// A `--unix` path through a link into another user's folder: bind would make the
/// socket's file there.
#[test]
fn a_path_through_a_link_into_another_users_folder_is_refused() {
    Scratch::new("socket-other-folder").assert_refuses_another_users_folder(BIN, "sock", |path| {
        vec!["server".into(), "--unix".into(), path.into()]
    });
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
        "accept4(",
        "connect(",
    ] {
        assert!(r.stdout.contains(call), "no {call} in:\n{r}");
    }
    assert!(
        r.stdout.contains(", SOL_SOCKET, SO_PEERCRED) = 0 ({pid="),
        "{r}"
    );
    assert!(
        r.stdout.contains("client 1 is pid ")
            && r.stdout
                .contains("the kernel says who connected (SO_PEERCRED)"),
        "{r}"
    );
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
    assert!(
        r.stderr.contains("it is a regular file, not a socket"),
        "{r}"
    );
    assert_eq!(
        std::fs::read(dir.path("socket")).unwrap(),
        b"someone's notes"
    );
    std::fs::remove_file(dir.path("socket")).unwrap();
    dir.assert_empty();
}

#[test]
fn clean_leaves_a_live_servers_socket_and_says_why() {
    let dir = Scratch::new("sock-clean-live");
    let path = dir.arg("socket");
    let (mut live, _) = server(&["--unix", &path, "--clients", "1"]);
    let r = socket_demo(&["clean", "--unix", &path]);
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("a server answers on this socket (connect succeeded)"),
        "{r}"
    );
    assert!(
        std::fs::symlink_metadata(dir.path("socket")).is_ok(),
        "clean removed a live server's socket"
    );
    // The live server saw clean's probe for what it is, and still serves its client.
    live.wait_for_line("checking that I am alive; closed, not a client");
    socket_demo(&["client", "--unix", &path, "--count", "1"]).assert_code(0);
    let live = live.finish();
    live.assert_code(0);
    assert_eq!(live.summary(), "summary: clients=1 messages=1 errors=0");
    dir.assert_empty();
}

/// `bind` fails with EADDRINUSE on anything at the path, and `connect` to a regular file
/// or a dangling link fails with ECONNREFUSED just as it does on a dead server's socket.
/// Only a socket of ours may be replaced; everything else stays as it was.
#[test]
fn the_server_replaces_nothing_but_a_stale_socket_of_its_own() {
    let dir = Scratch::new("sock-not-ours");
    let path = dir.arg("socket");
    // A regular file, in both the server and the one-terminal mode.
    std::fs::write(dir.path("socket"), b"someone's notes").unwrap();
    for args in [&["server", "--unix", &path][..], &["--unix", &path][..]] {
        let r = socket_demo(args);
        r.assert_code(1);
        assert!(
            r.stderr.contains("it is a regular file, not a socket"),
            "{r}"
        );
        assert!(r.stderr.contains("anything else is left alone"), "{r}");
        assert_eq!(
            std::fs::read(dir.path("socket")).unwrap(),
            b"someone's notes"
        );
    }
    std::fs::remove_file(dir.path("socket")).unwrap();
    // A symbolic link to a file: neither the link nor the file it points to is touched.
    std::fs::write(dir.path("precious"), b"keep me").unwrap();
    std::os::unix::fs::symlink(dir.path("precious"), dir.path("socket")).unwrap();
    let r = socket_demo(&["server", "--unix", &path]);
    r.assert_code(1);
    assert!(
        r.stderr.contains("it is a symbolic link, not a socket"),
        "{r}"
    );
    assert!(
        std::fs::symlink_metadata(dir.path("socket"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(dir.path("precious")).unwrap(), b"keep me");
    std::fs::remove_file(dir.path("socket")).unwrap();
    std::fs::remove_file(dir.path("precious")).unwrap();
    // A stale socket, but another user's (nobody's): not ours to replace either.
    drop(UnixListener::bind(dir.path("socket")).unwrap());
    std::os::unix::fs::lchown(dir.path("socket"), Some(65534), Some(65534)).unwrap();
    let r = socket_demo(&["server", "--unix", &path]);
    r.assert_code(1);
    assert!(r.stderr.contains("it belongs to uid 65534"), "{r}");
    assert!(std::fs::symlink_metadata(dir.path("socket")).is_ok());
    std::fs::remove_file(dir.path("socket")).unwrap();
    dir.assert_empty();
}

#[test]
fn the_socket_file_is_0600_even_under_umask_0() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Scratch::new("sock-mode");
    let path = dir.arg("socket");
    let script = format!("umask 0 && exec {BIN} server --unix {path} --clients 1");
    let mut server = Process::start("sh", &["-c", &script]);
    server.wait_for_line("listening on ");
    let mode = std::fs::symlink_metadata(dir.path("socket"))
        .unwrap()
        .permissions()
        .mode();
    socket_demo(&["client", "--unix", &path, "--count", "1"]).assert_code(0);
    server.finish().assert_code(0);
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    dir.assert_empty();
}

#[test]
fn connections_beyond_max_clients_are_closed_and_said_so() {
    let dir = Scratch::new("sock-max-clients");
    let path = dir.arg("socket");
    let (mut server, _) = server(&["--unix", &path, "--clients", "2", "--max-clients", "1"]);
    let mut first = UnixStream::connect(dir.path("socket")).unwrap();
    server.wait_for_line("client 1 is pid ");
    // The second connection is one too many while the first is served.
    let mut second = UnixStream::connect(dir.path("socket")).unwrap();
    server.wait_for_line("refused: I serve 1 clients at once already (--max-clients)");
    let mut rest = Vec::new();
    assert_eq!(
        second
            .read_to_end(&mut rest)
            .map(|_| rest.len())
            .unwrap_or(0),
        0,
        "a refused connection gets no answer"
    );
    // The first is served as usual.
    let mut frame = 7u64.to_le_bytes().to_vec();
    frame.extend_from_slice(&2u32.to_le_bytes());
    frame.extend_from_slice(b"hi");
    let crc = crc32(&frame);
    frame.extend_from_slice(&crc.to_le_bytes());
    first.write_all(&frame).unwrap();
    let mut reply = [0u8; 18];
    first.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[12..14], b"HI");
    drop(first);
    // Once the first has gone, there is room again; the refused one did not count.
    server.wait_for_line("client 1 is done; 0 being served");
    socket_demo(&["client", "--unix", &path, "--count", "1"]).assert_code(0);
    let r = server.finish();
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: clients=2 messages=2 errors=0");
    dir.assert_empty();
}

/// CRC-32 as zlib computes it (the frame's trailer), for frames written by hand.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The resident memory of a process, from /proc/PID/status (proc(5)), in KiB.
fn resident_kib(pid: nix::unistd::Pid) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn headers_that_announce_much_cost_only_what_arrives() {
    // Eight clients each announce a 16 MiB frame, send 100 bytes of it, and idle. A
    // server that set aside what the headers announce would hold 128 MiB for them.
    let dir = Scratch::new("sock-announce");
    let path = dir.arg("socket");
    let (mut server, _) = server(&["--unix", &path, "--clients", "8"]);
    let before = resident_kib(server.pid());
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut c = UnixStream::connect(dir.path("socket")).unwrap();
        let mut head = 0u64.to_le_bytes().to_vec();
        head.extend_from_slice(&(16u32 << 20).to_le_bytes());
        head.extend_from_slice(&[b'a'; 100]);
        c.write_all(&head).unwrap();
        idle.push(c);
    }
    // Each server thread narrates the read that returned those 100 bytes, after it has
    // made room for them.
    for _ in 0..8 {
        server.wait_for_line(") = 100");
    }
    let after = resident_kib(server.pid());
    drop(idle);
    let r = server.finish();
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: clients=8 messages=0 errors=8");
    assert!(
        after < before + 32 * 1024,
        "8 idle clients took the server from {before} KiB to {after} KiB"
    );
    dir.assert_empty();
}

#[test]
fn a_thread_the_system_refuses_is_an_error_not_a_panic() {
    // Every thread's stack is 2 GiB (RUST_MIN_STACK) in 5 GiB of address space
    // (ulimit -v): the interrupt handler's thread fits, and at most one client's.
    let dir = Scratch::new("sock-threads");
    let path = dir.arg("socket");
    let script = format!(
        "ulimit -v 5242880 && RUST_MIN_STACK=2147483648 exec {BIN} --clients 10 --unix {path} --count 100000 --quiet"
    );
    let r = run("sh", &["-c", &script], b"");
    r.assert_code(1);
    assert!(
        r.stderr.contains("pthread_create(a thread for client ") && r.stderr.contains("EAGAIN"),
        "{r}"
    );
    assert!(r.stderr.contains("see `ulimit -v`"), "{r}");
    assert!(!r.stderr.contains("panicked"), "{r}");
    dir.assert_empty();
}

#[test]
fn a_client_gives_up_on_a_server_that_never_answers() {
    // A listener that accepts nothing and answers nothing: connect succeeds (the kernel
    // queues the connection), and then there is only silence.
    let dir = Scratch::new("sock-silent");
    let _silent = UnixListener::bind(dir.path("socket")).unwrap();
    let clock = std::time::Instant::now();
    let r = socket_demo(&["client", "--unix", &dir.arg("socket"), "--timeout", "1"]);
    r.assert_code(1);
    assert!(r.stderr.contains("EAGAIN"), "{r}");
    assert!(
        r.stderr
            .contains("no answer from the server within 1 s (SO_RCVTIMEO)"),
        "{r}"
    );
    assert!(clock.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn messages_over_16m_work_in_one_terminal() {
    let dir = Scratch::new("sock-17m");
    let r = socket_demo(&[
        "--unix",
        &dir.arg("socket"),
        "--size",
        "17M",
        "--count",
        "2",
        "--quiet",
    ]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(2, 17 << 20));
    dir.assert_empty();
}

#[test]
fn a_tcp_client_is_known_by_its_address_not_by_so_peercred() {
    let r = socket_demo(&["--tcp", "--count", "1"]);
    r.assert_code(0);
    assert!(r.stdout.contains(") = 0 ({AF_INET, 127.0.0.1:"), "{r}");
    assert!(r.stdout.contains("] getpeername("), "{r}");
    assert!(r.stdout.contains("client 1 is at 127.0.0.1:"), "{r}");
    assert!(!r.stdout.contains("SO_PEERCRED)"), "{r}");
}

#[test]
fn options_a_lesson_does_not_use_are_refused() {
    for args in [
        &["no-framing", "--tcp"][..],
        &["dgram", "--tcp"][..],
        &["dgram", "--unix", "/tmp/x"][..],
        &["pass-fd", "--tcp"][..],
        &["client", "--clients", "2"][..],
    ] {
        let r = socket_demo(args);
        r.assert_code(2);
        assert!(r.stderr.contains(" takes no --"), "{args:?}: {r}");
    }
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
    // A live server is another matter. The second server finds out by connecting from
    // an abstract address that says "probe", so the live one, which serves one client
    // and stops, does not take that probe for its client.
    let (mut live, _) = server(&["--unix", &path, "--clients", "1"]);
    let second = socket_demo(&["server", "--unix", &path]);
    second.assert_code(1);
    assert!(
        second
            .stderr
            .contains("a server is running on this path already"),
        "{second}"
    );
    live.wait_for_line("checking that I am alive; closed, not a client");
    socket_demo(&["client", "--unix", &path, "--count", "1"]).assert_code(0);
    let live = live.finish();
    live.assert_code(0);
    assert_eq!(live.summary(), "summary: clients=1 messages=1 errors=0");
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
    assert!(
        r.stdout.contains("SOL_SOCKET, SO_PEERCRED) = 0 ({pid="),
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
    socket_demo(&["server", "--max-clients", "0"]).assert_code(2);
    socket_demo(&["client", "--timeout", "-1"]).assert_code(2);
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

/// The number after `marker` in the first line of `role` that has it.
fn number_in(r: &testkit::Run, role: &str, marker: &str) -> String {
    testkit::lines_of(r, role)
        .into_iter()
        .find_map(|l| l.split_once(marker).map(|(_, rest)| rest.to_string()))
        .unwrap_or_else(|| panic!("no {role} line with {marker:?} in:\n{r}"))
}

/// One terminal: the receiver is exec'd by a helper that exits at once, so it is not
/// the sender's child (its ppid says so), and it reads, from the pipe's read end it was
/// sent, what the sender writes into the write end.
#[test]
fn a_pipe_s_read_end_reaches_a_process_the_sender_did_not_fork() {
    let dir = Scratch::new("sock-pass-pipe");
    let r = socket_demo(&["pass-pipe", "--unix", &dir.arg("s"), "--count", "500"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(500, 64), "{r}");
    let sender = testkit::pid_of(&r, "sender");
    let launcher = testkit::pid_of(&r, "launcher");
    let receiver = testkit::pid_of(&r, "receiver");
    let parent = number_in(&r, "receiver", "getppid() = ");
    assert_ne!(parent, sender, "{r}");
    assert_ne!(parent, launcher, "{r}");
    // The kernel names the connected process: the receiver.
    assert!(
        r.stdout
            .contains(&format!("SO_PEERCRED) = 0 ({{pid={receiver},")),
        "{r}"
    );
    // Both ends' descriptors name one pipe inode.
    let inode = |role| number_in(&r, role, ") = \"pipe:[");
    assert_eq!(inode("sender"), inode("receiver"), "{r}");
    assert!(r.stdout.contains("SCM_RIGHTS ["), "{r}");
    dir.assert_empty();
}

/// Two terminals: a sender waiting, and a receiver started by someone else (here the
/// test, as a shell would): the receiver's parent is the test, never the sender.
#[test]
fn pass_pipe_in_two_terminals() {
    let dir = Scratch::new("sock-pass-pipe-2");
    let path = dir.arg("s");
    let args = ["pass-pipe", "sender", "--unix", &path, "--count", "50"];
    let mut sender = Process::start(BIN, &args);
    sender.wait_for_line("ready: in another terminal");
    let receiver = run(
        BIN,
        &["pass-pipe", "receiver", "--unix", &path, "--count", "50"],
        b"",
    );
    receiver.assert_code(0);
    assert_eq!(receiver.summary(), perfect(50, 64), "{receiver}");
    assert_eq!(
        number_in(&receiver, "receiver", "getppid() = "),
        std::process::id().to_string()
    );
    let sender = sender.finish();
    sender.assert_code(0);
    assert!(sender.stdout.contains("closed the connection"), "{sender}");
    dir.assert_empty();
}

#[test]
fn pass_pipe_refuses_tcp_and_a_receiver_without_a_sender_says_what_to_start() {
    let r = socket_demo(&["pass-pipe", "--tcp"]);
    r.assert_code(2);
    assert!(r.stderr.contains("only over Unix sockets"), "{r}");
    let dir = Scratch::new("sock-pass-pipe-none");
    let r = socket_demo(&["pass-pipe", "receiver", "--unix", &dir.arg("s")]);
    r.assert_code(1);
    assert!(r.stderr.contains("ENOENT"), "{r}");
    assert!(r.stderr.contains("pass-pipe sender"), "{r}");
    dir.assert_empty();
}
