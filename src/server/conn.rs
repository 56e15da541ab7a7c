//! One task per connection: WebSocket handshake, login, then a read loop that
//! turns each text frame into a hub call and queues the reply. A separate
//! writer task drains the session's bounded queue, feeding every frame that
//! is ready and flushing once per batch.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use super::ratelimit::{CallLimits, LoginLimits};
use super::requests::handle_request;
use super::session::{
    Outbound, Outbox, OutboxReceiver, QueueLimits, QueueLoad, SessionHandle, next_session_id,
};
use super::transport::{FrameWatch, Watched, read_request_head};
use crate::protocol::{
    ClientFrame, ErrorBody, ErrorKind, Event, MEDIA_CHUNK_BYTES, MEDIA_PATH, PROTOCOL_VERSION,
    Reply, Request, ServerFrame, Uid, close_code, encode_event,
};
use crate::token::{self, TokenError};

/// Settings of each connection, fixed at server start.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// Frames a session may have queued before it counts as a slow consumer.
    pub queue_frames: usize,
    /// Bytes of frames a session may have queued before it counts as a slow
    /// consumer (what its unread frames may pin of the server's memory).
    pub queue_bytes: usize,
    /// Time a new connection has for its TLS and WebSocket handshakes.
    pub handshake_timeout: Duration,
    /// Time a fragmented message may take from its first fragment to its
    /// last; pongs meanwhile do not extend it.
    pub message_timeout: Duration,
    /// Largest frame accepted, in bytes; checked before the frame is parsed.
    pub max_frame_bytes: usize,
    /// Time a connection may take to send a valid login.
    pub login_timeout: Duration,
    /// Malformed frames tolerated per connection before it is closed.
    pub max_bad_frames: u32,
    /// The secret that signs login tokens; `None` is development mode.
    pub app_certificate: Option<AppCertificate>,
}

/// The app certificate, kept out of `Debug` output and logs.
#[derive(Clone)]
pub struct AppCertificate(pub String);

impl AppCertificate {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for AppCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppCertificate(<redacted>)")
    }
}

impl ConnConfig {
    /// tungstenite settings: a small read buffer (the default costs ~130 KB per
    /// idle connection) and size caps enforced while reading.
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0)
            .max_write_buffer_size(1024 * 1024)
            .max_message_size(Some(self.max_frame_bytes))
            .max_frame_size(Some(self.max_frame_bytes))
    }
}

/// Largest message a client may send before it has logged in, in bytes: a
/// login frame is small, and a connection nobody knows yet should cost
/// little to read.
pub const PRELOGIN_MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// Frames read per second from a connection that has not logged in; more
/// wait (reading pauses), they are not refused.
pub const PRELOGIN_FRAMES_PER_SECOND: u32 = 100;

fn reply(id: u64, result: Result<Reply, ErrorBody>) -> Outbound {
    let frame = match result {
        Ok(result) => ServerFrame::Ok { id, result },
        Err(error) => ServerFrame::Error {
            id: Some(id),
            error,
        },
    };
    Message::Text(frame.encode().into())
}

fn close_msg(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: Utf8Bytes::from(reason.to_string()),
    }))
}

/// The token state of a logged-in session on a server with an app certificate.
struct TokenClock {
    /// When the token expires, in wall-clock milliseconds: a token that ran
    /// out while the machine slept is expired at wake-up.
    expires_at_ms: u64,
    /// Whether `token_privilege_will_expire` went out for this token.
    warned: bool,
}

/// How long before expiry `token_privilege_will_expire` is pushed.
pub const TOKEN_WARNING: Duration = Duration::from_secs(30);

/// Checks a login or renewal token; `Ok(None)` in development mode.
fn check_token(
    config: &ConnConfig,
    hub: &Hub,
    uid: &Uid,
    token: Option<&str>,
) -> Result<Option<TokenClock>, ErrorBody> {
    let Some(cert) = &config.app_certificate else {
        return Ok(None);
    };
    let token = token.ok_or_else(|| TokenError::Missing.to_error_body())?;
    let now_ms = hub.now_ms();
    let claims =
        token::verify(cert.as_bytes(), token, uid, now_ms / 1000).map_err(|e| e.to_error_body())?;
    Ok(Some(TokenClock {
        expires_at_ms: claims.expires_at.saturating_mul(1000),
        warned: false,
    }))
}

