//! Property tests: random interleavings of model text, the user's typing (inside and outside
//! the target), rejected, skipped and lying edits, timer ticks, cancellation and failure.
//!
//! Whatever happens, the user's typed text survives; when nothing interfered the region ends
//! exactly as the reply says; when the job was cancelled or failed and the user did not touch
//! the target, the original is back. Every run must also end: after the random part, a
//! well-behaved editor lands everything and the timers fire, and the job has to finish.

use std::time::Duration;

use proptest::prelude::*;

use super::transcripts::{ScriptedEditor, Setup};
use super::*;

const HEAD: &str = "head\n";
const TAIL: &str = "tail\n";

#[derive(Debug, Clone)]
enum Step {
    /// The next piece of the model's reply arrives.
    Delta,
    /// The editor applies the oldest edit it was sent, if still current.
    Land,
    /// The editor answers the oldest edit: applied if it landed, else rejected or (lying)
    /// applied.
    Answer {
        reject: bool,
    },
    /// The user types before the head or after the tail.
    TypeOutside {
        at_start: bool,
    },
    /// The user types strictly inside the target region.
    TypeInside {
        seed: usize,
    },
    /// Time passes.
    Wait {
        millis: u64,
    },
    /// The armed timer fires.
    Tick,
    Cancel,
    Fail,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Delta),
        5 => Just(Step::Land),
        4 => any::<bool>().prop_map(|reject| Step::Answer { reject }),
        2 => any::<bool>().prop_map(|at_start| Step::TypeOutside { at_start }),
        1 => any::<usize>().prop_map(|seed| Step::TypeInside { seed }),
        3 => (0u64..120).prop_map(|millis| Step::Wait { millis }),
        2 => Just(Step::Tick),
        1 => Just(Step::Cancel),
        1 => Just(Step::Fail),
    ]
}

/// Lines of a small alphabet with multi-byte characters, some ending in CRLF, some without a
/// final line break; each line has a letter, so the text is never blank.
fn lines(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(("[xyz]", "[xyzé😀 ]{0,5}", 0..3usize), 1..max).prop_map(|lines| {
        let count = lines.len();
        let mut text = String::new();
        for (index, (letter, rest, ending)) in lines.into_iter().enumerate() {
            text.push_str(&letter);
            text.push_str(&rest);
            match ending {
                0 if index + 1 == count => {}
                1 => text.push_str("\r\n"),
                _ => text.push('\n'),
            }
        }
        text
    })
}

/// The reply, maybe wrapped in a fence, cut into deltas at character boundaries.
fn reply() -> impl Strategy<Value = Vec<String>> {
    (
        lines(5),
        any::<bool>(),
        prop::collection::vec(any::<usize>(), 0..8),
    )
        .prop_map(|(body, fenced, cuts)| {
            let reply = if fenced {
                let body = if body.ends_with('\n') {
                    body
                } else {
                    format!("{body}\n")
                };
                format!("```rust\n{body}```\n")
            } else {
                body
            };
            let boundaries: Vec<usize> = reply.char_indices().map(|(at, _)| at).collect();
            let mut cut_at: Vec<usize> = cuts
                .into_iter()
                .map(|cut| boundaries[cut % boundaries.len()])
                .filter(|&at| at > 0)
                .collect();
            cut_at.sort_unstable();
            cut_at.dedup();
            let mut deltas = Vec::new();
            let mut from = 0;
            for at in cut_at.into_iter().chain([reply.len()]) {
                deltas.push(reply[from..at].to_string());
                from = at;
            }
            deltas
        })
}

/// What the random part did, for the checks at the end.
#[derive(Default)]
struct Record {
    markers: Vec<String>,
    typed_before: String,
    typed_after: String,
    typed_inside: bool,
    interrupted: bool,
    /// Time jumped to a timer while the editor sat on an edit, or the editor lied about or
    /// rejected an edit after the interruption: restoring may give up (after twice the landing timeout) without
    /// the original back.
    editor_stalled: bool,
}

impl ScriptedEditor {
    fn type_text(&mut self, now: Duration, at: usize, record: &mut Record) {
        let marker = format!("«{}»", record.markers.len());
        record.markers.push(marker.clone());
        self.change(now, at..at, &marker);
    }

    /// The editor behaves: it lands what it is sent and answers truthfully; timers fire.
    fn settle(&mut self, now: &mut Duration, deltas: &mut std::vec::IntoIter<String>) {
        for _ in 0..1000 {
            if self.outcome.is_some() {
                return;
            }
            if !self.queued.is_empty() {
                self.land(*now);
                let landed = self.queued.front().is_some_and(|(_, landed)| *landed);
                let answer = if landed {
                    EditAnswer::Applied
                } else {
                    EditAnswer::Rejected
                };
                self.answer(*now, answer);
            } else if self.engine.wants_source() {
                *now += Duration::from_millis(7);
                match deltas.next() {
                    Some(delta) => self.feed(*now, Event::ModelText(delta)),
                    None => self.feed(*now, Event::SourceFinished),
                };
            } else if let Some(at) = self.armed.take() {
                *now = (*now).max(at);
                self.feed(*now, Event::Tick);
            } else {
                panic!("the job is stuck: nothing queued, no timer, not finished");
            }
        }
        panic!("the job did not finish");
    }

