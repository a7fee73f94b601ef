//! Choosing what an inline edit rewrites, in editor terms.
//!
//! A request names an action and, usually, a range. From the document and its syntax tree this
//! module decides the region of the buffer that changes, the text the model sees, the
//! instruction, and the surrounding context:
//! - a `baton:` marker line: the marker is consumed, and the target is the syntax node after it;
//! - a selection: the selection (widened to the start of its line when only indentation precedes
//!   it), with the instruction taken from the first comment inside it unless one was given;
//! - a cursor: the enclosing scope, or the line;
//! - no range: the whole document.

use std::ops::Range;

use edit::prompt::{Diagnostic, TARGET_PLACEHOLDER};
use syntax::SyntaxTree;
use text::Document;

use crate::error::Error;

/// Largest enclosing scope a fix rewrites whole.
const MAX_FIX_SCOPE_BYTES: usize = 8 * 1024;

/// Longest enclosing scope sent as context.
const MAX_SCOPE_BYTES: usize = 16 * 1024;

pub use edit::prompt::Action;

/// What the user asked for, with the range already in byte offsets.
#[derive(Debug, Clone)]
pub struct TargetRequest {
    pub action: Action,
    pub range: Option<Range<usize>>,
    pub instruction: Option<String>,
    pub diagnostics: Vec<(Range<usize>, Diagnostic)>,
}

/// Everything an inline edit job needs to know about its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditPlan {
    pub action: Action,
    pub instruction: String,
    /// The bytes of the document the job replaces.
    pub region: Range<usize>,
    /// What the region's new text is aligned against while streaming (the region without a
    /// consumed marker line).
    pub aligned_original: String,
    /// The code the model is asked about.
    pub model_target: String,
    /// Text shown before the reply in the region (a separator when tests are inserted).
    pub before: String,
    pub scope: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
}

pub fn plan(
    document: &Document,
    tree: Option<&SyntaxTree>,
    request: &TargetRequest,
) -> Result<EditPlan, Error> {
    let rope = document.rope();
    let given_instruction = request
        .instruction
        .as_ref()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty());
    let diagnostics: Vec<Diagnostic> = request
        .diagnostics
        .iter()
        .map(|(_, diagnostic)| diagnostic.clone())
        .collect();

    // A marker on the first line of the range wins for plain edits.
    if request.action == Action::Edit
        && let Some(range) = &request.range
    {
        let line = document.line_of(range.start);
        if let Some(marker) = syntax::find_marker(rope, line) {
            let body_start = marker.line_range.end;
            let body_end = tree
                .and_then(|tree| tree.node_after(rope, body_start))
                .map(|node| node.end)
                .unwrap_or_else(|| paragraph_end(document, body_start));
            let region = marker.line_range.start..body_end.max(body_start);
            let target = document.slice(body_start..region.end);
            let instruction = given_instruction.unwrap_or(marker.instruction);
            if instruction.is_empty() {
                return Err(Error::Target(
                    "the baton: marker has no instruction after it".into(),
                ));
            }
            return Ok(EditPlan {
                action: request.action,
                instruction,
                scope: scope_context(document, tree, body_start..region.end),
                aligned_original: target.clone(),
                model_target: target,
                region,
                before: String::new(),
                diagnostics,
            });
        }
    }

    let mut subject = match &request.range {
        Some(range) if range.start < range.end => {
            let start = line_start_if_indented(document, range.start);
            start..document.floor_boundary(range.end)
        }
        Some(range) => cursor_target(document, tree, range.start),
        None => 0..document.len_bytes(),
    };
    if request.action == Action::Fix {
        for (range, _) in &request.diagnostics {
            subject.start = subject.start.min(range.start);
            subject.end = subject.end.max(range.end);
        }
        // A fix often needs more than the flagged line: rewrite the enclosing scope when it is
        // of a reasonable size.
        subject = match tree.and_then(|tree| tree.enclosing_scope(document.rope(), subject.clone()))
        {
            Some(scope) if scope.range.end - scope.range.start <= MAX_FIX_SCOPE_BYTES => {
                line_start_if_indented(document, scope.range.start)..scope.range.end
            }
            _ => whole_lines(document, subject),
        };
    }
    let subject_text = document.slice(subject.clone());

    let instruction = match request.action {
        Action::Edit => match given_instruction {
            Some(instruction) => instruction,
            None => first_comment(document, tree, subject.clone()).ok_or_else(|| {
                Error::Target(
                    "no instruction: put a comment inside the selection, a `baton:` marker \
                     above the code, or pass an instruction to baton.edit"
                        .to_string(),
                )
            })?,
        },
        _ => given_instruction.unwrap_or_default(),
    };
    let scope = scope_context(document, tree, subject.clone());

    let (region, aligned_original, before) = match request.action {
        Action::Tests => (subject.end..subject.end, String::new(), "\n\n".to_string()),
        _ => (subject.clone(), subject_text.clone(), String::new()),
    };
    Ok(EditPlan {
        action: request.action,
        instruction,
        region,
        aligned_original,
        model_target: subject_text,
        before,
        scope,
        diagnostics,
    })
}

