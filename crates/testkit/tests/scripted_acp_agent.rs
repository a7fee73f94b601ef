//! The `scripted-acp-agent` binary driven over raw JSON lines, as an ACP client would: every
//! kind of step, the answers it records, and its process behaviour (crash, hang, EOF, SIGTERM).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const AGENT: &str = env!("CARGO_BIN_EXE_scripted-acp-agent");
const WAIT: Duration = Duration::from_secs(20);

/// A scratch directory: `work/` is the agent's workspace, `outside/` lies beside it.
struct Dirs {
    root: PathBuf,
}

impl Dirs {
    fn new(name: &str) -> Dirs {
        let root = std::env::temp_dir().join(format!(
            "baton-scripted-agent-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("work")).unwrap();
        std::fs::create_dir_all(root.join("outside")).unwrap();
        Dirs { root }
    }

    fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    fn outside(&self) -> PathBuf {
        self.root.join("outside")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The agent as a child process, with its stdout read on a thread.
struct Agent {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    session: String,
}

impl Agent {
    fn spawn(dirs: &Dirs, script: Value) -> Agent {
        let script_path = dirs.file("script.json");
        std::fs::write(&script_path, script.to_string()).unwrap();
        let mut child = Command::new(AGENT)
            .current_dir(dirs.work())
            .env("SCRIPTED_AGENT_SCRIPT", &script_path)
            .env("SCRIPTED_AGENT_LOG", dirs.file("received.log"))
            .env("SCRIPTED_AGENT_PID_FILE", dirs.file("agent.pid"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                line.clear();
                if sender.send(text).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Agent {
            child,
            stdin,
            lines,
            session: String::new(),
        }
    }

    fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn send(&mut self, message: Value) {
        self.send_raw(&message.to_string());
    }

    /// The next line, parsed; `None` when stdout closed.
    fn next(&mut self) -> Option<Value> {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => Some(serde_json::from_str(&line).unwrap_or(Value::String(line))),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!("the agent said nothing for {WAIT:?}"),
        }
    }

    /// Sends a request and collects everything up to its response, answering the agent's own
    /// requests with `answer`.
    fn call(
        &mut self,
        id: u64,
        method: &str,
        params: Value,
        mut answer: impl FnMut(&Value) -> Value,
    ) -> (Value, Vec<Value>) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut seen = Vec::new();
        loop {
            let message = self
                .next()
                .unwrap_or_else(|| panic!("agent exited during {method}: {seen:#?}"));
            if message["id"] == id && message.get("method").is_none() {
                return (message, seen);
            }
            if message.get("method").is_some() && message.get("id").is_some() {
                let result = answer(&message);
                self.send(json!({"jsonrpc": "2.0", "id": message["id"], "result": result}));
            }
            seen.push(message);
        }
    }

    /// `initialize` and `session/new` in `cwd`.
    fn open(&mut self, cwd: &Path) {
        let (init, _) = self.call(
            1,
            "initialize",
            json!({"protocolVersion": 1, "clientCapabilities":
                   {"fs": {"readTextFile": true, "writeTextFile": true}}}),
            |_| Value::Null,
        );
        assert_eq!(init["result"]["protocolVersion"], 1);
        let (new, _) = self.call(
            2,
            "session/new",
            json!({"cwd": cwd, "mcpServers": []}),
            |_| Value::Null,
        );
        assert_eq!(new["result"]["modes"]["currentModeId"], "read-only");
        self.session = new["result"]["sessionId"].as_str().unwrap().to_string();
    }

    fn prompt(
        &mut self,
        id: u64,
        text: &str,
        answer: impl FnMut(&Value) -> Value,
    ) -> (Value, Vec<Value>) {
        let params = json!({"sessionId": self.session, "prompt": [{"type": "text", "text": text}]});
        self.call(id, "session/prompt", params, answer)
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit; `None` if it is still running after `timeout`.
    fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn updates(messages: &[Value]) -> Vec<&Value> {
    messages
        .iter()
        .filter(|m| m["method"] == "session/update")
        .map(|m| &m["params"]["update"])
        .collect()
}

fn received_log(dirs: &Dirs) -> Vec<String> {
    std::fs::read_to_string(dirs.file("received.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_turn_with_plan_edits_permission_and_client_files() {
    let dirs = Dirs::new("turn");
    std::fs::write(dirs.work().join("old.txt"), "old\n").unwrap();
    std::fs::write(dirs.work().join("gone.txt"), "bye\n").unwrap();
    let mut agent = Agent::spawn(
        &dirs,
        json!({"turns": [[
            {"type": "plan", "entries": [{"content": "Edit a.txt", "status": "in_progress"},
                                         {"content": "Tidy"}]},
            {"type": "message", "text": "Working."},
            {"type": "write", "path": "src/a.txt", "content": "A\n"},
            {"type": "rename", "from": "old.txt", "to": "new.txt"},
            {"type": "delete", "path": "gone.txt"},
            {"type": "permission", "title": "Edit b.txt", "path": "b.txt",
             "allowed": [{"type": "write", "path": "b.txt", "content": "B\n"}]},
            {"type": "read_file", "path": "src/a.txt", "line": 1, "limit": 5},
            {"type": "client_write", "path": "c.txt", "content": "C\n"},
            {"type": "exec", "command": "printf shell > sh.txt", "complete": true},
        ]]}),
    );
    agent.open(&dirs.work());
    let (mode, _) = agent.call(
        3,
        "session/set_mode",
        json!({"sessionId": agent.session, "modeId": "auto"}),
        |_| Value::Null,
    );
    assert_eq!(mode["result"], json!({}));

    let mut asked = Vec::new();
    let (answer, seen) = agent.prompt(4, "go", |request| {
        asked.push(request.clone());
        match request["method"].as_str().unwrap() {
            "session/request_permission" => {
                json!({"outcome": {"outcome": "selected", "optionId": "allow-once"}})
            }
            "fs/read_text_file" => json!({"content": "unsaved buffer text"}),
            _ => Value::Null,
        }
    });
    assert_eq!(answer["result"]["stopReason"], "end_turn");

    let work = dirs.work();
    assert_eq!(
        std::fs::read_to_string(work.join("src/a.txt")).unwrap(),
        "A\n"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("new.txt")).unwrap(),
        "old\n"
    );
    assert!(!work.join("old.txt").exists() && !work.join("gone.txt").exists());
    assert_eq!(std::fs::read_to_string(work.join("b.txt")).unwrap(), "B\n");
    assert_eq!(
        std::fs::read_to_string(work.join("sh.txt")).unwrap(),
        "shell"
    );
    // client_write goes through the client only.
    assert!(!work.join("c.txt").exists());

    let updates = updates(&seen);
    let kinds: Vec<&str> = updates
        .iter()
        .map(|u| u["sessionUpdate"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "plan",
            "agent_message_chunk",
            "tool_call",
            "tool_call_update",
            "tool_call",
            "tool_call_update",
            "tool_call",
            "tool_call_update",
            "tool_call",
            "tool_call_update",
            "tool_call",
            "tool_call_update",
        ]
    );
    assert_eq!(updates[0]["entries"][0]["status"], "in_progress");
    assert_eq!(updates[0]["entries"][1]["status"], "pending");
    assert_eq!(updates[0]["entries"][1]["priority"], "medium");
    let write = updates[2];
    assert_eq!(write["kind"], "edit");
    assert_eq!(write["status"], "in_progress");
    let a_path = work.join("src/a.txt");
    assert_eq!(
        write["content"],
        json!([{"type": "diff", "path": a_path, "newText": "A\n"}])
    );
    assert_eq!(updates[3]["toolCallId"], write["toolCallId"]);
    assert_eq!(updates[3]["status"], "completed");
    let moved = &updates[4]["content"][0];
    assert_eq!(moved["path"], json!(work.join("new.txt")));
    assert_eq!(moved["oldText"], "old\n");
    let deleted = &updates[6]["content"][0];
    assert_eq!(
        (&deleted["oldText"], &deleted["newText"]),
        (&json!("bye\n"), &json!(""))
    );
    assert_eq!(updates[10]["kind"], "execute");
    assert_eq!(updates[11]["content"][0]["content"]["text"], "");

    // What the agent asked the client, in order, with absolute paths.
    let methods: Vec<&str> = asked
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "session/request_permission",
            "fs/read_text_file",
            "fs/write_text_file"
        ]
    );
    let options: Vec<&str> = asked[0]["params"]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(options, ["allow_once", "allow_always", "reject_once"]);
    assert_eq!(asked[1]["params"]["path"], json!(a_path));
    assert_eq!(asked[1]["params"]["line"], 1);
    assert_eq!(asked[2]["params"]["content"], "C\n");

    // The log holds every line the agent received, the client's answers included.
    let log = received_log(&dirs);
    assert!(log[0].contains("\"initialize\""));
    assert!(log.iter().any(|l| l.contains("unsaved buffer text")));
    assert!(log.iter().any(|l| l.contains("allow-once")));
    let pid: u32 = std::fs::read_to_string(dirs.file("agent.pid"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(pid, agent.child.id());

    // Exits on EOF by default.
    agent.close_stdin();
    assert!(agent.wait_exit(WAIT).unwrap().success());
}

#[test]
fn rejection_and_cancel_end_turns_cancelled() {
    let dirs = Dirs::new("cancel");
    let mut agent = Agent::spawn(
        &dirs,
        json!({"turns": [
            [{"type": "permission", "title": "Edit x"},
             {"type": "write", "path": "x.txt", "content": "x"}],
            [{"type": "message", "text": "sleeping"},
             {"type": "sleep", "ms": 30000},
             {"type": "write", "path": "y.txt", "content": "y"}],
            [{"type": "permission", "rejected": [{"type": "message", "text": "ok, not then"}]},
             {"type": "end", "stop_reason": "max_tokens"}],
        ]}),
    );
    agent.open(&dirs.work());
    let (answer, _) = agent.prompt(
        3,
        "one",
        |_| json!({"outcome": {"outcome": "selected", "optionId": "reject-once"}}),
    );
    assert_eq!(answer["result"]["stopReason"], "cancelled");
    assert!(!dirs.work().join("x.txt").exists());

    let session = agent.session.clone();
    agent.send(
        json!({"jsonrpc": "2.0", "id": 4, "method": "session/prompt", "params":
                      {"sessionId": session, "prompt": [{"type": "text", "text": "two"}]}}),
    );
    let first = agent.next().unwrap();
    assert_eq!(first["params"]["update"]["content"]["text"], "sleeping");
    let cancelled_at = Instant::now();
    agent.send(json!({"jsonrpc": "2.0", "method": "session/cancel",
                      "params": {"sessionId": session}}));
    let answer = agent.next().unwrap();
    assert_eq!(answer["id"], 4);
    assert_eq!(answer["result"]["stopReason"], "cancelled");
    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    assert!(!dirs.work().join("y.txt").exists());

    // A rejection with `rejected` steps goes on; `end` picks the stop reason.
    let (answer, seen) = agent.prompt(
        5,
        "three",
        |_| json!({"outcome": {"outcome": "selected", "optionId": "reject-once"}}),
    );
    assert_eq!(answer["result"]["stopReason"], "max_tokens");
    assert_eq!(updates(&seen)[0]["content"]["text"], "ok, not then");
}

#[test]
fn misbehaviour_outside_writes_malformed_lines_floods_and_a_crash() {
    let dirs = Dirs::new("misbehave");
    std::os::unix::fs::symlink(dirs.outside(), dirs.work().join("escape")).unwrap();
    let outside_abs = dirs.outside().join("abs.txt");
    let mut agent = Agent::spawn(
        &dirs,
        json!({"turns": [[
            {"type": "write", "path": outside_abs, "content": "abs"},
            {"type": "write", "path": "../outside/dotdot.txt", "content": "dotdot"},
            {"type": "symlink", "path": "link", "target": dirs.outside()},
            {"type": "write", "path": "link/through.txt", "content": "through"},
            {"type": "write", "path": "quiet.txt", "content": "q", "report": false},
            {"type": "malformed", "kind": "invalid_json"},
            {"type": "malformed", "kind": "not_an_object"},
            {"type": "malformed", "kind": "wrong_types"},
            {"type": "malformed", "kind": "unknown_notification"},
            {"type": "raw", "line": "{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":\"unasked\"}"},
            {"type": "flood", "count": 2000},
            {"type": "message", "text": "still here"},
        ], [
            {"type": "message", "text": "about to crash"},
            {"type": "crash", "code": 3},
        ]]}),
    );
    agent.open(&dirs.work());
    let (answer, seen) = agent.prompt(3, "misbehave", |_| Value::Null);
    assert_eq!(answer["result"]["stopReason"], "end_turn");
    for (file, content) in [
        ("abs.txt", "abs"),
        ("dotdot.txt", "dotdot"),
        ("through.txt", "through"),
    ] {
        assert_eq!(
            std::fs::read_to_string(dirs.outside().join(file)).unwrap(),
            content
        );
    }
    assert_eq!(
        std::fs::read_link(dirs.work().join("link")).unwrap(),
        dirs.outside()
    );
    assert_eq!(
        std::fs::read_to_string(dirs.work().join("quiet.txt")).unwrap(),
        "q"
    );
    // The reported paths are as the agent wrote them, `..` included.
    let paths: Vec<&str> = updates(&seen)
        .iter()
        .filter(|u| u["sessionUpdate"] == "tool_call")
        .filter_map(|u| u["content"][0]["path"].as_str())
        .collect();
    assert_eq!(paths.len(), 3, "the quiet write is not reported");
    assert!(paths[1].ends_with("work/../outside/dotdot.txt"));
    // The malformed lines came through as they are.
    let raw: Vec<&str> = seen.iter().filter_map(Value::as_str).collect();
    assert!(raw.iter().any(|l| l.ends_with("\"sessionId\":")), "{raw:?}");
    assert!(seen.contains(&json!([1, 2, 3])));
    assert!(seen.iter().any(|m| m["method"] == "scripted/unknown"));
    assert!(
        seen.iter()
            .any(|m| m["id"] == 99 && m["result"] == "unasked")
    );
    assert!(updates(&seen).iter().any(|u| u["content"] == 42));
    let flood = updates(&seen)
        .iter()
        .filter(|u| u["sessionUpdate"] == "agent_message_chunk" && u["content"]["text"].is_string())
        .count();
    assert_eq!(flood, 2001);

    // The second prompt crashes mid-turn: a message, then stdout closes unanswered.
    let session = agent.session.clone();
    agent.send(
        json!({"jsonrpc": "2.0", "id": 4, "method": "session/prompt", "params":
                      {"sessionId": session, "prompt": [{"type": "text", "text": "crash"}]}}),
    );
    assert_eq!(
        agent.next().unwrap()["params"]["update"]["content"]["text"],
        "about to crash"
    );
    assert_eq!(agent.next(), None);
    assert_eq!(agent.wait_exit(WAIT).unwrap().code(), Some(3));
}

#[test]
fn bad_client_messages_get_errors_and_prompt_text_picks_steps() {
    let dirs = Dirs::new("errors");
    let mut agent = Agent::spawn(
        &dirs,
        json!({"by_prompt": {"fail": [{"type": "error", "message": "model exploded"}]}}),
    );
    agent.send_raw("this is not json");
    let parse_error = agent.next().unwrap();
    assert_eq!(parse_error["error"]["code"], -32700);
    assert_eq!(parse_error["id"], Value::Null);
    let (unknown, _) = agent.call(1, "session/load", json!({}), |_| Value::Null);
    assert_eq!(unknown["error"]["code"], -32601);
    let (relative, _) = agent.call(2, "session/new", json!({"cwd": "rel"}), |_| Value::Null);
    assert_eq!(relative["error"]["code"], -32602);
    agent.open(&dirs.work());
    let (bad_mode, _) = agent.call(
        3,
        "session/set_mode",
        json!({"sessionId": agent.session, "modeId": "yolo"}),
        |_| Value::Null,
    );
    assert_eq!(bad_mode["error"]["code"], -32602);
    let (failed, _) = agent.prompt(4, "fail", |_| Value::Null);
    assert_eq!(failed["error"]["code"], -32603);
    assert_eq!(failed["error"]["data"]["message"], "model exploded");
    // Not in by_prompt and past the (empty) turns: no steps, end_turn.
    let (plain, seen) = agent.prompt(5, "anything", |_| Value::Null);
    assert_eq!(plain["result"]["stopReason"], "end_turn");
    assert!(seen.is_empty());
    let (wrong_session, _) = agent.call(
        6,
        "session/prompt",
        json!({"sessionId": "nope", "prompt": []}),
        |_| Value::Null,
    );
    assert_eq!(wrong_session["error"]["code"], -32602);
}

#[test]
fn ignoring_eof_and_sigterm_and_hanging() {
    let dirs = Dirs::new("stubborn");
    let mut agent = Agent::spawn(
        &dirs,
        json!({"exit_on_eof": false, "ignore_sigterm": true,
               "turns": [[{"type": "message", "text": "hanging"}, {"type": "hang"}]]}),
    );
    agent.open(&dirs.work());
    let session = agent.session.clone();
    agent.send(
        json!({"jsonrpc": "2.0", "id": 3, "method": "session/prompt", "params":
                      {"sessionId": session, "prompt": [{"type": "text", "text": "x"}]}}),
    );
    assert_eq!(
        agent.next().unwrap()["params"]["update"]["content"]["text"],
        "hanging"
    );
    agent.send(json!({"jsonrpc": "2.0", "method": "session/cancel",
                      "params": {"sessionId": session}}));
    let after_cancel = agent.lines.recv_timeout(Duration::from_millis(300));
    assert!(
        after_cancel.is_err(),
        "a hung agent answers nothing, not even a cancel: {after_cancel:?}"
    );
    // The cancel still reached the log.
    assert!(
        received_log(&dirs)
            .iter()
            .any(|l| l.contains("session/cancel"))
    );
    agent.close_stdin();
    assert!(
        agent.wait_exit(Duration::from_millis(300)).is_none(),
        "ignores EOF"
    );
    let status = Command::new("kill")
        .args(["-TERM", &agent.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        agent.wait_exit(Duration::from_millis(300)).is_none(),
        "ignores SIGTERM"
    );
    agent.child.kill().unwrap();
    assert!(agent.wait_exit(WAIT).is_some());
}

#[test]
fn an_idle_agent_that_ignores_eof_stays() {
    let dirs = Dirs::new("idle");
    let mut agent = Agent::spawn(&dirs, json!({"exit_on_eof": false}));
    agent.open(&dirs.work());
    agent.close_stdin();
    assert!(agent.wait_exit(Duration::from_millis(300)).is_none());
    // SIGTERM is not ignored unless the script says so.
    Command::new("kill")
        .args(["-TERM", &agent.child.id().to_string()])
        .status()
        .unwrap();
    assert!(agent.wait_exit(WAIT).is_some());
}

#[test]
fn binary_path_finds_the_built_binary() {
    let found = testkit::scripted_agent::binary_path();
    assert_eq!(
        found.canonicalize().unwrap(),
        Path::new(AGENT).canonicalize().unwrap()
    );
}
