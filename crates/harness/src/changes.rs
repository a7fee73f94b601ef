//! What an agent changed: the shadow diffed against its base.
//!
//! [`diff`] (reached through [`crate::shadow::Shadow::changes`]) is called after every
//! file-change event, so it reads only what moved: every manifest entry is `lstat`ed and
//! compared with the stamp its copy had after seeding; only a file whose stamp differs (or is
//! too recent to prove anything, see the manifest's racy window) is read and compared with its
//! base. Files the agent created are found by listing only the directories whose stamp moved
//! (see [`crate::shadow::created`]), with the copy's ignore rules: what they ignore (`target/`,
//! `node_modules/`, caches) is build output and is never landed.
//!
//! Nothing that could be wrong is landed: binary files (a NUL byte or invalid UTF-8), files over
//! [`Limits::max_file_bytes`], symlinks (editors cannot create them; those leading out of the
//! shadow are reported as such), files under a directory the agent replaced with a symlink,
//! paths left out of the shadow on purpose (never_send or ignored, yet present in the
//! workspace: landing them as created would overwrite a real file the agent never saw), and
//! files whose base cannot be proven.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::shadow::at::Kind;
use crate::shadow::created::{Ignores, find_created};
use crate::shadow::{Entry, Shadow, Source, Stamp, content_hash};

/// Limits on what is landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Files larger than this are reported, not landed.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: 2 * 1024 * 1024,
        }
    }
}

/// One file the agent changed. Paths are relative to the workspace root (and to the shadow's),
/// with `/` separators, never absolute and never containing `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Modified {
        path: PathBuf,
        base: String,
        new: String,
    },
    Created {
        path: PathBuf,
        text: String,
    },
    Deleted {
        path: PathBuf,
        base: String,
    },
    /// A deleted file whose content (exactly or nearly) reappeared under a new path.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        base: String,
        new: String,
    },
    /// A change that is reported, never landed.
    Refused {
        path: PathBuf,
        reason: Refusal,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Binary,
    TooLarge {
        bytes: u64,
    },
    /// A symlink (or a path) that resolves outside the workspace.
    OutsideWorkspace {
        target: PathBuf,
    },
    /// The file's base text could not be recovered (the real file changed on disk meanwhile).
    BaseUnavailable,
    /// A symlink inside the workspace: editors cannot create or retarget links.
    Symlink {
        target: PathBuf,
    },
    /// The path was left out of the shadow on purpose (never_send, ignored) and exists in the
    /// workspace: the agent never saw the real file, so its version is not landed over it.
    NotInShadow,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Binary => f.write_str("binary file"),
            Refusal::TooLarge { bytes } => write!(f, "too large ({bytes} bytes)"),
            Refusal::OutsideWorkspace { target } => {
                write!(f, "resolves outside the workspace ({})", target.display())
            }
            Refusal::BaseUnavailable => {
                f.write_str("the file changed on disk while the agent worked")
            }
            Refusal::Symlink { target } => write!(f, "a symlink ({})", target.display()),
            Refusal::NotInShadow => {
                f.write_str("the agent never saw this file (excluded or ignored)")
            }
        }
    }
}

impl Change {
    /// The path a change is about (the new path of a rename): changes are sorted by it.
    pub fn path(&self) -> &Path {
        match self {
            Change::Modified { path, .. }
            | Change::Created { path, .. }
            | Change::Deleted { path, .. }
            | Change::Refused { path, .. } => path,
            Change::Renamed { to, .. } => to,
        }
    }
}

/// How similar (0 to 1, by lines) a deleted and a created file must be to count as one file
/// renamed and edited, as git's default rename detection (50 %) but a little stricter, since a
/// wrong pairing would show the user a rename they did not expect.
const RENAME_SIMILARITY: f32 = 0.6;

/// Near-rename detection compares every deleted with every created file; beyond this many pairs
/// (a mass move) only exact renames are found and the rest land as deletes and creates.
const MAX_RENAME_PAIRS: usize = 2_500;

/// How long one similarity diff may take before `similar` gives its approximate answer.
const SIMILARITY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(20);

