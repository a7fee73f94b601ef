//! Stable numbering of `syntax::SymbolKind` for the on-disk cache. The numbers are part of the
//! cache format: append new kinds, never renumber (or bump the cache version).

use syntax::SymbolKind;

const KINDS: [SymbolKind; 19] = [
    SymbolKind::Module,
    SymbolKind::Namespace,
    SymbolKind::Class,
    SymbolKind::Struct,
    SymbolKind::Enum,
    SymbolKind::Interface,
    SymbolKind::Trait,
    SymbolKind::Function,
    SymbolKind::Method,
    SymbolKind::Constructor,
    SymbolKind::Field,
    SymbolKind::Property,
    SymbolKind::Constant,
    SymbolKind::Variable,
    SymbolKind::TypeAlias,
    SymbolKind::Macro,
    SymbolKind::EnumMember,
    SymbolKind::Impl,
    SymbolKind::Other,
];

pub(crate) fn kind_to_byte(kind: SymbolKind) -> u8 {
    // The exhaustive match makes a new variant in `syntax` a compile error here rather than a
    // silent cache corruption.
    let position = match kind {
        SymbolKind::Module
        | SymbolKind::Namespace
        | SymbolKind::Class
        | SymbolKind::Struct
        | SymbolKind::Enum
        | SymbolKind::Interface
        | SymbolKind::Trait
        | SymbolKind::Function
        | SymbolKind::Method
        | SymbolKind::Constructor
        | SymbolKind::Field
        | SymbolKind::Property
        | SymbolKind::Constant
        | SymbolKind::Variable
        | SymbolKind::TypeAlias
        | SymbolKind::Macro
        | SymbolKind::EnumMember
        | SymbolKind::Impl
        | SymbolKind::Other => KINDS.iter().position(|known| *known == kind),
    };
    position.map_or(u8::MAX, |position| position as u8)
}

pub(crate) fn kind_from_byte(byte: u8) -> Option<SymbolKind> {
    KINDS.get(usize::from(byte)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        for kind in KINDS {
            assert_eq!(kind_from_byte(kind_to_byte(kind)), Some(kind));
        }
    }
}
