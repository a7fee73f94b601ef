//! Inline edits end to end: markers, selections, bare instructions, fix, document, tests,
//! explain, on every provider.

use serde_json::json;
use testkit::fake_model::Reply;
use testkit::lsp_client::ClientProfile;

use crate::support::{Harness, Options, SECRET_KEY, buffer_states, find_action};

pub const MARKED: &str = "fn keep() -> i32 {\n    0\n}\n\n// baton: return two instead of one\nfn one() -> i32 {\n    1\n}\n\nfn tail() {}\n";
pub const REPLY: &str = "fn one() -> i32 {\n    // two now\n    2\n}";
pub const EXPECTED: &str =
    "fn keep() -> i32 {\n    0\n}\n\nfn one() -> i32 {\n    // two now\n    2\n}\n\nfn tail() {}\n";

async fn marker_flow(provider: &'static str, expected_path: &str) {
    let harness = Harness::with(Options {
        provider,
        ..Options::default()
    })
    .await;
    harness.fake.push(Reply::text(REPLY).rate(150.0));
    let uri = harness.open("src/lib.rs", "rust", MARKED).await;
    let actions = harness
        .code_actions(&uri, ((4, 3), (4, 3)), json!([]))
        .await;
    let action = find_action(&actions, "return two instead of one");
    assert_eq!(action["isPreferred"], true);
    let token = harness.run_action(action).await;
    let events = harness.job_end(&token).await;
    assert_eq!(Harness::end_message(&events), "done");
    assert_eq!(events[0].kind, "begin");
    assert_eq!(events[0].cancellable, Some(true));
    assert_eq!(harness.agreed_text(&uri).await, EXPECTED);

    // The reply streamed in: several versioned edits, each buffer state keeping the code
    // outside the target, the marker gone from the first flush on.
    let state = harness.client.state();
    assert!(
        state.apply_edits.len() >= 3,
        "expected a streamed edit, got {} edits",
        state.apply_edits.len()
    );
    for record in &state.apply_edits {
        let change = &record.params["edit"]["documentChanges"][0];
        assert!(
            change["textDocument"]["version"].is_i64(),
            "edits are versioned: {change}"
        );
    }
    let states = buffer_states(
        MARKED,
        &state.apply_edits,
        harness.client.position_encoding(),
    );
    assert!(
        states
            .iter()
            .all(|text| text.starts_with("fn keep() -> i32 {\n    0\n}\n\n")
                && text.ends_with("\n\nfn tail() {}\n"))
    );
    assert!(states.iter().all(|text| !text.contains("baton:")));
    assert_eq!(states.last().unwrap(), EXPECTED);

    // The prompt carried the instruction, the target and went to the provider's endpoint.
    let requests = harness.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, expected_path);
    let body = requests[0].body.to_string();
    assert!(body.contains("return two instead of one"), "{body}");
    assert!(body.contains("fn one() -> i32 {\\n    1\\n}"), "{body}");
    assert!(
        !body.contains("baton:"),
        "the marker is not part of the target: {body}"
    );
    let key_header = match provider {
        "anthropic" => requests[0].header("x-api-key").map(String::from),
        _ => requests[0].header("authorization").map(String::from),
    };
    assert!(key_header.unwrap().contains(SECRET_KEY));
    harness.finish().await;
}

#[tokio::test]
async fn marker_edit_streams_into_the_buffer_openai() {
    marker_flow("openai", "/v1/responses").await;
}

#[tokio::test]
async fn marker_edit_streams_into_the_buffer_openai_chat() {
    marker_flow("openai-chat", "/v1/chat/completions").await;
}

#[tokio::test]
async fn marker_edit_streams_into_the_buffer_anthropic() {
    marker_flow("anthropic", "/v1/messages").await;
}

#[tokio::test]
async fn selection_is_rewritten_following_its_first_comment() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    let text = "fn main() {\n    // print the sum of 1 and 2\n    let x = 0;\n}\n";
    harness
        .fake
        .push(Reply::text("```rust\n    println!(\"{}\", 1 + 2);\n```\n").rate(300.0));
    let uri = harness.open("src/main.rs", "rust", text).await;
    let actions = harness
        .code_actions(&uri, ((1, 4), (2, 14)), json!([]))
        .await;
    let action = find_action(&actions, "rewrite selection: print the sum of 1 and 2");
    let token = harness.run_action(action).await;
    assert_eq!(Harness::end_message(&harness.job_end(&token).await), "done");
    // The surrounding fence was stripped and never shown.
    assert_eq!(
        harness.agreed_text(&uri).await,
        "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n"
    );
    let states = buffer_states(
        text,
        &harness.client.state().apply_edits,
        harness.client.position_encoding(),
    );
    assert!(states.iter().all(|state| !state.contains("```")));
    harness.finish().await;
}

