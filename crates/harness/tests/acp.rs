//! The ACP transport against real agents: `codex-acp` 0.16.0 answering from the fake model
//! (skipped with a printed reason when it is missing, unless `BATON_REQUIRE_CODEX=1`), and small
//! `sh` scripts that speak ACP line by line for what a well-behaved agent never does (crash,
//! malformed lines, ignoring SIGTERM, asking the client to read a file).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::agent::{
    AgentError, AgentEvent, AgentHandle, AgentKind, AgentSpec, Approval, FileAccess,
    PermissionAnswer, PermissionKind, ReportedKind, SessionMode, SessionOptions, ToolKind,
    ToolStatus, TurnEnd,
};
use testkit::codex::{CodexHome, require_codex_acp, scratch_root};
use testkit::fake_model::{FakeModel, Item, Reply, patch};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long any one step may take: codex-acp starts in about a second.
const STEP: Duration = Duration::from_secs(30);

/// A scratch directory: `repo/` (the agent's cwd, holding `hello.txt`) and `home/` (a private
/// `CODEX_HOME`), removed on drop.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        // Not under /tmp: codex-acp's sandbox helper lives under CODEX_HOME, which must not be
        // a temporary directory ("bwrap: execvp codex-linux-sandbox" on every patch otherwise).
        let root = scratch_root().join(format!(
            "baton-acp-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(root.join("repo")).unwrap();
        std::fs::write(root.join("repo/hello.txt"), "hello\n").unwrap();
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

/// Files served to the agent over `fs/*`: a map for reads, a log of writes.
#[derive(Default)]
struct MemFiles {
    texts: Mutex<HashMap<PathBuf, String>>,
    writes: Mutex<Vec<(PathBuf, String)>>,
}

impl FileAccess for MemFiles {
    fn read_text(&self, path: &Path) -> Result<String, String> {
        self.texts
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .ok_or_else(|| format!("no such buffer: {}", path.display()))
    }

    fn write_text(&self, path: &Path, text: &str) -> Result<(), String> {
        self.writes
            .lock()
            .unwrap()
            .push((path.to_path_buf(), text.to_owned()));
        Ok(())
    }
}

fn options(cwd: PathBuf, approval: Approval, files: Arc<MemFiles>) -> SessionOptions {
    SessionOptions {
        cwd,
        approval,
        mode: SessionMode::Work,
        files,
        grace: Duration::from_millis(500),
    }
}

/// codex-acp against `fake`, in `scratch`'s repo. `None` (skip) without the binary.
fn codex_spec(scratch: &Scratch, fake: &FakeModel) -> Option<AgentSpec> {
    let binary = require_codex_acp()?;
    let home = CodexHome::new(scratch.root.join("home"), &fake.base_url()).unwrap();
    Some(AgentSpec {
        name: "codex-acp".into(),
        kind: AgentKind::Acp,
        command: vec![binary.to_string_lossy().into_owned()],
        env: home
            .env()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect(),
        connect: None,
    })
}

async fn next(events: &mut UnboundedReceiver<AgentEvent>) -> AgentEvent {
    tokio::time::timeout(STEP, events.recv())
        .await
        .expect("an event within the step timeout")
        .expect("the event stream is still open")
}

/// Events up to and including the next `TurnEnded` (or `Exited`).
async fn turn(events: &mut UnboundedReceiver<AgentEvent>) -> Vec<AgentEvent> {
    let mut seen = Vec::new();
    loop {
        let event = next(events).await;
        let last = matches!(event, AgentEvent::TurnEnded(_) | AgentEvent::Exited { .. });
        seen.push(event);
        if last {
            return seen;
        }
    }
}

/// Events up to and including the first one `stop` accepts.
async fn until(
    events: &mut UnboundedReceiver<AgentEvent>,
    stop: impl Fn(&AgentEvent) -> bool,
) -> Vec<AgentEvent> {
    let mut seen = Vec::new();
    loop {
        let event = next(events).await;
        let last = stop(&event);
        seen.push(event);
        if last {
            return seen;
        }
    }
}

fn text_of(events: &[AgentEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Message(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn turn_end(events: &[AgentEvent]) -> Option<&TurnEnd> {
    events.iter().find_map(|e| match e {
        AgentEvent::TurnEnded(end) => Some(end),
        _ => None,
    })
}

fn alive(pid: u32) -> bool {
    // After the reaper ran, /proc/PID is gone (a zombie would still be listed).
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Shuts the agent down, checks its process is gone and the events end with `Exited`.
async fn shutdown(handle: AgentHandle, mut events: UnboundedReceiver<AgentEvent>) -> String {
    let pid = handle.pid().expect("a local agent has a pid");
    tokio::time::timeout(STEP, handle.shutdown())
        .await
        .expect("shutdown returns");
    assert!(!alive(pid), "agent pid {pid} still exists after shutdown");
    let mut rest = Vec::new();
    while let Some(event) = tokio::time::timeout(STEP, events.recv())
        .await
        .expect("the stream ends")
    {
        rest.push(event);
    }
    match rest.last() {
        Some(AgentEvent::Exited { reason }) => reason.clone(),
        other => panic!("the stream did not end with Exited: {other:?} (all: {rest:?})"),
    }
}

#[tokio::test]
async fn codex_text_turn_streams_the_message_and_shutdown_leaves_no_process() {
    let scratch = Scratch::new("text");
    let fake = FakeModel::start().await;
    let Some(spec) = codex_spec(&scratch, &fake) else {
        return;
    };
    fake.push(Reply::text("Hello from the fake model."));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("codex-acp starts");
    handle.prompt("say hello").unwrap();
    let seen = turn(&mut events).await;
    println!("text turn: {seen:?}");
    assert_eq!(text_of(&seen), "Hello from the fake model.");
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    assert!(
        !seen.iter().any(|e| matches!(e, AgentEvent::Warning(_))),
        "no warnings: {seen:?}"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "one model request");
    assert!(requests[0].body.to_string().contains("say hello"));

    let reason = shutdown(handle, events).await;
    println!("exited: {reason}");
    assert!(reason.contains("codex-acp"), "{reason}");
}

fn edit_patch() -> String {
    patch::wrap(&[
        patch::update("hello.txt", None, "hello", "hello, baton"),
        patch::add("notes/new.txt", "created by the fake model"),
    ])
}

#[tokio::test]
async fn codex_edit_in_auto_mode_lands_on_disk_and_reports_the_files() {
    let scratch = Scratch::new("edit");
    let fake = FakeModel::start().await;
    let Some(spec) = codex_spec(&scratch, &fake) else {
        return;
    };
    fake.push(Reply::items(vec![
        Item::message("Editing."),
        Item::apply_patch(edit_patch()),
    ]));
    fake.push(Reply::items(vec![Item::message("Done.")]));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) = harness::agent::start(
        &spec,
        options(scratch.repo(), Approval::AutoEdit, files.clone()),
    )
    .await
    .expect("codex-acp starts");
    handle.prompt("edit hello.txt").unwrap();
    let seen = turn(&mut events).await;
    println!("edit turn: {seen:#?}");
    for request in fake.requests() {
        println!(
            "tool outputs: {:?}",
            request.input_items("custom_tool_call_output")
        );
    }
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("hello.txt")).unwrap(),
        "hello, baton\n"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("notes/new.txt")).unwrap(),
        "created by the fake model\n"
    );
    assert!(seen.iter().any(|e| matches!(e, AgentEvent::ToolCall(t)
        if t.kind == ToolKind::Edit && t.status == ToolStatus::Completed)));
    let changes = seen
        .iter()
        .find_map(|e| match e {
            AgentEvent::FilesChanged { changes, .. } => Some(changes.clone()),
            _ => None,
        })
        .expect("FilesChanged");
    let hello = changes
        .iter()
        .find(|c| c.path.ends_with("hello.txt"))
        .expect("hello.txt reported");
    assert!(
        matches!(&hello.kind, ReportedKind::Update { unified_diff, move_path: None }
            if unified_diff.contains("-hello\n+hello, baton\n")),
        "{hello:?}"
    );
    let new = changes
        .iter()
        .find(|c| c.path.ends_with("notes/new.txt"))
        .expect("notes/new.txt reported");
    assert_eq!(
        new.kind,
        ReportedKind::Add {
            content: "created by the fake model\n".into()
        }
    );
    // Nothing asked, and codex-acp reads and writes the disk itself.
    assert!(!seen.iter().any(|e| matches!(e, AgentEvent::Permission(_))));
    assert!(files.writes.lock().unwrap().is_empty());
    assert!(text_of(&seen).contains("Done."));
    shutdown(handle, events).await;
}

#[tokio::test]
async fn codex_command_in_auto_mode_reports_the_command() {
    let scratch = Scratch::new("exec");
    let fake = FakeModel::start().await;
    let Some(spec) = codex_spec(&scratch, &fake) else {
        return;
    };
    fake.push(Reply::items(vec![Item::exec(
        "echo from-shell > shell.txt",
    )]));
    fake.push(Reply::items(vec![Item::message("Ran it.")]));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("codex-acp starts");
    handle.prompt("run it").unwrap();
    let seen = turn(&mut events).await;
    println!("command turn: {seen:#?}");
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("shell.txt")).unwrap(),
        "from-shell\n"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, AgentEvent::Command { command, .. }
            if command.contains("echo from-shell > shell.txt"))),
        "a Command event"
    );
    shutdown(handle, events).await;
}

