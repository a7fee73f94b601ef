//! Fuzz target `fuzz_tags`: every analysis of [`SyntaxTree`] on arbitrary input in all twelve
//! languages.
//!
//! Inputs are arbitrary bytes (read as the editor would show them, invalid UTF-8 replaced) and
//! real snippets (`tests/index/*.txt`) mutated by deleting, duplicating and inserting pieces
//! and truncating them anywhere. Properties: parsing, tags, `tags_in`, the outline,
//! `enclosing_scope`, `node_after` and `comments_in` never panic, even at offsets past the end
//! or inside a character; every range they return lies within the text, starts and ends on
//! char boundaries and is not reversed; a tag's name is the text at its name range and its
//! line is the line of that range; tagging disjoint ranges that cover the text finds every tag
//! once.
//!
//! The file symbols the index builds from these tags have their own target in `crates/index`.
//! A few dozen cases per language in `cargo test`; `PROPTEST_CASES` raises that, and
//! `cargo xtask fuzz --target tags` runs it for minutes with fresh seeds.

use std::ops::Range;

use proptest::prelude::*;
use ropey::Rope;

use crate::symbols::TagStrategy;
use crate::{Language, OutlineItem, SyntaxTree};

/// `PROPTEST_CASES` when set (the xtask's long runs), else the number a `cargo test` run can
/// afford. `ProptestConfig::with_cases` alone would ignore the variable.
fn fuzz_config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig::with_cases(cases)
}

/// A real snippet of `language`, from the index fixtures (TypeScript reads the TSX one).
pub(crate) fn snippet(language: Language) -> &'static str {
    match language {
        Language::Rust => include_str!("../../../../tests/index/rust.txt"),
        Language::Python => include_str!("../../../../tests/index/python.txt"),
        Language::TypeScript | Language::Tsx => include_str!("../../../../tests/index/tsx.txt"),
        Language::JavaScript => include_str!("../../../../tests/index/javascript.txt"),
        Language::Go => include_str!("../../../../tests/index/go.txt"),
        Language::C => include_str!("../../../../tests/index/c.txt"),
        Language::Cpp => include_str!("../../../../tests/index/cpp.txt"),
        Language::Java => include_str!("../../../../tests/index/java.txt"),
        Language::Ruby => include_str!("../../../../tests/index/ruby.txt"),
        Language::Lua => include_str!("../../../../tests/index/lua.txt"),
        Language::Bash => include_str!("../../../../tests/index/bash.txt"),
    }
}

fn language() -> impl Strategy<Value = Language> {
    proptest::sample::select(Language::ALL.to_vec())
}

