//! [`WorkspaceIndex`]: the shared index the server queries, and the operations that keep it
//! current (the initial walk, watched-file changes, open buffers).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use dashmap::DashMap;
use ignore::{WalkBuilder, WalkState};
use ropey::Rope;
use syntax::{Language, SyntaxTree};
use text::AppliedChange;

use crate::cache::{self, CacheError, CachedFiles};
use crate::config::IndexConfig;
use crate::file_symbols::FileSymbols;
use crate::open_document::OpenDocument;
use crate::repo_map::{self, MapFile, MapFocus, RepoMap};
use crate::report::{IndexReport, LanguageCount, peak_rss_kib};
use crate::search::{
    FileBonus, MatchCategory, PreparedQuery, SearchContext, category_of_score, score,
};
use crate::walk::{self, ExcludeMatcher, FileStamp, SourceText};
use crate::{Symbol, SymbolMatch};

/// How often (in files) the walk reports progress.
const PROGRESS_EVERY: usize = 64;

/// The index of one workspace. `Send + Sync`: share it in an `Arc`.
pub struct WorkspaceIndex {
    root: PathBuf,
    config: IndexConfig,
    excludes: Arc<ExcludeMatcher>,
    /// Symbols of files as they are on disk, by absolute path.
    pub(crate) files: DashMap<PathBuf, Arc<FileSymbols>>,
    /// Open buffers, by absolute path; they shadow `files`.
    pub(crate) open: DashMap<PathBuf, OpenDocument>,
    /// Files left out by a limit, with the reason.
    skipped: DashMap<PathBuf, String>,
    last_run: Mutex<RunStatistics>,
    /// Serializes whole-workspace runs (and cache writes) with each other; queries never take it.
    indexing: Mutex<()>,
    /// Whether `files` changed since the cache was loaded or last written; a warm start that
    /// finds nothing changed does not rewrite the cache.
    cache_dirty: AtomicBool,
    /// Time spent parsing and tagging files since the current run started, summed over the
    /// threads, in nanoseconds: the report shows what the run's cost is made of.
    parse_nanos: AtomicU64,
    tags_nanos: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default)]
struct RunStatistics {
    parsed: usize,
    from_cache: usize,
    elapsed_ms: f64,
    parse_cpu_ms: f64,
    tags_cpu_ms: f64,
}

/// What happened to one file.
enum FileOutcome {
    Indexed {
        symbols: Arc<FileSymbols>,
        parsed: bool,
    },
    Skipped(String),
    /// Not a source file we index (unknown language, excluded, unreadable, gone).
    Absent,
}

