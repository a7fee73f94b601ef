//! Next-edit suggestions: a change, a round on the fake model, `Hint` diagnostics at the places
//! to follow up, and code actions that carry the edits, in the Neovim and Helix profiles.

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
async fn uses_in_other_files_go_into_the_prompt_as_context() {
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
    assert!(
        body.contains("src/main.rs:2: let size = area(2, 3);"),
        "{body}"
    );
    harness.finish().await;
}
