//! What a job needs from whoever shows its results: the LSP client or the terminal.
//!
//! Jobs are written once against [`Frontend`]. The language server implements it with
//! `workspace/applyEdit`, `$/progress` and `window/showMessage`; `baton edit` implements it on
//! a document in memory and the terminal. Both feed document changes back to the job as
//! [`DocEvent`]s, exactly as they happened.

use futures::future::BoxFuture;
use text::{AppliedChange, Document};

use edit::diff::Replacement;

use crate::session::DocumentUri;

/// A document changed: its new state and what changed, in order.
#[derive(Debug, Clone)]
pub struct DocEvent {
    pub document: Document,
    pub changes: Vec<AppliedChange>,
}

/// How loud a message is; the engine picks it for the messages it words.
pub use edit::engine::MessageLevel;

pub trait Frontend: Send + Sync + 'static {
    /// Asks for `replacement` (offsets into `document`) to be applied to the document at
    /// `document.version()`. Answers what the editor answered; the job trusts only the
    /// document changes it sees afterwards.
    fn apply_edit(
        &self,
        uri: &DocumentUri,
        document: &Document,
        replacement: &Replacement,
    ) -> BoxFuture<'static, Result<bool, String>>;

    fn progress_begin(&self, token: &str, title: &str, message: &str) -> BoxFuture<'static, ()>;

    fn progress_report(&self, token: &str, message: String) -> BoxFuture<'static, ()>;

    fn progress_end(&self, token: &str, message: String) -> BoxFuture<'static, ()>;

    fn show_message(&self, level: MessageLevel, text: String) -> BoxFuture<'static, ()>;

    /// Shows a Markdown text to the user (an explanation).
    fn show_markdown(&self, title: &str, markdown: String) -> BoxFuture<'static, ()>;
}
