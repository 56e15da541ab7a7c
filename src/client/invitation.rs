//! Call invitations (spec §8): the caller's [`LocalInvitation`] and the
//! callee's [`RemoteInvitation`], their state machines, and how the frames of
//! PROTOCOL.md §15 move them.
//!
//! The server knows every open invitation and ends it with a reason (peer
//! offline, no response, expired); the SDK mirrors the state, refuses misuse
//! locally with the reference's errors, and reports each change once as a
//! [`ClientEvent`]. An open invitation is held by the client until it ends,
//! so its events arrive even when the application dropped its handle.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::{ClientEvent, ConnectionState, RtmError, Shared};
use crate::protocol::{
    ErrorKind, Event, LocalInvitationFailureReason, LocalInvitationState,
    MAX_INVITATION_CHANNEL_BYTES, MAX_INVITATION_CONTENT_BYTES, MAX_INVITATION_RESPONSE_BYTES,
    RemoteInvitationFailureReason, RemoteInvitationState, Reply, Request, Uid,
    check_invitation_text,
};

/// What happened to one of this client's outgoing invitations; arrives as
/// [`ClientEvent::LocalInvitation`]. New events may be added: match with a
/// `_` arm.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalInvitationEvent {
    /// The callee's client has it and rings (the reference's
    /// `LocalInvitationReceivedByPeer`); state RECEIVED_BY_REMOTE.
    ReceivedByPeer,
    /// The callee accepted (`LocalInvitationAccepted`); state ACCEPTED_BY_REMOTE.
    Accepted {
        /// The callee's text (may be empty).
        response: String,
    },
    /// The callee refused (`LocalInvitationRefused`); state REFUSED_BY_REMOTE.
    Refused {
        /// The callee's text (may be empty).
        response: String,
    },
    /// This client canceled it (`LocalInvitationCanceled`); state CANCELED.
    Canceled,
    /// It failed (`LocalInvitationFailure`); state FAILURE.
    Failure(LocalInvitationFailureReason),
}

/// What happened to an incoming invitation after it arrived (which is
/// [`ClientEvent::RemoteInvitationReceived`]); arrives as
/// [`ClientEvent::RemoteInvitation`]. New events may be added: match with a
/// `_` arm.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteInvitationEvent {
    /// This client's acceptance reached the caller (`RemoteInvitationAccepted`);
    /// state ACCEPTED.
    Accepted,
    /// This client's refusal reached the caller (`RemoteInvitationRefused`);
    /// state REFUSED.
    Refused,
    /// The caller canceled it (`RemoteInvitationCanceled`); state CANCELED.
    Canceled {
        /// The invitation's content.
        content: String,
    },
    /// It failed (`RemoteInvitationFailure`); state FAILURE.
    Failure(RemoteInvitationFailureReason),
}

/// The mutable half of a local invitation.
struct LocalFields {
    content: String,
    channel_id: Option<String>,
    response: Option<String>,
    state: LocalInvitationState,
    failure: Option<LocalInvitationFailureReason>,
    /// `send` or `cancel` is in flight.
    busy: bool,
}

pub(super) struct LocalInner {
    id: u64,
    callee: Uid,
    /// The client; weak so that an invitation does not keep a session alive.
    shared: Weak<Shared>,
    fields: Mutex<LocalFields>,
}

/// An invitation this client sends (the reference's `LocalInvitation`), made
/// by [`RtmClient::create_local_invitation`](super::RtmClient::create_local_invitation).
/// Cheap to clone; clones are the same invitation. Set its content and
/// channel, then [`send`](Self::send); what follows arrives as
/// [`ClientEvent::LocalInvitation`].
#[derive(Clone)]
pub struct LocalInvitation {
    inner: Arc<LocalInner>,
}

