//! The reference: the same rewrite through lsp-ai 0.7.0, installed from crates.io.
//!
//! lsp-ai offers configured "actions" as code actions; resolving one (`codeAction/resolve`)
//! sends one non-streamed Chat Completions request and answers with the whole edit. So its first
//! visible change and its final state arrive together, when the resolve answer reaches the
//! editor. The fake answers that request with one JSON object sent when the last token would
//! have been streamed, so both servers face the same model speed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, anyhow, ensure};
use serde_json::json;
use testkit::fake_model::{FakeModel, Reply};
use testkit::lsp_client::{ClientProfile, Encoding, LspClient, apply_text_edits, file_uri};

use super::workload::{INSTRUCTION, Workload};
use super::{TOKENS_PER_SECOND, milliseconds, parse_edits, range_json};
use crate::measure::process_cpu_milliseconds;

pub const VERSION: &str = "0.7.0";

/// The title of the configured action.
const ACTION_TITLE: &str = "Rewrite selection (bench)";

/// Installs lsp-ai into `.bench/lsp-ai` unless it is there already; returns the binary, or why
/// there is none. The default `simsimd` feature is left out: it only speeds up the vector store,
/// which this benchmark does not use, and needs a C toolchain. `rayon` stays, because 0.7.0 does
/// not compile without it.
pub fn ensure_installed(root: &Path) -> Result<PathBuf, String> {
    let install_root = root.join(".bench/lsp-ai");
    let binary = install_root.join("bin/lsp-ai");
    if binary.exists() {
        return Ok(binary);
    }
    println!(
        "installing lsp-ai {VERSION} from crates.io into {} (slow, once)",
        install_root.display()
    );
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "install",
            "lsp-ai",
            "--version",
            VERSION,
            "--locked",
            "--no-default-features",
            "--features",
            "rayon",
        ])
        .arg("--root")
        .arg(&install_root)
        // Its own target directory: the install never waits for, or disturbs, the workspace's.
        .env("CARGO_TARGET_DIR", root.join(".bench/lsp-ai-target"))
        .status()
        .map_err(|error| format!("could not run cargo install: {error}"))?;
    if !status.success() || !binary.exists() {
        return Err(format!(
            "`cargo install lsp-ai --version {VERSION}` failed ({status})"
        ));
    }
    Ok(binary)
}

/// One measured rewrite through lsp-ai.
#[derive(Clone, Debug)]
pub struct Run {
    /// `codeAction/resolve` sent → its answer (carrying the whole edit) received.
    pub visible: f64,
    /// The fake's time to first token (when the first token was due).
    pub model_first_token: f64,
}

pub struct Results {
    pub runs: Vec<Run>,
    /// lsp-ai's CPU time over the measured runs, in milliseconds.
    pub cpu_milliseconds: f64,
}

/// Starts lsp-ai against `fake`, does one warm-up and `runs` measured rewrites, and stops it.
pub async fn measure(
    binary: &Path,
    fake: &FakeModel,
    workspace: &Path,
    workload: &Workload,
    runs: usize,
) -> anyhow::Result<Results> {
    let options = json!({
        "memory": {"file_store": {}},
        "models": {"bench": {
            "type": "open_ai",
            "chat_endpoint": format!("{}/chat/completions", fake.base_url()),
            "model": "bench-model",
            "auth_token": "bench-key",
            "max_requests_per_second": 1000.0,
        }},
        "actions": [{
            "action_display_name": ACTION_TITLE,
            "model": "bench",
            "parameters": {
                "max_context": 4096,
                "max_tokens": 4096,
                "messages": [
                    {"role": "system", "content": format!(
                        "{INSTRUCTION}. Answer with the replacement code only.")},
                    {"role": "user", "content": "{CONTEXT}\n\nSelected code:\n{SELECTED_TEXT}"},
                ],
            },
            // The answer replaces the selection as it is, as baton's does.
            "post_process": {"remove_duplicate_start": false, "remove_duplicate_end": false},
        }],
    });
    let (client, _) = LspClient::start(
        binary,
        &[],
        &[("LSP_AI_LOG", "error")],
        workspace,
        ClientProfile::Neovim,
        options,
    )
    .await
    .context("starting lsp-ai")?;
    let pid = client.server_pid().context("lsp-ai has no process id")?;

    one_run(&client, fake, workspace, workload, "warmup")
        .await
        .context("lsp-ai warm-up run")?;
    let cpu_before = process_cpu_milliseconds(pid)?;
    let mut measured = Vec::with_capacity(runs);
    for run in 0..runs {
        let result = one_run(&client, fake, workspace, workload, &run.to_string())
            .await
            .with_context(|| format!("lsp-ai run {run}"))?;
        measured.push(result);
    }
    let cpu_milliseconds = process_cpu_milliseconds(pid)? - cpu_before;
    // lsp-ai's exit is not what is measured: a failed shutdown is reported and ignored.
    if let Err(error) = client.shutdown().await {
        let first_line = error
            .to_string()
            .lines()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        println!("note: lsp-ai did not shut down cleanly: {first_line}");
    }
    Ok(Results {
        runs: measured,
        cpu_milliseconds,
    })
}

async fn one_run(
    client: &LspClient,
    fake: &FakeModel,
    workspace: &Path,
    workload: &Workload,
    name: &str,
) -> anyhow::Result<Run> {
    let path = workspace.join(format!("src/lsp_ai_{name}.rs"));
    std::fs::write(&path, &workload.original)?;
    let uri = file_uri(&path);
    client.open(&uri, "rust", &workload.original).await;
    fake.push(Reply::text(workload.reply.clone()).rate(TOKENS_PER_SECOND));
    let requests_before = fake.requests().len();

    let actions = client
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": uri},
                "range": range_json(workload.range),
                "context": {"diagnostics": []},
            }),
        )
        .await
        .map_err(|error| anyhow!("textDocument/codeAction: {error}"))?;
    let action = actions
        .as_array()
        .into_iter()
        .flatten()
        .find(|action| action["title"] == ACTION_TITLE)
        .cloned()
        .with_context(|| format!("lsp-ai offered no {ACTION_TITLE:?} action: {actions}"))?;

    let sent = Instant::now();
    let pending = client.request_id("codeAction/resolve", action);
    let id = pending.id;
    let resolved = pending
        .response()
        .await
        .map_err(|error| anyhow!("codeAction/resolve: {error}"))?;
    let state = client.state();
    let arrived = state
        .messages
        .iter()
        .zip(&state.received_at)
        .rev()
        .find(|(message, _)| message.get("method").is_none() && message["id"] == id)
        .map(|(_, at)| *at)
        .context("the resolve answer is not in the client's record")?;

    let edits = parse_edits(&resolved["edit"]["changes"][&uri])
        .with_context(|| format!("lsp-ai's resolve answer has no edit for {uri}: {resolved}"))?;
    let (text, _) = apply_text_edits(&workload.original, &edits, Encoding::Utf16)
        .map_err(|error| anyhow!("lsp-ai's edit does not apply: {error}"))?;
    ensure!(
        text == workload.expected,
        "lsp-ai's edit does not produce the expected text"
    );
    let request = fake
        .requests()
        .get(requests_before)
        .cloned()
        .context("lsp-ai sent no model request")?;
    let first_token = request
        .first_token_at
        .context("the fake sent lsp-ai no token")?
        .into_std();
    client.close(&uri).await;
    Ok(Run {
        visible: milliseconds(arrived - sent),
        model_first_token: milliseconds(first_token - request.received_at.into_std()),
    })
}
