//! The Agent Client Protocol transport: one ACP agent (`codex-acp`, `claude-agent-acp`, …) run
//! as a child process and driven over its stdio.
//!
//! # Why our own framing
//!
//! The messages are the SDK's v1 schema types (`agent_client_protocol::v1::schema`), so baton
//! speaks exactly what agents speak; the JSON-RPC framing is our own, ~100 lines of
//! newline-delimited JSON. The SDK's connection answers a malformed line with a JSON-RPC error
//! and drops it without telling the application, so we could not surface it as an
//! [`AgentEvent::Warning`]; and it owns the stdio, so telling "the agent closed stdout" from "the
//! process exited" (and reading its exit status and stderr in the right order) would go
//! through its termination plumbing instead of one `select!`. Holding a permission request open
//! until the user answers and serving `fs/*` requests are plain bookkeeping here.
//!
//! # Shape
//!
//! `start` (reached through [`crate::agent::start`]) spawns the child in `options.cwd`
//! (codex-acp's writable root is its process cwd) in its own process group, runs `initialize`, `session/new` and `session/set_mode` inline,
//! then hands the connection to one actor task. Three small tasks feed it: the stdout reader
//! (one JSON value per line, never blocked by the actor: the channel is unbounded), the stderr
//! reader (lines go to tracing at debug level and the last few are kept for the exit reason),
//! and the stdin writer (so a slow agent never blocks the actor).
//!
//! # Decisions
//!
//! - Approval → mode: codex-acp's `auto` for [`Approval::AutoEdit`], `read-only` for
//!   [`Approval::Ask`] and [`Approval::ReadOnly`]; other agents get the first advertised mode
//!   whose id or name matches a list of usual names, or no `set_mode` (with a warning).
//! - [`SessionMode::Plan`]: the first advertised mode whose id or name contains "plan"
//!   (claude-agent-acp's `plan`), else the read-only mode as for [`Approval::ReadOnly`] with a
//!   warning that plan mode rests on the prompt alone there (codex-acp has no plan mode).
//!   Either way permissions are handled as for [`Approval::ReadOnly`]. ACP has no questions:
//!   the agent's `plan` updates stay [`AgentEvent::Plan`].
//! - With [`Approval::ReadOnly`] every edit or command permission request is denied at once
//!   (a command that asks is one that wants to leave the read-only sandbox); a warning says so.
//!   codex-acp ends the turn as `cancelled` after a rejection.
//! - A prompt while a turn runs is queued (with a warning) and sent when the turn ends;
//!   [`AgentCommand::Cancel`] drops the queue as well as cancelling the running turn.
//! - Tool calls still open when a turn ends are closed: `Completed` after a completed turn
//!   (codex-acp never completes some shell tool calls), `Failed` otherwise; an execute tool
//!   call closed this way also yields a [`AgentEvent::Command`] without an exit code.
//! - `fs/read_text_file` and `fs/write_text_file` are served through [`FileAccess`] off the
//!   actor (blocking pool) for absolute paths inside the session's directory only; anything
//!   else, and any other agent request (`terminal/*` is not advertised), is a JSON-RPC error.
//! - When the agent exits by itself during a turn, the turn fails with "agent exited (STATUS);
//!   stderr: …"; when baton stopped it, the turn is reported `Cancelled`. Either way the
//!   process group is SIGKILLed at the end, so shells the agent left behind die with it.
//! - [`AgentEvent::FilesChanged`] comes from codex-acp's `rawInput.changes` when present
//!   (exact add/delete/update with numbered hunks and moves); otherwise from the ACP diff
//!   contents, where a diff without `oldText` is an add and anything else an update whose hunks
//!   are computed from `oldText`/`newText` (codex-acp sends one entry per hunk with only the
//!   hunk's lines, so those numbers are relative to the snippet: the paths are what counts; the
//!   server diffs the shadow as ground truth). A completed edit tool call always yields one,
//!   empty when the agent described nothing: it is the signal to diff the shadow.
//! - Session updates and permission requests naming another session are dropped (with a
//!   warning, and an error answer for the request).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    CancelNotification, ClientCapabilities, ContentBlock, FileSystemCapabilities, Implementation,
    InitializeRequest, NewSessionRequest, NewSessionResponse, PermissionOptionKind,
    PlanEntryStatus, PromptRequest, ReadTextFileRequest, ReadTextFileResponse,
    RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse,
    SelectedPermissionOutcome, SessionModeState, SessionNotification, SessionUpdate,
    SetSessionModeRequest, TextContent, ToolCallContent, ToolCallStatus, WriteTextFileRequest,
    WriteTextFileResponse,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::agent::{
    AgentCommand, AgentError, AgentEvent, AgentHandle, AgentSpec, Approval, FileAccess, ItemId,
    PermissionAnswer, PermissionId, PermissionKind, PermissionRequest, PlanEntry, PlanStatus,
    ReportedChange, ReportedKind, SessionMode, SessionOptions, ToolCall, ToolKind, ToolStatus,
    TurnEnd,
};

/// How long `initialize`, `session/new` and `session/set_mode` may take each.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// Between SIGTERM and SIGKILL of the agent's process group.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long stdout may stay open after the process exited (a grandchild holding the pipe).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);
/// Stderr lines kept for the exit reason.
const STDERR_TAIL_LINES: usize = 12;
/// The end of a command's output kept for [`AgentEvent::Command`].
const OUTPUT_TAIL_BYTES: usize = 2000;
/// How much of a malformed line a warning quotes.
const QUOTE_BYTES: usize = 200;

/// JSON-RPC "method not found".
const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC "invalid params".
const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC "internal error" (a failed file read or write).
const INTERNAL_ERROR: i64 = -32603;

