//! The landing part of `cargo xtask bench-task`: from an agent reporting a file change to the
//! `workspace/applyEdit` reaching the editor, and what a task costs baton.
//!
//! The release `baton` runs under testkit's LSP client (Neovim profile) with testkit's scripted
//! ACP agent as the harness, so the agent's own speed is not measured: the agent stamps the
//! wall-clock time just before it sends each change's completion (`stamp_file`), and the
//! client's arrival time of the edit for that file is compared with it (both on this machine's
//! realtime clock). Three turns of one task:
//! 1. one-file changes to a buffer the editor has open (landed through the merge engine),
//!    `SINGLE_CHANGES` times, one at a time;
//! 2. a 200-file change to files the editor has not opened, reported by one completion event
//!    (landed as one workspace edit of `version: null` edits);
//! 3. 2,000 streamed message updates: baton's CPU time and RSS over the turn.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use serde_json::json;
use testkit::lsp_client::{ClientProfile, LspClient, file_uri};

use crate::bench_task::Row;
use crate::measure::{Summary, milliseconds, proc_status_kib};

const SINGLE_CHANGES: usize = 40;
const MANY_FILES: usize = 200;
const UPDATES: usize = 2_000;
const WAIT: Duration = Duration::from_secs(120);

/// Measures the landing rows. `scratch` is a directory outside `/tmp` the bench may fill.
pub fn rows(root: &Path, scratch: &Path, build: bool) -> anyhow::Result<Vec<Row>> {
    let baton = crate::measure::release_baton(root, build)?;
    let agent = testkit::scripted_agent::binary_path();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(measure(&baton, &agent, scratch))
}

struct Layout {
    workspace: PathBuf,
    stamps: PathBuf,
    script: PathBuf,
    state: PathBuf,
    home: PathBuf,
}

fn prepare(scratch: &Path) -> anyhow::Result<Layout> {
    let base = scratch.join("landing");
    if base.exists() {
        std::fs::remove_dir_all(&base).context("clearing the landing scratch")?;
    }
    let workspace = base.join("workspace");
    std::fs::create_dir_all(workspace.join("many"))?;
    std::fs::write(workspace.join("open.txt"), "version 0\n")?;
    for index in 0..MANY_FILES {
        std::fs::write(
            workspace.join(format!("many/f{index:03}.txt")),
            format!("file {index}\nline two\n"),
        )?;
    }
    let layout = Layout {
        stamps: base.join("stamps.txt"),
        script: base.join("script.json"),
        state: base.join("state"),
        home: base.join("home"),
        workspace,
    };
    let mut single = Vec::new();
    for round in 1..=SINGLE_CHANGES {
        single.push(
            json!({ "type": "write", "path": "open.txt", "content": format!("version {round}\n") }),
        );
        // Each change lands before the next: one change at a time is what is timed.
        single.push(json!({ "type": "sleep", "ms": 150 }));
    }
    single.push(json!({ "type": "message", "text": "single changes done" }));
    let mut many = Vec::new();
    for index in 0..MANY_FILES {
        many.push(json!({
            "type": "write",
            "path": format!("many/f{index:03}.txt"),
            "content": format!("file {index} changed\nline two\n"),
            // Only the last one is reported: one completion event for the whole change.
            "report": index + 1 == MANY_FILES,
        }));
    }
    let flood = vec![json!({ "type": "flood", "count": UPDATES })];
    let script = json!({
        "stamp_file": layout.stamps,
        "turns": [single, many, flood],
    });
    std::fs::write(&layout.script, serde_json::to_vec_pretty(&script)?)?;
    Ok(layout)
}

