//! Fuzzy symbol search for `workspace/symbol`: subsequence matching ranked by match quality,
//! then by closeness to what the user is working on.

use std::path::{Path, PathBuf};

use crate::file_symbols::{Definition, char_mask};

/// What the editor is looking at, used to break ties between equally good matches.
#[derive(Clone, Debug, Default)]
pub struct SearchContext {
    pub open_files: Vec<PathBuf>,
    pub current_file: Option<PathBuf>,
}

/// How well a name matches, best last so that the derived order ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MatchCategory {
    Subsequence = 1,
    WordBoundary = 2,
    Prefix = 3,
    Exact = 4,
}

/// A lowercased query with its prefilter mask, prepared once per search.
pub(crate) struct PreparedQuery<'a> {
    pub(crate) original: &'a str,
    pub(crate) lowercase: String,
    pub(crate) mask: u64,
}

impl<'a> PreparedQuery<'a> {
    pub(crate) fn new(query: &'a str) -> PreparedQuery<'a> {
        let lowercase = query.trim().to_lowercase();
        PreparedQuery {
            original: query.trim(),
            mask: char_mask(&lowercase),
            lowercase,
        }
    }

    /// Whether `definition` has every letter, digit and `_` of the query: a cheap test that
    /// rules out most names before anything else is computed for them.
    pub(crate) fn may_match(&self, definition: &Definition) -> bool {
        self.mask & !definition.char_mask == 0
    }

    /// The category of the match and whether the case matched exactly too, or `None`.
    #[cfg(test)]
    pub(crate) fn matches(&self, definition: &Definition) -> Option<(MatchCategory, bool)> {
        self.matches_at_least(definition, None)
    }

    /// Like [`PreparedQuery::matches`], but gives up early (with `None`) on names that cannot
    /// reach `minimum`: the expensive fuzzy part only runs when it could matter.
    pub(crate) fn matches_at_least(
        &self,
        definition: &Definition,
        minimum: Option<MatchCategory>,
    ) -> Option<(MatchCategory, bool)> {
        if !self.may_match(definition) {
            return None;
        }
        let name = &*definition.lowercase;
        let query = self.lowercase.as_str();
        if query.is_empty() {
            return Some((MatchCategory::Subsequence, false));
        }
        if name == query {
            return Some((MatchCategory::Exact, &*definition.name == self.original));
        }
        if name.starts_with(query) {
            return Some((
                MatchCategory::Prefix,
                definition.name.starts_with(self.original),
            ));
        }
        if minimum.is_some_and(|minimum| minimum > MatchCategory::WordBoundary) {
            return None;
        }
        if definition.name.is_ascii() && query.is_ascii() && self.original.len() == query.len() {
            return ascii_fuzzy_match(
                definition.name.as_bytes(),
                name.as_bytes(),
                query.as_bytes(),
                self.original.as_bytes(),
            );
        }
        let positions = subsequence_positions(&definition.name, query)?;
        let case_matches = positions
            .iter()
            .zip(self.original.chars())
            .all(|(&(_, original), wanted)| original == wanted);
        let starts = word_starts(&definition.name);
        // A "word" match is made of runs that each begin at a word start: `wsi` for
        // `WorkspaceSymbolIndex`, `get_na` for `get_name`.
        let mut previous: Option<usize> = None;
        let mut word_match = true;
        for &(index, _) in &positions {
            let continues_run = previous.is_some_and(|previous| previous + 1 == index);
            if !continues_run && !starts.contains(&index) {
                word_match = false;
                break;
            }
            previous = Some(index);
        }
        let category = if word_match {
            MatchCategory::WordBoundary
        } else {
            MatchCategory::Subsequence
        };
        Some((category, case_matches))
    }
}

/// Matches the lowercased `query` against `name` as a subsequence, returning (char index, char)
/// of each matched character of `name`. Prefers matching at word starts, falling back to the
/// leftmost match when that fails.
fn subsequence_positions(name: &str, query: &str) -> Option<Vec<(usize, char)>> {
    let characters: Vec<char> = name.chars().collect();
    let lowered: Vec<char> = characters
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let starts = word_starts(name);
    let wanted: Vec<char> = query.chars().collect();
    let attempt = |prefer_word_starts: bool| -> Option<Vec<(usize, char)>> {
        let mut positions = Vec::with_capacity(wanted.len());
        let mut next = 0;
        for (query_index, &want) in wanted.iter().enumerate() {
            let continues = positions.last().is_some_and(|&(last, _): &(usize, char)| {
                lowered.get(last + 1) == Some(&want) && query_index > 0
            });
            let found = if prefer_word_starts && !continues {
                (next..lowered.len())
                    .find(|&index| lowered[index] == want && starts.contains(&index))
                    .or_else(|| (next..lowered.len()).find(|&index| lowered[index] == want))
            } else {
                (next..lowered.len()).find(|&index| lowered[index] == want)
            }?;
            positions.push((found, characters[found]));
            next = found + 1;
        }
        Some(positions)
    };
    attempt(true).or_else(|| attempt(false))
}

/// Char indices where a word starts: the first char, after `_`, `-`, `.`, `:` or a space, at an
/// upper-case letter after a lower-case one or a digit, and at a letter after a digit.
fn word_starts(name: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut previous: Option<char> = None;
    for (index, character) in name.chars().enumerate() {
        let is_start = match previous {
            None => true,
            Some(previous) => {
                matches!(previous, '_' | '-' | '.' | ':' | ' ' | '$')
                    && !matches!(character, '_' | '-' | '.' | ':' | ' ')
                    || (character.is_uppercase()
                        && (previous.is_lowercase() || previous.is_ascii_digit()))
                    || (character.is_alphabetic() && previous.is_ascii_digit())
            }
        };
        if is_start {
            starts.push(index);
        }
        previous = Some(character);
    }
    starts
}

/// Per-file tie-breakers, computed once per file rather than per symbol.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileBonus {
    pub(crate) open: bool,
    /// Number of leading path components shared with the current file (capped at 9).
    pub(crate) nearness: u32,
}

