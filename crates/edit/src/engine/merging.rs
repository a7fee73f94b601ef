//! Landing a proposed whole text over the user's typing: the merge side of the engine.
//!
//! [`MergeLanding`] keeps three texts for its region:
//! - `expected`: what the region holds as far as the job knows (the last text it observed,
//!   or that text with the edit in flight applied once it showed up);
//! - `goal`: what the region should end up holding: the proposal three-way merged with the
//!   user's changes (see [`crate::merge`]);
//! - `without_baton`: what the region would hold had baton landed nothing: the text the agent
//!   started from plus the user's changes. Reverting lands this.
//!
//! Edits go out one minimal hunk at a time from `expected` towards the goal. When the region
//! changes in a way that is not the hunk in flight, the user typed: the difference between
//! `expected` and the region is the user's change, and it is merged into the goal and into
//! `without_baton` (a three-way merge with `expected` as the base). The two texts merged are
//! always close (they differ by one change), so line alignment is stable and landing always
//! converges: every landed hunk brings `expected` closer to a goal that moves only when the
//! user types. Where the user's change overlaps what baton still has to land (or, when
//! reverting, what baton landed), the user's text is kept and the overlap counts as a conflict.

use std::ops::Range;

use text::{AppliedChange, Document};

use crate::diff::{self, Replacement, common_prefix, common_suffix};
use crate::landing::Observed;
use crate::merge;

#[derive(Debug)]
pub(super) struct MergeLanding {
    /// The region in the document; the user's typing inside it widens or narrows it.
    region: Range<usize>,
    /// The text the proposals were computed from.
    base: String,
    expected: String,
    goal: Option<String>,
    without_baton: String,
    /// The version the edit in flight was computed against, and what the region holds once it
    /// lands.
    in_flight: Option<(i32, String)>,
    /// Proposed changes dropped because they overlapped the user's.
    conflicts: usize,
    /// Baton's landed changes the user edited, which reverting therefore keeps.
    revert_conflicts: usize,
    pub(super) source_finished: bool,
    reverting: bool,
}

/// What a merge job does next.
pub(super) enum MergeStep {
    Send(Replacement),
    /// Nothing to send until more text is proposed.
    Waiting,
    /// The region holds the goal; `conflicts` changes kept the user's text over baton's.
    Complete {
        conflicts: usize,
    },
}

impl MergeLanding {
    pub(super) fn new(document: &Document, region: Range<usize>, base: String) -> MergeLanding {
        let start = document.floor_boundary(region.start);
        let end = document.floor_boundary(region.end.max(start));
        let current = document.slice(start..end);
        MergeLanding {
            region: start..end,
            base,
            expected: current.clone(),
            goal: None,
            without_baton: current,
            in_flight: None,
            conflicts: 0,
            revert_conflicts: 0,
            source_finished: false,
            reverting: false,
        }
    }

    pub(super) fn conflicts(&self) -> usize {
        self.conflicts
    }

    /// A (new) proposal: the goal is the proposal with the user's changes since the base merged
    /// in, whatever baton landed of an earlier proposal.
    pub(super) fn propose(&mut self, theirs: &str) {
        let merged = merge::merge3(&self.base, &self.without_baton, theirs);
        self.conflicts = merged.conflicts.len();
        self.goal = Some(merged.text);
    }

    /// Turns the landing around: from now on it lands `without_baton`.
    pub(super) fn start_reverting(&mut self) {
        self.reverting = true;
    }

    pub(super) fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    pub(super) fn forget_in_flight(&mut self) {
        self.in_flight = None;
    }

    /// The next hunk towards the goal, marked in flight.
    pub(super) fn next_hunk(&mut self, document: &Document) -> MergeStep {
        let goal = if self.reverting {
            &self.without_baton
        } else {
            match &self.goal {
                Some(goal) => goal,
                None => return MergeStep::Waiting,
            }
        };
        match diff::minimal_edits(&self.expected, goal).into_iter().next() {
            Some(hunk) => {
                let after = diff::apply(&self.expected, std::slice::from_ref(&hunk));
                self.in_flight = Some((document.version(), after));
                MergeStep::Send(Replacement {
                    range: self.region.start + hunk.range.start..self.region.start + hunk.range.end,
                    text: hunk.text,
                })
            }
            None if self.reverting => MergeStep::Complete {
                conflicts: self.revert_conflicts,
            },
            None if self.source_finished => MergeStep::Complete {
                conflicts: self.conflicts,
            },
            None => MergeStep::Waiting,
        }
    }

    pub(super) fn observe(&mut self, document: &Document, changes: &[AppliedChange]) -> Observed {
        for change in changes {
            let start = map_region_start(change, self.region.start);
            let end = map_region_end(change, self.region.end).max(start);
            self.region = start..end;
        }
        self.region.end = document.floor_boundary(self.region.end);
        let now = document.slice(self.region.clone());
        let in_flight = self.in_flight.take();
        if let Some((_, after)) = &in_flight
            && *after == now
        {
            self.expected = now;
            return Observed::Landed;
        }
        if now == self.expected {
            return match in_flight {
                Some((version, _)) if document.version() > version => Observed::Skipped,
                Some(in_flight) => {
                    self.in_flight = Some(in_flight);
                    Observed::Unchanged
                }
                None => Observed::Unchanged,
            };
        }
        // The user changed the region (and the edit in flight may have landed with it, in the
        // same notification: then the user's change is measured from the text with the hunk).
        let before_user = match in_flight {
            Some((_, after)) if distance(&after, &now) < distance(&self.expected, &now) => after,
            _ => std::mem::take(&mut self.expected),
        };
        let user_view = merge::merge3(&before_user, &now, &self.without_baton);
        self.revert_conflicts += user_view.conflicts.len();
        self.without_baton = user_view.text;
        if let Some(goal) = &self.goal {
            let rebased = merge::merge3(&before_user, &now, goal);
            self.conflicts += rebased.conflicts.len();
            self.goal = Some(rebased.text);
        }
        self.expected = now;
        // Whatever the edit in flight did is in the text now; the next hunk starts from it.
        Observed::Landed
    }
}

/// A cheap measure of how far apart two texts are: the bytes outside their common prefix and
/// suffix.
fn distance(a: &str, b: &str) -> usize {
    let prefix = common_prefix(a, b);
    let suffix = common_suffix(&a[prefix..], &b[prefix..]);
    a.len() + b.len() - 2 * (prefix + suffix)
}

/// Where a merge region's start goes through a change: text inserted right at the start counts
/// as inside the region (baton's hunks begin there too).
fn map_region_start(change: &AppliedChange, start: usize) -> usize {
    if start <= change.start_byte {
        start
    } else if start >= change.old_end_byte {
        start - change.old_end_byte + change.new_end_byte
    } else {
        change.start_byte
    }
}

/// Where a merge region's end goes through a change: text inserted right at the end counts as
/// inside the region (baton's hunks may append there), text replaced after it does not.
fn map_region_end(change: &AppliedChange, end: usize) -> usize {
    let replaces_after = change.start_byte == end && change.old_end_byte > end;
    if end < change.start_byte || replaces_after {
        end
    } else if end >= change.old_end_byte {
        end - change.old_end_byte + change.new_end_byte
    } else {
        change.new_end_byte
    }
}
