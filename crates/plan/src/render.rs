//! Writes a [`Plan`] as the canonical document (the shape is documented on the crate).

use crate::{Plan, StepState};
use std::fmt::Write;

/// The comment under the title: tells the user the document is theirs to edit and which code
/// actions read it back. [`crate::parse`] drops any line starting with [`MARKER_PREFIX`].
pub(crate) const MARKER: &str = "<!-- baton plan · edit anything; code actions: Refine plan · Execute plan · Execute this step -->";
pub(crate) const MARKER_PREFIX: &str = "<!-- baton plan";

/// What separates a step's text from its files. An em dash, because it is rare in step text
/// and reads naturally; the parser also accepts `-`, `–`, `(files: …)` and `files:` alone.
pub(crate) const FILES_SEPARATOR: &str = " — files: ";

pub(crate) fn render(plan: &Plan) -> String {
    let mut out = String::new();
    let title = one_line(&plan.title);
    if title.is_empty() {
        out.push_str("# Plan:\n\n");
    } else {
        let _ = write!(out, "# Plan: {title}\n\n");
    }
    out.push_str(MARKER);
    out.push_str("\n\n");
    push_block(&mut out, &plan.preamble);

    out.push_str("## Goal\n\n");
    push_block(&mut out, &plan.goal);

    if !plan.questions.is_empty() {
        out.push_str("## Questions\n\n");
        for (index, question) in plan.questions.iter().enumerate() {
            let _ = writeln!(out, "{}. {}", index + 1, one_line(&question.text));
            let mut answer_lines = non_blank_lines(&question.answer);
            match answer_lines.next() {
                Some(first) => {
                    let _ = writeln!(out, "   Answer: {first}");
                }
                None => out.push_str("   Answer:\n"),
            }
            for line in answer_lines {
                let _ = writeln!(out, "   {line}");
            }
            out.push('\n');
        }
    }

    out.push_str("## Steps\n\n");
    for (index, step) in plan.steps.iter().enumerate() {
        let checkbox = match step.state {
            StepState::Todo => "[ ]",
            StepState::InProgress => "[~]",
            StepState::Done => "[x]",
        };
        let _ = write!(out, "- {checkbox} {}. {}", index + 1, one_line(&step.text));
        let files: Vec<String> = step
            .files
            .iter()
            .map(|file| file.trim())
            .filter(|file| !file.is_empty())
            .map(|file| format!("`{file}`"))
            .collect();
        if !files.is_empty() {
            out.push_str(FILES_SEPARATOR);
            out.push_str(&files.join(", "));
        }
        out.push('\n');
        for note in step.notes.iter().flat_map(|note| non_blank_lines(note)) {
            let _ = writeln!(out, "  > note: {note}");
        }
    }

    for section in &plan.extra {
        out.push('\n');
        let _ = write!(out, "## {}\n\n", one_line(&section.heading));
        push_block(&mut out, &section.body);
    }
    // One trailing newline, however the last section ended.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// A multi-line block followed by one blank line; nothing for an empty block. Trailing
/// whitespace and surrounding blank lines are dropped, as the parser drops them.
fn push_block(out: &mut String, text: &str) {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let Some(first) = lines.iter().position(|line| !line.is_empty()) else {
        return;
    };
    let last = lines
        .iter()
        .rposition(|line| !line.is_empty())
        .unwrap_or(first);
    for line in &lines[first..=last] {
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
}

/// A field the format holds on one line: line breaks become spaces.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn non_blank_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|line| !line.is_empty())
}
