//! Which parts of a reparsed text need what is derived from the tree (outline entries, tags)
//! computed again, and which parts only moved.
//!
//! Both the outline cache (`outline`) and the index's open-document tags follow a tree
//! across incremental reparses by keeping what lies outside the edit and querying again only
//! inside "dirty regions". This module is the one answer to where those regions are. A region
//! is a run of whole top-level *slots*: a top-level node extended to where the next one starts
//! (the first from the start of the text, the last to its end), so the slots tile the text and
//! an edit in the gap after a node, or after the end of a root that error recovery cut short
//! (an unterminated block comment), still lands in one.
//!
//! Everything outside the regions lies in slots whose node has the same kind, extent (moved by
//! the edit), error state and structure as before, and whose text no change touched; anything
//! computed from such a node only moves. The structure is compared without walking what the
//! reparse reused: tree-sitter shares reused subtrees between the old tree and the new, so a
//! node with the same identity is the same subtree, and only nodes built anew (near the edit,
//! and the first and last ones, which a reparse rebuilds) are compared node by node. A slot is
//! dirty when:
//! - a change touched it (an insertion at its edge counts: typing after a name changes it),
//! - its node differs from every node of the old tree, moved (a node split, merged, whose error
//!   state changed, or whose structure error recovery or an indentation-based grammar changed
//!   far from the edit), or an old node that is gone lay in it. This finds what
//!   `Tree::changed_ranges` reports, at the cost of one pass over the top-level nodes and a
//!   walk of the few rebuilt ones instead of a walk of both trees,
//! - or the root's kind changed (error recovery turned the whole file into an `ERROR` root, or
//!   back): queries anchored on the root then change meaning everywhere, so the whole text is
//!   one region. A root that stays an error needs no such rule: its children are slots like any
//!   others, compared like any others (the random-edit tests go through hundreds of such
//!   updates).
//!
//! The regions are computed lazily, at most once per update, and shared by every clone of the
//! tree: nobody pays for them unless a consumer asks, and two consumers pay once.

use std::ops::Range;
use std::sync::OnceLock;

use text::AppliedChange;
use tree_sitter::{Node, Tree};

/// What one `SyntaxTree::update` did, kept with the new tree until the next update so that
/// consumers can ask for the dirty regions after the fact.
#[derive(Debug)]
pub(crate) struct LastUpdate {
    /// The generation of the tree this update started from.
    pub(crate) previous_generation: u64,
    /// The old tree with the changes applied through `Tree::edit`: its nodes are in the new
    /// text's coordinates, which is what the slot comparison needs.
    edited_previous: Tree,
    /// Every change's replaced range, in the new text.
    edited: Vec<Range<usize>>,
    text_length: usize,
    regions: OnceLock<Vec<Range<usize>>>,
}

impl LastUpdate {
    pub(crate) fn new(
        previous_generation: u64,
        edited_previous: Tree,
        changes: &[AppliedChange],
        text_length: usize,
    ) -> LastUpdate {
        LastUpdate {
            previous_generation,
            edited_previous,
            edited: edited_ranges(changes),
            text_length,
            regions: OnceLock::new(),
        }
    }

    /// The dirty regions of `new`, the tree this update produced (see the module
    /// documentation): sorted, disjoint, each a run of whole top-level slots.
    pub(crate) fn regions(&self, new: &Tree) -> &[Range<usize>] {
        self.regions.get_or_init(|| {
            dirty_regions(&self.edited_previous, new, &self.edited, self.text_length)
        })
    }
}

/// The ranges each change replaced, in the text after all of them: earlier ranges are moved
/// through later changes, and a range a later change cuts into still covers everything it
/// covered.
fn edited_ranges(changes: &[AppliedChange]) -> Vec<Range<usize>> {
    let mut ranges: Vec<Range<usize>> = Vec::with_capacity(changes.len());
    for change in changes {
        for range in &mut ranges {
            let start = if range.start > change.start_byte && range.start < change.old_end_byte {
                change.start_byte
            } else {
                change.map_offset(range.start)
            };
            *range = start..change.map_offset(range.end).max(start);
        }
        ranges.push(change.start_byte..change.new_end_byte);
    }
    ranges
}

/// A top-level node as dirtiness cares: its slot and the node itself.
#[derive(Clone, Debug)]
struct Slot<'tree> {
    range: Range<usize>,
    node: Node<'tree>,
}

impl Slot<'_> {
    /// Whether two slots (of the old tree after `Tree::edit`, and of the new tree) hold the
    /// same thing: the same extent, and a node that is the same subtree (a reparse shares the
    /// subtrees it reuses) or one built anew with exactly the same structure.
    fn same_as(&self, other: &Slot) -> bool {
        self.range == other.range
            && self.node.kind_id() == other.node.kind_id()
            && self.node.has_error() == other.node.has_error()
            && (self.node.id() == other.node.id() || same_structure(self.node, other.node))
    }
}

