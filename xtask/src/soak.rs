//! `cargo xtask soak [--minutes N] [--seed S] [--no-build]`: a scripted editor works with the
//! release `baton lsp` for N minutes, and the soak reports what drifted, leaked or got lost.
//!
//! The editor is the testkit client imitating Neovim. It types about 10 keys a second into
//! three open files (Rust, Python, TypeScript, with multi-byte text), into notes that no job
//! touches, words that are unique so each can be found again, with a typo and its backspace now
//! and then. Meanwhile it runs one inline edit job (`baton.edit` on the file's job block) after
//! another, each scripted from a seed ([`scenario::Script`]): streamed to the end, cancelled
//! part-way, an HTTP 500, a truncated stream, a stalled stream ended by the model read timeout
//! or by a cancel, or the user typing inside the target. Files that are not open change on disk
//! and the client says so with `workspace/didChangeWatchedFiles`.
//!
//! Every 30 seconds the soak stops typing, lets the running job end, and compares each
//! document's text and version as `baton.status` reports them with the client's copy, checks
//! every typed word in both, and samples baton's RSS and open file descriptors from `/proc`.
//! The first sample after the warm-up (a tenth of the run, at least 30 s) is the baseline the
//! end is compared with. The report is printed and written into `docs/benchmarks.md`; the
//! command fails when a goal is missed (divergence, lost text, RSS growth over 10 %, fd growth,
//! a job that never ended, a protocol problem), so it can serve as a check.
//!
//! The seed fixes the sequence of choices (scripts, files, typos), not the timing: the choices
//! are drawn as events happen, so two runs with one seed differ in their details.

mod scenario;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use testkit::fake_model::{FakeModel, Fault, Reply};
use testkit::lsp_client::{ClientProfile, ClientState, Encoding, LspClient, file_uri};

use crate::measure;
use scenario::{Language, Random, Script};

/// The typing cadence: one key per tick.
const KEY_INTERVAL: Duration = Duration::from_millis(100);
/// How often the soak stops to compare documents and sample the process.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(30);
/// How often a file that is not open changes on disk.
const DISK_CHANGE_INTERVAL: Duration = Duration::from_secs(4);
/// The model's streaming speed: slow enough that jobs overlap a good deal of typing.
const TOKENS_PER_SECOND: f64 = 60.0;
/// baton's model read timeout in the soak, which ends stalled streams.
const MODEL_IDLE_TIMEOUT_MS: u64 = 2000;
/// A job running this long is counted as hung and cancelled: a safety net, not a measurement.
const JOB_HANG: Duration = Duration::from_secs(60);
/// The RSS goal: growth from the baseline to the end, in percent.
const RSS_GROWTH_GOAL_PERCENT: f64 = 10.0;

pub struct Options {
    pub minutes: f64,
    pub seed: u64,
    pub build: bool,
    /// The arguments as given, to print the exact command.
    pub arguments: Vec<String>,
}

impl Options {
    pub fn parse(arguments: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            minutes: 30.0,
            seed: 1,
            build: true,
            arguments: arguments.to_vec(),
        };
        let mut rest = arguments.iter();
        while let Some(argument) = rest.next() {
            let mut value = || {
                rest.next()
                    .with_context(|| format!("{argument} needs a value"))
            };
            match argument.as_str() {
                "--minutes" => {
                    options.minutes = value()?.parse().context("--minutes takes a number")?;
                    if options.minutes.is_nan() || options.minutes <= 0.0 {
                        bail!("--minutes must be positive");
                    }
                }
                "--seed" => options.seed = value()?.parse().context("--seed takes an integer")?,
                "--no-build" => options.build = false,
                other => bail!("unknown argument {other:?}\n{}", crate::USAGE),
            }
        }
        Ok(options)
    }

    fn command_line(&self) -> String {
        crate::measure::command_line("soak", &self.arguments)
    }
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    let baton = measure::release_baton(root, options.build)?;
    let scratch = root.join(".bench/soak");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("clearing {}", scratch.display()))?;
    }
    let workspace = scratch.join("workspace");
    std::fs::create_dir_all(&workspace)?;
    let load_at_start = crate::measure::load_average(" / ");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let figures = runtime.block_on(soak(&baton, &scratch, &workspace, options))?;
    let load_at_end = crate::measure::load_average(" / ");

    let misses = figures.missed_goals();
    let report = render(
        root,
        options,
        &figures,
        &load_at_start,
        &load_at_end,
        &misses,
    );
    println!("\n{report}");
    let doc = root.join("docs/benchmarks.md");
    measure::write_doc_section(&doc, "soak", &report)?;
    println!("written to {}", doc.display());
    if !misses.is_empty() {
        bail!("the soak missed its goals: {}", misses.join("; "));
    }
    Ok(())
}

/// One sample of baton's process.
#[derive(Clone, Copy, Debug)]
struct ProcessSample {
    at: Duration,
    rss_kib: u64,
    open_fds: usize,
    /// Of `open_fds`, TCP connections to the fake model. The HTTP client keeps an idle
    /// connection for reuse or not depending on timing, so one of them is not a leak.
    model_connections: usize,
}

