//! Checks that the Korean catalog covers a program's `--help`, for the test every
//! program's `main.rs` ends with:
//!
//! ```ignore
//! #[test]
//! fn help_is_translated_to_korean() {
//!     common::i18n::check::assert_help_translated::<Cli>();
//! }
//! ```
//!
//! The same test gives the extractor (`cargo run -p xtask -- po`) the texts of the
//! command: with `IPC_DEMOS_HELP_TEXTS=DIR` in its environment, it first writes them to
//! `DIR/PROGRAM.txt`. The sentences of `tr!` and `say!` are checked by the `xtask`
//! crate's tests, which read the sources.

use clap::{Command, CommandFactory};

use super::cli::paragraphs;
use super::{catalog, korean, placeholders};

/// The environment variable that asks [`assert_help_translated`] to write the texts
/// it checks into a folder, for the extractor.
pub const HELP_TEXTS_ENV: &str = "IPC_DEMOS_HELP_TEXTS";

/// One text of a `--help`: where it appears, and the English text (one paragraph).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpText {
    /// Where: `pipe-demo duplex: about`, `pipe-demo: --count`.
    pub place: String,
    /// The English paragraph, as clap has it: the msgid in `po/ko.po`.
    pub msgid: String,
}

/// Every English text that a `--help` of `cmd` or of one of its subcommands can show:
/// abouts, before and after help, argument helps and headings, as clap has them once
/// it has built the command (with its own `--help`, `--version` and `help`). Split into
/// paragraphs, as they are translated; each text once, at its first place.
pub fn help_texts(mut cmd: Command) -> Vec<HelpText> {
    cmd.build();
    let mut texts = Vec::new();
    collect(&cmd, cmd.get_name(), &mut texts);
    let mut seen = std::collections::HashSet::new();
    texts.retain(|text: &HelpText| seen.insert(text.msgid.clone()));
    texts
}

fn collect(cmd: &Command, path: &str, texts: &mut Vec<HelpText>) {
    let mut add = |place: String, text: &str| {
        for paragraph in paragraphs(text) {
            texts.push(HelpText {
                place: place.clone(),
                msgid: paragraph.to_owned(),
            });
        }
    };
    let own = [
        ("about", cmd.get_about()),
        ("long about", cmd.get_long_about()),
        ("before help", cmd.get_before_help()),
        ("before long help", cmd.get_before_long_help()),
        ("after help", cmd.get_after_help()),
        ("after long help", cmd.get_after_long_help()),
    ];
    for (what, text) in own {
        if let Some(text) = text {
            add(format!("{path}: {what}"), &text.to_string());
        }
    }
    if let Some(heading) = cmd.get_subcommand_help_heading() {
        add(format!("{path}: commands heading"), heading);
    }
    for arg in cmd.get_arguments() {
        let name = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => format!("<{}>", arg.get_id()),
        };
        for (what, text) in [("help", arg.get_help()), ("long help", arg.get_long_help())] {
            if let Some(text) = text {
                add(format!("{path}: {name} ({what})"), &text.to_string());
            }
        }
        for value in arg.get_possible_values() {
            if let Some(help) = value.get_help() {
                add(
                    format!("{path}: {name} {}", value.get_name()),
                    &help.to_string(),
                );
            }
        }
        if let Some(heading) = arg.get_help_heading() {
            add(format!("{path}: {name} (heading)"), heading);
        }
    }
    for sub in cmd.get_subcommands() {
        collect(sub, &format!("{path} {}", sub.get_name()), texts);
    }
}

/// What is wrong with the Korean translation of `msgid`, if anything: none, only a
/// fuzzy one (which the programs do not use), or one whose `{placeholders}` differ from
/// the English ones. Placeholders are compared only when `msgid` is a valid `tr!`
/// template; a `--help` text is not a template, but its braces are kept all the same.
pub fn problem(msgid: &str) -> Option<String> {
    if catalog::is_fuzzy(msgid) {
        return Some(
            "its Korean translation is marked fuzzy: check it, then delete the `#, fuzzy` line"
                .into(),
        );
    }
    let Some(korean) = korean(msgid) else {
        return Some("it has no Korean translation".into());
    };
    placeholder_problem(msgid, korean)
}

