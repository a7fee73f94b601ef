//! Fuzz target `fuzz_positions`: position conversion and document changes on any text, any
//! position and every encoding.
//!
//! `reference.rs` compares the conversions with a character-by-character reference on texts
//! built from a few pieces and on small positions. This target widens the inputs, where the
//! bugs of clamping code live: any Unicode scalar (including U+2028, NEL, vertical tab and form
//! feed, which look like line breaks but are not LSP line terminators), positions up to
//! `u32::MAX`, offsets up to `usize::MAX`, reversed and out-of-range change ranges, stale
//! versions. It checks what must hold for every input rather than re-deriving each answer:
//! - `offset` never panics, lands on a char boundary inside the line it names (or at the end
//!   of the document for a line past the end), and clamps a character past the line's content
//!   to the content's end;
//! - `position` never panics, and valid positions round-trip through offsets both ways;
//! - `apply_changes` never panics, refuses stale versions without changing anything, and
//!   agrees with replacing text in a `String` at the single-position conversions (which
//!   `reference.rs` checks against the reference), with consistent `AppliedChange`s.
//!
//! A few hundred cases per property in `cargo test`; `PROPTEST_CASES` raises that, and
//! `cargo xtask fuzz --target positions` runs it for minutes with fresh seeds.

use proptest::prelude::*;
use text::{ContentChange, Document, Position, PositionEncoding, Range};

/// `PROPTEST_CASES` when set (the xtask's long runs), else the number a `cargo test` run can
/// afford. `ProptestConfig::with_cases` alone would ignore the variable. Failures are kept in
/// `fuzz_positions.regressions` beside this file (an integration test has no `lib.rs` for
/// proptest's default place) and replayed first on every run.
fn fuzz_config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::with_cases(cases)
    }
}

/// Any text, weighted towards the characters that make conversion hard.
fn any_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => any::<char>().prop_map(String::from),
        3 => prop_oneof![
            Just("\n"), Just("\r"), Just("\r\n"), Just("\n\r"), Just("é"), Just("😀"), Just("𝕏"),
            Just("\u{2028}"), Just("\u{2029}"), Just("\u{85}"), Just("\u{b}"), Just("\u{c}"),
            Just("\u{feff}"), Just("e\u{301}"), Just("👩‍👩‍👧"), Just("\t"), Just("\0"),
        ]
        .prop_map(String::from),
        2 => "[a-z ]{1,6}",
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

fn encoding() -> impl Strategy<Value = PositionEncoding> {
    prop_oneof![
        Just(PositionEncoding::Utf8),
        Just(PositionEncoding::Utf16),
        Just(PositionEncoding::Utf32)
    ]
}

/// Positions near the text and far past it.
fn any_position() -> impl Strategy<Value = Position> {
    let line = prop_oneof![4 => 0u32..16, 1 => any::<u32>(), 1 => Just(u32::MAX)];
    let character = prop_oneof![4 => 0u32..80, 1 => any::<u32>(), 1 => Just(u32::MAX)];
    (line, character).prop_map(|(line, character)| Position::new(line, character))
}

fn any_offset() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..400, 1 => any::<usize>(), 1 => Just(usize::MAX)]
}

/// The lines of `text` as the LSP defines them (`\r\n`, `\n` or `\r` end a line, nothing else
/// does): (start, end of content) byte offsets.
fn lsp_lines(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let (mut start, mut index) = (0, 0);
    while index < bytes.len() {
        if bytes[index] == b'\n' || bytes[index] == b'\r' {
            lines.push((start, index));
            if bytes[index] == b'\r' && bytes.get(index + 1) == Some(&b'\n') {
                index += 1;
            }
            start = index + 1;
        }
        index += 1;
    }
    lines.push((start, text.len()));
    lines
}

fn units(text: &str, encoding: PositionEncoding) -> usize {
    match encoding {
        PositionEncoding::Utf8 => text.len(),
        PositionEncoding::Utf16 => text.encode_utf16().count(),
        PositionEncoding::Utf32 => text.chars().count(),
    }
}

/// Whether `offset` sits between the `\r` and `\n` of a line end: no position names it.
fn inside_crlf(text: &str, offset: usize) -> bool {
    offset > 0
        && text.as_bytes().get(offset - 1) == Some(&b'\r')
        && text.as_bytes().get(offset) == Some(&b'\n')
}

