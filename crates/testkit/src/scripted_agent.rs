//! A scripted ACP agent: the logic of the `scripted-acp-agent` binary, which speaks the Agent
//! Client Protocol (JSON-RPC 2.0, one JSON object per line) as an agent over stdio and does,
//! for each `session/prompt`, exactly what a JSON script says, including the things a real agent
//! does wrong (crashing, hanging, malformed lines, floods, writes outside the workspace).
//!
//! The JSON-RPC is written by hand with `serde_json`, not through an ACP SDK, so the agent can
//! send what an SDK would refuse to. Field names follow `agent-client-protocol-schema` 1.17
//! and the codex-acp 0.16.0 transcripts in `../shared/harness/transcripts/acp/`.
//!
//! # Protocol surface
//!
//! - `initialize` → protocol version 1, no `loadSession`, no auth methods.
//! - `session/new {cwd}` → `sessionId` `scripted-session-N` and the script's `modes` (default
//!   codex-acp's: `read-only`, `auto`, `full-access`; current `read-only`). `cwd` must be
//!   absolute.
//! - `session/set_mode {sessionId, modeId}` → `{}` (a mode it did not advertise, or an unknown
//!   session: error -32602). The `log` shows which mode a client chose.
//! - `session/prompt` → runs the turn's steps, then answers `{"stopReason": …}`.
//! - `session/cancel` (notification) → the running turn stops at the next step boundary (or at
//!   once during a `sleep`) and the prompt answers `cancelled`.
//! - Any other request gets -32601; a line that is not JSON gets a -32700 error with id null.
//!
//! # The script
//!
//! The binary reads a JSON file named by the environment variable `SCRIPTED_AGENT_SCRIPT` (no
//! variable: every prompt just ends with `end_turn`). Top-level fields, all optional:
//!
//! - `turns`: a list of turns, each a list of steps; the N-th `session/prompt` of the process
//!   runs `turns[N]`, and prompts past the end run no steps;
//! - `by_prompt`: an object mapping a prompt's exact text to its steps; it wins over `turns`
//!   (the prompt still counts toward N);
//! - `exit_on_eof` (default `true`): exit 0 when stdin closes (a running turn is finished
//!   first, unless it waits for an answer from the client, which cannot come any more);
//!   `false` keeps the process running like codex-acp, so the client has to kill it;
//! - `ignore_sigterm` (default `false`): survive SIGTERM, so the client has to SIGKILL it;
//! - `log`: a file to append every line received on stdin to, verbatim (also
//!   `SCRIPTED_AGENT_LOG`); answers to `fs/*` and permission requests are in it too;
//! - `pid_file`: a file to write the process id to at start (also `SCRIPTED_AGENT_PID_FILE`);
//! - `modes`: the session modes to advertise, `{"current": ID, "available": [{"id", "name"}]}`
//!   (for example claude-agent-acp's, which include a `plan` mode);
//! - `stamp_file`: a file to append `<tool call id> <path> <unix ns>` to just before each
//!   reported change's completion goes out (benchmarks time the client's side from it).
//!
//! Relative paths in steps are resolved against the session's `cwd` (the client gives the
//! shadow both as `session/new` cwd and as the process cwd); absolute paths and `..` are used
//! as given, which is how a test makes the agent write outside the workspace.
//!
//! Steps (`"type"` picks one):
//!
//! | type | fields | does |
//! |---|---|---|
//! | `message` | `text` | one `agent_message_chunk` |
//! | `thought` | `text` | one `agent_thought_chunk` |
//! | `plan` | `entries: [{content, status?, priority?}]` | a `plan` update (status default `pending`) |
//! | `write` | `path, content, report?` | like codex-acp: `tool_call` (edit, in_progress, diff) → write the file (parents created) → `tool_call_update` completed (`failed` if the write failed). `report: false` writes silently, like a shell command |
//! | `rename` | `from, to, report?` | renames; reported as an edit whose diff is at `to` with the old text |
//! | `delete` | `path, report?` | deletes; reported as a diff with `newText: ""` |
//! | `symlink` | `path, target` | creates a symlink at `path` pointing to `target` (silently) |
//! | `exec` | `command, complete?` | `tool_call` (execute, in_progress), runs `sh -c command` in the cwd; a `tool_call_update` completed only with `complete: true` (codex-acp never sends one) |
//! | `read_file` | `path, line?, limit?` | calls the client's `fs/read_text_file` and waits for the answer |
//! | `client_write` | `path, content` | calls the client's `fs/write_text_file` and waits for the answer |
//! | `permission` | `title?, kind?, path?, allowed?, rejected?` | `session/request_permission` with options `allow-once` (allow_once), `allow-always` (allow_always), `reject-once` (reject_once); allowed runs the `allowed` steps and goes on; rejected runs `rejected` if given and goes on, else ends the turn `cancelled`; a cancelled outcome always ends it `cancelled` |
//! | `sleep` | `ms` | waits (a `session/cancel` cuts it short) |
//! | `crash` | `code?` | exits at once with `code` (default 1) |
//! | `hang` | | never answers anything again and never exits by itself (not on EOF either) |
//! | `raw` | `line` | writes `line` verbatim plus a newline |
//! | `malformed` | `kind` | `invalid_json`, `invalid_utf8`, `not_an_object`, `unknown_notification`, `unknown_request` (not waited for), `wrong_types` (a `session/update` whose fields have the wrong types), `missing_session` (an update for an unknown session) |
//! | `update` | `update` | a `session/update` with this `update` object, as given |
//! | `flood` | `count` | `count` `agent_message_chunk`s, texts `"0 "`, `"1 "`, … |
//! | `error` | `code?, message` | answers the prompt with this JSON-RPC error (default -32603, message also in `data.message` as codex-acp does) and ends the turn |
//! | `end` | `stop_reason` | answers the prompt with this stop reason now (the default at the end is `end_turn`) |
//!
//! Example: a turn that plans, asks, edits, and a second turn that crashes.
//!
//! ```json
//! {"log": "/tmp/agent.log", "exit_on_eof": false, "turns": [
//!   [{"type": "plan", "entries": [{"content": "Edit a.txt", "status": "in_progress"}]},
//!    {"type": "permission", "title": "Edit a.txt", "path": "a.txt"},
//!    {"type": "write", "path": "a.txt", "content": "new\n"},
//!    {"type": "message", "text": "Done."}],
//!   [{"type": "message", "text": "about to crash"}, {"type": "crash"}]
//! ]}
//! ```
//!
//! Tests in other packages find the binary with [`binary_path`].

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

