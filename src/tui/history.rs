//! The messenger's local history: the messages of each conversation kept in
//! one SQLite file per logged-in uid, `<data dir>/history-<uid>.sqlite3`, so
//! that reopening `rtm chat` shows the recent conversations. One file per uid
//! because two people may share one machine account and must not see each
//! other's messages.
//!
//! All IO happens on one dedicated thread ([`HistoryWriter`]): `App::update`
//! only emits `Command::OpenHistory` / `Command::RecordHistory`, the executor
//! forwards them here, and the loaded history comes back as a
//! [`HistoryReport`] (which the executor hands to the app). The report is
//! this module's own type so that the history does not depend on the app. Records that arrive before the file is
//! open (messages racing the login answer) wait in memory and are written
//! right after the load, so they never show twice.
//!
//! Writes are batched: the thread takes everything queued and writes it in
//! one transaction, then trims each conversation it touched to
//! [`CAP_PER_CONVERSATION`] rows so the file stays bounded.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use super::conversation::{ConvId, Delivery, Entry, EntryKind};
use crate::client::Uid;

/// Messages loaded per conversation at start.
pub const LOAD_PER_CONVERSATION: usize = 500;
/// Messages per page read when the view scrolls up past what is loaded.
pub const PAGE_SIZE: usize = 500;
/// Messages read above a search hit that is loaded from the store, so that
/// it shows with what led to it.
const HIT_CONTEXT: usize = 20;
/// Conversations loaded at start, the most recently active first.
pub const MAX_LOADED_CONVERSATIONS: usize = 200;
/// Rows kept per conversation; older ones are deleted as new ones come.
pub const CAP_PER_CONVERSATION: usize = 10_000;
/// Most records written in one transaction.
const MAX_BATCH_RECORDS: usize = 1024;
/// Records kept in memory while the file is not open yet (before login).
const MAX_PENDING_RECORDS: usize = 10_000;
/// How long a statement waits for a lock held by another messenger.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations; entry `i` brings the schema from version `i` to `i + 1`.
/// Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: messages by conversation, in the order they were shown.
    "CREATE TABLE messages (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         conv_kind TEXT NOT NULL,  -- 'peer' or 'channel'
         conv TEXT NOT NULL,       -- the peer's uid or the channel id
         ts INTEGER NOT NULL,      -- ms since the epoch (server time when known)
         sender TEXT NOT NULL,
         text TEXT NOT NULL,
         offline INTEGER NOT NULL, -- stored by the server while we were offline
         outgoing INTEGER NOT NULL,
         delivery TEXT NOT NULL    -- 'received', 'sending', 'sent' or 'failed'
     );
     CREATE INDEX messages_by_conv ON messages (conv_kind, conv, id);",
    // 2: call lines ("alice called — accepted") kept among the messages,
    // in their place; the rows of version 1 are all messages.
    "ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';",
];

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "local history {path} was written by a newer rtm (schema version {found}; this one knows up to {supported}): history is off for this session; upgrade rtm or start it with --no-history"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("local history {path}: {reason}")]
    Db { path: PathBuf, reason: String },
}

/// What the app asks to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryRecord {
    /// A message shown in a conversation: incoming, or our own.
    Message {
        conv: ConvId,
        ts: u64,
        from: Uid,
        text: String,
        offline: bool,
        outgoing: bool,
        /// [`Delivery::Sending`] with the app's send id for our messages on
        /// their way; a later [`HistoryRecord::Delivery`] names that id.
        delivery: Delivery,
    },
    /// How a call went, as its line in the direct conversation reads.
    Call {
        conv: ConvId,
        ts: u64,
        /// Who rang: us or the peer.
        caller: Uid,
        text: String,
        outgoing: bool,
    },
    /// A file or picture message, incoming or ours: kept as the message's
    /// JSON (kind `media`), so it can be saved after a restart (files stay
    /// on the server for 7 days) and its preview drawn again.
    Media {
        conv: ConvId,
        ts: u64,
        from: Uid,
        message: crate::client::RtmMessage,
        offline: bool,
        outgoing: bool,
        delivery: Delivery,
    },
    /// Our message `id` (its [`Delivery::Sending`] id) was answered.
    Delivery {
        id: u64,
        delivery: Delivery,
        ts: u64,
    },
}

/// Where the stored rows of a conversation that are not loaded yet end:
/// the rows strictly older than this row id. `None` in a request means "the
/// rows that were there when the file was opened", for a conversation that
/// the start-up load left out.
pub type RowId = i64;

/// Some of a conversation's stored messages, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryPage {
    pub entries: Vec<Entry>,
    /// The row id of the oldest entry here when older rows remain in the
    /// store (the next page is read before it); `None` when this page
    /// reaches the start of the stored history.
    pub older: Option<RowId>,
}

/// One conversation's recent entries, oldest first, as loaded at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedConversation {
    pub conv: ConvId,
    pub page: HistoryPage,
}