/// Ask mode (codex-acp `read-only`): the edit asks; `answer` decides it.
async fn ask_and_answer(answer: PermissionAnswer) -> (Vec<AgentEvent>, Scratch) {
    let scratch = Scratch::new("ask");
    let fake = FakeModel::start().await;
    let Some(spec) = codex_spec(&scratch, &fake) else {
        return (Vec::new(), scratch);
    };
    fake.push(Reply::items(vec![Item::apply_patch(edit_patch())]));
    fake.push(Reply::items(vec![Item::message("Done.")]));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::Ask, files))
            .await
            .expect("codex-acp starts");
    handle.prompt("edit hello.txt").unwrap();
    let mut seen = until(&mut events, |e| matches!(e, AgentEvent::Permission(_))).await;
    let Some(AgentEvent::Permission(request)) = seen.last().cloned() else {
        unreachable!()
    };
    println!("permission: {request:#?}");
    assert_eq!(request.kind, PermissionKind::Edit);
    assert!(request.title.contains("hello.txt"), "{}", request.title);
    assert!(
        request.detail.contains("-hello\n+hello, baton"),
        "{}",
        request.detail
    );
    // The file is untouched while the request waits.
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("hello.txt")).unwrap(),
        "hello\n"
    );
    handle.answer(request.id, answer).unwrap();
    seen.extend(turn(&mut events).await);
    shutdown(handle, events).await;
    (seen, scratch)
}

#[tokio::test]
async fn codex_permission_in_ask_mode_allowed_lands_the_edit() {
    if require_codex_acp().is_none() {
        return;
    }
    let (seen, scratch) = ask_and_answer(PermissionAnswer::AllowOnce).await;
    println!("allowed: {seen:?}");
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("hello.txt")).unwrap(),
        "hello, baton\n"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, AgentEvent::FilesChanged { .. }))
    );
}

#[tokio::test]
async fn codex_permission_in_ask_mode_denied_ends_the_turn_untouched() {
    if require_codex_acp().is_none() {
        return;
    }
    let (seen, scratch) = ask_and_answer(PermissionAnswer::Deny).await;
    println!("denied: {seen:?}");
    // codex-acp ends the whole turn on a rejection.
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Cancelled));
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("hello.txt")).unwrap(),
        "hello\n"
    );
    assert!(!scratch.repo().join("notes/new.txt").exists());
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, AgentEvent::FilesChanged { .. }))
    );
}

#[tokio::test]
async fn codex_read_only_denies_edits_without_asking() {
    let scratch = Scratch::new("readonly");
    let fake = FakeModel::start().await;
    let Some(spec) = codex_spec(&scratch, &fake) else {
        return;
    };
    fake.push(Reply::items(vec![Item::apply_patch(edit_patch())]));
    fake.push(Reply::items(vec![Item::message("Done.")]));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::ReadOnly, files))
            .await
            .expect("codex-acp starts");
    handle.prompt("edit hello.txt").unwrap();
    let seen = turn(&mut events).await;
    println!("read-only: {seen:?}");
    assert!(!seen.iter().any(|e| matches!(e, AgentEvent::Permission(_))));
    assert!(
        seen.iter()
            .any(|e| matches!(e, AgentEvent::Warning(w) if w.contains("read-only: denied")))
    );
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Cancelled));
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("hello.txt")).unwrap(),
        "hello\n"
    );
    shutdown(handle, events).await;
}

#[tokio::test]
async fn codex_cancel_during_a_turn_then_the_session_goes_on() {
    let scratch = Scratch::new("cancel");
    let fake = FakeModel::start().await;
    let Some(spec) = codex_spec(&scratch, &fake) else {
        return;
    };
    fake.push(Reply::items(vec![
        Item::message("tick "),
        Item::pause(Duration::from_secs(20)),
        Item::message("too late"),
    ]));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("codex-acp starts");
    handle.prompt("go slowly").unwrap();
    until(&mut events, |e| matches!(e, AgentEvent::Message(_))).await;
    let asked = std::time::Instant::now();
    handle.cancel().unwrap();
    let seen = turn(&mut events).await;
    println!("cancelled after {:?}: {seen:?}", asked.elapsed());
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Cancelled));
    assert!(asked.elapsed() < Duration::from_secs(10));
    assert!(!text_of(&seen).contains("too late"));

    fake.clear_replies();
    fake.push(Reply::text("Still here."));
    handle.prompt("again").unwrap();
    let seen = turn(&mut events).await;
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    assert_eq!(text_of(&seen), "Still here.");
    shutdown(handle, events).await;
}

