//! Following a job's target region through the document's versions.
//!
//! A job shows text in a region of the user's buffer by sending versioned edits. Between two
//! edits, the document changes in ways the job does not control: the editor reports baton's own
//! edits back (with its own idea of the minimal change range), the user types elsewhere, the user
//! types inside the target, and some editors skip a stale edit yet answer `applied: true`.
//!
//! [`Landing`] decides from the document's content, not from the editor's answers: after each
//! change it looks for the text it believes the region holds (or the text of the edit in flight)
//! near where the region was. Found in-flight text means baton's edit landed; found old text
//! means the edit did not land yet (or was skipped) and the region just moved; neither means the
//! user changed the target, and the job must stop without touching it.
//!
//! Only one edit is in flight at a time, and it is a single replacement, so an editor that
//! reports a multi-part edit as several changes cannot leave the region in a state that looks
//! like user typing.

use text::{AppliedChange, Document};

use crate::diff::{Replacement, common_prefix, common_suffix};

/// A job's region of the buffer and what it believes is in it.
#[derive(Debug, Clone)]
pub struct Landing {
    start: usize,
    shown: String,
    original: String,
    in_flight: Option<InFlight>,
}

#[derive(Debug, Clone)]
struct InFlight {
    base_version: i32,
    text: String,
    /// The document's text just before and just after the region when the edit was proposed.
    /// The edit replaces text strictly inside the region, so where it landed, it sits between
    /// these two; text that merely looks like it (the edit shortens the region to a prefix of
    /// what the user's typing left there) does not.
    before: String,
    after: String,
}

/// How much of the surrounding text identifies where an edit landed.
const CONTEXT_BYTES: usize = 32;

/// An edit to send: one replacement in document byte offsets, valid for `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedEdit {
    pub version: i32,
    pub replacement: Replacement,
}

/// What a document change meant for the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The region still holds what it held; it may have moved.
    Unchanged,
    /// The edit in flight is now in the document.
    Landed,
    /// The document moved past the in-flight edit's version without it: the editor skipped or
    /// rejected it. A new edit must be computed on the current version.
    Skipped,
    /// The user changed the target region. The job must stop and leave the region alone.
    UserEditedTarget,
}

impl Landing {
    pub fn new(document: &Document, region: std::ops::Range<usize>) -> Landing {
        let original = document.slice(region.clone());
        Landing {
            start: document.floor_boundary(region.start),
            shown: original.clone(),
            original,
            in_flight: None,
        }
    }

    /// The region's current byte range.
    pub fn region(&self) -> std::ops::Range<usize> {
        self.start..self.start + self.shown.len()
    }

