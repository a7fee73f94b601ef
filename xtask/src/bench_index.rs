//! `cargo xtask bench-index`: baton's workspace index against Universal Ctags, on the same files,
//! in the same run.
//!
//! The bench builds the release binary, fetches a real multi-language corpus from the package
//! registries into `.bench/corpus/` once (see [`corpus`]; nothing of it is committed), and then
//! measures, alternating the tools so drift hits both alike:
//!
//! - cold indexing: `baton index CORPUS --json` with an empty cache against `ctags -L FILES`, where
//!   FILES lists exactly the files in baton's languages (baton's own walk decides the same set);
//! - a warm start: `baton index` again with the cache in place;
//! - the first non-empty `workspace/symbol` answer after `initialize`, with a cold and a warm
//!   cache (see [`lsp_session`]);
//! - `workspace/symbol` latency over queries drawn from the names ctags found;
//! - one-character edits in a generated 5,000-line file, each followed by `documentSymbol`.
//!
//! It prints one table with ratios against ctags and the goals of the issue, and writes it into
//! `docs/benchmarks.md` between the `bench-index` markers. Speed is measured, never asserted.

pub(crate) mod corpus;
mod lsp_session;
pub(crate) mod timing;

use crate::measure::{git_revision, machine_description, today, write_doc_section};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use lsp_session::{Latencies, ServerEnvironment};
use timing::{Spread, milliseconds, percentile, run_timed, spread_milliseconds};

/// Universal Ctags, from Debian's `universal-ctags` package.
const CTAGS: &str = "/usr/bin/ctags";

/// How many `workspace/symbol` queries and one-character edits are timed.
const QUERY_COUNT: usize = 500;
const EDIT_COUNT: usize = 500;

pub struct Options {
    pub corpus: Option<PathBuf>,
    pub runs: usize,
    pub build: bool,
    /// Only the `workspace/symbol` and edit latencies, printed and not written to the docs:
    /// for iterating on those without the index runs.
    pub latencies_only: bool,
    /// The arguments as given, to print the exact command.
    pub arguments: Vec<String>,
}

impl Options {
    pub fn parse(arguments: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            corpus: None,
            runs: 5,
            build: true,
            latencies_only: false,
            arguments: arguments.to_vec(),
        };
        let mut rest = arguments.iter();
        while let Some(argument) = rest.next() {
            match argument.as_str() {
                "--corpus" => {
                    options.corpus = Some(PathBuf::from(
                        rest.next().context("--corpus needs a directory")?,
                    ));
                }
                "--runs" => {
                    options.runs = rest
                        .next()
                        .and_then(|value| value.parse().ok())
                        .filter(|value| *value > 0)
                        .context("--runs needs a positive number")?;
                }
                "--no-build" => options.build = false,
                "--latencies-only" => options.latencies_only = true,
                other => bail!("unknown argument {other:?}\n{}", USAGE),
            }
        }
        Ok(options)
    }

    fn command_line(&self) -> String {
        crate::measure::command_line("bench-index", &self.arguments)
    }
}

pub const USAGE: &str =
    "cargo xtask bench-index [--corpus DIR] [--runs N] [--no-build] [--latencies-only]";

/// One `baton index --json` run.
struct BatonIndexRun {
    wall_ms: f64,
    /// GNU time's peak RSS of the process.
    peak_rss_kib: u64,
    report: Value,
}

struct CtagsRun {
    wall_ms: f64,
    peak_rss_kib: u64,
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    let binary = crate::measure::release_baton(root, options.build)?;
    if !Path::new(CTAGS).exists() {
        bail!("{CTAGS} is missing: apt-get install -y universal-ctags");
    }

    let load_at_start = crate::measure::load_average(" ");
    let bench = root.join(".bench");
    let scratch = bench.join("index");
    std::fs::create_dir_all(&scratch)?;
    let corpus_directory = options
        .corpus
        .clone()
        .unwrap_or_else(|| bench.join("corpus"));
    println!("bench-index: corpus in {}", corpus_directory.display());
    let corpus = corpus::prepare(&corpus_directory, &scratch)?;
    let corpus_root = std::path::absolute(&corpus.root)?;
    println!(
        "bench-index: {} files, {:.1} MB in baton's languages",
        corpus.files.len(),
        corpus.total_bytes() as f64 / 1e6
    );

    let file_list = scratch.join("ctags-files.txt");
    let mut listing = String::new();
    for file in &corpus.files {
        writeln!(listing, "{}", file.display())?;
    }
    std::fs::write(&file_list, listing)?;
    let tags_file = scratch.join("tags");

