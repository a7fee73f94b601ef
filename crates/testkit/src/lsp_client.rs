//! A scripted LSP client that drives the real `baton` binary over stdio, behaving like a chosen
//! editor (Neovim, Helix, Zed, or a strictly spec-following client).
//!
//! The client keeps its own copy of every open document, answers the server's requests the way the
//! imitated editor does (applying `workspace/applyEdit` to its copies and reporting the change back
//! with `didChange`, exactly as an editor would), and records everything the server says so tests
//! can wait for conditions with [`LspClient::wait_for`]. Protocol faults that a real editor would
//! surface or silently mishandle (a request nobody answers, progress on a token that was never
//! created, garbage on stdout) are collected and make [`LspClient::shutdown`] fail, so a test
//! cannot pass while the server misbehaves.
//!
//! Message handling runs on one reader task: a server request is handled completely (edits applied,
//! `didChange` queued, response queued) before the next message is read, and every outgoing message
//! is queued while the state lock is held, so the order the server sees is the order the client's
//! state changed in.

mod profile;
mod text_model;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use profile::ClientProfile;
pub use text_model::{Encoding, IncrementalChange, TextEdit, apply_text_edits};
pub use text_model::{
    LinePosition, offset_to_position, position_to_offset, position_to_offset_clamped,
};

/// JSON-RPC error codes the client uses itself.
pub mod error_codes {
    /// The method is not known (JSON-RPC `MethodNotFound`).
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The request was cancelled (LSP `RequestCancelled`).
    pub const REQUEST_CANCELLED: i64 = -32800;
    /// Client-side only: the server exited or closed stdout before answering.
    pub const SERVER_GONE: i64 = -32099;
    /// Client-side only: no answer within the client's safety timeout.
    pub const CLIENT_TIMEOUT: i64 = -32098;
}

/// How long [`LspClient::request`] waits before giving up. It is a safety net against a hung test,
/// not a performance assertion: tests that care about time measure it themselves.
const REQUEST_SAFETY_TIMEOUT: Duration = Duration::from_secs(120);

/// How many recent messages (both directions) are kept for failure messages.
const TRANSCRIPT_LENGTH: usize = 60;

/// A JSON-RPC error response, or a client-side failure reported the same way.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "error {}: {}", self.code, self.message)?;
        if let Some(data) = &self.data {
            write!(formatter, " ({data})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ResponseError {}

/// One `$/progress` notification, flattened.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressEvent {
    /// `"begin"`, `"report"` or `"end"`.
    pub kind: String,
    pub title: Option<String>,
    pub message: Option<String>,
    pub percentage: Option<u64>,
    pub cancellable: Option<bool>,
}

/// A `window/showMessage` or `window/logMessage` notification.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// 1 error, 2 warning, 3 info, 4 log, 5 debug.
    pub message_type: i64,
    pub message: String,
}

/// One `workspace/applyEdit` request and how the client answered it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyEditRecord {
    pub params: Value,
    /// The `ApplyWorkspaceEditResult` sent back.
    pub response: Value,
    /// Documents whose edit was skipped because its version was stale, while the answer still said
    /// `applied: true` (what Neovim 0.11 and Zed do).
    pub skipped_stale: Vec<String>,
}

/// The client's copy of an open document.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientDocument {
    pub text: String,
    pub version: i32,
    pub language_id: String,
}

/// Everything the client has seen, as of one moment.
#[derive(Clone, Debug, Default)]
pub struct ClientState {
    /// Open documents by URI.
    pub documents: BTreeMap<String, ClientDocument>,
    /// Files touched by workspace edits but not open, by URI: `Some(text)` for the edited or
    /// created content, `None` for a deleted file. The disk itself is never written, as an editor
    /// would leave such changes in unsaved buffers.
    pub files: BTreeMap<String, Option<String>>,
    /// Progress tokens created with `window/workDoneProgress/create` (or passed by the client as a
    /// `workDoneToken`), in order.
    pub created_progress_tokens: Vec<String>,
    /// `$/progress` events per token, in arrival order.
    pub progress: BTreeMap<String, Vec<ProgressEvent>>,
    /// Every `$/progress` event in arrival order, with its token.
    pub progress_log: Vec<(String, ProgressEvent)>,
    pub show_messages: Vec<Message>,
    pub log_messages: Vec<Message>,
    /// `window/showMessageRequest` params, in order.
    pub show_message_requests: Vec<Value>,
    /// `window/showDocument` params, in order.
    pub show_documents: Vec<Value>,
    pub apply_edits: Vec<ApplyEditRecord>,
    /// The latest `textDocument/publishDiagnostics` params per URI.
    pub diagnostics: BTreeMap<String, Value>,
    /// `client/registerCapability` registrations.
    pub registrations: Vec<Value>,
    /// Notifications the client has no special handling for (for example custom `baton/...` ones).
    pub other_notifications: Vec<Value>,
    /// Protocol faults: each makes [`LspClient::shutdown`] fail.
    pub problems: Vec<String>,
    /// Every message received from the server, in order; responses without their `result`,
    /// which went to the request's caller.
    pub messages: Vec<Value>,
    /// When each message of `messages` was read, at the same index: benchmarks time edits and
    /// answers by their arrival, not by when a waiting task happened to wake up.
    pub received_at: Vec<std::time::Instant>,
}

impl ClientState {
    /// Whether an `end` has arrived for the token.
    pub fn progress_ended(&self, token: &str) -> bool {
        self.progress
            .get(token)
            .is_some_and(|events| events.iter().any(|event| event.kind == "end"))
    }

    /// Tokens that have begun and ended, in the order they ended.
    pub fn ended_progress_tokens(&self) -> Vec<String> {
        self.progress_log
            .iter()
            .filter(|(_, event)| event.kind == "end")
            .map(|(token, _)| token.clone())
            .collect()
    }

    /// The text of an open document, or of a file changed by a workspace edit.
    pub fn text(&self, uri: &str) -> Option<&str> {
        if let Some(document) = self.documents.get(uri) {
            return Some(&document.text);
        }
        self.files.get(uri).and_then(|file| file.as_deref())
    }
}

/// A request that was sent and whose answer can be awaited; its id allows `$/cancelRequest`.
pub struct PendingRequest {
    pub id: i64,
    receiver: oneshot::Receiver<Result<Value, ResponseError>>,
}

