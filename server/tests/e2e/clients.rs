//! The user keeps typing while a job streams, in editors that treat stale edits differently.

use std::path::Path;

use serde_json::{Value, json};
use syntax::Language;
use testkit::fake_model::Reply;
use testkit::lsp_client::ClientProfile;

use crate::edits::{EXPECTED, MARKED, REPLY};
use crate::support::{Harness, Options, WAIT, find_action};

async fn start_marker_job(harness: &Harness, rate: f64) -> (String, String) {
    harness
        .start_marker_job("src/lib.rs", vec![Reply::text(REPLY).rate(rate)])
        .await
}

async fn wait_for_first_edit(harness: &Harness) {
    harness
        .client
        .wait_for("the first streamed edit", WAIT, |state| {
            (!state.apply_edits.is_empty()).then_some(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn typing_outside_the_target_is_kept_and_the_job_goes_on() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    let (uri, token) = start_marker_job(&harness, 40.0).await;
    wait_for_first_edit(&harness).await;
    harness
        .client
        .change(&uri, ((0, 0), (0, 0)), "// typed while streaming\n")
        .await;
    let last_line = harness.client.text(&uri).lines().count() as u32;
    harness
        .client
        .change(
            &uri,
            ((last_line, 0), (last_line, 0)),
            "// and at the end\n",
        )
        .await;
    assert_eq!(Harness::end_message(&harness.job_end(&token).await), "done");
    assert_eq!(
        harness.agreed_text(&uri).await,
        format!("// typed while streaming\n{EXPECTED}// and at the end\n")
    );
    harness.finish().await;
}

#[tokio::test]
async fn typing_inside_the_target_stops_the_job_and_keeps_the_users_text() {
    let harness = Harness::start(ClientProfile::Strict).await;
    let (uri, token) = start_marker_job(&harness, 20.0).await;
    wait_for_first_edit(&harness).await;
    // Line 5 is inside the region being rewritten (the marker line is gone).
    harness.client.change(&uri, ((5, 0), (5, 0)), "USER ").await;
    let typed = harness.client.text(&uri);
    let events = harness.job_end(&token).await;
    assert_eq!(
        Harness::end_message(&events),
        "stopped: you edited the target"
    );
    harness
        .wait_for_message("you edited the text it was rewriting")
        .await;
    let text = harness.agreed_text(&uri).await;
    assert_eq!(
        text, typed,
        "nothing was changed after the user typed in the target"
    );
    assert!(text.contains("USER "));
    harness.finish().await;
}

/// The user wins the race against the very first edit; each editor reacts in its own way.
async fn stale_edit_is_recomputed(profile: ClientProfile) {
    let harness = Harness::start(profile).await;
    harness.fake.push(Reply::text(REPLY).rate(200.0));
    let uri = harness.open("src/lib.rs", "rust", MARKED).await;
    let actions = harness
        .code_actions(&uri, ((4, 0), (4, 0)), json!([]))
        .await;
    harness
        .client
        .type_before_next_apply_edit(&uri, ((0, 0), (0, 0)), "// typed first\n");
    let token = harness
        .run_action(find_action(&actions, "return two"))
        .await;
    let end = Harness::end_message(&harness.job_end(&token).await);
    assert_eq!(end, "done", "{:#?}", harness.client.state().apply_edits);
    assert_eq!(
        harness.agreed_text(&uri).await,
        format!("// typed first\n{EXPECTED}")
    );
    let records = harness.client.state().apply_edits;
    let stale = records
        .iter()
        .filter(|record| record.response["applied"] == false || !record.skipped_stale.is_empty())
        .count();
    assert_eq!(stale, 1, "exactly the first edit was stale: {records:#?}");
    harness.finish().await;
}

#[tokio::test]
async fn helix_rejects_a_stale_edit_and_it_is_recomputed() {
    stale_edit_is_recomputed(ClientProfile::Helix).await;
}

#[tokio::test]
async fn neovim_skips_a_stale_edit_but_says_applied_and_it_is_recomputed() {
    stale_edit_is_recomputed(ClientProfile::Neovim).await;
}

#[tokio::test]
async fn zed_skips_a_stale_edit_silently_and_it_is_recomputed() {
    stale_edit_is_recomputed(ClientProfile::Zed).await;
}

#[tokio::test]
async fn zed_and_helix_negotiate_their_encodings() {
    for (profile, expected) in [
        (ClientProfile::Zed, "utf-16"),
        (ClientProfile::Helix, "utf-8"),
        (ClientProfile::Neovim, "utf-8"),
    ] {
        let harness = Harness::start(profile).await;
        assert_eq!(
            harness.initialize["capabilities"]["positionEncoding"], expected,
            "{profile:?}"
        );
        // Astral characters before the target: positions must be counted in that encoding.
        harness
            .fake
            .push(Reply::text("let b = \"😀\";").rate(300.0));
        let uri = harness
            .open(
                "u.js",
                "javascript",
                "let a = \"😀😀\"; // baton: x\nlet b = 1;\n",
            )
            .await;
        let result = harness
            .execute(
                "baton.edit",
                json!([{ "textDocument": { "uri": uri }, "range": crate::support::range_json(((1, 0), (1, 10))), "instruction": "emoji" }]),
            )
            .await
            .unwrap();
        let token = result["job"].as_str().unwrap().to_string();
        assert_eq!(Harness::end_message(&harness.job_end(&token).await), "done");
        assert_eq!(
            harness.agreed_text(&uri).await,
            "let a = \"😀😀\"; // baton: x\nlet b = \"😀\";\n"
        );
        harness.finish().await;
    }
}

/// `editors/helix/languages.toml`, the file users copy into `~/.config/helix/languages.toml`.
fn helix_languages_toml() -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../editors/helix/languages.toml");
    let text = std::fs::read_to_string(&path).expect("editors/helix/languages.toml");
    toml::from_str(&text).expect("editors/helix/languages.toml is valid TOML")
}

/// The `languageId` Helix 25.07 sends in `didOpen` for one of its language names: the language's
/// `language-id` in Helix's own `languages.toml` where it sets one, else the name.
fn helix_language_id(name: &str) -> &str {
    match name {
        "tsx" => "typescriptreact",
        "jsx" => "javascriptreact",
        other => other,
    }
}

/// The Helix 25.07.1 `initialize` params the Helix client profile sends (recorded from Helix).
fn helix_recorded_initialize() -> Value {
    serde_json::from_str(include_str!(
        "../../../crates/testkit/src/lsp_client/helix-25.07.1.initialize.json"
    ))
    .expect("the recording is JSON")
}

/// Helix has no global language server: each language baton indexes needs its own `[[language]]`
/// that lists baton beside the language's servers, and Helix must name it so baton knows it.
#[test]
fn helix_languages_toml_starts_baton_lsp_for_every_indexed_language() {
    let config = helix_languages_toml();
    let server = &config["language-server"]["baton"];
    assert_eq!(server["command"].as_str(), Some("baton"));
    assert_eq!(
        server["args"].as_array().expect("args"),
        &[toml::Value::from("lsp")]
    );

    let languages = config["language"].as_array().expect("[[language]] tables");
    let servers_of = |name: &str| -> Vec<&str> {
        let mut tables = languages
            .iter()
            .filter(|language| language["name"].as_str() == Some(name));
        let table = tables
            .next()
            .unwrap_or_else(|| panic!("no [[language]] for {name}"));
        assert!(
            tables.next().is_none(),
            "two [[language]] tables for {name}"
        );
        table["language-servers"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} sets no language-servers"))
            .iter()
            .map(|server| server.as_str().expect("a server name"))
            .collect()
    };
    for language in Language::ALL {
        let name = language.name();
        let servers = servers_of(name);
        assert_eq!(
            servers.iter().filter(|server| **server == "baton").count(),
            1,
            "{name}: {servers:?}"
        );
        // Setting the list replaces Helix's defaults: the language's own server stays in it.
        assert!(servers.len() >= 2, "{name} lists only baton: {servers:?}");
        assert_eq!(
            Language::from_language_id(helix_language_id(name)),
            Some(language),
            "baton does not know the languageId Helix sends for {name}"
        );
    }
    // Plan documents are Markdown: their code actions need baton there too.
    assert!(servers_of("markdown").contains(&"baton"));
    assert!(servers_of("markdown").len() >= 2);
    // Every language in the file (JSX too) lists baton, and baton understands its languageId
    // (Markdown, for plan documents, is not indexed).
    for language in languages {
        let name = language["name"].as_str().expect("a language name");
        assert!(servers_of(name).contains(&"baton"), "{name}");
        if name == "markdown" {
            continue;
        }
        assert!(
            Language::from_language_id(helix_language_id(name)).is_some(),
            "{name}"
        );
    }
}

/// The example's `[language-server.baton.config]` reaches baton as Helix sends it and is applied,
/// and the recorded Helix is the client the Helix documentation describes.
#[tokio::test]
async fn helix_example_config_is_applied_as_helix_sends_it() {
    // Helix sends no inline completion request (hence `features.completion_fallback`, a
    // completion item), supports completion, and takes preferred code actions (next edits).
    let recorded = helix_recorded_initialize();
    let text_document = &recorded["capabilities"]["textDocument"];
    assert!(text_document.get("inlineCompletion").is_none());
    assert!(text_document["completion"]["completionItem"].is_object());
    assert_eq!(text_document["codeAction"]["isPreferredSupport"], true);
    assert!(text_document["codeAction"]["codeActionLiteralSupport"].is_object());
    assert!(text_document["publishDiagnostics"].is_object());

    let config = helix_languages_toml();
    let mut settings = serde_json::to_value(&config["language-server"]["baton"]["config"])
        .expect("the config table as JSON");
    // The model section points at a real endpoint; the harness's fake model stands in for it.
    settings.as_object_mut().expect("a table").remove("models");
    let harness = Harness::with(Options {
        profile: ClientProfile::Helix,
        settings,
        ..Options::default()
    })
    .await;
    assert_eq!(
        harness.initialize["capabilities"]["positionEncoding"],
        "utf-8"
    );
    // What the example switches off is not advertised, so Helix asks the language's server.
    let capabilities = &harness.initialize["capabilities"];
    assert!(
        capabilities["documentSymbolProvider"].is_null(),
        "{capabilities:#}"
    );
    assert!(
        capabilities["definitionProvider"].is_null(),
        "{capabilities:#}"
    );
    // A round trip, then no complaint about the settings was shown.
    harness.execute("baton.status", json!([])).await.unwrap();
    let complaints: Vec<String> = harness
        .client
        .state()
        .show_messages
        .iter()
        .map(|message| message.message.clone())
        .filter(|message| message.contains("error") || message.contains("ignored"))
        .collect();
    assert!(complaints.is_empty(), "{complaints:#?}");
    harness.finish().await;
}
