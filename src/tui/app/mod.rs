//! The messenger's state and its one transition function,
//! [`App::update`]: an [`Event`] in, state changed, [`Command`]s out. No IO,
//! no awaits, no terminal; the event loop (`tui::run`) does those, and the
//! tests drive `update` directly.
//!
//! This file holds [`App`], its constructor, its read accessors and the
//! top-level dispatch of `update`; each kind of event is handled in its own
//! file, all of them `impl App` blocks: `keys` (keyboard and mouse), `search`,
//! `unread` (moving between conversations), `stored` (the local history
//! beyond what is loaded), `completion` (Tab and the input
//! history), `attributes` (the Attributes pane), `panes` (list rows, opening
//! a conversation), `sending` (the input line and slash commands), `events`
//! (what the SDK pushes) and `results` (answers to commands).

mod attributes;
mod calls;
mod completion;
mod events;
mod keys;
mod messages;
mod panes;
mod results;
mod search;
mod sending;
mod state;
mod stored;
mod transfers;
mod unread;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crossterm::event::KeyEventKind;
use ratatui::layout::Rect;

use super::ChatOptions;
use super::conversation::{ConvId, Conversation};
use super::input::InputLine;
use super::keymap::Keymap;
use super::layout::{MainLayout, SidePanes};
use super::notify::NotifyPolicy;
use super::selection::Selection;
use super::theme::Theme;
use crate::client::{ChannelId, ConnectionState, PeerOnlineState, Uid};
pub use calls::{CALL_GRACE_MS, Dialing, IncomingCall, OutgoingCall, one_line};
use completion::{Completion, HistoryNav};
pub use messages::{CallEvent, Command, CommandResult, Event};
pub use state::{
    AttrRef, ChannelInfo, Focus, HelpOverlay, LoginState, Outgoing, Panel, Screen, SearchState,
    Status, StatusKind, UiConfig,
};
pub use transfers::Transfer;

/// How long a note ("bob is online") or an answer ("joined #general") stays
/// in the status bar, in ms.
pub const NOTE_TTL_MS: u64 = 6_000;
/// How long an error stays in the status bar, in ms: longer than a note, so
/// it can be read, but not forever (the conversation keeps what matters).
pub const ERROR_TTL_MS: u64 = 20_000;
/// The most a message may carry (spec §3: 32 KB of UTF-8 text), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// A channel opened again within this many ms of asking for its
/// attributes is not asked again (the refresh key always asks).
pub const ATTRS_FRESH_MS: u64 = 10_000;
/// How long a changed attribute row stays highlighted, in ms.
pub const CHANGED_TTL_MS: u64 = 4_000;
/// Lines scrolled by the mouse wheel.
const WHEEL_LINES: usize = 3;
/// Peers and channel members followed for their presence without being
/// watched; the server allows 512 subscriptions, and the watched list
/// needs room too.
const MAX_FOLLOWED: usize = 384;
/// The input box grows with its text up to this many rows.
pub const MAX_INPUT_ROWS: usize = 6;