pub(crate) async fn start(
    spec: &AgentSpec,
    options: SessionOptions,
) -> Result<(AgentHandle, mpsc::UnboundedReceiver<AgentEvent>), AgentError> {
    let name = spec.name.clone();
    if spec.connect.is_some() {
        return Err(AgentError::Unsupported(format!(
            "agent `{name}`: an ACP agent runs as a local child over stdio; `connect` is for codex \
             app-server"
        )));
    }
    let spawn_error = |reason: String| AgentError::Spawn {
        agent: name.clone(),
        reason,
    };
    let Some((program, args)) = spec.command.split_first() else {
        return Err(spawn_error("no command configured".into()));
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&options.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so that stopping the agent also stops the shells and sandboxes
        // it started.
        .process_group(0);
    // Only the program is logged: arguments and environment may carry keys.
    tracing::debug!(agent = %name, program = %program, cwd = %options.cwd.display(), "starting ACP agent");
    let mut child = command
        .spawn()
        .map_err(|e| spawn_error(format!("{program}: {e}")))?;
    let pid = child.id();
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(spawn_error("the child's stdio was not piped".into()));
    };

    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr_task = tokio::spawn(read_stderr(name.clone(), stderr, stderr_tail.clone()));
    let (incoming_tx, incoming) = mpsc::unbounded_channel();
    tokio::spawn(read_stdout(stdout, incoming_tx));
    let (writer, writer_rx) = mpsc::unbounded_channel();
    tokio::spawn(write_stdin(stdin, writer_rx));
    let (events, events_rx) = mpsc::unbounded_channel();

    let mut actor = Actor {
        name: name.clone(),
        files: options.files.clone(),
        approval: match options.mode {
            SessionMode::Plan => Approval::ReadOnly,
            SessionMode::Work => options.approval,
        },
        mode: options.mode,
        grace: options.grace,
        child,
        pid,
        stderr_tail,
        stderr_task: Some(stderr_task),
        incoming,
        writer,
        events,
        session_id: String::new(),
        next_id: 1,
        turn: None,
        queued: VecDeque::new(),
        tools: HashMap::new(),
        permissions: HashMap::new(),
        next_permission: 1,
        stdout_closed: false,
        exit_status: None,
        stopping: None,
        stop_waiters: Vec::new(),
        stop_requested: false,
        finished_tools: HashSet::new(),
        cwd: [
            options.cwd.clone(),
            std::fs::canonicalize(&options.cwd).unwrap_or_else(|_| options.cwd.clone()),
        ],
    };

    if let Err(reason) = actor.handshake(&options.cwd).await {
        actor.kill_now().await;
        // Its last words usually say why (no credentials, a bad config).
        if let Some(task) = actor.stderr_task.take() {
            let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, task).await;
        }
        return Err(AgentError::Handshake {
            agent: name,
            reason: format!("{reason}{}", actor.stderr_suffix()),
        });
    }

    let (commands, commands_rx) = mpsc::unbounded_channel();
    tokio::spawn(actor.run(commands_rx));
    Ok((AgentHandle::new(name, commands, pid), events_rx))
}

/// One message from the agent, as the stdout reader classified it.
#[derive(Debug)]
enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    Response {
        id: Value,
        result: Result<Value, Value>,
    },
    /// A line that is not a JSON-RPC message; the text is quoted in a warning.
    Malformed(String),
    /// Stdout closed (or failed).
    Eof,
}

/// What the writer task does next.
enum Outgoing {
    Line(String),
    /// Close the agent's stdin.
    Close,
}

async fn read_stdout(
    stdout: tokio::process::ChildStdout,
    incoming: mpsc::UnboundedSender<Incoming>,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if incoming.send(classify(text)).is_err() {
            return;
        }
    }
    let _ = incoming.send(Incoming::Eof);
}

fn classify(text: &str) -> Incoming {
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
        return Incoming::Malformed(text.to_owned());
    };
    let id = message.remove("id");
    let method = message
        .remove("method")
        .and_then(|m| m.as_str().map(str::to_owned));
    let params = message.remove("params").unwrap_or(Value::Null);
    match (id, method) {
        (Some(id), Some(method)) => Incoming::Request { id, method, params },
        (None, Some(method)) => Incoming::Notification { method, params },
        (Some(id), None) => {
            if let Some(error) = message.remove("error") {
                Incoming::Response {
                    id,
                    result: Err(error),
                }
            } else if let Some(result) = message.remove("result") {
                Incoming::Response {
                    id,
                    result: Ok(result),
                }
            } else {
                Incoming::Malformed(text.to_owned())
            }
        }
        (None, None) => Incoming::Malformed(text.to_owned()),
    }
}

async fn read_stderr(
    name: String,
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    // Bytes, not `lines()`: one line of invalid UTF-8 must not stop the reading, or the agent
    // would block once the pipe is full.
    let mut reader = BufReader::new(stderr);
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        match reader.read_until(b'\n', &mut bytes).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&bytes).trim_end().to_owned();
        tracing::debug!(agent = %name, "stderr: {line}");
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

async fn write_stdin(mut stdin: ChildStdin, mut lines: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(Outgoing::Line(line)) = lines.recv().await {
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.write_all(b"\n").await?;
            stdin.flush().await
        };
        if written.await.is_err() {
            // The agent is gone; the stdout reader reports it.
            return;
        }
    }
    // `Close` or every sender gone: dropping stdin closes the pipe.
}

/// A turn in flight: the id of its `session/prompt` request.
struct Turn {
    request: u64,
}

/// A permission request waiting for the user.
struct PendingPermission {
    rpc_id: Value,
    options: Vec<agent_client_protocol::v1::schema::PermissionOption>,
}

/// A tool call as the updates so far describe it.
struct OpenTool {
    call: agent_client_protocol::v1::schema::ToolCall,
    /// The status last reported as an event, to skip updates that change nothing visible.
    reported: Option<(ToolKind, ToolStatus, String)>,
}

/// The stages of stopping the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    /// Stdin is closed; the agent may leave by itself until the deadline.
    Grace,
    /// SIGTERM sent to the process group.
    Terminated,
    /// SIGKILL sent; waiting for the reaper.
    Killed,
}

struct Actor {
    name: String,
    files: Arc<dyn FileAccess>,
    approval: Approval,
    mode: SessionMode,
    grace: Duration,
    child: Child,
    pid: Option<u32>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    writer: mpsc::UnboundedSender<Outgoing>,
    events: mpsc::UnboundedSender<AgentEvent>,
    session_id: String,
    next_id: u64,
    turn: Option<Turn>,
    queued: VecDeque<String>,
    tools: HashMap<String, OpenTool>,
    permissions: HashMap<PermissionId, PendingPermission>,
    next_permission: PermissionId,
    stdout_closed: bool,
    exit_status: Option<ExitStatus>,
    /// The current stage of stopping and when it runs out.
    stopping: Option<(Stopping, Instant)>,
    stop_waiters: Vec<oneshot::Sender<()>>,
    /// Baton asked the agent to stop (shutdown, or every handle dropped), as opposed to the
    /// agent leaving by itself: decides how a running turn is reported.
    stop_requested: bool,
    /// Tool calls that completed or failed: later updates to them are ignored.
    finished_tools: HashSet<String>,
    /// The session's directory, as given and with symlinks resolved (an agent may report
    /// either): `fs/*` paths must lie inside it.
    cwd: [PathBuf; 2],
}

impl Actor {
    fn emit(&self, event: AgentEvent) {
        // A dropped receiver means nobody listens any more; the agent still gets stopped.
        let _ = self.events.send(event);
    }

    fn warn(&self, message: String) {
        tracing::warn!(agent = %self.name, "{message}");
        self.emit(AgentEvent::Warning(message));
    }

    fn send(&self, message: Value) {
        let _ = self.writer.send(Outgoing::Line(message.to_string()));
    }

