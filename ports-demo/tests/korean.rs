//! ports-demo in Korean (issue 13): with `--lang ko` a lesson explains itself in Korean,
//! and what scripts read stays the same bytes as in English: the summary line and the
//! system calls. Real processes and real sockets, as in `mach.rs` and `alpc.rs`; ordered
//! by the lines they print, never by sleeping. Every run names its language, so the
//! machine's locale cannot choose it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use nix::sys::signal::Signal;
use testkit::{Process, Run, Scratch};

const BIN: &str = env!("CARGO_BIN_EXE_ports-demo");

/// Whether `text` has Korean in it (a Hangul syllable).
fn has_korean(text: &str) -> bool {
    text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

/// `text` with every number that is the pid of a process of the run replaced by that
/// process's role (whole numbers only: a pid is never matched inside a longer number).
fn pids_to_roles(text: &str, pids: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in text.chars().map(Some).chain([None]) {
        if let Some(d) = c.filter(char::is_ascii_digit) {
            digits.push(d);
            continue;
        }
        match pids.iter().find(|(pid, _)| *pid == digits) {
            Some((_, role)) => out.push_str(role),
            None => out.push_str(&digits),
        }
        digits.clear();
        out.extend(c);
    }
    out
}

/// The system calls that the process tagged `[role pid]` made, in order, as
/// `name(arguments)`, with every pid of the run replaced by its role. Results are left
/// out: addresses, inodes and how many descriptors one `poll` found ready differ from
/// run to run; the calls and their arguments do not.
fn calls_of(run: &Run, role: &str) -> Vec<String> {
    let mut pids: Vec<(String, String)> = Vec::new();
    for line in run.stdout.lines() {
        let tag = line.strip_prefix('[').and_then(|l| l.split_once("] "));
        if let Some((who, pid)) = tag.and_then(|(tag, _)| tag.split_once(' ')) {
            if !pids.iter().any(|(known, _)| known == pid) {
                pids.push((pid.to_owned(), who.to_owned()));
            }
        }
    }
    let prefix = format!("[{role} ");
    run.stdout
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.strip_prefix(&prefix)?.split_once("] ")?;
            let (call, _result) = rest.split_once(" = ")?;
            let name = call.split('(').next()?;
            let is_call =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            is_call.then(|| pids_to_roles(call, &pids))
        })
        .collect()
}

/// Runs `ports-demo ARGS` in English and then in Korean, and checks what must not
/// change: exit code 0, the summary line, and the calls of the process tagged `role`.
/// Returns the two runs.
fn in_both_languages(args: &[&str], role: &str) -> (Run, Run) {
    let run = |lang: &str| {
        let mut all = vec!["--lang", lang];
        all.extend(args);
        let r = testkit::run(BIN, &all, b"");
        r.assert_code(0);
        r
    };
    let (en, ko) = (run("en"), run("ko"));
    assert_eq!(ko.summary(), en.summary(), "{en}\n{ko}");
    assert!(
        !has_korean(&en.stdout),
        "an English run with Korean in it: {en}"
    );
    assert!(
        has_korean(&ko.stdout),
        "a Korean run with no Korean in it: {ko}"
    );
    let (en_calls, ko_calls) = (calls_of(&en, role), calls_of(&ko, role));
    assert!(en_calls.len() > 10, "too few calls of {role}: {en}");
    assert_eq!(
        ko_calls, en_calls,
        "the calls of {role} differ:\n{en}\n{ko}"
    );
    (en, ko)
}

#[test]
fn lang_ko_explains_the_one_terminal_mach_run_with_the_same_calls_and_summary() {
    let s = Scratch::new("ko-mach");
    let boot = s.arg("boot");
    let (en, ko) = in_both_languages(&["--count", "3", "--bootstrap", &boot], "client");
    assert_eq!(
        ko.summary(),
        "summary: requests=3 ok=3 wrong=0 refused=0",
        "{ko}"
    );
    // One sentence of each role: the bootstrap server, the server, the client.
    for (korean, english) in [
        (
            "부트스트랩 서버(bootstrap server)가 ",
            "bootstrap server ready at ",
        ),
        (
            "echo 등록 완료: 이제 이 이름을 아는 태스크(task)는 누구나 내 포트로 메시지를 보낼 수 있습니다",
            "registered echo: any task that knows the name can now send to my port",
        ),
        (
            "이제 나는 수신 권한만 가집니다. 클라이언트는 그 응답 포트(reply port)로만 압니다",
            "I hold only the receive right now",
        ),
        (
            "조회(look-up) echo: 송신 권한(send right) ",
            "look-up echo: send right ",
        ),
    ] {
        assert!(ko.stdout.contains(korean), "no {korean:?}: {ko}");
        assert!(!ko.stdout.contains(english), "{english:?} in Korean: {ko}");
        assert!(en.stdout.contains(english), "no {english:?}: {en}");
    }
    assert!(
        ko.stdout
            .lines()
            .any(|l| l.starts_with("[client ")
                && l.contains("] 포트(port): 수신 권한(receive right) ")),
        "{ko}"
    );
    s.assert_empty();
}

