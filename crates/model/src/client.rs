//! The one HTTP provider behind [`Provider`]: send, retry, read the event stream.
//!
//! `Provider::stream` resolves once the first text token has arrived (or the answer turned
//! out empty). Everything before that point is retried when transient; from the first token
//! on, nothing is: errors then arrive as the stream's last item.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::time::Instant;

use crate::sse::{SseEvent, SseParser};
use crate::wire::{self, Decoder, Step};
use crate::{ModelError, ModelRequest, ModelSettings, Provider, TokenStream, phase};

/// The first wait between attempts; it doubles on each further attempt.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// The longest wait between attempts without a `Retry-After`.
const BACKOFF_MAX: Duration = Duration::from_secs(4);
/// The longest `Retry-After` honoured.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(10);
/// How much of an error body is read for its message.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

pub(crate) struct HttpProvider {
    settings: Arc<ModelSettings>,
    http: reqwest::Client,
    url: reqwest::Url,
}

impl HttpProvider {
    pub fn new(settings: ModelSettings, http: reqwest::Client) -> Result<HttpProvider, ModelError> {
        let url = endpoint_url(&settings)?;
        read_key(&settings)?;
        Ok(HttpProvider {
            settings: Arc::new(settings),
            http,
            url,
        })
    }
}

impl Provider for HttpProvider {
    fn stream(&self, request: ModelRequest) -> BoxFuture<'static, Result<TokenStream, ModelError>> {
        let settings = self.settings.clone();
        let http = self.http.clone();
        let url = self.url.clone();
        open(settings, http, url, request).boxed()
    }
}

/// `{base_url}{endpoint}`, checked to be an http(s) URL.
pub(crate) fn endpoint_url(settings: &ModelSettings) -> Result<reqwest::Url, ModelError> {
    let base = settings.base_url.trim().trim_end_matches('/');
    let invalid = |why: String| ModelError::BadRequest {
        status: 0,
        detail: format!("base_url {:?} {why}", settings.base_url),
    };
    // Checked before the endpoint is appended: "http://" + "/messages" would parse.
    let parsed =
        reqwest::Url::parse(base).map_err(|e| invalid(format!("is not a valid URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("is not an http or https URL".to_string()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host".to_string()));
    }
    reqwest::Url::parse(&format!("{base}{}", wire::endpoint(settings.provider)))
        .map_err(|e| invalid(format!("is not a valid URL: {e}")))
}

/// The key from the configured variable, read now; `None` when no key is configured.
pub(crate) fn read_key(settings: &ModelSettings) -> Result<Option<String>, ModelError> {
    let Some(env) = &settings.api_key_env else {
        return Ok(None);
    };
    match std::env::var(env) {
        Ok(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_string())),
        _ => Err(ModelError::MissingKey { env: env.clone() }),
    }
}

async fn open(
    settings: Arc<ModelSettings>,
    http: reqwest::Client,
    url: reqwest::Url,
    request: ModelRequest,
) -> Result<TokenStream, ModelError> {
    let key = read_key(&settings)?;
    let mut headers = wire::headers(settings.provider, key.as_deref())?;
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&wire::request_body(&settings, &request))
        .expect("a JSON value serializes");
    let exchange = Exchange {
        settings: &settings,
        http: &http,
        url: &url,
        headers: &headers,
        body: &body,
        key: key.as_deref(),
    };
    let mut retries = 0;
    loop {
        tracing::debug!(
            provider = settings.provider.as_str(),
            model = %settings.model,
            url = %url,
            attempt = retries + 1,
            "model request"
        );
        match exchange.attempt().await {
            Ok(stream) => return Ok(stream),
            Err(error) if error.is_transient() && retries < settings.max_retries => {
                let wait = backoff(retries, &error);
                tracing::debug!(%error, ?wait, "model request failed before any token; retrying");
                tokio::time::sleep(wait).await;
                retries += 1;
            }
            Err(error) => {
                tracing::debug!(%error, attempts = retries + 1, "model request failed");
                return Err(error);
            }
        }
    }
}

fn backoff(retries: u32, error: &ModelError) -> Duration {
    if let ModelError::RateLimited {
        retry_after: Some(after),
    } = error
    {
        return (*after).min(RETRY_AFTER_CAP);
    }
    BACKOFF_BASE
        .saturating_mul(1u32.checked_shl(retries).unwrap_or(u32::MAX))
        .min(BACKOFF_MAX)
}

/// Everything one request needs, shared by its attempts.
struct Exchange<'a> {
    settings: &'a ModelSettings,
    http: &'a reqwest::Client,
    url: &'a reqwest::Url,
    headers: &'a HeaderMap,
    body: &'a [u8],
    key: Option<&'a str>,
}

