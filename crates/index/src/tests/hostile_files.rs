//! Hostile files: binary, invalid UTF-8, huge, a megabyte on one line, deep nesting. Each is
//! skipped with a reason or indexed, never a crash.

use std::fs;
use std::io::Write;

use super::TestWorkspace;
use crate::MapFocus;

#[test]
fn binary_invalid_and_huge_files_are_skipped_with_a_reason() {
    let workspace = TestWorkspace::new("//- /src/ok.rs\npub fn fine() {}\n");
    fs::write(workspace.path("src/binary.rs"), b"fn a() {}\0\x01\x02").expect("write");
    fs::write(workspace.path("src/latin1.rs"), b"fn caf\xe9() {}\n").expect("write");
    // 50 MB, generated here and never committed.
    let mut huge = fs::File::create(workspace.path("src/huge.rs")).expect("create");
    let line = "pub fn generated_function() { let x = 1; }\n".repeat(1000);
    while huge.metadata().expect("metadata").len() < 50 * 1024 * 1024 {
        huge.write_all(line.as_bytes()).expect("write");
    }
    drop(huge);

    let index = workspace.index();
    let report = index.report();
    assert_eq!(report.files, 1);
    let reasons: Vec<(String, String)> = report
        .skipped
        .iter()
        .map(|(path, reason)| {
            (
                path.file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
                reason.clone(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("binary.rs".to_owned(), "binary".to_owned()),
            ("huge.rs".to_owned(), "larger than 1048576 bytes".to_owned()),
            ("latin1.rs".to_owned(), "not valid UTF-8".to_owned()),
        ]
    );
    assert!(report.render(false).contains("skipped"));
    let json: serde_json::Value = serde_json::from_str(&report.render(true)).expect("valid JSON");
    assert_eq!(json["files"], 1);

    // A watched change hits the same limits.
    index.reindex_file(&workspace.path("src/latin1.rs"));
    assert_eq!(index.report().skipped.len(), 3);
    fs::write(workspace.path("src/latin1.rs"), "fn cafe() {}\n").expect("fix the file");
    index.reindex_file(&workspace.path("src/latin1.rs"));
    assert_eq!(index.report().skipped.len(), 2);
    assert_eq!(index.definitions("cafe").len(), 1);
}

#[test]
fn a_megabyte_on_one_line_is_indexed_and_cut_in_the_map() {
    let mut source = String::from("pub fn first() {} ");
    while source.len() < 1_000_000 {
        source.push_str("pub fn filler() { call(1, 2); } ");
    }
    let workspace = TestWorkspace::new("//- /main.rs\nfn main() { first(); }\n");
    fs::write(workspace.path("long.rs"), &source).expect("write");
    let index = workspace.index();
    assert!(index.report().skipped.is_empty());
    assert_eq!(index.definitions("first").len(), 1);
    let map = index.repo_map(
        &MapFocus {
            files: vec![workspace.path("main.rs")],
            ..Default::default()
        },
        500,
        &|_| false,
    );
    assert!(map.tokens <= 500);
    let longest = map
        .text
        .lines()
        .map(|line| line.chars().count())
        .max()
        .unwrap_or(0);
    assert!(longest < 200, "signature lines are cut: {longest} chars");
}

#[test]
fn deeply_nested_code_does_not_overflow() {
    let depth = 3000;
    let mut source = String::new();
    for level in 0..depth {
        source.push_str(&format!("function f{level}() {{\n"));
    }
    source.push_str(&"}\n".repeat(depth));
    let mut blocks = String::from("fn deep() ");
    blocks.push_str(&"{".repeat(20_000));
    blocks.push_str(&"}".repeat(20_000));
    let workspace = TestWorkspace::new("//- /keep.rs\nfn keep() {}\n");
    fs::write(workspace.path("nested.js"), &source).expect("write");
    fs::write(workspace.path("blocks.rs"), &blocks).expect("write");
    let index = workspace.index();
    assert_eq!(index.report().files, 3);
    let nested = index.definitions("f2999");
    assert_eq!(nested.len(), 1);
    assert_eq!(nested[0].container.as_deref(), Some("f2998"));
    assert!(!index.search("f29", 20, &Default::default()).is_empty());
    let map = index.repo_map(&MapFocus::default(), 200, &|_| false);
    assert!(map.tokens <= 200);
}