impl TokenClock {
    /// Time left on the token, by the wall clock.
    fn left(&self, now_ms: u64) -> Duration {
        Duration::from_millis(self.expires_at_ms.saturating_sub(now_ms))
    }
}

/// How the read loop goes on after an event.
enum Step {
    Continue,
    /// The loop ends: `Some` close code and reason to send, `None` when the
    /// link is already gone or the session was killed with its own reason.
    End(Option<(u16, String)>),
}

/// What woke the read loop.
enum Wake {
    Shutdown,
    Killed,
    Evicted,
    LoginTimeout,
    TokenWarning,
    TokenExpired,
    Heartbeat,
    /// The queue has room again.
    Room,
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
}

/// The close sent when the server stops.
fn going_away() -> Option<(u16, String)> {
    Some((
        close_code::GOING_AWAY,
        "server shutting down; reconnect later".into(),
    ))
}

/// How the end of a connection is told to its writer: `Some` close frame to
/// send (and whether to drop what is still queued), `None` when the socket is
/// already gone.
type CloseOrder = Option<(Message, bool)>;

type Sink<S> = futures_util::stream::SplitSink<tokio_tungstenite::WebSocketStream<S>, Message>;

/// One connection's state. Owned by its connection task; the hub holds
/// only the [`SessionHandle`].
struct Connection {
    peer: SocketAddr,
    hub: Arc<Hub>,
    config: Arc<ConnConfig>,
    /// Shared by every connection of the server.
    logins: Arc<LoginLimits>,
    /// The session's queue; its writer task drains it.
    tx: Outbox,
    /// How full the queue is (shared with the writer).
    load: Arc<QueueLoad>,
    /// What the frame headers tell (message assembly, size before login).
    watch: Arc<FrameWatch>,
    /// Cancelled by the accept loop to make room for a newer connection
    /// while this one has not logged in.
    evicted: CancellationToken,
    /// Told once when the login succeeds (the connection stops being evictable).
    on_login: Option<Box<dyn FnOnce() + Send + Sync>>,
    /// Set while reading is paused because the queue is above its read
    /// pause: since when.
    paused_since: Option<Instant>,
    /// Frames before login in the current one-second window, and its start.
    prelogin_frames: u32,
    prelogin_window: Instant,
    /// Reading waits until then (the rate before login).
    read_not_before: Instant,
    /// Cancelled by the hub to end this session (slow consumer, remote login …).
    kill: CancellationToken,
    /// Cancelled when the server stops.
    shutdown: CancellationToken,
    /// The uid's call counters, shared with its other connections; set at
    /// login (no call before it is counted).
    limits: Option<Arc<CallLimits>>,
    /// Set by a successful login.
    session: Option<Arc<SessionHandle>>,
    /// Set by a login or renewal with a token (never in development mode).
    token: Option<TokenClock>,
    last_seen: Instant,
    bad_frames: u32,
    /// Set when the session ended on purpose (logout, expired token): the
    /// user leaves at once instead of getting the grace of a dropped link.
    ended_on_purpose: bool,
}

/// Serves one connection (plain TCP or TLS) until it closes, the session is
/// killed or the server shuts down.
/// How the accept loop keeps a hand on a connection that has not logged
/// in yet: it may evict it to admit a newer one when the server is full.
pub struct Admission {
    pub evicted: CancellationToken,
    /// Called once the connection has logged in.
    pub on_login: Box<dyn FnOnce() + Send + Sync>,
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            evicted: CancellationToken::new(),
            on_login: Box::new(|| {}),
        }
    }
}

/// Counts an open connection for the metrics while it lives.
struct OpenConnection;

impl OpenConnection {
    fn new() -> Self {
        super::metrics::METRICS.connections.inc();
        super::metrics::METRICS.connections_total.inc();
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        super::metrics::METRICS.connections.dec();
    }
}

