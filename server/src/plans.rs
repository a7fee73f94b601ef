//! Plan mode: a plan the user edits as a Markdown document, refines, and then executes.
//!
//! `baton.plan` returns at once: it opens a plan document (under baton's state directory, or
//! the workspace's `.baton/plans/` with `plan.dir = "workspace"`) and a job writes the plan into
//! it as it streams, from the deep tier (with the repo map, the files the instruction names, the
//! open buffers' unsaved text and the diagnostics; `never_send` applies) or from an agent in its
//! plan mode (`plan.source = "agent"`, see [`agent`]). The document has the fixed shape of
//! [`plan::Plan`], so baton reads back what the user changed.
//!
//! In the document, code actions (see `lsp::commands`) refine the plan — the document as the
//! user left it goes to the model with the list of what they changed, and the revised plan
//! lands in place as a minimal edit, their notes carried over — and execute it: an agent task
//! with the plan as its brief ([`crate::tasks`]), whose reported progress ticks the checklist
//! ([`report`]). A step naming one file open in the editor may run as an inline edit on the
//! fast tier instead (`plan.inline_steps`).
//!
//! Every update of the document lands through [`LiveDocument`]: merged with what the user types
//! in it meanwhile, never over it.

pub mod agent;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use model::ModelRequest;
use plan::{Plan, PlanContext, StepState};

use crate::config::{PlanDir, PlanSource, Resolved};
use crate::error::Error;
use crate::frontend::{Frontend, MessageLevel};
use crate::live_document::{LiveDocument, write_file};
use crate::session::Session;

/// Plan documents of this session, by path.
#[derive(Default)]
pub struct Plans {
    next: AtomicU64,
    plans: DashMap<PathBuf, Arc<PlanEntry>>,
}

/// One plan document baton writes.
pub struct PlanEntry {
    pub id: u64,
    pub document: PathBuf,
    /// The job writing or refining the plan now: one at a time.
    job: Mutex<Option<String>>,
    /// What baton last wrote and what the plan was when it did.
    state: tokio::sync::Mutex<PlanState>,
    /// The agent a plan-mode plan comes from, kept so refining continues its thread.
    agent: tokio::sync::Mutex<Option<agent::PlanAgent>>,
}

struct PlanState {
    document: LiveDocument,
    /// The plan as baton last wrote it: what a refine measures the user's changes against.
    /// `None` for a plan document baton did not write in this session (a team's plan).
    baseline: Option<Plan>,
    /// What the plan was asked for.
    instruction: String,
    /// The files the user pointed at or named, for the context of later refinements.
    focus: Vec<PathBuf>,
}

/// What `baton.plan` was asked.
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    pub instruction: String,
    /// The file and 1-based lines the user pointed at.
    pub focus: Option<(PathBuf, Option<(usize, usize)>)>,
    /// Diagnostics the editor sent with the request, as `path:line: severity: message`.
    pub diagnostics: Vec<String>,
}

/// The largest plan document baton reads back (bigger ones are refused with a message before
/// they are parsed; `plan::MAX_PLAN_BYTES` is the parser's own limit).
const MAX_DOCUMENT_BYTES: u64 = 8 * 1024 * 1024;

/// How often a streaming plan is brought into the document.
const STREAM_INTERVAL: Duration = Duration::from_millis(200);

/// What a plan document says while the plan is being written (removed once it is).
const WRITING_NOTE: &str = "_baton is writing this plan; it streams in here._";

impl Plans {
    pub fn get(&self, path: &Path) -> Option<Arc<PlanEntry>> {
        self.plans.get(path).map(|entry| entry.clone())
    }

    /// Whether `path` is a plan document: one baton wrote, or a file in a plans directory
    /// whose first line is a plan title (a team's plan opened in a new session).
    pub fn is_plan_document(&self, path: &Path, first_line: &str, root: Option<&Path>) -> bool {
        if self.plans.contains_key(path) {
            return true;
        }
        if path
            .components()
            .any(|part| part == std::path::Component::ParentDir)
        {
            return false;
        }
        let in_plans_dir = path.starts_with(state_dir_plans())
            || root.is_some_and(|root| path.starts_with(workspace_plans(root)));
        in_plans_dir && first_line.trim_start().starts_with("# Plan:")
    }

    /// The entry of a plan document, registered on first use.
    fn entry_for(&self, path: &Path, text: &str) -> Arc<PlanEntry> {
        self.plans
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                Arc::new(PlanEntry::new(
                    self.next.fetch_add(1, Ordering::Relaxed) + 1,
                    path.to_path_buf(),
                    text.to_string(),
                    String::new(),
                ))
            })
            .clone()
    }
}