#[tokio::test]
async fn codex_model_error_fails_the_turn_with_the_reason() {
    let scratch = Scratch::new("http500");
    let fake = FakeModel::start().await;
    let Some(spec) = codex_spec(&scratch, &fake) else {
        return;
    };
    fake.push(Reply::status(400, "the fake refuses"));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("codex-acp starts");
    handle.prompt("fail").unwrap();
    let seen = turn(&mut events).await;
    println!("model error: {seen:?}");
    match turn_end(&seen) {
        Some(TurnEnd::Failed(message)) => assert_eq!(message, "the fake refuses"),
        other => panic!("expected Failed, got {other:?}"),
    }
    shutdown(handle, events).await;
}

// ---- Scripted agents: `sh` speaking ACP one line at a time. ----
//
// Our ids are deterministic: `initialize` is 1, `session/new` 2, and (no modes advertised, so
// no `session/set_mode`) the first `session/prompt` 3.

const HANDSHAKE: &str = r#"
read -r line; echo '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":1,"agentCapabilities":{}}}'
read -r line; echo '{"jsonrpc":"2.0","id":2,"result":{"sessionId":"s1"}}'
"#;

fn chunk(text: &str) -> String {
    format!(
        r#"echo '{{"jsonrpc":"2.0","method":"session/update","params":{{"sessionId":"s1","update":{{"sessionUpdate":"agent_message_chunk","content":{{"type":"text","text":"{text}"}}}}}}}}'"#
    )
}

fn script_spec(body: &str) -> AgentSpec {
    AgentSpec {
        name: "scripted".into(),
        kind: AgentKind::Acp,
        command: vec!["sh".into(), "-c".into(), format!("{HANDSHAKE}{body}")],
        env: Vec::new(),
        connect: None,
    }
}

#[tokio::test]
async fn scripted_crash_mid_turn_fails_the_turn_and_exits() {
    let scratch = Scratch::new("crash");
    let spec = script_spec(&format!(
        "read -r line\n{}\necho 'panicked: out of cheese' >&2\nexit 3\n",
        chunk("working")
    ));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::Ask, files))
            .await
            .expect("the script starts");
    handle.prompt("go").unwrap();
    let mut seen = turn(&mut events).await;
    // The stream ends after Exited.
    while let Some(event) = tokio::time::timeout(STEP, events.recv()).await.unwrap() {
        seen.push(event);
    }
    println!("crash: {seen:#?}");
    assert_eq!(text_of(&seen), "working");
    match turn_end(&seen) {
        Some(TurnEnd::Failed(message)) => {
            assert!(message.contains("agent exited"), "{message}");
            assert!(message.contains("exit status: 3"), "{message}");
            assert!(message.contains("out of cheese"), "{message}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    match seen.last() {
        Some(AgentEvent::Exited { reason }) => {
            assert!(reason.contains("exit status: 3"), "{reason}");
            assert!(reason.contains("out of cheese"), "{reason}");
        }
        other => panic!("expected Exited last, got {other:?}"),
    }
    assert!(!alive(handle.pid().unwrap()));
    assert!(handle.prompt("anyone?").is_err(), "the handle is dead");
}

#[tokio::test]
async fn scripted_malformed_lines_warn_and_the_session_continues() {
    let scratch = Scratch::new("malformed");
    let spec = script_spec(&format!(
        "read -r line\necho 'this is not json'\necho '[1,2,3]'\n\
         echo '{{\"jsonrpc\":\"2.0\",\"method\":\"session/update\",\"params\":{{\"sessionId\":\"s1\",\"update\":{{\"sessionUpdate\":\"tool_call\",\"toolCallId\":7}}}}}}'\n\
         {}\necho '{{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{{\"stopReason\":\"end_turn\"}}}}'\n\
         read -r line\n{}\necho '{{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{{\"stopReason\":\"end_turn\"}}}}'\n\
         while read -r line; do :; done\n",
        chunk("still "),
        chunk("fine")
    ));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::Ask, files))
            .await
            .expect("the script starts");
    // No modes advertised: a warning says the agent keeps its own.
    let first = next(&mut events).await;
    assert!(
        matches!(&first, AgentEvent::Warning(w) if w.contains("no mode")),
        "{first:?}"
    );
    handle.prompt("go").unwrap();
    let seen = turn(&mut events).await;
    println!("malformed: {seen:#?}");
    let warnings: Vec<&String> = seen
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Warning(w) => Some(w),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(warnings[0].contains("this is not json"));
    assert!(warnings[1].contains("[1,2,3]"));
    assert!(warnings[2].contains("tool_call"));
    assert_eq!(text_of(&seen), "still ");
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    handle.prompt("again").unwrap();
    let seen = turn(&mut events).await;
    assert_eq!(text_of(&seen), "fine");
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    // This agent leaves when stdin closes: no signal needed.
    let reason = shutdown(handle, events).await;
    assert!(reason.contains("exit status: 0"), "{reason}");
}

