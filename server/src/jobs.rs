//! Background jobs: the registry that owns their cancellation, and the async driver of the
//! inline edit job.
//!
//! A job starts from `workspace/executeCommand` (or `baton edit`), which returns at once. What
//! the job does with the model's reply — the flush cadence, one edit in flight, landing
//! timeouts, rejected edits, restoring on cancel or failure, stopping when the user types in the
//! target — is decided by [`edit::engine::EditEngine`], a synchronous state machine. This module
//! only drives it: [`run_edit`] connects to the model, then turns model text, the document's
//! changes ([`DocEvent`]s), the editor's answers to `workspace/applyEdit`, the engine's timer and
//! cancellation into engine events, and performs the engine's effects through the
//! [`Frontend`]. A panic inside an engine step fails the job (restoring the target when it
//! can) instead of taking the server down. A job reports `$/progress` and ends in exactly one
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

use edit::engine::{EditAnswer, EditEngine, Effect, EngineSettings, Event, Rewrite};
use edit::prompt::{self, EditContext};
use model::{ModelRequest, Provider, TokenStream};
use text::Document;

use crate::config::EditSettings;
use crate::frontend::{DocEvent, Frontend};
use crate::session::DocumentUri;
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

/// How a job ended; the engine decides it and words its messages.
pub use edit::engine::Outcome;

/// Everything an inline edit job needs, resolved before it starts.
pub struct EditJob {
    pub uri: DocumentUri,
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
            suffix: None,
        }
    }
}

/// The engine's timing from the `edit` settings.
fn engine_settings(settings: &EditSettings) -> EngineSettings {
    EngineSettings {
        flush_interval: Duration::from_millis(settings.flush_interval_ms),
        landing_timeout: Duration::from_millis(settings.landing_timeout_ms),
    }
}

/// Runs an inline edit to its end and reports the outcome through the frontend.
///
/// This is the async driver of [`EditEngine`]: it turns the model stream, the document's
/// changes, the editor's answers, the engine's timer and cancellation into engine events, one
/// at a time, and performs the effects the engine answers with.
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
    let rewrite = Rewrite {
        region: job.plan.region.clone(),
        aligned_original: job.plan.aligned_original.clone(),
        before: job.plan.before.clone(),
        target_ends_with_newline: job.plan.model_target.ends_with('\n'),
        empty_reply_reason: model::ModelError::EmptyAnswer.user_message(),
    };
    let engine = EditEngine::rewrite(document, rewrite, engine_settings(&job.settings));
    let mut driver = EditDriver::new(frontend.clone(), job.uri.clone(), job.token.clone(), engine);
    let request = job.model_request();
    let connect = async {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            stream = provider.stream(request) => Some(stream),
        }
    };
    // The begin is always sent before anything else about this job.
    let (stream, ()) = tokio::join!(connect, begin);
    let outcome = match stream {
        None => driver.run(Source::None, events, &cancel).await,
        Some(Err(err)) => {
            let reason = err.user_message();
            driver.feed(Event::SourceFailed { reason }).await;
            driver.run(Source::None, events, &cancel).await
        }
        Some(Ok(stream)) => {
            driver.feed(Event::SourceConnected).await;
            driver.run(Source::Model(stream), events, &cancel).await
        }
    };
    frontend
        .progress_end(&job.token, outcome.progress_message())
        .await;
    if let Some((level, text)) = outcome.user_message() {
        frontend.show_message(level, text).await;
    }
    tracing::info!(token = %job.token, ?outcome, "edit job ended");
    outcome
}

/// What an agent task tells the landing of one file.
#[derive(Debug, Clone)]
pub enum Proposal {
    /// The agent's whole new text for the file (replaces any earlier one).
    Text(String),
    /// No more proposals: finish once what is proposed has landed.
    Finish,
    /// Undo: put back the text the agent started from, keeping what the user typed.
    Revert,
}

/// Lands an agent's proposals for one open document through the merge engine: each proposal
/// is three-way merged with what the user typed since `base`, and lands one minimal hunk at a
/// time. Reports nothing itself (the task owns the progress and the messages); returns how it
/// ended and how many of the agent's changes gave way to the user's.
pub async fn run_merge(
    frontend: Arc<dyn Frontend>,
    uri: DocumentUri,
    document: Document,
    base: String,
    events: mpsc::UnboundedReceiver<DocEvent>,
    proposals: mpsc::UnboundedReceiver<Proposal>,
    settings: &EditSettings,
) -> (Outcome, usize) {
    let region = 0..document.len_bytes();
    let engine = EditEngine::merge(document, region, base, engine_settings(settings));
    let mut driver = EditDriver::new(frontend, uri, String::new(), engine);
    let never = CancellationToken::new();
    let outcome = driver
        .run(Source::Proposals(proposals), events, &never)
        .await;
    (outcome, driver.engine.conflicts())
}

