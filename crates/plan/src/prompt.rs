//! What plan mode sends and checks, as pure functions: the model requests that write and refine
//! a plan, the brief an agent executes, which steps name files outside the workspace, and
//! ticking the checklist from the progress an agent reports.

use crate::similarity::match_texts;
use crate::{Plan, StepState};
use std::fmt::Write;

/// What the model is shown about the workspace. The server gathers it under its context budget;
/// nothing here trims it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanContext {
    /// The workspace's repo map (outline of files and symbols), if one is built.
    pub repo_map: Option<String>,
    /// Relevant files: workspace-relative path and text.
    pub files: Vec<(String, String)>,
    /// Current diagnostics, one line each.
    pub diagnostics: Vec<String>,
    /// What the user is looking at (a file, a selection), in words.
    pub focus: Option<String>,
}

/// The exact shape the model must answer with; it is also what [`Plan::render`] writes.
const SKELETON: &str = "\
# Plan: <short title>

## Goal

<what the change achieves and why, one or more short paragraphs>

## Questions

1. <a question only you cannot answer from the code>
   Answer:

## Steps

- [ ] 1. <one concrete step> — files: `path/one.rs`, `path/two.rs`
- [ ] 2. <the next step> — files: `path/three.rs`
";

const FORMAT_RULES: &str = "\
Rules for the document:
- Answer with ONLY the plan document, in exactly the format above: no text before or after it, no code fence around it.
- Use `## Questions` only for things that are genuinely unclear and that the code cannot answer; leave each `Answer:` empty for the user. Omit the section when there are none.
- Each step is one line: a checkbox, a number, one concrete action, then ` — files: ` and the workspace-relative paths it touches, each in backticks. Order the steps as they should be done.
- Do not write code. Describe what to change, not how the code reads.";

/// The model request for a new plan: `(system, user)` prompts.
pub fn plan_request(instruction: &str, context: &PlanContext) -> (String, String) {
    let system = format!(
        "You are a senior engineer planning a change to a code base. Write a plan the user will \
         review and edit before anyone changes code.\n\nThe plan document has this exact \
         format:\n\n{SKELETON}\n{FORMAT_RULES}"
    );
    let mut user = String::new();
    push_context(&mut user, context);
    let _ = write!(user, "## Task\n\n{}\n", instruction.trim());
    (system, user)
}

/// The model request for refining a plan the user edited: `(system, user)` prompts. `before` is
/// the plan baton last wrote (if known), `user` the document as the user left it, and `changes`
/// what [`crate::user_changes`] found between them.
pub fn refine_request(
    before: Option<&Plan>,
    user: &Plan,
    changes: &[String],
    context: &PlanContext,
) -> (String, String) {
    let system = format!(
        "You are a senior engineer revising a plan together with its user. The user edited the \
         plan document: they may have answered questions, added notes under steps, deleted, \
         reordered, added or ticked steps.\n\nRevise the plan minimally:\n\
         - Address only what the user changed, answered or noted. Follow their answers and notes.\n\
         - Keep every step the user did not ask to change word for word, with its files, checkbox and notes.\n\
         - Keep the user's order, their deletions and their ticked steps.\n\
         - Remove questions the answers settled; ask new ones only if something is still genuinely unclear.\n\
         - Answer with the full revised plan document.\n\nThe plan document has this exact \
         format:\n\n{SKELETON}\n{FORMAT_RULES}"
    );
    let mut prompt = String::new();
    push_context(&mut prompt, context);
    if let Some(before) = before {
        let _ = write!(
            prompt,
            "## The plan as you last wrote it\n\n{}\n",
            before.render()
        );
    }
    prompt.push_str("## What the user changed\n\n");
    if changes.is_empty() {
        prompt.push_str("(no changes were detected; revise only if the plan needs it)\n");
    }
    for change in changes {
        let _ = writeln!(prompt, "- {change}");
    }
    let _ = write!(
        prompt,
        "\n## The plan as the user left it\n\n{}\nAnswer with the full revised plan.\n",
        user.render()
    );
    (system, prompt)
}

