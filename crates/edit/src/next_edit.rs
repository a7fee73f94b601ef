//! Next-edit suggestions, in byte offsets: the prompt that shows the model what the user just
//! changed, the parsing of its reply, the mapping of the proposed edits onto the document, and
//! how proposals follow later changes.
//!
//! The reply format is a small JSON object,
//! `{"edits": [{"file": "src/other.rs", "line": N, "old": "…", "new": "…"}]}` (no `file`: the
//! changed file), because models reproduce a fixed JSON shape reliably and a text is found again
//! by searching for `old` near line `N`, which survives a model that miscounts lines by one or
//! two. Other files are targetable only when the prompt offered them ([`split_by_file`]). Every
//! malformed part of a reply is dropped on its own: a broken reply gives fewer proposals (or
//! none), never an error.

use std::ops::Range;

use ropey::Rope;
use serde::Deserialize;
use text::AppliedChange;

/// How far from the line the model named its `old` text is looked for.
const LINE_SLACK: usize = 2;

/// The most changed lines shown on each side of the user's change.
const MAX_CHANGE_LINES: usize = 40;

/// The most proposals kept from one reply: more is a model rewriting the file, not following up.
pub const MAX_PROPOSALS: usize = 20;

/// One proposed follow-up edit: replace `range` (which holds `old`) with `new`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub range: Range<usize>,
    pub old: String,
    pub new: String,
    /// The line that holds the proposal, without its line break: a change reaching it drops a
    /// proposal that follows changes by line ([`Reach::Line`]).
    pub line: Range<usize>,
}

/// What a round sends: the system and user prompt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NextEditPrompt {
    pub system: String,
    pub user: String,
}

/// What the user changed since the last round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The first changed line (0-based) in the new text.
    pub first_line: usize,
    /// The changed lines as a small unified diff.
    pub diff: String,
}

/// The lines the user changed between two texts; `None` when nothing changed.
pub fn describe_change(before: &str, after: &str) -> Option<Change> {
    if before == after {
        return None;
    }
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let removed = &old[prefix..old.len() - suffix];
    let added = &new[prefix..new.len() - suffix];
    let mut out = format!("@@ line {} @@\n", prefix + 1);
    for line in removed.iter().take(MAX_CHANGE_LINES) {
        out.push_str(&format!("-{line}\n"));
    }
    for line in added.iter().take(MAX_CHANGE_LINES) {
        out.push_str(&format!("+{line}\n"));
    }
    Some(Change {
        first_line: prefix,
        diff: out,
    })
}

const SYSTEM: &str = "You predict the follow-up edits a code change makes necessary. \
The user just changed a file (the diff shows it). Find the other places that must change to \
match, in that file and in the other files shown: uses of a renamed parameter, variable, field \
or function, call sites of a changed signature, constructors of a struct that gained a field. \
Do not repeat or undo the user's change, and do not propose unrelated improvements.\n\
Reply with JSON only, no prose and no code fence, in exactly this shape:\n\
{\"edits\": [{\"line\": 12, \"old\": \"text on that line\", \"new\": \"its replacement\"}, \
{\"file\": \"src/other.rs\", \"line\": 3, \"old\": \"text\", \"new\": \"replacement\"}]}\n\
Leave `file` out for the changed file; for another file, copy the path shown in its `File:` \
header. `line` is the line number shown in front of the line. `old` is copied exactly from \
that line (no line number), as short as possible while still unique on the line, never \
spanning lines. `new` replaces `old`. Only the files shown can be edited. If nothing else \
needs to change, reply {\"edits\": []}.";

