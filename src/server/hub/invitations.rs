//! Call invitations (spec §8, PROTOCOL.md §15): the hub knows every open
//! invitation, so it — not the clients — ends each one with the right
//! reason: the callee is offline at sending, its client never confirms
//! (`PEER_NO_RESPONSE`), nobody answers in time (`INVITATION_EXPIRE`), or one
//! side leaves (logout, remote login, grace over: `PEER_OFFLINE`).
//!
//! An invitation is keyed by its caller and the caller's id for it. Frames
//! to a user whose link is down wait in its resume buffer, so a caller or
//! callee that comes back within the grace finds its invitations as they
//! are. One timer task per invitation checks the acknowledgement deadline,
//! then the expiry; a serial number makes a timer of an ended invitation
//! (or of an earlier one with the same key) do nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{Hub, HubState, Link, err, event_frame};
use crate::protocol::{
    ErrorBody, ErrorKind, Event, LocalInvitationFailureReason, MAX_OPEN_INVITATIONS,
    MAX_RINGING_INVITATIONS, RemoteInvitationFailureReason, Reply, Uid,
};

/// (caller, the caller's invitation id).
type Key = (Uid, u64);

/// One open invitation. Removed when it ends, whichever way.
struct Invitation {
    callee: Uid,
    /// Sent back to the callee if the caller cancels.
    content: String,
    /// The callee's client confirmed it (`ack_remote_invitation`).
    acked: bool,
    /// Tells this invitation's timer apart from that of an earlier one
    /// with the same key.
    serial: u64,
}

/// Open invitations with an index per side, so a departing user's are
/// found without a scan.
#[derive(Default)]
pub(super) struct Invitations {
    open: HashMap<Key, Invitation>,
    /// caller → its open invitation ids.
    by_caller: HashMap<Uid, HashSet<u64>>,
    /// callee → the invitations ringing it.
    by_callee: HashMap<Uid, HashSet<Key>>,
    next_serial: u64,
}

impl Invitations {
    fn insert(&mut self, key: Key, invitation: Invitation) {
        self.by_caller
            .entry(key.0.clone())
            .or_default()
            .insert(key.1);
        self.by_callee
            .entry(invitation.callee.clone())
            .or_default()
            .insert(key.clone());
        self.open.insert(key, invitation);
    }

    fn remove(&mut self, key: &Key) -> Option<Invitation> {
        let invitation = self.open.remove(key)?;
        if let Some(ids) = self.by_caller.get_mut(&key.0) {
            ids.remove(&key.1);
            if ids.is_empty() {
                self.by_caller.remove(&key.0);
            }
        }
        if let Some(keys) = self.by_callee.get_mut(&invitation.callee) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_callee.remove(&invitation.callee);
            }
        }
        Some(invitation)
    }

    /// How many invitations `uid` has open as the caller.
    pub(super) fn open_count(&self, uid: &Uid) -> usize {
        self.by_caller.get(uid).map_or(0, HashSet::len)
    }
}

/// What a timer checks when it wakes.
#[derive(Clone, Copy)]
enum Deadline {
    /// The callee's client should have confirmed by now.
    Ack,
    /// Nobody answered: the invitation expires.
    Expiry,
}

fn ended(what: &str) -> ErrorBody {
    err(
        ErrorKind::AlreadyEnd,
        format!(
            "{what}: it ended (answered, canceled, expired, or one side went offline) or was \
             never sent"
        ),
    )
}

impl Hub {
    /// Hands `frame` to `uid`'s connection, or keeps it for the session that
    /// may resume it when the link is down. Nothing when `uid` is gone.
    fn deliver(&self, st: &mut HubState, uid: &Uid, frame: Message) {
        let Some(user) = st.users.get_mut(uid) else {
            // Cluster mode: the user may be on another node.
            self.cluster_deliver(uid, &frame);
            return;
        };
        if user.link == Link::Up && user.session.send(frame.clone()) {
            return;
        }
        self.keep_for_resume(user, frame);
    }

    /// Ends invitation `key` (if open), telling each side what happened.
    fn end_invitation(
        &self,
        st: &mut HubState,
        key: &Key,
        to_caller: Option<Event>,
        to_callee: Option<Event>,
    ) -> Option<Invitation> {
        let invitation = st.invitations.remove(key)?;
        if let Some(event) = to_caller {
            self.deliver(st, &key.0, event_frame(&event));
        }
        if let Some(event) = to_callee {
            self.deliver(st, &invitation.callee, event_frame(&event));
        }
        Some(invitation)
    }

