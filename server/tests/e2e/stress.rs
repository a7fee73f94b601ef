//! Thousands of changes sent without waiting, interleaved with requests: the server's text must
//! equal the client's, in every position encoding.

use serde_json::json;
use testkit::lsp_client::ClientProfile;

use crate::support::{Harness, Lcg, range_json};

const PIECES: &[&str] = &[
    "a",
    "é",
    "😀",
    "\n",
    "\r\n",
    "",
    "fn x() {}\n",
    "𝕏y",
    "\t",
    "  ",
];

async fn stress(profile: ClientProfile, seed: u64) {
    let harness = Harness::start(profile).await;
    let uri = harness
        .open("stress.rs", "rust", "fn main() {\n    let x = 1;\n}\n")
        .await;
    let encoding = harness.client.position_encoding().to_string();
    let mut random = Lcg(seed);
    let mut pending = Vec::new();
    for round in 0..2000 {
        let text = harness.client.text(&uri);
        let lines: Vec<&str> = text.split('\n').collect();
        let line = random.below(lines.len() as u64) as usize;
        let units = |line: &str| -> u64 {
            let line = line.strip_suffix('\r').unwrap_or(line);
            match encoding.as_str() {
                "utf-8" => line.len() as u64,
                "utf-32" => line.chars().count() as u64,
                _ => line.encode_utf16().count() as u64,
            }
        };
        // Valid positions only: at character boundaries, as a real editor sends them.
        let boundary = |line_text: &str, at: u64| -> u32 {
            let line_text = line_text.strip_suffix('\r').unwrap_or(line_text);
            let mut offset = 0u64;
            for ch in line_text.chars() {
                let width = match encoding.as_str() {
                    "utf-8" => ch.len_utf8() as u64,
                    "utf-32" => 1,
                    _ => ch.len_utf16() as u64,
                };
                if offset + width > at {
                    break;
                }
                offset += width;
            }
            offset as u32
        };
        let start_char = boundary(lines[line], random.below(units(lines[line]) + 1));
        let end_line = (line + random.below(2) as usize).min(lines.len() - 1);
        let mut end_char = boundary(lines[end_line], random.below(units(lines[end_line]) + 1));
        if end_line == line && end_char < start_char {
            end_char = start_char;
        }
        let piece = PIECES[random.below(PIECES.len() as u64) as usize];
        harness.client.change_nowait(
            &uri,
            ((line as u32, start_char), (end_line as u32, end_char)),
            piece,
        );
        if round % 40 == 0 {
            pending.push(harness.client.request_id(
                "textDocument/codeAction",
                json!({ "textDocument": { "uri": uri }, "range": range_json(((0, 0), (line as u32, 0))), "context": { "diagnostics": [] } }),
            ));
        }
    }
    for request in pending {
        request
            .response()
            .await
            .expect("every interleaved request is answered");
    }
    let (version, _) = harness.server_text(&uri).await;
    assert_eq!(version, harness.client.version(&uri) as i64);
    harness.agreed_text(&uri).await;
    harness.finish().await;
}

#[tokio::test]
async fn two_thousand_changes_utf8_neovim() {
    stress(ClientProfile::Neovim, 7).await;
}

#[tokio::test]
async fn two_thousand_changes_utf16_zed() {
    stress(ClientProfile::Zed, 11).await;
}