/// The whole state of the messenger. Owned by the event loop; `render` reads it.
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) theme: Theme,
    /// The keys in force (built-in, rebound by the config); the help reads it too.
    pub(crate) keymap: Keymap,
    pub(crate) notify: NotifyPolicy,
    /// Conversations muted with /mute (remembered in muted.txt).
    pub(crate) muted: BTreeSet<ConvId>,
    pub(crate) search: Option<SearchState>,
    completion: Option<Completion>,
    history: Option<HistoryNav>,
    /// Sent lines while no conversation is open (mostly commands).
    global_history: Conversation,
    /// False while the terminal window is in the background.
    terminal_focused: bool,
    /// The server setting as configured: one URL, or several separated by commas.
    pub(crate) server_url: String,
    /// The server of the current (or last) link, once connected: the status
    /// bar shows it (with several servers, which one is in use).
    pub(crate) server_in_use: Option<String>,
    /// The link moved to another server than the last one: the next
    /// "reconnected" note says where to.
    server_moved: bool,
    pub(crate) embedded_server: Option<String>,
    pub(crate) log_dir: PathBuf,
    pub(crate) data_dir: PathBuf,
    /// The token from the settings; only used for the configured uid.
    configured: (Option<String>, Option<String>),
    /// The clock for timestamps of our own messages and note expiry; tests fix it.
    clock: fn() -> u64,
    pub(crate) screen: Screen,
    pub(crate) login: LoginState,
    /// Who we are, once logged in.
    pub(crate) me: Option<Uid>,
    pub(crate) connection: ConnectionState,
    pub(crate) conversations: BTreeMap<ConvId, Conversation>,
    /// Last known presence of peers (from subscriptions and /status answers).
    pub(crate) presence: BTreeMap<Uid, PeerOnlineState>,
    pub(crate) watched: BTreeSet<Uid>,
    /// Peers we talk with, subscribed to for their presence without being
    /// written to the watched list.
    following: BTreeSet<Uid>,
    /// A `token_command` is configured: fetch fresh tokens without asking.
    token_command: bool,
    /// `settings.history`: keep messages in the local history file.
    keep_history: bool,
    /// The local history is open (its start-up load came): older pages
    /// and searches of it can be asked for.
    history_ready: bool,
    /// Channels with history that we are not in: listed after the joined
    /// ones, marked as left, readable but not writable.
    pub(crate) past_channels: BTreeSet<ChannelId>,
    pub(crate) channels: BTreeMap<ChannelId, ChannelInfo>,
    /// Channels asked to join, not yet answered.
    pub(crate) joining: BTreeSet<ChannelId>,
    /// User attributes of peers, as last fetched (or why not).
    pub(crate) user_attrs: BTreeMap<Uid, Result<BTreeMap<String, String>, String>>,
    /// Our own attributes, as acknowledged by the server.
    pub(crate) my_attrs: BTreeMap<String, String>,
    /// The open conversation.
    pub(crate) selected: Option<ConvId>,
    pub(crate) focus: Focus,
    pub(crate) peers_list: Selection<Uid>,
    pub(crate) channels_list: Selection<ChannelId>,
    pub(crate) members_list: Selection<Uid>,
    /// The Attributes pane: its rows are editable attributes; it keeps its own offset.
    pub(crate) attrs_list: Selection<AttrRef>,
    /// An attribute the user asked to delete; the next `y` confirms.
    pub(crate) pending_delete: Option<AttrRef>,
    pub(crate) input: InputLine,
    /// While an attribute is being edited in the input: what the input held
    /// before, put back when Esc cancels the edit.
    attr_edit: Option<String>,
    /// Messages typed while the link is down, oldest first: shown as queued
    /// and sent in this order once the connection is back (the outbox).
    pub(crate) outbox: Vec<Outgoing>,
    /// Mouse capture is on (the wheel scrolls, a click focuses); off, the
    /// terminal selects text. The event loop applies each change.
    pub(crate) mouse_capture: bool,
    pub(crate) help: Option<HelpOverlay>,
    /// `/members` or `/attrs`, drawn over the screen.
    pub(crate) panel: Option<Panel>,
    /// The side panes as the side-panes key left them.
    pub(crate) side_panes: SidePanes,
    pub(crate) status: Option<Status>,
    /// Calls ringing us, oldest first (the banner shows the newest).
    pub(crate) incoming: Vec<calls::IncomingCall>,
    /// Our calls not answered yet, oldest first.
    pub(crate) outgoing: Vec<calls::OutgoingCall>,
    /// Files going up or down, by id (their lines show the progress).
    transfers: BTreeMap<u64, transfers::Transfer>,
    /// What `~` in a typed path stands for.
    home: Option<PathBuf>,
    /// The banner's countdown as last drawn, in seconds: a tick redraws
    /// only when it changes.
    countdown_shown: Option<u64>,
    /// The age of the open channel's attributes as last drawn ("2 min
    /// ago"): a tick redraws only when it changes.
    age_shown: Option<String>,
    pub(crate) size: (u16, u16),
    next_id: u64,
    dirty: bool,
    quitting: bool,
}

