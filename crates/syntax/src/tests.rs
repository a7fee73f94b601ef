//! Data-driven tests: fixtures with `$0` cursors and `<sel>…</sel>` selections, rendered
//! results compared with `expect-test` snapshots (`UPDATE_EXPECT=1 cargo test -p syntax`
//! rewrites them).

mod dirty_regions;
mod fixture;
mod fuzz_markers;
mod fuzz_tags;
mod hostile;
mod incremental;
mod languages;
mod markers;
mod tag_strategies;

use crate::Language;

#[test]
fn every_language_loads_and_its_query_compiles() {
    let mut errors = Vec::new();
    for language in Language::ALL {
        let mut parser = tree_sitter::Parser::new();
        if let Err(error) = parser.set_language(&language.grammar()) {
            errors.push(format!("{}: {error}", language.name()));
        }
        if let Err(error) = crate::symbols::CompiledQuery::try_compile(language) {
            errors.push(format!("{} query: {error}", language.name()));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn languages_are_found_by_id_and_path() {
    let ids = [
        "rust",
        "python",
        "typescript",
        "typescriptreact",
        "javascript",
        "javascriptreact",
        "go",
        "c",
        "cpp",
        "java",
        "ruby",
        "lua",
        "sh",
        "bash",
        "shellscript",
        "markdown",
    ];
    let paths = [
        "a.rs",
        "a.py",
        "a.ts",
        "a.tsx",
        "a.js",
        "a.jsx",
        "a.mjs",
        "a.cjs",
        "a.go",
        "a.c",
        "a.h",
        "a.cc",
        "a.cpp",
        "a.cxx",
        "a.hpp",
        "a.hh",
        "a.java",
        "a.rb",
        "a.lua",
        "a.sh",
        "a.bash",
        "README.md",
        "Makefile",
    ];
    let mut rendered = String::new();
    for id in ids {
        let language = Language::from_language_id(id);
        rendered += &format!("{id} -> {:?}\n", language.map(Language::name));
    }
    for path in paths {
        let language = Language::from_path(std::path::Path::new(path));
        let comment = language.map(Language::line_comment);
        rendered += &format!("{path} -> {:?} {comment:?}\n", language.map(Language::name));
    }
    expect_test::expect![[r##"
        rust -> Some("rust")
        python -> Some("python")
        typescript -> Some("typescript")
        typescriptreact -> Some("tsx")
        javascript -> Some("javascript")
        javascriptreact -> Some("javascript")
        go -> Some("go")
        c -> Some("c")
        cpp -> Some("cpp")
        java -> Some("java")
        ruby -> Some("ruby")
        lua -> Some("lua")
        sh -> Some("bash")
        bash -> Some("bash")
        shellscript -> Some("bash")
        markdown -> None
        a.rs -> Some("rust") Some("//")
        a.py -> Some("python") Some("#")
        a.ts -> Some("typescript") Some("//")
        a.tsx -> Some("tsx") Some("//")
        a.js -> Some("javascript") Some("//")
        a.jsx -> Some("javascript") Some("//")
        a.mjs -> Some("javascript") Some("//")
        a.cjs -> Some("javascript") Some("//")
        a.go -> Some("go") Some("//")
        a.c -> Some("c") Some("//")
        a.h -> Some("c") Some("//")
        a.cc -> Some("cpp") Some("//")
        a.cpp -> Some("cpp") Some("//")
        a.cxx -> Some("cpp") Some("//")
        a.hpp -> Some("cpp") Some("//")
        a.hh -> Some("cpp") Some("//")
        a.java -> Some("java") Some("//")
        a.rb -> Some("ruby") Some("#")
        a.lua -> Some("lua") Some("--")
        a.sh -> Some("bash") Some("#")
        a.bash -> Some("bash") Some("#")
        README.md -> None None
        Makefile -> None None
    "##]]
    .assert_eq(&rendered);
}
