//! Reads a plan document back, leniently: the user edits it freely and a model writes it from a
//! description, so every reasonable spelling of the format is accepted and nothing the user
//! wrote is dropped silently.
//!
//! The rules, in the order they apply:
//! - **Refusals** ([`ParseError`]): more than [`MAX_PLAN_BYTES`] bytes; a NUL byte, or more than
//!   10% control characters (U+FFFD, what a lossy decode of binary data leaves, counts as one);
//!   neither a `# ` title nor a steps section; no steps at all.
//! - **Lines** end at `\n`, `\r\n` or a lone `\r`, as baton's documents count them, so
//!   [`Plan::step_at_line`](crate::Plan::step_at_line) agrees with the editor's line numbers.
//! - **Title**: the first `# ` line before any `## ` heading, without a leading `Plan:`. Lines
//!   above the title are dropped (a model's "Here is the plan:"). If the line before the title
//!   opens a code fence (```` ```markdown ````), the last bare closing fence and everything after it
//!   are dropped too.
//! - **Sections** start at `## ` headings, matched case-insensitively without a trailing `:`:
//!   `Goal`/`Goals`/`Objective`; `Questions`/`Open questions`; `Steps`/`Checklist`/`Plan`/
//!   `Tasks`/`Todo`. Repeated sections are appended. Any other heading starts a [`Section`]
//!   kept verbatim. Headings inside a fenced code block in a text section are text. Text
//!   between the title and the first heading is the preamble. The `<!-- baton plan` comment is
//!   dropped.
//! - **Steps**: a line `- [ ] text` (`*`/`+` bullets, `1.`/`1)` numbers, `[x]`/`[X]` done,
//!   `[~]`/`[-]`/`[/]` in progress, `[]` todo), a bullet or numbered line without a checkbox,
//!   or any other non-blank line (a step typed as free text) starts a step. A visible number
//!   after the checkbox is dropped. Files come from a trailing `— files: …` (also `-`, `–`,
//!   `--`, `|`, `;`, `(files: …)`), backticked or comma-separated, and from backticked path-like
//!   tokens in the text (containing `/` or ending in `.ext`). The lines after a step that are
//!   indented two columns more than it (a tab counts four) or start with `>` are its notes,
//!   without `>` and `note:`; an indented `files: …` line adds files instead. Blank lines
//!   are skipped; horizontal rules (`---`) in the steps are ignored. A step left without text,
//!   files or notes (a bare `- [ ]`) is dropped. Two shapes models like are folded in: a
//!   `### Step 2: …` heading is a step (without the `#`s), and a `Files: …` line or bullet
//!   without a checkbox adds files to the step above it.
//! - **Questions**: each bullet or numbered line (or free line ending in `?`) is a question; an
//!   `Answer:`/`A:`/`> answer:` line, indented lines and other free lines under it are its
//!   answer, one line each. A question that only says there are none (`None.`, `N/A`) is
//!   dropped.
//! - A leading byte order mark is ignored.

use crate::render::MARKER_PREFIX;
use crate::{Plan, Question, Section, Step, StepState};
use std::collections::HashSet;
use std::fmt;

/// The largest document [`crate::Plan::parse`] reads: a plan is a page or two; a 5 MB file is
/// something else, and refusing it keeps every parse fast.
pub const MAX_PLAN_BYTES: usize = 1 << 20;

/// Why a document cannot be read as a plan. The `Display` text is written for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Longer than [`MAX_PLAN_BYTES`]; refused before reading a line.
    TooLarge { bytes: usize, limit: usize },
    /// A NUL byte, or more than 10% control or replacement characters.
    Binary,
    /// Neither a title nor a steps section; the text says what was expected and not found.
    NotAPlan(String),
    /// A plan, but without a single step to do.
    NoSteps,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooLarge { bytes, limit } => write!(
                f,
                "the plan is too large to read ({bytes} bytes; plans are limited to {limit} bytes): \
                 shorten it or start a new plan"
            ),
            ParseError::Binary => f.write_str(
                "the plan document contains binary data (NUL or control characters): \
                 a plan must be plain Markdown text",
            ),
            ParseError::NotAPlan(reason) => {
                write!(f, "this does not look like a baton plan: {reason}")
            }
            ParseError::NoSteps => {
                f.write_str("the plan has no steps: add lines like `- [ ] do X` under ## Steps")
            }
        }
    }
}

impl std::error::Error for ParseError {}