impl FileBonus {
    /// Nearness is counted below the workspace `root`, so that a deep checkout path does not
    /// use up the cap before the workspace's own directories are compared.
    pub(crate) fn new(path: &Path, context: &SearchContext, root: &Path) -> FileBonus {
        let open = context.open_files.iter().any(|open| open == path);
        let nearness = context.current_file.as_deref().map_or(0, |current| {
            let path = path.strip_prefix(root).unwrap_or(path);
            let current = current.strip_prefix(root).unwrap_or(current);
            path.components()
                .zip(current.components())
                .take_while(|(left, right)| left == right)
                .count()
        });
        FileBonus {
            open,
            nearness: nearness.min(9) as u32,
        }
    }
}

/// The category a [`score`] was computed with.
pub(crate) fn category_of_score(score: f32) -> MatchCategory {
    match (score / 100.0) as u32 {
        4.. => MatchCategory::Exact,
        3 => MatchCategory::Prefix,
        2 => MatchCategory::WordBoundary,
        _ => MatchCategory::Subsequence,
    }
}

/// A single number that orders matches exactly as the ranking rules say: category, then case,
/// then open files, then nearby files, then shorter names. Each term's range is smaller than
/// the step of the term before it.
pub(crate) fn score(
    category: MatchCategory,
    case_matches: bool,
    bonus: FileBonus,
    name_chars: usize,
) -> f32 {
    let length_term = 1.0 / (1.0 + name_chars as f32); // in (0, 1)
    (category as u32 as f32) * 100.0
        + if case_matches { 40.0 } else { 0.0 }
        + if bonus.open { 20.0 } else { 0.0 }
        + bonus.nearness as f32 * 2.0
        + length_term
}

