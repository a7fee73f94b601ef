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
    /// Time spent in tree-sitter parsing during the run, summed over the indexing threads.
    pub parse_cpu_ms: f64,
    /// Time spent running the tags queries (definitions and references), summed likewise.
    pub tags_cpu_ms: f64,
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
        if self.parsed > 0 {
            let _ = writeln!(
                out,
                "parsing {:.1} ms, tags queries {:.1} ms (summed over the indexing threads)",
                self.parse_cpu_ms, self.tags_cpu_ms
            );
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

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    #[test]
    fn renders_text_and_json() {
        let report = IndexReport {
            files: 3,
            per_language: vec![
                (
                    "python".to_owned(),
                    LanguageCount {
                        files: 1,
                        definitions: 2,
                        references: 5,
                    },
                ),
                (
                    "rust".to_owned(),
                    LanguageCount {
                        files: 2,
                        definitions: 10,
                        references: 40,
                    },
                ),
            ],
            skipped: vec![(
                PathBuf::from("/w/big.rs"),
                "larger than 1048576 bytes".to_owned(),
            )],
            parsed: 1,
            from_cache: 2,
            elapsed_ms: 12.25,
            parse_cpu_ms: 7.5,
            tags_cpu_ms: 3.25,
            peak_rss_kib: Some(20480),
        };
        expect![[r#"
            3 files indexed in 12.2 ms (1 parsed, 2 from cache, 1 skipped)
            language        files  definitions   references
            python              1            2            5
            rust                2           10           40
            skipped /w/big.rs: larger than 1048576 bytes
            parsing 7.5 ms, tags queries 3.2 ms (summed over the indexing threads)
            peak memory 20.0 MiB
        "#]]
        .assert_eq(&report.render(false));
        let json: serde_json::Value = serde_json::from_str(&report.render(true)).expect("JSON");
        assert_eq!(json["per_language"][1][0], "rust");
        assert_eq!(json["per_language"][1][1]["definitions"], 10);
        assert_eq!(json["skipped"][0][1], "larger than 1048576 bytes");
        assert_eq!(json["parse_cpu_ms"], 7.5);
    }
}