impl ProcessSample {
    /// The descriptors compared for growth: all but one idle keep-alive connection to the model.
    fn compared_fds(&self) -> usize {
        self.open_fds - self.model_connections.min(1)
    }
}

fn sample_process(pid: u32, at: Duration, model_port: u16) -> anyhow::Result<ProcessSample> {
    let rss_kib = crate::measure::proc_status_kib(pid, "VmRSS:")?;
    let mut open_fds = 0;
    let mut socket_inodes = BTreeSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("listing /proc/{pid}/fd"))?
    {
        open_fds += 1;
        // A descriptor closed between listing and reading is simply not a socket.
        let Ok(target) = std::fs::read_link(entry?.path()) else {
            continue;
        };
        if let Some(inode) = target
            .to_str()
            .and_then(|target| target.strip_prefix("socket:["))
            .and_then(|rest| rest.strip_suffix(']'))
        {
            socket_inodes.insert(inode.to_string());
        }
    }
    let mut model_connections = 0;
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        // Columns: sl, local address, remote address (hex IP:port), state, queues, timer,
        // retransmits, uid, timeout, inode.
        for line in text.lines().skip(1) {
            let columns: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(inode)) = (columns.get(2), columns.get(9)) else {
                continue;
            };
            let port = remote
                .rsplit_once(':')
                .and_then(|(_, port)| u16::from_str_radix(port, 16).ok());
            if port == Some(model_port) && socket_inodes.contains(*inode) {
                model_connections += 1;
            }
        }
    }
    Ok(ProcessSample {
        at,
        rss_kib,
        open_fds,
        model_connections,
    })
}

/// Everything the soak counted.
#[derive(Default)]
struct Figures {
    elapsed: Duration,
    typing_time: Duration,
    keys: u64,
    backspaces: u64,
    words_outside: u64,
    characters_outside: u64,
    /// Words typed into a running job's target, and how many of them were still there after
    /// the job ended, in the client's text and the server's.
    words_inside: u64,
    words_inside_kept: u64,
    /// Typed words missing from the client's or the server's text, with where and when.
    lost_words: Vec<String>,
    lost_characters: u64,
    edits_applied: usize,
    edits_skipped_stale: usize,
    edits_rejected: usize,
    /// Jobs by script and by how they ended (`done`, `cancelled`, `failed`, `stopped`).
    outcomes: BTreeMap<(Script, String), u64>,
    /// Failure reasons as the progress end said them, with counts.
    failure_reasons: BTreeMap<String, u64>,
    jobs_hung: u64,
    /// `baton.edit` refused (the reply queued for it is then left unused).
    jobs_refused: Vec<String>,
    /// Replies pushed to the fake that no request took: a job that ended without asking.
    replies_unused: usize,
    cancels_sent: u64,
    disk_changes: u64,
    checkpoints: u64,
    /// Checkpoint comparisons where baton's document differed from the client's.
    divergences: Vec<String>,
    documents_compared: u64,
    /// Jobs that ended with their block holding something else than the answer (done) or the
    /// original (cancelled, failed).
    wrong_blocks: Vec<String>,
    blocks_lost: Vec<String>,
    samples: Vec<ProcessSample>,
    baseline: Option<ProcessSample>,
    end: Option<ProcessSample>,
    protocol_problems: Vec<String>,
    model_requests: usize,
}

impl Figures {
    fn jobs(&self) -> u64 {
        self.outcomes.values().sum()
    }

    fn jobs_ending(&self, outcome: &str) -> u64 {
        self.outcomes
            .iter()
            .filter(|((_, ended), _)| ended == outcome)
            .map(|(_, count)| count)
            .sum()
    }

    fn rss_growth_percent(&self) -> Option<f64> {
        let (start, end) = (self.baseline?, self.end?);
        Some((end.rss_kib as f64 - start.rss_kib as f64) / start.rss_kib as f64 * 100.0)
    }

    fn missed_goals(&self) -> Vec<String> {
        let mut misses = Vec::new();
        if !self.divergences.is_empty() {
            misses.push(format!(
                "{} document comparisons diverged",
                self.divergences.len()
            ));
        }
        if !self.lost_words.is_empty() {
            misses.push(format!(
                "{} typed words ({} characters) were lost",
                self.lost_words.len(),
                self.lost_characters
            ));
        }
        if self.words_inside_kept != self.words_inside {
            misses.push(format!(
                "{} of {} words typed inside a target were not kept",
                self.words_inside - self.words_inside_kept,
                self.words_inside
            ));
        }
        match self.rss_growth_percent() {
            Some(growth) if growth > RSS_GROWTH_GOAL_PERCENT => {
                misses.push(format!("RSS grew {growth:.1} % after the warm-up"))
            }
            Some(_) => {}
            None => misses.push("no RSS baseline after the warm-up".to_string()),
        }
        if let (Some(start), Some(end)) = (self.baseline, self.end)
            && end.compared_fds() > start.compared_fds()
        {
            misses.push(format!(
                "open file descriptors grew from {} to {} ({} and {} connections to the model)",
                start.open_fds, end.open_fds, start.model_connections, end.model_connections
            ));
        }
        if !self.wrong_blocks.is_empty() {
            misses.push(format!(
                "{} jobs left their block with the wrong text",
                self.wrong_blocks.len()
            ));
        }
        if self.jobs_hung > 0 {
            misses.push(format!("{} jobs never ended", self.jobs_hung));
        }
        if !self.blocks_lost.is_empty() {
            misses.push(format!(
                "{} job blocks lost their markers",
                self.blocks_lost.len()
            ));
        }
        if !self.protocol_problems.is_empty() {
            misses.push(format!(
                "{} protocol problems",
                self.protocol_problems.len()
            ));
        }
        misses
    }
}