    /// What the region holds now, as far as the job knows.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn original(&self) -> &str {
        &self.original
    }

    /// Whether an edit is waiting to be seen in the document.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Computes the edit that makes the region show `text`, and marks it in flight. Returns
    /// `None` when the region already shows `text` or an edit is still in flight.
    pub fn propose(&mut self, document: &Document, text: &str) -> Option<ProposedEdit> {
        if self.in_flight.is_some() || self.shown == text {
            return None;
        }
        let prefix = common_prefix(&self.shown, text);
        let suffix = common_suffix(&self.shown[prefix..], &text[prefix..]);
        let replacement = Replacement {
            range: self.start + prefix..self.start + self.shown.len() - suffix,
            text: text[prefix..text.len() - suffix].to_string(),
        };
        let region = self.region();
        self.in_flight = Some(InFlight {
            base_version: document.version(),
            text: text.to_string(),
            before: document.slice(region.start.saturating_sub(CONTEXT_BYTES)..region.start),
            after: document.slice(region.end..region.end + CONTEXT_BYTES),
        });
        Some(ProposedEdit {
            version: document.version(),
            replacement,
        })
    }

    /// The editor refused the edit in flight (`applied: false`).
    pub fn rejected(&mut self) {
        self.in_flight = None;
    }

    /// Gives up on the edit in flight, for editors that claim an edit applied and never report
    /// it. If it did land after all, the next change will not match and the job stops safely.
    pub fn abandon_in_flight(&mut self) {
        self.in_flight = None;
    }

    /// Feeds one document change (all of its content changes, already applied to `document`).
    pub fn observe(&mut self, document: &Document, changes: &[AppliedChange]) -> Observed {
        if let Some(observed) = self.observe_elsewhere(document, changes) {
            return observed;
        }
        let mut churn = 0;
        for change in changes {
            let old_len = change.old_end_byte - change.start_byte;
            let new_len = change.new_end_byte - change.start_byte;
            churn += old_len.max(new_len);
            if change.old_end_byte <= self.start && change.start_byte < self.start {
                self.start = self.start + change.new_end_byte - change.old_end_byte;
            } else if change.start_byte < self.start {
                self.start = change.start_byte;
            }
        }
        let window = churn + 1;
        if let Some(in_flight) = &self.in_flight
            && let Some(found) = find_near(document, &in_flight.text, self.start, window, |at| {
                at >= in_flight.before.len()
                    && document.slice(at - in_flight.before.len()..at) == in_flight.before
                    && document.slice(
                        at + in_flight.text.len()
                            ..at + in_flight.text.len() + in_flight.after.len(),
                    ) == in_flight.after
            })
        {
            self.start = found;
            self.shown = in_flight.text.clone();
            self.in_flight = None;
            return Observed::Landed;
        }
        match find_near(document, &self.shown, self.start, window, |_| true) {
            Some(found) => {
                self.start = found;
                match &self.in_flight {
                    Some(in_flight) if document.version() > in_flight.base_version => {
                        self.in_flight = None;
                        Observed::Skipped
                    }
                    _ => Observed::Unchanged,
                }
            }
            None => {
                self.in_flight = None;
                Observed::UserEditedTarget
            }
        }
    }
}

impl Landing {
    /// When no change touches the region, its text cannot have changed: the edit in flight did
    /// not land, whatever text near the region looks like it (an edit that shortens the region
    /// proposes a prefix of what it shows), and the region only moves. Returns `None` when some
    /// change touches the region, so its content must be searched.
    fn observe_elsewhere(
        &mut self,
        document: &Document,
        changes: &[AppliedChange],
    ) -> Option<Observed> {
        let mut start = self.start;
        for change in changes {
            let end = start + self.shown.len();
            if change.start_byte <= end && change.old_end_byte >= start {
                return None;
            }
            if change.old_end_byte < start {
                start = start + change.new_end_byte - change.old_end_byte;
            }
        }
        if document.slice(start..start + self.shown.len()) != self.shown {
            return None;
        }
        self.start = start;
        Some(match &self.in_flight {
            Some(in_flight) if document.version() > in_flight.base_version => {
                self.in_flight = None;
                Observed::Skipped
            }
            _ => Observed::Unchanged,
        })
    }
}

/// Finds `needle` in the document starting within `window` bytes of `near`, nearest first,
/// among the places `accept` accepts.
fn find_near(
    document: &Document,
    needle: &str,
    near: usize,
    window: usize,
    accept: impl Fn(usize) -> bool,
) -> Option<usize> {
    let from = document.floor_boundary(near.saturating_sub(window));
    let to = document.floor_boundary(near.saturating_add(window).saturating_add(needle.len()));
    let haystack = document.slice(from..to);
    haystack
        .match_indices(needle)
        .map(|(i, _)| from + i)
        .filter(|&at| at.abs_diff(near) <= window && accept(at))
        .min_by_key(|&at| at.abs_diff(near))
}

#[cfg(test)]
mod tests {
    use super::*;
    use text::{ContentChange, PositionEncoding};

