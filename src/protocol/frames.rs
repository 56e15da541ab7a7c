//! The wire contract: one typed enum for what a client sends ([`Request`],
//! inside a [`ClientFrame`] that adds the request `id`), one for what the server
//! sends ([`ServerFrame`]: a [`Reply`] to a request, an error, or an [`Event`]).
//! Every frame is one JSON object in one WebSocket text message. See
//! `docs/PROTOCOL.md` for examples of each.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{ChannelId, ErrorBody, ErrorKind, MAX_MESSAGE_BYTES, Uid};

/// The protocol version this build speaks; sent in `login`.
pub const PROTOCOL_VERSION: u32 = 1;

/// WebSocket close codes the server uses (4000–4999 are application codes).
pub mod close_code {
    /// The same uid logged in elsewhere; this session is over.
    pub const REMOTE_LOGIN: u16 = 4000;
    /// The client did not read fast enough and its queue filled up.
    pub const SLOW_CONSUMER: u16 = 4001;
    /// The client broke the protocol beyond repair: invalid UTF-8 in a text
    /// frame, or more malformed frames than the server tolerates.
    pub const PROTOCOL_ERROR: u16 = 4002;
    /// No login arrived in time after connecting.
    pub const LOGIN_TIMEOUT: u16 = 4003;
    /// The session's token expired.
    pub const TOKEN_EXPIRED: u16 = 4004;
    /// The client logged out.
    pub const LOGOUT: u16 = 4005;
    /// The server (or this address) is at its connection limit.
    pub const TOO_MANY_CONNECTIONS: u16 = 4006;
    /// No frame (not even a pong) arrived within the heartbeat timeout.
    pub const HEARTBEAT_TIMEOUT: u16 = 4007;
    /// The server is shutting down (standard "going away").
    pub const GOING_AWAY: u16 = 1001;
    /// A frame larger than the server's cap was sent (standard "message too big").
    pub const TOO_BIG: u16 = 1009;
}

/// Milliseconds since the Unix epoch, as used for every timestamp on the wire.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A peer or channel message (spec §3). RAW bytes travel as base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum RtmMessage {
    Text {
        text: String,
    },
    Raw {
        #[serde(with = "base64_bytes")]
        raw: Vec<u8>,
        #[serde(default)]
        description: String,
    },
}

impl RtmMessage {
    pub fn text(text: impl Into<String>) -> Self {
        RtmMessage::Text { text: text.into() }
    }

    /// Size counted against [`MAX_MESSAGE_BYTES`].
    pub fn size(&self) -> usize {
        match self {
            RtmMessage::Text { text } => text.len(),
            RtmMessage::Raw { raw, description } => raw.len() + description.len(),
        }
    }

    /// Checks size and emptiness; the server and the SDK both call it.
    pub fn validate(&self) -> Result<(), ErrorBody> {
        let size = self.size();
        if size > MAX_MESSAGE_BYTES {
            return Err(ErrorBody::new(
                ErrorKind::InvalidMessage,
                format!(
                    "message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes (32 KB). Split it or send a file"
                ),
            ));
        }
        if let RtmMessage::Text { text } = self
            && text.is_empty()
        {
            return Err(ErrorBody::new(
                ErrorKind::InvalidMessage,
                "message text is empty",
            ));
        }
        Ok(())
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("raw is not valid base64: {e}")))
    }
}

/// Options of `send_message_to_peer`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessageOptions {
    /// Store the message if the peer is offline and deliver it at its next login.
    #[serde(default)]
    pub enable_offline_messaging: bool,
}

/// Options of every channel-attribute write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelAttributeOptions {
    /// Push `attributes_updated` with the full set to every member of the channel.
    #[serde(default)]
    pub enable_notification_to_channel_members: bool,
}

/// What `query_peers_by_subscription_option` asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubscriptionOption {
    OnlineStatus,
}

/// A peer's presence as seen by its subscribers (spec §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeerOnlineState {
    Online,
    /// The link dropped less than the grace period ago; it may come back.
    Unreachable,
    Offline,
}

/// Properties delivered with every received message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageProps {
    /// When the server received the message (ms since the epoch).
    pub server_received_ts: u64,
    /// True when the message was stored while the receiver was offline.
    #[serde(default)]
    pub is_offline_message: bool,
    /// The stable id of a stored (offline) message: the same on every
    /// delivery of it, increasing in store order. The receiver acknowledges
    /// it with `ack_offline` (the server deletes the message only then) and
    /// drops a message whose id it has already seen. Absent on live messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u64>,
}

/// One channel attribute with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelAttribute {
    pub key: String,
    pub value: String,
    pub last_update_user_id: Uid,
    /// ms since the epoch.
    pub last_update_ts: u64,
}

