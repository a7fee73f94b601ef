//! Plan mode end to end: the deep tier (the fake model) writes a plan into a plan document as
//! it streams; the test edits the document like a user (answers a question, deletes a step,
//! adds a note), refines, and checks what the model was sent and that the notes survived; a
//! step executes as an agent task (the scripted ACP agent) and the checklist ticks. Also the
//! whole flow in the Helix profile with code actions only, and bad plan documents.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::fake_model::Reply;
use testkit::lsp_client::{ClientProfile, uri_to_path};

use crate::support::{Harness, Options, find_action};
use crate::tasks::scratch_home;

const LIB: &str = "pub fn parse(input: &str) -> Vec<String> {\n    input.split(',').map(String::from).collect()\n}\n";
const LIB_UNSAVED: &str = "// UNSAVED-MARKER: the user's unsaved line\npub fn parse(input: &str) -> Vec<String> {\n    input.split(',').map(String::from).collect()\n}\n";
const SECRET: &str = "API_TOKEN=sk-plan-secret-0042\n";

/// What the model writes first: a sentence before the plan, as models do.
const PLAN_V1: &str = "Here is the plan:\n\n# Plan: Split parsing out of lib.rs\n\n## Goal\n\nMove the parser into its own module so lib.rs only wires things together.\n\n## Questions\n\n1. Which separator should the new parser accept?\n   Answer:\n\n## Steps\n\n- [ ] Create `src/parser.rs` with the parse function\n- [ ] Add a benchmark for parsing in `benches/parse.rs`\n- [ ] Make `src/lib.rs` call the new module\n";

/// The revision: the deleted step stays deleted, the answered question is gone, a step is new.
const PLAN_V2: &str = "# Plan: Split parsing out of lib.rs\n\n## Goal\n\nMove the parser into its own module so lib.rs only wires things together.\n\n## Steps\n\n- [ ] Create `src/parser.rs` with the parse function\n- [ ] Accept semicolons as separators in `src/parser.rs`\n- [ ] Make `src/lib.rs` call the new module\n";

const WAIT: Duration = Duration::from_secs(120);

fn workspace_files() -> Vec<(&'static str, String)> {
    vec![
        ("src/lib.rs", LIB.into()),
        (".env", SECRET.into()),
        ("README.md", "# demo\n".into()),
    ]
}

/// baton with the scripted ACP agent as the default agent, running `script`.
async fn start(profile: ClientProfile, script: Value, plan: Value) -> (Harness, PathBuf) {
    let home: Arc<tempfile::TempDir> = scratch_home();
    let script_path = home.path().join("script.json");
    let log = home.path().join("agent.log");
    let mut script = script;
    script["log"] = json!(log.to_string_lossy());
    std::fs::write(&script_path, script.to_string()).unwrap();
    let binary = testkit::scripted_agent::binary_path();
    let state = home.path().join("state");
    let harness = Harness::with(Options {
        profile,
        settings: json!({
            "harness": {
                "agent": "scripted",
                "grace_ms": 300,
                "agents": { "scripted": {
                    "kind": "acp",
                    "command": [binary.to_string_lossy()],
                    "env": { testkit::scripted_agent::SCRIPT_ENV: script_path.to_string_lossy() },
                }},
            },
            "plan": plan,
        }),
        workspace_files: workspace_files(),
        home: Some(home),
        env: vec![(
            "BATON_STATE_DIR".into(),
            state.to_string_lossy().into_owned(),
        )],
        ..Options::default()
    })
    .await;
    (harness, log)
}

/// Waits until the client has shown `uri` (`window/showDocument`).
async fn shown(harness: &Harness, uri: &str) {
    let uri = uri.to_string();
    harness
        .client
        .wait_for("the plan document to be shown", WAIT, |state| {
            state
                .show_documents
                .iter()
                .any(|params| params["uri"] == uri.as_str())
                .then_some(())
        })
        .await
        .unwrap();
}

/// Opens the plan document the way the editor does after `showDocument`: from disk.
async fn open_plan(harness: &Harness, uri: &str) -> String {
    let text = std::fs::read_to_string(uri_to_path(uri).unwrap()).unwrap();
    harness.client.open(uri, "markdown", &text).await;
    text
}

/// The 0-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> u32 {
    text.lines()
        .position(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{text}")) as u32
}

