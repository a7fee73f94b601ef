//! Next-edit suggestions: a change, a round on the fake model, `Hint` diagnostics at the places
//! to follow up (in the changed file and in files that use what changed, open or not), and code
//! actions that carry the edits, in the Neovim, Helix and Zed profiles.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::fake_model::{Fault, Reply};
use testkit::lsp_client::ClientProfile;

use crate::support::{Harness, Options, WAIT, find_action};

const AREA: &str =
    "fn area(w: u32, h: u32) -> u32 {\n    let double = w * 2;\n    double + w * h\n}\n";
const RENAMED: &str = "fn area(width: u32, h: u32) -> u32 {\n    let double = width * 2;\n    double + width * h\n}\n";
const REPLY: &str = "{\"edits\": [{\"line\": 2, \"old\": \"w * 2\", \"new\": \"width * 2\"}, {\"line\": 3, \"old\": \"w * h\", \"new\": \"width * h\"}]}";

async fn start(profile: ClientProfile, next_edit: bool) -> Harness {
    Harness::with(Options {
        profile,
        settings: json!({ "features": { "next_edit": next_edit, "next_edit_debounce_ms": 30 } }),
        ..Options::default()
    })
    .await
}

/// Waits until the document's latest diagnostics number `count`; returns them.
async fn diagnostics(harness: &Harness, uri: &str, count: usize) -> Vec<Value> {
    harness
        .client
        .wait_for(&format!("{count} diagnostics"), WAIT, |state| {
            let list = state.diagnostics.get(uri)?["diagnostics"]
                .as_array()?
                .clone();
            (list.len() == count).then_some(list)
        })
        .await
        .unwrap()
}

