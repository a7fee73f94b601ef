//! The shadow workspace: a copy of the workspace that an agent works in.
//!
//! Current agents (codex-acp, codex app-server) write to the disk themselves, so a task runs in
//! a copy and its changes are landed through the editor ([`crate::changes`]). The copy lives in
//! `ShadowOptions::dir/<slot>/<workspace name>/`, where `dir` is under baton's cache or state
//! directory (never `/tmp`: codex-acp always makes `/tmp` writable, so a copy there would not
//! confine anything).
//!
//! What goes in: every file the workspace walk yields (gitignore, `.ignore`, the git exclude
//! file and the global gitignore respected, so tracked and untracked non-ignored files; hidden
//! files such as `.cargo/config.toml` included), minus `ShadowOptions::exclude` (the
//! never_send list: secrets never reach an agent), minus `.git`, with the user's unsaved
//! buffers written over their files. Symlinks are recreated (with a relative target) only when
//! they point inside the workspace; the others are left out and reported.
//!
//! No `.git`: agents edit files and run builds without one (codex works in a plain directory),
//! a copy of `.git` would cost as much as the tree on a big repository, and sharing the real one
//! (a `git worktree`, `GIT_DIR`) would let an agent's `git commit` or `git checkout` change the
//! user's repository behind the editor. An agent that runs `git diff` sees "not a git
//! repository".
//!
//! Cheap on big repositories:
//! - files are copied with [`std::fs::copy`], which on Linux uses `copy_file_range`: on btrfs
//!   and XFS (reflink=1) that shares extents copy-on-write, elsewhere it is an in-kernel copy
//!   with no round trip through user space. Never `hard_link`: an agent writing through a hard
//!   link would change the real file.
//! - a manifest (see [`manifest`]) records each file's workspace stamp and the copy's stamp, so
//!   the next `prepare` in the same directory copies only what changed on either side, resets
//!   what the previous agent changed, created or deleted, and removes what left the workspace.
//!   Files the agent created that the tree's ignore rules ignore (`target/`, `node_modules/`)
//!   are kept across tasks: they are build outputs, and keeping them keeps the agent's
//!   incremental builds fast. Empty directories the agent left are kept too.
//! - the base that `changes` diffs against is not kept as a second copy: overlay texts stay in
//!   memory, and a workspace file's base is re-read from the workspace when its stamp (and, for
//!   a file written just before seeding, its content hash) still proves it is what was copied.
//!   Once read it is cached, so a user saving the file later does not lose it. When it cannot
//!   be proven, `changes` reports [`Refusal::BaseUnavailable`] rather than guessing.
//!
//! Concurrency: each `prepare` takes the first free slot `dir/0`, `dir/1`, … by locking
//! `dir/<n>.lock` (an advisory lock the OS drops when the process dies, so a crash leaves no
//! stale lock). Two tasks on one workspace at once get two copies; one task after another
//! reuses slot 0.

pub(crate) mod at;
pub(crate) mod created;
mod listing;
mod manifest;
pub(crate) mod paths;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ignore::{WalkBuilder, WalkState};

use crate::agent::{ReportedChange, ReportedKind};
use crate::changes::{Change, Limits, Refusal};
pub(crate) use manifest::Manifest;
use manifest::now_ns;
pub(crate) use manifest::{Entry, Source, Stamp, content_hash};
use paths::{RealDirs, relative_key, relative_target, remove_any, symlink_inside};

/// Decides which workspace paths (relative) are left out of the shadow (secrets).
pub type Exclude = Arc<dyn Fn(&Path) -> bool + Send + Sync>;

/// Base texts read from the workspace (or why they could not be), by relative path.
pub(crate) type Bases = Mutex<HashMap<String, Result<Arc<[u8]>, Refusal>>>;

/// How many shadows of one workspace may exist at once.
const MAX_SLOTS: usize = 16;

