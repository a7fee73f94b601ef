//! Inline completion as Neovim 0.12 asks for it (`textDocument/inlineCompletion` after a
//! 200 ms pause, the previous request cancelled), and the completion-item fallback.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::fake_model::{Fault, RecordedRequest, Reply};
use testkit::inline_completion::{NeovimInline, first_insert_text};
use testkit::lsp_client::ClientProfile;

use crate::support::{Harness, Options, WAIT};

const SOURCE: &str = "fn count(items: &[u32]) -> usize {\n    \n}\n";
/// The cursor after typing `let n = ` on line 1.
const TYPED: &str = "let n = ";

async fn start(provider: &'static str, settings: Value) -> Harness {
    Harness::with(Options {
        provider,
        settings,
        ..Options::default()
    })
    .await
}

/// Waits (generously) until the fake model's recordings satisfy `check`.
async fn wait_for_model(harness: &Harness, what: &str, check: impl Fn(&[RecordedRequest]) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check(&harness.fake.requests()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            harness.fake.requests()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Opens `src/lib.rs` and types `let n = ` into the empty line of its function body.
async fn open_and_type(harness: &Harness) -> (String, NeovimInline<'_>) {
    let uri = harness.open("src/lib.rs", "rust", SOURCE).await;
    let mut neovim = NeovimInline::new(&harness.client, &uri, 1, 4);
    neovim.type_text(TYPED, Duration::from_millis(5)).await;
    (uri, neovim)
}

#[tokio::test]
async fn inline_suggestion_arrives_with_a_one_line_range_and_typing_it_is_served_from_the_cache() {
    let harness = start("openai", json!({})).await;
    let capabilities = &harness.initialize["capabilities"];
    assert_eq!(capabilities["inlineCompletionProvider"], json!(true));
    assert!(
        capabilities.get("completionProvider").is_none(),
        "the completion fallback is off by default: {capabilities}"
    );
    // The model goes on after the first line; baton answers with the first one.
    harness.fake.push(Reply::text("items.len();\n    n * 2\n"));
    let (_uri, mut neovim) = open_and_type(&harness).await;
    let answer = neovim.pause().await.response().await;
    neovim.answered();
    assert_eq!(first_insert_text(&answer).as_deref(), Some("items.len();"));
    let item = &answer.as_ref().unwrap()[0];
    let range = &item["range"];
    assert_eq!(
        range["start"], range["end"],
        "inserted at the cursor: {item}"
    );
    assert_eq!(range["start"], json!({"line": 1, "character": 12}));

    // The prompt: the buffer as typed (unsaved), the cursor marked, the enclosing function.
    let requests = harness.fake.requests();
    assert_eq!(requests.len(), 1);
    let user = requests[0].body["input"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(user.contains("    let n = <CURSOR>\n}"), "{user}");
    assert!(
        user.contains("count"),
        "the enclosing scope is named: {user}"
    );
    assert_eq!(requests[0].body["model"], "spark-test", "the fast tier");

    // Typing what the suggestion predicted is answered from the cache: no new model request.
    neovim.type_text("items.l", Duration::from_millis(5)).await;
    let answer = neovim.pause().await.response().await;
    neovim.answered();
    assert_eq!(first_insert_text(&answer).as_deref(), Some("en();"));
    assert_eq!(harness.fake.requests().len(), 1, "served from the cache");

    // Typing something else needs the model again.
    harness.fake.push(Reply::text("x;\n"));
    neovim.type_text("!", Duration::ZERO).await;
    let answer = neovim.pause().await.response().await;
    assert_eq!(first_insert_text(&answer).as_deref(), Some("x;"));
    assert_eq!(harness.fake.requests().len(), 2);
    harness.finish().await;
}

#[tokio::test]
async fn a_change_while_the_model_streams_gives_an_empty_result_and_drops_the_stream() {
    let harness = start("openai-chat", json!({})).await;
    // The first token comes, then the model stalls mid-line.
    harness
        .fake
        .push(Reply::text("items.len();\n").fault(Fault::StallAfter(1)));
    let (uri, mut neovim) = open_and_type(&harness).await;
    let pending = neovim.pause().await;
    wait_for_model(&harness, "the first token", |requests| {
        requests
            .first()
            .is_some_and(|request| request.tokens_sent >= 1)
    })
    .await;
    // The user types on before the answer is ready.
    harness.client.change(&uri, ((1, 12), (1, 12)), "4").await;
    let answer = pending.response().await;
    assert_eq!(answer.unwrap(), json!([]), "never a stale suggestion");
    wait_for_model(&harness, "the stream to be dropped", |requests| {
        requests[0].aborted
    })
    .await;
    harness.finish().await;
}

#[tokio::test]
async fn cancel_request_and_a_newer_request_abort_the_model_stream() {
    let harness = start("openai-chat", json!({})).await;
    harness
        .fake
        .push(Reply::text("items.len();\n").fault(Fault::StallAfter(1)));
    let (_uri, mut neovim) = open_and_type(&harness).await;
    let first = neovim.pause().await;
    wait_for_model(&harness, "the first token", |requests| {
        requests
            .first()
            .is_some_and(|request| request.tokens_sent >= 1)
    })
    .await;
    // `$/cancelRequest` (Neovim cancels before it asks again).
    harness.client.cancel(first.id);
    let _ = first.response().await;
    wait_for_model(&harness, "the cancelled stream to be dropped", |requests| {
        requests[0].aborted
    })
    .await;

    // A newer request for the same document, without any cancel, aborts the older one too.
    harness
        .fake
        .push(Reply::text("items.len();\n").fault(Fault::StallAfter(1)));
    let older = neovim.request_now();
    wait_for_model(&harness, "the second request's first token", |requests| {
        requests
            .get(1)
            .is_some_and(|request| request.tokens_sent >= 1)
    })
    .await;
    harness.fake.push(Reply::text("items.len();\n"));
    let newer = harness.client.request_id(
        "textDocument/inlineCompletion",
        json!({
            "textDocument": {"uri": harness.uri_of("src/lib.rs")},
            "position": {"line": 1, "character": 12},
            "context": {"triggerKind": 2},
        }),
    );
    assert_eq!(older.response().await.unwrap(), json!([]));
    wait_for_model(&harness, "the older stream to be dropped", |requests| {
        requests[1].aborted
    })
    .await;
    let answer = newer.response().await;
    assert_eq!(first_insert_text(&answer).as_deref(), Some("items.len();"));
    assert_eq!(harness.fake.requests().len(), 3);
    harness.finish().await;
}

#[tokio::test]
async fn a_secret_file_gets_no_suggestion_and_no_model_call() {
    let harness = start("openai", json!({})).await;
    harness.fake.push(Reply::text("LEAKED=1\n"));
    let uri = harness.open(".env", "sh", "API_TOKEN=abc\n").await;
    let mut neovim = NeovimInline::new(&harness.client, &uri, 0, 13);
    let answer = neovim.pause().await.response().await;
    assert_eq!(answer.unwrap(), json!([]));
    assert!(harness.fake.requests().is_empty(), "no model call");
    harness.finish().await;
}

#[tokio::test]
async fn the_fim_provider_gets_prefix_and_suffix_and_the_answer_is_trimmed_to_what_is_new() {
    let harness = start("openai-fim", json!({})).await;
    // The line already ends with `;` after the cursor; the model repeats it.
    harness.fake.push(Reply::text("items.len();"));
    let uri = harness
        .open(
            "src/lib.rs",
            "rust",
            "fn count(items: &[u32]) -> usize {\n    let n = ;\n}\n",
        )
        .await;
    let mut neovim = NeovimInline::new(&harness.client, &uri, 1, 12);
    let answer = neovim.pause().await.response().await;
    assert_eq!(first_insert_text(&answer).as_deref(), Some("items.len()"));
    let requests = harness.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/completions");
    // The context first, as comments in the file's language, then the text before the cursor.
    let prompt = requests[0].body["prompt"].as_str().unwrap();
    assert!(prompt.starts_with("// Path: src/lib.rs\n"), "{prompt}");
    assert!(
        prompt.ends_with("\nfn count(items: &[u32]) -> usize {\n    let n = "),
        "{prompt}"
    );
    assert!(
        prompt
            .lines()
            .take_while(|line| !line.starts_with("fn count"))
            .all(|line| line.starts_with("// ")),
        "{prompt}"
    );
    assert_eq!(requests[0].body["suffix"], ";\n}\n");
    assert_eq!(requests[0].body["stream"], true);
    harness.finish().await;
}

#[tokio::test]
async fn the_completion_fallback_offers_the_suggestion_as_one_item_when_enabled() {
    let harness = Harness::with(Options {
        profile: ClientProfile::Helix,
        settings: json!({ "features": { "completion_fallback": true } }),
        ..Options::default()
    })
    .await;
    assert!(
        harness.initialize["capabilities"]["completionProvider"].is_object(),
        "{}",
        harness.initialize["capabilities"]
    );
    harness.fake.push(Reply::text("ms.len();\n"));
    let uri = harness
        .open(
            "src/lib.rs",
            "rust",
            "fn count(items: &[u32]) -> usize {\n    let n = ite\n}\n",
        )
        .await;
    let list = harness
        .client
        .request(
            "textDocument/completion",
            json!({
                "textDocument": {"uri": uri},
                "position": {"line": 1, "character": 15},
            }),
        )
        .await
        .unwrap();
    assert_eq!(list["isIncomplete"], true, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let item = &items[0];
    assert_eq!(item["label"], "baton: ms.len();");
    assert_eq!(item["kind"], 23, "CompletionItemKind::Event");
    // The item replaces the word before the cursor with itself plus the suggestion, so the
    // client's filter on `ite` keeps it.
    assert_eq!(item["textEdit"]["newText"], "items.len();");
    assert_eq!(
        item["textEdit"]["range"],
        json!({"start": {"line": 1, "character": 12}, "end": {"line": 1, "character": 15}})
    );
    harness.finish().await;
}

#[tokio::test]
async fn a_chat_prompt_carries_a_slice_of_the_repo_map() {
    let harness = Harness::with(Options {
        workspace_files: vec![(
            "src/weights.rs",
            "pub fn item_weight(item: &Item) -> u32 {\n    item.weight\n}\n".to_string(),
        )],
        ..Options::default()
    })
    .await;
    harness.indexed().await;
    harness.fake.push(Reply::text("items.len();\n"));
    let (_uri, mut neovim) = open_and_type(&harness).await;
    let answer = neovim.pause().await.response().await;
    assert_eq!(first_insert_text(&answer).as_deref(), Some("items.len();"));
    let user = harness.fake.requests()[0].body["input"][0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(user.contains("Repository map"), "{user}");
    assert!(user.contains("item_weight"), "{user}");
    harness.finish().await;
}

#[tokio::test]
async fn the_debounce_holds_the_model_call_until_the_document_is_quiet() {
    // A debounce far longer than the test: the model must not be asked while it runs.
    let harness = start(
        "openai",
        json!({ "completion": { "debounce_ms": 600_000 } }),
    )
    .await;
    harness.fake.push(Reply::text("items.len();\n"));
    let (uri, mut neovim) = open_and_type(&harness).await;
    let pending = neovim.pause().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        harness.fake.requests().is_empty(),
        "asked the model during the debounce"
    );
    // The next keystroke ends the wait with an empty answer, still without a model call.
    harness.client.change(&uri, ((1, 12), (1, 12)), "i").await;
    assert_eq!(pending.response().await.unwrap(), json!([]));
    assert!(harness.fake.requests().is_empty());
    harness.finish().await;
}

/// A FIM prompt carries the context a chat prompt gets — the path, a slice of the repo map and
/// the enclosing scope when it starts above the prefix — as comments above the text before the
/// cursor; nothing from a `never_send` file.
#[tokio::test]
async fn fim_prompts_carry_the_repo_map_and_the_scope_as_comments() {
    let shapes = "pub fn area(width: u32, height: u32) -> u32 {\n    width * height\n}\n";
    let harness = Harness::with(Options {
        provider: "openai-fim",
        workspace_files: vec![
            ("src/shapes.rs", shapes.into()),
            (".env", "AREA_SECRET=fim-0099\n".into()),
        ],
        ..Options::default()
    })
    .await;
    harness.indexed().await;
    harness.fake.push(Reply::text("area(1, 2);"));
    // A function longer than the prompt's prefix: its first line is above the prefix.
    let mut text = String::from("use crate::shapes::area;\n\nfn report_all_the_areas() -> u32 {\n");
    for i in 0..400 {
        text.push_str(&format!("    let a{i} = {i} + 1;\n"));
    }
    let line = text.lines().count() as u32;
    text.push_str("    let total = \n}\n");
    let uri = harness.open("src/lib.rs", "rust", &text).await;
    let mut neovim = NeovimInline::new(&harness.client, &uri, line, 16);
    let answer = neovim.pause().await.response().await;
    assert_eq!(first_insert_text(&answer).as_deref(), Some("area(1, 2);"));
    let requests = harness.fake.requests();
    let prompt = requests[0].body["prompt"].as_str().unwrap();
    let header: Vec<&str> = prompt
        .lines()
        .take_while(|line| line.starts_with("// "))
        .collect();
    assert_eq!(header[0], "// Path: src/lib.rs", "{prompt}");
    assert!(
        header
            .iter()
            .any(|line| line.contains("Related code in the repository")),
        "{header:?}"
    );
    assert!(
        header.iter().any(|line| line.contains("fn area")),
        "{header:?}"
    );
    assert!(
        header.contains(&"// Inside: fn report_all_the_areas() -> u32 {"),
        "{header:?}"
    );
    assert!(prompt.ends_with("    let total = "), "{prompt}");
    assert!(
        !prompt.contains("fim-0099"),
        "a never_send file reached the prompt"
    );
    harness.finish().await;
}

/// A change that arrives right after a request (before the server handles it) makes the
/// request's position stale: the answer is empty and the model is never asked for it.
#[tokio::test]
async fn a_change_racing_the_request_gets_an_empty_answer_not_one_for_the_new_text() {
    let harness = start("openai", json!({ "completion": { "debounce_ms": 0 } })).await;
    let uri = harness.open("src/lib.rs", "rust", SOURCE).await;
    for _ in 0..20 {
        harness.fake.push(Reply::text("should not be asked"));
    }
    // Twenty times: a request at the cursor, then at once a change before it.
    let mut pending = Vec::new();
    for round in 0..20u32 {
        let request = harness.client.request_id(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": { "uri": uri },
                "position": { "line": 1, "character": 4 + round },
                "context": { "triggerKind": 2 },
            }),
        );
        harness.client.change_nowait(&uri, ((1, 0), (1, 0)), "x");
        pending.push(request);
    }
    for request in pending {
        let answer = request.response().await.expect("answered");
        assert!(
            answer.is_null() || answer == json!([]) || answer["items"] == json!([]),
            "a stale request got {answer}"
        );
    }
    assert!(
        harness.fake.requests().is_empty(),
        "{:?}",
        harness.fake.requests()
    );
    harness.finish().await;
}
