//! The Codex app-server transport.
//!
//! `codex app-server` speaks JSON-RPC without the `"jsonrpc"` field, one JSON object per line on
//! its stdio, or one per text frame on a WebSocket when it was started with `--listen ws://…`
//! (`transport` hides which). `start` runs the handshake (`initialize`, `initialized`,
//! `thread/start`) and then one task owns the connection: it turns [`AgentCommand`]s into
//! requests and the app-server's notifications and requests into [`AgentEvent`]s.
//!
//! Policy mapping (see [`Approval`]):
//!
//! | approval | `thread/start` sandbox, approvalPolicy | each `turn/start` sandboxPolicy |
//! |----------|-----------------------------------------|---------------------------------|
//! | AutoEdit | `workspace-write`, `on-request`         | `workspaceWrite`, /tmp and $TMPDIR excluded |
//! | Ask      | `workspace-write`, `untrusted`          | the same                        |
//! | ReadOnly | `read-only`, `on-request`               | `readOnly` (a turn's policy sticks to later turns, so it must not widen) |
//!
//! [`SessionMode::Plan`] overrides the approval: `initialize` opts into the experimental API,
//! the thread and every turn are read-only as for `ReadOnly`, and every `turn/start` carries
//! `collaborationMode: {mode: "plan", settings: {model}}` with the model `thread/start` named
//! (codex's plan mode lives only in the developer instructions it sends the model, so the
//! read-only sandbox is what keeps the workspace untouched). The plan streams as
//! `item/plan/delta` and completes as a `plan` item; `item/tool/requestUserInput` becomes
//! [`AgentEvent::Questions`], answered with `{answers: {id: {answers: [text]}}}`, and is
//! withdrawn when the turn ends first. `docs/harness-plan-mode.md` records how codex does it.
//!
//! The thread is `ephemeral`: it lives in a shadow copy, and a rollout in the user's
//! `CODEX_HOME` would name a directory that is about to disappear. One turn runs at a time: a
//! prompt sent while a turn runs starts when it ends (a cancel drops such prompts).
//!
//! Unanswerable server requests (anything but the two approvals and the questions) are refused with a JSON-RPC
//! error at once, because codex blocks the turn until they are answered.
//!
//! [`apply::apply_unified`] replays the `update` diffs codex reports, for a remote agent whose
//! changes baton cannot diff from a local shadow.

pub mod apply;
pub mod protocol;
#[cfg(test)]
mod schema_check;
mod transport;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};

use crate::agent::{
    AgentCommand, AgentError, AgentEvent, AgentHandle, AgentSpec, Approval, ItemId,
    PermissionAnswer, PermissionId, PermissionKind, PermissionRequest, PlanEntry, PlanStatus,
    QuestionId, QuestionRequest, ReportedChange, ReportedKind, SessionMode, SessionOptions,
    ToolCall, ToolKind, ToolStatus, TurnEnd, UserQuestion,
};
use protocol as p;
use transport::{Connection, Inbound, Process};

pub use apply::{ApplyError, apply_unified, strip_moved_to};
pub use protocol::CODEX_VERSION_CHECKED;

/// How long `initialize` and `thread/start` may take (codex answers in well under a second).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a command's output a [`AgentEvent::Command`] carries.
const OUTPUT_TAIL_BYTES: usize = 4000;

/// JSON-RPC "method not found", for server requests baton does not handle.
const METHOD_NOT_FOUND: i64 = -32601;

pub(crate) async fn start(
    spec: &AgentSpec,
    options: SessionOptions,
) -> Result<(AgentHandle, mpsc::UnboundedReceiver<AgentEvent>), AgentError> {
    let connection = match &spec.connect {
        Some(url) => transport::connect(&spec.name, url).await?,
        None => transport::spawn(spec, &options.cwd)?,
    };
    start_on(spec.name.clone(), connection, options).await
}

/// The handshake and the session task on an open connection.
async fn start_on(
    name: String,
    connection: Connection,
    options: SessionOptions,
) -> Result<(AgentHandle, mpsc::UnboundedReceiver<AgentEvent>), AgentError> {
    let pid = connection.process.as_ref().map(Process::pid);
    let mut session = Session::new(name.clone(), connection, options);
    if let Err(reason) = session.handshake().await {
        let reason = session.stop_after_failed_handshake(reason).await;
        return Err(AgentError::Handshake {
            agent: name,
            reason,
        });
    }
    let (commands, command_rx) = mpsc::unbounded_channel();
    let events = session.take_events();
    tokio::spawn(session.run(command_rx));
    Ok((AgentHandle::new(name, commands, pid), events))
}

/// Where the current turn is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TurnState {
    Idle,
    /// `turn/start` sent, its id not known yet; `cancel` when a Cancel came meanwhile.
    Starting {
        cancel: bool,
    },
    Running {
        id: String,
    },
}

/// What one of baton's outstanding requests was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    TurnStart,
    Interrupt,
}

/// A permission request the user has not answered yet.
struct OpenPermission {
    /// The JSON-RPC id of codex's request, answered verbatim.
    rpc_id: Value,
}

struct Session {
    name: String,
    /// `None` once closed (shutdown).
    out: Option<mpsc::UnboundedSender<String>>,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    process: Option<Process>,
    events: mpsc::UnboundedSender<AgentEvent>,
    events_rx: Option<mpsc::UnboundedReceiver<AgentEvent>>,
    options: SessionOptions,
    thread_id: String,
    /// The thread's model, from `thread/start` (plan mode's settings name it).
    model: String,
    next_id: u64,
    requests: HashMap<u64, Pending>,
    turn: TurnState,
    queued: VecDeque<String>,
    permissions: BTreeMap<PermissionId, OpenPermission>,
    next_permission: PermissionId,
    /// Question requests not answered yet: the JSON-RPC id of codex's request, by id.
    questions: BTreeMap<QuestionId, Value>,
    next_question: QuestionId,
    /// The changes of file-change items that started, by item id: an approval request names
    /// only the item, and its detail is the diff.
    file_changes: HashMap<ItemId, Vec<p::FileUpdateChange>>,
    /// Agent messages that streamed deltas (others are sent whole when they complete).
    streamed_messages: HashSet<ItemId>,
    /// The last non-retried `error` notification, in case `turn/completed` carries none.
    last_error: Option<String>,
}

