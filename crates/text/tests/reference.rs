//! Property tests: position conversion and change application against a plain reference that
//! walks the text character by character, on texts with astral characters, CRLF, lone CR,
//! empty lines, and positions past every end.

use proptest::prelude::*;
use text::{ContentChange, Document, Position, PositionEncoding, Range};

/// Lines as the LSP defines them: split at "\r\n", "\n" or "\r"; contents without terminators.
fn reference_lines(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push((start, i));
                start = i + 1;
            }
            b'\r' => {
                lines.push((start, i));
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    lines.push((start, text.len()));
    lines
}

fn units(c: char, encoding: PositionEncoding) -> usize {
    match encoding {
        PositionEncoding::Utf8 => c.len_utf8(),
        PositionEncoding::Utf16 => c.len_utf16(),
        PositionEncoding::Utf32 => 1,
    }
}

/// The byte offset of a position, clamped as the spec says; inside a character means its start.
fn reference_offset(text: &str, position: Position, encoding: PositionEncoding) -> usize {
    let lines = reference_lines(text);
    let Some(&(start, end)) = lines.get(position.line as usize) else {
        return text.len();
    };
    let mut counted = 0;
    for (i, c) in text[start..end].char_indices() {
        if counted + units(c, encoding) > position.character as usize {
            return start + i;
        }
        counted += units(c, encoding);
    }
    end
}

fn reference_position(text: &str, offset: usize, encoding: PositionEncoding) -> Position {
    let lines = reference_lines(text);
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line = lines
        .iter()
        .rposition(|&(start, _)| start <= offset)
        .unwrap_or(0);
    let (start, _) = lines[line];
    let character: usize = text[start..offset]
        .chars()
        .map(|c| units(c, encoding))
        .sum();
    Position::new(line as u32, character as u32)
}

fn text_strategy() -> impl Strategy<Value = String> {
    pieces_strategy(0..30)
}

/// Texts long enough that the rope has many chunks (about a kilobyte each).
fn large_text_strategy() -> impl Strategy<Value = String> {
    pieces_strategy(2000..4000)
}

fn pieces_strategy(count: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("a"),
            Just("é"),
            Just("😀"),
            Just("\n"),
            Just("\r\n"),
            Just("\r"),
            Just(""),
            Just("xyz"),
            Just("𝕏"),
        ],
        count,
    )
    .prop_map(|pieces| pieces.concat())
}

fn encoding_strategy() -> impl Strategy<Value = PositionEncoding> {
    prop_oneof![
        Just(PositionEncoding::Utf8),
        Just(PositionEncoding::Utf16),
        Just(PositionEncoding::Utf32)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn positions_convert_like_the_reference(
        text in text_strategy(),
        line in 0u32..12,
        character in 0u32..40,
        encoding in encoding_strategy(),
    ) {
        let document = Document::new(&text, 1, "text");
        let position = Position::new(line, character);
        prop_assert_eq!(document.offset(position, encoding), reference_offset(&text, position, encoding));
    }

    #[test]
    fn offsets_convert_like_the_reference(
        text in text_strategy(),
        offset in 0usize..200,
        encoding in encoding_strategy(),
    ) {
        let document = Document::new(&text, 1, "text");
        // Offsets between "\r" and "\n" of a CRLF are not positions an editor can name.
        let clamped = offset.min(text.len());
        prop_assume!(!(clamped > 0 && text.as_bytes().get(clamped - 1) == Some(&b'\r') && text.as_bytes().get(clamped) == Some(&b'\n')));
        prop_assert_eq!(document.position(offset, encoding), reference_position(&text, offset, encoding));
    }

    #[test]
    fn batched_ranges_convert_like_single_positions(
        text in text_strategy(),
        ranges in proptest::collection::vec((0usize..200, 0usize..200), 0..12),
        encoding in encoding_strategy(),
    ) {
        let document = Document::new(&text, 1, "text");
        let ranges: Vec<std::ops::Range<usize>> = ranges.into_iter().map(|(start, end)| start..end).collect();
        let single: Vec<_> = ranges.iter().map(|range| document.range(range.clone(), encoding)).collect();
        prop_assert_eq!(document.ranges(&ranges, encoding), single);
    }

    #[test]
    fn changes_apply_like_the_reference(
        text in text_strategy(),
        edits in proptest::collection::vec((0u32..10, 0u32..30, 0u32..10, 0u32..30, text_strategy()), 1..6),
        encoding in encoding_strategy(),
    ) {
        let mut document = Document::new(&text, 1, "text");
        let mut expected = text.clone();
        let changes: Vec<ContentChange> = edits
            .iter()
            .map(|(l1, c1, l2, c2, new_text)| ContentChange {
                range: Some(Range::new(Position::new(*l1, *c1), Position::new(*l2, *c2))),
                text: new_text.clone(),
            })
            .collect();
        for change in &changes {
            let range = change.range.unwrap();
            let a = reference_offset(&expected, range.start, encoding);
            let b = reference_offset(&expected, range.end, encoding);
            let (start, end) = (a.min(b), a.max(b));
            expected.replace_range(start..end, &change.text);
        }
        document.apply_changes(2, &changes, encoding).unwrap();
        prop_assert_eq!(document.text(), expected);
    }
}

proptest! {
    // Each case builds a text of thousands of pieces: fewer cases, many offsets each.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn offsets_convert_like_the_reference_across_chunks(
        text in large_text_strategy(),
        offsets in proptest::collection::vec(0usize..16_000, 20),
        encoding in encoding_strategy(),
    ) {
        let document = Document::new(&text, 1, "text");
        for offset in offsets {
            let clamped = offset.min(text.len());
            if clamped > 0 && text.as_bytes().get(clamped - 1) == Some(&b'\r') && text.as_bytes().get(clamped) == Some(&b'\n') {
                continue;
            }
            prop_assert_eq!(document.position(offset, encoding), reference_position(&text, offset, encoding));
        }
    }

    #[test]
    fn batched_ranges_convert_like_single_positions_across_chunks(
        text in large_text_strategy(),
        ranges in proptest::collection::vec((0usize..16_000, 0usize..16_000), 0..40),
        encoding in encoding_strategy(),
    ) {
        let document = Document::new(&text, 1, "text");
        let ranges: Vec<std::ops::Range<usize>> = ranges.into_iter().map(|(start, end)| start..end).collect();
        let single: Vec<_> = ranges.iter().map(|range| document.range(range.clone(), encoding)).collect();
        prop_assert_eq!(document.ranges(&ranges, encoding), single);
    }
}