/// The environment variable naming the script file.
pub const SCRIPT_ENV: &str = "SCRIPTED_AGENT_SCRIPT";
/// The environment variable naming the log file (when the script names none).
pub const LOG_ENV: &str = "SCRIPTED_AGENT_LOG";
/// The environment variable naming the pid file (when the script names none).
pub const PID_FILE_ENV: &str = "SCRIPTED_AGENT_PID_FILE";

/// A whole script.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    #[serde(default)]
    pub turns: Vec<Vec<Step>>,
    #[serde(default)]
    pub by_prompt: serde_json::Map<String, Value>,
    #[serde(default = "yes")]
    pub exit_on_eof: bool,
    #[serde(default)]
    pub ignore_sigterm: bool,
    #[serde(default)]
    pub log: Option<PathBuf>,
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    /// Appends `<tool call id> <path> <unix time in ns>` to this file just before each reported
    /// change's completion is sent, so a benchmark can time what the client does next.
    #[serde(default)]
    pub stamp_file: Option<PathBuf>,
    /// The modes `session/new` advertises; `None`: codex-acp's.
    #[serde(default)]
    pub modes: Option<Modes>,
}

/// Session modes to advertise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modes {
    /// The id of the mode a new session starts in.
    pub current: String,
    pub available: Vec<Mode>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mode {
    pub id: String,
    pub name: String,
}

impl Modes {
    /// codex-acp 0.16.0's modes.
    fn codex_acp() -> Modes {
        let mode = |id: &str, name: &str| Mode {
            id: id.into(),
            name: name.into(),
        };
        Modes {
            current: "read-only".into(),
            available: vec![
                mode("read-only", "Read Only"),
                mode("auto", "Default"),
                mode("full-access", "Full Access"),
            ],
        }
    }
}

impl Default for Script {
    fn default() -> Script {
        Script {
            turns: Vec::new(),
            by_prompt: serde_json::Map::new(),
            exit_on_eof: true,
            ignore_sigterm: false,
            log: None,
            pid_file: None,
            stamp_file: None,
            modes: None,
        }
    }
}

fn yes() -> bool {
    true
}

fn one() -> i32 {
    1
}

fn internal_error() -> i64 {
    -32603
}

/// One plan entry of a `plan` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanEntry {
    pub content: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
}

