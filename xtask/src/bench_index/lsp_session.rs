//! The measurements that need the language server: the first `workspace/symbol` answer after
//! `initialize`, `workspace/symbol` latency once indexing has ended, and the time from a
//! one-character `didChange` to the updated `textDocument/documentSymbol` answer.
//!
//! The server is driven by the scripted Neovim client from `testkit`, over real stdio JSON-RPC.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use testkit::lsp_client::{ClientProfile, LspClient, file_uri};

use super::corpus;

/// The query polled for the first answer: a name every language in the corpus defines.
pub const FIRST_QUERY: &str = "parse";

/// How often the first-answer loop asks again.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// How many no-op requests calibrate the latencies.
const ROUND_TRIPS: usize = 200;

/// How many `documentSymbol` requests on the unchanged file calibrate the edit latency.
const UNCHANGED_REQUESTS: usize = 100;

/// A safety net against a hung server, not a measurement.
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

/// Where the server keeps its cache, configuration and log during the bench.
pub struct ServerEnvironment {
    pub cache_home: PathBuf,
    pub config_home: PathBuf,
    pub log_file: PathBuf,
}

impl ServerEnvironment {
    fn pairs(&self) -> Vec<(&str, &str)> {
        vec![
            ("XDG_CACHE_HOME", path_str(&self.cache_home)),
            ("XDG_CONFIG_HOME", path_str(&self.config_home)),
            ("BATON_LOG_FILE", path_str(&self.log_file)),
        ]
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .expect("the bench directories have UTF-8 paths")
}

/// `initialize` sent → first non-empty `workspace/symbol` answer, in milliseconds; the session
/// is left running until its indexing ends (so the cache is written) and is then shut down.
pub async fn first_symbol_answer(
    binary: &Path,
    corpus_root: &Path,
    environment: &ServerEnvironment,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let client = start(binary, corpus_root, environment).await?;
    let elapsed = loop {
        let answer = workspace_symbol(&client, FIRST_QUERY).await?;
        if answer.as_array().is_some_and(|symbols| !symbols.is_empty()) {
            break started.elapsed();
        }
        ensure!(
            started.elapsed() < GIVE_UP_AFTER,
            "no workspace/symbol answer for {FIRST_QUERY:?} within {GIVE_UP_AFTER:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    wait_for_indexing(&client).await?;
    finish(client).await;
    Ok(elapsed.as_secs_f64() * 1000.0)
}

/// Latencies (milliseconds) of the queries and of the edits, measured in one session.
pub struct Latencies {
    pub symbol_queries: Vec<f64>,
    /// How many queries had at least one result.
    pub symbol_queries_answered: usize,
    pub edits: Vec<f64>,
    /// The same edits timed inside the server, from the `didChange` being applied to the
    /// `documentSymbol` answer being ready to send (`baton.status`'s
    /// `latencies.documentSymbolAfterChangeMicros`): what baton controls of the round trip.
    pub server_edits: Vec<f64>,
    /// Requests for a method baton does not implement: what the client, the pipes and the
    /// server's dispatch cost on their own, to read the other latencies against.
    pub round_trips: Vec<f64>,
    /// `documentSymbol` on the unchanged 5,000-line file: the answer's own cost, without an edit.
    pub unchanged_document_symbols: Vec<f64>,
}

/// Starts a session, waits for indexing to end, times every query one after another, then opens
/// the generated 5,000-line file and times `edit_count` one-character edits.
pub async fn latencies(
    binary: &Path,
    corpus_root: &Path,
    edit_target: &Path,
    environment: &ServerEnvironment,
    queries: &[String],
    edit_count: usize,
) -> anyhow::Result<Latencies> {
    let client = start(binary, corpus_root, environment).await?;
    wait_for_indexing(&client).await?;

    let mut round_trips = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let started = Instant::now();
        // The error answer (method not found) is the point: nothing but dispatch runs.
        let _ = client.request("baton/benchRoundTrip", json!({})).await;
        round_trips.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    // A few queries first so that one-off costs (allocations, page faults) are not sampled.
    for query in queries.iter().take(20) {
        workspace_symbol(&client, query).await?;
    }
    let mut symbol_queries = Vec::with_capacity(queries.len());
    let mut symbol_queries_answered = 0;
    for query in queries {
        let started = Instant::now();
        let answer = workspace_symbol(&client, query).await?;
        symbol_queries.push(started.elapsed().as_secs_f64() * 1000.0);
        if answer.as_array().is_some_and(|symbols| !symbols.is_empty()) {
            symbol_queries_answered += 1;
        }
    }

    let uri = file_uri(edit_target);
    let text = std::fs::read_to_string(edit_target)
        .with_context(|| format!("{}", edit_target.display()))?;
    client.open(&uri, "rust", &text).await;
    document_symbols(&client, &uri).await?;
    let mut unchanged_document_symbols = Vec::with_capacity(UNCHANGED_REQUESTS);
    for _ in 0..UNCHANGED_REQUESTS {
        let started = Instant::now();
        document_symbols(&client, &uri).await?;
        unchanged_document_symbols.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let mut edits = Vec::with_capacity(edit_count);
    for edit in 0..edit_count {
        // Pairs of edits on one function: insert an `x` into its name, then delete it, so the
        // file stays the same size and every answer has a name to check.
        let function = (edit / 2 * 7) % 499;
        let line = corpus::edit_target_function_line(function);
        let column = "pub fn f".len() as u32;
        let inserting = edit % 2 == 0;
        let expected = if inserting {
            format!("fxunction_{function:04}")
        } else {
            format!("function_{function:04}")
        };
        // The client applies the edit to its own copy first, as an editor does; the clock
        // starts once the didChange is queued, which is when it is sent.
        if inserting {
            client
                .change(&uri, ((line, column), (line, column)), "x")
                .await;
        } else {
            client
                .change(&uri, ((line, column), (line, column + 1)), "")
                .await;
        }
        let started = Instant::now();
        let symbols = document_symbols(&client, &uri).await?;
        edits.push(started.elapsed().as_secs_f64() * 1000.0);
        ensure!(
            contains_name(&symbols, &expected),
            "documentSymbol after edit {edit} does not show {expected}"
        );
    }
    let server_edits = server_edit_latencies(&client, edit_count).await?;
    finish(client).await;
    Ok(Latencies {
        symbol_queries,
        symbol_queries_answered,
        edits,
        server_edits,
        round_trips,
        unchanged_document_symbols,
    })
}

async fn start(
    binary: &Path,
    corpus_root: &Path,
    environment: &ServerEnvironment,
) -> anyhow::Result<LspClient> {
    let (client, _) = LspClient::start(
        binary,
        &["lsp"],
        &environment.pairs(),
        corpus_root,
        ClientProfile::Neovim,
        json!({}),
    )
    .await?;
    Ok(client)
}

async fn wait_for_indexing(client: &LspClient) -> anyhow::Result<()> {
    client
        .wait_for("indexing to end", GIVE_UP_AFTER, |state| {
            state.progress_ended("baton/index").then_some(())
        })
        .await
}

/// Shuts the server down; a protocol fault is reported but does not discard the figures.
async fn finish(client: LspClient) {
    if let Err(error) = client.shutdown().await {
        eprintln!("bench-index: the session ended with a protocol fault: {error:#}");
    }
}

async fn workspace_symbol(client: &LspClient, query: &str) -> anyhow::Result<Value> {
    client
        .request("workspace/symbol", json!({ "query": query }))
        .await
        .map_err(|error| anyhow::anyhow!("workspace/symbol {query:?}: {error}"))
}

async fn document_symbols(client: &LspClient, uri: &str) -> anyhow::Result<Value> {
    let answer = client
        .request(
            "textDocument/documentSymbol",
            json!({ "textDocument": { "uri": uri } }),
        )
        .await
        .map_err(|error| anyhow::anyhow!("documentSymbol: {error}"))?;
    if !answer.is_array() {
        bail!("documentSymbol answered {answer}");
    }
    Ok(answer)
}

/// The server's own timings of the last `count` edits → `documentSymbol` answers, in
/// milliseconds, from `baton.status`.
async fn server_edit_latencies(client: &LspClient, count: usize) -> anyhow::Result<Vec<f64>> {
    let status = client
        .request(
            "workspace/executeCommand",
            json!({ "command": "baton.status", "arguments": [] }),
        )
        .await
        .map_err(|error| anyhow::anyhow!("baton.status: {error}"))?;
    let samples: Vec<f64> = status["latencies"]["documentSymbolAfterChangeMicros"]
        .as_array()
        .context("baton.status has no latencies.documentSymbolAfterChangeMicros")?
        .iter()
        .filter_map(Value::as_f64)
        .map(|micros| micros / 1000.0)
        .collect();
    ensure!(
        samples.len() >= count,
        "baton timed {} edit answers, {count} were sent",
        samples.len()
    );
    Ok(samples[samples.len() - count..].to_vec())
}

/// Whether a (possibly nested) documentSymbol answer names `name`.
fn contains_name(symbols: &Value, name: &str) -> bool {
    symbols.as_array().is_some_and(|symbols| {
        symbols
            .iter()
            .any(|symbol| symbol["name"] == name || contains_name(&symbol["children"], name))
    })
}

/// `count` queries drawn deterministically from real symbol names: exact names, prefixes and
/// fuzzy subsequences, in turn.
pub fn queries_from_names(names: &[String], count: usize) -> Vec<String> {
    let usable: Vec<&String> = names
        .iter()
        .filter(|name| {
            name.len() >= 4 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .collect();
    if usable.is_empty() {
        return Vec::new();
    }
    // A fixed linear congruential generator: the same corpus gives the same queries.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    (0..count)
        .map(|number| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let name = usable[(state >> 33) as usize % usable.len()];
            match number % 3 {
                0 => name.clone(),
                1 => name[..(name.len() / 2).max(3)].to_string(),
                _ => name.chars().step_by(2).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_cycle_through_exact_prefix_and_fuzzy() {
        let names = vec!["abc".to_string(), "load_config".to_string()];
        let queries = queries_from_names(&names, 3);
        assert_eq!(queries, ["load_config", "load_", "la_ofg"]);
    }

    #[test]
    fn nested_names_are_found() {
        let symbols = json!([{ "name": "Outer", "children": [{ "name": "inner" }] }]);
        assert!(contains_name(&symbols, "inner"));
        assert!(!contains_name(&symbols, "missing"));
    }
}
