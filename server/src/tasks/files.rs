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

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> BufferFiles {
        let shadow = dir.join("shadow");
        let workspace = dir.join("workspace");
        std::fs::create_dir_all(&shadow).unwrap();
        std::fs::create_dir_all(&workspace).unwrap();
        BufferFiles {
            session: Arc::new(Session::default()),
            shadow,
            workspace,
            never_send: NeverSend::builtin(),
        }
    }

    #[test]
    fn reads_come_from_the_shadow_and_never_return_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        std::fs::write(files.shadow.join("lib.rs"), "fn main() {}\n").unwrap();
        std::fs::write(files.shadow.join(".env"), "TOKEN=hunter2\n").unwrap();
        assert_eq!(
            files.read_text(&files.shadow.join("lib.rs")).unwrap(),
            "fn main() {}\n"
        );
        let refused = files.read_text(&files.shadow.join(".env")).unwrap_err();
        assert!(refused.starts_with("baton: "), "{refused}");
        assert!(!refused.contains("hunter2"));
        assert!(files.read_text(Path::new("/etc/passwd")).is_err());
        assert!(
            files
                .read_text(&files.shadow.join("../workspace/x"))
                .is_err()
        );
    }

    #[test]
    fn writes_stay_inside_the_shadow() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(dir.path());
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        files
            .write_text(&files.shadow.join("src/new.rs"), "new\n")
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(files.shadow.join("src/new.rs")).unwrap(),
            "new\n"
        );
        // Absolute paths elsewhere, `..`, and symlinks (to a directory or a file) leading out.
        assert!(files.write_text(&outside.join("a"), "x").is_err());
        assert!(
            files
                .write_text(&files.shadow.join("../outside/b"), "x")
                .is_err()
        );
        std::os::unix::fs::symlink(&outside, files.shadow.join("link")).unwrap();
        assert!(files.write_text(&files.shadow.join("link/c"), "x").is_err());
        std::fs::write(outside.join("target.txt"), "kept\n").unwrap();
        std::os::unix::fs::symlink(outside.join("target.txt"), files.shadow.join("file-link"))
            .unwrap();
        assert!(
            files
                .write_text(&files.shadow.join("file-link"), "x")
                .is_err()
        );
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            1,
            "nothing new outside"
        );
        assert_eq!(
            std::fs::read_to_string(outside.join("target.txt")).unwrap(),
            "kept\n"
        );
        // Nothing reached the real workspace either.
        assert_eq!(std::fs::read_dir(&files.workspace).unwrap().count(), 0);
    }
}
