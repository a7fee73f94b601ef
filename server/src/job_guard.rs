//! Spawning a job so that a panic in it ends that job, properly, and nothing else.
//!
//! A spawned tokio task that panics only loses its own future, but the user would be left with
//! a spinner that never ends and a job that `baton.status` still lists. [`spawn`] catches the
//! panic and finishes the job's bookkeeping: the progress it began is ended (or begun and ended,
//! so the client sees a well-formed sequence), the user is told, the job is unregistered. The
//! edit driver restores the target itself when a step panics; this is the outer net for
//! everything around it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use futures::future::BoxFuture;
use text::Document;

use edit::diff::Replacement;

use crate::frontend::{FileOperation, Frontend, MessageLevel, ResourceOperations};
use crate::session::{DocumentUri, Session};

/// Runs `work` as the job `token`. `work` receives a frontend that remembers how far the job's
/// progress got.
pub fn spawn<F, Work>(
    session: Arc<Session>,
    frontend: Arc<dyn Frontend>,
    token: String,
    title: String,
    work: F,
) where
    F: FnOnce(Arc<dyn Frontend>) -> Work,
    Work: Future<Output = ()> + Send + 'static,
{
    let tracked = Arc::new(ProgressTracking {
        inner: frontend,
        token: token.clone(),
        stage: AtomicU8::new(NOT_BEGUN),
    });
    let work = work(tracked.clone());
    tokio::spawn(async move {
        let Err(message) = crate::panics::catch_future(work).await else {
            return;
        };
        tracing::error!(%token, "job panicked: {message}");
        let end = format!("failed: internal error: {message}");
        match tracked.stage.load(Ordering::Acquire) {
            NOT_BEGUN => {
                tracked.progress_begin(&token, &title, "").await;
                tracked.progress_end(&token, end).await;
            }
            BEGUN => tracked.progress_end(&token, end).await,
            _ => {}
        }
        tracked
            .show_message(
                MessageLevel::Error,
                format!("baton: the job stopped on an internal error: {message}"),
            )
            .await;
        session.jobs.finish(&token);
    });
}

const NOT_BEGUN: u8 = 0;
const BEGUN: u8 = 1;
const ENDED: u8 = 2;

/// A frontend that passes everything through and notes whether the job's progress has begun
/// or ended.
struct ProgressTracking {
    inner: Arc<dyn Frontend>,
    token: String,
    stage: AtomicU8,
}

impl ProgressTracking {
    fn note(&self, token: &str, stage: u8) {
        if token == self.token {
            self.stage.fetch_max(stage, Ordering::AcqRel);
        }
    }
}

impl Frontend for ProgressTracking {
    fn apply_edit(
        &self,
        uri: &DocumentUri,
        document: &Document,
        replacement: &Replacement,
    ) -> BoxFuture<'static, Result<bool, String>> {
        self.inner.apply_edit(uri, document, replacement)
    }

    fn progress_begin(&self, token: &str, title: &str, message: &str) -> BoxFuture<'static, ()> {
        // Counted as begun once the call is made: the begin may be on its way when a panic
        // drops it, and a second begin for the same token would be worse than a missing one.
        self.note(token, BEGUN);
        self.inner.progress_begin(token, title, message)
    }

    fn progress_report(&self, token: &str, message: String) -> BoxFuture<'static, ()> {
        self.inner.progress_report(token, message)
    }

    fn progress_end(&self, token: &str, message: String) -> BoxFuture<'static, ()> {
        self.note(token, ENDED);
        self.inner.progress_end(token, message)
    }

    fn show_message(&self, level: MessageLevel, text: String) -> BoxFuture<'static, ()> {
        self.inner.show_message(level, text)
    }

    fn show_markdown(&self, title: &str, markdown: String) -> BoxFuture<'static, ()> {
        self.inner.show_markdown(title, markdown)
    }

    fn apply_operations(
        &self,
        label: &str,
        operations: Vec<FileOperation>,
    ) -> BoxFuture<'static, Result<bool, String>> {
        self.inner.apply_operations(label, operations)
    }

    fn resource_operations(&self) -> ResourceOperations {
        self.inner.resource_operations()
    }

    fn show_document(&self, path: PathBuf, take_focus: bool) -> BoxFuture<'static, bool> {
        self.inner.show_document(path, take_focus)
    }

    fn ask(&self, message: String, actions: Vec<String>) -> BoxFuture<'static, Option<String>> {
        self.inner.ask(message, actions)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use futures::FutureExt;

    use super::*;

    /// Records progress and messages in order.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Recorder {
        fn push(&self, line: String) -> BoxFuture<'static, ()> {
            self.0.lock().unwrap().push(line);
            async {}.boxed()
        }
    }

    impl Frontend for Recorder {
        fn apply_edit(
            &self,
            _: &DocumentUri,
            _: &Document,
            _: &Replacement,
        ) -> BoxFuture<'static, Result<bool, String>> {
            async { Ok(true) }.boxed()
        }
        fn progress_begin(&self, token: &str, _: &str, _: &str) -> BoxFuture<'static, ()> {
            self.push(format!("begin {token}"))
        }
        fn progress_report(&self, token: &str, message: String) -> BoxFuture<'static, ()> {
            self.push(format!("report {token} {message}"))
        }
        fn progress_end(&self, token: &str, message: String) -> BoxFuture<'static, ()> {
            self.push(format!("end {token} {message}"))
        }
        fn show_message(&self, _: MessageLevel, text: String) -> BoxFuture<'static, ()> {
            self.push(format!("message {text}"))
        }
        fn show_markdown(&self, _: &str, _: String) -> BoxFuture<'static, ()> {
            async {}.boxed()
        }
    }

    async fn run(panic_after: Option<u8>) -> Vec<String> {
        let session = Arc::new(Session::default());
        let (token, _cancel) = session.jobs.start();
        let recorder = Arc::new(Recorder::default());
        spawn(
            session.clone(),
            recorder.clone(),
            token.clone(),
            "title".into(),
            move |frontend| async move {
                if panic_after == Some(NOT_BEGUN) {
                    panic!("early");
                }
                frontend.progress_begin(&token, "title", "").await;
                if panic_after == Some(BEGUN) {
                    panic!("midway");
                }
                frontend.progress_end(&token, "done".into()).await;
                if panic_after == Some(ENDED) {
                    panic!("late");
                }
            },
        );
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(session.jobs.tokens().is_empty() || panic_after.is_none());
        recorder.0.lock().unwrap().clone()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn progress_is_well_formed_wherever_the_job_panics() {
        assert_eq!(
            run(None).await,
            ["begin baton/job/1", "end baton/job/1 done"]
        );
        assert_eq!(
            run(Some(NOT_BEGUN)).await,
            [
                "begin baton/job/1",
                "end baton/job/1 failed: internal error: early",
                "message baton: the job stopped on an internal error: early"
            ]
        );
        assert_eq!(
            run(Some(BEGUN)).await,
            [
                "begin baton/job/1",
                "end baton/job/1 failed: internal error: midway",
                "message baton: the job stopped on an internal error: midway"
            ]
        );
        assert_eq!(
            run(Some(ENDED)).await,
            [
                "begin baton/job/1",
                "end baton/job/1 done",
                "message baton: the job stopped on an internal error: late"
            ]
        );
    }
}
