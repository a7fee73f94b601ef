//! Agent tasks: `baton.task` hands work to an external agent and lands its changes in the
//! editor.
//!
//! A task prepares the shadow workspace (a copy of the workspace with the user's unsaved
//! buffers, secrets left out), starts the agent there through [`harness::agent`], opens the
//! task document ([`document`]) and sends the instruction. Then one loop reacts to:
//! - the agent's events: text and plan into the document; a file change makes the shadow be
//!   diffed against its base and the difference landed ([`landing`]); at every turn's end the
//!   diff runs again as ground truth; permission requests follow `harness.approval`;
//! - the user: cancel (the job token's progress cancel or `baton.cancel`), replies, answers to
//!   permission requests, undo and keep (code actions and commands);
//! - a timer that brings the task document up to date at a bounded rate.
//!
//! A remote agent (`connect = "ws://…"`) has no local shadow: its changes are landed from the
//! diffs the protocol reports, applied to the text baton knows for each file.

pub mod document;
pub mod files;
pub mod landing;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use harness::agent::{
    self, AgentEvent, AgentHandle, AgentKind, AgentSpec, Approval, PermissionAnswer, PermissionId,
    PermissionKind, ReportedChange, ReportedKind, SessionMode, SessionOptions, TurnEnd,
};
use harness::changes::{Change, Limits, Refusal};
use harness::shadow::{Shadow, ShadowOptions};

use crate::config::{AgentKindSetting, ApprovalPolicy, HarnessSettings, Resolved};
use crate::error::Error;
use crate::frontend::{Frontend, MessageLevel};
use crate::jobs::sleep_until;
use crate::live_document::LiveDocument;
use crate::session::Session;

use document::{PermissionEntry, TaskLog, one_line};
use landing::Lander;

/// Running and finished tasks of this session, by id.
#[derive(Default)]
pub struct Tasks {
    next: AtomicU64,
    tasks: DashMap<u64, Arc<TaskEntry>>,
}

/// What commands and code actions need of a task.
pub struct TaskEntry {
    pub id: u64,
    /// The task document.
    pub document: PathBuf,
    pub root: PathBuf,
    pub log: Arc<Mutex<TaskLog>>,
    control: mpsc::UnboundedSender<Control>,
    /// Workspace-relative paths this task changed.
    changed: Mutex<Vec<String>>,
    /// The token of the turn running now, if any (what `baton.cancel` cancels).
    pub job: Mutex<Option<String>>,
    /// The whole diff of the task (base → agent), kept up to date for `baton.task.diff`.
    diff: Mutex<String>,
    /// The agent, once started: what [`Tasks::shutdown`] stops.
    agent: Mutex<Option<AgentHandle>>,
    /// Held by the task until its agent has started (or it gave up), so that
    /// [`Tasks::shutdown`] can wait for an agent that is still starting.
    starting: Arc<tokio::sync::Mutex<()>>,
    /// Cancelled by [`Tasks::shutdown`]: an agent not started yet never starts, and one in
    /// its handshake is stopped.
    stop: CancellationToken,
}

/// What the user asks of a running task.
#[derive(Debug)]
pub enum Control {
    Reply(String),
    Permission {
        id: PermissionId,
        answer: PermissionAnswer,
        how: String,
    },
    Undo(Option<String>),
    Keep,
}

impl Tasks {
    pub fn get(&self, id: u64) -> Option<Arc<TaskEntry>> {
        self.tasks.get(&id).map(|entry| entry.clone())
    }

    /// The task whose document is `path`.
    pub fn by_document(&self, path: &Path) -> Option<Arc<TaskEntry>> {
        self.tasks
            .iter()
            .find(|entry| entry.document == path)
            .map(|entry| entry.clone())
    }

    /// Tasks that changed the file at `path`, newest first.
    pub fn touching(&self, path: &Path) -> Vec<Arc<TaskEntry>> {
        let mut found: Vec<_> = self
            .tasks
            .iter()
            .filter(|entry| {
                path.strip_prefix(&entry.root).is_ok_and(|relative| {
                    let relative = relative.to_string_lossy().replace('\\', "/");
                    entry
                        .changed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .contains(&relative)
                })
            })
            .map(|entry| entry.clone())
            .collect();
        found.sort_by_key(|entry| std::cmp::Reverse(entry.id));
        found
    }

    /// Stops every task's agent and waits until each is gone (interrupt, grace period, then
    /// kill): the server is going away, and an agent that ignores stdin EOF (codex-acp) or
    /// SIGTERM would outlive it.
    pub async fn shutdown(&self) {
        let entries: Vec<Arc<TaskEntry>> = self.tasks.iter().map(|e| e.value().clone()).collect();
        for entry in &entries {
            entry.stop.cancel();
        }
        for entry in &entries {
            let _started = entry.starting.lock().await;
        }
        let agents: Vec<AgentHandle> = entries
            .iter()
            .filter_map(|entry| {
                entry
                    .agent
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
            })
            .collect();
        futures::future::join_all(agents.iter().map(AgentHandle::shutdown)).await;
    }

