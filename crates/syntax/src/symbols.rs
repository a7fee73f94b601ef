//! Definitions and references found by each language's tags query (`grammars/<lang>/tags.scm`),
//! and the outline and enclosing scopes built from the same matches.
//!
//! Each language's query is compiled once per process. The query is the tags file followed by
//! an optional outline file whose patterns use `@outline.<kind>` captures: those are items that
//! belong in the document outline but not in the symbol index (Rust `impl` blocks).

use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;

use ropey::Rope;
use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, Query, QueryCursor, Tree};

use crate::Language;
use crate::rope_text::{RopeProvider, text_of};
use crate::tag_starts::TagStarts;

/// What kind of thing a definition (or the target of a reference) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SymbolKind {
    Module,
    Namespace,
    Class,
    Struct,
    Enum,
    Interface,
    Trait,
    Function,
    Method,
    Constructor,
    Field,
    Property,
    Constant,
    Variable,
    TypeAlias,
    Macro,
    EnumMember,
    Impl,
    Other,
}

impl SymbolKind {
    /// Maps the `<kind>` suffix of a `@definition.<kind>` / `@reference.<kind>` capture. Besides
    /// our own names this accepts tree-sitter's conventional reference kinds (`call`, `type`,
    /// `implementation`), which name the kind of the referenced thing.
    fn from_capture_suffix(suffix: &str) -> SymbolKind {
        match suffix {
            "module" => SymbolKind::Module,
            "namespace" => SymbolKind::Namespace,
            "class" => SymbolKind::Class,
            "struct" => SymbolKind::Struct,
            "enum" => SymbolKind::Enum,
            "interface" => SymbolKind::Interface,
            "trait" => SymbolKind::Trait,
            "function" | "call" => SymbolKind::Function,
            "method" => SymbolKind::Method,
            "constructor" => SymbolKind::Constructor,
            "field" => SymbolKind::Field,
            "property" => SymbolKind::Property,
            "constant" => SymbolKind::Constant,
            "variable" => SymbolKind::Variable,
            "type" | "type_alias" => SymbolKind::TypeAlias,
            "macro" => SymbolKind::Macro,
            "enum_member" => SymbolKind::EnumMember,
            "impl" | "implementation" => SymbolKind::Impl,
            _ => SymbolKind::Other,
        }
    }

    /// Kinds that open a scope worth naming as the context of an edit.
    fn is_scope(self) -> bool {
        matches!(
            self,
            SymbolKind::Module
                | SymbolKind::Namespace
                | SymbolKind::Class
                | SymbolKind::Struct
                | SymbolKind::Enum
                | SymbolKind::Interface
                | SymbolKind::Trait
                | SymbolKind::Function
                | SymbolKind::Method
                | SymbolKind::Constructor
                | SymbolKind::Impl
                | SymbolKind::Macro
        )
    }
}

/// A definition or reference found by the tags query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub kind: SymbolKind,
    pub is_definition: bool,
    /// Byte range of the name.
    pub name_range: Range<usize>,
    /// Byte range of the whole definition node; equal to `name_range` for references.
    pub range: Range<usize>,
    /// 0-based line of the start of the name, counted as the LSP and the rope count lines: a
    /// lone `\r` ends one too (tree-sitter's rows do not count it).
    pub line: u32,
}

/// One entry of the hierarchical document outline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlineItem {
    pub name: String,
    pub kind: SymbolKind,
    /// The whole definition.
    pub range: Range<usize>,
    /// The name inside the definition.
    pub selection_range: Range<usize>,
    pub children: Vec<OutlineItem>,
}

/// An outline item before nesting: what the outline cache keeps per document version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OutlineEntry {
    pub name: String,
    pub kind: SymbolKind,
    pub range: Range<usize>,
    pub selection_range: Range<usize>,
}

/// A definition that encloses some range: the context of an edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub kind: SymbolKind,
    /// The definition's name; `None` when the grammar gives it no name node.
    pub name: Option<String>,
    pub range: Range<usize>,
}

/// Names longer than this are error-recovery artefacts, not identifiers.
const MAX_NAME_BYTES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CaptureRole {
    Name,
    /// `@trait` in an outline `impl` pattern, for naming `impl Trait for Type`.
    ImplTrait,
    Definition(SymbolKind),
    Reference(SymbolKind),
    Outline(SymbolKind),
    Ignored,
}

