//! Error kinds on the wire: the model's names, a stable number each, and the
//! body `{code, kind, message}` every failed request is answered with.

use serde::{Deserialize, Serialize};

/// The kind of a failure, spelled on the wire as the model spells it
/// (`"INVALID_ARGUMENT"`, `"TOO_OFTEN"` …). Clients match on this, people read
/// [`ErrorBody::message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error half of a response: `{"code": 203, "kind": "NOT_IN_CHANNEL", "message": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({kind})")]
pub struct ErrorBody {
    pub code: u16,
    pub kind: ErrorKind,
    pub message: String,
}

impl ErrorBody {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            code: kind.code(),
            kind,
            message: message.into(),
        }
    }
}
