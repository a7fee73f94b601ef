//! Comparing versions of a plan, for refinement: what the user changed in the document baton
//! wrote ([`user_changes`], [`same`]), and how a plan the model revised keeps what the user put
//! into theirs: notes, answers, ticks ([`carry_over`]).
//!
//! Steps and questions are matched by text, not position, because users reorder them: first
//! equal text (ignoring case and spacing), then the most similar remaining text, each used at
//! most once.

use crate::similarity::{collapse_whitespace, match_exactly, match_texts, normal_form};
use crate::{Plan, StepState};
use std::collections::HashSet;

/// How similar a revised step's text must be to a user's step to count as the same step.
const STEP_SIMILARITY: f32 = 0.6;

/// Puts what the user wrote into their plan onto the model's revision of it: each revised step
/// that matches a user step gets that step's notes (after its own, without duplicates) and, if
/// the user ticked it or marked it in progress, that state; a revised question that matches a
/// user's question without an answer of its own gets the user's answer. Sections and a preamble
/// the revision dropped are kept from the user's plan, since the model has no business deleting
/// them. Notes of steps the revision removed go with them.
pub fn carry_over(user: &Plan, mut revised: Plan) -> Plan {
    let user_texts: Vec<&str> = user.steps.iter().map(|step| step.text.as_str()).collect();
    let revised_texts: Vec<&str> = revised
        .steps
        .iter()
        .map(|step| step.text.as_str())
        .collect();
    let matches = match_texts(&user_texts, &revised_texts, STEP_SIMILARITY);
    for (step, matched) in revised.steps.iter_mut().zip(matches) {
        let Some(user_step) = matched.map(|index| &user.steps[index]) else {
            continue;
        };
        let mut seen: HashSet<String> = step.notes.iter().map(|own| normal_form(own)).collect();
        for note in &user_step.notes {
            if seen.insert(normal_form(note)) {
                step.notes.push(note.clone());
            }
        }
        // The user's ticks win: a model rewriting the document tends to reset every box.
        if user_step.state == StepState::Done
            || (user_step.state == StepState::InProgress && step.state == StepState::Todo)
        {
            step.state = user_step.state;
        }
    }

    let user_questions: Vec<&str> = user.questions.iter().map(|q| q.text.as_str()).collect();
    let revised_questions: Vec<&str> = revised.questions.iter().map(|q| q.text.as_str()).collect();
    let matches = match_texts(&user_questions, &revised_questions, STEP_SIMILARITY);
    for (question, matched) in revised.questions.iter_mut().zip(matches) {
        if let Some(user_question) = matched.map(|index| &user.questions[index])
            && question.answer.trim().is_empty()
        {
            question.answer = user_question.answer.clone();
        }
    }

    let kept = match_exactly(&headings(&revised), &headings(user));
    for (section, matched) in user.extra.iter().zip(kept) {
        if matched.is_none() {
            revised.extra.push(section.clone());
        }
    }
    if revised.preamble.trim().is_empty() {
        revised.preamble = user.preamble.clone();
    }
    revised
}

/// True when `after` says nothing `before` does not: no change [`user_changes`] would list.
pub fn same(before: &Plan, after: &Plan) -> bool {
    user_changes(before, after).is_empty()
}

/// What the user changed between the plan baton last wrote (`before`) and the user's version
/// (`after`), one readable sentence each, for the model's refine request and for the user.
/// Changes of case or spacing only are not changes. Step numbers are the user's (`after`),
/// except for deleted steps, which have none.
pub fn user_changes(before: &Plan, after: &Plan) -> Vec<String> {
    let mut changes = Vec::new();
    if collapse_whitespace(&before.title) != collapse_whitespace(&after.title) {
        changes.push(format!(
            "renamed the plan: {} → {}",
            quote(&before.title),
            quote(&after.title)
        ));
    }
    if collapse_whitespace(&before.preamble) != collapse_whitespace(&after.preamble) {
        changes.push(format!(
            "changed the text above the goal to: {}",
            quote(&after.preamble)
        ));
    }
    if collapse_whitespace(&before.goal) != collapse_whitespace(&after.goal) {
        changes.push(format!("changed the goal to: {}", quote(&after.goal)));
    }
    question_changes(before, after, &mut changes);
    step_changes(before, after, &mut changes);
    section_changes(before, after, &mut changes);
    changes
}

