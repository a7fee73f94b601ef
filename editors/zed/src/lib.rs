//! Zed extension for baton: starts `baton lsp` and passes the user's `lsp.baton` settings on.
//!
//! Zed cannot start a custom language server without an extension. This one downloads nothing:
//! baton must be installed (`cargo install --path server`), either on the `PATH` Zed sees for the
//! worktree or at `lsp.baton.binary.path` in Zed's settings.
//!
//! What the extension computes lives in plain functions of Zed's settings and the worktree's
//! answers ([`server_command`], [`initialization_options`], [`workspace_configuration`]), so it is
//! unit-tested on the host; the [`zed::Extension`] methods only fetch those inputs from Zed.

use zed_extension_api::{self as zed, EnvVars, LanguageServerId, Result, settings::LspSettings};

/// The name of the server in `extension.toml` and in Zed's `lsp` settings.
const SERVER_NAME: &str = "baton";

/// The executable looked up on the worktree's `PATH` when the settings name none.
const BINARY_NAME: &str = "baton";

/// The arguments when the settings give none: serve LSP on stdin/stdout.
const DEFAULT_ARGS: [&str; 1] = ["lsp"];

const NOT_FOUND: &str = "baton is not on PATH: install it with `cargo install --path server` \
                         from the baton repository, or set lsp.baton.binary.path";

/// The command Zed runs for baton.
///
/// `settings` are the user's `lsp.baton` settings (`None` when Zed has none or they do not
/// parse); `which` looks `baton` up on the worktree's `PATH` and is only asked when the settings
/// give no `binary.path`; `shell_env` is the worktree's shell environment, which carries the API
/// key variables (`OPENAI_API_KEY`, ...) and `BATON_*`. `binary.env` adds to it and wins over a
/// variable of the same name; `binary.arguments` replaces `lsp`.
pub fn server_command(
    settings: Option<&LspSettings>,
    which: impl FnOnce() -> Option<String>,
    shell_env: EnvVars,
) -> Result<zed::Command> {
    let binary = settings.and_then(|settings| settings.binary.as_ref());
    let configured_path = binary.and_then(|binary| binary.path.clone());
    let command = configured_path.or_else(which).ok_or(NOT_FOUND)?;
    let args = binary
        .and_then(|binary| binary.arguments.clone())
        .unwrap_or_else(|| DEFAULT_ARGS.iter().map(|arg| arg.to_string()).collect());
    let mut env = shell_env;
    if let Some(extra) = binary.and_then(|binary| binary.env.as_ref()) {
        // Sorted, so the command is the same on every start.
        let mut extra: Vec<(&String, &String)> = extra.iter().collect();
        extra.sort();
        for (name, value) in extra {
            match env.iter_mut().find(|(existing, _)| existing == name) {
                Some(entry) => entry.1 = value.clone(),
                None => env.push((name.clone(), value.clone())),
            }
        }
    }
    Ok(zed::Command { command, args, env })
}

/// `lsp.baton.initialization_options`, sent unchanged as `initializationOptions`.
pub fn initialization_options(settings: Option<LspSettings>) -> Option<zed::serde_json::Value> {
    settings.and_then(|settings| settings.initialization_options)
}

/// `lsp.baton.settings`, sent unchanged as the workspace configuration
/// (`workspace/didChangeConfiguration` and `workspace/configuration`).
pub fn workspace_configuration(settings: Option<LspSettings>) -> Option<zed::serde_json::Value> {
    settings.and_then(|settings| settings.settings)
}

