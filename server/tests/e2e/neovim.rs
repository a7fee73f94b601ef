//! A real headless Neovim 0.11 as the client, with only its built-in LSP support: the code
//! action on a marker line streams the edit into the buffer, and undo brings the original back.

use std::time::Duration;

use serde_json::json;
use testkit::fake_model::Reply;
use testkit::neovim;

use crate::edits::{EXPECTED, MARKED, REPLY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_runs_the_marker_action_and_undoes_it() {
    let Some(nvim) = neovim::nvim_for_tests() else {
        return;
    };
    let fake = testkit::fake_model::FakeModel::start().await;
    fake.push(Reply::text(REPLY).rate(60.0));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("workspace");
    std::fs::create_dir_all(root.join("src")).unwrap();
    let file = root.join("src/lib.rs");
    std::fs::write(&file, MARKED).unwrap();
    let init_options = serde_json::json!({
        "models": { "fast": { "provider": "openai", "model": "spark-test", "base_url": fake.base_url(), "api_key_env": "BATON_TEST_KEY" } },
        "edit": { "flush_interval_ms": 20 },
    })
    .to_string();
    let log_file = dir.path().join("baton.log");
    let config_home = dir.path().join("config");
    let env: Vec<(String, String)> = vec![
        ("BATON_BIN".into(), env!("CARGO_BIN_EXE_baton").into()),
        ("BATON_FILE".into(), file.display().to_string()),
        ("BATON_ROOT".into(), root.display().to_string()),
        ("BATON_LINE".into(), "4".into()),
        ("BATON_ACTION".into(), "return two instead of one".into()),
        ("BATON_INIT_OPTIONS".into(), init_options),
        ("BATON_TEST_KEY".into(), crate::support::SECRET_KEY.into()),
        ("BATON_LOG_FILE".into(), log_file.display().to_string()),
        ("XDG_CONFIG_HOME".into(), config_home.display().to_string()),
        ("BATON_JOB_TIMEOUT_MS".into(), "30000".into()),
    ];
    let script = neovim::lua_dir().join("e2e_inline_edit.lua");
    let outcome = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        neovim::run_lua_test(&nvim, &script, &env, Duration::from_secs(90))
    })
    .await
    .unwrap()
    .expect("neovim ran the script");
    let results = &outcome.results;
    assert_eq!(
        results["errors"],
        serde_json::json!([]),
        "{results:#}\n{}",
        outcome.stderr
    );
    assert_eq!(results["attached"], true);
    assert_eq!(results["final_text"], EXPECTED, "{results:#}");
    // The edit streamed: the buffer went through intermediate states before the final text.
    let snapshots: Vec<&str> = results["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(
        snapshots.len() >= 3,
        "expected streamed states, got {snapshots:#?}"
    );
    assert!(
        snapshots
            .iter()
            .any(|text| *text != MARKED && *text != EXPECTED),
        "{snapshots:#?}"
    );
    // Progress was shown and ended.
    let progress = results["progress"].to_string();
    assert!(
        progress.contains("begin") && progress.contains("end"),
        "{progress}"
    );
    // Undo brings back the original, marker included.
    assert_eq!(results["after_undo_text"], MARKED, "{results:#}");
    assert_eq!(fake.requests().len(), 1);
}

