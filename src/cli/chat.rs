//! `rtm chat`: finds or starts the server the messenger talks to (an
//! embedded one when none is configured), then runs the messenger.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use rtm::config::{ClientSettings, Paths};
use rtm::server::{self, SqliteStore, StoreError};
use rtm::tui::Hosting;

use crate::ChatArgs;

/// The host:port of a ws:// URL, if it names a loopback address.
fn loopback_addr(url: &str) -> Option<SocketAddr> {
    let rest = url.strip_prefix("ws://")?;
    let hostport = rest.split('/').next()?;
    let addr = hostport.to_socket_addrs().ok()?.next()?;
    addr.ip().is_loopback().then_some(addr)
}

pub async fn chat(args: ChatArgs) -> anyhow::Result<()> {
    let paths = Paths::discover();
    let mut settings = ClientSettings::load(paths.clone(), args.config.as_deref())?;
    if let Some(s) = args.server {
        settings.server = s;
        settings.server_configured = true;
    }
    if args.uid.is_some() {
        settings.uid = args.uid;
    }
    if args.token.is_some() {
        settings.token = args.token;
    }
    if args.ca.is_some() {
        settings.ca_file = args.ca;
    }
    if args.no_history {
        settings.history = false;
    }
    let _log_guard = rtm::logging::init_file(&paths.log_dir, "chat", &settings.log_level)?;
    tracing::info!(server = %settings.server, "rtm chat starting");

    // With no server configured, use the default address; if nothing listens
    // there, serve it from this process so the messenger works alone. If the
    // messenger that hosted it quits later, one of the others takes over (the
    // watchdog below), and every client reconnects to it by itself.
    // Every embedded server of this OS user keeps its data in one
    // directory, so the one that takes over finds what the last host kept.
    let embedded: Arc<tokio::sync::Mutex<Option<server::ServerHandle>>> = Default::default();
    let mut watchdog = None;
    let (hosting_tx, hosting_rx) = tokio::sync::watch::channel(None);
    let mut takeover = None;
    if !settings.server_configured
        && let Some(addr) = loopback_addr(&settings.server)
    {
        let data_dir = Paths::embedded_server_dir();
        if !is_listening(addr).await {
            *embedded.lock().await = start_embedded(addr, &data_dir).await?;
        }
        takeover = Some(hosting_rx);
        let (embedded, data_dir) = (embedded.clone(), data_dir.clone());
        watchdog = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(EMBEDDED_WATCHDOG_INTERVAL);
            loop {
                tick.tick().await;
                let mut slot = embedded.lock().await;
                if slot.is_none()
                    && let Some((handle, hosting)) = take_over(addr, &data_dir).await
                {
                    *slot = Some(handle);
                    // The UI may be gone already; then nobody needs telling.
                    let _ = hosting_tx.send(Some(hosting));
                }
            }
        }));
    }
    let embedded_note = embedded
        .lock()
        .await
        .as_ref()
        .map(|h| format!("embedded server on {}", h.addr));
    let options = rtm::tui::ChatOptions {
        settings,
        embedded_server: embedded_note,
        takeover,
        log_dir: paths.log_dir.clone(),
    };
    let result = rtm::tui::run(options).await;
    if let Some(w) = watchdog {
        w.abort();
    }
    if let Some(h) = embedded.lock().await.take() {
        let store = h.hub.store().clone();
        h.shutdown().await;
        // Let queued bookkeeping (delivered offline messages) reach the disk
        // and leave the database whole in its main file.
        if let Err(e) = store.shutdown().await {
            tracing::warn!("embedded server store: {e}");
        }
    }
    result
}

/// How often a messenger checks that the embedded server it relies on is
/// still there (and starts one if not).
const EMBEDDED_WATCHDOG_INTERVAL: Duration = Duration::from_secs(2);

