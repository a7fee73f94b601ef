//! The on-disk cache: one file per workspace holding every indexed file's symbols with the size,
//! modification time and content hash they were computed from.
//!
//! The format is a small hand-written binary encoding (varints and length-prefixed strings)
//! behind a magic and version header. It has no dependency, loads fast, and any mismatch or
//! damage simply means "no cache": the caller rebuilds, never crashes.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use syntax::Language;
use text::StoredPosition;

use crate::file_symbols::{Definition, FileSymbols};

const MAGIC: &[u8; 8] = b"BATONIDX";
/// Bump on any change to the encoding or to what the tags contain, so old caches are rebuilt.
/// Version 3: a definition's line is `text::StoredPosition`'s, which breaks lines at a lone
/// `\r` too (as LSP does); version 2 kept tree-sitter's row, which breaks only at `\n`.
const FORMAT_VERSION: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("cache is damaged or from another version: {0}")]
    Corrupt(&'static str),
}

/// Cached entries keyed by path relative to the workspace root.
pub(crate) type CachedFiles = HashMap<PathBuf, Arc<FileSymbols>>;

/// Where the cache of the workspace at `root` lives: a directory named by a hash of the
/// canonical root, so that two checkouts never share (or clobber) a cache.
pub(crate) fn cache_file(cache_dir: &Path, root: &Path) -> PathBuf {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let hash = crate::walk::content_hash(canonical.to_string_lossy().as_bytes());
    cache_dir.join(format!("{hash:016x}")).join("index.bin")
}

pub(crate) fn load(path: &Path) -> Result<CachedFiles, CacheError> {
    let bytes = fs::read(path)?;
    decode(&bytes)
}

/// Writes the cache atomically: a reader (or a crash) sees the old file or the new one, never
/// half of one.
pub(crate) fn save<'a>(
    path: &Path,
    entries: impl Iterator<Item = (&'a Path, &'a FileSymbols)>,
) -> Result<(), CacheError> {
    let bytes = encode(entries);
    let directory = path
        .parent()
        .ok_or(CacheError::Corrupt("cache path has no parent"))?;
    fs::create_dir_all(directory)?;
    let temporary = directory.join(format!("index.bin.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        // No fsync: after a crash a torn cache fails to decode and costs one rebuild, which is
        // cheaper than syncing on every run.
        file.write_all(&bytes)?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    Ok(result?)
}

pub(crate) fn encode<'a>(entries: impl Iterator<Item = (&'a Path, &'a FileSymbols)>) -> Vec<u8> {
    let mut out = Encoder {
        bytes: Vec::with_capacity(1 << 16),
    };
    out.bytes.extend_from_slice(MAGIC);
    out.bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let entries: Vec<_> = entries.collect();
    out.varint(entries.len() as u64);
    for (relative, file) in entries {
        out.string(&relative.to_string_lossy());
        out.string(file.language.name());
        out.varint(file.size);
        out.varint(file.modified_nanos);
        out.bytes
            .extend_from_slice(&file.content_hash.to_le_bytes());
        out.varint(file.definitions.len() as u64);
        for definition in &file.definitions {
            out.string(&definition.name);
            out.varint(u64::from(crate::kinds::kind_to_byte(definition.kind)));
            let (line, utf8_column, utf16_column) = definition.position.stored_parts();
            out.varint(u64::from(line));
            out.varint(u64::from(definition.name_start));
            out.varint(u64::from(definition.name_end));
            out.varint(u64::from(utf8_column));
            out.varint(u64::from(utf16_column));
            out.varint(u64::from(definition.range_start));
            out.varint(u64::from(definition.range_end));
        }
        out.varint(file.references.len() as u64);
        for (name, count) in &file.references {
            out.string(name);
            out.varint(u64::from(*count));
        }
    }
    out.bytes
}

pub(crate) fn decode(bytes: &[u8]) -> Result<CachedFiles, CacheError> {
    let mut input = Decoder { bytes, position: 0 };
    if input.take(MAGIC.len())? != MAGIC {
        return Err(CacheError::Corrupt("bad magic"));
    }
    let version = u32::from_le_bytes(
        input
            .take(4)?
            .try_into()
            .map_err(|_| CacheError::Corrupt("version"))?,
    );
    if version != FORMAT_VERSION {
        return Err(CacheError::Corrupt("format version changed"));
    }
    let count = input.length()?;
    let mut files = HashMap::with_capacity(count);
    for _ in 0..count {
        let relative = PathBuf::from(input.string()?);
        let language_name = input.string()?;
        let language = Language::ALL
            .iter()
            .copied()
            .find(|language| language.name() == language_name)
            .ok_or(CacheError::Corrupt("unknown language"))?;
        let size = input.varint()?;
        let modified_nanos = input.varint()?;
        let content_hash = u64::from_le_bytes(
            input
                .take(8)?
                .try_into()
                .map_err(|_| CacheError::Corrupt("hash"))?,
        );
        let definition_count = input.length()?;
        let mut definitions = Vec::with_capacity(definition_count);
        for _ in 0..definition_count {
            let name = input.string()?;
            let kind = crate::kinds::kind_from_byte(input.u32()? as u8)
                .ok_or(CacheError::Corrupt("unknown symbol kind"))?;
            let line = input.u32()?;
            let name_range = input.u32()? as usize..input.u32()? as usize;
            let (utf8_column, utf16_column) = (input.u32()?, input.u32()?);
            let range = input.u32()? as usize..input.u32()? as usize;
            let position = StoredPosition::from_stored_parts(line, utf8_column, utf16_column);
            definitions.push(Definition::new(name, kind, position, name_range, range));
        }
        let reference_count = input.length()?;
        let mut references = Vec::with_capacity(reference_count);
        for _ in 0..reference_count {
            let name = Box::from(input.string()?);
            references.push((name, input.u32()?));
        }
        let mut file = FileSymbols::from_parts(language, definitions, references);
        file.size = size;
        file.modified_nanos = modified_nanos;
        file.content_hash = content_hash;
        files.insert(relative, Arc::new(file));
    }
    if input.position != bytes.len() {
        return Err(CacheError::Corrupt("trailing bytes"));
    }
    Ok(files)
}

struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    fn string(&mut self, text: &str) {
        self.varint(text.len() as u64);
        self.bytes.extend_from_slice(text.as_bytes());
    }
}

struct Decoder<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Decoder<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], CacheError> {
        let end = self
            .position
            .checked_add(length)
            .ok_or(CacheError::Corrupt("length overflow"))?;
        let slice = self
            .bytes
            .get(self.position..end)
            .ok_or(CacheError::Corrupt("truncated"))?;
        self.position = end;
        Ok(slice)
    }

    fn varint(&mut self) -> Result<u64, CacheError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .take(1)?
                .first()
                .ok_or(CacheError::Corrupt("truncated"))?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CacheError::Corrupt("varint too long"))
    }

    fn u32(&mut self) -> Result<u32, CacheError> {
        u32::try_from(self.varint()?).map_err(|_| CacheError::Corrupt("number out of range"))
    }

    /// A count of following items, checked against the bytes left so a damaged count cannot make
    /// us reserve gigabytes.
    fn length(&mut self) -> Result<usize, CacheError> {
        let length = self.varint()?;
        if length > (self.bytes.len() - self.position) as u64 {
            return Err(CacheError::Corrupt("count larger than the file"));
        }
        Ok(length as usize)
    }

    fn string(&mut self) -> Result<&'a str, CacheError> {
        let length = self.length()?;
        std::str::from_utf8(self.take(length)?)
            .map_err(|_| CacheError::Corrupt("string is not UTF-8"))
    }
}
