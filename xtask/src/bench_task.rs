//! `cargo xtask bench-task`: the costs an agent task adds before and after the agent works.
//!
//! Shadow part (this file): on the corpus, the source files in baton's languages of the
//! tree `bench-index` fetches into `.bench/corpus/` (3,239 files, 24.9 MB: exactly what
//! `bench-index` indexes), copied into `.bench/task/sources/` and committed once into a git
//! repository in `.bench/task/sources-repo/` so that `git worktree add` can be compared, and
//! then (for scale, without goals, `--whole-tree-runs` times) on the whole fetched tree (7,531
//! files, 60.8 MB: translations, source maps and documentation around the sources, in
//! `.bench/task/repo/`), it measures in this release process:
//!
//! - a cold shadow ([`harness::shadow::Shadow::prepare`] into an empty directory), against
//!   `cp -a` of the same tree and `git worktree add` of the same commit, alternating the three
//!   so drift hits them alike;
//! - a re-sync after one workspace file changed (the next task on the same workspace);
//! - [`harness::shadow::Shadow::changes`] after the agent changed one file, and with nothing
//!   changed (the cost of the call the server makes after every file-change event).
//!
//! Landing latency (from the agent's change to the edit in the editor) is measured by
//! [`landing_latency`] (the landing part, in `bench_landing`). Results are printed and
//! written into `docs/benchmarks.md` between the `bench-task` markers. Speed is measured, never
//! asserted.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use harness::changes::{Change, Limits};
use harness::shadow::{Shadow, ShadowOptions};

use crate::bench_index::corpus;
use crate::bench_index::timing::{Spread, milliseconds, percentile, spread_milliseconds};
use crate::measure::{git_revision, load_average, machine_description, today, write_doc_section};

/// How many `changes()` calls are timed per case.
const CHANGES_CALLS: usize = 200;

/// The goals.
const COLD_GOAL_MS: f64 = 1000.0;
const RESYNC_GOAL_MS: f64 = 50.0;

pub struct Options {
    pub corpus: Option<PathBuf>,
    pub runs: usize,
    /// Runs of the cold copies on the whole corpus tree (0: not measured).
    pub whole_tree_runs: usize,
    /// Measure the shadow only: no landing rows, nothing written to `docs/benchmarks.md`.
    pub shadow_only: bool,
    pub arguments: Vec<String>,
}

pub const USAGE: &str =
    "cargo xtask bench-task [--corpus DIR] [--runs N] [--whole-tree-runs N] [--shadow-only]";

impl Options {
    pub fn parse(arguments: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            corpus: None,
            runs: 5,
            whole_tree_runs: 3,
            shadow_only: false,
            arguments: arguments.to_vec(),
        };
        let mut rest = arguments.iter();
        let count = |value: Option<&String>, name: &str, zero_allowed: bool| {
            value
                .and_then(|value| value.parse::<usize>().ok())
                .filter(|value| zero_allowed || *value > 0)
                .with_context(|| format!("{name} needs a number"))
        };
        while let Some(argument) = rest.next() {
            match argument.as_str() {
                "--corpus" => {
                    options.corpus = Some(PathBuf::from(
                        rest.next().context("--corpus needs a directory")?,
                    ));
                }
                "--runs" => options.runs = count(rest.next(), "--runs", false)?,
                "--whole-tree-runs" => {
                    options.whole_tree_runs = count(rest.next(), "--whole-tree-runs", true)?;
                }
                "--shadow-only" => options.shadow_only = true,
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        Ok(options)
    }
}

/// One row of the report.
pub struct Row {
    pub measure: String,
    pub baton: String,
    pub cp: String,
    pub worktree: String,
    pub goal: String,
    pub met: String,
}

/// One tree the shadow rows are measured on.
struct Tree {
    /// What the rows call it.
    label: &'static str,
    /// The directory `cp -a` copies.
    root: PathBuf,
    /// The same files committed into a git repository: the workspace.
    repo: PathBuf,
    files: usize,
    bytes: u64,
    /// Whether the goals apply to it.
    goals: bool,
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    let load_at_start = load_average(" ");
    let bench = std::path::absolute(root.join(".bench"))?;
    let scratch = bench.join("task");
    std::fs::create_dir_all(&scratch)?;
    let corpus_directory = options
        .corpus
        .clone()
        .unwrap_or_else(|| bench.join("corpus"));
    println!("bench-task: corpus in {}", corpus_directory.display());
    let corpus = corpus::prepare(&corpus_directory, &scratch)?;
    let corpus_root = std::path::absolute(&corpus.root)?;

