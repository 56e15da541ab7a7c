//! The connection task of a client: connect, log in, pump frames, and on a
//! lost link reconnect with exponential backoff and restore what the user had
//! (channels, user attributes, presence subscriptions).

use std::sync::Arc;

use super::sdk_log::sdk_event;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::{
    ChannelEvent, ClientEvent, ConnectionChangeReason as Reason, ConnectionState as CS, Link,
    LoginInfo, RtmError, Shared,
};
use crate::protocol::{
    ClientFrame, ErrorKind, Event, PROTOCOL_VERSION, Reply, Request, ServerFrame, Uid, close_code,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Stored messages acknowledged at once when this many are unacknowledged:
/// well below the server's window (256 by default), so it never waits.
const ACK_EVERY_MESSAGES: usize = 64;

/// Otherwise acknowledged this long after the first unacknowledged one.
const ACK_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Acknowledgements owed to the server on this connection. A message is
/// acknowledged only once the application has it (it is on the event
/// stream), so the server deletes nothing the application has not seen.
#[derive(Default)]
struct Acks {
    /// Highest `message_id` received and not yet acknowledged.
    up_to: Option<u64>,
    unacked: usize,
    /// When the owed acknowledgement goes out at the latest.
    due: Option<Instant>,
}

impl Acks {
    /// Notes a stored message; true when the acknowledgement should go now.
    fn received(&mut self, id: u64) -> bool {
        self.up_to = Some(self.up_to.map_or(id, |u| u.max(id)));
        self.unacked += 1;
        self.due.get_or_insert_with(|| Instant::now() + ACK_DELAY);
        self.unacked >= ACK_EVERY_MESSAGES
    }

    /// The frame that settles what is owed, if anything.
    fn take_frame(&mut self, shared: &Shared) -> Option<String> {
        let up_to = self.up_to.take()?;
        self.unacked = 0;
        self.due = None;
        // Fire and forget: the `ok` reply matches no pending request and is
        // ignored; a lost acknowledgement only means a repeat, dropped below.
        let id = shared
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(
            ClientFrame {
                id,
                request: Request::AckOffline { up_to },
            }
            .encode(),
        )
    }
}

/// How one connected period ended.
enum LinkEnd {
    /// Dropped, timed out or closed by the server: reconnect.
    Lost,
    /// The same uid logged in elsewhere: stop.
    RemoteLogin,
    /// The token expired: stop.
    TokenExpired,
    /// The operator banned the uid: stop.
    Banned,
    /// `logout` (or the drop of the last handle) asked us to stop, or the
    /// server confirmed a logout.
    Cancelled,
}

/// Why connect + login failed.
enum LoginFail {
    /// The server refused (bad uid, bad token …): do not retry — unless the
    /// refusal is [`transient`] and the client is reconnecting.
    Refused(RtmError),
    /// Could not reach the server, or it went away mid-login: retry.
    Unreachable(RtmError),
    Timeout,
}

/// A refusal that says "not now" rather than "no": the server's login limit
/// (two drops in a row make the third login of a second TOO_OFTEN), a busy
/// server, a timeout. While reconnecting these are retried with backoff;
/// only a real rejection (bad or expired token, banned …) ends the session.
fn transient(e: &RtmError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::TooOften
            | ErrorKind::JoinSameChannelTooOften
            | ErrorKind::ServerBusy
            | ErrorKind::Timeout
    )
}

/// What a pending `login` gets when `logout` (or dropping the client) stops it.
fn login_cancelled() -> RtmError {
    RtmError::NotLoggedIn("the login was cancelled by logout (or by dropping the client)")
}

/// Why one server could not be used, for the error of a first login that
/// found no server.
fn reason_of(fail: &LoginFail, login_timeout: std::time::Duration) -> String {
    match fail {
        LoginFail::Refused(e) => e.to_string(),
        LoginFail::Unreachable(RtmError::Connect { reason, .. }) => reason.clone(),
        LoginFail::Unreachable(e) => e.to_string(),
        LoginFail::Timeout => format!("no login reply within {} s", login_timeout.as_secs()),
    }
}