/// A language's compiled query and what each capture index means.
pub(crate) struct CompiledQuery {
    pub(crate) query: Query,
    pub(crate) roles: Vec<CaptureRole>,
    /// Where the definition and reference patterns can start, for tagging in one walk; `None`
    /// when some pattern's start could not be told, and tagging runs the plain query.
    tag_starts: Option<TagStarts>,
    /// The same for the outline's patterns (definitions and `@outline.<kind>` items).
    outline_starts: Option<TagStarts>,
}

impl CompiledQuery {
    fn compile(language: Language) -> Result<CompiledQuery, tree_sitter::QueryError> {
        let source = format!("{}\n{}", language.tags_source(), language.outline_source());
        let query = Query::new(&language.grammar(), &source)?;
        let roles = query
            .capture_names()
            .iter()
            .map(|name| {
                if *name == "name" {
                    CaptureRole::Name
                } else if *name == "trait" {
                    CaptureRole::ImplTrait
                } else if let Some(suffix) = name.strip_prefix("definition.") {
                    CaptureRole::Definition(SymbolKind::from_capture_suffix(suffix))
                } else if let Some(suffix) = name.strip_prefix("reference.") {
                    CaptureRole::Reference(SymbolKind::from_capture_suffix(suffix))
                } else if let Some(suffix) = name.strip_prefix("outline.") {
                    CaptureRole::Outline(SymbolKind::from_capture_suffix(suffix))
                } else {
                    CaptureRole::Ignored
                }
            })
            .collect();
        let mut compiled = CompiledQuery {
            query,
            roles,
            tag_starts: None,
            outline_starts: None,
        };
        compiled.tag_starts = TagStarts::plan(&compiled, &source, &language.grammar(), is_tag);
        compiled.outline_starts =
            TagStarts::plan(&compiled, &source, &language.grammar(), is_outline);
        Ok(compiled)
    }

    /// The compiled query for `language`; compiled on first use and kept for the process.
    pub(crate) fn get(language: Language) -> &'static CompiledQuery {
        static QUERIES: [OnceLock<CompiledQuery>; Language::ALL.len()] =
            [const { OnceLock::new() }; Language::ALL.len()];
        let index = Language::ALL
            .iter()
            .position(|candidate| *candidate == language)
            .unwrap_or(0);
        QUERIES[index].get_or_init(|| {
            // The query files are part of the binary and tested for every language, so a
            // failure here is a programming error, not a user-input problem.
            CompiledQuery::compile(language).unwrap_or_else(|error| {
                panic!("query for {} does not compile: {error}", language.name())
            })
        })
    }

    /// Whether tagging `language` runs in one walk (see `tag_starts`) rather than the plain query.
    #[cfg(test)]
    pub(crate) fn uses_tag_starts(language: Language) -> bool {
        let compiled = CompiledQuery::get(language);
        compiled.tag_starts.is_some() && compiled.outline_starts.is_some()
    }

    #[cfg(test)]
    pub(crate) fn try_compile(language: Language) -> Result<(), tree_sitter::QueryError> {
        CompiledQuery::compile(language).map(|_| ())
    }
}

thread_local! {
    /// Query cursors hold matching state buffers; reusing one per thread avoids reallocating
    /// them for every small `tags_in` call.
    static CURSOR: RefCell<QueryCursor> = RefCell::new(QueryCursor::new());
}

/// Runs `body` with this thread's query cursor, or a fresh one if it is already in use.
pub(crate) fn with_cursor<T>(body: impl FnOnce(&mut QueryCursor) -> T) -> T {
    CURSOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cursor) => {
            // Reset state left over from an earlier caller.
            cursor.set_byte_range(0..usize::MAX);
            cursor.set_max_start_depth(None);
            body(&mut cursor)
        }
        Err(_) => body(&mut QueryCursor::new()),
    })
}

/// One match, reduced to what the public types need.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) role: CaptureRole,
    pub(crate) name_range: Range<usize>,
    pub(crate) name_row: usize,
    pub(crate) node_range: Range<usize>,
    pub(crate) node_id: usize,
    pub(crate) trait_range: Option<Range<usize>>,
    pub(crate) pattern_index: usize,
}