/// One scripted step; see the module docs for what each does.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Message {
        text: String,
    },
    Thought {
        text: String,
    },
    Plan {
        entries: Vec<PlanEntry>,
    },
    Write {
        path: String,
        content: String,
        #[serde(default = "yes")]
        report: bool,
    },
    Rename {
        from: String,
        to: String,
        #[serde(default = "yes")]
        report: bool,
    },
    Delete {
        path: String,
        #[serde(default = "yes")]
        report: bool,
    },
    Symlink {
        path: String,
        target: String,
    },
    Exec {
        command: String,
        #[serde(default)]
        complete: bool,
    },
    ReadFile {
        path: String,
        #[serde(default)]
        line: Option<u64>,
        #[serde(default)]
        limit: Option<u64>,
    },
    ClientWrite {
        path: String,
        content: String,
    },
    Permission {
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        path: Option<String>,
        #[serde(default)]
        allowed: Vec<Step>,
        #[serde(default)]
        rejected: Option<Vec<Step>>,
    },
    Sleep {
        ms: u64,
    },
    Crash {
        #[serde(default = "one")]
        code: i32,
    },
    Hang,
    Raw {
        line: String,
    },
    Malformed {
        kind: String,
    },
    Update {
        update: Value,
    },
    Flood {
        count: usize,
    },
    Error {
        #[serde(default = "internal_error")]
        code: i64,
        message: String,
    },
    End {
        #[serde(alias = "stopReason")]
        stop_reason: String,
    },
}

impl Script {
    /// Parses a script from JSON text, checking every step (an unknown step type or field is
    /// an error, so a typo in a test fails loudly instead of skipping a step).
    pub fn parse(text: &str) -> Result<Script, String> {
        let script: Script = serde_json::from_str(text).map_err(|e| format!("script: {e}"))?;
        for (prompt, steps) in &script.by_prompt {
            serde_json::from_value::<Vec<Step>>(steps.clone())
                .map_err(|e| format!("script: by_prompt {prompt:?}: {e}"))?;
        }
        Ok(script)
    }

    /// The steps for the `index`-th prompt (from 0) whose text is `text`.
    fn steps_for(&self, index: usize, text: &str) -> Vec<Step> {
        if let Some(steps) = self.by_prompt.get(text) {
            // Checked in `parse`.
            return serde_json::from_value(steps.clone()).unwrap_or_default();
        }
        self.turns.get(index).cloned().unwrap_or_default()
    }
}

/// What the stdin reader hands the agent.
enum Input {
    Message(Value),
    /// A line that is not JSON.
    Invalid,
    Eof,
}

/// How a run of steps ended.
enum Flow {
    Continue,
    /// Answer the prompt with this stop reason.
    Stop(String),
    /// Answer the prompt with this error.
    Error(i64, String),
}

struct Session {
    id: String,
    cwd: PathBuf,
    mode: String,
}

struct Agent {
    script: Script,
    input: Receiver<Input>,
    sessions: Vec<Session>,
    prompts: usize,
    /// Requests that arrived while a turn ran; answered after it.
    pending: VecDeque<Value>,
    /// A `session/cancel` arrived for the running turn.
    cancelled: bool,
    eof: bool,
    next_request: u64,
    next_tool_call: u64,
}

/// Runs the agent on this process's stdio until stdin closes (or forever, per the script).
/// The binary's `main`; returns the exit code.
pub fn run() -> i32 {
    let script = match std::env::var_os(SCRIPT_ENV) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => match Script::parse(&text) {
                Ok(script) => script,
                Err(e) => {
                    eprintln!("scripted-acp-agent: {}: {e}", Path::new(&path).display());
                    return 2;
                }
            },
            Err(e) => {
                eprintln!(
                    "scripted-acp-agent: cannot read {}: {e}",
                    Path::new(&path).display()
                );
                return 2;
            }
        },
        None => Script::default(),
    };
    let log = script
        .log
        .clone()
        .or_else(|| std::env::var_os(LOG_ENV).map(PathBuf::from));
    let pid_file = script
        .pid_file
        .clone()
        .or_else(|| std::env::var_os(PID_FILE_ENV).map(PathBuf::from));
    if script.ignore_sigterm {
        ignore_sigterm();
    }
    // Written after the signal handler is in place, so a test that reads the pid and sends
    // SIGTERM at once sees it ignored.
    if let Some(pid_file) = pid_file
        && let Err(e) = std::fs::write(&pid_file, std::process::id().to_string())
    {
        eprintln!(
            "scripted-acp-agent: cannot write {}: {e}",
            pid_file.display()
        );
        return 2;
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || read_stdin(sender, log));
    let mut agent = Agent {
        script,
        input: receiver,
        sessions: Vec::new(),
        prompts: 0,
        pending: VecDeque::new(),
        cancelled: false,
        eof: false,
        next_request: 0,
        next_tool_call: 0,
    };
    agent.serve()
}

