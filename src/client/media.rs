//! Files and images (spec §9): upload a file and get a FILE or IMAGE message
//! to send like any other; download what such a message names. The bytes
//! travel over a transfer connection of their own (`/media`, PROTOCOL.md
//! §16), so a big upload never delays this client's chat messages; a broken
//! transfer resumes where it stopped, and a [`TransferHandler`] reports
//! progress and cancels.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use super::{RtmClient, RtmError, Shared, unexpected};
use crate::protocol::{
    ErrorKind, MAX_MEDIA_META_BYTES, MEDIA_CHUNK_BYTES, MEDIA_PATH, MediaHello, MediaServerFrame,
    MediaType, Reply, Request, RtmMessage, check_file_name, check_media_id, check_media_size,
};

/// A transfer connection that is silent this long has failed (TIMEOUT), as
/// in the reference.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How many times a broken transfer is resumed before it fails.
const RESUME_ATTEMPTS: usize = 3;

/// Runs `work` on the low-priority transfer runtime (`crate::lowprio`), so
/// hashing, copying and masking a big file never delays the chat the
/// application sends meanwhile; dropping the wait stops the work.
async fn on_transfer_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, RtmError>> + Send + 'static,
) -> Result<T, RtmError> {
    crate::lowprio::run(work)
        .await
        .map_err(|e| interrupted(&format!("the transfer stopped: {e}")))?
}

/// Where the bytes of an upload come from.
#[derive(Debug, Clone)]
pub enum MediaSource {
    /// A file, read in chunks (never whole into memory).
    Path(PathBuf),
    /// Bytes in memory.
    Bytes(Vec<u8>),
}

/// What a media message says about its file (the reference's
/// `createMediaMessageByUploading` options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaMessageOptions {
    /// FILE or IMAGE.
    pub message_type: MediaType,
    /// The name the receiver sees; default: the source file's name
    /// (`"file"` for bytes).
    pub file_name: Option<String>,
    /// Free text about the file.
    pub description: String,
    /// A small preview (PNG or JPEG). File name + description + thumbnail
    /// must fit in 32 KB.
    pub thumbnail: Vec<u8>,
    /// An IMAGE's width; found from a JPEG, PNG, BMP or GIF header when not given.
    pub width: Option<u32>,
    /// An IMAGE's height; found like the width.
    pub height: Option<u32>,
    /// The thumbnail's width in pixels.
    pub thumbnail_width: u32,
    /// The thumbnail's height in pixels.
    pub thumbnail_height: u32,
}

/// How far a transfer is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferProgress {
    /// Bytes moved so far (including what a resumed transfer already had).
    pub current: u64,
    /// The file's size.
    pub total: u64,
}

struct HandlerInner {
    progress: watch::Sender<TransferProgress>,
    cancel: CancellationToken,
}

/// Follows and controls one transfer (the reference's `MediaOperationProgress`
/// callback and `cancelMediaUpload`/`cancelMediaDownload`): pass it to an
/// upload or download, read [`progress`](Self::progress) or await
/// [`watch`](Self::watch) changes, and [`cancel`](Self::cancel) it from
/// anywhere. Cheap to clone; clones are the same handler.
#[derive(Clone)]
pub struct TransferHandler {
    inner: Arc<HandlerInner>,
}

impl Default for TransferHandler {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TransferHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferHandler")
            .field("progress", &self.progress())
            .field("canceled", &self.is_canceled())
            .finish()
    }
}

impl TransferHandler {
    /// A handler for one transfer.
    pub fn new() -> Self {
        TransferHandler {
            inner: Arc::new(HandlerInner {
                progress: watch::channel(TransferProgress::default()).0,
                cancel: CancellationToken::new(),
            }),
        }
    }