/// What the history thread tells whoever started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryReport {
    /// The recent conversations, most recently active first (or why they
    /// could not be read).
    Loaded(Result<Vec<LoadedConversation>, String>),
    /// Writing failed (reported once).
    Failed(String),
    /// An older page of `conv`, asked for with `before` (or why it could
    /// not be read).
    Page {
        conv: ConvId,
        before: Option<RowId>,
        result: Result<HistoryPage, String>,
    },
    /// The stored messages of `conv` older than `before` that contain
    /// `query`: their row ids, newest first.
    Found {
        conv: ConvId,
        query: String,
        result: Result<Vec<RowId>, String>,
    },
}

fn delivery_word(d: Delivery) -> &'static str {
    match d {
        Delivery::Received => "received",
        Delivery::Sending(_) => "sending",
        // In the outbox: if the messenger quits now, it was never sent.
        Delivery::Queued(_) => "queued",
        Delivery::Sent => "sent",
        Delivery::Failed | Delivery::Unsent(_) => "failed",
    }
}

/// The media of a file row (its message's JSON); `None` when it no longer parses.
fn media_of_row(json: &str) -> Option<crate::tui::media::Media> {
    serde_json::from_str::<crate::client::RtmMessage>(json)
        .ok()
        .and_then(|m| crate::tui::media::Media::from_message(&m))
}

/// The text a file line shows, the same for a loaded line and a stored
/// search.
fn line_text(media: &crate::tui::media::Media) -> String {
    format!("[{}]", media.summary())
}

/// What a file row's line shows, for the stored search.
fn media_line_text(json: &str) -> Option<String> {
    media_of_row(json).map(|m| line_text(&m))
}

fn delivery_of(word: &str) -> Delivery {
    match word {
        "received" => Delivery::Received,
        "failed" | "queued" => Delivery::Failed,
        // "sending": the messenger quit before the answer came. The server
        // most likely took it; shown without a mark rather than as failed.
        _ => Delivery::Sent,
    }
}

fn conv_key(id: &ConvId) -> (&'static str, &str) {
    match id {
        ConvId::Peer(p) => ("peer", p.as_str()),
        ConvId::Channel(c) => ("channel", c.as_str()),
    }
}

fn conv_of(kind: &str, id: &str) -> Option<ConvId> {
    match kind {
        "peer" => id.parse().ok().map(ConvId::Peer),
        "channel" => id.parse().ok().map(ConvId::Channel),
        _ => None,
    }
}

fn sql_ts(ts: u64) -> i64 {
    i64::try_from(ts).unwrap_or(i64::MAX)
}

/// The history file's name for `uid`: `history-<uid>.sqlite3` when the uid
/// is plain (lower-case letters, digits, `_`, `-`), else a safe spelling plus
/// a hash of the exact uid, so `Bob` and `bob` stay apart on file systems
/// that ignore case, and no uid character can reach the path.
pub fn file_name(uid: &Uid) -> String {
    let s = uid.as_str();
    let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    if s.chars().all(plain) {
        return format!("history-{s}.sqlite3");
    }
    let safe: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if plain(c) { c } else { '_' }
        })
        .collect();
    let hash = Sha256::digest(s.as_bytes());
    let tag: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("history-{safe}~{tag}.sqlite3")
}

/// The history file of `uid` in `data_dir`.
pub fn path_in(data_dir: &Path, uid: &Uid) -> PathBuf {
    data_dir.join(file_name(uid))
}

/// An open history file. Synchronous: used by the [`HistoryWriter`] thread
/// (and tests), never on the UI loop.
pub struct HistoryStore {
    conn: Connection,
    path: PathBuf,
    /// Rows of our messages of this session still on their way, by send id,
    /// so their answer updates the row.
    sending: HashMap<u64, i64>,
    /// The newest row id when the file was opened: older pages of a
    /// conversation that the start-up load left out are read from here down.
    opened_at: RowId,
}

impl HistoryStore {
    /// Opens (creating the directory and file if needed) `uid`'s history in
    /// `data_dir`, bringing its schema up to date.
    pub fn open(data_dir: &Path, uid: &Uid) -> Result<HistoryStore, HistoryError> {
        let path = path_in(data_dir, uid);
        std::fs::create_dir_all(data_dir).map_err(|e| HistoryError::Db {
            path: path.clone(),
            reason: format!("cannot create the data directory: {e}"),
        })?;
        Self::open_file(&path)
    }

