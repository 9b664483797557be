//! pipe-demo as a student runs it: the built binary, real pipes, real fork.
//!
//! Every test starts `pipe-demo` as a process and checks its summary line and exit code.
//! The producer and the consumer are two processes (the demo forks); the pipe between
//! them is the ordering, so no test waits on time.

use testkit::lang::has_korean;
use testkit::perfect;

const BIN: &str = env!("CARGO_BIN_EXE_pipe-demo");

/// Runs pipe-demo with `input` on standard input, with none of the locale variables but
/// `vars`, so that the machine's own locale cannot choose the language.
fn with_locale(vars: &[&str], args: &[&str], input: &[u8]) -> testkit::Run {
    testkit::lang::run_in(vars, BIN, args, input)
}

/// pipe-demo in English, whatever the machine's locale.
fn pipe_demo(args: &[&str]) -> testkit::Run {
    testkit::lang::english(BIN, args)
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
    let r = with_locale(&[], &["--step", "--count", "1"], b"\n");
    r.assert_code(0);
    assert!(r.stdout.contains("next: pipe()  [Enter]"), "{r}");
    assert!(
        r.stdout
            .contains("standard input ended: --step stops waiting"),
        "{r}"
    );
    assert_eq!(r.summary(), perfect(1, 64));
}

/// The pid in the `[client PID]` tag of the first client line.
fn client_pid(r: &testkit::Run) -> String {
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix("[client ")?.split(']').next())
        .unwrap_or_else(|| panic!("no [client ...] line in:\n{r}"))
        .to_string()
}

#[test]
fn duplex_answers_every_request_over_a_second_pipe() {
    let r = pipe_demo(&["duplex", "--count", "1000", "--size", "100"]);
    r.assert_code(0);
    assert_eq!(r.summary(), perfect(1000, 100));
    // Each pipe() is followed by the line that says which way it carries.
    assert!(
        r.stdout.contains(
            "] pipe() = [3, 4]\n[client {pid}] that one carries the requests: client -> server\n"
                .replace("{pid}", &client_pid(&r))
                .as_str()
        ),
        "{r}"
    );
    assert!(
        r.stdout.contains(
            "] pipe() = [5, 6]\n[client {pid}] that one carries the replies: server -> client\n"
                .replace("{pid}", &client_pid(&r))
                .as_str()
        ),
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
        .env_remove("LANGUAGE")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG")
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

// Korean (issue 13): explanations, hints and --help in Korean; system calls, errno names,
// the [role pid] tag and the summary line the same bytes as in English.

/// Runs a lesson in English and in Korean and checks what must not change: the exit
/// code, the summary line and the system calls. Returns the Korean run.
fn same_in_korean(args: &[&str]) -> testkit::Run {
    testkit::lang::same_in_korean(BIN, args)
}

#[test]
fn lang_ko_explains_the_default_run_in_korean_with_the_same_calls_and_summary() {
    let r = same_in_korean(&[]);
    assert!(
        r.stdout.contains("커널이 파이프(pipe)를 만들었습니다. 읽기 종단(read end)은 fd 3, 쓰기 종단(write end)은 fd 4입니다"),
        "{r}"
    );
    assert!(!r.stdout.contains("the kernel made a pipe"), "{r}");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("[consumer ") && l.contains("쓰기 종단 사본을 닫습니다")),
        "{r}"
    );
    assert!(r.stdout.contains("] pipe() = [3, 4]\n"), "{r}");
}

#[test]
fn lang_ko_explains_duplex_in_korean_with_the_same_calls_and_summary() {
    let r = same_in_korean(&["duplex", "--count", "5"]);
    assert!(r.stdout.contains("파이프가 두 개 필요합니다:"), "{r}");
    assert!(r.stdout.contains("요청 5개를 처리했습니다"), "{r}");
    assert!(!r.stdout.contains("served 5 requests"), "{r}");
}

