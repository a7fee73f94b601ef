//! The app-server transport against the real `codex app-server` 0.171.0, whose model is
//! testkit's fake on 127.0.0.1. Each test works in a scratch directory under testkit's
//! `scratch_root()` (outside `/tmp`, like a real shadow: the turn's sandbox policy excludes
//! `/tmp`, and codex refuses a `CODEX_HOME` there). Skips without codex unless `BATON_REQUIRE_CODEX=1`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use harness::agent::{
    self, AgentEvent, AgentHandle, AgentKind, AgentSpec, Approval, FileAccess, PermissionAnswer,
    PermissionKind, QuestionRequest, ReportedChange, ReportedKind, SessionMode, SessionOptions,
    TurnEnd, UserQuestion,
};
use harness::app_server::apply_unified;
use testkit::codex::{CodexHome, require_codex, scratch_root, unique_dir};
use testkit::fake_model::{FakeModel, Item, Reply, patch, user_question};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long any one expected event may take (codex starts in well under a second; the debug
/// build and two shared cores make everything slower).
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

struct NoFiles;

impl FileAccess for NoFiles {
    fn read_text(&self, path: &Path) -> Result<String, String> {
        Err(format!("{} is not served", path.display()))
    }
    fn write_text(&self, path: &Path, _text: &str) -> Result<(), String> {
        Err(format!("{} is not served", path.display()))
    }
}

/// A scratch directory with the agent's working directory (`work/`) and its `CODEX_HOME`
/// (`home/`), plus the fake model; removed on drop.
struct Rig {
    root: PathBuf,
    codex: PathBuf,
    fake: FakeModel,
    home: CodexHome,
}

impl Rig {
    async fn new(name: &str) -> Option<Rig> {
        let codex = require_codex()?;
        let root = unique_dir(&scratch_root().join(format!("app-server-{name}"))).unwrap();
        std::fs::create_dir_all(root.join("work")).unwrap();
        // Its own repository, so codex does not take the enclosing checkout (target/ is inside
        // baton's) for the project: `turn/diff/updated` paths are relative to the git root.
        let status = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(root.join("work"))
            .status()
            .expect("git runs");
        assert!(status.success());
        let fake = FakeModel::start().await;
        let home = CodexHome::new(root.join("home"), &fake.base_url()).unwrap();
        Some(Rig {
            root,
            codex,
            fake,
            home,
        })
    }

    fn work(&self) -> PathBuf {
        self.root.join("work")
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.work().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.work().join(rel)).ok()
    }

    fn env(&self) -> Vec<(String, String)> {
        self.home
            .env()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect()
    }

    fn spec(&self) -> AgentSpec {
        AgentSpec {
            name: "codex".into(),
            kind: AgentKind::CodexAppServer,
            command: vec![
                self.codex.to_string_lossy().into_owned(),
                "app-server".into(),
            ],
            env: self.env(),
            connect: None,
        }
    }

    fn options(&self, approval: Approval) -> SessionOptions {
        SessionOptions {
            cwd: self.work(),
            approval,
            mode: SessionMode::Work,
            files: Arc::new(NoFiles),
            grace: Duration::from_secs(5),
        }
    }

    async fn start(&self, approval: Approval) -> (AgentHandle, UnboundedReceiver<AgentEvent>) {
        agent::start(&self.spec(), self.options(approval))
            .await
            .expect("app-server starts")
    }

    /// A plan-mode session (its approval is ignored: plan mode is read-only).
    async fn start_plan(&self) -> (AgentHandle, UnboundedReceiver<AgentEvent>) {
        let options = SessionOptions {
            mode: SessionMode::Plan,
            ..self.options(Approval::AutoEdit)
        };
        agent::start(&self.spec(), options)
            .await
            .expect("app-server starts in plan mode")
    }

    /// Every file under the working directory (outside `.git`) with its content.
    fn tree(&self) -> Vec<(PathBuf, String)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.file_name().is_some_and(|n| n == ".git") {
                    continue;
                }
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push((
                        path.clone(),
                        std::fs::read_to_string(&path).unwrap_or_default(),
                    ));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.work(), &mut out);
        out.sort();
        out
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn next(events: &mut UnboundedReceiver<AgentEvent>) -> AgentEvent {
    tokio::time::timeout(EVENT_TIMEOUT, events.recv())
        .await
        .expect("an event in time")
        .expect("the event stream is open")
}

/// Events up to and including the next `TurnEnded`.
async fn turn(events: &mut UnboundedReceiver<AgentEvent>) -> Vec<AgentEvent> {
    let mut seen = Vec::new();
    loop {
        let event = next(events).await;
        let end = matches!(event, AgentEvent::TurnEnded(_));
        assert!(
            !matches!(event, AgentEvent::Exited { .. }),
            "exited mid-turn: {event:?} after {seen:#?}"
        );
        seen.push(event);
        if end {
            return seen;
        }
    }
}

