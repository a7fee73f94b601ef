//! Fuzz target `fuzz_config`: configuration resolution from hostile sources.
//!
//! The workspace `baton.toml` comes from whatever repository the user opened, and the editor's
//! settings from whatever the user typed, so `resolve` must survive anything. Inputs: TOML-ish
//! text for the workspace and user files (sections and keys baton knows and does not, values of
//! every TOML type, broken syntax, `never_send` lists of good and bad patterns), and editor
//! JSON with arbitrary values at every key the schema knows. Properties:
//! - `resolve` never panics;
//! - every problem is either about a whole source (unreadable, not TOML, not an object) or names
//!   a dotted path that is really in that source, and no problem is reported twice;
//! - no source is ever dropped as a whole for its keys ("could not be used"): bad keys are
//!   reported one by one and the rest applies;
//! - whatever any source says, the built-in `never_send` patterns still refuse `.env` and
//!   `id_ed25519`.
//!
//! A few hundred cases per property in `cargo test`; `PROPTEST_CASES` raises that, and
//! `cargo xtask fuzz --target config` runs it for minutes with fresh seeds.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{Config, Inputs, resolve};

/// `PROPTEST_CASES` when set (the xtask's long runs), else the number a `cargo test` run can
/// afford. `ProptestConfig::with_cases` alone would ignore the variable.
fn fuzz_config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig::with_cases(cases)
}

const WORKSPACE_FILE: &str = "/repo/baton.toml";
const USER_FILE: &str = "/home/user/.config/baton/config.toml";

/// Every key path of the schema, from its defaults: `["models", "fast", "provider"]`, ...
fn schema_paths() -> Vec<Vec<String>> {
    fn walk(value: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if let Value::Object(object) = value {
            for (key, child) in object {
                path.push(key.clone());
                out.push(path.clone());
                walk(child, path, out);
                path.pop();
            }
        }
    }
    let mut out = Vec::new();
    let defaults = serde_json::to_value(Config::default()).expect("defaults serialize");
    walk(&defaults, &mut Vec::new(), &mut out);
    out
}

fn toml_key() -> impl Strategy<Value = String> {
    let known: Vec<String> = schema_paths()
        .into_iter()
        .flat_map(|path| [path.join("."), path.last().cloned().unwrap_or_default()])
        .collect();
    prop_oneof![
        6 => proptest::sample::select(known),
        1 => "[a-z_]{1,8}",
        1 => Just("\"quoted.key\"".to_string()),
        1 => Just("\"\"".to_string()),
        1 => Just("context.never_send".to_string()),
    ]
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("1"),
            Just("0"),
            Just("-1"),
            Just("4294967296"),
            Just("9223372036854775807"),
            Just("1.5"),
            Just("-0.0"),
            Just("inf"),
            Just("nan"),
            Just("true"),
            Just("false"),
            Just("\"\""),
            Just("\"openai\""),
            Just("\"anthropic\""),
            Just("\"openai-chat\""),
            Just("\"x\""),
            Just("'literal'"),
            Just("1979-05-27"),
            Just("[]"),
            Just("{}"),
            Just("[1, \"two\"]"),
            Just("{ a = 1 }"),
            Just("{ never_send = [] }"),
            Just("[\"*.rs\"]"),
            Just("[\"[\"]"),
            Just("[\"{a,b\"]"),
            Just("[\"**\", 1]"),
            Just("[\"\"]"),
            Just("[\"!.env\"]"),
            Just("\"é🦀\""),
        ]
        .prop_map(String::from),
        (0u64..u64::MAX).prop_map(|number| number.to_string()),
        "\"[^\"\\\\\n]{0,12}\"",
    ]
}

/// TOML-ish text: mostly valid lines about known keys, some broken ones.
fn toml_text() -> impl Strategy<Value = String> {
    let sections: Vec<String> = schema_paths()
        .into_iter()
        .filter(|path| path.len() < 3)
        .map(|path| path.join("."))
        .collect();
    let line = prop_oneof![
        2 => proptest::sample::select(sections).prop_map(|section| format!("[{section}]")),
        6 => (toml_key(), toml_value()).prop_map(|(key, value)| format!("{key} = {value}")),
        1 => prop_oneof![
            Just("[context]\nnever_send = []"), Just("[context]\nnever_send = [\"[\"]"),
            Just("[[context]]"), Just("= 1"), Just("key ="), Just("\"unterminated"),
            Just("[models"), Just("# never_send"), Just("[unknown]"), Just("[harness]"),
        ]
        .prop_map(String::from),
        1 => any::<String>(),
    ];
    proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("openai"),
            Just("anthropic"),
            Just("x"),
            Just(""),
            Just("*.rs"),
            Just("["),
        ]
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-z_]{1,6}", inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Editor settings: arbitrary values at known keys (and a few unknown ones), sometimes nested
/// under `baton` as some editors send them, sometimes not an object at all.
fn editor_settings() -> impl Strategy<Value = Option<Value>> {
    let paths = schema_paths();
    let entries = proptest::collection::vec((proptest::sample::select(paths), json_value()), 0..6);
    prop_oneof![
        1 => Just(None),
        1 => json_value().prop_map(Some),
        6 => (entries, any::<bool>()).prop_map(|(entries, nested)| {
            let mut settings = Value::Object(Map::new());
            for (path, value) in entries {
                let nested_value = path
                    .iter()
                    .rev()
                    .fold(value, |inner, key| serde_json::json!({ key.as_str(): inner }));
                super::merge(&mut settings, nested_value);
            }
            Some(if nested { serde_json::json!({ "baton": settings }) } else { settings })
        }),
    ]
}