fn question_changes(before: &Plan, after: &Plan, changes: &mut Vec<String>) {
    let before_texts: Vec<&str> = before.questions.iter().map(|q| q.text.as_str()).collect();
    let after_texts: Vec<&str> = after.questions.iter().map(|q| q.text.as_str()).collect();
    let matches = match_texts(&before_texts, &after_texts, STEP_SIMILARITY);
    let kept: HashSet<usize> = matches.iter().flatten().copied().collect();
    for (index, old) in before.questions.iter().enumerate() {
        if !kept.contains(&index) {
            changes.push(format!("deleted question: {}", quote(&old.text)));
        }
    }
    for (index, (question, matched)) in after.questions.iter().zip(&matches).enumerate() {
        let number = index + 1;
        let Some(old) = matched.map(|old| &before.questions[old]) else {
            let mut change = format!("added question {number}: {}", quote(&question.text));
            if !question.answer.trim().is_empty() {
                change.push_str(&format!(", answered: {}", quote(&question.answer)));
            }
            changes.push(change);
            continue;
        };
        if collapse_whitespace(&old.text) != collapse_whitespace(&question.text) {
            changes.push(format!(
                "edited question {number}: {} → {}",
                quote(&old.text),
                quote(&question.text)
            ));
        }
        let (old_answer, answer) = (
            collapse_whitespace(&old.answer),
            collapse_whitespace(&question.answer),
        );
        if old_answer == answer {
            continue;
        }
        let text = quote(&question.text);
        changes.push(if old_answer.is_empty() {
            format!(
                "answered question {number} ({text}): {}",
                quote(&question.answer)
            )
        } else if answer.is_empty() {
            format!("cleared the answer to question {number} ({text})")
        } else {
            format!(
                "changed the answer to question {number} ({text}): {}",
                quote(&question.answer)
            )
        });
    }
}

fn step_changes(before: &Plan, after: &Plan, changes: &mut Vec<String>) {
    let before_texts: Vec<&str> = before.steps.iter().map(|step| step.text.as_str()).collect();
    let after_texts: Vec<&str> = after.steps.iter().map(|step| step.text.as_str()).collect();
    let matches = match_texts(&before_texts, &after_texts, STEP_SIMILARITY);
    let kept: HashSet<usize> = matches.iter().flatten().copied().collect();
    for (index, old) in before.steps.iter().enumerate() {
        if !kept.contains(&index) {
            changes.push(format!("deleted step: {}", quote(&old.text)));
        }
    }
    let kept_in_place: HashSet<usize> = longest_increasing(&matches).into_iter().collect();
    for (index, (step, matched)) in after.steps.iter().zip(&matches).enumerate() {
        let number = index + 1;
        let Some(old_index) = *matched else {
            changes.push(format!("added step {number}: {}", quote(&step.text)));
            continue;
        };
        let old = &before.steps[old_index];
        let text = quote(&step.text);
        if !kept_in_place.contains(&index) {
            changes.push(format!(
                "moved step {text} from {} to {number}",
                old_index + 1
            ));
        }
        if collapse_whitespace(&old.text) != collapse_whitespace(&step.text) {
            changes.push(format!(
                "edited step {number}: {} → {text}",
                quote(&old.text)
            ));
        }
        if old.files != step.files {
            changes.push(format!(
                "changed the files of step {number} ({text}) to: {}",
                if step.files.is_empty() {
                    "none".to_owned()
                } else {
                    step.files.join(", ")
                }
            ));
        }
        let old_notes: HashSet<String> = old
            .notes
            .iter()
            .map(|note| collapse_whitespace(note))
            .collect();
        let new_notes: HashSet<String> = step
            .notes
            .iter()
            .map(|note| collapse_whitespace(note))
            .collect();
        for note in &step.notes {
            let normal = &collapse_whitespace(note);
            if !old_notes.contains(normal) {
                changes.push(format!(
                    "added a note to step {number} ({text}): {}",
                    quote(note)
                ));
            }
        }
        for note in &old.notes {
            let normal = &collapse_whitespace(note);
            if !new_notes.contains(normal) {
                changes.push(format!(
                    "removed a note from step {number} ({text}): {}",
                    quote(note)
                ));
            }
        }
        if old.state != step.state {
            changes.push(match step.state {
                StepState::Done => format!("ticked step {number} ({text}) as done"),
                StepState::InProgress => format!("marked step {number} ({text}) in progress"),
                StepState::Todo => format!("unticked step {number} ({text})"),
            });
        }
    }
}

