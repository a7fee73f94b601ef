//! Running the workspace index for the language server and the CLI.
//!
//! The full walk runs on a blocking thread, so no request waits for it; requests use whatever
//! the index holds so far (with a warm cache, everything). Progress goes to the frontend's
//! `$/progress` at a bounded rate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use index::{IndexConfig, IndexReport, MapFocus, WorkspaceIndex};
use tokio::sync::mpsc;

use crate::config::{Config, NeverSend};
use crate::frontend::Frontend;

pub fn index_config(config: &Config) -> IndexConfig {
    IndexConfig {
        exclude: config.index.exclude.clone(),
        max_file_bytes: config.index.max_file_bytes,
        ..IndexConfig::default()
    }
}

/// Walks the workspace in the background, reporting progress. `finished` gets the report
/// before the progress ends, so whoever sees the end can ask for it.
pub async fn index_in_background(
    index: Arc<WorkspaceIndex>,
    frontend: Arc<dyn Frontend>,
    token: String,
    finished: impl FnOnce(&IndexReport),
) {
    frontend
        .progress_begin(
            &token,
            "baton: indexing",
            &index.root().display().to_string(),
        )
        .await;
    let (progress_tx, mut progress_rx) = mpsc::unbounded_channel::<(usize, usize)>();
    let walker = tokio::task::spawn_blocking(move || {
        index.index_workspace(&|done, total| {
            let _ = progress_tx.send((done, total));
        })
    });
    let mut last = tokio::time::Instant::now();
    while let Some((done, total)) = progress_rx.recv().await {
        if last.elapsed() >= Duration::from_millis(200) {
            last = tokio::time::Instant::now();
            let message = if total > done {
                format!("{done}/{total} files")
            } else {
                format!("{done} files")
            };
            frontend.progress_report(&token, message).await;
        }
    }
    let report = walker.await.ok();
    let message = match &report {
        Some(report) => {
            finished(report);
            format!(
                "{} files ({} parsed, {} from cache) in {:.0} ms",
                report.files, report.parsed, report.from_cache, report.elapsed_ms
            )
        }
        None => "indexing failed; see the log".into(),
    };
    frontend.progress_end(&token, message).await;
}

/// The identifiers an instruction mentions, for the repo map's focus.
pub fn names_in(instruction: &str) -> Vec<String> {
    let mut names: Vec<String> = instruction
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| {
            word.len() >= 3
                && word
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
        })
        .filter(|word| word.chars().any(|c| c.is_uppercase() || c == '_') || word.len() >= 5)
        .map(String::from)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The repo map for a prompt: focused on the file and line being edited and the names in the
/// instruction, never including files that must not be sent.
pub fn repo_map_text(
    index: &WorkspaceIndex,
    path: &Path,
    line: u32,
    instruction: &str,
    token_budget: usize,
    never_send: &NeverSend,
) -> Option<String> {
    let focus = MapFocus {
        files: vec![path.to_path_buf()],
        lines: vec![(path.to_path_buf(), line)],
        names: names_in(instruction),
    };
    focused_repo_map(index, &focus, token_budget, never_send)
}

/// The repo map for a plan: focused on the files the user pointed at or named (none: the
/// workspace's most central definitions) and the names in the instruction.
pub fn plan_repo_map(
    index: &WorkspaceIndex,
    files: &[PathBuf],
    instruction: &str,
    token_budget: usize,
    never_send: &NeverSend,
) -> Option<String> {
    let focus = MapFocus {
        files: files.to_vec(),
        lines: Vec::new(),
        names: names_in(instruction),
    };
    focused_repo_map(index, &focus, token_budget, never_send)
}

fn focused_repo_map(
    index: &WorkspaceIndex,
    focus: &MapFocus,
    token_budget: usize,
    never_send: &NeverSend,
) -> Option<String> {
    let root = index.root().to_path_buf();
    let map = index.repo_map(focus, token_budget, &|candidate: &Path| {
        never_send.matches(candidate, Some(&root))
    });
    (!map.text.trim().is_empty()).then_some(map.text)
}

/// `baton index [PATH] [--json]`.
pub fn cli_index(root: PathBuf, json: bool) -> i32 {
    let resolved = crate::config::resolve(&crate::config::Inputs::gather(Some(&root), None));
    let index = WorkspaceIndex::new(root, index_config(&resolved.config));
    let report = index.index_workspace(&|_, _| {});
    print!("{}", report.render(json));
    0
}

/// `baton map [PATH] [--focus FILE[:LINE]] [--tokens N]`.
pub fn cli_map(root: PathBuf, focus: Option<(PathBuf, Option<u32>)>, tokens: usize) -> i32 {
    let resolved = crate::config::resolve(&crate::config::Inputs::gather(Some(&root), None));
    let index = WorkspaceIndex::new(root.clone(), index_config(&resolved.config));
    index.index_workspace(&|_, _| {});
    let never_send = resolved.never_send;
    let mut map_focus = MapFocus::default();
    if let Some((file, line)) = focus {
        let file = if file.is_absolute() {
            file
        } else {
            root.join(file)
        };
        let file = std::path::absolute(&file).unwrap_or(file);
        if let Some(line) = line {
            map_focus.lines.push((file.clone(), line.saturating_sub(1)));
        }
        map_focus.files.push(file);
    }
    let root = index.root().to_path_buf();
    let map = index.repo_map(&map_focus, tokens, &|candidate: &Path| {
        never_send.matches(candidate, Some(&root))
    });
    print!("{}", map.text);
    if !map.text.is_empty() && !map.text.ends_with('\n') {
        println!();
    }
    eprintln!(
        "baton: {} files, about {} tokens",
        map.files.len(),
        map.tokens
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_names_are_identifiers() {
        assert_eq!(
            names_in("call load_config and use the UserStore, not it"),
            vec!["UserStore".to_string(), "load_config".to_string()]
        );
    }
}
