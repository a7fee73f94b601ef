//! A parsed document: parsing from a rope without copying it, incremental reparsing after
//! edits, and the structural questions the server asks (what follows a marker, which comments
//! are in a range, what encloses a range).

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ropey::Rope;
use tree_sitter::{InputEdit, Node, ParseOptions, ParseState, Parser, Point, Tree};

use crate::Language;
use crate::dirty_regions::LastUpdate;
use crate::outline::{self, OutlineCache};
use crate::rope_text::{byte_at, chunk_from};
use crate::symbols::{self, OutlineItem, Scope, Tag};

/// A parsed document; keeps the tree for incremental reparsing, its outline once asked for,
/// and what its last update changed.
#[derive(Clone, Debug)]
pub struct SyntaxTree {
    language: Language,
    tree: Tree,
    outline: OutlineCache,
    /// Names this version of the tree among every tree of the process (see
    /// [`SyntaxTree::generation`]); clones share it.
    generation: u64,
    /// The update that produced this tree, for [`SyntaxTree::dirty_regions_since`]. `None`
    /// after a full parse or a failed reparse.
    last_update: Option<Arc<LastUpdate>>,
}

/// The source of [`SyntaxTree::generation`]s: unique in the process, so a tree parsed anew
/// (a reopened or rebuilt document) never passes for the one a consumer saw last.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    /// A parser allocates sizeable internal buffers; one per thread is reused for every parse.
    static PARSER: RefCell<Parser> = RefCell::new(Parser::new());
}

/// Parses `rope` (reusing `old_tree` where unchanged), reading it chunk by chunk.
fn parse_rope(language: Language, rope: &Rope, old_tree: Option<&Tree>) -> Option<Tree> {
    let started = Instant::now();
    let limit = parse_time_limit(rope.len_bytes());
    let parse = |parser: &mut Parser| {
        let mut out_of_time = |_: &ParseState| started.elapsed() > limit;
        parser.set_language(&language.grammar()).ok()?;
        let tree = parser.parse_with_options(
            &mut |offset: usize, _: Point| {
                let chunk = chunk_from(rope, offset);
                if language == Language::Bash && !chunk.is_ascii() {
                    Cow::Owned(ascii_for_bash_scanner(chunk))
                } else {
                    Cow::Borrowed(chunk)
                }
            },
            old_tree,
            Some(ParseOptions::new().progress_callback(&mut out_of_time)),
        );
        if tree.is_none() {
            // A parse given up would otherwise be resumed by the next one on this parser.
            parser.reset();
        }
        tree
    };
    PARSER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut parser) => parse(&mut parser),
        Err(_) => parse(&mut Parser::new()),
    })
}

/// How long parsing a text of `bytes` may take before it is given up (the caller then has no
/// tree: the index skips the file as one that could not be parsed).
///
/// Some inputs send tree-sitter's error recovery into a search that runs for minutes while its
/// memory grows without bound (found by `fuzz_file_symbols`: 336 bytes of TSX held a test for
/// over three minutes and 2.4 GB). Real files parse at megabytes per second, so a second plus
/// 10 µs per byte is generous for any file the index accepts and still bounds a hostile one.
fn parse_time_limit(bytes: usize) -> Duration {
    Duration::from_secs(1)
        + Duration::from_micros(10).saturating_mul(bytes.try_into().unwrap_or(u32::MAX))
}

/// `chunk` with every non-ASCII byte replaced by `_`, for the Bash grammar.
///
/// tree-sitter-bash's external scanner (0.25.1, the brace expansion at `brace_start`) passes the
/// lookahead code point to C's `isdigit`, which is undefined past 255: glibc indexes its table
/// with it, so `{` followed by a character such as U+F0000 reads far outside it and crashes the
/// whole process (found by `fuzz_tags`). Byte for byte, `_` keeps every offset and point the
/// tree reports, a word with non-ASCII letters stays a word, and names are read from the rope,
/// so they keep their real text.
fn ascii_for_bash_scanner(chunk: &[u8]) -> Vec<u8> {
    chunk
        .iter()
        .map(|&byte| if byte.is_ascii() { byte } else { b'_' })
        .collect()
}

