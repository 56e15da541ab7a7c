//! The hub: who is logged in, which channels exist and who is in them, who
//! watches whom. One `std::sync::Mutex` guards it all; it is never held across
//! an `.await`, and frames are only *queued* under it (`try_send` onto each
//! session's bounded queue), never written to a socket.
//!
//! Storage ([`Store`]) is reached the same way: under the lock the hub only
//! *submits* operations (so their order is the order of its decisions), then
//! releases the lock and awaits the commit before it answers the request.
//!
//! Presence is indexed by watched uid (a subscriber set per uid), so a login
//! or logout touches only the sessions that watch that uid, not every session.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

mod admin;
mod attributes;
mod cluster;
mod invitations;
mod offline;

pub use admin::SessionInfo;
pub use cluster::Departure;

use super::clock::Timing;
use super::cluster::Cluster;
use super::media::{MediaConfig, MediaStore};
use super::resume::ResumeBuffer;
use super::session::{SessionHandle, SessionId};
use super::store::{OfflineQuota, Store, StoreError};
use crate::protocol::{
    ChannelId, ChannelMemberCount, ErrorBody, ErrorKind, Event, MAX_JOINED_CHANNELS,
    MAX_QUERY_PEERS, MAX_SUBSCRIPTIONS, MEMBER_EVENTS_MAX_MEMBERS, MessageProps, PeerOnlineState,
    Reply, RtmMessage, SendMessageOptions, ServerFrame, Uid, close_code, encode_compact_event,
    encode_event,
};

/// Tunables of the hub; defaults come from the shipped `server.toml`.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How long a dropped link may stay away before the user counts as gone.
    pub grace: Duration,
    /// Least time between two member-count events of a channel with ≤512 members.
    pub member_count_interval: Duration,
    /// Same, for larger channels.
    pub member_count_interval_large: Duration,
    /// A channel's attributes are cleared after it has been empty this long.
    pub channel_attributes_ttl: Duration,
    /// What offline messages may take: per receiver (`offline_cap` is its
    /// `per_receiver_messages`), per sender and in total.
    pub offline_quota: OfflineQuota,
    /// Offline messages older than this are not delivered.
    pub offline_ttl: Duration,
    /// Most stored messages handed to a session and not yet acknowledged;
    /// keep it well below the session's queue (`queue_frames`).
    pub offline_window: usize,
    /// Same, in bytes of their frames (at least one message is always sent).
    pub offline_window_bytes: usize,
    /// Most bytes of peer and channel messages kept for a user whose link is
    /// down, delivered if it resumes within the grace.
    pub resume_buffer_bytes: usize,
    /// An invitation nobody answers within this long after sending expires
    /// (`INVITATION_EXPIRE`).
    pub invitation_expiry: Duration,
    /// An invitation the callee's client does not confirm within this long
    /// fails (`PEER_NO_RESPONSE`).
    pub invitation_ack_timeout: Duration,
    /// Where and how files and images are kept.
    pub media: MediaConfig,
    /// True when logins are not checked against an app certificate.
    pub dev_mode: bool,
}

/// Whether a user's link is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Up,
    /// Dropped at this instant; the user stays a member until the grace ends.
    Down,
}

/// A logged-in user. Owned by the hub; removed at logout, kick or grace expiry.
struct User {
    session: Arc<SessionHandle>,
    link: Link,
    channels: HashSet<ChannelId>,
    attributes: BTreeMap<String, String>,
    /// Uids this user watches (mirror of the `watchers` index).
    subscriptions: HashSet<Uid>,
    /// The hand-over of stored messages to the current session, while one
    /// runs (see `hub::offline`).
    delivery: Option<offline::Delivery>,
    /// What arrived for the user since its connection started to end; handed
    /// to the session that resumes it (see `server::resume`).
    resume: Option<ResumeBuffer>,
}

/// Most live peer messages held for one user while its offline messages are
/// handed over (a window at a time, so this waits for the client's
/// acknowledgements); more means the user cannot keep up (slow consumer).
const MAX_HELD_FRAMES: usize = 4096;

/// A channel with at least one member. Removed when the last member leaves.
struct Channel {
    /// Members and the session each one's frames go to.
    members: HashMap<Uid, Arc<SessionHandle>>,
    /// Count carried by the last `member_count_updated`, and when it went out.
    last_count_sent: Option<(u32, Instant)>,
    /// A flush task is already waiting to send the count.
    count_flush_pending: bool,
    /// Distinguishes this channel from an earlier one of the same id (emptied
    /// and recreated), so a stale flush task does nothing.
    generation: u64,
    /// In cluster mode: members on every node, as Redis last counted them.
    global_count: Option<u32>,
}

impl Channel {
    /// Members in the whole service (this node's alone on a single server).
    fn count(&self) -> usize {
        self.global_count
            .map_or(self.members.len(), |n| (n as usize).max(self.members.len()))
    }
}