impl PlanEntry {
    fn new(id: u64, document: PathBuf, written: String, instruction: String) -> PlanEntry {
        PlanEntry {
            id,
            job: Mutex::new(None),
            state: tokio::sync::Mutex::new(PlanState {
                document: LiveDocument::new(document.clone(), written),
                baseline: None,
                instruction,
                focus: Vec::new(),
            }),
            agent: tokio::sync::Mutex::new(None),
            document,
        }
    }

    fn job(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.job.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims the plan for a job; an error while another job writes it.
    fn claim(&self, token: &str) -> Result<(), Error> {
        let mut job = self.job();
        if job.is_some() {
            return Err(Error::InvalidArguments(
                "baton is still writing this plan; wait for it or cancel it (baton.cancel)".into(),
            ));
        }
        *job = Some(token.to_string());
        Ok(())
    }

    fn release(&self) {
        *self.job() = None;
    }
}

fn state_dir_plans() -> PathBuf {
    crate::tasks::state_dir().join("plans")
}

fn workspace_plans(root: &Path) -> PathBuf {
    root.join(".baton").join("plans")
}

/// Where a new plan document goes.
fn plans_dir(config: &Resolved, root: &Path) -> PathBuf {
    match config.config.plan.dir {
        PlanDir::State => state_dir_plans(),
        PlanDir::Workspace => workspace_plans(root),
    }
}

/// A file name from the plan's title: readable, and unique by its time stamp and number.
fn file_name(title: &str, id: u64) -> String {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default();
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_matches('-');
    format!("plan-{stamp}-{id}-{slug}.md")
}

/// The title of a plan asked for with `instruction`.
fn title_of(instruction: &str) -> String {
    let line = instruction
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
        .trim();
    text::boundary::display_prefix(line, 70).to_string()
}

/// Starts a plan; returns at once with its number, document and job.
pub fn start(
    session: Arc<Session>,
    frontend: Arc<dyn Frontend>,
    http: reqwest::Client,
    request: PlanRequest,
) -> Result<Value, Error> {
    let root = session.root().ok_or_else(|| {
        Error::InvalidArguments("a plan needs a workspace folder; none was given".into())
    })?;
    if request.instruction.trim().is_empty() {
        return Err(Error::InvalidArguments(
            "baton.plan needs an instruction".into(),
        ));
    }
    let config = session.config();
    if let Some((path, _)) = &request.focus {
        config
            .never_send
            .check(path, Some(&root))
            .map_err(Error::NeverSend)?;
    }
    let source = Source::choose(&config, &http)?;
    let id = session.plans.next.fetch_add(1, Ordering::Relaxed) + 1;
    let title = title_of(&request.instruction);
    let document = plans_dir(&config, &root).join(file_name(&title, id));
    let first = Plan {
        title: title.clone(),
        goal: request.instruction.trim().to_string(),
        preamble: WRITING_NOTE.to_string(),
        ..Plan::default()
    }
    .render();
    write_file(&document, &first).map_err(|err| {
        Error::InvalidArguments(format!("cannot write {}: {err}", document.display()))
    })?;
    let entry = Arc::new(PlanEntry::new(
        id,
        document.clone(),
        first,
        request.instruction.clone(),
    ));
    session.plans.plans.insert(document.clone(), entry.clone());
    let (token, cancel) = session.jobs.start();
    entry.claim(&token)?;
    let job = Job {
        session: session.clone(),
        entry: entry.clone(),
        config,
        root,
        token: token.clone(),
        cancel,
    };
    crate::job_guard::spawn(
        session,
        frontend,
        token.clone(),
        format!("baton plan: {title}"),
        move |frontend| async move {
            let shown = frontend
                .show_document(job.entry.document.clone(), true)
                .await;
            if !shown {
                frontend
                    .show_message(
                        MessageLevel::Info,
                        format!(
                            "baton: plan {} is being written to {}",
                            job.entry.id,
                            job.entry.document.display()
                        ),
                    )
                    .await;
            }
            job.write_first(frontend, source, request).await;
        },
    );
    Ok(json!({
        "plan": id,
        "job": token,
        "document": crate::lsp::proto::file_uri(&document).map(|uri| uri.to_string()),
    }))
}

/// Refines the plan in `path`: the document as the user left it, and what they changed, go
/// to the plan's source; the revised plan replaces the document in place.
pub fn refine(
    session: Arc<Session>,
    frontend: Arc<dyn Frontend>,
    http: reqwest::Client,
    path: &Path,
) -> Result<Value, Error> {
    let root = session
        .root()
        .ok_or_else(|| Error::InvalidArguments("a plan needs a workspace folder".into()))?;
    let text = plan_text(&session, path, &root)?;
    let user = match Plan::parse(&text) {
        Ok(plan) => plan,
        // Questions and no steps yet (an agent asked before planning): answering them is what
        // refining is for.
        Err(plan::ParseError::NoSteps) => {
            let partial = Plan::parse_partial(&text);
            if partial.questions.is_empty() {
                return Err(cannot(path, "refine", plan::ParseError::NoSteps));
            }
            partial
        }
        Err(err) => return Err(cannot(path, "refine", err)),
    };
    let entry = session.plans.entry_for(path, &text);
    let config = session.config();
    let source = Source::choose(&config, &http)?;
    let (token, cancel) = session.jobs.start();
    if let Err(err) = entry.claim(&token) {
        session.jobs.finish(&token);
        return Err(err);
    }
    let job = Job {
        session: session.clone(),
        entry,
        config,
        root,
        token: token.clone(),
        cancel,
    };
    let title = format!("baton plan: refine {}", user.title);
    crate::job_guard::spawn(session, frontend, token.clone(), title, move |frontend| {
        job.refine(frontend, source, text, user)
    });
    Ok(json!({ "job": token }))
}

/// Where plans come from, chosen when a job starts (so a bad configuration is reported at once).
enum Source {
    Deep(Arc<dyn model::Provider>),
    Agent(harness::agent::AgentSpec),
}

impl Source {
    fn choose(config: &Resolved, http: &reqwest::Client) -> Result<Source, Error> {
        match config.config.plan.source {
            PlanSource::Deep => {
                let settings = config.config.models.deep.settings();
                model::provider(&settings, http.clone())
                    .map(Source::Deep)
                    .map_err(|err| Error::Model(err.user_message()))
            }
            PlanSource::Agent => crate::tasks::agent_spec(
                &config.config.harness,
                config.config.plan.agent.as_deref(),
            )
            .map(Source::Agent),
        }
    }
}

/// Who writes plans, as the progress and the action titles say it: `deep`, or `agent NAME`.
pub fn source_label(config: &Resolved) -> String {
    match config.config.plan.source {
        PlanSource::Deep => "deep".into(),
        PlanSource::Agent => format!(
            "agent {}",
            config
                .config
                .plan
                .agent
                .as_deref()
                .unwrap_or(&config.config.harness.agent)
        ),
    }
}

/// Renders a model's answer so far as the document's text.
type RenderPartial<'a> = dyn Fn(&str) -> String + Sync + 'a;

/// One job writing a plan document.
struct Job {
    session: Arc<Session>,
    entry: Arc<PlanEntry>,
    config: Arc<Resolved>,
    root: PathBuf,
    token: String,
    cancel: CancellationToken,
}

/// How a plan job ended.
enum Ending {
    Done(String),
    Failed(String),
    Cancelled,
}

impl Job {
    async fn write_first(self, frontend: Arc<dyn Frontend>, source: Source, request: PlanRequest) {
        frontend
            .progress_begin(
                &self.token,
                &format!("baton plan {}", self.entry.id),
                &format!("writing the plan ({})", source_label(&self.config)),
            )
            .await;
        let mut focus: Vec<PathBuf> = request.focus.iter().map(|(p, _)| p.clone()).collect();
        focus.extend(named_files(&self.root, &request.instruction));
        let context = self.context(&request.instruction, &focus, &request);
        let mut state = self.entry.state.lock().await;
        state.focus = focus;
        let title = title_of(&request.instruction);
        let ending = match source {
            Source::Deep(provider) => {
                let (system, user) = plan::prompt::plan_request(&request.instruction, &context);
                let render = |text: &str| {
                    let mut plan = Plan::parse_partial(text);
                    default_title(&mut plan, &title);
                    plan.preamble = WRITING_NOTE.to_string();
                    plan.render()
                };
                let streamed = self
                    .stream(
                        &frontend,
                        provider,
                        ModelRequest {
                            system,
                            user,
                            suffix: None,
                        },
                        Some((&mut state.document, &render)),
                    )
                    .await;
                match streamed {
                    Ok(text) => {
                        self.settle_first(&frontend, &mut state, &text, &title)
                            .await
                    }
                    Err(ending) => ending,
                }
            }
            Source::Agent(spec) => {
                agent::write_first(
                    &self, &frontend, &mut state, spec, &request, &context, &title,
                )
                .await
            }
        };
        if state.baseline.is_none() {
            // No plan came: the document must not keep saying one is being written.
            let reason = match &ending {
                Ending::Cancelled => "cancelled".to_string(),
                Ending::Failed(reason) | Ending::Done(reason) => reason.clone(),
            };
            let written = state.document.written().to_string();
            let mut plan = Plan::parse_partial(&written);
            if plan.preamble.contains(WRITING_NOTE) || plan.preamble.trim().is_empty() {
                plan.preamble = format!(
                    "_baton stopped writing this plan ({}); start a new plan, or write the steps \
                     yourself and refine._",
                    reason.replace('\n', " ")
                );
                state
                    .document
                    .publish(
                        &self.session,
                        &frontend,
                        &self.config.config.edit,
                        plan.render(),
                    )
                    .await;
                state.document.settle().await;
            }
        }
        drop(state);
        self.end(&frontend, ending).await;
    }

