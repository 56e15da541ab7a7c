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

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, MAIN_DB, params};

use super::store::{
    AttributeEdit, Completer, EditResult, OfflineMessage, OfflineQuota, Store, StoreError,
    StoreStats, Ticket,
};
use crate::protocol::{ChannelAttribute, ChannelId, RtmMessage, Uid};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "rtm.sqlite3";

/// Suffix of the lock file next to the database (`rtm.sqlite3.lock`): held
/// exclusively by the one server that uses the database, and holding its pid.
pub const LOCK_SUFFIX: &str = ".lock";

/// Lines of `PRAGMA quick_check` output quoted in a refusal.
const MAX_CHECK_LINES: usize = 5;

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
    // 2: compact offline messages and what the quotas count. A row with a
    // `kind` holds the body as it is (no JSON escaping: a 32 KB text of
    // control characters took 6 times its size); rows of version 1 keep their
    // JSON in `message` (kind NULL) until delivered or expired. `bytes` is
    // the body size the quotas count; `offline_totals` keeps the server-wide
    // sums up to date on every insert and delete, whoever deletes.
    "ALTER TABLE offline_messages ADD COLUMN kind INTEGER;
     ALTER TABLE offline_messages ADD COLUMN body BLOB;
     ALTER TABLE offline_messages ADD COLUMN description TEXT;
     ALTER TABLE offline_messages ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
     UPDATE offline_messages SET bytes = length(CAST(message AS BLOB));
     CREATE INDEX offline_by_sender ON offline_messages (sender, server_received_ts);
     CREATE TABLE offline_totals (
         id INTEGER PRIMARY KEY CHECK (id = 0),
         messages INTEGER NOT NULL,
         bytes INTEGER NOT NULL
     );
     INSERT INTO offline_totals SELECT 0, COUNT(*), COALESCE(SUM(bytes), 0) FROM offline_messages;
     CREATE TRIGGER offline_totals_insert AFTER INSERT ON offline_messages BEGIN
         UPDATE offline_totals SET messages = messages + 1, bytes = bytes + NEW.bytes WHERE id = 0;
     END;
     CREATE TRIGGER offline_totals_delete AFTER DELETE ON offline_messages BEGIN
         UPDATE offline_totals SET messages = messages - 1, bytes = bytes - OLD.bytes WHERE id = 0;
     END;
     CREATE TABLE server_meta (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;",
];

/// `offline_messages.kind` of a TEXT message (`body`: its UTF-8 text).
const KIND_TEXT: i64 = 0;
/// `offline_messages.kind` of a RAW message (`body`: its bytes).
const KIND_RAW: i64 = 1;

/// The columns [`message_from_row`] reads, in its order; every read of
/// offline messages selects them.
pub const MESSAGE_COLUMNS: &str = "kind, body, description, message";

/// Turns the columns of [`MESSAGE_COLUMNS`], starting at `first`, back into
/// the message: the one place that knows the stored format (compact rows of
/// schema 2, JSON rows of schema 1).
pub fn message_from_row(
    row: &rusqlite::Row<'_>,
    first: usize,
    seq: i64,
    path: &Path,
) -> Result<RtmMessage, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("offline message {seq} cannot be read: {reason}"),
    };
    let get = |e: rusqlite::Error| corrupt(e.to_string());
    let kind: Option<i64> = row.get(first).map_err(get)?;
    match kind {
        Some(KIND_TEXT) => {
            let body: Vec<u8> = row.get(first + 1).map_err(get)?;
            let text = String::from_utf8(body).map_err(|e| corrupt(e.to_string()))?;
            Ok(RtmMessage::Text { text })
        }
        Some(KIND_RAW) => Ok(RtmMessage::Raw {
            raw: row.get(first + 1).map_err(get)?,
            description: row
                .get::<_, Option<String>>(first + 2)
                .map_err(get)?
                .unwrap_or_default(),
        }),
        Some(other) => Err(corrupt(format!("unknown kind {other}"))),
        None => {
            let json: String = row.get(first + 3).map_err(get)?;
            serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))
        }
    }
}

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

/// What the writer thread is asked to do.
enum Command {
    /// An operation, run in the next transaction.
    Job(Box<dyn Job>),
    /// Fold the WAL into the main file, close the database and release the
    /// lock (a clean stop); answered once all that is done.
    Close(Completer<()>),
}

