//! English or Korean: the language of explanations, hints and `--help` (issue 13).
//!
//! The English sentence stays in the code, where the lesson reads it; a Korean catalog,
//! `po/ko.po` at the top of the workspace, is compiled in by `common/build.rs`:
//!
//! ```ignore
//! common::say!(n, "the kernel made a pipe: fd {read} reads, fd {write} writes", read, write);
//! let hint = common::tr!("the pipe holds more data than the new size");
//! ```
//!
//! [`tr!`](crate::tr) returns the sentence in the chosen language with its `{name}`
//! placeholders filled in; [`say!`](crate::say) narrates it. rustc checks at compile time
//! that the placeholders and the arguments match, as `format!` would. What is never
//! translated, so that scripts and tests read it alike in both languages: the system-call
//! lines (`write(4, buf, 80) = 80`), errno names, the `[role pid]` tag and the `summary:`
//! line. Those are not written with `tr!`.
//!
//! The language is chosen once, at start-up, by [`parse`] (every program's `main` calls
//! it instead of `Cli::parse()`): `--lang en|ko`, else the locale ([`from_env`]). It is
//! kept in one atomic, cheap to read from any thread, and a forked child inherits it.
//!
//! The workflow (add a sentence, extract, translate, check) is in `po/README.md`; the
//! extractor and the checks are in the `xtask` crate.
//!
//! This module translates; it does not decide what is worth saying. Each demo does.

use std::fmt::Display;
use std::sync::atomic::{AtomicU8, Ordering};

mod catalog;
pub mod check;
mod cli;

pub use catalog::korean;
pub use cli::{LangArgs, parse, parse_from};

/// A language the programs speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English, the language of the source code.
    En,
    /// Korean, from `po/ko.po`.
    Ko,
}

impl clap::ValueEnum for Lang {
    fn value_variants<'a>() -> &'a [Self] {
        &[Lang::En, Lang::Ko]
    }

    /// `en` and `ko`, with no help text of their own (one would make clap list them on
    /// separate lines in the long help).
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Lang::En => "en",
            Lang::Ko => "ko",
        }))
    }
}

/// The chosen language: 0 English (also before [`set_lang`] is called), 1 Korean.
static LANG: AtomicU8 = AtomicU8::new(0);

/// The language chosen at start-up (English until [`set_lang`] is called).
pub fn lang() -> Lang {
    match LANG.load(Ordering::Relaxed) {
        1 => Lang::Ko,
        _ => Lang::En,
    }
}

/// Chooses the language for the whole process (and the children it forks afterwards).
/// [`parse`] calls it; call it yourself only in a program without a command line.
pub fn set_lang(lang: Lang) {
    LANG.store(
        match lang {
            Lang::En => 0,
            Lang::Ko => 1,
        },
        Ordering::Relaxed,
    );
}

/// The language the environment asks for, as gettext reads it: `LANGUAGE` (a list such
/// as `ko:en`; its first entry we speak wins), then the locale, which is the first of
/// `LC_ALL`, `LC_MESSAGES`, `LANG` that is set and not empty. A value beginning with
/// `ko` is Korean; anything else is English.
///
/// As in gettext, `LANGUAGE` is ignored when the locale is `C` or `POSIX`, so that
/// `LC_ALL=C program` gives English output to a script even where the desktop sets
/// `LANGUAGE=ko:en`. Unlike gettext, `LANGUAGE` is honoured when no locale is set at all
/// (a bare container), since our output does not depend on the locale's character set.
pub fn from_env() -> Lang {
    from_vars(|name| std::env::var(name).ok())
}

/// [`from_env`] with the variables from `get` (a test passes its own).
fn from_vars(get: impl Fn(&str) -> Option<String>) -> Lang {
    let set = |name: &str| get(name).filter(|value| !value.is_empty());
    let locale = set("LC_ALL")
        .or_else(|| set("LC_MESSAGES"))
        .or_else(|| set("LANG"));
    let plain_c = matches!(locale.as_deref(), Some("C" | "POSIX"));
    if let Some(languages) = set("LANGUAGE").filter(|_| !plain_c) {
        for language in languages.split(':') {
            if language.starts_with("ko") {
                return Lang::Ko;
            }
            if language.starts_with("en") || language == "C" {
                return Lang::En;
            }
            // A language we do not speak: gettext tries the next one.
        }
    }
    match locale {
        Some(locale) if locale.starts_with("ko") => Lang::Ko,
        _ => Lang::En,
    }
}

