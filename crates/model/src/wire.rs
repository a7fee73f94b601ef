//! The three wire formats: request bodies, auth headers, and decoding of stream events.
//!
//! A text event (one per token) is decoded on a fast path: a typed view that borrows the text
//! from the event's data, so a token costs no JSON tree and no allocation unless its text has
//! escapes. Every other event, and any text event the typed view does not accept, goes the
//! general way through a [`Value`], which decides what it means and how it fails.

use std::borrow::Cow;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use crate::sse::SseEvent;
use crate::{ModelError, ModelRequest, ModelSettings, ProviderKind};

/// The path appended to `base_url`.
pub(crate) fn endpoint(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Openai => "/responses",
        ProviderKind::OpenaiChat => "/chat/completions",
        ProviderKind::Anthropic => "/messages",
        ProviderKind::OpenaiFim => "/completions",
    }
}

pub(crate) fn request_body(settings: &ModelSettings, request: &ModelRequest) -> Value {
    match settings.provider {
        ProviderKind::Openai => json!({
            "model": settings.model,
            "instructions": request.system,
            "input": [{"role": "user", "content": request.user}],
            "stream": true,
            "max_output_tokens": settings.max_output_tokens,
            // Code sent from an editor is not kept on the provider's side.
            "store": false,
        }),
        ProviderKind::OpenaiChat => json!({
            "model": settings.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "stream": true,
            "max_tokens": settings.max_output_tokens,
        }),
        ProviderKind::OpenaiFim => json!({
            "model": settings.model,
            "prompt": request.user,
            "suffix": request.suffix.as_deref().unwrap_or(""),
            "stream": true,
            "max_tokens": settings.max_output_tokens,
        }),
        ProviderKind::Anthropic => json!({
            "model": settings.model,
            "system": request.system,
            "messages": [{"role": "user", "content": request.user}],
            "max_tokens": settings.max_output_tokens,
            "stream": true,
        }),
    }
}

/// The provider's headers; the key's header is marked sensitive so no debug output shows it.
pub(crate) fn headers(kind: ProviderKind, key: Option<&str>) -> Result<HeaderMap, ModelError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
    let bad_key = || ModelError::BadRequest {
        status: 0,
        detail: "the API key contains characters that cannot go in an HTTP header".to_string(),
    };
    match kind {
        ProviderKind::Openai | ProviderKind::OpenaiChat | ProviderKind::OpenaiFim => {
            if let Some(key) = key {
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| bad_key())?;
                value.set_sensitive(true);
                headers.insert(reqwest::header::AUTHORIZATION, value);
            }
        }
        ProviderKind::Anthropic => {
            if let Some(key) = key {
                let mut value = HeaderValue::from_str(key).map_err(|_| bad_key())?;
                value.set_sensitive(true);
                headers.insert(HeaderName::from_static("x-api-key"), value);
            }
            headers.insert(
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static("2023-06-01"),
            );
        }
    }
    Ok(headers)
}

/// What one event means.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    /// Text for the answer, borrowed from the event when it has no escapes.
    Text(Cow<'a, str>),
    /// The answer is complete.
    Done,
    /// Nothing for the caller (bookkeeping events, pings).
    Skip,
}

/// Turns the events of one response into text and an end.
#[derive(Debug)]
pub(crate) struct Decoder {
    kind: ProviderKind,
    /// Chat: a choice carried a `finish_reason`, so the end of the body completes the answer
    /// even without `data: [DONE]`.
    finished: bool,
}

impl Decoder {
    pub fn new(kind: ProviderKind) -> Decoder {
        Decoder {
            kind,
            finished: false,
        }
    }

    /// Whether the body may end here without the answer being cut off.
    pub fn complete_at_eof(&self) -> bool {
        self.finished
    }

