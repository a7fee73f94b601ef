//! Byte offsets that never split a character.
//!
//! baton speaks byte offsets everywhere, and Rust panics when a `&str` (or a rope) is sliced
//! inside a multi-byte character. Many offsets are computed without looking at characters: a
//! byte budget, the length of another string, a keyword's length, an index entry from a file
//! that has changed on disk since. Every slice at such an offset goes through this module, whose
//! helpers round the offset to a character boundary instead of panicking, so a `Ñ` or a `🎉` in
//! the wrong place can never take the server down.
//!
//! The rules are the same everywhere: an offset past the end means the end, an offset inside a
//! character means the start of that character (the rule `encoding` applies to positions), and
//! an inverted range is empty. Helpers that round up say so in their name. Converting LSP
//! positions to byte offsets is `encoding`'s job; this module only keeps byte offsets whole.

use std::ops::Range;

use ropey::{Rope, RopeSlice};

/// The start of the character containing byte `offset` of `text` (`offset` itself on a
/// boundary); offsets past the end clamp to the end.
pub fn floor_char_boundary(text: &str, offset: usize) -> usize {
    if offset >= text.len() {
        return text.len();
    }
    // A character is at most four bytes, so this steps back at most three times.
    let mut offset = offset;
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The end of the character containing byte `offset` of `text` (`offset` itself on a
/// boundary); offsets past the end clamp to the end.
pub fn ceil_char_boundary(text: &str, offset: usize) -> usize {
    if offset >= text.len() {
        return text.len();
    }
    let mut offset = offset;
    while !text.is_char_boundary(offset) {
        offset += 1;
    }
    offset
}

/// `text[range]`, with both ends moved down to character boundaries and clamped to the text;
/// an inverted range gives the empty string at its start.
pub fn slice_within(text: &str, range: Range<usize>) -> &str {
    let start = floor_char_boundary(text, range.start);
    let end = floor_char_boundary(text, range.end).max(start);
    &text[start..end]
}

/// The longest prefix of `text` that is at most `max_bytes` long.
pub fn prefix_within_bytes(text: &str, max_bytes: usize) -> &str {
    &text[..floor_char_boundary(text, max_bytes)]
}

/// The longest suffix of `text` that is at most `max_bytes` long.
pub fn suffix_within_bytes(text: &str, max_bytes: usize) -> &str {
    &text[ceil_char_boundary(text, text.len().saturating_sub(max_bytes))..]
}

/// Splits `text` at `offset` moved down to a character boundary (and clamped to the text).
pub fn split_at_floor(text: &str, offset: usize) -> (&str, &str) {
    text.split_at(floor_char_boundary(text, offset))
}

/// Shortens `text` to the longest prefix that is at most `max_bytes` long.
pub fn truncate_to_bytes(text: &mut String, max_bytes: usize) {
    let end = floor_char_boundary(text, max_bytes);
    text.truncate(end);
}

/// `text` without `prefix` if it starts with it, ignoring ASCII case (`BATON:` matches
/// `baton:`). Works on any text: a non-ASCII character where the prefix would end simply does
/// not match, where comparing `text[..prefix.len()]` would panic.
pub fn strip_prefix_ignore_ascii_case<'text>(text: &'text str, prefix: &str) -> Option<&'text str> {
    let head = text.as_bytes().get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix.as_bytes()) {
        return None;
    }
    // Bytes equal up to ASCII case to a whole string are whole characters, so the rest starts
    // on a boundary; `get` keeps this panic-free even if that reasoning were wrong.
    text.get(prefix.len()..)
}

/// Whether `text` starts with `prefix`, ignoring ASCII case.
pub fn starts_with_ignore_ascii_case(text: &str, prefix: &str) -> bool {
    strip_prefix_ignore_ascii_case(text, prefix).is_some()
}

