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
}

impl SearchState {
    pub fn current_entry(&self) -> Option<usize> {
        self.current.and_then(|i| self.hits.get(i).copied())
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
}

/// The help overlay and how far it is scrolled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HelpOverlay {
    pub scroll: u16,
    /// `/help <command>`: the details of one command instead of the whole help.
    pub topic: Option<&'static CommandSpec>,
}
