//! Agent tasks when the agent misbehaves, and the review around them: testkit's scripted ACP
//! agent (real ACP over stdio) crashes, hangs, sends malformed lines and floods, writes outside
//! the workspace, asks for permission and never continues, creates binary and over-size files,
//! and runs a second turn. Each case ends with a clear message, no lost user text, nothing
//! landed outside the workspace, no leftover agent process, and the server still serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::tasks::scratch_home;
use serde_json::{Value, json};
use testkit::lsp_client::{ClientProfile, file_uri, uri_to_path};

use crate::support::{Harness, Options, merge};

const LIB_ON_DISK: &str = "fn a() -> i32 {\n    1\n}\n\nfn b() -> i32 {\n    2\n}\n";
const LIB_UNSAVED: &str =
    "// the user's unsaved note\nfn a() -> i32 {\n    1\n}\n\nfn b() -> i32 {\n    2\n}\n";
const LIB_EXPECTED: &str =
    "// the user's unsaved note\nfn a() -> i32 {\n    1\n}\n\nfn b() -> i32 {\n    20\n}\n";
const LIB_TWENTY: &str = "fn a() -> i32 {\n    1\n}\n\nfn b() -> i32 {\n    20\n}\n";
const NOTES: &str = "notes\n";

/// How long a whole task may take on a loaded 2-core machine with debug builds.
const TASK_WAIT: Duration = Duration::from_secs(120);
/// How long a process may take to disappear after its task ended.
const GONE_WAIT: Duration = Duration::from_secs(20);
/// Cancelling a hung agent: its grace period (300 ms here), then SIGKILL; generous for a
/// loaded machine.
const CANCEL_WAIT: Duration = Duration::from_secs(15);

fn workspace_files() -> Vec<(&'static str, String)> {
    vec![
        ("src/lib.rs", LIB_ON_DISK.into()),
        ("notes.md", NOTES.into()),
    ]
}

/// The scripted agent's pid file for `harness`.
fn pid_file(harness: &Harness) -> PathBuf {
    harness.home.path().join("agent.pid")
}

/// Starts baton with the scripted agent running `script`; `harness_settings` go over the
/// defaults (`agent = "scripted"`, `grace_ms = 300`).
async fn start(profile: ClientProfile, script: Value, harness_settings: Value) -> Harness {
    start_in(scratch_home(), profile, script, harness_settings).await
}

async fn start_in(
    home: Arc<tempfile::TempDir>,
    profile: ClientProfile,
    script: Value,
    harness_settings: Value,
) -> Harness {
    let script_path = home.path().join("script.json");
    std::fs::write(&script_path, script.to_string()).unwrap();
    let pid_file = home.path().join("agent.pid");
    let binary = testkit::scripted_agent::binary_path();
    let mut settings = json!({
        "agent": "scripted",
        "grace_ms": 300,
        "agents": { "scripted": {
            "kind": "acp",
            "command": [binary.to_string_lossy()],
            "env": {
                testkit::scripted_agent::SCRIPT_ENV: script_path.to_string_lossy(),
                testkit::scripted_agent::PID_FILE_ENV: pid_file.to_string_lossy(),
            },
        }},
    });
    merge(&mut settings, harness_settings);
    let state = home.path().join("state");
    Harness::with(Options {
        profile,
        settings: json!({ "harness": settings }),
        workspace_files: workspace_files(),
        home: Some(home),
        env: vec![(
            "BATON_STATE_DIR".into(),
            state.to_string_lossy().into_owned(),
        )],
        ..Options::default()
    })
    .await
}

/// Starts a task; returns the command's answer and the job token.
async fn start_task(harness: &Harness, instruction: &str) -> (Value, String) {
    let answer = harness
        .execute("baton.task", json!([{ "instruction": instruction }]))
        .await
        .expect("baton.task answers");
    let token = answer["job"].as_str().expect("a job token").to_string();
    (answer, token)
}

/// Waits for the progress `token` to end within `wait`; returns its end message.
async fn progress_end(harness: &Harness, token: &str, wait: Duration) -> String {
    let token = token.to_string();
    harness
        .client
        .wait_for(&format!("the end of {token}"), wait, |state| {
            state.progress_ended(&token).then_some(())
        })
        .await
        .unwrap_or_else(|err| panic!("{err}\nserver log:\n{}", harness.log_lines_with("task")));
    Harness::end_message(&harness.client.state().progress[&token])
}

/// Starts a task and waits for its first turn to end.
async fn run_task(harness: &Harness, instruction: &str) -> (Value, String) {
    let (answer, token) = start_task(harness, instruction).await;
    let end = progress_end(harness, &token, TASK_WAIT).await;
    (answer, end)
}

fn document_path(answer: &Value) -> PathBuf {
    uri_to_path(answer["document"].as_str().expect("a document uri")).expect("a file uri")
}

/// The task document as baton last wrote it to disk.
fn task_document(answer: &Value) -> String {
    std::fs::read_to_string(document_path(answer)).expect("the task document exists")
}

