//! placeholder
pub mod lsp_client;
pub mod neovim;
