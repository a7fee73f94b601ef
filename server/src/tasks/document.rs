//! The task document: what a task did, as Markdown the user reads and answers in.
//!
//! [`TaskLog`] collects the task's story (instruction, the agent's messages, plan, files
//! changed, commands, conflicts, permission requests, errors) and [`TaskLog::render`] writes it
//! out. The rendered lines that code actions hang off have fixed shapes, read back by
//! [`LineAction::parse`]: a pending permission (`- [?] permission #3: …`), a changed file
//! (``- `src/lib.rs` (+3 -1) landed``), and the user's own lines under `## Reply`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use harness::agent::{PermissionId, PlanEntry, PlanStatus};

/// Where a changed file stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Landed,
    Kept,
    Undone,
    /// Reported, not landed, with the reason.
    NotLanded(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// What happened to the file: modified, created, deleted, renamed from …
    pub change: String,
    pub added: usize,
    pub removed: usize,
    pub state: FileState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionEntry {
    pub id: PermissionId,
    pub title: String,
    pub detail: String,
    /// `None` while it waits; then how it was answered.
    pub answer: Option<String>,
}

/// Everything the task document shows.
#[derive(Debug, Clone, Default)]
pub struct TaskLog {
    pub title: String,
    pub agent: String,
    pub status: String,
    /// The user's instruction, then each reply, in order.
    pub prompts: Vec<String>,
    /// The agent's messages, one per turn (appended as they stream).
    pub messages: Vec<String>,
    pub plan: Vec<PlanEntry>,
    /// Workspace-relative paths.
    pub files: BTreeMap<String, FileEntry>,
    pub commands: Vec<String>,
    pub conflicts: Vec<String>,
    pub permissions: Vec<PermissionEntry>,
    pub errors: Vec<String>,
}

/// The heading under which the user writes a follow-up message.
pub const REPLY_HEADING: &str = "## Reply";

impl TaskLog {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# baton task: {}", self.title);
        let _ = writeln!(out);
        let _ = writeln!(out, "Agent: {} · Status: {}", self.agent, self.status);
        for (turn, prompt) in self.prompts.iter().enumerate() {
            let _ = writeln!(out);
            if turn == 0 {
                let _ = writeln!(out, "## Instruction");
            } else {
                let _ = writeln!(out, "## You ({turn})");
            }
            let _ = writeln!(out);
            for line in prompt.lines() {
                let _ = writeln!(out, "> {line}");
            }
            if let Some(message) = self.messages.get(turn).filter(|m| !m.trim().is_empty()) {
                let _ = writeln!(out);
                let _ = writeln!(out, "### Agent");
                let _ = writeln!(out);
                let _ = writeln!(out, "{}", message.trim_end());
            }
        }
        if !self.plan.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "## Plan");
            let _ = writeln!(out);
            for entry in &self.plan {
                let mark = match entry.status {
                    PlanStatus::Pending => " ",
                    PlanStatus::InProgress => "~",
                    PlanStatus::Completed => "x",
                };
                let _ = writeln!(out, "- [{mark}] {}", one_line(&entry.content));
            }
        }
        let waiting: Vec<_> = self
            .permissions
            .iter()
            .filter(|p| p.answer.is_none())
            .collect();
        if !waiting.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "## Waiting for you");
            let _ = writeln!(out);
            for permission in waiting {
                let _ = writeln!(
                    out,
                    "- [?] permission #{}: {} (code actions on this line: allow once, allow for this task, deny)",
                    permission.id,
                    one_line(&permission.title)
                );
                for line in permission.detail.lines().take(40) {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
        if !self.files.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "## Files changed");
            let _ = writeln!(out);
            for (path, entry) in &self.files {
                let state = match &entry.state {
                    FileState::Landed => "landed".to_string(),
                    FileState::Kept => "kept".to_string(),
                    FileState::Undone => "undone".to_string(),
                    FileState::NotLanded(reason) => format!("NOT landed: {reason}"),
                };
                let _ = writeln!(
                    out,
                    "- `{path}` {} (+{} -{}) {state}",
                    entry.change, entry.added, entry.removed
                );
            }
        }
        if !self.commands.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "## Commands");
            let _ = writeln!(out);
            for command in &self.commands {
                let _ = writeln!(out, "- {}", one_line(command));
            }
        }
        if !self.conflicts.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "## Conflicts (your text was kept)");
            let _ = writeln!(out);
            for conflict in &self.conflicts {
                let _ = writeln!(out, "- {}", one_line(conflict));
            }
        }
        let answered: Vec<_> = self
            .permissions
            .iter()
            .filter_map(|p| Some((p, p.answer.as_ref()?)))
            .collect();
        if !answered.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "## Permissions");
            let _ = writeln!(out);
            for (permission, answer) in answered {
                let _ = writeln!(
                    out,
                    "- #{}: {} → {answer}",
                    permission.id,
                    one_line(&permission.title)
                );
            }
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "## Errors");
            let _ = writeln!(out);
            for error in &self.errors {
                let _ = writeln!(out, "- {}", one_line(error));
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{REPLY_HEADING}");
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "<!-- Write a follow-up below, then run the code action \"baton: send reply\" on it. -->"
        );
        out
    }
}