#[derive(Default)]
struct HubState {
    users: HashMap<Uid, User>,
    channels: HashMap<ChannelId, Channel>,
    /// watched uid → uids watching it.
    watchers: HashMap<Uid, HashSet<Uid>>,
    /// Channel-attribute writes in flight, for ordering their notifications.
    attribute_writes: HashMap<ChannelId, AttributeWrites>,
    /// Source of `Channel::generation`.
    channel_generations: u64,
    /// Open call invitations and their indexes (see `hub::invitations`).
    invitations: invitations::Invitations,
    /// Uids the operator banned (see `hub::admin`).
    bans: admin::Bans,
}

/// Attribute writes of one channel are numbered when submitted (under the
/// lock, so in store order); a notification older than one already sent is
/// dropped, so members never end with a stale full set.
#[derive(Default)]
struct AttributeWrites {
    submitted: u64,
    notified: u64,
    in_flight: u32,
}

/// Shared by every connection task; see the module doc.
pub struct Hub {
    state: Mutex<HubState>,
    pub config: HubConfig,
    /// Shared with every connection of this server; fixed at start.
    timing: Timing,
    store: Arc<dyn Store>,
    /// Files and images; the transfer connections reach it through the hub.
    media: Arc<MediaStore>,
    /// Set once at start in cluster mode (see `hub::cluster`).
    cluster: OnceLock<Arc<Cluster>>,
}

/// What `login` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginOutcome {
    pub resumed: bool,
}

fn text_frame(s: String) -> Message {
    Message::Text(s.into())
}

fn event_frame(event: &Event) -> Message {
    text_frame(encode_event(event))
}

/// A live message event in both of its forms, each encoded once (before the
/// hub lock is taken): every recipient gets the shared bytes of its form.
struct MessageFrames {
    full: Message,
    compact: Option<Message>,
}

impl MessageFrames {
    fn new(event: &Event) -> Self {
        MessageFrames {
            full: event_frame(event),
            compact: encode_compact_event(event).map(text_frame),
        }
    }

    /// From frames another node encoded.
    fn from_texts(full: String, compact: Option<String>) -> Self {
        MessageFrames {
            full: text_frame(full),
            compact: compact.map(text_frame),
        }
    }

    /// The encoded texts, for another node.
    fn texts(&self) -> (String, Option<String>) {
        let text = |m: &Message| match m {
            Message::Text(t) => t.as_str().to_string(),
            _ => String::new(),
        };
        (text(&self.full), self.compact.as_ref().map(text))
    }

    /// The frame `session` asked for at login.
    fn for_session(&self, session: &SessionHandle) -> Message {
        match &self.compact {
            Some(compact) if session.compact_events => compact.clone(),
            _ => self.full.clone(),
        }
    }
}

fn err(kind: ErrorKind, message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(kind, message)
}

fn state_of(user: Option<&User>) -> PeerOnlineState {
    match user.map(|u| u.link) {
        Some(Link::Up) => PeerOnlineState::Online,
        Some(Link::Down) => PeerOnlineState::Unreachable,
        None => PeerOnlineState::Offline,
    }
}

impl Hub {
    pub fn new(config: HubConfig, timing: Timing, store: Arc<dyn Store>) -> Arc<Self> {
        let media = MediaStore::open(config.media.clone(), timing.clock.clone());
        Arc::new(Self {
            state: Mutex::new(HubState::default()),
            config,
            timing,
            store,
            media,
            cluster: OnceLock::new(),
        })
    }

    /// The timings the hub and its connections go by.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// The store behind this hub.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The files and images of this server.
    pub fn media(&self) -> &Arc<MediaStore> {
        &self.media
    }

    /// Milliseconds since the epoch, by the server's wall clock.
    pub fn now_ms(&self) -> u64 {
        self.timing.clock.now_ms()
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock leaves the state as consistent as
        // each step made it; carrying on beats taking the whole server down.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store_err(e: impl std::fmt::Display) -> ErrorBody {
        tracing::error!("store: {e}");
        err(
            ErrorKind::Unknown,
            format!("the server could not store this ({e}); nothing was changed, retry later"),
        )
    }

    // ---------------------------------------------------------------- login

