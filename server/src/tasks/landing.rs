//! Landing an agent's changes in the editor, and undoing them.
//!
//! The agent works in a shadow copy; [`Lander::land`] takes what changed there (the shadow
//! diffed against its base, or a remote agent's reported diffs) and brings it into the editor:
//! - a file the editor has open goes through the shared merge engine ([`jobs::run_merge`]):
//!   the agent's text is three-way merged with what the user typed since the task started and
//!   lands one minimal, versioned hunk at a time; where both changed the same lines the user's
//!   text stays and the conflict is reported;
//! - a file that is not open gets `version: null` edits computed against its text on disk
//!   (merged the same way if the disk no longer holds the base);
//! - created, renamed and deleted files become `CreateFile` / `RenameFile` / `DeleteFile`
//!   where the editor supports them, else a message naming what could not be landed.
//!
//! Each file's landing remembers the base and the agent's last text, so calling `land` again
//! with the same changes does nothing, a newer text lands only the difference, and
//! [`Lander::undo`] can put the base back while keeping the user's typing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use edit::diff::minimal_edits;
use harness::changes::Change;
use text::Document;

use crate::config::EditSettings;
use crate::frontend::{FileOperation, Frontend};
use crate::jobs::{self, MergeRun, Outcome, Proposal};
use crate::session::Session;
use crate::tasks::document::{FileEntry, FileState, TaskLog};

/// What one file went through.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Modified,
    Created,
    Deleted,
    Renamed { from: String },
}

#[derive(Debug)]
struct FileLanding {
    kind: Kind,
    /// The text the agent started from (`None` for a file it created).
    base: Option<String>,
    /// The agent's text last sent to the editor (`None` once deleted).
    agent: Option<String>,
    /// The merge engine landing into the open buffer, while it runs.
    live: Option<MergeRun>,
    /// For a file the editor had not opened: the text baton's last `version: null` edit left
    /// in the editor (which now holds it in a buffer, unsaved, while the disk still has the
    /// old text), so the next edit is computed against that and not against the disk.
    held: Option<String>,
}

/// Lands one task's changes. See the module documentation.
pub struct Lander {
    session: Arc<Session>,
    frontend: Arc<dyn Frontend>,
    root: PathBuf,
    settings: EditSettings,
    label: String,
    log: Arc<Mutex<TaskLog>>,
    files: BTreeMap<String, FileLanding>,
}

