//! The subset of the `codex app-server` protocol baton speaks, as serde types.
//!
//! Written against the schema `codex app-server generate-json-schema` prints for
//! [`CODEX_VERSION_CHECKED`]; `schema_subset.json` beside this file is a trimmed copy of exactly
//! the methods, fields and enum values used here, and the `schema_subset_matches_installed_codex`
//! test checks it against whatever codex is installed, so an upgrade that breaks the subset fails
//! loudly instead of silently dropping events.
//!
//! Incoming types are lenient on purpose: fields baton does not read are ignored, and optional
//! fields default, so additive protocol changes do not break parsing. Outgoing types send only
//! what baton decides; everything else is left to codex's defaults.

use serde::{Deserialize, Serialize};

/// The codex version these types were checked against.
pub const CODEX_VERSION_CHECKED: &str = "0.171.0";

/// The trimmed schema copy the compatibility test compares with the installed codex.
pub const SCHEMA_SUBSET: &str = include_str!("schema_subset.json");

// Method names, in one place so the schema test and the client agree.
pub const INITIALIZE: &str = "initialize";
pub const INITIALIZED: &str = "initialized";
pub const THREAD_START: &str = "thread/start";
pub const TURN_START: &str = "turn/start";
pub const TURN_INTERRUPT: &str = "turn/interrupt";
pub const TURN_STARTED: &str = "turn/started";
pub const TURN_COMPLETED: &str = "turn/completed";
pub const TURN_DIFF_UPDATED: &str = "turn/diff/updated";
pub const TURN_PLAN_UPDATED: &str = "turn/plan/updated";
pub const ITEM_STARTED: &str = "item/started";
pub const ITEM_COMPLETED: &str = "item/completed";
pub const AGENT_MESSAGE_DELTA: &str = "item/agentMessage/delta";
pub const PLAN_DELTA: &str = "item/plan/delta";
pub const ERROR: &str = "error";
pub const SERVER_REQUEST_RESOLVED: &str = "serverRequest/resolved";
pub const FILE_CHANGE_APPROVAL: &str = "item/fileChange/requestApproval";
pub const COMMAND_APPROVAL: &str = "item/commandExecution/requestApproval";
pub const REQUEST_USER_INPUT: &str = "item/tool/requestUserInput";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    pub client_info: ClientInfo,
    pub capabilities: InitializeCapabilities,
}

#[derive(Debug, Serialize)]
pub struct ClientInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeCapabilities {
    /// On only in plan mode: `collaborationMode`, plan items and `requestUserInput` are
    /// experimental, and codex rejects experimental fields without it. Work sessions keep to
    /// the stable surface.
    pub experimental_api: bool,
}

/// `approvalPolicy` (`AskForApproval`): when codex asks before acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AskForApproval {
    #[serde(rename = "untrusted")]
    Untrusted,
    #[serde(rename = "on-request")]
    OnRequest,
    #[serde(rename = "never")]
    Never,
}

/// `sandbox` of `thread/start` (`SandboxMode`, kebab-case, unlike the turn's `SandboxPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxMode {
    #[serde(rename = "read-only")]
    ReadOnly,
    #[serde(rename = "workspace-write")]
    WorkspaceWrite,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadStartParams {
    pub cwd: String,
    pub approval_policy: AskForApproval,
    pub sandbox: SandboxMode,
    /// No rollout file in the user's CODEX_HOME for a thread that lives in a shadow copy.
    pub ephemeral: bool,
}

#[derive(Debug, Deserialize)]
pub struct ThreadStartResponse {
    pub thread: Thread,
    /// The model the thread runs: plan mode's `settings.model` must name it.
    #[serde(default)]
    pub model: String,
}

#[derive(Debug, Deserialize)]
pub struct Thread {
    pub id: String,
}

