//! Command-line arguments and the subcommands they select.

use std::path::PathBuf;

use crate::headless::{CliRange, EditArgs};
use crate::targets::Action;

pub const USAGE: &str = "\
baton: coding agents in any LSP editor

usage:
  baton [lsp]                      serve LSP on stdin/stdout (what editors run)
  baton edit FILE [--range L1:C1-L2:C2] [--action edit|fix|document|tests|explain] \"instruction\"
                                   run an inline edit headless and write FILE (1-based lines and columns)
  baton index [PATH] [--json]      index a workspace; print counts per language, timings and memory
  baton map [PATH] [--focus FILE[:LINE]] [--tokens N]
                                   print the ranked repo map of a workspace
  baton doctor [PATH]              show the resolved configuration, usable providers and config errors
  baton --version
";

#[derive(Debug)]
pub enum Command {
    Lsp,
    Version,
    Help,
    Doctor {
        root: PathBuf,
    },
    Index {
        root: PathBuf,
        json: bool,
    },
    Map {
        root: PathBuf,
        focus: Option<(PathBuf, Option<u32>)>,
        tokens: usize,
    },
    Edit {
        file: PathBuf,
        range: Option<CliRange>,
        instruction: Option<String>,
        action: Action,
    },
}

pub fn parse(arguments: &[String]) -> Result<Command, String> {
    let Some(first) = arguments.first() else {
        return Ok(Command::Lsp);
    };
    let rest = &arguments[1..];
    match first.as_str() {
        "lsp" => Ok(Command::Lsp),
        "--version" | "-V" | "version" => Ok(Command::Version),
        "--help" | "-h" | "help" => Ok(Command::Help),
        "doctor" => Ok(Command::Doctor {
            root: rest
                .first()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".")),
        }),
        "edit" => parse_edit(rest),
        "index" => {
            let json = rest.iter().any(|argument| argument == "--json");
            let root = rest
                .iter()
                .find(|argument| !argument.starts_with("--"))
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            Ok(Command::Index { root, json })
        }
        "map" => parse_map(rest),
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    }
}

fn parse_edit(arguments: &[String]) -> Result<Command, String> {
    let mut file = None;
    let mut range = None;
    let mut action = Action::Edit;
    let mut words = Vec::new();
    let mut iter = arguments.iter();
    while let Some(argument) = iter.next() {
        match argument.as_str() {
            "--range" => {
                let value = iter.next().ok_or("--range needs a value like 3:1-10:2")?;
                range = Some(CliRange::parse(value)?);
            }
            "--action" => {
                action = match iter.next().map(String::as_str) {
                    Some("edit") => Action::Edit,
                    Some("fix") => Action::Fix,
                    Some("document") => Action::Document,
                    Some("tests") => Action::Tests,
                    Some("explain") => Action::Explain,
                    other => return Err(format!("unknown --action {other:?}")),
                }
            }
            _ if file.is_none() => file = Some(PathBuf::from(argument)),
            _ => words.push(argument.clone()),
        }
    }
    let file = file.ok_or_else(|| format!("baton edit needs a FILE\n\n{USAGE}"))?;
    let instruction = (!words.is_empty()).then(|| words.join(" "));
    Ok(Command::Edit {
        file,
        range,
        instruction,
        action,
    })
}

fn parse_map(arguments: &[String]) -> Result<Command, String> {
    let mut root = None;
    let mut focus = None;
    let mut tokens = 1024;
    let mut iter = arguments.iter();
    while let Some(argument) = iter.next() {
        match argument.as_str() {
            "--focus" => {
                let value = iter.next().ok_or("--focus needs FILE or FILE:LINE")?;
                focus = Some(match value.rsplit_once(':') {
                    Some((file, line))
                        if line.chars().all(|c| c.is_ascii_digit()) && !line.is_empty() =>
                    {
                        (
                            PathBuf::from(file),
                            Some(line.parse().map_err(|_| "bad line number")?),
                        )
                    }
                    _ => (PathBuf::from(value), None),
                });
            }
            "--tokens" => {
                tokens = iter
                    .next()
                    .and_then(|value| value.parse().ok())
                    .ok_or("--tokens needs a number")?;
            }
            _ if root.is_none() => root = Some(PathBuf::from(argument)),
            other => return Err(format!("unexpected argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(Command::Map {
        root: root.unwrap_or_else(|| PathBuf::from(".")),
        focus,
        tokens,
    })
}

/// Runs a command; returns the process exit code.
pub async fn run(command: Command) -> i32 {
    match command {
        Command::Lsp => {
            let _guard = crate::logging::init();
            crate::panics::install_hook();
            tracing::info!(version = env!("CARGO_PKG_VERSION"), "baton lsp starting");
            crate::lsp::serve_stdio().await;
            0
        }
        Command::Version => {
            println!("baton {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Command::Help => {
            print!("{USAGE}");
            0
        }
        Command::Index { root, json } => {
            let _guard = crate::logging::init();
            tokio::task::spawn_blocking(move || crate::indexing::cli_index(root, json))
                .await
                .unwrap_or(1)
        }
        Command::Map {
            root,
            focus,
            tokens,
        } => {
            let _guard = crate::logging::init();
            tokio::task::spawn_blocking(move || crate::indexing::cli_map(root, focus, tokens))
                .await
                .unwrap_or(1)
        }
        Command::Doctor { root } => {
            print!("{}", crate::doctor::report(&root));
            0
        }
        Command::Edit {
            file,
            range,
            instruction,
            action,
        } => {
            let _guard = crate::logging::init();
            crate::headless::run(EditArgs {
                file,
                range,
                instruction,
                action,
            })
            .await
        }
    }
}
