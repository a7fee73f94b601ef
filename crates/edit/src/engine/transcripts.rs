//! Transcript tests: a script of events in, the engine's effects out, as snapshots.
//!
//! A script has one event per line, `<ms> <command>`, where `<ms>` is the time since the job
//! started. The [`ScriptedEditor`] plays the editor: it holds the real document, queues the
//! edits the engine sends, and applies, skips or rejects them when the script says so:
//!
//! - `connected`, `model "text"`, `propose "text"`, `finished`, `failed "reason"`: the source.
//! - `land`: the editor applies the oldest queued edit computed against the current version
//!   that has not landed, and reports the change (didChange); stale ones stay queued, unapplied.
//! - `applied`, `reject`, `error "text"`: the editor answers the oldest queued edit.
//! - `ok`: `land` then `applied`, the usual case. `skip`: the editor answers `applied: true`
//!   for the oldest queued edit but never applies it (Neovim 0.11 and Zed with a stale edit).
//! - `type A..B "text"`: the user replaces bytes A..B; `replace "old" "new"`: the user replaces
//!   the first occurrence of `old`.
//! - `tick`: the armed timer fires (no time: it fires at the armed time); `cancel`; `close`;
//!   `fail "reason"` (the driver fails the job, after a panic in a step).
//!
//! The snapshot shows every line with the effects it caused, then the final document.

use std::collections::VecDeque;
use std::time::Duration;

use expect_test::{Expect, expect};
use text::{ContentChange, Document, PositionEncoding};

use super::*;

/// How a test job starts.
pub(super) enum Setup {
    /// A streamed rewrite of the first occurrence of `target` in `text`.
    Rewrite { text: String, target: String },
    /// A merge job over the whole of `text`, with the base the proposal was computed from.
    Merge { text: String, base: String },
    /// A merge job over the first occurrence of `region` in `text`, whose base is `region`.
    MergeRegion { text: String, region: String },
}

impl Setup {
    pub(super) fn rewrite(text: &str, target: &str) -> Setup {
        Setup::Rewrite {
            text: text.into(),
            target: target.into(),
        }
    }

    pub(super) fn merge(text: &str, base: &str) -> Setup {
        Setup::Merge {
            text: text.into(),
            base: base.into(),
        }
    }

    pub(super) fn merge_region(text: &str, region: &str) -> Setup {
        Setup::MergeRegion {
            text: text.into(),
            region: region.into(),
        }
    }
}

pub(super) const SETTINGS: EngineSettings = EngineSettings {
    flush_interval: Duration::from_millis(50),
    landing_timeout: Duration::from_millis(1000),
};

/// The editor side of a transcript: the document as the editor has it and the edits it was
/// sent but has not dealt with yet.
pub(super) struct ScriptedEditor {
    pub(super) engine: EditEngine,
    pub(super) document: Document,
    /// Edits sent and not answered yet, and whether each has landed.
    pub(super) queued: VecDeque<(ProposedEdit, bool)>,
    pub(super) armed: Option<Duration>,
    pub(super) outcome: Option<Outcome>,
    pub(super) messages: Vec<String>,
    /// Edits sent while an earlier one could still land (not landed, not answered, computed
    /// against the same version): must never happen.
    pub(super) overlapping_sends: usize,
}

impl ScriptedEditor {
    pub(super) fn new(setup: &Setup) -> ScriptedEditor {
        let (document, engine) = match setup {
            Setup::Rewrite { text, target } => {
                let document = Document::new(text, 1, "text");
                let start = text.find(target.as_str()).expect("target in text");
                let rewrite = Rewrite {
                    region: start..start + target.len(),
                    aligned_original: target.clone(),
                    before: String::new(),
                    target_ends_with_newline: target.ends_with('\n'),
                    empty_reply_reason: "the model answered with no text".into(),
                };
                let engine = EditEngine::rewrite(document.clone(), rewrite, SETTINGS);
                (document, engine)
            }
            Setup::Merge { text, base } => {
                let document = Document::new(text, 1, "text");
                let engine =
                    EditEngine::merge(document.clone(), 0..text.len(), base.clone(), SETTINGS);
                (document, engine)
            }
            Setup::MergeRegion { text, region } => {
                let document = Document::new(text, 1, "text");
                let start = text.find(region.as_str()).expect("region in text");
                let region_bytes = start..start + region.len();
                let engine =
                    EditEngine::merge(document.clone(), region_bytes, region.clone(), SETTINGS);
                (document, engine)
            }
        };
        ScriptedEditor {
            engine,
            document,
            queued: VecDeque::new(),
            armed: None,
            outcome: None,
            messages: Vec::new(),
            overlapping_sends: 0,
        }
    }

