//! Fuzz target `fuzz_file_symbols`: the index's per-file symbols from arbitrary file contents
//! in all twelve languages, and its on-disk cache from arbitrary bytes.
//!
//! Files go through the same path as a file read from disk (`walk::text_from_bytes`: binary
//! and invalid UTF-8 files are skipped), then the parse, the tags and `FileSymbols::from_tags`.
//! Inputs are arbitrary bytes and real snippets (`tests/index/*.txt`) mutated at the byte
//! level, so mutations may break UTF-8 too. Properties: nothing panics; every definition's
//! name and whole range lie within the text on char boundaries, the name is the text at its
//! range, its line is the line of that range and its UTF-8 and UTF-16 columns are the name's
//! distance from the line start; a definition's container encloses it. The cache: encoding
//! then decoding gives the same symbols, and decoding damaged bytes is an error, not a panic.
//!
//! A few dozen cases per property in `cargo test`; `PROPTEST_CASES` raises that, and
//! `cargo xtask fuzz --target file_symbols` runs it for minutes with fresh seeds.

use std::path::Path;

use proptest::prelude::*;
use ropey::Rope;
use syntax::{Language, SyntaxTree};

use crate::cache;
use crate::file_symbols::FileSymbols;
use crate::walk::{SourceText, text_from_bytes};

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
fn snippet(language: Language) -> &'static str {
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

/// Byte-level edits: positions are taken modulo the length, so any position is fine.
#[derive(Clone, Debug)]
enum Mutation {
    SetByte(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let inserted = prop_oneof![
        prop_oneof![
            Just("{"),
            Just("}"),
            Just("("),
            Just("\""),
            Just("/*"),
            Just("\n"),
            Just("\r"),
            Just("\r\n"),
            Just("é"),
            Just("🦀"),
            Just("fn "),
            Just("def "),
            Just("class "),
            Just("function "),
            Just("\u{2028}"),
        ]
        .prop_map(|piece| piece.as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte(at, byte)),
        (any::<usize>(), 0usize..100).prop_map(|(at, length)| Mutation::Delete(at, length)),
        (any::<usize>(), inserted).prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 0usize..100).prop_map(|(at, length)| Mutation::Duplicate(at, length)),
    ]
}

fn mutate(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for mutation in mutations {
        let at = |position: usize, bytes: &Vec<u8>| position % (bytes.len() + 1);
        match mutation {
            Mutation::SetByte(position, byte) => {
                if !bytes.is_empty() {
                    let index = position % bytes.len();
                    bytes[index] = *byte;
                }
            }
            Mutation::Delete(position, length) => {
                let start = at(*position, &bytes);
                let end = start.saturating_add(*length).min(bytes.len());
                bytes.drain(start..end);
            }
            Mutation::Insert(position, inserted) => {
                let start = at(*position, &bytes);
                bytes.splice(start..start, inserted.iter().copied());
            }
            Mutation::Duplicate(position, length) => {
                let start = at(*position, &bytes);
                let end = start.saturating_add(*length).min(bytes.len());
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
        }
    }
    bytes
}

/// File contents: raw bytes (mostly skipped as invalid UTF-8 or binary, as they should be), or
/// bytes that are UTF-8 but otherwise anything, which reach the parser.
fn file_bytes() -> impl Strategy<Value = Vec<u8>> {
    let utf8_piece = prop_oneof![
        6 => (0x20u8..0x7f).prop_map(|byte| vec![byte]),
        1 => prop_oneof![Just(b"\n".to_vec()), Just(b"\r".to_vec()), Just(b"\r\n".to_vec()), Just(b"\t".to_vec())],
        1 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
    ];
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..600),
        3 => proptest::collection::vec(utf8_piece, 0..400).prop_map(|pieces| pieces.concat()),
    ]
}

