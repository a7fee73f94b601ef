//! Logging to a file with `tracing`. Never to stdout, which belongs to the LSP transport, and
//! never with secrets: nothing logs a key, only the name of the variable that holds it.

use std::path::PathBuf;

use tracing_subscriber::EnvFilter;

/// Where the log goes: `BATON_LOG_FILE`, else `<state or cache dir>/baton/baton.log`.
pub fn log_path() -> PathBuf {
    if let Some(path) = std::env::var_os("BATON_LOG_FILE").filter(|path| !path.is_empty()) {
        return PathBuf::from(path);
    }
    dirs::state_dir()
        .or_else(dirs::cache_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("baton")
        .join("baton.log")
}

/// Starts logging; the returned guard flushes the log when dropped. The level comes from
/// `BATON_LOG` (an `EnvFilter` directive such as `debug` or `baton=trace`), else from `log.level`
/// in the user's config file, else `info`.
pub fn init() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let path = log_path();
    let directory = path.parent()?.to_path_buf();
    std::fs::create_dir_all(&directory).ok()?;
    let file_name = path.file_name()?.to_owned();
    let appender = tracing_appender::rolling::never(directory, file_name);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env("BATON_LOG").unwrap_or_else(|_| {
        let user = crate::config::resolve(&crate::config::Inputs::gather(None, None));
        EnvFilter::try_new(&user.config.log.level).unwrap_or_else(|_| EnvFilter::new("info"))
    });
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}
