//! Tags of open documents, kept per buffer and updated incrementally on every edit.
//!
//! An edit only re-tags the region it touched, widened until the parse outside it cannot have
//! changed: to every old tag and old top-level node it overlaps (what the edit may have broken
//! up) and to every new top-level node it overlaps (what the edit may have created). The result
//! equals tagging the whole buffer again, which the tests check with random edits.

use std::collections::HashSet;
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
    /// The tree's top-level nodes after the last update (see [`top_level_nodes`]).
    top_level: Vec<TopLevelNode>,
    /// The root node's kind after the last update.
    root_kind: u16,
    /// The tree seen last (a cheap shared copy), for asking tree-sitter what an edit changed.
    tree: tree_sitter::Tree,
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
            top_level: top_level_nodes(tree, rope.len_bytes()),
            root_kind: tree.tree().root_node().kind_id(),
            tree: tree.tree().clone(),
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
        // When error recovery turns the whole file into an ERROR root (or back), queries that
        // anchor on the root (module-level constants, say) change meaning everywhere: tag it all.
        let root = tree.tree().root_node();
        if root.is_error() || root.kind_id() != self.root_kind {
            region = 0..rope.len_bytes();
        }
        self.root_kind = root.kind_id();
        // Tree-sitter knows exactly where the syntax changed between the old tree (moved through
        // the same edits) and the new one: error recovery and indentation can reach far from the
        // edit.
        let mut old_tree = self.tree.clone();
        for change in changes {
            old_tree.edit(&input_edit(change));
        }
        for changed in old_tree.changed_ranges(tree.tree()) {
            region.start = region.start.min(changed.start_byte);
            region.end = region.end.max(changed.end_byte);
        }
        self.tree = tree.tree().clone();
        let new_top_level = top_level_nodes(tree, rope.len_bytes());
        // Reparsing can restructure text far from the edit (error recovery, indentation-based
        // grammars): every top-level node that is not the same as before, moved by the edit,
        // is re-tagged too.
        let old_nodes: HashSet<&TopLevelNode> = self.top_level.iter().collect();
        let new_nodes: HashSet<&TopLevelNode> = new_top_level.iter().collect();
        let changed: Vec<Range<usize>> = new_top_level
            .iter()
            .filter(|node| !old_nodes.contains(node))
            .chain(
                self.top_level
                    .iter()
                    .filter(|node| !new_nodes.contains(node)),
            )
            .map(|node| node.range.clone())
            .collect();
        for range in &changed {
            region.start = region.start.min(range.start);
            region.end = region.end.max(range.end);
        }
        let fresh = loop {
            loop {
                let before = region.clone();
                widen(&mut region, self.tags.iter().map(|tag| &tag.range));
                widen(&mut region, self.top_level.iter().map(|node| &node.range));
                widen(&mut region, new_top_level.iter().map(|node| &node.range));
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
        self.top_level = new_top_level;
        self.rope = rope.clone();
        self.language = tree.language();
        *self
            .symbols
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Moves tags and top-level ranges through each change in order, dropping those the change
    /// touches, and returns the touched region in the coordinates of the final text.
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
            self.top_level.retain_mut(|node| {
                let range = &mut node.range;
                if touches(range, change) {
                    touched.start = touched.start.min(range.start);
                    touched.end = touched.end.max(change.map_offset(range.end));
                    return false;
                }
                *range = change.map_offset(range.start)..change.map_offset(range.end);
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

/// A top-level node as far as re-tagging cares: where it is, what it is, and whether it
/// contains a parse error.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TopLevelNode {
    range: Range<usize>,
    kind: u16,
    has_error: bool,
}

/// The tree's top-level nodes, each extended to where the next one starts (the first from the
/// start of the text, the last to its end). Covering the gaps matters: after error recovery the
/// root may not span the whole text (an unterminated block comment hides everything after it),
/// and an edit there must still widen to what it can affect.
fn top_level_nodes(tree: &SyntaxTree, text_length: usize) -> Vec<TopLevelNode> {
    let root = tree.tree().root_node();
    let mut cursor = root.walk();
    let children: Vec<_> = root.children(&mut cursor).collect();
    let mut nodes = Vec::with_capacity(children.len().max(1));
    for (index, node) in children.iter().enumerate() {
        let start = if index == 0 { 0 } else { node.start_byte() };
        let end = children
            .get(index + 1)
            .map_or(text_length, |next| next.start_byte())
            .max(start);
        nodes.push(TopLevelNode {
            range: start..end,
            kind: node.kind_id(),
            has_error: node.has_error(),
        });
    }
    if nodes.is_empty() {
        nodes.push(TopLevelNode {
            range: 0..text_length,
            kind: root.kind_id(),
            has_error: root.has_error(),
        });
    }
    nodes
}

fn input_edit(change: &AppliedChange) -> tree_sitter::InputEdit {
    let point = |point: text::Point| tree_sitter::Point {
        row: point.row,
        column: point.column,
    };
    tree_sitter::InputEdit {
        start_byte: change.start_byte,
        old_end_byte: change.old_end_byte,
        new_end_byte: change.new_end_byte,
        start_position: point(change.start_point),
        old_end_position: point(change.old_end_point),
        new_end_position: point(change.new_end_point),
    }
}