async fn measure(baton: &Path, agent: &Path, scratch: &Path) -> anyhow::Result<Vec<Row>> {
    let layout = prepare(scratch)?;
    let path_str = |path: &Path| path.to_string_lossy().into_owned();
    let settings = json!({
        "harness": {
            "agent": "scripted",
            "agents": { "scripted": {
                "kind": "acp",
                "command": [path_str(agent)],
                "env": { "SCRIPTED_AGENT_SCRIPT": path_str(&layout.script) },
            }},
            "grace_ms": 500,
        },
        "edit": { "flush_interval_ms": 20 },
    });
    let state = path_str(&layout.state);
    let config_home = path_str(&layout.home.join("config"));
    let cache_home = path_str(&layout.home.join("cache"));
    let env = [
        ("BATON_STATE_DIR", state.as_str()),
        ("XDG_CONFIG_HOME", config_home.as_str()),
        ("XDG_CACHE_HOME", cache_home.as_str()),
        ("BATON_LOG", "warn"),
    ];
    let (client, _) = LspClient::start(
        baton,
        &["lsp"],
        &env,
        &layout.workspace,
        ClientProfile::Neovim,
        settings,
    )
    .await
    .context("starting baton")?;
    let pid = client.server_pid().context("baton has no process id")?;
    // The realtime clock at one instant, to put the client's arrival instants on the agent's
    // clock.
    let (instant0, system0) = (Instant::now(), SystemTime::now());
    let to_nanos = |at: Instant| -> u128 {
        let since = system0.duration_since(UNIX_EPOCH).unwrap_or_default();
        (since + at.saturating_duration_since(instant0)).as_nanos()
    };
    let open_uri = file_uri(&layout.workspace.join("open.txt"));
    client.open(&open_uri, "text", "version 0\n").await;

    // Turn 1: one-file changes into the open buffer.
    let answer = client
        .request(
            "workspace/executeCommand",
            json!({ "command": "baton.task", "arguments": [{ "instruction": "change open.txt" }] }),
        )
        .await
        .map_err(|err| anyhow::anyhow!("baton.task: {err:?}"))?;
    let task = answer["task"].as_u64().context("no task id")?;
    wait_turn(&client, answer["job"].as_str().context("no job")?).await?;
    let text = client.text(&open_uri);
    ensure!(
        text == format!("version {SINGLE_CHANGES}\n"),
        "the open buffer holds {text:?}"
    );
    let stamps = read_stamps(&layout.stamps)?;
    ensure!(stamps.len() == SINGLE_CHANGES, "{} stamps", stamps.len());
    let arrivals = edit_arrivals(&client, &to_nanos);
    let single: Vec<f64> = stamps
        .iter()
        .filter_map(|(_, stamp)| {
            arrivals
                .iter()
                .find(|(at, uris)| at >= stamp && uris.iter().any(|uri| uri == &open_uri))
                .map(|(at, _)| (at - stamp) as f64 / 1e6)
        })
        .collect();
    ensure!(
        single.len() == SINGLE_CHANGES,
        "{} single edits arrived",
        single.len()
    );
    let single = Summary::of(&single).context("no samples")?;

    // Turn 2: 200 files at once.
    std::fs::remove_file(&layout.stamps).ok();
    let job = reply(&client, task, "change the 200 files").await?;
    wait_turn(&client, &job).await?;
    let stamps = read_stamps(&layout.stamps)?;
    let (_, stamp) = *stamps.first().context("no stamp for the 200-file change")?;
    let last = file_uri(
        &layout
            .workspace
            .join(format!("many/f{:03}.txt", MANY_FILES - 1)),
    );
    let first = file_uri(&layout.workspace.join("many/f000.txt"));
    let arrivals = edit_arrivals(&client, &to_nanos);
    let landed_all = arrivals
        .iter()
        .filter(|(at, _)| *at >= stamp)
        .scan((false, false), |seen, (at, uris)| {
            seen.0 |= uris.contains(&first);
            seen.1 |= uris.contains(&last);
            Some((seen.0 && seen.1, *at))
        })
        .find(|(both, _)| *both)
        .map(|(_, at)| (at - stamp) as f64 / 1e6)
        .context("the 200-file change never arrived whole")?;
    let state = client.state();
    let changed = (0..MANY_FILES)
        .filter(|index| {
            let uri = file_uri(&layout.workspace.join(format!("many/f{index:03}.txt")));
            state.files.get(&uri).and_then(|text| text.as_deref())
                == Some(format!("file {index} changed\nline two\n").as_str())
        })
        .count();
    ensure!(
        changed == MANY_FILES,
        "only {changed} of {MANY_FILES} files landed"
    );

    // Turn 3: 2,000 updates.
    let rss_before = rss_kib(pid)?;
    let cpu_before = cpu_nanoseconds(pid)?;
    let started = Instant::now();
    let job = reply(&client, task, "stream").await?;
    wait_turn(&client, &job).await?;
    let flood_ms = started.elapsed().as_secs_f64() * 1e3;
    let cpu = (cpu_nanoseconds(pid)? - cpu_before) as f64 / 1e6;
    let rss_after = rss_kib(pid)?;
    let peak = peak_rss_kib(pid)?;
    client.shutdown().await.context("baton's shutdown")?;

    let row = |measure: String, baton: String, goal: &str, met: String| Row {
        measure,
        baton,
        cp: "—".into(),
        worktree: "—".into(),
        goal: goal.into(),
        met,
    };
    Ok(vec![
        row(
            format!(
                "agent's completion → `workspace/applyEdit` at the editor, one-file change to an open buffer, p50 / p90 / max ({SINGLE_CHANGES} changes)"
            ),
            format!(
                "{} / {} / {}",
                milliseconds(single.p50),
                milliseconds(single.p90),
                milliseconds(single.max)
            ),
            "p50 ≤ 10 ms",
            crate::bench_task::met(single.p50 <= 10.0),
        ),
        row(
            format!(
                "agent's completion → the whole {MANY_FILES}-file change at the editor (files not open)"
            ),
            milliseconds(landed_all),
            "≤ 1 s",
            crate::bench_task::met(landed_all <= 1000.0),
        ),
        row(
            format!(
                "baton's CPU / RSS during a turn of {UPDATES} streamed updates ({:.0} ms)",
                flood_ms
            ),
            format!(
                "{} CPU; RSS {:.1} → {:.1} MiB (peak {:.1} MiB)",
                milliseconds(cpu),
                rss_before as f64 / 1024.0,
                rss_after as f64 / 1024.0,
                peak as f64 / 1024.0
            ),
            "—",
            "—".into(),
        ),
    ])
}