/// One answer of `get_channel_member_count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMemberCount {
    pub channel_id: ChannelId,
    pub member_count: u32,
}

/// What a client asks for. On the wire: `{"id": 7, "type": "<snake_case name>", ...fields}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Must be the first frame of a connection.
    Login {
        protocol: u32,
        uid: Uid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    Logout,
    RenewToken {
        token: String,
    },
    /// Application-level keep-alive; answered with `pong`.
    Ping,
    SendPeerMessage {
        peer_id: Uid,
        message: RtmMessage,
        #[serde(default)]
        options: SendMessageOptions,
    },
    Join {
        channel_id: ChannelId,
    },
    Leave {
        channel_id: ChannelId,
    },
    SendChannelMessage {
        channel_id: ChannelId,
        message: RtmMessage,
    },
    GetMembers {
        channel_id: ChannelId,
    },
    GetChannelMemberCount {
        channel_ids: Vec<ChannelId>,
    },
    QueryPeersOnlineStatus {
        peer_ids: Vec<Uid>,
    },
    SubscribePeersOnlineStatus {
        peer_ids: Vec<Uid>,
    },
    UnsubscribePeersOnlineStatus {
        peer_ids: Vec<Uid>,
    },
    QueryPeersBySubscriptionOption {
        option: SubscriptionOption,
    },
    SetLocalUserAttributes {
        attributes: BTreeMap<String, String>,
    },
    AddOrUpdateLocalUserAttributes {
        attributes: BTreeMap<String, String>,
    },
    DeleteLocalUserAttributesByKeys {
        keys: Vec<String>,
    },
    ClearLocalUserAttributes,
    /// All attributes of a user, or only `keys` when given.
    GetUserAttributes {
        user_id: Uid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keys: Option<Vec<String>>,
    },
    SetChannelAttributes {
        channel_id: ChannelId,
        attributes: BTreeMap<String, String>,
        #[serde(default)]
        options: ChannelAttributeOptions,
    },
    AddOrUpdateChannelAttributes {
        channel_id: ChannelId,
        attributes: BTreeMap<String, String>,
        #[serde(default)]
        options: ChannelAttributeOptions,
    },
    DeleteChannelAttributesByKeys {
        channel_id: ChannelId,
        keys: Vec<String>,
        #[serde(default)]
        options: ChannelAttributeOptions,
    },
    ClearChannelAttributes {
        channel_id: ChannelId,
        #[serde(default)]
        options: ChannelAttributeOptions,
    },
    /// All attributes of a channel, or only `keys` when given.
    GetChannelAttributes {
        channel_id: ChannelId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keys: Option<Vec<String>>,
    },
    /// The client has every stored message up to and including `message_id`
    /// `up_to` of this connection: the server deletes them and sends more.
    AckOffline {
        up_to: u64,
    },
}

impl Request {
    /// The frame's `type` string, for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Login { .. } => "login",
            Request::Logout => "logout",
            Request::RenewToken { .. } => "renew_token",
            Request::Ping => "ping",
            Request::SendPeerMessage { .. } => "send_peer_message",
            Request::Join { .. } => "join",
            Request::Leave { .. } => "leave",
            Request::SendChannelMessage { .. } => "send_channel_message",
            Request::GetMembers { .. } => "get_members",
            Request::GetChannelMemberCount { .. } => "get_channel_member_count",
            Request::QueryPeersOnlineStatus { .. } => "query_peers_online_status",
            Request::SubscribePeersOnlineStatus { .. } => "subscribe_peers_online_status",
            Request::UnsubscribePeersOnlineStatus { .. } => "unsubscribe_peers_online_status",
            Request::QueryPeersBySubscriptionOption { .. } => "query_peers_by_subscription_option",
            Request::SetLocalUserAttributes { .. } => "set_local_user_attributes",
            Request::AddOrUpdateLocalUserAttributes { .. } => "add_or_update_local_user_attributes",
            Request::DeleteLocalUserAttributesByKeys { .. } => {
                "delete_local_user_attributes_by_keys"
            }
            Request::ClearLocalUserAttributes => "clear_local_user_attributes",
            Request::GetUserAttributes { .. } => "get_user_attributes",
            Request::SetChannelAttributes { .. } => "set_channel_attributes",
            Request::AddOrUpdateChannelAttributes { .. } => "add_or_update_channel_attributes",
            Request::DeleteChannelAttributesByKeys { .. } => "delete_channel_attributes_by_keys",
            Request::ClearChannelAttributes { .. } => "clear_channel_attributes",
            Request::GetChannelAttributes { .. } => "get_channel_attributes",
            Request::AckOffline { .. } => "ack_offline",
        }
    }
}

/// A request with the id its response will carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFrame {
    pub id: u64,
    #[serde(flatten)]
    pub request: Request,
}