    /// Registers `session` as the live session of its uid, queues the login
    /// reply (request `id`), then starts handing over stored offline messages.
    ///
    /// The hand-over (`hub::offline`): stored messages go out a window at a
    /// time and are deleted only when the client acknowledges them; live
    /// peer messages wait until every stored one is queued. A resumed session
    /// first gets, after the stored ones, what arrived while its link was
    /// down (the resume buffer), then the live ones.
    pub async fn login(
        self: &Arc<Self>,
        id: u64,
        session: Arc<SessionHandle>,
        token_expires_in_s: Option<u64>,
    ) -> LoginOutcome {
        let uid = session.uid.clone();
        let min_ts = self
            .now_ms()
            .saturating_sub(self.config.offline_ttl.as_millis() as u64);
        // Cluster mode: who held the uid before, anywhere (awaited before
        // the lock; a single server has only its own memory to ask).
        let claim = self.cluster_claim(&session).await;
        let resumed = {
            let mut st = self.lock();
            let resumed = match claim {
                Some(claim) if !st.users.contains_key(&uid) => {
                    self.register_claimed(&mut st, &session, claim)
                }
                _ => self.register(&mut st, &session),
            };
            if let Some(user) = st.users.get_mut(&uid) {
                // A resumed user keeps what an earlier session still held
                // back, then what arrived while its link was down.
                let mut held = user
                    .delivery
                    .take()
                    .and_then(|d| d.held)
                    .unwrap_or_default();
                if let Some(buffer) = user.resume.take() {
                    if buffer.missed() > 0 {
                        tracing::info!(%uid, missed = buffer.missed(), "resume buffer overflowed");
                    }
                    held.extend(buffer.into_frames());
                }
                user.delivery = Some(offline::Delivery::new(session.id, min_ts, held));
            }
            let reply = ServerFrame::Ok {
                id,
                result: Reply::LoggedIn {
                    uid: uid.clone(),
                    server_ts: self.now_ms(),
                    heartbeat_interval_ms: self.timing.heartbeat_interval.as_millis() as u64,
                    resumed,
                    dev_mode: self.config.dev_mode,
                    token_expires_in_s,
                    compact_events: session.compact_events,
                },
            };
            session.send(text_frame(reply.encode()));
            resumed
        };
        self.fill_offline(&session).await;
        LoginOutcome { resumed }
    }

    /// Makes `session` the live session of its uid; true when it resumed a
    /// user whose link had dropped within the grace.
    fn register(self: &Arc<Self>, st: &mut HubState, session: &Arc<SessionHandle>) -> bool {
        let uid = session.uid.clone();
        match st.users.get(&uid).map(|u| u.link) {
            Some(Link::Down) => {
                // The same user back within the grace: keep channels,
                // attributes and subscriptions; just swap the connection.
                let Some(user) = st.users.get_mut(&uid) else {
                    return false;
                };
                user.session = session.clone();
                user.link = Link::Up;
                let old_channels = user.channels.clone();
                for ch in old_channels {
                    if let Some(c) = st.channels.get_mut(&ch) {
                        c.members.insert(uid.clone(), session.clone());
                    }
                }
                self.cluster_set_link(&uid, session.id, true);
                self.notify_watchers(st, &uid, PeerOnlineState::Online);
                true
            }
            Some(Link::Up) => {
                // Another live session: it is kicked and leaves its channels.
                // The uid stays online throughout, so watchers hear nothing.
                if let Some(old) = st.users.remove(&uid) {
                    old.session.end_with_notice(
                        event_frame(&Event::RemoteLogin),
                        close_code::REMOTE_LOGIN,
                        "logged in from another place with the same user id",
                    );
                    self.drop_user_state(st, &uid, old, Departure::Gone);
                }
                self.insert_user(st, session.clone());
                false
            }
            None => {
                self.insert_user(st, session.clone());
                self.notify_watchers(st, &uid, PeerOnlineState::Online);
                false
            }
        }
    }

    fn insert_user(&self, st: &mut HubState, session: Arc<SessionHandle>) {
        st.users.insert(
            session.uid.clone(),
            User {
                session,
                link: Link::Up,
                channels: HashSet::new(),
                attributes: BTreeMap::new(),
                subscriptions: HashSet::new(),
                delivery: None,
                resume: None,
            },
        );
    }

    /// Explicit logout: the user is gone at once (OFFLINE, leaves channels).
    pub fn logout(self: &Arc<Self>, uid: &Uid, session: SessionId) {
        let mut st = self.lock();
        if st.users.get(uid).is_some_and(|u| u.session.id == session)
            && let Some(user) = st.users.remove(uid)
        {
            self.drop_user_state(&mut st, uid, user, Departure::Gone);
            self.notify_watchers(&st, uid, PeerOnlineState::Offline);
        }
    }

