//! A fake model server that speaks the real streaming wire formats on loopback.
//!
//! [`FakeModel`] serves the three APIs baton talks to, chosen by the request path:
//!
//! - `POST /v1/responses`: OpenAI Responses API (`response.created` … `response.completed`);
//! - `POST /v1/chat/completions`: OpenAI-compatible chat completions (`chat.completion.chunk`
//!   objects then `data: [DONE]`), as OpenAI, Ollama and llama.cpp stream them;
//! - `POST /v1/messages`: Anthropic Messages (`message_start` … `message_stop`);
//! - `POST /v1/completions`: OpenAI-compatible (legacy) completions, as fill-in-the-middle
//!   servers stream them (`text_completion` objects with `choices[0].text`, then
//!   `data: [DONE]`); the request's `prompt` and `suffix` are recorded like any body.
//!
//! A Responses reply is either one message of text ([`Reply::text`]) or a sequence of output
//! items ([`Reply::items`]): messages, codex's `apply_patch` custom tool call, `exec_command`
//! function calls and pauses, each streamed in deltas and closed by `response.output_item.done`.
//! An agent turn with tool calls is several queued replies: after each tool call the agent sends
//! a new request carrying the tool's output ([`RecordedRequest::input_items`]), which takes the
//! next reply.
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
    /// The client went away before the streamed body ended (it dropped the connection, or
    /// the stream, mid-answer): what a cancelled request looks like from the server.
    pub aborted: bool,
}

impl RecordedRequest {
    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The items of a Responses request's `input` with this `type` (for example
    /// `custom_tool_call_output` or `function_call_output`: what codex sends back after a tool
    /// call), in order.
    pub fn input_items(&self, kind: &str) -> Vec<&Value> {
        self.body
            .get("input")
            .and_then(Value::as_array)
            .map(|input| input.iter().filter(|item| item["type"] == kind).collect())
            .unwrap_or_default()
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
    /// The output items of a Responses reply; `None` streams `text` as one message. The Chat
    /// Completions and Messages formats have no tool items: they stream `text`, which
    /// [`Reply::items`] sets to the concatenated message items.
    pub items: Option<Vec<Item>>,
}

impl Reply {
    /// A well-formed streamed answer of `s`.
    pub fn text(s: impl Into<String>) -> Reply {
        Reply {
            text: s.into(),
            tokens_per_second: None,
            fault: None,
            first_token_delay: Duration::ZERO,
            items: None,
        }
    }

