//! The wire contract: one typed enum for what a client sends ([`Request`],
//! inside a [`ClientFrame`] that adds the request `id`), one for what the server
//! sends ([`ServerFrame`]: a [`Reply`] to a request, an error, or an [`Event`]).
//! Every frame is one JSON object in one WebSocket text message. See
//! `docs/PROTOCOL.md` for examples of each.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{
    ChannelId, ErrorBody, ErrorKind, LocalInvitationFailureReason, MAX_MESSAGE_BYTES,
    RemoteInvitationFailureReason, Uid,
};

/// The protocol version this build speaks, sent as `protocol` in `login`.
/// A server answers any other value with `REJECTED` (PROTOCOL.md §4.1).
pub const PROTOCOL_VERSION: u32 = 1;

/// WebSocket close codes the server ends a connection with (4000–4999 are
/// application codes, the others standard ones). What a client should do on
/// each — reconnect, or not — is in PROTOCOL.md §4.8.
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
    /// The server's operator banned this uid for a while; logins are
    /// refused until the ban ends. Do not reconnect.
    pub const BANNED: u16 = 4008;
    /// The server's operator ended this session; logging in again is
    /// allowed.
    pub const KICKED: u16 = 4009;
    /// The server is shutting down (standard "going away").
    pub const GOING_AWAY: u16 = 1001;
    /// A frame larger than the server's cap was sent (standard "message too big").
    pub const TOO_BIG: u16 = 1009;
}

/// The current wall-clock time in milliseconds since the Unix epoch, the unit
/// of every `*_ts` timestamp on the wire; 0 if the clock is before 1970.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A peer or channel message, tagged by `type` on the wire: `{"type":"TEXT",
/// "text":"hi"}` or `{"type":"RAW","raw":"<base64>","description":""}`.
/// At most [`MAX_MESSAGE_BYTES`] (32 768 bytes, see [`RtmMessage::size`]);
/// a TEXT must not be empty. See PROTOCOL.md §6.
///
/// `FILE` and `IMAGE` messages carry a media id of bytes uploaded to the
/// server (PROTOCOL.md §16). Non-exhaustive: more types may be added, so a
/// `match` needs a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum RtmMessage {
    /// `"TEXT"`: a text message.
    Text {
        /// The text; must not be empty. Counted in UTF-8 bytes, not characters.
        text: String,
    },
    /// `"RAW"`: binary data with an optional description.
    Raw {
        /// The bytes, sent as standard base64 with canonical padding
        /// (RFC 4648 §4); anything else is refused with `INVALID_ARGUMENT`.
        #[serde(with = "base64_bytes")]
        raw: Vec<u8>,
        /// Free text about the data; optional in requests (default `""`),
        /// always present in server frames. Counts towards the size limit.
        #[serde(default)]
        description: String,
    },
    /// `"FILE"`: a file uploaded to the server, fetched by `media_id`.
    File {
        /// What the upload returned (32 hex digits).
        media_id: String,
        /// The file's size in bytes, at most 32 MiB.
        size: u64,
        /// The file's name, 1–255 bytes, no path separators.
        file_name: String,
        /// Free text about the file (optional, default `""`).
        #[serde(default)]
        description: String,
        /// A small preview, standard base64 in JSON (optional, default empty).
        #[serde(default, with = "base64_bytes")]
        thumbnail: Vec<u8>,
    },
    /// `"IMAGE"`: a picture uploaded to the server, fetched by `media_id`.
    Image {
        /// What the upload returned (32 hex digits).
        media_id: String,
        /// The file's size in bytes, at most 32 MiB.
        size: u64,
        /// The file's name, 1–255 bytes, no path separators.
        file_name: String,
        /// Free text about the picture (optional, default `""`).
        #[serde(default)]
        description: String,
        /// A small preview (PNG or JPEG), standard base64 in JSON, shown
        /// before the picture is downloaded (optional, default empty).
        #[serde(default, with = "base64_bytes")]
        thumbnail: Vec<u8>,
        /// Width in pixels (0 when unknown).
        #[serde(default)]
        width: u32,
        /// Height in pixels (0 when unknown).
        #[serde(default)]
        height: u32,
        /// The thumbnail's width in pixels (0 without one).
        #[serde(default)]
        thumbnail_width: u32,
        /// The thumbnail's height in pixels (0 without one).
        #[serde(default)]
        thumbnail_height: u32,
    },
}

impl RtmMessage {
    /// A TEXT message. Nothing is checked here; [`RtmMessage::validate`]
    /// (which the SDK calls before sending) refuses an empty or oversized one.
    ///
    /// ```
    /// use rtm::protocol::{ErrorKind, RtmMessage};
    ///
    /// let hello = RtmMessage::text("hello bob");
    /// assert_eq!(hello.size(), 9);
    /// assert!(hello.validate().is_ok());
    /// assert_eq!(
    ///     serde_json::to_string(&hello).unwrap(),
    ///     r#"{"type":"TEXT","text":"hello bob"}"#
    /// );
    ///
    /// let empty = RtmMessage::text("");
    /// assert_eq!(empty.validate().unwrap_err().kind, ErrorKind::InvalidMessage);
    /// ```
    pub fn text(text: impl Into<String>) -> Self {
        RtmMessage::Text { text: text.into() }
    }