fn change() -> impl Strategy<Value = ContentChange> {
    let range = prop_oneof![
        6 => (any_position(), any_position()).prop_map(|(start, end)| Some(Range::new(start, end))),
        1 => Just(None),
    ];
    (range, any_text()).prop_map(|(range, text)| ContentChange { range, text })
}

proptest! {
    #![proptest_config(fuzz_config(1000))]

    #[test]
    fn fuzz_positions_offsets_are_clamped_char_boundaries(
        text in any_text(),
        position in any_position(),
        encoding in encoding(),
    ) {
        let document = Document::new(&text, 1, "text");
        let offset = document.offset(position, encoding);
        prop_assert!(text.is_char_boundary(offset), "{offset} splits a character");
        let lines = lsp_lines(&text);
        match lines.get(position.line as usize) {
            None => prop_assert_eq!(offset, text.len(), "a line past the end is the end"),
            Some(&(start, end)) => {
                prop_assert!(start <= offset && offset <= end, "{offset} is outside line {start}..{end}");
                if position.character as usize >= units(&text[start..end], encoding) {
                    prop_assert_eq!(offset, end, "a character past the line is its end");
                } else {
                    // Inside a character means its start: the units before the offset are at
                    // most the position's, and the next character would pass it.
                    let before = units(&text[start..offset], encoding);
                    prop_assert!(before <= position.character as usize);
                    let next = text[offset..end].chars().next().map_or(0, |c| units(&c.to_string(), encoding));
                    prop_assert!(before + next > position.character as usize);
                }
            }
        }
    }

    #[test]
    fn fuzz_positions_round_trip_on_valid_positions(
        text in any_text(),
        offset in any_offset(),
        encoding in encoding(),
    ) {
        let document = Document::new(&text, 1, "text");
        // Any offset converts; the position it gives is valid and names the offset's character.
        let position = document.position(offset, encoding);
        let mut floor = offset.min(text.len());
        while !text.is_char_boundary(floor) {
            floor -= 1;
        }
        let back = document.offset(position, encoding);
        if inside_crlf(&text, floor) {
            // Between `\r` and `\n` the line's content has ended: the position names that end.
            prop_assert_eq!(back, floor - 1);
        } else {
            prop_assert_eq!(back, floor, "position {:?} of offset {} came back elsewhere", position, offset);
        }
        // And a valid position converts back to itself.
        prop_assert_eq!(document.position(back, encoding), document.position(document.offset(document.position(back, encoding), encoding), encoding));
        prop_assert_eq!(document.position(back, encoding), if inside_crlf(&text, floor) { document.position(floor - 1, encoding) } else { position });
    }

    #[test]
    fn fuzz_positions_changes_apply_like_string_replacement(
        text in any_text(),
        changes in proptest::collection::vec(change(), 0..6),
        encoding in encoding(),
        version in any::<i32>(),
    ) {
        let mut document = Document::new(&text, 0, "text");
        let result = document.apply_changes(version, &changes, encoding);
        if version <= 0 {
            prop_assert!(result.is_err(), "stale version {version} accepted");
            prop_assert_eq!(document.text(), text);
            prop_assert_eq!(document.version(), 0);
            return Ok(());
        }
        let applied = result.expect("a newer version applies");
        prop_assert_eq!(applied.len(), changes.len());
        prop_assert_eq!(document.version(), version);

        let mut expected = text.clone();
        for (change, applied) in changes.iter().zip(&applied) {
            let before = Document::new(&expected, 0, "text");
            let bytes = match change.range {
                Some(range) => before.byte_range(range, encoding),
                None => 0..expected.len(),
            };
            prop_assert_eq!(applied.start_byte, bytes.start);
            prop_assert_eq!(applied.old_end_byte, bytes.end);
            prop_assert_eq!(applied.new_end_byte, bytes.start + change.text.len());
            prop_assert_eq!(applied.start_point, before.point(bytes.start));
            prop_assert_eq!(applied.old_end_point, before.point(bytes.end));
            prop_assert_eq!(applied.map_offset(bytes.start), bytes.start);
            if bytes.end > bytes.start {
                prop_assert_eq!(applied.map_offset(bytes.end), applied.new_end_byte);
            }
            expected.replace_range(bytes, &change.text);
            let after = Document::new(&expected, 0, "text");
            prop_assert_eq!(applied.new_end_point, after.point(applied.new_end_byte));
        }
        prop_assert_eq!(document.text(), expected);
        prop_assert_eq!(document.len_bytes(), document.text().len());
    }
}
