//! Moving between conversations: the pane order, the next unread one.

use super::*;
use crate::tui::conversation::ConvId;

impl App {
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
    pub(super) fn next_unread(&mut self, out: &mut Vec<Command>) {
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

    pub(super) fn step_conversation(&mut self, forward: bool, out: &mut Vec<Command>) {
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
}
