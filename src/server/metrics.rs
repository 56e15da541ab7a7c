//! What the server counts, for Prometheus: one process-wide set of metrics
//! (counters and histograms are atomics, so counting costs a few nanoseconds
//! on the paths that count), and the listener that serves them with the
//! health checks (`rtm serve --metrics-listen HOST:PORT`):
//!
//! - `GET /metrics`: the OpenMetrics text format;
//! - `GET /healthz`: 200 while the process serves (liveness);
//! - `GET /readyz`: 200 when the store answers and, in cluster mode, Redis
//!   does; 503 with the reason otherwise (readiness).

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::hub::Hub;

/// A label set of one name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Call {
    pub call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub result: &'static str,
}

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    /// WebSocket connections open now (logged in or not).
    pub connections: Gauge,
    /// Connections accepted since start.
    pub connections_total: Counter,
    /// Logins by result: `ok`, `resumed`, or the error kind of a refusal.
    pub logins: Family<Outcome, Counter>,
    /// Messages accepted, by kind: `peer`, `channel`.
    pub messages: Family<Kind, Counter>,
    /// `messages{kind="peer"}` and `{kind="channel"}`, looked up once: the
    /// hot paths count without the family's map.
    pub peer_messages: Counter,
    pub channel_messages: Counter,
    /// Frames of messages queued for recipients (a channel message to 200
    /// members is 199 deliveries).
    pub deliveries: Counter,
    /// Recipients per channel message on this node.
    pub fanout: Histogram,
    /// Sessions closed because they did not read their frames (4001).
    pub slow_consumers: Counter,
    /// Requests refused by a call-frequency limit, by request.
    pub rate_limited: Family<Call, Counter>,
    /// Time from submitting a store write to it being durable, seconds.
    pub store_seconds: Histogram,
    /// Peer messages stored for offline receivers.
    pub offline_stored: Counter,
    /// Round trips to the cluster's Redis (cluster mode), seconds.
    pub cluster_seconds: Histogram,
    /// Bytes of frames queued for all sessions, as of the last scrape.
    pub queue_bytes: Gauge,
    /// Users logged in (link up or within the grace), as of the last scrape.
    pub users: Gauge,
    /// Logged-in sessions by link: `up`, or `down` (within the grace).
    pub sessions: Family<Link, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Link {
    pub link: &'static str,
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rtm");
        let m = Metrics {
            connections: Gauge::default(),
            connections_total: Counter::default(),
            logins: Family::default(),
            messages: Family::default(),
            peer_messages: Counter::default(),
            channel_messages: Counter::default(),
            deliveries: Counter::default(),
            fanout: Histogram::new(exponential_buckets(1.0, 4.0, 9)),
            slow_consumers: Counter::default(),
            rate_limited: Family::default(),
            // 50 µs … 3 s
            store_seconds: Histogram::new(exponential_buckets(0.00005, 3.0, 11)),
            offline_stored: Counter::default(),
            cluster_seconds: Histogram::new(exponential_buckets(0.00005, 3.0, 11)),
            queue_bytes: Gauge::default(),
            users: Gauge::default(),
            sessions: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections",
            "WebSocket connections open now",
            m.connections.clone(),
        );
        registry.register(
            "connections_accepted",
            "Connections accepted since start",
            m.connections_total.clone(),
        );
        registry.register(
            "users",
            "Users logged in (link up or within the grace)",
            m.users.clone(),
        );
        registry.register(
            "sessions",
            "Logged-in sessions by link state (up, or down within the grace)",
            m.sessions.clone(),
        );
        registry.register(
            "logins",
            "Logins by result: ok, resumed, or the refusal's error kind",
            m.logins.clone(),
        );
        registry.register("messages", "Messages accepted, by kind", m.messages.clone());
        registry.register(
            "deliveries",
            "Message frames queued for recipients",
            m.deliveries.clone(),
        );
        registry.register(
            "channel_fanout",
            "Recipients on this node per channel message",
            m.fanout.clone(),
        );
        registry.register(
            "slow_consumer_disconnects",
            "Sessions closed for not reading their frames (close 4001)",
            m.slow_consumers.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a call-frequency limit",
            m.rate_limited.clone(),
        );
        registry.register(
            "store_write_seconds",
            "Time for a store write to become durable",
            m.store_seconds.clone(),
        );
        registry.register(
            "offline_messages_stored",
            "Peer messages stored for offline receivers",
            m.offline_stored.clone(),
        );
        registry.register(
            "cluster_redis_seconds",
            "Round trips to the cluster's Redis",
            m.cluster_seconds.clone(),
        );
        registry.register(
            "queue_bytes",
            "Bytes of frames queued for all sessions",
            m.queue_bytes.clone(),
        );
        let peer_messages = m.messages.get_or_create(&Kind { kind: "peer" }).clone();
        let channel_messages = m.messages.get_or_create(&Kind { kind: "channel" }).clone();
        Metrics {
            registry,
            peer_messages,
            channel_messages,
            ..m
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("encoding metrics: {e}");
        }
        out
    }
}