/// Reads stdin line by line, appends each line to the log, and hands the parsed message on.
fn read_stdin(sender: Sender<Input>, log: Option<PathBuf>) {
    let mut log = log.and_then(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                eprintln!(
                    "scripted-acp-agent: cannot open log {}: {e}",
                    path.display()
                )
            })
            .ok()
    });
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        if let Some(log) = &mut log {
            // Logged before the agent acts on it, so a test that sees the effect also sees
            // the message in the log.
            let _ = writeln!(log, "{text}");
            let _ = log.flush();
        }
        let input = match serde_json::from_str::<Value>(text) {
            Ok(message) => Input::Message(message),
            Err(_) => Input::Invalid,
        };
        if sender.send(input).is_err() {
            return;
        }
    }
    let _ = sender.send(Input::Eof);
}

/// Replaces SIGTERM's default action (exit) with a handler that ignores it, on a thread of its
/// own; returns once the handler is installed.
fn ignore_sigterm() {
    let (ready, installed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        {
            Ok(runtime) => runtime,
            Err(_) => return,
        };
        runtime.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut terms) = signal(SignalKind::terminate()) else {
                let _ = ready.send(());
                return;
            };
            let _ = ready.send(());
            while terms.recv().await.is_some() {
                eprintln!("scripted-acp-agent: ignoring SIGTERM");
            }
        });
    });
    let _ = installed.recv();
}

/// Writes one line to stdout. A client that closed our stdout is gone: exit quietly.
fn write_line(line: &[u8]) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if out
        .write_all(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

fn send(message: &Value) {
    write_line(message.to_string().as_bytes());
}

fn respond(id: &Value, result: Value) {
    send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
}

fn respond_error(id: &Value, code: i64, message: &str) {
    send(&json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}));
}

/// Never returns: the process stays until it is killed.
fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

impl Agent {
    fn serve(&mut self) -> i32 {
        loop {
            let input = match self.pending.pop_front() {
                Some(message) => Input::Message(message),
                None => self.recv(None).unwrap_or(Input::Eof),
            };
            match input {
                Input::Eof => self.stdin_gone(),
                Input::Invalid => respond_error(&Value::Null, -32700, "Parse error"),
                Input::Message(message) => self.handle(message),
            }
        }
    }

    /// The next input, waiting at most `timeout` (`None`: forever). `None` when the wait ran
    /// out. Once stdin has closed, a timed wait just sleeps and an endless one answers `Eof`
    /// again.
    fn recv(&mut self, timeout: Option<Duration>) -> Option<Input> {
        if self.eof {
            return match timeout {
                Some(timeout) => {
                    std::thread::sleep(timeout);
                    None
                }
                None => Some(Input::Eof),
            };
        }
        let input = match timeout {
            None => self.input.recv().unwrap_or(Input::Eof),
            Some(timeout) => match self.input.recv_timeout(timeout) {
                Ok(input) => input,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => Input::Eof,
            },
        };
        if matches!(input, Input::Eof) {
            self.eof = true;
        }
        Some(input)
    }

    /// Stdin closed while nothing more can happen without the client: exit, or stay like
    /// codex-acp.
    fn stdin_gone(&self) -> ! {
        if self.script.exit_on_eof {
            let _ = std::io::stdout().flush();
            std::process::exit(0);
        }
        park_forever();
    }

    /// A message outside a turn.
    fn handle(&mut self, message: Value) {
        let Some(method) = message.get("method").and_then(Value::as_str) else {
            // A response to nothing we are waiting for, or something without a method.
            return;
        };
        let method = method.to_string();
        let Some(id) = message.get("id").cloned() else {
            // Notifications: a cancel with no turn running has nothing to cancel.
            return;
        };
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        match method.as_str() {
            "initialize" => respond(
                &id,
                json!({
                    "protocolVersion": 1,
                    "agentCapabilities": {
                        "loadSession": false,
                        "promptCapabilities": {"image": false, "audio": false,
                                               "embeddedContext": false},
                        "mcpCapabilities": {"http": false, "sse": false},
                    },
                    "authMethods": [],
                    "agentInfo": {"name": "scripted-acp-agent", "title": "Scripted ACP agent",
                                  "version": env!("CARGO_PKG_VERSION")},
                }),
            ),
            "session/new" => self.new_session(&id, &params),
            "session/set_mode" => {
                let mode = params["modeId"].as_str().unwrap_or_default().to_string();
                let known = self.modes().available.iter().any(|m| m.id == mode);
                match self.session_index(&params) {
                    Some(index) if known => {
                        self.sessions[index].mode = mode;
                        respond(&id, json!({}));
                    }
                    Some(_) => respond_error(&id, -32602, &format!("unknown mode {mode:?}")),
                    None => respond_error(&id, -32602, "unknown session"),
                }
            }
            "session/prompt" => self.prompt(&id, &params),
            _ => respond_error(&id, -32601, &format!("Method not found: {method}")),
        }
    }