    fn request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    fn notify(&self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and waits for its answer, handling whatever else arrives meanwhile.
    /// Only used before the actor runs (the handshake).
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.request(method, params);
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        loop {
            let message = tokio::time::timeout_at(deadline, self.incoming.recv())
                .await
                .map_err(|_| format!("no answer to `{method}` within {HANDSHAKE_TIMEOUT:?}"))?;
            match message {
                None | Some(Incoming::Eof) => {
                    self.stdout_closed = true;
                    let status = match tokio::time::timeout(TERM_GRACE, self.child.wait()).await {
                        Ok(Ok(status)) => format!(" ({status})"),
                        _ => String::new(),
                    };
                    return Err(format!("the agent exited during `{method}`{status}"));
                }
                Some(Incoming::Response { id: got, result }) if got.as_u64() == Some(id) => {
                    return result.map_err(|e| format!("`{method}` failed: {}", error_text(&e)));
                }
                Some(other) => self.handle(other),
            }
        }
    }

    async fn handshake(&mut self, cwd: &Path) -> Result<(), String> {
        let initialize = InitializeRequest::new(ProtocolVersion::V1)
            .client_capabilities(
                ClientCapabilities::new()
                    .fs(FileSystemCapabilities::new()
                        .read_text_file(true)
                        .write_text_file(true))
                    .terminal(false),
            )
            .client_info(Implementation::new("baton", env!("CARGO_PKG_VERSION")));
        self.call("initialize", to_value(&initialize)).await?;

        let new_session = NewSessionRequest::new(cwd.to_path_buf()).mcp_servers(Vec::new());
        let session = self.call("session/new", to_value(&new_session)).await?;
        let session: NewSessionResponse = serde_json::from_value(session)
            .map_err(|e| format!("unreadable `session/new` answer: {e}"))?;
        self.session_id = session.session_id.0.to_string();

        let plan_mode = match self.mode {
            SessionMode::Plan => session.modes.as_ref().and_then(pick_plan_mode),
            SessionMode::Work => None,
        };
        if self.mode == SessionMode::Plan && plan_mode.is_none() {
            self.warn(
                "plan mode is prompt-only with this agent: it advertises no plan mode, so it \
                 runs in its read-only mode"
                    .into(),
            );
        }
        let chosen = plan_mode.or_else(|| {
            session
                .modes
                .as_ref()
                .and_then(|m| pick_mode(m, self.approval))
        });
        match chosen {
            Some(Some(mode)) => {
                let set_mode = SetSessionModeRequest::new(self.session_id.clone(), mode.clone());
                if let Err(e) = self.call("session/set_mode", to_value(&set_mode)).await {
                    self.warn(format!("could not switch the agent to mode `{mode}`: {e}"));
                }
            }
            // Already in the right mode.
            Some(None) => {}
            None => self.warn(format!(
                "the agent advertises no mode for approval {:?} (modes: {}); it keeps its default",
                self.approval,
                session
                    .modes
                    .as_ref()
                    .map(|m| m
                        .available_modes
                        .iter()
                        .map(|m| m.id.0.to_string())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_else(|| "none".into()),
            )),
        }
        Ok(())
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<AgentCommand>) {
        let mut commands_open = true;
        loop {
            if self.exit_status.is_some() && self.stdout_closed {
                break;
            }
            let deadline = self.stopping.map(|(_, at)| at);
            let exited = self.exit_status.is_some();
            tokio::select! {
                command = commands.recv(), if commands_open => match command {
                    Some(command) => self.command(command),
                    None => {
                        // Every handle is gone: nobody can use the agent any more.
                        commands_open = false;
                        self.stop_requested = true;
                        self.begin_stop(true);
                    }
                },
                message = self.incoming.recv(), if !self.stdout_closed => {
                    match message {
                        Some(message) => self.handle(message),
                        None => self.handle(Incoming::Eof),
                    }
                }
                status = self.child.wait(), if !exited => {
                    let status = match status {
                        Ok(status) => status,
                        Err(e) => {
                            tracing::warn!(agent = %self.name, "waiting for the agent failed: {e}");
                            break;
                        }
                    };
                    self.exit_status = Some(status);
                    // Whatever the agent still wrote is read, but a grandchild holding the
                    // pipe open must not keep us here.
                    self.stopping = Some((Stopping::Killed, Instant::now() + DRAIN_AFTER_EXIT));
                }
                () = sleep_until(deadline) => {
                    if self.exit_status.is_some() {
                        // Drained long enough.
                        break;
                    }
                    self.escalate();
                }
            }
        }
        self.finish().await;
    }

    fn command(&mut self, command: AgentCommand) {
        match command {
            AgentCommand::Prompt(text) => {
                if self.stopping.is_some() || self.exit_status.is_some() {
                    self.warn("the agent is stopping; the prompt was dropped".into());
                } else if self.turn.is_some() {
                    self.warn("a turn is running; the prompt is queued until it ends".into());
                    self.queued.push_back(text);
                } else {
                    self.prompt(text);
                }
            }
            AgentCommand::Cancel => {
                self.queued.clear();
                if self.turn.is_some() {
                    self.cancel_turn();
                }
            }
            AgentCommand::Answer { id, answer } => self.answer(id, answer),
            // ACP agents ask no questions (there is no request to answer).
            AgentCommand::AnswerQuestions { id, .. } => {
                tracing::debug!(agent = %self.name, id, "answer to questions an ACP agent never asked");
            }
            AgentCommand::Shutdown(done) => {
                self.stop_waiters.push(done);
                self.stop_requested = true;
                self.begin_stop(true);
            }
        }
    }

    fn prompt(&mut self, text: String) {
        let request = PromptRequest::new(
            self.session_id.clone(),
            vec![ContentBlock::Text(TextContent::new(text))],
        );
        let id = self.request("session/prompt", to_value(&request));
        self.turn = Some(Turn { request: id });
    }

    /// `session/cancel`, and every pending permission request answered `cancelled` (the
    /// protocol requires it; the agent is waiting on them).
    fn cancel_turn(&mut self) {
        self.notify(
            "session/cancel",
            to_value(&CancelNotification::new(self.session_id.clone())),
        );
        self.withdraw_permissions();
    }

    fn withdraw_permissions(&mut self) {
        let mut ids: Vec<PermissionId> = self.permissions.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(pending) = self.permissions.remove(&id) {
                self.respond_permission(&pending.rpc_id, RequestPermissionOutcome::Cancelled);
                self.emit(AgentEvent::PermissionWithdrawn { id });
            }
        }
    }

