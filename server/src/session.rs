//! The server's state: open documents (with their syntax trees and the jobs listening to them),
//! the negotiated position encoding, the resolved configuration and the running jobs.
//!
//! Documents change in exactly one place, [`Documents::apply`], which the LSP layer calls in
//! message arrival order before any handler runs (see `lsp::ordered`). Readers take snapshots:
//! cloning a document clones a rope, which shares its nodes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use dashmap::DashMap;
use tokio::sync::mpsc;

use index::WorkspaceIndex;
use syntax::{Language, SyntaxTree};
use text::{AppliedChange, ContentChange, Document, PositionEncoding};

use crate::config::{NeverSend, Resolved};
use crate::frontend::DocEvent;
use crate::jobs::Jobs;

/// Largest open document that gets a syntax tree.
const MAX_PARSED_BYTES: usize = 8 * 1024 * 1024;

/// Changes kept before the tree is brought up to date even though nobody asked for it.
const MAX_PENDING_CHANGES: usize = 64;

/// An open document and what hangs off it.
///
/// The syntax tree (and the index's view of the buffer) is brought up to date lazily: a
/// keystroke or a streamed edit only records its change, and the next reader reparses once for
/// all pending changes. A job streaming fifty edits into a buffer costs no parse at all.
pub struct OpenDocument {
    pub document: Document,
    tree: Option<SyntaxTree>,
    /// Changes applied to `document` but not yet to `tree` and the index, in order.
    pending: Vec<AppliedChange>,
    pub path: Option<PathBuf>,
    listeners: Vec<mpsc::UnboundedSender<DocEvent>>,
}

impl OpenDocument {
    /// Brings the tree and the index up to date with the document.
    fn refresh(&mut self, index: Option<&WorkspaceIndex>) {
        if self.pending.is_empty() {
            return;
        }
        if let Some(tree) = &mut self.tree {
            tree.update(self.document.rope(), &self.pending);
            if let (Some(index), Some(path)) = (index, &self.path) {
                index.update_open_document(path, self.document.rope(), tree, &self.pending);
            }
        }
        self.pending.clear();
    }
}

/// A change to the set of open documents, in editor terms.
#[derive(Debug, Clone)]
pub enum DocumentUpdate {
    Open {
        uri: String,
        path: Option<PathBuf>,
        text: String,
        version: i32,
        language_id: String,
    },
    Change {
        uri: String,
        version: i32,
        changes: Vec<ContentChange>,
    },
    Close {
        uri: String,
    },
}

#[derive(Default)]
pub struct Documents {
    open: DashMap<String, OpenDocument>,
}

impl Documents {
    /// The one mutation path for open documents. Never blocks on anything but the map shard.
    /// The workspace index, when there is one, follows open buffers from here too.
    pub fn apply(
        &self,
        update: DocumentUpdate,
        encoding: PositionEncoding,
        index: Option<&WorkspaceIndex>,
    ) -> Result<(), String> {
        match update {
            DocumentUpdate::Open {
                uri,
                path,
                text,
                version,
                language_id,
            } => {
                let document = Document::new(&text, version, language_id);
                let language = language_of(&document, path.as_deref());
                // A huge buffer would hold up every later message while it parses; such files get
                // no tree (no markers by node, no symbols) but still sync and edit.
                let tree = language
                    .filter(|_| document.len_bytes() <= MAX_PARSED_BYTES)
                    .and_then(|language| SyntaxTree::parse(language, document.rope()));
                if let (Some(index), Some(path), Some(tree)) = (index, &path, &tree) {
                    index.set_open_document(path, document.rope(), tree);
                }
                self.open.insert(
                    uri,
                    OpenDocument {
                        document,
                        tree,
                        pending: Vec::new(),
                        path,
                        listeners: Vec::new(),
                    },
                );
                Ok(())
            }
            DocumentUpdate::Change {
                uri,
                version,
                changes,
            } => {
                let mut entry = self
                    .open
                    .get_mut(&uri)
                    .ok_or_else(|| format!("didChange for a document that is not open: {uri}"))?;
                let open = &mut *entry;
                let applied = open
                    .document
                    .apply_changes(version, &changes, encoding)
                    .map_err(|err| format!("{uri}: {err}"))?;
                if open.tree.is_some() {
                    open.pending.extend_from_slice(&applied);
                    if open.pending.len() > MAX_PENDING_CHANGES {
                        open.refresh(index);
                    }
                }
                if !open.listeners.is_empty() {
                    let event = DocEvent {
                        document: open.document.clone(),
                        changes: applied,
                    };
                    open.listeners
                        .retain(|listener| listener.send(event.clone()).is_ok());
                }
                Ok(())
            }
            DocumentUpdate::Close { uri } => {
                // Dropping the listeners tells running jobs the document is gone.
                if let Some((_, open)) = self.open.remove(&uri)
                    && let (Some(index), Some(path)) = (index, &open.path)
                {
                    index.close_document(path);
                }
                Ok(())
            }
        }
    }

