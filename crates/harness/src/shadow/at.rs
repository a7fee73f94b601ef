//! File system calls relative to open directories (Linux): the shadow's hot loops `lstat` or
//! copy thousands of files, and a call by absolute path makes the kernel walk every component
//! of it again (a dozen directory lookups for a file deep in a package). Here each directory is
//! opened once (`O_PATH`, without following a symlink) and its files are reached by name.
//!
//! Opening a directory with `O_NOFOLLOW` also means a directory an agent replaced with a
//! symlink is never followed out of the shadow: the files below it read as missing.

use std::io;
use std::path::Path;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};

use super::manifest::Stamp;

/// What an `lstat` says about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Directory,
    Symlink,
    Other,
}

/// The part of an `lstat` the shadow uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lstat {
    pub(crate) kind: Kind,
    pub(crate) stamp: Stamp,
    /// Permission bits (and set-id bits).
    pub(crate) mode: u32,
}

impl Lstat {
    // `struct stat`'s field types differ between architectures: the conversions are needed on
    // some and no-ops on others.
    #[allow(clippy::useless_conversion)]
    fn of(stat: &rustix::fs::Stat) -> Lstat {
        let kind = match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Directory,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        let seconds = i64::try_from(stat.st_mtime).unwrap_or(0);
        let nanos = i64::try_from(stat.st_mtime_nsec).unwrap_or(0);
        // Like `manifest::nanos_since_epoch`: times before the epoch count as 0.
        let mtime_ns = u64::try_from(i128::from(seconds) * 1_000_000_000 + i128::from(nanos))
            .unwrap_or(if seconds < 0 { 0 } else { u64::MAX });
        Lstat {
            kind,
            stamp: Stamp {
                size: u64::try_from(stat.st_size).unwrap_or(0),
                mtime_ns,
                ino: u64::try_from(stat.st_ino).unwrap_or(0),
            },
            mode: u32::try_from(stat.st_mode).unwrap_or(0) & 0o7777,
        }
    }
}

/// The directories under a root, opened on use by relative `/`-separated key (the root is
/// `""`). Only the chain from the root to the last directory asked for stays open, so the open
/// files are bounded by the tree's depth, not its size; callers go through sorted keys, which
/// visit each directory's files together. A directory that cannot be opened (missing, not a
/// directory, a symlink) gives `None`.
pub(crate) struct Directories<'a> {
    root: &'a Path,
    /// From the root down: each directory's key and its descriptor (`None`: not openable).
    chain: Vec<(String, Option<OwnedFd>)>,
}

impl<'a> Directories<'a> {
    pub(crate) fn new(root: &'a Path) -> Directories<'a> {
        Directories {
            root,
            chain: Vec::new(),
        }
    }

    /// The open directory `key`, opened through its parents, none of them followed if it is a
    /// symlink.
    pub(crate) fn get(&mut self, key: &str) -> Option<BorrowedFd<'_>> {
        // Keep the part of the chain that leads to `key`.
        while let Some((open, _)) = self.chain.last() {
            let leads_there = open.is_empty()
                || key == open
                || (key.starts_with(open.as_str())
                    && key.as_bytes().get(open.len()) == Some(&b'/'));
            if leads_there {
                break;
            }
            self.chain.pop();
        }
        if self.chain.is_empty() {
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let fd = rustix::fs::open(self.root, flags, Mode::empty()).ok();
            self.chain.push((String::new(), fd));
        }
        // Then open what is missing below it, one name at a time.
        while self.chain.last().is_some_and(|(open, _)| open != key) {
            let (open, parent) = self.chain.last()?;
            let rest = if open.is_empty() {
                key
            } else {
                &key[open.len() + 1..]
            };
            let name = rest.split('/').next().unwrap_or(rest);
            let child = if open.is_empty() {
                name.to_string()
            } else {
                format!("{open}/{name}")
            };
            let fd = parent.as_ref().and_then(|parent| {
                rustix::fs::openat(
                    parent,
                    name,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::empty(),
                )
                .ok()
            });
            self.chain.push((child, fd));
        }
        self.chain.last()?.1.as_ref().map(AsFd::as_fd)
    }

    /// `lstat` of `key` (a file or directory below the root), by name in its open directory.
    pub(crate) fn lstat(&mut self, key: &str) -> Option<Lstat> {
        if key.is_empty() {
            return rustix::fs::fstat(self.get("")?)
                .ok()
                .map(|stat| Lstat::of(&stat));
        }
        let (parent, name) = split(key);
        let directory = self.get(parent)?;
        rustix::fs::statat(directory, name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|stat| Lstat::of(&stat))
    }
}

/// `("a/b", "c")` for `"a/b/c"`, `("", "c")` for `"c"`.
pub(crate) fn split(key: &str) -> (&str, &str) {
    key.rsplit_once('/').unwrap_or(("", key))
}

/// Copies the regular file `key` from `from` into `to`, where nothing is at `key` yet and its
/// directory exists, giving the copy `mode` and the modification time `mtime_ns` (as `cp -a`
/// does). `copy_file_range`: a reflink on btrfs and XFS, an in-kernel copy elsewhere. The
/// copy is created with `O_EXCL` and `O_NOFOLLOW`, so nothing already there is written through.
/// Returns the copy's `lstat`, or `None` when the source vanished.
pub(crate) fn copy_new_file(
    from: &mut Directories<'_>,
    to: &mut Directories<'_>,
    key: &str,
    mode: u32,
    mtime_ns: u64,
) -> io::Result<Option<Lstat>> {
    let (parent, name) = split(key);
    let missing = || io::Error::new(io::ErrorKind::NotFound, format!("no directory for {key}"));
    let Some(source_directory) = from.get(parent) else {
        return Ok(None);
    };
    let source = match rustix::fs::openat(
        source_directory,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let copy = rustix::fs::openat(
        to.get(parent).ok_or_else(missing)?,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(mode & 0o777),
    )?;
    // Until the end of the file, whatever size the walk saw. std's copy between two files is
    // `copy_file_range`, with its fallbacks (another file system, an old kernel).
    let mut copy = std::fs::File::from(copy);
    io::copy(&mut std::fs::File::from(source), &mut copy)?;
    let mtime = Timespec {
        tv_sec: i64::try_from(mtime_ns / 1_000_000_000).unwrap_or(i64::MAX),
        tv_nsec: i64::try_from(mtime_ns % 1_000_000_000).unwrap_or(0),
    };
    rustix::fs::futimens(
        &copy,
        &Timestamps {
            last_access: Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_OMIT,
            },
            last_modification: mtime,
        },
    )?;
    let mut stat = Lstat::of(&rustix::fs::fstat(&copy)?);
    // The umask may have taken bits away (a group-writable file): give them back.
    if stat.mode != mode {
        rustix::fs::fchmod(&copy, Mode::from_raw_mode(mode))?;
        stat.mode = mode;
    }
    Ok(Some(stat))
}
