//! The Agent Client Protocol transport. (Being built.)

use tokio::sync::mpsc;

use crate::agent::{AgentError, AgentEvent, AgentHandle, AgentSpec, SessionOptions};

pub(crate) async fn start(
    spec: &AgentSpec,
    options: SessionOptions,
) -> Result<(AgentHandle, mpsc::UnboundedReceiver<AgentEvent>), AgentError> {
    let _ = options;
    Err(AgentError::Unsupported(format!(
        "agent `{}`: the ACP transport is not built yet",
        spec.name
    )))
}
