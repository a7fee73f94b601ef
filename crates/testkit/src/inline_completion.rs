//! Neovim 0.12's inline completion, imitated on top of [`LspClient`].
//!
//! What is imitated, read from `runtime/lua/vim/lsp/inline_completion.lua` (recorded, with the
//! differences, in `docs/clients/neovim-inline-completion.md`): once
//! `vim.lsp.inline_completion.enable()` is on, every `InsertEnter`, `CursorMovedI` and
//! `TextChangedP` restarts a 200 ms timer; when it fires, `textDocument/inlineCompletion` is sent
//! with `context.triggerKind = 2` (Automatic) at the cursor. The first item is shown. Unlike
//! Neovim, which cancels pending requests only when leaving insert mode or accepting, the
//! imitation cancels the previous request (if still pending) with `$/cancelRequest` before each
//! new one: the stricter client for the server.
//!
//! A test drives it keystroke by keystroke: [`NeovimInline::type_text`] sends one `didChange`
//! per character, and [`NeovimInline::pause`] is the user stopping: after the 200 ms timer the
//! request goes out, and the previous one is cancelled.

use std::time::Duration;

use serde_json::{Value, json};

use crate::lsp_client::{LspClient, PendingRequest, ResponseError};

/// Neovim 0.12's timer before an automatic request.
pub const NEOVIM_INLINE_DELAY: Duration = Duration::from_millis(200);

/// The inline completion state of one buffer in an imitated Neovim 0.12.
pub struct NeovimInline<'a> {
    client: &'a LspClient,
    uri: String,
    /// The cursor, in the negotiated encoding's units.
    pub line: u32,
    pub character: u32,
    pending: Option<i64>,
}

impl<'a> NeovimInline<'a> {
    /// Inline completion for `uri`, with the cursor at `(line, character)`.
    pub fn new(client: &'a LspClient, uri: &str, line: u32, character: u32) -> NeovimInline<'a> {
        NeovimInline {
            client,
            uri: uri.to_string(),
            line,
            character,
            pending: None,
        }
    }

    /// Types `text` (no newlines) at the cursor, one `didChange` per character, `interval`
    /// apart, moving the cursor along. Characters are counted in UTF-16 units, which is what
    /// every test profile but the UTF-8 and UTF-32 ones negotiates; tests type ASCII.
    pub async fn type_text(&mut self, text: &str, interval: Duration) {
        for c in text.chars() {
            let at = (self.line, self.character);
            self.client
                .change_nowait(&self.uri, (at, at), &c.to_string());
            self.character += c.len_utf16() as u32;
            if !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
        }
    }

    /// The user stops typing: after Neovim's 200 ms timer, the previous request is cancelled
    /// and a new one is sent. Returns it.
    pub async fn pause(&mut self) -> PendingRequest {
        tokio::time::sleep(NEOVIM_INLINE_DELAY).await;
        self.request_now()
    }

    /// The request the timer sends, without waiting for the timer.
    pub fn request_now(&mut self) -> PendingRequest {
        if let Some(previous) = self.pending.take() {
            self.client.cancel(previous);
        }
        let request = self.client.request_id(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": {"uri": self.uri},
                "position": {"line": self.line, "character": self.character},
                "context": {"triggerKind": 2},
            }),
        );
        self.pending = Some(request.id);
        request
    }

    /// The request was answered: nothing is left to cancel.
    pub fn answered(&mut self) {
        self.pending = None;
    }
}

/// The `insertText` of the first item of an inline completion result (`null`, a list or an
/// array), or `None` when there is no item.
pub fn first_insert_text(result: &Result<Value, ResponseError>) -> Option<String> {
    let result = result.as_ref().ok()?;
    let items = match result {
        Value::Array(items) => items,
        Value::Object(list) => list.get("items")?.as_array()?,
        _ => return None,
    };
    items
        .first()?
        .get("insertText")?
        .as_str()
        .map(str::to_string)
}
