//! Code actions and `workspace/executeCommand`: the user's ways to start and stop jobs.
//!
//! Code actions are computed from the document snapshot alone and answered at once; each
//! carries a command with explicit arguments (document, range, instruction, diagnostics), so a
//! client can replay it. `executeCommand` validates its arguments, starts a background job and
//! returns the job's token immediately; the job reports through `$/progress` and lands its
//! result with `workspace/applyEdit`.

use std::sync::Arc;

use serde_json::{Value, json};
use tower_lsp_server::jsonrpc;
use tower_lsp_server::ls_types as lsp;

use edit::prompt::Diagnostic;
use text::Document;

use crate::error::Error;
use crate::frontend::{Frontend, MessageLevel};
use crate::job_builder::{self, JobRequest};
use crate::jobs;
use crate::lsp::{Backend, proto};
use crate::targets::{self, Action, TargetRequest};

pub const COMMANDS: &[&str] = &[
    "baton.edit",
    "baton.fix",
    "baton.document",
    "baton.tests",
    "baton.explain",
    "baton.cancel",
    "baton.status",
    "baton.task",
    "baton.tasks",
    "baton.task.reply",
    "baton.task.permission",
    "baton.task.undo",
    "baton.task.keep",
    "baton.task.diff",
    "baton.plan",
    "baton.plan.refine",
    "baton.plan.execute",
    crate::next_edit::APPLY_ALL_COMMAND,
];

/// Adds one code action: title, kind, command, its argument, the diagnostics it fixes, and
/// whether it is preferred.
type PushAction<'a> =
    dyn FnMut(String, lsp::CodeActionKind, &str, Value, Option<Vec<lsp::Diagnostic>>, bool) + 'a;

/// How many lines of a range are searched for `baton:` markers.
const MAX_MARKER_LINES: u32 = 200;

