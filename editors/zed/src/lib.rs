//! Zed extension for baton: starts `baton lsp` and passes the user's `lsp.baton` settings on.
//!
//! Zed cannot start a custom language server without an extension. This one downloads nothing:
//! baton must be installed (`cargo install --path server`), either on the `PATH` Zed sees for the
//! worktree or at `lsp.baton.binary.path` in Zed's settings.

use zed_extension_api::{self as zed, LanguageServerId, Result, settings::LspSettings};

/// The name of the server in `extension.toml` and in Zed's `lsp` settings.
const SERVER_NAME: &str = "baton";

struct BatonExtension;

impl zed::Extension for BatonExtension {
    fn new() -> BatonExtension {
        BatonExtension
    }

    fn language_server_command(
        &mut self,
        _language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<zed::Command> {
        let binary = LspSettings::for_worktree(SERVER_NAME, worktree)
            .ok()
            .and_then(|settings| settings.binary);
        let configured_path = binary.as_ref().and_then(|binary| binary.path.clone());
        let command = match configured_path.or_else(|| worktree.which("baton")) {
            Some(path) => path,
            None => {
                return Err(
                    "baton is not on PATH: install it with `cargo install --path server` \
                            from the baton repository, or set lsp.baton.binary.path"
                        .into(),
                );
            }
        };
        let args = binary
            .as_ref()
            .and_then(|binary| binary.arguments.clone())
            .unwrap_or_else(|| vec!["lsp".into()]);
        // The worktree's shell environment carries the API key variables (OPENAI_API_KEY, ...)
        // and BATON_*; settings may add more.
        let mut env = worktree.shell_env();
        if let Some(extra) = binary.and_then(|binary| binary.env) {
            env.extend(extra);
        }
        Ok(zed::Command { command, args, env })
    }

    fn language_server_initialization_options(
        &mut self,
        _language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<zed::serde_json::Value>> {
        Ok(LspSettings::for_worktree(SERVER_NAME, worktree)
            .ok()
            .and_then(|settings| settings.initialization_options))
    }

    fn language_server_workspace_configuration(
        &mut self,
        _language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<zed::serde_json::Value>> {
        Ok(LspSettings::for_worktree(SERVER_NAME, worktree)
            .ok()
            .and_then(|settings| settings.settings))
    }
}

zed::register_extension!(BatonExtension);
