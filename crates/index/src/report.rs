//! What an indexing run did: counts per language, skipped files, cache use, time and memory.

use std::fmt::Write;
use std::path::PathBuf;

/// Files, definitions and references of one language.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LanguageCount {
    pub files: usize,
    pub definitions: usize,
    pub references: usize,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct IndexReport {
    /// Files in the index.
    pub files: usize,
    /// Sorted by language name.
    pub per_language: Vec<(String, LanguageCount)>,
    /// Files left out by a limit, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Files parsed in this run.
    pub parsed: usize,
    /// Files whose symbols came from the cache (on disk or in memory) without parsing.
    pub from_cache: usize,
    pub elapsed_ms: f64,
    /// Peak resident memory of the process (VmHWM), where `/proc` has it.
    pub peak_rss_kib: Option<u64>,
}

impl IndexReport {
    /// A human-readable summary, or the report as JSON.
    pub fn render(&self, json: bool) -> String {
        if json {
            return serde_json::to_string_pretty(self)
                .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} files indexed in {:.1} ms ({} parsed, {} from cache, {} skipped)",
            self.files,
            self.elapsed_ms,
            self.parsed,
            self.from_cache,
            self.skipped.len()
        );
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>12} {:>12}",
            "language", "files", "definitions", "references"
        );
        for (language, count) in &self.per_language {
            let _ = writeln!(
                out,
                "{:<12} {:>8} {:>12} {:>12}",
                language, count.files, count.definitions, count.references
            );
        }
        for (path, reason) in &self.skipped {
            let _ = writeln!(out, "skipped {}: {reason}", path.display());
        }
        if let Some(peak) = self.peak_rss_kib {
            let _ = writeln!(out, "peak memory {:.1} MiB", peak as f64 / 1024.0);
        }
        out
    }
}

/// Peak resident set size of this process in KiB, from `/proc/self/status`.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
