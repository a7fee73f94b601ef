//! Tests for carrying the user's work onto a revision and listing what the user changed.

use crate::{Plan, Question, Step, StepState, carry_over, same, user_changes};

fn plan(steps: &[&str]) -> Plan {
    Plan {
        title: "t".to_owned(),
        goal: "g".to_owned(),
        steps: steps
            .iter()
            .map(|text| Step {
                text: (*text).to_owned(),
                ..Step::default()
            })
            .collect(),
        ..Plan::default()
    }
}

fn question(text: &str, answer: &str) -> Question {
    Question {
        text: text.to_owned(),
        answer: answer.to_owned(),
    }
}

#[test]
fn carry_over_keeps_notes_answers_and_ticks() {
    let mut user = plan(&[
        "Write the parser",
        "Add tests for the parser",
        "Update the README",
    ]);
    user.steps[0].notes = vec!["use a state machine".to_owned()];
    user.steps[0].state = StepState::Done;
    user.steps[1].notes = vec!["cover CRLF".to_owned(), "and tabs".to_owned()];
    user.steps[2].notes = vec!["short".to_owned()];
    user.questions = vec![
        question("Which crate owns it?", "plan"),
        question("Async?", "no"),
    ];
    user.extra = vec![crate::Section {
        heading: "Risks".to_owned(),
        body: "none".to_owned(),
    }];

    let mut revised = plan(&[
        "write the  PARSER",
        "Add a test for the parser",
        "Benchmark it",
    ]);
    revised.steps[1].notes = vec!["and tabs".to_owned(), "fuzz it".to_owned()];
    revised.questions = vec![
        question("Which crate owns it ?", ""),
        question("New question?", ""),
    ];

    let merged = carry_over(&user, revised);
    assert_eq!(merged.steps[0].notes, ["use a state machine"]);
    assert_eq!(merged.steps[0].state, StepState::Done);
    assert_eq!(merged.steps[1].notes, ["and tabs", "fuzz it", "cover CRLF"]);
    assert_eq!(merged.steps[1].state, StepState::Todo);
    // The README step is gone from the revision, and its note with it.
    assert!(merged.steps[2].notes.is_empty());
    assert_eq!(merged.questions[0].answer, "plan");
    assert_eq!(merged.questions[1].answer, "");
    assert_eq!(merged.extra.len(), 1);
}

#[test]
fn carry_over_uses_each_user_step_once() {
    let mut user = plan(&["Add tests"]);
    user.steps[0].notes = vec!["n".to_owned()];
    let merged = carry_over(&user, plan(&["Add tests", "Add tests"]));
    assert_eq!(merged.steps[0].notes, ["n"]);
    assert!(merged.steps[1].notes.is_empty());
}

#[test]
fn unchanged_plan_has_no_changes() {
    let before = plan(&["a step", "another step"]);
    let mut after = before.clone();
    after.steps[0].text = "A  step".to_owned();
    assert!(user_changes(&before, &before).is_empty());
    assert!(same(&before, &before));
    // Case-only edits are edits the model should see; spacing-only edits are not.
    assert!(!same(&before, &after));
    after.steps[0].text = "a  step ".to_owned();
    assert!(same(&before, &after));
}

#[test]
fn user_changes_lists_every_kind_of_edit() {
    let mut before = plan(&[
        "Write the parser",
        "Add tests for the parser",
        "Update the README",
        "Ship it",
    ]);
    before.questions = vec![question("Which crate?", ""), question("Async?", "")];
    let mut after = before.clone();
    after.goal = "a new goal".to_owned();
    after.questions[1].answer = "no, keep it sync".to_owned();
    after.steps = vec![
        before.steps[3].clone(),
        Step {
            text: "Write the new parser".to_owned(),
            notes: vec!["like the old one".to_owned()],
            ..Step::default()
        },
        Step {
            state: StepState::Done,
            ..before.steps[1].clone()
        },
        Step {
            text: "also benchmark".to_owned(),
            ..Step::default()
        },
    ];
    let changes = user_changes(&before, &after);
    assert_eq!(
        changes,
        [
            "changed the goal to: \"a new goal\"",
            "answered question 2 (\"Async?\"): \"no, keep it sync\"",
            "deleted step: \"Update the README\"",
            "moved step \"Ship it\" from 4 to 1",
            "edited step 2: \"Write the parser\" → \"Write the new parser\"",
            "added a note to step 2 (\"Write the new parser\"): \"like the old one\"",
            "ticked step 3 (\"Add tests for the parser\") as done",
            "added step 4: \"also benchmark\"",
        ]
    );
}