    /// Bytes counted against [`MAX_MESSAGE_BYTES`]: the UTF-8 bytes of a
    /// TEXT, or the decoded bytes of a RAW plus its description's UTF-8 bytes
    /// (not the base64 or JSON-escaped length); for FILE and IMAGE the file
    /// name + description + thumbnail (the file itself is on the server).
    pub fn size(&self) -> usize {
        match self {
            RtmMessage::Text { text } => text.len(),
            RtmMessage::Raw { raw, description } => raw.len() + description.len(),
            RtmMessage::File {
                file_name,
                description,
                thumbnail,
                ..
            }
            | RtmMessage::Image {
                file_name,
                description,
                thumbnail,
                ..
            } => file_name.len() + description.len() + thumbnail.len(),
        }
    }

    /// The media id of a FILE or IMAGE message.
    pub fn media_id(&self) -> Option<&str> {
        match self {
            RtmMessage::File { media_id, .. } | RtmMessage::Image { media_id, .. } => {
                Some(media_id)
            }
            _ => None,
        }
    }

    /// Checks size and emptiness; the server and the SDK both call it.
    /// Fails with `INVALID_MESSAGE` when the message is larger than
    /// [`MAX_MESSAGE_BYTES`] or is an empty TEXT (an empty RAW is allowed).
    pub fn validate(&self) -> Result<(), ErrorBody> {
        let size = self.size();
        if size > MAX_MESSAGE_BYTES {
            return Err(ErrorBody::new(
                ErrorKind::InvalidMessage,
                format!(
                    "message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes (32 KB). Split it or send a file (a file's name, description and thumbnail count)"
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
        if let RtmMessage::File {
            media_id,
            size,
            file_name,
            ..
        }
        | RtmMessage::Image {
            media_id,
            size,
            file_name,
            ..
        } = self
        {
            let invalid = |e: ErrorBody| ErrorBody::new(ErrorKind::InvalidMessage, e.message);
            super::check_media_id(media_id).map_err(invalid)?;
            super::check_media_size(*size).map_err(invalid)?;
            super::check_file_name(file_name).map_err(invalid)?;
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

/// Options of `send_peer_message` (the SDK's `send_message_to_peer`); on the
/// wire `{"enable_offline_messaging":false}`, optional (default: all off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendMessageOptions {
    /// Store the message if the peer is offline and deliver it at its next login.
    #[serde(default)]
    pub enable_offline_messaging: bool,
}

/// Options of every channel-attribute write; on the wire
/// `{"enable_notification_to_channel_members":false}`, optional (default:
/// all off). See PROTOCOL.md §7.20.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelAttributeOptions {
    /// Push `attributes_updated` with the full set to every member of the channel.
    #[serde(default)]
    pub enable_notification_to_channel_members: bool,
}

/// What `query_peers_by_subscription_option` asks about (PROTOCOL.md §7.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubscriptionOption {
    /// `"ONLINE_STATUS"`: the peers whose presence this session watches
    /// (subscribed with `subscribe_peers_online_status`).
    OnlineStatus,
}

/// A peer's presence as seen by its subscribers, in
/// `peers_online_status_changed` (PROTOCOL.md §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeerOnlineState {
    /// `"ONLINE"`: logged in with its link up; sent at login (fresh or resumed).
    Online,
    /// `"UNREACHABLE"`: the link dropped less than the grace period (30 s by
    /// default) ago; the session may still resume. See PROTOCOL.md §4.4.
    Unreachable,
    /// `"OFFLINE"`: not logged in — never was, logged out, token expired, or
    /// the grace period ended.
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

/// One channel attribute with its provenance, as returned by
/// `get_channel_attributes` and pushed in `attributes_updated`
/// (PROTOCOL.md §11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelAttribute {
    /// The key: 1 to [`MAX_ATTRIBUTE_KEY_BYTES`](super::MAX_ATTRIBUTE_KEY_BYTES)
    /// bytes, any string (not an identifier).
    pub key: String,
    /// The value: 1 to [`MAX_ATTRIBUTE_VALUE_BYTES`](super::MAX_ATTRIBUTE_VALUE_BYTES) bytes.
    pub value: String,
    /// Who last wrote this key (every write that names the key sets it,
    /// even with an unchanged value).
    pub last_update_user_id: Uid,
    /// When this key was last written, ms since the epoch (server clock).
    pub last_update_ts: u64,
}

/// One channel's entry in the `member_counts` reply to
/// `get_channel_member_count`, in the order the channels were asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMemberCount {
    /// The channel asked about (joined or not).
    pub channel_id: ChannelId,
    /// Its members, including those in their grace period; 0 for a channel
    /// nobody is in.
    pub member_count: u32,
}

/// What a client asks for; sent inside a [`ClientFrame`], which adds the `id`.
/// On the wire: `{"id":7,"type":"<snake_case name>",...fields}`; the table of
/// requests, their replies and limits is PROTOCOL.md §7.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// `login`: the client's first request, within 10 s of connecting; answered
    /// [`Reply::LoggedIn`]. See PROTOCOL.md §7.1.
    Login {
        /// The protocol version; must be [`PROTOCOL_VERSION`] (else `REJECTED`).
        protocol: u32,
        /// The user to log in as.
        uid: Uid,
        /// The login token ([`crate::token`]); required by a server with an
        /// app certificate, ignored by one without. `null` means absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Asks for live channel and peer messages in the compact form
        /// (PROTOCOL.md §8.13); the reply's `compact_events` says whether
        /// the server will send them so. Absent means `false`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        compact_events: bool,
    },
    /// `logout`: the client ends its session; answered `done`, then close
    /// code 4005. See PROTOCOL.md §7.2.
    Logout,
    /// `renew_token`: the client swaps in a fresh token, typically after
    /// [`Event::TokenPrivilegeWillExpire`]. See PROTOCOL.md §7.3.
    RenewToken {
        /// The new token, for the session's own uid.
        token: String,
    },
    /// `ping`: the client's keep-alive and round-trip probe, allowed before
    /// login; answered [`Reply::Pong`]. See PROTOCOL.md §7.4.
    Ping,
    /// `send_peer_message`: the client sends a message to one user (possibly
    /// itself); answered [`Reply::PeerMessageSent`]. See PROTOCOL.md §7.5.
    SendPeerMessage {
        /// The receiver.
        peer_id: Uid,
        /// The message, at most [`MAX_MESSAGE_BYTES`].
        message: RtmMessage,
        /// Whether to store the message if the peer is offline (optional,
        /// default off).
        #[serde(default)]
        options: SendMessageOptions,
    },
    /// `join`: the client joins (or creates) a channel; answered
    /// [`Reply::Joined`]. See PROTOCOL.md §7.6.
    Join {
        /// The channel to join.
        channel_id: ChannelId,
    },
    /// `leave`: the client leaves a joined channel; answered `done`.
    /// See PROTOCOL.md §7.7.
    Leave {
        /// The channel to leave.
        channel_id: ChannelId,
    },
    /// `send_channel_message`: the client sends a message to every other
    /// member of a joined channel; answered [`Reply::ChannelMessageSent`].
    /// See PROTOCOL.md §7.8.
    SendChannelMessage {
        /// The joined channel to send to.
        channel_id: ChannelId,
        /// The message, at most [`MAX_MESSAGE_BYTES`].
        message: RtmMessage,
    },
    /// `get_members`: the client lists a joined channel's members; answered
    /// [`Reply::Members`]. See PROTOCOL.md §7.9.
    GetMembers {
        /// The joined channel.
        channel_id: ChannelId,
    },
    /// `get_channel_member_count`: the client asks the member counts of
    /// channels, joined or not; answered [`Reply::MemberCounts`].
    /// See PROTOCOL.md §7.10.
    GetChannelMemberCount {
        /// 1 to [`MAX_MEMBER_COUNT_CHANNELS`](super::MAX_MEMBER_COUNT_CHANNELS) channels.
        channel_ids: Vec<ChannelId>,
    },
    /// `query_peers_online_status`: the client asks whether users are online;
    /// answered [`Reply::OnlineStatus`]. See PROTOCOL.md §7.11.
    QueryPeersOnlineStatus {
        /// 1 to [`MAX_QUERY_PEERS`](super::MAX_QUERY_PEERS) users.
        peer_ids: Vec<Uid>,
    },
    /// `subscribe_peers_online_status`: the client starts watching users'
    /// presence; their current states come as an event before the `done`.
    /// See PROTOCOL.md §7.12.
    SubscribePeersOnlineStatus {
        /// At least one user; at most [`MAX_SUBSCRIPTIONS`](super::MAX_SUBSCRIPTIONS)
        /// watched in all.
        peer_ids: Vec<Uid>,
    },
    /// `unsubscribe_peers_online_status`: the client stops watching users;
    /// answered `done`. See PROTOCOL.md §7.13.
    UnsubscribePeersOnlineStatus {
        /// 1 to [`MAX_SUBSCRIPTIONS`](super::MAX_SUBSCRIPTIONS) users; ones not
        /// watched are ignored.
        peer_ids: Vec<Uid>,
    },
    /// `query_peers_by_subscription_option`: the client asks which users it
    /// watches; answered [`Reply::Subscriptions`]. See PROTOCOL.md §7.14.
    QueryPeersBySubscriptionOption {
        /// What to list; `"ONLINE_STATUS"` is the only option.
        option: SubscriptionOption,
    },
    /// `set_local_user_attributes`: the client replaces all its own
    /// attributes; answered `done`. See PROTOCOL.md §7.15.
    SetLocalUserAttributes {
        /// The new set (an empty map clears it); limits in PROTOCOL.md §11.
        attributes: BTreeMap<String, String>,
    },
    /// `add_or_update_local_user_attributes`: the client adds or overwrites
    /// some of its own attributes; answered `done`. See PROTOCOL.md §7.16.
    AddOrUpdateLocalUserAttributes {
        /// The keys to add or overwrite; other keys stay.
        attributes: BTreeMap<String, String>,
    },
    /// `delete_local_user_attributes_by_keys`: the client removes some of its
    /// own attributes; answered `done`. See PROTOCOL.md §7.17.
    DeleteLocalUserAttributesByKeys {
        /// At least one key; keys that do not exist are ignored.
        keys: Vec<String>,
    },
    /// `clear_local_user_attributes`: the client removes all its own
    /// attributes; answered `done`. See PROTOCOL.md §7.18.
    ClearLocalUserAttributes,
    /// `get_user_attributes`: the client reads a logged-in user's attributes,
    /// all or only `keys`; answered [`Reply::UserAttributes`].
    /// See PROTOCOL.md §7.19.
    GetUserAttributes {
        /// The user to read (must be logged in, else `USER_NOT_FOUND`).
        user_id: Uid,
        /// Only these keys (1 to [`MAX_KEYS_PER_READ`](super::MAX_KEYS_PER_READ));
        /// `None` (absent or `null`) for all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keys: Option<Vec<String>>,
    },
    /// `set_channel_attributes`: the client replaces all attributes of a
    /// channel; answered `done`. See PROTOCOL.md §7.20.
    SetChannelAttributes {
        /// The channel, joined or not (no membership is needed for attributes).
        channel_id: ChannelId,
        /// The new set (an empty map clears it); limits in PROTOCOL.md §11.
        attributes: BTreeMap<String, String>,
        /// Whether every member gets `attributes_updated` (optional, default off).
        #[serde(default)]
        options: ChannelAttributeOptions,
    },
    /// `add_or_update_channel_attributes`: the client adds or overwrites some
    /// attributes of a channel; answered `done`. See PROTOCOL.md §7.21.
    AddOrUpdateChannelAttributes {
        /// The channel, joined or not (no membership is needed for attributes).
        channel_id: ChannelId,
        /// The keys to add or overwrite; other keys stay.
        attributes: BTreeMap<String, String>,
        /// Whether every member gets `attributes_updated` (optional, default off).
        #[serde(default)]
        options: ChannelAttributeOptions,
    },
    /// `delete_channel_attributes_by_keys`: the client removes some attributes
    /// of a channel; answered `done`. See PROTOCOL.md §7.22.
    DeleteChannelAttributesByKeys {
        /// The channel, joined or not (no membership is needed for attributes).
        channel_id: ChannelId,
        /// At least one key; keys that do not exist are ignored.
        keys: Vec<String>,
        /// Whether every member gets `attributes_updated` (optional, default off).
        #[serde(default)]
        options: ChannelAttributeOptions,
    },
    /// `clear_channel_attributes`: the client removes every attribute of a
    /// channel; answered `done`. See PROTOCOL.md §7.23.
    ClearChannelAttributes {
        /// The channel, joined or not (no membership is needed for attributes).
        channel_id: ChannelId,
        /// Whether every member gets `attributes_updated` (optional, default off).
        #[serde(default)]
        options: ChannelAttributeOptions,
    },
    /// `get_channel_attributes`: the client reads a channel's attributes, all
    /// or only `keys`; answered [`Reply::ChannelAttributes`].
    /// See PROTOCOL.md §7.24.
    GetChannelAttributes {
        /// The channel, joined or not (no membership is needed for attributes).
        channel_id: ChannelId,
        /// Only these keys (1 to [`MAX_KEYS_PER_READ`](super::MAX_KEYS_PER_READ));
        /// `None` (absent or `null`) for all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keys: Option<Vec<String>>,
    },
    /// `ack_offline`: the client has every stored message of this connection
    /// up to and including `message_id` `up_to`; the server deletes them and
    /// sends more. Answered `done`. See PROTOCOL.md §7.25 and §4.11.
    AckOffline {
        /// The highest [`MessageProps::message_id`] the client has taken.
        up_to: u64,
    },
    /// `send_local_invitation`: the caller rings `callee_id`; answered
    /// [`Reply::InvitationSent`]. See PROTOCOL.md §7.26 and §15.
    SendLocalInvitation {
        /// Chosen by the caller, unique among its open invitations; the
        /// callee sees it with the caller's uid, and every later frame about
        /// this invitation names it.
        invitation_id: u64,
        /// Who is rung.
        callee_id: Uid,
        /// Free text for the callee, at most
        /// [`MAX_INVITATION_CONTENT_BYTES`](super::MAX_INVITATION_CONTENT_BYTES)
        /// (optional, default `""`).
        #[serde(default)]
        content: String,
        /// The call's channel, a free string of at most
        /// [`MAX_INVITATION_CHANNEL_BYTES`](super::MAX_INVITATION_CHANNEL_BYTES)
        /// (optional).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<String>,
    },
    /// `cancel_local_invitation`: the caller stops ringing; answered `done`,
    /// the callee gets `remote_invitation_canceled`. See PROTOCOL.md §7.27.
    CancelLocalInvitation {
        /// The caller's id of the invitation.
        invitation_id: u64,
    },
    /// `ack_remote_invitation`: the callee's client confirms that the
    /// invitation rings there (sent by the SDK on receipt); answered `done`,
    /// the caller gets `local_invitation_received_by_peer`. See PROTOCOL.md §7.28.
    AckRemoteInvitation {
        /// Who rang.
        caller_id: Uid,
        /// The caller's id of the invitation.
        invitation_id: u64,
    },
    /// `accept_remote_invitation`: the callee accepts; answered `done` once
    /// the caller was told (`local_invitation_accepted`). See PROTOCOL.md §7.29.
    AcceptRemoteInvitation {
        /// Who rang.
        caller_id: Uid,
        /// The caller's id of the invitation.
        invitation_id: u64,
        /// Free text for the caller, at most
        /// [`MAX_INVITATION_RESPONSE_BYTES`](super::MAX_INVITATION_RESPONSE_BYTES)
        /// (optional, default `""`).
        #[serde(default)]
        response: String,
    },
    /// `refuse_remote_invitation`: the callee refuses; answered `done` once
    /// the caller was told (`local_invitation_refused`). See PROTOCOL.md §7.30.
    RefuseRemoteInvitation {
        /// Who rang.
        caller_id: Uid,
        /// The caller's id of the invitation.
        invitation_id: u64,
        /// Free text for the caller (optional, default `""`); same limit as
        /// for accepting.
        #[serde(default)]
        response: String,
    },
    /// `request_media_upload`: the client asks for a ticket to upload a file
    /// over a transfer connection; answered [`Reply::MediaUploadTicket`].
    /// See PROTOCOL.md §7.31 and §16.
    RequestMediaUpload {
        /// `"FILE"` or `"IMAGE"`.
        media_type: super::MediaType,
        /// The file's size in bytes, at most 32 MiB.
        size: u64,
        /// The SHA-256 of the whole file, 64 lowercase hex digits; the server
        /// checks the bytes against it before it keeps them.
        sha256: String,
        /// The file's name (1–255 bytes, no path separators).
        file_name: String,
        /// Resumes an upload that broke: the media id it was given. The
        /// server answers with how much it already has.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_media_id: Option<String>,
    },
    /// `request_media_download`: the client asks for a ticket to download a
    /// file; answered [`Reply::MediaDownloadTicket`]. See PROTOCOL.md §7.32.
    RequestMediaDownload {
        /// The media id of a FILE or IMAGE message.
        media_id: String,
        /// Start here (to resume a broken download); default 0.
        #[serde(default)]
        offset: u64,
    },
    /// `cancel_media_upload`: the uploader gives up an unfinished upload;
    /// the server deletes what it received. Answered `done`.
    /// See PROTOCOL.md §7.33.
    CancelMediaUpload {
        /// The media id the ticket came with.
        media_id: String,
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
            Request::SendLocalInvitation { .. } => "send_local_invitation",
            Request::CancelLocalInvitation { .. } => "cancel_local_invitation",
            Request::AckRemoteInvitation { .. } => "ack_remote_invitation",
            Request::AcceptRemoteInvitation { .. } => "accept_remote_invitation",
            Request::RefuseRemoteInvitation { .. } => "refuse_remote_invitation",
            Request::RequestMediaUpload { .. } => "request_media_upload",
            Request::RequestMediaDownload { .. } => "request_media_download",
            Request::CancelMediaUpload { .. } => "cancel_media_upload",
        }
    }
}