impl Backend {
    pub(crate) fn code_actions(
        &self,
        params: lsp::CodeActionParams,
    ) -> Vec<lsp::CodeActionOrCommand> {
        let uri_key = proto::uri_key(&params.text_document.uri);
        let Some(snapshot) = self.session.snapshot(&uri_key) else {
            return Vec::new();
        };
        let (document, tree, encoding) = (
            &snapshot.document,
            snapshot.tree.as_ref(),
            snapshot.encoding,
        );
        // Each title names the tier its action runs on (`actions.<name>.tier`).
        let config = self.session.config();
        let tier = |action: Action| config.config.actions.get(action).tier.name();
        let text_document = json!({ "uri": uri_key });
        let wants = |kind: &lsp::CodeActionKind| match &params.context.only {
            None => true,
            Some(only) => only
                .iter()
                .any(|allowed| kind.as_str().starts_with(allowed.as_str())),
        };
        let mut actions = Vec::new();
        let mut push = |title: String,
                        kind: lsp::CodeActionKind,
                        command: &str,
                        argument: Value,
                        diagnostics: Option<Vec<lsp::Diagnostic>>,
                        preferred: bool| {
            if !wants(&kind) {
                return;
            }
            actions.push(lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
                title: title.clone(),
                kind: Some(kind),
                diagnostics,
                command: Some(lsp::Command {
                    title,
                    command: command.to_string(),
                    arguments: Some(vec![argument]),
                }),
                is_preferred: preferred.then_some(true),
                ..lsp::CodeAction::default()
            }));
        };

        // Markers on the lines of the range.
        let first_line = params.range.start.line;
        // Saturating: a hostile client may send a line near `u32::MAX`.
        let last_line = params
            .range
            .end
            .line
            .min(first_line.saturating_add(MAX_MARKER_LINES));
        for line in first_line..=last_line {
            if let Some(marker) = syntax::find_marker(document.rope(), line as usize) {
                let range = proto::lsp_range(document, marker.line_range.clone(), encoding);
                push(
                    format!("baton ({}): {}", tier(Action::Edit), marker.instruction),
                    lsp::CodeActionKind::REFACTOR_REWRITE,
                    "baton.edit",
                    json!({ "textDocument": text_document, "range": range, "instruction": marker.instruction }),
                    None,
                    true,
                );
                // The same instruction as a task for the default agent: the one way to start a
                // task in Zed, which runs commands only through code actions.
                push(
                    format!(
                        "baton (agent {}): task: {}",
                        config.config.harness.agent, marker.instruction
                    ),
                    lsp::CodeActionKind::new("source.baton.task"),
                    "baton.task",
                    json!({ "textDocument": text_document, "range": range, "instruction": marker.instruction }),
                    None,
                    false,
                );
            } else if let Some(marker) = syntax::find_plan_marker(document.rope(), line as usize) {
                let range = proto::lsp_range(document, marker.line_range.clone(), encoding);
                push(
                    format!(
                        "baton ({}): plan: {}",
                        crate::plans::source_label(&config),
                        marker.instruction
                    ),
                    lsp::CodeActionKind::new("source.baton.plan"),
                    "baton.plan",
                    json!({ "textDocument": text_document, "range": range, "instruction": marker.instruction }),
                    None,
                    true,
                );
            }
        }

        self.task_actions(&snapshot, params.range.start.line as usize, &mut push);
        self.plan_actions(&snapshot, params.range.start.line as usize, &mut push);

        let byte_range = document.byte_range(proto::range(params.range), encoding);
        if !byte_range.is_empty() {
            let request = TargetRequest {
                action: Action::Edit,
                range: Some(byte_range.clone()),
                instruction: None,
                diagnostics: Vec::new(),
            };
            if let Ok(plan) = targets::plan(document, tree, &request) {
                push(
                    format!(
                        "baton ({}): rewrite selection: {}",
                        tier(Action::Edit),
                        plan.instruction
                    ),
                    lsp::CodeActionKind::REFACTOR_REWRITE,
                    "baton.edit",
                    json!({ "textDocument": text_document, "range": params.range, "instruction": plan.instruction }),
                    None,
                    false,
                );
                push(
                    format!(
                        "baton ({}): plan: {}",
                        crate::plans::source_label(&config),
                        plan.instruction
                    ),
                    lsp::CodeActionKind::new("source.baton.plan"),
                    "baton.plan",
                    json!({
                        "textDocument": text_document,
                        "range": params.range,
                        "instruction": plan.instruction,
                        "diagnostics": params.context.diagnostics,
                    }),
                    None,
                    false,
                );
            }
        }

        if !params.context.diagnostics.is_empty() {
            let count = params.context.diagnostics.len();
            push(
                format!(
                    "baton ({}): fix {count} diagnostic{}",
                    tier(Action::Fix),
                    if count == 1 { "" } else { "s" }
                ),
                lsp::CodeActionKind::QUICKFIX,
                "baton.fix",
                json!({ "textDocument": text_document, "range": params.range, "diagnostics": params.context.diagnostics }),
                Some(params.context.diagnostics.clone()),
                false,
            );
        }
        let plain = json!({ "textDocument": text_document, "range": params.range });
        push(
            format!("baton ({}): document this", tier(Action::Document)),
            lsp::CodeActionKind::REFACTOR_REWRITE,
            "baton.document",
            plain.clone(),
            None,
            false,
        );
        push(
            format!("baton ({}): write tests", tier(Action::Tests)),
            lsp::CodeActionKind::REFACTOR,
            "baton.tests",
            plain.clone(),
            None,
            false,
        );
        push(
            format!("baton ({}): explain", tier(Action::Explain)),
            lsp::CodeActionKind::new("source.baton.explain"),
            "baton.explain",
            plain,
            None,
            false,
        );
        actions
    }

    pub(crate) async fn run_command(
        &self,
        params: lsp::ExecuteCommandParams,
    ) -> jsonrpc::Result<Option<Value>> {
        let action = match params.command.as_str() {
            "baton.edit" => Action::Edit,
            "baton.fix" => Action::Fix,
            "baton.document" => Action::Document,
            "baton.tests" => Action::Tests,
            "baton.explain" => Action::Explain,
            "baton.cancel" => return Ok(Some(self.cancel(&params.arguments))),
            "baton.task" => return self.start_task(&params.arguments).await,
            "baton.tasks" => return Ok(Some(Value::Array(self.session.tasks.list()))),
            "baton.task.reply"
            | "baton.task.permission"
            | "baton.task.undo"
            | "baton.task.keep"
            | "baton.task.diff" => {
                return self
                    .task_command(&params.command, &params.arguments)
                    .await
                    .map(Some)
                    .map_err(|err| err.to_jsonrpc());
            }
            "baton.status" => return Ok(Some(self.status(&params.arguments))),
            crate::next_edit::APPLY_ALL_COMMAND => {
                return crate::next_edit::apply_all(
                    &self.session,
                    &self.client,
                    self.frontend.clone(),
                    &params.arguments,
                )
                .await
                .map(Some)
                .map_err(|err| err.to_jsonrpc());
            }
            "baton.plan" | "baton.plan.refine" | "baton.plan.execute" => {
                return match self.plan_command(&params.command, &params.arguments).await {
                    Ok(value) => Ok(Some(value)),
                    Err(error) => {
                        self.frontend
                            .show_message(MessageLevel::Error, format!("baton: {error}"))
                            .await;
                        Err(error.to_jsonrpc())
                    }
                };
            }
            other => {
                return Err(Error::InvalidArguments(format!(
                    "unknown command {other}; baton knows {}",
                    COMMANDS.join(", ")
                ))
                .to_jsonrpc());
            }
        };
        let arguments =
            CommandArguments::parse(&params.arguments).map_err(|err| err.to_jsonrpc())?;
        match self.start_job(action, arguments, None) {
            Ok(token) => Ok(Some(json!({ "job": token }))),
            Err(error) => {
                // The command is acknowledged either way; the reason is shown to the user.
                self.frontend
                    .show_message(MessageLevel::Error, format!("baton: {error}"))
                    .await;
                Err(error.to_jsonrpc())
            }
        }
    }

    /// Code actions of the task document (answer a permission, review a file, send a reply,
    /// show the diff) and of files a task changed (undo, keep).
    fn task_actions(
        &self,
        snapshot: &crate::session::DocumentSnapshot,
        line: usize,
        push: &mut PushAction<'_>,
    ) {
        use crate::tasks::document::LineAction;
        let Some(path) = snapshot.path.as_deref() else {
            return;
        };
        let review = lsp::CodeActionKind::new("source.baton.review");
        if let Some(task) = self.session.tasks.by_document(path) {
            let id = task.id;
            match LineAction::parse(&snapshot.document.text(), line) {
                Some(LineAction::Permission(permission)) => {
                    for (title, answer) in [
                        ("Allow once", "allow-once"),
                        ("Allow for this task", "allow-task"),
                        ("Deny", "deny"),
                    ] {
                        push(
                            format!("baton: {title} (permission #{permission})"),
                            lsp::CodeActionKind::QUICKFIX,
                            "baton.task.permission",
                            json!({ "task": id, "id": permission, "answer": answer }),
                            None,
                            answer == "allow-once",
                        );
                    }
                }
                Some(LineAction::File(file)) => {
                    push(
                        format!("baton: undo this task's changes to {file}"),
                        review.clone(),
                        "baton.task.undo",
                        json!({ "task": id, "path": file }),
                        None,
                        false,
                    );
                }
                Some(LineAction::Reply(text)) => {
                    push(
                        "baton: send reply to the agent".into(),
                        lsp::CodeActionKind::QUICKFIX,
                        "baton.task.reply",
                        json!({ "task": id, "text": text }),
                        None,
                        true,
                    );
                }
                None => {}
            }
            self.review_actions(id, push);
            push(
                "baton: show this task's diff".into(),
                review,
                "baton.task.diff",
                json!({ "task": id }),
                None,
                false,
            );
            return;
        }
        if let Some(task) = self.session.tasks.touching(path).first() {
            let relative = path
                .strip_prefix(&task.root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            push(
                format!("baton: undo task {}'s changes to this file", task.id),
                review,
                "baton.task.undo",
                json!({ "task": task.id, "path": relative }),
                None,
                false,
            );
            self.review_actions(task.id, push);
        }
    }

    /// Code actions of a plan document: refine it, execute it, execute the step under the
    /// cursor — with every agent (the default first), and inline on the fast tier where a step
    /// allows it.
    fn plan_actions(
        &self,
        snapshot: &crate::session::DocumentSnapshot,
        line: usize,
        push: &mut PushAction<'_>,
    ) {
        let Some(path) = snapshot.path.as_deref() else {
            return;
        };
        let rope = snapshot.document.rope();
        let first_line = if rope.len_lines() > 0 {
            text::boundary::rope_slice_within(rope, 0..rope.line_to_byte(1).min(4096)).to_string()
        } else {
            String::new()
        };
        let root = self.session.root();
        if !self
            .session
            .plans
            .is_plan_document(path, &first_line, root.as_deref())
        {
            return;
        }
        let config = self.session.config();
        let uri = snapshot.uri.as_str();
        let document = json!({ "document": uri });
        let kind = lsp::CodeActionKind::new("source.baton.plan");
        push(
            format!(
                "baton: refine plan ({})",
                crate::plans::source_label(&config)
            ),
            kind.clone(),
            "baton.plan.refine",
            document.clone(),
            None,
            false,
        );
        let harness = &config.config.harness;
        let default = config
            .config
            .plan
            .execute_with
            .clone()
            .unwrap_or_else(|| harness.agent.clone());
        let mut agents = vec![default.clone()];
        agents.extend(
            harness
                .agents
                .keys()
                .filter(|name| **name != default)
                .cloned(),
        );
        // Which step the cursor is on: read only from documents a plan can be, once.
        let text = (snapshot.document.len_bytes() <= plan::MAX_PLAN_BYTES)
            .then(|| snapshot.document.text());
        let step = text
            .as_deref()
            .and_then(|text| plan::Plan::step_at_line(text, line));
        for agent in &agents {
            if let Some(step) = step {
                push(
                    format!("baton (agent {agent}): execute step {}", step + 1),
                    kind.clone(),
                    "baton.plan.execute",
                    json!({ "document": uri, "step": step + 1, "agent": agent }),
                    None,
                    agent == &default,
                );
            }
            push(
                format!("baton (agent {agent}): execute plan"),
                kind.clone(),
                "baton.plan.execute",
                json!({ "document": uri, "agent": agent }),
                None,
                false,
            );
        }
        if let (Some(step), Some(text)) = (step, text.as_deref())
            && config.config.plan.inline_steps
            && let Some(file) = plan::Plan::parse(text).ok().and_then(|plan| {
                crate::plans::inline_step(&self.session, &plan, step, path)
                    .ok()
                    .map(|inline| inline.file)
            })
        {
            push(
                format!(
                    "baton ({}): execute step {} inline in {file}",
                    config.config.actions.get(Action::Edit).tier.name(),
                    step + 1
                ),
                kind,
                "baton.plan.execute",
                json!({ "document": uri, "step": step + 1, "inline": true }),
                None,
                false,
            );
        }
    }

    async fn plan_command(&self, command: &str, arguments: &[Value]) -> Result<Value, Error> {
        let frontend: Arc<dyn Frontend> = self.frontend.clone();
        if command == "baton.plan" {
            let parsed = CommandArguments::parse(arguments)?;
            let instruction = parsed.required_instruction("baton.plan")?;
            let focus = parsed.focus();
            let diagnostics = parsed
                .diagnostics
                .iter()
                .map(|diagnostic| {
                    let place = focus
                        .as_ref()
                        .and_then(|(path, _)| path.file_name())
                        .map(|name| name.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    format!(
                        "{place}:{}: {}",
                        diagnostic.range.start.line + 1,
                        diagnostic.message
                    )
                })
                .collect();
            return crate::plans::start(
                self.session.clone(),
                frontend,
                self.http.clone(),
                crate::plans::PlanRequest {
                    instruction,
                    focus,
                    diagnostics,
                },
            );
        }
        let object = arguments
            .first()
            .and_then(Value::as_object)
            .ok_or_else(|| Error::InvalidArguments(format!("{command} takes {{document, …}}")))?;
        let document = object
            .get("document")
            .or_else(|| object.get("textDocument").and_then(|d| d.get("uri")))
            .and_then(Value::as_str)
            .and_then(proto::parse_uri)
            .and_then(|uri| proto::file_path(&uri))
            .ok_or_else(|| {
                Error::InvalidArguments("document must be the plan document's file URI".into())
            })?;
        if command == "baton.plan.refine" {
            return crate::plans::refine(
                self.session.clone(),
                frontend,
                self.http.clone(),
                &document,
            );
        }
        let step = match object.get("step") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_u64().ok_or_else(|| {
                Error::InvalidArguments("step must be a step number (1-based)".into())
            })? as usize),
        };
        let agent = agent_argument(object.get("agent"))?;
        if object.get("inline").and_then(Value::as_bool) == Some(true) {
            let step = step.ok_or_else(|| {
                Error::InvalidArguments("an inline execution names its step".into())
            })?;
            return self.execute_step_inline(&document, step);
        }
        let (answer, warnings) = crate::plans::execute(
            self.session.clone(),
            frontend,
            crate::plans::ExecuteRequest {
                document,
                step,
                agent,
            },
        )?;
        for warning in warnings {
            self.frontend
                .show_message(MessageLevel::Warning, format!("baton: {warning}"))
                .await;
        }
        Ok(answer)
    }

    /// Runs one plan step as an inline edit on the fast tier, in the one file it names (its
    /// lines, when the step names them as `path:12-30`; else the whole file).
    fn execute_step_inline(&self, document: &std::path::Path, step: usize) -> Result<Value, Error> {
        let inline = crate::plans::inline_execution(&self.session, document, step)?;
        let range = inline.lines.map(|(first, last)| text::Range {
            start: text::Position {
                line: first.saturating_sub(1),
                character: 0,
            },
            end: text::Position {
                line: last,
                character: 0,
            },
        });
        let token = self.start_job(
            Action::Edit,
            CommandArguments {
                uri: Some(inline.uri.to_string()),
                range: range.or_else(|| Some(whole_document())),
                instruction: Some(inline.instruction),
                diagnostics: Vec::new(),
            },
            Some(inline.link),
        )?;
        Ok(json!({ "job": token }))
    }

    fn review_actions(&self, id: u64, push: &mut PushAction<'_>) {
        let review = lsp::CodeActionKind::new("source.baton.review");
        push(
            format!("baton: undo task {id}'s changes to all files"),
            review.clone(),
            "baton.task.undo",
            json!({ "task": id }),
            None,
            false,
        );
        push(
            format!("baton: keep all of task {id}'s changes"),
            review,
            "baton.task.keep",
            json!({ "task": id }),
            None,
            false,
        );
    }

    async fn start_task(&self, arguments: &[Value]) -> jsonrpc::Result<Option<Value>> {
        let request = self
            .task_request(arguments)
            .map_err(|err| err.to_jsonrpc())?;
        let frontend: Arc<dyn Frontend> = self.frontend.clone();
        match crate::tasks::start(self.session.clone(), frontend, request) {
            Ok(value) => Ok(Some(value)),
            Err(error) => {
                self.frontend
                    .show_message(MessageLevel::Error, format!("baton: {error}"))
                    .await;
                Err(error.to_jsonrpc())
            }
        }
    }

    fn task_request(&self, arguments: &[Value]) -> Result<crate::tasks::TaskRequest, Error> {
        let parsed = CommandArguments::parse(arguments)?;
        let instruction = parsed.required_instruction("baton.task")?;
        let agent = agent_argument(arguments.first().and_then(|first| first.get("agent")))?;
        let focus = parsed.focus();
        Ok(crate::tasks::TaskRequest {
            instruction,
            agent,
            focus,
            ..crate::tasks::TaskRequest::default()
        })
    }

    async fn task_command(&self, command: &str, arguments: &[Value]) -> Result<Value, Error> {
        use crate::tasks::Control;
        use harness::agent::PermissionAnswer;
        let object = arguments
            .first()
            .and_then(Value::as_object)
            .ok_or_else(|| Error::InvalidArguments(format!("{command} takes {{task, …}}")))?;
        let id = object
            .get("task")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::InvalidArguments("task must be a task number".into()))?;
        let task = self
            .session
            .tasks
            .get(id)
            .ok_or_else(|| Error::InvalidArguments(format!("no task {id}")))?;
        let string = |key: &str| object.get(key).and_then(Value::as_str).map(String::from);
        match command {
            "baton.task.reply" => {
                let text = string("text")
                    .filter(|text| !text.trim().is_empty())
                    .ok_or_else(|| {
                        Error::InvalidArguments("text must be a non-empty string".into())
                    })?;
                task.send(Control::Reply(text))?;
            }
            "baton.task.permission" => {
                let permission = object.get("id").and_then(Value::as_u64).ok_or_else(|| {
                    Error::InvalidArguments("id must be a permission number".into())
                })?;
                let answer = match string("answer").as_deref() {
                    Some("allow-once") => PermissionAnswer::AllowOnce,
                    Some("allow-task") => PermissionAnswer::AllowForTask,
                    Some("deny") => PermissionAnswer::Deny,
                    _ => {
                        return Err(Error::InvalidArguments(
                            "answer must be allow-once, allow-task or deny".into(),
                        ));
                    }
                };
                task.send(Control::Permission {
                    id: permission,
                    answer,
                    how: format!("{} (code action)", crate::tasks::answer_word(answer)),
                })?;
            }
            "baton.task.undo" => task.send(Control::Undo(string("path")))?,
            "baton.task.keep" => task.send(Control::Keep)?,
            _ => {
                let path = task.document.with_extension("diff");
                std::fs::write(&path, task.diff()).map_err(|err| {
                    Error::InvalidArguments(format!("cannot write {}: {err}", path.display()))
                })?;
                let shown = self.frontend.show_document(path.clone(), true).await;
                return Ok(json!({
                    "task": id,
                    "diff": proto::file_uri(&path).map(|uri| uri.to_string()),
                    "shown": shown,
                }));
            }
        }
        Ok(json!({ "task": id }))
    }

    fn cancel(&self, arguments: &[Value]) -> Value {
        let token = arguments.first().and_then(|argument| match argument {
            Value::String(token) => Some(token.clone()),
            Value::Object(object) => object.get("job").and_then(Value::as_str).map(String::from),
            _ => None,
        });
        let cancelled = match token {
            Some(token) => usize::from(self.session.jobs.cancel(&token)),
            None => self.session.jobs.cancel_all(),
        };
        json!({ "cancelled": cancelled })
    }

    /// Running jobs and open documents; with a `textDocument`, that document's version and text
    /// as the server sees them (what tests and bug reports compare with the editor's buffer).
    fn status(&self, arguments: &[Value]) -> Value {
        let uri = arguments
            .first()
            .and_then(|argument| argument.get("textDocument"))
            .and_then(|document| document.get("uri"))
            .and_then(Value::as_str);
        let mut status = json!({
            "jobs": self.session.jobs.tokens(),
            "tasks": self.session.tasks.ids(),
            "documents": self.session.documents.uris(),
            "positionEncoding": self.session.encoding().as_lsp_str(),
            // The server's side of an editor's wait, for the benches (`cargo xtask bench-index`).
            "latencies": {
                "documentSymbolAfterChangeMicros":
                    self.session.latencies.document_symbol_after_change_micros(),
            },
        });
        if let Some(report) = self.session.index_report() {
            status["index"] = json!({
                "files": report.files,
                "parsed": report.parsed,
                "fromCache": report.from_cache,
                "skipped": report.skipped.iter().map(|(path, reason)| json!({ "path": path, "reason": reason })).collect::<Vec<_>>(),
            });
        }
        if let Some(snapshot) =
            uri.and_then(|uri| self.session.snapshot(&proto::uri_key_from_str(uri)))
        {
            status["version"] = json!(snapshot.version());
            status["text"] = json!(snapshot.document.text());
        }
        status
    }

    /// Resolves the target, checks the model configuration and spawns the job. Never awaits.
    /// With `ticks`, a job that ends done ticks that plan step.
    fn start_job(
        &self,
        action: Action,
        arguments: CommandArguments,
        ticks: Option<crate::tasks::PlanLink>,
    ) -> Result<String, Error> {
        let (uri, range) = match arguments.uri {
            Some(uri) => (proto::uri_key_from_str(&uri), arguments.range),
            None => match self.session.last_action_range() {
                Some((uri, range)) => (uri, Some(range)),
                None => (self.session.focused().ok_or(Error::NoDocument)?, None),
            },
        };
        let (snapshot, events) = self
            .session
            .subscribe(&uri)
            .ok_or_else(|| Error::NotOpen(uri.to_string()))?;
        let root = self.session.root();
        let (document, encoding) = (&snapshot.document, snapshot.encoding);
        let diagnostics = arguments
            .diagnostics
            .iter()
            .map(|diagnostic| diagnostic_terms(document, diagnostic, encoding))
            .collect();
        let config = self.session.config();
        let planned = job_builder::build(
            JobRequest {
                action,
                range: range.map(|range| document.byte_range(range, encoding)),
                instruction: arguments.instruction,
                diagnostics,
            },
            &snapshot,
            root.as_deref(),
            &config,
        )?;
        let provider = model::provider(&planned.model, self.http.clone())
            .map_err(|err| Error::Model(err.user_message()))?;
        let (token, cancel) = self.session.jobs.start();
        let mut job = planned.job;
        job.token = token.clone();
        // The repo map is ranked in the job, off the request path: bringing every open buffer's
        // index entry up to date and ranking both take time the editor need not wait for.
        let repo_map_line = document.line_of(job.plan.region.start) as u32;
        let frontend: Arc<dyn Frontend> = self.frontend.clone();
        let session = self.session.clone();
        let job_token = token.clone();
        let title = format!("baton: {}", job.plan.action.title());
        // A panic in the job ends this job with a message (the driver restores the target
        // itself when it can), never the process or another job.
        crate::job_guard::spawn(
            self.session.clone(),
            frontend,
            token.clone(),
            title,
            move |frontend| async move {
                crate::test_hooks::maybe_panic(crate::test_hooks::Site::Job, &job.plan.instruction);
                if let (Some(index), Some(path)) = (session.current_index(), snapshot.path.clone())
                {
                    let instruction = job.plan.instruction.clone();
                    job.repo_map = tokio::task::spawn_blocking(move || {
                        crate::indexing::repo_map_text(
                            &index,
                            &path,
                            repo_map_line,
                            &instruction,
                            config.config.context.max_tokens / 2,
                            &config.never_send,
                        )
                    })
                    .await
                    .ok()
                    .flatten();
                }
                if jobs::is_explain(&job.plan) {
                    let title =
                        format!("{}: {}", job.path_label, first_line(&job.plan.model_target));
                    let request = job.model_request();
                    drop(events);
                    jobs::run_explain(
                        frontend,
                        provider,
                        request,
                        title,
                        job_token.clone(),
                        cancel,
                    )
                    .await;
                } else {
                    let outcome = jobs::run_edit(
                        frontend.clone(),
                        provider,
                        job,
                        snapshot.document,
                        events,
                        cancel,
                    )
                    .await;
                    if let (Some(link), edit::engine::Outcome::Done) = (&ticks, &outcome) {
                        let progress = crate::plans::Progress::TurnCompleted { reported: false };
                        crate::plans::report(&session, &frontend, link, progress).await;
                    }
                }
                session.jobs.finish(&job_token);
            },
        );
        Ok(token)
    }
}

