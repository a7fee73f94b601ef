//! Fuzz target `fuzz_markers`: `find_marker` and `comment_text` on any text.
//!
//! The editor asks for code actions on every line of every file, so marker detection sees
//! whatever a buffer holds. Properties: neither function panics; a marker names its own line
//! (its range is the rope's line, including the line break) and its instruction is a non-empty,
//! trimmed substring of that line, found after a case-insensitive `baton:`; a line past the end
//! has no marker; every line `comment_text` returns is a piece of the comment it was given.
//!
//! A few hundred cases per property in `cargo test`; `PROPTEST_CASES` raises that, and
//! `cargo xtask fuzz --target markers` runs it for minutes with fresh seeds.

use proptest::prelude::*;
use ropey::Rope;

use crate::{comment_text, find_marker};

/// `PROPTEST_CASES` when set (the xtask's long runs), else the number a `cargo test` run can
/// afford. `ProptestConfig::with_cases` alone would ignore the variable.
fn fuzz_config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig::with_cases(cases)
}

/// Text made of comment syntax, the keyword in any case, line ends, multi-byte characters and
/// anything else.
fn comment_like_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop_oneof![
            Just("//"), Just("///"), Just("//!"), Just("#"), Just("##"), Just("--"), Just(";"),
            Just("%"), Just("/*"), Just("/**"), Just("*/"), Just("<!--"), Just("-->"), Just("(*"),
            Just("*)"), Just("--[["), Just("--[==["), Just("]]"), Just("]==]"), Just("=begin"),
            Just("=end"), Just("*"), Just("!"),
            Just("baton:"), Just("BATON:"), Just("BaTon:"), Just("baton"), Just("bat"), Just(":"),
            Just(" "), Just("\t"), Just("\n"), Just("\r\n"), Just("\r"), Just("\u{2028}"),
            Just("\u{85}"), Just("\u{a0}"), Just("\u{3000}"),
            Just("é"), Just("Ñandú"), Just("🎉"), Just("e\u{301}"), Just("İ"), Just("ß"),
        ]
        .prop_map(String::from),
        2 => "[a-z ]{1,8}",
        1 => any::<char>().prop_map(String::from),
        1 => any::<String>(),
    ];
    proptest::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(fuzz_config(1000))]

    #[test]
    fn fuzz_markers_instruction_is_part_of_its_line(
        text in comment_like_text(),
        extra_line in 0usize..4,
    ) {
        let rope = Rope::from_str(&text);
        for line in 0..rope.len_lines() + extra_line {
            let Some(marker) = find_marker(&rope, line) else {
                continue;
            };
            prop_assert!(line < rope.len_lines(), "a marker past the end: {marker:?}");
            prop_assert_eq!(marker.line, line);
            prop_assert_eq!(marker.line_range.clone(), rope.line_to_byte(line)..rope.line_to_byte(line + 1));
            let line_text = &text[marker.line_range.clone()];
            prop_assert!(!marker.instruction.is_empty());
            prop_assert_eq!(marker.instruction.trim(), marker.instruction.as_str());
            prop_assert!(
                line_text.contains(&marker.instruction),
                "instruction {:?} is not in its line {:?}", marker.instruction, line_text
            );
            let keyword = line_text.to_ascii_lowercase().find("baton:");
            prop_assert!(keyword.is_some(), "a marker without the keyword: {line_text:?}");
        }
    }

    #[test]
    fn fuzz_markers_comment_text_keeps_only_pieces_of_the_comment(comment in comment_like_text()) {
        let stripped = comment_text(&comment);
        for line in stripped.lines() {
            prop_assert!(comment.contains(line), "{line:?} is not in {comment:?}");
        }
        prop_assert_eq!(stripped.trim_end().len(), stripped.len(), "trailing space kept");
    }

    /// Large offsets and arbitrary lines: `find_marker` indexes the rope by line, nothing else.
    #[test]
    fn fuzz_markers_any_line_number(text in comment_like_text(), line in any::<usize>()) {
        let rope = Rope::from_str(&text);
        if let Some(marker) = find_marker(&rope, line) {
            prop_assert!(line < rope.len_lines());
            prop_assert!(text.get(marker.line_range.clone()).is_some());
        }
    }
}
