//! Next-edit suggestions: after the user changes something, the fast tier proposes the
//! follow-up edits elsewhere in the file, shown the portable way (no editor has a standard
//! request for this): `Hint` diagnostics with source `baton` over the places to change, and
//! code actions that carry the edits.
//!
//! Each open document gets one watcher task ([`watch`]), subscribed to the document's changes
//! like a job. It owns the document's proposals and at most one model request; nothing here
//! runs inside a request handler, so typing never waits for the model. The loop reacts to three
//! things, all in one `select!`:
//!
//! - a change: the in-flight request (if any) is dropped, which closes its HTTP stream; the
//!   proposals move with the change, and any the change touched are gone (the user took the
//!   suggestion, or typed there). A change that touched only proposals starts nothing new; any
//!   other change (re)arms the debounce deadline.
//! - the deadline: a round starts: the diff since the last round, the file with line numbers,
//!   and a JSON reply format (see `edit::next_edit`).
//! - the reply: its proposals replace the previous round's (the user has "moved on"); a failed
//!   or malformed reply clears them. The reply is always for the current text: any change in
//!   between would have dropped the request.
//!
//! Code actions read the proposals published for a version ([`NextEdits::code_actions`]) and
//! offer nothing when the watcher has not caught up with the document yet, so an edit is never
//! offered against text it was not computed for.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt};
use tokio::time::Instant;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types as lsp;

use edit::next_edit::{self, Followed, Proposal};
use text::{Document, PositionEncoding};

use crate::config::Tier;
use crate::jobs::sleep_until;
use crate::lsp::proto;
use crate::session::{DocumentSnapshot, DocumentUri, Session};

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

/// The lines of other files that use the names, from the index's references (which files) and
/// the files' text (which lines): open buffers as the user has them, else the disk. Never a
/// `never_send` file.
fn uses_elsewhere(
    index: &index::WorkspaceIndex,
    names: &[String],
    own_path: Option<&std::path::Path>,
    resolved: &crate::config::Resolved,
    root: Option<&std::path::Path>,
    open_texts: &[(std::path::PathBuf, String)],
) -> Vec<next_edit::Use> {
    let mut uses = Vec::new();
    for name in names {
        let files = index
            .files_referencing(name)
            .into_iter()
            .filter(|(path, _)| Some(path.as_path()) != own_path)
            .filter(|(path, _)| resolved.never_send.check(path, root).is_ok())
            .take(MAX_USE_FILES);
        for (path, _) in files {
            let text = match open_texts.iter().find(|(open, _)| open == &path) {
                Some((_, text)) => text.clone(),
                None => {
                    let small =
                        std::fs::metadata(&path).is_ok_and(|meta| meta.len() <= MAX_USE_FILE_BYTES);
                    match small.then(|| std::fs::read_to_string(&path).ok()).flatten() {
                        Some(text) => text,
                        None => continue,
                    }
                }
            };
            let label = root
                .and_then(|root| path.strip_prefix(root).ok())
                .unwrap_or(&path)
                .display()
                .to_string();
            for (line, content) in text.lines().enumerate() {
                if uses.len() >= MAX_USE_LINES {
                    return uses;
                }
                if contains_word(content, name) {
                    uses.push(next_edit::Use {
                        path_label: label.clone(),
                        line,
                        text: content.to_string(),
                    });
                }
            }
        }
    }
    uses
}

/// Whether `name` occurs in `line` as a whole identifier.
fn contains_word(line: &str, name: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(name).any(|(at, _)| {
        !line[..at].chars().next_back().is_some_and(is_word)
            && !line[at + name.len()..].chars().next().is_some_and(is_word)
    })
}

/// The proposals published for one document, valid at `version`.
struct Shown {
    /// The watcher that published them: a document reopened gets a new watcher, and the old
    /// one must not clear the new one's proposals as it ends.
    owner: u64,
    version: i32,
    proposals: Vec<Proposal>,
}

/// The published proposals of every open document.
#[derive(Default)]
pub struct NextEdits {
    shown: DashMap<DocumentUri, Shown>,
    watchers: AtomicU64,
}