/// The enclosing scope of a cursor, or its line.
fn cursor_target(document: &Document, tree: Option<&SyntaxTree>, offset: usize) -> Range<usize> {
    let offset = document.floor_boundary(offset);
    if let Some(scope) = tree.and_then(|tree| tree.enclosing_scope(document.rope(), offset..offset))
    {
        return line_start_if_indented(document, scope.range.start)..scope.range.end;
    }
    let line = document.line_of(offset);
    document.line_start(line)..document.line_content_end(line)
}

/// Moves a start offset back to the start of its line when only whitespace precedes it, so the
/// model sees (and returns) the first line's indentation.
fn line_start_if_indented(document: &Document, offset: usize) -> usize {
    let offset = document.floor_boundary(offset);
    let line = document.line_of(offset);
    let start = document.line_start(line);
    if document
        .slice(start..offset)
        .chars()
        .all(|c| c == ' ' || c == '\t')
    {
        start
    } else {
        offset
    }
}

fn whole_lines(document: &Document, range: Range<usize>) -> Range<usize> {
    let first = document.line_of(range.start);
    let last = document.line_of(range.end);
    document.line_start(first)..document.line_content_end(last)
}

/// Without a syntax tree, a marker applies to the lines up to the next blank line.
fn paragraph_end(document: &Document, from: usize) -> usize {
    let first = document.line_of(from);
    let mut end = from;
    for line in first..document.rope().len_lines() {
        let content = document.slice(document.line_start(line)..document.line_content_end(line));
        if content.trim().is_empty() {
            break;
        }
        end = document.line_content_end(line);
    }
    end
}

/// The first comment inside a range, without its comment syntax.
fn first_comment(
    document: &Document,
    tree: Option<&SyntaxTree>,
    range: Range<usize>,
) -> Option<String> {
    if let Some(tree) = tree {
        return tree
            .comments_in(range)
            .into_iter()
            .map(|comment| syntax::comment_text(&document.slice(comment)))
            .find(|text| !text.is_empty());
    }
    let text = document.slice(range);
    text.lines()
        .map(str::trim_start)
        .find(|line| {
            ["//", "#", "--", "/*", ";"]
                .iter()
                .any(|opener| line.starts_with(opener))
        })
        .map(syntax::comment_text)
        .filter(|text| !text.is_empty())
}