/// Runs the query on `node` (limited to `byte_range`, and to matches starting at most
/// `max_start_depth` below `node`), keeping matches for which `keep` holds.
fn run_query(
    compiled: &CompiledQuery,
    node: Node,
    rope: &Rope,
    byte_range: Range<usize>,
    max_start_depth: Option<u32>,
    keep: impl Fn(CaptureRole) -> bool,
) -> Vec<Found> {
    with_cursor(|cursor| {
        cursor.set_byte_range(byte_range);
        cursor.set_max_start_depth(max_start_depth);
        let mut found = Vec::new();
        collect_matches(cursor, compiled, node, rope, &keep, &mut found);
        found
    })
}

/// Runs the query on `node` with the cursor's current byte range and start depth, appending
/// to `found` the matches for which `keep` holds.
pub(crate) fn collect_matches(
    cursor: &mut QueryCursor,
    compiled: &CompiledQuery,
    node: Node,
    rope: &Rope,
    keep: &impl Fn(CaptureRole) -> bool,
    found: &mut Vec<Found>,
) {
    let mut matches = cursor.matches(&compiled.query, node, RopeProvider(rope));
    while let Some(query_match) = matches.next() {
        let mut name = None;
        let mut main = None;
        let mut trait_range = None;
        for capture in query_match.captures {
            match compiled.roles[capture.index as usize] {
                CaptureRole::Name => {
                    if name.is_none() {
                        name = Some(capture.node);
                    }
                }
                CaptureRole::ImplTrait => trait_range = Some(capture.node.byte_range()),
                CaptureRole::Ignored => {}
                role => main = Some((role, capture.node)),
            }
        }
        let (Some(name), Some((role, main_node))) = (name, main) else {
            continue;
        };
        if !keep(role) || !is_name_range(&name.byte_range()) {
            continue;
        }
        found.push(Found {
            role,
            name_range: name.byte_range(),
            name_row: name.start_position().row,
            node_range: main_node.byte_range(),
            node_id: main_node.id(),
            trait_range,
            pattern_index: query_match.pattern_index,
        });
    }
}

/// Whether a captured name's range can be a name: not empty, and not so long that it must be
/// an error-recovery artefact.
pub(crate) fn is_name_range(range: &Range<usize>) -> bool {
    !range.is_empty() && range.len() <= MAX_NAME_BYTES
}

/// Tags whose name starts inside `range` (all tags for `None`), sorted by name position and
/// without duplicates: when several patterns tag the same name the earliest pattern wins, so
/// query files list specific patterns (methods) before general ones (functions).
pub(crate) fn tags(
    language: Language,
    tree: &Tree,
    rope: &Rope,
    range: Option<Range<usize>>,
) -> Vec<Tag> {
    tags_by(language, tree, rope, range, TagStrategy::Fastest)
}

/// How [`tags_by`] runs the tags patterns. Both find the same tags (checked by the tests on
/// every language's fixtures and on fuzzed input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TagStrategy {
    /// One query cursor over the whole tree (or range): tree-sitter's own execution, kept
    /// as the reference the tests compare with.
    #[cfg(test)]
    Plain,
    /// One walk that starts matches only at nodes of a kind some pattern starts with
    /// (`tag_starts`), where the language allows it; the plain query where not.
    Fastest,
}

/// Whether a capture role makes a tag.
fn is_tag(role: CaptureRole) -> bool {
    matches!(role, CaptureRole::Definition(_) | CaptureRole::Reference(_))
}

/// Whether a capture role makes an outline entry.
fn is_outline(role: CaptureRole) -> bool {
    outline_kind(role).is_some()
}

