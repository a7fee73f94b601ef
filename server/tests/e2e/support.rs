//! Starting baton against a fake model and driving it like an editor.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use testkit::fake_model::FakeModel;
use testkit::lsp_client::{ClientProfile, LspClient, ProgressEvent, file_uri};

/// The key the tests configure; it must reach the fake model and never the log.
pub const SECRET_KEY: &str = "sk-baton-test-4f9a7c";

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Harness {
    pub fake: FakeModel,
    pub client: LspClient,
    pub initialize: Value,
    pub root: PathBuf,
    log_file: PathBuf,
    pub home: std::sync::Arc<tempfile::TempDir>,
}

pub struct Options {
    pub profile: ClientProfile,
    pub provider: &'static str,
    pub settings: Value,
    pub workspace_files: Vec<(&'static str, String)>,
    /// Reuse this directory (workspace, config, cache, log) instead of a fresh one: a restart.
    pub home: Option<std::sync::Arc<tempfile::TempDir>>,
    /// More environment for the server.
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            profile: ClientProfile::Neovim,
            provider: "openai",
            settings: json!({}),
            workspace_files: Vec::new(),
            home: None,
            env: Vec::new(),
        }
    }
}

pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, over) => *base = over,
    }
}

impl Harness {
    pub async fn start(profile: ClientProfile) -> Harness {
        Harness::with(Options {
            profile,
            ..Options::default()
        })
        .await
    }