fn push_context(out: &mut String, context: &PlanContext) {
    if let Some(map) = context
        .repo_map
        .as_deref()
        .filter(|map| !map.trim().is_empty())
    {
        let _ = write!(out, "## Repository map\n\n{}\n\n", map.trim_end());
    }
    for (path, text) in &context.files {
        let fence = fence_for(text);
        let _ = write!(
            out,
            "## File `{path}`\n\n{fence}\n{}\n{fence}\n\n",
            text.trim_end()
        );
    }
    if !context.diagnostics.is_empty() {
        out.push_str("## Diagnostics\n\n");
        for diagnostic in &context.diagnostics {
            let _ = writeln!(out, "- {diagnostic}");
        }
        out.push('\n');
    }
    if let Some(focus) = context
        .focus
        .as_deref()
        .filter(|focus| !focus.trim().is_empty())
    {
        let _ = write!(out, "## The user is looking at\n\n{}\n\n", focus.trim());
    }
}

/// A backtick fence longer than any run of backticks in `text`, so a file that contains
/// fences cannot close ours early.
fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat(longest.max(2) + 1)
}

/// The brief an agent executes: the goal, the settled questions, and the steps to do with their
/// files and the user's notes. With `only_step`, that step is the task and the others are shown
/// as context; an index past the last step is ignored (the whole plan's open steps are the
/// task). Done steps are never part of the task.
pub fn brief(plan: &Plan, only_step: Option<usize>) -> String {
    let only_step = only_step.filter(|&index| index < plan.steps.len());
    let mut out = String::new();
    if plan.title.trim().is_empty() {
        out.push_str("Carry out this plan in the workspace.\n\n");
    } else {
        let _ = write!(
            out,
            "Carry out this plan in the workspace: {}\n\n",
            plan.title.trim()
        );
    }
    if !plan.goal.trim().is_empty() {
        let _ = write!(out, "## Goal\n\n{}\n\n", plan.goal.trim());
    }
    let answered: Vec<_> = plan
        .questions
        .iter()
        .filter(|question| !question.answer.trim().is_empty())
        .collect();
    if !answered.is_empty() {
        out.push_str("## Decisions (the user's answers)\n\n");
        for question in answered {
            let _ = write!(
                out,
                "Q: {}\nA: {}\n\n",
                question.text.trim(),
                question.answer.trim()
            );
        }
    }

    let todo = executed_steps(plan, only_step);
    out.push_str("## Your steps, in order\n\n");
    if todo.is_empty() {
        out.push_str("(none: every step is done)\n\n");
    }
    for (position, &index) in todo.iter().enumerate() {
        push_step(&mut out, plan, index, position + 1);
    }
    if only_step.is_some() {
        let context: Vec<usize> = (0..plan.steps.len())
            .filter(|index| !todo.contains(index))
            .collect();
        if !context.is_empty() {
            out.push_str(
                "## The rest of the plan (already planned, not part of this task; do not do these)\n\n",
            );
            for index in context {
                let step = &plan.steps[index];
                let mark = if step.state == StepState::Done {
                    " (done)"
                } else {
                    ""
                };
                let _ = writeln!(out, "- Step {}: {}{mark}", index + 1, step.text.trim());
            }
            out.push('\n');
        }
    }
    out.push_str(
        "Do the steps in order. Report your progress with your plan/todo tool: one entry per \
         step above, in the same order and with the same text, marking each in progress when \
         you start it and completed when it is done. Change only what the steps need.\n",
    );
    out
}

/// The steps a brief hands to the agent, in order: `only_step` alone (unless it is done), or
/// every step not done. [`tick`] expects this same list as `executing`.
pub fn executed_steps(plan: &Plan, only_step: Option<usize>) -> Vec<usize> {
    match only_step.filter(|&index| index < plan.steps.len()) {
        Some(index) => {
            if plan.steps[index].state == StepState::Done {
                Vec::new()
            } else {
                vec![index]
            }
        }
        None => (0..plan.steps.len())
            .filter(|&index| plan.steps[index].state != StepState::Done)
            .collect(),
    }
}

