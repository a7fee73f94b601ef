//! Position encodings and the conversions between editor positions and byte offsets.
//!
//! An LSP position is a zero-based line and a character offset counted in the units of the
//! negotiated encoding. Conversions clamp as the LSP specification asks: a line past the end
//! means the end of the document, a character past the end of its line means the end of that
//! line (before the line terminator), and a position inside a multi-unit character (a UTF-16
//! surrogate pair, a UTF-8 sequence) is moved back to the start of that character. No other
//! module in baton does offset arithmetic on positions.

use ropey::Rope;

/// How the `character` of a [`Position`] is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PositionEncoding {
    /// UTF-8 code units (bytes).
    Utf8,
    /// UTF-16 code units: the LSP default.
    #[default]
    Utf16,
    /// Unicode code points.
    Utf32,
}

impl PositionEncoding {
    /// The name used in LSP's `positionEncoding` capability.
    pub fn as_lsp_str(self) -> &'static str {
        match self {
            PositionEncoding::Utf8 => "utf-8",
            PositionEncoding::Utf16 => "utf-16",
            PositionEncoding::Utf32 => "utf-32",
        }
    }

    /// Parses an LSP `positionEncoding` name.
    pub fn from_lsp_str(name: &str) -> Option<PositionEncoding> {
        match name {
            "utf-8" => Some(PositionEncoding::Utf8),
            "utf-16" => Some(PositionEncoding::Utf16),
            "utf-32" => Some(PositionEncoding::Utf32),
            _ => None,
        }
    }

    /// Picks the encoding to use from the client's preference list: utf-8 is cheapest for us
    /// (it is what the rope and tree-sitter count in), then utf-32, and utf-16 is the default the
    /// protocol guarantees.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> PositionEncoding {
        let offered: Vec<PositionEncoding> = offered
            .into_iter()
            .filter_map(PositionEncoding::from_lsp_str)
            .collect();
        [PositionEncoding::Utf8, PositionEncoding::Utf32]
            .into_iter()
            .find(|wanted| offered.contains(wanted))
            .unwrap_or(PositionEncoding::Utf16)
    }
}

/// A position as an editor sends it: zero-based line and character in some encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

impl Position {
    pub fn new(line: u32, character: u32) -> Position {
        Position { line, character }
    }
}

/// A range of editor positions, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

impl Range {
    pub fn new(start: Position, end: Position) -> Range {
        Range { start, end }
    }
}

/// Byte offset of the end of `line`'s content, before its terminator (`\n`, `\r\n` or `\r`).
pub(crate) fn line_content_end(rope: &Rope, line: usize) -> usize {
    let start = rope.line_to_byte(line);
    let slice = rope.line(line);
    let mut end = start + slice.len_bytes();
    let mut chars = slice.chars_at(slice.len_chars());
    if let Some('\n') = chars.prev() {
        end -= 1;
        if let Some('\r') = chars.prev() {
            end -= 1;
        }
    } else if slice.len_chars() > 0 && slice.char(slice.len_chars() - 1) == '\r' {
        end -= 1;
    }
    end
}

/// Converts an editor position to a byte offset into `rope`, clamping as described in the
/// module documentation. Never panics.
pub fn position_to_offset(rope: &Rope, position: Position, encoding: PositionEncoding) -> usize {
    let line = position.line as usize;
    if line >= rope.len_lines() {
        return rope.len_bytes();
    }
    let line_start = rope.line_to_byte(line);
    let content_end = line_content_end(rope, line);
    let character = position.character as usize;
    match encoding {
        PositionEncoding::Utf8 => {
            let wanted = line_start.saturating_add(character).min(content_end);
            // Round down to a character boundary.
            rope.char_to_byte(rope.byte_to_char(wanted))
        }
        PositionEncoding::Utf32 => {
            let start_char = rope.byte_to_char(line_start);
            let end_char = rope.byte_to_char(content_end);
            let wanted = start_char.saturating_add(character).min(end_char);
            rope.char_to_byte(wanted)
        }
        PositionEncoding::Utf16 => {
            let start_char = rope.byte_to_char(line_start);
            let end_char = rope.byte_to_char(content_end);
            let start_cu = rope.char_to_utf16_cu(start_char);
            let end_cu = rope.char_to_utf16_cu(end_char);
            let wanted_cu = start_cu.saturating_add(character).min(end_cu);
            // `utf16_cu_to_char` rounds a unit inside a surrogate pair down to its character.
            rope.char_to_byte(rope.utf16_cu_to_char(wanted_cu))
        }
    }
}

/// Converts a byte offset into `rope` to an editor position. Offsets past the end clamp to the
/// end; offsets inside a character are moved back to its start.
pub fn offset_to_position(rope: &Rope, offset: usize, encoding: PositionEncoding) -> Position {
    let offset = offset.min(rope.len_bytes());
    let char_index = rope.byte_to_char(offset);
    let line = rope.char_to_line(char_index);
    let line_start_char = rope.line_to_char(line);
    let character = match encoding {
        PositionEncoding::Utf8 => rope.char_to_byte(char_index) - rope.line_to_byte(line),
        PositionEncoding::Utf32 => char_index - line_start_char,
        PositionEncoding::Utf16 => {
            rope.char_to_utf16_cu(char_index) - rope.char_to_utf16_cu(line_start_char)
        }
    };
    Position::new(line as u32, character as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_utf8_then_utf32_then_default() {
        assert_eq!(
            PositionEncoding::negotiate(["utf-16", "utf-8"]),
            PositionEncoding::Utf8
        );
        assert_eq!(
            PositionEncoding::negotiate(["utf-32", "utf-16"]),
            PositionEncoding::Utf32
        );
        assert_eq!(
            PositionEncoding::negotiate(["utf-16"]),
            PositionEncoding::Utf16
        );
        assert_eq!(PositionEncoding::negotiate([]), PositionEncoding::Utf16);
        assert_eq!(
            PositionEncoding::negotiate(["latin-1"]),
            PositionEncoding::Utf16
        );
    }

    #[test]
    fn astral_characters_count_per_encoding() {
        let rope = Rope::from_str("a😀b\n");
        let b = 1 + 4;
        assert_eq!(
            position_to_offset(&rope, Position::new(0, 5), PositionEncoding::Utf8),
            b
        );
        assert_eq!(
            position_to_offset(&rope, Position::new(0, 3), PositionEncoding::Utf16),
            b
        );
        assert_eq!(
            position_to_offset(&rope, Position::new(0, 2), PositionEncoding::Utf32),
            b
        );
        // Inside the surrogate pair: back to the start of the emoji.
        assert_eq!(
            position_to_offset(&rope, Position::new(0, 2), PositionEncoding::Utf16),
            1
        );
        // Inside the UTF-8 sequence: back to the start of the emoji.
        assert_eq!(
            position_to_offset(&rope, Position::new(0, 3), PositionEncoding::Utf8),
            1
        );
        assert_eq!(
            offset_to_position(&rope, b, PositionEncoding::Utf16),
            Position::new(0, 3)
        );
    }

    #[test]
    fn out_of_range_positions_clamp() {
        let rope = Rope::from_str("ab\r\ncd");
        // Past the end of line 0 stops before "\r\n".
        assert_eq!(
            position_to_offset(&rope, Position::new(0, 99), PositionEncoding::Utf16),
            2
        );
        // Past the last line is the end of the document.
        assert_eq!(
            position_to_offset(&rope, Position::new(7, 0), PositionEncoding::Utf16),
            6
        );
        assert_eq!(
            offset_to_position(&rope, 99, PositionEncoding::Utf16),
            Position::new(1, 2)
        );
    }
}
