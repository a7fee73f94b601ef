//! Position encodings and the conversions between editor positions and byte offsets.
//!
//! An LSP position is a zero-based line and a character offset counted in the units of the
//! negotiated encoding. Conversions clamp as the LSP specification asks: a line past the end
//! means the end of the document, a character past the end of its line means the end of that
//! line (before the line terminator), and a position inside a multi-unit character (a UTF-16
//! surrogate pair, a UTF-8 sequence) is moved back to the start of that character. No other
//! module in baton does offset arithmetic on positions.

use ropey::{Rope, RopeSlice};

use crate::boundary::{floor_char_boundary, rope_floor_char_boundary};

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

    /// How far `text` advances a `character` in this encoding: its length in this encoding's
    /// code units. Used for the end of a name whose start is known, and for every column.
    pub fn width(self, text: &str) -> u32 {
        let units = match self {
            PositionEncoding::Utf8 => text.len(),
            _ if text.is_ascii() => text.len(),
            PositionEncoding::Utf16 => text.encode_utf16().count(),
            PositionEncoding::Utf32 => text.chars().count(),
        };
        clamp_u32(units)
    }

    /// [`PositionEncoding::width`] of a rope slice, counted from the rope's own metrics.
    fn rope_width(self, text: RopeSlice) -> u32 {
        let units = match self {
            PositionEncoding::Utf8 => text.len_bytes(),
            PositionEncoding::Utf16 => text.len_utf16_cu(),
            PositionEncoding::Utf32 => text.len_chars(),
        };
        clamp_u32(units)
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
            rope_floor_char_boundary(rope, wanted)
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
    let offset = rope_floor_char_boundary(rope, offset);
    let line = rope.byte_to_line(offset);
    let line_start = rope.line_to_byte(line);
    // Counting within the line is linear in its length but needs no more tree descents; the
    // rope's own char and UTF-16 indexes cost several descents each, which dominated large
    // answers such as a whole document's symbols.
    let character = encoding.rope_width(rope.byte_slice(line_start..offset));
    Position::new(clamp_u32(line), character)
}

/// Columns and lines beyond `u32::MAX` (files over 4 GiB) saturate rather than wrap.
fn clamp_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// The position of a byte offset, kept without the text it came from: the workspace index
/// stores one per definition in files that are not open, and answers LSP positions from it
/// without reading the file again.
///
/// It holds the line and the column in UTF-8 and in UTF-16 units, the two encodings clients
/// negotiate most. A UTF-32 column equals the UTF-8 one exactly when the line is ASCII up to
/// the offset, which is exactly when the two stored columns are equal (every non-ASCII
/// character is longer in UTF-8 than in UTF-16); otherwise it needs the line's text again
/// ([`column_in_text`]). Lines break where the rope breaks them, as LSP does: at `\n`, `\r\n`
/// and a lone `\r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StoredPosition {
    line: u32,
    utf8_column: u32,
    utf16_column: u32,
}

impl StoredPosition {
    /// The stored position of byte `offset` of `rope`, clamped like [`offset_to_position`]:
    /// an offset inside a character counts from that character's start.
    pub fn of_offset(rope: &Rope, offset: usize) -> StoredPosition {
        let offset = rope_floor_char_boundary(rope, offset);
        let line = rope.byte_to_line(offset);
        let line_start = rope.line_to_byte(line);
        // One line lookup serves both columns.
        let before = rope.byte_slice(line_start..offset);
        StoredPosition {
            line: clamp_u32(line),
            utf8_column: PositionEncoding::Utf8.rope_width(before),
            utf16_column: PositionEncoding::Utf16.rope_width(before),
        }
    }

    /// Rebuilds a position from what [`StoredPosition::stored_parts`] gave, as read back from
    /// a cache.
    pub fn from_stored_parts(line: u32, utf8_column: u32, utf16_column: u32) -> StoredPosition {
        StoredPosition {
            line,
            utf8_column,
            utf16_column,
        }
    }

    /// The line, the UTF-8 column and the UTF-16 column, for writing to a cache.
    pub fn stored_parts(self) -> (u32, u32, u32) {
        (self.line, self.utf8_column, self.utf16_column)
    }