    /// A snapshot of a document and its up-to-date tree.
    pub fn snapshot(
        &self,
        uri: &str,
        index: Option<&WorkspaceIndex>,
    ) -> Option<(Document, Option<SyntaxTree>, Option<PathBuf>)> {
        let mut open = self.open.get_mut(uri)?;
        open.refresh(index);
        Some((open.document.clone(), open.tree.clone(), open.path.clone()))
    }

    /// Brings every open buffer's tree and index entry up to date, before a workspace query.
    pub fn refresh_all(&self, index: &WorkspaceIndex) {
        for mut open in self.open.iter_mut() {
            open.refresh(Some(index));
        }
    }

    /// A snapshot plus a channel that receives every later change, atomically: no change can
    /// fall between the two.
    pub fn subscribe(
        &self,
        uri: &str,
        index: Option<&WorkspaceIndex>,
    ) -> Option<(
        Document,
        Option<SyntaxTree>,
        mpsc::UnboundedReceiver<DocEvent>,
    )> {
        let mut open = self.open.get_mut(uri)?;
        open.refresh(index);
        let (sender, receiver) = mpsc::unbounded_channel();
        open.listeners.push(sender);
        Some((open.document.clone(), open.tree.clone(), receiver))
    }

    pub fn uris(&self) -> Vec<String> {
        self.open.iter().map(|open| open.key().clone()).collect()
    }

    pub fn open_paths(&self) -> Vec<PathBuf> {
        self.open
            .iter()
            .filter_map(|open| open.path.clone())
            .collect()
    }

    /// Hands every open buffer to a newly created index.
    pub fn register_all(&self, index: &WorkspaceIndex) {
        for mut open in self.open.iter_mut() {
            open.refresh(None);
            if let (Some(path), Some(tree)) = (&open.path, &open.tree) {
                index.set_open_document(path, open.document.rope(), tree);
            }
        }
    }
}

pub fn language_of(document: &Document, path: Option<&Path>) -> Option<Language> {
    Language::from_language_id(document.language_id())
        .or_else(|| path.and_then(Language::from_path))
}

/// What the client said it can do, reduced to what baton uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientFeatures {
    pub work_done_progress: bool,
    pub show_document: bool,
    pub document_changes: bool,
    pub watched_files_dynamic: bool,
}

/// Shared server state.
pub struct Session {
    pub documents: Documents,
    pub jobs: Jobs,
    encoding: RwLock<PositionEncoding>,
    config: RwLock<Arc<Resolved>>,
    client: RwLock<ClientFeatures>,
    root: RwLock<Option<PathBuf>>,
    /// The most recent code action request: the target of a bare `baton.edit "…"`.
    last_action_range: RwLock<Option<(String, text::Range)>>,
    /// The document the user last touched.
    focused: RwLock<Option<String>>,
    /// The workspace index, once the workspace root is known and indexing is enabled.
    index: RwLock<Option<Arc<WorkspaceIndex>>>,
    /// What the last full indexing run found.
    index_report: RwLock<Option<index::IndexReport>>,
    /// `initializationOptions`, kept to re-resolve when anything else changes.
    init_options: RwLock<Option<serde_json::Value>>,
    /// The latest `workspace/didChangeConfiguration` settings, layered over the init options.
    workspace_settings: RwLock<Option<serde_json::Value>>,
}

impl Default for Session {
    fn default() -> Session {
        Session {
            documents: Documents::default(),
            jobs: Jobs::default(),
            encoding: RwLock::new(PositionEncoding::Utf16),
            config: RwLock::new(Arc::new(Resolved::default())),
            client: RwLock::new(ClientFeatures::default()),
            root: RwLock::new(None),
            last_action_range: RwLock::new(None),
            focused: RwLock::new(None),
            index: RwLock::new(None),
            index_report: RwLock::new(None),
            init_options: RwLock::new(None),
            workspace_settings: RwLock::new(None),
        }
    }
}