/// See the module doc. [`Store::shutdown`], or dropping the store, lets the
/// writer finish what is queued, checkpoint and close the database, and only
/// then release the lock of the data directory.
pub struct SqliteStore {
    /// `None` only while dropping (closing the channel stops the writer).
    jobs: Option<mpsc::Sender<Command>>,
    writer: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the store's writer thread panicked");
        }
    }
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

    /// Opens the database file `path` for this process alone (its lock file
    /// `<path>.lock`), checks it, migrates its schema, and starts the writer.
    /// Refuses a database that is in use, damaged or cannot be written.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let lock = lock_database(path)?;
        let conn = open_connection(path)?;
        let (jobs, rx) = mpsc::channel::<Command>();
        let thread_path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("rtm-store".into())
            .spawn(move || writer(conn, lock, rx, thread_path, options))
            .map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(SqliteStore {
            jobs: Some(jobs),
            writer: Some(writer),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, command: Command) {
        let Some(jobs) = &self.jobs else { return };
        if let Err(mpsc::SendError(command)) = jobs.send(command) {
            // The writer is gone; answer with an error instead of hanging.
            match command {
                Command::Job(job) => job.finish(Err(&StoreError::Closed)),
                Command::Close(done) => done.complete(Err(StoreError::Closed)),
            }
        }
    }

    fn submit<T, F>(&self, op: F) -> Ticket<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, ticket) = Ticket::new();
        self.send(Command::Job(Box::new(TypedJob {
            op: Some(op),
            result: None,
            done,
        })));
        ticket
    }
}

/// Takes the exclusive lock of the database at `path` and writes this
/// process's id into the lock file, or says who holds it. The lock is an OS
/// file lock (`flock`): it goes away with its process, so a crashed server
/// leaves nothing stale behind.
fn lock_database(path: &Path) -> Result<File, StoreError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(LOCK_SUFFIX);
    let lock_file = path.with_file_name(name);
    let dir = path.parent().unwrap_or(path).to_path_buf();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_file)
        .map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            reason: format!(
                "cannot open its lock file {} for writing ({e}); the server must be able to write in its data directory: check its owner and permissions",
                lock_file.display()
            ),
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(StoreError::Locked {
                dir,
                lock_file,
                holder: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                reason: format!("cannot lock {}: {e}", lock_file.display()),
            });
        }
    }
    let written = file
        .set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.flush());
    if let Err(e) = written {
        // The lock holds all the same; only the message for a second
        // server loses the pid.
        tracing::warn!("cannot write the pid into {}: {e}", lock_file.display());
    }
    Ok(file)
}

/// Opens the file, checks that it is sound and writable, sets durability
/// pragmas and brings the schema up to date.
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    // SQLite silently falls back to read-only when it may not write the
    // file; the server would then start and hand out the same messages at
    // every login, never able to delete them.
    if conn.is_readonly(MAIN_DB).map_err(open_err)? {
        return Err(unwritable(path, "the file is read-only for this user"));
    }
    check_integrity(&conn, path)?;
    // WAL: readers never block the writer; FULL: a commit survives power loss.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| unwritable(path, &e.to_string()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), "SQLite refused WAL mode (got {mode})");
    }
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(open_err)?;
    migrate(&mut conn, path)?;
    // A real write, so a database that cannot be written (permissions, a
    // full disk, a file size limit) is refused now rather than failing
    // every request later.
    conn.execute(
        "INSERT OR REPLACE INTO server_meta (key, value) VALUES ('last_start_pid', ?1)",
        [std::process::id()],
    )
    .map_err(|e| unwritable(path, &e.to_string()))?;
    Ok(conn)
}

fn unwritable(path: &Path, what: &str) -> StoreError {
    StoreError::Open {
        path: path.to_path_buf(),
        reason: format!(
            "it cannot be written ({what}); the server must write its data: check free space, the file size limit (ulimit -f), and the owner and permissions of the file and its directory"
        ),
    }
}

