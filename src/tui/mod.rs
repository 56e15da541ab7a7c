//! `rtm chat`: the full-screen messenger on top of the SDK (it reaches the
//! wire types only through `crate::client`).
//!
//! The parts, and where a feature goes:
//! - [`app`]: [`App`], the whole state, and [`App::update`]: `Event` in,
//!   [`Command`]s out; synchronous, no IO. `app/mod.rs` holds the struct and
//!   the dispatch; each seam is its own file of `impl App`: `keys` (keyboard,
//!   mouse), `search`, `unread` (moving between conversations), `completion`
//!   (Tab, input history), `attributes`, `panes` (list rows, opening a
//!   conversation), `sending` (the input line, slash commands), `events`
//!   (what the SDK pushes), `results` (one method per command result);
//!   `messages` has `Event`/`Command`/`CommandResult`, `state` the small
//!   types `render` reads. A new key goes in `keys`, a new command's effect
//!   in `sending` and its answer in `results`; its unit tests in
//!   `app/tests/`, next to the part they drive.
//! - [`selection`]: the one selected-row type of every list pane.
//! - [`commands`]: the slash-command table and parser; [`keymap`]: the key
//!   table (rebindable from `[keys.*]` in client.toml). Both feed the help
//!   overlay, so a new command or key is one row.
//! - [`conversation`]: entries, scrollback anchored to an entry, search,
//!   mentions, wrapping; [`input`]: the multi-line editor.
//! - [`render`]: pure drawing of `&App`, one function per pane; [`theme`]:
//!   styles from `assets/themes/*.toml` or a user theme; [`layout`]: pane
//!   rectangles for a terminal size; [`notify`]: when to ring the bell.
//! - [`media`]: files and pictures: what a FILE or IMAGE line shows, its
//!   half-block preview, sizes in words, `/save`'s destination (never over a
//!   file), the checks and thumbnail of `/file` and `/image`; `graphics`:
//!   previews with the terminal's own graphics (ratatui-image), drawn by the
//!   event loop over the half-blocks.
//! - [`history`]: the local message history (SQLite, one file per uid in the
//!   data dir) on its own thread; loaded after login, written as messages
//!   come. It reports with its own `HistoryReport`, so it depends on
//!   nothing in `app`.
//! - `executor`: runs commands against the SDK off the UI loop and answers with
//!   [`CommandResult`]s; `pacer` keeps its reads and subscriptions under the
//!   server's call limits and retries the ones refused "for now"; `terminal`: the guard that always restores the terminal.
//! - `fixtures` (hidden from the docs): the sessions that the unit tests, the
//!   snapshot tests and the render benchmark are built from.
//! - [`run`] (below): the one `select!` loop that ties them together.

pub mod app;
pub mod commands;
pub mod conversation;
mod executor;
#[doc(hidden)]
pub mod fixtures;
mod graphics;
pub mod history;
pub mod input;
pub mod keymap;
pub mod layout;
pub mod media;
pub mod notify;
mod pacer;
pub mod render;
pub mod selection;
mod terminal;
pub mod theme;

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

pub use app::{App, CallEvent, Command, CommandResult, Event, Focus, Screen, UiConfig};
pub use conversation::ConvId;
pub use render::render;

use crate::client::{ClientConfig, ClientEvents, RtmClient};
use crate::config::ClientSettings;
use executor::Executor;
use terminal::TerminalGuard;

/// The watched-peers file under the data dir: one uid per line.
pub const WATCHED_FILE: &str = "watched.txt";
/// The muted-conversations file under the data dir: `@uid` or `#channel` per line.
pub const MUTED_FILE: &str = "muted.txt";
/// User themes: `<config dir>/themes/<name>.toml`.
pub const THEMES_DIR: &str = "themes";

/// How often the loop wakes without input, to expire notes and highlights.
const TICK_INTERVAL: Duration = Duration::from_millis(500);
/// How many already-waiting SDK events and results are applied before a redraw.
const MAX_BATCH: usize = 512;
/// How long quitting waits for the server to acknowledge the logout.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long quitting waits for the history writer to commit what is queued.
const HISTORY_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the launcher hands to the messenger.
#[derive(Debug, Clone)]
pub struct ChatOptions {
    /// Resolved settings: server URL, uid/token if known, data dir, offline messaging.
    pub settings: ClientSettings,
    /// Set when the launcher started a server inside this process (shown in the status bar),
    /// e.g. "embedded server on 127.0.0.1:7420".
    pub embedded_server: Option<String>,
    /// Set when the launcher watches an embedded server that another
    /// messenger may host: it says here when this one takes it over.
    pub takeover: Option<tokio::sync::watch::Receiver<Option<Hosting>>>,
    /// Where the log file goes (shown in the help overlay).
    pub log_dir: PathBuf,
}

