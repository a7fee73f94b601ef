//! Fuzz target `fuzz_sse`: the event-stream decoding of all three providers, from body bytes to
//! the tokens a caller sees, through the real [`Reader`] (the SSE parser, the provider's event
//! decoder and the end-of-body rules together).
//!
//! Properties, for OpenAI Responses, Chat Completions and Anthropic Messages alike:
//! - Arbitrary bytes never panic, and the answer does not depend on where the body was split
//!   into chunks (inside a multi-byte character, between `\r` and `\n`, into empty chunks).
//! - A well-formed stream gives exactly its text, whatever its line endings, keep-alives,
//!   unknown events and unknown fields, and however it is chunked.
//! - A stream cut before its terminating event ends in an error, never in a silently short
//!   answer: every provider's protocol says the stream must complete.
//! - A hostile event inside a valid stream (broken JSON, a text event without its text, a
//!   provider error) ends the answer with an error after exactly the text before it; unknown
//!   event types and huge lines change nothing.
//!
//! Each property runs a few hundred cases in `cargo test`; `PROPTEST_CASES` raises that, and
//! `cargo xtask fuzz --target sse` runs them for minutes with fresh seeds.

use std::time::Duration;

use futures::StreamExt;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::client::Reader;
use crate::sse::{SseEvent, SseParser};
use crate::wire::Decoder;
use crate::{ModelError, ProviderKind};

/// `PROPTEST_CASES` when set (the xtask's long runs), else the number a `cargo test` run can
/// afford. `ProptestConfig::with_cases` alone would ignore the variable.
fn fuzz_config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig::with_cases(cases)
}

/// What a caller sees, comparable: the errors by their message.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Text(String),
    Error(String),
}

fn item(result: Result<String, ModelError>) -> Item {
    match result {
        Ok(text) => Item::Text(text),
        Err(error) => Item::Error(error.to_string()),
    }
}

fn is_error(item: &Item) -> bool {
    matches!(item, Item::Error(_))
}

fn text_of(items: &[Item]) -> String {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Text(text) => Some(text.as_str()),
            Item::Error(_) => None,
        })
        .collect()
}

fn truncated() -> Item {
    Item::Error(ModelError::Truncated.to_string())
}

fn empty_answer() -> Item {
    Item::Error(ModelError::EmptyAnswer.to_string())
}

/// Reads a whole answer delivered in `chunks`, with timeouts far away (the body never stalls).
/// Panics if the reader yields anything after it said the answer is over.
fn read_answer(kind: ProviderKind, chunks: Vec<Vec<u8>>) -> Vec<Item> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a test runtime");
    runtime.block_on(async move {
        let body = futures::stream::iter(
            chunks
                .into_iter()
                .map(|chunk| Ok(bytes::Bytes::from(chunk))),
        )
        .boxed();
        let far = Duration::from_secs(3600);
        let mut reader = Reader::new(
            body,
            Decoder::new(kind),
            far,
            tokio::time::Instant::now() + far,
        );
        let mut items = Vec::new();
        while let Some(result) = reader.next().await {
            items.push(item(result));
        }
        assert!(
            reader.next().await.is_none(),
            "the reader yielded after its end"
        );
        items
    })
}

/// `bytes` cut at `cuts` (positions taken modulo the length, in any order, repeats making
/// empty chunks, as a body stream may deliver).
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(bytes[start..cut].to_vec());
        start = cut;
    }
    chunks.push(bytes[start..].to_vec());
    chunks
}

/// The shape every answer must have: texts, then at most one error, which is the last item.
fn check_shape(items: &[Item]) -> Result<(), TestCaseError> {
    let errors = items.iter().filter(|item| is_error(item)).count();
    prop_assert!(errors <= 1, "more than one error: {items:?}");
    if errors == 1 {
        prop_assert!(
            is_error(items.last().expect("an error is an item")),
            "an error before the end: {items:?}"
        );
    }
    prop_assert!(
        !items.contains(&Item::Text(String::new())),
        "an empty token: {items:?}"
    );
    Ok(())
}