#[tokio::test]
async fn bare_instruction_targets_the_last_code_action_range() {
    // Helix: `:lsp-workspace-command baton.edit "use a constant"`.
    let harness = Harness::start(ClientProfile::Helix).await;
    let text = "fn a() -> i32 {\n    40 + 2\n}\n";
    harness.fake.push(Reply::text("    ANSWER").rate(300.0));
    let uri = harness.open("a.rs", "rust", text).await;
    harness
        .code_actions(&uri, ((1, 4), (1, 10)), json!([]))
        .await;
    let result = harness
        .execute("baton.edit", json!(["use a constant"]))
        .await
        .unwrap();
    let token = result["job"].as_str().unwrap().to_string();
    assert_eq!(Harness::end_message(&harness.job_end(&token).await), "done");
    assert_eq!(
        harness.agreed_text(&uri).await,
        "fn a() -> i32 {\n    ANSWER\n}\n"
    );
    let body = harness.fake.requests()[0].body.to_string();
    assert!(body.contains("use a constant"));
    harness.finish().await;
}

#[tokio::test]
async fn explicit_arguments_can_be_replayed() {
    let harness = Harness::start(ClientProfile::Strict).await;
    let text = "let a = 1;\nlet b = 2;\n";
    harness.fake.push(Reply::text("const b = 3;").rate(500.0));
    let uri = harness.open("x.js", "javascript", text).await;
    let result = harness
        .execute(
            "baton.edit",
            json!([{ "textDocument": { "uri": uri }, "range": crate::support::range_json(((1, 0), (1, 10))), "instruction": "make it const 3" }]),
        )
        .await
        .unwrap();
    let token = result["job"].as_str().unwrap().to_string();
    assert_eq!(Harness::end_message(&harness.job_end(&token).await), "done");
    assert_eq!(
        harness.agreed_text(&uri).await,
        "let a = 1;\nconst b = 3;\n"
    );
    harness.finish().await;
}

#[tokio::test]
async fn fix_sends_the_diagnostics_in_range() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    let text = "fn n() -> i32 {\n    \"one\"\n}\n";
    harness
        .fake
        .push(Reply::text("fn n() -> i32 {\n    1\n}").rate(400.0));
    let uri = harness.open("n.rs", "rust", text).await;
    let diagnostics = json!([{
        "range": crate::support::range_json(((1, 4), (1, 9))),
        "severity": 1,
        "message": "mismatched types: expected `i32`, found `&str`",
    }]);
    let actions = harness
        .code_actions(&uri, ((1, 4), (1, 9)), diagnostics)
        .await;
    let action = find_action(&actions, "fix 1 diagnostic");
    assert_eq!(action["kind"], "quickfix");
    let token = harness.run_action(action).await;
    assert_eq!(Harness::end_message(&harness.job_end(&token).await), "done");
    let body = harness.fake.requests()[0].body.to_string();
    assert!(
        body.contains("mismatched types: expected `i32`, found `&str`"),
        "{body}"
    );
    assert!(body.contains("line 2 (error)"), "{body}");
    assert_eq!(
        harness.agreed_text(&uri).await,
        "fn n() -> i32 {\n    1\n}\n"
    );
    harness.finish().await;
}

#[tokio::test]
async fn document_rewrites_the_enclosing_function() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    let text = "struct S;\n\nfn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";
    let documented = "/// Adds two numbers.\nfn add(a: i32, b: i32) -> i32 {\n    a + b\n}";
    harness.fake.push(Reply::text(documented).rate(400.0));
    let uri = harness.open("add.rs", "rust", text).await;
    assert_eq!(
        harness
            .run_titled_action(&uri, ((3, 5), (3, 5)), "document this")
            .await,
        "done"
    );
    assert_eq!(
        harness.agreed_text(&uri).await,
        format!("struct S;\n\n{documented}\n")
    );
    harness.finish().await;
}

#[tokio::test]
async fn tests_are_inserted_after_the_function() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    let text = "fn add(a: i32) -> i32 {\n    a\n}\n";
    let tests = "#[test]\nfn adds() {\n    assert_eq!(add(1), 1);\n}";
    harness.fake.push(Reply::text(tests).rate(400.0));
    let uri = harness.open("t.rs", "rust", text).await;
    assert_eq!(
        harness
            .run_titled_action(&uri, ((1, 4), (1, 4)), "write tests")
            .await,
        "done"
    );
    assert_eq!(
        harness.agreed_text(&uri).await,
        format!("fn add(a: i32) -> i32 {{\n    a\n}}\n\n{tests}\n")
    );
    harness.finish().await;
}

