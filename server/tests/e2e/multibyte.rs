//! Issue 12: multi-byte text must never take the server down. A Rust file whose comments put
//! 2-, 3- and 4-byte characters where the `baton:` keyword would be checked (`Ñandú`,
//! `TODO🎉`), and markers whose instruction is multi-byte, get code actions at every position of
//! every line (inside characters too) in all three position encodings; the markers get their
//! marker action, the server keeps serving, and a multi-byte marker edit lands.

use serde_json::{Value, json};
use testkit::fake_model::Reply;
use testkit::lsp_client::ClientProfile;

use crate::support::{Harness, find_action};

const SOURCE: &str = "struct Ñandú {\n    // Ñandú es un ave\r\n    name: String,\n}\n\n// TODO🎉 later\nfn fly() {}\n\n// baton: ñandú — añade un campo\nstruct Nest {\n    eggs: u8,\n}\n\n//baton:ñandú añade 🎉\nfn hatch() {}\n\n// ñbaton: not a marker\n// 🎉baton: not one either\n/* baton: cafe\u{301} 👨\u{200D}👩 */\nfn rest() {}\n";

/// Marker lines and the instruction each must offer.
const MARKERS: &[(u32, &str)] = &[
    (8, "ñandú — añade un campo"),
    (13, "ñandú añade 🎉"),
    (18, "cafe\u{301} 👨\u{200D}👩"),
];

const REPLY: &str = "struct Nest {\n    eggs: u8,\n    ñandú: Ñandú, // 🎉 añadido\n}";

/// The length of `line` in the units of `encoding`.
fn units(line: &str, encoding: &str) -> u32 {
    let count = match encoding {
        "utf-8" => line.len(),
        "utf-16" => line.encode_utf16().count(),
        _ => line.chars().count(),
    };
    count as u32
}

/// The marker action offered for `line`, if any.
fn marker_action(actions: &[Value], instruction: &str) -> Option<Value> {
    actions
        .iter()
        .find(|action| {
            action["isPreferred"] == true
                && action["title"]
                    .as_str()
                    .is_some_and(|title| title.ends_with(instruction))
        })
        .cloned()
}

async fn every_line_in(profile: ClientProfile, expected_encoding: &str) {
    let harness = Harness::start(profile).await;
    let encoding = harness.client.position_encoding().to_string();
    assert_eq!(encoding, expected_encoding);
    let uri = harness.open("src/birds.rs", "rust", SOURCE).await;
    for (index, line) in SOURCE.split_inclusive('\n').enumerate() {
        let line_number = index as u32;
        let content = line.trim_end_matches(['\r', '\n']);
        let length = units(content, &encoding);
        // Every unit of the line, so inside multi-byte characters and surrogate pairs too,
        // and a little past its end; then the whole line selected.
        let mut ranges: Vec<((u32, u32), (u32, u32))> = (0..=length + 2)
            .map(|character| ((line_number, character), (line_number, character)))
            .collect();
        ranges.push(((line_number, 0), (line_number, length)));
        for range in ranges {
            let actions = harness.code_actions(&uri, range, json!([])).await;
            assert!(!actions.is_empty(), "{encoding}: no answer at {range:?}");
            let marker = MARKERS
                .iter()
                .find(|(marker_line, _)| *marker_line == line_number);
            let offered = actions
                .iter()
                .filter(|action| action["isPreferred"] == true);
            match marker {
                Some((_, instruction)) => {
                    let action = marker_action(&actions, instruction).unwrap_or_else(|| {
                        panic!("{encoding}: no marker action at {range:?} in {actions:#?}")
                    });
                    let argument = &action["command"]["arguments"][0];
                    assert_eq!(argument["instruction"], *instruction);
                    assert_eq!(
                        argument["range"],
                        json!({ "start": { "line": line_number, "character": 0 },
                                "end": { "line": line_number + 1, "character": 0 } }),
                        "{encoding}: the marker line's range"
                    );
                }
                None => assert_eq!(
                    offered.count(),
                    0,
                    "{encoding}: line {line_number} {content:?} is not a marker: {actions:#?}"
                ),
            }
        }
    }
    // Still serving, with the text it was given.
    let (_, text) = harness.server_text(&uri).await;
    assert_eq!(text, SOURCE);

    // The multi-byte marker runs, and its multi-byte reply lands in this encoding.
    harness.fake.push(Reply::text(REPLY).rate(150.0));
    let actions = harness
        .code_actions(&uri, ((8, 4), (8, 4)), json!([]))
        .await;
    let token = harness
        .run_action(find_action(&actions, "ñandú — añade un campo"))
        .await;
    let events = harness.job_end(&token).await;
    assert_eq!(Harness::end_message(&events), "done", "{encoding}");
    let expected = SOURCE.replace(
        "// baton: ñandú — añade un campo\nstruct Nest {\n    eggs: u8,\n}",
        REPLY,
    );
    assert_eq!(harness.agreed_text(&uri).await, expected, "{encoding}");
    harness.finish().await;
}

#[tokio::test]
async fn multi_byte_lines_in_utf8() {
    every_line_in(ClientProfile::Neovim, "utf-8").await;
}

#[tokio::test]
async fn multi_byte_lines_in_utf16() {
    every_line_in(ClientProfile::Zed, "utf-16").await;
}

#[tokio::test]
async fn multi_byte_lines_in_utf32() {
    every_line_in(ClientProfile::StrictUtf32, "utf-32").await;
}