    /// The model's whole answer becomes the plan: parsed, put in the fixed shape, written.
    async fn settle_first(
        &self,
        frontend: &Arc<dyn Frontend>,
        state: &mut PlanState,
        text: &str,
        title: &str,
    ) -> Ending {
        match Plan::parse(text) {
            Ok(mut plan) => {
                default_title(&mut plan, title);
                plan.preamble.clear();
                let rendered = plan.render();
                state
                    .document
                    .publish(&self.session, frontend, &self.config.config.edit, rendered)
                    .await;
                state.document.settle().await;
                let steps = plan.steps.len();
                let questions = plan.questions.len();
                state.baseline = Some(plan);
                Ending::Done(format!(
                    "plan written: {steps} step{}{}",
                    plural(steps),
                    if questions > 0 {
                        format!(", {questions} question{} for you", plural(questions))
                    } else {
                        String::new()
                    }
                ))
            }
            Err(err) => {
                // What the model wrote stays in the document for the user to read or fix.
                let mut plan = Plan::parse_partial(text);
                default_title(&mut plan, title);
                plan.preamble = format!("_baton could not read the model's plan: {err}_");
                state
                    .document
                    .publish(
                        &self.session,
                        frontend,
                        &self.config.config.edit,
                        plan.render(),
                    )
                    .await;
                state.document.settle().await;
                Ending::Failed(format!("the model's answer is not a usable plan: {err}"))
            }
        }
    }

