//! What a server runs with. [`ServerConfig::default`] is the shipped
//! `config/server.toml`, so `rtm serve`, the messenger's embedded server and
//! the tests all start from the same defaults; [`ServerSettings::load`] puts
//! the user's file and the environment over them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::clock::{SystemClock, Timing};
use super::conn::{AppCertificate, ConnConfig};
use super::hub::HubConfig;
use super::media::MediaConfig;
use super::ratelimit::LoginLimitsConfig;
use super::store::OfflineQuota;
use crate::config::{ConfigError, Paths, env, parse, read_optional};

/// The server defaults, as shipped and documented.
pub const SERVER_DEFAULTS: &str = include_str!("../../config/server.toml");

const BUILT_IN_NAME: &str = "<built-in server.toml>";

/// One mebibyte, in bytes (fallbacks of the quota keys).
const MIB: u64 = 1024 * 1024;
const MIB_2: u64 = 2 * MIB;

/// `server.toml` as written: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub log_level: Option<String>,
    pub heartbeat_interval_s: Option<u64>,
    pub heartbeat_timeout_s: Option<u64>,
    pub grace_s: Option<u64>,
    pub login_timeout_s: Option<u64>,
    pub channel_attributes_ttl_s: Option<u64>,
    pub offline_cap: Option<usize>,
    pub offline_ttl_days: Option<u64>,
    pub queue_frames: Option<usize>,
    pub max_frame_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub limit_scale: Option<usize>,
    pub connect_rate_per_ip: Option<usize>,
    pub failed_logins_per_address: Option<usize>,
    pub failed_login_window_s: Option<u64>,
    pub app_certificate: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub offline_receiver_max_bytes: Option<u64>,
    pub offline_sender_window_s: Option<u64>,
    pub offline_sender_max_messages: Option<u64>,
    pub offline_sender_max_bytes: Option<u64>,
    pub offline_total_max_bytes: Option<u64>,
    // Delivery guarantees.
    pub offline_window: Option<usize>,
    pub offline_window_bytes: Option<usize>,
    pub resume_buffer_bytes: Option<usize>,
    // Call invitations.
    pub invitation_expiry_s: Option<u64>,
    pub invitation_ack_timeout_s: Option<u64>,
    // Files and images.
    pub media_ttl_days: Option<u64>,
    pub media_partial_ttl_s: Option<u64>,
    pub media_user_max_bytes: Option<u64>,
    pub media_total_max_bytes: Option<u64>,
    // The connection layer under attack and faults.
    pub queue_bytes: Option<usize>,
    pub handshake_timeout_s: Option<u64>,
    pub message_timeout_s: Option<u64>,
    /// `[cluster]`: run as a node of a cluster on Redis.
    pub cluster: Option<ClusterFile>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served (none: off).
    pub metrics_listen: Option<String>,
    /// The secret of the admin interface on the metrics listener (none: off).
    pub admin_secret: Option<String>,
    pub fd_reserve: Option<u64>,
}

impl ServerFile {
    /// The embedded defaults. The file is checked by a unit test; an empty
    /// file (every setting at its fallback) stands in rather than a panic.
    fn built_in() -> ServerFile {
        parse(SERVER_DEFAULTS, Path::new(BUILT_IN_NAME)).unwrap_or_default()
    }

