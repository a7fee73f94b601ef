//! Background jobs: the registry that owns their cancellation, and the inline edit job.
//!
//! A job starts from `workspace/executeCommand` (or `baton edit`), which returns at once. The job
//! streams the model's reply into its target region through [`edit::landing::Landing`], at a
//! bounded cadence: the first text at once, then a completed line after at least half of
//! `flush_interval_ms`, and anything pending every `flush_interval_ms`,
//! and never with more than one edit in flight. It reports `$/progress`, and ends in exactly one
//! of: done, cancelled (target restored), failed (target restored, reason shown), or stopped
//! because the user typed in the target (the user's text kept).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use edit::landing::{Landing, Observed};
use edit::preview::Aligner;
use edit::prompt::{self, EditContext};
use edit::reply::ReplyText;
use model::{ModelRequest, Provider, TokenStream};
use text::Document;

use crate::config::EditSettings;
use crate::frontend::{DocEvent, Frontend, MessageLevel};
use crate::targets::EditPlan;

/// Running jobs by progress token.
#[derive(Default)]
pub struct Jobs {
    next_id: AtomicU64,
    running: DashMap<String, RunningJob>,
}

struct RunningJob {
    cancel: CancellationToken,
}

impl Jobs {
    /// Registers a new job and returns its token (also its progress token) and cancellation.
    pub fn start(&self) -> (String, CancellationToken) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let token = format!("baton/job/{id}");
        let cancel = CancellationToken::new();
        self.running.insert(
            token.clone(),
            RunningJob {
                cancel: cancel.clone(),
            },
        );
        (token, cancel)
    }

    pub fn finish(&self, token: &str) {
        self.running.remove(token);
    }

    /// Cancels one job; false if there is no such job.
    pub fn cancel(&self, token: &str) -> bool {
        match self.running.get(token) {
            Some(job) => {
                job.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels every job; returns how many there were.
    pub fn cancel_all(&self) -> usize {
        self.running.iter().map(|job| job.cancel.cancel()).count()
    }

    pub fn tokens(&self) -> Vec<String> {
        self.running.iter().map(|job| job.key().clone()).collect()
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Cancelled { restored: bool },
    Failed { reason: String, restored: bool },
    UserEditedTarget,
}

impl Outcome {
    pub fn progress_message(&self) -> String {
        match self {
            Outcome::Done => "done".into(),
            Outcome::Cancelled { .. } => "cancelled".into(),
            Outcome::Failed { reason, .. } => format!("failed: {reason}"),
            Outcome::UserEditedTarget => "stopped: you edited the target".into(),
        }
    }

    /// The message shown to the user, if the outcome deserves one.
    pub fn user_message(&self) -> Option<(MessageLevel, String)> {
        let restored = |restored: bool| {
            if restored {
                "; the original text was restored"
            } else {
                ""
            }
        };
        match self {
            Outcome::Done => None,
            Outcome::Cancelled { restored: was } => Some((
                MessageLevel::Info,
                format!("baton: edit cancelled{}", restored(*was)),
            )),
            Outcome::Failed {
                reason,
                restored: was,
            } => Some((
                MessageLevel::Error,
                format!("baton: {reason}{}", restored(*was)),
            )),
            Outcome::UserEditedTarget => Some((
                MessageLevel::Warning,
                "baton stopped: you edited the text it was rewriting, so your text was kept as is"
                    .into(),
            )),
        }
    }
}

/// Everything an inline edit job needs, resolved before it starts.
pub struct EditJob {
    pub uri: String,
    pub path_label: String,
    pub language: String,
    pub plan: EditPlan,
    pub repo_map: Option<String>,
    pub max_context_tokens: usize,
    pub settings: EditSettings,
    pub token: String,
}

impl EditJob {
    pub fn model_request(&self) -> ModelRequest {
        let context = EditContext {
            instruction: self.plan.instruction.clone(),
            path: self.path_label.clone(),
            language: self.language.clone(),
            target: self.plan.model_target.clone(),
            scope: self.plan.scope.clone(),
            diagnostics: self.plan.diagnostics.clone(),
            repo_map: self.repo_map.clone(),
            max_context_tokens: self.max_context_tokens,
        };
        let prompt = prompt::build(self.plan.action, &context);
        ModelRequest {
            system: prompt.system,
            user: prompt.user,
        }
    }
}

/// Runs an inline edit to its end and reports the outcome through the frontend.
pub async fn run_edit(
    frontend: Arc<dyn Frontend>,
    provider: Arc<dyn Provider>,
    job: EditJob,
    document: Document,
    events: mpsc::UnboundedReceiver<DocEvent>,
    cancel: CancellationToken,
) -> Outcome {
    let title = format!("baton: {}", job.plan.action.title());
    // Creating the progress token is a round trip to the editor: it runs while the model
    // request is on its way, not before it.
    let begin = frontend.progress_begin(&job.token, &title, &job.plan.instruction);
    let mut runner = EditRunner {
        frontend: frontend.clone(),
        uri: job.uri.clone(),
        landing: Landing::new(&document, job.plan.region.clone()),
        document,
        events,
        answers: mpsc::unbounded_channel(),
        waiting_for_answer: None,
        answered_at: None,
        retry_after_version: None,
        settings: job.settings.clone(),
    };
    let outcome = runner.run(provider, &job, &cancel, begin).await;
    frontend
        .progress_end(&job.token, outcome.progress_message())
        .await;
    if let Some((level, text)) = outcome.user_message() {
        frontend.show_message(level, text).await;
    }
    tracing::info!(token = %job.token, ?outcome, "edit job ended");
    outcome
}

/// The editor's answer to the edit computed against a version.
type EditAnswer = (i32, Result<bool, String>);

/// Why the landing loop stopped early.
enum Interrupt {
    Cancelled,
    UserEditedTarget,
    Failed(String),
}

struct EditRunner {
    frontend: Arc<dyn Frontend>,
    uri: String,
    landing: Landing,
    document: Document,
    events: mpsc::UnboundedReceiver<DocEvent>,
    /// The editor's answers to our edits, by the version each edit was computed against.
    answers: (
        mpsc::UnboundedSender<EditAnswer>,
        mpsc::UnboundedReceiver<EditAnswer>,
    ),
    /// Version of the edit whose answer we wait for.
    waiting_for_answer: Option<i32>,
    /// When the editor said `applied: true` for the edit still in flight.
    answered_at: Option<Instant>,
    /// After a rejection, wait for the document to move past this version.
    retry_after_version: Option<i32>,
    settings: EditSettings,
}

impl EditRunner {
    async fn run(
        &mut self,
        provider: Arc<dyn Provider>,
        job: &EditJob,
        cancel: &CancellationToken,
        progress_begin: futures::future::BoxFuture<'static, ()>,
    ) -> Outcome {
        let request = job.model_request();
        let connect = async {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => None,
                stream = provider.stream(request) => Some(stream),
            }
        };
        // The begin is always sent before anything else about this job.
        let (stream, ()) = tokio::join!(connect, progress_begin);
        let Some(stream) = stream else {
            return Outcome::Cancelled { restored: false };
        };
        let stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                return Outcome::Failed {
                    reason: err.user_message(),
                    restored: false,
                };
            }
        };
        match self.stream_into_region(stream, job, cancel).await {
            Ok(()) => Outcome::Done,
            Err(Interrupt::UserEditedTarget) => Outcome::UserEditedTarget,
            Err(Interrupt::Cancelled) => Outcome::Cancelled {
                restored: self.restore().await,
            },
            Err(Interrupt::Failed(reason)) => {
                let restored = self.restore().await;
                Outcome::Failed { reason, restored }
            }
        }
    }

    async fn stream_into_region(
        &mut self,
        mut stream: TokenStream,
        job: &EditJob,
        cancel: &CancellationToken,
    ) -> Result<(), Interrupt> {
        let flush_interval = Duration::from_millis(self.settings.flush_interval_ms.max(1));
        // Completed lines show sooner than partial ones, but not faster than this: at 1,200
        // tokens/s lines complete every few milliseconds, and every edit costs the editor work.
        let line_interval = flush_interval / 2;
        let mut aligner = Aligner::new(&job.plan.aligned_original);
        let mut reply = ReplyText::new();
        let mut tokens = 0usize;
        let mut stream_done = false;
        let mut final_text: Option<String> = None;
        let mut dirty = false;
        let mut line_completed = false;
        // The first text goes to the buffer as soon as it arrives.
        let mut last_flush = Instant::now()
            .checked_sub(flush_interval)
            .unwrap_or_else(Instant::now);
        let mut last_report = Instant::now();
        loop {
            // Decide whether to send an edit now.
            if let Some(wanted) = &final_text {
                if self.landing.shown() == wanted && !self.landing.in_flight() {
                    return Ok(());
                }
                self.try_send(wanted.clone());
            } else if dirty
                && (last_flush.elapsed() >= flush_interval
                    || (line_completed && last_flush.elapsed() >= line_interval))
            {
                let preview = format!("{}{}", job.plan.before, aligner.preview(reply.partial()));
                if self.try_send(preview) {
                    dirty = false;
                    line_completed = false;
                    last_flush = Instant::now();
                }
            }
            if last_report.elapsed() >= Duration::from_millis(250) && tokens > 0 {
                last_report = Instant::now();
                let message = if stream_done {
                    format!("landing ({tokens} tokens)")
                } else {
                    format!("streaming ({tokens} tokens)")
                };
                self.frontend.progress_report(&job.token, message).await;
            }
            let next_flush = last_flush
                + if line_completed {
                    line_interval
                } else {
                    flush_interval
                };
            let stall_deadline = self.stall_deadline();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Interrupt::Cancelled),
                event = self.events.recv() => match event {
                    Some(event) => self.observe(event)?,
                    None => return Err(Interrupt::Failed("the document was closed".into())),
                },
                Some((version, answer)) = self.answers.1.recv() => self.on_answer(version, answer)?,
                item = stream.next(), if !stream_done => match item {
                    Some(Ok(delta)) => {
                        tokens += 1;
                        line_completed |= delta.contains('\n');
                        reply.push(&delta);
                        dirty = true;
                    }
                    Some(Err(err)) => return Err(Interrupt::Failed(err.user_message())),
                    None => {
                        stream_done = true;
                        let text = reply.finish(job.plan.model_target.ends_with('\n'));
                        if text.trim().is_empty() {
                            return Err(Interrupt::Failed(model::ModelError::EmptyAnswer.user_message()));
                        }
                        final_text = Some(format!("{}{}", job.plan.before, text));
                    }
                },
                _ = tokio::time::sleep_until(next_flush), if dirty && final_text.is_none() && self.can_send() => {}
                _ = tokio::time::sleep_until(stall_deadline.unwrap_or(next_flush)), if stall_deadline.is_some() => {
                    self.on_stall()?;
                }
            }
        }
    }

    /// Puts the original text back, unless the user changed the region. Returns whether the
    /// region now holds the original.
    async fn restore(&mut self) -> bool {
        let original = self.landing.original().to_string();
        let deadline =
            Instant::now() + Duration::from_millis(self.settings.landing_timeout_ms.max(100) * 2);
        loop {
            if self.landing.shown() == original && !self.landing.in_flight() {
                return true;
            }
            self.try_send(original.clone());
            let stall_deadline = self.stall_deadline();
            let step = tokio::select! {
                biased;
                event = self.events.recv() => match event {
                    Some(event) => self.observe(event),
                    None => return false,
                },
                Some((version, answer)) = self.answers.1.recv() => self.on_answer(version, answer),
                _ = tokio::time::sleep_until(stall_deadline.unwrap_or(deadline)), if stall_deadline.is_some() => self.on_stall(),
                _ = tokio::time::sleep_until(deadline) => return false,
            };
            if step.is_err() {
                return false;
            }
        }
    }

    /// Sends an edit that makes the region show `text`, if none is in flight and the last
    /// rejection has been overtaken by a newer version. Returns whether the region is (or will
    /// be) showing `text`.
    fn try_send(&mut self, text: String) -> bool {
        if self.landing.in_flight() {
            return false;
        }
        if let Some(version) = self.retry_after_version {
            if self.document.version() <= version {
                return false;
            }
            self.retry_after_version = None;
        }
        let Some(proposed) = self.landing.propose(&self.document, &text) else {
            return self.landing.shown() == text;
        };
        let apply = self
            .frontend
            .apply_edit(&self.uri, &self.document, &proposed.replacement);
        let answers = self.answers.0.clone();
        let version = proposed.version;
        self.waiting_for_answer = Some(version);
        self.answered_at = None;
        tokio::spawn(async move {
            let _ = answers.send((version, apply.await));
        });
        true
    }

    fn observe(&mut self, event: DocEvent) -> Result<(), Interrupt> {
        self.document = event.document;
        match self.landing.observe(&self.document, &event.changes) {
            Observed::UserEditedTarget => Err(Interrupt::UserEditedTarget),
            Observed::Landed | Observed::Skipped => {
                self.waiting_for_answer = None;
                self.answered_at = None;
                Ok(())
            }
            Observed::Unchanged => Ok(()),
        }
    }

    fn on_answer(&mut self, version: i32, answer: Result<bool, String>) -> Result<(), Interrupt> {
        if self.waiting_for_answer != Some(version) {
            // The change already told us what happened to this edit.
            return Ok(());
        }
        match answer {
            Ok(true) => {
                self.answered_at = Some(Instant::now());
                Ok(())
            }
            Ok(false) => {
                tracing::debug!(version, "edit rejected; recomputing on a newer version");
                self.landing.rejected();
                self.waiting_for_answer = None;
                self.retry_after_version = Some(version);
                Ok(())
            }
            Err(err) => Err(Interrupt::Failed(format!(
                "the editor could not apply the edit: {err}"
            ))),
        }
    }

    fn can_send(&self) -> bool {
        !self.landing.in_flight() && self.retry_after_version.is_none()
    }

    /// When an edit reported as applied has not shown up in the document for too long.
    fn stall_deadline(&self) -> Option<Instant> {
        let patience = Duration::from_millis(self.settings.landing_timeout_ms.max(1));
        self.answered_at.map(|at| at + patience).or_else(|| {
            // A rejection with no newer version in sight: retry on the same version later.
            self.retry_after_version.map(|_| Instant::now() + patience)
        })
    }

    fn on_stall(&mut self) -> Result<(), Interrupt> {
        if self.answered_at.take().is_some() {
            tracing::warn!("the editor said an edit applied but never reported it; recomputing");
            self.landing.abandon_in_flight();
            self.waiting_for_answer = None;
        } else {
            self.retry_after_version = None;
        }
        Ok(())
    }
}

