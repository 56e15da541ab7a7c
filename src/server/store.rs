//! The storage boundary of the server: what must outlive a session or a
//! restart. Channel attributes (spec §6) and offline peer messages (spec §3)
//! live behind [`Store`]; sessions, channels and presence stay in the hub's
//! memory. [`MemoryStore`] keeps everything in RAM (tests);
//! [`SqliteStore`](super::sqlite::SqliteStore) is the durable default.
//!
//! # The contract every back end keeps
//!
//! - **Submitting never blocks.** Each method only *queues* an operation and
//!   returns a [`Ticket`]; the hub calls them while it holds its lock, so the
//!   order of operations is the order of the hub's decisions. The caller
//!   awaits the ticket after releasing the lock.
//! - **FIFO.** Operations take effect in the order they were submitted; a
//!   read sees every write submitted before it.
//! - **A ticket resolves only once its effect is durable** (for a write) —
//!   the hub answers a request only after that, so nothing acknowledged is
//!   lost. Dropping a ticket does not cancel the operation.
//! - **Read-modify-write happens inside the store** ([`AttributeEdit`]), so
//!   concurrent writers are all-or-nothing even when several server nodes
//!   share one store (a Redis back end runs the edit in WATCH/MULTI and may
//!   run it again on conflict, hence `Fn`).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::protocol::{ChannelAttribute, ChannelId, ErrorBody, RtmMessage, Uid};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage failed: {0}")]
    Backend(String),
    #[error("cannot open the database {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error(
        "the data directory {} holds schema version {found} but this rtm understands up to {supported}; upgrade rtm (or point --data at another directory)",
        dir.display()
    )]
    SchemaTooNew {
        dir: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("the database {path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("the storage writer has stopped; restart the server")]
    Closed,
    /// Another server (or this process) holds the data directory's lock.
    #[error(
        "the data directory {} is in use by {}; stop that server first, or give this one its own directory with --data (lock file {})",
        dir.display(),
        holder_text(*holder),
        lock_file.display()
    )]
    Locked {
        dir: PathBuf,
        lock_file: PathBuf,
        /// The process id written into the lock file, if it could be read.
        holder: Option<u32>,
    },
    /// An offline message was refused by a quota; nothing was stored.
    #[error("{0}")]
    Quota(QuotaRefusal),
}

fn holder_text(holder: Option<u32>) -> String {
    match holder {
        Some(pid) if pid == std::process::id() => format!("this same process ({pid})"),
        Some(pid) => format!("another rtm server (process {pid})"),
        None => "another rtm server".into(),
    }
}

/// Limits on what offline messages may take; 0 turns a limit off. Bytes are
/// those of the message body (TEXT: the text; RAW: data and description).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfflineQuota {
    /// Messages kept per receiver; the newest replace the oldest.
    pub per_receiver_messages: usize,
    /// Bytes kept per receiver; the newest replace the oldest.
    pub per_receiver_bytes: u64,
    /// The window the per-sender limits count over, in milliseconds.
    pub sender_window_ms: u64,
    /// Messages one sender may leave (still stored) per window.
    pub per_sender_messages: u64,
    /// Bytes one sender may leave (still stored) per window.
    pub per_sender_bytes: u64,
    /// Bytes of all offline messages on this server together.
    pub total_bytes: u64,
}

impl OfflineQuota {
    /// No limit but the per-receiver count (tests and measurements).
    pub fn only_cap(per_receiver_messages: usize) -> OfflineQuota {
        OfflineQuota {
            per_receiver_messages,
            per_receiver_bytes: 0,
            sender_window_ms: 0,
            per_sender_messages: 0,
            per_sender_bytes: 0,
            total_bytes: 0,
        }
    }

    /// Checks a new message of `bytes` against the refusing limits, given
    /// what the sender stored within the window and the server's total.
    pub fn check(
        &self,
        bytes: u64,
        sender_messages: u64,
        sender_bytes: u64,
        total_bytes: u64,
    ) -> Result<(), QuotaRefusal> {
        let window_s = self.sender_window_ms / 1000;
        if self.per_receiver_bytes > 0 && bytes > self.per_receiver_bytes {
            return Err(QuotaRefusal::LargerThanMailbox {
                bytes,
                limit: self.per_receiver_bytes,
            });
        }
        if self.per_sender_messages > 0 && sender_messages >= self.per_sender_messages {
            return Err(QuotaRefusal::SenderMessages {
                limit: self.per_sender_messages,
                window_s,
            });
        }
        if self.per_sender_bytes > 0 && sender_bytes + bytes > self.per_sender_bytes {
            return Err(QuotaRefusal::SenderBytes {
                limit: self.per_sender_bytes,
                window_s,
            });
        }
        if self.total_bytes > 0 && total_bytes + bytes > self.total_bytes {
            return Err(QuotaRefusal::ServerFull {
                limit: self.total_bytes,
            });
        }
        Ok(())
    }
}

