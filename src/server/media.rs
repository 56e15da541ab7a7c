//! Files and images (spec §9, PROTOCOL.md §16): stored on disk in the data
//! directory, streamed in and out over a separate transfer connection
//! (`/media`), checked by SHA-256, kept 7 days, counted against per-user and
//! total quotas.
//!
//! Layout of `<data>/media/`: for each file `<id>.json` (who uploaded it,
//! size, hash, name, when) and either `<id>.part` (an upload under way or
//! broken, resumable for a while) or `<id>` (complete). The index is kept in
//! memory and rebuilt from the `.json` files at start-up; what is expired,
//! half-written or orphaned then is deleted.
//!
//! A chat session asks for a one-time *ticket* (`request_media_upload`,
//! `request_media_download`); a transfer connection presents it as its first
//! frame. Tickets are 128 random bits, expire after a minute, and are the
//! only way to read a file, so only logged-in users can.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::clock::Clock;
use crate::protocol::{
    ErrorBody, ErrorKind, MAX_CONCURRENT_TRANSFERS, MEDIA_CHUNK_BYTES, MediaHello,
    MediaServerFrame, MediaType, Reply, Uid, check_file_name, check_media_id, check_media_size,
    check_sha256_hex,
};

/// Serves a transfer connection on the low-priority runtime
/// (`crate::lowprio`) and waits for it; the socket stays registered with the
/// caller's runtime, only the work moves.
pub async fn serve_transfer<S>(store: Arc<MediaStore>, ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if let Err(e) = crate::lowprio::run(store.serve(ws)).await {
        tracing::warn!("media transfer stopped: {e}");
    }
}

/// How long a transfer connection may take to present its ticket.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Media settings; defaults come from the shipped `server.toml`.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Where files go (`<data>/media`); `None` for a server without a data
    /// directory, which then refuses uploads with a clear error.
    pub dir: Option<PathBuf>,
    /// Complete files are deleted this long after their upload.
    pub ttl: Duration,
    /// A broken upload can be resumed for this long after its last byte.
    pub partial_ttl: Duration,
    /// Most bytes one user's files (complete and under way) may take.
    pub per_user_bytes: u64,
    /// Most bytes all files together may take.
    pub total_bytes: u64,
    /// A ticket not presented within this long is void.
    pub ticket_ttl: Duration,
    /// A transfer connection silent this long is closed (the reference's
    /// 120 s).
    pub idle_timeout: Duration,
}

/// What `<id>.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    owner: Uid,
    media_type: MediaType,
    size: u64,
    sha256: String,
    file_name: String,
    /// When the upload began, then when it completed (ms since the epoch).
    created_ms: u64,
    complete: bool,
}

/// One file in the index.
#[derive(Debug)]
struct Item {
    meta: Meta,
    /// For a partial upload: when a byte last arrived (ms since the epoch).
    touched_ms: u64,
    /// A transfer connection is writing it now.
    writing: bool,
}

#[derive(Debug, Clone)]
enum Purpose {
    Upload,
    Download { offset: u64 },
}

#[derive(Debug)]
struct Ticket {
    uid: Uid,
    media_id: String,
    purpose: Purpose,
    expires: Instant,
}

#[derive(Default)]
struct State {
    items: HashMap<String, Item>,
    tickets: HashMap<String, Ticket>,
    /// Per user: tickets outstanding plus transfers running.
    active: HashMap<Uid, usize>,
    /// Per user: bytes of their files (partial ones at their full size).
    used: HashMap<Uid, u64>,
    total: u64,
}

impl State {
    fn release(&mut self, uid: &Uid) {
        if let Some(n) = self.active.get_mut(uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.active.remove(uid);
            }
        }
    }

    fn forget(&mut self, id: &str) -> Option<Item> {
        let item = self.items.remove(id)?;
        let size = item.meta.size;
        if let Some(u) = self.used.get_mut(&item.meta.owner) {
            *u = u.saturating_sub(size);
            if *u == 0 {
                self.used.remove(&item.meta.owner);
            }
        }
        self.total = self.total.saturating_sub(size);
        Some(item)
    }

    fn add(&mut self, id: String, item: Item) {
        *self.used.entry(item.meta.owner.clone()).or_default() += item.meta.size;
        self.total += item.meta.size;
        self.items.insert(id, item);
    }
}

