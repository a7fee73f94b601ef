//! `cargo xtask fuzz [--minutes N] [--target NAME] [--first-seed S]`: every fuzz target (or one)
//! for N minutes each.
//!
//! The targets:
//! - `server`: the model-based fuzz of the real LSP loop (`server/tests/e2e/fuzz.rs`), new seeds
//!   until the time is up;
//! - `sse` (`crates/model/src/tests/fuzz_sse.rs`), `positions` (`crates/text/tests/
//!   fuzz_positions.rs`), `markers` and `tags` (`crates/syntax/src/tests/fuzz_*.rs`),
//!   `file_symbols` (`crates/index/src/tests/fuzz_file_symbols.rs`) and `config`
//!   (`server/src/config/fuzz_config.rs`): property tests named `fuzz_*`.
//!
//! The property targets use proptest on the stable toolchain rather than cargo-fuzz on nightly:
//! the CI machines have no nightly toolchain; the same targets run as ordinary tests in every
//! `cargo test` (a few hundred cases each), so CI exercises them forever after; proptest
//! shrinks a failure to a minimal input, which becomes a named regression test; and
//! `PROPTEST_CASES` scales a run without code changes. Coverage-guided fuzzing would search
//! deeper, but its inputs are bytes, while these generators build the structured inputs
//! (events, positions, edits, configuration) where the bugs were.
//!
//! Here each property target runs in rounds: `cargo test <target's filter>` with
//! `PROPTEST_CASES` set and a new `PROPTEST_RNG_SEED` per round, the cases doubling while a
//! round takes under 20 seconds, until the target's minutes are up. A failing round stops its
//! target: proptest has saved the failure in the crate's regression file, so every later run
//! (and CI) replays it until it is fixed. A round that runs past five minutes (or ten times the
//! previous one) is killed and reported as a hang with its seed. Everything runs in the debug build the tests use (its
//! overflow checks find more than a release build would); building happens before the clock
//! starts. It prints a line per round and, per target: cases, seconds, failures.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub struct Options {
    pub minutes: f64,
    pub first_seed: u64,
    /// `None` runs every target.
    pub target: Option<String>,
}

/// A property-test target: the cargo arguments that select its test binary and the filter that
/// selects its tests.
struct PropertyTarget {
    name: &'static str,
    cargo_arguments: &'static [&'static str],
    filter: &'static str,
}

const PROPERTY_TARGETS: &[PropertyTarget] = &[
    PropertyTarget {
        name: "sse",
        cargo_arguments: &["-p", "model", "--lib"],
        filter: "fuzz_sse",
    },
    PropertyTarget {
        name: "positions",
        cargo_arguments: &["-p", "text", "--test", "fuzz_positions"],
        filter: "fuzz_positions",
    },
    PropertyTarget {
        name: "markers",
        cargo_arguments: &["-p", "syntax", "--lib"],
        filter: "fuzz_markers",
    },
    PropertyTarget {
        name: "tags",
        cargo_arguments: &["-p", "syntax", "--lib"],
        filter: "fuzz_tags",
    },
    PropertyTarget {
        name: "file_symbols",
        cargo_arguments: &["-p", "index", "--lib"],
        filter: "fuzz_file_symbols",
    },
    PropertyTarget {
        name: "config",
        cargo_arguments: &["-p", "baton", "--lib"],
        filter: "fuzz_config",
    },
];

/// The server loop's target, which is not a property test.
const SERVER_TARGET: &str = "server";

/// Cases per property in a target's first round; later rounds double it while they are quick.
const FIRST_ROUND_CASES: u64 = 500;
const QUICK_ROUND: Duration = Duration::from_secs(20);
/// A round that runs longer than this (or ten times the previous round) is a hang: a case that
/// never finishes. It is killed and reported with its seed.
const HANG_LIMIT: Duration = Duration::from_secs(300);

