//! The messenger's state and its one transition function,
//! [`App::update`]: an [`Event`] in, state changed, [`Command`]s out. No IO,
//! no awaits, no terminal; the event loop (`tui::run`) does those, and the
//! tests drive `update` directly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::ChatOptions;
use super::commands::{self, AttrWrite, SlashCommand};
use super::conversation::{ConvId, Conversation, Delivery, Entry, EntryKind, entry_lines};
use super::input::InputLine;
use super::keymap::{self, Action, Context};
use super::layout::MainLayout;
use super::theme::Theme;
use crate::client::{
    ChannelAttribute, ChannelEvent, ClientEvent, ConnectionChangeReason, ConnectionState,
    LoginInfo, PeerMessageSendResult, PeerOnlineState, RtmError, RtmMessage,
};
use crate::protocol::{ChannelId, Uid};

/// How long a note ("bob is online") stays in the status bar, in ms.
pub const NOTE_TTL_MS: u64 = 6_000;
/// How long a changed attribute row stays highlighted, in ms.
pub const CHANGED_TTL_MS: u64 = 4_000;
/// Lines scrolled by the mouse wheel.
const WHEEL_LINES: usize = 3;

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
    /// Read `watched.txt`.
    LoadWatched,
    /// Write `watched.txt` with exactly these uids.
    SaveWatched(Vec<Uid>),
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
    /// The conversation and its input line (typing goes here).
    Input,
    Members,
    Attributes,
}

impl Focus {
    pub const ORDER: [Focus; 5] = [
        Focus::Peers,
        Focus::Channels,
        Focus::Input,
        Focus::Members,
        Focus::Attributes,
    ];
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
}

