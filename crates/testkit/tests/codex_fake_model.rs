//! The real `codex exec`, `codex app-server` and `codex-acp` against the fake model: proof that the fake's
//! Responses items (an `apply_patch` custom tool call, an `exec_command` function call,
//! `response.failed`) and `testkit::codex::CodexHome` are what codex 0.171.0 and codex-acp
//! 0.16.0 accept. Each test skips without its binary unless `BATON_REQUIRE_CODEX=1`.
//!
//! The repositories live under `/tmp` on purpose (agents are pointed at such directories);
//! the `CODEX_HOME` must not (see `CodexHome`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use testkit::codex::{CodexHome, require_codex, require_codex_acp};
use testkit::fake_model::{FakeModel, Fault, Item, Reply, patch};

/// A scratch directory under the system temp dir with a git repository (`repo/`, one commit
/// of `hello.txt`), removed on drop.
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
    let home = CodexHome::scratch(&fake.base_url()).unwrap();
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
        "hello, baton\n",
        "{types:?}\n{}",
        run.stderr
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

/// A codex-acp child spoken to in raw JSON-RPC lines.
struct Acp {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// Every message received, in order.
    received: Vec<serde_json::Value>,
}

impl Acp {
    async fn send(&mut self, message: serde_json::Value) {
        use tokio::io::AsyncWriteExt;
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
    }