/// The user's `lsp.baton` settings for this worktree; `None` when they cannot be read.
fn lsp_settings(worktree: &zed::Worktree) -> Option<LspSettings> {
    LspSettings::for_worktree(SERVER_NAME, worktree).ok()
}

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
        server_command(
            lsp_settings(worktree).as_ref(),
            || worktree.which(BINARY_NAME),
            worktree.shell_env(),
        )
    }

    fn language_server_initialization_options(
        &mut self,
        _language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<zed::serde_json::Value>> {
        Ok(initialization_options(lsp_settings(worktree)))
    }

    fn language_server_workspace_configuration(
        &mut self,
        _language_server_id: &LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<zed::serde_json::Value>> {
        Ok(workspace_configuration(lsp_settings(worktree)))
    }
}

zed::register_extension!(BatonExtension);

#[cfg(test)]
mod tests {
    use super::*;
    use zed::serde_json::{Value, json};

    /// `lsp.baton` as Zed hands it over: the JSON from `settings.json`.
    fn settings(value: Value) -> LspSettings {
        zed::serde_json::from_value(value).expect("valid lsp settings")
    }

    fn shell_env() -> EnvVars {
        vec![
            ("PATH".into(), "/usr/bin".into()),
            ("OPENAI_API_KEY".into(), "from-the-shell".into()),
        ]
    }

    fn on_path() -> Option<String> {
        Some("/home/me/.cargo/bin/baton".into())
    }

    #[test]
    fn without_settings_it_runs_baton_lsp_from_the_path_with_the_shell_environment() {
        let command = server_command(None, on_path, shell_env()).unwrap();
        assert_eq!(command.command, "/home/me/.cargo/bin/baton");
        assert_eq!(command.args, ["lsp"]);
        assert_eq!(command.env, shell_env());

        // Settings without a `binary` section change nothing.
        let only_options = settings(json!({ "initialization_options": { "features": {} } }));
        let command = server_command(Some(&only_options), on_path, shell_env()).unwrap();
        assert_eq!(command.command, "/home/me/.cargo/bin/baton");
        assert_eq!(command.args, ["lsp"]);
    }

    #[test]
    fn a_configured_path_wins_and_the_path_is_not_searched() {
        let configured = settings(json!({ "binary": { "path": "/opt/baton/bin/baton" } }));
        let command = server_command(
            Some(&configured),
            || panic!("the PATH is searched only without binary.path"),
            shell_env(),
        )
        .unwrap();
        assert_eq!(command.command, "/opt/baton/bin/baton");
        assert_eq!(command.args, ["lsp"], "arguments default to `lsp`");
    }

    #[test]
    fn configured_arguments_replace_lsp() {
        let configured = settings(json!({ "binary": { "arguments": ["lsp", "--verbose"] } }));
        let command = server_command(Some(&configured), on_path, shell_env()).unwrap();
        assert_eq!(command.command, "/home/me/.cargo/bin/baton");
        assert_eq!(command.args, ["lsp", "--verbose"]);
    }

    #[test]
    fn configured_environment_is_added_and_wins_over_the_shell() {
        let configured = settings(json!({ "binary": { "env": {
            "OPENAI_API_KEY": "from-settings",
            "BATON_LOG": "debug",
            "BATON_LOG_FILE": "/tmp/baton.log",
        } } }));
        let command = server_command(Some(&configured), on_path, shell_env()).unwrap();
        assert_eq!(
            command.env,
            [
                ("PATH".to_string(), "/usr/bin".to_string()),
                ("OPENAI_API_KEY".to_string(), "from-settings".to_string()),
                ("BATON_LOG".to_string(), "debug".to_string()),
                ("BATON_LOG_FILE".to_string(), "/tmp/baton.log".to_string()),
            ]
        );
    }

    #[test]
    fn without_baton_anywhere_the_error_says_how_to_install_it() {
        let error = server_command(None, || None, shell_env()).unwrap_err();
        assert!(error.contains("cargo install --path server"), "{error}");
        assert!(error.contains("lsp.baton.binary.path"), "{error}");

        let no_path = settings(json!({ "binary": { "arguments": ["lsp"] } }));
        assert_eq!(
            server_command(Some(&no_path), || None, shell_env()).unwrap_err(),
            error
        );
    }

    #[test]
    fn initialization_options_and_settings_pass_through_unchanged() {
        let options = json!({
            "models": { "fast": { "provider": "openai", "model": "gpt-5.3-codex-spark" } },
            "features": { "definition": false, "completion_fallback": true },
            "never_send": ["**/.env"],
        });
        let workspace = json!({ "context": { "max_tokens": 4000 }, "unknown": [1, null, "x"] });
        let both = || {
            settings(json!({
                "initialization_options": options.clone(),
                "settings": workspace.clone(),
            }))
        };
        assert_eq!(initialization_options(Some(both())), Some(options.clone()));
        assert_eq!(workspace_configuration(Some(both())), Some(workspace));

        // Each is independent of the other, and absent without settings.
        let only_options = settings(json!({ "initialization_options": options.clone() }));
        assert_eq!(workspace_configuration(Some(only_options)), None);
        assert_eq!(initialization_options(Some(settings(json!({})))), None);
        assert_eq!(initialization_options(None), None);
        assert_eq!(workspace_configuration(None), None);
    }
}