/// Polls the fake model (it has no change notification) until `ready` holds.
async fn until_fake(harness: &Harness, what: &str, ready: impl Fn(&Harness) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ready(harness) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn start_line_character(diagnostic: &Value) -> (u64, u64, u64) {
    let range = &diagnostic["range"];
    (
        range["start"]["line"].as_u64().unwrap(),
        range["start"]["character"].as_u64().unwrap(),
        range["end"]["character"].as_u64().unwrap(),
    )
}

/// Renames the parameter `w` on line 0 and waits for the two proposals.
async fn rename_and_wait(harness: &Harness) -> (String, Vec<Value>) {
    harness.fake.push(Reply::text(REPLY));
    let uri = harness.open("src/area.rs", "rust", AREA).await;
    harness.client.change(&uri, ((0, 8), (0, 9)), "width").await;
    let shown = diagnostics(harness, &uri, 2).await;
    (uri, shown)
}

async fn a_renamed_parameter_gets_its_other_uses_proposed(profile: ClientProfile) {
    let harness = start(profile, true).await;
    let (uri, shown) = rename_and_wait(&harness).await;
    for diagnostic in &shown {
        assert_eq!(diagnostic["severity"], 4, "{diagnostic}");
        assert_eq!(diagnostic["source"], "baton", "{diagnostic}");
    }
    // Over the `w` of each use, on the lines the model named.
    let ranges: Vec<_> = shown.iter().map(start_line_character).collect();
    assert_eq!(ranges, vec![(1, 17, 18), (2, 13, 14)]);
    // The prompt showed the model the rename and the file.
    let requests = harness.fake.requests();
    assert_eq!(requests.len(), 1);
    let body = requests[0].body.to_string();
    assert!(body.contains("+fn area(width: u32"), "{body}");
    assert!(body.contains("-fn area(w: u32"), "{body}");

    // The preferred action at the first use carries the edit; applied, it fixes that use.
    let actions = harness
        .code_actions(&uri, ((1, 17), (1, 17)), json!([]))
        .await;
    let preferred = find_action(&actions, "change `w` to `width`");
    assert_eq!(preferred["isPreferred"], true, "{preferred}");
    let answer = harness.client.apply_code_action_edit(&preferred["edit"]);
    assert_eq!(answer["applied"], true, "{answer}");
    assert_eq!(
        harness.client.text(&uri),
        "fn area(width: u32, h: u32) -> u32 {\n    let double = width * 2;\n    double + w * h\n}\n"
    );
    // The other proposal stays, where it was.
    let left = diagnostics(&harness, &uri, 1).await;
    assert_eq!(start_line_character(&left[0]), (2, 13, 14));
    let actions = harness
        .code_actions(&uri, ((2, 13), (2, 13)), json!([]))
        .await;
    let preferred = find_action(&actions, "change `w` to `width`");
    harness.client.apply_code_action_edit(&preferred["edit"]);
    assert_eq!(harness.client.text(&uri), RENAMED);
    diagnostics(&harness, &uri, 0).await;
    assert_eq!(harness.server_text(&uri).await.1, RENAMED);
    // Taking suggestions is not a change that needs another round.
    assert_eq!(harness.fake.requests().len(), 1);
    harness.finish().await;
}

#[tokio::test]
async fn neovim_a_renamed_parameter_gets_its_other_uses_proposed() {
    a_renamed_parameter_gets_its_other_uses_proposed(ClientProfile::Neovim).await;
}

#[tokio::test]
async fn helix_a_renamed_parameter_gets_its_other_uses_proposed() {
    a_renamed_parameter_gets_its_other_uses_proposed(ClientProfile::Helix).await;
}

#[tokio::test]
async fn zed_a_renamed_parameter_gets_its_other_uses_proposed() {
    a_renamed_parameter_gets_its_other_uses_proposed(ClientProfile::Zed).await;
}

async fn apply_all_applies_every_proposal(profile: ClientProfile) {
    let harness = start(profile, true).await;
    let (uri, _) = rename_and_wait(&harness).await;
    let actions = harness
        .code_actions(&uri, ((2, 13), (2, 14)), json!([]))
        .await;
    let all = find_action(&actions, "apply all 2 next edits");
    assert_eq!(all["diagnostics"].as_array().unwrap().len(), 2, "{all}");
    let version = harness.client.version(&uri);
    if let Some(changes) = all["edit"]["documentChanges"].as_array() {
        // Versioned against the document as the proposals were computed.
        assert_eq!(changes[0]["textDocument"]["version"], version, "{all}");
    }
    let answer = harness.client.apply_code_action_edit(&all["edit"]);
    assert_eq!(answer["applied"], true, "{answer}");
    assert_eq!(harness.client.text(&uri), RENAMED);
    diagnostics(&harness, &uri, 0).await;
    assert_eq!(harness.server_text(&uri).await.1, RENAMED);
    assert_eq!(harness.fake.requests().len(), 1);
    harness.finish().await;
}

#[tokio::test]
async fn neovim_apply_all_applies_every_proposal() {
    apply_all_applies_every_proposal(ClientProfile::Neovim).await;
}

#[tokio::test]
async fn helix_apply_all_applies_every_proposal() {
    apply_all_applies_every_proposal(ClientProfile::Helix).await;
}

#[tokio::test]
async fn typing_in_a_suggested_place_clears_that_suggestion() {
    let harness = start(ClientProfile::Neovim, true).await;
    let (uri, _) = rename_and_wait(&harness).await;
    // The user fixes the second use by hand, differently from the proposal.
    harness
        .client
        .change(&uri, ((2, 13), (2, 14)), "wide")
        .await;
    let left = diagnostics(&harness, &uri, 1).await;
    assert_eq!(start_line_character(&left[0]), (1, 17, 18));
    // The code actions there are gone; the first one's still applies to the current text.
    let there = harness
        .code_actions(&uri, ((2, 13), (2, 13)), json!([]))
        .await;
    assert!(
        there.iter().all(
            |action| !action["title"].as_str().unwrap().contains("next edit")
                && !action["title"].as_str().unwrap().contains("change `w`")
        ),
        "{there:#?}"
    );
    let actions = harness
        .code_actions(&uri, ((1, 17), (1, 17)), json!([]))
        .await;
    let preferred = find_action(&actions, "change `w` to `width`");
    let answer = harness.client.apply_code_action_edit(&preferred["edit"]);
    assert_eq!(answer["applied"], true, "{answer}");
    assert_eq!(
        harness.client.text(&uri),
        "fn area(width: u32, h: u32) -> u32 {\n    let double = width * 2;\n    double + wide * h\n}\n"
    );
    harness.finish().await;
}

#[tokio::test]
async fn next_edit_off_sends_no_model_request() {
    let harness = start(ClientProfile::Neovim, false).await;
    harness.fake.push(Reply::text(REPLY));
    let uri = harness.open("src/area.rs", "rust", AREA).await;
    harness.client.change(&uri, ((0, 8), (0, 9)), "width").await;
    // A generous wait, many times the debounce: the assertion is that nothing came at all.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(harness.server_text(&uri).await.1, harness.client.text(&uri));
    assert!(harness.fake.requests().is_empty());
    assert!(!harness.client.state().diagnostics.contains_key(&uri));
    harness.finish().await;
}

#[tokio::test]
async fn a_never_send_file_gets_no_model_request() {
    let harness = start(ClientProfile::Neovim, true).await;
    harness.fake.push(Reply::text(REPLY));
    let uri = harness.open(".env", "sh", "KEY=one\nOTHER=one\n").await;
    harness.client.change(&uri, ((0, 4), (0, 7)), "two").await;
    // A generous wait, many times the debounce: the assertion is that nothing came at all.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(harness.fake.requests().is_empty());
    assert!(
        harness.log_lines_with("no next edits").contains("never"),
        "{}",
        harness.log_lines_with("next")
    );
    harness.finish().await;
}

#[tokio::test]
async fn a_change_during_the_stream_aborts_it_and_the_next_round_answers() {
    let harness = start(ClientProfile::Helix, true).await;
    // The first reply starts and then stalls, as a slow model would.
    harness
        .fake
        .push(Reply::text(REPLY).fault(Fault::StallAfter(3)));
    // The second round sees the comment the user added: every line moved down by one.
    harness.fake.push(Reply::text(
        "{\"edits\": [{\"line\": 3, \"old\": \"w * 2\", \"new\": \"width * 2\"}, {\"line\": 4, \"old\": \"w * h\", \"new\": \"width * h\"}]}",
    ));
    let uri = harness.open("src/area.rs", "rust", AREA).await;
    harness.client.change(&uri, ((0, 8), (0, 9)), "width").await;
    until_fake(&harness, "the first reply to start", |harness| {
        harness
            .fake
            .requests()
            .first()
            .is_some_and(|request| request.tokens_sent > 0)
    })
    .await;
    harness
        .client
        .change(&uri, ((0, 0), (0, 0)), "// area\n")
        .await;
    until_fake(&harness, "the first stream to be dropped", |harness| {
        harness.fake.requests()[0].aborted
    })
    .await;
    let shown = diagnostics(&harness, &uri, 2).await;
    let ranges: Vec<_> = shown.iter().map(start_line_character).collect();
    assert_eq!(ranges, vec![(2, 17, 18), (3, 13, 14)]);
    let requests = harness.fake.requests();
    assert_eq!(requests.len(), 2);
    // The second round showed both changes since the first round started.
    assert!(requests[1].body.to_string().contains("+// area"));
    harness.finish().await;
}

#[tokio::test]
async fn a_malformed_reply_gives_no_diagnostics() {
    let harness = start(ClientProfile::Neovim, true).await;
    harness
        .fake
        .push(Reply::text("{\"edits\": [{\"line\": \"two\", \"old\""));
    harness.fake.push(Reply::text(REPLY));
    let uri = harness.open("src/area.rs", "rust", AREA).await;
    harness.client.change(&uri, ((0, 8), (0, 9)), "width").await;
    until_fake(&harness, "the malformed reply to be read", |harness| {
        harness
            .log_lines_with("next-edit reply")
            .contains("proposals=0")
    })
    .await;
    assert!(!harness.client.state().diagnostics.contains_key(&uri));
    // The server lives on: another change gets a proper round.
    harness
        .client
        .change(&uri, ((0, 20), (0, 21)), "height")
        .await;
    let shown = diagnostics(&harness, &uri, 2).await;
    assert_eq!(shown.len(), 2);
    harness.finish().await;
}

#[tokio::test]
async fn uses_in_other_files_go_into_the_prompt_with_their_paths_and_lines() {
    let harness = Harness::with(Options {
        settings: json!({ "features": { "next_edit": true, "next_edit_debounce_ms": 30 } }),
        workspace_files: vec![(
            "src/main.rs",
            "fn main() {\n    let size = area(2, 3);\n    drop(size);\n}\n".to_string(),
        )],
        ..Options::default()
    })
    .await;
    harness.indexed().await;
    harness.fake.push(Reply::text("{\"edits\": []}"));
    let uri = harness.open("src/area.rs", "rust", AREA).await;
    // Renaming the function: its call in main.rs is where a follow-up is needed.
    harness
        .client
        .change(&uri, ((0, 3), (0, 7)), "surface")
        .await;
    until_fake(&harness, "the round's request", |harness| {
        harness.fake.requests().len() == 1
    })
    .await;
    let body = harness.fake.requests()[0].body.to_string();
    assert!(body.contains("File: src/main.rs"), "{body}");
    assert!(body.contains("    2|     let size = area(2, 3);"), "{body}");
    harness.finish().await;
}

// Proposals in other files: `area` renamed to `surface` in a.rs, which b.rs (not open) and
// c.rs (open, with a line the user has not saved) call.

const A: &str = "pub fn area(w: u32, h: u32) -> u32 {\n    w * h\n}\n\npub fn square(side: u32) -> u32 {\n    area(side, side)\n}\n";
const A_DONE: &str = "pub fn surface(w: u32, h: u32) -> u32 {\n    w * h\n}\n\npub fn square(side: u32) -> u32 {\n    surface(side, side)\n}\n";
const B: &str = "use crate::a::area;\n\npub fn floor() -> u32 {\n    area(3, 4)\n}\n";
const B_DONE: &str = "use crate::a::surface;\n\npub fn floor() -> u32 {\n    surface(3, 4)\n}\n";
const C_DISK: &str = "pub fn wall() -> u32 {\n    crate::a::area(2, 5)\n}\n";
/// c.rs as the user has it: a first line that is not saved, so its lines differ from the disk.
const C_BUFFER: &str = "// unsaved note\npub fn wall() -> u32 {\n    crate::a::area(2, 5)\n}\n";
const C_DONE: &str = "// unsaved note\npub fn wall() -> u32 {\n    crate::a::surface(2, 5)\n}\n";
const SECRET: &str = "pub fn key() -> u32 {\n    crate::a::area(1, 1)\n}\n";
/// The model's answer: one edit in a.rs, two in b.rs, one in c.rs (numbered as the buffer is),
/// and two that must be dropped: a file outside the workspace and a never_send file.
const ACROSS: &str = "{\"edits\": [\
    {\"line\": 6, \"old\": \"area(side\", \"new\": \"surface(side\"},\
    {\"file\": \"src/b.rs\", \"line\": 1, \"old\": \"a::area;\", \"new\": \"a::surface;\"},\
    {\"file\": \"src/b.rs\", \"line\": 4, \"old\": \"area(3\", \"new\": \"surface(3\"},\
    {\"file\": \"src/c.rs\", \"line\": 3, \"old\": \"a::area(\", \"new\": \"a::surface(\"},\
    {\"file\": \"../outside.rs\", \"line\": 1, \"old\": \"area\", \"new\": \"surface\"},\
    {\"file\": \"src/secrets/keys.rs\", \"line\": 2, \"old\": \"area(\", \"new\": \"surface(\"}]}";

struct Across {
    harness: Harness,
    a: String,
    b: String,
    c: String,
}

/// Opens a.rs and c.rs (with unsaved text), renames `area`, and waits for the proposals in
/// all three files.
async fn rename_across_files(profile: ClientProfile) -> Across {
    let harness = Harness::with(Options {
        profile,
        settings: json!({ "features": { "next_edit": true, "next_edit_debounce_ms": 30 } }),
        workspace_files: vec![
            ("src/b.rs", B.to_string()),
            ("src/c.rs", C_DISK.to_string()),
            ("src/secrets/keys.rs", SECRET.to_string()),
        ],
        ..Options::default()
    })
    .await;
    harness.indexed().await;
    // What `../outside.rs` names from the workspace: a real file, which must stay untouched.
    std::fs::write(harness.root.parent().unwrap().join("outside.rs"), "area\n").unwrap();
    harness.fake.push(Reply::text(ACROSS));
    let a = harness.open("src/a.rs", "rust", A).await;
    let c = harness.uri_of("src/c.rs");
    harness.client.open(&c, "rust", C_BUFFER).await;
    let b = harness.uri_of("src/b.rs");
    harness
        .client
        .change(&a, ((0, 7), (0, 11)), "surface")
        .await;
    let in_b = diagnostics(&harness, &b, 2).await;
    let ranges: Vec<_> = in_b.iter().map(start_line_character).collect();
    assert_eq!(ranges, vec![(0, 14, 18), (3, 4, 8)]);
    let in_c = diagnostics(&harness, &c, 1).await;
    // Where the call is in the buffer, one line below where it is on disk.
    assert_eq!(start_line_character(&in_c[0]), (2, 14, 18));
    let in_a = diagnostics(&harness, &a, 1).await;
    assert_eq!(start_line_character(&in_a[0]), (5, 4, 8));
    for diagnostic in in_a.iter().chain(&in_b).chain(&in_c) {
        assert_eq!(diagnostic["severity"], 4, "{diagnostic}");
        assert_eq!(diagnostic["source"], "baton", "{diagnostic}");
    }
    Across { harness, a, b, c }
}

/// The proposals the model named outside the workspace or in a never_send file got nowhere,
/// and the prompt offered the other files as the user has them.
fn check_prompt_and_drops(across: &Across) {
    let harness = &across.harness;
    let state = harness.client.state();
    for uri in [
        harness.uri_of("src/secrets/keys.rs"),
        testkit::lsp_client::file_uri(&harness.root.parent().unwrap().join("outside.rs")),
    ] {
        assert!(!state.diagnostics.contains_key(&uri), "{uri}");
    }
    // Only the three files got hints.
    assert_eq!(state.diagnostics.len(), 3, "{:#?}", state.diagnostics);
    let body = harness.fake.requests()[0].body.to_string();
    assert!(body.contains("File: src/b.rs"), "{body}");
    assert!(
        body.contains("    3|     crate::a::area(2, 5)"),
        "c.rs's line as in the buffer: {body}"
    );
    assert!(!body.contains("secrets"), "{body}");
}

async fn a_quick_fix_in_an_open_file_applies_a_versioned_edit(profile: ClientProfile) {
    let across = rename_across_files(profile).await;
    check_prompt_and_drops(&across);
    let Across { harness, a, c, .. } = &across;
    let actions = harness.code_actions(c, ((2, 15), (2, 15)), json!([])).await;
    let fix = find_action(&actions, "change `area` to `surface`");
    assert_eq!(fix["isPreferred"], true, "{fix}");
    let change = &fix["edit"]["documentChanges"][0];
    assert_eq!(change["textDocument"]["uri"], *c, "{fix}");
    assert_eq!(
        change["textDocument"]["version"],
        harness.client.version(c),
        "{fix}"
    );
    let answer = harness.client.apply_code_action_edit(&fix["edit"]);
    assert_eq!(answer["applied"], true, "{answer}");
    assert_eq!(harness.client.text(c), C_DONE);
    diagnostics(harness, c, 0).await;
    assert_eq!(harness.server_text(c).await.1, C_DONE);
    // The rest of the round stands: "apply all" in a.rs now covers three.
    let actions = harness.code_actions(a, ((0, 3), (0, 3)), json!([])).await;
    find_action(&actions, "apply all 3 next edits");
    assert_eq!(harness.fake.requests().len(), 1);
    across.harness.finish().await;
}

#[tokio::test]
async fn neovim_a_quick_fix_in_another_open_file_applies_a_versioned_edit() {
    a_quick_fix_in_an_open_file_applies_a_versioned_edit(ClientProfile::Neovim).await;
}

#[tokio::test]
async fn zed_a_quick_fix_in_another_open_file_applies_a_versioned_edit() {
    a_quick_fix_in_an_open_file_applies_a_versioned_edit(ClientProfile::Zed).await;
}

/// Everything through code actions, as Helix (which has no other way) does it: "apply all" in
/// a.rs is a command, run with `workspace/executeCommand`, that lands one `workspace/applyEdit`.
async fn apply_all_edits_every_file(profile: ClientProfile) {
    let across = rename_across_files(profile).await;
    let Across { harness, a, b, c } = &across;
    let versions = (harness.client.version(a), harness.client.version(c));
    let actions = harness.code_actions(a, ((0, 3), (0, 3)), json!([])).await;
    let all = find_action(&actions, "apply all 4 next edits");
    let command = &all["command"];
    let answer = harness
        .execute(
            command["command"].as_str().unwrap(),
            command["arguments"].clone(),
        )
        .await
        .expect("apply all answers");
    assert_eq!(answer, json!({ "applied": 4, "stale": 0 }));
    let state = harness.client.state();
    let edits: Vec<&Value> = state
        .apply_edits
        .iter()
        .map(|record| &record.params)
        .collect();
    assert_eq!(edits.len(), 1, "one applyEdit: {edits:#?}");
    let changes = edits[0]["edit"]["documentChanges"].as_array().unwrap();
    let version_of = |uri: &str| {
        changes
            .iter()
            .find(|change| change["textDocument"]["uri"] == uri)
            .map(|change| change["textDocument"]["version"].clone())
    };
    // Open files versioned, the file not open as `version: null`; the changed file first.
    assert_eq!(changes[0]["textDocument"]["uri"], *a);
    assert_eq!(version_of(a), Some(json!(versions.0)));
    assert_eq!(version_of(c), Some(json!(versions.1)));
    assert_eq!(version_of(b), Some(Value::Null));
    assert_eq!(harness.client.text(a), A_DONE);
    // The user's unsaved line in c.rs is still there.
    assert_eq!(harness.client.text(c), C_DONE);
    assert_eq!(state.files.get(b.as_str()), Some(&Some(B_DONE.to_string())));
    // The disk is the editor's business: baton wrote nothing.
    assert_eq!(
        std::fs::read_to_string(harness.root.join("src/b.rs")).unwrap(),
        B
    );
    for uri in [a, b, c] {
        diagnostics(harness, uri, 0).await;
    }
    assert_eq!(harness.server_text(c).await.1, C_DONE);
    assert_eq!(harness.fake.requests().len(), 1);
    across.harness.finish().await;
}

#[tokio::test]
async fn neovim_apply_all_edits_every_file() {
    apply_all_edits_every_file(ClientProfile::Neovim).await;
}

#[tokio::test]
async fn helix_apply_all_edits_every_file() {
    apply_all_edits_every_file(ClientProfile::Helix).await;
}

#[tokio::test]
async fn zed_apply_all_edits_every_file() {
    apply_all_edits_every_file(ClientProfile::Zed).await;
}

#[tokio::test]
async fn helix_editing_another_file_over_its_proposal_clears_it() {
    let across = rename_across_files(ClientProfile::Helix).await;
    let Across { harness, a, c, .. } = &across;
    // The user edits the start of the proposal's line, away from the proposed text itself.
    harness.client.change(c, ((2, 0), (2, 0)), "    ").await;
    diagnostics(harness, c, 0).await;
    let actions = harness.code_actions(c, ((2, 19), (2, 19)), json!([])).await;
    assert!(
        actions
            .iter()
            .all(|action| !action["title"].as_str().unwrap().contains("surface")),
        "{actions:#?}"
    );
    // What is left of the round: a.rs's and b.rs's.
    let actions = harness.code_actions(a, ((0, 3), (0, 3)), json!([])).await;
    let all = find_action(&actions, "apply all 3 next edits");
    let command = &all["command"];
    let answer = harness
        .execute(
            command["command"].as_str().unwrap(),
            command["arguments"].clone(),
        )
        .await
        .expect("apply all answers");
    assert_eq!(answer, json!({ "applied": 3, "stale": 0 }));
    assert_eq!(
        harness.client.text(c),
        C_BUFFER.replace("    crate", "        crate")
    );
    across.harness.finish().await;
}

#[tokio::test]
async fn a_file_changed_on_disk_loses_its_proposals_and_is_never_edited_stale() {
    let across = rename_across_files(ClientProfile::Neovim).await;
    let Across { harness, a, b, c } = &across;
    // b.rs changes on disk and the editor has not said so yet: "apply all" leaves it out.
    let b_path = harness.root.join("src/b.rs");
    std::fs::write(&b_path, format!("// saved elsewhere\n{B}")).unwrap();
    let actions = harness.code_actions(a, ((0, 3), (0, 3)), json!([])).await;
    let all = find_action(&actions, "apply all 4 next edits");
    let command = &all["command"];
    let answer = harness
        .execute(
            command["command"].as_str().unwrap(),
            command["arguments"].clone(),
        )
        .await
        .expect("apply all answers");
    assert_eq!(answer, json!({ "applied": 2, "stale": 2 }));
    let message = harness.wait_for_message("not applied").await;
    assert!(message.contains("src/b.rs"), "{message}");
    assert!(!harness.client.state().files.contains_key(b.as_str()));
    assert_eq!(harness.client.text(a), A_DONE);
    assert_eq!(harness.client.text(c), C_DONE);
    // The editor's file watcher reports the change: b.rs's hints go.
    harness.client.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": [{ "uri": b, "type": 2 }] }),
    );
    diagnostics(harness, b, 0).await;
    across.harness.finish().await;
}