/// The files of one server; shared by the hub (tickets) and the transfer
/// connections (bytes).
pub struct MediaStore {
    config: MediaConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

fn err(kind: ErrorKind, message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(kind, message)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 128 random bits as 32 hex digits: media ids and tickets.
fn random_id() -> Result<String, ErrorBody> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        err(
            ErrorKind::Unknown,
            format!("the server has no randomness for an id ({e}); retry later"),
        )
    })?;
    Ok(hex(&bytes))
}

fn not_exist(media_id: &str) -> ErrorBody {
    err(
        ErrorKind::NotExist,
        format!(
            "no file with media id {media_id}: it never existed, was canceled, or expired (files \
             are kept 7 days)"
        ),
    )
}

fn io_err(what: &str, e: io::Error) -> ErrorBody {
    tracing::error!("media: {what}: {e}");
    err(
        ErrorKind::Unknown,
        format!("the server could not {what} ({e}); nothing was kept, retry later"),
    )
}

/// SHA-256 of a file, read in chunks (never the whole file in memory).
async fn hash_file(path: &Path) -> io::Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

impl MediaStore {
    /// Opens the store: rebuilds the index from `dir`, deleting what is
    /// expired, half-written past its time, or orphaned.
    pub fn open(config: MediaConfig, clock: Arc<dyn Clock>) -> Arc<Self> {
        let store = Arc::new(MediaStore {
            config,
            clock,
            state: Mutex::new(State::default()),
        });
        if let Some(dir) = store.config.dir.clone() {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::error!("media: cannot create {}: {e}", dir.display());
            }
            store.load(&dir);
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path(&self, id: &str, suffix: &str) -> Option<PathBuf> {
        self.config
            .dir
            .as_ref()
            .map(|d| d.join(format!("{id}{suffix}")))
    }

    fn load(&self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let mut seen = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let Some(id) = name.strip_suffix(".json") else {
                seen.push(name);
                continue;
            };
            let meta = std::fs::read(entry.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<Meta>(&b).ok());
            let Some(meta) = meta else {
                tracing::warn!("media: unreadable {name}; deleting it");
                let _ = std::fs::remove_file(entry.path());
                continue;
            };
            let touched_ms = std::fs::metadata(dir.join(format!("{id}.part")))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(meta.created_ms, |d| d.as_millis() as u64);
            if meta.complete && !dir.join(id).exists() {
                tracing::warn!("media: {id} is recorded but its file is gone; forgetting it");
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            let item = Item {
                meta,
                touched_ms,
                writing: false,
            };
            st.add(id.to_string(), item);
        }
        drop(st);
        // Files without an index entry (a crash between writes) go.
        for name in seen {
            let id = name.strip_suffix(".part").unwrap_or(&name);
            if !self.lock().items.contains_key(id) {
                let _ = std::fs::remove_file(dir.join(&name));
            }
        }
        self.sweep_at(now);
    }

    async fn write_meta_off_thread(&self, id: &str, meta: &Meta) -> Result<(), ErrorBody> {
        let (Some(path), Some(tmp)) = (self.path(id, ".json"), self.path(id, ".json.tmp")) else {
            return Err(no_dir());
        };
        let bytes = serde_json::to_vec(meta).unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path))
        })
        .await
        .map_err(|e| io_err("record the file", io::Error::other(e)))?
        .map_err(|e| io_err("record the file", e))
    }

    /// Deletes a file's bytes and record in the background: callers run on
    /// chat connections and the sweeper, which must not wait on the disk.
    fn remove_files(&self, id: &str) {
        let paths: Vec<PathBuf> = ["", ".part", ".json"]
            .iter()
            .filter_map(|suffix| self.path(id, suffix))
            .collect();
        let remove = move || {
            for p in paths {
                let _ = std::fs::remove_file(p);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }

    fn take_slot(&self, st: &mut State, uid: &Uid) -> Result<(), ErrorBody> {
        let n = st.active.entry(uid.clone()).or_default();
        if *n >= MAX_CONCURRENT_TRANSFERS {
            return Err(err(
                ErrorKind::ConcurrencyLimitExceeded,
                format!(
                    "you already have {MAX_CONCURRENT_TRANSFERS} uploads and downloads under way; \
                     wait for one to finish"
                ),
            ));
        }
        *n += 1;
        Ok(())
    }

    fn issue_ticket(
        &self,
        st: &mut State,
        uid: &Uid,
        media_id: &str,
        purpose: Purpose,
    ) -> Result<String, ErrorBody> {
        let ticket = random_id()?;
        st.tickets.insert(
            ticket.clone(),
            Ticket {
                uid: uid.clone(),
                media_id: media_id.to_string(),
                purpose,
                expires: Instant::now() + self.config.ticket_ttl,
            },
        );
        Ok(ticket)
    }

    /// `request_media_upload`.
    pub fn request_upload(
        &self,
        uid: &Uid,
        media_type: MediaType,
        size: u64,
        sha256: &str,
        file_name: &str,
        resume: Option<&str>,
    ) -> Result<Reply, ErrorBody> {
        if self.config.dir.is_none() {
            return Err(no_dir());
        }
        check_media_size(size)?;
        check_sha256_hex(sha256)?;
        check_file_name(file_name)?;
        let mut st = self.lock();
        if let Some(id) = resume {
            check_media_id(id)?;
            let offset = match st.items.get(id) {
                Some(item)
                    if &item.meta.owner == uid
                        && !item.meta.complete
                        && item.meta.size == size
                        && item.meta.sha256 == sha256 =>
                {
                    self.path(id, ".part")
                        .and_then(|p| std::fs::metadata(p).ok())
                        .map_or(0, |m| m.len().min(size))
                }
                _ => {
                    return Err(err(
                        ErrorKind::NotExist,
                        format!(
                            "no unfinished upload {id} of this file of yours to resume (it \
                             finished, was canceled, or was dropped); upload it again"
                        ),
                    ));
                }
            };
            self.take_slot(&mut st, uid)?;
            let ticket = self.issue_ticket(&mut st, uid, id, Purpose::Upload)?;
            return Ok(Reply::MediaUploadTicket {
                media_id: id.to_string(),
                ticket,
                offset,
                expires_in_ms: self.config.ticket_ttl.as_millis() as u64,
            });
        }
        let used = st.used.get(uid).copied().unwrap_or(0);
        if self.config.per_user_bytes > 0 && used + size > self.config.per_user_bytes {
            return Err(err(
                ErrorKind::QuotaExceeded,
                format!(
                    "your files on this server take {used} bytes; this one ({size} bytes) would \
                     pass your quota of {} bytes. Files are deleted 7 days after upload",
                    self.config.per_user_bytes
                ),
            ));
        }
        if self.config.total_bytes > 0 && st.total + size > self.config.total_bytes {
            return Err(err(
                ErrorKind::QuotaExceeded,
                "the server's file storage is full; try again later or ask its operator",
            ));
        }
        self.take_slot(&mut st, uid)?;
        let id = match random_id() {
            Ok(id) => id,
            Err(e) => {
                st.release(uid);
                return Err(e);
            }
        };
        let meta = Meta {
            owner: uid.clone(),
            media_type,
            size,
            sha256: sha256.to_string(),
            file_name: file_name.to_string(),
            created_ms: self.clock.now_ms(),
            complete: false,
        };
        // Nothing is written to disk here: this runs on the user's chat
        // connection, and a write can wait long on a disk busy flushing
        // another upload — the user's chat would wait with it. The record is
        // written when the upload completes; an unfinished one lives in
        // memory (and `<id>.part`) and does not outlive a restart.
        st.add(
            id.clone(),
            Item {
                meta,
                touched_ms: self.clock.now_ms(),
                writing: false,
            },
        );
        let ticket = self.issue_ticket(&mut st, uid, &id, Purpose::Upload)?;
        Ok(Reply::MediaUploadTicket {
            media_id: id,
            ticket,
            offset: 0,
            expires_in_ms: self.config.ticket_ttl.as_millis() as u64,
        })
    }

    /// `request_media_download`.
    pub fn request_download(
        &self,
        uid: &Uid,
        media_id: &str,
        offset: u64,
    ) -> Result<Reply, ErrorBody> {
        check_media_id(media_id)?;
        let mut st = self.lock();
        let meta = match st.items.get(media_id) {
            Some(item) if item.meta.complete => item.meta.clone(),
            _ => return Err(not_exist(media_id)),
        };
        if offset > meta.size {
            return Err(err(
                ErrorKind::InvalidArgument,
                format!(
                    "offset {offset} is past the end of the file ({} bytes)",
                    meta.size
                ),
            ));
        }
        self.take_slot(&mut st, uid)?;
        let ticket = self.issue_ticket(&mut st, uid, media_id, Purpose::Download { offset })?;
        Ok(Reply::MediaDownloadTicket {
            media_id: media_id.to_string(),
            ticket,
            size: meta.size,
            sha256: meta.sha256,
            file_name: meta.file_name,
            expires_in_ms: self.config.ticket_ttl.as_millis() as u64,
        })
    }

    /// `cancel_media_upload`: an unfinished upload of `uid` is deleted.
    pub fn cancel_upload(&self, uid: &Uid, media_id: &str) -> Result<Reply, ErrorBody> {
        check_media_id(media_id)?;
        let mut st = self.lock();
        match st.items.get(media_id) {
            Some(item) if &item.meta.owner == uid && !item.meta.complete => {}
            _ => {
                return Err(err(
                    ErrorKind::NotExist,
                    format!("no unfinished upload {media_id} of yours to cancel"),
                ));
            }
        }
        // A transfer still writing it notices the missing entry and stops.
        st.forget(media_id);
        drop(st);
        self.remove_files(media_id);
        Ok(Reply::Done)
    }

    /// Deletes what expired: complete files past the ttl, partial uploads
    /// idle past theirs, unused tickets.
    pub fn sweep(&self) {
        self.sweep_at(self.clock.now_ms());
    }

    fn sweep_at(&self, now_ms: u64) {
        let ttl = self.config.ttl.as_millis() as u64;
        let partial_ttl = self.config.partial_ttl.as_millis() as u64;
        let gone: Vec<String> = {
            let mut st = self.lock();
            let now = Instant::now();
            let expired: Vec<String> = st
                .tickets
                .iter()
                .filter(|(_, t)| t.expires <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for key in expired {
                if let Some(t) = st.tickets.remove(&key) {
                    st.release(&t.uid);
                }
            }
            let gone: Vec<String> = st
                .items
                .iter()
                .filter(|(_, i)| {
                    if i.meta.complete {
                        now_ms.saturating_sub(i.meta.created_ms) >= ttl
                    } else {
                        !i.writing && now_ms.saturating_sub(i.touched_ms) >= partial_ttl
                    }
                })
                .map(|(k, _)| k.clone())
                .collect();
            for id in &gone {
                st.forget(id);
            }
            gone
        };
        if !gone.is_empty() {
            tracing::info!("media: deleted {} expired file(s)", gone.len());
        }
        for id in gone {
            self.remove_files(&id);
        }
    }

    /// Bytes stored (complete and partial), for tests and reports.
    pub fn stored_bytes(&self) -> u64 {
        self.lock().total
    }

    /// Files in the index (complete and partial), for tests and reports.
    pub fn file_count(&self) -> usize {
        self.lock().items.len()
    }

    /// Transfers and unused tickets of `uid` now.
    pub fn active_transfers(&self, uid: &Uid) -> usize {
        self.lock().active.get(uid).copied().unwrap_or(0)
    }

    /// Serves one transfer connection: reads the ticket, then moves the
    /// bytes. Every failure is told to the client as an `error` frame.
    pub async fn serve<S>(self: Arc<Self>, mut ws: WebSocketStream<S>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        // The ticket comes at once or never: a silent connection should not
        // hold a connection slot for the whole idle timeout.
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<MediaHello>(&t).ok(),
            _ => None,
        };
        let ticket = hello.and_then(|h| {
            let mut st = self.lock();
            let t = st.tickets.remove(&h.ticket)?;
            if t.expires <= Instant::now() {
                st.release(&t.uid);
                return None;
            }
            Some(t)
        });
        let Some(ticket) = ticket else {
            let error = err(
                ErrorKind::InvalidArgument,
                "the first frame must be {\"ticket\":…} with a ticket from request_media_upload \
                 or request_media_download, used once within a minute; ask for a new one",
            );
            let _ = finish(&mut ws, MediaServerFrame::Error { error }).await;
            return;
        };
        let uid = ticket.uid.clone();
        let result = match ticket.purpose {
            Purpose::Upload => self.receive(&mut ws, &ticket.media_id).await,
            Purpose::Download { offset } => self.send(&mut ws, &ticket.media_id, offset).await,
        };
        self.lock().release(&uid);
        let last = match result {
            Ok(frame) => frame,
            Err(error) => MediaServerFrame::Error { error },
        };
        let _ = finish(&mut ws, last).await;
    }

    /// An upload: binary frames appended to `<id>.part` until the size is
    /// reached, then the hash is checked and the file completed.
    async fn receive<S>(
        &self,
        ws: &mut WebSocketStream<S>,
        id: &str,
    ) -> Result<MediaServerFrame, ErrorBody>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        // A resume can come before the connection it replaces has noticed
        // its link is gone: give that one a moment to stop writing.
        let deadline = Instant::now() + HELLO_TIMEOUT;
        let size = loop {
            {
                let mut st = self.lock();
                let item = st.items.get_mut(id).ok_or_else(|| not_exist(id))?;
                if !item.writing {
                    item.writing = true;
                    break item.meta.size;
                }
            }
            if Instant::now() >= deadline {
                return Err(err(
                    ErrorKind::ConcurrencyLimitExceeded,
                    "this upload is still being written by another connection; retry in a moment",
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let result = self.receive_bytes(ws, id, size).await;
        let mut st = self.lock();
        if let Some(item) = st.items.get_mut(id) {
            item.writing = false;
            item.touched_ms = self.clock.now_ms();
        }
        result
    }

    async fn receive_bytes<S>(
        &self,
        ws: &mut WebSocketStream<S>,
        id: &str,
        size: u64,
    ) -> Result<MediaServerFrame, ErrorBody>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let part = self.path(id, ".part").ok_or_else(no_dir)?;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&part)
            .await
            .map_err(|e| io_err("store the upload", e))?;
        let mut have = file
            .metadata()
            .await
            .map_err(|e| io_err("store the upload", e))?
            .len();
        if have > size {
            // Cannot happen unless the file was tampered with: start over.
            file.set_len(0)
                .await
                .map_err(|e| io_err("store the upload", e))?;
            have = 0;
        }
        ready(ws, have, size).await?;
        while have < size {
            let frame = match tokio::time::timeout(self.config.idle_timeout, ws.next()).await {
                Err(_) => {
                    return Err(err(
                        ErrorKind::Timeout,
                        format!(
                            "no bytes for {} s; resume the upload",
                            self.config.idle_timeout.as_secs()
                        ),
                    ));
                }
                Ok(frame) => frame,
            };
            let chunk = match frame {
                Some(Ok(Message::Binary(b))) => b,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(_)) => {
                    return Err(err(
                        ErrorKind::InvalidArgument,
                        "an upload sends the file's bytes as binary frames only",
                    ));
                }
                // The link broke: what arrived stays for a resume.
                Some(Err(_)) | None => {
                    let _ = file.flush().await;
                    return Err(err(ErrorKind::Interrupted, "the link broke"));
                }
            };
            if have + chunk.len() as u64 > size {
                return Err(err(
                    ErrorKind::InvalidArgument,
                    format!("more bytes than the {size} announced; upload the file again"),
                ));
            }
            if !self.lock().items.contains_key(id) {
                return Err(err(ErrorKind::Interrupted, "the upload was canceled"));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| io_err("store the upload", e))?;
            have += chunk.len() as u64;
        }
        file.sync_all()
            .await
            .map_err(|e| io_err("store the upload", e))?;
        drop(file);
        let hash = hash_file(&part)
            .await
            .map_err(|e| io_err("check the upload", e))?;
        let meta = {
            let st = self.lock();
            st.items.get(id).map(|i| i.meta.clone())
        };
        let Some(mut meta) = meta else {
            return Err(err(ErrorKind::Interrupted, "the upload was canceled"));
        };
        if hash != meta.sha256 {
            self.lock().forget(id);
            self.remove_files(id);
            return Err(err(
                ErrorKind::InvalidArgument,
                "the bytes received do not match the sha256 given; nothing was kept, upload the \
                 file again",
            ));
        }
        let done = self.path(id, "").ok_or_else(no_dir)?;
        tokio::fs::rename(&part, &done)
            .await
            .map_err(|e| io_err("store the upload", e))?;
        meta.complete = true;
        meta.created_ms = self.clock.now_ms();
        self.write_meta_off_thread(id, &meta).await?;
        if let Some(item) = self.lock().items.get_mut(id) {
            item.meta = meta;
        }
        Ok(MediaServerFrame::Done {
            media_id: id.to_string(),
            size,
        })
    }

    /// A download: the file from `offset` as binary frames, each sent (and
    /// so held in memory) one at a time.
    async fn send<S>(
        &self,
        ws: &mut WebSocketStream<S>,
        id: &str,
        offset: u64,
    ) -> Result<MediaServerFrame, ErrorBody>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let size = match self.lock().items.get(id) {
            Some(item) if item.meta.complete => item.meta.size,
            _ => return Err(not_exist(id)),
        };
        let path = self.path(id, "").ok_or_else(no_dir)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| not_exist(id))?;
        file.seek(io::SeekFrom::Start(offset))
            .await
            .map_err(|e| io_err("read the file", e))?;
        ready(ws, offset, size).await?;
        let mut left = size - offset;
        while left > 0 {
            let mut chunk = vec![0u8; (MEDIA_CHUNK_BYTES as u64).min(left) as usize];
            file.read_exact(&mut chunk)
                .await
                .map_err(|e| io_err("read the file", e))?;
            left -= chunk.len() as u64;
            let sent = tokio::time::timeout(
                self.config.idle_timeout,
                ws.send(Message::Binary(chunk.into())),
            )
            .await;
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(err(ErrorKind::Interrupted, "the link broke")),
                Err(_) => return Err(err(ErrorKind::Timeout, "the receiver stopped reading")),
            }
        }
        Ok(MediaServerFrame::Done {
            media_id: id.to_string(),
            size,
        })
    }
}