/// The Neovim plugin's commands and keymaps in a real headless Neovim: `:BatonEdit` on a range,
/// `:BatonStatus` and `:BatonCancel` while a job streams, `<leader>ae` in normal and visual mode
/// (prompting through `vim.ui.input`) and `<leader>ac`, and `:'<,'>BatonTask` with testkit's
/// scripted ACP agent (the task's change lands in the buffer, its document opens in a split),
/// `:BatonTask` then `:BatonCancel` on a task, and the plugin's `window/showDocument` placements (`split`, `vsplit`, `tab`, `current`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_plugin_commands_and_keymaps_drive_jobs() {
    let Some(nvim) = neovim::nvim_for_tests() else {
        return;
    };
    const TEXT: &str =
        "// plugin test\nfn one() -> i32 {\n    1\n}\n\nfn two() -> i32 {\n    2\n}\n";
    const AFTER_RANGE: &str =
        "// plugin test\nfn one() -> i32 {\n    2\n}\n\nfn two() -> i32 {\n    2\n}\n";
    const AFTER_KEYMAP: &str =
        "// plugin test\nfn one() -> i32 {\n    3\n}\n\nfn two() -> i32 {\n    2\n}\n";
    const AFTER_TASK: &str =
        "// plugin test\nfn uno() -> i32 {\n    3\n}\n\nfn two() -> i32 {\n    2\n}\n";
    let slow = || {
        Reply::text("fn one() -> i32 {\n    // ".to_string() + &"x ".repeat(400) + "\n}").rate(20.0)
    };
    let fake = testkit::fake_model::FakeModel::start().await;
    fake.push(Reply::text("fn one() -> i32 {\n    2\n}").rate(400.0));
    fake.push(slow());
    fake.push(Reply::text("fn one() -> i32 {\n    3\n}").rate(400.0));
    fake.push(slow());
    // Outside /tmp: the task's shadow lives under BATON_STATE_DIR.
    let parent = testkit::codex::scratch_root().join("e2e-neovim-plugin");
    std::fs::create_dir_all(&parent).unwrap();
    let dir = tempfile::tempdir_in(parent).unwrap();
    let root = dir.path().join("workspace");
    std::fs::create_dir_all(root.join("src")).unwrap();
    let file = root.join("src/lib.rs");
    std::fs::write(&file, TEXT).unwrap();
    // The scripted agent's one turn: rewrite the file as the earlier steps left it, renamed.
    let agent_script = dir.path().join("agent.json");
    let agent_log = dir.path().join("agent.log");
    std::fs::write(
        &agent_script,
        serde_json::json!({
            "turns": [[
                { "type": "write", "path": "src/lib.rs", "content": AFTER_TASK },
                { "type": "message", "text": "Renamed." },
            ]],
            // The second task's exact prompt (no file focus): work until cancelled.
            "by_prompt": { "slow task": [{ "type": "sleep", "ms": 120_000 }] },
            "log": agent_log,
        })
        .to_string(),
    )
    .unwrap();
    let init_options = serde_json::json!({
        "models": { "fast": { "provider": "openai", "model": "spark-test", "base_url": fake.base_url(), "api_key_env": "BATON_TEST_KEY" } },
        "edit": { "flush_interval_ms": 20 },
        "harness": {
            "agent": "scripted",
            "grace_ms": 1000,
            "agents": { "scripted": {
                "kind": "acp",
                "command": [testkit::scripted_agent::binary_path()],
                "env": { "SCRIPTED_AGENT_SCRIPT": agent_script },
            }},
        },
    })
    .to_string();
    let plugin_dir = plugin_dir();
    let env: Vec<(String, String)> = vec![
        ("BATON_BIN".into(), env!("CARGO_BIN_EXE_baton").into()),
        ("BATON_PLUGIN_DIR".into(), plugin_dir.display().to_string()),
        ("BATON_FILE".into(), file.display().to_string()),
        ("BATON_ROOT".into(), root.display().to_string()),
        ("BATON_INIT_OPTIONS".into(), init_options),
        ("BATON_TEST_KEY".into(), crate::support::SECRET_KEY.into()),
        (
            "BATON_LOG_FILE".into(),
            dir.path().join("baton.log").display().to_string(),
        ),
        (
            "XDG_CONFIG_HOME".into(),
            dir.path().join("config").display().to_string(),
        ),
        ("BATON_JOB_TIMEOUT_MS".into(), "30000".into()),
        (
            "BATON_STATE_DIR".into(),
            dir.path().join("state").display().to_string(),
        ),
    ];
    let script = neovim::lua_dir().join("e2e_plugin_commands.lua");
    let outcome = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        neovim::run_lua_test(&nvim, &script, &env, Duration::from_secs(120))
    })
    .await
    .unwrap()
    .expect("neovim ran the script");
    let results = &outcome.results;
    let context = format!("{results:#}\n{}", outcome.stderr);
    assert_eq!(results["errors"], serde_json::json!([]), "{context}");
    assert_eq!(results["attached"], true, "{context}");
    let step = |name: &str| &results["steps"][name];
    assert_eq!(step("command_range")["end_message"], "done", "{context}");
    assert_eq!(step("command_range")["text"], AFTER_RANGE, "{context}");
    assert_eq!(
        step("command_cancel")["end_message"],
        "cancelled",
        "{context}"
    );
    assert_eq!(
        step("command_cancel")["text"],
        AFTER_RANGE,
        "restored: {context}"
    );
    assert_eq!(step("keymap_normal")["end_message"], "done", "{context}");
    assert_eq!(step("keymap_normal")["text"], AFTER_KEYMAP, "{context}");
    assert_eq!(
        step("keymap_visual_cancel")["end_message"],
        "cancelled",
        "{context}"
    );
    assert_eq!(
        step("keymap_visual_cancel")["text"],
        AFTER_KEYMAP,
        "restored: {context}"
    );
    let notifications = results["notifications"].to_string();
    let running_job = step("command_cancel")["token"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    assert!(
        notifications.contains(&running_job),
        ":BatonStatus lists the running job: {context}"
    );
    assert!(notifications.contains("cancelled 1 job(s)"), "{context}");
    assert_eq!(
        results["prompts"].as_array().map(Vec::len),
        Some(2),
        "{context}"
    );
    // :'<,'>BatonTask: the agent's change landed in the buffer (not on disk), the agent was told
    // the selected lines, and the task document opened in a split that took the focus, with the
    // file still shown in its own window.
    assert_eq!(step("task_visual")["end_message"], "done", "{context}");
    assert_eq!(step("task_visual")["text"], AFTER_TASK, "{context}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), TEXT);
    let agent_stdin = std::fs::read_to_string(&agent_log).unwrap_or_default();
    assert!(
        agent_stdin.contains("rename one to uno")
            && agent_stdin.contains("(The user is looking at src/lib.rs, lines 2-3.)"),
        "{agent_stdin}"
    );
    let windows: Vec<&str> = results["task_windows"]
        .as_array()
        .map(|names| names.iter().filter_map(|name| name.as_str()).collect())
        .unwrap_or_default();
    let is_task_document = |name: &str| name.contains("/tasks/task-") && name.ends_with(".md");
    assert_eq!(windows.len(), 2, "{context}");
    assert!(windows.contains(&file.to_str().unwrap()), "{context}");
    assert!(
        windows.iter().any(|name| is_task_document(name)),
        "{context}"
    );
    assert!(
        is_task_document(results["task_current"].as_str().unwrap_or("")),
        "{context}"
    );
    // :BatonTask from a scratch buffer, cancelled with :BatonCancel while the agent works.
    assert_eq!(step("task_cancel")["end_message"], "cancelled", "{context}");
    assert_eq!(step("task_cancel")["text"], AFTER_TASK, "{context}");
    // The other placements: a window (or tab) for the document is opened before Neovim's
    // handler runs, the user's window stays current until that handler moves the focus; with
    // 'current' the wrapper leaves everything to Neovim.
    let file_name = file.to_str().unwrap();
    let placement = |name: &str| &results["placements"][name];
    for (name, tabs, windows_in_tab, shown) in [
        ("vsplit", 1, 2, true),
        ("tab", 2, 1, true),
        ("current", 1, 1, false),
        ("split_no_focus", 1, 2, true),
    ] {
        assert_eq!(placement(name)["tabs"], tabs, "{name}: {context}");
        assert_eq!(
            placement(name)["windows_in_tab"],
            windows_in_tab,
            "{name}: {context}"
        );
        assert_eq!(placement(name)["current"], file_name, "{name}: {context}");
        assert_eq!(
            placement(name)["document_shown"],
            shown,
            "{name}: {context}"
        );
        assert_eq!(placement(name)["default_called"], true, "{name}: {context}");
    }
    let instructions: Vec<String> = fake
        .requests()
        .iter()
        .map(|request| {
            let body = request.body.to_string();
            [
                "make it return two",
                "slow one",
                "via the normal keymap",
                "via the visual keymap",
            ]
            .into_iter()
            .find(|instruction| body.contains(instruction))
            .unwrap_or("?")
            .to_string()
        })
        .collect();
    assert_eq!(
        instructions,
        [
            "make it return two",
            "slow one",
            "via the normal keymap",
            "via the visual keymap"
        ]
    );
}

/// The plugin's task list and review keymaps (`e2e_plugin_review.lua`): `:'<,'>BatonEdit` on a
/// characterwise selection, `:BatonTasks` reopening a task run by testkit's scripted ACP agent,
/// and in task documents `<leader>au` (undo the file on the line), `<leader>ad` (diff),
/// `<leader>ak` (keep), `<leader>ar` (reply) and `<leader>aU` (undo all); the task documents are
/// served by the workspace's baton, not a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_plugin_lists_tasks_and_reviews_them_with_keymaps() {
    let Some(nvim) = neovim::nvim_for_tests() else {
        return;
    };
    const TEXT: &str = "// review test\nfn one() -> i32 {\n    1\n}\n";
    const AFTER_EDIT: &str = "// review test\nfn uno() -> i32 {\n    1\n}\n";
    const AFTER_TASK: &str = "// review test\nfn uno() -> i32 {\n    20\n}\n";
    // Every change to notes.md appends at the very end of the buffer, where Neovim 0.11 leaves
    // an extra blank line after inserted newline-ended text (../shared/clients): baton sends such
    // edits as their equivalent before the last newline, so undo finds no stray "user" line.
    const NOTES: &str = "notes\n";
    const NOTES_KEPT: &str = "notes\nmore\n";
    let fake = testkit::fake_model::FakeModel::start().await;
    fake.push(Reply::text("uno").rate(400.0));
    let parent = testkit::codex::scratch_root().join("e2e-neovim-review");
    std::fs::create_dir_all(&parent).unwrap();
    let dir = tempfile::tempdir_in(parent).unwrap();
    let root = dir.path().join("workspace");
    std::fs::create_dir_all(root.join("src")).unwrap();
    let file = root.join("src/lib.rs");
    std::fs::write(&file, TEXT).unwrap();
    let notes = root.join("notes.md");
    std::fs::write(&notes, NOTES).unwrap();
    // The plugin finds the workspace by this marker (no root_dir in the test's setup).
    std::fs::write(root.join("baton.toml"), "").unwrap();
    let focus = "\n\n(The user is looking at src/lib.rs.)";
    let write =
        |path: &str, content: &str| json!({ "type": "write", "path": path, "content": content });
    let message = |text: &str| json!({ "type": "message", "text": text });
    let agent_script = dir.path().join("agent.json");
    let agent_log = dir.path().join("agent.log");
    std::fs::write(
        &agent_script,
        json!({
            "by_prompt": {
                format!("change two files{focus}"): [
                    write("src/lib.rs", AFTER_TASK),
                    write("notes.md", NOTES_KEPT),
                    message("Changed two files."),
                ],
                format!("add a line{focus}"): [
                    write("notes.md", "notes\nmore\nanother\n"),
                    message("Added a line."),
                ],
            },
            // The second prompt of a task's agent process: the reply.
            "turns": [[], [write("notes.md", "notes\nmore\nanother\nreplied\n"), message("Replied.")]],
            "log": agent_log,
        })
        .to_string(),
    )
    .unwrap();
    let init_options = json!({
        "models": { "fast": { "provider": "openai", "model": "spark-test", "base_url": fake.base_url(), "api_key_env": "BATON_TEST_KEY" } },
        "edit": { "flush_interval_ms": 20 },
        "harness": {
            "agent": "scripted",
            "grace_ms": 1000,
            "agents": { "scripted": {
                "kind": "acp",
                "command": [testkit::scripted_agent::binary_path()],
                "env": { "SCRIPTED_AGENT_SCRIPT": agent_script },
            }},
        },
    })
    .to_string();
    let env: Vec<(String, String)> = vec![
        ("BATON_BIN".into(), env!("CARGO_BIN_EXE_baton").into()),
        (
            "BATON_PLUGIN_DIR".into(),
            plugin_dir().display().to_string(),
        ),
        ("BATON_FILE".into(), file.display().to_string()),
        ("BATON_NOTES".into(), notes.display().to_string()),
        ("BATON_NOTES_KEPT".into(), NOTES_KEPT.into()),
        ("BATON_INIT_OPTIONS".into(), init_options),
        ("BATON_TEST_KEY".into(), crate::support::SECRET_KEY.into()),
        (
            "BATON_LOG_FILE".into(),
            dir.path().join("baton.log").display().to_string(),
        ),
        (
            "XDG_CONFIG_HOME".into(),
            dir.path().join("config").display().to_string(),
        ),
        ("BATON_JOB_TIMEOUT_MS".into(), "60000".into()),
        (
            "BATON_STATE_DIR".into(),
            dir.path().join("state").display().to_string(),
        ),
    ];
    let script = neovim::lua_dir().join("e2e_plugin_review.lua");
    let outcome = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        neovim::run_lua_test(&nvim, &script, &env, Duration::from_secs(240))
    })
    .await
    .unwrap()
    .expect("neovim ran the script");
    let results = &outcome.results;
    let log = std::fs::read_to_string(dir.path().join("baton.log")).unwrap_or_default();
    let context = format!("{results:#}\n{}\n{log}", outcome.stderr);
    assert_eq!(results["errors"], json!([]), "{context}");
    let step = |name: &str| &results["steps"][name];
    // :'<,'>BatonEdit on `one` rewrote that word only.
    assert_eq!(step("edit_charwise")["end_message"], "done", "{context}");
    assert_eq!(step("edit_charwise")["text"], AFTER_EDIT, "{context}");
    let request = fake.requests()[0].body.to_string();
    assert!(request.contains("spell it in Spanish"), "{request}");
    assert_eq!(step("task_one")["end_message"], "done", "{context}");
    assert_eq!(step("task_one")["text"], AFTER_TASK, "{context}");
    // :BatonTasks offered the task and opened its document in a split.
    assert_eq!(
        results["tasks_items"],
        json!(["#1 change two files [done; reply below to continue] (scripted)"]),
        "{context}"
    );
    let first_document = results["reopened"]["name"].as_str().unwrap_or("");
    assert!(
        first_document.contains("/state/tasks/task-") && first_document.ends_with("-1.md"),
        "{context}"
    );
    assert_eq!(results["reopened"]["windows"], 2, "{context}");
    for key in [
        "<leader>au",
        "<leader>aU",
        "<leader>ak",
        "<leader>ad",
        "<leader>ar",
    ] {
        assert!(results["keymaps"][key].is_string(), "{key}: {context}");
    }
    // Undo of the file on the line: the buffer has its text from before the task again.
    assert_eq!(results["undo_file_text"], AFTER_EDIT, "{context}");
    // The diff opened (and took the focus) in its own window.
    assert!(
        results["diff"]["name"]
            .as_str()
            .unwrap_or("")
            .ends_with("-1.diff"),
        "{context}"
    );
    assert_eq!(results["diff"]["current"], true, "{context}");
    assert!(
        results["diff"]["text"]
            .as_str()
            .unwrap_or("")
            .contains("+more"),
        "{context}"
    );
    // Keep: notes.md kept, src/lib.rs stays undone.
    let kept = results["kept_document"].as_str().unwrap_or("");
    assert!(
        kept.lines()
            .any(|line| line.starts_with("- `src/lib.rs`") && line.ends_with("undone")),
        "{kept}"
    );
    // The second task, its reply (the agent got "go on" and wrote again), undo all.
    assert_eq!(step("task_two")["end_message"], "done", "{context}");
    assert_eq!(results["reply"]["end_message"], "done", "{context}");
    assert_eq!(
        results["reply"]["notes"], "notes\nmore\nanother\nreplied\n",
        "{context}"
    );
    let agent_stdin = std::fs::read_to_string(&agent_log).unwrap_or_default();
    assert!(agent_stdin.contains("go on"), "{agent_stdin}");
    assert_eq!(results["undo_all_notes"], NOTES_KEPT, "{context}");
    // Nothing was written to disk; one baton served the workspace and both task documents.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), TEXT);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), NOTES);
    assert_eq!(results["clients"], 1, "{context}");
    assert_eq!(
        results["documents_attached"],
        json!([true, true]),
        "{context}"
    );
}