    /// Feeds an event and returns the effects, recording what the editor must remember.
    pub(super) fn feed(&mut self, now: Duration, event: Event) -> Vec<Effect> {
        let effects = self.engine.step(now, event);
        for effect in &effects {
            match effect {
                Effect::SendEdit(edit) => {
                    if self
                        .queued
                        .iter()
                        .any(|(queued, landed)| !landed && queued.version == edit.version)
                    {
                        self.overlapping_sends += 1;
                    }
                    self.queued.push_back((edit.clone(), false));
                }
                Effect::ArmTimer { at } => self.armed = Some(*at),
                Effect::Finish(outcome) => self.outcome = Some(outcome.clone()),
                Effect::ShowMessage { text, .. } => self.messages.push(text.clone()),
                Effect::ReportProgress(_) => {}
            }
        }
        effects
    }

    /// Applies a change to the editor's document and reports it to the engine.
    pub(super) fn change(
        &mut self,
        now: Duration,
        range: std::ops::Range<usize>,
        text: &str,
    ) -> Vec<Effect> {
        let encoding = PositionEncoding::Utf8;
        let change = ContentChange {
            range: Some(self.document.range(range, encoding)),
            text: text.into(),
        };
        let version = self.document.version() + 1;
        let changes = self
            .document
            .apply_changes(version, &[change], encoding)
            .expect("newer version");
        self.feed(
            now,
            Event::DocumentChanged {
                document: self.document.clone(),
                changes,
            },
        )
    }

    /// The editor applies the oldest queued edit that is still current (a strict editor never
    /// applies a stale one; the engine learns that from the answer, the next change or the
    /// landing timeout).
    pub(super) fn land(&mut self, now: Duration) -> Vec<Effect> {
        let version = self.document.version();
        let Some((edit, landed)) = self
            .queued
            .iter_mut()
            .find(|(edit, landed)| !*landed && edit.version == version)
        else {
            return Vec::new();
        };
        *landed = true;
        let replacement = edit.replacement.clone();
        self.change(now, replacement.range, &replacement.text)
    }

    pub(super) fn answer(&mut self, now: Duration, answer: EditAnswer) -> Vec<Effect> {
        let Some((edit, _)) = self.queued.pop_front() else {
            return Vec::new();
        };
        self.feed(
            now,
            Event::EditAnswered {
                version: edit.version,
                answer,
            },
        )
    }
}