/// [`tags`] with a chosen execution strategy.
pub(crate) fn tags_by(
    language: Language,
    tree: &Tree,
    rope: &Rope,
    range: Option<Range<usize>>,
    strategy: TagStrategy,
) -> Vec<Tag> {
    let compiled = CompiledQuery::get(language);
    let byte_range = range.clone().unwrap_or(0..usize::MAX);
    let mut found = match (&compiled.tag_starts, strategy) {
        (Some(starts), TagStrategy::Fastest) => {
            starts.found(compiled, tree.root_node(), rope, byte_range, is_tag)
        }
        _ => run_query(compiled, tree.root_node(), rope, byte_range, None, is_tag),
    };
    if let Some(range) = &range {
        found.retain(|found| range.contains(&found.name_range.start));
    }
    let is_definition = |found: &Found| matches!(found.role, CaptureRole::Definition(_));
    found.sort_by_key(|found| {
        (
            found.name_range.start,
            found.name_range.end,
            !is_definition(found),
            found.pattern_index,
        )
    });
    // After sorting, a name's definition comes right before its references: a reference
    // pattern that also matches the defined name (`(type_identifier) @reference.type` on a
    // struct's own name) is not a reference.
    found.dedup_by(|later, earlier| {
        later.name_range == earlier.name_range && (is_definition(earlier) || !is_definition(later))
    });
    // Tree-sitter counts rows at `\n` only, but a line (for the LSP, the rope and every user of
    // `Tag::line`) also ends at a lone `\r`. Rows are lines in text without any `\r`, which is
    // nearly all of it; only other text pays for asking the rope.
    let rows_are_lines = rope
        .chunks()
        .all(|chunk| !chunk.as_bytes().contains(&b'\r'));
    found
        .into_iter()
        .map(|found| {
            let line = if rows_are_lines {
                found.name_row
            } else {
                rope.byte_to_line(found.name_range.start)
            };
            let (kind, is_definition) = match found.role {
                CaptureRole::Definition(kind) => (kind, true),
                CaptureRole::Reference(kind) => (kind, false),
                _ => (SymbolKind::Other, false),
            };
            Tag {
                name: text_of(rope, found.name_range.clone()),
                kind,
                is_definition,
                range: if is_definition {
                    found.node_range
                } else {
                    found.name_range.clone()
                },
                name_range: found.name_range,
                line: u32::try_from(line).unwrap_or(u32::MAX),
            }
        })
        .collect()
}

/// The display name of an outline item or scope.
fn display_name(rope: &Rope, found: &Found, kind: SymbolKind) -> String {
    let name = text_of(rope, found.name_range.clone());
    if kind != SymbolKind::Impl {
        return name;
    }
    match &found.trait_range {
        Some(trait_range) => format!("impl {} for {name}", text_of(rope, trait_range.clone())),
        None => format!("impl {name}"),
    }
}

fn outline_kind(role: CaptureRole) -> Option<SymbolKind> {
    match role {
        CaptureRole::Definition(kind) | CaptureRole::Outline(kind) => Some(kind),
        _ => None,
    }
}

/// Outline entries whose name starts inside `range`, in name order, not yet nested: one per
/// name, the earliest pattern winning (a decorated method over the plain function inside it).
pub(crate) fn outline_entries(
    language: Language,
    tree: &Tree,
    rope: &Rope,
    range: Range<usize>,
) -> Vec<OutlineEntry> {
    outline_entries_by(language, tree, rope, range, TagStrategy::Fastest)
}

/// [`outline_entries`] with a chosen execution strategy.
pub(crate) fn outline_entries_by(
    language: Language,
    tree: &Tree,
    rope: &Rope,
    range: Range<usize>,
    strategy: TagStrategy,
) -> Vec<OutlineEntry> {
    let compiled = CompiledQuery::get(language);
    let root = tree.root_node();
    let mut found = match (&compiled.outline_starts, strategy) {
        (Some(starts), TagStrategy::Fastest) => {
            starts.found(compiled, root, rope, range.clone(), is_outline)
        }
        _ => run_query(compiled, root, rope, range.clone(), None, is_outline),
    };
    found.retain(|found| range.contains(&found.name_range.start));
    found.sort_by_key(|found| {
        (
            found.name_range.start,
            found.name_range.end,
            found.pattern_index,
        )
    });
    found.dedup_by(|later, earlier| later.name_range == earlier.name_range);
    found
        .into_iter()
        .map(|found| {
            let kind = outline_kind(found.role).unwrap_or(SymbolKind::Other);
            OutlineEntry {
                name: display_name(rope, &found, kind),
                kind,
                range: found.node_range,
                selection_range: found.name_range,
            }
        })
        .collect()
}

