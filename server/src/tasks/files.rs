//! What an agent reads and writes through the protocol (ACP `fs/read_text_file` and
//! `fs/write_text_file`): reads come from the user's buffers, unsaved text included; writes go
//! into the shadow, never anywhere else; secrets are never read.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use harness::agent::FileAccess;

use crate::config::NeverSend;
use crate::session::Session;

pub struct BufferFiles {
    pub session: Arc<Session>,
    /// The agent's working directory (the shadow), where its paths point.
    pub shadow: PathBuf,
    /// The real workspace, where the user's buffers live.
    pub workspace: PathBuf,
    pub never_send: NeverSend,
}

impl BufferFiles {
    /// The workspace-relative path of an agent's path, if it stays inside.
    fn relative(&self, path: &Path) -> Result<PathBuf, String> {
        let relative = path
            .strip_prefix(&self.shadow)
            .or_else(|_| path.strip_prefix(&self.workspace))
            .map(Path::to_path_buf)
            .or_else(|_| {
                if path.is_relative() {
                    Ok(path.to_path_buf())
                } else {
                    Err(())
                }
            })
            .map_err(|()| format!("{} is outside the workspace", path.display()))?;
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(format!("{} is outside the workspace", path.display()));
        }
        Ok(relative)
    }

    /// Where `relative` leads inside the shadow, refusing symlinks that lead out of it.
    fn inside_shadow(&self, relative: &Path) -> Result<PathBuf, String> {
        let target = self.shadow.join(relative);
        let root = std::fs::canonicalize(&self.shadow).map_err(|err| err.to_string())?;
        // The deepest existing ancestor must resolve inside the shadow (a symlinked directory
        // pointing out would otherwise carry the write out), and so must the file itself.
        let mut probe = target.clone();
        loop {
            if let Ok(real) = std::fs::canonicalize(&probe) {
                if !real.starts_with(&root) {
                    return Err(format!(
                        "{} resolves outside the workspace ({})",
                        relative.display(),
                        real.display()
                    ));
                }
                break;
            }
            if std::fs::symlink_metadata(&probe).is_ok() {
                // A dangling symlink: where it points is not known to be inside.
                return Err(format!(
                    "{} is a symlink to nowhere inside the workspace",
                    relative.display()
                ));
            }
            if !probe.pop() {
                break;
            }
        }
        Ok(target)
    }
}

impl FileAccess for BufferFiles {
    fn read_text(&self, path: &Path) -> Result<String, String> {
        let relative = self.relative(path)?;
        let real = self.workspace.join(&relative);
        self.never_send
            .check(&real, Some(&self.workspace))
            .map_err(|reason| format!("baton: {reason}"))?;
        if let Some(uri) = self.session.documents.uri_for_path(&real)
            && let Some(snapshot) = self.session.snapshot(&uri)
        {
            return Ok(snapshot.document.text());
        }
        let shadowed = self.inside_shadow(&relative)?;
        std::fs::read_to_string(&shadowed).map_err(|err| format!("{}: {err}", relative.display()))
    }

    fn write_text(&self, path: &Path, text: &str) -> Result<(), String> {
        let relative = self.relative(path)?;
        let target = self.inside_shadow(&relative)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|err| err.to_string())?;
        }
        // Checked again now that the directories exist: creating them cannot have led out,
        // but a race with the agent's own writes could have.
        let target = self.inside_shadow(&relative)?;
        std::fs::write(&target, text).map_err(|err| format!("{}: {err}", relative.display()))
    }
}
