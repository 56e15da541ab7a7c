//! Cluster mode: many `rtm serve` nodes as one service, on one Redis.
//!
//! Each node keeps its own sessions in its hub, as a single server does; what
//! other nodes must see lives in Redis (who is logged in where, channel
//! memberships, user attributes and subscriptions, node liveness; offline
//! messages and channel attributes through the [`RedisStore`]), and what
//! other nodes must hear goes over Redis pub/sub:
//!
//! - `n:<node>`: frames for one node (a peer message, a kick after a login
//!   elsewhere, a "you moved" after a resume elsewhere, invitations);
//! - `c:<channel>`: a channel's messages and member events; a node listens
//!   while it has members in the channel, so a message crosses Redis once
//!   and reaches each node with members once, which fans it out locally;
//! - `p:<uid>`: a user's online state; a node listens while one of its
//!   users watches that uid.
//!
//! Commands go through one ordered queue ([`Cluster::call`]): the hub submits
//! under its lock, so Redis sees them in the order the hub decided them, and
//! the queue sends whatever has piled up as one pipeline (one round trip for
//! many commands under load).
//!
//! Liveness: each node refreshes `alive:<node>` (a key with an expiry) every
//! `heartbeat`; every node checks the others as often. A node whose key is
//! gone is dead: its users turn UNREACHABLE at once and, unless they resume
//! elsewhere, are removed (OFFLINE, leaving their channels) after the grace.
//!
//! [`RedisStore`]: super::redis_store::RedisStore

mod bus;
mod scripts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::{Cmd, RedisResult, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Redis URLs in messages and logs go without their password.
pub use crate::server::redis_reply::redact_url;
pub use bus::BusEvent;

use super::hub::Hub;
use crate::protocol::{ErrorBody, ErrorKind};

/// How a node joins a cluster; from `--cluster` / `[cluster]` in `server.toml`.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT[/DB]`
    pub redis_url: String,
    /// Put before every key and topic, so several clusters can share a Redis.
    pub prefix: String,
    /// How often this node says it is alive and checks the others.
    pub heartbeat: Duration,
    /// A node that has not said it is alive for this long is dead.
    pub node_ttl: Duration,
    /// Most time one Redis round trip may take before the request that
    /// needed it fails with a clear error.
    pub timeout: Duration,
}

