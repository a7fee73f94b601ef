//! Client profiles: which real editor the scripted client imitates, what it advertises in
//! `initialize`, and how it reacts to the server requests where editors differ.
//!
//! The Neovim and Helix capabilities are the exact `initialize` params those editors sent to a probe
//! server (recorded in `shared/clients/`); the behaviour switches follow the same recording.

use serde_json::{Value, json};

/// The editor a [`super::LspClient`] behaves like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientProfile {
    /// Neovim 0.11.4: a `workspace/applyEdit` whose version is stale is skipped but answered
    /// `{applied: true}`; supports `window/showDocument` and `window/showMessageRequest`.
    Neovim,
    /// Helix 25.07.1: a stale version is answered `{applied: false}`; `window/showMessageRequest`
    /// is answered MethodNotFound; `window/showDocument` is handled.
    Helix,
    /// Zed: offers only UTF-16; a stale edit is skipped silently and answered `{applied: true}`;
    /// `window/showDocument` is not supported for generic servers.
    Zed,
    /// A client that follows the specification to the letter: a stale edit fails.
    Strict,
    /// [`ClientProfile::Strict`] offering only UTF-32 positions. No recorded editor ends up on
    /// UTF-32 (Neovim and Helix offer UTF-8 first, Zed only UTF-16), so this is how tests reach
    /// the third position encoding.
    StrictUtf32,
}

const NEOVIM_INITIALIZE: &str = include_str!("neovim-0.11.4.initialize.json");
const HELIX_INITIALIZE: &str = include_str!("helix-25.07.1.initialize.json");

impl ClientProfile {
    /// The `capabilities` and `clientInfo` this editor sends in `initialize`.
    pub(crate) fn capabilities_and_client_info(self) -> (Value, Value) {
        let recorded = |text: &str| -> Value {
            serde_json::from_str(text).expect("the recorded initialize params are valid JSON")
        };
        match self {
            ClientProfile::Neovim => {
                let params = recorded(NEOVIM_INITIALIZE);
                (params["capabilities"].clone(), params["clientInfo"].clone())
            }
            ClientProfile::Helix => {
                let params = recorded(HELIX_INITIALIZE);
                (params["capabilities"].clone(), params["clientInfo"].clone())
            }
            ClientProfile::Zed => {
                // Zed's recording is not available; start from Neovim's broad capabilities and
                // change what the recording of Zed's behaviour says differs.
                let mut capabilities = recorded(NEOVIM_INITIALIZE)["capabilities"].clone();
                capabilities["general"]["positionEncodings"] = json!(["utf-16"]);
                if let Some(window) = capabilities["window"].as_object_mut() {
                    window.remove("showDocument");
                }
                (capabilities, json!({"name": "Zed", "version": "0.200.0"}))
            }
            ClientProfile::Strict => {
                let capabilities = recorded(NEOVIM_INITIALIZE)["capabilities"].clone();
                (
                    capabilities,
                    json!({"name": "baton-testkit-strict", "version": "1"}),
                )
            }
            ClientProfile::StrictUtf32 => {
                let mut capabilities = recorded(NEOVIM_INITIALIZE)["capabilities"].clone();
                capabilities["general"]["positionEncodings"] = json!(["utf-32"]);
                (
                    capabilities,
                    json!({"name": "baton-testkit-strict-utf32", "version": "1"}),
                )
            }
        }
    }

    /// Whether a `TextDocumentEdit` with a stale version is skipped while the whole
    /// `workspace/applyEdit` is still answered `{applied: true}` (Neovim 0.11 and Zed do this).
    pub(crate) fn skips_stale_edits_silently(self) -> bool {
        matches!(self, ClientProfile::Neovim | ClientProfile::Zed)
    }

    /// Whether `window/showMessageRequest` is answered with MethodNotFound (Helix 25.07).
    pub(crate) fn rejects_show_message_request(self) -> bool {
        matches!(self, ClientProfile::Helix)
    }

    /// Whether `window/showDocument` succeeds (Zed does not open documents for generic servers).
    pub(crate) fn shows_documents(self) -> bool {
        !matches!(self, ClientProfile::Zed)
    }
}
