//! Ranges that follow a region of text through later edits.
//!
//! A job that rewrites a region keeps a [`TrackedRange`] and feeds it every change the document
//! goes through. Changes before the region shift it, changes after it leave it alone, and a
//! change that touches it is reported, so the job can tell the user typed inside its target.

use crate::document::AppliedChange;

/// A byte range in a document that moves with edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackedRange {
    pub start: usize,
    pub end: usize,
}

/// How a change related to a tracked range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeChange {
    /// The change was entirely before the range (an insertion exactly at its start counts as
    /// before); the range moved by the change's length difference.
    Before,
    /// The change was entirely after the range (an insertion exactly at its end counts as after).
    After,
    /// The change overlapped the range; the range now covers the changed text.
    Overlapped,
}

impl TrackedRange {
    pub fn new(range: std::ops::Range<usize>) -> TrackedRange {
        TrackedRange {
            start: range.start,
            end: range.end.max(range.start),
        }
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Moves the range through `change` and says how the change related to it.
    pub fn apply(&mut self, change: &AppliedChange) -> RangeChange {
        let shift = |offset: usize| offset + change.new_end_byte - change.old_end_byte;
        let unshift_end = |offset: usize| offset - (change.old_end_byte - change.new_end_byte);
        let map = |offset: usize| {
            if change.new_end_byte >= change.old_end_byte {
                shift(offset)
            } else {
                unshift_end(offset)
            }
        };
        if change.old_end_byte <= self.start
            && (change.start_byte < self.start || change.old_end_byte == change.start_byte)
        {
            self.start = map(self.start);
            self.end = map(self.end);
            RangeChange::Before
        } else if change.start_byte >= self.end {
            RangeChange::After
        } else {
            let start = self.start.min(change.start_byte);
            let end = if change.old_end_byte >= self.end {
                change.new_end_byte
            } else {
                map(self.end)
            };
            self.start = start;
            self.end = end.max(start);
            RangeChange::Overlapped
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Document, PositionEncoding, Range};

    fn edit(doc: &mut Document, start: usize, end: usize, text: &str) -> AppliedChange {
        let enc = PositionEncoding::Utf8;
        let range = doc.range(start..end, enc);
        let change = crate::ContentChange {
            range: Some(Range::new(range.start, range.end)),
            text: text.into(),
        };
        doc.apply_changes(doc.version() + 1, &[change], enc)
            .unwrap()[0]
    }

    #[test]
    fn follows_edits_around_it() {
        let mut doc = Document::new("0123456789", 1, "text");
        let mut tracked = TrackedRange::new(3..6);
        let c = edit(&mut doc, 0, 1, "ab");
        assert_eq!(tracked.apply(&c), RangeChange::Before);
        assert_eq!(doc.slice(tracked.range()), "345");
        let c = edit(&mut doc, 8, 8, "zz");
        assert_eq!(tracked.apply(&c), RangeChange::After);
        assert_eq!(doc.slice(tracked.range()), "345");
        let c = edit(&mut doc, 4, 4, "");
        assert_eq!(tracked.apply(&c), RangeChange::Before);
        let c = edit(&mut doc, 0, 2, "");
        assert_eq!(tracked.apply(&c), RangeChange::Before);
        assert_eq!(doc.slice(tracked.range()), "345");
        let c = edit(&mut doc, 3, 3, "X");
        assert_eq!(tracked.apply(&c), RangeChange::Overlapped);
        assert_eq!(doc.slice(tracked.range()), "3X45");
        let c = edit(&mut doc, 2, 4, "");
        assert_eq!(tracked.apply(&c), RangeChange::Overlapped);
        assert_eq!(doc.slice(tracked.range()), "45");
    }
}