/// The common case, ASCII names and queries, without allocating: this runs for every name that
/// passes the mask prefilter, which for a one- or two-letter query is most of the workspace.
/// Same rules as the general path: prefer word starts, fall back to the leftmost match.
fn ascii_fuzzy_match(
    name: &[u8],
    lowercase: &[u8],
    query_lowercase: &[u8],
    query: &[u8],
) -> Option<(MatchCategory, bool)> {
    let mut remaining = query_lowercase.iter().peekable();
    for byte in lowercase {
        if remaining.peek() == Some(&byte) {
            remaining.next();
        }
    }
    if remaining.peek().is_some() {
        return None;
    }
    let attempt = |prefer_word_starts: bool| -> Option<(bool, bool)> {
        let (mut next, mut last, mut word_match, mut case_matches) =
            (0usize, None::<usize>, true, true);
        for (query_index, &want) in query_lowercase.iter().enumerate() {
            let continues = last.is_some_and(|last| lowercase.get(last + 1) == Some(&want));
            let leftmost = || (next..lowercase.len()).find(|&index| lowercase[index] == want);
            let found = if prefer_word_starts && !continues {
                (next..lowercase.len())
                    .find(|&index| lowercase[index] == want && is_ascii_word_start(name, index))
                    .or_else(leftmost)
            } else {
                leftmost()
            }?;
            let in_run = last.is_some_and(|last| last + 1 == found);
            if !in_run && !is_ascii_word_start(name, found) {
                word_match = false;
            }
            if name[found] != query[query_index] {
                case_matches = false;
            }
            last = Some(found);
            next = found + 1;
        }
        Some((word_match, case_matches))
    };
    let (word_match, case_matches) = attempt(true).or_else(|| attempt(false))?;
    let category = if word_match {
        MatchCategory::WordBoundary
    } else {
        MatchCategory::Subsequence
    };
    Some((category, case_matches))
}

/// [`word_starts`] for one position of an ASCII name.
fn is_ascii_word_start(name: &[u8], index: usize) -> bool {
    let Some(previous) = index.checked_sub(1).map(|previous| name[previous]) else {
        return true;
    };
    let character = name[index];
    let separator = |byte: u8| matches!(byte, b'_' | b'-' | b'.' | b':' | b' ');
    (matches!(previous, b'_' | b'-' | b'.' | b':' | b' ' | b'$') && !separator(character))
        || (character.is_ascii_uppercase()
            && (previous.is_ascii_lowercase() || previous.is_ascii_digit()))
        || (character.is_ascii_alphabetic() && previous.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_symbols::Definition;
    use syntax::SymbolKind;

    /// The allocation-free ASCII path and the general path agree on every name and query.
    #[test]
    fn ascii_and_general_matching_agree() {
        let names = [
            "parse",
            "parse_file",
            "ParseError",
            "reparse",
            "HTTPServer",
            "get2D",
            "a_b_c",
            "x",
            "WorkspaceSymbolIndex",
            "__init__",
            "$jq",
        ];
        let queries = [
            "p", "pa", "pf", "PE", "pe", "rse", "hs", "http", "2d", "gd", "abc", "x", "wsi", "WSI",
            "init", "jq", "zz",
        ];
        for name in names {
            let definition =
                Definition::new(name, SymbolKind::Function, Default::default(), 0..0, 0..0);
            for query in queries {
                let prepared = PreparedQuery::new(query);
                let fast = prepared.matches(&definition);
                let slow = (prepared.mask & !definition.char_mask == 0)
                    .then(|| general_match(&prepared, &definition))
                    .flatten();
                let fast = match fast {
                    Some((MatchCategory::Exact | MatchCategory::Prefix, _)) => continue,
                    other => other,
                };
                assert_eq!(fast, slow, "{query:?} against {name:?}");
            }
        }
    }

    fn general_match(
        query: &PreparedQuery,
        definition: &Definition,
    ) -> Option<(MatchCategory, bool)> {
        let positions = subsequence_positions(&definition.name, &query.lowercase)?;
        let case_matches = positions
            .iter()
            .zip(query.original.chars())
            .all(|(&(_, original), wanted)| original == wanted);
        let starts = word_starts(&definition.name);
        let mut previous: Option<usize> = None;
        let mut word_match = true;
        for &(index, _) in &positions {
            let continues_run = previous.is_some_and(|previous| previous + 1 == index);
            if !continues_run && !starts.contains(&index) {
                word_match = false;
            }
            previous = Some(index);
        }
        Some((
            if word_match {
                MatchCategory::WordBoundary
            } else {
                MatchCategory::Subsequence
            },
            case_matches,
        ))
    }
}