/// Everything the agent changed in `shadow` since it was prepared, sorted by path.
pub(crate) fn diff(shadow: &Shadow) -> Vec<Change> {
    if !shadow.root.is_dir() {
        // Landing "every file deleted" because the copy vanished would be a disaster.
        tracing::warn!(
            "shadow {} is gone: no changes reported",
            shadow.root.display()
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut deleted: Vec<(String, String)> = Vec::new();
    let mut created: Vec<(String, String)> = Vec::new();
    // Directories first: finding created files `lstat`s every known directory, which is also
    // what the entries below need to know about their parents.
    let mut dirs = crate::shadow::paths::RealDirs::new(&shadow.root);
    let mut ignores = Ignores::new(&shadow.root, &shadow.global_ignore);
    let found = find_created(
        &shadow.root,
        &shadow.manifest.entries,
        &shadow.manifest.dirs,
        shadow.manifest.synced_at_ns,
        &mut ignores,
        &mut dirs,
    );

    let keys: Vec<&str> = shadow.manifest.entries.keys().map(String::as_str).collect();
    let stats = crate::shadow::paths::lstat_all(&shadow.root, &keys);
    for ((key, entry), metadata) in shadow.manifest.entries.iter().zip(stats) {
        // Behind a directory the agent replaced with a symlink, the `lstat` by name found
        // nothing: it never follows one (`shadow::at`).
        if let Source::Symlink { target } = &entry.source {
            let path = shadow.root.join(key);
            let unchanged = metadata
                .as_ref()
                .is_some_and(|metadata| metadata.kind == Kind::Symlink)
                && fs::read_link(&path).ok().as_ref() == Some(target);
            if !unchanged {
                out.push(refused(
                    key,
                    Refusal::Symlink {
                        target: target.clone(),
                    },
                ));
                if metadata.is_some_and(|metadata| metadata.kind != Kind::Symlink) {
                    classify_created(shadow, key, &mut created, &mut out);
                }
            }
            continue;
        }
        let Some(metadata) = metadata else {
            deleted_candidate(shadow, key, entry, &mut deleted, &mut out);
            continue;
        };
        if metadata.kind == Kind::Symlink {
            deleted_candidate(shadow, key, entry, &mut deleted, &mut out);
            classify_created(shadow, key, &mut created, &mut out);
            continue;
        }
        if metadata.kind == Kind::Directory {
            // What is inside the new directory is found by the walk below, as created files.
            deleted_candidate(shadow, key, entry, &mut deleted, &mut out);
            continue;
        }
        if metadata.stamp == entry.copy && !entry.copy.is_racy(shadow.manifest.synced_at_ns) {
            continue;
        }
        let path = shadow.root.join(key);
        modified(shadow, key, entry, &path, metadata.stamp.size, &mut out);
    }
    for key in found.files {
        classify_created(shadow, &key, &mut created, &mut out);
    }

    pair_renames(deleted, created, &mut out);
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

fn refused(key: &str, reason: Refusal) -> Change {
    Change::Refused {
        path: PathBuf::from(key),
        reason,
    }
}

/// Text if the bytes are text: no NUL (git's and ripgrep's binary test) and valid UTF-8.
fn text_of(bytes: &[u8]) -> Result<String, Refusal> {
    if bytes.contains(&0) {
        return Err(Refusal::Binary);
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| Refusal::Binary)
}

/// Reads at most `limit + 1` bytes: enough to tell that a file is over the limit.
fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The text a manifest entry was seeded with, proven or refused (and remembered either way).
fn base(shadow: &Shadow, key: &str, entry: &Entry) -> Result<Arc<[u8]>, Refusal> {
    let mut bases = shadow
        .bases
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    if let Some(known) = bases.get(key) {
        return known.clone();
    }
    let found = recover_base(shadow, key, entry);
    bases.insert(key.to_string(), found.clone());
    found
}

fn recover_base(shadow: &Shadow, key: &str, entry: &Entry) -> Result<Arc<[u8]>, Refusal> {
    match &entry.source {
        Source::Overlay { .. } => shadow
            .overlays
            .get(key)
            .map(|text| Arc::from(text.as_bytes()))
            .ok_or(Refusal::BaseUnavailable),
        Source::Disk { stamp } => {
            let real = shadow.workspace.join(key);
            let metadata = fs::symlink_metadata(&real).map_err(|_| Refusal::BaseUnavailable)?;
            if Stamp::of(&metadata) != *stamp {
                return Err(Refusal::BaseUnavailable);
            }
            if stamp.size > shadow.limits.max_file_bytes {
                return Err(Refusal::TooLarge { bytes: stamp.size });
            }
            let bytes = read_limited(&real, shadow.limits.max_file_bytes)
                .map_err(|_| Refusal::BaseUnavailable)?;
            let proven = bytes.len() as u64 == stamp.size
                && entry.hash.is_none_or(|hash| content_hash(&bytes) == hash);
            if !proven {
                return Err(Refusal::BaseUnavailable);
            }
            Ok(Arc::from(bytes))
        }
        Source::Symlink { .. } => Err(Refusal::BaseUnavailable),
    }
}

fn deleted_candidate(
    shadow: &Shadow,
    key: &str,
    entry: &Entry,
    deleted: &mut Vec<(String, String)>,
    out: &mut Vec<Change>,
) {
    match base(shadow, key, entry).and_then(|bytes| text_of(&bytes)) {
        Ok(text) => deleted.push((key.to_string(), text)),
        Err(reason) => out.push(refused(key, reason)),
    }
}

/// A seeded file whose copy's stamp moved: read it and compare with its base.
fn modified(
    shadow: &Shadow,
    key: &str,
    entry: &Entry,
    path: &Path,
    size: u64,
    out: &mut Vec<Change>,
) {
    let limit = shadow.limits.max_file_bytes;
    if size > limit {
        if !large_file_unchanged(shadow, key, entry, path) {
            out.push(refused(key, Refusal::TooLarge { bytes: size }));
        }
        return;
    }
    let new = match read_limited(path, limit) {
        Ok(new) => new,
        // Gone between the stat and the read: the next call sees it deleted.
        Err(error) => {
            tracing::debug!("reading {}: {error}", path.display());
            return;
        }
    };
    let base = base(shadow, key, entry);
    if base.as_deref().is_ok_and(|base| base == new.as_slice()) {
        return;
    }
    if new.len() as u64 > limit {
        out.push(refused(
            key,
            Refusal::TooLarge {
                bytes: new.len() as u64,
            },
        ));
        return;
    }
    let change = base
        .and_then(|base| text_of(&base))
        .and_then(|base| Ok((base, text_of(&new)?)));
    out.push(match change {
        Ok((base, new)) => Change::Modified {
            path: PathBuf::from(key),
            base,
            new,
        },
        Err(reason) => refused(key, reason),
    });
}

/// Whether a copy over the size limit still equals what it was seeded with (it was touched,
/// not changed), compared in blocks without holding either in memory.
fn large_file_unchanged(shadow: &Shadow, key: &str, entry: &Entry, path: &Path) -> bool {
    match &entry.source {
        Source::Disk { stamp } => {
            let real = shadow.workspace.join(key);
            entry.hash.is_none()
                && fs::symlink_metadata(&real).is_ok_and(|metadata| Stamp::of(&metadata) == *stamp)
                && same_content(path, &real).unwrap_or(false)
        }
        Source::Overlay { hash } => fs::read(path).is_ok_and(|bytes| content_hash(&bytes) == *hash),
        Source::Symlink { .. } => false,
    }
}

fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut a, mut b) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut block_a, mut block_b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let read = a.read(&mut block_a)?;
        if read == 0 {
            return Ok(b.read(&mut block_b[..1])? == 0);
        }
        b.read_exact(&mut block_b[..read])?;
        if block_a[..read] != block_b[..read] {
            return Ok(false);
        }
    }
}

