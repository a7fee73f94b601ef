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
//! [`CodexHome`] must live outside `/tmp` and `$TMPDIR` ([`CodexHome::scratch`] puts it in
//! cargo's target directory): see its docs for the failure otherwise.
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

/// `codex-acp` for a test, like [`require_codex`]. It also needs a `bwrap` (without one every
/// patch fails inside the agent and the client is never told), so a missing `bwrap` counts as
/// missing codex-acp.
pub fn require_codex_acp() -> Option<PathBuf> {
    let codex_acp = require(codex_acp_bin(), "codex-acp", "BATON_CODEX_ACP_BIN")?;
    require(
        bwrap_bin(),
        "bwrap (bubblewrap, which codex-acp needs)",
        "PATH",
    )?;
    Some(codex_acp)
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
///
/// It must not lie under `/tmp` or `$TMPDIR`: codex then refuses to create its helper
/// binaries there ("Refusing to create helper binaries under temporary dir"), and with a
/// `bwrap` on `PATH` (Debian's `bubblewrap`) every `apply_patch` in the workspace-write sandbox
/// then fails with "Failed to write file" (measured as root in these containers with codex
/// 0.171.0 and codex-acp 0.16.0; without a `bwrap` on `PATH` codex 0.171.0 uses its bundled
/// one and does not need them, but codex-acp needs one on `PATH`).
/// [`CodexHome::new`] refuses such a directory; [`CodexHome::scratch`] picks a good one.
#[derive(Debug)]
pub struct CodexHome {
    dir: PathBuf,
    /// Remove `dir` on drop (it was made by [`CodexHome::scratch`]).
    owned: bool,
}

impl CodexHome {
    /// Creates `dir` (if needed) and writes `config.toml` there naming the fake provider at
    /// `base_url` (`http://127.0.0.1:PORT/v1`, [`FakeModel::base_url`](crate::fake_model::FakeModel::base_url)).
    /// Retries are off, so one scripted failure is one failed request: a test scripts exactly
    /// the replies codex will ask for. Fails for a directory under `/tmp` or `$TMPDIR` (see the
    /// type's docs). The directory is left in place on drop.
    pub fn new(dir: impl Into<PathBuf>, base_url: &str) -> std::io::Result<CodexHome> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        let dir = dir.canonicalize()?;
        if let Some(temporary) = temporary_roots()
            .into_iter()
            .find(|root| dir.starts_with(root))
        {
            return Err(std::io::Error::other(format!(
                "CODEX_HOME {} is under the temporary directory {}: codex then cannot create its \
                 helper binaries and patches fail when bwrap is on PATH; use CodexHome::scratch \
                 or a directory elsewhere",
                dir.display(),
                temporary.display()
            )));
        }
        let home = CodexHome { dir, owned: false };
        std::fs::write(home.config_path(), config_toml(base_url))?;
        Ok(home)
    }

    /// A fresh `CODEX_HOME` under [`scratch_root`], removed when dropped.
    pub fn scratch(base_url: &str) -> std::io::Result<CodexHome> {
        let dir = unique_dir(&scratch_root().join("codex-home"))?;
        let mut home = CodexHome::new(dir, base_url)?;
        home.owned = true;
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

impl Drop for CodexHome {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Where tests put directories that must not be temporary ones (a `CODEX_HOME`, a shadow
/// workspace): `$BATON_TEST_SCRATCH` if set, else `tmp/baton/` in cargo's target directory
/// (found from the running test executable: the first ancestor holding cargo's
/// `CACHEDIR.TAG`), else `~/.cache/baton-test-scratch`.
pub fn scratch_root() -> PathBuf {
    if let Some(configured) = std::env::var_os("BATON_TEST_SCRATCH").filter(|v| !v.is_empty()) {
        return PathBuf::from(configured);
    }
    let target = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .find(|dir| dir.join("CACHEDIR.TAG").is_file())
            .map(Path::to_path_buf)
    });
    match target {
        Some(target) => target.join("tmp").join("baton"),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp"))
            .join(".cache/baton-test-scratch"),
    }
}

/// A new, empty directory under `parent` with a name no other test process uses.
pub fn unique_dir(parent: &Path) -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(parent)?;
    loop {
        let candidate = parent.join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // create_dir (not _all) fails if it exists, so a leftover from a dead process with
        // the same pid is skipped rather than reused.
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `/tmp` and `$TMPDIR`, canonical, for the check in [`CodexHome::new`].
fn temporary_roots() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from("/tmp")];
    if let Some(tmpdir) = std::env::var_os("TMPDIR").filter(|v| !v.is_empty()) {
        roots.push(PathBuf::from(tmpdir));
    }
    roots
        .into_iter()
        .filter_map(|root| root.canonicalize().ok())
        .collect()
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
        let home = CodexHome::scratch("http://127.0.0.1:4242/v1").unwrap();
        let dir = home.path().to_path_buf();
        assert!(dir.starts_with(scratch_root().canonicalize().unwrap()));
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
        drop(home);
        assert!(!dir.exists(), "a scratch home is removed on drop");
    }

    #[test]
    fn a_home_under_tmp_is_refused() {
        let dir = std::env::temp_dir().join(format!("baton-codex-home-{}", std::process::id()));
        let error = CodexHome::new(&dir, "http://127.0.0.1:1/v1").unwrap_err();
        assert!(error.to_string().contains("temporary directory"), "{error}");
        assert!(!dir.join("config.toml").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
