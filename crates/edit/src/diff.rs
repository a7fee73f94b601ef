//! Minimal edits between two texts.
//!
//! Edits are what the editor applies to the user's buffer, so they should touch as little as
//! possible: cursors, marks and undo history outside the changed characters stay where they are.
//! We trim the common prefix and suffix, diff the middle by lines, and trim each replaced hunk
//! again by characters.

use similar::DiffOp;
use text::boundary::slice_within;

/// A replacement of `old[range]` by `text`, with offsets into the old text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub range: std::ops::Range<usize>,
    pub text: String,
}

/// The edits that turn `old` into `new`, sorted, non-overlapping, offsets into `old`.
pub fn minimal_edits(old: &str, new: &str) -> Vec<Replacement> {
    if old == new {
        return Vec::new();
    }
    let prefix = common_prefix(old, new);
    let suffix = common_suffix(&old[prefix..], &new[prefix..]);
    let old_mid = &old[prefix..old.len() - suffix];
    let new_mid = &new[prefix..new.len() - suffix];
    if old_mid.is_empty() || new_mid.is_empty() || !old_mid.contains('\n') {
        return vec![Replacement {
            range: prefix..prefix + old_mid.len(),
            text: new_mid.to_string(),
        }];
    }
    // Lines are split here, on `\n` only, and diffed as slices: `similar`'s own line splitting
    // also breaks at a lone `\r`, which would not match these line tables.
    let old_lines: Vec<&str> = old_mid.split_inclusive('\n').collect();
    let new_lines: Vec<&str> = new_mid.split_inclusive('\n').collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(50);
    let ops = similar::capture_diff_slices_deadline(
        similar::Algorithm::Myers,
        &old_lines,
        &new_lines,
        Some(deadline),
    );
    let old_starts = line_starts(&old_lines);
    let new_starts = line_starts(&new_lines);
    let mut edits: Vec<Replacement> = Vec::new();
    // Walk the ops keeping our own cursors: the index `similar` reports for an insertion is not
    // always the old line it goes before.
    let (mut old_line, mut new_line) = (0, 0);
    for op in &ops {
        let old_range = old_line..old_line + op.old_range().len();
        let new_range = new_line..new_line + op.new_range().len();
        old_line = old_range.end;
        new_line = new_range.end;
        if matches!(op, DiffOp::Equal { .. }) {
            continue;
        }
        let old_bytes = old_starts[old_range.start]..old_starts[old_range.end];
        let new_bytes = new_starts[new_range.start]..new_starts[new_range.end];
        let old_text = &old_mid[old_bytes.clone()];
        let new_text = &new_mid[new_bytes];
        let p = common_prefix(old_text, new_text);
        let s = common_suffix(&old_text[p..], &new_text[p..]);
        let range = prefix + old_bytes.start + p..prefix + old_bytes.end - s;
        let text = new_text[p..new_text.len() - s].to_string();
        // Merge with the previous edit when they touch, to keep the list short.
        match edits.last_mut() {
            Some(last) if last.range.end == range.start => {
                last.range.end = range.end;
                last.text.push_str(&text);
            }
            _ => edits.push(Replacement { range, text }),
        }
    }
    edits
}

/// Applies sorted, non-overlapping replacements to `old`. Offsets are cut through
/// `text::boundary`, so replacements that overlap, run past the end or point inside a
/// character give a wrong text rather than a panic.
pub fn apply(old: &str, edits: &[Replacement]) -> String {
    let mut out = String::with_capacity(old.len());
    let mut at = 0;
    for edit in edits {
        out.push_str(slice_within(old, at..edit.range.start));
        out.push_str(&edit.text);
        at = at.max(edit.range.end);
    }
    out.push_str(slice_within(old, at..old.len()));
    out
}

fn line_starts(lines: &[&str]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(lines.len() + 1);
    let mut at = 0;
    starts.push(0);
    for line in lines {
        at += line.len();
        starts.push(at);
    }
    starts
}

