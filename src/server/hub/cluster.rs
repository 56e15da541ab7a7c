//! The hub in cluster mode (see `server::cluster`): what it writes to Redis
//! as it decides, what it asks Redis when the answer spans nodes, and what it
//! does with events from other nodes. On a single server none of this runs.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use tokio::sync::oneshot;

use super::{Hub, HubState, Link, MessageFrames, User, err, event_frame, offline, text_frame};
use crate::protocol::{
    ChannelId, ErrorBody, ErrorKind, Event, MEMBER_EVENTS_MAX_MEMBERS, PeerOnlineState, Reply,
    RtmMessage, SendMessageOptions, Uid, close_code,
};
use crate::server::cluster::{BusEvent, Cluster, ClusterError, Pending};
use crate::server::redis_reply::{int_of, text_of, texts_of};
use crate::server::session::{SessionHandle, SessionId};

/// Why a user's state leaves this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// Logout, grace over, or replaced by another login: it leaves its
    /// channels and its watchers hear of it.
    Gone,
    /// Resumed on another node: it is still there, so nobody is told.
    Moved,
}

/// Who held a uid before this login, as Redis said.
pub(super) enum Claim {
    /// Nobody, or this node (the hub's memory knows the rest), or Redis
    /// could not be asked (the login goes on with this node alone).
    Fresh,
    /// A live session on another node: a remote login ends it.
    Replace { node: String, sid: String },
    /// A session on another node whose link is down or whose node died:
    /// this login resumes it here.
    Adopt {
        node: String,
        sid: String,
        channels: Vec<ChannelId>,
        attributes: BTreeMap<String, String>,
        subscriptions: Vec<Uid>,
    },
}

/// How long a login waits for another node to say whether it still holds
/// the uid's session.
const PROBE_WAIT: Duration = Duration::from_millis(500);

fn busy(e: ClusterError) -> ErrorBody {
    tracing::warn!("cluster: {e}");
    e.to_body()
}

impl Hub {
    /// Makes this hub a node of the cluster `c` (once, at start).
    pub fn attach_cluster(&self, c: Arc<Cluster>) {
        let _ = self.cluster.set(c);
    }

    /// The cluster this node belongs to, if any.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    // ------------------------------------------------------------- login

