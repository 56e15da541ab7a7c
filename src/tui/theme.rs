//! Every style the messenger draws with, in one place. Panes ask the theme
//! ("the style for an online peer"), they never spell colours themselves.
//! Marks and words carry the meaning too, so the UI reads without colour.

use ratatui::style::{Color, Modifier, Style};

use crate::client::{ConnectionState, PeerOnlineState};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub border: Style,
    pub border_focused: Style,
    pub title: Style,
    pub title_focused: Style,
    /// Timestamps, joins/leaves, hints.
    pub dim: Style,
    pub own_name: Style,
    pub peer_name: Style,
    /// "bob is offline: stored …" and other notes inside a conversation.
    pub system: Style,
    pub error: Style,
    pub online: Style,
    pub unreachable: Style,
    pub offline: Style,
    pub unknown: Style,
    /// The cursor row of a focused list.
    pub selected: Style,
    /// The row of the open conversation in the Peers/Channels panes.
    pub open: Style,
    pub unread: Style,
    /// Attribute rows changed in the last few seconds.
    pub changed: Style,
    pub status_bar: Style,
    pub conn_ok: Style,
    pub conn_busy: Style,
    pub conn_bad: Style,
    pub heading: Style,
    pub key: Style,
}

impl Default for Theme {
    fn default() -> Self {
        let fg = |c| Style::new().fg(c);
        let bold = Modifier::BOLD;
        Theme {
            border: fg(Color::DarkGray),
            border_focused: fg(Color::Cyan),
            title: Style::new(),
            title_focused: fg(Color::Cyan).add_modifier(bold),
            dim: fg(Color::DarkGray),
            own_name: fg(Color::Cyan).add_modifier(bold),
            peer_name: fg(Color::Magenta).add_modifier(bold),
            system: fg(Color::Yellow),
            error: fg(Color::Red),
            online: fg(Color::Green),
            unreachable: fg(Color::Yellow),
            offline: fg(Color::DarkGray),
            unknown: Style::new(),
            selected: Style::new().add_modifier(Modifier::REVERSED),
            open: Style::new().add_modifier(bold),
            unread: fg(Color::Yellow).add_modifier(bold),
            changed: fg(Color::Yellow).add_modifier(bold),
            status_bar: Style::new().bg(Color::Black),
            conn_ok: Style::new()
                .fg(Color::Black)
                .bg(Color::Green)
                .add_modifier(bold),
            conn_busy: Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(bold),
            conn_bad: Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(bold),
            heading: fg(Color::Cyan).add_modifier(bold),
            key: fg(Color::Yellow),
        }
    }
}

impl Theme {
    pub fn presence(&self, state: Option<PeerOnlineState>) -> Style {
        match state {
            Some(PeerOnlineState::Online) => self.online,
            Some(PeerOnlineState::Unreachable) => self.unreachable,
            Some(PeerOnlineState::Offline) => self.offline,
            None => self.unknown,
        }
    }

    pub fn connection(&self, state: ConnectionState) -> Style {
        match state {
            ConnectionState::Connected => self.conn_ok,
            ConnectionState::Connecting | ConnectionState::Reconnecting => self.conn_busy,
            ConnectionState::Disconnected | ConnectionState::Aborted => self.conn_bad,
        }
    }
}

/// The presence mark: readable without colour.
pub fn presence_mark(state: Option<PeerOnlineState>) -> char {
    match state {
        Some(PeerOnlineState::Online) => '●',
        Some(PeerOnlineState::Unreachable) => '◐',
        Some(PeerOnlineState::Offline) => '○',
        None => '?',
    }
}