/// Refuses a damaged file: SQLite would otherwise serve what it can read
/// and fail (or find nothing) where a page is bad, silently emptying a
/// mailbox. `quick_check` reads every page; it takes about a second per GB.
fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let damaged = |problems: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!(
            "{problems}. Stop here and keep a copy of the whole data directory. Then restore {file} from a backup, or salvage what is readable with `sqlite3 {file} .recover | sqlite3 recovered.sqlite3` and put recovered.sqlite3 in its place",
            file = path.display()
        ),
    };
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| damaged(e.to_string()))?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| damaged(e.to_string()))?;
    if lines.len() == 1 && lines[0] == "ok" {
        return Ok(());
    }
    let mut problems = lines
        .iter()
        .take(MAX_CHECK_LINES)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if lines.len() > MAX_CHECK_LINES {
        problems.push_str(&format!(" (and {} more)", lines.len() - MAX_CHECK_LINES));
    }
    Err(damaged(problems))
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
/// It owns the database and its lock: a second server on the same data
/// would deliver the same offline messages again and clear attributes of
/// channels in use elsewhere. When the store closes (or is dropped) it
/// checkpoints, so a clean stop leaves every byte in the main file, closes
/// the database, and only then releases the lock.
fn writer(
    conn: Connection,
    lock: File,
    rx: mpsc::Receiver<Command>,
    path: PathBuf,
    options: SqliteOptions,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(64);
    // A close that arrived while a batch was being collected; it comes after
    // that batch, keeping submission order.
    let mut close: Option<Completer<()>> = None;
    // Ends when every sender (the store) is gone and the queue is empty, or
    // at a close.
    while close.is_none() {
        let Ok(first) = rx.recv() else { break };
        match first {
            Command::Close(done) => {
                close = Some(done);
                break;
            }
            Command::Job(job) => batch.push(job),
        }
        if options.group_commit {
            while batch.len() < MAX_BATCH_OPS {
                match rx.try_recv() {
                    Ok(Command::Job(job)) => batch.push(job),
                    Ok(Command::Close(done)) => {
                        close = Some(done);
                        break;
                    }
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
    // Whatever is still queued behind a close is answered `Closed` when
    // `rx` goes.
    drop(rx);
    let result = checkpoint(&conn, &path);
    if let Err(e) = &result {
        tracing::warn!("store: final checkpoint: {e}");
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!("store: closing {}: {e}", path.display());
    }
    drop(lock);
    if let Some(done) = close {
        done.complete(result);
    }
}

/// Copies every committed page from the WAL into the main file and empties
/// the WAL, so the main file alone is a complete copy.
fn checkpoint(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .map_err(db_err(path))?;
    if busy != 0 {
        return Err(StoreError::Backend(format!(
            "database {}: the checkpoint could not finish (a reader was busy)",
            path.display()
        )));
    }
    Ok(())
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

    fn shutdown(&self) -> Ticket<()> {
        let (done, ticket) = Ticket::new();
        self.send(Command::Close(done));
        ticket
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
        quota: &OfflineQuota,
    ) -> Ticket<()> {
        let to = to.to_string();
        let from = from.to_string();
        let quota = *quota;
        // The body as it is: the text's bytes or the raw bytes, never a
        // JSON-escaped frame (which made some texts 6 times larger).
        // Media messages (small: the file is elsewhere) keep their JSON
        // form, which `message_from_row` reads for a row without a kind.
        let (kind, body, description, json) = match message {
            RtmMessage::Text { text } => (
                Some(KIND_TEXT),
                text.as_bytes().to_vec(),
                None,
                String::new(),
            ),
            RtmMessage::Raw { raw, description } => (
                Some(KIND_RAW),
                raw.clone(),
                Some(description.clone()),
                String::new(),
            ),
            _ => (
                None,
                Vec::new(),
                None,
                serde_json::to_string(message).unwrap_or_default(),
            ),
        };
        let bytes = message.size() as u64;
        self.submit(move |conn, path| {
            let err = db_err(path);
            let ts = server_received_ts as i64;
            let (sender_messages, sender_bytes): (i64, i64) = conn
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM offline_messages
                     WHERE sender = ?1 AND server_received_ts >= ?2",
                )
                .and_then(|mut s| {
                    let since = server_received_ts.saturating_sub(quota.sender_window_ms) as i64;
                    s.query_row(params![from, since], |r| Ok((r.get(0)?, r.get(1)?)))
                })
                .map_err(&err)?;
            let total: i64 = conn
                .prepare_cached("SELECT bytes FROM offline_totals WHERE id = 0")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(&err)?;
            quota
                .check(bytes, sender_messages as u64, sender_bytes as u64, total.max(0) as u64)
                .map_err(StoreError::Quota)?;
            conn.prepare_cached(
                "INSERT INTO offline_messages
                 (receiver, sender, message, kind, body, description, bytes, server_received_ts)
                 VALUES (?1, ?2, ?8, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![to, from, kind, body, description, bytes as i64, ts, json])
            })
            .map_err(&err)?;
            // Newest replace oldest: keep the newest messages that fit both
            // the count and the bytes of a mailbox.
            let mut evict_up_to = None;
            {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT seq, bytes FROM offline_messages WHERE receiver = ?1 ORDER BY seq DESC",
                    )
                    .map_err(&err)?;
                let mut rows = stmt.query([&to]).map_err(&err)?;
                let (mut count, mut kept) = (0usize, 0u64);
                while let Some(row) = rows.next().map_err(&err)? {
                    let seq: i64 = row.get(0).map_err(&err)?;
                    let size: i64 = row.get(1).map_err(&err)?;
                    count += 1;
                    kept += size.max(0) as u64;
                    if count > quota.per_receiver_messages
                        || (quota.per_receiver_bytes > 0 && kept > quota.per_receiver_bytes)
                    {
                        evict_up_to = Some(seq);
                        break;
                    }
                }
            }
            if let Some(seq) = evict_up_to {
                conn.prepare_cached("DELETE FROM offline_messages WHERE receiver = ?1 AND seq <= ?2")
                    .and_then(|mut s| s.execute(params![to, seq]))
                    .map_err(&err)?;
            }
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
                .prepare_cached(&format!(
                    "SELECT seq, sender, server_received_ts, {MESSAGE_COLUMNS} FROM offline_messages
                     WHERE receiver = ?1 AND seq > ?3 AND server_received_ts >= ?2
                     ORDER BY seq LIMIT ?4"
                ))
                .map_err(&err)?;
            let mut rows = stmt
                .query(params![to, min_ts as i64, after_seq as i64, limit as i64])
                .map_err(&err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(&err)? {
                let seq: i64 = row.get(0).map_err(&err)?;
                let from: String = row.get(1).map_err(&err)?;
                let ts: i64 = row.get(2).map_err(&err)?;
                out.push(OfflineMessage {
                    seq: seq as u64,
                    from: uid_from(path, from)?,
                    message: message_from_row(row, 3, seq, path)?,
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
