//! The languages baton understands: how the editor and the file system name them, and the
//! tree-sitter grammar and query files that belong to each.

use std::path::Path;

/// A language with a tree-sitter grammar and tags queries in `grammars/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Rust,
    Python,
    TypeScript,
    Tsx,
    JavaScript,
    Go,
    C,
    Cpp,
    Java,
    Ruby,
    Lua,
    Bash,
}

impl Language {
    /// Every language, in declaration order.
    pub const ALL: [Language; 12] = [
        Language::Rust,
        Language::Python,
        Language::TypeScript,
        Language::Tsx,
        Language::JavaScript,
        Language::Go,
        Language::C,
        Language::Cpp,
        Language::Java,
        Language::Ruby,
        Language::Lua,
        Language::Bash,
    ];

    /// Maps an LSP `languageId` (as sent in `textDocument/didOpen`) to a language.
    pub fn from_language_id(id: &str) -> Option<Language> {
        let language = match id {
            "rust" => Language::Rust,
            "python" => Language::Python,
            "typescript" => Language::TypeScript,
            "typescriptreact" => Language::Tsx,
            // JSX parses with the JavaScript grammar, which includes JSX.
            "javascript" | "javascriptreact" => Language::JavaScript,
            "go" => Language::Go,
            "c" => Language::C,
            "cpp" => Language::Cpp,
            "java" => Language::Java,
            "ruby" => Language::Ruby,
            "lua" => Language::Lua,
            "sh" | "bash" | "shellscript" => Language::Bash,
            _ => return None,
        };
        Some(language)
    }

    /// Guesses the language from a file extension. `.h` is treated as C because C headers parse
    /// with the C grammar and C++ headers usually use `.hpp`/`.hh`.
    pub fn from_path(path: &Path) -> Option<Language> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        let language = match extension.as_str() {
            "rs" => Language::Rust,
            "py" | "pyi" => Language::Python,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "js" | "jsx" | "mjs" | "cjs" => Language::JavaScript,
            "go" => Language::Go,
            "c" | "h" => Language::C,
            "cc" | "cpp" | "cxx" | "c++" | "hpp" | "hh" | "hxx" => Language::Cpp,
            "java" => Language::Java,
            "rb" => Language::Ruby,
            "lua" => Language::Lua,
            "sh" | "bash" => Language::Bash,
            _ => return None,
        };
        Some(language)
    }

    /// A short lowercase name, matching the folder under `grammars/`.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::JavaScript => "javascript",
            Language::Go => "go",
            Language::C => "c",
            Language::Cpp => "cpp",
            Language::Java => "java",
            Language::Ruby => "ruby",
            Language::Lua => "lua",
            Language::Bash => "bash",
        }
    }

    /// The line comment opener, used when baton writes a comment into a file.
    pub fn line_comment(self) -> &'static str {
        match self {
            Language::Python | Language::Ruby | Language::Bash => "#",
            Language::Lua => "--",
            Language::Rust
            | Language::TypeScript
            | Language::Tsx
            | Language::JavaScript
            | Language::Go
            | Language::C
            | Language::Cpp
            | Language::Java => "//",
        }
    }

    /// The tree-sitter grammar.
    pub(crate) fn grammar(self) -> tree_sitter::Language {
        let function = match self {
            Language::Rust => tree_sitter_rust::LANGUAGE,
            Language::Python => tree_sitter_python::LANGUAGE,
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT,
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX,
            Language::JavaScript => tree_sitter_javascript::LANGUAGE,
            Language::Go => tree_sitter_go::LANGUAGE,
            Language::C => tree_sitter_c::LANGUAGE,
            Language::Cpp => tree_sitter_cpp::LANGUAGE,
            Language::Java => tree_sitter_java::LANGUAGE,
            Language::Ruby => tree_sitter_ruby::LANGUAGE,
            Language::Lua => tree_sitter_lua::LANGUAGE,
            Language::Bash => tree_sitter_bash::LANGUAGE,
        };
        function.into()
    }

    /// The tags query source: `@definition.<kind>` / `@reference.<kind>` around `@name`.
    pub(crate) fn tags_source(self) -> &'static str {
        match self {
            Language::Rust => include_str!("../../../grammars/rust/tags.scm"),
            Language::Python => include_str!("../../../grammars/python/tags.scm"),
            Language::TypeScript | Language::Tsx => concat!(
                include_str!("../../../grammars/ecmascript/tags.scm"),
                include_str!("../../../grammars/typescript/tags.scm"),
            ),
            Language::JavaScript => concat!(
                include_str!("../../../grammars/ecmascript/tags.scm"),
                include_str!("../../../grammars/javascript/tags.scm"),
            ),
            Language::Go => include_str!("../../../grammars/go/tags.scm"),
            Language::C => include_str!("../../../grammars/c/tags.scm"),
            // C++ patterns first: the earliest pattern wins, and the C++ ones are more
            // specific (a constructor is also a C-style function definition).
            Language::Cpp => concat!(
                include_str!("../../../grammars/cpp/tags.scm"),
                include_str!("../../../grammars/c/tags.scm"),
            ),
            Language::Java => include_str!("../../../grammars/java/tags.scm"),
            Language::Ruby => include_str!("../../../grammars/ruby/tags.scm"),
            Language::Lua => include_str!("../../../grammars/lua/tags.scm"),
            Language::Bash => include_str!("../../../grammars/bash/tags.scm"),
        }
    }

    /// Extra outline-only patterns (definitions that are not index symbols, such as Rust `impl`
    /// blocks), appended to the tags query to form the outline query.
    pub(crate) fn outline_source(self) -> &'static str {
        match self {
            Language::Rust => include_str!("../../../grammars/rust/outline.scm"),
            _ => "",
        }
    }
}
