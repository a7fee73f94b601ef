//! Running the tags patterns in one walk of the tree, starting matches only where a pattern
//! can start.
//!
//! Tree-sitter's query cursor visits every node and, at each one, works out its field and
//! supertypes and advances every match in progress; on a whole file that costs about half as
//! much as parsing it. But every tags pattern (`grammars/<lang>/tags.scm`) starts with a named
//! node kind, so most nodes can start nothing. [`TagStarts::plan`] reads, once per language,
//! which kinds start a definition or reference pattern, and [`TagStarts::found`] walks the tree
//! with a plain tree cursor, running the query only on nodes of those kinds (limited to
//! matches that start at that node, so the cursor goes no deeper than the pattern). Patterns
//! that are a single node with captures, such as `(type_identifier) @name @reference.type`,
//! need no query at all: the node is the match.
//!
//! The query files stay the one description of definitions and references: the plan is read
//! from the compiled query and its source, and a language whose patterns the plan cannot read
//! (a pattern starting with a wildcard, an alternation or a supertype) keeps the plain query.
//! The tests compare both on every language's fixtures and on fuzzed input.

use std::ops::Range;

use ropey::Rope;
use tree_sitter::Node;

use crate::symbols::{CaptureRole, CompiledQuery, Found, collect_matches, is_name_range};

/// What the walk does at a node of one kind.
#[derive(Clone, Debug)]
enum Start {
    /// No tags pattern starts with this kind.
    Nothing,
    /// Only single-node patterns start with this kind: each one is a match of the node alone,
    /// with its pattern index and the role of its main capture.
    Direct(Vec<(usize, CaptureRole)>),
    /// Some pattern starting with this kind looks further: the query runs on the node.
    Query,
}

/// Per language: for every node kind, what can start there.
#[derive(Debug)]
pub(crate) struct TagStarts {
    by_kind: Vec<Start>,
}

impl TagStarts {
    /// Reads where the patterns with a capture for which `keep` holds start. `source` is the
    /// text the query was compiled from. `None` when some such pattern's start cannot be told.
    pub(crate) fn plan(
        compiled: &CompiledQuery,
        source: &str,
        grammar: &tree_sitter::Language,
        keep: fn(CaptureRole) -> bool,
    ) -> Option<TagStarts> {
        let query = &compiled.query;
        let mut by_kind = vec![Start::Nothing; grammar.node_kind_count()];
        for pattern in 0..query.pattern_count() {
            let text = source
                .get(query.start_byte_for_pattern(pattern)..query.end_byte_for_pattern(pattern))?;
            let text = without_comments(text);
            let roles: Vec<CaptureRole> = capture_names(&text)
                .map(|name| {
                    query
                        .capture_index_for_name(name)
                        .map_or(CaptureRole::Ignored, |index| compiled.roles[index as usize])
                })
                .collect();
            if !roles.iter().copied().any(keep) {
                continue;
            }
            let kind = root_kind(&text)?;
            let symbol = grammar.id_for_node_kind(kind, true);
            if symbol == 0 || grammar.supertypes().contains(&symbol) {
                return None;
            }
            let slot = by_kind.get_mut(usize::from(symbol))?;
            let main_roles: Vec<CaptureRole> = roles
                .iter()
                .copied()
                .filter(|role| {
                    !matches!(
                        role,
                        CaptureRole::Name | CaptureRole::ImplTrait | CaptureRole::Ignored
                    )
                })
                .collect();
            let direct = is_single_node(&text, kind)
                && roles.contains(&CaptureRole::Name)
                && main_roles.len() == 1;
            *slot = match (std::mem::replace(slot, Start::Nothing), direct) {
                (Start::Nothing, true) => Start::Direct(vec![(pattern, main_roles[0])]),
                (Start::Direct(mut patterns), true) => {
                    patterns.push((pattern, main_roles[0]));
                    Start::Direct(patterns)
                }
                _ => Start::Query,
            };
        }
        Some(TagStarts { by_kind })
    }

