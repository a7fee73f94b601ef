//! Path checks shared by seeding and diffing: where a symlink points, and whether the
//! directories above a shadow file are real directories (an agent may replace one with a
//! symlink that leads out of the shadow, and `stat`, `open` and `create_dir_all` would follow it).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::at::{Directories, Lstat};

/// `/`-separated relative path of `path` under `root`, or `None` when it is not under it or a
/// component is not valid UTF-8 (such names cannot travel in LSP URIs reliably and are skipped).
pub(crate) fn relative_key(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let mut key = String::new();
    for component in relative.components() {
        let Component::Normal(part) = component else {
            return None;
        };
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str(part.to_str()?);
    }
    (!key.is_empty()).then_some(key)
}

/// Resolves `..` and `.` without touching the disk.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `path` with its longest existing ancestor's symlinks resolved (the rest appended as is).
pub(crate) fn resolve_existing(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut current = path;
    loop {
        if let Ok(real) = current.canonicalize() {
            return rest.iter().rev().fold(real, |acc, part| acc.join(part));
        }
        match (current.parent(), current.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                current = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Where a symlink at `link_key` (relative to `root`) with target `target` points, relative to
/// `root`; `None` when it leads outside `root` (absolute elsewhere, or `..` past the root).
/// Lexical: a chain of links is checked link by link, since each one is itself in the tree.
pub(crate) fn symlink_inside(root: &Path, link_key: &str, target: &Path) -> Option<PathBuf> {
    let link_parent = Path::new(link_key).parent().unwrap_or(Path::new(""));
    let absolute = if target.is_absolute() {
        target.to_path_buf()
    } else {
        // Count `..` against the link's depth first: `normalize` would clamp at `/` and hide
        // an escape.
        let mut depth = link_parent.components().count() as isize;
        for component in target.components() {
            match component {
                Component::ParentDir => depth -= 1,
                Component::Normal(_) => depth += 1,
                _ => {}
            }
            if depth < 0 {
                return None;
            }
        }
        root.join(link_parent).join(target)
    };
    let normalized = normalize(&absolute);
    let inside = normalized.strip_prefix(normalize(root)).ok()?;
    Some(inside.to_path_buf())
}

/// The target to give a recreated symlink so that it points at `inside` (relative to the
/// root) from `link_key`, whatever the root is called: `../` up to the root, then the path.
pub(crate) fn relative_target(link_key: &str, inside: &Path) -> PathBuf {
    let depth = Path::new(link_key)
        .parent()
        .map_or(0, |parent| parent.components().count());
    let mut target = PathBuf::new();
    for _ in 0..depth {
        target.push("..");
    }
    target.push(inside);
    if target.as_os_str().is_empty() {
        target.push(".");
    }
    target
}

/// Remembers which directories under a root were found to be real directories (not symlinks),
/// so that checking every file's ancestors costs one `lstat` per directory.
pub(crate) struct RealDirs<'a> {
    root: &'a Path,
    known: HashMap<String, bool>,
}

impl<'a> RealDirs<'a> {
    pub(crate) fn new(root: &'a Path) -> RealDirs<'a> {
        RealDirs {
            root,
            known: HashMap::new(),
        }
    }

    /// Records what a caller found out about `directory` itself (whether it and its parents are
    /// real directories), so that checking the files below it costs no `lstat`.
    pub(crate) fn record(&mut self, directory: &str, real: bool) {
        self.known.insert(directory.to_string(), real);
    }

    /// Whether every directory between the root and `key` is a real directory.
    pub(crate) fn parents_are_real(&mut self, key: &str) -> bool {
        let mut end = 0;
        while let Some(offset) = key[end..].find('/') {
            end += offset;
            let directory = &key[..end];
            let real = match self.known.get(directory) {
                Some(real) => *real,
                None => {
                    let real = fs::symlink_metadata(self.root.join(directory))
                        .is_ok_and(|metadata| metadata.file_type().is_dir());
                    self.known.insert(directory.to_string(), real);
                    real
                }
            };
            if !real {
                return false;
            }
            end += 1;
        }
        true
    }

    /// Makes every directory between the root and `key` a real directory: a symlink or file in
    /// the way is removed (it is the agent's, in the shadow), a missing one is created.
    pub(crate) fn make_parents(&mut self, key: &str) -> io::Result<()> {
        let mut end = 0;
        while let Some(offset) = key[end..].find('/') {
            end += offset;
            let directory = &key[..end];
            if self.known.get(directory) != Some(&true) {
                let path = self.root.join(directory);
                match fs::symlink_metadata(&path) {
                    Ok(metadata) if metadata.file_type().is_dir() => {}
                    Ok(_) => {
                        fs::remove_file(&path)?;
                        fs::create_dir(&path)?;
                    }
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        fs::create_dir(&path)?;
                    }
                    Err(error) => return Err(error),
                }
                self.known.insert(directory.to_string(), true);
            }
            end += 1;
        }
        Ok(())
    }

    /// Forgets what is known under `key` (after a directory there was removed).
    pub(crate) fn forget(&mut self, key: &str) {
        let prefix = format!("{key}/");
        self.known
            .retain(|directory, _| directory != key && !directory.starts_with(&prefix));
    }
}

/// Removes whatever is at `path` (file, symlink or directory); missing is fine.
pub(crate) fn remove_any(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_dir() => fs::remove_dir_all(path).map(|()| true),
        Ok(_) => fs::remove_file(path).map(|()| true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// `lstat`s `root/key` for every key, spread over the available cores, each file by name in its
/// open directory ([`super::at`]): on a big tree this is most of the work of a re-sync or a
/// diff. A slot is `None` when the path is missing, below something that is not a real
/// directory (a symlink an agent put there is not followed), or could not be checked.
pub(crate) fn lstat_all(root: &Path, keys: &[&str]) -> Vec<Option<Lstat>> {
    let stat_part = |part: &[&str]| {
        let mut directories = Directories::new(root);
        part.iter()
            .map(|key| directories.lstat(key))
            .collect::<Vec<_>>()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(4);
    // Below a couple of thousand files a thread costs more than it saves.
    if threads < 2 || keys.len() < 2_000 {
        return stat_part(keys);
    }
    // Contiguous ranges of sorted keys: each thread opens mostly its own directories.
    let chunk = keys.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = keys
            .chunks(chunk)
            .map(|part| (part, scope.spawn(move || stat_part(part))))
            .collect();
        workers
            .into_iter()
            .flat_map(|(part, worker)| {
                // A worker that panicked is redone here rather than leaving its slots empty
                // (an empty slot reads as "deleted").
                worker.join().unwrap_or_else(|_| stat_part(part))
            })
            .collect()
    })
}
