//! Call invitations on the wire (PROTOCOL.md §15): the limits, the states of
//! both sides and the reasons an invitation fails, each with the number the
//! reference gives it. The requests and events themselves are in
//! [`Request`](super::Request) and [`Event`](super::Event).

use serde::{Deserialize, Serialize};

use super::{ErrorBody, ErrorKind};

/// Largest invitation `content`, 8 192 bytes of UTF-8; larger is refused
/// with `INVALID_ARGUMENT` (the reference's `INVITATION_API_CALL_ERR_INVALID_ARGUMENT`).
pub const MAX_INVITATION_CONTENT_BYTES: usize = 8 * 1024;
/// Largest `response` to an invitation (accept or refuse), 8 192 bytes.
pub const MAX_INVITATION_RESPONSE_BYTES: usize = 8 * 1024;
/// Longest invitation `channel_id` (the call's channel, a free string the
/// apps agree on), 64 bytes.
pub const MAX_INVITATION_CHANNEL_BYTES: usize = 64;
/// Most invitations one user may have open as the caller at once; one more
/// is refused with `EXCEED_LIMIT`.
pub const MAX_OPEN_INVITATIONS: usize = 32;
/// Most invitations one user may have ringing as the callee at once; one
/// more is refused to its caller with `EXCEED_LIMIT` (the callee is swamped).
pub const MAX_RINGING_INVITATIONS: usize = 32;

/// Checks the size of an invitation's content, response or channel id.
/// `what` names the field in the error.
pub fn check_invitation_text(what: &str, text: &str, limit: usize) -> Result<(), ErrorBody> {
    if text.len() > limit {
        return Err(ErrorBody::new(
            ErrorKind::InvalidArgument,
            format!(
                "invitation {what} is {} bytes; the limit is {limit} bytes. Shorten it",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// Where a caller's invitation stands (the reference's `LocalInvitationState`,
/// with its numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LocalInvitationState {
    /// 0: created, not sent yet.
    Idle,
    /// 1: the server took it and rings the callee.
    SentToRemote,
    /// 2: the callee's client confirmed it rings.
    ReceivedByRemote,
    /// 3: the callee accepted (ended).
    AcceptedByRemote,
    /// 4: the callee refused (ended).
    RefusedByRemote,
    /// 5: the caller canceled it (ended).
    Canceled,
    /// 6: it failed; the reason came with the failure event (ended).
    Failure,
}

impl LocalInvitationState {
    /// The reference's number of this state.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// True for the states an invitation never leaves.
    pub fn is_ended(self) -> bool {
        matches!(
            self,
            Self::AcceptedByRemote | Self::RefusedByRemote | Self::Canceled | Self::Failure
        )
    }
}

/// Where a callee's invitation stands (the reference's `RemoteInvitationState`,
/// with its numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RemoteInvitationState {
    /// 0: not received yet (never seen by an application).
    Idle,
    /// 1: it rings here; accept or refuse it.
    InvitationReceived,
    /// 2: `accept` went out; the server has not confirmed it reached the caller.
    AcceptSentToLocal,
    /// 3: refused, and the caller was told (ended).
    Refused,
    /// 4: accepted, and the caller was told (ended).
    Accepted,
    /// 5: the caller canceled it (ended).
    Canceled,
    /// 6: it failed; the reason came with the failure event (ended).
    Failure,
}

impl RemoteInvitationState {
    /// The reference's number of this state.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// True for the states an invitation never leaves.
    pub fn is_ended(self) -> bool {
        matches!(
            self,
            Self::Refused | Self::Accepted | Self::Canceled | Self::Failure
        )
    }
}

/// Why a caller's invitation failed (the reference's
/// `LocalInvitationFailureReason`; numbers from its `LOCAL_INVITATION_ERR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LocalInvitationFailureReason {
    /// 1: the callee is not logged in (at sending), or logged out, was
    /// replaced by another login, or lost its link past the grace while the
    /// invitation was open.
    PeerOffline,
    /// 2: the callee is logged in but its client did not confirm the
    /// invitation within the acknowledgement time (30 s by default).
    PeerNoResponse,
    /// 3: nobody accepted, refused or canceled within the expiry (60 s by
    /// default) after sending.
    InvitationExpire,
    /// 4: the caller is not logged in: its own session ended (logout,
    /// remote login, token expiry, a reconnection that could not resume)
    /// while the invitation was open.
    NotLoggedin,
    /// Anything else (no number in the reference; rtm uses 99).
    Unknown,
}

impl LocalInvitationFailureReason {
    /// The reference's number (`LOCAL_INVITATION_ERR_*`); 99 for `UNKNOWN`.
    pub fn code(self) -> u8 {
        match self {
            Self::PeerOffline => 1,
            Self::PeerNoResponse => 2,
            Self::InvitationExpire => 3,
            Self::NotLoggedin => 4,
            Self::Unknown => 99,
        }
    }

    /// Words for people, e.g. `"peer offline"`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::PeerOffline => "peer offline",
            Self::PeerNoResponse => "no response from the peer's client",
            Self::InvitationExpire => "nobody answered in time",
            Self::NotLoggedin => "you are not logged in",
            Self::Unknown => "failed",
        }
    }
}