/// This messenger now hosts the embedded server (the one that did quit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosting {
    /// Where it listens, e.g. "127.0.0.1:7420".
    pub addr: String,
    /// The shared data directory already held a database: the channel
    /// attributes and stored offline messages of the previous host are kept.
    pub kept_data: bool,
}

/// The next takeover report, or never when there is nothing to watch.
async fn next_takeover(
    rx: &mut Option<tokio::sync::watch::Receiver<Option<Hosting>>>,
) -> Option<Hosting> {
    let Some(r) = rx else {
        return std::future::pending().await;
    };
    if r.changed().await.is_err() {
        // The watchdog is gone; nothing more will come.
        *rx = None;
        return None;
    }
    r.borrow_and_update().clone()
}

/// Reads what the settings point at: the theme (built in, or a user file),
/// the key rebindings and the notification settings. Any problem is an error
/// that names it, reported before the screen is taken over. `no_color`:
/// the `NO_COLOR` convention (<https://no-color.org>).
pub fn load_ui(settings: &ClientSettings, no_color: bool) -> anyhow::Result<UiConfig> {
    let name = settings.theme.as_str();
    let mut theme = match theme::Theme::builtin(name) {
        Some(t) => t,
        None => {
            let path = settings
                .paths
                .config_dir
                .join(THEMES_DIR)
                .join(format!("{name}.toml"));
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "theme {name:?} is neither built in (dark, light) nor readable at {}",
                    path.display()
                )
            })?;
            theme::Theme::parse(name, &text, &theme::Theme::default())?
        }
    };
    if no_color {
        theme = theme.without_colour();
    }
    let keymap = keymap::Keymap::with_overrides(&settings.keys).with_context(|| {
        format!(
            "fix [keys] in {} (the defaults are listed in `rtm chat --help`'s config file)",
            settings.config_file.display()
        )
    })?;
    let notify = notify::NotifyPolicy::from_file(&settings.notify)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("fix [notify] in {}", settings.config_file.display()))?;
    Ok(UiConfig {
        theme,
        keymap,
        notify,
    })
}

/// Runs the messenger until the user quits. Restores the terminal on every exit path.
pub async fn run(options: ChatOptions) -> anyhow::Result<()> {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ui = load_ui(&options.settings, no_color)?;
    let config = ClientConfig {
        request_timeout: options.settings.request_timeout,
        ca_file: options.settings.ca_file.clone(),
        ..ClientConfig::default()
    };
    // One server, or several separated by commas: the SDK fails over
    // between them. A bad URL stops the messenger here, before the screen
    // is taken over, with the URL named.
    let (client, mut events) = RtmClient::with_servers([&options.settings.server], config)
        .with_context(|| {
            format!(
                "fix the server setting (--server, RTM_SERVER or `server` in {})",
                options.settings.config_file.display()
            )
        })?;
    let (results_tx, mut results) = mpsc::unbounded_channel();
    let mut executor = Executor::start(client.clone(), &options.settings, results_tx);
    let mut app = App::new(&options);
    app.configure(ui);

    // Asked once, before raw mode (the query switches it on and off
    // itself): which graphics the terminal draws pictures with. Only where
    // the environment names a terminal that has graphics (see
    // `graphics::worth_asking`): a terminal that does not answer would
    // leave the query's reader waiting on the keyboard.
    let mut graphics = if io::IsTerminal::is_terminal(&io::stdout())
        && graphics::worth_asking(|k| std::env::var(k).ok())
    {
        graphics::Graphics::detect()
    } else {
        None
    };
    let guard = TerminalGuard::enter(app.mouse_capture())
        .context("cannot switch the terminal to full-screen mode")?;
    let mut takeover = options.takeover.clone();
    let outcome = event_loop(
        &mut app,
        &executor,
        &mut events,
        &mut results,
        &mut takeover,
        &mut graphics,
    )
    .await;
    // The screen goes back to the shell at once; then log out so that peers
    // see us go at once, not after the grace period, while the history
    // writer commits what is queued.
    drop(guard);
    let history = executor.take_history().map(|h| {
        tokio::time::timeout(
            HISTORY_CLOSE_TIMEOUT,
            tokio::task::spawn_blocking(move || h.close()),
        )
    });
    let logout = tokio::time::timeout(LOGOUT_TIMEOUT, client.logout());
    match history {
        Some(history) => {
            let _ = tokio::join!(logout, history);
        }
        None => {
            let _ = logout.await;
        }
    }
    outcome
}