/// The error of a first login after every one of several servers failed
/// (`tried`: each server with why). All timed out: a timeout. Otherwise
/// the last server's refusal "for now" (busy …) if that is how it ended,
/// else a connect error that names every server and its reason.
fn no_server_error(
    tried: &[(String, String)],
    all_timeouts: bool,
    last: LoginFail,
    login_timeout: std::time::Duration,
) -> (Reason, RtmError) {
    match last {
        _ if all_timeouts => (
            Reason::LoginTimeout,
            RtmError::Timeout(login_timeout.as_secs()),
        ),
        LoginFail::Refused(e) => (Reason::LoginFailure, e),
        _ => (
            Reason::LoginFailure,
            RtmError::Connect {
                url: tried
                    .iter()
                    .map(|(u, _)| u.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: tried
                    .iter()
                    .map(|(u, r)| format!("{u}: {r}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        ),
    }
}

/// The session's connection task. With several servers it tries them in
/// turn (see [`super::RtmClient::with_servers`]): on a failed try the next
/// server is tried at once, and the backoff is waited only after a full
/// round of the list failed; a lost link starts the next round with the
/// server after the lost one. With one server this is plain reconnection
/// with backoff.
pub(super) async fn run(
    shared: Arc<Shared>,
    uid: Uid,
    first_login: oneshot::Sender<Result<LoginInfo, RtmError>>,
    cancel: CancellationToken,
) {
    let mut first_login = Some(first_login);
    let mut backoff = shared.config.reconnect_initial;
    let count = shared.urls.len().max(1);
    // The index of the server tried next, and how many in a row failed in
    // the current round.
    let mut next = 0;
    let mut failed = 0;
    // The first login's failures so far: each server with why.
    let mut tried: Vec<(String, String)> = Vec::new();
    let mut all_timeouts = true;
    shared.set_state(CS::Connecting, Reason::Login);
    loop {
        let url = shared.urls.get(next).cloned().unwrap_or_default();
        let token = shared.lock().token.clone();
        let attempt = tokio::select! {
            _ = cancel.cancelled() => {
                if let Some(tx) = first_login.take() {
                    let _ = tx.send(Err(login_cancelled()));
                }
                return;
            }
            r = tokio::time::timeout(shared.config.login_timeout, connect_and_login(&url, &shared.config, &uid, token)) => r,
        };
        let attempt = attempt.unwrap_or(Err(LoginFail::Timeout));
        match attempt {
            Ok((ws, info)) => {
                backoff = shared.config.reconnect_initial;
                failed = 0;
                let (out_tx, out_rx) = mpsc::unbounded_channel();
                {
                    let mut st = shared.lock();
                    st.out = Some(out_tx);
                    st.server = Some(url.clone());
                    // After a reconnection requests wait for the restore.
                    st.ready = first_login.is_some();
                }
                if count > 1 {
                    sdk_event!(INFO, server = %url, resumed = info.resumed, "logged in");
                }
                shared.set_state(CS::Connected, Reason::LoginSuccess);
                shared.link_changed.notify_waiters();
                if let Some(expires) = info.token_expires_in_s {
                    sdk_event!(INFO, expires, "token expiry announced");
                }
                match first_login.take() {
                    Some(tx) => {
                        let _ = tx.send(Ok(info));
                    }
                    None => {
                        // A fresh session after a reconnection: the server
                        // ended the invitations of the old one.
                        if !info.resumed {
                            shared.end_invitations();
                        }
                        tokio::spawn(restore(shared.clone()));
                    }
                }
                let end = pump(&shared, ws, out_rx, &cancel).await;
                {
                    let mut st = shared.lock();
                    st.out = None;
                    st.ready = false;
                }
                shared.fail_pending();
                match end {
                    LinkEnd::Lost => {
                        shared.set_state(CS::Reconnecting, Reason::Interrupted);
                        // The next round starts with the server after this one.
                        next = (next + 1) % count;
                    }
                    LinkEnd::RemoteLogin => {
                        shared.set_state(CS::Aborted, Reason::RemoteLogin);
                        clear_session(&shared);
                        return;
                    }
                    LinkEnd::TokenExpired => {
                        shared.set_state(CS::Aborted, Reason::TokenExpired);
                        shared.emit(ClientEvent::TokenExpired);
                        clear_session(&shared);
                        return;
                    }
                    LinkEnd::Banned => {
                        shared.set_state(CS::Aborted, Reason::BannedByServer);
                        clear_session(&shared);
                        return;
                    }
                    LinkEnd::Cancelled => return,
                }
            }
            Err(fail) => {
                let first = first_login.is_some();
                // Another server of the list is still to be tried in this round.
                let more = failed + 1 < count;
                match (fail, first) {
                    // While reconnecting, "not now" is retried like a lost link.
                    (LoginFail::Refused(e), false) if transient(&e) => {
                        tracing::info!(server = %url, "reconnection refused for now ({e}); retrying");
                    }
                    // At the first login a busy server sends us to the next.
                    (fail @ LoginFail::Refused(_), true)
                        if more && matches!(&fail, LoginFail::Refused(e) if transient(e)) =>
                    {
                        all_timeouts = false;
                        tried.push((url.clone(), reason_of(&fail, shared.config.login_timeout)));
                    }
                    (LoginFail::Refused(e), _) => {
                        // An expired token found while reconnecting ends the
                        // session as if it had expired while connected.
                        if e.kind() == ErrorKind::TokenExpired && !first {
                            shared.set_state(CS::Aborted, Reason::TokenExpired);
                            shared.emit(ClientEvent::TokenExpired);
                        } else {
                            shared.set_state(CS::Disconnected, Reason::LoginFailure);
                        }
                        clear_session(&shared);
                        if let Some(tx) = first_login.take() {
                            let _ = tx.send(Err(e));
                        }
                        return;
                    }
                    // At the first login an unreachable server sends us to
                    // the next; when it was the last, the login fails.
                    (fail @ (LoginFail::Timeout | LoginFail::Unreachable(_)), true) => {
                        all_timeouts &= matches!(fail, LoginFail::Timeout);
                        if more {
                            sdk_event!(INFO, server = %url, "cannot log in there; trying the next server");
                            tried
                                .push((url.clone(), reason_of(&fail, shared.config.login_timeout)));
                        } else {
                            let (reason, error) = match fail {
                                _ if count == 1 => match fail {
                                    LoginFail::Unreachable(e) | LoginFail::Refused(e) => {
                                        (Reason::LoginFailure, e)
                                    }
                                    LoginFail::Timeout => (
                                        Reason::LoginTimeout,
                                        RtmError::Timeout(shared.config.login_timeout.as_secs()),
                                    ),
                                },
                                fail => {
                                    tried.push((
                                        url.clone(),
                                        reason_of(&fail, shared.config.login_timeout),
                                    ));
                                    no_server_error(
                                        &tried,
                                        all_timeouts,
                                        fail,
                                        shared.config.login_timeout,
                                    )
                                }
                            };
                            shared.set_state(CS::Disconnected, reason);
                            clear_session(&shared);
                            if let Some(tx) = first_login.take() {
                                let _ = tx.send(Err(error));
                            }
                            return;
                        }
                    }
                    // While reconnecting, keep trying.
                    (LoginFail::Timeout | LoginFail::Unreachable(_), false) => {}
                }
                failed += 1;
                next = (next + 1) % count;
                if failed < count {
                    // A dead server costs one failed try: the next one now.
                    continue;
                }
                failed = 0;
            }
        }
        // Wait before the next attempt (the next round, with several
        // servers); logout interrupts the wait.
        tokio::select! {
            _ = cancel.cancelled() => {
                if let Some(tx) = first_login.take() {
                    let _ = tx.send(Err(login_cancelled()));
                }
                return;
            }
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(shared.config.reconnect_max);
    }
}

/// After a session ended for good, nothing is left to restore.
fn clear_session(shared: &Shared) {
    {
        let mut st = shared.lock();
        st.joined.clear();
        st.attributes.clear();
        st.subscriptions.clear();
        st.task = None;
    }
    shared.end_invitations();
}

async fn connect_and_login(
    url: &str,
    config: &super::ClientConfig,
    uid: &Uid,
    token: Option<String>,
) -> Result<(Ws, LoginInfo), LoginFail> {
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(1024 * 1024));
    let connector = if url.starts_with("wss://") {
        // A bad CA file will not get better by retrying.
        Some(
            super::tls::connector(config.ca_file.as_deref()).map_err(|reason| {
                LoginFail::Refused(RtmError::Connect {
                    url: url.to_string(),
                    reason,
                })
            })?,
        )
    } else {
        None
    };
    let (mut ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(ws_config), true, connector)
            .await
            .map_err(|e| {
                LoginFail::Unreachable(RtmError::Connect {
                    url: url.to_string(),
                    reason: e.to_string(),
                })
            })?;
    let login = ClientFrame {
        id: 0,
        request: Request::Login {
            protocol: PROTOCOL_VERSION,
            uid: uid.clone(),
            token,
            compact_events: config.compact_events,
        },
    };
    let lost = |e: &dyn std::fmt::Display| {
        LoginFail::Unreachable(RtmError::Connect {
            url: url.to_string(),
            reason: e.to_string(),
        })
    };
    ws.send(Message::Text(login.encode().into()))
        .await
        .map_err(|e| lost(&e))?;
    loop {
        let msg = match ws.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(lost(&e)),
            None => return Err(lost(&"the server closed the connection during login")),
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(frame) => {
                let why = frame
                    .map(|f| f.reason.to_string())
                    .unwrap_or_else(|| "closed".into());
                return Err(lost(&why));
            }
            _ => continue,
        };
        match ServerFrame::decode(&text) {
            Ok(ServerFrame::Ok {
                id: 0,
                result:
                    Reply::LoggedIn {
                        uid,
                        server_ts,
                        dev_mode,
                        token_expires_in_s,
                        resumed,
                        ..
                    },
            }) => {
                return Ok((
                    ws,
                    LoginInfo {
                        uid,
                        server_ts,
                        dev_mode,
                        token_expires_in_s,
                        resumed,
                    },
                ));
            }
            Ok(ServerFrame::Error { error, .. }) => {
                let _ = ws.close(None).await;
                return Err(LoginFail::Refused(RtmError::Server(error)));
            }
            Ok(other) => {
                sdk_event!(DEBUG, ?other, "ignoring frame before login reply");
            }
            Err(e) => {
                return Err(LoginFail::Unreachable(RtmError::Protocol(format!(
                    "bad login reply: {e}"
                ))));
            }
        }
    }
}

/// Moves frames both ways until the link ends.
async fn pump(
    shared: &Arc<Shared>,
    ws: Ws,
    mut out: mpsc::UnboundedReceiver<String>,
    cancel: &CancellationToken,
) -> LinkEnd {
    let (mut sink, mut stream) = ws.split();
    let mut last_seen = Instant::now();
    let mut ping = tokio::time::interval(shared.config.heartbeat_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    // Set by events that announce the end of the session before the close frame.
    let mut pending_end: Option<LinkEnd> = None;
    let mut acks = Acks::default();
    loop {
        let ack_due = acks.due;
        let ack_timer = async move {
            match ack_due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Stored messages received a little while ago: acknowledge them.
            _ = ack_timer => {
                if let Some(frame) = acks.take_frame(shared)
                    && sink.send(Message::Text(frame.into())).await.is_err()
                {
                    return pending_end.unwrap_or(LinkEnd::Lost);
                }
            }
            // logout(), or the last handle dropped: say goodbye and stop.
            _ = cancel.cancelled() => {
                // Nobody will call logout: log out here, so the server ends
                // the session at once (watchers see OFFLINE) instead of
                // holding it through the grace of a dropped link. The server
                // reads frames in order, so the close can follow at once.
                if shared.lock().handles_gone {
                    let id = shared.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let logout = ClientFrame { id, request: Request::Logout }.encode();
                    let _ = sink.send(Message::Text(logout.into())).await;
                }
                let _ = sink.send(Message::Close(None)).await;
                return LinkEnd::Cancelled;
            }
            // A request to send; take every one that is ready, flush once.
            Some(text) = out.recv() => {
                let mut ok = sink.feed(Message::Text(text.into())).await.is_ok();
                while ok && let Ok(more) = out.try_recv() {
                    ok = sink.feed(Message::Text(more.into())).await.is_ok();
                }
                if !ok || sink.flush().await.is_err() {
                    return pending_end.unwrap_or(LinkEnd::Lost);
                }
            }
            // Heartbeat: ping, and give up on a silent server.
            _ = ping.tick() => {
                if last_seen.elapsed() > shared.config.heartbeat_timeout {
                    sdk_event!(WARN, "no traffic from the server within the heartbeat timeout");
                    return LinkEnd::Lost;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return pending_end.unwrap_or(LinkEnd::Lost);
                }
            }
            // Anything from the server.
            msg = stream.next() => {
                last_seen = Instant::now();
                let text = match msg {
                    None | Some(Err(_)) => return pending_end.unwrap_or(LinkEnd::Lost),
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                        sdk_event!(INFO, code, reason = ?frame.as_ref().map(|f| f.reason.to_string()), "server closed the connection");
                        return match code {
                            close_code::REMOTE_LOGIN => LinkEnd::RemoteLogin,
                            close_code::TOKEN_EXPIRED => LinkEnd::TokenExpired,
                            close_code::BANNED => LinkEnd::Banned,
                            // Our own logout, confirmed: nothing to reconnect.
                            close_code::LOGOUT => LinkEnd::Cancelled,
                            _ => pending_end.unwrap_or(LinkEnd::Lost),
                        };
                    }
                    Some(Ok(_)) => continue,
                };
                match ServerFrame::decode(&text) {
                    Ok(ServerFrame::Ok { id, result }) => {
                        if let Some(tx) = shared.lock().pending.remove(&id) {
                            let _ = tx.send(Ok(result));
                        }
                    }
                    Ok(ServerFrame::Error { id: Some(id), error }) => {
                        if let Some(tx) = shared.lock().pending.remove(&id) {
                            let _ = tx.send(Err(RtmError::Server(error)));
                        }
                    }
                    Ok(ServerFrame::Error { id: None, error }) => {
                        sdk_event!(WARN, "server error without request id: {error}");
                    }
                    Ok(ServerFrame::Event { event }) => {
                        let stored_id = match &event {
                            Event::MessageFromPeer { props, .. } => props.message_id,
                            _ => None,
                        };
                        // A stored message is acknowledged even when it is a
                        // repeat: the server still holds it, waiting.
                        let repeat = stored_id.is_some_and(|id| !shared.lock().seen.first_time(id));
                        if !repeat && let Some(end) = dispatch(shared, event) {
                            pending_end = Some(end);
                        }
                        if let Some(id) = stored_id
                            && acks.received(id)
                            && let Some(frame) = acks.take_frame(shared)
                            && sink.send(Message::Text(frame.into())).await.is_err()
                        {
                            return pending_end.unwrap_or(LinkEnd::Lost);
                        }
                    }
                    Err(e) => sdk_event!(WARN, "undecodable frame from the server: {e}"),
                }
            }
        }
    }
}

/// Turns a server event into client events; returns how the link will end
/// when the event announces it.
fn dispatch(shared: &Arc<Shared>, event: Event) -> Option<LinkEnd> {
    if shared.on_invitation_event(&event) {
        return None;
    }
    match event {
        Event::MessageFromPeer {
            peer_id,
            message,
            props,
        } => shared.emit(ClientEvent::MessageFromPeer {
            message,
            peer_id,
            props,
        }),
        Event::ChannelMessage {
            channel_id,
            member_id,
            message,
            props,
        } => shared.dispatch_channel_event(
            channel_id,
            ChannelEvent::ChannelMessage {
                message,
                member_id,
                props,
            },
        ),
        Event::MemberJoined {
            channel_id,
            member_id,
        } => shared.dispatch_channel_event(channel_id, ChannelEvent::MemberJoined(member_id)),
        Event::MemberLeft {
            channel_id,
            member_id,
        } => shared.dispatch_channel_event(channel_id, ChannelEvent::MemberLeft(member_id)),
        Event::MemberCountUpdated {
            channel_id,
            member_count,
        } => shared
            .dispatch_channel_event(channel_id, ChannelEvent::MemberCountUpdated(member_count)),
        Event::AttributesUpdated {
            channel_id,
            attributes,
        } => shared.dispatch_channel_event(channel_id, ChannelEvent::AttributesUpdated(attributes)),
        Event::PeersOnlineStatusChanged { statuses } => {
            shared.emit(ClientEvent::PeersOnlineStatusChanged(statuses))
        }
        Event::RemoteLogin => return Some(LinkEnd::RemoteLogin),
        Event::TokenPrivilegeWillExpire { expires_in_s } => {
            shared.emit(ClientEvent::TokenPrivilegeWillExpire { expires_in_s })
        }
        Event::TokenExpired => return Some(LinkEnd::TokenExpired),
        Event::ServerShutdown => sdk_event!(INFO, "server is shutting down; will reconnect"),
        Event::MessagesMissed { count } => shared.emit(ClientEvent::MessagesMissed { count }),
        // Taken by `on_invitation_event` above.
        Event::RemoteInvitationReceived { .. }
        | Event::LocalInvitationReceivedByPeer { .. }
        | Event::LocalInvitationAccepted { .. }
        | Event::LocalInvitationRefused { .. }
        | Event::LocalInvitationFailure { .. }
        | Event::RemoteInvitationCanceled { .. }
        | Event::RemoteInvitationFailure { .. } => {}
    }
    None
}

/// How long the restore keeps retrying a step the server refused "for now"
/// (a rejoin over the 2-per-5-s joins of one channel after quick drops …).
const RESTORE_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(15);

/// One request of the restore; a [`transient`] refusal is retried with the
/// reconnection backoff for up to [`RESTORE_RETRY_FOR`].
async fn restore_request(
    shared: &Shared,
    link: &Link,
    request: Request,
) -> Result<Reply, RtmError> {
    let give_up = Instant::now() + RESTORE_RETRY_FOR;
    let mut backoff = shared.config.reconnect_initial;
    loop {
        match shared.request_with(request.clone(), Some(link)).await {
            Err(e) if transient(&e) && Instant::now() + backoff < give_up => {
                tracing::info!("restore refused for now ({e}); retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(shared.config.reconnect_max);
            }
            result => return result,
        }
    }
}

/// After a reconnection: rejoin channels, put back user attributes and
/// presence subscriptions, then tell the app what happened.
async fn restore(shared: Arc<Shared>) {
    let (link, channels, to_leave, attributes, subscriptions) = {
        let mut st = shared.lock();
        (
            st.out.clone(),
            st.joined.iter().cloned().collect::<Vec<_>>(),
            std::mem::take(&mut st.leave_after_reconnect),
            st.attributes.clone(),
            st.subscriptions.iter().cloned().collect::<Vec<_>>(),
        )
    };
    // The link went before its restore began: the next one restores it all.
    let Some(link) = link else { return };
    // Channels whose last handle went while the link was down: a resumed
    // session may still have them. NOT_IN_CHANNEL is the usual answer.
    for ch in to_leave {
        let _ = shared
            .request_with(Request::Leave { channel_id: ch }, Some(&link))
            .await;
    }
    let mut rejoined = Vec::new();
    let mut failed = Vec::new();
    for ch in channels {
        match restore_request(
            &shared,
            &link,
            Request::Join {
                channel_id: ch.clone(),
            },
        )
        .await
        {
            Ok(_) => rejoined.push(ch),
            Err(e) if e.kind() == ErrorKind::AlreadyJoined => rejoined.push(ch),
            // This link went while restoring: the next one restores it all.
            Err(RtmError::ConnectionLost) => return,
            Err(e) => {
                shared.lock().joined.remove(&ch);
                failed.push((ch, e));
            }
        }
    }
    let mut attributes_restored = false;
    if !attributes.is_empty() {
        match restore_request(
            &shared,
            &link,
            Request::SetLocalUserAttributes { attributes },
        )
        .await
        {
            Err(RtmError::ConnectionLost) => return,
            result => attributes_restored = result.is_ok(),
        }
    }
    let mut subscriptions_restored = 0;
    for chunk in subscriptions.chunks(crate::protocol::MAX_SUBSCRIPTIONS) {
        match restore_request(
            &shared,
            &link,
            Request::SubscribePeersOnlineStatus {
                peer_ids: chunk.to_vec(),
            },
        )
        .await
        {
            Ok(_) => subscriptions_restored += chunk.len(),
            Err(RtmError::ConnectionLost) => return,
            Err(_) => {}
        }
    }
    // Held requests go out now — unless this link is already gone (a newer
    // one has its own restore to finish first).
    let same_link = {
        let st = shared.lock();
        st.out.as_ref().is_some_and(|now| now.same_channel(&link))
    };
    if same_link {
        shared.set_ready();
    }
    shared.emit(ClientEvent::Restored {
        rejoined,
        failed,
        attributes_restored,
        subscriptions_restored,
    });
}
