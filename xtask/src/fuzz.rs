//! `cargo xtask fuzz [--minutes N] [--first-seed S]`: the model-based fuzz of the server loop
//! (`server/tests/e2e/fuzz.rs`) for as long as asked.
//!
//! CI runs a fixed few thousand operations; this runs new seeds until the time is up, in the debug
//! build the tests use (its overflow checks and test hooks find more than a release build would).
//! It prints a line per seed and a summary: operations, seeds, failures with their seeds. A
//! failing seed belongs in the fuzz's `REGRESSION_SEEDS`, so CI replays it forever after.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

pub struct Options {
    pub minutes: f64,
    pub first_seed: u64,
}

impl Options {
    pub fn parse(arguments: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            minutes: 1.0,
            first_seed: 1,
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
                    if options.minutes.is_nan() || options.minutes <= 0.0 {
                        bail!("--minutes must be positive");
                    }
                }
                "--first-seed" => {
                    options.first_seed =
                        value()?.parse().context("--first-seed takes an integer")?
                }
                other => bail!("unknown argument {other}\n{}", crate::USAGE),
            }
        }
        Ok(options)
    }
}

pub fn run(root: &Path, options: &Options) -> anyhow::Result<()> {
    println!(
        "fuzz: {} minute(s) from seed {}, server loop (debug build)",
        options.minutes, options.first_seed
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "test",
            "--locked",
            "-p",
            "baton",
            "--test",
            "e2e",
            "fuzz::long_run",
            "--",
            "--ignored",
            "--exact",
            "--nocapture",
        ])
        .env("BATON_FUZZ_MINUTES", options.minutes.to_string())
        .env("BATON_FUZZ_FIRST_SEED", options.first_seed.to_string())
        .status()
        .context("running cargo test")?;
    if !status.success() {
        bail!("the fuzz found failures (see the FAILURE lines above)");
    }
    Ok(())
}
