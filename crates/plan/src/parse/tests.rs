//! Parsing tests: the canonical shape, user edits, model output and bad input.

use crate::{ParseError, Plan, Question, Section, Step, StepState};
use expect_test::expect;

fn step(text: &str, files: &[&str], notes: &[&str], state: StepState) -> Step {
    Step {
        text: text.to_owned(),
        files: files.iter().map(|file| (*file).to_owned()).collect(),
        notes: notes.iter().map(|note| (*note).to_owned()).collect(),
        state,
    }
}

fn full_plan() -> Plan {
    Plan {
        title: "Cache the repo map".to_owned(),
        goal: "Build the repo map once per index generation.\n\nKeep requests fast.".to_owned(),
        questions: vec![
            Question {
                text: "Should the cache survive restarts?".to_owned(),
                answer: String::new(),
            },
            Question {
                text: "Which budget applies?".to_owned(),
                answer: "The request's.\nNot the global one.".to_owned(),
            },
        ],
        steps: vec![
            step(
                "Add a cache keyed by generation",
                &["crates/index/src/repo_map.rs"],
                &["keep it small"],
                StepState::Done,
            ),
            step(
                "Use it from the server",
                &["server/src/context.rs", "server/src/jobs.rs"],
                &[],
                StepState::InProgress,
            ),
            step(
                "Add a test",
                &[],
                &["one per case", "and a benchmark"],
                StepState::Todo,
            ),
        ],
        extra: vec![Section {
            heading: "Risks".to_owned(),
            body: "- stale maps\n- memory".to_owned(),
        }],
        preamble: "Written after the review.".to_owned(),
    }
}