/// A path in the shadow that was not seeded: a created text file, or a refusal.
fn classify_created(
    shadow: &Shadow,
    key: &str,
    created: &mut Vec<(String, String)>,
    out: &mut Vec<Change>,
) {
    let path = shadow.root.join(key);
    let Ok(metadata) = fs::symlink_metadata(&path) else {
        return;
    };
    if metadata.file_type().is_symlink() {
        let target = fs::read_link(&path).unwrap_or_default();
        let reason = match crate::shadow::paths::symlink_inside(&shadow.root, key, &target) {
            Some(_) => Refusal::Symlink { target },
            None => Refusal::OutsideWorkspace { target },
        };
        out.push(refused(key, reason));
        return;
    }
    if !metadata.file_type().is_file() {
        return;
    }
    if (shadow.exclude)(Path::new(key)) || fs::symlink_metadata(shadow.workspace.join(key)).is_ok()
    {
        out.push(refused(key, Refusal::NotInShadow));
        return;
    }
    let limit = shadow.limits.max_file_bytes;
    if metadata.len() > limit {
        out.push(refused(
            key,
            Refusal::TooLarge {
                bytes: metadata.len(),
            },
        ));
        return;
    }
    let Ok(bytes) = read_limited(&path, limit) else {
        return;
    };
    if bytes.len() as u64 > limit {
        out.push(refused(
            key,
            Refusal::TooLarge {
                bytes: bytes.len() as u64,
            },
        ));
        return;
    }
    match text_of(&bytes) {
        Ok(text) => created.push((key.to_string(), text)),
        Err(reason) => out.push(refused(key, reason)),
    }
}

