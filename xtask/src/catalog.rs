//! Reads a PO catalog and says what is wrong with it.

use std::collections::HashMap;
use std::path::Path;

use common::i18n::check::placeholder_problem;

use crate::extract::Found;

/// One message of a PO file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The English text.
    pub msgid: String,
    /// The translation; empty if there is none.
    pub msgstr: String,
    /// Marked `#, fuzzy`: a guess nobody has checked.
    pub fuzzy: bool,
}

/// The messages of the PO file at `path` (without its header and obsolete `#~` entries).
pub fn read(path: &Path) -> Result<Vec<Entry>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The messages of a PO text.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let catalog = polib::po_file::parse_from_reader(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(catalog
        .messages()
        .filter(|m| !m.msgid().is_empty())
        .map(|m| Entry {
            msgid: m.msgid().to_owned(),
            msgstr: m.msgstr().unwrap_or_default().to_owned(),
            fuzzy: m.is_fuzzy(),
        })
        .collect())
}

/// Everything wrong with the catalog `entries` (named `po`), given the sentences `found`
/// in the sources: an entry that is fuzzy, untranslated, or changes the placeholders; a
/// sentence with a bad call or without a usable translation. Each problem names the
/// message; an empty list means all is well.
pub fn problems(po: &str, entries: &[Entry], found: &[Found]) -> Vec<String> {
    let mut problems = Vec::new();
    for entry in entries {
        let why = if entry.fuzzy {
            Some("is marked fuzzy: check the translation, then delete the `#, fuzzy` line".into())
        } else if entry.msgstr.is_empty() {
            Some("has no translation".into())
        } else {
            placeholder_problem(&entry.msgid, &entry.msgstr)
                .map(|why| format!("is not usable: {why}"))
        };
        if let Some(why) = why {
            problems.push(format!("{po}: {:?} {why}", entry.msgid));
        }
    }
    let by_msgid: HashMap<&str, &Entry> = entries.iter().map(|e| (e.msgid.as_str(), e)).collect();
    for sentence in found {
        if let Some(why) = &sentence.problem {
            problems.push(format!("{}: {:?}: {why}", sentence.place, sentence.msgid));
            continue;
        }
        // A sentence whose entry is fuzzy or empty is reported with the entry above.
        if !by_msgid.contains_key(sentence.msgid.as_str()) {
            problems.push(format!(
                "{}: {:?} is not in {po}: run `cargo run -p xtask -- po` and translate it",
                sentence.place, sentence.msgid
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const PO: &str = r#"msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

msgid "fine {fd}"
msgstr "좋음 {fd}"

#, fuzzy
msgid "guessed"
msgstr "추측"

msgid "missing"
msgstr ""

#, python-brace-format
msgid "renamed {fd}"
msgstr "바뀜 {fdd}"

#~ msgid "obsolete"
#~ msgstr ""
"#;

    fn found(msgid: &str) -> Found {
        Found {
            msgid: msgid.into(),
            place: "x.rs:1".into(),
            problem: None,
        }
    }

    #[test]
    fn fuzzy_untranslated_and_changed_placeholders_are_refused_by_name() {
        let entries = parse(PO).unwrap();
        assert_eq!(
            entries.len(),
            4,
            "the header and obsolete entries are skipped"
        );
        let problems = problems("ko.po", &entries, &[found("fine {fd}")]);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("\"guessed\" is marked fuzzy"));
        assert!(problems[1].contains("\"missing\" has no translation"));
        assert!(problems[2].contains("\"renamed {fd}\"") && problems[2].contains("{fdd}"));
    }

    #[test]
    fn a_sentence_missing_from_the_catalog_is_refused_with_its_place() {
        let entries = parse(PO).unwrap();
        let problems = problems("ko.po", &entries[..1], &[found("new sentence")]);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].starts_with("x.rs:1: \"new sentence\" is not in ko.po"));
    }
}
