//! Property tests: generated plans round-trip, and no input makes the parser panic.
//!
//! Generated plans are in the *normal form*, the subset of [`Plan`] values the format holds
//! exactly, so the property is plain equality `parse(render(p)) == p`:
//! - one-line fields (title, question and step text, notes, files, headings) are trimmed,
//!   non-empty (the title may be empty), without line breaks, control characters or backticks,
//!   and without the words `file:`/`files:` (which would read as a files suffix);
//! - the title does not start with `Plan:`; a question does not start with `Answer:`/`A:`
//!   and is not a way of saying there are none (`None.`, `N/A`);
//!   answer lines do not start with `>`, `Answer:` or `A:`;
//! - multi-line fields (goal, preamble, section bodies) have no trailing whitespace on any line
//!   and no blank lines at either end, and no line starts with `#`, a code fence or `>` markers
//!   that the parser reads as structure;
//! - a section heading is not one of the known section names and does not end in `#`;
//! - a step's files are distinct; a plan has at least one step.
//!
//! For arbitrary text the properties are weaker: nothing panics, and whatever parses renders
//! to a fixed point (`render(parse(render(parse(x)))) == render(parse(x))`).

use crate::{Plan, Question, Section, Step, StepState};
use proptest::prelude::*;

fn representable_line(text: &str) -> bool {
    let lower = text.to_lowercase();
    !text.is_empty()
        && text.trim() == text
        && !text.chars().any(|c| c.is_control() || c == '`')
        && !lower.contains("file:")
        && !lower.contains("files:")
}

fn line() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .,:;!?()\\[\\]#>*+\\-—é漢🙂]{1,24}"
        .prop_filter("representable", |text| representable_line(text))
}

fn block_line() -> impl Strategy<Value = String> {
    "[ a-zA-Z0-9.,:;!?()\\-é漢]{0,24}".prop_map(|text| text.trim_end().to_owned())
}

fn block() -> impl Strategy<Value = String> {
    prop::collection::vec(block_line(), 0..5)
        .prop_map(|lines| {
            let text = lines.join("\n");
            text.trim_matches('\n').to_owned()
        })
        .prop_filter("no blank ends", |text| {
            text.lines()
                .next()
                .is_none_or(|line| !line.trim().is_empty())
                && text
                    .lines()
                    .last()
                    .is_none_or(|line| !line.trim().is_empty())
        })
}

fn starts_with_any_ignore_case(text: &str, prefixes: &[&str]) -> bool {
    let lower = text.to_lowercase();
    prefixes.iter().any(|prefix| lower.starts_with(prefix))
}

fn state() -> impl Strategy<Value = StepState> {
    prop_oneof![
        Just(StepState::Todo),
        Just(StepState::InProgress),
        Just(StepState::Done)
    ]
}

fn file() -> impl Strategy<Value = String> {
    "[a-z0-9_./-]{1,16}".prop_filter("trimmed", |file| representable_line(file))
}

fn step() -> impl Strategy<Value = Step> {
    (
        line(),
        prop::collection::vec(file(), 0..3),
        prop::collection::vec(line(), 0..3),
        state(),
    )
        .prop_map(|(text, mut files, notes, state)| {
            let mut seen = Vec::new();
            files.retain(|file| {
                let fresh = !seen.contains(file);
                seen.push(file.clone());
                fresh
            });
            Step {
                text,
                files,
                notes,
                state,
            }
        })
}

fn question() -> impl Strategy<Value = Question> {
    (
        line().prop_filter("not an answer", |text| {
            !starts_with_any_ignore_case(text, &["answer:", "a:"])
                && !crate::parse::is_no_question(text)
        }),
        prop::collection::vec(
            line().prop_filter("answer line", |text| {
                !text.starts_with('>') && !starts_with_any_ignore_case(text, &["answer:", "a:"])
            }),
            0..3,
        ),
    )
        .prop_map(|(text, answer)| Question {
            text,
            answer: answer.join("\n"),
        })
}

