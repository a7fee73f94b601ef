//! Watched-file changes and saves, deletions, ignore rules and open buffers shadowing the disk.

use std::fs;

use syntax::{Language, SyntaxTree};
use text::Rope;

use super::TestWorkspace;
use crate::{IndexConfig, WorkspaceIndex};

const FIXTURE: &str = r#"
//- /.gitignore
target/
generated.rs
//- /src/lib.rs
pub fn library() {}
//- /src/generated.rs
pub fn generated() {}
//- /target/debug/build.rs
pub fn built() {}
//- /vendor/dep.rs
pub fn vendored() {}
//- /.hidden/secret.rs
pub fn hidden() {}
//- /notes.txt
not source
"#;

fn index_with_excludes(workspace: &TestWorkspace) -> WorkspaceIndex {
    let config = IndexConfig {
        exclude: vec!["**/vendor/**".into()],
        ..workspace.config()
    };
    let index = WorkspaceIndex::new(workspace.root.path().to_path_buf(), config);
    index.index_workspace(&|_, _| {});
    index
}

#[test]
fn the_walk_respects_gitignore_hidden_files_excludes_and_languages() {
    let workspace = TestWorkspace::new(FIXTURE);
    let index = index_with_excludes(&workspace);
    let names: Vec<String> = index
        .search("", 100, &Default::default())
        .into_iter()
        .map(|found| found.symbol.name)
        .collect();
    assert_eq!(names, ["library"]);
}

#[test]
fn saves_new_files_and_deletions_update_the_index() {
    let workspace = TestWorkspace::new(FIXTURE);
    let index = index_with_excludes(&workspace);
    let lib = workspace.path("src/lib.rs");

    fs::write(&lib, "pub fn library() {}\npub fn saved() {}\n").expect("save");
    index.reindex_file(&lib);
    assert_eq!(index.definitions("saved").len(), 1);

    let new_file = workspace.path("src/new.py");
    fs::write(&new_file, "def fresh():\n    pass\n").expect("create");
    index.reindex_file(&new_file);
    assert_eq!(index.definitions("fresh").len(), 1);

    fs::remove_file(&new_file).expect("delete");
    index.reindex_file(&new_file);
    assert!(index.definitions("fresh").is_empty());

    index.remove_file(&lib);
    assert!(index.definitions("library").is_empty());
    assert_eq!(index.report().files, 0);
}

#[test]
fn watched_changes_to_ignored_or_outside_files_stay_out() {
    let workspace = TestWorkspace::new(FIXTURE);
    let index = index_with_excludes(&workspace);
    for ignored in [
        "src/generated.rs",
        "target/debug/build.rs",
        "vendor/dep.rs",
        ".hidden/secret.rs",
        "notes.txt",
    ] {
        index.reindex_file(&workspace.path(ignored));
    }
    let outside = tempfile::tempdir().expect("outside dir");
    let outside_file = outside.path().join("outside.rs");
    fs::write(&outside_file, "pub fn outside() {}\n").expect("write");
    index.reindex_file(&outside_file);
    assert_eq!(index.report().files, 1);
}

#[test]
fn an_open_buffer_wins_over_the_disk_until_closed() {
    let workspace = TestWorkspace::new(FIXTURE);
    let index = index_with_excludes(&workspace);
    let lib = workspace.path("src/lib.rs");
    let rope = Rope::from_str("pub fn unsaved() {}\n");
    let tree = SyntaxTree::parse(Language::Rust, &rope).expect("parses");
    index.set_open_document(&lib, &rope, &tree);
    assert!(index.definitions("library").is_empty());
    assert_eq!(index.definitions("unsaved").len(), 1);
    assert_eq!(index.file_symbols(&lib).len(), 1);
    assert_eq!(index.report().files, 1, "an open file is counted once");

    // The repo map shows the buffer's text, not the disk's.
    let map = index.repo_map(&Default::default(), 100, &|_| false);
    assert!(map.text.contains("pub fn unsaved()"), "{}", map.text);

    index.close_document(&lib);
    assert_eq!(index.definitions("library").len(), 1);
    assert!(index.definitions("unsaved").is_empty());
}

#[test]
fn a_relative_root_is_made_absolute() {
    let index = WorkspaceIndex::new(
        ".".into(),
        IndexConfig {
            cache_dir: None,
            ..IndexConfig::default()
        },
    );
    assert!(index.root().is_absolute());
}

#[test]
fn progress_is_reported_and_ends_complete() {
    let workspace = TestWorkspace::new(FIXTURE);
    let index = WorkspaceIndex::new(workspace.root.path().to_path_buf(), workspace.config());
    let last = std::sync::Mutex::new((0, 0));
    index.index_workspace(&|done, total| *last.lock().expect("not poisoned") = (done, total));
    let (done, total) = *last.lock().expect("not poisoned");
    assert_eq!(done, total);
    assert!(done >= 1);
}

#[test]
fn directories_reported_by_the_editor_are_walked_or_dropped() {
    let workspace = TestWorkspace::new(FIXTURE);
    let index = index_with_excludes(&workspace);
    let package = workspace.path("src/package");
    fs::create_dir_all(package.join("deeper")).expect("mkdir");
    fs::write(package.join("one.rs"), "pub fn one() {}\n").expect("write");
    fs::write(package.join("deeper/two.rs"), "pub fn two() {}\n").expect("write");
    fs::write(
        package.join("generated.rs"),
        "pub fn ignored_by_gitignore() {}\n",
    )
    .expect("write");
    index.reindex_file(&package);
    assert_eq!(index.definitions("one").len(), 1);
    assert_eq!(index.definitions("two").len(), 1);
    assert!(index.definitions("ignored_by_gitignore").is_empty());

    fs::remove_dir_all(&package).expect("rm -r");
    index.reindex_file(&package);
    assert!(index.definitions("one").is_empty());
    assert!(index.definitions("two").is_empty());
    assert_eq!(
        index.definitions("library").len(),
        1,
        "files outside the directory stay"
    );
}