/// Polls `check` until it gives a value or `wait` passes.
async fn poll<T>(what: &str, wait: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(found) = check() {
            return found;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the task document on disk contains every needle; returns it.
async fn document_with(answer: &Value, needles: &[&str]) -> String {
    let path = document_path(answer);
    let mut last = String::new();
    let found = tokio::time::timeout(TASK_WAIT, async {
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if needles.iter().all(|needle| text.contains(needle)) {
                return text;
            }
            last = text;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{needles:?} not all in the task document:\n{last}"))
}

/// The scripted agent's process id, once it has started; the pid file is removed, so the next
/// agent process writes a new one.
async fn agent_pid(harness: &Harness) -> u32 {
    let file = pid_file(harness);
    let pid = poll("the agent's pid file", TASK_WAIT, || {
        std::fs::read_to_string(&file)
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()
    })
    .await;
    std::fs::remove_file(&file).unwrap();
    pid
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The process is gone (exited and reaped: no zombie left either).
async fn assert_gone(pid: u32) {
    poll(
        &format!("agent process {pid} to be gone"),
        GONE_WAIT,
        || (!alive(pid)).then_some(()),
    )
    .await;
}

/// Every URI a workspace edit the client received names (text edits and resource operations).
fn edited_uris(harness: &Harness) -> Vec<String> {
    let mut uris = Vec::new();
    for record in harness.client.state().apply_edits {
        let edit = &record.params["edit"];
        for change in edit["documentChanges"].as_array().into_iter().flatten() {
            for uri in [
                &change["textDocument"]["uri"],
                &change["uri"],
                &change["oldUri"],
                &change["newUri"],
            ] {
                if let Some(uri) = uri.as_str() {
                    uris.push(uri.to_string());
                }
            }
        }
        if let Some(changes) = edit["changes"].as_object() {
            uris.extend(changes.keys().cloned());
        }
    }
    uris
}

/// No workspace edit named a file outside the workspace (the task document aside).
fn assert_no_edit_outside(harness: &Harness, answer: &Value) {
    let root = format!("{}/", file_uri(&harness.root));
    let document = answer["document"].as_str().unwrap_or_default();
    for uri in edited_uris(harness) {
        assert!(
            uri.starts_with(&root) || uri == document,
            "a workspace edit names {uri}, outside {root}"
        );
    }
}

fn disk(root: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(root.join(name)).ok()
}

/// The real working tree still has what the test wrote: changes went to the editor only.
fn assert_disk_untouched(root: &Path) {
    assert_eq!(disk(root, "src/lib.rs").as_deref(), Some(LIB_ON_DISK));
    assert_eq!(disk(root, "notes.md").as_deref(), Some(NOTES));
}

/// The line of `document` that mentions `path` in backticks.
fn file_line<'a>(document: &'a str, path: &str) -> &'a str {
    let needle = format!("`{path}`");
    document
        .lines()
        .find(|line| line.starts_with("- `") && line.contains(&needle))
        .unwrap_or_else(|| panic!("no file line for {path} in\n{document}"))
}

/// The server answers commands: it is still serving.
async fn assert_serving(harness: &Harness) {
    let status = harness
        .execute("baton.status", json!([]))
        .await
        .expect("baton.status answers");
    assert!(status["tasks"].is_array(), "{status}");
}

/// Runs a code action's command (task commands answer `{task}`, not a job token).
async fn run_command(harness: &Harness, action: &Value) -> Value {
    let command = &action["command"];
    harness
        .execute(
            command["command"].as_str().unwrap(),
            command["arguments"].clone(),
        )
        .await
        .unwrap_or_else(|err| panic!("{} fails: {err:?}", action["title"]))
}

fn write(path: &str, content: &str) -> Value {
    json!({ "type": "write", "path": path, "content": content })
}

fn message(text: &str) -> Value {
    json!({ "type": "message", "text": text })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_crash_mid_task_fails_the_turn_keeps_its_file_and_user_text() {
    let home = scratch_home();
    let child_pid_file = home.path().join("child.pid");
    // A process the agent leaves running (a shell's background job), in its process group.
    let background = format!(
        "sleep 600 >/dev/null 2>&1 & echo $! > '{}'",
        child_pid_file.display()
    );
    let script = json!({
        "turns": [[
            { "type": "exec", "command": background, "complete": true },
            write("src/lib.rs", LIB_EXPECTED),
            message("about to crash"),
            { "type": "crash", "code": 3 },
        ]],
        "by_prompt": { "the second task": [write("notes.md", "notes\nsecond\n"), message("fine")] },
    });
    let harness = start_in(home, ClientProfile::Neovim, script, json!({})).await;
    let lib = harness.uri_of("src/lib.rs");
    harness.client.open(&lib, "rust", LIB_UNSAVED).await;
    let (answer, token) = start_task(&harness, "make b return 20").await;
    let pid = agent_pid(&harness).await;
    let end = progress_end(&harness, &token, TASK_WAIT).await;
    assert!(
        end.starts_with("failed:") && end.contains("exit status: 3"),
        "{end:?}"
    );
    // The user is told, with the exit.
    let shown = harness.wait_for_message("exit status: 3").await;
    assert!(shown.contains("baton task 1"), "{shown}");
    // What the agent wrote before crashing landed, merged with the unsaved line.
    assert_eq!(harness.agreed_text(&lib).await, LIB_EXPECTED);
    let document = document_with(&answer, &["exit status: 3"]).await;
    assert!(document.contains("about to crash"), "{document}");
    assert!(
        file_line(&document, "src/lib.rs").ends_with("landed"),
        "{document}"
    );
    assert_gone(pid).await;
    let child: u32 = std::fs::read_to_string(&child_pid_file)
        .expect("the background job's pid")
        .trim()
        .parse()
        .unwrap();
    assert_gone(child).await;
    assert_disk_untouched(&harness.root);

    // Still serving: status answers and a second task works.
    assert_serving(&harness).await;
    // A reply to the crashed task is refused with a message.
    harness
        .execute(
            "baton.task.reply",
            json!([{ "task": answer["task"], "text": "are you there?" }]),
        )
        .await
        .ok();
    harness
        .wait_for_message("has ended; start a new task")
        .await;
    // Review still works once the agent is gone: undo its change, keeping the unsaved line.
    let actions = harness
        .code_actions(&lib, ((0, 0), (0, 0)), json!([]))
        .await;
    run_command(
        &harness,
        crate::support::find_action(&actions, "changes to this file"),
    )
    .await;
    harness
        .client
        .wait_for("the undo to land", TASK_WAIT, |state| {
            (state.text(&lib) == Some(LIB_UNSAVED)).then_some(())
        })
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", harness.client.text(&lib)));
    assert_eq!(harness.agreed_text(&lib).await, LIB_UNSAVED);
    let (second, token) = start_task(&harness, "the second task").await;
    let second_pid = agent_pid(&harness).await;
    let end = progress_end(&harness, &token, TASK_WAIT).await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));
    assert_eq!(second["task"], 2);
    let notes = harness.uri_of("notes.md");
    assert_eq!(
        harness.client.state().files.get(&notes),
        Some(&Some("notes\nsecond\n".to_string()))
    );
    assert_no_edit_outside(&harness, &answer);
    harness.finish().await;
    assert_gone(second_pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_agent_is_cancelled_and_killed_by_command_and_by_progress_cancel() {
    let script = json!({
        "ignore_sigterm": true,
        "exit_on_eof": false,
        "turns": [[message("hanging now"), { "type": "hang" }]],
    });
    let harness = start(ClientProfile::Neovim, script, json!({})).await;
    let lib = harness.uri_of("src/lib.rs");
    harness.client.open(&lib, "rust", LIB_UNSAVED).await;

    // `baton.cancel` with the task's job token.
    let (answer, token) = start_task(&harness, "hang").await;
    let pid = agent_pid(&harness).await;
    document_with(&answer, &["hanging now"]).await;
    assert!(alive(pid));
    let cancelled = harness
        .execute("baton.cancel", json!([token]))
        .await
        .expect("baton.cancel answers");
    assert_eq!(cancelled["cancelled"], 1, "{cancelled}");
    let end = progress_end(&harness, &token, CANCEL_WAIT).await;
    assert_eq!(end, "cancelled");
    assert_gone(pid).await;
    document_with(&answer, &["cancelled by you"]).await;

    // The progress cancel button (`window/workDoneProgress/cancel`).
    let (answer, token) = start_task(&harness, "hang again").await;
    let pid = agent_pid(&harness).await;
    document_with(&answer, &["hanging now"]).await;
    harness
        .client
        .notify("window/workDoneProgress/cancel", json!({ "token": token }));
    let end = progress_end(&harness, &token, CANCEL_WAIT).await;
    assert_eq!(end, "cancelled");
    assert_gone(pid).await;

    assert_eq!(harness.agreed_text(&lib).await, LIB_UNSAVED);
    assert_serving(&harness).await;
    assert_disk_untouched(&harness.root);

    // The editor quits while an agent hangs: baton does not leave it behind.
    let (answer, _) = start_task(&harness, "hang at exit").await;
    let pid = agent_pid(&harness).await;
    document_with(&answer, &["hanging now"]).await;
    harness.finish().await;
    assert_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_and_a_flood_of_updates_leave_the_whole_message() {
    let malformed = [
        "invalid_json",
        "invalid_utf8",
        "not_an_object",
        "unknown_notification",
        "unknown_request",
        "wrong_types",
        "missing_session",
    ];
    let mut steps = vec![message("start ")];
    steps.extend(
        malformed
            .iter()
            .map(|kind| json!({ "type": "malformed", "kind": kind })),
    );
    steps.push(json!({ "type": "flood", "count": 2000 }));
    steps.push(message("end"));
    steps.push(write("notes.md", "notes\nafter the flood\n"));
    let home = scratch_home();
    let agent_log = home.path().join("agent.log");
    let script = json!({ "turns": [steps], "log": agent_log });
    let harness = start_in(home, ClientProfile::Neovim, script, json!({})).await;
    let (answer, token) = start_task(&harness, "flood").await;
    let pid = agent_pid(&harness).await;
    let end = progress_end(&harness, &token, TASK_WAIT).await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));

    let mut expected = String::from("start ");
    for n in 0..2000 {
        expected.push_str(&format!("{n} "));
    }
    expected.push_str("end");
    let document = task_document(&answer);
    assert!(
        document.contains(&format!("\n{expected}\n")),
        "the whole message is not in\n{document}"
    );
    // The malformed lines are recorded as warnings.
    let warnings = document
        .lines()
        .filter(|line| line.starts_with("- warning:"))
        .count();
    assert!(warnings > 0, "no warnings in\n{document}");
    // The agent's unknown request was answered (method not found), not left waiting.
    let received = std::fs::read_to_string(&agent_log).unwrap();
    assert!(
        received
            .lines()
            .any(|line| line.contains("scripted-request-") && line.contains("-32601")),
        "no answer to the unknown request in\n{received}"
    );
    let notes = harness.uri_of("notes.md");
    assert_eq!(
        harness.client.state().files.get(&notes),
        Some(&Some("notes\nafter the flood\n".to_string()))
    );
    assert!(alive(pid), "the agent stays for a reply");
    assert_serving(&harness).await;
    assert_disk_untouched(&harness.root);
    harness.finish().await;
    assert_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_outside_the_workspace_are_reported_and_never_landed() {
    let home = scratch_home();
    let outside = home.path().join("outside");
    std::fs::create_dir_all(outside.join("linked")).unwrap();
    let absolute = outside.join("abs.txt");
    let script = json!({ "turns": [[
        write("notes.md", "notes\ninside\n"),
        write(&absolute.to_string_lossy(), "absolute\n"),
        write("../escape.txt", "escape\n"),
        { "type": "symlink", "path": "link", "target": outside.join("linked") },
        write("link/through.txt", "through\n"),
        message("wrote everywhere"),
    ]]});
    let harness = start_in(home.clone(), ClientProfile::Neovim, script, json!({})).await;
    let (answer, end) = run_task(&harness, "write everywhere").await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));
    let document = task_document(&answer);

    // Inside: landed.
    let notes = harness.uri_of("notes.md");
    assert_eq!(
        harness.client.state().files.get(&notes),
        Some(&Some("notes\ninside\n".to_string()))
    );
    // Outside: reported, not landed.
    for path in [
        absolute.to_string_lossy().into_owned(),
        "escape.txt".into(),
        "link".into(),
    ] {
        let line = document
            .lines()
            .find(|line| line.starts_with("- `") && line.contains(&path))
            .unwrap_or_else(|| panic!("{path} not reported in\n{document}"));
        assert!(
            line.contains("NOT landed: resolves outside the workspace"),
            "{line}"
        );
    }
    assert_no_edit_outside(&harness, &answer);
    for uri in edited_uris(&harness) {
        assert!(!uri.contains("/link"), "{uri} was landed");
    }
    // Nothing of it in the real workspace or next to it.
    assert!(!harness.root.join("link").exists());
    assert!(std::fs::symlink_metadata(harness.root.join("link")).is_err());
    assert!(!home.path().join("escape.txt").exists());
    assert!(!harness.root.join("abs.txt").exists());
    // The agent wrote its absolute path and through its link itself (the shadow is no sandbox
    // for a scripted agent); baton added nothing there.
    assert_eq!(
        std::fs::read_to_string(&absolute).as_deref().ok(),
        Some("absolute\n")
    );
    assert_eq!(
        std::fs::read_dir(outside.join("linked")).unwrap().count(),
        1,
        "only the agent's own write through the link"
    );
    assert_disk_untouched(&harness.root);
    assert_serving(&harness).await;
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_nobody_answers_is_denied_after_the_timeout() {
    let script = json!({ "turns": [[
        { "type": "permission", "title": "Edit notes.md", "kind": "edit", "path": "notes.md",
          "allowed": [write("notes.md", "notes\nallowed\n")],
          "rejected": [message("I was denied")] },
        message(" and stopped"),
    ]]});
    // Helix has no showMessageRequest: nobody answers unless the user runs a code action.
    let harness = start(
        ClientProfile::Helix,
        script,
        json!({ "approval": "ask", "approval_timeout_s": 1 }),
    )
    .await;
    let (answer, end) = run_task(&harness, "ask and wait").await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));
    let document = task_document(&answer);
    for needle in ["no answer within 1 s", "I was denied", "and stopped"] {
        assert!(
            document.contains(needle),
            "{needle:?} missing from\n{document}"
        );
    }
    assert!(!document.contains("[?] permission"), "{document}");
    let notes = harness.uri_of("notes.md");
    assert_eq!(harness.client.state().files.get(&notes), None);
    assert_serving(&harness).await;
    assert_disk_untouched(&harness.root);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_answers_a_permission_through_the_task_documents_code_action() {
    let script = json!({ "turns": [[
        { "type": "permission", "title": "Edit notes.md", "kind": "edit", "path": "notes.md",
          "allowed": [write("notes.md", "notes\nallowed\n")],
          "rejected": [message("I was denied")] },
        message("after asking"),
    ]]});
    let harness = start(ClientProfile::Helix, script, json!({ "approval": "ask" })).await;
    let (answer, token) = start_task(&harness, "ask first").await;
    let text = document_with(&answer, &["- [?] permission #"]).await;
    let line = text
        .lines()
        .position(|line| line.starts_with("- [?] permission #"))
        .unwrap() as u32;
    let uri = answer["document"].as_str().unwrap().to_string();
    harness.client.open(&uri, "markdown", &text).await;
    let actions = harness
        .code_actions(&uri, ((line, 0), (line, 0)), json!([]))
        .await;
    let allow = crate::support::find_action(&actions, "Allow once");
    run_command(&harness, allow).await;
    let end = progress_end(&harness, &token, TASK_WAIT).await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));

    // The allowed branch ran and its edit landed.
    let notes = harness.uri_of("notes.md");
    assert_eq!(
        harness.client.state().files.get(&notes),
        Some(&Some("notes\nallowed\n".to_string()))
    );
    // The open document (updated through the editor) tells how it was answered.
    harness
        .client
        .wait_for("the document to show the answer", TASK_WAIT, |state| {
            let text = state.text(&uri)?;
            (text.contains("allowed once (code action)") && text.contains("after asking"))
                .then_some(())
        })
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", harness.client.text(&uri)));
    assert!(!harness.client.text(&uri).contains("I was denied"));
    // Helix was asked through showMessageRequest too, and said it has no such method.
    assert!(!harness.client.state().show_message_requests.is_empty());
    assert_disk_untouched(&harness.root);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_and_over_size_files_are_reported_not_landed() {
    let big = "x".repeat(5000) + "\n";
    let script = json!({ "turns": [[
        write("data.bin", "bin\u{0}ary\u{1}\n"),
        write("big.txt", &big),
        write("notes.md", "notes\nsmall\n"),
        message("made files"),
    ]]});
    let harness = start(
        ClientProfile::Neovim,
        script,
        json!({ "max_file_bytes": 1000 }),
    )
    .await;
    let (answer, end) = run_task(&harness, "make files").await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));
    let document = task_document(&answer);
    assert!(
        file_line(&document, "data.bin").contains("NOT landed: binary file"),
        "{document}"
    );
    assert!(
        file_line(&document, "big.txt").contains("NOT landed: too large"),
        "{document}"
    );
    assert!(
        file_line(&document, "notes.md").ends_with("landed"),
        "{document}"
    );
    for uri in edited_uris(&harness) {
        assert!(
            !uri.ends_with("/data.bin") && !uri.ends_with("/big.txt"),
            "{uri} was sent"
        );
    }
    let state = harness.client.state();
    assert_eq!(
        state.files.get(&harness.uri_of("notes.md")),
        Some(&Some("notes\nsmall\n".to_string()))
    );
    assert!(!harness.root.join("data.bin").exists());
    assert!(!harness.root.join("big.txt").exists());
    assert_disk_untouched(&harness.root);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_keeps_the_users_typing_keep_marks_kept_and_diff_is_written() {
    let script = json!({ "turns": [[
        write("src/lib.rs", LIB_TWENTY),
        write("notes.md", "notes\nmore\n"),
        message("changed two files"),
    ]]});
    let harness = start(ClientProfile::Neovim, script, json!({})).await;
    let lib = harness.uri_of("src/lib.rs");
    harness.client.open(&lib, "rust", LIB_ON_DISK).await;
    let (answer, end) = run_task(&harness, "change two files").await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));
    assert_eq!(harness.agreed_text(&lib).await, LIB_TWENTY);
    let task = answer["task"].clone();

    // `baton.tasks` lists it, with what its document says.
    let tasks = harness
        .execute("baton.tasks", json!([]))
        .await
        .expect("baton.tasks answers");
    assert_eq!(
        tasks,
        json!([{
            "task": task,
            "title": "change two files",
            "status": "done; reply below to continue",
            "agent": "scripted",
            "document": answer["document"],
        }])
    );

    // The whole diff, as a file.
    let diff = read_diff(&harness, &task).await;
    for needle in [
        "--- a/src/lib.rs",
        "+++ b/src/lib.rs",
        "-    2\n",
        "+    20\n",
        "--- a/notes.md",
        "+more\n",
    ] {
        assert!(diff.contains(needle), "{needle:?} missing from\n{diff}");
    }

    // The user types elsewhere, then undoes the task's change to this file from the file.
    harness
        .client
        .change(&lib, ((0, 0), (0, 0)), "// mine\n")
        .await;
    let actions = harness
        .code_actions(&lib, ((0, 0), (0, 0)), json!([]))
        .await;
    let undo = crate::support::find_action(&actions, "changes to this file");
    run_command(&harness, undo).await;
    let restored = format!("// mine\n{LIB_ON_DISK}");
    harness
        .client
        .wait_for("the undo to land", TASK_WAIT, |state| {
            (state.text(&lib) == Some(restored.as_str())).then_some(())
        })
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", harness.client.text(&lib)));
    assert_eq!(harness.agreed_text(&lib).await, restored);

    // Keep the rest.
    harness
        .execute("baton.task.keep", json!([{ "task": task }]))
        .await
        .expect("keep answers");
    let document = document_with(&answer, &[") kept", ") undone"]).await;
    assert!(
        file_line(&document, "src/lib.rs").ends_with("undone"),
        "{document}"
    );
    assert!(
        file_line(&document, "notes.md").ends_with("kept"),
        "{document}"
    );
    let diff = read_diff(&harness, &task).await;
    assert!(!diff.contains("+    20"), "{diff}");
    assert!(diff.contains("+more\n"), "{diff}");
    assert_eq!(
        harness
            .client
            .state()
            .files
            .get(&harness.uri_of("notes.md")),
        Some(&Some("notes\nmore\n".to_string()))
    );
    harness.finish().await;
}