    fn new_session(&mut self, id: &Value, params: &Value) {
        let Some(cwd) = params["cwd"].as_str().map(PathBuf::from) else {
            respond_error(id, -32602, "session/new: cwd missing");
            return;
        };
        if !cwd.is_absolute() {
            respond_error(id, -32602, "session/new: cwd must be absolute");
            return;
        }
        let modes = self.modes();
        let session = Session {
            id: format!("scripted-session-{}", self.sessions.len() + 1),
            cwd,
            mode: modes.current.clone(),
        };
        let available: Vec<Value> = modes
            .available
            .iter()
            .map(|m| json!({"id": m.id, "name": m.name}))
            .collect();
        respond(
            id,
            json!({
                "sessionId": session.id,
                "modes": {"currentModeId": session.mode, "availableModes": available},
            }),
        );
        self.sessions.push(session);
    }

    fn modes(&self) -> Modes {
        self.script.modes.clone().unwrap_or_else(Modes::codex_acp)
    }

    fn session_index(&self, params: &Value) -> Option<usize> {
        let id = params["sessionId"].as_str()?;
        self.sessions.iter().position(|s| s.id == id)
    }

    fn prompt(&mut self, id: &Value, params: &Value) {
        let Some(index) = self.session_index(params) else {
            respond_error(id, -32602, "unknown session");
            return;
        };
        let text: String = params["prompt"]
            .as_array()
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(|block| block["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        let steps = self.script.steps_for(self.prompts, &text);
        self.prompts += 1;
        self.cancelled = false;
        let session = self.sessions[index].id.clone();
        let cwd = self.sessions[index].cwd.clone();
        let turn = Turn { session, cwd };
        match self.run_steps(&turn, &steps) {
            Flow::Continue => respond(id, json!({"stopReason": "end_turn"})),
            Flow::Stop(reason) => respond(id, json!({"stopReason": reason})),
            Flow::Error(code, message) => send(&json!({
                "jsonrpc": "2.0", "id": id,
                "error": {"code": code, "message": message, "data": {"message": message}},
            })),
        }
        self.cancelled = false;
    }

    fn run_steps(&mut self, turn: &Turn, steps: &[Step]) -> Flow {
        for step in steps {
            if matches!(step, Step::Hang) {
                // A hang is unconditional: a cancel that raced ahead of it must not turn it
                // into a clean cancelled turn.
                park_forever();
            }
            self.drain();
            if self.cancelled {
                return Flow::Stop("cancelled".into());
            }
            match self.step(turn, step) {
                Flow::Continue => {}
                other => return other,
            }
        }
        self.drain();
        if self.cancelled {
            return Flow::Stop("cancelled".into());
        }
        Flow::Continue
    }

    /// Takes in whatever arrived without waiting: notes cancels, keeps requests for later.
    fn drain(&mut self) {
        while let Some(input) = self.recv(Some(Duration::ZERO)) {
            self.note(input);
        }
    }

    /// Files an input that arrived during a turn and is not the answer being waited for.
    fn note(&mut self, input: Input) {
        match input {
            Input::Message(message) => {
                let method = message.get("method").and_then(Value::as_str);
                if method == Some("session/cancel") {
                    self.cancelled = true;
                } else if method.is_some() && message.get("id").is_some() {
                    self.pending.push_back(message);
                }
            }
            Input::Invalid => respond_error(&Value::Null, -32700, "Parse error"),
            Input::Eof => {}
        }
    }

    /// Sends a request to the client and waits for its answer (the whole response message).
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_request += 1;
        let id = format!("scripted-request-{}", self.next_request);
        send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            match self.recv(None) {
                Some(Input::Message(message))
                    if message.get("method").is_none() && message["id"] == id.as_str() =>
                {
                    return message;
                }
                // No answer can come any more.
                Some(Input::Eof) => self.stdin_gone(),
                Some(input) => self.note(input),
                None => {}
            }
        }
    }

    fn update(&self, turn: &Turn, update: Value) {
        send(&json!({
            "jsonrpc": "2.0", "method": "session/update",
            "params": {"sessionId": turn.session, "update": update},
        }));
    }

    fn tool_call_id(&mut self) -> String {
        self.next_tool_call += 1;
        format!("scripted-call-{}", self.next_tool_call)
    }