    /// `send_local_invitation`: rings `callee` unless it is offline.
    pub async fn send_invitation(
        self: &Arc<Self>,
        caller: &Uid,
        invitation_id: u64,
        callee: &Uid,
        content: String,
        channel_id: Option<String>,
    ) -> Result<Reply, ErrorBody> {
        // Cluster mode: the callee may be logged in on another node.
        let elsewhere = self.online_elsewhere(callee).await;
        let mut st = self.lock();
        let key = (caller.clone(), invitation_id);
        if st.invitations.open.contains_key(&key) {
            return Err(err(
                ErrorKind::AlreadySent,
                format!(
                    "invitation {invitation_id} is already ringing; create a new one to ring again"
                ),
            ));
        }
        if st.invitations.open_count(caller) >= MAX_OPEN_INVITATIONS {
            return Err(err(
                ErrorKind::ExceedLimit,
                format!(
                    "you have {MAX_OPEN_INVITATIONS} invitations open, the most allowed; cancel \
                     one or wait for answers"
                ),
            ));
        }
        if !st.users.contains_key(callee) && !elsewhere {
            return Ok(Reply::InvitationSent {
                peer_online: false,
                expires_in_ms: 0,
            });
        }
        let ringing = st.invitations.by_callee.get(callee).map_or(0, HashSet::len);
        if ringing >= MAX_RINGING_INVITATIONS {
            return Err(err(
                ErrorKind::ExceedLimit,
                format!(
                    "{callee} already has {MAX_RINGING_INVITATIONS} invitations ringing; try again \
                     later"
                ),
            ));
        }
        st.invitations.next_serial += 1;
        let serial = st.invitations.next_serial;
        let expiry = self.config.invitation_expiry;
        let frame = event_frame(&Event::RemoteInvitationReceived {
            caller_id: caller.clone(),
            invitation_id,
            content: content.clone(),
            channel_id,
            expires_in_ms: expiry.as_millis() as u64,
        });
        st.invitations.insert(
            key.clone(),
            Invitation {
                callee: callee.clone(),
                content,
                acked: false,
                serial,
            },
        );
        self.deliver(&mut st, callee, frame);
        drop(st);
        self.start_invitation_timer(key, serial);
        Ok(Reply::InvitationSent {
            peer_online: true,
            expires_in_ms: expiry.as_millis() as u64,
        })
    }

    /// One task per invitation: the acknowledgement deadline, then the expiry.
    fn start_invitation_timer(self: &Arc<Self>, key: Key, serial: u64) {
        let hub = Arc::clone(self);
        let start = Instant::now();
        let ack_at = start
            + self
                .config
                .invitation_ack_timeout
                .min(self.config.invitation_expiry);
        let expire_at = start + self.config.invitation_expiry;
        tokio::spawn(async move {
            tokio::time::sleep_until(ack_at).await;
            if !hub.invitation_deadline(&key, serial, Deadline::Ack) {
                return;
            }
            tokio::time::sleep_until(expire_at).await;
            hub.invitation_deadline(&key, serial, Deadline::Expiry);
        });
    }

    /// A timer woke; true when the invitation is still open afterwards.
    fn invitation_deadline(&self, key: &Key, serial: u64, deadline: Deadline) -> bool {
        let mut st = self.lock();
        let Some(invitation) = st.invitations.open.get(key) else {
            return false;
        };
        if invitation.serial != serial {
            return false;
        }
        let (local, remote) = match deadline {
            Deadline::Ack if invitation.acked => return true,
            Deadline::Ack => (
                LocalInvitationFailureReason::PeerNoResponse,
                // The callee may get it late (a resumed link): it must not
                // ring on after the caller stopped waiting.
                RemoteInvitationFailureReason::InvitationExpire,
            ),
            Deadline::Expiry => (
                LocalInvitationFailureReason::InvitationExpire,
                RemoteInvitationFailureReason::InvitationExpire,
            ),
        };
        self.end_invitation(
            &mut st,
            key,
            Some(Event::LocalInvitationFailure {
                invitation_id: key.1,
                reason: local,
            }),
            Some(Event::RemoteInvitationFailure {
                caller_id: key.0.clone(),
                invitation_id: key.1,
                reason: remote,
            }),
        );
        false
    }

