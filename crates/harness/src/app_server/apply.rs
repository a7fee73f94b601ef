//! Applying the `update` diffs codex reports for a file change.
//!
//! A remote app-server edits files on its own machine; baton only learns the change from the
//! `fileChange` item, whose `update` diff is unified hunks without file headers, numbered against
//! the file before the change. [`apply_unified`] replays them strictly: every context and removed
//! line must match the base exactly (line ending included), every hunk must sit where its header
//! says, and the header counts must match the body. Anything else is an error, never a fuzzy
//! guess, because a wrong guess would land edits the agent never made.

/// Why a diff did not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("malformed diff at line {line}: {reason}")]
    Malformed { line: usize, reason: String },
    #[error("hunk {hunk} does not match the file at line {line}: {reason}")]
    Mismatch {
        hunk: usize,
        line: usize,
        reason: String,
    },
}

/// Strips the `"\n\nMoved to: <path>"` suffix codex appends to a moved file's diff.
pub fn strip_moved_to<'a>(diff: &'a str, move_path: &str) -> &'a str {
    diff.strip_suffix(&format!("\n\nMoved to: {move_path}"))
        .unwrap_or(diff)
}

/// One line of a hunk body.
struct DiffLine<'a> {
    tag: u8,
    text: &'a str,
    /// False when a `\ No newline at end of file` marker follows.
    newline: bool,
}

struct Hunk<'a> {
    old_start: usize,
    old_len: usize,
    new_len: usize,
    lines: Vec<DiffLine<'a>>,
    /// Line number of the header in the diff, for messages.
    at: usize,
}

/// Applies `hunks` (unified hunks without file headers) to `base`.
pub fn apply_unified(base: &str, hunks: &str) -> Result<String, ApplyError> {
    let hunks = parse(hunks)?;
    let base_lines: Vec<&str> = base.split_inclusive('\n').collect();
    let mut out = String::with_capacity(base.len());
    // Index into base_lines of the next line not yet copied.
    let mut cursor = 0usize;
    for (n, hunk) in hunks.iter().enumerate() {
        let hunk_no = n + 1;
        // A hunk that removes nothing (`-k,0`) inserts after line k; otherwise it starts at k.
        let start = if hunk.old_len == 0 {
            hunk.old_start
        } else {
            hunk.old_start.checked_sub(1).ok_or(ApplyError::Malformed {
                line: hunk.at,
                reason: "old start 0 with a non-empty old range".into(),
            })?
        };
        if start < cursor {
            return Err(ApplyError::Malformed {
                line: hunk.at,
                reason: "hunks overlap or are out of order".into(),
            });
        }
        if start > base_lines.len() {
            return Err(ApplyError::Mismatch {
                hunk: hunk_no,
                line: hunk.old_start,
                reason: format!("the file has only {} lines", base_lines.len()),
            });
        }
        out.extend(base_lines[cursor..start].iter().copied());
        cursor = start;
        for line in &hunk.lines {
            match line.tag {
                b' ' | b'-' => {
                    let Some(have) = base_lines.get(cursor) else {
                        return Err(ApplyError::Mismatch {
                            hunk: hunk_no,
                            line: cursor + 1,
                            reason: "the file ends before the hunk does".into(),
                        });
                    };
                    let (have_text, have_newline) = match have.strip_suffix('\n') {
                        Some(t) => (t, true),
                        None => (*have, false),
                    };
                    if have_text != line.text || have_newline != line.newline {
                        return Err(ApplyError::Mismatch {
                            hunk: hunk_no,
                            line: cursor + 1,
                            reason: format!("expected {:?}, found {:?}", line.text, have_text),
                        });
                    }
                    if line.tag == b' ' {
                        out.push_str(have);
                    }
                    cursor += 1;
                }
                _ => {
                    out.push_str(line.text);
                    if line.newline {
                        out.push('\n');
                    }
                }
            }
        }
    }
    out.extend(base_lines[cursor..].iter().copied());
    Ok(out)
}

fn parse(diff: &str) -> Result<Vec<Hunk<'_>>, ApplyError> {
    let mut hunks: Vec<Hunk<'_>> = Vec::new();
    // Split on '\n' only: a '\r' belongs to the line's text (CRLF files stay CRLF).
    let lines = diff
        .split_inclusive('\n')
        .map(|l| l.strip_suffix('\n').unwrap_or(l));
    for (i, raw) in lines.enumerate() {
        let at = i + 1;
        if let Some(header) = raw.strip_prefix("@@ ") {
            let (old_start, old_len, new_len) =
                parse_header(header).ok_or_else(|| ApplyError::Malformed {
                    line: at,
                    reason: format!("bad hunk header {raw:?}"),
                })?;
            if let Some(prev) = hunks.last() {
                check_counts(prev)?;
            }
            hunks.push(Hunk {
                old_start,
                old_len,
                new_len,
                lines: Vec::new(),
                at,
            });
            continue;
        }
        let Some(hunk) = hunks.last_mut() else {
            return Err(ApplyError::Malformed {
                line: at,
                reason: "text before the first hunk header".into(),
            });
        };
        if raw.starts_with('\\') {
            // `\ No newline at end of file` applies to the line before it.
            match hunk.lines.last_mut() {
                Some(prev) => prev.newline = false,
                None => {
                    return Err(ApplyError::Malformed {
                        line: at,
                        reason: "no-newline marker without a line".into(),
                    });
                }
            }
            continue;
        }
        let tag = raw.as_bytes().first().copied();
        match tag {
            Some(t @ (b' ' | b'-' | b'+')) => hunk.lines.push(DiffLine {
                tag: t,
                text: &raw[1..],
                newline: true,
            }),
            _ => {
                return Err(ApplyError::Malformed {
                    line: at,
                    reason: format!("unexpected line {raw:?}"),
                });
            }
        }
    }
    match hunks.last() {
        Some(last) => check_counts(last)?,
        None => {
            return Err(ApplyError::Malformed {
                line: 1,
                reason: "no hunks".into(),
            });
        }
    }
    Ok(hunks)
}

