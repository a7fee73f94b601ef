//! The server's state: open documents (with their syntax trees and the jobs listening to them),
//! the negotiated position encoding, the resolved configuration and the running jobs.
//!
//! Documents change in exactly one place, [`Documents::apply`], which the LSP layer calls in
//! message arrival order before any handler runs (see `lsp::ordered`). Readers take snapshots:
//! cloning a document clones a rope, which shares its nodes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::mpsc;

use index::WorkspaceIndex;
use syntax::{Language, SyntaxTree};
use text::{AppliedChange, ContentChange, Document, PositionEncoding};

use crate::config::Resolved;
use crate::frontend::DocEvent;
use crate::jobs::Jobs;

/// Largest open document that gets a syntax tree.
const MAX_PARSED_BYTES: usize = 8 * 1024 * 1024;

/// Changes kept before the tree is brought up to date even though nobody asked for it.
const MAX_PENDING_CHANGES: usize = 64;

/// An open document's key: its URI as the client names it. Typed, so that a path, a label or a
/// token cannot be passed where a document is meant; built from an `lsp::Uri` at the edge
/// (`lsp::proto::uri_key`), or from a URI string that an argument carried
/// (`lsp::proto::uri_key_from_str`), so both spell the same document the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct DocumentUri(String);

impl DocumentUri {
    pub fn new(uri: impl Into<String>) -> DocumentUri {
        DocumentUri(uri.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DocumentUri {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// What handlers and jobs work on: an open document as it was at one version, with its syntax
/// tree brought up to date and the encoding its positions are converted with. Cheap: the rope
/// and the tree share their nodes with the live document.
#[derive(Clone)]
pub struct DocumentSnapshot {
    pub uri: DocumentUri,
    pub document: Document,
    pub tree: Option<SyntaxTree>,
    pub path: Option<PathBuf>,
    pub encoding: PositionEncoding,
}

impl DocumentSnapshot {
    pub fn version(&self) -> i32 {
        self.document.version()
    }

    /// How prompts name the document: its path relative to the workspace root, else its path,
    /// else its URI.
    pub fn path_label(&self, root: Option<&Path>) -> String {
        match (&self.path, root) {
            (Some(path), Some(root)) => path
                .strip_prefix(root)
                .unwrap_or(path)
                .display()
                .to_string(),
            (Some(path), None) => path.display().to_string(),
            _ => self.uri.to_string(),
        }
    }
}

/// An open document and what hangs off it.
///
/// The syntax tree (and the index's view of the buffer) is brought up to date lazily: a
/// keystroke or a streamed edit only records its change, and the next reader reparses once for
/// all pending changes. A job streaming fifty edits into a buffer costs no parse at all.
pub struct OpenDocument {
    /// The document's key in [`Documents`], for log messages.
    uri: DocumentUri,
    pub document: Document,
    tree: Option<SyntaxTree>,
    /// Changes applied to `document` but not yet to `tree` and the index, in order.
    pending: Vec<AppliedChange>,
    pub path: Option<PathBuf>,
    listeners: Vec<mpsc::UnboundedSender<DocEvent>>,
    /// Followers that are not jobs (the next-edit watcher): told about changes the same way,
    /// but not counted as jobs in messages.
    observers: Vec<mpsc::UnboundedSender<DocEvent>>,
    /// When the latest change was applied, until an answer for its version takes it (see
    /// [`Documents::answered_after_change`]): how long the editor waits for a fresh outline.
    changed_at: Option<Instant>,
}

impl OpenDocument {
    /// Brings the tree and the index up to date with the document. A panic while doing so
    /// (a bug in incremental parsing or tagging) must not leave a half-updated tree behind, so
    /// the tree is then rebuilt from the text, which is always right.
    fn refresh(&mut self, index: Option<&WorkspaceIndex>) {
        if self.pending.is_empty() {
            return;
        }
        let updated = crate::panics::catch(|| {
            if let Some(tree) = &mut self.tree {
                tree.update(self.document.rope(), &self.pending);
                if let (Some(index), Some(path)) = (index, &self.path) {
                    index.update_open_document(path, self.document.rope(), tree, &self.pending);
                }
            }
        });
        self.pending.clear();
        if let Err(message) = updated {
            tracing::error!(uri = %self.uri, "updating the syntax tree panicked ({message}); reparsing");
            self.rebuild_tree(index);
        }
    }

    /// Parses the document from scratch and hands the new tree to the index. If even that
    /// panics, the document goes on without a tree (no outline or markers by node), which is
    /// still correct for syncing and editing.
    fn rebuild_tree(&mut self, index: Option<&WorkspaceIndex>) {
        self.tree = None;
        self.pending.clear();
        let language = language_of(&self.document, self.path.as_deref());
        let rebuilt = crate::panics::catch(|| {
            let tree = language
                .filter(|_| self.document.len_bytes() <= MAX_PARSED_BYTES)
                .and_then(|language| SyntaxTree::parse(language, self.document.rope()));
            if let (Some(index), Some(path), Some(tree)) = (index, &self.path, &tree) {
                index.set_open_document(path, self.document.rope(), tree);
            }
            tree
        });
        match rebuilt {
            Ok(tree) => self.tree = tree,
            Err(message) => {
                tracing::error!(uri = %self.uri, "reparsing panicked ({message}); no syntax tree")
            }
        }
    }
}

impl OpenDocument {
    fn snapshot(&self, encoding: PositionEncoding) -> DocumentSnapshot {
        DocumentSnapshot {
            uri: self.uri.clone(),
            document: self.document.clone(),
            tree: self.tree.clone(),
            path: self.path.clone(),
            encoding,
        }
    }

    /// Records an applied change for the tree and hands it to the jobs following the document.
    fn follow(&mut self, applied: Vec<AppliedChange>, index: Option<&WorkspaceIndex>) {
        self.changed_at = Some(Instant::now());
        if self.tree.is_some() {
            self.pending.extend_from_slice(&applied);
            if self.pending.len() > MAX_PENDING_CHANGES {
                self.refresh(index);
            }
        }
        if !self.listeners.is_empty() || !self.observers.is_empty() {
            let event = DocEvent {
                document: self.document.clone(),
                changes: applied,
            };
            self.listeners
                .retain(|listener| listener.send(event.clone()).is_ok());
            self.observers
                .retain(|observer| observer.send(event.clone()).is_ok());
        }
    }
}

/// The last segment of a URI, for messages.
fn display_name(uri: &DocumentUri) -> &str {
    let uri = uri.as_str();
    uri.rsplit('/')
        .next()
        .filter(|name| !name.is_empty())
        .unwrap_or(uri)
}

/// Why a document update did not simply apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// Refused as the protocol says (stale version, unknown document, …): nothing changed.
    #[error("{0}")]
    Refused(String),
    /// A bug interrupted the update. The state was repaired or the document dropped; the
    /// message says which, in words for the user.
    #[error("{0}")]
    Internal(String),
}

/// A document dropped after an internal error interrupted a change to it: its text is no longer
/// known, so incremental changes cannot apply. It comes back with `didOpen`, or with a
/// `didChange` that carries the whole text.
struct StaleDocument {
    path: Option<PathBuf>,
    language_id: String,
}

/// A change to the set of open documents, in editor terms.
#[derive(Debug, Clone)]
pub enum DocumentUpdate {
    Open {
        uri: DocumentUri,
        path: Option<PathBuf>,
        text: String,
        version: i32,
        language_id: String,
    },
    Change {
        uri: DocumentUri,
        version: i32,
        changes: Vec<ContentChange>,
    },
    Close {
        uri: DocumentUri,
    },
}

#[derive(Default)]
pub struct Documents {
    open: DashMap<DocumentUri, OpenDocument>,
    stale: DashMap<DocumentUri, StaleDocument>,
}

impl Documents {
    /// The one mutation path for open documents. Never blocks on anything but the map shard.
    /// The workspace index, when there is one, follows open buffers from here too.
    ///
    /// A panic inside never escapes and never leaves a half-applied change: if the text itself
    /// may be wrong the document is dropped as stale (and says so), if only the tree or the
    /// jobs' view may be, the tree is rebuilt and the jobs following the document are ended.
    pub fn apply(
        &self,
        update: DocumentUpdate,
        encoding: PositionEncoding,
        index: Option<&WorkspaceIndex>,
    ) -> Result<(), UpdateError> {
        match update {
            DocumentUpdate::Open {
                uri,
                path,
                text,
                version,
                language_id,
            } => {
                self.stale.remove(&uri);
                let opened = crate::panics::catch(|| {
                    crate::test_hooks::maybe_panic(
                        crate::test_hooks::Site::BeforeChangeApplied,
                        &text,
                    );
                    let document = Document::new(&text, version, language_id.clone());
                    let mut open = OpenDocument {
                        uri: uri.clone(),
                        document,
                        tree: None,
                        pending: Vec::new(),
                        path: path.clone(),
                        listeners: Vec::new(),
                        observers: Vec::new(),
                        changed_at: None,
                    };
                    // A huge buffer would hold up every later message while it parses; such
                    // files get no tree (no markers by node, no symbols) but still sync and edit.
                    open.rebuild_tree(index);
                    open
                });
                match opened {
                    Ok(open) => {
                        self.open.insert(uri, open);
                        Ok(())
                    }
                    Err(message) => {
                        self.open.remove(&uri);
                        Err(self.drop_as_stale(uri, path, language_id, &message))
                    }
                }
            }
            DocumentUpdate::Change {
                uri,
                version,
                changes,
            } => {
                // A separate statement, so the map's read guard is gone before `resync_stale`
                // writes to the same map.
                let stale = self
                    .stale
                    .get(&uri)
                    .map(|stale| (stale.path.clone(), stale.language_id.clone()));
                if let Some(stale) = stale {
                    return self.resync_stale(uri, stale, version, changes, encoding, index);
                }
                let mut entry = self.open.get_mut(&uri).ok_or_else(|| {
                    UpdateError::Refused(format!(
                        "didChange for a document that is not open: {uri}"
                    ))
                })?;
                let open = &mut *entry;
                let applied = crate::panics::catch(|| {
                    for change in &changes {
                        crate::test_hooks::maybe_panic(
                            crate::test_hooks::Site::BeforeChangeApplied,
                            &change.text,
                        );
                    }
                    open.document.apply_changes(version, &changes, encoding)
                });
                let applied = match applied {
                    Ok(Ok(applied)) => applied,
                    Ok(Err(err)) => return Err(UpdateError::Refused(format!("{uri}: {err}"))),
                    Err(message) => {
                        // The text may hold part of the change: nothing about it can be trusted.
                        let (path, language_id) =
                            (open.path.clone(), open.document.language_id().to_string());
                        drop(entry);
                        self.open.remove(&uri);
                        return Err(self.drop_as_stale(uri, path, language_id, &message));
                    }
                };
                let followed = crate::panics::catch(|| {
                    for change in &changes {
                        crate::test_hooks::maybe_panic(
                            crate::test_hooks::Site::AfterChangeApplied,
                            &change.text,
                        );
                    }
                    open.follow(applied, index);
                });
                match followed {
                    Ok(()) => Ok(()),
                    Err(message) => {
                        // The text is right (the change applied); the tree and the jobs' view
                        // of the document may not be. Rebuild the one, end the others.
                        tracing::error!(%uri, "following a change panicked ({message}); reparsing and ending the jobs on it");
                        let jobs = open.listeners.len();
                        open.listeners.clear();
                        open.observers.clear();
                        open.rebuild_tree(index);
                        let name = display_name(&uri).to_string();
                        let jobs = if jobs > 0 {
                            format!(" and stopped {jobs} job(s) editing it")
                        } else {
                            String::new()
                        };
                        Err(UpdateError::Internal(format!(
                            "baton: an internal error ({message}) interrupted a change to {name}; its text is intact, baton reparsed it{jobs}"
                        )))
                    }
                }
            }
            DocumentUpdate::Close { uri } => {
                self.stale.remove(&uri);
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

    /// Forgets a document whose text can no longer be trusted, until it is opened again or a
    /// change carries its whole text.
    fn drop_as_stale(
        &self,
        uri: DocumentUri,
        path: Option<PathBuf>,
        language_id: String,
        message: &str,
    ) -> UpdateError {
        tracing::error!(%uri, "a document update panicked ({message}); the document is stale until reopened");
        let name = display_name(&uri).to_string();
        self.stale.insert(uri, StaleDocument { path, language_id });
        UpdateError::Internal(format!(
            "baton: an internal error ({message}) interrupted a change to {name}, so baton no longer knows its text and stopped following it; close and reopen the file to use baton on it again"
        ))
    }

    /// A change to a stale document: only a whole-text change can bring it back.
    fn resync_stale(
        &self,
        uri: DocumentUri,
        (path, language_id): (Option<PathBuf>, String),
        version: i32,
        changes: Vec<ContentChange>,
        encoding: PositionEncoding,
        index: Option<&WorkspaceIndex>,
    ) -> Result<(), UpdateError> {
        let Some(full) = changes.iter().rposition(|change| change.range.is_none()) else {
            return Err(UpdateError::Refused(format!(
                "{uri} is stale after an internal error: its incremental changes are ignored until it is reopened"
            )));
        };
        let rest: Vec<ContentChange> = changes[full + 1..].to_vec();
        // Changes after the whole text apply on top of it, so it opens one version earlier.
        let opened_version = if rest.is_empty() {
            version
        } else {
            version.saturating_sub(1)
        };
        self.apply(
            DocumentUpdate::Open {
                uri: uri.clone(),
                path,
                text: changes[full].text.clone(),
                version: opened_version,
                language_id,
            },
            encoding,
            index,
        )?;
        tracing::info!(%uri, "a whole-text change brought a stale document back");
        if rest.is_empty() {
            return Ok(());
        }
        self.apply(
            DocumentUpdate::Change {
                uri,
                version,
                changes: rest,
            },
            encoding,
            index,
        )
    }

    /// The version of an open document, without bringing its tree up to date.
    pub fn version(&self, uri: &DocumentUri) -> Option<i32> {
        self.open.get(uri).map(|open| open.document.version())
    }

    /// A snapshot of a document and its up-to-date tree.
    pub fn snapshot(
        &self,
        uri: &DocumentUri,
        encoding: PositionEncoding,
        index: Option<&WorkspaceIndex>,
    ) -> Option<DocumentSnapshot> {
        let mut open = self.open.get_mut(uri)?;
        open.refresh(index);
        Some(open.snapshot(encoding))
    }

    /// How long ago the change that produced `version` of the document was applied, if that
    /// is its latest change and no answer took it yet; taken, so each change is timed once (by
    /// the first answer computed for it). A newer change keeps its own time for its answer.
    pub fn answered_after_change(&self, uri: &DocumentUri, version: i32) -> Option<Duration> {
        let mut open = self.open.get_mut(uri)?;
        if open.document.version() != version {
            return None;
        }
        open.changed_at
            .take()
            .map(|changed_at| changed_at.elapsed())
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
        uri: &DocumentUri,
        encoding: PositionEncoding,
        index: Option<&WorkspaceIndex>,
    ) -> Option<(DocumentSnapshot, mpsc::UnboundedReceiver<DocEvent>)> {
        self.follow(uri, encoding, index, false)
    }

    /// [`Documents::subscribe`] for a follower that is not a job (see `OpenDocument::observers`).
    pub fn observe(
        &self,
        uri: &DocumentUri,
        encoding: PositionEncoding,
        index: Option<&WorkspaceIndex>,
    ) -> Option<(DocumentSnapshot, mpsc::UnboundedReceiver<DocEvent>)> {
        self.follow(uri, encoding, index, true)
    }

    /// A snapshot and a receiver registered as a listener (a job) or an observer.
    fn follow(
        &self,
        uri: &DocumentUri,
        encoding: PositionEncoding,
        index: Option<&WorkspaceIndex>,
        observer: bool,
    ) -> Option<(DocumentSnapshot, mpsc::UnboundedReceiver<DocEvent>)> {
        let mut open = self.open.get_mut(uri)?;
        open.refresh(index);
        let (sender, receiver) = mpsc::unbounded_channel();
        if observer {
            open.observers.push(sender);
        } else {
            open.listeners.push(sender);
        }
        Some((open.snapshot(encoding), receiver))
    }

    pub fn uris(&self) -> Vec<DocumentUri> {
        self.open.iter().map(|open| open.key().clone()).collect()
    }

    /// The open document whose file is `path`, if any.
    pub fn uri_for_path(&self, path: &Path) -> Option<DocumentUri> {
        self.open
            .iter()
            .find(|open| open.path.as_deref() == Some(path))
            .map(|open| open.key().clone())
    }

    /// Every open buffer with a file path, and its text as the user has it (unsaved changes
    /// included).
    pub fn open_texts(&self) -> Vec<(PathBuf, String)> {
        self.open
            .iter()
            .filter_map(|open| Some((open.path.clone()?, open.document.text())))
            .collect()
    }

    /// Every open buffer with a file path: its key and a snapshot of its document (a rope
    /// clone), unsaved changes included.
    pub fn open_documents(&self) -> Vec<(PathBuf, DocumentUri, Document)> {
        self.open
            .iter()
            .filter_map(|open| {
                Some((
                    open.path.clone()?,
                    open.key().clone(),
                    open.document.clone(),
                ))
            })
            .collect()
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
    pub resource_operations: crate::frontend::ResourceOperations,
    pub show_document: bool,
    pub document_changes: bool,
    pub watched_files_dynamic: bool,
}

/// Shared server state.
pub struct Session {
    pub documents: Documents,
    pub jobs: Jobs,
    pub tasks: crate::tasks::Tasks,
    /// Plan documents baton writes.
    pub plans: crate::plans::Plans,
    /// Next-edit proposals published per document (see `next_edit`).
    pub next_edits: crate::next_edit::NextEdits,
    /// Inline completion's per-document state: requests in flight, debounce, cache.
    pub completions: crate::completion::Completions,
    encoding: RwLock<PositionEncoding>,
    config: RwLock<Arc<Resolved>>,
    client: RwLock<ClientFeatures>,
    root: RwLock<Option<PathBuf>>,
    /// The most recent code action request: the target of a bare `baton.edit "…"`.
    last_action_range: RwLock<Option<(DocumentUri, text::Range)>>,
    /// The document the user last touched.
    focused: RwLock<Option<DocumentUri>>,
    /// The workspace index, once the workspace root is known and indexing is enabled.
    index: RwLock<Option<Arc<WorkspaceIndex>>>,
    /// What the last full indexing run found.
    index_report: RwLock<Option<index::IndexReport>>,
    /// `initializationOptions`, kept to re-resolve when anything else changes.
    init_options: RwLock<Option<serde_json::Value>>,
    /// The latest `workspace/didChangeConfiguration` settings, layered over the init options.
    workspace_settings: RwLock<Option<serde_json::Value>>,
    /// Server-side latencies kept for `baton.status` (what the benches read).
    pub latencies: Latencies,
}

/// Recent server-side latencies, each kept for the last [`Latencies::KEPT`] samples.
#[derive(Default)]
pub struct Latencies {
    /// From a `didChange` being applied to the first `documentSymbol` answer for the version it
    /// made being ready to send, in microseconds: the part of an editor's wait for a fresh
    /// outline that baton controls (not the transport, nor the client parsing the answer).
    document_symbol_after_change: Mutex<std::collections::VecDeque<u32>>,
}

impl Latencies {
    const KEPT: usize = 4096;

    pub fn record_document_symbol_after_change(&self, elapsed: Duration) {
        let mut samples = self
            .document_symbol_after_change
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if samples.len() == Latencies::KEPT {
            samples.pop_front();
        }
        samples.push_back(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
    }

    /// The kept samples, oldest first, in microseconds.
    pub fn document_symbol_after_change_micros(&self) -> Vec<u32> {
        self.document_symbol_after_change
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }
}

/// Locks that survive a panic elsewhere: every value behind these locks is replaced whole, so
/// a writer that panicked cannot have left it half-written, and poisoning would only turn one
/// bug into a panic on every later request.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Default for Session {
    fn default() -> Session {
        Session {
            documents: Documents::default(),
            jobs: Jobs::default(),
            tasks: crate::tasks::Tasks::default(),
            plans: crate::plans::Plans::default(),
            next_edits: crate::next_edit::NextEdits::default(),
            completions: crate::completion::Completions::default(),
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
            latencies: Latencies::default(),
        }
    }
}

impl Session {
    pub fn encoding(&self) -> PositionEncoding {
        *read(&self.encoding)
    }

    pub fn set_encoding(&self, encoding: PositionEncoding) {
        *write(&self.encoding) = encoding;
    }

    pub fn config(&self) -> Arc<Resolved> {
        read(&self.config).clone()
    }

    pub fn client(&self) -> ClientFeatures {
        *read(&self.client)
    }

    pub fn set_client(&self, features: ClientFeatures) {
        *write(&self.client) = features;
    }

    pub fn root(&self) -> Option<PathBuf> {
        read(&self.root).clone()
    }

    pub fn set_root(&self, root: Option<PathBuf>) {
        *write(&self.root) = root;
    }

    pub fn set_init_options(&self, options: Option<serde_json::Value>) {
        *write(&self.init_options) = options;
    }

    pub fn set_workspace_settings(&self, settings: Option<serde_json::Value>) {
        *write(&self.workspace_settings) = settings;
    }

    /// Re-reads every configuration source and keeps the result.
    pub fn reload_config(&self) -> Arc<Resolved> {
        // Neovim encodes an empty Lua table as `[]`: no settings, not a malformed object.
        let unwrap = |value: &serde_json::Value| match value.get("baton") {
            Some(inner) if inner.is_object() => inner.clone(),
            _ if value.as_array().is_some_and(|array| array.is_empty()) => serde_json::Value::Null,
            _ => value.clone(),
        };
        let mut editor = read(&self.init_options).as_ref().map(unwrap);
        if let Some(settings) = read(&self.workspace_settings).as_ref().map(unwrap) {
            match &mut editor {
                Some(base) => crate::config::merge(base, settings),
                None => editor = Some(settings),
            }
        }
        let inputs = crate::config::Inputs::gather(self.root().as_deref(), editor);
        let resolved = Arc::new(crate::config::resolve(&inputs));
        *write(&self.config) = resolved.clone();
        resolved
    }

    pub fn index(&self) -> Option<Arc<WorkspaceIndex>> {
        read(&self.index).clone()
    }

    /// A snapshot of an open document with its tree up to date.
    pub fn snapshot(&self, uri: &DocumentUri) -> Option<DocumentSnapshot> {
        self.documents
            .snapshot(uri, self.encoding(), self.index().as_deref())
    }

    /// See [`Documents::subscribe`].
    pub fn subscribe(
        &self,
        uri: &DocumentUri,
    ) -> Option<(DocumentSnapshot, mpsc::UnboundedReceiver<DocEvent>)> {
        self.documents
            .subscribe(uri, self.encoding(), self.index().as_deref())
    }

    /// The index with every open buffer's latest text in it, for a workspace-wide query.
    pub fn current_index(&self) -> Option<Arc<WorkspaceIndex>> {
        let index = self.index()?;
        self.documents.refresh_all(&index);
        Some(index)
    }

    pub fn set_index(&self, index: Arc<WorkspaceIndex>) {
        *write(&self.index) = Some(index.clone());
        self.documents.register_all(&index);
    }

    pub fn index_report(&self) -> Option<index::IndexReport> {
        read(&self.index_report).clone()
    }

    pub fn set_index_report(&self, report: index::IndexReport) {
        *write(&self.index_report) = Some(report);
    }

    pub fn note_focus(&self, uri: &DocumentUri) {
        *write(&self.focused) = Some(uri.clone());
    }

    pub fn focused(&self) -> Option<DocumentUri> {
        read(&self.focused).clone()
    }

    pub fn note_action_range(&self, uri: &DocumentUri, range: text::Range) {
        *write(&self.last_action_range) = Some((uri.clone(), range));
        self.note_focus(uri);
    }

    pub fn last_action_range(&self) -> Option<(DocumentUri, text::Range)> {
        read(&self.last_action_range).clone()
    }
}
