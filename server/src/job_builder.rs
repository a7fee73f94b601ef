//! One job builder for every way an inline job starts: an LSP command (`baton.edit`, a code
//! action, …) and `baton edit` on the command line.
//!
//! Both used to assemble their job by hand and had drifted apart (the command line sent the
//! rewrite prompt for `--action explain`). Here, once: the secret check (`context.never_send`),
//! the target plan, the tier the action runs on (`actions.<name>.tier`) and so the model, and
//! the prompt's inputs. The callers only add what is theirs: the LSP path a repo map from the
//! index, the command line its terminal frontend.

use std::ops::Range;
use std::path::Path;

use edit::prompt::Diagnostic;
use model::ModelSettings;

use crate::config::{Resolved, Tier};
use crate::error::Error;
use crate::jobs::EditJob;
use crate::session::DocumentSnapshot;
use crate::targets::{self, Action, TargetRequest};

/// What was asked for, in byte offsets into the snapshot's document.
pub struct JobRequest {
    pub action: Action,
    pub range: Option<Range<usize>>,
    pub instruction: Option<String>,
    pub diagnostics: Vec<(Range<usize>, Diagnostic)>,
}

/// A job ready to run, and the model it runs on. Its `job.token` is empty until the caller
/// registers the job (only once the model is known to be usable).
pub struct PlannedJob {
    pub job: EditJob,
    pub tier: Tier,
    pub model: ModelSettings,
}

/// Checks, plans and configures a job. Errors are messages for the user.
pub fn build(
    request: JobRequest,
    snapshot: &DocumentSnapshot,
    root: Option<&Path>,
    resolved: &Resolved,
) -> Result<PlannedJob, Error> {
    let document = &snapshot.document;
    if let Some(path) = &snapshot.path {
        resolved
            .never_send
            .check(path, root)
            .map_err(Error::NeverSend)?;
    }
    let plan = targets::plan(
        document,
        snapshot.tree.as_ref(),
        &TargetRequest {
            action: request.action,
            range: request.range,
            instruction: request.instruction,
            diagnostics: request.diagnostics,
        },
    )?;
    let tier = resolved.config.actions.get(request.action).tier;
    let model = resolved.config.models.tier(tier).settings();
    let path_label = snapshot.path_label(root);
    let language = crate::session::language_of(document, snapshot.path.as_deref())
        .map(|language| language.name().to_string())
        .unwrap_or_else(|| document.language_id().to_string());
    Ok(PlannedJob {
        job: EditJob {
            uri: snapshot.uri.clone(),
            path_label,
            language,
            plan,
            repo_map: None,
            max_context_tokens: resolved.config.context.max_tokens,
            settings: resolved.config.edit.clone(),
            token: String::new(),
        },
        tier,
        model,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{Inputs, resolve};
    use crate::session::DocumentUri;
    use text::{Document, PositionEncoding};

    fn snapshot(path: &str, text: &str, language_id: &str) -> DocumentSnapshot {
        DocumentSnapshot {
            uri: DocumentUri::new(format!("file:///repo/{path}")),
            document: Document::new(text, 1, language_id),
            tree: None,
            path: Some(PathBuf::from("/repo").join(path)),
            encoding: PositionEncoding::Utf16,
        }
    }

    fn resolved(editor: serde_json::Value) -> Resolved {
        resolve(&Inputs {
            editor: Some(editor),
            ..Inputs::default()
        })
    }

    fn request(action: Action) -> JobRequest {
        JobRequest {
            action,
            range: None,
            instruction: Some("make it shorter".into()),
            diagnostics: Vec::new(),
        }
    }

    const TEXT: &str = "fn one() -> i32 {\n    1\n}\n";

    #[test]
    fn each_action_runs_on_its_configured_tier() {
        let snapshot = snapshot("src/lib.rs", TEXT, "rust");
        let resolved = resolved(serde_json::json!({
            "models": { "deep": { "model": "the-deep-one" } },
            "actions": { "explain": { "tier": "deep" } },
        }));
        for action in Action::ALL {
            let planned = build(
                request(action),
                &snapshot,
                Some(Path::new("/repo")),
                &resolved,
            )
            .unwrap();
            let (tier, model) = if action == Action::Explain {
                (Tier::Deep, "the-deep-one")
            } else {
                (Tier::Fast, "gpt-5.3-codex-spark")
            };
            assert_eq!((planned.tier, planned.model.model.as_str()), (tier, model));
            assert_eq!(planned.job.path_label, "src/lib.rs");
            assert_eq!(planned.job.language, "rust");
            assert_eq!(planned.job.plan.action, action);
        }
    }

    #[test]
    fn a_never_send_file_is_refused_before_anything_else() {
        let refused = build(
            request(Action::Explain),
            &snapshot(".env", "SECRET=1\n", "plaintext"),
            Some(Path::new("/repo")),
            &resolved(serde_json::json!({})),
        );
        let error = refused.err().expect("refused");
        assert!(
            matches!(&error, Error::NeverSend(message) if message.contains(".env")),
            "{error:?}"
        );
    }

    #[test]
    fn explain_jobs_send_the_explain_prompt() {
        let mut explain = request(Action::Explain);
        explain.instruction = None;
        let planned = build(
            explain,
            &snapshot("src/lib.rs", TEXT, "rust"),
            Some(Path::new("/repo")),
            &resolved(serde_json::json!({})),
        )
        .unwrap();
        let prompt = planned.job.model_request();
        assert!(prompt.system.contains("Markdown"), "{}", prompt.system);
        assert!(prompt.user.contains("fn one()"), "{}", prompt.user);
    }
}