pub(crate) fn parse(text: &str) -> Result<Plan, ParseError> {
    if text.len() > MAX_PLAN_BYTES {
        return Err(ParseError::TooLarge {
            bytes: text.len(),
            limit: MAX_PLAN_BYTES,
        });
    }
    if looks_binary(text) {
        return Err(ParseError::Binary);
    }
    let read = read(text);
    if !read.saw_title && !read.saw_steps_heading {
        let reason = if text.trim().is_empty() {
            "the document is empty; a plan starts with a `# Plan: <title>` line and has a `## Steps` checklist".to_owned()
        } else {
            "it has no `# Plan: <title>` line and no `## Steps` section".to_owned()
        };
        return Err(ParseError::NotAPlan(reason));
    }
    if read.plan.steps.is_empty() {
        return Err(ParseError::NoSteps);
    }
    Ok(read.plan)
}

pub(crate) fn parse_partial(text: &str) -> Plan {
    read(truncate(text)).plan
}

pub(crate) fn step_at_line(text: &str, line: usize) -> Option<usize> {
    if text.len() > MAX_PLAN_BYTES {
        return None;
    }
    read(text)
        .step_lines
        .iter()
        .position(|&(first, last)| (first..=last).contains(&line))
}

pub(crate) fn step_lines(text: &str) -> Vec<usize> {
    if text.len() > MAX_PLAN_BYTES {
        return Vec::new();
    }
    read(text)
        .step_lines
        .iter()
        .map(|&(first, _)| first)
        .collect()
}

/// The longest prefix of `text` within [`MAX_PLAN_BYTES`] that ends on a character boundary.
fn truncate(text: &str) -> &str {
    if text.len() <= MAX_PLAN_BYTES {
        return text;
    }
    let mut end = MAX_PLAN_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn looks_binary(text: &str) -> bool {
    let mut total = 0usize;
    let mut junk = 0usize;
    for c in text.chars() {
        if c == '\0' {
            return true;
        }
        total += 1;
        if (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || c == '\u{FFFD}' {
            junk += 1;
        }
    }
    junk * 10 > total
}

/// What the lenient reader found; [`parse`] decides whether it is enough.
struct Read {
    plan: Plan,
    /// For each step of `plan.steps`, its first and last line (the step line and its notes).
    step_lines: Vec<(usize, usize)>,
    saw_title: bool,
    saw_steps_heading: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Preamble,
    Goal,
    Questions,
    Steps,
    /// Index into `plan.extra`.
    Extra(usize),
}

/// A step being read: the step, its line span and the indentation of its line.
struct OpenStep {
    step: Step,
    first: usize,
    last: usize,
    indent: usize,
}

struct OpenQuestion {
    question: Question,
    indent: usize,
    answer_lines: Vec<String>,
}

fn read(text: &str) -> Read {
    // A byte order mark would hide the title; it sits on line 0, so line numbers are unchanged.
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let lines = split_lines(text);
    let (title_index, start, end) = frame(&lines);

    let mut plan = Plan::default();
    if let Some(index) = title_index {
        plan.title = title_text(lines[index]);
    }
    let mut saw_steps_heading = false;
    let mut part = Part::Preamble;
    let mut preamble: Vec<&str> = Vec::new();
    let mut goal: Vec<&str> = Vec::new();
    let mut extra: Vec<Vec<&str>> = Vec::new();
    let mut in_code_block = false;
    let mut steps: Vec<OpenStep> = Vec::new();
    let mut questions: Vec<OpenQuestion> = Vec::new();

    for (index, &line) in lines.iter().enumerate().take(end).skip(start) {
        let trimmed = line.trim();
        let text_part = matches!(part, Part::Preamble | Part::Goal | Part::Extra(_));
        if text_part && is_fence(trimmed) {
            in_code_block = !in_code_block;
        }
        if !(text_part && in_code_block) {
            if trimmed.starts_with(MARKER_PREFIX) {
                continue;
            }
            if let Some(heading) = heading_text(line) {
                in_code_block = false;
                part = match section_kind(heading) {
                    Some(Part::Goal) => {
                        if !goal.is_empty() {
                            goal.push("");
                        }
                        Part::Goal
                    }
                    Some(Part::Steps) => {
                        saw_steps_heading = true;
                        Part::Steps
                    }
                    Some(known) => known,
                    None => {
                        plan.extra.push(Section {
                            heading: heading.to_owned(),
                            body: String::new(),
                        });
                        extra.push(Vec::new());
                        Part::Extra(extra.len() - 1)
                    }
                };
                continue;
            }
        }
        match part {
            Part::Preamble => preamble.push(line),
            Part::Goal => goal.push(line),
            Part::Extra(section) => extra[section].push(line),
            Part::Questions => read_question_line(&mut questions, line),
            Part::Steps => read_step_line(&mut steps, line, index),
        }
    }

    plan.preamble = join_block(&preamble);
    plan.goal = join_block(&goal);
    for (section, body) in plan.extra.iter_mut().zip(&extra) {
        section.body = join_block(body);
    }
    plan.questions = questions
        .into_iter()
        .map(|open| Question {
            text: open.question.text,
            answer: open.answer_lines.join("\n"),
        })
        .filter(|question| !question.answer.is_empty() || !is_no_question(&question.text))
        .collect();
    let mut step_lines = Vec::new();
    for open in steps {
        let mut step = open.step;
        dedup_files(&mut step.files);
        if step.text.is_empty() && step.files.is_empty() && step.notes.is_empty() {
            continue;
        }
        step_lines.push((open.first, open.last));
        plan.steps.push(step);
    }
    Read {
        plan,
        step_lines,
        saw_title: title_index.is_some(),
        saw_steps_heading,
    }
}

/// Where the document is: the title's line, and the range of lines after it that hold the
/// plan (without a surrounding code fence and what comes after its closing line).
fn frame(lines: &[&str]) -> (Option<usize>, usize, usize) {
    let first_heading = lines
        .iter()
        .position(|line| heading_text(line).is_some())
        .unwrap_or(lines.len());
    let title_index = lines[..first_heading]
        .iter()
        .position(|line| title_line(line).is_some());
    let (start, fenced) = match title_index {
        Some(title) => {
            let opened = lines[..title]
                .iter()
                .rev()
                .find(|line| !line.trim().is_empty())
                .is_some_and(|line| is_fence(line.trim()));
            (title + 1, opened)
        }
        None => match lines.iter().position(|line| !line.trim().is_empty()) {
            Some(first) if is_fence(lines[first].trim()) => (first + 1, true),
            _ => (0, false),
        },
    };
    let end = if fenced {
        (start..lines.len())
            .rev()
            .find(|&index| is_bare_fence(lines[index].trim()))
            .unwrap_or(lines.len())
    } else {
        lines.len()
    };
    (title_index, start, end)
}

/// Lines as baton's documents count them: `\n`, `\r\n` and a lone `\r` each end one.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\n' => {
                lines.push(&text[start..index]);
                start = index + 1;
            }
            b'\r' => {
                lines.push(&text[start..index]);
                if bytes.get(index + 1) == Some(&b'\n') {
                    index += 1;
                }
                start = index + 1;
            }
            _ => {}
        }
        index += 1;
    }
    lines.push(&text[start..]);
    lines
}

