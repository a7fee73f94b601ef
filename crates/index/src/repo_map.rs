//! The repo map: the definitions most relevant to a focus, ranked by personalized PageRank over
//! the graph of files linked by references to definitions (the approach of Aider's repo map),
//! rendered as signature lines grouped by file and cut to a token budget.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::file_symbols::FileSymbols;

/// What the map should be about.
#[derive(Clone, Debug, Default)]
pub struct MapFocus {
    /// Files the user is editing.
    pub files: Vec<PathBuf>,
    /// Lines (0-based) the user is at, e.g. the selection.
    pub lines: Vec<(PathBuf, u32)>,
    /// Identifiers mentioned in the instruction.
    pub names: Vec<String>,
}

/// A rendered map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoMap {
    /// `path:` headers followed by `  line│ signature` rows, most relevant files first.
    pub text: String,
    /// The files shown, in the order they appear in `text`.
    pub files: Vec<PathBuf>,
    /// Estimated tokens of `text` (about four characters per token).
    pub tokens: usize,
}

const DAMPING: f64 = 0.85;
const ITERATIONS: usize = 30;
/// Signature lines are cut to this many characters: a minified one-line file must not eat the
/// whole budget with one row.
const MAX_SIGNATURE_CHARS: usize = 120;

/// Estimated tokens for `chars` characters.
pub(crate) fn estimate_tokens(chars: usize) -> usize {
    chars.div_ceil(4)
}

/// One file taking part in the ranking.
pub(crate) struct MapFile {
    pub(crate) path: PathBuf,
    pub(crate) display: String,
    pub(crate) symbols: Arc<FileSymbols>,
}

/// Ranks the definitions of `files` for `focus` and renders those that fit in `token_budget`.
/// `line_text` returns the text of a 0-based line of a file, if it can be read.
pub(crate) fn build(
    files: &[MapFile],
    focus: &MapFocus,
    token_budget: usize,
    line_text: &mut dyn FnMut(&Path, u32) -> Option<String>,
) -> RepoMap {
    let keep = token_budget + 1;
    let ranked = rank_definitions(files, focus, keep);
    render(files, &ranked, token_budget, line_text)
}

/// A definition's place: (file index, definition index), with its rank.
type RankedDefinition = ((usize, usize), f64);

