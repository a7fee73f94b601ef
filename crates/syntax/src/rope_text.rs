//! Reading rope text without copying it: chunk iterators for tree-sitter's parser callback and
//! query predicates (raw bytes, where a cut inside a character is harmless), and node text as a
//! string, cut through `text::boundary` because tree-sitter's byte ranges are not promised to
//! fall on character boundaries (error recovery can end a node anywhere).

use ropey::Rope;

/// The bytes of `rope` in `range`, as a sequence of borrowed chunk pieces.
pub(crate) struct ByteChunks<'rope> {
    chunks: ropey::iter::Chunks<'rope>,
    /// Absolute byte offset of the next chunk's first byte.
    chunk_start: usize,
    range: std::ops::Range<usize>,
}

impl<'rope> ByteChunks<'rope> {
    pub(crate) fn new(rope: &'rope Rope, range: std::ops::Range<usize>) -> ByteChunks<'rope> {
        let end = range.end.min(rope.len_bytes());
        let start = range.start.min(end);
        let (chunks, chunk_start, _, _) = rope.chunks_at_byte(start);
        ByteChunks {
            chunks,
            chunk_start,
            range: start..end,
        }
    }
}

impl<'rope> Iterator for ByteChunks<'rope> {
    type Item = &'rope [u8];

    fn next(&mut self) -> Option<&'rope [u8]> {
        if self.chunk_start >= self.range.end {
            return None;
        }
        let chunk = self.chunks.next()?.as_bytes();
        let chunk_start = self.chunk_start;
        self.chunk_start += chunk.len();
        let from = self
            .range
            .start
            .saturating_sub(chunk_start)
            .min(chunk.len());
        let to = (self.range.end - chunk_start).min(chunk.len());
        Some(&chunk[from..to])
    }
}

/// Feeds node text to tree-sitter query predicates (`#eq?`, `#match?`) straight from the rope.
#[derive(Clone, Copy)]
pub(crate) struct RopeProvider<'rope>(pub(crate) &'rope Rope);

impl<'rope> tree_sitter::TextProvider<&'rope [u8]> for RopeProvider<'rope> {
    type I = ByteChunks<'rope>;

    fn text(&mut self, node: tree_sitter::Node) -> ByteChunks<'rope> {
        ByteChunks::new(self.0, node.byte_range())
    }
}

/// The text in `range` as an owned string, both ends moved down to character boundaries.
pub(crate) fn text_of(rope: &Rope, range: std::ops::Range<usize>) -> String {
    text::boundary::rope_slice_within(rope, range).to_string()
}

/// The rope's text from `offset` to the end of its chunk, for the parser's read callback.
pub(crate) fn chunk_from(rope: &Rope, offset: usize) -> &[u8] {
    if offset >= rope.len_bytes() {
        return &[];
    }
    let (chunk, chunk_start, _, _) = rope.chunk_at_byte(offset);
    &chunk.as_bytes()[offset - chunk_start..]
}

/// The byte at `offset`, if any.
pub(crate) fn byte_at(rope: &Rope, offset: usize) -> Option<u8> {
    (offset < rope.len_bytes()).then(|| rope.byte(offset))
}