fn to_point(point: text::Point) -> Point {
    Point {
        row: point.row,
        column: point.column,
    }
}

/// Whether a node is a comment in any of our grammars (`comment`, `line_comment`,
/// `block_comment`, ...).
fn is_comment(node: Node) -> bool {
    node.kind().contains("comment")
}

/// Nodes that decorate the item after them and belong with it (Rust attributes, decorators).
fn is_item_prefix(node: Node) -> bool {
    matches!(
        node.kind(),
        "attribute_item"
            | "inner_attribute_item"
            | "decorator"
            | "annotation"
            | "marker_annotation"
    )
}

/// Containers whose first child often starts where they start; the node after a marker is
/// the child, never the whole container.
fn is_container(node: Node) -> bool {
    let kind = node.kind();
    node.parent().is_none()
        || kind.ends_with("block")
        || kind.ends_with("body")
        || kind.ends_with("_list")
        || kind.ends_with("statements")
        || matches!(
            kind,
            "program" | "module" | "source_file" | "translation_unit" | "chunk" | "block"
        )
}

impl SyntaxTree {
    /// Parses the rope, reading its chunks directly (no copy of the whole text).
    pub fn parse(language: Language, rope: &Rope) -> Option<SyntaxTree> {
        let tree = parse_rope(language, rope, None)?;
        Some(SyntaxTree {
            language,
            tree,
            outline: OutlineCache::default(),
            generation: next_generation(),
            last_update: None,
        })
    }

    /// Parses a string.
    pub fn parse_str(language: Language, text: &str) -> Option<SyntaxTree> {
        SyntaxTree::parse(language, &Rope::from_str(text))
    }

    /// Incremental reparse: applies `changes` to the old tree in order (each is relative to the
    /// text after the previous one, as `text::Document::apply_changes` reports them), then
    /// reparses `rope`, the text after all of them. If reparsing fails the old tree is kept.
    /// An outline computed for the old tree is carried over (see `outline`).
    pub fn update(&mut self, rope: &Rope, changes: &[text::AppliedChange]) {
        if changes.is_empty() {
            return;
        }
        for change in changes {
            self.tree.edit(&InputEdit {
                start_byte: change.start_byte,
                old_end_byte: change.old_end_byte,
                new_end_byte: change.new_end_byte,
                start_position: to_point(change.start_point),
                old_end_position: to_point(change.old_end_point),
                new_end_position: to_point(change.new_end_point),
            });
        }
        let previous_generation = self.generation;
        self.generation = next_generation();
        match parse_rope(self.language, rope, Some(&self.tree)) {
            Some(tree) => {
                let edited_previous = std::mem::replace(&mut self.tree, tree);
                let update = Arc::new(LastUpdate::new(
                    previous_generation,
                    edited_previous,
                    changes,
                    rope.len_bytes(),
                ));
                self.outline =
                    self.outline
                        .after_edit(self.language, &self.tree, rope, changes, || {
                            update.regions(&self.tree)
                        });
                self.last_update = Some(update);
            }
            None => {
                self.outline = OutlineCache::default();
                self.last_update = None;
            }
        }
    }