    /// Reports a file change the way codex-acp does: `tool_call` in progress with the diffs,
    /// the change itself, then `tool_call_update` completed (or failed).
    fn reported_change(
        &mut self,
        turn: &Turn,
        report: bool,
        title: String,
        diffs: Vec<Value>,
        locations: Vec<&Path>,
        change: impl FnOnce() -> std::io::Result<()>,
    ) {
        if !report {
            if let Err(e) = change() {
                eprintln!("scripted-acp-agent: {title}: {e}");
            }
            return;
        }
        let id = self.tool_call_id();
        let locations: Vec<Value> = locations.iter().map(|p| json!({"path": p})).collect();
        self.update(
            turn,
            json!({"sessionUpdate": "tool_call", "toolCallId": id, "title": title,
                   "kind": "edit", "status": "in_progress", "content": diffs,
                   "locations": locations}),
        );
        let status = match change() {
            Ok(()) => "completed",
            Err(e) => {
                eprintln!("scripted-acp-agent: {title}: {e}");
                "failed"
            }
        };
        if let Some(stamps) = &self.script.stamp_file {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos())
                .unwrap_or_default();
            let path = locations
                .first()
                .and_then(|location| location["path"].as_str())
                .unwrap_or("");
            let line = format!("{id} {path} {nanos}\n");
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(stamps)
                .and_then(|mut file| std::io::Write::write_all(&mut file, line.as_bytes()));
            if let Err(e) = written {
                eprintln!("scripted-acp-agent: cannot stamp {}: {e}", stamps.display());
            }
        }
        self.update(
            turn,
            json!({"sessionUpdate": "tool_call_update", "toolCallId": id, "status": status,
                   "title": title, "content": diffs, "locations": locations}),
        );
    }

    fn step(&mut self, turn: &Turn, step: &Step) -> Flow {
        match step {
            Step::Message { text } => self.update(
                turn,
                json!({"sessionUpdate": "agent_message_chunk",
                       "content": {"type": "text", "text": text}}),
            ),
            Step::Thought { text } => self.update(
                turn,
                json!({"sessionUpdate": "agent_thought_chunk",
                       "content": {"type": "text", "text": text}}),
            ),
            Step::Plan { entries } => {
                let entries: Vec<Value> = entries
                    .iter()
                    .map(|entry| {
                        json!({"content": entry.content,
                               "priority": entry.priority.as_deref().unwrap_or("medium"),
                               "status": entry.status.as_deref().unwrap_or("pending")})
                    })
                    .collect();
                self.update(turn, json!({"sessionUpdate": "plan", "entries": entries}));
            }
            Step::Write {
                path,
                content,
                report,
            } => {
                let path = turn.resolve(path);
                let old = std::fs::read_to_string(&path).ok();
                let mut diff = json!({"type": "diff", "path": path, "newText": content});
                if let Some(old) = &old {
                    diff["oldText"] = json!(old);
                }
                let title = format!("Edit {}", path.display());
                self.reported_change(turn, *report, title, vec![diff], vec![&path], || {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::write(&path, content)
                });
            }
            Step::Rename { from, to, report } => {
                let (from, to) = (turn.resolve(from), turn.resolve(to));
                let old = std::fs::read_to_string(&from).unwrap_or_default();
                let diff = json!({"type": "diff", "path": to, "oldText": old, "newText": old});
                let title = format!("Move {} to {}", from.display(), to.display());
                self.reported_change(turn, *report, title, vec![diff], vec![&from, &to], || {
                    if let Some(parent) = to.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::rename(&from, &to)
                });
            }
            Step::Delete { path, report } => {
                let path = turn.resolve(path);
                let old = std::fs::read_to_string(&path).unwrap_or_default();
                let diff = json!({"type": "diff", "path": path, "oldText": old, "newText": ""});
                let title = format!("Delete {}", path.display());
                self.reported_change(turn, *report, title, vec![diff], vec![&path], || {
                    std::fs::remove_file(&path)
                });
            }
            Step::Symlink { path, target } => {
                let path = turn.resolve(path);
                if let Err(e) = std::os::unix::fs::symlink(target, &path) {
                    eprintln!("scripted-acp-agent: symlink {}: {e}", path.display());
                }
            }
            Step::Exec { command, complete } => {
                let id = self.tool_call_id();
                let title = format!("Run `{command}`");
                self.update(
                    turn,
                    json!({"sessionUpdate": "tool_call", "toolCallId": id, "title": title,
                           "kind": "execute", "status": "in_progress",
                           "rawInput": {"command": command}}),
                );
                let output = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .current_dir(&turn.cwd)
                    .stdin(std::process::Stdio::null())
                    .output();
                if *complete {
                    let (status, text) = match output {
                        Ok(output) => (
                            if output.status.success() {
                                "completed"
                            } else {
                                "failed"
                            },
                            String::from_utf8_lossy(&output.stdout).into_owned(),
                        ),
                        Err(e) => ("failed", e.to_string()),
                    };
                    self.update(
                        turn,
                        json!({"sessionUpdate": "tool_call_update", "toolCallId": id,
                               "status": status,
                               "content": [{"type": "content",
                                            "content": {"type": "text", "text": text}}]}),
                    );
                }
            }
            Step::ReadFile { path, line, limit } => {
                let mut params = json!({"sessionId": turn.session, "path": turn.resolve(path)});
                if let Some(line) = line {
                    params["line"] = json!(line);
                }
                if let Some(limit) = limit {
                    params["limit"] = json!(limit);
                }
                self.request("fs/read_text_file", params);
            }
            Step::ClientWrite { path, content } => {
                self.request(
                    "fs/write_text_file",
                    json!({"sessionId": turn.session, "path": turn.resolve(path),
                           "content": content}),
                );
            }
            Step::Permission {
                title,
                kind,
                path,
                allowed,
                rejected,
            } => {
                let id = self.tool_call_id();
                let mut tool_call = json!({
                    "toolCallId": id,
                    "title": title.as_deref().unwrap_or("Scripted permission"),
                    "kind": kind.as_deref().unwrap_or("edit"),
                    "status": "pending",
                });
                if let Some(path) = path {
                    tool_call["locations"] = json!([{"path": turn.resolve(path)}]);
                }
                let option = |id: &str, name: &str, kind: &str| json!({"optionId": id, "name": name, "kind": kind});
                let answer = self.request(
                    "session/request_permission",
                    json!({"sessionId": turn.session, "toolCall": tool_call, "options": [
                        option("allow-once", "Allow once", "allow_once"),
                        option("allow-always", "Allow always", "allow_always"),
                        option("reject-once", "Reject", "reject_once"),
                    ]}),
                );
                let outcome = &answer["result"]["outcome"];
                let selected = (outcome["outcome"] == "selected")
                    .then(|| outcome["optionId"].as_str())
                    .flatten();
                match selected {
                    Some("allow-once" | "allow-always") => {
                        return self.run_steps(turn, allowed);
                    }
                    Some(_) => {
                        if let Some(rejected) = rejected {
                            return self.run_steps(turn, rejected);
                        }
                        return Flow::Stop("cancelled".into());
                    }
                    // A cancelled outcome, an error or an answer we cannot read.
                    None => return Flow::Stop("cancelled".into()),
                }
            }
            Step::Sleep { ms } => {
                let deadline = Instant::now() + Duration::from_millis(*ms);
                loop {
                    let now = Instant::now();
                    if now >= deadline || self.cancelled {
                        break;
                    }
                    if let Some(input) = self.recv(Some(deadline - now)) {
                        self.note(input);
                    }
                }
            }
            Step::Crash { code } => {
                let _ = std::io::stdout().flush();
                std::process::exit(*code);
            }
            Step::Hang => park_forever(),
            Step::Raw { line } => write_line(line.as_bytes()),
            Step::Malformed { kind } => self.malformed(turn, kind),
            Step::Update { update } => self.update(turn, update.clone()),
            Step::Flood { count } => {
                for i in 0..*count {
                    self.update(
                        turn,
                        json!({"sessionUpdate": "agent_message_chunk",
                               "content": {"type": "text", "text": format!("{i} ")}}),
                    );
                }
            }
            Step::Error { code, message } => return Flow::Error(*code, message.clone()),
            Step::End { stop_reason } => return Flow::Stop(stop_reason.clone()),
        }
        Flow::Continue
    }

    fn malformed(&mut self, turn: &Turn, kind: &str) {
        match kind {
            "invalid_json" => {
                write_line(br#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"#)
            }
            "invalid_utf8" => write_line(b"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\xfe\"}"),
            "not_an_object" => write_line(b"[1,2,3]"),
            "unknown_notification" => send(&json!({
                "jsonrpc": "2.0", "method": "scripted/unknown", "params": {"x": 1},
            })),
            "unknown_request" => {
                // Not waited for: the client's error answer only lands in the log.
                self.next_request += 1;
                send(&json!({
                    "jsonrpc": "2.0", "id": format!("scripted-request-{}", self.next_request),
                    "method": "scripted/unknown", "params": {},
                }));
            }
            "wrong_types" => {
                self.update(
                    turn,
                    json!({"sessionUpdate": "agent_message_chunk", "content": 42}),
                );
                self.update(
                    turn,
                    json!({"sessionUpdate": "tool_call", "toolCallId": 7, "title": ["x"],
                           "kind": "edit", "status": true}),
                );
                self.update(
                    turn,
                    json!({"sessionUpdate": "plan", "entries": "all of them"}),
                );
            }
            "missing_session" => send(&json!({
                "jsonrpc": "2.0", "method": "session/update",
                "params": {"sessionId": "no-such-session",
                           "update": {"sessionUpdate": "agent_message_chunk",
                                      "content": {"type": "text", "text": "stray"}}},
            })),
            other => eprintln!("scripted-acp-agent: unknown malformed kind {other:?}"),
        }
    }
}

