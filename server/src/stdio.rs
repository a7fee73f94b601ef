//! The LSP transport's stdin and stdout.
//!
//! Editors start a language server with pipes for stdin and stdout. Those are driven by the
//! tokio reactor directly, as non-blocking pipe ends. `tokio::io::stdin()` and `stdout()` would
//! hand every read and every write to a blocking-pool thread instead, which costs thread
//! wake-ups per message: measurable when a streamed edit sends a message per token. Anything
//! that is not a pipe (a terminal, a file, a socket) falls back to tokio's own handles.

use std::fs::File;
use std::os::fd::AsFd;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::unix::pipe;

pub type Input = Box<dyn AsyncRead + Unpin + Send>;
pub type Output = Box<dyn AsyncWrite + Unpin + Send>;

/// stdin, from the reactor when it is a pipe. Must be called inside the runtime.
pub fn input() -> Input {
    let pipe = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(pipe::Receiver::from_file);
    match pipe {
        Ok(receiver) => Box::new(receiver),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// stdout, from the reactor when it is a pipe. Must be called inside the runtime.
///
/// Nothing else may write to stdout then: it is non-blocking, so a stray `println!` would fail
/// instead of waiting. baton logs to a file or stderr, and its child processes get their own
/// pipes.
pub fn output() -> Output {
    let pipe = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(pipe::Sender::from_file);
    match pipe {
        Ok(sender) => Box::new(sender),
        Err(_) => Box::new(tokio::io::stdout()),
    }
}