/// Everything a client sends: a request with the id its response will carry,
/// `{"id":6,"type":"join","channel_id":"lobby"}` (PROTOCOL.md §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFrame {
    /// Chosen by the client and copied into the reply ([`ServerFrame::Ok`] or
    /// [`ServerFrame::Error`]); keep it unique per connection while requests
    /// are in flight, and below 2^53 for JSON libraries that use doubles.
    pub id: u64,
    /// The request; its fields sit next to `id` on the wire.
    #[serde(flatten)]
    pub request: Request,
}

/// Why a client frame could not be decoded. `id` is recovered when the frame
/// had one, so the error reply can still be matched to the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// The frame's `id` when it was a JSON object with an unsigned integer
    /// `id`; `None` otherwise (the error reply then carries `"id":null`).
    pub id: Option<u64>,
    /// What was wrong, starting with `frame is not valid JSON: `,
    /// `frame has no numeric "id" or is not a valid request: ` or
    /// `invalid request: ` (PROTOCOL.md §3.4).
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

    /// The frame as one line of compact JSON, ready for a WebSocket text message.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The success half of a response, the `result` of [`ServerFrame::Ok`],
/// tagged by `kind`; which variant comes back depends on the request
/// (table in PROTOCOL.md §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// `logged_in`: the server's answer to a successful `login`.
    /// See PROTOCOL.md §4.1 and §7.1.
    LoggedIn {
        /// The logged-in user id.
        uid: Uid,
        /// Server time at login (ms since the epoch); use it to estimate clock skew.
        server_ts: u64,
        /// How often the server sends a WebSocket Ping, in ms (5 000 by
        /// default); the client should expect traffic at least this often.
        heartbeat_interval_ms: u64,
        /// True when this login took over a session whose link had dropped
        /// within the grace period: its channels, user attributes and
        /// subscriptions were kept. When `false` after a reconnection, the
        /// client must rejoin and re-subscribe itself (PROTOCOL.md §4.4).
        resumed: bool,
        /// True when the server runs without an app certificate (tokens not checked).
        dev_mode: bool,
        /// Seconds until the token expires, rounded down; present only on a
        /// server with an app certificate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_expires_in_s: Option<u64>,
        /// True when this session gets live channel and peer messages in the
        /// compact form (it asked, and the server supports it).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        compact_events: bool,
    },
    /// `done`: the server's answer, with nothing to return, to `logout`,
    /// `renew_token`, `leave`, the (un)subscribe calls, every attribute write
    /// and `ack_offline`. See PROTOCOL.md §7.
    Done,
    /// `peer_message_sent`: the server's answer to `send_peer_message`.
    /// See PROTOCOL.md §7.5.
    PeerMessageSent {
        /// True when the peer was online (link up) and the message was handed
        /// to its connection. Sending to a peer that is not online is not an
        /// error: both flags are then `false` and the message is dropped.
        has_peer_received: bool,
        /// When the server received the message (ms since the epoch); the
        /// receiver sees the same value in its [`MessageProps`].
        server_received_ts: u64,
        /// True when the peer was offline and the message was stored for later delivery.
        #[serde(default)]
        cached: bool,
    },
    /// `joined`: the server's answer to `join`. See PROTOCOL.md §7.6.
    Joined {
        /// Members of the channel, the new one included.
        member_count: u32,
    },
    /// `channel_message_sent`: the server's answer to `send_channel_message`.
    /// See PROTOCOL.md §7.8.
    ChannelMessageSent {
        /// When the server received the message (ms since the epoch), as the
        /// other members see it in [`MessageProps`].
        server_received_ts: u64,
    },
    /// `members`: the server's answer to `get_members`. See PROTOCOL.md §7.9.
    Members {
        /// The channel's members sorted by uid, those in their grace period included.
        members: Vec<Uid>,
    },
    /// `member_counts`: the server's answer to `get_channel_member_count`.
    /// See PROTOCOL.md §7.10.
    MemberCounts {
        /// One count per channel asked for, in the order asked.
        counts: Vec<ChannelMemberCount>,
    },
    /// `online_status`: the server's answer to `query_peers_online_status`.
    /// See PROTOCOL.md §7.11.
    OnlineStatus {
        /// Each user asked about: `true` only when ONLINE (a user in its grace
        /// period counts as `false`).
        statuses: BTreeMap<Uid, bool>,
    },
    /// `subscriptions`: the server's answer to
    /// `query_peers_by_subscription_option`. See PROTOCOL.md §7.14.
    Subscriptions {
        /// The users this session watches, sorted by uid.
        peer_ids: Vec<Uid>,
    },
    /// `user_attributes`: the server's answer to `get_user_attributes`.
    /// See PROTOCOL.md §7.19.
    UserAttributes {
        /// The user whose attributes these are.
        user_id: Uid,
        /// The attributes (only the asked keys the user has, when keys were given).
        attributes: BTreeMap<String, String>,
    },
    /// `channel_attributes`: the server's answer to `get_channel_attributes`.
    /// See PROTOCOL.md §7.24.
    ChannelAttributes {
        /// The channel whose attributes these are.
        channel_id: ChannelId,
        /// The attributes in key order, each with its provenance; empty when
        /// the channel has none.
        attributes: Vec<ChannelAttribute>,
    },
    /// `pong`: the server's answer to `ping`. See PROTOCOL.md §7.4.
    Pong {
        /// Server time when answering (ms since the epoch).
        server_ts: u64,
    },
    /// `invitation_sent`: the server's answer to `send_local_invitation`.
    /// See PROTOCOL.md §7.26.
    InvitationSent {
        /// True when the callee is logged in and the invitation rings there
        /// (or waits in its resume buffer while its link is down). False
        /// when the callee is offline: the invitation has failed
        /// (`PEER_OFFLINE`) and the server keeps nothing.
        peer_online: bool,
        /// Milliseconds until the invitation expires unanswered
        /// (`INVITATION_EXPIRE`); 0 when `peer_online` is false.
        expires_in_ms: u64,
    },
    /// `media_upload_ticket`: the server's answer to `request_media_upload`.
    /// See PROTOCOL.md §7.31.
    MediaUploadTicket {
        /// The file's id, for the message that will carry it.
        media_id: String,
        /// Opens the transfer connection (`{"ticket":…}`), once, within
        /// `expires_in_ms`.
        ticket: String,
        /// Bytes the server already has (after a broken upload); send from here.
        offset: u64,
        /// Milliseconds the ticket stays good.
        expires_in_ms: u64,
    },
    /// `media_download_ticket`: the server's answer to
    /// `request_media_download`. See PROTOCOL.md §7.32.
    MediaDownloadTicket {
        /// The file's id.
        media_id: String,
        /// Opens the transfer connection, once, within `expires_in_ms`.
        ticket: String,
        /// The whole file's size.
        size: u64,
        /// The SHA-256 of the whole file, to check what arrived.
        sha256: String,
        /// The name it was uploaded with.
        file_name: String,
        /// Milliseconds the ticket stays good.
        expires_in_ms: u64,
    },
}

