//! fifo-demo in Korean (issue 13): each role run with `--lang ko` explains itself in
//! Korean and prints the same system calls and the same summary line as in English;
//! `LANG=ko_KR.UTF-8` alone is enough to pick Korean.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says it failed by panicking

use testkit::lang::{
    assert_locale_picks_korean, assert_same, data_lines, english, korean, same_in_korean, says,
    start_korean,
};
use testkit::{Run, Scratch, perfect};

const BIN: &str = env!("CARGO_BIN_EXE_fifo-demo");

#[test]
fn the_default_run_in_korean() {
    let dir = Scratch::new("fifo-ko-default");
    let r = same_in_korean(BIN, &["--path", &dir.arg("fifo")]);
    assert_eq!(r.summary(), perfect(3, 64));
    says(&r, "지명 파이프(FIFO)를 만들었고, 끝날 때 지웁니다");
    says(
        &r,
        "FIFO를 읽기용으로 여는 open은 쓰는 쪽이 반대편 종단을 열 때까지 기다립니다",
    );
    says(&r, "FIFO 하나에 생산자(producer)는 하나");
    says(&r, "read() = 0: 파일 끝(EOF)입니다.");
    says(&r, "] flock(3, LOCK_EX|LOCK_NB) = 0\n");
    dir.assert_empty();
}

#[test]
fn producer_and_consumer_in_korean() {
    let dir = Scratch::new("fifo-ko-roles");
    let path = dir.arg("fifo");
    let mut consumer = start_korean(BIN, &["consumer", "--path", &path, "--count", "5"]);
    consumer.wait_for_line("쓰는 쪽이 반대편 종단을 열 때까지 기다립니다");
    let producer = korean(BIN, &["producer", "--path", &path, "--count", "5"]);
    producer.assert_code(0);
    let consumer = consumer.finish();
    consumer.assert_code(0);
    assert_eq!(consumer.summary(), perfect(5, 64));
    says(
        &producer,
        "FIFO를 쓰기용으로 여는 open은 읽는 쪽이 반대편 종단을 열 때까지 기다립니다",
    );
    says(&producer, "3..5번 메시지는 출력 없이 씁니다");
    says(&consumer, "나머지는 출력 없이 읽습니다");
    dir.assert_empty();
}

#[test]
fn the_raw_modes_in_korean() {
    let dir = Scratch::new("fifo-ko-raw");
    let path = dir.arg("fifo");
    let mut consumer = start_korean(BIN, &["consumer", "--raw", "--path", &path]);
    consumer.wait_for_line("쓰는 쪽이 반대편 종단을 열 때까지 기다립니다");
    let producer = testkit::lang::run_in(
        &[],
        BIN,
        &["--lang", "ko", "producer", "--stdin", "--path", &path],
        b"first line\n",
    );
    producer.assert_code(0);
    says(
        &producer,
        "1줄을 보냈습니다. FIFO를 닫으면 읽는 쪽은 파일 끝을 만납니다",
    );
    let consumer = consumer.finish();
    consumer.assert_code(0);
    assert_eq!(data_lines(&consumer), ["first line"], "{consumer}");
    assert_eq!(consumer.summary(), "summary: bytes=11 reads=1");
    says(
        &consumer,
        "read() = 0: 파일 끝(EOF)입니다. 쓰는 쪽이 모두 FIFO를 닫았습니다",
    );
    dir.assert_empty();
}

#[test]
fn server_and_client_in_korean() {
    let dir = Scratch::new("fifo-ko-server");
    let path = dir.arg("server");
    let mut server = start_korean(BIN, &["server", "--path", &path, "--requests", "4"]);
    server.wait_for_line("요청을 받을 준비가 되었습니다");
    let client = korean(BIN, &["client", "--path", &path, "--count", "4"]);
    client.assert_code(0);
    assert_eq!(
        client.summary(),
        "summary: requests=4 replies=4 increasing=4"
    );
    says(
        &client,
        "O_NONBLOCK: 이번 읽기용 open은 쓰는 쪽을 기다리지 않습니다",
    );
    says(&client, "나머지 요청은 출력 없이 보냅니다");
    says(&client, "] poll([{fd=");
    let server = server.finish();
    server.assert_code(0);
    assert_eq!(server.summary(), "summary: requests=4 next=4");
    says(&server, "FIFO 하나에 서버는 하나");
    says(&server, "나머지 요청은 출력 없이 처리합니다");
    dir.assert_empty();
}

