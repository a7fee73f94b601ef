//! Hostile input: deep nesting, megabyte lines, invalid syntax. Nothing may crash, and what
//! can be tagged still is. Also the small structural helpers (comments, node after a marker,
//! tags by region).

use expect_test::expect;
use ropey::Rope;

use super::fixture::{Fixture, render_tags};
use crate::{Language, SyntaxTree};

/// Runs every analysis on `text`; returns the tags as proof that the work was done.
fn analyse_everything(language: Language, text: &str) -> usize {
    let rope = Rope::from_str(text);
    let tree = SyntaxTree::parse(language, &rope).expect("parses");
    let middle = text.len() / 2;
    let tags = tree.tags(&rope);
    let _ = tree.tags_in(&rope, middle..middle + 100);
    let _ = tree.outline(&rope);
    let _ = tree.enclosing_scope(&rope, middle..middle);
    let _ = tree.node_after(&rope, middle);
    let _ = tree.comments_in(0..text.len());
    tags.len()
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let depth = 10_000;
    for language in Language::ALL {
        let brackets = format!("x = {}1{}\n", "(".repeat(depth), ")".repeat(depth));
        analyse_everything(language, &brackets);
        let braces = format!("{}{}", "{".repeat(depth), "}".repeat(depth));
        analyse_everything(language, &braces);
    }
    // Deeply nested definitions make a deep outline; it is flattened past a fixed depth.
    let nested_functions: String = "function f() {\n".repeat(depth) + &"}\n".repeat(depth);
    let rope = Rope::from_str(&nested_functions);
    let tree = SyntaxTree::parse(Language::JavaScript, &rope).expect("parses");
    assert_eq!(tree.tags(&rope).len(), depth);
    let mut deepest = 0;
    let mut pending: Vec<(usize, &crate::OutlineItem)> = Vec::new();
    let outline = tree.outline(&rope);
    pending.extend(outline.iter().map(|item| (1, item)));
    let mut count = 0;
    while let Some((level, item)) = pending.pop() {
        deepest = deepest.max(level);
        count += 1;
        pending.extend(item.children.iter().map(|child| (level + 1, child)));
    }
    assert_eq!(count, depth);
    assert!(deepest <= 65, "outline depth {deepest}");
    let scope = tree.enclosing_scope(&rope, depth * 8..depth * 8);
    assert_eq!(scope.map(|scope| scope.name), Some(Some("f".to_string())));
}

#[test]
fn a_megabyte_line_is_handled() {
    // One huge token in every language.
    let literal = "a".repeat(1_000_000);
    for language in Language::ALL {
        analyse_everything(language, &format!("x = \"{literal}\" + call(y)\n"));
    }
    // A megabyte of small tokens: every one a reference.
    let mut line = String::from("fn f() { call(");
    while line.len() < 1_000_000 {
        line.push_str("g(), ");
    }
    line.push_str("b) }");
    assert!(analyse_everything(Language::Rust, &line) > 100_000);
    let rope = Rope::from_str(&"x".repeat(1_000_000));
    assert_eq!(crate::find_marker(&rope, 0), None);
}

