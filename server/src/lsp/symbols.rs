//! Navigation from baton's own index: document symbols, workspace symbols and a tags-based
//! definition fallback. Each can be switched off in `features`, since baton usually runs beside
//! the language's own server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use tower_lsp_server::ls_types as lsp;

use index::{SearchContext, Symbol};
use syntax::OutlineItem;
use text::{Document, PositionEncoding, boundary};

use crate::lsp::{Backend, proto};
use crate::session::DocumentSnapshot;

/// Most workspace symbols returned for one query.
const MAX_WORKSPACE_SYMBOLS: usize = 128;

impl Backend {
    pub(crate) fn document_symbols(&self, uri: &lsp::Uri) -> Option<lsp::DocumentSymbolResponse> {
        let snapshot = self.session.snapshot(&proto::uri_key(uri))?;
        let document = &snapshot.document;
        if crate::test_hooks::enabled() {
            crate::test_hooks::maybe_panic(
                crate::test_hooks::Site::DocumentSymbol,
                &document.text(),
            );
        }
        let tree = snapshot.tree.as_ref()?;
        let encoding = snapshot.encoding;
        let outline = tree.outline(document.rope());
        // Every range converted in one batch, in the order `document_symbol` takes them.
        let mut byte_ranges = Vec::new();
        let mut pending: Vec<&OutlineItem> = outline.iter().rev().collect();
        while let Some(item) = pending.pop() {
            byte_ranges.push(item.range.clone());
            byte_ranges.push(item.selection_range.clone());
            pending.extend(item.children.iter().rev());
        }
        let mut ranges = document
            .ranges(&byte_ranges, encoding)
            .into_iter()
            .map(proto::to_range);
        Some(lsp::DocumentSymbolResponse::Nested(
            outline
                .iter()
                .map(|item| document_symbol(item, &mut ranges))
                .collect(),
        ))
    }

    pub(crate) fn workspace_symbols(&self, query: &str) -> Vec<lsp::SymbolInformation> {
        let Some(index) = self.session.current_index() else {
            return Vec::new();
        };
        let context = SearchContext {
            open_files: self.session.documents.open_paths(),
            current_file: self
                .session
                .focused()
                .and_then(|uri| proto::parse_uri(uri.as_str()))
                .and_then(|uri| proto::file_path(&uri)),
        };
        let matches = index.search(query, MAX_WORKSPACE_SYMBOLS, &context);
        let mut locations = Locator::new(self);
        matches
            .into_iter()
            .filter_map(|found| {
                let location = locations.locate(&found.symbol)?;
                // Built from JSON: the struct has a deprecated field we must not set.
                serde_json::from_value(json!({
                    "name": found.symbol.name,
                    "kind": proto::symbol_kind(found.symbol.kind),
                    "location": location,
                    "containerName": found.symbol.container,
                }))
                .ok()
            })
            .collect()
    }

    pub(crate) fn definitions(
        &self,
        uri: &lsp::Uri,
        position: lsp::Position,
    ) -> Vec<lsp::Location> {
        let Some(index) = self.session.current_index() else {
            return Vec::new();
        };
        let Some(DocumentSnapshot {
            document,
            path,
            encoding,
            ..
        }) = self.session.snapshot(&proto::uri_key(uri))
        else {
            return Vec::new();
        };
        let offset = document.offset(proto::position(position), encoding);
        let Some(name) = word_at(&document, offset) else {
            return Vec::new();
        };
        let mut found = index.definitions(&name);
        // Definitions in the same file first.
        found.sort_by_key(|symbol| Some(&symbol.path) != path.as_ref());
        let mut locations = Locator::new(self);
        found
            .iter()
            .filter_map(|symbol| locations.locate(symbol))
            .collect()
    }
}

/// Builds one symbol, taking its ranges from `ranges` in pre-order (range, then selection
/// range, then the children's).
fn document_symbol(
    item: &OutlineItem,
    ranges: &mut impl Iterator<Item = lsp::Range>,
) -> lsp::DocumentSymbol {
    let name = if item.name.is_empty() {
        "<anonymous>".to_string()
    } else {
        item.name.clone()
    };
    let range = ranges.next().unwrap_or_default();
    let selection_range = ranges.next().unwrap_or_default();
    // Built directly: a large outline is answered on every request, so no JSON round trip.
    #[allow(deprecated)]
    lsp::DocumentSymbol {
        name,
        detail: None,
        kind: proto::symbol_kind(item.kind),
        tags: None,
        deprecated: None,
        range,
        selection_range,
        children: (!item.children.is_empty()).then(|| {
            item.children
                .iter()
                .map(|child| document_symbol(child, ranges))
                .collect()
        }),
    }
}

/// The identifier around a byte offset (an offset inside a character counts from its start).
fn word_at(document: &Document, offset: usize) -> Option<String> {
    let offset = document.floor_boundary(offset);
    let line = document.line_of(offset);
    let start = document.line_start(line);
    let text = document.slice(start..document.line_content_end(line));
    let (before, after) = boundary::split_at_floor(&text, offset - start);
    let is_word = |c: &char| c.is_alphanumeric() || *c == '_';
    let head: usize = before
        .chars()
        .rev()
        .take_while(is_word)
        .map(char::len_utf8)
        .sum();
    let tail: usize = after.chars().take_while(is_word).map(char::len_utf8).sum();
    let word = boundary::slice_within(&text, before.len() - head..before.len() + tail);
    (!word.is_empty()).then(|| word.to_string())
}

