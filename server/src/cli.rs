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

/// Runs a command; returns the process exit code.
pub async fn run(command: Command) -> i32 {
    match command {
        Command::Lsp => {
            let _guard = crate::logging::init();
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