    /// The matches under `root` whose main capture `keep`s, as running the query on `root`
    /// limited to `byte_range` finds them (in another order).
    pub(crate) fn found(
        &self,
        compiled: &CompiledQuery,
        root: Node,
        rope: &Rope,
        byte_range: Range<usize>,
        keep: impl Fn(CaptureRole) -> bool,
    ) -> Vec<Found> {
        crate::symbols::with_cursor(|query_cursor| {
            query_cursor.set_byte_range(byte_range.clone());
            // Only matches that start at the node the query runs on: the others start at
            // nodes the walk reaches itself.
            query_cursor.set_max_start_depth(Some(0));
            let mut found = Vec::new();
            let mut cursor = root.walk();
            'walk: loop {
                let node = cursor.node();
                let intersects =
                    node.end_byte() > byte_range.start && node.start_byte() < byte_range.end;
                if intersects {
                    match self.by_kind.get(usize::from(node.kind_id())) {
                        Some(Start::Direct(patterns)) => {
                            let range = node.byte_range();
                            if is_name_range(&range) {
                                for &(pattern_index, role) in patterns {
                                    if keep(role) {
                                        found.push(Found {
                                            role,
                                            name_range: range.clone(),
                                            name_row: node.start_position().row,
                                            node_range: range.clone(),
                                            node_id: node.id(),
                                            trait_range: None,
                                            pattern_index,
                                        });
                                    }
                                }
                            }
                        }
                        Some(Start::Query) => {
                            collect_matches(query_cursor, compiled, node, rope, &keep, &mut found)
                        }
                        Some(Start::Nothing) | None => {}
                    }
                    // (Not `goto_first_child_for_byte`: after error recovery it can pass over
                    // children that reach into the range, found by `fuzz_tags`.)
                    if cursor.goto_first_child() {
                        continue;
                    }
                }
                loop {
                    // Siblings are in order: once one starts after the range, the rest do.
                    if cursor.goto_next_sibling() && cursor.node().start_byte() < byte_range.end {
                        continue 'walk;
                    }
                    if !cursor.goto_parent() {
                        break 'walk;
                    }
                }
            }
            found
        })
    }
}

/// A pattern's text without `;` comments (outside strings).
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_string = !in_string;
                out.push(c);
            }
            '\\' if in_string => {
                out.push(c);
                if let Some(escaped) = chars.next() {
                    out.push(escaped);
                }
            }
            ';' if !in_string => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// The names of the captures in a pattern (`@name` → `name`), strings skipped.
fn capture_names(text: &str) -> impl Iterator<Item = &str> {
    let mut names = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '@' => {
                let rest = &text[index + 1..];
                let end = rest
                    .find(|c: char| !is_identifier_char(c))
                    .unwrap_or(rest.len());
                names.push(&rest[..end]);
            }
            _ => {}
        }
    }
    names.into_iter()
}

/// The named node kind a pattern starts with: `(kind …`. `None` for a wildcard, an
/// alternation, an anonymous node or anything else.
fn root_kind(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix('(')?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let kind = &rest[..end];
    (!kind.is_empty() && kind != "_").then_some(kind)
}

/// Whether a pattern is just `(kind)` followed by captures: no children, fields, predicates,
/// quantifiers or anchors.
fn is_single_node(text: &str, kind: &str) -> bool {
    let Some(rest) = text
        .trim()
        .strip_prefix('(')
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix(kind))
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix(')'))
    else {
        return false;
    };
    rest.split_whitespace().all(|token| {
        token
            .strip_prefix('@')
            .is_some_and(|name| !name.is_empty() && name.chars().all(is_identifier_char))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_text_is_read() {
        let text = without_comments("; a comment\n(type_identifier) @name @reference.type ; ok\n");
        assert_eq!(root_kind(&text), Some("type_identifier"));
        assert!(is_single_node(&text, "type_identifier"));
        assert_eq!(
            capture_names(&text).collect::<Vec<_>>(),
            ["name", "reference.type"]
        );
        let text = "(call_expression function: (identifier) @name) @reference.call";
        assert_eq!(root_kind(text), Some("call_expression"));
        assert!(!is_single_node(text, "call_expression"));
        let text = "(method_definition name: (_) @name (#eq? @name \"@x;y\")) @definition.x";
        assert_eq!(
            capture_names(&without_comments(text)).collect::<Vec<_>>(),
            ["name", "name", "definition.x"]
        );
        assert_eq!(root_kind("(_ (x) @name) @definition.x"), None);
        assert_eq!(root_kind("[(a) (b)] @name"), None);
    }
}