    pub fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.tasks.iter().map(|entry| *entry.key()).collect();
        ids.sort_unstable();
        ids
    }

    /// Every task of this session, oldest first, as `baton.tasks` answers: its number, title,
    /// status and agent (from the task's log) and its document's URI.
    pub fn list(&self) -> Vec<Value> {
        self.ids()
            .into_iter()
            .filter_map(|id| self.get(id))
            .map(|entry| {
                let log = entry.log.lock().unwrap_or_else(|p| p.into_inner());
                json!({
                    "task": entry.id,
                    "title": log.title,
                    "status": log.status,
                    "agent": log.agent,
                    "document": crate::lsp::proto::file_uri(&entry.document).map(|uri| uri.to_string()),
                })
            })
            .collect()
    }
}

impl TaskEntry {
    pub fn send(&self, control: Control) -> Result<(), Error> {
        self.control
            .send(control)
            .map_err(|_| Error::InvalidArguments(format!("task {} has ended", self.id)))
    }

    pub fn diff(&self) -> String {
        self.diff.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What `baton.task` was asked.
#[derive(Debug, Clone, Default)]
pub struct TaskRequest {
    pub instruction: String,
    pub agent: Option<String>,
    /// The file and 1-based lines the user pointed at, for the prompt.
    pub focus: Option<(PathBuf, Option<(usize, usize)>)>,
    /// The task document's title (default: the instruction's first line).
    pub title: Option<String>,
    /// The plan this task executes: its progress ticks that plan's checklist.
    pub plan: Option<PlanLink>,
}

/// A task executing steps of a plan document.
#[derive(Debug, Clone)]
pub struct PlanLink {
    pub document: PathBuf,
    /// The text of each step executed, as the plan had them when execution started.
    pub steps: Vec<String>,
}

/// The agent named `name` (or the default) as the harness starts it.
pub fn agent_spec(harness: &HarnessSettings, name: Option<&str>) -> Result<AgentSpec, Error> {
    let name = name.unwrap_or(&harness.agent);
    let settings = harness.agents.get(name).ok_or_else(|| {
        Error::InvalidArguments(format!(
            "no agent `{name}` in harness.agents (known: {})",
            harness
                .agents
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if settings.connect.is_none() && settings.command.is_empty() {
        return Err(Error::InvalidArguments(format!(
            "harness.agents.{name} has neither a command nor connect"
        )));
    }
    if settings.connect.is_some() && settings.kind != AgentKindSetting::CodexAppServer {
        return Err(Error::InvalidArguments(format!(
            "harness.agents.{name}: connect works with kind = \"codex-app-server\" only"
        )));
    }
    Ok(AgentSpec {
        name: name.to_string(),
        kind: match settings.kind {
            AgentKindSetting::CodexAppServer => AgentKind::CodexAppServer,
            AgentKindSetting::Acp => AgentKind::Acp,
        },
        command: settings.command.clone(),
        env: settings
            .env
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        connect: settings.connect.clone(),
    })
}

fn approval(policy: ApprovalPolicy) -> Approval {
    match policy {
        ApprovalPolicy::AutoEdit => Approval::AutoEdit,
        ApprovalPolicy::Ask => Approval::Ask,
        ApprovalPolicy::ReadOnly => Approval::ReadOnly,
    }
}

/// Where baton keeps its own files: task documents, shadows.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BATON_STATE_DIR") {
        return PathBuf::from(dir);
    }
    dirs::state_dir()
        .or_else(dirs::cache_dir)
        .unwrap_or_else(|| std::env::temp_dir().join("baton-state"))
        .join("baton")
}

/// A short stable name for a workspace, for its shadow directory.
fn workspace_key(root: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    root.hash(&mut hasher);
    let name: String = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(32)
        .collect();
    format!("{name}-{:016x}", hasher.finish())
}

/// The workspace's path on the machine of a remote agent (`connect`).
pub fn remote_cwd(harness: &HarnessSettings, spec: &AgentSpec, root: &Path) -> PathBuf {
    harness
        .agents
        .get(&spec.name)
        .and_then(|agent| agent.remote_cwd.clone())
        .map(PathBuf::from)
        .unwrap_or_else(|| root.to_path_buf())
}

/// Prepares a shadow workspace of `root` for an agent: the workspace with the user's unsaved
/// buffers, `never_send` files left out, in one free slot of baton's state directory.
pub async fn prepare_shadow(
    session: &Session,
    config: &Resolved,
    root: &Path,
) -> Result<Arc<Shadow>, String> {
    let never_send = config.never_send.clone();
    let overlay: Vec<(PathBuf, String)> = session
        .documents
        .open_texts()
        .into_iter()
        .filter(|(path, _)| path.starts_with(root))
        .collect();
    let options = ShadowOptions {
        workspace: root.to_path_buf(),
        dir: state_dir().join("shadows").join(workspace_key(root)),
        overlay,
        exclude: Arc::new(move |relative: &Path| never_send.matches(relative, None)),
        limits: Limits {
            max_file_bytes: config.config.harness.max_file_bytes,
        },
    };
    tokio::task::spawn_blocking(move || Shadow::prepare(&options))
        .await
        .map_err(|err| err.to_string())?
        .map(|(shadow, stats)| {
            tracing::info!(?stats, "shadow workspace ready");
            Arc::new(shadow)
        })
        .map_err(|err| err.to_string())
}

/// Starts a task; returns at once with its id and document.
pub fn start(
    session: Arc<Session>,
    frontend: Arc<dyn Frontend>,
    request: TaskRequest,
) -> Result<Value, Error> {
    let root = session.root().ok_or_else(|| {
        Error::InvalidArguments("a task needs a workspace folder; none was given".into())
    })?;
    let config = session.config();
    let spec = agent_spec(&config.config.harness, request.agent.as_deref())?;
    let id = session.tasks.next.fetch_add(1, Ordering::Relaxed) + 1;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default();
    let dir = state_dir().join("tasks");
    std::fs::create_dir_all(&dir).map_err(|err| {
        Error::InvalidArguments(format!("cannot create {}: {err}", dir.display()))
    })?;
    let document = dir.join(format!("task-{stamp}-{id}.md"));
    let log = Arc::new(Mutex::new(TaskLog {
        title: text::boundary::display_prefix(
            request
                .title
                .as_deref()
                .unwrap_or_else(|| request.instruction.lines().next().unwrap_or("")),
            60,
        )
        .to_string(),
        agent: spec.name.clone(),
        status: "starting".into(),
        prompts: vec![request.instruction.clone()],
        messages: vec![String::new()],
        ..TaskLog::default()
    }));
    let first = log.lock().unwrap_or_else(|p| p.into_inner()).render();
    std::fs::write(&document, &first).map_err(|err| {
        Error::InvalidArguments(format!("cannot write {}: {err}", document.display()))
    })?;
    let (control, controls) = mpsc::unbounded_channel();
    let entry = Arc::new(TaskEntry {
        id,
        document: document.clone(),
        root: root.clone(),
        log: log.clone(),
        control,
        changed: Mutex::new(Vec::new()),
        job: Mutex::new(None),
        diff: Mutex::new(String::new()),
        agent: Mutex::new(None),
        starting: Arc::new(tokio::sync::Mutex::new(())),
        stop: CancellationToken::new(),
    });
    let starting = entry
        .starting
        .clone()
        .try_lock_owned()
        .expect("a new task's lock is free");
    session.tasks.tasks.insert(id, entry.clone());
    let (token, cancel) = session.jobs.start();
    *entry.job.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
    let run = TaskRun {
        session: session.clone(),
        frontend: frontend.clone(),
        entry: entry.clone(),
        spec,
        config,
        root,
        request,
        document: LiveDocument::new(document.clone(), first),
    };
    let title = format!("baton task {id}");
    crate::job_guard::spawn(session, frontend, token.clone(), title, move |frontend| {
        run.run(frontend, token, cancel, controls, starting)
    });
    Ok(json!({
        "task": id,
        "job": entry.job.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        "document": crate::lsp::proto::file_uri(&document).map(|uri| uri.to_string()),
    }))
}

/// One task's state while it runs.
struct TaskRun {
    session: Arc<Session>,
    frontend: Arc<dyn Frontend>,
    entry: Arc<TaskEntry>,
    spec: AgentSpec,
    config: Arc<Resolved>,
    root: PathBuf,
    request: TaskRequest,
    /// The task document as baton keeps writing it.
    document: LiveDocument,
}

/// How often the task document is brought up to date while the agent streams.
const DOCUMENT_INTERVAL: Duration = Duration::from_millis(200);

/// The agent's view of files for a remote agent (no shadow): path → text (`None`: deleted).
type RemoteTexts = BTreeMap<String, Option<String>>;

impl TaskRun {
    fn log(&self) -> std::sync::MutexGuard<'_, TaskLog> {
        self.entry.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn harness(&self) -> &HarnessSettings {
        &self.config.config.harness
    }

    async fn run(
        mut self,
        frontend: Arc<dyn Frontend>,
        token: String,
        cancel: CancellationToken,
        mut controls: mpsc::UnboundedReceiver<Control>,
        starting: tokio::sync::OwnedMutexGuard<()>,
    ) {
        self.frontend = frontend;
        let title = format!("baton task: {}", self.log().title);
        self.frontend
            .progress_begin(&token, &title, "preparing the shadow workspace")
            .await;
        let shown = self
            .frontend
            .show_document(self.entry.document.clone(), true)
            .await;
        if !shown {
            self.frontend
                .show_message(
                    MessageLevel::Info,
                    format!(
                        "baton: task {} started; its document is {}",
                        self.entry.id,
                        self.entry.document.display()
                    ),
                )
                .await;
        }
        let remote = self.spec.connect.is_some();
        let shadow = if remote {
            None
        } else {
            match prepare_shadow(&self.session, &self.config, &self.root).await {
                Ok(shadow) => Some(shadow),
                Err(reason) => {
                    self.fail(
                        &token,
                        format!("could not prepare the shadow workspace: {reason}"),
                    )
                    .await;
                    return;
                }
            }
        };
        let cwd = match &shadow {
            Some(shadow) => shadow.root().to_path_buf(),
            None => self.remote_cwd(),
        };
        let files = Arc::new(files::BufferFiles {
            session: self.session.clone(),
            shadow: cwd.clone(),
            workspace: self.root.clone(),
            never_send: self.config.never_send.clone(),
        });
        let options = SessionOptions {
            cwd: cwd.clone(),
            approval: approval(self.harness().approval),
            mode: SessionMode::Work,
            files,
            grace: Duration::from_millis(self.harness().grace_ms),
        };
        self.frontend
            .progress_report(&token, format!("starting {}", self.spec.name))
            .await;
        // The handshake can hang: cancelling (or the server shutting down) drops the start,
        // which kills the agent's process (`kill_on_drop`).
        let stop = self.entry.stop.clone();
        let started = tokio::select! {
            biased;
            _ = stop.cancelled() => None,
            _ = cancel.cancelled() => None,
            started = agent::start(&self.spec, options) => Some(started),
        };
        let (handle, mut events) = match started {
            Some(Ok(started)) => started,
            Some(Err(err)) => {
                self.fail(&token, err.to_string()).await;
                return;
            }
            None => {
                self.cancelled_before_start(&token).await;
                return;
            }
        };
        *self.entry.agent.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle.clone());
        drop(starting);
        let prompt = self.prompt_text(&self.request.instruction.clone());
        if let Err(err) = handle.prompt(prompt) {
            self.fail(&token, err.to_string()).await;
            return;
        }
        self.set_status("working");
        let mut lander = Lander::new(
            self.session.clone(),
            self.frontend.clone(),
            self.root.clone(),
            format!("baton task {}", self.entry.id),
            self.entry.log.clone(),
        );
        let mut remote_texts = RemoteTexts::new();
        let mut turn_token = Some(token);
        let mut cancel = cancel;
        let mut turn = 0usize;
        let mut dirty = true;
        let mut allowed_kinds: HashSet<u8> = HashSet::new();
        // The requests put to the user, with their kind (what "allow for this task" covers).
        let mut asked: HashMap<PermissionId, u8> = HashMap::new();
        let keep_alive = Duration::from_secs(self.harness().keep_alive_s);
        let mut idle_since: Option<tokio::time::Instant> = None;
        let mut exited = false;
        let mut shutting_down = false;
        // Whether the agent reported plan entries (then they, not the turn's end, tick a plan).
        let mut reported_plan = false;
        let mut tick = tokio::time::interval(DOCUMENT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let idle_deadline = idle_since.map(|since| since + keep_alive);
            tokio::select! {
                biased;
                _ = cancel.cancelled(), if turn_token.is_some() && !shutting_down => {
                    shutting_down = true;
                    self.log().errors.push("cancelled by you".into());
                    self.set_status("cancelling");
                    dirty = true;
                    // Interrupt, give the agent its grace period, then stop its process.
                    let handle = handle.clone();
                    tokio::spawn(async move { handle.shutdown().await });
                }
                event = events.recv(), if !exited => {
                    let Some(event) = event else {
                        exited = true;
                        continue;
                    };
                    dirty = true;
                    match event {
                        AgentEvent::Message(text) => {
                            let mut log = self.log();
                            if let Some(message) = log.messages.get_mut(turn) {
                                message.push_str(&text);
                            }
                        }
                        AgentEvent::Plan(entries) => {
                            reported_plan = true;
                            let progress = entries.iter().map(|entry| (entry.content.clone(), step_state(entry.status))).collect();
                            self.report_plan(crate::plans::Progress::Entries(progress)).await;
                            self.log().plan = entries;
                        }
                        // The completed plan's text repeats its deltas: only they are kept.
                        AgentEvent::PlanText(_) => {}
                        AgentEvent::PlanDelta(text) => {
                            let mut log = self.log();
                            if let Some(message) = log.messages.get_mut(turn) {
                                message.push_str(&text);
                            }
                        }
                        AgentEvent::Questions(request) => {
                            let _ = handle.answer_questions(request.id, Vec::new());
                            self.log().errors.push(
                                "warning: the agent asked questions; tasks cannot answer them — use plan mode".into(),
                            );
                        }
                        AgentEvent::QuestionsWithdrawn { .. } => {}
                        AgentEvent::ToolCall(call) => {
                            if let Some(token) = &turn_token {
                                self.frontend.progress_report(token, one_line(&call.title)).await;
                            }
                        }
                        AgentEvent::FilesChanged { changes, .. } => {
                            let found = match &shadow {
                                Some(shadow) => {
                                    // The shadow's diff cannot see writes that left it.
                                    let mut found = shadow.refusals_outside(&changes);
                                    found.extend(diff_shadow(shadow.clone()).await);
                                    found
                                }
                                None => self.remote_changes(&mut remote_texts, changes),
                            };
                            self.land(&mut lander, found).await;
                            self.report_plan(crate::plans::Progress::Files(lander.changed_paths())).await;
                            if let Some(token) = &turn_token {
                                let count = lander.changed_paths().len();
                                let message = format!("{count} file{} changed", if count == 1 { "" } else { "s" });
                                self.frontend.progress_report(token, message).await;
                            }
                        }
                        AgentEvent::Command { command, exit_code, output_tail, .. } => {
                            let code = exit_code.map_or("no exit code".to_string(), |c| format!("exit {c}"));
                            let tail = output_tail.lines().last().unwrap_or("").to_string();
                            self.log().commands.push(format!("`{}` → {code} {}", one_line(&command), one_line(&tail)));
                        }
                        AgentEvent::Permission(request) => {
                            let kind = kind_code(request.kind);
                            let read_only = self.harness().approval == ApprovalPolicy::ReadOnly;
                            if read_only && request.kind == PermissionKind::Edit {
                                let _ = handle.answer(request.id, PermissionAnswer::Deny);
                                self.log().permissions.push(PermissionEntry {
                                    id: request.id, title: request.title, detail: String::new(),
                                    answer: Some("denied (harness.approval = read-only)".into()),
                                });
                            } else if allowed_kinds.contains(&kind) {
                                let _ = handle.answer(request.id, PermissionAnswer::AllowForTask);
                                self.log().permissions.push(PermissionEntry {
                                    id: request.id, title: request.title, detail: String::new(),
                                    answer: Some("allowed (you allowed this for the task)".into()),
                                });
                            } else {
                                asked.insert(request.id, kind);
                                self.ask(&request.title, &request.detail, request.id);
                                self.log().permissions.push(PermissionEntry {
                                    id: request.id, title: request.title, detail: request.detail, answer: None,
                                });
                            }
                        }
                        AgentEvent::PermissionWithdrawn { id } => {
                            let mut log = self.log();
                            if let Some(entry) = log.permissions.iter_mut().find(|p| p.id == id && p.answer.is_none()) {
                                entry.answer = Some("withdrawn (the turn ended)".into());
                            }
                        }
                        AgentEvent::TurnDiff(_) => {}
                        AgentEvent::Warning(text) => self.log().errors.push(format!("warning: {text}")),
                        AgentEvent::TurnEnded(end) => {
                            if let Some(shadow) = &shadow {
                                let found = diff_shadow(shadow.clone()).await;
                                self.land(&mut lander, found).await;
                            }
                            lander.settle().await;
                            if end == TurnEnd::Completed {
                                self.report_plan(crate::plans::Progress::TurnCompleted { reported: reported_plan }).await;
                            }
                            let (status, progress) = match &end {
                                TurnEnd::Completed => ("done; reply below to continue".to_string(), "done".to_string()),
                                TurnEnd::Cancelled => ("cancelled".to_string(), "cancelled".to_string()),
                                TurnEnd::Failed(reason) => {
                                    self.log().errors.push(reason.clone());
                                    (format!("failed: {}", one_line(reason)), format!("failed: {}", one_line(reason)))
                                }
                            };
                            self.set_status(&status);
                            // The document tells the whole turn before its progress ends.
                            self.publish().await;
                            self.finish_turn(&mut turn_token, &progress, &end).await;
                            idle_since = Some(tokio::time::Instant::now());
                        }
                        AgentEvent::Exited { reason } => {
                            exited = true;
                            if !shutting_down {
                                self.log().errors.push(format!("the agent exited: {reason}"));
                            }
                            if let Some(shadow) = &shadow {
                                let found = diff_shadow(shadow.clone()).await;
                                self.land(&mut lander, found).await;
                            }
                            lander.settle().await;
                            self.set_status(if shutting_down { "cancelled; the agent was stopped" } else { "ended: the agent exited" });
                            self.publish().await;
                            if turn_token.is_some() {
                                let end = if shutting_down { TurnEnd::Cancelled } else { TurnEnd::Failed(format!("the agent exited: {reason}")) };
                                let message = if shutting_down { "cancelled".to_string() } else { format!("failed: the agent exited: {}", one_line(&reason)) };
                                self.finish_turn(&mut turn_token, &message, &end).await;
                            }
                        }
                    }
                }
                control = controls.recv() => {
                    let Some(control) = control else { break };
                    dirty = true;
                    match control {
                        Control::Reply(text) => {
                            if exited || shutting_down {
                                self.frontend.show_message(MessageLevel::Warning, format!("baton: task {} has ended; start a new task", self.entry.id)).await;
                                continue;
                            }
                            if turn_token.is_some() {
                                self.frontend.show_message(MessageLevel::Warning, "baton: the agent is still working; reply when it is done".into()).await;
                                continue;
                            }
                            turn += 1;
                            {
                                let mut log = self.log();
                                log.prompts.push(text.clone());
                                log.messages.push(String::new());
                            }
                            self.clear_reply();
                            let (token, new_cancel) = self.session.jobs.start();
                            *self.entry.job.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
                            self.frontend.progress_begin(&token, &format!("baton task {}: reply", self.entry.id), &one_line(&text)).await;
                            cancel = new_cancel;
                            turn_token = Some(token);
                            idle_since = None;
                            let prompt = self.prompt_text(&text);
                            if let Err(err) = handle.prompt(prompt) {
                                self.log().errors.push(err.to_string());
                            }
                            self.set_status("working");
                        }
                        Control::Permission { id, answer, how } => {
                            let mut log = self.log();
                            let Some(entry) = log.permissions.iter_mut().find(|p| p.id == id) else { continue };
                            let Some(&kind) = asked.get(&id) else { continue };
                            if entry.answer.is_some() {
                                continue;
                            }
                            entry.answer = Some(how);
                            drop(log);
                            if answer == PermissionAnswer::AllowForTask {
                                // The kind of the request decides what "for this task" covers.
                                allowed_kinds.insert(kind);
                            }
                            let _ = handle.answer(id, answer);
                        }
                        Control::Undo(path) => {
                            lander.undo(path.as_deref()).await;
                            self.record(&lander);
                        }
                        Control::Keep => lander.keep_all().await,
                    }
                }
                _ = tick.tick(), if dirty => {
                    dirty = false;
                    self.publish().await;
                }
                _ = sleep_until(idle_deadline), if idle_deadline.is_some() && !exited && !shutting_down => {
                    shutting_down = true;
                    self.set_status("done; the agent was stopped after being idle (start a new task to go on)");
                    dirty = true;
                    let handle = handle.clone();
                    tokio::spawn(async move { handle.shutdown().await });
                }
            }
            if exited && turn_token.is_none() && !dirty {
                break;
            }
        }
        // The document stays; so does the entry, for review actions on its files.
        self.publish().await;
        self.document.finish();
        handle.shutdown().await;
        // The agent is gone: its shadow slot (a lock held while the shadow lives) is free for
        // the next task; undo and keep work from the texts the lander kept.
        drop(shadow);
        self.serve_review(lander, controls).await;
    }

    /// After the agent is gone: undo and keep still work until the server exits.
    async fn serve_review(
        mut self,
        mut lander: Lander,
        mut controls: mpsc::UnboundedReceiver<Control>,
    ) {
        while let Some(control) = controls.recv().await {
            match control {
                Control::Undo(path) => {
                    lander.undo(path.as_deref()).await;
                    self.record(&lander);
                }
                Control::Keep => lander.keep_all().await,
                Control::Reply(_) => {
                    self.frontend
                        .show_message(
                            MessageLevel::Warning,
                            format!("baton: task {} has ended; start a new task", self.entry.id),
                        )
                        .await;
                }
                Control::Permission { .. } => {}
            }
            self.publish().await;
            self.document.finish();
        }
    }

    /// Asks the user through `window/showMessageRequest` (where the editor has it) and arms
    /// the timeout; the task document's code actions answer too. The first answer wins.
    fn ask(&self, title: &str, detail: &str, id: PermissionId) {
        let frontend = self.frontend.clone();
        let control = self.entry.control.clone();
        let message = format!(
            "baton task {}: the agent asks: {}{}",
            self.entry.id,
            title,
            if detail.is_empty() {
                String::new()
            } else {
                format!("\n{}", text::boundary::display_prefix(detail, 400))
            }
        );
        tokio::spawn(async move {
            let actions = vec![
                "Allow once".to_string(),
                "Allow for this task".to_string(),
                "Deny".to_string(),
            ];
            if let Some(choice) = frontend.ask(message, actions).await {
                let answer = answer_from_title(&choice);
                let _ = control.send(Control::Permission {
                    id,
                    answer,
                    how: format!("{} (answered in the editor)", answer_word(answer)),
                });
            }
        });
        let control = self.entry.control.clone();
        let timeout = self.harness().approval_timeout_s;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(timeout)).await;
            let _ = control.send(Control::Permission {
                id,
                answer: PermissionAnswer::Deny,
                how: format!("denied (no answer within {timeout} s)"),
            });
        });
    }

