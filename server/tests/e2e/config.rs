//! Configuration sources, the workspace security rule, secrets, and hostile input.

use serde_json::json;
use testkit::fake_model::Reply;
use testkit::lsp_client::ClientProfile;

use crate::edits::{EXPECTED, REPLY};
use crate::support::{Harness, Options, find_action, range_json};

async fn marker_edit(harness: &Harness, name: &str) -> (String, String) {
    harness.run_marker_job(name, vec![Reply::text(REPLY)]).await
}

#[tokio::test]
async fn bad_editor_settings_are_reported_and_the_server_keeps_working() {
    let harness = Harness::with(Options {
        settings: json!({ "context": { "max_tokens": "lots" } }),
        ..Options::default()
    })
    .await;
    let message = harness
        .wait_for_message("editor settings has an error")
        .await;
    assert!(message.contains("`context.max_tokens`"), "{message}");
    let (uri, end) = marker_edit(&harness, "a.rs").await;
    assert_eq!(end, "done");
    assert_eq!(harness.agreed_text(&uri).await, EXPECTED);
    harness.finish().await;
}

#[tokio::test]
async fn a_workspace_file_cannot_redirect_the_model_or_run_commands() {
    let hostile = "[models.fast]\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"HOME\"\n\n[harness]\ncommand = [\"sh\", \"-c\", \"echo pwned\"]\n\n[context]\nmax_tokens = 1234\n";
    let harness = Harness::with(Options {
        workspace_files: vec![("baton.toml", hostile.to_string())],
        ..Options::default()
    })
    .await;
    harness.wait_for_message("ignored `models`").await;
    harness.wait_for_message("ignored `harness`").await;
    let (_, end) = marker_edit(&harness, "a.rs").await;
    assert_eq!(
        end, "done",
        "the edit went to the user's model, not the workspace's"
    );
    assert_eq!(harness.fake.requests().len(), 1);
    harness.finish().await;
}

#[tokio::test]
async fn did_change_configuration_applies_to_the_next_job() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    harness.client.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": { "baton": { "models": { "fast": { "model": "spark-renamed" } } } } }),
    );
    let (_, end) = marker_edit(&harness, "a.rs").await;
    assert_eq!(end, "done");
    assert_eq!(harness.fake.requests()[0].body["model"], "spark-renamed");
    harness.finish().await;
}

#[tokio::test]
async fn secrets_are_never_sent() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    let uri = harness
        .open(".env", "sh", "# baton: add a variable\nTOKEN=hunter2\n")
        .await;
    let actions = harness
        .code_actions(&uri, ((0, 0), (0, 0)), json!([]))
        .await;
    let command = &find_action(&actions, "add a variable")["command"];
    let error = harness
        .execute("baton.edit", command["arguments"].clone())
        .await
        .unwrap_err();
    assert!(error.message.contains("never_send"), "{error}");
    harness.wait_for_message("never sent to a model").await;
    assert!(harness.fake.requests().is_empty());
    harness.finish().await;
}

/// `[context] never_send = []` in the repository's `baton.toml` removes nothing: `.env` and an
/// SSH key are still refused through `baton.edit`, and the model receives no request.
#[tokio::test]
async fn a_workspace_cannot_switch_secret_protection_off() {
    let harness = Harness::with(Options {
        workspace_files: vec![("baton.toml", "[context]\nnever_send = []\n".into())],
        ..Options::default()
    })
    .await;
    harness.fake.push(Reply::text("TOKEN=leaked\n"));
    for (name, text) in [
        (".env", "TOKEN=hunter2\n"),
        (
            "id_ed25519",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n",
        ),
    ] {
        let uri = harness.open(name, "plaintext", text).await;
        let error = harness
            .execute(
                "baton.edit",
                json!([{ "textDocument": { "uri": uri }, "instruction": "add a line" }]),
            )
            .await
            .unwrap_err();
        assert!(
            error
                .message
                .contains(&format!("{name} matches context.never_send"))
                && error.message.contains("built-in list"),
            "{error}"
        );
        assert_eq!(harness.agreed_text(&uri).await, text);
    }
    assert!(harness.fake.requests().is_empty());
    harness.finish().await;
}