pub async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    hub: Arc<Hub>,
    config: Arc<ConnConfig>,
    logins: Arc<LoginLimits>,
    shutdown: CancellationToken,
    admission: Admission,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _open = OpenConnection::new();
    let watch = Arc::new(FrameWatch::new(PRELOGIN_MAX_MESSAGE_BYTES));
    let accepted = tokio::select! {
        ws = accept(stream, peer, &config, watch.clone()) => ws,
        // Made room for a newer connection before the handshake was done.
        _ = admission.evicted.cancelled() => None,
    };
    let ws = match accepted {
        Some(Accepted::Chat(ws)) => ws,
        // A file transfer: its own connection, so it never queues in front
        // of the user's chat frames (see `server::media`).
        Some(Accepted::Media(ws)) => {
            tokio::select! {
                _ = super::media::serve_transfer(hub.media().clone(), ws) => {}
                _ = shutdown.cancelled() => {}
            }
            return;
        }
        None => return,
    };
    let (sink, mut stream) = ws.split();
    let (tx, rx, load) = Outbox::new(QueueLimits {
        frames: config.queue_frames,
        bytes: config.queue_bytes,
    });
    let (close_tx, close_rx) = tokio::sync::oneshot::channel::<CloseOrder>();
    let writer = tokio::spawn(write_loop(sink, rx, load.clone(), close_rx));
    let now = Instant::now();
    let mut conn = Connection {
        load,
        watch,
        evicted: admission.evicted,
        on_login: Some(admission.on_login),
        paused_since: None,
        prelogin_frames: 0,
        prelogin_window: now,
        read_not_before: now,
        peer,
        limits: None,
        hub,
        config,
        logins,
        tx,
        kill: CancellationToken::new(),
        shutdown,
        session: None,
        token: None,
        last_seen: Instant::now(),
        bad_frames: 0,
        ended_on_purpose: false,
    };
    let end = conn.run(&mut stream).await;
    let closing = end.is_some();
    let abort = writer.abort_handle();
    let _ = close_tx.send(conn.close(end));
    // The writer ends after the close frame, or when the queue's last sender
    // (a hub-held session handle) is gone; don't wait on a stuck socket forever.
    let sink = match tokio::time::timeout(CLOSE_TIMEOUT, writer).await {
        Ok(Ok(sink)) => sink,
        _ => {
            abort.abort();
            return;
        }
    };
    if closing && let Ok(mut ws) = stream.reunite(sink) {
        linger(ws.get_mut()).await;
    }
}

/// The WebSocket handshake, within the handshake timeout. The request head
/// is read here first, so that what is no WebSocket request gets an HTTP
/// answer saying so.
async fn accept<S>(
    mut stream: S,
    peer: SocketAddr,
    config: &ConnConfig,
    watch: Arc<FrameWatch>,
) -> Option<Accepted<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let handshake = async {
        let head = read_request_head(&mut stream).await?;
        let media = is_media_request(&head);
        let ws_config = if media {
            // Chunks of a file, not chat frames: bigger frames, bigger reads.
            watch.set_limit(MEDIA_CHUNK_BYTES);
            WebSocketConfig::default()
                .read_buffer_size(64 * 1024)
                .max_message_size(Some(MEDIA_CHUNK_BYTES))
                .max_frame_size(Some(MEDIA_CHUNK_BYTES))
        } else {
            config.websocket_config()
        };
        let watched = Watched::new(stream, head, watch);
        tokio_tungstenite::accept_async_with_config(watched, Some(ws_config))
            .await
            .map(|ws| (ws, media))
            .map_err(|e| e.to_string())
            .map_err(HandshakeError::WebSocket)
    };
    match tokio::time::timeout(config.handshake_timeout, handshake).await {
        Ok(Ok((mut ws, media))) => {
            ws.get_mut().coalesce_writes();
            Some(if media {
                Accepted::Media(ws)
            } else {
                Accepted::Chat(ws)
            })
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, "handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "handshake timed out");
            None
        }
    }
}

/// A WebSocket, by what it was opened for.
enum Accepted<S> {
    /// A chat session (any path but the transfer endpoint).
    Chat(tokio_tungstenite::WebSocketStream<Watched<S>>),
    /// A file transfer (`/media`, PROTOCOL.md §16).
    Media(tokio_tungstenite::WebSocketStream<Watched<S>>),
}