/// A range that the target planner clamps to the whole document.
fn whole_document() -> text::Range {
    text::Range {
        start: text::Position {
            line: 0,
            character: 0,
        },
        end: text::Position {
            line: u32::MAX,
            character: 0,
        },
    }
}

/// The first non-blank line of `text`, trimmed and cut to a title's width without splitting a
/// character, an accented letter or an emoji sequence.
fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
        .trim();
    text::boundary::display_prefix(line, MAX_TITLE_CHARS).to_string()
}

/// How much of the target's first line a job title shows.
const MAX_TITLE_CHARS: usize = 60;

fn diagnostic_terms(
    document: &Document,
    diagnostic: &lsp::Diagnostic,
    encoding: text::PositionEncoding,
) -> (std::ops::Range<usize>, Diagnostic) {
    let severity = match diagnostic.severity {
        Some(lsp::DiagnosticSeverity::ERROR) => "error",
        Some(lsp::DiagnosticSeverity::WARNING) => "warning",
        Some(lsp::DiagnosticSeverity::INFORMATION) => "info",
        Some(lsp::DiagnosticSeverity::HINT) => "hint",
        _ => "diagnostic",
    };
    let range = document.byte_range(proto::range(diagnostic.range), encoding);
    // The line of the clamped range, not the client's number, which may be anything.
    let line = document.position(range.start, encoding).line + 1;
    (
        range,
        Diagnostic {
            line,
            severity: severity.into(),
            message: diagnostic.message.clone(),
        },
    )
}

