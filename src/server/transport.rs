//! Below the WebSocket layer: the HTTP request head, read by the server
//! itself so that plain HTTP and garbage get an answer (tungstenite drops
//! them silently), and a watch over the inbound WebSocket frame headers that
//! tungstenite does not expose — whether a fragmented message is being
//! assembled, and how large frames are before login.

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;

use super::coalesce::Coalescer;

/// Most bytes of an HTTP request head (request line and headers).
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;

/// The one-line body of every HTTP answer that is not an upgrade.
const BODY: &str =
    "This is an rtm WebSocket endpoint: connect with a WebSocket client (ws:// or wss://).\n";

/// Why a connection got no WebSocket.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("the connection failed while sending its request: {0}")]
    Io(#[from] io::Error),
    #[error("the connection closed before its request was complete")]
    Closed,
    #[error("answered 400: {0}")]
    BadRequest(&'static str),
    #[error("answered 426: a plain HTTP request without a WebSocket upgrade")]
    NotUpgrade,
}

/// Reads the HTTP request head (and whatever follows it in the same reads).
/// A head that is not HTTP is answered with 400, an HTTP request that asks
/// for no WebSocket upgrade with 426; both close the connection. On success
/// the bytes read are handed back, to be replayed to the WebSocket layer.
pub async fn read_request_head<S>(stream: &mut S) -> Result<Vec<u8>, HeadError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() >= MAX_REQUEST_HEAD_BYTES {
            return Err(answer(stream, 400, "Bad Request", "request head too large").await);
        }
        // A first line that is no HTTP request line needs no more bytes.
        if let Some(i) = find(&buf, b"\r\n")
            && !is_request_line(&buf[..i])
        {
            return Err(answer(stream, 400, "Bad Request", "not an HTTP request").await);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = &buf[..end];
    let first_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let first_line = first_line.strip_suffix(b"\r").unwrap_or(first_line);
    if !is_request_line(first_line) {
        return Err(answer(stream, 400, "Bad Request", "not an HTTP request").await);
    }
    let upgrade = head
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(|line| line.split_once(':'))
        .any(|(name, value)| {
            name.trim().eq_ignore_ascii_case("upgrade")
                && value.trim().eq_ignore_ascii_case("websocket")
        });
    if !upgrade {
        return Err(answer(stream, 426, "Upgrade Required", "").await);
    }
    Ok(buf)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `METHOD SP target SP HTTP/1.x`
fn is_request_line(line: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && !target.is_empty()
        && (version == "HTTP/1.1" || version == "HTTP/1.0")
}

/// Writes a short HTTP answer and shuts the sending side down.
async fn answer<S>(stream: &mut S, code: u16, status: &str, why: &'static str) -> HeadError
where
    S: AsyncWrite + Unpin,
{
    let upgrade = if code == 426 {
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    } else {
        "Connection: close\r\n"
    };
    let text = format!(
        "HTTP/1.1 {code} {status}\r\n{upgrade}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
    if code == 426 {
        HeadError::NotUpgrade
    } else {
        HeadError::BadRequest(why)
    }
}

/// What the frame watch has seen; shared with the connection task.
#[derive(Debug)]
pub struct FrameWatch {
    /// When the first fragment of a still unfinished message arrived.
    assembling_since: Mutex<Option<Instant>>,
    /// Largest frame, and largest message, accepted now in bytes.
    limit: AtomicUsize,
    /// Set when a frame broke `limit`: the read then fails.
    too_big: AtomicBool,
}

impl FrameWatch {
    pub fn new(limit: usize) -> Self {
        Self {
            assembling_since: Mutex::new(None),
            limit: AtomicUsize::new(limit),
            too_big: AtomicBool::new(false),
        }
    }

    /// Since when a fragmented message has been left unfinished, if one is.
    pub fn assembling_since(&self) -> Option<Instant> {
        self.assembling_since.lock().ok().and_then(|g| *g)
    }

    /// Changes the size limit (after login, to the configured one).
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Whether the read failed because a frame broke the limit.
    pub fn was_too_big(&self) -> bool {
        self.too_big.load(Ordering::Relaxed)
    }

    fn set_assembling(&self, since: Option<Instant>) {
        if let Ok(mut g) = self.assembling_since.lock() {
            *g = since;
        }
    }
}

/// Parser state over the inbound byte stream.
#[derive(Debug)]
enum Parse {
    /// Collecting a frame header (2 to 14 bytes).
    Header { buf: [u8; 14], have: usize },
    /// Skipping this many payload bytes.
    Payload(u64),
}

/// A stream that first replays bytes already read (the request head) and
/// watches the WebSocket frame headers of everything read after them.
pub struct Watched<S> {
    inner: S,
    replay: Vec<u8>,
    replayed: usize,
    watch: std::sync::Arc<FrameWatch>,
    parse: Parse,
    /// Payload bytes of the message being assembled so far.
    message_bytes: u64,
    /// The outbound side: one write per batch once the handshake is done.
    out: Coalescer,
}

impl<S> Watched<S> {
    /// `head` is what [`read_request_head`] read; the bytes after the head
    /// (if the client sent frames at once) are watched like any others.
    pub fn new(inner: S, head: Vec<u8>, watch: std::sync::Arc<FrameWatch>) -> Self {
        let mut w = Watched {
            inner,
            replay: Vec::new(),
            replayed: 0,
            watch,
            parse: Parse::Header {
                buf: [0; 14],
                have: 0,
            },
            message_bytes: 0,
            out: Coalescer::default(),
        };
        let body = find(&head, b"\r\n\r\n").map_or(head.len(), |i| i + 4);
        // An early frame past the limit is caught at the first real read.
        let _ = w.observe_at(&head[body..]);
        w.replay = head;
        w
    }

    /// From now on (after the handshake) frames are written once per flush.
    pub fn coalesce_writes(&mut self) {
        self.out.start();
    }

    /// Feeds received bytes through the parser; `Err` when a frame breaks the limit.
    fn observe_at(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.parse {
                Parse::Payload(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.parse = Parse::Header {
                            buf: [0; 14],
                            have: 0,
                        };
                    }
                }
                Parse::Header { buf, have } => {
                    buf[*have] = bytes[0];
                    *have += 1;
                    bytes = &bytes[1..];
                    if *have < 2 {
                        continue;
                    }
                    let ext = match buf[1] & 0x7f {
                        126 => 2,
                        127 => 8,
                        _ => 0,
                    };
                    let mask = if buf[1] & 0x80 != 0 { 4 } else { 0 };
                    if *have < 2 + ext + mask {
                        continue;
                    }
                    let len = match ext {
                        2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
                        8 => u64::from_be_bytes([
                            buf[2], buf[3], buf[4], buf[5], buf[6], buf[7], buf[8], buf[9],
                        ]),
                        _ => u64::from(buf[1] & 0x7f),
                    };
                    let (fin, opcode) = (buf[0] & 0x80 != 0, buf[0] & 0x0f);
                    self.frame(fin, opcode, len)?;
                    self.parse = if len == 0 {
                        Parse::Header {
                            buf: [0; 14],
                            have: 0,
                        }
                    } else {
                        Parse::Payload(len)
                    };
                }
            }
        }
        Ok(())
    }

    /// One frame header: tracks message assembly and the size limit.
    fn frame(&mut self, fin: bool, opcode: u8, len: u64) -> io::Result<()> {
        let data = opcode <= 2;
        if data {
            if opcode != 0 {
                self.message_bytes = 0;
            }
            self.message_bytes = self.message_bytes.saturating_add(len);
            let limit = self.watch.limit() as u64;
            if self.message_bytes > limit {
                self.watch.too_big.store(true, Ordering::Relaxed);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "inbound message larger than the limit",
                ));
            }
            match (opcode, fin) {
                (1 | 2, false) => self.watch.set_assembling(Some(Instant::now())),
                (0, true) => self.watch.set_assembling(None),
                _ => {}
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replayed < this.replay.len() {
            let n = (this.replay.len() - this.replayed).min(out.remaining());
            out.put_slice(&this.replay[this.replayed..this.replayed + n]);
            this.replayed += n;
            if this.replayed == this.replay.len() {
                // Replayed in full: its memory goes back.
                this.replay = Vec::new();
                this.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if this.watch.was_too_big() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "inbound message larger than the limit",
            )));
        }
        let before = out.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, out) {
            Poll::Ready(Ok(())) => Poll::Ready(this.observe_at(&out.filled()[before..])),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.out.poll_write(&mut this.inner, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.out.poll_flush(&mut this.inner, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.out.poll_shutdown(&mut this.inner, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert!(is_request_line(b"GET / HTTP/1.1"));
        assert!(!is_request_line(b"hello there"));
        assert!(!is_request_line(b"\x16\x03\x01"));
    }
}
