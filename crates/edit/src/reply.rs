//! From a streamed model reply to the new text of the target.
//!
//! Models often wrap code in one Markdown fence even when told not to. A single fence around
//! the whole reply is stripped; anything else is kept verbatim. Because the reply streams into
//! the user's buffer, the stripper never lets a fence line through: it holds back the opening
//! line until it knows whether it is a fence, and holds back any trailing line that could still
//! turn out to be the closing fence.

/// Accumulates the reply and exposes the visible (fence-free) text so far.
#[derive(Debug, Default, Clone)]
pub struct ReplyText {
    raw: String,
}

impl ReplyText {
    pub fn new() -> ReplyText {
        ReplyText::default()
    }

    pub fn push(&mut self, delta: &str) {
        self.raw.push_str(delta);
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Number of bytes of the raw reply received so far.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The text that may be shown while the reply is still streaming.
    pub fn partial(&self) -> &str {
        let body = match self.fence_body_start() {
            FenceStart::Undecided => return "",
            FenceStart::NoFence => return &self.raw,
            FenceStart::Fenced(start) => &self.raw[start..],
        };
        // Hold back a trailing line that is, or may become, the closing fence.
        let settled = body.trim_end();
        let last_line_start = settled.rfind('\n').map_or(0, |i| i + 1);
        let last_line = settled[last_line_start..].trim_start();
        let maybe_fence =
            !last_line.is_empty() && ("```".starts_with(last_line) || last_line.starts_with("```"));
        if maybe_fence {
            &body[..last_line_start]
        } else {
            body
        }
    }

    /// The final text, once the reply is complete. When a fence was stripped, the line break
    /// before the closing fence belongs to the fence, unless the target itself ends with one.
    pub fn finish(&self, target_ends_with_newline: bool) -> String {
        let text = strip_fence(&self.raw);
        if text.len() != self.raw.len() && !target_ends_with_newline {
            let trimmed = text.strip_suffix('\n').unwrap_or(&text);
            return trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string();
        }
        text
    }

    fn fence_body_start(&self) -> FenceStart {
        let trimmed = self.raw.trim_start();
        if trimmed.is_empty() {
            return FenceStart::Undecided;
        }
        if !trimmed.starts_with('`') {
            return FenceStart::NoFence;
        }
        if trimmed.len() < 3 {
            return FenceStart::Undecided;
        }
        if !trimmed.starts_with("```") {
            return FenceStart::NoFence;
        }
        match trimmed.find('\n') {
            Some(newline) => FenceStart::Fenced(self.raw.len() - trimmed.len() + newline + 1),
            None => FenceStart::Undecided,
        }
    }
}

enum FenceStart {
    Undecided,
    NoFence,
    Fenced(usize),
}

/// Strips one code fence surrounding the whole reply, if there is exactly that.
pub fn strip_fence(reply: &str) -> String {
    let trimmed = reply.trim();
    if let Some(rest) = trimmed.strip_prefix("```")
        && let Some(newline) = rest.find('\n')
    {
        let body = &rest[newline + 1..];
        if let Some(body) = body.strip_suffix("```") {
            // Only one fence: the body must not contain another fence line.
            if !body
                .lines()
                .any(|line| line.trim_start().starts_with("```"))
            {
                return body.to_string();
            }
        }
    }
    reply.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(pieces: &[&str]) -> (Vec<String>, String) {
        let mut reply = ReplyText::new();
        let mut seen = Vec::new();
        for piece in pieces {
            reply.push(piece);
            seen.push(reply.partial().to_string());
        }
        (seen, reply.finish(true))
    }

    #[test]
    fn a_surrounding_fence_is_never_shown() {
        let (seen, last) = stream(&["``", "`rust\nfn a", "() {}\n", "``", "`\n"]);
        assert_eq!(
            seen,
            vec!["", "fn a", "fn a() {}\n", "fn a() {}\n", "fn a() {}\n"]
        );
        assert_eq!(last, "fn a() {}\n");
    }

    #[test]
    fn unfenced_replies_are_kept_verbatim() {
        let (seen, last) = stream(&["  let x", " = `a`;\n", "done"]);
        assert_eq!(
            seen,
            vec!["  let x", "  let x = `a`;\n", "  let x = `a`;\ndone"]
        );
        assert_eq!(last, "  let x = `a`;\ndone");
    }

    #[test]
    fn the_fence_line_break_follows_the_target() {
        let mut reply = ReplyText::new();
        reply.push("```\nx = 1\n```\n");
        assert_eq!(reply.finish(false), "x = 1");
        assert_eq!(reply.finish(true), "x = 1\n");
        let mut unfenced = ReplyText::new();
        unfenced.push("x = 1\n");
        assert_eq!(unfenced.finish(false), "x = 1\n");
    }

    /// Multi-byte replies, fenced and not, split into two deltas at every character boundary:
    /// what is shown is always a prefix of the final text, never a fence, and the final text
    /// is the body.
    #[test]
    fn multi_byte_replies_split_at_every_character() {
        let body = "fn añade() {\r\n    \"🎉 e\u{301}\u{200D}中\"\r\n}\n";
        for reply in [
            format!("```rust\n{body}```\n"),
            format!("  ```ñ\n{body}```"),
            body.to_string(),
        ] {
            let cuts = reply.char_indices().map(|(at, _)| at).chain([reply.len()]);
            for cut in cuts {
                let mut text = ReplyText::new();
                text.push(&reply[..cut]);
                let first = text.partial().to_string();
                text.push(&reply[cut..]);
                let second = text.partial().to_string();
                for shown in [&first, &second] {
                    assert!(body.starts_with(shown.as_str()), "{reply:?} cut at {cut}");
                    assert!(!shown.contains("```"));
                }
                assert_eq!(text.finish(true), body, "{reply:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn inner_fences_are_kept() {
        let text = "```md\na\n```\nb\n```\n";
        assert_eq!(strip_fence(text), text);
    }
}
