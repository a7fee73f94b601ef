//! The one document type and its one mutation path.

use ropey::Rope;

use crate::boundary;
use crate::encoding::{self, Position, PositionEncoding, Range};

/// A row and a byte column, as tree-sitter counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Point {
    pub row: usize,
    pub column: usize,
}

/// One change an editor sent: a replacement of `range`, or of the whole text when `range` is
/// `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentChange {
    pub range: Option<Range>,
    pub text: String,
}

/// What one [`ContentChange`] did, in byte offsets and points, so the syntax tree can be edited
/// incrementally and tracked ranges can follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedChange {
    pub start_byte: usize,
    pub old_end_byte: usize,
    pub new_end_byte: usize,
    pub start_point: Point,
    pub old_end_point: Point,
    pub new_end_point: Point,
}

impl AppliedChange {
    /// Where byte `offset` of the text before this change ends up after it. Offsets inside the
    /// replaced text move to the end of the new text.
    pub fn map_offset(&self, offset: usize) -> usize {
        if offset <= self.start_byte {
            offset
        } else if offset >= self.old_end_byte {
            offset - self.old_end_byte + self.new_end_byte
        } else {
            self.new_end_byte
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("version {new} is not newer than the document's version {current}")]
    StaleVersion { current: i32, new: i32 },
}

/// An open document: its text, the version the editor gave it, and its language id.
///
/// Cloning is cheap (the rope shares its nodes), so requests work on clones while the single
/// owner keeps mutating the original through [`Document::apply_changes`].
#[derive(Debug, Clone)]
pub struct Document {
    rope: Rope,
    version: i32,
    language_id: String,
}

impl Document {
    pub fn new(text: &str, version: i32, language_id: impl Into<String>) -> Document {
        Document {
            rope: Rope::from_str(text),
            version,
            language_id: language_id.into(),
        }
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    pub fn language_id(&self) -> &str {
        &self.language_id
    }

    pub fn text(&self) -> String {
        self.rope.to_string()
    }

    pub fn len_bytes(&self) -> usize {
        self.rope.len_bytes()
    }

    /// The text between two byte offsets, clamped to the document and to char boundaries.
    pub fn slice(&self, range: std::ops::Range<usize>) -> String {
        boundary::rope_slice_within(&self.rope, range).to_string()
    }

    /// Rounds a byte offset down to a char boundary inside the document.
    pub fn floor_boundary(&self, offset: usize) -> usize {
        boundary::rope_floor_char_boundary(&self.rope, offset)
    }

    /// The 0-based line containing a byte offset; offsets past the end are on the last line.
    pub fn line_of(&self, offset: usize) -> usize {
        boundary::rope_line_of_byte(&self.rope, offset)
    }

    pub fn offset(&self, position: Position, encoding: PositionEncoding) -> usize {
        encoding::position_to_offset(&self.rope, position, encoding)
    }

    pub fn position(&self, offset: usize, encoding: PositionEncoding) -> Position {
        encoding::offset_to_position(&self.rope, offset, encoding)
    }

    pub fn byte_range(&self, range: Range, encoding: PositionEncoding) -> std::ops::Range<usize> {
        let start = self.offset(range.start, encoding);
        let end = self.offset(range.end, encoding);
        start.min(end)..end.max(start)
    }

    pub fn range(&self, bytes: std::ops::Range<usize>, encoding: PositionEncoding) -> Range {
        Range::new(
            self.position(bytes.start, encoding),
            self.position(bytes.end, encoding),
        )
    }

    /// Many byte ranges at once, in the given order: cheaper than [`Document::range`] on each
    /// when there are many (see [`encoding::offsets_to_positions`]).
    pub fn ranges(
        &self,
        ranges: &[std::ops::Range<usize>],
        encoding: PositionEncoding,
    ) -> Vec<Range> {
        let offsets: Vec<usize> = ranges
            .iter()
            .flat_map(|range| [range.start, range.end])
            .collect();
        let positions = encoding::offsets_to_positions(&self.rope, &offsets, encoding);
        positions
            .chunks_exact(2)
            .map(|pair| Range::new(pair[0], pair[1]))
            .collect()
    }

    /// The tree-sitter point (row, byte column) of a byte offset.
    pub fn point(&self, offset: usize) -> Point {
        let offset = self.floor_boundary(offset);
        let row = self.rope.byte_to_line(offset);
        Point {
            row,
            column: offset - self.rope.line_to_byte(row),
        }
    }

    /// The byte range of the run of characters satisfying `is_word` around byte `offset`, on
    /// its line (an offset inside a character counts from its start; past the end is the
    /// end). Empty, at the offset, when neither neighbour is a word character.
    pub fn word_around(
        &self,
        offset: usize,
        is_word: impl Fn(char) -> bool,
    ) -> std::ops::Range<usize> {
        let offset = self.floor_boundary(offset);
        let line = self.line_of(offset);
        let start = self.line_start(line);
        let text = self.slice(start..self.line_content_end(line));
        let (before, after) = boundary::split_at_floor(&text, offset - start);
        let head: usize = before
            .chars()
            .rev()
            .take_while(|&c| is_word(c))
            .map(char::len_utf8)
            .sum();
        let tail: usize = after
            .chars()
            .take_while(|&c| is_word(c))
            .map(char::len_utf8)
            .sum();
        let at = start + before.len();
        at - head..at + tail
    }

    /// Byte offset of the start of `line` (clamped to the end of the document).
    pub fn line_start(&self, line: usize) -> usize {
        if line >= self.rope.len_lines() {
            self.rope.len_bytes()
        } else {
            self.rope.line_to_byte(line)
        }
    }

    /// Byte offset of the end of `line`'s content, before its terminator.
    pub fn line_content_end(&self, line: usize) -> usize {
        if line >= self.rope.len_lines() {
            self.rope.len_bytes()
        } else {
            encoding::line_content_end(&self.rope, line)
        }
    }

    /// The only way a document changes: applies the editor's changes in order and moves to
    /// `version`, which must be newer than the current one. On a stale version nothing changes.
    pub fn apply_changes(
        &mut self,
        version: i32,
        changes: &[ContentChange],
        encoding: PositionEncoding,
    ) -> Result<Vec<AppliedChange>, TextError> {
        if version <= self.version {
            return Err(TextError::StaleVersion {
                current: self.version,
                new: version,
            });
        }
        let applied = changes
            .iter()
            .map(|change| {
                let bytes = match change.range {
                    Some(range) => self.byte_range(range, encoding),
                    None => 0..self.rope.len_bytes(),
                };
                self.replace(bytes, &change.text)
            })
            .collect();
        self.version = version;
        Ok(applied)
    }

    /// Replaces a byte range with `text`. Private: the public path is `apply_changes`, so every
    /// mutation carries a version.
    fn replace(&mut self, bytes: std::ops::Range<usize>, text: &str) -> AppliedChange {
        let start_byte = self.floor_boundary(bytes.start);
        let old_end_byte = self.floor_boundary(bytes.end).max(start_byte);
        let start_point = self.point(start_byte);
        let old_end_point = self.point(old_end_byte);
        let start_char = self.rope.byte_to_char(start_byte);
        let end_char = self.rope.byte_to_char(old_end_byte);
        self.rope.remove(start_char..end_char);
        self.rope.insert(start_char, text);
        let new_end_byte = start_byte + text.len();
        AppliedChange {
            start_byte,
            old_end_byte,
            new_end_byte,
            start_point,
            old_end_point,
            new_end_point: self.point(new_end_byte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(l1: u32, c1: u32, l2: u32, c2: u32, text: &str) -> ContentChange {
        ContentChange {
            range: Some(Range::new(Position::new(l1, c1), Position::new(l2, c2))),
            text: text.to_string(),
        }
    }

    #[test]
    fn changes_apply_in_order_and_report_offsets() {
        let mut doc = Document::new("fn a() {}\n", 1, "rust");
        let applied = doc
            .apply_changes(
                2,
                &[change(0, 3, 0, 4, "bee"), change(0, 0, 0, 0, "pub ")],
                PositionEncoding::Utf16,
            )
            .unwrap();
        assert_eq!(doc.text(), "pub fn bee() {}\n");
        assert_eq!(doc.version(), 2);
        assert_eq!(applied[0].start_byte, 3);
        assert_eq!(applied[0].old_end_byte, 4);
        assert_eq!(applied[0].new_end_byte, 6);
        assert_eq!(applied[1].new_end_point, Point { row: 0, column: 4 });
    }

    #[test]
    fn stale_versions_are_refused_without_changing_text() {
        let mut doc = Document::new("x", 5, "rust");
        let err = doc
            .apply_changes(5, &[change(0, 0, 0, 1, "y")], PositionEncoding::Utf16)
            .unwrap_err();
        assert_eq!(err, TextError::StaleVersion { current: 5, new: 5 });
        assert_eq!(doc.text(), "x");
    }

    /// The document's own offset helpers at every byte of a multi-byte CRLF text, and past
    /// its end: slices and floors land on character boundaries, lines are the rope's.
    #[test]
    fn offset_helpers_at_every_byte_of_multi_byte_text() {
        let text = "// Ñandú es un ave\r\n// TODO🎉 later\r\ne\u{301}👨\u{200D}👩 中\n";
        let doc = Document::new(text, 1, "rust");
        for offset in 0..=text.len() + 2 {
            let floor = doc.floor_boundary(offset);
            assert!(floor <= offset && text.is_char_boundary(floor), "{offset}");
            assert!(offset >= text.len() || floor + 4 > offset, "{offset}");
            let line = doc.line_of(offset);
            assert_eq!(line, text[..floor].matches('\n').count(), "{offset}");
            assert_eq!(doc.point(offset).row, line);
            for end in [offset, offset + 1, offset + 5, text.len() + 9] {
                let slice = doc.slice(offset..end);
                assert!(text[floor..].starts_with(&slice), "{offset}..{end}");
            }
        }
    }

    fn word(document: &Document, offset: usize) -> String {
        document.slice(document.word_around(offset, |c| c.is_alphanumeric() || c == '_'))
    }

    #[test]
    fn words_around_an_offset() {
        let document = Document::new("let total_count = x;\n", 1, "rust");
        assert_eq!(word(&document, 6), "total_count");
        assert_eq!(word(&document, 4), "total_count");
        assert_eq!(word(&document, 15), "total_count");
        assert_eq!(document.word_around(16, char::is_alphanumeric), 16..16);
    }

    /// The word at every byte of a multi-byte CRLF text (inside characters too, and past the
    /// end) is the run of word characters around the character holding that byte, on its line.
    #[test]
    fn words_at_every_byte_of_a_multi_byte_line() {
        let text = "a\r\nlet año_🎉 = ñandú(e\u{301}x, 中文)\u{200D}z;\r\n";
        let document = Document::new(text, 1, "rust");
        let is_word = |c: char| c.is_alphanumeric() || c == '_';
        for offset in 0..=text.len() + 2 {
            let mut at = boundary::floor_char_boundary(text, offset);
            // Between the `\r` and `\n` of a line break is still the end of that line.
            if text[..at].ends_with('\r') && text[at..].starts_with('\n') {
                at -= 1;
            }
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[at..].find(['\r', '\n']).map_or(text.len(), |i| at + i);
            let begin = text[line_start..at]
                .char_indices()
                .rev()
                .take_while(|(_, c)| is_word(*c))
                .last()
                .map_or(at, |(i, _)| line_start + i);
            let end = text[at..line_end]
                .char_indices()
                .find(|(_, c)| !is_word(*c))
                .map_or(line_end, |(i, _)| at + i);
            assert_eq!(
                document.word_around(offset, is_word),
                begin..end,
                "at {offset}"
            );
        }
    }

    #[test]
    fn full_replacement() {
        let mut doc = Document::new("old", 1, "rust");
        doc.apply_changes(
            2,
            &[ContentChange {
                range: None,
                text: "new text".into(),
            }],
            PositionEncoding::Utf8,
        )
        .unwrap();
        assert_eq!(doc.text(), "new text");
    }
}