fn check_counts(hunk: &Hunk<'_>) -> Result<(), ApplyError> {
    let old = hunk.lines.iter().filter(|l| l.tag != b'+').count();
    let new = hunk.lines.iter().filter(|l| l.tag != b'-').count();
    if old != hunk.old_len || new != hunk.new_len {
        return Err(ApplyError::Malformed {
            line: hunk.at,
            reason: format!(
                "header says -{} +{} lines, body has -{old} +{new}",
                hunk.old_len, hunk.new_len
            ),
        });
    }
    Ok(())
}

/// `-a[,b] +c[,d] @@…` → (a, b, d); a missing count means 1.
fn parse_header(header: &str) -> Option<(usize, usize, usize)> {
    let mut parts = header.split(' ');
    let old = parts.next()?.strip_prefix('-')?;
    let new = parts.next()?.strip_prefix('+')?;
    if parts.next() != Some("@@") {
        return None;
    }
    let range = |r: &str| -> Option<(usize, usize)> {
        match r.split_once(',') {
            Some((s, n)) => Some((s.parse().ok()?, n.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (old_start, old_len) = range(old)?;
    let (_, new_len) = range(new)?;
    Some((old_start, old_len, new_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line{i}\n")).collect()
    }

    #[test]
    fn one_line_file() {
        // edit-untrusted-accept.jsonl
        assert_eq!(
            apply_unified("hello\n", "@@ -1 +1 @@\n-hello\n+hello, baton\n").unwrap(),
            "hello, baton\n"
        );
    }

    #[test]
    fn two_hunks() {
        // twohunks.jsonl: a 20-line file, edits at lines 3 and 17.
        let diff = "@@ -2,3 +2,3 @@\n line2\n-line3\n+line3 changed\n line4\n@@ -16,3 +16,3 @@\n line16\n-line17\n+line17 changed\n line18\n";
        let want = numbered(20)
            .replace("line3\n", "line3 changed\n")
            .replace("line17\n", "line17 changed\n");
        assert_eq!(apply_unified(&numbered(20), diff).unwrap(), want);
    }

    #[test]
    fn move_diff_with_its_suffix_stripped() {
        // movedelete.jsonl
        let diff =
            "@@ -1,3 +1,3 @@\n line1\n-line2\n+line2 changed\n line3\n\n\nMoved to: /r/moved.txt";
        let hunks = strip_moved_to(diff, "/r/moved.txt");
        assert!(!hunks.contains("Moved to"));
        assert_eq!(
            apply_unified("line1\nline2\nline3\n", hunks).unwrap(),
            "line1\nline2 changed\nline3\n"
        );
        // The suffix left in is not silently accepted as part of the diff.
        assert!(apply_unified("line1\nline2\nline3\n", diff).is_err());
    }

    #[test]
    fn no_trailing_newline() {
        let diff = "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n";
        assert_eq!(apply_unified("a\nb", diff).unwrap(), "a\nc");
        // Adding the missing newline is a change of the last line too.
        let diff = "@@ -1 +1 @@\n-b\n\\ No newline at end of file\n+b\n";
        assert_eq!(apply_unified("b", diff).unwrap(), "b\n");
        // The marker must match the base: "b\n" is not "b" without a newline.
        assert!(matches!(
            apply_unified("b\n", diff),
            Err(ApplyError::Mismatch { .. })
        ));
    }

    #[test]
    fn insertion_and_pure_additions() {
        assert_eq!(
            apply_unified("a\nb\n", "@@ -1,0 +2 @@\n+x\n").unwrap(),
            "a\nx\nb\n"
        );
        assert_eq!(apply_unified("", "@@ -0,0 +1 @@\n+x\n").unwrap(), "x\n");
    }

    #[test]
    fn mismatch_is_an_error_not_a_guess() {
        // The context moved by one line: a fuzzy patcher would find it, this one must not.
        let diff = "@@ -2,3 +2,3 @@\n line2\n-line3\n+line3 changed\n line4\n";
        let shifted = format!("line0\n{}", numbered(5));
        assert!(matches!(
            apply_unified(&shifted, diff),
            Err(ApplyError::Mismatch {
                hunk: 1,
                line: 2,
                ..
            })
        ));
        assert!(matches!(
            apply_unified("line1\n", diff),
            Err(ApplyError::Mismatch { .. })
        ));
    }

    #[test]
    fn malformed_diffs() {
        for diff in [
            "",
            "line\n",
            "@@ -1 +1 @@\n-a\n",
            "@@ -1 +1\n-a\n+b\n",
            "@@ -1 +1 @@\n-a\n*b\n",
            "@@ -3 +3 @@\n-c\n+d\n@@ -1 +1 @@\n-a\n+b\n",
        ] {
            assert!(
                matches!(
                    apply_unified("a\nb\nc\n", diff),
                    Err(ApplyError::Malformed { .. })
                ),
                "{diff:?}"
            );
        }
    }
}
