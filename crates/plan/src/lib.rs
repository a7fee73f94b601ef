//! The plan document of baton's plan mode: a Markdown file the model writes, the user edits
//! freely, and baton reads back to refine or execute.
//!
//! - [`Plan`] is the document as data; [`Plan::render`] writes the canonical text and
//!   [`Plan::parse`] reads any user-edited (or model-written) version of it back, leniently.
//! - [`revise`] compares two versions of a plan: what the user changed ([`revise::user_changes`])
//!   and how to keep the user's notes, answers and ticks on a revised plan
//!   ([`revise::carry_over`]).
//! - [`prompt`] builds the model requests (plan, refine) and the execution brief for an agent,
//!   checks the files a plan names against the workspace, and ticks the checklist from an
//!   agent's reported progress.
//!
//! # The format
//!
//! [`Plan::render`] writes exactly this shape (sections without content are kept as headings,
//! except `## Questions`, which is left out when there are none):
//!
//! ```text
//! # Plan: <title>
//!
//! <!-- baton plan · edit anything; code actions: Refine plan · Execute plan · Execute this step -->
//!
//! <preamble: free text the user wrote above the first section, if any>
//!
//! ## Goal
//!
//! <goal text, one or more paragraphs>
//!
//! ## Questions
//!
//! 1. <question text>
//!    Answer: <answer text, empty when unanswered>
//!
//! ## Steps
//!
//! - [ ] 1. <step text> — files: `src/a.rs`, `src/b.rs`
//!   > note: <a user note line>
//! - [x] 2. <a done step>
//! - [~] 3. <a step in progress>
//!
//! ## <any other section the user added, verbatim>
//! ```
//!
//! Details that make the shape unambiguous:
//! - A step's files follow the last ` — files: ` (em dash) on its line, each in backticks and
//!   separated by `, `. A step without files has no suffix.
//! - Every note is written on its own line as `  > note: <text>`; an answer's continuation
//!   lines are indented three spaces under `Answer:`.
//! - Step and question numbers are written by [`Plan::render`] and ignored by [`Plan::parse`],
//!   so reordering lines in the editor just works.
//! - The `<!-- baton plan … -->` comment is written on every render and dropped on parse.
//!
//! # Reading it back
//!
//! [`Plan::parse`] accepts what users and models actually write (see the [`parse`] module for
//! every rule): headings in any case and with synonyms (`Checklist`, `Tasks`, `Open questions`),
//! `*`/`+`/numbered bullets, bullets without a checkbox, free-text lines typed into the steps,
//! notes as indented or `>` lines, CRLF line endings, a surrounding ```` ```markdown ```` fence and
//! chatter before the title. It refuses, with a message for the user, documents that are too
//! large ([`MAX_PLAN_BYTES`]), binary, not a plan at all, or without steps ([`ParseError`]).
//!
//! # Round trip
//!
//! Rendering is a fixed point: for any text `Plan::parse` accepts, rendering the plan, parsing
//! that and rendering again gives the same bytes. A [`Plan`] built in code reads back equal
//! when it is in the format's *normal form*: one-line fields (title, step and question text,
//! notes, files, headings) trimmed and without line breaks; multi-line fields (goal, preamble,
//! section bodies, answers) without trailing whitespace or blank lines at the ends; a step's
//! backticked path-like tokens already among its files. The property tests in
//! `parse/tests/properties.rs` spell out the exact subset they generate.

pub mod parse;
pub mod prompt;
mod render;
pub mod revise;
mod similarity;

pub use parse::{MAX_PLAN_BYTES, ParseError};
pub use prompt::{
    PlanContext, brief, executed_steps, outside_steps, path_escapes, plan_request, refine_request,
    tick,
};
pub use revise::{carry_over, same, user_changes};

use serde::{Deserialize, Serialize};

/// A plan document as data. Field order is the document's order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// The text after `# Plan:` (without the `Plan:`).
    pub title: String,
    /// The `## Goal` section's text; may be empty.
    pub goal: String,
    /// `## Questions`, in order.
    pub questions: Vec<Question>,
    /// `## Steps`, in order.
    pub steps: Vec<Step>,
    /// Sections baton does not know, kept verbatim so an edit never loses them.
    pub extra: Vec<Section>,
    /// Free text between the title and the first `##` section.
    pub preamble: String,
}

/// An open question and the user's answer (empty until answered).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Question {
    pub text: String,
    /// One line per answer line; empty when unanswered.
    pub answer: String,
}

/// A step's checkbox: `[ ]`, `[~]`, `[x]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StepState {
    #[default]
    Todo,
    InProgress,
    Done,
}

/// One checklist item, with the files it touches and the user's notes under it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Step {
    /// One line, without checkbox, number or files suffix.
    pub text: String,
    /// Workspace-relative paths as written (not checked here; see [`prompt::outside_steps`]).
    pub files: Vec<String>,
    /// The user's notes, one per line, without the `> note:` prefix.
    pub notes: Vec<String>,
    pub state: StepState,
}

/// A `## heading` section baton does not interpret.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Section {
    /// The heading's text, without `## `.
    pub heading: String,
    /// The lines under it, verbatim except for trailing whitespace and surrounding blank lines.
    pub body: String,
}

impl Plan {
    /// The canonical document text (see the crate docs for the shape).
    pub fn render(&self) -> String {
        render::render(self)
    }

    /// Reads a plan document the user (or a model) wrote; lenient about everything except
    /// documents that cannot be a plan (see [`ParseError`]).
    pub fn parse(text: &str) -> Result<Plan, ParseError> {
        parse::parse(text)
    }

    /// Like [`Plan::parse`] but never fails: for a model's reply still streaming in, where the
    /// steps may not have arrived yet. Over-large input is truncated to [`MAX_PLAN_BYTES`].
    pub fn parse_partial(text: &str) -> Plan {
        parse::parse_partial(text)
    }

    /// The 0-based index of the step whose block (its line and its notes) contains the 0-based
    /// `line` of `text`, as [`Plan::parse`] would number the steps.
    pub fn step_at_line(text: &str, line: usize) -> Option<usize> {
        parse::step_at_line(text, line)
    }
}

/// The 0-based line of each step's own line (not its notes), in the order [`Plan::parse`]
/// numbers the steps; empty for a document over [`MAX_PLAN_BYTES`]. What ticking a step
/// changes, and nothing else.
pub fn step_lines(text: &str) -> Vec<usize> {
    parse::step_lines(text)
}

impl Plan {}