fn provider() -> impl Strategy<Value = ProviderKind> {
    prop_oneof![
        Just(ProviderKind::Openai),
        Just(ProviderKind::OpenaiChat),
        Just(ProviderKind::Anthropic),
        Just(ProviderKind::OpenaiFim),
    ]
}

/// Bytes that look enough like an event stream to reach the decoders: SSE field names, line
/// ends of every kind, JSON pieces of each provider, multi-byte characters, invalid UTF-8.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => any::<u8>().prop_map(|byte| vec![byte]),
        1 => proptest::collection::vec(any::<u8>(), 0..16),
        2 => prop_oneof![
            Just("data: "), Just("data:"), Just("event: "), Just("id: 1"), Just("retry: 5"),
            Just(": ping"), Just("\n"), Just("\r\n"), Just("\r"), Just("\n\n"), Just("\r\n\r\n"),
            Just("[DONE]"), Just("{"), Just("}"), Just("\""), Just(","), Just(":"),
            Just(r#"{"type":"response.output_text.delta","delta":"hé"}"#),
            Just(r#"{"type":"response.completed"}"#),
            Just(r#"{"type":"error","message":"boom"}"#),
            Just(r#"{"choices":[{"delta":{"content":"🦀"},"finish_reason":null}]}"#),
            Just(r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#),
            Just(r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}"#),
            Just(r#"{"type":"message_stop"}"#),
            Just("response.output_text.delta"), Just("content_block_delta"),
            Just("é"), Just("🦀"), Just("\u{2028}"),
        ]
        .prop_map(|piece| piece.as_bytes().to_vec()),
        1 => Just(vec![0xf0, 0x9f]), // The first half of a four-byte character.
        1 => Just(vec![0xff]),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

/// Token texts: plain words, anything Unicode, and text that looks like SSE or JSON syntax.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z ]{0,8}",
        2 => any::<String>(),
        1 => prop_oneof![
            Just("\n"), Just("\r\n"), Just("\r"), Just("\n\ndata: x\n\n"), Just("\"\\"),
            Just("[DONE]"), Just(" [DONE] "), Just("é"), Just("🦀"), Just("\u{2028}\u{85}"),
            Just("\0"), Just(""),
        ]
        .prop_map(String::from),
        // A huge line: SSE has no line length limit, and neither may we.
        1 => (1usize..4).prop_map(|kilobytes| "é🦀x".repeat(kilobytes * 40 * 1024 / 8)),
    ]
}

/// Something a server may put between events that changes nothing.
#[derive(Clone, Copy, Debug)]
enum Noise {
    KeepAliveComment,
    IdAndRetry,
    UnknownEventType,
    UnknownField,
}

fn noise() -> impl Strategy<Value = Option<Noise>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(Noise::KeepAliveComment)),
        1 => Just(Some(Noise::IdAndRetry)),
        1 => Just(Some(Noise::UnknownEventType)),
        1 => Just(Some(Noise::UnknownField)),
    ]
}

/// An event inside an otherwise valid stream that must end the answer with an error.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    BrokenJson,
    TextEventWithoutText,
    TextOfTheWrongType,
    ProviderError,
}

fn hostile_event() -> impl Strategy<Value = Hostile> {
    prop_oneof![
        Just(Hostile::BrokenJson),
        Just(Hostile::TextEventWithoutText),
        Just(Hostile::TextOfTheWrongType),
        Just(Hostile::ProviderError),
    ]
}

