//! Conversions between LSP types and baton's editor terms, at the edge of the server.

use std::path::PathBuf;

use tower_lsp_server::ls_types as lsp;

use text::{Document, PositionEncoding};

use crate::session::DocumentUri;

pub fn position(position: lsp::Position) -> text::Position {
    text::Position::new(position.line, position.character)
}

pub fn range(range: lsp::Range) -> text::Range {
    text::Range::new(self::position(range.start), self::position(range.end))
}

pub fn to_position(position: text::Position) -> lsp::Position {
    lsp::Position::new(position.line, position.character)
}

pub fn to_range(range: text::Range) -> lsp::Range {
    lsp::Range::new(to_position(range.start), to_position(range.end))
}

/// A byte range of a document as an LSP range in the negotiated encoding.
pub fn lsp_range(
    document: &Document,
    bytes: std::ops::Range<usize>,
    encoding: PositionEncoding,
) -> lsp::Range {
    to_range(document.range(bytes, encoding))
}

/// One replacement as an LSP `TextEdit` (JSON) in the negotiated encoding.
///
/// A replacement that reaches the end of a document ending in a newline, with text that ends in
/// one too, is sent as the equivalent edit that stops before that last newline: Neovim 0.11
/// leaves an extra blank line when newline-ended text is inserted at the very end of a buffer
/// (fixed upstream after 0.11), which would read as the user's typing to every later merge.
pub fn text_edit(
    document: &Document,
    replacement: &edit::diff::Replacement,
    encoding: PositionEncoding,
) -> serde_json::Value {
    let (range, text) = clear_of_the_end(document, replacement);
    serde_json::json!({ "range": lsp_range(document, range, encoding), "newText": text })
}

fn clear_of_the_end(
    document: &Document,
    replacement: &edit::diff::Replacement,
) -> (std::ops::Range<usize>, String) {
    let len = document.len_bytes();
    let range = replacement.range.clone();
    let text = &replacement.text;
    let ends_in_newline = len > 0 && document.rope().byte(len - 1) == b'\n' && text.ends_with('\n');
    if range.end != len || !ends_in_newline {
        return (range, text.clone());
    }
    let body = &text[..text.len() - 1];
    if range.start == len {
        // Inserting `T\n` after the last newline is inserting `\nT` before it.
        (len - 1..len - 1, format!("\n{body}"))
    } else {
        // The replaced text ends in that newline, and so does the new text: keep it.
        (range.start..len - 1, body.to_string())
    }
}

pub fn content_change(change: lsp::TextDocumentContentChangeEvent) -> text::ContentChange {
    text::ContentChange {
        range: change.range.map(range),
        text: change.text,
    }
}

pub fn file_path(uri: &lsp::Uri) -> Option<PathBuf> {
    uri.to_file_path().map(|path| path.into_owned())
}

pub fn uri_key(uri: &lsp::Uri) -> DocumentUri {
    DocumentUri::new(uri.as_str())
}

/// The key of a URI that arrived as a plain string (a command's argument): parsed like the
/// URIs of `didOpen`, so both spell the same document the same way.
pub fn uri_key_from_str(text: &str) -> DocumentUri {
    parse_uri(text)
        .map(|uri| uri_key(&uri))
        .unwrap_or_else(|| DocumentUri::new(text))
}

pub fn parse_uri(text: &str) -> Option<lsp::Uri> {
    text.parse().ok()
}

pub fn file_uri(path: &std::path::Path) -> Option<lsp::Uri> {
    lsp::Uri::from_file_path(path)
}

pub fn symbol_kind(kind: syntax::SymbolKind) -> lsp::SymbolKind {
    use syntax::SymbolKind as K;
    match kind {
        K::Module => lsp::SymbolKind::MODULE,
        K::Namespace => lsp::SymbolKind::NAMESPACE,
        K::Class => lsp::SymbolKind::CLASS,
        K::Struct => lsp::SymbolKind::STRUCT,
        K::Enum => lsp::SymbolKind::ENUM,
        K::Interface | K::Trait => lsp::SymbolKind::INTERFACE,
        K::Function => lsp::SymbolKind::FUNCTION,
        K::Method => lsp::SymbolKind::METHOD,
        K::Constructor => lsp::SymbolKind::CONSTRUCTOR,
        K::Field => lsp::SymbolKind::FIELD,
        K::Property => lsp::SymbolKind::PROPERTY,
        K::Constant => lsp::SymbolKind::CONSTANT,
        K::Variable => lsp::SymbolKind::VARIABLE,
        K::TypeAlias => lsp::SymbolKind::TYPE_PARAMETER,
        K::Macro => lsp::SymbolKind::FUNCTION,
        K::EnumMember => lsp::SymbolKind::ENUM_MEMBER,
        K::Impl => lsp::SymbolKind::OBJECT,
        _ => lsp::SymbolKind::VARIABLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edit::diff::Replacement;

    /// The rewritten edit gives the same text as the original, and never touches the end.
    #[test]
    fn edits_reaching_the_end_stop_before_the_last_newline() {
        let cases = [
            ("a\nb\n", 4..4, "c\n"),
            ("a\nb\n", 2..4, "x\ny\n"),
            ("a\n", 0..2, "\n"),
            ("a\nb\n", 1..2, "q\n"),
            ("ab", 2..2, "c\n"),
            ("a\n", 2..2, "é\n"),
        ];
        for (old, range, new) in cases {
            let document = Document::new(old, 1, "text");
            let replacement = Replacement {
                range: range.clone(),
                text: new.to_string(),
            };
            let (moved, text) = clear_of_the_end(&document, &replacement);
            let mut expected = old.to_string();
            expected.replace_range(range.clone(), new);
            let mut got = old.to_string();
            got.replace_range(moved.clone(), &text);
            assert_eq!(got, expected, "{old:?} {range:?} {new:?}");
            if old.ends_with('\n') && new.ends_with('\n') && range.end == old.len() {
                assert!(moved.end < old.len(), "{old:?} {range:?}");
            } else {
                assert_eq!((moved, text.as_str()), (range, new));
            }
        }
    }
}