/// At most the first `max_chars` characters of `text`, for titles and previews: never ends
/// inside a character, nor between a character and what visually belongs to it (combining
/// marks, variation selectors, emoji skin tones and tags, either side of a zero-width joiner,
/// the `\n` of a `\r\n`). A sequence that does not fit is left out whole, so the result may be
/// shorter than `max_chars` (even empty when the first sequence alone is longer).
pub fn display_prefix(text: &str, max_chars: usize) -> &str {
    let Some((mut cut, _)) = text.char_indices().nth(max_chars) else {
        return text;
    };
    while cut > 0 {
        let (before, after) = text.split_at(cut);
        let (Some(previous), Some(next)) = (before.chars().next_back(), after.chars().next())
        else {
            break;
        };
        let joined = extends_previous(next)
            || previous == ZERO_WIDTH_JOINER
            || (previous == '\r' && next == '\n');
        if !joined {
            break;
        }
        cut -= previous.len_utf8();
    }
    &text[..cut]
}

const ZERO_WIDTH_JOINER: char = '\u{200D}';

/// Characters that are drawn together with the character before them. Not the full Unicode
/// grapheme rules (baton has no segmentation tables), but the cases that occur in code comments
/// and commit-style text: accents written as combining marks, and emoji sequences.
fn extends_previous(character: char) -> bool {
    matches!(
        character,
        '\u{0300}'..='\u{036F}'     // combining diacritical marks
        | '\u{1AB0}'..='\u{1AFF}'   // combining diacritical marks extended
        | '\u{1DC0}'..='\u{1DFF}'   // combining diacritical marks supplement
        | '\u{20D0}'..='\u{20FF}'   // combining marks for symbols (keycaps)
        | '\u{FE20}'..='\u{FE2F}'   // combining half marks
        | '\u{FE00}'..='\u{FE0F}'   // variation selectors (emoji presentation)
        | '\u{E0100}'..='\u{E01EF}' // variation selectors supplement
        | '\u{1F3FB}'..='\u{1F3FF}' // emoji skin tone modifiers
        | '\u{E0020}'..='\u{E007F}' // tag characters (subdivision flags)
        | ZERO_WIDTH_JOINER
    )
}

/// The start of the character of `rope` containing byte `offset` (`offset` itself on a
/// boundary); offsets past the end clamp to the end.
pub fn rope_floor_char_boundary(rope: &Rope, offset: usize) -> usize {
    if offset >= rope.len_bytes() {
        return rope.len_bytes();
    }
    let (chunk, chunk_start, _, _) = rope.chunk_at_byte(offset);
    // Chunks never split a character, so the boundary is inside this chunk.
    chunk_start + floor_char_boundary(chunk, offset - chunk_start)
}

/// The end of the character of `rope` containing byte `offset` (`offset` itself on a
/// boundary); offsets past the end clamp to the end.
pub fn rope_ceil_char_boundary(rope: &Rope, offset: usize) -> usize {
    if offset >= rope.len_bytes() {
        return rope.len_bytes();
    }
    let (chunk, chunk_start, _, _) = rope.chunk_at_byte(offset);
    chunk_start + ceil_char_boundary(chunk, offset - chunk_start)
}

/// `rope.byte_slice(range)`, with both ends moved down to character boundaries and clamped to
/// the rope (ropey panics on either); an inverted range gives an empty slice at its start.
pub fn rope_slice_within(rope: &Rope, range: Range<usize>) -> RopeSlice<'_> {
    let start = rope_floor_char_boundary(rope, range.start);
    let end = rope_floor_char_boundary(rope, range.end).max(start);
    rope.byte_slice(start..end)
}