impl ClusterConfig {
    pub fn new(redis_url: impl Into<String>) -> Self {
        ClusterConfig {
            redis_url: redis_url.into(),
            prefix: "rtm:".into(),
            heartbeat: Duration::from_secs(1),
            node_ttl: Duration::from_secs(3),
            timeout: Duration::from_secs(3),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot use the cluster's Redis at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the cluster's Redis at {url} is unreachable ({reason}); retry in a few seconds")]
    Unreachable { url: String, reason: String },
    #[error("the cluster's Redis did not answer within {0:?}; retry in a few seconds")]
    Timeout(Duration),
    #[error("the cluster's Redis answered something unexpected: {0}")]
    Protocol(String),
    #[error("this server is stopping; retry on another one")]
    Stopping,
}

impl ClusterError {
    /// The reply a request that needed Redis gets.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody::new(ErrorKind::ServerBusy, self.to_string())
    }
}

struct Op {
    cmd: Cmd,
    /// Who waits for the answer: a request, or nobody (then a failure is
    /// logged as this).
    done: Answer,
}

enum Answer {
    To(oneshot::Sender<Result<Value, ClusterError>>),
    LogFailure(&'static str),
}

/// Subscriptions wanted by the hub: topic → how many local reasons.
#[derive(Default)]
struct Topics {
    wanted: HashMap<String, usize>,
}

enum SubCmd {
    Listen(String, Option<oneshot::Sender<()>>),
    Unlisten(String),
}

/// One node's link to the cluster. Created by [`Cluster::start`].
pub struct Cluster {
    node: String,
    prefix: String,
    url: String,
    config: ClusterConfig,
    ops: mpsc::UnboundedSender<Op>,
    subs: mpsc::UnboundedSender<SubCmd>,
    topics: Mutex<Topics>,
    /// Redis answered the last heartbeat.
    reachable: AtomicBool,
    stop: CancellationToken,
    shas: HashMap<&'static str, String>,
    /// Questions to other nodes awaiting their answer (see [`Cluster::probe`]).
    probes: Mutex<HashMap<u64, oneshot::Sender<bool>>>,
    next_probe: AtomicU64,
}

/// A submitted command's answer; await it outside any lock.
pub struct Pending {
    rx: oneshot::Receiver<Result<Value, ClusterError>>,
    timeout: Duration,
    submitted: std::time::Instant,
}

impl Pending {
    pub async fn get(self) -> Result<Value, ClusterError> {
        match tokio::time::timeout(self.timeout + Duration::from_millis(500), self.rx).await {
            Ok(Ok(r)) => {
                super::metrics::METRICS
                    .cluster_seconds
                    .observe(super::metrics::since(self.submitted));
                r
            }
            Ok(Err(_)) => Err(ClusterError::Stopping),
            Err(_) => Err(ClusterError::Timeout(self.timeout)),
        }
    }
}

const ALL_SCRIPTS: [(&str, &str); 14] = [
    ("claim", scripts::CLAIM),
    ("adopt", scripts::ADOPT),
    ("set_link", scripts::SET_LINK),
    ("depart", scripts::DEPART),
    ("join", scripts::JOIN),
    ("leave", scripts::LEAVE),
    ("peer", scripts::PEER),
    ("to_user_node", scripts::TO_USER_NODE),
    ("presence", scripts::PRESENCE),
    ("set_attrs", scripts::SET_ATTRS),
    ("get_attrs", scripts::GET_ATTRS),
    ("reregister", scripts::REREGISTER),
    ("mark_dead", scripts::MARK_DEAD),
    ("reap", scripts::REAP),
];

impl Cluster {
    /// Connects to Redis, registers this node and starts its tasks (command
    /// queue, subscriptions, heartbeat and the watch on other nodes). Events
    /// from other nodes go to `hub`.
    pub async fn start(
        config: ClusterConfig,
        hub: &Arc<Hub>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let url = redact_url(&config.redis_url);
        let connect_err = |e: redis::RedisError| ClusterError::Connect {
            url: url.clone(),
            reason: e.to_string(),
        };
        let client = redis::Client::open(config.redis_url.as_str()).map_err(connect_err)?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(
            config.timeout,
            client.get_connection_manager_with_config(manager_config),
        )
        .await
        .map_err(|_| ClusterError::Connect {
            url: url.clone(),
            reason: format!("no answer within {:?}", config.timeout),
        })?
        .map_err(connect_err)?;
        let pubsub = client.get_async_pubsub().await.map_err(connect_err)?;
        let mut shas = HashMap::new();
        let mut load = conn.clone();
        for (name, src) in ALL_SCRIPTS.iter() {
            let sha: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(*src)
                .query_async(&mut load)
                .await
                .map_err(connect_err)?;
            shas.insert(*name, sha);
        }
        let node = node_id();
        let (ops_tx, ops_rx) = mpsc::unbounded_channel();
        let (subs_tx, subs_rx) = mpsc::unbounded_channel();
        let cluster = Arc::new(Cluster {
            node: node.clone(),
            prefix: config.prefix.clone(),
            url: url.clone(),
            config: config.clone(),
            ops: ops_tx,
            subs: subs_tx,
            topics: Mutex::new(Topics::default()),
            reachable: AtomicBool::new(true),
            stop: CancellationToken::new(),
            shas,
            probes: Mutex::new(HashMap::new()),
            next_probe: AtomicU64::new(1),
        });
        tokio::spawn(run_ops(
            conn.clone(),
            ops_rx,
            config.timeout,
            url.clone(),
            Arc::downgrade(&cluster),
        ));
        // The node's own topic before it says it is alive: nothing sent to
        // it can be missed.
        let own = cluster.topic_node(&node);
        let ready = cluster.listen(own);
        tokio::spawn(run_subscriptions(
            client,
            pubsub,
            subs_rx,
            Arc::downgrade(&cluster),
            Arc::downgrade(hub),
        ));
        let _ = tokio::time::timeout(config.timeout, ready).await;
        cluster.heartbeat_once().await?;
        tokio::spawn(run_liveness(Arc::downgrade(&cluster), Arc::downgrade(hub)));
        tracing::info!(node = %node, redis = %url, "joined the cluster");
        Ok(cluster)
    }

