//! Next-edit suggestions: after the user changes something, the fast tier proposes the
//! follow-up edits elsewhere in the file and in the files that use what changed, shown the
//! portable way (no editor has a standard request for this): `Hint` diagnostics with source
//! `baton` over the places to change, and code actions that carry the edits.
//!
//! Each open document gets one watcher task ([`watch`]), subscribed to the document's changes
//! like a job. It owns the document's proposals and at most one model request; nothing here
//! runs inside a request handler, so typing never waits for the model. The loop reacts to four
//! things, all in one `select!`:
//!
//! - a change: the in-flight request (if any) is dropped, which closes its HTTP stream; the
//!   proposals move with the change, and any the change touched are gone (the user took the
//!   suggestion, or typed there). A change that touched only proposals starts nothing new; any
//!   other change (re)arms the debounce deadline.
//! - the deadline: a round starts: the diff since the last round, the file with line numbers,
//!   the lines of other files that use the names the change removed (found through the index),
//!   and a JSON reply format (see `edit::next_edit`).
//! - the reply: its proposals replace the previous round's (the user has "moved on"), in this
//!   file and in the others; a failed or malformed reply clears them. The reply is always for
//!   the current text: any change in between would have dropped the request.
//! - its inbox: proposals another document's round made in this one. The watcher of a
//!   document is the only one that moves its proposals through its changes, so proposals from
//!   elsewhere are handed to it with the text they were computed against; if the document has
//!   moved on since, they are carried over the difference (`edit::next_edit::rebase`), and
//!   those on changed lines dropped. A change over their line drops them.
//!
//! Proposals in a file that is not open are kept here ([`NextEdits`]) against the text on disk
//! they were computed for; they are dropped when the file changes on disk, handed to the file's
//! watcher when it is opened (rebased onto the opened text), and applied as `version: null`
//! edits.
//!
//! Code actions read the proposals published for a version ([`NextEdits::code_actions`]) and
//! offer nothing when the watcher has not caught up with the document yet, so an edit is never
//! offered against text it was not computed for. "Apply all" in the changed file is a command
//! ([`apply_all`]) that checks every proposal against the text as it is then and lands them in
//! one `workspace/applyEdit` through [`Frontend::apply_operations`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types as lsp;

use edit::diff::Replacement;
use edit::next_edit::{self, Followed, Proposal, Reach};
use text::{Document, PositionEncoding};

use crate::config::Tier;
use crate::frontend::{FileOperation, Frontend, MessageLevel};
use crate::jobs::sleep_until;
use crate::lsp::proto;
use crate::session::{DocumentSnapshot, DocumentUri, Session};

/// The command behind "apply all N next edits" when they span files.
pub const APPLY_ALL_COMMAND: &str = "baton.nextEdits.applyAll";

/// Roughly how many bytes a token of source code is, to turn `context.max_tokens` into a
/// budget for the file listing.
const BYTES_PER_TOKEN: usize = 4;

/// The most removed names whose uses elsewhere are looked up.
const MAX_NAMES: usize = 3;

/// The most other files, and lines in all, shown as uses elsewhere.
const MAX_USE_FILES: usize = 5;
const MAX_USE_LINES: usize = 20;

/// Larger files are not read for uses.
const MAX_USE_FILE_BYTES: u64 = 1024 * 1024;

/// Another file the prompt showed lines of, which the model may therefore edit.
struct Offered {
    path: PathBuf,
    label: String,
    /// The open buffer's key; `None` when the text is the file on disk.
    open: Option<DocumentUri>,
    text: String,
}

/// An open buffer as a round reads it.
type OpenBuffer = (PathBuf, DocumentUri, Document);

/// The other files that use the names and their lines that do, from the index's references
/// (which files) and the files' text (which lines): open buffers as the user has them, else the
/// disk. Never a `never_send` file, never one outside the workspace.
fn uses_elsewhere(
    index: &index::WorkspaceIndex,
    names: &[String],
    own_path: Option<&Path>,
    resolved: &crate::config::Resolved,
    root: Option<&Path>,
    open: &[OpenBuffer],
) -> (Vec<Offered>, Vec<next_edit::Use>) {
    let mut paths: Vec<PathBuf> = Vec::new();
    for name in names {
        for (path, _) in index.files_referencing(name) {
            if Some(path.as_path()) != own_path
                && root.is_none_or(|root| path.starts_with(root))
                && resolved.never_send.check(&path, root).is_ok()
                && !paths.contains(&path)
                && paths.len() < MAX_USE_FILES
            {
                paths.push(path);
            }
        }
    }
    let (mut offered, mut uses) = (Vec::new(), Vec::new());
    for path in paths {
        let (text, open) = match open.iter().find(|(open, _, _)| open == &path) {
            Some((_, uri, document)) => (document.text(), Some(uri.clone())),
            None => {
                let small =
                    std::fs::metadata(&path).is_ok_and(|meta| meta.len() <= MAX_USE_FILE_BYTES);
                match small.then(|| std::fs::read_to_string(&path).ok()).flatten() {
                    Some(text) => (text, None),
                    None => continue,
                }
            }
        };
        let label = root
            .and_then(|root| path.strip_prefix(root).ok())
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let before = uses.len();
        for (line, content) in text.lines().enumerate() {
            if uses.len() >= MAX_USE_LINES {
                break;
            }
            if names.iter().any(|name| contains_word(content, name)) {
                uses.push(next_edit::Use {
                    path_label: label.clone(),
                    line,
                    text: content.to_string(),
                });
            }
        }
        if uses.len() > before {
            offered.push(Offered {
                path,
                label,
                open,
                text,
            });
        }
    }
    (offered, uses)
}

