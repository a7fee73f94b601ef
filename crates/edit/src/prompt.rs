//! Prompt assembly for inline actions.
//!
//! The model gets the instruction, the target text, the enclosing scope around it, the
//! diagnostics in range and the repo map. For an edit it is asked for exactly the new text of
//! the target; for an explanation, for Markdown. Context is cut to the budget from the least
//! important end (repo map first, then the scope), never the target or the instruction.

/// What the user asked baton to do with a target. One enum for the code actions, the commands
/// (`baton.edit`, …), `baton edit --action`, the configuration (`actions.<name>`) and the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Follow a free-text instruction.
    Edit,
    /// Fix the diagnostics in range.
    Fix,
    /// Add documentation comments.
    Document,
    /// Write tests for the target; the reply is inserted after it.
    Tests,
    /// Explain the target in Markdown; nothing in the buffer changes.
    Explain,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Edit,
        Action::Fix,
        Action::Document,
        Action::Tests,
        Action::Explain,
    ];

    /// The name used in commands (`baton.<name>`), the CLI and the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Action::Edit => "edit",
            Action::Fix => "fix",
            Action::Document => "document",
            Action::Tests => "tests",
            Action::Explain => "explain",
        }
    }

    /// Parses [`Action::name`].
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|action| action.name() == name)
    }

    /// How the action is shown to the user (progress titles).
    pub fn title(self) -> &'static str {
        match self {
            Action::Edit => "edit",
            Action::Fix => "fix",
            Action::Document => "document",
            Action::Tests => "write tests",
            Action::Explain => "explain",
        }
    }

    /// Whether the reply lands in the buffer (everything but an explanation).
    pub fn edits(self) -> bool {
        self != Action::Explain
    }
}

/// A diagnostic in range, in plain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// One-based line, as editors show it.
    pub line: u32,
    pub severity: String,
    pub message: String,
}

/// Everything a prompt is built from.
#[derive(Debug, Clone, Default)]
pub struct EditContext {
    pub instruction: String,
    pub path: String,
    pub language: String,
    pub target: String,
    /// The enclosing scope's text with the target replaced by a placeholder line.
    pub scope: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
    pub repo_map: Option<String>,
    /// Approximate budget for the context parts, in tokens (about four bytes each).
    pub max_context_tokens: usize,
}

/// The two parts of a chat prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

/// The line that stands for the target inside the enclosing scope.
pub const TARGET_PLACEHOLDER: &str = "<<<TARGET>>>";

pub fn build(action: Action, context: &EditContext) -> Prompt {
    let task = match action {
        Action::Edit => "Rewrite the target code following the instruction.",
        Action::Fix => "Rewrite the target code so that the listed diagnostics are fixed.",
        Action::Document => {
            "Rewrite the target code adding concise documentation comments in the language's \
             idiomatic style; do not change behaviour."
        }
        Action::Tests => {
            "Write tests for the target code in the language's idiomatic test style. Your answer \
             is inserted right after the target."
        }
        Action::Explain => {
            "Explain the target code to a colleague: what it does, how, and anything surprising."
        }
    };
    let system = if action == Action::Explain {
        format!("You are baton. {task} Answer in concise Markdown.")
    } else {
        format!(
            "You are baton, an inline code editor. {task} Answer with only the new code, exactly \
             as it must appear in the file, keeping the target's indentation. No explanations, no \
             Markdown fences."
        )
    };
    let mut budget = context.max_context_tokens.saturating_mul(4);
    let mut user = String::new();
    user.push_str(&format!(
        "File: {} ({})\n",
        context.path,
        if context.language.is_empty() {
            "text"
        } else {
            &context.language
        }
    ));
    let instruction = match action {
        Action::Edit => context.instruction.clone(),
        _ if context.instruction.is_empty() => task.to_string(),
        _ => context.instruction.clone(),
    };
    user.push_str(&format!("Instruction: {instruction}\n"));
    if !context.diagnostics.is_empty() {
        user.push_str("\nDiagnostics in range:\n");
        for diagnostic in &context.diagnostics {
            user.push_str(&format!(
                "- line {} ({}): {}\n",
                diagnostic.line, diagnostic.severity, diagnostic.message
            ));
        }
    }
    if let Some(scope) = &context.scope
        && scope.len() <= budget
    {
        budget -= scope.len();
        user.push_str(&format!(
            "\nEnclosing scope ({TARGET_PLACEHOLDER} marks the target):\n{scope}\n"
        ));
    }
    if let Some(map) = &context.repo_map
        && !map.is_empty()
    {
        let map = cut_at_line(map, budget);
        if !map.is_empty() {
            user.push_str(&format!("\nRepository map (related definitions):\n{map}\n"));
        }
    }
    user.push_str(&format!(
        "\nTarget:\n{TARGET_PLACEHOLDER}\n{}\n{TARGET_PLACEHOLDER}\n",
        context.target
    ));
    Prompt { system, user }
}