    // The corpus is what `bench-index` indexes: the corpus' source files in baton's
    // languages (3,239 files, 24.9 MB). The whole tree around them (translations, source maps,
    // documentation) is 2.4 times that; it is measured after, without goals.
    let sources_root = source_tree(&corpus, &scratch.join("sources"))?;
    let mut trees = Vec::new();
    let (files, bytes) = tree_size(&sources_root)?;
    trees.push(Tree {
        label: "the issue's corpus",
        repo: git_repository(&sources_root, &scratch.join("sources-repo"))?,
        root: sources_root,
        files,
        bytes,
        goals: true,
    });
    if options.whole_tree_runs > 0 {
        let (files, bytes) = tree_size(&corpus_root)?;
        trees.push(Tree {
            label: "the whole corpus tree",
            repo: git_repository(&corpus_root, &scratch.join("repo"))?,
            root: corpus_root,
            files,
            bytes,
            goals: false,
        });
    }
    let mut rows = Vec::new();
    let mut shadow_files = Vec::new();
    for tree in &trees {
        println!(
            "bench-task: {}: {} files, {:.1} MB",
            tree.label,
            tree.files,
            tree.bytes as f64 / 1e6
        );
        let runs = if tree.goals {
            options.runs
        } else {
            options.whole_tree_runs
        };
        let (tree_rows, files) = shadow_rows(tree, &scratch, runs)?;
        rows.extend(tree_rows);
        shadow_files.push(files);
    }
    if options.shadow_only {
        for row in &rows {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                row.measure, row.baton, row.cp, row.worktree, row.goal, row.met
            );
        }
        return Ok(());
    }
    rows.extend(landing_latency(root, &trees[0].repo)?);

    let report = render(
        root,
        options,
        &rows,
        &trees,
        &shadow_files,
        (load_at_start, load_average(" ")),
    );
    println!("\n{report}");
    let doc = root.join("docs/benchmarks.md");
    write_doc_section(&doc, "bench-task", &report)?;
    println!("written to {}", doc.display());
    Ok(())
}

