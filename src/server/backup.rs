//! `rtm backup`: a consistent copy of the server's SQLite database, taken
//! with SQLite's online backup API while a server may be running on it.
//!
//! The backup only reads the live database, so it does not take the server's
//! lock file (`rtm.sqlite3.lock`): the server keeps the database for itself as
//! a *writer*, and a reader in WAL mode neither blocks it nor is blocked by
//! it. All pages are copied in one step, inside one read transaction, so the
//! copy is one moment of the database (commits made meanwhile are simply not
//! in it) and the copy never has to restart under a busy server.
//!
//! The copy is written next to its destination under a temporary name,
//! checked, switched out of WAL mode (one self-contained file, no `-wal` or
//! `-shm` beside it), flushed to disk and only then renamed into place: a
//! failed or interrupted backup never leaves a half-written file under the
//! name an operator would restore from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::sqlite::DB_FILE;
use super::store::StoreStats;

/// How long the backup waits for a lock of the live database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts at the single copy step when the database is busy.
const BUSY_RETRIES: usize = 50;

/// Why a backup could not be made; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "there is no server database at {path}: is --data the directory `rtm serve` uses (the one holding {DB_FILE})?"
    )]
    NoDatabase { path: PathBuf },
    #[error("cannot read the server database {path}: {reason}")]
    Source { path: PathBuf, reason: String },
    #[error(
        "cannot write the backup to {path}: {reason}. Check that its directory exists, has free space and is writable by this user"
    )]
    Destination { path: PathBuf, reason: String },
    #[error("{path} already exists; pass --force to replace it, or pick another name")]
    Exists { path: PathBuf },
    #[error(
        "{path} is the live database itself; write the backup somewhere else (ideally another disk)"
    )]
    SameFile { path: PathBuf },
    #[error("the copy of {path} failed: {reason}; nothing was written")]
    Copy { path: PathBuf, reason: String },
}

/// What a finished backup holds.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The database that was copied.
    pub source: PathBuf,
    /// The file written.
    pub destination: PathBuf,
    /// Size of the copy, in bytes.
    pub bytes: u64,
    /// Its schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    /// What it holds, counted in the copy.
    pub stats: StoreStats,
}

/// Where the backup of `out` goes: `out` itself, or `out/rtm.sqlite3` when
/// `out` is an existing directory.
pub fn destination_file(out: &Path) -> PathBuf {
    if out.is_dir() {
        out.join(DB_FILE)
    } else {
        out.to_path_buf()
    }
}

/// Copies `<data_dir>/rtm.sqlite3` to `out` (a file, or a directory to hold
/// `rtm.sqlite3`). An existing file is replaced only with `force`.
pub fn backup(data_dir: &Path, out: &Path, force: bool) -> Result<BackupReport, BackupError> {
    let source = data_dir.join(DB_FILE);
    if !source.is_file() {
        return Err(BackupError::NoDatabase { path: source });
    }
    let destination = destination_file(out);
    let dest_err = |reason: String| BackupError::Destination {
        path: destination.clone(),
        reason,
    };
    if let (Ok(a), Ok(b)) = (source.canonicalize(), destination.canonicalize())
        && a == b
    {
        return Err(BackupError::SameFile { path: destination });
    }
    if destination.exists() && !force {
        return Err(BackupError::Exists { path: destination });
    }
    let parent = match destination.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(dest_err(format!(
            "the directory {} does not exist",
            parent.display()
        )));
    }
    let mut tmp_name = destination.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".partial-{}", std::process::id()));
    let tmp = parent.join(tmp_name);
    let result = copy_to(&source, &tmp, &destination);
    if result.is_err() {
        remove_with_sidecars(&tmp);
        return result;
    }
    std::fs::rename(&tmp, &destination).map_err(|e| {
        remove_with_sidecars(&tmp);
        dest_err(e.to_string())
    })?;
    // The rename itself survives a crash only once the directory is flushed.
    if let Ok(dir) = std::fs::File::open(&parent) {
        let _ = dir.sync_all();
    }
    result
}