/// Something the server pushes without being asked, the `event` of
/// [`ServerFrame::Event`], tagged by `kind` (table in PROTOCOL.md §8).
/// Events may arrive before the reply to the request that caused them
/// (PROTOCOL.md §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// `message_from_peer`: sent to the receiver of `send_peer_message`, and
    /// for each stored message after `logged_in`. See PROTOCOL.md §8.13.
    MessageFromPeer {
        /// The sender.
        peer_id: Uid,
        /// The message.
        message: RtmMessage,
        /// When it was received, and whether (and as which id) it was stored.
        props: MessageProps,
    },
    /// `channel_message`: sent to every member but the sender on
    /// `send_channel_message`. See PROTOCOL.md §8.2.
    ChannelMessage {
        /// The channel it was sent to.
        channel_id: ChannelId,
        /// The sender.
        member_id: Uid,
        /// The message.
        message: RtmMessage,
        /// When it was received; `is_offline_message` is always `false`.
        props: MessageProps,
    },
    /// `member_joined`: sent to the other members when someone joins a channel
    /// of at most 512 members. See PROTOCOL.md §8.3 and §9.
    MemberJoined {
        /// The channel joined.
        channel_id: ChannelId,
        /// Who joined.
        member_id: Uid,
    },
    /// `member_left`: sent to the remaining members when someone leaves (or
    /// logs out, is replaced, expires, or ends its grace) a channel of at most
    /// 512 members. See PROTOCOL.md §8.4 and §9.
    MemberLeft {
        /// The channel left.
        channel_id: ChannelId,
        /// Who left.
        member_id: Uid,
    },
    /// `member_count_updated`: sent to every member when the member count
    /// changes, throttled (at most 1 per 1 s, 1 per 3 s above 512 members).
    /// See PROTOCOL.md §8.5 and §9.
    MemberCountUpdated {
        /// The channel.
        channel_id: ChannelId,
        /// Its member count now.
        member_count: u32,
    },
    /// `attributes_updated`: sent to every member after a channel-attribute
    /// write with `enable_notification_to_channel_members`, before the
    /// writer's reply. See PROTOCOL.md §8.6.
    AttributesUpdated {
        /// The channel written.
        channel_id: ChannelId,
        /// The full attribute set after the write, in key order (empty after a clear).
        attributes: Vec<ChannelAttribute>,
    },
    /// `peers_online_status_changed`: sent to watchers on
    /// `subscribe_peers_online_status` and on each presence change.
    /// See PROTOCOL.md §8.7 and §10.
    PeersOnlineStatusChanged {
        /// After a subscription, every peer asked for; after a change, the
        /// one user that changed.
        statuses: BTreeMap<Uid, PeerOnlineState>,
    },
    /// `remote_login`: sent to the replaced session when the same uid logs in
    /// elsewhere; close code 4000 follows, do not reconnect.
    /// See PROTOCOL.md §8.8 and §4.5.
    RemoteLogin,
    /// `token_privilege_will_expire`: sent once per token, 30 s before it
    /// expires (servers with an app certificate); call `renew_token`.
    /// See PROTOCOL.md §8.9.
    TokenPrivilegeWillExpire {
        /// Seconds left until the expiry, rounded down.
        expires_in_s: u64,
    },
    /// `token_expired`: sent when the token expired without renewal; close
    /// code 4004 follows and the session is over. See PROTOCOL.md §8.130.
    TokenExpired,
    /// `server_shutdown`: sent to every logged-in session when the server is
    /// going away; close code 1001 follows, reconnect later.
    /// See PROTOCOL.md §8.131.
    ServerShutdown,
    /// `messages_missed`: sent after a resumed login when messages sent while
    /// the link was down did not fit the server's resume buffer; it comes
    /// exactly where the gap is. See PROTOCOL.md §8.132.
    MessagesMissed {
        /// How many peer or channel messages were lost.
        count: u64,
    },
    /// `remote_invitation_received`: sent to the callee of
    /// `send_local_invitation`; its SDK answers `ack_remote_invitation`.
    /// See PROTOCOL.md §15.
    RemoteInvitationReceived {
        /// Who rings.
        caller_id: Uid,
        /// The caller's id of the invitation.
        invitation_id: u64,
        /// The caller's text (may be empty).
        content: String,
        /// The call's channel, when the caller named one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<String>,
        /// Milliseconds left until it expires unanswered.
        expires_in_ms: u64,
    },
    /// `local_invitation_received_by_peer`: sent to the caller when the
    /// callee's client confirmed the invitation. See PROTOCOL.md §15.
    LocalInvitationReceivedByPeer {
        /// The caller's id of the invitation.
        invitation_id: u64,
    },
    /// `local_invitation_accepted`: sent to the caller when the callee
    /// accepted (ended). See PROTOCOL.md §15.
    LocalInvitationAccepted {
        /// The caller's id of the invitation.
        invitation_id: u64,
        /// The callee's text (may be empty).
        response: String,
    },
    /// `local_invitation_refused`: sent to the caller when the callee
    /// refused (ended). See PROTOCOL.md §15.
    LocalInvitationRefused {
        /// The caller's id of the invitation.
        invitation_id: u64,
        /// The callee's text (may be empty).
        response: String,
    },
    /// `local_invitation_failure`: sent to the caller when its invitation
    /// failed (ended). See PROTOCOL.md §15.
    LocalInvitationFailure {
        /// The caller's id of the invitation.
        invitation_id: u64,
        /// Why.
        reason: LocalInvitationFailureReason,
    },
    /// `remote_invitation_canceled`: sent to the callee when the caller
    /// canceled (ended). See PROTOCOL.md §15.
    RemoteInvitationCanceled {
        /// Who rang.
        caller_id: Uid,
        /// The caller's id of the invitation.
        invitation_id: u64,
        /// The invitation's content, as received.
        content: String,
    },
    /// `remote_invitation_failure`: sent to the callee when the invitation
    /// failed (ended). See PROTOCOL.md §15.
    RemoteInvitationFailure {
        /// Who rang.
        caller_id: Uid,
        /// The caller's id of the invitation.
        invitation_id: u64,
        /// Why.
        reason: RemoteInvitationFailureReason,
    },
}

