//! `rtm chat`: the full-screen messenger on top of the SDK.
//!
//! (Being written; the interface below is what `main.rs` calls.)

use std::path::PathBuf;

use crate::config::ClientSettings;

/// What the launcher hands to the messenger.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// Resolved settings: server URL, uid/token if known, data dir, offline messaging.
    pub settings: ClientSettings,
    /// Set when the launcher started a server inside this process (shown in the status bar),
    /// e.g. "embedded server on 127.0.0.1:7420".
    pub embedded_server: Option<String>,
    /// Where the log file goes (shown in the help overlay).
    pub log_dir: PathBuf,
}

/// Runs the messenger until the user quits. Restores the terminal on every exit path.
pub async fn run(options: ChatOptions) -> anyhow::Result<()> {
    let _ = options;
    Ok(())
}