    /// Reads until the response to `id`, allowing every permission request once.
    async fn call(
        &mut self,
        id: u64,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        self.send(
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
        .await;
        loop {
            let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer in 60 s: {:#?}", self.received))
                .unwrap()
                .unwrap_or_else(|| panic!("codex-acp closed stdout: {:#?}", self.received));
            let message: serde_json::Value = serde_json::from_str(&line).unwrap();
            self.received.push(message.clone());
            if message["method"] == "session/request_permission" {
                let option = message["params"]["options"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|o| o["kind"] == "allow_once")
                    .unwrap()["optionId"]
                    .clone();
                let answer = serde_json::json!({"jsonrpc": "2.0", "id": message["id"],
                    "result": {"outcome": {"outcome": "selected", "optionId": option}}});
                self.send(answer).await;
            } else if message["id"] == id && message.get("method").is_none() {
                return message;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_acp_applies_a_scripted_patch() {
    use tokio::io::AsyncBufReadExt;
    let Some(codex_acp) = require_codex_acp() else {
        return;
    };
    let scratch = Scratch::new("codex-acp-patch");
    let fake = FakeModel::start().await;
    let home = CodexHome::scratch(&fake.base_url()).unwrap();
    let the_patch = patch::wrap(&[patch::update("hello.txt", None, "hello", "hello, acp")]);
    fake.push(Reply::items(vec![Item::apply_patch(the_patch)]));
    fake.push(Reply::items(vec![Item::message("Patched.")]));

    // codex-acp's writable root is its process cwd, and it needs bwrap on PATH (home.env()).
    let mut child = tokio::process::Command::new(&codex_acp)
        .current_dir(scratch.repo())
        .envs(home.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acp = Acp {
        child,
        stdin,
        lines,
        received: Vec::new(),
    };

    let init = acp
        .call(
            1,
            "initialize",
            serde_json::json!({"protocolVersion": 1,
            "clientCapabilities": {"fs": {"readTextFile": false, "writeTextFile": false},
                                   "terminal": false}}),
        )
        .await;
    assert_eq!(init["result"]["protocolVersion"], 1, "{init}");
    let session = acp
        .call(
            2,
            "session/new",
            serde_json::json!({"cwd": scratch.repo(), "mcpServers": []}),
        )
        .await;
    let session_id = session["result"]["sessionId"].clone();
    assert!(session_id.is_string(), "{session}");
    let mode = acp
        .call(
            3,
            "session/set_mode",
            serde_json::json!({"sessionId": session_id, "modeId": "auto"}),
        )
        .await;
    assert!(mode.get("error").is_none(), "{mode}");
    let prompt = acp
        .call(
            4,
            "session/prompt",
            serde_json::json!({"sessionId": session_id,
            "prompt": [{"type": "text", "text": "patch hello"}]}),
        )
        .await;
    assert_eq!(prompt["result"]["stopReason"], "end_turn", "{prompt}");

    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("hello.txt")).unwrap(),
        "hello, acp\n",
        "{:#?}",
        acp.received
    );
    let updates: Vec<&serde_json::Value> = acp
        .received
        .iter()
        .filter(|m| m["method"] == "session/update")
        .map(|m| &m["params"]["update"])
        .collect();
    let edit = updates
        .iter()
        .find(|u| u["sessionUpdate"] == "tool_call" && u["kind"] == "edit")
        .expect("an edit tool call");
    assert!(
        updates
            .iter()
            .any(|u| u["sessionUpdate"] == "tool_call_update"
                && u["toolCallId"] == edit["toolCallId"]
                && u["status"] == "completed")
    );
    let text: String = updates
        .iter()
        .filter(|u| u["sessionUpdate"] == "agent_message_chunk")
        .filter_map(|u| u["content"]["text"].as_str())
        .collect();
    assert_eq!(text, "Patched.");
    assert_eq!(fake.requests().len(), 2);
    // It does not exit on stdin EOF: kill it.
    acp.child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_app_server_reports_and_applies_a_scripted_patch() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let Some(codex) = require_codex() else { return };
    let scratch = Scratch::new("codex-app-server");
    let fake = FakeModel::start().await;
    let home = CodexHome::scratch(&fake.base_url()).unwrap();
    let the_patch = patch::wrap(&[
        patch::update("hello.txt", None, "hello", "hello, app-server"),
        patch::add("added.txt", "new file"),
    ]);
    fake.push(Reply::items(vec![Item::apply_patch(the_patch)]));
    fake.push(Reply::items(vec![Item::message("Patched.")]));

    let mut child = tokio::process::Command::new(&codex)
        .arg("app-server")
        .envs(home.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut received: Vec<serde_json::Value> = Vec::new();
    // app-server lines carry no "jsonrpc" field.
    let requests = [
        serde_json::json!({"id": 1, "method": "initialize",
                           "params": {"clientInfo": {"name": "testkit", "version": "0"}}}),
        serde_json::json!({"method": "initialized"}),
        serde_json::json!({"id": 2, "method": "thread/start",
                           "params": {"cwd": scratch.repo(), "approvalPolicy": "never",
                                      "sandbox": "workspace-write", "ephemeral": true}}),
    ];
    for request in requests {
        stdin
            .write_all(format!("{request}\n").as_bytes())
            .await
            .unwrap();
    }
    let mut thread_id = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no turn/completed in 60 s: {received:#?}"))
            .unwrap()
            .expect("app-server kept stdout open");
        let message: serde_json::Value = serde_json::from_str(&line).unwrap();
        received.push(message.clone());
        if message["id"] == 2 && message.get("method").is_none() {
            let id = message["result"]["thread"]["id"].clone();
            assert!(id.is_string(), "{message}");
            let turn = serde_json::json!({"id": 3, "method": "turn/start", "params":
                {"threadId": id, "input": [{"type": "text", "text": "patch it"}]}});
            stdin
                .write_all(format!("{turn}\n").as_bytes())
                .await
                .unwrap();
            thread_id = Some(id);
        }
        if message["method"] == "turn/completed" {
            break;
        }
    }
    assert!(thread_id.is_some());
    let completed = received.last().unwrap();
    assert_eq!(
        completed["params"]["turn"]["status"], "completed",
        "{completed}"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("hello.txt")).unwrap(),
        "hello, app-server\n"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("added.txt")).unwrap(),
        "new file\n"
    );
    let change = received
        .iter()
        .find(|m| m["method"] == "item/completed" && m["params"]["item"]["type"] == "fileChange")
        .expect("a fileChange item");
    let changes = change["params"]["item"]["changes"].as_array().unwrap();
    let hello = changes
        .iter()
        .find(|c| c["path"].as_str().unwrap().ends_with("/hello.txt"))
        .unwrap();
    assert_eq!(hello["kind"]["type"], "update");
    assert_eq!(hello["diff"], "@@ -1 +1 @@\n-hello\n+hello, app-server\n");
    let message = received
        .iter()
        .find(|m| m["method"] == "item/completed" && m["params"]["item"]["type"] == "agentMessage")
        .expect("the final message");
    assert_eq!(message["params"]["item"]["text"], "Patched.");
    // It exits when stdin closes.
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("app-server exits on EOF")
        .unwrap();
    assert!(status.success(), "{status}");
}
