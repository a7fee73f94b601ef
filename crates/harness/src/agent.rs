//! One task abstraction over every agent transport.
//!
//! [`start`] launches (or connects to) the agent named by an [`AgentSpec`], initializes the
//! protocol and opens one session (ACP `session/new`) or thread (app-server `thread/start`) in
//! [`SessionOptions::cwd`]. From then on the [`AgentHandle`] sends commands and the agent's
//! [`AgentEvent`]s arrive, in protocol order, on the receiver returned beside it. The receiver
//! ends after [`AgentEvent::Exited`].
//!
//! The events are the union of what the transports report, in baton's terms: text, plan entries,
//! tool calls, file changes (the early signal that the shadow changed; the server diffs the
//! shadow as ground truth), commands, permission requests and turn ends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// Which protocol an agent speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    /// Agent Client Protocol over the child's stdio (`codex-acp`, `claude-agent-acp`, …).
    Acp,
    /// `codex app-server`: over the child's stdio, or over a WebSocket with `connect`.
    CodexAppServer,
}

/// How to start or reach one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// The name from `harness.agents`, for messages.
    pub name: String,
    pub kind: AgentKind,
    /// Program and arguments. Empty when `connect` is set.
    pub command: Vec<String>,
    /// Extra environment for the child.
    pub env: Vec<(String, String)>,
    /// `ws://host:port` of an app-server started elsewhere (CodexAppServer only).
    pub connect: Option<String>,
}

/// What the agent may do without asking (`harness.approval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Approval {
    /// Edits inside the working directory are accepted (nothing reaches the real tree except
    /// through the editor); commands run under the agent's sandbox; leaving it asks.
    #[default]
    AutoEdit,
    /// Every edit and command asks.
    Ask,
    /// The agent may read but not write or run anything that writes.
    ReadOnly,
}

/// What the session is for (`baton.plan` versus a task).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionMode {
    /// The agent does the work: edits and commands under [`Approval`].
    #[default]
    Work,
    /// The agent plans and asks, and changes nothing. The app-server runs the thread read-only
    /// with codex's plan collaboration mode (the plan streams as [`AgentEvent::PlanDelta`],
    /// questions arrive as [`AgentEvent::Questions`]); an ACP agent is switched to its plan mode
    /// when it advertises one, else to its read-only mode with a warning that plan mode rests
    /// on the prompt alone there. Plan mode ignores [`SessionOptions::approval`]: it is
    /// always read-only.
    Plan,
}

/// The session an agent opens.
#[derive(Clone)]
pub struct SessionOptions {
    /// The directory the agent works in: the shadow copy for a local agent (also the child's
    /// process cwd, since codex-acp's writable root is its process cwd), or the directory on
    /// the remote machine for `connect`.
    pub cwd: PathBuf,
    pub approval: Approval,
    pub mode: SessionMode,
    /// Serves ACP `fs/read_text_file` / `fs/write_text_file` for agents that use them.
    pub files: Arc<dyn FileAccess>,
    /// How long a cancelled or shut-down agent gets before its process is killed.
    pub grace: Duration,
}

/// Reads and writes that an agent makes through the protocol instead of the disk (ACP `fs/*`).
/// Reads come from the user's buffers (unsaved text wins); writes go into the shadow.
pub trait FileAccess: Send + Sync {
    /// The text of `path` (absolute, inside the session's cwd) as the user has it.
    fn read_text(&self, path: &Path) -> Result<String, String>;
    /// Writes `text` to `path` in the shadow. Paths outside the shadow are refused.
    fn write_text(&self, path: &Path, text: &str) -> Result<(), String>;
}

/// An identifier of a tool call or item, as the agent gave it.
pub type ItemId = String;

