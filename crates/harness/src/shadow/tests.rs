//! Shadow seeding, re-syncing and diffing on real directories under the system temp dir.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Shadow, ShadowOptions};
use crate::changes::{Change, Limits, Refusal};

struct Fixture {
    base: PathBuf,
    workspace: PathBuf,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn fixture(files: &[(&str, &str)]) -> Fixture {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir().join(format!(
        "baton-shadow-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&base);
    let workspace = base.join("project");
    let dir = base.join("state/shadows");
    fs::create_dir_all(&workspace).unwrap();
    for (path, text) in files {
        write(&workspace, path, text);
    }
    // Files written in the last few milliseconds are "racily clean" and get re-checked by
    // content; letting the clock move on makes the counts below exact.
    settle();
    Fixture {
        base,
        workspace,
        dir,
    }
}

fn settle() {
    std::thread::sleep(Duration::from_millis(60));
}

fn write(root: &Path, path: &str, text: &str) {
    write_bytes(root, path, text.as_bytes());
}

fn write_bytes(root: &Path, path: &str, bytes: &[u8]) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn read(root: &Path, path: &str) -> Option<String> {
    fs::read_to_string(root.join(path)).ok()
}

fn options(fixture: &Fixture, overlay: Vec<(PathBuf, String)>) -> ShadowOptions {
    ShadowOptions {
        workspace: fixture.workspace.clone(),
        dir: fixture.dir.clone(),
        overlay,
        exclude: Arc::new(|path: &Path| {
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("");
            name == ".env" || name.ends_with(".pem")
        }),
        limits: Limits {
            max_file_bytes: 1000,
        },
    }
}

fn prepare(fixture: &Fixture) -> (Shadow, super::SyncStats) {
    Shadow::prepare(&options(fixture, Vec::new())).unwrap()
}

/// Every file under `root` (symlinks as `-> target`), relative, for whole-tree assertions.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in fs::read_dir(&directory).unwrap() {
            let entry = entry.unwrap();
            let key = entry
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                let target = fs::read_link(entry.path()).unwrap();
                out.insert(key, format!("-> {}", target.display()));
            } else if kind.is_dir() {
                pending.push(entry.path());
            } else {
                out.insert(key, fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
    }
    out
}

fn keys(map: &BTreeMap<String, String>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

#[test]
fn seeding_copies_non_ignored_files_and_leaves_out_ignored_excluded_and_git() {
    let fixture = fixture(&[
        (".gitignore", "target/\n*.log\n"),
        ("src/lib.rs", "pub fn a() {}\n"),
        ("src/nested/.gitignore", "generated.rs\n"),
        ("src/nested/generated.rs", "// generated\n"),
        ("src/nested/kept.rs", "// kept\n"),
        ("target/debug/out.rs", "// build output\n"),
        ("run.log", "log\n"),
        (".env", "SECRET=1\n"),
        ("keys/server.pem", "-----BEGIN-----\n"),
        (".cargo/config.toml", "[build]\n"),
        (".git/HEAD", "ref: refs/heads/main\n"),
        (".git/info/exclude", "local-only.txt\n"),
        ("local-only.txt", "mine\n"),
    ]);
    let (shadow, stats) = prepare(&fixture);
    assert!(stats.seeded);
    assert_eq!(stats.copied, 5);
    assert_eq!(stats.files, 5);
    let copied = tree(shadow.root());
    assert_eq!(
        keys(&copied),
        [
            ".cargo/config.toml",
            ".gitignore",
            "src/lib.rs",
            "src/nested/.gitignore",
            "src/nested/kept.rs"
        ]
    );
    assert_eq!(copied["src/lib.rs"], "pub fn a() {}\n");
    // The copy lives in the state directory, named after the workspace.
    assert!(
        shadow
            .root()
            .starts_with(fs::canonicalize(&fixture.dir).unwrap())
    );
    assert!(shadow.root().ends_with("project"));
    assert!(shadow.changes().is_empty());
}

#[test]
fn unsaved_buffers_win_over_the_disk_and_new_buffers_are_added() {
    let fixture = fixture(&[
        (".gitignore", "target/\n"),
        ("src/lib.rs", "on disk\n"),
        ("target/x.rs", "ignored\n"),
    ]);
    let overlay = vec![
        (
            fixture.workspace.join("src/lib.rs"),
            "unsaved\n".to_string(),
        ),
        (
            fixture.workspace.join("src/new.rs"),
            "brand new\n".to_string(),
        ),
        (
            fixture.workspace.join("target/x.rs"),
            "unsaved ignored\n".to_string(),
        ),
        (fixture.workspace.join(".env"), "SECRET=2\n".to_string()),
        (fixture.base.join("elsewhere.rs"), "outside\n".to_string()),
    ];
    let (shadow, _) = Shadow::prepare(&options(&fixture, overlay.clone())).unwrap();
    let copied = tree(shadow.root());
    assert_eq!(keys(&copied), [".gitignore", "src/lib.rs", "src/new.rs"]);
    assert_eq!(copied["src/lib.rs"], "unsaved\n");
    assert_eq!(copied["src/new.rs"], "brand new\n");
    assert!(shadow.changes().is_empty());

    // The base of an overlaid file is the buffer's text, not the disk's.
    write(shadow.root(), "src/lib.rs", "agent\n");
    assert_eq!(
        shadow.changes(),
        [Change::Modified {
            path: "src/lib.rs".into(),
            base: "unsaved\n".into(),
            new: "agent\n".into(),
        }]
    );
    drop(shadow);

    // Next task: the buffer was saved and closed, so the disk's text comes back.
    let (shadow, stats) = prepare(&fixture);
    assert!(!stats.seeded);
    assert_eq!(
        read(shadow.root(), "src/lib.rs").as_deref(),
        Some("on disk\n")
    );
    assert_eq!(read(shadow.root(), "src/new.rs"), None);
}

#[test]
fn resync_copies_only_what_changed_in_the_workspace() {
    let fixture = fixture(&[
        ("a.rs", "a\n"),
        ("b.rs", "b\n"),
        ("c/d.rs", "d\n"),
        ("c/e.rs", "e\n"),
    ]);
    let (shadow, stats) = prepare(&fixture);
    assert_eq!(stats.copied, 4);
    drop(shadow);

    write(&fixture.workspace, "b.rs", "b changed\n");
    fs::remove_file(fixture.workspace.join("c/e.rs")).unwrap();
    write(&fixture.workspace, "f.rs", "f\n");
    settle();
    let (shadow, stats) = prepare(&fixture);
    assert!(!stats.seeded);
    assert_eq!((stats.copied, stats.removed, stats.files), (2, 1, 4));
    let copied = tree(shadow.root());
    assert_eq!(keys(&copied), ["a.rs", "b.rs", "c/d.rs", "f.rs"]);
    assert_eq!(copied["b.rs"], "b changed\n");
    assert!(shadow.changes().is_empty());
    drop(shadow);

    // Same size, same second: only the stamp's nanoseconds and the content differ.
    write(&fixture.workspace, "a.rs", "A\n");
    settle();
    let (shadow, _) = prepare(&fixture);
    assert_eq!(read(shadow.root(), "a.rs").as_deref(), Some("A\n"));
}

#[test]
fn resync_resets_what_the_last_agent_changed_created_and_deleted() {
    let fixture = fixture(&[
        (".gitignore", "target/\n"),
        ("a.rs", "a\n"),
        ("b.rs", "b\n"),
        ("dir/c.rs", "c\n"),
    ]);
    let (shadow, _) = prepare(&fixture);
    settle();
    let root = shadow.root().to_path_buf();
    write(&root, "a.rs", "agent wrote this\n");
    fs::remove_file(root.join("b.rs")).unwrap();
    write(&root, "new/created.rs", "agent created\n");
    write(&root, "target/debug/build.o", "build output\n");
    write(&root, ".gitignore", "target/\nnew/\n");
    write(&root, ".git/HEAD", "ref: refs/heads/agent\n");
    // A directory replaced by a file.
    fs::remove_dir_all(root.join("dir")).unwrap();
    write(&root, "dir", "a file now\n");
    drop(shadow);

    let (shadow, stats) = prepare(&fixture);
    assert!(!stats.seeded);
    let copied = tree(shadow.root());
    assert_eq!(copied["a.rs"], "a\n");
    assert_eq!(copied["b.rs"], "b\n");
    assert_eq!(copied["dir/c.rs"], "c\n");
    assert_eq!(copied[".gitignore"], "target/\n");
    // The agent's file is gone even though its edited .gitignore ignored it; its build output
    // (ignored by the workspace's rules) stays for the next build.
    assert!(!copied.contains_key("new/created.rs"));
    assert_eq!(copied["target/debug/build.o"], "build output\n");
    assert!(!copied.contains_key(".git/HEAD"));
    assert!(stats.removed >= 1);
    assert!(shadow.changes().is_empty());
}

#[test]
fn changes_reports_modified_created_deleted_and_renamed() {
    let body = (0..40).map(|n| format!("line {n}\n")).collect::<String>();
    let fixture = fixture(&[
        (".gitignore", "target/\n"),
        ("src/edit.rs", "fn old() {}\n"),
        ("src/gone.rs", "fn gone() {}\n"),
        ("src/moved.rs", "fn moved() {}\n"),
        ("src/moved_and_edited.rs", &body),
        ("src/touched.rs", "same\n"),
    ]);
    let (shadow, _) = prepare(&fixture);
    // Past the racy window, created files are found only through directory stamps.
    settle();
    let root = shadow.root();
    write(root, "src/edit.rs", "fn new() {}\n");
    fs::remove_file(root.join("src/gone.rs")).unwrap();
    fs::rename(root.join("src/moved.rs"), root.join("src/renamed.rs")).unwrap();
    fs::remove_file(root.join("src/moved_and_edited.rs")).unwrap();
    let edited = body.replace("line 3\n", "line three\n");
    write(root, "lib/moved_and_edited.rs", &edited);
    write(root, "src/brand_new.rs", "fn brand_new() {}\n");
    write(root, "target/debug/out.rs", "ignored output\n");
    // Rewritten with the same content: not a change.
    write(root, "src/touched.rs", "same\n");

    assert_eq!(
        shadow.changes(),
        [
            Change::Renamed {
                from: "src/moved_and_edited.rs".into(),
                to: "lib/moved_and_edited.rs".into(),
                base: body.clone(),
                new: edited,
            },
            Change::Created {
                path: "src/brand_new.rs".into(),
                text: "fn brand_new() {}\n".into(),
            },
            Change::Modified {
                path: "src/edit.rs".into(),
                base: "fn old() {}\n".into(),
                new: "fn new() {}\n".into(),
            },
            Change::Deleted {
                path: "src/gone.rs".into(),
                base: "fn gone() {}\n".into(),
            },
            Change::Renamed {
                from: "src/moved.rs".into(),
                to: "src/renamed.rs".into(),
                base: "fn moved() {}\n".into(),
                new: "fn moved() {}\n".into(),
            },
        ]
    );
    // The workspace is untouched.
    assert_eq!(
        read(&fixture.workspace, "src/edit.rs").as_deref(),
        Some("fn old() {}\n")
    );
    assert!(fixture.workspace.join("src/gone.rs").exists());
}

#[test]
fn binary_too_large_and_symlinks_are_refused() {
    let fixture = fixture(&[("text.rs", "text\n"), ("was_text.rs", "text\n")]);
    let (shadow, _) = prepare(&fixture);
    let root = shadow.root();
    write_bytes(root, "image.png", b"\x89PNG\0\0binary");
    write_bytes(root, "latin1.txt", b"caf\xe9\n");
    write(root, "big.txt", &"x".repeat(1001));
    write_bytes(root, "was_text.rs", b"now\0binary");
    write(root, "text.rs", &"y".repeat(2000));
    let outside = fixture.base.join("outside.txt");
    fs::write(&outside, "outside\n").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
    std::os::unix::fs::symlink("text.rs", root.join("inside")).unwrap();

    assert_eq!(
        shadow.changes(),
        [
            Change::Refused {
                path: "big.txt".into(),
                reason: Refusal::TooLarge { bytes: 1001 },
            },
            Change::Refused {
                path: "escape".into(),
                reason: Refusal::OutsideWorkspace { target: outside },
            },
            Change::Refused {
                path: "image.png".into(),
                reason: Refusal::Binary,
            },
            Change::Refused {
                path: "inside".into(),
                reason: Refusal::Symlink {
                    target: "text.rs".into(),
                },
            },
            Change::Refused {
                path: "latin1.txt".into(),
                reason: Refusal::Binary,
            },
            Change::Refused {
                path: "text.rs".into(),
                reason: Refusal::TooLarge { bytes: 2000 },
            },
            Change::Refused {
                path: "up".into(),
                reason: Refusal::OutsideWorkspace {
                    target: "../../..".into(),
                },
            },
            Change::Refused {
                path: "was_text.rs".into(),
                reason: Refusal::Binary,
            },
        ]
    );
}

#[test]
fn workspace_symlinks_are_copied_only_when_they_stay_inside() {
    let fixture = fixture(&[("src/real.rs", "real\n")]);
    let outside = fixture.base.join("secret.txt");
    fs::write(&outside, "secret\n").unwrap();
    let ws = &fixture.workspace;
    std::os::unix::fs::symlink("real.rs", ws.join("src/relative.rs")).unwrap();
    std::os::unix::fs::symlink(ws.join("src/real.rs"), ws.join("absolute.rs")).unwrap();
    std::os::unix::fs::symlink(&outside, ws.join("out.txt")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", ws.join("up.txt")).unwrap();

    let (shadow, stats) = prepare(&fixture);
    let copied = tree(shadow.root());
    assert_eq!(copied["src/relative.rs"], "-> real.rs");
    // An absolute link into the workspace is made relative: in the shadow it must lead to the
    // copy, never to the real file.
    assert_eq!(copied["absolute.rs"], "-> src/real.rs");
    assert_eq!(
        read(shadow.root(), "absolute.rs").as_deref(),
        Some("real\n")
    );
    assert!(!copied.contains_key("out.txt") && !copied.contains_key("up.txt"));
    assert_eq!(
        stats.skipped,
        [
            (
                "out.txt".into(),
                Refusal::OutsideWorkspace { target: outside }
            ),
            (
                "up.txt".into(),
                Refusal::OutsideWorkspace {
                    target: "../secret.txt".into()
                }
            ),
        ]
    );
    assert!(shadow.changes().is_empty());
}

#[test]
fn writing_to_the_shadow_never_changes_the_workspace() {
    let fixture = fixture(&[("a.rs", "original\n")]);
    let (shadow, _) = prepare(&fixture);
    let copy = shadow.root().join("a.rs");
    let real = fixture.workspace.join("a.rs");
    use std::os::unix::fs::MetadataExt;
    assert_ne!(
        fs::metadata(&copy).unwrap().ino(),
        fs::metadata(&real).unwrap().ino()
    );
    assert_eq!(fs::metadata(&real).unwrap().nlink(), 1);
    // In place, through an open handle, as an agent's editor would.
    let mut file = fs::OpenOptions::new().append(true).open(&copy).unwrap();
    std::io::Write::write_all(&mut file, b"appended\n").unwrap();
    drop(file);
    assert_eq!(fs::read_to_string(&real).unwrap(), "original\n");
}

#[test]
fn a_corrupt_or_foreign_manifest_means_a_fresh_seed() {
    let fixture = fixture(&[("a.rs", "a\n"), ("b.rs", "b\n")]);
    let (shadow, _) = prepare(&fixture);
    let root = shadow.root().to_path_buf();
    write(&root, "stray.rs", "left by an agent\n");
    drop(shadow);
    let manifest = fs::canonicalize(&fixture.dir)
        .unwrap()
        .join("0/manifest.json");
    assert!(manifest.exists());

    fs::write(&manifest, "{ not json").unwrap();
    let (shadow, stats) = prepare(&fixture);
    assert!(stats.seeded);
    assert_eq!(stats.copied, 2);
    assert_eq!(keys(&tree(shadow.root())), ["a.rs", "b.rs"]);
    drop(shadow);

    // A well-formed manifest naming a path outside the shadow is not trusted either.
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, text.replace("\"a.rs\"", "\"../../escape.rs\"")).unwrap();
    let (_, stats) = prepare(&fixture);
    assert!(stats.seeded);
}

#[test]
fn concurrent_tasks_get_separate_shadows_and_later_ones_reuse_slot_zero() {
    let fixture = fixture(&[("a.rs", "a\n")]);
    let (first, _) = prepare(&fixture);
    let (second, stats) = prepare(&fixture);
    assert!(stats.seeded);
    assert_ne!(first.root(), second.root());
    write(second.root(), "a.rs", "second task\n");
    assert!(first.changes().is_empty());
    assert_eq!(second.changes().len(), 1);
    let first_root = first.root().to_path_buf();
    drop(first);
    drop(second);
    let (third, stats) = prepare(&fixture);
    assert_eq!(third.root(), first_root);
    assert!(!stats.seeded);
    assert_eq!(stats.copied, 0);
}

#[test]
fn a_base_that_changed_on_disk_is_refused_unless_it_was_already_read() {
    let fixture = fixture(&[("a.rs", "a\n"), ("b.rs", "b\n")]);
    let (shadow, _) = prepare(&fixture);
    // a.rs: the agent's change is seen before the user saves: its base is kept.
    write(shadow.root(), "a.rs", "agent a\n");
    assert_eq!(shadow.changes().len(), 1);
    write(&fixture.workspace, "a.rs", "user saved a\n");
    // b.rs: the user saves before the agent's change is seen: the base is unknown.
    write(&fixture.workspace, "b.rs", "user saved b\n");
    write(shadow.root(), "b.rs", "agent b\n");
    assert_eq!(
        shadow.changes(),
        [
            Change::Modified {
                path: "a.rs".into(),
                base: "a\n".into(),
                new: "agent a\n".into(),
            },
            Change::Refused {
                path: "b.rs".into(),
                reason: Refusal::BaseUnavailable,
            },
        ]
    );
}

#[test]
fn paths_behind_a_symlinked_directory_are_never_read() {
    let fixture = fixture(&[("src/lib.rs", "mine\n")]);
    let elsewhere = fixture.base.join("elsewhere");
    write(&elsewhere, "lib.rs", "somebody else's\n");
    let (shadow, _) = prepare(&fixture);
    let root = shadow.root();
    fs::remove_dir_all(root.join("src")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join("src")).unwrap();
    assert_eq!(
        shadow.changes(),
        [
            Change::Refused {
                path: "src".into(),
                reason: Refusal::OutsideWorkspace {
                    target: elsewhere.clone()
                },
            },
            Change::Deleted {
                path: "src/lib.rs".into(),
                base: "mine\n".into(),
            },
        ]
    );
    drop(shadow);
    // Re-syncing replaces the link with a real directory and never writes through it.
    let (shadow, _) = prepare(&fixture);
    assert_eq!(
        read(&elsewhere, "lib.rs").as_deref(),
        Some("somebody else's\n")
    );
    assert!(
        fs::symlink_metadata(shadow.root().join("src"))
            .unwrap()
            .is_dir()
    );
    assert_eq!(read(shadow.root(), "src/lib.rs").as_deref(), Some("mine\n"));
}

#[test]
fn created_files_the_agent_never_saw_are_not_landed_over_real_ones() {
    let fixture = fixture(&[
        (".gitignore", "*.tmp\n"),
        ("a.rs", "a\n"),
        (".env", "REAL=1\n"),
    ]);
    let (shadow, _) = prepare(&fixture);
    write(shadow.root(), ".env", "AGENT=1\n");
    write(shadow.root(), "scratch.tmp", "ignored\n");
    assert_eq!(
        shadow.changes(),
        [Change::Refused {
            path: ".env".into(),
            reason: Refusal::NotInShadow,
        }]
    );
}

/// A tiny deterministic generator, so the property test needs no extra dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % below as u64) as usize
    }
}

/// Property: applying `changes()` to the base reproduces the shadow exactly, whatever mix of
/// edits, creations, deletions and moves the agent made.
#[test]
fn applying_the_changes_to_the_base_reproduces_the_shadow() {
    let initial: Vec<(String, String)> = (0..12)
        .map(|n| {
            let body = (0..(n % 4 + 2))
                .map(|line| format!("file {n} line {line}\n"))
                .collect::<String>();
            (format!("d{}/f{n}.rs", n % 3), body)
        })
        .collect();
    for seed in 0..12u64 {
        let files: Vec<(&str, &str)> = initial
            .iter()
            .map(|(path, text)| (path.as_str(), text.as_str()))
            .collect();
        let fixture = fixture(&files);
        let (shadow, _) = prepare(&fixture);
        if seed % 2 == 0 {
            settle();
        }
        let root = shadow.root().to_path_buf();
        let mut random = Lcg(seed + 1);
        for step in 0..8 {
            let current: Vec<String> = tree(&root).into_keys().collect();
            let pick = |random: &mut Lcg| current[random.next(current.len())].clone();
            match random.next(4) {
                0 if !current.is_empty() => {
                    let path = pick(&mut random);
                    let mut text = read(&root, &path).unwrap();
                    text.push_str(&format!("edit {step}\n"));
                    write(&root, &path, &text);
                }
                1 => write(
                    &root,
                    &format!("d{}/new{step}.rs", random.next(4)),
                    &format!("created {seed} {step}\n"),
                ),
                2 if !current.is_empty() => fs::remove_file(root.join(pick(&mut random))).unwrap(),
                _ if !current.is_empty() => {
                    let from = pick(&mut random);
                    let to = format!("moved/{step}.rs");
                    fs::create_dir_all(root.join("moved")).unwrap();
                    fs::rename(root.join(&from), root.join(to)).unwrap();
                }
                _ => {}
            }
        }
        let mut expected: BTreeMap<String, String> = initial.iter().cloned().collect();
        for change in shadow.changes() {
            let key = |path: &Path| path.to_string_lossy().into_owned();
            match change {
                Change::Modified { path, base, new } => {
                    assert_eq!(expected.insert(key(&path), new), Some(base));
                }
                Change::Created { path, text } => {
                    assert_eq!(expected.insert(key(&path), text), None);
                }
                Change::Deleted { path, base } => {
                    assert_eq!(expected.remove(&key(&path)), Some(base));
                }
                Change::Renamed {
                    from,
                    to,
                    base,
                    new,
                } => {
                    assert_eq!(expected.remove(&key(&from)), Some(base));
                    assert_eq!(expected.insert(key(&to), new), None);
                }
                Change::Refused { path, reason } => {
                    panic!("seed {seed}: {} refused: {reason}", path.display())
                }
            }
        }
        assert_eq!(expected, tree(&root), "seed {seed}");
    }
}

/// Above 2,000 files the stamps are taken on several threads: the answers must line up with
/// their paths exactly as on one.
#[test]
fn a_tree_big_enough_for_parallel_stat_diffs_and_resyncs_exactly() {
    let files: Vec<(String, String)> = (0..2_100)
        .map(|n| (format!("d{}/f{n}.txt", n % 37), format!("file {n}\n")))
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, text)| (path.as_str(), text.as_str()))
        .collect();
    let fixture = fixture(&borrowed);
    let (shadow, stats) = prepare(&fixture);
    assert_eq!(stats.copied, 2_100);
    settle();
    write(shadow.root(), "d1/f1000.txt", "edited\n");
    fs::remove_file(shadow.root().join("d36/f2071.txt")).unwrap();
    assert_eq!(
        shadow.changes(),
        [
            Change::Modified {
                path: "d1/f1000.txt".into(),
                base: "file 1000\n".into(),
                new: "edited\n".into(),
            },
            Change::Deleted {
                path: "d36/f2071.txt".into(),
                base: "file 2071\n".into(),
            },
        ]
    );
    drop(shadow);
    let (shadow, stats) = prepare(&fixture);
    assert_eq!((stats.copied, stats.removed), (2, 0));
    assert!(shadow.changes().is_empty());
}