fn push_step(out: &mut String, plan: &Plan, index: usize, position: usize) {
    let step = &plan.steps[index];
    let _ = writeln!(
        out,
        "{position}. {} (plan step {})",
        step.text.trim(),
        index + 1
    );
    if !step.files.is_empty() {
        let files: Vec<String> = step.files.iter().map(|file| format!("`{file}`")).collect();
        let _ = writeln!(out, "   Files: {}", files.join(", "));
    }
    if !step.notes.is_empty() {
        out.push_str("   The user's notes:\n");
        for note in &step.notes {
            let _ = writeln!(out, "   - {}", note.trim());
        }
    }
    out.push('\n');
}

/// The steps naming a file that `is_inside` says is outside the workspace: each offending
/// (step index, path), in plan order. A step with two such files appears twice. The closure
/// decides (it knows the workspace root); [`path_escapes`] is the lexical check to use when a
/// relative-path rule is enough: `outside_steps(plan, |path| !path_escapes(path))`.
pub fn outside_steps(plan: &Plan, is_inside: impl Fn(&str) -> bool) -> Vec<(usize, String)> {
    plan.steps
        .iter()
        .enumerate()
        .flat_map(|(index, step)| {
            step.files
                .iter()
                .filter(|file| !is_inside(file))
                .map(move |file| (index, file.clone()))
        })
        .collect()
}

/// Whether a path, read as relative to the workspace root, could leave it: absolute paths
/// (`/x`, `\x`, `C:\x`, `C:x`, `\\server\x`), home-relative (`~`, `~user`), URLs
/// (`file:///x`), and `..` climbing above the root (`a/../../x`). Lexical only: symlinks are
/// the server's to resolve.
pub fn path_escapes(path: &str) -> bool {
    let path = path.trim();
    if path.starts_with(['/', '\\', '~']) || path.contains("://") {
        return true;
    }
    let mut chars = path.chars();
    if let (Some(drive), Some(':')) = (chars.next(), chars.next())
        && drive.is_ascii_alphabetic()
    {
        return true;
    }
    let mut depth: usize = 0;
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(parent) => depth = parent,
                None => return true,
            },
            _ => depth += 1,
        }
    }
    false
}

/// How similar a reported entry must be to a step's text to tick it, when positions cannot be
/// trusted (the agent reported more or fewer entries than it was given steps).
const ENTRY_SIMILARITY: f32 = 0.5;

/// Ticks the checklist from an agent's reported plan: `progress` is its entries in order,
/// `executing` the plan steps it was given (as [`executed_steps`] lists them). Entries map to
/// steps by position when the counts match, else by text similarity (≥ 0.5, each step at most
/// once). A done step is never unticked; indices outside the plan are ignored.
pub fn tick(plan: &mut Plan, progress: &[(String, StepState)], executing: &[usize]) {
    let assignments: Vec<(usize, StepState)> = if progress.len() == executing.len() {
        executing
            .iter()
            .zip(progress)
            .map(|(&index, (_, state))| (index, *state))
            .collect()
    } else {
        let steps: Vec<usize> = executing
            .iter()
            .copied()
            .filter(|&index| index < plan.steps.len())
            .collect();
        let step_texts: Vec<&str> = steps
            .iter()
            .map(|&index| plan.steps[index].text.as_str())
            .collect();
        let entries: Vec<&str> = progress
            .iter()
            .map(|(entry, _)| strip_step_label(entry))
            .collect();
        match_texts(&step_texts, &entries, ENTRY_SIMILARITY)
            .into_iter()
            .zip(progress)
            .filter_map(|(matched, (_, state))| matched.map(|slot| (steps[slot], *state)))
            .collect()
    };
    for (index, state) in assignments {
        if let Some(step) = plan.steps.get_mut(index)
            && step.state != StepState::Done
        {
            step.state = state;
        }
    }
}

/// An agent's entry without a leading `Step 3:` / `3.` label, which the plan's text lacks.
fn strip_step_label(entry: &str) -> &str {
    let entry = entry.trim();
    let rest = entry
        .get(..5)
        .filter(|head| head.eq_ignore_ascii_case("step "))
        .map_or(entry, |_| &entry[5..]);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return entry;
    }
    rest[digits..]
        .trim_start_matches([':', '.', ')'])
        .trim_start()
}

#[cfg(test)]
mod tests;
