//! One task per connection: WebSocket handshake, login, then a read loop that
//! turns each text frame into a hub call and queues the reply. A separate
//! writer task drains the session's bounded queue, feeding every frame that
//! is ready and flushing once per batch.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use super::ratelimit::{LimitScale, SessionLimits};
use super::session::{Outbound, SessionHandle, next_session_id};
use crate::protocol::{
    ClientFrame, ErrorBody, ErrorKind, PROTOCOL_VERSION, Reply, Request, ServerFrame, close_code,
};

/// Settings of each connection, fixed at server start.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// Frames a session may have queued before it counts as a slow consumer.
    pub queue_frames: usize,
    /// Largest frame accepted, in bytes; checked before the frame is parsed.
    pub max_frame_bytes: usize,
    /// Time a connection may take to send a valid login.
    pub login_timeout: Duration,
    /// No traffic at all for this long means the link is dead.
    pub heartbeat_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// Multiplier for the call-frequency limits (1 = the spec's).
    pub limit_scale: usize,
    /// Malformed frames tolerated per connection before it is closed.
    pub max_bad_frames: u32,
}

impl Default for ConnConfig {
    fn default() -> Self {
        Self {
            queue_frames: 4096,
            max_frame_bytes: 64 * 1024,
            login_timeout: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(15),
            heartbeat_interval: Duration::from_secs(5),
            limit_scale: 1,
            max_bad_frames: 100_000,
        }
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

/// Serves one TCP connection until it closes, the session is killed or the
/// server shuts down.
pub async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    hub: Arc<Hub>,
    config: Arc<ConnConfig>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
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
    let (close_tx, mut close_rx) = tokio::sync::oneshot::channel::<Option<Message>>();

    // The writer: drains the queue in batches, feeding each frame and flushing
    // once per batch. When the end is announced it drops whatever is still
    // queued (a slow consumer's backlog) and sends the close frame, so the
    // client learns why even if it stopped reading.
    let writer = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64);
        let close = loop {
            let n = tokio::select! {
                biased;
                close = &mut close_rx => break close.ok().flatten(),
                n = rx.recv_many(&mut batch, 64) => n,
            };
            if n == 0 {
                break None;
            }
            let write = async {
                for out in batch.drain(..) {
                    match out {
                        Outbound::Frame(msg) => sink.feed(msg).await?,
                        // Everything before the marker must be on the wire first.
                        Outbound::Written(done) => {
                            sink.flush().await?;
                            let _ = done.send(());
                        }
                    }
                }
                sink.flush().await
            };
            tokio::select! {
                biased;
                close = &mut close_rx => break close.ok().flatten(),
                r = write => if r.is_err() { break None },
            }
        };
        if let Some(close) = close {
            // A graceful end (logout reply, remote-login or shutdown notice)
            // still delivers what was queued before it; a slow consumer's
            // backlog is dropped.
            let slow = matches!(&close, Message::Close(Some(f)) if u16::from(f.code) == close_code::SLOW_CONSUMER);
            if !slow {
                while let Ok(out) = rx.try_recv() {
                    let fed = match out {
                        Outbound::Frame(msg) => sink.feed(msg).await,
                        Outbound::Written(done) => sink.flush().await.map(|()| {
                            let _ = done.send(());
                        }),
                    };
                    if fed.is_err() {
                        break;
                    }
                }
            }
            let _ = sink.send(close).await;
        }
        let _ = sink.close().await;
    });

    let mut limits = SessionLimits::new(LimitScale(config.limit_scale));
    let mut session: Option<Arc<SessionHandle>> = None;
    let mut last_seen = Instant::now();
    let mut bad_frames = 0u32;
    let login_deadline = Instant::now() + config.login_timeout;
    let mut ping = tokio::time::interval(config.heartbeat_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    // Why the loop ended: (close code, reason) to send, and whether the user logged out.
    let mut logged_out = false;
    let end: Option<(u16, String)> = loop {
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
            // Heartbeat: ping, and give up on a silent link.
            _ = ping.tick() => {
                if last_seen.elapsed() > config.heartbeat_timeout {
                    break Some((close_code::HEARTBEAT_TIMEOUT, "no traffic within the heartbeat timeout".into()));
                }
                let _ = tx.try_send(Outbound::Frame(Message::Ping(Default::default())));
            }
            // The next frame from the client.
            msg = stream.next() => {
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
                        let _ = tx.try_send(Outbound::Frame(Message::Text(ServerFrame::error(None, ErrorBody::new(
                            ErrorKind::InvalidArgument, "binary frames are not part of the protocol; send JSON text frames"))
                            .encode().into())));
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
                        let out = ServerFrame::error(e.id, ErrorBody::new(ErrorKind::InvalidArgument, e.message));
                        if tx.try_send(Outbound::Frame(Message::Text(out.encode().into()))).is_err() {
                            break Some((close_code::SLOW_CONSUMER, "slow consumer: too many replies queued".into()));
                        }
                        continue;
                    }
                };
                let id = frame.id;
                match (&session, frame.request) {
                    (None, Request::Login { protocol, uid, token: _ }) => {
                        if protocol != PROTOCOL_VERSION {
                            let _ = tx.try_send(reply(id, Err(ErrorBody::new(ErrorKind::Rejected, format!(
                                "protocol version {protocol} is not supported; this server speaks version {PROTOCOL_VERSION}. Use a matching rtm client")))));
                            continue;
                        }
                        let handle = Arc::new(SessionHandle::new(next_session_id(), uid, tx.clone(), kill.clone()));
                        let outcome = hub.login(id, handle.clone()).await;
                        tracing::info!(%peer, uid = %handle.uid, resumed = outcome.resumed, "login");
                        session = Some(handle);
                    }
                    (None, Request::Ping) => {
                        let _ = tx.try_send(reply(id, Ok(Reply::Pong { server_ts: hub.now_ms() })));
                    }
                    (None, other) => {
                        let _ = tx.try_send(reply(id, Err(ErrorBody::new(ErrorKind::NotLoggedIn,
                            format!("{} needs a logged-in session; send login first", other.name())))));
                    }
                    (Some(s), Request::Logout) => {
                        hub.logout(&s.uid, s.id);
                        let _ = tx.try_send(reply(id, Ok(Reply::Done)));
                        logged_out = true;
                        break Some((close_code::LOGOUT, "logged out".into()));
                    }
                    (Some(s), request) => {
                        let s = s.clone();
                        // Awaited here, one request at a time: a sender's messages keep
                        // their order even when one waits for a durable commit.
                        let result = handle_request(&hub, &s, &mut limits, request).await;
                        if !s.queue(reply(id, result)) && !s.is_alive() {
                            continue; // the kill arm ends the loop
                        }
                    }
                }
            }
        }
    };

    if let Some(s) = &session
        && !logged_out
    {
        hub.link_down(&s.uid, s.id);
    }
    // From here on the hub's frames for this session are dropped, not queued.
    kill.cancel();
    let abort = writer.abort_handle();
    let _ = close_tx.send(end.map(|(code, reason)| close_msg(code, &reason)));
    drop(session);
    drop(tx);
    // The writer ends after the close frame, or when the queue's last sender
    // (a hub-held session handle) is gone; don't wait on a stuck socket forever.
    if tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
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
        Request::RenewToken { .. } => {
            limits.renew_token.check("token renewals")?;
            Ok(Reply::Done)
        }
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
