//! Data-driven tests: fixtures with `$0` cursors and `<sel>…</sel>` selections, rendered
//! results compared with `expect-test` snapshots.

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
