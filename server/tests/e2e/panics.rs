//! Panic isolation: a bug that panics inside a request handler, the document mutation path or a
//! job ends that one piece of work, never the server. Each test makes baton panic on purpose
//! through its test hooks (`baton-test-panic:<site>` in the text, debug builds only), then checks
//! that the same session keeps answering and that its documents match the client's.

use serde_json::json;
use testkit::fake_model::Reply;
use testkit::lsp_client::ClientProfile;

use crate::edits::{EXPECTED, MARKED, REPLY};
use crate::support::{Harness, find_action};

const PLAIN: &str = "fn alpha() -> i32 {\n    1\n}\n\nstruct Beta;\n";

/// The names in a `documentSymbol` answer.
fn symbol_names(answer: &serde_json::Value) -> Vec<String> {
    answer
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|symbol| symbol["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_panicking_request_handler_answers_internal_error_and_the_server_goes_on() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    let poisoned = harness
        .open(
            "poisoned.rs",
            "rust",
            "// baton-test-panic:documentSymbol\nfn gamma() {}\n",
        )
        .await;
    let healthy = harness.open("healthy.rs", "rust", PLAIN).await;

    let error = harness
        .document_symbols(&poisoned)
        .await
        .expect_err("the handler panicked, so the request fails");
    assert_eq!(error.code, -32603, "InternalError: {error:?}");
    assert!(
        error.message.contains("textDocument/documentSymbol"),
        "the error names the method: {error:?}"
    );

    // The same session keeps answering, for both documents, and keeps following edits.
    let answer = harness.document_symbols(&healthy).await.expect("answered");
    assert_eq!(symbol_names(&answer), ["alpha", "Beta"]);
    harness
        .client
        .change(&healthy, ((4, 0), (4, 0)), "fn delta() {}\n")
        .await;
    harness
        .client
        .change(&poisoned, ((0, 0), (0, 0)), "// ñandú\n")
        .await;
    let answer = harness.document_symbols(&healthy).await.expect("answered");
    assert_eq!(symbol_names(&answer), ["alpha", "delta", "Beta"]);
    let actions = harness
        .code_actions(&poisoned, ((0, 0), (0, 5)), json!([]))
        .await;
    assert!(!actions.is_empty(), "code actions still answer");
    harness.agreed_text(&poisoned).await;
    harness.agreed_text(&healthy).await;
    harness.finish().await;
}

#[tokio::test]
async fn a_panic_after_a_change_applied_keeps_the_text_and_rebuilds_the_tree() {
    let harness = Harness::start(ClientProfile::Zed).await;
    let uri = harness.open("lib.rs", "rust", PLAIN).await;
    let other = harness.open("other.rs", "rust", "fn other() {}\n").await;
    harness
        .client
        .change(&uri, ((3, 0), (3, 0)), "// baton-test-panic:afterChange\n")
        .await;
    let message = harness.wait_for_message("its text is intact").await;
    assert!(message.contains("lib.rs"), "{message}");
    // Nothing was lost: the change is in, later changes apply on top, the tree is whole.
    harness.client.change(&uri, ((0, 3), (0, 8)), "omega").await;
    assert_eq!(
        harness.agreed_text(&uri).await,
        "fn omega() -> i32 {\n    1\n}\n// baton-test-panic:afterChange\n\nstruct Beta;\n"
    );
    let answer = harness.document_symbols(&uri).await.expect("answered");
    assert_eq!(symbol_names(&answer), ["omega", "Beta"]);
    harness.agreed_text(&other).await;
    harness.finish().await;
}

#[tokio::test]
async fn a_panic_before_a_change_applied_marks_the_document_stale_until_a_whole_text_arrives() {
    let harness = Harness::start(ClientProfile::Helix).await;
    let uri = harness.open("lib.rs", "rust", PLAIN).await;
    let other = harness.open("other.rs", "rust", "fn other() {}\n").await;
    harness
        .client
        .change(&uri, ((0, 0), (0, 0)), "// baton-test-panic:beforeChange\n")
        .await;
    let message = harness.wait_for_message("stopped following it").await;
    assert!(message.contains("reopen"), "{message}");

    // baton no longer claims to know the text: no status text, no symbols, no actions, and
    // incremental changes do not resurrect a wrong copy.
    harness.client.change(&uri, ((0, 0), (0, 0)), "x").await;
    let (version, text) = harness.server_text(&uri).await;
    assert_eq!((version, text.as_str()), (-1, ""));
    assert!(
        harness
            .code_actions(&uri, ((1, 0), (1, 0)), json!([]))
            .await
            .is_empty(),
        "no actions on a document baton does not know"
    );
    // Other documents are untouched.
    harness
        .client
        .change(&other, ((0, 0), (0, 0)), "// é\n")
        .await;
    harness.agreed_text(&other).await;

    // A whole-text change (a reload, or a full-sync client) brings it back.
    harness.client.replace_whole_text(&uri, "fn back() {}\n");
    harness.client.change(&uri, ((0, 3), (0, 7)), "again").await;
    assert_eq!(harness.agreed_text(&uri).await, "fn again() {}\n");
    let answer = harness.document_symbols(&uri).await.expect("answered");
    assert_eq!(symbol_names(&answer), ["again"]);

    // So does closing and reopening it.
    harness
        .client
        .change(&uri, ((0, 0), (0, 0)), "// baton-test-panic:beforeChange\n")
        .await;
    harness.client.close(&uri).await;
    harness.client.open(&uri, "rust", PLAIN).await;
    assert_eq!(harness.agreed_text(&uri).await, PLAIN);
    harness.finish().await;
}

#[tokio::test]
async fn a_panicking_job_ends_with_a_message_and_the_next_job_runs() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    let text = "fn keep() {}\n// baton: baton-test-panic:job now\nfn one() {}\n";
    let uri = harness.open("job.rs", "rust", text).await;
    let actions = harness
        .code_actions(&uri, ((1, 0), (1, 0)), json!([]))
        .await;
    let token = harness
        .run_action(find_action(&actions, "baton-test-panic:job"))
        .await;
    let end = Harness::end_message(&harness.job_end(&token).await);
    assert!(end.starts_with("failed: internal error"), "{end}");
    harness.wait_for_message("internal error").await;
    assert_eq!(
        harness.agreed_text(&uri).await,
        text,
        "the buffer is untouched"
    );
    let status = harness
        .execute("baton.status", json!([]))
        .await
        .expect("status");
    assert_eq!(
        status["jobs"],
        json!([]),
        "the job is no longer listed: {status}"
    );

    // The server still runs jobs to their end.
    let (other, end) = harness
        .run_marker_job("marked.rs", vec![Reply::text(REPLY).rate(300.0)])
        .await;
    assert_eq!(end, "done");
    assert_eq!(harness.agreed_text(&other).await, EXPECTED);
    assert_ne!(MARKED, EXPECTED);
    harness.finish().await;
}
