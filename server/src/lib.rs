//! The `baton` language server and command-line tool.
//!
//! `main.rs` only parses arguments; [`cli`] dispatches. The LSP layer ([`lsp`]) is a thin edge
//! over the [`session`] (documents, config, jobs) and the [`jobs`] that do the work through a
//! [`frontend::Frontend`], so `baton edit` runs the very same job without an editor.

pub mod cli;
pub mod completion;
pub mod config;
pub mod doctor;
pub mod error;
pub mod frontend;
pub mod headless;
pub mod indexing;
pub mod job_builder;
pub mod job_guard;
pub mod jobs;
pub mod live_document;
pub mod logging;
pub mod lsp;
pub mod next_edit;
pub mod panics;
pub mod plans;
pub mod session;
pub mod stdio;
pub mod targets;
pub mod tasks;
pub mod test_hooks;