    let environment = ServerEnvironment {
        cache_home: scratch.join("cache"),
        config_home: scratch.join("config"),
        log_file: scratch.join("baton.log"),
    };
    std::fs::create_dir_all(&environment.config_home)?;
    let clear_cache = || -> anyhow::Result<()> {
        if environment.cache_home.exists() {
            std::fs::remove_dir_all(&environment.cache_home)?;
        }
        Ok(())
    };
    let baton_env = [
        ("XDG_CACHE_HOME", environment.cache_home.as_path()),
        ("XDG_CONFIG_HOME", environment.config_home.as_path()),
        ("BATON_LOG_FILE", environment.log_file.as_path()),
    ];
    let baton_index = || -> anyhow::Result<BatonIndexRun> {
        let run = run_timed(
            &binary,
            &[
                OsStr::new("index"),
                corpus_root.as_os_str(),
                OsStr::new("--json"),
            ],
            &baton_env,
            &scratch,
        )?;
        let report: Value = serde_json::from_str(&run.stdout)
            .with_context(|| format!("baton index printed {:?}", run.stdout))?;
        Ok(BatonIndexRun {
            wall_ms: run.wall_ms,
            peak_rss_kib: run.peak_rss_kib,
            report,
        })
    };

    if options.latencies_only {
        return print_latencies_only(&binary, &corpus, &corpus_root, &environment, || {
            run_timed(
                Path::new(CTAGS),
                &[
                    OsStr::new("-L"),
                    file_list.as_os_str(),
                    OsStr::new("-f"),
                    tags_file.as_os_str(),
                ],
                &[],
                &scratch,
            )?;
            tag_names(&tags_file)
        });
    }

    let mut ctags_runs = Vec::new();
    let mut cold_runs = Vec::new();
    let mut warm_runs = Vec::new();
    for number in 1..=options.runs {
        println!("bench-index: index run {number}/{}", options.runs);
        let ctags = run_timed(
            Path::new(CTAGS),
            &[
                OsStr::new("-L"),
                file_list.as_os_str(),
                OsStr::new("-f"),
                tags_file.as_os_str(),
            ],
            &[],
            &scratch,
        )?;
        ctags_runs.push(CtagsRun {
            wall_ms: ctags.wall_ms,
            peak_rss_kib: ctags.peak_rss_kib,
        });
        clear_cache()?;
        let cold = baton_index()?;
        if cold.report["from_cache"].as_u64() != Some(0) {
            bail!("a cold run read from the cache: {}", cold.report);
        }
        cold_runs.push(cold);
        let warm = baton_index()?;
        warm_runs.push(warm);
    }
    let (tag_count, names) = tag_names(&tags_file)?;

    println!("bench-index: language server runs");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut first_cold = Vec::new();
    let mut first_warm = Vec::new();
    for number in 1..=options.runs {
        println!(
            "bench-index: first workspace/symbol, run {number}/{}",
            options.runs
        );
        clear_cache()?;
        first_cold.push(runtime.block_on(lsp_session::first_symbol_answer(
            &binary,
            &corpus_root,
            &environment,
        ))?);
        // The cold session wrote the cache, so this one starts warm.
        first_warm.push(runtime.block_on(lsp_session::first_symbol_answer(
            &binary,
            &corpus_root,
            &environment,
        ))?);
    }
    println!("bench-index: workspace/symbol and edit latencies");
    let queries = lsp_session::queries_from_names(&names, QUERY_COUNT);
    let latencies = runtime.block_on(lsp_session::latencies(
        &binary,
        &corpus_root,
        &std::path::absolute(&corpus.edit_target)?,
        &environment,
        &queries,
        EDIT_COUNT,
    ))?;

    let report = render(
        root,
        options,
        &corpus,
        &ctags_runs,
        &cold_runs,
        &warm_runs,
        &first_cold,
        &first_warm,
        &latencies,
        (tag_count, names.len()),
        (load_at_start, crate::measure::load_average(" ")),
    );
    println!("\n{report}");
    let doc = root.join("docs/benchmarks.md");
    write_doc_section(&doc, "bench-index", &report)?;
    println!("written to {}", doc.display());
    Ok(())
}

