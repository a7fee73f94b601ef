//! The LSP layer: capability negotiation, handlers, and the glue to the session and jobs.
//!
//! Handlers are thin: they convert at the edge ([`proto`]), read snapshots from the
//! [`Session`], and start jobs. Document notifications never reach a handler's body before they
//! are applied: [`ordered::Ordered`] applies them in arrival order.

mod commands;
mod frontend;
mod inline;
mod ordered;
pub mod proto;
mod symbols;

use std::sync::Arc;

use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types as lsp;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use text::PositionEncoding;

use crate::session::{ClientFeatures, Session};

pub use commands::COMMANDS;

pub struct Backend {
    client: Client,
    session: Arc<Session>,
    http: reqwest::Client,
    frontend: Arc<frontend::LspFrontend>,
}

/// Serves LSP on stdin/stdout until the client exits.
pub async fn serve_stdio() {
    let session = Arc::new(Session::default());
    let (service, socket) = LspService::build({
        let session = session.clone();
        move |client| Backend {
            frontend: Arc::new(frontend::LspFrontend {
                client: client.clone(),
                session: session.clone(),
            }),
            client,
            session,
            http: model::http_client(),
        }
    })
    // LSP 3.18; not in tower-lsp-server's `LanguageServer` trait (see `inline`).
    .custom_method("textDocument/inlineCompletion", Backend::inline_completion)
    .finish();
    let service = ordered::Ordered {
        inner: service,
        session: session.clone(),
    };
    Server::new(crate::stdio::input(), crate::stdio::output(), socket)
        .serve(service)
        .await;
    // The client went away without `shutdown` (or after it): no agent outlives the server.
    session.tasks.shutdown().await;
}

impl Backend {
    async fn report_config_problems(&self) {
        for problem in &self.session.config().problems {
            tracing::warn!("config: {problem}");
            self.client
                .show_message(lsp::MessageType::WARNING, format!("baton: {problem}"))
                .await;
        }
    }

    /// Creates the workspace index and indexes in the background.
    fn start_indexing(&self) {
        let config = self.session.config();
        let Some(root) = self.session.root() else {
            tracing::info!("no workspace root: no index");
            return;
        };
        if !config.config.index.enabled {
            tracing::info!("indexing is disabled in the config");
            return;
        }
        let index = Arc::new(index::WorkspaceIndex::new(
            root,
            crate::indexing::index_config(&config.config),
        ));
        self.session.set_index(index.clone());
        let frontend: Arc<dyn crate::frontend::Frontend> = self.frontend.clone();
        let session = self.session.clone();
        let guard_frontend = frontend.clone();
        let indexing = crate::indexing::index_in_background(
            index,
            frontend,
            "baton/index".into(),
            move |report| {
                tracing::info!(
                    files = report.files,
                    parsed = report.parsed,
                    from_cache = report.from_cache,
                    elapsed_ms = report.elapsed_ms,
                    "indexed"
                );
                session.set_index_report(report.clone());
            },
        );
        // A bug in indexing ends the indexing run (the progress says so), not the server;
        // symbols then come from open buffers only.
        tokio::spawn(async move {
            if let Err(message) = crate::panics::catch_future(indexing).await {
                tracing::error!("indexing panicked: {message}");
                guard_frontend
                    .progress_end("baton/index", format!("failed: internal error: {message}"))
                    .await;
            }
        });
    }

    /// Asks the client to tell us about files changing on disk.
    async fn watch_files(&self) {
        if !self.session.client().watched_files_dynamic || self.session.index().is_none() {
            return;
        }
        let registration = lsp::Registration {
            id: "baton-watched-files".into(),
            method: "workspace/didChangeWatchedFiles".into(),
            register_options: Some(serde_json::json!({ "watchers": [{ "globPattern": "**/*" }] })),
        };
        if let Err(err) = self.client.register_capability(vec![registration]).await {
            tracing::warn!(%err, "the client refused to watch files");
        }
    }
}

