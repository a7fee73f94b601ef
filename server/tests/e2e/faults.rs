//! Every model failure and every way to cancel: a clear message, the buffer consistent (the
//! target restored), and the server still serving.

use std::time::Duration;

use serde_json::json;
use testkit::fake_model::{Fault, Reply};
use testkit::lsp_client::ClientProfile;

use crate::edits::{EXPECTED, MARKED, REPLY};
use crate::support::{Harness, Options, WAIT, find_action};

/// Runs the marker edit against `replies`; returns the URI and the end message.
async fn run_marker(harness: &Harness, replies: Vec<Reply>) -> (String, String) {
    harness.run_marker_job("src/lib.rs", replies).await
}

/// The server still works after a failure: the next edit succeeds.
async fn still_serves(harness: &Harness) {
    harness.fake.push(Reply::text("fn tail() { 1; }"));
    let uri = harness
        .open("src/other.rs", "rust", "// baton: again\nfn tail() {}\n")
        .await;
    assert_eq!(
        harness
            .run_titled_action(&uri, ((0, 0), (0, 0)), "again")
            .await,
        "done"
    );
    assert_eq!(harness.agreed_text(&uri).await, "fn tail() { 1; }\n");
}

async fn failure_case(replies: Vec<Reply>, message_part: &str, settings: serde_json::Value) {
    let harness = Harness::with(Options {
        profile: ClientProfile::Neovim,
        settings,
        ..Options::default()
    })
    .await;
    let (uri, end) = run_marker(&harness, replies).await;
    assert!(end.starts_with("failed: "), "{end}");
    let shown = harness.wait_for_message(message_part).await;
    assert!(shown.starts_with("baton: "), "{shown}");
    assert_eq!(
        harness.agreed_text(&uri).await,
        MARKED,
        "the target is back to the original"
    );
    still_serves(&harness).await;
    harness.finish().await;
}