fn turn_end(events: &[AgentEvent]) -> &TurnEnd {
    match events.last() {
        Some(AgentEvent::TurnEnded(end)) => end,
        other => panic!("no turn end: {other:?}"),
    }
}

fn text(events: &[AgentEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::Message(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn files_changed(events: &[AgentEvent]) -> Vec<ReportedChange> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::FilesChanged { changes, .. } => Some(changes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Stops the agent and checks that nothing of it is left: `Exited` is the last event, and no
/// process of its group remains.
async fn shutdown_and_check(handle: &AgentHandle, events: &mut UnboundedReceiver<AgentEvent>) {
    let pid = handle.pid();
    tokio::time::timeout(EVENT_TIMEOUT, handle.shutdown())
        .await
        .expect("shutdown in time");
    let mut rest = Vec::new();
    while let Some(event) = events.recv().await {
        rest.push(event);
    }
    assert!(
        matches!(rest.last(), Some(AgentEvent::Exited { .. })),
        "{rest:?}"
    );
    println!("after shutdown: {rest:?}");
    if let Some(pid) = pid {
        assert!(
            group_members(pid).is_empty(),
            "left behind: {:?}",
            group_members(pid)
        );
    }
}

/// Live processes whose process group is `pgid` (zombies count as gone).
fn group_members(pgid: u32) -> Vec<u32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str()) {
            members.push(pid);
        }
    }
    members
}

#[tokio::test]
async fn text_turn_then_follow_up_in_the_same_thread() {
    let Some(rig) = Rig::new("text").await else {
        return;
    };
    let (handle, mut events) = rig.start(Approval::AutoEdit).await;
    assert!(handle.pid().is_some());

    rig.fake.push(Reply::text("Hello from the fake model."));
    handle.prompt("say hello").unwrap();
    let first = turn(&mut events).await;
    println!("turn 1: {first:?}");
    assert_eq!(turn_end(&first), &TurnEnd::Completed);
    assert_eq!(text(&first), "Hello from the fake model.");

    rig.fake.push(Reply::text("Still here."));
    handle.prompt("again").unwrap();
    let second = turn(&mut events).await;
    assert_eq!(turn_end(&second), &TurnEnd::Completed);
    assert_eq!(text(&second), "Still here.");
    // The follow-up continued the thread: the model saw the first exchange.
    let requests = rig.fake.requests();
    assert_eq!(requests.len(), 2);
    let history = requests[1].body["input"].to_string();
    assert!(history.contains("say hello") && history.contains("Hello from the fake model."));

    shutdown_and_check(&handle, &mut events).await;
}

const OLD: &str = "line1\nline2\nline3\n";

#[tokio::test]
async fn apply_patch_update_add_delete_move() {
    let Some(rig) = Rig::new("edit").await else {
        return;
    };
    rig.write("hello.txt", "hello\n");
    rig.write("gone.txt", "to be deleted\n");
    rig.write("old.txt", OLD);
    let (handle, mut events) = rig.start(Approval::AutoEdit).await;

    rig.fake
        .push(Reply::items(vec![Item::apply_patch(patch::wrap(&[
            patch::update("hello.txt", None, "hello", "hello, baton"),
            patch::add("notes/new.txt", "created by the fake model"),
            patch::delete("gone.txt"),
            patch::update("old.txt", Some("moved.txt"), "line2", "line2 changed"),
        ]))]));
    rig.fake.push(Reply::text("Done: I edited the files."));
    handle.prompt("edit").unwrap();
    let events_seen = turn(&mut events).await;
    println!("edit turn: {events_seen:#?}");
    assert_eq!(turn_end(&events_seen), &TurnEnd::Completed);

    let work = rig.work();
    let changes = files_changed(&events_seen);
    let find = |rel: &str| {
        changes
            .iter()
            .find(|c| c.path == work.join(rel))
            .unwrap_or_else(|| panic!("no change for {rel} in {changes:?}"))
            .kind
            .clone()
    };
    assert_eq!(changes.len(), 4, "{changes:?}");
    let ReportedKind::Update {
        unified_diff,
        move_path: None,
    } = find("hello.txt")
    else {
        panic!("hello.txt: {:?}", find("hello.txt"));
    };
    assert_eq!(unified_diff, "@@ -1 +1 @@\n-hello\n+hello, baton\n");
    assert_eq!(
        apply_unified("hello\n", &unified_diff).unwrap(),
        "hello, baton\n"
    );
    assert_eq!(
        find("notes/new.txt"),
        ReportedKind::Add {
            content: "created by the fake model\n".into()
        }
    );
    assert_eq!(find("gone.txt"), ReportedKind::Delete);
    let ReportedKind::Update {
        unified_diff,
        move_path: Some(to),
    } = find("old.txt")
    else {
        panic!("old.txt: {:?}", find("old.txt"));
    };
    assert_eq!(to, work.join("moved.txt"));
    assert!(!unified_diff.contains("Moved to"), "{unified_diff:?}");
    assert_eq!(
        apply_unified(OLD, &unified_diff).unwrap(),
        "line1\nline2 changed\nline3\n"
    );

    // codex wrote the files before reporting them.
    assert_eq!(rig.read("hello.txt").as_deref(), Some("hello, baton\n"));
    assert_eq!(
        rig.read("notes/new.txt").as_deref(),
        Some("created by the fake model\n")
    );
    assert_eq!(rig.read("gone.txt"), None);
    assert_eq!(rig.read("old.txt"), None);
    assert_eq!(
        rig.read("moved.txt").as_deref(),
        Some("line1\nline2 changed\nline3\n")
    );
    let diff = events_seen.iter().rev().find_map(|e| match e {
        AgentEvent::TurnDiff(d) => Some(d.clone()),
        _ => None,
    });
    assert!(
        diff.as_deref().is_some_and(|d| d.contains("+hello, baton")),
        "{diff:?}"
    );

    shutdown_and_check(&handle, &mut events).await;
}

/// Waits for the next permission request, checking nothing ended the turn first.
async fn permission(
    events: &mut UnboundedReceiver<AgentEvent>,
) -> (harness::agent::PermissionRequest, Vec<AgentEvent>) {
    let mut before = Vec::new();
    loop {
        match next(events).await {
            AgentEvent::Permission(request) => return (request, before),
            e @ (AgentEvent::TurnEnded(_) | AgentEvent::Exited { .. }) => {
                panic!("no permission request: {e:?} after {before:?}")
            }
            e => before.push(e),
        }
    }
}

#[tokio::test]
async fn ask_edit_accept_and_decline_and_command_accept() {
    let Some(rig) = Rig::new("ask").await else {
        return;
    };
    rig.write("hello.txt", "hello\n");
    let (handle, mut events) = rig.start(Approval::Ask).await;

    // Accepted: the edit lands.
    rig.fake
        .push(Reply::items(vec![Item::apply_patch(patch::wrap(&[
            patch::update("hello.txt", None, "hello", "hello, baton"),
        ]))]));
    rig.fake.push(Reply::text("edited"));
    handle.prompt("edit").unwrap();
    let (request, _) = permission(&mut events).await;
    println!("asked: {request:?}");
    assert_eq!(request.kind, PermissionKind::Edit);
    assert_eq!(request.title, "Edit hello.txt");
    assert!(
        request.detail.contains("-hello\n+hello, baton"),
        "{}",
        request.detail
    );
    handle
        .answer(request.id, PermissionAnswer::AllowOnce)
        .unwrap();
    let rest = turn(&mut events).await;
    assert_eq!(turn_end(&rest), &TurnEnd::Completed);
    assert_eq!(files_changed(&rest).len(), 1);
    assert_eq!(rig.read("hello.txt").as_deref(), Some("hello, baton\n"));

    // Declined: nothing lands, and the model goes on.
    rig.fake
        .push(Reply::items(vec![Item::apply_patch(patch::wrap(&[
            patch::add("refused.txt", "no"),
        ]))]));
    rig.fake.push(Reply::text("understood"));
    handle.prompt("add a file").unwrap();
    let (request, _) = permission(&mut events).await;
    assert_eq!(request.title, "Edit refused.txt");
    handle.answer(request.id, PermissionAnswer::Deny).unwrap();
    let rest = turn(&mut events).await;
    println!("declined turn: {rest:?}");
    assert_eq!(turn_end(&rest), &TurnEnd::Completed);
    assert!(files_changed(&rest).is_empty(), "{rest:?}");
    assert_eq!(text(&rest), "understood");
    assert_eq!(rig.read("refused.txt"), None);
    // The model was told: its second request carries the patch's output.
    let requests = rig.fake.requests();
    let outputs = requests
        .last()
        .unwrap()
        .input_items("custom_tool_call_output");
    assert!(!outputs.is_empty());

    // A command under Ask asks too; accepted, it runs and reports its exit code.
    rig.fake.push(Reply::items(vec![Item::exec(
        "echo from-shell > shell.txt",
    )]));
    rig.fake.push(Reply::text("ran it"));
    handle.prompt("run").unwrap();
    let (request, _) = permission(&mut events).await;
    println!("asked: {request:?}");
    assert_eq!(request.kind, PermissionKind::Command);
    assert!(
        request.title.contains("echo from-shell"),
        "{}",
        request.title
    );
    handle
        .answer(request.id, PermissionAnswer::AllowOnce)
        .unwrap();
    let rest = turn(&mut events).await;
    assert_eq!(turn_end(&rest), &TurnEnd::Completed);
    let command = rest.iter().find_map(|e| match e {
        AgentEvent::Command {
            command, exit_code, ..
        } => Some((command.clone(), *exit_code)),
        _ => None,
    });
    println!("command: {command:?}");
    let (command, exit_code) = command.expect("a Command event");
    assert!(command.contains("echo from-shell"));
    assert_eq!(exit_code, Some(0));
    assert_eq!(rig.read("shell.txt").as_deref(), Some("from-shell\n"));

    shutdown_and_check(&handle, &mut events).await;
}

#[tokio::test]
async fn pending_permission_is_withdrawn_when_the_turn_is_cancelled() {
    let Some(rig) = Rig::new("withdraw").await else {
        return;
    };
    let (handle, mut events) = rig.start(Approval::Ask).await;
    rig.fake
        .push(Reply::items(vec![Item::apply_patch(patch::wrap(&[
            patch::add("x.txt", "x"),
        ]))]));
    handle.prompt("add").unwrap();
    let (request, _) = permission(&mut events).await;
    handle.cancel().unwrap();
    let rest = turn(&mut events).await;
    println!("cancelled during approval: {rest:?}");
    assert_eq!(turn_end(&rest), &TurnEnd::Cancelled);
    assert!(
        rest.contains(&AgentEvent::PermissionWithdrawn { id: request.id }),
        "{rest:?}"
    );
    // A late answer to the withdrawn request is harmless.
    handle
        .answer(request.id, PermissionAnswer::AllowOnce)
        .unwrap();
    assert_eq!(rig.read("x.txt"), None);
    shutdown_and_check(&handle, &mut events).await;
}

#[tokio::test]
async fn interrupt_mid_stream_then_the_thread_goes_on() {
    let Some(rig) = Rig::new("interrupt").await else {
        return;
    };
    let (handle, mut events) = rig.start(Approval::AutoEdit).await;
    let long = "word ".repeat(400);
    rig.fake.push(Reply::text(long).rate(20.0));
    handle.prompt("talk slowly").unwrap();
    // Cancel once the stream is flowing.
    loop {
        match next(&mut events).await {
            AgentEvent::Message(_) => break,
            e @ (AgentEvent::TurnEnded(_) | AgentEvent::Exited { .. }) => panic!("{e:?}"),
            _ => {}
        }
    }
    handle.cancel().unwrap();
    let rest = turn(&mut events).await;
    assert_eq!(turn_end(&rest), &TurnEnd::Cancelled);

    rig.fake.push(Reply::text("Back again."));
    handle.prompt("are you there?").unwrap();
    let again = turn(&mut events).await;
    println!("after the interrupt: {again:?}");
    assert_eq!(turn_end(&again), &TurnEnd::Completed);
    assert_eq!(text(&again), "Back again.");
    shutdown_and_check(&handle, &mut events).await;
}

#[tokio::test]
async fn model_http_500_fails_the_turn_with_a_message() {
    let Some(rig) = Rig::new("http500").await else {
        return;
    };
    let (handle, mut events) = rig.start(Approval::AutoEdit).await;
    rig.fake.push(Reply::status(500, "the fake model is down"));
    handle.prompt("hello").unwrap();
    let seen = turn(&mut events).await;
    println!("http 500: {seen:?}");
    let TurnEnd::Failed(message) = turn_end(&seen) else {
        panic!("{seen:?}");
    };
    assert!(!message.is_empty());
    // The thread survives a failed turn.
    rig.fake.clear_replies();
    rig.fake.push(Reply::text("fine now"));
    handle.prompt("again").unwrap();
    let again = turn(&mut events).await;
    assert_eq!(turn_end(&again), &TurnEnd::Completed);
    shutdown_and_check(&handle, &mut events).await;
}

#[tokio::test]
async fn shutdown_mid_turn_cancels_and_leaves_no_process() {
    let Some(rig) = Rig::new("shutdown").await else {
        return;
    };
    let (handle, mut events) = rig.start(Approval::AutoEdit).await;
    let pid = handle.pid().unwrap();
    assert!(!group_members(pid).is_empty());
    rig.fake.push(Reply::text("word ".repeat(400)).rate(20.0));
    handle.prompt("talk slowly").unwrap();
    loop {
        if let AgentEvent::Message(_) = next(&mut events).await {
            break;
        }
    }
    tokio::time::timeout(EVENT_TIMEOUT, handle.shutdown())
        .await
        .unwrap();
    let mut rest = Vec::new();
    while let Some(event) = events.recv().await {
        rest.push(event);
    }
    println!("after shutdown: {rest:?}");
    assert!(rest.contains(&AgentEvent::TurnEnded(TurnEnd::Cancelled)));
    assert!(matches!(rest.last(), Some(AgentEvent::Exited { .. })));
    assert!(group_members(pid).is_empty());
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    // Commands to a stopped agent say so.
    assert!(handle.prompt("anyone?").is_err());
}

#[tokio::test]
async fn startup_failure_is_a_handshake_error_with_stderr() {
    let Some(rig) = Rig::new("badstart").await else {
        return;
    };
    let mut spec = rig.spec();
    spec.command.push("--no-such-flag".into());
    let error = agent::start(&spec, rig.options(Approval::AutoEdit))
        .await
        .expect_err("start fails");
    println!("{error}");
    let text = error.to_string();
    assert!(text.contains("--no-such-flag"), "{text}");
}

/// Starts `codex app-server --listen ws://127.0.0.1:PORT` in `cwd` and waits until it accepts
/// connections.
async fn listening_app_server(rig: &Rig) -> (tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}");
    let child = tokio::process::Command::new(&rig.codex)
        .args(["app-server", "--listen", &url])
        .current_dir(rig.work())
        .envs(rig.env())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(tokio::time::Instant::now() < deadline, "never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, url)
}

#[tokio::test]
async fn remote_edit_over_a_websocket_applies_with_apply_unified() {
    let Some(rig) = Rig::new("remote").await else {
        return;
    };
    let long: String = (1..=20).map(|i| format!("line{i}\n")).collect();
    rig.write("long.txt", &long);
    rig.write("old.txt", OLD);
    let (mut server, url) = listening_app_server(&rig).await;

    let spec = AgentSpec {
        name: "remote-codex".into(),
        kind: AgentKind::CodexAppServer,
        command: Vec::new(),
        env: Vec::new(),
        connect: Some(url),
    };
    let (handle, mut events) = agent::start(&spec, rig.options(Approval::AutoEdit))
        .await
        .expect("connects");
    assert_eq!(handle.pid(), None);

    rig.fake
        .push(Reply::items(vec![Item::apply_patch(patch::wrap(&[
            format!(
                "{}{}",
                patch::update("long.txt", None, "line3", "line3 changed"),
                "@@\n-line17\n+line17 changed\n"
            ),
            patch::update("old.txt", Some("moved.txt"), "line2", "line2 changed"),
        ]))]));
    rig.fake.push(Reply::text("Done remotely."));
    handle.prompt("edit").unwrap();
    let seen = turn(&mut events).await;
    println!("remote turn: {seen:#?}");
    assert_eq!(turn_end(&seen), &TurnEnd::Completed);
    assert_eq!(text(&seen), "Done remotely.");

    // Land the reported changes on the seeded text, as baton does for a remote agent, and
    // compare with what the agent wrote on its side.
    let changes = files_changed(&seen);
    assert_eq!(changes.len(), 2, "{changes:?}");
    for change in &changes {
        let ReportedKind::Update {
            unified_diff,
            move_path,
        } = &change.kind
        else {
            panic!("{change:?}");
        };
        let (base, landed_at) = if change.path.ends_with("long.txt") {
            assert!(unified_diff.matches("@@ -").count() == 2, "{unified_diff}");
            (long.as_str(), change.path.clone())
        } else {
            (OLD, move_path.clone().expect("a move"))
        };
        let landed = apply_unified(base, unified_diff).unwrap();
        assert_eq!(landed, std::fs::read_to_string(&landed_at).unwrap());
    }

    tokio::time::timeout(EVENT_TIMEOUT, handle.shutdown())
        .await
        .unwrap();
    let mut rest = Vec::new();
    while let Some(event) = events.recv().await {
        rest.push(event);
    }
    println!("after disconnect: {rest:?}");
    assert!(matches!(rest.last(), Some(AgentEvent::Exited { .. })));
    // Closing the socket leaves the listening server running for others.
    assert!(server.try_wait().unwrap().is_none());
    server.kill().await.unwrap();
}

#[tokio::test]
async fn killed_app_server_fails_the_turn_and_exits_with_a_reason() {
    let Some(rig) = Rig::new("killed").await else {
        return;
    };
    let (handle, mut events) = rig.start(Approval::AutoEdit).await;
    let pid = handle.pid().unwrap();
    rig.fake.push(Reply::text("word ".repeat(400)).rate(20.0));
    handle.prompt("talk slowly").unwrap();
    loop {
        if let AgentEvent::Message(_) = next(&mut events).await {
            break;
        }
    }
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = Vec::new();
    while let Some(event) = tokio::time::timeout(EVENT_TIMEOUT, events.recv())
        .await
        .expect("events in time")
    {
        rest.push(event);
    }
    let rest: Vec<AgentEvent> = rest
        .into_iter()
        .filter(|e| !matches!(e, AgentEvent::Message(_)))
        .collect();
    println!("after kill -9: {rest:?}");
    assert!(
        matches!(&rest[..], [AgentEvent::TurnEnded(TurnEnd::Failed(_)), AgentEvent::Exited { reason }]
            if reason.contains("signal: 9")),
        "{rest:?}"
    );
    assert!(group_members(pid).is_empty());
}

#[tokio::test]
async fn read_only_asks_before_an_edit() {
    let Some(rig) = Rig::new("readonly").await else {
        return;
    };
    rig.write("hello.txt", "hello\n");
    let (handle, mut events) = rig.start(Approval::ReadOnly).await;
    rig.fake
        .push(Reply::items(vec![Item::apply_patch(patch::wrap(&[
            patch::update("hello.txt", None, "hello", "hello, baton"),
        ]))]));
    rig.fake.push(Reply::text("left it alone"));
    handle.prompt("edit").unwrap();
    let (request, _) = permission(&mut events).await;
    println!("read-only asked: {request:?}");
    assert_eq!(request.kind, PermissionKind::Edit);
    handle.answer(request.id, PermissionAnswer::Deny).unwrap();
    let rest = turn(&mut events).await;
    assert_eq!(turn_end(&rest), &TurnEnd::Completed);
    assert!(files_changed(&rest).is_empty());
    assert_eq!(rig.read("hello.txt").as_deref(), Some("hello\n"));
    shutdown_and_check(&handle, &mut events).await;
}

#[tokio::test]
async fn remote_server_going_away_fails_the_turn_and_exits() {
    let Some(rig) = Rig::new("remote-gone").await else {
        return;
    };
    let (mut server, url) = listening_app_server(&rig).await;
    let spec = AgentSpec {
        name: "remote-codex".into(),
        kind: AgentKind::CodexAppServer,
        command: Vec::new(),
        env: Vec::new(),
        connect: Some(url),
    };
    let (handle, mut events) = agent::start(&spec, rig.options(Approval::AutoEdit))
        .await
        .expect("connects");
    rig.fake.push(Reply::text("word ".repeat(400)).rate(20.0));
    handle.prompt("talk slowly").unwrap();
    loop {
        if let AgentEvent::Message(_) = next(&mut events).await {
            break;
        }
    }
    server.kill().await.unwrap();
    let mut rest = Vec::new();
    while let Some(event) = tokio::time::timeout(EVENT_TIMEOUT, events.recv())
        .await
        .expect("events in time")
    {
        if !matches!(event, AgentEvent::Message(_)) {
            rest.push(event);
        }
    }
    println!("after the server died: {rest:?}");
    assert!(
        matches!(
            &rest[..],
            [
                AgentEvent::TurnEnded(TurnEnd::Failed(_)),
                AgentEvent::Exited { .. }
            ]
        ),
        "{rest:?}"
    );
}

// ---- Plan mode (`collaborationMode: plan`, read-only; see docs/harness-plan-mode.md). ----

const PLAN: &str = "# Greeting plan\n\n1. Read `hello.txt`.\n2. Change the greeting to \"hello, baton\".\n3. Run the tests.\n";
const REFINED_PLAN: &str =
    "# Greeting plan, refined\n\n1. Change only `hello.txt`.\n2. Leave README alone.\n";

fn plan_deltas(events: &[AgentEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::PlanDelta(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn plan_texts(events: &[AgentEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::PlanText(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// The text of every developer message a model request carried.
fn developer_text(body: &serde_json::Value) -> String {
    body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["role"] == "developer")
        .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n")
}

fn offers_tool(body: &serde_json::Value, name: &str) -> bool {
    body["tools"]
        .as_array()
        .is_some_and(|tools| tools.iter().any(|t| t["name"] == name))
}

#[tokio::test]
async fn plan_mode_streams_the_plan_item_read_only_and_writes_nothing() {
    let Some(rig) = Rig::new("plan").await else {
        return;
    };
    rig.write("hello.txt", "hello\n");
    let before = rig.tree();
    let (handle, mut events) = rig.start_plan().await;

    rig.fake.push(Reply::items(vec![
        Item::message("I looked around; here is the plan."),
        Item::proposed_plan(PLAN),
    ]));
    handle.prompt("plan the greeting change").unwrap();
    let seen = turn(&mut events).await;
    println!("plan turn: {seen:#?}");
    assert_eq!(turn_end(&seen), &TurnEnd::Completed);

    // The plan streamed in pieces, and the completed item holds exactly what the model wrote
    // inside the block; the message around it stays a message, without the block.
    let deltas = plan_deltas(&seen);
    assert!(deltas.len() > 1, "the plan streamed: {deltas:?}");
    assert_eq!(deltas.concat(), PLAN);
    assert_eq!(plan_texts(&seen), vec![PLAN.to_string()]);
    assert_eq!(text(&seen), "I looked around; here is the plan.");
    assert!(!text(&seen).contains("proposed_plan"));
    let first_delta = seen
        .iter()
        .position(|e| matches!(e, AgentEvent::PlanDelta(_)))
        .unwrap();
    let plan_text = seen
        .iter()
        .position(|e| matches!(e, AgentEvent::PlanText(_)))
        .unwrap();
    assert!(first_delta < plan_text, "deltas come before the whole plan");

    // What the model was sent: codex's plan-mode instructions (collaborationMode plan reached
    // it), the read-only sandbox, and the question tool that only plan mode offers.
    let requests = rig.fake.requests();
    assert_eq!(requests.len(), 1);
    let developer = developer_text(&requests[0].body);
    assert!(
        developer.contains("<collaboration_mode># Plan Mode"),
        "plan-mode instructions: {developer}"
    );
    assert!(developer.contains("<proposed_plan>"), "{developer}");
    assert!(
        developer.contains("`sandbox_mode` is `read-only`"),
        "read-only sandbox: {developer}"
    );
    assert!(offers_tool(&requests[0].body, "request_user_input"));

    // Nothing was written in the working directory.
    assert_eq!(rig.tree(), before);
    shutdown_and_check(&handle, &mut events).await;
}

#[tokio::test]
async fn work_mode_has_no_plan_mode_instructions_and_questions_are_refused_by_codex() {
    let Some(rig) = Rig::new("work-no-plan").await else {
        return;
    };
    let (handle, mut events) = rig.start(Approval::AutoEdit).await;
    rig.fake.push(Reply::items(vec![Item::request_user_input(
        serde_json::json!([user_question(
            "lang",
            "Language",
            "Which language?",
            &[("Rust", "fast"), ("Go", "simple")]
        )]),
    )]));
    rig.fake.push(Reply::text("ok"));
    handle.prompt("hi").unwrap();
    let seen = turn(&mut events).await;
    println!("work mode: {seen:#?}");
    assert_eq!(turn_end(&seen), &TurnEnd::Completed);
    // codex lists the tool in every mode, but outside plan mode it answers the call itself:
    // the client is never asked.
    assert!(!seen.iter().any(|e| matches!(e, AgentEvent::Questions(_))));
    let requests = rig.fake.requests();
    assert_eq!(requests.len(), 2);
    assert!(!developer_text(&requests[0].body).contains("# Plan Mode"));
    let output = requests[1].input_items("function_call_output");
    assert_eq!(output.len(), 1);
    let text = output[0]["output"].to_string();
    println!("codex's own answer outside plan mode: {text}");
    assert!(text.contains("unavailable in Default mode"), "{text}");
    shutdown_and_check(&handle, &mut events).await;
}

#[tokio::test]
async fn plan_mode_question_answered_then_plan_then_refined_on_the_same_thread() {
    let Some(rig) = Rig::new("plan-questions").await else {
        return;
    };
    rig.write("hello.txt", "hello\n");
    let before = rig.tree();
    let (handle, mut events) = rig.start_plan().await;

    rig.fake.push(Reply::items(vec![Item::request_user_input(
        serde_json::json!([user_question(
            "scope",
            "Scope",
            "Which files may the change touch?",
            &[
                ("Only hello.txt (Recommended)", "Smallest change."),
                ("Every greeting", "Touches more files."),
            ],
        )]),
    )]));
    rig.fake.push(Reply::items(vec![Item::proposed_plan(PLAN)]));
    handle.prompt("plan the greeting change").unwrap();

    let mut seen = Vec::new();
    let request = loop {
        let event = next(&mut events).await;
        assert!(
            !matches!(event, AgentEvent::TurnEnded(_)),
            "the turn ended before asking: {seen:#?}"
        );
        if let AgentEvent::Questions(request) = &event {
            break request.clone();
        }
        seen.push(event);
    };
    assert_eq!(
        request,
        QuestionRequest {
            id: request.id,
            questions: vec![UserQuestion {
                id: "scope".into(),
                header: "Scope".into(),
                question: "Which files may the change touch?".into(),
                options: vec![
                    "Only hello.txt (Recommended)".into(),
                    "Every greeting".into()
                ],
            }],
        }
    );
    // The turn waits for the answer: the model has been asked once.
    assert_eq!(rig.fake.requests().len(), 1);

    handle
        .answer_questions(
            request.id,
            vec![("scope".into(), "Only hello.txt (Recommended)".into())],
        )
        .unwrap();
    let rest = turn(&mut events).await;
    println!("after the answer: {rest:#?}");
    assert_eq!(turn_end(&rest), &TurnEnd::Completed);
    assert_eq!(plan_texts(&rest), vec![PLAN.to_string()]);
    assert!(
        !rest
            .iter()
            .any(|e| matches!(e, AgentEvent::QuestionsWithdrawn { .. })),
        "an answered request is not withdrawn"
    );

    // The answer went back to the model as the tool call's output.
    let requests = rig.fake.requests();
    assert_eq!(requests.len(), 2);
    let call = requests[1].input_items("function_call");
    let output = requests[1].input_items("function_call_output");
    assert_eq!(call.len(), 1, "{:?}", requests[1].body["input"]);
    assert_eq!(call[0]["name"], "request_user_input");
    assert_eq!(output.len(), 1);
    assert_eq!(output[0]["call_id"], call[0]["call_id"]);
    let answer: serde_json::Value =
        serde_json::from_str(output[0]["output"].as_str().expect("output is text")).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"answers": {"scope": {"answers": ["Only hello.txt (Recommended)"]}}})
    );

    // Refining continues the same thread, still in plan mode.
    rig.fake
        .push(Reply::items(vec![Item::proposed_plan(REFINED_PLAN)]));
    handle.prompt("refine: leave README alone").unwrap();
    let refined = turn(&mut events).await;
    assert_eq!(turn_end(&refined), &TurnEnd::Completed);
    assert_eq!(plan_texts(&refined), vec![REFINED_PLAN.to_string()]);
    let requests = rig.fake.requests();
    assert_eq!(requests.len(), 3);
    let third = &requests[2];
    let history = third.body["input"].to_string();
    assert!(history.contains("plan the greeting change"), "{history}");
    assert!(history.contains("refine: leave README alone"));
    assert_eq!(third.input_items("function_call_output").len(), 1);
    assert!(
        history.contains("Read `hello.txt`."),
        "the first plan is in the history"
    );
    assert_eq!(
        third.body["prompt_cache_key"], requests[0].body["prompt_cache_key"],
        "the same thread"
    );
    assert!(developer_text(&third.body).contains("<collaboration_mode># Plan Mode"));

    assert_eq!(rig.tree(), before);
    shutdown_and_check(&handle, &mut events).await;
}

#[tokio::test]
async fn plan_mode_unanswered_question_is_withdrawn_when_the_turn_is_interrupted() {
    let Some(rig) = Rig::new("plan-withdrawn").await else {
        return;
    };
    let (handle, mut events) = rig.start_plan().await;
    rig.fake.push(Reply::items(vec![Item::request_user_input(
        serde_json::json!([user_question(
            "lang",
            "Language",
            "Which language?",
            &[("Rust", "fast"), ("Go", "simple")]
        )]),
    )]));
    handle.prompt("plan a tool").unwrap();
    let request = loop {
        match next(&mut events).await {
            AgentEvent::Questions(request) => break request,
            AgentEvent::TurnEnded(end) => panic!("the turn ended before asking: {end:?}"),
            _ => {}
        }
    };
    handle.cancel().unwrap();
    let seen = turn(&mut events).await;
    println!("interrupted: {seen:#?}");
    assert_eq!(turn_end(&seen), &TurnEnd::Cancelled);
    let withdrawn: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            AgentEvent::QuestionsWithdrawn { id } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(withdrawn, vec![request.id]);
    // A late answer is dropped, and the thread goes on in plan mode.
    handle
        .answer_questions(request.id, vec![("lang".into(), "Rust".into())])
        .unwrap();
    rig.fake.push(Reply::items(vec![Item::proposed_plan(PLAN)]));
    handle.prompt("plan it in Rust").unwrap();
    let next_turn = turn(&mut events).await;
    assert_eq!(turn_end(&next_turn), &TurnEnd::Completed);
    assert_eq!(plan_texts(&next_turn), vec![PLAN.to_string()]);
    assert!(
        !next_turn
            .iter()
            .any(|e| matches!(e, AgentEvent::QuestionsWithdrawn { .. })),
        "withdrawn once only: {next_turn:?}"
    );
    shutdown_and_check(&handle, &mut events).await;
}