impl Exchange<'_> {
    /// One attempt, up to the first token.
    async fn attempt(&self) -> Result<TokenStream, ModelError> {
        // From sending the request to the first byte of the body. The connection is opened
        // inside `send`, so the connect budget is part of this wait; the client's own
        // connect timeout (see `http_client`) reports a connect that hangs.
        let deadline =
            Instant::now() + self.settings.connect_timeout + self.settings.first_token_timeout;
        let send = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(self.body.to_vec())
            .send();
        let response = match tokio::time::timeout_at(deadline, send).await {
            Err(_) => {
                return Err(ModelError::Timeout {
                    phase: phase::FIRST_TOKEN,
                });
            }
            Ok(Err(error)) => return Err(send_error(&error, self.key)),
            Ok(Ok(response)) => response,
        };
        if !response.status().is_success() {
            return Err(self.status_error(response).await);
        }
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if is_json {
            let body = read_limited(response, self.settings.idle_timeout).await;
            return Err(ModelError::Malformed {
                detail: format!(
                    "expected an event stream but the server answered with JSON: {}",
                    redact(&wire::excerpt(&body), self.key)
                ),
            });
        }

        let mut reader = Reader::new(
            response.bytes_stream().boxed(),
            Decoder::new(self.settings.provider),
            self.settings.idle_timeout,
            deadline,
        );
        match reader.next().await {
            Some(Ok(first)) => Ok(reader.into_stream(first)),
            // The answer completed without text: not an error of the exchange, so it is the
            // stream's one and last item.
            Some(Err(ModelError::EmptyAnswer)) => {
                Ok(futures::stream::iter([Err(ModelError::EmptyAnswer)]).boxed())
            }
            Some(Err(error)) => Err(error),
            // A reader yields text or an error before it ends; should that ever change, an
            // answer that stopped without either is best reported as cut off.
            None => Err(ModelError::Truncated),
        }
    }

    async fn status_error(&self, response: reqwest::Response) -> ModelError {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = read_limited(response, self.settings.idle_timeout).await;
        let (message, code) = match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(value) => (
                wire::error_message(&value),
                value
                    .pointer("/error/code")
                    .or_else(|| value.pointer("/error/type"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
            ),
            Err(_) => (None, None),
        };
        let detail = redact(&message.unwrap_or_else(|| wire::excerpt(&body)), self.key);
        tracing::debug!(status, %detail, "model server answered with an error");
        match status {
            401 | 403 => {
                let hint = match &self.settings.api_key_env {
                    Some(env) => format!("key read from {env}"),
                    None => "no API key is configured (api_key_env)".to_string(),
                };
                ModelError::Unauthorized {
                    status,
                    detail: if detail.is_empty() {
                        hint
                    } else {
                        format!("{detail}; {hint}")
                    },
                }
            }
            404 => ModelError::ModelNotFound {
                model: self.settings.model.clone(),
                detail,
            },
            // OpenAI answers 429 when the account is out of credit: waiting will not help.
            429 if code.as_deref() == Some("insufficient_quota") => {
                ModelError::BadRequest { status, detail }
            }
            429 => ModelError::RateLimited { retry_after },
            500..=599 => ModelError::Server { status, detail },
            _ => ModelError::BadRequest { status, detail },
        }
    }
}

/// `Retry-After` in seconds, or OpenAI's `retry-after-ms`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    number("retry-after").map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// Up to [`ERROR_BODY_LIMIT`] bytes of the body, as text; whatever arrived if it stalls.
async fn read_limited(response: reqwest::Response, wait: Duration) -> String {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    let read = async {
        while let Some(Ok(chunk)) = chunks.next().await {
            body.extend_from_slice(&chunk);
            if body.len() >= ERROR_BODY_LIMIT {
                body.truncate(ERROR_BODY_LIMIT);
                break;
            }
        }
    };
    let _ = tokio::time::timeout(wait, read).await;
    String::from_utf8_lossy(&body).into_owned()
}

fn send_error(error: &reqwest::Error, key: Option<&str>) -> ModelError {
    if error.is_timeout() {
        return ModelError::Timeout {
            phase: if error.is_connect() {
                phase::CONNECT
            } else {
                phase::FIRST_TOKEN
            },
        };
    }
    // The innermost cause says what happened ("Connection refused (os error 111)").
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let place = error
        .url()
        .map(|u| format!("{}://{}{}", u.scheme(), u.authority(), u.path()))
        .unwrap_or_default();
    let detail = if place.is_empty() {
        cause.to_string()
    } else {
        format!("{place}: {cause}")
    };
    ModelError::Connect {
        detail: redact(&detail, key),
    }
}