    /// Stops the transfer: it fails with INTERRUPTED and leaves nothing
    /// behind (an upload is deleted on the server, a download's partial
    /// file on disk).
    pub fn cancel(&self) {
        self.inner.cancel.cancel();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_canceled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// The latest progress.
    pub fn progress(&self) -> TransferProgress {
        *self.inner.progress.borrow()
    }

    /// A receiver that wakes on every change of the progress.
    pub fn watch(&self) -> watch::Receiver<TransferProgress> {
        self.inner.progress.subscribe()
    }

    fn set(&self, current: u64, total: u64) {
        self.inner
            .progress
            .send_replace(TransferProgress { current, total });
    }
}

fn local(kind: ErrorKind, message: impl Into<String>) -> RtmError {
    RtmError::local(kind, message)
}

fn interrupted(why: &str) -> RtmError {
    local(ErrorKind::Interrupted, why.to_string())
}

fn canceled() -> RtmError {
    interrupted("the transfer was canceled; nothing was kept")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `ws://host:port/anything` → `ws://host:port/media`.
fn media_url(server: &str) -> String {
    let base = match server.find("://") {
        Some(i) => match server[i + 3..].find('/') {
            Some(j) => &server[..i + 3 + j],
            None => server,
        },
        None => server,
    };
    format!("{base}{MEDIA_PATH}")
}

type MediaWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What a source holds: its size and hash, and the first bytes (for an
/// image's dimensions).
struct Scanned {
    size: u64,
    sha256: String,
    head: Vec<u8>,
}

/// SHA-256 of bytes in memory, a megabyte at a time with a yield between:
/// hashing 32 MB in one go would hold the application's runtime thread (and
/// the chat this client sends meanwhile) for tens of milliseconds.
async fn hash_yielding(bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for piece in bytes.chunks(1024 * 1024) {
        hasher.update(piece);
        tokio::task::yield_now().await;
    }
    hex(&hasher.finalize())
}

async fn scan(source: &MediaSource) -> Result<Scanned, RtmError> {
    match source {
        MediaSource::Bytes(bytes) => Ok(Scanned {
            size: bytes.len() as u64,
            sha256: hash_yielding(bytes).await,
            head: bytes[..bytes.len().min(64 * 1024)].to_vec(),
        }),
        MediaSource::Path(path) => {
            let cannot = |e: std::io::Error| {
                local(
                    ErrorKind::InvalidArgument,
                    format!("cannot read {}: {e}", path.display()),
                )
            };
            let mut file = tokio::fs::File::open(path).await.map_err(cannot)?;
            let size = file.metadata().await.map_err(cannot)?.len();
            // Refused before a byte is read: the file is too big anyway.
            check_media_size(size).map_err(RtmError::Local)?;
            let mut hasher = Sha256::new();
            let mut head = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = file.read(&mut buf).await.map_err(cannot)?;
                if n == 0 {
                    break;
                }
                if head.is_empty() {
                    head = buf[..n].to_vec();
                }
                hasher.update(&buf[..n]);
            }
            Ok(Scanned {
                size,
                sha256: hex(&hasher.finalize()),
                head,
            })
        }
    }
}

impl RtmClient {
    /// Uploads a file or image and returns the FILE or IMAGE message that
    /// carries it; send it with `send_message_to_peer` or
    /// `RtmChannel::send_message` like any message (the reference's
    /// `createMediaMessageByUploading`). At most 32 MiB. An IMAGE's width
    /// and height are read from a JPEG, PNG, BMP or GIF header when not
    /// given. The server checks the bytes against their SHA-256 and keeps
    /// them 7 days; a broken link is resumed where it stopped (3 times).
    ///
    /// Errors: SIZE_OVERFLOW (over 32 MiB, before anything is sent),
    /// INVALID_ARGUMENT (unreadable source, bad file name, name +
    /// description + thumbnail over 32 KB), CONCURRENCY_LIMIT_EXCEEDED (9
    /// transfers at once), QUOTA_EXCEEDED (the server's per-user or total
    /// storage), INTERRUPTED (canceled, or the link kept breaking: nothing
    /// is kept), TIMEOUT, NOT_LOGGED_IN.
    pub async fn create_media_message_by_uploading(
        &self,
        source: MediaSource,
        options: MediaMessageOptions,
        handler: Option<&TransferHandler>,
    ) -> Result<RtmMessage, RtmError> {
        let handler = handler.cloned().unwrap_or_default();
        let file_name = match (&options.file_name, &source) {
            (Some(name), _) => name.clone(),
            (None, MediaSource::Path(p)) => p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "file".into()),
            (None, MediaSource::Bytes(_)) => "file".into(),
        };
        check_file_name(&file_name).map_err(RtmError::Local)?;
        let meta = file_name.len() + options.description.len() + options.thumbnail.len();
        if meta > MAX_MEDIA_META_BYTES {
            return Err(local(
                ErrorKind::InvalidArgument,
                format!(
                    "file name, description and thumbnail take {meta} bytes; the limit is \
                     {MAX_MEDIA_META_BYTES} (32 KB). Make the thumbnail smaller"
                ),
            ));
        }
        if let MediaSource::Bytes(b) = &source {
            check_media_size(b.len() as u64).map_err(RtmError::Local)?;
        }
        let scanned = scan(&source).await?;
        let (mut width, mut height) = (options.width, options.height);
        if options.message_type == MediaType::Image
            && (width.is_none() || height.is_none())
            && let Ok(dim) = imagesize::blob_size(&scanned.head)
        {
            width = width.or(Some(dim.width as u32));
            height = height.or(Some(dim.height as u32));
        }
        handler.set(0, scanned.size);
        let size = scanned.size;
        let media_id = {
            let shared = self.shared.clone();
            let (handler, file_name) = (handler.clone(), file_name.clone());
            let media_type = options.message_type;
            on_transfer_runtime(async move {
                shared
                    .upload(&source, &scanned, media_type, &file_name, &handler)
                    .await
            })
            .await?
        };
        Ok(match options.message_type {
            MediaType::File => RtmMessage::File {
                media_id,
                size,
                file_name,
                description: options.description,
                thumbnail: options.thumbnail,
            },
            MediaType::Image => RtmMessage::Image {
                media_id,
                size,
                file_name,
                description: options.description,
                thumbnail: options.thumbnail,
                width: width.unwrap_or(0),
                height: height.unwrap_or(0),
                thumbnail_width: options.thumbnail_width,
                thumbnail_height: options.thumbnail_height,
            },
        })
    }

    /// Downloads the file a FILE or IMAGE message names, into memory (the
    /// reference's `downloadMedia`); for big files prefer
    /// [`download_media_to_file`](Self::download_media_to_file). The bytes
    /// are checked against their SHA-256.
    ///
    /// Errors: NOT_EXIST (unknown or expired: files are kept 7 days),
    /// INVALID_ARGUMENT (not a media id), CONCURRENCY_LIMIT_EXCEEDED,
    /// INTERRUPTED (canceled, or the link kept breaking), TIMEOUT,
    /// NOT_LOGGED_IN.
    pub async fn download_media(
        &self,
        media_id: &str,
        handler: Option<&TransferHandler>,
    ) -> Result<Vec<u8>, RtmError> {
        let handler = handler.cloned().unwrap_or_default();
        let (shared, media_id) = (self.shared.clone(), media_id.to_string());
        on_transfer_runtime(async move {
            let mut sink = Vec::new();
            shared
                .download(&media_id, &mut MemorySink(&mut sink), &handler)
                .await?;
            Ok(sink)
        })
        .await
    }

    /// Downloads the file a FILE or IMAGE message names into `destination`,
    /// streaming it to `destination` + `.part` and renaming it once its
    /// SHA-256 matches; returns its size. Canceled or failed, it leaves no
    /// file behind. Errors as [`download_media`](Self::download_media), and
    /// INVALID_ARGUMENT when `destination` cannot be written.
    pub async fn download_media_to_file(
        &self,
        media_id: &str,
        destination: &Path,
        handler: Option<&TransferHandler>,
    ) -> Result<u64, RtmError> {
        let handler = handler.cloned().unwrap_or_default();
        let part = PathBuf::from(format!("{}.part", destination.display()));
        let cannot = |e: std::io::Error| {
            local(
                ErrorKind::InvalidArgument,
                format!("cannot write {}: {e}", part.display()),
            )
        };
        let file = tokio::fs::File::create(&part).await.map_err(cannot)?;
        let (shared, id, path) = (self.shared.clone(), media_id.to_string(), part.clone());
        let result = on_transfer_runtime(async move {
            let mut sink = FileSink { file, path: &path };
            shared.download(&id, &mut sink, &handler).await
        })
        .await;
        match result {
            Ok(size) => {
                tokio::fs::rename(&part, destination).await.map_err(|e| {
                    local(
                        ErrorKind::InvalidArgument,
                        format!("cannot write {}: {e}", destination.display()),
                    )
                })?;
                Ok(size)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                Err(e)
            }
        }
    }
}

/// Where downloaded bytes go, chunk by chunk; a resumed download truncates
/// it to the offset it resumes from.
trait Sink {
    async fn truncate(&mut self, len: u64) -> Result<(), RtmError>;
    async fn write(&mut self, bytes: &[u8]) -> Result<(), RtmError>;
    /// SHA-256 of everything written.
    async fn sha256(&mut self) -> Result<String, RtmError>;
}

struct MemorySink<'a>(&'a mut Vec<u8>);

