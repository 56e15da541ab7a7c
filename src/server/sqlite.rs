//! The durable [`Store`]: one SQLite file in WAL mode, written by one
//! dedicated thread.
//!
//! Why a thread: a commit ends in `fsync`, which must neither stall the hub
//! (it only queues operations, see [`Store`]) nor a tokio worker. The thread
//! owns the only `Connection`; operations reach it through a channel, in
//! submission order, and each carries the [`Completer`] of its ticket.
//!
//! Group commit: the thread takes *every* operation that is queued, runs them
//! all in one transaction (each inside its own savepoint, so one failing
//! operation does not undo the others) and answers them after the single
//! commit. Under load, one fsync serves hundreds of requests; when idle, a
//! lone request still commits at once (no waiting for company).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, params};

use super::store::{
    AttributeEdit, Completer, EditResult, OfflineMessage, Store, StoreError, StoreStats, Ticket,
};
use crate::protocol::{ChannelAttribute, ChannelId, RtmMessage, Uid};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "rtm.sqlite3";

/// Most operations committed in one transaction.
const MAX_BATCH_OPS: usize = 4096;

/// How long a statement waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations; entry `i` brings the schema from version `i` to `i + 1`.
/// Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: channel attributes, empty-channel clock, offline messages.
    "CREATE TABLE channel_attributes (
         channel TEXT NOT NULL,
         key TEXT NOT NULL,
         value TEXT NOT NULL,
         last_update_user_id TEXT NOT NULL,
         last_update_ts INTEGER NOT NULL,
         PRIMARY KEY (channel, key)
     ) WITHOUT ROWID;
     CREATE TABLE channel_empty_since (
         channel TEXT PRIMARY KEY NOT NULL,
         since_ms INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE offline_messages (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         receiver TEXT NOT NULL,
         sender TEXT NOT NULL,
         message TEXT NOT NULL,
         server_received_ts INTEGER NOT NULL
     );
     CREATE INDEX offline_by_receiver ON offline_messages (receiver, seq);
     CREATE INDEX offline_by_ts ON offline_messages (server_received_ts);",
];

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How the writer thread commits.
#[derive(Debug, Clone, Copy)]
pub struct SqliteOptions {
    /// Commit everything that is queued in one transaction (the default).
    /// Off: one transaction per operation (for measurements).
    pub group_commit: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { group_commit: true }
    }
}

/// One queued operation: runs against the open transaction, and is answered
/// once that transaction's fate is known.
trait Job: Send {
    /// Runs the operation; false when it failed (its writes are undone).
    fn run(&mut self, conn: &Connection, path: &Path) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
}

struct TypedJob<T, F> {
    op: Option<F>,
    result: Option<Result<T, StoreError>>,
    done: Completer<T>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send,
    F: FnOnce(&Connection, &Path) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection, path: &Path) -> bool {
        if let Some(op) = self.op.take() {
            self.result = Some(op(conn, path));
        }
        self.result.as_ref().is_some_and(|r| r.is_ok())
    }

    fn finish(self: Box<Self>, commit: Result<(), &StoreError>) {
        let result = match (commit, self.result) {
            (Err(e), _) => Err(StoreError::Backend(e.to_string())),
            (Ok(()), Some(r)) => r,
            (Ok(()), None) => Err(StoreError::Backend("operation did not run".into())),
        };
        self.done.complete(result);
    }
}