    /// The 0-based line.
    pub fn line(self) -> u32 {
        self.line
    }

    /// The column in `encoding`, when it can be told without the text: always for UTF-8 and
    /// UTF-16, for UTF-32 only when the line is ASCII up to here. `None` means "ask
    /// [`column_in_text`] with the file's text".
    pub fn character(self, encoding: PositionEncoding) -> Option<u32> {
        match encoding {
            PositionEncoding::Utf8 => Some(self.utf8_column),
            PositionEncoding::Utf16 => Some(self.utf16_column),
            PositionEncoding::Utf32 => {
                (self.utf8_column == self.utf16_column).then_some(self.utf8_column)
            }
        }
    }
}

/// The column, in `encoding`, of byte `offset` of `text` on its line, for text that is not in
/// a [`crate::Document`] (a file read from disk to answer one position). Equal to the
/// `character` of [`offset_to_position`] on the same text: lines break at `\n`, `\r\n` and a
/// lone `\r`; an offset inside a character counts from its start; an offset past the end is
/// the end. The file may have changed since its offsets were computed, so any offset is fine.
pub fn column_in_text(text: &str, offset: usize, encoding: PositionEncoding) -> u32 {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let bytes = text.as_bytes();
    let mut line_start = offset;
    while line_start > 0 {
        let previous = bytes[line_start - 1];
        // The `\r` of a `\r\n` is not a break of its own: an offset between the two is still
        // on the `\r`'s line, as the rope counts it.
        let breaks =
            previous == b'\n' || (previous == b'\r' && bytes.get(line_start) != Some(&b'\n'));
        if breaks {
            break;
        }
        line_start -= 1;
    }
    encoding.width(&text[line_start..offset])
}

/// Converts many byte offsets at once, in any order; the answer is in the same order. Equal to
/// calling [`offset_to_position`] on each, but cheaper for large answers (every symbol of a
/// document): the rope's line lookups scan within a chunk on every call, so dense offsets are
/// converted in one forward pass over the text between the first and the last, and sparse ones
/// line by line, each line located once.
pub fn offsets_to_positions(
    rope: &Rope,
    offsets: &[usize],
    encoding: PositionEncoding,
) -> Vec<Position> {
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_unstable_by_key(|&index| offsets[index]);
    let clamp = |offset: usize| offset.min(rope.len_bytes());
    let mut positions = vec![Position::default(); offsets.len()];
    let (Some(&first), Some(&last)) = (order.first(), order.last()) else {
        return positions;
    };
    let span = clamp(offsets[last]) - clamp(offsets[first]);
    if span / offsets.len() <= BYTES_PER_OFFSET_FOR_A_SCAN {
        scan_positions(rope, offsets, &order, encoding, &mut positions);
    } else {
        line_positions(rope, offsets, &order, encoding, &mut positions);
    }
    positions
}

/// The sparse case of [`offsets_to_positions`]: `order` sorts `offsets`; consecutive offsets
/// on one line share its lookup.
fn line_positions(
    rope: &Rope,
    offsets: &[usize],
    order: &[usize],
    encoding: PositionEncoding,
    positions: &mut [Position],
) {
    let mut line: Option<LineText> = None;
    for &index in order {
        let offset = offsets[index].min(rope.len_bytes());
        let current = match line.take() {
            Some(current) if current.contains(offset) => current,
            _ => LineText::at(rope, offset),
        };
        positions[index] = current.position(offset, encoding);
        line = Some(current);
    }
}

/// Average text per offset below which one pass over the text beats locating each line.
const BYTES_PER_OFFSET_FOR_A_SCAN: usize = 4096;

