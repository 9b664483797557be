//! `--lang`, and the command line in the chosen language.
//!
//! [`parse`] replaces `Cli::parse()` in every program's `main`. It chooses the language
//! first (from `--lang`, read before clap reads anything, so that clap's own `--help`
//! and errors can already be Korean; else from the locale), then translates the clap
//! command, then parses with it, and ends the process on a bad command line exactly as
//! `Cli::parse()` would: the message on standard error and exit code 2, or the help on
//! standard output and exit code 0.
//!
//! What is translated in Korean: every about, long about, before and after help, each
//! argument's help and heading, subcommands recursively, and clap's own words: `Usage`,
//! `Options`, `Arguments`, `Commands`, the help of `--help`, `--version` and the `help`
//! subcommand, `[default: ...]`, `[possible values: ...]` and `Possible values:` (with
//! each value's help). Texts are looked up one
//! paragraph at a time, so a doc comment's first paragraph (the short help) and the
//! whole comment (the long help) share their translations. Not translated: clap's error
//! messages (`error: unexpected argument ...`), which clap builds from English words
//! it offers no way to replace, and `[env: ...]` and `[aliases: ...]`, which no program
//! uses. In Korean the arguments' section follows the options' section if an option
//! was declared first (clap orders named headings by their first argument).

use std::ffi::OsString;

use clap::builder::StyledStr;
use clap::{Arg, Command, Parser};

use super::{Lang, from_env, korean, lang, set_lang};

/// `--lang en|ko`, which every program takes; `#[command(flatten)]` it into a CLI.
///
/// [`parse`] reads it before clap does; the field is here so that clap accepts the
/// option, checks its value and shows it in `--help`.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct LangArgs {
    /// Language of explanations, hints and help (default: the locale, from LANGUAGE,
    /// LC_ALL, LC_MESSAGES or LANG).
    #[arg(long, global = true, value_name = "LANG")]
    pub lang: Option<Lang>,
}

/// Parses the program's own command line in the chosen language; see the module
/// documentation. Use it instead of `C::parse()`.
pub fn parse<C: Parser>() -> C {
    parse_from(std::env::args_os())
}

/// [`parse`] with the given arguments (the first is the program's name).
pub fn parse_from<C, I, T>(args: I) -> C
where
    C: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    set_lang(lang_in(&args).unwrap_or_else(from_env));
    let mut cmd = localize(C::command());
    // As `C::parse()` does: `exit` prints the help (exit 0) or the error (exit 2).
    let mut matches = match cmd.try_get_matches_from_mut(args) {
        Ok(matches) => matches,
        Err(e) => e.exit(),
    };
    match C::from_arg_matches_mut(&mut matches) {
        Ok(parsed) => parsed,
        Err(e) => e.format(&mut cmd).exit(),
    }
}

/// The language `--lang` asks for, if it is on the command line with a value we know.
/// A bad value is left to clap, which reports it.
fn lang_in(args: &[OsString]) -> Option<Lang> {
    let mut chosen = None;
    let mut words = args.iter().skip(1).map(|arg| arg.to_str());
    while let Some(word) = words.next() {
        let value = match word {
            // After `--` every word is an operand, even `--lang`.
            Some("--") => break,
            Some("--lang") => words.next().flatten(),
            Some(word) => word.strip_prefix("--lang="),
            None => None,
        };
        match value {
            Some("en") => chosen = Some(Lang::En),
            Some("ko") => chosen = Some(Lang::Ko),
            _ => {}
        }
    }
    chosen
}

/// The command in the chosen language: unchanged in English; in Korean, built (so that
/// clap has added `--help`, `--version` and the `help` subcommand, and copied global
/// options into subcommands) and then translated throughout.
pub fn localize(mut cmd: Command) -> Command {
    match lang() {
        Lang::En => cmd,
        Lang::Ko => {
            cmd.build();
            localize_command(cmd)
        }
    }
}

/// A help text translated paragraph by paragraph (paragraphs are separated by a blank
/// line, as in a doc comment); a paragraph without a translation stays English.
pub(crate) fn paragraphs(text: &str) -> impl Iterator<Item = &str> {
    text.split("\n\n").filter(|p| !p.trim().is_empty())
}