    pub fn on_event<'a>(&mut self, event: &'a SseEvent) -> Result<Step<'a>, ModelError> {
        if matches!(
            self.kind,
            ProviderKind::OpenaiChat | ProviderKind::OpenaiFim
        ) && event.data.trim() == "[DONE]"
        {
            return Ok(Step::Done);
        }
        if let Some(text) = self.text_fast(&event.data) {
            return Ok(Step::Text(text));
        }
        let value: Value =
            serde_json::from_str(&event.data).map_err(|e| ModelError::Malformed {
                detail: format!("bad JSON in a data line ({e}): {}", excerpt(&event.data)),
            })?;
        match self.kind {
            ProviderKind::Openai => responses_event(event, &value),
            ProviderKind::OpenaiChat | ProviderKind::OpenaiFim => self.chat_event(&value),
            ProviderKind::Anthropic => messages_event(event, &value),
        }
    }

    /// The text of an ordinary text event, read without building a JSON tree; `None` for
    /// anything else (other events, errors, odd shapes), which the general path then decodes.
    /// It accepts only what the general path would turn into the same non-empty text.
    fn text_fast<'a>(&mut self, data: &'a str) -> Option<Cow<'a, str>> {
        let text = match self.kind {
            ProviderKind::Openai => {
                let event: ResponsesTextEvent = serde_json::from_str(data).ok()?;
                (event.kind?.0 == "response.output_text.delta")
                    .then_some(event.delta)
                    .flatten()
            }
            ProviderKind::Anthropic => {
                let event: MessagesTextEvent = serde_json::from_str(data).ok()?;
                let delta = event.delta?;
                (event.kind?.0 == "content_block_delta" && delta.kind?.0 == "text_delta")
                    .then_some(delta.text)
                    .flatten()
            }
            ProviderKind::OpenaiChat | ProviderKind::OpenaiFim => {
                let chunk: ChatTextChunk = serde_json::from_str(data).ok()?;
                if chunk.error {
                    return None;
                }
                let choice = chunk.choices?.first?;
                if choice.finish_reason.is_some() {
                    self.finished = true;
                }
                match self.kind {
                    ProviderKind::OpenaiFim => choice.text,
                    _ => choice.delta.and_then(|delta| delta.content),
                }
            }
        };
        text.map(|text| text.0).filter(|text| !text.is_empty())
    }

    fn chat_event(&mut self, value: &Value) -> Result<Step<'static>, ModelError> {
        if let Some(error) = value.get("error") {
            return Err(ModelError::ProviderError {
                detail: error_message(error).unwrap_or_else(|| excerpt(&error.to_string())),
            });
        }
        let Some(choice) = value.get("choices").and_then(|c| c.get(0)) else {
            // A usage-only chunk, or a server's own keep-alive object.
            return Ok(Step::Skip);
        };
        if choice.get("finish_reason").is_some_and(|r| !r.is_null()) {
            self.finished = true;
        }
        // Chat chunks carry `delta.content`; completions (FIM) chunks carry `text`.
        let text = match self.kind {
            ProviderKind::OpenaiFim => choice.get("text"),
            _ => choice.get("delta").and_then(|d| d.get("content")),
        };
        match text.and_then(Value::as_str) {
            Some(text) if !text.is_empty() => Ok(Step::Text(Cow::Owned(text.to_string()))),
            _ => Ok(Step::Skip),
        }
    }
}

/// The fields of a Responses `response.output_text.delta` event that matter.
#[derive(Deserialize)]
struct ResponsesTextEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    delta: Option<Str<'a>>,
}

/// The fields of a Messages `content_block_delta` event that matter.
#[derive(Deserialize)]
struct MessagesTextEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    delta: Option<MessagesDelta<'a>>,
}

#[derive(Deserialize)]
struct MessagesDelta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    text: Option<Str<'a>>,
}

/// The fields of a chat (or completions) chunk that matter: only its first choice is read.
#[derive(Deserialize)]
struct ChatTextChunk<'a> {
    #[serde(borrow, default)]
    choices: Option<FirstChoice<'a>>,
    /// Whether an `error` field is there at all: even `"error": null` takes the general path.
    #[serde(default, deserialize_with = "present")]
    error: bool,
}

#[derive(Deserialize)]
struct ChatChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<ChatDelta<'a>>,
    #[serde(borrow, default)]
    text: Option<Str<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct ChatDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Str<'a>>,
}

/// A JSON string, borrowed from the event's data when it has no escapes. (serde's own `borrow`
/// does not reach through an `Option`.)
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = Str<'a>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(text.to_string())))
            }
            fn visit_string<E>(self, text: String) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(Visitor(std::marker::PhantomData))
    }
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer)?;
    Ok(true)
}

/// The first element of the `choices` array, the rest skipped, without collecting a `Vec`.
struct FirstChoice<'a> {
    first: Option<ChatChoice<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for FirstChoice<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = FirstChoice<'a>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("an array of choices")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FirstChoice<'a>, A::Error> {
                let first = seq.next_element::<ChatChoice<'a>>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstChoice { first })
            }
        }
        deserializer.deserialize_seq(Visitor(std::marker::PhantomData))
    }
}

/// OpenAI Responses API events.
fn responses_event(event: &SseEvent, value: &Value) -> Result<Step<'static>, ModelError> {
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or(event.event.as_str());
    match kind {
        "response.output_text.delta" => match value.get("delta").and_then(Value::as_str) {
            Some(text) if !text.is_empty() => Ok(Step::Text(Cow::Owned(text.to_string()))),
            Some(_) => Ok(Step::Skip),
            None => Err(ModelError::Malformed {
                detail: "a response.output_text.delta event has no delta".to_string(),
            }),
        },
        "response.completed" => Ok(Step::Done),
        // Stopped early by max_output_tokens or a content filter: what came is the answer.
        "response.incomplete" => {
            tracing::debug!(
                reason = ?value.pointer("/response/incomplete_details/reason"),
                "model answer incomplete"
            );
            Ok(Step::Done)
        }
        "response.failed" => Err(ModelError::ProviderError {
            detail: value
                .pointer("/response/error")
                .and_then(error_message)
                .unwrap_or_else(|| "the response failed".to_string()),
        }),
        "error" => Err(ModelError::ProviderError {
            detail: error_message(value).unwrap_or_else(|| excerpt(&value.to_string())),
        }),
        "response.refusal.done" => Err(ModelError::ProviderError {
            detail: format!(
                "the model refused: {}",
                value.get("refusal").and_then(Value::as_str).unwrap_or("")
            ),
        }),
        _ => Ok(Step::Skip),
    }
}

