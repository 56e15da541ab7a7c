//! The list panes: their rows (derived from the state on each call, so
//! they never go stale), which panes show, and opening a conversation.

use std::collections::BTreeSet;

use super::*;
use crate::client::{ChannelId, Uid};
use crate::tui::conversation::ConvId;
use crate::tui::input::InputLine;
use crate::tui::layout::SidePanes;

impl App {
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

    pub(super) fn pane_visible(&self, focus: Focus) -> bool {
        let l = self.layout();
        if self.panel.is_some_and(|p| p.focus() == focus) {
            return true;
        }
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
    pub(super) fn page_height(&self) -> usize {
        usize::from(self.layout().conversation_text().height).max(1)
    }

    pub(super) fn text_width(&self) -> usize {
        usize::from(self.layout().conversation_text().width).max(1)
    }

    pub(super) fn open_from_focus(&mut self, out: &mut Vec<Command>) {
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

    /// The side-panes key: hides the side panes when the right column
    /// shows, else shows them (on a small screen too).
    pub(super) fn toggle_side_panes(&mut self) {
        let key = self
            .keymap
            .first_key(
                crate::tui::keymap::Context::Global,
                crate::tui::keymap::Action::ToggleSidePanes,
            )
            .map_or_else(|| "the side-panes key".to_string(), |k| k.label());
        if self.layout().members.is_some() {
            self.side_panes = SidePanes::Hidden;
            self.note(format!("side panes hidden; {key} shows them"));
        } else {
            self.side_panes = SidePanes::Shown;
            if self.layout().members.is_some() {
                self.note(format!("side panes shown; {key} hides them"));
            } else {
                self.side_panes = SidePanes::Hidden;
                self.note(
                    "the terminal is too small for the side panes; /members and /attrs show them",
                );
            }
        }
        if !self.pane_visible(self.focus) {
            self.focus = Focus::Input;
        }
    }

    /// `/members` and `/attrs`: the pane drawn large over the screen.
    pub(super) fn open_panel(&mut self, panel: Panel) -> Result<(), String> {
        match (&self.selected, panel) {
            (Some(ConvId::Channel(c)), Panel::Members) if !self.channels.contains_key(c) => {
                return Err(format!("you are not in #{c}; /join {c} to see its members"));
            }
            (Some(ConvId::Channel(_)), _) | (_, Panel::Attributes) => {}
            (_, Panel::Members) => {
                return Err("no channel is open: /members shows the open channel's".into());
            }
        }
        self.help = None;
        self.search = None;
        self.panel = Some(panel);
        self.focus = panel.focus();
        match panel {
            Panel::Members if self.members_list.selected().is_none() => {
                self.members_list.select_first(&self.member_rows());
            }
            Panel::Attributes if self.attrs_list.selected().is_none() => {
                self.attrs_list.select_first(&self.attribute_rows());
            }
            _ => {}
        }
        Ok(())
    }

    /// Asks for all of a joined channel's attributes, for the pane.
    pub(super) fn fetch_channel_attributes(&mut self, channel: ChannelId, out: &mut Vec<Command>) {
        let now = self.now();
        if let Some(info) = self.channels.get_mut(&channel) {
            info.attrs_asked_at = Some(now);
        }
        out.push(Command::GetChannelAttributes {
            channel,
            keys: None,
            explicit: false,
        });
    }

    /// The refresh key: reads again what the side panes show of the open
    /// conversation (a channel's members and attributes, a peer's attributes).
    pub(super) fn refresh(&mut self, out: &mut Vec<Command>) {
        match self.selected.clone() {
            Some(ConvId::Channel(c)) if self.channels.contains_key(&c) => {
                self.fetch_channel_attributes(c.clone(), out);
                self.note(format!("reading #{c}'s members and attributes again…"));
                out.push(Command::GetMembers(c));
            }
            Some(ConvId::Channel(c)) => {
                self.note(format!("you are not in #{c}; /join {c} to see its members"));
            }
            Some(ConvId::Peer(p)) => {
                self.note(format!("reading {p}'s attributes again…"));
                out.push(Command::GetUserAttributes {
                    uid: p,
                    keys: None,
                    explicit: false,
                });
            }
            None => self.note("no conversation is open"),
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
            // Someone may have changed them without telling the members:
            // what the pane shows is read again, unless it just was.
            let now = self.now();
            if let Some(info) = self.channels.get(c)
                && info
                    .attrs_asked_at
                    .is_none_or(|at| now.saturating_sub(at) >= ATTRS_FRESH_MS)
            {
                self.fetch_channel_attributes(c.clone(), out);
            }
        }
        self.attrs_list.scroll_to_top();
        self.selected = Some(id);
    }
}
