//! Inline completion on the fast tier: ghost text as the user types.
//!
//! One [`Completions`] registry lives in the session. Every request for a document goes
//! through [`complete`], which decides in this order:
//!
//! 1. A newer request for the same document cancels the older one at once (its HTTP stream is
//!    dropped, which closes the connection): at most one model request is in flight per
//!    document. A change to the document cancels it too ([`Completions::note_change`]), so a
//!    request whose document changed before its answer was ready gets nothing, never a stale
//!    suggestion.
//! 2. The per-document cache, keyed by the text before the cursor: when the user typed
//!    characters the last suggestion predicted, the rest of it is the answer, without a model
//!    call and without waiting.
//! 3. `context.never_send`: a secret file gets no suggestion and no model call.
//! 4. The debounce: the model is asked only once the document has been quiet for
//!    `completion.debounce_ms`.
//! 5. The model: fill-in-the-middle (`prompt` + `suffix`) when the fast tier's provider is
//!    `openai-fim`, with the path, a slice of the repo map and the enclosing scope's first line
//!    as comments above the prefix; a prefix/suffix chat prompt with the same context otherwise. The answer is taken as soon as its
//!    first complete line is known (or the whole answer, when it is shorter), and the stream
//!    is dropped there.
//!
//! The suggestion is then trimmed to what the buffer does not already contain after the
//! cursor. Everything here speaks byte offsets and strings; `lsp::inline` converts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use model::{ModelRequest, ProviderKind};

use crate::session::{DocumentSnapshot, DocumentUri, Session};

/// How much text before the cursor goes into a prompt.
const PREFIX_BYTES: usize = 6 * 1024;
/// How much text after the cursor goes into a prompt.
const SUFFIX_BYTES: usize = 2 * 1024;
/// The repo map slice of a chat prompt, in tokens.
const REPO_MAP_TOKENS: usize = 400;
/// Where the chat prompt marks the cursor.
const CURSOR_MARK: &str = "<CURSOR>";

/// Per-document state of inline completion.
#[derive(Default)]
pub struct Completions {
    documents: Mutex<HashMap<DocumentUri, DocumentState>>,
}

#[derive(Default)]
struct DocumentState {
    /// Numbers requests, so a finishing request only clears its own cancellation.
    generation: u64,
    /// The request that may be waiting on the model.
    in_flight: Option<(u64, CancellationToken)>,
    last_change: Option<Instant>,
    cache: Option<Cached>,
    /// The document's version when the latest completion request for it arrived (noted in
    /// arrival order by `lsp::ordered`): a change applied after that, before the request is
    /// handled, means the request's position is about text that no longer exists.
    requested_at: Option<i32>,
}

/// The last suggestion and the text before the cursor it was made for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cached {
    prefix: String,
    suggestion: String,
}

/// A suggestion to insert at `cursor` (a byte offset of the snapshot's document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    pub text: String,
    pub cursor: usize,
    /// Answered from the cache, without a model call.
    pub from_cache: bool,
}

impl Completions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DocumentUri, DocumentState>> {
        // Every value is replaced whole; a panic elsewhere cannot leave one half-written.
        self.documents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A completion request for `uri` arrived while the document was at `version`.
    pub fn note_request(&self, uri: &DocumentUri, version: i32) {
        self.lock().entry(uri.clone()).or_default().requested_at = Some(version);
    }

    /// Whether the latest request for `uri` was sent for `version` of the document (`true` when
    /// no arrival was noted, as for requests that do not come through the LSP layer).
    fn requested_for(&self, uri: &DocumentUri, version: i32) -> bool {
        self.lock()
            .get(uri)
            .and_then(|state| state.requested_at)
            .is_none_or(|requested| requested == version)
    }

    /// The document changed: its pending request can only produce a stale answer, so it is
    /// cancelled now (dropping its model stream), and the debounce starts again.
    pub fn note_change(&self, uri: &DocumentUri) {
        let mut documents = self.lock();
        let state = documents.entry(uri.clone()).or_default();
        state.last_change = Some(Instant::now());
        if let Some((_, cancel)) = state.in_flight.take() {
            cancel.cancel();
        }
    }

