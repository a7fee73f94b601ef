//! Ranking: fuzzy symbol search order and the repo map's choice of files under a budget.

use std::fmt::Write;

use expect_test::{Expect, expect};

use super::TestWorkspace;
use crate::{MapFocus, SearchContext};

const SEARCH_FIXTURE: &str = r#"
//- /src/parser.rs
pub fn parse() {}
pub fn parse_file() {}
pub struct ParseError;
pub fn reparse() {}
pub fn prepare_statement() {}
pub fn unrelated() {}
//- /src/a/helpers.rs
pub fn helper() {}
pub fn helpers() {}
//- /src/b/helpers.rs
pub fn helper() {}
//- /src/c/helpers.rs
pub fn helper() {}
"#;

fn check_search(query: &str, context: &SearchContext, expect: Expect) {
    let workspace = TestWorkspace::new(SEARCH_FIXTURE);
    let index = workspace.index();
    let context = SearchContext {
        open_files: context
            .open_files
            .iter()
            .map(|path| workspace.path(&path.to_string_lossy()))
            .collect(),
        current_file: context
            .current_file
            .as_ref()
            .map(|path| workspace.path(&path.to_string_lossy())),
    };
    let mut out = String::new();
    for found in index.search(query, 10, &context) {
        let path = found
            .symbol
            .path
            .strip_prefix(workspace.root.path())
            .expect("inside the workspace");
        let _ = writeln!(
            out,
            "{:.2} {} {}:{}",
            found.score,
            found.symbol.name,
            path.display(),
            found.symbol.position.line() + 1
        );
    }
    expect.assert_eq(&out);
}

