//! Document notifications applied in arrival order.
//!
//! tower-lsp-server runs handlers concurrently, so two `didChange` handlers may interleave at
//! their first `.await`. This wrapper sits between the transport and the service: the transport
//! calls [`tower_service::Service::call`] once per message, in the order messages arrive, and
//! the wrapper applies `didOpen`, `didChange` and `didClose` to the session right there,
//! synchronously, before the message reaches any handler. `window/workDoneProgress/cancel`,
//! which the library does not route, is handled here too.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{self, BoxFuture, FutureExt};
use serde_json::Value;
use tower_lsp_server::jsonrpc::{Request, Response};
use tower_lsp_server::ls_types as lsp;
use tower_lsp_server::{ExitedError, LspService};

use crate::lsp::{Backend, proto};
use crate::session::{DocumentUpdate, Session};

pub struct Ordered {
    pub inner: LspService<Backend>,
    pub session: Arc<Session>,
}

impl tower_service::Service<Request> for Ordered {
    type Response = Option<Response>;
    type Error = ExitedError;
    type Future = BoxFuture<'static, Result<Option<Response>, ExitedError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ExitedError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match request.method() {
            "textDocument/didOpen" | "textDocument/didChange" | "textDocument/didClose" => {
                if let Some(update) = document_update(request.method(), request.params()) {
                    let uri = match &update {
                        DocumentUpdate::Open { uri, .. }
                        | DocumentUpdate::Change { uri, .. }
                        | DocumentUpdate::Close { uri } => uri.clone(),
                    };
                    let index = self.session.index();
                    let applied = self.session.documents.apply(
                        update,
                        self.session.encoding(),
                        index.as_deref(),
                    );
                    if let Err(err) = applied {
                        tracing::warn!("{err}");
                    } else {
                        self.session.note_focus(&uri);
                    }
                } else {
                    tracing::warn!(
                        method = request.method(),
                        "malformed document notification ignored"
                    );
                }
            }
            "window/workDoneProgress/cancel" => {
                let token = request
                    .params()
                    .and_then(|params| params.get("token"))
                    .map(|token| match token {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    });
                if let Some(token) = token {
                    let cancelled = self.session.jobs.cancel(&token);
                    tracing::info!(%token, cancelled, "progress cancelled by the client");
                }
                return future::ready(Ok(None)).boxed();
            }
            _ => {}
        }
        self.inner.call(request)
    }
}

fn document_update(method: &str, params: Option<&Value>) -> Option<DocumentUpdate> {
    let params = params?.clone();
    match method {
        "textDocument/didOpen" => {
            let params: lsp::DidOpenTextDocumentParams = serde_json::from_value(params).ok()?;
            let document = params.text_document;
            Some(DocumentUpdate::Open {
                uri: proto::uri_key(&document.uri),
                path: proto::file_path(&document.uri),
                text: document.text,
                version: document.version,
                language_id: document.language_id,
            })
        }
        "textDocument/didChange" => {
            let params: lsp::DidChangeTextDocumentParams = serde_json::from_value(params).ok()?;
            Some(DocumentUpdate::Change {
                uri: proto::uri_key(&params.text_document.uri),
                version: params.text_document.version,
                changes: params
                    .content_changes
                    .into_iter()
                    .map(proto::content_change)
                    .collect(),
            })
        }
        "textDocument/didClose" => {
            let params: lsp::DidCloseTextDocumentParams = serde_json::from_value(params).ok()?;
            Some(DocumentUpdate::Close {
                uri: proto::uri_key(&params.text_document.uri),
            })
        }
        _ => None,
    }
}
