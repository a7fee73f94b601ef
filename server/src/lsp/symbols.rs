//! Navigation from baton's own index: document symbols, workspace symbols and a tags-based
//! definition fallback. Each can be switched off in `features`, since baton usually runs beside
//! the language's own server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use tower_lsp_server::ls_types as lsp;

use index::{SearchContext, Symbol};
use syntax::OutlineItem;
use text::{Document, PositionEncoding};

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
        let answer = lsp::DocumentSymbolResponse::Nested(
            outline
                .into_iter()
                .map(|item| document_symbol(item, &mut ranges, 0))
                .collect(),
        );
        if let Some(elapsed) = self
            .session
            .documents
            .answered_after_change(&snapshot.uri, snapshot.version())
        {
            self.session
                .latencies
                .record_document_symbol_after_change(elapsed);
        }
        Some(answer)
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
/// Deepest nesting of symbols in a `documentSymbol` answer. Each level costs two levels of JSON
/// (a symbol and its `children`), and serde_json — what Helix parses LSP with — refuses input
/// nested deeper than 128: one answer for a file of deeply nested braces would be unreadable.
/// (Found by the server-loop fuzz, StrictUtf32 seeds 134 and 149.) Deeper symbols are listed,
/// flat and in document order, as children of the deepest allowed level.
const MAX_SYMBOL_DEPTH: usize = 32;

fn document_symbol(
    item: OutlineItem,
    ranges: &mut impl Iterator<Item = lsp::Range>,
    depth: usize,
) -> lsp::DocumentSymbol {
    let OutlineItem {
        name,
        kind,
        children,
        ..
    } = item;
    let mut symbol = leaf_symbol(name, kind, ranges);
    if children.is_empty() {
        return symbol;
    }
    let children = if depth + 1 < MAX_SYMBOL_DEPTH {
        children
            .into_iter()
            .map(|child| document_symbol(child, ranges, depth + 1))
            .collect()
    } else {
        // Every descendant, in the same pre-order the ranges were converted in.
        let mut flat = Vec::new();
        let mut pending: Vec<OutlineItem> = children.into_iter().rev().collect();
        while let Some(descendant) = pending.pop() {
            let OutlineItem {
                name,
                kind,
                children,
                ..
            } = descendant;
            flat.push(leaf_symbol(name, kind, ranges));
            pending.extend(children.into_iter().rev());
        }
        flat
    };
    symbol.children = Some(children);
    symbol
}

/// One symbol without its children, taking its two ranges from `ranges`. The outline is the
/// answer's own, so its names are moved into the symbols, not copied.
fn leaf_symbol(
    name: String,
    kind: syntax::SymbolKind,
    ranges: &mut impl Iterator<Item = lsp::Range>,
) -> lsp::DocumentSymbol {
    let name = if name.is_empty() {
        "<anonymous>".to_string()
    } else {
        name
    };
    let range = ranges.next().unwrap_or_default();
    let selection_range = ranges.next().unwrap_or_default();
    // Built directly: a large outline is answered on every request, so no JSON round trip.
    #[allow(deprecated)]
    lsp::DocumentSymbol {
        name,
        detail: None,
        kind: proto::symbol_kind(kind),
        tags: None,
        deprecated: None,
        range,
        selection_range,
        children: None,
    }
}

/// The identifier around a byte offset (an offset inside a character counts from its start).
fn word_at(document: &Document, offset: usize) -> Option<String> {
    let word = document.word_around(offset, |c| c.is_alphanumeric() || c == '_');
    (!word.is_empty()).then(|| document.slice(word))
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
        // The index stores enough to answer without the file, except a UTF-32 column on a
        // non-ASCII line; then the file is read (once per request) and `text` counts.
        let start = symbol.position;
        let character = match start.character(self.encoding) {
            Some(character) => character,
            None => {
                let text = self
                    .files
                    .entry(symbol.path.clone())
                    .or_insert_with(|| read_text(&symbol.path))
                    .as_deref()?;
                text::column_in_text(text, symbol.name_range.start, self.encoding)
            }
        };
        let end = character.saturating_add(self.encoding.width(&symbol.name));
        let range = lsp::Range::new(
            lsp::Position::new(start.line(), character),
            lsp::Position::new(start.line(), end),
        );
        Some(lsp::Location { uri, range })
    }
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
}
