//! The SDK: [`RtmClient`] (login, peer messages, presence, attributes) and
//! [`RtmChannel`] (join, leave, channel messages, members), over one
//! WebSocket connection kept alive by a background task that reconnects with
//! backoff and restores channels, user attributes and presence subscriptions.
//!
//! Requests are matched to replies by id and time out (10 s by default).
//!
//! A client may be given several servers (the nodes of a cluster, as
//! `"ws://a:7420,ws://b:7420"` or [`RtmClient::with_servers`]): it logs in
//! to the first that answers and fails over to another when its link drops
//! ([`RtmClient::current_server_url`] says which one is in use).
//!
//! ## Where events go
//!
//! Every event is delivered **once**. Peer messages, presence, connection
//! states, token and restore reports arrive on [`ClientEvents`]. A channel's
//! events arrive on the client's stream as [`ClientEvent::Channel`] — unless
//! the application took that channel's own stream with
//! [`RtmChannel::events`]: then they arrive there only, until that stream is
//! dropped, after which they go back to the client's stream.
//!
//! ## Bounded queues, and what happens when the application falls behind
//!
//! Each stream holds at most [`ClientConfig::event_queue_capacity`] events
//! (1024 by default). The connection task never waits for the application:
//! when a stream is full its *oldest* message, presence or channel event is
//! dropped, and the reader next gets [`ClientEvent::Lagged`] (or
//! [`ChannelEvent::Lagged`]) with how many it missed, then the rest in order.
//! Connection-state, token and restore events are kept while anything else can
//! go. Drop a stream you do not read: its events are then freed (a dropped
//! channel stream hands its channel back to the client stream).
//!
//! ## Sends during a reconnection
//!
//! While the client is RECONNECTING (and until it has rejoined its channels
//! and restored its attributes and subscriptions) a request is held, up to
//! [`MAX_HELD_REQUESTS`] of them, and goes out once the link is back. It
//! fails if the link is not back within the request timeout (the hold counts
//! against it), or at once if the session ends. Before login, after logout
//! or ABORTED, calls fail at once with NOT_LOGGED_IN.
//!
//! ## Dropping handles
//!
//! [`RtmClient`] and [`RtmChannel`] are cheap handles; the session lives as
//! long as any of them. Dropping the last one of a client logs out (the
//! server reports the user OFFLINE at once; if the link is down it is simply
//! closed), stops reconnecting and ends [`ClientEvents`]. Dropping the last
//! handle of a joined channel leaves it (and it is not rejoined after a
//! reconnection); `create_channel` for a channel that has a live handle
//! returns that same channel.
//!
//! No UI types here: any Rust program can use it (see `examples/bot.rs`).
//!
//! ## Example
//!
//! Log in, join a channel, message a peer, then read what arrives. (Needs a
//! running server, e.g. `rtm serve`, so it is only compiled here.)
//!
//! ```no_run
//! use rtm::client::{
//!     ChannelEvent, ClientConfig, ClientEvent, RtmClient, RtmError, RtmMessage,
//!     SendMessageOptions,
//! };
//!
//! # async fn demo() -> Result<(), RtmError> {
//! // `events` is the one stream of everything the server reports unasked.
//! let (client, mut events) = RtmClient::new("ws://127.0.0.1:7420", ClientConfig::default());
//! // `None`: no token, for a server without an app certificate (dev mode).
//! let info = client.login("alice", None).await?;
//! println!("logged in as {}, dev mode: {}", info.uid, info.dev_mode);
//!
//! // Keep the handle: dropping the last one leaves the channel.
//! let room = client.create_channel("general")?;
//! let members = room.join().await?;
//! println!("{members} member(s) in general");
//!
//! let sent = client
//!     .send_message_to_peer(
//!         RtmMessage::text("hi bob"),
//!         "bob",
//!         SendMessageOptions { enable_offline_messaging: true, ..Default::default() },
//!     )
//!     .await?;
//! if !sent.has_peer_received && sent.cached {
//!     println!("bob is offline; he gets it at his next login");
//! }
//!
//! // `None` once the session has ended (every handle dropped).
//! while let Some(event) = events.recv().await {
//!     match event {
//!         ClientEvent::MessageFromPeer { message, peer_id, .. } => {
//!             println!("{peer_id}: {message:?}");
//!         }
//!         // Channel events come here unless the channel's own stream was
//!         // taken with `RtmChannel::events`.
//!         ClientEvent::Channel { channel_id, event: ChannelEvent::ChannelMessage { message, member_id, .. } } => {
//!             println!("[{channel_id}] {member_id}: {message:?}");
//!         }
//!         ClientEvent::ConnectionStateChanged { state, reason } => {
//!             println!("connection: {state:?} ({reason:?})");
//!         }
//!         // The stream is bounded: a slow reader is told what it missed.
//!         ClientEvent::Lagged { dropped } => println!("missed {dropped} events"),
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod attributes;
mod channel;
mod connection;
mod error;
mod events;
mod invitation;
mod media;
mod presence;
mod queue;
pub(crate) mod sdk_log;
mod servers;
mod tls;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use channel::ChannelInner;
pub use channel::{ChannelEvents, RtmChannel};
pub use error::RtmError;
pub use events::{
    ChannelEvent, ClientEvent, ClientEvents, ConnectionChangeReason, ConnectionState,
};
pub use invitation::{
    LocalInvitation, LocalInvitationEvent, RemoteInvitation, RemoteInvitationEvent,
};
pub use media::{MediaMessageOptions, MediaSource, TransferHandler, TransferProgress};
use queue::{EventQueue, QueueItem};