    async fn refine(self, frontend: Arc<dyn Frontend>, source: Source, text: String, user: Plan) {
        frontend
            .progress_begin(
                &self.token,
                &format!("baton plan {}", self.entry.id),
                &format!("refining the plan ({})", source_label(&self.config)),
            )
            .await;
        let mut state = self.entry.state.lock().await;
        let changes = match &state.baseline {
            Some(before) => plan::revise::user_changes(before, &user),
            None => Vec::new(),
        };
        let ending = if state.baseline.is_some() && changes.is_empty() {
            // Nothing to discuss: an unchanged plan is not regenerated.
            Ending::Failed(
                "the plan is as baton wrote it: answer a question, add a note or edit, add, \
                 remove or reorder steps, then refine"
                    .into(),
            )
        } else {
            let instruction = state.instruction.clone();
            let focus = state.focus.clone();
            let mut focus_files = focus.clone();
            focus_files.extend(user.steps.iter().flat_map(|step| {
                step.files
                    .iter()
                    .filter(|file| !plan::prompt::path_escapes(file))
                    .map(|file| self.root.join(file))
            }));
            let context = self.context(&instruction, &focus_files, &PlanRequest::default());
            match source {
                Source::Deep(provider) => {
                    let (system, prompt) = plan::prompt::refine_request(
                        state.baseline.as_ref(),
                        &user,
                        &changes,
                        &context,
                    );
                    // The revision lands whole, once it is read: nothing streams into the plan.
                    let streamed = self
                        .stream(
                            &frontend,
                            provider,
                            ModelRequest {
                                system,
                                user: prompt,
                                suffix: None,
                            },
                            None,
                        )
                        .await;
                    match streamed {
                        Ok(answer) => {
                            self.settle_refined(&frontend, &mut state, &text, &user, &answer)
                                .await
                        }
                        Err(ending) => ending,
                    }
                }
                Source::Agent(spec) => {
                    agent::refine(
                        &self, &frontend, &mut state, spec, &text, &user, &changes, &context,
                    )
                    .await
                }
            }
        };
        drop(state);
        self.end(&frontend, ending).await;
    }

    /// The revised plan replaces the document in place: the user's notes and answers carried
    /// over, landed as a minimal edit against the text they refined (so what they typed since
    /// stays).
    async fn settle_refined(
        &self,
        frontend: &Arc<dyn Frontend>,
        state: &mut PlanState,
        refined_text: &str,
        user: &Plan,
        answer: &str,
    ) -> Ending {
        match Plan::parse(answer) {
            Ok(mut revised) => {
                default_title(&mut revised, &user.title);
                revised.preamble = user.preamble.clone();
                let revised = plan::revise::carry_over(user, revised);
                let rendered = revised.render();
                state.document.restart(refined_text.to_string());
                state
                    .document
                    .publish(&self.session, frontend, &self.config.config.edit, rendered)
                    .await;
                state.document.settle().await;
                let steps = revised.steps.len();
                state.baseline = Some(revised);
                Ending::Done(format!("plan refined: {steps} step{}", plural(steps)))
            }
            Err(err) => Ending::Failed(format!(
                "the model's revision is not a usable plan ({err}); the document is unchanged"
            )),
        }
    }

