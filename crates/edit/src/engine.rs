//! The edit engine: one job's landing of new text in the user's buffer, as a synchronous state
//! machine.
//!
//! An [`EditEngine`] is fed [`Event`]s — model text, the source ending or failing, document
//! changes (baton's own edits coming back and the user's typing), the editor's answers to
//! `workspace/applyEdit`, timer ticks, cancellation — and answers each with [`Effect`]s: send this
//! single-replacement edit against version N, report progress, show a message, wake me at time T,
//! finish with an [`Outcome`]. It does no I/O and reads no clock: time is passed in with every
//! step as the [`Duration`] since the job started, so the same events always give the same
//! effects. The server's job module is the async driver that feeds it and performs its effects;
//! the tests in `engine/transcripts.rs` feed it directly.
//!
//! Two kinds of text can land:
//! - **A streamed rewrite** ([`EditEngine::rewrite`]): a model's reply, shown as it grows
//!   (through [`ReplyText`] and [`Aligner`]) at a bounded cadence: the first text at once, then
//!   a completed line after half the flush interval, anything pending every flush interval. The
//!   region is followed by [`Landing`]; the user typing inside it stops the job and keeps the
//!   user's text.
//! - **A proposed whole text** ([`EditEngine::merge`]): an agent's new text for a region or a
//!   whole file, computed from a base the agent started from. The user's changes since that
//!   base are three-way merged into it ([`crate::merge`]), and the result lands one minimal
//!   hunk at a time; each time the user types meanwhile, the typing is merged into what is
//!   left to land (`engine/merging.rs`). Typing inside the region is expected here and never
//!   stops the job; where the user and the proposal changed the same lines, the user's text
//!   stays and the conflict is reported.
//!
//! Both share the rules that make landing safe: one edit in flight, and it is a single
//! replacement; the document's content decides whether an edit landed, never `applied: true`
//! (an edit reported applied that does not show up within the landing timeout is recomputed);
//! a rejected edit is recomputed once the document moves past its version (or after the landing
//! timeout); cancelling or failing puts the original text back where the region still holds
//! baton's text.

use std::ops::Range;
use std::time::Duration;

use text::{AppliedChange, Document};

use crate::landing::{Landing, Observed, ProposedEdit};
use crate::preview::Aligner;
use crate::reply::ReplyText;

use merging::{MergeLanding, MergeStep};

/// How often progress is reported while text streams.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// The shortest landing timeout used while restoring, so that restoring always gets a chance.
const MINIMUM_RESTORE_PATIENCE: Duration = Duration::from_millis(100);

/// Timing of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSettings {
    /// Longest wait between two streamed updates of the buffer. A completed line waits at least
    /// half of it, so that a fast stream does not send an edit per line.
    pub flush_interval: Duration,
    /// How long an edit the editor reported as applied may take to show up in the document, and
    /// how long a rejected edit waits for a newer version before it is retried.
    pub landing_timeout: Duration,
}

impl Default for EngineSettings {
    fn default() -> EngineSettings {
        EngineSettings {
            flush_interval: Duration::from_millis(50),
            landing_timeout: Duration::from_millis(3000),
        }
    }
}

/// What a streamed rewrite replaces and how its reply is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The bytes of the document the job replaces.
    pub region: Range<usize>,
    /// What the partial reply is aligned against (the region without a consumed marker line).
    pub aligned_original: String,
    /// Text shown before the reply in the region (a separator when tests are inserted).
    pub before: String,
    /// Whether the text the model was asked about ends with a line break (see
    /// [`ReplyText::finish`]).
    pub target_ends_with_newline: bool,
    /// The failure reason when the reply holds no text.
    pub empty_reply_reason: String,
}

