//! The `rtm` binary: `rtm` / `rtm chat` (the messenger), `rtm serve` (the server).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use rtm::config::Paths;
use rtm::server::ServerSettings;
use rtm::server::{self, SqliteStore, Store};

/// The subcommands that need more than the server; each comes with its feature.
mod cli {
    pub mod admin;
    #[cfg(feature = "tui")]
    pub mod chat;
}

/// Without the `tui` feature this binary is a server only; say so plainly.
#[cfg(not(feature = "tui"))]
async fn chat(_args: ChatArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "this rtm was built without the messenger (cargo feature `tui`); \
         use `rtm serve`, or build with the default features"
    )
}
#[cfg(feature = "tui")]
use cli::chat::chat;

fn after_help() -> String {
    let p = Paths::discover();
    format!(
        "Files:\n  config  {}\n  data    {}\n  logs    {}\n(RTM_HOME=DIR puts all three under DIR.)",
        p.config_dir.display(),
        p.data_dir.display(),
        p.log_dir.display()
    )
}

#[derive(Parser)]
#[command(
    name = "rtm",
    version,
    about = "Self-hosted real-time messaging: a terminal messenger and its server",
    long_about = "rtm is a self-hosted real-time messaging system: `rtm serve` runs the server, \
`rtm chat` (or plain `rtm`) is a full-screen terminal messenger. With no server configured, \
the messenger starts one inside itself on ws://127.0.0.1:7420, so it works alone and a second \
`rtm chat` on the same machine joins the first.",
    after_help = after_help()
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    chat: ChatArgs,
}

#[derive(Subcommand)]
enum Command {
    /// The full-screen messenger (the default). Logs go to a file, never to the screen.
    #[command(after_help = after_help())]
    Chat(ChatArgs),
    /// Run the server.
    #[command(after_help = after_help())]
    Serve(ServeArgs),
    /// Load-test a server (spawns one unless --server is given) and report
    /// throughput, latency percentiles, loss and memory.
    #[cfg(feature = "bench")]
    Bench(Box<rtm::bench::BenchArgs>),
    /// Mint a login token for a server that runs with an app certificate.
    Token(TokenArgs),
    /// Operate a running server: list sessions, kick or ban a uid (needs
    /// the server's --metrics-listen and --admin-secret).
    Admin(cli::admin::AdminArgs),
    /// Copy the server's database (offline messages, channel attributes)
    /// consistently, also while the server runs.
    #[command(after_help = after_help())]
    Backup(BackupArgs),
}

#[derive(Args)]
struct BackupArgs {
    /// The server's data directory, holding rtm.sqlite3 [env: RTM_DATA]
    /// (default: as `rtm serve` would use)
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Server config file to read the data directory from
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Replace OUT if it exists
    #[arg(long)]
    force: bool,
    /// Where the copy goes: a file, or a directory to hold rtm.sqlite3
    #[arg(value_name = "OUT")]
    out: PathBuf,
}

#[derive(Args)]
struct TokenArgs {
    /// The user id the token is for
    #[arg(long)]
    uid: String,
    /// Seconds the token stays valid
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// The app certificate [env: RTM_APP_CERTIFICATE] (default: from the server config)
    #[arg(long)]
    app_certificate: Option<String>,
    /// Server config file to read the certificate from
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args, Clone, Default)]
struct ChatArgs {
    /// Server URL, e.g. ws://127.0.0.1:7420; several separated by commas to
    /// fail over between the nodes of a cluster [env: RTM_SERVER]
    #[arg(long)]
    server: Option<String>,
    /// Your user id [env: RTM_UID]; asked on a login screen when not given
    #[arg(long)]
    uid: Option<String>,
    /// Login token, for servers with an app certificate [env: RTM_TOKEN]
    #[arg(long)]
    token: Option<String>,
    /// Config file (default: client.toml in the config dir)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// For wss:// servers: trust this CA (PEM) instead of the system roots
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Keep no local history this time: none is shown, none is written
    /// (config: history = false)
    #[arg(long)]
    no_history: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [env: RTM_LISTEN] [default: 127.0.0.1:7420]
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Directory for the server's data [env: RTM_DATA]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Config file (default: server.toml in the config dir)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log level on standard error [env: RTM_LOG]
    #[arg(long)]
    log_level: Option<String>,
    /// Require login tokens signed with this secret [env: RTM_APP_CERTIFICATE]
    #[arg(long)]
    app_certificate: Option<String>,
    /// Serve wss:// with this PEM certificate chain (needs --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Run as a node of a cluster on this Redis (redis://HOST:PORT[/DB]);
    /// offline messages and channel attributes then live in Redis
    /// [env: RTM_CLUSTER] (config: cluster.redis_url)
    #[arg(long, value_name = "REDIS_URL")]
    cluster: Option<String>,
    /// Serve Prometheus metrics (/metrics) and health checks (/healthz,
    /// /readyz) on this address (config: metrics_listen)
    #[arg(long, value_name = "HOST:PORT")]
    metrics_listen: Option<String>,
    /// Turn on the admin interface on the metrics listener with this secret
    /// (`rtm admin`) [env: RTM_ADMIN_SECRET] (config: admin_secret)
    #[arg(long, hide_env_values = true)]
    admin_secret: Option<String>,
    /// Log lines as `text` (for people) or `json` (one object per line, for
    /// log shippers) [env: RTM_LOG_FORMAT]
    #[arg(long, env = "RTM_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Check the configuration (file, environment and these flags), report
    /// every problem, and exit without serving
    #[arg(long)]
    check_config: bool,
}