fn title_line(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('#')?;
    if rest.is_empty() {
        return Some("");
    }
    rest.strip_prefix([' ', '\t'])
}

fn title_text(line: &str) -> String {
    let title = title_line(line).unwrap_or_default().trim();
    let title = strip_prefix_ignore_case(title, "plan:").unwrap_or(title);
    title.trim().to_owned()
}

/// The text of a `## ` heading line (trailing `#`s trimmed), or `None`.
fn heading_text(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("##")?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim_end())
}

fn section_kind(heading: &str) -> Option<Part> {
    let name = heading.trim_end_matches(':').trim().to_lowercase();
    match name.as_str() {
        "goal" | "goals" | "objective" => Some(Part::Goal),
        "questions" | "question" | "open questions" => Some(Part::Questions),
        "steps" | "checklist" | "plan" | "tasks" | "todo" => Some(Part::Steps),
        _ => None,
    }
}

fn is_fence(trimmed: &str) -> bool {
    trimmed.starts_with("```") || trimmed.starts_with("~~~")
}

fn is_bare_fence(trimmed: &str) -> bool {
    trimmed.len() >= 3 && (trimmed.bytes().all(|b| b == b'`') || trimmed.bytes().all(|b| b == b'~'))
}

/// A text section's lines: trailing whitespace and surrounding blank lines dropped.
fn join_block(lines: &[&str]) -> String {
    let lines: Vec<&str> = lines.iter().map(|line| line.trim_end()).collect();
    let Some(first) = lines.iter().position(|line| !line.is_empty()) else {
        return String::new();
    };
    let last = lines
        .iter()
        .rposition(|line| !line.is_empty())
        .unwrap_or(first);
    lines[first..=last].join("\n")
}

