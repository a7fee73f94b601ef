//! Checks the protocol subset baton uses against the schema of the installed codex.
//!
//! [`USED`] and [`METHODS`] list every definition, field, enum value and method that
//! `protocol.rs` reads or writes. [`extract`] pulls exactly those out of the bundle
//! `codex app-server generate-json-schema --experimental` writes
//! (`codex_app_server_protocol.schemas.json`; `--experimental` because plan mode's
//! `collaborationMode` is left out of the stable schema);
//! `schema_subset.json` is that extract for [`CODEX_VERSION_CHECKED`]. The test regenerates the
//! schema from the installed codex and requires every committed entry to still be there with a
//! compatible type: the same structure (descriptions ignored), enum values and union variants
//! only added, required fields still required.
//!
//! Refresh after checking a new codex: `BATON_WRITE_SCHEMA_SUBSET=1 cargo test -p harness
//! schema_subset` rewrites `schema_subset.json`; then bump [`CODEX_VERSION_CHECKED`].

use serde_json::{Map, Value, json};

use super::protocol::{self as p, CODEX_VERSION_CHECKED, SCHEMA_SUBSET};

/// Definitions baton uses: (name, what, names). `what` is `""` for an object's properties, a
/// variant tag (the `type` value) for one variant of a union, or `"enum"` for enum values.
const USED: &[(&str, &str, &[&str])] = &[
    ("InitializeParams", "", &["clientInfo", "capabilities"]),
    ("ClientInfo", "", &["name", "version"]),
    ("InitializeCapabilities", "", &["experimentalApi"]),
    (
        "ThreadStartParams",
        "",
        &["cwd", "approvalPolicy", "sandbox", "ephemeral"],
    ),
    ("ThreadStartResponse", "", &["thread", "model"]),
    ("Thread", "", &["id"]),
    (
        "AskForApproval",
        "enum",
        &["untrusted", "on-request", "never"],
    ),
    ("SandboxMode", "enum", &["read-only", "workspace-write"]),
    ("SandboxPolicy", "readOnly", &["type", "networkAccess"]),
    (
        "SandboxPolicy",
        "workspaceWrite",
        &[
            "type",
            "writableRoots",
            "networkAccess",
            "excludeSlashTmp",
            "excludeTmpdirEnvVar",
        ],
    ),
    ("UserInput", "text", &["type", "text"]),
    (
        "TurnStartParams",
        "",
        &["threadId", "input", "sandboxPolicy", "collaborationMode"],
    ),
    // Plan mode (experimental).
    ("CollaborationMode", "", &["mode", "settings"]),
    ("ModeKind", "enum", &["plan"]),
    ("Settings", "", &["model"]),
    (
        "PlanDeltaNotification",
        "",
        &["threadId", "itemId", "delta"],
    ),
    ("ThreadItem", "plan", &["type", "id", "text"]),
    (
        "ToolRequestUserInputParams",
        "",
        &["threadId", "itemId", "questions"],
    ),
    (
        "ToolRequestUserInputQuestion",
        "",
        &["id", "header", "question", "options"],
    ),
    ("ToolRequestUserInputOption", "", &["label", "description"]),
    ("ToolRequestUserInputResponse", "", &["answers"]),
    ("ToolRequestUserInputAnswer", "", &["answers"]),
    ("TurnStartResponse", "", &["turn"]),
    ("TurnInterruptParams", "", &["threadId", "turnId"]),
    ("Turn", "", &["id", "status", "error"]),
    (
        "TurnStatus",
        "enum",
        &["completed", "interrupted", "failed", "inProgress"],
    ),
    ("TurnError", "", &["message"]),
    ("TurnStartedNotification", "", &["threadId", "turn"]),
    ("TurnCompletedNotification", "", &["threadId", "turn"]),
    ("TurnDiffUpdatedNotification", "", &["threadId", "diff"]),
    ("TurnPlanUpdatedNotification", "", &["threadId", "plan"]),
    ("TurnPlanStep", "", &["step", "status"]),
    (
        "TurnPlanStepStatus",
        "enum",
        &["pending", "inProgress", "completed"],
    ),
    (
        "AgentMessageDeltaNotification",
        "",
        &["threadId", "itemId", "delta"],
    ),
    ("ErrorNotification", "", &["error", "willRetry", "threadId"]),
    ("ItemStartedNotification", "", &["threadId", "item"]),
    ("ItemCompletedNotification", "", &["threadId", "item"]),
    ("ThreadItem", "agentMessage", &["type", "id", "text"]),
    (
        "ThreadItem",
        "fileChange",
        &["type", "id", "changes", "status"],
    ),
    (
        "ThreadItem",
        "commandExecution",
        &[
            "type",
            "id",
            "command",
            "status",
            "exitCode",
            "aggregatedOutput",
        ],
    ),
    (
        "PatchApplyStatus",
        "enum",
        &["inProgress", "completed", "failed", "declined"],
    ),
    (
        "CommandExecutionStatus",
        "enum",
        &["inProgress", "completed", "failed", "declined"],
    ),
    ("FileUpdateChange", "", &["path", "kind", "diff"]),
    ("PatchChangeKind", "add", &["type"]),
    ("PatchChangeKind", "delete", &["type"]),
    ("PatchChangeKind", "update", &["type", "move_path"]),
    (
        "FileChangeRequestApprovalParams",
        "",
        &["threadId", "itemId", "reason", "grantRoot"],
    ),
    (
        "CommandExecutionRequestApprovalParams",
        "",
        &["threadId", "itemId", "command", "cwd", "reason"],
    ),
    ("ServerRequestResolvedNotification", "", &["requestId"]),
    ("FileChangeRequestApprovalResponse", "", &["decision"]),
    ("CommandExecutionRequestApprovalResponse", "", &["decision"]),
    (
        "FileChangeApprovalDecision",
        "enum",
        &["accept", "acceptForSession", "decline"],
    ),
    (
        "CommandExecutionApprovalDecision",
        "enum",
        &["accept", "acceptForSession", "decline"],
    ),
];