impl Session {
    fn new(name: String, connection: Connection, options: SessionOptions) -> Session {
        let (events, events_rx) = mpsc::unbounded_channel();
        Session {
            name,
            out: Some(connection.outbound),
            inbound: connection.inbound,
            process: connection.process,
            events,
            events_rx: Some(events_rx),
            options,
            thread_id: String::new(),
            model: String::new(),
            next_id: 1,
            requests: HashMap::new(),
            turn: TurnState::Idle,
            queued: VecDeque::new(),
            permissions: BTreeMap::new(),
            next_permission: 1,
            questions: BTreeMap::new(),
            next_question: 1,
            file_changes: HashMap::new(),
            streamed_messages: HashSet::new(),
            last_error: None,
        }
    }

    fn take_events(&mut self) -> mpsc::UnboundedReceiver<AgentEvent> {
        self.events_rx
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1)
    }

    fn emit(&self, event: AgentEvent) {
        // The receiver may be gone (the server dropped the task); the agent still gets stopped.
        let _ = self.events.send(event);
    }

    fn write(&self, message: Value) {
        if let Some(out) = &self.out {
            let _ = out.send(message.to_string());
        }
    }

    fn request(&mut self, method: &str, params: impl Serialize) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let params = serde_json::to_value(params).unwrap_or(Value::Null);
        self.write(json!({"id": id, "method": method, "params": params}));
        id
    }

    /// `initialize` → `initialized` → `thread/start`.
    async fn handshake(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let id = self.request(
            p::INITIALIZE,
            p::InitializeParams {
                client_info: p::ClientInfo {
                    name: "baton".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                },
                capabilities: p::InitializeCapabilities {
                    experimental_api: self.options.mode == SessionMode::Plan,
                },
            },
        );
        self.await_response(id, deadline).await?;
        self.write(json!({"method": p::INITIALIZED}));
        let (approval_policy, sandbox) = match self.effective_approval() {
            Approval::AutoEdit => (p::AskForApproval::OnRequest, p::SandboxMode::WorkspaceWrite),
            Approval::Ask => (p::AskForApproval::Untrusted, p::SandboxMode::WorkspaceWrite),
            Approval::ReadOnly => (p::AskForApproval::OnRequest, p::SandboxMode::ReadOnly),
        };
        let id = self.request(
            p::THREAD_START,
            p::ThreadStartParams {
                cwd: self.options.cwd.to_string_lossy().into_owned(),
                approval_policy,
                sandbox,
                ephemeral: true,
            },
        );
        let result = self.await_response(id, deadline).await?;
        let started: p::ThreadStartResponse = serde_json::from_value(result)
            .map_err(|e| format!("unexpected thread/start answer: {e}"))?;
        self.thread_id = started.thread.id;
        self.model = started.model;
        Ok(())
    }

    /// The approval the sandbox follows: plan mode is always read-only.
    fn effective_approval(&self) -> Approval {
        match self.options.mode {
            SessionMode::Plan => Approval::ReadOnly,
            SessionMode::Work => self.options.approval,
        }
    }

    /// Waits for the answer to request `id`. Notifications before it (config warnings, the
    /// thread's own `thread/started`) say nothing baton needs; a server request is refused so
    /// it cannot block.
    async fn await_response(&mut self, id: u64, deadline: Instant) -> Result<Value, String> {
        loop {
            let inbound = tokio::time::timeout_at(deadline, self.inbound.recv())
                .await
                .map_err(|_| "the app-server did not answer in time".to_string())?;
            let text = match inbound {
                Some(Inbound::Message(text)) => text,
                Some(Inbound::Closed(reason)) => return Err(reason),
                None => return Err("the connection ended".into()),
            };
            let Ok(message) = serde_json::from_str::<Value>(&text) else {
                tracing::warn!(agent = %self.name, "malformed message during handshake");
                continue;
            };
            if let (Some(method), Some(rpc_id)) = (message.get("method"), message.get("id")) {
                let method = method.as_str().unwrap_or_default().to_string();
                self.refuse(rpc_id.clone(), &method);
                continue;
            }
            if message.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(error) = message.get("error") {
                    return Err(error_message(error));
                }
                return Ok(message.get("result").cloned().unwrap_or(Value::Null));
            }
        }
    }

    /// After a failed handshake: stop the child and say why, with its last stderr lines.
    async fn stop_after_failed_handshake(&mut self, reason: String) -> String {
        self.out = None;
        match self.process.as_mut() {
            Some(process) => {
                process.stop(Duration::from_millis(200)).await;
                with_stderr(reason, &process.stderr_tail())
            }
            None => reason,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<AgentCommand>) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(AgentCommand::Shutdown(done)) => {
                        self.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.command(command),
                    // Every handle is gone: nobody can stop the agent later.
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                inbound = self.inbound.recv() => match inbound {
                    Some(Inbound::Message(text)) => self.message(&text),
                    Some(Inbound::Closed(reason)) => return self.gone(reason).await,
                    None => return self.gone("the connection ended".into()).await,
                },
            }
        }
    }

    fn command(&mut self, command: AgentCommand) {
        match command {
            AgentCommand::Prompt(text) => {
                if self.turn == TurnState::Idle {
                    self.start_turn(text);
                } else {
                    // One turn at a time: the follow-up starts when this one ends.
                    self.queued.push_back(text);
                }
            }
            AgentCommand::Cancel => {
                // A cancel stops what was asked for, queued follow-ups included.
                self.queued.clear();
                match &mut self.turn {
                    TurnState::Idle => {}
                    TurnState::Starting { cancel } => *cancel = true,
                    TurnState::Running { id } => {
                        let id = id.clone();
                        self.interrupt(id);
                    }
                }
            }
            AgentCommand::Answer { id, answer } => {
                let Some(open) = self.permissions.remove(&id) else {
                    tracing::debug!(agent = %self.name, id, "answer to a permission no longer open");
                    return;
                };
                let decision = match answer {
                    PermissionAnswer::AllowOnce => p::ApprovalDecision::Accept,
                    PermissionAnswer::AllowForTask => p::ApprovalDecision::AcceptForSession,
                    PermissionAnswer::Deny => p::ApprovalDecision::Decline,
                };
                let result =
                    serde_json::to_value(p::ApprovalResponse { decision }).unwrap_or(Value::Null);
                self.write(json!({"id": open.rpc_id, "result": result}));
            }
            AgentCommand::AnswerQuestions { id, answers } => {
                let Some(rpc_id) = self.questions.remove(&id) else {
                    tracing::debug!(agent = %self.name, id, "answer to questions no longer open");
                    return;
                };
                let answers = answers
                    .into_iter()
                    .map(|(question, answer)| {
                        let answers = if answer.is_empty() {
                            Vec::new()
                        } else {
                            vec![answer]
                        };
                        (question, p::ToolRequestUserInputAnswer { answers })
                    })
                    .collect();
                let result = serde_json::to_value(p::ToolRequestUserInputResponse { answers })
                    .unwrap_or(Value::Null);
                self.write(json!({"id": rpc_id, "result": result}));
            }
            // Handled in `run`, which must await it.
            AgentCommand::Shutdown(_) => {}
        }
    }

    fn start_turn(&mut self, text: String) {
        let sandbox_policy = match self.effective_approval() {
            // A turn's policy also applies to later turns: a read-only session must not get
            // a writable one here.
            Approval::ReadOnly => p::SandboxPolicy::ReadOnly {
                network_access: false,
            },
            Approval::AutoEdit | Approval::Ask => p::SandboxPolicy::WorkspaceWrite {
                writable_roots: Vec::new(),
                network_access: false,
                exclude_slash_tmp: true,
                exclude_tmpdir_env_var: true,
            },
        };
        let id = self.request(
            p::TURN_START,
            p::TurnStartParams {
                thread_id: self.thread_id.clone(),
                input: vec![p::UserInput::Text { text }],
                sandbox_policy,
                collaboration_mode: (self.options.mode == SessionMode::Plan).then(|| {
                    p::CollaborationMode {
                        mode: p::ModeKind::Plan,
                        settings: p::CollaborationSettings {
                            model: self.model.clone(),
                        },
                    }
                }),
            },
        );
        self.requests.insert(id, Pending::TurnStart);
        self.turn = TurnState::Starting { cancel: false };
        self.last_error = None;
    }

    fn interrupt(&mut self, turn_id: String) {
        let id = self.request(
            p::TURN_INTERRUPT,
            p::TurnInterruptParams {
                thread_id: self.thread_id.clone(),
                turn_id,
            },
        );
        self.requests.insert(id, Pending::Interrupt);
    }

    fn warn(&self, text: String) {
        self.emit(AgentEvent::Warning(text));
    }

    fn message(&mut self, text: &str) {
        let message: Value = match serde_json::from_str(text) {
            Ok(Value::Object(m)) => Value::Object(m),
            _ => {
                return self.warn(format!(
                    "skipped a malformed message from the app-server: {}",
                    clip(text, 200)
                ));
            }
        };
        let method = message.get("method").and_then(Value::as_str);
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        match (method, message.get("id")) {
            (Some(method), Some(id)) => self.server_request(method, id.clone(), params),
            (Some(method), None) => self.notification(method, params),
            (None, Some(id)) => {
                let result = match message.get("error") {
                    Some(error) => Err(error_message(error)),
                    None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
                };
                self.response(id, result);
            }
            (None, None) => self.warn(format!(
                "skipped a message that is neither request, notification nor response: {}",
                clip(text, 200)
            )),
        }
    }

    fn response(&mut self, id: &Value, result: Result<Value, String>) {
        let Some(pending) = id.as_u64().and_then(|id| self.requests.remove(&id)) else {
            return;
        };
        match (pending, result) {
            (Pending::TurnStart, Ok(result)) => {
                match serde_json::from_value::<p::TurnStartResponse>(result) {
                    Ok(started) => self.turn_known(started.turn.id),
                    Err(e) => self.warn(format!("unexpected turn/start answer: {e}")),
                }
            }
            (Pending::TurnStart, Err(reason)) => {
                if self.turn != TurnState::Idle {
                    self.end_turn(TurnEnd::Failed(reason));
                }
            }
            (Pending::Interrupt, Ok(_)) => {}
            (Pending::Interrupt, Err(reason)) => {
                self.warn(format!("the app-server refused to interrupt: {reason}"))
            }
        }
    }

    /// The running turn's id arrived (`turn/start` answer or `turn/started`).
    fn turn_known(&mut self, id: String) {
        if let TurnState::Starting { cancel } = self.turn {
            self.turn = TurnState::Running { id: id.clone() };
            if cancel {
                self.interrupt(id);
            }
        }
    }

    fn ours(&self, thread_id: &str) -> bool {
        // Sub-agent threads report on the same connection; only this thread's events count.
        thread_id == self.thread_id
    }

    fn notification(&mut self, method: &str, params: Value) {
        fn parse<T: serde::de::DeserializeOwned>(
            session: &Session,
            method: &str,
            params: Value,
        ) -> Option<T> {
            match serde_json::from_value(params) {
                Ok(v) => Some(v),
                Err(e) => {
                    session.warn(format!("skipped a malformed `{method}` notification: {e}"));
                    None
                }
            }
        }
        match method {
            p::AGENT_MESSAGE_DELTA => {
                if let Some(n) = parse::<p::AgentMessageDeltaNotification>(self, method, params)
                    && self.ours(&n.thread_id)
                {
                    self.streamed_messages.insert(n.item_id);
                    self.emit(AgentEvent::Message(n.delta));
                }
            }
            p::PLAN_DELTA => {
                if let Some(n) = parse::<p::PlanDeltaNotification>(self, method, params)
                    && self.ours(&n.thread_id)
                {
                    self.emit(AgentEvent::PlanDelta(n.delta));
                }
            }
            p::ITEM_STARTED => {
                if let Some(n) = parse::<p::ItemNotification>(self, method, params)
                    && self.ours(&n.thread_id)
                {
                    self.item_started(n.item);
                }
            }
            p::ITEM_COMPLETED => {
                if let Some(n) = parse::<p::ItemNotification>(self, method, params)
                    && self.ours(&n.thread_id)
                {
                    self.item_completed(n.item);
                }
            }
            p::TURN_STARTED => {
                if let Some(n) = parse::<p::TurnNotification>(self, method, params)
                    && self.ours(&n.thread_id)
                {
                    self.turn_known(n.turn.id);
                }
            }
            p::TURN_COMPLETED => {
                if let Some(n) = parse::<p::TurnNotification>(self, method, params)
                    && self.ours(&n.thread_id)
                {
                    self.turn_completed(n.turn);
                }
            }
            p::TURN_DIFF_UPDATED => {
                if let Some(n) = parse::<p::TurnDiffUpdatedNotification>(self, method, params)
                    && self.ours(&n.thread_id)
                {
                    self.emit(AgentEvent::TurnDiff(n.diff));
                }
            }
            p::TURN_PLAN_UPDATED => {
                if let Some(n) = parse::<p::TurnPlanUpdatedNotification>(self, method, params)
                    && self.ours(&n.thread_id)
                {
                    let entries = n
                        .plan
                        .into_iter()
                        .map(|s| PlanEntry {
                            content: s.step,
                            status: match s.status {
                                p::TurnPlanStepStatus::Pending => PlanStatus::Pending,
                                p::TurnPlanStepStatus::InProgress => PlanStatus::InProgress,
                                p::TurnPlanStepStatus::Completed => PlanStatus::Completed,
                            },
                        })
                        .collect();
                    self.emit(AgentEvent::Plan(entries));
                }
            }
            p::ERROR => {
                if let Some(n) = parse::<p::ErrorNotification>(self, method, params)
                    && self.ours(&n.thread_id)
                {
                    if n.will_retry {
                        self.warn(n.error.message);
                    } else {
                        // `turn/completed` (failed) follows and says it again.
                        self.last_error = Some(n.error.message);
                    }
                }
            }
            p::SERVER_REQUEST_RESOLVED => {
                if let Some(n) = parse::<p::ServerRequestResolvedNotification>(self, method, params)
                {
                    let resolved: Vec<PermissionId> = self
                        .permissions
                        .iter()
                        .filter(|(_, open)| open.rpc_id == n.request_id)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in resolved {
                        self.permissions.remove(&id);
                        self.emit(AgentEvent::PermissionWithdrawn { id });
                    }
                    let resolved: Vec<QuestionId> = self
                        .questions
                        .iter()
                        .filter(|(_, rpc_id)| **rpc_id == n.request_id)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in resolved {
                        self.questions.remove(&id);
                        self.emit(AgentEvent::QuestionsWithdrawn { id });
                    }
                }
            }
            _ => {}
        }
    }

    fn item_started(&mut self, item: p::ThreadItem) {
        match item {
            p::ThreadItem::FileChange { id, changes, .. } => {
                self.emit(AgentEvent::ToolCall(ToolCall {
                    id: id.clone(),
                    title: self.edit_title(&changes),
                    kind: ToolKind::Edit,
                    status: ToolStatus::InProgress,
                }));
                self.file_changes.insert(id, changes);
            }
            p::ThreadItem::CommandExecution { id, command, .. } => {
                self.emit(AgentEvent::ToolCall(ToolCall {
                    id,
                    title: command,
                    kind: ToolKind::Execute,
                    status: ToolStatus::InProgress,
                }));
            }
            p::ThreadItem::AgentMessage { .. }
            | p::ThreadItem::Plan { .. }
            | p::ThreadItem::Other => {}
        }
    }

    fn item_completed(&mut self, item: p::ThreadItem) {
        match item {
            p::ThreadItem::FileChange {
                id,
                changes,
                status,
            } => {
                self.file_changes.remove(&id);
                self.emit(AgentEvent::ToolCall(ToolCall {
                    id: id.clone(),
                    title: self.edit_title(&changes),
                    kind: ToolKind::Edit,
                    status: tool_status(status),
                }));
                // Only a completed patch is on disk; a declined or failed one changed nothing.
                if status == p::ItemStatus::Completed {
                    let changes = changes.into_iter().map(reported_change).collect();
                    self.emit(AgentEvent::FilesChanged { item: id, changes });
                }
            }
            p::ThreadItem::CommandExecution {
                id,
                command,
                status,
                exit_code,
                aggregated_output,
            } => {
                self.emit(AgentEvent::ToolCall(ToolCall {
                    id: id.clone(),
                    title: command.clone(),
                    kind: ToolKind::Execute,
                    status: tool_status(status),
                }));
                self.emit(AgentEvent::Command {
                    item: id,
                    command,
                    exit_code,
                    output_tail: tail(
                        aggregated_output.as_deref().unwrap_or(""),
                        OUTPUT_TAIL_BYTES,
                    ),
                });
            }
            p::ThreadItem::AgentMessage { id, text } => {
                if !self.streamed_messages.remove(&id) && !text.is_empty() {
                    self.emit(AgentEvent::Message(text));
                }
            }
            p::ThreadItem::Plan { text, .. } => self.emit(AgentEvent::PlanText(text)),
            p::ThreadItem::Other => {}
        }
    }

    fn turn_completed(&mut self, turn: p::Turn) {
        if let TurnState::Running { id } = &self.turn
            && *id != turn.id
        {
            // A turn this session did not start (or an old one): not ours to end.
            return;
        }
        if self.turn == TurnState::Idle {
            return;
        }
        let end = match turn.status {
            p::TurnStatus::Completed | p::TurnStatus::InProgress => TurnEnd::Completed,
            p::TurnStatus::Interrupted => TurnEnd::Cancelled,
            p::TurnStatus::Failed => TurnEnd::Failed(
                turn.error
                    .map(|e| e.message)
                    .or_else(|| self.last_error.take())
                    .unwrap_or_else(|| "the turn failed".into()),
            ),
        };
        self.end_turn(end);
    }

    /// Withdraws open permissions, reports the end, and starts a queued follow-up.
    fn end_turn(&mut self, end: TurnEnd) {
        self.withdraw_permissions();
        self.file_changes.clear();
        self.streamed_messages.clear();
        self.turn = TurnState::Idle;
        self.emit(AgentEvent::TurnEnded(end));
        if let Some(next) = self.queued.pop_front() {
            self.start_turn(next);
        }
    }

    fn withdraw_permissions(&mut self) {
        for id in std::mem::take(&mut self.permissions).into_keys() {
            self.emit(AgentEvent::PermissionWithdrawn { id });
        }
        for id in std::mem::take(&mut self.questions).into_keys() {
            self.emit(AgentEvent::QuestionsWithdrawn { id });
        }
    }

    /// Approval requests become permissions whatever thread they come from (unlike
    /// notifications): a sub-agent's request works in the same directory, and refusing it
    /// would fail its action without the user ever being asked.
    fn server_request(&mut self, method: &str, rpc_id: Value, params: Value) {
        if method == p::REQUEST_USER_INPUT {
            return self.questions_asked(rpc_id, params);
        }
        let request = match method {
            p::FILE_CHANGE_APPROVAL => {
                match serde_json::from_value::<p::FileChangeRequestApprovalParams>(params) {
                    Ok(r) => Some(self.edit_permission(r)),
                    Err(e) => {
                        self.warn(format!("malformed `{method}` request: {e}"));
                        None
                    }
                }
            }
            p::COMMAND_APPROVAL => {
                match serde_json::from_value::<p::CommandExecutionRequestApprovalParams>(params) {
                    Ok(r) => Some(command_permission(r)),
                    Err(e) => {
                        self.warn(format!("malformed `{method}` request: {e}"));
                        None
                    }
                }
            }
            _ => None,
        };
        let Some((kind, title, detail)) = request else {
            // Unanswered, a server request blocks the turn: refuse what baton cannot answer.
            if method != p::FILE_CHANGE_APPROVAL && method != p::COMMAND_APPROVAL {
                self.warn(format!(
                    "the agent asked `{method}`, which baton does not support"
                ));
            }
            return self.refuse(rpc_id, method);
        };
        let id = self.next_permission;
        self.next_permission += 1;
        self.permissions.insert(id, OpenPermission { rpc_id });
        self.emit(AgentEvent::Permission(PermissionRequest {
            id,
            kind,
            title,
            detail,
        }));
    }

    /// `item/tool/requestUserInput` becomes [`AgentEvent::Questions`]; a malformed one is
    /// refused so the turn does not wait for an answer that cannot come.
    fn questions_asked(&mut self, rpc_id: Value, params: Value) {
        let request = match serde_json::from_value::<p::ToolRequestUserInputParams>(params) {
            Ok(request) => request,
            Err(e) => {
                self.warn(format!(
                    "malformed `{}` request: {e}",
                    p::REQUEST_USER_INPUT
                ));
                return self.refuse(rpc_id, p::REQUEST_USER_INPUT);
            }
        };
        let id = self.next_question;
        self.next_question += 1;
        self.questions.insert(id, rpc_id);
        let questions = request
            .questions
            .into_iter()
            .map(|q| UserQuestion {
                id: q.id,
                header: q.header,
                question: q.question,
                options: q
                    .options
                    .into_iter()
                    .flatten()
                    .map(|option| option.label)
                    .collect(),
            })
            .collect();
        self.emit(AgentEvent::Questions(QuestionRequest { id, questions }));
    }

    fn refuse(&self, rpc_id: Value, method: &str) {
        self.write(json!({"id": rpc_id, "error": {
            "code": METHOD_NOT_FOUND,
            "message": format!("baton does not handle `{method}`"),
        }}));
    }

    fn edit_permission(
        &self,
        request: p::FileChangeRequestApprovalParams,
    ) -> (PermissionKind, String, String) {
        let changes = self.file_changes.get(&request.item_id);
        let title = match changes {
            Some(changes) => self.edit_title(changes),
            None => "Edit files".to_string(),
        };
        let mut detail = String::new();
        if let Some(reason) = request.reason.filter(|r| !r.is_empty()) {
            detail.push_str(&reason);
            detail.push_str("\n\n");
        }
        if let Some(root) = request.grant_root {
            detail.push_str(&format!("Asks to write under {root}\n\n"));
        }
        for change in changes.into_iter().flatten() {
            let path = self.display_path(&change.path);
            let (verb, body) = match &change.kind {
                p::PatchChangeKind::Add => ("add", change.diff.as_str()),
                p::PatchChangeKind::Delete => ("delete", ""),
                p::PatchChangeKind::Update {
                    move_path: Some(to),
                } => {
                    detail.push_str(&format!("move {path} → {}\n", self.display_path(to)));
                    ("update", strip_moved_to(&change.diff, to))
                }
                p::PatchChangeKind::Update { move_path: None } => ("update", change.diff.as_str()),
            };
            detail.push_str(&format!("{verb} {path}\n{body}"));
            if !body.is_empty() && !body.ends_with('\n') {
                detail.push('\n');
            }
        }
        (PermissionKind::Edit, title, detail)
    }

    fn edit_title(&self, changes: &[p::FileUpdateChange]) -> String {
        let paths: Vec<String> = changes.iter().map(|c| self.display_path(&c.path)).collect();
        format!("Edit {}", paths.join(", "))
    }

    /// `path` relative to the session's cwd when it is inside it.
    fn display_path(&self, path: &str) -> String {
        Path::new(path)
            .strip_prefix(&self.options.cwd)
            .map(|rel| rel.to_string_lossy().into_owned())
            .unwrap_or_else(|_| path.to_string())
    }

    /// The connection ended on its own.
    async fn gone(mut self, reason: String) {
        self.out = None;
        if self.turn != TurnState::Idle {
            self.queued.clear();
            self.end_turn(TurnEnd::Failed(format!(
                "the app-server went away: {reason}"
            )));
        }
        let reason = match self.process.as_mut() {
            Some(process) => {
                let status = process.stop(self.options.grace).await;
                with_stderr(format!("{reason} ({status})"), &process.stderr_tail())
            }
            None => reason,
        };
        self.emit(AgentEvent::Exited { reason });
    }

    /// Interrupt, close, wait up to the grace period, kill.
    async fn shutdown(&mut self) {
        self.queued.clear();
        if let TurnState::Running { id } = &self.turn {
            let id = id.clone();
            self.interrupt(id);
        }
        // EOF on stdin (or a close frame) asks the app-server to leave.
        self.out = None;
        let deadline = Instant::now() + self.options.grace;
        // Keep reporting what arrives meanwhile: the interrupted turn's end, mostly.
        let mut closed = None;
        while closed.is_none() {
            match tokio::time::timeout_at(deadline, self.inbound.recv()).await {
                Ok(Some(Inbound::Message(text))) => self.message(&text),
                Ok(Some(Inbound::Closed(reason))) => closed = Some(reason),
                Ok(None) => closed = Some("the connection ended".into()),
                Err(_) => break,
            }
        }
        if self.turn != TurnState::Idle {
            self.end_turn(TurnEnd::Cancelled);
        }
        self.withdraw_permissions();
        let left = deadline.saturating_duration_since(Instant::now());
        let reason = match self.process.as_mut() {
            Some(process) => format!("shut down by baton ({})", process.stop(left).await),
            None => "shut down by baton (connection closed)".to_string(),
        };
        self.emit(AgentEvent::Exited { reason });
    }
}

