//! `cargo xtask bench-complete`: what inline completion costs while someone types.
//!
//! The release baton runs against the fake model (fill-in-the-middle, `openai-fim`: time to
//! first token 100 ms, then 1,200 tokens/s), driven by the imitated Neovim 0.12
//! ([`testkit::inline_completion::NeovimInline`]). The user types a 200-character line at 15
//! keys/s and stops for 400 ms after each word; Neovim asks 200 ms into each stop (its timer
//! restarts on every keystroke, so a steady 15 keys/s alone never triggers it) and cancels its
//! previous request. Each model answer predicts the next three words right, then goes wrong, so
//! the cache can serve some stops and not others.
//!
//! Printed (and written into `docs/benchmarks.md` between the `bench-complete` markers): model
//! requests per keystroke (goal ≤ 0.2), answers from the cache, baton's overhead over the model's
//! own time to the first line (answer received by the client minus the fake's time from
//! receiving the request to sending the token that ends the first line; goal ≤ 5 ms p50), and
//! stale answers: a non-empty suggestion that arrived after the user typed on (goal 0). Speed is
//! measured, never asserted.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::json;
use testkit::fake_model::{FakeModel, Reply, tokenize};
use testkit::inline_completion::{NEOVIM_INLINE_DELAY, NeovimInline, first_insert_text};
use testkit::lsp_client::{ClientProfile, LspClient, file_uri};

use crate::measure::{self, Summary, milliseconds as format_ms};

const TOKENS_PER_SECOND: f64 = 1200.0;
const FIRST_TOKEN: Duration = Duration::from_millis(100);
const KEYS_PER_SECOND: f64 = 15.0;
const WORD_PAUSE: Duration = Duration::from_millis(400);
const LINE_CHARS: usize = 200;
/// How many words of the line each model answer gets right.
const RIGHT_WORDS: usize = 3;

pub struct Options {
    pub build: bool,
    pub arguments: Vec<String>,
}

impl Options {
    pub fn parse(arguments: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            build: true,
            arguments: arguments.to_vec(),
        };
        for argument in arguments {
            match argument.as_str() {
                "--no-build" => options.build = false,
                other => bail!("unknown argument {other:?}\n{}", crate::USAGE),
            }
        }
        Ok(options)
    }
}

/// The line the user types: plain Rust, exactly [`LINE_CHARS`] characters.
fn typed_line() -> String {
    let base = "let total = items.iter().filter(|item| item.enabled && item.weight > threshold)\
                .map(|item| item.weight * factor).sum::<u64>() + offsets.iter().copied().sum::<u64>() \
                + base_weight + extra_weight * scale_factor - penalty;";
    let mut line: String = base.chars().take(LINE_CHARS).collect();
    while line.len() < LINE_CHARS {
        line.push(' ');
    }
    line
}

/// What the fake model answers at `position` of the line: the next words right, then wrong.
fn answer_at(line: &str, position: usize) -> String {
    let rest = &line[position..];
    let mut end = rest.len();
    let mut words = 0;
    for (index, c) in rest.char_indices() {
        if c == ' ' && index > 0 {
            words += 1;
            if words == RIGHT_WORDS {
                end = index + 1;
                break;
            }
        }
    }
    format!("{}zz_wrong();\n", &rest[..end])
}