#[tokio::test]
async fn opening_a_file_with_proposals_offers_them_there() {
    let across = rename_across_files(ClientProfile::Neovim).await;
    let Across { harness, b, .. } = &across;
    harness.client.open(b, "rust", B).await;
    // Published again by b.rs's own watcher, now for the buffer.
    harness
        .client
        .wait_for("b.rs's hints for its buffer", WAIT, |state| {
            let params = state.diagnostics.get(b.as_str())?;
            (params["version"].as_i64().is_some() && params["diagnostics"].as_array()?.len() == 2)
                .then_some(())
        })
        .await
        .unwrap();
    let actions = harness.code_actions(b, ((3, 5), (3, 5)), json!([])).await;
    let fix = find_action(&actions, "change `area` to `surface`");
    let answer = harness.client.apply_code_action_edit(&fix["edit"]);
    assert_eq!(answer["applied"], true, "{answer}");
    assert_eq!(
        harness.client.text(b),
        "use crate::a::area;\n\npub fn floor() -> u32 {\n    surface(3, 4)\n}\n"
    );
    diagnostics(harness, b, 1).await;
    across.harness.finish().await;
}

#[tokio::test]
async fn a_new_round_replaces_the_proposals_in_other_files() {
    let across = rename_across_files(ClientProfile::Zed).await;
    let Across { harness, a, b, c } = &across;
    harness.fake.push(Reply::text("{\"edits\": []}"));
    // The user moves on: a change in a.rs away from its proposal starts a new round.
    harness
        .client
        .change(a, ((1, 9), (1, 9)), " /* area */")
        .await;
    for uri in [a, b, c] {
        diagnostics(harness, uri, 0).await;
    }
    assert_eq!(harness.fake.requests().len(), 2);
    let actions = harness.code_actions(a, ((0, 3), (0, 3)), json!([])).await;
    assert!(
        actions
            .iter()
            .all(|action| !action["title"].as_str().unwrap().contains("next edit")),
        "{actions:#?}"
    );
    across.harness.finish().await;
}