/// The session a turn runs in.
struct Turn {
    session: String,
    cwd: PathBuf,
}

impl Turn {
    /// A step's path: absolute as given, else joined to the session's cwd (`..` kept, so a
    /// script can point outside the workspace).
    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.cwd.join(path)
        }
    }
}

/// The `scripted-acp-agent` binary for a test in any package of the workspace:
/// `$SCRIPTED_ACP_AGENT_BIN` if set; else the binary next to the running test's profile
/// directory (`target/debug/scripted-acp-agent`), built with
/// `cargo build -p testkit --bin scripted-acp-agent` first when it is missing or older than
/// testkit's sources (a test of another package does not make cargo build it).
pub fn binary_path() -> PathBuf {
    if let Some(configured) = std::env::var_os("SCRIPTED_ACP_AGENT_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(configured);
    }
    static BUILT: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.as_ref() {
        return path.clone();
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut profile_dir = exe.parent().expect("a directory").to_path_buf();
    if profile_dir.file_name().is_some_and(|name| name == "deps") {
        profile_dir.pop();
    }
    let path = profile_dir.join("scripted-acp-agent");
    if !path.is_file() || is_stale(&path) {
        build(&profile_dir);
    }
    assert!(
        path.is_file(),
        "scripted-acp-agent not found at {} after building it",
        path.display()
    );
    *built = Some(path.clone());
    path
}

/// Whether the binary is older than any source file of testkit.
fn is_stale(binary: &Path) -> bool {
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return true;
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![manifest.join("src"), manifest.join("Cargo.toml")];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|entry| entry.path()));
            }
        } else if std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified > built)
        {
            return true;
        }
    }
    false
}