#[derive(Default)]
struct Tally {
    requests_sent: usize,
    answered_by_model: usize,
    answered_from_cache: usize,
    empty: usize,
    /// Non-empty answers that arrived after the user typed on.
    stale: usize,
    overhead_ms: Vec<f64>,
    model_first_line_ms: Vec<f64>,
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    let baton = measure::release_baton(root, options.build)?;
    let scratch = root.join(".bench/complete");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    let workspace = scratch.join("workspace");
    std::fs::create_dir_all(workspace.join("src"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let (tally, model_requests) = runtime.block_on(drive(&baton, &scratch, &workspace))?;
    let report = render(root, options, &tally, model_requests);
    println!("\n{report}");
    let doc = root.join("docs/benchmarks.md");
    measure::write_doc_section(&doc, "bench-complete", &report)?;
    println!("written to {}", doc.display());
    Ok(())
}

async fn drive(baton: &Path, scratch: &Path, workspace: &Path) -> anyhow::Result<(Tally, usize)> {
    let fake = FakeModel::start().await;
    let settings = json!({
        "models": {"fast": {
            "provider": "openai-fim",
            "model": "bench-fim",
            "base_url": fake.base_url(),
            "api_key_env": "",
        }},
    });
    let path_text = |path: &Path| {
        path.to_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("path"))
    };
    let env_values = [
        ("BATON_LOG_FILE", path_text(&scratch.join("baton.log"))?),
        ("XDG_CONFIG_HOME", path_text(&scratch.join("config"))?),
        ("XDG_CACHE_HOME", path_text(&scratch.join("cache"))?),
    ];
    let env: Vec<(&str, &str)> = env_values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (client, _) = LspClient::start(
        baton,
        &["lsp"],
        &env,
        workspace,
        ClientProfile::Neovim,
        settings,
    )
    .await
    .context("starting baton")?;
    let file = workspace.join("src/lib.rs");
    let text = "fn weigh() -> u64 {\n    \n}\n";
    std::fs::write(&file, text)?;
    let uri = file_uri(&file);
    client.open(&uri, "rust", text).await;

    let line = typed_line();
    let keystroke = Duration::from_secs_f64(1.0 / KEYS_PER_SECOND);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut neovim = NeovimInline::new(&client, &uri, 1, 4);
    let mut late = Vec::new();
    for (position, c) in line.char_indices() {
        neovim.type_text(&c.to_string(), Duration::ZERO).await;
        if c != ' ' || position + 1 == line.len() {
            tokio::time::sleep(keystroke).await;
            continue;
        }
        // A stop after the word: Neovim's timer fires 200 ms in.
        fake.clear_replies();
        let answer = answer_at(&line, position + 1);
        let newline_token = tokenize(&answer)
            .iter()
            .position(|token| token.contains('\n'))
            .unwrap_or(0);
        fake.push(
            Reply::text(answer)
                .delay(FIRST_TOKEN)
                .rate(TOKENS_PER_SECOND),
        );
        let model_before = fake.requests().len();
        let pending = neovim.pause().await;
        let sent = Instant::now();
        tally.lock().unwrap().requests_sent += 1;
        let mut answer = tokio::spawn(async move {
            let result = pending.response().await;
            (Instant::now(), first_insert_text(&result))
        });
        let remaining = WORD_PAUSE.saturating_sub(NEOVIM_INLINE_DELAY);
        match tokio::time::timeout(remaining, &mut answer).await {
            Ok(joined) => {
                let (arrived, suggestion) = joined.context("the answer task")?;
                neovim.answered();
                let requests = fake.requests();
                let mut tally = tally.lock().unwrap();
                match suggestion {
                    None => tally.empty += 1,
                    Some(_) if requests.len() == model_before => tally.answered_from_cache += 1,
                    Some(_) => {
                        tally.answered_by_model += 1;
                        let request = &requests[model_before];
                        if let Some(first) = request.first_token_at {
                            let due = first.into_std()
                                + Duration::from_secs_f64(newline_token as f64 / TOKENS_PER_SECOND);
                            let model_ms = due
                                .saturating_duration_since(request.received_at.into_std())
                                .as_secs_f64()
                                * 1000.0;
                            let client_ms = arrived.duration_since(sent).as_secs_f64() * 1000.0;
                            tally.model_first_line_ms.push(model_ms);
                            tally.overhead_ms.push(client_ms - model_ms);
                        }
                    }
                }
            }
            // The user types on: a suggestion this request still brings is stale (Neovim
            // cancels the request at its next stop).
            Err(_) => late.push(answer),
        }
    }
    for task in late {
        let (_, suggestion) = task.await.context("a late answer's task")?;
        let mut tally = tally.lock().unwrap();
        match suggestion {
            Some(_) => tally.stale += 1,
            None => tally.empty += 1,
        }
    }
    let model_requests = fake.requests().len();
    client.shutdown().await.context("baton's shutdown")?;
    let tally = Arc::try_unwrap(tally)
        .map_err(|_| anyhow!("tally still shared"))?
        .into_inner()
        .unwrap();
    Ok((tally, model_requests))
}

fn render(root: &Path, options: &Options, tally: &Tally, model_requests: usize) -> String {
    let mut out = String::new();
    let per_key = model_requests as f64 / LINE_CHARS as f64;
    let summary = |values: &[f64]| {
        Summary::of(values)
            .map(|s| {
                format!(
                    "{} / {} / {}",
                    format_ms(s.p50),
                    format_ms(s.p90),
                    format_ms(s.max)
                )
            })
            .unwrap_or_else(|| "none".to_string())
    };
    out.push_str("## Inline completion: `cargo xtask bench-complete`\n\n");
    out.push_str(&format!(
        "Run `{}` on {}, {} (revision {}; load {}).\n\n",
        measure::command_line("bench-complete", &options.arguments),
        measure::machine_description(),
        measure::today(),
        measure::git_revision(root),
        measure::load_average(" "),
    ));
    out.push_str(&format!(
        "A {LINE_CHARS}-character line typed at {KEYS_PER_SECOND} keys/s with a {} ms stop after \
         each word; the imitated Neovim 0.12 asks {} ms into each stop and cancels its previous \
         request. Fake model: `openai-fim`, first token after {} ms, then {TOKENS_PER_SECOND} \
         tokens/s; each answer gets the next {RIGHT_WORDS} words right, then goes wrong.\n\n",
        WORD_PAUSE.as_millis(),
        NEOVIM_INLINE_DELAY.as_millis(),
        FIRST_TOKEN.as_millis(),
    ));
    out.push_str("| measure | value | goal |\n|---|---|---|\n");
    out.push_str(&format!(
        "| inline completion requests (Neovim) | {} | |\n",
        tally.requests_sent
    ));
    out.push_str(&format!(
        "| model requests per keystroke | {model_requests} / {LINE_CHARS} = {per_key:.3} | ≤ 0.2 |\n"
    ));
    out.push_str(&format!(
        "| answered from the cache (no model call) | {} | |\n",
        tally.answered_from_cache
    ));
    out.push_str(&format!(
        "| answered by the model | {} | |\n",
        tally.answered_by_model
    ));
    out.push_str(&format!("| empty answers | {} | |\n", tally.empty));
    out.push_str(&format!(
        "| model's time to first line, p50 / p90 / max | {} | |\n",
        summary(&tally.model_first_line_ms)
    ));
    out.push_str(&format!(
        "| baton's overhead over it, p50 / p90 / max | {} | ≤ 5 ms p50 |\n",
        summary(&tally.overhead_ms)
    ));
    out.push_str(&format!("| stale answers | {} | 0 |\n", tally.stale));
    out
}