/// Why an offline message was not stored; the text goes to the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaRefusal {
    #[error(
        "you have left {limit} offline messages in the last {window_s} s, the most this server keeps per sender; the message was not stored. Wait until they are delivered or for the window to pass, or send it when the receiver is online"
    )]
    SenderMessages { limit: u64, window_s: u64 },
    #[error(
        "your offline messages of the last {window_s} s take {limit} bytes, the most this server keeps per sender; the message was not stored. Wait until they are delivered or for the window to pass, or send it when the receiver is online"
    )]
    SenderBytes { limit: u64, window_s: u64 },
    #[error(
        "the server's storage for offline messages is full ({limit} bytes); the message was not stored. Send it when the receiver is online, or ask the operator to raise offline_total_max_bytes"
    )]
    ServerFull { limit: u64 },
    #[error(
        "the message ({bytes} bytes) is larger than a receiver's offline mailbox ({limit} bytes); it was not stored. Send it when the receiver is online"
    )]
    LargerThanMailbox { bytes: u64, limit: u64 },
}

/// A peer message kept for a receiver who was offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    /// Store-assigned, increasing in send order (across all receivers).
    pub seq: u64,
    pub from: Uid,
    pub message: RtmMessage,
    pub server_received_ts: u64,
}

/// How much is stored; `rtm serve` prints it at start-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub offline_messages: u64,
    /// Receivers with at least one waiting message.
    pub offline_receivers: u64,
    pub channels_with_attributes: u64,
}

/// Computes a channel's next attribute set from its current one, or refuses
/// (limits) and changes nothing. Runs inside the store's atomic section; may
/// run more than once (optimistic back ends), so it must not have side effects.
pub type AttributeEdit =
    Box<dyn Fn(&[ChannelAttribute]) -> Result<Vec<ChannelAttribute>, ErrorBody> + Send + Sync>;

/// The answer of an [`AttributeEdit`]: the new set, or why it was refused.
pub type EditResult = Result<Vec<ChannelAttribute>, ErrorBody>;

/// The pending result of a store operation; await it (outside any lock).
#[must_use = "a ticket tells when the operation is durable; await it or pass it to log_failure"]
pub struct Ticket<T> {
    rx: oneshot::Receiver<Result<T, StoreError>>,
}

/// The producing side of a [`Ticket`], held by whoever performs the operation.
pub struct Completer<T> {
    tx: oneshot::Sender<Result<T, StoreError>>,
}

impl<T> Completer<T> {
    pub fn complete(self, result: Result<T, StoreError>) {
        // The waiter may have gone away (its connection closed); the
        // operation happened all the same.
        let _ = self.tx.send(result);
    }
}

impl<T> Ticket<T> {
    pub fn new() -> (Completer<T>, Ticket<T>) {
        let (tx, rx) = oneshot::channel();
        (Completer { tx }, Ticket { rx })
    }

    /// A ticket that is already answered (synchronous back ends).
    pub fn ready(result: Result<T, StoreError>) -> Ticket<T> {
        let (c, t) = Self::new();
        c.complete(result);
        t
    }
}

impl<T: Send + 'static> Ticket<T> {
    /// For writes nobody waits for (bookkeeping): logs a failure when it
    /// comes. Answered tickets are checked at once, others on a small task.
    pub fn log_failure(mut self, what: &'static str) {
        match self.rx.try_recv() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("store: {what}: {e}"),
            Err(oneshot::error::TryRecvError::Closed) => {
                tracing::error!("store: {what}: {}", StoreError::Closed)
            }
            Err(oneshot::error::TryRecvError::Empty) => {
                tokio::spawn(async move {
                    if let Err(e) = self.await {
                        tracing::error!("store: {what}: {e}");
                    }
                });
            }
        }
    }
}

impl<T> Future for Ticket<T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(StoreError::Closed)))
    }
}

