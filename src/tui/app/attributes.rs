//! The Attributes pane: its rows, and editing, adding and deleting them
//! through commands put in the input line.

use crossterm::event::{KeyCode, KeyEvent};

use super::*;
use crate::tui::commands::AttrWrite;
use crate::tui::conversation::ConvId;
use crate::tui::input::InputLine;

impl App {
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

    pub(super) fn attribute_value(&self, a: &AttrRef) -> Option<String> {
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
    pub(super) fn edit_attribute(&mut self) {
        let Some(a) = self.attrs_list.selected().cloned() else {
            self.error("select an attribute first (Up/Down)");
            return;
        };
        let Some(value) = self.attribute_value(&a) else {
            return;
        };
        let line = match &a {
            AttrRef::Channel(c, k) => format!("/cattr put #{c} {}", quote_pair(k, &value)),
            AttrRef::Mine(k) => format!("/attr put {}", quote_pair(k, &value)),
        };
        self.begin_attribute_edit(line);
        self.info("edit the value and press Enter (Esc cancels)");
    }

    /// Starts an "add" command in the input line, for the open channel if
    /// one is open and the selection is not one of our own attributes.
    pub(super) fn add_attribute(&mut self) {
        let line = match (&self.selected, self.attrs_list.selected()) {
            (_, Some(AttrRef::Mine(_))) | (None | Some(ConvId::Peer(_)), _) => {
                "/attr put ".to_string()
            }
            (Some(ConvId::Channel(c)), _) => format!("/cattr put #{c} "),
        };
        self.begin_attribute_edit(line);
        self.info("type key=value and press Enter (Esc cancels)");
    }

    /// Puts an attribute command in the input line, keeping what was typed
    /// there for Esc to bring back.
    fn begin_attribute_edit(&mut self, line: String) {
        let before = std::mem::replace(&mut self.input, InputLine::with_text(line));
        // A second edit in a row still goes back to what was there first.
        if self.attr_edit.is_none() {
            self.attr_edit = Some(before.text().to_string());
        }
        self.focus = Focus::Input;
    }

    /// Esc during an attribute edit: nothing is sent, the input gets back
    /// what it held before.
    pub(super) fn cancel_attribute_edit(&mut self) {
        if let Some(before) = self.attr_edit.take() {
            self.input = InputLine::with_text(before);
            self.info("attribute edit cancelled; nothing was changed");
        }
    }

    /// The key after "delete …?": `y` or Enter deletes; any other key keeps
    /// the attribute and returns false, so the caller handles that key as
    /// usual (a letter still types into the input).
    pub(super) fn confirm_delete(&mut self, key: &KeyEvent, out: &mut Vec<Command>) -> bool {
        let Some(a) = self.pending_delete.take() else {
            return false;
        };
        let plain = key
            .modifiers
            .difference(crossterm::event::KeyModifiers::SHIFT)
            .is_empty();
        if !(plain && matches!(key.code, KeyCode::Char('y') | KeyCode::Enter)) {
            self.info("kept");
            return false;
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
        true
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