    /// Streams a model answer. With `shown`, the text so far is rendered into that document at
    /// a bounded rate (into an open buffer only: see [`LiveDocument::publish_if_open`]).
    async fn stream(
        &self,
        frontend: &Arc<dyn Frontend>,
        provider: Arc<dyn model::Provider>,
        request: ModelRequest,
        mut shown: Option<(&mut LiveDocument, &RenderPartial<'_>)>,
    ) -> Result<String, Ending> {
        let mut stream = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Err(Ending::Cancelled),
            stream = provider.stream(request) => stream.map_err(|err| Ending::Failed(err.user_message()))?,
        };
        let mut text = String::new();
        let mut last = Instant::now();
        loop {
            let item = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(Ending::Cancelled),
                item = stream.next() => item,
            };
            match item {
                Some(Ok(delta)) => text.push_str(&delta),
                Some(Err(err)) => return Err(Ending::Failed(err.user_message())),
                None => break,
            }
            if last.elapsed() >= STREAM_INTERVAL {
                last = Instant::now();
                if let Some((document, render)) = shown.as_mut() {
                    let update = render(&text);
                    document
                        .publish_if_open(&self.session, frontend, &self.config.config.edit, update)
                        .await;
                }
                frontend
                    .progress_report(&self.token, format!("{} characters", text.len()))
                    .await;
            }
        }
        if text.trim().is_empty() {
            return Err(Ending::Failed(
                model::ModelError::EmptyAnswer.user_message(),
            ));
        }
        Ok(text)
    }

    /// What the model is told besides the instruction. Nothing from a `never_send` file.
    fn context(&self, instruction: &str, focus: &[PathBuf], request: &PlanRequest) -> PlanContext {
        let never_send = &self.config.never_send;
        let allowed = |path: &Path| {
            path.starts_with(&self.root)
                && !never_send.matches(path, Some(&self.root))
                && !path.starts_with(workspace_plans(&self.root))
        };
        let budget = self.config.config.context.max_tokens.saturating_mul(4);
        let mut used = 0usize;
        let mut files = Vec::new();
        let mut seen = HashSet::new();
        let open: Vec<(PathBuf, String)> = self
            .session
            .documents
            .open_texts()
            .into_iter()
            .filter(|(path, _)| allowed(path) && !self.session.plans.plans.contains_key(path))
            .collect();
        // The files pointed at or named first, then the other open buffers (unsaved text).
        let mut candidates: Vec<(PathBuf, Option<String>)> = focus
            .iter()
            .map(|path| {
                let open_text = open.iter().find(|(p, _)| p == path).map(|(_, t)| t.clone());
                (path.clone(), open_text)
            })
            .collect();
        candidates.extend(open.iter().map(|(p, t)| (p.clone(), Some(t.clone()))));
        for (path, text) in candidates {
            if !allowed(&path) || !seen.insert(path.clone()) {
                continue;
            }
            let text = match text {
                Some(text) => text,
                None => match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_file() && meta.len() <= 256 * 1024 => {
                        match std::fs::read_to_string(&path) {
                            Ok(text) => text,
                            Err(_) => continue,
                        }
                    }
                    _ => continue,
                },
            };
            if used + text.len() > budget {
                continue;
            }
            used += text.len();
            let relative = path
                .strip_prefix(&self.root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            files.push((relative, text));
        }
        let repo_map = self.session.current_index().and_then(|index| {
            crate::indexing::plan_repo_map(
                &index,
                focus,
                instruction,
                self.config.config.context.max_tokens / 2,
                never_send,
            )
        });
        let focus_line = request.focus.as_ref().map(|(path, lines)| {
            let shown = path.strip_prefix(&self.root).unwrap_or(path).display();
            match lines {
                Some((first, last)) => format!("{shown}, lines {first}-{last}"),
                None => shown.to_string(),
            }
        });
        PlanContext {
            repo_map,
            files,
            diagnostics: request.diagnostics.clone(),
            focus: focus_line,
        }
    }

    async fn end(self, frontend: &Arc<dyn Frontend>, ending: Ending) {
        let (message, shown) = match ending {
            Ending::Done(message) => (message, None),
            Ending::Cancelled => ("cancelled".to_string(), None),
            Ending::Failed(reason) => (
                format!("failed: {reason}"),
                Some(format!("baton: plan {}: {reason}", self.entry.id)),
            ),
        };
        frontend.progress_end(&self.token, message).await;
        if let Some(text) = shown {
            frontend.show_message(MessageLevel::Warning, text).await;
        }
        self.entry.release();
        self.session.jobs.finish(&self.token);
    }
}

/// A plan written without a title gets the one it was asked with.
fn default_title(plan: &mut Plan, title: &str) {
    if plan.title.trim().is_empty() {
        plan.title = title.to_string();
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Workspace files the instruction names (`src/lib.rs`, `README.md`), that exist.
fn named_files(root: &Path, instruction: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for word in instruction
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '`' | '"' | '\''))
    {
        let word = word.trim_end_matches(['.', ':', '!', '?']);
        if word.is_empty()
            || plan::prompt::path_escapes(word)
            || !(word.contains('/') || word.contains('.'))
        {
            continue;
        }
        let path = root.join(word);
        if path.is_file() && !found.contains(&path) {
            found.push(path);
        }
    }
    found
}