/// What a shadow is made from.
#[derive(Clone)]
pub struct ShadowOptions {
    /// The real workspace root.
    pub workspace: PathBuf,
    /// The directory the shadow lives in (under baton's state or cache directory, never /tmp).
    /// The same directory is reused across tasks of one workspace.
    pub dir: PathBuf,
    /// The user's unsaved buffers: absolute paths inside the workspace and their text.
    pub overlay: Vec<(PathBuf, String)>,
    /// Files never copied (the never_send list).
    pub exclude: Exclude,
    pub limits: Limits,
}

/// What preparing a shadow did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Files (and symlinks) in the shadow after preparing.
    pub files: usize,
    /// Files written: all of them on a fresh seed, only the changed ones on a re-sync.
    pub copied: usize,
    /// Files removed from the shadow (gone from the workspace, or created by the last agent).
    pub removed: usize,
    /// Whether the shadow was seeded from nothing (no, stale or corrupt manifest).
    pub seeded: bool,
    /// Whether the workspace was walked (always when seeding; on a re-sync only when a
    /// directory or an ignore rule changed since the last walk).
    pub walked: bool,
    /// Workspace entries left out and why (symlinks that lead outside the workspace).
    pub skipped: Vec<(PathBuf, Refusal)>,
    pub elapsed: Duration,
}

/// A prepared shadow and the base it was seeded with. Holding it holds the slot's lock.
pub struct Shadow {
    pub(crate) root: PathBuf,
    pub(crate) workspace: PathBuf,
    /// What every file was seeded from, the copy's stamps, and its directories' stamps.
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) global_ignore: Arc<ignore::gitignore::Gitignore>,
    /// Unsaved buffers' texts by relative path: the base of their files.
    pub(crate) overlays: HashMap<String, Arc<str>>,
    /// Workspace bases read so far (or the reason they could not be), by relative path.
    pub(crate) bases: Bases,
    pub(crate) exclude: Exclude,
    pub(crate) limits: Limits,
    /// The thread writing the manifest, joined before the lock is released.
    writer: Option<std::thread::JoinHandle<()>>,
    /// Declared last: fields drop in order, and the lock must outlive everything else.
    _lock: fs::File,
}

impl Drop for Shadow {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl std::fmt::Debug for Shadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shadow")
            .field("root", &self.root)
            .field("workspace", &self.workspace)
            .field("files", &self.manifest.entries.len())
            .finish_non_exhaustive()
    }
}

/// What the workspace says a shadow path should hold.
enum Wanted {
    /// A regular file with its stamp and permission bits.
    Disk {
        stamp: Stamp,
        mode: u32,
    },
    Overlay {
        text: Arc<str>,
        hash: u64,
    },
    Symlink {
        target: PathBuf,
    },
}