/// Runs an explanation: streams the model's answer and shows it as Markdown.
pub async fn run_explain(
    frontend: Arc<dyn Frontend>,
    provider: Arc<dyn Provider>,
    request: ModelRequest,
    title: String,
    token: String,
    cancel: CancellationToken,
) -> Outcome {
    frontend
        .progress_begin(&token, "baton: explain", &title)
        .await;
    let outcome = async {
        let mut stream = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Outcome::Cancelled { restored: false }),
            stream = provider.stream(request) => stream.map_err(|err| Outcome::Failed { reason: err.user_message(), restored: false })?,
        };
        let mut text = String::new();
        let mut last_report = Instant::now();
        loop {
            let item = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Outcome::Cancelled { restored: false }),
                item = stream.next() => item,
            };
            match item {
                Some(Ok(delta)) => text.push_str(&delta),
                Some(Err(err)) => {
                    return Err(Outcome::Failed {
                        reason: err.user_message(),
                        restored: false,
                    });
                }
                None => return Ok(text),
            }
            if last_report.elapsed() >= Duration::from_millis(250) {
                last_report = Instant::now();
                frontend
                    .progress_report(&token, format!("{} characters", text.len()))
                    .await;
            }
        }
    }
    .await;
    let outcome = match outcome {
        Ok(text) if text.trim().is_empty() => Outcome::Failed {
            reason: model::ModelError::EmptyAnswer.user_message(),
            restored: false,
        },
        Ok(text) => {
            frontend
                .show_markdown(&title, format!("# {title}\n\n{text}\n"))
                .await;
            Outcome::Done
        }
        Err(outcome) => outcome,
    };
    frontend
        .progress_end(&token, outcome.progress_message())
        .await;
    if let Some((level, text)) = outcome.user_message() {
        frontend.show_message(level, text).await;
    }
    outcome
}

/// Whether a plan's action is an explanation (which does not edit the buffer).
pub fn is_explain(plan: &EditPlan) -> bool {
    !plan.action.edits()
}