    /// Opens the history file `path`.
    pub fn open_file(path: &Path) -> Result<HistoryStore, HistoryError> {
        let err = db_err(path);
        let mut conn = Connection::open(path).map_err(&err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
        // The version check comes first: a newer file is left untouched.
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(&err)?;
        if found > SCHEMA_VERSION {
            return Err(HistoryError::SchemaTooNew {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        // WAL: a second messenger of the same uid can read while this one
        // writes. NORMAL: a crash of the messenger loses nothing; a power cut
        // may lose the last messages, which the server does not keep anyway.
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(&err)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(&err)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            let tx = conn.transaction().map_err(&err)?;
            tx.execute_batch(sql).map_err(&err)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(&err)?;
            tx.commit().map_err(&err)?;
        }
        let opened_at: RowId = conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM messages", [], |r| {
                r.get(0)
            })
            .map_err(&err)?;
        Ok(HistoryStore {
            conn,
            path: path.to_path_buf(),
            sending: HashMap::new(),
            opened_at,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The conversations with history, most recently active first (at most
    /// `max_conversations`), each with its newest `per_conversation`
    /// entries, oldest first. Rows naming an invalid id are skipped.
    pub fn load(
        &self,
        per_conversation: usize,
        max_conversations: usize,
    ) -> Result<Vec<LoadedConversation>, HistoryError> {
        let err = db_err(&self.path);
        let mut convs = self
            .conn
            .prepare(
                "SELECT conv_kind, conv FROM messages
                 GROUP BY conv_kind, conv ORDER BY MAX(id) DESC LIMIT ?1",
            )
            .map_err(&err)?;
        let ids: Vec<(String, String)> = convs
            .query_map([max_conversations as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(&err)?
            .collect::<Result<_, _>>()
            .map_err(&err)?;
        let mut out = Vec::with_capacity(ids.len());
        for (kind, id) in ids {
            let Some(conv) = conv_of(&kind, &id) else {
                tracing::warn!(path = %self.path.display(), "skipping history of {kind} {id:?}: not a valid id");
                continue;
            };
            let page = self.page(&conv, Some(RowId::MAX), per_conversation, None)?;
            out.push(LoadedConversation { conv, page });
        }
        Ok(out)
    }

    /// The newest `limit` entries of `conv` older than row `before` (`None`:
    /// the rows there were when the file was opened), oldest first. With
    /// `until`, the page reaches at least down to that row, plus a few
    /// above it for context (a search hit being brought into view).
    pub fn page(
        &self,
        conv: &ConvId,
        before: Option<RowId>,
        limit: usize,
        until: Option<RowId>,
    ) -> Result<HistoryPage, HistoryError> {
        let err = db_err(&self.path);
        let (kind, id) = conv_key(conv);
        let before = before.unwrap_or(self.opened_at.saturating_add(1));
        let mut limit = limit.max(1);
        if let Some(until) = until {
            let to_hit: i64 = self
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM messages
                     WHERE conv_kind = ?1 AND conv = ?2 AND id >= ?3 AND id < ?4",
                    params![kind, id, until, before],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            limit = limit.max(usize::try_from(to_hit).unwrap_or(0) + HIT_CONTEXT);
        }
        let mut rows = self
            .conn
            .prepare_cached(
                "SELECT id, ts, sender, text, offline, delivery, kind FROM messages
                 WHERE conv_kind = ?1 AND conv = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4",
            )
            .map_err(&err)?;
        // One row more than asked says whether older ones remain.
        let mut read: Vec<(RowId, Option<Entry>)> = rows
            .query_map(params![kind, id, before, limit as i64 + 1], |r| {
                let row: RowId = r.get(0)?;
                let ts: i64 = r.get(1)?;
                let sender: String = r.get(2)?;
                let text: String = r.get(3)?;
                let offline: bool = r.get(4)?;
                let delivery: String = r.get(5)?;
                let kind: String = r.get(6)?;
                Ok((row, ts, sender, text, offline, delivery, kind))
            })
            .map_err(&err)?
            .map(|row| {
                let (row, ts, sender, text, offline, delivery, kind) = row.map_err(&err)?;
                let ts = u64::try_from(ts).unwrap_or(0);
                if kind == "call" {
                    let kind = EntryKind::Call(text);
                    return Ok((row, Some(Entry { ts, kind })));
                }
                if kind == "media" {
                    // A row that no longer parses is skipped, not fatal.
                    let entry = media_of_row(&text)
                        .zip(sender.parse().ok())
                        .map(|(m, from)| Entry {
                            ts,
                            kind: EntryKind::Message {
                                from,
                                text: line_text(&m),
                                offline,
                                delivery: delivery_of(&delivery),
                                mention: false,
                                media: Some(std::sync::Arc::new(m)),
                            },
                        });
                    return Ok((row, entry));
                }
                // A row whose sender is not a valid uid is skipped, not fatal.
                let entry = sender.parse().ok().map(|from| Entry {
                    ts,
                    kind: EntryKind::Message {
                        from,
                        text,
                        offline,
                        delivery: delivery_of(&delivery),
                        mention: false,
                        media: None,
                    },
                });
                Ok((row, entry))
            })
            .collect::<Result<_, HistoryError>>()?;
        let more = read.len() > limit;
        read.truncate(limit);
        let older = if more {
            read.last().map(|(row, _)| *row)
        } else {
            None
        };
        let mut entries: Vec<Entry> = read.into_iter().filter_map(|(_, e)| e).collect();
        entries.reverse();
        Ok(HistoryPage { entries, older })
    }

    /// The rows of `conv` older than `before` (`None`: as in [`page`](Self::page))
    /// whose text contains `query`, in any case: their ids, newest first.
    /// Matched here rather than in SQL so that it finds exactly what the
    /// search of the loaded lines finds (SQLite folds only ASCII case).
    pub fn search(
        &self,
        conv: &ConvId,
        query: &str,
        before: Option<RowId>,
    ) -> Result<Vec<RowId>, HistoryError> {
        let err = db_err(&self.path);
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let (kind, id) = conv_key(conv);
        let before = before.unwrap_or(self.opened_at.saturating_add(1));
        let q = query.to_lowercase();
        let mut rows = self
            .conn
            .prepare_cached(
                "SELECT id, text, kind FROM messages
                 WHERE conv_kind = ?1 AND conv = ?2 AND id < ?3 ORDER BY id DESC",
            )
            .map_err(&err)?;
        let mut hits = Vec::new();
        let found = rows
            .query_map(params![kind, id, before], |r| {
                Ok((
                    r.get::<_, RowId>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(&err)?;
        for row in found {
            let (row, text, kind) = row.map_err(&err)?;
            // A file row holds the message's JSON (with its base64
            // thumbnail): match what its line shows, not the JSON.
            let shown = match kind.as_deref() {
                Some("media") => media_line_text(&text),
                _ => Some(text),
            };
            if shown.is_some_and(|t| t.to_lowercase().contains(&q)) {
                hits.push(row);
            }
        }
        Ok(hits)
    }

    /// Writes `batch` in one transaction, then trims every conversation it
    /// added to down to its newest `cap` rows.
    pub fn write(&mut self, batch: &[HistoryRecord], cap: usize) -> Result<(), HistoryError> {
        let err = db_err(&self.path);
        let tx = self.conn.transaction().map_err(&err)?;
        let mut sent: Vec<(u64, i64)> = Vec::new();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO messages
                     (conv_kind, conv, ts, sender, text, offline, outgoing, delivery)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(&err)?;
            let mut insert_call = tx
                .prepare_cached(
                    "INSERT INTO messages
                     (conv_kind, conv, ts, sender, text, offline, outgoing, delivery, kind)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, 'received', 'call')",
                )
                .map_err(&err)?;
            let mut insert_media = tx
                .prepare_cached(
                    "INSERT INTO messages
                     (conv_kind, conv, ts, sender, text, offline, outgoing, delivery, kind)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'media')",
                )
                .map_err(&err)?;
            let mut update = tx
                .prepare_cached("UPDATE messages SET delivery = ?1, ts = ?2 WHERE id = ?3")
                .map_err(&err)?;
            let mut touched: BTreeSet<&ConvId> = BTreeSet::new();
            for record in batch {
                match record {
                    HistoryRecord::Message {
                        conv,
                        ts,
                        from,
                        text,
                        offline,
                        outgoing,
                        delivery,
                    } => {
                        let (kind, id) = conv_key(conv);
                        insert
                            .execute(params![
                                kind,
                                id,
                                sql_ts(*ts),
                                from.as_str(),
                                text,
                                offline,
                                outgoing,
                                delivery_word(*delivery)
                            ])
                            .map_err(&err)?;
                        if let Delivery::Sending(send_id) | Delivery::Queued(send_id) = delivery {
                            sent.push((*send_id, tx.last_insert_rowid()));
                        }
                        touched.insert(conv);
                    }
                    HistoryRecord::Call {
                        conv,
                        ts,
                        caller,
                        text,
                        outgoing,
                    } => {
                        let (kind, id) = conv_key(conv);
                        insert_call
                            .execute(params![
                                kind,
                                id,
                                sql_ts(*ts),
                                caller.as_str(),
                                text,
                                outgoing
                            ])
                            .map_err(&err)?;
                        touched.insert(conv);
                    }
                    HistoryRecord::Media {
                        conv,
                        ts,
                        from,
                        message,
                        offline,
                        outgoing,
                        delivery,
                    } => {
                        let (kind, id) = conv_key(conv);
                        let json = serde_json::to_string(message).unwrap_or_default();
                        insert_media
                            .execute(params![
                                kind,
                                id,
                                sql_ts(*ts),
                                from.as_str(),
                                json,
                                offline,
                                outgoing,
                                delivery_word(*delivery)
                            ])
                            .map_err(&err)?;
                        if let Delivery::Sending(send_id) | Delivery::Queued(send_id) = delivery {
                            sent.push((*send_id, tx.last_insert_rowid()));
                        }
                        touched.insert(conv);
                    }
                    HistoryRecord::Delivery { id, delivery, ts } => {
                        let row = sent
                            .iter()
                            .rev()
                            .find(|(s, _)| s == id)
                            .map(|(_, row)| *row)
                            .or_else(|| self.sending.get(id).copied());
                        if let Some(row) = row {
                            update
                                .execute(params![delivery_word(*delivery), sql_ts(*ts), row])
                                .map_err(&err)?;
                        }
                        // An unsent message keeps its row: the retry key
                        // sends it again under the same id.
                        if !matches!(delivery, Delivery::Unsent(_)) {
                            sent.retain(|(s, _)| s != id);
                            self.sending.remove(id);
                        }
                    }
                }
            }
            let mut prune = tx
                .prepare_cached(
                    "DELETE FROM messages WHERE conv_kind = ?1 AND conv = ?2 AND id <= (
                         SELECT id FROM messages WHERE conv_kind = ?1 AND conv = ?2
                         ORDER BY id DESC LIMIT 1 OFFSET ?3)",
                )
                .map_err(&err)?;
            for conv in touched {
                let (kind, id) = conv_key(conv);
                prune.execute(params![kind, id, cap as i64]).map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)?;
        self.sending.extend(sent);
        Ok(())
    }

    /// How many rows `conv` has.
    pub fn count(&self, conv: &ConvId) -> Result<usize, HistoryError> {
        let (kind, id) = conv_key(conv);
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE conv_kind = ?1 AND conv = ?2",
                params![kind, id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(db_err(&self.path))
    }
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
    move |e| HistoryError::Db {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// What the writer thread is asked to do, in order.
enum Job {
    /// Open (and load) the history of this uid.
    Open(Uid),
    Record(HistoryRecord),
    /// Read an older page of a conversation.
    Page {
        conv: ConvId,
        before: Option<RowId>,
        until: Option<RowId>,
    },
    /// Search a conversation's rows that are not loaded.
    Search {
        conv: ConvId,
        query: String,
        before: Option<RowId>,
    },
}

/// The writer thread's file.
enum State {
    /// Not logged in yet: records wait here.
    Waiting(Vec<HistoryRecord>),
    Open(Uid, HistoryStore),
    /// The file could not be opened (reported once): records are dropped.
    Off,
}

/// Hands history work to its thread. [`close`](Self::close) waits for what
/// is queued to be written; dropping it without closing lets the thread
/// finish on its own.
pub struct HistoryWriter {
    /// `None` once closed. Dropping the sender ends the thread after the queue.
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl HistoryWriter {
    /// Starts the thread. Nothing touches the disk until [`open`](Self::open).
    /// Loads and failures are handed to `report`, on the history's thread.
    pub fn start(
        data_dir: PathBuf,
        report: impl Fn(HistoryReport) + Send + 'static,
    ) -> std::io::Result<HistoryWriter> {
        let (jobs, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rtm-history".into())
            .spawn(move || writer(&data_dir, &rx, &report))?;
        Ok(HistoryWriter {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Opens `uid`'s history: loads it (answered as `HistoryLoaded`), then
    /// writes the records that were waiting.
    pub fn open(&self, uid: Uid) {
        self.send(Job::Open(uid));
    }

    pub fn record(&self, record: HistoryRecord) {
        self.send(Job::Record(record));
    }

    /// Reads the page of `conv` before row `before` (reaching down to row
    /// `until` when given); answered as [`HistoryReport::Page`].
    pub fn page(&self, conv: ConvId, before: Option<RowId>, until: Option<RowId>) {
        self.send(Job::Page {
            conv,
            before,
            until,
        });
    }

    /// Searches the rows of `conv` before row `before`; answered as
    /// [`HistoryReport::Found`].
    pub fn search(&self, conv: ConvId, query: String, before: Option<RowId>) {
        self.send(Job::Search {
            conv,
            query,
            before,
        });
    }

    fn send(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            // Fails only when the thread is gone (it logged why).
            let _ = jobs.send(job);
        }
    }

    /// Writes what is queued and stops the thread. Blocks: call it from a
    /// blocking task.
    pub fn close(mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread: takes everything queued, writes the records in one
/// transaction, opens files when asked; ends when the writer is dropped.
fn writer(data_dir: &Path, rx: &mpsc::Receiver<Job>, report: &dyn Fn(HistoryReport)) {
    let mut state = State::Waiting(Vec::new());
    let mut reported = false;
    let mut records: Vec<HistoryRecord> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH_RECORDS {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        for job in jobs {
            match job {
                Job::Record(r) => records.push(r),
                Job::Page {
                    conv,
                    before,
                    until,
                } => {
                    let result = match &state {
                        State::Open(_, store) => store
                            .page(&conv, before, PAGE_SIZE, until)
                            .map_err(|e| e.to_string()),
                        _ => Err(NOT_OPEN.to_string()),
                    };
                    report(HistoryReport::Page {
                        conv,
                        before,
                        result,
                    });
                }
                Job::Search {
                    conv,
                    query,
                    before,
                } => {
                    let result = match &state {
                        State::Open(_, store) => store
                            .search(&conv, &query, before)
                            .map_err(|e| e.to_string()),
                        _ => Err(NOT_OPEN.to_string()),
                    };
                    report(HistoryReport::Found {
                        conv,
                        query,
                        result,
                    });
                }
                Job::Open(uid) => {
                    flush(&mut state, &mut records, report, &mut reported);
                    if matches!(&state, State::Open(open, _) if *open == uid) {
                        continue;
                    }
                    let waiting = match std::mem::replace(&mut state, State::Off) {
                        State::Waiting(w) => w,
                        _ => Vec::new(),
                    };
                    state = open_and_load(data_dir, uid, report);
                    records = waiting;
                }
            }
        }
        flush(&mut state, &mut records, report, &mut reported);
    }
}

/// The answer to a read while the history is not open.
const NOT_OPEN: &str = "the local history is not open";

fn open_and_load(data_dir: &Path, uid: Uid, report: &dyn Fn(HistoryReport)) -> State {
    let opened = HistoryStore::open(data_dir, &uid).and_then(|store| {
        let loaded = store.load(LOAD_PER_CONVERSATION, MAX_LOADED_CONVERSATIONS)?;
        Ok((store, loaded))
    });
    match opened {
        Ok((store, loaded)) => {
            tracing::info!(path = %store.path().display(), conversations = loaded.len(), "history loaded");
            report(HistoryReport::Loaded(Ok(loaded)));
            State::Open(uid, store)
        }
        Err(e) => {
            tracing::warn!("{e}");
            report(HistoryReport::Loaded(Err(e.to_string())));
            State::Off
        }
    }
}

fn flush(
    state: &mut State,
    records: &mut Vec<HistoryRecord>,
    report: &dyn Fn(HistoryReport),
    reported: &mut bool,
) {
    if records.is_empty() {
        return;
    }
    match state {
        State::Waiting(waiting) => {
            let room = MAX_PENDING_RECORDS.saturating_sub(waiting.len());
            waiting.extend(records.drain(..).take(room));
        }
        State::Open(_, store) => {
            let result = store.write(records, CAP_PER_CONVERSATION);
            records.clear();
            if let Err(e) = result {
                tracing::warn!("{e}");
                // Once: a full disk would otherwise repeat it on every message.
                if !std::mem::replace(reported, true) {
                    report(HistoryReport::Failed(e.to_string()));
                }
            }
        }
        State::Off => records.clear(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ChannelId;

    /// A fresh, empty directory for one test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rtm-history-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn uid(s: &str) -> Uid {
        Uid::new(s).unwrap()
    }

    fn peer(s: &str) -> ConvId {
        ConvId::Peer(uid(s))
    }

    fn channel(s: &str) -> ConvId {
        ConvId::Channel(ChannelId::new(s).unwrap())
    }

    /// A picture's line comes back after a restart as the same picture:
    /// its media id (for /save), its sender and its preview.
    #[test]
    fn file_and_image_lines_are_kept_with_their_media() {
        let dir = temp_dir("media");
        let bob = peer("bob");
        let mut store = HistoryStore::open(&dir, &uid("alice")).unwrap();
        let image = crate::tui::fixtures::image_message("cat.png", 640, 480, 9);
        store
            .write(
                &[
                    HistoryRecord::Media {
                        conv: bob.clone(),
                        ts: 5,
                        from: uid("bob"),
                        message: image.clone(),
                        offline: false,
                        outgoing: false,
                        delivery: Delivery::Received,
                    },
                    HistoryRecord::Delivery {
                        id: 1,
                        delivery: Delivery::Sent,
                        ts: 6,
                    },
                ],
                CAP_PER_CONVERSATION,
            )
            .unwrap();
        let loaded = store.load(10, 10).unwrap();
        let entry = &loaded[0].page.entries[0];
        let EntryKind::Message {
            from, media, text, ..
        } = &entry.kind
        else {
            panic!("{entry:?}");
        };
        assert_eq!(from.as_str(), "bob");
        assert_eq!(text, "[cat.png · 300 KB · 640×480]");
        let media = media.as_ref().expect("the media");
        assert_eq!(media.to_message(), image);
        assert!(media.preview.is_some());
        // The stored search finds what the line shows, never the JSON
        // behind it (keys, the media id, the thumbnail's base64).
        assert_eq!(
            store
                .search(&bob, "CAT.png", Some(RowId::MAX))
                .unwrap()
                .len(),
            1
        );
        for hidden in ["thumbnail", "media_id", "\"type\"", "IMAGE"] {
            assert!(
                store
                    .search(&bob, hidden, Some(RowId::MAX))
                    .unwrap()
                    .is_empty(),
                "{hidden:?} is not on the line"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn msg(conv: &ConvId, from: &str, text: &str, ts: u64) -> HistoryRecord {
        HistoryRecord::Message {
            conv: conv.clone(),
            ts,
            from: uid(from),
            text: text.into(),
            offline: false,
            outgoing: from == "alice",
            delivery: if from == "alice" {
                Delivery::Sent
            } else {
                Delivery::Received
            },
        }
    }

    fn texts(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.kind.text()).collect()
    }

    #[test]
    fn messages_round_trip_in_order_per_conversation() {
        let dir = temp_dir("round-trip");
        let (bob, general) = (peer("bob"), channel("general"));
        {
            let mut store = HistoryStore::open(&dir, &uid("alice")).unwrap();
            store
                .write(
                    &[
                        msg(&bob, "bob", "hi alice", 200),
                        // Out of time order: the order shown is the order kept.
                        msg(&bob, "alice", "hello bob", 100),
                        msg(&general, "carol", "morning all", 150),
                    ],
                    CAP_PER_CONVERSATION,
                )
                .unwrap();
            store
                .write(
                    &[HistoryRecord::Message {
                        conv: bob.clone(),
                        ts: 300,
                        from: uid("bob"),
                        text: "stored for you".into(),
                        offline: true,
                        outgoing: false,
                        delivery: Delivery::Received,
                    }],
                    CAP_PER_CONVERSATION,
                )
                .unwrap();
        }
        let store = HistoryStore::open(&dir, &uid("alice")).unwrap();
        assert_eq!(store.path(), dir.join("history-alice.sqlite3"));
        let loaded = store.load(LOAD_PER_CONVERSATION, 10).unwrap();
        // Most recently active conversation first.
        assert_eq!(
            loaded.iter().map(|l| l.conv.clone()).collect::<Vec<_>>(),
            vec![bob.clone(), general.clone()]
        );
        let entries = &loaded[0].page.entries;
        assert_eq!(texts(entries), ["hi alice", "hello bob", "stored for you"]);
        assert_eq!(entries[1].ts, 100);
        assert!(matches!(
            &entries[1].kind,
            EntryKind::Message { from, delivery: Delivery::Sent, offline: false, .. } if from.as_str() == "alice"
        ));
        assert!(matches!(
            &entries[2].kind,
            EntryKind::Message {
                offline: true,
                delivery: Delivery::Received,
                ..
            }
        ));
        // Only the newest N per conversation, still oldest first.
        let newest = store.load(2, 10).unwrap();
        assert_eq!(
            texts(&newest[0].page.entries),
            ["hello bob", "stored for you"]
        );
        assert_eq!(store.load(10, 1).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Issue 16: 10,100 messages, a restart, and every stored one (the
    /// newest 10,000) must be reachable page by page, and found by search.
    #[test]
    fn every_stored_message_is_reachable_in_pages_and_by_search_after_a_restart() {
        let dir = temp_dir("pages");
        let (bob, carol) = (peer("bob"), peer("carol"));
        {
            let mut store = HistoryStore::open(&dir, &uid("alice")).unwrap();
            let records: Vec<HistoryRecord> = (1..=10_100u64)
                .flat_map(|i| {
                    let text = if i % 250 == 0 {
                        format!("m{i} Ünïcode needle")
                    } else {
                        format!("m{i}")
                    };
                    // Another conversation interleaved: its rows must not leak in.
                    [
                        msg(&bob, "bob", &text, i),
                        msg(&carol, "carol", "needle", i),
                    ]
                })
                .collect();
            for batch in records.chunks(MAX_BATCH_RECORDS) {
                store.write(batch, CAP_PER_CONVERSATION).unwrap();
            }
        }
        let store = HistoryStore::open(&dir, &uid("alice")).unwrap();
        let loaded = store.load(LOAD_PER_CONVERSATION, 10).unwrap();
        let first = &loaded.iter().find(|l| l.conv == bob).unwrap().page;
        assert_eq!(first.entries.len(), LOAD_PER_CONVERSATION);
        assert_eq!(first.entries[0].kind.text(), "m9601");
        let mut before = first.older;
        let mut oldest = first.entries[0].kind.text().to_string();
        let mut pages = 0;
        while let Some(b) = before {
            let page = store.page(&bob, Some(b), PAGE_SIZE, None).unwrap();
            assert!(page.entries.iter().all(|e| e.kind.text().starts_with('m')));
            oldest = page.entries[0].kind.text().to_string();
            before = page.older;
            pages += 1;
        }
        assert_eq!(oldest, "m101", "the oldest of the 10,000 kept");
        assert_eq!(pages, 19);
        // Search: the hits not loaded, newest first, any case, other
        // conversations left out.
        let hits = store.search(&bob, "ÜNÏCODE", first.older).unwrap();
        assert_eq!(hits.len(), 38, "40 stored, 2 of them loaded");
        let all = store.search(&bob, "needle", None).unwrap();
        assert_eq!(all.len(), 40);
        // A page that reaches down to the oldest hit, with context above it.
        let deep = *hits.last().unwrap();
        let page = store
            .page(&bob, first.older, PAGE_SIZE, Some(deep))
            .unwrap();
        assert_eq!(page.entries[HIT_CONTEXT].kind.text(), "m250 Ünïcode needle");
        assert_eq!(page.entries[0].kind.text(), "m230");
        assert!(page.older.is_some());
        // A conversation the start-up load left out pages from the rows
        // that were there at open, not from rows written since.
        let mut store = store;
        store
            .write(
                &[msg(&carol, "carol", "after open", 1)],
                CAP_PER_CONVERSATION,
            )
            .unwrap();
        let page = store.page(&carol, None, 3, None).unwrap();
        assert_eq!(texts(&page.entries), ["needle", "needle", "needle"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn each_conversation_is_trimmed_to_its_cap() {
        let dir = temp_dir("cap");
        let (bob, carol) = (peer("bob"), peer("carol"));
        let mut store = HistoryStore::open(&dir, &uid("alice")).unwrap();
        store
            .write(&[msg(&carol, "carol", "keep me", 1)], 10)
            .unwrap();
        // Several batches, as the writer would commit them.
        for batch in 0..5u64 {
            let records: Vec<HistoryRecord> = (0..7u64)
                .map(|i| msg(&bob, "bob", &format!("m{}", batch * 7 + i), batch * 7 + i))
                .collect();
            store.write(&records, 10).unwrap();
        }
        assert_eq!(store.count(&bob).unwrap(), 10);
        assert_eq!(
            store.count(&carol).unwrap(),
            1,
            "other conversations untouched"
        );
        let loaded = store.load(100, 10).unwrap();
        let entries = &loaded.iter().find(|l| l.conv == bob).unwrap().page.entries;
        let want: Vec<String> = (25..35).map(|i| format!("m{i}")).collect();
        assert_eq!(texts(entries), want);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_newer_schema_is_refused_in_words_and_left_alone() {
        let dir = temp_dir("newer");
        std::fs::create_dir_all(&dir).unwrap();
        let path = path_in(&dir, &uid("alice"));
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = HistoryStore::open(&dir, &uid("alice"))
            .err()
            .expect("a newer schema is refused");
        assert!(
            matches!(err, HistoryError::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1)
        );
        let words = err.to_string();
        assert!(
            words.contains("newer rtm") && words.contains("--no-history"),
            "{words}"
        );
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION + 1, "the file is not touched");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn each_uid_has_its_own_file() {
        let dir = temp_dir("uids");
        let bob = peer("bob");
        HistoryStore::open(&dir, &uid("alice"))
            .unwrap()
            .write(&[msg(&bob, "bob", "for alice only", 1)], 10)
            .unwrap();
        let other = HistoryStore::open(&dir, &uid("dave")).unwrap();
        assert!(other.load(10, 10).unwrap().is_empty());
        assert_ne!(path_in(&dir, &uid("alice")), path_in(&dir, &uid("dave")));
        assert!(dir.join("history-alice.sqlite3").exists());
        assert!(dir.join("history-dave.sqlite3").exists());
        // Uids that differ only in case, or carry characters some file
        // systems refuse, get distinct names of safe characters.
        let (upper, lower) = (file_name(&uid("Bob")), file_name(&uid("bob")));
        assert_ne!(upper.to_lowercase(), lower.to_lowercase());
        let odd = file_name(&uid("..:x y?z|<>"));
        assert!(odd.starts_with("history-__"), "{odd}");
        assert!(
            odd.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-~.".contains(c)),
            "{odd}"
        );
        assert_ne!(odd, file_name(&uid("..:x y?z|<<")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_writer_loads_first_then_writes_what_waited_and_updates_deliveries() {
        let dir = temp_dir("writer");
        let bob = peer("bob");
        HistoryStore::open(&dir, &uid("alice"))
            .unwrap()
            .write(&[msg(&bob, "bob", "from last time", 1)], 10)
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = HistoryWriter::start(dir.clone(), move |r| {
            let _ = tx.send(r);
        })
        .unwrap();
        // Arrives before the login answer: must not show twice.
        writer.record(msg(&bob, "bob", "racing the login", 2));
        writer.open(uid("alice"));
        writer.record(HistoryRecord::Message {
            conv: bob.clone(),
            ts: 3,
            from: uid("alice"),
            text: "on its way".into(),
            offline: false,
            outgoing: true,
            delivery: Delivery::Sending(7),
        });
        let Some(HistoryReport::Loaded(Ok(loaded))) = rx.blocking_recv() else {
            panic!("the history is loaded first");
        };
        assert_eq!(loaded.len(), 1);
        assert_eq!(texts(&loaded[0].page.entries), ["from last time"]);
        writer.record(HistoryRecord::Delivery {
            id: 7,
            delivery: Delivery::Failed,
            ts: 4,
        });
        writer.close();
        let store = HistoryStore::open(&dir, &uid("alice")).unwrap();
        let loaded = store.load(10, 10).unwrap();
        let entries = &loaded[0].page.entries;
        assert_eq!(
            texts(entries),
            ["from last time", "racing the login", "on its way"]
        );
        assert!(matches!(
            entries[2].kind,
            EntryKind::Message {
                delivery: Delivery::Failed,
                ..
            }
        ));
        assert_eq!(entries[2].ts, 4);
        assert!(rx.try_recv().is_err(), "no failure was reported");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_writer_reports_a_file_it_cannot_open() {
        let dir = temp_dir("writer-newer");
        std::fs::create_dir_all(&dir).unwrap();
        Connection::open(path_in(&dir, &uid("alice")))
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 5)
            .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let writer = HistoryWriter::start(dir.clone(), move |r| {
            let _ = tx.send(r);
        })
        .unwrap();
        writer.open(uid("alice"));
        writer.record(msg(&peer("bob"), "bob", "dropped", 1));
        let Some(HistoryReport::Loaded(Err(e))) = rx.blocking_recv() else {
            panic!("the failure is reported");
        };
        assert!(e.contains("newer rtm"), "{e}");
        writer.close();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