fn no_dir() -> ErrorBody {
    err(
        ErrorKind::Unknown,
        "this server keeps no files (it runs without a data directory); send a link instead, or \
         ask its operator to start it with one",
    )
}

/// Tells the client the transfer may start at `offset`.
async fn ready<S>(ws: &mut WebSocketStream<S>, offset: u64, size: u64) -> Result<(), ErrorBody>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let frame = MediaServerFrame::Ready { offset, size }.encode();
    ws.send(Message::Text(frame.into()))
        .await
        .map_err(|_| err(ErrorKind::Interrupted, "the link broke"))
}

/// Sends the last frame and closes the transfer connection.
async fn finish<S>(ws: &mut WebSocketStream<S>, frame: MediaServerFrame) -> Result<(), ()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let MediaServerFrame::Error { error } = &frame {
        tracing::debug!("media transfer failed: {}", error.message);
    }
    ws.send(Message::Text(frame.encode().into()))
        .await
        .map_err(|_| ())?;
    ws.close(None).await.map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::clock::SystemClock;

    fn config(dir: &Path) -> MediaConfig {
        MediaConfig {
            dir: Some(dir.to_path_buf()),
            ttl: Duration::from_secs(3600),
            partial_ttl: Duration::from_secs(3600),
            per_user_bytes: 0,
            total_bytes: 0,
            ticket_ttl: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
        }
    }

    fn meta(complete: bool, created_ms: u64) -> Meta {
        Meta {
            owner: "alice".parse().unwrap(),
            media_type: MediaType::File,
            size: 3,
            sha256: "0".repeat(64),
            file_name: "a".into(),
            created_ms,
            complete,
        }
    }

    #[test]
    fn start_up_keeps_what_is_whole_and_deletes_the_rest() {
        let dir = std::env::temp_dir().join(format!("rtm-media-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let now = SystemClock.now_ms();
        let write = |id: &str, m: &Meta| {
            std::fs::write(
                dir.join(format!("{id}.json")),
                serde_json::to_vec(m).unwrap(),
            )
            .unwrap()
        };
        let (whole, lost, old, partial) = (
            "a".repeat(32),
            "b".repeat(32),
            "c".repeat(32),
            "d".repeat(32),
        );
        write(&whole, &meta(true, now));
        std::fs::write(dir.join(&whole), b"abc").unwrap();
        // Recorded complete, but its bytes are gone.
        write(&lost, &meta(true, now));
        // Complete and older than the ttl.
        write(&old, &meta(true, now - 7_200_000));
        std::fs::write(dir.join(&old), b"abc").unwrap();
        // An upload under way (resumable).
        write(&partial, &meta(false, now));
        std::fs::write(dir.join(format!("{partial}.part")), b"a").unwrap();
        // Bytes nobody recorded.
        std::fs::write(dir.join("e".repeat(32)), b"zzz").unwrap();
        std::fs::write(dir.join("garbage.json"), b"{not json").unwrap();

        let store = MediaStore::open(config(&dir), Arc::new(SystemClock));
        assert_eq!(
            store.file_count(),
            2,
            "the whole file and the resumable upload"
        );
        assert_eq!(store.stored_bytes(), 6);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                whole.clone(),
                format!("{whole}.json"),
                format!("{partial}.json"),
                format!("{partial}.part"),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
