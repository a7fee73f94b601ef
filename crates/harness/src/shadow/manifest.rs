//! The shadow's manifest: what every file in the copy was seeded from, and the copy's own
//! size, modification time and inode right after seeding.
//!
//! It is what makes a second `prepare` cheap (only entries whose workspace side or shadow side
//! moved are copied again) and what `changes` compares against without reading unchanged files.
//! It lives on disk beside the copy so a restarted server reuses the shadow; anything that does
//! not parse or does not describe this workspace is discarded and the shadow is seeded afresh.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::listing::Listing;

/// Bumped whenever the format or its meaning changes: an old manifest then re-seeds.
const VERSION: u32 = 3;

/// A stamp whose modification time lies this close to (or after) the moment the manifest was
/// written cannot tell a later write in the same timestamp tick apart from ours (git's "racily
/// clean" problem): such entries are compared by content instead. File system timestamps are
/// taken from a coarse clock (one scheduler tick, 1–10 ms), so 50 ms is a wide margin.
pub(crate) const RACY_WINDOW_NANOS: u64 = 50_000_000;

/// Size, modification time and inode: a file whose stamp is unchanged was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub(crate) struct Stamp {
    pub(crate) size: u64,
    pub(crate) mtime_ns: u64,
    pub(crate) ino: u64,
}

impl Stamp {
    pub(crate) fn of(metadata: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(metadata);
        #[cfg(not(unix))]
        let ino = 0;
        Stamp {
            size: metadata.len(),
            mtime_ns: metadata.modified().map_or(0, nanos_since_epoch),
            ino,
        }
    }

    /// Whether this stamp is too close to `synced_at_ns` to prove that nothing wrote the file
    /// after it was taken.
    pub(crate) fn is_racy(&self, synced_at_ns: u64) -> bool {
        self.mtime_ns.saturating_add(RACY_WINDOW_NANOS) >= synced_at_ns
    }
}

pub(crate) fn nanos_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |duration| {
        u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
    })
}

pub(crate) fn now_ns() -> u64 {
    nanos_since_epoch(SystemTime::now())
}

/// Where a shadow file came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Source {
    /// Copied from the workspace file, which had this stamp when it was listed.
    Disk { stamp: Stamp },
    /// Written from an unsaved buffer whose text has this hash (the text itself is kept in
    /// memory: the next `prepare` is handed the buffers again).
    Overlay { hash: u64 },
    /// A symlink inside the workspace, recreated with this (relative) target.
    Symlink { target: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) source: Source,
    /// The shadow file's stamp right after it was written.
    pub(crate) copy: Stamp,
    /// The hash of the seeded content, kept only when the workspace file's stamp was racy at
    /// seeding time, so that recovering the base from the workspace can be verified by content.
    pub(crate) hash: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) version: u32,
    pub(crate) workspace: PathBuf,
    /// When the last `prepare` finished writing (nanoseconds since the epoch).
    pub(crate) synced_at_ns: u64,
    /// Relative, `/`-separated paths.
    pub(crate) entries: BTreeMap<String, Entry>,
    /// Every non-ignored directory of the copy (the root as `""`) and its stamp after the last
    /// `prepare`: what the agent created is looked for only where a stamp moved.
    pub(crate) dirs: BTreeMap<String, Stamp>,
    /// What the last walk of the workspace saw, so that a re-sync can do without one.
    #[serde(default)]
    pub(crate) listing: Listing,
}

/// Manifests this process wrote, by path, with the stamp their file had then: a re-sync in the
/// same process (the server's next task) skips parsing a manifest that nobody touched since
/// (for a big tree it is a megabyte of JSON).
static WRITTEN: Mutex<BTreeMap<PathBuf, (Stamp, Arc<Manifest>)>> = Mutex::new(BTreeMap::new());

fn written() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, (Stamp, Arc<Manifest>)>> {
    WRITTEN.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Manifest {
    pub(crate) fn new(workspace: &Path) -> Manifest {
        Manifest {
            version: VERSION,
            workspace: workspace.to_path_buf(),
            synced_at_ns: 0,
            entries: BTreeMap::new(),
            dirs: BTreeMap::new(),
            listing: Listing::default(),
        }
    }

    /// The manifest at `path` if it is whole, of this version, for this workspace, and every
    /// path in it is a plain relative path (a tampered manifest must not make `prepare` write
    /// or delete outside the shadow).
    pub(crate) fn load(path: &Path, workspace: &Path) -> Option<Arc<Manifest>> {
        let stamp = Stamp::of(&fs::symlink_metadata(path).ok()?);
        if let Some((written_stamp, manifest)) = written().remove(path)
            && written_stamp == stamp
            && manifest.workspace == workspace
        {
            return Some(manifest);
        }
        let bytes = fs::read(path).ok()?;
        let manifest: Manifest = match serde_json::from_slice(&bytes) {
            Ok(manifest) => manifest,
            Err(error) => {
                tracing::warn!("discarding the shadow manifest {}: {error}", path.display());
                return None;
            }
        };
        let valid = manifest.version == VERSION
            && manifest.workspace == workspace
            && manifest.entries.keys().all(|key| is_plain_relative(key))
            && manifest
                .dirs
                .keys()
                .all(|key| key.is_empty() || is_plain_relative(key));
        if !valid {
            tracing::warn!(
                "discarding the shadow manifest {}: not for this workspace or version",
                path.display()
            );
            return None;
        }
        Some(Arc::new(manifest))
    }

    /// Writes the manifest atomically (a temporary file renamed over the old one).
    pub(crate) fn save(manifest: Arc<Manifest>, path: &Path) -> io::Result<()> {
        let temporary = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&*manifest).map_err(io::Error::other)?;
        fs::write(&temporary, bytes)?;
        fs::rename(&temporary, path)?;
        let stamp = Stamp::of(&fs::symlink_metadata(path)?);
        written().insert(path.to_path_buf(), (stamp, manifest));
        Ok(())
    }
}

/// Whether `path` is non-empty, relative, `/`-separated and made of normal components only.
pub(crate) fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && Path::new(path)
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// A fast, stable 64-bit hash of file contents (FNV-1a over 8-byte words, as the index uses).
/// Stored in the manifest, so it must not change between builds; std's hasher promises no such
/// thing.
pub(crate) fn content_hash(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        hash = (hash ^ word).wrapping_mul(PRIME).rotate_left(23);
    }
    for &byte in chunks.remainder() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
    }
    hash
}