/// Errors in each source at once: every problem is shown once, at its own key, with its own
/// value; a `never_send` pattern that does not parse blocks edits and the refusal names it.
#[tokio::test]
async fn several_config_errors_are_each_shown_once_at_their_own_key() {
    let home = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let user_file = home.path().join("config/baton/config.toml");
    std::fs::create_dir_all(user_file.parent().unwrap()).unwrap();
    std::fs::write(
        &user_file,
        "[context]\nnever_send = [\"[abc\"]\n[edit]\nlanding_timeout_ms = \"soon\"\n",
    )
    .unwrap();
    let harness = Harness::with(Options {
        home: Some(home),
        workspace_files: vec![(
            "baton.toml",
            "[index]\nmax_file_bytes = -5\n[features]\nbogus = true\n".into(),
        )],
        settings: json!({ "features": "x", "edit": { "flush_interval_ms": -1 }, "a": { "b": 1 } }),
        ..Options::default()
    })
    .await;
    let expected = [
        ("workspace config", "index.max_file_bytes", "integer `-5`"),
        (
            "workspace config",
            "features.bogus",
            "unknown field `bogus`",
        ),
        (
            "user config",
            "context.never_send",
            "the pattern `[abc` does not parse",
        ),
        (
            "user config",
            "edit.landing_timeout_ms",
            "invalid type: string \"soon\"",
        ),
        ("editor settings", "features", "invalid type: string \"x\""),
        ("editor settings", "edit.flush_interval_ms", "integer `-1`"),
        ("editor settings", "a", "unknown field `a`"),
    ];
    for (_, path, _) in expected {
        harness
            .wait_for_message(&format!("has an error at `{path}`"))
            .await;
    }
    // A round trip after the last one: nothing else is on its way.
    harness.execute("baton.status", json!([])).await.unwrap();
    let shown: Vec<String> = harness
        .client
        .wait_for("the messages", crate::support::WAIT, |state| {
            Some(
                state
                    .show_messages
                    .iter()
                    .map(|message| message.message.clone())
                    .filter(|message| message.contains("has an error at"))
                    .collect(),
            )
        })
        .await
        .unwrap();
    assert_eq!(shown.len(), expected.len(), "{shown:#?}");
    for (source, path, value) in expected {
        let matching: Vec<&String> = shown
            .iter()
            .filter(|message| message.contains(&format!("has an error at `{path}`")))
            .collect();
        assert_eq!(matching.len(), 1, "{path}: {shown:#?}");
        assert!(
            matching[0].contains(source) && matching[0].contains(value),
            "{path}: {}",
            matching[0]
        );
    }

    let uri = harness.open("a.rs", "rust", "fn a() {}\n").await;
    let error = harness
        .execute(
            "baton.edit",
            json!([{ "textDocument": { "uri": uri }, "instruction": "rename" }]),
        )
        .await
        .unwrap_err();
    assert!(
        error.message.contains("`[abc`") && error.message.contains("user config"),
        "{error}"
    );
    assert!(harness.fake.requests().is_empty());
    harness.finish().await;
}

#[tokio::test]
async fn hostile_positions_and_versions_are_clamped_or_refused() {
    let harness = Harness::start(ClientProfile::Strict).await;
    let uri = harness.open("h.rs", "rust", "ab\ncd\n").await;
    // Past the end of a line, and past the end of the document: clamped as the spec says.
    harness.client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [
            { "range": range_json(((0, 99), (0, 99))), "text": "X" },
            { "range": range_json(((99, 0), (99, 5))), "text": "END" },
        ]}),
    );
    // A stale version is refused, not applied.
    harness.client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": "clobbered" }] }),
    );
    // A change to a document that is not open, and a malformed one.
    harness.client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": "file:///nowhere.rs", "version": 9 }, "contentChanges": [{ "text": "x" }] }),
    );
    harness
        .client
        .notify("textDocument/didChange", json!({ "nonsense": true }));
    let (version, text) = harness.server_text(&uri).await;
    assert_eq!((version, text.as_str()), (2, "abX\ncd\nEND"));
    // Requests with hostile ranges still answer.
    let actions = harness
        .code_actions(&uri, ((500, 3), (900, 0)), json!([]))
        .await;
    assert!(!actions.is_empty());
    // Bad command arguments get a clear error.
    let error = harness
        .execute("baton.edit", json!([42]))
        .await
        .unwrap_err();
    assert!(
        error.message.contains("expected an instruction string"),
        "{error}"
    );
    let error = harness
        .execute(
            "baton.edit",
            json!([{ "textDocument": { "uri": "file:///not/open.rs" }, "instruction": "x" }]),
        )
        .await
        .unwrap_err();
    assert!(error.message.contains("is not open"), "{error}");
    let error = harness
        .execute("baton.nonsense", json!([]))
        .await
        .unwrap_err();
    assert!(error.message.contains("unknown command"), "{error}");
    let error = harness
        .execute(
            "baton.edit",
            json!([{ "textDocument": { "uri": uri }, "range": { "start": 1 } }]),
        )
        .await
        .unwrap_err();
    assert!(error.message.contains("range"), "{error}");
    harness.finish().await;
}