/// Whether `name` occurs in `line` as a whole identifier.
fn contains_word(line: &str, name: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(name).any(|(at, _)| {
        !line[..at].chars().next_back().is_some_and(is_word)
            && !line[at + name.len()..].chars().next().is_some_and(is_word)
    })
}

/// Proposals a round of another document (its watcher, `origin`) made in this one.
#[derive(Clone, Debug)]
struct Foreign {
    origin: u64,
    proposals: Vec<Proposal>,
}

/// The proposals published for one open document, valid at `version`.
struct Shown {
    /// The watcher that published them: a document reopened gets a new watcher, and the old
    /// one must not clear the new one's proposals as it ends.
    owner: u64,
    version: i32,
    /// The document's own round's proposals.
    proposals: Vec<Proposal>,
    /// Other documents' rounds' proposals in this one.
    foreign: Vec<Foreign>,
}

impl Shown {
    fn all(&self) -> impl Iterator<Item = &Proposal> {
        self.proposals
            .iter()
            .chain(self.foreign.iter().flat_map(|foreign| &foreign.proposals))
    }
}

/// Proposals in a file the editor has not opened, against its text on disk.
struct Closed {
    origin: u64,
    uri: lsp::Uri,
    text: String,
    proposals: Vec<Proposal>,
}

/// What a watcher hears from others' rounds.
#[derive(Debug)]
enum Inbound {
    /// `origin`'s round proposes these edits here, computed against `text` (the buffer as the
    /// round read it, or the disk when the file was not open yet). They replace that origin's
    /// previous proposals here.
    Proposals {
        origin: u64,
        text: String,
        proposals: Vec<Proposal>,
    },
    /// `origin`'s proposals here are withdrawn (its new round has none here, or it ended).
    Clear { origin: u64 },
}

/// The published proposals of every open document, and those in files not open.
#[derive(Default)]
pub struct NextEdits {
    shown: DashMap<DocumentUri, Shown>,
    inboxes: DashMap<DocumentUri, (u64, mpsc::UnboundedSender<Inbound>)>,
    closed: DashMap<PathBuf, Closed>,
    watchers: AtomicU64,
}