/// A merge landing running in an open buffer: where its proposals go and how it ends.
#[derive(Debug)]
pub struct MergeRun {
    pub proposals: mpsc::UnboundedSender<Proposal>,
    pub done: tokio::task::JoinHandle<(Outcome, usize)>,
}

/// Starts landing `first` into the buffer the editor has open for `path`, three-way merged
/// against `base` (the text `first` was computed from); `None` when the file is not open.
pub fn spawn_merge(
    session: &crate::session::Session,
    frontend: Arc<dyn Frontend>,
    path: &std::path::Path,
    base: String,
    first: String,
    settings: &EditSettings,
) -> Option<MergeRun> {
    let uri = session.documents.uri_for_path(path)?;
    let (snapshot, events) = session.subscribe(&uri)?;
    let (proposals, receiver) = mpsc::unbounded_channel();
    let _ = proposals.send(Proposal::Text(first));
    let settings = settings.clone();
    let done = tokio::spawn(async move {
        run_merge(
            frontend,
            uri,
            snapshot.document,
            base,
            events,
            receiver,
            &settings,
        )
        .await
    });
    Some(MergeRun { proposals, done })
}

/// Where a job's text comes from.
enum Source {
    /// Nothing (more) will come: the source failed or was never connected.
    None,
    Model(TokenStream),
    Proposals(mpsc::UnboundedReceiver<Proposal>),
}

impl Source {
    /// The next event from the source; pending forever when there is none (or no more).
    async fn next(&mut self) -> Event {
        match self {
            Source::None => std::future::pending().await,
            Source::Model(stream) => match stream.next().await {
                Some(Ok(delta)) => Event::ModelText(delta),
                Some(Err(err)) => Event::SourceFailed {
                    reason: err.user_message(),
                },
                None => {
                    *self = Source::None;
                    Event::SourceFinished
                }
            },
            Source::Proposals(proposals) => match proposals.recv().await {
                Some(Proposal::Text(text)) => Event::ProposedText(text),
                Some(Proposal::Revert) => Event::Cancel,
                Some(Proposal::Finish) | None => {
                    *self = Source::None;
                    Event::SourceFinished
                }
            },
        }
    }
}

/// The editor's answer to the edit computed against a version.
type EditAnswerMessage = (i32, Result<bool, String>);

/// Feeds one [`EditEngine`] and performs its effects.
struct EditDriver {
    frontend: Arc<dyn Frontend>,
    uri: DocumentUri,
    token: String,
    engine: EditEngine,
    /// The editor's answers to our edits, by the version each edit was computed against.
    answers: (
        mpsc::UnboundedSender<EditAnswerMessage>,
        mpsc::UnboundedReceiver<EditAnswerMessage>,
    ),
    started: Instant,
    /// When the engine wants [`Event::Tick`].
    timer: Option<Instant>,
    outcome: Option<Outcome>,
}

impl EditDriver {
    fn new(
        frontend: Arc<dyn Frontend>,
        uri: DocumentUri,
        token: String,
        engine: EditEngine,
    ) -> EditDriver {
        EditDriver {
            frontend,
            uri,
            token,
            engine,
            answers: mpsc::unbounded_channel(),
            started: Instant::now(),
            timer: None,
            outcome: None,
        }
    }

    /// Feeds events until the engine finishes. Without a stream, the source already failed,
    /// or the job was cancelled while connecting.
    async fn run(
        &mut self,
        mut source: Source,
        mut events: mpsc::UnboundedReceiver<DocEvent>,
        cancel: &CancellationToken,
    ) -> Outcome {
        // A cancel that came while connecting must still reach the engine: the select below
        // only watches for one that has not happened yet. (Found by the server-loop fuzz: a
        // job cancelled just as its stream connected never ended.)
        let mut cancel_seen = cancel.is_cancelled();
        if cancel_seen {
            self.feed(Event::Cancel).await;
        }
        let mut document_open = true;
        // One timer for the whole job, moved only when the engine asks for another deadline:
        // a timer made afresh for every event would be registered and dropped once per token.
        let timer = tokio::time::sleep_until(self.started + Duration::from_secs(86_400 * 365));
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        while self.outcome.is_none() {
            if !self.engine.wants_source() {
                // Dropping the stream closes the model connection.
                source = Source::None;
            }
            if self.timer != armed {
                if let Some(at) = self.timer {
                    timer.as_mut().reset(at);
                }
                armed = self.timer;
            }
            let event = tokio::select! {
                biased;
                _ = cancel.cancelled(), if !cancel_seen => {
                    cancel_seen = true;
                    Event::Cancel
                }
                event = events.recv(), if document_open => match event {
                    Some(DocEvent { document, changes }) => Event::DocumentChanged { document, changes },
                    None => {
                        document_open = false;
                        Event::DocumentClosed
                    }
                },
                Some((version, answer)) = self.answers.1.recv() => Event::EditAnswered {
                    version,
                    answer: match answer {
                        Ok(true) => EditAnswer::Applied,
                        Ok(false) => {
                            tracing::debug!(version, "edit rejected; recomputing on a newer version");
                            EditAnswer::Rejected
                        }
                        Err(err) => EditAnswer::Error(err),
                    },
                },
                event = source.next() => event,
                _ = &mut timer, if armed.is_some() => {
                    self.timer = None;
                    armed = None;
                    Event::Tick
                }
            };
            self.feed(event).await;
        }
        self.outcome.clone().expect("finished")
    }