/// Runs a script and renders what happened.
fn transcript(setup: Setup, script: &str) -> String {
    let mut editor = ScriptedEditor::new(&setup);
    let mut rendered = String::new();
    for line in script
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        let (time, command) = match line.split_once(' ') {
            Some((time, command)) if time.parse::<u64>().is_ok() => {
                (Some(Duration::from_millis(time.parse().unwrap())), command)
            }
            _ => (None, line),
        };
        let (verb, rest) = command.split_once(' ').unwrap_or((command, ""));
        let now = match (time, verb) {
            (Some(time), _) => time,
            (None, "tick") => editor.armed.expect("a timer is armed"),
            (None, _) => panic!("no time on {line:?}"),
        };
        let strings = quoted(rest);
        let effects = match verb {
            "connected" => editor.feed(now, Event::SourceConnected),
            "model" => editor.feed(now, Event::ModelText(strings[0].clone())),
            "propose" => editor.feed(now, Event::ProposedText(strings[0].clone())),
            "finished" => editor.feed(now, Event::SourceFinished),
            "failed" => editor.feed(
                now,
                Event::SourceFailed {
                    reason: strings[0].clone(),
                },
            ),
            "land" => editor.land(now),
            "applied" => editor.answer(now, EditAnswer::Applied),
            "ok" => {
                let mut effects = editor.land(now);
                effects.extend(editor.answer(now, EditAnswer::Applied));
                effects
            }
            "skip" => editor.answer(now, EditAnswer::Applied),
            "reject" => editor.answer(now, EditAnswer::Rejected),
            "error" => editor.answer(now, EditAnswer::Error(strings[0].clone())),
            "type" => {
                let range = rest.split_once(' ').expect("type A..B \"text\"").0;
                let (start, end) = range.split_once("..").expect("A..B");
                let range = start.parse().unwrap()..end.parse().unwrap();
                editor.change(now, range, &strings[0])
            }
            "replace" => {
                let at = editor
                    .document
                    .text()
                    .find(&strings[0])
                    .expect("text to replace");
                editor.change(now, at..at + strings[0].len(), &strings[1])
            }
            "tick" => {
                editor.armed = None;
                editor.feed(now, Event::Tick)
            }
            "cancel" => editor.feed(now, Event::Cancel),
            "close" => editor.feed(now, Event::DocumentClosed),
            "fail" => editor.feed(
                now,
                Event::Fail {
                    reason: strings[0].clone(),
                },
            ),
            _ => panic!("unknown command {verb:?}"),
        };
        rendered.push_str(&format!("{:>5} {command}\n", now.as_millis()));
        for effect in effects {
            rendered.push_str(&format!("        {}\n", render_effect(&effect)));
        }
    }
    assert_eq!(editor.overlapping_sends, 0, "two edits were in flight");
    rendered.push_str(&format!("document: {:?}\n", editor.document.text()));
    rendered
}

fn render_effect(effect: &Effect) -> String {
    match effect {
        Effect::SendEdit(edit) => format!(
            "send v{} {}..{} {:?}",
            edit.version,
            edit.replacement.range.start,
            edit.replacement.range.end,
            edit.replacement.text
        ),
        Effect::ReportProgress(message) => format!("progress {message:?}"),
        Effect::ShowMessage { level, text } => format!("message {level:?} {text:?}"),
        Effect::ArmTimer { at } => format!("timer {}", at.as_millis()),
        Effect::Finish(outcome) => format!("finish {outcome:?}"),
    }
}

/// The double-quoted strings in `text`, with `\n`, `\r`, `\t`, `\"` and `\\` escapes.
fn quoted(text: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut string = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => string.push('\n'),
                    Some('r') => string.push('\r'),
                    Some('t') => string.push('\t'),
                    Some(other) => string.push(other),
                    None => {}
                },
                other => string.push(other),
            }
        }
        strings.push(string);
    }
    strings
}

fn check(setup: Setup, script: &str, expected: Expect) {
    expected.assert_eq(&transcript(setup, script));
}