/// The arguments of the edit commands, in either of their forms.
#[derive(Debug, Default)]
struct CommandArguments {
    uri: Option<String>,
    range: Option<text::Range>,
    instruction: Option<String>,
    diagnostics: Vec<lsp::Diagnostic>,
}

/// An optional `agent` argument: the name of an entry of `harness.agents`.
fn agent_argument(value: Option<&Value>) -> Result<Option<String>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) => Ok(Some(name.clone())),
        Some(_) => Err(Error::InvalidArguments("agent must be a string".into())),
    }
}

impl CommandArguments {
    /// The instruction, which `command` cannot do without.
    fn required_instruction(&self, command: &str) -> Result<String, Error> {
        self.instruction
            .clone()
            .filter(|text| !text.trim().is_empty())
            .ok_or_else(|| Error::InvalidArguments(format!("{command} needs an instruction")))
    }

    /// The file and 1-based lines the user pointed at, for a task's or a plan's prompt.
    fn focus(&self) -> Option<(std::path::PathBuf, Option<(usize, usize)>)> {
        let path = proto::parse_uri(self.uri.as_deref()?).and_then(|uri| proto::file_path(&uri))?;
        let lines = self
            .range
            .map(|range| (range.start.line as usize + 1, range.end.line as usize + 1));
        Some((path, lines))
    }

