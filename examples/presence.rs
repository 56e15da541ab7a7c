//! A presence monitor on the rtm SDK: logs in as WATCHER, prints whether each
//! watched user is online now, then every change of their status with a UTC
//! timestamp, until Ctrl-C; then logs out.
//!
//! Against a server of your own (`rtm serve` listens on 127.0.0.1:7420):
//!
//!     rtm serve &
//!     cargo run --example presence -- --uid watcher alice bob
//!
//! Against the messenger's embedded server: start `rtm chat`; with no server
//! configured it hosts one on ws://127.0.0.1:7420, which is also this
//! program's default. Run the same command and log in as alice in a second
//! messenger to see her come online. Elsewhere add `--server
//! ws://host:7420`; a server with an app certificate also wants `--token`
//! (or `RTM_TOKEN`) minted for WATCHER, e.g. by `rtm token --uid watcher`.
//!
//! One line per fact (`tests/examples.rs` reads them):
//!
//! ```text
//! 2026-05-01T12:00:00.000Z watching alice, bob as watcher on ws://127.0.0.1:7420
//! 2026-05-01T12:00:00.002Z alice ONLINE (initial)
//! 2026-05-01T12:00:00.002Z bob OFFLINE (initial)
//! 2026-05-01T12:00:07.120Z bob ONLINE
//! 2026-05-01T12:00:30.410Z bob UNREACHABLE
//! 2026-05-01T12:00:31.002Z bob ONLINE
//! 2026-05-01T12:00:40.500Z logged out
//! ```
//!
//! UNREACHABLE means the user's link dropped less than the server's grace
//! period ago: they may come back without ever being OFFLINE.
//!
//! A program of your own needs only the SDK: `rtm = { default-features =
//! false, features = ["client"] }` and `tokio = { version = "1", features =
//! ["macros", "rt-multi-thread", "signal"] }`.
use std::collections::BTreeMap;
use std::process::ExitCode;

use rtm::client::{
    ClientConfig, ClientEvent, ClientEvents, ConnectionState, PeerOnlineState, RtmClient, RtmError,
    Uid, now_ms,
};

const USAGE: &str = "\
usage: presence [--server URL] [--token TOKEN] --uid WATCHER UID...

