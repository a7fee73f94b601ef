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
