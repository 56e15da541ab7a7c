//! The SDK's error type: every failure of an `RtmClient` call, worded for the
//! person who will read it, with the model's kind for programs.

use crate::protocol::{CallFamily, ErrorBody, ErrorKind, IdError};

/// Why an SDK call failed. Every variant has a model [`ErrorKind`]
/// ([`kind`](Self::kind)) for programs, a message worded for people
/// (`Display`), and the reference's number
/// ([`agora_code`](Self::agora_code)) for code ported from Agora, which
/// reports one error enum per method instead. New variants may be added:
/// match on [`kind`](Self::kind), or with a `_` arm.
#[non_exhaustive]
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
    Connect {
        /// The server URL tried.
        url: String,
        /// What went wrong (DNS, refused, TLS …).
        reason: String,
    },
    /// A server URL given to the client is not one it can use (checked
    /// before connecting, by [`RtmClient::with_servers`] and by `login`).
    ///
    /// [`RtmClient::with_servers`]: super::RtmClient::with_servers
    #[error("bad server URL {url:?}: {reason}")]
    InvalidServerUrl {
        /// The URL as given (empty when none was).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
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
            RtmError::InvalidServerUrl { .. } => ErrorKind::InvalidArgument,
            RtmError::AlreadyLogin => ErrorKind::AlreadyLogin,
            RtmError::Protocol(_) => ErrorKind::Unknown,
        }
    }

    /// The number the Agora RTM Web SDK 1.x gives this failure when it comes
    /// from a method of `family` (see [`CallFamily`] and
    /// [`ErrorKind::agora_code`]): `err.agora_code(CallFamily::PeerMessage)`
    /// after `send_message_to_peer` gives what `PeerMessageError` would have.
    /// [`CallFamily::of_method`] finds the family by method name.
    ///
    /// ```
    /// use rtm::client::{CallFamily, ErrorKind, RtmError, Uid};
    ///
    /// // A timeout is TIMEOUT (2) for a peer message, but 7 for an
    /// // attribute call: the reference numbers each method's errors apart.
    /// let timeout = RtmError::Timeout(10);
    /// assert_eq!(timeout.kind(), ErrorKind::Timeout);
    /// assert_eq!(timeout.agora_code(CallFamily::PeerMessage), Some(2));
    /// assert_eq!(timeout.agora_code(CallFamily::AttributeOperation), Some(7));
    ///
    /// // A malformed peer id, as `send_message_to_peer` would report it.
    /// let bad: RtmError = Uid::new("a/b").unwrap_err().into();
    /// assert_eq!(bad.kind(), ErrorKind::InvalidUserId);
    /// let family = CallFamily::of_method("sendMessageToPeer").unwrap();
    /// assert_eq!(bad.agora_code(family), Some(6));
    /// ```
    pub fn agora_code(&self, family: CallFamily) -> Option<u32> {
        self.kind().agora_code(family)
    }

    pub(crate) fn local(kind: ErrorKind, message: impl Into<String>) -> Self {
        RtmError::Local(ErrorBody::new(kind, message))
    }
}

impl From<IdError> for RtmError {
    /// A bad user id is its own kind, as in the reference (`INVALID_USERID`);
    /// any other bad id is an invalid argument.
    fn from(e: IdError) -> Self {
        let kind = if e.is_user_id() {
            ErrorKind::InvalidUserId
        } else {
            ErrorKind::InvalidArgument
        };
        RtmError::local(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ChannelId, Uid};

    #[test]
    fn bad_ids_map_to_the_references_kinds_and_numbers() {
        let uid: RtmError = Uid::new("a/b").unwrap_err().into();
        assert_eq!(uid.kind(), ErrorKind::InvalidUserId);
        assert_eq!(uid.agora_code(CallFamily::PeerMessage), Some(6));
        assert_eq!(uid.agora_code(CallFamily::Login), Some(3));
        let channel: RtmError = ChannelId::new("").unwrap_err().into();
        assert_eq!(channel.kind(), ErrorKind::InvalidArgument);
        assert_eq!(channel.agora_code(CallFamily::JoinChannel), Some(3));
    }

    #[test]
    fn sdk_side_failures_have_numbers_too() {
        let timeout = RtmError::Timeout(10);
        assert_eq!(timeout.agora_code(CallFamily::PeerMessage), Some(2));
        assert_eq!(timeout.agora_code(CallFamily::AttributeOperation), Some(7));
        let not_in = RtmError::NotLoggedIn("log in first");
        for family in CallFamily::ALL {
            assert_eq!(not_in.agora_code(family), Some(102));
        }
        assert_eq!(
            RtmError::AlreadyLogin.agora_code(CallFamily::Login),
            Some(8)
        );
    }
}