async fn reply(client: &LspClient, task: u64, text: &str) -> anyhow::Result<String> {
    let before: Vec<String> = client.state().created_progress_tokens.clone();
    client
        .request(
            "workspace/executeCommand",
            json!({ "command": "baton.task.reply", "arguments": [{ "task": task, "text": text }] }),
        )
        .await
        .map_err(|err| anyhow::anyhow!("baton.task.reply: {err:?}"))?;
    client
        .wait_for("the reply's progress to begin", WAIT, |state| {
            state
                .created_progress_tokens
                .iter()
                .find(|token| !before.contains(token) && token.starts_with("baton/job/"))
                .cloned()
        })
        .await
}

async fn wait_turn(client: &LspClient, token: &str) -> anyhow::Result<()> {
    client
        .wait_for("the turn to end", WAIT, |state| {
            state.progress_ended(token).then_some(())
        })
        .await?;
    let state = client.state();
    let end = state.progress[token]
        .last()
        .and_then(|event| event.message.clone())
        .unwrap_or_default();
    if end != "done" {
        bail!("the turn ended {end:?}");
    }
    Ok(())
}

/// `(tool call id, unix ns)` per stamped completion, in order.
fn read_stamps(path: &Path) -> anyhow::Result<Vec<(String, u128)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(|line| {
            let mut fields = line.split_whitespace();
            let id = fields.next().context("an empty stamp line")?.to_string();
            let nanos = fields
                .last()
                .context("a stamp without a time")?
                .parse()
                .context("a stamp time")?;
            Ok((id, nanos))
        })
        .collect()
}

/// Each `workspace/applyEdit` the client received: when (realtime ns) and which files.
fn edit_arrivals(
    client: &LspClient,
    to_nanos: &dyn Fn(Instant) -> u128,
) -> Vec<(u128, Vec<String>)> {
    let state = client.state();
    state
        .messages
        .iter()
        .zip(&state.received_at)
        .filter(|(message, _)| message["method"] == "workspace/applyEdit")
        .map(|(message, at)| {
            let uris = message["params"]["edit"]["documentChanges"]
                .as_array()
                .map(|changes| {
                    changes
                        .iter()
                        .filter_map(|change| {
                            change["textDocument"]["uri"]
                                .as_str()
                                .or(change["uri"].as_str())
                                .map(String::from)
                        })
                        .collect()
                })
                .unwrap_or_default();
            (to_nanos(*at), uris)
        })
        .collect()
}

/// The CPU time all of `pid`'s threads have run, in nanoseconds, from each thread's
/// `/proc/<pid>/task/<tid>/schedstat` (first field): the 10 ms ticks of `/proc/<pid>/stat` are
/// too coarse for a turn that takes tens of milliseconds. Threads that exited before the call
/// are not counted, so take both readings while the same threads run.
fn cpu_nanoseconds(pid: u32) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = std::fs::read_to_string(entry?.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    proc_status_kib(pid, "VmRSS:")
}

fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    proc_status_kib(pid, "VmHWM:")
}