/// The names the change removed: identifiers on its `-` lines that none of its `+` lines has
/// (a renamed parameter, function or field), in order, at most `most`. Other files that use
/// them are where a follow-up may be needed.
pub fn removed_names(change: &Change, most: usize) -> Vec<String> {
    let words = |sign: char| -> Vec<&str> {
        change
            .diff
            .lines()
            .filter(|line| line.starts_with(sign))
            .flat_map(|line| line[1..].split(|c: char| !(c.is_alphanumeric() || c == '_')))
            .filter(|word| !word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit()))
            .collect()
    };
    let added = words('+');
    let mut names: Vec<String> = Vec::new();
    for word in words('-') {
        if !added.contains(&word) && !names.iter().any(|name| name == word) {
            names.push(word.to_string());
        }
    }
    names.truncate(most);
    names
}

/// A line in another file that uses a name the change touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Use {
    pub path_label: String,
    /// 0-based.
    pub line: usize,
    pub text: String,
}

/// The prompt for one round: the change, the file with line numbers (the lines within
/// `max_bytes` around the change when the file is larger), and the uses in other files, for
/// context.
pub fn build_prompt(
    path_label: &str,
    language: &str,
    change: &str,
    document: &Rope,
    changed_line: usize,
    max_bytes: usize,
    uses: &[Use],
) -> NextEditPrompt {
    // Ropey counts an empty line after a final line break; it is not worth a number.
    let lines = match document.len_lines() {
        lines if lines > 1 && document.line(lines - 1).len_bytes() == 0 => lines - 1,
        lines => lines,
    };
    // Grow a window around the changed line until the budget is spent: the places to follow
    // up on are usually close to the change.
    let center = changed_line.min(lines.saturating_sub(1));
    let (mut first, mut last) = (center, center);
    let mut used = document.line(center).len_bytes();
    loop {
        let mut grew = false;
        if first > 0 && used + document.line(first - 1).len_bytes() <= max_bytes {
            first -= 1;
            used += document.line(first).len_bytes();
            grew = true;
        }
        if last + 1 < lines && used + document.line(last + 1).len_bytes() <= max_bytes {
            last += 1;
            used += document.line(last).len_bytes();
            grew = true;
        }
        if !grew {
            break;
        }
    }
    let mut listing = String::with_capacity(used + (last - first + 1) * 8);
    for line in first..=last {
        let text = document.line(line).to_string();
        let text = text.trim_end_matches(['\n', '\r']);
        listing.push_str(&format!("{:>5}| {text}\n", line + 1));
    }
    let mut user = format!(
        "File: {path_label} ({language})\n\nThe user's change:\n```diff\n{change}```\n\n\
         The file now, with line numbers:\n```\n{listing}```\n"
    );
    if !uses.is_empty() {
        user.push_str(
            "\nOther files use what changed; edit them by giving `file` as shown in their header:\n",
        );
        let mut current: Option<&str> = None;
        for found in uses {
            if current != Some(found.path_label.as_str()) {
                if current.is_some() {
                    user.push_str("```\n");
                }
                user.push_str(&format!("File: {}\n```\n", found.path_label));
                current = Some(&found.path_label);
            }
            let text = found.text.trim_end_matches(['\n', '\r']);
            user.push_str(&format!("{:>5}| {text}\n", found.line + 1));
        }
        user.push_str("```\n");
    }
    NextEditPrompt {
        system: SYSTEM.to_string(),
        user,
    }
}

/// One edit as the model wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyEdit {
    /// The file it is for, as the model named it; `None` for the changed file.
    pub file: Option<String>,
    /// 1-based, as in the listing.
    pub line: usize,
    pub old: String,
    pub new: String,
}

#[derive(Deserialize)]
struct RawReply {
    edits: Vec<serde_json::Value>,
}