/// Whether the request head asks for the transfer endpoint.
fn is_media_request(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let target = line.split(|&b| b == b' ').nth(1).unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    path == MEDIA_PATH.as_bytes()
}

/// Why a connection got no WebSocket.
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error(transparent)]
    Head(#[from] super::transport::HeadError),
    #[error("WebSocket handshake failed: {0}")]
    WebSocket(String),
}

/// Most frames the writer takes from its queue for one write: under backlog
/// they leave in one or two `send` calls (see `coalesce`).
const WRITE_BATCH: usize = 256;

/// The writer: drains the queue in batches, feeding each frame and flushing
/// once per batch. When the end is announced it sends what is still queued
/// (unless the client is a slow consumer, whose backlog is dropped) and the
/// close frame, so the client learns why. It hands the sink back so the
/// connection can finish the closing handshake.
async fn write_loop<S>(
    mut sink: Sink<S>,
    mut rx: OutboxReceiver,
    load: Arc<QueueLoad>,
    mut close_rx: tokio::sync::oneshot::Receiver<CloseOrder>,
) -> Sink<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Empty until used: an idle connection should cost as little as possible.
    let mut batch: VecDeque<Outbound> = VecDeque::new();
    let mut incoming = Vec::new();
    let close = loop {
        let n = tokio::select! {
            biased;
            close = &mut close_rx => break close.ok().flatten(),
            n = rx.recv_many(&mut incoming, WRITE_BATCH) => n,
        };
        if n == 0 {
            break None;
        }
        batch.extend(incoming.drain(..));
        // Cancel-safe: interrupted by the close order, it leaves every frame
        // it has not handed to the socket layer in `batch`, in order.
        let write = write_batch(&mut sink, &mut batch, &load);
        tokio::select! {
            biased;
            close = &mut close_rx => break close.ok().flatten(),
            r = write => if r.is_err() { break None },
        }
        // Idle again: the buffers go back, so a quiet connection stays small
        // (`recv_many` reserves room for a whole batch, ~10 KB).
        if rx.is_empty() {
            incoming = Vec::new();
            batch = VecDeque::new();
        }
    };
    if let Some((close, drop_backlog)) = close {
        if !drop_backlog {
            // Unsent frames of the interrupted batch first, then the rest, in order.
            while let Ok(out) = rx.try_recv() {
                batch.push_back(out);
            }
            if write_batch(&mut sink, &mut batch, &load).await.is_err() {
                return sink;
            }
        }
        let _ = sink.send(close).await;
    }
    sink
}