#[tokio::test]
async fn explain_opens_a_markdown_document_where_supported() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    harness
        .fake
        .push(Reply::text("It **adds** two numbers.").rate(400.0));
    let uri = harness
        .open("e.rs", "rust", "fn add(a: i32, b: i32) -> i32 { a + b }\n")
        .await;
    assert_eq!(
        harness
            .run_titled_action(&uri, ((0, 20), (0, 20)), "explain")
            .await,
        "done"
    );
    let shown = harness.client.state().show_documents;
    assert_eq!(shown.len(), 1, "{shown:?}");
    let path = testkit::lsp_client::uri_to_path(shown[0]["uri"].as_str().unwrap()).unwrap();
    assert_eq!(path.extension().unwrap(), "md");
    let markdown = std::fs::read_to_string(path).unwrap();
    assert!(markdown.contains("It **adds** two numbers."));
    // The buffer was not touched.
    assert!(harness.client.state().apply_edits.is_empty());
    harness.finish().await;
}

/// `actions.<name>.tier` picks the model: the titles say which tier, and the requests go to
/// that tier's model.
#[tokio::test]
async fn each_action_runs_on_the_tier_the_user_configured() {
    let harness = Harness::with(Options {
        settings: json!({ "actions": { "explain": { "tier": "deep" } } }),
        ..Options::default()
    })
    .await;
    harness.fake.push(Reply::text("It adds.").rate(400.0));
    harness
        .fake
        .push(Reply::text("/// Adds.\nfn add(a: i32, b: i32) -> i32 { a + b }").rate(400.0));
    let uri = harness
        .open("t.rs", "rust", "fn add(a: i32, b: i32) -> i32 { a + b }\n")
        .await;
    let actions = harness
        .code_actions(&uri, ((0, 3), (0, 6)), json!([]))
        .await;
    let titles: Vec<&str> = actions
        .iter()
        .filter_map(|action| action["title"].as_str())
        .collect();
    assert!(titles.contains(&"baton (deep): explain"), "{titles:?}");
    assert!(
        titles.contains(&"baton (fast): document this"),
        "{titles:?}"
    );
    let token = harness.run_action(find_action(&actions, "explain")).await;
    assert_eq!(Harness::end_message(&harness.job_end(&token).await), "done");
    let token = harness
        .run_action(find_action(&actions, "document this"))
        .await;
    assert_eq!(Harness::end_message(&harness.job_end(&token).await), "done");
    let models: Vec<String> = harness
        .fake
        .requests()
        .iter()
        .map(|request| {
            request.body["model"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(models, ["deep-test", "spark-test"]);
    harness.finish().await;
}

#[tokio::test]
async fn explain_falls_back_to_a_message_without_show_document() {
    // Zed does not offer window/showDocument to generic servers.
    let harness = Harness::start(ClientProfile::Zed).await;
    harness
        .fake
        .push(Reply::text("It returns one.").rate(400.0));
    let uri = harness
        .open("e.py", "python", "def one():\n    return 1\n")
        .await;
    assert_eq!(
        harness
            .run_titled_action(&uri, ((1, 4), (1, 4)), "explain")
            .await,
        "done"
    );
    harness.wait_for_message("It returns one.").await;
    assert!(harness.client.state().show_documents.is_empty());
    harness.finish().await;
}

#[tokio::test]
async fn execute_command_returns_before_the_model_answers() {
    let harness = Harness::start(ClientProfile::Helix).await;
    // The model takes far longer than the command's answer may.
    harness
        .fake
        .push(Reply::text("x").delay(std::time::Duration::from_secs(3)));
    let uri = harness
        .open("slow.rs", "rust", "// baton: anything\nfn f() {}\n")
        .await;
    let actions = harness
        .code_actions(&uri, ((0, 0), (0, 0)), json!([]))
        .await;
    let started = std::time::Instant::now();
    let token = harness.run_action(find_action(&actions, "anything")).await;
    let answered_in = started.elapsed();
    // Behaviour, not a timing threshold: the job is still running after the answer came back.
    let state = harness.client.state();
    assert!(
        !state.progress_ended(&token),
        "answered after {answered_in:?} with the job already over"
    );
    assert!(state.apply_edits.is_empty());
    harness
        .execute("baton.cancel", json!([token]))
        .await
        .unwrap();
    harness.job_end(&token).await;
    harness.finish().await;
}