    /// A Responses reply whose output is these items, in order (a message, tool calls, pauses).
    /// Each item streams its text (message text, patch, arguments) as [`tokenize`] tokens, and
    /// token faults and the rate count the tokens of all items together.
    pub fn items(items: Vec<Item>) -> Reply {
        let text: String = items
            .iter()
            .filter_map(|item| match item {
                Item::Message(text) => Some(text.as_str()),
                _ => None,
            })
            .collect();
        Reply {
            items: Some(items),
            ..Reply::text(text)
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

/// One output item of a Responses reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An assistant message (`type: "message"`, `output_text` deltas).
    Message(String),
    /// A freeform tool call (`type: "custom_tool_call"`) whose `input` is raw text, streamed as
    /// `response.custom_tool_call_input.delta` events. Codex's `apply_patch` is one.
    CustomToolCall { name: String, input: String },
    /// A function call (`type: "function_call"`) whose `arguments` is a JSON string, streamed
    /// as `response.function_call_arguments.delta` events.
    FunctionCall { name: String, arguments: String },
    /// Not an item: the stream pauses this long before the next event, so a test can act
    /// while a reply is half sent (a slow tool call, a cancel mid-stream).
    Pause(Duration),
}

impl Item {
    /// An assistant message.
    pub fn message(text: impl Into<String>) -> Item {
        Item::Message(text.into())
    }

    /// Codex's `apply_patch` call. `patch` is the raw patch text, `*** Begin Patch` …
    /// `*** End Patch` (see [`patch`] to build one).
    pub fn apply_patch(patch: impl Into<String>) -> Item {
        Item::CustomToolCall {
            name: "apply_patch".into(),
            input: patch.into(),
        }
    }

    /// Codex's `exec_command` call running `cmd` in a shell: arguments `{"cmd": cmd}`.
    pub fn exec(cmd: impl Into<String>) -> Item {
        Item::function_call("exec_command", &json!({"cmd": cmd.into()}))
    }

    /// Any function call; `arguments` is sent as its JSON text, as the API does.
    pub fn function_call(name: impl Into<String>, arguments: &Value) -> Item {
        Item::FunctionCall {
            name: name.into(),
            arguments: arguments.to_string(),
        }
    }

    /// An assistant message that is a proposed plan, written as codex's plan-mode instructions
    /// ask: `<proposed_plan>` on its own line, the Markdown `plan`, `</proposed_plan>` on its own
    /// line. It streams in [`tokenize`] tokens like any message, so codex reports the plan in
    /// several `item/plan/delta`s; its `plan` item then holds `plan` (with a final newline
    /// added when missing).
    pub fn proposed_plan(plan: impl AsRef<str>) -> Item {
        let plan = plan.as_ref();
        let newline = if plan.ends_with('\n') { "" } else { "\n" };
        Item::Message(format!(
            "<proposed_plan>\n{plan}{newline}</proposed_plan>\n"
        ))
    }

    /// Codex's `request_user_input` call (offered in plan mode only). `questions` is the tool's
    /// argument as the model writes it: `[{id, header, question, options: [{label,
    /// description}]}]` (see [`user_question`]). Codex asks the client with
    /// `item/tool/requestUserInput` and sends its answer back to the model as this call's
    /// `function_call_output`, whose `output` is the client's answer JSON.
    pub fn request_user_input(questions: Value) -> Item {
        Item::function_call("request_user_input", &json!({ "questions": questions }))
    }

    /// A pause of this long before whatever follows.
    pub fn pause(duration: Duration) -> Item {
        Item::Pause(duration)
    }

    /// The text this item streams in deltas.
    fn streamed(&self) -> &str {
        match self {
            Item::Message(text) => text,
            Item::CustomToolCall { input, .. } => input,
            Item::FunctionCall { arguments, .. } => arguments,
            Item::Pause(_) => "",
        }
    }
}

/// One question of [`Item::request_user_input`]: options are (label, description) pairs,
/// recommended first.
pub fn user_question(id: &str, header: &str, question: &str, options: &[(&str, &str)]) -> Value {
    let options: Vec<Value> = options
        .iter()
        .map(|(label, description)| json!({"label": label, "description": description}))
        .collect();
    json!({"id": id, "header": header, "question": question, "options": options})
}

/// Builders of `apply_patch` input: each returns one hunk, and [`patch::wrap`] puts hunks
/// between `*** Begin Patch` and `*** End Patch`.
pub mod patch {
    /// `*** Begin Patch`, the hunks, `*** End Patch`, each line ending in a newline.
    pub fn wrap(hunks: &[String]) -> String {
        let mut out = String::from("*** Begin Patch\n");
        for hunk in hunks {
            out.push_str(hunk);
        }
        out.push_str("*** End Patch\n");
        out
    }

    /// A new file with this content.
    pub fn add(path: &str, content: &str) -> String {
        let mut out = format!("*** Add File: {path}\n");
        for line in content.lines() {
            out.push('+');
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// Deletes a file.
    pub fn delete(path: &str) -> String {
        format!("*** Delete File: {path}\n")
    }

    /// Replaces the lines `old` with `new` in `path` (each a block of whole lines, found by
    /// content, as codex's patches do), optionally moving the file to `move_to`.
    pub fn update(path: &str, move_to: Option<&str>, old: &str, new: &str) -> String {
        let mut out = format!("*** Update File: {path}\n");
        if let Some(to) = move_to {
            out.push_str(&format!("*** Move to: {to}\n"));
        }
        out.push_str("@@\n");
        for line in old.lines() {
            out.push('-');
            out.push_str(line);
            out.push('\n');
        }
        for line in new.lines() {
            out.push('+');
            out.push_str(line);
            out.push('\n');
        }
        out
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
    /// Send the whole reply, then `response.failed` with this error message instead of
    /// `response.completed` (Responses; the other formats send their in-stream error event).
    ResponseFailed(String),
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
    Completions,
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
            aborted: false,
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
    } else if path.ends_with("/completions") {
        Some(Format::Completions)
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
    /// How long to wait before sending this event (an [`Item::Pause`] before it).
    pause: Duration,
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
    /// Responses' `response.failed` (an in-stream error event for the other formats).
    Failed(String),
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
        Some(Fault::ResponseFailed(message)) => (all.len(), Ending::Failed(message.clone())),
    };
    // The Responses output: the scripted items, or one message holding the text. An empty
    // stream has no text, and no items at all when items were scripted.
    let items: Vec<Item> = match (&reply.items, &reply.fault) {
        (Some(_), Some(Fault::EmptyStream)) => Vec::new(),
        (Some(items), _) => items.clone(),
        (None, Some(Fault::EmptyStream)) => vec![Item::Message(String::new())],
        (None, _) => vec![Item::Message(reply.text.clone())],
    };
    let stall = matches!(ending, Ending::Stall);
    let tokens = &all[..count.min(all.len())];
    let mut out = Vec::new();
    let mut push = |text: String, token: Option<usize>| {
        out.push(Event {
            text,
            token,
            pause: Duration::ZERO,
        })
    };
    let id = request_index + 1;

    match format {
        Format::Responses => {
            let events = responses_events(model, id, &items, count, &ending);
            out.extend(events);
        }
        Format::Chat | Format::Completions => {
            // Chat chunks carry `delta.content`; completions chunks carry `text`.
            let chunk = |delta: Value, finish: Value| {
                let body = if format == Format::Completions {
                    json!({
                        "id": format!("cmpl-fake-{id}"), "object": "text_completion",
                        "created": 1_700_000_000u64, "model": model,
                        "choices": [{"index": 0, "logprobs": null, "finish_reason": finish,
                                     "text": delta.get("content").cloned()
                                         .unwrap_or_else(|| json!(""))}],
                    })
                } else {
                    json!({
                        "id": format!("chatcmpl-fake-{id}"), "object": "chat.completion.chunk",
                        "created": 1_700_000_000u64, "model": model,
                        "system_fingerprint": "fp_fake",
                        "choices": [{"index": 0, "delta": delta, "logprobs": null,
                                     "finish_reason": finish}],
                    })
                };
                sse(None, &body)
            };
            if format == Format::Chat {
                push(
                    chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                    None,
                );
            }
            for (i, token) in tokens.iter().enumerate() {
                push(chunk(json!({"content": token}), Value::Null), Some(i));
            }
            match ending {
                Ending::Complete => {
                    push(chunk(json!({}), json!("stop")), None);
                    push("data: [DONE]\n\n".to_string(), None);
                }
                Ending::Error(message) | Ending::Failed(message) => push(
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
                Ending::Error(message) | Ending::Failed(message) => {
                    push(error("api_error", &message), None)
                }
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

/// Builds the SSE events of one Responses stream, tagging the streamed tokens in order and
/// carrying pauses over to the event that follows them.
struct ResponsesWriter {
    out: Vec<Event>,
    seq: u64,
    pause: Duration,
    tokens: usize,
}

impl ResponsesWriter {
    fn push(&mut self, kind: &str, mut data: Value, token: Option<usize>) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        self.raw(sse(Some(kind), &data), token);
    }

    fn raw(&mut self, text: String, token: Option<usize>) {
        let pause = std::mem::take(&mut self.pause);
        self.out.push(Event { text, token, pause });
    }
}

/// What one output item streams: its added item, the delta event carrying its tokens (and the
/// fields that go with every delta), the finishing event and the completed item.
struct ItemShape {
    added: Value,
    delta_kind: &'static str,
    delta_fields: Value,
    /// The `*.done` event before `output_item.done`: the delta fields plus the full streamed
    /// text under this key.
    done_kind: &'static str,
    done_key: &'static str,
    /// The completed item, built from the full streamed text.
    completed: Box<dyn Fn(&str) -> Value>,
}

fn item_shape(item: &Item, id: usize, k: usize, output_index: usize) -> Option<ItemShape> {
    // The first item keeps the id a plain text reply always had.
    let suffix = if k == 0 {
        format!("{id}")
    } else {
        format!("{id}_{k}")
    };
    match item {
        Item::Pause(_) => None,
        Item::Message(_) => {
            let item_id = format!("msg_fake_{suffix}");
            let message = {
                let item_id = item_id.clone();
                move |status: &str, content: Value| {
                    json!({"id": item_id, "type": "message", "status": status,
                           "role": "assistant", "content": content})
                }
            };
            Some(ItemShape {
                added: message("in_progress", json!([])),
                delta_kind: "response.output_text.delta",
                done_kind: "response.output_text.done",
                done_key: "text",
                delta_fields: json!({"item_id": item_id, "output_index": output_index,
                                         "content_index": 0, "logprobs": []}),
                completed: Box::new(move |text| message("completed", json!([output_text(text)]))),
            })
        }
        Item::CustomToolCall { name, .. } => {
            let item_id = format!("ctc_fake_{suffix}");
            let call_id = format!("call_fake_{suffix}");
            let call = {
                let (item_id, call_id, name) = (item_id.clone(), call_id.clone(), name.clone());
                move |status: &str, input: &str| {
                    json!({"type": "custom_tool_call", "id": item_id, "status": status,
                           "call_id": call_id, "name": name, "input": input})
                }
            };
            let fields = json!({"item_id": item_id, "call_id": call_id,
                                "output_index": output_index});
            Some(ItemShape {
                added: call("in_progress", ""),
                delta_kind: "response.custom_tool_call_input.delta",
                done_kind: "response.custom_tool_call_input.done",
                done_key: "input",
                delta_fields: fields,
                completed: Box::new(move |input| call("completed", input)),
            })
        }
        Item::FunctionCall { name, .. } => {
            let item_id = format!("fc_fake_{suffix}");
            let call_id = format!("call_fake_{suffix}");
            let call = {
                let (item_id, call_id, name) = (item_id.clone(), call_id.clone(), name.clone());
                move |status: &str, arguments: &str| {
                    json!({"type": "function_call", "id": item_id, "status": status,
                           "call_id": call_id, "name": name, "arguments": arguments})
                }
            };
            let fields = json!({"item_id": item_id, "output_index": output_index});
            Some(ItemShape {
                added: call("in_progress", ""),
                delta_kind: "response.function_call_arguments.delta",
                done_kind: "response.function_call_arguments.done",
                done_key: "arguments",
                delta_fields: fields,
                completed: Box::new(move |arguments| call("completed", arguments)),
            })
        }
    }
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

/// The Responses stream of `items`: `response.created`, each item (added, deltas, done), then
/// `response.completed`, or the scripted ending once `limit` tokens have gone out.
fn responses_events(
    model: &str,
    id: usize,
    items: &[Item],
    limit: usize,
    ending: &Ending,
) -> Vec<Event> {
    let response_id = format!("resp_fake_{id}");
    let response = |status: &str, output: Value| {
        json!({
            "id": response_id, "object": "response", "created_at": 1_700_000_000u64,
            "status": status, "error": null, "incomplete_details": null,
            "model": model, "output": output, "usage": null,
        })
    };
    let mut w = ResponsesWriter {
        out: Vec::new(),
        seq: 0,
        pause: Duration::ZERO,
        tokens: 0,
    };
    w.push(
        "response.created",
        json!({"response": response("in_progress", json!([]))}),
        None,
    );
    w.push(
        "response.in_progress",
        json!({"response": response("in_progress", json!([]))}),
        None,
    );
    let cuts = matches!(ending, Ending::Truncate | Ending::Stall | Ending::Malformed);
    // A cut comes right after the last token it allows, before any closing event, also when
    // the reply has fewer tokens than that.
    let total: usize = items
        .iter()
        .map(|item| tokenize(item.streamed()).len())
        .sum();
    let limit = limit.min(total);
    let mut output = Vec::new();
    'items: for (k, item) in items.iter().enumerate() {
        if let Item::Pause(pause) = item {
            w.pause += *pause;
            continue;
        }
        let output_index = output.len();
        let Some(shape) = item_shape(item, id, k, output_index) else {
            continue;
        };
        w.push(
            "response.output_item.added",
            json!({"output_index": output_index, "item": shape.added}),
            None,
        );
        if matches!(item, Item::Message(_)) {
            w.push(
                "response.content_part.added",
                json!({"item_id": shape.added["id"], "output_index": output_index,
                       "content_index": 0, "part": output_text("")}),
                None,
            );
        }
        let mut sent = String::new();
        for token in tokenize(item.streamed()) {
            if cuts && w.tokens == limit {
                break 'items;
            }
            let mut data = shape.delta_fields.clone();
            data["delta"] = json!(token);
            let index = w.tokens;
            w.push(shape.delta_kind, data, Some(index));
            w.tokens += 1;
            sent.push_str(&token);
        }
        if cuts && w.tokens == limit {
            break;
        }
        let mut done = shape.delta_fields.clone();
        done[shape.done_key] = json!(sent);
        w.push(shape.done_kind, done, None);
        let completed = (shape.completed)(&sent);
        if matches!(item, Item::Message(_)) {
            w.push(
                "response.content_part.done",
                json!({"item_id": completed["id"], "output_index": output_index,
                       "content_index": 0, "part": output_text(&sent)}),
                None,
            );
        }
        w.push(
            "response.output_item.done",
            json!({"output_index": output_index, "item": completed.clone()}),
            None,
        );
        output.push(completed);
    }
    match ending {
        Ending::Complete => {
            let mut completed = response("completed", Value::Array(output));
            completed["usage"] = json!({
                "input_tokens": 0, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": w.tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": w.tokens,
            });
            w.push("response.completed", json!({"response": completed}), None);
        }
        Ending::Error(message) => w.push(
            "error",
            json!({"code": "server_error", "message": message, "param": null}),
            None,
        ),
        Ending::Overloaded => w.push(
            "error",
            json!({"code": "server_is_overloaded", "message": "Overloaded", "param": null}),
            None,
        ),
        Ending::Failed(message) => {
            let mut failed = response("failed", Value::Array(output));
            failed["error"] = json!({"code": "server_error", "message": message});
            w.push("response.failed", json!({"response": failed}), None);
        }
        Ending::Malformed => {
            let seq = w.seq;
            w.raw(
                format!(
                    "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"sequence_number\":{seq},\"delta\":\"cut\n\n"
                ),
                None,
            );
        }
        Ending::Truncate | Ending::Stall => {}
    }
    w.out
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

impl Drop for Generator {
    /// A body dropped with events left was abandoned by the client (hyper drops the body when
    /// the connection closes); a stalled body that sent everything counts too, since only the
    /// client can end it.
    fn drop(&mut self) {
        if !self.events.is_empty() || self.stall {
            let mut state = self.shared.lock();
            if let Some(request) = state.requests.get_mut(self.index) {
                request.aborted = true;
            }
        }
    }
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
        if let Some(front) = self.events.front_mut()
            && !front.pause.is_zero()
        {
            let pause = std::mem::take(&mut front.pause);
            tokio::time::sleep(pause).await;
            // The tokens after a pause keep their pace instead of catching up in a burst.
            if let Some(start) = &mut self.start {
                *start += pause;
            }
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
            // One token per frame; the events after the last token go with it. A pause starts
            // a new frame, so what came before it leaves first.
            if (event.token.is_some() && sent_token)
                || (!event.pause.is_zero() && !frame.is_empty())
            {
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

    /// The `data` objects of every SSE event in a raw response, with their `event:` names.
    fn sse_events(raw: &str) -> Vec<(String, Value)> {
        let (_, body) = raw.split_once("\r\n\r\n").expect("a body");
        body.split("\n\n")
            .filter_map(|block| {
                let kind = block
                    .lines()
                    .find_map(|line| line.strip_prefix("event: "))?;
                let data = block.lines().find_map(|line| line.strip_prefix("data: "))?;
                Some((
                    kind.to_string(),
                    serde_json::from_str(data).expect("JSON data"),
                ))
            })
            .collect()
    }

    /// Chunked transfer encoding splits frames with size lines; this test reads frames that
    /// each are one SSE block at least, so the sizes sit between blocks and are dropped.
    fn dechunk(raw: &str) -> String {
        let (head, body) = raw.split_once("\r\n\r\n").expect("a body");
        if !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return raw.to_string();
        }
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            if size == 0 {
                break;
            }
            out.push_str(&tail[..size]);
            rest = &tail[size + 2..];
        }
        format!("{head}\r\n\r\n{out}")
    }

    #[tokio::test]
    async fn responses_items_stream_message_patch_and_exec() {
        let fake = FakeModel::start().await;
        let patch = patch::wrap(&[
            patch::update("hello.txt", None, "hello", "hello, baton"),
            patch::add("notes/new.txt", "created"),
        ]);
        assert_eq!(
            patch,
            "*** Begin Patch\n*** Update File: hello.txt\n@@\n-hello\n+hello, baton\n\
             *** Add File: notes/new.txt\n+created\n*** End Patch\n"
        );
        fake.push(Reply::items(vec![
            Item::message("Editing now."),
            Item::apply_patch(patch.clone()),
            Item::exec("ls -la"),
        ]));
        let out = dechunk(&post(&fake, "/v1/responses", r#"{"model":"gpt-5.5"}"#).await);
        let events = sse_events(&out);
        let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
        // Every event carries its own type and a rising sequence number.
        for (i, (kind, data)) in events.iter().enumerate() {
            assert_eq!(data["type"], kind.as_str());
            assert_eq!(data["sequence_number"], i);
        }
        let done: Vec<&Value> = events
            .iter()
            .filter(|(kind, _)| kind == "response.output_item.done")
            .map(|(_, data)| data)
            .collect();
        assert_eq!(done.len(), 3);
        assert_eq!(done[0]["output_index"], 0);
        assert_eq!(done[0]["item"]["type"], "message");
        assert_eq!(done[0]["item"]["content"][0]["text"], "Editing now.");
        assert_eq!(done[1]["output_index"], 1);
        assert_eq!(done[1]["item"]["type"], "custom_tool_call");
        assert_eq!(done[1]["item"]["name"], "apply_patch");
        assert_eq!(done[1]["item"]["status"], "completed");
        assert_eq!(done[1]["item"]["input"], patch.as_str());
        let call_id = done[1]["item"]["call_id"].as_str().unwrap();
        assert!(call_id.starts_with("call_"));
        assert_eq!(done[2]["item"]["type"], "function_call");
        assert_eq!(done[2]["item"]["name"], "exec_command");
        // Arguments are a JSON string, not an object.
        let arguments = done[2]["item"]["arguments"].as_str().expect("a string");
        assert_eq!(
            serde_json::from_str::<Value>(arguments).unwrap(),
            json!({"cmd": "ls -la"})
        );
        assert_ne!(done[2]["item"]["call_id"], call_id);
        // The deltas of each item concatenate to its content.
        let concat = |kind: &str| -> String {
            events
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, data)| data["delta"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(concat("response.output_text.delta"), "Editing now.");
        assert_eq!(concat("response.custom_tool_call_input.delta"), patch);
        assert_eq!(concat("response.function_call_arguments.delta"), arguments);
        let patch_deltas = events
            .iter()
            .filter(|(k, _)| k == "response.custom_tool_call_input.delta")
            .map(|(_, data)| data)
            .collect::<Vec<_>>();
        assert!(patch_deltas.len() > 1);
        assert!(
            patch_deltas
                .iter()
                .all(|d| d["call_id"] == call_id && d["output_index"] == 1)
        );
        let position = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap();
        assert_eq!(position("response.created"), 0);
        assert!(
            position("response.custom_tool_call_input.done")
                < position("response.function_call_arguments.delta")
        );
        assert_eq!(*kinds.last().unwrap(), "response.completed");
        let completed = &events.last().unwrap().1["response"];
        assert_eq!(completed["status"], "completed");
        assert_eq!(completed["output"].as_array().unwrap().len(), 3);
        assert_eq!(completed["output"][1], done[1]["item"]);
        let request = &fake.requests()[0];
        assert_eq!(
            request.tokens_sent,
            tokenize("Editing now.").len() + tokenize(&patch).len() + tokenize(arguments).len()
        );
    }

    #[tokio::test]
    async fn tool_outputs_come_back_in_the_next_request() {
        let fake = FakeModel::start().await;
        fake.push(Reply::items(vec![Item::exec("true")]));
        fake.push(Reply::items(vec![Item::message("done")]));
        post(&fake, "/v1/responses", "{}").await;
        let second = r#"{"input":[{"type":"message","role":"user","content":[]},
            {"type":"function_call","call_id":"call_fake_1","name":"exec_command","arguments":"{}"},
            {"type":"function_call_output","call_id":"call_fake_1","output":"ok"}]}"#;
        let out = dechunk(&post(&fake, "/v1/responses", second).await);
        assert!(out.contains("\"text\":\"done\""));
        let requests = fake.requests();
        let outputs = requests[1].input_items("function_call_output");
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0]["output"], "ok");
        assert!(requests[0].input_items("function_call_output").is_empty());
        // A message-only items reply also serves the chat format as its text.
        fake.push(Reply::items(vec![
            Item::message("a "),
            Item::exec("x"),
            Item::message("b"),
        ]));
        let out = post(&fake, "/v1/chat/completions", "{}").await;
        assert!(out.contains("\"content\":\"a\"") && out.contains("\"content\":\" b\""));
        assert!(!out.contains("exec_command"));
    }

    #[tokio::test]
    async fn responses_failures() {
        let fake = FakeModel::start().await;
        // response.failed after the items instead of response.completed.
        fake.push(
            Reply::items(vec![Item::message("partial")])
                .fault(Fault::ResponseFailed("boom".into())),
        );
        let out = dechunk(&post(&fake, "/v1/responses", "{}").await);
        let events = sse_events(&out);
        let (kind, data) = events.last().unwrap();
        assert_eq!(kind, "response.failed");
        assert_eq!(data["response"]["status"], "failed");
        assert_eq!(data["response"]["error"]["message"], "boom");
        assert!(!out.contains("response.completed"));

        // A stream cut in the middle of the patch: no done item, no completion.
        let patch = patch::wrap(&[patch::add("a.txt", "one two three four")]);
        fake.push(
            Reply::items(vec![Item::message("hi"), Item::apply_patch(patch)])
                .fault(Fault::TruncateAfter(3)),
        );
        let out = dechunk(&post(&fake, "/v1/responses", "{}").await);
        let events = sse_events(&out);
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == "response.custom_tool_call_input.delta")
                .count(),
            2
        );
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == "response.output_item.done")
                .count(),
            1
        );
        assert_eq!(
            *kinds.last().unwrap(),
            "response.custom_tool_call_input.delta"
        );
        assert_eq!(fake.requests()[1].tokens_sent, 3);

        // A cut allowing more tokens than the reply has comes after its last token.
        fake.push(Reply::text("hi").fault(Fault::TruncateAfter(5)));
        let out = dechunk(&post(&fake, "/v1/responses", "{}").await);
        let kinds: Vec<String> = sse_events(&out).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds.last().unwrap(), "response.output_text.delta");
        assert!(!kinds.iter().any(|k| k == "response.output_item.done"));

        // HTTP 500 for an items script too.
        fake.push(Reply::status(500, "fake internal error"));
        let out = post(&fake, "/v1/responses", "{}").await;
        assert!(out.starts_with("HTTP/1.1 500"));
        assert_eq!(fake.requests().len(), 4);
        assert!(out.contains("fake internal error"));

        // An empty stream with scripted items has no items at all.
        fake.push(Reply::items(vec![Item::message("x")]).fault(Fault::EmptyStream));
        let out = dechunk(&post(&fake, "/v1/responses", "{}").await);
        let events = sse_events(&out);
        assert_eq!(events.last().unwrap().0, "response.completed");
        assert_eq!(events.last().unwrap().1["response"]["output"], json!([]));
    }

    #[tokio::test]
    async fn pauses_hold_the_stream_between_items() {
        let fake = FakeModel::start().await;
        fake.push(Reply::items(vec![
            Item::message("before"),
            Item::pause(Duration::from_millis(300)),
            Item::message("after"),
        ]));
        let addr = fake.addr();
        let started = Instant::now();
        let reader = tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"POST /v1/responses HTTP/1.1\r\nhost: f\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .unwrap();
            let mut seen = String::new();
            let mut buffer = [0u8; 4096];
            let mut first_at = None;
            loop {
                let n = stream.read(&mut buffer).await.unwrap();
                if n == 0 {
                    break;
                }
                seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
                if first_at.is_none() && seen.contains("\"before\"") {
                    first_at = Some(Instant::now());
                }
                if seen.contains("response.completed") {
                    break;
                }
            }
            (first_at.unwrap(), Instant::now())
        });
        let (first_at, done_at) = reader.await.unwrap();
        assert!(
            first_at - started < Duration::from_millis(250),
            "{:?}",
            first_at - started
        );
        assert!(
            done_at - first_at >= Duration::from_millis(290),
            "{:?}",
            done_at - first_at
        );
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