impl Shadow {
    /// Creates the shadow, or re-syncs the existing one so that it holds exactly the
    /// workspace's tracked and untracked non-ignored files overlaid with the unsaved buffers.
    pub fn prepare(options: &ShadowOptions) -> io::Result<(Shadow, SyncStats)> {
        let started = Instant::now();
        let workspace = fs::canonicalize(&options.workspace)?;
        fs::create_dir_all(&options.dir)?;
        let dir = fs::canonicalize(&options.dir)?;
        let (slot, lock) = take_slot(&dir)?;
        let name = workspace
            .file_name()
            .and_then(|name| name.to_str())
            .filter(|name| !name.is_empty())
            .unwrap_or("workspace");
        let root = slot.join(name);
        let manifest_path = slot.join("manifest.json");

        let previous = Manifest::load(&manifest_path, &workspace).filter(|_| root.is_dir());
        // The manifest describes the tree only after a complete prepare: it is removed now and
        // written at the end, so a prepare cut short re-seeds next time instead of trusting it.
        remove_any(&manifest_path)?;
        let mut stats = SyncStats {
            seeded: previous.is_none(),
            ..SyncStats::default()
        };
        if previous.is_none() {
            remove_any(&root)?;
        }
        fs::create_dir_all(&root)?;
        let previous = previous.unwrap_or_else(|| Arc::new(Manifest::new(&workspace)));

        // When no directory of the workspace changed since the last walk, the last manifest's
        // files are what a walk would list: each gets an `lstat`, no directory is read.
        let walked_at_ns = now_ns();
        let relisted = if stats.seeded {
            None
        } else {
            previous
                .listing
                .relist(&workspace, &previous.entries, &options.exclude)
        };
        let (mut wanted, listing) = match relisted {
            Some((wanted, skipped)) => {
                stats.skipped.extend(skipped);
                (wanted, previous.listing.clone())
            }
            None => {
                stats.walked = true;
                let (wanted, mut listing, git_dirs) =
                    scan_workspace(&workspace, &dir, &options.exclude, &mut stats.skipped)?;
                listing.walked_at_ns = walked_at_ns;
                listing.finish(&workspace, &wanted, &git_dirs);
                (wanted, listing)
            }
        };
        let overlays = apply_overlay(&workspace, options, &mut wanted);

        let mut manifest = Manifest::new(&workspace);
        manifest.listing = listing;
        let mut dirs = RealDirs::new(&root);
        if stats.seeded {
            // A fresh tree: nothing is in the way, so the directories are made first (parents
            // sort before their children) and the files are copied on every core.
            for directory in created::ancestors(wanted.keys()) {
                if !directory.is_empty() {
                    fs::create_dir(root.join(&directory))?;
                    dirs.record(&directory, true);
                }
            }
            let items: Vec<(&String, &Wanted)> = wanted.iter().collect();
            for ((key, _), entry) in items.iter().zip(write_fresh(&workspace, &root, &items)?) {
                if let Some(entry) = entry {
                    manifest.entries.insert((*key).clone(), entry);
                    stats.copied += 1;
                }
            }
        }
        let keys: Vec<&str> = wanted.keys().map(String::as_str).collect();
        let copies = if stats.seeded {
            Vec::new()
        } else {
            paths::lstat_all(&root, &keys)
        };
        for ((key, want), copy) in wanted.iter().zip(copies) {
            if let Some(entry) = previous.entries.get(key)
                && is_current(entry, want, previous.synced_at_ns)
                // An `lstat` by name found it only through real directories (`at`).
                && copy.is_some_and(|copy| {
                    copy.stamp == entry.copy && !entry.copy.is_racy(previous.synced_at_ns)
                })
            {
                manifest.entries.insert(key.clone(), entry.clone());
                continue;
            }
            let path = root.join(key);
            dirs.make_parents(key)?;
            if remove_any(&path)? {
                dirs.forget(key);
            }
            if let Some(entry) = write_entry(&workspace, key, &path, want, stats.seeded)? {
                manifest.entries.insert(key.clone(), entry);
                stats.copied += 1;
            }
        }
        for key in previous.entries.keys() {
            if !manifest.entries.contains_key(key)
                && dirs.parents_are_real(key)
                && remove_any(&root.join(key))?
            {
                stats.removed += 1;
            }
        }
        let global_ignore = created::global_ignore();
        let mut directories = created::ancestors(manifest.entries.keys());
        if !stats.seeded {
            // What the previous agent created (and the tree's ignore rules, reset above, do not
            // ignore) goes; the directories it made stay (empty) and are watched from now on.
            let mut ignores = created::Ignores::new(&root, &global_ignore);
            // Fresh knowledge of the directories: the loop above may have replaced some.
            let mut real = RealDirs::new(&root);
            let found = created::find_created(
                &root,
                &manifest.entries,
                &previous.dirs,
                previous.synced_at_ns,
                &mut ignores,
                &mut real,
            );
            for key in found.files {
                if dirs.parents_are_real(&key) && remove_any(&root.join(&key))? {
                    stats.removed += 1;
                }
            }
            directories.extend(found.dirs);
            directories.extend(previous.dirs.keys().cloned());
        }
        let directories: Vec<String> = directories.into_iter().collect();
        let keys: Vec<&str> = directories.iter().map(String::as_str).collect();
        let found = paths::lstat_all(&root, &keys);
        for (directory, metadata) in directories.iter().zip(found) {
            if let Some(metadata) = metadata
                && metadata.kind == at::Kind::Directory
                && dirs.parents_are_real(directory)
            {
                manifest.dirs.insert(directory.clone(), metadata.stamp);
            }
        }

        // A repository the last agent made (`git init`) is not the next agent's business.
        if !stats.seeded {
            remove_any(&root.join(".git"))?;
        }

        manifest.synced_at_ns = now_ns();
        stats.files = manifest.entries.len();
        let manifest = Arc::new(manifest);
        // Writing a big tree's manifest (megabytes of JSON) is left to a thread: the agent can
        // start meanwhile. The shadow joins it before giving up the slot's lock, and a
        // manifest that was never written only costs the next prepare a fresh seed.
        let writer = {
            let manifest = manifest.clone();
            std::thread::Builder::new()
                .name("shadow-manifest".into())
                .spawn(move || {
                    if let Err(error) = Manifest::save(manifest, &manifest_path) {
                        tracing::warn!("writing {}: {error}", manifest_path.display());
                    }
                })?
        };
        stats.elapsed = started.elapsed();
        let shadow = Shadow {
            root,
            workspace,
            manifest,
            global_ignore,
            overlays,
            bases: Mutex::new(HashMap::new()),
            exclude: options.exclude.clone(),
            limits: options.limits,
            writer: Some(writer),
            _lock: lock,
        };
        Ok((shadow, stats))
    }