    /// `self` where it says something, `base` elsewhere.
    fn over(self, base: ServerFile) -> ServerFile {
        ServerFile {
            listen: self.listen.or(base.listen),
            data: self.data.or(base.data),
            log_level: self.log_level.or(base.log_level),
            heartbeat_interval_s: self.heartbeat_interval_s.or(base.heartbeat_interval_s),
            heartbeat_timeout_s: self.heartbeat_timeout_s.or(base.heartbeat_timeout_s),
            grace_s: self.grace_s.or(base.grace_s),
            login_timeout_s: self.login_timeout_s.or(base.login_timeout_s),
            channel_attributes_ttl_s: self
                .channel_attributes_ttl_s
                .or(base.channel_attributes_ttl_s),
            offline_cap: self.offline_cap.or(base.offline_cap),
            offline_ttl_days: self.offline_ttl_days.or(base.offline_ttl_days),
            queue_frames: self.queue_frames.or(base.queue_frames),
            max_frame_bytes: self.max_frame_bytes.or(base.max_frame_bytes),
            max_connections: self.max_connections.or(base.max_connections),
            max_connections_per_ip: self.max_connections_per_ip.or(base.max_connections_per_ip),
            limit_scale: self.limit_scale.or(base.limit_scale),
            connect_rate_per_ip: self.connect_rate_per_ip.or(base.connect_rate_per_ip),
            failed_logins_per_address: self
                .failed_logins_per_address
                .or(base.failed_logins_per_address),
            failed_login_window_s: self.failed_login_window_s.or(base.failed_login_window_s),
            app_certificate: self.app_certificate.or(base.app_certificate),
            tls_cert: self.tls_cert.or(base.tls_cert),
            tls_key: self.tls_key.or(base.tls_key),
            offline_receiver_max_bytes: self
                .offline_receiver_max_bytes
                .or(base.offline_receiver_max_bytes),
            offline_sender_window_s: self
                .offline_sender_window_s
                .or(base.offline_sender_window_s),
            offline_sender_max_messages: self
                .offline_sender_max_messages
                .or(base.offline_sender_max_messages),
            offline_sender_max_bytes: self
                .offline_sender_max_bytes
                .or(base.offline_sender_max_bytes),
            offline_total_max_bytes: self
                .offline_total_max_bytes
                .or(base.offline_total_max_bytes),
            offline_window: self.offline_window.or(base.offline_window),
            offline_window_bytes: self.offline_window_bytes.or(base.offline_window_bytes),
            resume_buffer_bytes: self.resume_buffer_bytes.or(base.resume_buffer_bytes),
            invitation_expiry_s: self.invitation_expiry_s.or(base.invitation_expiry_s),
            invitation_ack_timeout_s: self
                .invitation_ack_timeout_s
                .or(base.invitation_ack_timeout_s),
            media_ttl_days: self.media_ttl_days.or(base.media_ttl_days),
            media_partial_ttl_s: self.media_partial_ttl_s.or(base.media_partial_ttl_s),
            media_user_max_bytes: self.media_user_max_bytes.or(base.media_user_max_bytes),
            media_total_max_bytes: self.media_total_max_bytes.or(base.media_total_max_bytes),
            queue_bytes: self.queue_bytes.or(base.queue_bytes),
            handshake_timeout_s: self.handshake_timeout_s.or(base.handshake_timeout_s),
            message_timeout_s: self.message_timeout_s.or(base.message_timeout_s),
            fd_reserve: self.fd_reserve.or(base.fd_reserve),
            metrics_listen: self.metrics_listen.or(base.metrics_listen),
            admin_secret: self.admin_secret.or(base.admin_secret),
            cluster: match (self.cluster, base.cluster) {
                (Some(a), Some(b)) => Some(a.over(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// `[cluster]` in `server.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// `redis://HOST:PORT[/DB]`; empty: a single server.
    pub redis_url: Option<String>,
    /// Before every Redis key and topic of this cluster.
    pub prefix: Option<String>,
    pub heartbeat_ms: Option<u64>,
    pub node_ttl_ms: Option<u64>,
}

impl ClusterFile {
    fn over(self, base: ClusterFile) -> ClusterFile {
        ClusterFile {
            redis_url: self.redis_url.or(base.redis_url),
            prefix: self.prefix.or(base.prefix),
            heartbeat_ms: self.heartbeat_ms.or(base.heartbeat_ms),
            node_ttl_ms: self.node_ttl_ms.or(base.node_ttl_ms),
        }
    }

    /// The node settings, when a Redis URL is given.
    pub fn to_config(&self) -> Option<super::cluster::ClusterConfig> {
        let url = self.redis_url.as_deref().filter(|u| !u.is_empty())?;
        let mut c = super::cluster::ClusterConfig::new(url);
        if let Some(p) = &self.prefix {
            c.prefix = p.clone();
        }
        if let Some(ms) = self.heartbeat_ms {
            c.heartbeat = Duration::from_millis(ms.max(50));
        }
        if let Some(ms) = self.node_ttl_ms {
            c.node_ttl = Duration::from_millis(ms.max(100));
        }
        Some(c)
    }
}

/// Everything a running server is told.
#[derive(Clone)]
pub struct ServerConfig {
    pub timing: Timing,
    pub hub: HubConfig,
    pub conn: ConnConfig,
    /// Most simultaneous connections in total (0: no cap).
    pub max_connections: usize,
    /// Most simultaneous connections from one IP address (0: no cap).
    pub max_connections_per_ip: usize,
    /// Most new connections per second from one IP address (0: no cap).
    pub connect_rate_per_ip: usize,
    /// How failed logins of one address are slowed down.
    pub logins: LoginLimitsConfig,
    /// Multiplier of every call-frequency and login limit (1 = the spec's);
    /// benchmarks and tests that need more traffic raise it.
    pub limit_scale: usize,
    /// Serve `wss://` with this certificate and key.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// File descriptors kept free below the process's limit: the
    /// connection caps are lowered to fit under `RLIMIT_NOFILE − fd_reserve`.
    pub fd_reserve: u64,
    /// Cluster mode: a node of several sharing this Redis (`None`: a single
    /// server).
    pub cluster: Option<super::cluster::ClusterConfig>,
    /// Serve metrics and health checks on this address (`None`: off).
    pub metrics_listen: Option<String>,
    /// The admin interface's secret (`None`: the interface is off).
    pub admin_secret: Option<String>,
}

// The hub's and the connection's own defaults are their parts of the
// shipped file; they live here so that neither imports the settings layer.
impl Default for HubConfig {
    fn default() -> Self {
        ServerConfig::default().hub
    }
}

impl Default for ConnConfig {
    fn default() -> Self {
        ServerConfig::default().conn
    }
}

impl Default for ServerConfig {
    /// The shipped `config/server.toml`, exactly what `rtm serve` runs with
    /// when nobody changes anything.
    fn default() -> Self {
        Self::from_file(&ServerFile::built_in())
    }
}

impl ServerConfig {
    /// The settings of a merged file. The fallbacks apply only to keys the
    /// built-in file lacks, which its unit test rules out.
    fn from_file(f: &ServerFile) -> ServerConfig {
        let secs = Duration::from_secs;
        let limit_scale = f.limit_scale.unwrap_or(1).max(1);
        ServerConfig {
            timing: Timing {
                clock: Arc::new(SystemClock),
                heartbeat_interval: secs(f.heartbeat_interval_s.unwrap_or(5)),
                heartbeat_timeout: secs(f.heartbeat_timeout_s.unwrap_or(15)),
            },
            hub: HubConfig {
                grace: secs(f.grace_s.unwrap_or(30)),
                member_count_interval: secs(1),
                member_count_interval_large: secs(3),
                channel_attributes_ttl: secs(f.channel_attributes_ttl_s.unwrap_or(300)),
                offline_ttl: secs(f.offline_ttl_days.unwrap_or(7) * 24 * 3600),
                offline_quota: OfflineQuota {
                    per_receiver_messages: f.offline_cap.unwrap_or(200),
                    per_receiver_bytes: f.offline_receiver_max_bytes.unwrap_or(MIB_2),
                    sender_window_ms: f.offline_sender_window_s.unwrap_or(3600) * 1000,
                    per_sender_messages: f.offline_sender_max_messages.unwrap_or(1000),
                    per_sender_bytes: f.offline_sender_max_bytes.unwrap_or(16 * MIB),
                    total_bytes: f.offline_total_max_bytes.unwrap_or(1024 * MIB),
                },
                offline_window: f.offline_window.unwrap_or(256).max(1),
                offline_window_bytes: f.offline_window_bytes.unwrap_or(512 * 1024),
                resume_buffer_bytes: f.resume_buffer_bytes.unwrap_or(256 * 1024),
                invitation_expiry: secs(f.invitation_expiry_s.unwrap_or(60).max(1)),
                invitation_ack_timeout: secs(f.invitation_ack_timeout_s.unwrap_or(30).max(1)),
                media: MediaConfig {
                    dir: None,
                    ttl: secs(f.media_ttl_days.unwrap_or(7) * 24 * 3600),
                    partial_ttl: secs(f.media_partial_ttl_s.unwrap_or(3600)),
                    per_user_bytes: f.media_user_max_bytes.unwrap_or(512 * MIB),
                    total_bytes: f.media_total_max_bytes.unwrap_or(8 * 1024 * MIB),
                    ticket_ttl: secs(60),
                    idle_timeout: secs(120),
                },
                dev_mode: true,
            },
            conn: ConnConfig {
                queue_frames: f.queue_frames.unwrap_or(4096),
                queue_bytes: f.queue_bytes.unwrap_or(8 * 1024 * 1024),
                handshake_timeout: secs(f.handshake_timeout_s.unwrap_or(5)),
                message_timeout: secs(f.message_timeout_s.unwrap_or(15)),
                max_frame_bytes: f.max_frame_bytes.unwrap_or(256 * 1024),
                login_timeout: secs(f.login_timeout_s.unwrap_or(10)),
                max_bad_frames: 100_000,
                app_certificate: None,
            },
            max_connections: f.max_connections.unwrap_or(0),
            max_connections_per_ip: f.max_connections_per_ip.unwrap_or(0),
            connect_rate_per_ip: f.connect_rate_per_ip.unwrap_or(0),
            logins: LoginLimitsConfig {
                failed_per_address: f.failed_logins_per_address.unwrap_or(10),
                failed_window: secs(f.failed_login_window_s.unwrap_or(10)),
            },
            limit_scale,
            tls: None,
            fd_reserve: f.fd_reserve.unwrap_or(64),
            cluster: f.cluster.as_ref().and_then(ClusterFile::to_config),
            metrics_listen: f.metrics_listen.clone().filter(|a| !a.is_empty()),
            admin_secret: f.admin_secret.clone().filter(|a| !a.is_empty()),
        }
    }

    /// Turns token checking on (`Some`) or off (development mode). An empty
    /// or short secret is refused: tokens signed with it could be forged, yet
    /// the server would say that logins are checked.
    pub fn set_app_certificate(
        &mut self,
        certificate: Option<String>,
    ) -> Result<(), AppCertificateError> {
        if let Some(c) = &certificate {
            check_app_certificate(c)?;
        }
        self.hub.dev_mode = certificate.is_none();
        self.conn.app_certificate = certificate.map(AppCertificate);
        Ok(())
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("timing", &self.timing)
            .field("hub", &self.hub)
            .field("conn", &self.conn)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("connect_rate_per_ip", &self.connect_rate_per_ip)
            .field("logins", &self.logins)
            .field("limit_scale", &self.limit_scale)
            .field("tls", &self.tls.is_some())
            .field("fd_reserve", &self.fd_reserve)
            .field(
                "cluster",
                &self
                    .cluster
                    .as_ref()
                    .map(|c| super::cluster::redact_url(&c.redis_url)),
            )
            .finish()
    }
}

/// The shortest app certificate accepted, in characters: 16 random hex
/// characters are 64 bits, out of reach of guessing a token's signature key.
pub const MIN_APP_CERTIFICATE_CHARS: usize = 16;

/// Why an app certificate cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppCertificateError {
    #[error(
        "the app certificate is empty, so anyone could mint valid tokens; set a secret of at \
         least {MIN_APP_CERTIFICATE_CHARS} characters (for example `openssl rand -hex 16`), or \
         leave it unset to run in development mode"
    )]
    Empty,
    #[error(
        "the app certificate is {0} characters long, short enough to guess; use at least \
         {MIN_APP_CERTIFICATE_CHARS} (for example `openssl rand -hex 16`)"
    )]
    TooShort(usize),
}

