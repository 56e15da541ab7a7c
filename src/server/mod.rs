//! The server: a TCP listener, one task per connection ([`conn`]), the shared
//! [`hub::Hub`] (sessions, channels, presence, attributes) and the
//! [`store::Store`] boundary for what must outlive a restart.
//!
//! Shutdown is an input: [`run`] serves until the token is cancelled, then
//! tells every session and waits for the connection tasks to finish.

pub mod admin;
pub mod backup;
pub mod clock;
pub mod cluster;
mod coalesce;
pub mod config;
pub mod conn;
pub mod hub;
pub mod media;
pub mod metrics;
pub mod ratelimit;
pub mod redis_reply;
pub mod redis_store;
mod requests;
pub mod resume;
pub mod session;
pub mod sqlite;
pub mod store;
mod transport;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;

pub use clock::{Clock, SystemClock, TestClock, Timing};
pub use config::{ServerConfig, ServerSettings};
pub use conn::ConnConfig;
pub use hub::{Hub, HubConfig};
pub use redis_store::RedisStore;
pub use sqlite::{DB_FILE, SqliteOptions, SqliteStore};
pub use store::{MemoryStore, Store, StoreError, StoreStats};

use crate::protocol::close_code;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "cannot listen on {addr}: {source}. Is another server already running there? Pick another address with --listen"
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot read the listening address: {0}")]
    LocalAddr(std::io::Error),
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    #[error("{0}. Is Redis running there? Check --cluster (or cluster.redis_url in server.toml)")]
    Cluster(#[from] cluster::ClusterError),
    #[error("{0}")]
    Metrics(#[from] metrics::MetricsError),
}

/// Loads a PEM certificate chain and private key for `wss://`.
pub fn load_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<tokio_rustls::rustls::ServerConfig>, ServerError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ServerError::Tls(format!("cannot read {}: {e}", cert.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            ServerError::Tls(format!(
                "{} is not a PEM certificate chain: {e}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(ServerError::Tls(format!(
            "{} holds no certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        ServerError::Tls(format!(
            "cannot read a private key from {}: {e}",
            key.display()
        ))
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ServerError::Tls(format!("certificate and key do not fit together: {e}")))?;
    Ok(Arc::new(config))
}

/// Binds `addr`; a clear error names the address when that fails.
pub async fn bind(addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Counts open connections, per IP and in total, and enforces the caps.
#[derive(Default)]
struct ConnCounter {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// Recent connection attempts per address (for `connect_rate_per_ip`).
    attempts: HashMap<IpAddr, ratelimit::SlidingWindow>,
    /// Connections that have not logged in yet, oldest first: when the
    /// server is full, the oldest is evicted to admit a new one, so a burst
    /// of silent sockets cannot lock honest clients out.
    pending: BTreeMap<u64, CancellationToken>,
    next_pending: u64,
    /// Refusals being sent (each holds a descriptor for a moment).
    refusing: usize,
}

/// Decrements the counter when a connection task ends.
struct ConnSlot {
    counter: Arc<Mutex<ConnCounter>>,
    ip: IpAddr,
    pending: u64,
}

/// Descriptors the caps leave free when nothing is configured (see `fd_reserve`).
const MIN_FD_RESERVE: u64 = 16;

/// The connection cap that fits the process's descriptor limit: the
/// configured one (0 = none) or the soft limit less the reserve, whichever
/// is lower, and at least 1.
fn effective_max_connections(configured: usize, nofile: Option<u64>, reserve: u64) -> usize {
    let by_fds = nofile.map(|n| n.saturating_sub(reserve.max(MIN_FD_RESERVE)).max(1));
    let by_fds = by_fds.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    match (configured, by_fds) {
        (0, Some(f)) => f,
        (0, None) => 0,
        (c, Some(f)) => c.min(f),
        (c, None) => c,
    }
}

/// The process's descriptor limit, raised to its hard limit first (as Go
/// does at start-up): a soft limit of 1,024 is a distribution default, not
/// a choice. `None` when it cannot be read (or is unlimited).
fn descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
            tracing::debug!("cannot raise the descriptor limit: {e}");
        }
        match rlimit::Resource::NOFILE.get() {
            Ok((soft, _)) if soft != rlimit::INFINITY => Some(soft),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("cannot read the descriptor limit: {e}");
                None
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        if let Ok(mut c) = self.counter.lock() {
            c.pending.remove(&self.pending);
            c.total = c.total.saturating_sub(1);
            if let Some(n) = c.per_ip.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    c.per_ip.remove(&self.ip);
                }
            }
        }
    }
}