/// Seconds since `t`, for a histogram.
pub fn since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "cannot listen for metrics on {addr}: {source}. Pick another address with --metrics-listen"
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Binds the metrics listener.
pub async fn bind(addr: &str) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Serves `/metrics`, `/healthz`, `/readyz` and, when `admin_secret` is
/// set, the admin interface (`/admin/…`), until `stop`.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    admin_secret: Option<String>,
    stop: CancellationToken,
) {
    let admin_secret = Arc::new(admin_secret);
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("metrics listener: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let hub = hub.clone();
        let secret = admin_secret.clone();
        tokio::spawn(async move {
            let answered = tokio::time::timeout(
                Duration::from_secs(10),
                answer(stream, &hub, secret.as_deref()),
            )
            .await;
            if answered.is_err() {
                tracing::debug!("a metrics request timed out");
            }
        });
    }
}

/// One HTTP request: method, path, bearer token, body.
struct HttpRequest {
    method: String,
    path: String,
    bearer: Option<String>,
    body: Vec<u8>,
}

/// Reads one request (head, and a body of at most 64 KB).
async fn read_request(stream: &mut TcpStream) -> Result<HttpRequest, &'static str> {
    let mut buf = vec![0u8; 8192];
    let mut used = 0;
    loop {
        let n = stream
            .read(&mut buf[used..])
            .await
            .map_err(|_| "read failed")?;
        if n == 0 {
            return Err("closed");
        }
        used += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..used]) {
            Ok(httparse::Status::Complete(head)) => {
                let header = |name: &str| {
                    req.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .map(str::trim)
                };
                let length: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if length > 65_536 {
                    return Err("body too large");
                }
                let bearer = header("authorization")
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::to_string);
                let method = req.method.unwrap_or("GET").to_string();
                let path = req.path.unwrap_or("/").to_string();
                let mut body = buf[head..used].to_vec();
                while body.len() < length {
                    let mut more = vec![0u8; length - body.len()];
                    let n = stream.read(&mut more).await.map_err(|_| "read failed")?;
                    if n == 0 {
                        return Err("closed");
                    }
                    body.extend_from_slice(&more[..n]);
                }
                body.truncate(length);
                return Ok(HttpRequest {
                    method,
                    path,
                    bearer,
                    body,
                });
            }
            Ok(httparse::Status::Partial) if used < buf.len() => continue,
            _ => return Err("bad request"),
        }
    }
}

/// Reads one request and answers it.
async fn answer(mut stream: TcpStream, hub: &Arc<Hub>, admin_secret: Option<&str>) {
    let req = match read_request(&mut stream).await {
        Ok(r) => r,
        Err("closed") | Err("read failed") => return,
        Err(why) => {
            let _ = respond(&mut stream, 400, "text/plain", &format!("{why}\n")).await;
            return;
        }
    };
    let path = req.path.split('?').next().unwrap_or("/").to_string();
    let (status, content_type, body) = if let Some(action) = path.strip_prefix("/admin/") {
        super::admin::handle(
            hub,
            admin_secret,
            &req.method,
            action,
            req.bearer.as_deref(),
            &req.body,
        )
    } else if req.method != "GET" {
        (405, "text/plain", "only GET here\n".to_string())
    } else {
        match path.as_str() {
            "/metrics" => {
                hub.refresh_gauges();
                (
                    200,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    METRICS.encode(),
                )
            }
            "/healthz" => (200, "text/plain", "ok\n".to_string()),
            "/readyz" => match hub.ready().await {
                Ok(()) => (200, "text/plain", "ready\n".to_string()),
                Err(why) => (503, "text/plain", format!("not ready: {why}\n")),
            },
            _ => (
                404,
                "text/plain",
                "not found; try /metrics, /healthz or /readyz\n".to_string(),
            ),
        }
    };
    let _ = respond(&mut stream, status, content_type, &body).await;
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