#[test]
fn writers_in_korean() {
    let dir = Scratch::new("fifo-ko-writers");
    let args = [
        "writers",
        "--path",
        &dir.arg("fifo"),
        "--writers",
        "2",
        "--count",
        "5",
        "--size",
        "100",
    ];
    let r = same_in_korean(BIN, &args);
    assert_eq!(
        r.summary(),
        "summary: writers=2 frame_bytes=116 pipe_buf=4096 intact=10 framing=kept"
    );
    says(&r, "] fpathconf(3, _PC_PIPE_BUF) = 4096\n");
    says(
        &r,
        "PIPE_BUF(4096바이트) 이하입니다: 모든 write가 원자적(atomic)입니다",
    );
    says(&r, "모든 프레임이 온전히 도착했습니다");
    dir.assert_empty();
}

#[test]
fn clean_in_korean() {
    let dir = Scratch::new("fifo-ko-clean");
    let path = dir.arg("fifo");
    // A FIFO that a killed run left, before each run.
    let left_then = |run: fn(&str, &[&str]) -> Run| {
        nix::unistd::mkfifo(&dir.path("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        run(BIN, &["clean", "--path", &path])
    };
    let (en, ko) = (left_then(english), left_then(korean));
    assert_same(&en, &ko, |_| false);
    assert_eq!(ko.summary(), "summary: removed=1 refused=0");
    let nothing = korean(BIN, &["clean", "--path", &path]);
    nothing.assert_code(0);
    says(&nothing, "지울 것이 없습니다");
    // What is not the demo's is named, in Korean, and left.
    std::fs::write(dir.path("fifo"), b"someone's data").unwrap();
    let refused = korean(BIN, &["clean", "--path", &path]);
    refused.assert_code(1);
    assert_eq!(refused.summary(), "summary: removed=0 refused=1");
    says(&refused, &format!("남겨 둔 것: {path}: "));
    assert!(
        refused.stderr.contains("clean은 아무도 쓰지 않는"),
        "{refused}"
    );
    std::fs::remove_file(dir.path("fifo")).unwrap();
    dir.assert_empty();
}

#[test]
fn a_korean_locale_alone_picks_korean() {
    let dir = Scratch::new("fifo-ko-locale");
    let args = ["--path", &dir.arg("fifo"), "--count", "1"];
    let r = assert_locale_picks_korean(BIN, &args, "지명 파이프(FIFO)를 만들었고");
    assert_eq!(r.summary(), perfect(1, 64));
    dir.assert_empty();
}

#[test]
fn a_missing_server_is_explained_in_korean() {
    let dir = Scratch::new("fifo-ko-no-server");
    let r = korean(BIN, &["client", "--path", &dir.arg("server")]);
    r.assert_code(1);
    assert!(r.stderr.contains("ENOENT"), "{r}");
    assert!(r.stderr.contains("힌트: 이 경로에 FIFO가 없습니다"), "{r}");
    dir.assert_empty();
}

/// `half-duplex` explains its turns in Korean; the summary lines are the same bytes.
#[test]
fn half_duplex_in_korean() {
    let dir = Scratch::new("fifo-ko-half-duplex");
    let r = korean(BIN, &["half-duplex", "--path", &dir.arg("f"), "--no-turns"]);
    r.assert_code(0);
    assert!(
        r.stdout.contains(
            "summary: side=a sent=1 received_from_other=0 own_read_back=1 corrupt=0 bytes_in=64"
        ),
        "{r}"
    );
    says(&r, "O_RDWR로 엽니다");
    says(&r, "내가 쓴 메시지였습니다");
    dir.assert_empty();
}