/// Why a client frame could not be decoded. `id` is recovered when the frame
/// had one, so the error reply can still be matched to the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub id: Option<u64>,
    pub message: String,
}

impl ClientFrame {
    /// Decodes one text frame. Never panics, whatever the input.
    pub fn decode(text: &str) -> Result<ClientFrame, DecodeError> {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => Ok(frame),
            Err(e) => {
                // The id is recovered from a JSON object only (never from an
                // array, which a derived struct would also accept).
                let id = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v.as_object()?.get("id")?.as_u64());
                let message = if e.is_syntax() || e.is_eof() {
                    format!("frame is not valid JSON: {e}")
                } else if id.is_none() {
                    format!("frame has no numeric \"id\" or is not a valid request: {e}")
                } else {
                    format!("invalid request: {e}")
                };
                Err(DecodeError { id, message })
            }
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The success half of a response; which variant comes back depends on the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// Answer to `login`.
    LoggedIn {
        uid: Uid,
        /// Server time at login (ms since the epoch).
        server_ts: u64,
        /// How often the server pings, in ms; the client should expect traffic at least this often.
        heartbeat_interval_ms: u64,
        /// True when this login took over a session whose link had dropped
        /// within the grace period: its channels and subscriptions were kept.
        resumed: bool,
        /// True when the server runs without an app certificate (tokens not checked).
        dev_mode: bool,
        /// Seconds until the token expires, when a token with an expiry was used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_expires_in_s: Option<u64>,
    },
    /// Success with nothing to return.
    Done,
    PeerMessageSent {
        has_peer_received: bool,
        server_received_ts: u64,
        /// True when the peer was offline and the message was stored for later delivery.
        #[serde(default)]
        cached: bool,
    },
    Joined {
        member_count: u32,
    },
    ChannelMessageSent {
        server_received_ts: u64,
    },
    Members {
        members: Vec<Uid>,
    },
    MemberCounts {
        counts: Vec<ChannelMemberCount>,
    },
    OnlineStatus {
        statuses: BTreeMap<Uid, bool>,
    },
    Subscriptions {
        peer_ids: Vec<Uid>,
    },
    UserAttributes {
        user_id: Uid,
        attributes: BTreeMap<String, String>,
    },
    ChannelAttributes {
        channel_id: ChannelId,
        attributes: Vec<ChannelAttribute>,
    },
    Pong {
        server_ts: u64,
    },
}

/// Something the server pushes without being asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    MessageFromPeer {
        peer_id: Uid,
        message: RtmMessage,
        props: MessageProps,
    },
    ChannelMessage {
        channel_id: ChannelId,
        member_id: Uid,
        message: RtmMessage,
        props: MessageProps,
    },
    MemberJoined {
        channel_id: ChannelId,
        member_id: Uid,
    },
    MemberLeft {
        channel_id: ChannelId,
        member_id: Uid,
    },
    MemberCountUpdated {
        channel_id: ChannelId,
        member_count: u32,
    },
    /// The full attribute set of a channel after a write that asked for notification.
    AttributesUpdated {
        channel_id: ChannelId,
        attributes: Vec<ChannelAttribute>,
    },
    PeersOnlineStatusChanged {
        statuses: BTreeMap<Uid, PeerOnlineState>,
    },
    /// The same uid logged in elsewhere; the server closes this connection next.
    RemoteLogin,
    /// The session's token expires in `expires_in_s` seconds; call `renew_token`.
    TokenPrivilegeWillExpire { expires_in_s: u64 },
    /// The token expired; the server closes this connection next.
    TokenExpired,
    /// The server is shutting down; reconnect later.
    ServerShutdown,
    /// After a resumed login: `count` peer or channel messages sent while the
    /// link was down did not fit the server's resume buffer and are lost.
    MessagesMissed { count: u64 },
}

/// Everything the server sends. On the wire the `type` field tells them apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Ok {
        id: u64,
        result: Reply,
    },
    /// `id` is null when the failed frame had no readable id.
    Error {
        id: Option<u64>,
        error: ErrorBody,
    },
    Event {
        event: Event,
    },
}

impl ServerFrame {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(text: &str) -> Result<ServerFrame, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn error(id: Option<u64>, error: ErrorBody) -> Self {
        ServerFrame::Error { id, error }
    }
}

/// Encodes an event once; the bytes can be shared by any number of recipients.
pub fn encode_event(event: &Event) -> String {
    // A struct with borrowed contents avoids cloning the event just to wrap it.
    #[derive(Serialize)]
    struct Wrapper<'a> {
        #[serde(rename = "type")]
        ty: &'static str,
        event: &'a Event,
    }
    serde_json::to_string(&Wrapper { ty: "event", event }).unwrap_or_default()
}

/// Used by tests and tools that build RAW messages.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