#[tokio::test]
async fn scripted_fs_read_is_served_from_file_access() {
    let scratch = Scratch::new("fsread");
    let answers = scratch.root.join("answers.jsonl");
    let path = scratch.repo().join("hello.txt");
    let spec = script_spec(&format!(
        "read -r line\n\
         echo '{{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"method\":\"fs/read_text_file\",\"params\":{{\"sessionId\":\"s1\",\"path\":\"{path}\",\"line\":2,\"limit\":1}}}}'\n\
         read -r answer; printf '%s\\n' \"$answer\" >> {answers}\n\
         echo '{{\"jsonrpc\":\"2.0\",\"id\":\"r2\",\"method\":\"fs/read_text_file\",\"params\":{{\"sessionId\":\"s1\",\"path\":\"{missing}\"}}}}'\n\
         read -r answer; printf '%s\\n' \"$answer\" >> {answers}\n\
         echo '{{\"jsonrpc\":\"2.0\",\"id\":\"r3\",\"method\":\"fs/read_text_file\",\"params\":{{\"sessionId\":\"s1\",\"path\":\"/etc/passwd\"}}}}'\n\
         read -r answer; printf '%s\\n' \"$answer\" >> {answers}\n\
         echo '{{\"jsonrpc\":\"2.0\",\"id\":\"w1\",\"method\":\"fs/write_text_file\",\"params\":{{\"sessionId\":\"s1\",\"path\":\"{path}\",\"content\":\"new text\"}}}}'\n\
         read -r answer; printf '%s\\n' \"$answer\" >> {answers}\n\
         echo '{{\"jsonrpc\":\"2.0\",\"id\":\"t1\",\"method\":\"terminal/create\",\"params\":{{}}}}'\n\
         read -r answer; printf '%s\\n' \"$answer\" >> {answers}\n\
         echo '{{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{{\"stopReason\":\"end_turn\"}}}}'\n\
         while read -r line; do :; done\n",
        path = path.display(),
        missing = scratch.repo().join("missing.txt").display(),
        answers = answers.display(),
    ));
    let files = Arc::new(MemFiles::default());
    files
        .texts
        .lock()
        .unwrap()
        .insert(path.clone(), "one\ntwo (unsaved)\nthree\n".into());
    let (handle, mut events) = harness::agent::start(
        &spec,
        options(scratch.repo(), Approval::AutoEdit, files.clone()),
    )
    .await
    .expect("the script starts");
    handle.prompt("read it").unwrap();
    let seen = turn(&mut events).await;
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    let answers: Vec<serde_json::Value> = std::fs::read_to_string(&answers)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    println!("fs answers: {answers:#?}");
    assert_eq!(answers[0]["id"], "r1");
    assert_eq!(answers[0]["result"]["content"], "two (unsaved)\n");
    assert_eq!(answers[1]["id"], "r2");
    assert!(
        answers[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no such buffer")
    );
    // Outside the session's directory: refused before FileAccess sees it.
    assert_eq!(answers[2]["id"], "r3");
    assert!(
        answers[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("outside the session")
    );
    assert_eq!(answers[3]["id"], "w1");
    assert!(answers[3]["result"].is_object());
    assert_eq!(answers[4]["id"], "t1");
    assert_eq!(answers[4]["error"]["code"], -32601);
    assert_eq!(
        *files.writes.lock().unwrap(),
        vec![(path.clone(), "new text".to_owned())]
    );
    shutdown(handle, events).await;
}

#[tokio::test]
async fn scripted_hang_ignoring_sigterm_is_killed_on_shutdown() {
    let scratch = Scratch::new("hang");
    // Ignores stdin EOF and SIGTERM (so does its `sleep`, which inherits the ignored signal):
    // only SIGKILL to the group stops them.
    let spec = script_spec(&format!(
        "trap '' TERM\nread -r line\n{}\nwhile :; do sleep 1; done\n",
        chunk("thinking")
    ));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("the script starts");
    handle.prompt("hang").unwrap();
    until(&mut events, |e| matches!(e, AgentEvent::Message(_))).await;
    let started = std::time::Instant::now();
    let reason = shutdown(handle, events).await;
    println!("hang: stopped in {:?}: {reason}", started.elapsed());
    assert!(reason.contains("SIGKILL"), "{reason}");
    // grace 0.5 s + 2 s between SIGTERM and SIGKILL.
    assert!(started.elapsed() >= Duration::from_millis(2400));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn scripted_permission_is_withdrawn_when_the_turn_ends() {
    let scratch = Scratch::new("withdraw");
    let answers = scratch.root.join("answers.jsonl");
    let spec = script_spec(&format!(
        "read -r line\n\
         echo '{{\"jsonrpc\":\"2.0\",\"id\":\"p1\",\"method\":\"session/request_permission\",\"params\":{{\"sessionId\":\"s1\",\"toolCall\":{{\"toolCallId\":\"c1\",\"kind\":\"execute\",\"title\":\"rm -rf build\",\"rawInput\":{{\"command\":[\"/bin/bash\",\"-lc\",\"rm -rf build\"]}}}},\"options\":[{{\"optionId\":\"yes\",\"name\":\"Yes\",\"kind\":\"allow_once\"}},{{\"optionId\":\"always\",\"name\":\"Always\",\"kind\":\"allow_always\"}},{{\"optionId\":\"no\",\"name\":\"No\",\"kind\":\"reject_once\"}}]}}}}'\n\
         read -r cancel; printf '%s\\n' \"$cancel\" >> {answers}\n\
         read -r answer; printf '%s\\n' \"$answer\" >> {answers}\n\
         echo '{{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{{\"stopReason\":\"cancelled\"}}}}'\n\
         while read -r line; do :; done\n",
        answers = answers.display(),
    ));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::Ask, files))
            .await
            .expect("the script starts");
    handle.prompt("clean").unwrap();
    let seen = until(&mut events, |e| matches!(e, AgentEvent::Permission(_))).await;
    let Some(AgentEvent::Permission(request)) = seen.last().cloned() else {
        unreachable!()
    };
    assert_eq!(request.kind, PermissionKind::Command);
    assert_eq!(request.title, "Run `rm -rf build`");
    handle.cancel().unwrap();
    let seen = turn(&mut events).await;
    println!("withdrawn: {seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, AgentEvent::PermissionWithdrawn { id } if *id == request.id))
    );
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Cancelled));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&answers)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["method"], "session/cancel");
    assert_eq!(lines[1]["id"], "p1");
    assert_eq!(lines[1]["result"]["outcome"]["outcome"], "cancelled");
    // A late answer is refused with a warning, not sent.
    handle
        .answer(request.id, PermissionAnswer::AllowOnce)
        .unwrap();
    let late = next(&mut events).await;
    assert!(matches!(late, AgentEvent::Warning(_)), "{late:?}");
    shutdown(handle, events).await;
}

#[tokio::test]
async fn scripted_flood_arrives_whole_and_a_second_prompt_waits_its_turn() {
    let scratch = Scratch::new("flood");
    const CHUNKS: usize = 5000;
    // 5000 updates in one burst, then the turn ends; the queued prompt (id 4) follows.
    let spec = script_spec(&format!(
        "read -r line\ni=0; while [ $i -lt {CHUNKS} ]; do {}; i=$((i+1)); done\n\
         echo '{{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{{\"stopReason\":\"end_turn\"}}}}'\n\
         read -r line\ncase \"$line\" in *second*) {};; esac\n\
         echo '{{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{{\"stopReason\":\"max_tokens\"}}}}'\n\
         while read -r line; do :; done\n",
        chunk("x"),
        chunk("second seen")
    ));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("the script starts");
    handle.prompt("first").unwrap();
    handle.prompt("second").unwrap();
    let first = turn(&mut events).await;
    assert!(
        first
            .iter()
            .any(|e| matches!(e, AgentEvent::Warning(w) if w.contains("queued"))),
        "the second prompt is queued with a warning"
    );
    assert_eq!(text_of(&first), "x".repeat(CHUNKS));
    assert_eq!(turn_end(&first), Some(&TurnEnd::Completed));
    let second = turn(&mut events).await;
    println!(
        "flood: {} events in the first turn, second turn: {second:?}",
        first.len()
    );
    assert_eq!(text_of(&second), "second seen");
    assert_eq!(turn_end(&second), Some(&TurnEnd::Completed));
    shutdown(handle, events).await;
}