impl Lander {
    pub fn new(
        session: Arc<Session>,
        frontend: Arc<dyn Frontend>,
        root: PathBuf,
        label: String,
        log: Arc<Mutex<TaskLog>>,
    ) -> Lander {
        let settings = session.config().config.edit.clone();
        Lander {
            session,
            frontend,
            root,
            settings,
            label,
            log,
            files: BTreeMap::new(),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    fn note(&self, path: &str, change: &str, old: &str, new: &str, state: FileState) {
        let (added, removed) = line_counts(old, new);
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.files.insert(
            path.to_string(),
            FileEntry {
                change: change.to_string(),
                added,
                removed,
                state,
            },
        );
    }

    fn refuse(&self, path: &str, reason: String) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.files.insert(
            path.to_string(),
            FileEntry {
                change: "changed".into(),
                added: 0,
                removed: 0,
                state: FileState::NotLanded(reason),
            },
        );
    }

    /// Lands what changed since the last call. Returns how many files it sent something for.
    pub async fn land(&mut self, changes: Vec<Change>) -> usize {
        let mut operations = Vec::new();
        let mut touched = 0;
        let resource = self.frontend.resource_operations();
        for change in changes {
            match change {
                Change::Modified { path, base, new } => {
                    let key = slash(&path);
                    let landing = self.files.entry(key.clone()).or_insert(FileLanding {
                        kind: Kind::Modified,
                        base: Some(base.clone()),
                        agent: Some(base.clone()),
                        live: None,
                        held: None,
                    });
                    if landing.agent.as_deref() == Some(new.as_str()) {
                        continue;
                    }
                    touched += 1;
                    let previous = landing.agent.clone().unwrap_or_default();
                    self.modify(&key, &previous, &new, &mut operations).await;
                    if let Some(landing) = self.files.get_mut(&key) {
                        landing.agent = Some(new.clone());
                    }
                    self.note(&key, "modified", &base, &new, FileState::Landed);
                }
                Change::Created { path, text } => {
                    let key = slash(&path);
                    let known = self.files.get(&key).and_then(|l| l.agent.clone());
                    if known.as_deref() == Some(text.as_str()) {
                        continue;
                    }
                    touched += 1;
                    if known.is_none() {
                        if !resource.create {
                            self.refuse(
                                &key,
                                "the editor cannot create files (no `create` resource operation)"
                                    .into(),
                            );
                            continue;
                        }
                        operations.push(FileOperation::Create {
                            path: self.path(&key),
                        });
                        operations.push(closed_edit(self.path(&key), "", &text));
                    } else {
                        let previous = known.unwrap_or_default();
                        self.modify(&key, &previous, &text, &mut operations).await;
                    }
                    let held = self.files.get(&key).and_then(|l| l.held.clone());
                    self.files.insert(
                        key.clone(),
                        FileLanding {
                            kind: Kind::Created,
                            base: None,
                            agent: Some(text.clone()),
                            live: None,
                            held: held.or(Some(text.clone())),
                        },
                    );
                    self.note(&key, "created", "", &text, FileState::Landed);
                }
                Change::Deleted { path, base } => {
                    let key = slash(&path);
                    if self
                        .files
                        .get(&key)
                        .is_some_and(|landing| landing.agent.is_none())
                    {
                        continue;
                    }
                    touched += 1;
                    if !resource.delete {
                        self.refuse(
                            &key,
                            "the editor cannot delete files (no `delete` resource operation)"
                                .into(),
                        );
                        continue;
                    }
                    self.stop_live(&key).await;
                    operations.push(FileOperation::Delete {
                        path: self.path(&key),
                    });
                    self.files.insert(
                        key.clone(),
                        FileLanding {
                            kind: Kind::Deleted,
                            base: Some(base.clone()),
                            agent: None,
                            live: None,
                            held: None,
                        },
                    );
                    self.note(&key, "deleted", &base, "", FileState::Landed);
                }
                Change::Renamed {
                    from,
                    to,
                    base,
                    new,
                } => {
                    let (from, to) = (slash(&from), slash(&to));
                    if self
                        .files
                        .get(&to)
                        .is_some_and(|landing| landing.agent.as_deref() == Some(new.as_str()))
                    {
                        continue;
                    }
                    touched += 1;
                    if !resource.rename {
                        self.refuse(
                            &to,
                            format!(
                                "the editor cannot rename files (no `rename` resource operation): \
                                 {from} → {to}"
                            ),
                        );
                        continue;
                    }
                    self.stop_live(&from).await;
                    operations.push(FileOperation::Rename {
                        from: self.path(&from),
                        to: self.path(&to),
                    });
                    if base != new {
                        operations.push(closed_edit(self.path(&to), &base, &new));
                    }
                    self.files.insert(
                        to.clone(),
                        FileLanding {
                            kind: Kind::Renamed { from: from.clone() },
                            base: Some(base.clone()),
                            agent: Some(new.clone()),
                            live: None,
                            held: Some(new.clone()),
                        },
                    );
                    self.note(
                        &to,
                        &format!("renamed from `{from}`"),
                        &base,
                        &new,
                        FileState::Landed,
                    );
                }
                Change::Refused { path, reason } => {
                    let key = slash(&path);
                    let already = self
                        .log
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .files
                        .contains_key(&key);
                    if !already {
                        self.refuse(&key, reason.to_string());
                    }
                }
            }
        }
        if !operations.is_empty() {
            self.send(operations).await;
        }
        touched
    }

    /// Brings `relative` from the agent's `previous` text to `new`: through the merge engine
    /// when the file is open, else as an edit of the file on disk.
    async fn modify(
        &mut self,
        relative: &str,
        previous: &str,
        new: &str,
        operations: &mut Vec<FileOperation>,
    ) {
        let path = self.path(relative);
        if let Some(live) = self
            .files
            .get(relative)
            .and_then(|landing| landing.live.as_ref())
            && !live.done.is_finished()
            && live.proposals.send(Proposal::Text(new.to_string())).is_ok()
        {
            return;
        }
        if let Some(run) = jobs::spawn_merge(
            &self.session,
            self.frontend.clone(),
            &path,
            previous.to_string(),
            new.to_string(),
            &self.settings,
        ) {
            if let Some(landing) = self.files.get_mut(relative) {
                landing.live = Some(run);
            }
            return;
        }
        // Not open: the editor edits the file as it holds it: what baton's last edit left, or
        // else the disk. If that is not what the agent started from (the user saved
        // meanwhile), merge, keeping the user's lines.
        let held = self
            .files
            .get(relative)
            .and_then(|landing| landing.held.clone())
            .or_else(|| std::fs::read_to_string(&path).ok())
            .unwrap_or_else(|| previous.to_string());
        let result = if held == previous {
            new.to_string()
        } else {
            let merged = edit::merge::merge3(previous, &held, new);
            if !merged.conflicts.is_empty() {
                self.conflict(relative, merged.conflicts.len());
            }
            merged.text
        };
        operations.push(closed_edit(path, &held, &result));
        if let Some(landing) = self.files.get_mut(relative) {
            landing.held = Some(result);
        }
    }

    fn conflict(&self, relative: &str, count: usize) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.conflicts.push(format!(
            "`{relative}`: {count} of the agent's changes overlapped yours and were left out"
        ));
    }

