//! Text documents in editor terms.
//!
//! This crate owns the one document type of baton ([`Document`]), the one place where
//! positions are converted between the encodings an LSP client may negotiate
//! ([`PositionEncoding`]), including the positions the index stores for files that are not open
//! ([`StoredPosition`], [`column_in_text`]). Everything above this crate speaks byte offsets into the rope; only
//! the conversions here know about UTF-16 code units or UTF-32 code points. (A job's target
//! region follows edits in `edit::landing`, which locates it by content.) Byte offsets that may
//! fall inside a character are made whole by [`boundary`], the one place that rounds them.

pub mod boundary;
mod document;
mod encoding;

pub use document::{AppliedChange, ContentChange, Document, Point, TextError};
pub use encoding::{Position, PositionEncoding, Range, StoredPosition, column_in_text};
pub use ropey::{Rope, RopeSlice};