/// See the module doc. Dropping the store lets the writer finish what is
/// queued and stop.
pub struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn Job>>,
    path: PathBuf,
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| StoreError::Backend(format!("database {}: {e}", path.display()))
}

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/rtm.sqlite3`, migrating its schema.
    pub fn open_dir(dir: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_dir_with(dir, SqliteOptions::default())
    }

    pub fn open_dir_with(dir: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.to_path_buf(),
            reason: format!("cannot create the data directory: {e}"),
        })?;
        Self::open_with(&dir.join(DB_FILE), options)
    }

    /// Opens the database file `path`, migrating its schema, and starts the writer.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let conn = open_connection(path)?;
        let (jobs, rx) = mpsc::channel::<Box<dyn Job>>();
        let thread_path = path.to_path_buf();
        std::thread::Builder::new()
            .name("rtm-store".into())
            .spawn(move || writer(conn, rx, thread_path, options))
            .map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(SqliteStore {
            jobs,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn submit<T, F>(&self, op: F) -> Ticket<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, ticket) = Ticket::new();
        let job = Box::new(TypedJob {
            op: Some(op),
            result: None,
            done,
        });
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            // The writer is gone; answer with an error instead of hanging.
            job.finish(Err(&StoreError::Closed));
        }
        ticket
    }
}

/// Opens the file, sets durability pragmas and brings the schema up to date.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    // WAL: readers never block the writer; FULL: a commit survives power loss.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), "SQLite refused WAL mode (got {mode})");
    }
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(open_err)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(open_err)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            dir: path.parent().unwrap_or(path).to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let to = i as i64 + 1;
        let tx = conn.transaction().map_err(open_err)?;
        tx.execute_batch(sql).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            reason: format!("migrating the schema to version {to}: {e}"),
        })?;
        tx.pragma_update(None, "user_version", to)
            .map_err(open_err)?;
        tx.commit().map_err(open_err)?;
        tracing::info!(path = %path.display(), "database schema migrated to version {to}");
    }
    Ok(())
}

/// The writer thread: takes what is queued, one transaction, answers all.
fn writer(
    conn: Connection,
    rx: mpsc::Receiver<Box<dyn Job>>,
    path: PathBuf,
    options: SqliteOptions,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(64);
    // Ends when every sender (the store) is gone and the queue is empty.
    while let Ok(first) = rx.recv() {
        batch.push(first);
        if options.group_commit {
            while batch.len() < MAX_BATCH_OPS {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        let commit = run_batch(&conn, &path, &mut batch);
        if let Err(e) = &commit {
            tracing::error!("store commit failed: {e}");
        }
        for job in batch.drain(..) {
            job.finish(commit.as_ref().map(|_| ()));
        }
    }
}

fn run_batch(conn: &Connection, path: &Path, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    let err = db_err(path);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(&err)?;
    for job in batch.iter_mut() {
        // Each job in a savepoint: a failing one is undone alone.
        let savepoint = conn.execute_batch("SAVEPOINT job").is_ok();
        let ok = job.run(conn, path);
        if savepoint {
            if !ok {
                let _ = conn.execute_batch("ROLLBACK TO job");
            }
            let _ = conn.execute_batch("RELEASE job");
        }
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(err(e));
    }
    Ok(())
}

fn uid_from(path: &Path, s: String) -> Result<Uid, StoreError> {
    s.parse().map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("stored user id {s:?} is not valid: {e}"),
    })
}

fn channel_from(path: &Path, s: String) -> Result<ChannelId, StoreError> {
    s.parse().map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("stored channel id {s:?} is not valid: {e}"),
    })
}

fn read_attributes(
    conn: &Connection,
    path: &Path,
    channel: &str,
) -> Result<Vec<ChannelAttribute>, StoreError> {
    let err = db_err(path);
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, value, last_update_user_id, last_update_ts
             FROM channel_attributes WHERE channel = ?1 ORDER BY key",
        )
        .map_err(&err)?;
    let rows = stmt
        .query_map([channel], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(&err)?;
    let mut out = Vec::new();
    for row in rows {
        let (key, value, user, ts) = row.map_err(&err)?;
        out.push(ChannelAttribute {
            key,
            value,
            last_update_user_id: uid_from(path, user)?,
            last_update_ts: ts.max(0) as u64,
        });
    }
    Ok(out)
}

impl Store for SqliteStore {
    fn location(&self) -> String {
        format!("SQLite database {}", self.path.display())
    }

    fn stats(&self) -> Ticket<StoreStats> {
        self.submit(|conn, path| {
            let err = db_err(path);
            let (messages, receivers): (i64, i64) = conn
                .query_row(
                    "SELECT COUNT(*), COUNT(DISTINCT receiver) FROM offline_messages",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(&err)?;
            let channels: i64 = conn
                .query_row(
                    "SELECT COUNT(DISTINCT channel) FROM channel_attributes",
                    [],
                    |r| r.get(0),
                )
                .map_err(&err)?;
            Ok(StoreStats {
                offline_messages: messages as u64,
                offline_receivers: receivers as u64,
                channels_with_attributes: channels as u64,
            })
        })
    }

    fn barrier(&self) -> Ticket<()> {
        self.submit(|_, _| Ok(()))
    }

    fn channel_attributes(&self, channel: &ChannelId) -> Ticket<Vec<ChannelAttribute>> {
        let channel = channel.to_string();
        self.submit(move |conn, path| read_attributes(conn, path, &channel))
    }

    fn update_channel_attributes(
        &self,
        channel: &ChannelId,
        edit: AttributeEdit,
    ) -> Ticket<EditResult> {
        let channel = channel.to_string();
        self.submit(move |conn, path| {
            let current = read_attributes(conn, path, &channel)?;
            let next = match edit(&current) {
                Ok(next) => next,
                Err(refused) => return Ok(Err(refused)),
            };
            let err = db_err(path);
            conn.prepare_cached("DELETE FROM channel_attributes WHERE channel = ?1")
                .and_then(|mut s| s.execute([&channel]))
                .map_err(&err)?;
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO channel_attributes
                     (channel, key, value, last_update_user_id, last_update_ts)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(&err)?;
            for a in &next {
                insert
                    .execute(params![
                        channel,
                        a.key,
                        a.value,
                        a.last_update_user_id.as_str(),
                        a.last_update_ts as i64
                    ])
                    .map_err(&err)?;
            }
            Ok(Ok(next))
        })
    }

    fn set_channel_empty_since(&self, channel: &ChannelId, since_ms: Option<u64>) -> Ticket<()> {
        let channel = channel.to_string();
        self.submit(move |conn, path| {
            let err = db_err(path);
            match since_ms {
                // An earlier record wins: the channel has been empty since then.
                Some(ts) => conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO channel_empty_since (channel, since_ms) VALUES (?1, ?2)",
                    )
                    .and_then(|mut s| s.execute(params![channel, ts as i64])),
                None => conn
                    .prepare_cached("DELETE FROM channel_empty_since WHERE channel = ?1")
                    .and_then(|mut s| s.execute([&channel])),
            }
            .map_err(&err)?;
            Ok(())
        })
    }

    fn mark_all_channels_empty(&self, since_ms: u64) -> Ticket<()> {
        self.submit(move |conn, path| {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO channel_empty_since (channel, since_ms)
                 SELECT DISTINCT channel, ?1 FROM channel_attributes",
            )
            .and_then(|mut s| s.execute([since_ms as i64]))
            .map_err(db_err(path))?;
            Ok(())
        })
    }

    fn sweep_empty_channels(&self, cutoff_ms: u64) -> Ticket<Vec<ChannelId>> {
        self.submit(move |conn, path| {
            let err = db_err(path);
            let expired: Vec<String> = {
                let mut stmt = conn
                    .prepare_cached("SELECT channel FROM channel_empty_since WHERE since_ms < ?1")
                    .map_err(&err)?;
                let rows = stmt
                    .query_map([cutoff_ms as i64], |r| r.get::<_, String>(0))
                    .map_err(&err)?;
                rows.collect::<Result<_, _>>().map_err(&err)?
            };
            let mut cleared = Vec::new();
            for ch in expired {
                conn.prepare_cached("DELETE FROM channel_empty_since WHERE channel = ?1")
                    .and_then(|mut s| s.execute([&ch]))
                    .map_err(&err)?;
                let n = conn
                    .prepare_cached("DELETE FROM channel_attributes WHERE channel = ?1")
                    .and_then(|mut s| s.execute([&ch]))
                    .map_err(&err)?;
                if n > 0 {
                    cleared.push(channel_from(path, ch)?);
                }
            }
            Ok(cleared)
        })
    }

    fn push_offline(
        &self,
        to: &Uid,
        from: &Uid,
        message: &RtmMessage,
        server_received_ts: u64,
        cap: usize,
    ) -> Ticket<()> {
        let to = to.to_string();
        let from = from.to_string();
        let json = serde_json::to_string(message);
        self.submit(move |conn, path| {
            let err = db_err(path);
            let json = json.map_err(|e| StoreError::Backend(format!("encoding a message: {e}")))?;
            conn.prepare_cached(
                "INSERT INTO offline_messages (receiver, sender, message, server_received_ts)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![to, from, json, server_received_ts as i64]))
            .map_err(&err)?;
            // Newest replaces oldest: drop everything older than the cap-th newest.
            conn.prepare_cached(
                "DELETE FROM offline_messages WHERE receiver = ?1 AND seq <= (
                     SELECT seq FROM offline_messages WHERE receiver = ?1
                     ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
            )
            .and_then(|mut s| s.execute(params![to, cap as i64]))
            .map_err(&err)?;
            Ok(())
        })
    }

    fn pending_offline(
        &self,
        to: &Uid,
        min_ts: u64,
        after_seq: u64,
        limit: usize,
    ) -> Ticket<Vec<OfflineMessage>> {
        let to = to.to_string();
        self.submit(move |conn, path| {
            let err = db_err(path);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, sender, message, server_received_ts FROM offline_messages
                     WHERE receiver = ?1 AND seq > ?3 AND server_received_ts >= ?2
                     ORDER BY seq LIMIT ?4",
                )
                .map_err(&err)?;
            let rows = stmt
                .query_map(
                    params![to, min_ts as i64, after_seq as i64, limit as i64],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    },
                )
                .map_err(&err)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, from, json, ts) = row.map_err(&err)?;
                let message = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("offline message {seq} cannot be read: {e}"),
                })?;
                out.push(OfflineMessage {
                    seq: seq as u64,
                    from: uid_from(path, from)?,
                    message,
                    server_received_ts: ts.max(0) as u64,
                });
            }
            Ok(out)
        })
    }

    fn ack_offline(&self, to: &Uid, up_to_seq: u64) -> Ticket<()> {
        let to = to.to_string();
        self.submit(move |conn, path| {
            conn.prepare_cached("DELETE FROM offline_messages WHERE receiver = ?1 AND seq <= ?2")
                .and_then(|mut s| s.execute(params![to, up_to_seq as i64]))
                .map_err(db_err(path))?;
            Ok(())
        })
    }

    fn purge_offline(&self, before_ts: u64) -> Ticket<u64> {
        self.submit(move |conn, path| {
            let n = conn
                .prepare_cached("DELETE FROM offline_messages WHERE server_received_ts < ?1")
                .and_then(|mut s| s.execute([before_ts as i64]))
                .map_err(db_err(path))?;
            Ok(n as u64)
        })
    }
}