    /// Where a remote agent (`connect`) works: `remote_cwd`, else the workspace's own path.
    fn remote_cwd(&self) -> PathBuf {
        remote_cwd(self.harness(), &self.spec, &self.root)
    }

    fn set_status(&self, status: &str) {
        self.log().status = status.to_string();
    }

    /// Ticks the plan this task executes, if it executes one.
    async fn report_plan(&self, progress: crate::plans::Progress) {
        if let Some(link) = &self.request.plan {
            crate::plans::report(&self.session, &self.frontend, link, progress).await;
        }
    }

    fn prompt_text(&self, instruction: &str) -> String {
        let mut prompt = instruction.to_string();
        if let Some((path, lines)) = &self.request.focus {
            let shown = path.strip_prefix(&self.root).unwrap_or(path).display();
            match lines {
                Some((first, last)) => prompt.push_str(&format!(
                    "\n\n(The user is looking at {shown}, lines {first}-{last}.)"
                )),
                None => prompt.push_str(&format!("\n\n(The user is looking at {shown}.)")),
            }
        }
        prompt
    }

    async fn land(&self, lander: &mut Lander, changes: Vec<Change>) {
        lander.land(changes).await;
        self.record(lander);
    }

    /// What commands and code actions read of the task's changes: the files it changed and
    /// its whole diff, brought up to date when they change (a landing or an undo), not on
    /// every update of the document.
    fn record(&self, lander: &Lander) {
        *self.entry.changed.lock().unwrap_or_else(|p| p.into_inner()) = lander.changed_paths();
        *self.entry.diff.lock().unwrap_or_else(|p| p.into_inner()) = lander.unified_diff();
    }