/// Anthropic Messages API events.
fn messages_event(event: &SseEvent, value: &Value) -> Result<Step<'static>, ModelError> {
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or(event.event.as_str());
    match kind {
        "content_block_delta" => {
            let delta = value.get("delta");
            if delta.and_then(|d| d.get("type")).and_then(Value::as_str) != Some("text_delta") {
                return Ok(Step::Skip); // Tool input or thinking deltas.
            }
            match delta.and_then(|d| d.get("text")).and_then(Value::as_str) {
                Some(text) if !text.is_empty() => Ok(Step::Text(Cow::Owned(text.to_string()))),
                Some(_) => Ok(Step::Skip),
                None => Err(ModelError::Malformed {
                    detail: "a text_delta has no text".to_string(),
                }),
            }
        }
        "message_stop" => Ok(Step::Done),
        "error" => {
            let error = value.get("error").unwrap_or(value);
            let detail = error_message(error).unwrap_or_else(|| excerpt(&value.to_string()));
            if error.get("type").and_then(Value::as_str) == Some("overloaded_error") {
                Err(ModelError::Server {
                    status: 529,
                    detail,
                })
            } else {
                Err(ModelError::ProviderError { detail })
            }
        }
        _ => Ok(Step::Skip),
    }
}

/// The message of an error object: `{"message": ...}`, `{"error": {"message": ...}}`, or
/// `{"error": "..."}` as Ollama writes it.
pub(crate) fn error_message(value: &Value) -> Option<String> {
    let direct = |v: &Value| {
        v.get("message")
            .and_then(Value::as_str)
            .or_else(|| v.get("detail").and_then(Value::as_str))
            .map(str::to_string)
    };
    match value.get("error") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(inner @ Value::Object(_)) => direct(inner),
        _ => direct(value),
    }
    .or_else(|| value.as_str().map(str::to_string))
    .map(|s| excerpt(s.trim()))
}

/// At most 200 characters of `s`, on one line.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 200;
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = one_line.trim();
    match one_line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn chat_done_and_finish_reason() {
        let mut d = Decoder::new(ProviderKind::OpenaiChat);
        assert_eq!(
            d.on_event(&ev(
                "",
                r#"{"choices":[{"delta":{"content":"hi"},"finish_reason":null}]}"#
            ))
            .unwrap(),
            Step::Text("hi".into())
        );
        assert!(!d.complete_at_eof());
        assert_eq!(
            d.on_event(&ev(
                "",
                r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#
            ))
            .unwrap(),
            Step::Skip
        );
        assert!(d.complete_at_eof());
        assert_eq!(d.on_event(&ev("", "[DONE]")).unwrap(), Step::Done);
    }

    #[test]
    fn fim_chunks_carry_text_and_end_with_done() {
        let mut d = Decoder::new(ProviderKind::OpenaiFim);
        assert_eq!(
            d.on_event(&ev(
                "",
                r#"{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"x + ","finish_reason":null}]}"#
            ))
            .unwrap(),
            Step::Text("x + ".into())
        );
        assert_eq!(
            d.on_event(&ev(
                "",
                r#"{"choices":[{"index":0,"text":"","finish_reason":"stop"}]}"#
            ))
            .unwrap(),
            Step::Skip
        );
        assert!(d.complete_at_eof());
        assert_eq!(d.on_event(&ev("", "[DONE]")).unwrap(), Step::Done);
    }

    #[test]
    fn fim_body_sends_prompt_and_suffix() {
        let settings =
            ModelSettings::new(ProviderKind::OpenaiFim, "coder", "http://127.0.0.1:1/v1");
        let body = request_body(
            &settings,
            &ModelRequest {
                system: "ignored".into(),
                user: "fn main() {".into(),
                suffix: Some("}\n".into()),
            },
        );
        assert_eq!(body["prompt"], "fn main() {");
        assert_eq!(body["suffix"], "}\n");
        assert_eq!(body["stream"], true);
        assert!(body.get("messages").is_none());
        assert_eq!(endpoint(ProviderKind::OpenaiFim), "/completions");
    }

    #[test]
    fn anthropic_overloaded_is_a_529() {
        let mut d = Decoder::new(ProviderKind::Anthropic);
        let err = d
            .on_event(&ev(
                "error",
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ))
            .unwrap_err();
        assert!(
            matches!(err, ModelError::Server { status: 529, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn error_messages_in_the_usual_shapes() {
        for body in [
            r#"{"error":{"message":"no such model","type":"invalid_request_error"}}"#,
            r#"{"type":"error","error":{"type":"not_found_error","message":"no such model"}}"#,
            r#"{"error":"no such model"}"#,
            r#"{"message":"no such model"}"#,
        ] {
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!(
                error_message(&v).as_deref(),
                Some("no such model"),
                "{body}"
            );
        }
    }

    #[test]
    fn excerpt_cuts_long_text_on_a_char_boundary() {
        let long = "é".repeat(300);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), 201);
    }
}
