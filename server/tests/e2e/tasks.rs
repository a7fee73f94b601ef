//! Agent tasks end to end: `baton.task` with the real `codex app-server` and `codex-acp` (npm,
//! pinned) driven by the fake model, and with testkit's scripted ACP agent for what real agents
//! cannot be made to do on demand. Every change must land in the client (buffers, created and
//! deleted files), never on the real working tree.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::codex::{CodexHome, scratch_root};
use testkit::fake_model::{Item, Reply, patch};
use testkit::lsp_client::{ClientProfile, file_uri};

use crate::support::{Harness, Options};

const LIB_ON_DISK: &str = "fn a() -> i32 {\n    1\n}\n\nfn b() -> i32 {\n    2\n}\n";
/// The user's unsaved buffer: a line added at the top that the disk does not have.
const LIB_UNSAVED: &str =
    "// the user's unsaved note\nfn a() -> i32 {\n    1\n}\n\nfn b() -> i32 {\n    2\n}\n";
const LIB_EXPECTED: &str =
    "// the user's unsaved note\nfn a() -> i32 {\n    1\n}\n\nfn b() -> i32 {\n    20\n}\n";
const OLD_TXT: &str = "to be deleted\n";
const NOTES: &str = "notes\n";
const NEW_RS: &str = "pub fn created() {}\n";

/// How long a whole task may take on a loaded 2-core machine with debug builds.
const TASK_WAIT: Duration = Duration::from_secs(120);

/// A home for the test (workspace, config, cache, baton's state) outside `/tmp`: shadows must
/// not live there, and codex's sandbox treats `/tmp` specially.
pub(crate) fn scratch_home() -> Arc<tempfile::TempDir> {
    let parent = scratch_root().join("e2e-tasks");
    std::fs::create_dir_all(&parent).unwrap();
    Arc::new(tempfile::tempdir_in(parent).expect("scratch dir"))
}

fn workspace_files() -> Vec<(&'static str, String)> {
    vec![
        ("src/lib.rs", LIB_ON_DISK.into()),
        ("old.txt", OLD_TXT.into()),
        ("notes.md", NOTES.into()),
    ]
}

/// The agent's settings for `harness.agents.<name>`.
pub(crate) fn agent_settings(kind: &str, command: Vec<String>, home: &CodexHome) -> Value {
    let env: serde_json::Map<String, Value> = home
        .env()
        .into_iter()
        .map(|(key, value)| {
            (
                key.to_string_lossy().into_owned(),
                Value::String(value.to_string_lossy().into_owned()),
            )
        })
        .collect();
    json!({ "kind": kind, "command": command, "env": env })
}

async fn start(profile: ClientProfile, agent: &str, settings: Value) -> Harness {
    let home = scratch_home();
    let state = home.path().join("state");
    Harness::with(Options {
        profile,
        settings: json!({ "harness": { "agent": agent, "agents": { agent: settings }, "grace_ms": 1000 } }),
        workspace_files: workspace_files(),
        home: Some(home),
        env: vec![("BATON_STATE_DIR".into(), state.to_string_lossy().into_owned())],
        ..Options::default()
    })
    .await
}

/// Starts a task and waits for its first turn to end; returns the command's answer and the
/// progress end message.
async fn run_task(harness: &Harness, instruction: &str) -> (Value, String) {
    let answer = harness
        .execute("baton.task", json!([{ "instruction": instruction }]))
        .await
        .expect("baton.task answers");
    let token = answer["job"].as_str().expect("a job token").to_string();
    harness
        .client
        .wait_for("the task's turn to end", TASK_WAIT, |state| {
            state.progress_ended(&token).then_some(())
        })
        .await
        .unwrap_or_else(|err| panic!("{err}\nserver log:\n{}", harness.log_lines_with("task")));
    let events = harness.client.state().progress[&token].clone();
    (answer, Harness::end_message(&events))
}

fn disk(root: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(root.join(name)).ok()
}

/// The real working tree is exactly as the test wrote it: the agent's changes went to the
/// editor only.
fn assert_disk_untouched(root: &Path) {
    assert_eq!(disk(root, "src/lib.rs").as_deref(), Some(LIB_ON_DISK));
    assert_eq!(disk(root, "old.txt").as_deref(), Some(OLD_TXT));
    assert_eq!(disk(root, "notes.md").as_deref(), Some(NOTES));
    assert_eq!(disk(root, "src/new.rs"), None);
}

fn task_document(answer: &Value) -> String {
    let uri = answer["document"].as_str().expect("a document uri");
    let path = testkit::lsp_client::uri_to_path(uri).expect("a file uri");
    std::fs::read_to_string(path).expect("the task document exists")
}

/// The patch codex applies: an update against the unsaved buffer's text (the shadow holds it),
/// a new file and a deleted one.
fn task_patch() -> String {
    let update = patch::update("src/lib.rs", None, "    2\n", "    20\n");
    let add = patch::add("src/new.rs", NEW_RS);
    let delete = patch::delete("old.txt");
    patch::wrap(&[update, add, delete])
}