/// Reads the model's reply: the JSON object anywhere in it (a code fence or a sentence around
/// it is ignored), each well-formed edit kept, each malformed one dropped.
pub fn parse_reply(reply: &str) -> Vec<ReplyEdit> {
    let (Some(start), Some(end)) = (reply.find('{'), reply.rfind('}')) else {
        return Vec::new();
    };
    if end < start {
        return Vec::new();
    }
    let Ok(raw) = serde_json::from_str::<RawReply>(&reply[start..=end]) else {
        return Vec::new();
    };
    raw.edits
        .iter()
        .filter_map(|edit| {
            let line = edit.get("line")?;
            // Models write numbers as strings now and then.
            let line = line
                .as_u64()
                .or_else(|| line.as_str().and_then(|text| text.trim().parse().ok()))?;
            let old = edit.get("old")?.as_str()?.to_string();
            let new = edit.get("new")?.as_str()?.to_string();
            // A missing or null file is the changed file; anything but a string is malformed.
            let file = match edit.get("file") {
                None | Some(serde_json::Value::Null) => None,
                Some(file) => Some(file.as_str()?.trim().to_string()).filter(|f| !f.is_empty()),
            };
            (line > 0 && !old.is_empty() && old != new && !old.contains('\n')).then_some(
                ReplyEdit {
                    file,
                    line: line as usize,
                    old,
                    new,
                },
            )
        })
        .take(MAX_PROPOSALS)
        .collect()
}

/// Sorts reply edits by file: those for the changed file (no `file`, or its own label), and
/// those for each of the `offered` files (by index), in reply order. An edit naming any other
/// file is dropped: the model may only edit what it was shown, so a path outside the workspace
/// or a file that must never be sent can never be targeted. A leading `./` is forgiven.
pub fn split_by_file(
    edits: Vec<ReplyEdit>,
    own_label: &str,
    offered: &[&str],
) -> (Vec<ReplyEdit>, Vec<(usize, Vec<ReplyEdit>)>) {
    let mut own = Vec::new();
    let mut others: Vec<(usize, Vec<ReplyEdit>)> = Vec::new();
    for edit in edits {
        let Some(file) = edit.file.as_deref() else {
            own.push(edit);
            continue;
        };
        let file = file.strip_prefix("./").unwrap_or(file);
        if file == own_label {
            own.push(edit);
        } else if let Some(index) = offered.iter().position(|label| *label == file) {
            match others.iter_mut().find(|(at, _)| *at == index) {
                Some((_, list)) => list.push(edit),
                None => others.push((index, vec![edit])),
            }
        }
    }
    (own, others)
}

/// Places each reply edit in the document: `old` is looked for on its line, then on the lines
/// nearest to it. An edit whose text is nowhere near, or that overlaps an earlier one, is
/// dropped. Each proposal is narrowed to the part that actually changes (so typing next to a
/// proposal does not count as typing in it).
pub fn map_to_document(edits: &[ReplyEdit], document: &Rope) -> Vec<Proposal> {
    let lines = document.len_lines();
    let mut proposals: Vec<Proposal> = Vec::new();
    for edit in edits {
        let named = edit.line - 1;
        let mut candidates = vec![named];
        for distance in 1..=LINE_SLACK {
            candidates.push(named.wrapping_sub(distance));
            candidates.push(named + distance);
        }
        let found = candidates
            .into_iter()
            .filter(|&line| line < lines)
            .find_map(|line| {
                let text = document.line(line).to_string();
                let column = text.find(&edit.old)?;
                Some((line, document.line_to_byte(line) + column))
            });
        let Some((line, start)) = found else { continue };
        let mut proposal = narrow(start, &edit.old, &edit.new);
        let line_start = document.line_to_byte(line);
        let line_text = document.line(line).to_string();
        let content = line_text.trim_end_matches(['\n', '\r']).len();
        proposal.line = line_start..line_start + content;
        let overlaps = proposals.iter().any(|other| {
            proposal.range.start < other.range.end && other.range.start < proposal.range.end
        });
        if !overlaps {
            proposals.push(proposal);
        }
    }
    proposals.sort_by_key(|proposal| proposal.range.start);
    proposals
}

