//! The inline edit engine, in editor terms (byte offsets, versions, documents).
//!
//! - [`prompt`] assembles what the model is asked: instruction, target, enclosing scope,
//!   diagnostics and repo map, under a context budget.
//! - [`reply`] turns the model's streamed reply into the target's new text, stripping a single
//!   surrounding code fence without ever showing it.
//! - [`preview`] aligns a partial reply with the original region, so the buffer shows the new
//!   text followed by the not-yet-rewritten rest of the original.
//! - [`diff`] computes minimal edits between two texts.
//! - [`merge`] merges a proposed whole text with what the user typed meanwhile (three-way).
//! - [`landing`] tracks the target region through the document's versions and decides, for each
//!   change the editor reports, whether it was baton's edit, a change elsewhere, or the user
//!   typing inside the target.
//! - [`engine`] is one job's landing as a synchronous state machine: events in (model text,
//!   document changes, the editor's answers, timers, cancel), effects out (send this edit,
//!   report progress, finish). The server drives it; agents will land their changes through it.
//! - [`next_edit`] is next-edit suggestions: the prompt showing the user's change, the JSON
//!   reply's parsing, proposals placed in the document and moved through later changes.

pub mod diff;
pub mod engine;
pub mod landing;
pub mod merge;
pub mod next_edit;
pub mod preview;
pub mod prompt;
pub mod reply;
