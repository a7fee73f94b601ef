//! Compact per-file symbol data: definitions with their ranges and references counted by name.
//!
//! Only this is kept for closed files (never trees or text), so that indexing a large workspace
//! stays within the memory budget.

use std::collections::HashMap;
use std::ops::Range;

use syntax::{Language, SymbolKind};
use text::StoredPosition;

/// One definition in a file. Ranges are byte offsets stored as `u32` to halve their size;
/// files over 4 GiB are far beyond `max_file_bytes` anyway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Definition {
    pub(crate) name: Box<str>,
    /// The lowercased name, precomputed so that fuzzy search does not allocate per symbol.
    pub(crate) lowercase: Box<str>,
    /// One bit per ASCII letter, digit and underscore present in `lowercase`: a query can only
    /// match names whose mask contains the query's mask, which rejects most names in one `and`.
    pub(crate) char_mask: u64,
    pub(crate) kind: SymbolKind,
    /// Where the name starts, as LSP counts lines and columns (computed by `text`), so the
    /// server can answer with positions without reading the file.
    pub(crate) position: StoredPosition,
    pub(crate) name_start: u32,
    pub(crate) name_end: u32,
    pub(crate) range_start: u32,
    pub(crate) range_end: u32,
    /// Index (in the same file's definitions) of the innermost definition enclosing this one.
    pub(crate) container: Option<u32>,
}

impl Definition {
    pub(crate) fn name_range(&self) -> Range<usize> {
        self.name_start as usize..self.name_end as usize
    }
}

/// Everything the index remembers about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileSymbols {
    pub(crate) language: Language,
    /// File size, modification time (nanoseconds since the epoch) and content hash, used to
    /// decide whether a cached entry is still valid. Zero for open buffers.
    pub(crate) size: u64,
    pub(crate) modified_nanos: u64,
    pub(crate) content_hash: u64,
    /// Sorted by position.
    pub(crate) definitions: Vec<Definition>,
    /// Referenced names with how often each occurs, sorted by name. Positions of references are
    /// not needed by any feature for closed files, and counting them keeps the index small.
    pub(crate) references: Vec<(Box<str>, u32)>,
}

impl FileSymbols {
    /// Builds the compact form from the tags of a whole file and its text.
    pub(crate) fn from_tags(
        language: Language,
        tags: &[syntax::Tag],
        rope: &ropey::Rope,
    ) -> FileSymbols {
        let mut definitions = Vec::new();
        let mut reference_counts: HashMap<&str, u32> = HashMap::new();
        for tag in tags {
            if tag.is_definition {
                definitions.push(Definition::new(
                    &tag.name,
                    tag.kind,
                    StoredPosition::of_offset(rope, tag.name_range.start),
                    tag.name_range.clone(),
                    tag.range.clone(),
                ));
            } else {
                *reference_counts.entry(tag.name.as_str()).or_default() += 1;
            }
        }
        let mut references: Vec<(Box<str>, u32)> = reference_counts
            .into_iter()
            .map(|(name, count)| (Box::from(name), count))
            .collect();
        references.sort_unstable();
        FileSymbols::from_parts(language, definitions, references)
    }

    /// Sorts the definitions and links each to its container.
    pub(crate) fn from_parts(
        language: Language,
        mut definitions: Vec<Definition>,
        references: Vec<(Box<str>, u32)>,
    ) -> FileSymbols {
        // Outer definitions first at equal starts, so that the stack walk below sees a container
        // before what it contains.
        definitions.sort_by(|left, right| {
            (
                left.range_start,
                std::cmp::Reverse(left.range_end),
                left.name_start,
            )
                .cmp(&(
                    right.range_start,
                    std::cmp::Reverse(right.range_end),
                    right.name_start,
                ))
        });
        let mut open_containers: Vec<usize> = Vec::new();
        for index in 0..definitions.len() {
            let (start, end) = (definitions[index].range_start, definitions[index].range_end);
            while let Some(&top) = open_containers.last() {
                let container = &definitions[top];
                let encloses = container.range_start <= start
                    && end <= container.range_end
                    && (container.range_start, container.range_end) != (start, end);
                if encloses {
                    break;
                }
                open_containers.pop();
            }
            definitions[index].container = open_containers.last().map(|&top| top as u32);
            open_containers.push(index);
        }
        FileSymbols {
            language,
            size: 0,
            modified_nanos: 0,
            content_hash: 0,
            definitions,
            references,
        }
    }

    pub(crate) fn reference_total(&self) -> usize {
        self.references
            .iter()
            .map(|(_, count)| *count as usize)
            .sum()
    }
}

impl Definition {
    pub(crate) fn new(
        name: &str,
        kind: SymbolKind,
        position: StoredPosition,
        name_range: Range<usize>,
        range: Range<usize>,
    ) -> Definition {
        let lowercase = name.to_lowercase();
        Definition {
            name: Box::from(name),
            char_mask: char_mask(&lowercase),
            lowercase: lowercase.into_boxed_str(),
            kind,
            position,
            name_start: clamp_u32(name_range.start),
            name_end: clamp_u32(name_range.end),
            range_start: clamp_u32(range.start),
            range_end: clamp_u32(range.end),
            container: None,
        }
    }
}

fn clamp_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// The prefilter mask of a lowercased string (see [`Definition::char_mask`]).
pub(crate) fn char_mask(lowercase: &str) -> u64 {
    let mut mask = 0u64;
    for byte in lowercase.bytes() {
        let bit = match byte {
            b'a'..=b'z' => byte - b'a',
            b'0'..=b'9' => 26 + byte - b'0',
            b'_' => 36,
            _ => continue,
        };
        mask |= 1 << bit;
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A definition's stored position is the one an open document gives its name, on lines
    /// with multi-byte characters and every kind of line break.
    #[test]
    fn definitions_are_placed_like_an_open_document_would_place_them() {
        let source = "fn a() {}\r\n/* Ñandú 🎉 */ fn b() {}\rfn c() {}\n/* e\u{301} */ fn d() {}\n";
        let document = text::Document::new(source, 1, "rust");
        let tree = syntax::SyntaxTree::parse(Language::Rust, document.rope()).expect("parses");
        let symbols =
            FileSymbols::from_tags(Language::Rust, &tree.tags(document.rope()), document.rope());
        let names: Vec<&str> = symbols.definitions.iter().map(|d| &*d.name).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        for definition in &symbols.definitions {
            for encoding in [
                text::PositionEncoding::Utf8,
                text::PositionEncoding::Utf16,
                text::PositionEncoding::Utf32,
            ] {
                let expected = document.position(definition.name_start as usize, encoding);
                assert_eq!(
                    definition.position.line(),
                    expected.line,
                    "{}",
                    definition.name
                );
                let column = definition.position.character(encoding).unwrap_or_else(|| {
                    text::column_in_text(source, definition.name_start as usize, encoding)
                });
                assert_eq!(
                    column, expected.character,
                    "{} {encoding:?}",
                    definition.name
                );
            }
        }
    }
}
