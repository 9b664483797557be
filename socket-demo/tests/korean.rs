//! socket-demo in Korean (issue 13): each lesson run with `--lang ko` explains itself in
//! Korean and prints the same system calls and the same summary line as in English;
//! `LANG=ko_KR.UTF-8` alone is enough to pick Korean.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says it failed by panicking

use std::os::unix::net::UnixListener;

use testkit::lang::{
    assert_locale_picks_korean, assert_same, calls, english, has_korean, korean, same_in_korean,
    says, start_korean,
};
use testkit::{Process, Run, Scratch, perfect};

const BIN: &str = env!("CARGO_BIN_EXE_socket-demo");

#[test]
fn the_default_run_in_korean() {
    let dir = Scratch::new("sock-ko-default");
    let r = same_in_korean(BIN, &["--unix", &dir.arg("socket")]);
    assert_eq!(r.summary(), perfect(3, 64));
    says(&r, "bind가 만드는 파일은 소켓(socket)의 모드를 받습니다");
    says(&r, "클라이언트 1번은 pid ");
    says(&r, "클라이언트 1개, 메시지 3개를 처리했습니다");
    says(&r, "] accept4(3, NULL, NULL, SOCK_CLOEXEC) = 4\n");
    assert!(!r.stdout.contains("the kernel says who connected"), "{r}");
    dir.assert_empty();
}

/// `server` and `client` in two processes, in Korean or in English.
fn server_and_client(in_korean: bool, path: &str) -> (Run, Run) {
    let args = ["server", "--unix", path, "--clients", "1"];
    let (mut server, ready) = match in_korean {
        true => (start_korean(BIN, &args), "listen 중인 주소: "),
        false => (
            Process::spawn(&mut testkit::lang::command(BIN, &[], &args)),
            "listening on ",
        ),
    };
    server.wait_for_line(ready);
    let client_args = ["client", "--unix", path, "--count", "5"];
    let client = match in_korean {
        true => korean(BIN, &client_args),
        false => english(BIN, &client_args),
    };
    (server.finish(), client)
}

#[test]
fn server_and_client_in_korean() {
    let dir = Scratch::new("sock-ko-server");
    let path = dir.arg("socket");
    let (en_server, en_client) = server_and_client(false, &path);
    let (ko_server, ko_client) = server_and_client(true, &path);
    for r in [&en_server, &en_client, &ko_server, &ko_client] {
        r.assert_code(0);
    }
    assert_eq!(ko_client.summary(), perfect(5, 64));
    assert_eq!(ko_client.summary(), en_client.summary());
    assert_eq!(
        ko_server.summary(),
        "summary: clients=1 messages=5 errors=0"
    );
    assert_eq!(ko_server.summary(), en_server.summary());
    assert_eq!(
        calls(&ko_client),
        calls(&en_client),
        "{en_client}\n{ko_client}"
    );
    says(&ko_server, "클라이언트 1번은 pid ");
    says(&ko_server, "클라이언트 1번에게는 출력 없이 답합니다");
    says(&ko_client, "나머지는 출력 없이 진행합니다");
    says(&ko_client, "왕복 5번, ");
    assert!(!has_korean(&en_server.stdout) && !has_korean(&en_client.stdout));
    dir.assert_empty();
}

#[test]
fn no_framing_in_korean() {
    let args = ["no-framing", "--count", "100", "--size", "100"];
    let (en, ko) = (english(BIN, &args), korean(BIN, &args));
    en.assert_code(0);
    ko.assert_code(0);
    // How many reads the writes became depends on scheduling; writes and bytes do not.
    for r in [&en, &ko] {
        assert_eq!(r.field("writes"), 100, "{r}");
        assert_eq!(r.field("bytes"), 10_000, "{r}");
    }
    says(&ko, "100바이트짜리 write 100번이 read ");
    says(&ko, "메시지마다 write 한 번씩, 출력 없이 씁니다");
    assert!(!has_korean(&en.stdout), "{en}");
}

