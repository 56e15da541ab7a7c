//! What the SDK tells the application: connection states and their
//! reasons, client and channel events, and the bounded stream they arrive
//! on (see the module docs of [`crate::client`] for the route and the lag
//! policy).

use super::*;

/// Connection states of the model (spec §2), as Agora's `ConnectionState`;
/// every change arrives as [`ClientEvent::ConnectionStateChanged`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// No session: before `login`, after `logout`, or after a login failed.
    /// Calls fail at once with `NOT_LOGGED_IN`.
    Disconnected,
    /// `login` is connecting and logging in.
    Connecting,
    /// Logged in; requests go out (once the restore after a reconnection is
    /// done).
    Connected,
    /// The link was lost; the SDK reconnects with backoff by itself and then
    /// restores channels, attributes and subscriptions. Requests are held
    /// (see the module docs).
    Reconnecting,
    /// The session was ended by the server: the same uid logged in elsewhere
    /// (`RemoteLogin`) or the token expired (`TokenExpired`). The SDK does not
    /// reconnect; calls fail with `NOT_LOGGED_IN`. Log in again (after a fresh
    /// token, if that was the reason).
    Aborted,
}

/// Why the connection state changed (spec §2), as Agora's
/// `ConnectionChangeReason`. New reasons may be added: match with a `_` arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionChangeReason {
    /// `login` was called: CONNECTING.
    Login,
    /// The server accepted the login (first or after a reconnection): CONNECTED.
    LoginSuccess,
    /// The server refused the login or could not be reached: DISCONNECTED.
    LoginFailure,
    /// The first login took longer than [`ClientConfig::login_timeout`]:
    /// DISCONNECTED.
    LoginTimeout,
    /// The link was lost (network, server restart, missed heartbeats):
    /// RECONNECTING.
    Interrupted,
    /// `logout` (or dropping the last handle): DISCONNECTED.
    Logout,
    /// The server's operator banned this uid (`rtm admin ban`): ABORTED.
    /// Logins are refused until the ban ends.
    BannedByServer,
    /// The same uid logged in from another connection: ABORTED.
    RemoteLogin,
    /// The token expired while connected or reconnecting: ABORTED (a
    /// [`ClientEvent::TokenExpired`] follows).
    TokenExpired,
}

/// Events of one channel: on the channel's own stream when the application
/// took it ([`RtmChannel::events`]), else on the client stream as
/// [`ClientEvent::Channel`] — never both. New events may be added: match
/// with a `_` arm.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// Another member sent a message to the channel (Agora's
    /// `ChannelMessage`); the sender never gets its own back.
    ChannelMessage {
        /// What was sent.
        message: RtmMessage,
        /// Who sent it.
        member_id: Uid,
        /// When the server got it.
        props: MessageProps,
    },
    /// A user joined the channel. Only in channels of at most
    /// [`MEMBER_EVENTS_MAX_MEMBERS`](crate::protocol::MEMBER_EVENTS_MAX_MEMBERS)
    /// (512) members; larger ones report only the count.
    MemberJoined(Uid),
    /// A user left the channel (or went offline); same size rule as
    /// `MemberJoined`.
    MemberLeft(Uid),
    /// The channel's member count changed: at most once per second, every
    /// 3 s above 512 members.
    MemberCountUpdated(u32),
    /// The channel's attributes were written by a call that asked to notify
    /// members (`enable_notification_to_channel_members`; sent even if
    /// nothing changed): the full set, not a diff.
    AttributesUpdated(Vec<ChannelAttribute>),
    /// Only on a channel's own stream: the application fell behind and this
    /// many of the oldest events of the channel were dropped (see the module
    /// docs). Re-read what matters (members, attributes).
    Lagged {
        /// How many events were dropped.
        dropped: u64,
    },
}