/// The whole state of the messenger. Owned by the event loop; `render` reads it.
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) theme: Theme,
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
    pub(crate) peers_cursor: Option<Uid>,
    pub(crate) channels_cursor: Option<ChannelId>,
    pub(crate) members_cursor: Option<Uid>,
    pub(crate) attrs_scroll: usize,
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
            server_url: s.server.clone(),
            embedded_server: options.embedded_server.clone(),
            log_dir: options.log_dir.clone(),
            data_dir: s.paths.data_dir.clone(),
            configured: (s.uid.clone(), s.token.clone()),
            clock: crate::protocol::now_ms,
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
            watched: BTreeSet::new(),
            channels: BTreeMap::new(),
            joining: BTreeSet::new(),
            user_attrs: BTreeMap::new(),
            my_attrs: BTreeMap::new(),
            selected: None,
            focus: Focus::Input,
            peers_cursor: None,
            channels_cursor: None,
            members_cursor: None,
            attrs_scroll: 0,
            input: InputLine::default(),
            help: None,
            status: None,
            size: (80, 24),
            next_id: 1,
            dirty: true,
            quitting: false,
        }
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
        let mut out = vec![Command::LoadWatched];
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
        MainLayout::new(Rect::new(0, 0, self.size.0, self.size.1))
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
        rows.sort_by_key(|p| (presence_rank(self.presence_of(p)), p.clone()));
        rows
    }

    pub fn channel_rows(&self) -> Vec<ChannelId> {
        self.channels.keys().cloned().collect()
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
        let mut rows: Vec<Uid> = info.members.iter().cloned().collect();
        rows.sort_by_key(|p| (presence_rank(Some(self.member_presence(p))), p.clone()));
        rows
    }

    fn pane_visible(&self, focus: Focus) -> bool {
        let l = self.layout();
        match focus {
            Focus::Peers => l.peers.is_some(),
            Focus::Channels => l.channels.is_some(),
            Focus::Input => true,
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
                    Screen::Main => {
                        self.focus = Focus::Input;
                        self.input.insert_str(&text);
                    }
                }
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
            match keymap::action(Context::Overlay, &key) {
                Some(Action::Back | Action::Help) => self.help = None,
                Some(Action::Up) => help.scroll = help.scroll.saturating_sub(1),
                Some(Action::Down) => help.scroll = help.scroll.saturating_add(1),
                Some(Action::PageUp) => help.scroll = help.scroll.saturating_sub(10),
                Some(Action::PageDown) => help.scroll = help.scroll.saturating_add(10),
                Some(Action::Quit) => self.quit(out),
                _ => {}
            }
            return;
        }
        let context = if self.focus == Focus::Input {
            Context::Input
        } else {
            Context::List
        };
        match keymap::action(context, &key) {
            // `?` is help only on an empty line; F1 always is.
            Some(Action::Help)
                if context == Context::Input
                    && key.code == KeyCode::Char('?')
                    && !self.input.is_empty() =>
            {
                self.input.insert_char('?');
            }
            Some(action) => self.on_action(action, out),
            None => {
                if let KeyCode::Char(c) = key.code
                    && !key
                        .modifiers
                        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
                {
                    // Typing in a list goes to the input line: there is nothing else to type into.
                    self.focus = Focus::Input;
                    self.input.insert_char(c);
                }
            }
        }
    }

    fn on_login_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
        let input = &mut self.login.input;
        match keymap::action(Context::Login, &key) {
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
                    && !key
                        .modifiers
                        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
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
            Action::Help => self.help = Some(HelpOverlay::default()),
            Action::Back => self.focus = Focus::Input,
            Action::FocusNext | Action::FocusPrev => self.cycle_focus(action == Action::FocusNext),
            Action::PageUp => self.scroll_by(self.page_height().saturating_sub(1).max(1) as isize),
            Action::PageDown => {
                self.scroll_by(-(self.page_height().saturating_sub(1).max(1) as isize))
            }
            Action::Up | Action::Down => {
                let up = action == Action::Up;
                match self.focus {
                    Focus::Input => self.scroll_by(if up { 1 } else { -1 }),
                    Focus::Peers => {
                        let rows = self.peer_rows();
                        self.peers_cursor = step(&rows, self.peers_cursor.as_ref(), up);
                    }
                    Focus::Channels => {
                        let rows = self.channel_rows();
                        self.channels_cursor = step(&rows, self.channels_cursor.as_ref(), up);
                    }
                    Focus::Members => {
                        let rows = self.member_rows();
                        self.members_cursor = step(&rows, self.members_cursor.as_ref(), up);
                    }
                    Focus::Attributes => {
                        self.attrs_scroll = if up {
                            self.attrs_scroll.saturating_sub(1)
                        } else {
                            self.attrs_scroll + 1
                        };
                    }
                }
            }
            Action::Open => self.open_from_focus(out),
            Action::Submit => self.submit(out),
            other => edit(&mut self.input, other),
        }
    }

    fn cycle_focus(&mut self, forward: bool) {
        let order = Focus::ORDER;
        let n = order.len();
        let mut i = order.iter().position(|f| *f == self.focus).unwrap_or(2);
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
            Focus::Peers if self.peers_cursor.is_none() => {
                self.peers_cursor = self.peer_rows().first().cloned();
            }
            Focus::Channels if self.channels_cursor.is_none() => {
                self.channels_cursor = self.channel_rows().first().cloned();
            }
            Focus::Members if self.members_cursor.is_none() => {
                self.members_cursor = self.member_rows().first().cloned();
            }
            _ => {}
        }
    }

    /// Scrolls the open conversation; positive is up (older).
    fn scroll_by(&mut self, lines: isize) {
        let (width, page) = (self.text_width(), self.page_height());
        let Some(conv) = self
            .selected
            .as_ref()
            .and_then(|s| self.conversations.get_mut(s))
        else {
            return;
        };
        let wanted = conv.scroll.saturating_add_signed(lines);
        let max = conv.line_count(width, wanted + page).saturating_sub(page);
        conv.scroll = wanted.min(max);
    }

    fn on_mouse(&mut self, m: MouseEvent) {
        if self.screen != Screen::Main || self.help.is_some() {
            return;
        }
        match m.kind {
            MouseEventKind::ScrollUp => self.scroll_by(WHEEL_LINES as isize),
            MouseEventKind::ScrollDown => self.scroll_by(-(WHEEL_LINES as isize)),
            MouseEventKind::Down(_) => {
                let l = self.layout();
                let at = Position::new(m.column, m.row);
                let hit = |r: Option<Rect>| r.is_some_and(|r| r.contains(at));
                let focus = [
                    (l.peers, Focus::Peers),
                    (l.channels, Focus::Channels),
                    (Some(l.conversation), Focus::Input),
                    (Some(l.input), Focus::Input),
                    (l.members, Focus::Members),
                    (l.attributes, Focus::Attributes),
                ]
                .into_iter()
                .find(|(r, _)| hit(*r))
                .map(|(_, f)| f);
                let Some(focus) = focus else { return };
                if self.focus != focus {
                    self.focus = focus;
                }
            }
            _ => return,
        }
        self.dirty = true;
    }

    fn open_from_focus(&mut self, out: &mut Vec<Command>) {
        let target = match self.focus {
            Focus::Peers => self.peers_cursor.clone().map(ConvId::Peer),
            Focus::Channels => self.channels_cursor.clone().map(ConvId::Channel),
            Focus::Members => self.members_cursor.clone().map(ConvId::Peer),
            Focus::Input | Focus::Attributes => None,
        };
        if let Some(target) = target {
            self.open(target, out);
            self.focus = Focus::Input;
        }
    }

    /// Makes `id` the open conversation (creating it) and clears its unread count.
    pub(crate) fn open(&mut self, id: ConvId, out: &mut Vec<Command>) {
        let conv = self.conversations.entry(id.clone()).or_default();
        conv.unread = 0;
        if let ConvId::Peer(p) = &id {
            self.peers_cursor = Some(p.clone());
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
            self.channels_cursor = Some(c.clone());
            self.members_cursor = None;
        }
        self.attrs_scroll = 0;
        self.selected = Some(id);
    }

    // ---------------------------------------------------------- sending

    fn submit(&mut self, out: &mut Vec<Command>) {
        let line = self.input.take();
        if line.trim().is_empty() {
            return;
        }
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
        let conv = self.conversations.entry(id.clone()).or_default();
        conv.scroll = 0;
        conv.push(Entry {
            ts,
            kind: EntryKind::Message {
                from: me,
                text: text.clone(),
                offline: false,
                delivery: Delivery::Sending(msg_id),
            },
        });
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
            SlashCommand::Help(None) => self.help = Some(HelpOverlay::default()),
            SlashCommand::Help(Some(spec)) => {
                self.info(format!(
                    "/{} {} — {}",
                    spec.name, spec.args, spec.description
                ));
            }
            SlashCommand::Quit => self.quit(out),
        }
        Ok(())
    }

    // ------------------------------------------------------ SDK events

    /// Adds an incoming entry to a conversation: unread when it is not the
    /// open one, and the view keeps its place when scrolled up.
    fn push_incoming(&mut self, id: ConvId, entry: Entry, counts_unread: bool) {
        let width = self.text_width();
        let open = self.selected.as_ref() == Some(&id);
        let me = self.me.clone();
        let conv = self.conversations.entry(id).or_default();
        if open && conv.scroll > 0 {
            conv.scroll += entry_lines(&entry, me.as_ref(), &self.theme, width).len();
        }
        if !open && counts_unread {
            conv.unread += 1;
        }
        conv.push(entry);
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
                let entry = Entry {
                    ts,
                    kind: EntryKind::Message {
                        from: peer_id.clone(),
                        text: text_of(&message),
                        offline: props.is_offline_message,
                        delivery: Delivery::Received,
                    },
                };
                self.push_incoming(ConvId::Peer(peer_id.clone()), entry, true);
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
                self.on_channel_event(channel_id, event);
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
                self.error(format!(
                    "the login token expires in {expires_in_s} s; restart with a fresh token (rtm token)"
                ));
            }
            ClientEvent::TokenExpired => {
                self.error("the login token expired; restart with a fresh token (rtm token)");
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
                self.error("the login token expired; restart with a fresh token");
            }
            (ConnectionState::Aborted, R::BannedByServer) => {
                self.error("the server closed this session");
            }
            (ConnectionState::Aborted, _) => self.error("the connection was aborted"),
            _ => {}
        }
    }

    fn on_channel_event(&mut self, channel: ChannelId, event: ChannelEvent) {
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
                let entry = Entry {
                    ts,
                    kind: EntryKind::Message {
                        from: member_id,
                        text: text_of(&message),
                        offline: props.is_offline_message,
                        delivery: Delivery::Received,
                    },
                };
                self.push_incoming(id, entry, true);
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
                self.push_incoming(id, entry, false);
            }
            ChannelEvent::MemberLeft(uid) => {
                if let Some(info) = self.channels.get_mut(&channel)
                    && info.members.remove(&uid)
                {
                    info.member_count = info.member_count.map(|n| n.saturating_sub(1));
                }
                if self.members_cursor.as_ref() == Some(&uid) {
                    self.members_cursor = None;
                }
                let entry = Entry {
                    ts: now,
                    kind: EntryKind::Quiet(format!("-- {uid} left")),
                };
                self.push_incoming(id, entry, false);
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
                        if let Some(note) = note {
                            conv.push(Entry {
                                ts: now,
                                kind: EntryKind::System(note),
                            });
                        }
                    }
                    Err(e) => {
                        set_delivery(entry, Delivery::Failed);
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
                    }
                    Err(e) => {
                        set_delivery(entry, Delivery::Failed);
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
                    if self.channels_cursor.as_ref() == Some(&channel) {
                        self.channels_cursor = None;
                    }
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
            CommandResult::WatchedSaved(result) => {
                if let Err(e) = result {
                    self.error(format!("cannot save the watched list: {e}"));
                }
            }
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

/// The next (or previous) row after `current` in `rows`, staying in range.
fn step<T: Clone + PartialEq>(rows: &[T], current: Option<&T>, up: bool) -> Option<T> {
    if rows.is_empty() {
        return None;
    }
    let i = match current.and_then(|c| rows.iter().position(|r| r == c)) {
        None => 0,
        Some(i) if up => i.saturating_sub(1),
        Some(i) => (i + 1).min(rows.len() - 1),
    };
    rows.get(i).cloned()
}
