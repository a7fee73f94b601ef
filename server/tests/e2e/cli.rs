//! The command line: `baton edit` (the README's main job), `doctor`, `index`, `map`, `--version`.

use std::path::Path;
use std::process::Output;

use testkit::fake_model::{FakeModel, Reply};

use crate::support::SECRET_KEY;

fn baton(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(args)
        .current_dir(dir)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env("XDG_CACHE_HOME", dir.join(".cache"))
        .env("BATON_LOG_FILE", dir.join("baton.log"))
        .envs(env.iter().copied())
        .output()
        .expect("baton runs")
}

const HELLO: &str =
    "// demo\n\nfn greet() {\n    println!(\"hello\");\n}\n\nfn main() {\n    greet();\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_rewrites_the_range_and_writes_the_file() {
    let fake = FakeModel::start().await;
    let reply = "fn greet(name: &str) {\n    println!(\"hello, {name}\");\n}";
    fake.push(Reply::text(reply).rate(500.0));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.rs"), HELLO).unwrap();
    let base_url = fake.base_url();
    let path = dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        let env = [
            ("BATON_PROVIDER", "openai-chat"),
            ("BATON_BASE_URL", base_url.as_str()),
            ("BATON_MODEL", "local-coder"),
        ];
        baton(
            &path,
            &[
                "edit", "hello.rs", "--range", "3:1-5:2", "greet", "by", "name",
            ],
            &env,
        )
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("wrote hello.rs"), "{stderr}");
    let written = std::fs::read_to_string(dir.path().join("hello.rs")).unwrap();
    assert_eq!(
        written,
        HELLO.replace("fn greet() {\n    println!(\"hello\");\n}", reply)
    );
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.body["model"], "local-coder");
    assert!(request.body.to_string().contains("greet by name"));
    assert!(
        request.header("authorization").is_none(),
        "a local server gets no key"
    );
}

#[test]
fn edit_without_a_model_says_what_to_set_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.rs"), HELLO).unwrap();
    let output = baton(
        dir.path(),
        &["edit", "hello.rs", "--range", "3:1-5:2", "greet by name"],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OPENAI_API_KEY is not set"), "{stderr}");
    assert!(stderr.contains("BATON_PROVIDER=openai-chat"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello.rs")).unwrap(),
        HELLO
    );
}

/// `baton edit` against the fake model in `dir`; returns the output.
async fn edit_with_fake_model(fake: &FakeModel, dir: &Path, args: &[&str]) -> Output {
    let base_url = fake.base_url();
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let env = [
            ("BATON_PROVIDER", "openai-chat"),
            ("BATON_BASE_URL", base_url.as_str()),
            ("BATON_MODEL", "local-coder"),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        baton(&dir, &args, &env)
    })
    .await
    .unwrap()
}

/// `baton edit --action explain` sends the explain prompt (it used to send the rewrite prompt
/// with an empty instruction), prints the answer and leaves the file alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_action_explain_sends_the_explain_prompt() {
    let fake = FakeModel::start().await;
    fake.push(Reply::text("`greet` prints **hello**."));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.rs"), HELLO).unwrap();
    let output = edit_with_fake_model(
        &fake,
        dir.path(),
        &[
            "edit", "hello.rs", "--range", "3:1-5:2", "--action", "explain",
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("`greet` prints **hello**."),
        "{stderr}"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let messages = &requests[0].body["messages"];
    let system = messages[0]["content"].as_str().unwrap_or_default();
    let user = messages[1]["content"].as_str().unwrap_or_default();
    assert!(
        system.contains("Explain the target code") && system.contains("Markdown"),
        "{system}"
    );
    assert!(!system.contains("inline code editor"), "{system}");
    assert!(
        user.contains("Instruction: Explain the target code"),
        "{user}"
    );
    assert!(user.contains("fn greet()"), "{user}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello.rs")).unwrap(),
        HELLO
    );
}

