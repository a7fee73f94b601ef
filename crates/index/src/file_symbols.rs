//! Compact per-file symbol data: definitions with their ranges and references counted by name.
//!
//! Only this is kept for closed files (never trees or text), so that indexing a large workspace
//! stays within the memory budget.

use std::collections::HashMap;
use std::ops::Range;

use syntax::{Language, SymbolKind};

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
    /// 0-based line of the name.
    pub(crate) line: u32,
    pub(crate) name_start: u32,
    pub(crate) name_end: u32,
    /// Column of the name in UTF-8 bytes and in UTF-16 code units, so the server can answer
    /// with LSP positions without reading the file (they differ only on non-ASCII lines).
    pub(crate) column_utf8: u32,
    pub(crate) column_utf16: u32,
    pub(crate) range_start: u32,
    pub(crate) range_end: u32,
    /// Index (in the same file's definitions) of the innermost definition enclosing this one.
    pub(crate) container: Option<u32>,
}

impl Definition {
    pub(crate) fn name_range(&self) -> Range<usize> {
        self.name_start as usize..self.name_end as usize
    }

    /// Computes the name's columns from the text it was found in.
    pub(crate) fn set_columns(&mut self, rope: &ropey::Rope) {
        // A name starting inside a character would give a UTF-8 column inside it but a UTF-16
        // column at its start; both count from the character's start.
        let start = text::boundary::rope_floor_char_boundary(rope, self.name_start as usize);
        let Some(line_start) = rope.try_line_to_byte(self.line as usize).ok() else {
            return;
        };
        let (Ok(start_char), Ok(line_char)) = (
            rope.try_byte_to_char(start),
            rope.try_byte_to_char(line_start),
        ) else {
            return;
        };
        self.column_utf8 = clamp_u32(start.saturating_sub(line_start));
        self.column_utf16 = clamp_u32(
            rope.char_to_utf16_cu(start_char)
                .saturating_sub(rope.char_to_utf16_cu(line_char)),
        );
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
                let mut definition = Definition::new(
                    &tag.name,
                    tag.kind,
                    tag.line,
                    tag.name_range.clone(),
                    tag.range.clone(),
                );
                definition.set_columns(rope);
                definitions.push(definition);
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
        line: u32,
        name_range: Range<usize>,
        range: Range<usize>,
    ) -> Definition {
        let lowercase = name.to_lowercase();
        Definition {
            name: Box::from(name),
            char_mask: char_mask(&lowercase),
            lowercase: lowercase.into_boxed_str(),
            kind,
            line,
            name_start: clamp_u32(name_range.start),
            name_end: clamp_u32(name_range.end),
            column_utf8: 0,
            column_utf16: 0,
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

    /// A name starting at every byte of a multi-byte line (inside characters too, as a stale
    /// or damaged range would): the UTF-8 and UTF-16 columns both count up to the start of
    /// the character holding that byte.
    #[test]
    fn columns_at_every_byte_of_a_multi_byte_line() {
        let text = "fn a() {}\r\n    // Ñandú 🎉 e\u{301}\u{200D}中 x\n";
        let rope = ropey::Rope::from_str(text);
        let line_start = text.find("    //").unwrap();
        for offset in line_start..text.len() {
            let mut definition =
                Definition::new("x", SymbolKind::Function, 1, offset..offset + 1, 0..1);
            definition.set_columns(&rope);
            let before = &text[line_start..text::boundary::floor_char_boundary(text, offset)];
            assert_eq!(definition.column_utf8 as usize, before.len(), "{offset}");
            assert_eq!(
                definition.column_utf16 as usize,
                before.encode_utf16().count(),
                "{offset}"
            );
        }
    }
}
