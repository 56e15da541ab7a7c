//! Error kinds on the wire: the model's names, a stable number each, and the
//! body `{code, kind, message}` every failed request is answered with.

use serde::{Deserialize, Serialize};

/// The kind of a failure, spelled on the wire as the model spells it
/// (`"INVALID_ARGUMENT"`, `"TOO_OFTEN"` …). Clients match on this, people read
/// [`ErrorBody::message`]. Each kind has a stable number ([`ErrorKind::code`]);
/// when the server sends which kind is PROTOCOL.md §12.
///
/// Non-exhaustive: new kinds are added (with new codes, after the existing
/// ones) as the protocol grows, so a `match` needs a `_` arm.
///
/// ```
/// use rtm::protocol::ErrorKind;
///
/// let kind = ErrorKind::NotInChannel;
/// assert_eq!(kind.code(), 203);
/// assert_eq!(kind.as_str(), "NOT_IN_CHANNEL");
/// assert_eq!(kind.to_string(), "NOT_IN_CHANNEL");
/// // The serde spelling is the wire spelling.
/// assert_eq!(serde_json::to_string(&kind).unwrap(), r#""NOT_IN_CHANNEL""#);
/// let parsed: ErrorKind = serde_json::from_str(r#""INVALID_USERID""#).unwrap();
/// assert_eq!(parsed, ErrorKind::InvalidUserId);
/// assert_eq!(parsed.code(), 103);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Anything not covered below; the message says what happened.
    Unknown,
    /// A field is missing, malformed or out of range (bad id, bad JSON, unknown frame type).
    InvalidArgument,
    /// The server refused the login (for example an unsupported protocol version).
    Rejected,
    /// The token does not verify against the server's app certificate.
    InvalidToken,
    /// The token is past its expiry.
    TokenExpired,
    /// The credentials are valid but do not allow this.
    NotAuthorized,
    /// `login` sent on a connection that is already logged in.
    AlreadyLogin,
    /// No answer in time (raised by the SDK, never sent by the server).
    Timeout,
    /// A call-frequency limit was hit; nothing was changed.
    TooOften,
    /// The operation needs a logged-in session.
    NotLoggedIn,
    /// A message is empty, too large or of an unknown type.
    InvalidMessage,
    /// The client already joined the maximum number of channels.
    ExceedLimit,
    /// `join` for a channel this client already joined.
    AlreadyJoined,
    /// `leave`/`send` for a channel this client has not joined.
    NotInChannel,
    /// An attribute call would break a size or count limit; nothing was changed.
    SizeOverflow,
    /// The user whose attributes were asked for is not online.
    UserNotFound,
    /// More presence subscriptions than allowed; nothing was changed.
    Overflow,
    /// The media or object does not exist (or expired).
    NotExist,
    /// Reserved: the server is busy. (A server at its connection cap closes
    /// new connections with close code 4006 instead.)
    ServerBusy,
    /// An offline message was not stored: the sender's or the server's
    /// storage quota is used up. Nothing was stored; send it when the
    /// receiver is online, or later.
    QuotaExceeded,
    // New kinds go below, never in between: the order is part of no contract,
    // but the numbers are, and appending keeps every existing one in place.
    /// A user id (login uid, peer id) is malformed: empty, longer than 64
    /// bytes, `null`, or with a character outside the allowed set. Spelled
    /// `INVALID_USERID` as in the reference SDK.
    #[serde(rename = "INVALID_USERID")]
    InvalidUserId,
    /// The same channel was joined more than twice in 5 s (leave and join
    /// again later); separate from [`ErrorKind::TooOften`], which counts joins
    /// of all channels.
    JoinSameChannelTooOften,
    /// An invitation call needs the invitation sent first (`cancel` before
    /// `send`); the reference's `INVITATION_API_CALL_ERR_NOT_STARTED`.
    NotStarted,
    /// The invitation has ended (accepted, refused, canceled, failed or
    /// expired); nothing more can be done with it. The reference's
    /// `INVITATION_API_CALL_ERR_ALREADY_END`.
    AlreadyEnd,
    /// The invitation was already answered (accepted, or refused); the
    /// reference's `INVITATION_API_CALL_ERR_ALREADY_ACCEPT`.
    AlreadyAccept,
    /// The invitation was already sent; create a new one to ring again. The
    /// reference's `INVITATION_API_CALL_ERR_ALREADY_SENT`.
    AlreadySent,
    /// Too many uploads and downloads at once (9 per user, as in the
    /// reference); wait for one to finish.
    ConcurrencyLimitExceeded,
    /// A transfer stopped half-way: canceled, or its link broke and could
    /// not be resumed. Nothing was kept. Never sent by the server.
    Interrupted,
}