/// One event of a stream: its optional `event:` name and its JSON (or `[DONE]`) data.
type Event = (Option<&'static str>, String);

/// A provider's stream for `tokens`, in three parts: the opening events, one event per token
/// (with noise after some), and the events that complete the answer.
struct Script {
    opening: Vec<Event>,
    body: Vec<Event>,
    closing: Vec<Event>,
}

fn script(
    kind: ProviderKind,
    tokens: &[String],
    noise: &[Option<Noise>],
    with_done: bool,
) -> Script {
    let mut body = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        let unknown_field = matches!(noise.get(index), Some(Some(Noise::UnknownField)));
        body.push(text_event(kind, token, unknown_field));
        match noise.get(index).copied().flatten() {
            Some(Noise::UnknownEventType) => body.push(unknown_event(kind)),
            // Comments and ids are written by `serialize` from the event's name.
            Some(Noise::KeepAliveComment) => body.push((Some(": keep-alive"), String::new())),
            Some(Noise::IdAndRetry) => body.push((Some("id: 7\nretry: 1000"), String::new())),
            Some(Noise::UnknownField) | None => {}
        }
    }
    match kind {
        ProviderKind::Openai => Script {
            opening: vec![
                (Some("response.created"), json!({"type": "response.created", "response": {"id": "r", "status": "in_progress"}}).to_string()),
                (Some("response.output_item.added"), json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "message", "content": []}}).to_string()),
            ],
            body,
            closing: vec![
                (Some("response.output_text.done"), json!({"type": "response.output_text.done", "text": tokens.concat()}).to_string()),
                (Some("response.completed"), json!({"type": "response.completed", "response": {"id": "r", "status": "completed"}}).to_string()),
            ],
        },
        ProviderKind::OpenaiFim => {
            let mut closing = vec![
                (None, json!({"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}).to_string()),
            ];
            if with_done {
                closing.push((None, "[DONE]".to_string()));
            }
            Script {
                opening: Vec::new(),
                body,
                closing,
            }
        }
        ProviderKind::OpenaiChat => {
            let mut closing = vec![
                (None, json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).to_string()),
                (None, json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}).to_string()),
            ];
            if with_done {
                closing.push((None, "[DONE]".to_string()));
            }
            Script {
                opening: vec![(None, json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}).to_string())],
                body,
                closing,
            }
        }
        ProviderKind::Anthropic => Script {
            opening: vec![
                (Some("message_start"), json!({"type": "message_start", "message": {"id": "m", "content": []}}).to_string()),
                (Some("content_block_start"), json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}).to_string()),
                (Some("ping"), json!({"type": "ping"}).to_string()),
            ],
            body,
            closing: vec![
                (Some("content_block_stop"), json!({"type": "content_block_stop", "index": 0}).to_string()),
                (Some("message_delta"), json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}).to_string()),
                (Some("message_stop"), json!({"type": "message_stop"}).to_string()),
            ],
        },
    }
}

fn text_event(kind: ProviderKind, token: &str, unknown_field: bool) -> Event {
    let mut event = match kind {
        ProviderKind::Openai => (
            Some("response.output_text.delta"),
            json!({"type": "response.output_text.delta", "item_id": "i", "output_index": 0, "content_index": 0, "delta": token}),
        ),
        ProviderKind::OpenaiChat => (
            None,
            json!({"choices": [{"index": 0, "delta": {"content": token}, "finish_reason": null}]}),
        ),
        ProviderKind::OpenaiFim => (
            None,
            json!({"choices": [{"index": 0, "text": token, "finish_reason": null}]}),
        ),
        ProviderKind::Anthropic => (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}}),
        ),
    };
    if unknown_field && let Value::Object(object) = &mut event.1 {
        object.insert(
            "added_in_a_later_api_version".into(),
            json!({"nested": [1, "two", null]}),
        );
    }
    (event.0, event.1.to_string())
}

/// An event type this version does not know, as a newer API might send.
fn unknown_event(kind: ProviderKind) -> Event {
    match kind {
        ProviderKind::Openai => (Some("response.reasoning.delta"), json!({"type": "response.reasoning.delta", "delta": "not text"}).to_string()),
        ProviderKind::OpenaiChat | ProviderKind::OpenaiFim => (None, json!({"object": "keep-alive", "created": 1}).to_string()),
        ProviderKind::Anthropic => (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "thinking_delta", "thinking": "not text"}}).to_string(),
        ),
    }
}