impl NextEdits {
    /// The next-edit code actions for a request: one preferred action per proposal the range
    /// touches, and one that applies them all when there are several; in a document whose round
    /// also proposed edits in other files, "apply all" covers those too and is offered anywhere
    /// in it. Nothing when the proposals are not for the snapshot's version.
    pub fn code_actions(
        &self,
        snapshot: &DocumentSnapshot,
        params: &lsp::CodeActionParams,
        document_changes: bool,
    ) -> Vec<lsp::CodeActionOrCommand> {
        let wanted = params.context.only.as_ref().is_none_or(|only| {
            only.iter().any(|kind| {
                lsp::CodeActionKind::QUICKFIX
                    .as_str()
                    .starts_with(kind.as_str())
            })
        });
        let Some(shown) = self.shown.get(&snapshot.uri) else {
            return Vec::new();
        };
        let document = &snapshot.document;
        if !wanted || shown.version != document.version() {
            return Vec::new();
        }
        // The proposals were moved through every change up to this version; checking their
        // text once more costs little and keeps a bug there from editing the wrong text.
        let holds = |proposal: &&Proposal| {
            proposal.range.end <= document.len_bytes()
                && document.slice(proposal.range.clone()) == proposal.old
        };
        let valid: Vec<Proposal> = shown.all().filter(holds).cloned().collect();
        let own = shown.proposals.iter().filter(holds).count();
        let (owner, version) = (shown.owner, shown.version);
        // No guard is held while other entries are read.
        drop(shown);
        let valid: Vec<&Proposal> = valid.iter().collect();
        let Some(uri) = proto::parse_uri(snapshot.uri.as_str()) else {
            return Vec::new();
        };
        let requested = document.byte_range(proto::range(params.range), snapshot.encoding);
        let touched = valid.iter().filter(|proposal| {
            proposal.range.start <= requested.end && requested.start <= proposal.range.end
        });
        let edit = |proposals: &[&Proposal]| {
            workspace_edit(
                &uri,
                document,
                snapshot.encoding,
                proposals,
                document_changes,
            )
        };
        let mut actions = Vec::new();
        for proposal in touched {
            actions.push(lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
                title: format!(
                    "baton: change `{}` to `{}`",
                    short(&proposal.old),
                    short(&proposal.new)
                ),
                kind: Some(lsp::CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![diagnostic(document, snapshot.encoding, proposal)]),
                edit: Some(edit(&[proposal])),
                is_preferred: Some(true),
                ..lsp::CodeAction::default()
            }));
        }
        let elsewhere = self.elsewhere(owner, &snapshot.uri);
        if elsewhere > 0 {
            // The round spans files: one command checks and lands them all at once.
            let count = own + elsewhere;
            let title = format!(
                "baton: apply all {count} next edit{}",
                if count == 1 { "" } else { "s" }
            );
            actions.push(lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
                title: title.clone(),
                kind: Some(lsp::CodeActionKind::QUICKFIX),
                command: Some(lsp::Command {
                    title,
                    command: APPLY_ALL_COMMAND.to_string(),
                    arguments: Some(vec![json!({
                        "textDocument": { "uri": snapshot.uri },
                        "version": version,
                    })]),
                }),
                ..lsp::CodeAction::default()
            }));
        } else if !actions.is_empty() && valid.len() > 1 {
            actions.push(lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
                title: format!("baton: apply all {} next edits", valid.len()),
                kind: Some(lsp::CodeActionKind::QUICKFIX),
                diagnostics: Some(
                    valid
                        .iter()
                        .map(|proposal| diagnostic(document, snapshot.encoding, proposal))
                        .collect(),
                ),
                edit: Some(edit(&valid)),
                ..lsp::CodeAction::default()
            }));
        }
        actions
    }

    /// How many proposals the round of watcher `origin` has in documents other than `own`.
    fn elsewhere(&self, origin: u64, own: &DocumentUri) -> usize {
        let open: usize = self
            .shown
            .iter()
            .filter(|entry| entry.key() != own)
            .map(|entry| {
                entry
                    .foreign
                    .iter()
                    .filter(|foreign| foreign.origin == origin)
                    .map(|foreign| foreign.proposals.len())
                    .sum::<usize>()
            })
            .sum();
        let closed: usize = self
            .closed
            .iter()
            .filter(|entry| entry.origin == origin)
            .map(|entry| entry.proposals.len())
            .sum();
        open + closed
    }

    /// Files changed on disk: proposals in them that were computed against the disk are gone.
    /// Returns the URIs whose diagnostics must be cleared.
    pub fn disk_changed(&self, paths: &[PathBuf]) -> Vec<lsp::Uri> {
        paths
            .iter()
            .filter_map(|path| self.closed.remove(path))
            .map(|(_, closed)| closed.uri)
            .collect()
    }

    /// Withdraws everything the round of watcher `origin` proposed in other files; returns the
    /// URIs of files not open whose diagnostics must be cleared.
    fn withdraw(&self, origin: u64) -> Vec<lsp::Uri> {
        for inbox in self.inboxes.iter() {
            let _ = inbox.1.send(Inbound::Clear { origin });
        }
        let mut cleared = Vec::new();
        self.closed.retain(|_, closed| {
            let keep = closed.origin != origin;
            if !keep {
                cleared.push(closed.uri.clone());
            }
            keep
        });
        cleared
    }
}

/// A long text shortened for a title or a message.
fn short(text: &str) -> String {
    const MOST: usize = 40;
    let cut = text::boundary::floor_char_boundary(text, MOST);
    if cut < text.len() {
        format!("{}…", &text[..cut])
    } else {
        text.to_string()
    }
}

fn diagnostic(
    document: &Document,
    encoding: PositionEncoding,
    proposal: &Proposal,
) -> lsp::Diagnostic {
    lsp::Diagnostic {
        range: proto::lsp_range(document, proposal.range.clone(), encoding),
        severity: Some(lsp::DiagnosticSeverity::HINT),
        code: Some(lsp::NumberOrString::String("next-edit".into())),
        source: Some("baton".into()),
        message: format!(
            "next edit: `{}` → `{}`",
            short(&proposal.old),
            short(&proposal.new)
        ),
        ..lsp::Diagnostic::default()
    }
}

/// The edit for some proposals, versioned when the client takes versioned edits.
fn workspace_edit(
    uri: &lsp::Uri,
    document: &Document,
    encoding: PositionEncoding,
    proposals: &[&Proposal],
    document_changes: bool,
) -> lsp::WorkspaceEdit {
    let mut sorted = proposals.to_vec();
    sorted.sort_by_key(|proposal| proposal.range.start);
    let edits: Vec<lsp::TextEdit> = sorted
        .iter()
        .map(|proposal| lsp::TextEdit {
            range: proto::lsp_range(document, proposal.range.clone(), encoding),
            new_text: proposal.new.clone(),
        })
        .collect();
    if document_changes {
        lsp::WorkspaceEdit {
            document_changes: Some(lsp::DocumentChanges::Edits(vec![lsp::TextDocumentEdit {
                text_document: lsp::OptionalVersionedTextDocumentIdentifier {
                    uri: uri.clone(),
                    version: Some(document.version()),
                },
                edits: edits.into_iter().map(lsp::OneOf::Left).collect(),
            }])),
            ..lsp::WorkspaceEdit::default()
        }
    } else {
        lsp::WorkspaceEdit {
            changes: Some(HashMap::from([(uri.clone(), edits)])),
            ..lsp::WorkspaceEdit::default()
        }
    }
}