impl PartialEq for LocalInvitation {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
impl Eq for LocalInvitation {}

impl std::fmt::Debug for LocalInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields = self.fields();
        f.debug_struct("LocalInvitation")
            .field("id", &self.inner.id)
            .field("callee_id", &self.inner.callee)
            .field("content", &fields.content)
            .field("channel_id", &fields.channel_id)
            .field("response", &fields.response)
            .field("state", &fields.state)
            .finish()
    }
}

/// The mutable half of a remote invitation.
struct RemoteFields {
    response: Option<String>,
    state: RemoteInvitationState,
    failure: Option<RemoteInvitationFailureReason>,
    /// `accept` or `refuse` is in flight or done.
    answered: bool,
}

pub(super) struct RemoteInner {
    id: u64,
    caller: Uid,
    content: String,
    channel_id: Option<String>,
    /// When the server expires it unanswered (by this client's clock).
    expires_at: Instant,
    shared: Weak<Shared>,
    fields: Mutex<RemoteFields>,
}

/// An invitation this client received (the reference's `RemoteInvitation`),
/// delivered by [`ClientEvent::RemoteInvitationReceived`]. Cheap to clone;
/// clones are the same invitation. [`accept`](Self::accept) or
/// [`refuse`](Self::refuse) it; what follows arrives as
/// [`ClientEvent::RemoteInvitation`].
#[derive(Clone)]
pub struct RemoteInvitation {
    inner: Arc<RemoteInner>,
}

impl PartialEq for RemoteInvitation {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
impl Eq for RemoteInvitation {}

impl std::fmt::Debug for RemoteInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fields = self.fields();
        f.debug_struct("RemoteInvitation")
            .field("id", &self.inner.id)
            .field("caller_id", &self.inner.caller)
            .field("content", &self.inner.content)
            .field("channel_id", &self.inner.channel_id)
            .field("response", &fields.response)
            .field("state", &fields.state)
            .finish()
    }
}

fn misuse(kind: ErrorKind, message: impl Into<String>) -> RtmError {
    RtmError::local(kind, message)
}

