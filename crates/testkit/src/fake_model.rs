//! A fake model server that speaks the real streaming wire formats on loopback.
//!
//! [`FakeModel`] serves the three APIs baton talks to, chosen by the request path:
//!
//! - `POST /v1/responses`: OpenAI Responses API (`response.created` … `response.completed`);
//! - `POST /v1/chat/completions`: OpenAI-compatible chat completions (`chat.completion.chunk`
//!   objects then `data: [DONE]`), as OpenAI, Ollama and llama.cpp stream them;
//! - `POST /v1/messages`: Anthropic Messages (`message_start` … `message_stop`).
//!
//! Each request takes the next scripted [`Reply`] off a queue; with the queue empty the server
//! answers 500 with the error message [`NO_SCRIPTED_REPLY`] (`fake model: no scripted reply`)
//! in an OpenAI-style JSON error body. Every request is recorded, with
//! the times the first and last text token left the server, so a benchmark can subtract the
//! fake's own time to first token.
//!
//! Timing of a streamed reply: the response head goes out at once; the body waits
//! [`Reply::first_token_delay`], then sends the opening events together with the first token.
//! With a rate, token `i` is due at `start + i / rate` (`start` = when the first token left);
//! tokens that are overdue go out in consecutive frames without sleeping. Without a rate the
//! tokens go out as fast as the connection takes them. Every event is its own body frame, so
//! nothing waits in a buffer.
//!
//! A Chat Completions request that asks for one JSON answer instead of a stream (`"stream":
//! false`, or no `stream` field and an `Accept` header naming JSON but not `text/event-stream`,
//! which is what lsp-ai 0.7 sends) gets a `chat.completion` object. Its body leaves when the last
//! token would have been streamed, so a streaming and a non-streaming client face the same model
//! speed; `first_token_at` and `last_token_at` record when the first and last token were due.
//! Only [`Fault::Status`] applies to such answers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// The answer body when no reply was scripted.
pub const NO_SCRIPTED_REPLY: &str = "fake model: no scripted reply";

/// A fake model server on `127.0.0.1`, running on the tokio runtime that started it.
/// Dropping it stops the server and closes every connection it holds open.
pub struct FakeModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The request path, e.g. `/v1/responses`.
    pub path: String,
    /// Every header, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`Value::Null` when the body was empty, a string when it was not JSON).
    pub body: serde_json::Value,
    /// When the request head reached the handler.
    pub received_at: Instant,
    /// When the first text token was handed to the connection.
    pub first_token_at: Option<Instant>,
    /// When the last text token so far was handed to the connection.
    pub last_token_at: Option<Instant>,
    /// How many text tokens were sent.
    pub tokens_sent: usize,
}

impl RecordedRequest {
    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted reply.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The answer text; it is sent as the tokens of [`tokenize`].
    pub text: String,
    /// Tokens per second; `None` sends as fast as possible.
    pub tokens_per_second: Option<f64>,
    /// What goes wrong, if anything.
    pub fault: Option<Fault>,
    /// How long the body (or, for [`Fault::Status`], the response) waits before starting.
    pub first_token_delay: Duration,
}

impl Reply {
    /// A well-formed streamed answer of `s`.
    pub fn text(s: impl Into<String>) -> Reply {
        Reply {
            text: s.into(),
            tokens_per_second: None,
            fault: None,
            first_token_delay: Duration::ZERO,
        }
    }

    /// Shorthand for an HTTP error status with a provider-style JSON error body.
    pub fn status(code: u16, message: &str) -> Reply {
        Reply::text("").fault(Fault::Status {
            code,
            body: json!({"error": {"message": message, "type": "fake_error"}}).to_string(),
            retry_after: None,
        })
    }

    /// Paces the tokens at this rate.
    pub fn rate(mut self, tokens_per_second: f64) -> Reply {
        assert!(
            tokens_per_second.is_finite() && tokens_per_second > 0.0,
            "token rate must be positive"
        );
        self.tokens_per_second = Some(tokens_per_second);
        self
    }

    pub fn fault(mut self, f: Fault) -> Reply {
        self.fault = Some(f);
        self
    }

    pub fn delay(mut self, d: Duration) -> Reply {
        self.first_token_delay = d;
        self
    }
}

