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

use crate::frontend::{FileOperation, Frontend, MessageLevel, ResourceOperations};
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
        let text_edit = proto::text_edit(document, replacement, encoding);
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

    fn apply_operations(
        &self,
        label: &str,
        operations: Vec<FileOperation>,
    ) -> BoxFuture<'static, Result<bool, String>> {
        let client = self.client.clone();
        let changes: Result<Vec<_>, String> = operations
            .iter()
            .map(|operation| self.operation_json(operation))
            .collect();
        let label = label.to_string();
        async move {
            let edit = json!({ "documentChanges": changes? });
            let edit: lsp::WorkspaceEdit =
                serde_json::from_value(edit).map_err(|err| err.to_string())?;
            let params = lsp::ApplyWorkspaceEditParams {
                label: Some(label),
                edit,
            };
            let response = client
                .send_request::<lsp::request::ApplyWorkspaceEdit>(params)
                .await
                .map_err(|err| err.message.to_string())?;
            if let Some(reason) = &response.failure_reason {
                tracing::info!(%reason, "workspace/applyEdit not applied");
            }
            Ok(response.applied)
        }
        .boxed()
    }

    fn resource_operations(&self) -> ResourceOperations {
        let features = self.session.client();
        if features.document_changes {
            features.resource_operations
        } else {
            ResourceOperations::default()
        }
    }

    fn show_document(
        &self,
        path: std::path::PathBuf,
        take_focus: bool,
    ) -> BoxFuture<'static, bool> {
        let client = self.client.clone();
        let supported = self.session.client().show_document;
        async move {
            let Some(uri) = proto::file_uri(&path).filter(|_| supported) else {
                return false;
            };
            let params = lsp::ShowDocumentParams {
                uri,
                external: Some(false),
                take_focus: Some(take_focus),
                selection: None,
            };
            match client.show_document(params).await {
                Ok(shown) => shown,
                Err(err) => {
                    tracing::warn!(%err, "window/showDocument failed");
                    false
                }
            }
        }
        .boxed()
    }

    fn ask(&self, message: String, actions: Vec<String>) -> BoxFuture<'static, Option<String>> {
        let client = self.client.clone();
        async move {
            let items = actions
                .into_iter()
                .map(|title| lsp::MessageActionItem {
                    title,
                    properties: Default::default(),
                })
                .collect();
            match client
                .show_message_request(lsp::MessageType::WARNING, message, Some(items))
                .await
            {
                Ok(answer) => answer.map(|item| item.title),
                Err(err) => {
                    // Helix answers MethodNotFound: the task document's code actions remain.
                    tracing::info!(%err, "window/showMessageRequest failed");
                    None
                }
            }
        }
        .boxed()
    }
}

impl LspFrontend {
    /// The `documentChanges` entry of one operation.
    fn operation_json(&self, operation: &FileOperation) -> Result<serde_json::Value, String> {
        let uri = |path: &std::path::Path| {
            proto::file_uri(path)
                .map(|uri| uri.to_string())
                .ok_or_else(|| format!("{} is not a valid file URI", path.display()))
        };
        let encoding = self.session.encoding();
        Ok(match operation {
            FileOperation::Edit {
                path,
                version,
                document,
                edits,
            } => {
                let edits: Vec<_> = edits
                    .iter()
                    .map(|edit| proto::text_edit(document, edit, encoding))
                    .collect();
                json!({ "textDocument": { "uri": uri(path)?, "version": version }, "edits": edits })
            }
            FileOperation::Create { path } => {
                json!({ "kind": "create", "uri": uri(path)?, "options": { "ignoreIfExists": true } })
            }
            FileOperation::Rename { from, to } => {
                json!({ "kind": "rename", "oldUri": uri(from)?, "newUri": uri(to)?, "options": { "ignoreIfExists": false } })
            }
            FileOperation::Delete { path } => {
                json!({ "kind": "delete", "uri": uri(path)?, "options": { "ignoreIfNotExists": true } })
            }
        })
    }

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