#[test]
fn a_resync_walks_the_workspace_only_when_a_directory_or_an_ignore_rule_changed() {
    let fixture = fixture(&[
        (".gitignore", "ignored/\n"),
        ("a.rs", "a\n"),
        ("src/b.rs", "b\n"),
        ("ignored/x.rs", "x\n"),
        (".env", "SECRET=1\n"),
    ]);
    let (shadow, stats) = prepare(&fixture);
    assert!(stats.seeded && stats.walked);
    drop(shadow);

    // Nothing changed: no walk, nothing copied.
    let (shadow, stats) = prepare(&fixture);
    assert!(!stats.walked);
    assert_eq!((stats.copied, stats.files), (0, 3));
    drop(shadow);

    // A file rewritten in place (its directory does not change): no walk, the file is copied.
    write(&fixture.workspace, "src/b.rs", "b, longer now\n");
    settle();
    let (shadow, stats) = prepare(&fixture);
    assert!(!stats.walked);
    assert_eq!(stats.copied, 1);
    assert_eq!(
        read(shadow.root(), "src/b.rs").as_deref(),
        Some("b, longer now\n")
    );
    drop(shadow);

    // Replaced the way `git checkout` does it (a new file renamed over the old one): the
    // directory changed, so the workspace is walked.
    write(
        &fixture.workspace,
        "src/b.rs.tmp",
        "b from another branch\n",
    );
    fs::rename(
        fixture.workspace.join("src/b.rs.tmp"),
        fixture.workspace.join("src/b.rs"),
    )
    .unwrap();
    settle();
    let (shadow, stats) = prepare(&fixture);
    assert!(stats.walked);
    assert_eq!(
        read(shadow.root(), "src/b.rs").as_deref(),
        Some("b from another branch\n")
    );
    drop(shadow);

    // A file created in a directory.
    write(&fixture.workspace, "src/new.rs", "new\n");
    settle();
    let (shadow, stats) = prepare(&fixture);
    assert!(stats.walked);
    assert_eq!(read(shadow.root(), "src/new.rs").as_deref(), Some("new\n"));
    drop(shadow);

    // The ignore rules edited in place: what they no longer ignore appears.
    write(&fixture.workspace, ".gitignore", "# nothing\n");
    settle();
    let (shadow, stats) = prepare(&fixture);
    assert!(stats.walked);
    assert_eq!(read(shadow.root(), "ignored/x.rs").as_deref(), Some("x\n"));
    drop(shadow);

    // The never_send list changed: what it no longer leaves out appears.
    let mut everything = options(&fixture, Vec::new());
    everything.exclude = Arc::new(|_: &Path| false);
    let (shadow, stats) = Shadow::prepare(&everything).unwrap();
    assert!(stats.walked);
    assert_eq!(read(shadow.root(), ".env").as_deref(), Some("SECRET=1\n"));
    drop(shadow);
    // And back: it goes again.
    let (shadow, stats) = prepare(&fixture);
    assert!(stats.walked);
    assert_eq!(read(shadow.root(), ".env"), None);
    drop(shadow);

    // Settled again: no walk.
    let (shadow, stats) = prepare(&fixture);
    assert!(!stats.walked);
    assert_eq!(
        keys(&tree(shadow.root())),
        [
            ".gitignore",
            "a.rs",
            "ignored/x.rs",
            "src/b.rs",
            "src/new.rs"
        ]
    );
}