async fn lands_everything_in_the_client(harness: Harness) {
    // Opened with text the disk does not have: unsaved changes.
    let lib = harness.uri_of("src/lib.rs");
    harness.client.open(&lib, "rust", LIB_UNSAVED).await;
    let (answer, end) =
        run_task(&harness, "make b return 20, add src/new.rs, delete old.txt").await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));

    // The open buffer got the agent's change with the user's unsaved line kept.
    assert_eq!(harness.agreed_text(&lib).await, LIB_EXPECTED);
    let state = harness.client.state();
    let new_uri = file_uri(&harness.root.join("src/new.rs"));
    let old_uri = file_uri(&harness.root.join("old.txt"));
    assert_eq!(state.files.get(&new_uri), Some(&Some(NEW_RS.to_string())));
    assert_eq!(state.files.get(&old_uri), Some(&None));
    assert!(state.problems.is_empty(), "{:?}", state.problems);
    assert_disk_untouched(&harness.root);

    // The task document was shown and tells what happened.
    assert!(
        state
            .show_documents
            .iter()
            .any(|shown| Some(shown["uri"].as_str().unwrap_or("")) == answer["document"].as_str()),
        "{:?}",
        state.show_documents
    );
    let document = task_document(&answer);
    for needle in [
        "make b return 20",
        "`src/lib.rs` modified (+1 -1) landed",
        "`src/new.rs` created (+1 -0) landed",
        "`old.txt` deleted (+0 -1) landed",
        "Done.",
    ] {
        assert!(
            document.contains(needle),
            "{needle:?} missing from\n{document}"
        );
    }
    harness.finish().await;
}

pub(crate) fn codex_home_for(harness_fake: &str) -> CodexHome {
    CodexHome::scratch(harness_fake).expect("a CODEX_HOME")
}

/// Runs the edit/create/delete task through a real agent binary: `kind` and `command` of its
/// `harness.agents.<name>` entry.
async fn real_agent_task(name: &str, kind: &str, command: Vec<String>) {
    // The fake model must exist before the agent's config names it: start the harness with a
    // placeholder, then point the agent at the fake through didChangeConfiguration.
    let harness = start(
        ClientProfile::Neovim,
        name,
        json!({ "kind": kind, "command": ["true"] }),
    )
    .await;
    let home = codex_home_for(&harness.fake.base_url());
    configure_agent(&harness, name, agent_settings(kind, command, &home)).await;
    harness
        .fake
        .push(Reply::items(vec![Item::apply_patch(task_patch())]));
    harness
        .fake
        .push(Reply::items(vec![Item::message("Done.")]));
    lands_everything_in_the_client(harness).await;
    drop(home);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_app_server_task_lands_edit_create_delete_in_the_clients_buffers() {
    let Some(codex) = testkit::codex::require_codex() else {
        return;
    };
    let command = vec![codex.to_string_lossy().into_owned(), "app-server".into()];
    real_agent_task("codex", "codex-app-server", command).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_acp_task_lands_edit_create_delete_in_the_clients_buffers() {
    let Some(codex_acp) = testkit::codex::require_codex_acp() else {
        return;
    };
    let command = vec![codex_acp.to_string_lossy().into_owned()];
    real_agent_task("codex-acp", "acp", command).await;
}

/// Sends the agent's settings as editor settings (`workspace/didChangeConfiguration`).
pub(crate) async fn configure_agent(harness: &Harness, name: &str, settings: Value) {
    harness.client.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": { "baton": { "harness": { "agents": { name: settings } } } } }),
    );
    // The ordered layer applies configuration before any later request.
    let _ = harness.execute("baton.status", json!([])).await;
}

/// `harness.agents.<name>.connect`: an app-server started elsewhere (`codex app-server --listen
/// ws://…`, here on 127.0.0.1 in a copy of the workspace standing for the remote machine). The
/// changes are landed from the protocol's diffs, applied to the files as the remote has them
/// (the disk) and merged with the user's unsaved buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_app_server_over_a_websocket_lands_from_the_reported_diffs() {
    let Some(codex) = testkit::codex::require_codex() else {
        return;
    };
    let harness = start(
        ClientProfile::Neovim,
        "remote",
        json!({ "kind": "codex-app-server", "command": ["true"] }),
    )
    .await;
    let home = codex_home_for(&harness.fake.base_url());
    // The remote machine's checkout: the workspace as committed (no unsaved text).
    let remote = harness.home.path().join("remote-checkout");
    for (name, text) in workspace_files() {
        let path = remote.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    let mut server = tokio::process::Command::new(&codex)
        .args(["app-server", "--listen", &url])
        .current_dir(&remote)
        .envs(home.env())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("codex app-server --listen starts");
    let deadline = tokio::time::Instant::now() + TASK_WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "app-server never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    configure_agent(
        &harness,
        "remote",
        json!({ "kind": "codex-app-server", "command": [], "connect": url,
                "remote_cwd": remote.to_string_lossy() }),
    )
    .await;
    harness
        .fake
        .push(Reply::items(vec![Item::apply_patch(task_patch())]));
    harness
        .fake
        .push(Reply::items(vec![Item::message("Done.")]));
    let lib = harness.uri_of("src/lib.rs");
    harness.client.open(&lib, "rust", LIB_UNSAVED).await;
    let (answer, end) =
        run_task(&harness, "make b return 20, add src/new.rs, delete old.txt").await;
    assert_eq!(end, "done", "log:\n{}", harness.log_lines_with("task"));
    assert_eq!(harness.agreed_text(&lib).await, LIB_EXPECTED);
    let state = harness.client.state();
    assert_eq!(
        state.files.get(&file_uri(&harness.root.join("src/new.rs"))),
        Some(&Some(NEW_RS.to_string()))
    );
    assert_eq!(
        state.files.get(&file_uri(&harness.root.join("old.txt"))),
        Some(&None)
    );
    assert_disk_untouched(&harness.root);
    // The remote wrote its own copy, not the local workspace.
    assert_eq!(
        std::fs::read_to_string(remote.join("src/new.rs")).unwrap(),
        NEW_RS
    );
    let document = task_document(&answer);
    assert!(
        document.contains("`src/lib.rs` modified (+1 -1) landed"),
        "{document}"
    );
    server.kill().await.unwrap();
    harness.finish().await;
    drop(home);
}