/// Trims what `old` and `new` share at both ends, on character boundaries, always leaving at
/// least one character of `old` to show a diagnostic over: `w` → `width` stays on the `w`.
fn narrow(start: usize, old: &str, new: &str) -> Proposal {
    let common =
        |a: &mut dyn Iterator<Item = char>, b: &mut dyn Iterator<Item = char>, most: usize| {
            let mut bytes = 0;
            for (x, y) in a.zip(b) {
                if x != y || bytes + x.len_utf8() > most {
                    break;
                }
                bytes += x.len_utf8();
            }
            bytes
        };
    let last_char = old.chars().next_back().map_or(0, char::len_utf8);
    let suffix = common(
        &mut old.chars().rev(),
        &mut new.chars().rev(),
        old.len() - last_char.min(old.len()),
    );
    let (old_rest, new_rest) = (&old[..old.len() - suffix], &new[..new.len() - suffix]);
    let keep = old_rest.chars().next_back().map_or(0, char::len_utf8);
    let prefix = common(
        &mut old_rest.chars(),
        &mut new_rest.chars(),
        old_rest.len() - keep.min(old_rest.len()),
    );
    Proposal {
        range: start + prefix..start + old_rest.len(),
        old: old_rest[prefix..].to_string(),
        new: new_rest[prefix..].to_string(),
        line: start..start + old.len(),
    }
}

/// What one applied change did to the proposals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Followed {
    /// The change touched no proposal: they moved with it.
    Elsewhere,
    /// The change was inside (or at the edge of) a proposal, which is gone: the user made that
    /// edit, took the suggestion, or typed something else there.
    AtProposal,
}

/// How far from a proposal a change must stay for the proposal to survive it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// A change touching the proposal's text drops it (the changed file's own proposals:
    /// several may share a line, and typing beside one is not editing it).
    Text,
    /// A change anywhere on the proposal's line drops it (proposals in other files: an edit
    /// over that line means the user is dealing with that place).
    Line,
}

/// Moves the proposals through one applied change; those it reaches are dropped.
pub fn follow(proposals: &mut Vec<Proposal>, change: &AppliedChange, reach: Reach) -> Followed {
    let before = proposals.len();
    proposals.retain_mut(|proposal| {
        let span = match reach {
            Reach::Text => proposal.range.clone(),
            Reach::Line => proposal.line.clone(),
        };
        // Touching counts: typing right after a proposed name is typing in it.
        if change.start_byte <= span.end && change.old_end_byte >= span.start {
            return false;
        }
        proposal.range =
            change.map_offset(proposal.range.start)..change.map_offset(proposal.range.end);
        proposal.line =
            change.map_offset(proposal.line.start)..change.map_offset(proposal.line.end);
        true
    });
    if proposals.len() < before {
        Followed::AtProposal
    } else {
        Followed::Elsewhere
    }
}

