//! One task per connection: WebSocket handshake, login, then a read loop that
//! turns each text frame into a hub call and queues the reply. A separate
//! writer task drains the session's bounded queue, feeding every frame that
//! is ready and flushing once per batch.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::collections::VecDeque;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use super::ratelimit::{LimitScale, SessionLimits};
use super::session::{Outbound, SessionHandle, next_session_id};
use crate::protocol::{
    ClientFrame, ErrorBody, ErrorKind, Event, PROTOCOL_VERSION, Reply, Request, ServerFrame,
    close_code, encode_event,
};
use crate::token::{self, TokenError};

/// Settings of each connection, fixed at server start.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// Frames a session may have queued before it counts as a slow consumer.
    pub queue_frames: usize,
    /// Largest frame accepted, in bytes; checked before the frame is parsed.
    pub max_frame_bytes: usize,
    /// Time a connection may take to send a valid login.
    pub login_timeout: Duration,
    /// Multiplier for the call-frequency limits (1 = the spec's).
    pub limit_scale: usize,
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

impl Default for ConnConfig {
    fn default() -> Self {
        super::ServerConfig::default().conn
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

fn reply(id: u64, result: Result<Reply, ErrorBody>) -> Outbound {
    let frame = match result {
        Ok(result) => ServerFrame::Ok { id, result },
        Err(error) => ServerFrame::Error {
            id: Some(id),
            error,
        },
    };
    Outbound::Frame(Message::Text(frame.encode().into()))
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
    uid: &crate::protocol::Uid,
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

/// Queues the connection's own reply, waiting for room: a client that
/// pipelines many requests is slowed down (its reads pause), not dropped.
/// Only a client that stops reading altogether for the heartbeat timeout is
/// cut off. Returns false when the connection should end.
async fn queue_reply(tx: &mpsc::Sender<Outbound>, stop: &Stop<'_>, out: Outbound) -> bool {
    tokio::select! {
        r = tokio::time::timeout(stop.patience, tx.send(out)) => matches!(r, Ok(Ok(()))),
        _ = stop.kill.cancelled() => false,
        _ = stop.shutdown.cancelled() => false,
    }
}

/// What may interrupt waiting for room in the queue.
struct Stop<'a> {
    kill: &'a CancellationToken,
    shutdown: &'a CancellationToken,
    patience: Duration,
}

/// Why queueing a reply failed: the session was killed (its own reason
/// stands), the server is stopping, or the client does not read.
fn queue_failure(stop: &Stop<'_>) -> Option<(u16, String)> {
    if stop.kill.is_cancelled() {
        None
    } else if stop.shutdown.is_cancelled() {
        Some((
            close_code::GOING_AWAY,
            "server shutting down; reconnect later".into(),
        ))
    } else {
        Some((
            close_code::SLOW_CONSUMER,
            "slow consumer: replies are not being read".into(),
        ))
    }
}

/// Serves one connection (plain TCP or TLS) until it closes, the session is
/// killed or the server shuts down.
pub async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    hub: Arc<Hub>,
    config: Arc<ConnConfig>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = match tokio::time::timeout(
        config.login_timeout,
        tokio_tungstenite::accept_async_with_config(stream, Some(config.websocket_config())),
    )
    .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "handshake timed out");
            return;
        }
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Outbound>(config.queue_frames);
    let kill = CancellationToken::new();

    // How the connection ends, for the writer: `Some(close frame)` to send,
    // or `None` when the socket is already gone.
    let (close_tx, mut close_rx) = tokio::sync::oneshot::channel::<Option<(Message, bool)>>();

    // The writer: drains the queue in batches, feeding each frame and flushing
    // once per batch. When the end is announced it sends what is still queued
    // (unless the client is a slow consumer, whose backlog is dropped) and the
    // close frame, so the client learns why. It hands the sink back so the
    // connection can finish the closing handshake.
    let writer = tokio::spawn(async move {
        // Empty until used: an idle connection should cost as little as possible.
        let mut batch: VecDeque<Outbound> = VecDeque::new();
        let mut incoming = Vec::new();
        let close = loop {
            let n = tokio::select! {
                biased;
                close = &mut close_rx => break close.ok().flatten(),
                n = rx.recv_many(&mut incoming, 64) => n,
            };
            if n == 0 {
                break None;
            }
            batch.extend(incoming.drain(..));
            let write = async {
                while let Some(out) = batch.pop_front() {
                    write_one(&mut sink, out).await?;
                }
                sink.flush().await
            };
            tokio::select! {
                biased;
                close = &mut close_rx => break close.ok().flatten(),
                r = write => if r.is_err() { break None },
            }
        };
        if let Some((close, drop_backlog)) = close {
            if !drop_backlog {
                // Unsent frames of the interrupted batch first, then the rest, in order.
                while let Some(out) = batch.pop_front().or_else(|| rx.try_recv().ok()) {
                    if write_one(&mut sink, out).await.is_err() {
                        break;
                    }
                }
            }
            let _ = sink.send(close).await;
        }
        sink
    });

    let mut limits = SessionLimits::new(LimitScale(config.limit_scale));
    let mut session: Option<Arc<SessionHandle>> = None;
    let mut token_clock: Option<TokenClock> = None;
    let mut last_seen = Instant::now();
    let mut bad_frames = 0u32;
    let login_deadline = Instant::now() + config.login_timeout;
    let mut ping = tokio::time::interval(hub.timing().heartbeat_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    // Set when the session ended on purpose (logout, expired token): the user
    // leaves at once instead of getting the grace of a dropped link.
    let mut ended_on_purpose = false;
    let stop = Stop {
        kill: &kill,
        shutdown: &shutdown,
        patience: hub.timing().heartbeat_timeout,
    };
    // Requests are read only while the queue has room for their replies and
    // for pushed events; a client that pipelines faster than it reads is
    // slowed down here instead of overflowing the queue.
    let read_room = (config.queue_frames / 2).max(1);
    // Why the loop ended: the close code and reason to send, or None when the link is gone.
    let end: Option<(u16, String)> = loop {
        // Tokio's timers stop while the machine sleeps and the wall clock
        // does not, so the token deadlines are worked out afresh from the
        // wall clock on every turn; the heartbeat makes a turn at least once
        // per interval, so an expiry slept through is noticed that soon.
        let now = Instant::now();
        let token_left = token_clock.as_ref().map(|t| t.left(hub.now_ms()));
        let token_warn_at = token_clock
            .as_ref()
            .zip(token_left)
            .filter(|(t, _)| !t.warned)
            .map(|(_, left)| now + left.saturating_sub(TOKEN_WARNING));
        let token_expires_at = token_left.map(|left| now + left);
        tokio::select! {
            // The server is shutting down.
            _ = shutdown.cancelled() => {
                break Some((close_code::GOING_AWAY, "server shutting down; reconnect later".into()));
            }
            // The hub killed this session (slow consumer, remote login …).
            _ = kill.cancelled() => {
                break session.as_ref().and_then(|s| s.close_frame()).map(|f| (f.code.into(), f.reason.to_string()));
            }
            // A login must come in time.
            _ = tokio::time::sleep_until(login_deadline), if session.is_none() => {
                break Some((close_code::LOGIN_TIMEOUT, "no login received in time; send a login frame first".into()));
            }
            // The token is about to expire: tell the client to renew it.
            _ = tokio::time::sleep_until(token_warn_at.unwrap_or(login_deadline)), if token_warn_at.is_some() => {
                if let (Some(s), Some(t)) = (&session, token_clock.as_mut()) {
                    t.warned = true;
                    let left = t.left(hub.now_ms()).as_secs();
                    s.send(Message::Text(encode_event(&Event::TokenPrivilegeWillExpire { expires_in_s: left }).into()));
                }
            }
            // The token expired without renewal: the session is over.
            _ = tokio::time::sleep_until(token_expires_at.unwrap_or(login_deadline)), if token_expires_at.is_some() => {
                if let Some(s) = &session {
                    s.send(Message::Text(encode_event(&Event::TokenExpired).into()));
                    hub.logout(&s.uid, s.id);
                }
                ended_on_purpose = true;
                break Some((close_code::TOKEN_EXPIRED, "the login token expired; log in again with a fresh token".into()));
            }
            // Heartbeat: ping, and give up on a silent link.
            _ = ping.tick() => {
                if last_seen.elapsed() > hub.timing().heartbeat_timeout {
                    break Some((close_code::HEARTBEAT_TIMEOUT, "no traffic within the heartbeat timeout".into()));
                }
                let _ = tx.try_send(Outbound::Frame(Message::Ping(Default::default())));
            }
            // The queue is more than half full: wait until the writer has
            // drained it to half before reading more requests (heartbeats
            // and the other arms still run meanwhile).
            _ = tx.reserve_many(read_room), if tx.capacity() < read_room => {}
            // The next frame from the client.
            msg = stream.next(), if tx.capacity() >= read_room => {
                last_seen = Instant::now();
                let msg = match msg {
                    None => break None,
                    Some(Err(e)) => {
                        use tokio_tungstenite::tungstenite::Error as WsError;
                        use tokio_tungstenite::tungstenite::error::CapacityError;
                        match e {
                            WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                                break Some((close_code::TOO_BIG, format!("frame of {size} bytes is larger than the limit of {max_size}")));
                            }
                            WsError::Utf8(_) => break Some((close_code::PROTOCOL_ERROR, "text frame is not valid UTF-8".into())),
                            other => {
                                tracing::debug!(%peer, "read error: {other}");
                                break None;
                            }
                        }
                    }
                    Some(Ok(m)) => m,
                };
                let text = match msg {
                    Message::Text(t) => t,
                    Message::Close(_) => break None,
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                    Message::Binary(_) => {
                        bad_frames += 1;
                        if bad_frames > config.max_bad_frames {
                            break Some((close_code::PROTOCOL_ERROR, "too many malformed frames".into()));
                        }
                        let out = error_frame(None, ErrorBody::new(ErrorKind::InvalidArgument, "binary frames are not part of the protocol; send JSON text frames"));
                        if !Box::pin(queue_reply(&tx, &stop, out)).await {
                            match queue_failure(&stop) {
                                Some(end) => break Some(end),
                                None => continue, // the kill arm ends the loop with its reason
                            }
                        }
                        continue;
                    }
                };
                let frame = match ClientFrame::decode(&text) {
                    Ok(f) => f,
                    Err(e) => {
                        bad_frames += 1;
                        if bad_frames > config.max_bad_frames {
                            break Some((close_code::PROTOCOL_ERROR, "too many malformed frames".into()));
                        }
                        let out = error_frame(e.id, ErrorBody::new(ErrorKind::InvalidArgument, e.message));
                        if !Box::pin(queue_reply(&tx, &stop, out)).await {
                            match queue_failure(&stop) {
                                Some(end) => break Some(end),
                                None => continue, // the kill arm ends the loop with its reason
                            }
                        }
                        continue;
                    }
                };
                let id = frame.id;
                let out = match (&session, frame.request) {
                    (None, Request::Login { protocol, uid, token }) => {
                        if protocol != PROTOCOL_VERSION {
                            reply(id, Err(ErrorBody::new(ErrorKind::Rejected, format!(
                                "protocol version {protocol} is not supported; this server speaks version {PROTOCOL_VERSION}. Use a matching rtm client"))))
                        } else if let Err(e) = hub.check_failed_logins(peer.ip()) {
                            reply(id, Err(e))
                        } else {
                            // The token first: only attempts that could succeed count
                            // against the uid, so nobody can lock a user out by
                            // hammering logins without a token.
                            match check_token(&config, &hub, &uid, token.as_deref()).and_then(|clock| {
                                hub.check_login_rate(&uid).map(|()| clock)
                            }) {
                                Err(e) => {
                                    if e.kind != ErrorKind::TooOften {
                                        hub.record_failed_login(peer.ip());
                                    }
                                    tracing::info!(%peer, %uid, "login refused: {}", e.message);
                                    reply(id, Err(e))
                                }
                                Ok(clock) => {
                                    let expires_in = clock.as_ref().map(|t| t.left(hub.now_ms()).as_secs());
                                    let handle = Arc::new(SessionHandle::new(next_session_id(), uid, tx.clone(), kill.clone()));
                                    // Boxed, like every rare, large future here: an
                                    // async fn's state is as big as its biggest
                                    // await, and every idle connection pays for it.
                                    let outcome = Box::pin(hub.login(id, handle.clone(), expires_in)).await;
                                    tracing::info!(%peer, uid = %handle.uid, resumed = outcome.resumed, "login");
                                    session = Some(handle);
                                    token_clock = clock;
                                    continue; // the hub queued the reply
                                }
                            }
                        }
                    }
                    (None, Request::Ping) => reply(id, Ok(Reply::Pong { server_ts: hub.now_ms() })),
                    (None, other) => reply(id, Err(ErrorBody::new(ErrorKind::NotLoggedIn,
                        format!("{} needs a logged-in session; send login first", other.name())))),
                    (Some(s), Request::Logout) => {
                        hub.logout(&s.uid, s.id);
                        let _ = Box::pin(queue_reply(&tx, &stop, reply(id, Ok(Reply::Done)))).await;
                        ended_on_purpose = true;
                        break Some((close_code::LOGOUT, "logged out".into()));
                    }
                    (Some(s), Request::RenewToken { token }) => {
                        let result = limits.renew_token.check("token renewals").and_then(|()| {
                            check_token(&config, &hub, &s.uid, Some(&token))
                        });
                        match result {
                            Ok(clock) => {
                                token_clock = clock;
                                reply(id, Ok(Reply::Done))
                            }
                            Err(e) => reply(id, Err(e)),
                        }
                    }
                    (Some(s), request) => {
                        let s = s.clone();
                        // Awaited here, one request at a time: a sender's messages keep
                        // their order even when one waits for a durable commit.
                        reply(id, Box::pin(handle_request(&hub, &s, &mut limits, request)).await)
                    }
                };
                if !Box::pin(queue_reply(&tx, &stop, out)).await {
                    match queue_failure(&stop) {
                        Some(end) => break Some(end),
                        None => continue, // the kill arm ends the loop with its reason
                    }
                }
            }
        }
    };

    if let Some(s) = &session
        && !ended_on_purpose
    {
        hub.link_down(&s.uid, s.id);
    }
    // From here on the hub's frames for this session are dropped, not queued.
    if let Some(s) = &session {
        s.stop_queueing();
    }
    kill.cancel();
    let closing = end.is_some();
    let abort = writer.abort_handle();
    // A client that let its queue overflow is not reading: its backlog is
    // dropped whatever the close reason (a remote login can override 4001).
    let overflowed = session.as_ref().is_some_and(|s| s.overflowed());
    let _ = close_tx.send(end.map(|(code, reason)| {
        let drop_backlog = overflowed || code == close_code::SLOW_CONSUMER;
        (close_msg(code, &reason), drop_backlog)
    }));
    drop(session);
    drop(tx);
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

