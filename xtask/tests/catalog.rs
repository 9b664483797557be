//! The check CI relies on: po/ko.po translates every sentence of every crate's sources,
//! with no fuzzy or empty entry and the same `{placeholders}` as the English. (Each
//! program's own test checks its `--help` texts.)

#[test]
fn every_sentence_in_the_sources_has_a_usable_korean_translation() {
    let ws = xtask::Workspace::find().unwrap();
    let problems = xtask::check(&ws).unwrap();
    assert!(
        problems.is_empty(),
        "po/ko.po cannot be used as it is:\n{}\nsee po/README.md",
        problems.join("\n")
    );
}
