//! The bench as a reader runs it, on tiny counts: every mechanism, reference row and size
//! must be in its JSON, with numbers that make sense (positive, finite, ordered
//! percentiles), every floor with its spread, and the report must have its parts (the
//! reference rows, what each column means, how close to the hardware). Speed itself is
//! never asserted: it depends on the machine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test says it failed by panicking

use serde_json::Value;
use testkit::{Closed, Scratch, run, run_closed};

const BIN: &str = env!("CARGO_BIN_EXE_bench");

const MECHANISMS: [&str; 12] = [
    "pipe",
    "fifo",
    "sysv-queue",
    "posix-queue",
    "shm-sem",
    "shm-block",
    "shm-spin",
    "mmap-file",
    "unix-stream",
    "unix-dgram",
    "tcp-loopback",
    "signal",
];

const REFERENCES: [&str; 3] = ["ref-flag", "ref-pipe", "frame-check"];

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
    assert!(r.stdout.contains("how close to the hardware"), "{r}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();

    let floors = &report["floors"];
    for floor in ["timer_ns", "null_syscall_ns", "futex_ns", "cache_line_ns"] {
        if floor == "cache_line_ns" && floors[floor].is_null() {
            continue; // one CPU: no cache line crosses between CPUs
        }
        spread(&floors[floor], floor);
    }
    let memcpy = floors["memcpy"].as_array().unwrap();
    assert_eq!(memcpy.len(), 5, "memcpy at 4 sizes and 64 MiB");
    for pair in memcpy {
        spread(&pair[1], &format!("memcpy at {}", pair[0]));
    }

    let rows = report["rows"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        MECHANISMS.len() * 2 * 4,
        "every mechanism, both tests, four sizes"
    );
    let reference = report["reference"].as_array().unwrap();
    assert_eq!(
        reference.len(),
        REFERENCES.len() * 2 * 4,
        "every reference row, both tests, four sizes"
    );
    let every = rows.iter().chain(reference).collect::<Vec<_>>();
    for name in MECHANISMS.iter().chain(&REFERENCES) {
        let mine: Vec<&Value> = every
            .iter()
            .copied()
            .filter(|row| row["spec"]["name"] == *name)
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
            match &row["ratio_note"] {
                Value::Null => {}
                note => assert!(
                    ["unsteady-floor", "within-spread", "beyond-floor"]
                        .contains(&note.as_str().unwrap()),
                    "{what}: {note}"
                ),
            }
            if status == "ok" && *name != "frame-check" && *name != "signal" {
                positive(&row["ratio"], &format!("{what} ratio"));
            }
        }
    }
    // Mechanisms with no size limit of their own measure every size; so do the
    // reference rows that never spin.
    for name in [
        "pipe",
        "fifo",
        "unix-stream",
        "tcp-loopback",
        "shm-sem",
        "shm-block",
        "mmap-file",
        "ref-pipe",
        "frame-check",
    ] {
        assert!(
            every
                .iter()
                .filter(|row| row["spec"]["name"] == name)
                .all(|row| row["status"] == "ok"),
            "{name}"
        );
    }
    // What encoding a frame costs, at each size.
    let encode = report["encode_ns"].as_array().unwrap();
    assert_eq!(encode.len(), 4, "{encode:?}");
    for pair in encode {
        positive(&pair[1], "encode_ns");
    }
    // The goal for small messages names both placements: with two CPUs, the pipe and
    // the semaphore ring are measured at 64 B on one CPU too.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let other = &report["other_placement"];
    if cpus >= 2 {
        let rows = other["rows"].as_array().unwrap();
        let names: Vec<&str> = rows
            .iter()
            .map(|r| r["spec"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["shm-block", "pipe"], "{other}");
        for row in rows {
            assert!(row["test"] == "throughput" && row["size"] == 64, "{row}");
            positive(&row["bytes_per_s"], "other placement");
        }
        assert!(
            r.stdout
                .contains("shm-block, streaming at 64 B with both processes on one CPU"),
            "{r}"
        );
    } else {
        assert!(other.is_null(), "{other}");
    }
    assert!(
        dir.leftovers().iter().all(|f| f == "quick.json"),
        "left behind: {:?}",
        dir.leftovers()
    );
}

/// Checks a floor's spread: a positive median within its runs, at least three runs, and
/// the flags that say whether it was measured again and whether it is steady.
fn spread(v: &Value, what: &str) {
    let median = positive(&v["median"], what);
    let (min, max) = (positive(&v["min"], what), positive(&v["max"], what));
    assert!(min <= median && median <= max, "{what}: {v}");
    let runs = v["runs"].as_array().unwrap();
    let steady = v["steady"].as_bool().unwrap();
    let remeasured = v["remeasured"].as_bool().unwrap();
    assert_eq!(steady, max <= 2.0 * min, "{what}: {v}");
    // Runs set aside are those of a first round that disagreed, measured again; a floor
    // measured again that agrees has set its first round aside.
    let discarded = !v["discarded"].as_array().unwrap().is_empty();
    assert!(!discarded || remeasured, "{what}: {v}");
    assert!(!(remeasured && steady) || discarded, "{what}: {v}");
    // Measured at the start and at the end of the run: at least three runs each time.
    assert!(runs.len() >= 6, "{what}: {v}");
}