/// Text on one line: a title or list item must not break the document's shape.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a line of the task document offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineAction {
    Permission(PermissionId),
    File(String),
    /// The user's text under `## Reply` (all of it, not just this line).
    Reply(String),
}

impl LineAction {
    /// The action of line `line` (0-based) of the document `text`.
    pub fn parse(text: &str, line: usize) -> Option<LineAction> {
        let lines: Vec<&str> = text.lines().collect();
        let current = lines.get(line)?.trim_start();
        if let Some(rest) = current.strip_prefix("- [?] permission #") {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return digits.parse().ok().map(LineAction::Permission);
        }
        if let Some(rest) = current.strip_prefix("- `") {
            let path = rest.split('`').next()?;
            return Some(LineAction::File(path.to_string()));
        }
        let heading = lines.iter().position(|l| l.trim_end() == REPLY_HEADING)?;
        if line <= heading {
            return None;
        }
        let reply: Vec<&str> = lines[heading + 1..]
            .iter()
            .copied()
            .filter(|l| !l.trim_start().starts_with("<!--"))
            .collect();
        let reply = reply.join("\n").trim().to_string();
        (!reply.is_empty()).then_some(LineAction::Reply(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TaskLog {
        let mut log = TaskLog {
            title: "rename greet".into(),
            agent: "codex".into(),
            status: "working".into(),
            prompts: vec!["rename greet to welcome\neverywhere".into()],
            messages: vec!["Renaming now.".into()],
            ..TaskLog::default()
        };
        log.plan.push(PlanEntry {
            content: "find callers".into(),
            status: PlanStatus::Completed,
        });
        log.files.insert(
            "src/lib.rs".into(),
            FileEntry {
                change: "modified".into(),
                added: 3,
                removed: 1,
                state: FileState::Landed,
            },
        );
        log.permissions.push(PermissionEntry {
            id: 7,
            title: "Run `cargo test`".into(),
            detail: "cargo test --all".into(),
            answer: None,
        });
        log
    }

    #[test]
    fn rendered_lines_parse_back_to_their_actions() {
        let mut text = sample().render();
        let line_of = |text: &str, needle: &str| {
            text.lines()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle:?} not in\n{text}"))
        };
        assert_eq!(
            LineAction::parse(&text, line_of(&text, "permission #7")),
            Some(LineAction::Permission(7))
        );
        assert_eq!(
            LineAction::parse(&text, line_of(&text, "`src/lib.rs`")),
            Some(LineAction::File("src/lib.rs".into()))
        );
        assert!(text.contains("- [x] find callers"));
        assert!(text.contains("> rename greet to welcome\n> everywhere"));
        // Nothing under the reply heading yet: no reply action.
        let heading = line_of(&text, REPLY_HEADING);
        assert_eq!(LineAction::parse(&text, heading + 2), None);
        text.push_str("also update the README\nplease\n");
        let reply_line = line_of(&text, "please");
        assert_eq!(
            LineAction::parse(&text, reply_line),
            Some(LineAction::Reply("also update the README\nplease".into()))
        );
        // The instruction line itself offers nothing.
        assert_eq!(LineAction::parse(&text, 0), None);
    }

    #[test]
    fn answered_permissions_leave_the_waiting_list() {
        let mut log = sample();
        log.permissions[0].answer = Some("denied (no answer within 300 s)".into());
        let text = log.render();
        assert!(!text.contains("[?]"));
        assert!(text.contains("#7: Run `cargo test` → denied (no answer within 300 s)"));
    }
}
