//! Aligning a partial rewrite with the original region.
//!
//! While the model streams, the buffer shows the new text so far followed by the part of the
//! original region the model has not rewritten yet, so the edit visibly grows in place instead of
//! the region vanishing and reappearing. Alignment is by lines: each completed line of the
//! reply consumes one original line, or jumps forward to a nearby original line with the same
//! content (the model kept a line and dropped the ones before it). The last, incomplete line of
//! the reply stands in for the original line it is rewriting.

/// How far ahead a completed reply line may match an original line.
const LOOKAHEAD_LINES: usize = 8;

/// Stateful aligner for one streamed rewrite.
#[derive(Debug, Clone)]
pub struct Aligner {
    original: String,
    /// Byte offset of the start of each original line, plus the end of the text.
    line_starts: Vec<usize>,
    /// Reply lines already aligned.
    aligned_lines: usize,
    /// Index of the first original line not yet consumed by the reply.
    cursor: usize,
}

impl Aligner {
    pub fn new(original: &str) -> Aligner {
        let mut line_starts = vec![0];
        line_starts.extend(original.match_indices('\n').map(|(i, _)| i + 1));
        if *line_starts.last().unwrap_or(&0) != original.len() {
            line_starts.push(original.len());
        }
        Aligner {
            original: original.to_string(),
            line_starts,
            aligned_lines: 0,
            cursor: 0,
        }
    }

    fn line_count(&self) -> usize {
        self.line_starts.len() - 1
    }

    fn original_line(&self, index: usize) -> &str {
        &self.original[self.line_starts[index]..self.line_starts[index + 1]]
    }

    /// The text the region should show for a partial reply. `partial` must only grow between
    /// calls (it is the visible reply so far).
    pub fn preview(&mut self, partial: &str) -> String {
        let complete_end = partial.rfind('\n').map_or(0, |i| i + 1);
        for line in partial[..complete_end]
            .split_inclusive('\n')
            .skip(self.aligned_lines)
        {
            self.align_line(line);
            self.aligned_lines += 1;
        }
        let mut shown = String::with_capacity(partial.len() + self.original.len());
        shown.push_str(partial);
        let lines = self.line_count();
        if complete_end == partial.len() {
            if self.cursor < lines {
                shown.push_str(&self.original[self.line_starts[self.cursor]..]);
            }
        } else if self.cursor < lines && self.original_line(self.cursor).ends_with('\n') {
            shown.push('\n');
            shown.push_str(&self.original[self.line_starts[self.cursor + 1]..]);
        }
        shown
    }

    fn align_line(&mut self, line: &str) {
        let lines = self.line_count();
        let wanted = line.trim();
        if !wanted.is_empty() {
            let window_end = (self.cursor + LOOKAHEAD_LINES).min(lines);
            if let Some(found) =
                (self.cursor..window_end).find(|&i| self.original_line(i).trim() == wanted)
            {
                self.cursor = found + 1;
                return;
            }
        }
        self.cursor = (self.cursor + 1).min(lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_reply_is_followed_by_the_rest_of_the_original() {
        let mut aligner = Aligner::new("a\nb\nc\n");
        assert_eq!(aligner.preview(""), "a\nb\nc\n");
        assert_eq!(aligner.preview("A"), "A\nb\nc\n");
        assert_eq!(aligner.preview("A\n"), "A\nb\nc\n");
        assert_eq!(aligner.preview("A\nB\n"), "A\nB\nc\n");
        assert_eq!(aligner.preview("A\nB\nC\nD"), "A\nB\nC\nD");
    }

    #[test]
    fn kept_lines_realign_the_cursor() {
        let mut aligner = Aligner::new("x\ny\nkeep\nz\n");
        // The model dropped x and y and kept "keep".
        assert_eq!(aligner.preview("keep\n"), "keep\nz\n");
    }

    /// A multi-byte region rewritten by a multi-byte reply that arrives one character at a
    /// time: every preview starts with the reply so far, and the last one is the reply.
    #[test]
    fn multi_byte_reply_at_every_character() {
        let original =
            "    // Ñandú es un ave\r\n    let año = \"🎉\";\n    e\u{301}\u{200D}中();\n";
        let reply = "    // Ñandú 🎉\r\n    let año = \"👨\u{200D}👩\";\n    e\u{301}中();\n";
        let mut aligner = Aligner::new(original);
        let cuts = reply.char_indices().map(|(at, _)| at).chain([reply.len()]);
        let mut last = String::new();
        for cut in cuts {
            last = aligner.preview(&reply[..cut]);
            assert!(last.starts_with(&reply[..cut]), "cut at {cut}: {last:?}");
        }
        assert_eq!(last, reply);
    }

    #[test]
    fn region_without_final_newline() {
        let mut aligner = Aligner::new("foo(1)");
        assert_eq!(aligner.preview("bar("), "bar(");
        assert_eq!(Aligner::new("foo(1)").preview(""), "foo(1)");
    }
}