    pub async fn with(options: Options) -> Harness {
        let fake = FakeModel::start().await;
        let dir = options
            .home
            .clone()
            .unwrap_or_else(|| std::sync::Arc::new(tempfile::tempdir().expect("temp dir")));
        let root = dir.path().join("workspace");
        std::fs::create_dir_all(&root).unwrap();
        for (name, text) in &options.workspace_files {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let log_file = dir.path().join("baton.log");
        let mut settings = json!({
            // Both tiers on the fake model, told apart by their model names.
            "models": { "fast": {
                "provider": options.provider,
                "model": "spark-test",
                "base_url": fake.base_url(),
                "api_key_env": "BATON_TEST_KEY",
                "max_retries": 1,
            }, "deep": {
                "provider": options.provider,
                "model": "deep-test",
                "base_url": fake.base_url(),
                "api_key_env": "BATON_TEST_KEY",
                "max_retries": 1,
            }},
            "edit": { "flush_interval_ms": 20, "landing_timeout_ms": 1500 },
        });
        merge(&mut settings, options.settings);
        let config_home = dir.path().join("config");
        let cache_home = dir.path().join("cache");
        let mut env = vec![
            ("BATON_TEST_KEY", SECRET_KEY),
            ("BATON_LOG_FILE", log_file.to_str().unwrap()),
            ("BATON_LOG", "debug"),
            // Debug builds only: lets tests trigger deliberate panics (see `test_hooks`).
            ("BATON_TEST_HOOKS", "1"),
            ("XDG_CONFIG_HOME", config_home.to_str().unwrap()),
            ("XDG_CACHE_HOME", cache_home.to_str().unwrap()),
        ];
        env.extend(
            options
                .env
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
        );
        let (client, initialize) = LspClient::start(
            Path::new(env!("CARGO_BIN_EXE_baton")),
            &["lsp"],
            &env,
            &root,
            options.profile,
            settings,
        )
        .await
        .expect("baton starts");
        Harness {
            fake,
            client,
            initialize,
            root,
            log_file,
            home: dir,
        }
    }

    /// Waits until the first indexing run has ended; returns the server's index status.
    pub async fn indexed(&self) -> Value {
        self.client
            .wait_for("indexing to end", WAIT, |state| {
                state.progress_ended("baton/index").then_some(())
            })
            .await
            .unwrap();
        let status = self
            .execute("baton.status", json!([]))
            .await
            .expect("status");
        status["index"].clone()
    }

    pub fn uri_of(&self, name: &str) -> String {
        file_uri(&self.root.join(name))
    }

    /// Writes a file into the workspace, opens it, and returns its URI.
    pub async fn open(&self, name: &str, language_id: &str, text: &str) -> String {
        let path = self.root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        let uri = file_uri(&path);
        self.client.open(&uri, language_id, text).await;
        uri
    }

    pub async fn code_actions(
        &self,
        uri: &str,
        range: ((u32, u32), (u32, u32)),
        diagnostics: Value,
    ) -> Vec<Value> {
        let result = self
            .client
            .request(
                "textDocument/codeAction",
                json!({
                    "textDocument": { "uri": uri },
                    "range": range_json(range),
                    "context": { "diagnostics": diagnostics },
                }),
            )
            .await
            .expect("code actions");
        result.as_array().cloned().unwrap_or_default()
    }

    /// Scripts `replies`, opens `name` with the shared marked example, and runs its marker
    /// action; returns the URI and the job token.
    pub async fn start_marker_job(
        &self,
        name: &str,
        replies: Vec<testkit::fake_model::Reply>,
    ) -> (String, String) {
        for reply in replies {
            self.fake.push(reply);
        }
        let uri = self.open(name, "rust", crate::edits::MARKED).await;
        let actions = self.code_actions(&uri, ((4, 0), (4, 0)), json!([])).await;
        let token = self.run_action(find_action(&actions, "return two")).await;
        (uri, token)
    }

    /// [`Harness::start_marker_job`] to its end; returns the URI and the end message.
    pub async fn run_marker_job(
        &self,
        name: &str,
        replies: Vec<testkit::fake_model::Reply>,
    ) -> (String, String) {
        let (uri, token) = self.start_marker_job(name, replies).await;
        let end = Harness::end_message(&self.job_end(&token).await);
        (uri, end)
    }

    /// Asks for code actions at `range`, runs the one whose title contains `title`, and waits
    /// for its job to end; returns the end message.
    pub async fn run_titled_action(
        &self,
        uri: &str,
        range: ((u32, u32), (u32, u32)),
        title: &str,
    ) -> String {
        let actions = self.code_actions(uri, range, json!([])).await;
        let token = self.run_action(find_action(&actions, title)).await;
        Harness::end_message(&self.job_end(&token).await)
    }

    /// Runs a code action's command the way editors do; returns the job token.
    pub async fn run_action(&self, action: &Value) -> String {
        let command = &action["command"];
        let result = self
            .client
            .request(
                "workspace/executeCommand",
                json!({ "command": command["command"], "arguments": command["arguments"] }),
            )
            .await
            .expect("executeCommand answers");
        result["job"].as_str().expect("a job token").to_string()
    }

    pub async fn document_symbols(
        &self,
        uri: &str,
    ) -> Result<Value, testkit::lsp_client::ResponseError> {
        self.client
            .request(
                "textDocument/documentSymbol",
                json!({ "textDocument": { "uri": uri } }),
            )
            .await
    }

    pub async fn execute(
        &self,
        command: &str,
        arguments: Value,
    ) -> Result<Value, testkit::lsp_client::ResponseError> {
        self.client
            .request(
                "workspace/executeCommand",
                json!({ "command": command, "arguments": arguments }),
            )
            .await
    }

    /// Waits for a job's progress to end and returns its events.
    pub async fn job_end(&self, token: &str) -> Vec<ProgressEvent> {
        let token = token.to_string();
        self.client
            .wait_for(&format!("the end of {token}"), WAIT, |state| {
                state
                    .progress_ended(&token)
                    .then(|| state.progress[&token].clone())
            })
            .await
            .unwrap()
    }

    pub fn end_message(events: &[ProgressEvent]) -> String {
        events
            .iter()
            .find(|event| event.kind == "end")
            .and_then(|event| event.message.clone())
            .unwrap_or_default()
    }

    /// The server's own copy of a document.
    pub async fn server_text(&self, uri: &str) -> (i64, String) {
        let status = self
            .execute("baton.status", json!([{ "textDocument": { "uri": uri } }]))
            .await
            .expect("status");
        (
            status["version"].as_i64().unwrap_or(-1),
            status["text"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// The text both sides agree on; fails if the server's copy differs from the client's.
    pub async fn agreed_text(&self, uri: &str) -> String {
        let client = self.client.text(uri);
        let (_, server) = self.server_text(uri).await;
        assert_eq!(
            server, client,
            "the server's text differs from the editor's"
        );
        client
    }

    pub async fn wait_for_message(&self, needle: &str) -> String {
        let needle = needle.to_string();
        self.client
            .wait_for(&format!("a message containing {needle:?}"), WAIT, |state| {
                state
                    .show_messages
                    .iter()
                    .find(|message| message.message.contains(&needle))
                    .map(|message| message.message.clone())
            })
            .await
            .unwrap()
    }

    /// Copies the server's whole log to `to`, to keep it after the test's directory is gone.
    pub fn keep_log(&self, to: &Path) {
        let _ = std::fs::copy(&self.log_file, to);
    }

    /// The server's log lines that mention `needle`, for failure messages.
    pub fn log_lines_with(&self, needle: &str) -> String {
        std::fs::read_to_string(&self.log_file)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(needle))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Shuts down cleanly (no unhandled server messages) and checks the log never saw the key.
    pub async fn finish(self) {
        self.client.shutdown().await.expect("clean shutdown");
        let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        assert!(!log.contains(SECRET_KEY), "the API key reached the log");
    }
}

pub fn range_json(((l1, c1), (l2, c2)): ((u32, u32), (u32, u32))) -> Value {
    json!({ "start": { "line": l1, "character": c1 }, "end": { "line": l2, "character": c2 } })
}

pub fn find_action<'a>(actions: &'a [Value], title_part: &str) -> &'a Value {
    actions
        .iter()
        .find(|action| action["title"].as_str().unwrap_or("").contains(title_part))
        .unwrap_or_else(|| panic!("no action containing {title_part:?} in {actions:#?}"))
}

/// Replays the edits the client received on the original text: every intermediate buffer.
pub fn buffer_states(
    original: &str,
    apply_edits: &[testkit::lsp_client::ApplyEditRecord],
    encoding: &str,
) -> Vec<String> {
    use testkit::lsp_client::{Encoding, TextEdit, apply_text_edits};
    let encoding = Encoding::from_name(encoding).unwrap();
    let mut text = original.to_string();
    let mut states = Vec::new();
    for record in apply_edits {
        if !record.skipped_stale.is_empty() || record.response["applied"] == false {
            continue;
        }
        for change in record.params["edit"]["documentChanges"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let edits: Vec<_> = change["edits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|edit| TextEdit {
                    start: (
                        edit["range"]["start"]["line"].as_u64().unwrap() as u32,
                        edit["range"]["start"]["character"].as_u64().unwrap() as u32,
                    ),
                    end: (
                        edit["range"]["end"]["line"].as_u64().unwrap() as u32,
                        edit["range"]["end"]["character"].as_u64().unwrap() as u32,
                    ),
                    new_text: edit["newText"].as_str().unwrap().to_string(),
                })
                .collect();
            text = apply_text_edits(&text, &edits, encoding)
                .expect("edits apply")
                .0;
        }
        states.push(text.clone());
    }
    states
}

/// A small deterministic generator, so a failure can be replayed from its seed.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