/// One open document and the words typed into it that must stay.
struct OpenFile {
    language: Language,
    uri: String,
    /// Completed words typed into the notes.
    words: Vec<String>,
    /// Words on the current notes line, to start a new line now and then.
    words_on_line: u32,
}

/// A key the typist presses.
#[derive(Clone, Copy)]
enum Key {
    Character(char),
    Backspace,
}

/// What the typist is in the middle of: keys left to press into one file, and the word they
/// complete.
struct Typing {
    file: usize,
    keys: std::collections::VecDeque<Key>,
    word: String,
}

/// The job that is running, if any.
struct RunningJob {
    token: String,
    file: usize,
    script: Script,
    started: Instant,
    /// `apply_edits.len()` when the job started: later records belong to it.
    edits_before: usize,
    /// When to cancel (for the cancel scripts), from the start.
    cancel_after: Duration,
    acted: bool,
    /// The word typed inside the target, for [`Script::TypeInTarget`].
    inside_word: Option<String>,
    /// The block's text when the job started, which a cancelled or failed job restores.
    original: String,
    /// The model's answer, which a finished job leaves in the block.
    reply: String,
}

struct Soak<'a> {
    client: LspClient,
    fake: FakeModel,
    scratch: &'a Path,
    encoding: Encoding,
    pid: u32,
    random: Random,
    files: Vec<OpenFile>,
    typing: Option<Typing>,
    next_word: u64,
    next_job: u64,
    job: Option<RunningJob>,
    next_job_at: Instant,
    next_disk_change_at: Instant,
    /// Files that are not open, by path, with whether they exist now.
    disk_files: Vec<(PathBuf, Language, bool)>,
    started: Instant,
    figures: Figures,
}

async fn soak(
    baton: &Path,
    scratch: &Path,
    workspace: &Path,
    options: &Options,
) -> anyhow::Result<Figures> {
    let fake = FakeModel::start().await;
    let settings = json!({
        "models": {"fast": {
            "provider": "openai",
            "model": "soak-model",
            "base_url": fake.base_url(),
            "api_key_env": "BATON_SOAK_KEY",
            // One request per job, so the fake's replies stay in step with the jobs.
            "max_retries": 0,
            "idle_timeout_ms": MODEL_IDLE_TIMEOUT_MS,
        }},
    });
    let log_file = scratch.join("baton.log");
    let config_home = scratch.join("config");
    let cache_home = scratch.join("cache");
    let env = [
        ("BATON_SOAK_KEY", "soak-key"),
        ("BATON_LOG_FILE", path_str(&log_file)?),
        ("XDG_CONFIG_HOME", path_str(&config_home)?),
        ("XDG_CACHE_HOME", path_str(&cache_home)?),
    ];
    let mut disk_files = Vec::new();
    for language in Language::ALL {
        let path = workspace.join(language.open_path());
        std::fs::create_dir_all(path.parent().expect("a nested path"))?;
        std::fs::write(&path, language.initial_text())?;
        for number in 0..2 {
            let path = workspace.join(format!("lib/disk_{number}.{}", language.extension()));
            std::fs::create_dir_all(path.parent().expect("a nested path"))?;
            std::fs::write(&path, language.disk_file(0))?;
            disk_files.push((path, language, true));
        }
    }
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
    let pid = client.server_pid().context("baton has no process id")?;
    let encoding = Encoding::from_name(client.position_encoding())
        .context("the client negotiated an unknown encoding")?;
    let mut files = Vec::new();
    for language in Language::ALL {
        let uri = file_uri(&workspace.join(language.open_path()));
        client
            .open(&uri, language.language_id(), &language.initial_text())
            .await;
        files.push(OpenFile {
            language,
            uri,
            words: Vec::new(),
            words_on_line: 0,
        });
    }
    let now = Instant::now();
    let mut soak = Soak {
        client,
        fake,
        scratch,
        encoding,
        pid,
        random: Random(options.seed),
        files,
        typing: None,
        next_word: 1,
        next_job: 1,
        job: None,
        next_job_at: now + Duration::from_secs(1),
        next_disk_change_at: now + DISK_CHANGE_INTERVAL,
        disk_files,
        started: now,
        figures: Figures::default(),
    };
    println!(
        "soak: {} minute(s), seed {}, baton pid {pid}, {} positions",
        options.minutes,
        options.seed,
        encoding.name()
    );
    soak.drive(Duration::from_secs_f64(options.minutes * 60.0))
        .await?;
    Ok(soak.finish().await)
}