/// `text` with every occurrence of the key replaced.
fn redact(text: &str, key: Option<&str>) -> String {
    match key {
        Some(key) if key.len() >= 4 => text.replace(key, "[redacted]"),
        _ => text.to_string(),
    }
}

/// The most text one batch holds; a larger backlog is handed out in several batches.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// The longest a batch is read for once its first chunk is in.
const MAX_BATCH_READING: Duration = Duration::from_millis(1);

/// Reads one answer's body: bytes in, text out in batches: each batch holds everything the
/// connection held when it was read, so a reader that fell behind catches up in one step.
///
/// It does not rest between batches to let tokens gather: every segment that arrives wakes the
/// server's event loop anyway (the connection's socket stays registered with it), so a rest
/// would add a timer's wakeup to each batch and save none (measured with `cargo xtask
/// bench-edit`: more context switches per token, not fewer).
/// Crate-visible so the SSE fuzz (`tests/fuzz_sse.rs`) can drive it with a scripted body.
pub(crate) struct Reader {
    body: Option<BoxStream<'static, reqwest::Result<bytes::Bytes>>>,
    parser: SseParser,
    decoder: Decoder,
    /// Text decoded and not handed out yet.
    text: String,
    /// The error that ends the answer, handed out after `text`.
    error: Option<ModelError>,
    /// Nothing more is read: `text` and `error` are the last items.
    ended: bool,
    text_seen: bool,
    idle: Duration,
    /// The deadline of the body's first byte, until it has arrived.
    first_byte_deadline: Option<Instant>,
    /// When the last chunk arrived: the idle timeout runs from here.
    last_chunk: Instant,
    /// The idle timeout's timer, made once and moved on only when it fires early (a chunk came
    /// since it was set): a timer made for every chunk would cost a timer per token.
    idle_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Reader {
    pub(crate) fn new(
        body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
        decoder: Decoder,
        idle: Duration,
        first_byte_deadline: Instant,
    ) -> Reader {
        Reader {
            body: Some(body),
            parser: SseParser::new(),
            decoder,
            text: String::new(),
            error: None,
            ended: false,
            text_seen: false,
            idle,
            first_byte_deadline: Some(first_byte_deadline),
            last_chunk: first_byte_deadline,
            idle_timer: None,
        }
    }

    /// The next batch of text, or the error that ends the answer; `None` once it is complete.
    ///
    /// Cancel-safe: text read by a call that is dropped is handed out by the next call.
    pub(crate) async fn next(&mut self) -> Option<Result<String, ModelError>> {
        while !self.ended && self.text.is_empty() {
            self.read_chunk().await;
        }
        self.read_buffered().await;
        if !self.text.is_empty() {
            return Some(Ok(std::mem::take(&mut self.text)));
        }
        self.error.take().map(Err)
    }

    /// Polls the body once with this task's waker: `None` when nothing is ready.
    async fn poll_body_once(&mut self) -> Option<Option<reqwest::Result<bytes::Bytes>>> {
        let body = self.body.as_mut()?;
        futures::future::poll_fn(|context| {
            std::task::Poll::Ready(match body.poll_next_unpin(context) {
                std::task::Poll::Ready(item) => Some(item),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    /// Waits for the next chunk of the body (within the first-byte or idle timeout) and
    /// decodes it.
    async fn read_chunk(&mut self) {
        let Some(body) = self.body.as_mut() else {
            // Only an ended reader drops its body; should that change, say the answer stopped.
            self.fail(ModelError::Truncated);
            return;
        };
        let read = match self.first_byte_deadline.take() {
            Some(deadline) => tokio::time::timeout_at(deadline, body.next())
                .await
                .map_err(|_| phase::FIRST_TOKEN),
            None => {
                let due = self.last_chunk + self.idle;
                let timer = self
                    .idle_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                loop {
                    tokio::select! {
                        biased;
                        item = body.next() => break Ok(item),
                        () = timer.as_mut() => {
                            let due = self.last_chunk + self.idle;
                            if Instant::now() >= due {
                                break Err(phase::IDLE);
                            }
                            timer.as_mut().reset(due);
                        }
                    }
                }
            }
        };
        self.last_chunk = Instant::now();
        match read {
            Err(phase) => self.fail(ModelError::Timeout { phase }),
            Ok(item) => self.take(item),
        }
    }

    /// Takes every chunk the connection already holds, without waiting for the network. The
    /// connection hands the body over one chunk at a time and reads on only when asked: when
    /// the body has nothing ready, asking registered the wish, and the connection's task gets
    /// one turn to pass on what it holds; nothing after that turn means it holds nothing more.
    ///
    /// Bounded by size and by time: text that keeps arriving while the batch is read (a slow
    /// machine, a fast model) must not hold the batch back.
    async fn read_buffered(&mut self) {
        let stop = Instant::now() + MAX_BATCH_READING;
        let mut turn_given = false;
        while !self.ended && self.text.len() < MAX_BATCH_BYTES && Instant::now() < stop {
            match self.poll_body_once().await {
                Some(item) => {
                    self.take(item);
                    turn_given = false;
                }
                None if turn_given || self.body.is_none() => break,
                None => {
                    tokio::task::yield_now().await;
                    turn_given = true;
                }
            }
        }
    }

    /// One item of the body: a chunk, its failure, or its end.
    fn take(&mut self, item: Option<reqwest::Result<bytes::Bytes>>) {
        match item {
            Some(Ok(chunk)) => {
                let Reader {
                    parser,
                    decoder,
                    text,
                    ..
                } = self;
                let mut outcome = Decoded::default();
                let parsed = parser.feed(chunk.as_ref(), &mut |event| {
                    outcome.event(decoder, event, text)
                });
                self.after_parse(outcome, parsed);
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "model answer body failed");
                self.fail(ModelError::Truncated);
            }
            None => {
                let Reader {
                    parser,
                    decoder,
                    text,
                    ..
                } = self;
                let mut outcome = Decoded::default();
                let parsed = parser.finish(&mut |event| outcome.event(decoder, event, text));
                self.after_parse(outcome, parsed);
                if !self.ended {
                    if self.decoder.complete_at_eof() {
                        self.complete();
                    } else {
                        self.fail(ModelError::Truncated);
                    }
                }
            }
        }
    }

    fn after_parse(&mut self, outcome: Decoded, parsed: Result<(), ModelError>) {
        self.text_seen |= outcome.text_seen;
        match outcome.end {
            Some(Ok(())) => self.complete(),
            Some(Err(error)) => self.fail(error),
            None => {
                if let Err(error) = parsed {
                    self.fail(error);
                }
            }
        }
    }

    fn fail(&mut self, error: ModelError) {
        if self.ended {
            return;
        }
        self.error = Some(error);
        self.ended = true;
        // Dropping the body closes the connection.
        self.body = None;
    }

    fn complete(&mut self) {
        if self.ended {
            return;
        }
        if !self.text_seen {
            self.error = Some(ModelError::EmptyAnswer);
        }
        self.ended = true;
        // Read the rest (normally just the end of the chunked body) in the background so the
        // connection goes back to the pool instead of being closed.
        if let (Some(mut body), Ok(runtime)) =
            (self.body.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move {
                let drain = async { while let Some(Ok(_)) = body.next().await {} };
                let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
            });
        }
    }

    fn into_stream(self, first: String) -> TokenStream {
        let rest = futures::stream::unfold(self, |mut reader| async move {
            let item = reader.next().await?;
            Some((item, reader))
        });
        futures::stream::once(async move { Ok(first) })
            .chain(rest)
            .fuse()
            .boxed()
    }
}

/// What the events of one chunk said, collected while the parser holds the chunk.
#[derive(Default)]
struct Decoded {
    text_seen: bool,
    /// The answer completed (`Ok`) or failed; events after that are ignored.
    end: Option<Result<(), ModelError>>,
}

impl Decoded {
    fn event(&mut self, decoder: &mut Decoder, event: &SseEvent, text: &mut String) {
        if self.end.is_some() {
            return;
        }
        match decoder.on_event(event) {
            Ok(Step::Text(delta)) => {
                self.text_seen = true;
                text.push_str(&delta);
            }
            Ok(Step::Done) => self.end = Some(Ok(())),
            Ok(Step::Skip) => {}
            Err(error) => self.end = Some(Err(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let server = ModelError::Server {
            status: 500,
            detail: String::new(),
        };
        assert_eq!(backoff(0, &server), Duration::from_millis(250));
        assert_eq!(backoff(1, &server), Duration::from_millis(500));
        assert_eq!(backoff(2, &server), Duration::from_secs(1));
        assert_eq!(backoff(10, &server), BACKOFF_MAX);
        assert_eq!(backoff(40, &server), BACKOFF_MAX);
        let limited = |s| ModelError::RateLimited {
            retry_after: Some(Duration::from_secs(s)),
        };
        assert_eq!(backoff(0, &limited(3)), Duration::from_secs(3));
        assert_eq!(backoff(0, &limited(600)), RETRY_AFTER_CAP);
    }

    #[test]
    fn retry_after_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        headers.remove("retry-after-ms");
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("bad key sk-secret-123 given", Some("sk-secret-123")),
            "bad key [redacted] given"
        );
        assert_eq!(redact("abc", None), "abc");
    }
}