impl Options {
    pub fn parse(arguments: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            minutes: 1.0,
            first_seed: 1,
            target: None,
        };
        let mut arguments = arguments.iter();
        while let Some(argument) = arguments.next() {
            let mut value = || {
                arguments
                    .next()
                    .context(format!("{argument} needs a value"))
            };
            match argument.as_str() {
                "--minutes" => {
                    options.minutes = value()?.parse().context("--minutes takes a number")?;
                    // Infinite minutes would overflow the deadline's Duration.
                    if !options.minutes.is_finite() || options.minutes <= 0.0 {
                        bail!("--minutes must be a positive number");
                    }
                }
                "--first-seed" => {
                    options.first_seed =
                        value()?.parse().context("--first-seed takes an integer")?
                }
                "--target" => {
                    let target = value()?;
                    if !target_names().any(|name| name == target) {
                        bail!(
                            "unknown target {target}; the targets are {}",
                            target_names().collect::<Vec<_>>().join(", ")
                        );
                    }
                    options.target = Some(target.clone());
                }
                other => bail!("unknown argument {other}\n{}", crate::USAGE),
            }
        }
        Ok(options)
    }
}

fn target_names() -> impl Iterator<Item = &'static str> {
    std::iter::once(SERVER_TARGET).chain(PROPERTY_TARGETS.iter().map(|target| target.name))
}