/// Leading whitespace width, a tab counting four columns.
fn indent_width(line: &str) -> usize {
    line.chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

fn is_horizontal_rule(trimmed: &str) -> bool {
    let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    compact.len() >= 3
        && ["-", "*", "_"]
            .iter()
            .any(|mark| compact.chars().all(|c| c.to_string() == *mark))
}

/// A list item: bullet or number, an optional checkbox, an optional visible number. Returns
/// the checkbox's state (if any) and the rest of the line.
fn list_item(trimmed: &str) -> Option<(Option<StepState>, &str)> {
    let after_marker = strip_bullet(trimmed).or_else(|| strip_number(trimmed));
    let rest = after_marker.unwrap_or(trimmed);
    let (state, rest) = match strip_checkbox(rest) {
        Some((state, rest)) => (Some(state), rest),
        // A line is a list item only with a bullet, a number or a checkbox.
        None if after_marker.is_none() => return None,
        None => (None, rest),
    };
    let rest = rest.trim_start();
    let rest = strip_number(rest).unwrap_or(rest);
    Some((state, rest.trim()))
}

fn strip_bullet(text: &str) -> Option<&str> {
    let rest = text.strip_prefix(['-', '*', '+'])?;
    if rest.is_empty() {
        return Some(rest);
    }
    rest.strip_prefix([' ', '\t'])
}

fn strip_number(text: &str) -> Option<&str> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let rest = text[digits..].strip_prefix(['.', ')'])?;
    if rest.is_empty() {
        return Some(rest);
    }
    rest.strip_prefix([' ', '\t'])
}