/// A turn's `sandboxPolicy` (camelCase tags, unlike [`SandboxMode`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SandboxPolicy {
    #[serde(rename_all = "camelCase")]
    ReadOnly { network_access: bool },
    #[serde(rename_all = "camelCase")]
    WorkspaceWrite {
        /// Extra roots besides the thread's cwd; baton adds none.
        writable_roots: Vec<String>,
        network_access: bool,
        /// Without these two, `/tmp` and `$TMPDIR` are writable too (harness.md "Shadow
        /// workspace"): the agent could write outside its copy.
        exclude_slash_tmp: bool,
        exclude_tmpdir_env_var: bool,
    },
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum UserInput {
    Text { text: String },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnStartParams {
    pub thread_id: String,
    pub input: Vec<UserInput>,
    pub sandbox_policy: SandboxPolicy,
    /// Plan mode only (experimental). Like the other turn settings it sticks to later turns,
    /// so every turn of a plan session carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collaboration_mode: Option<CollaborationMode>,
}

/// `collaborationMode` of `turn/start`: a preset that replaces the model's developer
/// instructions for the turn (plan mode: ask, then answer with a `<proposed_plan>` block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollaborationMode {
    pub mode: ModeKind,
    pub settings: CollaborationSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ModeKind {
    Plan,
}

/// The mode's `settings` (snake_case fields, unlike the rest of v2). `model` is required;
/// `developer_instructions` left out means codex's built-in instructions for the mode, and
/// `reasoning_effort` left out the model's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollaborationSettings {
    pub model: String,
}