/// Turns index symbols (byte ranges) into LSP locations, from the open buffer when there is
/// one, else from the file on disk, each file read at most once per request.
struct Locator<'a> {
    backend: &'a Backend,
    files: HashMap<PathBuf, Option<String>>,
    encoding: PositionEncoding,
}

impl<'a> Locator<'a> {
    fn new(backend: &'a Backend) -> Locator<'a> {
        Locator {
            backend,
            files: HashMap::new(),
            encoding: backend.session.encoding(),
        }
    }

    fn locate(&mut self, symbol: &Symbol) -> Option<lsp::Location> {
        let uri = proto::file_uri(&symbol.path)?;
        if let Some(snapshot) = self.backend.session.snapshot(&proto::uri_key(&uri)) {
            let range =
                proto::lsp_range(&snapshot.document, symbol.name_range.clone(), self.encoding);
            return Some(lsp::Location { uri, range });
        }
        // The index knows the name's column in UTF-8 and UTF-16; they are equal on ASCII lines,
        // where every encoding agrees. Only a UTF-32 client on a non-ASCII line needs the file.
        let units = |s: &str| -> u32 {
            match self.encoding {
                PositionEncoding::Utf8 => s.len() as u32,
                PositionEncoding::Utf16 => s.encode_utf16().count() as u32,
                PositionEncoding::Utf32 => s.chars().count() as u32,
            }
        };
        let character = match self.encoding {
            PositionEncoding::Utf8 => symbol.column_utf8,
            PositionEncoding::Utf16 => symbol.column_utf16,
            PositionEncoding::Utf32 if symbol.column_utf8 == symbol.column_utf16 => {
                symbol.column_utf8
            }
            PositionEncoding::Utf32 => {
                let text = self
                    .files
                    .entry(symbol.path.clone())
                    .or_insert_with(|| read_text(&symbol.path))
                    .as_deref()?;
                utf32_column(text, symbol.name_range.start)
            }
        };
        let range = lsp::Range::new(
            lsp::Position::new(symbol.line, character),
            lsp::Position::new(symbol.line, character + units(&symbol.name)),
        );
        Some(lsp::Location { uri, range })
    }
}

/// The UTF-32 column of byte `offset` of a file's text. The file on disk may have changed
/// since it was indexed, so the offset may lie past the end or inside a character.
fn utf32_column(text: &str, offset: usize) -> u32 {
    let before = boundary::prefix_within_bytes(text, offset);
    let line = before
        .rfind('\n')
        .map_or(before, |newline| &before[newline + 1..]);
    line.chars().count() as u32
}

fn read_text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_around_the_cursor() {
        let document = Document::new("let total_count = x;\n", 1, "rust");
        assert_eq!(word_at(&document, 6).as_deref(), Some("total_count"));
        assert_eq!(word_at(&document, 4).as_deref(), Some("total_count"));
        assert_eq!(word_at(&document, 15).as_deref(), Some("total_count"));
        assert_eq!(word_at(&document, 16), None);
    }

    /// The word at every byte of a multi-byte line (inside characters too, and past the end)
    /// is the run of word characters around the character holding that byte.
    #[test]
    fn words_at_every_byte_of_a_multi_byte_line() {
        let text = "a\r\nlet año_🎉 = ñandú(e\u{301}x, 中文)\u{200D}z;\r\n";
        let document = Document::new(text, 1, "rust");
        let is_word = |c: char| c.is_alphanumeric() || c == '_';
        for offset in 0..=text.len() + 2 {
            let mut at = text::boundary::floor_char_boundary(text, offset);
            // Between the `\r` and `\n` of a line break is still the end of that line.
            if text[..at].ends_with('\r') && text[at..].starts_with('\n') {
                at -= 1;
            }
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[at..].find(['\r', '\n']).map_or(text.len(), |i| at + i);
            let begin = text[line_start..at]
                .char_indices()
                .rev()
                .take_while(|(_, c)| is_word(*c))
                .last()
                .map_or(at, |(i, _)| line_start + i);
            let end = text[at..line_end]
                .char_indices()
                .find(|(_, c)| !is_word(*c))
                .map_or(line_end, |(i, _)| at + i);
            let expected = (begin < end).then(|| text[begin..end].to_string());
            assert_eq!(word_at(&document, offset), expected, "at {offset}");
        }
    }

    /// The UTF-32 column of every byte of a multi-byte file, and of offsets past its end.
    #[test]
    fn utf32_columns_at_every_byte() {
        let text = "fn a() {}\r\n    // Ñandú 🎉 e\u{301}\u{200D}中 x\n";
        for offset in 0..=text.len() + 2 {
            let at = text::boundary::floor_char_boundary(text, offset);
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let expected = text[line_start..at].chars().count() as u32;
            assert_eq!(utf32_column(text, offset), expected, "at {offset}");
        }
    }
}
