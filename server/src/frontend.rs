//! What a job needs from whoever shows its results: the LSP client or the terminal.
//!
//! Jobs are written once against [`Frontend`]. The language server implements it with
//! `workspace/applyEdit`, `$/progress` and `window/showMessage`; `baton edit` implements it on
//! a document in memory and the terminal. Both feed document changes back to the job as
//! [`DocEvent`]s, exactly as they happened.

use std::path::PathBuf;

use futures::FutureExt;
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

/// One operation of a multi-file change, in editor terms (what `workspace/applyEdit`'s
/// `documentChanges` carries).
#[derive(Debug, Clone)]
pub enum FileOperation {
    /// Replacements in `document`'s offsets. `version` is the open buffer's version the edits
    /// were computed against, or `None` for a file the editor has not opened (its text on disk
    /// is `document`).
    Edit {
        path: PathBuf,
        version: Option<i32>,
        document: Document,
        edits: Vec<Replacement>,
    },
    Create {
        path: PathBuf,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    Delete {
        path: PathBuf,
    },
}

/// Which file operations the editor can apply (`workspace.workspaceEdit.resourceOperations`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceOperations {
    pub create: bool,
    pub rename: bool,
    pub delete: bool,
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

    /// Applies a multi-file change as one `workspace/applyEdit`. Frontends that cannot
    /// (the terminal) refuse.
    fn apply_operations(
        &self,
        label: &str,
        operations: Vec<FileOperation>,
    ) -> BoxFuture<'static, Result<bool, String>> {
        let _ = (label, operations);
        async { Err("this frontend cannot apply multi-file changes".to_string()) }.boxed()
    }

    /// Which resource operations [`Frontend::apply_operations`] may carry.
    fn resource_operations(&self) -> ResourceOperations {
        ResourceOperations::default()
    }

    /// Opens a file in the editor (`window/showDocument`); false when the editor would not.
    fn show_document(&self, path: PathBuf, take_focus: bool) -> BoxFuture<'static, bool> {
        let _ = (path, take_focus);
        async { false }.boxed()
    }

    /// Asks the user to pick one of `actions` (`window/showMessageRequest`). `None` when the
    /// editor cannot ask (Helix answers MethodNotFound) or the user dismissed it.
    fn ask(&self, message: String, actions: Vec<String>) -> BoxFuture<'static, Option<String>> {
        let _ = (message, actions);
        async { None }.boxed()
    }
}