/// The plan document's text as the user has it: the open buffer (unsaved edits included),
/// else the file.
pub fn current_text(session: &Session, path: &Path) -> Result<String, Error> {
    if let Some(uri) = session.documents.uri_for_path(path)
        && let Some(snapshot) = session.snapshot(&uri)
    {
        return Ok(snapshot.document.text());
    }
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|err| Error::InvalidArguments(format!("cannot read the plan {shown}: {err}")))?;
    if meta.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::InvalidArguments(format!(
            "the plan {shown} is {} bytes; a plan is at most {} bytes",
            meta.len(),
            plan::MAX_PLAN_BYTES
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|err| Error::InvalidArguments(format!("cannot read the plan {shown}: {err}")))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::InvalidArguments(format!("the plan {shown} is not UTF-8 text")))
}

/// The text of a plan document, refused for any other file: refining writes the revision back,
/// and baton writes only its own documents.
fn plan_text(session: &Session, path: &Path, root: &Path) -> Result<String, Error> {
    let text = current_text(session, path)?;
    let first_line = text.lines().next().unwrap_or("");
    if !session.plans.is_plan_document(path, first_line, Some(root)) {
        return Err(Error::InvalidArguments(format!(
            "{} is not a plan document: plans are the documents baton.plan opens (in {} or {})",
            path.display(),
            state_dir_plans().display(),
            workspace_plans(root).display()
        )));
    }
    Ok(text)
}

fn cannot(path: &Path, what: &str, err: plan::ParseError) -> Error {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    Error::InvalidArguments(format!("cannot {what} {name}: {err}"))
}

/// What "Execute plan" / "Execute this step" was asked.
#[derive(Debug, Clone)]
pub struct ExecuteRequest {
    pub document: PathBuf,
    /// 1-based step number; `None`: every step not ticked yet.
    pub step: Option<usize>,
    pub agent: Option<String>,
}

/// Executes a plan (or one step) as an agent task with the plan as its brief. Steps that name
/// files outside the workspace are refused (and left out of the brief).
pub fn execute(
    session: Arc<Session>,
    frontend: Arc<dyn Frontend>,
    request: ExecuteRequest,
) -> Result<(Value, Vec<String>), Error> {
    let root = session
        .root()
        .ok_or_else(|| Error::InvalidArguments("a plan needs a workspace folder".into()))?;
    let text = plan_text(&session, &request.document, &root)?;
    let plan = Plan::parse(&text).map_err(|err| cannot(&request.document, "execute", err))?;
    let entry = session.plans.entry_for(&request.document, &text);
    if entry.job().is_some() {
        return Err(Error::InvalidArguments(
            "baton is still writing this plan; execute it once it is written".into(),
        ));
    }
    let outside = plan::prompt::outside_steps(&plan, |path| !escapes_root(&root, path));
    let refused: HashSet<usize> = outside.iter().map(|(index, _)| *index).collect();
    let mut warnings: Vec<String> = outside
        .iter()
        .map(|(index, path)| {
            format!(
                "step {} names `{path}`, outside the workspace: refused",
                index + 1
            )
        })
        .collect();
    let selected: Vec<usize> = match request.step {
        Some(0) => {
            return Err(Error::InvalidArguments("steps are numbered from 1".into()));
        }
        Some(step) if step > plan.steps.len() => {
            return Err(Error::InvalidArguments(format!(
                "there is no step {step}: the plan has {} step{}",
                plan.steps.len(),
                plural(plan.steps.len())
            )));
        }
        Some(step) if refused.contains(&(step - 1)) => {
            return Err(Error::InvalidArguments(warnings.join("; ")));
        }
        Some(step) => vec![step - 1],
        None => (0..plan.steps.len())
            .filter(|index| !refused.contains(index) && plan.steps[*index].state != StepState::Done)
            .collect(),
    };
    if selected.is_empty() {
        return Err(Error::InvalidArguments(if warnings.is_empty() {
            "every step of the plan is ticked: nothing to execute".into()
        } else {
            format!("nothing left to execute: {}", warnings.join("; "))
        }));
    }
    // The brief holds the plan without the refused steps.
    let mut sent = plan.clone();
    let kept: Vec<usize> = (0..plan.steps.len())
        .filter(|i| !refused.contains(i))
        .collect();
    sent.steps = kept.iter().map(|&i| plan.steps[i].clone()).collect();
    let only = request
        .step
        .and_then(|step| kept.iter().position(|&i| i == step - 1));
    let brief = plan::prompt::brief(&sent, only);
    let config = session.config();
    let agent = request
        .agent
        .or_else(|| config.config.plan.execute_with.clone());
    let link = crate::tasks::PlanLink {
        document: request.document.clone(),
        steps: selected
            .iter()
            .map(|&i| plan.steps[i].text.clone())
            .collect(),
    };
    let title = match request.step {
        Some(step) => format!(
            "plan {}: step {step}: {}",
            entry.id,
            plan.steps[step - 1].text
        ),
        None => format!("plan {}: {}", entry.id, plan.title),
    };
    let answer = crate::tasks::start(
        session,
        frontend,
        crate::tasks::TaskRequest {
            instruction: brief,
            agent,
            focus: None,
            title: Some(title),
            plan: Some(link),
        },
    )?;
    warnings.retain(|_| request.step.is_none());
    Ok((answer, warnings))
}