/// What one target did.
struct Figures {
    target: &'static str,
    /// Property cases, or operations for the server loop.
    cases: u64,
    unit: &'static str,
    elapsed: Duration,
    failures: Vec<String>,
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    let selected: Vec<&'static str> = target_names()
        .filter(|name| {
            options
                .target
                .as_deref()
                .is_none_or(|target| target == *name)
        })
        .collect();
    println!(
        "fuzz: {} minute(s) per target from seed {}: {} (debug build)",
        options.minutes,
        options.first_seed,
        selected.join(", ")
    );
    let mut all = Vec::new();
    for name in selected {
        let figures = match PROPERTY_TARGETS.iter().find(|target| target.name == name) {
            Some(target) => run_property_target(root, target, options)?,
            None => run_server_loop(root, options)?,
        };
        println!(
            "fuzz {}: {} {} in {:.0} s, {} failure(s)",
            figures.target,
            figures.cases,
            figures.unit,
            figures.elapsed.as_secs_f64(),
            figures.failures.len()
        );
        all.push(figures);
    }
    println!("\nfuzz summary:");
    println!(
        "{:<14} {:>12} {:<10} {:>8} {:>9}",
        "target", "count", "of", "seconds", "failures"
    );
    for figures in &all {
        println!(
            "{:<14} {:>12} {:<10} {:>8.0} {:>9}",
            figures.target,
            figures.cases,
            figures.unit,
            figures.elapsed.as_secs_f64(),
            figures.failures.len()
        );
    }
    let failures: Vec<&String> = all.iter().flat_map(|figures| &figures.failures).collect();
    if !failures.is_empty() {
        for failure in &failures {
            println!("FAILURE {failure}");
        }
        bail!("the fuzz found {} failure(s)", failures.len());
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run_property_target(
    root: &Path,
    target: &PropertyTarget,
    options: &Options,
) -> anyhow::Result<Figures> {
    let built = cargo()
        .current_dir(root)
        .args(["test", "--locked", "--no-run"])
        .args(target.cargo_arguments)
        .status()
        .context("building the tests")?;
    if !built.success() {
        bail!("the {} target does not build", target.name);
    }
    let budget = Duration::from_secs_f64(options.minutes * 60.0);
    let started = Instant::now();
    let mut figures = Figures {
        target: target.name,
        cases: 0,
        unit: "cases",
        elapsed: Duration::ZERO,
        failures: Vec::new(),
    };
    let mut cases_per_property = FIRST_ROUND_CASES;
    let mut seed = options.first_seed;
    let mut last_round = Duration::ZERO;
    while started.elapsed() < budget {
        let round_started = Instant::now();
        let mut command = cargo();
        command
            .current_dir(root)
            .args(["test", "--locked"])
            .args(target.cargo_arguments)
            .args([target.filter, "--", "--test-threads=2"])
            .env("PROPTEST_CASES", cases_per_property.to_string())
            .env("PROPTEST_RNG_SEED", seed.to_string());
        let hang_limit = HANG_LIMIT.max(last_round * 10);
        let (stdout, success) = run_with_limit(command, hang_limit)?;
        let round = round_started.elapsed();
        last_round = round;
        // Named regression tests run once per round; only properties run the cases.
        let properties = stdout
            .lines()
            .filter(|line| line.starts_with("test ") && line.ends_with(" ok"))
            .filter(|line| !line.contains("regression"))
            .count() as u64;
        figures.cases += properties * cases_per_property;
        println!(
            "fuzz {}: seed {seed}, {properties} properties x {cases_per_property} cases in {:.1} s",
            target.name,
            round.as_secs_f64()
        );
        match success {
            Some(true) => {}
            Some(false) => {
                print!("{stdout}");
                figures.failures.push(format!(
                    "{}: seed {seed} (PROPTEST_RNG_SEED={seed} PROPTEST_CASES={cases_per_property}); \
                     the minimal input is above and in the crate's proptest-regressions",
                    target.name
                ));
                break;
            }
            None => {
                print!("{stdout}");
                figures.failures.push(format!(
                    "{}: HANG, seed {seed} ran over {} s (PROPTEST_RNG_SEED={seed} \
                     PROPTEST_CASES={cases_per_property}); a hang is not saved by proptest: rerun \
                     the seed with the input written out to find it",
                    target.name,
                    hang_limit.as_secs()
                ));
                break;
            }
        }
        let left = budget.saturating_sub(started.elapsed());
        if round < QUICK_ROUND && round * 2 < left {
            cases_per_property *= 2;
        }
        seed += 1;
    }
    figures.elapsed = started.elapsed();
    Ok(figures)
}

/// Runs `command` with its stdout captured, killing it (and the test binary it started) after
/// `limit`. The output, and `Some(success)`, or `None` when it was killed as a hang.
fn run_with_limit(mut command: Command, limit: Duration) -> anyhow::Result<(String, Option<bool>)> {
    // Its own process group, so that a hang kills cargo and the test binary under it.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("running cargo test")?;
    let mut stdout = child.stdout.take().context("cargo's stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let started = Instant::now();
    let success = loop {
        if let Some(status) = child.try_wait().context("waiting for cargo test")? {
            break Some(status.success());
        }
        if started.elapsed() > limit {
            #[cfg(unix)]
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = reader.join().unwrap_or_default();
    Ok((stdout, success))
}

fn run_server_loop(root: &Path, options: &Options) -> anyhow::Result<Figures> {
    let arguments = ["test", "--locked", "-p", "baton", "--test", "e2e"];
    let built = cargo()
        .current_dir(root)
        .args(arguments)
        .arg("--no-run")
        .status()
        .context("building the tests")?;
    if !built.success() {
        bail!("the server target does not build");
    }
    let started = Instant::now();
    let output = cargo()
        .current_dir(root)
        .args(arguments)
        .args([
            "fuzz::long_run",
            "--",
            "--ignored",
            "--exact",
            "--nocapture",
        ])
        .env("BATON_FUZZ_MINUTES", options.minutes.to_string())
        .env("BATON_FUZZ_FIRST_SEED", options.first_seed.to_string())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo test")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    // The run's own summary: "fuzz: N operations, M seeds (a..b), F failures [...]".
    let operations = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("fuzz: "))
        .find_map(|line| line.split_once(" operations")?.0.parse().ok())
        .unwrap_or(0);
    let mut failures: Vec<String> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("fuzz: FAILURE "))
        .map(|failure| format!("server: {failure}"))
        .collect();
    if !output.status.success() && failures.is_empty() {
        failures.push("server: the run failed (see its output above)".into());
    }
    Ok(Figures {
        target: SERVER_TARGET,
        cases: operations,
        unit: "operations",
        elapsed: started.elapsed(),
        failures,
    })
}