/// `editors/neovim` in this repository.
fn plugin_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("editors/neovim")
}

/// The plugin's plan mode (`e2e_plugin_plan.lua`): `:'<,'>BatonPlan` streams a plan from the deep
/// tier (the fake model) into a split; after the user adds a note, `<leader>ar` revises it in
/// place with the note kept, and after another, so does `:BatonPlanRefine`; `<leader>as` (on step 2's note),
/// `:BatonPlanStep` (on step 1), `:BatonPlanExecute scripted` and `<leader>ax` start agent tasks
/// (testkit's scripted ACP agent, the default agent) for the step under the cursor or the
/// plan, each opening its task document, and baton ticks the executed steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_plugin_plans_refines_and_executes_steps() {
    let Some(nvim) = neovim::nvim_for_tests() else {
        return;
    };
    const TEXT: &str = "// plan test\nfn one() -> i32 {\n    1\n}\n";
    const STEP_ONE: &str = "Rename the function `one` to `uno` — files: `src/lib.rs`";
    const STEP_TWO: &str = "Update the comment that names it — files: `src/lib.rs`";
    const STEP_THREE: &str = "Run the tests";
    const STEP_FOUR: &str = "Note the rename in the changelog";
    const NOTE: &str = "keep the old name as an alias";
    let plan = |steps: &[&str]| {
        let mut text =
            "# Plan: Rename one to uno\n\n## Goal\n\nRename `one` to `uno`.\n\n## Steps\n\n"
                .to_string();
        for (number, step) in steps.iter().enumerate() {
            text.push_str(&format!("- [ ] {}. {step}\n", number + 1));
        }
        text
    };
    let fake = testkit::fake_model::FakeModel::start().await;
    // Slow enough to be seen streaming (baton brings it into the document every 200 ms).
    fake.push(Reply::text(plan(&[STEP_ONE, STEP_TWO])).rate(150.0));
    fake.push(Reply::text(plan(&[STEP_ONE, STEP_TWO, STEP_THREE])).rate(400.0));
    fake.push(Reply::text(plan(&[STEP_ONE, STEP_TWO, STEP_THREE, STEP_FOUR])).rate(400.0));
    let parent = testkit::codex::scratch_root().join("e2e-neovim-plan");
    std::fs::create_dir_all(&parent).unwrap();
    let dir = tempfile::tempdir_in(parent).unwrap();
    let root = dir.path().join("workspace");
    std::fs::create_dir_all(root.join("src")).unwrap();
    let file = root.join("src/lib.rs");
    std::fs::write(&file, TEXT).unwrap();
    std::fs::write(root.join("baton.toml"), "").unwrap();
    let agent_script = dir.path().join("agent.json");
    let agent_log = dir.path().join("agent.log");
    std::fs::write(
        &agent_script,
        json!({
            "turns": [[{ "type": "message", "text": "Done as planned." }]],
            "log": agent_log,
        })
        .to_string(),
    )
    .unwrap();
    let model = |name: &str| json!({ "provider": "openai", "model": name, "base_url": fake.base_url(), "api_key_env": "BATON_TEST_KEY" });
    let init_options = json!({
        "models": { "fast": model("spark-test"), "deep": model("deep-test") },
        "harness": {
            "agent": "scripted",
            "grace_ms": 1000,
            "agents": { "scripted": {
                "kind": "acp",
                "command": [testkit::scripted_agent::binary_path()],
                "env": { "SCRIPTED_AGENT_SCRIPT": agent_script },
            }},
        },
    })
    .to_string();
    let env: Vec<(String, String)> = vec![
        ("BATON_BIN".into(), env!("CARGO_BIN_EXE_baton").into()),
        (
            "BATON_PLUGIN_DIR".into(),
            plugin_dir().display().to_string(),
        ),
        ("BATON_FILE".into(), file.display().to_string()),
        ("BATON_INIT_OPTIONS".into(), init_options),
        ("BATON_TEST_KEY".into(), crate::support::SECRET_KEY.into()),
        (
            "BATON_LOG_FILE".into(),
            dir.path().join("baton.log").display().to_string(),
        ),
        (
            "XDG_CONFIG_HOME".into(),
            dir.path().join("config").display().to_string(),
        ),
        ("BATON_JOB_TIMEOUT_MS".into(), "60000".into()),
        (
            "BATON_STATE_DIR".into(),
            dir.path().join("state").display().to_string(),
        ),
    ];
    let script = neovim::lua_dir().join("e2e_plugin_plan.lua");
    let outcome = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        neovim::run_lua_test(&nvim, &script, &env, Duration::from_secs(300))
    })
    .await
    .unwrap()
    .expect("neovim ran the script");
    let results = &outcome.results;
    let log = std::fs::read_to_string(dir.path().join("baton.log")).unwrap_or_default();
    let context = format!("{results:#}\n{}\n{log}", outcome.stderr);
    assert_eq!(results["errors"], json!([]), "{context}");
    let step = |name: &str| &results["steps"][name];
    // The plan streamed into a split (the file's window stays) that took the focus.
    assert_eq!(
        step("plan")["end_message"],
        "plan written: 2 steps",
        "{context}"
    );
    let document = results["plan"]["name"].as_str().unwrap_or("");
    assert!(
        document.contains("/state/plans/") && document.ends_with(".md"),
        "{context}"
    );
    assert_eq!(results["plan"]["windows"], 2, "{context}");
    assert_eq!(results["plan"]["current"], true, "{context}");
    assert!(
        results["plan"]["snapshots"].as_array().map_or(0, Vec::len) >= 3,
        "{context}"
    );
    let written = results["plan"]["text"].as_str().unwrap_or("");
    assert!(
        written.starts_with("# Plan: Rename one to uno\n"),
        "{written}"
    );
    assert!(
        written.contains(&format!("- [ ] 2. {STEP_TWO}")),
        "{written}"
    );
    for key in ["<leader>ar", "<leader>ax", "<leader>as"] {
        assert!(results["keymaps"][key].is_string(), "{key}: {context}");
    }
    let requests = fake.requests();
    let first = requests[0].body.to_string();
    assert!(
        first.contains("rename one to uno") && first.contains("src/lib.rs"),
        "{first}"
    );
    // Refined in place, twice; the user's note went to the model and is still under step 2.
    assert_eq!(
        step("refine_key")["end_message"],
        "plan refined: 3 steps",
        "{context}"
    );
    assert_eq!(results["refined_same_buffer"], true, "{context}");
    let refined = results["refined"].as_str().unwrap_or("");
    assert!(refined.contains(STEP_THREE), "{refined}");
    assert!(
        refined.contains(&format!("{STEP_TWO}\n  > note: {NOTE}\n")),
        "{refined}"
    );
    assert!(requests[1].body.to_string().contains(NOTE));
    assert_eq!(
        step("refine_command")["end_message"],
        "plan refined: 4 steps",
        "{context}"
    );
    let refined = results["refined_again"].as_str().unwrap_or("");
    assert!(refined.contains(STEP_FOUR), "{refined}");
    assert!(
        refined.contains(&format!("{STEP_TWO}\n  > note: {NOTE}\n"))
            && refined.contains(&format!(
                "{STEP_THREE}\n  > note: the unit tests are enough\n"
            )),
        "{refined}"
    );
    assert_eq!(requests.len(), 3);
    // Each execution started a task for what was asked, whose document opened.
    let execution = |name: &str| &results["executions"][name];
    for (name, title) in [
        ("step_key", "step 2: Update the comment"),
        ("step_command", "step 1: Rename the function"),
        ("execute_command", "Rename one to uno"),
        ("execute_key", "Rename one to uno"),
    ] {
        assert_eq!(step(name)["end_message"], "done", "{name}: {context}");
        let task_title = execution(name)["task_title"].as_str().unwrap_or("");
        assert!(
            task_title.starts_with("# baton task: plan ") && task_title.contains(title),
            "{name}: {context}"
        );
    }
    let tasks = results["tasks"].as_array().cloned().unwrap_or_default();
    assert_eq!(tasks.len(), 4, "{context}");
    assert!(
        tasks.iter().all(|task| task["agent"] == "scripted"),
        "{context}"
    );
    // The agent got the plan as its brief: the note went with step 2.
    let agent_stdin = std::fs::read_to_string(&agent_log).unwrap_or_default();
    assert!(
        agent_stdin.contains("Update the comment that names it") && agent_stdin.contains(NOTE),
        "{agent_stdin}"
    );
    assert_eq!(results["clients"], 1, "{context}");
}

