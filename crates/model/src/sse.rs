//! An incremental parser for `text/event-stream` bodies.
//!
//! Bytes go in as they arrive; every event whose terminating blank line has arrived comes
//! out at once. Lines may end in `\n`, `\r\n` or `\r`, and a line or a `\r\n` pair may be split
//! across chunks.
//!
//! Events are handed to a callback by reference, and the parser keeps its field buffers
//! between events: a streamed answer sends one event per token, so an event must not cost an
//! allocation.

use crate::ModelError;

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, or empty when the event had none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    /// Bytes of `buf` already scanned for line ends.
    scanned: usize,
    /// The event being read; its strings are cleared, not replaced, after each dispatch.
    current: SseEvent,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds a chunk; hands every event it completes to `on_event`, in order.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        on_event: &mut impl FnMut(&SseEvent),
    ) -> Result<(), ModelError> {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        let mut i = self.scanned;
        while i < self.buf.len() {
            match self.buf[i] {
                b'\n' => {
                    self.line(start, i, on_event)?;
                    start = i + 1;
                    i += 1;
                }
                b'\r' => {
                    if i + 1 == self.buf.len() {
                        // Might be the first half of "\r\n": wait for the next byte.
                        break;
                    }
                    self.line(start, i, on_event)?;
                    i += if self.buf[i + 1] == b'\n' { 2 } else { 1 };
                    start = i;
                }
                _ => i += 1,
            }
        }
        self.buf.drain(..start);
        self.scanned = i - start;
        Ok(())
    }

    /// Ends the stream: a final line without its line end still counts, and an event
    /// without its closing blank line is dispatched rather than lost.
    pub fn finish(&mut self, on_event: &mut impl FnMut(&SseEvent)) -> Result<(), ModelError> {
        if !self.buf.is_empty() {
            let mut end = self.buf.len();
            if self.buf[end - 1] == b'\r' {
                end -= 1;
            }
            self.line(0, end, on_event)?;
            self.buf.clear();
            self.scanned = 0;
        }
        self.dispatch(on_event);
        Ok(())
    }

    fn line(
        &mut self,
        start: usize,
        end: usize,
        on_event: &mut impl FnMut(&SseEvent),
    ) -> Result<(), ModelError> {
        let line = &self.buf[start..end];
        if line.is_empty() {
            self.dispatch(on_event);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(()); // A comment, e.g. a keep-alive.
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = std::str::from_utf8(value).map_err(|_| ModelError::Malformed {
            detail: "the event stream is not valid UTF-8".to_string(),
        })?;
        match name {
            b"data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            b"event" => {
                self.current.event.clear();
                self.current.event.push_str(value);
            }
            _ => {} // id, retry and unknown fields mean nothing here.
        }
        Ok(())
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(&SseEvent)) {
        if self.has_data {
            on_event(&self.current);
        }
        self.current.event.clear();
        self.current.data.clear();
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &str, piece: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        let mut collect = |event: &SseEvent| out.push(event.clone());
        for chunk in input.as_bytes().chunks(piece) {
            parser.feed(chunk, &mut collect).unwrap();
        }
        parser.finish(&mut collect).unwrap();
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_come_out_whatever_the_chunking() {
        let input = "event: a\ndata: {\"x\":1}\n\n: keep-alive\r\n\r\ndata:two\r\ndata: lines\r\n\r\nevent: b\rdata: cr\r\rid: 7\nretry: 10\ndata: [DONE]\n\n";
        let expected = vec![
            ev("a", "{\"x\":1}"),
            ev("", "two\nlines"),
            ev("b", "cr"),
            ev("", "[DONE]"),
        ];
        for piece in 1..input.len() {
            assert_eq!(
                parse_in_pieces(input, piece),
                expected,
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn an_event_is_dispatched_as_soon_as_its_blank_line_arrives() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser
            .feed(b"data: one\n", &mut |event: &SseEvent| {
                out.push(event.clone())
            })
            .unwrap();
        assert!(out.is_empty());
        parser
            .feed(b"\ndata: tw", &mut |event: &SseEvent| {
                out.push(event.clone())
            })
            .unwrap();
        assert_eq!(out, vec![ev("", "one")]);
    }

    #[test]
    fn multibyte_characters_split_across_chunks() {
        let input = "data: {\"t\":\"ünï 🦀\"}\n\n";
        for piece in 1..input.len() {
            assert_eq!(
                parse_in_pieces(input, piece),
                vec![ev("", "{\"t\":\"ünï 🦀\"}")]
            );
        }
    }

    #[test]
    fn an_unterminated_last_event_still_counts_at_the_end() {
        assert_eq!(parse_in_pieces("data: tail", 3), vec![ev("", "tail")]);
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let mut parser = SseParser::new();
        let err = parser
            .feed(b"data: \xff\xfe\n\n", &mut |_: &SseEvent| {})
            .unwrap_err();
        assert!(matches!(err, ModelError::Malformed { .. }));
    }
}