/// The copy into `tmp`, checked and flushed; the report names `destination`.
fn copy_to(source: &Path, tmp: &Path, destination: &Path) -> Result<BackupReport, BackupError> {
    let src_err = |e: rusqlite::Error| BackupError::Source {
        path: source.to_path_buf(),
        reason: e.to_string(),
    };
    let tmp_err = |e: String| BackupError::Destination {
        path: destination.to_path_buf(),
        reason: e,
    };
    // Read-only, and never created: a wrong --data must not leave an empty
    // database behind. (Reading a WAL database still maps its `-shm` file.)
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(src_err)?;
    src.busy_timeout(BUSY_TIMEOUT).map_err(src_err)?;
    // Fails here, with a clear message, on a file that is not a database.
    src.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(src_err)?;

    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| tmp_err(e.to_string()))?;
    let mut dst = Connection::open(tmp).map_err(|e| tmp_err(e.to_string()))?;
    {
        let backup =
            rusqlite::backup::Backup::new(&src, &mut dst).map_err(|e| copy_err(source, e))?;
        // -1: every page in one step, in one read transaction of the source.
        let mut tries = 0;
        loop {
            use rusqlite::backup::StepResult;
            match backup.step(-1).map_err(|e| copy_err(source, e))? {
                StepResult::Done => break,
                StepResult::More => continue,
                StepResult::Busy | StepResult::Locked if tries < BUSY_RETRIES => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(BackupError::Copy {
                        path: source.to_path_buf(),
                        reason: "the database stayed locked for too long".into(),
                    });
                }
                _ => continue,
            }
        }
    }
    drop(src);
    // One self-contained file: rollback journal, not WAL (the server turns
    // WAL back on when it opens the copy).
    let verify_err = |e: rusqlite::Error| BackupError::Copy {
        path: source.to_path_buf(),
        reason: format!("the copy cannot be read back: {e}"),
    };
    let _: String = dst
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(verify_err)?;
    let check: String = dst
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(verify_err)?;
    if check != "ok" {
        return Err(BackupError::Copy {
            path: source.to_path_buf(),
            reason: format!("the copy fails its integrity check: {check}"),
        });
    }
    let schema_version: i64 = dst
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(verify_err)?;
    let stats = count(&dst).map_err(verify_err)?;
    dst.close().map_err(|(_, e)| verify_err(e))?;
    let file = std::fs::File::open(tmp).map_err(|e| tmp_err(e.to_string()))?;
    file.sync_all().map_err(|e| tmp_err(e.to_string()))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        source: source.to_path_buf(),
        destination: destination.to_path_buf(),
        bytes,
        schema_version,
        stats,
    })
}

fn copy_err(source: &Path, e: rusqlite::Error) -> BackupError {
    BackupError::Copy {
        path: source.to_path_buf(),
        reason: e.to_string(),
    }
}

/// What the copy holds; an empty database (no schema yet) holds nothing.
fn count(conn: &Connection) -> Result<StoreStats, rusqlite::Error> {
    let has_table = |name: &str| -> Result<bool, rusqlite::Error> {
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    let mut stats = StoreStats::default();
    if has_table("offline_messages")? {
        let (messages, receivers): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COUNT(DISTINCT receiver) FROM offline_messages",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        stats.offline_messages = messages as u64;
        stats.offline_receivers = receivers as u64;
    }
    if has_table("channel_attributes")? {
        let channels: i64 = conn.query_row(
            "SELECT COUNT(DISTINCT channel) FROM channel_attributes",
            [],
            |r| r.get(0),
        )?;
        stats.channels_with_attributes = channels as u64;
    }
    Ok(stats)
}

/// Removes a temporary copy and any journal SQLite left beside it.
fn remove_with_sidecars(path: &Path) {
    let _ = std::fs::remove_file(path);
    for suffix in ["-journal", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rtm-backup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_missing_database_is_named_and_not_created() {
        let d = temp_dir("missing");
        let err = backup(&d, &d.join("out.sqlite3"), false).unwrap_err();
        assert!(matches!(err, BackupError::NoDatabase { .. }), "{err}");
        assert!(!d.join(DB_FILE).exists());
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn copies_into_a_directory_refuses_to_overwrite_and_to_a_missing_dir() {
        let d = temp_dir("copy");
        let data = d.join("data");
        std::fs::create_dir_all(&data).unwrap();
        {
            let c = Connection::open(data.join(DB_FILE)).unwrap();
            c.execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE offline_messages (seq INTEGER PRIMARY KEY, receiver TEXT);
                 INSERT INTO offline_messages (receiver) VALUES ('bob'), ('bob'), ('carol');",
            )
            .unwrap();
        }
        let out = d.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let r = backup(&data, &out, false).unwrap();
        assert_eq!(r.destination, out.join(DB_FILE));
        assert_eq!(r.stats.offline_messages, 3);
        assert_eq!(r.stats.offline_receivers, 2);
        assert!(r.bytes > 0);
        let err = backup(&data, &out, false).unwrap_err();
        assert!(matches!(err, BackupError::Exists { .. }), "{err}");
        backup(&data, &out, true).expect("--force replaces");
        let err = backup(&data, &d.join("nope/x.sqlite3"), false).unwrap_err();
        assert!(matches!(err, BackupError::Destination { .. }), "{err}");
        let err = backup(&data, &data, true).unwrap_err();
        assert!(matches!(err, BackupError::SameFile { .. }), "{err}");
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        std::fs::remove_dir_all(&d).ok();
    }
}