    fn respond(&self, id: &Value, result: Value) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "result": result}));
    }

    fn respond_error(&self, id: &Value, code: i64, message: String) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}));
    }

    fn respond_permission(&self, id: &Value, outcome: RequestPermissionOutcome) {
        self.respond(id, to_value(&RequestPermissionResponse::new(outcome)));
    }

    fn answer(&mut self, id: PermissionId, answer: PermissionAnswer) {
        let Some(pending) = self.permissions.remove(&id) else {
            self.warn(format!(
                "permission request {id} is not pending (answered, withdrawn or unknown)"
            ));
            return;
        };
        let outcome = match choose_option(&pending.options, answer) {
            Some(option) => {
                RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(option))
            }
            // Nothing fits (a denial with no reject option): cancelling is the only safe no.
            None => RequestPermissionOutcome::Cancelled,
        };
        self.respond_permission(&pending.rpc_id, outcome);
    }

    /// Closes stdin and starts the grace period; with `cancel`, cancels the running turn first.
    fn begin_stop(&mut self, cancel: bool) {
        if self.stopping.is_some() || self.exit_status.is_some() {
            return;
        }
        self.queued.clear();
        if cancel && self.turn.is_some() && !self.stdout_closed {
            self.cancel_turn();
        }
        let _ = self.writer.send(Outgoing::Close);
        self.stopping = Some((Stopping::Grace, Instant::now() + self.grace));
    }

    /// The grace period ran out: SIGTERM, then SIGKILL.
    fn escalate(&mut self) {
        match self.stopping {
            Some((Stopping::Grace, _)) => {
                tracing::debug!(agent = %self.name, "grace period over: SIGTERM");
                self.signal_group("TERM");
                self.stopping = Some((Stopping::Terminated, Instant::now() + TERM_GRACE));
            }
            Some((Stopping::Terminated, _)) => {
                tracing::debug!(agent = %self.name, "still running after SIGTERM: SIGKILL");
                self.signal_group("KILL");
                let _ = self.child.start_kill();
                self.stopping = Some((Stopping::Killed, far_future()));
            }
            Some((Stopping::Killed, _)) | None => {
                self.stopping = Some((Stopping::Killed, far_future()));
            }
        }
    }

    /// Signals the agent's whole process group (`kill -s SIG -- -PGID`): the group leader is
    /// the agent, whose pid is the group id. `kill(1)` keeps this free of unsafe code.
    fn signal_group(&self, signal: &str) {
        let Some(pid) = self.pid else { return };
        let status = std::process::Command::new("kill")
            .args(["-s", signal, "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = status {
            tracing::warn!(agent = %self.name, "kill -{signal} failed: {e}");
        }
    }

    /// Used when the handshake failed: no grace, the session never started.
    async fn kill_now(&mut self) {
        self.signal_group("KILL");
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    async fn finish(mut self) {
        if self.exit_status.is_none() {
            // Left the loop without an exit status (wait failed): make sure it is gone.
            self.signal_group("KILL");
            let _ = self.child.start_kill();
            self.exit_status = self.child.wait().await.ok();
        }
        // Shells and sandboxes the agent left behind.
        self.signal_group("KILL");
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, task).await;
        }
        let status = self
            .exit_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown status".into());
        if self.turn.is_some() {
            let end = if self.stop_requested {
                TurnEnd::Cancelled
            } else {
                TurnEnd::Failed(format!("agent exited ({status}){}", self.stderr_suffix()))
            };
            self.end_turn(end);
        }
        self.withdraw_permissions();
        let reason = format!(
            "agent `{}` exited ({status}){}",
            self.name,
            self.stderr_suffix()
        );
        self.emit(AgentEvent::Exited { reason });
        for done in self.stop_waiters.drain(..) {
            let _ = done.send(());
        }
    }

    fn stderr_suffix(&self) -> String {
        let tail = self.stderr_tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.is_empty() {
            String::new()
        } else {
            let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
            format!("; stderr: {}", lines.join(" | "))
        }
    }

    fn handle(&mut self, message: Incoming) {
        match message {
            Incoming::Eof => {
                self.stdout_closed = true;
                // The agent can no longer talk to us: stop it (no cancel, it cannot hear).
                self.begin_stop(false);
            }
            Incoming::Malformed(text) => {
                self.warn(format!(
                    "agent `{}` sent a malformed message: {}",
                    self.name,
                    quote(&text)
                ));
            }
            Incoming::Response { id, result } => self.response(id, result),
            Incoming::Notification { method, params } => self.notification(&method, params),
            Incoming::Request { id, method, params } => self.agent_request(id, &method, params),
        }
    }

    fn response(&mut self, id: Value, result: Result<Value, Value>) {
        let Some(turn) = &self.turn else {
            // A late answer to set_mode after a handshake timeout, or a stray id.
            tracing::debug!(agent = %self.name, "answer to an unknown request {id}");
            return;
        };
        if id.as_u64() != Some(turn.request) {
            tracing::debug!(agent = %self.name, "answer to an unknown request {id}");
            return;
        }
        let end = match result {
            Ok(result) => match result.get("stopReason").and_then(Value::as_str) {
                Some("cancelled") => TurnEnd::Cancelled,
                Some(_) => TurnEnd::Completed,
                None => {
                    self.warn(format!(
                        "`session/prompt` answer without a stop reason: {}",
                        quote(&result.to_string())
                    ));
                    TurnEnd::Completed
                }
            },
            Err(error) => TurnEnd::Failed(error_text(&error)),
        };
        self.end_turn(end);
        if self.stopping.is_none()
            && let Some(next) = self.queued.pop_front()
        {
            self.prompt(next);
        }
    }

    /// Withdraws what is still pending, closes open tool calls and reports the end.
    fn end_turn(&mut self, end: TurnEnd) {
        self.turn = None;
        self.withdraw_permissions();
        let status = if end == TurnEnd::Completed {
            ToolStatus::Completed
        } else {
            ToolStatus::Failed
        };
        let mut open: Vec<String> = self.tools.keys().cloned().collect();
        open.sort();
        for id in open {
            if let Some(mut tool) = self.tools.remove(&id) {
                self.finished_tools.insert(id.clone());
                tool.call.status = if status == ToolStatus::Completed {
                    ToolCallStatus::Completed
                } else {
                    ToolCallStatus::Failed
                };
                self.emit(AgentEvent::ToolCall(tool_event(&tool.call)));
                self.tool_finished(&tool.call);
            }
        }
        self.emit(AgentEvent::TurnEnded(end));
    }

    fn notification(&mut self, method: &str, params: Value) {
        if method != "session/update" {
            tracing::debug!(agent = %self.name, "ignored notification `{method}`");
            return;
        }
        let kind = params
            .pointer("/update/sessionUpdate")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let notification: SessionNotification = match serde_json::from_value(params) {
            Ok(n) => n,
            Err(e) => {
                // Updates we do not use (usage, commands, newer kinds) may fail to parse
                // without anyone caring; those we use are worth a warning.
                if matches!(
                    kind.as_str(),
                    "agent_message_chunk" | "plan" | "tool_call" | "tool_call_update"
                ) {
                    self.warn(format!("unreadable `{kind}` update: {e}"));
                } else {
                    tracing::debug!(agent = %self.name, "unreadable `{kind}` update: {e}");
                }
                return;
            }
        };
        if !self.our_session(&notification.session_id.0) {
            self.warn(format!(
                "`{kind}` update for session `{}`, not ours; ignored",
                notification.session_id.0
            ));
            return;
        }
        match notification.update {
            SessionUpdate::AgentMessageChunk(chunk) => {
                if let ContentBlock::Text(text) = chunk.content {
                    self.emit(AgentEvent::Message(text.text));
                }
            }
            SessionUpdate::Plan(plan) => {
                let entries = plan
                    .entries
                    .into_iter()
                    .map(|e| PlanEntry {
                        content: e.content,
                        status: match e.status {
                            PlanEntryStatus::Pending => PlanStatus::Pending,
                            PlanEntryStatus::InProgress => PlanStatus::InProgress,
                            PlanEntryStatus::Completed => PlanStatus::Completed,
                            _ => PlanStatus::Pending,
                        },
                    })
                    .collect();
                self.emit(AgentEvent::Plan(entries));
            }
            SessionUpdate::ToolCall(call) => {
                let id = call.tool_call_id.0.to_string();
                if self.finished_tools.contains(&id) {
                    tracing::debug!(agent = %self.name, "update to finished tool call {id}");
                    return;
                }
                self.tool_update(
                    id,
                    OpenTool {
                        call,
                        reported: None,
                    },
                );
            }
            SessionUpdate::ToolCallUpdate(update) => {
                let id = update.tool_call_id.0.to_string();
                if self.finished_tools.contains(&id) {
                    tracing::debug!(agent = %self.name, "update to finished tool call {id}");
                    return;
                }
                let mut tool = self.tools.remove(&id).unwrap_or_else(|| OpenTool {
                    call: agent_client_protocol::v1::schema::ToolCall::new(
                        update.tool_call_id.clone(),
                        "",
                    ),
                    reported: None,
                });
                tool.call.update(update.fields);
                self.tool_update(id, tool);
            }
            _ => {}
        }
    }

    /// Reports a new or changed tool call, and what it did once it finished.
    fn tool_update(&mut self, id: String, mut tool: OpenTool) {
        let event = tool_event(&tool.call);
        let visible = (event.kind, event.status, event.title.clone());
        if tool.reported.as_ref() != Some(&visible) {
            tool.reported = Some(visible);
            self.emit(AgentEvent::ToolCall(event.clone()));
        }
        if matches!(event.status, ToolStatus::Completed | ToolStatus::Failed) {
            self.tool_finished(&tool.call);
            self.finished_tools.insert(id);
        } else {
            self.tools.insert(id, tool);
        }
    }

    fn tool_finished(&self, call: &agent_client_protocol::v1::schema::ToolCall) {
        let item: ItemId = call.tool_call_id.0.to_string();
        let kind = tool_kind(&call.kind);
        let completed = call.status == ToolCallStatus::Completed;
        let has_diff = call
            .content
            .iter()
            .any(|c| matches!(c, ToolCallContent::Diff(_)));
        if completed && (kind == ToolKind::Edit || has_diff) {
            let changes = reported_changes(call);
            // A finished edit is the signal to diff the shadow even when the agent described
            // nothing (only `locations`, or nothing at all).
            if kind == ToolKind::Edit || !changes.is_empty() {
                self.emit(AgentEvent::FilesChanged { item, changes });
            }
        } else if kind == ToolKind::Execute {
            let output = call.raw_output.as_ref();
            let exit_code = output
                .and_then(|o| o.get("exit_code"))
                .and_then(Value::as_i64)
                .and_then(|c| i32::try_from(c).ok());
            let text = output
                .and_then(|o| {
                    ["aggregated_output", "formatted_output", "stdout", "output"]
                        .iter()
                        .find_map(|k| o.get(*k).and_then(Value::as_str))
                })
                .unwrap_or("");
            self.emit(AgentEvent::Command {
                item,
                command: command_line(call),
                exit_code,
                output_tail: tail(text, OUTPUT_TAIL_BYTES),
            });
        }
    }

    /// Answers request `id` with what `work` gives, computed off the actor: the user's buffers
    /// may take a moment.
    fn respond_blocking(
        &self,
        id: Value,
        work: impl FnOnce() -> Result<Value, String> + Send + 'static,
    ) {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let answer = match work() {
                Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                Err(e) => error_message(&id, INTERNAL_ERROR, e),
            };
            let _ = writer.send(Outgoing::Line(answer.to_string()));
        });
    }

    fn agent_request(&mut self, id: Value, method: &str, params: Value) {
        match method {
            "session/request_permission" => self.permission_request(id, params),
            "fs/read_text_file" => {
                let request: ReadTextFileRequest = match serde_json::from_value(params) {
                    Ok(r) => r,
                    Err(e) => return self.respond_error(&id, INVALID_PARAMS, e.to_string()),
                };
                if let Err(e) = inside(&self.cwd, &request.path) {
                    return self.respond_error(&id, INVALID_PARAMS, e);
                }
                let files = self.files.clone();
                self.respond_blocking(id, move || {
                    let text = files.read_text(&request.path)?;
                    Ok(to_value(&ReadTextFileResponse::new(slice_lines(
                        &text,
                        request.line,
                        request.limit,
                    ))))
                });
            }
            "fs/write_text_file" => {
                let request: WriteTextFileRequest = match serde_json::from_value(params) {
                    Ok(r) => r,
                    Err(e) => return self.respond_error(&id, INVALID_PARAMS, e.to_string()),
                };
                if let Err(e) = inside(&self.cwd, &request.path) {
                    return self.respond_error(&id, INVALID_PARAMS, e);
                }
                let files = self.files.clone();
                self.respond_blocking(id, move || {
                    files.write_text(&request.path, &request.content)?;
                    Ok(to_value(&WriteTextFileResponse::new()))
                });
            }
            _ => {
                // terminal/* is not advertised; anything else is unknown.
                self.respond_error(
                    &id,
                    METHOD_NOT_FOUND,
                    format!("`{method}` is not supported"),
                );
            }
        }
    }

    /// Whether a message is about our session (anything goes before `session/new` answered).
    fn our_session(&self, id: &str) -> bool {
        self.session_id.is_empty() || self.session_id == id
    }

    fn permission_request(&mut self, rpc_id: Value, params: Value) {
        let request: RequestPermissionRequest = match serde_json::from_value(params) {
            Ok(r) => r,
            Err(e) => {
                self.warn(format!("unreadable permission request: {e}"));
                return self.respond_error(&rpc_id, INVALID_PARAMS, e.to_string());
            }
        };
        if !self.our_session(&request.session_id.0) {
            self.warn(format!(
                "permission request for session `{}`, not ours; refused",
                request.session_id.0
            ));
            return self.respond_error(&rpc_id, INVALID_PARAMS, "unknown session".into());
        }
        // What the tool call said so far, updated by what the request says.
        let tool_id = request.tool_call.tool_call_id.0.to_string();
        let mut call = self
            .tools
            .get(&tool_id)
            .map(|t| t.call.clone())
            .unwrap_or_else(|| {
                agent_client_protocol::v1::schema::ToolCall::new(
                    request.tool_call.tool_call_id.clone(),
                    "",
                )
            });
        call.update(request.tool_call.fields.clone());
        let kind = match tool_kind(&call.kind) {
            ToolKind::Edit => PermissionKind::Edit,
            ToolKind::Execute => PermissionKind::Command,
            _ if call
                .content
                .iter()
                .any(|c| matches!(c, ToolCallContent::Diff(_))) =>
            {
                PermissionKind::Edit
            }
            _ => PermissionKind::Other,
        };
        let title = permission_title(&call, kind);
        if self.approval == Approval::ReadOnly && kind != PermissionKind::Other {
            let outcome = match choose_option(&request.options, PermissionAnswer::Deny) {
                Some(option) => {
                    RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(option))
                }
                None => RequestPermissionOutcome::Cancelled,
            };
            self.respond_permission(&rpc_id, outcome);
            self.warn(format!("read-only: denied \"{title}\""));
            return;
        }
        let id = self.next_permission;
        self.next_permission += 1;
        self.permissions.insert(
            id,
            PendingPermission {
                rpc_id,
                options: request.options,
            },
        );
        self.emit(AgentEvent::Permission(PermissionRequest {
            id,
            kind,
            title,
            detail: permission_detail(&call, kind),
        }));
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