#[test]
fn invalid_syntax_still_yields_tags() {
    let fixture = Fixture::parse(
        "fn good() {}\nfn broken( {\nstruct Fine { a: u8 }\nimpl {{{ \nfn also_good() { good() }\n",
    );
    let tree = fixture.tree(Language::Rust);
    expect![[r#"
        def Function good L0 `fn good() {}`
        def Struct Fine L2 `struct Fine { a: u8 }`
        def Field a L2 `a: u8`
        def Function also_good L4 `fn also_good() { good() }`
        ref Function good L4
    "#]]
    .assert_eq(&render_tags(&fixture, &tree.tags(&fixture.rope)));
}

#[test]
fn tags_in_disjoint_regions_add_up_to_all_tags() {
    let text = "struct P { x: i32 }\nimpl P {\n    fn get(&self) -> i32 { helper(self.x) }\n}\nfn helper(v: i32) -> i32 { v }\n"
        .repeat(50);
    let rope = Rope::from_str(&text);
    let tree = SyntaxTree::parse(Language::Rust, &rope).expect("parses");
    let all = tree.tags(&rope);
    for step in [1, 7, 64, 1000] {
        let mut pieces = Vec::new();
        for start in (0..text.len()).step_by(step) {
            pieces.extend(tree.tags_in(&rope, start..(start + step).min(text.len())));
        }
        assert_eq!(pieces, all, "step {step}");
    }
}

fn check_comments(language: Language, fixture: &str, expect: expect_test::Expect) {
    let fixture = Fixture::parse(fixture);
    let tree = fixture.tree(language);
    let range = fixture.selection.clone().expect("fixture has a selection");
    let comments: Vec<&str> = tree
        .comments_in(range)
        .into_iter()
        .map(|range| &fixture.text[range])
        .collect();
    expect.assert_debug_eq(&comments);
}

#[test]
fn comments_in_a_range() {
    check_comments(
        Language::Rust,
        "// before\n<sel>/// doc\nfn f() {\n    // inside\n    /* block */ let x = 1; // trailing\n}\n// end</sel> partly outside\n",
        expect![[r#"
            [
                "/// doc\n",
                "// inside",
                "/* block */",
                "// trailing",
            ]
        "#]],
    );
    check_comments(
        Language::Python,
        "# out\n<sel>def f():\n    # in\n    return 1  # trailing\n</sel># after\n",
        expect![[r##"
            [
                "# in",
                "# trailing",
            ]
        "##]],
    );
}

fn check_node_after(language: Language, fixture: &str, expect: expect_test::Expect) {
    let fixture = Fixture::parse(fixture);
    let tree = fixture.tree(language);
    let offset = fixture.selection.clone().expect("fixture has $0").start;
    let node = tree
        .node_after(&fixture.rope, offset)
        .map(|range| &fixture.text[range]);
    expect.assert_debug_eq(&node);
}

#[test]
fn node_after_edge_cases() {
    // A statement inside a block, not the whole block.
    check_node_after(
        Language::Python,
        "def f():\n    $0\n    a = 1\n    b = 2\n",
        expect![[r#"
            Some(
                "a = 1",
            )
        "#]],
    );
    // Plain comments between the marker and the node are kept with it.
    check_node_after(
        Language::Go,
        "$0\n// one\n// two\nfunc f() {}\nfunc g() {}\n",
        expect![[r#"
        Some(
            "// one\n// two\nfunc f() {}",
        )
    "#]],
    );
    // Nothing but comments and whitespace after the marker.
    check_node_after(
        Language::Rust,
        "fn f() {}\n$0\n// trailing\n",
        expect![[r#"
        None
    "#]],
    );
    check_node_after(
        Language::Rust,
        "fn f() {}\n$0",
        expect![[r#"
        None
    "#]],
    );
    // A TypeScript decorator belongs to the class.
    check_node_after(
        Language::TypeScript,
        "$0\n@Component({})\nexport class A {}\nclass B {}\n",
        expect![[r#"
            Some(
                "@Component({})\nexport class A {}",
            )
        "#]],
    );
    // Inside a function body: the next statement.
    check_node_after(
        Language::Rust,
        "fn f() {\n    $0\n    let x = compute(1, 2);\n    x\n}\n",
        expect![[r#"
            Some(
                "let x = compute(1, 2);",
            )
        "#]],
    );
}

/// Multi-byte identifiers, strings and comments, with the structural helpers asked at every
/// byte offset (inside characters too): nothing panics, every range handed back lies on
/// character boundaries, and every tag's name is exactly the text of its name range.
#[test]
fn multi_byte_text_at_every_offset() {
    let sources = [
        (
            Language::Rust,
            "// Ñandú es un ave\r\nstruct Ñandú { año: u8 }\n// TODO🎉 later\nfn añade(e\u{301}: &str) -> &str { \"👨\u{200D}👩\" }\n",
        ),
        (
            Language::Python,
            "# baton: añade 中文\ndef café(x):\n    return \"🎉\"  # e\u{301}\r\n",
        ),
        (
            Language::JavaScript,
            "/* ñ */ function ñandú() { return '👍🏽'; }\nconst 中 = 1;\n",
        ),
    ];
    for (language, text) in sources {
        let rope = Rope::from_str(text);
        let tree = SyntaxTree::parse(language, &rope).expect("parses");
        let on_boundaries = |range: &std::ops::Range<usize>| {
            text.is_char_boundary(range.start) && text.is_char_boundary(range.end)
        };
        for tag in tree.tags(&rope) {
            assert!(on_boundaries(&tag.name_range), "{tag:?}");
            assert_eq!(tag.name, text[tag.name_range.clone()], "{tag:?}");
        }
        for offset in 0..=text.len() + 1 {
            if let Some(range) = tree.node_after(&rope, offset) {
                assert!(on_boundaries(&range), "node after {offset}: {range:?}");
            }
            if let Some(scope) = tree.enclosing_scope(&rope, offset..offset) {
                assert!(on_boundaries(&scope.range), "scope at {offset}");
            }
            for tag in tree.tags_in(&rope, offset..offset + 3) {
                assert_eq!(tag.name, text[tag.name_range.clone()]);
            }
            for comment in tree.comments_in(offset..text.len()) {
                assert!(on_boundaries(&comment), "comment {comment:?}");
            }
        }
        for item in tree.outline(&rope) {
            assert!(on_boundaries(&item.selection_range), "{item:?}");
        }
    }
}
