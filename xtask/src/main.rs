//! `cargo run -p xtask -- po`: extract the programs' messages into `po/messages.pot`
//! and merge them into `po/ko.po`. `cargo run -p xtask -- check`: refuse a catalog that
//! leaves a sentence untranslated, fuzzy, or with other placeholders. See po/README.md.

use std::process::ExitCode;

const USAGE: &str = "usage: cargo run -p xtask -- po | check\n\
  po     extract every message into po/messages.pot and merge it into po/ko.po\n\
  check  refuse po/ko.po if a sentence is untranslated, fuzzy, or changes a placeholder";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["po"] => Task::Po,
        ["check"] => Task::Check,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Task {
    Po,
    Check,
}

fn run(task: Task) -> Result<(), String> {
    let ws = xtask::Workspace::find()?;
    match task {
        Task::Po => {
            let statistics = xtask::po(&ws)?;
            println!("wrote po/messages.pot and merged it into po/ko.po: {statistics}");
            println!("now translate the empty and fuzzy entries of po/ko.po (see po/README.md)");
            Ok(())
        }
        Task::Check => {
            let problems = xtask::check(&ws)?;
            if problems.is_empty() {
                println!("po/ko.po: every sentence of the sources has a usable Korean translation");
                return Ok(());
            }
            for problem in &problems {
                eprintln!("{problem}");
            }
            Err(format!(
                "{} problem(s) in the Korean catalog (see po/README.md)",
                problems.len()
            ))
        }
    }
}
