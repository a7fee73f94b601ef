//! Tree-sitter support for baton: the supported languages, parsing (full and incremental,
//! straight from a rope), definitions and references for the index (`grammars/<lang>/tags.scm`),
//! the document outline, enclosing scopes, the node after a `baton:` marker, and text-only
//! comment helpers that work for any language, and the dirty regions an incremental reparse
//! leaves (`SyntaxTree::dirty_regions_since`) for everything kept up to date across edits.
//!
//! Everything here speaks byte offsets into the document; converting to LSP positions is the
//! server's job.

mod dirty_regions;
mod language;
mod marker;
mod outline;
mod rope_text;
mod symbols;
mod tag_starts;
mod tree;

#[cfg(test)]
mod tests;

pub use language::Language;
pub use marker::{Marker, comment_text, find_marker, find_plan_marker};
pub use symbols::{OutlineItem, Scope, SymbolKind, Tag};
pub use tree::SyntaxTree;
