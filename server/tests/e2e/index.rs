//! The workspace index over LSP: symbols, search, definitions, incremental and watched-file
//! updates, the on-disk cache, hostile files, and the repo map in prompts.

use serde_json::{Value, json};
use testkit::fake_model::Reply;
use testkit::lsp_client::ClientProfile;

use crate::support::{Harness, Options};

fn files() -> Vec<(&'static str, String)> {
    vec![
        ("src/config.rs", "pub struct Config {\n    pub name: String,\n}\n\npub fn load_config(path: &str) -> Config {\n    Config { name: path.to_string() }\n}\n".into()),
        ("src/tax.rs", "/// Tax owed on an amount.\npub fn compute_tax(amount: f64) -> f64 {\n    amount * 0.2\n}\n".into()),
        ("tools/loader.py", "class ConfigLoader:\n    def load_configuration(self):\n        return None\n".into()),
        ("web/app.ts", "export function renderApp(root: HTMLElement): void {}\n".into()),
    ]
}

async fn harness(profile: ClientProfile) -> Harness {
    Harness::with(Options {
        profile,
        workspace_files: files(),
        ..Options::default()
    })
    .await
}

async fn workspace_symbols(harness: &Harness, query: &str) -> Vec<Value> {
    harness
        .client
        .request("workspace/symbol", json!({ "query": query }))
        .await
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Watched-file notifications are handled off the message loop: poll until the answer shows.
async fn eventually_first_symbol(harness: &Harness, query: &str, expected: Option<&str>) {
    for _ in 0..200 {
        let found = names(&workspace_symbols(harness, query).await);
        if found.first().map(String::as_str) == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("workspace/symbol {query:?} never gave {expected:?}");
}

fn names(symbols: &[Value]) -> Vec<String> {
    symbols
        .iter()
        .map(|symbol| symbol["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn indexing_reports_progress_and_workspace_symbols_rank_exact_matches_first() {
    let harness = harness(ClientProfile::Neovim).await;
    let status = harness.indexed().await;
    assert_eq!(status["files"], 4, "{status}");
    let begin = &harness.client.state().progress["baton/index"][0];
    assert_eq!(begin.kind, "begin");

    let found = workspace_symbols(&harness, "load_config").await;
    assert_eq!(names(&found)[0], "load_config", "{found:#?}");
    assert!(names(&found).contains(&"load_configuration".to_string()));
    let location = &found[0]["location"];
    assert!(location["uri"].as_str().unwrap().ends_with("src/config.rs"));
    assert_eq!(
        location["range"]["start"],
        json!({ "line": 4, "character": 7 })
    );
    assert_eq!(
        location["range"]["end"],
        json!({ "line": 4, "character": 18 })
    );

    // Fuzzy: a subsequence finds camel-case names across languages.
    let fuzzy = names(&workspace_symbols(&harness, "cfgldr").await);
    assert!(fuzzy.contains(&"ConfigLoader".to_string()), "{fuzzy:?}");
    assert!(
        names(&workspace_symbols(&harness, "renderApp").await).contains(&"renderApp".to_string())
    );
    harness.finish().await;
}

#[tokio::test]
async fn document_symbols_are_nested() {
    let harness = harness(ClientProfile::Helix).await;
    let uri = harness
        .open("src/shapes.rs", "rust", "struct Circle { r: f64 }\n\nimpl Circle {\n    fn area(&self) -> f64 { self.r }\n    fn grow(&mut self) {}\n}\n")
        .await;
    let symbols = harness.document_symbols(&uri).await.unwrap();
    let symbols = symbols.as_array().unwrap();
    let implementation = symbols
        .iter()
        .find(|symbol| {
            symbol["children"]
                .as_array()
                .is_some_and(|children| children.len() == 2)
        })
        .unwrap_or_else(|| panic!("no impl with two methods in {symbols:#?}"));
    assert_eq!(
        names(implementation["children"].as_array().unwrap()),
        vec!["area", "grow"]
    );
    assert_eq!(
        implementation["children"][0]["selectionRange"]["start"],
        json!({ "line": 3, "character": 7 })
    );
    harness.finish().await;
}

#[tokio::test]
async fn definition_falls_back_to_the_index() {
    let harness = harness(ClientProfile::Neovim).await;
    harness.indexed().await;
    let uri = harness
        .open(
            "src/main.rs",
            "rust",
            "fn main() {\n    let c = load_config(\"x\");\n}\n",
        )
        .await;
    let result = harness
        .client
        .request(
            "textDocument/definition",
            json!({ "textDocument": { "uri": uri }, "position": { "line": 1, "character": 14 } }),
        )
        .await
        .unwrap();
    let locations = result.as_array().unwrap();
    assert_eq!(locations.len(), 1, "{result}");
    assert!(
        locations[0]["uri"]
            .as_str()
            .unwrap()
            .ends_with("src/config.rs")
    );
    assert_eq!(locations[0]["range"]["start"]["line"], 4);
    harness.finish().await;
}

#[tokio::test]
async fn open_buffers_update_symbols_as_the_user_types() {
    let harness = harness(ClientProfile::Zed).await;
    harness.indexed().await;
    // An unsaved buffer is the truth: its symbols count from didOpen on.
    let unsaved = harness.uri_of("src/unsaved.rs");
    harness
        .client
        .open(&unsaved, "rust", "pub fn only_in_the_buffer() {}\n")
        .await;
    assert_eq!(
        names(&workspace_symbols(&harness, "only_in_the_buffer").await)
            .first()
            .map(String::as_str),
        Some("only_in_the_buffer")
    );
    let uri = harness.uri_of("src/tax.rs");
    let text = files()[1].1.clone();
    harness.client.open(&uri, "rust", &text).await;
    let line = text.lines().count() as u32;
    harness
        .client
        .change(&uri, ((line, 0), (line, 0)), "\npub fn refund_tax() {}\n")
        .await;
    let found = names(&workspace_symbols(&harness, "refund_tax").await);
    assert_eq!(found.first().map(String::as_str), Some("refund_tax"));
    let outline = harness.document_symbols(&uri).await.unwrap();
    assert_eq!(
        names(outline.as_array().unwrap()),
        vec!["compute_tax", "refund_tax"]
    );
    // Renaming it away removes the old name.
    harness
        .client
        .change(&uri, ((line + 1, 7), (line + 1, 17)), "give_back")
        .await;
    assert!(
        !names(&workspace_symbols(&harness, "refund_tax").await)
            .contains(&"refund_tax".to_string())
    );
    harness.finish().await;
}

#[tokio::test]
async fn watched_file_changes_update_the_index() {
    let harness = harness(ClientProfile::Neovim).await;
    harness.indexed().await;
    let path = harness.root.join("src/fresh.rs");
    std::fs::write(&path, "pub fn brand_new_function() {}\n").unwrap();
    let uri = harness.uri_of("src/fresh.rs");
    harness.client.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": [{ "uri": uri, "type": 1 }] }),
    );
    eventually_first_symbol(&harness, "brand_new_function", Some("brand_new_function")).await;
    std::fs::remove_file(&path).unwrap();
    harness.client.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": [{ "uri": uri, "type": 3 }] }),
    );
    eventually_first_symbol(&harness, "brand_new_function", None).await;
    harness.finish().await;
}

#[tokio::test]
async fn a_restart_reads_only_what_changed_from_the_cache() {
    let first = harness(ClientProfile::Neovim).await;
    let status = first.indexed().await;
    assert_eq!(
        (status["parsed"].as_u64(), status["fromCache"].as_u64()),
        (Some(4), Some(0)),
        "{status}"
    );
    let home = first.home.clone();
    let root = first.root.clone();
    first.finish().await;

    let second = Harness::with(Options {
        home: Some(home.clone()),
        ..Options::default()
    })
    .await;
    let status = second.indexed().await;
    assert_eq!(
        (status["parsed"].as_u64(), status["fromCache"].as_u64()),
        (Some(0), Some(4)),
        "{status}"
    );
    second.finish().await;

    std::fs::write(
        root.join("src/tax.rs"),
        "pub fn compute_tax_twice(amount: f64) -> f64 {\n    amount * 0.4\n}\n",
    )
    .unwrap();
    let third = Harness::with(Options {
        home: Some(home),
        ..Options::default()
    })
    .await;
    let status = third.indexed().await;
    assert_eq!(
        (status["parsed"].as_u64(), status["fromCache"].as_u64()),
        (Some(1), Some(3)),
        "{status}"
    );
    assert_eq!(
        names(&workspace_symbols(&third, "compute_tax_twice").await)
            .first()
            .map(String::as_str),
        Some("compute_tax_twice")
    );
    third.finish().await;
}

#[tokio::test]
async fn hostile_files_are_skipped_with_a_reason() {
    let mut workspace = files();
    let mut binary = b"fn not_really() {}\n".to_vec();
    binary.extend([0u8, 159, 146, 150, 0, 0, 1]);
    workspace.push((
        "deep/nested.c",
        format!("int deep() {}{}\n", "{".repeat(5000), "}".repeat(5000)),
    ));
    workspace.push((
        "long/line.ts",
        format!("export const big = [{}];\n", "1,".repeat(400_000)),
    ));
    let harness = Harness::with(Options {
        workspace_files: workspace,
        // A 2 MB limit lets the 800 kB single line through and still stops the 50 MB file.
        settings: json!({ "index": { "max_file_bytes": 2_000_000 } }),
        ..Options::default()
    })
    .await;
    // Files appear after the server started: found by the watched-files path and a re-index.
    std::fs::write(harness.root.join("bin/blob.rs"), &binary).unwrap_or_else(|_| {
        std::fs::create_dir_all(harness.root.join("bin")).unwrap();
        std::fs::write(harness.root.join("bin/blob.rs"), &binary).unwrap();
    });
    std::fs::write(
        harness.root.join("bad_utf8.py"),
        [b'd', b'e', b'f', b' ', 0xff, 0xfe, b'(', b')', b':', b'\n'],
    )
    .unwrap();
    let huge = "function f() {}\n".repeat(50 * 1024 * 1024 / 16);
    std::fs::write(harness.root.join("huge.js"), huge).unwrap();
    harness.indexed().await;
    let names_of_skipped = |status: &Value| -> Vec<(String, String)> {
        status["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                (
                    entry["path"].as_str().unwrap().to_string(),
                    entry["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    for name in ["bin/blob.rs", "bad_utf8.py", "huge.js"] {
        let uri = harness.uri_of(name);
        harness.client.notify(
            "workspace/didChangeWatchedFiles",
            json!({ "changes": [{ "uri": uri, "type": 1 }] }),
        );
    }
    // The server keeps answering, and the files it could read are indexed.
    assert_eq!(
        names(&workspace_symbols(&harness, "deep").await)
            .first()
            .map(String::as_str),
        Some("deep")
    );
    assert!(names(&workspace_symbols(&harness, "big").await).contains(&"big".to_string()));
    assert!(workspace_symbols(&harness, "not_really").await.is_empty());
    // A fresh run over everything records why each hostile file was skipped.
    let restart = Harness::with(Options {
        home: Some(harness.home.clone()),
        settings: json!({ "index": { "max_file_bytes": 2_000_000 } }),
        ..Options::default()
    })
    .await;
    harness.finish().await;
    let status = restart.indexed().await;
    let skipped = names_of_skipped(&status);
    let reason = |name: &str| {
        skipped
            .iter()
            .find(|(path, _)| path.ends_with(name))
            .map(|(_, reason)| reason.clone())
            .unwrap_or_else(|| panic!("{name} not skipped: {skipped:?}"))
    };
    assert!(reason("blob.rs").contains("binary"), "{skipped:?}");
    assert!(reason("bad_utf8.py").contains("UTF-8"), "{skipped:?}");
    assert!(reason("huge.js").contains("larger than"), "{skipped:?}");
    restart.finish().await;
}

#[tokio::test]
async fn the_edit_prompt_carries_a_repo_map_of_other_files() {
    let mut workspace = files();
    workspace.push((".env", "pub fn leaked_secret_fn() {}\n".into()));
    workspace.push((
        "src/secrets/keys.rs",
        "pub fn private_key_material() {}\n".into(),
    ));
    let harness = Harness::with(Options {
        workspace_files: workspace,
        ..Options::default()
    })
    .await;
    harness.indexed().await;
    harness.fake.push(Reply::text(
        "fn total(amount: f64) -> f64 {\n    amount + compute_tax(amount)\n}",
    ));
    let uri = harness
        .open("src/invoice.rs", "rust", "// baton: add compute_tax to the amount\nfn total(amount: f64) -> f64 {\n    amount\n}\n")
        .await;
    assert_eq!(
        harness
            .run_titled_action(&uri, ((0, 0), (0, 0)), "compute_tax")
            .await,
        "done"
    );
    let body = harness.fake.requests()[0].body.to_string();
    assert!(body.contains("Repository map"), "{body}");
    assert!(
        body.contains("src/tax.rs"),
        "the file defining compute_tax is in the map: {body}"
    );
    assert!(
        body.contains("pub fn compute_tax(amount: f64) -> f64"),
        "{body}"
    );
    assert!(
        !body.contains("leaked_secret_fn") && !body.contains("private_key_material"),
        "never_send files stay out: {body}"
    );
    harness.finish().await;
}

/// A workspace that empties `never_send` cannot pull secrets into the repo map: the built-in
/// list and the user's own patterns still keep those files' symbols out of the prompt.
#[tokio::test]
async fn the_repo_map_leaves_out_never_send_files_even_when_the_workspace_empties_the_list() {
    let mut workspace = files();
    workspace.push(("baton.toml", "[context]\nnever_send = []\n".into()));
    workspace.push((
        "src/secrets/keys.rs",
        "pub fn private_key_material() -> f64 { compute_tax(1.0) }\n".into(),
    ));
    workspace.push((
        "src/billing_private.rs",
        "pub fn billing_private_rates() -> f64 { compute_tax(2.0) }\n".into(),
    ));
    let harness = Harness::with(Options {
        workspace_files: workspace,
        settings: json!({ "context": { "never_send": ["*_private.rs"] } }),
        ..Options::default()
    })
    .await;
    let status = harness.indexed().await;
    assert!(status["files"].as_u64().unwrap() >= 6, "{status}");
    harness.fake.push(Reply::text(
        "fn total(amount: f64) -> f64 {\n    amount + compute_tax(amount)\n}",
    ));
    let uri = harness
        .open("src/invoice.rs", "rust", "// baton: add compute_tax to the amount, like private_key_material and billing_private_rates\nfn total(amount: f64) -> f64 {\n    amount\n}\n")
        .await;
    assert_eq!(
        harness
            .run_titled_action(&uri, ((0, 0), (0, 0)), "compute_tax")
            .await,
        "done"
    );
    let body = harness.fake.requests()[0].body.to_string();
    assert!(body.contains("Repository map"), "{body}");
    assert!(body.contains("src/tax.rs"), "{body}");
    assert!(
        !body.contains("src/secrets/keys.rs") && !body.contains("billing_private.rs"),
        "never_send files stay out of the map: {body}"
    );
    harness.finish().await;
}

#[tokio::test]
async fn each_navigation_feature_can_be_switched_off() {
    let harness = Harness::with(Options {
        workspace_files: files(),
        settings: json!({ "features": { "document_symbols": false, "workspace_symbols": false, "definition": false } }),
        ..Options::default()
    })
    .await;
    let capabilities = &harness.initialize["capabilities"];
    for capability in [
        "documentSymbolProvider",
        "workspaceSymbolProvider",
        "definitionProvider",
    ] {
        assert!(
            capabilities.get(capability).is_none_or(Value::is_null),
            "{capability} still offered"
        );
    }
    harness.indexed().await;
    let uri = harness
        .open("src/main.rs", "rust", "fn main() { load_config(\"x\"); }\n")
        .await;
    let none = |result: Value| {
        assert!(
            result.is_null() || result.as_array().is_some_and(|a| a.is_empty()),
            "{result}"
        )
    };
    none(
        harness
            .client
            .request("workspace/symbol", json!({ "query": "load_config" }))
            .await
            .unwrap(),
    );
    none(harness.document_symbols(&uri).await.unwrap());
    none(harness.client.request("textDocument/definition", json!({ "textDocument": { "uri": uri }, "position": { "line": 0, "character": 14 } })).await.unwrap());
    harness.finish().await;
}

#[tokio::test]
async fn workspace_symbol_positions_follow_the_encoding_on_non_ascii_lines() {
    for (profile, character) in [(ClientProfile::Neovim, 20), (ClientProfile::Zed, 17)] {
        let harness = Harness::with(Options {
            profile,
            // "😀" is 4 bytes and 2 UTF-16 units; "é" is 2 bytes and 1 unit.
            workspace_files: vec![(
                "src/accents.rs",
                "/* é😀 */ pub fn after_accent() {}\n".into(),
            )],
            ..Options::default()
        })
        .await;
        harness.indexed().await;
        let found = workspace_symbols(&harness, "after_accent").await;
        let range = &found[0]["location"]["range"];
        assert_eq!(
            range["start"],
            json!({ "line": 0, "character": character }),
            "{profile:?}"
        );
        assert_eq!(range["end"]["character"], character + 12, "{profile:?}");
        harness.finish().await;
    }
}

/// A file of deeply nested modules gets an outline every client can parse: serde_json (Helix's
/// parser, and this client's) refuses JSON nested deeper than 128, so baton lists symbols below
/// its depth limit flat under the deepest level instead of losing them or the whole answer.
/// Found by the server-loop fuzz (StrictUtf32 seeds 134 and 149).
#[tokio::test]
async fn deeply_nested_symbols_stay_within_what_clients_can_parse() {
    let harness = Harness::start(ClientProfile::Helix).await;
    let depth = 100;
    let mut text = String::new();
    for level in 0..depth {
        text.push_str(&format!("mod m{level} {{\n"));
    }
    text.push_str(&"}\n".repeat(depth));
    let uri = harness.open("src/deep.rs", "rust", &text).await;
    let answer = harness
        .document_symbols(&uri)
        .await
        .expect("the answer parses");
    fn walk(
        symbols: &serde_json::Value,
        level: usize,
        deepest: &mut usize,
        names: &mut Vec<String>,
    ) {
        for symbol in symbols.as_array().into_iter().flatten() {
            *deepest = (*deepest).max(level);
            names.push(symbol["name"].as_str().unwrap_or_default().to_string());
            walk(&symbol["children"], level + 1, deepest, names);
        }
    }
    let (mut deepest, mut names) = (0, Vec::new());
    walk(&answer, 1, &mut deepest, &mut names);
    let expected: Vec<String> = (0..depth).map(|level| format!("m{level}")).collect();
    assert_eq!(names, expected, "every module, in document order");
    assert_eq!(deepest, 33, "32 nested levels, then the rest flat");
    harness.finish().await;
}