/// Checks a secret before anything is signed or verified with it.
pub fn check_app_certificate(certificate: &str) -> Result<(), AppCertificateError> {
    match certificate.chars().count() {
        0 => Err(AppCertificateError::Empty),
        n if n < MIN_APP_CERTIFICATE_CHARS => Err(AppCertificateError::TooShort(n)),
        _ => Ok(()),
    }
}

/// The app certificate and where it came from: the environment wins over
/// the file. A variable that is set but empty counts (and is then refused
/// like an empty flag or key): it looks like a secret and protects nothing.
fn app_certificate_source(
    file_value: Option<String>,
    config_file: &Path,
) -> (Option<String>, String) {
    match std::env::var("RTM_APP_CERTIFICATE") {
        Ok(v) => (Some(v), "RTM_APP_CERTIFICATE".to_string()),
        Err(_) => (
            file_value,
            format!("app_certificate in {}", config_file.display()),
        ),
    }
}

/// The server's resolved settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: String,
    pub data_dir: PathBuf,
    pub log_level: String,
    pub server: ServerConfig,
    pub config_file: PathBuf,
    /// The secret that signs login tokens; `None` runs in development mode.
    pub app_certificate: Option<String>,
    /// PEM certificate chain and key for `wss://`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `[cluster]` as configured (before `--cluster`).
    pub cluster_file: ClusterFile,
}