impl PendingRequest {
    /// Waits for the response (with the client's safety timeout).
    pub async fn response(self) -> Result<Value, ResponseError> {
        match tokio::time::timeout(REQUEST_SAFETY_TIMEOUT, self.receiver).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ResponseError {
                code: error_codes::SERVER_GONE,
                message: "the client stopped before the server answered".to_string(),
                data: None,
            }),
            Err(_) => Err(ResponseError {
                code: error_codes::CLIENT_TIMEOUT,
                message: format!("no answer within {REQUEST_SAFETY_TIMEOUT:?}"),
                data: None,
            }),
        }
    }
}

/// How the server wants document changes (`textDocumentSync.change`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SyncKind {
    None,
    Full,
    Incremental,
}

enum WriterCommand {
    Frame(Vec<u8>),
    Close,
}

/// State behind the lock, shared by the test's calls and the reader task.
struct Inner {
    state: ClientState,
    pending: HashMap<i64, oneshot::Sender<Result<Value, ResponseError>>>,
    next_id: i64,
    encoding: Encoding,
    sync_kind: SyncKind,
    transcript: VecDeque<String>,
    stderr: String,
    server_closed_stdout: bool,
    /// User typing to perform when the next `workspace/applyEdit` arrives, before applying it:
    /// makes that edit's version stale, deterministically (the race a real user wins).
    typing_before_apply: VecDeque<(String, TextEdit)>,
}

struct Shared {
    profile: ClientProfile,
    root: PathBuf,
    inner: Mutex<Inner>,
    outgoing: mpsc::UnboundedSender<WriterCommand>,
    /// Counts received messages; waiters re-check their condition whenever it changes.
    received: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in a test thread while holding the lock must not hide the state from the
        // failure message, so a poisoned lock is still used.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a message. Callers hold the lock so the order of messages matches the order of
    /// state changes.
    fn send(&self, inner: &mut Inner, message: Value) {
        let body = serde_json::to_vec(&message).expect("JSON values always serialize");
        push_transcript(inner, "->", &message);
        // A closed channel means the server is gone; the failure shows up in responses instead.
        let _ = self.outgoing.send(WriterCommand::Frame(body));
    }

    fn notify_locked(&self, inner: &mut Inner, method: &str, params: Value) {
        self.send(
            inner,
            json!({"jsonrpc": "2.0", "method": method, "params": params}),
        );
    }

    fn send_did_change(&self, inner: &mut Inner, uri: &str, changes: Vec<IncrementalChange>) {
        let Some(document) = inner.state.documents.get(uri) else {
            return;
        };
        let version = document.version;
        let content_changes: Vec<Value> = match inner.sync_kind {
            SyncKind::None => return,
            SyncKind::Full => vec![json!({"text": document.text})],
            SyncKind::Incremental => changes
                .into_iter()
                .map(|change| {
                    json!({
                        "range": range_json(change.start, change.end),
                        "text": change.text,
                    })
                })
                .collect(),
        };
        self.notify_locked(
            inner,
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": content_changes,
            }),
        );
    }
}

/// An open document of the client's, for a change the test makes. Panics if it is not open:
/// that is a mistake in the test.
fn open_document_mut<'a>(inner: &'a mut Inner, uri: &str) -> &'a mut ClientDocument {
    inner
        .state
        .documents
        .get_mut(uri)
        .unwrap_or_else(|| panic!("{uri} is not open in the test client"))
}