    /// The document was closed: nothing of it is kept.
    pub fn note_close(&self, uri: &DocumentUri) {
        if let Some(state) = self.lock().remove(uri)
            && let Some((_, cancel)) = state.in_flight
        {
            cancel.cancel();
        }
    }

    /// Registers a new request, cancelling the document's older one.
    fn begin(&self, uri: &DocumentUri) -> InFlight<'_> {
        let mut documents = self.lock();
        let state = documents.entry(uri.clone()).or_default();
        if let Some((_, older)) = state.in_flight.take() {
            older.cancel();
        }
        state.generation += 1;
        let cancel = CancellationToken::new();
        state.in_flight = Some((state.generation, cancel.clone()));
        InFlight {
            completions: self,
            uri: uri.clone(),
            generation: state.generation,
            cancel,
            last_change: state.last_change,
        }
    }

    fn cached(&self, uri: &DocumentUri, prefix: &str) -> Option<String> {
        let documents = self.lock();
        let cached = documents.get(uri)?.cache.as_ref()?;
        cached_remainder(cached, prefix)
    }

    fn store(&self, uri: &DocumentUri, prefix: String, suggestion: String) {
        if let Some(state) = self.lock().get_mut(uri) {
            state.cache = Some(Cached { prefix, suggestion });
        }
    }
}

/// One request's claim on its document; dropping it (the request ended, or the client
/// cancelled it and its future was dropped) releases the claim if no newer request took it.
struct InFlight<'a> {
    completions: &'a Completions,
    uri: DocumentUri,
    generation: u64,
    cancel: CancellationToken,
    last_change: Option<Instant>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut documents = self.completions.lock();
        if let Some(state) = documents.get_mut(&self.uri)
            && state
                .in_flight
                .as_ref()
                .is_some_and(|(generation, _)| *generation == self.generation)
        {
            state.in_flight = None;
        }
    }
}

/// The rest of a cached suggestion after the user typed `prefix`, if the user typed only what
/// the suggestion predicted and something of it is left.
fn cached_remainder(cached: &Cached, prefix: &str) -> Option<String> {
    let typed = prefix.strip_prefix(cached.prefix.as_str())?;
    let rest = cached.suggestion.strip_prefix(typed)?;
    (!rest.trim().is_empty()).then(|| rest.to_string())
}

/// The suggestion in a model's text so far, once it is known: everything up to the end of the
/// first line that has content (newlines before it included), or `None` while that line is
/// still incomplete. With `finished`, whatever came is the suggestion. A chat model's code
/// fence around the answer is dropped.
fn suggestion_so_far(text: &str, finished: bool) -> Option<String> {
    let mut text = text;
    if text.trim_start().starts_with("```") {
        // The fence's own line (with its language tag) is not part of the code.
        let fence_end = text.find('\n')?;
        text = &text[fence_end + 1..];
    }
    let mut searched = 0;
    while let Some(newline) = text[searched..].find('\n') {
        let end = searched + newline;
        if !text[..end].trim().is_empty() {
            return Some(strip_closing_fence(&text[..end]));
        }
        searched = end + 1;
    }
    finished.then(|| strip_closing_fence(text.trim_end_matches('\n')))
}

fn strip_closing_fence(text: &str) -> String {
    let text = match text.find("```") {
        Some(fence) => &text[..fence],
        None => text,
    };
    text.trim_end().to_string()
}