/// Everything the SDK reports without being asked. New events may be added:
/// match with a `_` arm.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The connection state changed (Agora's `ConnectionStateChanged`).
    /// Never dropped when the stream lags.
    ConnectionStateChanged {
        /// The new state.
        state: ConnectionState,
        /// Why it changed.
        reason: ConnectionChangeReason,
    },
    /// A peer sent this client a message (Agora's `MessageFromPeer`); a
    /// message stored while this user was offline arrives after login with
    /// `props.is_offline_message` set, once.
    MessageFromPeer {
        /// What was sent.
        message: RtmMessage,
        /// Who sent it.
        peer_id: Uid,
        /// When the server got it, and whether it was stored offline.
        props: MessageProps,
    },
    /// Presence of watched peers ([`RtmClient::subscribe_peers_online_status`]):
    /// their current state right after subscribing, then each change.
    PeersOnlineStatusChanged(BTreeMap<Uid, PeerOnlineState>),
    /// An event of a channel whose own stream the application has not taken
    /// (see [`RtmChannel::events`]).
    Channel {
        /// The channel it happened in.
        channel_id: ChannelId,
        /// What happened.
        event: ChannelEvent,
    },
    /// After a reconnection: what the SDK restored by itself (rtm only; the
    /// reference has no such event). Never dropped when the stream lags.
    Restored {
        /// Channels rejoined.
        rejoined: Vec<ChannelId>,
        /// Channels that could not be rejoined, with why; they count as left.
        failed: Vec<(ChannelId, RtmError)>,
        /// The user's attributes were set again.
        attributes_restored: bool,
        /// How many presence subscriptions were renewed.
        subscriptions_restored: usize,
    },
    /// The token expires soon: call [`RtmClient::renew_token`] with a fresh
    /// one (Agora's `TokenPrivilegeWillExpire`). Never dropped when the
    /// stream lags.
    TokenPrivilegeWillExpire {
        /// Seconds left.
        expires_in_s: u64,
    },
    /// The token expired and the session ended (state ABORTED, reason
    /// `TokenExpired`); log in again with a fresh token. Never dropped.
    TokenExpired,
    /// After a reconnection that resumed the session: `count` peer or channel
    /// messages sent while the link was down did not fit the server's resume
    /// buffer and are lost (the ones that fit arrived before this event).
    /// Conversations may have a gap; the application should say so.
    MessagesMissed {
        /// How many messages were lost.
        count: u64,
    },
    /// Something happened to an invitation this client sent (accepted,
    /// refused, failed …). Never dropped when the stream lags.
    LocalInvitation {
        /// The invitation, in its new state.
        invitation: LocalInvitation,
        /// What happened.
        event: LocalInvitationEvent,
    },
    /// Someone rings this user (the reference's `RemoteInvitationReceived`):
    /// accept or refuse it. Never dropped when the stream lags.
    RemoteInvitationReceived(RemoteInvitation),
    /// Something happened to an invitation this client received (canceled,
    /// answered, failed …). Never dropped when the stream lags.
    RemoteInvitation {
        /// The invitation, in its new state.
        invitation: RemoteInvitation,
        /// What happened.
        event: RemoteInvitationEvent,
    },
    /// The application fell behind: this many of the oldest messages,
    /// presence changes and channel events were dropped from this stream to
    /// keep it within [`ClientConfig::event_queue_capacity`]. Conversations
    /// may have a gap; re-query what matters (presence, members).
    Lagged {
        /// How many events were dropped.
        dropped: u64,
    },
}

impl QueueItem for ClientEvent {
    fn lagged(dropped: u64) -> Self {
        ClientEvent::Lagged { dropped }
    }
    fn droppable(&self) -> bool {
        matches!(
            self,
            ClientEvent::MessageFromPeer { .. }
                | ClientEvent::PeersOnlineStatusChanged(_)
                | ClientEvent::Channel { .. }
        )
    }
}

impl QueueItem for ChannelEvent {
    fn lagged(dropped: u64) -> Self {
        ChannelEvent::Lagged { dropped }
    }
    fn droppable(&self) -> bool {
        true
    }
}

/// The stream of [`ClientEvent`]s of one client, bounded (see the module
/// docs for the lag policy). Dropping it frees what it holds; events that
/// would go to it are discarded from then on.
pub struct ClientEvents {
    /// Shared with the connection task, which pushes into it.
    pub(super) queue: Arc<EventQueue<ClientEvent>>,
}

impl ClientEvents {
    /// The next event; `None` once the client, its clones and channels are
    /// dropped and the session has ended.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        self.queue.recv().await
    }

    /// An event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<ClientEvent> {
        self.queue.try_recv()
    }
}

impl Drop for ClientEvents {
    fn drop(&mut self) {
        self.queue.drop_reader();
    }
}
