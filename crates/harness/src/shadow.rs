//! The shadow workspace: a copy of the workspace that an agent works in.
//!
//! (Being built: see `Shadow::prepare`.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::changes::{Change, Limits};

/// Decides which workspace paths (relative) are left out of the shadow (secrets).
pub type Exclude = Arc<dyn Fn(&Path) -> bool + Send + Sync>;

/// What a shadow is made from.
#[derive(Clone)]
pub struct ShadowOptions {
    /// The real workspace root.
    pub workspace: PathBuf,
    /// The directory the shadow lives in (under baton's state or cache directory, never /tmp).
    /// The same directory is reused across tasks of one workspace.
    pub dir: PathBuf,
    /// The user's unsaved buffers: absolute paths inside the workspace and their text.
    pub overlay: Vec<(PathBuf, String)>,
    /// Files never copied (the never_send list).
    pub exclude: Exclude,
    pub limits: Limits,
}

/// What preparing a shadow did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStats {
    pub files: usize,
    pub copied: usize,
    pub removed: usize,
    pub elapsed: Duration,
}

/// A prepared shadow and the base it was seeded with.
#[derive(Debug)]
pub struct Shadow {
    root: PathBuf,
}

impl Shadow {
    /// Creates the shadow, or re-syncs the existing one so that it holds exactly the
    /// workspace's tracked and untracked non-ignored files overlaid with the unsaved buffers.
    pub fn prepare(options: &ShadowOptions) -> std::io::Result<(Shadow, SyncStats)> {
        let _ = options;
        Err(std::io::Error::other("shadow workspaces are not built yet"))
    }

    /// The copy's root: the agent's cwd.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Everything the agent changed in the copy since it was prepared.
    pub fn changes(&self) -> Vec<Change> {
        Vec::new()
    }
}