/// What goes wrong with a reply.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and body (and a `Retry-After: N` header) instead of a stream.
    /// An empty body is replaced by a provider-style JSON error.
    Status {
        code: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// Send this many tokens, then end the body cleanly without the completion events.
    TruncateAfter(usize),
    /// Send this many tokens, then an event whose JSON is cut in half, then end the body.
    MalformedAfter(usize),
    /// Send this many tokens, then keep the connection open sending nothing.
    StallAfter(usize),
    /// A well-formed completion with no text at all.
    EmptyStream,
    /// Send the whole text, then the provider's in-stream error event with this message
    /// instead of the completion events.
    ProviderErrorEvent(String),
    /// Send the whole text, then the provider's "overloaded" in-stream error (Anthropic's
    /// `overloaded_error`; an `error` event with message `Overloaded` for the OpenAI formats).
    Overloaded,
}

/// Splits text into tokens of at most 4 characters the way a tokenizer cuts words: each
/// piece of whitespace starts a new token together with the word after it. The tokens
/// concatenate to exactly `text`.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    let mut prev_whitespace = false;
    for c in text.chars() {
        let whitespace = c.is_whitespace();
        // A word ends where whitespace starts again.
        let boundary = whitespace && !prev_whitespace;
        if current_chars > 0 && (boundary || current_chars == 4) {
            tokens.push(std::mem::take(&mut current));
            current_chars = 0;
        }
        current.push(c);
        current_chars += 1;
        prev_whitespace = whitespace;
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

struct Shared {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    replies: VecDeque<Reply>,
    requests: Vec<RecordedRequest>,
    connections: usize,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test thread must not hide the recordings from the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FakeModel {
    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start() -> FakeModel {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("fake model: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake model: local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        FakeModel {
            addr,
            shared,
            server,
        }
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a reply; replies are used one per request, in order.
    pub fn push(&self, reply: Reply) {
        self.shared.lock().replies.push_back(reply);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many connections were accepted so far (a client that reuses its connections
    /// opens fewer than it sends requests).
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// How many scripted replies are still queued.
    pub fn pending_replies(&self) -> usize {
        self.shared.lock().replies.len()
    }

    /// Drops the queued replies and says how many there were: a driver that scripts one reply
    /// per request uses it when a request it scripted for never came, so the next request does
    /// not get a reply meant for another.
    pub fn clear_replies(&self) -> usize {
        let mut state = self.shared.lock();
        let count = state.replies.len();
        state.replies.clear();
        count
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        // The connection tasks live in a JoinSet owned by the server task: aborting it drops
        // them all, which closes every socket, stalled ones included.
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // Small SSE frames must leave at once, not wait for Nagle.
                let _ = stream.set_nodelay(true);
                shared.lock().connections += 1;
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Responses,
    Chat,
    Messages,
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let received_at = Instant::now();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let raw = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()))
    };
    let accept = headers
        .iter()
        .find(|(name, _)| name == "accept")
        .map(|(_, value)| value.clone());
    let whole_answer = wants_whole_answer(&body, accept.as_deref());
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_string();

    let (index, reply) = {
        let mut state = shared.lock();
        state.requests.push(RecordedRequest {
            path: path.clone(),
            headers,
            body,
            received_at,
            first_token_at: None,
            last_token_at: None,
            tokens_sent: 0,
        });
        let index = state.requests.len() - 1;
        let format = format_of(&path);
        let reply = if method == hyper::Method::POST && format.is_some() {
            state.replies.pop_front()
        } else {
            None
        };
        (index, reply)
    };

    let Some(format) = format_of(&path).filter(|_| method == hyper::Method::POST) else {
        return Ok(json_error(
            404,
            &format!("fake model: no route for {method} {path}"),
        ));
    };
    let Some(reply) = reply else {
        return Ok(json_error(500, NO_SCRIPTED_REPLY));
    };

    if let Some(Fault::Status {
        code,
        body,
        retry_after,
    }) = &reply.fault
    {
        if !reply.first_token_delay.is_zero() {
            tokio::time::sleep(reply.first_token_delay).await;
        }
        let mut response = if body.is_empty() {
            json_error(*code, &format!("fake model: scripted status {code}"))
        } else {
            let content_type = if serde_json::from_str::<Value>(body).is_ok() {
                "application/json"
            } else {
                "text/plain"
            };
            let mut response = Response::new(full(body.clone()));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        };
        *response.status_mut() =
            StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(*seconds));
        }
        return Ok(response);
    }

    if format == Format::Chat && whole_answer {
        return Ok(whole_chat_answer(&shared, index, &model, &reply).await);
    }

    let events = script(format, &model, index, &reply);
    let generator = Generator {
        events: events.events.into(),
        stall: events.stall,
        delay: reply.first_token_delay,
        rate: reply.tokens_per_second,
        start: None,
        shared,
        index,
    };
    let frames = futures::stream::unfold(generator, |mut generator| async move {
        let chunk = generator.next_frame().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), generator))
    });
    let mut response = Response::new(StreamBody::new(frames.boxed()).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Whether a request asked for one JSON answer rather than a stream: an explicit
/// `"stream": false`, or no `stream` field and an `Accept` header that names JSON and not
/// `text/event-stream`. A bare `{}` without such a header still streams, so a test that only
/// cares about the SSE framing need not say `"stream": true`.
fn wants_whole_answer(body: &Value, accept: Option<&str>) -> bool {
    match body.get("stream") {
        Some(Value::Bool(stream)) => !stream,
        _ => accept.is_some_and(|accept| {
            accept.contains("application/json") && !accept.contains("text/event-stream")
        }),
    }
}

/// A non-streamed Chat Completions answer, sent when its last token would have been streamed.
async fn whole_chat_answer(
    shared: &Shared,
    index: usize,
    model: &str,
    reply: &Reply,
) -> Response<Body> {
    if !reply.first_token_delay.is_zero() {
        tokio::time::sleep(reply.first_token_delay).await;
    }
    let tokens = tokenize(&reply.text);
    let first_due = Instant::now();
    if let Some(rate) = reply.tokens_per_second {
        let intervals = tokens.len().saturating_sub(1) as f64;
        tokio::time::sleep_until(first_due + Duration::from_secs_f64(intervals / rate)).await;
    }
    let last_due = Instant::now();
    if !tokens.is_empty() {
        let mut state = shared.lock();
        let request = &mut state.requests[index];
        request.first_token_at = Some(first_due);
        request.last_token_at = Some(last_due);
        request.tokens_sent = tokens.len();
    }
    let body = json!({
        "id": format!("chatcmpl-fake-{index}"), "object": "chat.completion",
        "created": 1_700_000_000u64, "model": model, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": reply.text}}],
        "usage": {"prompt_tokens": 0, "completion_tokens": tokens.len(),
                  "total_tokens": tokens.len()},
    });
    let mut response = Response::new(full(body.to_string()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn format_of(path: &str) -> Option<Format> {
    if path.ends_with("/responses") {
        Some(Format::Responses)
    } else if path.ends_with("/chat/completions") {
        Some(Format::Chat)
    } else if path.ends_with("/messages") {
        Some(Format::Messages)
    } else {
        None
    }
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed_unsync()
}

fn json_error(code: u16, message: &str) -> Response<Body> {
    let body = json!({"error": {"message": message, "type": "fake_error"}}).to_string();
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// One SSE event of a scripted body, tagged with what it carries.
struct Event {
    text: String,
    token: Option<usize>,
}

struct Script {
    events: Vec<Event>,
    /// Keep the connection open after the last event instead of ending the body.
    stall: bool,
}

/// How the scripted body ends after its tokens.
enum Ending {
    Complete,
    Truncate,
    Malformed,
    Stall,
    Error(String),
    Overloaded,
}

fn script(format: Format, model: &str, request_index: usize, reply: &Reply) -> Script {
    let all = tokenize(&reply.text);
    let (count, ending) = match &reply.fault {
        None | Some(Fault::Status { .. }) => (all.len(), Ending::Complete),
        Some(Fault::TruncateAfter(n)) => (*n, Ending::Truncate),
        Some(Fault::MalformedAfter(n)) => (*n, Ending::Malformed),
        Some(Fault::StallAfter(n)) => (*n, Ending::Stall),
        Some(Fault::EmptyStream) => (0, Ending::Complete),
        Some(Fault::ProviderErrorEvent(message)) => (all.len(), Ending::Error(message.clone())),
        Some(Fault::Overloaded) => (all.len(), Ending::Overloaded),
    };
    let stall = matches!(ending, Ending::Stall);
    let tokens = &all[..count.min(all.len())];
    let text: String = tokens.concat();
    let mut out = Vec::new();
    let mut push = |text: String, token: Option<usize>| out.push(Event { text, token });
    let id = request_index + 1;

    match format {
        Format::Responses => {
            let response_id = format!("resp_fake_{id}");
            let item_id = format!("msg_fake_{id}");
            let mut seq = 0u64;
            let mut event = |kind: &str, mut data: Value| {
                data["type"] = json!(kind);
                data["sequence_number"] = json!(seq);
                seq += 1;
                sse(Some(kind), &data)
            };
            let response = |status: &str, output: Value| {
                json!({
                    "id": response_id, "object": "response", "created_at": 1_700_000_000u64,
                    "status": status, "error": null, "incomplete_details": null,
                    "model": model, "output": output, "usage": null,
                })
            };
            let message = |status: &str, content: Value| {
                json!({"id": item_id, "type": "message", "status": status,
                       "role": "assistant", "content": content})
            };
            let part = |text: &str| json!({"type": "output_text", "text": text, "annotations": []});
            push(
                event(
                    "response.created",
                    json!({"response": response("in_progress", json!([]))}),
                ),
                None,
            );
            push(
                event(
                    "response.in_progress",
                    json!({"response": response("in_progress", json!([]))}),
                ),
                None,
            );
            push(
                event(
                    "response.output_item.added",
                    json!({"output_index": 0, "item": message("in_progress", json!([]))}),
                ),
                None,
            );
            push(
                event(
                    "response.content_part.added",
                    json!({"item_id": item_id, "output_index": 0, "content_index": 0,
                           "part": part("")}),
                ),
                None,
            );
            for (i, token) in tokens.iter().enumerate() {
                push(
                    event(
                        "response.output_text.delta",
                        json!({"item_id": item_id, "output_index": 0, "content_index": 0,
                               "delta": token, "logprobs": []}),
                    ),
                    Some(i),
                );
            }
            match ending {
                Ending::Complete => {
                    let done = message("completed", json!([part(&text)]));
                    push(
                        event(
                            "response.output_text.done",
                            json!({"item_id": item_id, "output_index": 0, "content_index": 0,
                                   "text": text, "logprobs": []}),
                        ),
                        None,
                    );
                    push(
                        event(
                            "response.content_part.done",
                            json!({"item_id": item_id, "output_index": 0, "content_index": 0,
                                   "part": part(&text)}),
                        ),
                        None,
                    );
                    push(
                        event(
                            "response.output_item.done",
                            json!({"output_index": 0, "item": done.clone()}),
                        ),
                        None,
                    );
                    let mut completed = response("completed", json!([done]));
                    completed["usage"] = json!({
                        "input_tokens": 0, "output_tokens": tokens.len(),
                        "total_tokens": tokens.len(),
                    });
                    push(
                        event("response.completed", json!({"response": completed})),
                        None,
                    );
                }
                Ending::Error(message) => push(
                    event(
                        "error",
                        json!({"code": "server_error", "message": message, "param": null}),
                    ),
                    None,
                ),
                Ending::Overloaded => push(
                    event(
                        "error",
                        json!({"code": "server_is_overloaded", "message": "Overloaded",
                               "param": null}),
                    ),
                    None,
                ),
                Ending::Malformed => push(
                    format!(
                        "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"sequence_number\":{seq},\"delta\":\"cut\n\n"
                    ),
                    None,
                ),
                Ending::Truncate | Ending::Stall => {}
            }
        }
        Format::Chat => {
            let chunk = |delta: Value, finish: Value| {
                sse(
                    None,
                    &json!({
                        "id": format!("chatcmpl-fake-{id}"), "object": "chat.completion.chunk",
                        "created": 1_700_000_000u64, "model": model,
                        "system_fingerprint": "fp_fake",
                        "choices": [{"index": 0, "delta": delta, "logprobs": null,
                                     "finish_reason": finish}],
                    }),
                )
            };
            push(
                chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                None,
            );
            for (i, token) in tokens.iter().enumerate() {
                push(chunk(json!({"content": token}), Value::Null), Some(i));
            }
            match ending {
                Ending::Complete => {
                    push(chunk(json!({}), json!("stop")), None);
                    push("data: [DONE]\n\n".to_string(), None);
                }
                Ending::Error(message) => push(
                    sse(
                        None,
                        &json!({"error": {"message": message, "type": "server_error"}}),
                    ),
                    None,
                ),
                Ending::Overloaded => push(
                    sse(
                        None,
                        &json!({"error": {"message": "Overloaded", "type": "server_error"}}),
                    ),
                    None,
                ),
                Ending::Malformed => push(
                    "data: {\"id\":\"chatcmpl-fake\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"cut\n\n"
                        .to_string(),
                    None,
                ),
                Ending::Truncate | Ending::Stall => {}
            }
        }
        Format::Messages => {
            let event = |kind: &str, mut data: Value| {
                data["type"] = json!(kind);
                sse(Some(kind), &data)
            };
            push(
                event(
                    "message_start",
                    json!({"message": {
                        "id": format!("msg_fake_{id}"), "type": "message", "role": "assistant",
                        "content": [], "model": model, "stop_reason": null,
                        "stop_sequence": null,
                        "usage": {"input_tokens": 0, "output_tokens": 1},
                    }}),
                ),
                None,
            );
            push(
                event(
                    "content_block_start",
                    json!({"index": 0, "content_block": {"type": "text", "text": ""}}),
                ),
                None,
            );
            push(event("ping", json!({})), None);
            for (i, token) in tokens.iter().enumerate() {
                push(
                    event(
                        "content_block_delta",
                        json!({"index": 0, "delta": {"type": "text_delta", "text": token}}),
                    ),
                    Some(i),
                );
            }
            let error = |kind: &str, message: &str| {
                event(
                    "error",
                    json!({"error": {"type": kind, "message": message}}),
                )
            };
            match ending {
                Ending::Complete => {
                    push(event("content_block_stop", json!({"index": 0})), None);
                    push(
                        event(
                            "message_delta",
                            json!({"delta": {"stop_reason": "end_turn", "stop_sequence": null},
                                   "usage": {"output_tokens": tokens.len()}}),
                        ),
                        None,
                    );
                    push(event("message_stop", json!({})), None);
                }
                Ending::Error(message) => push(error("api_error", &message), None),
                Ending::Overloaded => push(error("overloaded_error", "Overloaded"), None),
                Ending::Malformed => push(
                    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"cut\n\n"
                        .to_string(),
                    None,
                ),
                Ending::Truncate | Ending::Stall => {}
            }
        }
    }
    Script { events: out, stall }
}

fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(event) => format!("event: {event}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// Produces the body frames of a streamed reply on schedule.
struct Generator {
    events: VecDeque<Event>,
    stall: bool,
    delay: Duration,
    rate: Option<f64>,
    /// When the first token left; token `i` is due at `start + i / rate`.
    start: Option<Instant>,
    shared: Arc<Shared>,
    index: usize,
}

impl Generator {
    /// The next frame: the events up to and including the next token (and, after the last
    /// token, every remaining event). `None` ends the body.
    async fn next_frame(&mut self) -> Option<Bytes> {
        if self.events.is_empty() {
            if self.stall {
                // Hold the connection open until the client leaves or the fake is dropped.
                std::future::pending::<()>().await;
            }
            return None;
        }
        if self.start.is_none() && !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let next_token = self.events.iter().find_map(|e| e.token);
        let now = match (self.start, self.rate, next_token) {
            (Some(start), Some(rate), Some(i)) => {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                // When behind schedule this returns at once: overdue tokens go out back to
                // back.
                tokio::time::sleep_until(due).await;
                Instant::now()
            }
            _ => Instant::now(),
        };
        // The schedule starts when the first frame actually leaves.
        self.start.get_or_insert(now);
        let mut frame = String::new();
        let mut sent_token = false;
        while let Some(event) = self.events.front() {
            // One token per frame; the events after the last token go with it.
            if event.token.is_some() && sent_token {
                break;
            }
            sent_token |= event.token.is_some();
            frame.push_str(&self.events.pop_front().expect("front exists").text);
        }
        if sent_token {
            let mut state = self.shared.lock();
            let request = &mut state.requests[self.index];
            request.first_token_at.get_or_insert(now);
            request.last_token_at = Some(now);
            request.tokens_sent += 1;
        }
        Some(Bytes::from(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_concatenates_to_the_text() {
        for text in [
            "",
            "a",
            "hello world",
            "fn main() {\n    println!(\"hi\");\n}\n",
            "  leading and trailing  ",
            "ünïcødé wörds ∀x∈ℝ 🦀🦀🦀🦀🦀",
            "\n\n\n",
        ] {
            let tokens = tokenize(text);
            assert_eq!(tokens.concat(), text);
            assert!(
                tokens
                    .iter()
                    .all(|t| !t.is_empty() && t.chars().count() <= 4)
            );
        }
    }

    #[test]
    fn tokenize_keeps_a_space_with_the_word_after_it() {
        assert_eq!(
            tokenize("hello big world"),
            vec!["hell", "o", " big", " wor", "ld"]
        );
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A raw HTTP/1.1 exchange, so the test sees the bytes exactly as a client would.
    async fn post(fake: &FakeModel, path: &str, body: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nhost: fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    fn assert_in_order(haystack: &str, needles: &[&str]) {
        let mut from = 0;
        for needle in needles {
            match haystack[from..].find(needle) {
                Some(at) => from += at + needle.len(),
                None => panic!("{needle:?} missing (or out of order) in:\n{haystack}"),
            }
        }
    }

    #[tokio::test]
    async fn responses_events_in_order() {
        let fake = FakeModel::start().await;
        fake.push(Reply::text("hello world"));
        let out = post(&fake, "/v1/responses", r#"{"model":"m"}"#).await;
        assert_in_order(
            &out,
            &[
                "HTTP/1.1 200",
                "text/event-stream",
                "event: response.created\ndata: {",
                "event: response.in_progress",
                "event: response.output_item.added",
                "event: response.content_part.added",
                "event: response.output_text.delta\ndata: {",
                "\"delta\":\"hell\"",
                "\"delta\":\"o\"",
                "\"delta\":\" wor\"",
                "\"delta\":\"ld\"",
                "event: response.output_text.done",
                "\"text\":\"hello world\"",
                "event: response.content_part.done",
                "event: response.output_item.done",
                "event: response.completed",
                "\"status\":\"completed\"",
            ],
        );
        let request = &fake.requests()[0];
        assert_eq!(request.path, "/v1/responses");
        assert_eq!(request.body["model"], "m");
        assert_eq!(request.tokens_sent, 4);
        assert!(request.first_token_at.unwrap() <= request.last_token_at.unwrap());
    }

    #[tokio::test]
    async fn chat_chunks_then_done() {
        let fake = FakeModel::start().await;
        fake.push(Reply::text("hi there"));
        let out = post(&fake, "/v1/chat/completions", "{}").await;
        assert_in_order(
            &out,
            &[
                "data: {",
                "\"role\":\"assistant\"",
                "\"content\":\"hi\"",
                "\"content\":\" the\"",
                "\"content\":\"re\"",
                "\"finish_reason\":\"stop\"",
                "data: [DONE]\n\n",
            ],
        );
        assert!(!out.contains("event:"));
        assert!(out.contains("\"object\":\"chat.completion.chunk\""));
    }

    #[tokio::test]
    async fn chat_without_streaming_answers_one_json_object() {
        let fake = FakeModel::start().await;
        fake.push(Reply::text("hi there").rate(1000.0));
        fake.push(Reply::text("streamed"));
        let out = post(
            &fake,
            "/v1/chat/completions",
            r#"{"model":"m","stream":false}"#,
        )
        .await;
        assert_in_order(&out, &["HTTP/1.1 200", "application/json"]);
        assert!(!out.contains("data:"));
        let (_, body) = out.split_once("\r\n\r\n").expect("a body");
        let body: serde_json::Value = serde_json::from_str(body).expect("one JSON object");
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert_eq!(body["choices"][0]["message"]["content"], "hi there");
        let request = &fake.requests()[0];
        assert_eq!(request.tokens_sent, 3);
        assert!(request.first_token_at.unwrap() <= request.last_token_at.unwrap());
        // `"stream": true` still streams.
        let out = post(&fake, "/v1/chat/completions", r#"{"stream":true}"#).await;
        assert_in_order(
            &out,
            &["text/event-stream", "\"content\":\"stre\"", "[DONE]"],
        );
    }

    #[test]
    fn whole_answers_are_asked_for_explicitly() {
        let json_only = Some("application/json");
        assert!(wants_whole_answer(&json!({"stream": false}), None));
        assert!(wants_whole_answer(&json!({}), json_only));
        assert!(!wants_whole_answer(&json!({"stream": true}), json_only));
        assert!(!wants_whole_answer(&json!({}), None));
        assert!(!wants_whole_answer(
            &json!({}),
            Some("text/event-stream, application/json")
        ));
    }

    #[tokio::test]
    async fn messages_events_in_order() {
        let fake = FakeModel::start().await;
        fake.push(Reply::text("ok"));
        let out = post(&fake, "/v1/messages", "{}").await;
        assert_in_order(
            &out,
            &[
                "event: message_start",
                "event: content_block_start",
                "event: content_block_delta",
                "\"type\":\"text_delta\"",
                "\"text\":\"ok\"",
                "event: content_block_stop",
                "event: message_delta",
                "\"stop_reason\":\"end_turn\"",
                "event: message_stop",
            ],
        );
    }

    #[tokio::test]
    async fn status_faults_and_an_empty_queue() {
        let fake = FakeModel::start().await;
        fake.push(Reply::text("").fault(Fault::Status {
            code: 429,
            body: String::new(),
            retry_after: Some(3),
        }));
        let out = post(&fake, "/v1/responses", "{}").await;
        assert_in_order(&out, &["HTTP/1.1 429", "retry-after: 3", "\"message\""]);
        let out = post(&fake, "/v1/responses", "{}").await;
        assert_in_order(&out, &["HTTP/1.1 500", NO_SCRIPTED_REPLY]);
        let out = post(&fake, "/v1/unknown", "{}").await;
        assert_in_order(&out, &["HTTP/1.1 404", "no route"]);
        assert_eq!(fake.requests().len(), 3);
    }

    #[tokio::test]
    async fn truncation_ends_without_completion() {
        let fake = FakeModel::start().await;
        fake.push(Reply::text("one two three").fault(Fault::TruncateAfter(2)));
        let out = post(&fake, "/v1/messages", "{}").await;
        assert!(out.contains("\"text\":\"one\""));
        assert!(out.contains("\"text\":\" two\""));
        assert!(!out.contains("three"));
        assert!(!out.contains("message_stop"));
        assert_eq!(fake.requests()[0].tokens_sent, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pacing_follows_the_deadline_schedule() {
        let fake = FakeModel::start().await;
        fake.push(Reply::text("abcd".repeat(300)).rate(1200.0));
        let started = Instant::now();
        let out = post(&fake, "/v1/chat/completions", "{}").await;
        assert!(out.contains("[DONE]"));
        let request = &fake.requests()[0];
        assert_eq!(request.tokens_sent, 300);
        let span = request.last_token_at.unwrap() - request.first_token_at.unwrap();
        // 299 intervals of 1/1200 s: never early, and behind by little.
        assert!(
            span + Duration::from_millis(5) >= Duration::from_secs_f64(299.0 / 1200.0),
            "{span:?}"
        );
        assert!(span < Duration::from_millis(500), "{span:?}");
        assert!(request.first_token_at.unwrap() >= started);
    }

    #[tokio::test]
    async fn dropping_the_fake_closes_stalled_connections() {
        let fake = FakeModel::start().await;
        fake.push(Reply::text("a b c").fault(Fault::StallAfter(1)));
        let addr = fake.addr();
        let reader = tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"POST /v1/messages HTTP/1.1\r\nhost: f\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .unwrap();
            let mut sink = Vec::new();
            stream.read_to_end(&mut sink).await.map(|_| sink)
        });
        while fake.requests().first().is_none_or(|r| r.tokens_sent == 0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(fake);
        let read = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the connection closed")
            .unwrap();
        // Closed mid-body: either a clean EOF or a reset, but not a hang.
        if let Ok(bytes) = read {
            assert!(String::from_utf8_lossy(&bytes).contains("\"text\":\"a\""));
        }
    }
}
