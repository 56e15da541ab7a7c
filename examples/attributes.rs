//! A channel-attribute watcher on the rtm SDK: joins a channel, prints its
//! attributes (who set each, and when), then every update as it happens,
//! until Ctrl-C; then logs out.
//!
//! Against a server of your own (`rtm serve` listens on 127.0.0.1:7420):
//!
//!     rtm serve &
//!     cargo run --example attributes -- general
//!
//! Against the messenger's embedded server: start `rtm chat`; with no server
//! configured it hosts one on ws://127.0.0.1:7420, which is also this
//! program's default. Run the same command, then change the channel's
//! attributes from any client (the SDK's `add_or_update_channel_attributes`
//! and friends). Elsewhere add `--server ws://host:7420`; a server with an
//! app certificate also wants `--uid` and a `--token` (or `RTM_TOKEN`)
//! minted for it, e.g. by `rtm token --uid attrwatch`.
//!
//! One line per fact (`tests/examples.rs` reads them):
//!
//! ```text
//! 2026-05-01T12:00:00.000Z watching general as attrwatch-4711 on ws://127.0.0.1:7420 (3 members)
//! 2026-05-01T12:00:00.003Z topic = "release on Friday" (by alice at 2026-04-30T09:12:44.120Z)
//! 2026-05-01T12:00:09.870Z topic = "release on Monday" (by bob at 2026-05-01T12:00:09.866Z)
//! 2026-05-01T12:00:15.020Z topic removed
//! 2026-05-01T12:00:20.500Z logged out
//! ```
//!
//! The server pushes an update to the members only when the writer asks for
//! it (`enable_notification_to_channel_members`); quiet writes show up here
//! the next time the set is read: after a reconnection, or a restart.
//! A removal says no more than that: the server keeps no record of deletions.
//!
//! A program of your own needs only the SDK: `rtm = { default-features =
//! false, features = ["client"] }` and `tokio = { version = "1", features =
//! ["macros", "rt-multi-thread", "signal"] }`.
use std::collections::{BTreeMap, VecDeque};
use std::process::ExitCode;

use rtm::client::{
    ChannelAttribute, ChannelEvent, ChannelId, ClientConfig, ClientEvent, ClientEvents,
    ConnectionState, RtmClient, RtmError, Uid, now_ms,
};

const USAGE: &str = "\
usage: attributes [--server URL] [--uid UID] [--token TOKEN] CHANNEL

Joins CHANNEL and prints its attributes and every update, until Ctrl-C.

  --server URL     the rtm server (default ws://127.0.0.1:7420: `rtm serve`
                   or the server a running `rtm chat` embeds)
  --uid UID        the user this watcher logs in as (default attrwatch-<pid>)
  --token TOKEN    login token, for a server with an app certificate
                   (default: the RTM_TOKEN environment variable)";

const DEFAULT_SERVER: &str = "ws://127.0.0.1:7420";

#[derive(Debug)]
struct Args {
    server: String,
    uid: Uid,
    token: Option<String>,
    channel: ChannelId,
}