    /// `cancel_local_invitation`: the callee hears it was canceled.
    pub fn cancel_invitation(&self, caller: &Uid, invitation_id: u64) -> Result<Reply, ErrorBody> {
        let mut st = self.lock();
        let key = (caller.clone(), invitation_id);
        let Some(content) = st.invitations.open.get(&key).map(|i| i.content.clone()) else {
            return Err(ended(&format!(
                "invitation {invitation_id} cannot be canceled"
            )));
        };
        self.end_invitation(
            &mut st,
            &key,
            None,
            Some(Event::RemoteInvitationCanceled {
                caller_id: caller.clone(),
                invitation_id,
                content,
            }),
        );
        Ok(Reply::Done)
    }

    /// `ack_remote_invitation`: the callee's client rings; the caller hears
    /// it once.
    pub fn ack_invitation(
        &self,
        callee: &Uid,
        caller: &Uid,
        invitation_id: u64,
    ) -> Result<Reply, ErrorBody> {
        let mut st = self.lock();
        let key = (caller.clone(), invitation_id);
        let caller_here = st.users.contains_key(caller);
        let first = match st.invitations.open.get_mut(&key) {
            Some(i) if &i.callee == callee => !std::mem::replace(&mut i.acked, true),
            // Cluster mode: the caller's node holds the invitation.
            None if !caller_here
                && self.cluster_invitation_op(caller, invitation_id, callee, "ack", "") =>
            {
                return Ok(Reply::Done);
            }
            _ => return Err(ended(&format!("invitation {invitation_id} from {caller}"))),
        };
        if first {
            let frame = event_frame(&Event::LocalInvitationReceivedByPeer { invitation_id });
            self.deliver(&mut st, caller, frame);
        }
        Ok(Reply::Done)
    }

    /// `accept_remote_invitation` / `refuse_remote_invitation`: the caller
    /// hears the answer, and the invitation ends.
    pub fn answer_invitation(
        &self,
        callee: &Uid,
        caller: &Uid,
        invitation_id: u64,
        response: String,
        accept: bool,
    ) -> Result<Reply, ErrorBody> {
        let mut st = self.lock();
        let key = (caller.clone(), invitation_id);
        if !st.invitations.open.contains_key(&key)
            && !st.users.contains_key(caller)
            && self.cluster_invitation_op(
                caller,
                invitation_id,
                callee,
                if accept { "accept" } else { "refuse" },
                &response,
            )
        {
            // Cluster mode: the caller's node holds the invitation.
            return Ok(Reply::Done);
        }
        if st
            .invitations
            .open
            .get(&key)
            .is_none_or(|i| &i.callee != callee)
        {
            return Err(ended(&format!(
                "invitation {invitation_id} from {caller} cannot be answered"
            )));
        }
        let event = if accept {
            Event::LocalInvitationAccepted {
                invitation_id,
                response,
            }
        } else {
            Event::LocalInvitationRefused {
                invitation_id,
                response,
            }
        };
        self.end_invitation(&mut st, &key, Some(event), None);
        Ok(Reply::Done)
    }

    /// `uid` is gone (logout, replaced by another login, grace over): each
    /// open invitation it made or was rung by fails for the other side as
    /// `PEER_OFFLINE`. `uid` itself is told nothing (its SDK ends them).
    pub(super) fn end_invitations_of(&self, st: &mut HubState, uid: &Uid) {
        let made: Vec<Key> = st
            .invitations
            .by_caller
            .get(uid)
            .map(|ids| ids.iter().map(|id| (uid.clone(), *id)).collect())
            .unwrap_or_default();
        for key in made {
            let to_callee = Event::RemoteInvitationFailure {
                caller_id: key.0.clone(),
                invitation_id: key.1,
                reason: RemoteInvitationFailureReason::PeerOffline,
            };
            self.end_invitation(st, &key, None, Some(to_callee));
        }
        let rung: Vec<Key> = st
            .invitations
            .by_callee
            .get(uid)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default();
        for key in rung {
            let to_caller = Event::LocalInvitationFailure {
                invitation_id: key.1,
                reason: LocalInvitationFailureReason::PeerOffline,
            };
            self.end_invitation(st, &key, Some(to_caller), None);
        }
    }

    /// Open invitations on this server (for tests and reports).
    pub fn open_invitations(&self) -> usize {
        self.lock().invitations.open.len()
    }
}