fn strip_checkbox(text: &str) -> Option<(StepState, &str)> {
    let rest = text.strip_prefix('[')?;
    let (state, rest) = if let Some(rest) = rest.strip_prefix(']') {
        (StepState::Todo, rest)
    } else {
        let mut chars = rest.chars();
        let mark = chars.next()?;
        let rest = chars.as_str().strip_prefix(']')?;
        let state = match mark {
            ' ' => StepState::Todo,
            'x' | 'X' => StepState::Done,
            '~' | '-' | '/' => StepState::InProgress,
            _ => return None,
        };
        (state, rest)
    };
    if rest.is_empty() || rest.starts_with([' ', '\t']) {
        Some((state, rest))
    } else {
        None
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// A note line without its `>` and `note:` markers.
fn note_text(trimmed: &str) -> &str {
    let text = trimmed.strip_prefix('>').unwrap_or(trimmed).trim_start();
    strip_prefix_ignore_case(text, "note:")
        .unwrap_or(text)
        .trim()
}

fn read_step_line(steps: &mut Vec<OpenStep>, line: &str, index: usize) {
    let trimmed = line.trim();
    if trimmed.is_empty() || is_horizontal_rule(trimmed) {
        return;
    }
    let indent = indent_width(line);
    if let Some(open) = steps.last_mut()
        && (indent >= open.indent + 2 || trimmed.starts_with('>'))
    {
        open.last = index;
        if !trimmed.starts_with('>')
            && let Some(list) = strip_prefix_ignore_case(trimmed, "files:")
        {
            add_files(&mut open.step.files, file_list(list));
            return;
        }
        let note = note_text(trimmed);
        if !note.is_empty() {
            open.step.notes.push(note.to_owned());
        }
        return;
    }
    let (state, rest) = match list_item(trimmed) {
        Some((state, rest)) => (state, rest),
        // Free text typed into the steps: a new step, to do. A `>` line before any step is
        // still the user's words, so it becomes a step rather than vanishing. A Markdown
        // heading (`### Step 2: …`, how models like to structure steps) gives its text.
        None => (
            None,
            note_text(trimmed).trim_start_matches('#').trim_start(),
        ),
    };
    // `Files: …` on its own line (or bullet) under a step, as models write it, belongs to
    // that step rather than being a step of its own.
    if state.is_none()
        && let Some(open) = steps.last_mut()
        && let Some(list) = strip_prefix_ignore_case(rest, "files:")
            .or_else(|| strip_prefix_ignore_case(rest, "file:"))
    {
        add_files(&mut open.step.files, file_list(list));
        open.last = index;
        return;
    }
    let state = state.unwrap_or_default();
    let (text, files) = split_files(rest);
    steps.push(OpenStep {
        step: Step {
            text,
            files,
            notes: Vec::new(),
            state,
        },
        first: index,
        last: index,
        indent,
    });
}

fn read_question_line(questions: &mut Vec<OpenQuestion>, line: &str) {
    let trimmed = line.trim();
    if trimmed.is_empty() || is_horizontal_rule(trimmed) {
        return;
    }
    let indent = indent_width(line);
    let unquoted = trimmed.strip_prefix('>').unwrap_or(trimmed).trim_start();
    let answer = strip_prefix_ignore_case(unquoted, "answer:")
        .or_else(|| strip_prefix_ignore_case(unquoted, "a:"))
        .map(str::trim);
    if let Some(open) = questions.last_mut() {
        let under = indent >= open.indent + 2 || trimmed.starts_with('>');
        let item = strip_bullet(trimmed).or_else(|| strip_number(trimmed));
        if answer.is_some() || under || (item.is_none() && !trimmed.ends_with('?')) {
            let text = answer.unwrap_or(unquoted).trim();
            if !text.is_empty() {
                open.answer_lines.push(text.to_owned());
            }
            return;
        }
    }
    // Only the bullet or number goes: a question's text is kept as written after it.
    let text = strip_bullet(trimmed)
        .or_else(|| strip_number(trimmed))
        .unwrap_or(unquoted);
    questions.push(OpenQuestion {
        question: Question {
            text: text.trim().to_owned(),
            answer: String::new(),
        },
        indent,
        answer_lines: Vec::new(),
    });
}

/// An empty question, or a model's way of saying there are none (`None.`, `N/A`).
pub(crate) fn is_no_question(text: &str) -> bool {
    let text = text.trim();
    let words = text
        .trim_matches(|c: char| c == '(' || c == ')' || c == '.' || c == '*' || c == '_')
        .to_lowercase();
    text.is_empty()
        || matches!(
            words.as_str(),
            "none" | "n/a" | "no questions" | "no open questions" | "none so far"
        )
}

/// Splits a step line's text from a trailing files list.
fn split_files(rest: &str) -> (String, Vec<String>) {
    let mut files = Vec::new();
    let mut text = rest.trim();
    if let Some((before, list)) = files_suffix(text) {
        text = before;
        add_files(&mut files, file_list(list));
    }
    add_files(&mut files, backticked_paths(text));
    (text.to_owned(), files)
}

/// The text before a `— files: …` suffix and the list after it, if the line has one.
fn files_suffix(text: &str) -> Option<(&str, &str)> {
    // ASCII lowercasing keeps byte offsets, so positions found here index `text`.
    let lower = text.to_ascii_lowercase();
    let (at, keyword) = ["files:", "file:"]
        .iter()
        .filter_map(|keyword| lower.rfind(keyword).map(|at| (at, keyword.len())))
        .max_by_key(|&(at, _)| at)?;
    let before = text[..at].trim_end();
    let after = &text[at + keyword..];
    for separator in ["—", "–", "--", "-", "|", ";", ","] {
        // The separator must stand alone (`x — files:`), so `the x-files: y` is step text.
        if let Some(stripped) = before.strip_suffix(separator)
            && (stripped.is_empty() || stripped.ends_with(char::is_whitespace))
        {
            return Some((stripped.trim_end(), after));
        }
    }
    if let Some(stripped) = before.strip_suffix('(') {
        let after = after.trim_end();
        let after = after.strip_suffix(')').unwrap_or(after);
        return Some((stripped.trim_end(), after));
    }
    before.is_empty().then_some(("", after))
}

fn file_list(list: &str) -> Vec<String> {
    let list = list.trim();
    if list.contains('`') {
        return list
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::trim)
            .filter(|file| !file.is_empty())
            .map(str::to_owned)
            .collect();
    }
    list.split(',')
        .map(|file| file.trim().trim_matches(['"', '\'']).trim())
        .filter(|file| !file.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Backticked tokens in a step's text that look like paths: `src/a.rs`, `README.md`.
fn backticked_paths(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::trim)
        .filter(|token| looks_like_path(token))
        .map(str::to_owned)
        .collect()
}

fn looks_like_path(token: &str) -> bool {
    if token.is_empty()
        || token
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '(' | ')' | '<' | '>' | ',' | '"' | '\''))
        || token.contains("::")
    {
        return false;
    }
    if token.contains('/') {
        return true;
    }
    match token.rsplit_once('.') {
        Some((stem, extension)) => {
            !stem.is_empty()
                && (1..=8).contains(&extension.len())
                && extension.chars().all(|c| c.is_ascii_alphanumeric())
                && extension.starts_with(|c: char| c.is_ascii_alphabetic())
        }
        None => false,
    }
}

/// Adds files in order; duplicates are dropped once the step is complete ([`dedup_files`]),
/// since checking each addition against the list would be quadratic on a pathological line.
fn add_files(files: &mut Vec<String>, new: Vec<String>) {
    files.extend(new);
}

fn dedup_files(files: &mut Vec<String>) {
    let mut seen = HashSet::new();
    files.retain(|file| seen.insert(file.clone()));
}

#[cfg(test)]
pub(crate) mod tests;