    async fn send(&self, operations: Vec<FileOperation>) {
        match self
            .frontend
            .apply_operations(&self.label, operations)
            .await
        {
            Ok(true) => {}
            Ok(false) => self.error("the editor did not apply a change of this task".into()),
            Err(err) => self.error(format!("the editor refused a change of this task: {err}")),
        }
    }

    fn error(&self, text: String) {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .errors
            .push(text);
    }

    /// Ends a file's live merge landing, once what it was given has landed.
    async fn stop_live(&mut self, relative: &str) {
        let Some(live) = self
            .files
            .get_mut(relative)
            .and_then(|landing| landing.live.take())
        else {
            return;
        };
        let _ = live.proposals.send(Proposal::Finish);
        self.collect(relative, live.done).await;
    }

    async fn collect(&self, relative: &str, done: JoinHandle<(Outcome, usize)>) {
        match done.await {
            Ok((Outcome::Failed { reason, .. }, _)) => {
                self.error(format!("`{relative}`: {reason}"));
            }
            Ok((_, conflicts)) if conflicts > 0 => self.conflict(relative, conflicts),
            Ok(_) => {}
            Err(err) => self.error(format!("`{relative}`: landing stopped: {err}")),
        }
    }

    /// Lets every live landing finish what it was given (at the end of a turn), so conflicts
    /// are counted and reported.
    pub async fn settle(&mut self) {
        let keys: Vec<String> = self.files.keys().cloned().collect();
        for key in keys {
            self.stop_live(&key).await;
        }
    }

    /// The task's whole change, base → agent, as a unified diff with git-style headers.
    pub fn unified_diff(&self) -> String {
        let mut out = String::new();
        for (path, landing) in &self.files {
            let (old_path, new_path) = match &landing.kind {
                Kind::Created => ("/dev/null".to_string(), format!("b/{path}")),
                Kind::Deleted => (format!("a/{path}"), "/dev/null".to_string()),
                Kind::Renamed { from } => (format!("a/{from}"), format!("b/{path}")),
                Kind::Modified => (format!("a/{path}"), format!("b/{path}")),
            };
            let old = landing.base.as_deref().unwrap_or("");
            let new = landing.agent.as_deref().unwrap_or("");
            let diff = similar::TextDiff::from_lines(old, new);
            out.push_str(
                &diff
                    .unified_diff()
                    .context_radius(3)
                    .header(&old_path, &new_path)
                    .to_string(),
            );
        }
        out
    }