impl ErrorKind {
    /// Stable numeric code (for clients that prefer numbers).
    pub fn code(self) -> u16 {
        match self {
            ErrorKind::Unknown => 1,
            ErrorKind::InvalidArgument => 2,
            ErrorKind::Rejected => 3,
            ErrorKind::InvalidToken => 4,
            ErrorKind::TokenExpired => 5,
            ErrorKind::NotAuthorized => 6,
            ErrorKind::AlreadyLogin => 7,
            ErrorKind::Timeout => 8,
            ErrorKind::TooOften => 9,
            ErrorKind::NotLoggedIn => 101,
            ErrorKind::InvalidMessage => 102,
            ErrorKind::ExceedLimit => 201,
            ErrorKind::AlreadyJoined => 202,
            ErrorKind::NotInChannel => 203,
            ErrorKind::SizeOverflow => 301,
            ErrorKind::UserNotFound => 302,
            ErrorKind::Overflow => 401,
            ErrorKind::NotExist => 501,
            ErrorKind::ServerBusy => 601,
            ErrorKind::QuotaExceeded => 602,
            ErrorKind::InvalidUserId => 103,
            ErrorKind::JoinSameChannelTooOften => 204,
            ErrorKind::NotStarted => 701,
            ErrorKind::AlreadyEnd => 702,
            ErrorKind::AlreadyAccept => 703,
            ErrorKind::AlreadySent => 704,
            ErrorKind::ConcurrencyLimitExceeded => 801,
            ErrorKind::Interrupted => 802,
        }
    }

    /// The wire spelling, e.g. `"NOT_IN_CHANNEL"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unknown => "UNKNOWN",
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::Rejected => "REJECTED",
            ErrorKind::InvalidToken => "INVALID_TOKEN",
            ErrorKind::TokenExpired => "TOKEN_EXPIRED",
            ErrorKind::NotAuthorized => "NOT_AUTHORIZED",
            ErrorKind::AlreadyLogin => "ALREADY_LOGIN",
            ErrorKind::Timeout => "TIMEOUT",
            ErrorKind::TooOften => "TOO_OFTEN",
            ErrorKind::NotLoggedIn => "NOT_LOGGED_IN",
            ErrorKind::InvalidMessage => "INVALID_MESSAGE",
            ErrorKind::ExceedLimit => "EXCEED_LIMIT",
            ErrorKind::AlreadyJoined => "ALREADY_JOINED",
            ErrorKind::NotInChannel => "NOT_IN_CHANNEL",
            ErrorKind::SizeOverflow => "SIZE_OVERFLOW",
            ErrorKind::UserNotFound => "USER_NOT_FOUND",
            ErrorKind::Overflow => "OVERFLOW",
            ErrorKind::NotExist => "NOT_EXIST",
            ErrorKind::ServerBusy => "SERVER_BUSY",
            ErrorKind::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorKind::InvalidUserId => "INVALID_USERID",
            ErrorKind::JoinSameChannelTooOften => "JOIN_SAME_CHANNEL_TOO_OFTEN",
            ErrorKind::NotStarted => "NOT_STARTED",
            ErrorKind::AlreadyEnd => "ALREADY_END",
            ErrorKind::AlreadyAccept => "ALREADY_ACCEPT",
            ErrorKind::AlreadySent => "ALREADY_SENT",
            ErrorKind::ConcurrencyLimitExceeded => "CONCURRENCY_LIMIT_EXCEEDED",
            ErrorKind::Interrupted => "INTERRUPTED",
        }
    }
}

