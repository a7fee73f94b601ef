//! Panic isolation: a bug in one handler or job must never end the process.
//!
//! baton runs everything on one current-thread runtime, and the transport polls every request's
//! future inside the server's own future, so a panic anywhere in a handler would unwind out of
//! `block_on` and exit the process with status 101: the editor loses baton until it restarts it.
//! As in rust-analyzer, panics are caught at the dispatch boundaries instead — the tower layer
//! (`lsp::ordered`), the document mutation path (`session::Documents::apply`) and the job and
//! indexing spawners — turned into an LSP error or a failed job, and logged with their backtrace.
//!
//! [`install_hook`] records where a panic happened (and its backtrace) in the log as it happens;
//! the catch sites then say what was abandoned because of it.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

/// Logs every panic with its location and a backtrace, then lets the default hook print to
/// stderr as before (editors show a server's stderr in their LSP log).
pub fn install_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|location| location.to_string())
            .unwrap_or_else(|| "an unknown location".into());
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(
            "panic at {location}: {}\n{backtrace}",
            payload_message(info.payload())
        );
        default_hook(info);
    }));
}

/// The text of a panic's payload (`panic!("…")` gives a `&str` or a `String`).
pub fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".into()
    }
}

/// Runs `work`, turning a panic into `Err(message)`.
///
/// `AssertUnwindSafe` is sound at every call site because each one throws away, or rebuilds,
/// whatever state the panicking code was in the middle of changing: the document is dropped or
/// its tree rebuilt, the request is answered with an error, the job ends.
pub fn catch<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(work)).map_err(|payload| payload_message(&*payload))
}

/// The future counterpart of [`catch`]: a panic while the future is polled becomes `Err`.
pub async fn catch_future<F: Future>(future: F) -> Result<F::Output, String> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|payload| payload_message(&*payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(catch(|| 7), Ok(7));
        assert_eq!(
            catch(|| -> u8 { panic!("boom {}", 1) }),
            Err("boom 1".to_string())
        );
        assert_eq!(
            catch(|| -> u8 { std::panic::panic_any(5_u32) }),
            Err("a panic without a message".to_string())
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_future_becomes_its_message() {
        assert_eq!(catch_future(async { 3 }).await, Ok(3));
        let result = catch_future(async {
            tokio::task::yield_now().await;
            let text = "Ñandú";
            // The very kind of slice that started this module.
            text[..2].len() + text[..1].len()
        })
        .await;
        let message = result.expect_err("slicing inside Ñ panics");
        assert!(message.contains("char boundary"), "{message}");
    }
}
