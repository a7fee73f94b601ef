//! The real codex harnesses (`codex` 0.171.0 and `codex-acp` 0.16.0) in tests: finding their
//! binaries, a private `CODEX_HOME` that points them at a [`FakeModel`](crate::fake_model), and a
//! `PATH` on which codex-acp finds `bwrap`.
//!
//! Where the binaries come from, first match wins:
//! 1. `BATON_CODEX_BIN` / `BATON_CODEX_ACP_BIN`, returned even when the file is missing so a wrong
//!    setting fails loudly instead of falling back to another binary;
//! 2. the native binaries inside the npm packages that `scripts/install-test-deps.sh` installs
//!    under [`test_deps_npm_prefix`] (`$BATON_TEST_DEPS_DIR/npm`, default
//!    `/opt/baton-test-deps/npm`);
//! 3. `codex` / `codex-acp` on `PATH`.
//!
//! Tests call [`require_codex`] / [`require_codex_acp`]: a missing binary skips the test with a
//! printed reason, unless `BATON_REQUIRE_CODEX=1` (set by CI, which installs them) makes it a
//! failure.
//!
//! Facts this relies on are recorded in `../shared/harness.md`: the model must be one codex knows
//! (`gpt-5.5`) or it offers no `apply_patch`; `[features] plugins = false` and
//! `check_for_update_on_startup = false` keep it off the internet; codex-acp needs `bwrap` on
//! `PATH` or every patch silently fails.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The model named in the private config: one in codex's catalog, so the real tool set (with
/// `apply_patch`) is offered.
pub const MODEL: &str = "gpt-5.5";

/// The environment variable codex reads the fake provider's key from.
pub const API_KEY_ENV: &str = "BATON_FAKE_MODEL_API_KEY";

/// The versions `scripts/install-test-deps.sh` pins.
pub const CODEX_VERSION: &str = "0.171.0";
pub const CODEX_ACP_VERSION: &str = "0.16.0";

/// Where the install script keeps its npm packages: `$BATON_TEST_DEPS_DIR/npm`, default
/// `/opt/baton-test-deps/npm` (a fixed path, so it is the same for every user and CI step).
pub fn test_deps_npm_prefix() -> PathBuf {
    let base = std::env::var_os("BATON_TEST_DEPS_DIR")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/baton-test-deps"));
    base.join("npm")
}

/// The native `codex` binary inside the npm install (the `.bin/codex` wrapper needs node and
/// only execs this one).
fn npm_codex() -> PathBuf {
    test_deps_npm_prefix()
        .join("node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex")
}

fn npm_codex_acp() -> PathBuf {
    test_deps_npm_prefix().join("node_modules/@zed-industries/codex-acp-linux-x64/bin/codex-acp")
}

/// Finds `codex`; see the module docs for the order.
pub fn codex_bin() -> Option<PathBuf> {
    locate("BATON_CODEX_BIN", npm_codex(), "codex")
}

/// Finds `codex-acp`; see the module docs for the order.
pub fn codex_acp_bin() -> Option<PathBuf> {
    locate("BATON_CODEX_ACP_BIN", npm_codex_acp(), "codex-acp")
}

fn locate(variable: &str, installed: PathBuf, name: &str) -> Option<PathBuf> {
    if let Some(configured) = std::env::var_os(variable).filter(|value| !value.is_empty()) {
        return Some(PathBuf::from(configured));
    }
    if is_executable(&installed) {
        return Some(installed);
    }
    find_on_path(name)
}

/// `codex` for a test: `None` (after printing why) when it is missing and the test should skip;
/// panics when it is missing and `BATON_REQUIRE_CODEX=1`.
pub fn require_codex() -> Option<PathBuf> {
    require(codex_bin(), "codex", "BATON_CODEX_BIN")
}

/// `codex-acp` for a test, like [`require_codex`].
pub fn require_codex_acp() -> Option<PathBuf> {
    require(codex_acp_bin(), "codex-acp", "BATON_CODEX_ACP_BIN")
}

fn require(found: Option<PathBuf>, name: &str, variable: &str) -> Option<PathBuf> {
    if let Some(path) = found {
        return Some(path);
    }
    let required = std::env::var("BATON_REQUIRE_CODEX").is_ok_and(|value| value == "1");
    assert!(
        !required,
        "BATON_REQUIRE_CODEX=1 but no {name} was found (set {variable}, run \
         scripts/install-test-deps.sh, or put {name} on PATH)"
    );
    eprintln!(
        "SKIPPED: {name} not found (set {variable} or run scripts/install-test-deps.sh); set \
         BATON_REQUIRE_CODEX=1 to make this a failure"
    );
    None
}

