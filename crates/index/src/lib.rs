//! The workspace index: every source file's definitions and references, kept current as files
//! change on disk and in open buffers, with fuzzy symbol search, exact-name lookup for the
//! definition fallback, and the repo map that gives prompts their context.
//!
//! Invariants:
//! - Only compact per-file data is kept for closed files ([`file_symbols`]); trees and text are
//!   kept only for open documents, and only by their owner (the server).
//! - An open buffer's symbols win over the file on disk until it is closed.
//! - Readers never wait on a long write: files are parsed without any lock held and each result
//!   is published with a single map insert.
//! - Hostile files (huge, binary, invalid UTF-8) are skipped with a reason, never a crash.

mod cache;
mod config;
mod file_symbols;
mod kinds;
mod open_document;
mod repo_map;
mod report;
mod search;
mod walk;
mod workspace;

#[cfg(test)]
mod tests;

pub use cache::CacheError;
pub use config::{IndexConfig, default_cache_dir};
pub use repo_map::{MapFocus, RepoMap};
pub use report::{IndexReport, LanguageCount, peak_rss_kib};
pub use search::SearchContext;
pub use workspace::WorkspaceIndex;

use std::ops::Range;
use std::path::PathBuf;

/// A definition somewhere in the workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub kind: syntax::SymbolKind,
    pub path: PathBuf,
    /// Byte range of the name in its file.
    pub name_range: Range<usize>,
    /// Where the name starts, as LSP counts it: its line, and its column in whichever
    /// encoding can be told without reading the file (see `text::StoredPosition`).
    pub position: text::StoredPosition,
    /// The name of the innermost definition enclosing this one (a method's class).
    pub container: Option<String>,
}

/// A search result; higher scores are better matches.
#[derive(Clone, Debug, PartialEq)]
pub struct SymbolMatch {
    pub symbol: Symbol,
    pub score: f32,
}

/// The server shares one index between its tasks.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<WorkspaceIndex>();
};