/// Something the agent did or said, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// A chunk of the agent's message text.
    Message(String),
    /// The agent's plan, replaced whole on each update.
    Plan(Vec<PlanEntry>),
    /// A chunk of a proposed plan's Markdown as it streams (app-server plan mode: the
    /// `item/plan/delta` of a `plan` item).
    PlanDelta(String),
    /// A proposed plan's whole Markdown once its item completed. codex says this text is
    /// authoritative: it may differ from the concatenated deltas.
    PlanText(String),
    /// The agent asks the user questions and waits (app-server plan mode:
    /// `item/tool/requestUserInput`). Answer with [`AgentHandle::answer_questions`].
    Questions(QuestionRequest),
    /// A question request is no longer waited for (the turn was cancelled or ended).
    QuestionsWithdrawn { id: QuestionId },
    /// A tool call started or changed status.
    ToolCall(ToolCall),
    /// The agent reports that it changed files (an item or tool call completed). For a local
    /// agent this is the signal to diff the shadow; `changes` carries what the protocol said,
    /// which a remote agent's changes are landed from.
    FilesChanged {
        item: ItemId,
        changes: Vec<ReportedChange>,
    },
    /// A command the agent ran finished (or was declined).
    Command {
        item: ItemId,
        command: String,
        exit_code: Option<i32>,
        /// The end of its output, for the task document.
        output_tail: String,
    },
    /// The agent asks for permission. Answer with [`AgentHandle::answer`]; the turn waits.
    Permission(PermissionRequest),
    /// A permission request was withdrawn (the turn was cancelled or ended).
    PermissionWithdrawn { id: PermissionId },
    /// A git-style diff of the whole turn so far (app-server `turn/diff/updated`).
    TurnDiff(String),
    /// A problem the agent reported that did not end the turn (a retried model error, a
    /// malformed message that was skipped).
    Warning(String),
    /// The turn ended.
    TurnEnded(TurnEnd),
    /// The agent's process or connection is gone; nothing follows.
    Exited { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEntry {
    pub content: String,
    pub status: PlanStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStatus {
    Pending,
    InProgress,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: ItemId,
    pub title: String,
    pub kind: ToolKind,
    pub status: ToolStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    Edit,
    Execute,
    Read,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolStatus {
    Pending,
    InProgress,
    Completed,
    Failed,
}

/// A file change as the protocol described it. Paths are as the agent gave them (absolute in
/// its cwd, usually); the server resolves and checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedChange {
    pub path: PathBuf,
    pub kind: ReportedKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportedKind {
    /// A new file with this content.
    Add { content: String },
    /// The file was deleted.
    Delete,
    /// Unified hunks (without file headers) against the file before the change; `move_path`
    /// when the file was also moved.
    Update {
        unified_diff: String,
        move_path: Option<PathBuf>,
    },
}

/// An identifier of a permission request, unique within one agent connection.
pub type PermissionId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRequest {
    pub id: PermissionId,
    pub kind: PermissionKind,
    /// One line saying what is asked ("Edit src/lib.rs", "Run `cargo test`").
    pub title: String,
    /// More detail (the diff, the command line, the reason), possibly empty.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionKind {
    Edit,
    Command,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionAnswer {
    AllowOnce,
    AllowForTask,
    Deny,
}

/// An identifier of a question request, unique within one agent connection.
pub type QuestionId = u64;

/// Questions the agent asks at once; it waits for all the answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionRequest {
    pub id: QuestionId,
    pub questions: Vec<UserQuestion>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuestion {
    /// The agent's id for the question: the key of its answer.
    pub id: String,
    /// A short label (codex asks for 12 characters or fewer).
    pub header: String,
    pub question: String,
    /// The choices it offers (their labels), recommended first; a free answer is allowed too.
    pub options: Vec<String>,
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEnd {
    Completed,
    Cancelled,
    Failed(String),
}

/// Why the agent could not be started or a command could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("could not start agent `{agent}`: {reason}")]
    Spawn { agent: String, reason: String },
    #[error("agent `{agent}` failed to start a session: {reason}")]
    Handshake { agent: String, reason: String },
    #[error("agent `{agent}` is no longer running")]
    Gone { agent: String },
    #[error("{0}")]
    Unsupported(String),
}

/// What an [`AgentHandle`] asks its transport to do.
#[derive(Debug)]
pub enum AgentCommand {
    /// Start a turn with this text (a follow-up continues the same session/thread).
    Prompt(String),
    /// Interrupt the running turn (app-server `turn/interrupt`, ACP `session/cancel`).
    Cancel,
    Answer {
        id: PermissionId,
        answer: PermissionAnswer,
    },
    /// Answers to a [`QuestionRequest`]: (question id, answer text) pairs.
    AnswerQuestions {
        id: QuestionId,
        answers: Vec<(String, String)>,
    },
    /// Cancel, wait up to the grace period for the process to leave, then kill it. Answered
    /// once the process is gone.
    Shutdown(oneshot::Sender<()>),
}

/// Sends commands to one running agent session. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AgentHandle {
    pub(crate) name: String,
    pub(crate) commands: mpsc::UnboundedSender<AgentCommand>,
    pub(crate) pid: Option<u32>,
}

impl AgentHandle {
    /// A handle whose commands go to `commands` (the transport's task reads them).
    pub fn new(
        name: String,
        commands: mpsc::UnboundedSender<AgentCommand>,
        pid: Option<u32>,
    ) -> AgentHandle {
        AgentHandle {
            name,
            commands,
            pid,
        }
    }

    /// The agent's process id, when baton started it.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    fn send(&self, command: AgentCommand) -> Result<(), AgentError> {
        self.commands.send(command).map_err(|_| AgentError::Gone {
            agent: self.name.clone(),
        })
    }

    pub fn prompt(&self, text: impl Into<String>) -> Result<(), AgentError> {
        self.send(AgentCommand::Prompt(text.into()))
    }

    pub fn cancel(&self) -> Result<(), AgentError> {
        self.send(AgentCommand::Cancel)
    }

    pub fn answer(&self, id: PermissionId, answer: PermissionAnswer) -> Result<(), AgentError> {
        self.send(AgentCommand::Answer { id, answer })
    }

    /// Answers the questions of request `id`: (question id, answer) pairs. A question left out,
    /// or answered with empty text, goes back unanswered; the agent carries on either way.
    pub fn answer_questions(
        &self,
        id: QuestionId,
        answers: Vec<(String, String)>,
    ) -> Result<(), AgentError> {
        self.send(AgentCommand::AnswerQuestions { id, answers })
    }

    /// Stops the agent: cancel, grace period, kill. Returns once its process is gone (at once
    /// when it already is).
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.send(AgentCommand::Shutdown(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// Starts the agent and opens a session in `options.cwd`.
pub async fn start(
    spec: &AgentSpec,
    options: SessionOptions,
) -> Result<(AgentHandle, mpsc::UnboundedReceiver<AgentEvent>), AgentError> {
    match spec.kind {
        AgentKind::Acp => crate::acp::start(spec, options).await,
        AgentKind::CodexAppServer => crate::app_server::start(spec, options).await,
    }
}
