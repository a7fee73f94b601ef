//! `cargo xtask`: the project's automation, as a program rather than shell scripts.
//!
//! Commands:
//!
//! - `bench-edit [--runs N] [--tokens N] [--no-build] [--no-lsp-ai]`: the inline edit benchmark
//!   (see [`bench_edit`]); prints its table and records it in `docs/benchmarks.md`.
//! - `bench-complete [--no-build]`: inline completion while a scripted Neovim 0.12 types a line
//!   against the fake model (see [`bench_complete`]): model requests per keystroke, cache hits,
//!   overhead over the model's time to a first line, stale answers; same output.
//! - `fuzz [--minutes N] [--target NAME] [--first-seed S]`: every fuzz target (the server loop,
//!   `sse`, `positions`, `markers`, `tags`, `file_symbols`, `config`), or one, for N minutes each
//!   (see [`fuzz`]).
//! - `bench-index [--corpus DIR] [--runs N] [--no-build]`: the workspace index against Universal
//!   Ctags on a corpus fetched from the package registries (see [`bench_index`]); same output.
//! - `bench-task [--corpus DIR] [--runs N] [--whole-tree-runs N] [--shadow-only]`: the shadow
//!   workspace an agent task runs in (cold creation, re-sync, `changes()`) against `cp -a` and
//!   `git worktree add` on the corpus (the source files `bench-index` indexes), then on
//!   the whole corpus tree (`--whole-tree-runs 0` skips it), and the landing latency (see
//!   [`bench_task`]); same output, except with `--shadow-only` (shadow rows printed only).
//! - `soak [--minutes N] [--seed S] [--no-build]`: a scripted Neovim types, runs inline edit jobs
//!   with injected model faults and changes files on disk for N minutes (30 by default) against
//!   the release baton (see [`soak`]); prints divergences, lost characters, jobs by outcome, RSS
//!   and file descriptors, records them in `docs/benchmarks.md`, and fails when a goal is missed.

mod bench_complete;
mod bench_edit;
mod bench_index;
mod bench_landing;
mod bench_task;
mod fuzz;
mod measure;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;

pub const USAGE: &str = "usage: cargo xtask bench-complete [--no-build]
       cargo xtask bench-edit [--runs N] [--tokens N] [--no-build] [--no-lsp-ai]
       cargo xtask bench-index [--corpus DIR] [--runs N] [--no-build]
       cargo xtask bench-task [--corpus DIR] [--runs N] [--whole-tree-runs N] [--shadow-only]
       cargo xtask fuzz [--minutes N] [--target NAME] [--first-seed S]
       cargo xtask soak [--minutes N] [--seed S] [--no-build]";

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let result = match arguments.first().map(String::as_str) {
        Some("bench-complete") => bench_complete::Options::parse(&arguments[1..])
            .and_then(|options| bench_complete::run(&workspace_root(), &options)),
        Some("bench-edit") => bench_edit::Options::parse(&arguments[1..])
            .and_then(|options| bench_edit::run(&workspace_root(), &options)),
        Some("bench-index") => bench_index::Options::parse(&arguments[1..])
            .and_then(|options| bench_index::run(&workspace_root(), &options)),
        Some("bench-task") => bench_task::Options::parse(&arguments[1..])
            .and_then(|options| bench_task::run(&workspace_root(), &options)),
        Some("fuzz") => fuzz::Options::parse(&arguments[1..])
            .and_then(|options| fuzz::run(&workspace_root(), &options)),
        Some("soak") => soak::Options::parse(&arguments[1..])
            .and_then(|options| soak::run(&workspace_root(), &options)),
        _ => Err(anyhow::anyhow!(USAGE)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root: the xtask crate lives one level below it.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}