    fn region(&self) -> std::ops::Range<usize> {
        match &self.engine.target {
            Target::Rewrite(target) => target.landing.region(),
            Target::Merge(_) => unreachable!("merge jobs take typing anywhere"),
        }
    }
}

fn run_rewrite(original: &str, deltas: Vec<String>, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let text = format!("{HEAD}{original}{TAIL}");
    let mut editor = ScriptedEditor::new(&Setup::rewrite(&text, original));
    let mut expected_reply = ReplyText::new();
    for delta in &deltas {
        expected_reply.push(delta);
    }
    let expected_final = expected_reply.finish(original.ends_with('\n'));
    let mut deltas = deltas.into_iter();
    let mut record = Record::default();
    let mut now = Duration::ZERO;
    editor.feed(now, Event::SourceConnected);
    for step in steps {
        if editor.outcome.is_some() {
            break;
        }
        match step {
            Step::Delta => {
                if let Some(delta) = deltas.next() {
                    editor.feed(now, Event::ModelText(delta));
                }
            }
            Step::Land => {
                editor.land(now);
            }
            Step::Answer { reject } => {
                let landed = editor.queued.front().is_some_and(|(_, landed)| *landed);
                let answer = if landed || !reject {
                    EditAnswer::Applied
                } else {
                    EditAnswer::Rejected
                };
                // A lie or a rejection on an unchanged version while restoring costs a landing
                // timeout of restoring's bounded patience.
                record.editor_stalled |= record.interrupted && !landed;
                editor.answer(now, answer);
            }
            Step::TypeOutside { at_start } => {
                let at = if at_start {
                    0
                } else {
                    editor.document.len_bytes()
                };
                let before = record.markers.len();
                editor.type_text(now, at, &mut record);
                let marker = &record.markers[before];
                if at_start {
                    record.typed_before.insert_str(0, marker);
                } else {
                    record.typed_after.push_str(marker);
                }
            }
            Step::TypeInside { seed } => {
                let region = editor.region();
                if region.len() < 2 {
                    continue;
                }
                let at = editor
                    .document
                    .floor_boundary(region.start + 1 + seed % (region.len() - 1));
                if at <= region.start {
                    continue;
                }
                editor.type_text(now, at, &mut record);
                record.typed_inside = true;
            }
            Step::Wait { millis } => {
                record.editor_stalled |= record.interrupted;
                now += Duration::from_millis(millis);
            }
            Step::Tick => {
                if let Some(at) = editor.armed.take() {
                    record.editor_stalled |= record.interrupted || !editor.queued.is_empty();
                    now = now.max(at);
                    editor.feed(now, Event::Tick);
                }
            }
            Step::Cancel => {
                record.interrupted = true;
                editor.feed(now, Event::Cancel);
            }
            Step::Fail => {
                record.interrupted = true;
                let reason = "the stream broke".to_string();
                editor.feed(now, Event::SourceFailed { reason });
            }
        }
    }
    editor.settle(&mut now, &mut deltas);
    prop_assert_eq!(editor.overlapping_sends, 0, "two edits were in flight");
    let document = editor.document.text();
    for marker in &record.markers {
        prop_assert!(
            document.contains(marker.as_str()),
            "{marker} lost: {document:?}"
        );
    }
    let outcome = editor.outcome.clone().expect("finished");
    let around = |region: &str| {
        format!(
            "{}{HEAD}{region}{TAIL}{}",
            record.typed_before, record.typed_after
        )
    };
    if record.typed_inside {
        prop_assert!(
            matches!(
                outcome,
                Outcome::UserEditedTarget
                    | Outcome::Cancelled { restored: false }
                    | Outcome::Failed {
                        restored: false,
                        ..
                    }
            ),
            "typing inside was missed: {outcome:?}"
        );
    } else {
        match outcome {
            Outcome::Done => prop_assert_eq!(document, around(&expected_final)),
            Outcome::Cancelled { restored } | Outcome::Failed { restored, .. } => {
                prop_assert!(record.interrupted);
                if !record.editor_stalled {
                    prop_assert!(restored, "not restored");
                }
                if restored {
                    prop_assert_eq!(document, around(original));
                }
            }
            Outcome::UserEditedTarget => prop_assert!(false, "nobody typed in the target"),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_streamed_rewrite_keeps_the_user_text_and_lands_exactly(
        original in lines(5),
        deltas in reply(),
        steps in prop::collection::vec(step(), 0..60),
    ) {
        run_rewrite(&original, deltas, steps)?;
    }
}

/// A proposal derived from the base by a few line edits, so that merges have both changed and
/// kept lines.
fn proposal(base: &str, edits: &[(u8, usize, String)]) -> String {
    let mut lines: Vec<String> = base.split_inclusive('\n').map(str::to_string).collect();
    for (kind, seed, text) in edits {
        let at = seed % (lines.len() + 1);
        match kind % 3 {
            0 => lines.insert(at, format!("{text}\n")),
            1 if at < lines.len() => lines[at] = format!("{text}\n"),
            _ if at < lines.len() => {
                lines.remove(at);
            }
            _ => {}
        }
    }
    lines.concat()
}

#[derive(Debug, Clone)]
enum MergeStep {
    Propose,
    Land,
    Answer {
        reject: bool,
    },
    /// The user types anywhere in the document.
    Type {
        seed: usize,
    },
    Wait {
        millis: u64,
    },
    Tick,
    Cancel,
}

fn merge_step() -> impl Strategy<Value = MergeStep> {
    prop_oneof![
        2 => Just(MergeStep::Propose),
        6 => Just(MergeStep::Land),
        4 => any::<bool>().prop_map(|reject| MergeStep::Answer { reject }),
        2 => any::<usize>().prop_map(|seed| MergeStep::Type { seed }),
        2 => (0u64..1500).prop_map(|millis| MergeStep::Wait { millis }),
        2 => Just(MergeStep::Tick),
        1 => Just(MergeStep::Cancel),
    ]
}

fn run_merge(base: &str, theirs: &str, steps: Vec<MergeStep>) -> Result<(), TestCaseError> {
    let mut editor = ScriptedEditor::new(&Setup::merge(base, base));
    let mut record = Record::default();
    let mut now = Duration::ZERO;
    let mut proposed = false;
    for step in steps {
        if editor.outcome.is_some() {
            break;
        }
        match step {
            MergeStep::Propose if !proposed => {
                proposed = true;
                editor.feed(now, Event::ProposedText(theirs.to_string()));
                editor.feed(now, Event::SourceFinished);
            }
            MergeStep::Propose => {}
            MergeStep::Land => {
                editor.land(now);
            }
            MergeStep::Answer { reject } => {
                let landed = editor.queued.front().is_some_and(|(_, landed)| *landed);
                let answer = if landed || !reject {
                    EditAnswer::Applied
                } else {
                    EditAnswer::Rejected
                };
                record.editor_stalled |= record.interrupted && !landed;
                editor.answer(now, answer);
            }
            MergeStep::Type { seed } => {
                let text = editor.document.text();
                let mut at = editor.document.floor_boundary(seed % (text.len() + 1));
                // Not inside an earlier marker, so that each stays whole and findable.
                for marker in &record.markers {
                    if let Some(start) = text.find(marker.as_str())
                        && start < at
                        && at < start + marker.len()
                    {
                        at = start + marker.len();
                    }
                }
                editor.type_text(now, at, &mut record);
            }
            MergeStep::Wait { millis } => {
                record.editor_stalled |= record.interrupted;
                now += Duration::from_millis(millis);
            }
            MergeStep::Tick => {
                if let Some(at) = editor.armed.take() {
                    record.editor_stalled |= record.interrupted || !editor.queued.is_empty();
                    now = now.max(at);
                    editor.feed(now, Event::Tick);
                }
            }
            MergeStep::Cancel => {
                record.interrupted = true;
                editor.feed(now, Event::Cancel);
            }
        }
    }
    if !proposed && editor.outcome.is_none() {
        editor.feed(now, Event::ProposedText(theirs.to_string()));
        editor.feed(now, Event::SourceFinished);
    }
    editor.settle(&mut now, &mut Vec::new().into_iter());
    prop_assert_eq!(editor.overlapping_sends, 0, "two edits were in flight");
    let document = editor.document.text();
    for marker in &record.markers {
        prop_assert!(
            document.contains(marker.as_str()),
            "{marker} lost: {document:?}"
        );
    }
    let typed = !record.markers.is_empty();
    match editor.outcome.clone().expect("finished") {
        Outcome::Done => {
            if !typed {
                prop_assert_eq!(document, theirs);
            }
        }
        Outcome::Cancelled { restored } => {
            prop_assert!(record.interrupted);
            if !typed && !record.editor_stalled {
                prop_assert!(restored, "not restored");
            }
            if !typed && restored {
                prop_assert_eq!(document, base);
            }
        }
        outcome => prop_assert!(false, "a merge cannot end {outcome:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_merge_keeps_the_user_text_and_lands_exactly(
        base in lines(8),
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), "[xyzé😀]{1,4}"), 0..5),
        steps in prop::collection::vec(merge_step(), 0..50),
    ) {
        let theirs = proposal(&base, &edits);
        run_merge(&base, &theirs, steps)?;
    }
}