/// The plugin's next edits and its safety on Neovim 0.11 (`e2e_plugin_next_edit.lua`): with
/// `features.next_edit` on, renaming a parameter brings baton's Hint diagnostics into
/// `vim.diagnostic`; `gra` lists the quick fixes and "apply all" applies every proposal; after a
/// second rename `<leader>an` applies the proposal on the cursor's line only, one line at a time.
/// `setup({ inline_completion = true })` raises and says nothing on 0.11, maps no Insert-mode key,
/// and `:checkhealth baton` says inline completion needs Neovim 0.12.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_plugin_applies_next_edits_and_is_safe_without_inline_completion() {
    let Some(nvim) = neovim::nvim_for_tests() else {
        return;
    };
    const TEXT: &str = "fn area(w: u32, h: u32) -> u32 {\n    let double = w * 2;\n    let half = h / 2;\n    double + w * h + half\n}\n";
    const RENAMED_W: &str = "fn area(width: u32, h: u32) -> u32 {\n    let double = width * 2;\n    let half = h / 2;\n    double + width * h + half\n}\n";
    const LAST_LINE: &str = "fn area(width: u32, height: u32) -> u32 {\n    let double = width * 2;\n    let half = h / 2;\n    double + width * height + half\n}\n";
    const RENAMED_BOTH: &str = "fn area(width: u32, height: u32) -> u32 {\n    let double = width * 2;\n    let half = height / 2;\n    double + width * height + half\n}\n";
    let fake = testkit::fake_model::FakeModel::start().await;
    // Lines are 1-based in the reply, as the next-edit prompt numbers them.
    fake.push(Reply::text(
        r#"{"edits": [{"line": 2, "old": "w * 2", "new": "width * 2"}, {"line": 4, "old": "w * h", "new": "width * h"}]}"#,
    ));
    fake.push(Reply::text(
        r#"{"edits": [{"line": 3, "old": "h / 2", "new": "height / 2"}, {"line": 4, "old": "width * h", "new": "width * height"}]}"#,
    ));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("workspace");
    std::fs::create_dir_all(root.join("src")).unwrap();
    let file = root.join("src/area.rs");
    std::fs::write(&file, TEXT).unwrap();
    let init_options = json!({
        "models": { "fast": { "provider": "openai", "model": "spark-test", "base_url": fake.base_url(), "api_key_env": "BATON_TEST_KEY" } },
        // Long enough that one rename typed with `ciw` is one round.
        "features": { "next_edit": true, "next_edit_debounce_ms": 150 },
    })
    .to_string();
    let env: Vec<(String, String)> = vec![
        ("BATON_BIN".into(), env!("CARGO_BIN_EXE_baton").into()),
        (
            "BATON_PLUGIN_DIR".into(),
            plugin_dir().display().to_string(),
        ),
        ("BATON_FILE".into(), file.display().to_string()),
        ("BATON_ROOT".into(), root.display().to_string()),
        ("BATON_INIT_OPTIONS".into(), init_options),
        ("BATON_TEST_KEY".into(), crate::support::SECRET_KEY.into()),
        (
            "BATON_LOG_FILE".into(),
            dir.path().join("baton.log").display().to_string(),
        ),
        (
            "XDG_CONFIG_HOME".into(),
            dir.path().join("config").display().to_string(),
        ),
    ];
    let script = neovim::lua_dir().join("e2e_plugin_next_edit.lua");
    let outcome = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        neovim::run_lua_test(&nvim, &script, &env, Duration::from_secs(120))
    })
    .await
    .unwrap()
    .expect("neovim ran the script");
    let results = &outcome.results;
    let log = std::fs::read_to_string(dir.path().join("baton.log")).unwrap_or_default();
    let context = format!("{results:#}\n{}\n{log}", outcome.stderr);
    assert_eq!(results["errors"], json!([]), "{context}");
    // Safe on 0.11: no error, no message, no Insert-mode key, and the health check explains.
    assert_eq!(results["setup_ok"], true, "{context}");
    assert_eq!(results["setup_notifications"], 0, "{context}");
    assert_eq!(results["inline_module"], false, "{context}");
    assert_eq!(
        results["insert_maps"],
        json!({ "<M-l>": "", "<M-]>": "", "<M-[>": "" }),
        "{context}"
    );
    let health = results["health"].as_str().unwrap_or("");
    assert!(
        health.contains("inline completion (ghost text) needs Neovim 0.12"),
        "{health}"
    );
    assert!(!health.contains("ERROR"), "{health}");
    assert_eq!(
        results["next_edit_map"], "baton: apply the next edit on this line",
        "{context}"
    );
    let step = |name: &str| &results["steps"][name];
    // `gra` on the first hint: the quick fix there and "apply all"; all of it applied.
    let titles = results["gra_titles"].to_string();
    assert!(
        titles.contains("baton: change `w` to `width`")
            && titles.contains("baton: apply all 2 next edits"),
        "{titles}"
    );
    assert_eq!(
        step("gra_apply_all")["hints"],
        json!(["1:17", "3:13"]),
        "{context}"
    );
    assert_eq!(step("gra_apply_all")["text"], RENAMED_W, "{context}");
    // `<leader>an` on the last line: that line's proposal only; none on the first line.
    assert_eq!(
        step("next_edit_last_line")["hints"],
        json!(["2:15", "3:21"]),
        "{context}"
    );
    assert_eq!(step("next_edit_last_line")["text"], LAST_LINE, "{context}");
    assert_eq!(step("next_edit_no_hint")["text"], LAST_LINE, "{context}");
    assert!(
        results["notifications"]
            .to_string()
            .contains("no next edit proposed on this line"),
        "{context}"
    );
    assert_eq!(
        step("next_edit_other_line")["text"],
        RENAMED_BOTH,
        "{context}"
    );
    // One model request per rename; taking the proposals asked for nothing more.
    assert_eq!(fake.requests().len(), 2, "{context}");
    // Nothing was saved.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), TEXT);
}