#[tokio::test]
async fn a_missing_program_or_a_failed_handshake_is_an_error_with_the_reason() {
    let scratch = Scratch::new("nostart");
    let files = Arc::new(MemFiles::default());
    let mut spec = script_spec("");
    spec.command = vec!["/nonexistent/agent-binary".into()];
    let error = harness::agent::start(
        &spec,
        options(scratch.repo(), Approval::AutoEdit, files.clone()),
    )
    .await
    .expect_err("spawn fails");
    println!("missing program: {error}");
    assert!(matches!(error, AgentError::Spawn { .. }), "{error:?}");

    spec.command = vec![
        "sh".into(),
        "-c".into(),
        "read -r line; echo 'no API key configured' >&2; exit 2".into(),
    ];
    let error = harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
        .await
        .expect_err("the handshake fails");
    println!("failed handshake: {error}");
    let AgentError::Handshake { reason, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(reason.contains("initialize"), "{reason}");
    assert!(reason.contains("exit status: 2"), "{reason}");
}

/// Whether `pid` is gone or a zombie (killed, waiting for init to reap it).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn scripted_crash_also_stops_the_agents_children() {
    let scratch = Scratch::new("orphans");
    let pidfile = scratch.root.join("grandchild.pid");
    // A background grandchild that would outlive its parent and hold stdout open.
    let spec = script_spec(&format!(
        "read -r line\nsleep 300 &\necho $! > {}\n{}\nexit 1\n",
        pidfile.display(),
        chunk("bye")
    ));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("the script starts");
    handle.prompt("go").unwrap();
    let seen = turn(&mut events).await;
    assert!(matches!(turn_end(&seen), Some(TurnEnd::Failed(_))));
    let exited = next(&mut events).await;
    println!("orphans: {exited:?}");
    assert!(matches!(exited, AgentEvent::Exited { .. }));
    let grandchild: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !dead(grandchild) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dead(grandchild), "grandchild {grandchild} survived");
}

/// One `session/update` line for a script (`printf`: dash's `echo` would expand the `\n`s).
fn update(json: &str) -> String {
    format!(
        r#"printf '%s\n' '{{"jsonrpc":"2.0","method":"session/update","params":{{"sessionId":"s1","update":{json}}}}}'"#
    )
}

#[tokio::test]
async fn scripted_plan_plain_diffs_and_open_tool_calls_map_to_events() {
    let scratch = Scratch::new("mapping");
    let spec = script_spec(&format!(
        "read -r line\n{}\n{}\n{}\n{}\n{}\n\
         echo '{{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{{\"stopReason\":\"end_turn\"}}}}'\n\
         while read -r line; do :; done\n",
        update(
            r#"{"sessionUpdate":"plan","entries":[{"content":"Read","priority":"high","status":"completed"},{"content":"Edit","priority":"medium","status":"in_progress"},{"content":"Test","priority":"low","status":"pending"}]}"#
        ),
        update(
            r#"{"sessionUpdate":"tool_call","toolCallId":"e1","title":"Write files","kind":"edit","status":"in_progress"}"#
        ),
        update(
            r#"{"sessionUpdate":"tool_call_update","toolCallId":"e1","status":"completed","content":[{"type":"diff","path":"/w/a.txt","oldText":"one\ntwo\n","newText":"one\n2\n"},{"type":"diff","path":"/w/b.txt","newText":"fresh\n"}]}"#
        ),
        update(
            r#"{"sessionUpdate":"tool_call","toolCallId":"e2","title":"Touch","kind":"edit","status":"completed"}"#
        ),
        update(
            r#"{"sessionUpdate":"tool_call","toolCallId":"x1","title":"cargo test","kind":"execute","status":"in_progress","rawInput":{"command":["/bin/bash","-lc","cargo test"]}}"#
        ),
    ));
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("the script starts");
    handle.prompt("go").unwrap();
    let seen = turn(&mut events).await;
    println!("mapping: {seen:#?}");
    use harness::agent::{PlanEntry, PlanStatus, ReportedChange, ToolCall};
    let expected = vec![
        AgentEvent::Plan(vec![
            PlanEntry {
                content: "Read".into(),
                status: PlanStatus::Completed,
            },
            PlanEntry {
                content: "Edit".into(),
                status: PlanStatus::InProgress,
            },
            PlanEntry {
                content: "Test".into(),
                status: PlanStatus::Pending,
            },
        ]),
        AgentEvent::ToolCall(ToolCall {
            id: "e1".into(),
            title: "Write files".into(),
            kind: ToolKind::Edit,
            status: ToolStatus::InProgress,
        }),
        AgentEvent::ToolCall(ToolCall {
            id: "e1".into(),
            title: "Write files".into(),
            kind: ToolKind::Edit,
            status: ToolStatus::Completed,
        }),
        AgentEvent::FilesChanged {
            item: "e1".into(),
            changes: vec![
                ReportedChange {
                    path: "/w/a.txt".into(),
                    kind: ReportedKind::Update {
                        unified_diff: "@@ -1,2 +1,2 @@\n one\n-two\n+2\n".into(),
                        move_path: None,
                    },
                },
                ReportedChange {
                    path: "/w/b.txt".into(),
                    kind: ReportedKind::Add {
                        content: "fresh\n".into(),
                    },
                },
            ],
        },
        // An edit that says nothing about what it changed still signals a change.
        AgentEvent::ToolCall(ToolCall {
            id: "e2".into(),
            title: "Touch".into(),
            kind: ToolKind::Edit,
            status: ToolStatus::Completed,
        }),
        AgentEvent::FilesChanged {
            item: "e2".into(),
            changes: Vec::new(),
        },
        AgentEvent::ToolCall(ToolCall {
            id: "x1".into(),
            title: "cargo test".into(),
            kind: ToolKind::Execute,
            status: ToolStatus::InProgress,
        }),
        // Never completed by the agent: closed when the turn ends.
        AgentEvent::ToolCall(ToolCall {
            id: "x1".into(),
            title: "cargo test".into(),
            kind: ToolKind::Execute,
            status: ToolStatus::Completed,
        }),
        AgentEvent::Command {
            item: "x1".into(),
            command: "cargo test".into(),
            exit_code: None,
            output_tail: String::new(),
        },
        AgentEvent::TurnEnded(TurnEnd::Completed),
    ];
    assert!(
        matches!(&seen[0], AgentEvent::Warning(w) if w.contains("no mode")),
        "{:?}",
        seen[0]
    );
    assert_eq!(seen[1..], expected);
    shutdown(handle, events).await;
}

/// codex-acp in `scratch` with `approval`, or `None` (skip) without the binary.
async fn start_codex(
    scratch: &Scratch,
    fake: &FakeModel,
    approval: Approval,
) -> Option<(AgentHandle, UnboundedReceiver<AgentEvent>)> {
    let spec = codex_spec(scratch, fake)?;
    let files = Arc::new(MemFiles::default());
    Some(
        harness::agent::start(&spec, options(scratch.repo(), approval, files))
            .await
            .expect("codex-acp starts"),
    )
}