/// Everything that can move a job forward.
#[derive(Debug, Clone)]
pub enum Event {
    /// The source answered (the model stream is open). A failure or cancellation before this has
    /// shown nothing and restores nothing.
    SourceConnected,
    /// More of a streamed rewrite's reply: one token or a batch of them.
    ModelText(String),
    /// A whole new text for a merge job's region; replaces any earlier proposal.
    ProposedText(String),
    /// No more text will come.
    SourceFinished,
    /// The source failed; the reason is shown to the user.
    SourceFailed { reason: String },
    /// The document changed (baton's edit or the user's): its new state and what changed.
    DocumentChanged {
        document: Document,
        changes: Vec<AppliedChange>,
    },
    /// The document was closed.
    DocumentClosed,
    /// The editor answered the edit computed against `version`.
    EditAnswered { version: i32, answer: EditAnswer },
    /// A timer armed by [`Effect::ArmTimer`] fired (early or spurious ticks are harmless).
    Tick,
    /// The user cancelled the job.
    Cancel,
    /// The job must fail for a reason outside the source and the editor (the driver caught a
    /// panic in a step): restore what can be restored, or, when already restoring, stop.
    Fail { reason: String },
}

/// The editor's answer to `workspace/applyEdit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditAnswer {
    /// `applied: true`, which proves nothing: the document decides.
    Applied,
    /// `applied: false`: recompute on a newer version.
    Rejected,
    /// The request failed; the job fails.
    Error(String),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this single replacement against the document at `edit.version`, and feed back the
    /// answer as [`Event::EditAnswered`].
    SendEdit(ProposedEdit),
    /// Report progress.
    ReportProgress(String),
    /// Show a message to the user.
    ShowMessage { level: MessageLevel, text: String },
    /// Feed [`Event::Tick`] at this time since the start (replaces any earlier timer).
    ArmTimer { at: Duration },
    /// The job is over: end the progress with [`Outcome::progress_message`] and show
    /// [`Outcome::user_message`]. No effect follows.
    Finish(Outcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageLevel {
    Error,
    Warning,
    Info,
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

/// One job's landing state machine. See the module documentation.
#[derive(Debug)]
pub struct EditEngine {
    settings: EngineSettings,
    document: Document,
    target: Target,
    phase: Phase,
    flight: Flight,
    /// The timer the driver holds, so that an unchanged deadline is not armed again.
    armed: Option<Duration>,
    document_closed: bool,
}

#[derive(Debug)]
enum Target {
    Rewrite(Box<RewriteTarget>),
    Merge(Box<MergeLanding>),
}

#[derive(Debug)]
struct RewriteTarget {
    landing: Landing,
    rewrite: Rewrite,
    aligner: Aligner,
    reply: ReplyText,
    /// Characters of the reply received so far, for progress. (Not tokens: the model stream
    /// hands text over in batches of as many tokens as arrived together.)
    characters: usize,
    /// Text arrived that the buffer does not show yet.
    dirty: bool,
    /// A line was completed since the last flush.
    line_completed: bool,
    /// When the last streamed update was sent; `None` before the first, which goes at once.
    last_flush: Option<Duration>,
    last_report: Duration,
    /// The whole new text of the region, once the reply is complete.
    final_text: Option<String>,
}

/// The edit in flight, as the editor answered it.
#[derive(Debug, Default)]
struct Flight {
    /// Version of the edit whose answer we wait for.
    waiting_for_answer: Option<i32>,
    /// When the editor said `applied: true` for the edit still in flight.
    answered_at: Option<Duration>,
    /// A rejected edit's version and when it was rejected: wait for the document to move past
    /// that version, or for the landing timeout, before sending again.
    rejected: Option<(i32, Duration)>,
}

#[derive(Debug)]
enum Phase {
    Connecting,
    Landing,
    Restoring {
        interrupt: Interrupt,
        deadline: Duration,
    },
    Finished(Outcome),
}

#[derive(Debug, Clone)]
enum Interrupt {
    Cancelled,
    Failed(String),
}

impl EditEngine {
    /// A job that streams a model's rewrite of `rewrite.region` of `document`.
    pub fn rewrite(document: Document, rewrite: Rewrite, settings: EngineSettings) -> EditEngine {
        let landing = Landing::new(&document, rewrite.region.clone());
        let target = RewriteTarget {
            landing,
            aligner: Aligner::new(&rewrite.aligned_original),
            rewrite,
            reply: ReplyText::new(),
            characters: 0,
            dirty: false,
            line_completed: false,
            last_flush: None,
            last_report: Duration::ZERO,
            final_text: None,
        };
        EditEngine::new(document, Target::Rewrite(Box::new(target)), settings)
    }

    /// A job that lands proposed whole texts for `region` of `document` (the whole document for
    /// a file), three-way merged with the user's typing. `base` is the region's text the
    /// proposals were computed from; usually the region's text now, but an agent that started
    /// earlier passes the text it started from. Proposals come as [`Event::ProposedText`]; the
    /// job is connected from the start.
    pub fn merge(
        document: Document,
        region: Range<usize>,
        base: String,
        settings: EngineSettings,
    ) -> EditEngine {
        let target = MergeLanding::new(&document, region, base);
        let mut engine = EditEngine::new(document, Target::Merge(Box::new(target)), settings);
        engine.phase = Phase::Landing;
        engine
    }

    fn new(document: Document, target: Target, settings: EngineSettings) -> EditEngine {
        EditEngine {
            settings,
            document,
            target,
            phase: Phase::Connecting,
            flight: Flight::default(),
            armed: None,
            document_closed: false,
        }
    }

    /// The document as the job last saw it.
    pub fn document(&self) -> &Document {
        &self.document
    }

    /// How the job ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.phase {
            Phase::Finished(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// Whether the job still reads its source. Once it restores or finishes, the driver drops
    /// the model stream, which closes the connection.
    pub fn wants_source(&self) -> bool {
        match (&self.phase, &self.target) {
            (Phase::Connecting, _) => true,
            (Phase::Landing, Target::Rewrite(target)) => target.final_text.is_none(),
            (Phase::Landing, Target::Merge(target)) => !target.source_finished,
            _ => false,
        }
    }

    /// How many of a merge job's proposed changes overlapped the user's and were dropped (the
    /// user's text kept), so far. Always 0 for a rewrite.
    pub fn conflicts(&self) -> usize {
        match &self.target {
            Target::Merge(target) => target.conflicts(),
            Target::Rewrite(_) => 0,
        }
    }

    /// Feeds one event at `now` (time since the job started) and returns what to do.
    pub fn step(&mut self, now: Duration, event: Event) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.outcome().is_some() {
            return effects;
        }
        self.handle(now, event, &mut effects);
        if self.outcome().is_none() {
            self.advance(now, &mut effects);
        }
        if self.outcome().is_none() {
            self.arm_timer(now, &mut effects);
        }
        effects
    }

    fn handle(&mut self, now: Duration, event: Event, effects: &mut Vec<Effect>) {
        match event {
            Event::SourceConnected => {
                if matches!(self.phase, Phase::Connecting) {
                    self.phase = Phase::Landing;
                }
            }
            Event::ModelText(delta) => {
                if matches!(self.phase, Phase::Connecting) {
                    self.phase = Phase::Landing;
                }
                if let (Phase::Landing, Target::Rewrite(target)) = (&self.phase, &mut self.target)
                    && target.final_text.is_none()
                {
                    target.characters += delta.chars().count();
                    target.line_completed |= delta.contains('\n');
                    target.reply.push(&delta);
                    target.dirty = true;
                }
            }
            Event::ProposedText(text) => {
                if let (Phase::Landing, Target::Merge(target)) = (&self.phase, &mut self.target)
                    && !target.source_finished
                {
                    target.propose(&text);
                }
            }
            Event::SourceFinished => {
                if !matches!(self.phase, Phase::Landing | Phase::Connecting) {
                    return;
                }
                self.phase = Phase::Landing;
                let empty_reply = match &mut self.target {
                    Target::Rewrite(target) => {
                        let text = target.reply.finish(target.rewrite.target_ends_with_newline);
                        if text.trim().is_empty() {
                            Some(target.rewrite.empty_reply_reason.clone())
                        } else {
                            target.final_text = Some(format!("{}{text}", target.rewrite.before));
                            None
                        }
                    }
                    Target::Merge(target) => {
                        target.source_finished = true;
                        None
                    }
                };
                if let Some(reason) = empty_reply {
                    self.interrupt(now, Interrupt::Failed(reason), effects);
                }
            }
            Event::SourceFailed { reason } => {
                // Once the source is done with (finished, or dropped to restore), its failure
                // changes nothing.
                if self.wants_source() {
                    self.interrupt(now, Interrupt::Failed(reason), effects);
                }
            }
            Event::DocumentChanged { document, changes } => {
                self.document = document;
                match self.target.observe(&self.document, &changes) {
                    Observed::UserEditedTarget => self.user_edited_target(effects),
                    Observed::Landed => {
                        self.flight.waiting_for_answer = None;
                        self.flight.answered_at = None;
                    }
                    Observed::Skipped => {
                        self.flight.waiting_for_answer = None;
                        self.flight.answered_at = None;
                        self.target.show_again();
                    }
                    Observed::Unchanged => {}
                }
            }
            Event::DocumentClosed => {
                self.document_closed = true;
                let reason = "the document was closed".to_string();
                self.interrupt(now, Interrupt::Failed(reason), effects);
            }
            Event::EditAnswered { version, answer } => {
                if self.flight.waiting_for_answer != Some(version) {
                    // The document already told us what happened to this edit.
                    return;
                }
                match answer {
                    EditAnswer::Applied => self.flight.answered_at = Some(now),
                    EditAnswer::Rejected => {
                        self.target.forget_in_flight();
                        self.target.show_again();
                        self.flight.waiting_for_answer = None;
                        self.flight.rejected = Some((version, now));
                    }
                    EditAnswer::Error(error) => {
                        // The request failed, so the edit is not coming. Should it land after
                        // all, the region will not match and restoring stops without touching it.
                        self.target.forget_in_flight();
                        self.flight.waiting_for_answer = None;
                        let reason = format!("the editor could not apply the edit: {error}");
                        self.interrupt(now, Interrupt::Failed(reason), effects);
                    }
                }
            }
            Event::Tick => {
                // The timer that fired is gone; whatever is still needed is armed again below.
                self.armed = None;
                if self
                    .stall_deadline()
                    .is_some_and(|deadline| deadline <= now)
                {
                    self.on_stall();
                }
                if let Phase::Restoring { deadline, .. } = self.phase
                    && deadline <= now
                {
                    self.finish_restoring(false, effects);
                }
            }
            Event::Cancel => self.interrupt(now, Interrupt::Cancelled, effects),
            Event::Fail { reason } => {
                if let Phase::Restoring { interrupt, .. } = &mut self.phase {
                    // Restoring itself went wrong: say so, and stop.
                    *interrupt = Interrupt::Failed(reason);
                    self.finish_restoring(false, effects);
                } else {
                    self.interrupt(now, Interrupt::Failed(reason), effects);
                }
            }
        }
    }

    /// Cancellation or failure: before anything was shown, the job just ends; while landing, it
    /// starts putting the original back; while restoring, restoring is over.
    fn interrupt(&mut self, now: Duration, interrupt: Interrupt, effects: &mut Vec<Effect>) {
        match &self.phase {
            Phase::Connecting => {
                let outcome = match interrupt {
                    Interrupt::Cancelled => Outcome::Cancelled { restored: false },
                    Interrupt::Failed(reason) => Outcome::Failed {
                        reason,
                        restored: false,
                    },
                };
                self.finish(outcome, effects);
            }
            Phase::Landing => {
                let patience = self.settings.landing_timeout.max(MINIMUM_RESTORE_PATIENCE);
                if let Target::Merge(target) = &mut self.target {
                    target.start_reverting();
                }
                self.phase = Phase::Restoring {
                    interrupt,
                    deadline: now + patience * 2,
                };
            }
            Phase::Restoring { .. } => {
                // A second cancellation changes nothing; a failure (the editor erring, the
                // document closing) means the original cannot be put back.
                if let Interrupt::Failed(_) = interrupt {
                    self.finish_restoring(false, effects);
                }
            }
            Phase::Finished(_) => {}
        }
    }

    fn user_edited_target(&mut self, effects: &mut Vec<Effect>) {
        match self.phase {
            Phase::Restoring { .. } => self.finish_restoring(false, effects),
            _ => self.finish(Outcome::UserEditedTarget, effects),
        }
    }

    fn finish_restoring(&mut self, restored: bool, effects: &mut Vec<Effect>) {
        let Phase::Restoring { interrupt, .. } = &self.phase else {
            return;
        };
        let outcome = match interrupt.clone() {
            Interrupt::Cancelled => Outcome::Cancelled { restored },
            Interrupt::Failed(reason) => Outcome::Failed { reason, restored },
        };
        self.finish(outcome, effects);
    }

    fn finish(&mut self, outcome: Outcome, effects: &mut Vec<Effect>) {
        effects.push(Effect::Finish(outcome.clone()));
        self.phase = Phase::Finished(outcome);
    }

    /// Sends what the current state calls for, and finishes when the region holds it.
    fn advance(&mut self, now: Duration, effects: &mut Vec<Effect>) {
        match (&self.phase, &self.target) {
            (Phase::Connecting | Phase::Finished(_), _) => {}
            (Phase::Landing, Target::Rewrite(_)) => self.advance_rewrite(now, effects),
            (Phase::Restoring { .. }, Target::Rewrite(target)) => {
                let original = target.landing.original().to_string();
                if target.landing.shown() == original && !target.landing.in_flight() {
                    self.finish_restoring(true, effects);
                } else if self.document_closed {
                    self.finish_restoring(false, effects);
                } else {
                    self.send_rewrite(original, effects);
                }
            }
            (Phase::Landing | Phase::Restoring { .. }, Target::Merge(_)) => {
                self.advance_merge(effects)
            }
        }
    }

    fn advance_rewrite(&mut self, now: Duration, effects: &mut Vec<Effect>) {
        let Target::Rewrite(target) = &mut self.target else {
            return;
        };
        if let Some(wanted) = &target.final_text {
            if target.landing.shown() == wanted && !target.landing.in_flight() {
                self.finish(Outcome::Done, effects);
                return;
            }
            let wanted = wanted.clone();
            self.send_rewrite(wanted, effects);
        } else if target.dirty && target.flush_due(now, &self.settings) {
            let preview = format!(
                "{}{}",
                target.rewrite.before,
                target.aligner.preview(target.reply.partial())
            );
            if self.send_rewrite(preview, effects)
                && let Target::Rewrite(target) = &mut self.target
            {
                target.dirty = false;
                target.line_completed = false;
                target.last_flush = Some(now);
            }
        }
        let Target::Rewrite(target) = &mut self.target else {
            return;
        };
        if target.characters > 0 && now.saturating_sub(target.last_report) >= PROGRESS_INTERVAL {
            target.last_report = now;
            let what = if target.final_text.is_some() {
                "landing"
            } else {
                "streaming"
            };
            effects.push(Effect::ReportProgress(format!(
                "{what} ({} characters)",
                target.characters
            )));
        }
    }

    /// Sends an edit that makes a rewrite's region show `text`, if none is in flight and the
    /// last rejection has been overtaken. Returns whether the region is (or will be) showing it.
    fn send_rewrite(&mut self, text: String, effects: &mut Vec<Effect>) -> bool {
        if !self.may_send() {
            return false;
        }
        let Target::Rewrite(target) = &mut self.target else {
            return false;
        };
        let Some(proposed) = target.landing.propose(&self.document, &text) else {
            return target.landing.shown() == text;
        };
        self.sent(proposed, effects);
        true
    }

    fn advance_merge(&mut self, effects: &mut Vec<Effect>) {
        let restoring = matches!(self.phase, Phase::Restoring { .. });
        if !self.may_send() {
            return;
        }
        let Target::Merge(target) = &mut self.target else {
            return;
        };
        match target.next_hunk(&self.document) {
            MergeStep::Send(replacement) => {
                if restoring && self.document_closed {
                    self.finish_restoring(false, effects);
                    return;
                }
                let proposed = ProposedEdit {
                    version: self.document.version(),
                    replacement,
                };
                self.sent(proposed, effects);
            }
            MergeStep::Waiting => {}
            MergeStep::Complete { conflicts } if restoring => {
                self.finish_restoring(conflicts == 0, effects);
            }
            MergeStep::Complete { conflicts } => {
                if conflicts > 0 {
                    effects.push(Effect::ShowMessage {
                        level: MessageLevel::Warning,
                        text: format!(
                            "baton: {conflicts} of the proposed changes overlapped with your edits; your text was kept there"
                        ),
                    });
                }
                self.finish(Outcome::Done, effects);
            }
        }
    }

    /// Whether a new edit may go out: none in flight, and no rejection waiting for a newer
    /// version.
    fn may_send(&mut self) -> bool {
        if self.target.in_flight() {
            return false;
        }
        if let Some((version, _)) = self.flight.rejected {
            if self.document.version() <= version {
                return false;
            }
            self.flight.rejected = None;
        }
        true
    }

    fn sent(&mut self, proposed: ProposedEdit, effects: &mut Vec<Effect>) {
        self.flight.waiting_for_answer = Some(proposed.version);
        self.flight.answered_at = None;
        effects.push(Effect::SendEdit(proposed));
    }

    /// When an edit reported as applied has not shown up for too long, or a rejection has seen
    /// no newer version for too long.
    fn stall_deadline(&self) -> Option<Duration> {
        let patience = self.settings.landing_timeout.max(Duration::from_millis(1));
        self.flight
            .answered_at
            .or(self.flight.rejected.map(|(_, at)| at))
            .map(|at| at + patience)
    }

    fn on_stall(&mut self) {
        if self.flight.answered_at.take().is_some() {
            // The editor said the edit applied and never showed it (Neovim 0.11 and Zed answer
            // `applied: true` for a stale edit they skipped). If it lands after all, the next
            // change will not match and the job stops without touching the user's text.
            self.target.forget_in_flight();
            self.target.show_again();
            self.flight.waiting_for_answer = None;
        } else {
            // A rejection with no newer version in sight: retry on the same version.
            self.flight.rejected = None;
        }
    }

    fn arm_timer(&mut self, now: Duration, effects: &mut Vec<Effect>) {
        let flush = match (&self.phase, &self.target) {
            (Phase::Landing, Target::Rewrite(target))
                if target.dirty
                    && target.final_text.is_none()
                    && !target.landing.in_flight()
                    && self.flight.rejected.is_none() =>
            {
                Some(target.next_flush(now, &self.settings))
            }
            _ => None,
        };
        let restore = match self.phase {
            Phase::Restoring { deadline, .. } => Some(deadline),
            _ => None,
        };
        let wanted = [flush, self.stall_deadline(), restore]
            .into_iter()
            .flatten()
            .min();
        if let Some(at) = wanted
            && self.armed != Some(at)
        {
            self.armed = Some(at);
            effects.push(Effect::ArmTimer { at });
        }
    }
}

impl RewriteTarget {
    fn flush_due(&self, now: Duration, settings: &EngineSettings) -> bool {
        self.next_flush(now, settings) <= now
    }

    /// When the pending text should go out: a completed line sooner than a partial one, but not
    /// faster than half the flush interval (at 1,200 tokens/s lines complete every few
    /// milliseconds, and every edit costs the editor work).
    fn next_flush(&self, now: Duration, settings: &EngineSettings) -> Duration {
        let flush_interval = settings.flush_interval.max(Duration::from_millis(1));
        match self.last_flush {
            None => now,
            Some(last) if self.line_completed => last + flush_interval / 2,
            Some(last) => last + flush_interval,
        }
    }
}

impl Target {
    fn in_flight(&self) -> bool {
        match self {
            Target::Rewrite(target) => target.landing.in_flight(),
            Target::Merge(target) => target.in_flight(),
        }
    }

    /// The edit in flight will not land: it was rejected, or it never showed up.
    fn forget_in_flight(&mut self) {
        match self {
            Target::Rewrite(target) => target.landing.abandon_in_flight(),
            Target::Merge(target) => target.forget_in_flight(),
        }
    }

    /// The last update did not land: a streamed rewrite sends the current preview again at the
    /// next flush (a merge recomputes from the document anyway).
    fn show_again(&mut self) {
        if let Target::Rewrite(target) = self
            && target.final_text.is_none()
        {
            target.dirty = true;
        }
    }

    fn observe(&mut self, document: &Document, changes: &[AppliedChange]) -> Observed {
        match self {
            Target::Rewrite(target) => target.landing.observe(document, changes),
            Target::Merge(target) => target.observe(document, changes),
        }
    }
}

mod merging;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod transcripts;