/// One edit of a snippet; positions are taken modulo its length and floored to a char boundary.
#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize, usize),
    Duplicate(usize, usize),
    Insert(usize, String),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let inserted = prop_oneof![
        prop_oneof![
            Just("{"),
            Just("}"),
            Just("("),
            Just(")"),
            Just("["),
            Just("]"),
            Just("\""),
            Just("'"),
            Just("`"),
            Just("/*"),
            Just("*/"),
            Just("//"),
            Just("#"),
            Just("--[["),
            Just("<<EOF\n"),
            Just("\n"),
            Just("\r\n"),
            Just("\r"),
            Just("\t"),
            Just("\0"),
            Just("é"),
            Just("🦀"),
            Just("\u{feff}"),
            Just("fn "),
            Just("def "),
            Just("class "),
            Just("function "),
            Just("struct "),
            Just("impl "),
            Just("end"),
            Just("=>"),
            Just("::"),
            Just("<"),
            Just(">"),
            Just("\\"),
            Just("$("),
        ]
        .prop_map(String::from),
        any::<String>(),
    ];
    prop_oneof![
        (any::<usize>(), 0usize..200).prop_map(|(at, length)| Mutation::Delete(at, length)),
        (any::<usize>(), 0usize..200).prop_map(|(at, length)| Mutation::Duplicate(at, length)),
        (any::<usize>(), inserted).prop_map(|(at, text)| Mutation::Insert(at, text)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn floor(text: &str, offset: usize) -> usize {
    let mut offset = offset % (text.len() + 1);
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut text = text.to_string();
    for mutation in mutations {
        match mutation {
            Mutation::Delete(at, length) => {
                let start = floor(&text, *at);
                let end = floor(&text, start.saturating_add(*length).min(text.len()));
                text.replace_range(start..end.max(start), "");
            }
            Mutation::Duplicate(at, length) => {
                let start = floor(&text, *at);
                let end = floor(&text, start.saturating_add(*length).min(text.len())).max(start);
                let copy = text[start..end].to_string();
                text.insert_str(end, &copy);
            }
            Mutation::Insert(at, inserted) => {
                let at = floor(&text, *at);
                text.insert_str(at, inserted);
            }
            Mutation::Truncate(at) => {
                let at = floor(&text, *at);
                text.truncate(at);
            }
        }
    }
    text
}

/// Arbitrary bytes as text, the way an editor shows a file that is not UTF-8.
fn bytes_as_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 0..600)
        .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

fn check_range(text: &str, range: &Range<usize>, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(range.start <= range.end, "{what} {range:?} is reversed");
    prop_assert!(
        range.end <= text.len(),
        "{what} {range:?} ends past {}",
        text.len()
    );
    prop_assert!(
        text.is_char_boundary(range.start) && text.is_char_boundary(range.end),
        "{what} {range:?} splits a character"
    );
    Ok(())
}

fn check_outline(text: &str, items: &[OutlineItem]) -> Result<(), TestCaseError> {
    for item in items {
        check_range(text, &item.range, "outline range")?;
        check_range(text, &item.selection_range, "outline selection")?;
        check_outline(text, &item.children)?;
    }
    Ok(())
}

/// Runs every analysis on `text` and checks what it returns; `probes` are offsets to ask about
/// (taken as they are: past the end and inside characters too).
fn check_everything(language: Language, text: &str, probes: &[usize]) -> Result<(), TestCaseError> {
    let rope = Rope::from_str(text);
    let Some(tree) = SyntaxTree::parse(language, &rope) else {
        return Ok(());
    };
    let tags = tree.tags(&rope);
    for tag in &tags {
        check_range(text, &tag.name_range, "tag name")?;
        check_range(text, &tag.range, "tag range")?;
        prop_assert_eq!(&tag.name, &text[tag.name_range.clone()]);
        prop_assert_eq!(tag.line as usize, rope.byte_to_line(tag.name_range.start));
    }
    check_outline(text, &tree.outline(&rope))?;

    // Disjoint ranges covering the text (and beyond) find every tag exactly once.
    let mut cuts: Vec<usize> = probes
        .iter()
        .map(|probe| probe % (text.len() + 2))
        .collect();
    cuts.push(0);
    cuts.push(text.len() + 1);
    cuts.sort_unstable();
    cuts.dedup();
    let pieces: Vec<_> = cuts
        .windows(2)
        .flat_map(|pair| tree.tags_in(&rope, pair[0]..pair[1]))
        .collect();
    prop_assert_eq!(
        pieces.len(),
        tags.len(),
        "tags_in over a cover found a different count"
    );

    // The one-walk execution finds what the plain query finds, whole and in pieces, for the
    // tags and for the outline.
    let outline = |strategy| {
        crate::symbols::outline_entries_by(language, tree.tree(), &rope, 0..usize::MAX, strategy)
    };
    prop_assert_eq!(outline(TagStrategy::Plain), outline(TagStrategy::Fastest));
    let plain = crate::symbols::tags_by(language, tree.tree(), &rope, None, TagStrategy::Plain);
    prop_assert_eq!(&plain, &tags, "the fast tags differ from the plain query's");
    for pair in cuts.windows(2) {
        let range = Some(pair[0]..pair[1]);
        let plain = crate::symbols::tags_by(
            language,
            tree.tree(),
            &rope,
            range.clone(),
            TagStrategy::Plain,
        );
        prop_assert_eq!(plain, tree.tags_in(&rope, pair[0]..pair[1]));
    }

    for &probe in probes {
        for offset in [probe, probe % (text.len() + 1)] {
            if let Some(scope) = tree.enclosing_scope(&rope, offset..offset) {
                check_range(text, &scope.range, "scope")?;
            }
            let end = offset.saturating_add(probe % 7);
            if let Some(scope) = tree.enclosing_scope(&rope, offset..end) {
                check_range(text, &scope.range, "scope")?;
            }
            if let Some(range) = tree.node_after(&rope, offset) {
                check_range(text, &range, "node after")?;
            }
            for comment in tree.comments_in(offset..end) {
                check_range(text, &comment, "comment")?;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(fuzz_config(120))]

    #[test]
    fn fuzz_tags_arbitrary_bytes_in_every_language(
        language in language(),
        text in bytes_as_text(),
        probes in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        check_everything(language, &text, &probes)?;
    }

    #[test]
    fn fuzz_tags_mutated_snippets_in_every_language(
        language in language(),
        mutations in proptest::collection::vec(mutation(), 1..8),
        probes in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let text = mutate(snippet(language), &mutations);
        check_everything(language, &text, &probes)?;
    }
}

/// Found by `fuzz_tags_arbitrary_bytes_in_every_language`: tree-sitter counts rows at `\n`
/// only, so a name after a lone `\r` (old Mac line ends) was tagged on the line before, and
/// the index and workspace symbols pointed there.
#[test]
fn fuzz_tags_regression_a_lone_carriage_return_ends_a_line() {
    let text = "\r\0\0A0\0.\u{1}A";
    let rope = Rope::from_str(text);
    let tree = SyntaxTree::parse(Language::Go, &rope).expect("parses");
    let lines: Vec<(String, u32)> = tree
        .tags(&rope)
        .into_iter()
        .map(|tag| (tag.name, tag.line))
        .collect();
    assert_eq!(lines, [("A".to_string(), 1)]);

    let text = "package p\rfunc first() {}\r\nfunc second() {}\rfunc third() {}\n";
    let rope = Rope::from_str(text);
    let tree = SyntaxTree::parse(Language::Go, &rope).expect("parses");
    let lines: Vec<(String, u32)> = tree
        .tags(&rope)
        .into_iter()
        .filter(|tag| tag.is_definition)
        .map(|tag| (tag.name, tag.line))
        .collect();
    assert_eq!(
        lines,
        [
            ("p".to_string(), 0),
            ("first".to_string(), 1),
            ("second".to_string(), 2),
            ("third".to_string(), 3)
        ]
    );
}

/// Found by `fuzz_file_symbols` (crates/index) as a SIGSEGV: tree-sitter-bash's scanner passed
/// the code point after `{` to C's `isdigit`, which read far outside glibc's table. The parser
/// now sees Bash text with non-ASCII bytes as `_`; offsets and names are unchanged.
#[test]
fn fuzz_tags_regression_bash_brace_before_a_supplementary_character() {
    for text in [
        "{\u{af6b6}",
        "{\u{10ffff}",
        "echo {\u{f0000}..2}\n",
        "x={\u{e0000}}",
    ] {
        let rope = Rope::from_str(text);
        let tree = SyntaxTree::parse(Language::Bash, &rope).expect("parses");
        check_everything(Language::Bash, text, &[0, 1, text.len()]).expect("sane ranges");
        assert!(tree.tree().root_node().end_byte() <= text.len());
    }
    let text = "función() { echo 🦀; }\nñ_ñ() { :; }\n";
    let second = text.find("ñ_ñ").expect("in the text");
    let rope = Rope::from_str(text);
    let tree = SyntaxTree::parse(Language::Bash, &rope).expect("parses");
    let names: Vec<(String, std::ops::Range<usize>)> = tree
        .tags(&rope)
        .into_iter()
        .filter(|tag| tag.is_definition)
        .map(|tag| (tag.name, tag.name_range))
        .collect();
    assert_eq!(
        names,
        [
            ("función".to_string(), 0..8),
            ("ñ_ñ".to_string(), second..second + "ñ_ñ".len())
        ]
    );
}

/// Found by `fuzz_file_symbols` (crates/index) as a hang: these 22 bytes of TSX send
/// tree-sitter's error recovery into a search that did not end in minutes, its memory growing
/// by megabytes a second. The parse is now given up after its time limit, and the thread's
/// parser still parses the next text.
#[test]
fn fuzz_tags_regression_tsx_error_recovery_is_given_up() {
    let started = std::time::Instant::now();
    let rope = Rope::from_str("<rq'C._=~y:[z:U,l|{J|");
    assert!(SyntaxTree::parse(Language::Tsx, &rope).is_none());
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    let rope = Rope::from_str("function next() {}\n");
    let tree = SyntaxTree::parse(Language::Tsx, &rope).expect("parses after a parse given up");
    let names: Vec<String> = tree.tags(&rope).into_iter().map(|tag| tag.name).collect();
    assert_eq!(names, ["next"]);
}
