//! `cargo xtask bench-edit`: how fast baton lands a streamed rewrite, against lsp-ai in the
//! same run.
//!
//! The bench builds the release binary, starts the fake model (real HTTP and SSE on loopback)
//! streaming at 1,200 tokens/s, and drives `baton lsp` with the scripted Neovim client: each run
//! opens a fresh document, sends `workspace/executeCommand baton.edit` for a 60-line function
//! and waits for the job's progress to end. Times come from the client's record of when each
//! message arrived and the fake's record of when each token left, so nothing depends on when a
//! waiting task happened to wake. It then performs the same rewrite through lsp-ai (see
//! [`lsp_ai`]) and prints one table, which it also writes into `docs/benchmarks.md`.
//!
//! Speed is measured here and never asserted in tests; the goals are printed next to the figures.

mod lsp_ai;
mod workload;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use serde_json::{Value, json};
use testkit::fake_model::{FakeModel, Reply};
use testkit::lsp_client::{
    ApplyEditRecord, ClientProfile, Encoding, LspClient, TextEdit, apply_text_edits, file_uri,
};

use crate::measure::{
    self, Summary, context_switches, milliseconds as format_ms, process_cpu_milliseconds,
};
use workload::{INSTRUCTION, Workload};

/// The model speed the issue asks for.
pub const TOKENS_PER_SECOND: f64 = 1200.0;

/// baton's landing cadence during the bench (its default, spelled out so the report can say it).
const FLUSH_INTERVAL_MS: u64 = 50;

/// A safety net against a hung run, not a measurement.
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Options {
    pub runs: usize,
    pub tokens: Option<usize>,
    pub build: bool,
    pub lsp_ai: bool,
    /// The arguments as given, to print the exact command.
    pub arguments: Vec<String>,
}

