//! The dirty regions of an update (`SyntaxTree::dirty_regions_since`), as data: a fixture
//! whose `<sel>…</sel>` (or `$0`) is replaced, and the new text with each region shown as
//! `⟦…⟧`. Every check also asserts what the regions promise: outside them, the tags are the
//! old ones, moved.

use expect_test::{Expect, expect};
use text::{ContentChange, Document, PositionEncoding};

use super::fixture::Fixture;
use crate::{Language, SyntaxTree};

/// Replaces the fixture's selection with `replacement` and renders the dirty regions.
fn check(language: Language, fixture: &str, replacement: &str, expect: Expect) {
    let fixture = Fixture::parse(fixture);
    let selection = fixture.selection.clone().expect("a selection or a cursor");
    let mut document = Document::new(&fixture.text, 0, language.name());
    let mut tree = SyntaxTree::parse(language, document.rope()).expect("parses");
    let old_tags = tree.tags(document.rope());
    let previous = tree.generation();
    let change = ContentChange {
        range: Some(document.range(selection, PositionEncoding::Utf8)),
        text: replacement.to_string(),
    };
    let applied = document
        .apply_changes(1, &[change], PositionEncoding::Utf8)
        .expect("newer version");
    tree.update(document.rope(), &applied);
    let regions = tree
        .dirty_regions_since(previous)
        .expect("the tree follows the one parsed")
        .to_vec();

    let text = document.text();
    let mut rendered = String::new();
    let mut at = 0;
    for region in &regions {
        assert!(
            at <= region.start && region.start < region.end,
            "{regions:?}"
        );
        rendered += &text[at..region.start];
        rendered += "⟦";
        rendered += &text[region.clone()];
        rendered += "⟧";
        at = region.end;
    }
    rendered += &text[at..];
    expect.assert_eq(&rendered);

    // Outside the regions, tags are the old ones moved by the change.
    let outside = |range: &std::ops::Range<usize>| {
        !regions
            .iter()
            .any(|region| region.start < range.end.max(range.start + 1) && range.start < region.end)
    };
    let change = applied[0];
    let moved: Vec<_> = old_tags
        .into_iter()
        .filter(|tag| tag.range.end < change.start_byte || tag.range.start > change.old_end_byte)
        .map(|mut tag| {
            tag.range = change.map_offset(tag.range.start)..change.map_offset(tag.range.end);
            tag.name_range =
                change.map_offset(tag.name_range.start)..change.map_offset(tag.name_range.end);
            tag.line = tree_sitter_row(&text, tag.name_range.start);
            tag
        })
        .filter(|tag| outside(&tag.range))
        .collect();
    let fresh: Vec<_> = tree
        .tags(document.rope())
        .into_iter()
        .filter(|tag| outside(&tag.range))
        .collect();
    assert_eq!(fresh, moved, "tags outside the regions");
}

/// Tree-sitter's row of an offset: it breaks lines at `\n` only.
fn tree_sitter_row(text: &str, offset: usize) -> u32 {
    text[..offset].matches('\n').count() as u32
}

const RUST: &str = "fn first() {}\n\nfn second() {\n    let x = 1;\n}\n\nfn third() {}\n";

#[test]
fn an_edit_inside_a_node_dirties_that_node_and_its_gap() {
    check(
        Language::Rust,
        "fn first() {}\n\nfn second() {\n    let <sel>x</sel> = 1;\n}\n\nfn third() {}\n",
        "renamed",
        expect![[r#"
            fn first() {}

            ⟦fn second() {
                let renamed = 1;
            }

            ⟧fn third() {}
        "#]],
    );
}

#[test]
fn an_edit_at_the_start_dirties_the_first_node() {
    check(
        Language::Rust,
        &format!("$0{RUST}"),
        "// header\n",
        expect![[r#"
            ⟦// header
            fn first() {}

            ⟧fn second() {
                let x = 1;
            }

            fn third() {}
        "#]],
    );
}

#[test]
fn an_edit_at_the_end_dirties_the_last_node() {
    check(
        Language::Rust,
        &format!("{RUST}$0"),
        "fn fourth() {}\n",
        expect![[r#"
            fn first() {}

            fn second() {
                let x = 1;
            }

            ⟦fn third() {}
            fn fourth() {}
            ⟧"#]],
    );
}

#[test]
fn deleting_a_brace_merges_nodes_and_dirties_all_that_changed() {
    check(
        Language::Rust,
        "fn first() {<sel>}</sel>\n\nfn second() {\n    let x = 1;\n}\n\nfn third() {}\n",
        "",
        expect![[r#"
            ⟦fn first() {

            fn second() {
                let x = 1;
            }

            fn third() {}
            ⟧"#]],
    );
}

#[test]
fn inserting_a_brace_splits_a_node() {
    check(
        Language::Rust,
        "fn first() {}\n\nfn second() {\n    let x = 1;\n$0}\n\nfn third() {}\n",
        "}\nfn inserted() {\n",
        expect![[r#"
            fn first() {}

            ⟦fn second() {
                let x = 1;
            }
            fn inserted() {
            }

            ⟧fn third() {}
        "#]],
    );
}

#[test]
fn an_edit_in_a_gap_dirties_the_node_before_it() {
    check(
        Language::Rust,
        "fn first() {}\n$0\nfn second() {\n    let x = 1;\n}\n\nfn third() {}\n",
        "\n\n",
        expect![[r#"
            ⟦fn first() {}



            ⟧fn second() {
                let x = 1;
            }

            fn third() {}
        "#]],
    );
}

#[test]
fn multi_byte_text_is_cut_at_node_boundaries_only() {
    check(
        Language::Rust,
        "fn ñandú() { \"🎉\" }\n\nfn <sel>é</sel>() {}\n\nfn 中文() {}\n",
        "e\u{301}🦀",
        expect![[r#"
            fn ñandú() { "🎉" }

            ⟦fn é🦀() {}

            ⟧fn 中文() {}
        "#]],
    );
}

#[test]
fn an_unterminated_comment_dirties_everything_after_it() {
    check(
        Language::Rust,
        "fn first() {}\n\n$0fn second() {\n    let x = 1;\n}\n\nfn third() {}\n",
        "/* ",
        expect![[r#"
            ⟦fn first() {}

            /* fn second() {
                let x = 1;
            }

            fn third() {}
            ⟧"#]],
    );
}

#[test]
fn python_indentation_moves_a_node_into_the_one_before() {
    check(
        Language::Python,
        "def first():\n    return 1\n\n$0def second():\n    return 2\n\ndef third():\n    pass\n",
        "    ",
        expect![[r#"
            ⟦def first():
                return 1

                def second():
                return 2

            ⟧def third():
                pass
        "#]],
    );
}

#[test]
fn a_tree_that_does_not_follow_has_no_regions() {
    let mut document = Document::new(RUST, 0, "rust");
    let mut tree = SyntaxTree::parse(Language::Rust, document.rope()).expect("parses");
    let unrelated = SyntaxTree::parse(Language::Rust, document.rope()).expect("parses");
    assert!(tree.dirty_regions_since(tree.generation()).is_none());
    let applied = document
        .apply_changes(
            1,
            &[ContentChange {
                range: Some(document.range(0..0, PositionEncoding::Utf8)),
                text: " ".into(),
            }],
            PositionEncoding::Utf8,
        )
        .expect("newer");
    let previous = tree.generation();
    tree.update(document.rope(), &applied);
    assert!(tree.dirty_regions_since(unrelated.generation()).is_none());
    assert!(tree.dirty_regions_since(tree.generation()).is_none());
    assert!(tree.dirty_regions_since(previous).is_some());
}
