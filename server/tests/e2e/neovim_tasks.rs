//! Agent tasks in a real headless Neovim 0.11 with the plugin: `:BatonTask` with the real
//! `codex app-server` on the fake model, landing in a buffer with unsaved changes while the
//! user keeps typing in it, then undo.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::codex::{CodexHome, scratch_root};
use testkit::fake_model::{FakeModel, Item, Reply, patch};
use testkit::neovim;

const ON_DISK: &str = "fn a() -> i32 {\n    1\n}\n\nfn b() -> i32 {\n    2\n}\n";
/// Added at the top in Neovim and never saved.
const UNSAVED_LINE: &str = "// the user's unsaved note";
/// The only line the agent's change produces.
const AGENT_LINE: &str = "    20";
const INSTRUCTION: &str = "make b return 20";

/// The buffer's text with the unsaved line, `typed` below it, and b returning `b_returns`.
fn buffer_with(typed: &[String], b_returns: &str) -> String {
    let mut text = format!("{UNSAVED_LINE}\n");
    for line in typed {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!(
        "fn a() -> i32 {{\n    1\n}}\n\nfn b() -> i32 {{\n    {b_returns}\n}}\n"
    ));
    text
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// What one run of `e2e_task_typing.lua` left.
struct Run {
    results: Value,
    /// The results, Neovim's stderr and baton's log lines about the task, for failure messages.
    context: String,
    file: PathBuf,
    fake: FakeModel,
    /// Holds the workspace: bind it (not `..`) so it lives as long as the test's checks.
    _dir: tempfile::TempDir,
}

/// Runs the task scenario in Neovim with the real codex app-server (`typing`: "lines" or
/// "insert", see the script) and checks what every variant must hold: no script error, baton
/// attached, the task ended "done". `None` when Neovim or codex is missing (skipped).
async fn run_task_while_typing(typing: &str) -> Option<Run> {
    let nvim = neovim::nvim_for_tests()?;
    let codex = testkit::codex::require_codex()?;
    let fake = FakeModel::start().await;
    // The patch's context is the buffer's line `    2`: the shadow holds the unsaved text. Pauses
    // before the patch and before the final message keep the user typing both before the
    // change lands and after it, within the turn.
    fake.push(Reply::items(vec![
        Item::pause(Duration::from_millis(500)),
        Item::apply_patch(patch::wrap(&[patch::update(
            "src/lib.rs",
            None,
            "    2\n",
            &format!("{AGENT_LINE}\n"),
        )])),
    ]));
    fake.push(Reply::items(vec![
        Item::pause(Duration::from_millis(500)),
        Item::message("Done."),
    ]));
    let home = CodexHome::scratch(&fake.base_url()).expect("a CODEX_HOME");

    // Workspace, baton's state (shadows, task documents) and logs outside /tmp.
    let parent = scratch_root().join("e2e-neovim-tasks");
    std::fs::create_dir_all(&parent).unwrap();
    let dir = tempfile::tempdir_in(parent).unwrap();
    let root = dir.path().join("workspace");
    std::fs::create_dir_all(root.join("src")).unwrap();
    let file = root.join("src/lib.rs");
    std::fs::write(&file, ON_DISK).unwrap();
    let state = dir.path().join("state");

    let agent_env: serde_json::Map<String, Value> = home
        .env()
        .into_iter()
        .map(|(key, value)| {
            (
                key.to_string_lossy().into_owned(),
                Value::String(value.to_string_lossy().into_owned()),
            )
        })
        .collect();
    let init_options = json!({
        "harness": {
            "agent": "codex",
            "grace_ms": 1000,
            "agents": { "codex": {
                "kind": "codex-app-server",
                "command": [codex.to_string_lossy(), "app-server"],
                "env": agent_env,
            }},
        },
        "edit": { "flush_interval_ms": 20 },
    })
    .to_string();
    let plugin_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("editors/neovim");
    let log_file = dir.path().join("baton.log");
    let env: Vec<(String, String)> = vec![
        ("BATON_BIN".into(), env!("CARGO_BIN_EXE_baton").into()),
        ("BATON_PLUGIN_DIR".into(), plugin_dir.display().to_string()),
        ("BATON_FILE".into(), file.display().to_string()),
        ("BATON_ROOT".into(), root.display().to_string()),
        ("BATON_INIT_OPTIONS".into(), init_options),
        // fn b's three lines, once the unsaved line is added at the top.
        ("BATON_RANGE".into(), "6,8".into()),
        ("BATON_INSTRUCTION".into(), INSTRUCTION.into()),
        ("BATON_UNSAVED_LINE".into(), UNSAVED_LINE.into()),
        ("BATON_AGENT_LINE".into(), AGENT_LINE.into()),
        ("BATON_STATE_DIR".into(), state.display().to_string()),
        ("BATON_LOG_FILE".into(), log_file.display().to_string()),
        ("BATON_LOG".into(), "debug".into()),
        (
            "XDG_CONFIG_HOME".into(),
            dir.path().join("config").display().to_string(),
        ),
        (
            "XDG_CACHE_HOME".into(),
            dir.path().join("cache").display().to_string(),
        ),
        ("BATON_TYPING".into(), typing.into()),
        ("BATON_JOB_TIMEOUT_MS".into(), "120000".into()),
    ];
    let script = neovim::lua_dir().join("e2e_task_typing.lua");
    let outcome = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        neovim::run_lua_session(&nvim, &script, &env, Duration::from_secs(300))
    })
    .await
    .unwrap()
    .expect("neovim ran the script");
    let results = &outcome.results;
    let log = std::fs::read_to_string(&log_file).unwrap_or_default();
    let context = format!(
        "{results:#}\nstderr:\n{}\nbaton log (task lines):\n{}",
        outcome.stderr,
        log.lines()
            .filter(|line| line.contains("task") || line.contains("land"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(results["errors"], json!([]), "{context}");
    assert_eq!(results["attached"], true, "{context}");
    assert_eq!(results["end_message"], "done", "{context}");
    drop(home);
    Some(Run {
        context,
        results: outcome.results.clone(),
        file,
        fake,
        _dir: dir,
    })
}

/// The Neovim scenario: a codex task lands in a modified buffer while the Lua script
/// keeps typing elsewhere in that buffer (a new line, typed through `nvim_input`, about every
/// 30 ms until the task ends), and undo in Neovim reverts the agent's change. Asserts: the task
/// ends "done"; the buffer holds the unsaved line, every typed line in order and the agent's
/// change; the file on disk is untouched and the buffer still unsaved; the change came as one
/// edit between typed lines; the task document opened in a split that took the focus, the
/// file's window kept; the agent was told the range given to `:BatonTask`; and `u`, once per
/// line typed since the agent's edit plus once, reverts exactly the agent's edit, giving back
/// the text the buffer had just before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_task_lands_in_a_modified_buffer_while_typing_and_undo_reverts_it() {
    let Some(Run {
        results,
        context,
        file,
        fake,
        _dir,
    }) = run_task_while_typing("lines").await
    else {
        return;
    };

    // Everything is in the buffer: the unsaved line, every typed line in order, the agent's
    // change; nothing reached the disk and the buffer is still unsaved.
    let typed = strings(&results["typed"]);
    assert_eq!(
        results["final_text"],
        buffer_with(&typed, "20"),
        "{context}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), ON_DISK);
    assert_eq!(results["modified"], true, "{context}");

    // The agent's change arrived as one edit of the file (others, if any, changed nothing),
    // made while the user was typing: lines were typed before it and after it.
    let edits = results["file_edits"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let landing: Vec<&Value> = edits
        .iter()
        .filter(|edit| edit["before"] != edit["after"])
        .collect();
    assert_eq!(landing.len(), 1, "{context}");
    let landing = landing[0];
    let typed_before = landing["typed_so_far"].as_u64().unwrap() as usize;
    let typed_after = typed.len().saturating_sub(typed_before);
    assert!(typed_before >= 1 && typed_after >= 1, "{context}");
    assert_eq!(
        landing["before"],
        buffer_with(&typed[..typed_before], "2"),
        "{context}"
    );
    assert_eq!(
        landing["after"],
        buffer_with(&typed[..typed_before], "20"),
        "{context}"
    );

    // Undo: Neovim's undo is linear in time and each typed line (one Normal-mode `o`) is one
    // undo step, so `u` first takes back the lines typed since the agent's edit, one per step;
    // the next `u` reverts exactly the agent's edit (one undo step of its own), giving back the
    // text from just before it, unsaved line and earlier typing included.
    let undo_texts = strings(&results["undo_texts"]);
    assert_eq!(
        results["undo_steps_to_revert_agent"].as_u64(),
        Some(typed_after as u64 + 1),
        "{context}"
    );
    for (step, text) in undo_texts.iter().enumerate().take(typed_after) {
        assert_eq!(
            *text,
            buffer_with(&typed[..typed.len() - step - 1], "20"),
            "undo step {}: {context}",
            step + 1
        );
    }
    assert_eq!(
        undo_texts.last().map(String::as_str),
        landing["before"].as_str(),
        "{context}"
    );

    // The task document opened in a split of its own and took the focus; the file's window
    // stayed.
    assert_eq!(results["document_shown"], true, "{context}");
    let windows = strings(&results["windows"]);
    assert_eq!(windows.len(), 2, "{context}");
    assert!(windows.contains(&file.display().to_string()), "{context}");
    let focused = results["focused_after_show"].as_str().unwrap_or("");
    assert!(
        focused.contains("/tasks/task-") && focused.ends_with(".md"),
        "{context}"
    );

    // The agent got the instruction with the lines given to :BatonTask.
    let bodies: Vec<String> = fake.requests().iter().map(|r| r.body.to_string()).collect();
    assert!(
        bodies.iter().any(|body| body.contains(INSTRUCTION)
            && body.contains("(The user is looking at src/lib.rs, lines 6-8.)")),
        "{bodies:#?}"
    );
}

/// The same task while the user stays in Insert mode for the whole of it (one `o`, then a
/// character about every 30 ms, `<Esc>` after the task), so the agent's edit lands in the middle
/// of an insert. Neovim alone would put that edit into the insert's undo block (one `u` would
/// take back the user's typing with it); the plugin closes the block around baton's edit.
/// Asserts: the buffer holds the unsaved line, the whole typed line and the agent's change; the
/// edit was applied in Insert mode, with characters typed before and after it; the first `u`
/// takes back the characters typed after the edit, the second exactly the agent's edit, giving
/// back the text from just before it (the characters typed before it included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_task_landing_during_an_insert_is_its_own_undo_step() {
    let Some(Run {
        results,
        context,
        file,
        _dir,
        ..
    }) = run_task_while_typing("insert").await
    else {
        return;
    };
    const START: &str = "// typing ";
    let typed = strings(&results["typed"]);
    assert_eq!(typed.len(), 1, "{context}");
    let final_line = &typed[0];
    assert_eq!(
        results["final_text"],
        buffer_with(&typed, "20"),
        "{context}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), ON_DISK);
    assert_eq!(results["modified"], true, "{context}");

    let edits = results["file_edits"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let landing: Vec<&Value> = edits
        .iter()
        .filter(|edit| edit["before"] != edit["after"])
        .collect();
    assert_eq!(landing.len(), 1, "{context}");
    let landing = landing[0];
    assert_eq!(landing["mode"], "i", "{context}");
    let before = landing["before"].as_str().unwrap_or("");
    let line_then = before.lines().nth(1).unwrap_or("").to_string();
    assert!(
        line_then.starts_with(START)
            && line_then.len() > START.len()
            && final_line.starts_with(&line_then)
            && final_line.len() > line_then.len(),
        "typed before and after the edit, in one line: {context}"
    );
    assert_eq!(
        before,
        buffer_with(std::slice::from_ref(&line_then), "2"),
        "{context}"
    );

    let undo_texts = strings(&results["undo_texts"]);
    assert_eq!(results["undo_steps_to_revert_agent"], 2, "{context}");
    assert_eq!(
        undo_texts[0],
        buffer_with(std::slice::from_ref(&line_then), "20"),
        "{context}"
    );
    assert_eq!(undo_texts[1], before, "{context}");
}