/// The enclosing scope's text with the target replaced by a placeholder line.
fn scope_context(
    document: &Document,
    tree: Option<&SyntaxTree>,
    target: Range<usize>,
) -> Option<String> {
    let scope = tree?.enclosing_scope(document.rope(), target.clone())?;
    if scope.range.end - scope.range.start > MAX_SCOPE_BYTES {
        return None;
    }
    let start = line_start_if_indented(document, scope.range.start);
    let before = document.slice(start..target.start);
    let after = document.slice(target.end..scope.range.end);
    Some(format!("{before}{TARGET_PLACEHOLDER}{after}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syntax::Language;

    fn plan_for(
        text: &str,
        action: Action,
        range: Option<Range<usize>>,
        instruction: Option<&str>,
    ) -> EditPlan {
        let document = Document::new(text, 1, "rust");
        let tree = SyntaxTree::parse(Language::Rust, document.rope());
        plan(
            &document,
            tree.as_ref(),
            &TargetRequest {
                action,
                range,
                instruction: instruction.map(String::from),
                diagnostics: Vec::new(),
            },
        )
        .unwrap()
    }

    #[test]
    fn marker_consumes_its_line_and_targets_the_next_node() {
        let text = "fn keep() {}\n\n    // baton: make it return 2\n    fn one() -> i32 {\n        1\n    }\nfn after() {}\n";
        let marker_line = text.find("    // baton").unwrap();
        let plan = plan_for(text, Action::Edit, Some(marker_line..marker_line), None);
        assert_eq!(plan.instruction, "make it return 2");
        assert_eq!(
            &text[plan.region.clone()],
            "    // baton: make it return 2\n    fn one() -> i32 {\n        1\n    }"
        );
        assert_eq!(
            plan.aligned_original,
            "    fn one() -> i32 {\n        1\n    }"
        );
    }

    #[test]
    fn selection_takes_its_instruction_from_the_first_comment() {
        let text = "fn main() {\n    // use a loop\n    let x = 1;\n}\n";
        let start = text.find("    // use").unwrap() + 4;
        let end = text.find(";\n}").unwrap() + 1;
        let plan = plan_for(text, Action::Edit, Some(start..end), None);
        assert_eq!(plan.instruction, "use a loop");
        assert_eq!(plan.region.start, start - 4, "widened to the line start");
        assert!(plan.scope.unwrap().contains(TARGET_PLACEHOLDER));
    }

    /// A multi-byte file (2-, 3- and 4-byte characters, a combining accent, a ZWJ emoji, CRLF
    /// line ends): cursors and selections starting at every byte, for every action, with and
    /// without a syntax tree. No plan panics, and every region, target and scope is cut on
    /// character boundaries of the document.
    #[test]
    fn plans_at_every_offset_of_a_multi_byte_file() {
        let text = "// Ñandú es un ave\r\nfn añade() -> &'static str {\r\n    // TODO🎉 later\r\n    // baton: ñandú — añade un campo\r\n    \"👨\u{200D}👩 e\u{301}\"\r\n}\r\n";
        let document = Document::new(text, 1, "rust");
        let tree = SyntaxTree::parse(Language::Rust, document.rope());
        let on_boundaries = |range: &Range<usize>| {
            range.start <= range.end
                && range.end <= text.len()
                && text.is_char_boundary(range.start)
                && text.is_char_boundary(range.end)
        };
        let actions = [
            Action::Edit,
            Action::Fix,
            Action::Document,
            Action::Tests,
            Action::Explain,
        ];
        let mut markers = 0;
        for start in 0..=text.len() + 1 {
            for end in [start, start + 1, start + 6, text.len() + 3] {
                for action in actions {
                    for tree in [tree.as_ref(), None] {
                        let request = TargetRequest {
                            action,
                            range: Some(start..end),
                            instruction: None,
                            diagnostics: Vec::new(),
                        };
                        let Ok(plan) = plan(&document, tree, &request) else {
                            continue;
                        };
                        let context = format!("{action:?} at {start}..{end}");
                        assert!(on_boundaries(&plan.region), "{context}: {:?}", plan.region);
                        assert!(text.contains(&plan.model_target), "{context}");
                        if let Some(scope) = &plan.scope {
                            assert!(scope.contains(TARGET_PLACEHOLDER), "{context}");
                        }
                        if plan.instruction == "ñandú — añade un campo" {
                            markers += 1;
                            assert!(text[plan.region.clone()].starts_with("    // baton:"));
                        }
                    }
                }
            }
        }
        assert!(markers > 0, "the marker line was planned as a marker");
    }

    #[test]
    fn tests_are_inserted_after_the_target() {
        let text = "fn add(a: i32) -> i32 {\n    a\n}\n";
        let plan = plan_for(text, Action::Tests, Some(5..5), None);
        assert_eq!(plan.region, 31..31);
        assert_eq!(plan.model_target, "fn add(a: i32) -> i32 {\n    a\n}");
        assert_eq!(plan.before, "\n\n");
    }
}