#[test]
fn a_resync_without_a_walk_drops_an_unsaved_new_file_and_restores_an_overlaid_one() {
    let fixture = fixture(&[("a.rs", "a\n"), ("src/b.rs", "b\n")]);
    let overlay = vec![
        (
            fixture.workspace.join("src/b.rs"),
            "b unsaved\n".to_string(),
        ),
        (
            fixture.workspace.join("src/new.rs"),
            "new unsaved\n".to_string(),
        ),
    ];
    let (shadow, _) = Shadow::prepare(&options(&fixture, overlay)).unwrap();
    assert_eq!(
        read(shadow.root(), "src/new.rs").as_deref(),
        Some("new unsaved\n")
    );
    drop(shadow);
    settle();

    let (shadow, stats) = prepare(&fixture);
    assert!(!stats.walked);
    assert_eq!(keys(&tree(shadow.root())), ["a.rs", "src/b.rs"]);
    assert_eq!(read(shadow.root(), "src/b.rs").as_deref(), Some("b\n"));
    assert!(shadow.changes().is_empty());
}

#[test]
fn a_worktree_s_exclude_file_is_followed_through_its_dot_git_file() {
    let fixture = fixture(&[("a.rs", "a\n")]);
    let common = fixture.base.join("repository.git");
    let git_dir = common.join("worktrees/project");
    write(&git_dir, "commondir", "../..\n");
    write(&common, "info/exclude", "# nothing\n");
    write(
        &fixture.workspace,
        ".git",
        &format!("gitdir: {}\n", git_dir.display()),
    );
    settle();
    let (shadow, stats) = prepare(&fixture);
    assert!(stats.walked);
    drop(shadow);
    let (shadow, stats) = prepare(&fixture);
    assert!(!stats.walked);
    drop(shadow);

    write(&common, "info/exclude", "*.log\n");
    settle();
    let (_shadow, stats) = prepare(&fixture);
    assert!(stats.walked);
}

