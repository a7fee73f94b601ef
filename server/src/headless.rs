//! `baton edit`: the inline edit job without an editor.
//!
//! The same job as the language server runs, against a [`HeadlessFrontend`] that holds the file
//! as a document in memory, applies each edit at once (reporting it back like an editor would),
//! and prints progress to stderr. The file is written once, when the job is done.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use edit::diff::Replacement;
use text::{ContentChange, Document, PositionEncoding};

use crate::config::{self, Inputs};
use crate::frontend::{DocEvent, Frontend, MessageLevel};
use crate::job_builder::{self, JobRequest};
use crate::jobs::{self, Outcome};
use crate::session::{DocumentSnapshot, DocumentUri};
use crate::targets::Action;

/// A 1-based line and column range, as editors show them (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CliRange {
    pub start: (u32, u32),
    pub end: (u32, u32),
}

impl CliRange {
    /// Parses `L1:C1-L2:C2`.
    pub fn parse(text: &str) -> Result<CliRange, String> {
        let error = || format!("--range must look like L1:C1-L2:C2 (1-based), got {text:?}");
        let (start, end) = text.split_once('-').ok_or_else(error)?;
        let point = |part: &str| -> Result<(u32, u32), String> {
            let (line, column) = part.split_once(':').ok_or_else(error)?;
            let line: u32 = line.trim().parse().map_err(|_| error())?;
            let column: u32 = column.trim().parse().map_err(|_| error())?;
            if line == 0 || column == 0 {
                return Err(error());
            }
            Ok((line - 1, column - 1))
        };
        Ok(CliRange {
            start: point(start)?,
            end: point(end)?,
        })
    }

    fn to_range(self) -> text::Range {
        text::Range::new(
            text::Position::new(self.start.0, self.start.1),
            text::Position::new(self.end.0, self.end.1),
        )
    }
}

pub struct EditArgs {
    pub file: PathBuf,
    pub range: Option<CliRange>,
    pub instruction: Option<String>,
    pub action: Action,
}

/// Runs the edit and writes the file. Returns the process exit code.
pub async fn run(args: EditArgs) -> i32 {
    match run_inner(args).await {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("baton: {message}");
            1
        }
    }
}

