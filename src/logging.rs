//! Logs go to a daily-rotated file under the data dir (never to the terminal
//! the messenger owns), via tracing-appender. The level comes from config or
//! `RTM_LOG` and can be changed at run time ([`set_filter`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

type ReloadHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// Set once by [`init_file`] / [`init_stderr`]; lets `update_config` change the level.
static RELOAD: OnceLock<ReloadHandle> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot create the log directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid log filter {filter:?}: {reason}")]
    Filter { filter: String, reason: String },
}

fn parse_filter(filter: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::try_new(filter).map_err(|e| LogError::Filter {
        filter: filter.to_string(),
        reason: e.to_string(),
    })
}

/// Logs to `dir/<prefix>.log.YYYY-MM-DD`. Keep the guard alive until exit:
/// dropping it flushes the file.
pub fn init_file(
    dir: &Path,
    prefix: &str,
    filter: &str,
) -> Result<tracing_appender::non_blocking::WorkerGuard, LogError> {
    std::fs::create_dir_all(dir).map_err(|source| LogError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(prefix)
        .filename_suffix("log")
        .max_log_files(7)
        .build(dir)
        .map_err(|e| LogError::Dir {
            path: dir.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let (layer, handle) = reload::Layer::new(parse_filter(filter)?);
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(false),
        )
        .try_init();
    let _ = RELOAD.set(handle);
    Ok(guard)
}

/// Logs to standard error (for `rtm serve`, which owns no screen): lines
/// for people, or with `json` one JSON object per line (with the fields of
/// the session span: peer, uid, session) for log shippers.
pub fn init_stderr(filter: &str, json: bool) -> Result<(), LogError> {
    let (layer, handle) = reload::Layer::new(parse_filter(filter)?);
    let registry = tracing_subscriber::registry().with(layer);
    let _ = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    // Colour codes only for a terminal, not for a log file or pipe.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init()
    };
    let _ = RELOAD.set(handle);
    Ok(())
}

/// Changes the log level at run time (`updateConfig({logFilter})` of the model).
pub fn set_filter(filter: &str) -> Result<(), String> {
    let f = parse_filter(filter).map_err(|e| e.to_string())?;
    match RELOAD.get() {
        Some(h) => h.reload(f).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}