    /// Cluster mode: takes the uid over in Redis and says who had it.
    pub(super) async fn cluster_claim(&self, session: &Arc<SessionHandle>) -> Option<Claim> {
        let c = self.cluster()?;
        let uid = session.uid.as_str();
        let sid = session.id.to_string();
        let reply = match c
            .call(c.script("claim", &[uid, c.node(), &sid]))
            .get()
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(%uid, "cluster: login goes on with this node alone: {e}");
                return Some(Claim::Fresh);
            }
        };
        let old = texts_of(&reply);
        let [node, old_sid, link, alive, last_seen] = old.as_slice() else {
            return Some(Claim::Fresh);
        };
        if node == c.node() {
            return Some(Claim::Fresh);
        }
        let silent_ms = self
            .now_ms()
            .saturating_sub(last_seen.parse::<u64>().unwrap_or(0));
        if alive == "0" && silent_ms > self.config.grace.as_millis() as u64 {
            // A session of a node dead for longer than the grace is over
            // (nobody was left to reap it): start afresh, and take the old
            // session's memberships away.
            self.end_remote_session(c, uid, node, old_sid);
            return Some(Claim::Fresh);
        }
        if link == "up" && alive == "1" {
            // A live session elsewhere, or the same client back from a node
            // that just died (its liveness key has not expired yet)? Ask it:
            // a live node says whether the link is still up; one that does
            // not answer in time is taken for dead, and the session resumes
            // here (its old connection, if any, is closed as "moved").
            let up = c.probe(node, uid, old_sid, PROBE_WAIT).await;
            if up == Some(true) {
                // A remote login: the new session starts without the old
                // one's channels, attributes and subscriptions.
                self.end_remote_session(c, uid, node, old_sid);
                return Some(Claim::Replace {
                    node: node.clone(),
                    sid: old_sid.clone(),
                });
            }
        }
        let adopted = match c.call(c.script("adopt", &[uid, c.node()])).get().await {
            Ok(Value::Array(parts)) if parts.len() == 3 => parts,
            Ok(other) => {
                tracing::warn!(%uid, "cluster: unexpected adopt answer {other:?}");
                return Some(Claim::Fresh);
            }
            Err(e) => {
                tracing::warn!(%uid, "cluster: resuming: {e}");
                return Some(Claim::Fresh);
            }
        };
        let channels = texts_of(&adopted[0])
            .into_iter()
            .filter_map(|c| ChannelId::new(c).ok())
            .collect();
        let flat = texts_of(&adopted[1]);
        let attributes = flat
            .chunks(2)
            .filter_map(|kv| match kv {
                [k, v] => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect();
        let subscriptions = texts_of(&adopted[2])
            .into_iter()
            .filter_map(|u| Uid::new(u).ok())
            .collect();
        Some(Claim::Adopt {
            node: node.clone(),
            sid: old_sid.clone(),
            channels,
            attributes,
            subscriptions,
        })
    }

    /// The session (node, sid) of `uid` is over and a new one starts
    /// afresh: its memberships go (members hear it leave), and so do its
    /// attributes and subscriptions.
    fn end_remote_session(&self, c: &Arc<Cluster>, uid: &str, node: &str, sid: &str) {
        let mut del = redis::cmd("DEL");
        del.arg(c.key(&format!("ua:{uid}")))
            .arg(c.key(&format!("us:{uid}")));
        c.fire(del, "starting a session afresh");
        let pending = c.call(c.script("depart", &[uid, node, sid, "0"]));
        self.mark_emptied(pending, "ending a session on another node");
    }

    /// Registers a session whose uid this node did not hold, as `claim`
    /// says; true when it resumed a session of another node.
    pub(super) fn register_claimed(
        self: &Arc<Self>,
        st: &mut HubState,
        session: &Arc<SessionHandle>,
        claim: Claim,
    ) -> bool {
        let uid = session.uid.clone();
        let Some(c) = self.cluster().cloned() else {
            return self.register(st, session);
        };
        match claim {
            Claim::Fresh => self.register(st, session),
            Claim::Replace { node, sid } => {
                // The uid stays online throughout: watchers hear nothing.
                c.publish(
                    c.topic_node(&node),
                    &BusEvent::Kick {
                        uid: uid.to_string(),
                        sid,
                    },
                );
                self.insert_user(st, session.clone());
                false
            }
            Claim::Adopt {
                node,
                sid,
                channels,
                attributes,
                subscriptions,
            } => {
                c.publish(
                    c.topic_node(&node),
                    &BusEvent::Moved {
                        uid: uid.to_string(),
                        sid,
                        to: c.node().to_string(),
                    },
                );
                self.insert_user(st, session.clone());
                let mut joined = HashSet::new();
                for ch in channels {
                    if self.add_local_member(st, &ch, session) {
                        // Not awaited: the channel's messages reach this
                        // node from the moment Redis confirms.
                        drop(c.listen(c.topic_channel(ch.as_str())));
                    }
                    joined.insert(ch);
                }
                for p in &subscriptions {
                    let set = st.watchers.entry(p.clone()).or_default();
                    if set.is_empty() {
                        drop(c.listen(c.topic_presence(p.as_str())));
                    }
                    set.insert(uid.clone());
                }
                if let Some(user) = st.users.get_mut(&uid) {
                    user.channels = joined;
                    user.attributes = attributes;
                    user.subscriptions = subscriptions.into_iter().collect();
                }
                self.notify_watchers(st, &uid, PeerOnlineState::Online);
                tracing::info!(%uid, from = %node, "cluster: resumed a session of another node");
                true
            }
        }
    }

    /// Records the link of (uid, session) as up or down.
    pub(super) fn cluster_set_link(&self, uid: &Uid, session: SessionId, up: bool) {
        if let Some(c) = self.cluster() {
            let sid = session.to_string();
            let link = if up { "up" } else { "down" };
            c.fire(
                c.script("set_link", &[uid.as_str(), c.node(), &sid, link]),
                "recording a link state",
            );
        }
    }

    /// The user of `session` is gone from this node (and, unless another
    /// session took the uid over, from the cluster).
    pub(super) fn cluster_depart(&self, uid: &Uid, session: SessionId) {
        let Some(c) = self.cluster() else { return };
        let sid = session.to_string();
        let pending = c.call(c.script("depart", &[uid.as_str(), c.node(), &sid, "1"]));
        self.mark_emptied(pending, "removing a user");
    }

    /// Channels a script reports empty everywhere start their attribute
    /// countdown.
    fn mark_emptied(&self, pending: Pending, what: &'static str) {
        let store = self.store.clone();
        let now = self.now_ms();
        tokio::spawn(async move {
            match pending.get().await {
                Ok(v) => {
                    for ch in texts_of(&v) {
                        if let Ok(ch) = ChannelId::new(ch) {
                            store
                                .set_channel_empty_since(&ch, Some(now))
                                .log_failure("marking a channel empty");
                        }
                    }
                }
                Err(e) => tracing::warn!("cluster: {what}: {e}"),
            }
        });
    }

    // ----------------------------------------------------------- channels

    /// Finishes a join in Redis; answers the channel's member count there.
    pub(super) async fn cluster_joined(
        &self,
        ch: &ChannelId,
        listening: Option<oneshot::Receiver<()>>,
        joined: Pending,
    ) -> Option<usize> {
        if let Some(l) = listening {
            let _ = tokio::time::timeout(Duration::from_secs(5), l).await;
        }
        let n = match joined.get().await {
            Ok(v) => int_of(&v)?,
            Err(e) => {
                tracing::warn!(%ch, "cluster: join counted on this node only: {e}");
                return None;
            }
        };
        if n == 1 {
            self.store
                .set_channel_empty_since(ch, None)
                .log_failure("marking a channel occupied");
        }
        let mut st = self.lock();
        if let Some(channel) = st.channels.get_mut(ch) {
            channel.global_count = Some(n as u32);
        }
        Some(n as usize)
    }

    pub(super) fn cluster_leave(&self, ch: &ChannelId, uid: &Uid) {
        let Some(c) = self.cluster() else { return };
        let pending = c.call(c.script("leave", &[ch.as_str(), uid.as_str(), c.node()]));
        let store = self.store.clone();
        let now = self.now_ms();
        let ch = ch.clone();
        tokio::spawn(async move {
            match pending.get().await {
                Ok(v) if int_of(&v) == Some(0) => store
                    .set_channel_empty_since(&ch, Some(now))
                    .log_failure("marking a channel empty"),
                Ok(_) => {}
                Err(e) => tracing::warn!(%ch, "cluster: leaving: {e}"),
            }
        });
    }

    pub(super) async fn cluster_members(&self, ch: &ChannelId) -> Result<Vec<Uid>, ErrorBody> {
        let Some(c) = self.cluster() else {
            return Ok(Vec::new());
        };
        let v = c
            .call(
                redis::cmd("HKEYS")
                    .arg(c.key(&format!("members:{ch}")))
                    .clone(),
            )
            .get()
            .await
            .map_err(busy)?;
        let mut members: Vec<Uid> = texts_of(&v)
            .into_iter()
            .filter_map(|u| Uid::new(u).ok())
            .collect();
        members.sort();
        Ok(members)
    }

    pub(super) async fn cluster_counts(&self, chs: &[ChannelId]) -> Result<Vec<u32>, ErrorBody> {
        let Some(c) = self.cluster() else {
            return Ok(vec![0; chs.len()]);
        };
        let pending: Vec<Pending> = chs
            .iter()
            .map(|ch| {
                c.call(
                    redis::cmd("HLEN")
                        .arg(c.key(&format!("members:{ch}")))
                        .clone(),
                )
            })
            .collect();
        let mut counts = Vec::with_capacity(chs.len());
        for p in pending {
            counts.push(int_of(&p.get().await.map_err(busy)?).unwrap_or(0) as u32);
        }
        Ok(counts)
    }

    // ----------------------------------------------------------- presence

    pub(super) async fn cluster_states(
        &self,
        peers: &[Uid],
    ) -> Result<Vec<PeerOnlineState>, ErrorBody> {
        let Some(c) = self.cluster() else {
            return Ok(vec![PeerOnlineState::Offline; peers.len()]);
        };
        let args: Vec<&str> = peers.iter().map(|p| p.as_str()).collect();
        let v = c
            .call(c.script("presence", &args))
            .get()
            .await
            .map_err(busy)?;
        let codes: Vec<i64> = match v {
            Value::Array(items) => items.iter().filter_map(int_of).collect(),
            _ => Vec::new(),
        };
        if codes.len() != peers.len() {
            return Err(err(
                ErrorKind::Unknown,
                "the cluster answered an online-state query oddly; retry",
            ));
        }
        Ok(codes
            .into_iter()
            .map(|n| match n {
                1 => PeerOnlineState::Online,
                2 => PeerOnlineState::Unreachable,
                _ => PeerOnlineState::Offline,
            })
            .collect())
    }

    // ------------------------------------------------------ peer messages

    /// A peer message to a uid this node does not hold: to its node, or
    /// stored when it is offline (and asked for).
    pub(super) async fn send_peer_remote(
        &self,
        from: &Uid,
        to: &Uid,
        message: &RtmMessage,
        options: SendMessageOptions,
        ts: u64,
        frames: &MessageFrames,
    ) -> Result<Reply, ErrorBody> {
        let Some(c) = self.cluster() else {
            return Err(err(ErrorKind::Unknown, "no cluster; this is a server bug"));
        };
        let (full, compact) = frames.texts();
        let payload = BusEvent::Peer {
            to: to.to_string(),
            full,
            compact,
        }
        .encode(c.node());
        let offline = if options.enable_offline_messaging {
            "1"
        } else {
            "0"
        };
        let routed = c
            .call(c.script("peer", &[to.as_str(), offline, &payload]))
            .get()
            .await
            .map_err(busy)?;
        let sent = |has_peer_received| {
            Ok(Reply::PeerMessageSent {
                has_peer_received,
                server_received_ts: ts,
                cached: false,
            })
        };
        match int_of(&routed) {
            Some(1) => return sent(true),
            Some(2) => return sent(false),
            _ => {}
        }
        if !options.enable_offline_messaging {
            return sent(false);
        }
        let pushed = self
            .store
            .push_offline(to, from, message, ts, &self.config.offline_quota);
        let reply = self.stored_offline(pushed, from, to, ts).await?;
        // The receiver may have logged in (anywhere) between the look-up and
        // the store: its node then looks in the mailbox again. A login after
        // this point reads the message itself.
        let poke = BusEvent::Mailbox {
            uid: to.to_string(),
        }
        .encode(c.node());
        c.fire(
            c.script("to_user_node", &[to.as_str(), &poke]),
            "telling a node of a stored message",
        );
        Ok(reply)
    }

    /// Sends `frame` to `uid` on whichever node holds it; false when this
    /// node cannot tell (single server, or no cluster).
    pub(super) fn cluster_deliver(
        &self,
        uid: &Uid,
        frame: &tokio_tungstenite::tungstenite::Message,
    ) -> bool {
        let Some(c) = self.cluster() else {
            return false;
        };
        let frame = match frame {
            tokio_tungstenite::tungstenite::Message::Text(t) => t.as_str().to_string(),
            _ => return false,
        };
        let payload = BusEvent::Frame {
            to: uid.to_string(),
            frame,
        }
        .encode(c.node());
        c.fire(
            c.script("to_user_node", &[uid.as_str(), &payload]),
            "forwarding an invitation event",
        );
        true
    }

    /// Whether `uid`, not on this node, is logged in on another one.
    pub(super) async fn online_elsewhere(&self, uid: &Uid) -> bool {
        if self.cluster().is_none() || self.lock().users.contains_key(uid) {
            return false;
        }
        self.cluster_states(std::slice::from_ref(uid))
            .await
            .is_ok_and(|s| s.first().is_some_and(|s| *s != PeerOnlineState::Offline))
    }

    /// Forwards an invitation step of a callee here to the caller's node.
    pub(super) fn cluster_invitation_op(
        &self,
        caller: &Uid,
        id: u64,
        callee: &Uid,
        op: &str,
        response: &str,
    ) -> bool {
        let Some(c) = self.cluster() else {
            return false;
        };
        let payload = BusEvent::InvitationOp {
            caller: caller.to_string(),
            id,
            callee: callee.to_string(),
            op: op.to_string(),
            response: response.to_string(),
        }
        .encode(c.node());
        c.fire(
            c.script("to_user_node", &[caller.as_str(), &payload]),
            "forwarding an invitation answer",
        );
        true
    }

    // ---------------------------------------------------------------- bans

    /// Keeps a ban in Redis (every node refuses the uid's logins until it
    /// ends) and tells the node that holds the uid.
    pub(super) fn cluster_ban(&self, uid: &Uid, until_ms: u64, reason: &str) {
        let Some(c) = self.cluster() else { return };
        let mut set = redis::cmd("SET");
        set.arg(c.key(&format!("ban:{uid}")))
            .arg(format!("{until_ms}\n{reason}"))
            .arg("PXAT")
            .arg(until_ms.max(1));
        c.fire(set, "recording a ban");
        let payload = BusEvent::Ban {
            uid: uid.to_string(),
            until_ms,
            reason: reason.to_string(),
        }
        .encode(c.node());
        c.fire(
            c.script("to_user_node", &[uid.as_str(), &payload]),
            "telling a node of a ban",
        );
    }

    pub(super) fn cluster_unban(&self, uid: &Uid) {
        if let Some(c) = self.cluster() {
            c.fire(
                redis::cmd("DEL").arg(c.key(&format!("ban:{uid}"))).clone(),
                "lifting a ban",
            );
        }
    }

    /// A ban of `uid` recorded by any node, if one is in force.
    pub(super) async fn cluster_ban_of(&self, uid: &Uid) -> Option<super::admin::Ban> {
        let c = self.cluster()?;
        let v = c
            .call(redis::cmd("GET").arg(c.key(&format!("ban:{uid}"))).clone())
            .get()
            .await
            .ok()?;
        let text = text_of(&v);
        let (until, reason) = text.split_once('\n')?;
        Some(super::admin::Ban {
            until_ms: until.parse().ok()?,
            reason: reason.to_string(),
        })
    }

    // --------------------------------------------------- user attributes

    pub(super) fn cluster_set_attributes(
        &self,
        uid: &Uid,
        session: SessionId,
        attrs: &BTreeMap<String, String>,
    ) {
        let Some(c) = self.cluster() else { return };
        let sid = session.to_string();
        let mut args: Vec<&str> = vec![uid.as_str(), c.node(), &sid];
        for (k, v) in attrs {
            args.push(k);
            args.push(v);
        }
        c.fire(c.script("set_attrs", &args), "recording user attributes");
    }

    /// Another node's user's attributes; `None` when not logged in anywhere.
    pub(super) async fn cluster_attributes(
        &self,
        of: &Uid,
    ) -> Result<Option<BTreeMap<String, String>>, ErrorBody> {
        let Some(c) = self.cluster() else {
            return Ok(None);
        };
        let v = c
            .call(c.script("get_attrs", &[of.as_str()]))
            .get()
            .await
            .map_err(busy)?;
        let parts = texts_of(&v);
        match parts.split_first() {
            Some((flag, rest)) if flag == "1" => Ok(Some(
                rest.chunks(2)
                    .filter_map(|kv| match kv {
                        [k, v] => Some((k.clone(), v.clone())),
                        _ => None,
                    })
                    .collect(),
            )),
            _ => Ok(None),
        }
    }

    // ------------------------------------------------- events from others

    /// An event from another node.
    pub fn on_bus(self: &Arc<Self>, event: BusEvent) {
        match event {
            BusEvent::Peer { to, full, compact } => {
                let Ok(to) = Uid::new(to) else { return };
                let frames = MessageFrames::from_texts(full, compact);
                let mut st = self.lock();
                let Some(peer) = st.users.get_mut(&to) else {
                    tracing::info!(%to, "cluster: a peer message arrived for a user no longer here");
                    return;
                };
                if peer.link == Link::Up {
                    self.deliver_live_peer(peer, &frames, false);
                } else {
                    self.keep_for_resume(peer, frames.full);
                }
            }
            BusEvent::Frame { to, frame } => {
                let Ok(to) = Uid::new(to) else { return };
                let mut st = self.lock();
                if let Some(user) = st.users.get_mut(&to) {
                    let frame = text_frame(frame);
                    if !(user.link == Link::Up && user.session.send(frame.clone())) {
                        self.keep_for_resume(user, frame);
                    }
                }
            }
            BusEvent::Kick { uid, sid } => {
                let Ok(uid) = Uid::new(uid) else { return };
                let mut st = self.lock();
                let session = st
                    .users
                    .get(&uid)
                    .filter(|u| u.session.id.to_string() == sid)
                    .map(|u| u.session.id);
                if let Some(session) = session {
                    self.end_by_remote_login(&mut st, &uid, session);
                }
            }
            BusEvent::Moved { uid, sid, to } => {
                let Ok(uid) = Uid::new(uid) else { return };
                let mut st = self.lock();
                if st
                    .users
                    .get(&uid)
                    .is_some_and(|u| u.session.id.to_string() == sid)
                    && let Some(mut old) = st.users.remove(&uid)
                {
                    old.session.kill_with(
                        close_code::GOING_AWAY,
                        "your session continues on another server",
                    );
                    // What arrived while the link was down follows the
                    // session to its new node.
                    let kept = old
                        .resume
                        .take()
                        .map(|b| b.into_frames())
                        .unwrap_or_default();
                    if let Some(c) = self.cluster() {
                        for frame in kept {
                            if let tokio_tungstenite::tungstenite::Message::Text(t) = frame {
                                c.publish(
                                    c.topic_node(&to),
                                    &BusEvent::Frame {
                                        to: uid.to_string(),
                                        frame: t.as_str().to_string(),
                                    },
                                );
                            }
                        }
                    }
                    self.drop_user_state(&mut st, &uid, old, Departure::Moved);
                }
            }
            BusEvent::Mailbox { uid } => {
                let Ok(uid) = Uid::new(uid) else { return };
                self.recheck_mailbox(&uid);
            }
            BusEvent::ChannelMessage {
                ch,
                from,
                full,
                compact,
            } => {
                let (Ok(ch), Ok(from)) = (ChannelId::new(ch), Uid::new(from)) else {
                    return;
                };
                let frames = MessageFrames::from_texts(full, compact);
                let mut st = self.lock();
                self.fan_out(&mut st, &ch, Some(&from), &frames);
            }
            BusEvent::Joined { ch, uid, count } => {
                self.remote_member_event(&ch, &uid, count, true);
            }
            BusEvent::Left { ch, uid, count } => {
                self.remote_member_event(&ch, &uid, count, false);
            }
            BusEvent::Attributes { ch, frame } => {
                let Ok(ch) = ChannelId::new(ch) else { return };
                let st = self.lock();
                if let Some(channel) = st.channels.get(&ch) {
                    let frame = text_frame(frame);
                    for s in channel.members.values() {
                        s.send(frame.clone());
                    }
                }
            }
            BusEvent::State { uid, state } => {
                let Ok(uid) = Uid::new(uid) else { return };
                let st = self.lock();
                self.notify_local_watchers(&st, &uid, state);
            }
            BusEvent::Probe {
                uid,
                sid,
                reply_to,
                probe,
            } => {
                let up = Uid::new(uid).is_ok_and(|uid| {
                    self.lock()
                        .users
                        .get(&uid)
                        .is_some_and(|u| u.session.id.to_string() == sid && u.link == Link::Up)
                });
                if let Some(c) = self.cluster() {
                    c.publish(c.topic_node(&reply_to), &BusEvent::ProbeReply { probe, up });
                }
            }
            BusEvent::ProbeReply { probe, up } => {
                if let Some(c) = self.cluster() {
                    c.probe_answered(probe, up);
                }
            }
            BusEvent::Ban {
                uid,
                until_ms,
                reason,
            } => {
                let Ok(uid) = Uid::new(uid) else { return };
                self.remember_ban(&uid, until_ms, &reason);
                self.end_by_operator(&uid, close_code::BANNED, &reason);
            }
            BusEvent::InvitationOp {
                caller,
                id,
                callee,
                op,
                response,
            } => {
                let (Ok(caller), Ok(callee)) = (Uid::new(caller), Uid::new(callee)) else {
                    return;
                };
                let r = match op.as_str() {
                    "ack" => self.ack_invitation(&callee, &caller, id),
                    "accept" => self.answer_invitation(&callee, &caller, id, response, true),
                    "refuse" => self.answer_invitation(&callee, &caller, id, response, false),
                    _ => return,
                };
                if let Err(e) = r {
                    tracing::debug!(%caller, %callee, id, "cluster: invitation step from another node: {}", e.message);
                }
            }
        }
    }

    /// Session `session` of `uid` (if it is still the user's) ends with
    /// REMOTE_LOGIN: the uid is held elsewhere now.
    fn end_by_remote_login(self: &Arc<Self>, st: &mut HubState, uid: &Uid, session: SessionId) {
        if st.users.get(uid).is_some_and(|u| u.session.id == session)
            && let Some(old) = st.users.remove(uid)
        {
            old.session.end_with_notice(
                event_frame(&Event::RemoteLogin),
                close_code::REMOTE_LOGIN,
                "logged in from another place with the same user id",
            );
            self.drop_user_state(st, uid, old, Departure::Gone);
        }
    }

    /// A member event of another node's user (this node's own never come
    /// back here): the count is Redis's, and this node's members hear of it.
    fn remote_member_event(self: &Arc<Self>, ch: &str, uid: &str, count: u32, joined: bool) {
        let (Ok(ch), Ok(uid)) = (ChannelId::new(ch), Uid::new(uid)) else {
            return;
        };
        let mut st = self.lock();
        let Some(channel) = st.channels.get_mut(&ch) else {
            return;
        };
        channel.global_count = Some(count);
        if (count as usize) <= MEMBER_EVENTS_MAX_MEMBERS {
            let event = if joined {
                Event::MemberJoined {
                    channel_id: ch.clone(),
                    member_id: uid.clone(),
                }
            } else {
                Event::MemberLeft {
                    channel_id: ch.clone(),
                    member_id: uid.clone(),
                }
            };
            let frame = event_frame(&event);
            for s in channel.members.values() {
                s.send(frame.clone());
            }
        }
        self.schedule_count(&mut st, &ch);
    }

    /// A message was stored for `uid` while it logged in here: its hand-over
    /// reads the mailbox again.
    fn recheck_mailbox(self: &Arc<Self>, uid: &Uid) {
        let session = {
            let mut st = self.lock();
            let min_ts = self
                .now_ms()
                .saturating_sub(self.config.offline_ttl.as_millis() as u64);
            let Some(user) = st.users.get_mut(uid).filter(|u| u.link == Link::Up) else {
                return;
            };
            match user.delivery.as_mut() {
                Some(d) => d.read_again(),
                None => {
                    user.delivery =
                        Some(offline::Delivery::new(user.session.id, min_ts, Vec::new()))
                }
            }
            user.session.clone()
        };
        let hub = Arc::clone(self);
        tokio::spawn(async move { hub.fill_offline(&session).await });
    }

    /// Redis came back (maybe empty): write every local user's live state
    /// again. A uid another node took meanwhile ends here.
    pub async fn cluster_reregister(self: &Arc<Self>) {
        let Some(c) = self.cluster().cloned() else {
            return;
        };
        let users: Vec<(Uid, SessionId, Vec<String>)> = {
            let st = self.lock();
            st.users
                .iter()
                .map(|(uid, u)| (uid.clone(), u.session.id, register_args(u)))
                .collect()
        };
        let mut lost = 0usize;
        let count = users.len();
        for (uid, sid, args) in users {
            let mut all: Vec<&str> = vec![uid.as_str(), c.node()];
            let sid_s = sid.to_string();
            all.push(&sid_s);
            all.extend(args.iter().map(String::as_str));
            match c.call(c.script("reregister", &all)).get().await {
                Ok(v) if int_of(&v) == Some(0) => {
                    lost += 1;
                    let mut st = self.lock();
                    self.end_by_remote_login(&mut st, &uid, sid);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("cluster: registering sessions again stopped: {e}");
                    return;
                }
            }
        }
        tracing::warn!(
            users = count,
            replaced = lost,
            "cluster: this node's sessions are registered again"
        );
    }
}

/// The REREGISTER script's arguments after (uid, node, sid).
fn register_args(u: &User) -> Vec<String> {
    let mut args = vec![
        if u.link == Link::Up { "up" } else { "down" }.to_string(),
        u.channels.len().to_string(),
    ];
    args.extend(u.channels.iter().map(|c| c.to_string()));
    args.push(u.attributes.len().to_string());
    for (k, v) in &u.attributes {
        args.push(k.clone());
        args.push(v.clone());
    }
    args.push(u.subscriptions.len().to_string());
    args.extend(u.subscriptions.iter().map(|s| s.to_string()));
    args
}