/// Serves `listener` until `shutdown` is cancelled. Returns once every
/// connection task has finished (sessions were told and closed).
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let hub = Hub::new(config.hub.clone(), config.timing.clone(), store);
    run_with_hub(listener, config, hub, shutdown).await
}

/// Like [`run`] with a hub the caller keeps (tests inspect it).
pub async fn run_with_hub(
    listener: TcpListener,
    config: ServerConfig,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    join_cluster(&config, &hub).await?;
    // What expired while the server was down goes before anyone can see it.
    hub.start_up().await;
    start_metrics(&config, &hub, &shutdown).await?;
    serve(listener, config, hub, shutdown).await
}

/// `--metrics-listen`: bound before the server serves anyone.
async fn start_metrics(
    config: &ServerConfig,
    hub: &Arc<Hub>,
    shutdown: &CancellationToken,
) -> Result<(), ServerError> {
    if let Some(addr) = &config.metrics_listen {
        let listener = metrics::bind(addr).await?;
        tokio::spawn(metrics::serve(
            listener,
            hub.clone(),
            config.admin_secret.clone(),
            shutdown.clone(),
        ));
    }
    Ok(())
}

/// Cluster mode: this hub becomes a node (before it serves anyone).
async fn join_cluster(config: &ServerConfig, hub: &Arc<Hub>) -> Result<(), ServerError> {
    if let Some(cc) = &config.cluster {
        let c = cluster::Cluster::start(cc.clone(), hub).await?;
        hub.attach_cluster(c);
    }
    Ok(())
}

