//! Plans written by an agent in its plan mode (`plan.source = "agent"`).
//!
//! The agent runs read-only in a shadow workspace (the user's unsaved buffers included, secrets
//! left out) with [`SessionMode::Plan`]: codex app-server's plan collaboration mode, or an ACP
//! agent's plan (else read-only) mode. Its plan streams into the document; questions it asks
//! (`requestUserInput`) become questions with answer slots. The agent is kept: "Refine plan"
//! sends the user's answers to the questions it waits on, or the revised document as the next
//! turn of the same thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use harness::agent::{
    self, AgentEvent, AgentHandle, AgentSpec, Approval, QuestionRequest, SessionMode,
    SessionOptions, TurnEnd,
};
use harness::shadow::Shadow;
use plan::{Plan, PlanContext, Question};

use super::{
    Ending, Job, PlanRequest, PlanState, STREAM_INTERVAL, WRITING_NOTE, default_title, plural,
};
use crate::frontend::Frontend;
use crate::tasks::files::BufferFiles;

/// A plan-mode agent kept between the plan's turns.
pub struct PlanAgent {
    handle: AgentHandle,
    events: mpsc::UnboundedReceiver<AgentEvent>,
    /// Questions the agent waits on, if it does.
    pending: Option<QuestionRequest>,
    /// Held while the agent lives: its slot is not given to another task.
    _shadow: Option<Arc<Shadow>>,
}

impl Drop for PlanAgent {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { handle.shutdown().await });
        }
    }
}

/// How one of the agent's turns ended.
enum Turn {
    /// The plan's text.
    Plan(String),
    /// The agent waits for answers; the plan so far.
    Questions(String),
}

/// Writes a new plan with an agent in plan mode.
pub(super) async fn write_first(
    job: &Job,
    frontend: &Arc<dyn Frontend>,
    state: &mut PlanState,
    spec: AgentSpec,
    request: &PlanRequest,
    context: &PlanContext,
    title: &str,
) -> Ending {
    let mut agent = match start(job, frontend, spec).await {
        Ok(agent) => agent,
        Err(ending) => return ending,
    };
    let (system, user) = plan::prompt::plan_request(&request.instruction, context);
    if let Err(err) = agent.handle.prompt(format!("{system}\n\n{user}")) {
        return Ending::Failed(err.to_string());
    }
    let turn = drive(job, frontend, &mut agent, state, Some(title)).await;
    let ending = settle(job, frontend, state, &mut agent, turn, title, None).await;
    *job.entry.agent.lock().await = Some(agent);
    ending
}

/// Refines with the plan's agent: answers to its questions, or the revised document as the
/// next turn of its thread (a new agent when the old one is gone).
#[allow(clippy::too_many_arguments)]
pub(super) async fn refine(
    job: &Job,
    frontend: &Arc<dyn Frontend>,
    state: &mut PlanState,
    spec: AgentSpec,
    refined_text: &str,
    user: &Plan,
    changes: &[String],
    context: &PlanContext,
) -> Ending {
    let kept = job.entry.agent.lock().await.take();
    let mut agent = match kept {
        Some(agent) => agent,
        None => match start(job, frontend, spec).await {
            Ok(agent) => agent,
            Err(ending) => return ending,
        },
    };
    let sent = match agent.pending.take() {
        Some(pending) => {
            let answers = answers_for(&pending, user);
            agent.handle.answer_questions(pending.id, answers)
        }
        None => {
            let (system, prompt) =
                plan::prompt::refine_request(state.baseline.as_ref(), user, changes, context);
            agent.handle.prompt(format!("{system}\n\n{prompt}"))
        }
    };
    if let Err(err) = sent {
        return Ending::Failed(err.to_string());
    }
    let turn = drive(job, frontend, &mut agent, state, None).await;
    let ending = settle(
        job,
        frontend,
        state,
        &mut agent,
        turn,
        &user.title,
        Some((refined_text, user)),
    )
    .await;
    *job.entry.agent.lock().await = Some(agent);
    ending
}

