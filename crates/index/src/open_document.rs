//! Tags of open documents, kept per buffer and updated incrementally on every edit.
//!
//! An edit only re-tags the span of the tree's dirty regions (`SyntaxTree::dirty_regions_since`,
//! the same regions the outline cache uses: whole top-level nodes the edit touched or whose
//! structure changed), widened to every old tag the edit touched or the span overlaps (what the
//! edit may have broken up) and to every fresh tag that reaches outside it. The result equals
//! tagging the whole buffer again, which the tests check with random edits.

use std::ops::Range;
use std::sync::{Arc, Mutex};

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
    /// The generation of the tree the tags were taken from, to ask the next tree what changed.
    generation: u64,
    language: syntax::Language,
    /// The compact symbols, rebuilt from `tags` only when a query asks after an edit: typing
    /// then costs just the re-tag, and a burst of edits builds them once.
    symbols: Mutex<Option<Arc<FileSymbols>>>,
}

impl OpenDocument {
    pub(crate) fn new(rope: &Rope, tree: &SyntaxTree) -> OpenDocument {
        let tags = tree.tags(rope);
        OpenDocument {
            rope: rope.clone(),
            tags,
            generation: tree.generation(),
            language: tree.language(),
            symbols: Mutex::new(None),
        }
    }

    /// The buffer's compact symbols, built on first use after an edit.
    pub(crate) fn symbols(&self) -> Arc<FileSymbols> {
        let mut symbols = self
            .symbols
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        symbols
            .get_or_insert_with(|| {
                Arc::new(FileSymbols::from_tags(
                    self.language,
                    &self.tags,
                    &self.rope,
                ))
            })
            .clone()
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
        match tree.dirty_regions_since(self.generation) {
            Some(regions) => {
                if let (Some(first), Some(last)) = (regions.first(), regions.last()) {
                    region.start = region.start.min(first.start);
                    region.end = region.end.max(last.end);
                }
            }
            // The tree does not follow the one the tags came from (reparsed from scratch, or
            // an update this index missed): nothing is known to be unchanged.
            None => region = 0..rope.len_bytes(),
        }
        self.generation = tree.generation();
        let fresh = loop {
            loop {
                let before = region.clone();
                widen(&mut region, self.tags.iter().map(|tag| &tag.range));
                if region == before {
                    break;
                }
            }
            let fresh = tree.tags_in(rope, region.clone());
            let outside = fresh
                .iter()
                .filter(|tag| tag.range.start < region.start || tag.range.end > region.end)
                .fold(region.clone(), |acc, tag| {
                    acc.start.min(tag.range.start)..acc.end.max(tag.range.end)
                });
            if outside == region {
                break fresh;
            }
            region = outside;
        };
        self.tags.retain(|tag| {
            !overlaps(&tag.range, &region) && !region.contains(&tag.name_range.start)
        });
        // Kept tags name something before or after the region and every fresh one names
        // something inside it, so splicing keeps the list sorted without a full sort.
        let mut fresh = fresh;
        fresh.sort_by_key(|tag| (tag.name_range.start, tag.name_range.end));
        let insert_at = self
            .tags
            .partition_point(|tag| tag.name_range.start < region.start);
        self.tags.splice(insert_at..insert_at, fresh);
        self.rope = rope.clone();
        self.language = tree.language();
        *self
            .symbols
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Moves tags through each change in order, dropping those the change touches, and returns
    /// the touched region in the coordinates of the final text.
    fn shift_through(&mut self, changes: &[AppliedChange]) -> Option<Range<usize>> {
        let mut region: Option<Range<usize>> = None;
        for change in changes {
            let mut touched = change.start_byte..change.new_end_byte;
            if let Some(previous) = &region {
                touched.start = touched.start.min(change.map_offset(previous.start));
                touched.end = touched.end.max(change.map_offset(previous.end));
            }
            let line_delta = change.new_end_point.row as i64 - change.old_end_point.row as i64;
            self.tags.retain_mut(|tag| {
                if touches(&tag.range, change) || touches(&tag.name_range, change) {
                    touched.start = touched.start.min(tag.range.start);
                    touched.end = touched.end.max(change.map_offset(tag.range.end));
                    return false;
                }
                // Not touched, so the tag lies wholly before or wholly after the replaced text.
                if tag.range.start > change.old_end_byte {
                    tag.range =
                        change.map_offset(tag.range.start)..change.map_offset(tag.range.end);
                    tag.name_range = change.map_offset(tag.name_range.start)
                        ..change.map_offset(tag.name_range.end);
                    tag.line = (i64::from(tag.line) + line_delta).max(0) as u32;
                }
                true
            });
            region = Some(touched);
        }
        region
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