/// What the hub needs from storage; see the module doc for the contract.
pub trait Store: Send + Sync + 'static {
    /// Where the data lives, for people ("SQLite database /var/lib/rtm/rtm.sqlite3").
    fn location(&self) -> String;

    /// Counts of what is stored.
    fn stats(&self) -> Ticket<StoreStats>;

    /// Resolves once every operation submitted before it has taken effect.
    fn barrier(&self) -> Ticket<()>;

    /// All attributes of a channel, in key order (empty when none).
    fn channel_attributes(&self, channel: &ChannelId) -> Ticket<Vec<ChannelAttribute>>;

    /// Replaces a channel's attributes with what `edit` makes of them (an
    /// empty result removes them). Answers the new set, or the edit's refusal.
    fn update_channel_attributes(
        &self,
        channel: &ChannelId,
        edit: AttributeEdit,
    ) -> Ticket<EditResult>;

    /// `Some(ts)`: the channel has had no members since `ts` (an earlier
    /// record is kept). `None`: it has members again.
    fn set_channel_empty_since(&self, channel: &ChannelId, since_ms: Option<u64>) -> Ticket<()>;

    /// The server has just started, so no channel has members: every channel
    /// with attributes but no empty-since record gets `since_ms` (it had
    /// members when the server stopped or crashed).
    fn mark_all_channels_empty(&self, since_ms: u64) -> Ticket<()>;

    /// Clears attributes of channels empty since before `cutoff_ms`; answers
    /// the channels whose attributes were cleared.
    fn sweep_empty_channels(&self, cutoff_ms: u64) -> Ticket<Vec<ChannelId>>;

    /// Stores a message for an offline receiver. Within `quota` the
    /// receiver's mailbox keeps its newest messages (oldest dropped); a
    /// message over a sender or server limit is refused with
    /// [`StoreError::Quota`] and nothing is stored.
    fn push_offline(
        &self,
        to: &Uid,
        from: &Uid,
        message: &RtmMessage,
        server_received_ts: u64,
        quota: &OfflineQuota,
    ) -> Ticket<()>;

    /// At most `limit` of the messages waiting for `to` with a `seq` above
    /// `after_seq`, oldest first, received at or after `min_ts` (one page of
    /// a hand-over: the hub never holds a whole mailbox in memory). They stay
    /// stored until [`ack_offline`](Store::ack_offline).
    fn pending_offline(
        &self,
        to: &Uid,
        min_ts: u64,
        after_seq: u64,
        limit: usize,
    ) -> Ticket<Vec<OfflineMessage>>;

    /// Removes `to`'s messages up to and including `up_to_seq`: the receiver
    /// acknowledged having them.
    fn ack_offline(&self, to: &Uid, up_to_seq: u64) -> Ticket<()>;

    /// Removes every offline message received before `before_ts`; answers how many.
    fn purge_offline(&self, before_ts: u64) -> Ticket<u64>;

    /// For a clean stop: resolves once everything submitted before is done,
    /// the data is in its final, self-contained form and the store is closed
    /// (SQLite: the WAL folded into the main file, so copying that file is a
    /// full backup; the database closed and its lock released). Operations
    /// submitted later answer [`StoreError::Closed`]. The memory store stays
    /// usable.
    fn shutdown(&self) -> Ticket<()> {
        self.barrier()
    }
}

/// A ready ticket of a ticket's result that may itself be a refusal.
fn flatten_quota(ticket: Ticket<Result<(), QuotaRefusal>>) -> Ticket<()> {
    let mut rx = ticket.rx;
    Ticket::ready(match rx.try_recv() {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(refusal))) => Err(StoreError::Quota(refusal)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(StoreError::Closed),
    })
}

/// Applies the shared semantics of `set_channel_empty_since`.
fn apply_empty_since(map: &mut HashMap<ChannelId, u64>, channel: &ChannelId, since: Option<u64>) {
    match since {
        Some(ts) => {
            map.entry(channel.clone()).or_insert(ts);
        }
        None => {
            map.remove(channel);
        }
    }
}

#[derive(Default)]
struct MemoryInner {
    attributes: HashMap<ChannelId, Vec<ChannelAttribute>>,
    empty_since: HashMap<ChannelId, u64>,
    offline: HashMap<Uid, VecDeque<OfflineMessage>>,
    next_seq: u64,
}

/// Everything in RAM; lost at exit. Every operation is done when submitted.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryInner) -> T) -> Ticket<T> {
        Ticket::ready(
            self.inner
                .lock()
                .map(|mut inner| f(&mut inner))
                .map_err(|_| StoreError::Backend("memory store lock poisoned".into())),
        )
    }
}

impl Store for MemoryStore {
    fn location(&self) -> String {
        "memory (lost when the server stops)".into()
    }

    fn stats(&self) -> Ticket<StoreStats> {
        self.with(|inner| StoreStats {
            offline_messages: inner.offline.values().map(|q| q.len() as u64).sum(),
            offline_receivers: inner.offline.len() as u64,
            channels_with_attributes: inner.attributes.len() as u64,
        })
    }