    /// The connection of `session` ended without logout. If it is still the
    /// user's session, the user turns UNREACHABLE and, unless it logs in again
    /// within the grace, is removed when the grace ends.
    pub fn link_down(self: &Arc<Self>, uid: &Uid, session: SessionId) {
        {
            let mut st = self.lock();
            let Some(user) = st.users.get_mut(uid) else {
                return;
            };
            if user.session.id != session || user.link == Link::Down {
                return;
            }
            user.link = Link::Down;
            let cap = self.config.resume_buffer_bytes;
            user.resume.get_or_insert_with(|| ResumeBuffer::new(cap));
            self.cluster_set_link(uid, session, false);
            self.notify_watchers(&st, uid, PeerOnlineState::Unreachable);
        }
        let hub = Arc::clone(self);
        let uid = uid.clone();
        let grace = self.config.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            hub.grace_expired(&uid, session);
        });
    }

    fn grace_expired(self: &Arc<Self>, uid: &Uid, session: SessionId) {
        let mut st = self.lock();
        let still_down = st
            .users
            .get(uid)
            .is_some_and(|u| u.session.id == session && u.link == Link::Down);
        if still_down && let Some(user) = st.users.remove(uid) {
            self.drop_user_state(&mut st, uid, user, Departure::Gone);
            self.notify_watchers(&st, uid, PeerOnlineState::Offline);
        }
    }

    /// Removes a departed user from its channels and the watcher index. A
    /// user that moved to another node (cluster mode) leaves quietly: it is
    /// still in its channels, through that node.
    fn drop_user_state(self: &Arc<Self>, st: &mut HubState, uid: &Uid, user: User, how: Departure) {
        let quiet = how == Departure::Moved;
        if !quiet {
            self.end_invitations_of(st, uid);
            self.cluster_depart(uid, user.session.id);
        }
        for ch in &user.channels {
            self.remove_member(st, ch, uid, quiet);
        }
        for watched in &user.subscriptions {
            self.remove_watcher(st, watched, uid);
        }
    }

    /// `watcher` no longer watches `watched`.
    fn remove_watcher(&self, st: &mut HubState, watched: &Uid, watcher: &Uid) {
        if let Some(set) = st.watchers.get_mut(watched) {
            set.remove(watcher);
            if set.is_empty() {
                st.watchers.remove(watched);
                if let Some(c) = self.cluster() {
                    c.unlisten(&c.topic_presence(watched.as_str()));
                }
            }
        }
    }

    /// Tells everyone watching `uid` its new state, here and (cluster mode)
    /// on the other nodes.
    fn notify_watchers(&self, st: &HubState, uid: &Uid, state: PeerOnlineState) {
        if let Some(c) = self.cluster() {
            c.publish(
                c.topic_presence(uid.as_str()),
                &super::cluster::BusEvent::State {
                    uid: uid.to_string(),
                    state,
                },
            );
        }
        self.notify_local_watchers(st, uid, state);
    }

    /// Tells this node's sessions watching `uid` its new state; the frame is
    /// encoded once.
    fn notify_local_watchers(&self, st: &HubState, uid: &Uid, state: PeerOnlineState) {
        let Some(watchers) = st.watchers.get(uid) else {
            return;
        };
        let frame = event_frame(&Event::PeersOnlineStatusChanged {
            statuses: BTreeMap::from([(uid.clone(), state)]),
        });
        for w in watchers {
            if let Some(u) = st.users.get(w)
                && u.link == Link::Up
            {
                u.session.send(frame.clone());
            }
        }
    }

    // --------------------------------------------------------- peer messages

    /// Live delivery when the peer is online; otherwise, if asked, the
    /// message is stored and the reply waits until it is durable.
    pub async fn send_peer_message(
        &self,
        from: &Uid,
        to: &Uid,
        message: &RtmMessage,
        options: SendMessageOptions,
    ) -> Result<Reply, ErrorBody> {
        let ts = self.now_ms();
        // Encoded before the lock is taken: JSON of up to 32 KB is the
        // costliest step, and nobody else should wait for it.
        let frames = MessageFrames::new(&Event::MessageFromPeer {
            peer_id: from.clone(),
            message: message.clone(),
            props: MessageProps {
                server_received_ts: ts,
                is_offline_message: false,
                message_id: None,
            },
        });
        let stored = {
            let mut st = self.lock();
            super::metrics::METRICS.peer_messages.inc();
            if let Some(peer) = st.users.get_mut(to)
                && peer.link == Link::Up
            {
                let delivered =
                    self.deliver_live_peer(peer, &frames, options.enable_offline_messaging);
                return Ok(Reply::PeerMessageSent {
                    has_peer_received: delivered,
                    server_received_ts: ts,
                    cached: false,
                });
            }
            if !st.users.contains_key(to) && self.cluster().is_some() {
                // Not on this node: maybe on another one.
                None
            } else {
                if !options.enable_offline_messaging {
                    // A user within the grace gets it if it resumes.
                    if let Some(peer) = st.users.get_mut(to) {
                        self.keep_for_resume(peer, frames.full);
                    }
                    return Ok(Reply::PeerMessageSent {
                        has_peer_received: false,
                        server_received_ts: ts,
                        cached: false,
                    });
                }
                // Submitted under the lock: a login after this point reads it.
                Some(
                    self.store
                        .push_offline(to, from, message, ts, &self.config.offline_quota),
                )
            }
        };
        match stored {
            Some(stored) => self.stored_offline(stored, from, to, ts).await,
            None => {
                self.send_peer_remote(from, to, message, options, ts, &frames)
                    .await
            }
        }
    }

    /// Waits until an offline message is durable and answers its sender:
    /// stored (`cached`), or why not (a quota, a failing store).
    async fn stored_offline(
        &self,
        stored: super::store::Ticket<()>,
        from: &Uid,
        to: &Uid,
        ts: u64,
    ) -> Result<Reply, ErrorBody> {
        let submitted = std::time::Instant::now();
        let stored = stored.await;
        super::metrics::METRICS
            .store_seconds
            .observe(super::metrics::since(submitted));
        match stored {
            Ok(()) => {
                super::metrics::METRICS.offline_stored.inc();
            }
            Err(StoreError::Quota(refusal)) => {
                tracing::info!(%from, %to, "offline message refused: {refusal}");
                return Err(err(ErrorKind::QuotaExceeded, refusal.to_string()));
            }
            Err(e) => return Err(Self::store_err(e)),
        }
        Ok(Reply::PeerMessageSent {
            has_peer_received: false,
            server_received_ts: ts,
            cached: true,
        })
    }

    /// Hands a live peer message to a user whose link is up: behind its
    /// stored messages while those are handed over, else straight to its
    /// queue. True when queued (or held for the queue).
    fn deliver_live_peer(&self, peer: &mut User, frames: &MessageFrames, offline: bool) -> bool {
        super::metrics::METRICS.deliveries.inc();
        let held = peer.delivery.as_mut().and_then(|d| d.held.as_mut());
        match held {
            // Offline messages are being handed over: wait behind them.
            Some(held) if held.len() < MAX_HELD_FRAMES => {
                held.push(frames.for_session(&peer.session));
                true
            }
            Some(_) => {
                super::metrics::METRICS.slow_consumers.inc();
                peer.session.kill_with(
                    close_code::SLOW_CONSUMER,
                    "slow consumer: too many messages waiting; reconnect",
                );
                false
            }
            None => {
                let sent = peer.session.send(frames.for_session(&peer.session));
                if !sent && !offline {
                    // Its connection is ending: kept for a resume (in the
                    // object form: the resuming client may not ask for
                    // compact events).
                    self.keep_for_resume(peer, frames.full.clone());
                }
                sent
            }
        }
    }

    /// Keeps a message for a user whose connection is ending or down, for
    /// the session that may resume it within the grace.
    fn keep_for_resume(&self, user: &mut User, frame: Message) {
        let cap = self.config.resume_buffer_bytes;
        user.resume
            .get_or_insert_with(|| ResumeBuffer::new(cap))
            .push(frame);
    }

    // -------------------------------------------------------------- channels

    pub async fn join(
        self: &Arc<Self>,
        session: &Arc<SessionHandle>,
        ch: &ChannelId,
    ) -> Result<Reply, ErrorBody> {
        let uid = &session.uid;
        let (count, clustered) = {
            let mut st = self.lock();
            let user = st
                .users
                .get_mut(uid)
                .ok_or_else(|| err(ErrorKind::NotLoggedIn, "log in before joining a channel"))?;
            if user.channels.contains(ch) {
                return Err(err(
                    ErrorKind::AlreadyJoined,
                    format!("you are already in channel {ch}"),
                ));
            }
            if user.channels.len() >= MAX_JOINED_CHANNELS {
                return Err(err(
                    ErrorKind::ExceedLimit,
                    format!(
                        "you are in {MAX_JOINED_CHANNELS} channels, the most allowed; leave one before joining {ch}"
                    ),
                ));
            }
            user.channels.insert(ch.clone());
            let was_empty = self.add_local_member(&mut st, ch, session);
            let Some(channel) = st.channels.get_mut(ch) else {
                return Err(err(ErrorKind::Unknown, "the channel vanished; retry"));
            };
            if let Some(n) = channel.global_count.as_mut() {
                *n += 1;
            }
            let count = channel.count();
            if count <= MEMBER_EVENTS_MAX_MEMBERS {
                let frame = event_frame(&Event::MemberJoined {
                    channel_id: ch.clone(),
                    member_id: uid.clone(),
                });
                for (m, s) in &channel.members {
                    if m != uid {
                        s.send(frame.clone());
                    }
                }
            }
            self.schedule_count(&mut st, ch);
            let clustered = match self.cluster() {
                // Subscribed before Redis counts the member in, so nothing
                // sent to the channel after this join can be missed.
                Some(c) => Some((
                    was_empty.then(|| c.listen(c.topic_channel(ch.as_str()))),
                    c.call(c.script("join", &[ch.as_str(), uid.as_str(), c.node()])),
                )),
                None => {
                    if was_empty {
                        self.store
                            .set_channel_empty_since(ch, None)
                            .log_failure("marking a channel occupied");
                    }
                    None
                }
            };
            (count, clustered)
        };
        let Some((listening, joined)) = clustered else {
            return Ok(Reply::Joined {
                member_count: count as u32,
            });
        };
        let count = self
            .cluster_joined(ch, listening, joined)
            .await
            .unwrap_or(count);
        Ok(Reply::Joined {
            member_count: count as u32,
        })
    }

    /// Adds `session` to the local channel (made if new); true when this node
    /// had no member in it before.
    fn add_local_member(
        &self,
        st: &mut HubState,
        ch: &ChannelId,
        session: &Arc<SessionHandle>,
    ) -> bool {
        st.channel_generations += 1;
        let generation = st.channel_generations;
        let channel = st.channels.entry(ch.clone()).or_insert_with(|| Channel {
            members: HashMap::new(),
            last_count_sent: None,
            count_flush_pending: false,
            generation,
            global_count: None,
        });
        let was_empty = channel.members.is_empty();
        channel.members.insert(session.uid.clone(), session.clone());
        was_empty
    }

    pub fn leave(self: &Arc<Self>, uid: &Uid, ch: &ChannelId) -> Result<Reply, ErrorBody> {
        let mut st = self.lock();
        let user = st
            .users
            .get_mut(uid)
            .ok_or_else(|| err(ErrorKind::NotLoggedIn, "log in first"))?;
        if !user.channels.remove(ch) {
            return Err(err(
                ErrorKind::NotInChannel,
                format!("you are not in channel {ch}"),
            ));
        }
        self.remove_member(&mut st, ch, uid, false);
        self.cluster_leave(ch, uid);
        Ok(Reply::Done)
    }

    /// Takes `uid` out of this node's part of the channel, telling the other
    /// members here unless `quiet` (the user moved to another node and is
    /// still a member there).
    fn remove_member(self: &Arc<Self>, st: &mut HubState, ch: &ChannelId, uid: &Uid, quiet: bool) {
        let Some(channel) = st.channels.get_mut(ch) else {
            return;
        };
        if channel.members.remove(uid).is_none() {
            return;
        }
        if !quiet && let Some(n) = channel.global_count.as_mut() {
            *n = n.saturating_sub(1);
        }
        if channel.members.is_empty() {
            st.channels.remove(ch);
            match self.cluster() {
                // Whether the channel is empty everywhere, Redis tells.
                Some(c) => c.unlisten(&c.topic_channel(ch.as_str())),
                None => self
                    .store
                    .set_channel_empty_since(ch, Some(self.now_ms()))
                    .log_failure("marking a channel empty"),
            }
            return;
        }
        if quiet {
            return;
        }
        if channel.count() < MEMBER_EVENTS_MAX_MEMBERS {
            let frame = event_frame(&Event::MemberLeft {
                channel_id: ch.clone(),
                member_id: uid.clone(),
            });
            for s in channel.members.values() {
                s.send(frame.clone());
            }
        }
        self.schedule_count(st, ch);
    }

    /// Arranges for the channel's member count to go out, at most once per
    /// interval: now if the last one is old enough, else when it is.
    fn schedule_count(self: &Arc<Self>, st: &mut HubState, ch: &ChannelId) {
        let Some(channel) = st.channels.get_mut(ch) else {
            return;
        };
        if channel.count_flush_pending {
            return;
        }
        channel.count_flush_pending = true;
        let interval = if channel.count() > MEMBER_EVENTS_MAX_MEMBERS {
            self.config.member_count_interval_large
        } else {
            self.config.member_count_interval
        };
        let due = channel
            .last_count_sent
            .map(|(_, at)| at + interval)
            .unwrap_or_else(Instant::now);
        let generation = channel.generation;
        let hub = Arc::clone(self);
        let ch = ch.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(due).await;
            hub.flush_count(&ch, generation);
        });
    }

    fn flush_count(&self, ch: &ChannelId, generation: u64) {
        let mut st = self.lock();
        let Some(channel) = st
            .channels
            .get_mut(ch)
            .filter(|c| c.generation == generation)
        else {
            return;
        };
        channel.count_flush_pending = false;
        let count = channel.count() as u32;
        if channel.last_count_sent.map(|(c, _)| c) == Some(count) {
            return;
        }
        channel.last_count_sent = Some((count, Instant::now()));
        let frame = event_frame(&Event::MemberCountUpdated {
            channel_id: ch.clone(),
            member_count: count,
        });
        for s in channel.members.values() {
            s.send(frame.clone());
        }
    }

    /// Fan-out: the event is encoded once and the same bytes are queued for
    /// every member but the sender; in cluster mode it also crosses Redis
    /// once, to the nodes with members in the channel.
    pub fn send_channel_message(
        &self,
        from: &Uid,
        ch: &ChannelId,
        message: RtmMessage,
    ) -> Result<Reply, ErrorBody> {
        let ts = self.now_ms();
        // Encoded once, and before the lock: under it only the shared bytes
        // are queued for each member.
        let frames = MessageFrames::new(&Event::ChannelMessage {
            channel_id: ch.clone(),
            member_id: from.clone(),
            message,
            props: MessageProps {
                server_received_ts: ts,
                is_offline_message: false,
                message_id: None,
            },
        });
        let mut st = self.lock();
        if !st
            .channels
            .get(ch)
            .is_some_and(|c| c.members.contains_key(from))
        {
            return Err(err(
                ErrorKind::NotInChannel,
                format!("join channel {ch} before sending to it"),
            ));
        }
        super::metrics::METRICS.channel_messages.inc();
        self.fan_out(&mut st, ch, Some(from), &frames);
        if let Some(c) = self.cluster() {
            let (full, compact) = frames.texts();
            c.publish(
                c.topic_channel(ch.as_str()),
                &super::cluster::BusEvent::ChannelMessage {
                    ch: ch.to_string(),
                    from: from.to_string(),
                    full,
                    compact,
                },
            );
        }
        Ok(Reply::ChannelMessageSent {
            server_received_ts: ts,
        })
    }

    /// Queues a channel message for this node's members of `ch` (but the
    /// sender); members whose connection is ending get it at their resume.
    fn fan_out(
        &self,
        st: &mut HubState,
        ch: &ChannelId,
        from: Option<&Uid>,
        frames: &MessageFrames,
    ) {
        let Some(channel) = st.channels.get(ch) else {
            return;
        };
        let mut unsent = Vec::new();
        let mut sent = 0u64;
        for (m, s) in &channel.members {
            if Some(m) != from {
                if s.send(frames.for_session(s)) {
                    sent += 1;
                } else {
                    unsent.push((m.clone(), s.id));
                }
            }
        }
        super::metrics::METRICS.deliveries.inc_by(sent);
        super::metrics::METRICS.fanout.observe(sent as f64);
        for (m, session) in unsent {
            if let Some(user) = st.users.get_mut(&m).filter(|u| u.session.id == session) {
                self.keep_for_resume(user, frames.full.clone());
            }
        }
    }

    pub async fn get_members(&self, uid: &Uid, ch: &ChannelId) -> Result<Reply, ErrorBody> {
        let local = {
            let st = self.lock();
            let channel = st
                .channels
                .get(ch)
                .filter(|c| c.members.contains_key(uid))
                .ok_or_else(|| {
                    err(
                        ErrorKind::NotInChannel,
                        format!("join channel {ch} to list its members"),
                    )
                })?;
            let mut members: Vec<Uid> = channel.members.keys().cloned().collect();
            members.sort();
            members
        };
        let members = match self.cluster() {
            Some(_) => self.cluster_members(ch).await?,
            None => local,
        };
        Ok(Reply::Members { members })
    }

    pub async fn member_counts(&self, channels: &[ChannelId]) -> Result<Reply, ErrorBody> {
        if channels.len() > crate::protocol::MAX_MEMBER_COUNT_CHANNELS {
            return Err(err(
                ErrorKind::InvalidArgument,
                format!(
                    "{} channels asked for; the limit is {} per call",
                    channels.len(),
                    crate::protocol::MAX_MEMBER_COUNT_CHANNELS
                ),
            ));
        }
        if self.cluster().is_some() {
            let counts = self.cluster_counts(channels).await?;
            return Ok(Reply::MemberCounts {
                counts: channels
                    .iter()
                    .zip(counts)
                    .map(|(c, n)| ChannelMemberCount {
                        channel_id: c.clone(),
                        member_count: n,
                    })
                    .collect(),
            });
        }
        let st = self.lock();
        let counts = channels
            .iter()
            .map(|c| ChannelMemberCount {
                channel_id: c.clone(),
                member_count: st.channels.get(c).map_or(0, |ch| ch.members.len() as u32),
            })
            .collect();
        Ok(Reply::MemberCounts { counts })
    }

    // -------------------------------------------------------------- presence

    /// States of `peers`: from this node's memory, or in cluster mode from
    /// Redis (every node's users).
    async fn states_of(&self, peers: &[Uid]) -> Result<Vec<PeerOnlineState>, ErrorBody> {
        if self.cluster().is_some() {
            return self.cluster_states(peers).await;
        }
        let st = self.lock();
        Ok(peers.iter().map(|p| state_of(st.users.get(p))).collect())
    }

    pub async fn query_online(&self, peers: &[Uid]) -> Result<Reply, ErrorBody> {
        check_peer_list(peers, MAX_QUERY_PEERS)?;
        let states = self.states_of(peers).await?;
        let statuses = peers
            .iter()
            .zip(states)
            .map(|(p, s)| (p.clone(), s == PeerOnlineState::Online))
            .collect();
        Ok(Reply::OnlineStatus { statuses })
    }

    /// Adds subscriptions (all or nothing) and pushes the current state of each
    /// newly asked peer at once.
    pub async fn subscribe(&self, uid: &Uid, peers: &[Uid]) -> Result<Reply, ErrorBody> {
        // No per-call cap: the subscription limit below answers OVERFLOW.
        check_peer_list(peers, usize::MAX)?;
        let listening = {
            let mut st = self.lock();
            let user = st
                .users
                .get(uid)
                .ok_or_else(|| err(ErrorKind::NotLoggedIn, "log in first"))?;
            let new: HashSet<&Uid> = peers
                .iter()
                .filter(|p| !user.subscriptions.contains(*p))
                .collect();
            if user.subscriptions.len() + new.len() > MAX_SUBSCRIPTIONS {
                return Err(err(
                    ErrorKind::Overflow,
                    format!(
                        "you watch {} peers; {} more would pass the limit of {MAX_SUBSCRIPTIONS}. Nothing was changed",
                        user.subscriptions.len(),
                        new.len()
                    ),
                ));
            }
            let new: Vec<Uid> = new.into_iter().cloned().collect();
            let mut listening = Vec::new();
            for p in &new {
                let set = st.watchers.entry(p.clone()).or_default();
                if set.is_empty()
                    && let Some(c) = self.cluster()
                {
                    listening.push(c.listen(c.topic_presence(p.as_str())));
                }
                set.insert(uid.clone());
            }
            if let Some(c) = self.cluster()
                && !new.is_empty()
            {
                let mut cmd = redis::cmd("SADD");
                cmd.arg(c.key(&format!("us:{uid}")));
                for p in &new {
                    cmd.arg(p.as_str());
                }
                c.fire(cmd, "recording subscriptions");
            }
            if let Some(user) = st.users.get_mut(uid) {
                user.subscriptions.extend(new);
            }
            listening
        };
        // Listening before the states are read: a change after the read
        // arrives as an event, none falls in between.
        for l in listening {
            let _ = tokio::time::timeout(Duration::from_secs(5), l).await;
        }
        let states = self.states_of(peers).await?;
        let statuses: BTreeMap<Uid, PeerOnlineState> = peers.iter().cloned().zip(states).collect();
        let st = self.lock();
        if let Some(user) = st.users.get(uid) {
            user.session
                .send(event_frame(&Event::PeersOnlineStatusChanged { statuses }));
        }
        Ok(Reply::Done)
    }

    pub fn unsubscribe(&self, uid: &Uid, peers: &[Uid]) -> Result<Reply, ErrorBody> {
        check_peer_list(peers, MAX_SUBSCRIPTIONS)?;
        let mut st = self.lock();
        let user = st
            .users
            .get_mut(uid)
            .ok_or_else(|| err(ErrorKind::NotLoggedIn, "log in first"))?;
        let removed: Vec<Uid> = peers
            .iter()
            .filter(|p| user.subscriptions.remove(*p))
            .cloned()
            .collect();
        if let Some(c) = self.cluster()
            && !removed.is_empty()
        {
            let mut cmd = redis::cmd("SREM");
            cmd.arg(c.key(&format!("us:{uid}")));
            for p in &removed {
                cmd.arg(p.as_str());
            }
            c.fire(cmd, "recording subscriptions");
        }
        for p in removed {
            self.remove_watcher(&mut st, &p, uid);
        }
        Ok(Reply::Done)
    }

    pub fn subscriptions(&self, uid: &Uid) -> Result<Reply, ErrorBody> {
        let st = self.lock();
        let user = st
            .users
            .get(uid)
            .ok_or_else(|| err(ErrorKind::NotLoggedIn, "log in first"))?;
        let mut peer_ids: Vec<Uid> = user.subscriptions.iter().cloned().collect();
        peer_ids.sort();
        Ok(Reply::Subscriptions { peer_ids })
    }

    // ------------------------------------------------------------ shutdown

    /// Tells every live session the server is going away and closes it.
    pub fn shutdown_all(&self) {
        let st = self.lock();
        let frame = event_frame(&Event::ServerShutdown);
        for u in st.users.values() {
            // Never kill for a full queue here: the shutdown reason must win.
            u.session.end_with_notice(
                frame.clone(),
                close_code::GOING_AWAY,
                "server shutting down; reconnect later",
            );
        }
    }

    /// Number of logged-in users (link up or within the grace).
    pub fn user_count(&self) -> usize {
        self.lock().users.len()
    }
}

fn check_peer_list(peers: &[Uid], max: usize) -> Result<(), ErrorBody> {
    if peers.is_empty() {
        return Err(err(ErrorKind::InvalidArgument, "give at least one peer id"));
    }
    if peers.len() > max {
        return Err(err(
            ErrorKind::InvalidArgument,
            format!(
                "{} peer ids given; the limit is {max} per call",
                peers.len()
            ),
        ));
    }
    Ok(())
}