/// The replacements of the proposals that still hold in `document`, and how many do not.
fn replacements(document: &Document, proposals: &[Proposal]) -> (Vec<Replacement>, usize) {
    let mut sorted: Vec<&Proposal> = proposals.iter().collect();
    sorted.sort_by_key(|proposal| proposal.range.start);
    let mut edits = Vec::new();
    let mut stale = 0;
    for proposal in sorted {
        if proposal.range.end <= document.len_bytes()
            && document.slice(proposal.range.clone()) == proposal.old
        {
            edits.push(Replacement {
                range: proposal.range.clone(),
                text: proposal.new.clone(),
            });
        } else {
            stale += 1;
        }
    }
    (edits, stale)
}

/// `baton.nextEdits.applyAll` with `{textDocument, version}`: lands every proposal of the
/// document's latest round, in it and in other files, as one `workspace/applyEdit`: versioned
/// edits for open documents, `version: null` for files not open. Each proposal is checked
/// against the text as it is now (an open buffer at the version the proposals were moved to,
/// a closed file's disk text as it was when proposed); what no longer holds is left out and
/// named in a message. Answers `{"applied": n, "stale": m}`.
pub async fn apply_all(
    session: &Session,
    client: &Client,
    frontend: Arc<dyn Frontend>,
    arguments: &[Value],
) -> Result<Value, crate::error::Error> {
    let argument = arguments.first().cloned().unwrap_or(Value::Null);
    let uri = argument
        .pointer("/textDocument/uri")
        .and_then(Value::as_str)
        .map(proto::uri_key_from_str)
        .ok_or_else(|| {
            crate::error::Error::InvalidArguments(format!(
                "{APPLY_ALL_COMMAND} takes {{textDocument: {{uri}}, version}}"
            ))
        })?;
    let next_edits = &session.next_edits;
    let Some(origin) = next_edits.shown.get(&uri).map(|shown| shown.owner) else {
        frontend
            .show_message(
                MessageLevel::Info,
                "baton: there are no next edits to apply".into(),
            )
            .await;
        return Ok(json!({ "applied": 0, "stale": 0 }));
    };
    let mut operations = Vec::new();
    let mut applied = 0;
    let mut stale_files: Vec<String> = Vec::new();
    let mut stale = 0;
    let label = |path: &Path| {
        session
            .root()
            .and_then(|root| path.strip_prefix(root).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| path.to_path_buf())
            .display()
            .to_string()
    };
    // Open documents: this one first (Neovim checks only the first edit's version), then the
    // others with proposals from this round.
    let mut open: Vec<(DocumentUri, i32, Vec<Proposal>)> = Vec::new();
    for entry in next_edits.shown.iter() {
        let proposals: Vec<Proposal> = if entry.key() == &uri {
            entry.proposals.clone()
        } else {
            entry
                .foreign
                .iter()
                .filter(|foreign| foreign.origin == origin)
                .flat_map(|foreign| foreign.proposals.clone())
                .collect()
        };
        if !proposals.is_empty() {
            open.push((entry.key().clone(), entry.version, proposals));
        }
    }
    open.sort_by_key(|(key, _, _)| key != &uri);
    for (key, version, proposals) in open {
        let Some(snapshot) = session.snapshot(&key) else {
            continue;
        };
        let name = snapshot
            .path
            .as_deref()
            .map_or_else(|| key.to_string(), label);
        if snapshot.version() != version {
            stale += proposals.len();
            stale_files.push(name);
            continue;
        }
        let (edits, left_out) = replacements(&snapshot.document, &proposals);
        if left_out > 0 {
            stale += left_out;
            stale_files.push(name);
        }
        let Some(path) = snapshot.path.clone() else {
            continue;
        };
        applied += edits.len();
        if !edits.is_empty() {
            operations.push(FileOperation::Edit {
                path,
                version: Some(version),
                document: snapshot.document,
                edits,
            });
        }
    }
    // Files not open: only if the disk still holds the text the proposals were made for.
    let closed: Vec<(PathBuf, String, Vec<Proposal>)> = next_edits
        .closed
        .iter()
        .filter(|entry| entry.origin == origin)
        .map(|entry| {
            (
                entry.key().clone(),
                entry.text.clone(),
                entry.proposals.clone(),
            )
        })
        .collect();
    let mut landed_closed = Vec::new();
    for (path, text, proposals) in closed {
        let now = tokio::fs::read_to_string(&path).await.ok();
        if now.as_deref() != Some(text.as_str()) {
            stale += proposals.len();
            stale_files.push(label(&path));
            continue;
        }
        let document = Document::new(text.as_str(), 0, "");
        let (edits, _) = replacements(&document, &proposals);
        applied += edits.len();
        landed_closed.push((path.clone(), text));
        operations.push(FileOperation::Edit {
            path,
            version: None,
            document,
            edits,
        });
    }
    if !operations.is_empty() {
        match frontend
            .apply_operations("baton: next edits", operations)
            .await
        {
            Ok(true) => {
                // The edits to closed files are in the editor's buffers now, not on disk: their
                // proposals are done.
                for (path, text) in landed_closed {
                    if let Some((_, closed)) = next_edits.closed.remove_if(&path, |_, closed| {
                        closed.origin == origin && closed.text == text
                    }) {
                        client
                            .publish_diagnostics(closed.uri, Vec::new(), None)
                            .await;
                    }
                }
            }
            Ok(false) => {
                frontend
                    .show_message(
                        MessageLevel::Warning,
                        "baton: the editor did not apply the next edits".into(),
                    )
                    .await;
                return Ok(json!({ "applied": 0, "stale": stale }));
            }
            Err(err) => {
                frontend
                    .show_message(
                        MessageLevel::Error,
                        format!("baton: the editor refused the next edits: {err}"),
                    )
                    .await;
                return Ok(json!({ "applied": 0, "stale": stale }));
            }
        }
    }
    if stale > 0 {
        stale_files.dedup();
        frontend
            .show_message(
                MessageLevel::Warning,
                format!(
                    "baton: {stale} next edit{} not applied: {} changed since {} proposed",
                    if stale == 1 { " was" } else { "s were" },
                    stale_files.join(", "),
                    if stale == 1 { "it was" } else { "they were" },
                ),
            )
            .await;
    }
    Ok(json!({ "applied": applied, "stale": stale }))
}