    /// This node's id in the cluster (random per process).
    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether Redis answered the last heartbeat.
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Stops the tasks and says goodbye (this node's liveness key is
    /// removed, so the others need not wait for it to expire).
    pub async fn leave(&self) {
        let _ = self
            .call(
                redis::cmd("DEL")
                    .arg(self.key(&format!("alive:{}", self.node)))
                    .clone(),
            )
            .get()
            .await;
        self.stop.cancel();
    }

    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    pub(crate) fn topic_node(&self, node: &str) -> String {
        format!("{}n:{node}", self.prefix)
    }

    pub(crate) fn topic_channel(&self, ch: &str) -> String {
        format!("{}c:{ch}", self.prefix)
    }

    pub(crate) fn topic_presence(&self, uid: &str) -> String {
        format!("{}p:{uid}", self.prefix)
    }

    /// Queues a command; the answer comes in queue order.
    pub fn call(&self, cmd: Cmd) -> Pending {
        let (tx, rx) = oneshot::channel();
        let _ = self.ops.send(Op {
            cmd,
            done: Answer::To(tx),
        });
        Pending {
            rx,
            timeout: self.config.timeout,
            submitted: std::time::Instant::now(),
        }
    }

    /// Queues a command nobody waits for; a failure is logged.
    /// No task per command: the queue itself logs a failure (a channel
    /// message's PUBLISH goes this way).
    pub fn fire(&self, cmd: Cmd, what: &'static str) {
        let _ = self.ops.send(Op {
            cmd,
            done: Answer::LogFailure(what),
        });
    }

    /// A script call: `ARGV[1]` is the prefix, then `args`.
    pub fn script(&self, name: &str, args: &[&str]) -> Cmd {
        let sha = self.shas.get(name).cloned().unwrap_or_default();
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(sha).arg(0).arg(&self.prefix);
        for a in args {
            cmd.arg(*a);
        }
        cmd
    }

    /// Publishes a bus event on `topic`.
    pub fn publish(&self, topic: String, event: &BusEvent) {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(topic).arg(event.encode(&self.node));
        self.fire(cmd, "publishing");
    }

    /// Asks for `topic`'s messages (counted: each `listen` needs its own
    /// `unlisten`). The receiver resolves once Redis confirmed the
    /// subscription (at once if it was already there).
    pub fn listen(&self, topic: String) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut t = self.topics.lock().unwrap_or_else(|p| p.into_inner());
            let n = t.wanted.entry(topic.clone()).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first {
            let _ = self.subs.send(SubCmd::Listen(topic, Some(tx)));
        } else {
            let _ = tx.send(());
        }
        rx
    }

    pub fn unlisten(&self, topic: &str) {
        let last = {
            let mut t = self.topics.lock().unwrap_or_else(|p| p.into_inner());
            match t.wanted.get_mut(topic) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    t.wanted.remove(topic);
                    true
                }
                None => false,
            }
        };
        if last {
            let _ = self.subs.send(SubCmd::Unlisten(topic.to_string()));
        }
    }

    /// Asks `node` whether it holds `uid` as session `sid` with its link
    /// up; `None` when it does not answer within `within` (it is dead, or
    /// Redis is away).
    pub async fn probe(&self, node: &str, uid: &str, sid: &str, within: Duration) -> Option<bool> {
        let id = self.next_probe.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.probes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        self.publish(
            self.topic_node(node),
            &BusEvent::Probe {
                uid: uid.to_string(),
                sid: sid.to_string(),
                reply_to: self.node.clone(),
                probe: id,
            },
        );
        let answer = tokio::time::timeout(within, rx)
            .await
            .ok()
            .and_then(Result::ok);
        self.probes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        answer
    }

    /// Another node answered [`probe`](Self::probe) `id`.
    pub fn probe_answered(&self, id: u64, up: bool) {
        let waiter = self
            .probes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(tx) = waiter {
            let _ = tx.send(up);
        }
    }

    fn wanted_topics(&self) -> Vec<String> {
        let t = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        t.wanted.keys().cloned().collect()
    }

