//! The job frontend for an LSP client: `workspace/applyEdit`, `$/progress`, messages and
//! `window/showDocument`.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::json;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types as lsp;

use edit::diff::Replacement;
use text::Document;

use crate::frontend::{Frontend, MessageLevel};
use crate::lsp::proto;
use crate::session::{DocumentUri, Session};

pub struct LspFrontend {
    pub client: Client,
    pub session: Arc<Session>,
}

impl Frontend for LspFrontend {
    fn apply_edit(
        &self,
        uri: &DocumentUri,
        document: &Document,
        replacement: &Replacement,
    ) -> BoxFuture<'static, Result<bool, String>> {
        let client = self.client.clone();
        let encoding = self.session.encoding();
        let features = self.session.client();
        let range = proto::lsp_range(document, replacement.range.clone(), encoding);
        let text_edit = json!({ "range": range, "newText": replacement.text });
        let edit = if features.document_changes {
            json!({ "documentChanges": [{
                "textDocument": { "uri": uri, "version": document.version() },
                "edits": [text_edit],
            }]})
        } else {
            // Without documentChanges there is no version check on the client side; the landing
            // still verifies every change from the document's content.
            json!({ "changes": { uri.as_str(): [text_edit] } })
        };
        async move {
            let edit: lsp::WorkspaceEdit =
                serde_json::from_value(edit).map_err(|err| err.to_string())?;
            let response = client
                .apply_edit(edit)
                .await
                .map_err(|err| err.message.to_string())?;
            if let Some(reason) = &response.failure_reason {
                tracing::debug!(%reason, "workspace/applyEdit not applied");
            }
            Ok(response.applied)
        }
        .boxed()
    }

    fn progress_begin(&self, token: &str, title: &str, message: &str) -> BoxFuture<'static, ()> {
        let client = self.client.clone();
        let supported = self.session.client().work_done_progress;
        let token = token.to_string();
        let value =
            json!({ "kind": "begin", "title": title, "message": message, "cancellable": true });
        async move {
            if !supported {
                return;
            }
            let progress_token = lsp::NumberOrString::String(token.clone());
            if let Err(err) = client.create_work_done_progress(progress_token).await {
                tracing::warn!(%err, "client refused a progress token");
            }
            send_progress(&client, token, value).await;
        }
        .boxed()
    }

    fn progress_report(&self, token: &str, message: String) -> BoxFuture<'static, ()> {
        self.progress(
            token,
            json!({ "kind": "report", "message": message, "cancellable": true }),
        )
    }

    fn progress_end(&self, token: &str, message: String) -> BoxFuture<'static, ()> {
        self.progress(token, json!({ "kind": "end", "message": message }))
    }

    fn show_message(&self, level: MessageLevel, text: String) -> BoxFuture<'static, ()> {
        let client = self.client.clone();
        let kind = match level {
            MessageLevel::Error => lsp::MessageType::ERROR,
            MessageLevel::Warning => lsp::MessageType::WARNING,
            MessageLevel::Info => lsp::MessageType::INFO,
        };
        async move { client.show_message(kind, text).await }.boxed()
    }

    fn show_markdown(&self, title: &str, markdown: String) -> BoxFuture<'static, ()> {
        let client = self.client.clone();
        let supported = self.session.client().show_document;
        let title = title.to_string();
        async move {
            if supported {
                match write_markdown(&title, &markdown) {
                    Ok(uri) => {
                        let params = lsp::ShowDocumentParams {
                            uri,
                            external: Some(false),
                            take_focus: Some(true),
                            selection: None,
                        };
                        match client.show_document(params).await {
                            Ok(true) => return,
                            Ok(false) => tracing::info!("client declined to show the explanation"),
                            Err(err) => tracing::warn!(%err, "window/showDocument failed"),
                        }
                    }
                    Err(err) => tracing::warn!(%err, "could not write the explanation"),
                }
            }
            client.show_message(lsp::MessageType::INFO, markdown).await;
        }
        .boxed()
    }
}

impl LspFrontend {
    fn progress(&self, token: &str, value: serde_json::Value) -> BoxFuture<'static, ()> {
        let client = self.client.clone();
        let supported = self.session.client().work_done_progress;
        let token = token.to_string();
        async move {
            if supported {
                send_progress(&client, token, value).await;
            }
        }
        .boxed()
    }
}

async fn send_progress(client: &Client, token: String, value: serde_json::Value) {
    let params = json!({ "token": token, "value": value });
    match serde_json::from_value::<lsp::ProgressParams>(params) {
        Ok(params) => {
            client
                .send_notification::<lsp::notification::Progress>(params)
                .await
        }
        Err(err) => tracing::error!(%err, "bad progress value"),
    }
}

/// Writes an explanation to baton's cache directory, never into the workspace.
fn write_markdown(title: &str, markdown: &str) -> std::io::Result<lsp::Uri> {
    let dir = dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("baton")
        .join("explain");
    std::fs::create_dir_all(&dir)?;
    let slug: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default();
    let path = dir.join(format!("{stamp}-{slug}.md"));
    std::fs::write(&path, markdown)?;
    proto::file_uri(&path).ok_or_else(|| std::io::Error::other("not a valid file URI"))
}