fn client_gone() -> RtmError {
    RtmError::NotLoggedIn("the client of this invitation is gone; log in again and make a new one")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LocalInvitation {
    pub(super) fn new(shared: &Arc<Shared>, id: u64, callee: Uid) -> Self {
        LocalInvitation {
            inner: Arc::new(LocalInner {
                id,
                callee,
                shared: Arc::downgrade(shared),
                fields: Mutex::new(LocalFields {
                    content: String::new(),
                    channel_id: None,
                    response: None,
                    state: LocalInvitationState::Idle,
                    failure: None,
                    busy: false,
                }),
            }),
        }
    }

    fn fields(&self) -> MutexGuard<'_, LocalFields> {
        lock(&self.inner.fields)
    }

    /// This client's id of the invitation (unique among its invitations;
    /// the callee sees it as [`RemoteInvitation::id`]).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Who is rung (the reference's `calleeId`).
    pub fn callee_id(&self) -> &Uid {
        &self.inner.callee
    }

    /// The text sent with the invitation.
    pub fn content(&self) -> String {
        self.fields().content.clone()
    }

    /// Sets the text sent with the invitation, at most
    /// [`MAX_INVITATION_CONTENT_BYTES`] (8 KB). Before `send` only:
    /// afterwards `ALREADY_SENT`. Too long: `INVALID_ARGUMENT`.
    pub fn set_content(&self, content: impl Into<String>) -> Result<(), RtmError> {
        let content = content.into();
        check_invitation_text("content", &content, MAX_INVITATION_CONTENT_BYTES)
            .map_err(RtmError::Local)?;
        let mut f = self.fields();
        Self::check_idle(&f)?;
        f.content = content;
        Ok(())
    }

    /// The call's channel, if set.
    pub fn channel_id(&self) -> Option<String> {
        self.fields().channel_id.clone()
    }

    /// Sets the call's channel (a free string of at most 64 bytes that the
    /// apps agree on, e.g. the media channel to join). Before `send` only.
    pub fn set_channel_id(&self, channel_id: impl Into<String>) -> Result<(), RtmError> {
        let channel_id = channel_id.into();
        check_invitation_text("channel id", &channel_id, MAX_INVITATION_CHANNEL_BYTES)
            .map_err(RtmError::Local)?;
        let mut f = self.fields();
        Self::check_idle(&f)?;
        f.channel_id = Some(channel_id);
        Ok(())
    }

    /// The callee's answer, once it accepted or refused.
    pub fn response(&self) -> Option<String> {
        self.fields().response.clone()
    }

    /// Where the invitation stands.
    pub fn state(&self) -> LocalInvitationState {
        self.fields().state
    }

    /// Why it failed, when the state is FAILURE.
    pub fn failure_reason(&self) -> Option<LocalInvitationFailureReason> {
        self.fields().failure
    }

    fn check_idle(f: &LocalFields) -> Result<(), RtmError> {
        if f.state != LocalInvitationState::Idle || f.busy {
            return Err(misuse(
                ErrorKind::AlreadySent,
                "this invitation was already sent; create a new one to ring again",
            ));
        }
        Ok(())
    }

    /// Rings the callee. Resolves once the server took it: state
    /// SENT_TO_REMOTE (or already further on). A callee that is not logged
    /// in fails it at once: `Ok`, then [`LocalInvitationEvent::Failure`]
    /// with `PEER_OFFLINE` and state FAILURE. Later: RECEIVED_BY_REMOTE when
    /// the callee's client rings, then accepted, refused or a failure
    /// (`PEER_NO_RESPONSE`, `INVITATION_EXPIRE` after 60 s, `PEER_OFFLINE`).
    ///
    /// Errors: `ALREADY_SENT` (sent before; create a new one),
    /// `NOT_LOGGED_IN` (the invitation also fails with `NOT_LOGGEDIN`),
    /// and the server's refusals, after which the invitation is IDLE again
    /// and may be sent later: `TOO_OFTEN` (more than 10 invitations in 5 s),
    /// `EXCEED_LIMIT` (32 open invitations, or the callee has 32 ringing),
    /// `INVALID_ARGUMENT`. A timeout or lost link fails it (`UNKNOWN`).
    pub async fn send(&self) -> Result<(), RtmError> {
        let shared = self.inner.shared.upgrade().ok_or_else(client_gone)?;
        let request = {
            let mut f = self.fields();
            Self::check_idle(&f)?;
            f.busy = true;
            Request::SendLocalInvitation {
                invitation_id: self.inner.id,
                callee_id: self.inner.callee.clone(),
                content: f.content.clone(),
                channel_id: f.channel_id.clone(),
            }
        };
        let logged_in = {
            let mut st = shared.lock();
            let ok = matches!(
                st.conn,
                ConnectionState::Connected | ConnectionState::Reconnecting
            ) && st.task.is_some();
            if ok {
                // Registered before the request goes out: the callee's
                // answer may overtake the reply.
                st.local_invitations
                    .insert(self.inner.id, self.inner.clone());
            }
            ok
        };
        if !logged_in {
            self.fields().busy = false;
            self.end(
                &shared,
                LocalInvitationEvent::Failure(LocalInvitationFailureReason::NotLoggedin),
            );
            return Err(RtmError::NotLoggedIn(
                "the client is not logged in; log in, then send the invitation",
            ));
        }
        let result = shared.request(request).await;
        self.fields().busy = false;
        match result {
            Ok(Reply::InvitationSent {
                peer_online: true, ..
            }) => {
                let mut f = self.fields();
                if f.state == LocalInvitationState::Idle {
                    f.state = LocalInvitationState::SentToRemote;
                }
                Ok(())
            }
            Ok(Reply::InvitationSent {
                peer_online: false, ..
            }) => {
                self.end(
                    &shared,
                    LocalInvitationEvent::Failure(LocalInvitationFailureReason::PeerOffline),
                );
                Ok(())
            }
            Ok(other) => {
                self.end(
                    &shared,
                    LocalInvitationEvent::Failure(LocalInvitationFailureReason::Unknown),
                );
                Err(super::unexpected(other))
            }
            Err(e @ (RtmError::Server(_) | RtmError::Local(_) | RtmError::NotLoggedIn(_))) => {
                // Refused before it rang: nothing is open anywhere.
                shared.lock().local_invitations.remove(&self.inner.id);
                Err(e)
            }
            Err(e) => {
                // The server may or may not have it: make sure it stops.
                shared.send_and_forget(Request::CancelLocalInvitation {
                    invitation_id: self.inner.id,
                });
                self.end(
                    &shared,
                    LocalInvitationEvent::Failure(LocalInvitationFailureReason::Unknown),
                );
                Err(e)
            }
        }
    }

    /// Stops ringing: state CANCELED and [`LocalInvitationEvent::Canceled`];
    /// the callee gets [`RemoteInvitationEvent::Canceled`].
    ///
    /// Errors: `NOT_STARTED` before `send`, `ALREADY_END` once it ended
    /// (accepted, refused, failed, canceled) — also when the callee's answer
    /// crossed this call on the way (its event says which).
    pub async fn cancel(&self) -> Result<(), RtmError> {
        let shared = self.inner.shared.upgrade().ok_or_else(client_gone)?;
        {
            let f = self.fields();
            if f.state == LocalInvitationState::Idle {
                return Err(misuse(
                    ErrorKind::NotStarted,
                    "this invitation was not sent yet; there is nothing to cancel",
                ));
            }
            if f.state.is_ended() {
                return Err(Self::ended_error(&f));
            }
        }
        let result = shared
            .request(Request::CancelLocalInvitation {
                invitation_id: self.inner.id,
            })
            .await;
        match result {
            Ok(_) => {
                self.end(&shared, LocalInvitationEvent::Canceled);
                Ok(())
            }
            Err(e) => {
                let f = self.fields();
                if f.state.is_ended() {
                    return Err(Self::ended_error(&f));
                }
                Err(e)
            }
        }
    }

    fn ended_error(f: &LocalFields) -> RtmError {
        misuse(
            ErrorKind::AlreadyEnd,
            format!(
                "this invitation has ended ({}); create a new one to ring again",
                describe_local(f.state, f.failure)
            ),
        )
    }

    /// Moves to the ended state of `event`, forgets the invitation and
    /// reports the event — unless it had ended already.
    fn end(&self, shared: &Shared, event: LocalInvitationEvent) {
        {
            let mut f = self.fields();
            if f.state.is_ended() {
                return;
            }
            match &event {
                LocalInvitationEvent::Accepted { response } => {
                    f.state = LocalInvitationState::AcceptedByRemote;
                    f.response = Some(response.clone());
                }
                LocalInvitationEvent::Refused { response } => {
                    f.state = LocalInvitationState::RefusedByRemote;
                    f.response = Some(response.clone());
                }
                LocalInvitationEvent::Canceled => f.state = LocalInvitationState::Canceled,
                LocalInvitationEvent::Failure(reason) => {
                    f.state = LocalInvitationState::Failure;
                    f.failure = Some(*reason);
                }
                LocalInvitationEvent::ReceivedByPeer => return,
            }
        }
        shared.lock().local_invitations.remove(&self.inner.id);
        shared.emit(ClientEvent::LocalInvitation {
            invitation: self.clone(),
            event,
        });
    }
}