fn section_changes(before: &Plan, after: &Plan, changes: &mut Vec<String>) {
    let matches = match_exactly(&headings(before), &headings(after));
    let kept: HashSet<usize> = matches.iter().flatten().copied().collect();
    for (section, matched) in after.extra.iter().zip(&matches) {
        match matched.map(|index| &before.extra[index]) {
            None => changes.push(format!(
                "added a section ## {}: {}",
                section.heading,
                quote(&section.body)
            )),
            Some(old) if collapse_whitespace(&old.body) != collapse_whitespace(&section.body) => {
                changes.push(format!(
                    "edited the section ## {}: {}",
                    section.heading,
                    quote(&section.body)
                ))
            }
            Some(_) => {}
        }
    }
    for (index, old) in before.extra.iter().enumerate() {
        if !kept.contains(&index) {
            changes.push(format!("removed the section ## {}", old.heading));
        }
    }
}

fn headings(plan: &Plan) -> Vec<&str> {
    plan.extra
        .iter()
        .map(|section| section.heading.as_str())
        .collect()
}

/// The positions (in `matches`) of the longest run of matched items whose old positions
/// increase: the steps that stayed in order. The other matched steps are the ones the user
/// moved; reporting only those keeps one moved step from reading as every step moving.
fn longest_increasing(matches: &[Option<usize>]) -> Vec<usize> {
    let items: Vec<(usize, usize)> = matches
        .iter()
        .enumerate()
        .filter_map(|(position, old)| old.map(|old| (position, old)))
        .collect();
    // O(n²) is fine at plan sizes and simpler than patience sorting; beyond a few thousand
    // steps nothing is reported as moved rather than spending quadratic time.
    if items.len() > 2_000 {
        return items.iter().map(|&(position, _)| position).collect();
    }
    let mut length = vec![1usize; items.len()];
    let mut previous = vec![usize::MAX; items.len()];
    for i in 0..items.len() {
        for j in 0..i {
            // On a tie, keep the run through the earlier original steps in place: when one
            // step is dragged up past others, it is that step which reads as moved.
            let longer = length[j] + 1 > length[i];
            let tie_but_earlier = length[j] + 1 == length[i]
                && previous[i] != usize::MAX
                && items[j].1 < items[previous[i]].1;
            if items[j].1 < items[i].1 && (longer || tie_but_earlier) {
                length[i] = length[j] + 1;
                previous[i] = j;
            }
        }
    }
    let mut result = Vec::new();
    let mut at = (0..items.len()).max_by_key(|&i| (length[i], std::cmp::Reverse(items[i].1)));
    while let Some(i) = at {
        result.push(items[i].0);
        at = (previous[i] != usize::MAX).then_some(previous[i]);
    }
    result.reverse();
    result
}

/// A text in quotes, on one line, clipped: enough to recognize it in a list of changes.
fn quote(text: &str) -> String {
    const LIMIT: usize = 200;
    let text = collapse_whitespace(text);
    match text.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("\"{}…\"", &text[..end]),
        None => format!("\"{text}\""),
    }
}

#[cfg(test)]
mod tests;