/// Methods baton sends or handles: (the union naming them, method).
const METHODS: &[(&str, &str)] = &[
    ("ClientRequest", p::INITIALIZE),
    ("ClientRequest", p::THREAD_START),
    ("ClientRequest", p::TURN_START),
    ("ClientRequest", p::TURN_INTERRUPT),
    ("ClientNotification", p::INITIALIZED),
    ("ServerNotification", p::ITEM_STARTED),
    ("ServerNotification", p::ITEM_COMPLETED),
    ("ServerNotification", p::AGENT_MESSAGE_DELTA),
    ("ServerNotification", p::TURN_STARTED),
    ("ServerNotification", p::TURN_COMPLETED),
    ("ServerNotification", p::TURN_DIFF_UPDATED),
    ("ServerNotification", p::TURN_PLAN_UPDATED),
    ("ServerNotification", p::ERROR),
    ("ServerNotification", p::SERVER_REQUEST_RESOLVED),
    ("ServerNotification", p::PLAN_DELTA),
    ("ServerRequest", p::FILE_CHANGE_APPROVAL),
    ("ServerRequest", p::COMMAND_APPROVAL),
    ("ServerRequest", p::REQUEST_USER_INPUT),
];

/// A definition from the bundle: top level or under `v2`.
fn definition<'a>(bundle: &'a Value, name: &str) -> Option<&'a Value> {
    let defs = bundle.get("definitions")?;
    defs.get(name)
        .or_else(|| defs.get("v2").and_then(|v2| v2.get(name)))
}

/// The alternatives of a union (`oneOf` / `anyOf`), or the schema itself.
fn alternatives(schema: &Value) -> Vec<&Value> {
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alts)) = schema.get(key) {
            return alts.iter().collect();
        }
    }
    vec![schema]
}

/// Every enum value a schema allows (plain `enum`, or a union of one-value enums).
fn enum_values(schema: &Value) -> Vec<String> {
    let mut values = Vec::new();
    for alt in alternatives(schema) {
        if let Some(Value::Array(vs)) = alt.get("enum") {
            values.extend(vs.iter().filter_map(Value::as_str).map(str::to_string));
        }
        if alt.get("oneOf").is_some() || alt.get("anyOf").is_some() {
            values.extend(enum_values(alt));
        }
    }
    values
}

