//! A document baton keeps writing while the user may be editing it: a task document, a plan.
//!
//! While the editor has the file open, each update lands in the buffer through the merge
//! engine (`jobs::spawn_merge`): three-way against the text baton last wrote, so what the user
//! typed in the document meanwhile (a reply, an answer, a note) stays. While it is not open, the
//! file on disk is rewritten. One merge run carries every update until [`LiveDocument::finish`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::EditSettings;
use crate::frontend::Frontend;
use crate::jobs::{MergeRun, Proposal};
use crate::session::Session;

pub struct LiveDocument {
    path: PathBuf,
    /// The text as baton last wrote it: the base the next update merges against.
    written: String,
    /// The merge landing that carries updates into the open buffer.
    live: Option<MergeRun>,
}

impl LiveDocument {
    /// A document whose file already holds `written`.
    pub fn new(path: PathBuf, written: String) -> LiveDocument {
        LiveDocument {
            path,
            written,
            live: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn written(&self) -> &str {
        &self.written
    }

    /// Takes `text` as what the user sees now, without landing anything: the next update's
    /// merge then treats only later typing as the user's.
    pub fn set_written(&mut self, text: String) {
        self.written = text;
    }

    /// Ends the current merge run and starts the next update from `base` (the buffer's text
    /// now), so a whole new version lands as one minimal edit against what the user has.
    pub fn restart(&mut self, base: String) {
        self.finish();
        self.written = base;
    }

    /// Brings the document to `text`: merged into the open buffer, else written to disk.
    pub async fn publish(
        &mut self,
        session: &Session,
        frontend: &Arc<dyn Frontend>,
        settings: &EditSettings,
        text: String,
    ) {
        if text == self.written {
            return;
        }
        if session.documents.uri_for_path(&self.path).is_some() {
            let sent = self.live.as_ref().is_some_and(|live| {
                !live.done.is_finished()
                    && live.proposals.send(Proposal::Text(text.clone())).is_ok()
            });
            if !sent {
                self.live = crate::jobs::spawn_merge(
                    session,
                    frontend.clone(),
                    &self.path,
                    self.written.clone(),
                    text.clone(),
                    settings,
                );
            }
        } else {
            self.live = None;
            if let Err(err) = write_file(&self.path, &text) {
                tracing::warn!(%err, path = %self.path.display(), "could not write a document");
            }
        }
        self.written = text;
    }

    /// Like [`LiveDocument::publish`] for an intermediate version (a plan still streaming):
    /// it goes only into an open buffer. The file on disk keeps what the editor would read
    /// when it opens the document now, so an editor opening it mid-stream never starts from a
    /// version baton has already moved past.
    pub async fn publish_if_open(
        &mut self,
        session: &Session,
        frontend: &Arc<dyn Frontend>,
        settings: &EditSettings,
        text: String,
    ) {
        if session.documents.uri_for_path(&self.path).is_some() {
            self.publish(session, frontend, settings, text).await;
        }
    }

    /// Lets the current merge run finish what it carries and end.
    pub fn finish(&mut self) {
        if let Some(live) = self.live.take() {
            let _ = live.proposals.send(Proposal::Finish);
        }
    }

    /// Like [`LiveDocument::finish`], and waits until what it carries has landed (or given
    /// way to the user): a job that says "written" has written.
    pub async fn settle(&mut self) {
        if let Some(live) = self.live.take() {
            let _ = live.proposals.send(Proposal::Finish);
            let _ = live.done.await;
        }
    }
}

/// Writes a document baton owns, creating its directory.
pub fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}