/// Starts the watcher of a document that was just opened. It ends when the document closes.
pub fn watch(session: Arc<Session>, client: Client, http: reqwest::Client, uri: DocumentUri) {
    let owner = session.next_edits.watchers.fetch_add(1, Ordering::Relaxed);
    // Subscribed here, synchronously, in message order: a change that arrives right after the
    // open must be seen as a change, not as part of the opened text.
    let subscription =
        session
            .documents
            .observe(&uri, session.encoding(), session.index().as_deref());
    let Some(subscription) = subscription else {
        return;
    };
    let (inbox_sender, inbox) = mpsc::unbounded_channel();
    // Proposals made while the file was closed are handed to its watcher, which keeps them if
    // the file was opened with the text they were made for.
    if let Some(path) = subscription.0.path.as_deref()
        && let Some((_, closed)) = session.next_edits.closed.remove(path)
    {
        let _ = inbox_sender.send(Inbound::Proposals {
            origin: closed.origin,
            text: closed.text,
            proposals: closed.proposals,
        });
    }
    session
        .next_edits
        .inboxes
        .insert(uri.clone(), (owner, inbox_sender));
    tokio::spawn(async move {
        let watcher = Watcher {
            session: session.clone(),
            client: client.clone(),
            http,
            uri: uri.clone(),
            owner,
        };
        if let Err(message) = crate::panics::catch_future(watcher.run(subscription, inbox)).await {
            tracing::error!(%uri, "the next-edit watcher panicked: {message}");
        }
        // Whatever ended the watcher, its proposals go with it, here and elsewhere.
        let next_edits = &session.next_edits;
        next_edits
            .inboxes
            .remove_if(&uri, |_, (inbox_owner, _)| *inbox_owner == owner);
        let removed = next_edits
            .shown
            .remove_if(&uri, |_, shown| shown.owner == owner);
        let mut cleared = next_edits.withdraw(owner);
        if removed.is_some()
            && let Some(lsp_uri) = proto::parse_uri(uri.as_str())
        {
            cleared.push(lsp_uri);
        }
        for lsp_uri in cleared {
            client.publish_diagnostics(lsp_uri, Vec::new(), None).await;
        }
    });
}

struct Watcher {
    session: Arc<Session>,
    client: Client,
    http: reqwest::Client,
    uri: DocumentUri,
    owner: u64,
}

type Subscription = (
    DocumentSnapshot,
    tokio::sync::mpsc::UnboundedReceiver<crate::frontend::DocEvent>,
);

/// Where a round put proposals outside its own document.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Open(DocumentUri),
    Closed(PathBuf),
}

/// A round's answer: the proposals for the text it was asked about, in this document and in
/// the other files it offered.
#[derive(Default)]
struct Answer {
    own: Vec<Proposal>,
    /// Open documents: key, the text the round read, proposals.
    open: Vec<(DocumentUri, String, Vec<Proposal>)>,
    /// Files not open: path, the disk text, proposals.
    closed: Vec<(PathBuf, String, Vec<Proposal>)>,
}

type Round = BoxFuture<'static, Answer>;