    fn edit(
        document: &mut Document,
        range: std::ops::Range<usize>,
        text: &str,
    ) -> Vec<AppliedChange> {
        let enc = PositionEncoding::Utf8;
        let change = ContentChange {
            range: Some(document.range(range, enc)),
            text: text.into(),
        };
        document
            .apply_changes(document.version() + 1, &[change], enc)
            .unwrap()
    }

    fn land(document: &mut Document, proposed: &ProposedEdit) -> Vec<AppliedChange> {
        assert_eq!(proposed.version, document.version());
        edit(
            document,
            proposed.replacement.range.clone(),
            &proposed.replacement.text,
        )
    }

    #[test]
    fn own_edits_land_and_typing_outside_is_kept() {
        let mut doc = Document::new("head\nold body\ntail\n", 1, "text");
        let mut landing = Landing::new(&doc, 5..14);
        let proposed = landing.propose(&doc, "new body\n").unwrap();
        let changes = land(&mut doc, &proposed);
        assert_eq!(landing.observe(&doc, &changes), Observed::Landed);
        // The user types before the region: it moves, nothing else.
        let changes = edit(&mut doc, 0..0, "// ");
        assert_eq!(landing.observe(&doc, &changes), Observed::Unchanged);
        assert_eq!(doc.slice(landing.region()), "new body\n");
        assert_eq!(doc.text(), "// head\nnew body\ntail\n");
    }

    #[test]
    fn a_skipped_edit_is_noticed_on_the_next_version() {
        let mut doc = Document::new("aaa\nbbb\n", 1, "text");
        let mut landing = Landing::new(&doc, 4..8);
        let _stale = landing.propose(&doc, "BBB\n").unwrap();
        // The user typed first; the editor skipped our stale edit.
        let changes = edit(&mut doc, 0..0, "x");
        assert_eq!(landing.observe(&doc, &changes), Observed::Skipped);
        assert!(!landing.in_flight());
        let again = landing.propose(&doc, "BBB\n").unwrap();
        assert_eq!(again.replacement.range, 5..8);
        let changes = land(&mut doc, &again);
        assert_eq!(landing.observe(&doc, &changes), Observed::Landed);
        assert_eq!(doc.text(), "xaaa\nBBB\n");
    }

    #[test]
    fn an_edit_that_shortens_the_region_is_not_seen_in_typing_elsewhere() {
        let mut doc = Document::new("head\nx\ntail\n", 1, "text");
        let mut landing = Landing::new(&doc, 5..7);
        // The proposed text is a prefix of what the region shows.
        let _stale = landing.propose(&doc, "x").unwrap();
        let changes = edit(&mut doc, 12..12, "typed");
        assert_eq!(landing.observe(&doc, &changes), Observed::Skipped);
        assert_eq!(landing.shown(), "x\n");
    }

    #[test]
    fn text_that_only_looks_like_the_edit_in_flight_is_not_taken_for_it() {
        let mut doc = Document::new("head\nyé\ntail\n", 1, "text");
        let mut landing = Landing::new(&doc, 5..8);
        let _stale = landing.propose(&doc, "y").unwrap();
        // The user typed inside the region: it now starts with the text of the edit in flight.
        let changes = edit(&mut doc, 6..6, "typed");
        assert_eq!(landing.observe(&doc, &changes), Observed::UserEditedTarget);
    }

    #[test]
    fn one_edit_in_flight_at_a_time() {
        let doc = Document::new("a\n", 1, "text");
        let mut landing = Landing::new(&doc, 0..2);
        assert!(landing.propose(&doc, "b\n").is_some());
        assert_eq!(landing.propose(&doc, "c\n"), None);
    }

    #[test]
    fn typing_inside_the_target_stops_the_job() {
        let mut doc = Document::new("keep\ntarget\n", 1, "text");
        let mut landing = Landing::new(&doc, 5..12);
        let changes = edit(&mut doc, 7..7, "USER");
        assert_eq!(landing.observe(&doc, &changes), Observed::UserEditedTarget);
    }
}