/// Indexes `bytes` as a file of `language` and checks every definition; returns the symbols
/// when the file was indexed.
fn check_file(language: Language, bytes: Vec<u8>) -> Result<Option<FileSymbols>, TestCaseError> {
    let SourceText::Text { text, .. } = text_from_bytes(bytes) else {
        return Ok(None);
    };
    let rope = Rope::from_str(&text);
    let Some(tree) = SyntaxTree::parse(language, &rope) else {
        return Ok(None);
    };
    let symbols = FileSymbols::from_tags(language, &tree.tags(&rope), &rope);
    for definition in &symbols.definitions {
        let name = definition.name_range();
        let range = definition.range_start as usize..definition.range_end as usize;
        for (what, range) in [("name", &name), ("range", &range)] {
            prop_assert!(
                range.start <= range.end && range.end <= text.len(),
                "{what} {range:?} outside the text"
            );
            prop_assert!(
                text.is_char_boundary(range.start) && text.is_char_boundary(range.end),
                "{what} {range:?} splits a character"
            );
        }
        prop_assert_eq!(&*definition.name, &text[name.clone()]);
        let line = rope.byte_to_line(name.start);
        let (stored_line, column_utf8, column_utf16) = definition.position.stored_parts();
        prop_assert_eq!(
            stored_line as usize,
            line,
            "the line of {:?}",
            definition.name
        );
        let before_name = &text[rope.line_to_byte(line)..name.start];
        prop_assert_eq!(column_utf8 as usize, before_name.len());
        prop_assert_eq!(column_utf16 as usize, before_name.encode_utf16().count());
        if let Some(container) = definition.container {
            let container = &symbols.definitions[container as usize];
            prop_assert!(
                container.range_start <= definition.range_start
                    && definition.range_end <= container.range_end
            );
        }
    }
    Ok(Some(symbols))
}

proptest! {
    #![proptest_config(fuzz_config(120))]

    #[test]
    fn fuzz_file_symbols_arbitrary_bytes_in_every_language(
        language in language(),
        bytes in file_bytes(),
    ) {
        check_file(language, bytes)?;
    }

    #[test]
    fn fuzz_file_symbols_mutated_snippets_and_their_cache(
        language in language(),
        mutations in proptest::collection::vec(mutation(), 1..8),
        damage in proptest::collection::vec(mutation(), 1..4),
    ) {
        let bytes = mutate(snippet(language).as_bytes(), &mutations);
        let Some(symbols) = check_file(language, bytes)? else {
            return Ok(());
        };
        let path = Path::new("src/fuzzed");
        let encoded = cache::encode(std::iter::once((path, &symbols)));
        let decoded = cache::decode(&encoded).expect("a cache just written decodes");
        prop_assert_eq!(decoded.get(path).map(|symbols| &**symbols), Some(&symbols));
        // A damaged cache is an error or some symbols, never a panic.
        let _ = cache::decode(&mutate(&encoded, &damage));
    }
}

/// Found by `fuzz_file_symbols_arbitrary_bytes_in_every_language` as a SIGSEGV (so proptest
/// could not save it): a Bash file holding `{` and then U+AF6B6 crashed tree-sitter-bash's
/// scanner, and with it the whole server, while indexing. Fixed in `syntax::tree`.
#[test]
fn fuzz_file_symbols_regression_bash_brace_before_a_supplementary_character() {
    let bytes = b"a|qA\n{\xf2\xaf\x9a\xb6\nf() { :; }\n".to_vec();
    let symbols = check_file(Language::Bash, bytes)
        .expect("sane symbols")
        .expect("indexed");
    let names: Vec<&str> = symbols
        .definitions
        .iter()
        .map(|definition| &*definition.name)
        .collect();
    assert_eq!(names, ["f"]);
}

/// Found by `fuzz_file_symbols_arbitrary_bytes_in_every_language` (seed 8) as a hang: the parse
/// of this TSX never ended. The parser now gives up and the file is skipped.
#[test]
fn fuzz_file_symbols_regression_tsx_that_never_finished_parsing() {
    let bytes = b"<rq'C._=~y:[z:U,l|{J|".to_vec();
    assert_eq!(
        check_file(Language::Tsx, bytes).expect("no bad symbols"),
        None
    );
}
