//! The Korean catalog, compiled in by `common/build.rs` from `po/ko.po`.

include!(concat!(env!("OUT_DIR"), "/ko.rs"));

/// The Korean translation of `msgid` from `po/ko.po`, whatever language is chosen;
/// `None` if the catalog has none (or only a fuzzy one).
pub fn korean(msgid: &str) -> Option<&'static str> {
    KO.binary_search_by(|(english, _)| (*english).cmp(msgid))
        .ok()
        .map(|at| KO[at].1)
}

/// Whether `po/ko.po` has a translation of `msgid` that is marked fuzzy (a guess by
/// `msgmerge` that no translator has checked yet, so the programs do not use it).
pub(crate) fn is_fuzzy(msgid: &str) -> bool {
    KO_FUZZY.binary_search(&msgid).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_the_binary_search() {
        assert!(KO.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert!(KO_FUZZY.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
