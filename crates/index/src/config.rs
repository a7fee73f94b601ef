//! Configuration of the workspace index: excludes, file size limit, cache location, threads.

use std::path::PathBuf;

/// How the workspace is walked and where the index is cached.
#[derive(Clone, Debug)]
pub struct IndexConfig {
    /// Glob patterns (relative to the workspace root) of files and directories to leave out, on
    /// top of what `.gitignore` and `.ignore` already exclude.
    pub exclude: Vec<String>,
    /// Files larger than this are skipped with a logged reason: they are almost always generated
    /// or vendored, and parsing them would dominate both time and memory.
    pub max_file_bytes: u64,
    /// Directory holding one cache subdirectory per workspace; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Walker threads; each parses the files it finds.
    pub threads: usize,
}

impl Default for IndexConfig {
    fn default() -> IndexConfig {
        IndexConfig {
            exclude: Vec::new(),
            max_file_bytes: 1024 * 1024,
            cache_dir: default_cache_dir(),
            threads: std::thread::available_parallelism().map_or(1, |count| count.get()),
        }
    }
}

/// The user's cache directory for baton (`~/.cache/baton` on Linux), if the platform has one.
pub fn default_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|directory| directory.join("baton"))
}