/// The smallest definition of a scope kind that strictly encloses `range`.
pub(crate) fn enclosing_scope(
    language: Language,
    tree: &Tree,
    rope: &Rope,
    range: Range<usize>,
) -> Option<Scope> {
    let compiled = CompiledQuery::get(language);
    let root = tree.root_node();
    let scope = scope_from(compiled, &ancestor_path(root, &range), rope, &range);
    if !range.is_empty() || range.start == 0 {
        return scope;
    }
    // A cursor right after a definition's last token (`return x$0`) is inside it, but the
    // descent prefers the node after the cursor; try the byte before it too and keep the
    // innermost answer.
    let before = ancestor_path(root, &(range.start - 1..range.start));
    let scope_before = scope_from(compiled, &before, rope, &range);
    match (scope, scope_before) {
        (Some(after), Some(before)) if before.range.len() < after.range.len() => Some(before),
        (None, before) => before,
        (after, _) => after,
    }
}

/// The chain of nodes from the root down to the smallest node containing `range`.
/// Collected top-down with a cursor because `Node::parent` searches from the root each time,
/// which would make walking up a deeply nested tree quadratic.
fn ancestor_path<'tree>(root: Node<'tree>, range: &Range<usize>) -> Vec<Node<'tree>> {
    let mut path = vec![root];
    let mut cursor = root.walk();
    while cursor.goto_first_child_for_byte(range.start).is_some() {
        // Children that end exactly at `range.start` are skipped by the cursor; among the
        // rest, find one that contains the whole range.
        loop {
            let child = cursor.node();
            if child.start_byte() > range.start {
                return path;
            }
            if child.end_byte() >= range.end {
                break;
            }
            if !cursor.goto_next_sibling() {
                return path;
            }
        }
        path.push(cursor.node());
    }
    path
}

/// The first scope definition, innermost first along `path`, that strictly encloses `range`.
fn scope_from(
    compiled: &CompiledQuery,
    path: &[Node],
    rope: &Rope,
    range: &Range<usize>,
) -> Option<Scope> {
    for index in (0..path.len()).rev() {
        let node = path[index];
        let node_range = node.byte_range();
        if node_range == *range || !node.is_named() {
            continue;
        }
        let parent = index.checked_sub(1).map(|parent| path[parent]);
        let grandparent = index.checked_sub(2).map(|grandparent| path[grandparent]);
        let Some(found) = definition_at(compiled, node, parent, grandparent, rope) else {
            continue;
        };
        // The same name may also be defined by a pattern on the parent (a decorated method
        // around a plain function); the earliest pattern wins, as in tags.
        let outer = parent.and_then(|parent| {
            let great = index.checked_sub(3).map(|great| path[great]);
            definition_at(compiled, parent, grandparent, great, rope)
        });
        let found = match outer {
            Some(outer)
                if outer.name_range == found.name_range
                    && outer.pattern_index < found.pattern_index =>
            {
                outer
            }
            _ => found,
        };
        let kind = outline_kind(found.role).unwrap_or(SymbolKind::Other);
        return Some(Scope {
            kind,
            name: Some(display_name(rope, &found, kind)),
            range: found.node_range,
        });
    }
    None
}

/// The scope-kind definition whose definition node is `node`, if any (earliest pattern).
fn definition_at(
    compiled: &CompiledQuery,
    node: Node,
    parent: Option<Node>,
    grandparent: Option<Node>,
    rope: &Rope,
) -> Option<Found> {
    // Patterns may be rooted up to two levels above the definition (for example "a function
    // in the declaration list of an impl is a method"), so search from the grandparent, at
    // most that deep, limited to this node's bytes.
    let (search_from, depth) = match (grandparent, parent) {
        (Some(grandparent), Some(_)) => (grandparent, 2),
        (None, Some(parent)) => (parent, 1),
        _ => (node, 0),
    };
    let found = run_query(
        compiled,
        search_from,
        rope,
        node.byte_range(),
        Some(depth),
        |role| outline_kind(role).is_some_and(SymbolKind::is_scope),
    );
    found
        .into_iter()
        .filter(|found| found.node_id == node.id())
        .min_by_key(|found| found.pattern_index)
}