/// `Ok(None)` means `--help`. Only `std::env::args`: the SDK feature brings
/// no argument parser, and a watcher needs none.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut server = DEFAULT_SERVER.to_string();
    let mut uid = None;
    let mut token = std::env::var("RTM_TOKEN").ok().filter(|t| !t.is_empty());
    let mut channel = None;
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
            _ if channel.is_some() => return Err(format!("one channel only (got {arg:?} too)")),
            _ => {
                channel = Some(ChannelId::new(&arg).map_err(|e| format!("channel {arg:?}: {e}"))?);
            }
        }
    }
    let channel = channel.ok_or("name the CHANNEL to watch")?;
    // A uid of its own by default: logging in as someone already online
    // would end their session (REMOTE_LOGIN).
    let uid = match uid {
        Some(uid) => uid,
        None => Uid::new(format!("attrwatch-{}", std::process::id()))
            .map_err(|e| format!("default uid: {e}; give --uid"))?,
    };
    Ok(Some(Args {
        server,
        uid,
        token,
        channel,
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
            eprintln!("attributes: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("attributes: {problem}");
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
    // Logging out also leaves the channel, so the other members see this
    // watcher go at once.
    match client.logout().await {
        Ok(()) => say("logged out"),
        Err(e) => eprintln!("attributes: logging out failed: {e}"),
    }
    outcome
}

/// Joins, prints the current attributes, then every update; returns only
/// when the session cannot go on.
async fn watch(client: &RtmClient, events: &mut ClientEvents, args: &Args) -> Result<(), String> {
    let name = args.channel.as_str();
    // The handle must stay alive while watching; updates arrive on the
    // client's event stream, where the connection's events are too.
    let channel = client
        .create_channel(name)
        .map_err(|e| format!("channel {name}: {e}"))?;
    // Only members are told about updates, so join before reading: an
    // update between the two is then in the set read or comes after it.
    let members = channel
        .join()
        .await
        .map_err(|e| format!("joining {name} failed: {e}"))?;
    say(&format!(
        "watching {name} as {} on {} ({members} members)",
        args.uid, args.server
    ));
    // The last set printed, by key: an update carries the whole set, and
    // comparing with it tells what changed.
    let mut known = BTreeMap::new();
    // Events that came in while the set was being read, still to handle.
    let mut backlog = VecDeque::new();
    let current = client
        .get_channel_attributes(name)
        .await
        .map_err(|e| format!("reading the attributes of {name} failed: {e}"))?;
    if current.is_empty() {
        say("no attributes yet");
    }
    show_changes(&mut known, current);
    set_aside(events, &args.channel, &mut backlog);
    loop {
        let event = match backlog.pop_front() {
            Some(event) => event,
            None => match events.recv().await {
                Some(event) => event,
                None => return Err("the client's event stream ended".into()),
            },
        };
        match on_event(event, &args.channel, &mut known) {
            Next::Continue => {}
            // Updates may have been missed while the link was down.
            Next::Reread => match client.get_channel_attributes(name).await {
                Ok(current) => {
                    show_changes(&mut known, current);
                    set_aside(events, &args.channel, &mut backlog);
                }
                Err(e) => eprintln!("attributes: re-reading after the reconnection failed: {e}"),
            },
            Next::Stop(why) => return Err(why),
        }
    }
}

/// Moves the events already received into `backlog`, minus this channel's
/// attribute updates: the server answers in order, so those are already in
/// the set just read, and printing them now would show older values as if
/// they were new.
fn set_aside(events: &mut ClientEvents, channel: &ChannelId, backlog: &mut VecDeque<ClientEvent>) {
    while let Some(event) = events.try_recv() {
        let stale = matches!(
            &event,
            ClientEvent::Channel { channel_id, event: ChannelEvent::AttributesUpdated(_) }
                if channel_id == channel
        );
        if !stale {
            backlog.push_back(event);
        }
    }
}

/// What the watcher does after an event.
enum Next {
    Continue,
    /// Read the whole set again (after a reconnection).
    Reread,
    Stop(String),
}

/// The whole event handling of the watcher: attribute updates of our
/// channel, and what happens to the connection.
fn on_event(
    event: ClientEvent,
    channel: &ChannelId,
    known: &mut BTreeMap<String, ChannelAttribute>,
) -> Next {
    match event {
        ClientEvent::Channel {
            channel_id,
            event: ChannelEvent::AttributesUpdated(attributes),
        } if channel_id == *channel => show_changes(known, attributes),
        ClientEvent::ConnectionStateChanged { state, reason } => {
            say(&format!("connection {state:?} ({reason:?})"));
            // ABORTED is final (this uid logged in elsewhere, or was
            // banned): the SDK does not reconnect, so neither do we.
            if state == ConnectionState::Aborted {
                return Next::Stop(format!("the server ended this session ({reason:?})"));
            }
        }
        ClientEvent::Restored {
            rejoined, failed, ..
        } => {
            if let Some((_, e)) = failed.iter().find(|(c, _)| c == channel) {
                return Next::Stop(format!("could not rejoin {channel}: {e}"));
            }
            if rejoined.contains(channel) {
                say(&format!("reconnected; rejoined {channel}"));
                return Next::Reread;
            }
        }
        ClientEvent::TokenPrivilegeWillExpire { expires_in_s } => say(&format!(
            "the login token expires in {expires_in_s} s; restart with a fresh --token"
        )),
        _ => {}
    }
    Next::Continue
}

/// Prints how `now` (a whole set) differs from `known`, and remembers it.
fn show_changes(known: &mut BTreeMap<String, ChannelAttribute>, now: Vec<ChannelAttribute>) {
    let now: BTreeMap<String, ChannelAttribute> =
        now.into_iter().map(|a| (a.key.clone(), a)).collect();
    for key in known.keys().filter(|k| !now.contains_key(*k)) {
        say(&format!("{key} removed"));
    }
    for attribute in now.values().filter(|a| known.get(&a.key) != Some(*a)) {
        say(&format!(
            "{} = {:?} (by {} at {})",
            attribute.key,
            attribute.value,
            attribute.last_update_user_id,
            utc(attribute.last_update_ts)
        ));
    }
    *known = now;
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