    /// The copy's root: the agent's cwd.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real workspace (canonical) the shadow was seeded from.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// The changes an agent *reported* at paths that resolve outside the shadow (an absolute
    /// path elsewhere, `..`, a symlink leading out), as refusals: [`Shadow::changes`] never
    /// finds those writes, yet the user must be told they were not landed.
    pub fn refusals_outside(&self, reported: &[ReportedChange]) -> Vec<Change> {
        let root = &self.root;
        let real_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let paths = reported.iter().flat_map(|change| {
            let moved = match &change.kind {
                ReportedKind::Update { move_path, .. } => move_path.as_ref(),
                _ => None,
            };
            std::iter::once(&change.path).chain(moved)
        });
        let mut refused = Vec::new();
        for path in paths {
            let lexical = paths::normalize(&root.join(path));
            let relative = lexical
                .strip_prefix(root)
                .or_else(|_| lexical.strip_prefix(&real_root))
                .ok()
                .map(Path::to_path_buf);
            let resolved = paths::resolve_existing(&lexical);
            if relative.is_some() && resolved.starts_with(&real_root) {
                continue;
            }
            refused.push(Change::Refused {
                path: relative.unwrap_or_else(|| path.clone()),
                reason: Refusal::OutsideWorkspace { target: resolved },
            });
        }
        refused
    }

    /// Everything the agent changed in the copy since it was prepared, sorted by path.
    pub fn changes(&self) -> Vec<Change> {
        crate::changes::diff(self)
    }
}

/// Locks the first free slot under `dir` and returns its directory and the held lock.
fn take_slot(dir: &Path) -> io::Result<(PathBuf, fs::File)> {
    for slot in 0..MAX_SLOTS {
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{slot}.lock")))?;
        match lock.try_lock() {
            Ok(()) => return Ok((dir.join(slot.to_string()), lock)),
            Err(fs::TryLockError::WouldBlock) => continue,
            Err(fs::TryLockError::Error(error)) => return Err(error),
        }
    }
    Err(io::Error::other(format!(
        "{MAX_SLOTS} shadows of this workspace are already in use"
    )))
}