#[test]
fn directories_opened_by_name_keep_only_one_chain_and_answer_like_lstat() {
    let fixture = fixture(&[
        ("a/b/c.rs", "c\n"),
        ("a/b.rs", "b\n"),
        ("a/d/e/f.rs", "f\n"),
        ("g.rs", "g\n"),
    ]);
    #[cfg(unix)]
    std::os::unix::fs::symlink(fixture.workspace.join("a"), fixture.workspace.join("link"))
        .unwrap();
    let mut directories = super::at::Directories::new(&fixture.workspace);
    // Out of order on purpose: every jump between branches reopens what it needs.
    for key in [
        "a/d/e/f.rs",
        "a/b/c.rs",
        "g.rs",
        "a/b.rs",
        "a/d/e/f.rs",
        "a/missing/x.rs",
        "link/b.rs",
        "a/b/c.rs",
        "a/d",
        "",
    ] {
        let by_name = directories.lstat(key);
        let through_real_directories = !key.starts_with("link/");
        let by_path = fs::symlink_metadata(fixture.workspace.join(key))
            .ok()
            .filter(|_| through_real_directories);
        assert_eq!(
            by_name.map(|stat| stat.stamp),
            by_path.map(|metadata| super::Stamp::of(&metadata)),
            "{key}"
        );
    }
}