fn push_transcript(inner: &mut Inner, direction: &str, message: &Value) {
    // Serialized only up to the cut: a whole large answer (every symbol of a document) would
    // cost the client more than the server spent on it, and benchmarks time this client.
    let mut bounded = Bounded(Vec::with_capacity(TRANSCRIPT_LINE + 8));
    let complete = serde_json::to_writer(&mut bounded, message).is_ok();
    let mut text = String::from_utf8_lossy(&bounded.0).into_owned();
    if !complete || text.len() > TRANSCRIPT_LINE {
        let mut cut = TRANSCRIPT_LINE.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    let line = format!("{direction} {text}");
    if inner.transcript.len() == TRANSCRIPT_LENGTH {
        inner.transcript.pop_front();
    }
    inner.transcript.push_back(line);
}

/// Longest transcript line, in bytes of JSON.
const TRANSCRIPT_LINE: usize = 600;

/// A writer that takes bytes up to a little past [`TRANSCRIPT_LINE`] and then fails, which
/// stops serialization early.
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() > TRANSCRIPT_LINE {
            return Err(std::io::Error::other("transcript line is full"));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn range_json(start: (u32, u32), end: (u32, u32)) -> Value {
    json!({
        "start": {"line": start.0, "character": start.1},
        "end": {"line": end.0, "character": end.1},
    })
}

/// A `file://` URI for a path, percent-encoding everything but unreserved characters and `/`.
pub fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// The path of a `file://` URI, decoding percent escapes; `None` for other schemes.
pub fn uri_to_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |offset: usize| {
            bytes
                .get(index + offset)
                .and_then(|b| (*b as char).to_digit(16))
        };
        if bytes[index] == b'%'
            && let (Some(high), Some(low)) = (hex(1), hex(2))
        {
            decoded.push((high * 16 + low) as u8);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    Some(PathBuf::from(
        String::from_utf8_lossy(&decoded).into_owned(),
    ))
}

/// A progress token as a string key: strings as they are, numbers in decimal.
fn token_key(token: &Value) -> String {
    match token {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The scripted editor. See the module documentation.
pub struct LspClient {
    shared: Arc<Shared>,
    child: Child,
    position_encoding: String,
    tasks: Vec<JoinHandle<()>>,
}

impl LspClient {
    /// Spawns `program args…` with `env` added to the inherited environment (from which
    /// `OPENAI_API_KEY` and `ANTHROPIC_API_KEY` are removed unless `env` sets them, so no test can
    /// reach a real model by accident), sends `initialize` with the profile's capabilities and
    /// `root` as the workspace, then `initialized`. Returns the client and the `InitializeResult`.
    pub async fn start(
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        root: &Path,
        profile: ClientProfile,
        initialization_options: Value,
    ) -> anyhow::Result<(LspClient, Value)> {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .envs(env.iter().copied())
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stdin = child.stdin.take().context("the child has no stdin")?;
        let stdout = child.stdout.take().context("the child has no stdout")?;
        let stderr = child.stderr.take().context("the child has no stderr")?;

        let (outgoing, outgoing_receiver) = mpsc::unbounded_channel();
        let (received, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            profile,
            root: root.to_path_buf(),
            inner: Mutex::new(Inner {
                state: ClientState::default(),
                pending: HashMap::new(),
                next_id: 1,
                encoding: Encoding::Utf16,
                sync_kind: SyncKind::Incremental,
                transcript: VecDeque::new(),
                stderr: String::new(),
                server_closed_stdout: false,
                typing_before_apply: VecDeque::new(),
            }),
            outgoing,
            received,
        });
        let tasks = vec![
            tokio::spawn(write_frames(stdin, outgoing_receiver)),
            tokio::spawn(read_messages(shared.clone(), stdout)),
            tokio::spawn(drain_stderr(shared.clone(), stderr)),
        ];
        let mut client = LspClient {
            shared,
            child,
            position_encoding: "utf-16".to_string(),
            tasks,
        };

        let (capabilities, client_info) = profile.capabilities_and_client_info();
        let root_uri = file_uri(root);
        let root_name = root
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| root.display().to_string());
        let params = json!({
            "processId": std::process::id(),
            "clientInfo": client_info,
            "rootPath": root.display().to_string(),
            "rootUri": root_uri,
            "workspaceFolders": [{"uri": root_uri, "name": root_name}],
            "capabilities": capabilities,
            "initializationOptions": initialization_options,
            "trace": "off",
        });
        let result = match client.request("initialize", params).await {
            Ok(result) => result,
            Err(error) => bail!(
                "initialize failed: {error}\n{}",
                client.diagnostic_context()
            ),
        };
        let encoding_name = result["capabilities"]["positionEncoding"]
            .as_str()
            .unwrap_or("utf-16")
            .to_string();
        let encoding = Encoding::from_name(&encoding_name).ok_or_else(|| {
            anyhow!("the server chose an unknown position encoding {encoding_name:?}")
        })?;
        let offered = capabilities["general"]["positionEncodings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if encoding_name != "utf-16" && !offered.iter().any(|name| name == &encoding_name) {
            bail!("the server chose {encoding_name}, which the client did not offer ({offered:?})");
        }
        let sync = &result["capabilities"]["textDocumentSync"];
        let sync_number = sync.as_i64().or_else(|| sync["change"].as_i64());
        let sync_kind = match sync_number {
            Some(0) => SyncKind::None,
            Some(1) => SyncKind::Full,
            _ => SyncKind::Incremental,
        };
        {
            let mut inner = client.shared.lock();
            inner.encoding = encoding;
            inner.sync_kind = sync_kind;
        }
        client.position_encoding = encoding_name;
        client.notify("initialized", json!({}));
        Ok((client, result))
    }

    /// The profile this client imitates.
    pub fn profile(&self) -> ClientProfile {
        self.shared.profile
    }

    /// The server's process id, while it runs (for reading its CPU time from `/proc`).
    pub fn server_pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The negotiated position encoding (`"utf-8"`, `"utf-16"` or `"utf-32"`).
    pub fn position_encoding(&self) -> &str {
        &self.position_encoding
    }

    /// Sends a request and waits for its result.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ResponseError> {
        self.request_id(method, params).response().await
    }

    /// Sends a request and returns at once with its id, so a test can cancel it with
    /// [`LspClient::cancel`] before awaiting [`PendingRequest::response`].
    pub fn request_id(&self, method: &str, params: Value) -> PendingRequest {
        let (sender, receiver) = oneshot::channel();
        let mut inner = self.shared.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        // Tokens the client hands out itself need no `window/workDoneProgress/create`.
        for key in ["workDoneToken", "partialResultToken"] {
            if let Some(token) = params.get(key) {
                inner.state.created_progress_tokens.push(token_key(token));
            }
        }
        if inner.server_closed_stdout {
            let _ = sender.send(Err(ResponseError {
                code: error_codes::SERVER_GONE,
                message: "the server has closed its stdout".to_string(),
                data: None,
            }));
        } else {
            inner.pending.insert(id, sender);
        }
        self.shared.send(
            &mut inner,
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        );
        PendingRequest { id, receiver }
    }

    /// Sends `$/cancelRequest` for a request id.
    pub fn cancel(&self, id: i64) {
        self.notify("$/cancelRequest", json!({"id": id}));
    }

    /// Sends a notification.
    pub fn notify(&self, method: &str, params: Value) {
        let mut inner = self.shared.lock();
        self.shared.notify_locked(&mut inner, method, params);
    }

    /// Opens a document (`textDocument/didOpen`, version 1). Panics if it is already open: that is
    /// a mistake in the test.
    pub async fn open(&self, uri: &str, language_id: &str, text: &str) {
        let mut inner = self.shared.lock();
        assert!(
            !inner.state.documents.contains_key(uri),
            "{uri} is already open in the test client"
        );
        inner.state.documents.insert(
            uri.to_string(),
            ClientDocument {
                text: text.to_string(),
                version: 1,
                language_id: language_id.to_string(),
            },
        );
        self.shared.notify_locked(
            &mut inner,
            "textDocument/didOpen",
            json!({"textDocument": {
                "uri": uri, "languageId": language_id, "version": 1, "text": text,
            }}),
        );
    }

    /// Closes a document (`textDocument/didClose`).
    pub async fn close(&self, uri: &str) {
        let mut inner = self.shared.lock();
        inner.state.documents.remove(uri);
        self.shared.notify_locked(
            &mut inner,
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri}}),
        );
    }

    /// Types into an open document: replaces `range` (positions in the negotiated encoding) with
    /// `new_text` in the client's copy and sends the incremental `didChange` with version + 1.
    pub async fn change(&self, uri: &str, range: ((u32, u32), (u32, u32)), new_text: &str) {
        self.change_nowait(uri, range, new_text);
    }

    /// Applies a code action's own `edit` (a `WorkspaceEdit`) the way the profile's editor
    /// applies a `workspace/applyEdit`, as it does when the user picks such an action: version
    /// checks included, a `didChange` for each changed document. Returns what the editor would
    /// answer (`applied`, and `failureReason` when it refused).
    pub fn apply_code_action_edit(&self, edit: &Value) -> Value {
        let mut inner = self.shared.lock();
        apply_workspace_edit(&self.shared, &mut inner, json!({ "edit": edit }))
    }

    /// [`LspClient::change`] without awaiting anything, for sending thousands of changes in a loop.
    /// Panics if the document is not open or the range is invalid: that is a mistake in the test.
    pub fn change_nowait(&self, uri: &str, range: ((u32, u32), (u32, u32)), new_text: &str) {
        let mut inner = self.shared.lock();
        let encoding = inner.encoding;
        let document = open_document_mut(&mut inner, uri);
        let edit = TextEdit {
            start: range.0,
            end: range.1,
            new_text: new_text.to_string(),
        };
        let (text, changes) = apply_text_edits(&document.text, &[edit], encoding)
            .unwrap_or_else(|error| panic!("invalid change to {uri}: {error}"));
        document.text = text;
        document.version += 1;
        self.shared.send_did_change(&mut inner, uri, changes);
    }

    /// Sends one `didChange` with any content changes, hostile ones included, as a buggy or
    /// malicious client might: ranges past the end, inside characters or reversed (`None` for a
    /// whole-text change), and a version `version_step` away from the current one. The client's
    /// copy follows the specification's clamping ([`text_model::position_to_offset_clamped`],
    /// a reversed range taken as its two ends in order), applying the changes one after the
    /// other. A step of zero or less makes a stale change, which a server must ignore, so the
    /// copy is left as it was. Returns the version sent.
    pub fn change_hostile_nowait(
        &self,
        uri: &str,
        changes: &[(Option<(LinePosition, LinePosition)>, String)],
        version_step: i32,
    ) -> i32 {
        let mut inner = self.shared.lock();
        let encoding = inner.encoding;
        let document = open_document_mut(&mut inner, uri);
        let version = document.version.saturating_add(version_step);
        if version_step > 0 {
            let mut text = std::mem::take(&mut document.text);
            for (range, new_text) in changes {
                let (start, end) = match range {
                    None => (0, text.len()),
                    Some((start, end)) => {
                        let start = text_model::position_to_offset_clamped(&text, *start, encoding);
                        let end = text_model::position_to_offset_clamped(&text, *end, encoding);
                        (start.min(end), start.max(end))
                    }
                };
                text.replace_range(start..end, new_text);
            }
            document.text = text;
            document.version = version;
        }
        let content_changes: Vec<Value> = changes
            .iter()
            .map(|(range, text)| match range {
                None => json!({ "text": text }),
                Some((start, end)) => json!({ "range": range_json(*start, *end), "text": text }),
            })
            .collect();
        self.shared.notify_locked(
            &mut inner,
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": content_changes,
            }),
        );
        version
    }

    /// Replaces a document's whole text with one range-less `didChange` (version + 1), the way a
    /// client that syncs full documents, or reloads a buffer, sends it.
    pub fn replace_whole_text(&self, uri: &str, text: &str) {
        let mut inner = self.shared.lock();
        let document = open_document_mut(&mut inner, uri);
        document.text = text.to_string();
        document.version += 1;
        let version = document.version;
        self.shared.notify_locked(
            &mut inner,
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": text}],
            }),
        );
    }

    /// Arranges for the user to type `new_text` over `range` right before the next
    /// `workspace/applyEdit` is handled, so that edit arrives with a stale version.
    pub fn type_before_next_apply_edit(
        &self,
        uri: &str,
        range: ((u32, u32), (u32, u32)),
        new_text: &str,
    ) {
        let mut inner = self.shared.lock();
        inner.typing_before_apply.push_back((
            uri.to_string(),
            TextEdit {
                start: range.0,
                end: range.1,
                new_text: new_text.to_string(),
            },
        ));
    }

    /// The client's text of an open document, or of a file changed by a workspace edit. Panics if
    /// the client knows no such document.
    pub fn text(&self, uri: &str) -> String {
        let inner = self.shared.lock();
        inner
            .state
            .text(uri)
            .unwrap_or_else(|| panic!("the test client has no document {uri}"))
            .to_string()
    }

    /// The client's version of an open document. Panics if it is not open.
    pub fn version(&self, uri: &str) -> i32 {
        let inner = self.shared.lock();
        inner
            .state
            .documents
            .get(uri)
            .unwrap_or_else(|| panic!("{uri} is not open in the test client"))
            .version
    }

    /// A snapshot of everything the client has seen.
    pub fn state(&self) -> ClientState {
        self.shared.lock().state.clone()
    }

    /// What the server has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.shared.lock().stderr.clone()
    }

    /// Waits until `predicate` returns `Some`, re-checking it whenever a message arrives. On timeout,
    /// or when the server closes its stdout first, fails with `what`, the recent messages and the
    /// server's stderr.
    ///
    /// The predicate runs while the client's state is locked: it must read the `&ClientState` it is
    /// given and not call methods of the client, which would deadlock.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut predicate: impl FnMut(&ClientState) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.shared.received.subscribe();
        loop {
            changes.borrow_and_update();
            {
                let inner = self.shared.lock();
                if let Some(found) = predicate(&inner.state) {
                    return Ok(found);
                }
                if inner.server_closed_stdout {
                    drop(inner);
                    bail!(
                        "the server exited while waiting for {what}\n{}",
                        self.diagnostic_context()
                    );
                }
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `shared`, which we hold, so this cannot close; treat it as a
                // timeout rather than spinning.
                Ok(Err(_)) | Err(_) => {
                    let inner = self.shared.lock();
                    if let Some(found) = predicate(&inner.state) {
                        return Ok(found);
                    }
                    drop(inner);
                    bail!(
                        "timed out after {timeout:?} waiting for {what}\n{}",
                        self.diagnostic_context()
                    );
                }
            }
        }
    }

    /// The recent message transcript, recorded problems and the server's stderr, for failure
    /// messages.
    pub fn diagnostic_context(&self) -> String {
        let inner = self.shared.lock();
        let mut text = String::from("recent messages:\n");
        for line in &inner.transcript {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
        if !inner.state.problems.is_empty() {
            text.push_str("protocol problems:\n");
            for problem in &inner.state.problems {
                text.push_str("  ");
                text.push_str(problem);
                text.push('\n');
            }
        }
        let stderr = &inner.stderr;
        let tail_start = stderr.len().saturating_sub(4000);
        let mut cut = tail_start;
        while !stderr.is_char_boundary(cut) {
            cut += 1;
        }
        text.push_str("server stderr (tail):\n");
        text.push_str(&stderr[cut..]);
        text
    }

    /// Sends `shutdown` and `exit` and waits for the process to end. Fails if the shutdown request
    /// fails, the process does not exit with success, or any protocol problem was recorded: an
    /// unhandled server request, progress on an uncreated token, or non-LSP output on stdout.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let shutdown_result = self.request("shutdown", Value::Null).await;
        self.notify("exit", Value::Null);
        let _ = self.shared.outgoing.send(WriterCommand::Close);
        let status: Option<ExitStatus> =
            match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
                Ok(status) => Some(status.context("waiting for the server to exit")?),
                Err(_) => {
                    let _ = self.child.kill().await;
                    None
                }
            };
        // Let the reader and stderr tasks drain what the process wrote before it exited.
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        let problems = self.shared.lock().state.problems.clone();
        let mut failures = Vec::new();
        if let Err(error) = shutdown_result {
            failures.push(format!("the shutdown request failed: {error}"));
        }
        match status {
            None => failures.push("the server did not exit within 30 s of `exit`".to_string()),
            Some(status) if !status.success() => {
                failures.push(format!("the server exited with {status}"))
            }
            Some(_) => {}
        }
        failures.extend(problems);
        if failures.is_empty() {
            Ok(())
        } else {
            bail!(
                "shutdown found problems:\n  {}\n{}",
                failures.join("\n  "),
                self.diagnostic_context()
            )
        }
    }
}