    /// A remote agent's reported changes, as changes to land: its diffs applied to the text
    /// baton knows for each file (what it reported before, else the user's buffer or disk).
    fn remote_changes(
        &self,
        texts: &mut RemoteTexts,
        reported: Vec<ReportedChange>,
    ) -> Vec<Change> {
        let cwd = self.remote_cwd();
        let relative = |path: &Path| -> Option<String> {
            let relative = if path.is_absolute() {
                path.strip_prefix(&cwd).ok()?.to_path_buf()
            } else {
                path.to_path_buf()
            };
            relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
                .then(|| relative.to_string_lossy().replace('\\', "/"))
        };
        // The remote machine works on its own copy, which holds what was committed or saved,
        // not the user's unsaved buffers: its diffs apply to the file on disk. The landing then
        // merges the result with the buffer, keeping unsaved text.
        let current = |texts: &RemoteTexts, key: &str| -> Option<String> {
            if let Some(known) = texts.get(key) {
                return known.clone();
            }
            let path = self.root.join(key);
            if let Ok(text) = std::fs::read_to_string(&path) {
                return Some(text);
            }
            let uri = self.session.documents.uri_for_path(&path)?;
            Some(self.session.snapshot(&uri)?.document.text())
        };
        let mut changes = Vec::new();
        for change in reported {
            let Some(key) = relative(&change.path) else {
                changes.push(Change::Refused {
                    path: change.path.clone(),
                    reason: Refusal::OutsideWorkspace {
                        target: change.path.clone(),
                    },
                });
                continue;
            };
            match change.kind {
                ReportedKind::Add { content } => {
                    texts.insert(key.clone(), Some(content.clone()));
                    changes.push(Change::Created {
                        path: key.into(),
                        text: content,
                    });
                }
                ReportedKind::Delete => {
                    let base = current(texts, &key).unwrap_or_default();
                    texts.insert(key.clone(), None);
                    changes.push(Change::Deleted {
                        path: key.into(),
                        base,
                    });
                }
                ReportedKind::Update {
                    unified_diff,
                    move_path,
                } => {
                    let Some(base) = current(texts, &key) else {
                        changes.push(Change::Refused {
                            path: key.into(),
                            reason: Refusal::BaseUnavailable,
                        });
                        continue;
                    };
                    let new = match harness::app_server::apply_unified(&base, &unified_diff) {
                        Ok(new) => new,
                        Err(err) => {
                            self.log().errors.push(format!(
                                "`{key}`: the remote agent's diff does not apply to your copy: {err}"
                            ));
                            continue;
                        }
                    };
                    match move_path.as_deref().and_then(relative) {
                        Some(to) if to != key => {
                            texts.insert(key.clone(), None);
                            texts.insert(to.clone(), Some(new.clone()));
                            changes.push(Change::Renamed {
                                from: key.into(),
                                to: to.into(),
                                base,
                                new,
                            });
                        }
                        _ => {
                            texts.insert(key.clone(), Some(new.clone()));
                            changes.push(Change::Modified {
                                path: key.into(),
                                base,
                                new,
                            });
                        }
                    }
                }
            }
        }
        changes
    }