#[tokio::test]
async fn codex_cancel_while_a_permission_waits_withdraws_it() {
    let scratch = Scratch::new("cancelperm");
    let fake = FakeModel::start().await;
    fake.push(Reply::items(vec![Item::apply_patch(edit_patch())]));
    let Some((handle, mut events)) = start_codex(&scratch, &fake, Approval::Ask).await else {
        return;
    };
    handle.prompt("edit hello.txt").unwrap();
    let seen = until(&mut events, |e| matches!(e, AgentEvent::Permission(_))).await;
    let Some(AgentEvent::Permission(request)) = seen.last().cloned() else {
        unreachable!()
    };
    handle.cancel().unwrap();
    let seen = turn(&mut events).await;
    println!("cancel during permission: {seen:?}");
    assert!(
        seen.iter()
            .any(|e| matches!(e, AgentEvent::PermissionWithdrawn { id } if *id == request.id))
    );
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Cancelled));
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("hello.txt")).unwrap(),
        "hello\n"
    );
    shutdown(handle, events).await;
}

#[tokio::test]
async fn codex_shutdown_during_a_turn_cancels_it_and_leaves_no_process() {
    let scratch = Scratch::new("shutdownturn");
    let fake = FakeModel::start().await;
    fake.push(Reply::items(vec![
        Item::message("working "),
        Item::pause(Duration::from_secs(20)),
        Item::message("never"),
    ]));
    let Some((handle, mut events)) = start_codex(&scratch, &fake, Approval::AutoEdit).await else {
        return;
    };
    handle.prompt("go slowly").unwrap();
    until(&mut events, |e| matches!(e, AgentEvent::Message(_))).await;
    let pid = handle.pid().unwrap();
    let started = std::time::Instant::now();
    tokio::time::timeout(STEP, handle.shutdown())
        .await
        .expect("shutdown returns");
    println!("shutdown during a turn took {:?}", started.elapsed());
    assert!(!alive(pid));
    let mut rest = Vec::new();
    while let Some(event) = tokio::time::timeout(STEP, events.recv()).await.unwrap() {
        rest.push(event);
    }
    println!("after shutdown: {rest:?}");
    assert_eq!(turn_end(&rest), Some(&TurnEnd::Cancelled));
    assert!(matches!(rest.last(), Some(AgentEvent::Exited { .. })));
    assert!(!text_of(&rest).contains("never"));
}

#[tokio::test]
async fn codex_move_and_delete_are_reported_as_such() {
    let scratch = Scratch::new("movedelete");
    std::fs::write(scratch.repo().join("old.txt"), "line1\nline2\nline3\n").unwrap();
    std::fs::write(scratch.repo().join("gone.txt"), "to be deleted\n").unwrap();
    let fake = FakeModel::start().await;
    fake.push(Reply::items(vec![Item::apply_patch(patch::wrap(&[
        patch::update("old.txt", Some("moved.txt"), "line2", "line2 changed"),
        patch::delete("gone.txt"),
    ]))]));
    fake.push(Reply::items(vec![Item::message("Moved.")]));
    let Some((handle, mut events)) = start_codex(&scratch, &fake, Approval::AutoEdit).await else {
        return;
    };
    handle.prompt("move and delete").unwrap();
    let seen = turn(&mut events).await;
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    let changes = seen
        .iter()
        .find_map(|e| match e {
            AgentEvent::FilesChanged { changes, .. } => Some(changes.clone()),
            _ => None,
        })
        .expect("FilesChanged");
    println!("move/delete: {changes:#?}");
    let repo = scratch.repo();
    assert!(
        changes
            .iter()
            .any(|c| c.path.ends_with("gone.txt") && c.kind == ReportedKind::Delete)
    );
    assert!(changes.iter().any(|c| c.path.ends_with("old.txt")
        && matches!(&c.kind, ReportedKind::Update { move_path: Some(to), unified_diff }
            if to.ends_with("moved.txt") && unified_diff.contains("+line2 changed"))));
    assert!(!repo.join("old.txt").exists() && !repo.join("gone.txt").exists());
    assert_eq!(
        std::fs::read_to_string(repo.join("moved.txt")).unwrap(),
        "line1\nline2 changed\nline3\n"
    );
    shutdown(handle, events).await;
}

#[tokio::test]
async fn codex_plan_update_arrives_as_a_plan() {
    let scratch = Scratch::new("plan");
    let fake = FakeModel::start().await;
    fake.push(Reply::items(vec![Item::function_call(
        "update_plan",
        &serde_json::json!({"plan": [
            {"step": "Edit hello.txt", "status": "in_progress"},
            {"step": "Add notes/new.txt", "status": "pending"}
        ]}),
    )]));
    fake.push(Reply::items(vec![Item::message("Planned.")]));
    let Some((handle, mut events)) = start_codex(&scratch, &fake, Approval::AutoEdit).await else {
        return;
    };
    handle.prompt("plan it").unwrap();
    let seen = turn(&mut events).await;
    println!("plan: {seen:?}");
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    use harness::agent::{PlanEntry, PlanStatus};
    assert!(seen.contains(&AgentEvent::Plan(vec![
        PlanEntry {
            content: "Edit hello.txt".into(),
            status: PlanStatus::InProgress
        },
        PlanEntry {
            content: "Add notes/new.txt".into(),
            status: PlanStatus::Pending
        },
    ])));
    shutdown(handle, events).await;
}

// ---- testkit's scripted-acp-agent: a real ACP agent binary following a JSON script. ----

/// The scripted agent with `script` (a JSON object; `log` and `pid_file` are added, in
/// `scratch`), and the paths of its log and pid file.
fn scripted_agent(
    scratch: &Scratch,
    mut script: serde_json::Value,
) -> (AgentSpec, PathBuf, PathBuf) {
    let log = scratch.root.join("agent.log");
    let pid_file = scratch.root.join("agent.pid");
    script["log"] = log.to_string_lossy().into_owned().into();
    script["pid_file"] = pid_file.to_string_lossy().into_owned().into();
    let script_path = scratch.root.join("script.json");
    std::fs::write(&script_path, script.to_string()).unwrap();
    let spec = AgentSpec {
        name: "scripted-acp-agent".into(),
        kind: AgentKind::Acp,
        command: vec![
            testkit::scripted_agent::binary_path()
                .to_string_lossy()
                .into_owned(),
        ],
        env: vec![(
            testkit::scripted_agent::SCRIPT_ENV.into(),
            script_path.to_string_lossy().into_owned(),
        )],
        connect: None,
    };
    (spec, log, pid_file)
}