/// Words for an ended local state, for error messages.
fn describe_local(
    state: LocalInvitationState,
    failure: Option<LocalInvitationFailureReason>,
) -> String {
    match (state, failure) {
        (LocalInvitationState::AcceptedByRemote, _) => "accepted".into(),
        (LocalInvitationState::RefusedByRemote, _) => "refused".into(),
        (LocalInvitationState::Canceled, _) => "canceled".into(),
        (_, Some(reason)) => format!("failed: {}", reason.describe()),
        _ => "failed".into(),
    }
}

impl RemoteInvitation {
    fn fields(&self) -> MutexGuard<'_, RemoteFields> {
        lock(&self.inner.fields)
    }

    /// The caller's id of the invitation (its [`LocalInvitation::id`]).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Who rings (the reference's `callerId`).
    pub fn caller_id(&self) -> &Uid {
        &self.inner.caller
    }

    /// The caller's text (may be empty).
    pub fn content(&self) -> &str {
        &self.inner.content
    }

    /// The call's channel, when the caller set one.
    pub fn channel_id(&self) -> Option<&str> {
        self.inner.channel_id.as_deref()
    }

    /// This client's answer, once it accepted or refused.
    pub fn response(&self) -> Option<String> {
        self.fields().response.clone()
    }

    /// Where the invitation stands.
    pub fn state(&self) -> RemoteInvitationState {
        self.fields().state
    }

    /// Why it failed, when the state is FAILURE.
    pub fn failure_reason(&self) -> Option<RemoteInvitationFailureReason> {
        self.fields().failure
    }

    /// How long until the server expires it unanswered (zero once past);
    /// for a countdown.
    pub fn expires_in(&self) -> Duration {
        self.inner
            .expires_at
            .saturating_duration_since(Instant::now())
    }

    /// Accepts, with `response` for the caller (at most
    /// [`MAX_INVITATION_RESPONSE_BYTES`], may be empty): state
    /// ACCEPT_SENT_TO_LOCAL, then ACCEPTED and
    /// [`RemoteInvitationEvent::Accepted`] once the caller was told.
    ///
    /// Errors: `ALREADY_ACCEPT` when already accepted or refused,
    /// `ALREADY_END` once it ended (canceled, failed), `INVALID_ARGUMENT`
    /// for a response over 8 KB. If the answer cannot reach the caller (it
    /// canceled or went offline meanwhile, or the link broke) the invitation
    /// fails with `ACCEPT_FAILURE` and the error says why.
    pub async fn accept(&self, response: impl Into<String>) -> Result<(), RtmError> {
        self.answer(response.into(), true).await
    }

    /// Refuses, with `response` for the caller (may be empty): state REFUSED
    /// and [`RemoteInvitationEvent::Refused`] once the caller was told.
    /// Errors as for [`accept`](Self::accept); a refusal that cannot reach
    /// the caller leaves the invitation as it was (ringing, or ended by the
    /// event that crossed it).
    pub async fn refuse(&self, response: impl Into<String>) -> Result<(), RtmError> {
        self.answer(response.into(), false).await
    }

    async fn answer(&self, response: String, accept: bool) -> Result<(), RtmError> {
        let shared = self.inner.shared.upgrade().ok_or_else(client_gone)?;
        check_invitation_text("response", &response, MAX_INVITATION_RESPONSE_BYTES)
            .map_err(RtmError::Local)?;
        {
            let mut f = self.fields();
            if matches!(
                f.state,
                RemoteInvitationState::Canceled | RemoteInvitationState::Failure
            ) {
                return Err(misuse(
                    ErrorKind::AlreadyEnd,
                    format!(
                        "this invitation has ended ({}); nothing can be answered",
                        describe_remote(f.state, f.failure)
                    ),
                ));
            }
            if f.answered {
                return Err(misuse(
                    ErrorKind::AlreadyAccept,
                    "this invitation was already answered",
                ));
            }
            f.answered = true;
            if accept {
                f.state = RemoteInvitationState::AcceptSentToLocal;
            }
        }
        let request = if accept {
            Request::AcceptRemoteInvitation {
                caller_id: self.inner.caller.clone(),
                invitation_id: self.inner.id,
                response: response.clone(),
            }
        } else {
            Request::RefuseRemoteInvitation {
                caller_id: self.inner.caller.clone(),
                invitation_id: self.inner.id,
                response: response.clone(),
            }
        };
        match shared.request(request).await {
            Ok(_) => {
                self.fields().response = Some(response);
                let event = if accept {
                    RemoteInvitationEvent::Accepted
                } else {
                    RemoteInvitationEvent::Refused
                };
                self.end(&shared, event);
                Ok(())
            }
            Err(e) => {
                let ended_meanwhile = {
                    let mut f = self.fields();
                    let ended = matches!(
                        f.state,
                        RemoteInvitationState::Canceled | RemoteInvitationState::Failure
                    );
                    if !ended && !accept {
                        // A refusal that did not get through: still ringing.
                        f.answered = false;
                    }
                    ended
                };
                if accept && !ended_meanwhile {
                    self.end(
                        &shared,
                        RemoteInvitationEvent::Failure(
                            RemoteInvitationFailureReason::AcceptFailure,
                        ),
                    );
                }
                Err(e)
            }
        }
    }

    /// Moves to the ended state of `event`, forgets the invitation and
    /// reports the event — unless it had ended already.
    fn end(&self, shared: &Shared, event: RemoteInvitationEvent) {
        {
            let mut f = self.fields();
            if f.state.is_ended() {
                return;
            }
            match &event {
                RemoteInvitationEvent::Accepted => f.state = RemoteInvitationState::Accepted,
                RemoteInvitationEvent::Refused => f.state = RemoteInvitationState::Refused,
                RemoteInvitationEvent::Canceled { .. } => f.state = RemoteInvitationState::Canceled,
                RemoteInvitationEvent::Failure(reason) => {
                    f.state = RemoteInvitationState::Failure;
                    f.failure = Some(*reason);
                }
            }
        }
        shared
            .lock()
            .remote_invitations
            .remove(&(self.inner.caller.clone(), self.inner.id));
        shared.emit(ClientEvent::RemoteInvitation {
            invitation: self.clone(),
            event,
        });
    }
}