fn main() -> std::process::ExitCode {
    ignore_file_size_signal();
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the cause chain on one line, without a backtrace:
            // these messages are for people.
            eprintln!("rtm: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A write past the file size limit (`ulimit -f`) raises SIGXFSZ, whose
/// default action kills the process: one large offline message would take
/// the whole server (or the messenger with its embedded server) down.
/// Ignored, the write fails with EFBIG instead, and that failure becomes an
/// error reply while the server stays up.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: sets the disposition of one signal to "ignore" before any other
    // thread exists; no handler code runs, so nothing can be unsound.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Some(Command::Serve(args)) => runtime.block_on(serve(args)),
        Some(Command::Chat(args)) => runtime.block_on(chat(args)),
        Some(Command::Token(args)) => token(args),
        Some(Command::Admin(args)) => cli::admin::admin(args),
        Some(Command::Backup(args)) => backup(args),
        #[cfg(feature = "bench")]
        Some(Command::Bench(args)) => runtime.block_on(rtm::bench::main(*args)),
        None => runtime.block_on(chat(cli.chat)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let paths = Paths::discover();
    if args.check_config {
        return check_config(&paths, &args);
    }
    let mut settings = ServerSettings::load(&paths, args.config.as_deref())?;
    if let Some(l) = args.listen {
        settings.listen = l;
    }
    if let Some(d) = args.data {
        settings.data_dir = d;
    }
    if let Some(l) = args.log_level {
        settings.log_level = l;
    }
    if let Some(cert) = args.app_certificate {
        settings
            .server
            .set_app_certificate(Some(cert.clone()))
            .context("--app-certificate")?;
        settings.app_certificate = Some(cert);
    }
    let tls_cert = args.tls_cert.or(settings.tls_cert.clone());
    let tls_key = args.tls_key.or(settings.tls_key.clone());
    let scheme = match (&tls_cert, &tls_key) {
        (Some(cert), Some(key)) => {
            settings.server.tls = Some(server::load_tls(cert, key)?);
            "wss"
        }
        (None, None) => "ws",
        _ => anyhow::bail!("TLS needs both a certificate and a key (--tls-cert and --tls-key)"),
    };
    let json_logs = match args.log_format.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => anyhow::bail!(
            "--log-format {other:?}: use text (lines for people) or json (one object per line)"
        ),
    };
    rtm::logging::init_stderr(&settings.log_level, json_logs)?;
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            settings.data_dir.display()
        )
    })?;
    if let Some(url) = args.cluster.filter(|u| !u.is_empty()) {
        settings.set_cluster_url(url);
    }
    if let Some(addr) = args.metrics_listen {
        settings.server.metrics_listen = Some(addr).filter(|a| !a.is_empty());
    }
    if let Some(secret) = args.admin_secret {
        settings.server.admin_secret = Some(secret).filter(|s| !s.is_empty());
    }
    let store: Arc<dyn Store> = match &settings.server.cluster {
        Some(c) => server::RedisStore::connect(&c.redis_url, &c.prefix)
            .await
            .with_context(|| {
                format!(
                    "cannot use the cluster's Redis at {} (--cluster)",
                    server::cluster::redact_url(&c.redis_url)
                )
            })?,
        None => Arc::new(SqliteStore::open_dir(&settings.data_dir)?),
    };
    settings.server.hub.media.dir = Some(settings.data_dir.join("media"));
    let stats = store.stats().await?;
    let listener = server::bind(&settings.listen).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    println!("rtm server listening on {scheme}://{addr}");
    println!("data: {}", store.location());
    if let Some(c) = &settings.server.cluster {
        println!(
            "cluster: a node on Redis {} (prefix {})",
            server::cluster::redact_url(&c.redis_url),
            c.prefix
        );
    }
    println!(
        "stored: {} offline message(s) for {} user(s), attributes of {} channel(s)",
        stats.offline_messages, stats.offline_receivers, stats.channels_with_attributes
    );
    if settings.server.hub.dev_mode {
        println!(
            "WARNING: development mode: no app certificate is configured, so logins are not checked. \
Anyone who can reach this address can log in as anyone. Set an app certificate (--app-certificate or RTM_APP_CERTIFICATE) and hand out tokens made by `rtm token`."
        );
    } else {
        println!("logins need a token signed with the app certificate (`rtm token --uid U`)");
    }
    if let Some(addr) = &settings.server.metrics_listen {
        println!("metrics: http://{addr}/metrics (health: /healthz, /readyz)");
    }
    println!("press Ctrl-C to stop");
    server::run(listener, settings.server, store.clone(), shutdown).await?;
    // Bookkeeping writes nobody waited for (e.g. removing delivered offline
    // messages) are done before the process exits, and the WAL is folded
    // into the main file: after a clean stop, copying rtm.sqlite3 alone is a
    // complete backup.
    store
        .shutdown()
        .await
        .context("finishing the database at shutdown")?;
    println!("rtm server stopped");
    Ok(())
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let paths = Paths::discover();
    let settings = ServerSettings::load(&paths, args.config.as_deref())?;
    let Some(cert) = args.app_certificate.or(settings.app_certificate) else {
        anyhow::bail!(
            "no app certificate: pass --app-certificate, set RTM_APP_CERTIFICATE, or set app_certificate in {}",
            settings.config_file.display()
        );
    };
    server::config::check_app_certificate(&cert).context("the app certificate")?;
    let uid = rtm::protocol::Uid::new(args.uid)?;
    let expires_at = rtm::protocol::now_ms() / 1000 + args.ttl;
    println!("{}", rtm::token::mint(cert.as_bytes(), &uid, expires_at));
    Ok(())
}