impl Watcher {
    async fn run(
        self,
        (snapshot, mut events): Subscription,
        mut inbox: mpsc::UnboundedReceiver<Inbound>,
    ) {
        let path = snapshot.path;
        let mut current = snapshot.document;
        // The text the last round saw (or the opened text): a round shows the model the
        // difference from it to now.
        let mut baseline = current.clone();
        let mut proposals: Vec<Proposal> = Vec::new();
        let mut foreign: Vec<Foreign> = Vec::new();
        let mut targets: Vec<Target> = Vec::new();
        let mut deadline: Option<Instant> = None;
        let mut round: Option<Round> = None;
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { return };
                    // Dropping the request closes its HTTP stream: one request in flight, and
                    // never an answer about text the user has since changed.
                    let was_busy = round.take().is_some() || deadline.is_some();
                    let had_proposals =
                        !proposals.is_empty() || foreign.iter().any(|f| !f.proposals.is_empty());
                    let mut elsewhere = event.changes.is_empty();
                    for change in &event.changes {
                        let mut touched =
                            next_edit::follow(&mut proposals, change, Reach::Text) == Followed::AtProposal;
                        for other in &mut foreign {
                            touched |= next_edit::follow(&mut other.proposals, change, Reach::Line)
                                == Followed::AtProposal;
                        }
                        elsewhere |= !touched;
                    }
                    foreign.retain(|other| !other.proposals.is_empty());
                    current = event.document;
                    let features = self.session.config().config.features.clone();
                    if !features.next_edit || !features.code_actions {
                        proposals.clear();
                        foreign.clear();
                        deadline = None;
                        self.retarget(&mut targets, &Answer::default()).await;
                    } else if elsewhere || was_busy {
                        deadline = Some(
                            Instant::now() + Duration::from_millis(features.next_edit_debounce_ms),
                        );
                    } else {
                        // Only suggested places changed: the user is working through the
                        // proposals, which the next round need not see again.
                        baseline = current.clone();
                    }
                    if had_proposals {
                        self.publish(&current, &proposals, &foreign).await;
                    }
                }
                Some(message) = inbox.recv() => {
                    if self.receive(message, &current, &mut foreign) {
                        self.publish(&current, &proposals, &foreign).await;
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    deadline = None;
                    round = self.start_round(path.as_deref(), &baseline, &current);
                    baseline = current.clone();
                    if round.is_none() && !proposals.is_empty() {
                        proposals.clear();
                        self.publish(&current, &proposals, &foreign).await;
                    }
                }
                answer = async { round.as_mut().expect("guarded by the condition").await }, if round.is_some() => {
                    round = None;
                    // A new round replaces the previous one's proposals: the user moved on.
                    self.retarget(&mut targets, &answer).await;
                    if answer.own.is_empty() && proposals.is_empty() {
                        // Still published: "apply all" here counts the proposals elsewhere.
                        if !targets.is_empty() {
                            self.publish(&current, &proposals, &foreign).await;
                        }
                        continue;
                    }
                    proposals = answer.own;
                    self.publish(&current, &proposals, &foreign).await;
                }
            }
        }
    }

    /// Takes in what another round proposed here; true when the proposals shown changed.
    /// Proposals computed against an older text (the user typed here while the model was
    /// answering, or opened the file with other text than the disk's) are carried over the
    /// difference; those on lines it changed are dropped.
    fn receive(&self, message: Inbound, current: &Document, foreign: &mut Vec<Foreign>) -> bool {
        let before = foreign.len();
        let (origin, proposals) = match message {
            Inbound::Clear { origin } => {
                foreign.retain(|other| other.origin != origin);
                return foreign.len() != before;
            }
            Inbound::Proposals {
                origin,
                text,
                proposals,
            } => {
                let now = current.text();
                let proposals = if now == text {
                    proposals
                } else {
                    let rebased =
                        next_edit::rebase(proposals, &edit::diff::minimal_edits(&text, &now));
                    tracing::debug!(uri = %self.uri, kept = rebased.len(), "next edits from elsewhere rebased");
                    rebased
                };
                (origin, proposals)
            }
        };
        foreign.retain(|other| other.origin != origin);
        if !proposals.is_empty() {
            foreign.push(Foreign { origin, proposals });
        }
        // Published even when nothing is left: what was shown (this origin's previous
        // proposals, or the closed file's) must go.
        true
    }

    /// Replaces this watcher's proposals in other files with a new round's: sent to open
    /// documents' watchers, kept and published here for files not open, withdrawn where the
    /// new round has none.
    async fn retarget(&self, targets: &mut Vec<Target>, answer: &Answer) {
        let next_edits = &self.session.next_edits;
        let mut now: Vec<Target> = Vec::new();
        for (uri, text, proposals) in &answer.open {
            let sent = next_edits.inboxes.get(uri).is_some_and(|inbox| {
                inbox
                    .1
                    .send(Inbound::Proposals {
                        origin: self.owner,
                        text: text.clone(),
                        proposals: proposals.clone(),
                    })
                    .is_ok()
            });
            if sent {
                now.push(Target::Open(uri.clone()));
            }
        }
        let encoding = self.session.encoding();
        for (path, text, proposals) in &answer.closed {
            // Opened since the round read it: its watcher decides whether they still hold.
            if let Some(uri) = self.session.documents.uri_for_path(path) {
                if let Some(inbox) = next_edits.inboxes.get(&uri) {
                    let _ = inbox.1.send(Inbound::Proposals {
                        origin: self.owner,
                        text: text.clone(),
                        proposals: proposals.clone(),
                    });
                    now.push(Target::Open(uri.clone()));
                }
                continue;
            }
            let Some(lsp_uri) = proto::file_uri(path) else {
                continue;
            };
            let document = Document::new(text.as_str(), 0, "");
            let diagnostics = proposals
                .iter()
                .map(|proposal| diagnostic(&document, encoding, proposal))
                .collect();
            next_edits.closed.insert(
                path.clone(),
                Closed {
                    origin: self.owner,
                    uri: lsp_uri.clone(),
                    text: text.clone(),
                    proposals: proposals.clone(),
                },
            );
            now.push(Target::Closed(path.clone()));
            self.client
                .publish_diagnostics(lsp_uri, diagnostics, None)
                .await;
        }
        for old in targets.iter().filter(|old| !now.contains(old)) {
            match old {
                Target::Open(uri) => {
                    if let Some(inbox) = next_edits.inboxes.get(uri) {
                        let _ = inbox.1.send(Inbound::Clear { origin: self.owner });
                    }
                }
                Target::Closed(path) => {
                    let removed = next_edits
                        .closed
                        .remove_if(path, |_, closed| closed.origin == self.owner);
                    if let Some((_, closed)) = removed {
                        self.client
                            .publish_diagnostics(closed.uri, Vec::new(), None)
                            .await;
                    }
                }
            }
        }
        *targets = now;
    }

    /// Prepares a round's request, or says why there is none (in the log).
    fn start_round(
        &self,
        path: Option<&Path>,
        baseline: &Document,
        current: &Document,
    ) -> Option<Round> {
        let resolved = self.session.config();
        let root = self.session.root();
        if let Some(path) = path
            && let Err(refusal) = resolved.never_send.check(path, root.as_deref())
        {
            tracing::debug!(uri = %self.uri, "no next edits: {refusal}");
            return None;
        }
        let change = next_edit::describe_change(&baseline.text(), &current.text())?;
        let settings = resolved.config.models.tier(Tier::Fast).settings();
        let provider = match model::provider(&settings, self.http.clone()) {
            Ok(provider) => provider,
            Err(err) => {
                tracing::info!(uri = %self.uri, "no next edits: {}", err.user_message());
                return None;
            }
        };
        let path_label = match (path, &root) {
            (Some(path), Some(root)) => path
                .strip_prefix(root)
                .unwrap_or(path)
                .to_string_lossy()
                .replace('\\', "/"),
            (Some(path), None) => path.display().to_string(),
            _ => self.uri.to_string(),
        };
        let language = crate::session::language_of(current, path)
            .map(|language| language.name().to_string())
            .unwrap_or_else(|| current.language_id().to_string());
        let names = next_edit::removed_names(&change, MAX_NAMES);
        let index = self.session.current_index().filter(|_| !names.is_empty());
        let open = match &index {
            Some(_) => self.session.documents.open_documents(),
            None => Vec::new(),
        };
        let own_path = path.map(Path::to_path_buf);
        let listing_budget = resolved.config.context.max_tokens * BYTES_PER_TOKEN;
        let rope = current.rope().clone();
        let uri = self.uri.clone();
        tracing::debug!(%uri, version = current.version(), ?names, "next-edit round");
        Some(
            async move {
                // Reading other files is blocking work; the round is a background task anyway.
                let (offered, uses) = match index {
                    Some(index) => {
                        let (resolved, root, own_path) =
                            (resolved.clone(), root.clone(), own_path.clone());
                        tokio::task::spawn_blocking(move || {
                            uses_elsewhere(
                                &index,
                                &names,
                                own_path.as_deref(),
                                &resolved,
                                root.as_deref(),
                                &open,
                            )
                        })
                        .await
                        .unwrap_or_default()
                    }
                    None => Default::default(),
                };
                let prompt = next_edit::build_prompt(
                    &path_label,
                    &language,
                    &change.diff,
                    &rope,
                    change.first_line,
                    listing_budget,
                    &uses,
                );
                let request = model::ModelRequest {
                    system: prompt.system,
                    user: prompt.user,
                    suffix: None,
                };
                let mut stream = match provider.stream(request).await {
                    Ok(stream) => stream,
                    Err(err) => {
                        tracing::info!(%uri, "next-edit request failed: {}", err.user_message());
                        return Answer::default();
                    }
                };
                let mut reply = String::new();
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(text) => reply.push_str(&text),
                        Err(err) => {
                            tracing::info!(%uri, "next-edit reply failed: {}", err.user_message());
                            return Answer::default();
                        }
                    }
                }
                let answer = place(&reply, &path_label, &rope, offered);
                tracing::debug!(
                    %uri,
                    proposals = answer.own.len(),
                    open = answer.open.len(),
                    closed = answer.closed.len(),
                    "next-edit reply"
                );
                answer
            }
            .boxed(),
        )
    }

    /// Records the proposals for the document's version, then publishes them, in that order:
    /// a code action request that follows the diagnostics finds them.
    async fn publish(&self, document: &Document, proposals: &[Proposal], foreign: &[Foreign]) {
        let shown = Shown {
            owner: self.owner,
            version: document.version(),
            proposals: proposals.to_vec(),
            foreign: foreign.to_vec(),
        };
        let encoding = self.session.encoding();
        let diagnostics = shown
            .all()
            .map(|proposal| diagnostic(document, encoding, proposal))
            .collect();
        self.session
            .next_edits
            .shown
            .insert(self.uri.clone(), shown);
        let Some(uri) = proto::parse_uri(self.uri.as_str()) else {
            return;
        };
        self.client
            .publish_diagnostics(uri, diagnostics, Some(document.version()))
            .await;
    }
}

