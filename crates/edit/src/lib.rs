//! The inline edit engine, in editor terms (byte offsets, versions, documents).
//!
//! - [`prompt`] assembles what the model is asked: instruction, target, enclosing scope,
//!   diagnostics and repo map, under a context budget.
//! - [`reply`] turns the model's streamed reply into the target's new text, stripping a single
//!   surrounding code fence without ever showing it.
//! - [`preview`] aligns a partial reply with the original region, so the buffer shows the new
//!   text followed by the not-yet-rewritten rest of the original.
//! - [`diff`] computes minimal edits between two texts.
//! - [`landing`] tracks the target region through the document's versions and decides, for each
//!   change the editor reports, whether it was baton's edit, a change elsewhere, or the user
//!   typing inside the target.

pub mod diff;
pub mod landing;
pub mod preview;
pub mod prompt;
pub mod reply;
