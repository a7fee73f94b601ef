//! Test helpers shared by baton's crates: servers that speak real wire protocols on loopback.

pub mod codex;
pub mod fake_model;
pub mod inline_completion;
pub mod lsp_client;
pub mod neovim;
pub mod scripted_agent;