/// This SDK's version (the crate's), as Agora's `AgoraRTM.VERSION`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use crate::protocol::{
    CallFamily, ChannelAttribute, ChannelAttributeOptions, ChannelId, ChannelMemberCount,
    ErrorBody, ErrorKind, IdError, LocalInvitationFailureReason, LocalInvitationState,
    MAX_INVITATION_CONTENT_BYTES, MAX_INVITATION_RESPONSE_BYTES, MAX_MEDIA_BYTES,
    MAX_MEDIA_META_BYTES, MediaType, MessageProps, PeerOnlineState, RemoteInvitationFailureReason,
    RemoteInvitationState, RtmMessage, SendMessageOptions, SubscriptionOption, Uid, now_ms,
};
use crate::protocol::{ClientFrame, Reply, Request};

/// Tunables of the SDK.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How long a request waits for its reply.
    pub request_timeout: Duration,
    /// How long connecting + login may take.
    pub login_timeout: Duration,
    /// First wait before reconnecting; doubles up to `reconnect_max`. With
    /// several servers ([`RtmClient::with_servers`]) it is waited once per
    /// round of the list, not per server.
    pub reconnect_initial: Duration,
    /// Longest wait between two reconnection attempts. The SDK keeps trying
    /// until it gets back in, is refused for good, or the session ends.
    pub reconnect_max: Duration,
    /// How often the client pings the server.
    pub heartbeat_interval: Duration,
    /// Silence from the server for this long means the link is dead.
    pub heartbeat_timeout: Duration,
    /// Most events each stream ([`ClientEvents`], [`ChannelEvents`]) holds
    /// before the oldest are dropped and reported as `Lagged`.
    pub event_queue_capacity: usize,
    /// For `wss://`: trust this CA file (PEM) instead of the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Also called by [`RtmClient::update_config`], after the SDK's own
    /// level is set: the SDK installs no tracing subscriber of its own (that
    /// is the program's choice), so a program that wants the same filter
    /// applied to its subscriber (other crates' events too) hands this in.
    pub log_filter: Option<LogFilterHook>,
    /// Ask the server for live messages in the compact form (PROTOCOL.md
    /// §8.13): a channel message costs the server and the network about a
    /// third of the bytes. The SDK reads both forms, so this changes nothing
    /// the application sees; turn it off to read frames by eye in a capture.
    pub compact_events: bool,
}

/// Changes the program's log filter (`"debug"`, `"rtm=trace"` …); given by
/// the program that owns the tracing subscriber, e.g. the messenger. Optional:
/// without it `update_config` still sets the SDK's own level.
#[derive(Clone)]
pub struct LogFilterHook(Arc<LogFilterFn>);

/// The sending half of one connection to the server: the frames the
/// writer task puts on the socket.
type Link = mpsc::UnboundedSender<String>;

type LogFilterFn = dyn Fn(&str) -> Result<(), String> + Send + Sync;

impl LogFilterHook {
    /// `set` gets the filter text and says why it cannot use it, if it cannot.
    pub fn new(set: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) -> Self {
        LogFilterHook(Arc::new(set))
    }
}

impl std::fmt::Debug for LogFilterHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogFilterHook")
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(10),
            reconnect_initial: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(8),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(15),
            event_queue_capacity: 1024,
            ca_file: None,
            log_filter: None,
            compact_events: true,
        }
    }
}

/// What `login` learned from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginInfo {
    /// The uid this session is logged in as.
    pub uid: Uid,
    /// The server's clock at login, in milliseconds since the Unix epoch.
    pub server_ts: u64,
    /// The server runs without an app certificate (tokens are not checked).
    pub dev_mode: bool,
    /// Seconds until the token expires; `None` without a token (or in dev
    /// mode). [`ClientEvent::TokenPrivilegeWillExpire`] warns before it does:
    /// call [`RtmClient::renew_token`].
    pub token_expires_in_s: Option<u64>,
    /// This login took over a session of the same uid whose link had
    /// dropped within the server's grace: its channels, subscriptions and
    /// open invitations were kept.
    pub resumed: bool,
}

/// Result of `send_message_to_peer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerMessageSendResult {
    /// The peer was online and the message was handed to it.
    pub has_peer_received: bool,
    /// The peer was offline and the server stored the message for later.
    pub cached: bool,
    /// When the server got the message, in milliseconds since the Unix
    /// epoch (the peer sees it as `props.server_received_ts`).
    pub server_received_ts: u64,
}