/// How long the end of a connection may take (close frame, closing handshake).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// After our close frame: stop writing and read (discarding) until the client
/// closes, for a short while. Closing a socket with unread input makes the
/// kernel send a reset, which can destroy the close frame before the client
/// reads it; draining first lets the reason arrive.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(raw: &mut S) {
    let _ = raw.shutdown().await;
    let mut buf = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while matches!(raw.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

async fn write_one<S>(
    sink: &mut futures_util::stream::SplitSink<tokio_tungstenite::WebSocketStream<S>, Message>,
    out: Outbound,
) -> Result<(), tokio_tungstenite::tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match out {
        Outbound::Frame(msg) => sink.feed(msg).await,
        // Everything before the marker must be on the wire first.
        Outbound::Written(done) => {
            sink.flush().await?;
            let _ = done.send(());
            Ok(())
        }
    }
}

fn error_frame(id: Option<u64>, error: ErrorBody) -> Outbound {
    Outbound::Frame(Message::Text(ServerFrame::error(id, error).encode().into()))
}

/// A request of a logged-in session: limits first, then the hub.
async fn handle_request(
    hub: &Arc<Hub>,
    s: &Arc<SessionHandle>,
    limits: &mut SessionLimits,
    request: Request,
) -> Result<Reply, ErrorBody> {
    let uid = &s.uid;
    match request {
        Request::Login { .. } => Err(ErrorBody::new(
            ErrorKind::AlreadyLogin,
            format!("already logged in as {uid}; log out first"),
        )),
        Request::Logout => Ok(Reply::Done), // handled by the caller
        Request::Ping => Ok(Reply::Pong {
            server_ts: hub.now_ms(),
        }),
        Request::RenewToken { .. } => Ok(Reply::Done), // handled by the caller
        Request::SendPeerMessage {
            peer_id,
            message,
            options,
        } => {
            message.validate()?;
            limits.messages.check("messages")?;
            hub.send_peer_message(uid, &peer_id, &message, options)
                .await
        }
        Request::Join { channel_id } => {
            limits.joins.check("joins")?;
            limits.join_channel(&channel_id)?;
            hub.join(s, &channel_id)
        }
        Request::Leave { channel_id } => hub.leave(uid, &channel_id),
        Request::SendChannelMessage {
            channel_id,
            message,
        } => {
            message.validate()?;
            limits.messages.check("messages")?;
            hub.send_channel_message(uid, &channel_id, &message)
        }
        Request::GetMembers { channel_id } => {
            limits.get_members.check("member list requests")?;
            hub.get_members(uid, &channel_id)
        }
        Request::GetChannelMemberCount { channel_ids } => {
            limits.member_count.check("member count queries")?;
            hub.member_counts(&channel_ids)
        }
        Request::QueryPeersOnlineStatus { peer_ids } => {
            limits.query_status.check("online status queries")?;
            hub.query_online(&peer_ids)
        }
        Request::SubscribePeersOnlineStatus { peer_ids } => {
            limits.subscribe.check("subscribe calls")?;
            hub.subscribe(uid, &peer_ids)
        }
        Request::UnsubscribePeersOnlineStatus { peer_ids } => {
            limits.unsubscribe.check("unsubscribe calls")?;
            hub.unsubscribe(uid, &peer_ids)
        }
        Request::QueryPeersBySubscriptionOption { option: _ } => {
            limits.query_subscription.check("subscription queries")?;
            hub.subscriptions(uid)
        }
        Request::SetLocalUserAttributes { attributes } => {
            limits.user_attr_writes.check("user attribute writes")?;
            hub.update_user_attributes(uid, &attributes, |m| *m = attributes.clone())
        }
        Request::AddOrUpdateLocalUserAttributes { attributes } => {
            limits.user_attr_writes.check("user attribute writes")?;
            hub.update_user_attributes(uid, &attributes, |m| {
                m.extend(attributes.iter().map(|(k, v)| (k.clone(), v.clone())))
            })
        }
        Request::DeleteLocalUserAttributesByKeys { keys } => {
            limits.user_attr_writes.check("user attribute writes")?;
            hub.update_user_attributes(uid, &Default::default(), |m| {
                keys.iter().for_each(|k| {
                    m.remove(k);
                })
            })
        }
        Request::ClearLocalUserAttributes => {
            limits.user_attr_writes.check("user attribute writes")?;
            hub.update_user_attributes(uid, &Default::default(), |m| m.clear())
        }
        Request::GetUserAttributes { user_id, keys } => {
            limits.user_attr_reads.check("user attribute reads")?;
            hub.get_user_attributes(&user_id, keys.as_deref())
        }
        Request::SetChannelAttributes {
            channel_id,
            attributes,
            options,
        } => {
            limits
                .channel_attr_writes
                .check("channel attribute writes")?;
            let all = attributes.clone();
            hub.update_channel_attributes(uid, &channel_id, attributes, options, move |m| {
                *m = all.clone()
            })
            .await
        }
        Request::AddOrUpdateChannelAttributes {
            channel_id,
            attributes,
            options,
        } => {
            limits
                .channel_attr_writes
                .check("channel attribute writes")?;
            let add = attributes.clone();
            hub.update_channel_attributes(uid, &channel_id, attributes, options, move |m| {
                m.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())))
            })
            .await
        }
        Request::DeleteChannelAttributesByKeys {
            channel_id,
            keys,
            options,
        } => {
            limits
                .channel_attr_writes
                .check("channel attribute writes")?;
            hub.update_channel_attributes(uid, &channel_id, Default::default(), options, move |m| {
                keys.iter().for_each(|k| {
                    m.remove(k);
                })
            })
            .await
        }
        Request::ClearChannelAttributes {
            channel_id,
            options,
        } => {
            limits
                .channel_attr_writes
                .check("channel attribute writes")?;
            hub.update_channel_attributes(uid, &channel_id, Default::default(), options, |m| {
                m.clear()
            })
            .await
        }
        Request::GetChannelAttributes { channel_id, keys } => {
            limits.channel_attr_reads.check("channel attribute reads")?;
            hub.get_channel_attributes(&channel_id, keys.as_deref())
                .await
        }
    }
}