/// Maps a terminal event to ours; `None` for those the app ignores (focus
/// changes, mouse motion) so they do not cause a redraw.
fn translate(ev: crossterm::event::Event) -> Option<Event> {
    use crossterm::event::{Event as T, MouseEventKind};
    match ev {
        T::Key(k) => Some(Event::Key(k)),
        T::Mouse(m) => match m.kind {
            MouseEventKind::Moved | MouseEventKind::Drag(_) | MouseEventKind::Up(_) => None,
            _ => Some(Event::Mouse(m)),
        },
        T::Paste(s) => Some(Event::Paste(s)),
        T::Resize(w, h) => Some(Event::Resize(w, h)),
        T::FocusGained => Some(Event::FocusChanged(true)),
        T::FocusLost => Some(Event::FocusChanged(false)),
    }
}

async fn event_loop(
    app: &mut App,
    executor: &Executor,
    events: &mut ClientEvents,
    results: &mut mpsc::UnboundedReceiver<CommandResult>,
    takeover: &mut Option<tokio::sync::watch::Receiver<Option<Hosting>>>,
    graphics: &mut Option<graphics::Graphics>,
) -> anyhow::Result<()> {
    // The frame as `render` draws it, then the pictures with the
    // terminal's graphics over their half-blocks, where it has them.
    let mut draw = |app: &App, frame: &mut ratatui::Frame| {
        render(app, frame);
        if let Some(g) = graphics.as_mut() {
            g.draw(app, frame);
        }
    };
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))
        .context("cannot draw on the terminal")?;
    let size = terminal.size().context("cannot read the terminal size")?;
    app.update(Event::Resize(size.width, size.height));
    for cmd in app.init() {
        executor.dispatch(cmd);
    }
    let mut input = crossterm::event::EventStream::new();
    // `kill <pid>` (SIGTERM) and a closed terminal window (SIGHUP) end the
    // messenger like Ctrl-C: the terminal is restored and we log out, so
    // peers see us offline at once rather than unreachable for the grace.
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?;
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    loop {
        // Commands of events applied while picking the next one.
        let mut cmds = Vec::new();
        if app.take_dirty() {
            terminal
                .draw(|frame| draw(app, frame))
                .context("cannot draw on the terminal")?;
        }
        let event = tokio::select! {
            // Keys, mouse, paste and resizes from the terminal.
            ev = input.next() => match ev {
                Some(Ok(ev)) => match translate(ev) {
                    Some(ev) => ev,
                    None => continue,
                },
                Some(Err(e)) => return Err(e).context("cannot read from the terminal"),
                // The terminal is gone (hung up): nothing left to show.
                None => return Ok(()),
            },
            // Messages, presence and connection changes pushed by the SDK.
            Some(ev) = events.recv() => {
                if let Some(server) = executor.server_in_use(&ev) {
                    cmds.extend(app.update(server));
                }
                executor.translate(ev)
            }
            // Answers to commands from the executor.
            Some(r) = results.recv() => Event::CommandResult(r),
            // This messenger took over the embedded server.
            Some(h) = next_takeover(takeover) => Event::NowHosting {
                addr: h.addr,
                kept_data: h.kept_data,
            },
            // Expiry of status notes and attribute highlights.
            _ = tick.tick() => Event::Tick,
            // SIGINT from outside (in raw mode Ctrl-C typed here arrives as a key).
            _ = tokio::signal::ctrl_c() => return Ok(()),
            // `kill <pid>`: quit as if asked.
            _ = terminate.recv() => {
                tracing::info!("SIGTERM: quitting");
                return Ok(());
            }
            // The terminal window was closed: nothing left to draw on; log out.
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: the terminal went away; quitting");
                return Ok(());
            }
        };
        cmds.extend(app.update(event));
        // Coalesce bursts: apply whatever else is already waiting, then draw once.
        for _ in 0..MAX_BATCH {
            let ev = if let Some(ev) = events.try_recv() {
                if let Some(server) = executor.server_in_use(&ev) {
                    cmds.extend(app.update(server));
                }
                executor.translate(ev)
            } else if let Ok(r) = results.try_recv() {
                Event::CommandResult(r)
            } else {
                break;
            };
            cmds.extend(app.update(ev));
        }
        for cmd in cmds {
            match cmd {
                Command::Quit => return Ok(()),
                // Forget what is on the screen and draw it all again: wide
                // glyphs that the terminal drew differently leave ghosts.
                Command::Redraw => {
                    terminal.clear().context("cannot redraw the terminal")?;
                    terminal
                        .draw(|frame| draw(app, frame))
                        .context("cannot draw on the terminal")?;
                }
                Command::SetMouseCapture(on) => {
                    if let Err(e) = terminal::set_mouse_capture(on) {
                        tracing::warn!("cannot switch mouse capture: {e}");
                    }
                }
                Command::Notify(n) => {
                    // Between frames, so the bytes never land inside a drawing.
                    let mut out = io::stdout();
                    let _ = out.write_all(&notify::escape(&n));
                    let _ = out.flush();
                }
                cmd => executor.dispatch(cmd),
            }
        }
    }
}
