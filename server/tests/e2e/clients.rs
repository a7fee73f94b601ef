//! The user keeps typing while a job streams, in editors that treat stale edits differently.

use serde_json::json;
use testkit::fake_model::Reply;
use testkit::lsp_client::ClientProfile;

use crate::edits::{EXPECTED, MARKED, REPLY};
use crate::support::{Harness, WAIT, find_action};

async fn start_marker_job(harness: &Harness, rate: f64) -> (String, String) {
    harness
        .start_marker_job("src/lib.rs", vec![Reply::text(REPLY).rate(rate)])
        .await
}

async fn wait_for_first_edit(harness: &Harness) {
    harness
        .client
        .wait_for("the first streamed edit", WAIT, |state| {
            (!state.apply_edits.is_empty()).then_some(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn typing_outside_the_target_is_kept_and_the_job_goes_on() {
    let harness = Harness::start(ClientProfile::Neovim).await;
    let (uri, token) = start_marker_job(&harness, 40.0).await;
    wait_for_first_edit(&harness).await;
    harness
        .client
        .change(&uri, ((0, 0), (0, 0)), "// typed while streaming\n")
        .await;
    let last_line = harness.client.text(&uri).lines().count() as u32;
    harness
        .client
        .change(
            &uri,
            ((last_line, 0), (last_line, 0)),
            "// and at the end\n",
        )
        .await;
    assert_eq!(Harness::end_message(&harness.job_end(&token).await), "done");
    assert_eq!(
        harness.agreed_text(&uri).await,
        format!("// typed while streaming\n{EXPECTED}// and at the end\n")
    );
    harness.finish().await;
}

#[tokio::test]
async fn typing_inside_the_target_stops_the_job_and_keeps_the_users_text() {
    let harness = Harness::start(ClientProfile::Strict).await;
    let (uri, token) = start_marker_job(&harness, 20.0).await;
    wait_for_first_edit(&harness).await;
    // Line 5 is inside the region being rewritten (the marker line is gone).
    harness.client.change(&uri, ((5, 0), (5, 0)), "USER ").await;
    let typed = harness.client.text(&uri);
    let events = harness.job_end(&token).await;
    assert_eq!(
        Harness::end_message(&events),
        "stopped: you edited the target"
    );
    harness
        .wait_for_message("you edited the text it was rewriting")
        .await;
    let text = harness.agreed_text(&uri).await;
    assert_eq!(
        text, typed,
        "nothing was changed after the user typed in the target"
    );
    assert!(text.contains("USER "));
    harness.finish().await;
}

/// The user wins the race against the very first edit; each editor reacts in its own way.
async fn stale_edit_is_recomputed(profile: ClientProfile) {
    let harness = Harness::start(profile).await;
    harness.fake.push(Reply::text(REPLY).rate(200.0));
    let uri = harness.open("src/lib.rs", "rust", MARKED).await;
    let actions = harness
        .code_actions(&uri, ((4, 0), (4, 0)), json!([]))
        .await;
    harness
        .client
        .type_before_next_apply_edit(&uri, ((0, 0), (0, 0)), "// typed first\n");
    let token = harness
        .run_action(find_action(&actions, "return two"))
        .await;
    let end = Harness::end_message(&harness.job_end(&token).await);
    assert_eq!(end, "done", "{:#?}", harness.client.state().apply_edits);
    assert_eq!(
        harness.agreed_text(&uri).await,
        format!("// typed first\n{EXPECTED}")
    );
    let records = harness.client.state().apply_edits;
    let stale = records
        .iter()
        .filter(|record| record.response["applied"] == false || !record.skipped_stale.is_empty())
        .count();
    assert_eq!(stale, 1, "exactly the first edit was stale: {records:#?}");
    harness.finish().await;
}

#[tokio::test]
async fn helix_rejects_a_stale_edit_and_it_is_recomputed() {
    stale_edit_is_recomputed(ClientProfile::Helix).await;
}

#[tokio::test]
async fn neovim_skips_a_stale_edit_but_says_applied_and_it_is_recomputed() {
    stale_edit_is_recomputed(ClientProfile::Neovim).await;
}

#[tokio::test]
async fn zed_skips_a_stale_edit_silently_and_it_is_recomputed() {
    stale_edit_is_recomputed(ClientProfile::Zed).await;
}

#[tokio::test]
async fn zed_and_helix_negotiate_their_encodings() {
    for (profile, expected) in [
        (ClientProfile::Zed, "utf-16"),
        (ClientProfile::Helix, "utf-8"),
        (ClientProfile::Neovim, "utf-8"),
    ] {
        let harness = Harness::start(profile).await;
        assert_eq!(
            harness.initialize["capabilities"]["positionEncoding"], expected,
            "{profile:?}"
        );
        // Astral characters before the target: positions must be counted in that encoding.
        harness
            .fake
            .push(Reply::text("let b = \"😀\";").rate(300.0));
        let uri = harness
            .open(
                "u.js",
                "javascript",
                "let a = \"😀😀\"; // baton: x\nlet b = 1;\n",
            )
            .await;
        let result = harness
            .execute(
                "baton.edit",
                json!([{ "textDocument": { "uri": uri }, "range": crate::support::range_json(((1, 0), (1, 10))), "instruction": "emoji" }]),
            )
            .await
            .unwrap();
        let token = result["job"].as_str().unwrap().to_string();
        assert_eq!(Harness::end_message(&harness.job_end(&token).await), "done");
        assert_eq!(
            harness.agreed_text(&uri).await,
            "let a = \"😀😀\"; // baton: x\nlet b = \"😀\";\n"
        );
        harness.finish().await;
    }
}