    async fn heartbeat_once(&self) -> Result<(), ClusterError> {
        let ttl = self.config.node_ttl.as_millis() as u64;
        let mut set = redis::cmd("SET");
        set.arg(self.key(&format!("alive:{}", self.node)))
            .arg(now_ms())
            .arg("PX")
            .arg(ttl);
        let set = self.call(set);
        let mut add = redis::cmd("SADD");
        add.arg(self.key("nodes")).arg(&self.node);
        let add = self.call(add);
        // Kept after the liveness key expires: how long a node has been
        // silent (a session of a node dead longer than the grace is over).
        let mut seen = redis::cmd("HSET");
        seen.arg(self.key("heartbeats"))
            .arg(&self.node)
            .arg(now_ms());
        let seen = self.call(seen);
        set.get().await?;
        add.get().await?;
        seen.get().await?;
        Ok(())
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A node id: 12 hex digits from the OS's random source.
fn node_id() -> String {
    let mut b = [0u8; 6];
    if getrandom::fill(&mut b).is_err() {
        // Unique enough from the clock and pid if the OS source fails.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id());
        b.copy_from_slice(&t.to_le_bytes()[..6]);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn is_noscript(e: &redis::RedisError) -> bool {
    e.code() == Some("NOSCRIPT")
}

/// The command queue: whatever is waiting goes out as one pipeline, in order.
async fn run_ops(
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Op>,
    timeout: Duration,
    url: String,
    cluster: Weak<Cluster>,
) {
    const BATCH: usize = 512;
    let mut batch: Vec<Op> = Vec::with_capacity(BATCH);
    while let Some(op) = rx.recv().await {
        batch.push(op);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for op in &batch {
            pipe.add_command(op.cmd.clone());
        }
        let result: RedisResult<Vec<RedisResult<Value>>> =
            match tokio::time::timeout(timeout, pipe.query_async(&mut conn)).await {
                Ok(r) => r,
                Err(_) => Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out"))),
            };
        match result {
            Ok(results) => {
                let mut retry = Vec::new();
                for (op, r) in batch.drain(..).zip(results) {
                    match r {
                        Err(e) if is_noscript(&e) => retry.push(op),
                        other => complete(op, other.map_err(|e| protocol_or_io(&url, e))),
                    }
                }
                if !retry.is_empty() {
                    // Redis restarted and forgot the scripts: load them
                    // again, then run what failed (a NOSCRIPT call did
                    // nothing, so running it again is safe).
                    reload_scripts(&mut conn).await;
                    for op in retry {
                        let r = op.cmd.query_async::<Value>(&mut conn).await;
                        complete(op, r.map_err(|e| protocol_or_io(&url, e)));
                    }
                }
            }
            Err(e) => {
                if let Some(c) = cluster.upgrade() {
                    c.reachable.store(false, Ordering::Relaxed);
                }
                for op in batch.drain(..) {
                    complete(
                        op,
                        Err(ClusterError::Unreachable {
                            url: url.clone(),
                            reason: e.to_string(),
                        }),
                    );
                }
            }
        }
    }
}

fn protocol_or_io(url: &str, e: redis::RedisError) -> ClusterError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        ClusterError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
        }
    } else {
        ClusterError::Protocol(e.to_string())
    }
}

fn complete(op: Op, r: Result<Value, ClusterError>) {
    match (op.done, r) {
        (Answer::To(done), r) => {
            let _ = done.send(r);
        }
        (Answer::LogFailure(what), Err(e)) => tracing::warn!("cluster: {what}: {e}"),
        (Answer::LogFailure(_), Ok(_)) => {}
    }
}

async fn reload_scripts(conn: &mut ConnectionManager) {
    for (_, src) in ALL_SCRIPTS.iter() {
        let r: RedisResult<String> = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(*src)
            .query_async(conn)
            .await;
        if let Err(e) = r {
            tracing::warn!("cluster: loading scripts again: {e}");
        }
    }
}

/// Subscriptions and incoming bus events; reconnects (and subscribes again,
/// and has the hub register its live state again) when the link drops.
async fn run_subscriptions(
    client: redis::Client,
    pubsub: redis::aio::PubSub,
    mut cmds: mpsc::UnboundedReceiver<SubCmd>,
    cluster: Weak<Cluster>,
    hub: Weak<Hub>,
) {
    let mut pubsub = Some(pubsub);
    let mut first = true;
    loop {
        let Some(c) = cluster.upgrade() else { return };
        let stop = c.stop.clone();
        let prefix = c.prefix.clone();
        drop(c);
        let ps = match pubsub.take() {
            Some(ps) => ps,
            None => loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
                match client.get_async_pubsub().await {
                    Ok(ps) => break ps,
                    Err(e) => tracing::debug!("cluster: reconnecting subscriptions: {e}"),
                }
            },
        };
        let (mut sink, mut stream) = ps.split();
        if !first {
            // Redis came back: subscribe to everything again, then have the
            // hub write its live state again (Redis may have lost it).
            let Some(c) = cluster.upgrade() else { return };
            let topics = c.wanted_topics();
            drop(c);
            if !topics.is_empty() && sink.subscribe(&topics).await.is_err() {
                continue;
            }
            tracing::warn!("cluster: Redis is back; registering this node's sessions again");
            if let (Some(h), Some(c)) = (hub.upgrade(), cluster.upgrade()) {
                c.reachable.store(true, Ordering::Relaxed);
                tokio::spawn(async move { h.cluster_reregister().await });
            }
        }
        first = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                cmd = cmds.recv() => match cmd {
                    None => return,
                    Some(SubCmd::Listen(topic, done)) => {
                        if let Err(e) = sink.subscribe(&topic).await {
                            tracing::warn!("cluster: subscribing to {topic}: {e}");
                            break;
                        }
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    }
                    Some(SubCmd::Unlisten(topic)) => {
                        // Still wanted again by the time this runs? Keep it.
                        let wanted = cluster.upgrade().is_some_and(|c| {
                            c.topics.lock().unwrap_or_else(|p| p.into_inner()).wanted.contains_key(&topic)
                        });
                        if !wanted && let Err(e) = sink.unsubscribe(&topic).await {
                            tracing::warn!("cluster: unsubscribing from {topic}: {e}");
                            break;
                        }
                    }
                },
                msg = stream.next() => match msg {
                    None => {
                        tracing::warn!("cluster: lost the subscription link to Redis; reconnecting");
                        if let Some(c) = cluster.upgrade() {
                            c.reachable.store(false, Ordering::Relaxed);
                        }
                        break;
                    }
                    Some(msg) => {
                        let Some(h) = hub.upgrade() else { return };
                        let Some(c) = cluster.upgrade() else { return };
                        let topic = msg.get_channel_name();
                        // Only this cluster's topics (several may share a Redis).
                        if !topic.starts_with(prefix.as_str()) { continue }
                        let payload = msg.get_payload_bytes();
                        match BusEvent::decode(payload) {
                            Some((origin, event)) => {
                                // "*": from a script run for the whole
                                // cluster (the watch on dead nodes), which
                                // this node's own users must hear too.
                                if origin != c.node {
                                    h.on_bus(event);
                                }
                            }
                            None => tracing::warn!(topic, "cluster: an undecodable bus message was dropped"),
                        }
                    }
                },
            }
        }
    }
}

