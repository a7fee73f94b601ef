//! The one-walk execution of the tags patterns (`tag_starts`) against tree-sitter's plain
//! query cursor, on the index fixture of every language: the same tags and outline entries,
//! whole and in ranges.

use ropey::Rope;

use super::fuzz_tags::snippet;
use crate::symbols::{CompiledQuery, TagStrategy, outline_entries_by, tags_by};
use crate::{Language, SyntaxTree};

#[test]
fn the_fast_tags_and_outline_are_the_plain_querys_in_every_language() {
    for language in Language::ALL {
        assert!(
            CompiledQuery::uses_tag_starts(language),
            "{}: the tags patterns are run by the plain query",
            language.name()
        );
        let text = snippet(language);
        let rope = Rope::from_str(text);
        let tree = SyntaxTree::parse(language, &rope).expect("the fixture parses");
        let plain = tags_by(language, tree.tree(), &rope, None, TagStrategy::Plain);
        let fast = tags_by(language, tree.tree(), &rope, None, TagStrategy::Fastest);
        assert!(!plain.is_empty(), "{}: no tags", language.name());
        assert_eq!(fast, plain, "{}", language.name());
        let plain = outline_entries_by(
            language,
            tree.tree(),
            &rope,
            0..usize::MAX,
            TagStrategy::Plain,
        );
        let fast = outline_entries_by(
            language,
            tree.tree(),
            &rope,
            0..usize::MAX,
            TagStrategy::Fastest,
        );
        assert!(!plain.is_empty(), "{}: no outline", language.name());
        assert_eq!(fast, plain, "{} outline", language.name());
        // Ranges that cut through definitions, as the open-document re-tagging asks.
        let step = (text.len() / 7).max(1);
        for start in (0..text.len()).step_by(step) {
            for length in [1, step / 3 + 1, step * 2] {
                let range = Some(start..start + length);
                let plain = tags_by(
                    language,
                    tree.tree(),
                    &rope,
                    range.clone(),
                    TagStrategy::Plain,
                );
                let fast = tags_by(
                    language,
                    tree.tree(),
                    &rope,
                    range.clone(),
                    TagStrategy::Fastest,
                );
                assert_eq!(fast, plain, "{} in {range:?}", language.name());
                let range = start..start + length;
                let plain = outline_entries_by(
                    language,
                    tree.tree(),
                    &rope,
                    range.clone(),
                    TagStrategy::Plain,
                );
                let fast = outline_entries_by(
                    language,
                    tree.tree(),
                    &rope,
                    range.clone(),
                    TagStrategy::Fastest,
                );
                assert_eq!(fast, plain, "{} outline in {range:?}", language.name());
            }
        }
    }
}
