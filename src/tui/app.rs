//! The messenger's state and its one transition function,
//! [`App::update`]: an [`Event`] in, state changed, [`Command`]s out. No IO,
//! no awaits, no terminal; the event loop (`tui::run`) does those, and the
//! tests drive `update` directly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::ChatOptions;
use super::commands::{self, AttrWrite, CommandSpec, SlashCommand};
use super::conversation::{ConvId, Conversation, Delivery, Entry, EntryKind, Scroll, mentions};
use super::history::{HistoryRecord, HistoryReport, LoadedConversation};
use super::input::InputLine;
use super::keymap::{Action, Context, Key, Keymap};
use super::layout::MainLayout;
use super::notify::{Notification, NotifyLevel, NotifyPolicy};
use super::selection::Selection;
use super::theme::Theme;
use crate::client::{
    ChannelAttribute, ChannelEvent, ClientEvent, ConnectionChangeReason, ConnectionState,
    LoginInfo, PeerMessageSendResult, PeerOnlineState, RtmError, RtmMessage,
};
use crate::client::{ChannelId, Uid};

/// How long a note ("bob is online") stays in the status bar, in ms.
pub const NOTE_TTL_MS: u64 = 6_000;
/// How long a changed attribute row stays highlighted, in ms.
pub const CHANGED_TTL_MS: u64 = 4_000;
/// Lines scrolled by the mouse wheel.
const WHEEL_LINES: usize = 3;
/// The input box grows with its text up to this many rows.
pub const MAX_INPUT_ROWS: usize = 6;

/// Everything that can happen to the messenger.
#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// Bracketed paste: the whole pasted text at once.
    Paste(String),
    /// Pushed by the SDK.
    Rtm(ClientEvent),
    /// The answer to a [`Command`], from the command executor.
    CommandResult(CommandResult),
    /// A periodic wake-up that expires notes and highlights.
    Tick,
    /// The terminal window gained (true) or lost focus: notifications for the
    /// open conversation only while it is not looked at.
    FocusChanged(bool),
}

/// What `update` asks the outside world to do. The executor runs each one
/// against the SDK (or the file system) and answers with a [`CommandResult`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Login {
        uid: Uid,
        token: Option<String>,
    },
    /// `id` comes back in [`CommandResult::PeerMessageSent`] to find the entry.
    SendPeer {
        peer: Uid,
        text: String,
        id: u64,
    },
    Join(ChannelId),
    Leave(ChannelId),
    SendChannel {
        channel: ChannelId,
        text: String,
        id: u64,
    },
    GetMembers(ChannelId),
    Subscribe(Vec<Uid>),
    Unsubscribe(Vec<Uid>),
    QueryStatus(Vec<Uid>),
    UserAttrWrite(AttrWrite),
    /// `explicit`: the user asked (answer in the status bar) rather than the
    /// app fetching for the Attributes pane.
    GetUserAttributes {
        uid: Uid,
        keys: Option<Vec<String>>,
        explicit: bool,
    },
    ChannelAttrWrite {
        channel: ChannelId,
        op: AttrWrite,
        notify: bool,
    },
    GetChannelAttributes {
        channel: ChannelId,
        keys: Option<Vec<String>>,
        explicit: bool,
    },
    /// Swap in a new login token (`/token`).
    RenewToken(String),
    /// Run the configured `token_command` and renew with what it prints.
    FetchToken,
    /// Read `watched.txt`.
    LoadWatched,
    /// Write `watched.txt` with exactly these uids.
    SaveWatched(Vec<Uid>),
    /// Read `muted.txt`.
    LoadMuted,
    /// Write `muted.txt` with exactly these conversations.
    SaveMuted(Vec<ConvId>),
    /// Open (and load) the local history of this uid; sent after login.
    OpenHistory(Uid),
    /// Keep a message (or our message's delivery) in the local history.
    RecordHistory(HistoryRecord),
    /// Ring the bell and/or show a desktop notification (the event loop writes it).
    Notify(Notification),
    Quit,
}

/// The outcome of a [`Command`], fed back into `update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandResult {
    LoggedIn {
        uid: Uid,
        result: Result<LoginInfo, RtmError>,
    },
    PeerMessageSent {
        peer: Uid,
        id: u64,
        result: Result<PeerMessageSendResult, RtmError>,
    },
    ChannelMessageSent {
        channel: ChannelId,
        id: u64,
        result: Result<u64, RtmError>,
    },
    Joined {
        channel: ChannelId,
        result: Result<u32, RtmError>,
    },
    Left {
        channel: ChannelId,
        result: Result<(), RtmError>,
    },
    Members {
        channel: ChannelId,
        result: Result<Vec<Uid>, RtmError>,
    },
    Subscribed {
        peers: Vec<Uid>,
        result: Result<(), RtmError>,
    },
    Unsubscribed {
        peers: Vec<Uid>,
        result: Result<(), RtmError>,
    },
    OnlineStatus {
        peers: Vec<Uid>,
        result: Result<BTreeMap<Uid, bool>, RtmError>,
    },
    UserAttrWritten {
        op: AttrWrite,
        result: Result<(), RtmError>,
    },
    UserAttributes {
        uid: Uid,
        keys: Option<Vec<String>>,
        explicit: bool,
        result: Result<BTreeMap<String, String>, RtmError>,
    },
    ChannelAttrWritten {
        channel: ChannelId,
        op: AttrWrite,
        notify: bool,
        result: Result<(), RtmError>,
    },
    ChannelAttributes {
        channel: ChannelId,
        keys: Option<Vec<String>>,
        explicit: bool,
        result: Result<Vec<ChannelAttribute>, RtmError>,
    },
    /// Uids read from `watched.txt` (or why it could not be read).
    WatchedLoaded(Result<Vec<Uid>, String>),
    WatchedSaved(Result<(), String>),
    /// A token renewal (typed or fetched by `token_command`) ended.
    TokenRenewed(Result<(), String>),
    MutedLoaded(Result<Vec<ConvId>, String>),
    MutedSaved(Result<(), String>),
    /// The recent conversations from the local history, most recently
    /// active first (or why it could not be read).
    HistoryLoaded(Result<Vec<LoadedConversation>, String>),
    /// Writing the local history failed (reported once).
    HistoryFailed(String),
}

impl From<HistoryReport> for CommandResult {
    fn from(r: HistoryReport) -> Self {
        match r {
            HistoryReport::Loaded(r) => CommandResult::HistoryLoaded(r),
            HistoryReport::Failed(e) => CommandResult::HistoryFailed(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Login,
    Main,
}

/// The panes that take focus, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Peers,
    Channels,
    /// The conversation pane: scroll it line by line, search it with n/N.
    Conversation,
    /// The input box (typing goes here).
    Input,
    Members,
    Attributes,
}

impl Focus {
    pub const ORDER: [Focus; 6] = [
        Focus::Peers,
        Focus::Channels,
        Focus::Conversation,
        Focus::Input,
        Focus::Members,
        Focus::Attributes,
    ];
}

/// A search in the open conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchState {
    pub query: InputLine,
    /// The query is being typed (keys go to it); false once kept with Enter.
    pub editing: bool,
    /// Entries that match, oldest first.
    pub hits: Vec<usize>,
    /// Index into `hits` of the hit shown.
    pub current: Option<usize>,
    /// Where the view was when the search began (Esc goes back there).
    pub origin: Scroll,
}

impl SearchState {
    pub fn current_entry(&self) -> Option<usize> {
        self.current.and_then(|i| self.hits.get(i).copied())
    }
}

/// Tab completion in progress: pressing Tab again cycles through `candidates`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Completion {
    /// Char index where the completed word starts.
    start: usize,
    /// The input before completing, to cycle from.
    original: String,
    candidates: Vec<String>,
    index: usize,
}

/// Input history navigation in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HistoryNav {
    /// Index into the conversation's history of the line shown.
    pos: usize,
    /// What was typed before Up was pressed.
    draft: String,
}

/// The start-up configuration of the messenger's looks and keys, read from
/// files by `tui::run` and handed to [`App::configure`].
#[derive(Debug, Clone, Default)]
pub struct UiConfig {
    pub theme: Theme,
    pub keymap: Keymap,
    pub notify: NotifyPolicy,
}

/// State of the login screen.
#[derive(Debug, Clone, Default)]
pub struct LoginState {
    pub input: InputLine,
    /// Why the last attempt failed, in words.
    pub error: Option<String>,
    /// A login is in flight; Enter does nothing until it answers.
    pub busy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Info,
    /// Fades after [`NOTE_TTL_MS`].
    Note,
    Error,
}

/// The latest message of the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub kind: StatusKind,
    pub at_ms: u64,
}

/// An editable attribute: one of the open channel's, or one of our own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrRef {
    Channel(ChannelId, String),
    Mine(String),
}