/// A call family of the Agora RTM Web SDK 1.x: each of its methods rejects
/// with a number from its family's own enumeration (`RtmErrorCode.LoginError`,
/// `RtmErrorCode.PeerMessageError` …), and the same number means different
/// things in different families (5 is `INVALID_TOKEN` for
/// login but `TOO_OFTEN` for peer messages). [`ErrorKind::agora_code`] turns a
/// kind into the number code written against Agora expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallFamily {
    /// `login` (`LoginError`).
    Login,
    /// `logout` (`LogoutError`).
    Logout,
    /// `renew_token` (`RenewTokenError`).
    RenewToken,
    /// `send_message_to_peer` (`PeerMessageError`).
    PeerMessage,
    /// `RtmChannel::join` (`JoinChannelError`).
    JoinChannel,
    /// `RtmChannel::leave` (`LeaveChannelError`).
    LeaveChannel,
    /// `RtmChannel::send_message` (`ChannelMessageError`).
    ChannelMessage,
    /// `RtmChannel::get_members` (`GetMembersError`).
    GetMembers,
    /// `get_channel_member_count` (`GetChannelMemberCountErrCode`).
    GetChannelMemberCount,
    /// `query_peers_online_status` (`QueryPeersOnlineStatusError`).
    QueryPeersOnlineStatus,
    /// `subscribe_peers_online_status` / `unsubscribe_peers_online_status`
    /// (`PeerSubscriptionStatusError`).
    PeerSubscriptionStatus,
    /// `query_peers_by_subscription_option` (`QueryPeersBySubscriptionOptionError`).
    QueryPeersBySubscriptionOption,
    /// Every user and channel attribute call (`AttributeOperationError`).
    AttributeOperation,
    /// `LocalInvitation::send`/`cancel`, `RemoteInvitation::accept`/`refuse`
    /// (`InvitationApiCallError`).
    InvitationApiCall,
    /// `create_media_message_by_uploading` (`UploadMediaError`).
    UploadMedia,
    /// `download_media` (`DownloadMediaError`).
    DownloadMedia,
}

impl CallFamily {
    /// Every family, for tables and tests.
    pub const ALL: [CallFamily; 16] = [
        CallFamily::Login,
        CallFamily::Logout,
        CallFamily::RenewToken,
        CallFamily::PeerMessage,
        CallFamily::JoinChannel,
        CallFamily::LeaveChannel,
        CallFamily::ChannelMessage,
        CallFamily::GetMembers,
        CallFamily::GetChannelMemberCount,
        CallFamily::QueryPeersOnlineStatus,
        CallFamily::PeerSubscriptionStatus,
        CallFamily::QueryPeersBySubscriptionOption,
        CallFamily::AttributeOperation,
        CallFamily::InvitationApiCall,
        CallFamily::UploadMedia,
        CallFamily::DownloadMedia,
    ];

