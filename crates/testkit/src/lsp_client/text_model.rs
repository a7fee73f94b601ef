//! The test client's own model of document text: a plain `String` per document and hand-written
//! conversions between LSP positions and byte offsets in UTF-8, UTF-16 and UTF-32.
//!
//! This is deliberately independent of `crates/text`: the client exists to check the server, so it
//! must not share the server's code for the very conversions it is checking. It favours being
//! obviously right over being fast (every conversion scans the text).

/// A position encoding the client can speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
    Utf32,
}

impl Encoding {
    /// Parses the LSP name (`"utf-8"`, `"utf-16"`, `"utf-32"`).
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "utf-8" => Some(Encoding::Utf8),
            "utf-16" => Some(Encoding::Utf16),
            "utf-32" => Some(Encoding::Utf32),
            _ => None,
        }
    }

    /// The LSP name of this encoding.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16 => "utf-16",
            Encoding::Utf32 => "utf-32",
        }
    }

    /// How many code units of this encoding the character takes.
    fn units(self, character: char) -> usize {
        match self {
            Encoding::Utf8 => character.len_utf8(),
            Encoding::Utf16 => character.len_utf16(),
            Encoding::Utf32 => 1,
        }
    }
}

/// An LSP position: zero-based line and character offset in the negotiated encoding.
pub type LinePosition = (u32, u32);

/// One incremental content change as it goes into `textDocument/didChange`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncrementalChange {
    pub start: LinePosition,
    pub end: LinePosition,
    pub text: String,
}

/// A line of the text: where its content starts and ends (the end excludes the terminator).
struct Line {
    start: usize,
    content_end: usize,
}

/// Splits the text into lines the way LSP does: `\n`, `\r\n` and `\r` all end a line, and the text
/// after the last terminator is one more (possibly empty) line.
fn lines(text: &str) -> Vec<Line> {
    let bytes = text.as_bytes();
    let mut result = Vec::new();
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\n' => {
                result.push(Line {
                    start,
                    content_end: index,
                });
                index += 1;
                start = index;
            }
            b'\r' => {
                result.push(Line {
                    start,
                    content_end: index,
                });
                index += if bytes.get(index + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = index;
            }
            _ => index += 1,
        }
    }
    result.push(Line {
        start,
        content_end: bytes.len(),
    });
    result
}

/// Converts an LSP position into a byte offset.
///
/// A character past the end of its line is clamped to the line's end, as the specification says.
/// Two things are errors because a correct server never produces them: a position that falls inside
/// a character (for example between the two halves of a UTF-16 surrogate pair), and a line past the
/// end of the text. The one exception is `(line_count, 0)`, one line past the last, which many
/// servers use for "the end of the document" and which real editors accept.
pub fn position_to_offset(
    text: &str,
    position: LinePosition,
    encoding: Encoding,
) -> Result<usize, String> {
    let (line_number, character) = position;
    let all_lines = lines(text);
    let Some(line) = all_lines.get(line_number as usize) else {
        if line_number as usize == all_lines.len() && character == 0 {
            return Ok(text.len());
        }
        return Err(format!(
            "position {line_number}:{character} is past the last line (the text has {} lines)",
            all_lines.len()
        ));
    };
    let mut units = 0usize;
    for (relative, ch) in text[line.start..line.content_end].char_indices() {
        if units == character as usize {
            return Ok(line.start + relative);
        }
        units += encoding.units(ch);
        if units > character as usize {
            return Err(format!(
                "position {line_number}:{character} ({}) falls inside the character {ch:?}",
                encoding.name()
            ));
        }
    }
    Ok(line.content_end)
}

/// Converts any LSP position into a byte offset the way the specification asks a server to
/// treat a bad one: a line past the end means the end of the text, a character past the end of
/// its line means the end of that line, and a position inside a character (half a surrogate
/// pair, the middle of a UTF-8 sequence) means the start of that character. For checking a
/// server against hostile positions.
pub fn position_to_offset_clamped(text: &str, position: LinePosition, encoding: Encoding) -> usize {
    let (line_number, character) = position;
    let all_lines = lines(text);
    let Some(line) = all_lines.get(line_number as usize) else {
        return text.len();
    };
    let mut units = 0usize;
    for (relative, ch) in text[line.start..line.content_end].char_indices() {
        let next = units + encoding.units(ch);
        if next > character as usize {
            return line.start + relative;
        }
        units = next;
    }
    line.content_end
}

/// Converts a byte offset (on a character boundary) into an LSP position.
pub fn offset_to_position(text: &str, offset: usize, encoding: Encoding) -> LinePosition {
    let all_lines = lines(text);
    // The last line whose start is at or before the offset holds it.
    let line_index = all_lines.partition_point(|line| line.start <= offset) - 1;
    let line = &all_lines[line_index];
    let end = offset.min(line.content_end);
    let character: usize = text[line.start..end]
        .chars()
        .map(|ch| encoding.units(ch))
        .sum();
    (line_index as u32, character as u32)
}

/// One LSP `TextEdit`: a range in the original text and its replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextEdit {
    pub start: LinePosition,
    pub end: LinePosition,
    pub new_text: String,
}