/// The shadow rows for one tree (cold creation against `cp -a` and `git worktree add`, re-sync,
/// `changes()`) and how many files the shadow holds.
fn shadow_rows(tree: &Tree, scratch: &Path, runs: usize) -> anyhow::Result<(Vec<Row>, usize)> {
    let repo = &tree.repo;
    let shadow_dir = scratch.join("state/shadows");
    let options_for = |dir: &Path| ShadowOptions {
        workspace: repo.clone(),
        dir: dir.to_path_buf(),
        overlay: Vec::new(),
        exclude: Arc::new(|_: &Path| false),
        limits: Limits::default(),
    };
    let cp_target = scratch.join("cp-a");
    let worktree_target = scratch.join("worktree");

    let mut cold = Vec::new();
    let mut cp = Vec::new();
    let mut worktree = Vec::new();
    let mut shadow_files = 0;
    for number in 1..=runs {
        println!(
            "bench-task: {}: cold copies, run {number}/{runs}",
            tree.label
        );
        remove(&shadow_dir)?;
        settle_disk()?;
        let started = Instant::now();
        let (shadow, stats) = Shadow::prepare(&options_for(&shadow_dir))?;
        cold.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(stats.seeded, "a cold prepare reused a shadow");
        shadow_files = stats.files;
        drop(shadow);

        remove(&cp_target)?;
        settle_disk()?;
        cp.push(timed_command(
            Command::new("cp").arg("-a").arg(&tree.root).arg(&cp_target),
        )?);

        remove_worktree(repo, &worktree_target)?;
        settle_disk()?;
        worktree.push(timed_command(
            Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(["worktree", "add", "--quiet", "--detach"])
                .arg(&worktree_target),
        )?);
    }
    remove(&cp_target)?;
    remove_worktree(repo, &worktree_target)?;

    // Re-sync: the shadow of the last cold run is reused; one workspace file changes each time.
    let edited = repo.join(corpus::EDIT_TARGET);
    let original = std::fs::read_to_string(&edited)
        .with_context(|| format!("reading {}", edited.display()))?;
    let mut resync = Vec::new();
    let mut resync_copied = Vec::new();
    let mut resync_walks = 0;
    let (shadow, _) = Shadow::prepare(&options_for(&shadow_dir))?;
    drop(shadow);
    let cpu_before = process_cpu()?;
    for number in 0..runs.max(10) {
        std::fs::write(&edited, format!("{original}// bench-task edit {number}\n"))?;
        let started = Instant::now();
        let (shadow, stats) = Shadow::prepare(&options_for(&shadow_dir))?;
        resync.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(!stats.seeded, "the re-sync seeded afresh");
        resync_copied.push(stats.copied);
        resync_walks += usize::from(stats.walked);
        drop(shadow);
    }
    let resync_cpu = (process_cpu()? - cpu_before) / resync.len() as f64;
    std::fs::write(&edited, &original)?;

    // changes(): nothing changed, then one file changed by the agent.
    let (shadow, _) = Shadow::prepare(&options_for(&shadow_dir))?;
    let mut unchanged = Vec::new();
    let cpu_before = process_cpu()?;
    for _ in 0..CHANGES_CALLS {
        let started = Instant::now();
        let changes = shadow.changes();
        unchanged.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(
            changes.is_empty(),
            "changes() without a change: {changes:?}"
        );
    }
    let unchanged_cpu = (process_cpu()? - cpu_before) / CHANGES_CALLS as f64;
    let agent_file = shadow.root().join(corpus::EDIT_TARGET);
    std::fs::write(
        &agent_file,
        original.replacen("function_0001", "renamed_0001", 1),
    )?;
    let mut one_changed = Vec::new();
    let cpu_before = process_cpu()?;
    for _ in 0..CHANGES_CALLS {
        let started = Instant::now();
        let changes = shadow.changes();
        one_changed.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(
            matches!(changes.as_slice(), [Change::Modified { .. }]),
            "changes() after one edit: {} changes",
            changes.len()
        );
    }
    let one_changed_cpu = (process_cpu()? - cpu_before) / CHANGES_CALLS as f64;
    drop(shadow);
    // Leave a clean shadow for the next run's re-syncs.
    Shadow::prepare(&options_for(&shadow_dir))?;

    let cold = Spread::of(&cold);
    let cp = Spread::of(&cp);
    let worktree = Spread::of(&worktree);
    let resync_spread = Spread::of(&resync);
    let (cold_goal, cold_met, resync_goal, resync_met) = if tree.goals {
        (
            format!("≤ {}", milliseconds(COLD_GOAL_MS)),
            met(cold.median <= COLD_GOAL_MS),
            format!("≤ {}", milliseconds(RESYNC_GOAL_MS)),
            met(resync_spread.median <= RESYNC_GOAL_MS),
        )
    } else {
        let none = || "— (the goals name the issue's corpus)".to_string();
        (none(), "—".into(), none(), "—".into())
    };
    let label = tree.label;
    let rows = vec![
        Row {
            measure: format!("{label}: cold creation ({shadow_files} files, {runs} runs)"),
            baton: spread_milliseconds(&cold),
            cp: format!(
                "{} ({:.2}×)",
                spread_milliseconds(&cp),
                cold.median / cp.median
            ),
            worktree: format!(
                "{} ({:.2}×)",
                spread_milliseconds(&worktree),
                cold.median / worktree.median
            ),
            goal: cold_goal,
            met: cold_met,
        },
        Row {
            measure: format!(
                "{label}: re-sync after one changed file ({} runs, {resync_walks} of them walked \
                 the workspace; files copied: {})",
                resync.len(),
                resync_copied
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            baton: format!(
                "{} (CPU {} per re-sync)",
                spread_milliseconds(&resync_spread),
                milliseconds(resync_cpu)
            ),
            cp: format!("{:.3}× of a cold `cp -a`", resync_spread.median / cp.median),
            worktree: "—".into(),
            goal: resync_goal,
            met: resync_met,
        },
        Row {
            measure: format!(
                "{label}: `changes()` with one file changed by the agent, p50 / p99 ({CHANGES_CALLS} calls)"
            ),
            baton: format!(
                "{} / {} (CPU {} per call)",
                milliseconds(percentile(&one_changed, 0.5)),
                milliseconds(percentile(&one_changed, 0.99)),
                milliseconds(one_changed_cpu)
            ),
            cp: "—".into(),
            worktree: "—".into(),
            goal: "—".into(),
            met: "—".into(),
        },
        Row {
            measure: format!(
                "{label}: `changes()` with nothing changed, p50 / p99 ({CHANGES_CALLS} calls)"
            ),
            baton: format!(
                "{} / {} (CPU {} per call)",
                milliseconds(percentile(&unchanged, 0.5)),
                milliseconds(percentile(&unchanged, 0.99)),
                milliseconds(unchanged_cpu)
            ),
            cp: "—".into(),
            worktree: "—".into(),
            goal: "—".into(),
            met: "—".into(),
        },
    ];
    Ok((rows, shadow_files))
}

/// Extension point: the landing part of the bench (an agent's change in the shadow until the
/// edit is applied in the editor) adds its rows here. `workspace` is the git repository the
/// shadow rows above were measured on.
fn landing_latency(root: &Path, workspace: &Path) -> anyhow::Result<Vec<Row>> {
    let scratch = workspace.parent().unwrap_or(workspace);
    crate::bench_landing::rows(root, scratch, true)
}

pub(crate) fn met(condition: bool) -> String {
    if condition { "yes" } else { "**no**" }.to_string()
}

fn render(
    root: &Path,
    options: &Options,
    rows: &[Row],
    trees: &[Tree],
    shadow_files: &[usize],
    (load_at_start, load_at_end): (String, String),
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Agent task: `cargo xtask bench-task`\n");
    let _ = writeln!(
        out,
        "Run on {} at revision `{}` on {}. Command: `{}` ({} runs of each copy on the issue's \
         corpus, {} on the whole tree; times are median (min–max)). Load average (1, 5, 15 \
         min) {load_at_start} at the start, {load_at_end} at the end.\n",
        today(),
        git_revision(root),
        machine_description(),
        crate::measure::command_line("bench-task", &options.arguments),
        options.runs,
        options.whole_tree_runs,
    );
    let _ = writeln!(
        out,
        "| measure | baton shadow | `cp -a` (shadow ÷ cp) | `git worktree add` (shadow ÷ worktree) | goal | met |\n|---|---|---|---|---|---|"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.measure, row.baton, row.cp, row.worktree, row.goal, row.met
        );
    }
    let _ = writeln!(
        out,
        "\nCorpora. Issue 8 names a 25 MB / 3,239-file corpus: that is what `bench-index` indexes \
         of the corpus it fetches (its source files in baton's languages). Until 2026-11-29 this \
         bench copied the whole fetched tree instead, 2.4 times that; the corpus generator never \
         changed. By default the goals are now measured on the issue's corpus, and the whole tree \
         follows for scale (`--whole-tree-runs N` runs, 0 leaves it out):\n"
    );
    for (tree, files) in trees.iter().zip(shadow_files) {
        let what = if tree.goals {
            "the source files in baton's languages of the `bench-index` corpus, exactly the \
             files `bench-index` indexes and the size issue 8's goals name"
        } else {
            "the whole `bench-index` corpus tree, with its translations, source maps, \
             documentation and the packages' own `.gitignore` files (which the shadow's walk \
             respects), measured for scale, without goals"
        };
        let _ = writeln!(
            out,
            "- {} ({}): {} files, {:.1} MB; the shadow holds {files} entries. Committed once \
             into a git repository in `.bench/task/{}/`, which is the workspace.",
            capitalized(tree.label),
            what,
            tree.files,
            tree.bytes as f64 / 1e6,
            tree.repo
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "How it was measured:\n\n\
         - baton: `Shadow::prepare` called in this (release) process, into an emptied state \
           directory for the cold rows: the workspace walk, the directories made, then each file \
           copied by name between directories opened once (`openat`, `copy_file_range`; this \
           file system {}), its time set on the open file, on both cores, no hashing.\n\
         - `cp -a <corpus> <dest>` and `git -C <repo> worktree add --detach <dest>` as \
           processes (their start-up included); each destination is removed, untimed, before \
           its run, then `sync` runs (untimed) so the removal's writeback does not land in the \
           measurement. Note that `git worktree add` copies only committed files, so it is no \
           substitute (uncommitted and untracked files are missing), only a yardstick.\n\
         - Re-sync: a shadow of the workspace exists; one file ({}, 5,000 lines) is rewritten \
           in place in the workspace, then `prepare` runs again. No directory of the workspace \
           changed, so it is not walked: the last walk's directories are checked by stamp \
           (with the files holding ignore rules), then an `lstat` by name of every workspace \
           file and of every file and directory of the copy (on both cores), the copy of what \
           changed; the manifest is written on a thread while the agent would start. A changed \
           directory or ignore rule (a `git checkout`, a new file) means a walk, as in the cold \
           rows.\n\
         - `changes()`: after `prepare`, the agent's rewrite of the same file is in the shadow; \
           every call `lstat`s every seeded file and every directory (on both cores), lists \
           only the directories whose stamp moved (to find created files), and reads and diffs \
           only the changed file (its base is read from the workspace once and cached).\n\
         - CPU is this process's user + system time from `/proc` (10 ms ticks) over all re-syncs \
           or calls, divided by their number: on a machine shared with other builds it shows \
           the work itself where wall time also shows the waiting.\n\
         - The page cache is warm for all three.\n\
         - Landing rows: the release `baton` under testkit's LSP client (Neovim profile), with \
           testkit's scripted ACP agent as the harness in a 201-file workspace of its own. The \
           agent appends the wall-clock time to a stamp file just before it sends each change's \
           `tool_call_update` completed; the client notes when each `workspace/applyEdit` \
           arrives; the row is the difference (same machine, same clock). In between: the \
           server's ACP read, the shadow diff (`changes()`), the merge engine for the open \
           buffer or one workspace edit of `version: null` edits for the 200 closed files. CPU \
           (the sum of its threads' `schedstat`, in ns) and RSS of the `baton` process over the \
           whole turn of 2,000 \
           `agent_message_chunk` updates (which also rewrite the task document).",
        file_system_note(root),
        corpus::EDIT_TARGET,
    );
    out
}

fn capitalized(text: &str) -> String {
    let mut characters = text.chars();
    characters
        .next()
        .map(|first| first.to_uppercase().chain(characters).collect())
        .unwrap_or_default()
}

/// `stat -f` of the bench directory: whether `copy_file_range` can reflink there.
fn file_system_note(root: &Path) -> String {
    let kind = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(root)
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_default();
    match kind.as_str() {
        "btrfs" | "xfs" => format!("is {kind}: copies are reflinks"),
        "" => "is of an unknown type".to_string(),
        // `stat -f` names ext4 "ext2/ext3".
        other => format!("is {other}: no reflinks, an in-kernel copy"),
    }
}

/// The corpus committed into a git repository at `target` (once; reused while its marker
/// names the same corpus).
fn git_repository(corpus_root: &Path, target: &Path) -> anyhow::Result<PathBuf> {
    let marker = target.with_extension("source");
    let (files, bytes) = tree_size(corpus_root)?;
    let wanted = format!("{}\n{files} files, {bytes} bytes\n", corpus_root.display());
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str())
        && target.join(".git").is_dir()
    {
        return Ok(target.to_path_buf());
    }
    println!(
        "bench-task: committing the corpus into {}",
        target.display()
    );
    remove(target)?;
    run_command(Command::new("cp").arg("-a").arg(corpus_root).arg(target))?;
    let git = |args: &[&str]| -> anyhow::Result<()> {
        run_command(
            Command::new("git")
                .arg("-C")
                .arg(target)
                .args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
                .args(args),
        )
    };
    git(&["init", "--quiet"])?;
    git(&["add", "-A"])?;
    git(&["commit", "--quiet", "-m", "corpus"])?;
    std::fs::write(&marker, wanted)?;
    Ok(target.to_path_buf())
}