/// What of `suggestion` the buffer does not already have after the cursor (`rest_of_line`
/// is the text from the cursor to the end of its line): a model that repeats the closing
/// `)` the editor auto-inserted, or the rest of the line, has that part cut.
pub fn trim_to_new(suggestion: &str, rest_of_line: &str) -> String {
    let rest = rest_of_line.trim_end();
    if rest.is_empty() {
        return suggestion.to_string();
    }
    // The whole suggestion is already there.
    if rest.starts_with(suggestion.trim_end()) {
        return String::new();
    }
    // Only the first line can overlap the rest of the cursor's line.
    let (first, more) = match suggestion.find('\n') {
        Some(newline) => (&suggestion[..newline], &suggestion[newline..]),
        None => (suggestion, ""),
    };
    if !more.is_empty() {
        return suggestion.to_string();
    }
    let overlap = (1..=rest.len().min(first.len()))
        .rev()
        .filter(|&n| rest.is_char_boundary(n))
        .find(|&n| first.ends_with(&rest[..n]))
        .unwrap_or(0);
    first[..first.len() - overlap].to_string()
}

/// The model request for a completion at `cursor`.
fn model_request(
    kind: ProviderKind,
    snapshot: &DocumentSnapshot,
    cursor: usize,
    path_label: &str,
    repo_map: Option<&str>,
) -> ModelRequest {
    let document = &snapshot.document;
    // Whole lines before the cursor, so the prompt does not start mid-token (the first line
    // may take it a little over the budget).
    let prefix_start = document.line_start(document.line_of(cursor.saturating_sub(PREFIX_BYTES)));
    let suffix_end = document.floor_boundary((cursor + SUFFIX_BYTES).min(document.len_bytes()));
    let prefix = document.slice(prefix_start..cursor);
    let suffix = document.slice(cursor..suffix_end);
    let scope = snapshot
        .tree
        .as_ref()
        .and_then(|tree| tree.enclosing_scope(document.rope(), cursor..cursor));
    let known = crate::session::language_of(document, snapshot.path.as_deref());
    if kind == ProviderKind::OpenaiFim {
        // A FIM prompt is the file itself: the context goes first, as comments in the file's
        // language (where baton knows how it comments), the way FIM models were trained on
        // repository-level prompts.
        let mut header = String::new();
        if let Some(language) = known {
            let comment = language.line_comment();
            header.push_str(&format!("{comment} Path: {path_label}\n"));
            if let Some(map) = repo_map.filter(|map| !map.trim().is_empty()) {
                header.push_str(&format!("{comment} Related code in the repository:\n"));
                for line in map.lines() {
                    header.push_str(&format!("{comment} {line}\n"));
                }
            }
            // The scope's first line when the prefix starts below it.
            if let Some(scope) = scope
                .as_ref()
                .filter(|scope| scope.range.start < prefix_start)
            {
                let line = document.slice(
                    scope.range.start
                        ..document.line_content_end(document.line_of(scope.range.start)),
                );
                header.push_str(&format!("{comment} Inside: {}\n", line.trim()));
            }
        }
        return ModelRequest {
            system: String::new(),
            user: format!("{header}{prefix}"),
            suffix: Some(suffix),
        };
    }
    let language = known
        .map(|language| language.name().to_string())
        .unwrap_or_else(|| document.language_id().to_string());
    let mut user = format!("File: {path_label} ({language})\n");
    if let Some(map) = repo_map {
        user.push_str(&format!("\nRepository map (excerpt):\n{map}\n"));
    }
    if let Some(scope) = scope {
        let header = document.slice(
            scope.range.start..document.line_content_end(document.line_of(scope.range.start)),
        );
        user.push_str(&format!(
            "\nThe cursor is inside {:?} {}, which starts with: {}\n",
            scope.kind,
            scope.name.as_deref().unwrap_or("(unnamed)"),
            header.trim()
        ));
    }
    user.push_str(&format!(
        "\nThe code around the cursor; {CURSOR_MARK} marks where the text goes:\n\
         {prefix}{CURSOR_MARK}{suffix}\n"
    ));
    ModelRequest {
        system: format!(
            "You are a code completion engine. Reply with only the text to insert at \
             {CURSOR_MARK}: no explanation, no code fence, nothing the code already has after \
             {CURSOR_MARK}. Prefer completing the current line; reply with nothing if no \
             completion is likely."
        ),
        user,
        suffix: None,
    }
}

