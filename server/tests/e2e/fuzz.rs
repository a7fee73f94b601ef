//! A model-based fuzz of the real server loop.
//!
//! A scripted client keeps its own copy of every document (independent of `crates/text`: the
//! testkit's text model) and sends a seeded random mix of what editors, buggy clients and hostile
//! input produce: `didOpen`/`didChange` with all three line terminators, multi-byte, zero-width
//! and combining text, empty documents, very long lines, whole-text changes, versions that jump
//! and stale versions; ranges past the end, inside characters or reversed; `codeAction`,
//! `documentSymbol`, `workspace/symbol`, `definition`; `executeCommand` with malformed and hostile
//! arguments; malformed notifications and unknown methods; and inline edit jobs against the fake
//! model (streams, HTTP errors, truncated and stalled streams) racing the typing.
//!
//! After every case of a few dozen operations: every request was answered, none with an
//! `InternalError` (a caught panic is still a bug), the server never panicked (its stderr),
//! the client saw no protocol fault, and `baton.status` returns exactly the client's text and
//! version for every open document and the same set of open documents.
//!
//! CI runs a few thousand operations in all three position encodings, plus every seed that once
//! failed ([`REGRESSION_SEEDS`]). `cargo xtask fuzz --minutes N` runs [`long_run`] with
//! `BATON_FUZZ_MINUTES` set: new seeds until the time is up, printing operations, seeds and
//! failures.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::fake_model::{Fault, Reply};
use testkit::lsp_client::{ClientProfile, LinePosition, PendingRequest};

use crate::support::{Harness, Lcg, WAIT, range_json};

/// Seeds that once found a bug; each runs in CI forever after. Format: (profile, seed).
/// - StrictUtf32 134 and 149: a `documentSymbol` answer for deeply nested braces was nested
///   deeper than serde_json (Helix's parser, and this client's) accepts, so the client could
///   not read it (`MAX_SYMBOL_DEPTH` in `lsp::symbols`).
const REGRESSION_SEEDS: &[(ClientProfile, u64)] = &[
    (ClientProfile::StrictUtf32, 134),
    (ClientProfile::StrictUtf32, 149),
];

/// Operations per case: the state is checked after each case.
const CASE_OPERATIONS: usize = 40;

/// Text that goes into documents: every line terminator, multi-byte and zero-width characters,
/// combining marks, the comments that once killed the server, markers, code.
const PIECES: &[&str] = &[
    "a",
    "é",
    "ñandú",
    "😀",
    "🎉",
    "𝕏",
    "\u{200B}",
    "\u{200D}",
    "e\u{0301}",
    "👩\u{200D}💻",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "  ",
    "",
    "fn x() {}\n",
    "def f():\n    pass\n",
    "    // Ñandú es un ave\n",
    "// TODO🎉 later\n",
    "// baton: ñandú — añade un campo\n",
    "# baton: 日本語で\n",
    "/* é */",
    "struct Ñ { a: u8 }\n",
    "}",
    "{",
    "\"",
];

const NAMES: &[(&str, &str)] = &[
    ("a.rs", "rust"),
    ("ñandú.py", "python"),
    ("dir with space/ü.ts", "typescript"),
    ("notes.md", "markdown"),
    ("noext", "plaintext"),
    ("main.go", "go"),
    ("k.lua", "lua"),
    ("weird.rs", ""),
    ("c.c", "c"),
];

/// What happened in one fuzz session.
#[derive(Debug, Default)]
pub struct Outcome {
    pub operations: usize,
    pub failure: Option<String>,
    /// `workspace/applyEdit` requests the client received from jobs.
    pub apply_edits: usize,
    /// Jobs by how their progress ended ("done", "cancelled", "failed", "stopped").
    pub jobs: std::collections::BTreeMap<String, usize>,
}

/// The line contents of `text`, split as LSP does (`\n`, `\r\n`, `\r`).
fn lines_of(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let (mut start, mut index) = (0, 0);
    while index < bytes.len() {
        match bytes[index] {
            b'\n' => {
                lines.push(&text[start..index]);
                index += 1;
                start = index;
            }
            b'\r' => {
                lines.push(&text[start..index]);
                index += if bytes.get(index + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = index;
            }
            _ => index += 1,
        }
    }
    lines.push(&text[start..]);
    lines
}

struct Fuzzer<'a> {
    harness: &'a Harness,
    random: Lcg,
    encoding: String,
    open: Vec<String>,
    pending: Vec<(String, PendingRequest)>,
    operations: usize,
    opened: usize,
}