#[derive(Debug, Deserialize)]
pub struct TurnStartResponse {
    pub turn: Turn,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnInterruptParams {
    pub thread_id: String,
    pub turn_id: String,
}

#[derive(Debug, Deserialize)]
pub struct Turn {
    pub id: String,
    pub status: TurnStatus,
    #[serde(default)]
    pub error: Option<TurnError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TurnStatus {
    Completed,
    Interrupted,
    Failed,
    InProgress,
}

#[derive(Debug, Deserialize)]
pub struct TurnError {
    pub message: String,
}

/// `turn/started` and `turn/completed`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnNotification {
    pub thread_id: String,
    pub turn: Turn,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnDiffUpdatedNotification {
    pub thread_id: String,
    pub diff: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnPlanUpdatedNotification {
    pub thread_id: String,
    pub plan: Vec<TurnPlanStep>,
}

#[derive(Debug, Deserialize)]
pub struct TurnPlanStep {
    pub step: String,
    pub status: TurnPlanStepStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TurnPlanStepStatus {
    Pending,
    InProgress,
    Completed,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentMessageDeltaNotification {
    pub thread_id: String,
    pub item_id: String,
    pub delta: String,
}

/// `item/plan/delta`: a chunk of a `plan` item's text.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanDeltaNotification {
    pub thread_id: String,
    pub item_id: String,
    pub delta: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorNotification {
    pub error: TurnError,
    pub will_retry: bool,
    pub thread_id: String,
}

/// `item/started` and `item/completed`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemNotification {
    pub thread_id: String,
    pub item: ThreadItem,
}

/// The item kinds baton reads; every other kind (user messages, reasoning, MCP calls, …)
/// lands in `Other` and is ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ThreadItem {
    #[serde(rename_all = "camelCase")]
    AgentMessage { id: String, text: String },
    /// A proposed plan (plan mode): the Markdown inside the model's `<proposed_plan>` block,
    /// which codex cuts out of the agent message around it.
    #[serde(rename_all = "camelCase")]
    Plan { id: String, text: String },
    #[serde(rename_all = "camelCase")]
    FileChange {
        id: String,
        changes: Vec<FileUpdateChange>,
        status: ItemStatus,
    },
    #[serde(rename_all = "camelCase")]
    CommandExecution {
        id: String,
        command: String,
        status: ItemStatus,
        #[serde(default)]
        exit_code: Option<i32>,
        #[serde(default)]
        aggregated_output: Option<String>,
    },
    #[serde(other)]
    Other,
}

/// `PatchApplyStatus` and `CommandExecutionStatus` (the same four values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ItemStatus {
    InProgress,
    Completed,
    Failed,
    Declined,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileUpdateChange {
    pub path: String,
    pub kind: PatchChangeKind,
    /// `add`: the new content; `delete`: the old content; `update`: unified hunks without file
    /// headers (plus `"\n\nMoved to: <path>"` for a move).
    pub diff: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum PatchChangeKind {
    Add,
    Delete,
    Update {
        #[serde(default)]
        move_path: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileChangeRequestApprovalParams {
    pub thread_id: String,
    pub item_id: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub grant_root: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandExecutionRequestApprovalParams {
    pub thread_id: String,
    pub item_id: String,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `item/tool/requestUserInput`: the model called `request_user_input`; the turn waits for
/// the answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolRequestUserInputParams {
    pub thread_id: String,
    pub item_id: String,
    pub questions: Vec<ToolRequestUserInputQuestion>,
}

#[derive(Debug, Deserialize)]
pub struct ToolRequestUserInputQuestion {
    pub id: String,
    pub header: String,
    pub question: String,
    #[serde(default)]
    pub options: Option<Vec<ToolRequestUserInputOption>>,
}

#[derive(Debug, Deserialize)]
pub struct ToolRequestUserInputOption {
    pub label: String,
    #[serde(default)]
    pub description: String,
}

/// The answer: question id → the answers (codex hands this JSON to the model verbatim as the
/// tool call's output).
#[derive(Debug, Serialize)]
pub struct ToolRequestUserInputResponse {
    pub answers: std::collections::BTreeMap<String, ToolRequestUserInputAnswer>,
}

#[derive(Debug, Serialize)]
pub struct ToolRequestUserInputAnswer {
    pub answers: Vec<String>,
}

/// `serverRequest/resolved`: codex no longer waits for the answer to one of its requests.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerRequestResolvedNotification {
    pub request_id: serde_json::Value,
}

/// The answer to both approval requests (`FileChangeApprovalDecision` and
/// `CommandExecutionApprovalDecision` share these values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ApprovalDecision {
    Accept,
    AcceptForSession,
    Decline,
}

#[derive(Debug, Serialize)]
pub struct ApprovalResponse {
    pub decision: ApprovalDecision,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sandbox_policy_serializes_as_the_shadow_run_sent_it() {
        let policy = SandboxPolicy::WorkspaceWrite {
            writable_roots: vec![],
            network_access: false,
            exclude_slash_tmp: true,
            exclude_tmpdir_env_var: true,
        };
        assert_eq!(
            serde_json::to_value(&policy).unwrap(),
            json!({"type": "workspaceWrite", "writableRoots": [], "networkAccess": false,
                   "excludeSlashTmp": true, "excludeTmpdirEnvVar": true})
        );
        assert_eq!(
            serde_json::to_value(SandboxMode::WorkspaceWrite).unwrap(),
            json!("workspace-write")
        );
        assert_eq!(
            serde_json::to_value(AskForApproval::OnRequest).unwrap(),
            json!("on-request")
        );
    }

    #[test]
    fn items_from_the_transcripts_parse() {
        let item: ThreadItem = serde_json::from_value(json!({"type": "fileChange", "id": "call_2",
            "changes": [{"path": "/r/gone.txt", "kind": {"type": "delete"}, "diff": "x\n"},
                        {"path": "/r/old.txt", "kind": {"type": "update", "move_path": "/r/moved.txt"},
                         "diff": "@@ -1 +1 @@\n-a\n+b\n\n\nMoved to: /r/moved.txt"}],
            "status": "completed", "startedAtMs": 1, "completedAtMs": 2}))
        .unwrap();
        let ThreadItem::FileChange {
            changes, status, ..
        } = item
        else {
            panic!("not a file change");
        };
        assert_eq!(status, ItemStatus::Completed);
        assert!(matches!(changes[0].kind, PatchChangeKind::Delete));
        assert!(
            matches!(&changes[1].kind, PatchChangeKind::Update { move_path: Some(p) } if p == "/r/moved.txt")
        );
        let other: ThreadItem =
            serde_json::from_value(json!({"type": "reasoning", "id": "r", "summary": []})).unwrap();
        assert!(matches!(other, ThreadItem::Other));
    }
}