async fn start(
    job: &Job,
    frontend: &Arc<dyn Frontend>,
    spec: AgentSpec,
) -> Result<PlanAgent, Ending> {
    frontend
        .progress_report(&job.token, format!("starting {} in plan mode", spec.name))
        .await;
    let harness = &job.config.config.harness;
    let shadow = if spec.connect.is_some() {
        None
    } else {
        Some(
            crate::tasks::prepare_shadow(&job.session, &job.config, &job.root)
                .await
                .map_err(|reason| {
                    Ending::Failed(format!("could not prepare the shadow workspace: {reason}"))
                })?,
        )
    };
    let cwd = match &shadow {
        Some(shadow) => shadow.root().to_path_buf(),
        None => crate::tasks::remote_cwd(harness, &spec, &job.root),
    };
    let options = SessionOptions {
        cwd: cwd.clone(),
        approval: Approval::ReadOnly,
        mode: SessionMode::Plan,
        files: Arc::new(BufferFiles {
            session: job.session.clone(),
            shadow: cwd,
            workspace: job.root.clone(),
            never_send: job.config.never_send.clone(),
        }),
        grace: Duration::from_millis(harness.grace_ms),
    };
    let started = tokio::select! {
        biased;
        _ = job.cancel.cancelled() => return Err(Ending::Cancelled),
        started = agent::start(&spec, options) => started,
    };
    let (handle, events) = started.map_err(|err| Ending::Failed(err.to_string()))?;
    Ok(PlanAgent {
        handle,
        events,
        pending: None,
        _shadow: shadow,
    })
}

/// Runs the agent's turn to its end (or its questions); with `stream_title`, the plan streams
/// into the document as it is written.
async fn drive(
    job: &Job,
    frontend: &Arc<dyn Frontend>,
    agent: &mut PlanAgent,
    state: &mut PlanState,
    stream_title: Option<&str>,
) -> Result<Turn, Ending> {
    let mut planned = String::new();
    let mut final_plan: Option<String> = None;
    let mut message = String::new();
    let mut entries: Vec<String> = Vec::new();
    let mut last = Instant::now();
    loop {
        let event = tokio::select! {
            biased;
            _ = job.cancel.cancelled() => {
                agent.handle.cancel().ok();
                return Err(Ending::Cancelled);
            }
            event = agent.events.recv() => event,
        };
        let Some(event) = event else {
            return Err(Ending::Failed("the agent exited".into()));
        };
        match event {
            AgentEvent::PlanDelta(delta) => planned.push_str(&delta),
            AgentEvent::PlanText(text) => final_plan = Some(text),
            AgentEvent::Message(text) => message.push_str(&text),
            AgentEvent::Plan(list) => {
                entries = list.into_iter().map(|entry| entry.content).collect();
            }
            AgentEvent::Questions(request) => {
                let so_far = best_text(final_plan.as_deref(), &planned, &message, &entries);
                let count = request.questions.len();
                agent.pending = Some(request);
                frontend
                    .progress_report(
                        &job.token,
                        format!("{count} question{} for you", plural(count)),
                    )
                    .await;
                return Ok(Turn::Questions(so_far));
            }
            AgentEvent::TurnEnded(TurnEnd::Completed) => {
                return Ok(Turn::Plan(best_text(
                    final_plan.as_deref(),
                    &planned,
                    &message,
                    &entries,
                )));
            }
            AgentEvent::TurnEnded(TurnEnd::Cancelled) => return Err(Ending::Cancelled),
            AgentEvent::TurnEnded(TurnEnd::Failed(reason)) => return Err(Ending::Failed(reason)),
            AgentEvent::Exited { reason } => {
                return Err(Ending::Failed(format!("the agent exited: {reason}")));
            }
            AgentEvent::Permission(request) => {
                // Plan mode changes nothing: whatever it asks to do is declined.
                let _ = agent
                    .handle
                    .answer(request.id, agent::PermissionAnswer::Deny);
            }
            AgentEvent::Warning(text) => tracing::warn!("plan agent: {text}"),
            _ => {}
        }
        if let Some(title) = stream_title
            && last.elapsed() >= STREAM_INTERVAL
        {
            last = Instant::now();
            let text = best_text(final_plan.as_deref(), &planned, &message, &entries);
            let mut plan = Plan::parse_partial(&text);
            default_title(&mut plan, title);
            plan.preamble = WRITING_NOTE.to_string();
            state
                .document
                .publish_if_open(
                    &job.session,
                    frontend,
                    &job.config.config.edit,
                    plan.render(),
                )
                .await;
        }
    }
}