fn describe_remote(
    state: RemoteInvitationState,
    failure: Option<RemoteInvitationFailureReason>,
) -> String {
    match (state, failure) {
        (RemoteInvitationState::Accepted, _) => "accepted".into(),
        (RemoteInvitationState::Refused, _) => "refused".into(),
        (RemoteInvitationState::Canceled, _) => "canceled by the caller".into(),
        (_, Some(reason)) => format!("failed: {}", reason.describe()),
        _ => "failed".into(),
    }
}

impl Shared {
    /// Applies an invitation event from the server; false when `event` is
    /// not about invitations.
    pub(super) fn on_invitation_event(self: &Arc<Self>, event: &Event) -> bool {
        match event {
            Event::RemoteInvitationReceived {
                caller_id,
                invitation_id,
                content,
                channel_id,
                expires_in_ms,
            } => {
                let key = (caller_id.clone(), *invitation_id);
                let fresh = {
                    let mut st = self.lock();
                    match st.remote_invitations.entry(key) {
                        std::collections::hash_map::Entry::Occupied(_) => None,
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            let inv = RemoteInvitation {
                                inner: Arc::new(RemoteInner {
                                    id: *invitation_id,
                                    caller: caller_id.clone(),
                                    content: content.clone(),
                                    channel_id: channel_id.clone(),
                                    expires_at: Instant::now()
                                        + Duration::from_millis(*expires_in_ms),
                                    shared: Arc::downgrade(self),
                                    fields: Mutex::new(RemoteFields {
                                        response: None,
                                        state: RemoteInvitationState::InvitationReceived,
                                        failure: None,
                                        answered: false,
                                    }),
                                }),
                            };
                            slot.insert(inv.inner.clone());
                            Some(inv)
                        }
                    }
                };
                // Acknowledged even when repeated (a resumed link may bring
                // it twice): the server then tells the caller it rings.
                self.send_and_forget(Request::AckRemoteInvitation {
                    caller_id: caller_id.clone(),
                    invitation_id: *invitation_id,
                });
                if let Some(inv) = fresh {
                    self.emit(ClientEvent::RemoteInvitationReceived(inv));
                }
            }
            Event::LocalInvitationReceivedByPeer { invitation_id } => {
                if let Some(inv) = self.local(*invitation_id) {
                    let changed = {
                        let mut f = inv.fields();
                        let open = matches!(
                            f.state,
                            LocalInvitationState::Idle | LocalInvitationState::SentToRemote
                        );
                        if open {
                            f.state = LocalInvitationState::ReceivedByRemote;
                        }
                        open
                    };
                    if changed {
                        self.emit(ClientEvent::LocalInvitation {
                            invitation: inv,
                            event: LocalInvitationEvent::ReceivedByPeer,
                        });
                    }
                }
            }
            Event::LocalInvitationAccepted {
                invitation_id,
                response,
            } => self.end_local(
                *invitation_id,
                LocalInvitationEvent::Accepted {
                    response: response.clone(),
                },
            ),
            Event::LocalInvitationRefused {
                invitation_id,
                response,
            } => self.end_local(
                *invitation_id,
                LocalInvitationEvent::Refused {
                    response: response.clone(),
                },
            ),
            Event::LocalInvitationFailure {
                invitation_id,
                reason,
            } => self.end_local(*invitation_id, LocalInvitationEvent::Failure(*reason)),
            Event::RemoteInvitationCanceled {
                caller_id,
                invitation_id,
                content,
            } => self.end_remote(
                caller_id,
                *invitation_id,
                RemoteInvitationEvent::Canceled {
                    content: content.clone(),
                },
            ),
            Event::RemoteInvitationFailure {
                caller_id,
                invitation_id,
                reason,
            } => self.end_remote(
                caller_id,
                *invitation_id,
                RemoteInvitationEvent::Failure(*reason),
            ),
            _ => return false,
        }
        true
    }

    fn local(&self, id: u64) -> Option<LocalInvitation> {
        let inner = self.lock().local_invitations.get(&id).cloned();
        if inner.is_none() {
            tracing::debug!(id, "event for an invitation this client does not hold");
        }
        inner.map(|inner| LocalInvitation { inner })
    }

    fn end_local(&self, id: u64, event: LocalInvitationEvent) {
        if let Some(inv) = self.local(id) {
            inv.end(self, event);
        }
    }

    fn end_remote(&self, caller: &Uid, id: u64, event: RemoteInvitationEvent) {
        let inner = self
            .lock()
            .remote_invitations
            .get(&(caller.clone(), id))
            .cloned();
        if let Some(inner) = inner {
            RemoteInvitation { inner }.end(self, event);
        }
    }

    /// The session ended (logout, remote login, token expiry, or a
    /// reconnection the server could not resume): the server has ended
    /// every open invitation, so they fail here too — outgoing ones with
    /// `NOT_LOGGEDIN`, incoming ones with `PEER_OFFLINE` (this side went
    /// offline).
    pub(super) fn end_invitations(&self) {
        let (local, remote) = {
            let mut st = self.lock();
            (
                st.local_invitations
                    .drain()
                    .map(|(_, i)| i)
                    .collect::<Vec<_>>(),
                st.remote_invitations
                    .drain()
                    .map(|(_, i)| i)
                    .collect::<Vec<_>>(),
            )
        };
        for inner in local {
            LocalInvitation { inner }.end(
                self,
                LocalInvitationEvent::Failure(LocalInvitationFailureReason::NotLoggedin),
            );
        }
        for inner in remote {
            RemoteInvitation { inner }.end(
                self,
                RemoteInvitationEvent::Failure(RemoteInvitationFailureReason::PeerOffline),
            );
        }
    }
}
