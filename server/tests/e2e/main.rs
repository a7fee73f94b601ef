//! Protocol-level tests: the real `baton` binary over real JSON-RPC on stdio, a fake model
//! server speaking the providers' real SSE formats on 127.0.0.1, and scripted clients that
//! behave like Neovim, Helix and Zed. One test binary, as the conventions ask.

mod support;

mod cli;
mod clients;
mod config;
mod edits;
mod faults;
mod fuzz;
mod index;
mod inline;
mod multibyte;
mod neovim;
mod neovim_tasks;
mod next_edit;
mod panics;
mod plans;
mod stress;
mod task_faults;
mod tasks;
