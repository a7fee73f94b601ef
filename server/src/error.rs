//! Why something the user asked for did not happen: one error type for every request and job
//! start, mapped to JSON-RPC in one place ([`Error::to_jsonrpc`]).
//!
//! Core crates never fail on user input (they clamp); these are the refusals that remain, each
//! with a message written for the user, shown as-is in `window/showMessage`, the request's error
//! and on the command line.

use tower_lsp_server::jsonrpc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The command's arguments are not what the command takes.
    #[error("{0}")]
    InvalidArguments(String),
    /// The command names a document the editor has not opened (or baton lost track of).
    #[error("{0} is not open in the editor")]
    NotOpen(String),
    /// The command names no document and none is focused.
    #[error("no document is open: open a file or pass textDocument")]
    NoDocument,
    /// The file matches `context.never_send`: nothing of it may reach a model.
    #[error("{0}")]
    NeverSend(String),
    /// The target cannot be worked out (for example a marker with no instruction).
    #[error("{0}")]
    Target(String),
    /// The model is not usable as configured (no key, unknown provider, …).
    #[error("{0}")]
    Model(String),
}

impl Error {
    /// The JSON-RPC error a request answers with. Every refusal is about the request's
    /// parameters or the state they name, so all are `InvalidParams`, with the user's message.
    pub fn to_jsonrpc(&self) -> jsonrpc::Error {
        jsonrpc::Error::invalid_params(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_error_carries_the_users_message() {
        let error = Error::NotOpen("file:///a.rs".into());
        assert_eq!(error.to_string(), "file:///a.rs is not open in the editor");
        let rpc = error.to_jsonrpc();
        assert_eq!(rpc.code, jsonrpc::ErrorCode::InvalidParams);
        assert_eq!(rpc.message, "file:///a.rs is not open in the editor");
    }
}