/// Whether a path a step names leaves the workspace: lexically, or through a symlink that
/// exists now.
fn escapes_root(root: &Path, path: &str) -> bool {
    if plan::prompt::path_escapes(path) {
        return true;
    }
    let joined = root.join(path);
    match (joined.canonicalize(), root.canonicalize()) {
        (Ok(real), Ok(real_root)) => !real.starts_with(real_root),
        // A file the plan will create: the lexical check is all there is.
        _ => false,
    }
}

/// A plan step that runs as an inline edit on the fast tier: the one open file it names.
pub struct InlineStep {
    pub uri: crate::session::DocumentUri,
    /// The file as the step names it (with its lines, `src/lib.rs:12-30`).
    pub file: String,
    /// The 1-based lines the step names, if it does.
    pub lines: Option<(u32, u32)>,
    /// The step's text and its notes.
    pub instruction: String,
    /// What ticks the step when the edit is done.
    pub link: crate::tasks::PlanLink,
}

/// Step `index` (0-based) of `plan` as an inline edit, or why it cannot be one: it must name
/// exactly one file, inside the workspace and open in the editor.
pub fn inline_step(
    session: &Session,
    plan: &Plan,
    index: usize,
    document: &Path,
) -> Result<InlineStep, Error> {
    let number = index + 1;
    let step = plan
        .steps
        .get(index)
        .ok_or_else(|| Error::InvalidArguments(format!("there is no step {number}")))?;
    let [file] = step.files.as_slice() else {
        return Err(Error::InvalidArguments(format!(
            "step {number} names {} files; an inline step names one",
            step.files.len()
        )));
    };
    let (name, lines) = split_lines(file);
    let root = session
        .root()
        .ok_or_else(|| Error::InvalidArguments("a plan needs a workspace folder".into()))?;
    if plan::prompt::path_escapes(name) {
        return Err(Error::InvalidArguments(format!(
            "step {number} names `{name}`, outside the workspace: refused"
        )));
    }
    let uri = session
        .documents
        .uri_for_path(&root.join(name))
        .ok_or_else(|| Error::NotOpen(name.to_string()))?;
    let mut instruction = step.text.clone();
    for note in &step.notes {
        instruction.push('\n');
        instruction.push_str(note);
    }
    Ok(InlineStep {
        uri,
        file: file.clone(),
        lines,
        instruction,
        link: crate::tasks::PlanLink {
            document: document.to_path_buf(),
            steps: vec![step.text.clone()],
        },
    })
}

/// Step `step` (1-based) of the plan document at `document`, to run as an inline edit.
pub fn inline_execution(
    session: &Session,
    document: &Path,
    step: usize,
) -> Result<InlineStep, Error> {
    let text = current_text(session, document)?;
    let plan = Plan::parse(&text)
        .map_err(|err| Error::InvalidArguments(format!("cannot execute this plan: {err}")))?;
    let index = step
        .checked_sub(1)
        .ok_or_else(|| Error::InvalidArguments(format!("there is no step {step}")))?;
    inline_step(session, &plan, index, document)
}

/// `src/lib.rs:12-30` → (`src/lib.rs`, lines 12 to 30); `src/lib.rs:12` → one line.
fn split_lines(file: &str) -> (&str, Option<(u32, u32)>) {
    if let Some((name, lines)) = file.rsplit_once(':') {
        let (first, last) = lines.split_once('-').unwrap_or((lines, lines));
        if let (Ok(first), Ok(last)) = (first.trim().parse::<u32>(), last.trim().parse::<u32>())
            && first >= 1
            && last >= first
        {
            return (name, Some((first, last)));
        }
    }
    (file, None)
}

/// What an executing task reports about its progress.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The agent's plan entries (ACP `plan`, the agent's todo list), replaced whole.
    Entries(Vec<(String, StepState)>),
    /// Files the agent changed (workspace-relative): the steps that name them are under way.
    Files(Vec<String>),
    /// The turn completed; `reported` is whether the agent ever reported plan entries.
    TurnCompleted { reported: bool },
}