fn to_value(value: &impl serde::Serialize) -> Value {
    // Schema types always serialize; `Null` would only ever be seen by the agent.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn error_message(id: &Value, code: i64, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// A JSON-RPC error's most specific text: codex-acp puts the real reason in `data.message`,
/// which for a provider's HTTP error is the provider's JSON body (`{"error":{"message":…}}`).
fn error_text(error: &Value) -> String {
    let text = error
        .pointer("/data/message")
        .and_then(Value::as_str)
        .or_else(|| error.get("message").and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| error.to_string());
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|body| {
            body.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or(text)
}

fn quote(text: &str) -> String {
    if text.len() <= QUOTE_BYTES {
        return text.to_owned();
    }
    let mut end = QUOTE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn tail(text: &str, bytes: usize) -> String {
    if text.len() <= bytes {
        return text.to_owned();
    }
    let mut start = text.len() - bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

/// Checks that an `fs/*` path is absolute and lexically inside the session's directory (no
/// `..`): [`FileAccess`] is promised such paths, and the user's other files are none of the
/// agent's business. Symlinks are the `FileAccess`'s to resolve.
fn inside(cwd: &[PathBuf], path: &Path) -> Result<(), String> {
    use std::path::Component;
    let plain = path
        .components()
        .all(|c| !matches!(c, Component::ParentDir));
    if path.is_absolute() && plain && cwd.iter().any(|dir| path.starts_with(dir)) {
        Ok(())
    } else {
        Err(format!(
            "{} is outside the session's directory {}",
            path.display(),
            cwd[0].display()
        ))
    }
}

/// `line` (1-based) and `limit` of `fs/read_text_file`, line endings kept.
fn slice_lines(text: &str, line: Option<u32>, limit: Option<u32>) -> String {
    if line.is_none() && limit.is_none() {
        return text.to_owned();
    }
    let skip = line.map_or(0, |l| l.saturating_sub(1) as usize);
    let take = limit.map_or(usize::MAX, |l| l as usize);
    text.split_inclusive('\n').skip(skip).take(take).collect()
}

/// The mode to switch to: `Some(None)` when the agent is in it already, `None` when nothing
/// the agent advertises fits.
fn pick_mode(modes: &SessionModeState, approval: Approval) -> Option<Option<String>> {
    // Ids first (codex-acp: read-only/auto/full-access; claude-agent-acp: default/acceptEdits/
    // plan/bypassPermissions), then display names.
    let (ids, names): (&[&str], &[&str]) = match approval {
        Approval::AutoEdit => (
            &[
                "auto",
                "acceptEdits",
                "accept-edits",
                "accept_edits",
                "auto-edit",
            ],
            &["accept edits", "auto"],
        ),
        Approval::Ask => (&["read-only", "ask", "default"], &["read only", "ask"]),
        Approval::ReadOnly => (
            &["read-only", "readonly", "read_only", "plan"],
            &["read only", "plan"],
        ),
    };
    let by_id = ids.iter().find_map(|want| {
        modes
            .available_modes
            .iter()
            .find(|m| m.id.0.eq_ignore_ascii_case(want))
    });
    let by_name = || {
        names.iter().find_map(|want| {
            modes
                .available_modes
                .iter()
                .find(|m| m.name.to_lowercase().contains(want))
        })
    };
    let mode = by_id.or_else(by_name)?;
    if mode.id == modes.current_mode_id {
        Some(None)
    } else {
        Some(Some(mode.id.0.to_string()))
    }
}

/// Plan mode's mode: the first whose id or name contains "plan" (`Some(None)` when the agent
/// is in it already), `None` when the agent has none.
fn pick_plan_mode(modes: &SessionModeState) -> Option<Option<String>> {
    let mode = modes.available_modes.iter().find(|m| {
        m.id.0.to_lowercase().contains("plan") || m.name.to_lowercase().contains("plan")
    })?;
    if mode.id == modes.current_mode_id {
        Some(None)
    } else {
        Some(Some(mode.id.0.to_string()))
    }
}

/// The option for an answer, by kind, falling back to the nearest kind of the same sense.
fn choose_option(
    options: &[agent_client_protocol::v1::schema::PermissionOption],
    answer: PermissionAnswer,
) -> Option<String> {
    let preference: &[PermissionOptionKind] = match answer {
        PermissionAnswer::AllowOnce => &[
            PermissionOptionKind::AllowOnce,
            PermissionOptionKind::AllowAlways,
        ],
        // Not `allow_always`: codex-acp turns that into an exec-policy rule kept in the user's
        // CODEX_HOME, which outlives the task. "For this task" is remembered by the server,
        // which answers the task's later requests of the same kind itself.
        PermissionAnswer::AllowForTask => &[PermissionOptionKind::AllowOnce],
        PermissionAnswer::Deny => &[
            PermissionOptionKind::RejectOnce,
            PermissionOptionKind::RejectAlways,
        ],
    };
    preference.iter().find_map(|kind| {
        options
            .iter()
            .find(|o| o.kind == *kind)
            .map(|o| o.option_id.0.to_string())
    })
}

fn tool_kind(kind: &agent_client_protocol::v1::schema::ToolKind) -> ToolKind {
    use agent_client_protocol::v1::schema::ToolKind as Acp;
    match kind {
        Acp::Edit | Acp::Delete | Acp::Move => ToolKind::Edit,
        Acp::Execute => ToolKind::Execute,
        Acp::Read | Acp::Search => ToolKind::Read,
        _ => ToolKind::Other,
    }
}

fn tool_event(call: &agent_client_protocol::v1::schema::ToolCall) -> ToolCall {
    ToolCall {
        id: call.tool_call_id.0.to_string(),
        title: call.title.clone(),
        kind: tool_kind(&call.kind),
        status: match call.status {
            ToolCallStatus::Pending => ToolStatus::Pending,
            ToolCallStatus::InProgress => ToolStatus::InProgress,
            ToolCallStatus::Completed => ToolStatus::Completed,
            ToolCallStatus::Failed => ToolStatus::Failed,
            _ => ToolStatus::InProgress,
        },
    }
}

/// The command line of an execute tool call: codex-acp's `rawInput.command` (argv), else the
/// title.
fn command_line(call: &agent_client_protocol::v1::schema::ToolCall) -> String {
    let argv = call
        .raw_input
        .as_ref()
        .and_then(|i| i.get("command"))
        .or_else(|| call.raw_output.as_ref().and_then(|o| o.get("command")));
    match argv {
        Some(Value::String(command)) => command.clone(),
        Some(Value::Array(argv)) => {
            let words: Vec<&str> = argv.iter().filter_map(Value::as_str).collect();
            // `bash -lc SCRIPT`: the script is what the model asked for.
            match words.as_slice() {
                [shell, flag, script] if shell.ends_with("sh") && flag.starts_with('-') => {
                    (*script).to_owned()
                }
                _ => words.join(" "),
            }
        }
        _ => call.title.clone(),
    }
}

fn permission_title(
    call: &agent_client_protocol::v1::schema::ToolCall,
    kind: PermissionKind,
) -> String {
    match kind {
        PermissionKind::Command => format!("Run `{}`", command_line(call)),
        _ if !call.title.is_empty() => call.title.clone(),
        PermissionKind::Edit => "Edit files".into(),
        PermissionKind::Other => "Permission requested".into(),
    }
}

fn permission_detail(
    call: &agent_client_protocol::v1::schema::ToolCall,
    kind: PermissionKind,
) -> String {
    let mut detail = Vec::new();
    if kind == PermissionKind::Edit {
        for change in reported_changes(call) {
            let path = change.path.display();
            detail.push(match change.kind {
                ReportedKind::Add { content } => format!("new file {path}\n{content}"),
                ReportedKind::Delete => format!("delete {path}"),
                ReportedKind::Update {
                    unified_diff,
                    move_path,
                } => match move_path {
                    Some(to) => format!("{path} → {}\n{unified_diff}", to.display()),
                    None => format!("{path}\n{unified_diff}"),
                },
            });
        }
    }
    if kind == PermissionKind::Command {
        detail.push(command_line(call));
    }
    for content in &call.content {
        if let ToolCallContent::Content(content) = content
            && let ContentBlock::Text(text) = &content.content
        {
            detail.push(text.text.clone());
        }
    }
    detail.join("\n")
}

/// The file changes a finished tool call reports.
fn reported_changes(call: &agent_client_protocol::v1::schema::ToolCall) -> Vec<ReportedChange> {
    let raw = [call.raw_output.as_ref(), call.raw_input.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|v| v.get("changes").and_then(Value::as_object));
    if let Some(raw) = raw {
        let changes: Vec<ReportedChange> = raw
            .iter()
            .filter_map(|(path, change)| codex_change(path, change))
            .collect();
        if !changes.is_empty() {
            return changes;
        }
    }
    // Plain ACP diffs, grouped by path in order of appearance.
    let mut changes: Vec<ReportedChange> = Vec::new();
    for content in &call.content {
        let ToolCallContent::Diff(diff) = content else {
            continue;
        };
        let kind = match &diff.old_text {
            None => ReportedKind::Add {
                content: diff.new_text.clone(),
            },
            Some(old) => ReportedKind::Update {
                unified_diff: similar::TextDiff::from_lines(old.as_str(), diff.new_text.as_str())
                    .unified_diff()
                    .context_radius(3)
                    .to_string(),
                move_path: None,
            },
        };
        match changes.iter_mut().find(|c| c.path == diff.path) {
            Some(ReportedChange {
                kind:
                    ReportedKind::Update {
                        unified_diff: so_far,
                        ..
                    },
                ..
            }) => {
                if let ReportedKind::Update { unified_diff, .. } = kind {
                    so_far.push_str(&unified_diff);
                }
            }
            Some(_) => {}
            None => changes.push(ReportedChange {
                path: diff.path.clone(),
                kind,
            }),
        }
    }
    changes
}

/// One entry of codex-acp's `changes` map (`{type: add|delete|update, content?, unified_diff?,
/// move_path?}`).
fn codex_change(path: &str, change: &Value) -> Option<ReportedChange> {
    let kind = match change.get("type").and_then(Value::as_str)? {
        "add" => ReportedKind::Add {
            content: change.get("content")?.as_str()?.to_owned(),
        },
        "delete" => ReportedKind::Delete,
        "update" => ReportedKind::Update {
            unified_diff: change.get("unified_diff")?.as_str()?.to_owned(),
            move_path: change
                .get("move_path")
                .and_then(Value::as_str)
                .map(PathBuf::from),
        },
        _ => return None,
    };
    Some(ReportedChange {
        path: PathBuf::from(path),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_tells_requests_notifications_responses_and_junk_apart() {
        assert!(matches!(
            classify(r#"{"jsonrpc":"2.0","id":"u","method":"session/request_permission","params":{}}"#),
            Incoming::Request { method, .. } if method == "session/request_permission"
        ));
        assert!(matches!(
            classify(r#"{"jsonrpc":"2.0","method":"session/update","params":{}}"#),
            Incoming::Notification { .. }
        ));
        assert!(matches!(
            classify(r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"x"}}"#),
            Incoming::Response { result: Err(_), .. }
        ));
        assert!(matches!(classify("not json"), Incoming::Malformed(_)));
        assert!(matches!(classify("[1,2]"), Incoming::Malformed(_)));
        assert!(matches!(classify(r#"{"id":1}"#), Incoming::Malformed(_)));
    }

    #[test]
    fn error_text_prefers_data_message() {
        let error = json!({"code": -32603, "message": "Internal error", "data": {"message": "high demand"}});
        assert_eq!(error_text(&error), "high demand");
        assert_eq!(error_text(&json!({"code": 1, "message": "m"})), "m");
        let provider = json!({"code": -32603, "message": "Internal error",
            "data": {"message": "{\"error\":{\"message\":\"quota\",\"type\":\"x\"}}"}});
        assert_eq!(error_text(&provider), "quota");
    }

    #[test]
    fn fs_paths_must_be_inside_the_session() {
        let cwd = &[PathBuf::from("/w/shadow")];
        assert!(inside(cwd, Path::new("/w/shadow/src/a.rs")).is_ok());
        assert!(inside(cwd, Path::new("/w/shadow")).is_ok());
        assert!(inside(cwd, Path::new("/w/shadow-other/a.rs")).is_err());
        assert!(inside(cwd, Path::new("/w/shadow/../x")).is_err());
        assert!(inside(cwd, Path::new("src/a.rs")).is_err());
        assert!(inside(cwd, Path::new("/etc/passwd")).is_err());
    }

    #[test]
    fn slice_lines_is_one_based_and_keeps_endings() {
        let text = "a\nb\nc\nd";
        assert_eq!(slice_lines(text, None, None), text);
        assert_eq!(slice_lines(text, Some(2), Some(2)), "b\nc\n");
        assert_eq!(slice_lines(text, Some(4), None), "d");
        assert_eq!(slice_lines(text, None, Some(1)), "a\n");
    }

    fn modes(current: &str, ids: &[(&str, &str)]) -> SessionModeState {
        serde_json::from_value(json!({
            "currentModeId": current,
            "availableModes": ids.iter().map(|(id, name)| json!({"id": id, "name": name})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn modes_map_for_codex_and_others() {
        let codex = modes(
            "read-only",
            &[
                ("read-only", "Read Only"),
                ("auto", "Default"),
                ("full-access", "Full Access"),
            ],
        );
        assert_eq!(
            pick_mode(&codex, Approval::AutoEdit),
            Some(Some("auto".into()))
        );
        assert_eq!(pick_mode(&codex, Approval::Ask), Some(None));
        assert_eq!(pick_mode(&codex, Approval::ReadOnly), Some(None));
        let claude = modes(
            "default",
            &[
                ("default", "Always Ask"),
                ("acceptEdits", "Accept Edits"),
                ("plan", "Plan Mode"),
            ],
        );
        assert_eq!(
            pick_mode(&claude, Approval::AutoEdit),
            Some(Some("acceptEdits".into()))
        );
        assert_eq!(pick_mode(&claude, Approval::Ask), Some(None));
        assert_eq!(
            pick_mode(&claude, Approval::ReadOnly),
            Some(Some("plan".into()))
        );
        let odd = modes("x", &[("x", "Something")]);
        assert_eq!(pick_mode(&odd, Approval::AutoEdit), None);
        assert_eq!(pick_plan_mode(&claude), Some(Some("plan".into())));
        assert_eq!(pick_plan_mode(&codex), None);
        let named = modes("a", &[("a", "Ask"), ("architect", "Planning")]);
        assert_eq!(pick_plan_mode(&named), Some(Some("architect".into())));
    }

    #[test]
    fn options_are_chosen_by_kind_with_fallbacks() {
        let options: Vec<agent_client_protocol::v1::schema::PermissionOption> =
            serde_json::from_value(json!([
                {"optionId": "approved", "name": "Yes", "kind": "allow_once"},
                {"optionId": "abort", "name": "No", "kind": "reject_once"},
            ]))
            .unwrap();
        assert_eq!(
            choose_option(&options, PermissionAnswer::AllowOnce).as_deref(),
            Some("approved")
        );
        assert_eq!(
            choose_option(&options, PermissionAnswer::AllowForTask).as_deref(),
            Some("approved")
        );
        assert_eq!(
            choose_option(&options, PermissionAnswer::Deny).as_deref(),
            Some("abort")
        );
        assert_eq!(choose_option(&options[..1], PermissionAnswer::Deny), None);
    }

    #[test]
    fn codex_changes_come_from_raw_input_and_plain_diffs_otherwise() {
        let call: agent_client_protocol::v1::schema::ToolCall = serde_json::from_value(json!({
            "toolCallId": "call_2", "title": "Edit", "kind": "edit", "status": "completed",
            "content": [
                {"type": "diff", "path": "/r/moved.txt", "oldText": "line2\n", "newText": "line2 changed\n"},
                {"type": "diff", "path": "/r/gone.txt", "oldText": "to be deleted\n", "newText": ""}
            ],
            "rawOutput": {"changes": {
                "/r/old.txt": {"type": "update", "unified_diff": "@@ -1 +1 @@\n-a\n+b\n", "move_path": "/r/moved.txt"},
                "/r/gone.txt": {"type": "delete", "content": "to be deleted\n"},
                "/r/new.txt": {"type": "add", "content": "new\n"}
            }}
        }))
        .unwrap();
        let changes = reported_changes(&call);
        assert_eq!(
            changes,
            vec![
                ReportedChange {
                    path: "/r/old.txt".into(),
                    kind: ReportedKind::Update {
                        unified_diff: "@@ -1 +1 @@\n-a\n+b\n".into(),
                        move_path: Some("/r/moved.txt".into())
                    }
                },
                ReportedChange {
                    path: "/r/gone.txt".into(),
                    kind: ReportedKind::Delete
                },
                ReportedChange {
                    path: "/r/new.txt".into(),
                    kind: ReportedKind::Add {
                        content: "new\n".into()
                    }
                },
            ]
        );

        let plain: agent_client_protocol::v1::schema::ToolCall = serde_json::from_value(json!({
            "toolCallId": "t", "title": "Edit", "kind": "edit", "status": "completed",
            "content": [
                {"type": "diff", "path": "/r/a.txt", "oldText": "x\n", "newText": "y\n"},
                {"type": "diff", "path": "/r/b.txt", "newText": "fresh\n"}
            ]
        }))
        .unwrap();
        let changes = reported_changes(&plain);
        assert_eq!(changes.len(), 2);
        assert!(
            matches!(&changes[0].kind, ReportedKind::Update { unified_diff, .. } if unified_diff.contains("-x\n+y\n"))
        );
        assert_eq!(
            changes[1].kind,
            ReportedKind::Add {
                content: "fresh\n".into()
            }
        );
    }

    #[test]
    fn shell_command_lines_unwrap_bash_lc() {
        let call: agent_client_protocol::v1::schema::ToolCall = serde_json::from_value(json!({
            "toolCallId": "c", "title": "t", "kind": "execute",
            "rawInput": {"command": ["/bin/bash", "-lc", "echo hi > f"]}
        }))
        .unwrap();
        assert_eq!(command_line(&call), "echo hi > f");
    }
}