async fn write_frames(mut stdin: ChildStdin, mut commands: mpsc::UnboundedReceiver<WriterCommand>) {
    while let Some(command) = commands.recv().await {
        match command {
            WriterCommand::Frame(body) => {
                let header = format!("Content-Length: {}\r\n\r\n", body.len());
                let written = async {
                    stdin.write_all(header.as_bytes()).await?;
                    stdin.write_all(&body).await?;
                    stdin.flush().await
                };
                if written.await.is_err() {
                    // The server has gone away; responses and waits report it.
                    break;
                }
            }
            WriterCommand::Close => break,
        }
    }
    // Dropping stdin closes the pipe, which a server treats as the end of input.
}

async fn drain_stderr(shared: Arc<Shared>, stderr: impl AsyncRead + Unpin) {
    let mut reader = BufReader::new(stderr);
    let mut buffer = vec![0u8; 8192];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(count) => {
                let mut inner = shared.lock();
                inner
                    .stderr
                    .push_str(&String::from_utf8_lossy(&buffer[..count]));
            }
        }
    }
}

/// Reads LSP frames from the server's stdout until it closes, and dispatches each message.
async fn read_messages(shared: Arc<Shared>, stdout: impl AsyncRead + Unpin) {
    let mut reader = BufReader::new(stdout);
    let mut content_length: Option<usize> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let header = text.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            let Some(length) = content_length.take() else {
                record_problem(
                    &shared,
                    "the server wrote a blank line outside an LSP frame",
                );
                continue;
            };
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).await.is_err() {
                record_problem(&shared, "the server's stdout ended inside a frame body");
                break;
            }
            match serde_json::from_slice::<Value>(&body) {
                Ok(message) => dispatch(&shared, message),
                Err(error) => record_problem(
                    &shared,
                    &format!(
                        "the server sent a frame that is not JSON ({error}): {}",
                        String::from_utf8_lossy(&body)
                    ),
                ),
            }
            continue;
        }
        let lowered = header.to_ascii_lowercase();
        if let Some(value) = lowered.strip_prefix("content-length:") {
            match value.trim().parse() {
                Ok(length) => content_length = Some(length),
                Err(_) => record_problem(&shared, &format!("bad Content-Length header: {header}")),
            }
        } else if !lowered.starts_with("content-type:") {
            record_problem(
                &shared,
                &format!("the server wrote non-LSP output to stdout: {header:?}"),
            );
        }
    }
    let mut inner = shared.lock();
    inner.server_closed_stdout = true;
    for (_, sender) in inner.pending.drain() {
        let _ = sender.send(Err(ResponseError {
            code: error_codes::SERVER_GONE,
            message: "the server closed its stdout before answering".to_string(),
            data: None,
        }));
    }
    drop(inner);
    shared.received.send_modify(|count| *count += 1);
}

