//! Tests for the requests, the brief, the workspace check and progress ticking.

use crate::{
    Plan, PlanContext, Question, Step, StepState, brief, executed_steps, outside_steps,
    path_escapes, plan_request, refine_request, tick, user_changes,
};
use expect_test::expect;

fn sample() -> Plan {
    Plan {
        title: "Rename the key".to_owned(),
        goal: "Rename `foo` to `bar`.".to_owned(),
        questions: vec![
            Question {
                text: "Keep an alias?".to_owned(),
                answer: "Yes, for one release.".to_owned(),
            },
            Question {
                text: "Unanswered?".to_owned(),
                answer: String::new(),
            },
        ],
        steps: vec![
            Step {
                text: "Rename the key".to_owned(),
                files: vec!["crates/model/src/config.rs".to_owned()],
                notes: vec![],
                state: StepState::Done,
            },
            Step {
                text: "Add the alias".to_owned(),
                files: vec!["crates/model/src/config.rs".to_owned()],
                notes: vec!["warn when the old key is used".to_owned()],
                state: StepState::Todo,
            },
            Step {
                text: "Update the docs".to_owned(),
                files: vec!["README.md".to_owned(), "../other/docs.md".to_owned()],
                notes: vec![],
                state: StepState::InProgress,
            },
        ],
        ..Plan::default()
    }
}

