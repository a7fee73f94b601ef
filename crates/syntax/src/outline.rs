//! The document outline, kept per tree version and carried across edits.
//!
//! Running the outline query over a whole file costs milliseconds on a few thousand lines, and
//! editors ask for document symbols after nearly every keystroke. So the first request computes
//! the outline's entries (flat, in byte offsets), and every later reparse derives the new
//! entries from the old ones: entries outside the tree's dirty regions (`dirty_regions`, shared
//! with the index) only move by the edit's length, and the query runs again only inside them.
//! Nesting is rebuilt from the flat entries on each request, which is linear.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use ropey::Rope;
use text::AppliedChange;
use tree_sitter::Tree;

use crate::Language;
use crate::symbols::{self, OutlineEntry, OutlineItem};

/// Outline nesting deeper than this is flattened into the deepest allowed level, so hostile
/// input cannot make recursive consumers (including `Drop` of nested vectors) overflow the stack.
const MAX_OUTLINE_DEPTH: usize = 64;

/// The outline entries of one tree version, computed on first use. Clones of a `SyntaxTree`
/// share it, so a snapshot that computes the outline fills the cache for the document too.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutlineCache(Arc<OnceLock<Vec<OutlineEntry>>>);

impl OutlineCache {
    pub(crate) fn entries(&self, language: Language, tree: &Tree, rope: &Rope) -> &[OutlineEntry] {
        self.0
            .get_or_init(|| symbols::outline_entries(language, tree, rope, 0..usize::MAX))
    }

    /// The cache for the tree after `changes`: derived from this one if it was computed, empty
    /// (computed on demand) if not, so nobody pays for an outline nobody asked for.
    ///
    /// `new` is the reparsed tree and `regions` gives its dirty regions (see
    /// `dirty_regions`), asked for only when there is an outline to carry over.
    ///
    /// The old entries are moved, not copied, when nothing else shares this cache (no snapshot
    /// of the old tree is alive), which is the usual case on a keystroke.
    pub(crate) fn after_edit<'a>(
        &mut self,
        language: Language,
        new: &Tree,
        rope: &Rope,
        changes: &[AppliedChange],
        regions: impl FnOnce() -> &'a [Range<usize>],
    ) -> OutlineCache {
        let old = match Arc::get_mut(&mut self.0) {
            Some(unshared) => unshared.take(),
            None => self.0.get().cloned(),
        };
        let Some(old) = old else {
            return OutlineCache::default();
        };
        let regions = regions();
        let mut entries: Vec<OutlineEntry> = old
            .into_iter()
            .filter_map(|mut entry| {
                for change in changes {
                    entry.range = shift_range(&entry.range, change);
                    entry.selection_range = shift_range(&entry.selection_range, change);
                }
                let dirty = regions
                    .iter()
                    .any(|region| region.contains(&entry.selection_range.start));
                (!dirty).then_some(entry)
            })
            .collect();
        for region in regions {
            entries.extend(symbols::outline_entries(
                language,
                new,
                rope,
                region.clone(),
            ));
        }
        entries.sort_by_key(|entry| (entry.selection_range.start, entry.selection_range.end));
        let cache = OutlineCache::default();
        let _ = cache.0.set(entries);
        cache
    }
}

/// A range of the text before `change`, in the text after it. Ranges that overlap the replaced
/// text only ever belong to entries that are recomputed.
fn shift_range(range: &Range<usize>, change: &AppliedChange) -> Range<usize> {
    let start = change.map_offset(range.start);
    start..change.map_offset(range.end).max(start)
}

/// Nests flat entries by range containment: parents before children, siblings in order.
pub(crate) fn nest(entries: &[OutlineEntry]) -> Vec<OutlineItem> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // Parents before children: by start, then the longest first.
    order.sort_by_key(|&index| {
        let range = &entries[index].range;
        (range.start, std::cmp::Reverse(range.end))
    });

    // Build the nesting with an explicit stack (no recursion), as a parent position per item.
    let mut parents: Vec<Option<usize>> = Vec::with_capacity(order.len());
    let mut stack: Vec<usize> = Vec::new();
    for (position, &index) in order.iter().enumerate() {
        let range = &entries[index].range;
        while let Some(&top) = stack.last() {
            let top_range = &entries[order[top]].range;
            if top_range.start <= range.start && range.end <= top_range.end {
                break;
            }
            stack.pop();
        }
        parents.push(stack.last().copied());
        if stack.len() < MAX_OUTLINE_DEPTH {
            stack.push(position);
        }
    }

    // Children always come after their parent, so building from the back finishes every
    // child before its parent needs it.
    let mut built: Vec<Option<OutlineItem>> = order
        .iter()
        .map(|&index| {
            let entry = &entries[index];
            Some(OutlineItem {
                name: entry.name.clone(),
                kind: entry.kind,
                range: entry.range.clone(),
                selection_range: entry.selection_range.clone(),
                children: Vec::new(),
            })
        })
        .collect();
    let mut roots = Vec::new();
    for position in (0..built.len()).rev() {
        let Some(item) = built[position].take() else {
            continue;
        };
        match parents[position] {
            Some(parent) => {
                if let Some(parent_item) = built[parent].as_mut() {
                    parent_item.children.push(item);
                }
            }
            None => roots.push(item),
        }
    }
    // Items were attached back to front.
    roots.reverse();
    let mut pending: Vec<&mut OutlineItem> = roots.iter_mut().collect();
    while let Some(item) = pending.pop() {
        item.children.reverse();
        pending.extend(item.children.iter_mut());
    }
    roots
}
