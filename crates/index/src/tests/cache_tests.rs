//! The on-disk cache: a restart re-reads only what changed, and a damaged cache only costs a
//! rebuild.

use std::fs;
use std::time::{Duration, SystemTime};

use super::TestWorkspace;
use crate::WorkspaceIndex;
use crate::cache;

const FIXTURE: &str = r#"
//- /src/lib.rs
pub fn library() {}
//- /src/util.rs
pub fn utility() { library(); }
//- /scripts/build.py
def build():
    pass
"#;

/// Moves a file's modification time so a change is visible even within the timestamp
/// resolution of the file system.
fn bump_mtime(path: &std::path::Path, seconds: u64) {
    let file = fs::File::options()
        .write(true)
        .open(path)
        .expect("open for touching");
    file.set_modified(SystemTime::now() + Duration::from_secs(seconds))
        .expect("set mtime");
}

#[test]
fn a_restart_reparses_nothing() {
    let workspace = TestWorkspace::new(FIXTURE);
    let first = workspace.index().report();
    assert_eq!((first.files, first.parsed, first.from_cache), (3, 3, 0));

    let second = workspace.index().report();
    assert_eq!((second.files, second.parsed, second.from_cache), (3, 0, 3));
    assert_eq!(
        first.per_language, second.per_language,
        "the cache keeps every count"
    );
}

#[test]
fn a_changed_file_is_reparsed_and_an_unchanged_one_is_not() {
    let workspace = TestWorkspace::new(FIXTURE);
    workspace.index();

    let util = workspace.path("src/util.rs");
    fs::write(&util, "pub fn utility() {}\npub fn added() {}\n").expect("rewrite");
    bump_mtime(&util, 5);
    let index = workspace.index();
    let report = index.report();
    assert_eq!((report.parsed, report.from_cache), (1, 2));
    assert_eq!(index.definitions("added").len(), 1);

    // Touched but identical: the content hash matches, so nothing is parsed, and the new stamp
    // is remembered so the next start does not even read it.
    bump_mtime(&workspace.path("src/lib.rs"), 10);
    let report = workspace.index().report();
    assert_eq!((report.parsed, report.from_cache), (0, 3));
}

#[test]
fn a_deleted_file_leaves_the_index_and_the_cache() {
    let workspace = TestWorkspace::new(FIXTURE);
    workspace.index();
    fs::remove_file(workspace.path("scripts/build.py")).expect("delete");
    let index = workspace.index();
    assert_eq!(index.report().files, 2);
    assert!(index.definitions("build").is_empty());
    let after_restart = workspace.index().report();
    assert_eq!((after_restart.files, after_restart.parsed), (2, 0));
}

#[test]
fn a_second_run_in_the_same_process_uses_memory() {
    let workspace = TestWorkspace::new(FIXTURE);
    let index = workspace.index();
    let report = index.index_workspace(&|_, _| {});
    assert_eq!((report.parsed, report.from_cache), (0, 3));
}

#[test]
fn a_damaged_cache_means_a_rebuild() {
    let workspace = TestWorkspace::new(FIXTURE);
    workspace.index();
    let cache_file = cache::cache_file(workspace.cache.path(), workspace.root.path());
    let bytes = fs::read(&cache_file).expect("cache written");

    for damaged in [
        Vec::new(),
        b"garbage".to_vec(),
        bytes[..bytes.len() / 2].to_vec(),
        {
            let mut flipped = bytes.clone();
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0xff;
            flipped
        },
    ] {
        fs::write(&cache_file, &damaged).expect("damage the cache");
        let report = workspace.index().report();
        assert_eq!(report.files, 3);
        assert!(report.parsed == 3 || report.from_cache == 3, "{report:?}");
    }
}