#[test]
fn brief_for_the_whole_plan() {
    expect![[r#"
        Carry out this plan in the workspace: Rename the key

        ## Goal

        Rename `foo` to `bar`.

        ## Decisions (the user's answers)

        Q: Keep an alias?
        A: Yes, for one release.

        ## Your steps, in order

        1. Add the alias (plan step 2)
           Files: `crates/model/src/config.rs`
           The user's notes:
           - warn when the old key is used

        2. Update the docs (plan step 3)
           Files: `README.md`, `../other/docs.md`

        Do the steps in order. Report your progress with your plan/todo tool: one entry per step above, in the same order and with the same text, marking each in progress when you start it and completed when it is done. Change only what the steps need.
    "#]]
    .assert_eq(&brief(&sample(), None));
    assert_eq!(executed_steps(&sample(), None), [1, 2]);
}

#[test]
fn brief_for_one_step() {
    let text = brief(&sample(), Some(2));
    assert!(text.contains("1. Update the docs (plan step 3)"), "{text}");
    assert!(!text.contains("1. Add the alias"), "{text}");
    assert!(text.contains("not part of this task"));
    assert!(text.contains("- Step 1: Rename the key (done)"));
    assert!(text.contains("- Step 2: Add the alias\n"));
    assert_eq!(executed_steps(&sample(), Some(2)), [2]);
    assert_eq!(executed_steps(&sample(), Some(0)), Vec::<usize>::new());
    // Past the end: the whole plan.
    assert_eq!(brief(&sample(), Some(9)), brief(&sample(), None));
}

#[test]
fn path_escapes_lexically() {
    for escaping in [
        "/etc/passwd",
        "\\windows",
        "~/x",
        "~",
        "C:\\x",
        "c:x",
        "\\\\server\\share",
        "..",
        "../x",
        "a/../../x",
        "a\\..\\..\\x",
        "file:///etc",
        " /x",
    ] {
        assert!(path_escapes(escaping), "{escaping}");
    }
    for inside in [
        "src/a.rs",
        "a/../b",
        "./x",
        "a/b/../../c",
        "",
        "dir/",
        "..x/y",
        "x..y",
    ] {
        assert!(!path_escapes(inside), "{inside}");
    }
}

#[test]
fn outside_steps_names_step_and_path() {
    let mut plan = sample();
    plan.steps[0].files.push("/abs".to_owned());
    assert_eq!(
        outside_steps(&plan, |path| !path_escapes(path)),
        [(0, "/abs".to_owned()), (2, "../other/docs.md".to_owned())]
    );
    assert_eq!(
        outside_steps(&plan, |path| path != "README.md"),
        [(2, "README.md".to_owned())]
    );
}

#[test]
fn tick_by_position_and_by_text() {
    let mut plan = sample();
    let executing = executed_steps(&plan, None);
    tick(
        &mut plan,
        &[
            ("whatever the agent wrote".to_owned(), StepState::Done),
            ("x".to_owned(), StepState::InProgress),
        ],
        &executing,
    );
    assert_eq!(plan.steps[1].state, StepState::Done);
    assert_eq!(plan.steps[2].state, StepState::InProgress);

    let mut plan = sample();
    tick(
        &mut plan,
        &[
            ("Read the config code".to_owned(), StepState::Done),
            ("Step 3: update the docs".to_owned(), StepState::Done),
            ("unrelated".to_owned(), StepState::Done),
        ],
        &[1, 2],
    );
    assert_eq!(plan.steps[1].state, StepState::Todo);
    assert_eq!(plan.steps[2].state, StepState::Done);

    // Indices outside the plan are ignored, in either mode.
    let mut plan = sample();
    tick(
        &mut plan,
        &[
            ("a".to_owned(), StepState::Done),
            ("b".to_owned(), StepState::Done),
        ],
        &[1, 99],
    );
    assert_eq!(plan.steps[1].state, StepState::Done);
    tick(
        &mut plan,
        &[("Update the docs".to_owned(), StepState::Done)],
        &[2, 99],
    );
    assert_eq!(plan.steps[2].state, StepState::Done);

    // A done step stays done, whatever the agent says.
    let mut plan = sample();
    tick(
        &mut plan,
        &[("Rename the key".to_owned(), StepState::Todo)],
        &[0],
    );
    assert_eq!(plan.steps[0].state, StepState::Done);
}

#[test]
fn plan_request_shows_format_and_context() {
    let context = PlanContext {
        repo_map: Some("src/lib.rs: fn main".to_owned()),
        files: vec![("src/lib.rs".to_owned(), "let s = \"```\";".to_owned())],
        diagnostics: vec!["src/lib.rs:1: unused".to_owned()],
        focus: Some("src/lib.rs line 1".to_owned()),
    };
    let (system, user) = plan_request("  cache the map ", &context);
    assert!(system.contains("Answer with ONLY the plan document"));
    assert!(system.contains("- [ ] 1. <one concrete step> — files: `path/one.rs`"));
    assert!(system.contains("Do not write code"));
    expect![[r#"
        ## Repository map

        src/lib.rs: fn main

        ## File `src/lib.rs`

        ````
        let s = "```";
        ````

        ## Diagnostics

        - src/lib.rs:1: unused

        ## The user is looking at

        src/lib.rs line 1

        ## Task

        cache the map
    "#]]
    .assert_eq(&user);
    // The skeleton the model is shown is itself a plan the parser reads.
    let skeleton = system
        .split("format:\n\n")
        .nth(1)
        .and_then(|rest| rest.split("\nRules").next())
        .expect("skeleton in the prompt");
    let parsed = Plan::parse(skeleton).expect("the skeleton parses");
    assert_eq!(parsed.steps.len(), 2);
    assert_eq!(parsed.steps[0].files, ["path/one.rs", "path/two.rs"]);
}

#[test]
fn refine_request_sends_the_users_document_and_changes() {
    let before = sample();
    let mut user = sample();
    user.steps.remove(2);
    user.questions[1].answer = "yes".to_owned();
    let changes = user_changes(&before, &user);
    let (system, prompt) = refine_request(Some(&before), &user, &changes, &PlanContext::default());
    assert!(system.contains("word for word"));
    assert!(system.contains("full revised plan document"));
    assert!(prompt.contains("- deleted step: \"Update the docs\""));
    assert!(prompt.contains("- answered question 2 (\"Unanswered?\"): \"yes\""));
    let users_part = prompt
        .split("## The plan as the user left it\n\n")
        .nth(1)
        .expect("the user's plan");
    assert!(users_part.starts_with(&user.render()));
    assert!(prompt.contains("## The plan as you last wrote it"));
    let (_, without_before) = refine_request(None, &user, &[], &PlanContext::default());
    assert!(!without_before.contains("as you last wrote it"));
    assert!(without_before.contains("no changes were detected"));
}