/// The accept loop, once start-up work is done.
async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let conn_config = Arc::new(config.conn.clone());
    let nofile = descriptor_limit();
    let max_connections =
        effective_max_connections(config.max_connections, nofile, config.fd_reserve);
    // Refusals in flight hold descriptors too: a quarter of the reserve.
    let max_refusing = (config.fd_reserve.max(MIN_FD_RESERVE) / 4).max(1) as usize;
    match nofile {
        Some(n) => tracing::info!(
            "connection cap: {max_connections} (configured {}, descriptor limit {n}, {} kept free)",
            config.max_connections,
            config.fd_reserve.max(MIN_FD_RESERVE)
        ),
        None => tracing::info!("connection cap: {max_connections} (0 = none)"),
    }
    // Out of descriptors: wait, doubling up to a second, rather than spin.
    let mut accept_backoff = ACCEPT_BACKOFF_MIN;
    let logins = Arc::new(ratelimit::LoginLimits::new(
        ratelimit::LimitScale(config.limit_scale),
        config.logins.clone(),
    ));
    let counter = Arc::new(Mutex::new(ConnCounter::default()));
    let mut tasks = JoinSet::new();
    // Connections stop on this one, cancelled only after the hub has queued
    // its shutdown notice to every session (else a connection could close
    // before the notice is queued).
    let conn_shutdown = CancellationToken::new();
    let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);

    // Periodic clean-up of attributes of channels that stayed empty and of
    // expired offline messages.
    let sweeper = {
        let hub = hub.clone();
        let shutdown = shutdown.clone();
        let every = (hub.config.channel_attributes_ttl / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    // The server is stopping.
                    _ = shutdown.cancelled() => break,
                    // Time for the next sweep.
                    _ = tick.tick() => hub.sweep().await,
                }
            }
        })
    };

    loop {
        tokio::select! {
            // Stop accepting; fall through to the drain below.
            _ = shutdown.cancelled() => break,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => {
                        accept_backoff = ACCEPT_BACKOFF_MIN;
                        x
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: the pending
                        // connection stays queued in the kernel, so retrying
                        // at once would spin. Told once per episode.
                        if accept_backoff == ACCEPT_BACKOFF_MIN {
                            tracing::warn!("accept failed: {e}; backing off (raise ulimit -n or lower max_connections)");
                        }
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(accept_backoff) => {}
                        }
                        accept_backoff = (accept_backoff * 2).min(ACCEPT_BACKOFF_MAX);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let slot = {
                    let mut c = counter.lock().unwrap_or_else(|p| p.into_inner());
                    let per_ip = c.per_ip.get(&peer.ip()).copied().unwrap_or(0);
                    let rate_ok = config.connect_rate_per_ip == 0 || {
                        if c.attempts.len() > 10_000 {
                            c.attempts.retain(|_, w| !w.is_idle());
                        }
                        c.attempts
                            .entry(peer.ip())
                            .or_insert_with(|| ratelimit::SlidingWindow::new(config.connect_rate_per_ip, Duration::from_secs(1)))
                            .try_acquire()
                    };
                    let refuse = if !rate_ok {
                        Some("too many connection attempts from your address; slow down and retry")
                    } else if config.max_connections_per_ip > 0 && per_ip >= config.max_connections_per_ip {
                        Some("too many connections from your address; close some and retry")
                    } else if max_connections > 0 && c.total >= max_connections {
                        // Full: a connection that has not logged in yet
                        // makes room, the oldest first; only when every
                        // connection is logged in is the new one refused.
                        match c.pending.pop_first() {
                            Some((_, evict)) => {
                                evict.cancel();
                                None
                            }
                            None => Some("server is at its connection limit; try again later"),
                        }
                    } else {
                        None
                    };
                    if let Some(reason) = refuse {
                        if c.refusing < max_refusing {
                            c.refusing += 1;
                            let counter = counter.clone();
                            let cfg = conn_config.clone();
                            let tls = tls.clone();
                            tasks.spawn(async move {
                                refuse_connection(stream, peer, reason, cfg, tls).await;
                                if let Ok(mut c) = counter.lock() {
                                    c.refusing -= 1;
                                }
                            });
                        } else {
                            // Refusals are already using their share of the
                            // descriptors: this one is closed without a word.
                            tracing::debug!(%peer, "dropped: {reason}");
                        }
                        continue;
                    }
                    c.total += 1;
                    *c.per_ip.entry(peer.ip()).or_insert(0) += 1;
                    let id = c.next_pending;
                    c.next_pending += 1;
                    let evicted = CancellationToken::new();
                    c.pending.insert(id, evicted.clone());
                    let on_login = {
                        let counter = counter.clone();
                        Box::new(move || {
                            if let Ok(mut c) = counter.lock() {
                                c.pending.remove(&id);
                            }
                        })
                    };
                    (ConnSlot { counter: counter.clone(), ip: peer.ip(), pending: id }, conn::Admission { evicted, on_login })
                };
                let (slot, admission) = slot;
                let hub = hub.clone();
                let cfg = conn_config.clone();
                let logins = logins.clone();
                let shutdown = conn_shutdown.clone();
                let tls = tls.clone();
                // Every log line of this connection carries its peer and,
                // once logged in, its uid and session id.
                let span = tracing::info_span!(
                    "session",
                    %peer,
                    uid = tracing::field::Empty,
                    session = tracing::field::Empty
                );
                tasks.spawn(tracing::Instrument::instrument(async move {
                    let _slot = slot;
                    // Each branch is boxed: a task's allocation is as big as
                    // its largest possible state, and the TLS one (rustls
                    // buffers inline) would otherwise make every plain
                    // connection pay about 10 KB for it.
                    match tls {
                        None => Box::pin(conn::serve_connection(stream, peer, hub, cfg, logins, shutdown, admission)).await,
                        Some(acceptor) => {
                            let handshake = tokio::time::timeout(cfg.handshake_timeout, Box::pin(acceptor.accept(stream)));
                            let handshake = tokio::select! {
                                r = handshake => r,
                                // Made room for a newer connection.
                                _ = admission.evicted.cancelled() => return,
                            };
                            match handshake {
                                Ok(Ok(tls_stream)) => Box::pin(conn::serve_connection(tls_stream, peer, hub, cfg, logins, shutdown, admission)).await,
                                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        }
                    }
                }, span));
            }
        }
    }
    hub.shutdown_all();
    conn_shutdown.cancel();
    // Each connection task sees the cancelled token, sends its close frame
    // and ends; give slow sockets a bounded time.
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time; dropping them");
    }
    sweeper.abort();
    if let Some(c) = hub.cluster() {
        // The others need not wait for this node's liveness to expire.
        c.leave().await;
    }
    Ok(())
}