/// A joined channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelInfo {
    pub member_count: Option<u32>,
    pub members: BTreeSet<Uid>,
    pub attributes: Vec<ChannelAttribute>,
    /// Keys changed by the last update, with when (ms), for a brief highlight.
    pub changed: BTreeMap<String, u64>,
}

/// The help overlay and how far it is scrolled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HelpOverlay {
    pub scroll: u16,
    /// `/help <command>`: the details of one command instead of the whole help.
    pub topic: Option<&'static CommandSpec>,
}

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
    pub(crate) server_url: String,
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
    pub(crate) help: Option<HelpOverlay>,
    pub(crate) status: Option<Status>,
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

fn text_of(message: &RtmMessage) -> String {
    match message {
        RtmMessage::Text { text } => text.clone(),
        RtmMessage::Raw { raw, description } if description.is_empty() => {
            format!("[raw message, {} bytes]", raw.len())
        }
        RtmMessage::Raw { raw, description } => {
            format!("[raw message, {} bytes: {description}]", raw.len())
        }
    }
}

fn join_names<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn presence_word(s: PeerOnlineState) -> &'static str {
    match s {
        PeerOnlineState::Online => "online",
        PeerOnlineState::Unreachable => "unreachable",
        PeerOnlineState::Offline => "offline",
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
            help: None,
            status: None,
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

    fn now(&self) -> u64 {
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
        if self.me.is_none()
            || self.me.as_ref() == Some(peer)
            || self.watched.contains(peer)
            || !self.following.insert(peer.clone())
        {
            return;
        }
        out.push(Command::Subscribe(vec![peer.clone()]));
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

    pub fn layout(&self) -> MainLayout {
        self.layout_in(Rect::new(0, 0, self.size.0, self.size.1))
    }

    /// The layout for `area`, with the input box as tall as its text.
    pub fn layout_in(&self, area: Rect) -> MainLayout {
        let width = usize::from(MainLayout::new(area).input.width.saturating_sub(2)).max(1);
        let rows = self.input.row_count(width).min(MAX_INPUT_ROWS);
        MainLayout::with_input_rows(area, u16::try_from(rows).unwrap_or(1))
    }

    // ------------------------------------------------------------ derived

    /// The Peers pane: everyone we talk with or watch, online first.
    pub fn peer_rows(&self) -> Vec<Uid> {
        let mut peers: BTreeSet<Uid> = self.watched.clone();
        peers.extend(self.conversations.keys().filter_map(|c| match c {
            ConvId::Peer(p) => Some(p.clone()),
            ConvId::Channel(_) => None,
        }));
        let mut rows: Vec<Uid> = peers.into_iter().collect();
        rows.sort_by_cached_key(|p| (presence_rank(self.presence_of(p)), p.clone()));
        rows
    }

    /// The Channels pane: joined channels, then those known only from the history.
    pub fn channel_rows(&self) -> Vec<ChannelId> {
        let past = self
            .past_channels
            .iter()
            .filter(|c| !self.channels.contains_key(*c));
        self.channels.keys().chain(past).cloned().collect()
    }

    /// The channel whose members and attributes the right column shows.
    pub fn selected_channel(&self) -> Option<&ChannelId> {
        match &self.selected {
            Some(ConvId::Channel(c)) if self.channels.contains_key(c) => Some(c),
            _ => None,
        }
    }

    /// Members of the open channel: online first, then by name.
    pub fn member_rows(&self) -> Vec<Uid> {
        let Some(info) = self.selected_channel().and_then(|c| self.channels.get(c)) else {
            return Vec::new();
        };
        let mut rows: Vec<Uid> = Vec::with_capacity(info.members.len());
        // Rank once per member, and sort without cloning ids per comparison.
        let mut ranked: Vec<(u8, &Uid)> = info
            .members
            .iter()
            .map(|p| (presence_rank(Some(self.member_presence(p))), p))
            .collect();
        ranked.sort();
        rows.clear();
        rows.extend(ranked.into_iter().map(|(_, p)| p.clone()));
        rows
    }

    fn pane_visible(&self, focus: Focus) -> bool {
        let l = self.layout();
        match focus {
            Focus::Peers => l.peers.is_some(),
            Focus::Channels => l.channels.is_some(),
            Focus::Input => true,
            Focus::Conversation => l.conversation.height > 0,
            Focus::Members => l.members.is_some(),
            Focus::Attributes => l.attributes.is_some(),
        }
    }

    /// Rows of the conversation text area (the page size of PageUp/PageDown).
    fn page_height(&self) -> usize {
        usize::from(self.layout().conversation_text().height).max(1)
    }

    fn text_width(&self) -> usize {
        usize::from(self.layout().conversation_text().width).max(1)
    }

    // ------------------------------------------------------------- update

    /// Applies one event; returns what to ask of the SDK. Synchronous, no IO.
    pub fn update(&mut self, event: Event) -> Vec<Command> {
        let mut out = Vec::new();
        match event {
            Event::Tick => self.on_tick(),
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
        out
    }

    fn on_tick(&mut self) {
        let now = self.now();
        if let Some(s) = &self.status
            && s.kind == StatusKind::Note
            && now.saturating_sub(s.at_ms) >= NOTE_TTL_MS
        {
            self.status = None;
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

    // --------------------------------------------------------------- keys

    fn on_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
        if self.screen == Screen::Login {
            self.on_login_key(key, out);
            return;
        }
        if let Some(help) = &mut self.help {
            match self.keymap.action(Context::Overlay, &key) {
                Some(Action::Back | Action::Help) => self.help = None,
                Some(Action::Up) => help.scroll = help.scroll.saturating_sub(1),
                Some(Action::Down) => help.scroll = help.scroll.saturating_add(1),
                Some(Action::Quit) => self.quit(out),
                _ => match self.keymap.action(Context::Global, &key) {
                    Some(Action::PageUp) => help.scroll = help.scroll.saturating_sub(10),
                    Some(Action::PageDown) => help.scroll = help.scroll.saturating_add(10),
                    _ => {}
                },
            }
            return;
        }
        if self.search.as_ref().is_some_and(|s| s.editing) {
            self.on_search_key(key, out);
            return;
        }
        if self.pending_delete.is_some() {
            self.confirm_delete(&key, out);
            return;
        }
        let context = match self.focus {
            Focus::Input => Context::Input,
            Focus::Conversation => Context::Conversation,
            _ => Context::List,
        };
        let pressed = Key::of_event(&key);
        // The attribute keys act only in the Attributes pane; in the other
        // lists those keys type into the input line as usual.
        let action = self.keymap.action(context, &key).filter(|a| {
            self.focus == Focus::Attributes
                || !matches!(
                    a,
                    Action::EditAttribute | Action::AddAttribute | Action::DeleteAttribute
                )
        });
        if action != Some(Action::Complete) {
            self.completion = None;
        }
        if !matches!(action, Some(Action::HistoryPrev | Action::HistoryNext)) {
            self.history = None;
        }
        match action {
            // A plain character bound in the input (`?`) acts only on an empty
            // input; otherwise it is text.
            Some(_)
                if context == Context::Input
                    && pressed.is_plain_char()
                    && !self.input.is_empty() =>
            {
                if let KeyCode::Char(c) = key.code {
                    self.input.insert_char(c);
                }
            }
            Some(action) => self.on_action(action, out),
            None => {
                if let KeyCode::Char(c) = key.code
                    && pressed.is_plain_char()
                {
                    // Typing in a list goes to the input: there is nothing else to type into.
                    self.focus = Focus::Input;
                    self.input.insert_char(c);
                }
            }
        }
    }

    /// Keys while a search is being typed.
    fn on_search_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
        let Some(search) = &mut self.search else {
            return;
        };
        match self.keymap.action(Context::Search, &key) {
            Some(Action::Quit) => self.quit(out),
            Some(Action::Back) => self.cancel_search(),
            Some(Action::Submit) => {
                search.editing = false;
                if search.hits.is_empty() {
                    let q = search.query.text().to_string();
                    self.search = None;
                    if !q.is_empty() {
                        self.note(format!("no match for {q:?}"));
                    }
                } else {
                    self.focus = Focus::Conversation;
                }
            }
            Some(Action::SearchOlder) => self.step_search(true),
            Some(Action::SearchNewer) => self.step_search(false),
            Some(action) => {
                edit(&mut search.query, action);
                self.run_search();
            }
            None => {
                if let KeyCode::Char(c) = key.code
                    && Key::of_event(&key).is_plain_char()
                {
                    search.query.insert_char(c);
                    self.run_search();
                }
            }
        }
    }

    fn on_login_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
        let input = &mut self.login.input;
        match self.keymap.action(Context::Login, &key) {
            Some(Action::Quit) => self.quit(out),
            Some(Action::Submit) => {
                if self.login.busy {
                    return;
                }
                let typed = input.text().trim().to_string();
                match Uid::new(typed) {
                    Ok(uid) => self.start_login(uid, out),
                    Err(e) => self.login.error = Some(e.to_string()),
                }
            }
            Some(action) => edit(input, action),
            None => {
                if let KeyCode::Char(c) = key.code
                    && Key::of_event(&key).is_plain_char()
                {
                    input.insert_char(c);
                }
            }
        }
    }

    fn start_login(&mut self, uid: Uid, out: &mut Vec<Command>) {
        // The configured token is bound to the configured uid; another uid
        // logs in without it (fine in development mode, refused otherwise).
        let token = match &self.configured {
            (Some(u), t) if u == uid.as_str() => t.clone(),
            (None, t) => t.clone(),
            _ => None,
        };
        self.login.busy = true;
        self.login.error = None;
        out.push(Command::Login { uid, token });
    }

    fn quit(&mut self, out: &mut Vec<Command>) {
        self.quitting = true;
        out.push(Command::Quit);
    }

    fn on_action(&mut self, action: Action, out: &mut Vec<Command>) {
        match action {
            Action::Quit => self.quit(out),
            Action::Help => {
                self.help = Some(HelpOverlay::default());
            }
            Action::Back => {
                if self.search.is_some() {
                    self.search = None;
                } else {
                    self.focus = Focus::Input;
                }
            }
            Action::FocusNext | Action::FocusPrev => self.cycle_focus(action == Action::FocusNext),
            Action::PageUp => self.scroll(|c, w, h| c.scroll_up(h.saturating_sub(1).max(1), w, h)),
            Action::PageDown => {
                self.scroll(|c, w, h| c.scroll_down(h.saturating_sub(1).max(1), w, h))
            }
            Action::ScrollTop => self.scroll(|c, w, h| c.to_top(w, h)),
            Action::ScrollBottom => self.scroll(|c, _, _| c.to_bottom()),
            Action::NextUnread => self.next_unread(out),
            Action::NextConversation | Action::PrevConversation => {
                self.step_conversation(action == Action::NextConversation, out)
            }
            Action::Search => self.start_search(String::new()),
            Action::SearchOlder => self.step_search(true),
            Action::SearchNewer => self.step_search(false),
            Action::Up | Action::Down => {
                let up = action == Action::Up;
                match self.focus {
                    Focus::Input | Focus::Conversation => self.scroll(|c, w, h| {
                        if up {
                            c.scroll_up(1, w, h)
                        } else {
                            c.scroll_down(1, w, h)
                        }
                    }),
                    Focus::Peers => {
                        let rows = self.peer_rows();
                        self.peers_list.step(&rows, up);
                    }
                    Focus::Channels => {
                        let rows = self.channel_rows();
                        self.channels_list.step(&rows, up);
                    }
                    Focus::Members => {
                        let rows = self.member_rows();
                        self.members_list.step(&rows, up);
                    }
                    Focus::Attributes => {
                        let rows = self.attribute_rows();
                        self.attrs_list.step(&rows, up);
                        // Keep the selected row in view (rows are one line or two).
                        self.attrs_list.scroll_to_selected(&rows, 3);
                    }
                }
            }
            Action::Open if self.focus == Focus::Attributes => self.edit_attribute(),
            Action::Open => self.open_from_focus(out),
            Action::EditAttribute if self.focus == Focus::Attributes => self.edit_attribute(),
            Action::AddAttribute if self.focus == Focus::Attributes => self.add_attribute(),
            Action::DeleteAttribute if self.focus == Focus::Attributes => {
                match self.attrs_list.selected().cloned() {
                    Some(a) => {
                        let (key, place) = match &a {
                            AttrRef::Channel(c, k) => (k.clone(), format!("#{c}")),
                            AttrRef::Mine(k) => (k.clone(), "your attributes".into()),
                        };
                        self.note(format!(
                            "delete {key:?} from {place}? press y to confirm, any other key cancels"
                        ));
                        self.pending_delete = Some(a);
                    }
                    None => self.error("select an attribute first (Up/Down)"),
                }
            }
            Action::EditAttribute | Action::AddAttribute | Action::DeleteAttribute => {
                // Filtered out in on_key outside the Attributes pane.
            }
            Action::Submit => self.submit(out),
            Action::Newline => self.input.insert_char('\n'),
            Action::Complete => {
                if self.input.is_empty() {
                    self.cycle_focus(true);
                } else {
                    self.complete();
                }
            }
            Action::HistoryPrev | Action::HistoryNext => {
                self.recall(action == Action::HistoryPrev);
            }
            other => edit(&mut self.input, other),
        }
    }

    fn cycle_focus(&mut self, forward: bool) {
        let order = Focus::ORDER;
        let n = order.len();
        let mut i = order.iter().position(|f| *f == self.focus).unwrap_or(3);
        for _ in 0..n {
            i = if forward {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            };
            if self.pane_visible(order[i]) {
                break;
            }
        }
        self.focus = order[i];
        // Put the cursor of a list on something, so Enter does what the eye expects.
        match self.focus {
            Focus::Peers if self.peers_list.selected().is_none() => {
                self.peers_list.select_first(&self.peer_rows());
            }
            Focus::Channels if self.channels_list.selected().is_none() => {
                self.channels_list.select_first(&self.channel_rows());
            }
            Focus::Members if self.members_list.selected().is_none() => {
                self.members_list.select_first(&self.member_rows());
            }
            _ => {}
        }
    }

    /// Moves the view of the open conversation with `f(conversation, width, height)`.
    fn scroll(&mut self, f: impl FnOnce(&mut Conversation, usize, usize)) {
        let (width, page) = (self.text_width(), self.page_height());
        if let Some(conv) = self
            .selected
            .as_ref()
            .and_then(|s| self.conversations.get_mut(s))
        {
            f(conv, width, page);
        }
    }

    fn on_mouse(&mut self, m: MouseEvent) {
        if self.screen != Screen::Main {
            return;
        }
        if let Some(help) = &mut self.help {
            match m.kind {
                MouseEventKind::ScrollUp => {
                    help.scroll = help.scroll.saturating_sub(WHEEL_LINES as u16)
                }
                MouseEventKind::ScrollDown => {
                    help.scroll = help.scroll.saturating_add(WHEEL_LINES as u16)
                }
                _ => return,
            }
            self.dirty = true;
            return;
        }
        match m.kind {
            MouseEventKind::ScrollUp => self.scroll(|c, w, h| c.scroll_up(WHEEL_LINES, w, h)),
            MouseEventKind::ScrollDown => self.scroll(|c, w, h| c.scroll_down(WHEEL_LINES, w, h)),
            MouseEventKind::Down(_) => {
                let l = self.layout();
                let at = Position::new(m.column, m.row);
                let hit = |r: Option<Rect>| r.is_some_and(|r| r.contains(at));
                let focus = [
                    (l.peers, Focus::Peers),
                    (l.channels, Focus::Channels),
                    (Some(l.conversation), Focus::Conversation),
                    (Some(l.input), Focus::Input),
                    (l.members, Focus::Members),
                    (l.attributes, Focus::Attributes),
                ]
                .into_iter()
                .find(|(r, _)| hit(*r))
                .map(|(_, f)| f);
                let Some(focus) = focus else { return };
                self.focus = focus;
            }
            _ => return,
        }
        self.dirty = true;
    }

    // ------------------------------------------------------------ search

    fn start_search(&mut self, query: String) {
        let Some(conv) = self
            .selected
            .as_ref()
            .and_then(|s| self.conversations.get(s))
        else {
            self.error("no conversation is open to search");
            return;
        };
        self.search = Some(SearchState {
            query: InputLine::with_text(query),
            editing: true,
            hits: Vec::new(),
            current: None,
            origin: conv.scroll,
        });
        self.run_search();
    }

    /// Finds the query's hits and shows the newest one (as you type).
    fn run_search(&mut self) {
        let (width, page) = (self.text_width(), self.page_height());
        let Some(search) = &mut self.search else {
            return;
        };
        let Some(conv) = self
            .selected
            .as_ref()
            .and_then(|s| self.conversations.get_mut(s))
        else {
            self.search = None;
            return;
        };
        search.hits = conv.search(search.query.text());
        search.current = search.hits.len().checked_sub(1);
        match search.current_entry() {
            Some(e) => conv.show_entry(e, width, page),
            None => conv.scroll = search.origin,
        }
    }

    /// Steps to the next older (or newer) hit.
    fn step_search(&mut self, older: bool) {
        let (width, page) = (self.text_width(), self.page_height());
        let Some(search) = &mut self.search else {
            let hint = self
                .keymap
                .first_key(Context::Global, Action::Search)
                .map_or_else(|| "/search".to_string(), |k| k.label());
            self.note(format!("no search; {hint} starts one"));
            return;
        };
        let n = search.hits.len();
        if n == 0 {
            return;
        }
        let i = search.current.unwrap_or(n - 1);
        let next = if older {
            i.checked_sub(1)
        } else {
            (i + 1 < n).then_some(i + 1)
        };
        let Some(next) = next else {
            let end = if older { "oldest" } else { "newest" };
            self.note(format!("that was the {end} match"));
            return;
        };
        search.current = Some(next);
        if let Some(e) = search.current_entry()
            && let Some(conv) = self
                .selected
                .as_ref()
                .and_then(|s| self.conversations.get_mut(s))
        {
            conv.show_entry(e, width, page);
        }
    }

    fn cancel_search(&mut self) {
        if let Some(search) = self.search.take()
            && let Some(conv) = self
                .selected
                .as_ref()
                .and_then(|s| self.conversations.get_mut(s))
        {
            conv.scroll = search.origin;
        }
    }

    // --------------------------------------------------- unread, panes

    /// The conversations in pane order: peers, then channels.
    pub fn conversation_order(&self) -> Vec<ConvId> {
        self.peer_rows()
            .into_iter()
            .map(ConvId::Peer)
            .chain(self.channel_rows().into_iter().map(ConvId::Channel))
            .collect()
    }

    /// Opens the conversation with unread messages that matters most:
    /// mentions first, then the others; muted ones last; in pane order.
    fn next_unread(&mut self, out: &mut Vec<Command>) {
        let order = self.conversation_order();
        let best = order
            .iter()
            .enumerate()
            .filter_map(|(i, id)| {
                let c = self.conversations.get(id)?;
                (c.unread > 0 && self.selected.as_ref() != Some(id))
                    .then(|| ((c.mentions == 0, self.muted.contains(id), i), id.clone()))
            })
            .min();
        match best {
            Some((_, id)) => {
                self.open(id, out);
                self.focus = Focus::Input;
            }
            None => self.note("no unread messages"),
        }
    }

    fn step_conversation(&mut self, forward: bool, out: &mut Vec<Command>) {
        let order = self.conversation_order();
        if order.is_empty() {
            return;
        }
        let n = order.len();
        let i = match self
            .selected
            .as_ref()
            .and_then(|s| order.iter().position(|o| o == s))
        {
            Some(i) if forward => (i + 1) % n,
            Some(i) => (i + n - 1) % n,
            None => 0,
        };
        self.open(order[i].clone(), out);
    }

    // --------------------------------------------- completion, history

    /// Every name Tab can complete to in a plain message: peers we know,
    /// members of joined channels; not ourselves.
    fn known_peers(&self) -> BTreeSet<Uid> {
        let mut all: BTreeSet<Uid> = self.peer_rows().into_iter().collect();
        for info in self.channels.values() {
            all.extend(info.members.iter().cloned());
        }
        if let Some(me) = &self.me {
            all.remove(me);
        }
        all
    }

    /// Completes the word before the cursor; pressed again, the next candidate.
    fn complete(&mut self) {
        if let Some(c) = &mut self.completion {
            c.index = (c.index + 1) % c.candidates.len();
            let (start, original, pick) =
                (c.start, c.original.clone(), c.candidates[c.index].clone());
            self.apply_completion(start, &original, &pick);
            return;
        }
        let text = self.input.text().to_string();
        let chars: Vec<char> = text.chars().collect();
        let cursor = self.input.cursor();
        let mut start = cursor;
        while start > 0 && !chars[start - 1].is_whitespace() {
            start -= 1;
        }
        let word: String = chars[start..cursor].iter().collect();
        let before: String = chars[..start].iter().collect();
        let first_word = before.trim().is_empty();
        let command = before
            .split_whitespace()
            .next()
            .filter(|w| w.starts_with('/'));
        let quote = |s: String| {
            if s.contains(char::is_whitespace) {
                format!("\"{s}\"")
            } else {
                s
            }
        };
        let lower = word.to_lowercase();
        let matches = |name: &str| name.to_lowercase().starts_with(&lower);
        let channels = |prefix: &str| -> Vec<String> {
            self.channels
                .keys()
                .map(|c| format!("{prefix}{c}"))
                .filter(|c| matches(c))
                .collect()
        };
        let peers = || -> Vec<String> {
            self.known_peers()
                .into_iter()
                .map(|p| p.to_string())
                .filter(|p| matches(p) || matches(&format!("@{p}")))
                .collect()
        };
        let in_channel = matches!(self.selected, Some(ConvId::Channel(_)));
        let candidates: Vec<String> = if first_word && word.starts_with('/') {
            commands::COMMANDS
                .iter()
                .map(|c| format!("/{} ", c.name))
                .filter(|c| matches(c))
                .collect()
        } else if word.starts_with('#') {
            channels("#").into_iter().map(|c| c + " ").collect()
        } else if matches!(
            command,
            Some("/join" | "/leave" | "/cattr" | "/mute" | "/unmute")
        ) {
            let mut c = channels("");
            if matches!(command, Some("/mute" | "/unmute")) {
                c.extend(peers());
            }
            c.into_iter().map(|c| quote(c) + " ").collect()
        } else if command.is_some() {
            peers().into_iter().map(|p| quote(p) + " ").collect()
        } else {
            // A name at the start of a channel message addresses someone: "bob: ".
            let suffix = if first_word && in_channel { ": " } else { " " };
            let at = if word.starts_with('@') { "@" } else { "" };
            peers()
                .into_iter()
                .map(|p| format!("{at}{p}{suffix}"))
                .collect()
        };
        if candidates.is_empty() {
            self.note(format!("nothing to complete for {word:?}"));
            return;
        }
        let pick = candidates[0].clone();
        // Keep the text after the cursor; complete only what is before it.
        let original: String = chars[..start]
            .iter()
            .chain(chars[cursor..].iter())
            .collect();
        self.apply_completion(start, &original, &pick);
        if candidates.len() > 1 {
            self.note(format!(
                "{} matches: {}",
                candidates.len(),
                join_names(candidates.iter().take(8).map(|c| c.trim_end()))
            ));
        }
        self.completion = Some(Completion {
            start,
            original,
            candidates,
            index: 0,
        });
    }

    fn apply_completion(&mut self, start: usize, original: &str, pick: &str) {
        let mut input = InputLine::with_text(original);
        input.home();
        for _ in 0..start {
            input.right();
        }
        input.replace_range(start, start, pick);
        self.input = input;
    }

    /// The history of the open conversation (or of the no-conversation input).
    fn history_of_selected(&mut self) -> &mut Conversation {
        match &self.selected {
            Some(id) => self.conversations.entry(id.clone()).or_default(),
            None => &mut self.global_history,
        }
    }

    /// Up/Down in the input: move between its rows first, then through the
    /// lines sent from this conversation.
    fn recall(&mut self, older: bool) {
        let width = usize::from(self.layout().input.width.saturating_sub(2)).max(1);
        if self.input.move_row(width, older) {
            return;
        }
        let current = self.input.text().to_string();
        let nav = self.history.take();
        let history = self.history_of_selected().history.clone();
        let next = match (nav, older) {
            (None, true) => history.len().checked_sub(1).map(|pos| HistoryNav {
                pos,
                draft: current,
            }),
            (None, false) => None,
            (Some(n), true) => Some(HistoryNav {
                pos: n.pos.saturating_sub(1),
                ..n
            }),
            (Some(n), false) if n.pos + 1 < history.len() => Some(HistoryNav {
                pos: n.pos + 1,
                ..n
            }),
            (Some(n), false) => {
                // Past the newest: back to what was being typed.
                self.input = InputLine::with_text(n.draft);
                None
            }
        };
        if let Some(n) = &next
            && let Some(line) = history.get(n.pos)
        {
            self.input = InputLine::with_text(line.clone());
        }
        self.history = next;
    }

    /// The editable rows of the Attributes pane, top to bottom: the open
    /// channel's attributes, then our own.
    pub fn attribute_rows(&self) -> Vec<AttrRef> {
        let mut rows = Vec::new();
        if let Some(ConvId::Channel(c)) = &self.selected
            && let Some(info) = self.channels.get(c)
        {
            rows.extend(
                info.attributes
                    .iter()
                    .map(|a| AttrRef::Channel(c.clone(), a.key.clone())),
            );
        }
        rows.extend(self.my_attrs.keys().cloned().map(AttrRef::Mine));
        rows
    }

    fn attribute_value(&self, a: &AttrRef) -> Option<String> {
        match a {
            AttrRef::Channel(c, k) => self
                .channels
                .get(c)?
                .attributes
                .iter()
                .find(|x| &x.key == k)
                .map(|x| x.value.clone()),
            AttrRef::Mine(k) => self.my_attrs.get(k).cloned(),
        }
    }

    /// Puts the command that rewrites the selected attribute in the input
    /// line, with its whole value, for the user to change and send.
    fn edit_attribute(&mut self) {
        let Some(a) = self.attrs_list.selected().cloned() else {
            self.error("select an attribute first (Up/Down)");
            return;
        };
        let Some(value) = self.attribute_value(&a) else {
            return;
        };
        let line = match &a {
            AttrRef::Channel(c, k) => format!("/cattr put #{c} {} --notify", quote_pair(k, &value)),
            AttrRef::Mine(k) => format!("/attr put {}", quote_pair(k, &value)),
        };
        self.input = InputLine::with_text(line);
        self.focus = Focus::Input;
        self.info("edit the value and press Enter (Esc leaves it)");
    }

    /// Starts an "add" command in the input line, for the open channel if
    /// one is open and the selection is not one of our own attributes.
    fn add_attribute(&mut self) {
        let line = match (&self.selected, self.attrs_list.selected()) {
            (_, Some(AttrRef::Mine(_))) | (None | Some(ConvId::Peer(_)), _) => {
                "/attr put ".to_string()
            }
            (Some(ConvId::Channel(c)), _) => format!("/cattr put #{c} --notify "),
        };
        self.input = InputLine::with_text(line);
        self.focus = Focus::Input;
        self.info("type key=value and press Enter");
    }

    fn confirm_delete(&mut self, key: &KeyEvent, out: &mut Vec<Command>) {
        let Some(a) = self.pending_delete.take() else {
            return;
        };
        if key.code != KeyCode::Char('y')
            || !key
                .modifiers
                .difference(crossterm::event::KeyModifiers::SHIFT)
                .is_empty()
        {
            self.info("kept");
            return;
        }
        match a {
            AttrRef::Channel(channel, k) => out.push(Command::ChannelAttrWrite {
                channel,
                op: AttrWrite::Delete(vec![k]),
                notify: true,
            }),
            AttrRef::Mine(k) => out.push(Command::UserAttrWrite(AttrWrite::Delete(vec![k]))),
        }
        self.attrs_list.clear();
    }

    fn open_from_focus(&mut self, out: &mut Vec<Command>) {
        let target = match self.focus {
            Focus::Peers => self.peers_list.selected().cloned().map(ConvId::Peer),
            Focus::Channels => self.channels_list.selected().cloned().map(ConvId::Channel),
            Focus::Members => self.members_list.selected().cloned().map(ConvId::Peer),
            Focus::Input | Focus::Conversation | Focus::Attributes => None,
        };
        if let Some(target) = target {
            self.open(target, out);
            self.focus = Focus::Input;
        }
    }

    /// Makes `id` the open conversation (creating it): clears its unread
    /// count, puts the "new" line where unread began, and swaps the input
    /// with the conversation's draft.
    pub(crate) fn open(&mut self, id: ConvId, out: &mut Vec<Command>) {
        if self.selected.as_ref() != Some(&id) {
            let draft = self.input.take();
            if let Some(old) = self
                .selected
                .as_ref()
                .and_then(|s| self.conversations.get_mut(s))
            {
                old.draft = draft;
                old.marker = None;
            }
            self.search = None;
            self.completion = None;
            self.history = None;
            let conv = self.conversations.entry(id.clone()).or_default();
            self.input = InputLine::with_text(std::mem::take(&mut conv.draft));
        }
        let conv = self.conversations.entry(id.clone()).or_default();
        if conv.unread > 0 {
            conv.marker = conv.first_unread;
        }
        conv.unread = 0;
        conv.mentions = 0;
        conv.first_unread = None;
        if let ConvId::Peer(p) = &id {
            self.peers_list.select(p.clone());
            self.follow(&p.clone(), out);
            // The Attributes pane shows the peer's user attributes; fetch them once.
            if !self.user_attrs.contains_key(p) && self.me.is_some() {
                out.push(Command::GetUserAttributes {
                    uid: p.clone(),
                    keys: None,
                    explicit: false,
                });
            }
        }
        if let ConvId::Channel(c) = &id {
            self.channels_list.select(c.clone());
            self.members_list.clear();
        }
        self.attrs_list.scroll_to_top();
        self.selected = Some(id);
    }

    // ---------------------------------------------------------- sending

    fn submit(&mut self, out: &mut Vec<Command>) {
        let line = self.input.take();
        if line.trim().is_empty() {
            return;
        }
        self.history_of_selected().remember(&line);
        let run = if let Some(literal) = line.strip_prefix("//") {
            // `//text` sends "/text": a way to start a message with a slash.
            self.send_to_selected(format!("/{literal}"), out)
        } else if line.starts_with('/') {
            commands::parse(line.trim_end())
                .map_err(|e| e.to_string())
                .and_then(|cmd| self.run_slash(cmd, out))
        } else {
            self.send_to_selected(line.clone(), out)
        };
        if let Err(e) = run {
            self.error(e);
            // Keep the line so the mistake can be fixed instead of retyped.
            self.input = InputLine::with_text(line);
        }
    }

    /// Sends to the open conversation, if there is one.
    fn send_to_selected(&mut self, text: String, out: &mut Vec<Command>) -> Result<(), String> {
        match self.selected.clone() {
            Some(id) => self.send(id, text, out),
            None => {
                Err("no conversation is open: /msg <peer> <text> or /join <channel> first".into())
            }
        }
    }

    /// Shows our message at once (marked as on its way) and asks the executor to send it.
    fn send(&mut self, id: ConvId, text: String, out: &mut Vec<Command>) -> Result<(), String> {
        let Some(me) = self.me.clone() else {
            return Err("not logged in".into());
        };
        if let ConvId::Channel(c) = &id
            && !self.channels.contains_key(c)
        {
            return Err(format!("you are not in #{c}; /join {c} first"));
        }
        let msg_id = self.next_id;
        self.next_id += 1;
        let ts = self.now();
        let entry = Entry {
            ts,
            kind: EntryKind::Message {
                from: me,
                text: text.clone(),
                offline: false,
                delivery: Delivery::Sending(msg_id),
                mention: false,
            },
        };
        self.record_history(&id, &entry, out);
        let conv = self.conversations.entry(id.clone()).or_default();
        conv.to_bottom();
        conv.push(entry);
        out.push(match id {
            ConvId::Peer(peer) => Command::SendPeer {
                peer,
                text,
                id: msg_id,
            },
            ConvId::Channel(channel) => Command::SendChannel {
                channel,
                text,
                id: msg_id,
            },
        });
        Ok(())
    }

    /// /mute and /unmute: the named conversation, or the open one.
    fn set_muted(
        &mut self,
        target: Option<ConvId>,
        mute: bool,
        out: &mut Vec<Command>,
    ) -> Result<(), String> {
        let Some(id) = target.or_else(|| self.selected.clone()) else {
            return Err(
                "no conversation is open; say which: /mute <peer> or /mute #channel".into(),
            );
        };
        let changed = if mute {
            self.muted.insert(id.clone())
        } else {
            self.muted.remove(&id)
        };
        let word = if mute { "muted" } else { "unmuted" };
        if changed {
            self.info(format!("{id} {word}"));
            out.push(Command::SaveMuted(self.muted.iter().cloned().collect()));
        } else {
            self.info(format!("{id} was already {word}"));
        }
        Ok(())
    }

    /// Runs a parsed command; an error (in words) when it cannot apply now.
    fn run_slash(&mut self, cmd: SlashCommand, out: &mut Vec<Command>) -> Result<(), String> {
        match cmd {
            SlashCommand::Msg { peer, text } => {
                self.open(ConvId::Peer(peer.clone()), out);
                self.send(ConvId::Peer(peer), text, out)?;
            }
            SlashCommand::Join(channel) => {
                if self.channels.contains_key(&channel) {
                    self.open(ConvId::Channel(channel.clone()), out);
                    self.info(format!("already in #{channel}"));
                } else {
                    self.info(format!("joining #{channel}…"));
                    self.joining.insert(channel.clone());
                    out.push(Command::Join(channel));
                }
            }
            SlashCommand::Leave(channel) => {
                let channel = channel.or_else(|| self.selected_channel().cloned());
                match channel {
                    None => {
                        return Err(
                            "/leave: no channel is open; say which: /leave <channel>".into()
                        );
                    }
                    Some(c) if !self.channels.contains_key(&c) => {
                        return Err(format!("/leave: you are not in #{c}"));
                    }
                    Some(c) => {
                        self.info(format!("leaving #{c}…"));
                        out.push(Command::Leave(c));
                    }
                }
            }
            SlashCommand::Watch(peers) => {
                self.watched.extend(peers.iter().cloned());
                self.info(format!("watching {}", join_names(&peers)));
                out.push(Command::Subscribe(peers));
                out.push(Command::SaveWatched(self.watched.iter().cloned().collect()));
            }
            SlashCommand::Unwatch(peers) => {
                for p in &peers {
                    self.watched.remove(p);
                    // Without a subscription the state would silently go stale.
                    self.presence.remove(p);
                }
                self.info(format!("no longer watching {}", join_names(&peers)));
                out.push(Command::Unsubscribe(peers));
                out.push(Command::SaveWatched(self.watched.iter().cloned().collect()));
            }
            SlashCommand::Status(peers) => {
                self.info(format!("asking whether {} online…", join_names(&peers)));
                out.push(Command::QueryStatus(peers));
            }
            SlashCommand::UserAttrWrite(op) => out.push(Command::UserAttrWrite(op)),
            SlashCommand::UserAttrGet { uid, keys } => out.push(Command::GetUserAttributes {
                uid,
                keys,
                explicit: true,
            }),
            SlashCommand::ChannelAttrWrite {
                channel,
                op,
                notify,
            } => out.push(Command::ChannelAttrWrite {
                channel,
                op,
                notify,
            }),
            SlashCommand::ChannelAttrGet { channel, keys } => {
                out.push(Command::GetChannelAttributes {
                    channel,
                    keys,
                    explicit: true,
                })
            }
            SlashCommand::Help(topic) => {
                self.help = Some(HelpOverlay { scroll: 0, topic });
            }
            SlashCommand::Search(text) => {
                self.start_search(text);
                if let Some(s) = &mut self.search {
                    s.editing = false;
                    if s.hits.is_empty() {
                        let q = s.query.text().to_string();
                        self.search = None;
                        self.note(format!("no match for {q:?}"));
                    } else {
                        self.focus = Focus::Conversation;
                    }
                }
            }
            SlashCommand::Mute(target) => self.set_muted(target, true, out)?,
            SlashCommand::Unmute(target) => self.set_muted(target, false, out)?,
            SlashCommand::Token(token) => {
                self.info("renewing the login token…");
                out.push(Command::RenewToken(token));
            }
            SlashCommand::Clear => {
                let Some(conv) = self
                    .selected
                    .as_ref()
                    .and_then(|s| self.conversations.get_mut(s))
                else {
                    return Err("no conversation is open".into());
                };
                // Keep messages still on their way: their results must find them.
                conv.entries.retain(|e| {
                    matches!(
                        e.kind,
                        EntryKind::Message {
                            delivery: Delivery::Sending(_),
                            ..
                        }
                    )
                });
                conv.to_bottom();
                conv.marker = None;
                conv.first_unread = None;
                self.search = None;
            }
            SlashCommand::Quit => self.quit(out),
        }
        Ok(())
    }

    // ------------------------------------------------------ SDK events

    /// Adds an incoming entry to a conversation: unread when it is not the
    /// open one (or the view is scrolled up: "new below"); a message that
    /// mentions us, or any direct message, may ring the bell.
    fn push_incoming(
        &mut self,
        id: ConvId,
        entry: Entry,
        counts_unread: bool,
        out: &mut Vec<Command>,
    ) {
        let open = self.selected.as_ref() == Some(&id);
        let conv = self.conversations.entry(id.clone()).or_default();
        let mention = matches!(entry.kind, EntryKind::Message { mention: true, .. });
        if counts_unread {
            if !open {
                if conv.unread == 0 {
                    conv.first_unread = Some(conv.entries.len());
                }
                conv.unread += 1;
                conv.mentions += usize::from(mention);
            } else if conv.scroll != Scroll::Bottom {
                conv.new_below += 1;
            }
        }
        let at_bottom = conv.scroll == Scroll::Bottom;
        let notification = match &entry.kind {
            EntryKind::Message { from, text, .. } if counts_unread => {
                let level = if self.muted.contains(&id) {
                    NotifyLevel::None
                } else {
                    self.notify.level(&id)
                };
                let wanted = match level {
                    NotifyLevel::All => true,
                    NotifyLevel::Mentions => mention,
                    NotifyLevel::None => false,
                };
                // Looking at it already: no need to call.
                let seen = open && at_bottom && self.terminal_focused;
                (wanted
                    && !seen
                    && (self.notify.bell || self.notify.desktop != super::notify::Desktop::Off))
                    .then(|| Notification {
                        bell: self.notify.bell,
                        desktop: self.notify.desktop,
                        title: match &id {
                            ConvId::Peer(p) => format!("rtm: {p}"),
                            ConvId::Channel(c) => format!("rtm: {from} in #{c}"),
                        },
                        body: text.clone(),
                    })
            }
            _ => None,
        };
        if conv.push(entry) > 0 && open {
            // Entry indexes moved; find the hits again.
            self.run_search();
        }
        if let Some(n) = notification {
            out.push(Command::Notify(n));
        }
    }

    /// True when a message from `from` with `text` names us.
    fn is_mention(&self, from: &Uid, text: &str) -> bool {
        self.me
            .as_ref()
            .is_some_and(|me| me != from && mentions(text, me))
    }

    fn on_client_event(&mut self, ev: ClientEvent, out: &mut Vec<Command>) {
        match ev {
            ClientEvent::ConnectionStateChanged { state, reason } => {
                self.connection = state;
                self.on_connection_change(state, reason);
            }
            ClientEvent::MessageFromPeer {
                message,
                peer_id,
                props,
            } => {
                let ts = if props.server_received_ts > 0 {
                    props.server_received_ts
                } else {
                    self.now()
                };
                let text = text_of(&message);
                let entry = Entry {
                    ts,
                    kind: EntryKind::Message {
                        mention: self.is_mention(&peer_id, &text),
                        from: peer_id.clone(),
                        text,
                        offline: props.is_offline_message,
                        delivery: Delivery::Received,
                    },
                };
                let id = ConvId::Peer(peer_id.clone());
                self.record_history(&id, &entry, out);
                self.push_incoming(id, entry, true, out);
                self.follow(&peer_id, out);
                // With nothing open, show the first message that arrives.
                if self.selected.is_none() {
                    self.open(ConvId::Peer(peer_id), out);
                }
            }
            ClientEvent::PeersOnlineStatusChanged(states) => {
                let mut notes = Vec::new();
                for (peer, state) in states {
                    let before = self.presence.insert(peer.clone(), state);
                    // The first report after subscribing is not news; changes are.
                    if self.watched.contains(&peer) && before.is_some() && before != Some(state) {
                        notes.push(format!("{peer} is {}", presence_word(state)));
                    }
                }
                if !notes.is_empty() {
                    self.note(notes.join(" · "));
                }
            }
            ClientEvent::Channel { channel_id, event } => {
                self.on_channel_event(channel_id, event, out);
            }
            ClientEvent::Restored {
                rejoined, failed, ..
            } => {
                for c in &rejoined {
                    self.channels.entry(c.clone()).or_default();
                    // Members may have come and gone while we were away.
                    out.push(Command::GetMembers(c.clone()));
                    out.push(Command::GetChannelAttributes {
                        channel: c.clone(),
                        keys: None,
                        explicit: false,
                    });
                }
                let mut text = if rejoined.is_empty() {
                    "reconnected".to_string()
                } else {
                    format!(
                        "reconnected; rejoined {}",
                        join_names(rejoined.iter().map(|c| format!("#{c}")))
                    )
                };
                for (c, e) in &failed {
                    self.channels.remove(c);
                    let ts = self.now();
                    self.conversations
                        .entry(ConvId::Channel(c.clone()))
                        .or_default()
                        .push(Entry {
                            ts,
                            kind: EntryKind::Error(format!("could not rejoin #{c}: {e}")),
                        });
                    text.push_str(&format!("; could not rejoin #{c}"));
                }
                if failed.is_empty() {
                    self.note(text);
                } else {
                    self.error(text);
                }
            }
            ClientEvent::TokenPrivilegeWillExpire { expires_in_s } => {
                if self.token_command {
                    self.note(format!(
                        "the login token expires in {expires_in_s} s; fetching a fresh one…"
                    ));
                    out.push(Command::FetchToken);
                } else {
                    let me = self.me.as_ref().map_or("<uid>".to_string(), Uid::to_string);
                    self.error(format!(
                        "the login token expires in {expires_in_s} s: type /token <new token> (the server's operator makes one with `rtm token --uid {me}`)"
                    ));
                }
            }
            ClientEvent::TokenExpired => {
                self.error(
                    "the login token expired and the session ended; start rtm chat again with a fresh --token",
                );
            }
        }
    }

    fn on_connection_change(&mut self, state: ConnectionState, reason: ConnectionChangeReason) {
        use ConnectionChangeReason as R;
        match (state, reason) {
            (ConnectionState::Reconnecting, _) => {
                self.error("connection lost; reconnecting…");
            }
            (ConnectionState::Aborted, R::RemoteLogin) => {
                self.error("this uid logged in somewhere else; this session has ended");
            }
            (ConnectionState::Aborted, R::TokenExpired) => {
                self.error(
                    "the login token expired and the session ended; start rtm chat again with a fresh --token",
                );
            }
            (ConnectionState::Aborted, R::BannedByServer) => {
                self.error("the server closed this session");
            }
            (ConnectionState::Aborted, _) => self.error("the connection was aborted"),
            _ => {}
        }
    }

    fn on_channel_event(
        &mut self,
        channel: ChannelId,
        event: ChannelEvent,
        out: &mut Vec<Command>,
    ) {
        if !self.channels.contains_key(&channel) {
            // Late events for a channel we left; nothing shows it any more.
            return;
        }
        let id = ConvId::Channel(channel.clone());
        let now = self.now();
        match event {
            ChannelEvent::ChannelMessage {
                message,
                member_id,
                props,
            } => {
                let ts = if props.server_received_ts > 0 {
                    props.server_received_ts
                } else {
                    now
                };
                let text = text_of(&message);
                let entry = Entry {
                    ts,
                    kind: EntryKind::Message {
                        mention: self.is_mention(&member_id, &text),
                        from: member_id,
                        text,
                        offline: props.is_offline_message,
                        delivery: Delivery::Received,
                    },
                };
                self.record_history(&id, &entry, out);
                self.push_incoming(id, entry, true, out);
            }
            ChannelEvent::MemberJoined(uid) => {
                if let Some(info) = self.channels.get_mut(&channel)
                    && info.members.insert(uid.clone())
                {
                    info.member_count = Some(info.member_count.unwrap_or(0) + 1);
                }
                let entry = Entry {
                    ts: now,
                    kind: EntryKind::Quiet(format!("-- {uid} joined")),
                };
                self.push_incoming(id, entry, false, out);
            }
            ChannelEvent::MemberLeft(uid) => {
                if let Some(info) = self.channels.get_mut(&channel)
                    && info.members.remove(&uid)
                {
                    info.member_count = info.member_count.map(|n| n.saturating_sub(1));
                }
                self.members_list.forget(&uid);
                let entry = Entry {
                    ts: now,
                    kind: EntryKind::Quiet(format!("-- {uid} left")),
                };
                self.push_incoming(id, entry, false, out);
            }
            ChannelEvent::MemberCountUpdated(n) => {
                if let Some(info) = self.channels.get_mut(&channel) {
                    info.member_count = Some(n);
                }
            }
            ChannelEvent::AttributesUpdated(attributes) => {
                self.set_channel_attributes(&channel, attributes, true);
            }
        }
    }

    /// Replaces a channel's attributes, marking the keys whose value changed.
    fn set_channel_attributes(
        &mut self,
        channel: &ChannelId,
        mut attributes: Vec<ChannelAttribute>,
        mark: bool,
    ) {
        let now = self.now();
        let Some(info) = self.channels.get_mut(channel) else {
            return;
        };
        attributes.sort_by(|a, b| a.key.cmp(&b.key));
        if mark {
            for a in &attributes {
                let same = info
                    .attributes
                    .iter()
                    .any(|old| old.key == a.key && old.value == a.value);
                if !same {
                    info.changed.insert(a.key.clone(), now);
                }
            }
        }
        info.attributes = attributes;
    }

    // ------------------------------------------------- command results

    fn on_result(&mut self, r: CommandResult, out: &mut Vec<Command>) {
        match r {
            CommandResult::LoggedIn { uid, result } => self.on_logged_in(uid, result, out),
            CommandResult::PeerMessageSent { peer, id, result } => {
                let now = self.now();
                let conv = self
                    .conversations
                    .entry(ConvId::Peer(peer.clone()))
                    .or_default();
                let Some(entry) = conv.sending_mut(id) else {
                    return;
                };
                match result {
                    Ok(r) => {
                        set_delivery(entry, Delivery::Sent);
                        if r.server_received_ts > 0 {
                            entry.ts = r.server_received_ts;
                        }
                        let note = if r.has_peer_received {
                            None
                        } else if r.cached {
                            Some(format!("{peer} is offline: stored, will be delivered"))
                        } else {
                            Some(format!("{peer} is offline; message not delivered"))
                        };
                        let ts = entry.ts;
                        if let Some(note) = note {
                            conv.push(Entry {
                                ts: now,
                                kind: EntryKind::System(note),
                            });
                        }
                        self.record_delivery(id, Delivery::Sent, ts, out);
                    }
                    Err(e) => {
                        set_delivery(entry, Delivery::Failed);
                        let ts = entry.ts;
                        self.record_delivery(id, Delivery::Failed, ts, out);
                        self.error(format!("message to {peer} not sent: {e}"));
                    }
                }
            }
            CommandResult::ChannelMessageSent {
                channel,
                id,
                result,
            } => {
                let conv = self
                    .conversations
                    .entry(ConvId::Channel(channel.clone()))
                    .or_default();
                let Some(entry) = conv.sending_mut(id) else {
                    return;
                };
                match result {
                    Ok(ts) => {
                        set_delivery(entry, Delivery::Sent);
                        if ts > 0 {
                            entry.ts = ts;
                        }
                        let ts = entry.ts;
                        self.record_delivery(id, Delivery::Sent, ts, out);
                    }
                    Err(e) => {
                        set_delivery(entry, Delivery::Failed);
                        let ts = entry.ts;
                        self.record_delivery(id, Delivery::Failed, ts, out);
                        self.error(format!("message to #{channel} not sent: {e}"));
                    }
                }
            }
            CommandResult::Joined { channel, result } => {
                self.joining.remove(&channel);
                match result {
                    Ok(count) => {
                        self.channels.insert(
                            channel.clone(),
                            ChannelInfo {
                                member_count: Some(count),
                                ..ChannelInfo::default()
                            },
                        );
                        let ts = self.now();
                        self.conversations
                            .entry(ConvId::Channel(channel.clone()))
                            .or_default()
                            .push(Entry {
                                ts,
                                kind: EntryKind::Quiet(format!("-- you joined #{channel}")),
                            });
                        self.open(ConvId::Channel(channel.clone()), out);
                        self.info(format!("joined #{channel}"));
                        out.push(Command::GetMembers(channel.clone()));
                        out.push(Command::GetChannelAttributes {
                            channel,
                            keys: None,
                            explicit: false,
                        });
                    }
                    Err(e) => self.error(format!("cannot join #{channel}: {e}")),
                }
            }
            CommandResult::Left { channel, result } => match result {
                Ok(()) => {
                    self.channels.remove(&channel);
                    let ts = self.now();
                    let id = ConvId::Channel(channel.clone());
                    self.conversations
                        .entry(id.clone())
                        .or_default()
                        .push(Entry {
                            ts,
                            kind: EntryKind::Quiet(format!("-- you left #{channel}")),
                        });
                    self.channels_list.forget(&channel);
                    if self.selected.as_ref() == Some(&id) {
                        // Show something still alive rather than a channel we cannot write to.
                        let next = self
                            .channels
                            .keys()
                            .next()
                            .cloned()
                            .map(ConvId::Channel)
                            .or_else(|| self.peer_rows().first().cloned().map(ConvId::Peer));
                        self.selected = None;
                        if let Some(next) = next {
                            self.open(next, out);
                        }
                    }
                    self.info(format!("left #{channel}"));
                }
                Err(e) => self.error(format!("cannot leave #{channel}: {e}")),
            },
            CommandResult::Members { channel, result } => match result {
                Ok(members) => {
                    if let Some(info) = self.channels.get_mut(&channel) {
                        info.member_count = Some(members.len().try_into().unwrap_or(u32::MAX));
                        info.members = members.into_iter().collect();
                    }
                }
                Err(e) => self.error(format!("cannot list the members of #{channel}: {e}")),
            },
            CommandResult::Subscribed { peers, result } => {
                if let Err(e) = result {
                    self.error(format!("cannot watch {}: {e}", join_names(&peers)));
                }
            }
            CommandResult::Unsubscribed { peers, result } => {
                if let Err(e) = result {
                    self.error(format!("cannot unwatch {}: {e}", join_names(&peers)));
                }
            }
            CommandResult::OnlineStatus { peers, result } => match result {
                Ok(map) => {
                    let words: Vec<String> = peers
                        .iter()
                        .map(|p| {
                            let online = map.get(p).copied().unwrap_or(false);
                            // A subscription knows better (it also sees UNREACHABLE).
                            if !self.watched.contains(p) {
                                let s = if online {
                                    PeerOnlineState::Online
                                } else {
                                    PeerOnlineState::Offline
                                };
                                self.presence.insert(p.clone(), s);
                            }
                            format!("{p}: {}", if online { "online" } else { "offline" })
                        })
                        .collect();
                    self.info(words.join(" · "));
                }
                Err(e) => self.error(format!("cannot query {}: {e}", join_names(&peers))),
            },
            CommandResult::UserAttrWritten { op, result } => match result {
                Ok(()) => {
                    let verb = op.done_verb();
                    match op {
                        AttrWrite::Set(map) => self.my_attrs = map,
                        AttrWrite::Put(map) => self.my_attrs.extend(map),
                        AttrWrite::Delete(keys) => {
                            for k in keys {
                                self.my_attrs.remove(&k);
                            }
                        }
                        AttrWrite::Clear => self.my_attrs.clear(),
                    }
                    self.info(format!("your attributes: {verb}"));
                }
                Err(e) => self.error(format!("your attributes were not changed: {e}")),
            },
            CommandResult::UserAttributes {
                uid,
                keys,
                explicit,
                result,
            } => match result {
                Ok(map) => {
                    if explicit {
                        self.info(if map.is_empty() {
                            format!("{uid} has no such attributes")
                        } else {
                            format!(
                                "{uid}: {}",
                                join_names(map.iter().map(|(k, v)| format!("{k}={v}")))
                            )
                        });
                    }
                    let entry = self
                        .user_attrs
                        .entry(uid)
                        .or_insert_with(|| Ok(BTreeMap::new()));
                    match (keys, entry) {
                        (None, e) => *e = Ok(map),
                        (Some(_), Ok(known)) => known.extend(map),
                        (Some(_), e) => *e = Ok(map),
                    }
                }
                Err(e) => {
                    if explicit {
                        self.error(format!("cannot read {uid}'s attributes: {e}"));
                    }
                    if keys.is_none() {
                        self.user_attrs.insert(uid, Err(e.to_string()));
                    }
                }
            },
            CommandResult::ChannelAttrWritten {
                channel,
                op,
                notify,
                result,
            } => match result {
                Ok(()) => {
                    let told = if notify { " (members notified)" } else { "" };
                    self.info(format!("#{channel} attributes {}{told}", op.done_verb()));
                    if self.channels.contains_key(&channel) {
                        out.push(Command::GetChannelAttributes {
                            channel,
                            keys: None,
                            explicit: false,
                        });
                    }
                }
                Err(e) => self.error(format!("#{channel} attributes were not changed: {e}")),
            },
            CommandResult::ChannelAttributes {
                channel,
                keys,
                explicit,
                result,
            } => match result {
                Ok(attrs) => {
                    if explicit {
                        self.info(if attrs.is_empty() {
                            format!("#{channel} has no such attributes")
                        } else {
                            format!(
                                "#{channel}: {}",
                                join_names(attrs.iter().map(|a| format!("{}={}", a.key, a.value)))
                            )
                        });
                    }
                    if keys.is_none() {
                        let mark = self
                            .channels
                            .get(&channel)
                            .is_some_and(|i| !i.attributes.is_empty());
                        self.set_channel_attributes(&channel, attrs, mark);
                    }
                }
                Err(e) => {
                    self.error(format!("cannot read #{channel} attributes: {e}"));
                }
            },
            CommandResult::WatchedLoaded(result) => match result {
                Ok(peers) => {
                    let new: Vec<Uid> = peers
                        .into_iter()
                        .filter(|p| self.watched.insert(p.clone()))
                        .collect();
                    if self.me.is_some() && !new.is_empty() {
                        out.push(Command::Subscribe(new));
                    }
                }
                Err(e) => self.error(format!("cannot read the watched list: {e}")),
            },
            CommandResult::TokenRenewed(result) => match result {
                Ok(()) => self.info("login token renewed"),
                Err(e) => self.error(format!(
                    "could not renew the login token: {e}; type /token <new token>"
                )),
            },
            CommandResult::WatchedSaved(result) => {
                if let Err(e) = result {
                    self.error(format!("cannot save the watched list: {e}"));
                }
            }
            CommandResult::MutedLoaded(result) => match result {
                Ok(ids) => self.muted.extend(ids),
                Err(e) => self.error(format!("cannot read the muted list: {e}")),
            },
            CommandResult::MutedSaved(result) => {
                if let Err(e) = result {
                    self.error(format!("cannot save the muted list: {e}"));
                }
            }
            CommandResult::HistoryLoaded(result) => match result {
                Ok(convs) => self.on_history_loaded(convs, out),
                Err(e) => self.error(e),
            },
            CommandResult::HistoryFailed(e) => self.error(format!("{e}; history not saved")),
        }
    }

    /// Puts the local history before what this session already shows: not
    /// unread, no bell. With nothing open yet, opens the most recent
    /// conversation, so the messenger starts where it was left.
    fn on_history_loaded(&mut self, convs: Vec<LoadedConversation>, out: &mut Vec<Command>) {
        let recent = convs.first().map(|(id, _)| id.clone());
        for (id, mut entries) in convs {
            for e in &mut entries {
                if let EntryKind::Message {
                    from,
                    text,
                    mention,
                    ..
                } = &mut e.kind
                {
                    *mention = self.is_mention(from, text);
                }
            }
            if let ConvId::Channel(c) = &id {
                self.past_channels.insert(c.clone());
            }
            self.conversations.entry(id).or_default().prepend(entries);
        }
        // Entry indexes moved; find the hits again.
        self.run_search();
        if self.selected.is_none()
            && let Some(id) = recent
        {
            self.open(id, out);
        }
    }

    /// Keeps a message entry in the local history (when it is on).
    fn record_history(&mut self, id: &ConvId, entry: &Entry, out: &mut Vec<Command>) {
        let EntryKind::Message {
            from,
            text,
            offline,
            delivery,
            ..
        } = &entry.kind
        else {
            return;
        };
        if !self.keep_history {
            return;
        }
        if let ConvId::Channel(c) = id {
            // Listed (as left) after leaving, as it will be at the next start.
            self.past_channels.insert(c.clone());
        }
        out.push(Command::RecordHistory(HistoryRecord::Message {
            conv: id.clone(),
            ts: entry.ts,
            from: from.clone(),
            text: text.clone(),
            offline: *offline,
            outgoing: self.me.as_ref() == Some(from),
            delivery: *delivery,
        }));
    }

    /// Keeps the answer to our message `id` in the local history.
    fn record_delivery(&self, id: u64, delivery: Delivery, ts: u64, out: &mut Vec<Command>) {
        if self.keep_history {
            out.push(Command::RecordHistory(HistoryRecord::Delivery {
                id,
                delivery,
                ts,
            }));
        }
    }

    fn on_logged_in(
        &mut self,
        uid: Uid,
        result: Result<LoginInfo, RtmError>,
        out: &mut Vec<Command>,
    ) {
        self.login.busy = false;
        match result {
            Ok(info) => {
                self.screen = Screen::Main;
                self.me = Some(info.uid.clone());
                self.connection = ConnectionState::Connected;
                self.focus = Focus::Input;
                let mode = if info.dev_mode {
                    " (development server: tokens not checked)"
                } else {
                    ""
                };
                self.info(format!("logged in as {}{mode}; ? or F1 for help", info.uid));
                if self.keep_history {
                    out.push(Command::OpenHistory(info.uid.clone()));
                }
                if !self.watched.is_empty() {
                    out.push(Command::Subscribe(self.watched.iter().cloned().collect()));
                }
            }
            Err(e) => {
                self.screen = Screen::Login;
                if self.login.input.is_empty() {
                    self.login.input = InputLine::with_text(uid.as_str());
                }
                self.login.error = Some(e.to_string());
            }
        }
    }
}

/// `key=value` as the command parser reads it back (quoted when needed).
fn quote_pair(key: &str, value: &str) -> String {
    let pair = format!("{key}={value}");
    if pair.contains(char::is_whitespace) || pair.contains('"') {
        format!("\"{}\"", pair.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        pair
    }
}

fn set_delivery(entry: &mut Entry, to: Delivery) {
    if let EntryKind::Message { delivery, .. } = &mut entry.kind {
        *delivery = to;
    }
}

/// Applies an editing action to an input line.
fn edit(input: &mut InputLine, action: Action) {
    match action {
        Action::Left => input.left(),
        Action::Right => input.right(),
        Action::Home => input.home(),
        Action::WordLeft => input.word_left(),
        Action::WordRight => input.word_right(),
        Action::End => input.end(),
        Action::Backspace => input.backspace(),
        Action::Delete => input.delete(),
        Action::DeleteWord => input.delete_word_back(),
        Action::ClearLine => {
            input.take();
        }
        _ => {}
    }
}