/// Ticks the plan's checklist for an executing task. Only the checkbox of each step line
/// changes, merged into what the user has (they may be editing the plan meanwhile).
pub async fn report(
    session: &Session,
    frontend: &Arc<dyn Frontend>,
    link: &crate::tasks::PlanLink,
    progress: Progress,
) {
    let Ok(text) = current_text(session, &link.document) else {
        return;
    };
    let Ok(plan) = Plan::parse(&text) else {
        return;
    };
    // The executed steps, found by their text in the plan as it is now (the user may have
    // reordered it).
    let executing: Vec<usize> = link
        .steps
        .iter()
        .filter_map(|wanted| plan.steps.iter().position(|step| &step.text == wanted))
        .collect();
    let mut updated = plan.clone();
    match &progress {
        Progress::Entries(entries) => plan::prompt::tick(&mut updated, entries, &executing),
        Progress::Files(paths) => {
            for &index in &executing {
                let step = &mut updated.steps[index];
                if step.state == StepState::Todo
                    && step.files.iter().any(|file| paths.contains(file))
                {
                    step.state = StepState::InProgress;
                }
            }
        }
        Progress::TurnCompleted { reported } => {
            if !reported {
                for &index in &executing {
                    updated.steps[index].state = StepState::Done;
                }
            }
        }
    }
    let changed: Vec<(usize, StepState)> = (0..plan.steps.len())
        .filter(|&i| plan.steps[i].state != updated.steps[i].state)
        .map(|i| (i, updated.steps[i].state))
        .collect();
    if changed.is_empty() {
        return;
    }
    let ticked = set_checkboxes(&text, &changed);
    if ticked == text {
        return;
    }
    let settings = session.config().config.edit.clone();
    if session.documents.uri_for_path(&link.document).is_some() {
        if let Some(run) = crate::jobs::spawn_merge(
            session,
            frontend.clone(),
            &link.document,
            text,
            ticked,
            &settings,
        ) {
            let _ = run.proposals.send(crate::jobs::Proposal::Finish);
            let _ = run.done.await;
        }
    } else if let Err(err) = write_file(&link.document, &ticked) {
        tracing::warn!(%err, "could not tick the plan");
    }
}

/// `text` with the checkbox of each changed step set; a step the user wrote without one gets
/// one. Nothing else in the document moves.
fn set_checkboxes(text: &str, changed: &[(usize, StepState)]) -> String {
    let lines = plan::step_lines(text);
    // Line of each changed step's own line → its new state.
    let states: std::collections::HashMap<usize, StepState> = changed
        .iter()
        .filter_map(|&(step, state)| Some((*lines.get(step)?, state)))
        .collect();
    let mut out = String::with_capacity(text.len() + 16);
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let state = states.get(&number).copied();
        match state {
            Some(state) => out.push_str(&with_checkbox(line, state)),
            None => out.push_str(line),
        }
    }
    out
}

fn with_checkbox(line: &str, state: StepState) -> String {
    let mark = match state {
        StepState::Todo => ' ',
        StepState::InProgress => '~',
        StepState::Done => 'x',
    };
    let indent = line.len() - line.trim_start().len();
    let (lead, rest) = line.split_at(indent);
    let bullet = rest.chars().next().filter(|c| matches!(c, '-' | '*' | '+'));
    if let Some(bullet) = bullet {
        let after = rest[1..].trim_start();
        if let Some(inner) = after.strip_prefix('[')
            && inner.chars().nth(1) == Some(']')
        {
            let skip = 1 + inner.chars().next().map_or(0, char::len_utf8) + 1;
            return format!("{lead}{bullet} [{mark}]{}", &after[skip..]);
        }
        return format!("{lead}{bullet} [{mark}] {after}");
    }
    format!("{lead}- [{mark}] {rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkboxes_change_and_nothing_else() {
        assert_eq!(
            with_checkbox("- [ ] 1. do it\n", StepState::Done),
            "- [x] 1. do it\n"
        );
        assert_eq!(
            with_checkbox("  * [x] b\n", StepState::InProgress),
            "  * [~] b\n"
        );
        assert_eq!(
            with_checkbox("- also this\n", StepState::Done),
            "- [x] also this\n"
        );
        assert_eq!(
            with_checkbox("write docs\n", StepState::Done),
            "- [x] write docs\n"
        );
        assert_eq!(with_checkbox("- [ñ] odd\n", StepState::Done), "- [x] odd\n");
    }

    #[test]
    fn file_names_are_readable_and_safe() {
        let name = file_name("Split the parser: ../../etc/passwd — Ñandú", 7);
        assert!(
            name.starts_with("plan-") && name.ends_with("-7-split-the-parser-etc-passwd-and.md"),
            "{name}"
        );
        assert!(!name.contains('/'));
    }
}
