//! Three-way merge of a proposed text with what the user typed meanwhile.
//!
//! An agent rewrites a file (or a region) starting from the text it was given, the *base*.
//! While it works, the user keeps typing, so the buffer now holds *ours*; the agent's result is
//! *theirs*. [`merge3`] combines the two by lines, the way `diff3` does: base lines that both
//! sides kept are stable; between stable lines lies a chunk that one side, both sides, or
//! neither side changed. A chunk only one side changed takes that side's text; a chunk both sides
//! changed the same way takes it once; a chunk both sides changed differently is a conflict, and
//! the user's text is kept, because baton never overwrites what the user typed.
//!
//! Merging is by lines, so changes on adjacent lines (no kept base line between them) form one
//! chunk and conflict, as in `diff3`. The edit engine merges only texts that are close (a
//! proposal with the user's changes since the agent's base, or the user's latest change with
//! what is left to land), which keeps the line alignment stable.

use std::ops::Range;

use similar::{Algorithm, DiffOp};

/// The result of merging `theirs` into `ours` relative to `base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The text the region should hold.
    pub text: String,
    /// Chunks where both sides changed the same base lines differently; `text` keeps ours there.
    pub conflicts: Vec<MergeConflict>,
}

/// A chunk both sides changed differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeConflict {
    /// Bytes of [`Merged::text`] that hold the user's version of the chunk.
    pub kept: Range<usize>,
    /// What the proposed text had there instead.
    pub theirs: String,
}

/// Merges the changes from `base` to `theirs` into `ours`, by lines.
pub fn merge3(base: &str, ours: &str, theirs: &str) -> Merged {
    let base_lines: Vec<&str> = base.split_inclusive('\n').collect();
    let our_lines: Vec<&str> = ours.split_inclusive('\n').collect();
    let their_lines: Vec<&str> = theirs.split_inclusive('\n').collect();
    let in_ours = line_matches(&base_lines, &our_lines);
    let in_theirs = line_matches(&base_lines, &their_lines);
    let mut merged = Merged {
        text: String::with_capacity(ours.len().max(theirs.len())),
        conflicts: Vec::new(),
    };
    let (mut base_at, mut ours_at, mut theirs_at) = (0, 0, 0);
    loop {
        // The next base line both sides kept, at or after where each side is.
        let stable =
            (base_at..base_lines.len()).find_map(|line| match (in_ours[line], in_theirs[line]) {
                (Some(our_line), Some(their_line))
                    if our_line >= ours_at && their_line >= theirs_at =>
                {
                    Some((line, our_line, their_line))
                }
                _ => None,
            });
        let (base_end, ours_end, theirs_end) =
            stable.unwrap_or((base_lines.len(), our_lines.len(), their_lines.len()));
        merged.resolve_chunk(
            &base_lines[base_at..base_end].concat(),
            &our_lines[ours_at..ours_end].concat(),
            &their_lines[theirs_at..theirs_end].concat(),
        );
        let Some((line, our_line, their_line)) = stable else {
            return merged;
        };
        merged.text.push_str(base_lines[line]);
        (base_at, ours_at, theirs_at) = (line + 1, our_line + 1, their_line + 1);
    }
}

impl Merged {
    fn resolve_chunk(&mut self, base: &str, ours: &str, theirs: &str) {
        if ours == theirs || theirs == base {
            self.text.push_str(ours);
        } else if ours == base {
            self.text.push_str(theirs);
        } else {
            let start = self.text.len();
            self.text.push_str(ours);
            self.conflicts.push(MergeConflict {
                kept: start..self.text.len(),
                theirs: theirs.to_string(),
            });
        }
    }
}

/// For each line of `base`, the line of `other` it was kept as, if any.
fn line_matches(base: &[&str], other: &[&str]) -> Vec<Option<usize>> {
    // A deadline keeps a pathological pair of huge files from stalling the engine; past it the
    // diff is coarser (more conflicts, never a wrong merge).
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
    let ops = similar::capture_diff_slices_deadline(Algorithm::Myers, base, other, Some(deadline));
    let mut matches = vec![None; base.len()];
    for op in ops {
        if let DiffOp::Equal {
            old_index,
            new_index,
            len,
        } = op
        {
            for offset in 0..len {
                matches[old_index + offset] = Some(new_index + offset);
            }
        }
    }
    matches
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    fn check(base: &str, ours: &str, theirs: &str, expected: Expect) {
        let merged = merge3(base, ours, theirs);
        let mut rendered = format!("text:\n{}", merged.text);
        for conflict in &merged.conflicts {
            rendered.push_str(&format!(
                "--- conflict, kept {:?}, theirs {:?}\n",
                &merged.text[conflict.kept.clone()],
                conflict.theirs
            ));
        }
        // Carriage returns are drawn, so that CRLF texts stay visible in the snapshot.
        expected.assert_eq(&rendered.replace('\r', "␍"));
    }

    #[test]
    fn changes_on_different_lines_both_survive() {
        check(
            "a\nb\nc\nd\ne\n",
            "a\nB typed\nc\nd\ne\n",
            "a\nb\nc\nD agent\ne\n",
            expect![[r#"
                text:
                a
                B typed
                c
                D agent
                e
            "#]],
        );
    }

    #[test]
    fn overlapping_changes_keep_the_user_text_and_report_a_conflict() {
        check(
            "a\nb\nc\n",
            "a\nmine\nc\n",
            "a\nagent\nc\n",
            expect![[r#"
                text:
                a
                mine
                c
                --- conflict, kept "mine\n", theirs "agent\n"
            "#]],
        );
    }

    #[test]
    fn agreed_changes_are_taken_once() {
        check(
            "a\nb\nc\n",
            "a\nsame\nc\n",
            "a\nsame\nc\nnew\n",
            expect![[r#"
                text:
                a
                same
                c
                new
            "#]],
        );
    }

    #[test]
    fn a_last_line_without_newline_and_crlf() {
        check(
            "x\r\ny",
            "x\r\ny",
            "x\r\ny\r\nz",
            expect![[r#"
                text:
                x␍
                y␍
                z"#]],
        );
        check(
            "é\nmid\n😀\n",
            "é typed\nmid\n😀\n",
            "é\nmid\n😀 agent\n",
            expect![[r#"
                text:
                é typed
                mid
                😀 agent
            "#]],
        );
    }

    #[test]
    fn changes_on_adjacent_lines_conflict_as_in_diff3() {
        // No base line both sides kept separates them, so they form one chunk.
        check(
            "a\nb\n",
            "A\nb\n",
            "a\nB\n",
            expect![[r#"
                text:
                A
                b
                --- conflict, kept "A\nb\n", theirs "a\nB\n"
            "#]],
        );
    }
}