/// Everything the server sends. On the wire the `type` field tells them
/// apart: `"ok"`, `"error"` or `"event"` (PROTOCOL.md §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// `ok`: sent once for each request that succeeded. See PROTOCOL.md §3.2.
    Ok {
        /// The [`ClientFrame::id`] of the request answered.
        id: u64,
        /// What the request returned.
        result: Reply,
    },
    /// `error`: sent once for each request that failed, and for each
    /// malformed frame or binary message. See PROTOCOL.md §3.2 and §12.
    Error {
        /// The request's id; `None` (`null`) when the failed frame had no
        /// readable numeric id (PROTOCOL.md §3.4).
        id: Option<u64>,
        /// What went wrong: `{code, kind, message}`.
        error: ErrorBody,
    },
    /// `event`: sent whenever the server pushes something unasked.
    /// See PROTOCOL.md §8.
    Event {
        /// The event.
        event: Event,
    },
}

impl ServerFrame {
    /// The frame as one line of compact JSON, ready for a WebSocket text message.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses one text message from the server. Fails on anything that is not
    /// a known frame, including an event or reply kind this build does not
    /// know (a newer server's): log such a frame, do not treat it as fatal.
    ///
    /// Reads both forms of the events a session may receive compact
    /// ([`encode_compact_event`](super::encode_compact_event)).
    pub fn decode(text: &str) -> Result<ServerFrame, serde_json::Error> {
        if super::compact::is_compact(text) {
            return super::compact::decode_compact_event(text)
                .map(|event| ServerFrame::Event { event });
        }
        serde_json::from_str(text)
    }

    /// An `error` frame answering request `id` (`None` when it had no readable id).
    pub fn error(id: Option<u64>, error: ErrorBody) -> Self {
        ServerFrame::Error { id, error }
    }
}

/// Encodes an event as a whole `{"type":"event","event":{...}}` frame, the
/// same text as [`ServerFrame::encode`] would give, without cloning the event;
/// the bytes can be shared by any number of recipients.
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

/// Standard base64 with padding, the encoding of [`RtmMessage::Raw`]'s `raw`
/// on the wire; for tests and tools that write RAW frames by hand.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