/// The plan's text: the plan item's final text, else its streamed text, else the agent's
/// message, else its plan entries as steps.
fn best_text(final_plan: Option<&str>, planned: &str, message: &str, entries: &[String]) -> String {
    if let Some(text) = final_plan.filter(|text| !text.trim().is_empty()) {
        return text.to_string();
    }
    if !planned.trim().is_empty() {
        return planned.to_string();
    }
    if !entries.is_empty() && Plan::parse(message).is_err() {
        let mut text = message.to_string();
        text.push_str("\n\n## Steps\n\n");
        for entry in entries {
            text.push_str(&format!("- [ ] {}\n", entry.replace('\n', " ")));
        }
        return text;
    }
    message.to_string()
}

/// Brings a turn's plan (or questions) into the document.
async fn settle(
    job: &Job,
    frontend: &Arc<dyn Frontend>,
    state: &mut PlanState,
    agent: &mut PlanAgent,
    turn: Result<Turn, Ending>,
    title: &str,
    refined: Option<(&str, &Plan)>,
) -> Ending {
    let turn = match turn {
        Ok(turn) => turn,
        Err(ending) => return ending,
    };
    match turn {
        Turn::Plan(text) => match refined {
            Some((refined_text, user)) => {
                job.settle_refined(frontend, state, refined_text, user, &text)
                    .await
            }
            None => job.settle_first(frontend, state, &text, title).await,
        },
        Turn::Questions(text) => {
            let mut plan = Plan::parse_partial(&text);
            default_title(&mut plan, title);
            if let Some((_, user)) = refined {
                plan = plan::revise::carry_over(user, plan);
            }
            if plan.goal.trim().is_empty() {
                plan.goal = state.instruction.trim().to_string();
            }
            plan.preamble = "_The agent asks the questions below: write your answers after \
                             `Answer:`, then use the code action \"refine plan\"._"
                .to_string();
            let pending = agent.pending.as_ref().map_or(&[][..], |p| &p.questions[..]);
            for question in pending {
                plan.questions.push(Question {
                    text: question_text(question),
                    answer: String::new(),
                });
            }
            let rendered = plan.render();
            if let Some((refined_text, _)) = refined {
                state.document.restart(refined_text.to_string());
            }
            state
                .document
                .publish(&job.session, frontend, &job.config.config.edit, rendered)
                .await;
            state.document.settle().await;
            let count = pending.len();
            state.baseline = Some(plan);
            Ending::Done(format!(
                "the agent asks {count} question{}: answer in the plan, then refine",
                plural(count)
            ))
        }
    }
}

/// How a question reads in the document: its header, the question, the options it offers.
fn question_text(question: &harness::agent::UserQuestion) -> String {
    let mut text = String::new();
    if !question.header.trim().is_empty() {
        text.push_str(&format!("{}: ", question.header.trim()));
    }
    text.push_str(question.question.trim());
    if !question.options.is_empty() {
        text.push_str(&format!(" (options: {})", question.options.join(" / ")));
    }
    text.replace('\n', " ")
}

/// The user's answers to the questions the agent waits on, found by the question's text in
/// the document.
fn answers_for(pending: &QuestionRequest, user: &Plan) -> Vec<(String, String)> {
    pending
        .questions
        .iter()
        .filter_map(|question| {
            let text = question_text(question);
            let found = user
                .questions
                .iter()
                .find(|asked| asked.text.trim() == text.trim())
                .or_else(|| {
                    user.questions
                        .iter()
                        .find(|asked| asked.text.contains(question.question.trim()))
                })?;
            let answer = found.answer.trim();
            (!answer.is_empty()).then(|| (question.id.clone(), answer.to_string()))
        })
        .collect()
}