/// The 0-based line containing byte `offset` of `rope`; offsets past the end are on the last
/// line (ropey panics on them).
pub fn rope_line_of_byte(rope: &Rope, offset: usize) -> usize {
    rope.byte_to_line(offset.min(rope.len_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Texts with 1-, 2-, 3- and 4-byte characters, combining marks, zero-width joiners,
    /// variation selectors, `\r\n` and a lone `\r`.
    const SAMPLES: &[&str] = &[
        "",
        "ascii only",
        "    // Ñandú es un ave\r\n",
        "// TODO🎉 later",
        "// baton: ñandú — añade un campo",
        "//Ñbaton: x",
        "e\u{301}te\u{301} cafe\u{301}",
        "👨\u{200D}👩\u{200D}👧 family",
        "❤\u{FE0F}👍🏽 flags 🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
        "a\r\nb\rc\n",
        "€𝕏ß中\u{10FFFF}",
    ];

    /// Every byte offset of `text`, plus a few past the end.
    fn offsets(text: &str) -> std::ops::RangeInclusive<usize> {
        0..=text.len() + 3
    }

    /// What a correct floor is, spelled differently: the largest boundary at or before.
    fn expected_floor(text: &str, offset: usize) -> usize {
        (0..=offset.min(text.len()))
            .rev()
            .find(|&candidate| text.is_char_boundary(candidate))
            .unwrap_or(0)
    }

    fn expected_ceil(text: &str, offset: usize) -> usize {
        (offset.min(text.len())..=text.len())
            .find(|&candidate| text.is_char_boundary(candidate))
            .unwrap_or(text.len())
    }

    #[test]
    fn floor_and_ceil_at_every_offset() {
        for text in SAMPLES {
            for offset in offsets(text) {
                let floor = floor_char_boundary(text, offset);
                let ceil = ceil_char_boundary(text, offset);
                assert_eq!(floor, expected_floor(text, offset), "{text:?} at {offset}");
                assert_eq!(ceil, expected_ceil(text, offset), "{text:?} at {offset}");
                assert!(floor <= ceil);
                if offset <= text.len() && text.is_char_boundary(offset) {
                    assert_eq!((floor, ceil), (offset, offset));
                }
            }
        }
    }

    #[test]
    fn slices_at_every_pair_of_offsets() {
        for text in SAMPLES {
            for start in offsets(text) {
                for end in offsets(text) {
                    let slice = slice_within(text, start..end);
                    let from = expected_floor(text, start);
                    let to = expected_floor(text, end).max(from);
                    assert_eq!(slice, &text[from..to], "{text:?} at {start}..{end}");
                }
            }
        }
    }

    #[test]
    fn prefixes_suffixes_and_truncation_at_every_length() {
        for text in SAMPLES {
            for bytes in offsets(text) {
                let prefix = prefix_within_bytes(text, bytes);
                assert!(prefix.len() <= bytes && text.starts_with(prefix));
                assert_eq!(prefix.len(), expected_floor(text, bytes));

                let suffix = suffix_within_bytes(text, bytes);
                assert!(suffix.len() <= bytes && text.ends_with(suffix));
                assert_eq!(
                    text.len() - suffix.len(),
                    expected_ceil(text, text.len().saturating_sub(bytes))
                );

                let mut truncated = text.to_string();
                truncate_to_bytes(&mut truncated, bytes);
                assert_eq!(truncated, prefix);

                let (before, after) = split_at_floor(text, bytes);
                assert_eq!(before, prefix);
                assert_eq!(format!("{before}{after}"), *text);
            }
        }
    }

    #[test]
    fn ascii_case_insensitive_prefixes_on_any_text() {
        for text in SAMPLES {
            // Every prefix of the text, cut anywhere, as the thing looked for: only whole
            // character prefixes can match, and nothing panics.
            for length in offsets(text) {
                let Some(wanted) = text.get(..length) else {
                    assert!(length > text.len() || !text.is_char_boundary(length));
                    continue;
                };
                let upper = wanted.to_ascii_uppercase();
                assert_eq!(
                    strip_prefix_ignore_ascii_case(text, &upper),
                    Some(&text[length..])
                );
                assert!(starts_with_ignore_ascii_case(text, wanted));
            }
            // A keyword against text whose characters straddle the keyword's length.
            for start in 0..=text.len() {
                let Some(rest) = text.get(start..) else {
                    continue;
                };
                assert_eq!(
                    starts_with_ignore_ascii_case(rest, "baton:"),
                    rest.to_ascii_lowercase().starts_with("baton:")
                );
            }
        }
        assert_eq!(
            strip_prefix_ignore_ascii_case("BaToN: go", "baton:"),
            Some(" go")
        );
        // Non-ASCII letters are not case-folded: only ASCII case is ignored.
        assert_eq!(strip_prefix_ignore_ascii_case("Ñandú", "ñ"), None);
        assert_eq!(strip_prefix_ignore_ascii_case("ñandú", "ñ"), Some("andú"));
    }

    #[test]
    fn display_prefixes_keep_what_is_drawn_together() {
        for text in SAMPLES {
            let count = text.chars().count();
            for max_chars in 0..=count + 2 {
                let prefix = display_prefix(text, max_chars);
                assert!(text.starts_with(prefix));
                assert!(prefix.chars().count() <= max_chars);
                if max_chars >= count {
                    assert_eq!(prefix, *text);
                    continue;
                }
                let rest = &text[prefix.len()..];
                let next = rest.chars().next().unwrap();
                assert!(!extends_previous(next), "{text:?}: cut before {next:?}");
                assert!(!prefix.ends_with(ZERO_WIDTH_JOINER), "{text:?}: {prefix:?}");
                assert!(!(prefix.ends_with('\r') && rest.starts_with('\n')));
            }
        }
        assert_eq!(display_prefix("cafe\u{301}s", 4), "caf");
        assert_eq!(display_prefix("ab👨\u{200D}👩 c", 3), "ab");
        assert_eq!(display_prefix("ab👨\u{200D}👩 c", 4), "ab");
        assert_eq!(display_prefix("ab👨\u{200D}👩 c", 5), "ab👨\u{200D}👩");
        assert_eq!(display_prefix("ab👨\u{200D}👩 c", 6), "ab👨\u{200D}👩 ");
        assert_eq!(display_prefix("Ñandú es un ave", 5), "Ñandú");
    }

    /// A rope built from many small inserts has many chunks, so characters sit at chunk edges.
    fn chunky_rope(text: &str) -> Rope {
        let mut rope = Rope::new();
        for (index, character) in text.chars().enumerate() {
            rope.insert_char(index, character);
        }
        rope
    }

    #[test]
    fn rope_helpers_agree_with_the_string_helpers_at_every_offset() {
        let long = SAMPLES.concat().repeat(40);
        for text in SAMPLES.iter().copied().chain([long.as_str()]) {
            for rope in [Rope::from_str(text), chunky_rope(text)] {
                for offset in offsets(text) {
                    assert_eq!(
                        rope_floor_char_boundary(&rope, offset),
                        floor_char_boundary(text, offset)
                    );
                    assert_eq!(
                        rope_ceil_char_boundary(&rope, offset),
                        ceil_char_boundary(text, offset)
                    );
                    let line = rope_line_of_byte(&rope, offset);
                    assert!(line < rope.len_lines());
                    // Whole-text slices are quadratic on the long text; a window is enough.
                    let end = offset + 9;
                    assert_eq!(
                        rope_slice_within(&rope, offset..end).to_string(),
                        slice_within(text, offset..end)
                    );
                    assert_eq!(
                        rope_slice_within(&rope, end..offset).len_bytes(),
                        0,
                        "an inverted range is empty"
                    );
                }
            }
        }
    }

    proptest! {
        #[test]
        fn slicing_never_panics_and_stays_on_boundaries(
            text in "(a|é|€|😀|e\u{301}|\u{200D}|\r\n|\n){0,24}",
            start in 0usize..120,
            end in 0usize..120,
        ) {
            let slice = slice_within(&text, start..end);
            let at = slice.as_ptr() as usize - text.as_ptr() as usize;
            prop_assert!(text.is_char_boundary(at));
            prop_assert!(text.is_char_boundary(at + slice.len()));
            let rope = Rope::from_str(&text);
            prop_assert_eq!(rope_slice_within(&rope, start..end).to_string(), slice);
            prop_assert_eq!(
                prefix_within_bytes(&text, end).len(),
                floor_char_boundary(&text, end)
            );
        }
    }
}
