//! The bench as a reader runs it, on tiny counts: every mechanism and size must be in
//! its JSON, with numbers that make sense (positive, finite, ordered percentiles). Speed
//! itself is never asserted: it depends on the machine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says it failed by panicking

use serde_json::Value;
use testkit::{Closed, Scratch, run, run_closed};

const BIN: &str = env!("CARGO_BIN_EXE_bench");

const MECHANISMS: [&str; 11] = [
    "pipe",
    "fifo",
    "sysv-queue",
    "posix-queue",
    "shm-block",
    "shm-spin",
    "mmap-file",
    "unix-stream",
    "unix-dgram",
    "tcp-loopback",
    "signal",
];

fn positive(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what} = {x}");
    x
}

#[test]
fn a_quick_run_reports_every_mechanism_and_size_with_sane_numbers() {
    let dir = Scratch::new("bench-quick");
    let json = dir.path("quick.json");
    let r = run(BIN, &["--quick", "--json", json.to_str().unwrap()], b"");
    r.assert_code(0);
    assert!(r.stdout.contains("targets (ratios from this run"), "{r}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();

    for floor in ["timer_ns", "null_syscall_ns", "futex_ns"] {
        positive(&report["floors"][floor], floor);
    }
    assert_eq!(
        report["floors"]["memcpy"].as_array().unwrap().len(),
        5,
        "memcpy at 4 sizes and 64 MiB"
    );

    let rows = report["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        MECHANISMS.len() * 2 * 4,
        "every mechanism, both tests, four sizes"
    );
    for name in MECHANISMS {
        let mine: Vec<&Value> = rows
            .iter()
            .filter(|row| row["spec"]["name"] == name)
            .collect();
        assert_eq!(mine.len(), 8, "{name}");
        assert!(
            mine.iter().any(|row| row["status"] == "ok"),
            "{name} has no measurement at all"
        );
        for row in mine {
            let (test, size, status) = (
                row["test"].as_str().unwrap(),
                &row["size"],
                row["status"].as_str().unwrap(),
            );
            let what = format!("{name} {test} {size}");
            match status {
                "ok" if test == "latency" => {
                    let l = &row["latency"];
                    let (p50, p90, p99, p999, max) = (
                        positive(&l["p50"], &what),
                        positive(&l["p90"], &what),
                        positive(&l["p99"], &what),
                        positive(&l["p999"], &what),
                        positive(&l["max"], &what),
                    );
                    assert!(
                        p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
                        "{what}: {l}"
                    );
                }
                "ok" => {
                    positive(&row["bytes_per_s"], &what);
                }
                other => assert!(
                    other.starts_with("n/a") || other.starts_with("skipped"),
                    "{what}: {other}"
                ),
            }
        }
    }
    // Mechanisms with no size limit of their own measure every size.
    for name in [
        "pipe",
        "fifo",
        "unix-stream",
        "tcp-loopback",
        "shm-block",
        "mmap-file",
    ] {
        assert!(
            rows.iter()
                .filter(|row| row["spec"]["name"] == name)
                .all(|row| row["status"] == "ok"),
            "{name}"
        );
    }
    assert!(
        dir.leftovers().iter().all(|f| f == "quick.json"),
        "left behind: {:?}",
        dir.leftovers()
    );
}

#[test]
fn bad_flags_are_exit_2() {
    run(BIN, &["--runs", "0"], b"").assert_code(2);
    run(BIN, &["--frobnicate"], b"").assert_code(2);
    let r = run(BIN, &["--only", "carrier-pigeon"], b"");
    r.assert_code(2);
    assert!(
        r.stderr.contains("names no mechanism; they are pipe, fifo"),
        "{r}"
    );
}

#[test]
fn help_explains_what_is_measured() {
    let r = run(BIN, &["--help"], b"");
    r.assert_code(0);
    assert!(r.stdout.contains("round-trip latency"), "{r}");
    assert!(r.stdout.contains("Example:"), "{r}");
}

#[test]
fn a_reader_that_stops_early_ends_the_report_quietly_with_0() {
    // `bench | head -1` after head has gone: the report stops, the charts are written,
    // and nothing panics.
    let dir = Scratch::new("bench-closed-stdout");
    let charts = dir.arg("charts");
    let r = run_closed(
        BIN,
        &["--quick", "--only", "signal", "--charts", &charts],
        Closed::Stdout,
    );
    r.assert_code(0);
    assert!(!r.stderr.contains("panicked"), "{r}");
    assert!(dir.path("charts").join("latency.svg").exists(), "{r}");
}

#[test]
fn a_closed_standard_error_changes_no_exit_code() {
    let dir = Scratch::new("bench-closed-stderr");
    let charts = dir.arg("charts");
    let r = run_closed(
        BIN,
        &["--quick", "--only", "signal", "--charts", &charts],
        Closed::Stderr,
    );
    r.assert_code(0);
    assert!(r.stdout.contains("targets (ratios from this run"), "{r}");
    run_closed(BIN, &["--only", "carrier-pigeon"], Closed::Stderr).assert_code(2);
    run_closed(BIN, &["--frobnicate"], Closed::Stderr).assert_code(2);
}

/// The JSON report with the numbers taken out: its keys, and the values that are words
/// (mechanisms' columns, tests, statuses), which must not depend on the language.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "machine" | "floors"))
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Number(_) => Value::Null,
        other => other.clone(),
    }
}