/// The JSON lines the agent received, in order.
fn agent_log(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test]
async fn scripted_agent_plan_permission_and_edits() {
    let scratch = Scratch::new("sa-edit");
    std::fs::write(scratch.repo().join("old.txt"), "old\n").unwrap();
    let (spec, log, _) = scripted_agent(
        &scratch,
        serde_json::json!({"turns": [
            [{"type": "plan", "entries": [{"content": "Edit a.txt", "status": "in_progress"}]},
             {"type": "permission", "title": "Edit a.txt", "path": "a.txt",
              "allowed": [{"type": "write", "path": "a.txt", "content": "new\n"}]},
             {"type": "write", "path": "hello.txt", "content": "hello, scripted\n"},
             {"type": "rename", "from": "old.txt", "to": "renamed.txt"},
             {"type": "message", "text": "Done."}],
            [{"type": "permission", "title": "Edit b.txt", "path": "b.txt",
              "allowed": [{"type": "write", "path": "b.txt", "content": "b\n"}]},
             {"type": "message", "text": "not reached"}]
        ]}),
    );
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::Ask, files))
            .await
            .expect("the scripted agent starts");
    handle.prompt("edit").unwrap();
    let mut seen = until(&mut events, |e| matches!(e, AgentEvent::Permission(_))).await;
    let Some(AgentEvent::Permission(request)) = seen.last().cloned() else {
        unreachable!()
    };
    assert_eq!(request.kind, PermissionKind::Edit);
    assert_eq!(request.title, "Edit a.txt");
    handle
        .answer(request.id, PermissionAnswer::AllowOnce)
        .unwrap();
    seen.extend(turn(&mut events).await);
    println!("scripted edit turn: {seen:#?}");
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    assert!(
        seen.iter()
            .any(|e| matches!(e, AgentEvent::Plan(p) if p.len() == 1))
    );
    let changed: Vec<PathBuf> = seen
        .iter()
        .filter_map(|e| match e {
            AgentEvent::FilesChanged { changes, .. } => Some(changes.clone()),
            _ => None,
        })
        .flatten()
        .map(|c| c.path)
        .collect();
    let repo = std::fs::canonicalize(scratch.repo()).unwrap();
    for name in ["a.txt", "hello.txt", "renamed.txt"] {
        assert!(
            changed
                .iter()
                .any(|p| p.ends_with(name) && p.starts_with(&repo)),
            "{name} reported: {changed:?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(repo.join("a.txt")).unwrap(),
        "new\n"
    );
    assert_eq!(text_of(&seen), "Done.");
    // The agent got `allow_once`'s option.
    let answers = agent_log(&log);
    assert!(
        answers
            .iter()
            .any(|m| m["result"]["outcome"]["optionId"] == "allow-once"),
        "{answers:?}"
    );

    // Second turn: denied, the agent ends the turn cancelled and writes nothing.
    handle.prompt("again").unwrap();
    let mut seen = until(&mut events, |e| matches!(e, AgentEvent::Permission(_))).await;
    let Some(AgentEvent::Permission(request)) = seen.last().cloned() else {
        unreachable!()
    };
    handle.answer(request.id, PermissionAnswer::Deny).unwrap();
    seen.extend(turn(&mut events).await);
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Cancelled));
    assert!(!repo.join("b.txt").exists());
    assert!(!text_of(&seen).contains("not reached"));
    shutdown(handle, events).await;
}