/// Copies `items` into a fresh tree whose directories exist, on up to four threads (below a
/// couple of thousand files one is faster). Files are copied by name between directories
/// opened once ([`at::copy_new_file`]): no path is resolved twice, no file opened twice.
fn write_fresh(
    workspace: &Path,
    root: &Path,
    items: &[(&String, &Wanted)],
) -> io::Result<Vec<Option<Entry>>> {
    let write_all = |part: &[(&String, &Wanted)]| -> io::Result<Vec<Option<Entry>>> {
        let mut sources = at::Directories::new(workspace);
        let mut copies = at::Directories::new(root);
        part.iter()
            .map(|(key, want)| match want {
                Wanted::Disk { stamp, mode } => {
                    let Some(copy) =
                        at::copy_new_file(&mut sources, &mut copies, key, *mode, stamp.mtime_ns)?
                    else {
                        return Ok(None);
                    };
                    // A workspace file written just now: its stamp alone cannot later prove
                    // that it still holds what was copied.
                    let hash = if stamp.is_racy(now_ns()) {
                        Some(content_hash(&fs::read(root.join(key))?))
                    } else {
                        None
                    };
                    Ok(Some(Entry {
                        source: Source::Disk { stamp: *stamp },
                        copy: copy.stamp,
                        hash,
                    }))
                }
                _ => write_entry(workspace, key, &root.join(key), want, true),
            })
            .collect()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(4);
    if threads < 2 || items.len() < 2_000 {
        return write_all(items);
    }
    // Contiguous ranges: each thread mostly fills its own directories.
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || write_all(part)))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for worker in workers {
            let part = worker
                .join()
                .map_err(|_| io::Error::other("a shadow copying thread panicked"))??;
            out.extend(part);
        }
        Ok(out)
    })
}

#[cfg(unix)]
fn permission_bits(metadata: &fs::Metadata) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o7777
}

#[cfg(not(unix))]
fn permission_bits(_metadata: &fs::Metadata) -> u32 {
    0o644
}

/// Whether a manifest entry still describes what the workspace wants at its path.
fn is_current(entry: &Entry, want: &Wanted, synced_at_ns: u64) -> bool {
    match (&entry.source, want) {
        (Source::Disk { stamp: seeded }, Wanted::Disk { stamp, .. }) => {
            seeded == stamp && !seeded.is_racy(synced_at_ns)
        }
        (Source::Overlay { hash: seeded }, Wanted::Overlay { hash, .. }) => seeded == hash,
        (Source::Symlink { target: seeded }, Wanted::Symlink { target }) => seeded == target,
        _ => false,
    }
}

/// Writes one shadow path (its parents exist and nothing is in its way) and returns its entry;
/// `None` when the workspace file vanished meanwhile.
fn write_entry(
    workspace: &Path,
    key: &str,
    path: &Path,
    want: &Wanted,
    fresh_tree: bool,
) -> io::Result<Option<Entry>> {
    let mut hash = None;
    let source = match want {
        Wanted::Disk { stamp, .. } => {
            let from = workspace.join(key);
            // `fs::copy` is `copy_file_range` on Linux: a reflink on btrfs/XFS, an in-kernel
            // copy elsewhere. It also copies the permission bits (scripts stay executable).
            match fs::copy(&from, path) {
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(error) => return Err(error),
            }
            if fresh_tree {
                // Like `cp -a`: the copy keeps the file's time, so a fresh copy's stamps are
                // old and an agent's write shows. Only in a fresh tree: resetting a file the
                // agent's build already saw to an older time would make that build stale.
                let time = std::time::UNIX_EPOCH + Duration::from_nanos(stamp.mtime_ns);
                fs::OpenOptions::new()
                    .write(true)
                    .open(path)?
                    .set_modified(time)?;
            }
            if stamp.is_racy(now_ns()) {
                // The workspace file was written just now: its stamp alone cannot later prove
                // that it still holds what was copied.
                hash = Some(content_hash(&fs::read(path)?));
            }
            Source::Disk { stamp: *stamp }
        }
        Wanted::Overlay {
            text,
            hash: text_hash,
        } => {
            fs::write(path, text.as_bytes())?;
            Source::Overlay { hash: *text_hash }
        }
        Wanted::Symlink { target } => {
            make_symlink(target, path)?;
            Source::Symlink {
                target: target.clone(),
            }
        }
    };
    let copy = Stamp::of(&fs::symlink_metadata(path)?);
    Ok(Some(Entry { source, copy, hash }))
}