async fn run_inner(args: EditArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|err| format!("cannot read {}: {err}", args.file.display()))?;
    let root = std::env::current_dir().map_err(|err| err.to_string())?;
    let resolved = config::resolve(&Inputs::gather(Some(&root), None));
    for problem in &resolved.problems {
        eprintln!("baton: config: {problem}");
    }
    let absolute = if args.file.is_absolute() {
        args.file.clone()
    } else {
        root.join(&args.file)
    };
    let language = syntax::Language::from_path(&args.file);
    let document = Document::new(&text, 0, language.map(|l| l.name()).unwrap_or("plaintext"));
    let snapshot = DocumentSnapshot {
        uri: DocumentUri::new(args.file.display().to_string()),
        tree: language.and_then(|language| syntax::SyntaxTree::parse(language, document.rope())),
        path: Some(absolute),
        // Columns are characters, as editors show them.
        encoding: PositionEncoding::Utf32,
        document,
    };
    let planned = job_builder::build(
        JobRequest {
            action: args.action,
            range: args.range.map(|range| {
                snapshot
                    .document
                    .byte_range(range.to_range(), snapshot.encoding)
            }),
            instruction: args.instruction,
            diagnostics: Vec::new(),
        },
        &snapshot,
        Some(&root),
        &resolved,
    )
    .map_err(|error| error.to_string())?;
    let settings = planned.model;
    let provider = model::provider(&settings, model::http_client()).map_err(|err| {
        format!(
            "{}\n  Configure the model with environment variables, for example:\n    export OPENAI_API_KEY=sk-...            (the default: OpenAI, {})\n    export BATON_PROVIDER=openai-chat BATON_BASE_URL=http://127.0.0.1:11434/v1 BATON_MODEL=qwen2.5-coder   (a local Ollama, no key)\n  `baton doctor` shows what baton resolved.",
            err.user_message(),
            settings.model
        )
    })?;
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let frontend = Arc::new(HeadlessFrontend {
        document: Mutex::new(snapshot.document.clone()),
        events: events_tx,
    });
    let mut job = planned.job;
    job.token = "baton/edit".into();
    let cancel = CancellationToken::new();
    let interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            interrupt.cancel();
        }
    });
    let frontend_dyn: Arc<dyn Frontend> = frontend.clone();
    let outcome = if jobs::is_explain(&job.plan) {
        let request = job.model_request();
        jobs::run_explain(
            frontend_dyn,
            provider,
            request,
            job.path_label.clone(),
            job.token.clone(),
            cancel,
        )
        .await
    } else {
        jobs::run_edit(
            frontend_dyn,
            provider,
            job,
            snapshot.document,
            events_rx,
            cancel,
        )
        .await
    };
    match outcome {
        Outcome::Done => {
            if args.action != Action::Explain {
                let text = frontend.document.lock().expect("lock").text();
                write_atomically(&args.file, &text)
                    .map_err(|err| format!("cannot write {}: {err}", args.file.display()))?;
                eprintln!("baton: wrote {}", args.file.display());
            }
            Ok(())
        }
        // The message was already printed by the job.
        _ => Err("the file was left unchanged".into()),
    }
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let temporary = path.with_extension("baton-tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

/// A document in memory that applies every edit at once.
struct HeadlessFrontend {
    document: Mutex<Document>,
    events: mpsc::UnboundedSender<DocEvent>,
}

impl Frontend for HeadlessFrontend {
    fn apply_edit(
        &self,
        _uri: &DocumentUri,
        at: &Document,
        replacement: &Replacement,
    ) -> BoxFuture<'static, Result<bool, String>> {
        let mut document = self.document.lock().expect("lock");
        if document.version() != at.version() {
            return futures::future::ready(Ok(false)).boxed();
        }
        let encoding = PositionEncoding::Utf8;
        let change = ContentChange {
            range: Some(document.range(replacement.range.clone(), encoding)),
            text: replacement.text.clone(),
        };
        let version = document.version() + 1;
        let result = match document.apply_changes(version, &[change], encoding) {
            Ok(changes) => {
                let _ = self.events.send(DocEvent {
                    document: document.clone(),
                    changes,
                });
                Ok(true)
            }
            Err(err) => Err(err.to_string()),
        };
        futures::future::ready(result).boxed()
    }

    fn progress_begin(&self, _token: &str, title: &str, message: &str) -> BoxFuture<'static, ()> {
        eprintln!("{title}: {message}");
        futures::future::ready(()).boxed()
    }

    fn progress_report(&self, _token: &str, message: String) -> BoxFuture<'static, ()> {
        eprintln!("  {message}");
        futures::future::ready(()).boxed()
    }

    fn progress_end(&self, _token: &str, message: String) -> BoxFuture<'static, ()> {
        eprintln!("  {message}");
        futures::future::ready(()).boxed()
    }

    fn show_message(&self, level: MessageLevel, text: String) -> BoxFuture<'static, ()> {
        let _ = level;
        eprintln!("{text}");
        futures::future::ready(()).boxed()
    }

    fn show_markdown(&self, _title: &str, markdown: String) -> BoxFuture<'static, ()> {
        println!("{markdown}");
        futures::future::ready(()).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_one_based() {
        assert_eq!(
            CliRange::parse("2:1-3:5").unwrap(),
            CliRange {
                start: (1, 0),
                end: (2, 4)
            }
        );
        assert!(CliRange::parse("0:1-1:1").is_err());
        assert!(CliRange::parse("nonsense").is_err());
    }

    /// `--range` columns count characters: on a multi-byte file, every 1-based column of every
    /// line (and columns past the end) lands on a character boundary, at that character.
    #[test]
    fn character_columns_on_multi_byte_lines() {
        let text = "    // Ñandú es un ave\r\n// TODO🎉 e\u{301}\u{200D}中\nlast";
        let document = Document::new(text, 0, "rust");
        let mut line_start = 0;
        for (index, line) in text.split_inclusive('\n').enumerate() {
            let content = line.trim_end_matches(['\r', '\n']);
            for column in 1..=content.chars().count() + 3 {
                let spec = format!("{}:{column}-{}:{column}", index + 1, index + 1);
                let range = CliRange::parse(&spec).unwrap().to_range();
                let bytes = document.byte_range(range, PositionEncoding::Utf32);
                let expected = line_start
                    + content
                        .char_indices()
                        .nth(column - 1)
                        .map_or(content.len(), |(at, _)| at);
                assert_eq!(bytes, expected..expected, "{spec}");
            }
            line_start += line.len();
        }
    }
}