fn build(profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = profile_dir.parent().expect("a target directory");
    let mut command = std::process::Command::new(cargo);
    command
        .args([
            "build",
            "-p",
            "testkit",
            "--bin",
            "scripted-acp-agent",
            "--target-dir",
        ])
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        command.arg("--release");
    }
    let status = command.status().expect("cargo runs");
    assert!(status.success(), "building scripted-acp-agent failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let script = Script::parse(
            r#"{"log": "/tmp/agent.log", "exit_on_eof": false, "turns": [
              [{"type": "plan", "entries": [{"content": "Edit a.txt", "status": "in_progress"}]},
               {"type": "permission", "title": "Edit a.txt", "path": "a.txt"},
               {"type": "write", "path": "a.txt", "content": "new\n"},
               {"type": "message", "text": "Done."}],
              [{"type": "message", "text": "about to crash"}, {"type": "crash"}]
            ]}"#,
        )
        .unwrap();
        assert!(!script.exit_on_eof);
        assert_eq!(script.turns.len(), 2);
        assert!(matches!(
            &script.turns[0][2],
            Step::Write { path, report: true, .. } if path == "a.txt"
        ));
        assert!(matches!(script.turns[1][1], Step::Crash { code: 1 }));
    }

    #[test]
    fn typos_are_errors() {
        let unknown_step = Script::parse(r#"{"turns": [[{"type": "mesage", "text": "x"}]]}"#);
        assert!(unknown_step.unwrap_err().contains("mesage"));
        let unknown_field = Script::parse(r#"{"turns": [[{"type": "sleep", "secs": 1}]]}"#);
        assert!(unknown_field.is_err());
        let bad_by_prompt = Script::parse(r#"{"by_prompt": {"go": [{"type": "nope"}]}}"#);
        assert!(bad_by_prompt.unwrap_err().contains("go"));
    }

    #[test]
    fn prompts_pick_their_steps() {
        let script = Script::parse(
            r#"{"turns": [[{"type": "message", "text": "first"}]],
                "by_prompt": {"special": [{"type": "end", "stopReason": "refusal"}]}}"#,
        )
        .unwrap();
        assert!(
            matches!(&script.steps_for(0, "x")[..], [Step::Message { text }] if text == "first")
        );
        assert!(
            matches!(&script.steps_for(0, "special")[..], [Step::End { stop_reason }] if stop_reason == "refusal")
        );
        assert!(script.steps_for(1, "x").is_empty());
    }
}