/// Whether `dotted` names a key path of `value`; keys may contain dots themselves.
fn has_path(value: &Value, dotted: &str) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    object.iter().any(|(key, child)| {
        dotted == key
            || dotted
                .strip_prefix(key.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|rest| has_path(child, rest))
    })
}

/// The path a problem names, if it names one: "... has an error at `a.b` ...",
/// "...: ignored `a`: ..." or "...: ignored `a.b = 5`: ...".
fn named_path(problem: &str) -> Option<&str> {
    let start = problem
        .find("has an error at `")
        .map(|at| at + "has an error at `".len())
        .or_else(|| {
            problem
                .find(": ignored `")
                .map(|at| at + ": ignored `".len())
        })?;
    let rest = &problem[start..];
    let named = &rest[..rest.find('`')?];
    Some(named.split(" = ").next().unwrap_or(named))
}

fn check_problems(inputs: &Inputs) -> Result<(), TestCaseError> {
    let resolved = resolve(inputs);
    let source_value = |problem: &str| -> Option<Value> {
        let toml_text = |file: &Option<(PathBuf, Result<String, String>)>| {
            let (_, text) = file.as_ref()?;
            toml::from_str::<Value>(text.as_ref().ok()?).ok()
        };
        if problem.starts_with("workspace config") {
            toml_text(&inputs.workspace_file)
        } else if problem.starts_with("user config") {
            toml_text(&inputs.user_file)
        } else if problem.starts_with("editor settings") {
            let editor = inputs.editor.clone()?;
            match editor.get("baton") {
                Some(inner) if inner.is_object() => Some(inner.clone()),
                _ => Some(editor),
            }
        } else {
            None
        }
    };
    for (index, problem) in resolved.problems.iter().enumerate() {
        prop_assert!(
            !resolved.problems[..index].contains(problem),
            "reported twice: {problem}"
        );
        prop_assert!(
            !problem.contains("could not be used"),
            "a whole source dropped for its keys: {problem}\nall: {:#?}",
            resolved.problems
        );
        let whole_source = problem.contains("is not valid TOML")
            || problem.starts_with("could not read")
            || problem.contains("must be an object");
        if whole_source {
            continue;
        }
        let path = named_path(problem);
        prop_assert!(path.is_some(), "a problem without a path: {problem}");
        let path = path.unwrap_or_default();
        let source = source_value(problem);
        prop_assert!(
            source.as_ref().is_some_and(|source| has_path(source, path)),
            "`{path}` is not in its source: {problem}\nsource: {source:?}"
        );
    }
    for secret in [
        "/repo/.env",
        "/repo/.env.local",
        "/repo/keys/id_ed25519",
        "/home/user/.ssh/id_rsa",
    ] {
        prop_assert!(
            resolved
                .never_send
                .matches(Path::new(secret), Some(Path::new("/repo"))),
            "{secret} is no longer refused; problems: {:#?}",
            resolved.problems
        );
        prop_assert!(
            resolved
                .never_send
                .check(Path::new(secret), Some(Path::new("/repo")))
                .is_err()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(fuzz_config(300))]

    #[test]
    fn fuzz_config_hostile_files(workspace in toml_text(), user in proptest::option::of(toml_text())) {
        let inputs = Inputs {
            workspace_file: Some((WORKSPACE_FILE.into(), Ok(workspace))),
            user_file: user.map(|user| (USER_FILE.into(), Ok(user))),
            ..Inputs::default()
        };
        check_problems(&inputs)?;
    }

    #[test]
    fn fuzz_config_editor_values_at_known_keys(
        editor in editor_settings(),
        workspace in proptest::option::of(toml_text()),
    ) {
        let inputs = Inputs {
            workspace_file: workspace.map(|workspace| (WORKSPACE_FILE.into(), Ok(workspace))),
            editor,
            ..Inputs::default()
        };
        check_problems(&inputs)?;
    }
}