fn add_nanos(total: &AtomicU64, elapsed: std::time::Duration) {
    total.fetch_add(
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding one of these locks leaves plain data behind that is still
    // consistent, so poisoning is not a reason to stop serving.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl WorkspaceIndex {
    pub fn new(root: PathBuf, config: IndexConfig) -> WorkspaceIndex {
        let root = std::path::absolute(&root).unwrap_or(root);
        WorkspaceIndex {
            excludes: Arc::new(ExcludeMatcher::new(&config.exclude)),
            root,
            config,
            files: DashMap::new(),
            open: DashMap::new(),
            skipped: DashMap::new(),
            last_run: Mutex::new(RunStatistics::default()),
            indexing: Mutex::new(()),
            cache_dirty: AtomicBool::new(false),
            parse_nanos: AtomicU64::new(0),
            tags_nanos: AtomicU64::new(0),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn cache_file(&self) -> Option<PathBuf> {
        self.config
            .cache_dir
            .as_deref()
            .map(|directory| cache::cache_file(directory, &self.root))
    }

    /// Loads the cache if any, walks the workspace in parallel, (re)parses only new and changed
    /// files (size and modification time, then a content hash), drops deleted ones and saves the
    /// cache. `progress` is called now and then with (files done, estimated total).
    pub fn index_workspace(&self, progress: &(dyn Fn(usize, usize) + Sync)) -> IndexReport {
        let _running = lock(&self.indexing);
        let started = Instant::now();
        self.parse_nanos.store(0, Ordering::Relaxed);
        self.tags_nanos.store(0, Ordering::Relaxed);

        // What we already know, by relative path: the in-memory index after the first run, the
        // disk cache before it.
        let mut known: CachedFiles = self
            .files
            .iter()
            .filter_map(|entry| {
                let relative = walk::relative_path(&self.root, entry.key())?;
                Some((relative, entry.value().clone()))
            })
            .collect();
        if known.is_empty()
            && let Some(cache_file) = self.cache_file()
        {
            match cache::load(&cache_file) {
                Ok(cached) => known = cached,
                Err(CacheError::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!("rebuilding the index: {error} ({})", cache_file.display())
                }
            }
        }

        let total_estimate = known.len();
        let done = AtomicUsize::new(0);
        let parsed = AtomicUsize::new(0);
        let from_cache = AtomicUsize::new(0);
        let unchanged = AtomicUsize::new(0);
        let seen: Mutex<HashSet<PathBuf>> = Mutex::new(HashSet::with_capacity(total_estimate));
        let skipped: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

        let excludes = self.excludes.clone();
        let filter_root = self.root.clone();
        let walker = WalkBuilder::new(&self.root)
            .threads(self.config.threads.max(1))
            .hidden(true)
            .git_ignore(true)
            .git_exclude(true)
            .ignore(true)
            // Honour `.gitignore` in a workspace that is not (yet) a git repository, as users
            // expect from every other tool.
            .require_git(false)
            .follow_links(false)
            .filter_entry(move |entry| {
                let is_dir = entry.file_type().is_some_and(|kind| kind.is_dir());
                walk::relative_path(&filter_root, entry.path()).is_none_or(|relative| {
                    relative.as_os_str().is_empty() || !excludes.is_excluded(&relative, is_dir)
                })
            })
            .build_parallel();
        walker.run(|| {
            let known = &known;
            let (done, parsed, from_cache, unchanged, seen, skipped) =
                (&done, &parsed, &from_cache, &unchanged, &seen, &skipped);
            Box::new(move |entry| {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(error) => {
                        tracing::debug!("walk: {error}");
                        return WalkState::Continue;
                    }
                };
                if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                    return WalkState::Continue;
                }
                let path = entry.path();
                let Some(relative) = walk::relative_path(&self.root, path) else {
                    return WalkState::Continue;
                };
                let Some(language) = Language::from_path(path) else {
                    return WalkState::Continue;
                };
                let metadata = entry.metadata().ok();
                match self.read_file(path, language, metadata, known.get(&relative)) {
                    FileOutcome::Indexed {
                        symbols,
                        parsed: was_parsed,
                    } => {
                        if was_parsed { parsed } else { from_cache }
                            .fetch_add(1, Ordering::Relaxed);
                        let same = known
                            .get(&relative)
                            .is_some_and(|known| Arc::ptr_eq(known, &symbols));
                        if same {
                            unchanged.fetch_add(1, Ordering::Relaxed);
                        } else {
                            self.cache_dirty.store(true, Ordering::Relaxed);
                        }
                        self.files.insert(path.to_path_buf(), symbols);
                        lock(seen).insert(path.to_path_buf());
                    }
                    FileOutcome::Skipped(reason) => {
                        lock(skipped).push((path.to_path_buf(), reason))
                    }
                    FileOutcome::Absent => {}
                }
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                if finished % PROGRESS_EVERY == 0 {
                    progress(finished, total_estimate.max(finished));
                }
                WalkState::Continue
            })
        });

        // Whatever the walk did not find is gone, newly ignored, or now over a limit.
        let seen = seen
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.files.retain(|path, _| seen.contains(path));
        if unchanged.load(Ordering::Relaxed) != known.len() {
            // Some known file was not found again: deleted, ignored or skipped now.
            self.cache_dirty.store(true, Ordering::Relaxed);
        }
        self.skipped.clear();
        for (path, reason) in skipped
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            self.skipped.insert(path, reason);
        }
        let finished = done.load(Ordering::Relaxed);
        progress(finished, finished);

        if self.cache_dirty.load(Ordering::Relaxed)
            && let Err(error) = self.write_cache()
        {
            tracing::warn!("could not save the index cache: {error}");
        }
        let cpu_ms = |nanos: &AtomicU64| nanos.load(Ordering::Relaxed) as f64 / 1e6;
        *lock(&self.last_run) = RunStatistics {
            parsed: parsed.load(Ordering::Relaxed),
            from_cache: from_cache.load(Ordering::Relaxed),
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
            parse_cpu_ms: cpu_ms(&self.parse_nanos),
            tags_cpu_ms: cpu_ms(&self.tags_nanos),
        };
        self.report()
    }

    /// Checks one file against the limits and its previous entry, parsing it only if its content
    /// changed.
    fn read_file(
        &self,
        path: &Path,
        language: Language,
        metadata: Option<std::fs::Metadata>,
        previous: Option<&Arc<FileSymbols>>,
    ) -> FileOutcome {
        let Some(metadata) = metadata.or_else(|| std::fs::metadata(path).ok()) else {
            return FileOutcome::Absent;
        };
        if !metadata.is_file() {
            return FileOutcome::Absent;
        }
        let stamp = FileStamp::of(&metadata);
        if stamp.size > self.config.max_file_bytes {
            let reason = format!("larger than {} bytes", self.config.max_file_bytes);
            tracing::info!("skipping {}: {reason}", path.display());
            return FileOutcome::Skipped(reason);
        }
        if let Some(previous) = previous
            && previous.language == language
            && previous.size == stamp.size
            && previous.modified_nanos == stamp.modified_nanos
        {
            return FileOutcome::Indexed {
                symbols: previous.clone(),
                parsed: false,
            };
        }
        let (text, content_hash) = match walk::read_source(path, stamp, self.config.max_file_bytes)
        {
            Ok(SourceText::Text { text, content_hash }) => (text, content_hash),
            Ok(SourceText::Skipped { reason }) => {
                tracing::info!("skipping {}: {reason}", path.display());
                return FileOutcome::Skipped(reason);
            }
            Err(error) => {
                tracing::debug!("cannot read {}: {error}", path.display());
                return FileOutcome::Absent;
            }
        };
        if let Some(previous) = previous
            && previous.language == language
            && previous.content_hash == content_hash
        {
            // Touched but unchanged (a checkout, a save without edits): keep the symbols and
            // remember the new stamp so the next start trusts it again.
            let mut symbols = FileSymbols::clone(previous);
            symbols.size = stamp.size;
            symbols.modified_nanos = stamp.modified_nanos;
            return FileOutcome::Indexed {
                symbols: Arc::new(symbols),
                parsed: false,
            };
        }
        let rope = Rope::from_str(&text);
        drop(text);
        let parse_started = Instant::now();
        let tree = SyntaxTree::parse(language, &rope);
        let tags_started = Instant::now();
        add_nanos(&self.parse_nanos, tags_started - parse_started);
        let Some(tree) = tree else {
            let reason = "could not be parsed".to_owned();
            tracing::info!("skipping {}: {reason}", path.display());
            return FileOutcome::Skipped(reason);
        };
        let tags = tree.tags(&rope);
        add_nanos(&self.tags_nanos, tags_started.elapsed());
        let mut symbols = FileSymbols::from_tags(language, &tags, &rope);
        symbols.size = stamp.size;
        symbols.modified_nanos = stamp.modified_nanos;
        symbols.content_hash = content_hash;
        FileOutcome::Indexed {
            symbols: Arc::new(symbols),
            parsed: true,
        }
    }

    /// Writes the disk cache now. [`WorkspaceIndex::index_workspace`] does this itself; call it
    /// after watched-file changes (debounced, or at shutdown) so the next start is warm. Open
    /// buffers are not cached: the cache describes the files on disk.
    pub fn save_cache(&self) -> Result<(), CacheError> {
        let _running = lock(&self.indexing);
        if !self.cache_dirty.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.write_cache()
    }

    fn write_cache(&self) -> Result<(), CacheError> {
        let Some(cache_file) = self.cache_file() else {
            return Ok(());
        };
        let entries: Vec<(PathBuf, Arc<FileSymbols>)> = self
            .files
            .iter()
            .filter_map(|entry| {
                Some((
                    walk::relative_path(&self.root, entry.key())?,
                    entry.value().clone(),
                ))
            })
            .collect();
        // Cleared before writing so that a change racing with the write marks it dirty again.
        self.cache_dirty.store(false, Ordering::Relaxed);
        let result = cache::save(
            &cache_file,
            entries
                .iter()
                .map(|(path, symbols)| (path.as_path(), &**symbols)),
        );
        if result.is_err() {
            self.cache_dirty.store(true, Ordering::Relaxed);
        }
        result
    }

    /// A watched file changed or was saved: re-read it from disk, respecting the limits, excludes
    /// and ignore files. A missing file leaves the index.
    ///
    /// Editors also report directories (a deleted, created or renamed folder): everything indexed
    /// under a directory is brought up to date, as a small walk of that directory.
    pub fn reindex_file(&self, path: &Path) {
        if path.is_dir() {
            self.reindex_directory(path);
            return;
        }
        if !path.exists() {
            // A deleted directory takes everything under it along.
            self.remove_under(path, |indexed| indexed == path);
        }
        let Some(relative) = walk::relative_path(&self.root, path) else {
            self.remove_file(path);
            return;
        };
        let Some(language) = Language::from_path(path) else {
            self.remove_file(path);
            return;
        };
        if self.excludes.is_excluded(&relative, false) || walk::is_ignored(&self.root, &relative) {
            self.remove_file(path);
            return;
        }
        let previous = self.files.get(path).map(|entry| entry.value().clone());
        match self.read_file(path, language, None, previous.as_ref()) {
            FileOutcome::Indexed { symbols, .. } => {
                self.skipped.remove(path);
                self.files.insert(path.to_path_buf(), symbols);
                self.cache_dirty.store(true, Ordering::Relaxed);
            }
            FileOutcome::Skipped(reason) => {
                self.files.remove(path);
                self.cache_dirty.store(true, Ordering::Relaxed);
                self.skipped.insert(path.to_path_buf(), reason);
            }
            FileOutcome::Absent => self.remove_file(path),
        }
    }

    fn reindex_directory(&self, directory: &Path) {
        let Some(relative) = walk::relative_path(&self.root, directory) else {
            return;
        };
        if !relative.as_os_str().is_empty()
            && (self.excludes.is_excluded(&relative, true)
                || walk::is_ignored(&self.root, &relative))
        {
            self.remove_under(directory, |_| false);
            return;
        }
        let mut found = HashSet::new();
        let excludes = self.excludes.clone();
        let filter_root = self.root.clone();
        let walker = WalkBuilder::new(directory)
            .hidden(true)
            .git_ignore(true)
            .git_exclude(true)
            .ignore(true)
            .require_git(false)
            .parents(true)
            .follow_links(false)
            .filter_entry(move |entry| {
                let is_dir = entry.file_type().is_some_and(|kind| kind.is_dir());
                walk::relative_path(&filter_root, entry.path()).is_none_or(|relative| {
                    relative.as_os_str().is_empty() || !excludes.is_excluded(&relative, is_dir)
                })
            })
            .build();
        for entry in walker.flatten() {
            if entry.file_type().is_some_and(|kind| kind.is_file())
                && Language::from_path(entry.path()).is_some()
            {
                found.insert(entry.path().to_path_buf());
                self.reindex_file(entry.path());
            }
        }
        self.remove_under(directory, |indexed| found.contains(indexed));
    }

    /// Forgets a file on disk (deleted). An open buffer for it stays until it is closed.
    pub fn remove_file(&self, path: &Path) {
        if self.files.remove(path).is_some() {
            self.cache_dirty.store(true, Ordering::Relaxed);
        }
        self.skipped.remove(path);
    }

    /// Forgets every file under `directory`, plus those `keep` does not accept.
    fn remove_under(&self, directory: &Path, keep: impl Fn(&Path) -> bool) {
        let before = self.files.len();
        self.files
            .retain(|indexed, _| !indexed.starts_with(directory) || keep(indexed));
        self.skipped
            .retain(|indexed, _| !indexed.starts_with(directory) || keep(indexed));
        if self.files.len() != before {
            self.cache_dirty.store(true, Ordering::Relaxed);
        }
    }

    /// `didOpen`: the buffer's tags replace the file's until it is closed.
    pub fn set_open_document(&self, path: &Path, rope: &Rope, tree: &SyntaxTree) {
        self.open
            .insert(path.to_path_buf(), OpenDocument::new(rope, tree));
    }

    /// `didChange`: re-tags only the changed region, given the already updated rope and tree and
    /// the changes that led to them (in order, as `text::Document::apply_changes` reports them).
    pub fn update_open_document(
        &self,
        path: &Path,
        rope: &Rope,
        tree: &SyntaxTree,
        changes: &[AppliedChange],
    ) {
        match self.open.get_mut(path) {
            Some(mut document) => document.update(rope, tree, changes),
            None => self.set_open_document(path, rope, tree),
        }
    }

    /// `didClose`: the file on disk counts again.
    pub fn close_document(&self, path: &Path) {
        self.open.remove(path);
    }

    /// Every file's symbols, open buffers shadowing the disk.
    fn snapshot(&self) -> Vec<(PathBuf, Arc<FileSymbols>)> {
        let mut files: Vec<(PathBuf, Arc<FileSymbols>)> = self
            .files
            .iter()
            .filter(|entry| !self.open.contains_key(entry.key()))
            .map(|entry| (entry.key().clone(), entry.value().clone()))
            .collect();
        files.extend(
            self.open
                .iter()
                .map(|entry| (entry.key().clone(), entry.value().symbols())),
        );
        files
    }

    /// Calls `visit` for every file's symbols without copying the file list; open buffers shadow
    /// the disk.
    fn for_each_file(&self, mut visit: impl FnMut(&Path, &Arc<FileSymbols>)) {
        // A few open buffers against thousands of files: comparing with a short list beats
        // hashing every path (paths hash component by component).
        let open: Vec<PathBuf> = self.open.iter().map(|entry| entry.key().clone()).collect();
        for entry in self.files.iter() {
            if !open.iter().any(|path| path == entry.key()) {
                visit(entry.key(), entry.value());
            }
        }
        for entry in self.open.iter() {
            visit(entry.key(), &entry.value().symbols());
        }
    }

    /// Fuzzy `workspace/symbol` search: exact, then prefix, then word-boundary, then subsequence
    /// matches; ties go to open files, then files near the current one, then shorter names.
    pub fn search(&self, query: &str, limit: usize, context: &SearchContext) -> Vec<SymbolMatch> {
        if limit == 0 {
            return Vec::new();
        }
        let query = PreparedQuery::new(query);
        let mut matched_files: Vec<(PathBuf, Arc<FileSymbols>)> = Vec::new();
        // Candidates are (score, file, definition). Only the best `limit` are kept: the buffer
        // is cut back to them whenever it doubles, and from then on a candidate must beat the
        // worst kept one. A name whose best possible category is below that one's is not even
        // fuzzy-matched, which is what keeps short queries over large workspaces fast.
        let mut candidates: Vec<(f32, u32, u32)> = Vec::new();
        let mut threshold: Option<(f32, u32, u32)> = None;
        let compaction_size = (limit * 2).max(64);
        let better = |matched_files: &[(PathBuf, Arc<FileSymbols>)],
                      left: &(f32, u32, u32),
                      right: &(f32, u32, u32)| {
            right.0.total_cmp(&left.0).then_with(|| {
                let key = |(_, file, definition): &(f32, u32, u32)| {
                    let (path, symbols) = &matched_files[*file as usize];
                    (
                        &symbols.definitions[*definition as usize].name,
                        path,
                        *definition,
                    )
                };
                key(left).cmp(&key(right))
            })
        };
        self.for_each_file(|path, symbols| {
            // Computed on the file's first name that passes the prefilter: most files have none.
            let mut bonus: Option<FileBonus> = None;
            let mut file_slot: Option<u32> = None;
            for (definition_index, definition) in symbols.definitions.iter().enumerate() {
                if !query.may_match(definition) {
                    continue;
                }
                let bonus = *bonus.get_or_insert_with(|| FileBonus::new(path, context, &self.root));
                let name_chars = definition.name.chars().count();
                let mut minimum = None;
                if let Some((worst, _, _)) = threshold {
                    // Upper bounds from what is known before matching: a name that could not
                    // beat the worst kept candidate even as an exact (or, for the fuzzy part, a
                    // word-boundary) match with matching case is not matched at all.
                    if score(MatchCategory::Exact, true, bonus, name_chars) < worst {
                        continue;
                    }
                    minimum = Some(
                        if score(MatchCategory::WordBoundary, true, bonus, name_chars) < worst {
                            MatchCategory::Prefix
                        } else {
                            category_of_score(worst)
                        },
                    );
                }
                let Some((category, case_matches)) = query.matches_at_least(definition, minimum)
                else {
                    continue;
                };
                let file = *file_slot.get_or_insert_with(|| {
                    matched_files.push((path.to_path_buf(), symbols.clone()));
                    (matched_files.len() - 1) as u32
                });
                let value = score(category, case_matches, bonus, name_chars);
                let candidate = (value, file, definition_index as u32);
                if let Some(worst) = &threshold
                    && better(&matched_files, &candidate, worst) != std::cmp::Ordering::Less
                {
                    continue;
                }
                candidates.push(candidate);
                if candidates.len() >= compaction_size {
                    candidates.select_nth_unstable_by(limit - 1, |left, right| {
                        better(&matched_files, left, right)
                    });
                    candidates.truncate(limit);
                    threshold = Some(candidates[limit - 1]);
                }
            }
        });
        if candidates.len() > limit {
            candidates.select_nth_unstable_by(limit - 1, |left, right| {
                better(&matched_files, left, right)
            });
            candidates.truncate(limit);
        }
        candidates.sort_unstable_by(|left, right| better(&matched_files, left, right));
        candidates
            .iter()
            .map(|&(value, file, definition)| {
                let (path, symbols) = &matched_files[file as usize];
                SymbolMatch {
                    symbol: symbol_of(path, symbols, definition as usize),
                    score: value,
                }
            })
            .collect()
    }

    /// Definitions named exactly `name` across the workspace (the tags-based definition
    /// fallback), sorted by path and line.
    pub fn definitions(&self, name: &str) -> Vec<Symbol> {
        let mut found = Vec::new();
        self.for_each_file(|path, symbols| {
            for (index, definition) in symbols.definitions.iter().enumerate() {
                if &*definition.name == name {
                    found.push(symbol_of(path, symbols, index));
                }
            }
        });
        found.sort_by(|left, right| {
            (&left.path, left.position.line()).cmp(&(&right.path, right.position.line()))
        });
        found
    }

    /// The files (open buffers included) that reference `name`, with how often, most uses
    /// first, then by path: where a change to `name` may need following up.
    pub fn files_referencing(&self, name: &str) -> Vec<(PathBuf, u32)> {
        let mut found = Vec::new();
        self.for_each_file(|path, symbols| {
            if let Ok(at) = symbols
                .references
                .binary_search_by(|(referenced, _)| (**referenced).cmp(name))
            {
                found.push((path.to_path_buf(), symbols.references[at].1));
            }
        });
        found.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
        found
    }

    /// The definitions of one indexed file (or open buffer), in position order.
    pub fn file_symbols(&self, path: &Path) -> Vec<Symbol> {
        let symbols = match self.open.get(path) {
            Some(document) => document.symbols(),
            None => match self.files.get(path) {
                Some(entry) => entry.value().clone(),
                None => return Vec::new(),
            },
        };
        (0..symbols.definitions.len())
            .map(|index| symbol_of(path, &symbols, index))
            .collect()
    }

    /// The repo map for `focus`, at most `token_budget` tokens, leaving out every file for which
    /// `skip` is true (e.g. `context.never_send`).
    pub fn repo_map(
        &self,
        focus: &MapFocus,
        token_budget: usize,
        skip: &dyn Fn(&Path) -> bool,
    ) -> RepoMap {
        let mut files: Vec<MapFile> = self
            .snapshot()
            .into_iter()
            .filter(|(path, _)| !skip(path))
            .map(|(path, symbols)| MapFile {
                display: walk::relative_path(&self.root, &path)
                    .unwrap_or_else(|| path.clone())
                    .to_string_lossy()
                    .into_owned(),
                path,
                symbols,
            })
            .collect();
        files.sort_by(|left, right| left.display.cmp(&right.display));
        let mut lines_cache: HashMap<PathBuf, Option<Vec<String>>> = HashMap::new();
        let mut line_text = |path: &Path, line: u32| -> Option<String> {
            if let Some(document) = self.open.get(path) {
                let rope = &document.rope;
                let line = line as usize;
                return (line < rope.len_lines()).then(|| rope.line(line).to_string());
            }
            let lines = lines_cache.entry(path.to_path_buf()).or_insert_with(|| {
                let text = std::fs::read(path).ok()?;
                Some(
                    String::from_utf8_lossy(&text)
                        .lines()
                        .map(str::to_owned)
                        .collect(),
                )
            });
            lines.as_ref()?.get(line as usize).cloned()
        };
        repo_map::build(&files, focus, token_budget, &mut line_text)
    }

    /// Counts of what is in the index now, with the statistics of the last full run.
    pub fn report(&self) -> IndexReport {
        let mut per_language: HashMap<&'static str, LanguageCount> = HashMap::new();
        let mut files = 0;
        self.for_each_file(|_, symbols| {
            files += 1;
            let count = per_language.entry(symbols.language.name()).or_default();
            count.files += 1;
            count.definitions += symbols.definitions.len();
            count.references += symbols.reference_total();
        });
        let mut per_language: Vec<(String, LanguageCount)> = per_language
            .into_iter()
            .map(|(name, count)| (name.to_owned(), count))
            .collect();
        per_language.sort_by(|left, right| left.0.cmp(&right.0));
        let mut skipped: Vec<(PathBuf, String)> = self
            .skipped
            .iter()
            .map(|entry| (entry.key().clone(), entry.value().clone()))
            .collect();
        skipped.sort();
        let last_run = *lock(&self.last_run);
        IndexReport {
            files,
            per_language,
            skipped,
            parsed: last_run.parsed,
            from_cache: last_run.from_cache,
            parse_cpu_ms: last_run.parse_cpu_ms,
            tags_cpu_ms: last_run.tags_cpu_ms,
            elapsed_ms: last_run.elapsed_ms,
            peak_rss_kib: peak_rss_kib(),
        }
    }
}

fn symbol_of(path: &Path, symbols: &FileSymbols, index: usize) -> Symbol {
    let definition = &symbols.definitions[index];
    Symbol {
        name: definition.name.to_string(),
        kind: definition.kind,
        path: path.to_path_buf(),
        name_range: definition.name_range(),
        position: definition.position,
        container: definition
            .container
            .and_then(|container| symbols.definitions.get(container as usize))
            .map(|container| container.name.to_string()),
    }
}