#[test]
fn full_plan_renders_canonically_and_reads_back() {
    let plan = full_plan();
    let text = plan.render();
    expect![[r#"
        # Plan: Cache the repo map

        <!-- baton plan · edit anything; code actions: Refine plan · Execute plan · Execute this step -->

        Written after the review.

        ## Goal

        Build the repo map once per index generation.

        Keep requests fast.

        ## Questions

        1. Should the cache survive restarts?
           Answer:

        2. Which budget applies?
           Answer: The request's.
           Not the global one.

        ## Steps

        - [x] 1. Add a cache keyed by generation — files: `crates/index/src/repo_map.rs`
          > note: keep it small
        - [~] 2. Use it from the server — files: `server/src/context.rs`, `server/src/jobs.rs`
        - [ ] 3. Add a test
          > note: one per case
          > note: and a benchmark

        ## Risks

        - stale maps
        - memory
    "#]]
    .assert_eq(&text);
    let parsed = Plan::parse(&text).expect("canonical text parses");
    assert_eq!(parsed, plan);
    assert_eq!(parsed.render(), text);
}

#[test]
fn empty_plan_parts_render_minimally() {
    let plan = Plan {
        steps: vec![step("Only step", &[], &[], StepState::Todo)],
        ..Plan::default()
    };
    let text = plan.render();
    expect![[r#"
        # Plan:

        <!-- baton plan · edit anything; code actions: Refine plan · Execute plan · Execute this step -->

        ## Goal

        ## Steps

        - [ ] 1. Only step
    "#]]
    .assert_eq(&text);
    assert_eq!(Plan::parse(&text), Ok(plan));
}

/// Parses `text`, which must be a plan, and returns its steps' texts.
fn step_texts(text: &str) -> Vec<String> {
    Plan::parse(text)
        .expect("a plan")
        .steps
        .into_iter()
        .map(|step| step.text)
        .collect()
}

fn edited(from: &str, to: &str) -> String {
    let text = full_plan().render();
    assert!(text.contains(from), "{from:?} not in the plan");
    text.replacen(from, to, 1)
}

#[test]
fn reordered_steps_keep_their_notes_and_renumber() {
    let text = full_plan().render();
    let first = "- [x] 1. Add a cache keyed by generation — files: `crates/index/src/repo_map.rs`\n  > note: keep it small\n";
    let text = text
        .replacen(first, "", 1)
        .replacen("\n## Risks", &format!("{first}\n## Risks"), 1);
    let plan = Plan::parse(&text).expect("a plan");
    assert_eq!(plan.steps.len(), 3);
    assert_eq!(plan.steps[2].text, "Add a cache keyed by generation");
    assert_eq!(plan.steps[2].notes, ["keep it small"]);
    assert_eq!(plan.steps[2].state, StepState::Done);
    assert!(
        plan.render()
            .contains("- [x] 3. Add a cache keyed by generation")
    );
}

#[test]
fn deleted_step_is_gone() {
    let text = edited(
        "- [~] 2. Use it from the server — files: `server/src/context.rs`, `server/src/jobs.rs`\n",
        "",
    );
    assert_eq!(
        step_texts(&text),
        ["Add a cache keyed by generation", "Add a test"]
    );
}

#[test]
fn free_text_line_in_steps_is_a_new_step() {
    let text = edited(
        "  > note: and a benchmark\n",
        "  > note: and a benchmark\nalso update the README\n",
    );
    let plan = Plan::parse(&text).expect("a plan");
    assert_eq!(plan.steps.len(), 4);
    assert_eq!(
        plan.steps[3],
        step("also update the README", &[], &[], StepState::Todo)
    );
    assert_eq!(plan.steps[2].notes, ["one per case", "and a benchmark"]);
}

#[test]
fn plain_bullets_and_numbers_are_new_steps() {
    let text = edited(
        "\n## Risks",
        "- write the docs in `docs/plan.md`\n* star bullet\n+ plus bullet\n4) numbered\n5. [x] numbered and done\n\n## Risks",
    );
    let plan = Plan::parse(&text).expect("a plan");
    let added: Vec<&Step> = plan.steps[3..].iter().collect();
    assert_eq!(
        added[0],
        &step(
            "write the docs in `docs/plan.md`",
            &["docs/plan.md"],
            &[],
            StepState::Todo
        )
    );
    assert_eq!(added[1].text, "star bullet");
    assert_eq!(added[2].text, "plus bullet");
    assert_eq!(added[3].text, "numbered");
    assert_eq!(added[4].text, "numbered and done");
    assert_eq!(added[4].state, StepState::Done);
}

#[test]
fn notes_as_quotes_and_indented_lines() {
    let text = edited(
        "- [~] 2. Use it from the server — files: `server/src/context.rs`, `server/src/jobs.rs`\n",
        "- [~] 2. Use it from the server — files: `server/src/context.rs`, `server/src/jobs.rs`\n> note: quoted note\n>plain quote\n    indented note\n\n\tafter a blank line, tabbed\n  files: `server/src/main.rs`\n",
    );
    let plan = Plan::parse(&text).expect("a plan");
    assert_eq!(
        plan.steps[1].notes,
        [
            "quoted note",
            "plain quote",
            "indented note",
            "after a blank line, tabbed"
        ]
    );
    assert_eq!(
        plan.steps[1].files,
        [
            "server/src/context.rs",
            "server/src/jobs.rs",
            "server/src/main.rs"
        ]
    );
    assert_eq!(plan.steps[2].notes, ["one per case", "and a benchmark"]);
}

#[test]
fn answer_filled_in() {
    let text = edited(
        "   Answer:\n",
        "   Answer: yes, on disk\n   under the cache dir\n",
    );
    let plan = Plan::parse(&text).expect("a plan");
    assert_eq!(
        plan.questions[0].answer,
        "yes, on disk\nunder the cache dir"
    );
    let text = edited("   Answer:\n", "   > answer: quoted\n");
    assert_eq!(
        Plan::parse(&text).expect("a plan").questions[0].answer,
        "quoted"
    );
    let text = edited("   Answer:\n", "No, keep it in memory.\n");
    assert_eq!(
        Plan::parse(&text).expect("a plan").questions[0].answer,
        "No, keep it in memory."
    );
}

#[test]
fn ticked_and_unticked_boxes() {
    let text = edited("- [ ] 3.", "- [X] 3.");
    assert_eq!(
        Plan::parse(&text).expect("a plan").steps[2].state,
        StepState::Done
    );
    let text = edited("- [x] 1.", "- [] 1.");
    assert_eq!(
        Plan::parse(&text).expect("a plan").steps[0].state,
        StepState::Todo
    );
    let text = edited("- [ ] 3.", "- [-] 3.");
    assert_eq!(
        Plan::parse(&text).expect("a plan").steps[2].state,
        StepState::InProgress
    );
}

#[test]
fn heading_case_and_synonyms() {
    let text = edited("## Steps", "## CHECKLIST:")
        .replacen("## Goal", "## goal", 1)
        .replacen("## Questions", "## Open Questions", 1);
    assert_eq!(Plan::parse(&text), Ok(full_plan()));
    for synonym in ["## Tasks", "## plan", "## Todo"] {
        assert_eq!(Plan::parse(&edited("## Steps", synonym)), Ok(full_plan()));
    }
}

#[test]
fn crlf_and_trailing_whitespace() {
    let text = full_plan().render();
    assert_eq!(Plan::parse(&text.replace('\n', "\r\n")), Ok(full_plan()));
    let spaced: String = text.lines().map(|line| format!("{line}  \t\n")).collect();
    assert_eq!(Plan::parse(&spaced), Ok(full_plan()));
    assert_eq!(Plan::parse(&text.replace('\n', "\r")), Ok(full_plan()));
}

#[test]
fn extra_sections_are_kept_in_order_after_steps() {
    let text = edited(
        "## Goal",
        "## Context\n\nWhy we do this.\n\n```\n## not a heading\n```\n\n## Goal",
    );
    let plan = Plan::parse(&text).expect("a plan");
    assert_eq!(plan.extra[0].heading, "Context");
    assert_eq!(
        plan.extra[0].body,
        "Why we do this.\n\n```\n## not a heading\n```"
    );
    assert_eq!(plan.extra[1].heading, "Risks");
    let rendered = plan.render();
    assert!(rendered.find("## Context").expect("kept") > rendered.find("## Steps").expect("steps"));
    assert_eq!(Plan::parse(&rendered), Ok(plan));
}

#[test]
fn model_output_in_a_fence_after_a_sentence() {
    let text = format!(
        "Here is the plan you asked for:\n\n```markdown\n{}```\n\nLet me know if you want changes.\n",
        full_plan().render()
    );
    assert_eq!(Plan::parse(&text), Ok(full_plan()));
    // Without a fence, the chatter above the title is dropped too.
    let text = format!("Sure!\n\n{}", full_plan().render());
    assert_eq!(Plan::parse(&text), Ok(full_plan()));
}

#[test]
fn model_style_plan_without_checkboxes() {
    let text = "# Plan: Rename the config key\n\n## Goal\nRename `foo` to `bar`.\n\n## Steps\n1. Rename the key in `crates/model/src/config.rs` (files: `crates/model/src/config.rs`)\n2. Update the docs — files: README.md, docs/config.md\n   mention the old name\n";
    let plan = Plan::parse(text).expect("a plan");
    assert_eq!(plan.title, "Rename the config key");
    assert_eq!(plan.goal, "Rename `foo` to `bar`.");
    assert_eq!(
        plan.steps,
        [
            step(
                "Rename the key in `crates/model/src/config.rs`",
                &["crates/model/src/config.rs"],
                &[],
                StepState::Todo
            ),
            step(
                "Update the docs",
                &["README.md", "docs/config.md"],
                &["mention the old name"],
                StepState::Todo
            ),
        ]
    );
}

#[test]
fn model_style_plan_with_step_headings_and_file_lines() {
    let text = "\u{FEFF}# Plan: Cache\n\n## Questions\n\nNone.\n\n## Steps\n\n### Step 1: Add the cache\n- Files: `crates/index/src/map.rs`\nKeep it per generation.\n\n### Step 2: Use it\nFiles: server/src/context.rs\n";
    let plan = Plan::parse(text).expect("a plan");
    assert_eq!(plan.title, "Cache");
    assert!(plan.questions.is_empty());
    assert_eq!(
        plan.steps,
        [
            step(
                "Step 1: Add the cache",
                &["crates/index/src/map.rs"],
                &[],
                StepState::Todo
            ),
            step("Keep it per generation.", &[], &[], StepState::Todo),
            step(
                "Step 2: Use it",
                &["server/src/context.rs"],
                &[],
                StepState::Todo
            ),
        ]
    );
    assert_eq!(Plan::step_at_line(text, 9), Some(0));
}

#[test]
fn files_keyword_inside_text_is_text() {
    let plan = Plan::parse("## Steps\n- [ ] move the x-files: all of them\n").expect("a plan");
    assert_eq!(plan.steps[0].text, "move the x-files: all of them");
    assert!(plan.steps[0].files.is_empty());
}

#[test]
fn steps_without_title_and_title_without_steps() {
    let plan = Plan::parse("Some words.\n\n## Steps\n- [ ] one\n").expect("a plan");
    assert_eq!(plan.title, "");
    assert_eq!(plan.preamble, "Some words.");
    assert_eq!(
        Plan::parse("# Plan: x\n\n## Goal\n\nthings\n"),
        Err(ParseError::NoSteps)
    );
}

#[test]
fn step_lines_are_the_step_lines_in_order() {
    let text = full_plan().render();
    let line_of = |needle: &str| {
        text.lines()
            .position(|line| line.contains(needle))
            .expect("line present")
    };
    assert_eq!(
        crate::step_lines(&text),
        vec![
            line_of("1. Add a cache"),
            line_of("2. Use it"),
            line_of("3. Add a test")
        ]
    );
    assert!(crate::step_lines(&"x".repeat(crate::MAX_PLAN_BYTES + 1)).is_empty());
}

#[test]
fn step_at_line_covers_step_and_notes() {
    let text = full_plan().render();
    let line_of = |needle: &str| {
        text.lines()
            .position(|line| line.contains(needle))
            .expect("line present")
    };
    assert_eq!(
        Plan::step_at_line(&text, line_of("1. Add a cache")),
        Some(0)
    );
    assert_eq!(Plan::step_at_line(&text, line_of("keep it small")), Some(0));
    assert_eq!(Plan::step_at_line(&text, line_of("2. Use it")), Some(1));
    assert_eq!(
        Plan::step_at_line(&text, line_of("and a benchmark")),
        Some(2)
    );
    assert_eq!(Plan::step_at_line(&text, line_of("## Steps")), None);
    assert_eq!(
        Plan::step_at_line(&text, line_of("Keep requests fast")),
        None
    );
    assert_eq!(Plan::step_at_line(&text, 10_000), None);
    // With CRLF and a fence around the document, lines still count from the top of the text.
    let fenced = format!("```markdown\r\n{}```\r\n", text.replace('\n', "\r\n"));
    assert_eq!(
        Plan::step_at_line(&fenced, line_of("2. Use it") + 1),
        Some(1)
    );
}

#[test]
fn bad_input_gives_clear_errors() {
    let empty = Plan::parse("").expect_err("empty is not a plan");
    assert!(matches!(empty, ParseError::NotAPlan(_)));
    assert!(empty.to_string().contains("empty"), "{empty}");

    assert_eq!(
        Plan::parse("# Plan: x\0\0\n## Steps\n- [ ] a"),
        Err(ParseError::Binary)
    );
    let junk: String = (0..200u32)
        .map(|i| char::from_u32(i % 32).unwrap_or('a'))
        .collect();
    assert_eq!(
        Plan::parse(&junk.replace('\0', "\u{1}")),
        Err(ParseError::Binary)
    );
    assert_eq!(Plan::parse(&"\u{FFFD}".repeat(50)), Err(ParseError::Binary));

    let no_steps = Plan::parse("# Plan: tidy up\n\n## Goal\n\nTidy.\n").expect_err("no steps");
    assert_eq!(
        no_steps.to_string(),
        "the plan has no steps: add lines like `- [ ] do X` under ## Steps"
    );
    let prose = Plan::parse("just some prose\nwith lines\n").expect_err("not a plan");
    assert_eq!(
        prose.to_string(),
        "this does not look like a baton plan: it has no `# Plan: <title>` line and no `## Steps` section"
    );
}

#[test]
fn five_megabytes_is_refused_fast() {
    let big = format!(
        "# Plan: big\n\n## Steps\n{}",
        "- [ ] step\n".repeat(500_000)
    );
    let started = std::time::Instant::now();
    let error = Plan::parse(&big).expect_err("too large");
    assert!(matches!(error, ParseError::TooLarge { bytes, .. } if bytes == big.len()));
    assert!(error.to_string().contains("too large"));
    // Refusing is a length check, never a parse; generous for a loaded machine.
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    // The streaming reader truncates instead, on a character boundary.
    let partial = Plan::parse_partial(&format!("{big}é"));
    assert!(!partial.steps.is_empty());
    assert!(partial.steps.len() < 500_000);
    assert_eq!(Plan::step_at_line(&big, 3), None);
}

#[test]
fn parse_partial_reads_a_plan_still_streaming() {
    let plan = Plan::parse_partial("```markdown\n# Plan: half\n\n## Goal\n\nDo it");
    assert_eq!(plan.title, "half");
    assert_eq!(plan.goal, "Do it");
    assert!(plan.steps.is_empty());
    assert_eq!(Plan::parse_partial("").steps.len(), 0);
}

pub(crate) mod properties;