/// The OS user name, the login screen's suggestion.
pub fn os_user_name() -> Option<String> {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

fn join_names<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How long ago `then` was, in words: "just now", "40 s ago", "2 min ago",
/// "3 h ago", "2 d ago".
pub fn age_words(now: u64, then: u64) -> String {
    let s = now.saturating_sub(then) / 1000;
    match s {
        0..10 => "just now".to_string(),
        10..60 => format!("{s} s ago"),
        60..3_600 => format!("{} min ago", s / 60),
        3_600..86_400 => format!("{} h ago", s / 3_600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// Orders peers: online, unreachable, unknown, offline; then by name.
fn presence_rank(s: Option<PeerOnlineState>) -> u8 {
    match s {
        Some(PeerOnlineState::Online) => 0,
        Some(PeerOnlineState::Unreachable) => 1,
        None => 2,
        Some(PeerOnlineState::Offline) => 3,
    }
}

impl App {
    /// A fresh messenger; the login field suggests the OS user name.
    pub fn new(options: &ChatOptions) -> App {
        App::with_login_hint(options, os_user_name())
    }

    /// Like [`new`](Self::new) with an explicit login suggestion (tests pass a fixed one).
    pub fn with_login_hint(options: &ChatOptions, hint: Option<String>) -> App {
        let s = &options.settings;
        let prefill = s.uid.clone().or(hint).unwrap_or_default();
        App {
            theme: Theme::default(),
            keymap: Keymap::default(),
            notify: NotifyPolicy::default(),
            muted: BTreeSet::new(),
            search: None,
            completion: None,
            history: None,
            global_history: Conversation::default(),
            terminal_focused: true,
            server_url: s.server.clone(),
            server_in_use: None,
            server_moved: false,
            embedded_server: options.embedded_server.clone(),
            log_dir: options.log_dir.clone(),
            data_dir: s.paths.data_dir.clone(),
            configured: (s.uid.clone(), s.token.clone()),
            clock: crate::client::now_ms,
            screen: Screen::Login,
            login: LoginState {
                input: InputLine::with_text(prefill),
                ..LoginState::default()
            },
            me: None,
            connection: ConnectionState::Disconnected,
            conversations: BTreeMap::new(),
            presence: BTreeMap::new(),
            following: BTreeSet::new(),
            token_command: options.settings.token_command.is_some(),
            keep_history: s.history,
            history_ready: false,
            past_channels: BTreeSet::new(),
            watched: BTreeSet::new(),
            channels: BTreeMap::new(),
            joining: BTreeSet::new(),
            user_attrs: BTreeMap::new(),
            my_attrs: BTreeMap::new(),
            selected: None,
            focus: Focus::Input,
            peers_list: Selection::default(),
            channels_list: Selection::default(),
            members_list: Selection::default(),
            attrs_list: Selection::default(),
            pending_delete: None,
            input: InputLine::default(),
            attr_edit: None,
            outbox: Vec::new(),
            mouse_capture: s.mouse,
            help: None,
            panel: None,
            side_panes: SidePanes::Auto,
            status: None,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            transfers: BTreeMap::new(),
            home: directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()),
            countdown_shown: None,
            age_shown: None,
            size: (80, 24),
            next_id: 1,
            dirty: true,
            quitting: false,
        }
    }

    /// Applies the theme, keys and notification settings read at start-up.
    pub fn configure(&mut self, ui: UiConfig) {
        self.theme = ui.theme;
        self.keymap = ui.keymap;
        self.notify = ui.notify;
        self.dirty = true;
    }

    pub fn keymap(&self) -> &Keymap {
        &self.keymap
    }

    pub fn search_state(&self) -> Option<&SearchState> {
        self.search.as_ref()
    }

    pub fn is_muted(&self, id: &ConvId) -> bool {
        self.muted.contains(id)
    }

    /// Replaces the clock (ms since the epoch); tests use a fixed one.
    pub fn set_clock(&mut self, clock: fn() -> u64) {
        self.clock = clock;
    }

    /// The app's clock, ms since the epoch (fixed in tests).
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// The commands to run at start: read the watched list, and log in at
    /// once when the settings name a uid.
    pub fn init(&mut self) -> Vec<Command> {
        let mut out = vec![Command::LoadWatched, Command::LoadMuted];
        if let Some(uid) = self.configured.0.clone() {
            match Uid::new(uid.as_str()) {
                Ok(uid) => self.start_login(uid, &mut out),
                Err(e) => self.login.error = Some(format!("the configured uid is not valid: {e}")),
            }
        }
        out
    }

    /// True once, after the state changed: the loop redraws only then.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// True after the user asked to quit.
    pub fn quitting(&self) -> bool {
        self.quitting
    }

    pub fn screen(&self) -> Screen {
        self.screen
    }

    pub fn focus(&self) -> Focus {
        self.focus
    }

    pub fn selected(&self) -> Option<&ConvId> {
        self.selected.as_ref()
    }

    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    pub fn conversation(&self, id: &ConvId) -> Option<&Conversation> {
        self.conversations.get(id)
    }

    pub fn input_text(&self) -> &str {
        self.input.text()
    }

    pub fn presence_of(&self, uid: &Uid) -> Option<PeerOnlineState> {
        if self.me.as_ref() == Some(uid) && self.connection == ConnectionState::Connected {
            // We cannot watch ourselves, but we know.
            return Some(PeerOnlineState::Online);
        }
        self.presence.get(uid).copied()
    }

    /// A channel member's presence: members are logged in by definition, so
    /// ONLINE unless a subscription says otherwise (UNREACHABLE in the grace).
    pub fn member_presence(&self, uid: &Uid) -> PeerOnlineState {
        self.presence_of(uid).unwrap_or(PeerOnlineState::Online)
    }

    /// Subscribes to the presence of someone we talk with, once.
    fn follow(&mut self, peer: &Uid, out: &mut Vec<Command>) {
        self.follow_all([peer.clone()], out);
    }

    /// Subscribes, in one request, to the presence of those of `peers` not
    /// followed or watched yet, within [`MAX_FOLLOWED`].
    fn follow_all(&mut self, peers: impl IntoIterator<Item = Uid>, out: &mut Vec<Command>) {
        if self.me.is_none() {
            return;
        }
        let mut new = Vec::new();
        for peer in peers {
            if self.following.len() >= MAX_FOLLOWED {
                break;
            }
            if self.me.as_ref() != Some(&peer)
                && !self.watched.contains(&peer)
                && self.following.insert(peer.clone())
            {
                new.push(peer);
            }
        }
        if !new.is_empty() {
            out.push(Command::Subscribe(new));
        }
    }

    pub fn channel(&self, id: &ChannelId) -> Option<&ChannelInfo> {
        self.channels.get(id)
    }

    pub fn watched(&self) -> &BTreeSet<Uid> {
        &self.watched
    }

    pub fn help_open(&self) -> bool {
        self.help.is_some()
    }

    pub fn panel(&self) -> Option<Panel> {
        self.panel
    }

    pub fn layout(&self) -> MainLayout {
        self.layout_in(Rect::new(0, 0, self.size.0, self.size.1))
    }

    /// The layout for `area`, with the input box as tall as its text.
    pub fn layout_in(&self, area: Rect) -> MainLayout {
        let width = usize::from(
            MainLayout::arrange(area, 1, self.side_panes)
                .input
                .width
                .saturating_sub(2),
        )
        .max(1);
        let rows = self.input.row_count(width).min(MAX_INPUT_ROWS);
        MainLayout::arrange(area, u16::try_from(rows).unwrap_or(1), self.side_panes)
    }

    // ------------------------------------------------------------- update

    /// Applies one event; returns what to ask of the SDK. Synchronous, no IO.
    pub fn update(&mut self, event: Event) -> Vec<Command> {
        let mut out = Vec::new();
        match event {
            Event::Tick => self.on_tick(&mut out),
            Event::Call(ev) => {
                self.on_call_event(ev, &mut out);
                self.dirty = true;
            }
            Event::Resize(w, h) => {
                self.size = (w, h);
                if !self.pane_visible(self.focus) {
                    self.focus = Focus::Input;
                }
                self.dirty = true;
            }
            Event::Key(key) => {
                if key.kind != KeyEventKind::Release {
                    self.on_key(key, &mut out);
                    self.dirty = true;
                }
            }
            Event::Paste(text) => {
                match self.screen {
                    Screen::Login => self.login.input.insert_str(&text),
                    Screen::Main => match &mut self.search {
                        Some(search) if search.editing => {
                            // A search is one line.
                            search.query.insert_str(&text.replace(['\n', '\r'], " "));
                            self.run_search();
                        }
                        _ => {
                            self.focus = Focus::Input;
                            self.completion = None;
                            self.input.insert_str(&text);
                        }
                    },
                }
                self.dirty = true;
            }
            Event::FocusChanged(focused) => self.terminal_focused = focused,
            Event::ServerInUse(url) => {
                if self.server_in_use.as_ref().is_some_and(|last| *last != url) {
                    self.server_moved = true;
                }
                self.server_in_use = Some(url);
                self.dirty = true;
            }
            Event::NowHosting { addr, kept_data } => {
                self.embedded_server = Some(format!("hosting the server on {addr}"));
                let text = if kept_data {
                    format!(
                        "the messenger hosting the server quit; this one hosts it now on {addr}, with the channel attributes and stored messages it kept"
                    )
                } else {
                    format!(
                        "the messenger hosting the server quit; this one hosts it now on {addr} (no earlier data was found: channel attributes and stored messages start empty)"
                    )
                };
                // Also in the open conversation: the reconnection note that
                // follows at once would hide it from the status bar.
                if let Some(open) = self.selected.clone() {
                    let ts = self.now();
                    self.conversations.entry(open).or_default().push(
                        crate::tui::conversation::Entry {
                            ts,
                            kind: crate::tui::conversation::EntryKind::System(text.clone()),
                        },
                    );
                }
                self.note(text);
                self.dirty = true;
            }
            Event::Mouse(m) => self.on_mouse(m),
            Event::Rtm(ev) => {
                self.on_client_event(ev, &mut out);
                self.dirty = true;
            }
            Event::CommandResult(r) => {
                self.on_result(r, &mut out);
                self.dirty = true;
            }
        }
        if self.screen == Screen::Main {
            // A /members or /attrs panel lives while its pane has the focus.
            if self.panel.is_some_and(|p| p.focus() != self.focus) {
                self.panel = None;
                self.dirty = true;
            }
            self.after_update(&mut out);
        }
        out
    }

    /// The key of a global action, as the help writes it, for hints.
    fn global_key(&self, action: crate::tui::keymap::Action) -> String {
        self.keymap.global_label(action)
    }

    /// Mouse capture is on (the wheel scrolls, a click focuses).
    pub fn mouse_capture(&self) -> bool {
        self.mouse_capture
    }

    fn on_tick(&mut self, out: &mut Vec<Command>) {
        self.tick_calls(out);
        let now = self.now();
        if let Some(s) = &self.status
            && now.saturating_sub(s.at_ms)
                >= match s.kind {
                    StatusKind::Info | StatusKind::Note => NOTE_TTL_MS,
                    StatusKind::Error => ERROR_TTL_MS,
                }
        {
            self.status = None;
            self.dirty = true;
        }
        let age = self
            .selected_channel()
            .and_then(|c| self.channels.get(c))
            .and_then(|i| i.attrs_at)
            .map(|at| age_words(now, at));
        if age != self.age_shown {
            self.age_shown = age;
            self.dirty = true;
        }
        for info in self.channels.values_mut() {
            let before = info.changed.len();
            info.changed
                .retain(|_, at| now.saturating_sub(*at) < CHANGED_TTL_MS);
            if info.changed.len() != before {
                self.dirty = true;
            }
        }
    }

    fn set_status(&mut self, kind: StatusKind, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            kind,
            at_ms: self.now(),
        });
    }

    fn info(&mut self, text: impl Into<String>) {
        self.set_status(StatusKind::Info, text);
    }

    fn note(&mut self, text: impl Into<String>) {
        self.set_status(StatusKind::Note, text);
    }

    fn error(&mut self, text: impl Into<String>) {
        self.set_status(StatusKind::Error, text);
    }
}
