//! English and Korean (issue 13): run a demo in both languages and compare what must not
//! change between them: the exit code, the `summary:` line and the system-call lines.
//! Explanations change; the tests that use this check that they are Korean.
//!
//! The language is pinned for each run: none of the locale variables reaches the demo but
//! those the test names, so the machine's own locale cannot choose for it.

use std::process::Command;

use crate::{Process, Run};

/// The variables that choose the language (`common::i18n::from_env`), in gettext's order.
pub const LOCALE_VARIABLES: [&str; 4] = ["LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"];

/// A command for `program` with `args`, and with none of the locale variables but
/// `vars` (each `NAME=value`).
pub fn command(program: &str, vars: &[&str], args: &[&str]) -> Command {
    let mut command = Command::new(program);
    for name in LOCALE_VARIABLES {
        command.env_remove(name);
    }
    for var in vars {
        let (name, value) = var.split_once('=').expect("NAME=value");
        command.env(name, value);
    }
    command.args(args);
    command
}

/// Runs `program` with `args` and the locale `vars` (see [`command`]), `input` on its
/// standard input, and waits for it to end.
pub fn run_in(vars: &[&str], program: &str, args: &[&str], input: &[u8]) -> Run {
    let mut p = Process::spawn(&mut command(program, vars, args));
    p.send(input);
    p.close_stdin();
    p.finish()
}

/// Runs `program` in English, whatever the machine's locale.
pub fn english(program: &str, args: &[&str]) -> Run {
    run_in(&[], program, args, b"")
}

/// Runs `program` with `--lang ko` before `args`.
pub fn korean(program: &str, args: &[&str]) -> Run {
    run_in(&[], program, &[&["--lang", "ko"], args].concat(), b"")
}

/// Starts `program` with `--lang ko` before `args`, for a test that talks to it while it
/// runs (a server).
pub fn start_korean(program: &str, args: &[&str]) -> Process {
    Process::spawn(&mut command(
        program,
        &[],
        &[&["--lang", "ko"], args].concat(),
    ))
}

/// Whether `text` has Korean in it (a Hangul syllable).
pub fn has_korean(text: &str) -> bool {
    text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

/// The system-call lines of a run, as `[role] call = result`: the pids of the processes
/// replaced by their roles (they differ from run to run, and appear in arguments such as
/// a path or SO_PEERCRED's pid), and anything after the result (`= 0 (...)`, an
/// explanation) left out. Sorted, because two processes' lines interleave freely.
pub fn calls(r: &Run) -> Vec<String> {
    let tagged: Vec<(&str, &str, &str)> = r
        .stdout
        .lines()
        .filter_map(|line| {
            let (tag, rest) = line.strip_prefix('[')?.split_once("] ")?;
            let (role, pid) = tag.split_once(' ')?;
            Some((role, pid, rest))
        })
        .collect();
    let mut calls: Vec<String> = tagged
        .iter()
        .filter_map(|(role, _, rest)| {
            let (call, result) = rest.split_once(" = ")?;
            let name = call.split('(').next()?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            let result = if result.starts_with('[') {
                &result[..=result.find(']')?]
            } else {
                result.split_whitespace().next()?
            };
            let mut line = format!("[{role}] {call} = {result}");
            for (role, pid, _) in &tagged {
                line = line.replace(pid, role);
            }
            Some(line)
        })
        .collect();
    calls.sort();
    calls
}

/// The lines of a run that are neither narration (`[role pid] ...`) nor the summary: what
/// a raw mode prints.
pub fn data_lines(r: &Run) -> Vec<&str> {
    r.stdout
        .lines()
        .filter(|l| !l.starts_with('[') && !l.starts_with("summary:"))
        .collect()
}

/// Checks what must not change between an English run `en` and a Korean run `ko` of the
/// same lesson: both exit 0, the summary lines are equal, and so are the system calls
/// but those `skip` leaves out (a result that differs from run to run, such as an
/// address, or a wait that timed out as often as scheduling made it); the English run
/// has no Korean in it and the Korean run has.
pub fn assert_same(en: &Run, ko: &Run, skip: impl Fn(&str) -> bool) {
    en.assert_code(0);
    ko.assert_code(0);
    assert_eq!(ko.summary(), en.summary(), "{ko}");
    let kept = |r: &Run| -> Vec<String> { calls(r).into_iter().filter(|c| !skip(c)).collect() };
    let (en_calls, ko_calls) = (kept(en), kept(ko));
    assert!(!en_calls.is_empty(), "{en}");
    assert_eq!(ko_calls, en_calls, "the system calls differ:\n{en}\n{ko}");
    assert!(
        !has_korean(&en.stdout),
        "English run with Korean in it: {en}"
    );
    assert!(has_korean(&ko.stdout), "Korean run without Korean: {ko}");
}

/// Runs `program` with `args` in English and with `--lang ko`, checks what must not
/// change ([`assert_same`], every call compared), and returns the Korean run for the
/// caller to check its explanations.
pub fn same_in_korean(program: &str, args: &[&str]) -> Run {
    let (en, ko) = (english(program, args), korean(program, args));
    assert_same(&en, &ko, |_| false);
    ko
}

/// Checks that `r` printed `text` (in its standard output).
pub fn says(r: &Run, text: &str) {
    assert!(r.stdout.contains(text), "no {text:?} in:\n{r}");
}

/// Checks that `LANG=ko_KR.UTF-8` alone makes `program` speak Korean (it prints
/// `text`), and that `LC_ALL=C` keeps it English, as gettext does; returns the Korean run.
pub fn assert_locale_picks_korean(program: &str, args: &[&str], text: &str) -> Run {
    let r = run_in(&["LANG=ko_KR.UTF-8"], program, args, b"");
    r.assert_code(0);
    says(&r, text);
    let c = run_in(&["LANG=ko_KR.UTF-8", "LC_ALL=C"], program, args, b"");
    c.assert_code(0);
    assert!(!has_korean(&c.stdout), "LC_ALL=C must keep English: {c}");
    r
}