#[test]
fn dgram_in_korean() {
    let args = ["dgram", "--count", "5"];
    let (en, ko) = (english(BIN, &args), korean(BIN, &args));
    // A recv that timed out (SO_RCVTIMEO) says only how fast the sender started.
    assert_same(&en, &ko, |call| call.ends_with("= -1"));
    assert_eq!(ko.summary(), perfect(5, 64));
    says(&ko, "어떤 데이터그램(datagram)도 송신 버퍼 크기인 ");
    says(
        &ko,
        "모든 recv가 데이터그램을 정확히 하나씩 통째로 돌려주었습니다",
    );
    says(&ko, ", SOL_SOCKET, SO_SNDBUF) = 0 (");
}

#[test]
fn a_datagram_over_the_limit_has_a_korean_hint_and_the_same_errno() {
    let r = korean(BIN, &["dgram", "--count", "1", "--size", "300K"]);
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("EMSGSIZE (Message too long); 힌트: 데이터그램은 소켓의 송신 버퍼"),
        "{r}"
    );
}

#[test]
fn pass_fd_in_korean() {
    let (en, ko) = (english(BIN, &["pass-fd"]), korean(BIN, &["pass-fd"]));
    en.assert_code(0);
    ko.assert_code(0);
    // The summary names the sender's pid, which differs from run to run.
    let without_pid = |r: &Run| r.summary().split(" peer_pid=").next().unwrap().to_string();
    assert_eq!(
        without_pid(&ko),
        "summary: passed_fd=yes read_by_receiver=yes"
    );
    assert_eq!(without_pid(&ko), without_pid(&en));
    assert_eq!(calls(&ko), calls(&en), "{en}\n{ko}");
    says(&ko, "이제 파일에는 이름이 없습니다");
    says(
        &ko,
        "읽은 내용: this file was opened by the sender; its name is gone\n",
    );
    says(&ko, "커널에 따르면 반대편 끝은 pid ");
    assert!(!has_korean(&en.stdout), "{en}");
}

#[test]
fn clean_in_korean() {
    let dir = Scratch::new("sock-ko-clean");
    let path = dir.arg("socket");
    // A socket file with nobody listening, before each run: what a killed server leaves.
    let stale_then = |run: fn(&str, &[&str]) -> Run| {
        drop(UnixListener::bind(dir.path("socket")).unwrap());
        run(BIN, &["clean", "--unix", &path])
    };
    let (en, ko) = (stale_then(english), stale_then(korean));
    assert_same(&en, &ko, |_| false);
    assert_eq!(ko.summary(), "summary: removed=1");
    says(
        &ko,
        "아무도 응답하지 않습니다: 강제 종료된 서버가 남긴 낡은 소켓 파일입니다. 지웁니다",
    );
    let nothing = korean(BIN, &["clean", "--unix", &path]);
    nothing.assert_code(0);
    says(&nothing, "아무것도 없습니다: ");
    dir.assert_empty();
}

#[test]
fn a_korean_locale_alone_picks_korean() {
    let dir = Scratch::new("sock-ko-locale");
    let args = ["--unix", &dir.arg("socket"), "--count", "1"];
    let r = assert_locale_picks_korean(
        BIN,
        &args,
        "bind가 만드는 파일은 소켓(socket)의 모드를 받습니다",
    );
    assert_eq!(r.summary(), perfect(1, 64));
    dir.assert_empty();
}

#[test]
fn a_usage_error_is_explained_in_korean_with_exit_2() {
    let r = korean(BIN, &["dgram", "--tcp"]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("dgram 레슨은 --tcp 옵션을 받지 않습니다"),
        "{r}"
    );
}

/// `pass-pipe` in Korean: the receiver the sender launches speaks Korean too (the
/// sender passes its language on), and the summary is the same bytes.
#[test]
fn pass_pipe_in_korean() {
    let dir = Scratch::new("sock-ko-pass-pipe");
    let r = korean(BIN, &["pass-pipe", "--unix", &dir.arg("s")]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(3, 64), "{r}");
    says(&r, "fork한 프로세스가 아니며");
    says(&r, "파이프를 물려받은 것이 아니라 전달받았습니다");
    dir.assert_empty();
}