fn record_problem(shared: &Shared, problem: &str) {
    shared.lock().state.problems.push(problem.to_string());
    shared.received.send_modify(|count| *count += 1);
}

fn dispatch(shared: &Shared, mut message: Value) {
    let received_at = std::time::Instant::now();
    {
        let mut inner = shared.lock();
        push_transcript(&mut inner, "<-", &message);
        let is_response = message.get("method").is_none();
        let id = message.get("id").cloned();
        // A response's result goes to its waiter, not into the record (which keeps the id and
        // any error): deep-copying every large answer would dominate what benchmarks time.
        let result = match message.as_object_mut() {
            Some(object) if is_response && id.is_some() => object.remove("result"),
            _ => None,
        };
        inner.state.messages.push(message.clone());
        inner.state.received_at.push(received_at);
        let method = message.get("method").and_then(Value::as_str);
        match (method, id) {
            (Some(method), Some(id)) => {
                let params = message.get("params").cloned().unwrap_or(Value::Null);
                let outcome = handle_server_request(shared, &mut inner, method, params);
                let response = match outcome {
                    Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                    Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": {
                        "code": error.code, "message": error.message,
                    }}),
                };
                shared.send(&mut inner, response);
            }
            (Some(method), None) => {
                let params = message.get("params").cloned().unwrap_or(Value::Null);
                handle_notification(&mut inner, method, params, &message);
            }
            (None, Some(id)) => {
                let waiter = id.as_i64().and_then(|id| inner.pending.remove(&id));
                match waiter {
                    Some(waiter) => {
                        let result = match message.get("error") {
                            Some(error) => Err(ResponseError {
                                code: error["code"].as_i64().unwrap_or(0),
                                message: error["message"].as_str().unwrap_or("").to_string(),
                                data: error.get("data").cloned(),
                            }),
                            None => Ok(result.unwrap_or(Value::Null)),
                        };
                        // The test may have stopped waiting; that is its choice.
                        let _ = waiter.send(result);
                    }
                    None => inner
                        .state
                        .problems
                        .push(format!("a response for unknown request id {id}: {message}")),
                }
            }
            (None, None) => inner.state.problems.push(format!(
                "a message that is neither request, response nor notification: {message}"
            )),
        }
    }
    shared.received.send_modify(|count| *count += 1);
}

