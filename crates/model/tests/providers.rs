//! The providers against the fake model server over loopback, in the real wire formats.

// Setting the test key variables needs `std::env::set_var`, which is unsafe in edition 2024.
// It runs once, under std's environment lock, before any test reads the variables.
#![allow(unsafe_code)]

use std::sync::{Arc, Once};
use std::time::Duration;

use futures::StreamExt;
use model::{ModelError, ModelRequest, ModelSettings, Provider, ProviderKind, phase};
use testkit::fake_model::{FakeModel, Fault, Reply, tokenize};
use tokio::time::Instant;

const KEY_ENV: &str = "BATON_MODEL_TEST_KEY";
const KEY: &str = "sk-test-0123456789abcdef";
const UNSET_ENV: &str = "BATON_MODEL_TEST_NEVER_SET";
const EMPTY_ENV: &str = "BATON_MODEL_TEST_EMPTY_KEY";
const KINDS: [ProviderKind; 4] = [
    ProviderKind::Openai,
    ProviderKind::OpenaiChat,
    ProviderKind::Anthropic,
    ProviderKind::OpenaiFim,
];
const TEXT: &str = "fn main() {\n    println!(\"héllo, wörld 🦀\");\n}\nThe answer is forty-two.\n";

fn set_keys() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| unsafe {
        std::env::set_var(KEY_ENV, KEY);
        std::env::set_var(EMPTY_ENV, "");
        std::env::remove_var(UNSET_ENV);
    });
}

fn settings(kind: ProviderKind, fake: &FakeModel) -> ModelSettings {
    set_keys();
    ModelSettings {
        provider: kind,
        model: "test-model".to_string(),
        base_url: fake.base_url(),
        api_key_env: Some(KEY_ENV.to_string()),
        max_output_tokens: 321,
        connect_timeout: Duration::from_millis(300),
        first_token_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        max_retries: 2,
    }
}

fn provider(settings: &ModelSettings) -> Arc<dyn Provider> {
    model::provider(settings, model::http_client()).expect("provider builds")
}

fn request() -> ModelRequest {
    ModelRequest {
        system: "You are terse.".to_string(),
        user: "Say it.".to_string(),
        suffix: None,
    }
}

/// Everything one request produced.
#[derive(Debug)]
struct Outcome {
    text: String,
    /// Items the stream yielded: batches of the deltas that arrived together.
    batches: usize,
    /// The error the future failed with.
    failed: Option<ModelError>,
    /// The error the stream ended with.
    ended: Option<ModelError>,
}

impl Outcome {
    fn error(&self) -> Option<&ModelError> {
        self.failed.as_ref().or(self.ended.as_ref())
    }
}

async fn run(provider: &Arc<dyn Provider>) -> Outcome {
    let mut outcome = Outcome {
        text: String::new(),
        batches: 0,
        failed: None,
        ended: None,
    };
    let mut stream = match provider.stream(request()).await {
        Ok(stream) => stream,
        Err(error) => {
            outcome.failed = Some(error);
            return outcome;
        }
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(token) => {
                assert!(!token.is_empty(), "empty token");
                outcome.text.push_str(&token);
                outcome.batches += 1;
            }
            Err(error) => {
                assert!(stream.next().await.is_none(), "an error is the last item");
                outcome.ended = Some(error);
                break;
            }
        }
    }
    outcome
}

fn prefix(tokens: usize) -> String {
    tokenize(TEXT)[..tokens].concat()
}