#[cfg(unix)]
fn make_symlink(target: &Path, path: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

#[cfg(not(unix))]
fn make_symlink(_target: &Path, _path: &Path) -> io::Result<()> {
    Err(io::Error::other("symlinks are only recreated on Unix"))
}

/// A walk of the workspace with the index's rules plus hidden files, `.git` left out.
fn workspace_walker(root: &Path) -> WalkBuilder {
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .ignore(true)
        // .gitignore applies even outside a git repository, as in the index.
        .require_git(false)
        .follow_links(false);
    builder
}

/// Lists what the shadow should hold from disk: files with their stamps, and symlinks that stay
/// inside the workspace (with a target rewritten relative to the link). Also what the walk saw
/// besides (the directories it entered, what never_send left out, the symlinks leading out) and
/// the directories where it met a `.git`.
fn scan_workspace(
    workspace: &Path,
    shadow_dir: &Path,
    exclude: &Exclude,
    skipped: &mut Vec<(PathBuf, Refusal)>,
) -> io::Result<(BTreeMap<String, Wanted>, listing::Listing, Vec<String>)> {
    let found: Mutex<Vec<(String, Wanted)>> = Mutex::new(Vec::new());
    let directories: Mutex<Vec<(String, Stamp)>> = Mutex::new(Vec::new());
    let outside: Mutex<Vec<(PathBuf, Refusal)>> = Mutex::new(Vec::new());
    // Filled by the entry filter, which must be `'static`.
    let excluded: Arc<Mutex<Vec<String>>> = Arc::default();
    let git_dirs: Arc<Mutex<Vec<String>>> = Arc::default();
    let workspace_owned = workspace.to_path_buf();
    let shadow_dir = shadow_dir.to_path_buf();
    let exclude = exclude.clone();
    let mut builder = workspace_walker(workspace);
    {
        let excluded = excluded.clone();
        let git_dirs = git_dirs.clone();
        builder.filter_entry(move |entry| {
            if entry.file_name() == ".git" {
                let parent = entry
                    .path()
                    .parent()
                    .and_then(|parent| parent.strip_prefix(&workspace_owned).ok())
                    .and_then(|relative| relative.to_str())
                    .map(str::to_string);
                if let Some(parent) = parent {
                    lock(&git_dirs).push(parent);
                }
                return false;
            }
            if entry.path().starts_with(&shadow_dir) {
                return false;
            }
            match entry.path().strip_prefix(&workspace_owned) {
                Ok(relative) if !relative.as_os_str().is_empty() => {
                    if exclude(relative) {
                        if let Some(key) = relative_key(Path::new(""), relative) {
                            lock(&excluded).push(key);
                        }
                        return false;
                    }
                    true
                }
                _ => true,
            }
        });
    }
    builder.build_parallel().run(|| {
        let found = &found;
        let outside = &outside;
        let directories = &directories;
        Box::new(move |entry| {
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            let Some(file_type) = entry.file_type() else {
                return WalkState::Continue;
            };
            if file_type.is_dir() {
                let key = if entry.depth() == 0 {
                    Some(String::new())
                } else {
                    relative_key(workspace, entry.path())
                };
                if let (Some(key), Ok(metadata)) = (key, entry.metadata()) {
                    lock(directories).push((key, Stamp::of(&metadata)));
                }
                return WalkState::Continue;
            }
            let Some(key) = relative_key(workspace, entry.path()) else {
                if entry.depth() > 0 {
                    tracing::warn!("shadow: skipping {} (not UTF-8)", entry.path().display());
                }
                return WalkState::Continue;
            };
            let want = if file_type.is_symlink() {
                match symlink_wanted(workspace, &key) {
                    Ok(want) => want,
                    Err(refusal @ Refusal::OutsideWorkspace { .. }) => {
                        lock(outside).push((PathBuf::from(&key), refusal));
                        return WalkState::Continue;
                    }
                    Err(_) => return WalkState::Continue,
                }
            } else if file_type.is_file() {
                let Ok(metadata) = entry.metadata() else {
                    return WalkState::Continue;
                };
                Wanted::Disk {
                    stamp: Stamp::of(&metadata),
                    mode: permission_bits(&metadata),
                }
            } else {
                // Sockets, fifos and devices have no place in a copy.
                return WalkState::Continue;
            };
            lock(found).push((key, want));
            WalkState::Continue
        })
    });
    let mut outside = outside
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    outside.sort_by(|a, b| a.0.cmp(&b.0));
    let listing = listing::Listing {
        dirs: directories
            .into_inner()
            .unwrap_or_else(|poison| poison.into_inner())
            .into_iter()
            .collect(),
        excluded: std::mem::take(&mut *lock(&excluded)),
        outside: outside
            .iter()
            .filter_map(|(path, refusal)| match refusal {
                Refusal::OutsideWorkspace { target } => {
                    Some((path.to_str()?.to_string(), target.clone()))
                }
                _ => None,
            })
            .collect(),
        ..listing::Listing::default()
    };
    skipped.extend(outside);
    let git_dirs = std::mem::take(&mut *lock(&git_dirs));
    let wanted = found
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner())
        .into_iter()
        .collect();
    Ok((wanted, listing, git_dirs))
}

