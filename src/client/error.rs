//! The SDK's error type: every failure of an `RtmClient` call, worded for the
//! person who will read it, with the model's kind for programs.

use crate::protocol::{ErrorBody, ErrorKind, IdError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtmError {
    /// The server answered with an error.
    #[error("{}", .0.message)]
    Server(ErrorBody),
    /// Checked before anything was sent (bad id, oversize message …).
    #[error("{}", .0.message)]
    Local(ErrorBody),
    /// The call needs a logged-in, connected client.
    #[error("not logged in: {0}")]
    NotLoggedIn(&'static str),
    /// No reply within the request timeout.
    #[error("no reply from the server within {0} s; check the connection and retry")]
    Timeout(u64),
    /// The link dropped while the request was in flight; it may or may not have been applied.
    #[error("the connection was lost before the server replied; retry once reconnected")]
    ConnectionLost,
    /// The server could not be reached at all.
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The client was already logged in (or logging in).
    #[error("already logged in; log out first")]
    AlreadyLogin,
    /// The server sent something this SDK does not understand.
    #[error("unexpected reply from the server: {0}")]
    Protocol(String),
}

impl RtmError {
    /// The model's error kind, whatever the origin.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RtmError::Server(b) | RtmError::Local(b) => b.kind,
            RtmError::NotLoggedIn(_) => ErrorKind::NotLoggedIn,
            RtmError::Timeout(_) => ErrorKind::Timeout,
            RtmError::ConnectionLost => ErrorKind::Timeout,
            RtmError::Connect { .. } => ErrorKind::Unknown,
            RtmError::AlreadyLogin => ErrorKind::AlreadyLogin,
            RtmError::Protocol(_) => ErrorKind::Unknown,
        }
    }

    pub(crate) fn local(kind: ErrorKind, message: impl Into<String>) -> Self {
        RtmError::Local(ErrorBody::new(kind, message))
    }
}

impl From<IdError> for RtmError {
    fn from(e: IdError) -> Self {
        RtmError::local(ErrorKind::InvalidArgument, e.to_string())
    }
}
