//! Finding what an agent created without walking the whole shadow.
//!
//! Creating, deleting or renaming an entry changes its directory's modification time; writing
//! a file's content does not. So the manifest keeps the stamp of every (non-ignored) directory
//! of the copy, and only the directories whose stamp moved are listed; a directory that is new
//! in such a listing is walked whole. This is git's "untracked cache" idea, and it is what makes
//! `changes()` cheap enough to run after every file-change event on a big tree: one `lstat` per
//! directory instead of a walk that opens every directory and looks for ignore files in each.
//!
//! Ignore rules are the copy's own `.gitignore` and `.ignore` files (the agent's edits to them
//! count), from the directory of an entry up to the root, the deepest decisive match winning,
//! then the user's global gitignore. `.git` is never looked into.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::Path;
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::manifest::{Entry, Stamp};
use super::paths::RealDirs;

/// The user's global gitignore (`core.excludesFile`, or `$XDG_CONFIG_HOME/git/ignore`).
pub(crate) fn global_ignore() -> Arc<Gitignore> {
    let (matcher, error) = Gitignore::global();
    if let Some(error) = error {
        tracing::debug!("reading the global gitignore: {error}");
    }
    Arc::new(matcher)
}

/// The ignore files of a tree, read lazily, one matcher per directory.
pub(crate) struct Ignores<'a> {
    root: &'a Path,
    global: &'a Gitignore,
    per_directory: HashMap<String, Option<Gitignore>>,
}

impl<'a> Ignores<'a> {
    pub(crate) fn new(root: &'a Path, global: &'a Gitignore) -> Ignores<'a> {
        Ignores {
            root,
            global,
            per_directory: HashMap::new(),
        }
    }

    fn matcher(&mut self, directory: &str) -> Option<&Gitignore> {
        let root = self.root;
        self.per_directory
            .entry(directory.to_string())
            .or_insert_with(|| {
                let path = if directory.is_empty() {
                    root.to_path_buf()
                } else {
                    root.join(directory)
                };
                let mut builder = GitignoreBuilder::new(&path);
                let mut any = false;
                for name in [".gitignore", ".ignore"] {
                    let file = path.join(name);
                    if fs::symlink_metadata(&file).is_ok_and(|metadata| metadata.is_file()) {
                        any = true;
                        if let Some(error) = builder.add(&file) {
                            tracing::debug!("reading {}: {error}", file.display());
                        }
                    }
                }
                if !any {
                    return None;
                }
                builder.build().ok()
            })
            .as_ref()
    }

    /// Whether `key` (relative) is ignored. Its parent directories are not ignored (the
    /// callers never descend into ignored directories).
    pub(crate) fn is_ignored(&mut self, key: &str, is_dir: bool) -> bool {
        let path = self.root.join(key);
        let mut directory = key;
        while let Some(end) = directory
            .rfind('/')
            .or((!directory.is_empty()).then_some(0))
        {
            directory = &directory[..end];
            if let Some(matcher) = self.matcher(directory) {
                let matched = matcher.matched(&path, is_dir);
                if matched.is_ignore() {
                    return true;
                }
                if matched.is_whitelist() {
                    return false;
                }
            }
            if directory.is_empty() {
                break;
            }
        }
        self.global.matched(Path::new(key), is_dir).is_ignore()
    }
}

/// What appeared in the copy that is neither a manifest entry nor a known directory.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// New files, symlinks and other non-directories, sorted.
    pub(crate) files: Vec<String>,
    /// New directories (not ignored).
    pub(crate) dirs: Vec<String>,
}

/// Lists the directories whose stamp moved since `synced_at_ns` and walks the new ones. `real`
/// learns, on the way, which known directories are still real directories, so that the caller's
/// checks of the files below them cost nothing more.
pub(crate) fn find_created(
    root: &Path,
    entries: &BTreeMap<String, Entry>,
    dirs: &BTreeMap<String, Stamp>,
    synced_at_ns: u64,
    ignores: &mut Ignores<'_>,
    real: &mut RealDirs<'_>,
) -> Found {
    let mut found = Found::default();
    let mut pending = Vec::new();
    // In key order a directory comes after its parent, so the parent's answer is known by then.
    for (directory, stamp) in dirs {
        let path = if directory.is_empty() {
            root.to_path_buf()
        } else {
            root.join(directory)
        };
        let parents_real = real.parents_are_real(directory);
        let metadata = fs::symlink_metadata(&path).ok();
        let is_dir = metadata.as_ref().is_some_and(fs::Metadata::is_dir);
        if !directory.is_empty() {
            real.record(directory, parents_real && is_dir);
        }
        let Some(metadata) = metadata else {
            continue;
        };
        if !is_dir
            || !parents_real
            || (Stamp::of(&metadata) == *stamp && !stamp.is_racy(synced_at_ns))
        {
            continue;
        }
        list(
            root,
            directory,
            entries,
            dirs,
            ignores,
            &mut found,
            &mut pending,
        );
    }
    while let Some(directory) = pending.pop() {
        list(
            root,
            &directory,
            entries,
            dirs,
            ignores,
            &mut found,
            &mut pending,
        );
    }
    found.files.sort();
    found.dirs.sort();
    found
}

fn list(
    root: &Path,
    directory: &str,
    entries: &BTreeMap<String, Entry>,
    dirs: &BTreeMap<String, Stamp>,
    ignores: &mut Ignores<'_>,
    found: &mut Found,
    pending: &mut Vec<String>,
) {
    let path = if directory.is_empty() {
        root.to_path_buf()
    } else {
        root.join(directory)
    };
    let Ok(listing) = fs::read_dir(&path) else {
        return;
    };
    for child in listing.flatten() {
        let Some(name) = child.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name == ".git" {
            continue;
        }
        let key = if directory.is_empty() {
            name
        } else {
            format!("{directory}/{name}")
        };
        let Ok(kind) = child.file_type() else {
            continue;
        };
        if kind.is_dir() {
            // A known directory is checked by its own stamp; a file entry turned directory
            // holds new files.
            if !dirs.contains_key(&key) && !ignores.is_ignored(&key, true) {
                found.dirs.push(key.clone());
                pending.push(key);
            }
        } else if !entries.contains_key(&key) && !ignores.is_ignored(&key, false) {
            found.files.push(key);
        }
    }
}

/// Every directory above the entries (and the root, as `""`).
pub(crate) fn ancestors<'k>(keys: impl Iterator<Item = &'k String>) -> BTreeSet<String> {
    let mut out = BTreeSet::from([String::new()]);
    for key in keys {
        let mut end = 0;
        while let Some(offset) = key[end..].find('/') {
            end += offset;
            // Sorted keys share their directories: most are already there.
            if !out.contains(&key[..end]) {
                out.insert(key[..end].to_string());
            }
            end += 1;
        }
    }
    out
}
