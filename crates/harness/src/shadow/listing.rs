//! Re-listing the workspace without walking it.
//!
//! Creating, deleting or renaming an entry changes its directory's modification time; writing
//! a file's content does not, but that shows in the file's own stamp. So when every directory
//! the last walk entered still has the stamp it had, the walk would list exactly the same
//! paths, and a re-sync needs only an `lstat` of each of them (by name, [`super::at`]) to know
//! which ones changed: no directory is read and no ignore rule is evaluated.
//!
//! The listing is trusted only while what decides it is unchanged, otherwise the caller walks:
//! - every directory the walk entered, by stamp (the workspace root as `""`);
//! - the files holding ignore rules that are not themselves listed: the ignore files of the
//!   workspace's parents, git's exclude files, ignored `.gitignore`/`.ignore` files, and the
//!   global gitignore (by path, as git's configuration names it now, and stamp); a listed
//!   ignore file must keep its stamp too;
//! - the never_send list: what it left out is still left out and nothing listed is now;
//! - symlinks: a listed one is read again, one left out (leading outside) must still be the
//!   same link.
//!
//! Stamps that lie within the racy window of the moment the walk started prove nothing (a
//! change in the same timestamp tick would not show), so they send the next re-sync to a walk.
//! A `.git` file (a worktree or submodule) is followed to the exclude file of its repository;
//! one that cannot be followed makes the listing never trusted.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::at::{self, Kind};
use super::manifest::{Entry, Source, Stamp};
use super::{Exclude, Wanted, symlink_wanted};
use crate::changes::Refusal;

/// What a walk would list (files and symlinks to copy) and the symlinks it would leave out.
type Relisted = (BTreeMap<String, Wanted>, Vec<(PathBuf, Refusal)>);

/// What the last walk of the workspace saw besides the files themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Listing {
    /// When that walk started (nanoseconds since the epoch).
    pub(crate) walked_at_ns: u64,
    /// Every directory the walk entered (relative, the root as `""`) and its stamp.
    pub(crate) dirs: BTreeMap<String, Stamp>,
    /// Paths the never_send list left out.
    pub(crate) excluded: Vec<String>,
    /// Symlinks left out because they lead outside the workspace, and their targets.
    pub(crate) outside: Vec<(String, PathBuf)>,
    /// Files holding ignore rules that are not listed, with their stamp (`None`: absent).
    pub(crate) rule_files: Vec<(PathBuf, Option<Stamp>)>,
    /// The global gitignore's path as git's configuration named it.
    pub(crate) global_excludes: Option<PathBuf>,
    /// Whether the listing may be trusted later at all.
    pub(crate) reusable: bool,
}

/// Whether a file name holds ignore rules for its directory.
fn is_rule_file(key: &str) -> bool {
    matches!(at::split(key).1, ".gitignore" | ".ignore")
}

fn stamp_of(path: &Path) -> Option<Stamp> {
    fs::symlink_metadata(path)
        .ok()
        .map(|metadata| Stamp::of(&metadata))
}

impl Listing {
    /// Completes a walk's listing: the rule files that are not among `listed` and the global
    /// gitignore. `git_dirs` are the directories (relative) where the walk met a `.git`.
    pub(super) fn finish(
        &mut self,
        workspace: &Path,
        listed: &BTreeMap<String, Wanted>,
        git_dirs: &[String],
    ) {
        self.reusable = true;
        let mut rule_files = Vec::new();
        for ancestor in workspace.ancestors() {
            for name in [".gitignore", ".ignore"] {
                let path = ancestor.join(name);
                rule_files.push((path.clone(), stamp_of(&path)));
            }
            self.add_git_exclude(&ancestor.join(".git"), &mut rule_files);
        }
        for directory in self.dirs.keys() {
            for name in [".gitignore", ".ignore"] {
                let key = if directory.is_empty() {
                    name.to_string()
                } else {
                    format!("{directory}/{name}")
                };
                let path = workspace.join(&key);
                if !listed.contains_key(&key)
                    && let Some(stamp) = stamp_of(&path)
                {
                    rule_files.push((path, Some(stamp)));
                }
            }
        }
        for directory in git_dirs {
            self.add_git_exclude(&workspace.join(directory).join(".git"), &mut rule_files);
        }
        self.global_excludes = ignore::gitignore::gitconfig_excludes_path();
        if let Some(path) = &self.global_excludes {
            rule_files.push((path.clone(), stamp_of(path)));
        }
        self.rule_files = rule_files;
    }

