//! Text-only comment helpers that work for any language, including ones without a grammar:
//! finding `baton: <instruction>` and `baton plan: <instruction>` marker lines and stripping
//! comment syntax from comments.

use std::ops::Range;

use ropey::Rope;
use text::boundary;

/// A `baton: <instruction>` marker comment occupying a whole line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// 0-based line of the marker.
    pub line: usize,
    /// The whole marker line, including its line break, as a byte range.
    pub line_range: Range<usize>,
    /// The instruction after `baton:`, trimmed, without comment closers.
    pub instruction: String,
}

/// Comment openers, longest first so that `///` is not read as `//` followed by `/`.
const OPENERS: &[&str] = &["<!--", "(*", "/*", "//", "--", "#", ";", "%"];

/// Comment closers removed from the end of an instruction.
const CLOSERS: &[&str] = &["-->", "*)", "*/"];

/// Lines longer than this are not scanned for markers: a marker is a short comment, and the
/// check must stay cheap on minified files with megabyte-long lines.
const MAX_MARKER_LINE_BYTES: usize = 16 * 1024;

/// Finds a `baton: <instruction>` marker comment on `line` (0-based), in any comment syntax:
/// `//`, `#`, `--`, `;`, `%`, `/* … */`, `<!-- … -->`, `(* … *)` (doc-comment variants such
/// as `///`, `//!`, `/**` and `##` too). The comment must be the only thing on its line, since
/// the marker line is consumed by the edit. `baton:` is matched case-insensitively. Returns
/// `None` when the instruction is empty.
pub fn find_marker(source: &Rope, line: usize) -> Option<Marker> {
    find_keyword_marker(source, line, MARKER_KEYWORD)
}

/// Finds a `baton plan: <instruction>` marker comment on `line` (0-based): the same comment
/// syntaxes as [`find_marker`], asking for a plan instead of an edit. The two never match the
/// same line (`baton plan:` is not `baton:`).
pub fn find_plan_marker(source: &Rope, line: usize) -> Option<Marker> {
    find_keyword_marker(source, line, PLAN_MARKER_KEYWORD)
}

fn find_keyword_marker(source: &Rope, line: usize, keyword: &str) -> Option<Marker> {
    if line >= source.len_lines() {
        return None;
    }
    let start = source.line_to_byte(line);
    let end = source.line_to_byte(line + 1);
    if end - start > MAX_MARKER_LINE_BYTES {
        return None;
    }
    let text = boundary::rope_slice_within(source, start..end).to_string();
    let instruction = marker_instruction(&text, keyword)?;
    Some(Marker {
        line,
        line_range: start..end,
        instruction,
    })
}

/// The instruction of a marker line, if `line` is one.
///
/// Any text may reach this (the editor asks for code actions on every line), so it never
/// slices at a computed offset: openers, the keyword and closers are all stripped as prefixes
/// and suffixes, which cannot split a character however the line is written.
fn marker_instruction(line: &str, keyword: &str) -> Option<String> {
    let trimmed = line.trim();
    let mut rest = OPENERS
        .iter()
        .find_map(|opener| Some((*opener, trimmed.strip_prefix(*opener)?)))
        .map(|(opener, rest)| {
            // Repeated opener characters and doc-comment markers: `///`, `//!`, `/**`, `##`,
            // `;;`, `---`.
            let opener_last = opener.chars().last().unwrap_or(' ');
            let rest = rest.trim_start_matches([opener_last, '!']);
            if opener == "/*" {
                rest.trim_start_matches('*')
            } else {
                rest
            }
        })?;
    rest = rest.trim_start();
    let mut instruction = boundary::strip_prefix_ignore_ascii_case(rest, keyword)?.trim();
    while let Some(inner) = CLOSERS
        .iter()
        .find_map(|closer| instruction.strip_suffix(*closer))
    {
        instruction = inner.trim_end();
    }
    (!instruction.is_empty()).then(|| instruction.to_string())
}

/// The keyword that makes a comment a marker, matched ignoring ASCII case.
const MARKER_KEYWORD: &str = "baton:";

/// The keyword of a plan marker, matched ignoring ASCII case.
const PLAN_MARKER_KEYWORD: &str = "baton plan:";

/// Strips comment syntax from a comment's text: `// make it async` becomes `make it async`.
/// Handles runs of line comments (`//`, `///`, `//!`, `#`, `--`, `;`), block comments
/// (`/* */`, `/** * */`, `<!-- -->`, `(* *)`, Lua `--[[ ]]`, Ruby `=begin`/`=end`). Lines keep
/// their indentation beyond the single space after the comment marker.
pub fn comment_text(comment: &str) -> String {
    let trimmed = comment.trim();
    let body = strip_block(trimmed);
    let lines: Vec<&str> = match body {
        Some(body) => body.lines().map(strip_block_line).collect(),
        None => trimmed.lines().map(strip_line_comment).collect(),
    };
    let lines: Vec<&str> = lines.into_iter().map(str::trim_end).collect();
    let first = lines.iter().position(|line| !line.is_empty());
    let last = lines.iter().rposition(|line| !line.is_empty());
    match (first, last) {
        (Some(first), Some(last)) => lines[first..=last].join("\n"),
        _ => String::new(),
    }
}

/// The inside of a block comment, or `None` if `comment` is not one.
fn strip_block(comment: &str) -> Option<&str> {
    let pairs: &[(&str, &str)] = &[
        ("/*", "*/"),
        ("<!--", "-->"),
        ("(*", "*)"),
        ("=begin", "=end"),
    ];
    for (open, close) in pairs {
        if let Some(rest) = comment.strip_prefix(open) {
            let rest = rest.strip_suffix(close).unwrap_or(rest);
            // `/**`, `/*!`: doc-comment markers directly after the opener.
            let rest = if *open == "/*" {
                rest.trim_start_matches(['*', '!'])
            } else {
                rest
            };
            return Some(rest);
        }
    }
    // Lua long comments: `--[[ ... ]]`, `--[==[ ... ]==]`.
    if let Some(rest) = comment.strip_prefix("--[") {
        let after_equals = rest.trim_start_matches('=');
        let equals = rest.len() - after_equals.len();
        if let Some(inner) = after_equals.strip_prefix('[') {
            let close = format!("]{}]", "=".repeat(equals));
            return Some(inner.strip_suffix(close.as_str()).unwrap_or(inner));
        }
    }
    None
}

/// One line inside a block comment: drops the leading ` * ` decoration.
fn strip_block_line(line: &str) -> &str {
    let trimmed = line.trim_start();
    match trimmed.strip_prefix('*') {
        Some(rest) if !rest.starts_with('/') => rest.strip_prefix(' ').unwrap_or(rest),
        _ => trimmed,
    }
}

/// One line of a line-comment run: drops the marker and one following space.
fn strip_line_comment(line: &str) -> &str {
    let trimmed = line.trim_start();
    let rest = if let Some(rest) = trimmed.strip_prefix("//") {
        rest.strip_prefix(['/', '!']).unwrap_or(rest)
    } else if trimmed.starts_with('#') {
        trimmed.trim_start_matches('#')
    } else if let Some(rest) = trimmed.strip_prefix("--") {
        rest.trim_start_matches('-')
    } else if trimmed.starts_with(';') {
        trimmed.trim_start_matches(';')
    } else {
        trimmed
    };
    rest.strip_prefix(' ').unwrap_or(rest)
}
