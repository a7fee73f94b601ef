//! Definitions, references, nesting and the repo map for every language's fixture in
//! `tests/index/<language>.txt`, snapshotted next to it.

use std::path::PathBuf;

use expect_test::expect_file;
use syntax::Language;

use super::{TestWorkspace, render_index};
use crate::MapFocus;

fn fixture_text(language: Language) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/index")
        .join(format!("{}.txt", language.name()));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

/// Indexes a language's fixture and renders its symbols plus the repo map focused on the last
/// file (the one that uses the others).
fn render_language(language: Language) -> String {
    let fixture = fixture_text(language);
    let workspace = TestWorkspace::new(&fixture);
    let index = workspace.index();
    let last = super::parse_fixture(&fixture)
        .last()
        .map(|(path, _)| path.clone())
        .expect("fixture has files");
    let focus = MapFocus {
        files: vec![workspace.path(&last)],
        ..MapFocus::default()
    };
    let map = index.repo_map(&focus, 1000, &|_| false);
    format!(
        "{}\nrepo map for {last}:\n{}",
        render_index(&index),
        map.text
    )
}

macro_rules! language_fixtures {
    ($($test:ident: $language:ident => $snapshot:literal,)*) => {
        $(
            #[test]
            fn $test() {
                expect_file![$snapshot].assert_eq(&render_language(Language::$language));
            }
        )*

        /// Every language has a fixture test above.
        #[test]
        fn every_language_has_a_fixture() {
            let covered = [$(Language::$language),*];
            for language in Language::ALL {
                assert!(covered.contains(&language), "no fixture test for {}", language.name());
            }
        }
    };
}

language_fixtures! {
    rust_symbols: Rust => "../../../../tests/index/rust.expect",
    python_symbols: Python => "../../../../tests/index/python.expect",
    typescript_symbols: TypeScript => "../../../../tests/index/typescript.expect",
    tsx_symbols: Tsx => "../../../../tests/index/tsx.expect",
    javascript_symbols: JavaScript => "../../../../tests/index/javascript.expect",
    go_symbols: Go => "../../../../tests/index/go.expect",
    c_symbols: C => "../../../../tests/index/c.expect",
    cpp_symbols: Cpp => "../../../../tests/index/cpp.expect",
    java_symbols: Java => "../../../../tests/index/java.expect",
    ruby_symbols: Ruby => "../../../../tests/index/ruby.expect",
    lua_symbols: Lua => "../../../../tests/index/lua.expect",
    bash_symbols: Bash => "../../../../tests/index/bash.expect",
}