#[tokio::test]
async fn every_provider_streams_the_exact_text() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        fake.push(Reply::text(TEXT));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        assert!(outcome.error().is_none(), "{kind}: {outcome:?}");
        assert_eq!(outcome.text, TEXT, "{kind}");
        assert!(
            (1..=tokenize(TEXT).len()).contains(&outcome.batches),
            "{kind}: at most one item per delta, got {}",
            outcome.batches
        );
        assert_eq!(fake.requests().len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn requests_use_each_providers_wire_format() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        fake.push(Reply::text("ok"));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        assert_eq!(outcome.text, "ok", "{kind}: {outcome:?}");
        let recorded = &fake.requests()[0];
        let body = &recorded.body;
        assert_eq!(body["model"], "test-model", "{kind}");
        assert_eq!(body["stream"], true, "{kind}");
        assert_eq!(
            recorded.header("content-type"),
            Some("application/json"),
            "{kind}"
        );
        match kind {
            ProviderKind::Openai => {
                assert_eq!(recorded.path, "/v1/responses");
                assert_eq!(body["instructions"], "You are terse.");
                assert_eq!(body["input"][0]["role"], "user");
                assert_eq!(body["input"][0]["content"], "Say it.");
                assert_eq!(body["max_output_tokens"], 321);
                assert_eq!(
                    recorded.header("authorization"),
                    Some(format!("Bearer {KEY}").as_str())
                );
            }
            ProviderKind::OpenaiChat => {
                assert_eq!(recorded.path, "/v1/chat/completions");
                assert_eq!(body["messages"][0]["role"], "system");
                assert_eq!(body["messages"][0]["content"], "You are terse.");
                assert_eq!(body["messages"][1]["role"], "user");
                assert_eq!(body["messages"][1]["content"], "Say it.");
                assert_eq!(body["max_tokens"], 321);
                assert_eq!(
                    recorded.header("authorization"),
                    Some(format!("Bearer {KEY}").as_str())
                );
            }
            ProviderKind::OpenaiFim => {
                assert_eq!(recorded.path, "/v1/completions");
                assert_eq!(body["prompt"], "Say it.");
                assert_eq!(body["suffix"], "");
                assert!(body.get("messages").is_none());
                assert_eq!(body["max_tokens"], 321);
                assert_eq!(
                    recorded.header("authorization"),
                    Some(format!("Bearer {KEY}").as_str())
                );
            }
            ProviderKind::Anthropic => {
                assert_eq!(recorded.path, "/v1/messages");
                assert_eq!(body["system"], "You are terse.");
                assert_eq!(body["messages"][0]["role"], "user");
                assert_eq!(body["messages"][0]["content"], "Say it.");
                assert_eq!(body["max_tokens"], 321);
                assert_eq!(recorded.header("x-api-key"), Some(KEY));
                assert_eq!(recorded.header("anthropic-version"), Some("2023-06-01"));
                assert_eq!(recorded.header("authorization"), None);
            }
        }
    }
}

#[tokio::test]
async fn tokens_are_yielded_while_the_answer_is_still_streaming() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        let text = "word ".repeat(40);
        fake.push(Reply::text(text.clone()).rate(200.0));
        let provider = provider(&settings(kind, &fake));
        let mut stream = provider.stream(request()).await.expect("stream opens");
        let first = stream.next().await.expect("a token").expect("no error");
        let first_seen = Instant::now();
        let mut rest = String::new();
        while let Some(item) = stream.next().await {
            rest.push_str(&item.expect("no error"));
        }
        assert_eq!(first + &rest, text, "{kind}");
        let last_sent = fake.requests()[0].last_token_at.expect("tokens were sent");
        assert!(
            first_seen < last_sent,
            "{kind}: the first token reached the caller only after the last one was sent"
        );
    }
}

#[tokio::test]
async fn unauthorized_names_the_variable_and_never_the_key() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        fake.push(Reply::status(
            401,
            &format!("Incorrect API key provided: {KEY}"),
        ));
        let settings = settings(kind, &fake);
        let outcome = run(&provider(&settings)).await;
        let error = outcome.failed.expect("the request fails");
        let ModelError::Unauthorized { status, detail } = &error else {
            panic!("{kind}: {error:?}");
        };
        assert_eq!(*status, 401);
        assert!(detail.contains("Incorrect API key provided"), "{detail}");
        assert!(detail.contains(KEY_ENV), "{detail}");
        for shown in [
            format!("{error:?}"),
            error.to_string(),
            error.user_message(),
            format!("{settings:?}"),
        ] {
            assert!(!shown.contains(KEY), "the key leaked: {shown}");
        }
        assert!(error.user_message().contains("401 Unauthorized"));
        assert_eq!(fake.requests().len(), 1, "{kind}: 401 is not retried");
    }
}

