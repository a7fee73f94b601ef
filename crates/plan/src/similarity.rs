//! Text comparison shared by the revision helpers and progress ticking: a normal form for
//! "the same text" and a similarity ratio for "the same step, reworded".

use similar::TextDiff;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Lowercased, with every run of whitespace collapsed to one space and the ends trimmed: edits
/// that only change case or spacing do not make a step a different step.
pub(crate) fn normal_form(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whitespace collapsed but case kept: what decides whether a matched step was *edited*.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// [`similarity_until`] with one pair's budget, for the tests.
#[cfg(test)]
fn similarity(a: &str, b: &str) -> f32 {
    similarity_until(a, b, Instant::now() + PAIR_BUDGET)
}

/// How long one comparison may take: long enough for any real step, short enough that a
/// pathological pair (two huge unrelated lines) cannot stall a request. Past the deadline
/// `similar` gives a coarser diff, which only makes the ratio lower.
const PAIR_BUDGET: Duration = Duration::from_millis(20);

/// How long fuzzy matching of a whole plan may take; pairs not compared by then are not
/// matched. Only pathological documents come near it.
const MATCH_BUDGET: Duration = Duration::from_millis(300);

/// How alike two texts are, from 0 (nothing shared) to 1 (same normal form): the mean of the
/// character and word diff ratios. Characters alone rate unrelated English sentences as half
/// alike (they share letters and short words); words alone punish a typo as a whole new word.
fn similarity_until(a: &str, b: &str, deadline: Instant) -> f32 {
    let (a, b) = (normal_form(a), normal_form(b));
    if a == b {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let chars = TextDiff::configure()
        .deadline(deadline)
        .diff_chars(&a, &b)
        .ratio();
    let words = TextDiff::configure()
        .deadline(deadline)
        .diff_words(&a, &b)
        .ratio();
    (chars + words) / 2.0
}

/// Pairs `left` items with `right` items: first equal normal forms, then the most similar
/// remaining pairs with similarity ≥ `threshold`, each item used at most once. Returns, for
/// each right index, the matched left index.
///
/// Fuzzy matching compares every pair, so it is skipped beyond [`MAX_FUZZY_PAIRS`] pairs (a
/// plan with thousands of steps is not one anyone edits by hand); exact matches still pair.
pub(crate) fn match_texts(left: &[&str], right: &[&str], threshold: f32) -> Vec<Option<usize>> {
    let mut matched = match_exactly(left, right);
    let mut used = vec![false; left.len()];
    for &l in matched.iter().flatten() {
        used[l] = true;
    }
    if left.len().saturating_mul(right.len()) > MAX_FUZZY_PAIRS {
        return matched;
    }
    let left_normal: Vec<String> = left.iter().map(|text| normal_form(text)).collect();
    let right_normal: Vec<String> = right.iter().map(|text| normal_form(text)).collect();
    let mut candidates = Vec::new();
    let deadline = Instant::now() + MATCH_BUDGET;
    'pairs: for (r, slot) in matched.iter().enumerate() {
        if slot.is_some() {
            continue;
        }
        for (l, &is_used) in used.iter().enumerate() {
            if is_used {
                continue;
            }
            let (a, b) = (&left_normal[l], &right_normal[r]);
            // A text a quarter the length of another is not the same step reworded (the char
            // ratio is at most 2·shorter/sum); ruling such pairs out by length keeps
            // pathological plans cheap without changing any real match.
            let (shorter, longer) = (a.len().min(b.len()), a.len().max(b.len()));
            if (2 * shorter) as f32 / ((shorter + longer).max(1) as f32) < threshold * 0.5 {
                continue;
            }
            let now = Instant::now();
            if now > deadline {
                break 'pairs;
            }
            let score = similarity_until(a, b, (now + PAIR_BUDGET).min(deadline));
            if score >= threshold {
                candidates.push((score, l, r));
            }
        }
    }
    // Best pairs first; ties go to the earlier positions so the result is deterministic.
    candidates.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    for (_, l, r) in candidates {
        if !used[l] && matched[r].is_none() {
            used[l] = true;
            matched[r] = Some(l);
        }
    }
    matched
}

/// Pairs items whose normal forms are equal, in order, each used at most once; for each right
/// index, the matched left index. Through a map, so a plan of many thousands of steps (a 1 MiB
/// document of one-word bullets) pairs in linear time.
pub(crate) fn match_exactly(left: &[&str], right: &[&str]) -> Vec<Option<usize>> {
    let mut by_text: HashMap<String, VecDeque<usize>> = HashMap::new();
    for (l, text) in left.iter().enumerate() {
        by_text.entry(normal_form(text)).or_default().push_back(l);
    }
    right
        .iter()
        .map(|text| {
            by_text
                .get_mut(&normal_form(text))
                .and_then(VecDeque::pop_front)
        })
        .collect()
}

/// Above this many step pairs, only exact matches are made.
pub(crate) const MAX_FUZZY_PAIRS: usize = 40_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_ignores_case_and_spacing() {
        assert_eq!(similarity("Add  a Test", "add a test"), 1.0);
        assert!(similarity("add a test for parse", "add tests for parse") >= 0.6);
        assert!(similarity("add a test", "rewrite the server") < 0.6);
        assert!(similarity("read the config code", "add the alias") < 0.5);
        assert!(similarity("Step 3: update the docs", "Update the docs") >= 0.6);
        assert_eq!(similarity("", "x"), 0.0);
    }

    #[test]
    fn match_prefers_exact_then_best() {
        let left = ["write the parser", "add tests", "update the README"];
        let right = ["Update the README", "write the parsers", "something new"];
        assert_eq!(
            match_texts(&left, &right, 0.6),
            vec![Some(2), Some(0), None]
        );
    }
}