impl Fuzzer<'_> {
    fn units(&self, character: char) -> u32 {
        match self.encoding.as_str() {
            "utf-8" => character.len_utf8() as u32,
            "utf-32" => 1,
            _ => character.len_utf16() as u32,
        }
    }

    fn random_text(&mut self, pieces: u64) -> String {
        let mut text = String::new();
        for _ in 0..self.random.below(pieces) {
            text.push_str(self.random.pick::<&str>(PIECES));
        }
        if self.random.chance(3) {
            // A very long line.
            let unit = *self.random.pick(&["x", "é", "😀", "ab "]);
            text.push_str(&unit.repeat(2_000 + self.random.below(8_000) as usize));
        }
        text
    }

    /// A position a correct editor could send: on a line, at a character boundary.
    fn valid_position(&mut self, text: &str) -> LinePosition {
        let lines = lines_of(text);
        let line = self.random.below(lines.len() as u64) as usize;
        let mut boundaries = vec![0u32];
        let mut units = 0;
        for character in lines[line].chars() {
            units += self.units(character);
            boundaries.push(units);
        }
        (line as u32, *self.random.pick(&boundaries))
    }

    /// A position a buggy or hostile client could send.
    fn hostile_position(&mut self, text: &str) -> LinePosition {
        let lines = lines_of(text);
        let count = lines.len() as u32;
        match self.random.below(6) {
            0 => (u32::MAX, u32::MAX),
            1 => (
                count + self.random.below(3) as u32,
                self.random.below(5) as u32,
            ),
            2 => {
                let (line, _) = self.valid_position(text);
                (line, u32::MAX / 2 + self.random.below(9) as u32)
            }
            3 => {
                // Inside a multi-unit character, when the line has one.
                let line = self.random.below(lines.len() as u64) as usize;
                let mut units = 0;
                let mut inside = Vec::new();
                for character in lines[line].chars() {
                    let width = self.units(character);
                    for within in 1..width {
                        inside.push(units + within);
                    }
                    units += width;
                }
                if inside.is_empty() {
                    (line as u32, units + 1)
                } else {
                    (line as u32, *self.random.pick(&inside))
                }
            }
            _ => self.valid_position(text),
        }
    }

    fn range(&mut self, text: &str, hostile: bool) -> (LinePosition, LinePosition) {
        let position = |fuzzer: &mut Self| {
            if hostile {
                fuzzer.hostile_position(text)
            } else {
                fuzzer.valid_position(text)
            }
        };
        let (a, b) = (position(self), position(self));
        if hostile && self.random.chance(30) {
            (a.max(b), a.min(b)) // reversed
        } else {
            (a.min(b), a.max(b))
        }
    }

    fn request(&mut self, method: &str, params: Value) {
        let request = self.harness.client.request_id(method, params);
        self.pending.push((method.to_string(), request));
    }

    fn some_open(&mut self) -> Option<String> {
        (!self.open.is_empty()).then(|| self.random.pick(&self.open).clone())
    }

    async fn step(&mut self) {
        self.operations += 1;
        let roll = self.random.below(100);
        let Some(uri) = self.some_open().filter(|_| roll >= 6) else {
            return self.open_document().await;
        };
        let text = self.harness.client.text(&uri);
        match roll {
            6..=8 => {
                self.harness.client.close(&uri).await;
                self.open.retain(|open| open != &uri);
            }
            9..=38 => {
                let range = self.range(&text, false);
                let new_text = self.random_text(4);
                self.harness.client.change_nowait(&uri, range, &new_text);
            }
            39..=50 => {
                // Later changes apply to the text the earlier ones left; their ranges, taken
                // from the text before, are as good as any hostile range.
                let mut changes = Vec::new();
                for _ in 0..=self.random.below(3) {
                    let range = (!self.random.chance(10)).then(|| self.range(&text, true));
                    let new_text = self.random_text(3);
                    changes.push((range, new_text));
                }
                let step = match self.random.below(10) {
                    0 => -(self.random.below(3) as i32), // stale: must be ignored
                    1 => 1 + self.random.below(100_000) as i32,
                    _ => 1,
                };
                self.harness
                    .client
                    .change_hostile_nowait(&uri, &changes, step);
            }
            51..=63 => {
                let hostile = self.random.chance(40);
                let range = self.range(&text, hostile);
                let mut params = json!({
                    "textDocument": { "uri": uri },
                    "range": range_json(range),
                    "context": { "diagnostics": [] },
                });
                if self.random.chance(30) {
                    let diagnostic_range = self.range(&text, true);
                    params["context"]["diagnostics"] = json!([{
                        "range": range_json(diagnostic_range),
                        "message": "ñandú 🎉 is not a bird",
                        "severity": 1,
                    }]);
                }
                if self.random.chance(20) {
                    params["context"]["only"] = json!([self.random.pick(&[
                        "quickfix",
                        "refactor",
                        "source",
                        "refactor.rewrite"
                    ])]);
                }
                self.request("textDocument/codeAction", params);
            }
            64..=68 => self.request(
                "textDocument/documentSymbol",
                json!({ "textDocument": { "uri": uri } }),
            ),
            69..=71 => {
                let query = self
                    .random
                    .pick(&["", "a", "ñ", "😀", "x\u{0301}", "fn", "Ñandú"])
                    .to_string();
                self.request("workspace/symbol", json!({ "query": query }));
            }
            72..=76 => {
                let position = self.hostile_position(&text);
                self.request(
                    "textDocument/definition",
                    json!({ "textDocument": { "uri": uri }, "position": { "line": position.0, "character": position.1 } }),
                );
            }
            77..=86 => self.hostile_command(&uri, &text),
            87..=93 => self.start_job(&uri, &text),
            94..=96 => {
                let arguments = match self.random.below(3) {
                    0 => json!([]),
                    1 => json!([format!("baton/job/{}", self.random.below(20))]),
                    _ => json!([{ "job": format!("baton/job/{}", self.random.below(20)) }]),
                };
                self.request(
                    "workspace/executeCommand",
                    json!({ "command": "baton.cancel", "arguments": arguments }),
                );
            }
            _ => self.malformed_message(&uri),
        }
    }

    async fn open_document(&mut self) {
        let (name, language) = *self.random.pick(NAMES);
        self.opened += 1;
        let name = format!("fuzz{}/{name}", self.opened);
        let text = if self.random.chance(15) {
            String::new()
        } else {
            self.random_text(30)
        };
        let uri = self.harness.open(&name, language, &text).await;
        self.open.push(uri);
    }

    fn hostile_command(&mut self, uri: &str, text: &str) {
        let range = range_json(self.range(text, true));
        let (command, arguments) = match self.random.below(12) {
            0 => ("baton.edit", json!([42])),
            1 => ("baton.edit", json!([{ "textDocument": { "uri": 7 } }])),
            2 => (
                "baton.edit",
                json!([{ "textDocument": { "uri": "file:///nowhere/ñ.rs" }, "instruction": "x" }]),
            ),
            3 => (
                "baton.edit",
                json!([{ "textDocument": { "uri": uri }, "range": { "start": { "line": -1 } } }]),
            ),
            4 => (
                "baton.fix",
                json!([{ "textDocument": { "uri": uri }, "range": range, "diagnostics": [{ "range": range, "message": "é" }] }]),
            ),
            5 => ("baton.unknown", json!([])),
            6 => ("baton.status", json!([{ "textDocument": 5 }])),
            7 => (
                "baton.edit",
                json!([{ "textDocument": { "uri": uri }, "instruction": ["no"] }]),
            ),
            8 => (
                "baton.explain",
                json!([{ "textDocument": { "uri": uri }, "range": range }]),
            ),
            9 => ("baton.edit", json!(["ñandú 🎉 bare instruction"])),
            10 => ("baton.document", json!([null])),
            _ => (
                "baton.tests",
                json!([{ "textDocument": { "uri": uri }, "range": range, "instruction": "" }]),
            ),
        };
        self.request(
            "workspace/executeCommand",
            json!({ "command": command, "arguments": arguments }),
        );
    }

    fn start_job(&mut self, uri: &str, text: &str) {
        let reply_text = self.random_text(12);
        let reply = match self.random.below(10) {
            0 => Reply::status(500, "overloaded"),
            1 => Reply::text(reply_text).fault(Fault::TruncateAfter(3)),
            2 => Reply::text(reply_text).fault(Fault::MalformedAfter(2)),
            3 => Reply::text(reply_text).fault(Fault::StallAfter(2)),
            4 => Reply::text(format!("```\n{reply_text}\n```\n")).rate(3_000.0),
            _ => Reply::text(reply_text).rate(1_000.0 + self.random.below(4_000) as f64),
        };
        self.harness.fake.push(reply);
        let range = self.range(text, false);
        let instruction = self
            .random
            .pick(&["make it ñ", "🎉", "rewrite", "añade un campo"]);
        self.request(
            "workspace/executeCommand",
            json!({ "command": "baton.edit", "arguments": [{
                "textDocument": { "uri": uri },
                "range": range_json(range),
                "instruction": instruction,
            }]}),
        );
    }

    fn malformed_message(&mut self, uri: &str) {
        let client = &self.harness.client;
        match self.random.below(6) {
            0 => client.notify("textDocument/didChange", json!({ "garbage": true })),
            1 => client.notify(
                "textDocument/didChange",
                json!({ "textDocument": { "uri": "file:///not/open.rs", "version": 9 }, "contentChanges": [{ "text": "x" }] }),
            ),
            2 => client.notify("textDocument/didClose", json!({ "textDocument": { "uri": 5 } })),
            3 => self.request("textDocument/codeAction", json!({ "textDocument": { "uri": uri } })),
            4 => self.request("baton/unknownMethod", json!({ "x": "ñ" })),
            _ => client.notify("$/cancelRequest", json!({ "id": self.random.below(10_000) })),
        }
    }

    /// The checks that end every case. Returns what went wrong.
    async fn check(&mut self) -> Result<(), String> {
        let pending: Vec<_> = self.pending.drain(..).collect();
        for (method, request) in pending {
            match tokio::time::timeout(WAIT, request.response()).await {
                Err(_) => {
                    return Err(format!(
                        "{method} was never answered\n{}",
                        self.harness.client.diagnostic_context()
                    ));
                }
                Ok(Err(error)) if error.code == -32603 => {
                    let report = self.panic_report().unwrap_or_default();
                    return Err(format!(
                        "{method} answered InternalError: {}\n{report}",
                        error.message
                    ));
                }
                Ok(_) => {}
            }
        }
        self.wait_for_jobs().await?;
        if let Some(report) = self.panic_report() {
            return Err(format!("the server panicked: {report}"));
        }
        let problems = self.harness.client.state().problems;
        if !problems.is_empty() {
            return Err(format!("protocol problems: {problems:?}"));
        }
        self.check_documents().await
    }

    /// Where the server panicked first, from its stderr (the default panic hook's line).
    fn panic_report(&self) -> Option<String> {
        let stderr = self.harness.client.stderr();
        let at = stderr.find("panicked at")?;
        Some(stderr[at..].chars().take(600).collect())
    }

    async fn wait_for_jobs(&mut self) -> Result<(), String> {
        let cancel_at = Instant::now()
            + if self.random.chance(50) {
                Duration::ZERO
            } else {
                Duration::from_secs(3)
            };
        let deadline = Instant::now() + WAIT;
        let mut cancelled = false;
        loop {
            let status = self
                .harness
                .execute("baton.status", json!([]))
                .await
                .map_err(|error| format!("baton.status failed: {error}"))?;
            if status["jobs"].as_array().is_some_and(Vec::is_empty) {
                return Ok(());
            }
            if !cancelled && Instant::now() >= cancel_at {
                cancelled = true;
                self.harness
                    .execute("baton.cancel", json!([]))
                    .await
                    .map_err(|error| format!("baton.cancel failed: {error}"))?;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = status["jobs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|token| self.harness.log_lines_with(token))
                    .collect();
                return Err(format!(
                    "jobs still running after cancel: {}\n{}",
                    status["jobs"],
                    logs.join("\n")
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's documents equal the client's: the same set, the same versions and texts.
    /// An edit the server sent just before its job ended can still be on its way back as a
    /// change, so a difference must persist over a few round trips to count.
    async fn check_documents(&mut self) -> Result<(), String> {
        let mut last_difference = String::new();
        for _ in 0..20 {
            match self.compare_documents().await? {
                None => return Ok(()),
                Some(difference) => last_difference = difference,
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(last_difference)
    }

    async fn compare_documents(&mut self) -> Result<Option<String>, String> {
        let status = self
            .harness
            .execute("baton.status", json!([]))
            .await
            .map_err(|error| format!("baton.status failed: {error}"))?;
        let server: BTreeSet<String> = status["documents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|uri| uri.as_str().map(str::to_string))
            .collect();
        let client: BTreeSet<String> = self.open.iter().cloned().collect();
        if server != client {
            return Ok(Some(format!(
                "open documents differ: server {server:?}, client {client:?}"
            )));
        }
        for uri in &self.open {
            let (version, text) = self.harness.server_text(uri).await;
            let client_text = self.harness.client.text(uri);
            let client_version = self.harness.client.version(uri) as i64;
            if (version, text.as_str()) != (client_version, client_text.as_str()) {
                return Ok(Some(format!(
                    "{uri} diverged: server v{version} {text:?}, client v{client_version} {client_text:?}"
                )));
            }
        }
        Ok(None)
    }
}

/// One session: a fresh server and `operations` operations from `seed`.
pub async fn run_session(profile: ClientProfile, seed: u64, operations: usize) -> Outcome {
    let harness = Harness::start(profile).await;
    let encoding = harness.client.position_encoding().to_string();
    let mut fuzzer = Fuzzer {
        harness: &harness,
        random: Lcg(seed),
        encoding,
        open: Vec::new(),
        pending: Vec::new(),
        operations: 0,
        opened: 0,
    };
    let mut outcome = Outcome::default();
    while fuzzer.operations < operations {
        for _ in 0..CASE_OPERATIONS {
            fuzzer.step().await;
        }
        if let Err(failure) = fuzzer.check().await {
            let kept = std::env::temp_dir().join(format!("baton-fuzz-{profile:?}-{seed}.log"));
            harness.keep_log(&kept);
            let failure = format!("{failure}\n(server log kept at {})", kept.display());
            outcome.failure = Some(format!(
                "{profile:?} seed {seed}, after {} operations: {failure}",
                fuzzer.operations
            ));
            break;
        }
    }
    outcome.operations = fuzzer.operations;
    let state = harness.client.state();
    outcome.apply_edits = state.apply_edits.len();
    for (token, events) in &state.progress {
        if !token.starts_with("baton/job/") {
            continue;
        }
        if let Some(message) = events
            .iter()
            .rev()
            .find_map(|event| event.message.clone().filter(|_| event.kind == "end"))
        {
            let kind = message.split([':', ' ']).next().unwrap_or("").to_string();
            *outcome.jobs.entry(kind).or_default() += 1;
        }
    }
    println!(
        "fuzz: {profile:?} seed {seed}: {} operations, {} edits applied, jobs {:?}{}",
        outcome.operations,
        outcome.apply_edits,
        outcome.jobs,
        if outcome.failure.is_some() {
            ", FAILED"
        } else {
            ""
        }
    );
    if outcome.failure.is_none()
        && let Err(error) = harness.client.shutdown().await
    {
        outcome.failure = Some(format!("{profile:?} seed {seed}: shutdown: {error}"));
    }
    outcome
}

const PROFILES: [ClientProfile; 3] = [
    ClientProfile::Neovim,      // utf-8
    ClientProfile::Zed,         // utf-16
    ClientProfile::StrictUtf32, // utf-32
];

#[tokio::test]
async fn the_server_loop_survives_random_and_hostile_input_in_every_encoding() {
    let (mut total, mut edits, mut done) = (0, 0, 0);
    for (index, profile) in PROFILES.into_iter().enumerate() {
        let outcome = run_session(profile, 1_000 + index as u64, 1_000).await;
        total += outcome.operations;
        edits += outcome.apply_edits;
        done += outcome.jobs.get("done").copied().unwrap_or(0);
        if let Some(failure) = outcome.failure {
            panic!("{failure}\n(replay: add ({profile:?}, seed) to REGRESSION_SEEDS)");
        }
    }
    assert!(total >= 3_000, "ran {total} operations");
    // The fuzz must keep exercising what it claims to: jobs that land edits while typing races.
    assert!(
        edits > 0 && done > 0,
        "{edits} edits applied, {done} jobs done"
    );
}

#[tokio::test]
async fn seeds_that_once_failed_still_pass() {
    for &(profile, seed) in REGRESSION_SEEDS {
        let outcome = run_session(profile, seed, 1_000).await;
        assert_eq!(outcome.failure, None, "{profile:?} seed {seed}");
    }
}

/// `cargo xtask fuzz --minutes N`: new seeds, round-robin over the encodings, until the time is
/// up. Prints every failure with its seed, and a summary line.
#[tokio::test]
#[ignore = "long-running; `cargo xtask fuzz` runs it with BATON_FUZZ_MINUTES set"]
async fn long_run() {
    let minutes: f64 = std::env::var("BATON_FUZZ_MINUTES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1.0);
    let first_seed: u64 = std::env::var("BATON_FUZZ_FIRST_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1);
    let operations_per_seed = 2_000;
    let deadline = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let (mut operations, mut seeds, mut failures) = (0usize, 0usize, Vec::new());
    let mut seed = first_seed;
    while Instant::now() < deadline {
        let profile = PROFILES[(seed % 3) as usize];
        let outcome = run_session(profile, seed, operations_per_seed).await;
        operations += outcome.operations;
        seeds += 1;
        if let Some(failure) = outcome.failure {
            println!("fuzz: FAILURE {failure}");
            failures.push((profile, seed));
        }
        seed += 1;
    }
    println!(
        "fuzz: {operations} operations, {seeds} seeds ({first_seed}..{}), {} failures {failures:?}",
        seed.saturating_sub(1),
        failures.len()
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}