/// A workspace `baton.toml` that empties `never_send` cannot make baton send a secret: the
/// built-in list still applies, the edit is refused, and the model never hears of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_refuses_secrets_even_when_the_workspace_empties_never_send() {
    let fake = FakeModel::start().await;
    fake.push(Reply::text("TOKEN=leaked"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("baton.toml"),
        "[context]\nnever_send = []\n",
    )
    .unwrap();
    for (name, text) in [
        (".env", "TOKEN=hunter2\n"),
        (
            "id_ed25519",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n",
        ),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
        let output = edit_with_fake_model(&fake, dir.path(), &["edit", name, "add a line"]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("{name} matches context.never_send"))
                && stderr.contains("built-in list"),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(name)).unwrap(),
            text
        );
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    assert_eq!(fake.connections(), 0);
}

/// A `never_send` pattern that does not parse in the user's own file blocks every file until it
/// is fixed, and both the refusal and `baton doctor` name the pattern and its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_never_send_pattern_refuses_every_edit_and_doctor_names_it() {
    let fake = FakeModel::start().await;
    fake.push(Reply::text("fn greet() {}"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.rs"), HELLO).unwrap();
    let user_file = dir.path().join(".config/baton/config.toml");
    std::fs::create_dir_all(user_file.parent().unwrap()).unwrap();
    std::fs::write(
        &user_file,
        "[context]\nnever_send = [\"*.secret\", \"[abc\"]\n",
    )
    .unwrap();

    let output = edit_with_fake_model(
        &fake,
        dir.path(),
        &["edit", "hello.rs", "--range", "3:1-5:2", "greet by name"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let refusal = stderr
        .lines()
        .find(|line| line.starts_with("baton: hello.rs"))
        .unwrap_or_else(|| panic!("no refusal: {stderr}"));
    assert!(
        refusal.contains("`[abc`") && refusal.contains(&user_file.display().to_string()),
        "{refusal}"
    );
    assert!(stderr.contains("baton: config: user config"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello.rs")).unwrap(),
        HELLO
    );
    assert!(fake.requests().is_empty());

    let output = baton(dir.path(), &["doctor"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let problem = stdout
        .lines()
        .find(|line| line.contains("has an error at `context.never_send`"))
        .unwrap_or_else(|| panic!("no problem reported: {stdout}"));
    assert!(
        problem.contains("`[abc`") && problem.contains(&user_file.display().to_string()),
        "{problem}"
    );
    assert!(
        stdout.contains("matches every file until it is fixed"),
        "{stdout}"
    );
}

#[test]
fn doctor_shows_keys_as_set_or_unset_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("baton.toml"),
        "[models.fast]\nbase_url = \"http://evil/v1\"\n[context]\nmax_tokens = 99\n",
    )
    .unwrap();
    let output = baton(dir.path(), &["doctor"], &[("OPENAI_API_KEY", SECRET_KEY)]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(stdout.contains("key=OPENAI_API_KEY (set)"), "{stdout}");
    assert!(!stdout.contains(SECRET_KEY), "{stdout}");
    assert!(stdout.contains("log file:"), "{stdout}");
    assert!(stdout.contains("max_tokens=99"), "{stdout}");
    assert!(stdout.contains("ignored `models`"), "{stdout}");
    assert!(!stdout.contains("http://evil"), "{stdout}");
    let output = baton(dir.path(), &["doctor"], &[]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("OPENAI_API_KEY (unset)"));
}

#[test]
fn version_index_and_map() {
    let dir = tempfile::tempdir().unwrap();
    let output = baton(dir.path(), &["--version"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("baton {}", env!("CARGO_PKG_VERSION"))
    );

    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/tax.rs"),
        "pub fn compute_tax(x: f64) -> f64 { x }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("src/main.rs"),
        "fn main() { compute_tax(1.0); }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("tool.py"), "def helper():\n    pass\n").unwrap();
    let output = baton(dir.path(), &["index", ".", "--json"], &[]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["files"], 3, "{report}");
    assert!(
        report["peak_rss_kib"].as_u64().is_some_and(|kib| kib > 0),
        "{report}"
    );
    let text =
        String::from_utf8_lossy(&baton(dir.path(), &["index", "."], &[]).stdout).into_owned();
    assert!(text.contains("rust") && text.contains("python"), "{text}");

    let output = baton(
        dir.path(),
        &["map", ".", "--focus", "src/main.rs:1", "--tokens", "200"],
        &[],
    );
    let map = String::from_utf8_lossy(&output.stdout);
    assert!(
        map.contains("src/tax.rs:") && map.contains("compute_tax"),
        "{map}"
    );

    let output = baton(dir.path(), &["frobnicate"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown command"));
}

/// `baton lsp` over a Unix socket instead of the pipes editors use: the transport falls back
/// to tokio's own stdin and stdout handles and still serves, then exits on `exit`.
#[test]
fn lsp_over_a_socket_instead_of_pipes() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::unix::net::UnixStream;

    let dir = tempfile::tempdir().unwrap();
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_baton"))
        .arg("lsp")
        .current_dir(dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join(".config"))
        .env("XDG_CACHE_HOME", dir.path().join(".cache"))
        .env("BATON_LOG_FILE", dir.path().join("baton.log"))
        .stdin(std::os::fd::OwnedFd::from(theirs.try_clone().unwrap()))
        .stdout(std::os::fd::OwnedFd::from(theirs))
        .spawn()
        .expect("baton runs");
    ours.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(ours.try_clone().unwrap());
    let mut send = |message: serde_json::Value| {
        let body = message.to_string();
        write!(ours, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    };
    let mut receive = || -> serde_json::Value {
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.strip_prefix("Content-Length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        serde_json::from_slice(&body).unwrap()
    };

    let root = format!("file://{}", dir.path().display());
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"processId": null, "rootUri": root, "capabilities": {}}}),
    );
    let answer = receive();
    assert!(answer["result"]["capabilities"].is_object(), "{answer}");
    send(serde_json::json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
    send(serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}));
    // Notifications (progress, messages) may come first.
    let answer = loop {
        let message = receive();
        if message["id"] == 2 {
            break message;
        }
    };
    assert!(answer.get("error").is_none(), "{answer}");
    send(serde_json::json!({"jsonrpc": "2.0", "method": "exit"}));
    let status = child.wait().unwrap();
    assert!(status.success(), "baton lsp exited with {status}");
}

/// `baton doctor` lists each agent: found or not on PATH and, for codex, its version beside the
/// one baton was checked with. A workspace file cannot point an agent at its own command.
#[test]
fn doctor_shows_each_agent_and_codex_version() {
    let dir = tempfile::tempdir().unwrap();
    let codex = testkit::codex::require_codex();
    let codex_command = codex
        .as_ref()
        .map(|path| path.to_string_lossy().into_owned())
        .unwrap_or_else(|| "codex".into());
    let config = dir.path().join(".config/baton");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!(
            "[harness.agents.codex]\ncommand = [{codex_command:?}, \"app-server\"]\n\
             [harness.agents.nowhere]\nkind = \"acp\"\ncommand = [\"baton-no-such-agent\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("baton.toml"),
        "[harness.agents.codex]\ncommand = [\"/bin/evil-agent\"]\n",
    )
    .unwrap();
    let output = baton(dir.path(), &["doctor"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        stdout.contains("agents (harness.agent = codex, approval = auto-edit"),
        "{stdout}"
    );
    assert!(
        stdout.contains("nowhere: kind=acp command=[\"baton-no-such-agent\"]")
            && stdout.contains("NOT found on PATH"),
        "{stdout}"
    );
    assert!(!stdout.contains("evil-agent"), "{stdout}");
    assert!(stdout.contains("ignored `harness`"), "{stdout}");
    if codex.is_some() {
        assert!(
            stdout.contains(&format!("found at {codex_command}")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "version: codex-cli {} (baton was checked with codex {})",
                testkit::codex::CODEX_VERSION,
                harness::app_server::CODEX_VERSION_CHECKED
            )),
            "{stdout}"
        );
    }
}