fn handle_notification(inner: &mut Inner, method: &str, params: Value, message: &Value) {
    match method {
        "$/progress" => {
            let token = token_key(&params["token"]);
            if !inner.state.created_progress_tokens.contains(&token) {
                inner.state.problems.push(format!(
                    "$/progress for token {token} that was never created with window/workDoneProgress/create"
                ));
            }
            let value = &params["value"];
            let event = ProgressEvent {
                kind: value["kind"].as_str().unwrap_or("").to_string(),
                title: value["title"].as_str().map(str::to_string),
                message: value["message"].as_str().map(str::to_string),
                percentage: value["percentage"].as_u64(),
                cancellable: value["cancellable"].as_bool(),
            };
            if !matches!(event.kind.as_str(), "begin" | "report" | "end") {
                inner
                    .state
                    .problems
                    .push(format!("$/progress with an unknown kind: {params}"));
            }
            let events = inner.state.progress.entry(token.clone()).or_default();
            if event.kind == "begin" && !events.is_empty() {
                inner
                    .state
                    .problems
                    .push(format!("$/progress begin twice for token {token}"));
            }
            if event.kind != "begin" && !events.iter().any(|event| event.kind == "begin") {
                inner.state.problems.push(format!(
                    "$/progress {} before begin for token {token}",
                    event.kind
                ));
            }
            events.push(event.clone());
            inner.state.progress_log.push((token, event));
        }
        "window/showMessage" | "window/logMessage" => {
            let entry = Message {
                message_type: params["type"].as_i64().unwrap_or(0),
                message: params["message"].as_str().unwrap_or("").to_string(),
            };
            if method == "window/showMessage" {
                inner.state.show_messages.push(entry);
            } else {
                inner.state.log_messages.push(entry);
            }
        }
        "textDocument/publishDiagnostics" => {
            let uri = params["uri"].as_str().unwrap_or("").to_string();
            inner.state.diagnostics.insert(uri, params);
        }
        _ => inner.state.other_notifications.push(message.clone()),
    }
}

fn method_not_found(method: &str) -> ResponseError {
    ResponseError {
        code: error_codes::METHOD_NOT_FOUND,
        message: format!("method not found: {method}"),
        data: None,
    }
}

fn handle_server_request(
    shared: &Shared,
    inner: &mut Inner,
    method: &str,
    params: Value,
) -> Result<Value, ResponseError> {
    let profile = shared.profile;
    match method {
        "workspace/applyEdit" => Ok(apply_workspace_edit(shared, inner, params)),
        "window/workDoneProgress/create" => {
            let token = token_key(&params["token"]);
            let active = inner
                .state
                .progress
                .get(&token)
                .is_some_and(|events| !events.iter().any(|event| event.kind == "end"));
            if active {
                inner
                    .state
                    .problems
                    .push(format!("progress token {token} created again while active"));
            }
            inner.state.created_progress_tokens.push(token);
            Ok(Value::Null)
        }
        "window/showDocument" => {
            inner.state.show_documents.push(params);
            Ok(json!({"success": profile.shows_documents()}))
        }
        "window/showMessageRequest" => {
            inner.state.show_message_requests.push(params.clone());
            if profile.rejects_show_message_request() {
                return Err(method_not_found(method));
            }
            // Like a user who accepts the first offered choice.
            Ok(params["actions"].get(0).cloned().unwrap_or(Value::Null))
        }
        "workspace/configuration" => {
            let count = params["items"].as_array().map_or(0, Vec::len);
            Ok(Value::Array(vec![Value::Null; count]))
        }
        "workspace/workspaceFolders" => {
            let uri = file_uri(&shared.root);
            Ok(json!([{"uri": uri, "name": shared.root.display().to_string()}]))
        }
        "client/registerCapability" => {
            if let Some(registrations) = params["registrations"].as_array() {
                inner
                    .state
                    .registrations
                    .extend(registrations.iter().cloned());
            }
            Ok(Value::Null)
        }
        "client/unregisterCapability" => Ok(Value::Null),
        "workspace/inlayHint/refresh"
        | "workspace/semanticTokens/refresh"
        | "workspace/codeLens/refresh"
        | "workspace/diagnostic/refresh" => Ok(Value::Null),
        _ => {
            inner
                .state
                .problems
                .push(format!("unhandled server request {method}: {params}"));
            Err(method_not_found(method))
        }
    }
}

/// Parses an array of LSP `TextEdit`s (annotated ones included).
fn parse_text_edits(edits: &Value) -> Result<Vec<TextEdit>, String> {
    let array = edits.as_array().ok_or("edits is not an array")?;
    array
        .iter()
        .map(|edit| {
            let position = |value: &Value| -> Result<(u32, u32), String> {
                let line = value["line"]
                    .as_u64()
                    .ok_or_else(|| format!("bad position in {edit}"))?;
                let character = value["character"]
                    .as_u64()
                    .ok_or_else(|| format!("bad position in {edit}"))?;
                Ok((line as u32, character as u32))
            };
            Ok(TextEdit {
                start: position(&edit["range"]["start"])?,
                end: position(&edit["range"]["end"])?,
                new_text: edit["newText"]
                    .as_str()
                    .ok_or_else(|| format!("edit without newText: {edit}"))?
                    .to_string(),
            })
        })
        .collect()
}

/// The outcome of one operation of a workspace edit.
enum Step {
    Applied,
    SkippedStale,
    Failed(String),
}

/// Applies a `workspace/applyEdit` as the profile's editor would and returns the answer. Open
/// documents get a `didChange` (queued before the answer, which the caller queues after).
fn apply_workspace_edit(shared: &Shared, inner: &mut Inner, params: Value) -> Value {
    if let Some((uri, edit)) = inner.typing_before_apply.pop_front() {
        let encoding = inner.encoding;
        if let Some(document) = inner.state.documents.get_mut(&uri) {
            let (text, changes) = apply_text_edits(&document.text, &[edit], encoding)
                .unwrap_or_else(|error| panic!("invalid typing for {uri}: {error}"));
            document.text = text;
            document.version += 1;
            shared.send_did_change(inner, &uri, changes);
        }
    }
    let edit = &params["edit"];
    let mut skipped_stale = Vec::new();
    let mut failure: Option<(usize, String)> = None;
    if let Some(operations) = edit["documentChanges"].as_array() {
        for (index, operation) in operations.iter().enumerate() {
            let step = if operation.get("kind").is_some() {
                apply_resource_operation(shared, inner, operation)
            } else {
                let uri = operation["textDocument"]["uri"].as_str().unwrap_or("");
                let mut version = operation["textDocument"]["version"].as_i64();
                // Neovim 0.11 checks the version of the first operation only
                // (`vim.lsp.util.apply_text_document_edit`: "do not check the version after the
                // first edit").
                if shared.profile == ClientProfile::Neovim && index > 0 {
                    version = None;
                }
                let step = apply_document_edit(shared, inner, uri, version, &operation["edits"]);
                if matches!(step, Step::SkippedStale) {
                    skipped_stale.push(uri.to_string());
                }
                step
            };
            if let Step::Failed(reason) = step {
                failure = Some((index, reason));
                break;
            }
        }
    } else if let Some(changes) = edit["changes"].as_object() {
        for (index, (uri, edits)) in changes.iter().enumerate() {
            if let Step::Failed(reason) = apply_document_edit(shared, inner, uri, None, edits) {
                failure = Some((index, reason));
                break;
            }
        }
    }
    let response = match failure {
        None => json!({"applied": true}),
        Some((index, reason)) => {
            json!({"applied": false, "failureReason": reason, "failedChange": index})
        }
    };
    inner.state.apply_edits.push(ApplyEditRecord {
        params,
        response: response.clone(),
        skipped_stale,
    });
    response
}

