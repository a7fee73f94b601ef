//! Text documents in editor terms.
//!
//! This crate owns the one document type of baton ([`Document`]), the one place where
//! positions are converted between the encodings an LSP client may negotiate
//! ([`PositionEncoding`]), and ranges that follow a region of text through later edits
//! ([`TrackedRange`]). Everything above this crate speaks byte offsets into the rope; only
//! the conversions here know about UTF-16 code units or UTF-32 code points.

mod document;
mod encoding;
mod tracked;

pub use document::{AppliedChange, ContentChange, Document, Point, TextError};
pub use encoding::{Position, PositionEncoding, Range};
pub use ropey::{Rope, RopeSlice};
pub use tracked::{RangeChange, TrackedRange};