/// One look of the watchdog: when nothing listens on `addr` any more (the
/// messenger that hosted the server quit or was killed), start the server
/// here on the shared data directory. `None` while someone serves `addr`,
/// or while the old host still holds the data directory's lock (it is
/// still shutting down: the next look tries again; a killed process
/// releases its lock at once).
async fn take_over(
    addr: SocketAddr,
    data_dir: &std::path::Path,
) -> Option<(server::ServerHandle, Hosting)> {
    if is_listening(addr).await {
        return None;
    }
    let kept_data = data_dir.join(rtm::server::DB_FILE).exists();
    match start_embedded(addr, data_dir).await {
        Ok(Some(handle)) => {
            tracing::info!(%addr, kept_data, "took over the embedded server");
            let hosting = Hosting {
                addr: handle.addr.to_string(),
                kept_data,
            };
            Some((handle, hosting))
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("cannot take over the embedded server: {e:#}");
            None
        }
    }
}

async fn is_listening(addr: SocketAddr) -> bool {
    tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    .is_ok_and(|r| r.is_ok())
}

/// Starts a server on `addr` inside this process. `Ok(None)` when someone
/// else got the address first, or holds the data directory (another
/// messenger's embedded server, or a `rtm serve` on the same data): then we
/// use theirs, and the watchdog tries again should it go away.
async fn start_embedded(
    addr: SocketAddr,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<server::ServerHandle>> {
    let store = match SqliteStore::open_dir(data_dir) {
        Ok(store) => Arc::new(store),
        Err(e @ StoreError::Locked { .. }) => {
            tracing::warn!("embedded server not started: {e}");
            return Ok(None);
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot open the embedded server's data in {}",
                    data_dir.display()
                )
            });
        }
    };
    let mut config = server::ServerConfig::default();
    config.hub.media.dir = Some(data_dir.join("media"));
    match server::spawn(&addr.to_string(), config, store).await {
        Ok(handle) => {
            tracing::info!(%addr, "started embedded server");
            Ok(Some(handle))
        }
        Err(e) => {
            tracing::info!("embedded server not started (another one is there): {e}");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtm::client::{ChannelAttributeOptions, ClientConfig, RtmClient};

    fn free_addr() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("its address")
    }

    /// The messenger that hosted the embedded server goes away; another one
    /// takes over on the same (shared) data directory once the old host has
    /// let go of its lock, and the channel attributes it kept are still there.
    #[tokio::test]
    async fn a_takeover_keeps_the_data_of_the_previous_host() {
        let dir = std::env::temp_dir().join(format!("rtm-takeover-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let addr = free_addr();
        let host = start_embedded(addr, &dir)
            .await
            .expect("open the data dir")
            .expect("the first host starts the server");
        let url = format!("ws://{addr}");
        let (alice, _events) = RtmClient::new(url.clone(), ClientConfig::default());
        alice.login("alice", None).await.expect("log in");
        let topic = std::collections::BTreeMap::from([("topic".to_string(), "kept".to_string())]);
        alice
            .set_channel_attributes("general", topic, ChannelAttributeOptions::default())
            .await
            .expect("set a channel attribute");
        let _ = alice.logout().await;

        // Someone serves the address: nothing to take over.
        assert!(take_over(addr, &dir).await.is_none());
        // The host stops listening but still holds the data dir: wait.
        let store = host.hub.store().clone();
        host.shutdown().await;
        assert!(take_over(addr, &dir).await.is_none());
        // Its lock released (a killed process releases it at once): take over.
        store.shutdown().await.expect("close the store");
        let (handle, hosting) = take_over(addr, &dir).await.expect("take over");
        assert_eq!(
            hosting,
            Hosting {
                addr: addr.to_string(),
                kept_data: true
            }
        );
        let (bob, _events) = RtmClient::new(url, ClientConfig::default());
        bob.login("bob", None)
            .await
            .expect("log in to the new host");
        let attrs = bob.get_channel_attributes("general").await.expect("read");
        assert!(
            attrs.iter().any(|a| a.key == "topic" && a.value == "kept"),
            "{attrs:?}"
        );
        let _ = bob.logout().await;
        let store = handle.hub.store().clone();
        handle.shutdown().await;
        let _ = store.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