/// A schema without prose, defaults and titles, and with `$ref`s cut to the definition name
/// (the bundle moves definitions between its top level and `v2`).
fn normalize(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                match k.as_str() {
                    "description" | "title" | "default" | "$schema" => {}
                    "$ref" => {
                        let name = v.as_str().and_then(|r| r.rsplit('/').next()).unwrap_or("");
                        out.insert(k.clone(), Value::String(name.to_string()));
                    }
                    _ => {
                        out.insert(k.clone(), normalize(v));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// The used subset of `bundle`; problems when something used is missing.
pub(super) fn extract(bundle: &Value) -> Result<Value, Vec<String>> {
    let mut problems = Vec::new();
    let mut methods = Map::new();
    for (union, method) in METHODS {
        let found = definition(bundle, union).and_then(|u| {
            alternatives(u).into_iter().find(|alt| {
                alt.pointer("/properties/method/enum/0")
                    .and_then(Value::as_str)
                    == Some(method)
            })
        });
        match found {
            Some(alt) => {
                let params = alt
                    .pointer("/properties/params")
                    .map(normalize)
                    .unwrap_or(Value::Null);
                methods.insert(format!("{union} {method}"), json!({ "params": params }));
            }
            None => problems.push(format!("{union} has no method `{method}`")),
        }
    }
    let mut definitions = Map::new();
    for (name, what, names) in USED {
        let key = if what.is_empty() {
            name.to_string()
        } else {
            format!("{name}#{what}")
        };
        let Some(def) = definition(bundle, name) else {
            problems.push(format!("no definition `{name}`"));
            continue;
        };
        if *what == "enum" {
            let have = enum_values(def);
            let missing: Vec<&&str> = names
                .iter()
                .filter(|v| !have.iter().any(|h| h == *v))
                .collect();
            if !missing.is_empty() {
                problems.push(format!("`{name}` lacks the values {missing:?}"));
            }
            definitions.insert(key, json!({ "enum": names }));
            continue;
        }
        let object = if what.is_empty() {
            Some(def)
        } else {
            alternatives(def).into_iter().find(|alt| {
                alt.pointer("/properties/type/enum/0")
                    .and_then(Value::as_str)
                    == Some(what)
            })
        };
        let Some(object) = object else {
            problems.push(format!("`{name}` has no variant `{what}`"));
            continue;
        };
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut properties = Map::new();
        for field in names.iter() {
            match object.pointer(&format!("/properties/{field}")) {
                Some(schema) => {
                    properties.insert(field.to_string(), normalize(schema));
                }
                None => problems.push(format!("`{key}` has no field `{field}`")),
            }
        }
        let used_required: Vec<&str> = names
            .iter()
            .copied()
            .filter(|f| required.contains(f))
            .collect();
        definitions.insert(
            key,
            json!({ "properties": properties, "required": used_required }),
        );
    }
    if problems.is_empty() {
        Ok(json!({
            "codexVersion": CODEX_VERSION_CHECKED,
            "methods": methods,
            "definitions": definitions,
        }))
    } else {
        Err(problems)
    }
}

/// Whether `new` still accepts and produces what `old` described: the same structure, with
/// enum values and union alternatives only added.
fn compatible(old: &Value, new: &Value) -> bool {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => o.iter().all(|(k, ov)| {
            let Some(nv) = n.get(k) else { return false };
            match (k.as_str(), ov, nv) {
                ("enum", Value::Array(os), Value::Array(ns)) => os.iter().all(|v| ns.contains(v)),
                ("oneOf" | "anyOf", Value::Array(os), Value::Array(ns)) => {
                    os.iter().all(|oa| ns.iter().any(|na| compatible(oa, na)))
                }
                // A nullable type that became required-only is fine to read, not to send:
                // keep it strict.
                _ => compatible(ov, nv),
            }
        }),
        (Value::Array(o), Value::Array(n)) => {
            o.len() == n.len() && o.iter().zip(n).all(|(a, b)| compatible(a, b))
        }
        _ => old == new,
    }
}

/// Problems with `installed` (an [`extract`] of the installed codex) against `committed`.
pub(super) fn check(committed: &Value, installed: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for section in ["methods", "definitions"] {
        let Some(entries) = committed.get(section).and_then(Value::as_object) else {
            problems.push(format!("the committed subset has no `{section}`"));
            continue;
        };
        for (key, old) in entries {
            let Some(new) = installed.pointer(&format!("/{section}/{}", key.replace('/', "~1")))
            else {
                problems.push(format!("{section}: `{key}` is gone"));
                continue;
            };
            let old_required = old.get("required").and_then(Value::as_array);
            let new_required = new.get("required").and_then(Value::as_array);
            if let (Some(o), Some(n)) = (old_required, new_required) {
                for field in o.iter().filter(|f| !n.contains(f)) {
                    problems.push(format!("{section}: `{key}`.{field} is no longer required"));
                }
            }
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("required");
                }
                v
            };
            if !compatible(&strip(old), &strip(new)) {
                problems.push(format!(
                    "{section}: `{key}` changed:\n  checked: {old}\n  installed: {new}"
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_subset_covers_everything_used() {
        let committed: Value = serde_json::from_str(SCHEMA_SUBSET).unwrap();
        assert_eq!(committed["codexVersion"], CODEX_VERSION_CHECKED);
        for (name, what, _) in USED {
            let key = if what.is_empty() {
                name.to_string()
            } else {
                format!("{name}#{what}")
            };
            assert!(committed["definitions"].get(&key).is_some(), "{key}");
        }
        for (union, method) in METHODS {
            assert!(
                committed["methods"]
                    .get(format!("{union} {method}"))
                    .is_some(),
                "{union} {method}"
            );
        }
    }

    #[test]
    fn compatibility_rules() {
        let old = json!({"enum": ["a", "b"], "type": "string"});
        assert!(compatible(
            &old,
            &json!({"enum": ["a", "b", "c"], "type": "string"})
        ));
        assert!(!compatible(&old, &json!({"enum": ["a"], "type": "string"})));
        assert!(!compatible(
            &json!({"type": "boolean"}),
            &json!({"type": "string"})
        ));
        assert!(compatible(
            &json!({"anyOf": [{"$ref": "X"}, {"type": "null"}]}),
            &json!({"anyOf": [{"$ref": "X"}, {"type": "null"}, {"type": "string"}]})
        ));
    }

    #[test]
    fn check_catches_breaking_changes() {
        let committed: Value = serde_json::from_str(SCHEMA_SUBSET).unwrap();
        assert!(check(&committed, &committed).is_empty());

        let mut installed = committed.clone();
        let defs = installed["definitions"].as_object_mut().unwrap();
        defs["SandboxPolicy#workspaceWrite"]["properties"]
            .as_object_mut()
            .unwrap()
            .remove("excludeSlashTmp");
        defs["TurnStatus#enum"]["enum"] = json!(["completed", "failed", "inProgress"]);
        defs["TurnError"]["properties"]["message"] = json!({"type": "integer"});
        defs["Turn"]["required"] = json!(["status"]);
        defs.remove("ThreadItem#fileChange");
        installed["methods"]
            .as_object_mut()
            .unwrap()
            .remove("ServerRequest item/fileChange/requestApproval");
        let problems = check(&committed, &installed).join("\n");
        for expected in [
            "SandboxPolicy#workspaceWrite` changed",
            "TurnStatus#enum` changed",
            "TurnError` changed",
            "`Turn`.\"id\" is no longer required",
            "ThreadItem#fileChange` is gone",
            "item/fileChange/requestApproval` is gone",
        ] {
            assert!(
                problems.contains(expected),
                "{expected} not in:\n{problems}"
            );
        }
    }

    #[test]
    fn schema_subset_matches_installed_codex() {
        // Skips (printing why) without codex, unless BATON_REQUIRE_CODEX=1.
        let Some(codex) = testkit::codex::require_codex() else {
            return;
        };
        let dir = std::env::temp_dir().join(format!("baton-codex-schema-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let output = std::process::Command::new(&codex)
            .args([
                "app-server",
                "generate-json-schema",
                "--experimental",
                "--out",
            ])
            .arg(&dir)
            .output()
            .expect("run codex");
        assert!(
            output.status.success(),
            "{} app-server generate-json-schema failed: {}",
            codex.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let version = std::process::Command::new(&codex)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let bundle_path = dir.join("codex_app_server_protocol.schemas.json");
        let bundle: Value =
            serde_json::from_str(&std::fs::read_to_string(&bundle_path).expect("read bundle"))
                .expect("parse bundle");
        let _ = std::fs::remove_dir_all(&dir);
        let installed = match extract(&bundle) {
            Ok(v) => v,
            Err(problems) => panic!(
                "{version} lacks parts of the protocol baton uses:\n{}",
                problems.join("\n")
            ),
        };
        if std::env::var("BATON_WRITE_SCHEMA_SUBSET").is_ok_and(|v| v == "1") {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/app_server/schema_subset.json"
            );
            let mut text = serde_json::to_string_pretty(&installed).unwrap();
            text.push('\n');
            std::fs::write(path, text).unwrap();
            println!("wrote {path} from {version}");
            return;
        }
        let committed: Value = serde_json::from_str(SCHEMA_SUBSET).unwrap();
        let problems = check(&committed, &installed);
        assert!(
            problems.is_empty(),
            "{version} is not compatible with the protocol subset checked against codex {CODEX_VERSION_CHECKED}:\n{}",
            problems.join("\n")
        );
        println!("{version}: every method and field baton uses is present and compatible");
    }
}