/// Length in bytes of the longest common prefix, at a char boundary of both texts and never
/// between the `\r` and `\n` of `a`'s line break: an LSP position cannot point there, so an
/// edit starting there would be applied elsewhere.
pub(crate) fn common_prefix(a: &str, b: &str) -> usize {
    let mut len = 0;
    for (x, y) in a.chars().zip(b.chars()) {
        if x != y {
            break;
        }
        len += x.len_utf8();
    }
    if a[..len].ends_with('\r') && a[len..].starts_with('\n') {
        len -= 1;
    }
    len
}

/// Length in bytes of the longest common suffix, at a char boundary of both texts and never
/// between the `\r` and `\n` of `a`'s line break (see [`common_prefix`]).
pub(crate) fn common_suffix(a: &str, b: &str) -> usize {
    let mut len = 0;
    for (x, y) in a.chars().rev().zip(b.chars().rev()) {
        if x != y {
            break;
        }
        len += x.len_utf8();
    }
    let split = a.len() - len;
    if a[split..].starts_with('\n') && a[..split].ends_with('\r') {
        len -= 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edits_are_small() {
        let old = "fn a() {\n    1\n}\n\nfn b() {}\n";
        let new = "fn a() {\n    2\n}\n\nfn b() { 3 }\n";
        let edits = minimal_edits(old, new);
        assert_eq!(
            edits,
            vec![
                Replacement {
                    range: 13..14,
                    text: "2".into()
                },
                Replacement {
                    range: 26..26,
                    text: " 3 ".into()
                },
            ]
        );
        assert_eq!(apply(old, &edits), new);
    }

    #[test]
    fn identical_texts_need_no_edit() {
        assert!(minimal_edits("same", "same").is_empty());
    }

    /// Replacements at every pair of byte offsets of a multi-byte text, including inside
    /// characters and past the end: applying never panics, and on boundaries it is exact.
    #[test]
    fn applying_at_every_offset_of_multi_byte_text() {
        let old = "// Ñandú\r\n🎉 e\u{301}\u{200D}中";
        for start in 0..=old.len() + 1 {
            for end in start..=old.len() + 1 {
                let edit = Replacement {
                    range: start..end,
                    text: "x".into(),
                };
                let applied = apply(old, std::slice::from_ref(&edit));
                if end <= old.len() && old.is_char_boundary(start) && old.is_char_boundary(end) {
                    assert_eq!(applied, format!("{}x{}", &old[..start], &old[end..]));
                }
            }
        }
    }

    #[test]
    fn edits_never_split_a_crlf_line_break() {
        let edits = minimal_edits("x\r\ny\r\n", "x\ny\r\n");
        assert_eq!(
            edits,
            vec![Replacement {
                range: 1..3,
                text: "\n".into()
            }]
        );
        let edits = minimal_edits("a\r\n", "ab\n");
        assert_eq!(
            edits,
            vec![Replacement {
                range: 1..3,
                text: "b\n".into()
            }]
        );
    }

    proptest! {
        #[test]
        fn applying_the_edits_gives_the_new_text(
            old in "(a|b|\r|\n|\r\n|😀|é|中|e\u{301}|\u{200D}){0,40}",
            new in "(a|b|\r|\n|\r\n|😀|é|中|e\u{301}|\u{200D}){0,40}",
        ) {
            let edits = minimal_edits(&old, &new);
            prop_assert_eq!(apply(&old, &edits), new);
            for pair in edits.windows(2) {
                prop_assert!(pair[0].range.end < pair[1].range.start);
            }
            for edit in &edits {
                for at in [edit.range.start, edit.range.end] {
                    let splits_crlf = old[..at].ends_with('\r') && old[at..].starts_with('\n');
                    prop_assert!(!splits_crlf, "{edit:?} splits a CRLF in {old:?}");
                }
            }
        }
    }
}