/// The `keep` best definitions outside the focus files, best first, then the `keep` best in
/// them. `files` must be sorted by path.
pub(crate) fn rank_definitions(
    files: &[MapFile],
    focus: &MapFocus,
    keep: usize,
) -> Vec<RankedDefinition> {
    let count = files.len();
    if count == 0 {
        return Vec::new();
    }
    let focus_names: HashSet<&str> = focus.names.iter().map(String::as_str).collect();

    // Which files define each name.
    let mut definers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (file_index, file) in files.iter().enumerate() {
        let mut seen = HashSet::new();
        for definition in &file.symbols.definitions {
            if seen.insert(&*definition.name) {
                definers
                    .entry(&definition.name)
                    .or_default()
                    .push(file_index);
            }
        }
    }

    // A name referenced in A and defined in B links A to B. PageRank only needs the summed
    // weight per pair of files; the references themselves are kept per name for handing each
    // file's rank on to the definitions afterwards.
    let mut pair_weights: HashMap<(usize, usize), f64> = HashMap::new();
    let mut out_weight = vec![0.0f64; count];
    // (referencing file, name, weight of the link to each file defining the name)
    let mut references: Vec<(usize, &str, f64)> = Vec::new();
    let mut referenced: HashSet<&str> = HashSet::new();
    for (from, file) in files.iter().enumerate() {
        for (name, reference_count) in &file.symbols.references {
            let Some(targets) = definers.get(&**name) else {
                continue;
            };
            referenced.insert(name);
            let weight =
                name_weight(name, targets.len(), &focus_names) * f64::from(*reference_count).sqrt();
            for &to in targets {
                *pair_weights.entry((from, to)).or_default() += weight;
            }
            out_weight[from] += weight * targets.len() as f64;
            references.push((from, name, weight));
        }
    }
    // A definition nobody references still belongs in the map a little: a weak self-link, as
    // Aider does, lets it rank by its own file's importance.
    let mut self_links: HashMap<(usize, &str), f64> = HashMap::new();
    for (name, targets) in &definers {
        if !referenced.contains(name) {
            let weight = 0.1 * name_weight(name, targets.len(), &focus_names);
            for &file in targets {
                *pair_weights.entry((file, file)).or_default() += weight;
                out_weight[file] += weight;
                self_links.insert((file, name), weight);
            }
        }
    }
    let mut edges: Vec<(usize, usize, f64)> = pair_weights
        .into_iter()
        .map(|((from, to), weight)| (from, to, weight))
        .collect();
    // Summation order matters in floating point; a fixed order keeps maps reproducible.
    edges.sort_unstable_by_key(|&(from, to, _)| (from, to));

    let personalization = personalization(files, focus, &definers);
    let mut rank = personalization.clone();
    for _ in 0..ITERATIONS {
        let mut next = vec![0.0f64; count];
        let mut dangling = 0.0;
        for (file, &weight) in out_weight.iter().enumerate() {
            if weight == 0.0 {
                dangling += rank[file];
            }
        }
        for &(from, to, weight) in &edges {
            next[to] += DAMPING * rank[from] * weight / out_weight[from];
        }
        for file in 0..count {
            next[file] += (1.0 - DAMPING + DAMPING * dangling) * personalization[file];
        }
        let change: f64 = next
            .iter()
            .zip(&rank)
            .map(|(new, old)| (new - old).abs())
            .sum();
        rank = next;
        if change < 1e-10 {
            break;
        }
    }

    // Each file's rank flows to the names it references, in proportion to the link weights;
    // every file defining a name gets that name's share, as every definer got the link.
    let mut name_rank: HashMap<&str, f64> = HashMap::new();
    for &(from, name, weight) in &references {
        *name_rank.entry(name).or_default() += rank[from] * weight / out_weight[from];
    }
    let mut ranked: Vec<RankedDefinition> = Vec::new();
    for (file_index, file) in files.iter().enumerate() {
        for (definition_index, definition) in file.symbols.definitions.iter().enumerate() {
            let name = &*definition.name;
            let mut score = match name_rank.get(name) {
                Some(&score) => score,
                None => self_links.get(&(file_index, name)).map_or(0.0, |weight| {
                    rank[file_index] * weight / out_weight[file_index]
                }),
            };
            if focus_names.contains(name) {
                score *= 10.0;
            }
            ranked.push(((file_index, definition_index), score));
        }
    }
    // Deterministic order: by rank, then by path (`files` is sorted by path) and position.
    let order = |((left_file, left_def), left): &RankedDefinition,
                 ((right_file, right_def), right): &RankedDefinition| {
        right
            .total_cmp(left)
            .then_with(|| left_file.cmp(right_file))
            .then_with(|| left_def.cmp(right_def))
    };
    // Only the head can ever be rendered: every row costs at least two tokens, so a budget of
    // N tokens shows fewer than N rows. Selecting it first avoids sorting every definition of a
    // large workspace.
    // The focus files' own text is already in the prompt, so their signatures come after
    // every other file's and only use what the budget leaves.
    let focus_files: HashSet<&Path> = focus.files.iter().map(PathBuf::as_path).collect();
    let (mut others, mut focused): (Vec<RankedDefinition>, Vec<RankedDefinition>) = ranked
        .into_iter()
        .partition(|((file, _), _)| !focus_files.contains(files[*file].path.as_path()));
    for part in [&mut others, &mut focused] {
        if part.len() > keep {
            part.select_nth_unstable_by(keep, order);
            part.truncate(keep);
        }
        part.sort_unstable_by(order);
    }
    others.extend(focused);
    others
}

/// How much a reference to `name` says about relatedness. Like Aider: names the user mentioned
/// count most, long descriptive names more than short ones, private and ubiquitous names less.
fn name_weight(name: &str, definer_count: usize, focus_names: &HashSet<&str>) -> f64 {
    let mut weight = 1.0;
    if focus_names.contains(name) {
        weight *= 10.0;
    }
    let descriptive = name.contains('_') || name.chars().any(char::is_uppercase);
    if descriptive && name.chars().count() >= 8 {
        weight *= 10.0;
    }
    if name.starts_with('_') || name.chars().count() <= 2 {
        weight *= 0.1;
    }
    if definer_count > 5 {
        weight *= 0.1;
    }
    weight
}

