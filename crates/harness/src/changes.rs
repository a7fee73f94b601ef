//! What an agent changed: the shadow diffed against its base.

use std::path::PathBuf;

/// Limits on what is landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Files larger than this are reported, not landed.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: 2 * 1024 * 1024,
        }
    }
}

/// One file the agent changed. Paths are relative to the workspace root (and to the shadow's),
/// with `/` separators, never absolute and never containing `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Modified {
        path: PathBuf,
        base: String,
        new: String,
    },
    Created {
        path: PathBuf,
        text: String,
    },
    Deleted {
        path: PathBuf,
        base: String,
    },
    /// A deleted file whose content (exactly or nearly) reappeared under a new path.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        base: String,
        new: String,
    },
    /// A change that is reported, never landed.
    Refused { path: PathBuf, reason: Refusal },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Binary,
    TooLarge { bytes: u64 },
    /// A symlink (or a path) that resolves outside the workspace.
    OutsideWorkspace { target: PathBuf },
    /// The file's base text could not be recovered (the real file changed on disk meanwhile).
    BaseUnavailable,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Binary => f.write_str("binary file"),
            Refusal::TooLarge { bytes } => write!(f, "too large ({bytes} bytes)"),
            Refusal::OutsideWorkspace { target } => {
                write!(f, "resolves outside the workspace ({})", target.display())
            }
            Refusal::BaseUnavailable => {
                f.write_str("the file changed on disk while the agent worked")
            }
        }
    }
}