    async fn finish_turn(&self, turn_token: &mut Option<String>, message: &str, end: &TurnEnd) {
        let Some(token) = turn_token.take() else {
            return;
        };
        self.frontend
            .progress_end(&token, message.to_string())
            .await;
        self.session.jobs.finish(&token);
        *self.entry.job.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if let TurnEnd::Failed(reason) = end {
            self.frontend
                .show_message(
                    MessageLevel::Error,
                    format!("baton task {}: {}", self.entry.id, one_line(reason)),
                )
                .await;
        }
    }

    async fn fail(&mut self, token: &str, reason: String) {
        let status = format!("failed: {}", one_line(&reason));
        self.end_before_start(token, reason.clone(), status.clone(), status)
            .await;
        self.frontend
            .show_message(
                MessageLevel::Error,
                format!("baton task {}: {reason}", self.entry.id),
            )
            .await;
    }

    /// Ends a task cancelled while its agent was starting (nothing ran yet).
    async fn cancelled_before_start(&mut self, token: &str) {
        self.end_before_start(
            token,
            "cancelled by you".into(),
            "cancelled before the agent started".into(),
            "cancelled".into(),
        )
        .await;
    }

    /// Ends a task that never got to run its agent: the error and status into the document
    /// (written to disk: nothing has opened it through baton yet), the progress ended.
    async fn end_before_start(&mut self, token: &str, error: String, status: String, end: String) {
        let text = {
            let mut log = self.log();
            log.errors.push(error);
            log.status = status;
            log.render()
        };
        let _ = std::fs::write(&self.entry.document, &text);
        self.document.set_written(text);
        self.frontend.progress_end(token, end).await;
        self.session.jobs.finish(token);
        *self.entry.job.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Removes the user's reply from the document's reply section once it is sent: the next
    /// render has an empty reply section, and the merge keeps only what the user typed after.
    fn clear_reply(&mut self) {
        // The reply is now in the log as a prompt; the document's base is what the user saw, so
        // the next update's merge removes the reply lines the user wrote.
        if let Some(uri) = self.session.documents.uri_for_path(&self.entry.document)
            && let Some(snapshot) = self.session.snapshot(&uri)
        {
            self.document.set_written(snapshot.document.text());
        }
    }

    /// Brings the task document up to date: through the merge engine while the editor has it
    /// open (the user may be typing a reply in it), else on disk.
    async fn publish(&mut self) {
        let text = self.log().render();
        self.document
            .publish(
                &self.session,
                &self.frontend,
                &self.config.config.edit,
                text,
            )
            .await;
    }
}

fn answer_from_title(title: &str) -> PermissionAnswer {
    match title {
        "Allow once" => PermissionAnswer::AllowOnce,
        "Allow for this task" => PermissionAnswer::AllowForTask,
        _ => PermissionAnswer::Deny,
    }
}

pub fn answer_word(answer: PermissionAnswer) -> &'static str {
    match answer {
        PermissionAnswer::AllowOnce => "allowed once",
        PermissionAnswer::AllowForTask => "allowed for this task",
        PermissionAnswer::Deny => "denied",
    }
}

fn step_state(status: harness::agent::PlanStatus) -> plan::StepState {
    match status {
        harness::agent::PlanStatus::Pending => plan::StepState::Todo,
        harness::agent::PlanStatus::InProgress => plan::StepState::InProgress,
        harness::agent::PlanStatus::Completed => plan::StepState::Done,
    }
}

fn kind_code(kind: PermissionKind) -> u8 {
    match kind {
        PermissionKind::Edit => 0,
        PermissionKind::Command => 1,
        PermissionKind::Other => 2,
    }
}

async fn diff_shadow(shadow: Arc<Shadow>) -> Vec<Change> {
    tokio::task::spawn_blocking(move || shadow.changes())
        .await
        .unwrap_or_default()
}
