//! Tests of the index, written as data: fixtures in the `//- /path` format (one header line per
//! file) and snapshots of what the index renders for them.

mod cache_tests;
mod fuzz_file_symbols;
mod hostile_files;
mod incremental;
mod languages;
mod ranking;
mod watched_files;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::{IndexConfig, WorkspaceIndex};

/// Splits a fixture into (relative path, text) pairs.
pub(crate) fn parse_fixture(fixture: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in fixture.lines() {
        if let Some(path) = line.strip_prefix("//- /") {
            files.push((path.trim().to_owned(), String::new()));
        } else if let Some((_, text)) = files.last_mut() {
            text.push_str(line);
            text.push('\n');
        } else {
            assert!(
                line.trim().is_empty(),
                "fixture text before the first `//- /path` header: {line:?}"
            );
        }
    }
    files
}

/// Writes the fixture's files under `root`.
pub(crate) fn write_fixture(root: &Path, fixture: &str) {
    for (path, text) in parse_fixture(fixture) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().expect("fixture paths have a parent"))
            .expect("create fixture directory");
        std::fs::write(&path, text).expect("write fixture file");
    }
}

/// A temporary workspace with its own temporary cache directory.
pub(crate) struct TestWorkspace {
    pub(crate) root: tempfile::TempDir,
    pub(crate) cache: tempfile::TempDir,
}

impl TestWorkspace {
    pub(crate) fn new(fixture: &str) -> TestWorkspace {
        let root = tempfile::tempdir().expect("temporary workspace");
        let cache = tempfile::tempdir().expect("temporary cache");
        write_fixture(root.path(), fixture);
        TestWorkspace { root, cache }
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    pub(crate) fn config(&self) -> IndexConfig {
        IndexConfig {
            cache_dir: Some(self.cache.path().to_path_buf()),
            threads: 2,
            ..IndexConfig::default()
        }
    }

    /// A fresh index (as after a restart), indexed once.
    pub(crate) fn index(&self) -> WorkspaceIndex {
        let index = WorkspaceIndex::new(self.root.path().to_path_buf(), self.config());
        index.index_workspace(&|_, _| {});
        index
    }
}

/// Every file's definitions nested under their containers, and its references counted by name.
pub(crate) fn render_index(index: &WorkspaceIndex) -> String {
    let mut paths: Vec<PathBuf> = index
        .files
        .iter()
        .map(|entry| entry.key().clone())
        .collect();
    paths.sort();
    let mut out = String::new();
    for path in paths {
        let symbols = index
            .files
            .get(&path)
            .map(|entry| entry.value().clone())
            .expect("listed file");
        let relative = path.strip_prefix(index.root()).unwrap_or(&path);
        let _ = writeln!(out, "{} ({})", relative.display(), symbols.language.name());
        for definition in &symbols.definitions {
            let mut depth = 0;
            let mut container = definition.container;
            while let Some(parent) = container {
                depth += 1;
                container = symbols.definitions[parent as usize].container;
            }
            let _ = writeln!(
                out,
                "  {}{:?} {} @{}",
                "  ".repeat(depth),
                definition.kind,
                definition.name,
                definition.position.line() + 1
            );
        }
        if !symbols.references.is_empty() {
            let references: Vec<String> = symbols
                .references
                .iter()
                .map(|(name, count)| {
                    if *count == 1 {
                        name.to_string()
                    } else {
                        format!("{name}×{count}")
                    }
                })
                .collect();
            let _ = writeln!(out, "  references: {}", references.join(", "));
        }
    }
    out
}