impl Soak<'_> {
    async fn drive(&mut self, length: Duration) -> anyhow::Result<()> {
        let warm_up = (length / 10).max(Duration::from_secs(30)).min(length / 2);
        let mut next_checkpoint = self.started + CHECKPOINT_INTERVAL;
        // Checkpoints pause the typing; the keys/s figure is over the rest of the time.
        let mut checkpoint_time = Duration::ZERO;
        let mut ticks = tokio::time::interval(KEY_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = Instant::now();
            if now >= self.started + length {
                break;
            }
            if now >= next_checkpoint {
                let paused = Instant::now();
                self.checkpoint().await?;
                checkpoint_time += paused.elapsed();
                let elapsed = self.started.elapsed();
                if self.figures.baseline.is_none()
                    && elapsed >= warm_up
                    && let Some(sample) = self.figures.samples.last()
                {
                    self.figures.baseline = Some(*sample);
                }
                next_checkpoint = Instant::now() + CHECKPOINT_INTERVAL;
                continue;
            }
            self.press_key();
            self.step_job().await?;
            if now >= self.next_disk_change_at {
                self.change_disk();
                self.next_disk_change_at = now + DISK_CHANGE_INTERVAL;
            }
        }
        self.figures.elapsed = self.started.elapsed();
        self.figures.typing_time = self.figures.elapsed.saturating_sub(checkpoint_time);
        // The end: a last checkpoint, whose sample is the end of the RSS and fd comparison.
        self.checkpoint().await?;
        self.figures.end = self.figures.samples.last().copied();
        if self.figures.baseline.is_none() {
            self.figures.baseline = self.figures.samples.first().copied();
        }
        Ok(())
    }

    /// Reads from the client's state under its lock, without copying all of it (which grows
    /// with every message of the run).
    async fn peek<T>(&self, read: impl FnMut(&ClientState) -> Option<T>) -> anyhow::Result<T> {
        self.client
            .wait_for("the client's state", Duration::ZERO, read)
            .await
    }

    fn press_key(&mut self) {
        if self
            .typing
            .as_ref()
            .is_none_or(|typing| typing.keys.is_empty())
        {
            if let Some(done) = self.typing.take() {
                let file = &mut self.files[done.file];
                self.figures.words_outside += 1;
                self.figures.characters_outside += done.word.chars().count() as u64;
                file.words.push(done.word);
                file.words_on_line += 1;
            }
            self.typing = Some(self.plan_word());
        }
        let typing = self.typing.as_mut().expect("planned above");
        let key = typing.keys.pop_front().expect("a planned word has keys");
        let file = &self.files[typing.file];
        let text = self.client.text(&file.uri);
        let Some(offset) = scenario::typing_offset(&text) else {
            // The notes are gone: counted when the words are checked; nothing to type into.
            return;
        };
        let at = scenario::position(&text, offset, self.encoding);
        match key {
            Key::Character(character) => {
                self.client
                    .change_nowait(&file.uri, (at, at), character.encode_utf8(&mut [0; 4]));
            }
            Key::Backspace => {
                let previous = text[..offset].chars().next_back().map_or(0, char::len_utf8);
                let from = scenario::position(&text, offset - previous, self.encoding);
                self.client.change_nowait(&file.uri, (from, at), "");
                self.figures.backspaces += 1;
            }
        }
        self.figures.keys += 1;
    }

    /// The next word: usually in the same file, a new notes line now and then, and a typo
    /// corrected with a backspace in one word out of seven.
    fn plan_word(&mut self) -> Typing {
        let file = match &self.typing {
            Some(previous) if self.random.below(10) < 6 => previous.file,
            _ => self.random.below(self.files.len() as u64) as usize,
        };
        let word = scenario::word("w", self.next_word);
        self.next_word += 1;
        let mut keys = std::collections::VecDeque::new();
        if self.files[file].words_on_line >= 6 {
            keys.extend(
                self.files[file]
                    .language
                    .new_notes_line()
                    .chars()
                    .map(Key::Character),
            );
            self.files[file].words_on_line = 0;
        }
        keys.push_back(Key::Character(' '));
        let typo_at = (self.random.below(7) == 0).then(|| self.random.between(1, 3) as usize);
        for (index, character) in word.chars().enumerate() {
            if Some(index) == typo_at {
                keys.push_back(Key::Character('q'));
                keys.push_back(Key::Backspace);
            }
            keys.push_back(Key::Character(character));
        }
        Typing { file, keys, word }
    }

    /// Starts, steers and ends the scripted jobs, one at a time (the fake's replies are used in
    /// request order, so one job at a time keeps each reply with its job).
    async fn step_job(&mut self) -> anyhow::Result<()> {
        let Some(job) = &self.job else {
            if Instant::now() >= self.next_job_at {
                self.start_job().await?;
            }
            return Ok(());
        };
        let token = job.token.clone();
        let edits_before = job.edits_before;
        let (ended, edits_seen) = self
            .peek(|state| {
                let end = state.progress.get(&token).and_then(|events| {
                    events
                        .iter()
                        .find(|event| event.kind == "end")
                        .map(|event| event.message.clone().unwrap_or_default())
                });
                Some((end, state.apply_edits.len() > edits_before))
            })
            .await?;
        if let Some(message) = ended {
            return self.end_job(&message).await;
        }
        let job = self.job.as_mut().expect("checked above");
        let elapsed = job.started.elapsed();
        if elapsed > JOB_HANG {
            self.figures.jobs_hung += 1;
            println!("job {token} has run for {elapsed:?}: counted as hung, cancelling");
            self.cancel(&token).await?;
            self.wait_for_job_end().await?;
            return Ok(());
        }
        if job.acted {
            return Ok(());
        }
        match job.script {
            Script::Cancel | Script::StallCancel if elapsed >= job.cancel_after => {
                job.acted = true;
                self.cancel(&token).await?;
            }
            Script::TypeInTarget if edits_seen => {
                job.acted = true;
                let uri = self.files[job.file].uri.clone();
                let text = self.client.text(&uri);
                if let Some(offset) = scenario::inside_job_block(&text) {
                    let word = scenario::word("in", self.next_word);
                    self.next_word += 1;
                    let at = scenario::position(&text, offset, self.encoding);
                    // Typed in one burst: what matters is that the job sees the user in its
                    // target, and that the word stays.
                    self.client
                        .change_nowait(&uri, (at, at), &format!("{word} "));
                    self.figures.keys += word.chars().count() as u64 + 1;
                    self.figures.words_inside += 1;
                    job.inside_word = Some(word);
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn cancel(&mut self, token: &str) -> anyhow::Result<()> {
        self.figures.cancels_sent += 1;
        self.client
            .request(
                "workspace/executeCommand",
                json!({"command": "baton.cancel", "arguments": [{"job": token}]}),
            )
            .await
            .map_err(|error| anyhow!("baton.cancel: {error}"))?;
        Ok(())
    }

    async fn start_job(&mut self) -> anyhow::Result<()> {
        let number = self.next_job;
        self.next_job += 1;
        let file = self.random.below(self.files.len() as u64) as usize;
        let language = self.files[file].language;
        let uri = self.files[file].uri.clone();
        let text = self.client.text(&uri);
        let Some(block) = scenario::job_block(&text) else {
            let problem = format!("{}: the job block's markers are gone", language.open_path());
            if !self.figures.blocks_lost.contains(&problem) {
                println!("{problem}");
                self.figures.blocks_lost.push(problem);
            }
            self.next_job_at = Instant::now() + Duration::from_secs(1);
            return Ok(());
        };
        let script = Script::pick(&mut self.random);
        let steps = self.random.between(2, 6);
        let reply_text = language.block(number, steps);
        let streamed = Reply::text(reply_text.clone()).rate(TOKENS_PER_SECOND);
        let reply = match script {
            Script::Done | Script::Cancel | Script::TypeInTarget => streamed,
            Script::ServerError => Reply::status(500, "soak: injected server error"),
            Script::Truncated => {
                streamed.fault(Fault::TruncateAfter(self.random.between(3, 30) as usize))
            }
            Script::StallTimeout | Script::StallCancel => {
                streamed.fault(Fault::StallAfter(self.random.between(3, 30) as usize))
            }
        };
        let cancel_after = Duration::from_millis(self.random.between(200, 900));
        self.fake.push(reply);
        let edits_before = self.peek(|state| Some(state.apply_edits.len())).await?;
        let range = json!({
            "start": position_json(scenario::position(&text, block.start, self.encoding)),
            "end": position_json(scenario::position(&text, block.end, self.encoding)),
        });
        let answer = self
            .client
            .request(
                "workspace/executeCommand",
                json!({"command": "baton.edit", "arguments": [{
                    "textDocument": {"uri": uri},
                    "range": range,
                    "instruction": format!("soak job {number}: rewrite this block"),
                }]}),
            )
            .await;
        let token = match answer
            .as_ref()
            .ok()
            .and_then(|answer| answer["job"].as_str())
        {
            Some(token) => token.to_string(),
            None => {
                let problem = format!("job {number}: baton.edit answered {answer:?}");
                println!("{problem}");
                self.figures.jobs_refused.push(problem);
                self.next_job_at = Instant::now() + Duration::from_secs(1);
                return Ok(());
            }
        };
        self.job = Some(RunningJob {
            token,
            file,
            script,
            started: Instant::now(),
            edits_before,
            cancel_after,
            acted: false,
            inside_word: None,
            original: text[block].to_string(),
            reply: reply_text,
        });
        Ok(())
    }

    /// Counts a job's end, checks the word typed in its target, and schedules the next job.
    async fn end_job(&mut self, message: &str) -> anyhow::Result<()> {
        let job = self.job.take().expect("a running job");
        // A job that ended before asking the model leaves its reply queued; the next job must
        // not get it.
        self.figures.replies_unused += self.fake.clear_replies();
        let outcome = message
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        if outcome == "failed" {
            let reason = message.trim_start_matches("failed:").trim().to_string();
            *self.figures.failure_reasons.entry(reason).or_default() += 1;
        }
        *self
            .figures
            .outcomes
            .entry((job.script, outcome.clone()))
            .or_default() += 1;
        // Only the user's word in the target may leave anything else: a finished job leaves
        // the answer, a cancelled or failed one (whose target nobody else touched) the original.
        let expected = match outcome.as_str() {
            "done" if job.inside_word.is_none() => Some((&job.reply, "the model's answer")),
            "cancelled" | "failed" if job.inside_word.is_none() => {
                Some((&job.original, "the original text"))
            }
            _ => None,
        };
        if let Some((expected, what)) = expected {
            let path = self.files[job.file].language.open_path();
            let text = self.client.text(&self.files[job.file].uri);
            let block = scenario::job_block(&text).map(|block| text[block].to_string());
            if block.as_ref() != Some(expected) {
                let number = self.figures.wrong_blocks.len() + 1;
                let saved = self.scratch.join(format!("wrong-block-{number}"));
                std::fs::create_dir_all(&saved)?;
                std::fs::write(saved.join("expected.txt"), expected)?;
                std::fs::write(saved.join("found.txt"), block.unwrap_or_default())?;
                let problem = format!(
                    "{path}: job {} ({}) ended “{message}” but its block does not hold {what} \
                     (saved in {})",
                    job.token,
                    job.script.describe(),
                    saved.display()
                );
                println!("WRONG BLOCK {problem}");
                self.figures.wrong_blocks.push(problem);
            }
        }
        if let Some(word) = &job.inside_word {
            let uri = &self.files[job.file].uri;
            let client_text = self.client.text(uri);
            let (_, server_text) = self.server_document(uri).await?;
            let mut kept = true;
            for (side, text) in [("client", &client_text), ("baton", &server_text)] {
                if !text.contains(word.as_str()) {
                    kept = false;
                    self.lose(word, &format!(
                        "typed inside job {}'s target in {}, missing from the {side}'s text when the job ended ({message})",
                        job.token,
                        self.files[job.file].language.open_path(),
                    ));
                }
            }
            if kept {
                self.figures.words_inside_kept += 1;
            }
        }
        self.next_job_at = Instant::now() + Duration::from_millis(self.random.between(500, 2500));
        Ok(())
    }

    fn lose(&mut self, word: &str, context: &str) {
        let entry = format!("{word}: {context}");
        println!("LOST {entry}");
        self.figures.lost_characters += word.chars().count() as u64;
        self.figures.lost_words.push(entry);
    }

    async fn wait_for_job_end(&mut self) -> anyhow::Result<()> {
        let Some(job) = &self.job else {
            return Ok(());
        };
        let token = job.token.clone();
        let waited = self
            .client
            .wait_for(&format!("the end of {token}"), JOB_HANG, |state| {
                state.progress.get(&token).and_then(|events| {
                    events
                        .iter()
                        .find(|event| event.kind == "end")
                        .map(|event| event.message.clone().unwrap_or_default())
                })
            })
            .await;
        match waited {
            Ok(message) => self.end_job(&message).await,
            Err(error) => {
                self.figures.jobs_hung += 1;
                self.job = None;
                println!("job {token} never ended: {error:#}");
                Ok(())
            }
        }
    }

    async fn server_document(&self, uri: &str) -> anyhow::Result<(i64, String)> {
        let status = self
            .client
            .request(
                "workspace/executeCommand",
                json!({"command": "baton.status", "arguments": [{"textDocument": {"uri": uri}}]}),
            )
            .await
            .map_err(|error| anyhow!("baton.status: {error}"))?;
        Ok((
            status["version"].as_i64().unwrap_or(-1),
            status["text"].as_str().unwrap_or_default().to_string(),
        ))
    }

    /// Writes, rewrites or deletes a file that is not open and tells baton.
    fn change_disk(&mut self) {
        let index = self.random.below(self.disk_files.len() as u64) as usize;
        let generation = self.figures.disk_changes + 1;
        let (path, language, exists) = &mut self.disk_files[index];
        let change_type = if *exists && self.random.below(3) == 0 {
            let _ = std::fs::remove_file(&*path);
            *exists = false;
            3
        } else {
            let created = !*exists;
            if std::fs::write(&*path, language.disk_file(generation)).is_err() {
                return;
            }
            *exists = true;
            if created { 1 } else { 2 }
        };
        self.client.notify(
            "workspace/didChangeWatchedFiles",
            json!({"changes": [{"uri": file_uri(path), "type": change_type}]}),
        );
        self.figures.disk_changes += 1;
    }

    /// Lets the running job end, then compares every document with baton's copy, checks every
    /// typed word on both sides, and samples the process.
    async fn checkpoint(&mut self) -> anyhow::Result<()> {
        self.wait_for_job_end().await?;
        self.figures.checkpoints += 1;
        let at = self.started.elapsed();
        for index in 0..self.files.len() {
            let uri = self.files[index].uri.clone();
            let path = self.files[index].language.open_path();
            let client_text = self.client.text(&uri);
            let client_version = self.client.version(&uri);
            let (server_version, server_text) = self.server_document(&uri).await?;
            self.figures.documents_compared += 1;
            for word in self.files[index].words.clone() {
                for (side, text) in [("client", &client_text), ("baton", &server_text)] {
                    let already = self
                        .figures
                        .lost_words
                        .iter()
                        .any(|lost| lost.starts_with(&format!("{word}:")));
                    if !already && !text.contains(word.as_str()) {
                        self.lose(
                            &word,
                            &format!("typed in the notes of {path}, missing from the {side}'s text at {at:.0?}"),
                        );
                    }
                }
            }
            if server_text != client_text || server_version != i64::from(client_version) {
                let number = self.figures.divergences.len() + 1;
                let saved = self.scratch.join(format!("diverged-{number}"));
                std::fs::create_dir_all(&saved)?;
                std::fs::write(saved.join("client.txt"), &client_text)?;
                std::fs::write(saved.join("baton.txt"), &server_text)?;
                let problem = format!(
                    "{path} at {at:.0?}: client version {client_version}, baton version \
                     {server_version}, texts {} (saved in {})",
                    if server_text == client_text {
                        "equal"
                    } else {
                        "differ"
                    },
                    saved.display()
                );
                println!("DIVERGED {problem}");
                self.figures.divergences.push(problem);
                // Reopen from the client's copy so the rest of the run measures something.
                self.client.close(&uri).await;
                let language = self.files[index].language;
                self.client
                    .open(&uri, language.language_id(), &client_text)
                    .await;
            }
        }
        let sample = sample_process(self.pid, at, self.fake.addr().port())?;
        self.figures.samples.push(sample);
        let (applied, stale, rejected, problems) = self
            .peek(|state| {
                let mut counts = (0, 0, 0);
                for record in &state.apply_edits {
                    if record.response["applied"] == false {
                        counts.2 += 1;
                    } else if !record.skipped_stale.is_empty() {
                        counts.1 += 1;
                    } else {
                        counts.0 += 1;
                    }
                }
                Some((counts.0, counts.1, counts.2, state.problems.clone()))
            })
            .await?;
        self.figures.edits_applied = applied;
        self.figures.edits_skipped_stale = stale;
        self.figures.edits_rejected = rejected;
        self.figures.protocol_problems = problems;
        println!(
            "{:>6.0?}  keys {:>6}  jobs {:>4} (done {}, cancelled {}, failed {}, stopped {})  edits {:>6}  diverged {}  lost words {}  RSS {:.1} MiB  fds {} ({} to the model)",
            at,
            self.figures.keys,
            self.figures.jobs(),
            self.figures.jobs_ending("done"),
            self.figures.jobs_ending("cancelled"),
            self.figures.jobs_ending("failed"),
            self.figures.jobs_ending("stopped"),
            applied,
            self.figures.divergences.len(),
            self.figures.lost_words.len(),
            sample.rss_kib as f64 / 1024.0,
            sample.open_fds,
            sample.model_connections,
        );
        Ok(())
    }

    async fn finish(mut self) -> Figures {
        self.figures.model_requests = self.fake.requests().len();
        self.figures.replies_unused += self.fake.clear_replies();
        if let Err(error) = self.client.shutdown().await {
            let text = format!("{error:#}");
            let first = text.lines().next().unwrap_or_default().to_string();
            if !self
                .figures
                .protocol_problems
                .iter()
                .any(|p| first.contains(p))
            {
                self.figures
                    .protocol_problems
                    .push(format!("at shutdown: {first}"));
            }
            eprintln!("{text}");
        }
        self.figures
    }
}

fn position_json(position: (u32, u32)) -> Value {
    json!({"line": position.0, "character": position.1})
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

fn mebibytes(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn met(yes: bool) -> &'static str {
    if yes { "yes" } else { "no" }
}

/// The report, in Markdown: printed and written into `docs/benchmarks.md`.
fn render(
    root: &Path,
    options: &Options,
    figures: &Figures,
    load_at_start: &str,
    load_at_end: &str,
    misses: &[String],
) -> String {
    let mut out = String::new();
    let minutes = figures.elapsed.as_secs_f64() / 60.0;
    let keys_per_second = figures.keys as f64 / figures.typing_time.as_secs_f64().max(1e-9);
    let _ = writeln!(out, "## Soak: `cargo xtask soak`");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Recorded on {} by `{}` (baton {}, release build) on {}; load average (1 / 5 / 15 min) \
         {load_at_start} at the start, {load_at_end} at the end.",
        measure::today(),
        options.command_line(),
        measure::git_revision(root),
        measure::machine_description(),
    );
    let _ = writeln!(
        out,
        "\nThe testkit client imitating Neovim typed {} keys ({keys_per_second:.1} keys/s while \
         typing, {} of them backspaces after a typo) for {minutes:.1} minutes into three open \
         files (Rust, Python, TypeScript, with multi-byte text), while {} inline edit jobs ran \
         one after another on the files' job blocks, the fake model streaming at \
         {TOKENS_PER_SECOND} tokens/s with injected faults, and {} changes to files that are \
         not open were announced with `workspace/didChangeWatchedFiles`. Every 30 s ({} \
         checkpoints) the soak let the running job end and compared each document with \
         `baton.status`.",
        figures.keys,
        figures.backspaces,
        figures.jobs(),
        figures.disk_changes,
        figures.checkpoints,
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| figure | value | goal | met |");
    let _ = writeln!(out, "|---|---:|---|---|");
    let _ = writeln!(
        out,
        "| documents that diverged (of {} comparisons) | {} | 0 | {} |",
        figures.documents_compared,
        figures.divergences.len(),
        met(figures.divergences.is_empty()),
    );
    let _ = writeln!(
        out,
        "| typed characters lost (of {} in {} words in the notes) | {} | 0 | {} |",
        figures.characters_outside,
        figures.words_outside,
        figures.lost_characters,
        met(figures.lost_words.is_empty()),
    );
    let _ = writeln!(
        out,
        "| words typed inside a running job's target, kept | {} of {} | all | {} |",
        figures.words_inside_kept,
        figures.words_inside,
        met(figures.words_inside_kept == figures.words_inside),
    );
    match (figures.baseline, figures.end) {
        (Some(start), Some(end)) => {
            let growth = figures.rss_growth_percent().unwrap_or_default();
            let _ = writeln!(
                out,
                "| RSS at {:.0?} → end ({:.0?}) | {} → {} ({growth:+.1} %) | ≤ +{RSS_GROWTH_GOAL_PERCENT} % | {} |",
                start.at,
                end.at,
                mebibytes(start.rss_kib),
                mebibytes(end.rss_kib),
                met(growth <= RSS_GROWTH_GOAL_PERCENT),
            );
            let _ = writeln!(
                out,
                "| open file descriptors at {:.0?} → end (of which connections to the model) | {} ({}) → {} ({}) | no growth¹ | {} |",
                start.at,
                start.open_fds,
                start.model_connections,
                end.open_fds,
                end.model_connections,
                met(end.compared_fds() <= start.compared_fds()),
            );
        }
        _ => {
            let _ = writeln!(out, "| RSS and file descriptors | no samples | | no |");
        }
    }
    let _ = writeln!(
        out,
        "| jobs whose block did not end as the answer (done) or the original (cancelled, failed) | {} | 0 | {} |",
        figures.wrong_blocks.len(),
        met(figures.wrong_blocks.is_empty()),
    );
    let _ = writeln!(
        out,
        "| jobs that never ended | {} | 0 | {} |",
        figures.jobs_hung,
        met(figures.jobs_hung == 0),
    );
    let _ = writeln!(
        out,
        "| protocol problems seen by the client | {} | 0 | {} |",
        figures.protocol_problems.len(),
        met(figures.protocol_problems.is_empty()),
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Edits: {} `workspace/applyEdit`s applied by the client, {} skipped as stale (Neovim \
         still answers `applied: true`), {} rejected; {} model requests, {} cancels sent.",
        figures.edits_applied,
        figures.edits_skipped_stale,
        figures.edits_rejected,
        figures.model_requests,
        figures.cancels_sent,
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Jobs by outcome: done {}, cancelled {}, failed {}, stopped because the user typed in \
         the target {}.",
        figures.jobs_ending("done"),
        figures.jobs_ending("cancelled"),
        figures.jobs_ending("failed"),
        figures.jobs_ending("stopped"),
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| scripted job | jobs | done | cancelled | failed | stopped | other |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for script in Script::ALL {
        let count = |outcome: &str| {
            figures
                .outcomes
                .get(&(script, outcome.to_string()))
                .copied()
                .unwrap_or(0)
        };
        let all: u64 = figures
            .outcomes
            .iter()
            .filter(|((scripted, _), _)| *scripted == script)
            .map(|(_, count)| count)
            .sum();
        let known = ["done", "cancelled", "failed", "stopped"];
        let other = all - known.iter().map(|outcome| count(outcome)).sum::<u64>();
        let _ = writeln!(
            out,
            "| {} (aims at {}) | {all} | {} | {} | {} | {} | {other} |",
            script.describe(),
            script.expected(),
            count("done"),
            count("cancelled"),
            count("failed"),
            count("stopped"),
        );
    }
    if !figures.failure_reasons.is_empty() {
        let _ = writeln!(out);
        let reasons: Vec<String> = figures
            .failure_reasons
            .iter()
            .map(|(reason, count)| format!("{count} × “{reason}”"))
            .collect();
        let _ = writeln!(out, "Failure messages: {}.", reasons.join("; "));
    }
    let rss_series: Vec<String> = figures
        .samples
        .iter()
        .map(|sample| format!("{:.1}", sample.rss_kib as f64 / 1024.0))
        .collect();
    let fd_series: Vec<String> = figures
        .samples
        .iter()
        .map(|sample| format!("{} ({})", sample.open_fds, sample.model_connections))
        .collect();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "¹ Not counting one idle keep-alive connection to the model, which the HTTP client keeps \
         or drops depending on timing; a second one counts.",
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "RSS at each checkpoint (MiB): {}. Open file descriptors (connections to the model) at \
         each checkpoint: {}.",
        rss_series.join(", "),
        fd_series.join(", "),
    );
    let mut details: Vec<&String> = Vec::new();
    details.extend(figures.divergences.iter().take(10));
    details.extend(figures.lost_words.iter().take(10));
    details.extend(figures.wrong_blocks.iter().take(10));
    details.extend(figures.blocks_lost.iter());
    details.extend(figures.jobs_refused.iter().take(5));
    details.extend(figures.protocol_problems.iter().take(5));
    if !details.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Found:");
        for detail in details {
            let _ = writeln!(out, "- {detail}");
        }
    }
    if figures.replies_unused > 0 {
        let _ = writeln!(
            out,
            "\n{} jobs ended without asking the model for their scripted reply.",
            figures.replies_unused
        );
    }
    let _ = writeln!(out);
    if misses.is_empty() {
        let _ = writeln!(out, "Every goal was met.");
    } else {
        let _ = writeln!(out, "Goals missed: {}.", misses.join("; "));
    }
    out
}
