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