/// Whether a translation keeps the English text's placeholders (see [`problem`]).
pub fn placeholder_problem(msgid: &str, translation: &str) -> Option<String> {
    let Ok(english) = placeholders(msgid) else {
        return None;
    };
    match placeholders(translation) {
        Ok(korean) if korean == english => None,
        Ok(korean) => Some(format!(
            "its placeholders {} differ from the English ones {}",
            braced(&korean),
            braced(&english)
        )),
        Err(why) => Some(format!("its translation is not a valid template: {why}")),
    }
}

fn braced(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|name| format!("{{{name}}}")).collect();
    format!("[{}]", names.join(", "))
}

/// The test each program runs on its own command line: every text of its `--help`
/// (and its subcommands') has a Korean translation in `po/ko.po` that is not fuzzy and
/// keeps the placeholders. With [`HELP_TEXTS_ENV`] set to a folder, first writes the
/// texts there for the extractor.
///
/// # Panics
///
/// This is a test: it panics, naming every text that is not translated, and how to fix
/// it, or if the texts cannot be written where [`HELP_TEXTS_ENV`] says.
pub fn assert_help_translated<C: CommandFactory>() {
    let cmd = C::command();
    let program = cmd.get_name().to_owned();
    let texts = help_texts(cmd);
    if let Some(dir) = std::env::var_os(HELP_TEXTS_ENV) {
        let path = std::path::Path::new(&dir).join(format!("{program}.txt"));
        if let Err(e) = std::fs::write(&path, encode(&texts)) {
            panic!("cannot write {}: {e}", path.display());
        }
    }
    let problems: Vec<String> = texts
        .iter()
        .filter_map(|text| {
            problem(&text.msgid).map(|why| format!("  {}: {:?}: {why}", text.place, text.msgid))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{program} --help: {} text(s) cannot be shown in Korean:\n{}\n\
         Run `cargo run -p xtask -- po` to add them to po/ko.po, translate them there, and \
         see po/README.md.",
        problems.len(),
        problems.join("\n")
    );
}

/// The texts as the extractor reads them: `place`, a tab, the text, then a NUL byte.
pub fn encode(texts: &[HelpText]) -> String {
    texts
        .iter()
        .map(|text| format!("{}\t{}\0", text.place, text.msgid))
        .collect()
}

/// The inverse of [`encode`].
pub fn decode(encoded: &str) -> Vec<HelpText> {
    encoded
        .split_terminator('\0')
        .filter_map(|record| record.split_once('\t'))
        .map(|(place, msgid)| HelpText {
            place: place.to_owned(),
            msgid: msgid.to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Arg;

    fn command() -> Command {
        Command::new("demo")
            .about("Short about.\n\nExample: demo --x 1")
            .arg(Arg::new("x").long("x").help("The x."))
            .subcommand(Command::new("sub").about("A subcommand."))
    }

    #[test]
    fn every_paragraph_of_every_text_is_found_once() {
        let texts = help_texts(command());
        let msgids: Vec<&str> = texts.iter().map(|t| t.msgid.as_str()).collect();
        for expected in [
            "Short about.",
            "Example: demo --x 1",
            "The x.",
            "A subcommand.",
            "Print help",
        ] {
            assert!(msgids.contains(&expected), "{expected:?} in {msgids:?}");
        }
        let mut unique = msgids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), msgids.len(), "{msgids:?}");
    }

    #[test]
    fn a_missing_translation_and_a_placeholder_change_are_problems() {
        assert!(problem("a sentence nobody translated, surely").is_some());
        assert!(placeholder_problem("fd {fd} reads", "fd {fd}는 읽습니다").is_none());
        let changed = placeholder_problem("fd {fd} reads", "fd {dd}는 읽습니다").unwrap();
        assert!(
            changed.contains("{dd}") && changed.contains("{fd}"),
            "{changed}"
        );
        assert!(placeholder_problem("fd {fd} reads", "fd {fd:?}").is_some());
        // A --help text with braces that are not a template is compared as is: no problem.
        assert!(placeholder_problem("{a:>3}", "whatever").is_none());
    }

    #[test]
    fn texts_survive_encoding() {
        let texts = help_texts(command());
        assert_eq!(decode(&encode(&texts)), texts);
    }
}