#[test]
fn user_changes_on_sections_and_files() {
    let before = plan(&["one"]);
    let mut after = before.clone();
    after.steps[0].files = vec!["src/a.rs".to_owned()];
    after.extra = vec![crate::Section {
        heading: "Notes".to_owned(),
        body: "keep".to_owned(),
    }];
    assert_eq!(
        user_changes(&before, &after),
        [
            "changed the files of step 1 (\"one\") to: src/a.rs",
            "added a section ## Notes: \"keep\"",
        ]
    );
    assert_eq!(
        user_changes(&after, &before),
        [
            "changed the files of step 1 (\"one\") to: none",
            "removed the section ## Notes",
        ]
    );
}

#[test]
fn changes_from_parsed_documents() {
    let before = Plan::parse(
        "# Plan: p\n\n## Steps\n\n- [ ] 1. first\n- [ ] 2. second\n- [ ] 3. third\n- [ ] 4. fourth\n",
    )
    .expect("a plan");
    let after = Plan::parse(
        "# Plan: p\n\n## steps\n\n- [ ] 3. third\n- [x] 1. first\n  my note\n- [ ] 4. fourth\n",
    )
    .expect("a plan");
    assert_eq!(
        user_changes(&before, &after),
        [
            "deleted step: \"second\"",
            "moved step \"third\" from 3 to 1",
            "added a note to step 2 (\"first\"): \"my note\"",
            "ticked step 2 (\"first\") as done",
        ]
    );
}

/// A 1 MiB plan of one-word steps: every helper stays (near) linear. Not timed; a quadratic
/// regression shows up as this test taking minutes.
#[test]
fn largest_plans_compare_without_quadratic_work() {
    let mut text = String::from("# Plan: big\n\n## Steps\n");
    let mut number = 0;
    while text.len() < crate::MAX_PLAN_BYTES - 64 {
        text.push_str(&format!("- [ ] s{number} — files: `f`, `f`\n"));
        number += 1;
    }
    let before = Plan::parse(&text).expect("a plan");
    assert_eq!(before.steps.len(), number);
    assert_eq!(before.steps[0].files, ["f"]);
    let mut after = before.clone();
    after.steps.reverse();
    after.steps[0].notes.push("n".to_owned());
    let changes = user_changes(&before, &after);
    assert!(
        changes
            .iter()
            .any(|change| change.starts_with("added a note"))
    );
    let merged = carry_over(&after, before.clone());
    assert_eq!(merged.steps[number - 1].notes, ["n"]);
    let mut plan = before.clone();
    let executing: Vec<usize> = (0..number).collect();
    crate::tick(&mut plan, &[("s1".to_owned(), StepState::Done)], &executing);
    assert_eq!(plan.steps[1].state, StepState::Done);
    assert!(crate::brief(&plan, None).lines().count() > number);
}

mod properties {
    //! Properties over generated plans: a plan compared with itself has no changes, and
    //! carrying a plan's work onto itself changes nothing.

    use crate::parse::tests::properties::plan;
    use crate::{Plan, StepState, carry_over, same, tick, user_changes};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_plan_has_no_changes_against_itself(plan in plan()) {
            prop_assert_eq!(user_changes(&plan, &plan), Vec::<String>::new());
            let reread = Plan::parse(&plan.render()).expect("a rendered plan parses");
            prop_assert!(same(&plan, &reread));
        }

        #[test]
        fn carrying_a_plan_onto_itself_is_identity(plan in plan()) {
            prop_assert_eq!(carry_over(&plan, plan.clone()), plan);
        }

        #[test]
        fn changes_against_an_edited_plan_are_reported(plan in plan(), drop in any::<prop::sample::Index>()) {
            let mut edited = plan.clone();
            let removed = edited.steps.remove(drop.index(edited.steps.len()));
            let changes = user_changes(&plan, &edited);
            let expected = format!("deleted step: \"{}\"", removed.text.split_whitespace().collect::<Vec<_>>().join(" "));
            // A step with an identical twin may be reported as the twin; either way a deletion is.
            prop_assert!(changes.iter().any(|change| change.starts_with("deleted step")), "{:?} lacks {}", changes, expected);
        }

        #[test]
        fn tick_accepts_any_progress(
            plan in plan(),
            progress in prop::collection::vec((".{0,20}", 0..3u8), 0..6),
            executing in prop::collection::vec(0..10usize, 0..6),
        ) {
            let progress: Vec<(String, StepState)> = progress
                .into_iter()
                .map(|(text, state)| (text, [StepState::Todo, StepState::InProgress, StepState::Done][usize::from(state)]))
                .collect();
            let mut ticked = plan.clone();
            tick(&mut ticked, &progress, &executing);
            for (before, after) in plan.steps.iter().zip(&ticked.steps) {
                prop_assert!(before.state != StepState::Done || after.state == StepState::Done);
                prop_assert_eq!(&before.text, &after.text);
            }
        }
    }
}