/// The plugin's inline completion as on Neovim 0.12 (`e2e_plugin_inline_012.lua`), in the real
/// headless Neovim 0.11 with 0.12's `vim.lsp.inline_completion` imitated in Lua
/// (`crates/testkit/lua/nvim012_inline_completion.lua`): on attach the plugin enables it for
/// baton and maps `<M-l>` (accept), `<M-]>` and `<M-[>` (next, previous) in the buffer; typing
/// in Insert mode brings baton's suggestion after the 200 ms pause, the keys cycle and accept it;
/// with `inline_completion = false` a buffer gets neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_plugin_accepts_inline_completion_as_on_neovim_0_12() {
    let Some(nvim) = neovim::nvim_for_tests() else {
        return;
    };
    const SOURCE: &str = "fn count(items: &[u32]) -> usize {\n    \n}\n";
    let fake = testkit::fake_model::FakeModel::start().await;
    fake.push(Reply::text("items.len();"));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("workspace");
    std::fs::create_dir_all(root.join("src")).unwrap();
    let file = root.join("src/lib.rs");
    std::fs::write(&file, SOURCE).unwrap();
    let other = root.join("src/other.rs");
    std::fs::write(&other, "fn other() {}\n").unwrap();
    let init_options = json!({
        "models": { "fast": { "provider": "openai", "model": "spark-test", "base_url": fake.base_url(), "api_key_env": "BATON_TEST_KEY" } },
    })
    .to_string();
    let env: Vec<(String, String)> = vec![
        ("BATON_BIN".into(), env!("CARGO_BIN_EXE_baton").into()),
        (
            "BATON_PLUGIN_DIR".into(),
            plugin_dir().display().to_string(),
        ),
        ("BATON_FILE".into(), file.display().to_string()),
        ("BATON_OTHER_FILE".into(), other.display().to_string()),
        ("BATON_ROOT".into(), root.display().to_string()),
        ("BATON_INIT_OPTIONS".into(), init_options),
        ("BATON_TYPED".into(), "let n = ".into()),
        ("BATON_TEST_KEY".into(), crate::support::SECRET_KEY.into()),
        (
            "BATON_LOG_FILE".into(),
            dir.path().join("baton.log").display().to_string(),
        ),
        (
            "XDG_CONFIG_HOME".into(),
            dir.path().join("config").display().to_string(),
        ),
    ];
    let script = neovim::lua_dir().join("e2e_plugin_inline_012.lua");
    let outcome = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        neovim::run_lua_session(&nvim, &script, &env, Duration::from_secs(90))
    })
    .await
    .unwrap()
    .expect("neovim ran the script");
    let results = &outcome.results;
    let log = std::fs::read_to_string(dir.path().join("baton.log")).unwrap_or_default();
    let context = format!("{results:#}\n{}\n{log}", outcome.stderr);
    assert_eq!(results["errors"], json!([]), "{context}");
    assert_eq!(results["enabled"], true, "{context}");
    assert_eq!(
        results["insert_maps"],
        json!({
            "<M-l>": "baton: accept the inline suggestion",
            "<M-]>": "baton: next inline suggestion",
            "<M-[>": "baton: previous inline suggestion",
        }),
        "{context}"
    );
    let health = results["health"].as_str().unwrap_or("");
    assert!(
        health.contains(
            "on in the buffers baton serves; Insert-mode keys: accept <M-l>, next <M-]>, previous <M-[>"
        ),
        "{health}"
    );
    // Asked as Neovim 0.12 asks: automatically, at the cursor after the typed text.
    let requests = results["requests"].as_array().cloned().unwrap_or_default();
    assert!(!requests.is_empty(), "{context}");
    assert!(
        requests.iter().all(|request| request["triggerKind"] == 2),
        "{context}"
    );
    assert_eq!(
        requests.last().unwrap()["position"],
        json!({ "line": 1, "character": 12 }),
        "{context}"
    );
    assert_eq!(results["shown"], "items.len();", "{context}");
    assert_eq!(
        results["shown_after_next"], "items.len(); (1/1)",
        "{context}"
    );
    assert_eq!(
        results["shown_after_previous"], "items.len(); (1/1)",
        "{context}"
    );
    assert_eq!(
        results["accepted_line"], "    let n = items.len();",
        "{context}"
    );
    assert_eq!(results["cursor_after_accept"], json!([2, 24]), "{context}");
    assert_eq!(results["mode_after_accept"], "i", "{context}");
    assert_eq!(results["shown_after_accept"], json!(null), "{context}");
    // inline_completion = false: nothing for a buffer attached afterwards, same server.
    assert_eq!(results["other_enabled"], false, "{context}");
    assert_eq!(
        results["other_insert_maps"],
        json!({ "<M-l>": "", "<M-]>": "", "<M-[>": "" }),
        "{context}"
    );
    assert_eq!(results["clients"], 1, "{context}");
    assert_eq!(fake.requests().len(), 1, "{context}");
}