#[test]
fn lang_ko_explains_shell_in_korean_with_the_same_calls_and_summary() {
    // The folder's name holds the pid: compare the calls without the folder's lines.
    let r = pipe_demo(&["--lang", "ko", "shell"]);
    r.assert_code(0);
    assert_eq!(r.summary(), "summary: ls=exited(0) grep=exited(0)");
    assert!(r.stdout.contains("] dup2(4, 1) = 1\n"), "{r}");
    assert!(
        r.stdout.contains(
            "이제 표준 출력(standard output, fd 1)이 파이프의 쓰기 종단(write end)입니다"
        ),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("execvp: 이 프로세스가 grep 프로그램으로 바뀝니다"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains(r#"] execvp("grep", ["grep", "hello"]) ..."#),
        "{r}"
    );
    let found: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with('[') && !l.starts_with("summary"))
        .collect();
    assert_eq!(found, ["hello.txt", "hello_world.c"], "{r}");
}

#[test]
fn lang_ko_explains_capacity_in_korean_with_the_same_calls_and_summary() {
    let r = same_in_korean(&["capacity", "--set", "128K"]);
    assert!(
        r.stdout
            .contains("파이프 용량은 131072바이트 (128 KiB)입니다"),
        "{r}"
    );
    assert!(
        r.stdout
            .contains("write() = -1 EAGAIN (131072바이트를 쓴 뒤): 파이프가 가득 찼습니다."),
        "{r}"
    );
}

#[test]
fn lang_ko_explains_broken_in_korean_with_the_same_calls_and_summary() {
    let r = same_in_korean(&["broken"]);
    assert!(
        r.stdout.contains("1부: 쓰는 쪽(writer)이 사라집니다"),
        "{r}"
    );
    assert!(r.stdout.contains("read() = 0: 파일 끝(EOF)입니다."), "{r}");
    assert!(r.stdout.contains("= -1 EPIPE (Broken pipe)\n"), "{r}");
    assert!(
        r.stdout
            .contains("EPIPE: 읽는 쪽이 하나도 남지 않았습니다."),
        "{r}"
    );
}

#[test]
fn a_korean_locale_alone_picks_korean_and_lang_en_overrides_it() {
    let korean = with_locale(&["LANG=ko_KR.UTF-8"], &["--count", "1"], b"");
    korean.assert_code(0);
    assert!(
        korean.stdout.contains("커널이 파이프(pipe)를 만들었습니다"),
        "{korean}"
    );
    assert_eq!(korean.summary(), perfect(1, 64));

    let english = with_locale(
        &["LANG=ko_KR.UTF-8"],
        &["--lang", "en", "--count", "1"],
        b"",
    );
    english.assert_code(0);
    assert!(
        english.stdout.contains("the kernel made a pipe"),
        "{english}"
    );
    assert!(!has_korean(&english.stdout), "{english}");

    // LANGUAGE comes first, as in gettext; LC_ALL=C keeps a script's output English.
    let language = with_locale(
        &["LANGUAGE=ko:en", "LANG=en_US.UTF-8"],
        &["--count", "1"],
        b"",
    );
    assert!(
        language
            .stdout
            .contains("커널이 파이프(pipe)를 만들었습니다"),
        "{language}"
    );
    let c = with_locale(&["LANGUAGE=ko:en", "LC_ALL=C"], &["--count", "1"], b"");
    assert!(!has_korean(&c.stdout), "{c}");
}

#[test]
fn help_is_korean_with_clap_s_own_words_translated() {
    let r = pipe_demo(&["--lang", "ko", "--help"]);
    r.assert_code(0);
    for korean in [
        "fork + pipe: 부모가 파이프(pipe)에 메시지를 쓰고",
        "\n사용법: pipe-demo [OPTIONS] [COMMAND]\n",
        "\n명령:\n",
        "\n옵션:\n",
        "[기본값: 3]",
        "[가능한 값: en, ko]",
        "도움말 출력",
        "\n예:\n  cargo run -p pipe-demo -- --count 5 --size 32\n",
    ] {
        assert!(r.stdout.contains(korean), "{korean:?} in {r}");
    }
    for english in [
        "Usage:",
        "Options:",
        "Commands:",
        "[default:",
        "Print help",
        "Example:",
    ] {
        assert!(!r.stdout.contains(english), "{english:?} in {r}");
    }
}

#[test]
fn a_subcommand_s_help_is_korean_in_every_spelling() {
    for args in [
        &["--lang", "ko", "duplex", "--help"][..],
        &["duplex", "--lang=ko", "--help"],
        &["--lang", "ko", "help", "duplex"],
    ] {
        let r = pipe_demo(args);
        r.assert_code(0);
        for korean in [
            "파이프 두 개로 요청은 한쪽으로, 응답은 반대쪽으로 보냅니다",
            "예: cargo run -p pipe-demo -- duplex --count 3",
            "\n사용법: pipe-demo duplex [OPTIONS]\n",
            "\n옵션:\n",
            "도움말 출력 ('-h'로 요약만)",
        ] {
            assert!(r.stdout.contains(korean), "{args:?}: {korean:?} in {r}");
        }
        assert!(!r.stdout.contains("Usage:"), "{args:?}: {r}");
    }
}

#[test]
fn a_bad_command_line_is_still_exit_code_2_in_korean() {
    let r = pipe_demo(&["--lang", "ko", "--frobnicate"]);
    r.assert_code(2);
    assert!(r.stderr.contains("'--frobnicate'"), "{r}");
    assert!(r.stdout.is_empty(), "{r}");
    let r = pipe_demo(&["--lang", "fr"]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("invalid value 'fr' for '--lang <LANG>'"),
        "{r}"
    );
}

#[test]
fn an_error_in_korean_keeps_the_call_and_the_errno_and_translates_the_words() {
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    drop(read_end);
    let status = std::process::Command::new(BIN)
        .args(["--quiet", "--lang", "ko"])
        .stdout(write_end)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert_eq!(status.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("] write(1, summary) 실패: EPIPE (Broken pipe); 힌트: "),
        "{stderr}"
    );
}