/// `--latencies-only`: one latency session, its figures printed.
fn print_latencies_only(
    binary: &Path,
    corpus: &corpus::Corpus,
    corpus_root: &Path,
    environment: &ServerEnvironment,
    ctags_names: impl FnOnce() -> anyhow::Result<(usize, Vec<String>)>,
) -> anyhow::Result<()> {
    let (_, names) = ctags_names()?;
    let queries = lsp_session::queries_from_names(&names, QUERY_COUNT);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let latencies = runtime.block_on(lsp_session::latencies(
        binary,
        corpus_root,
        &std::path::absolute(&corpus.edit_target)?,
        environment,
        &queries,
        EDIT_COUNT,
    ))?;
    for (label, samples) in [
        ("workspace/symbol", &latencies.symbol_queries),
        ("edit -> documentSymbol", &latencies.edits),
        (
            "edit -> documentSymbol, in the server",
            &latencies.server_edits,
        ),
        (
            "documentSymbol, unchanged",
            &latencies.unchanged_document_symbols,
        ),
        ("round trip floor", &latencies.round_trips),
    ] {
        println!(
            "{label}: p50 {:.2} ms, p99 {:.2} ms ({} samples)",
            percentile(samples, 0.5),
            percentile(samples, 0.99),
            samples.len()
        );
    }
    Ok(())
}

/// The number of tags in a ctags file and their distinct names (the first field of every
/// non-pseudo tag; ctags sorts by name, so neighbours suffice to remove repeats).
fn tag_names(tags_file: &Path) -> anyhow::Result<(usize, Vec<String>)> {
    let text = std::fs::read(tags_file).with_context(|| format!("{}", tags_file.display()))?;
    let text = String::from_utf8_lossy(&text);
    let mut names: Vec<String> = text
        .lines()
        .filter(|line| !line.starts_with("!_"))
        .filter_map(|line| line.split('\t').next())
        .map(String::from)
        .collect();
    let tags = names.len();
    names.dedup();
    Ok((tags, names))
}

fn ratio(ours: f64, reference: f64) -> f64 {
    ours / reference
}

fn met(condition: bool) -> &'static str {
    if condition { "yes" } else { "**no**" }
}

fn megabytes(kib: f64) -> String {
    format!("{:.1} MB", kib * 1024.0 / 1e6)
}

