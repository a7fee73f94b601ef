//! What can go wrong when asking a model, and how to say it to a user.

use std::time::Duration;

/// The phases a [`ModelError::Timeout`] names.
pub mod phase {
    /// Opening the connection to the model server.
    pub const CONNECT: &str = "connect";
    /// From the request being sent to the first byte of the answer's body.
    pub const FIRST_TOKEN: &str = "first token";
    /// A gap between two chunks of the answer longer than `idle_timeout`.
    pub const IDLE: &str = "idle";
}

/// Everything a provider can fail with. Details are short and come from the server's error
/// body or the transport; the API key never appears in them (it is scrubbed if a server
/// echoes it back).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("the API key variable {env} is not set")]
    MissingKey { env: String },
    #[error("unauthorized ({status}): {detail}")]
    Unauthorized { status: u16, detail: String },
    #[error("model {model:?} not found: {detail}")]
    ModelNotFound { model: String, detail: String },
    #[error("rate limited{}", retry_after_suffix(retry_after))]
    RateLimited { retry_after: Option<Duration> },
    #[error("server error ({status}): {detail}")]
    Server { status: u16, detail: String },
    #[error("bad request ({status}): {detail}")]
    BadRequest { status: u16, detail: String },
    #[error("could not connect: {detail}")]
    Connect { detail: String },
    #[error("timed out in phase {phase:?}")]
    Timeout { phase: &'static str },
    #[error("malformed event stream: {detail}")]
    Malformed { detail: String },
    #[error("the answer was cut off before it was complete")]
    Truncated,
    #[error("the model answered with no text")]
    EmptyAnswer,
    #[error("the provider reported an error: {detail}")]
    ProviderError { detail: String },
}

fn retry_after_suffix(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {})", seconds(*d)),
        None => String::new(),
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

fn status_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "",
    }
}

fn status_line(status: u16) -> String {
    match status_reason(status) {
        "" => status.to_string(),
        reason => format!("{status} {reason}"),
    }
}

/// `": detail"`, or nothing for an empty detail.
fn colon(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl ModelError {
    /// One sentence a user can act on. Never contains the API key.
    pub fn user_message(&self) -> String {
        match self {
            ModelError::MissingKey { env } => format!(
                "{env} is not set: export it, or point this model at a local server that needs no key"
            ),
            ModelError::Unauthorized { status, detail } => format!(
                "the model answered {}{}: check the API key and that it may use this model",
                status_line(*status),
                colon(detail)
            ),
            ModelError::ModelNotFound { model, detail } => format!(
                "the model server has no model \"{model}\" (404{}): check the model name and base_url",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            ),
            ModelError::RateLimited { retry_after } => match retry_after {
                Some(d) => format!(
                    "the model is rate limited (429 Too Many Requests): try again in {}",
                    seconds(*d)
                ),
                None => "the model is rate limited (429 Too Many Requests): wait a moment and try again"
                    .to_string(),
            },
            ModelError::Server { status, detail } => format!(
                "the model server failed with {}{}: try again later",
                status_line(*status),
                colon(detail)
            ),
            ModelError::BadRequest { status: 0, detail } => format!(
                "the model request could not be made{}: check the model settings",
                colon(detail)
            ),
            ModelError::BadRequest { status, detail } => format!(
                "the model server rejected the request with {}{}: check the model settings (provider, model, max_output_tokens)",
                status_line(*status),
                colon(detail)
            ),
            ModelError::Connect { detail } => format!(
                "could not reach the model server{}: check base_url and that the server is running",
                colon(detail)
            ),
            ModelError::Timeout { phase } => match *phase {
                phase::CONNECT => {
                    "connecting to the model server timed out: check base_url and the network"
                        .to_string()
                }
                phase::FIRST_TOKEN => "the model did not start answering within first_token_timeout: the server may be busy or still loading the model; try again or raise the timeout".to_string(),
                phase::IDLE => "the model stopped sending in the middle of its answer (idle_timeout passed): try again".to_string(),
                other => format!("the model request timed out ({other}): try again"),
            },
            ModelError::Malformed { detail } => format!(
                "the model server sent a stream baton cannot read{}: check that the provider setting matches the server's API",
                colon(detail)
            ),
            ModelError::Truncated => {
                "the connection ended before the model finished its answer: try again".to_string()
            }
            ModelError::EmptyAnswer => {
                "the model answered with no text: try again, or use another model".to_string()
            }
            ModelError::ProviderError { detail } => format!(
                "the model provider reported an error{}: try again later",
                colon(detail)
            ),
        }
    }

    /// Whether a new attempt may succeed: rate limits, server errors, connection failures
    /// and timeouts. Only ever acted on before the first token reached the caller.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ModelError::RateLimited { .. }
                | ModelError::Server { .. }
                | ModelError::Connect { .. }
                | ModelError::Timeout { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_to_do() {
        let m = ModelError::MissingKey {
            env: "OPENAI_API_KEY".into(),
        }
        .user_message();
        assert!(m.starts_with("OPENAI_API_KEY is not set: export it"), "{m}");
        let m = ModelError::Unauthorized {
            status: 401,
            detail: "bad key (key read from OPENAI_API_KEY)".into(),
        }
        .user_message();
        assert!(m.contains("401 Unauthorized"), "{m}");
        assert!(m.contains("OPENAI_API_KEY"), "{m}");
        let m = ModelError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        }
        .user_message();
        assert!(m.contains("try again in 2 s"), "{m}");
        let m = ModelError::Timeout {
            phase: phase::FIRST_TOKEN,
        }
        .user_message();
        assert!(m.contains("first_token_timeout"), "{m}");
    }
}
