//! Text comparison shared by the revision helpers and progress ticking: a normal form for
//! "the same text" and a similarity ratio for "the same step, reworded".

use similar::TextDiff;
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

/// How alike two texts are, from 0 (nothing shared) to 1 (same normal form): the mean of the
/// character and word diff ratios. Characters alone rate unrelated English sentences as half
/// alike (they share letters and short words); words alone punish a typo as a whole new word.
pub(crate) fn similarity(a: &str, b: &str) -> f32 {
    let (a, b) = (normal_form(a), normal_form(b));
    if a == b {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    // A deadline keeps a pathological pair (two huge unrelated lines) from stalling a request;
    // past it `similar` gives a coarser diff, which only makes the ratio lower.
    let deadline = Instant::now() + Duration::from_millis(20);
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
    let mut matched: Vec<Option<usize>> = vec![None; right.len()];
    let mut used = vec![false; left.len()];
    let left_normal: Vec<String> = left.iter().map(|text| normal_form(text)).collect();
    let right_normal: Vec<String> = right.iter().map(|text| normal_form(text)).collect();
    for (r, right_text) in right_normal.iter().enumerate() {
        if let Some(l) = (0..left.len()).find(|&l| !used[l] && &left_normal[l] == right_text) {
            used[l] = true;
            matched[r] = Some(l);
        }
    }
    if left.len().saturating_mul(right.len()) > MAX_FUZZY_PAIRS {
        return matched;
    }
    let mut candidates = Vec::new();
    for (r, slot) in matched.iter().enumerate() {
        if slot.is_some() {
            continue;
        }
        for (l, &is_used) in used.iter().enumerate() {
            if is_used {
                continue;
            }
            let score = similarity(&left_normal[l], &right_normal[r]);
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