/// `rtm serve --check-config`: every problem, or "configuration OK".
fn check_config(paths: &Paths, args: &ServeArgs) -> anyhow::Result<()> {
    let flags = server::config::FlagOverrides {
        listen: args.listen.clone(),
        data: args.data.clone(),
        log_level: args.log_level.clone(),
        app_certificate: args.app_certificate.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        cluster: args.cluster.clone(),
    };
    let mut problems = match ServerSettings::check(paths, args.config.as_deref(), &flags) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    };
    // The log filter is the logging layer's to parse; the settings only
    // carry it.
    let log_level = args
        .log_level
        .clone()
        .map(|l| (l, "--log-level".to_string()))
        .or_else(|| {
            std::env::var("RTM_LOG")
                .ok()
                .filter(|v| !v.is_empty())
                .map(|l| (l, "RTM_LOG".to_string()))
        });
    let file = args
        .config
        .clone()
        .unwrap_or_else(|| paths.server_config_file());
    // Read from the file even when other keys of it are wrong, so that this
    // problem is reported along with theirs.
    let log_level = log_level.or_else(|| {
        let table = std::fs::read_to_string(&file)
            .ok()?
            .parse::<toml::Table>()
            .ok()?;
        let level = table.get("log_level")?.as_str()?.to_string();
        Some((level, format!("`log_level` in {}", file.display())))
    });
    if let Some((level, origin)) = log_level
        && let Err(e) = tracing_subscriber::EnvFilter::try_new(&level)
    {
        problems.push(server::config::ConfigProblem {
            origin,
            reason: format!("{level:?} is not a log filter ({e}); for example info or rtm=debug"),
        });
    }
    if problems.is_empty() {
        let note = if file.exists() {
            ""
        } else {
            " (not there: the built-in defaults)"
        };
        println!("configuration OK: {}{note}", file.display());
        return Ok(());
    }
    for p in &problems {
        eprintln!("{p}");
    }
    anyhow::bail!(
        "{} problem(s) in the configuration ({})",
        problems.len(),
        file.display()
    )
}

/// `rtm backup`: a consistent copy of the live database.
fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let paths = Paths::discover();
    let (data_dir, cluster) = match args.data {
        Some(d) => (d, false),
        None => {
            let s = ServerSettings::load(&paths, args.config.as_deref())?;
            let cluster = s.server.cluster.is_some();
            (s.data_dir, cluster)
        }
    };
    let report = server::backup::backup(&data_dir, &args.out, args.force).map_err(|e| {
        if cluster && matches!(e, server::backup::BackupError::NoDatabase { .. }) {
            anyhow::anyhow!(
                "{e}. This server is configured as a cluster node: its data lives in Redis, and Redis's own persistence (RDB snapshots with BGSAVE, or the AOF) is the backup"
            )
        } else {
            e.into()
        }
    })?;
    let s = report.stats;
    println!(
        "backed up {} to {} ({} bytes, schema version {})",
        report.source.display(),
        report.destination.display(),
        report.bytes,
        report.schema_version
    );
    println!(
        "it holds {} offline message(s) for {} user(s), attributes of {} channel(s)",
        s.offline_messages, s.offline_receivers, s.channels_with_attributes
    );
    let media = data_dir.join("media");
    if media.is_dir() {
        println!(
            "files and images are not in the database: copy {} as well (any file copy will do)",
            media.display()
        );
    }
    println!(
        "to restore: stop the server, delete {db}-wal and {db}-shm in its data directory if there, put the copy there as {db}, start it",
        db = server::DB_FILE
    );
    Ok(())
}

/// Cancels `token` on Ctrl-C or SIGTERM.
fn spawn_signal_handler(token: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        token.cancel();
    });
}