fn apply_document_edit(
    shared: &Shared,
    inner: &mut Inner,
    uri: &str,
    version: Option<i64>,
    edits: &Value,
) -> Step {
    let encoding = inner.encoding;
    let edits = match parse_text_edits(edits) {
        Ok(edits) => edits,
        Err(reason) => {
            inner
                .state
                .problems
                .push(format!("malformed edit for {uri}: {reason}"));
            return Step::Failed(reason);
        }
    };
    if let Some(document) = inner.state.documents.get_mut(uri) {
        // Neovim skips only an edit older than the buffer (`buf_versions[bufnr] > version`);
        // the others require the exact version.
        let stale = |version: i64| match shared.profile {
            ClientProfile::Neovim => i64::from(document.version) > version,
            _ => i64::from(document.version) != version,
        };
        if let Some(version) = version
            && stale(version)
        {
            if shared.profile.skips_stale_edits_silently() {
                return Step::SkippedStale;
            }
            return Step::Failed(format!(
                "{uri} is at version {}, the edit is for version {version}",
                document.version
            ));
        }
        match apply_text_edits(&document.text, &edits, encoding) {
            Ok((text, changes)) => {
                document.text = text;
                document.version += 1;
                shared.send_did_change(inner, uri, changes);
                Step::Applied
            }
            Err(reason) => {
                inner
                    .state
                    .problems
                    .push(format!("invalid edit for {uri}: {reason}"));
                Step::Failed(reason)
            }
        }
    } else {
        let current = match inner.state.files.get(uri) {
            Some(Some(text)) => text.clone(),
            Some(None) => return Step::Failed(format!("{uri} was deleted")),
            None => match uri_to_path(uri).map(std::fs::read_to_string) {
                Some(Ok(text)) => text,
                _ => return Step::Failed(format!("{uri} is neither open nor readable")),
            },
        };
        match apply_text_edits(&current, &edits, encoding) {
            Ok((text, _)) => {
                inner.state.files.insert(uri.to_string(), Some(text));
                Step::Applied
            }
            Err(reason) => {
                inner
                    .state
                    .problems
                    .push(format!("invalid edit for {uri}: {reason}"));
                Step::Failed(reason)
            }
        }
    }
}

/// Whether a file exists for the client: open, created by an edit, or on disk and not deleted.
fn file_exists(inner: &Inner, uri: &str) -> bool {
    if inner.state.documents.contains_key(uri) {
        return true;
    }
    match inner.state.files.get(uri) {
        Some(file) => file.is_some(),
        None => uri_to_path(uri).is_some_and(|path| path.exists()),
    }
}

