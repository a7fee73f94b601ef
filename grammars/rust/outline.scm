; Rust outline-only items: impl blocks group their methods in the outline but are not symbols
; in the index. `@trait` names the implemented trait ("impl Display for Point").
(impl_item trait: (_) @trait type: (_) @name) @outline.impl
(impl_item type: (_) @name) @outline.impl