#[test]
fn lang_ko_prints_the_report_in_korean_and_the_same_json() {
    let dir = Scratch::new("bench-korean");
    let run_in_lang = |lang: &str| {
        let json = dir.path(&format!("{lang}.json"));
        let charts = dir.arg(&format!("charts-{lang}"));
        let r = run(
            BIN,
            &[
                "--lang",
                lang,
                "--quick",
                "--only",
                "signal",
                "--charts",
                &charts,
                "--json",
                json.to_str().unwrap(),
            ],
            b"",
        );
        r.assert_code(0);
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        (r, report)
    };
    let (en, en_json) = run_in_lang("en");
    let (ko, ko_json) = run_in_lang("ko");
    for korean in [
        "목표 (이번 실행에서 잰 비율이며, 어디서도 검사하지 않습니다):",
        "지연 시간(latency): 왕복, p50",
        "기법",
        "알림",
        "데이터 없음",
        "signal 왕복 p50 = futex 하한의 ",
    ] {
        assert!(ko.stdout.contains(korean), "{korean:?} missing:\n{ko}");
    }
    assert!(ko.stderr.contains("컴퓨터: "), "{ko}");
    assert!(!testkit::lang::has_korean(&en.stdout), "{en}");
    assert!(en.stdout.contains("targets (ratios from this run"), "{en}");
    // The JSON is data: the same keys and words in both languages.
    assert_eq!(shape(&ko_json), shape(&en_json));
    assert_eq!(en_json["rows"][0]["status"], "ok");
    assert_eq!(ko_json["rows"][0]["spec"]["unit"], "notification");
    assert!(
        std::fs::read_to_string(dir.path("charts-ko").join("latency.svg"))
            .unwrap()
            .contains("지연 시간: 왕복당 ns (p50)")
    );
}

#[test]
fn a_korean_locale_alone_picks_korean() {
    let dir = Scratch::new("bench-locale");
    let charts = dir.arg("charts");
    let r = testkit::lang::run_in(
        &["LANG=ko_KR.UTF-8"],
        BIN,
        &["--quick", "--only", "signal", "--charts", &charts],
        b"",
    );
    r.assert_code(0);
    assert!(r.stdout.contains("목표 (이번 실행에서 잰 비율"), "{r}");
    let usage = testkit::lang::run_in(&["LANG=ko_KR.UTF-8"], BIN, &["--only", "pigeon"], b"");
    usage.assert_code(2);
    assert!(
        usage.stderr.contains("그런 이름의 기법이 없습니다"),
        "{usage}"
    );
}