fn apply_resource_operation(shared: &Shared, inner: &mut Inner, operation: &Value) -> Step {
    let options = &operation["options"];
    let flag = |name: &str| options[name].as_bool().unwrap_or(false);
    match operation["kind"].as_str().unwrap_or("") {
        "create" => {
            let uri = operation["uri"].as_str().unwrap_or("").to_string();
            if file_exists(inner, &uri) {
                if flag("overwrite") {
                    inner.state.files.insert(uri, Some(String::new()));
                    return Step::Applied;
                }
                if flag("ignoreIfExists") {
                    return Step::Applied;
                }
                return Step::Failed(format!("{uri} already exists"));
            }
            inner.state.files.insert(uri, Some(String::new()));
            Step::Applied
        }
        "rename" => {
            let old_uri = operation["oldUri"].as_str().unwrap_or("").to_string();
            let new_uri = operation["newUri"].as_str().unwrap_or("").to_string();
            if !file_exists(inner, &old_uri) {
                return Step::Failed(format!("{old_uri} does not exist"));
            }
            if file_exists(inner, &new_uri) && !flag("overwrite") {
                if flag("ignoreIfExists") {
                    return Step::Applied;
                }
                return Step::Failed(format!("{new_uri} already exists"));
            }
            // An open buffer follows its file, as editors rename the buffer.
            if let Some(document) = inner.state.documents.remove(&old_uri) {
                inner.state.documents.insert(new_uri.clone(), document);
                inner.state.files.insert(old_uri, None);
                return Step::Applied;
            }
            let text = match inner.state.files.get(&old_uri) {
                Some(Some(text)) => text.clone(),
                _ => uri_to_path(&old_uri)
                    .and_then(|path| std::fs::read_to_string(path).ok())
                    .unwrap_or_default(),
            };
            inner.state.files.insert(old_uri, None);
            inner.state.files.insert(new_uri, Some(text));
            Step::Applied
        }
        "delete" => {
            let uri = operation["uri"].as_str().unwrap_or("").to_string();
            if !file_exists(inner, &uri) {
                if flag("ignoreIfNotExists") {
                    return Step::Applied;
                }
                return Step::Failed(format!("{uri} does not exist"));
            }
            inner.state.documents.remove(&uri);
            inner.state.files.insert(uri, None);
            Step::Applied
        }
        other => {
            let _ = shared;
            inner
                .state
                .problems
                .push(format!("unknown resource operation kind {other:?}"));
            Step::Failed(format!("unknown resource operation {other:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts the scripted Python server in `fake_lsp_server.py` against a fresh workspace.
    async fn start_fake(profile: ClientProfile, encoding: &str) -> (LspClient, PathBuf) {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lsp_client/fake_lsp_server.py");
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("testkit-lsp-{}-{count}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let (client, _) = LspClient::start(
            Path::new("python3"),
            &[script.to_str().unwrap()],
            &[],
            &root,
            profile,
            json!({"encoding": encoding}),
        )
        .await
        .unwrap();
        (client, root)
    }

    /// Waits until the fake server's echo of `uri` matches the client's own text and version.
    async fn wait_for_server_to_agree(client: &LspClient, uri: &str) {
        let text = client.text(uri);
        let version = client.version(uri);
        client
            .wait_for(
                "the server's copy to match the client's",
                Duration::from_secs(30),
                |state| {
                    let echo = state.other_notifications.iter().rev().find(|message| {
                        message["method"] == "fake/text" && message["params"]["uri"] == uri
                    })?;
                    (echo["params"]["version"] == version
                        && echo["params"]["text"] == text.as_str())
                    .then_some(())
                },
            )
            .await
            .unwrap();
    }

    async fn run_fake_job(client: &LspClient, uri: &str, faults: Value) {
        let actions = client
            .request(
                "textDocument/codeAction",
                json!({"textDocument": {"uri": uri}, "range": range_json((0, 0), (0, 0)),
                       "context": {"diagnostics": []}}),
            )
            .await
            .unwrap();
        let mut command = actions[0]["command"].clone();
        command["arguments"][1] = faults;
        client
            .request(
                "workspace/executeCommand",
                json!({"command": command["command"], "arguments": command["arguments"]}),
            )
            .await
            .unwrap();
        client
            .wait_for(
                "the job's progress to end",
                Duration::from_secs(30),
                |state| state.progress_ended("job-1").then_some(()),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn neovim_profile_applies_edits_syncs_them_and_skips_stale_ones() {
        let (client, root) = start_fake(ClientProfile::Neovim, "utf-16").await;
        assert_eq!(client.position_encoding(), "utf-16");
        let uri = file_uri(&root.join("a.rs"));
        client.open(&uri, "rust", "a😀b\nsecond line\n").await;
        // Typing after the emoji exercises the UTF-16 positions on both sides.
        client.change(&uri, ((0, 3), (0, 4)), "B").await;
        client.change(&uri, ((1, 0), (1, 6)), "2nd").await;
        assert_eq!(client.text(&uri), "a😀B\n2nd line\n");
        assert_eq!(client.version(&uri), 3);
        wait_for_server_to_agree(&client, &uri).await;

        run_fake_job(&client, &uri, json!([])).await;
        assert_eq!(client.text(&uri), "EDITED\n2nd line\n");
        assert_eq!(client.version(&uri), 4);
        wait_for_server_to_agree(&client, &uri).await;
        let state = client.state();
        assert_eq!(state.apply_edits.len(), 2);
        assert_eq!(state.apply_edits[0].response, json!({"applied": true}));
        // Neovim 0.11 skips the stale edit but still claims it was applied.
        assert_eq!(state.apply_edits[1].response, json!({"applied": true}));
        assert_eq!(state.apply_edits[1].skipped_stale, vec![uri.clone()]);
        let kinds: Vec<&str> = state.progress["job-1"]
            .iter()
            .map(|event| event.kind.as_str())
            .collect();
        assert_eq!(kinds, ["begin", "end"]);
        client.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn strict_profile_rejects_stale_edits_in_utf8() {
        let (client, root) = start_fake(ClientProfile::Strict, "utf-8").await;
        assert_eq!(client.position_encoding(), "utf-8");
        let uri = file_uri(&root.join("b.rs"));
        client.open(&uri, "rust", "é1\nx\n").await;
        client.change(&uri, ((0, 2), (0, 3)), "2").await;
        assert_eq!(client.text(&uri), "é2\nx\n");
        wait_for_server_to_agree(&client, &uri).await;
        run_fake_job(&client, &uri, json!([])).await;
        let state = client.state();
        assert_eq!(state.apply_edits[1].response["applied"], false);
        assert_eq!(client.text(&uri), "EDITED\nx\n");
        client.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn helix_profile_rejects_show_message_request() {
        let (client, root) = start_fake(ClientProfile::Helix, "utf-32").await;
        assert_eq!(client.position_encoding(), "utf-32");
        let uri = file_uri(&root.join("c.rs"));
        client.open(&uri, "rust", "one\ntwo\n").await;
        run_fake_job(&client, &uri, json!(["show_message_request"])).await;
        let state = client.state();
        assert_eq!(state.show_message_requests.len(), 1);
        let answer = state
            .log_messages
            .iter()
            .find(|message| message.message.starts_with("showMessageRequest answer"))
            .unwrap();
        assert!(answer.message.contains("-32601"), "{answer:?}");
        assert_eq!(state.apply_edits[1].response["applied"], false);
        client.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(root);
    }

    #[tokio::test]
    async fn shutdown_fails_on_protocol_faults() {
        for fault in ["unknown_request", "garbage", "uncreated_progress"] {
            let (client, root) = start_fake(ClientProfile::Neovim, "utf-16").await;
            let uri = file_uri(&root.join("d.rs"));
            client.open(&uri, "rust", "x\n").await;
            run_fake_job(&client, &uri, json!([fault])).await;
            let error = client.shutdown().await.expect_err(fault).to_string();
            let expected = match fault {
                "unknown_request" => "unhandled server request fake/unknownRequest",
                "garbage" => "non-LSP output",
                _ => "never created",
            };
            assert!(error.contains(expected), "{fault}: {error}");
            let _ = std::fs::remove_dir_all(root);
        }
    }

    #[tokio::test]
    async fn wait_for_times_out_with_the_transcript() {
        let (client, root) = start_fake(ClientProfile::Zed, "utf-8").await;
        // Zed offers only UTF-16, so the fake server cannot pick UTF-8.
        assert_eq!(client.position_encoding(), "utf-16");
        let error = client
            .wait_for(
                "something that never happens",
                Duration::from_millis(200),
                |_| None::<()>,
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("something that never happens"), "{error}");
        assert!(error.contains("initialize"), "{error}");
        client.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn uris_round_trip_paths_with_spaces_and_unicode() {
        let path = Path::new("/tmp/a dir/é#.rs");
        let uri = file_uri(path);
        assert_eq!(uri, "file:///tmp/a%20dir/%C3%A9%23.rs");
        assert_eq!(uri_to_path(&uri).as_deref(), Some(path));
        assert_eq!(uri_to_path("untitled:1"), None);
    }

    #[test]
    fn profiles_offer_the_recorded_encodings() {
        let encodings = |profile: ClientProfile| {
            profile.capabilities_and_client_info().0["general"]["positionEncodings"].clone()
        };
        assert_eq!(
            encodings(ClientProfile::Neovim),
            json!(["utf-8", "utf-16", "utf-32"])
        );
        assert_eq!(
            encodings(ClientProfile::Helix),
            json!(["utf-8", "utf-32", "utf-16"])
        );
        assert_eq!(encodings(ClientProfile::Zed), json!(["utf-16"]));
        let zed = ClientProfile::Zed.capabilities_and_client_info().0;
        assert!(zed["window"].get("showDocument").is_none());
    }
}