    /// The family of an SDK method, by its rtm name (`"send_message_to_peer"`)
    /// or its Agora name (`"sendMessageToPeer"`); channel methods also answer
    /// to `"join"`, `"leave"`, `"send_message"`/`"sendMessage"`,
    /// `"get_members"`/`"getMembers"`. `None` for methods that fail with no
    /// numbered code in the reference (`create_channel`, `update_config` …).
    pub fn of_method(name: &str) -> Option<CallFamily> {
        Some(match name {
            "login" => CallFamily::Login,
            "logout" => CallFamily::Logout,
            "renew_token" | "renewToken" => CallFamily::RenewToken,
            "send_message_to_peer" | "sendMessageToPeer" => CallFamily::PeerMessage,
            "join" => CallFamily::JoinChannel,
            "leave" => CallFamily::LeaveChannel,
            "send_message" | "sendMessage" => CallFamily::ChannelMessage,
            "get_members" | "getMembers" => CallFamily::GetMembers,
            "get_channel_member_count" | "getChannelMemberCount" => {
                CallFamily::GetChannelMemberCount
            }
            "query_peers_online_status" | "queryPeersOnlineStatus" => {
                CallFamily::QueryPeersOnlineStatus
            }
            "subscribe_peers_online_status"
            | "subscribePeersOnlineStatus"
            | "unsubscribe_peers_online_status"
            | "unsubscribePeersOnlineStatus" => CallFamily::PeerSubscriptionStatus,
            "query_peers_by_subscription_option" | "queryPeersBySubscriptionOption" => {
                CallFamily::QueryPeersBySubscriptionOption
            }
            "set_local_user_attributes"
            | "setLocalUserAttributes"
            | "add_or_update_local_user_attributes"
            | "addOrUpdateLocalUserAttributes"
            | "delete_local_user_attributes_by_keys"
            | "deleteLocalUserAttributesByKeys"
            | "clear_local_user_attributes"
            | "clearLocalUserAttributes"
            | "get_user_attributes"
            | "getUserAttributes"
            | "get_user_attributes_by_keys"
            | "getUserAttributesByKeys"
            | "set_channel_attributes"
            | "setChannelAttributes"
            | "add_or_update_channel_attributes"
            | "addOrUpdateChannelAttributes"
            | "delete_channel_attributes_by_keys"
            | "deleteChannelAttributesByKeys"
            | "clear_channel_attributes"
            | "clearChannelAttributes"
            | "get_channel_attributes"
            | "getChannelAttributes"
            | "get_channel_attributes_by_keys"
            | "getChannelAttributesByKeys" => CallFamily::AttributeOperation,
            "accept" | "refuse" | "cancel" | "send" => CallFamily::InvitationApiCall,
            "create_media_message_by_uploading" | "createMediaMessageByUploading" => {
                CallFamily::UploadMedia
            }
            "download_media" | "downloadMedia" | "download_media_to_file" => {
                CallFamily::DownloadMedia
            }
            _ => return None,
        })
    }
}

/// The reference's `*_USER_NOT_LOGGED_IN`, the same number in every family.
const AGORA_NOT_LOGGED_IN: u32 = 102;