/// Runs `baton.task.diff` and reads the file it wrote.
async fn read_diff(harness: &Harness, task: &Value) -> String {
    let answer = harness
        .execute("baton.task.diff", json!([{ "task": task }]))
        .await
        .expect("baton.task.diff answers");
    let path = uri_to_path(answer["diff"].as_str().expect("a diff uri")).unwrap();
    std::fs::read_to_string(path).expect("the diff file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_runs_the_next_turn_in_the_same_agent_process() {
    // Like codex-acp, the agent ignores stdin EOF: baton must stop it when the editor quits.
    let script = json!({ "exit_on_eof": false, "turns": [
        [write("notes.md", "notes\none\n"), message("first turn")],
        [write("notes.md", "notes\none\ntwo\n"), message("second turn")],
    ]});
    let harness = start(ClientProfile::Neovim, script, json!({})).await;
    let (answer, token) = start_task(&harness, "first").await;
    let pid = agent_pid(&harness).await;
    let end = progress_end(&harness, &token, TASK_WAIT).await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));
    let notes = harness.uri_of("notes.md");
    assert_eq!(
        harness.client.state().files.get(&notes),
        Some(&Some("notes\none\n".to_string()))
    );

    harness
        .execute(
            "baton.task.reply",
            json!([{ "task": answer["task"], "text": "go on" }]),
        )
        .await
        .expect("reply answers");
    let reply_token = harness
        .client
        .wait_for("the reply's progress", TASK_WAIT, |state| {
            state
                .progress
                .iter()
                .find(|(other, events)| {
                    **other != token
                        && events
                            .iter()
                            .any(|e| e.title.as_deref().is_some_and(|t| t.contains(": reply")))
                })
                .map(|(other, _)| other.clone())
        })
        .await
        .unwrap();
    let end = progress_end(&harness, &reply_token, TASK_WAIT).await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));
    assert_eq!(
        harness.client.state().files.get(&notes),
        Some(&Some("notes\none\ntwo\n".to_string()))
    );
    // The same process ran both turns: it is still there and no other one started.
    assert!(alive(pid));
    assert!(
        !pid_file(&harness).exists(),
        "a second agent process started"
    );
    let document = task_document(&answer);
    for needle in ["first turn", "## You (1)", "> go on", "second turn"] {
        assert!(
            document.contains(needle),
            "{needle:?} missing from\n{document}"
        );
    }
    assert_disk_untouched(&harness.root);
    harness.finish().await;
    assert_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_while_a_permission_waits_withdraws_it_and_stops_the_agent() {
    let script = json!({ "exit_on_eof": false, "turns": [[
        { "type": "permission", "title": "Edit notes.md", "kind": "edit", "path": "notes.md",
          "allowed": [write("notes.md", "notes\nallowed\n")] },
        message("never reached"),
    ]]});
    let harness = start(ClientProfile::Helix, script, json!({ "approval": "ask" })).await;
    let (answer, token) = start_task(&harness, "ask, then be cancelled").await;
    let pid = agent_pid(&harness).await;
    document_with(&answer, &["- [?] permission #1"]).await;
    harness
        .execute("baton.cancel", json!([{ "job": token }]))
        .await
        .expect("baton.cancel answers");
    let end = progress_end(&harness, &token, CANCEL_WAIT).await;
    assert_eq!(end, "cancelled");
    assert_gone(pid).await;
    let document = document_with(&answer, &["#1: Edit notes.md → withdrawn"]).await;
    assert!(!document.contains("[?] permission"), "{document}");
    assert!(!document.contains("never reached"), "{document}");
    // A late answer to the withdrawn request changes nothing.
    harness
        .execute(
            "baton.task.permission",
            json!([{ "task": answer["task"], "id": 1, "answer": "allow-once" }]),
        )
        .await
        .ok();
    assert_eq!(
        harness
            .client
            .state()
            .files
            .get(&harness.uri_of("notes.md")),
        None
    );
    assert_serving(&harness).await;
    assert_disk_untouched(&harness.root);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_agent_that_never_answers_initialize_stops_it() {
    let home = scratch_home();
    let pid_file = home.path().join("agent.pid");
    // An "agent" that starts and never says a word: the handshake hangs.
    let silent = format!("echo $$ > '{}'; exec sleep 600", pid_file.display());
    let settings = json!({ "agents": { "scripted": { "command": ["sh", "-c", silent] } } });
    let harness = start_in(home, ClientProfile::Neovim, json!({}), settings).await;
    let (answer, token) = start_task(&harness, "never starts").await;
    let pid = agent_pid(&harness).await;
    wait_starting_agent(&harness, &token).await;
    harness
        .execute("baton.cancel", json!([token]))
        .await
        .expect("baton.cancel answers");
    let end = progress_end(&harness, &token, CANCEL_WAIT).await;
    assert_eq!(end, "cancelled");
    assert_gone(pid).await;
    document_with(&answer, &["cancelled"]).await;
    assert_serving(&harness).await;

    // The editor quits while another agent hangs in its handshake: it does not stay behind.
    let (_, token) = start_task(&harness, "never starts either").await;
    let pid = agent_pid(&harness).await;
    wait_starting_agent(&harness, &token).await;
    harness.finish().await;
    assert_gone(pid).await;
}

/// Waits until the task's progress says it is starting its agent.
async fn wait_starting_agent(harness: &Harness, token: &str) {
    harness
        .client
        .wait_for("the task to be starting its agent", TASK_WAIT, |state| {
            state
                .progress
                .get(token)?
                .iter()
                .any(|event| {
                    event
                        .message
                        .as_deref()
                        .is_some_and(|message| message.starts_with("starting"))
                })
                .then_some(())
        })
        .await
        .unwrap();
}

/// Runs the code action titled `title` on the task document's line for permission `id`
/// (the document is open in the client).
async fn answer_in_document(harness: &Harness, uri: &str, id: u64, title: &str) {
    let needle = format!("- [?] permission #{id}:");
    let text = harness
        .client
        .wait_for(&format!("permission #{id} to wait"), TASK_WAIT, |state| {
            state
                .text(uri)
                .filter(|text| text.contains(&needle))
                .map(str::to_string)
        })
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", harness.client.text(uri)));
    let line = text.lines().position(|l| l.starts_with(&needle)).unwrap() as u32;
    let actions = harness
        .code_actions(uri, ((line, 0), (line, 0)), json!([]))
        .await;
    run_command(harness, crate::support::find_action(&actions, title)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowing_edits_for_the_task_covers_later_edits_and_not_commands() {
    let script = json!({ "turns": [[
        { "type": "permission", "title": "Write notes.md", "kind": "edit", "path": "notes.md",
          "allowed": [write("notes.md", "notes\nfirst\n")] },
        { "type": "permission", "title": "Write src/lib.rs", "kind": "edit", "path": "src/lib.rs",
          "allowed": [write("src/lib.rs", LIB_TWENTY)] },
        { "type": "permission", "title": "Running the migration", "kind": "execute",
          "allowed": [write("ran.txt", "ran\n")], "rejected": [message("command denied")] },
        message(" finished"),
    ]]});
    let harness = start(ClientProfile::Helix, script, json!({ "approval": "ask" })).await;
    let (answer, token) = start_task(&harness, "three permissions").await;
    let text = document_with(&answer, &["- [?] permission #1:"]).await;
    let uri = answer["document"].as_str().unwrap().to_string();
    harness.client.open(&uri, "markdown", &text).await;
    answer_in_document(&harness, &uri, 1, "Allow for this task").await;
    // The second edit is not asked; the command is.
    answer_in_document(&harness, &uri, 3, "Deny").await;
    let end = progress_end(&harness, &token, TASK_WAIT).await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));
    let needles = [
        "command denied finished",
        "#1: Write notes.md → allowed for this task (code action)",
        "#2: Write src/lib.rs → allowed (you allowed this for the task)",
        "#3: Run `Running the migration` → denied (code action)",
    ];
    harness
        .client
        .wait_for("the document to tell it all", TASK_WAIT, |state| {
            let text = state.text(&uri)?;
            needles
                .iter()
                .all(|needle| text.contains(needle))
                .then_some(())
        })
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", harness.client.text(&uri)));
    assert_eq!(harness.agreed_text(&uri).await, harness.client.text(&uri));
    let files = harness.client.state().files;
    assert_eq!(
        files.get(&harness.uri_of("notes.md")),
        Some(&Some("notes\nfirst\n".to_string()))
    );
    assert_eq!(
        files.get(&harness.uri_of("src/lib.rs")),
        Some(&Some(LIB_TWENTY.to_string()))
    );
    assert_eq!(files.get(&harness.uri_of("ran.txt")), None);
    assert_disk_untouched(&harness.root);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_written_in_the_task_document_is_sent_by_its_code_action() {
    let script = json!({ "turns": [
        [message("first turn")],
        [write("notes.md", "notes\nreplied\n"), message("second turn")],
    ]});
    let harness = start(ClientProfile::Helix, script, json!({})).await;
    let (answer, end) = run_task(&harness, "first").await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));
    let text = task_document(&answer);
    let uri = answer["document"].as_str().unwrap().to_string();
    harness.client.open(&uri, "markdown", &text).await;
    // The user writes a reply at the end of the document.
    let last = text.lines().count() as u32;
    harness
        .client
        .change(&uri, ((last, 0), (last, 0)), "please go on\n")
        .await;
    let actions = harness
        .code_actions(&uri, ((last, 0), (last, 0)), json!([]))
        .await;
    run_command(
        &harness,
        crate::support::find_action(&actions, "send reply"),
    )
    .await;
    let reply_token = harness
        .client
        .wait_for("the reply's progress to end", TASK_WAIT, |state| {
            state
                .progress
                .iter()
                .find(|(token, events)| {
                    token.as_str() != answer["job"].as_str().unwrap_or_default()
                        && events.iter().any(|e| e.kind == "end")
                        && events
                            .iter()
                            .any(|e| e.title.as_deref().is_some_and(|t| t.contains(": reply")))
                })
                .map(|(token, _)| token.clone())
        })
        .await
        .unwrap();
    assert_eq!(
        Harness::end_message(&harness.client.state().progress[&reply_token]),
        "done"
    );
    assert_eq!(
        harness
            .client
            .state()
            .files
            .get(&harness.uri_of("notes.md")),
        Some(&Some("notes\nreplied\n".to_string()))
    );
    // The document shows the reply as sent, once, and the reply section is empty again.
    let text = harness
        .client
        .wait_for("the document to show the second turn", TASK_WAIT, |state| {
            state
                .text(&uri)
                .filter(|text| text.contains("second turn"))
                .map(str::to_string)
        })
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", harness.client.text(&uri)));
    assert!(text.contains("## You (1)\n\n> please go on\n"), "{text}");
    assert_eq!(text.matches("please go on").count(), 1, "{text}");
    let reply_section = &text[text.find("## Reply").unwrap()..];
    assert!(!reply_section.contains("please go on"), "{text}");
    assert_eq!(harness.agreed_text(&uri).await, text);
    assert_disk_untouched(&harness.root);
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_a_write_keeps_what_the_user_typed_during_the_task() {
    let script = json!({ "turns": [[
        { "type": "permission", "title": "Edit src/lib.rs", "kind": "edit", "path": "src/lib.rs",
          "allowed": [write("src/lib.rs", LIB_TWENTY), { "type": "crash", "code": 9 }] },
    ]]});
    let harness = start(ClientProfile::Helix, script, json!({ "approval": "ask" })).await;
    let lib = harness.uri_of("src/lib.rs");
    harness.client.open(&lib, "rust", LIB_ON_DISK).await;
    let (answer, token) = start_task(&harness, "edit, then crash").await;
    let pid = agent_pid(&harness).await;
    document_with(&answer, &["- [?] permission #1:"]).await;
    // The user types while the agent waits, then allows the edit.
    harness
        .client
        .change(&lib, ((0, 0), (0, 0)), "// typed during the task\n")
        .await;
    harness
        .execute(
            "baton.task.permission",
            json!([{ "task": answer["task"], "id": 1, "answer": "allow-once" }]),
        )
        .await
        .expect("the permission command answers");
    let end = progress_end(&harness, &token, TASK_WAIT).await;
    assert!(end.contains("exit status: 9"), "{end:?}");
    let expected = format!("// typed during the task\n{LIB_TWENTY}");
    harness
        .client
        .wait_for("the agent's edit to land", TASK_WAIT, |state| {
            (state.text(&lib) == Some(expected.as_str())).then_some(())
        })
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", harness.client.text(&lib)));
    assert_eq!(harness.agreed_text(&lib).await, expected);
    assert_gone(pid).await;
    assert_disk_untouched(&harness.root);
    assert_serving(&harness).await;
    harness.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_streams_into_the_open_task_document() {
    let script = json!({ "turns": [[
        { "type": "permission", "title": "Start flooding", "kind": "other",
          "allowed": [message("start "), { "type": "flood", "count": 2000 }, message("end")] },
    ]]});
    let harness = start(ClientProfile::Helix, script, json!({ "approval": "ask" })).await;
    let (answer, token) = start_task(&harness, "flood the open document").await;
    let text = document_with(&answer, &["- [?] permission #1:"]).await;
    let uri = answer["document"].as_str().unwrap().to_string();
    harness.client.open(&uri, "markdown", &text).await;
    harness
        .execute(
            "baton.task.permission",
            json!([{ "task": answer["task"], "id": 1, "answer": "allow-once" }]),
        )
        .await
        .expect("the permission command answers");
    let end = progress_end(&harness, &token, TASK_WAIT).await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));
    let mut expected = String::from("start ");
    for n in 0..2000 {
        expected.push_str(&format!("{n} "));
    }
    expected.push_str("end");
    let expected = format!("\n{expected}\n");
    harness
        .client
        .wait_for(
            "the whole message in the open document",
            TASK_WAIT,
            |state| {
                let text = state.text(&uri)?;
                (text.contains(&expected) && text.contains("#1: Start flooding → allowed once"))
                    .then_some(())
            },
        )
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", harness.client.text(&uri)));
    let text = harness.agreed_text(&uri).await;
    assert!(text.contains("#1: Start flooding → allowed once"), "{text}");
    assert!(harness.client.state().problems.is_empty());
    harness.finish().await;
}