impl ServerSettings {
    /// Defaults ← user file (`file` or the default location) ← environment.
    pub fn load(paths: &Paths, file: Option<&Path>) -> Result<ServerSettings, ConfigError> {
        let defaults: ServerFile = parse(SERVER_DEFAULTS, Path::new(BUILT_IN_NAME))?;
        let config_file = file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| paths.server_config_file());
        let user: ServerFile = match read_optional(&config_file, file.is_some())? {
            Some(text) => parse(&text, &config_file)?,
            None => ServerFile::default(),
        };
        let f = user.over(defaults);
        let mut server = ServerConfig::from_file(&f);
        let listen = env("RTM_LISTEN")
            .or(f.listen)
            .unwrap_or_else(|| "127.0.0.1:7420".into());
        let data_dir = env("RTM_DATA")
            .map(PathBuf::from)
            .or(f.data)
            .unwrap_or_else(|| paths.data_dir.join("server"));
        let log_level = env("RTM_LOG")
            .or(f.log_level)
            .unwrap_or_else(|| "info".into());
        let mut cluster_file = f.cluster.clone().unwrap_or_default();
        if let Some(url) = env("RTM_CLUSTER") {
            cluster_file.redis_url = Some(url);
        }
        server.cluster = cluster_file.to_config();
        if let Some(secret) = env("RTM_ADMIN_SECRET") {
            server.admin_secret = Some(secret).filter(|s| !s.is_empty());
        }
        let (app_certificate, origin) = app_certificate_source(f.app_certificate, &config_file);
        server
            .set_app_certificate(app_certificate.clone())
            .map_err(|e| ConfigError::Invalid {
                origin,
                reason: e.to_string(),
            })?;
        Ok(ServerSettings {
            listen,
            data_dir,
            log_level,
            server,
            config_file,
            app_certificate,
            tls_cert: f.tls_cert,
            tls_key: f.tls_key,
            cluster_file,
        })
    }

    /// `--cluster URL`: a node on this Redis, with the file's other
    /// `[cluster]` settings.
    pub fn set_cluster_url(&mut self, url: String) {
        self.cluster_file.redis_url = Some(url);
        self.server.cluster = self.cluster_file.to_config();
    }
}

/// What the command line says over the file and the environment; what
/// `rtm serve --check-config` checks along with them.
#[derive(Debug, Clone, Default)]
pub struct FlagOverrides {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub log_level: Option<String>,
    pub app_certificate: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub cluster: Option<String>,
}