#[allow(clippy::too_many_arguments)]
fn render(
    root: &Path,
    options: &Options,
    corpus: &corpus::Corpus,
    ctags_runs: &[CtagsRun],
    cold_runs: &[BatonIndexRun],
    warm_runs: &[BatonIndexRun],
    first_cold: &[f64],
    first_warm: &[f64],
    latencies: &Latencies,
    (ctags_tags, ctags_names): (usize, usize),
    (load_at_start, load_at_end): (String, String),
) -> String {
    let ctags_time = Spread::of_each(ctags_runs, |run| run.wall_ms);
    let ctags_rss = Spread::of_each(ctags_runs, |run| run.peak_rss_kib as f64);
    let cold_time = Spread::of_each(cold_runs, |run| run.wall_ms);
    let cold_rss = Spread::of_each(cold_runs, |run| run.peak_rss_kib as f64);
    let warm_time = Spread::of_each(warm_runs, |run| run.wall_ms);
    let warm_rss = Spread::of_each(warm_runs, |run| run.peak_rss_kib as f64);
    let first_cold_spread = Spread::of(first_cold);
    let first_warm_spread = Spread::of(first_warm);
    let symbol_p50 = percentile(&latencies.symbol_queries, 0.5);
    let symbol_p99 = percentile(&latencies.symbol_queries, 0.99);
    let edit_p50 = percentile(&latencies.edits, 0.5);
    let edit_p99 = percentile(&latencies.edits, 0.99);
    let server_edit_p50 = percentile(&latencies.server_edits, 0.5);
    let server_edit_p99 = percentile(&latencies.server_edits, 0.99);
    let corpus_mb = corpus.total_bytes() as f64 / 1e6;
    let reference = ctags_time.median;

    let mut out = String::new();
    let _ = writeln!(out, "## Workspace index against Universal Ctags\n");
    let _ = writeln!(
        out,
        "Run on {} at revision `{}` on {}. Command: `{}` ({} runs of each index measurement; \
         times are median (min–max)). Load average (1, 5, 15 min) {load_at_start} at the start, \
         {load_at_end} at the end.\n",
        today(),
        git_revision(root),
        machine_description(),
        options.command_line(),
        options.runs,
    );
    let _ = writeln!(
        out,
        "| measure | baton | ctags | baton / ctags | goal | met |\n|---|---|---|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| cold index, wall time | {} | {} | {:.2}× | ≤ 2.0× ctags | {} |",
        spread_milliseconds(&cold_time),
        spread_milliseconds(&ctags_time),
        ratio(cold_time.median, reference),
        met(ratio(cold_time.median, reference) <= 2.0),
    );
    // What the cold run's time is made of, from baton's own report: CPU time in tree-sitter's
    // parser and in the tags queries, summed over threads, and that spread over every core.
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let cold_cpu = |field: &str| {
        Spread::of(
            &cold_runs
                .iter()
                .filter_map(|run| run.report[field].as_f64())
                .collect::<Vec<_>>(),
        )
    };
    let (parse_cpu, tags_cpu) = (cold_cpu("parse_cpu_ms"), cold_cpu("tags_cpu_ms"));
    // Issue 11's cold-index goal: the whole run against the parse floor measured in it.
    let floor = parse_cpu.median / cpus;
    let _ = writeln!(
        out,
        "| cold index ÷ tree-sitter's parse floor (below) | {:.2}× ({} ÷ {}) | — | — | ≤ 1.25× the floor | {} |",
        ratio(cold_time.median, floor),
        milliseconds(cold_time.median),
        milliseconds(floor),
        met(ratio(cold_time.median, floor) <= 1.25),
    );
    let _ = writeln!(
        out,
        "| cold index throughput, per core | {:.2} MB/s per core ({corpus_mb:.1} MB ÷ {:.2} s ÷ {cpus} cores) | {:.2} MB/s (one thread) | {:.2}× | — | — |",
        corpus_mb / (cold_time.median / 1000.0) / cpus,
        cold_time.median / 1000.0,
        corpus_mb / (reference / 1000.0),
        (corpus_mb / (cold_time.median / 1000.0) / cpus) / (corpus_mb / (reference / 1000.0)),
    );
    for (label, spread) in [
        ("tree-sitter's parser", &parse_cpu),
        ("the tags queries", &tags_cpu),
    ] {
        let _ = writeln!(
            out,
            "| cold index: time in {label}, summed over the indexing threads, ÷ {cpus} cores (a floor, not a run) | {} ({} summed) | {} | {:.2}× | — | — |",
            milliseconds(spread.median / cpus),
            milliseconds(spread.median),
            milliseconds(reference),
            ratio(spread.median / cpus, reference),
        );
    }
    let _ = writeln!(
        out,
        "| warm start from the cache, wall time | {} | {} (cold; ctags has no cache) | {:.2}× | ≤ 0.25× ctags | {} |",
        spread_milliseconds(&warm_time),
        milliseconds(reference),
        ratio(warm_time.median, reference),
        met(ratio(warm_time.median, reference) <= 0.25),
    );
    for (label, spread) in [
        ("cold cache", &first_cold_spread),
        ("warm cache", &first_warm_spread),
    ] {
        let _ = writeln!(
            out,
            "| first `workspace/symbol` answer after `initialize`, {label} | {} | {} (total) | {:.2}× | ≤ 1.0× ctags total | {} |",
            spread_milliseconds(spread),
            milliseconds(reference),
            ratio(spread.median, reference),
            met(ratio(spread.median, reference) <= 1.0),
        );
    }
    let _ = writeln!(
        out,
        "| peak RSS, cold index | {} (max {}) | {} | {:.2}× | ≤ 150 MB for 20 MB | {} |",
        megabytes(cold_rss.median),
        megabytes(cold_rss.max),
        megabytes(ctags_rss.median),
        ratio(cold_rss.median, ctags_rss.median),
        met(cold_rss.max * 1024.0 / 1e6 <= 150.0 * corpus_mb.max(20.0) / 20.0),
    );
    let _ = writeln!(
        out,
        "| peak RSS, warm start | {} | — | — | — | — |",
        megabytes(warm_rss.median),
    );
    let _ = writeln!(
        out,
        "| `workspace/symbol` latency, p50 / p99 ({} queries) | {} / {} | — | — | p99 ≤ 5 ms | {} |",
        latencies.symbol_queries.len(),
        milliseconds(symbol_p50),
        milliseconds(symbol_p99),
        met(symbol_p99 <= 5.0),
    );
    let _ = writeln!(
        out,
        "| one-character edit → `documentSymbol`, in the server (`didChange` applied → answer ready to send), p50 / p99 ({} edits, {}-line file) | {} / {} | — | — | p99 ≤ 1 ms | {} |",
        latencies.server_edits.len(),
        corpus::EDIT_TARGET_LINES,
        milliseconds(server_edit_p50),
        milliseconds(server_edit_p99),
        met(server_edit_p99 <= 1.0),
    );
    let _ = writeln!(
        out,
        "| one-character edit → `documentSymbol`, round trip (includes the client parsing the ~100 KB answer), p50 / p99 | {} / {} | — | — | — | — |",
        milliseconds(edit_p50),
        milliseconds(edit_p99),
    );

    let _ = writeln!(
        out,
        "| round trip of a request baton does not implement, p50 / p99 (client and transport floor) | {} / {} | — | — | — | — |",
        milliseconds(percentile(&latencies.round_trips, 0.5)),
        milliseconds(percentile(&latencies.round_trips, 0.99)),
    );

    let _ = writeln!(
        out,
        "| `documentSymbol` on the unchanged {}-line file, p50 / p99 ({} requests; the answer's own cost) | {} / {} | — | — | — | — |",
        corpus::EDIT_TARGET_LINES,
        latencies.unchanged_document_symbols.len(),
        milliseconds(percentile(&latencies.unchanged_document_symbols, 0.5)),
        milliseconds(percentile(&latencies.unchanged_document_symbols, 0.99)),
    );

    let cold_report = &cold_runs[0].report;
    let _ = writeln!(
        out,
        "\nCorpus: {} files, {:.1} MB of source in baton's languages (`.bench/corpus/`, fetched \
         at bench time, never committed). The RSS goal is scaled linearly when the corpus is \
         larger than 20 MB ({:.0} MB here).\n",
        corpus.files.len(),
        corpus_mb,
        150.0 * corpus_mb.max(20.0) / 20.0,
    );
    let _ = writeln!(
        out,
        "| language | files | MB | baton definitions | baton references |\n|---|---|---|---|---|"
    );
    for (language, (files, bytes)) in &corpus.per_language {
        let counts = cold_report["per_language"]
            .as_array()
            .and_then(|languages| {
                languages
                    .iter()
                    .find(|entry| entry[0].as_str() == Some(language))
            })
            .map(|entry| entry[1].clone())
            .unwrap_or(Value::Null);
        let _ = writeln!(
            out,
            "| {language} | {files} | {:.2} | {} | {} |",
            *bytes as f64 / 1e6,
            counts["definitions"],
            counts["references"],
        );
    }
    let _ = writeln!(out, "\nSources:\n");
    for source in &corpus.sources {
        let _ = writeln!(out, "- {source}");
    }
    let _ = writeln!(
        out,
        "\nHow it was measured:\n\n\
         - ctags: `ctags -L <list> -f <tags>` with the list of exactly the files above (baton's \
           extensions, hidden entries skipped, files over baton's 1 MiB limit removed from the \
           corpus), default fields and sorting; it wrote {ctags_tags} tags ({ctags_names} distinct \
           names).\n\
         - baton: `target/release/baton index <corpus> --json`; the cold run starts with an \
           empty `XDG_CACHE_HOME`; it indexed {} files ({} skipped) and reported {} / {} ms \
           elapsed internally. The warm run reused the cache: {} files from the cache, {} \
           parsed.\n\
         - Wall times include process start-up; peak RSS is `ru_maxrss` from GNU time for both \
           tools. The file system cache is warm for both.\n\
         - First answer: `baton lsp` started by the scripted Neovim client; the clock starts \
           before the process is spawned and stops at the first non-empty answer to \
           `workspace/symbol \"{}\"`, polled every 5 ms. Compared with ctags' whole run.\n\
         - Latencies: one session, after indexing ended; {} of {} queries (exact names, \
           prefixes and fuzzy subsequences of names ctags found) had results. Edits insert or \
           delete one character in a function name of the generated file, each followed by \
           `textDocument/documentSymbol`; each answer was checked to show the new name. The \
           in-server time is baton's own clock (`baton.status`, \
           `latencies.documentSymbolAfterChangeMicros`): from the `didChange` being applied to \
           the answer being ready to send, without the transport or the client's JSON parsing.\n\
         - Cold-index throughput is the corpus size over the median cold wall time, divided by \
           the cores; the ctags column is its single-threaded rate.",
        cold_report["files"],
        cold_report["skipped"].as_array().map_or(0, Vec::len),
        cold_report["elapsed_ms"]
            .as_f64()
            .map_or(f64::NAN, f64::round),
        warm_runs[0].report["elapsed_ms"]
            .as_f64()
            .map_or(f64::NAN, f64::round),
        warm_runs[0].report["from_cache"],
        warm_runs[0].report["parsed"],
        lsp_session::FIRST_QUERY,
        latencies.symbol_queries_answered,
        latencies.symbol_queries.len(),
    );
    out
}