/// Whether two subtrees have the same nodes (kind, extent, field, missing and error state) in
/// the same shape; shared subtrees are not walked. For nodes whose text no change touched,
/// this means every query finds the same in both.
fn same_structure(old: Node, new: Node) -> bool {
    let (mut old_cursor, mut new_cursor) = (old.walk(), new.walk());
    loop {
        let (old_node, new_node) = (old_cursor.node(), new_cursor.node());
        let alike = old_node.kind_id() == new_node.kind_id()
            && old_node.byte_range() == new_node.byte_range()
            && old_node.is_missing() == new_node.is_missing()
            && old_node.has_error() == new_node.has_error()
            && old_cursor.field_id() == new_cursor.field_id();
        if !alike {
            return false;
        }
        if old_node.id() != new_node.id() {
            let (old_down, new_down) =
                (old_cursor.goto_first_child(), new_cursor.goto_first_child());
            if old_down != new_down {
                return false;
            }
            if old_down {
                continue;
            }
        }
        // On to the next sibling, or up; the cursors never leave the nodes they started on.
        loop {
            let (old_next, new_next) = (
                old_cursor.goto_next_sibling(),
                new_cursor.goto_next_sibling(),
            );
            if old_next != new_next {
                return false;
            }
            if old_next {
                break;
            }
            let (old_up, new_up) = (old_cursor.goto_parent(), new_cursor.goto_parent());
            if old_up != new_up {
                return false;
            }
            if !old_up {
                return true;
            }
        }
    }
}

/// The tree's top-level slots, in order, tiling `0..text_length`.
fn slots(tree: &Tree, text_length: usize) -> Vec<Slot<'_>> {
    let root = tree.root_node();
    let mut cursor = root.walk();
    let mut slots: Vec<Slot> = Vec::with_capacity(root.child_count().max(1));
    for node in root.children(&mut cursor) {
        let start = node.start_byte().min(text_length);
        if let Some(previous) = slots.last_mut() {
            previous.range.end = start.max(previous.range.start);
        }
        slots.push(Slot {
            range: if slots.is_empty() { 0 } else { start }..text_length,
            node,
        });
    }
    if slots.is_empty() {
        slots.push(Slot {
            range: 0..text_length,
            node: root,
        });
    }
    slots
}

/// See the module documentation. `edited_previous` is the old tree after `Tree::edit`, `new`
/// the reparsed tree, `edited` the changed ranges in the new text.
pub(crate) fn dirty_regions(
    edited_previous: &Tree,
    new: &Tree,
    edited: &[Range<usize>],
    text_length: usize,
) -> Vec<Range<usize>> {
    let (old_root, new_root) = (edited_previous.root_node(), new.root_node());
    if new_root.kind_id() != old_root.kind_id() {
        // One region holding the whole text, not the text's offsets.
        return std::iter::once(0..text_length).collect();
    }
    let new_slots = slots(new, text_length);
    let old_slots = slots(edited_previous, text_length);
    let mut dirty = vec![false; new_slots.len()];

    // Edits dirty every slot they touch, edges included. Structural changes away from them
    // (error recovery, indentation) need no `Tree::changed_ranges`: they live in nodes the
    // reparse built anew, whose identity differs from every old node's (below).
    for region in edited.iter().cloned() {
        let first = new_slots.partition_point(|slot| slot.range.end < region.start);
        for (index, slot) in new_slots.iter().enumerate().skip(first) {
            if slot.range.start > region.end {
                break;
            }
            dirty[index] = true;
        }
    }

    // Slots present on one side only, found by walking both lists (sorted by start) in step.
    // A new one is dirty itself; an old one that is gone dirties the new slots it overlaps.
    let (mut old_index, mut new_index) = (0, 0);
    while old_index < old_slots.len() || new_index < new_slots.len() {
        match (old_slots.get(old_index), new_slots.get(new_index)) {
            (Some(old), Some(new)) if old.same_as(new) => {
                old_index += 1;
                new_index += 1;
            }
            (Some(old), new) if new.is_none_or(|new| old.range.start <= new.range.start) => {
                mark_overlapping(&new_slots, &mut dirty, &old.range);
                old_index += 1;
            }
            _ => {
                dirty[new_index] = true;
                new_index += 1;
            }
        }
    }

    // Runs of dirty slots, as regions.
    let mut regions: Vec<Range<usize>> = Vec::new();
    for (slot, _) in new_slots.iter().zip(&dirty).filter(|(_, dirty)| **dirty) {
        match regions.last_mut() {
            Some(last) if last.end >= slot.range.start => last.end = slot.range.end,
            _ => regions.push(slot.range.clone()),
        }
    }
    regions
}

/// Marks the slots that overlap `range` (an empty range: the slot holding its position).
fn mark_overlapping(slots: &[Slot<'_>], dirty: &mut [bool], range: &Range<usize>) {
    let first = slots.partition_point(|slot| slot.range.end <= range.start);
    let first = first.min(slots.len().saturating_sub(1));
    for (index, slot) in slots.iter().enumerate().skip(first) {
        if slot.range.start >= range.end.max(range.start + 1) {
            break;
        }
        dirty[index] = true;
    }
}