fn section() -> impl Strategy<Value = Section> {
    (
        line().prop_filter("unknown heading", |heading| {
            let name = heading.trim_end_matches(':').trim().to_lowercase();
            !heading.ends_with('#')
                && ![
                    "goal",
                    "goals",
                    "objective",
                    "questions",
                    "question",
                    "open questions",
                    "steps",
                    "checklist",
                    "plan",
                    "tasks",
                    "todo",
                ]
                .contains(&name.as_str())
        }),
        block(),
    )
        .prop_map(|(heading, body)| Section { heading, body })
}

/// Plans in the normal form (see the module docs); the revision tests use them too.
pub(crate) fn plan() -> impl Strategy<Value = Plan> {
    (
        prop_oneof![
            Just(String::new()),
            line().prop_filter("no prefix", |title| !starts_with_any_ignore_case(
                title,
                &["plan:"]
            ))
        ],
        block(),
        prop::collection::vec(question(), 0..3),
        prop::collection::vec(step(), 1..5),
        prop::collection::vec(section(), 0..2),
        block(),
    )
        .prop_map(|(title, goal, questions, steps, extra, preamble)| Plan {
            title,
            goal,
            questions,
            steps,
            extra,
            preamble,
        })
}

/// Pieces of plan syntax (and junk) that random documents are built from.
const FRAGMENTS: &[&str] = &[
    "# Plan: x",
    "# ",
    "#",
    "## Steps",
    "## steps:",
    "## Goal",
    "## Questions",
    "## Notes",
    "##",
    "- [ ] a",
    "- [x] b",
    "- [~]",
    "- []",
    "* c",
    "+ ",
    "1. d",
    "2)",
    "- ",
    "-",
    "---",
    "  > note: n",
    ">",
    "> note:",
    "\tindented",
    "    deep",
    "Answer:",
    "   Answer: y",
    "a:",
    "files:",
    " — files: `a/b.rs`",
    "(files: x)",
    "`src/a.rs`",
    "`",
    "```",
    "```markdown",
    "~~~",
    "<!-- baton plan",
    "\u{0}",
    "\r",
    "\r\n",
    "\n",
    "\n\n",
    "\u{FFFD}",
    "\u{1}",
    "é",
    "漢字",
    "🙂",
    " ",
    "\t",
    "free text",
    "question?",
    "[x]",
    "[ ] ",
    "Plan:",
];

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(FRAGMENTS).prop_map(str::to_owned),
            1 => any::<String>(),
        ],
        0..40,
    )
    .prop_map(|pieces| pieces.concat())
}

fn check_any_text(text: &str) {
    let _ = Plan::parse_partial(text);
    for line in 0..text.lines().count() + 2 {
        let _ = Plan::step_at_line(text, line);
    }
    if let Ok(plan) = Plan::parse(text) {
        let rendered = plan.render();
        let again = Plan::parse(&rendered).expect("a rendered plan parses");
        assert_eq!(
            again.render(),
            rendered,
            "render is not a fixed point for {text:?}"
        );
        assert_eq!(
            again, plan,
            "the rendered plan reads back differently for {text:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_plans_round_trip(plan in plan()) {
        let text = plan.render();
        let parsed = Plan::parse(&text);
        prop_assert_eq!(parsed.as_ref(), Ok(&plan), "text:\n{}", text);
        prop_assert_eq!(parsed.map(|plan| plan.render()).ok(), Some(text));
    }

    #[test]
    fn step_at_line_finds_every_rendered_step(plan in plan()) {
        let text = plan.render();
        for (index, line) in text.lines().enumerate() {
            if let Some(step) = line.strip_prefix("- [") {
                let number: String = step[3..].chars().take_while(char::is_ascii_digit).collect();
                prop_assert_eq!(Plan::step_at_line(&text, index), number.parse::<usize>().ok().map(|n| n - 1));
            }
        }
    }

    #[test]
    fn plan_like_documents_never_panic(text in document()) {
        check_any_text(&text);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check_any_text(&text);
    }
}
