//! `textDocument/inlineCompletion` (LSP 3.18) and its `textDocument/completion` fallback: the
//! LSP edge of [`crate::completion`].
//!
//! tower-lsp-server 0.23's `LanguageServer` trait has no inline completion method (its
//! `ls_types` has the types), so the request is routed as a custom method on the service;
//! `$/cancelRequest` still drops its future, which drops the model stream.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types as lsp;

use crate::completion::{self, Suggestion};
use crate::lsp::{Backend, proto};

/// The label every fallback completion item starts with, so users (and tests) can tell it
/// from the language server's own items.
pub const FALLBACK_LABEL_PREFIX: &str = "baton: ";

/// Characters after which a client that only asks at trigger characters (Helix) asks baton.
pub const FALLBACK_TRIGGER_CHARACTERS: &[&str] = &[".", "(", ",", "=", ":", " "];

impl Backend {
    async fn suggestion(&self, uri: &lsp::Uri, position: lsp::Position) -> Option<Suggestion> {
        completion::complete(
            &self.session,
            &self.http,
            &proto::uri_key(uri),
            proto::position(position),
        )
        .await
    }

    pub(crate) async fn inline_completion(
        &self,
        params: lsp::InlineCompletionParams,
    ) -> Result<Option<lsp::InlineCompletionResponse>> {
        if !self.session.config().config.features.inline_completion {
            return Ok(None);
        }
        let position = params.text_document_position.position;
        let Some(suggestion) = self
            .suggestion(&params.text_document_position.text_document.uri, position)
            .await
        else {
            return Ok(Some(lsp::InlineCompletionResponse::Array(Vec::new())));
        };
        // An empty range at the cursor: inserted there, and on one line as the spec requires.
        let range = lsp::Range {
            start: position,
            end: position,
        };
        Ok(Some(lsp::InlineCompletionResponse::Array(vec![
            lsp::InlineCompletionItem {
                insert_text: suggestion.text,
                filter_text: None,
                range: Some(range),
                command: None,
                insert_text_format: Some(lsp::InsertTextFormat::PLAIN_TEXT),
            },
        ])))
    }

    /// The fallback: the same suggestion as one completion item, marked incomplete so the
    /// client asks again as the user types.
    pub(crate) async fn completion_fallback(
        &self,
        params: lsp::CompletionParams,
    ) -> Result<Option<lsp::CompletionResponse>> {
        let position = params.text_document_position.position;
        let uri = params.text_document_position.text_document.uri;
        let Some(suggestion) = self.suggestion(&uri, position).await else {
            return Ok(Some(incomplete(Vec::new())));
        };
        let Some(snapshot) = self.session.snapshot(&proto::uri_key(&uri)) else {
            return Ok(Some(incomplete(Vec::new())));
        };
        // Clients filter items by the word before the cursor: the item replaces that word with
        // itself plus the suggestion, so it survives the filter. Identifier characters only,
        // and never past the cursor's line.
        let document = &snapshot.document;
        let line_start = document.line_start(document.line_of(suggestion.cursor));
        let before = document.slice(line_start..suggestion.cursor);
        let word = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
            .last()
            .map(|(index, _)| &before[index..])
            .unwrap_or("");
        let word_start = suggestion.cursor - word.len();
        let range = proto::lsp_range(document, word_start..suggestion.cursor, snapshot.encoding);
        let new_text = format!("{word}{}", suggestion.text);
        let first_line = suggestion.text.trim().lines().next().unwrap_or("").trim();
        let item = lsp::CompletionItem {
            label: format!("{FALLBACK_LABEL_PREFIX}{first_line}"),
            kind: Some(lsp::CompletionItemKind::EVENT),
            detail: Some("baton inline suggestion (fast tier)".into()),
            filter_text: Some(new_text.clone()),
            sort_text: Some("~baton".into()),
            insert_text_format: Some(lsp::InsertTextFormat::PLAIN_TEXT),
            text_edit: Some(lsp::CompletionTextEdit::Edit(lsp::TextEdit {
                range,
                new_text,
            })),
            ..lsp::CompletionItem::default()
        };
        Ok(Some(incomplete(vec![item])))
    }
}

fn incomplete(items: Vec<lsp::CompletionItem>) -> lsp::CompletionResponse {
    lsp::CompletionResponse::List(lsp::CompletionList {
        is_incomplete: true,
        items,
    })
}