    /// Adds git's exclude file for the repository whose `.git` is `git` (a directory, or the
    /// file a worktree or submodule has, naming its git directory, whose `commondir` names the
    /// one holding `info/exclude`). A `.git` that cannot be followed makes the listing
    /// untrusted.
    fn add_git_exclude(&mut self, git: &Path, rule_files: &mut Vec<(PathBuf, Option<Stamp>)>) {
        // A `.git` that appears, or a `.git` file that changes, counts; a `.git` directory's own
        // stamp moves with every git command, so only its exclude file is watched.
        let Ok(metadata) = fs::symlink_metadata(git) else {
            rule_files.push((git.to_path_buf(), None));
            return;
        };
        if !metadata.is_dir() {
            rule_files.push((git.to_path_buf(), Some(Stamp::of(&metadata))));
        }
        let common = if metadata.is_dir() {
            Some(git.to_path_buf())
        } else {
            let parent = git.parent().unwrap_or(Path::new(""));
            let follow = |file: &Path, base: &Path| {
                let text = fs::read_to_string(file).ok()?;
                let named = text.trim().trim_start_matches("gitdir:").trim().to_string();
                Some(base.join(named))
            };
            follow(git, parent).map(|git_dir| {
                let common = git_dir.join("commondir");
                if common.is_file() {
                    follow(&common, &git_dir).unwrap_or(git_dir)
                } else {
                    git_dir
                }
            })
        };
        match common {
            Some(common) => {
                let exclude = common.join("info/exclude");
                rule_files.push((exclude.clone(), stamp_of(&exclude)));
            }
            None => self.reusable = false,
        }
    }

    /// What the walk would list now, from the last manifest's entries, or `None` when the
    /// listing cannot be trusted (then the caller walks). Also the symlinks left out.
    pub(super) fn relist(
        &self,
        workspace: &Path,
        entries: &BTreeMap<String, Entry>,
        exclude: &Exclude,
    ) -> Option<Relisted> {
        if !self.reusable || self.dirs.is_empty() {
            return None;
        }
        let walked_at = self.walked_at_ns;
        let proven = |stamp: &Stamp| !stamp.is_racy(walked_at);
        if ignore::gitignore::gitconfig_excludes_path() != self.global_excludes {
            return None;
        }
        for (path, stamp) in &self.rule_files {
            if stamp_of(path) != *stamp || stamp.as_ref().is_some_and(|stamp| !proven(stamp)) {
                return None;
            }
        }
        let mut directories = at::Directories::new(workspace);
        for (key, stamp) in &self.dirs {
            let now = directories.lstat(key)?;
            if now.kind != Kind::Directory || now.stamp != *stamp || !proven(stamp) {
                return None;
            }
        }
        if self.excluded.iter().any(|key| !exclude(Path::new(key))) {
            return None;
        }
        let mut wanted = BTreeMap::new();
        for (key, entry) in entries {
            if exclude(Path::new(key)) {
                return None;
            }
            let now = directories.lstat(key);
            let want = match (&entry.source, now) {
                (Source::Symlink { .. }, Some(now)) if now.kind == Kind::Symlink => {
                    symlink_wanted(workspace, key).ok()?
                }
                // An unsaved buffer with no file on disk then (and so now: its directory
                // did not change).
                (Source::Overlay { .. }, None) => continue,
                (source, Some(now)) if now.kind == Kind::File => {
                    if is_rule_file(key)
                        && (!matches!(source, Source::Disk { stamp } if *stamp == now.stamp)
                            || !proven(&now.stamp))
                    {
                        return None;
                    }
                    Wanted::Disk {
                        stamp: now.stamp,
                        mode: now.mode,
                    }
                }
                _ => return None,
            };
            wanted.insert(key.clone(), want);
        }
        let mut skipped = Vec::new();
        for (key, target) in &self.outside {
            if directories.lstat(key)?.kind != Kind::Symlink {
                return None;
            }
            match symlink_wanted(workspace, key) {
                Err(Refusal::OutsideWorkspace { target: now }) if now == *target => {
                    skipped.push((
                        PathBuf::from(key),
                        Refusal::OutsideWorkspace { target: now },
                    ));
                }
                _ => return None,
            }
        }
        Some((wanted, skipped))
    }
}