/// Carries proposals made against one text onto a later version of it, given the replacements
/// that turn the one into the other (offsets into the earlier text, sorted, as
/// [`crate::diff::minimal_edits`] gives them): a proposal whose line a replacement reaches is
/// dropped, as [`Reach::Line`] would have dropped it change by change; the others shift.
pub fn rebase(proposals: Vec<Proposal>, edits: &[crate::diff::Replacement]) -> Vec<Proposal> {
    proposals
        .into_iter()
        .filter_map(|mut proposal| {
            let mut delta: isize = 0;
            for edit in edits {
                if edit.range.start <= proposal.line.end && edit.range.end >= proposal.line.start {
                    return None;
                }
                if edit.range.end < proposal.line.start {
                    delta += edit.text.len() as isize - edit.range.len() as isize;
                }
            }
            let shift = |offset: usize| offset.checked_add_signed(delta);
            proposal.range = shift(proposal.range.start)?..shift(proposal.range.end)?;
            proposal.line = shift(proposal.line.start)?..shift(proposal.line.end)?;
            Some(proposal)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use text::{ContentChange, Document, PositionEncoding};

    const TEXT: &str = "fn area(width: u32, h: u32) -> u32 {\n    let w2 = w * 2;\n    w * h\n}\n";

    #[test]
    fn a_reply_is_found_inside_prose_and_fences() {
        let reply = "Sure:\n```json\n{\"edits\": [{\"line\": 2, \"old\": \"w *\", \"new\": \"width *\"}, {\"line\": \"3\", \"old\": \"w * h\", \"new\": \"width * h\"}]}\n```";
        assert_eq!(
            parse_reply(reply),
            vec![
                ReplyEdit {
                    file: None,
                    line: 2,
                    old: "w *".into(),
                    new: "width *".into()
                },
                ReplyEdit {
                    file: None,
                    line: 3,
                    old: "w * h".into(),
                    new: "width * h".into()
                },
            ]
        );
    }

    #[test]
    fn malformed_replies_and_edits_give_nothing() {
        for reply in [
            "",
            "no json here",
            "} backwards {",
            "{\"edits\": [",
            "{\"edits\": 3}",
            "{\"changes\": []}",
            "{\"edits\": [{\"line\": 0, \"old\": \"a\", \"new\": \"b\"}]}",
            "{\"edits\": [{\"line\": 1, \"old\": \"\", \"new\": \"b\"}]}",
            "{\"edits\": [{\"line\": 1, \"old\": \"a\", \"new\": \"a\"}]}",
            "{\"edits\": [{\"line\": 1, \"old\": \"a\\nb\", \"new\": \"c\"}]}",
            "{\"edits\": [{\"line\": -4, \"old\": \"a\", \"new\": \"b\"}, {\"old\": \"a\"}, 7]}",
            "{\"edits\": [{\"file\": 3, \"line\": 1, \"old\": \"a\", \"new\": \"b\"}]}",
            "{\"edits\": [{\"file\": [\"a.rs\"], \"line\": 1, \"old\": \"a\", \"new\": \"b\"}]}",
        ] {
            assert_eq!(parse_reply(reply), Vec::new(), "{reply:?}");
        }
        // One bad edit does not spoil the good one beside it.
        let mixed =
            "{\"edits\": [{\"line\": \"x\"}, {\"line\": 3, \"old\": \"w\", \"new\": \"width\"}]}";
        assert_eq!(parse_reply(mixed).len(), 1);
    }

    #[test]
    fn edits_map_to_the_changed_part_near_their_line() {
        let rope = Rope::from_str(TEXT);
        let edits = parse_reply(
            "{\"edits\": [\
             {\"line\": 2, \"old\": \"w * 2\", \"new\": \"width * 2\"},\
             {\"line\": 4, \"old\": \"w * h\", \"new\": \"width * h\"},\
             {\"line\": 3, \"old\": \"not in the file\", \"new\": \"x\"}]}",
        );
        let proposals = map_to_document(&edits, &rope);
        // The second edit named line 4 but its text is on line 3: found within the slack.
        let texts: Vec<(String, &str, &str)> = proposals
            .iter()
            .map(|p| {
                (
                    TEXT[p.range.clone()].to_string(),
                    p.old.as_str(),
                    p.new.as_str(),
                )
            })
            .collect();
        assert_eq!(
            texts,
            vec![
                ("w".to_string(), "w", "width"),
                ("w".to_string(), "w", "width"),
            ]
        );
        assert_eq!(proposals[0].range.start, TEXT.find("w * 2").unwrap());
        assert_eq!(proposals[1].range.start, TEXT.find("w * h").unwrap());
    }

    #[test]
    fn an_insertion_keeps_one_character_and_overlaps_are_dropped() {
        let rope = Rope::from_str(TEXT);
        let edits = vec![
            ReplyEdit {
                file: None,
                line: 3,
                old: "w * h".into(),
                new: "w * h * 1".into(),
            },
            ReplyEdit {
                file: None,
                line: 3,
                old: "h".into(),
                new: "height".into(),
            },
        ];
        let proposals = map_to_document(&edits, &rope);
        assert_eq!(proposals.len(), 1);
        // Narrowed to its last character, where the insertion goes.
        assert_eq!(&TEXT[proposals[0].range.clone()], "h");
        assert_eq!(proposals[0].new, "h * 1");
    }

    #[test]
    fn proposals_move_with_changes_elsewhere_and_go_when_touched() {
        let mut document = Document::new(TEXT, 1, "rust");
        let edits = parse_reply(
            "{\"edits\": [{\"line\": 2, \"old\": \"w * 2\", \"new\": \"width * 2\"}, {\"line\": 3, \"old\": \"w * h\", \"new\": \"width * h\"}]}",
        );
        let mut proposals = map_to_document(&edits, document.rope());
        // Typing on the first line, before both: they move.
        let applied = document
            .apply_changes(
                2,
                &[ContentChange {
                    range: Some(document.range(3..3, PositionEncoding::Utf8)),
                    text: "_".into(),
                }],
                PositionEncoding::Utf8,
            )
            .unwrap();
        assert_eq!(
            follow(&mut proposals, &applied[0], Reach::Text),
            Followed::Elsewhere
        );
        let text = document.text();
        assert!(proposals.iter().all(|p| &text[p.range.clone()] == "w"));
        // Typing right after the second proposal's `w`: it goes, the first stays.
        let at = proposals[1].range.end;
        let applied = document
            .apply_changes(
                3,
                &[ContentChange {
                    range: Some(document.range(at..at, PositionEncoding::Utf8)),
                    text: "i".into(),
                }],
                PositionEncoding::Utf8,
            )
            .unwrap();
        assert_eq!(
            follow(&mut proposals, &applied[0], Reach::Text),
            Followed::AtProposal
        );
        assert_eq!(proposals.len(), 1);
        assert_eq!(
            proposals[0].range.start,
            document.text().find("w * 2").unwrap()
        );
    }

    #[test]
    fn the_prompt_shows_the_change_and_numbered_lines_within_budget() {
        let before = TEXT.replace("width", "w");
        let change = describe_change(&before, TEXT).unwrap();
        assert_eq!(change.first_line, 0);
        assert_eq!(removed_names(&change, 3), vec!["w".to_string()]);
        let change = change.diff;
        assert_eq!(
            change,
            "@@ line 1 @@\n-fn area(w: u32, h: u32) -> u32 {\n+fn area(width: u32, h: u32) -> u32 {\n"
        );
        assert_eq!(describe_change(TEXT, TEXT), None);
        let rope = Rope::from_str(TEXT);
        let prompt = build_prompt(
            "src/area.rs",
            "rust",
            &change,
            &rope,
            0,
            10_000,
            &[Use {
                path_label: "src/main.rs".into(),
                line: 4,
                text: "    area(1, 2);".into(),
            }],
        );
        assert!(
            prompt
                .user
                .contains("File: src/main.rs\n```\n    5|     area(1, 2);\n```\n"),
            "{}",
            prompt.user
        );
        assert!(
            prompt.user.contains("    3|     w * h\n"),
            "{}",
            prompt.user
        );
        assert!(prompt.system.contains("\"edits\""));
        // A small budget keeps the lines nearest the change.
        let small = build_prompt("src/area.rs", "rust", &change, &rope, 2, 30, &[]);
        assert!(small.user.contains("    3|     w * h\n"), "{}", small.user);
        assert!(!small.user.contains("    1| fn area"), "{}", small.user);
    }
    #[test]
    fn edits_are_sorted_by_file_and_files_not_offered_are_dropped() {
        let reply = "{\"edits\": [\
            {\"line\": 2, \"old\": \"w\", \"new\": \"width\"},\
            {\"file\": null, \"line\": 3, \"old\": \"w\", \"new\": \"width\"},\
            {\"file\": \"src/area.rs\", \"line\": 4, \"old\": \"w\", \"new\": \"width\"},\
            {\"file\": \"./src/b.rs\", \"line\": 1, \"old\": \"w\", \"new\": \"width\"},\
            {\"file\": \"src/c.rs\", \"line\": 5, \"old\": \"w\", \"new\": \"width\"},\
            {\"file\": \"src/b.rs\", \"line\": 2, \"old\": \"w\", \"new\": \"width\"},\
            {\"file\": \"../outside.rs\", \"line\": 1, \"old\": \"w\", \"new\": \"width\"},\
            {\"file\": \"/etc/passwd\", \"line\": 1, \"old\": \"root\", \"new\": \"x\"},\
            {\"file\": \".env\", \"line\": 1, \"old\": \"KEY\", \"new\": \"K\"}]}";
        let edits = parse_reply(reply);
        assert_eq!(edits.len(), 9);
        let (own, others) = split_by_file(edits, "src/area.rs", &["src/c.rs", "src/b.rs"]);
        assert_eq!(
            own.iter().map(|edit| edit.line).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        let lines: Vec<(usize, Vec<usize>)> = others
            .iter()
            .map(|(index, edits)| (*index, edits.iter().map(|edit| edit.line).collect()))
            .collect();
        assert_eq!(lines, vec![(1, vec![1, 2]), (0, vec![5])]);
    }

    #[test]
    fn proposals_that_follow_by_line_go_when_their_line_is_edited() {
        let mut document = Document::new(TEXT, 1, "rust");
        let edits = parse_reply(
            "{\"edits\": [{\"line\": 2, \"old\": \"w * 2\", \"new\": \"width * 2\"}, {\"line\": 3, \"old\": \"w * h\", \"new\": \"width * h\"}]}",
        );
        let mut proposals = map_to_document(&edits, document.rope());
        let second_line = TEXT.find("    let").unwrap();
        assert_eq!(
            &TEXT[proposals[0].line.clone()],
            "    let w2 = w * 2;",
            "the whole line, without its break"
        );
        let change = |document: &mut Document, at: usize, text: &str| {
            let version = document.version() + 1;
            let range = document.range(at..at, PositionEncoding::Utf8);
            document
                .apply_changes(
                    version,
                    &[ContentChange {
                        range: Some(range),
                        text: text.into(),
                    }],
                    PositionEncoding::Utf8,
                )
                .unwrap()
                .remove(0)
        };
        // At the end of the line before: both move.
        let applied = change(&mut document, second_line - 1, " // area");
        assert_eq!(
            follow(&mut proposals, &applied, Reach::Line),
            Followed::Elsewhere
        );
        let text = document.text();
        assert_eq!(&text[proposals[0].line.clone()], "    let w2 = w * 2;");
        assert_eq!(&text[proposals[1].range.clone()], "w");
        // At the start of the first proposal's line, away from its text: it goes all the same.
        let at = proposals[0].line.start;
        let applied = change(&mut document, at, "  ");
        assert_eq!(
            follow(&mut proposals, &applied, Reach::Line),
            Followed::AtProposal
        );
        assert_eq!(proposals.len(), 1);
        let text = document.text();
        assert_eq!(&text[proposals[0].line.clone()], "    w * h");
    }
    #[test]
    fn rebasing_onto_a_later_text_shifts_proposals_and_drops_those_on_changed_lines() {
        let edits = parse_reply(
            "{\"edits\": [{\"line\": 2, \"old\": \"w * 2\", \"new\": \"width * 2\"}, {\"line\": 3, \"old\": \"w * h\", \"new\": \"width * h\"}]}",
        );
        let proposals = map_to_document(&edits, &Rope::from_str(TEXT));
        // A new first line, and the second proposal's line edited.
        let later = format!("// note\n{}", TEXT.replace("    w * h", "    w * h + 0"));
        let rebased = rebase(proposals.clone(), &crate::diff::minimal_edits(TEXT, &later));
        assert_eq!(rebased.len(), 1);
        assert_eq!(&later[rebased[0].range.clone()], "w");
        assert_eq!(&later[rebased[0].line.clone()], "    let w2 = w * 2;");
        // Nothing changed: nothing moves.
        assert_eq!(rebase(proposals.clone(), &[]), proposals);
    }
}