/// Why a callee's invitation failed (the reference's
/// `RemoteInvitationFailureReason`; numbers from its `REMOTE_INVITATION_ERR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RemoteInvitationFailureReason {
    /// 1: one side went offline while it rang: the caller logged out, was
    /// replaced by another login or lost its link past the grace — or this
    /// callee's own session ended.
    PeerOffline,
    /// 2: the acceptance could not reach the caller: the invitation had
    /// ended on the server (canceled, expired, caller gone) when `accept`
    /// arrived, or the link broke before the server confirmed it.
    AcceptFailure,
    /// 3: nobody accepted, refused or canceled within the expiry (60 s by
    /// default) after the caller sent it.
    InvitationExpire,
    /// Anything else (no number in the reference; rtm uses 99).
    Unknown,
}

impl RemoteInvitationFailureReason {
    /// The reference's number (`REMOTE_INVITATION_ERR_*`); 99 for `UNKNOWN`.
    pub fn code(self) -> u8 {
        match self {
            Self::PeerOffline => 1,
            Self::AcceptFailure => 2,
            Self::InvitationExpire => 3,
            Self::Unknown => 99,
        }
    }

    /// Words for people, e.g. `"caller offline"`.
    pub fn describe(self) -> &'static str {
        match self {
            Self::PeerOffline => "caller offline",
            Self::AcceptFailure => "the answer could not reach the caller",
            Self::InvitationExpire => "nobody answered in time",
            Self::Unknown => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_reasons_carry_the_references_numbers_and_spelling() {
        use LocalInvitationState as L;
        use RemoteInvitationState as R;
        let local = [
            L::Idle,
            L::SentToRemote,
            L::ReceivedByRemote,
            L::AcceptedByRemote,
            L::RefusedByRemote,
            L::Canceled,
            L::Failure,
        ];
        for (i, s) in local.iter().enumerate() {
            assert_eq!(s.code() as usize, i);
        }
        let remote = [
            R::Idle,
            R::InvitationReceived,
            R::AcceptSentToLocal,
            R::Refused,
            R::Accepted,
            R::Canceled,
            R::Failure,
        ];
        for (i, s) in remote.iter().enumerate() {
            assert_eq!(s.code() as usize, i);
        }
        assert_eq!(
            serde_json::to_string(&L::ReceivedByRemote).unwrap(),
            r#""RECEIVED_BY_REMOTE""#
        );
        assert_eq!(
            serde_json::to_string(&R::AcceptSentToLocal).unwrap(),
            r#""ACCEPT_SENT_TO_LOCAL""#
        );
        assert_eq!(
            serde_json::to_string(&LocalInvitationFailureReason::NotLoggedin).unwrap(),
            r#""NOT_LOGGEDIN""#
        );
        assert_eq!(LocalInvitationFailureReason::PeerNoResponse.code(), 2);
        assert_eq!(LocalInvitationFailureReason::NotLoggedin.code(), 4);
        assert_eq!(RemoteInvitationFailureReason::AcceptFailure.code(), 2);
        assert_eq!(RemoteInvitationFailureReason::InvitationExpire.code(), 3);
        assert!(L::Canceled.is_ended() && !L::ReceivedByRemote.is_ended());
        assert!(R::Accepted.is_ended() && !R::AcceptSentToLocal.is_ended());
    }

    #[test]
    fn oversize_text_is_refused_with_the_size_and_the_limit() {
        let big = "x".repeat(MAX_INVITATION_CONTENT_BYTES + 1);
        let e = check_invitation_text("content", &big, MAX_INVITATION_CONTENT_BYTES).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains("8193 bytes") && e.message.contains("8192"));
        assert!(check_invitation_text("content", "lunch?", MAX_INVITATION_CONTENT_BYTES).is_ok());
    }
}