#[tokio::test]
async fn forbidden_is_unauthorized_too() {
    let fake = FakeModel::start().await;
    fake.push(Reply::status(403, "no access to this model"));
    let outcome = run(&provider(&settings(ProviderKind::Openai, &fake))).await;
    assert!(
        matches!(
            outcome.failed,
            Some(ModelError::Unauthorized { status: 403, .. })
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn not_found_is_model_not_found() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        fake.push(Reply::status(404, "The model `test-model` does not exist"));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        match outcome.failed {
            Some(ModelError::ModelNotFound { model, detail }) => {
                assert_eq!(model, "test-model");
                assert!(detail.contains("does not exist"), "{detail}");
            }
            other => panic!("{kind}: {other:?}"),
        }
        assert_eq!(fake.requests().len(), 1, "{kind}: 404 is not retried");
    }
}

#[tokio::test]
async fn other_client_errors_are_bad_requests_and_not_retried() {
    let fake = FakeModel::start().await;
    fake.push(Reply::status(400, "max_tokens is too large"));
    let outcome = run(&provider(&settings(ProviderKind::Anthropic, &fake))).await;
    match outcome.failed {
        Some(ModelError::BadRequest {
            status: 400,
            detail,
        }) => {
            assert_eq!(detail, "max_tokens is too large")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn rate_limited_is_retried_then_succeeds() {
    let fake = FakeModel::start().await;
    fake.push(Reply::text("").fault(Fault::Status {
        code: 429,
        body: r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#.to_string(),
        retry_after: Some(0),
    }));
    fake.push(Reply::text(TEXT));
    let outcome = run(&provider(&settings(ProviderKind::Openai, &fake))).await;
    assert!(outcome.error().is_none(), "{outcome:?}");
    assert_eq!(outcome.text, TEXT);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn rate_limited_without_retries_reports_retry_after() {
    let fake = FakeModel::start().await;
    fake.push(Reply::text("").fault(Fault::Status {
        code: 429,
        body: String::new(),
        retry_after: Some(7),
    }));
    let mut settings = settings(ProviderKind::OpenaiChat, &fake);
    settings.max_retries = 0;
    let outcome = run(&provider(&settings)).await;
    match outcome.failed {
        Some(ModelError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn openai_insufficient_quota_is_not_retried() {
    let fake = FakeModel::start().await;
    fake.push(Reply::text("").fault(Fault::Status {
        code: 429,
        body: r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#.to_string(),
        retry_after: None,
    }));
    let outcome = run(&provider(&settings(ProviderKind::Openai, &fake))).await;
    assert!(
        matches!(&outcome.failed, Some(ModelError::BadRequest { status: 429, detail }) if detail.contains("quota")),
        "{outcome:?}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        fake.push(Reply::status(500, "internal error"));
        fake.push(Reply::status(503, "busy"));
        fake.push(Reply::text(TEXT));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        assert!(outcome.error().is_none(), "{kind}: {outcome:?}");
        assert_eq!(outcome.text, TEXT, "{kind}");
        assert_eq!(fake.requests().len(), 3, "{kind}");
    }
}

#[tokio::test]
async fn server_errors_give_up_after_max_retries() {
    let fake = FakeModel::start().await;
    for _ in 0..3 {
        fake.push(Reply::status(500, "internal error"));
    }
    fake.push(Reply::text("never asked for"));
    let outcome = run(&provider(&settings(ProviderKind::Anthropic, &fake))).await;
    match outcome.failed {
        Some(ModelError::Server {
            status: 500,
            detail,
        }) => assert_eq!(detail, "internal error"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.requests().len(), 3, "one attempt and two retries");
    assert_eq!(fake.pending_replies(), 1);
}

#[tokio::test]
async fn the_fakes_empty_queue_is_a_clear_server_error() {
    let fake = FakeModel::start().await;
    let mut settings = settings(ProviderKind::OpenaiChat, &fake);
    settings.max_retries = 0;
    let outcome = run(&provider(&settings)).await;
    assert!(
        matches!(&outcome.failed, Some(ModelError::Server { status: 500, detail }) if detail == testkit::fake_model::NO_SCRIPTED_REPLY),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn first_token_timeout_is_retried_then_reported() {
    let fake = FakeModel::start().await;
    fake.push(Reply::text(TEXT).delay(Duration::from_secs(3)));
    fake.push(Reply::text(TEXT).delay(Duration::from_secs(3)));
    let mut settings = settings(ProviderKind::Openai, &fake);
    settings.max_retries = 1;
    let outcome = run(&provider(&settings)).await;
    assert!(
        matches!(
            outcome.failed,
            Some(ModelError::Timeout {
                phase: phase::FIRST_TOKEN
            })
        ),
        "{outcome:?}"
    );
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn first_token_timeout_then_success() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        fake.push(Reply::text(TEXT).delay(Duration::from_secs(3)));
        fake.push(Reply::text(TEXT));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        assert!(outcome.error().is_none(), "{kind}: {outcome:?}");
        assert_eq!(outcome.text, TEXT);
        assert_eq!(fake.requests().len(), 2);
    }
}

#[tokio::test]
async fn a_slow_status_answer_is_a_first_token_timeout() {
    let fake = FakeModel::start().await;
    fake.push(Reply::status(500, "late").delay(Duration::from_secs(3)));
    let mut settings = settings(ProviderKind::OpenaiChat, &fake);
    settings.max_retries = 0;
    let outcome = run(&provider(&settings)).await;
    assert!(
        matches!(
            outcome.failed,
            Some(ModelError::Timeout {
                phase: phase::FIRST_TOKEN
            })
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_stall_mid_answer_is_an_idle_timeout_and_not_retried() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        fake.push(Reply::text(TEXT).fault(Fault::StallAfter(3)));
        fake.push(Reply::text(TEXT));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        assert!(outcome.failed.is_none(), "{kind}: {outcome:?}");
        assert!(
            matches!(
                outcome.ended,
                Some(ModelError::Timeout { phase: phase::IDLE })
            ),
            "{kind}: {outcome:?}"
        );
        assert_eq!(outcome.text, prefix(3), "{kind}");
        assert_eq!(
            fake.requests().len(),
            1,
            "{kind}: no retry after streaming started"
        );
    }
}

#[tokio::test]
async fn a_stall_before_any_token_is_retried() {
    let fake = FakeModel::start().await;
    fake.push(Reply::text(TEXT).fault(Fault::StallAfter(0)));
    fake.push(Reply::text(TEXT));
    let outcome = run(&provider(&settings(ProviderKind::Anthropic, &fake))).await;
    assert!(outcome.error().is_none(), "{outcome:?}");
    assert_eq!(outcome.text, TEXT);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_body_that_ends_early_is_truncated() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        fake.push(Reply::text(TEXT).fault(Fault::TruncateAfter(5)));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        assert!(
            matches!(outcome.ended, Some(ModelError::Truncated)),
            "{kind}: {outcome:?}"
        );
        assert_eq!(outcome.text, prefix(5), "{kind}");
    }
}

#[tokio::test]
async fn bad_json_is_malformed() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        fake.push(Reply::text(TEXT).fault(Fault::MalformedAfter(2)));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        assert!(
            matches!(outcome.ended, Some(ModelError::Malformed { .. })),
            "{kind}: {outcome:?}"
        );
        assert_eq!(outcome.text, prefix(2), "{kind}");

        // Before any token, the future fails, and is not retried.
        let fake = FakeModel::start().await;
        fake.push(Reply::text(TEXT).fault(Fault::MalformedAfter(0)));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        assert!(
            matches!(outcome.failed, Some(ModelError::Malformed { .. })),
            "{kind}: {outcome:?}"
        );
        assert_eq!(fake.requests().len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn a_complete_answer_without_text_is_empty_answer() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        fake.push(Reply::text(TEXT).fault(Fault::EmptyStream));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        assert!(outcome.failed.is_none(), "{kind}: {outcome:?}");
        assert!(
            matches!(outcome.ended, Some(ModelError::EmptyAnswer)),
            "{kind}: {outcome:?}"
        );
        assert_eq!(outcome.batches, 0);
        assert_eq!(fake.requests().len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn an_error_event_is_a_provider_error() {
    for kind in KINDS {
        // After some text: the stream's last item.
        let fake = FakeModel::start().await;
        fake.push(Reply::text(TEXT).fault(Fault::ProviderErrorEvent("the model crashed".into())));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        assert_eq!(outcome.text, TEXT, "{kind}");
        assert!(
            matches!(&outcome.ended, Some(ModelError::ProviderError { detail }) if detail.contains("the model crashed")),
            "{kind}: {outcome:?}"
        );

        // Before any text: the future fails, without retrying.
        let fake = FakeModel::start().await;
        fake.push(Reply::text("").fault(Fault::ProviderErrorEvent("bad input".into())));
        let outcome = run(&provider(&settings(kind, &fake))).await;
        assert!(
            matches!(&outcome.failed, Some(ModelError::ProviderError { detail }) if detail.contains("bad input")),
            "{kind}: {outcome:?}"
        );
        assert_eq!(fake.requests().len(), 1, "{kind}");
    }
}

#[tokio::test]
async fn anthropic_overloaded_is_a_retried_529() {
    let fake = FakeModel::start().await;
    fake.push(Reply::text("").fault(Fault::Overloaded));
    fake.push(Reply::text(TEXT));
    let outcome = run(&provider(&settings(ProviderKind::Anthropic, &fake))).await;
    assert!(outcome.error().is_none(), "{outcome:?}");
    assert_eq!(outcome.text, TEXT);
    assert_eq!(fake.requests().len(), 2);

    let fake = FakeModel::start().await;
    fake.push(Reply::text("").fault(Fault::Overloaded));
    let mut settings = settings(ProviderKind::Anthropic, &fake);
    settings.max_retries = 0;
    let outcome = run(&provider(&settings)).await;
    assert!(
        matches!(outcome.failed, Some(ModelError::Server { status: 529, .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_missing_key_fails_before_any_request() {
    for kind in KINDS {
        for env in [UNSET_ENV, EMPTY_ENV] {
            let fake = FakeModel::start().await;
            fake.push(Reply::text(TEXT));
            let mut settings = settings(kind, &fake);
            settings.api_key_env = Some(env.to_string());
            let error = match model::provider(&settings, model::http_client()) {
                Err(error) => error,
                Ok(_) => panic!("{kind}: provider built without its key"),
            };
            assert!(
                matches!(&error, ModelError::MissingKey { env: e } if e == env),
                "{kind}: {error:?}"
            );
            assert!(
                error
                    .user_message()
                    .starts_with(&format!("{env} is not set"))
            );
            assert!(matches!(
                model::check_usable(&settings),
                Err(ModelError::MissingKey { .. })
            ));
            assert!(fake.requests().is_empty(), "{kind}: a request was sent");
        }
    }
}

#[tokio::test]
async fn no_key_configured_sends_no_auth_header() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        fake.push(Reply::text(TEXT));
        let mut settings = settings(kind, &fake);
        settings.api_key_env = None;
        model::check_usable(&settings).expect("usable without a key");
        let outcome = run(&provider(&settings)).await;
        assert_eq!(outcome.text, TEXT, "{kind}: {outcome:?}");
        let recorded = &fake.requests()[0];
        assert_eq!(recorded.header("authorization"), None, "{kind}");
        assert_eq!(recorded.header("x-api-key"), None, "{kind}");
    }
}

#[tokio::test]
async fn the_key_never_shows_in_debug_output() {
    let fake = FakeModel::start().await;
    let settings = settings(ProviderKind::Openai, &fake);
    assert!(!format!("{settings:?}").contains(KEY));
    // The fake has no reply queued: the 500 echoes nothing, but every error shape is checked.
    let errors = [
        ModelError::MissingKey {
            env: KEY_ENV.into(),
        },
        ModelError::Timeout {
            phase: phase::CONNECT,
        },
        ModelError::Truncated,
    ];
    for error in errors {
        assert!(!format!("{error:?}").contains(KEY));
        assert!(!error.user_message().contains(KEY));
    }
    // A server that echoes the key in an error body has it scrubbed.
    fake.push(Reply::status(400, &format!("key {KEY} is malformed")));
    let outcome = run(&provider(&settings)).await;
    let error = outcome.failed.expect("fails");
    assert!(format!("{error:?}").contains("[redacted]"), "{error:?}");
    assert!(!format!("{error:?}").contains(KEY));
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    set_keys();
    let mut settings = ModelSettings::new(
        ProviderKind::OpenaiChat,
        "m",
        format!("http://127.0.0.1:{port}/v1"),
    );
    settings.max_retries = 1;
    let outcome = run(&provider(&settings)).await;
    match outcome.failed {
        Some(ModelError::Connect { detail }) => {
            assert!(detail.contains(&port.to_string()), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn invalid_base_urls_are_rejected_up_front() {
    for base_url in ["", "localhost:11434/v1", "ftp://example.com/v1", "http://"] {
        let settings = ModelSettings::new(ProviderKind::OpenaiChat, "m", base_url);
        assert!(
            matches!(
                model::check_usable(&settings),
                Err(ModelError::BadRequest { status: 0, .. })
            ),
            "{base_url:?}"
        );
        let error = model::provider(&settings, model::http_client())
            .err()
            .expect("rejected");
        assert!(
            error.user_message().contains("base_url"),
            "{}",
            error.user_message()
        );
    }
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let fake = FakeModel::start().await;
    let text = "word ".repeat(400);
    fake.push(Reply::text(text).rate(100.0));
    let provider = provider(&settings(ProviderKind::OpenaiChat, &fake));
    let mut stream = provider.stream(request()).await.expect("stream opens");
    stream.next().await.expect("a token").expect("no error");
    stream.next().await.expect("a token").expect("no error");
    drop(stream);
    // The fake notices the closed socket on its next write, and then stops.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = fake.requests()[0].tokens_sent;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = fake.requests()[0].tokens_sent;
    assert_eq!(
        sent, later,
        "the fake kept sending after the stream was dropped"
    );
    assert!(later < tokenize(&"word ".repeat(400)).len());
}

#[tokio::test]
async fn dropping_the_future_closes_the_connection() {
    let fake = FakeModel::start().await;
    let text = "word ".repeat(400);
    fake.push(
        Reply::text(text.clone())
            .delay(Duration::from_millis(300))
            .rate(100.0),
    );
    let mut settings = settings(ProviderKind::Openai, &fake);
    settings.first_token_timeout = Duration::from_secs(10);
    let provider = provider(&settings);
    // Give up while the request is still waiting for its first token.
    let pending = provider.stream(request());
    assert!(
        tokio::time::timeout(Duration::from_millis(100), pending)
            .await
            .is_err()
    );
    assert_eq!(fake.requests().len(), 1);
    // Once the fake starts sending, its writes fail and it stops.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let sent = fake.requests()[0].tokens_sent;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sent,
        fake.requests()[0].tokens_sent,
        "the fake kept sending"
    );
    assert!(sent < tokenize(&text).len());
}

#[tokio::test]
async fn connections_are_reused_after_a_complete_answer() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        for _ in 0..3 {
            fake.push(Reply::text(TEXT));
        }
        let provider = provider(&settings(kind, &fake));
        for _ in 0..3 {
            assert_eq!(run(&provider).await.text, TEXT);
            // Let the background drain hand the connection back to the pool.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(fake.requests().len(), 3);
        assert_eq!(fake.connections(), 1, "{kind}: a connection was not reused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1200_tokens_per_second_stream_never_queues_up() {
    for kind in KINDS {
        let fake = FakeModel::start().await;
        let text = "abcd".repeat(600);
        fake.push(Reply::text(text.clone()).rate(1200.0));
        let provider = provider(&settings(kind, &fake));
        let mut stream = provider.stream(request()).await.expect("stream opens");
        let mut received = String::new();
        let mut lags = Vec::new();
        while let Some(item) = stream.next().await {
            received.push_str(&item.expect("no error"));
            // Items are batches: the last token of this one is the `n`th ("abcd" each).
            lags.push((received.len() / 4, Instant::now()));
        }
        let done = Instant::now();
        assert_eq!(received, text, "{kind}");
        let recorded = &fake.requests()[0];
        let last_sent = recorded.last_token_at.expect("sent");
        // Each token reaches the caller shortly after it is sent, not at the end.
        let lags: Vec<_> = lags.into_iter().filter(|(n, _)| *n > 0).collect();
        let first_sent = recorded.first_token_at.expect("sent");
        for (n, at) in lags {
            let due = first_sent + Duration::from_secs_f64((n - 1) as f64 / 1200.0);
            assert!(
                at < due + Duration::from_millis(250),
                "{kind}: token {n} arrived {:?} after it was due",
                at - due
            );
        }
        assert!(done < last_sent + Duration::from_millis(250), "{kind}");
        // The fake keeps to its schedule: never early, and not far behind.
        let span = last_sent - first_sent;
        assert!(
            span + Duration::from_millis(5) >= Duration::from_secs_f64(599.0 / 1200.0),
            "{kind}: {span:?}"
        );
        assert!(span < Duration::from_millis(800), "{kind}: {span:?}");
    }
}