fn client_features(capabilities: &lsp::ClientCapabilities) -> ClientFeatures {
    let window = capabilities.window.as_ref();
    let workspace = capabilities.workspace.as_ref();
    ClientFeatures {
        work_done_progress: window.and_then(|w| w.work_done_progress).unwrap_or(false),
        resource_operations: {
            let listed = |kind: lsp::ResourceOperationKind| {
                workspace
                    .and_then(|w| w.workspace_edit.as_ref())
                    .and_then(|edit| edit.resource_operations.as_ref())
                    .is_some_and(|ops| ops.contains(&kind))
            };
            crate::frontend::ResourceOperations {
                create: listed(lsp::ResourceOperationKind::Create),
                rename: listed(lsp::ResourceOperationKind::Rename),
                delete: listed(lsp::ResourceOperationKind::Delete),
            }
        },
        show_document: window
            .and_then(|w| w.show_document.as_ref())
            .is_some_and(|show| show.support),
        // Resource operations only exist inside `documentChanges`, so a client that lists them
        // handles versioned document changes even when it forgets to say so (Neovim 0.11).
        document_changes: workspace
            .and_then(|w| w.workspace_edit.as_ref())
            .is_some_and(|edit| {
                edit.document_changes == Some(true)
                    || edit
                        .resource_operations
                        .as_ref()
                        .is_some_and(|ops| !ops.is_empty())
            }),
        watched_files_dynamic: workspace
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|watch| watch.dynamic_registration)
            .unwrap_or(false),
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: lsp::InitializeParams) -> Result<lsp::InitializeResult> {
        let offered: Vec<String> = params
            .capabilities
            .general
            .as_ref()
            .and_then(|general| general.position_encodings.as_ref())
            .map(|kinds| kinds.iter().map(|kind| kind.as_str().to_string()).collect())
            .unwrap_or_default();
        let encoding = PositionEncoding::negotiate(offered.iter().map(String::as_str));
        self.session.set_encoding(encoding);
        self.session
            .set_client(client_features(&params.capabilities));
        #[allow(deprecated)]
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|folders| folders.first())
            .and_then(|folder| proto::file_path(&folder.uri))
            .or_else(|| params.root_uri.as_ref().and_then(proto::file_path));
        self.session.set_root(root);
        self.session
            .set_init_options(params.initialization_options.clone());
        self.session.reload_config();
        let features = self.session.config().config.features.clone();
        tracing::info!(?encoding, client = ?params.client_info.as_ref().map(|info| &info.name), "initialize");

        let capabilities = lsp::ServerCapabilities {
            position_encoding: Some(lsp::PositionEncodingKind::from(
                encoding.as_lsp_str().to_string(),
            )),
            text_document_sync: Some(lsp::TextDocumentSyncCapability::Options(
                lsp::TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(lsp::TextDocumentSyncKind::INCREMENTAL),
                    save: Some(lsp::TextDocumentSyncSaveOptions::Supported(true)),
                    ..lsp::TextDocumentSyncOptions::default()
                },
            )),
            code_action_provider: features.code_actions.then(|| {
                lsp::CodeActionProviderCapability::Options(lsp::CodeActionOptions {
                    code_action_kinds: Some(vec![
                        lsp::CodeActionKind::QUICKFIX,
                        lsp::CodeActionKind::REFACTOR,
                        lsp::CodeActionKind::REFACTOR_REWRITE,
                        lsp::CodeActionKind::new("source.baton.explain"),
                    ]),
                    ..lsp::CodeActionOptions::default()
                })
            }),
            document_symbol_provider: features.document_symbols.then_some(lsp::OneOf::Left(true)),
            workspace_symbol_provider: features.workspace_symbols.then_some(lsp::OneOf::Left(true)),
            definition_provider: features.definition.then_some(lsp::OneOf::Left(true)),
            inline_completion_provider: features
                .inline_completion
                .then_some(lsp::OneOf::Left(true)),
            completion_provider: features
                .completion_fallback
                .then(|| lsp::CompletionOptions {
                    trigger_characters: Some(
                        inline::FALLBACK_TRIGGER_CHARACTERS
                            .iter()
                            .map(|c| c.to_string())
                            .collect(),
                    ),
                    ..lsp::CompletionOptions::default()
                }),
            execute_command_provider: Some(lsp::ExecuteCommandOptions {
                commands: COMMANDS.iter().map(|command| command.to_string()).collect(),
                ..lsp::ExecuteCommandOptions::default()
            }),
            ..lsp::ServerCapabilities::default()
        };
        Ok(lsp::InitializeResult {
            capabilities,
            server_info: Some(lsp::ServerInfo {
                name: "baton".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: lsp::InitializedParams) {
        self.start_indexing();
        self.report_config_problems().await;
        self.watch_files().await;
    }

    async fn shutdown(&self) -> Result<()> {
        if let Some(index) = self.session.index() {
            let _ = tokio::task::spawn_blocking(move || index.save_cache()).await;
        }
        let cancelled = self.session.jobs.cancel_all();
        self.session.tasks.shutdown().await;
        tracing::info!(cancelled, "shutdown");
        Ok(())
    }

    // Document notifications were already applied by `ordered::Ordered`; nothing is left to do
    // in these handlers.
    async fn did_open(&self, _: lsp::DidOpenTextDocumentParams) {}

    async fn did_change(&self, _: lsp::DidChangeTextDocumentParams) {}

    async fn did_close(&self, _: lsp::DidCloseTextDocumentParams) {}

    async fn did_save(&self, params: lsp::DidSaveTextDocumentParams) {
        if let (Some(index), Some(path)) = (
            self.session.index(),
            proto::file_path(&params.text_document.uri),
        ) {
            let _ = tokio::task::spawn_blocking(move || index.reindex_file(&path)).await;
        }
    }

    async fn did_change_watched_files(&self, params: lsp::DidChangeWatchedFilesParams) {
        let changes: Vec<std::path::PathBuf> = params
            .changes
            .iter()
            .filter_map(|change| proto::file_path(&change.uri))
            .collect();
        // Next edits proposed against a file's old text on disk no longer hold.
        for uri in self.session.next_edits.disk_changed(&changes) {
            self.client.publish_diagnostics(uri, Vec::new(), None).await;
        }
        let Some(index) = self.session.index() else {
            return;
        };
        // `reindex_file` also handles deletions, including a deleted directory's files.
        let _ = tokio::task::spawn_blocking(move || {
            for path in changes {
                index.reindex_file(&path);
            }
            if let Err(err) = index.save_cache() {
                tracing::warn!(%err, "could not save the index cache");
            }
        })
        .await;
    }

    async fn document_symbol(
        &self,
        params: lsp::DocumentSymbolParams,
    ) -> Result<Option<lsp::DocumentSymbolResponse>> {
        if !self.session.config().config.features.document_symbols {
            return Ok(None);
        }
        Ok(self.document_symbols(&params.text_document.uri))
    }

    async fn symbol(
        &self,
        params: lsp::WorkspaceSymbolParams,
    ) -> Result<Option<lsp::WorkspaceSymbolResponse>> {
        if !self.session.config().config.features.workspace_symbols {
            return Ok(None);
        }
        Ok(Some(lsp::WorkspaceSymbolResponse::Flat(
            self.workspace_symbols(&params.query),
        )))
    }

    async fn goto_definition(
        &self,
        params: lsp::GotoDefinitionParams,
    ) -> Result<Option<lsp::GotoDefinitionResponse>> {
        if !self.session.config().config.features.definition {
            return Ok(None);
        }
        let position = params.text_document_position_params;
        let locations = self.definitions(&position.text_document.uri, position.position);
        Ok((!locations.is_empty()).then_some(lsp::GotoDefinitionResponse::Array(locations)))
    }

    // The settings were applied by `ordered::Ordered` as the notification arrived.
    async fn did_change_configuration(&self, _: lsp::DidChangeConfigurationParams) {
        self.report_config_problems().await;
    }

    async fn code_action(
        &self,
        params: lsp::CodeActionParams,
    ) -> Result<Option<lsp::CodeActionResponse>> {
        if !self.session.config().config.features.code_actions {
            return Ok(None);
        }
        // Next-edit actions first: clients list the preferred fix at the top.
        let mut actions = match self
            .session
            .snapshot(&proto::uri_key(&params.text_document.uri))
        {
            Some(snapshot) => self.session.next_edits.code_actions(
                &snapshot,
                &params,
                self.session.client().document_changes,
            ),
            None => Vec::new(),
        };
        actions.extend(self.code_actions(params));
        Ok(Some(actions))
    }

    async fn completion(
        &self,
        params: lsp::CompletionParams,
    ) -> Result<Option<lsp::CompletionResponse>> {
        if !self.session.config().config.features.completion_fallback {
            return Ok(None);
        }
        self.completion_fallback(params).await
    }

    async fn execute_command(&self, params: lsp::ExecuteCommandParams) -> Result<Option<Value>> {
        self.run_command(params).await
    }
}