#[test]
fn every_prefix_of_a_cache_decodes_or_fails_cleanly() {
    let workspace = TestWorkspace::new(FIXTURE);
    workspace.index();
    let bytes = fs::read(cache::cache_file(
        workspace.cache.path(),
        workspace.root.path(),
    ))
    .expect("cache written");
    let full = cache::decode(&bytes).expect("a complete cache decodes");
    assert_eq!(full.len(), 3);
    for length in 0..bytes.len() {
        assert!(
            cache::decode(&bytes[..length]).is_err(),
            "prefix of {length} bytes decoded"
        );
    }
}

#[test]
fn the_cache_round_trips_symbols_exactly() {
    let workspace = TestWorkspace::new(FIXTURE);
    let index = workspace.index();
    let bytes = cache::encode(
        index
            .files
            .iter()
            .map(|entry| {
                let relative = entry
                    .key()
                    .strip_prefix(workspace.root.path())
                    .expect("inside")
                    .to_path_buf();
                (relative, entry.value().clone())
            })
            .collect::<Vec<_>>()
            .iter()
            .map(|(path, symbols)| (path.as_path(), &**symbols)),
    );
    let decoded = cache::decode(&bytes).expect("decodes");
    for entry in index.files.iter() {
        let relative = entry
            .key()
            .strip_prefix(workspace.root.path())
            .expect("inside");
        assert_eq!(&**decoded.get(relative).expect("cached"), &**entry.value());
    }
}

#[test]
fn workspaces_do_not_share_a_cache() {
    let first = TestWorkspace::new(FIXTURE);
    let second = TestWorkspace::new("//- /other.rs\npub fn other() {}\n");
    let config = first.config();
    first.index();
    let index = WorkspaceIndex::new(second.root.path().to_path_buf(), config);
    let report = index.index_workspace(&|_, _| {});
    assert_eq!((report.files, report.parsed), (1, 1));
    assert_ne!(
        cache::cache_file(first.cache.path(), first.root.path()),
        cache::cache_file(first.cache.path(), second.root.path())
    );
}

#[test]
fn without_a_cache_directory_nothing_is_written() {
    let workspace = TestWorkspace::new(FIXTURE);
    let config = crate::IndexConfig {
        cache_dir: None,
        ..workspace.config()
    };
    let index = WorkspaceIndex::new(workspace.root.path().to_path_buf(), config);
    assert_eq!(index.index_workspace(&|_, _| {}).parsed, 3);
    assert!(
        fs::read_dir(workspace.cache.path())
            .expect("cache dir")
            .next()
            .is_none()
    );
}

#[test]
fn an_unchanged_warm_start_does_not_rewrite_the_cache() {
    let workspace = TestWorkspace::new(FIXTURE);
    workspace.index();
    let cache_file = cache::cache_file(workspace.cache.path(), workspace.root.path());
    let written = fs::metadata(&cache_file)
        .and_then(|metadata| metadata.modified())
        .expect("cache written");
    // Make a rewrite detectable regardless of timestamp resolution.
    fs::File::options()
        .write(true)
        .open(&cache_file)
        .expect("open")
        .set_modified(written - Duration::from_secs(60))
        .expect("age");
    let aged = fs::metadata(&cache_file)
        .and_then(|metadata| metadata.modified())
        .expect("metadata");
    workspace.index();
    assert_eq!(
        fs::metadata(&cache_file)
            .and_then(|metadata| metadata.modified())
            .expect("metadata"),
        aged
    );

    // A watched change marks it dirty; saving writes it and the next start is warm.
    let index = workspace.index();
    let lib = workspace.path("src/lib.rs");
    fs::write(&lib, "pub fn library() {}\npub fn library_two() {}\n").expect("write");
    bump_mtime(&lib, 3);
    index.reindex_file(&lib);
    index.save_cache().expect("saved");
    assert_ne!(
        fs::metadata(&cache_file)
            .and_then(|metadata| metadata.modified())
            .expect("metadata"),
        aged
    );
    let report = workspace.index().report();
    assert_eq!((report.parsed, report.from_cache), (0, 3));
}
