//! Document notifications applied in arrival order.
//!
//! tower-lsp-server runs handlers concurrently, so two `didChange` handlers may interleave at
//! their first `.await`. This wrapper sits between the transport and the service: the transport
//! calls [`tower_service::Service::call`] once per message, in the order messages arrive, and
//! the wrapper applies `didOpen`, `didChange` and `didClose` to the session right there,
//! synchronously, before the message reaches any handler. `window/workDoneProgress/cancel`,
//! which the library does not route, is handled here too.
//!
//! It is also the dispatch boundary for panics (see `crate::panics`): a panic while applying a
//! notification, while routing a message or while a handler's future is polled is caught here.
//! A request is then answered with an `InternalError` naming its method, and the server keeps
//! serving with every other document intact.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{self, BoxFuture, FutureExt};
use serde_json::Value;
use tower_lsp_server::jsonrpc::{self, Id, Request, Response};
use tower_lsp_server::ls_types as lsp;
use tower_lsp_server::{ExitedError, LspService};

use crate::lsp::{Backend, proto};
use crate::session::{DocumentUpdate, Session, UpdateError};

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
                self.apply_document_notification(&request);
            }
            // The fallback target of a bare `baton.edit "…"` is the range of the latest code
            // action request. It is noted here, in arrival order, so the request handler itself
            // only reads the session.
            "textDocument/codeAction" => self.note_code_action_range(&request),
            // A completion is for the document as it is when the request arrives; a change
            // applied before its handler runs makes it stale (see `completion`).
            "textDocument/inlineCompletion" | "textDocument/completion" => {
                self.note_completion_request(&request);
            }
            // New settings apply before any later message is handled, so a command sent right
            // after them runs with them; the handler only reports problems.
            "workspace/didChangeConfiguration" => self.apply_settings(&request),
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
        let method = request.method().to_string();
        let id = request.id().cloned();
        let inner = &mut self.inner;
        let future = match crate::panics::catch(move || inner.call(request)) {
            Ok(future) => future,
            Err(message) => {
                return future::ready(Ok(internal_error(id, &method, &message))).boxed();
            }
        };
        async move {
            tracing::debug!(method, ?id, "dispatch");
            let answer = match crate::panics::catch_future(future).await {
                Ok(response) => response,
                Err(message) => Ok(internal_error(id.clone(), &method, &message)),
            };
            tracing::debug!(method, ?id, "answered");
            answer
        }
        .boxed()
    }
}

impl Ordered {
    fn apply_settings(&self, request: &Request) {
        let settings = request
            .params()
            .and_then(|params| params.get("settings"))
            .filter(|settings| !settings.is_null())
            .cloned();
        self.session.set_workspace_settings(settings);
        self.session.reload_config();
    }

    /// Only the document and the range are read: the handler parses the whole request (its
    /// diagnostics can be large) anyway.
    fn note_code_action_range(&self, request: &Request) {
        let params = request.params();
        let uri = params
            .and_then(|params| params.pointer("/textDocument/uri"))
            .and_then(Value::as_str)
            .and_then(proto::parse_uri);
        let range = params
            .and_then(|params| params.get("range"))
            .and_then(|range| serde_json::from_value::<lsp::Range>(range.clone()).ok());
        if let (Some(uri), Some(range)) = (uri, range) {
            self.session
                .note_action_range(&proto::uri_key(&uri), proto::range(range));
        }
    }

    fn note_completion_request(&self, request: &Request) {
        let uri = request
            .params()
            .and_then(|params| params.pointer("/textDocument/uri"))
            .and_then(Value::as_str)
            .and_then(proto::parse_uri);
        if let Some(uri) = uri {
            let key = proto::uri_key(&uri);
            if let Some(version) = self.session.documents.version(&key) {
                self.session.completions.note_request(&key, version);
            }
        }
    }

    /// Applies `didOpen`/`didChange`/`didClose` right now, in arrival order.
    fn apply_document_notification(&self, request: &Request) {
        let parsed = crate::panics::catch(|| document_update(request.method(), request.params()));
        let Some(update) = parsed.ok().flatten() else {
            tracing::warn!(
                method = request.method(),
                "malformed document notification ignored"
            );
            return;
        };
        let uri = match &update {
            DocumentUpdate::Open { uri, .. }
            | DocumentUpdate::Change { uri, .. }
            | DocumentUpdate::Close { uri } => uri.clone(),
        };
        let opened = matches!(update, DocumentUpdate::Open { .. });
        let index = self.session.index();
        match self
            .session
            .documents
            .apply(update, self.session.encoding(), index.as_deref())
        {
            Ok(()) => {
                self.session.note_focus(&uri);
                if opened {
                    let backend = self.inner.inner();
                    crate::next_edit::watch(
                        self.session.clone(),
                        backend.client.clone(),
                        backend.http.clone(),
                        uri.clone(),
                    );
                }
                // A pending inline completion is stale now; it is cancelled before any later
                // message is handled.
                if request.method() == "textDocument/didClose" {
                    self.session.completions.note_close(&uri);
                } else {
                    self.session.completions.note_change(&uri);
                }
            }
            Err(UpdateError::Refused(err)) => tracing::warn!("{err}"),
            Err(UpdateError::Internal(message)) => {
                tracing::error!("{message}");
                // The user must hear that baton lost track of a buffer; the message goes out
                // on its own task since this path never awaits.
                let client = self.inner.inner().client.clone();
                tokio::spawn(async move {
                    client.show_message(lsp::MessageType::ERROR, message).await;
                });
            }
        }
    }
}

/// The answer to a request whose handler panicked; nothing for a notification.
fn internal_error(id: Option<Id>, method: &str, message: &str) -> Option<Response> {
    tracing::error!(method, "handler panicked: {message}");
    let id = id?;
    Some(Response::from_error(
        id,
        jsonrpc::Error {
            code: jsonrpc::ErrorCode::InternalError,
            message: format!("baton: internal error in {method}: {message}").into(),
            data: None,
        },
    ))
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