#[tokio::test]
async fn unauthorized() {
    failure_case(
        vec![Reply::status(401, "Incorrect API key provided")],
        "401 Unauthorized",
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn unknown_model() {
    failure_case(
        vec![Reply::status(404, "The model does not exist")],
        "no model \"spark-test\"",
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn rate_limited_twice_gives_up_with_a_message() {
    let limited = || {
        Reply::status(429, "slow down").fault(Fault::Status {
            code: 429,
            body: String::new(),
            retry_after: Some(0),
        })
    };
    failure_case(vec![limited(), limited()], "429", json!({})).await;
}

#[tokio::test]
async fn server_error_is_retried_then_succeeds() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    let (uri, end) = run_marker(
        &harness,
        vec![Reply::status(503, "busy"), Reply::text(REPLY)],
    )
    .await;
    assert_eq!(end, "done");
    assert_eq!(harness.agreed_text(&uri).await, EXPECTED);
    assert_eq!(harness.fake.requests().len(), 2);
    harness.finish().await;
}

#[tokio::test]
async fn server_errors_exhaust_the_retries() {
    failure_case(
        vec![Reply::status(500, "boom"), Reply::status(500, "boom")],
        "500 Internal Server Error",
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn truncated_stream_restores_the_target() {
    failure_case(
        vec![
            Reply::text(REPLY)
                .rate(200.0)
                .fault(Fault::TruncateAfter(8)),
        ],
        "connection ended before the model finished",
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn malformed_stream_restores_the_target() {
    failure_case(
        vec![
            Reply::text(REPLY)
                .rate(200.0)
                .fault(Fault::MalformedAfter(8)),
        ],
        "stream baton cannot read",
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn stalled_stream_times_out_and_restores_the_target() {
    failure_case(
        vec![Reply::text(REPLY).rate(200.0).fault(Fault::StallAfter(8))],
        "stopped sending in the middle",
        json!({ "models": { "fast": { "idle_timeout_ms": 400 } } }),
    )
    .await;
}

#[tokio::test]
async fn slow_first_token_times_out() {
    failure_case(
        vec![Reply::text(REPLY).delay(Duration::from_secs(5)), Reply::text(REPLY).delay(Duration::from_secs(5))],
        "did not start answering",
        json!({ "models": { "fast": { "connect_timeout_ms": 200, "first_token_timeout_ms": 300 } } }),
    )
    .await;
}

#[tokio::test]
async fn provider_error_event_restores_the_target() {
    failure_case(
        vec![
            Reply::text(REPLY)
                .rate(300.0)
                .fault(Fault::ProviderErrorEvent("model crashed".into())),
        ],
        "provider reported an error",
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn empty_answer() {
    failure_case(
        vec![Reply::text("").fault(Fault::EmptyStream)],
        "answered with no text",
        json!({}),
    )
    .await;
}

#[tokio::test]
async fn unreachable_server() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let harness = Harness::with(Options {
        settings: json!({ "models": { "fast": { "base_url": url } } }),
        ..Options::default()
    })
    .await;
    let (uri, end) = run_marker(&harness, Vec::new()).await;
    assert!(end.starts_with("failed: "), "{end}");
    harness
        .wait_for_message("could not reach the model server")
        .await;
    assert_eq!(harness.agreed_text(&uri).await, MARKED);
    harness.finish().await;
}

#[tokio::test]
async fn missing_key_is_reported_before_any_request() {
    let harness = Harness::with(Options {
        settings: json!({ "models": { "fast": { "api_key_env": "BATON_KEY_NOBODY_SET" } } }),
        ..Options::default()
    })
    .await;
    let uri = harness.open("src/lib.rs", "rust", MARKED).await;
    let actions = harness
        .code_actions(&uri, ((4, 0), (4, 0)), json!([]))
        .await;
    let command = &find_action(&actions, "return two")["command"];
    let error = harness
        .execute(
            command["command"].as_str().unwrap(),
            command["arguments"].clone(),
        )
        .await
        .unwrap_err();
    assert!(
        error.message.contains("BATON_KEY_NOBODY_SET is not set"),
        "{error}"
    );
    harness
        .wait_for_message("BATON_KEY_NOBODY_SET is not set")
        .await;
    assert!(harness.fake.requests().is_empty());
    assert_eq!(harness.agreed_text(&uri).await, MARKED);
    harness.finish().await;
}

async fn cancel_case(how: &str) {
    let harness = Harness::start(ClientProfile::Neovim).await;
    harness.fake.push(Reply::text(REPLY).rate(10.0));
    let uri = harness.open("src/lib.rs", "rust", MARKED).await;
    let actions = harness
        .code_actions(&uri, ((4, 0), (4, 0)), json!([]))
        .await;
    let token = harness
        .run_action(find_action(&actions, "return two"))
        .await;
    harness
        .client
        .wait_for("a streamed edit", WAIT, |state| {
            (!state.apply_edits.is_empty()).then_some(())
        })
        .await
        .unwrap();
    match how {
        "command" => {
            let result = harness
                .execute("baton.cancel", json!([{ "job": token }]))
                .await
                .unwrap();
            assert_eq!(result["cancelled"], 1);
        }
        "progress" => harness
            .client
            .notify("window/workDoneProgress/cancel", json!({ "token": token })),
        _ => {
            let result = harness.execute("baton.cancel", json!([])).await.unwrap();
            assert_eq!(result["cancelled"], 1);
        }
    }
    assert_eq!(
        Harness::end_message(&harness.job_end(&token).await),
        "cancelled"
    );
    harness
        .wait_for_message("edit cancelled; the original text was restored")
        .await;
    assert_eq!(harness.agreed_text(&uri).await, MARKED);
    still_serves(&harness).await;
    harness.finish().await;
}

#[tokio::test]
async fn cancel_by_command_restores_the_target() {
    cancel_case("command").await;
}

#[tokio::test]
async fn cancel_from_the_progress_ui_restores_the_target() {
    cancel_case("progress").await;
}

#[tokio::test]
async fn cancel_all_restores_the_target() {
    cancel_case("all").await;
}
