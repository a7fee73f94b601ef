//! Text documents in editor terms.
//!
//! This crate owns the one document type of baton ([`Document`]), the one place where
//! positions are converted between the encodings an LSP client may negotiate
//! ([`PositionEncoding`]), including the positions the index stores for files that are not open
//! ([`StoredPosition`], [`column_in_text`]). Everything above this crate speaks byte offsets into the rope; only
//! the conversions here know about UTF-16 code units or UTF-32 code points. (A job's target
//! region follows edits in `edit::landing`, which locates it by content.) Byte offsets that may
//! fall inside a character are made whole by [`boundary`], the one place that rounds them.

pub mod boundary;
mod document;
mod encoding;

pub use document::{AppliedChange, ContentChange, Document, Point, TextError};
pub use encoding::{Position, PositionEncoding, Range, StoredPosition, column_in_text};
pub use ropey::{Rope, RopeSlice};

/// Checks over the workspace's sources for the invariants this crate owns.
#[cfg(test)]
mod invariant_tests {
    use std::path::{Path, PathBuf};

    /// Calls and match arms that only position arithmetic uses: counting UTF-16 units, moving
    /// between char and byte indexes, dispatching on the encoding. (`chars().count()` is not
    /// listed: other crates count characters for display budgets, which is not a position.)
    const POSITION_ARITHMETIC: &[&str] = &[
        "encode_utf16",
        "len_utf16",
        "utf16_cu",
        "char_to_byte",
        "byte_to_char",
        "len_chars",
        "char_to_line",
        "PositionEncoding::Utf8 =>",
        "PositionEncoding::Utf16 =>",
        "PositionEncoding::Utf32 =>",
    ];

    /// ARCHITECTURE.md's "Position conversions only in `crates/text`": no product source
    /// outside this crate does position arithmetic. Tests are exempt (they check conversions
    /// against their own counting), and so is `crates/testkit`, the independent test client.
    #[test]
    fn position_conversions_only_in_crates_text() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut sources = Vec::new();
        for top in ["crates", "server", "xtask"] {
            collect_product_sources(&root.join(top), &mut sources);
        }
        assert!(sources.len() > 20, "found the sources: {}", sources.len());
        let mut found = Vec::new();
        for path in sources {
            let relative = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
            let exempt = ["crates/text", "crates/testkit"];
            if exempt
                .iter()
                .any(|crate_dir| relative.starts_with(crate_dir))
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable source");
            // An inline test module (`#[cfg(test)]` then `mod name {`) ends a file's product
            // code; `#[cfg(test)] mod tests;` only names a file, which is skipped above.
            let lines: Vec<&str> = text.lines().collect();
            let product_lines = lines
                .windows(2)
                .position(|pair| {
                    pair[0].trim() == "#[cfg(test)]"
                        && pair[1].trim_start().starts_with("mod ")
                        && pair[1].trim_end().ends_with('{')
                })
                .unwrap_or(lines.len());
            for (number, line) in lines[..product_lines].iter().enumerate() {
                for pattern in POSITION_ARITHMETIC {
                    if line.contains(pattern) {
                        found.push(format!(
                            "{}:{}: {}",
                            relative.display(),
                            number + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "position arithmetic outside crates/text:\n{}",
            found.join("\n")
        );
    }

    /// Every `.rs` file under `directory` except test directories and test modules' files.
    fn collect_product_sources(directory: &Path, sources: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(directory) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "tests" | "target" | "fuzz" | "benches") {
                    collect_product_sources(&path, sources);
                }
            } else if name.ends_with(".rs") && name != "tests.rs" {
                sources.push(path);
            }
        }
    }
}