fn tool_status(status: p::ItemStatus) -> ToolStatus {
    match status {
        p::ItemStatus::InProgress => ToolStatus::InProgress,
        p::ItemStatus::Completed => ToolStatus::Completed,
        p::ItemStatus::Failed | p::ItemStatus::Declined => ToolStatus::Failed,
    }
}

/// A protocol change in baton's terms. The `update` diff loses codex's "Moved to" suffix, so
/// it is exactly the hunks [`apply_unified`] takes.
fn reported_change(change: p::FileUpdateChange) -> ReportedChange {
    let kind = match change.kind {
        p::PatchChangeKind::Add => ReportedKind::Add {
            content: change.diff,
        },
        p::PatchChangeKind::Delete => ReportedKind::Delete,
        p::PatchChangeKind::Update { move_path } => ReportedKind::Update {
            unified_diff: match &move_path {
                Some(to) => strip_moved_to(&change.diff, to).to_string(),
                None => change.diff,
            },
            move_path: move_path.map(Into::into),
        },
    };
    ReportedChange {
        path: change.path.into(),
        kind,
    }
}

fn command_permission(
    request: p::CommandExecutionRequestApprovalParams,
) -> (PermissionKind, String, String) {
    let command = request.command.unwrap_or_default();
    let title = if command.is_empty() {
        "Run a command".to_string()
    } else {
        format!("Run `{command}`")
    };
    let mut detail = String::new();
    if let Some(reason) = request.reason.filter(|r| !r.is_empty()) {
        detail.push_str(&reason);
        detail.push('\n');
    }
    if let Some(cwd) = request.cwd {
        detail.push_str(&format!("in {cwd}\n"));
    }
    (PermissionKind::Command, title, detail)
}