impl NextEdits {
    /// The next-edit code actions for a request: one preferred action per proposal the range
    /// touches, and one that applies them all when there are several. Nothing when the
    /// proposals are not for the snapshot's version.
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
        let valid: Vec<&Proposal> = shown
            .proposals
            .iter()
            .filter(|proposal| {
                proposal.range.end <= document.len_bytes()
                    && document.slice(proposal.range.clone()) == proposal.old
            })
            .collect();
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
        if !actions.is_empty() && valid.len() > 1 {
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
    let edits: Vec<lsp::TextEdit> = proposals
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
    tokio::spawn(async move {
        let watcher = Watcher {
            session: session.clone(),
            client: client.clone(),
            http,
            uri: uri.clone(),
            owner,
        };
        if let Err(message) = crate::panics::catch_future(watcher.run(subscription)).await {
            tracing::error!(%uri, "the next-edit watcher panicked: {message}");
        }
        // Whatever ended the watcher, its proposals go with it.
        let removed = session
            .next_edits
            .shown
            .remove_if(&uri, |_, shown| shown.owner == owner);
        if removed.is_some()
            && let Some(lsp_uri) = proto::parse_uri(uri.as_str())
        {
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

/// A round's answer: the proposals for the text it was asked about.
type Round = BoxFuture<'static, Vec<Proposal>>;

impl Watcher {
    async fn run(self, (snapshot, mut events): Subscription) {
        let path = snapshot.path;
        let mut current = snapshot.document;
        // The text the last round saw (or the opened text): a round shows the model the
        // difference from it to now.
        let mut baseline = current.clone();
        let mut proposals: Vec<Proposal> = Vec::new();
        let mut deadline: Option<Instant> = None;
        let mut round: Option<Round> = None;
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { return };
                    // Dropping the request closes its HTTP stream: one request in flight, and
                    // never an answer about text the user has since changed.
                    let was_busy = round.take().is_some() || deadline.is_some();
                    let had_proposals = !proposals.is_empty();
                    let mut elsewhere = event.changes.is_empty();
                    for change in &event.changes {
                        elsewhere |= next_edit::follow(&mut proposals, change) == Followed::Elsewhere;
                    }
                    current = event.document;
                    let features = self.session.config().config.features.clone();
                    if !features.next_edit || !features.code_actions {
                        proposals.clear();
                        deadline = None;
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
                        self.publish(&current, &proposals).await;
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    deadline = None;
                    round = self.start_round(path.as_deref(), &baseline, &current);
                    baseline = current.clone();
                    if round.is_none() && !proposals.is_empty() {
                        proposals.clear();
                        self.publish(&current, &proposals).await;
                    }
                }
                answer = async { round.as_mut().expect("guarded by the condition").await }, if round.is_some() => {
                    round = None;
                    // A new round replaces the previous one's proposals: the user moved on.
                    if answer.is_empty() && proposals.is_empty() {
                        continue;
                    }
                    proposals = answer;
                    self.publish(&current, &proposals).await;
                }
            }
        }
    }

    /// Prepares a round's request, or says why there is none (in the log).
    fn start_round(
        &self,
        path: Option<&std::path::Path>,
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
                .display()
                .to_string(),
            (Some(path), None) => path.display().to_string(),
            _ => self.uri.to_string(),
        };
        let language = crate::session::language_of(current, path)
            .map(|language| language.name().to_string())
            .unwrap_or_else(|| current.language_id().to_string());
        let names = next_edit::removed_names(&change, MAX_NAMES);
        let index = self.session.current_index().filter(|_| !names.is_empty());
        let open_texts = match &index {
            Some(_) => self.session.documents.open_texts(),
            None => Vec::new(),
        };
        let own_path = path.map(std::path::Path::to_path_buf);
        let listing_budget = resolved.config.context.max_tokens * BYTES_PER_TOKEN;
        let rope = current.rope().clone();
        let uri = self.uri.clone();
        tracing::debug!(%uri, version = current.version(), ?names, "next-edit round");
        Some(
            async move {
                // Reading other files is blocking work; the round is a background task anyway.
                let uses = match index {
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
                                &open_texts,
                            )
                        })
                        .await
                        .unwrap_or_default()
                    }
                    None => Vec::new(),
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
                        return Vec::new();
                    }
                };
                let mut reply = String::new();
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(text) => reply.push_str(&text),
                        Err(err) => {
                            tracing::info!(%uri, "next-edit reply failed: {}", err.user_message());
                            return Vec::new();
                        }
                    }
                }
                let proposals = next_edit::map_to_document(&next_edit::parse_reply(&reply), &rope);
                tracing::debug!(%uri, proposals = proposals.len(), "next-edit reply");
                proposals
            }
            .boxed(),
        )
    }

    /// Records the proposals for the document's version, then publishes them, in that order:
    /// a code action request that follows the diagnostics finds them.
    async fn publish(&self, document: &Document, proposals: &[Proposal]) {
        self.session.next_edits.shown.insert(
            self.uri.clone(),
            Shown {
                owner: self.owner,
                version: document.version(),
                proposals: proposals.to_vec(),
            },
        );
        let Some(uri) = proto::parse_uri(self.uri.as_str()) else {
            return;
        };
        let encoding = self.session.encoding();
        let diagnostics = proposals
            .iter()
            .map(|proposal| diagnostic(document, encoding, proposal))
            .collect();
        self.client
            .publish_diagnostics(uri, diagnostics, Some(document.version()))
            .await;
    }
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
                }],
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