#[test]
fn the_report_shows_its_parts_in_order() {
    let dir = Scratch::new("bench-parts");
    let charts = dir.arg("charts");
    let r = run(
        BIN,
        &[
            "--quick",
            "--only",
            "pipe,ref-pipe,frame-check",
            "--charts",
            &charts,
        ],
        b"",
    );
    r.assert_code(0);
    let out = &r.stdout;
    let at = |what: &str| {
        out.find(what)
            .unwrap_or_else(|| panic!("no {what:?} in the report:\n{r}"))
    };
    // The floors with their runs, then each table with its reference rows below a rule,
    // then the columns, the reference rows explained, and how close to the hardware.
    let order = [
        "floors: ",
        "  futex round trip: ",
        "\nlatency: ",
        "\npipe ",
        "\n---",
        "\nref-pipe ",
        "\nframe-check ",
        "\nthroughput: ",
        "\ncolumns:",
        "\n  way: ",
        "\n  scope: ",
        "\n  ratio (latency): ",
        "\nreference rows: ",
        "\n  encoding a frame",
        "\nhow close to the hardware",
        "- pipe, streaming at 64 KiB: ",
    ];
    for pair in order.windows(2) {
        assert!(
            at(pair[0]) < at(pair[1]),
            "{:?} after {:?}:\n{r}",
            pair[0],
            pair[1]
        );
    }
    assert!(
        out.contains(" runs)"),
        "each floor says over how many runs:\n{r}"
    );
    // What was not selected is said to be missing, not left out silently.
    assert!(
        out.contains("- shm-spin against ref-flag: not measured"),
        "{r}"
    );
    let chart = std::fs::read_to_string(dir.path("charts").join("latency.svg")).unwrap();
    assert!(
        chart.contains("stroke-dasharray") && chart.contains(">ref-pipe<"),
        "{chart}"
    );
}

#[test]
fn the_report_speaks_korean_with_the_same_numbers_and_names() {
    let dir = Scratch::new("bench-korean-reference");
    let charts = dir.arg("charts");
    let args = ["--quick", "--only", "frame-check", "--charts", &charts];
    let english = run(BIN, &args, b"");
    english.assert_code(0);
    let korean = run(BIN, &[&args[..], &["--lang", "ko"]].concat(), b"");
    korean.assert_code(0);
    for sentence in [
        "how close to the hardware",
        "reference rows: the same bytes with no demo code around them",
        "columns:",
        "encoding a frame",
    ] {
        assert!(english.stdout.contains(sentence), "{english}");
        assert!(!korean.stdout.contains(sentence), "{sentence}:\n{korean}");
    }
    assert!(korean.stdout.contains("하드웨어"), "{korean}");
    // The mechanism's name and the table's columns are the same bytes in both.
    for same in ["\nframe-check ", "64 KiB"] {
        assert!(korean.stdout.contains(same), "{same:?}:\n{korean}");
    }
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
    assert!(r.stderr.contains("ref-flag, ref-pipe, frame-check"), "{r}");
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
    assert!(r.stdout.contains("how close to the hardware"), "{r}");
    run_closed(BIN, &["--only", "carrier-pigeon"], Closed::Stderr).assert_code(2);
    run_closed(BIN, &["--frobnicate"], Closed::Stderr).assert_code(2);
}

/// The JSON report with the numbers taken out: its keys, and the values that are words
/// (mechanisms' columns, tests, statuses), which must not depend on the language. A
/// ratio's note is a word too, but it follows the numbers of each run (a ratio within
/// its floor's spread in one run may not be in the next): its value is taken out.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "machine" | "floors"))
                .map(|(k, v)| match k.as_str() {
                    "ratio_note" => (k.clone(), Value::Null),
                    _ => (k.clone(), shape(v)),
                })
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
        "하드웨어에 얼마나 가까운가",
        "지연 시간(latency): 왕복, p50",
        "기법",
        "알림",
        "데이터 없음",
        "signal, 64 B 왕복: ",
        "= futex 하한의 ",
    ] {
        assert!(ko.stdout.contains(korean), "{korean:?} missing:\n{ko}");
    }
    assert!(ko.stderr.contains("컴퓨터: "), "{ko}");
    assert!(!testkit::lang::has_korean(&en.stdout), "{en}");
    assert!(en.stdout.contains("how close to the hardware"), "{en}");
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
    assert!(r.stdout.contains("하드웨어에 얼마나 가까운가"), "{r}");
    let usage = testkit::lang::run_in(&["LANG=ko_KR.UTF-8"], BIN, &["--only", "pigeon"], b"");
    usage.assert_code(2);
    assert!(
        usage.stderr.contains("그런 이름의 기법이 없습니다"),
        "{usage}"
    );
}