/// Pairs deleted and created files into renames (exact content first, then the most similar
/// pairs above [`RENAME_SIMILARITY`]); the rest become `Deleted` and `Created`.
fn pair_renames(
    deleted: Vec<(String, String)>,
    created: Vec<(String, String)>,
    out: &mut Vec<Change>,
) {
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut deleted_used = HashSet::new();
    let mut created_used = HashSet::new();

    // Empty files are all alike: pairing them would invent renames.
    let mut by_text: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, (_, text)) in deleted.iter().enumerate() {
        if !text.is_empty() {
            by_text.entry(text.as_str()).or_default().push(index);
        }
    }
    for (created_index, (_, text)) in created.iter().enumerate() {
        let Some(candidates) = by_text.get_mut(text.as_str()) else {
            continue;
        };
        if !candidates.is_empty() {
            let deleted_index = candidates.remove(0);
            deleted_used.insert(deleted_index);
            created_used.insert(created_index);
            pairs.push((deleted_index, created_index));
        }
    }

    let open_deleted: Vec<usize> = (0..deleted.len())
        .filter(|index| !deleted_used.contains(index) && !deleted[*index].1.is_empty())
        .collect();
    let open_created: Vec<usize> = (0..created.len())
        .filter(|index| !created_used.contains(index) && !created[*index].1.is_empty())
        .collect();
    if open_deleted.len() * open_created.len() <= MAX_RENAME_PAIRS {
        let mut scored: Vec<(f32, usize, usize)> = Vec::new();
        for &deleted_index in &open_deleted {
            for &created_index in &open_created {
                let (old, new) = (&deleted[deleted_index].1, &created[created_index].1);
                let (short, long) = (old.len().min(new.len()), old.len().max(new.len()));
                if short * 2 < long {
                    continue;
                }
                let ratio = similar::TextDiff::configure()
                    .timeout(SIMILARITY_TIMEOUT)
                    .diff_lines(old.as_str(), new.as_str())
                    .ratio();
                if ratio >= RENAME_SIMILARITY {
                    scored.push((ratio, deleted_index, created_index));
                }
            }
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        for (_, deleted_index, created_index) in scored {
            if !deleted_used.contains(&deleted_index) && !created_used.contains(&created_index) {
                deleted_used.insert(deleted_index);
                created_used.insert(created_index);
                pairs.push((deleted_index, created_index));
            }
        }
    }

    let mut deleted: Vec<Option<(String, String)>> = deleted.into_iter().map(Some).collect();
    let mut created: Vec<Option<(String, String)>> = created.into_iter().map(Some).collect();
    for (deleted_index, created_index) in pairs {
        if let (Some((from, base)), Some((to, new))) =
            (deleted[deleted_index].take(), created[created_index].take())
        {
            out.push(Change::Renamed {
                from: PathBuf::from(from),
                to: PathBuf::from(to),
                base,
                new,
            });
        }
    }
    out.extend(
        deleted
            .into_iter()
            .flatten()
            .map(|(path, base)| Change::Deleted {
                path: PathBuf::from(path),
                base,
            }),
    );
    out.extend(
        created
            .into_iter()
            .flatten()
            .map(|(path, text)| Change::Created {
                path: PathBuf::from(path),
                text,
            }),
    );
}
