//! The fixture language and renderers shared by the tests.
//!
//! A fixture is source text where `$0` marks a cursor and `<sel>…</sel>` a selection; both
//! are removed before parsing. Renderers print results with the text they point at, so
//! snapshots are readable without counting bytes.

use std::ops::Range;

use ropey::Rope;

use crate::{Language, OutlineItem, SyntaxTree, Tag, find_marker};

pub(crate) struct Fixture {
    pub(crate) text: String,
    pub(crate) rope: Rope,
    /// The cursor (`$0`) as an empty range, or the selection.
    pub(crate) selection: Option<Range<usize>>,
}

impl Fixture {
    pub(crate) fn parse(fixture: &str) -> Fixture {
        let mut text = String::with_capacity(fixture.len());
        let mut selection_start = None;
        let mut selection = None;
        let mut rest = fixture;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("$0") {
                selection = Some(text.len()..text.len());
                rest = after;
            } else if let Some(after) = rest.strip_prefix("<sel>") {
                selection_start = Some(text.len());
                rest = after;
            } else if let Some(after) = rest.strip_prefix("</sel>") {
                let start = selection_start.take().expect("</sel> without <sel>");
                selection = Some(start..text.len());
                rest = after;
            } else {
                let character = rest.chars().next().expect("non-empty");
                text.push(character);
                rest = &rest[character.len_utf8()..];
            }
        }
        let rope = Rope::from_str(&text);
        Fixture {
            text,
            rope,
            selection,
        }
    }

    pub(crate) fn tree(&self, language: Language) -> SyntaxTree {
        SyntaxTree::parse(language, &self.rope).expect("parses")
    }

    /// The first line of the text in `range`, shortened, for one-line renderings.
    pub(crate) fn first_line(&self, range: Range<usize>) -> String {
        let text = &self.text[range];
        let line = text.lines().next().unwrap_or("");
        let mut line = line.trim_end().to_string();
        if line.len() > 40 {
            text::boundary::truncate_to_bytes(&mut line, 40);
            line.push('…');
        }
        if text.contains('\n') {
            line.push_str(" ⏎");
        }
        line
    }

    /// Byte ranges of the lines holding `baton:` markers, with their instructions.
    pub(crate) fn markers(&self) -> Vec<crate::Marker> {
        (0..self.rope.len_lines())
            .filter_map(|line| find_marker(&self.rope, line))
            .collect()
    }
}

pub(crate) fn render_tags(fixture: &Fixture, tags: &[Tag]) -> String {
    let mut rendered = String::new();
    for tag in tags {
        let role = if tag.is_definition { "def" } else { "ref" };
        assert_eq!(fixture.text[tag.name_range.clone()], tag.name);
        assert_eq!(
            fixture.rope.byte_to_line(tag.name_range.start),
            tag.line as usize
        );
        rendered += &format!("{role} {:?} {} L{}", tag.kind, tag.name, tag.line);
        if tag.is_definition {
            rendered += &format!(" `{}`", fixture.first_line(tag.range.clone()));
        } else {
            assert_eq!(tag.range, tag.name_range);
        }
        rendered.push('\n');
    }
    rendered
}

pub(crate) fn render_outline(fixture: &Fixture, items: &[OutlineItem]) -> String {
    let mut rendered = String::new();
    let mut pending: Vec<(usize, &OutlineItem)> =
        items.iter().rev().map(|item| (0, item)).collect();
    while let Some((depth, item)) = pending.pop() {
        assert!(item.range.start <= item.selection_range.start);
        assert!(item.selection_range.end <= item.range.end);
        rendered += &format!(
            "{}{:?} {} `{}`\n",
            "  ".repeat(depth),
            item.kind,
            item.name,
            fixture.first_line(item.range.clone())
        );
        pending.extend(item.children.iter().rev().map(|child| (depth + 1, child)));
    }
    rendered
}

/// Tags, outline, scope at the cursor and the node after each marker: everything the server
/// asks of one document, in one snapshot per language.
pub(crate) fn render_all(language: Language, fixture: &str) -> String {
    let fixture = Fixture::parse(fixture);
    let tree = fixture.tree(language);
    let mut rendered = String::from("tags:\n");
    rendered += &render_tags(&fixture, &tree.tags(&fixture.rope));
    rendered += "outline:\n";
    rendered += &render_outline(&fixture, &tree.outline(&fixture.rope));
    if let Some(selection) = fixture.selection.clone() {
        rendered += &format!("scope: {}\n", render_scope(&fixture, &tree, selection));
    }
    for marker in fixture.markers() {
        let node = tree.node_after(&fixture.rope, marker.line_range.end);
        let node = node.map(|range| fixture.text[range].to_string());
        rendered += &format!(
            "after marker {:?}:\n{}\n",
            marker.instruction,
            node.unwrap_or_default()
        );
    }
    rendered
}

pub(crate) fn render_scope(fixture: &Fixture, tree: &SyntaxTree, range: Range<usize>) -> String {
    match tree.enclosing_scope(&fixture.rope, range) {
        Some(scope) => format!(
            "{:?} {:?} `{}`",
            scope.kind,
            scope.name,
            fixture.first_line(scope.range)
        ),
        None => "none".to_string(),
    }
}

pub(crate) fn check(language: Language, fixture: &str, expect: expect_test::Expect) {
    expect.assert_eq(&render_all(language, fixture));
}

pub(crate) fn check_scope(language: Language, fixture: &str, expect: expect_test::Expect) {
    let parsed = Fixture::parse(fixture);
    let tree = parsed.tree(language);
    let selection = parsed.selection.clone().expect("fixture has $0 or <sel>");
    expect.assert_eq(&render_scope(&parsed, &tree, selection));
}