/// Heartbeats, and the watch on other nodes (dead ones are marked, then
/// reaped after the grace).
async fn run_liveness(cluster: Weak<Cluster>, hub: Weak<Hub>) {
    let Some(c) = cluster.upgrade() else { return };
    let period = c.config.heartbeat;
    let stop = c.stop.clone();
    drop(c);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (Some(c), Some(h)) = (cluster.upgrade(), hub.upgrade()) else {
            return;
        };
        let was = c.reachable();
        match c.heartbeat_once().await {
            Ok(()) => {
                c.reachable.store(true, Ordering::Relaxed);
                if !was {
                    tracing::warn!("cluster: Redis answers again");
                }
            }
            Err(e) => {
                if was {
                    tracing::error!("cluster: {e}");
                }
                c.reachable.store(false, Ordering::Relaxed);
                continue;
            }
        }
        if let Err(e) = check_nodes(&c, &h).await {
            tracing::debug!("cluster: checking other nodes: {e}");
        }
    }
}

async fn check_nodes(c: &Arc<Cluster>, hub: &Arc<Hub>) -> Result<(), ClusterError> {
    let nodes: Vec<String> = redis::from_redis_value(
        c.call(redis::cmd("SMEMBERS").arg(c.key("nodes")).clone())
            .get()
            .await?,
    )
    .map_err(|e| ClusterError::Protocol(e.to_string()))?;
    let now = hub.now_ms();
    let grace = hub.config.grace.as_millis() as u64;
    for node in nodes.into_iter().filter(|n| *n != c.node) {
        let alive: i64 = redis::from_redis_value(
            c.call(
                redis::cmd("EXISTS")
                    .arg(c.key(&format!("alive:{node}")))
                    .clone(),
            )
            .get()
            .await?,
        )
        .map_err(|e| ClusterError::Protocol(e.to_string()))?;
        if alive == 1 {
            continue;
        }
        let now_s = now.to_string();
        let marked: Vec<i64> = redis::from_redis_value(
            c.call(c.script("mark_dead", &[&node, &now_s, "*"]))
                .get()
                .await?,
        )
        .map_err(|e| ClusterError::Protocol(e.to_string()))?;
        let since = match marked.as_slice() {
            [1, since] => *since as u64,
            _ => continue,
        };
        if now < since + grace {
            continue;
        }
        // Past the grace: whichever node gets here first removes its users,
        // a batch per script call so Redis never stalls long.
        loop {
            let left: i64 = redis::from_redis_value(
                c.call(c.script("reap", &[&node, "500", "*", &now_s]))
                    .get()
                    .await?,
            )
            .map_err(|e| ClusterError::Protocol(e.to_string()))?;
            if left <= 0 {
                if left == 0 {
                    tracing::warn!(%node, "cluster: a dead node's users were logged out after the grace");
                }
                break;
            }
        }
    }
    Ok(())
}
