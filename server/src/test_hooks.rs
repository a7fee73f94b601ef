//! Test-only fault injection: deliberate panics at the places panic isolation must cover.
//!
//! Active only in debug builds (the test suite's) and only when `BATON_TEST_HOOKS=1` is in the
//! environment; a release build compiles every hook to nothing. A hook fires when the text it
//! is given contains its trigger, so an end-to-end test chooses the site by what it types:
//! `baton-test-panic:<site>`.

/// Where a test can make baton panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// Inside the `textDocument/documentSymbol` handler, after the snapshot was taken.
    DocumentSymbol,
    /// In the document mutation path, after the text changed but before the tree and the jobs
    /// heard of it: the half-applied state that must be repaired.
    AfterChangeApplied,
    /// In the document mutation path, before the text changed: the change is lost, so the
    /// document must be marked stale.
    BeforeChangeApplied,
    /// Inside a spawned inline edit job, before it asks the model.
    Job,
}

impl Site {
    fn trigger(self) -> &'static str {
        match self {
            Site::DocumentSymbol => "baton-test-panic:documentSymbol",
            Site::AfterChangeApplied => "baton-test-panic:afterChange",
            Site::BeforeChangeApplied => "baton-test-panic:beforeChange",
            Site::Job => "baton-test-panic:job",
        }
    }
}

/// Whether hooks are on: a debug build with `BATON_TEST_HOOKS=1`. Lets a call site skip
/// building the text it would check.
#[cfg(debug_assertions)]
pub fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("BATON_TEST_HOOKS").is_ok_and(|value| value == "1"))
}

/// Release builds carry no hooks.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn enabled() -> bool {
    false
}

/// Panics if hooks are enabled and `text` contains the site's trigger.
pub fn maybe_panic(site: Site, text: &str) {
    if enabled() && text.contains(site.trigger()) {
        panic!("test hook: deliberate panic at {site:?}");
    }
}