    /// The files this task changed (workspace-relative), for code actions in those files.
    pub fn changed_paths(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// Marks every change kept: nothing more to undo.
    pub async fn keep_all(&mut self) {
        self.settle().await;
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        for entry in log.files.values_mut() {
            if entry.state == FileState::Landed {
                entry.state = FileState::Kept;
            }
        }
    }

    /// Puts back the text the agent started from in `relative` (every file when `None`),
    /// keeping what the user typed since.
    pub async fn undo(&mut self, relative: Option<&str>) {
        let keys: Vec<String> = match relative {
            Some(path) => vec![path.to_string()],
            None => self.files.keys().cloned().collect(),
        };
        let mut operations = Vec::new();
        for key in keys {
            self.stop_live(&key).await;
            let Some(landing) = self.files.get(&key) else {
                self.error(format!("`{key}` was not changed by this task"));
                continue;
            };
            let (kind, base, agent) = (
                landing.kind.clone(),
                landing.base.clone(),
                landing.agent.clone(),
            );
            match (&kind, base, agent) {
                (Kind::Created, _, Some(_)) => operations.push(FileOperation::Delete {
                    path: self.path(&key),
                }),
                (Kind::Deleted, Some(base), None) => {
                    operations.push(FileOperation::Create {
                        path: self.path(&key),
                    });
                    operations.push(closed_edit(self.path(&key), "", &base));
                }
                (Kind::Renamed { from }, Some(base), Some(agent)) => {
                    operations.push(FileOperation::Rename {
                        from: self.path(&key),
                        to: self.path(from),
                    });
                    if base != agent {
                        operations.push(closed_edit(self.path(from), &agent, &base));
                    }
                }
                (Kind::Modified, Some(base), Some(agent)) => {
                    let path = self.path(&key);
                    // Reverting is merging the base back in, with the agent's text as the
                    // common ancestor: the agent's changes go, the user's stay.
                    if let Some(run) = jobs::spawn_merge(
                        &self.session,
                        self.frontend.clone(),
                        &path,
                        agent.clone(),
                        base.clone(),
                        &self.settings,
                    ) {
                        let _ = run.proposals.send(Proposal::Finish);
                        let (outcome, conflicts) = run.done.await.unwrap_or_else(|err| {
                            (
                                Outcome::Failed {
                                    reason: err.to_string(),
                                    restored: false,
                                },
                                0,
                            )
                        });
                        if let Outcome::Failed { reason, .. } = outcome {
                            self.error(format!("undoing `{key}`: {reason}"));
                        }
                        if conflicts > 0 {
                            self.conflict(&key, conflicts);
                        }
                    } else {
                        let held = self
                            .files
                            .get(&key)
                            .and_then(|landing| landing.held.clone())
                            .or_else(|| std::fs::read_to_string(&path).ok())
                            .unwrap_or(agent.clone());
                        let merged = edit::merge::merge3(&agent, &held, &base);
                        operations.push(closed_edit(path, &held, &merged.text));
                        if let Some(landing) = self.files.get_mut(&key) {
                            landing.held = Some(merged.text);
                        }
                    }
                }
                _ => continue,
            }
            if let Some(landing) = self.files.get_mut(&key) {
                landing.agent = landing.base.clone();
            }
            let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = log.files.get_mut(&key) {
                entry.state = FileState::Undone;
            }
        }
        if !operations.is_empty() {
            self.send(operations).await;
        }
    }
}

/// `version: null` edits that turn `old` (the file as the editor will read it) into `new`.
fn closed_edit(path: PathBuf, old: &str, new: &str) -> FileOperation {
    FileOperation::Edit {
        path,
        version: None,
        document: Document::new(old, 0, ""),
        edits: minimal_edits(old, new),
    }
}

fn slash(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// Lines added and removed between two texts.
pub fn line_counts(old: &str, new: &str) -> (usize, usize) {
    let diff = similar::TextDiff::from_lines(old, new);
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_counts_count_changed_lines() {
        assert_eq!(line_counts("a\nb\nc\n", "a\nB\nc\nd\n"), (2, 1));
        assert_eq!(line_counts("", "x\n"), (1, 0));
        assert_eq!(line_counts("same\n", "same\n"), (0, 0));
    }
}
