//! `baton doctor`: what baton would use, and whether it can.

use std::fmt::Write;
use std::path::Path;

use crate::config::{self, Inputs};

pub fn report(root: &Path) -> String {
    let inputs = Inputs::gather(Some(root), None);
    let resolved = config::resolve(&inputs);
    let mut out = String::new();
    let _ = writeln!(out, "baton {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(out, "log file: {}", crate::logging::log_path().display());
    let _ = writeln!(
        out,
        "user config: {}",
        config::user_config_path()
            .map(|path| path.display().to_string())
            .unwrap_or_else(|| "(no config directory)".into())
    );
    let _ = writeln!(out, "workspace: {}", root.display());
    let _ = writeln!(out, "\nconfiguration sources (lowest first): defaults");
    for source in &resolved.loaded {
        let _ = writeln!(out, "  + {source}");
    }
    let _ = writeln!(out, "\nmodels:");
    for (tier, entry) in [
        ("fast", &resolved.config.models.fast),
        ("deep", &resolved.config.models.deep),
    ] {
        let settings = entry.settings();
        let key = match &settings.api_key_env {
            Some(name) => {
                let set = std::env::var(name)
                    .map(|value| !value.is_empty())
                    .unwrap_or(false);
                format!("{name} ({})", if set { "set" } else { "unset" })
            }
            None => "none (no key sent)".into(),
        };
        let usable = match model::check_usable(&settings) {
            Ok(()) => "usable".to_string(),
            Err(err) => format!("NOT usable: {}", err.user_message()),
        };
        let provider = serde_json::to_value(settings.provider)
            .ok()
            .and_then(|value| value.as_str().map(String::from))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {tier}: provider={provider} model={} base_url={} key={key}\n        {usable}",
            settings.model, settings.base_url
        );
    }
    let _ = writeln!(
        out,
        "\ncontext: max_tokens={}",
        resolved.config.context.max_tokens
    );
    // Every list applies at once, so each is shown with where it comes from.
    let _ = writeln!(out, "never_send (a file matching any list is never sent):");
    for list in resolved.never_send.describe() {
        let _ = writeln!(out, "  - {list}");
    }
    let _ = writeln!(
        out,
        "index: enabled={} exclude={:?} max_file_bytes={}",
        resolved.config.index.enabled,
        resolved.config.index.exclude,
        resolved.config.index.max_file_bytes
    );
    let harness = &resolved.config.harness;
    let _ = writeln!(
        out,
        "\nagents (harness.agent = {}, approval = {}, approval_timeout_s = {}):",
        harness.agent,
        serde_json::to_value(harness.approval)
            .ok()
            .and_then(|value| value.as_str().map(String::from))
            .unwrap_or_default(),
        harness.approval_timeout_s
    );
    for (name, agent) in &harness.agents {
        let kind = serde_json::to_value(agent.kind)
            .ok()
            .and_then(|value| value.as_str().map(String::from))
            .unwrap_or_default();
        if let Some(connect) = &agent.connect {
            let _ = writeln!(out, "  {name}: kind={kind} connect={connect} (remote)");
            continue;
        }
        let program = agent.command.first().map(String::as_str).unwrap_or("");
        let found = find_on_path(program);
        let status = match &found {
            Some(path) => format!("found at {}", path.display()),
            None => "NOT found on PATH".to_string(),
        };
        let _ = writeln!(
            out,
            "  {name}: kind={kind} command={:?} env={:?}\n        {status}",
            agent.command,
            agent.env.keys().collect::<Vec<_>>()
        );
        if let Some(path) = found
            && agent.kind == config::AgentKindSetting::CodexAppServer
        {
            let version = std::process::Command::new(&path)
                .arg("--version")
                .output()
                .ok()
                .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
                .filter(|version| !version.is_empty())
                .unwrap_or_else(|| "unknown".into());
            let _ = writeln!(
                out,
                "        version: {version} (baton was checked with codex {})",
                harness::app_server::CODEX_VERSION_CHECKED
            );
        }
    }
    if resolved.problems.is_empty() {
        let _ = writeln!(out, "\nconfig errors: none");
    } else {
        let _ = writeln!(out, "\nconfig errors:");
        for problem in &resolved.problems {
            let _ = writeln!(out, "  - {problem}");
        }
    }
    out
}

/// Where `program` would be run from: itself when it names a path, else the first match on
/// PATH.
fn find_on_path(program: &str) -> Option<std::path::PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = std::path::PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
