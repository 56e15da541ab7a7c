//! The small state types the app is made of, and that `render` reads.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::client::{ChannelAttribute, ChannelId, Uid};
use crate::tui::commands::CommandSpec;
use crate::tui::conversation::{ConvId, Scroll};
use crate::tui::input::InputLine;

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
    /// Matches in the local history that are not loaded yet, as row ids,
    /// newest first; they are older than every loaded entry.
    pub stored: Vec<i64>,
    /// The query the local history was last asked about.
    pub asked: Option<String>,
    /// The local history has not answered `asked` yet.
    pub store_pending: bool,
    /// Stepping to the newest of `stored`: its page is being read.
    pub fetching_hit: bool,
}

impl SearchState {
    pub fn current_entry(&self) -> Option<usize> {
        self.current.and_then(|i| self.hits.get(i).copied())
    }

    /// All matches: the loaded ones and those still in the local history.
    pub fn total(&self) -> usize {
        self.hits.len() + self.stored.len()
    }

    /// The number (from the oldest, 1-based) of the match shown.
    pub fn position(&self) -> Option<usize> {
        self.current.map(|i| self.stored.len() + i + 1)
    }

    /// Matches exist, or may (the local history has not answered yet).
    pub fn may_match(&self) -> bool {
        self.total() > 0 || self.store_pending || self.fetching_hit
    }
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

/// Every kind fades: an answer and a note after [`NOTE_TTL_MS`], an error
/// after [`ERROR_TTL_MS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Info,
    Note,
    Error,
}

/// A message of ours in the outbox: typed while the link was down (or
/// refused for that reason), waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub conv: ConvId,
    /// The app's send id: the entry shows `Delivery::Queued(id)`.
    pub id: u64,
    pub text: String,
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
    /// When the attributes shown were read from the server (or pushed to
    /// us with a notification), ms: the pane says how old they are.
    pub attrs_at: Option<u64>,
    /// When they were last asked for, ms: opening a channel again soon
    /// does not ask again (the server allows 10 reads per 5 s).
    pub attrs_asked_at: Option<u64>,
    /// Why the last reading failed, shown under what is still shown.
    pub attrs_error: Option<String>,
}

/// `/members` and `/attrs`: the open channel's Members or Attributes pane
/// drawn large over the screen, for terminals too small for the right
/// column. While it shows, the focus is on that pane (its keys work);
/// it closes when the focus leaves it (Esc, Enter on a member).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Members,
    Attributes,
}

impl Panel {
    pub fn focus(self) -> Focus {
        match self {
            Panel::Members => Focus::Members,
            Panel::Attributes => Focus::Attributes,
        }
    }
}

/// The help overlay and how far it is scrolled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HelpOverlay {
    pub scroll: u16,
    /// `/help <command>`: the details of one command instead of the whole help.
    pub topic: Option<&'static CommandSpec>,
}
