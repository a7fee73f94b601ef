//! The real `codex exec` against the fake model: proof that the fake's Responses items (an
//! `apply_patch` custom tool call, an `exec_command` function call, `response.failed`) and
//! `testkit::codex::CodexHome` are what codex 0.171.0 accepts. Skips without codex unless
//! `BATON_REQUIRE_CODEX=1`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use testkit::codex::{CodexHome, require_codex};
use testkit::fake_model::{FakeModel, Fault, Item, Reply, patch};

/// A scratch directory with a git repository (`repo/`, one commit of `hello.txt`) and room for
/// a `CODEX_HOME` (`home/`), removed on drop.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let root = std::env::temp_dir().join(format!(
            "baton-testkit-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let repo = root.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::write(repo.join("hello.txt"), "hello\n").unwrap();
        for args in [
            &["init", "-q"][..],
            &["add", "."],
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "commit",
                "-qm",
                "seed",
            ],
        ] {
            let status = std::process::Command::new("git")
                .args(args)
                .current_dir(&repo)
                .status()
                .expect("git runs");
            assert!(status.success(), "git {args:?}");
        }
        Scratch { root }
    }

    fn repo(&self) -> PathBuf {
        self.root.join("repo")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

struct ExecRun {
    success: bool,
    /// The `--json` event lines.
    events: Vec<serde_json::Value>,
    stderr: String,
}

/// Runs `codex exec --json` in `repo` with the workspace-write sandbox, against `fake`.
async fn codex_exec(codex: &Path, scratch: &Scratch, fake: &FakeModel, prompt: &str) -> ExecRun {
    let home = CodexHome::new(scratch.root.join("home"), &fake.base_url()).unwrap();
    let mut command = tokio::process::Command::new(codex);
    command
        .args([
            "exec",
            "--json",
            "--ephemeral",
            "-s",
            "workspace-write",
            "-C",
        ])
        .arg(scratch.repo())
        .arg(prompt)
        .envs(home.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("codex exec finished within 120 s")
        .expect("codex exec ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    ExecRun {
        success: output.status.success(),
        events: stdout
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn event_types(run: &ExecRun) -> Vec<String> {
    run.events
        .iter()
        .map(|event| {
            let kind = event["type"].as_str().unwrap_or("?");
            match event["item"]["type"].as_str() {
                Some(item) => format!("{kind}:{item}"),
                None => kind.to_string(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_exec_applies_a_scripted_patch() {
    let Some(codex) = require_codex() else { return };
    let scratch = Scratch::new("codex-patch");
    let fake = FakeModel::start().await;
    let the_patch = patch::wrap(&[
        patch::update("hello.txt", None, "hello", "hello, baton"),
        patch::add("notes/new.txt", "created by the fake model"),
    ]);
    fake.push(Reply::items(vec![
        Item::message("Editing hello.txt."),
        Item::apply_patch(the_patch.clone()),
    ]));
    fake.push(Reply::items(vec![Item::message(
        "Done: I edited the files.",
    )]));

    let run = codex_exec(&codex, &scratch, &fake, "edit hello").await;
    let types = event_types(&run);
    assert!(run.success, "codex exec failed: {types:?}\n{}", run.stderr);

    let repo = scratch.repo();
    assert_eq!(
        std::fs::read_to_string(repo.join("hello.txt")).unwrap(),
        "hello, baton\n"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("notes/new.txt")).unwrap(),
        "created by the fake model\n"
    );
    assert!(
        types.contains(&"item.completed:file_change".to_string()),
        "{types:?}"
    );
    let messages: Vec<&str> = run
        .events
        .iter()
        .filter(|e| e["item"]["type"] == "agent_message" && e["type"] == "item.completed")
        .filter_map(|e| e["item"]["text"].as_str())
        .collect();
    assert_eq!(
        messages,
        ["Editing hello.txt.", "Done: I edited the files."],
        "{types:?}"
    );

    // Codex asked once, offered apply_patch as a custom tool, and came back with its output.
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "{types:?}");
    assert_eq!(requests[0].body["model"], "gpt-5.5");
    assert!(
        requests[0].body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tool| tool["type"] == "custom" && tool["name"] == "apply_patch")
    );
    let calls = requests[1].input_items("custom_tool_call");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["input"], the_patch.as_str());
    let outputs = requests[1].input_items("custom_tool_call_output");
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["call_id"], calls[0]["call_id"]);
    let output = outputs[0]["output"].to_string();
    assert!(output.contains("Success"), "{output}");
    assert_eq!(fake.pending_replies(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_exec_runs_a_scripted_command() {
    let Some(codex) = require_codex() else { return };
    let scratch = Scratch::new("codex-exec");
    let fake = FakeModel::start().await;
    fake.push(Reply::items(vec![Item::exec(
        "printf 'from shell' > shell.txt",
    )]));
    fake.push(Reply::items(vec![Item::message("Ran it.")]));

    let run = codex_exec(&codex, &scratch, &fake, "run it").await;
    let types = event_types(&run);
    assert!(run.success, "codex exec failed: {types:?}\n{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("shell.txt")).unwrap(),
        "from shell"
    );
    assert!(
        types.contains(&"item.completed:command_execution".to_string()),
        "{types:?}"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let outputs = requests[1].input_items("function_call_output");
    assert_eq!(outputs.len(), 1);
    assert_eq!(
        outputs[0]["call_id"],
        requests[1].input_items("function_call")[0]["call_id"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_exec_reports_a_failed_response_without_retrying() {
    let Some(codex) = require_codex() else { return };
    let scratch = Scratch::new("codex-failed");
    let fake = FakeModel::start().await;
    fake.push(
        Reply::items(vec![Item::message("partial")])
            .fault(Fault::ResponseFailed("fake response.failed".into())),
    );

    let run = codex_exec(&codex, &scratch, &fake, "fail").await;
    let types = event_types(&run);
    assert!(
        types.iter().any(|t| t == "turn.failed" || t == "error"),
        "{types:?}\n{}",
        run.stderr
    );
    let all = serde_json::to_string(&run.events).unwrap();
    assert!(all.contains("fake response.failed"), "{all}");
    // Retries are off in CodexHome: one scripted failure is one request.
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("hello.txt")).unwrap(),
        "hello\n"
    );
}