/// What the shadow holds for the workspace symlink `key`: the link with a target that resolves
/// the same in the copy, or why it is left out.
fn symlink_wanted(workspace: &Path, key: &str) -> Result<Wanted, Refusal> {
    let target = fs::read_link(workspace.join(key)).map_err(|_| Refusal::BaseUnavailable)?;
    match symlink_inside(workspace, key, &target) {
        // A relative target resolves the same in the copy; an absolute one would lead to the
        // real workspace, so it is rewritten relative.
        Some(_) if target.is_relative() => Ok(Wanted::Symlink { target }),
        Some(inside) => Ok(Wanted::Symlink {
            target: relative_target(key, &inside),
        }),
        None => Err(Refusal::OutsideWorkspace { target }),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Puts the unsaved buffers over their files and returns their texts by relative path. A buffer
/// for a file the walk left out (ignored, excluded, inside `.git`) stays out; a buffer with no
/// file on disk yet is added.
fn apply_overlay(
    workspace: &Path,
    options: &ShadowOptions,
    wanted: &mut BTreeMap<String, Wanted>,
) -> HashMap<String, Arc<str>> {
    let given = std::path::absolute(&options.workspace).unwrap_or_default();
    let mut overlays = HashMap::new();
    for (path, text) in &options.overlay {
        let key = relative_key(workspace, path).or_else(|| relative_key(&given, path));
        let Some(key) = key else {
            tracing::debug!(
                "shadow: unsaved buffer {} is outside the workspace",
                path.display()
            );
            continue;
        };
        let relative = Path::new(&key);
        let in_walk = matches!(wanted.get(&key), Some(Wanted::Disk { .. }));
        let under_a_file = created::ancestors(std::iter::once(&key))
            .iter()
            .any(|directory| wanted.contains_key(directory));
        let unlisted_new = !wanted.contains_key(&key)
            && !under_a_file
            && fs::symlink_metadata(workspace.join(&key)).is_err()
            && !key.split('/').any(|part| part == ".git")
            && !(options.exclude)(relative);
        if !(in_walk || unlisted_new) {
            continue;
        }
        let text: Arc<str> = Arc::from(text.as_str());
        let hash = content_hash(text.as_bytes());
        overlays.insert(key.clone(), text.clone());
        wanted.insert(key, Wanted::Overlay { text, hash });
    }
    overlays
}