    /// Names this version of the tree: every parse and every [`SyntaxTree::update`] gives a
    /// new one, unique in the process. A consumer that follows a tree across updates keeps the
    /// generation it saw, to ask [`SyntaxTree::dirty_regions_since`] next time.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Where the text may need what is derived from the tree (outline entries, tags) computed
    /// again, if this tree is the one of generation `previous` after exactly one
    /// [`SyntaxTree::update`]: sorted, disjoint byte ranges of the current text, each a run of
    /// whole top-level nodes with the gaps after them. Outside them, every top-level node only
    /// moved, and what a query finds there is what it found before, moved by the changes.
    ///
    /// `None` when this tree does not follow `previous` directly (a full parse, a failed
    /// reparse, an update the consumer missed): then everything must be computed again.
    /// Computed on the first call after an update and shared by the tree's clones.
    pub fn dirty_regions_since(&self, previous: u64) -> Option<&[Range<usize>]> {
        let update = self.last_update.as_ref()?;
        (update.previous_generation == previous).then(|| update.regions(&self.tree))
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn tree(&self) -> &tree_sitter::Tree {
        &self.tree
    }

    /// The smallest definition of a scope kind (function, method, class, impl, module,
    /// struct, ...) that strictly encloses `range`, with its kind and name. `None` at top
    /// level.
    pub fn enclosing_scope(&self, source: &Rope, range: Range<usize>) -> Option<Scope> {
        symbols::enclosing_scope(self.language, &self.tree, source, range)
    }

    /// The syntax node that follows byte `offset` (used for `baton:` markers), as a byte range.
    ///
    /// Starts at the first non-whitespace byte at or after `offset` and takes the largest
    /// named node starting there. Comments, attributes and decorators that come first are
    /// kept in the range (they document the item) and the range is extended to the end of the
    /// first real node after them. `None` if only whitespace and comments follow.
    pub fn node_after(&self, source: &Rope, offset: usize) -> Option<Range<usize>> {
        let mut start = None;
        let mut position = offset;
        loop {
            while byte_at(source, position).is_some_and(|byte| byte.is_ascii_whitespace()) {
                position += 1;
            }
            byte_at(source, position)?;
            let node = self.largest_node_starting_at(position)?;
            start.get_or_insert(node.start_byte());
            if is_comment(node) || is_item_prefix(node) {
                if node.end_byte() <= position {
                    return None;
                }
                position = node.end_byte();
                continue;
            }
            return Some(start.unwrap_or(position)..node.end_byte());
        }
    }

    fn largest_node_starting_at(&self, position: usize) -> Option<Node<'_>> {
        let root = self.tree.root_node();
        let mut node = root.named_descendant_for_byte_range(position, position)?;
        if node.start_byte() != position {
            // The byte is inside a token that starts earlier (or in an anonymous token);
            // there is no node starting here, so take the smallest one around it.
            return (node.id() != root.id()).then_some(node);
        }
        while let Some(parent) = node.parent() {
            if parent.start_byte() != position || is_container(parent) {
                break;
            }
            node = parent;
        }
        Some(node)
    }

    /// Comment nodes lying fully inside `range`, in document order.
    pub fn comments_in(&self, range: Range<usize>) -> Vec<Range<usize>> {
        let mut comments = Vec::new();
        let mut cursor = self.tree.walk();
        // Iterative pre-order walk that skips subtrees outside the range.
        'walk: loop {
            let node = cursor.node();
            let node_range = node.byte_range();
            let overlaps = node_range.start < range.end && range.start < node_range.end
                || node_range.start == range.start;
            let mut descend = overlaps;
            if overlaps && is_comment(node) && node.is_named() {
                if range.start <= node_range.start && node_range.end <= range.end {
                    comments.push(node_range);
                }
                descend = false;
            }
            if descend && cursor.goto_first_child() {
                continue;
            }
            loop {
                if cursor.goto_next_sibling() {
                    continue 'walk;
                }
                if !cursor.goto_parent() {
                    break 'walk;
                }
            }
        }
        comments
    }

    /// Definitions and references in the whole document, sorted by name position.
    pub fn tags(&self, source: &Rope) -> Vec<Tag> {
        symbols::tags(self.language, &self.tree, source, None)
    }

    /// Tags whose name starts inside `range` (for re-tagging a changed region). Tagging
    /// disjoint ranges that cover the document yields every tag exactly once.
    pub fn tags_in(&self, source: &Rope, range: Range<usize>) -> Vec<Tag> {
        symbols::tags(self.language, &self.tree, source, Some(range))
    }

    /// Hierarchical outline for `textDocument/documentSymbol`.
    ///
    /// `source` must be the text this tree was parsed from. The flat entries are cached per
    /// version and carried across `update`, so after an edit only the changed top-level nodes
    /// are queried again.
    pub fn outline(&self, source: &Rope) -> Vec<OutlineItem> {
        outline::nest(self.outline.entries(self.language, &self.tree, source))
    }
}