/// Places a reply's edits: those for this document in `rope`, those for an offered file in the
/// text the prompt showed of it; edits for any other file are dropped.
fn place(reply: &str, own_label: &str, rope: &text::Rope, offered: Vec<Offered>) -> Answer {
    let labels: Vec<&str> = offered.iter().map(|file| file.label.as_str()).collect();
    let (own, others) = next_edit::split_by_file(next_edit::parse_reply(reply), own_label, &labels);
    let mut answer = Answer {
        own: next_edit::map_to_document(&own, rope),
        ..Answer::default()
    };
    let mut offered: Vec<Option<Offered>> = offered.into_iter().map(Some).collect();
    for (index, edits) in others {
        let Some(file) = offered.get_mut(index).and_then(Option::take) else {
            continue;
        };
        let document = Document::new(file.text.as_str(), 0, "");
        let proposals = next_edit::map_to_document(&edits, document.rope());
        if proposals.is_empty() {
            continue;
        }
        match file.open {
            Some(uri) => answer.open.push((uri, file.text, proposals)),
            None => answer.closed.push((file.path, file.text, proposals)),
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "fn f(é: u8) -> u8 {\n    let ü = 1; é + ü\n}\n";

    fn snapshot(version: i32, encoding: PositionEncoding) -> DocumentSnapshot {
        DocumentSnapshot {
            uri: DocumentUri::new("file:///repo/src/f.rs"),
            document: Document::new(TEXT, version, "rust"),
            tree: None,
            path: None,
            encoding,
        }
    }

    /// The proposal over the second `é` (on line 1), shown for version 3.
    fn next_edits() -> NextEdits {
        let start = TEXT.rfind('é').unwrap();
        let next_edits = NextEdits::default();
        next_edits.shown.insert(
            DocumentUri::new("file:///repo/src/f.rs"),
            Shown {
                owner: 0,
                version: 3,
                proposals: vec![Proposal {
                    range: start..start + 'é'.len_utf8(),
                    old: "é".into(),
                    new: "e".into(),
                    line: 20..TEXT.len() - 3,
                }],
                foreign: Vec::new(),
            },
        );
        next_edits
    }

    fn params(line: u32, character: u32) -> lsp::CodeActionParams {
        serde_json::from_value(serde_json::json!({
            "textDocument": { "uri": "file:///repo/src/f.rs" },
            "range": { "start": { "line": line, "character": character },
                       "end": { "line": line, "character": character } },
            "context": { "diagnostics": [] },
        }))
        .unwrap()
    }

    fn as_json(actions: &[lsp::CodeActionOrCommand]) -> Vec<serde_json::Value> {
        actions
            .iter()
            .map(|action| serde_json::to_value(action).unwrap())
            .collect()
    }

    #[test]
    fn a_proposal_maps_to_the_clients_encoding_and_carries_a_versioned_edit() {
        // "    let ü = 1; " is 15 characters in UTF-16 and 16 bytes in UTF-8.
        for (encoding, start) in [(PositionEncoding::Utf16, 15), (PositionEncoding::Utf8, 16)] {
            let actions =
                next_edits().code_actions(&snapshot(3, encoding), &params(1, start), true);
            let actions = as_json(&actions);
            assert_eq!(actions.len(), 1, "{actions:#?}");
            let action = &actions[0];
            assert_eq!(action["isPreferred"], true);
            let change = &action["edit"]["documentChanges"][0];
            assert_eq!(change["textDocument"]["version"], 3);
            let width = if encoding == PositionEncoding::Utf8 {
                2
            } else {
                1
            };
            assert_eq!(
                change["edits"][0]["range"],
                serde_json::json!({ "start": { "line": 1, "character": start },
                                    "end": { "line": 1, "character": start + width } })
            );
            assert_eq!(change["edits"][0]["newText"], "e");
            assert_eq!(action["diagnostics"][0]["severity"], 4);
            assert_eq!(action["diagnostics"][0]["source"], "baton");
        }
    }

    #[test]
    fn nothing_is_offered_for_another_version_or_elsewhere() {
        let next_edits = next_edits();
        let stale =
            next_edits.code_actions(&snapshot(4, PositionEncoding::Utf16), &params(1, 15), true);
        assert!(stale.is_empty());
        let elsewhere =
            next_edits.code_actions(&snapshot(3, PositionEncoding::Utf16), &params(0, 0), true);
        assert!(elsewhere.is_empty());
        // A client without versioned edits gets `changes`.
        let plain =
            next_edits.code_actions(&snapshot(3, PositionEncoding::Utf16), &params(1, 15), false);
        let plain = as_json(&plain);
        assert_eq!(
            plain[0]["edit"]["changes"]["file:///repo/src/f.rs"][0]["newText"],
            "e"
        );
    }
}