/// The first and the longest wait of the accept loop after a failed accept.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Completes the handshake only to say why the connection is refused.
async fn refuse_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    reason: &'static str,
    config: Arc<ConnConfig>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    tracing::info!(%peer, "refused: {reason}");
    // The refusal goes through the same layers as a real connection, TLS
    // included, or a wss:// client would only see a broken handshake.
    let deadline = Duration::from_secs(2);
    match tls {
        None => send_refusal(stream, reason, &config, deadline).await,
        Some(acceptor) => {
            if let Ok(Ok(tls_stream)) =
                tokio::time::timeout(deadline, acceptor.accept(stream)).await
            {
                send_refusal(tls_stream, reason, &config, deadline).await;
            }
        }
    }
}

async fn send_refusal<S>(stream: S, reason: &'static str, config: &ConnConfig, deadline: Duration)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let fut = tokio_tungstenite::accept_async_with_config(stream, Some(config.websocket_config()));
    if let Ok(Ok(mut ws)) = tokio::time::timeout(deadline, fut).await {
        let _ = ws
            .send(Message::Close(Some(CloseFrame {
                code: close_code::TOO_MANY_CONNECTIONS.into(),
                reason: reason.into(),
            })))
            .await;
    }
}

/// A server running on a background task, for tests, benchmarks and the
/// messenger's embedded mode. Dropping it does not stop it; call
/// [`ServerHandle::shutdown`].
pub struct ServerHandle {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl ServerHandle {
    /// `ws://addr`
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Stops the server and waits until every connection has closed.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Binds `addr` (use port 0 for any), does the start-up work (sweeping
/// what expired while the server was down) and serves in the background.
pub async fn spawn(
    addr: &str,
    config: ServerConfig,
    store: Arc<dyn Store>,
) -> Result<ServerHandle, ServerError> {
    let listener = bind(addr).await?;
    let local = listener.local_addr().map_err(ServerError::LocalAddr)?;
    let shutdown = CancellationToken::new();
    let hub = Hub::new(config.hub.clone(), config.timing.clone(), store);
    join_cluster(&config, &hub).await?;
    // Done before the handle is returned, so callers see its effects.
    hub.start_up().await;
    start_metrics(&config, &hub, &shutdown).await?;
    let task = tokio::spawn(serve(listener, config, hub.clone(), shutdown.clone()));
    Ok(ServerHandle {
        addr: local,
        hub,
        shutdown,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_under_the_descriptor_limit() {
        assert_eq!(effective_max_connections(50_000, Some(20_000), 64), 19_936);
        assert_eq!(effective_max_connections(100, Some(20_000), 64), 100);
        assert_eq!(effective_max_connections(0, Some(1_024), 64), 960);
        assert_eq!(effective_max_connections(0, None, 64), 0);
        assert_eq!(effective_max_connections(50_000, Some(10), 64), 1);
        // Never less than the minimum reserve.
        assert_eq!(effective_max_connections(0, Some(1_000), 0), 984);
    }
}