#[tokio::test]
async fn typing_in_another_file_while_the_model_answers_moves_its_proposal() {
    let harness = Harness::with(Options {
        settings: json!({ "features": { "next_edit": true, "next_edit_debounce_ms": 30 } }),
        workspace_files: vec![("src/c.rs", C_DISK.to_string())],
        ..Options::default()
    })
    .await;
    harness.indexed().await;
    harness.fake.push(
        Reply::text(
            "{\"edits\": [{\"file\": \"src/c.rs\", \"line\": 3, \"old\": \"a::area(\", \"new\": \"a::surface(\"}]}",
        )
        .delay(Duration::from_millis(300)),
    );
    let a = harness.open("src/a.rs", "rust", A).await;
    let c = harness.uri_of("src/c.rs");
    harness.client.open(&c, "rust", C_BUFFER).await;
    harness
        .client
        .change(&a, ((0, 7), (0, 11)), "surface")
        .await;
    until_fake(&harness, "the round's request", |harness| {
        harness.fake.requests().len() == 1
    })
    .await;
    // The user adds a line at the top of c.rs before the answer: the call moves down one line.
    harness
        .client
        .change(&c, ((0, 0), (0, 0)), "// more\n")
        .await;
    let shown = diagnostics(&harness, &c, 1).await;
    assert_eq!(start_line_character(&shown[0]), (3, 14, 18));
    let actions = harness
        .code_actions(&c, ((3, 15), (3, 15)), json!([]))
        .await;
    let fix = find_action(&actions, "change `area` to `surface`");
    let answer = harness.client.apply_code_action_edit(&fix["edit"]);
    assert_eq!(answer["applied"], true, "{answer}");
    assert_eq!(harness.client.text(&c), format!("// more\n{C_DONE}"));
    harness.finish().await;
}
