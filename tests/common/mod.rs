//! Shared helpers of the integration tests: a real server on 127.0.0.1:0, SDK
//! clients and raw WebSocket clients that speak the protocol by hand.
#![allow(dead_code)]

pub mod events;
pub mod process;

#[allow(unused_imports)]
pub use events::*;
pub mod redis;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rtm::client::{ClientConfig, ClientEvent, ClientEvents, ConnectionState, RtmClient};
use rtm::protocol::{ServerFrame, close_code};
use rtm::server::{self, MemoryStore, ServerConfig, ServerHandle, Store};
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type RawWs = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn test_config() -> ServerConfig {
    ServerConfig::default()
}

pub async fn start_server() -> ServerHandle {
    start_server_with(test_config()).await
}

pub async fn start_server_with(config: ServerConfig) -> ServerHandle {
    server::spawn("127.0.0.1:0", config, Arc::new(MemoryStore::new()))
        .await
        .expect("bind test server")
}

pub async fn start_server_on(
    addr: &str,
    config: ServerConfig,
    store: Arc<dyn Store>,
) -> ServerHandle {
    server::spawn(addr, config, store)
        .await
        .expect("bind test server")
}

pub fn fast_client_config() -> ClientConfig {
    ClientConfig {
        reconnect_initial: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(200),
        ..ClientConfig::default()
    }
}

/// A logged-in SDK client.
pub async fn login(url: &str, uid: &str) -> (RtmClient, ClientEvents) {
    login_with(url, uid, fast_client_config()).await
}

pub async fn login_with(url: &str, uid: &str, config: ClientConfig) -> (RtmClient, ClientEvents) {
    let (client, mut events) = RtmClient::new(url, config);
    client.login(uid, None).await.expect("login");
    // Consume CONNECTING and CONNECTED so tests see only what follows.
    wait_state(&mut events, ConnectionState::Connected).await;
    (client, events)
}

/// Waits for the next event that `pick` accepts, skipping others.
pub async fn wait_for<T>(
    events: &mut ClientEvents,
    pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    wait_for_within(events, WAIT, pick).await
}

/// Like [`wait_for`] with an explicit limit (paused-time tests wait out graces).
pub async fn wait_for_within<T>(
    events: &mut ClientEvents,
    within: Duration,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(within, async {
        loop {
            let ev = events.recv().await.expect("event stream ended");
            // RTM_TEST_EVENTS=1 prints every event a test reads, with the
            // (paused) clock: the first thing to look at when one fails.
            if std::env::var_os("RTM_TEST_EVENTS").is_some() {
                eprintln!("{:?} {ev:?}", tokio::time::Instant::now());
            }
            if let Some(t) = pick(&ev) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

pub async fn wait_state(
    events: &mut ClientEvents,
    state: ConnectionState,
) -> rtm::client::ConnectionChangeReason {
    wait_for(events, |e| match e {
        ClientEvent::ConnectionStateChanged { state: s, reason } if *s == state => Some(*reason),
        _ => None,
    })
    .await
}

/// True if no event matching `pick` arrives within `within` (real time).
pub async fn none_within(
    events: &mut ClientEvents,
    within: Duration,
    mut pick: impl FnMut(&ClientEvent) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return true,
            Ok(None) => return true,
            Ok(Some(ev)) => {
                if pick(&ev) {
                    return false;
                }
            }
        }
    }
}

/// A raw WebSocket connection (no SDK).
pub async fn raw_connect(url: &str) -> RawWs {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    ws
}

pub async fn raw_send(ws: &mut RawWs, text: &str) {
    ws.send(Message::Text(text.to_string().into()))
        .await
        .expect("send");
}

/// Next server frame (skipping pings); None when the connection closed.
pub async fn raw_recv(ws: &mut RawWs) -> Option<ServerFrame> {
    raw_recv_or_close(ws).await.ok()
}

/// Next server frame, or the close code when the server closed.
pub async fn raw_recv_or_close(ws: &mut RawWs) -> Result<ServerFrame, Option<(u16, String)>> {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return Ok(ServerFrame::decode(&t).expect("server sent valid JSON"));
                }
                Some(Ok(Message::Close(f))) => {
                    return Err(f.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    })
    .await
    .expect("timed out waiting for a server frame")
}

/// Logs a raw connection in as `uid` and returns the login reply.
pub async fn raw_login(url: &str, uid: &str) -> (RawWs, ServerFrame) {
    let mut ws = raw_connect(url).await;
    raw_send(
        &mut ws,
        &format!(r#"{{"id":1,"type":"login","protocol":1,"uid":"{uid}"}}"#),
    )
    .await;
    let reply = raw_recv(&mut ws).await.expect("login reply");
    (ws, reply)
}

pub const REMOTE_LOGIN_CODE: u16 = close_code::REMOTE_LOGIN;

/// Keeps heartbeats out of the way of paused-time tests: paused time jumps
/// ahead whenever the runtime is idle, which would otherwise look like a
/// silent link. Only the timers under test (grace, expiry …) remain.
pub fn without_heartbeats(mut c: ServerConfig) -> ServerConfig {
    c.timing.heartbeat_timeout = Duration::from_secs(24 * 3600);
    c.timing.heartbeat_interval = Duration::from_secs(3600);
    c
}

/// Makes the server's wall clock follow tokio time, so a paused-time test
/// that advances the clock also ages timestamps, offline messages and tokens.
pub fn with_tokio_clock(mut c: ServerConfig) -> ServerConfig {
    c.timing.clock = Arc::new(server::TestClock::new());
    c
}

/// A server config for paused-time tests: no heartbeats, and a wall clock
/// that advances with paused time.
pub fn paused_server_config() -> ServerConfig {
    paused(test_config())
}

/// `c` made fit for a paused-time test (see [`paused_server_config`]).
pub fn paused(c: ServerConfig) -> ServerConfig {
    with_tokio_clock(without_heartbeats(c))
}

/// A client config for paused-time tests: no heartbeats, no request timeouts
/// that a time jump could trigger.
pub fn paused_client_config() -> ClientConfig {
    ClientConfig {
        heartbeat_interval: Duration::from_secs(3600),
        heartbeat_timeout: Duration::from_secs(24 * 3600),
        request_timeout: Duration::from_secs(3600),
        login_timeout: Duration::from_secs(3600),
        ..fast_client_config()
    }
}

/// A fresh directory under the system temp dir, named after the test and
/// unique in this process; removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rtm-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TCP proxy in front of the server: `cut` drops every connection through
/// it (as a dead network would), `block` refuses new ones until unblocked.
pub struct Proxy {
    addr: SocketAddr,
    links: Arc<std::sync::Mutex<Vec<AbortHandle>>>,
    blocked: Arc<std::sync::atomic::AtomicBool>,
    accept: AbortHandle,
}

impl Proxy {
    pub async fn start(server: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let links: Arc<std::sync::Mutex<Vec<AbortHandle>>> = Arc::default();
        let blocked: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (l, b) = (links.clone(), blocked.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if b.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped at once: the server is "unreachable"
                }
                let Ok(mut up) = TcpStream::connect(server).await else {
                    continue;
                };
                let link = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                });
                l.lock().unwrap().push(link.abort_handle());
            }
        })
        .abort_handle();
        Proxy {
            addr,
            links,
            blocked,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Drops every connection through the proxy, both ends at once.
    pub fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn block(&self, blocked: bool) {
        self.blocked
            .store(blocked, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