/// Most requests held while the client reconnects; beyond it a call fails at
/// once instead of piling up.
pub const MAX_HELD_REQUESTS: usize = 256;

/// How many ids of stored messages the SDK remembers to drop repeats: more
/// than the server ever has in flight unacknowledged (its window), with room.
const SEEN_IDS_KEPT: usize = 8192;

/// Ids of the stored (offline) messages already handed to the application,
/// the most recent [`SEEN_IDS_KEPT`] of them. The server delivers stored
/// messages at least once; this makes it once for the application.
#[derive(Default)]
struct SeenIds {
    set: HashSet<u64>,
    order: VecDeque<u64>,
}

impl SeenIds {
    /// Records `id`; false when it was already seen (a repeat to drop).
    fn first_time(&mut self, id: u64) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > SEEN_IDS_KEPT
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }

    fn clear(&mut self) {
        self.set.clear();
        self.order.clear();
    }
}

/// State shared by the client handles, its channels and the connection task.
/// Owned jointly through `Arc`; the connection task holds it too, so the
/// end of the session is signalled by [`Lifeline`], not by this being freed.
struct Shared {
    /// The URL string as given to [`RtmClient::new`] (or the list given to
    /// [`RtmClient::with_servers`], joined with commas).
    url: String,
    /// The servers, in the order they are tried (see [`RtmClient::with_servers`]).
    urls: Vec<String>,
    /// Why `urls` cannot be used, if they cannot: `login` says so.
    urls_error: Option<RtmError>,
    config: ClientConfig,
    /// The client stream; its reader is the [`ClientEvents`] from `new`.
    events: Arc<EventQueue<ClientEvent>>,
    next_id: AtomicU64,
    state: Mutex<State>,
    /// Woken when the link becomes ready for requests or the session ends:
    /// held requests wait on it.
    link_changed: Notify,
    /// How many requests wait for the link now (at most [`MAX_HELD_REQUESTS`]).
    held: AtomicUsize,
    /// The next [`LocalInvitation::id`]; starts from the clock so that a
    /// restarted program that resumes a session does not reuse the ids of
    /// invitations the server still holds for it.
    next_invitation_id: AtomicU64,
}

impl Drop for Shared {
    /// Nothing can emit any more: the client stream ends after what it holds.
    fn drop(&mut self) {
        self.events.close();
    }
}

/// Guarded by `Shared::state`; never held across an `.await`.
struct State {
    conn: ConnectionState,
    /// The server of the current link, or of the last one (while
    /// reconnecting); `None` before the first login succeeds.
    server: Option<String>,
    uid: Option<Uid>,
    token: Option<String>,
    /// Frames for the connection task; `Some` only while CONNECTED.
    out: Option<Link>,
    /// The link is up and restored (channels rejoined …): requests go out.
    /// False between a reconnection and the end of its restore, so that a
    /// held channel message does not overtake the rejoin of its channel.
    ready: bool,
    /// Requests waiting for their reply, by id.
    pending: HashMap<u64, oneshot::Sender<Result<Reply, RtmError>>>,
    /// What the SDK restores after a reconnection.
    joined: BTreeSet<ChannelId>,
    attributes: BTreeMap<String, String>,
    subscriptions: BTreeSet<Uid>,
    /// Channels whose last handle went while the link was down: left after
    /// the reconnection in case the server kept the session (resume).
    leave_after_reconnect: BTreeSet<ChannelId>,
    /// The channel of each id with a live handle, so that `create_channel`
    /// hands out the same one. Weak: the handles own their channel.
    channels: HashMap<ChannelId, Weak<ChannelInner>>,
    /// Per-channel streams taken with [`RtmChannel::events`]; the reader is
    /// the application's [`ChannelEvents`]. An entry whose reader is gone is
    /// removed on the next event of its channel.
    channel_streams: HashMap<ChannelId, Arc<EventQueue<ChannelEvent>>>,
    /// The connection task and its stop switch, while logged in.
    task: Option<(tokio::task::JoinHandle<()>, CancellationToken)>,
    /// Every application handle is gone: the connection task logs out
    /// instead of just closing when stopped.
    handles_gone: bool,
    /// Stored messages already delivered; kept across reconnections.
    seen: SeenIds,
    /// Sent invitations not yet ended, by id: their events find them here,
    /// even when the application dropped its handles.
    local_invitations: HashMap<u64, Arc<invitation::LocalInner>>,
    /// Received invitations not yet ended, by caller and id.
    remote_invitations: HashMap<(Uid, u64), Arc<invitation::RemoteInner>>,
}

/// Held by every [`RtmClient`] handle (channels hold a client handle): when
/// the last one goes, the session ends. The connection task holds `Shared`
/// but not this, so it cannot keep the session alive on its own.
struct Lifeline {
    shared: Arc<Shared>,
}