/// `msgid` in the chosen language: its Korean translation when Korean is chosen and the
/// catalog has one, else `msgid` itself. For a text that is not a literal (a `tr!`
/// needs one); its placeholders are not filled in.
pub fn translate(msgid: &str) -> &str {
    match lang() {
        Lang::Ko => korean(msgid).unwrap_or(msgid),
        Lang::En => msgid,
    }
}

/// Used by [`tr!`](crate::tr): the Korean translation of `msgid` with `args` filled in,
/// or `english()` (the same `format!` the English text would get) when English is
/// chosen or nothing usable is in the catalog.
#[doc(hidden)]
pub fn __tr(
    msgid: &'static str,
    args: &[(&str, &dyn Display)],
    english: impl FnOnce() -> String,
) -> String {
    tr_in(lang(), msgid, args, english)
}

/// [`__tr`] in the language `lang` (a test passes its own).
fn tr_in(
    lang: Lang,
    msgid: &str,
    args: &[(&str, &dyn Display)],
    english: impl FnOnce() -> String,
) -> String {
    let korean = match lang {
        Lang::Ko => korean(msgid).and_then(|template| render(template, args)),
        Lang::En => None,
    };
    korean.unwrap_or_else(english)
}

/// One piece of a `tr!` template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text printed as it is (`{{` and `}}` already turned into `{` and `}`).
    Text(&'a str),
    /// A `{name}` placeholder.
    Arg(&'a str),
}

/// Splits a `tr!` template into text and `{name}` placeholders, following `format!`'s
/// rules for the part `tr!` allows: `{{` and `}}` are braces, and a placeholder is a
/// name alone. An error says what else was found (`{}`, `{0}`, `{size:>8}`, a lone
/// brace): a translation could not fill those in.
pub fn pieces(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        if at > 0 {
            pieces.push(Piece::Text(&rest[..at]));
        }
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{") {
            pieces.push(Piece::Text("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            pieces.push(Piece::Text("}"));
            rest = after;
        } else if tail.starts_with('}') {
            return Err("a lone '}' (write '}}' for a brace)".into());
        } else {
            let Some(end) = tail.find('}') else {
                return Err("a '{' that is never closed (write '{{' for a brace)".into());
            };
            let name = &tail[1..end];
            let identifier = name
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            if !identifier {
                return Err(format!(
                    "the placeholder {{{name}}} is not a plain name: tr! fills in only \
                     {{name}}, without position or format options"
                ));
            }
            pieces.push(Piece::Arg(name));
            rest = &tail[end + 1..];
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// The placeholder names of a template, sorted, each once.
pub fn placeholders(template: &str) -> Result<Vec<&str>, String> {
    let mut names: Vec<&str> = pieces(template)?
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Arg(name) => Some(name),
            Piece::Text(_) => None,
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

/// Fills `template`'s placeholders from `args`; `None` if the template is malformed or
/// names an argument that was not given (the checks refuse such a translation).
fn render(template: &str, args: &[(&str, &dyn Display)]) -> Option<String> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(template.len() + 16);
    for piece in pieces(template).ok()? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Arg(name) => {
                let (_, value) = args.iter().find(|(given, _)| *given == name)?;
                // Writing to a String cannot fail.
                let _ = write!(out, "{value}");
            }
        }
    }
    Some(out)
}

/// A sentence in the chosen language, as a `String`: `tr!("English {name}", name = expr)`.
///
/// The English template stays in the code; when Korean is chosen, its translation from
/// `po/ko.po` is used instead, and `{name}` placeholders are filled in from the named
/// arguments (with `Display`). `tr!("... {fd} ...", fd)` is short for `fd = fd`. `{{` and
/// `}}` are braces. Placeholders are names only: no positions, no format options.
///
/// rustc checks that the placeholders and the arguments match (an unused argument or a
/// placeholder without one is a compile error), in a function item that is never
/// called, so no placeholder can silently capture a local variable. Each argument is
/// evaluated once.
///
/// ```
/// let fd = 3;
/// assert_eq!(common::tr!("fd {fd} reads, {{braces}}", fd), "fd 3 reads, {braces}");
/// ```
///
/// A placeholder without an argument does not compile, even if a variable of that name
/// is in scope (a translation could not fill it in):
///
/// ```compile_fail
/// let fd = 3;
/// let _ = common::tr!("fd {fd} reads");
/// ```
///
/// Nor does an argument the template does not use:
///
/// ```compile_fail
/// let _ = common::tr!("fd reads", fd = 3);
/// ```
#[macro_export]
macro_rules! tr {
    ($msgid:literal $(,)?) => {{
        #[allow(dead_code)]
        fn __tr_check() {
            let _ = ::std::format_args!($msgid);
        }
        $crate::i18n::__tr($msgid, &[], || ::std::format!($msgid))
    }};
    ($msgid:literal, $($args:tt)+) => {
        $crate::__tr_args!($msgid; []; $($args)+)
    };
}

/// The argument list of [`tr!`], one `name = value` or `name` at a time.
#[doc(hidden)]
#[macro_export]
macro_rules! __tr_args {
    ($msgid:literal; [$(($name:ident, $value:expr))*]; $(,)?) => {
        match ($(&$value,)*) {
            ($($name,)*) => {
                #[allow(dead_code)]
                fn __tr_check($($name: &dyn ::std::fmt::Display),*) {
                    let _ = ::std::format_args!($msgid, $($name = $name),*);
                }
                $crate::i18n::__tr(
                    $msgid,
                    &[$((::std::stringify!($name), $name as &dyn ::std::fmt::Display)),*],
                    || ::std::format!($msgid, $($name = $name),*),
                )
            }
        }
    };
    ($msgid:literal; [$($done:tt)*]; $name:ident = $value:expr $(, $($rest:tt)*)?) => {
        $crate::__tr_args!($msgid; [$($done)* ($name, $value)]; $($($rest)*)?)
    };
    ($msgid:literal; [$($done:tt)*]; $name:ident $(, $($rest:tt)*)?) => {
        $crate::__tr_args!($msgid; [$($done)* ($name, $name)]; $($($rest)*)?)
    };
}

/// Narrates a sentence in the chosen language: `say!(n, "English {x}", x = ...)` is
/// `n.say(tr!("English {x}", x = ...))`, where `n` is a [`Narrator`](crate::Narrator).
///
/// When the narrator is silent (`--quiet`, a loop past its first few iterations, the
/// bench), nothing is translated or formatted and the arguments are not evaluated, so
/// that a sentence in a hot loop costs one check.
#[macro_export]
macro_rules! say {
    ($n:expr, $($tr:tt)+) => {{
        let narrator: &$crate::Narrator = &$n;
        if !narrator.is_silent() {
            narrator.say($crate::tr!($($tr)+));
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_locale_picks_korean_only_when_it_begins_with_ko() {
        assert_eq!(from_vars(vars(&[("LANG", "ko_KR.UTF-8")])), Lang::Ko);
        assert_eq!(from_vars(vars(&[("LANG", "en_US.UTF-8")])), Lang::En);
        assert_eq!(from_vars(vars(&[("LANG", "C.UTF-8")])), Lang::En);
        assert_eq!(from_vars(vars(&[("LANG", "fr_FR.UTF-8")])), Lang::En);
        assert_eq!(from_vars(vars(&[])), Lang::En);
    }

    #[test]
    fn lc_all_then_lc_messages_then_lang() {
        let both = [("LC_ALL", "en_US.UTF-8"), ("LANG", "ko_KR.UTF-8")];
        assert_eq!(from_vars(vars(&both)), Lang::En);
        let messages = [("LC_MESSAGES", "ko_KR.UTF-8"), ("LANG", "en_US.UTF-8")];
        assert_eq!(from_vars(vars(&messages)), Lang::Ko);
        // An empty variable counts as unset.
        let empty = [("LC_ALL", ""), ("LANG", "ko_KR.UTF-8")];
        assert_eq!(from_vars(vars(&empty)), Lang::Ko);
    }

    #[test]
    fn language_comes_first_unless_the_locale_is_c() {
        let list = [("LANGUAGE", "ko:en"), ("LANG", "en_US.UTF-8")];
        assert_eq!(from_vars(vars(&list)), Lang::Ko);
        let english_first = [("LANGUAGE", "en:ko"), ("LANG", "ko_KR.UTF-8")];
        assert_eq!(from_vars(vars(&english_first)), Lang::En);
        // A language we do not speak is skipped, as gettext skips a missing catalog.
        let french_first = [("LANGUAGE", "fr:ko_KR"), ("LANG", "en_US.UTF-8")];
        assert_eq!(from_vars(vars(&french_first)), Lang::Ko);
        let c = [("LANGUAGE", "ko:en"), ("LC_ALL", "C")];
        assert_eq!(from_vars(vars(&c)), Lang::En);
        assert_eq!(from_vars(vars(&[("LANGUAGE", "ko")])), Lang::Ko);
    }

    #[test]
    fn pieces_follow_format_rules_for_names_and_braces() {
        assert_eq!(
            pieces("fd {fd} of {{pipe}}").unwrap(),
            [
                Piece::Text("fd "),
                Piece::Arg("fd"),
                Piece::Text(" of "),
                Piece::Text("{"),
                Piece::Text("pipe"),
                Piece::Text("}"),
            ]
        );
        assert_eq!(placeholders("{b} {a} {b}").unwrap(), ["a", "b"]);
        for bad in [
            "{}",
            "{0}",
            "{size:>8}",
            "{x:?}",
            "a } b",
            "a { b",
            "{9lives}",
        ] {
            assert!(pieces(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn render_fills_names_in_any_order_and_refuses_unknown_ones() {
        let (a, b) = (1, "two");
        let args: [(&str, &dyn Display); 2] = [("a", &a), ("b", &b)];
        assert_eq!(
            render("{b}, then {a} {{}}", &args).as_deref(),
            Some("two, then 1 {}")
        );
        assert_eq!(render("{c}", &args), None);
    }

    #[test]
    fn tr_formats_english_like_format_and_evaluates_each_argument_once() {
        let mut calls = 0;
        let mut next = || {
            calls += 1;
            calls
        };
        let fd = 4;
        // English is the default (no test sets Korean in this process).
        let text = crate::tr!("fd {fd}, call {n}, {{braces}}", fd, n = next());
        assert_eq!(text, "fd 4, call 1, {braces}");
        assert_eq!(calls, 1);
        assert_eq!(crate::tr!("no placeholders"), "no placeholders");
    }

    #[test]
    fn korean_fills_in_the_translation_and_falls_back_to_english() {
        let call = "write(4, buf, 80)";
        let args: [(&str, &dyn Display); 1] = [("call", &call)];
        let english = || format!("{call} failed");
        // "{call} failed" is in po/ko.po (error.rs uses it).
        assert_eq!(
            tr_in(Lang::Ko, "{call} failed", &args, english),
            "write(4, buf, 80) 실패"
        );
        assert_eq!(
            tr_in(Lang::En, "{call} failed", &args, english),
            "write(4, buf, 80) failed"
        );
        // Without the argument its translation names, the English text is used.
        assert_eq!(
            tr_in(Lang::Ko, "{call} failed", &[], english),
            "write(4, buf, 80) failed"
        );
        assert_eq!(
            tr_in(Lang::Ko, "not in the catalog", &[], || "x".into()),
            "x"
        );
    }

    #[test]
    fn unknown_text_is_its_own_translation() {
        assert_eq!(korean("a sentence nobody translated, surely"), None);
        assert_eq!(
            translate("a sentence nobody translated, surely"),
            "a sentence nobody translated, surely"
        );
    }
}