impl Session {
    pub fn encoding(&self) -> PositionEncoding {
        *self.encoding.read().expect("lock")
    }

    pub fn set_encoding(&self, encoding: PositionEncoding) {
        *self.encoding.write().expect("lock") = encoding;
    }

    pub fn config(&self) -> Arc<Resolved> {
        self.config.read().expect("lock").clone()
    }

    pub fn client(&self) -> ClientFeatures {
        *self.client.read().expect("lock")
    }

    pub fn set_client(&self, features: ClientFeatures) {
        *self.client.write().expect("lock") = features;
    }

    pub fn root(&self) -> Option<PathBuf> {
        self.root.read().expect("lock").clone()
    }

    pub fn set_root(&self, root: Option<PathBuf>) {
        *self.root.write().expect("lock") = root;
    }

    pub fn set_init_options(&self, options: Option<serde_json::Value>) {
        *self.init_options.write().expect("lock") = options;
    }

    pub fn set_workspace_settings(&self, settings: Option<serde_json::Value>) {
        *self.workspace_settings.write().expect("lock") = settings;
    }

    /// Re-reads every configuration source and keeps the result.
    pub fn reload_config(&self) -> Arc<Resolved> {
        // Neovim encodes an empty Lua table as `[]`: no settings, not a malformed object.
        let unwrap = |value: &serde_json::Value| match value.get("baton") {
            Some(inner) if inner.is_object() => inner.clone(),
            _ if value.as_array().is_some_and(|array| array.is_empty()) => serde_json::Value::Null,
            _ => value.clone(),
        };
        let mut editor = self.init_options.read().expect("lock").as_ref().map(unwrap);
        if let Some(settings) = self
            .workspace_settings
            .read()
            .expect("lock")
            .as_ref()
            .map(unwrap)
        {
            match &mut editor {
                Some(base) => crate::config::merge(base, settings),
                None => editor = Some(settings),
            }
        }
        let inputs = crate::config::Inputs::gather(self.root().as_deref(), editor);
        let resolved = Arc::new(crate::config::resolve(&inputs));
        *self.config.write().expect("lock") = resolved.clone();
        resolved
    }

    /// Which files must never reach a model, resolved with the configuration. Every path a
    /// file's content can take to a model asks this first (see `config::NeverSend`).
    pub fn never_send(&self) -> NeverSend {
        self.config().never_send.clone()
    }

    pub fn index(&self) -> Option<Arc<WorkspaceIndex>> {
        self.index.read().expect("lock").clone()
    }

    /// A snapshot of an open document with its tree up to date.
    pub fn snapshot(&self, uri: &str) -> Option<(Document, Option<SyntaxTree>, Option<PathBuf>)> {
        self.documents.snapshot(uri, self.index().as_deref())
    }

    /// See [`Documents::subscribe`].
    pub fn subscribe(
        &self,
        uri: &str,
    ) -> Option<(
        Document,
        Option<SyntaxTree>,
        mpsc::UnboundedReceiver<DocEvent>,
    )> {
        self.documents.subscribe(uri, self.index().as_deref())
    }

    /// The index with every open buffer's latest text in it, for a workspace-wide query.
    pub fn current_index(&self) -> Option<Arc<WorkspaceIndex>> {
        let index = self.index()?;
        self.documents.refresh_all(&index);
        Some(index)
    }

    pub fn set_index(&self, index: Arc<WorkspaceIndex>) {
        *self.index.write().expect("lock") = Some(index.clone());
        self.documents.register_all(&index);
    }

    pub fn index_report(&self) -> Option<index::IndexReport> {
        self.index_report.read().expect("lock").clone()
    }

    pub fn set_index_report(&self, report: index::IndexReport) {
        *self.index_report.write().expect("lock") = Some(report);
    }

    pub fn note_focus(&self, uri: &str) {
        *self.focused.write().expect("lock") = Some(uri.to_string());
    }

    pub fn focused(&self) -> Option<String> {
        self.focused.read().expect("lock").clone()
    }

    pub fn note_action_range(&self, uri: &str, range: text::Range) {
        *self.last_action_range.write().expect("lock") = Some((uri.to_string(), range));
        self.note_focus(uri);
    }

    pub fn last_action_range(&self) -> Option<(String, text::Range)> {
        self.last_action_range.read().expect("lock").clone()
    }
}