fn error_message(error: &Value) -> String {
    error
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| error.to_string())
}

fn with_stderr(reason: String, stderr: &[String]) -> String {
    if stderr.is_empty() {
        reason
    } else {
        format!("{reason}; last stderr lines:\n{}", stderr.join("\n"))
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// `text` cut to at most `max` bytes, for messages.
fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    //! The session against a scripted peer on in-memory channels: the paths the real codex
    //! cannot be made to take on demand (garbage, unknown requests, a connection that dies).

    use super::*;
    use crate::agent::{FileAccess, SessionMode};
    use std::sync::Arc;

    struct NoFiles;

    impl FileAccess for NoFiles {
        fn read_text(&self, _: &Path) -> Result<String, String> {
            Err("no".into())
        }
        fn write_text(&self, _: &Path, _: &str) -> Result<(), String> {
            Err("no".into())
        }
    }

    struct Peer {
        /// What the client sent.
        sent: mpsc::UnboundedReceiver<String>,
        inbound: mpsc::UnboundedSender<Inbound>,
    }

    impl Peer {
        async fn recv(&mut self) -> Value {
            let text = tokio::time::timeout(Duration::from_secs(5), self.sent.recv())
                .await
                .expect("the client sends in time")
                .expect("the client is connected");
            serde_json::from_str(&text).unwrap()
        }

        fn send(&self, message: Value) {
            self.inbound
                .send(Inbound::Message(message.to_string()))
                .unwrap();
        }
    }

    async fn next(events: &mut mpsc::UnboundedReceiver<AgentEvent>) -> AgentEvent {
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event in time")
            .expect("events open")
    }

    async fn session(
        approval: Approval,
    ) -> (Peer, AgentHandle, mpsc::UnboundedReceiver<AgentEvent>) {
        session_in(SessionMode::Work, approval).await
    }

    async fn session_in(
        mode: SessionMode,
        approval: Approval,
    ) -> (Peer, AgentHandle, mpsc::UnboundedReceiver<AgentEvent>) {
        let (outbound, sent) = mpsc::unbounded_channel();
        let (inbound_tx, inbound) = mpsc::unbounded_channel();
        let connection = Connection {
            outbound,
            inbound,
            process: None,
        };
        let options = SessionOptions {
            cwd: "/shadow".into(),
            approval,
            mode,
            files: Arc::new(NoFiles),
            grace: Duration::from_millis(100),
        };
        let started = tokio::spawn(start_on("fake".into(), connection, options));
        let mut peer = Peer {
            sent,
            inbound: inbound_tx,
        };
        let init = peer.recv().await;
        assert_eq!(init["method"], "initialize");
        assert_eq!(init["params"]["clientInfo"]["name"], "baton");
        assert!(init.get("jsonrpc").is_none());
        assert_eq!(
            init["params"]["capabilities"]["experimentalApi"],
            mode == SessionMode::Plan,
            "only plan mode opts into the experimental API"
        );
        // Noise before the answer is skipped.
        peer.send(json!({"method": "configWarning", "params": {"summary": "x"}}));
        peer.send(json!({"id": init["id"], "result": {"userAgent": "fake"}}));
        assert_eq!(peer.recv().await, json!({"method": "initialized"}));
        let thread = peer.recv().await;
        assert_eq!(thread["method"], "thread/start");
        if mode == SessionMode::Plan {
            assert_eq!(thread["params"]["sandbox"], "read-only");
        }
        peer.send(
            json!({"id": thread["id"], "result": {"thread": {"id": "th"}, "model": "gpt-5.5"}}),
        );
        let (handle, events) = started.await.unwrap().expect("handshake");
        (peer, handle, events)
    }

    #[tokio::test]
    async fn plan_mode_traffic_plan_items_and_question_answers() {
        // Plan mode overrides even the widest approval.
        let (mut peer, handle, mut events) =
            session_in(SessionMode::Plan, Approval::AutoEdit).await;
        handle.prompt("plan it").unwrap();
        let turn_start = peer.recv().await;
        assert_eq!(turn_start["method"], "turn/start");
        assert_eq!(
            turn_start["params"]["sandboxPolicy"],
            json!({"type": "readOnly", "networkAccess": false})
        );
        assert_eq!(
            turn_start["params"]["collaborationMode"],
            json!({"mode": "plan", "settings": {"model": "gpt-5.5"}})
        );
        peer.send(json!({"id": turn_start["id"], "result": {"turn": {"id": "tu", "status": "inProgress"}}}));
        for delta in ["# Plan\n", "1. Do it\n"] {
            peer.send(
                json!({"method": "item/plan/delta", "params": {"threadId": "th",
                "turnId": "tu", "itemId": "p1", "delta": delta}}),
            );
        }
        // Another thread's plan is not ours.
        peer.send(
            json!({"method": "item/plan/delta", "params": {"threadId": "sub",
            "turnId": "x", "itemId": "p9", "delta": "not ours"}}),
        );
        peer.send(
            json!({"method": "item/completed", "params": {"threadId": "th", "turnId": "tu",
            "item": {"type": "plan", "id": "p1", "text": "# Plan\n1. Do it\n"}}}),
        );
        assert_eq!(
            next(&mut events).await,
            AgentEvent::PlanDelta("# Plan\n".into())
        );
        assert_eq!(
            next(&mut events).await,
            AgentEvent::PlanDelta("1. Do it\n".into())
        );
        assert_eq!(
            next(&mut events).await,
            AgentEvent::PlanText("# Plan\n1. Do it\n".into())
        );

        peer.send(
            json!({"id": 0, "method": "item/tool/requestUserInput", "params": {
            "threadId": "th", "turnId": "tu", "itemId": "call_1", "isBlocking": true,
            "questions": [
                {"id": "a", "header": "A", "question": "Which?", "isOther": true,
                 "isSecret": false, "options": [{"label": "X", "description": "x"},
                                                {"label": "Y", "description": "y"}]},
                {"id": "b", "header": "B", "question": "Free?", "options": null}]}}),
        );
        let AgentEvent::Questions(request) = next(&mut events).await else {
            panic!("no questions");
        };
        assert_eq!(
            request.questions,
            vec![
                UserQuestion {
                    id: "a".into(),
                    header: "A".into(),
                    question: "Which?".into(),
                    options: vec!["X".into(), "Y".into()],
                },
                UserQuestion {
                    id: "b".into(),
                    header: "B".into(),
                    question: "Free?".into(),
                    options: vec![],
                },
            ]
        );
        handle
            .answer_questions(
                request.id,
                vec![("a".into(), "Y".into()), ("b".into(), String::new())],
            )
            .unwrap();
        assert_eq!(
            peer.recv().await,
            json!({"id": 0, "result": {"answers": {"a": {"answers": ["Y"]}, "b": {"answers": []}}}})
        );

        // A second request left open is withdrawn when the turn ends.
        peer.send(
            json!({"id": 1, "method": "item/tool/requestUserInput", "params": {
            "threadId": "th", "turnId": "tu", "itemId": "call_2", "isBlocking": true,
            "questions": [{"id": "c", "header": "C", "question": "More?"}]}}),
        );
        let AgentEvent::Questions(open) = next(&mut events).await else {
            panic!("no questions");
        };
        peer.send(
            json!({"method": "turn/completed", "params": {"threadId": "th",
            "turn": {"id": "tu", "status": "interrupted", "items": []}}}),
        );
        assert_eq!(
            next(&mut events).await,
            AgentEvent::QuestionsWithdrawn { id: open.id }
        );
        assert_eq!(
            next(&mut events).await,
            AgentEvent::TurnEnded(TurnEnd::Cancelled)
        );
        // codex's `serverRequest/resolved` after the end withdraws nothing twice.
        peer.send(json!({"method": "serverRequest/resolved", "params": {"threadId": "th", "requestId": 1}}));
        handle.prompt("again").unwrap();
        let again = peer.recv().await;
        assert_eq!(again["params"]["collaborationMode"]["mode"], "plan");
        peer.send(
            json!({"id": again["id"], "result": {"turn": {"id": "tu2", "status": "inProgress"}}}),
        );
        peer.send(
            json!({"method": "turn/completed", "params": {"threadId": "th",
            "turn": {"id": "tu2", "status": "completed", "items": []}}}),
        );
        // The connection is ordered: the resolution came before this end, and added nothing.
        assert_eq!(
            next(&mut events).await,
            AgentEvent::TurnEnded(TurnEnd::Completed)
        );
    }

    #[tokio::test]
    async fn policies_per_approval() {
        for (approval, policy, sandbox, turn_sandbox) in [
            (
                Approval::AutoEdit,
                "on-request",
                "workspace-write",
                "workspaceWrite",
            ),
            (
                Approval::Ask,
                "untrusted",
                "workspace-write",
                "workspaceWrite",
            ),
            (Approval::ReadOnly, "on-request", "read-only", "readOnly"),
        ] {
            let (outbound, mut sent) = mpsc::unbounded_channel();
            let (inbound_tx, inbound) = mpsc::unbounded_channel();
            let options = SessionOptions {
                cwd: "/shadow".into(),
                approval,
                mode: SessionMode::Work,
                files: Arc::new(NoFiles),
                grace: Duration::from_millis(100),
            };
            let mut session = Session::new(
                "fake".into(),
                Connection {
                    outbound,
                    inbound,
                    process: None,
                },
                options,
            );
            inbound_tx
                .send(Inbound::Message(json!({"id": 1, "result": {}}).to_string()))
                .unwrap();
            inbound_tx
                .send(Inbound::Message(
                    json!({"id": 2, "result": {"thread": {"id": "th"}}}).to_string(),
                ))
                .unwrap();
            session.handshake().await.unwrap();
            session.start_turn("hi".into());
            let sent: Vec<Value> = std::iter::from_fn(|| sent.try_recv().ok())
                .map(|t| serde_json::from_str(&t).unwrap())
                .collect();
            let thread = &sent[2]["params"];
            assert_eq!(thread["approvalPolicy"], policy);
            assert_eq!(thread["sandbox"], sandbox);
            assert_eq!(thread["cwd"], "/shadow");
            let turn = &sent[3]["params"];
            assert_eq!(turn["threadId"], "th");
            assert_eq!(turn["input"], json!([{"type": "text", "text": "hi"}]));
            assert_eq!(turn["sandboxPolicy"]["type"], turn_sandbox);
            if turn_sandbox == "workspaceWrite" {
                assert_eq!(turn["sandboxPolicy"]["excludeSlashTmp"], true);
                assert_eq!(turn["sandboxPolicy"]["excludeTmpdirEnvVar"], true);
                assert_eq!(turn["sandboxPolicy"]["writableRoots"], json!([]));
            }
        }
    }

    #[tokio::test]
    async fn garbage_unknown_requests_approvals_and_a_dying_connection() {
        let (mut peer, handle, mut events) = session(Approval::Ask).await;

        peer.inbound
            .send(Inbound::Message("this is not json".into()))
            .unwrap();
        assert!(
            matches!(next(&mut events).await, AgentEvent::Warning(w) if w.contains("malformed"))
        );
        peer.send(json!({"method": "some/new/notification", "params": {"x": 1}}));
        peer.send(json!({"id": 9, "method": "item/tool/requestUserInput", "params": {}}));
        // Unknown notifications are ignored; an unknown request is refused, or it would block.
        let refused = peer.recv().await;
        assert_eq!(refused["id"], 9);
        assert_eq!(refused["error"]["code"], METHOD_NOT_FOUND);
        assert!(
            matches!(next(&mut events).await, AgentEvent::Warning(w) if w.contains("requestUserInput"))
        );

        handle.prompt("edit").unwrap();
        let turn_start = peer.recv().await;
        assert_eq!(turn_start["method"], "turn/start");
        // A second prompt waits for the turn to end.
        handle.prompt("later").unwrap();
        peer.send(json!({"id": turn_start["id"], "result": {"turn": {"id": "tu", "status": "inProgress"}}}));
        peer.send(json!({"method": "error", "params": {"threadId": "th", "turnId": "tu", "willRetry": true,
            "error": {"message": "Reconnecting... 1/1"}}}));
        assert_eq!(
            next(&mut events).await,
            AgentEvent::Warning("Reconnecting... 1/1".into())
        );
        // Another thread's (a sub-agent's) events are not this session's.
        peer.send(
            json!({"method": "item/agentMessage/delta", "params": {"threadId": "other",
            "turnId": "x", "itemId": "m", "delta": "not mine"}}),
        );
        peer.send(json!({"method": "item/started", "params": {"threadId": "th", "turnId": "tu",
            "startedAtMs": 1, "item": {"type": "fileChange", "id": "call_1", "status": "inProgress",
            "changes": [{"path": "/shadow/a.txt", "kind": {"type": "update", "move_path": "/shadow/b.txt"},
                         "diff": "@@ -1 +1 @@\n-a\n+b\n\n\nMoved to: /shadow/b.txt"}]}}}));
        assert!(matches!(
            next(&mut events).await,
            AgentEvent::ToolCall(ToolCall {
                status: ToolStatus::InProgress,
                kind: ToolKind::Edit,
                ..
            })
        ));
        peer.send(
            json!({"id": 0, "method": "item/fileChange/requestApproval", "params": {
            "threadId": "th", "turnId": "tu", "itemId": "call_1", "startedAtMs": 1}}),
        );
        let AgentEvent::Permission(first) = next(&mut events).await else {
            panic!("no permission");
        };
        assert_eq!(first.kind, PermissionKind::Edit);
        assert_eq!(first.title, "Edit a.txt");
        assert_eq!(
            first.detail,
            "move a.txt → b.txt\nupdate a.txt\n@@ -1 +1 @@\n-a\n+b\n"
        );
        handle
            .answer(first.id, PermissionAnswer::AllowForTask)
            .unwrap();
        assert_eq!(
            peer.recv().await,
            json!({"id": 0, "result": {"decision": "acceptForSession"}})
        );
        // A command request, resolved by codex itself before anyone answers.
        peer.send(
            json!({"id": 1, "method": "item/commandExecution/requestApproval", "params": {
            "threadId": "th", "turnId": "tu", "itemId": "call_2", "startedAtMs": 1,
            "command": "make", "cwd": "/shadow"}}),
        );
        let AgentEvent::Permission(second) = next(&mut events).await else {
            panic!("no permission");
        };
        assert_eq!(second.title, "Run `make`");
        peer.send(json!({"method": "serverRequest/resolved", "params": {"threadId": "th", "requestId": 1}}));
        assert_eq!(
            next(&mut events).await,
            AgentEvent::PermissionWithdrawn { id: second.id }
        );
        // A third is open when the connection dies.
        peer.send(json!({"id": 2, "method": "item/commandExecution/requestApproval", "params": {
            "threadId": "th", "turnId": "tu", "itemId": "call_3", "startedAtMs": 1, "command": "ls"}}));
        let AgentEvent::Permission(third) = next(&mut events).await else {
            panic!("no permission");
        };
        peer.inbound
            .send(Inbound::Closed("the app-server closed its output".into()))
            .unwrap();
        assert_eq!(
            next(&mut events).await,
            AgentEvent::PermissionWithdrawn { id: third.id }
        );
        assert!(matches!(next(&mut events).await,
            AgentEvent::TurnEnded(TurnEnd::Failed(m)) if m.contains("closed its output")));
        assert!(matches!(next(&mut events).await, AgentEvent::Exited { .. }));
        // Nothing follows Exited, and the queued prompt was dropped, not sent.
        assert!(events.recv().await.is_none());
        assert!(handle.prompt("anyone?").is_err());
    }

    /// codex 0.171's app-server offers the model no `update_plan` tool (codex-acp's embedded
    /// 0.137 does), so this mapping is checked here and not against the real codex.
    #[tokio::test]
    async fn plan_updates_replace_the_plan() {
        let (mut peer, handle, mut events) = session(Approval::AutoEdit).await;
        handle.prompt("plan").unwrap();
        let turn_start = peer.recv().await;
        peer.send(json!({"id": turn_start["id"], "result": {"turn": {"id": "tu", "status": "inProgress"}}}));
        peer.send(
            json!({"method": "turn/plan/updated", "params": {"threadId": "th", "turnId": "tu",
            "explanation": null, "plan": [{"step": "read", "status": "completed"},
                                          {"step": "edit", "status": "inProgress"},
                                          {"step": "test", "status": "pending"}]}}),
        );
        assert_eq!(
            next(&mut events).await,
            AgentEvent::Plan(vec![
                PlanEntry {
                    content: "read".into(),
                    status: PlanStatus::Completed
                },
                PlanEntry {
                    content: "edit".into(),
                    status: PlanStatus::InProgress
                },
                PlanEntry {
                    content: "test".into(),
                    status: PlanStatus::Pending
                },
            ])
        );
        // An agent message that streamed no deltas still arrives, whole.
        peer.send(json!({"method": "item/completed", "params": {"threadId": "th", "turnId": "tu",
            "completedAtMs": 1, "item": {"type": "agentMessage", "id": "m1", "text": "all at once"}}}));
        assert_eq!(
            next(&mut events).await,
            AgentEvent::Message("all at once".into())
        );
    }

    #[tokio::test]
    async fn cancel_before_the_turn_id_is_known_interrupts_once_it_is() {
        let (mut peer, handle, mut events) = session(Approval::AutoEdit).await;
        handle.prompt("go").unwrap();
        let turn_start = peer.recv().await;
        handle.cancel().unwrap();
        peer.send(json!({"id": turn_start["id"], "result": {"turn": {"id": "tu", "status": "inProgress"}}}));
        let interrupt = peer.recv().await;
        assert_eq!(interrupt["method"], "turn/interrupt");
        assert_eq!(
            interrupt["params"],
            json!({"threadId": "th", "turnId": "tu"})
        );
        peer.send(json!({"id": interrupt["id"], "result": {}}));
        peer.send(
            json!({"method": "turn/completed", "params": {"threadId": "th",
            "turn": {"id": "tu", "status": "interrupted", "error": null}}}),
        );
        assert_eq!(
            next(&mut events).await,
            AgentEvent::TurnEnded(TurnEnd::Cancelled)
        );
        // A failed turn carries codex's message.
        handle.prompt("again").unwrap();
        let turn_start = peer.recv().await;
        peer.send(json!({"id": turn_start["id"], "result": {"turn": {"id": "t2", "status": "inProgress"}}}));
        peer.send(
            json!({"method": "turn/completed", "params": {"threadId": "th",
            "turn": {"id": "t2", "status": "failed", "error": {"message": "high demand"}}}}),
        );
        assert_eq!(
            next(&mut events).await,
            AgentEvent::TurnEnded(TurnEnd::Failed("high demand".into()))
        );
        // Shutdown closes the connection (the peer sees its outbound end) and says Exited.
        let shutdown = tokio::spawn({
            let handle = handle.clone();
            async move { handle.shutdown().await }
        });
        assert!(
            tokio::time::timeout(Duration::from_secs(5), peer.sent.recv())
                .await
                .unwrap()
                .is_none()
        );
        peer.inbound.send(Inbound::Closed("bye".into())).unwrap();
        shutdown.await.unwrap();
        assert!(matches!(next(&mut events).await, AgentEvent::Exited { .. }));
    }
}
