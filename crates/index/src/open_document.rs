//! Tags of open documents, kept per buffer and updated incrementally on every edit.
//!
//! An edit only re-tags the region it touched, widened until the parse outside it cannot have
//! changed: to every old tag and old top-level node it overlaps (what the edit may have broken
//! up) and to every new top-level node it overlaps (what the edit may have created). The result
//! equals tagging the whole buffer again, which the tests check with random edits.

use std::ops::Range;
use std::sync::Arc;

use ropey::Rope;
use syntax::{SyntaxTree, Tag};
use text::AppliedChange;

use crate::file_symbols::FileSymbols;

/// An open buffer's tags. The rope is a cheap shared snapshot, kept so that the repo map can
/// show signature lines of unsaved text.
pub(crate) struct OpenDocument {
    pub(crate) rope: Rope,
    /// All tags of the buffer, sorted by name position.
    tags: Vec<Tag>,
    /// Byte ranges of the tree's top-level nodes after the last update.
    top_level: Vec<Range<usize>>,
    pub(crate) symbols: Arc<FileSymbols>,
}

impl OpenDocument {
    pub(crate) fn new(rope: &Rope, tree: &SyntaxTree) -> OpenDocument {
        let tags = tree.tags(rope);
        let symbols = Arc::new(FileSymbols::from_tags(tree.language(), &tags));
        OpenDocument { rope: rope.clone(), tags, top_level: top_level_ranges(tree), symbols }
    }

    #[cfg(test)]
    pub(crate) fn tags(&self) -> &[Tag] {
        &self.tags
    }

    /// Brings the tags up to date with `rope`, which is the old text with `changes` applied in
    /// order, and `tree`, already reparsed.
    pub(crate) fn update(&mut self, rope: &Rope, tree: &SyntaxTree, changes: &[AppliedChange]) {
        let Some(mut region) = self.shift_through(changes) else {
            return;
        };
        let new_top_level = top_level_ranges(tree);
        let fresh = loop {
            loop {
                let before = region.clone();
                widen(&mut region, self.tags.iter().map(|tag| &tag.range));
                widen(&mut region, self.top_level.iter());
                widen(&mut region, new_top_level.iter());
                if region == before {
                    break;
                }
            }
            let fresh = tree.tags_in(rope, region.clone());
            let outside = fresh
                .iter()
                .filter(|tag| tag.range.start < region.start || tag.range.end > region.end)
                .fold(region.clone(), |acc, tag| acc.start.min(tag.range.start)..acc.end.max(tag.range.end));
            if outside == region {
                break fresh;
            }
            region = outside;
        };
        self.tags.retain(|tag| !overlaps(&tag.range, &region) && !region.contains(&tag.name_range.start));
        self.tags.extend(fresh);
        self.tags.sort_by_key(|tag| (tag.name_range.start, tag.name_range.end));
        self.top_level = new_top_level;
        self.rope = rope.clone();
        self.symbols = Arc::new(FileSymbols::from_tags(tree.language(), &self.tags));
    }

    /// Moves tags and top-level ranges through each change in order, dropping those the change
    /// touches, and returns the touched region in the coordinates of the final text.
    fn shift_through(&mut self, changes: &[AppliedChange]) -> Option<Range<usize>> {
        let mut region: Option<Range<usize>> = None;
        for change in changes {
            let mut touched = change.start_byte..change.new_end_byte;
            if let Some(previous) = &region {
                touched.start = touched.start.min(map_offset(previous.start, change));
                touched.end = touched.end.max(map_offset(previous.end, change));
            }
            let line_delta = change.new_end_point.row as i64 - change.old_end_point.row as i64;
            self.tags.retain_mut(|tag| {
                if touches(&tag.range, change) || touches(&tag.name_range, change) {
                    touched.start = touched.start.min(tag.range.start);
                    touched.end = touched.end.max(map_offset(tag.range.end, change));
                    return false;
                }
                // Not touched, so the tag lies wholly before or wholly after the replaced text.
                if tag.range.start > change.old_end_byte {
                    tag.range = map_offset(tag.range.start, change)..map_offset(tag.range.end, change);
                    tag.name_range =
                        map_offset(tag.name_range.start, change)..map_offset(tag.name_range.end, change);
                    tag.line = (i64::from(tag.line) + line_delta).max(0) as u32;
                }
                true
            });
            self.top_level.retain_mut(|range| {
                if touches(range, change) {
                    touched.start = touched.start.min(range.start);
                    touched.end = touched.end.max(map_offset(range.end, change));
                    return false;
                }
                *range = map_offset(range.start, change)..map_offset(range.end, change);
                true
            });
            region = Some(touched);
        }
        region
    }
}

/// Where `offset` (before `change`) ends up after it. Offsets inside the replaced text move to
/// the end of the new text.
fn map_offset(offset: usize, change: &AppliedChange) -> usize {
    if offset <= change.start_byte {
        offset
    } else if offset >= change.old_end_byte {
        offset - change.old_end_byte + change.new_end_byte
    } else {
        change.new_end_byte
    }
}

/// Whether a range (before `change`) overlaps or merely touches the replaced text: typing right
/// after an identifier changes that identifier.
fn touches(range: &Range<usize>, change: &AppliedChange) -> bool {
    range.start <= change.old_end_byte && range.end >= change.start_byte
}

/// Overlap where an empty `region` counts as the point it sits on.
fn overlaps(range: &Range<usize>, region: &Range<usize>) -> bool {
    range.start < region.end.max(region.start + 1) && region.start < range.end
        || (range.start == region.start && range.is_empty())
}

fn widen<'a>(region: &mut Range<usize>, ranges: impl Iterator<Item = &'a Range<usize>>) {
    for range in ranges {
        if overlaps(range, region) {
            region.start = region.start.min(range.start);
            region.end = region.end.max(range.end);
        }
    }
}

fn top_level_ranges(tree: &SyntaxTree) -> Vec<Range<usize>> {
    let root = tree.tree().root_node();
    let mut cursor = root.walk();
    root.children(&mut cursor).map(|node| node.byte_range()).collect()
}