/// The corpus' source files in baton's languages (what `bench-index` indexes), copied with their
/// modification times into `target`, once; reused while its marker names the same files.
fn source_tree(corpus: &corpus::Corpus, target: &Path) -> anyhow::Result<PathBuf> {
    let marker = target.with_extension("source");
    let wanted = format!(
        "{}\n{} files, {} bytes\n",
        corpus.root.display(),
        corpus.files.len(),
        corpus.total_bytes()
    );
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) && target.is_dir()
    {
        return Ok(target.to_path_buf());
    }
    println!(
        "bench-task: copying the corpus' source files into {}",
        target.display()
    );
    remove(target)?;
    for file in &corpus.files {
        let relative = file
            .strip_prefix(&corpus.root)
            .with_context(|| format!("{} is outside the corpus", file.display()))?;
        let destination = target.join(relative);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(file, &destination).with_context(|| format!("copying {}", file.display()))?;
        let modified = std::fs::metadata(file)?.modified()?;
        std::fs::File::options()
            .write(true)
            .open(&destination)?
            .set_modified(modified)?;
    }
    std::fs::write(&marker, wanted)?;
    Ok(target.to_path_buf())
}

/// Files and bytes under `root`, `.git` left out.
fn tree_size(root: &Path) -> anyhow::Result<(usize, u64)> {
    let mut files = 0;
    let mut bytes = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    pending.push(entry.path());
                }
            } else if kind.is_file() {
                files += 1;
                bytes += entry.metadata()?.len();
            }
        }
    }
    Ok((files, bytes))
}

fn remove(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("removing {}", path.display())),
    }
}

fn remove_worktree(repo: &Path, worktree: &Path) -> anyhow::Result<()> {
    if worktree.exists() {
        run_command(
            Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(["worktree", "remove", "--force"])
                .arg(worktree),
        )?;
    }
    run_command(
        Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["worktree", "prune"]),
    )
}

fn run_command(command: &mut Command) -> anyhow::Result<()> {
    let description = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("starting {description}"))?;
    ensure!(status.success(), "{description} failed with {status}");
    Ok(())
}

/// `sync`, untimed, before each timed copy: the removal before it leaves dirty metadata whose
/// writeback would otherwise land inside the measurement of whichever copy runs next.
fn settle_disk() -> anyhow::Result<()> {
    run_command(&mut Command::new("sync"))
}

/// This process's user + system CPU time so far (all threads), in milliseconds.
fn process_cpu() -> anyhow::Result<f64> {
    crate::measure::process_cpu_milliseconds(std::process::id())
}

/// Wall time of a command in milliseconds.
fn timed_command(command: &mut Command) -> anyhow::Result<f64> {
    let started = Instant::now();
    run_command(command)?;
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}
