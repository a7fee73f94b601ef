//! Measuring helpers shared by the benchmarks: percentiles, a process's CPU time from `/proc`,
//! a description of the machine, and the marked sections of `docs/benchmarks.md`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// Nearest-rank percentiles of a set of samples (milliseconds).
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for an empty set.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |fraction: f64| {
            let index = (fraction * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        Some(Summary {
            p50: rank(0.5),
            p90: rank(0.9),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// Milliseconds with a precision that suits the size of the number.
pub fn milliseconds(value: f64) -> String {
    if value.abs() < 10.0 {
        format!("{value:.2} ms")
    } else if value.abs() < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

/// The user plus system CPU time a process has used so far, in milliseconds, from
/// `/proc/<pid>/stat` (all threads together). Linux only.
pub fn process_cpu_milliseconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name is in parentheses and may contain spaces: count fields after the last
    // `)`. There, field 0 is the state (field 3 of proc(5)), so utime (14) and stime (15) are
    // at 11 and 12.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("/proc/<pid>/stat without a command name")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    if fields.len() < 13 {
        bail!("/proc/{pid}/stat has too few fields");
    }
    let user: u64 = fields[11].parse().context("utime")?;
    let system: u64 = fields[12].parse().context("stime")?;
    Ok((user + system) as f64 * 1000.0 / clock_ticks_per_second())
}

/// How many times the threads of a process have been switched out so far (voluntary and
/// involuntary context switches, from `/proc/<pid>/task/*/status`): each time a server sleeps
/// and is woken again costs CPU in the kernel, which a bench can count. Threads that already
/// exited are not counted. Linux only.
pub fn context_switches(pid: u32) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("listing /proc/{pid}/task"))?
    {
        let status = std::fs::read_to_string(entry?.path().join("status")).unwrap_or_default();
        total += status
            .lines()
            .filter(|line| line.contains("ctxt_switches:"))
            .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(total)
}

/// `getconf CLK_TCK`, which is 100 on every Linux in practice.
/// A `kB` figure of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`, …), in KiB. Linux only.
pub fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// `N CPUs, <model name>`, from the standard library and `/proc/cpuinfo`.
pub fn machine_description() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    format!("{cpus} CPUs, {model}")
}

/// Today's date (UTC) as `YYYY-MM-DD`, from `date`.
pub fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown date".to_string())
}

/// The short hash of `HEAD`, with `+dirty` when the tree has changes.
pub fn git_revision(root: &Path) -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let hash = run(&["rev-parse", "--short", "HEAD"]).unwrap_or_default();
    let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|status| !status.is_empty());
    if dirty { format!("{hash}+dirty") } else { hash }
}

/// Builds `target/release/baton` (unless `build` is false) and returns its path. The target
/// directory is `CARGO_TARGET_DIR` when set (relative to `root`, as cargo reads it), so a bench
/// runs the binary cargo just built rather than a stale one.
pub fn release_baton(root: &Path, build: bool) -> anyhow::Result<std::path::PathBuf> {
    if build {
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "-p", "baton"])
            .current_dir(root)
            .status()
            .context("running cargo build")?;
        anyhow::ensure!(status.success(), "cargo build --release -p baton failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|directory| !directory.is_empty())
        .map_or_else(|| root.join("target"), |directory| root.join(directory));
    let baton = target.join("release/baton");
    anyhow::ensure!(
        baton.exists(),
        "{} is missing: run without --no-build",
        baton.display()
    );
    Ok(baton)
}

/// The sections of `docs/benchmarks.md`, each owned by one bench command. A new file gets all of
/// them, empty, so each command only ever replaces its own.
const SECTIONS: &[&str] = &[
    "bench-edit",
    "bench-complete",
    "bench-index",
    "bench-task",
    "soak",
];

/// Replaces the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` in `path`, creating
/// the file (with every known section) or appending the section when missing.
pub fn write_doc_section(path: &Path, name: &str, content: &str) -> anyhow::Result<()> {
    let start_marker = format!("<!-- {name}:start -->");
    let end_marker = format!("<!-- {name}:end -->");
    let mut text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut text = String::from(
                "# Benchmarks\n\nEach section is written by the command it names; edit the \
                 commands, not the figures.\n",
            );
            for section in SECTIONS {
                text.push_str(&format!(
                    "\n<!-- {section}:start -->\n<!-- {section}:end -->\n"
                ));
            }
            text
        }
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    if !text.contains(&start_marker) {
        text.push_str(&format!("\n{start_marker}\n{end_marker}\n"));
    }
    let start = text.find(&start_marker).expect("present") + start_marker.len();
    let end = text[start..]
        .find(&end_marker)
        .map(|offset| start + offset)
        .with_context(|| format!("{} has {start_marker} without {end_marker}", path.display()))?;
    text.replace_range(start..end, &format!("\n{}\n", content.trim_end()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// How a command was run, for a recorded result: `cargo xtask NAME` and its arguments.
pub fn command_line(name: &str, arguments: &[String]) -> String {
    let mut line = format!("cargo xtask {name}");
    for argument in arguments {
        line.push(' ');
        line.push_str(argument);
    }
    line
}

/// The 1, 5 and 15 minute load averages joined by `separator`: the machine is shared, and the
/// figures mean little unless the reader knows what else was running.
pub fn load_average(separator: &str) -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(separator)
        })
        .unwrap_or_else(|| "unknown".to_string())
}