fn hostile(kind: ProviderKind, hostile: Hostile) -> Event {
    match (kind, hostile) {
        (_, Hostile::BrokenJson) => {
            let (name, data) = text_event(kind, "cut", false);
            (name, data[..data.len() - 3].to_string())
        }
        (ProviderKind::Openai, Hostile::TextEventWithoutText) => (
            Some("response.output_text.delta"),
            json!({"type": "response.output_text.delta"}).to_string(),
        ),
        (ProviderKind::Openai, Hostile::TextOfTheWrongType) => (
            Some("response.output_text.delta"),
            json!({"type": "response.output_text.delta", "delta": 5}).to_string(),
        ),
        (ProviderKind::Openai, Hostile::ProviderError) => (
            Some("error"),
            json!({"type": "error", "message": "boom"}).to_string(),
        ),
        // Chat deltas without content are normal (a role, a tool call), so the chat protocol's
        // only hostile events here are broken JSON and an error object.
        (ProviderKind::OpenaiChat | ProviderKind::OpenaiFim, _) => {
            (None, json!({"error": {"message": "boom"}}).to_string())
        }
        (ProviderKind::Anthropic, Hostile::TextEventWithoutText) => (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "delta": {"type": "text_delta"}}).to_string(),
        ),
        (ProviderKind::Anthropic, Hostile::TextOfTheWrongType) => (
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": ["x"]}})
                .to_string(),
        ),
        (ProviderKind::Anthropic, Hostile::ProviderError) => (
            Some("error"),
            json!({"type": "error", "error": {"type": "api_error", "message": "boom"}}).to_string(),
        ),
    }
}

/// Writes events as SSE, each line ending in the next of `line_ends` (cycled), and returns
/// the bytes with the offset where each event starts.
fn serialize(events: &[Event], line_ends: &[&str]) -> (Vec<u8>, Vec<usize>) {
    let mut out = String::new();
    let mut starts = Vec::new();
    let mut line = 0;
    let mut end_line = |out: &mut String| {
        out.push_str(line_ends[line % line_ends.len()]);
        line += 1;
    };
    for (name, data) in events {
        starts.push(out.len());
        match name {
            Some(raw) if raw.starts_with(':') || raw.starts_with("id:") => {
                for field in raw.split('\n') {
                    out.push_str(field);
                    end_line(&mut out);
                }
            }
            Some(name) => {
                out.push_str("event: ");
                out.push_str(name);
                end_line(&mut out);
            }
            None => {}
        }
        if !(name.is_some_and(|raw| raw.starts_with(':') || raw.starts_with("id:"))) {
            out.push_str("data: ");
            out.push_str(data);
            end_line(&mut out);
        }
        end_line(&mut out);
    }
    starts.push(out.len());
    (out.into_bytes(), starts)
}

/// Line ends for a stream: `\n` and `\r\n` mixed freely, or `\r` alone. A lone `\r` followed
/// by a `\n` line end would be one `\r\n`, so no server can mix those two.
fn line_ends() -> impl Strategy<Value = Vec<&'static str>> {
    prop_oneof![
        3 => proptest::collection::vec(prop_oneof![Just("\n"), Just("\r\n")], 1..6),
        1 => Just(vec!["\r"]),
    ]
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(any::<usize>(), 0..40)
}

fn all_events(script: &Script) -> Vec<Event> {
    script
        .opening
        .iter()
        .chain(&script.body)
        .chain(&script.closing)
        .cloned()
        .collect()
}