    /// Feeds one event and performs the effects.
    async fn feed(&mut self, event: Event) {
        if self.outcome.is_some() {
            return;
        }
        let now = self.started.elapsed();
        let name = event_name(&event);
        let effects = guarded_step(&mut self.engine, now, event, EditEngine::step);
        tracing::debug!(
            token = %self.token,
            event = name,
            effects = ?effects.iter().map(effect_name).collect::<Vec<_>>(),
            "engine step"
        );
        for effect in effects {
            self.perform(effect).await;
        }
    }

    async fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::SendEdit(proposed) => {
                let apply = self.frontend.apply_edit(
                    &self.uri,
                    self.engine.document(),
                    &proposed.replacement,
                );
                let answers = self.answers.0.clone();
                let version = proposed.version;
                tokio::spawn(async move {
                    let _ = answers.send((version, apply.await));
                });
            }
            Effect::ReportProgress(message) => {
                self.frontend.progress_report(&self.token, message).await;
            }
            Effect::ShowMessage { level, text } => {
                self.frontend.show_message(level, text).await;
            }
            Effect::ArmTimer { at } => self.timer = Some(self.started + at),
            Effect::Finish(outcome) => self.outcome = Some(outcome),
        }
    }
}

/// An event's kind, for the log (the event itself may hold a whole document).
fn event_name(event: &Event) -> &'static str {
    match event {
        Event::SourceConnected => "source connected",
        Event::ModelText(_) => "model text",
        Event::ProposedText(_) => "proposed text",
        Event::SourceFinished => "source finished",
        Event::SourceFailed { .. } => "source failed",
        Event::DocumentChanged { .. } => "document changed",
        Event::DocumentClosed => "document closed",
        Event::EditAnswered {
            answer: EditAnswer::Applied,
            ..
        } => "answered applied",
        Event::EditAnswered {
            answer: EditAnswer::Rejected,
            ..
        } => "answered rejected",
        Event::EditAnswered {
            answer: EditAnswer::Error(_),
            ..
        } => "answered error",
        Event::Tick => "tick",
        Event::Cancel => "cancel",
        Event::Fail { .. } => "fail",
    }
}

fn effect_name(effect: &Effect) -> String {
    match effect {
        Effect::SendEdit(proposed) => format!("send edit v{}", proposed.version),
        Effect::ReportProgress(_) => "report".into(),
        Effect::ShowMessage { .. } => "message".into(),
        Effect::ArmTimer { at } => format!("timer {}ms", at.as_millis()),
        Effect::Finish(outcome) => format!("finish {outcome:?}"),
    }
}