impl Options {
    pub fn parse(arguments: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            runs: 20,
            tokens: None,
            build: true,
            lsp_ai: true,
            arguments: arguments.to_vec(),
        };
        let mut rest = arguments.iter();
        while let Some(argument) = rest.next() {
            let mut number = |name: &str| -> anyhow::Result<usize> {
                rest.next()
                    .and_then(|value| value.parse().ok())
                    .filter(|value| *value > 0)
                    .ok_or_else(|| anyhow!("{name} needs a positive number"))
            };
            match argument.as_str() {
                "--runs" => options.runs = number("--runs")?,
                "--tokens" => options.tokens = Some(number("--tokens")?),
                "--no-build" => options.build = false,
                "--no-lsp-ai" => options.lsp_ai = false,
                other => bail!("unknown argument {other:?}\n{}", crate::USAGE),
            }
        }
        Ok(options)
    }

    fn command_line(&self) -> String {
        crate::measure::command_line("bench-edit", &self.arguments)
    }
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    let baton = crate::measure::release_baton(root, options.build)?;
    let lsp_ai_binary = if options.lsp_ai {
        lsp_ai::ensure_installed(root)
    } else {
        Err("skipped with --no-lsp-ai".to_string())
    };

    let workload = Workload::new(options.tokens);
    let scratch = root.join(".bench/edit");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("clearing {}", scratch.display()))?;
    }
    let workspace = scratch.join("workspace");
    std::fs::create_dir_all(workspace.join("src"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let (baton_results, lsp_ai_results) = runtime.block_on(async {
        let fake = FakeModel::start().await;
        println!(
            "baton: {} measured runs of a {}-token rewrite at {TOKENS_PER_SECOND} tokens/s",
            options.runs, workload.reply_tokens
        );
        let baton_results =
            measure_baton(&baton, &fake, &scratch, &workspace, &workload, options.runs).await?;
        let lsp_ai_results = match &lsp_ai_binary {
            Ok(binary) => {
                println!("lsp-ai: {} measured runs of the same rewrite", options.runs);
                lsp_ai::measure(binary, &fake, &workspace, &workload, options.runs)
                    .await
                    .map_err(|error| format!("lsp-ai failed: {error:#}"))
            }
            Err(reason) => Err(reason.clone()),
        };
        anyhow::Ok((baton_results, lsp_ai_results))
    })?;

    let report = render(root, options, &workload, &baton_results, &lsp_ai_results);
    println!("\n{report}");
    let doc = root.join("docs/benchmarks.md");
    measure::write_doc_section(&doc, "bench-edit", &report)?;
    println!("written to {}", doc.display());
    Ok(())
}

/// One measured rewrite through baton (milliseconds).
struct BatonRun {
    /// `executeCommand` sent → first `workspace/applyEdit` received.
    command_to_first_edit: f64,
    /// The fake's time to first token: request received → first token sent.
    model_first_token: f64,
    /// Last token sent → the `workspace/applyEdit` after which the buffer was final received.
    last_token_to_final_edit: f64,
    /// `executeCommand` sent → that final `workspace/applyEdit` received.
    command_to_final_edit: f64,
    edits: usize,
}

struct BatonResults {
    runs: Vec<BatonRun>,
    cpu_milliseconds: f64,
    /// Context switches of the baton process over the measured runs.
    switches: u64,
    /// The reference: the same rewrite, the fake sending every token at once.
    burst: BurstResults,
}

/// The same rewrite with the model's whole answer sent at once instead of paced: what the
/// rewrite costs baton when nothing makes it wait (parsing, the engine, the edits, LSP), so
/// the paced figure minus this one is what pacing costs (waking up as tokens trickle in).
struct BurstResults {
    runs: usize,
    cpu_milliseconds: f64,
    switches: u64,
}

async fn measure_baton(
    binary: &Path,
    fake: &FakeModel,
    scratch: &Path,
    workspace: &Path,
    workload: &Workload,
    runs: usize,
) -> anyhow::Result<BatonResults> {
    let settings = json!({
        "models": {"fast": {
            "provider": "openai",
            "model": "bench-model",
            "base_url": fake.base_url(),
            "api_key_env": "BATON_BENCH_KEY",
        }},
        "edit": {"flush_interval_ms": FLUSH_INTERVAL_MS},
    });
    let config_home = scratch.join("config");
    let cache_home = scratch.join("cache");
    let log_file = scratch.join("baton.log");
    let env = [
        ("BATON_BENCH_KEY", "bench-key"),
        ("BATON_LOG_FILE", path_str(&log_file)?),
        ("XDG_CONFIG_HOME", path_str(&config_home)?),
        ("XDG_CACHE_HOME", path_str(&cache_home)?),
    ];
    let (client, _) = LspClient::start(
        binary,
        &["lsp"],
        &env,
        workspace,
        ClientProfile::Neovim,
        settings,
    )
    .await
    .context("starting baton")?;
    let pid = client.server_pid().context("baton has no process id")?;

    // The first run pays for connecting to the fake and warming caches: not measured.
    baton_run(
        &client,
        fake,
        workspace,
        workload,
        "warmup",
        Some(TOKENS_PER_SECOND),
    )
    .await
    .context("baton warm-up run")?;
    let cpu_before = process_cpu_milliseconds(pid)?;
    let switches_before = context_switches(pid)?;
    let mut measured = Vec::with_capacity(runs);
    for run in 0..runs {
        let result = baton_run(
            &client,
            fake,
            workspace,
            workload,
            &run.to_string(),
            Some(TOKENS_PER_SECOND),
        )
        .await
        .with_context(|| format!("baton run {run}"))?;
        measured.push(result);
    }
    let cpu_milliseconds = process_cpu_milliseconds(pid)? - cpu_before;
    let switches = context_switches(pid)? - switches_before;

    let cpu_before = process_cpu_milliseconds(pid)?;
    let switches_before = context_switches(pid)?;
    for run in 0..runs {
        baton_run(
            &client,
            fake,
            workspace,
            workload,
            &format!("burst{run}"),
            None,
        )
        .await
        .with_context(|| format!("baton reference run {run}"))?;
    }
    let burst = BurstResults {
        runs,
        cpu_milliseconds: process_cpu_milliseconds(pid)? - cpu_before,
        switches: context_switches(pid)? - switches_before,
    };
    client.shutdown().await.context("baton's shutdown")?;
    Ok(BatonResults {
        runs: measured,
        cpu_milliseconds,
        switches,
        burst,
    })
}

async fn baton_run(
    client: &LspClient,
    fake: &FakeModel,
    workspace: &Path,
    workload: &Workload,
    name: &str,
    tokens_per_second: Option<f64>,
) -> anyhow::Result<BatonRun> {
    let path = workspace.join(format!("src/baton_{name}.rs"));
    std::fs::write(&path, &workload.original)?;
    let uri = file_uri(&path);
    client.open(&uri, "rust", &workload.original).await;
    let reply = Reply::text(workload.reply.clone());
    fake.push(match tokens_per_second {
        Some(rate) => reply.rate(rate),
        None => reply,
    });
    let requests_before = fake.requests().len();
    let (messages_before, edits_before) = {
        let state = client.state();
        (state.messages.len(), state.apply_edits.len())
    };

    let sent = Instant::now();
    let answer = client
        .request(
            "workspace/executeCommand",
            json!({"command": "baton.edit", "arguments": [{
                "textDocument": {"uri": uri},
                "range": range_json(workload.range),
                "instruction": INSTRUCTION,
            }]}),
        )
        .await
        .map_err(|error| anyhow!("baton.edit: {error}"))?;
    let token = answer["job"]
        .as_str()
        .with_context(|| format!("baton.edit answered without a job token: {answer}"))?
        .to_string();
    let end = client
        .wait_for("the end of the edit job", JOB_TIMEOUT, |state| {
            state.progress.get(&token).and_then(|events| {
                events
                    .iter()
                    .find(|event| event.kind == "end")
                    .map(|event| event.message.clone().unwrap_or_default())
            })
        })
        .await?;
    ensure!(end == "done", "the job ended with {end:?}, not \"done\"");

    let state = client.state();
    let arrivals: Vec<Instant> = state.messages[messages_before..]
        .iter()
        .zip(&state.received_at[messages_before..])
        .filter(|(message, _)| message["method"] == "workspace/applyEdit")
        .map(|(_, at)| *at)
        .collect();
    let records = &state.apply_edits[edits_before..];
    ensure!(
        arrivals.len() == records.len() && !records.is_empty(),
        "expected matching applyEdit messages and records, got {} and {}",
        arrivals.len(),
        records.len()
    );
    let encoding = Encoding::from_name(client.position_encoding())
        .context("the client negotiated an unknown encoding")?;
    let states = buffer_states(&workload.original, records, encoding)?;
    ensure!(
        states.last() == Some(&workload.expected),
        "baton's final buffer is not the expected rewrite"
    );
    // The edit that made the buffer final: the first after which it never changed again.
    let final_index = states
        .iter()
        .rposition(|text| text != &workload.expected)
        .map_or(0, |index| index + 1);

    let request = fake
        .requests()
        .get(requests_before)
        .cloned()
        .context("baton sent no model request")?;
    let received = request.received_at.into_std();
    let first_token = request
        .first_token_at
        .context("the fake sent baton no token")?
        .into_std();
    let last_token = request
        .last_token_at
        .context("the fake sent baton no token")?
        .into_std();
    client.close(&uri).await;
    Ok(BatonRun {
        command_to_first_edit: milliseconds(arrivals[0] - sent),
        model_first_token: milliseconds(first_token - received),
        last_token_to_final_edit: signed_milliseconds(arrivals[final_index], last_token),
        command_to_final_edit: milliseconds(arrivals[final_index] - sent),
        edits: records.len(),
    })
}

/// The document after each applied `workspace/applyEdit`, replayed from the records.
fn buffer_states(
    original: &str,
    records: &[ApplyEditRecord],
    encoding: Encoding,
) -> anyhow::Result<Vec<String>> {
    let mut text = original.to_string();
    let mut states = Vec::with_capacity(records.len());
    for record in records {
        let applied = record.skipped_stale.is_empty() && record.response["applied"] != false;
        if applied {
            for change in record.params["edit"]["documentChanges"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let edits = parse_edits(&change["edits"])?;
                text = apply_text_edits(&text, &edits, encoding)
                    .map_err(|error| anyhow!("a recorded edit does not apply: {error}"))?
                    .0;
            }
            for edits in record.params["edit"]["changes"]
                .as_object()
                .into_iter()
                .flat_map(|changes| changes.values())
            {
                let edits = parse_edits(edits)?;
                text = apply_text_edits(&text, &edits, encoding)
                    .map_err(|error| anyhow!("a recorded edit does not apply: {error}"))?
                    .0;
            }
        }
        states.push(text.clone());
    }
    Ok(states)
}

/// LSP `TextEdit`s from JSON.
fn parse_edits(edits: &Value) -> anyhow::Result<Vec<TextEdit>> {
    let Some(edits) = edits.as_array() else {
        bail!("not an array of edits: {edits}");
    };
    edits
        .iter()
        .map(|edit| {
            let position = |value: &Value| -> anyhow::Result<(u32, u32)> {
                Ok((
                    value["line"].as_u64().context("line")? as u32,
                    value["character"].as_u64().context("character")? as u32,
                ))
            };
            Ok(TextEdit {
                start: position(&edit["range"]["start"])?,
                end: position(&edit["range"]["end"])?,
                new_text: edit["newText"].as_str().context("newText")?.to_string(),
            })
        })
        .collect()
}

fn range_json(range: ((u32, u32), (u32, u32))) -> Value {
    json!({
        "start": {"line": range.0.0, "character": range.0.1},
        "end": {"line": range.1.0, "character": range.1.1},
    })
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `later − earlier` in milliseconds, negative when `later` came first.
fn signed_milliseconds(later: Instant, earlier: Instant) -> f64 {
    match later.checked_duration_since(earlier) {
        Some(duration) => milliseconds(duration),
        None => -milliseconds(earlier - later),
    }
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

fn summary(values: impl Iterator<Item = f64>) -> Summary {
    let values: Vec<f64> = values.collect();
    Summary::of(&values).expect("at least one run")
}

fn ratio(reference: f64, ours: f64) -> String {
    if ours > 0.0 {
        format!("{:.1}×", reference / ours)
    } else {
        "—".to_string()
    }
}

fn met(value: f64, goal: f64) -> &'static str {
    if value <= goal { "yes" } else { "no" }
}

/// The report, in Markdown: printed and written into `docs/benchmarks.md`.
fn render(
    root: &Path,
    options: &Options,
    workload: &Workload,
    baton: &BatonResults,
    lsp_ai: &Result<lsp_ai::Results, String>,
) -> String {
    let runs = &baton.runs;
    let first_edit = summary(
        runs.iter()
            .map(|run| run.command_to_first_edit - run.model_first_token),
    );
    let final_landing = summary(runs.iter().map(|run| run.last_token_to_final_edit));
    let command_to_first = summary(runs.iter().map(|run| run.command_to_first_edit));
    let model_first_token = summary(runs.iter().map(|run| run.model_first_token));
    let command_to_final = summary(runs.iter().map(|run| run.command_to_final_edit));
    let edits = summary(runs.iter().map(|run| run.edits as f64));
    let streamed_tokens = (runs.len() * workload.reply_tokens) as f64;
    let cpu_per_thousand = baton.cpu_milliseconds / streamed_tokens * 1000.0;
    let baton_cpu_per_rewrite = baton.cpu_milliseconds / runs.len() as f64;

    let mut out = String::new();
    let line = |out: &mut String, text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    line(&mut out, "## Inline edit: `cargo xtask bench-edit`");
    line(&mut out, "");
    line(
        &mut out,
        &format!(
            "Recorded on {} by `{}` (baton {}, release build) on {}.",
            measure::today(),
            options.command_line(),
            measure::git_revision(root),
            measure::machine_description(),
        ),
    );
    line(
        &mut out,
        &format!(
            "Workload: the model rewrites a {}-line Rust function into {} lines, {} tokens, \
             which the fake model streams over loopback HTTP at {} tokens/s. {} measured runs \
             after one warm-up, each on a freshly opened document; the client imitates Neovim; \
             baton runs with `edit.flush_interval_ms = {FLUSH_INTERVAL_MS}` (the default).",
            workload.selected_lines,
            workload.reply_lines,
            workload.reply_tokens,
            TOKENS_PER_SECOND,
            runs.len(),
        ),
    );
    line(&mut out, "");
    line(&mut out, "| baton | p50 | p90 | max | goal | met |");
    line(&mut out, "|---|---:|---:|---:|---|---|");
    line(
        &mut out,
        &format!(
            "| first landed edit − fake's time to first token | {} | {} | {} | ≤ 5 ms at p50 | {} |",
            format_ms(first_edit.p50),
            format_ms(first_edit.p90),
            format_ms(first_edit.max),
            met(first_edit.p50, 5.0),
        ),
    );
    line(
        &mut out,
        &format!(
            "| final landed edit − last token | {} | {} | {} | ≤ 5 ms | {} (p50), {} (max) |",
            format_ms(final_landing.p50),
            format_ms(final_landing.p90),
            format_ms(final_landing.max),
            met(final_landing.p50, 5.0),
            met(final_landing.max, 5.0),
        ),
    );
    line(
        &mut out,
        &format!(
            "| CPU per 1,000 streamed tokens | {} | | | ≤ 10 ms | {} |",
            format_ms(cpu_per_thousand),
            met(cpu_per_thousand, 10.0),
        ),
    );
    let burst_tokens = (baton.burst.runs * workload.reply_tokens) as f64;
    let burst_per_thousand = baton.burst.cpu_milliseconds / burst_tokens * 1000.0;
    line(
        &mut out,
        &format!(
            "| reference: CPU per 1,000 tokens of the same rewrite sent at once | {} | | | — | — |",
            format_ms(burst_per_thousand),
        ),
    );
    line(
        &mut out,
        &format!(
            "| paced ÷ sent at once | {} | | | — | — |",
            if burst_per_thousand > 0.0 {
                format!("{:.2}×", cpu_per_thousand / burst_per_thousand)
            } else {
                "—".to_string()
            },
        ),
    );
    let switches_per_thousand = baton.switches as f64 / streamed_tokens * 1000.0;
    let burst_switches_per_thousand = baton.burst.switches as f64 / burst_tokens * 1000.0;
    line(
        &mut out,
        &format!(
            "| baton's context switches per 1,000 tokens, paced / sent at once | {switches_per_thousand:.0} / {burst_switches_per_thousand:.0} | | | — | — |",
        ),
    );
    // What pacing adds, per extra time the server slept and was woken.
    let extra_switches = switches_per_thousand - burst_switches_per_thousand;
    if extra_switches > 0.0 {
        line(
            &mut out,
            &format!(
                "| CPU the paced run adds per extra context switch: (paced − sent at once) CPU ÷ switches | {:.1} µs | | | — | — |",
                (cpu_per_thousand - burst_per_thousand) / extra_switches * 1000.0,
            ),
        );
    }
    line(&mut out, "");
    line(
        &mut out,
        &format!(
            "Raw parts (p50 / p90 / max): `executeCommand` → first `applyEdit` {}; fake's time \
             to first token {}; `executeCommand` → final `applyEdit` {}; `applyEdit`s per \
             rewrite {:.0} / {:.0} / {:.0}. CPU is user + system time of the baton process \
             from `/proc` (10 ms ticks), taken over all measured runs: {} for {} tokens. \
             The reference runs the same rewrite {} more times in the same session with the \
             fake sending every token as soon as the connection takes it (still one event \
             per token): {} for {} tokens. Context switches are the voluntary and \
             involuntary switches of baton's threads (`/proc/<pid>/task/*/status`): each is \
             the server going to sleep and being woken.",
            triple(&command_to_first),
            triple(&model_first_token),
            triple(&command_to_final),
            edits.p50,
            edits.p90,
            edits.max,
            format_ms(baton.cpu_milliseconds),
            streamed_tokens,
            baton.burst.runs,
            format_ms(baton.burst.cpu_milliseconds),
            burst_tokens,
        ),
    );
    line(&mut out, "");
    match lsp_ai {
        Ok(reference) => {
            let visible = summary(reference.runs.iter().map(|run| run.visible));
            let reference_first_token =
                summary(reference.runs.iter().map(|run| run.model_first_token));
            let reference_cpu = reference.cpu_milliseconds / reference.runs.len() as f64;
            line(
                &mut out,
                &format!(
                    "Same rewrite through lsp-ai {} (from crates.io, an `actions` entry with an \
                     `open_ai` model whose `chat_endpoint` is the same fake). lsp-ai asks for \
                     one non-streamed answer; the fake sends it when its last token would have \
                     been streamed at the same rate, so the model is equally fast for both. \
                     Times run from sending `executeCommand` (baton) or `codeAction/resolve` \
                     (lsp-ai) to the client receiving the edit.",
                    lsp_ai::VERSION
                ),
            );
            line(&mut out, "");
            line(
                &mut out,
                "| same rewrite, p50 (p90) | baton | lsp-ai | lsp-ai ÷ baton |",
            );
            line(&mut out, "|---|---:|---:|---:|");
            line(
                &mut out,
                &format!(
                    "| time to first visible change | {} ({}) | {} ({}) | {} |",
                    format_ms(command_to_first.p50),
                    format_ms(command_to_first.p90),
                    format_ms(visible.p50),
                    format_ms(visible.p90),
                    ratio(visible.p50, command_to_first.p50),
                ),
            );
            line(
                &mut out,
                &format!(
                    "| total time (final text in the editor) | {} ({}) | {} ({}) | {} |",
                    format_ms(command_to_final.p50),
                    format_ms(command_to_final.p90),
                    format_ms(visible.p50),
                    format_ms(visible.p90),
                    ratio(visible.p50, command_to_final.p50),
                ),
            );
            line(
                &mut out,
                &format!(
                    "| server CPU per rewrite (mean) | {} | {} | {} |",
                    format_ms(baton_cpu_per_rewrite),
                    format_ms(reference_cpu),
                    ratio(reference_cpu, baton_cpu_per_rewrite),
                ),
            );
            line(&mut out, "");
            line(
                &mut out,
                &format!(
                    "The fake's time to first token for lsp-ai: {}.",
                    triple(&reference_first_token)
                ),
            );
        }
        Err(reason) => {
            line(
                &mut out,
                &format!(
                    "lsp-ai {} is missing from this run: {reason}.",
                    lsp_ai::VERSION
                ),
            );
        }
    }
    out
}

fn triple(summary: &Summary) -> String {
    format!(
        "{} / {} / {}",
        format_ms(summary.p50),
        format_ms(summary.p90),
        format_ms(summary.max)
    )
}