/// The forward pass of [`offsets_to_positions`]: `order` sorts `offsets`. Line breaks are the
/// rope's (`\n`, `\r\n` and a lone `\r`); an offset inside a character takes that character's
/// start, as in [`offset_to_position`].
fn scan_positions(
    rope: &Rope,
    offsets: &[usize],
    order: &[usize],
    encoding: PositionEncoding,
    positions: &mut [Position],
) {
    let length = rope.len_bytes();
    let first = offsets[order[0]].min(length);
    let mut line = rope.byte_to_line(first);
    let mut byte = rope.line_to_byte(line);
    let mut character = 0u32;
    let mut targets = order
        .iter()
        .map(|&index| (index, offsets[index].min(length)));
    let mut target = targets.next();
    // A `\r` whose line break is decided by the next byte, possibly in the next chunk.
    let mut pending_cr = false;
    for chunk in rope.byte_slice(byte..).chunks() {
        let bytes = chunk.as_bytes();
        // Most chunks of source text are ASCII without a `\r`: there every byte is one
        // column in every encoding and only `\n` breaks lines, so whole runs are counted at
        // once instead of byte by byte.
        if !pending_cr && bytes.is_ascii() && !bytes.contains(&b'\r') {
            let chunk_end = byte + bytes.len();
            let mut done = 0;
            let mut advance = |upto: usize, line: &mut usize, character: &mut u32| {
                let run = &bytes[done..upto];
                match run.iter().rposition(|&value| value == b'\n') {
                    Some(last) => {
                        *line += run.iter().filter(|&&value| value == b'\n').count();
                        *character = (run.len() - last - 1) as u32;
                    }
                    None => *character += run.len() as u32,
                }
                done = upto;
            };
            while let Some((index, offset)) = target {
                if offset >= chunk_end {
                    break;
                }
                advance(offset - byte, &mut line, &mut character);
                positions[index] = Position::new(line as u32, character);
                target = targets.next();
            }
            if target.is_none() {
                return;
            }
            advance(bytes.len(), &mut line, &mut character);
            byte = chunk_end;
            continue;
        }
        for &value in bytes {
            if pending_cr {
                pending_cr = false;
                if value != b'\n' {
                    line += 1;
                    character = 0;
                }
            }
            // Offsets at this byte, or inside the character starting here, are its position.
            let width = utf8_width(value);
            while let Some((index, offset)) = target {
                if offset >= byte + width {
                    break;
                }
                positions[index] = Position::new(line as u32, character);
                target = targets.next();
            }
            if target.is_none() {
                return;
            }
            match value {
                b'\n' => {
                    line += 1;
                    character = 0;
                }
                b'\r' => {
                    character += 1;
                    pending_cr = true;
                }
                _ if width > 0 => {
                    character += match encoding {
                        PositionEncoding::Utf8 => width as u32,
                        PositionEncoding::Utf16 if width == 4 => 2,
                        _ => 1,
                    };
                }
                _ => {}
            }
            byte += 1;
        }
    }
    if pending_cr {
        line += 1;
        character = 0;
    }
    // Offsets at the end of the text.
    while let Some((index, _)) = target {
        positions[index] = Position::new(line as u32, character);
        target = targets.next();
    }
}