/// Sleeps until `at`; never wakes without one (callers guard that `select!` branch).
pub(crate) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One engine step that cannot take the process down. A panic inside the step becomes a
/// failed job: the engine is told to fail, which puts the original text back where the region
/// still holds baton's text; if that panics too, the job ends failed without restoring.
fn guarded_step(
    engine: &mut EditEngine,
    now: Duration,
    event: Event,
    step: impl Fn(&mut EditEngine, Duration, Event) -> Vec<Effect>,
) -> Vec<Effect> {
    let panic = match crate::panics::catch(|| step(engine, now, event)) {
        Ok(effects) => return effects,
        Err(panic) => panic,
    };
    tracing::error!(panic = %panic, "the edit engine panicked; failing the job");
    let reason = format!("internal error: {panic}");
    let fail = Event::Fail {
        reason: reason.clone(),
    };
    match crate::panics::catch(|| step(engine, now, fail)) {
        Ok(effects) => effects,
        Err(again) => {
            tracing::error!(panic = %again, "the edit engine panicked while failing the job");
            vec![Effect::Finish(Outcome::Failed {
                reason,
                restored: false,
            })]
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use text::{ContentChange, PositionEncoding};

    /// Applies a sent edit to `document` as the editor would, and feeds the change back.
    fn land(engine: &mut EditEngine, document: &mut Document, effects: &[Effect]) -> Vec<Effect> {
        let Some(Effect::SendEdit(edit)) = effects
            .iter()
            .find(|effect| matches!(effect, Effect::SendEdit(_)))
        else {
            panic!("no edit sent: {effects:?}");
        };
        let encoding = PositionEncoding::Utf8;
        let change = ContentChange {
            range: Some(document.range(edit.replacement.range.clone(), encoding)),
            text: edit.replacement.text.clone(),
        };
        let changes = document
            .apply_changes(document.version() + 1, &[change], encoding)
            .unwrap();
        let event = Event::DocumentChanged {
            document: document.clone(),
            changes,
        };
        engine.step(Duration::ZERO, event)
    }

    /// A rewrite of the whole of "old\n", and that document.
    fn rewriting_old() -> (EditEngine, Document) {
        let document = Document::new("old\n", 1, "text");
        let rewrite = Rewrite {
            region: 0..4,
            aligned_original: "old\n".into(),
            before: String::new(),
            target_ends_with_newline: true,
            empty_reply_reason: "empty".into(),
        };
        let engine = EditEngine::rewrite(document.clone(), rewrite, EngineSettings::default());
        (engine, document)
    }

    /// An engine whose region ("old\n") shows the model's "new\n", and the document.
    fn showing_new_text() -> (EditEngine, Document) {
        let (mut engine, mut document) = rewriting_old();
        engine.step(Duration::ZERO, Event::SourceConnected);
        let effects = engine.step(Duration::ZERO, Event::ModelText("new\n".into()));
        land(&mut engine, &mut document, &effects);
        assert_eq!(document.text(), "new\n");
        (engine, document)
    }

    fn panics_unless_failing(engine: &mut EditEngine, now: Duration, event: Event) -> Vec<Effect> {
        match event {
            Event::Fail { .. } => engine.step(now, event),
            _ => panic!("boom"),
        }
    }

    #[test]
    fn a_panic_in_a_step_fails_the_job_and_restores_the_target() {
        let (mut engine, mut document) = showing_new_text();
        let effects = guarded_step(
            &mut engine,
            Duration::ZERO,
            Event::ModelText("more".into()),
            panics_unless_failing,
        );
        let effects = land(&mut engine, &mut document, &effects);
        assert_eq!(document.text(), "old\n");
        assert_eq!(
            effects,
            vec![Effect::Finish(Outcome::Failed {
                reason: "internal error: boom".into(),
                restored: true
            })]
        );
    }

    /// A frontend that accepts everything and shows nothing.
    struct Silent;

    impl Frontend for Silent {
        fn apply_edit(
            &self,
            _: &DocumentUri,
            _: &Document,
            _: &edit::diff::Replacement,
        ) -> futures::future::BoxFuture<'static, Result<bool, String>> {
            Box::pin(async { Ok(true) })
        }
        fn progress_begin(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> futures::future::BoxFuture<'static, ()> {
            Box::pin(async {})
        }
        fn progress_report(&self, _: &str, _: String) -> futures::future::BoxFuture<'static, ()> {
            Box::pin(async {})
        }
        fn progress_end(&self, _: &str, _: String) -> futures::future::BoxFuture<'static, ()> {
            Box::pin(async {})
        }
        fn show_message(
            &self,
            _: crate::frontend::MessageLevel,
            _: String,
        ) -> futures::future::BoxFuture<'static, ()> {
            Box::pin(async {})
        }
        fn show_markdown(&self, _: &str, _: String) -> futures::future::BoxFuture<'static, ()> {
            Box::pin(async {})
        }
    }

    /// Found by the server-loop fuzz: a job cancelled while its model stream was connecting,
    /// whose stream then stalled, never ended.
    #[tokio::test(flavor = "current_thread")]
    async fn a_cancel_that_came_while_connecting_ends_the_job() {
        let (engine, _) = rewriting_old();
        let mut driver = EditDriver::new(
            Arc::new(Silent),
            DocumentUri::new("file:///a"),
            "baton/job/1".into(),
            engine,
        );
        driver.feed(Event::SourceConnected).await;
        let stalled: TokenStream = Box::pin(futures::stream::pending());
        let (_sender, events) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let outcome = tokio::time::timeout(
            Duration::from_secs(5),
            driver.run(Source::Model(stalled), events, &cancel),
        )
        .await
        .expect("the job ends");
        assert_eq!(outcome, Outcome::Cancelled { restored: true });
    }

    #[test]
    fn a_panic_while_failing_ends_the_job_without_restoring() {
        let (mut engine, _document) = showing_new_text();
        let effects = guarded_step(&mut engine, Duration::ZERO, Event::Tick, |_, _, _| {
            panic!("{}", "boom again")
        });
        assert_eq!(
            effects,
            vec![Effect::Finish(Outcome::Failed {
                reason: "internal error: boom again".into(),
                restored: false
            })]
        );
    }
}