impl Connection {
    /// The read loop; returns why it ended.
    async fn run<S>(
        &mut self,
        stream: &mut futures_util::stream::SplitStream<tokio_tungstenite::WebSocketStream<S>>,
    ) -> Option<(u16, String)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let login_deadline = Instant::now() + self.config.login_timeout;
        let mut ping = tokio::time::interval(self.hub.timing().heartbeat_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            // Requests are read only while the queue is below its read pause
            // (half of either cap): a client that pipelines faster than it
            // reads is slowed down here, and the other half stays free for
            // pushed events, so it is not cut as a slow consumer for them.
            let paused = self.load.should_pause_reading();
            match (paused, self.paused_since) {
                (true, None) => self.paused_since = Some(Instant::now()),
                (false, Some(_)) => {
                    self.paused_since = None;
                    // Its traffic waited unread in the socket meanwhile.
                    self.last_seen = Instant::now();
                }
                _ => {}
            }
            let read_not_before = self.read_not_before;
            let pacing = !paused && Instant::now() < read_not_before;
            let (warn_at, expires_at) = self.token_deadlines();
            let wake = tokio::select! {
                // The server is shutting down.
                _ = self.shutdown.cancelled() => Wake::Shutdown,
                // The hub killed this session (slow consumer, remote login …).
                _ = self.kill.cancelled() => Wake::Killed,
                // Evicted before login, to admit a newer connection.
                _ = self.evicted.cancelled(), if self.session.is_none() => Wake::Evicted,
                // A login must come in time.
                _ = tokio::time::sleep_until(login_deadline), if self.session.is_none() => Wake::LoginTimeout,
                // The token is about to expire: tell the client to renew it.
                _ = tokio::time::sleep_until(warn_at.unwrap_or(login_deadline)), if warn_at.is_some() => Wake::TokenWarning,
                // The token expired without renewal: the session is over.
                _ = tokio::time::sleep_until(expires_at.unwrap_or(login_deadline)), if expires_at.is_some() => Wake::TokenExpired,
                // Heartbeat: ping, and give up on a silent link.
                _ = ping.tick() => Wake::Heartbeat,
                // The queue is above its read pause: wait until the writer
                // has drained it below before reading more requests
                // (heartbeats and the other arms still run meanwhile).
                _ = self.load.room_to_read(), if paused => Wake::Room,
                // Frames before login come at a limited rate.
                _ = tokio::time::sleep_until(read_not_before), if pacing => Wake::Room,
                // The next frame from the client.
                msg = stream.next(), if !paused && !pacing => Wake::Frame(msg),
            };
            // Handled once the arms' futures (which borrow `self`) are gone.
            let step = match wake {
                Wake::Shutdown => Step::End(going_away()),
                Wake::Killed => Step::End(self.kill_reason()),
                Wake::Evicted => Step::End(Some((
                    close_code::TOO_MANY_CONNECTIONS,
                    "server is at its connection limit and made room for a newer connection; log in promptly after connecting".into(),
                ))),
                Wake::LoginTimeout => Step::End(Some((
                    close_code::LOGIN_TIMEOUT,
                    "no login received in time; send a login frame first".into(),
                ))),
                Wake::TokenWarning => self.warn_token(),
                Wake::TokenExpired => self.expire_token(),
                Wake::Heartbeat => self.heartbeat(),
                Wake::Room => Step::Continue,
                Wake::Frame(msg) => self.incoming(msg).await,
            };
            if let Step::End(end) = step {
                return end;
            }
        }
    }

    /// When to warn about and to end the token, as tokio instants. Tokio's
    /// timers stop while the machine sleeps and the wall clock does not, so
    /// they are worked out afresh from the wall clock on every turn of the
    /// loop; the heartbeat makes a turn at least once per interval, so an
    /// expiry slept through is noticed that soon after wake-up.
    fn token_deadlines(&self) -> (Option<Instant>, Option<Instant>) {
        let Some(t) = &self.token else {
            return (None, None);
        };
        let now = Instant::now();
        let left = t.left(self.hub.now_ms());
        let warn_at = (!t.warned).then(|| now + left.saturating_sub(TOKEN_WARNING));
        (warn_at, Some(now + left))
    }

    /// The close a killed session sends: the reason its killer gave.
    fn kill_reason(&self) -> Option<(u16, String)> {
        let frame = self.session.as_ref().and_then(|s| s.close_frame())?;
        Some((frame.code.into(), frame.reason.to_string()))
    }

    fn warn_token(&mut self) -> Step {
        let now_ms = self.hub.now_ms();
        if let (Some(s), Some(t)) = (&self.session, self.token.as_mut()) {
            t.warned = true;
            let expires_in_s = t.left(now_ms).as_secs();
            let event = Event::TokenPrivilegeWillExpire { expires_in_s };
            s.send(Message::Text(encode_event(&event).into()));
        }
        Step::Continue
    }

    fn expire_token(&mut self) -> Step {
        if let Some(s) = &self.session {
            s.send(Message::Text(encode_event(&Event::TokenExpired).into()));
            self.hub.logout(&s.uid, s.id);
        }
        self.ended_on_purpose = true;
        Step::End(Some((
            close_code::TOKEN_EXPIRED,
            "the login token expired; log in again with a fresh token".into(),
        )))
    }

    fn heartbeat(&self) -> Step {
        let timeout = self.hub.timing().heartbeat_timeout;
        if let Some(since) = self.paused_since {
            // Not reading, so its traffic is not seen: what counts is
            // whether it reads what it asked for.
            if since.elapsed() > timeout {
                super::metrics::METRICS.slow_consumers.inc();
                return Step::End(Some((
                    close_code::SLOW_CONSUMER,
                    "slow consumer: replies are not being read".into(),
                )));
            }
        } else if self.last_seen.elapsed() > timeout {
            return Step::End(Some((
                close_code::HEARTBEAT_TIMEOUT,
                "no traffic within the heartbeat timeout".into(),
            )));
        }
        // Pongs keep a link alive, but not a message that never ends: its
        // fragments pin memory for as long as the connection lives.
        if let Some(since) = self.watch.assembling_since()
            && since.elapsed() > self.config.message_timeout
        {
            return Step::End(Some((
                close_code::PROTOCOL_ERROR,
                format!(
                    "a fragmented message was not completed within {} s",
                    self.config.message_timeout.as_secs()
                ),
            )));
        }
        // Skipped when the queue is full: a ping is no reason to cut anyone.
        let _ = self.tx.try_send(Message::Ping(Default::default()));
        Step::Continue
    }

    /// Before login: counts the frame against the rate, and pauses reading
    /// for the rest of the second once the rate is used up.
    fn pace_before_login(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.prelogin_window) >= Duration::from_secs(1) {
            self.prelogin_window = now;
            self.prelogin_frames = 0;
        }
        self.prelogin_frames += 1;
        if self.prelogin_frames >= PRELOGIN_FRAMES_PER_SECOND {
            self.read_not_before = self.prelogin_window + Duration::from_secs(1);
        }
    }

    /// What the client sent (or that its link failed).
    async fn incoming(
        &mut self,
        msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Step {
        use tokio_tungstenite::tungstenite::Error as WsError;
        use tokio_tungstenite::tungstenite::error::CapacityError;
        self.last_seen = Instant::now();
        let msg = match msg {
            None => return Step::End(None),
            Some(Ok(m)) => m,
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                return Step::End(Some((
                    close_code::TOO_BIG,
                    format!("frame of {size} bytes is larger than the limit of {max_size}"),
                )));
            }
            Some(Err(WsError::Utf8(_))) => {
                return Step::End(Some((
                    close_code::PROTOCOL_ERROR,
                    "text frame is not valid UTF-8".into(),
                )));
            }
            Some(Err(WsError::Protocol(e))) => {
                return Step::End(Some((
                    u16::from(CloseCode::Protocol),
                    format!("WebSocket protocol violation: {e}"),
                )));
            }
            Some(Err(_)) if self.watch.was_too_big() => {
                return Step::End(Some((
                    close_code::TOO_BIG,
                    format!(
                        "messages before login may be at most {PRELOGIN_MAX_MESSAGE_BYTES} bytes; send a login frame first"
                    ),
                )));
            }
            Some(Err(other)) => {
                tracing::debug!(peer = %self.peer, "read error: {other}");
                return Step::End(None);
            }
        };
        if self.session.is_none() && matches!(msg, Message::Text(_) | Message::Binary(_)) {
            self.pace_before_login();
        }
        match msg {
            Message::Text(text) => match ClientFrame::decode(&text) {
                Ok(frame) => self.request(frame.id, frame.request).await,
                Err(e) => {
                    let error = ErrorBody::new(ErrorKind::InvalidArgument, e.message);
                    self.bad_frame(e.id, error).await
                }
            },
            Message::Close(_) => Step::End(None),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Step::Continue,
            Message::Binary(_) => {
                let error = ErrorBody::new(
                    ErrorKind::InvalidArgument,
                    "binary frames are not part of the protocol; send JSON text frames",
                );
                self.bad_frame(None, error).await
            }
        }
    }

    /// A frame that is not a request: answered with `error`, and counted.
    async fn bad_frame(&mut self, id: Option<u64>, error: ErrorBody) -> Step {
        self.bad_frames += 1;
        if self.bad_frames > self.config.max_bad_frames {
            return Step::End(Some((
                close_code::PROTOCOL_ERROR,
                "too many malformed frames".into(),
            )));
        }
        let out = Message::Text(ServerFrame::error(id, error).encode().into());
        self.queue(out).await
    }

    /// One request, answered through the queue.
    async fn request(&mut self, id: u64, request: Request) -> Step {
        let out = match (&self.session, request) {
            (
                None,
                Request::Login {
                    protocol,
                    uid,
                    token,
                    compact_events,
                },
            ) => match Box::pin(self.login(id, protocol, uid, token, compact_events)).await {
                Some(out) => out,
                None => return Step::Continue, // the hub queued the reply
            },
            (None, Request::Ping) => reply(
                id,
                Ok(Reply::Pong {
                    server_ts: self.hub.now_ms(),
                }),
            ),
            (None, other) => reply(
                id,
                Err(ErrorBody::new(
                    ErrorKind::NotLoggedIn,
                    format!(
                        "{} needs a logged-in session; send login first",
                        other.name()
                    ),
                )),
            ),
            (Some(s), Request::Logout) => {
                self.hub.logout(&s.uid, s.id);
                let _ = self.queue(reply(id, Ok(Reply::Done))).await;
                self.ended_on_purpose = true;
                return Step::End(Some((close_code::LOGOUT, "logged out".into())));
            }
            (Some(s), Request::RenewToken { token }) => {
                let uid = s.uid.clone();
                let renewed = self
                    .limits_of(&uid)
                    .with(|l| l.renew_token.check("token renewals"))
                    .and_then(|()| check_token(&self.config, &self.hub, &uid, Some(&token)));
                reply(
                    id,
                    renewed.map(|clock| {
                        self.token = clock;
                        Reply::Done
                    }),
                )
            }
            (Some(s), request) => {
                let s = s.clone();
                let call = request.name();
                // Awaited here, one request at a time: a sender's messages keep
                // their order even when one waits for a durable commit.
                let result = Box::pin(handle_request(
                    &self.hub,
                    &s,
                    &self.limits_of(&s.uid),
                    request,
                ))
                .await;
                if let Err(e) = &result
                    && matches!(
                        e.kind,
                        ErrorKind::TooOften | ErrorKind::JoinSameChannelTooOften
                    )
                {
                    super::metrics::METRICS
                        .rate_limited
                        .get_or_create(&super::metrics::Call { call })
                        .inc();
                }
                reply(id, result)
            }
        };
        self.queue(out).await
    }

    /// The logged-in uid's call counters.
    fn limits_of(&self, uid: &Uid) -> Arc<CallLimits> {
        match &self.limits {
            Some(l) => l.clone(),
            None => self.logins.calls_of(uid),
        }
    }

    /// A login: protocol version, token, then logins of the uid; a failure
    /// counts against the address. `None` when the hub queued the reply itself.
    async fn login(
        &mut self,
        id: u64,
        protocol: u32,
        uid: Uid,
        token: Option<String>,
        compact_events: bool,
    ) -> Option<Outbound> {
        if protocol != PROTOCOL_VERSION {
            return Some(reply(
                id,
                Err(ErrorBody::new(
                    ErrorKind::Rejected,
                    format!(
                        "protocol version {protocol} is not supported; this server speaks version {PROTOCOL_VERSION}. Use a matching rtm client"
                    ),
                )),
            ));
        }
        // The token first: only attempts that could succeed count against
        // the uid, so nobody can lock a user out by hammering logins
        // without a token.
        let checked = check_token(&self.config, &self.hub, &uid, token.as_deref())
            .and_then(|clock| self.logins.check_uid(&uid).map(|()| clock));
        let clock = match checked {
            Ok(clock) => clock,
            Err(e) => {
                let e = match e.kind {
                    ErrorKind::TooOften => e,
                    _ => self.logins.record_failure(self.peer.ip()).unwrap_or(e),
                };
                tracing::info!(peer = %self.peer, %uid, "login refused: {}", e.message);
                super::metrics::METRICS
                    .logins
                    .get_or_create(&super::metrics::Outcome {
                        result: e.kind.as_str(),
                    })
                    .inc();
                return Some(reply(id, Err(e)));
            }
        };
        if let Some(why) = self.hub.banned(&uid).await {
            tracing::info!(peer = %self.peer, %uid, "login refused: banned");
            super::metrics::METRICS
                .logins
                .get_or_create(&super::metrics::Outcome { result: "BANNED" })
                .inc();
            return Some(reply(id, Err(ErrorBody::new(ErrorKind::Rejected, why))));
        }
        let now_ms = self.hub.now_ms();
        let expires_in = clock.as_ref().map(|t| t.left(now_ms).as_secs());
        let handle = Arc::new(
            SessionHandle::new(next_session_id(), uid, self.tx.clone(), self.kill.clone())
                .with_compact_events(compact_events),
        );
        // Boxed, like every rare, large future here: an async fn's state is
        // as big as its biggest await, and every idle connection pays for it.
        let outcome = Box::pin(self.hub.login(id, handle.clone(), expires_in)).await;
        tracing::Span::current()
            .record("uid", tracing::field::display(&handle.uid))
            .record("session", handle.id);
        tracing::info!(resumed = outcome.resumed, "login");
        super::metrics::METRICS
            .logins
            .get_or_create(&super::metrics::Outcome {
                result: if outcome.resumed { "resumed" } else { "ok" },
            })
            .inc();
        self.limits = Some(self.logins.calls_of(&handle.uid));
        self.session = Some(handle);
        self.token = clock;
        // From now on the configured size applies (tungstenite enforces it).
        self.watch.set_limit(usize::MAX);
        if let Some(on_login) = self.on_login.take() {
            on_login();
        }
        None
    }

    /// Queues the connection's own reply. It never waits and never cuts the
    /// client: the read loop reads no request while the queue is above its
    /// read pause, so replies add at most one frame per request read. A
    /// client that pipelines many requests is slowed down (its reads
    /// pause), not dropped.
    async fn queue(&self, out: Outbound) -> Step {
        // A closed queue means the link is gone; the next read ends the loop.
        // A logged-in session queues through its handle, so that no reply
        // lands after the hub's last notice (shutdown, remote login).
        let _ = match &self.session {
            Some(s) => s.send_reply(out),
            None => self.tx.send_counted(out),
        };
        Step::Continue
    }

    /// Ends the session with the hub and tells the writer how to close.
    fn close(self, end: Option<(u16, String)>) -> CloseOrder {
        if let Some(s) = &self.session {
            if !self.ended_on_purpose {
                self.hub.link_down(&s.uid, s.id);
            }
            // From here on the hub's frames for this session are dropped, not queued.
            s.stop_queueing();
        }
        self.kill.cancel();
        // A client that let its queue overflow is not reading: its backlog is
        // dropped whatever the close reason (a remote login can override 4001).
        let overflowed = self.session.as_ref().is_some_and(|s| s.overflowed());
        end.map(|(code, reason)| {
            let drop_backlog = overflowed || code == close_code::SLOW_CONSUMER;
            (close_msg(code, &reason), drop_backlog)
        })
    }
}

/// How long the end of a connection may take (close frame, closing handshake).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the linger after our close frame waits for the client's.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);

/// After our close frame: stop writing and read (discarding) until the client
/// closes, for a short while. Closing a socket with unread input makes the
/// kernel send a reset, which can destroy the close frame before the client
/// reads it; draining first lets the reason arrive.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(raw: &mut S) {
    let _ = raw.shutdown().await;
    let mut buf = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(LINGER_TIMEOUT, async {
        while matches!(raw.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Writes `batch` front to back and flushes. Cancel-safe: a frame leaves
/// `batch` only when the sink has taken it, so an interrupted batch loses
/// nothing (a frame dropped from the middle of the stream would leave the
/// client waiting forever for its reply). Queue bytes are released as the
/// sink takes each frame.
async fn write_batch<S>(
    sink: &mut Sink<S>,
    batch: &mut VecDeque<Outbound>,
    load: &QueueLoad,
) -> Result<(), tokio_tungstenite::tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while !batch.is_empty() {
        std::future::poll_fn(|cx| sink.poll_ready_unpin(cx)).await?;
        if let Some(out) = batch.pop_front() {
            load.written(&out);
            sink.start_send_unpin(out)?;
        }
    }
    sink.flush().await
}
