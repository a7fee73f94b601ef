//! Finding and reading source files: the gitignore-aware parallel walk, exclude globs, and the
//! limits that keep huge, binary and invalid UTF-8 files out of the index.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::gitignore::GitignoreBuilder;

/// How many leading bytes are checked for NUL, the same heuristic git and ripgrep use to call a
/// file binary.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// Size and modification time, compared against the cache before a file is read at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub(crate) size: u64,
    pub(crate) modified_nanos: u64,
}

impl FileStamp {
    pub(crate) fn of(metadata: &fs::Metadata) -> FileStamp {
        let modified_nanos = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |duration| {
                u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
            });
        FileStamp {
            size: metadata.len(),
            modified_nanos,
        }
    }
}

/// What reading a candidate source file produced.
pub(crate) enum SourceText {
    Text { text: String, content_hash: u64 },
    Skipped { reason: String },
}

/// Reads a file unless it breaks one of the limits; the reason is returned for the report.
pub(crate) fn read_source(
    path: &Path,
    stamp: FileStamp,
    max_file_bytes: u64,
) -> std::io::Result<SourceText> {
    if stamp.size > max_file_bytes {
        return Ok(SourceText::Skipped {
            reason: format!("larger than {max_file_bytes} bytes"),
        });
    }
    let mut bytes = Vec::with_capacity(stamp.size as usize);
    // Read one byte past the limit so that a file that grew since its metadata was taken is
    // still caught without reading all of it.
    fs::File::open(path)?
        .take(max_file_bytes + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_file_bytes {
        return Ok(SourceText::Skipped {
            reason: format!("larger than {max_file_bytes} bytes"),
        });
    }
    Ok(text_from_bytes(bytes))
}

/// Applies the binary and UTF-8 checks to file contents.
pub(crate) fn text_from_bytes(bytes: Vec<u8>) -> SourceText {
    let sniffed = &bytes[..bytes.len().min(BINARY_SNIFF_BYTES)];
    if sniffed.contains(&0) {
        return SourceText::Skipped {
            reason: "binary".to_owned(),
        };
    }
    let content_hash = content_hash(&bytes);
    match String::from_utf8(bytes) {
        Ok(text) => SourceText::Text { text, content_hash },
        Err(_) => SourceText::Skipped {
            reason: "not valid UTF-8".to_owned(),
        },
    }
}

/// A fast, stable 64-bit hash of file contents (FNV-1a over 8-byte words). It must not change
/// between builds, since it is stored in the on-disk cache; std's `DefaultHasher` promises no such
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

/// The user's `exclude` globs, matched against paths relative to the workspace root.
pub(crate) struct ExcludeMatcher {
    globs: GlobSet,
}

impl ExcludeMatcher {
    pub(crate) fn new(patterns: &[String]) -> ExcludeMatcher {
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            match Glob::new(pattern) {
                Ok(glob) => {
                    builder.add(glob);
                }
                // A bad pattern in a (possibly hostile) workspace config must not stop indexing.
                Err(error) => tracing::warn!("ignoring invalid exclude glob {pattern:?}: {error}"),
            }
        }
        let globs = builder.build().unwrap_or_else(|error| {
            tracing::warn!("ignoring exclude globs: {error}");
            GlobSet::empty()
        });
        ExcludeMatcher { globs }
    }

    /// Whether a file or directory (relative path) is excluded. A directory also counts as
    /// excluded when a pattern like `**/vendor/**` matches everything under it.
    pub(crate) fn is_excluded(&self, relative: &Path, is_dir: bool) -> bool {
        if self.globs.is_empty() {
            return false;
        }
        if self.globs.is_match(relative) {
            return true;
        }
        is_dir && self.globs.is_match(relative.join("x"))
    }
}

/// The relative path of `path` under `root`, if it is inside the workspace.
pub(crate) fn relative_path(root: &Path, path: &Path) -> Option<PathBuf> {
    path.strip_prefix(root).ok().map(Path::to_path_buf)
}

/// Whether a single file would be left out by the walk: hidden components, `.gitignore` and
/// `.ignore` files between the root and the file. Used when a watched file changes, so that a
/// save does not pull an ignored file into the index.
pub(crate) fn is_ignored(root: &Path, relative: &Path) -> bool {
    let hidden = relative
        .components()
        .any(|component| component.as_os_str().to_string_lossy().starts_with('.'));
    if hidden {
        return true;
    }
    // Deeper ignore files override shallower ones, so check from the file's directory upwards and
    // let the first decisive match win.
    let mut directories: Vec<PathBuf> = vec![root.to_path_buf()];
    let mut current = root.to_path_buf();
    if let Some(parent) = relative.parent() {
        for component in parent.components() {
            current.push(component);
            directories.push(current.clone());
        }
    }
    let absolute = root.join(relative);
    for directory in directories.iter().rev() {
        let mut builder = GitignoreBuilder::new(directory);
        let mut any = false;
        for name in [".gitignore", ".ignore"] {
            let file = directory.join(name);
            if file.is_file() {
                any = true;
                if let Some(error) = builder.add(&file) {
                    tracing::debug!("reading {}: {error}", file.display());
                }
            }
        }
        if !any {
            continue;
        }
        let Ok(matcher) = builder.build() else {
            continue;
        };
        let matched = matcher.matched_path_or_any_parents(&absolute, false);
        if matched.is_ignore() {
            return true;
        }
        if matched.is_whitelist() {
            return false;
        }
    }
    false
}