#[tokio::test]
async fn scripted_agent_crash_mid_task() {
    let scratch = Scratch::new("sa-crash");
    let (spec, _, pid_file) = scripted_agent(
        &scratch,
        serde_json::json!({"turns": [[
            {"type": "message", "text": "halfway"},
            {"type": "exec", "command": "true"},
            {"type": "crash", "code": 7}
        ]]}),
    );
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("the scripted agent starts");
    handle.prompt("go").unwrap();
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(STEP, events.recv()).await.unwrap() {
        seen.push(event);
    }
    println!("scripted crash: {seen:?}");
    assert_eq!(text_of(&seen), "halfway");
    match turn_end(&seen) {
        Some(TurnEnd::Failed(message)) => assert!(message.contains("exit status: 7"), "{message}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    // The open exec tool call was closed as failed before the turn ended.
    assert!(seen.iter().any(|e| matches!(e, AgentEvent::ToolCall(t)
        if t.kind == ToolKind::Execute && t.status == ToolStatus::Failed)));
    assert!(
        matches!(seen.last(), Some(AgentEvent::Exited { reason }) if reason.contains("exit status: 7"))
    );
    let pid: u32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(Some(pid), handle.pid());
    assert!(!alive(pid));
}

#[tokio::test]
async fn scripted_agent_malformed_lines_warn_and_the_session_continues() {
    let scratch = Scratch::new("sa-malformed");
    let kinds = [
        "invalid_json",
        "invalid_utf8",
        "not_an_object",
        "unknown_notification",
        "unknown_request",
        "wrong_types",
        "missing_session",
    ];
    let mut steps: Vec<serde_json::Value> = kinds
        .iter()
        .map(|k| serde_json::json!({"type": "malformed", "kind": k}))
        .collect();
    steps.push(serde_json::json!({"type": "message", "text": "still here"}));
    let (spec, log, _) = scripted_agent(
        &scratch,
        serde_json::json!({"turns": [steps, [{"type": "message", "text": "and again"}]]}),
    );
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("the scripted agent starts");
    handle.prompt("go").unwrap();
    let seen = turn(&mut events).await;
    println!("scripted malformed: {seen:#?}");
    let warnings = seen
        .iter()
        .filter(|e| matches!(e, AgentEvent::Warning(_)))
        .count();
    // invalid_json, not_an_object, wrong_types (agent_message_chunk), missing_session; the
    // unknown notification is ignored, the unknown request answered -32601, and the invalid
    // UTF-8 line decodes (lossily) to a notification we ignore.
    assert!(warnings >= 4, "{warnings} warnings");
    assert_eq!(text_of(&seen), "still here");
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    handle.prompt("again").unwrap();
    let seen = turn(&mut events).await;
    assert_eq!(text_of(&seen), "and again");
    assert!(
        agent_log(&log).iter().any(|m| m["error"]["code"] == -32601),
        "the unknown request was answered method-not-found"
    );
    shutdown(handle, events).await;
}

#[tokio::test]
async fn scripted_agent_fs_calls_go_through_file_access() {
    let scratch = Scratch::new("sa-fs");
    let repo = scratch.repo();
    let (spec, log, _) = scripted_agent(
        &scratch,
        serde_json::json!({"turns": [[
            {"type": "read_file", "path": "hello.txt", "line": 2, "limit": 2},
            {"type": "read_file", "path": "../outside.txt"},
            {"type": "client_write", "path": "hello.txt", "content": "written through baton\n"},
            {"type": "message", "text": "read"}
        ]]}),
    );
    let files = Arc::new(MemFiles::default());
    files.texts.lock().unwrap().insert(
        repo.join("hello.txt"),
        "hello\nunsaved line 2\nline 3\nline 4\n".into(),
    );
    let (handle, mut events) = harness::agent::start(
        &spec,
        options(repo.clone(), Approval::AutoEdit, files.clone()),
    )
    .await
    .expect("the scripted agent starts");
    handle.prompt("read").unwrap();
    let seen = turn(&mut events).await;
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    let answers: Vec<serde_json::Value> = agent_log(&log)
        .into_iter()
        .filter(|m| m.get("method").is_none())
        .collect();
    println!("scripted fs answers: {answers:#?}");
    assert_eq!(answers[0]["result"]["content"], "unsaved line 2\nline 3\n");
    assert!(
        answers[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("outside the session")
    );
    assert!(answers[2]["result"].is_object());
    assert_eq!(
        *files.writes.lock().unwrap(),
        vec![(repo.join("hello.txt"), "written through baton\n".to_owned())]
    );
    // Served from FileAccess: the disk was never read or written for it.
    assert_eq!(
        std::fs::read_to_string(repo.join("hello.txt")).unwrap(),
        "hello\n"
    );
    shutdown(handle, events).await;
}

#[tokio::test]
async fn scripted_agent_hang_is_killed_on_shutdown() {
    let scratch = Scratch::new("sa-hang");
    let (spec, _, pid_file) = scripted_agent(
        &scratch,
        serde_json::json!({"exit_on_eof": false, "ignore_sigterm": true, "turns": [[
            {"type": "message", "text": "thinking"},
            {"type": "hang"}
        ]]}),
    );
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("the scripted agent starts");
    handle.prompt("hang").unwrap();
    until(&mut events, |e| matches!(e, AgentEvent::Message(_))).await;
    let started = std::time::Instant::now();
    let reason = shutdown(handle, events).await;
    println!(
        "scripted hang: stopped in {:?}: {reason}",
        started.elapsed()
    );
    assert!(reason.contains("SIGKILL"), "{reason}");
    let pid: u32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(pid));
}

#[tokio::test]
async fn scripted_agent_flood_is_delivered_whole() {
    let scratch = Scratch::new("sa-flood");
    const COUNT: usize = 20_000;
    let (spec, _, _) = scripted_agent(
        &scratch,
        serde_json::json!({"turns": [[{"type": "flood", "count": COUNT}]]}),
    );
    let files = Arc::new(MemFiles::default());
    let (handle, mut events) =
        harness::agent::start(&spec, options(scratch.repo(), Approval::AutoEdit, files))
            .await
            .expect("the scripted agent starts");
    let started = std::time::Instant::now();
    handle.prompt("flood").unwrap();
    let seen = turn(&mut events).await;
    println!(
        "scripted flood: {} events in {:?}",
        seen.len(),
        started.elapsed()
    );
    let expected: String = (0..COUNT).map(|i| format!("{i} ")).collect();
    assert_eq!(text_of(&seen), expected);
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    shutdown(handle, events).await;
}

// ---- Plan mode over ACP: the agent's own plan mode, else read-only with a warning. ----

fn plan_options(scratch: &Scratch) -> SessionOptions {
    SessionOptions {
        mode: SessionMode::Plan,
        ..options(
            scratch.repo(),
            Approval::AutoEdit,
            Arc::new(MemFiles::default()),
        )
    }
}

/// The `modeId`s of the `session/set_mode` requests the agent received.
fn modes_set(log: &Path) -> Vec<String> {
    agent_log(log)
        .iter()
        .filter(|m| m["method"] == "session/set_mode")
        .map(|m| {
            m["params"]["modeId"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn prompt_only_warning(events: &[AgentEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, AgentEvent::Warning(w) if w.contains("plan mode is prompt-only")))
}

#[tokio::test]
async fn scripted_agent_plan_mode_selects_the_agents_plan_mode() {
    let scratch = Scratch::new("sa-planmode");
    let (spec, log, _) = scripted_agent(
        &scratch,
        serde_json::json!({
            "modes": {"current": "default", "available": [
                {"id": "default", "name": "Always Ask"},
                {"id": "acceptEdits", "name": "Accept Edits"},
                {"id": "plan", "name": "Plan Mode"},
                {"id": "bypassPermissions", "name": "Bypass Permissions"}]},
            "turns": [[{"type": "plan", "entries": [{"content": "Read hello.txt"}]},
                       {"type": "message", "text": "Planned."}]]
        }),
    );
    let (handle, mut events) = harness::agent::start(&spec, plan_options(&scratch))
        .await
        .expect("the scripted agent starts");
    handle.prompt("plan").unwrap();
    let seen = turn(&mut events).await;
    println!("plan mode: {seen:#?}");
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Completed));
    assert_eq!(modes_set(&log), vec!["plan".to_string()]);
    assert!(!prompt_only_warning(&seen), "{seen:?}");
    // ACP's plan stays a plan of entries.
    assert!(seen.iter().any(
        |e| matches!(e, AgentEvent::Plan(entries) if entries.len() == 1 && entries[0].content == "Read hello.txt")
    ));
    shutdown(handle, events).await;
}

#[tokio::test]
async fn scripted_agent_without_a_plan_mode_runs_read_only_with_a_warning() {
    let scratch = Scratch::new("sa-noplanmode");
    // codex-acp's modes, but starting in `auto`, so choosing read-only needs a set_mode.
    let (spec, log, _) = scripted_agent(
        &scratch,
        serde_json::json!({
            "modes": {"current": "auto", "available": [
                {"id": "read-only", "name": "Read Only"},
                {"id": "auto", "name": "Default"},
                {"id": "full-access", "name": "Full Access"}]},
            "turns": [[{"type": "permission", "title": "Edit hello.txt", "path": "hello.txt",
                        "allowed": [{"type": "write", "path": "hello.txt", "content": "changed\n"}]},
                       {"type": "message", "text": "not reached"}]]
        }),
    );
    let (handle, mut events) = harness::agent::start(&spec, plan_options(&scratch))
        .await
        .expect("the scripted agent starts");
    handle.prompt("plan").unwrap();
    let seen = turn(&mut events).await;
    println!("no plan mode: {seen:#?}");
    assert_eq!(modes_set(&log), vec!["read-only".to_string()]);
    assert!(prompt_only_warning(&seen), "{seen:?}");
    // Plan mode handles permissions read-only: the edit is denied without asking.
    assert!(!seen.iter().any(|e| matches!(e, AgentEvent::Permission(_))));
    assert_eq!(turn_end(&seen), Some(&TurnEnd::Cancelled));
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("hello.txt")).unwrap(),
        "hello\n"
    );
    shutdown(handle, events).await;
}

#[tokio::test]
async fn codex_plan_mode_is_read_only_with_a_warning() {
    let scratch = Scratch::new("planmode");
    let fake = FakeModel::start().await;
    let Some(spec) = codex_spec(&scratch, &fake) else {
        return;
    };
    fake.push(Reply::items(vec![Item::apply_patch(edit_patch())]));
    fake.push(Reply::items(vec![Item::message("Done.")]));
    let (handle, mut events) = harness::agent::start(&spec, plan_options(&scratch))
        .await
        .expect("codex-acp starts");
    handle.prompt("edit hello.txt").unwrap();
    let seen = turn(&mut events).await;
    println!("codex-acp plan mode: {seen:?}");
    // codex-acp starts in `read-only` (no set_mode needed) and has no plan mode.
    assert!(prompt_only_warning(&seen), "{seen:?}");
    assert!(!seen.iter().any(|e| matches!(e, AgentEvent::Permission(_))));
    assert!(
        seen.iter()
            .any(|e| matches!(e, AgentEvent::Warning(w) if w.contains("read-only: denied")))
    );
    assert_eq!(
        std::fs::read_to_string(scratch.repo().join("hello.txt")).unwrap(),
        "hello\n"
    );
    shutdown(handle, events).await;
}