/// A completion at `position` of `uri` (see the module docs), or `None`: disabled, a secret
/// file, cancelled, the document changed, the model failed or had nothing to add.
pub async fn complete(
    session: &Session,
    http: &reqwest::Client,
    uri: &DocumentUri,
    position: text::Position,
) -> Option<Suggestion> {
    let config = session.config();
    let snapshot = session.snapshot(uri)?;
    if !session.completions.requested_for(uri, snapshot.version()) {
        // The document changed between the request and now: its position is about the old
        // text, and an answer for it would be stale.
        tracing::debug!(%uri, "inline completion: the document changed since the request");
        return None;
    }
    let document = &snapshot.document;
    let cursor = document.offset(position, snapshot.encoding);
    let root = session.root();
    // A secret file is never sent, and never even looked up in the cache.
    if let Some(path) = &snapshot.path
        && config.never_send.check(path, root.as_deref()).is_err()
    {
        tracing::debug!(%uri, "inline completion refused: never_send");
        return None;
    }
    let claim = session.completions.begin(uri);
    let prefix = document.slice(0..cursor);
    let line = document.line_of(cursor);
    let rest_of_line = document.slice(cursor..document.line_content_end(line).max(cursor));

    if let Some(rest) = session.completions.cached(uri, &prefix) {
        let text = trim_to_new(&rest, &rest_of_line);
        return (!text.trim().is_empty()).then_some(Suggestion {
            text,
            cursor,
            from_cache: true,
        });
    }

    let mut settings = config.config.models.fast.settings();
    // A suggestion is a line or two; a retry would land long after the user moved on.
    settings.max_output_tokens = settings
        .max_output_tokens
        .min(config.config.completion.max_output_tokens);
    settings.max_retries = 0;
    let provider = match model::provider(&settings, http.clone()) {
        Ok(provider) => provider,
        Err(error) => {
            tracing::debug!(%error, "inline completion: the fast tier is not usable");
            return None;
        }
    };

    // The repo map is ranked while the debounce runs.
    let debounce = Duration::from_millis(config.config.completion.debounce_ms);
    let quiet_at = claim.last_change.map(|changed| changed + debounce);
    let repo_map = async {
        let (index, path) = (session.index()?, snapshot.path.clone()?);
        let never_send = config.never_send.clone();
        let line = line as u32;
        tokio::task::spawn_blocking(move || {
            crate::indexing::repo_map_text(&index, &path, line, "", REPO_MAP_TOKENS, &never_send)
        })
        .await
        .ok()
        .flatten()
    };
    let wait = async {
        if let Some(quiet_at) = quiet_at {
            tokio::time::sleep_until(quiet_at).await;
        }
    };
    let repo_map = tokio::select! {
        biased;
        _ = claim.cancel.cancelled() => return None,
        (repo_map, ()) = async { tokio::join!(repo_map, wait) } => repo_map,
    };

    let path_label = snapshot.path_label(root.as_deref());
    let request = model_request(
        settings.provider,
        &snapshot,
        cursor,
        &path_label,
        repo_map.as_deref(),
    );
    let started = Instant::now();
    let mut stream = tokio::select! {
        biased;
        _ = claim.cancel.cancelled() => return None,
        stream = provider.stream(request) => match stream {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "inline completion: the model failed");
                return None;
            }
        },
    };
    let mut text = String::new();
    let suggestion = loop {
        let next = tokio::select! {
            biased;
            // Returning drops the stream, which closes the model's connection at once.
            _ = claim.cancel.cancelled() => return None,
            next = stream.next() => next,
        };
        match next {
            Some(Ok(delta)) => {
                text.push_str(&delta);
                if let Some(suggestion) = suggestion_so_far(&text, false) {
                    break suggestion;
                }
            }
            Some(Err(model::ModelError::EmptyAnswer)) | None => {
                break suggestion_so_far(&text, true).unwrap_or_default();
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "inline completion: the stream failed");
                break suggestion_so_far(&text, true).unwrap_or_default();
            }
        }
    };
    drop(stream);
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "inline completion answered"
    );
    // The document changed while the model answered: the suggestion is for text the user no
    // longer has. (A change also cancels the claim; the version check covers a change that
    // landed between the snapshot and the claim.)
    if claim.cancel.is_cancelled() || session.documents.version(uri) != Some(snapshot.version()) {
        return None;
    }
    if suggestion.trim().is_empty() {
        return None;
    }
    session.completions.store(uri, prefix, suggestion.clone());
    let text = trim_to_new(&suggestion, &rest_of_line);
    (!text.trim().is_empty()).then_some(Suggestion {
        text,
        cursor,
        from_cache: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(prefix: &str, suggestion: &str) -> Cached {
        Cached {
            prefix: prefix.into(),
            suggestion: suggestion.into(),
        }
    }

    #[test]
    fn typing_the_predicted_characters_is_answered_from_the_cache() {
        let entry = cached("let total = ", "items.len();");
        assert_eq!(
            cached_remainder(&entry, "let total = it").as_deref(),
            Some("ems.len();")
        );
        assert_eq!(
            cached_remainder(&entry, "let total = ").as_deref(),
            Some("items.len();")
        );
        // Typed something else: a new request is needed.
        assert_eq!(cached_remainder(&entry, "let total = x"), None);
        // Went back before the cached prefix.
        assert_eq!(cached_remainder(&entry, "let total ="), None);
        // Typed the whole suggestion: nothing is left to offer.
        assert_eq!(cached_remainder(&entry, "let total = items.len();"), None);
    }

    #[test]
    fn the_cache_works_across_lines_and_multibyte_text() {
        let entry = cached("fn main() {", "\n    println!(\"héllo\");");
        assert_eq!(
            cached_remainder(&entry, "fn main() {\n    println!(\"hé").as_deref(),
            Some("llo\");")
        );
    }

    #[test]
    fn the_first_line_with_content_completes_a_suggestion() {
        assert_eq!(suggestion_so_far("items.len()", false), None);
        assert_eq!(
            suggestion_so_far("items.len();\n    next", false).as_deref(),
            Some("items.len();")
        );
        // Leading newlines are part of the suggestion: the code goes on the next line.
        assert_eq!(suggestion_so_far("\n", false), None);
        assert_eq!(
            suggestion_so_far("\n    let x = 1;\n", false).as_deref(),
            Some("\n    let x = 1;")
        );
        // A short answer is whole once the stream ended.
        assert_eq!(suggestion_so_far("len()", true).as_deref(), Some("len()"));
        assert_eq!(suggestion_so_far("", true).as_deref(), Some(""));
    }

    #[test]
    fn a_chat_models_code_fence_is_not_part_of_the_suggestion() {
        assert_eq!(suggestion_so_far("```rust", false), None);
        assert_eq!(
            suggestion_so_far("```rust\nitems.len();\n```\n", false).as_deref(),
            Some("items.len();")
        );
        assert_eq!(
            suggestion_so_far("len()```", true).as_deref(),
            Some("len()")
        );
    }

    #[test]
    fn trimming_keeps_only_what_the_buffer_lacks_after_the_cursor() {
        // The editor auto-inserted the closing parenthesis.
        assert_eq!(trim_to_new("a, b)", ")"), "a, b");
        assert_eq!(trim_to_new("a, b);", ");"), "a, b");
        // Nothing after the cursor: all of it.
        assert_eq!(trim_to_new("a, b)", ""), "a, b)");
        // The model only repeated what is there.
        assert_eq!(trim_to_new(")", ")"), "");
        assert_eq!(trim_to_new("x) + 1", "x) + 1"), "");
        // No overlap.
        assert_eq!(trim_to_new("a, b", "}"), "a, b");
        // A multi-line suggestion keeps its lines (the rest of the line follows its end).
        assert_eq!(trim_to_new("\n    x\n", ")"), "\n    x\n");
        // Multi-byte text after the cursor.
        assert_eq!(trim_to_new("\"é\")", "é\")"), "\"");
    }
}