/// A `bwrap` for codex-acp: the one on `PATH` (Debian's `bubblewrap`), else the build bundled
/// in the codex npm package (`…/codex-resources/bwrap`, next to the codex binary's `bin/`).
pub fn bwrap_bin() -> Option<PathBuf> {
    if let Some(on_path) = find_on_path("bwrap") {
        return Some(on_path);
    }
    let codex = codex_bin()?;
    let codex = codex.canonicalize().unwrap_or(codex);
    let bundled = codex.parent()?.parent()?.join("codex-resources/bwrap");
    is_executable(&bundled).then_some(bundled)
}

/// The current `PATH` with the directory of [`bwrap_bin`] appended when `bwrap` is not on it
/// already: pass it as the `PATH` of a codex-acp child.
pub fn path_with_bwrap() -> OsString {
    let current = std::env::var_os("PATH").unwrap_or_default();
    if find_on_path("bwrap").is_some() {
        return current;
    }
    let Some(directory) = bwrap_bin().and_then(|bwrap| bwrap.parent().map(Path::to_path_buf))
    else {
        return current;
    };
    let mut directories: Vec<PathBuf> = std::env::split_paths(&current).collect();
    directories.push(directory);
    std::env::join_paths(directories).unwrap_or(current)
}

/// A private `CODEX_HOME` whose config sends every model request to a fake model server.
#[derive(Debug, Clone)]
pub struct CodexHome {
    dir: PathBuf,
}

impl CodexHome {
    /// Creates `dir` (if needed) and writes `config.toml` there naming the fake provider at
    /// `base_url` (`http://127.0.0.1:PORT/v1`, [`FakeModel::base_url`](crate::fake_model::FakeModel::base_url)).
    /// Retries are off, so one scripted failure is one failed request: a test scripts exactly
    /// the replies codex will ask for.
    pub fn new(dir: impl Into<PathBuf>, base_url: &str) -> std::io::Result<CodexHome> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        let home = CodexHome { dir };
        std::fs::write(home.config_path(), config_toml(base_url))?;
        Ok(home)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// Appends TOML to the config (more `[features]`, a `[sandbox_workspace_write]` table, …).
    /// Top-level keys must come before the first table, so append whole tables only.
    pub fn append_config(&self, toml: &str) -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.config_path())?;
        writeln!(file, "\n{toml}")
    }

    /// The environment a codex or codex-acp child needs: `CODEX_HOME`, the provider's key
    /// variable, and a `PATH` with `bwrap` on it.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        vec![
            ("CODEX_HOME".into(), self.dir.clone().into_os_string()),
            (API_KEY_ENV.into(), "fake-key".into()),
            ("PATH".into(), path_with_bwrap()),
        ]
    }
}

fn config_toml(base_url: &str) -> String {
    // Debug-escaping a Rust string gives a valid TOML basic string for any URL.
    format!(
        r#"# Written by testkit::codex::CodexHome: codex against a fake model on loopback.
model = "{MODEL}"
model_provider = "fake"
check_for_update_on_startup = false

[features]
# With plugins on, every thread start reaches for hosts on the internet.
plugins = false

[model_providers.fake]
name = "fake"
base_url = {base_url:?}
wire_api = "responses"
env_key = "{API_KEY_ENV}"
# Their product bounds how often one failing request is repeated; none keeps scripts exact.
request_max_retries = 0
stream_max_retries = 0
"#
    )
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_names_the_fake_provider() {
        let dir = std::env::temp_dir().join(format!("baton-codex-home-{}", std::process::id()));
        let home = CodexHome::new(&dir, "http://127.0.0.1:4242/v1").unwrap();
        home.append_config("[sandbox_workspace_write]\nexclude_slash_tmp = true")
            .unwrap();
        let text = std::fs::read_to_string(home.config_path()).unwrap();
        // Parsed by a real TOML parser: a syntax slip would make codex refuse to start.
        let config: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(config["model"].as_str(), Some("gpt-5.5"));
        assert_eq!(config["model_provider"].as_str(), Some("fake"));
        assert_eq!(config["check_for_update_on_startup"].as_bool(), Some(false));
        assert_eq!(config["features"]["plugins"].as_bool(), Some(false));
        let provider = &config["model_providers"]["fake"];
        assert_eq!(
            provider["base_url"].as_str(),
            Some("http://127.0.0.1:4242/v1")
        );
        assert_eq!(provider["wire_api"].as_str(), Some("responses"));
        assert_eq!(provider["env_key"].as_str(), Some(API_KEY_ENV));
        assert_eq!(provider["request_max_retries"].as_integer(), Some(0));
        assert_eq!(provider["stream_max_retries"].as_integer(), Some(0));
        assert_eq!(
            config["sandbox_workspace_write"]["exclude_slash_tmp"].as_bool(),
            Some(true)
        );
        let env = home.env();
        assert!(env.contains(&("CODEX_HOME".into(), dir.clone().into_os_string())));
        assert!(env.iter().any(|(k, _)| k == API_KEY_ENV));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
