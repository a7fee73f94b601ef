//! The Codex app-server transport. (Being built.)

use tokio::sync::mpsc;

use crate::agent::{AgentError, AgentEvent, AgentHandle, AgentSpec, SessionOptions};

pub(crate) async fn start(
    spec: &AgentSpec,
    options: SessionOptions,
) -> Result<(AgentHandle, mpsc::UnboundedReceiver<AgentEvent>), AgentError> {
    let _ = options;
    Err(AgentError::Unsupported(format!(
        "agent `{}`: the app-server transport is not built yet",
        spec.name
    )))
}

/// Applies codex's `update` hunks to `base`. (Being built.)
pub fn apply_unified(base: &str, hunks: &str) -> Result<String, String> {
    let _ = (base, hunks);
    Err("not built yet".into())
}