    fn barrier(&self) -> Ticket<()> {
        Ticket::ready(Ok(()))
    }

    fn channel_attributes(&self, channel: &ChannelId) -> Ticket<Vec<ChannelAttribute>> {
        self.with(|inner| inner.attributes.get(channel).cloned().unwrap_or_default())
    }

    fn update_channel_attributes(
        &self,
        channel: &ChannelId,
        edit: AttributeEdit,
    ) -> Ticket<EditResult> {
        self.with(|inner| {
            let current = inner.attributes.get(channel).map_or(&[][..], Vec::as_slice);
            let next = edit(current)?;
            if next.is_empty() {
                inner.attributes.remove(channel);
            } else {
                inner.attributes.insert(channel.clone(), next.clone());
            }
            Ok(next)
        })
    }

    fn set_channel_empty_since(&self, channel: &ChannelId, since_ms: Option<u64>) -> Ticket<()> {
        self.with(|inner| apply_empty_since(&mut inner.empty_since, channel, since_ms))
    }

    fn mark_all_channels_empty(&self, since_ms: u64) -> Ticket<()> {
        self.with(|inner| {
            for ch in inner.attributes.keys() {
                inner.empty_since.entry(ch.clone()).or_insert(since_ms);
            }
        })
    }

    fn sweep_empty_channels(&self, cutoff_ms: u64) -> Ticket<Vec<ChannelId>> {
        self.with(|inner| {
            let expired: Vec<ChannelId> = inner
                .empty_since
                .iter()
                .filter(|(_, since)| **since < cutoff_ms)
                .map(|(c, _)| c.clone())
                .collect();
            let mut cleared = Vec::new();
            for c in expired {
                inner.empty_since.remove(&c);
                if inner.attributes.remove(&c).is_some() {
                    cleared.push(c);
                }
            }
            cleared
        })
    }

    fn push_offline(
        &self,
        to: &Uid,
        from: &Uid,
        message: &RtmMessage,
        server_received_ts: u64,
        quota: &OfflineQuota,
    ) -> Ticket<()> {
        let quota = *quota;
        let result = self.with(|inner| {
            let bytes = message.size() as u64;
            let window_start = server_received_ts.saturating_sub(quota.sender_window_ms);
            let (mut sender_messages, mut sender_bytes, mut total) = (0, 0, 0);
            for m in inner.offline.values().flatten() {
                let size = m.message.size() as u64;
                total += size;
                if m.from == *from && m.server_received_ts >= window_start {
                    sender_messages += 1;
                    sender_bytes += size;
                }
            }
            quota.check(bytes, sender_messages, sender_bytes, total)?;
            inner.next_seq += 1;
            let seq = inner.next_seq;
            let queue = inner.offline.entry(to.clone()).or_default();
            queue.push_back(OfflineMessage {
                seq,
                from: from.clone(),
                message: message.clone(),
                server_received_ts,
            });
            let mut kept_bytes: u64 = queue.iter().map(|m| m.message.size() as u64).sum();
            while queue.len() > quota.per_receiver_messages
                || (quota.per_receiver_bytes > 0 && kept_bytes > quota.per_receiver_bytes)
            {
                match queue.pop_front() {
                    Some(m) => kept_bytes -= m.message.size() as u64,
                    None => break,
                }
            }
            Ok(())
        });
        flatten_quota(result)
    }

    fn pending_offline(
        &self,
        to: &Uid,
        min_ts: u64,
        after_seq: u64,
        limit: usize,
    ) -> Ticket<Vec<OfflineMessage>> {
        self.with(|inner| {
            inner
                .offline
                .get(to)
                .map(|q| {
                    q.iter()
                        .filter(|m| m.seq > after_seq && m.server_received_ts >= min_ts)
                        .take(limit)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn ack_offline(&self, to: &Uid, up_to_seq: u64) -> Ticket<()> {
        self.with(|inner| {
            if let Some(q) = inner.offline.get_mut(to) {
                while q.front().is_some_and(|m| m.seq <= up_to_seq) {
                    q.pop_front();
                }
                if q.is_empty() {
                    inner.offline.remove(to);
                }
            }
        })
    }

    fn purge_offline(&self, before_ts: u64) -> Ticket<u64> {
        self.with(|inner| {
            let mut removed = 0;
            inner.offline.retain(|_, q| {
                let before = q.len();
                q.retain(|m| m.server_received_ts >= before_ts);
                removed += (before - q.len()) as u64;
                !q.is_empty()
            });
            removed
        })
    }
}