fn personalization(
    files: &[MapFile],
    focus: &MapFocus,
    definers: &HashMap<&str, Vec<usize>>,
) -> Vec<f64> {
    let mut weights = vec![0.0f64; files.len()];
    let index_of: HashMap<&Path, usize> = files
        .iter()
        .enumerate()
        .map(|(index, file)| (file.path.as_path(), index))
        .collect();
    for path in &focus.files {
        if let Some(&index) = index_of.get(path.as_path()) {
            weights[index] += 1.0;
        }
    }
    for (path, _) in &focus.lines {
        if let Some(&index) = index_of.get(path.as_path()) {
            weights[index] += 1.0;
        }
    }
    for name in &focus.names {
        if let Some(targets) = definers.get(name.as_str()) {
            for &index in targets {
                weights[index] += 0.5 / targets.len() as f64;
            }
        }
    }
    let total: f64 = weights.iter().sum();
    if total == 0.0 {
        return vec![1.0 / files.len() as f64; files.len()];
    }
    weights.iter().map(|weight| weight / total).collect()
}

/// Renders definitions in the given order until the budget is used.
fn render(
    files: &[MapFile],
    ranked: &[RankedDefinition],
    token_budget: usize,
    line_text: &mut dyn FnMut(&Path, u32) -> Option<String>,
) -> RepoMap {
    let mut chosen: HashMap<usize, BTreeSet<(u32, String)>> = HashMap::new();
    let mut file_order: Vec<usize> = Vec::new();
    let mut total_chars = 0usize;
    for &((file_index, definition_index), _) in ranked {
        let file = &files[file_index];
        let definition = &file.symbols.definitions[definition_index];
        let rows = chosen.get(&file_index);
        if rows.is_some_and(|rows| {
            rows.iter()
                .any(|(line, _)| *line == definition.position.line())
        }) {
            continue;
        }
        let Some(text) = line_text(&file.path, definition.position.line()) else {
            continue;
        };
        let row = signature_row(definition.position.line(), &text);
        let mut added = row.chars().count() + 1;
        if rows.is_none() {
            added += file.display.chars().count() + 2;
        }
        if estimate_tokens(total_chars + added) > token_budget {
            // Something smaller further down may still fit, but once the budget is this close
            // to full, the rest is noise.
            if token_budget.saturating_sub(estimate_tokens(total_chars)) < 8 {
                break;
            }
            continue;
        }
        total_chars += added;
        if rows.is_none() {
            file_order.push(file_index);
        }
        chosen
            .entry(file_index)
            .or_default()
            .insert((definition.position.line(), row));
    }

    let mut text = String::with_capacity(total_chars);
    for &file_index in &file_order {
        text.push_str(&files[file_index].display);
        text.push_str(":\n");
        for (_, row) in &chosen[&file_index] {
            text.push_str(row);
            text.push('\n');
        }
    }
    RepoMap {
        tokens: estimate_tokens(text.chars().count()),
        text,
        files: file_order
            .iter()
            .map(|&index| files[index].path.clone())
            .collect(),
    }
}

/// `  12│ fn signature(…)` with a 1-based line number and the line cut to a sane width,
/// never inside a character or an accented letter or emoji sequence.
fn signature_row(line: u32, text: &str) -> String {
    let trimmed = text.trim_end();
    let signature = text::boundary::display_prefix(trimmed, MAX_SIGNATURE_CHARS);
    let ellipsis = if signature.len() < trimmed.len() {
        "…"
    } else {
        ""
    };
    format!("{:>6}│ {signature}{ellipsis}", line + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signature lines long enough to be cut, with the cut landing at every byte of a
    /// multi-byte tail (2-, 3- and 4-byte characters, a combining accent, a ZWJ emoji):
    /// the row keeps whole characters and sequences, and says it was cut.
    #[test]
    fn long_multi_byte_signatures_are_cut_whole() {
        let tail = "ñ—🎉e\u{301}👨\u{200D}👩中\r\n";
        // The cut after MAX_SIGNATURE_CHARS characters lands `shift` characters into the tail.
        for shift in 0..=tail.chars().count() {
            let padding = "a".repeat(MAX_SIGNATURE_CHARS - "fn ".len() - shift);
            let line = format!("fn {padding}{tail}");
            let row = signature_row(0, &line);
            let signature = row.split_once("│ ").expect("a row").1;
            let shown = signature.strip_suffix('…').unwrap_or(signature);
            assert!(line.starts_with(shown), "{line:?}: {row:?}");
            assert!(shown.chars().count() <= MAX_SIGNATURE_CHARS);
            assert_eq!(
                signature.ends_with('…'),
                shown.len() < line.trim_end().len()
            );
            assert!(
                !shown.ends_with('\u{200D}') && !shown.ends_with('e'),
                "{row:?}"
            );
        }
    }
}