#[test]
fn first_text_at_once_then_lines_after_half_the_interval_then_every_interval() {
    check(
        Setup::rewrite("head\na\nb\nc\ntail\n", "a\nb\nc\n"),
        r#"
        0 connected
        10 model "A"
        12 ok
        15 model "\n"
        20 model "B"
        tick
        36 ok
        40 model "\nC"
        tick
        62 ok
        70 model "\n"
        75 finished
        "#,
        expect![[r#"
                0 connected
               10 model "A"
                    send v1 5..6 "A"
               12 ok
               15 model "\n"
                    timer 35
               20 model "B"
               35 tick
                    send v2 7..8 "B"
               36 ok
               40 model "\nC"
                    timer 60
               60 tick
                    send v3 9..10 "C"
               62 ok
               70 model "\n"
                    timer 85
               75 finished
                    finish Done
            document: "head\nA\nB\nC\ntail\n"
        "#]],
    );
}

#[test]
fn a_partial_line_waits_the_whole_interval() {
    check(
        Setup::rewrite("x = 1\n", "x = 1\n"),
        r#"
        0 connected
        5 model "y"
        6 ok
        10 model " ="
        tick
        56 ok
        60 model " 2\n"
        70 finished
        71 ok
        "#,
        expect![[r#"
                0 connected
                5 model "y"
                    send v1 0..5 "y"
                6 ok
               10 model " ="
                    timer 55
               55 tick
                    send v2 1..1 " ="
               56 ok
               60 model " 2\n"
                    timer 80
               70 finished
                    send v3 3..3 " 2"
               71 ok
                    finish Done
            document: "y = 2\n"
        "#]],
    );
}

#[test]
fn one_edit_in_flight_and_progress_every_quarter_second() {
    check(
        Setup::rewrite("a\nb\n", "a\nb\n"),
        r#"
        0 connected
        0 model "A"
        100 model "\n"
        200 model "B"
        260 model "\n"
        300 land
        300 applied
        400 ok
        410 finished
        "#,
        expect![[r#"
                0 connected
                0 model "A"
                    send v1 0..1 "A"
              100 model "\n"
              200 model "B"
              260 model "\n"
                    progress "streaming (4 characters)"
              300 land
                    send v2 2..3 "B"
              300 applied
              400 ok
              410 finished
                    finish Done
            document: "A\nB\n"
        "#]],
    );
}

#[test]
fn typing_outside_the_target_is_kept_and_a_stale_edit_is_recomputed() {
    check(
        Setup::rewrite("head\nold\ntail\n", "old\n"),
        r#"
        0 connected
        0 model "new\n"
        5 type 0..0 "// "
        6 land
        6 skip
        7 replace "tail" "TAIL"
        tick
        51 ok
        60 finished
        "#,
        expect![[r#"
                0 connected
                0 model "new\n"
                    send v1 5..8 "new"
                5 type 0..0 "// "
                    timer 50
                6 land
                6 skip
                7 replace "tail" "TAIL"
               50 tick
                    send v3 8..11 "new"
               51 ok
               60 finished
                    finish Done
            document: "// head\nnew\nTAIL\n"
        "#]],
    );
}

#[test]
fn a_rejected_edit_waits_for_a_newer_version_or_the_landing_timeout() {
    check(
        Setup::rewrite("one\ntwo\n", "two\n"),
        r#"
        0 connected
        0 model "TWO\n"
        1 reject
        2 finished
        3 type 0..0 "0"
        4 reject
        tick
        1005 ok
        "#,
        expect![[r#"
                0 connected
                0 model "TWO\n"
                    send v1 4..7 "TWO"
                1 reject
                    timer 1001
                2 finished
                3 type 0..0 "0"
                    send v2 5..8 "TWO"
                4 reject
                    timer 1004
             1004 tick
                    send v2 5..8 "TWO"
                    progress "landing (4 characters)"
             1005 ok
                    finish Done
            document: "0one\nTWO\n"
        "#]],
    );
}

#[test]
fn applied_true_for_an_edit_that_never_shows_up_is_recomputed() {
    check(
        Setup::rewrite("fn a() {}\n", "fn a() {}\n"),
        r#"
        0 connected
        0 model "fn b() {}\n"
        0 finished
        1 skip
        500 tick
        tick
        1002 ok
        "#,
        expect![[r#"
                0 connected
                0 model "fn b() {}\n"
                    send v1 3..4 "b"
                0 finished
                1 skip
                    timer 1001
              500 tick
                    progress "landing (10 characters)"
                    timer 1001
             1001 tick
                    send v1 3..4 "b"
                    progress "landing (10 characters)"
             1002 ok
                    finish Done
            document: "fn b() {}\n"
        "#]],
    );
}

#[test]
fn typing_inside_the_target_stops_the_job_and_keeps_the_text() {
    check(
        Setup::rewrite("keep\ntarget line\nkeep\n", "target line\n"),
        r#"
        0 connected
        0 model "new "
        1 ok
        2 replace "new " "mine "
        3 model "text\n"
        "#,
        expect![[r#"
                0 connected
                0 model "new "
                    send v1 5..16 "new "
                1 ok
                2 replace "new " "mine "
                    finish UserEditedTarget
                3 model "text\n"
            document: "keep\nmine \nkeep\n"
        "#]],
    );
}

#[test]
fn typing_inside_the_target_while_an_edit_is_in_flight_stops_the_job() {
    check(
        Setup::rewrite("a\ntarget\n", "target\n"),
        r#"
        0 connected
        0 model "NEW\n"
        1 replace "target" "tar-get"
        2 land
        2 skip
        "#,
        expect![[r#"
                0 connected
                0 model "NEW\n"
                    send v1 2..8 "NEW"
                1 replace "target" "tar-get"
                    finish UserEditedTarget
                2 land
                2 skip
            document: "a\ntar-get\n"
        "#]],
    );
}

#[test]
fn cancel_restores_the_original() {
    check(
        Setup::rewrite("x\nold one\nold two\ny\n", "old one\nold two\n"),
        r#"
        0 connected
        0 model "new one\n"
        1 ok
        60 model "new two"
        61 cancel
        62 ok
        63 model "ignored"
        64 ok
        "#,
        expect![[r#"
                0 connected
                0 model "new one\n"
                    send v1 2..5 "new"
                1 ok
               60 model "new two"
                    send v2 10..13 "new"
               61 cancel
                    timer 2061
               62 ok
                    send v3 2..13 "old one\nold"
               63 model "ignored"
               64 ok
                    finish Cancelled { restored: true }
            document: "x\nold one\nold two\ny\n"
        "#]],
    );
}

#[test]
fn cancel_waits_for_the_edit_in_flight_then_restores() {
    check(
        Setup::rewrite("old\n", "old\n"),
        r#"
        0 connected
        0 model "new\n"
        1 cancel
        2 ok
        3 ok
        "#,
        expect![[r#"
                0 connected
                0 model "new\n"
                    send v1 0..3 "new"
                1 cancel
                    timer 2001
                2 ok
                    send v2 0..3 "old"
                3 ok
                    finish Cancelled { restored: true }
            document: "old\n"
        "#]],
    );
}

#[test]
fn restoring_never_overwrites_the_user() {
    check(
        Setup::rewrite("old\n", "old\n"),
        r#"
        0 connected
        0 model "new\n"
        1 ok
        2 failed "the stream broke"
        3 replace "new" "mine"
        4 land
        4 applied
        "#,
        expect![[r#"
                0 connected
                0 model "new\n"
                    send v1 0..3 "new"
                1 ok
                2 failed "the stream broke"
                    send v2 0..3 "old"
                    timer 2002
                3 replace "new" "mine"
                    finish Failed { reason: "the stream broke", restored: false }
                4 land
                4 applied
            document: "mine\n"
        "#]],
    );
}

#[test]
fn restoring_gives_up_after_twice_the_landing_timeout() {
    check(
        Setup::rewrite("old\n", "old\n"),
        r#"
        0 connected
        0 model "new\n"
        1 ok
        2 cancel
        3 reject
        tick
        tick
        "#,
        expect![[r#"
                0 connected
                0 model "new\n"
                    send v1 0..3 "new"
                1 ok
                2 cancel
                    send v2 0..3 "old"
                    timer 2002
                3 reject
                    timer 1003
             1003 tick
                    send v2 0..3 "old"
                    timer 2002
             2002 tick
                    finish Cancelled { restored: false }
            document: "new\n"
        "#]],
    );
}

#[test]
fn failures_before_any_text_restore_nothing() {
    check(
        Setup::rewrite("old\n", "old\n"),
        r#"
        0 failed "401 Unauthorized"
        "#,
        expect![[r#"
                0 failed "401 Unauthorized"
                    finish Failed { reason: "401 Unauthorized", restored: false }
            document: "old\n"
        "#]],
    );
    check(
        Setup::rewrite("old\n", "old\n"),
        r#"
        0 cancel
        "#,
        expect![[r#"
                0 cancel
                    finish Cancelled { restored: false }
            document: "old\n"
        "#]],
    );
}

#[test]
fn an_empty_reply_fails_and_restores() {
    check(
        Setup::rewrite("old\n", "old\n"),
        r#"
        0 connected
        0 model "```\n"
        1 model "```\n"
        2 finished
        "#,
        expect![[r#"
                0 connected
                0 model "```\n"
                1 model "```\n"
                    timer 25
                2 finished
                    finish Failed { reason: "the model answered with no text", restored: true }
            document: "old\n"
        "#]],
    );
}

#[test]
fn an_editor_error_fails_the_job_and_a_closed_document_cannot_be_restored() {
    check(
        Setup::rewrite("old\n", "old\n"),
        r#"
        0 connected
        0 model "new\n"
        1 error "the client went away"
        "#,
        expect![[r#"
                0 connected
                0 model "new\n"
                    send v1 0..3 "new"
                1 error "the client went away"
                    finish Failed { reason: "the editor could not apply the edit: the client went away", restored: true }
            document: "old\n"
        "#]],
    );
    check(
        Setup::rewrite("old\n", "old\n"),
        r#"
        0 connected
        0 model "new\n"
        1 ok
        2 close
        "#,
        expect![[r#"
                0 connected
                0 model "new\n"
                    send v1 0..3 "new"
                1 ok
                2 close
                    finish Failed { reason: "the document was closed", restored: false }
            document: "new\n"
        "#]],
    );
}

#[test]
fn a_surrounding_fence_is_never_shown() {
    check(
        Setup::rewrite("fn a() {}\n", "fn a() {}\n"),
        r#"
        0 connected
        0 model "```rust\n"
        1 model "fn b() {}\n"
        tick
        26 ok
        60 model "```"
        61 finished
        "#,
        expect![[r#"
                0 connected
                0 model "```rust\n"
                1 model "fn b() {}\n"
                    timer 25
               25 tick
                    send v1 3..4 "b"
               26 ok
               60 model "```"
                    timer 75
               61 finished
                    finish Done
            document: "fn b() {}\n"
        "#]],
    );
}

#[test]
fn crlf_and_multi_byte_text() {
    check(
        Setup::rewrite(
            "// é\r\nlet a = \"😀\";\r\nlet b = 1;\r\n",
            "let a = \"😀\";\r\nlet b = 1;\r\n",
        ),
        r#"
        0 connected
        0 model "let a = \"😀😀\";\r"
        1 ok
        2 type 0..0 "ü"
        60 model "\nlet b = 'é';\r\n"
        61 ok
        90 finished
        "#,
        expect![[r#"
                0 connected
                0 model "let a = \"😀😀\";\r"
                    send v1 20..20 "😀"
                1 ok
                2 type 0..0 "ü"
               60 model "\nlet b = 'é';\r\n"
                    send v3 38..39 "'é'"
               61 ok
               90 finished
                    finish Done
            document: "ü// é\r\nlet a = \"😀😀\";\r\nlet b = 'é';\r\n"
        "#]],
    );
}

#[test]
fn a_merge_keeps_the_user_changes_that_do_not_overlap() {
    check(
        Setup::merge("a\nb typed\nc\nd\n", "a\nb\nc\nd\n"),
        r#"
        0 propose "a\nb\nc\nD agent\nE new\n"
        1 replace "a\n" "a user\n"
        2 land
        2 skip
        3 finished
        "#,
        expect![[r#"
                0 propose "a\nb\nc\nD agent\nE new\n"
                    send v1 12..13 "D agent\nE new"
                1 replace "a\n" "a user\n"
                    send v2 17..18 "D agent\nE new"
                2 land
                2 skip
                3 finished
                    finish Done
            document: "a user\nb typed\nc\nD agent\nE new\n"
        "#]],
    );
}

#[test]
fn a_merge_lands_hunk_by_hunk_and_reports_conflicts() {
    check(
        Setup::merge(
            "one\ntwo\nthree\nfour\nfive\n",
            "one\ntwo\nthree\nfour\nfive\n",
        ),
        r#"
        0 propose "ONE\ntwo\nthree\nFOUR\nfive\n"
        0 finished
        1 ok
        2 replace "four" "4"
        3 ok
        "#,
        expect![[r#"
                0 propose "ONE\ntwo\nthree\nFOUR\nfive\n"
                    send v1 0..3 "ONE"
                0 finished
                1 ok
                    send v2 14..18 "FOUR"
                2 replace "four" "4"
                    message Warning "baton: 1 of the proposed changes overlapped with your edits; your text was kept there"
                    finish Done
                3 ok
            document: "ONE\ntwo\nthree\n4\nfive\n"
        "#]],
    );
}

#[test]
fn a_merge_does_not_fight_the_user_over_landed_text() {
    check(
        Setup::merge("a\nb\n", "a\nb\n"),
        r#"
        0 propose "a\nnew\nb\n"
        1 ok
        2 replace "new\n" ""
        3 finished
        "#,
        expect![[r#"
                0 propose "a\nnew\nb\n"
                    send v1 2..2 "new\n"
                1 ok
                2 replace "new\n" ""
                3 finished
                    finish Done
            document: "a\nb\n"
        "#]],
    );
}

#[test]
fn a_cancelled_merge_takes_back_only_its_own_hunks() {
    check(
        Setup::merge("1\n2\n3\n4\n5\n6\n7\n", "1\n2\n3\n4\n5\n6\n7\n"),
        r#"
        0 propose "1\nTWO\n3\n4\n5\nSIX\n7\n"
        1 ok
        2 replace "TWO" "TWO, edited"
        3 cancel
        4 ok
        5 ok
        "#,
        expect![[r#"
                0 propose "1\nTWO\n3\n4\n5\nSIX\n7\n"
                    send v1 2..3 "TWO"
                1 ok
                    send v2 12..13 "SIX"
                2 replace "TWO" "TWO, edited"
                    send v3 20..21 "SIX"
                3 cancel
                    timer 2003
                4 ok
                    send v4 20..23 "6"
                5 ok
                    finish Cancelled { restored: false }
            document: "1\nTWO, edited\n3\n4\n5\n6\n7\n"
        "#]],
    );
}

#[test]
fn a_merge_recomputes_after_a_lying_applied_true() {
    check(
        Setup::merge("x\ny\n", "x\ny\n"),
        r#"
        0 propose "x\nY\n"
        0 finished
        1 skip
        tick
        1002 ok
        "#,
        expect![[r#"
                0 propose "x\nY\n"
                    send v1 2..3 "Y"
                0 finished
                1 skip
                    timer 1001
             1001 tick
                    send v1 2..3 "Y"
             1002 ok
                    finish Done
            document: "x\nY\n"
        "#]],
    );
}

#[test]
fn a_region_merge_follows_typing_around_and_inside_the_region() {
    check(
        Setup::merge_region(
            "fn a() {}\nfn b() {\n    1\n}\nfn c() {}\n",
            "fn b() {\n    1\n}\n",
        ),
        r#"
        0 propose "fn b() {\n    2\n}\n// b\n"
        1 type 0..0 "// top\n"
        2 ok
        3 replace "fn b()" "fn bee()"
        5 finished
        6 replace "fn c" "fn see"
        "#,
        expect![[r#"
                0 propose "fn b() {\n    2\n}\n// b\n"
                    send v1 23..26 "2\n}\n// b"
                1 type 0..0 "// top\n"
                    send v2 30..33 "2\n}\n// b"
                2 ok
                3 replace "fn b()" "fn bee()"
                5 finished
                    finish Done
                6 replace "fn c" "fn see"
            document: "// top\nfn a() {}\nfn bee() {\n    2\n}\n// b\nfn see() {}\n"
        "#]],
    );
}

#[test]
fn an_internal_failure_restores_even_after_the_stream_ended() {
    check(
        Setup::rewrite("old\n", "old\n"),
        r#"
        0 connected
        0 model "new\n"
        1 finished
        2 fail "internal error: boom"
        3 ok
        4 ok
        "#,
        expect![[r#"
                0 connected
                0 model "new\n"
                    send v1 0..3 "new"
                1 finished
                2 fail "internal error: boom"
                    timer 2002
                3 ok
                    send v2 0..3 "old"
                4 ok
                    finish Failed { reason: "internal error: boom", restored: true }
            document: "old\n"
        "#]],
    );
    check(
        Setup::rewrite("old\n", "old\n"),
        r#"
        0 connected
        0 model "new\n"
        1 ok
        2 cancel
        3 fail "internal error: boom while restoring"
        "#,
        expect![[r#"
                0 connected
                0 model "new\n"
                    send v1 0..3 "new"
                1 ok
                2 cancel
                    send v2 0..3 "old"
                    timer 2002
                3 fail "internal error: boom while restoring"
                    finish Failed { reason: "internal error: boom while restoring", restored: false }
            document: "new\n"
        "#]],
    );
}