/// One thing wrong with a configuration: where it is, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// A key of a file (`` `grace_s` in FILE ``), a variable, or a flag.
    pub origin: String,
    pub reason: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.origin, self.reason)
    }
}

/// Settings that must be above zero (0 would stall, spin or expire at once).
const POSITIVE_KEYS: &[&str] = &[
    "heartbeat_interval_s",
    "heartbeat_timeout_s",
    "login_timeout_s",
    "offline_ttl_days",
    "offline_sender_window_s",
    "offline_window",
    "invitation_expiry_s",
    "invitation_ack_timeout_s",
    "media_ttl_days",
    "media_partial_ttl_s",
    "queue_frames",
    "queue_bytes",
    "max_frame_bytes",
    "limit_scale",
    "failed_login_window_s",
    "handshake_timeout_s",
    "message_timeout_s",
];

/// The problems of one table of a file, key by key: each entry is read on
/// its own, so every unknown key and every value of the wrong type is
/// reported, not only the first. Returns the entries that are fine.
fn check_table<T: serde::de::DeserializeOwned>(
    table: &toml::Table,
    prefix: &str,
    file: &Path,
    problems: &mut Vec<ConfigProblem>,
) -> toml::Table {
    let mut good = toml::Table::new();
    for (key, value) in table {
        let one: toml::Table = [(key.clone(), value.clone())].into_iter().collect();
        match one.try_into::<T>() {
            Ok(_) => {
                good.insert(key.clone(), value.clone());
            }
            Err(e) => {
                let message = e.to_string();
                let reason = if message.contains("unknown field") {
                    "unknown key (not a setting of server.toml: check its spelling and its table)"
                        .to_string()
                } else {
                    format!(
                        "wrong type or value ({}): see the shipped config/server.toml",
                        message.lines().next().unwrap_or_default().trim()
                    )
                };
                problems.push(ConfigProblem {
                    origin: format!("`{prefix}{key}` in {}", file.display()),
                    reason,
                });
            }
        }
    }
    good
}

/// Checks `listen`-style `HOST:PORT`.
fn check_listen(listen: &str) -> Result<(), String> {
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = listen.rsplit_once(':') else {
        return Err(format!(
            "{listen:?} is not HOST:PORT (for example 127.0.0.1:7420)"
        ));
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!(
            "{listen:?} has no host (for example 127.0.0.1:7420)"
        ));
    }
    port.parse::<u16>()
        .map(|_| ())
        .map_err(|_| format!("{port:?} is not a port number (0-65535) in {listen:?}"))
}

/// Checks a Redis URL of cluster mode.
fn check_redis_url(url: &str) -> Result<(), String> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a Redis URL: it must start with redis:// or rediss:// (for example redis://127.0.0.1:6379/0)",
            super::cluster::redact_url(url)
        ))
    }
}

