//! External coding agents, driven over their own protocols, working in a shadow copy of the
//! workspace.
//!
//! - [`agent`] is the one task abstraction: an [`agent::AgentSpec`] says how to start or reach
//!   an agent, [`agent::start`] connects and opens one session (ACP) or thread (Codex
//!   app-server), and the returned [`agent::AgentHandle`] sends prompts, cancels, answers
//!   permission requests and shuts the agent down, while [`agent::AgentEvent`]s arrive in order
//!   on a channel.
//! - [`acp`] is the Agent Client Protocol transport (crate `agent-client-protocol`).
//! - [`app_server`] is the Codex app-server transport: JSON-RPC lines over the child's stdio, or
//!   a WebSocket to an app-server started elsewhere (`codex app-server --listen ws://…`).
//! - [`shadow`] keeps the copy of the workspace an agent works in, and [`changes`] diffs it
//!   against what it was seeded with: the ground truth of what the agent changed.
//!
//! Nothing here talks LSP or touches the editor's buffers: the server lands the changes through
//! the shared edit engine.

pub mod acp;
pub mod agent;
pub mod app_server;
pub mod changes;
pub mod shadow;