fn translated(text: &StyledStr) -> String {
    let text = text.to_string();
    text.split("\n\n")
        .map(|paragraph| korean(paragraph).unwrap_or(paragraph))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn localize_command(mut cmd: Command) -> Command {
    if let Some(text) = cmd.get_about().map(translated) {
        cmd = cmd.about(text);
    }
    if let Some(text) = cmd.get_long_about().map(translated) {
        cmd = cmd.long_about(text);
    }
    if let Some(text) = cmd.get_before_help().map(translated) {
        cmd = cmd.before_help(text);
    }
    if let Some(text) = cmd.get_before_long_help().map(translated) {
        cmd = cmd.before_long_help(text);
    }
    if let Some(text) = cmd.get_after_help().map(translated) {
        cmd = cmd.after_help(text);
    }
    if let Some(text) = cmd.get_after_long_help().map(translated) {
        cmd = cmd.after_long_help(text);
    }
    let commands = match cmd.get_subcommand_help_heading() {
        Some(heading) => korean(heading).unwrap_or(heading).to_owned(),
        None => crate::tr!("Commands"),
    };
    let template = help_template(&cmd);
    cmd.subcommand_help_heading(commands)
        .help_template(template)
        .mut_args(localize_arg)
        .mut_subcommands(localize_command)
}

/// clap's default help template with its one English word, `Usage:`, translated (and
/// styled as clap styles it).
fn help_template(cmd: &Command) -> String {
    let style = cmd.get_styles().get_usage();
    let usage = format!(
        "{}{}:{}",
        style.render(),
        crate::tr!("Usage"),
        style.render_reset()
    );
    let anything_listed = cmd.get_arguments().any(|arg| !arg.is_hide_set())
        || cmd.get_subcommands().any(|sub| !sub.is_hide_set());
    if anything_listed {
        format!(
            "{{before-help}}{{about-with-newline}}\n{usage} {{usage}}\n\n{{all-args}}{{after-help}}"
        )
    } else {
        format!("{{before-help}}{{about-with-newline}}\n{usage} {{usage}}{{after-help}}")
    }
}

fn localize_arg(mut arg: Arg) -> Arg {
    // clap's "Options" and "Arguments" headings are English; an argument with a heading
    // of its own is listed under it, so give every argument one.
    let heading = match arg.get_help_heading() {
        Some(heading) => korean(heading).unwrap_or(heading).to_owned(),
        None if arg.is_positional() => crate::tr!("Arguments"),
        None => crate::tr!("Options"),
    };
    arg = arg.help_heading(heading);

    let help = arg.get_help().map(translated);
    let long_help = arg.get_long_help().map(translated);
    // clap's "[default: 64]", "[possible values: en, ko]" and "Possible values:" are
    // English too: hide them and append the same facts in Korean, laid out as clap lays
    // them out. Whether `--help` shows the long form was decided when the command was
    // built, from the English texts, so setting a long help here does not change it.
    let takes_values = arg.get_num_args().is_some_and(|n| n.takes_values());
    // As clap's help: the short help ends with "[default: ...] [possible values: ...]";
    // the long one adds, after a blank line, the list of values with their help (if they
    // have one) and then, after another, "[default: ...]" and "[possible values: ...]"
    // (if not) one a line.
    let mut facts = Vec::new();
    let mut value_list = None;
    if takes_values && !arg.is_hide_default_value_set() && !arg.get_default_values().is_empty() {
        let values: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|value| value.to_string_lossy().into_owned())
            .collect();
        facts.push(crate::tr!("[default: {values}]", values = values.join(" ")));
        arg = arg.hide_default_value(true);
    }
    let possible: Vec<_> = arg
        .get_possible_values()
        .into_iter()
        .filter(|value| !value.is_hide_set())
        .collect();
    let mut short_facts = facts.clone();
    if takes_values && !arg.is_hide_possible_values_set() && !possible.is_empty() {
        let names: Vec<&str> = possible.iter().map(|value| value.get_name()).collect();
        let listed = crate::tr!("[possible values: {values}]", values = names.join(", "));
        if possible.iter().any(|value| value.get_help().is_some()) {
            let width = names
                .iter()
                .map(|name| name.chars().count())
                .max()
                .unwrap_or(0);
            let mut list = format!("{}:", crate::tr!("Possible values"));
            for value in &possible {
                let name = value.get_name();
                list.push_str(&format!("\n- {name}"));
                if let Some(help) = value.get_help() {
                    let pad = width - name.chars().count();
                    list.push_str(&format!(": {:pad$}{}", "", translated(help)));
                }
            }
            value_list = Some(list);
        } else {
            facts.push(listed.clone());
        }
        short_facts.push(listed);
        arg = arg.hide_possible_values(true);
    }
    if short_facts.is_empty() {
        if let Some(help) = help {
            arg = arg.help(help);
        }
        if let Some(long_help) = long_help {
            arg = arg.long_help(long_help);
        }
        return arg;
    }
    let long_parts: Vec<String> = long_help
        .as_ref()
        .or(help.as_ref())
        .cloned()
        .into_iter()
        .chain(value_list)
        .chain((!facts.is_empty()).then(|| facts.join("\n")))
        .collect();
    let short = short_facts.join(" ");
    let help = match help {
        Some(help) => format!("{help} {short}"),
        None => short,
    };
    arg.help(help).long_help(long_parts.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn lang_is_found_in_both_spellings_and_the_last_one_wins() {
        assert_eq!(lang_in(&args(&["demo", "--lang", "ko"])), Some(Lang::Ko));
        assert_eq!(
            lang_in(&args(&["demo", "duplex", "--lang=ko"])),
            Some(Lang::Ko)
        );
        assert_eq!(
            lang_in(&args(&["demo", "--lang=ko", "--lang", "en"])),
            Some(Lang::En)
        );
        assert_eq!(lang_in(&args(&["demo", "--count", "3"])), None);
    }

    #[test]
    fn a_bad_value_or_an_operand_after_dashes_is_not_a_choice() {
        assert_eq!(lang_in(&args(&["demo", "--lang", "fr"])), None);
        assert_eq!(lang_in(&args(&["demo", "--lang"])), None);
        assert_eq!(lang_in(&args(&["demo", "--", "--lang", "ko"])), None);
        assert_eq!(lang_in(&args(&["demo", "--language=ko"])), None);
    }

    #[test]
    fn english_leaves_the_command_as_clap_made_it() {
        // No test in this process chooses Korean, so `localize` must not touch it.
        let cmd = Command::new("demo")
            .about("About")
            .arg(Arg::new("x").long("x"));
        let mut plain = cmd.clone();
        let mut localized = localize(cmd);
        assert_eq!(
            plain.render_long_help().to_string(),
            localized.render_long_help().to_string()
        );
    }
}