#[test]
fn exact_then_prefix_then_word_boundary_then_subsequence() {
    check_search(
        "parse",
        &SearchContext::default(),
        expect![[r#"
             440.17 parse src/parser.rs:1
             340.09 parse_file src/parser.rs:2
             300.09 ParseError src/parser.rs:3
             140.12 reparse src/parser.rs:4
             140.06 prepare_statement src/parser.rs:5
        "#]],
    );
    check_search(
        "pf",
        &SearchContext::default(),
        expect![[r#"
             240.09 parse_file src/parser.rs:2
        "#]],
    );
    check_search(
        "PE",
        &SearchContext::default(),
        expect![[r#"
             240.09 ParseError src/parser.rs:3
             100.17 parse src/parser.rs:1
             100.14 helper src/a/helpers.rs:1
             100.14 helper src/b/helpers.rs:1
             100.14 helper src/c/helpers.rs:1
             100.12 helpers src/a/helpers.rs:2
             100.12 reparse src/parser.rs:4
             100.09 parse_file src/parser.rs:2
             100.06 prepare_statement src/parser.rs:5
        "#]],
    );
}

#[test]
fn ties_favour_open_files_then_nearby_files_then_shorter_names() {
    check_search(
        "helper",
        &SearchContext {
            open_files: vec!["src/c/helpers.rs".into()],
            current_file: Some("src/b/other.rs".into()),
        },
        expect![[r#"
             462.14 helper src/c/helpers.rs:1
             444.14 helper src/b/helpers.rs:1
             442.14 helper src/a/helpers.rs:1
             342.12 helpers src/a/helpers.rs:2
        "#]],
    );
}

#[test]
fn empty_and_unmatched_queries() {
    let workspace = TestWorkspace::new(SEARCH_FIXTURE);
    let index = workspace.index();
    assert!(
        index
            .search("zzzq", 10, &SearchContext::default())
            .is_empty()
    );
    assert_eq!(
        index.search("", 3, &SearchContext::default()).len(),
        3,
        "an empty query lists symbols up to the limit"
    );
    assert!(
        index
            .search("parse", 0, &SearchContext::default())
            .is_empty()
    );
}

#[test]
fn definitions_are_found_by_exact_name() {
    let workspace = TestWorkspace::new(SEARCH_FIXTURE);
    let index = workspace.index();
    let found: Vec<String> = index
        .definitions("helper")
        .iter()
        .map(|symbol| {
            symbol
                .path
                .strip_prefix(workspace.root.path())
                .expect("inside")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        found,
        ["src/a/helpers.rs", "src/b/helpers.rs", "src/c/helpers.rs"]
    );
    assert!(
        index.definitions("Helper").is_empty(),
        "the fallback matches names exactly"
    );
}

const MAP_FIXTURE: &str = r#"
//- /src/main.rs
fn main() {
    load_settings();
    load_settings();
    load_settings();
    load_settings();
    render_output();
    let value = Settings::default();
}
//- /src/settings.rs
pub struct Settings {
    pub verbose: bool,
}
pub fn load_settings() -> Settings {
    Settings { verbose: false }
}
//- /src/output.rs
pub fn render_output() {
    write_line();
}
pub fn write_line() {}
//- /src/unrelated.rs
pub fn unrelated_function() {}
pub fn other_unrelated_function() { unrelated_function(); }
//- /secrets/keys.rs
pub fn secret_key_material() {}
fn use_it() { load_settings(); }
"#;

fn map_for(focus: &MapFocus, budget: usize, skip_secrets: bool) -> (TestWorkspace, crate::RepoMap) {
    let workspace = TestWorkspace::new(MAP_FIXTURE);
    let index = workspace.index();
    let focus = MapFocus {
        files: focus
            .files
            .iter()
            .map(|path| workspace.path(&path.to_string_lossy()))
            .collect(),
        lines: focus
            .lines
            .iter()
            .map(|(path, line)| (workspace.path(&path.to_string_lossy()), *line))
            .collect(),
        names: focus.names.clone(),
    };
    let skip = |path: &std::path::Path| {
        skip_secrets && path.components().any(|part| part.as_os_str() == "secrets")
    };
    let map = index.repo_map(&focus, budget, &skip);
    (workspace, map)
}

#[test]
fn the_file_referenced_most_by_the_focus_ranks_first() {
    let focus = MapFocus {
        files: vec!["src/main.rs".into()],
        ..MapFocus::default()
    };
    let (workspace, map) = map_for(&focus, 1000, true);
    assert_eq!(
        map.files.first(),
        Some(&workspace.path("src/settings.rs")),
        "{}",
        map.text
    );
    expect![[r#"
        src/settings.rs:
             1│ pub struct Settings {
             2│     pub verbose: bool,
             4│ pub fn load_settings() -> Settings {
        src/output.rs:
             1│ pub fn render_output() {
             4│ pub fn write_line() {}
        src/unrelated.rs:
             1│ pub fn unrelated_function() {}
             2│ pub fn other_unrelated_function() { unrelated_function(); }
        src/main.rs:
             1│ fn main() {
    "#]]
    .assert_eq(&map.text);
}

#[test]
fn names_in_the_instruction_pull_their_files_in() {
    let focus = MapFocus {
        files: vec!["src/main.rs".into()],
        names: vec!["unrelated_function".into()],
        ..MapFocus::default()
    };
    let (workspace, map) = map_for(&focus, 1000, true);
    assert_eq!(
        map.files.first(),
        Some(&workspace.path("src/unrelated.rs")),
        "{}",
        map.text
    );
}

#[test]
fn skipped_files_never_appear() {
    let focus = MapFocus {
        files: vec!["secrets/keys.rs".into()],
        ..MapFocus::default()
    };
    let (_workspace, map) = map_for(&focus, 1000, true);
    assert!(!map.text.contains("secret"), "{}", map.text);
    assert!(
        map.files
            .iter()
            .all(|path| !path.to_string_lossy().contains("secrets"))
    );
    let (_workspace, unskipped) = map_for(&focus, 1000, false);
    assert!(
        unskipped.text.contains("secret_key_material"),
        "without skip the file is there: {}",
        unskipped.text
    );
}

#[test]
fn the_budget_is_respected() {
    let focus = MapFocus {
        lines: vec![("src/main.rs".into(), 1)],
        ..MapFocus::default()
    };
    let (_workspace, full) = map_for(&focus, 10_000, true);
    let mut previous_length = full.text.len();
    for budget in [60, 30, 15, 8, 0] {
        let (_workspace, map) = map_for(&focus, budget, true);
        assert!(
            map.tokens <= budget,
            "{} tokens over a budget of {budget}:\n{}",
            map.tokens,
            map.text
        );
        assert_eq!(map.tokens, map.text.chars().count().div_ceil(4));
        assert!(map.text.len() <= previous_length);
        previous_length = map.text.len();
    }
    assert_eq!(map_for(&focus, 0, true).1.text, "");
}

/// Keeping only the best `limit` while scanning gives the same answer as ranking everything.
#[test]
fn a_small_limit_returns_the_head_of_the_full_ranking() {
    let mut fixture = String::new();
    for file in 0..6 {
        fixture.push_str(&format!("//- /src/dir{}/file{file}.rs\n", file % 3));
        for definition in 0..80 {
            fixture.push_str(&format!(
                "pub fn handle_request_{definition}() {{}}\npub struct HandlerRegistry{definition};\npub fn rehash_{file}_{definition}() {{}}\n"
            ));
        }
    }
    let workspace = TestWorkspace::new(&fixture);
    let index = workspace.index();
    let context = SearchContext {
        open_files: vec![workspace.path("src/dir1/file4.rs")],
        current_file: Some(workspace.path("src/dir2/file2.rs")),
    };
    for query in ["h", "hr", "HR", "handle_request_1", "rh", "re", ""] {
        let everything: Vec<_> = index.search(query, 100_000, &context);
        for limit in [1, 7, 50, 333] {
            let head = index.search(query, limit, &context);
            assert_eq!(
                head,
                everything[..limit.min(everything.len())],
                "{query:?} with limit {limit}"
            );
        }
    }
}
