//! LLM providers behind one trait.
//!
//! baton talks to four streaming APIs: OpenAI's Responses API (`openai`), the
//! OpenAI-compatible chat completions API that Ollama, llama.cpp and most local servers speak
//! (`openai-chat`), Anthropic's Messages API (`anthropic`), and the OpenAI-compatible legacy
//! completions API with fill-in-the-middle (`openai-fim`: `prompt` + `suffix`, which Ollama,
//! llama.cpp, vLLM, Codestral and DeepSeek serve). [`provider`] builds a
//! [`Provider`] for one [`ModelSettings`]; [`Provider::stream`] sends one request and yields
//! the answer's text as it arrives.
//!
//! # What a caller sees
//!
//! - The future from [`Provider::stream`] resolves once the first text token has arrived.
//!   Until then transient failures (429, 5xx, connection errors, timeouts) are retried with
//!   exponential backoff, at most `max_retries` times; when they run out, or on any other
//!   failure before the first token, the future fails.
//! - The [`TokenStream`] then yields the answer's text in batches: each item holds every delta
//!   the connection held when the body was read (one token when the reader keeps up, all of
//!   them at once when it fell behind). Nothing is retried once a token was yielded: a failure (idle timeout, truncation, a provider's
//!   error event, a malformed event) is the stream's last item. An answer that completes
//!   with no text at all resolves to a stream whose one item is [`ModelError::EmptyAnswer`].
//! - Dropping the future or the stream cancels the request and closes its connection.
//!
//! # Keys
//!
//! Only the name of the variable holding a key is configured; the key is read from the
//! environment for each request, sent in a header marked sensitive, and scrubbed from any
//! error text a server echoes it in. No `Debug` output contains it.

mod client;
mod error;
mod sse;
mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

pub use error::{ModelError, phase};

/// Which wire format a model speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// OpenAI Responses API: `POST {base_url}/responses`.
    Openai,
    /// OpenAI-compatible chat completions: `POST {base_url}/chat/completions`.
    OpenaiChat,
    /// Anthropic Messages API: `POST {base_url}/messages`.
    Anthropic,
    /// OpenAI-compatible fill-in-the-middle completions: `POST {base_url}/completions` with
    /// `prompt` (the text before the cursor) and `suffix` (the text after it).
    OpenaiFim,
}

impl ProviderKind {
    /// The name used in configuration: `openai`, `openai-chat`, `anthropic` or `openai-fim`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiChat => "openai-chat",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenaiFim => "openai-fim",
        }
    }

    /// The provider's own endpoint (for `openai-chat`, a local Ollama).
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::Openai => "https://api.openai.com/v1",
            ProviderKind::OpenaiChat | ProviderKind::OpenaiFim => "http://127.0.0.1:11434/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com/v1",
        }
    }

    /// The variable the provider's own tools read the key from (none for local servers).
    pub fn default_api_key_env(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("OPENAI_API_KEY"),
            ProviderKind::OpenaiChat | ProviderKind::OpenaiFim => None,
            ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach one model.
#[derive(Clone, Debug)]
pub struct ModelSettings {
    pub provider: ProviderKind,
    pub model: String,
    /// e.g. `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// The name of the variable holding the key; `None` sends no key (local servers).
    pub api_key_env: Option<String>,
    pub max_output_tokens: u32,
    pub connect_timeout: Duration,
    /// From the request being sent to the first byte of the answer's body. The connection
    /// is opened as the request is sent, so the whole wait before the first byte is bounded
    /// by `connect_timeout + first_token_timeout`.
    pub first_token_timeout: Duration,
    /// The longest gap allowed between two chunks of the answer.
    pub idle_timeout: Duration,
    /// Further attempts after a transient failure before the first token.
    pub max_retries: u32,
}

impl ModelSettings {
    /// Settings with the provider's default key variable and these defaults:
    /// 4096 output tokens, connect 10 s, first token 60 s, idle 30 s, 2 retries.
    pub fn new(
        provider: ProviderKind,
        model: impl Into<String>,
        base_url: impl Into<String>,
    ) -> ModelSettings {
        ModelSettings {
            provider,
            model: model.into(),
            base_url: base_url.into(),
            api_key_env: provider.default_api_key_env().map(str::to_string),
            max_output_tokens: 4096,
            connect_timeout: Duration::from_secs(10),
            first_token_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            max_retries: 2,
        }
    }
}

/// One request: a system prompt and one user message.
///
/// A fill-in-the-middle provider (`openai-fim`) has no roles: it sends `user` as the `prompt`
/// (the text before the cursor) and `suffix` as the text after it, and ignores `system`. The
/// chat providers ignore `suffix`.
#[derive(Clone, Debug, Default)]
pub struct ModelRequest {
    pub system: String,
    pub user: String,
    pub suffix: Option<String>,
}

/// The answer's text in order, in batches of deltas (never empty); an error is always the last
/// item.
pub type TokenStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<String, ModelError>> + Send>>;

/// One trait for all providers.
pub trait Provider: Send + Sync {
    /// Sends the request; resolves once the first token arrived (see the crate docs).
    fn stream(
        &self,
        request: ModelRequest,
    ) -> futures::future::BoxFuture<'static, Result<TokenStream, ModelError>>;
}

/// A provider for these settings, sharing `http`'s connection pool.
///
/// Fails with [`ModelError::MissingKey`] when `api_key_env` names a variable that is unset
/// or empty, and with [`ModelError::BadRequest`] (status 0) when `base_url` is not an
/// http(s) URL.
pub fn provider(
    settings: &ModelSettings,
    http: reqwest::Client,
) -> Result<Arc<dyn Provider>, ModelError> {
    Ok(Arc::new(client::HttpProvider::new(settings.clone(), http)?))
}

/// The connect timeout of [`http_client`]'s connections.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the HTTP client to share between providers: call it once and clone the result
/// (clones share one connection pool). Connections time out after
/// [`DEFAULT_CONNECT_TIMEOUT`]; each request also bounds connect + first byte by
/// `connect_timeout + first_token_timeout` of its settings.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds with the bundled TLS roots")
}

/// Whether a model can be asked at all, without asking it (for `baton doctor`): the key
/// variable is set, `base_url` is an http(s) URL, a model is named.
pub fn check_usable(settings: &ModelSettings) -> Result<(), ModelError> {
    client::endpoint_url(settings)?;
    client::read_key(settings)?;
    if settings.model.trim().is_empty() {
        return Err(ModelError::BadRequest {
            status: 0,
            detail: "no model name is configured".to_string(),
        });
    }
    Ok(())
}