#[test]
fn lang_ko_explains_the_one_terminal_alpc_run_with_the_same_calls_and_summary() {
    let s = Scratch::new("ko-alpc");
    let port = s.arg("alpc");
    let (en, ko) = in_both_languages(&["alpc", "--port", &port], "alpc-client");
    assert_eq!(word_of(&ko, "callbacks"), "1", "{ko}");
    for (korean, english) in [
        ("연결 포트(connection port)가 ", "connection port ready at "),
        (
            "채널(channel) 1번: 내 섹션(section)은 65536바이트(요청용), 서버의 섹션은 65536바이트(응답용)입니다",
            "channel 1: my section 65536 bytes (requests)",
        ),
        (
            "100바이트: 인라인(inline)으로 보냅니다. 채널을 거쳐 복사됩니다",
            "100 bytes: inline, copied through the channel",
        ),
        (
            "10240바이트: 내 섹션에 씁니다. 오프셋 0과 길이만 오갑니다",
            "10240 bytes: into my section",
        ),
        (
            "1048576바이트: 내 섹션보다 큽니다. 서버가 내 메모리의 0x",
            "1048576 bytes: more than my section",
        ),
        (
            "기다리는 동안 콜백(callback) 1번이 왔습니다: 그것에 먼저 답합니다",
            "a callback (1) while I wait",
        ),
    ] {
        assert!(ko.stdout.contains(korean), "no {korean:?}: {ko}");
        assert!(!ko.stdout.contains(english), "{english:?} in Korean: {ko}");
        assert!(en.stdout.contains(english), "no {english:?}: {en}");
    }
    // The result of a call is data, not an explanation: the same bytes in both.
    assert!(
        ko.stdout.contains("] greet() = \"hello, alpc-client\"\n"),
        "{ko}"
    );
    s.assert_empty();
}

/// The word after `name=` in the summary line.
fn word_of(run: &Run, name: &str) -> String {
    run.summary()
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name}= in {run}"))
        .to_string()
}

#[test]
fn a_korean_bootstrap_servers_refusal_arrives_in_korean() {
    // The reason travels in the reply's body, from one process to another: the client
    // must show the server's Korean as it is, not as question marks.
    let s = Scratch::new("ko-refusal");
    let boot_path = s.arg("boot");
    let mut boot = Process::start(
        BIN,
        &["--lang", "ko", "bootstrap", "--bootstrap", &boot_path],
    );
    boot.wait_for_line("부트스트랩 서버(bootstrap server)가 ");
    let r = testkit::run(
        BIN,
        &[
            "--lang",
            "ko",
            "look-up",
            "nobody-here",
            "--bootstrap",
            &boot_path,
        ],
        b"",
    );
    r.assert_code(1);
    assert!(
        r.stderr.contains(
            "bootstrap_look_up(\"nobody-here\") 실패: BOOTSTRAP_UNKNOWN_SERVICE (1102): \
             nobody-here: 이 이름으로 등록된 포트가 없습니다"
        ),
        "{r}"
    );
    boot.signal(Signal::SIGTERM);
    boot.finish().assert_code(130);
    s.assert_empty();
}

#[test]
fn help_is_korean_for_the_program_and_a_lesson() {
    let r = testkit::run(BIN, &["--lang", "ko", "--help"], b"");
    r.assert_code(0);
    for korean in [
        "리눅스 부품으로 다시 만든 Mach 포트(port)와 Windows ALPC",
        "사용법",
        "부트스트랩 서버의 소켓",
        "(한 터미널에서 모두)",
    ] {
        assert!(r.stdout.contains(korean), "no {korean:?}: {r}");
    }
    let send = testkit::run(BIN, &["--lang", "ko", "send", "--help"], b"");
    send.assert_code(0);
    for korean in [
        "NAME으로 메시지를 보냅니다. 큐가 가득 차면 --full이 정한 대로 합니다.",
        "메시지를 맡아 두고, 자리가 나면 통지를 받습니다 (MACH_SEND_NOTIFY)",
    ] {
        assert!(send.stdout.contains(korean), "no {korean:?}: {send}");
    }
}