    fn parse(arguments: &[Value]) -> Result<CommandArguments, Error> {
        let Some(first) = arguments.first() else {
            return Ok(CommandArguments::default());
        };
        match first {
            // Helix: `:lsp-workspace-command baton.edit "make it async"`.
            Value::String(instruction) => Ok(CommandArguments {
                instruction: Some(instruction.clone()),
                ..CommandArguments::default()
            }),
            Value::Object(object) => {
                let uri = match object.get("textDocument") {
                    Some(document) => Some(
                        document
                            .get("uri")
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                Error::InvalidArguments("textDocument.uri must be a string".into())
                            })?
                            .to_string(),
                    ),
                    None => None,
                };
                let range = match object.get("range") {
                    Some(range) => Some(proto::range(
                        serde_json::from_value::<lsp::Range>(range.clone()).map_err(|err| {
                            Error::InvalidArguments(format!("range is not an LSP range: {err}"))
                        })?,
                    )),
                    None => None,
                };
                let instruction = match object.get("instruction") {
                    Some(Value::String(text)) => Some(text.clone()),
                    Some(Value::Null) | None => None,
                    Some(_) => {
                        return Err(Error::InvalidArguments(
                            "instruction must be a string".into(),
                        ));
                    }
                };
                let diagnostics = match object.get("diagnostics") {
                    Some(value) => serde_json::from_value(value.clone()).map_err(|err| {
                        Error::InvalidArguments(format!(
                            "diagnostics are not LSP diagnostics: {err}"
                        ))
                    })?,
                    None => Vec::new(),
                };
                Ok(CommandArguments {
                    uri,
                    range,
                    instruction,
                    diagnostics,
                })
            }
            other => Err(Error::InvalidArguments(format!(
                "expected an instruction string or {{textDocument, range, instruction}}, got {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Titles from multi-byte targets whose first line is cut at every character of a
    /// multi-byte stretch: whole characters and sequences, never more than the width.
    #[test]
    fn titles_cut_multi_byte_lines_whole() {
        let tail = "Ñandú—🎉e\u{301}👨\u{200D}👩中 es un ave";
        for shift in 0..=tail.chars().count() {
            let padding = "a".repeat(MAX_TITLE_CHARS - shift);
            let target = format!("\r\n   \n    {padding}{tail}\r\nfn next() {{}}\n");
            let title = first_line(&target);
            let line = format!("{padding}{tail}");
            assert!(line.starts_with(&title), "{title:?}");
            assert!(title.chars().count() <= MAX_TITLE_CHARS);
            let rest = &line[title.len()..];
            assert!(!title.ends_with('\u{200D}'), "{title:?}");
            assert!(!rest.starts_with(['\u{301}', '\u{200D}']), "{title:?}");
        }
        assert_eq!(
            first_line("\n  // Ñandú es un ave\r\n"),
            "// Ñandú es un ave"
        );
    }
}
