//! Open documents: re-tagging only the changed region must give exactly the tags of a full
//! re-tag, for any sequence of edits.

use std::path::Path;

use proptest::prelude::*;
use syntax::{Language, SyntaxTree, Tag};
use text::{ContentChange, Document, PositionEncoding};

use crate::open_document::OpenDocument;
use crate::{SearchContext, WorkspaceIndex};

const RUST_SOURCE: &str = "struct Point {\n    x: i32,\n}\n\nimpl Point {\n    fn new() -> Point {\n        helper(1)\n    }\n}\n\nfn helper(value: i32) -> Point {\n    Point { x: value }\n}\n\nmod nested {\n    pub fn inner() {}\n}\n";
const PYTHON_SOURCE: &str = "class Shape:\n    def area(self):\n        return compute(self)\n\ndef compute(shape):\n    return 1\n\nLIMIT = 3\n";
const JAVASCRIPT_SOURCE: &str = "class Circle {\n  area() {\n    return compute(this);\n  }\n}\n\nfunction compute(c) {\n  return 1;\n}\n\nconst LIMIT = 3;\n";

/// Snippets that create, break and join definitions, open strings and comments, and split
/// lines: the edits most likely to change the parse away from where they happen.
const SNIPPETS: &[&str] = &[
    "",
    "a",
    "x",
    " ",
    "\n",
    "{",
    "}",
    "(",
    ")",
    "\"",
    "'",
    "//",
    "/*",
    "*/",
    "#",
    ":",
    "fn f() {}\n",
    "def g():\n    pass\n",
    "function h() {}\n",
    "class K:\n",
    "struct S;\n",
    "helper",
    "compute(1)",
    "    ",
    "pub ",
    "return ",
];

fn sorted(mut tags: Vec<Tag>) -> Vec<String> {
    tags.sort_by_key(|tag| (tag.name_range.start, tag.name_range.end, tag.is_definition));
    tags.iter().map(|tag| format!("{tag:?}")).collect()
}

/// Applies each batch of (start, length, snippet) edits as one `didChange` and compares the
/// incrementally maintained tags with a full re-tag after every batch.
fn check_edits(language: Language, source: &str, batches: &[Vec<(usize, usize, usize)>]) {
    let mut document = Document::new(source, 0, language.name());
    let mut tree = SyntaxTree::parse(language, document.rope()).expect("parses");
    let mut open = OpenDocument::new(document.rope(), &tree);
    for (version, batch) in batches.iter().enumerate() {
        let changes: Vec<ContentChange> = batch
            .iter()
            .map(|&(start, length, snippet)| {
                // Offsets are taken modulo the current length when the change is built; later
                // changes of a batch apply to the text after the earlier ones, like an editor's.
                (start, length, SNIPPETS[snippet % SNIPPETS.len()])
            })
            .scan(document.clone(), |scratch, (start, length, snippet)| {
                let total = scratch.len_bytes();
                let start = start % (total + 1);
                let end = (start + length).min(total);
                let range = scratch.range(start..end, PositionEncoding::Utf8);
                let change = ContentChange {
                    range: Some(range),
                    text: snippet.to_owned(),
                };
                let mut version = scratch.version();
                version += 1;
                scratch
                    .apply_changes(
                        version,
                        std::slice::from_ref(&change),
                        PositionEncoding::Utf8,
                    )
                    .expect("newer version");
                Some(change)
            })
            .collect();
        let applied = document
            .apply_changes(version as i32 + 1, &changes, PositionEncoding::Utf8)
            .expect("newer version");
        tree.update(document.rope(), &applied);
        open.update(document.rope(), &tree, &applied);
        assert_eq!(
            sorted(open.tags().to_vec()),
            sorted(tree.tags(document.rope())),
            "after batch {version} {changes:?} the text is:\n{}",
            document.text()
        );
    }
}

fn batches() -> impl Strategy<Value = Vec<Vec<(usize, usize, usize)>>> {
    prop::collection::vec(
        prop::collection::vec((0usize..400, 0usize..12, 0usize..64), 1..4),
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rust_incremental_tags_equal_a_full_retag(batches in batches()) {
        check_edits(Language::Rust, RUST_SOURCE, &batches);
    }

    #[test]
    fn python_incremental_tags_equal_a_full_retag(batches in batches()) {
        check_edits(Language::Python, PYTHON_SOURCE, &batches);
    }

    #[test]
    fn javascript_incremental_tags_equal_a_full_retag(batches in batches()) {
        check_edits(Language::JavaScript, JAVASCRIPT_SOURCE, &batches);
    }
}

#[test]
fn typing_a_new_function_shows_up_in_search_and_definitions() {
    let index = WorkspaceIndex::new(
        "/workspace".into(),
        crate::IndexConfig {
            cache_dir: None,
            ..Default::default()
        },
    );
    let path = Path::new("/workspace/src/lib.rs");
    let mut document = Document::new("fn first() {}\n", 0, "rust");
    let mut tree = SyntaxTree::parse(Language::Rust, document.rope()).expect("parses");
    index.set_open_document(path, document.rope(), &tree);
    assert_eq!(index.definitions("first").len(), 1);

    let mut version = 0;
    for character in "fn second() {}\n".chars() {
        let end = document.len_bytes();
        let range = document.range(end..end, PositionEncoding::Utf8);
        version += 1;
        let applied = document
            .apply_changes(
                version,
                &[ContentChange {
                    range: Some(range),
                    text: character.to_string(),
                }],
                PositionEncoding::Utf8,
            )
            .expect("newer version");
        tree.update(document.rope(), &applied);
        index.update_open_document(path, document.rope(), &tree, &applied);
    }
    let found = index.definitions("second");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].position.line(), 1);
    let matches = index.search("sec", 10, &SearchContext::default());
    assert_eq!(
        matches.first().map(|found| found.symbol.name.as_str()),
        Some("second")
    );

    index.close_document(path);
    assert!(
        index.definitions("second").is_empty(),
        "closing the buffer drops its symbols"
    );
}