proptest! {
    #![proptest_config(fuzz_config(300))]

    /// The parser alone: the same events (and the same first error) however the bytes are cut.
    #[test]
    fn fuzz_sse_parser_is_independent_of_chunking(bytes in hostile_bytes(), cuts in cuts()) {
        let parse = |chunks: Vec<Vec<u8>>| {
            let mut parser = SseParser::new();
            let mut events: Vec<SseEvent> = Vec::new();
            let mut collect = |event: &SseEvent| events.push(event.clone());
            for chunk in &chunks {
                if parser.feed(chunk, &mut collect).is_err() {
                    return (events, true);
                }
            }
            let failed = parser.finish(&mut collect).is_err();
            (events, failed)
        };
        prop_assert_eq!(parse(split(&bytes, &cuts)), parse(vec![bytes.clone()]));
    }

    /// Arbitrary bytes through the whole reader: no panic, a sane shape, and the same answer
    /// whatever the chunking.
    #[test]
    fn fuzz_sse_arbitrary_bytes_never_panic_and_ignore_chunking(
        kind in provider(),
        bytes in hostile_bytes(),
        cuts in cuts(),
    ) {
        let whole = read_answer(kind, vec![bytes.clone()]);
        check_shape(&whole)?;
        prop_assert_eq!(read_answer(kind, split(&bytes, &cuts)), whole);
    }

    /// A well-formed stream gives exactly its text, however it is written and chunked.
    #[test]
    fn fuzz_sse_well_formed_streams_give_their_text(
        kind in provider(),
        tokens in proptest::collection::vec(token(), 0..12),
        noise in proptest::collection::vec(noise(), 12),
        with_done in any::<bool>(),
        line_ends in line_ends(),
        cuts in cuts(),
    ) {
        let script = script(kind, &tokens, &noise, with_done);
        let (bytes, _) = serialize(&all_events(&script), &line_ends);
        let items = read_answer(kind, split(&bytes, &cuts));
        check_shape(&items)?;
        let text = tokens.concat();
        if text.is_empty() {
            prop_assert_eq!(items, vec![empty_answer()]);
        } else {
            prop_assert!(!items.iter().any(is_error), "an error in a valid stream: {:?}", items);
            prop_assert_eq!(text_of(&items), text);
        }
    }

    /// A stream cut anywhere before its terminating events ends in an error, after a prefix of
    /// its text.
    #[test]
    fn fuzz_sse_streams_cut_short_end_in_an_error(
        kind in provider(),
        tokens in proptest::collection::vec(token(), 0..8),
        line_ends in line_ends(),
        cut in any::<usize>(),
        cuts in cuts(),
    ) {
        let script = script(kind, &tokens, &[], true);
        let events = all_events(&script);
        let (bytes, starts) = serialize(&events, &line_ends);
        // Everything up to the first closing event may arrive: chat's `finish_reason` and
        // Responses' `response.completed` are what make the answer complete.
        let closing_start = starts[script.opening.len() + script.body.len()];
        let kept = &bytes[..cut % (closing_start + 1)];
        let items = read_answer(kind, split(kept, &cuts));
        check_shape(&items)?;
        // Truncated, or malformed when the cut leaves half a JSON line.
        let last = items.last().cloned();
        prop_assert!(
            last == Some(truncated())
                || matches!(&last, Some(Item::Error(message)) if message.starts_with("malformed event stream")),
            "a cut stream ended without saying so: {:?}", items
        );
        prop_assert!(tokens.concat().starts_with(&text_of(&items)), "text not in the stream: {:?}", items);
    }

    /// A hostile event ends the answer with an error right after the text before it; unknown
    /// events in the same place change nothing.
    #[test]
    fn fuzz_sse_hostile_events_are_errors_not_truncation(
        kind in provider(),
        tokens in proptest::collection::vec(token(), 1..8),
        at in any::<usize>(),
        event in hostile_event(),
        line_ends in line_ends(),
        cuts in cuts(),
    ) {
        let script = script(kind, &tokens, &[], true);
        let at = at % (tokens.len() + 1);
        let mut events = all_events(&script);
        let position = script.opening.len() + at;

        let mut with_unknown = events.clone();
        with_unknown.insert(position, unknown_event(kind));
        let (bytes, _) = serialize(&with_unknown, &line_ends);
        let items = read_answer(kind, split(&bytes, &cuts));
        let text = tokens.concat();
        if !text.is_empty() {
            prop_assert_eq!(text_of(&items), text);
            prop_assert!(!items.iter().any(is_error), "an unknown event failed the answer: {:?}", items);
        }

        events.insert(position, hostile(kind, event));
        let (bytes, _) = serialize(&events, &line_ends);
        let items = read_answer(kind, split(&bytes, &cuts));
        check_shape(&items)?;
        prop_assert!(items.last().is_some_and(is_error), "a hostile event went unnoticed: {:?}", items);
        prop_assert_eq!(text_of(&items), tokens[..at].concat());
    }
}