impl Sink for MemorySink<'_> {
    async fn truncate(&mut self, len: u64) -> Result<(), RtmError> {
        self.0.truncate(len as usize);
        Ok(())
    }
    async fn write(&mut self, bytes: &[u8]) -> Result<(), RtmError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
    async fn sha256(&mut self) -> Result<String, RtmError> {
        Ok(hash_yielding(self.0).await)
    }
}

struct FileSink<'a> {
    file: tokio::fs::File,
    path: &'a Path,
}

impl FileSink<'_> {
    fn fail(&self, e: std::io::Error) -> RtmError {
        local(
            ErrorKind::InvalidArgument,
            format!("cannot write {}: {e}", self.path.display()),
        )
    }
}

impl Sink for FileSink<'_> {
    async fn truncate(&mut self, len: u64) -> Result<(), RtmError> {
        self.file.set_len(len).await.map_err(|e| self.fail(e))?;
        self.file
            .seek(std::io::SeekFrom::Start(len))
            .await
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }
    async fn write(&mut self, bytes: &[u8]) -> Result<(), RtmError> {
        self.file.write_all(bytes).await.map_err(|e| self.fail(e))
    }
    async fn sha256(&mut self) -> Result<String, RtmError> {
        self.file.flush().await.map_err(|e| self.fail(e))?;
        let mut file = tokio::fs::File::open(self.path)
            .await
            .map_err(|e| self.fail(e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).await.map_err(|e| self.fail(e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hex(&hasher.finalize()))
    }
}

/// How one attempt at a transfer ended.
enum Attempt<T> {
    Done(T),
    /// The link broke; resume from what the server has.
    Broken(RtmError),
}

impl Shared {
    /// Asks for a transfer ticket. A link that drops under the request (as
    /// it does when the network breaks a transfer) is waited out: the
    /// request is asked again, and held until the client has reconnected.
    async fn request_ticket(&self, request: Request) -> Result<Reply, RtmError> {
        let mut tries = 0;
        loop {
            match self.request(request.clone()).await {
                Err(RtmError::ConnectionLost) if tries < RESUME_ATTEMPTS => tries += 1,
                result => return result,
            }
        }
    }

    /// Opens a transfer connection with `ticket`; `Broken` when the server
    /// could not be reached or the link broke (worth resuming), an error
    /// when the server refused.
    async fn open_transfer(&self, ticket: &str) -> Result<Attempt<(MediaWs, u64, u64)>, RtmError> {
        // The server of the link the ticket came from (with several
        // servers, the one in use).
        let server = self
            .lock()
            .server
            .clone()
            .or_else(|| self.urls.first().cloned())
            .unwrap_or_else(|| self.url.clone());
        let url = media_url(&server);
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(64 * 1024)
            .max_message_size(Some(MEDIA_CHUNK_BYTES + 1024))
            .max_frame_size(Some(MEDIA_CHUNK_BYTES + 1024));
        let connector = if url.starts_with("wss://") {
            Some(
                super::tls::connector(self.config.ca_file.as_deref()).map_err(|reason| {
                    RtmError::Connect {
                        url: url.clone(),
                        reason,
                    }
                })?,
            )
        } else {
            None
        };
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            &url,
            Some(ws_config),
            true,
            connector,
        );
        let (mut ws, _) = tokio::time::timeout(IDLE_TIMEOUT, connect)
            .await
            .map_err(|_| RtmError::Timeout(IDLE_TIMEOUT.as_secs()))?
            .map_err(|e| RtmError::Connect {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let hello = serde_json::to_string(&MediaHello {
            ticket: ticket.to_string(),
        })
        .unwrap_or_default();
        if ws.send(Message::Text(hello.into())).await.is_err() {
            return Ok(Attempt::Broken(interrupted("the link broke")));
        }
        match next_frame(&mut ws).await {
            Ok(Some(MediaServerFrame::Ready { offset, size })) => {
                Ok(Attempt::Done((ws, offset, size)))
            }
            Ok(Some(MediaServerFrame::Error { error })) => Err(RtmError::Server(error)),
            Ok(_) => Ok(Attempt::Broken(interrupted("the link broke"))),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(Attempt::Broken(e)),
            Err(e) => Err(e),
        }
    }

    async fn upload(
        &self,
        source: &MediaSource,
        scanned: &Scanned,
        media_type: MediaType,
        file_name: &str,
        handler: &TransferHandler,
    ) -> Result<String, RtmError> {
        let mut media_id: Option<String> = None;
        let mut last = interrupted("the link broke");
        for _ in 0..RESUME_ATTEMPTS {
            if handler.is_canceled() {
                break;
            }
            let reply = self
                .request_ticket(Request::RequestMediaUpload {
                    media_type,
                    size: scanned.size,
                    sha256: scanned.sha256.clone(),
                    file_name: file_name.to_string(),
                    resume_media_id: media_id.clone(),
                })
                .await?;
            let Reply::MediaUploadTicket {
                media_id: id,
                ticket,
                ..
            } = reply
            else {
                return Err(unexpected(reply));
            };
            media_id = Some(id.clone());
            let attempt = tokio::select! {
                r = self.upload_once(source, &ticket, handler) => r,
                _ = handler.inner.cancel.cancelled() => break,
            };
            match attempt {
                Ok(Attempt::Done(())) => return Ok(id),
                Ok(Attempt::Broken(e)) => last = e,
                Err(e) => {
                    self.forget_upload(&id);
                    return Err(e);
                }
            }
        }
        if let Some(id) = media_id {
            self.forget_upload(&id);
        }
        Err(if handler.is_canceled() {
            canceled()
        } else {
            last
        })
    }

    /// Deletes an unfinished upload on the server (best effort).
    fn forget_upload(&self, media_id: &str) {
        self.send_and_forget(Request::CancelMediaUpload {
            media_id: media_id.to_string(),
        });
    }

    async fn upload_once(
        &self,
        source: &MediaSource,
        ticket: &str,
        handler: &TransferHandler,
    ) -> Result<Attempt<()>, RtmError> {
        let (mut ws, offset, size) = match self.open_transfer(ticket).await? {
            Attempt::Done(x) => x,
            Attempt::Broken(e) => return Ok(Attempt::Broken(e)),
        };
        handler.set(offset, size);
        let mut sent = offset;
        let mut file = match source {
            MediaSource::Path(path) => {
                let mut f = tokio::fs::File::open(path).await.map_err(|e| {
                    local(
                        ErrorKind::InvalidArgument,
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                f.seek(std::io::SeekFrom::Start(offset))
                    .await
                    .map_err(|e| local(ErrorKind::InvalidArgument, e.to_string()))?;
                Some(f)
            }
            MediaSource::Bytes(_) => None,
        };
        while sent < size {
            let n = ((size - sent) as usize).min(MEDIA_CHUNK_BYTES);
            let chunk = match (&mut file, source) {
                (Some(f), _) => {
                    let mut buf = vec![0u8; n];
                    f.read_exact(&mut buf)
                        .await
                        .map_err(|e| local(ErrorKind::InvalidArgument, e.to_string()))?;
                    buf
                }
                (None, MediaSource::Bytes(b)) => b[sent as usize..sent as usize + n].to_vec(),
                (None, MediaSource::Path(p)) => {
                    return Err(local(
                        ErrorKind::InvalidArgument,
                        format!("cannot read {}", p.display()),
                    ));
                }
            };
            let send = tokio::time::timeout(IDLE_TIMEOUT, ws.send(Message::Binary(chunk.into())));
            match send.await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Ok(Attempt::Broken(interrupted("the link broke"))),
                Err(_) => return Err(RtmError::Timeout(IDLE_TIMEOUT.as_secs())),
            }
            sent += n as u64;
            handler.set(sent, size);
            // A fast link takes chunk after chunk without ever making this
            // task wait; yield so the client's chat goes out in between.
            tokio::task::yield_now().await;
        }
        match next_frame(&mut ws).await {
            Ok(Some(MediaServerFrame::Done { .. })) => Ok(Attempt::Done(())),
            Ok(Some(MediaServerFrame::Error { error })) => Err(RtmError::Server(error)),
            Ok(_) => Ok(Attempt::Broken(interrupted("the link broke"))),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(Attempt::Broken(e)),
            Err(e) => Err(e),
        }
    }

    async fn download<S: Sink>(
        &self,
        media_id: &str,
        sink: &mut S,
        handler: &TransferHandler,
    ) -> Result<u64, RtmError> {
        check_media_id(media_id).map_err(RtmError::Local)?;
        let mut have = 0u64;
        let mut last = interrupted("the link broke");
        for _ in 0..RESUME_ATTEMPTS {
            if handler.is_canceled() {
                break;
            }
            let reply = self
                .request_ticket(Request::RequestMediaDownload {
                    media_id: media_id.to_string(),
                    offset: have,
                })
                .await?;
            let Reply::MediaDownloadTicket {
                ticket,
                size,
                sha256,
                ..
            } = reply
            else {
                return Err(unexpected(reply));
            };
            sink.truncate(have).await?;
            let attempt = tokio::select! {
                r = self.download_once(&ticket, sink, &mut have, handler) => r,
                _ = handler.inner.cancel.cancelled() => break,
            };
            match attempt? {
                Attempt::Done(()) => {
                    if sink.sha256().await? != sha256 {
                        return Err(interrupted(
                            "the bytes received do not match the file's hash; download it again",
                        ));
                    }
                    return Ok(size);
                }
                Attempt::Broken(e) => last = e,
            }
        }
        Err(if handler.is_canceled() {
            canceled()
        } else {
            last
        })
    }

    async fn download_once<S: Sink>(
        &self,
        ticket: &str,
        sink: &mut S,
        have: &mut u64,
        handler: &TransferHandler,
    ) -> Result<Attempt<()>, RtmError> {
        let (mut ws, _offset, size) = match self.open_transfer(ticket).await? {
            Attempt::Done(x) => x,
            Attempt::Broken(e) => return Ok(Attempt::Broken(e)),
        };
        handler.set(*have, size);
        loop {
            let frame = tokio::time::timeout(IDLE_TIMEOUT, ws.next())
                .await
                .map_err(|_| RtmError::Timeout(IDLE_TIMEOUT.as_secs()))?;
            match frame {
                Some(Ok(Message::Binary(bytes))) => {
                    if *have + bytes.len() as u64 > size {
                        return Err(RtmError::Protocol(
                            "the server sent more bytes than the file has".into(),
                        ));
                    }
                    sink.write(&bytes).await?;
                    *have += bytes.len() as u64;
                    handler.set(*have, size);
                }
                Some(Ok(Message::Text(text))) => {
                    return match serde_json::from_str::<MediaServerFrame>(&text) {
                        Ok(MediaServerFrame::Done { .. }) if *have == size => Ok(Attempt::Done(())),
                        Ok(MediaServerFrame::Error { error }) => Err(RtmError::Server(error)),
                        _ => Err(RtmError::Protocol(format!(
                            "unexpected frame on a transfer: {text}"
                        ))),
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    return Ok(Attempt::Broken(interrupted("the link broke")));
                }
            }
        }
    }
}

/// The next text frame of a transfer connection, parsed.
async fn next_frame(ws: &mut MediaWs) -> Result<Option<MediaServerFrame>, RtmError> {
    loop {
        let frame = tokio::time::timeout(IDLE_TIMEOUT, ws.next())
            .await
            .map_err(|_| RtmError::Timeout(IDLE_TIMEOUT.as_secs()))?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| RtmError::Protocol(format!("{e}: {text}")));
            }
            Some(Ok(Message::Close(_))) | None => return Ok(None),
            Some(Ok(_)) => {}
            Some(Err(_)) => return Err(interrupted("the link broke")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transfer_url_is_the_servers_with_the_media_path() {
        assert_eq!(
            media_url("ws://127.0.0.1:7420"),
            "ws://127.0.0.1:7420/media"
        );
        assert_eq!(
            media_url("wss://chat.example:443/"),
            "wss://chat.example:443/media"
        );
        assert_eq!(media_url("ws://h:1/x/y"), "ws://h:1/media");
    }
}