/// Applies a set of `TextEdit`s that all refer to the same original text, as LSP defines them.
///
/// Returns the new text and the incremental changes an editor would send to describe it. The
/// changes are emitted from the last edit in the document to the first, so each change's range is
/// valid in the text left by the changes before it. Inserts at the same position keep the order
/// they had in the array, as the specification requires. Overlapping edits are an error.
pub fn apply_text_edits(
    text: &str,
    edits: &[TextEdit],
    encoding: Encoding,
) -> Result<(String, Vec<IncrementalChange>), String> {
    let mut resolved = Vec::with_capacity(edits.len());
    for (index, edit) in edits.iter().enumerate() {
        let start = position_to_offset(text, edit.start, encoding)?;
        let end = position_to_offset(text, edit.end, encoding)?;
        if end < start {
            return Err(format!(
                "edit {index} has its end {:?} before its start {:?}",
                edit.end, edit.start
            ));
        }
        resolved.push((start, end, index, edit.new_text.as_str()));
    }
    resolved.sort_by_key(|&(start, _, index, _)| (start, index));
    for pair in resolved.windows(2) {
        if pair[0].1 > pair[1].0 {
            return Err(format!(
                "edits {} and {} overlap (bytes {}..{} and {}..{})",
                pair[0].2, pair[1].2, pair[0].0, pair[0].1, pair[1].0, pair[1].1
            ));
        }
    }
    let mut current = text.to_string();
    let mut changes = Vec::with_capacity(resolved.len());
    for &(start, end, _, new_text) in resolved.iter().rev() {
        // Everything before `end` is still the original text, so the original offsets hold.
        changes.push(IncrementalChange {
            start: offset_to_position(&current, start, encoding),
            end: offset_to_position(&current, end, encoding),
            text: new_text.to_string(),
        });
        current.replace_range(start..end, new_text);
    }
    Ok((current, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(start: LinePosition, end: LinePosition, new_text: &str) -> TextEdit {
        TextEdit {
            start,
            end,
            new_text: new_text.to_string(),
        }
    }

    #[test]
    fn positions_in_every_encoding() {
        // "a😀b": the emoji is 4 bytes, 2 UTF-16 units, 1 UTF-32 unit.
        let text = "x\na😀b\n";
        let cases = [
            (Encoding::Utf8, (1, 5), 7),
            (Encoding::Utf16, (1, 3), 7),
            (Encoding::Utf32, (1, 2), 7),
            (Encoding::Utf16, (1, 1), 3),
            (Encoding::Utf16, (0, 1), 1),
        ];
        for (encoding, position, offset) in cases {
            assert_eq!(
                position_to_offset(text, position, encoding),
                Ok(offset),
                "{encoding:?} {position:?}"
            );
            assert_eq!(
                offset_to_position(text, offset, encoding),
                position,
                "{encoding:?}"
            );
        }
    }

    #[test]
    fn positions_inside_a_character_are_errors() {
        let text = "a😀b";
        assert!(position_to_offset(text, (0, 2), Encoding::Utf16).is_err());
        assert!(position_to_offset(text, (0, 3), Encoding::Utf8).is_err());
    }

    #[test]
    fn characters_past_the_line_end_clamp_and_lines_past_the_end_fail() {
        let text = "ab\ncd";
        assert_eq!(position_to_offset(text, (0, 99), Encoding::Utf16), Ok(2));
        assert_eq!(position_to_offset(text, (1, 99), Encoding::Utf16), Ok(5));
        assert_eq!(position_to_offset(text, (2, 0), Encoding::Utf16), Ok(5));
        assert!(position_to_offset(text, (2, 1), Encoding::Utf16).is_err());
        assert!(position_to_offset(text, (3, 0), Encoding::Utf16).is_err());
    }

    #[test]
    fn every_line_terminator_counts() {
        let text = "a\r\nb\rc\nd";
        assert_eq!(position_to_offset(text, (1, 0), Encoding::Utf8), Ok(3));
        assert_eq!(position_to_offset(text, (2, 0), Encoding::Utf8), Ok(5));
        assert_eq!(position_to_offset(text, (3, 0), Encoding::Utf8), Ok(7));
        assert_eq!(position_to_offset(text, (0, 5), Encoding::Utf8), Ok(1));
        assert_eq!(offset_to_position(text, 8, Encoding::Utf8), (3, 1));
    }

    #[test]
    fn edits_apply_against_the_original_text() {
        let text = "fn one() {}\nfn two() {}\n";
        let edits = [
            edit((1, 3), (1, 6), "deux"),
            edit((0, 3), (0, 6), "un"),
            edit((2, 0), (2, 0), "// end\n"),
        ];
        let (new_text, changes) = apply_text_edits(text, &edits, Encoding::Utf16).unwrap();
        assert_eq!(new_text, "fn un() {}\nfn deux() {}\n// end\n");
        // Changes come last-first, and replaying them one by one gives the same text.
        let mut replayed = text.to_string();
        for change in &changes {
            let start = position_to_offset(&replayed, change.start, Encoding::Utf16).unwrap();
            let end = position_to_offset(&replayed, change.end, Encoding::Utf16).unwrap();
            replayed.replace_range(start..end, &change.text);
        }
        assert_eq!(replayed, new_text);
        assert_eq!(changes[0].start, (2, 0));
    }

    #[test]
    fn inserts_at_one_position_keep_their_array_order() {
        let edits = [edit((0, 1), (0, 1), "A"), edit((0, 1), (0, 1), "B")];
        let (new_text, _) = apply_text_edits("xy", &edits, Encoding::Utf8).unwrap();
        assert_eq!(new_text, "xABy");
    }

    #[test]
    fn overlapping_edits_are_rejected() {
        let edits = [edit((0, 0), (0, 3), "a"), edit((0, 2), (0, 4), "b")];
        assert!(apply_text_edits("abcdef", &edits, Encoding::Utf8).is_err());
    }

    #[test]
    fn utf16_edit_after_an_emoji() {
        let edits = [edit((0, 3), (0, 4), "B")];
        let (new_text, changes) = apply_text_edits("a😀b", &edits, Encoding::Utf16).unwrap();
        assert_eq!(new_text, "a😀B");
        assert_eq!(changes[0].start, (0, 3));
    }
}