/// The longest prefix of `text` that ends at a line break and fits in `bytes`.
fn cut_at_line(text: &str, bytes: usize) -> &str {
    if text.len() <= bytes {
        return text;
    }
    let within = text::boundary::prefix_within_bytes(text, bytes);
    match within.rfind('\n') {
        Some(newline) => &within[..newline + 1],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn prompt_carries_every_part() {
        let context = EditContext {
            instruction: "make it async".into(),
            path: "src/lib.rs".into(),
            language: "rust".into(),
            target: "fn load() {}".into(),
            scope: Some(format!("impl Store {{\n{TARGET_PLACEHOLDER}\n}}")),
            diagnostics: vec![Diagnostic {
                line: 3,
                severity: "error".into(),
                message: "missing lifetime".into(),
            }],
            repo_map: Some("src/db.rs:\n  fn connect()\n".into()),
            max_context_tokens: 1000,
        };
        let prompt = build(Action::Edit, &context);
        expect![[r#"
            File: src/lib.rs (rust)
            Instruction: make it async

            Diagnostics in range:
            - line 3 (error): missing lifetime

            Enclosing scope (<<<TARGET>>> marks the target):
            impl Store {
            <<<TARGET>>>
            }

            Repository map (related definitions):
            src/db.rs:
              fn connect()


            Target:
            <<<TARGET>>>
            fn load() {}
            <<<TARGET>>>
        "#]]
        .assert_eq(&prompt.user);
    }

    #[test]
    fn explain_asks_for_markdown_and_edits_ask_for_code() {
        let context = EditContext {
            target: "fn load() {}".into(),
            ..EditContext::default()
        };
        let explain = build(Action::Explain, &context);
        assert!(explain.system.contains("Markdown"), "{}", explain.system);
        assert!(!explain.system.contains("inline code editor"));
        assert!(
            explain
                .user
                .contains("Instruction: Explain the target code")
        );
        for action in [Action::Edit, Action::Fix, Action::Document, Action::Tests] {
            let prompt = build(action, &context);
            assert!(
                prompt.system.contains("Answer with only the new code"),
                "{action:?}"
            );
        }
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.name()), Some(action));
        }
    }

    #[test]
    fn context_is_cut_to_the_budget() {
        let context = EditContext {
            instruction: "x".into(),
            target: "t".into(),
            repo_map: Some("a\n".repeat(1000)),
            max_context_tokens: 10,
            ..EditContext::default()
        };
        let prompt = build(Action::Edit, &context);
        assert_eq!(prompt.user.matches("a\n").count(), 20);
    }

    /// A repo map of multi-byte lines cut at every byte budget: whole lines only, within the
    /// budget, and as many as fit.
    #[test]
    fn multi_byte_maps_are_cut_at_lines_for_every_budget() {
        let map =
            "src/ñandú.rs:\n  1│ fn añade()\n  2│ // TODO🎉 e\u{301}\r\n  3│ 👨\u{200D}👩 中\n";
        for budget in 0..=map.len() + 2 {
            let cut = cut_at_line(map, budget);
            assert!(map.starts_with(cut), "{budget}: {cut:?}");
            assert!(cut.len() <= budget, "{budget}: {cut:?}");
            assert!(cut.is_empty() || cut.ends_with('\n'), "{budget}: {cut:?}");
            let longest = map
                .match_indices('\n')
                .map(|(at, _)| at + 1)
                .filter(|&end| end <= budget)
                .max()
                .unwrap_or(0);
            assert_eq!(cut.len(), longest, "{budget}");
        }
    }
}