impl Drop for Lifeline {
    fn drop(&mut self) {
        let task = {
            let mut st = self.shared.lock();
            st.handles_gone = true;
            st.task.take()
        };
        // The task says goodbye (a logout when connected) and ends by itself;
        // its JoinHandle is dropped, which detaches it.
        if let Some((_, cancel)) = task {
            cancel.cancel();
        }
    }
}

/// A handle to one logged-in (or not yet) user. Cheap to clone; all clones
/// share the connection. Dropping the last handle (clones and channels
/// included) logs out — see the module docs.
#[derive(Clone)]
pub struct RtmClient {
    shared: Arc<Shared>,
    _life: Arc<Lifeline>,
}

/// What a request finds when it wants to go out.
enum Gate {
    Go(mpsc::UnboundedSender<String>),
    /// Reconnecting (or restoring): wait for the link.
    Wait,
    Refuse(RtmError),
}

/// Takes one of the [`MAX_HELD_REQUESTS`] places while a request waits.
struct HeldPlace<'a>(&'a AtomicUsize);

impl<'a> HeldPlace<'a> {
    fn take(count: &'a AtomicUsize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_HELD_REQUESTS).then_some(n + 1)
            })
            .ok()
            .map(|_| HeldPlace(count))
    }
}

impl Drop for HeldPlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, ev: ClientEvent) {
        // Refused only when the application dropped its stream: nobody to tell.
        let _ = self.events.push(ev);
    }

    /// Sets the state and reports it, unless nothing changed.
    fn set_state(&self, state: ConnectionState, reason: ConnectionChangeReason) {
        {
            let mut st = self.lock();
            if st.conn == state {
                return;
            }
            st.conn = state;
        }
        // Held requests look again: the session may have ended.
        self.link_changed.notify_waiters();
        self.emit(ClientEvent::ConnectionStateChanged { state, reason });
    }

    /// The link is up and restored: held requests go out.
    fn set_ready(&self) {
        self.lock().ready = true;
        self.link_changed.notify_waiters();
    }

    /// To the channel's own stream when the application reads one, else to
    /// the client stream: once, never both.
    fn dispatch_channel_event(&self, channel_id: ChannelId, event: ChannelEvent) {
        let stream = {
            let mut st = self.lock();
            match st.channel_streams.get(&channel_id) {
                Some(q) if q.has_reader() => Some(q.clone()),
                Some(_) => {
                    st.channel_streams.remove(&channel_id);
                    None
                }
                None => None,
            }
        };
        let event = match stream {
            Some(q) => match q.push(event) {
                Ok(()) => return,
                // The stream was dropped just now: the client stream takes it.
                Err(event) => event,
            },
            None => event,
        };
        self.emit(ClientEvent::Channel { channel_id, event });
    }

    /// Fails every request in flight (the link is gone).
    fn fail_pending(&self) {
        let pending: Vec<_> = self.lock().pending.drain().collect();
        for (_, tx) in pending {
            let _ = tx.send(Err(RtmError::ConnectionLost));
        }
    }

    fn gate(&self, restoring: Option<&Link>) -> Gate {
        let st = self.lock();
        match (&st.out, st.conn, restoring) {
            // A restore goes out on its own link only.
            (Some(out), ConnectionState::Connected, Some(link)) if out.same_channel(link) => {
                Gate::Go(out.clone())
            }
            // The restore of a link that is gone stops; the next link's
            // restore starts over.
            (.., Some(_)) => Gate::Refuse(RtmError::ConnectionLost),
            (Some(out), ConnectionState::Connected, None) if st.ready => Gate::Go(out.clone()),
            (_, ConnectionState::Reconnecting | ConnectionState::Connected, None)
                if st.task.is_some() =>
            {
                Gate::Wait
            }
            _ => Gate::Refuse(RtmError::NotLoggedIn(
                "the client is not logged in; call login first",
            )),
        }
    }

    /// A request of the application: held while the client reconnects.
    async fn request(&self, request: Request) -> Result<Reply, RtmError> {
        self.request_with(request, None).await
    }

    /// `restoring`: the link whose restore after a reconnection sends this;
    /// it goes out before the link counts as ready, and on that link only.
    async fn request_with(
        &self,
        request: Request,
        restoring: Option<&Link>,
    ) -> Result<Reply, RtmError> {
        let timeout = self.config.request_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut place = None;
        let out = loop {
            // Registered before looking, so a change in between is not missed.
            let changed = self.link_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.gate(restoring) {
                Gate::Go(out) => break out,
                Gate::Refuse(e) => return Err(e),
                Gate::Wait => {
                    if place.is_none() {
                        place = Some(HeldPlace::take(&self.held).ok_or(RtmError::NotLoggedIn(
                            "the client is reconnecting and already holds as many calls as it \
                             will; retry once it is connected again",
                        ))?);
                    }
                    if tokio::time::timeout_at(deadline, changed).await.is_err() {
                        return Err(RtmError::local(
                            ErrorKind::Timeout,
                            format!(
                                "not sent: the client was still reconnecting after {} s; \
                                 retry once it is connected again",
                                timeout.as_secs()
                            ),
                        ));
                    }
                }
            }
        };
        drop(place);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().pending.insert(id, tx);
        if out.send(ClientFrame { id, request }.encode()).is_err() {
            self.lock().pending.remove(&id);
            return Err(RtmError::ConnectionLost);
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RtmError::ConnectionLost),
            Err(_) => {
                self.lock().pending.remove(&id);
                Err(RtmError::Timeout(timeout.as_secs()))
            }
        }
    }

    /// Sends `request` without waiting for (or caring about) the reply, if
    /// the link is up; for drop paths, which cannot wait.
    fn send_and_forget(&self, request: Request) -> bool {
        let out = self.lock().out.clone();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // The reply matches no pending request and is ignored.
        out.is_some_and(|out| out.send(ClientFrame { id, request }.encode()).is_ok())
    }
}