impl ServerSettings {
    /// Everything wrong with the configuration `rtm serve` would run with
    /// (built-in defaults ← the file ← environment ← `flags`), all at once.
    /// `Ok` holds the file that was read (or would have been).
    pub fn check(
        paths: &Paths,
        file: Option<&Path>,
        flags: &FlagOverrides,
    ) -> Result<PathBuf, Vec<ConfigProblem>> {
        let config_file = file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| paths.server_config_file());
        let mut problems = Vec::new();
        let mut user = ServerFile::default();
        match read_optional(&config_file, file.is_some()) {
            Err(e) => problems.push(ConfigProblem {
                origin: config_file.display().to_string(),
                reason: e.to_string(),
            }),
            Ok(None) => {}
            Ok(Some(text)) => match text.parse::<toml::Table>() {
                Err(e) => problems.push(ConfigProblem {
                    origin: config_file.display().to_string(),
                    reason: format!("not valid TOML: {}", e.to_string().trim()),
                }),
                Ok(mut table) => {
                    let cluster = table.remove("cluster");
                    let mut good =
                        check_table::<ServerFile>(&table, "", &config_file, &mut problems);
                    match cluster {
                        Some(toml::Value::Table(c)) => {
                            let c = check_table::<ClusterFile>(
                                &c,
                                "cluster.",
                                &config_file,
                                &mut problems,
                            );
                            good.insert("cluster".into(), toml::Value::Table(c));
                        }
                        Some(_) => problems.push(ConfigProblem {
                            origin: format!("`cluster` in {}", config_file.display()),
                            reason: "must be a table: a [cluster] section".into(),
                        }),
                        None => {}
                    }
                    // Only entries that were read fine remain: this cannot fail.
                    user = good.try_into().unwrap_or_default();
                }
            },
        }
        let in_file = |key: &str| format!("`{key}` in {}", config_file.display());
        let origin = |key: &str, set_in_file: bool| {
            if set_in_file {
                in_file(key)
            } else {
                format!("`{key}` (built-in default)")
            }
        };
        // Which keys the user file set, for naming where a value came from.
        let user_keys: Vec<&'static str> = {
            let mut v = Vec::new();
            macro_rules! note {
                ($($k:ident),*) => { $( if user.$k.is_some() { v.push(stringify!($k)); } )* };
            }
            note!(
                heartbeat_interval_s,
                heartbeat_timeout_s,
                login_timeout_s,
                offline_ttl_days,
                offline_sender_window_s,
                offline_window,
                invitation_expiry_s,
                invitation_ack_timeout_s,
                media_ttl_days,
                media_partial_ttl_s,
                queue_frames,
                queue_bytes,
                max_frame_bytes,
                limit_scale,
                failed_login_window_s,
                handshake_timeout_s,
                message_timeout_s,
                listen,
                app_certificate,
                tls_cert,
                tls_key,
                data
            );
            if user.cluster.as_ref().is_some_and(|c| c.redis_url.is_some()) {
                v.push("cluster.redis_url");
            }
            v
        };
        let from_user = |k: &str| user_keys.contains(&k);
        let user_cluster = user.cluster.clone().unwrap_or_default();
        let f = user.over(ServerFile::built_in());

        let numbers: &[(&str, Option<u64>)] = &[
            ("heartbeat_interval_s", f.heartbeat_interval_s),
            ("heartbeat_timeout_s", f.heartbeat_timeout_s),
            ("login_timeout_s", f.login_timeout_s),
            ("offline_ttl_days", f.offline_ttl_days),
            ("offline_sender_window_s", f.offline_sender_window_s),
            ("offline_window", f.offline_window.map(|n| n as u64)),
            ("invitation_expiry_s", f.invitation_expiry_s),
            ("invitation_ack_timeout_s", f.invitation_ack_timeout_s),
            ("media_ttl_days", f.media_ttl_days),
            ("media_partial_ttl_s", f.media_partial_ttl_s),
            ("queue_frames", f.queue_frames.map(|n| n as u64)),
            ("queue_bytes", f.queue_bytes.map(|n| n as u64)),
            ("max_frame_bytes", f.max_frame_bytes.map(|n| n as u64)),
            ("limit_scale", f.limit_scale.map(|n| n as u64)),
            ("failed_login_window_s", f.failed_login_window_s),
            ("handshake_timeout_s", f.handshake_timeout_s),
            ("message_timeout_s", f.message_timeout_s),
        ];
        debug_assert_eq!(numbers.len(), POSITIVE_KEYS.len());
        for (key, value) in numbers {
            if *value == Some(0) {
                problems.push(ConfigProblem {
                    origin: origin(key, from_user(key)),
                    reason: "must be at least 1".into(),
                });
            }
        }
        if let (Some(i), Some(t)) = (f.heartbeat_interval_s, f.heartbeat_timeout_s)
            && i > 0
            && t <= i
        {
            problems.push(ConfigProblem {
                origin: origin("heartbeat_timeout_s", from_user("heartbeat_timeout_s")),
                reason: format!(
                    "{t} s is not longer than heartbeat_interval_s ({i} s): every connection would time out between two heartbeats"
                ),
            });
        }
        if let (Some(w), Some(q)) = (f.offline_window, f.queue_frames)
            && q > 0
            && w >= q
        {
            problems.push(ConfigProblem {
                origin: origin("offline_window", from_user("offline_window")),
                reason: format!(
                    "{w} is not below queue_frames ({q}): a login with waiting messages would overflow its own queue"
                ),
            });
        }

        // Values the environment and flags can replace.
        let pick =
            |flag: Option<String>, flag_name: &str, var: &str, file: Option<String>, key: &str| {
                if let Some(v) = flag {
                    Some((v, format!("--{flag_name}")))
                } else if let Ok(v) = std::env::var(var)
                    && !v.is_empty()
                {
                    Some((v, var.to_string()))
                } else {
                    file.map(|v| (v, origin(key, from_user(key))))
                }
            };
        if let Some((listen, from)) = pick(
            flags.listen.clone(),
            "listen",
            "RTM_LISTEN",
            f.listen.clone(),
            "listen",
        ) && let Err(reason) = check_listen(&listen)
        {
            problems.push(ConfigProblem {
                origin: from,
                reason,
            });
        }
        let data = pick(
            flags.data.as_ref().map(|d| d.display().to_string()),
            "data",
            "RTM_DATA",
            f.data.as_ref().map(|d| d.display().to_string()),
            "data",
        );
        if let Some((data, from)) = data
            && Path::new(&data).exists()
            && !Path::new(&data).is_dir()
        {
            problems.push(ConfigProblem {
                origin: from,
                reason: format!("{data} exists and is not a directory"),
            });
        }
        // The certificate: an empty variable counts (see app_certificate_source).
        let certificate = match (&flags.app_certificate, std::env::var("RTM_APP_CERTIFICATE")) {
            (Some(c), _) => Some((c.clone(), "--app-certificate".to_string())),
            (None, Ok(c)) => Some((c, "RTM_APP_CERTIFICATE".to_string())),
            (None, Err(_)) => f
                .app_certificate
                .clone()
                .map(|c| (c, origin("app_certificate", true))),
        };
        if let Some((c, from)) = certificate
            && let Err(e) = check_app_certificate(&c)
        {
            problems.push(ConfigProblem {
                origin: from,
                reason: e.to_string(),
            });
        }
        let tls_cert = flags.tls_cert.clone().or(f.tls_cert.clone());
        let tls_key = flags.tls_key.clone().or(f.tls_key.clone());
        match (&tls_cert, &tls_key) {
            (Some(_), None) | (None, Some(_)) => problems.push(ConfigProblem {
                origin: "tls_cert / tls_key".into(),
                reason: "TLS needs both a certificate and a key".into(),
            }),
            _ => {}
        }
        for (key, path) in [("tls_cert", &tls_cert), ("tls_key", &tls_key)] {
            if let Some(p) = path
                && let Err(e) = std::fs::File::open(p)
            {
                problems.push(ConfigProblem {
                    origin: origin(key, from_user(key)),
                    reason: format!("cannot read {}: {e}", p.display()),
                });
            }
        }
        let url = pick(
            flags.cluster.clone().filter(|u| !u.is_empty()),
            "cluster",
            "RTM_CLUSTER",
            f.cluster.as_ref().and_then(|c| c.redis_url.clone()),
            "cluster.redis_url",
        );
        if let Some((url, from)) = url
            && !url.is_empty()
            && let Err(reason) = check_redis_url(&url)
        {
            problems.push(ConfigProblem {
                origin: from,
                reason,
            });
        }
        if let Some(c) = &f.cluster {
            let cluster_origin = |k: &str, set: bool| origin(&format!("cluster.{k}"), set);
            if c.heartbeat_ms == Some(0) {
                problems.push(ConfigProblem {
                    origin: cluster_origin("heartbeat_ms", user_cluster.heartbeat_ms.is_some()),
                    reason: "must be at least 1".into(),
                });
            }
            if let (Some(h), Some(t)) = (c.heartbeat_ms, c.node_ttl_ms)
                && t <= h
            {
                problems.push(ConfigProblem {
                    origin: cluster_origin("node_ttl_ms", user_cluster.node_ttl_ms.is_some()),
                    reason: format!(
                        "{t} ms is not longer than cluster.heartbeat_ms ({h} ms): live nodes would be taken for dead"
                    ),
                });
            }
        }
        if problems.is_empty() {
            Ok(config_file)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn empty_and_short_app_certificates_are_refused() {
        let mut c = ServerConfig::default();
        assert_eq!(
            c.set_app_certificate(Some(String::new())),
            Err(AppCertificateError::Empty)
        );
        assert_eq!(
            c.set_app_certificate(Some("s3cret".into())),
            Err(AppCertificateError::TooShort(6))
        );
        // A refused certificate leaves the server as it was, not half-secured.
        assert!(c.hub.dev_mode && c.conn.app_certificate.is_none());
        c.set_app_certificate(Some("0123456789abcdef".into()))
            .expect("16 characters are enough");
        assert!(!c.hub.dev_mode && c.conn.app_certificate.is_some());
    }

    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let s: ServerFile = toml::from_str(SERVER_DEFAULTS).unwrap();
        assert_eq!(s.listen.as_deref(), Some("127.0.0.1:7420"));
    }

    #[test]
    fn the_default_config_is_the_shipped_file() {
        let d = ServerConfig::default();
        assert_eq!(d.connect_rate_per_ip, 200);
        assert_eq!(d.max_connections, 50_000);
        assert_eq!(d.max_connections_per_ip, 20_000);
        assert_eq!(d.timing.heartbeat_interval, Duration::from_secs(5));
        let q = d.hub.offline_quota;
        assert_eq!(q.per_receiver_bytes, 2 * 1024 * 1024);
        assert_eq!(q.sender_window_ms, 3_600_000);
        assert_eq!(q.per_sender_messages, 1000);
        assert_eq!(q.per_sender_bytes, 16 * 1024 * 1024);
        assert_eq!(q.total_bytes, 1024 * 1024 * 1024);
        assert_eq!(d.conn.queue_bytes, 8 * 1024 * 1024);
        assert_eq!(d.conn.handshake_timeout, Duration::from_secs(5));
        assert_eq!(d.conn.message_timeout, Duration::from_secs(15));
        assert_eq!(d.fd_reserve, 64);
    }

    #[test]
    fn loading_without_a_user_file_gives_the_default() {
        let dir = std::env::temp_dir().join(format!("rtm-server-config-{}", std::process::id()));
        let paths = Paths {
            config_dir: dir.join("nothing-here"),
            data_dir: dir.clone(),
            log_dir: dir.clone(),
        };
        let loaded = ServerSettings::load(&paths, None).unwrap();
        if std::env::var_os("RTM_APP_CERTIFICATE").is_none() {
            assert_eq!(
                format!("{:?}", loaded.server),
                format!("{:?}", ServerConfig::default())
            );
        }
    }

    fn check_text(name: &str, text: &str, flags: &FlagOverrides) -> Vec<ConfigProblem> {
        let dir = std::env::temp_dir().join(format!("rtm-check-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = Paths {
            config_dir: dir.clone(),
            data_dir: dir.clone(),
            log_dir: dir.clone(),
        };
        let f = dir.join("server.toml");
        std::fs::write(&f, text).unwrap();
        let result = ServerSettings::check(&paths, Some(&f), flags);
        std::fs::remove_dir_all(&dir).ok();
        result.err().unwrap_or_default()
    }

    fn origins(problems: &[ConfigProblem]) -> Vec<String> {
        problems
            .iter()
            .map(|p| p.origin.split(' ').next().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn the_shipped_file_checks_clean() {
        let problems = check_text("shipped", SERVER_DEFAULTS, &FlagOverrides::default());
        // The environment of the test run may set a short certificate.
        if std::env::var_os("RTM_APP_CERTIFICATE").is_none()
            && std::env::var_os("RTM_LISTEN").is_none()
            && std::env::var_os("RTM_CLUSTER").is_none()
        {
            assert_eq!(problems, vec![]);
        }
    }

    #[test]
    fn every_unknown_key_and_wrong_type_is_reported() {
        let problems = check_text(
            "many",
            "graec_s = 1\nheartbeat_intervall_s = 2\nqueue_frames = \"big\"\noffline_cap = -1\n\
             [cluster]\nprefixx = \"a\"\nheartbeat_ms = \"x\"\n",
            &FlagOverrides::default(),
        );
        let o = origins(&problems);
        for key in [
            "`graec_s`",
            "`heartbeat_intervall_s`",
            "`queue_frames`",
            "`offline_cap`",
            "`cluster.prefixx`",
            "`cluster.heartbeat_ms`",
        ] {
            assert!(o.contains(&key.to_string()), "{key} not in {problems:#?}");
        }
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].reason.contains("unknown key"), "{problems:#?}");
    }

    #[test]
    fn out_of_range_values_are_all_reported() {
        let problems = check_text(
            "range",
            "listen = \"localhost\"\nqueue_frames = 0\nlimit_scale = 0\n\
             heartbeat_interval_s = 10\nheartbeat_timeout_s = 10\napp_certificate = \"abc\"\n\
             [cluster]\nredis_url = \"http://x:6379\"\nheartbeat_ms = 500\nnode_ttl_ms = 400\n",
            &FlagOverrides::default(),
        );
        if std::env::var_os("RTM_LISTEN").is_some()
            || std::env::var_os("RTM_APP_CERTIFICATE").is_some()
            || std::env::var_os("RTM_CLUSTER").is_some()
        {
            return;
        }
        let o = origins(&problems);
        for key in [
            "`listen`",
            "`queue_frames`",
            "`limit_scale`",
            "`heartbeat_timeout_s`",
            "`app_certificate`",
            "`cluster.redis_url`",
            "`cluster.node_ttl_ms`",
        ] {
            assert!(o.contains(&key.to_string()), "{key} not in {problems:#?}");
        }
        assert_eq!(problems.len(), 7, "{problems:#?}");
    }

    #[test]
    fn flags_are_checked_and_named_as_flags() {
        let flags = FlagOverrides {
            listen: Some("127.0.0.1:99999".into()),
            cluster: Some("tcp://redis".into()),
            app_certificate: Some(String::new()),
            tls_cert: Some(PathBuf::from("/nonexistent/cert.pem")),
            ..FlagOverrides::default()
        };
        let problems = check_text("flags", "", &flags);
        let o = origins(&problems);
        for origin in ["--listen", "--cluster", "--app-certificate", "tls_cert"] {
            assert!(
                o.iter().any(|x| x.contains(origin)),
                "{origin} not in {problems:#?}"
            );
        }
    }

    #[test]
    fn a_user_file_overrides_the_shared_timings_once() {
        let dir = std::env::temp_dir().join(format!("rtm-server-config-u-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = Paths {
            config_dir: dir.clone(),
            data_dir: dir.clone(),
            log_dir: dir.clone(),
        };
        let f = dir.join("s.toml");
        std::fs::write(&f, "heartbeat_interval_s = 7\nconnect_rate_per_ip = 0\n").unwrap();
        let s = ServerSettings::load(&paths, Some(&f)).unwrap();
        assert_eq!(s.server.timing.heartbeat_interval, Duration::from_secs(7));
        assert_eq!(s.server.connect_rate_per_ip, 0);
        assert_eq!(s.server.max_connections, 50_000);
        std::fs::write(&f, "heartbeat_intervall_s = 7\n").unwrap();
        let err = ServerSettings::load(&paths, Some(&f)).unwrap_err();
        assert!(err.to_string().contains("heartbeat_intervall_s"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