impl ErrorKind {
    /// The number the Agora RTM Web SDK 1.x gives this failure in `family`
    /// (its `RtmErrorCode` enumerations), so code that switches on Agora's
    /// numbers keeps working. A kind the family has no member for maps to the
    /// family's general failure (`FAILURE`/`UNKNOWN`); `None` only where the
    /// family has no general failure either (`logout` knows just 102; the
    /// invitation calls know only misuse, their other failures being events).
    pub fn agora_code(self, family: CallFamily) -> Option<u32> {
        use CallFamily as F;
        use ErrorKind as K;
        if self == K::NotLoggedIn {
            return Some(AGORA_NOT_LOGGED_IN);
        }
        let code = match family {
            // LoginError: UNKNOWN 1, REJECTED 2, INVALID_ARGUMENT 3,
            // INVALID_APP_ID 4, INVALID_TOKEN 5, TOKEN_EXPIRED 6,
            // NOT_AUTHORIZED 7, ALREADY_LOGIN 8, TIMEOUT 9, TOO_OFTEN 10.
            F::Login => match self {
                K::Rejected => 2,
                K::InvalidArgument | K::InvalidUserId => 3,
                K::InvalidToken => 5,
                K::TokenExpired => 6,
                K::NotAuthorized => 7,
                K::AlreadyLogin => 8,
                K::Timeout => 9,
                K::TooOften => 10,
                _ => 1,
            },
            // LogoutError: USER_NOT_LOGGED_IN 102 only.
            F::Logout => return None,
            // RenewTokenError: FAILURE 1, INVALID_ARGUMENT 2, REJECTED 3,
            // TOO_OFTEN 4, TOKEN_EXPIRED 5, INVALID_TOKEN 6.
            F::RenewToken => match self {
                K::InvalidArgument => 2,
                K::Rejected | K::NotAuthorized => 3,
                K::TooOften => 4,
                K::TokenExpired => 5,
                K::InvalidToken => 6,
                _ => 1,
            },
            // PeerMessageError: FAILURE 1, TIMEOUT 2, TOO_OFTEN 5,
            // INVALID_USERID 6, INVALID_MESSAGE 7, INCOMPATIBLE_MESSAGE 8.
            F::PeerMessage => match self {
                K::Timeout => 2,
                K::TooOften => 5,
                K::InvalidUserId => 6,
                K::InvalidMessage => 7,
                _ => 1,
            },
            // JoinChannelError: FAILURE 1, REJECTED 2, INVALID_ARGUMENT 3,
            // TIMEOUT 4, EXCEED_LIMIT 5, ALREADY_JOINED 6, TOO_OFTEN 7,
            // JOIN_SAME_CHANNEL_TOO_OFTEN 8.
            F::JoinChannel => match self {
                K::Rejected | K::NotAuthorized => 2,
                K::InvalidArgument => 3,
                K::Timeout => 4,
                K::ExceedLimit => 5,
                K::AlreadyJoined => 6,
                K::TooOften => 7,
                K::JoinSameChannelTooOften => 8,
                _ => 1,
            },
            // LeaveChannelError: FAILURE 1, REJECTED 2, NOT_IN_CHANNEL 3.
            F::LeaveChannel => match self {
                K::Rejected => 2,
                K::NotInChannel => 3,
                _ => 1,
            },
            // ChannelMessageError: FAILURE 1, TIMEOUT 2, TOO_OFTEN 3,
            // INVALID_MESSAGE 4, NOT_IN_CHANNEL 5.
            F::ChannelMessage => match self {
                K::Timeout => 2,
                K::TooOften => 3,
                K::InvalidMessage => 4,
                K::NotInChannel => 5,
                _ => 1,
            },
            // GetMembersError: FAILURE 1, REJECTED 2, TIMEOUT 3, TOO_OFTEN 4,
            // NOT_IN_CHANNEL 5.
            F::GetMembers => match self {
                K::Rejected => 2,
                K::Timeout => 3,
                K::TooOften => 4,
                K::NotInChannel => 5,
                _ => 1,
            },
            // GetChannelMemberCountErrCode: FAILURE 1, INVALID_ARGUMENT 2,
            // TOO_OFTEN 3, TIMEOUT 4, EXCEED_LIMIT 5.
            F::GetChannelMemberCount => match self {
                K::InvalidArgument => 2,
                K::TooOften => 3,
                K::Timeout => 4,
                K::ExceedLimit => 5,
                _ => 1,
            },
            // QueryPeersOnlineStatusError: FAILURE 1, INVALID_ARGUMENT 2,
            // REJECTED 3, TIMEOUT 4, TOO_OFTEN 5.
            F::QueryPeersOnlineStatus => match self {
                K::InvalidArgument | K::InvalidUserId => 2,
                K::Rejected => 3,
                K::Timeout => 4,
                K::TooOften => 5,
                _ => 1,
            },
            // PeerSubscriptionStatusError: FAILURE 1, INVALID_ARGUMENT 2,
            // REJECTED 3, TIMEOUT 4, TOO_OFTEN 5, OVERFLOW 6.
            F::PeerSubscriptionStatus => match self {
                K::InvalidArgument | K::InvalidUserId => 2,
                K::Rejected => 3,
                K::Timeout => 4,
                K::TooOften => 5,
                K::Overflow => 6,
                _ => 1,
            },
            // QueryPeersBySubscriptionOptionError: FAILURE 1, TIMEOUT 2,
            // TOO_OFTEN 3.
            F::QueryPeersBySubscriptionOption => match self {
                K::Timeout => 2,
                K::TooOften => 3,
                _ => 1,
            },
            // AttributeOperationError: FAILURE 2, INVALID_ARGUMENT 3,
            // SIZE_OVERFLOW 4, TOO_OFTEN 5, USER_NOT_FOUND 6, TIMEOUT 7.
            F::AttributeOperation => match self {
                K::InvalidArgument | K::InvalidUserId => 3,
                K::SizeOverflow => 4,
                K::TooOften => 5,
                K::UserNotFound => 6,
                K::Timeout => 7,
                _ => 2,
            },
            // InvitationApiCallError: INVALID_ARGUMENT 1, NOT_STARTED 2,
            // ALREADY_END 3, ALREADY_ACCEPT 4, ALREADY_SENT 5; it has no
            // general failure, so the rest have no number.
            F::InvitationApiCall => match self {
                K::InvalidArgument | K::InvalidUserId => 1,
                K::NotStarted => 2,
                K::AlreadyEnd => 3,
                K::AlreadyAccept => 4,
                K::AlreadySent => 5,
                _ => return None,
            },
            // UploadMediaError: FAILURE 1, INVALID_ARGUMENT 2, TIMEOUT 3,
            // SIZE_OVERFLOW 4, CONCURRENCY_LIMIT_EXCEEDED 5, INTERRUPTED 6.
            F::UploadMedia => match self {
                K::InvalidArgument | K::InvalidMessage => 2,
                K::Timeout => 3,
                K::SizeOverflow | K::QuotaExceeded => 4,
                K::ConcurrencyLimitExceeded => 5,
                K::Interrupted => 6,
                _ => 1,
            },
            // DownloadMediaError: FAILURE 1, INVALID_ARGUMENT 2, TIMEOUT 3,
            // NOT_EXIST 4, CONCURRENCY_LIMIT_EXCEEDED 5, INTERRUPTED 6.
            F::DownloadMedia => match self {
                K::InvalidArgument => 2,
                K::Timeout => 3,
                K::NotExist => 4,
                K::ConcurrencyLimitExceeded => 5,
                K::Interrupted => 6,
                _ => 1,
            },
        };
        Some(code)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error half of a response, the `error` of
/// [`ServerFrame::Error`](super::ServerFrame::Error):
/// `{"code":203,"kind":"NOT_IN_CHANNEL","message":"…"}` (PROTOCOL.md §12).
/// Displayed as `message (KIND)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({kind})")]
pub struct ErrorBody {
    /// The stable number of `kind` ([`ErrorKind::code`]), for clients that
    /// prefer numbers.
    pub code: u16,
    /// What went wrong; match on this.
    pub kind: ErrorKind,
    /// For people: what went wrong and what to do. Its text may change
    /// between versions; do not parse it.
    pub message: String,
}

impl ErrorBody {
    /// A body of `kind` with its matching `code`.
    ///
    /// ```
    /// use rtm::protocol::{ErrorBody, ErrorKind};
    ///
    /// let body = ErrorBody::new(ErrorKind::TooOften, "slow down");
    /// assert_eq!(body.code, 9);
    /// assert_eq!(body.to_string(), "slow down (TOO_OFTEN)");
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            code: kind.code(),
            kind,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind, so that a new one cannot be forgotten in these tables.
    const KINDS: [ErrorKind; 28] = [
        ErrorKind::Unknown,
        ErrorKind::InvalidArgument,
        ErrorKind::Rejected,
        ErrorKind::InvalidToken,
        ErrorKind::TokenExpired,
        ErrorKind::NotAuthorized,
        ErrorKind::AlreadyLogin,
        ErrorKind::Timeout,
        ErrorKind::TooOften,
        ErrorKind::NotLoggedIn,
        ErrorKind::InvalidMessage,
        ErrorKind::ExceedLimit,
        ErrorKind::AlreadyJoined,
        ErrorKind::NotInChannel,
        ErrorKind::SizeOverflow,
        ErrorKind::UserNotFound,
        ErrorKind::Overflow,
        ErrorKind::NotExist,
        ErrorKind::ServerBusy,
        ErrorKind::QuotaExceeded,
        ErrorKind::InvalidUserId,
        ErrorKind::JoinSameChannelTooOften,
        ErrorKind::NotStarted,
        ErrorKind::AlreadyEnd,
        ErrorKind::AlreadyAccept,
        ErrorKind::AlreadySent,
        ErrorKind::ConcurrencyLimitExceeded,
        ErrorKind::Interrupted,
    ];

    #[test]
    fn wire_codes_are_stable_and_distinct() {
        let codes: Vec<u16> = KINDS.iter().map(|k| k.code()).collect();
        assert_eq!(
            codes,
            [
                1, 2, 3, 4, 5, 6, 7, 8, 9, 101, 102, 201, 202, 203, 301, 302, 401, 501, 601, 602,
                103, 204, 701, 702, 703, 704, 801, 802
            ]
        );
        for k in KINDS {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", k.as_str()),
                "serde and as_str agree"
            );
            assert_eq!(serde_json::from_str::<ErrorKind>(&json).unwrap(), k);
        }
        assert_eq!(ErrorKind::InvalidUserId.as_str(), "INVALID_USERID");
    }

    /// The reference's numbers, family by family (Agora RTM Web SDK 1.x,
    /// `RtmErrorCode.*`): (kind, number).
    #[test]
    fn agora_numbers_by_family() {
        use CallFamily as F;
        use ErrorKind as K;
        let table: &[(F, &[(K, u32)])] = &[
            (
                F::Login,
                &[
                    (K::Unknown, 1),
                    (K::Rejected, 2),
                    (K::InvalidArgument, 3),
                    (K::InvalidUserId, 3),
                    (K::InvalidToken, 5),
                    (K::TokenExpired, 6),
                    (K::NotAuthorized, 7),
                    (K::AlreadyLogin, 8),
                    (K::Timeout, 9),
                    (K::TooOften, 10),
                ],
            ),
            (F::Logout, &[(K::NotLoggedIn, 102)]),
            (
                F::RenewToken,
                &[
                    (K::Unknown, 1),
                    (K::InvalidArgument, 2),
                    (K::TooOften, 4),
                    (K::TokenExpired, 5),
                    (K::InvalidToken, 6),
                    (K::NotLoggedIn, 102),
                ],
            ),
            (
                F::PeerMessage,
                &[
                    (K::QuotaExceeded, 1),
                    (K::Timeout, 2),
                    (K::TooOften, 5),
                    (K::InvalidUserId, 6),
                    (K::InvalidMessage, 7),
                    (K::NotLoggedIn, 102),
                ],
            ),
            (
                F::JoinChannel,
                &[
                    (K::Unknown, 1),
                    (K::InvalidArgument, 3),
                    (K::Timeout, 4),
                    (K::ExceedLimit, 5),
                    (K::AlreadyJoined, 6),
                    (K::TooOften, 7),
                    (K::JoinSameChannelTooOften, 8),
                    (K::NotLoggedIn, 102),
                ],
            ),
            (
                F::LeaveChannel,
                &[(K::Unknown, 1), (K::NotInChannel, 3), (K::NotLoggedIn, 102)],
            ),
            (
                F::ChannelMessage,
                &[
                    (K::Unknown, 1),
                    (K::Timeout, 2),
                    (K::TooOften, 3),
                    (K::InvalidMessage, 4),
                    (K::NotInChannel, 5),
                    (K::NotLoggedIn, 102),
                ],
            ),
            (
                F::GetMembers,
                &[
                    (K::Unknown, 1),
                    (K::Timeout, 3),
                    (K::TooOften, 4),
                    (K::NotInChannel, 5),
                    (K::NotLoggedIn, 102),
                ],
            ),
            (
                F::GetChannelMemberCount,
                &[
                    (K::Unknown, 1),
                    (K::InvalidArgument, 2),
                    (K::TooOften, 3),
                    (K::Timeout, 4),
                    (K::ExceedLimit, 5),
                    (K::NotLoggedIn, 102),
                ],
            ),
            (
                F::QueryPeersOnlineStatus,
                &[
                    (K::Unknown, 1),
                    (K::InvalidArgument, 2),
                    (K::InvalidUserId, 2),
                    (K::Timeout, 4),
                    (K::TooOften, 5),
                    (K::NotLoggedIn, 102),
                ],
            ),
            (
                F::PeerSubscriptionStatus,
                &[
                    (K::Unknown, 1),
                    (K::InvalidArgument, 2),
                    (K::Timeout, 4),
                    (K::TooOften, 5),
                    (K::Overflow, 6),
                    (K::NotLoggedIn, 102),
                ],
            ),
            (
                F::QueryPeersBySubscriptionOption,
                &[
                    (K::Unknown, 1),
                    (K::Timeout, 2),
                    (K::TooOften, 3),
                    (K::NotLoggedIn, 102),
                ],
            ),
            (
                F::AttributeOperation,
                &[
                    (K::Unknown, 2),
                    (K::InvalidArgument, 3),
                    (K::SizeOverflow, 4),
                    (K::TooOften, 5),
                    (K::UserNotFound, 6),
                    (K::Timeout, 7),
                    (K::NotLoggedIn, 102),
                ],
            ),
            (
                F::InvitationApiCall,
                &[
                    (K::InvalidArgument, 1),
                    (K::NotStarted, 2),
                    (K::AlreadyEnd, 3),
                    (K::AlreadyAccept, 4),
                    (K::AlreadySent, 5),
                ],
            ),
            (
                F::UploadMedia,
                &[
                    (K::Unknown, 1),
                    (K::InvalidArgument, 2),
                    (K::Timeout, 3),
                    (K::SizeOverflow, 4),
                    (K::ConcurrencyLimitExceeded, 5),
                    (K::Interrupted, 6),
                    (K::NotLoggedIn, 102),
                ],
            ),
            (
                F::DownloadMedia,
                &[
                    (K::Unknown, 1),
                    (K::InvalidArgument, 2),
                    (K::Timeout, 3),
                    (K::NotExist, 4),
                    (K::ConcurrencyLimitExceeded, 5),
                    (K::Interrupted, 6),
                    (K::NotLoggedIn, 102),
                ],
            ),
        ];
        assert_eq!(table.len(), CallFamily::ALL.len(), "every family listed");
        for (family, rows) in table {
            for (kind, number) in *rows {
                assert_eq!(
                    kind.agora_code(*family),
                    Some(*number),
                    "{kind} in {family:?}"
                );
            }
        }
    }

    #[test]
    fn every_kind_has_a_number_in_every_family_but_logout() {
        use ErrorKind as K;
        for family in CallFamily::ALL {
            for kind in KINDS {
                let code = kind.agora_code(family);
                if family == CallFamily::Logout && kind != ErrorKind::NotLoggedIn {
                    assert_eq!(code, None, "{kind}: logout has no general failure");
                } else if family == CallFamily::InvitationApiCall
                    && !matches!(
                        kind,
                        K::InvalidArgument
                            | K::InvalidUserId
                            | K::NotStarted
                            | K::AlreadyEnd
                            | K::AlreadyAccept
                            | K::AlreadySent
                            | K::NotLoggedIn
                    )
                {
                    // Its failures that are not misuse come as failure
                    // events (reasons), not as numbered call errors.
                    assert_eq!(
                        code, None,
                        "{kind}: the invitation calls have no general failure"
                    );
                } else {
                    assert!(code.is_some(), "{kind} in {family:?}");
                }
            }
        }
    }

    #[test]
    fn methods_find_their_family_by_either_name() {
        assert_eq!(
            CallFamily::of_method("sendMessageToPeer"),
            Some(CallFamily::PeerMessage)
        );
        assert_eq!(
            CallFamily::of_method("send_message_to_peer"),
            Some(CallFamily::PeerMessage)
        );
        assert_eq!(
            CallFamily::of_method("getChannelAttributesByKeys"),
            Some(CallFamily::AttributeOperation)
        );
        assert_eq!(
            CallFamily::of_method("unsubscribe_peers_online_status"),
            Some(CallFamily::PeerSubscriptionStatus)
        );
        assert_eq!(CallFamily::of_method("create_channel"), None);
    }
}