fn unexpected(reply: Reply) -> RtmError {
    RtmError::Protocol(format!("{reply:?}"))
}

fn uids(ids: &[&str]) -> Result<Vec<Uid>, RtmError> {
    ids.iter()
        .map(|i| Uid::new(*i).map_err(RtmError::from))
        .collect()
}

impl RtmClient {
    /// A client for the server at `url` (`ws://host:port`, or `wss://` for
    /// TLS). Nothing connects until [`login`](Self::login).
    ///
    /// `url` may name several servers of one cluster, separated by commas
    /// (`"ws://a:7420,ws://b:7420"`): the client then fails over between
    /// them, as [`with_servers`](Self::with_servers) describes. The URLs are
    /// checked by `login`, which fails with [`RtmError::InvalidServerUrl`]
    /// (naming the bad one) before connecting; `with_servers` checks them
    /// here instead.
    pub fn new(url: impl Into<String>, config: ClientConfig) -> (RtmClient, ClientEvents) {
        let url = url.into();
        let urls = servers::split([&url]);
        let urls_error = servers::check_all(&urls).err();
        Self::build(url, urls, urls_error, config)
    }

    /// A client for a cluster of servers (`rtm serve` nodes sharing one
    /// Redis), given as a list of URLs; each entry may itself hold several
    /// separated by commas. Every URL is checked here: the error
    /// ([`RtmError::InvalidServerUrl`], kind `INVALID_ARGUMENT`) names the
    /// first bad one. Nothing connects until [`login`](Self::login).
    ///
    /// Failover:
    /// - `login` tries the servers in the order given until one answers.
    ///   One that cannot be reached (or does not answer within
    ///   [`ClientConfig::login_timeout`], or is busy) costs one failed try
    ///   and the next is tried at once; the login fails only when every
    ///   server failed, with each one's reason. A refusal (bad token, bad
    ///   uid …) is final: the other servers would say the same.
    /// - When the link drops, the client reconnects starting with the
    ///   server *after* the one it lost, cycling through the list. The
    ///   backoff ([`ClientConfig::reconnect_initial`] doubling up to
    ///   [`ClientConfig::reconnect_max`]) is waited once per full round of
    ///   the list, not per server: a dead server costs one quick failed
    ///   connect. The session resumes on the new server when the cluster
    ///   still holds it ([`LoginInfo::resumed`]); either way the SDK
    ///   restores channels, attributes and subscriptions as after any
    ///   reconnection.
    ///
    /// [`current_server_url`](Self::current_server_url) says which server
    /// is in use. With one URL this is the same client as [`new`](Self::new).
    pub fn with_servers<I, S>(
        urls: I,
        config: ClientConfig,
    ) -> Result<(RtmClient, ClientEvents), RtmError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let urls = servers::split(urls);
        servers::check_all(&urls)?;
        Ok(Self::build(urls.join(","), urls, None, config))
    }

    fn build(
        url: String,
        urls: Vec<String>,
        urls_error: Option<RtmError>,
        config: ClientConfig,
    ) -> (RtmClient, ClientEvents) {
        let events = Arc::new(EventQueue::new(config.event_queue_capacity));
        let shared = Arc::new(Shared {
            url,
            urls,
            urls_error,
            config,
            events: events.clone(),
            next_id: AtomicU64::new(1),
            state: Mutex::new(State {
                conn: ConnectionState::Disconnected,
                server: None,
                uid: None,
                token: None,
                out: None,
                ready: false,
                pending: HashMap::new(),
                joined: BTreeSet::new(),
                attributes: BTreeMap::new(),
                subscriptions: BTreeSet::new(),
                leave_after_reconnect: BTreeSet::new(),
                channels: HashMap::new(),
                channel_streams: HashMap::new(),
                task: None,
                handles_gone: false,
                seen: SeenIds::default(),
                local_invitations: HashMap::new(),
                remote_invitations: HashMap::new(),
            }),
            link_changed: Notify::new(),
            held: AtomicUsize::new(0),
            // Milliseconds × 1024 stays below 2^53 (safe in any JSON
            // library) for centuries, and leaves room for 1024 a millisecond.
            next_invitation_id: AtomicU64::new(now_ms().saturating_mul(1024) % (1 << 53)),
        });
        let life = Arc::new(Lifeline {
            shared: shared.clone(),
        });
        (
            RtmClient {
                shared,
                _life: life,
            },
            ClientEvents { queue: events },
        )
    }

    /// The URL given to [`new`](Self::new) (with several servers, the
    /// whole comma-separated list; [`with_servers`](Self::with_servers)
    /// joins its list with commas). See
    /// [`current_server_url`](Self::current_server_url) for the one in use.
    pub fn server_url(&self) -> &str {
        &self.shared.url
    }

    /// Every server this client may use, in the order it tries them.
    pub fn server_urls(&self) -> &[String] {
        &self.shared.urls
    }

    /// The server this client is connected to, or — while reconnecting, or
    /// after the session ended — the one it was last connected to; `None`
    /// before the first login succeeded. It changes just before the state
    /// becomes CONNECTED ([`ClientEvent::ConnectionStateChanged`]), so a
    /// program that shows it reads it again on that event.
    pub fn current_server_url(&self) -> Option<String> {
        self.shared.lock().server.clone()
    }

    /// The current connection state (the last one reported as
    /// [`ClientEvent::ConnectionStateChanged`]). Local; nothing is sent.
    pub fn connection_state(&self) -> ConnectionState {
        self.shared.lock().conn
    }

    /// The uid of the current (or last) login.
    pub fn uid(&self) -> Option<Uid> {
        self.shared.lock().uid.clone()
    }

    /// Channels this client has joined (and will rejoin after a reconnection).
    pub fn joined_channels(&self) -> Vec<ChannelId> {
        self.shared.lock().joined.iter().cloned().collect()
    }

    /// Connects and logs in. Resolves once the server accepted (or refused)
    /// the login; afterwards the connection is kept alive and re-established
    /// on its own until [`logout`](Self::logout).
    ///
    /// `token` is required when the server has an app certificate (see
    /// [`crate::token`]); `None` works against a server in dev mode. State
    /// goes CONNECTING, then CONNECTED(`LoginSuccess`) or
    /// DISCONNECTED(`LoginFailure`/`LoginTimeout`). Stored offline messages
    /// follow as [`ClientEvent::MessageFromPeer`].
    ///
    /// With several servers (see [`with_servers`](Self::with_servers)) they
    /// are tried in order until one answers.
    ///
    /// Errors: `INVALID_USERID` for a malformed uid (checked locally),
    /// [`RtmError::InvalidServerUrl`] for a server URL that cannot be used
    /// (checked locally), [`RtmError::AlreadyLogin`] while a session exists
    /// (log out first), [`RtmError::Connect`] when the server (every server)
    /// cannot be reached,
    /// [`RtmError::Timeout`] after [`ClientConfig::login_timeout`], or the
    /// server's refusal (`INVALID_TOKEN`, `TOKEN_EXPIRED`, `REJECTED`, …).
    pub async fn login(&self, uid: &str, token: Option<String>) -> Result<LoginInfo, RtmError> {
        let uid = Uid::new(uid)?;
        if let Some(e) = &self.shared.urls_error {
            return Err(e.clone());
        }
        let (tx, rx) = oneshot::channel();
        let cancel = CancellationToken::new();
        {
            let mut st = self.shared.lock();
            if st.task.is_some() {
                return Err(RtmError::AlreadyLogin);
            }
            st.uid = Some(uid.clone());
            st.token = token;
            st.joined.clear();
            st.attributes.clear();
            st.subscriptions.clear();
            st.leave_after_reconnect.clear();
            st.seen.clear();
            let task = tokio::spawn(connection::run(
                self.shared.clone(),
                uid,
                tx,
                cancel.clone(),
            ));
            st.task = Some((task, cancel));
        }
        match rx.await {
            Ok(result) => {
                if result.is_err() {
                    // The task ended; allow a fresh login.
                    self.shared.lock().task = None;
                }
                result
            }
            Err(_) => {
                self.shared.lock().task = None;
                Err(RtmError::ConnectionLost)
            }
        }
    }

    /// Whether there is a session (a connection task) that `logout` can end.
    fn has_session(&self) -> bool {
        self.shared.lock().task.is_some()
    }

    /// Logs out and stops reconnecting; ends in DISCONNECTED(LOGOUT). Works
    /// while connected, reconnecting, or while `login` is still pending (that
    /// login then fails). Without a session (never logged in, logged out,
    /// ABORTED) it fails with `NOT_LOGGED_IN`, as the reference's
    /// `LOGOUT_ERR_USER_NOT_LOGGED_IN` (102).
    pub async fn logout(&self) -> Result<(), RtmError> {
        if !self.has_session() {
            return Err(RtmError::NotLoggedIn(
                "there is no session to log out of (never logged in, logged out, or aborted)",
            ));
        }
        // Only when the link is up: a held logout would wait out a reconnection.
        if let Gate::Go(_) = self.shared.gate(None) {
            // Best effort: the server removes the session at once. If this
            // fails the server notices the closed link instead.
            let _ = self.shared.request(Request::Logout).await;
        }
        let task = self.shared.lock().task.take();
        if let Some((handle, cancel)) = task {
            cancel.cancel();
            let _ = handle.await;
        }
        {
            let mut st = self.shared.lock();
            st.joined.clear();
            st.attributes.clear();
            st.subscriptions.clear();
            st.leave_after_reconnect.clear();
            st.out = None;
            st.ready = false;
        }
        self.shared.fail_pending();
        self.shared.end_invitations();
        self.shared.set_state(
            ConnectionState::Disconnected,
            ConnectionChangeReason::Logout,
        );
        Ok(())
    }

    /// A call invitation to `callee_id` (the reference's
    /// `createLocalInvitation`): set its content and channel, then
    /// [`LocalInvitation::send`]. Local; nothing is sent yet.
    ///
    /// Errors: `INVALID_USERID` for a malformed uid.
    pub fn create_local_invitation(&self, callee_id: &str) -> Result<LocalInvitation, RtmError> {
        let callee = Uid::new(callee_id)?;
        let id = self
            .shared
            .next_invitation_id
            .fetch_add(1, Ordering::Relaxed);
        Ok(LocalInvitation::new(&self.shared, id, callee))
    }

    /// Swaps in a fresh token without reconnecting (sends `renew_token`; the
    /// server checks it as at login and moves the session's expiry).
    ///
    /// Works in any state (spec §2): while the client is reconnecting the
    /// token is kept and used for the next login attempt.
    ///
    /// Errors: the server's refusal (`INVALID_TOKEN`, `TOKEN_EXPIRED`, a
    /// token for another uid …), `TOO_OFTEN` (about two renewals a second),
    /// or a timeout.
    pub async fn renew_token(&self, token: &str) -> Result<(), RtmError> {
        {
            let mut st = self.shared.lock();
            if st.conn != ConnectionState::Connected {
                if st.task.is_none() {
                    return Err(RtmError::NotLoggedIn(
                        "there is no session to renew; log in with the new token",
                    ));
                }
                st.token = Some(token.to_string());
                return Ok(());
            }
        }
        match self
            .shared
            .request(Request::RenewToken {
                token: token.to_string(),
            })
            .await?
        {
            Reply::Done | Reply::LoggedIn { .. } => {
                self.shared.lock().token = Some(token.to_string());
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    /// Changes the log level at run time (`log_filter` as in `RTM_LOG`, e.g.
    /// `"debug"`, `"off"` or `"warn,rtm=trace"`). Sets the SDK's own level,
    /// which every SDK `tracing` event checks (process-wide, as `tracing`
    /// is), so it works without any set-up; then, if the program gave one,
    /// calls [`ClientConfig::log_filter`] so the program's subscriber follows.
    pub fn update_config(&self, log_filter: &str) -> Result<(), RtmError> {
        let ours = sdk_log::parse(log_filter);
        if let Some(hook) = &self.shared.config.log_filter {
            // The program's hook is the judge of its own filter syntax.
            (hook.0)(log_filter).map_err(|e| RtmError::local(ErrorKind::InvalidArgument, e))?;
            sdk_log::apply(ours.unwrap_or(None));
            return Ok(());
        }
        let ours = ours.map_err(|e| RtmError::local(ErrorKind::InvalidArgument, e))?;
        sdk_log::apply(ours);
        Ok(())
    }

    // --------------------------------------------------------------- peers

    /// Sends `message` to user `peer_id` (Agora's `sendMessageToPeer`).
    ///
    /// Online peers get it as [`ClientEvent::MessageFromPeer`]. With
    /// `options.enable_offline_messaging`, an offline peer's message is
    /// stored and delivered at its next login (`cached` in the result);
    /// without it, the call still succeeds with `has_peer_received: false`.
    ///
    /// Errors: `INVALID_USERID` (bad peer id) and `INVALID_MESSAGE` (empty, or
    /// over [`MAX_MESSAGE_BYTES`](crate::protocol::MAX_MESSAGE_BYTES), 32 KB)
    /// locally, before anything is sent; from the server `TOO_OFTEN` (peer
    /// and channel messages share a limit of about 180 per 3 s) or `QUOTA_EXCEEDED` (offline storage full); `NOT_LOGGED_IN`,
    /// [`RtmError::Timeout`] or [`RtmError::ConnectionLost`]. While
    /// reconnecting the message is held and goes out once the link is back
    /// (or fails after the request timeout).
    pub async fn send_message_to_peer(
        &self,
        message: RtmMessage,
        peer_id: &str,
        options: SendMessageOptions,
    ) -> Result<PeerMessageSendResult, RtmError> {
        let peer_id = Uid::new(peer_id)?;
        message.validate().map_err(RtmError::Local)?;
        match self
            .shared
            .request(Request::SendPeerMessage {
                peer_id,
                message,
                options,
            })
            .await?
        {
            Reply::PeerMessageSent {
                has_peer_received,
                server_received_ts,
                cached,
            } => Ok(PeerMessageSendResult {
                has_peer_received,
                cached,
                server_received_ts,
            }),
            other => Err(unexpected(other)),
        }
    }

    // ------------------------------------------------------------ channels

    /// A handle for channel `channel_id`; nothing is sent until `join`.
    /// While a handle of this channel is alive, this returns that same
    /// channel (a clone): handles share membership and the channel stream.
    pub fn create_channel(&self, channel_id: &str) -> Result<RtmChannel, RtmError> {
        let id = ChannelId::new(channel_id)?;
        let mut st = self.shared.lock();
        if let Some(inner) = st.channels.get(&id).and_then(Weak::upgrade) {
            return Ok(RtmChannel::from_inner(inner));
        }
        let inner = Arc::new(ChannelInner::new(self.clone(), id.clone()));
        st.channels.insert(id, Arc::downgrade(&inner));
        Ok(RtmChannel::from_inner(inner))
    }

    /// Member counts of up to 32 channels, joined or not (a channel nobody
    /// is in counts 0).
    ///
    /// Errors (locally, before sending): a bad channel id or an empty list is
    /// `INVALID_ARGUMENT`, more than
    /// [`MAX_MEMBER_COUNT_CHANNELS`](crate::protocol::MAX_MEMBER_COUNT_CHANNELS)
    /// ids is `EXCEED_LIMIT`, as in the reference; from the server
    /// `TOO_OFTEN` (about one call a second); then the usual `NOT_LOGGED_IN`,
    /// timeout or lost connection.
    pub async fn get_channel_member_count(
        &self,
        channel_ids: &[&str],
    ) -> Result<Vec<ChannelMemberCount>, RtmError> {
        let channel_ids = channel_ids
            .iter()
            .map(|c| ChannelId::new(*c).map_err(RtmError::from))
            .collect::<Result<Vec<_>, _>>()?;
        if channel_ids.is_empty() || channel_ids.len() > crate::protocol::MAX_MEMBER_COUNT_CHANNELS
        {
            // More than 32 is EXCEED_LIMIT, as in the reference (code 5).
            let kind = if channel_ids.is_empty() {
                ErrorKind::InvalidArgument
            } else {
                ErrorKind::ExceedLimit
            };
            return Err(RtmError::local(
                kind,
                format!(
                    "give 1 to {} channel ids (split a longer list)",
                    crate::protocol::MAX_MEMBER_COUNT_CHANNELS
                ),
            ));
        }
        match self
            .shared
            .request(Request::GetChannelMemberCount { channel_ids })
            .await?
        {
            Reply::MemberCounts { counts } => Ok(counts),
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn update_config_works_without_a_hook_and_goes_to_the_programs_hook_too() {
        let (bare, _events) = RtmClient::new("ws://127.0.0.1:1", ClientConfig::default());
        bare.update_config("debug").unwrap();
        let err = bare.update_config("nonsense[").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("not a log filter"), "{err}");

        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let config = ClientConfig {
            log_filter: Some(LogFilterHook::new(move |f| {
                record
                    .lock()
                    .map_err(|e| e.to_string())?
                    .push(f.to_string());
                if f == "nonsense[" {
                    Err("bad filter".into())
                } else {
                    Ok(())
                }
            })),
            ..ClientConfig::default()
        };
        let (client, _events) = RtmClient::new("ws://127.0.0.1:1", config);
        client.update_config("rtm=trace").unwrap();
        let err = client.update_config("nonsense[").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert_eq!(*seen.lock().unwrap(), ["rtm=trace", "nonsense["]);
    }

    #[test]
    fn seen_ids_drop_repeats_and_stay_bounded() {
        let mut seen = SeenIds::default();
        assert!(seen.first_time(1));
        assert!(!seen.first_time(1));
        for id in 2..(SEEN_IDS_KEPT as u64 + 2) {
            assert!(seen.first_time(id));
        }
        assert_eq!(seen.set.len(), SEEN_IDS_KEPT);
        assert!(seen.first_time(1), "the oldest id was forgotten");
    }

    #[test]
    fn create_channel_hands_out_the_live_channel_and_forgets_it_when_dropped() {
        let (client, _events) = RtmClient::new("ws://127.0.0.1:1", ClientConfig::default());
        let first = client.create_channel("room").unwrap();
        let mut stream = first.events().expect("the stream is free");
        let second = client.create_channel("room").unwrap();
        assert!(second.events().is_none(), "one reader per channel stream");
        drop(first);
        assert_eq!(client.shared.lock().channels.len(), 1, "second keeps it");
        client.shared.dispatch_channel_event(
            second.channel_id().clone(),
            ChannelEvent::MemberCountUpdated(3),
        );
        assert_eq!(stream.try_recv(), Some(ChannelEvent::MemberCountUpdated(3)));
        drop(second);
        assert!(client.shared.lock().channels.is_empty());
        assert!(client.shared.lock().channel_streams.is_empty());
        assert_eq!(stream.try_recv(), None, "the stream ended with its channel");
    }
}