/// Polls until the client's text of `uri` satisfies `check`.
async fn client_text_until(
    harness: &Harness,
    uri: &str,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = harness.client.text(uri);
        if check(&text) {
            return text;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; the plan is:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The applyEdits the client received for `uri`: (first line touched, new text) per edit.
fn edits_to(harness: &Harness, uri: &str) -> Vec<(u64, String)> {
    let mut found = Vec::new();
    for record in harness.client.state().apply_edits {
        let edit = &record.params["edit"];
        for change in edit["documentChanges"].as_array().into_iter().flatten() {
            if change["textDocument"]["uri"] == uri {
                for text_edit in change["edits"].as_array().into_iter().flatten() {
                    found.push((
                        text_edit["range"]["start"]["line"].as_u64().unwrap_or(0),
                        text_edit["newText"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
        if let Some(changes) = edit["changes"][uri].as_array() {
            for text_edit in changes {
                found.push((
                    text_edit["range"]["start"]["line"].as_u64().unwrap_or(0),
                    text_edit["newText"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    found
}

/// Runs a code action's command and waits for its job; returns the job's end message.
async fn run_to_end(harness: &Harness, action: &Value) -> String {
    let token = harness.run_action(action).await;
    Harness::end_message(&harness.job_end(&token).await)
}

/// A deep-tier request's whole text (instructions and input).
fn request_text(body: &Value) -> String {
    body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_streams_is_refined_with_the_users_edits_and_a_step_executes() {
    let script = json!({ "turns": [[
        { "type": "plan", "entries": [{ "content": "Create src/parser.rs with the parse function", "status": "in_progress" }] },
        { "type": "write", "path": "src/parser.rs", "content": "pub fn parse() {}\n" },
        { "type": "plan", "entries": [{ "content": "Create src/parser.rs with the parse function", "status": "completed" }] },
        { "type": "message", "text": "Created the parser module." },
    ]]});
    let (harness, agent_log) = start(ClientProfile::Neovim, script, json!({})).await;
    harness.indexed().await;
    let lib = harness.open("src/lib.rs", "rust", LIB_UNSAVED).await;

    // The plan streams: slowly enough that it lands in several pieces.
    harness.fake.push(Reply::text(PLAN_V1).rate(150.0));
    let answer = harness
        .execute(
            "baton.plan",
            json!([{ "instruction": "Split parsing out of src/lib.rs", "textDocument": { "uri": lib } }]),
        )
        .await
        .expect("baton.plan answers");
    let plan_uri = answer["document"].as_str().expect("a document").to_string();
    let token = answer["job"].as_str().expect("a job").to_string();
    shown(&harness, &plan_uri).await;
    let opened = open_plan(&harness, &plan_uri).await;
    assert!(
        opened.starts_with("# Plan: Split parsing out of src/lib.rs"),
        "{opened}"
    );
    let end = Harness::end_message(&harness.job_end(&token).await);
    assert!(
        end.contains("3 steps") && end.contains("1 question"),
        "{end}"
    );
    let written = harness.agreed_text(&plan_uri).await;
    assert!(
        edits_to(&harness, &plan_uri).len() >= 2,
        "the plan streamed in pieces: {:?}",
        edits_to(&harness, &plan_uri)
    );
    assert!(!written.contains("Here is the plan"), "{written}");
    assert!(!written.contains("baton is writing"), "{written}");
    let parsed = plan::Plan::parse(&written).expect("the document is a plan");
    assert_eq!(parsed.steps.len(), 3, "{written}");
    assert_eq!(parsed.questions.len(), 1, "{written}");
    assert!(
        parsed.steps[0].files.contains(&"src/parser.rs".to_string()),
        "{written}"
    );

    // What the deep tier was sent: the unsaved buffer and the repo map, never the secret.
    let requests = harness.fake.requests();
    let first = request_text(&requests[0].body);
    assert!(
        first.contains("deep-test"),
        "the deep tier wrote it: {first}"
    );
    assert!(first.contains("UNSAVED-MARKER"), "{first}");
    assert!(first.contains("Split parsing out of src/lib.rs"), "{first}");
    assert!(
        !first.contains("sk-plan-secret-0042"),
        "a never_send file reached the model"
    );

    // The user answers the question, deletes the benchmark step and adds a note.
    let line = line_of(&written, "Answer:");
    let answer_line = written.lines().nth(line as usize).unwrap();
    harness
        .client
        .change(
            &plan_uri,
            ((line, 0), (line, answer_line.len() as u32)),
            "   Answer: commas and semicolons",
        )
        .await;
    let text = harness.client.text(&plan_uri);
    let bench = line_of(&text, "benches/parse.rs");
    harness
        .client
        .change(&plan_uri, ((bench, 0), (bench + 1, 0)), "")
        .await;
    let text = harness.client.text(&plan_uri);
    let call = line_of(&text, "Make `src/lib.rs` call");
    harness
        .client
        .change(
            &plan_uri,
            ((call + 1, 0), (call + 1, 0)),
            "  > note: keep `parse` re-exported from lib.rs\n",
        )
        .await;
    let edited = harness.agreed_text(&plan_uri).await;

    // Refine: the model gets the document as the user left it and what changed.
    harness.fake.push(Reply::text(PLAN_V2));
    let actions = harness
        .code_actions(&plan_uri, ((0, 0), (0, 0)), json!([]))
        .await;
    let refine = find_action(&actions, "baton: refine plan");
    let edits_before = edits_to(&harness, &plan_uri).len();
    let refined = run_to_end(&harness, refine).await;
    assert!(refined.contains("plan refined"), "{refined}");
    let requests = harness.fake.requests();
    assert_eq!(requests.len(), 2);
    let second = request_text(&requests[1].body);
    assert!(second.contains("commas and semicolons"), "{second}");
    assert!(
        second.contains("keep `parse` re-exported from lib.rs"),
        "{second}"
    );
    assert!(
        second.contains("benchmark"),
        "the deleted step is named: {second}"
    );
    let after = harness.agreed_text(&plan_uri).await;
    let revised = plan::Plan::parse(&after).unwrap();
    let texts: Vec<&str> = revised.steps.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(revised.steps.len(), 3, "{after}");
    assert!(texts[1].contains("semicolons"), "{after}");
    assert!(
        revised.steps[2]
            .notes
            .iter()
            .any(|note| note.contains("keep `parse` re-exported")),
        "the user's note survived: {after}"
    );
    assert!(!after.contains("benches/parse.rs"), "{after}");
    // In place, as a minimal edit: the title and goal were never rewritten.
    let refine_edits = &edits_to(&harness, &plan_uri)[edits_before..];
    assert!(!refine_edits.is_empty());
    let goal_line = line_of(&edited, "## Steps") as u64;
    assert!(
        refine_edits
            .iter()
            .all(|(line, _)| *line >= goal_line.saturating_sub(6)),
        "the refine rewrote the top of the plan: {refine_edits:?}"
    );

    // Refining again with no change: nothing is sent.
    let actions = harness
        .code_actions(&plan_uri, ((0, 0), (0, 0)), json!([]))
        .await;
    let again = run_to_end(&harness, find_action(&actions, "baton: refine plan")).await;
    assert!(again.contains("as baton wrote it"), "{again}");
    assert_eq!(
        harness.fake.requests().len(),
        2,
        "an unchanged plan is not regenerated"
    );

    // Execute the first step with the scripted agent: the checklist ticks.
    let step = line_of(&after, "Create `src/parser.rs`");
    let actions = harness
        .code_actions(&plan_uri, ((step, 2), (step, 2)), json!([]))
        .await;
    let execute = find_action(&actions, "baton (agent scripted): execute step 1");
    let command = &execute["command"];
    let started = harness
        .execute(
            command["command"].as_str().unwrap(),
            command["arguments"].clone(),
        )
        .await
        .expect("execute answers");
    let task_token = started["job"].as_str().unwrap().to_string();
    let task_end = Harness::end_message(&harness.job_end(&task_token).await);
    assert_eq!(task_end, "done");
    let ticked = client_text_until(&harness, &plan_uri, "step 1 to be ticked", |text| {
        text.lines()
            .any(|line| line.starts_with("- [x]") && line.contains("src/parser.rs` with"))
    })
    .await;
    assert!(
        ticked
            .lines()
            .filter(|line| line.starts_with("- [x]"))
            .count()
            == 1,
        "only the executed step is ticked: {ticked}"
    );
    // The brief: the plan's goal, the user's answer and note, that step only.
    let log = std::fs::read_to_string(&agent_log).unwrap();
    let prompt = log
        .lines()
        .find(|line| line.contains("session/prompt"))
        .expect("a prompt");
    assert!(
        prompt.contains("Move the parser into its own module"),
        "{prompt}"
    );
    assert!(prompt.contains("Create `src/parser.rs`"), "{prompt}");
    // The agent's file landed in the editor, not on disk.
    assert!(!harness.root.join("src/parser.rs").exists());
    harness.finish().await;
}

/// Helix: no plugin, only code actions — a `baton plan:` marker starts the plan; refine and
/// execute the whole plan from the document's actions; the steps tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_plans_with_code_actions_only() {
    let script = json!({ "turns": [[
        { "type": "write", "path": "src/parser.rs", "content": "pub fn parse() {}\n" },
        { "type": "message", "text": "Done." },
    ]]});
    let (harness, _log) = start(ClientProfile::Helix, script, json!({ "dir": "workspace" })).await;
    let marked = "// baton plan: split parsing out of lib.rs\npub fn parse() {}\n";
    let lib = harness.open("src/lib.rs", "rust", marked).await;
    harness.fake.push(Reply::text(PLAN_V2));
    let actions = harness
        .code_actions(&lib, ((0, 0), (0, 0)), json!([]))
        .await;
    let action = find_action(&actions, "baton (deep): plan: split parsing out of lib.rs");
    let command = &action["command"];
    let answer = harness
        .execute(
            command["command"].as_str().unwrap(),
            command["arguments"].clone(),
        )
        .await
        .expect("baton.plan answers");
    let plan_uri = answer["document"].as_str().unwrap().to_string();
    let path = uri_to_path(&plan_uri).unwrap();
    assert!(
        path.starts_with(harness.root.join(".baton/plans")),
        "plan.dir = workspace keeps the plan in the repository: {}",
        path.display()
    );
    harness.job_end(answer["job"].as_str().unwrap()).await;
    shown(&harness, &plan_uri).await;
    let text = open_plan(&harness, &plan_uri).await;
    assert_eq!(plan::Plan::parse(&text).unwrap().steps.len(), 3, "{text}");

    // The user adds a step as free text and refines.
    let last = text.lines().count() as u32;
    harness
        .client
        .change(
            &plan_uri,
            ((last, 0), (last, 0)),
            "- also mention the parser in README.md\n",
        )
        .await;
    harness.fake.push(Reply::text(format!(
        "{PLAN_V2}- [ ] Mention the parser in `README.md`\n"
    )));
    let actions = harness
        .code_actions(&plan_uri, ((0, 0), (0, 0)), json!([]))
        .await;
    let refined = run_to_end(&harness, find_action(&actions, "baton: refine plan")).await;
    assert!(refined.contains("4 steps"), "{refined}");
    let sent = request_text(&harness.fake.requests()[1].body);
    assert!(
        sent.contains("also mention the parser in README.md"),
        "{sent}"
    );

    // Execute the whole plan: no plan entries from this agent, so the completed turn ticks
    // every executed step.
    let actions = harness
        .code_actions(&plan_uri, ((0, 0), (0, 0)), json!([]))
        .await;
    let execute = find_action(&actions, "baton (agent scripted): execute plan");
    let command = &execute["command"];
    let started = harness
        .execute(
            command["command"].as_str().unwrap(),
            command["arguments"].clone(),
        )
        .await
        .expect("execute answers");
    assert_eq!(
        Harness::end_message(&harness.job_end(started["job"].as_str().unwrap()).await),
        "done"
    );
    let ticked = client_text_until(&harness, &plan_uri, "every step to be ticked", |text| {
        plan::Plan::parse(text).is_ok_and(|plan| {
            plan.steps
                .iter()
                .all(|step| step.state == plan::StepState::Done)
        })
    })
    .await;
    assert_eq!(plan::Plan::parse(&ticked).unwrap().steps.len(), 4);
    harness.finish().await;
}

/// Mangled plan documents (no checklist, binary junk, 5 MB of text) get a clear message and
/// no crash; a step naming files outside the workspace is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plans_get_clear_messages_and_outside_steps_are_refused() {
    let (harness, _log) = start(ClientProfile::Neovim, json!({}), json!({})).await;
    harness.fake.push(Reply::text(PLAN_V2));
    let answer = harness
        .execute("baton.plan", json!(["split parsing out of lib.rs"]))
        .await
        .expect("a bare instruction works");
    let plan_uri = answer["document"].as_str().unwrap().to_string();
    harness.job_end(answer["job"].as_str().unwrap()).await;
    let text = open_plan(&harness, &plan_uri).await;
    let whole = |text: &str| {
        let last = text.rsplit('\n').next().unwrap_or("");
        (
            (0, 0),
            (
                text.matches('\n').count() as u32,
                last.encode_utf16().count() as u32,
            ),
        )
    };

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "no checklist",
            "# Plan: x\n\n## Goal\n\nsomething\n".into(),
            "no steps",
        ),
        (
            "binary junk",
            "\u{0}\u{1}\u{2}garbage\u{0}".repeat(50),
            "binary",
        ),
        ("5 MB of text", "- [ ] step\n".repeat(500_000), "bytes"),
    ];
    let mut current = text.clone();
    for (what, mangled, needle) in cases {
        harness
            .client
            .change(&plan_uri, whole(&current), &mangled)
            .await;
        current = mangled;
        for command in ["baton.plan.refine", "baton.plan.execute"] {
            let error = harness
                .execute(command, json!([{ "document": plan_uri }]))
                .await
                .expect_err("a mangled plan is refused");
            assert!(
                error.message.to_lowercase().contains(needle),
                "{what}, {command}: {}",
                error.message
            );
        }
        let actions = harness
            .code_actions(&plan_uri, ((0, 0), (0, 0)), json!([]))
            .await;
        let _ = actions;
    }
    assert_eq!(
        harness.fake.requests().len(),
        1,
        "nothing mangled reached the model"
    );

    // Steps naming files outside the workspace are refused, the others run.
    let outside = "# Plan: outside\n\n## Steps\n\n- [ ] Read `/etc/passwd` into the config\n- [ ] Patch `../sibling/lib.rs` too\n";
    harness
        .client
        .change(&plan_uri, whole(&current), outside)
        .await;
    for step in [1, 2] {
        let error = harness
            .execute(
                "baton.plan.execute",
                json!([{ "document": plan_uri, "step": step }]),
            )
            .await
            .expect_err("an outside step is refused");
        assert!(
            error.message.contains("outside the workspace"),
            "{}",
            error.message
        );
    }
    let error = harness
        .execute("baton.plan.execute", json!([{ "document": plan_uri }]))
        .await
        .expect_err("nothing left to execute");
    assert!(
        error.message.contains("nothing left to execute"),
        "{}",
        error.message
    );
    // Refine and execute work on plan documents only: refining writes the revision back.
    let readme = harness.root.join("README.md");
    let fake_plan = "# Plan: not really\n\n## Steps\n\n- [ ] overwrite the README\n";
    std::fs::write(&readme, fake_plan).unwrap();
    let readme_uri = testkit::lsp_client::file_uri(&readme);
    let escaping = testkit::lsp_client::file_uri(
        &uri_to_path(&plan_uri)
            .unwrap()
            .parent()
            .unwrap()
            .join("../../escape.md"),
    );
    for document in [&readme_uri, &escaping] {
        for command in ["baton.plan.refine", "baton.plan.execute"] {
            let error = harness
                .execute(command, json!([{ "document": document }]))
                .await
                .expect_err("not a plan document");
            assert!(
                error.message.contains("is not a plan document")
                    || error.message.contains("cannot read"),
                "{command} {document}: {}",
                error.message
            );
        }
    }
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), fake_plan);
    assert_eq!(harness.fake.requests().len(), 1);
    // The server still serves.
    let status = harness
        .execute("baton.status", json!([]))
        .await
        .expect("status");
    assert!(status["jobs"].as_array().is_some());
    harness.finish().await;
}

/// `plan.inline_steps`: a step naming one open file with its lines runs as an inline edit on the
/// fast tier, and ticks when it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_step_runs_on_the_fast_tier_and_ticks() {
    let (harness, _log) = start(
        ClientProfile::Neovim,
        json!({}),
        json!({ "inline_steps": true }),
    )
    .await;
    let lib = harness.open("src/lib.rs", "rust", LIB).await;
    let plan = "# Plan: trim\n\n## Steps\n\n- [ ] Trim every item — files: `src/lib.rs:1-3`\n- [ ] Update the README — files: `README.md`\n";
    harness.fake.push(Reply::text(plan));
    let answer = harness
        .execute("baton.plan", json!(["trim the parsed items"]))
        .await
        .unwrap();
    let plan_uri = answer["document"].as_str().unwrap().to_string();
    harness.job_end(answer["job"].as_str().unwrap()).await;
    let text = open_plan(&harness, &plan_uri).await;

    let step = line_of(&text, "Trim every item");
    let actions = harness
        .code_actions(&plan_uri, ((step, 0), (step, 0)), json!([]))
        .await;
    let inline = find_action(&actions, "execute step 1 inline in src/lib.rs:1-3");
    assert!(
        inline["title"]
            .as_str()
            .unwrap()
            .starts_with("baton (fast)"),
        "{inline}"
    );
    // The README step names a file that is not open: no inline action there.
    let other = line_of(&text, "Update the README");
    let actions = harness
        .code_actions(&plan_uri, ((other, 0), (other, 0)), json!([]))
        .await;
    assert!(
        !actions
            .iter()
            .any(|a| a["title"].as_str().unwrap_or("").contains("inline")),
        "{actions:#?}"
    );

    let rewritten = "pub fn parse(input: &str) -> Vec<String> {\n    input.split(',').map(|item| item.trim().to_string()).collect()\n}\n";
    harness.fake.push(Reply::text(rewritten));
    assert_eq!(run_to_end(&harness, inline).await, "done");
    assert_eq!(harness.agreed_text(&lib).await, rewritten);
    let sent = request_text(&harness.fake.requests()[1].body);
    assert!(
        sent.contains("spark-test") && sent.contains("Trim every item"),
        "{sent}"
    );
    client_text_until(
        &harness,
        &plan_uri,
        "the inline step to be ticked",
        |text| {
            text.lines()
                .any(|line| line.starts_with("- [x]") && line.contains("Trim every item"))
                && text
                    .lines()
                    .any(|line| line.starts_with("- [ ]") && line.contains("README"))
        },
    )
    .await;
    harness.finish().await;
}

/// The real `codex app-server` in plan mode (read-only, `collaborationMode: plan`) against the
/// fake model: its `requestUserInput` question appears in the plan document with an answer slot;
/// the user's answer, sent by "refine plan", goes back to the model as the tool's output and the
/// plan item lands in the document; refining again continues the same thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_plan_mode_asks_in_the_document_and_refines_on_the_same_thread() {
    use testkit::fake_model::{Item, user_question};
    let Some(codex) = testkit::codex::require_codex() else {
        return;
    };
    let home = scratch_home();
    let state = home.path().join("state");
    let harness = Harness::with(Options {
        profile: ClientProfile::Helix,
        settings: json!({
            "harness": { "agent": "codex", "grace_ms": 1000,
                "agents": { "codex": { "kind": "codex-app-server", "command": ["true"] } } },
            "plan": { "source": "agent" },
        }),
        workspace_files: workspace_files(),
        home: Some(home),
        env: vec![(
            "BATON_STATE_DIR".into(),
            state.to_string_lossy().into_owned(),
        )],
        ..Options::default()
    })
    .await;
    let codex_home = crate::tasks::codex_home_for(&harness.fake.base_url());
    let command = vec![codex.to_string_lossy().into_owned(), "app-server".into()];
    crate::tasks::configure_agent(
        &harness,
        "codex",
        crate::tasks::agent_settings("codex-app-server", command, &codex_home),
    )
    .await;

    harness
        .fake
        .push(Reply::items(vec![Item::request_user_input(json!([
            user_question(
                "sep",
                "Separator",
                "Which separator should the parser accept?",
                &[
                    ("Commas (Recommended)", "As today."),
                    ("Semicolons", "New.")
                ],
            )
        ]))]));
    harness
        .fake
        .push(Reply::items(vec![Item::proposed_plan(PLAN_V2)]));
    let answer = harness
        .execute("baton.plan", json!(["split parsing out of src/lib.rs"]))
        .await
        .expect("baton.plan answers");
    let plan_uri = answer["document"].as_str().unwrap().to_string();
    let end = Harness::end_message(&harness.job_end(answer["job"].as_str().unwrap()).await);
    assert!(
        end.contains("asks 1 question"),
        "{end}\n{}",
        harness.log_lines_with("plan")
    );
    shown(&harness, &plan_uri).await;
    let text = open_plan(&harness, &plan_uri).await;
    let asked = plan::Plan::parse_partial(&text);
    assert_eq!(asked.questions.len(), 1, "{text}");
    assert!(
        asked.questions[0]
            .text
            .contains("Which separator should the parser accept?"),
        "{text}"
    );
    assert!(
        asked.questions[0].text.contains("Commas (Recommended)"),
        "{text}"
    );
    assert_eq!(
        asked.questions[0].answer, "",
        "an empty answer slot: {text}"
    );
    // codex ran in plan mode, read-only: its plan-mode instructions reached the model.
    let first = request_text(&harness.fake.requests()[0].body);
    assert!(first.contains("Plan Mode"), "{first}");
    assert!(first.contains("split parsing out of src/lib.rs"), "{first}");

    // The user answers in the document and refines: the answer is the tool call's output.
    let line = line_of(&text, "   Answer:");
    let slot = text.lines().nth(line as usize).unwrap();
    harness
        .client
        .change(
            &plan_uri,
            ((line, 0), (line, slot.len() as u32)),
            "   Answer: Semicolons",
        )
        .await;
    let actions = harness
        .code_actions(&plan_uri, ((0, 0), (0, 0)), json!([]))
        .await;
    let refine = find_action(&actions, "baton: refine plan (agent codex)");
    let refined = run_to_end(&harness, refine).await;
    assert!(refined.contains("plan refined: 3 steps"), "{refined}");
    let requests = harness.fake.requests();
    assert_eq!(requests.len(), 2);
    let output = requests[1].input_items("function_call_output");
    assert_eq!(output.len(), 1, "{}", requests[1].body);
    assert!(
        output[0]["output"].as_str().unwrap().contains("Semicolons"),
        "{}",
        output[0]
    );
    let planned = harness.agreed_text(&plan_uri).await;
    let plan = plan::Plan::parse(&planned).expect("the plan item landed");
    assert_eq!(plan.steps.len(), 3, "{planned}");
    assert!(planned.contains("Accept semicolons"), "{planned}");
    assert!(
        plan.questions.is_empty(),
        "the answered question is settled: {planned}"
    );

    // A note, then refine again: the next turn of the same thread.
    let step = line_of(&planned, "Accept semicolons");
    harness
        .client
        .change(
            &plan_uri,
            ((step + 1, 0), (step + 1, 0)),
            "  > note: keep commas working too\n",
        )
        .await;
    harness
        .fake
        .push(Reply::items(vec![Item::proposed_plan(PLAN_V2.replace(
            "Accept semicolons as separators",
            "Accept semicolons as well as commas as separators",
        ))]));
    let actions = harness
        .code_actions(&plan_uri, ((0, 0), (0, 0)), json!([]))
        .await;
    let again = run_to_end(&harness, find_action(&actions, "baton: refine plan")).await;
    assert!(again.contains("plan refined"), "{again}");
    let requests = harness.fake.requests();
    assert_eq!(requests.len(), 3);
    let third = request_text(&requests[2].body);
    assert!(third.contains("keep commas working too"), "{third}");
    // Same thread: the history (the question and its answer) goes along.
    assert_eq!(
        requests[2].input_items("function_call_output").len(),
        1,
        "{third}"
    );
    let last = harness.agreed_text(&plan_uri).await;
    assert!(last.contains("as well as commas"), "{last}");
    assert!(last.contains("> note: keep commas working too"), "{last}");
    // Plan mode changed nothing on disk.
    assert_eq!(
        std::fs::read_to_string(harness.root.join("src/lib.rs")).unwrap(),
        LIB
    );
    harness.finish().await;
    drop(codex_home);
}

/// An ACP agent with a plan mode (the scripted agent): baton switches the session to it, the
/// agent's plan entries become the checklist, and refining is the next prompt of the same
/// session, whose answer (a whole plan in the document's format) replaces the plan in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acp_agent_plans_in_its_plan_mode_and_refines_in_the_same_session() {
    let script = json!({
        "modes": { "current": "default", "available": [
            { "id": "default", "name": "Default" },
            { "id": "plan", "name": "Plan" },
        ]},
        "turns": [
            [
                { "type": "plan", "entries": [
                    { "content": "Create src/parser.rs with the parse function" },
                    { "content": "Make src/lib.rs call the new module" },
                ]},
                { "type": "message", "text": "Two steps should do it." },
            ],
            [ { "type": "message", "text": PLAN_V2 } ],
        ],
    });
    let (harness, agent_log) =
        start(ClientProfile::Neovim, script, json!({ "source": "agent" })).await;
    let answer = harness
        .execute("baton.plan", json!(["split parsing out of src/lib.rs"]))
        .await
        .expect("baton.plan answers");
    let plan_uri = answer["document"].as_str().unwrap().to_string();
    let end = Harness::end_message(&harness.job_end(answer["job"].as_str().unwrap()).await);
    assert!(end.contains("2 steps"), "{end}");
    let text = open_plan(&harness, &plan_uri).await;
    let plan = plan::Plan::parse(&text).unwrap();
    assert_eq!(
        plan.steps[1].text, "Make src/lib.rs call the new module",
        "{text}"
    );
    let log = std::fs::read_to_string(&agent_log).unwrap();
    assert!(
        log.lines()
            .any(|line| line.contains("session/set_mode") && line.contains("\"plan\"")),
        "the agent's plan mode was chosen: {log}"
    );

    // The user adds a step; refine goes to the same agent process and session.
    let last = text.lines().count() as u32;
    harness
        .client
        .change(
            &plan_uri,
            ((last, 0), (last, 0)),
            "- accept semicolons too\n",
        )
        .await;
    let actions = harness
        .code_actions(&plan_uri, ((0, 0), (0, 0)), json!([]))
        .await;
    let refined = run_to_end(
        &harness,
        find_action(&actions, "baton: refine plan (agent scripted)"),
    )
    .await;
    assert!(refined.contains("plan refined: 3 steps"), "{refined}");
    let after = harness.agreed_text(&plan_uri).await;
    assert!(after.contains("Accept semicolons as separators"), "{after}");
    let log = std::fs::read_to_string(&agent_log).unwrap();
    let prompts: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("session/prompt"))
        .collect();
    assert_eq!(prompts.len(), 2, "{log}");
    assert!(
        prompts[1].contains("accept semicolons too"),
        "{}",
        prompts[1]
    );
    assert_eq!(
        log.lines()
            .filter(|line| line.contains("session/new"))
            .count(),
        1,
        "one session for both turns"
    );
    assert_eq!(
        std::fs::read_to_string(harness.root.join("src/lib.rs")).unwrap(),
        LIB
    );
    harness.finish().await;
}

/// Cancelling a plan while it streams ends its job at once; the document says the plan was
/// not finished instead of "being written".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_streaming_plan_stops_it_and_says_so() {
    let (harness, _log) = start(ClientProfile::Neovim, json!({}), json!({})).await;
    harness
        .fake
        .push(Reply::text(PLAN_V1.repeat(20)).rate(30.0));
    let answer = harness
        .execute("baton.plan", json!(["split parsing out of src/lib.rs"]))
        .await
        .unwrap();
    let plan_uri = answer["document"].as_str().unwrap().to_string();
    let token = answer["job"].as_str().unwrap().to_string();
    shown(&harness, &plan_uri).await;
    open_plan(&harness, &plan_uri).await;
    client_text_until(
        &harness,
        &plan_uri,
        "part of the plan to stream in",
        |text| text.contains("Move the parser"),
    )
    .await;
    let cancelled = harness
        .execute("baton.cancel", json!([token]))
        .await
        .unwrap();
    assert_eq!(cancelled["cancelled"], 1);
    assert_eq!(
        Harness::end_message(&harness.job_end(&token).await),
        "cancelled"
    );
    let text = harness.agreed_text(&plan_uri).await;
    assert!(
        text.contains("stopped writing this plan (cancelled)"),
        "{text}"
    );
    assert!(!text.contains("streams in here"), "{text}");
    // The model's stream was dropped, not read to its end.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !harness.fake.requests()[0].aborted {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the model stream was not aborted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    harness.finish().await;
}

/// Zed: a plan from a selection's code action (with the diagnostic the editor sent); Zed cannot
/// open documents for a server, so a message names the plan's file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zed_plans_from_a_selection_with_its_diagnostics() {
    let (harness, _log) = start(ClientProfile::Zed, json!({}), json!({})).await;
    let text = "// split this function into parse and trim\npub fn parse(input: &str) -> Vec<String> {\n    input.split(',').map(String::from).collect()\n}\n";
    let lib = harness.open("src/lib.rs", "rust", text).await;
    harness.fake.push(Reply::text(PLAN_V2));
    let diagnostic = json!([{
        "range": { "start": { "line": 2, "character": 4 }, "end": { "line": 2, "character": 9 } },
        "severity": 2,
        "message": "DIAG-MARKER: items are not trimmed",
    }]);
    let actions = harness
        .code_actions(&lib, ((0, 0), (3, 1)), diagnostic)
        .await;
    let action = find_action(
        &actions,
        "baton (deep): plan: split this function into parse and trim",
    );
    let command = &action["command"];
    let answer = harness
        .execute(
            command["command"].as_str().unwrap(),
            command["arguments"].clone(),
        )
        .await
        .expect("baton.plan answers");
    harness.job_end(answer["job"].as_str().unwrap()).await;
    let message = harness.wait_for_message("is being written to").await;
    let path = uri_to_path(answer["document"].as_str().unwrap()).unwrap();
    assert!(message.contains(&path.display().to_string()), "{message}");
    let sent = request_text(&harness.fake.requests()[0].body);
    assert!(
        sent.contains("DIAG-MARKER: items are not trimmed"),
        "{sent}"
    );
    assert!(sent.contains("src/lib.rs, lines 1-4"), "{sent}");
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        plan::Plan::parse(&written).unwrap().steps.len(),
        3,
        "{written}"
    );
    harness.finish().await;
}