/// A `baton:` marker line offers its instruction as a task for the default agent (how Zed users
/// start one); the agent's change to that very file lands in the open buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_code_action_starts_a_task_with_the_default_agent() {
    let script = json!({ "turns": [[
        { "type": "write", "path": "notes.md", "content": "notes\nmore notes\n" },
        { "type": "message", "text": "Added a line." },
    ]] });
    let harness = start(ClientProfile::Neovim, script, json!({})).await;
    let notes = harness.uri_of("notes.md");
    harness
        .client
        .open(&notes, "markdown", "<!-- baton: add a line -->\nnotes\n")
        .await;
    let actions = harness
        .code_actions(&notes, ((0, 0), (0, 0)), json!([]))
        .await;
    let action = crate::support::find_action(&actions, "baton (agent scripted): task: add a line");
    assert_eq!(action["command"]["command"], "baton.task");
    let token = harness.run_action(action).await;
    let events = harness.job_end(&token).await;
    assert_eq!(Harness::end_message(&events), "done");
    // The shadow held the buffer's text (marker line included); the agent's version drops the
    // marker and adds a line, and the user changed nothing meanwhile, so it lands whole.
    assert_eq!(harness.agreed_text(&notes).await, "notes\nmore notes\n");
    assert_eq!(
        std::fs::read_to_string(harness.root.join("notes.md")).unwrap(),
        NOTES,
        "the disk is untouched"
    );
    harness.finish().await;
}

/// A task whose agent has gone gives its shadow back: more tasks than there are shadow slots
/// (16) run one after another in one session, each seeded and landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_tasks_give_their_shadow_back() {
    let script = json!({ "turns": [[
        { "type": "message", "text": "done here" },
        { "type": "crash", "code": 0 },
    ]] });
    let harness = start(ClientProfile::Neovim, script, json!({})).await;
    for round in 0..18 {
        let (_, token) = start_task(&harness, &format!("round {round}")).await;
        let end = progress_end(&harness, &token, TASK_WAIT).await;
        // The agent exits with its turn unanswered: the turn fails, the task is over.
        assert!(end.starts_with("failed"), "round {round}: {end}");
        let messages = harness.client.state().show_messages;
        assert!(
            !messages
                .iter()
                .any(|message| message.message.contains("already in use")),
            "round {round}: {messages:?}"
        );
    }
    harness.finish().await;
}