Prints whether each UID is online, then every change, until Ctrl-C.

  --server URL     the rtm server (default ws://127.0.0.1:7420: `rtm serve`
                   or the server a running `rtm chat` embeds)
  --uid WATCHER    the user this monitor logs in as (not one of the watched
                   users' own sessions: a second login of a uid replaces the first)
  --token TOKEN    login token, for a server with an app certificate
                   (default: the RTM_TOKEN environment variable)
  UID...           the users to watch (1 to 256)";

const DEFAULT_SERVER: &str = "ws://127.0.0.1:7420";

/// The query and the subscription both take at most this many users.
const MAX_PEERS: usize = 256;

#[derive(Debug)]
struct Args {
    server: String,
    uid: Uid,
    token: Option<String>,
    peers: Vec<Uid>,
}

/// `Ok(None)` means `--help`. Only `std::env::args`: the SDK feature brings
/// no argument parser, and a monitor needs none.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut server = DEFAULT_SERVER.to_string();
    let mut uid = None;
    let mut token = std::env::var("RTM_TOKEN").ok().filter(|t| !t.is_empty());
    let mut peers: Vec<Uid> = Vec::new();
    while let Some(arg) = args.next() {
        // `--flag value` and `--flag=value` both work.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--server" => server = value("--server")?,
            "--uid" => {
                let v = value("--uid")?;
                uid = Some(Uid::new(&v).map_err(|e| format!("--uid {v:?}: {e}"))?);
            }
            "--token" => token = Some(value("--token")?),
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            _ => {
                let peer = Uid::new(&arg).map_err(|e| format!("user {arg:?}: {e}"))?;
                // Watching someone twice is harmless but would print twice.
                if !peers.contains(&peer) {
                    peers.push(peer);
                }
            }
        }
    }
    let uid = uid.ok_or("--uid WATCHER is required")?;
    if peers.is_empty() {
        return Err("name at least one user to watch".into());
    }
    if peers.len() > MAX_PEERS {
        return Err(format!("at most {MAX_PEERS} users can be watched"));
    }
    Ok(Some(Args {
        server,
        uid,
        token,
        peers,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("presence: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("presence: {problem}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let (client, mut events) = RtmClient::new(args.server.clone(), ClientConfig::default());
    client
        .login(args.uid.as_str(), args.token.clone())
        .await
        .map_err(|e| login_failed(&args.server, &e))?;
    // The stream starts with the login's own CONNECTING and CONNECTED, which
    // the Ok above already said; later connection changes are news.
    while events.try_recv().is_some() {}
    let outcome = tokio::select! {
        outcome = watch(&client, &mut events, &args) => outcome,
        // Ctrl-C is the normal way out; it may cut a request short, which
        // is fine since the next step is logging out.
        stop = tokio::signal::ctrl_c() => {
            stop.map_err(|e| format!("cannot listen for Ctrl-C: {e}"))
        }
    };
    // Whatever ended the watch, say goodbye: the server then drops the
    // session at once instead of waiting out the grace period.
    match client.logout().await {
        Ok(()) => say("logged out"),
        Err(e) => eprintln!("presence: logging out failed: {e}"),
    }
    outcome
}

/// Prints the initial states, subscribes, and prints changes; returns only
/// when the session cannot go on.
async fn watch(client: &RtmClient, events: &mut ClientEvents, args: &Args) -> Result<(), String> {
    let names: Vec<&str> = args.peers.iter().map(Uid::as_str).collect();
    // What has been printed per user, so repeats are not printed again.
    let mut known = BTreeMap::new();
    let online = client
        .query_peers_online_status(&names)
        .await
        .map_err(|e| format!("querying who is online failed: {e}"))?;
    say(&format!(
        "watching {} as {} on {}",
        names.join(", "),
        args.uid,
        args.server
    ));
    for (peer, is_online) in online {
        let state = if is_online {
            PeerOnlineState::Online
        } else {
            PeerOnlineState::Offline
        };
        say(&format!("{peer} {} (initial)", state_name(state)));
        known.insert(peer, state);
    }
    // The subscription starts with everyone's current state; `known` turns
    // that into lines only for whoever changed since the query. The SDK
    // renews the subscription by itself after a reconnection.
    client
        .subscribe_peers_online_status(&names)
        .await
        .map_err(|e| format!("subscribing to their status failed: {e}"))?;
    while let Some(event) = events.recv().await {
        if let Next::Stop(why) = on_event(event, &mut known) {
            return Err(why);
        }
    }
    Err("the client's event stream ended".into())
}

/// Whether the monitor goes on after an event.
enum Next {
    Continue,
    Stop(String),
}

/// The whole event handling of the monitor: prints status changes (only
/// real changes: `known` is the last state printed per user) and what
/// happens to the connection.
fn on_event(event: ClientEvent, known: &mut BTreeMap<Uid, PeerOnlineState>) -> Next {
    match event {
        ClientEvent::PeersOnlineStatusChanged(states) => {
            for (peer, state) in states {
                if known.insert(peer.clone(), state) != Some(state) {
                    say(&format!("{peer} {}", state_name(state)));
                }
            }
        }
        ClientEvent::ConnectionStateChanged { state, reason } => {
            say(&format!("connection {state:?} ({reason:?})"));
            // ABORTED is final (this uid logged in elsewhere, or was
            // banned): the SDK does not reconnect, so neither do we.
            if state == ConnectionState::Aborted {
                return Next::Stop(format!("the server ended this session ({reason:?})"));
            }
        }
        ClientEvent::Restored {
            subscriptions_restored,
            ..
        } => say(&format!(
            "reconnected; watching {subscriptions_restored} users again"
        )),
        ClientEvent::TokenPrivilegeWillExpire { expires_in_s } => say(&format!(
            "the login token expires in {expires_in_s} s; restart with a fresh --token"
        )),
        _ => {}
    }
    Next::Continue
}

fn state_name(state: PeerOnlineState) -> &'static str {
    match state {
        PeerOnlineState::Online => "ONLINE",
        PeerOnlineState::Unreachable => "UNREACHABLE",
        PeerOnlineState::Offline => "OFFLINE",
    }
}

fn login_failed(server: &str, e: &RtmError) -> String {
    match e {
        RtmError::Connect { .. } => format!(
            "{e}\nis a server running there? start one with `rtm serve`, or run `rtm chat`, \
             which embeds one on {DEFAULT_SERVER}"
        ),
        _ => format!("logging in to {server} failed: {e}"),
    }
}

/// One line of output, stamped with the current UTC time.
fn say(line: &str) {
    println!("{} {line}", utc(now_ms()));
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC
/// (`2026-05-01T12:00:00.000Z`), computed here so the example needs no date
/// crate (days to civil date: Howard Hinnant's algorithm).
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        ms % 1_000
    )
}