/// The length of the UTF-8 sequence a byte starts; 0 for a continuation byte.
fn utf8_width(byte: u8) -> usize {
    match byte {
        0x00..=0x7f => 1,
        0x80..=0xbf => 0,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// One line's text and where it lies, for [`offsets_to_positions`].
struct LineText {
    number: usize,
    start: usize,
    /// Start of the next line; `usize::MAX` on the last line, which also owns the end offset.
    next_start: usize,
    text: String,
}

impl LineText {
    fn at(rope: &Rope, offset: usize) -> LineText {
        let number = rope.byte_to_line(offset);
        let start = rope.line_to_byte(number);
        let next_start = if number + 1 < rope.len_lines() {
            rope.line_to_byte(number + 1)
        } else {
            usize::MAX
        };
        LineText {
            number,
            start,
            next_start,
            text: rope.line(number).to_string(),
        }
    }

    fn contains(&self, offset: usize) -> bool {
        self.start <= offset && offset < self.next_start
    }

    fn position(&self, offset: usize, encoding: PositionEncoding) -> Position {
        let within = floor_char_boundary(&self.text, offset - self.start);
        let character = encoding.width(&self.text[..within]);
        Position::new(clamp_u32(self.number), character)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both strategies of `offsets_to_positions` agree with the one-offset conversion, on texts
    /// with every kind of line break and multi-byte characters, across rope chunks.
    #[test]
    fn batch_strategies_agree_with_single_conversions() {
        const PIECES: &[&str] = &["a", "é", "😀", "\n", "\r\n", "\r", "xyz", "𝕏", "  "];
        let mut state = 11u64;
        let mut next = |bound: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % bound.max(1)
        };
        // Mostly ASCII without `\r`, as source text is: whole chunks take the fast path.
        const ASCII_PIECES: &[&str] = &["a", "\n", "xyz", "  ", "fn f() {}\n"];
        for round in 0..80 {
            let pieces = [0, 5, 300, 3000][round % 4];
            let text: String = (0..pieces)
                .map(|_| {
                    if round % 8 >= 4 && next(200) != 0 {
                        ASCII_PIECES[next(ASCII_PIECES.len())]
                    } else {
                        PIECES[next(PIECES.len())]
                    }
                })
                .collect();
            let rope = Rope::from_str(&text);
            let offsets: Vec<usize> = (0..next(60)).map(|_| next(text.len() + 3)).collect();
            let mut order: Vec<usize> = (0..offsets.len()).collect();
            order.sort_unstable_by_key(|&index| offsets[index]);
            for encoding in [
                PositionEncoding::Utf8,
                PositionEncoding::Utf16,
                PositionEncoding::Utf32,
            ] {
                let expected: Vec<Position> = offsets
                    .iter()
                    .map(|&offset| offset_to_position(&rope, offset, encoding))
                    .collect();
                let mut scanned = vec![Position::default(); offsets.len()];
                let mut by_line = vec![Position::default(); offsets.len()];
                if !offsets.is_empty() {
                    scan_positions(&rope, &offsets, &order, encoding, &mut scanned);
                    line_positions(&rope, &offsets, &order, encoding, &mut by_line);
                }
                assert_eq!(
                    scanned, expected,
                    "scan, {encoding:?}, {text:?} at {offsets:?}"
                );
                assert_eq!(by_line, expected, "by line, {encoding:?}, {text:?}");
                assert_eq!(offsets_to_positions(&rope, &offsets, encoding), expected);
            }
        }
    }

    /// Positions computed without a rope (a file read from disk, a stored position) agree with
    /// the document's conversion at every byte of a text with every kind of line break and
    /// characters of every UTF-8 length, and past its end.
    #[test]
    fn columns_without_a_document_agree_with_the_document() {
        let text = "fn a() {}\r\n  // Ñandú 🎉 e\u{301}\u{200D}中 x\rlone\r\n\n𝕏y\r";
        let rope = Rope::from_str(text);
        for offset in 0..=text.len() + 2 {
            let stored = StoredPosition::of_offset(&rope, offset);
            for encoding in [
                PositionEncoding::Utf8,
                PositionEncoding::Utf16,
                PositionEncoding::Utf32,
            ] {
                let expected = offset_to_position(&rope, offset, encoding);
                assert_eq!(
                    column_in_text(text, offset, encoding),
                    expected.character,
                    "{encoding:?} at {offset}"
                );
                assert_eq!(stored.line(), expected.line, "at {offset}");
                if let Some(character) = stored.character(encoding) {
                    assert_eq!(character, expected.character, "{encoding:?} at {offset}");
                }
            }
            // UTF-32 is unknown from the stored columns exactly when the line is not ASCII
            // up to the offset.
            let line_start = rope.line_to_byte(rope.byte_to_line(offset.min(text.len())));
            let before = &text[line_start..floor_char_boundary(text, offset.min(text.len()))];
            assert_eq!(
                stored.character(PositionEncoding::Utf32).is_some(),
                before.is_ascii(),
                "at {offset}"
            );
            let (line, utf8, utf16) = stored.stored_parts();
            assert_eq!(StoredPosition::from_stored_parts(line, utf8, utf16), stored);
        }
    }

    #[test]
    fn widths_count_code_units() {
        for (text, utf8, utf16, utf32) in [("abc", 3, 3, 3), ("é🎉", 6, 3, 2), ("", 0, 0, 0)] {
            assert_eq!(PositionEncoding::Utf8.width(text), utf8, "{text}");
            assert_eq!(PositionEncoding::Utf16.width(text), utf16, "{text}");
            assert_eq!(PositionEncoding::Utf32.width(text), utf32, "{text}");
        }
    }

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
