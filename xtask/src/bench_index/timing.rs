//! Timing a child process (wall time and peak resident memory) and summarising samples.
//!
//! Peak memory comes from GNU `time -f %M` (the child's `ru_maxrss`), the same source for baton
//! and ctags, so the two figures are comparable; the wall time is taken around the whole child,
//! process start-up included, as a user waiting for the command would see it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

/// GNU time, from Debian's `time` package.
const GNU_TIME: &str = "/usr/bin/time";

/// One finished child process.
pub struct TimedRun {
    pub wall_ms: f64,
    pub peak_rss_kib: u64,
    pub stdout: String,
}

/// Runs `program args…` under GNU time and fails if it fails.
pub fn run_timed(
    program: &Path,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &Path)],
    scratch: &Path,
) -> anyhow::Result<TimedRun> {
    if !Path::new(GNU_TIME).exists() {
        bail!("{GNU_TIME} is missing: apt-get install -y time");
    }
    let rusage_file = scratch.join("time-output.txt");
    let mut command = Command::new(GNU_TIME);
    command
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rusage_file)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let started = Instant::now();
    let output = command
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    if !output.status.success() {
        bail!(
            "{} failed with {}: {}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let peak_rss_kib = std::fs::read_to_string(&rusage_file)?
        .lines()
        .filter_map(|line| line.trim().parse::<u64>().ok())
        .next_back()
        .context("GNU time printed no %M")?;
    Ok(TimedRun {
        wall_ms,
        peak_rss_kib,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    })
}

/// Median and range of repeated measurements.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// The spread of one measure taken from each run.
    pub fn of_each<T>(runs: &[T], measure: impl Fn(&T) -> f64) -> Spread {
        Spread::of(&runs.iter().map(measure).collect::<Vec<_>>())
    }

    pub fn of(samples: &[f64]) -> Spread {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.is_empty() {
            f64::NAN
        } else if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Spread {
            median,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// Nearest-rank percentile (`fraction` in 0..=1) of samples.
pub fn percentile(samples: &[f64], fraction: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds with a precision that suits the size of the number.
pub fn milliseconds(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else if value < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

/// `median (min–max)` in milliseconds.
pub fn spread_milliseconds(spread: &Spread) -> String {
    format!(
        "{} ({}–{})",
        milliseconds(spread.median),
        milliseconds(spread.min),
        milliseconds(spread.max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.5), 50.0);
        assert_eq!(percentile(&samples, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn spreads_take_the_middle_of_even_sets() {
        let spread = Spread::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!((spread.median, spread.min, spread.max), (2.5, 1.0, 4.0));
    }
}
