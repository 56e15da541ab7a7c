//! Keys and the mouse: what each key does on each screen, pane and overlay.

use crossterm::event::{KeyCode, KeyEvent, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use super::*;
use crate::client::Uid;
use crate::tui::conversation::Conversation;
use crate::tui::input::InputLine;
use crate::tui::keymap::{Action, Context, Key};

impl App {
    // --------------------------------------------------------------- keys

    pub(super) fn on_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
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
                Some(Action::AcceptCall) => self.answer_newest_call(true, out),
                Some(Action::HangUp) => self.hang_up(out),
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
        if self.pending_delete.is_some() && self.confirm_delete(&key, out) {
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
            let attribute_key = matches!(
                a,
                Action::EditAttribute | Action::AddAttribute | Action::DeleteAttribute
            );
            // `r` refreshes in Members and Attributes; F5 anywhere.
            let pane_refresh = *a == Action::Refresh && pressed.is_plain_char();
            !(attribute_key && self.focus != Focus::Attributes
                || pane_refresh && !matches!(self.focus, Focus::Members | Focus::Attributes))
        });
        if action != Some(Action::Complete) {
            self.completion = None;
        }
        if !matches!(action, Some(Action::HistoryPrev | Action::HistoryNext)) {
            self.history = None;
        }
        match action {
            // In the input a printable character is always text, even one
            // bound to something (a message may start with `?` or `/`).
            Some(_) if context == Context::Input && pressed.is_plain_char() => {
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
    pub(super) fn on_search_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
        let Some(search) = &mut self.search else {
            return;
        };
        match self.keymap.action(Context::Search, &key) {
            Some(Action::Quit) => self.quit(out),
            Some(Action::AcceptCall) => self.answer_newest_call(true, out),
            Some(Action::HangUp) => self.hang_up(out),
            Some(Action::Back) => self.cancel_search(),
            Some(Action::Submit) => {
                search.editing = false;
                if !search.may_match() {
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

    pub(super) fn on_login_key(&mut self, key: KeyEvent, out: &mut Vec<Command>) {
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

    pub(super) fn start_login(&mut self, uid: Uid, out: &mut Vec<Command>) {
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

    pub(super) fn quit(&mut self, out: &mut Vec<Command>) {
        // What still waits in the outbox was never sent: the local history
        // says so, rather than showing it as sent at the next start.
        self.fail_outbox(out);
        self.quitting = true;
        out.push(Command::Quit);
    }

    pub(super) fn on_action(&mut self, action: Action, out: &mut Vec<Command>) {
        match action {
            Action::Quit => self.quit(out),
            Action::Help => {
                self.help = Some(HelpOverlay::default());
            }
            Action::Back => {
                if self.search.is_some() {
                    self.search = None;
                } else if self.focus == Focus::Input && self.attr_edit.is_some() {
                    self.cancel_attribute_edit();
                } else if self.focus == Focus::Input
                    && self.input.is_empty()
                    && self.cancel_newest_transfer(out)
                {
                    // Esc in an empty input line stops the newest file
                    // transfer of the open conversation (a typed line is
                    // never at risk: with text, Esc does nothing to it).
                } else {
                    self.focus = Focus::Input;
                }
            }
            Action::RetryFailed => self.retry_failed(out),
            Action::AcceptCall => self.answer_newest_call(true, out),
            Action::HangUp => self.hang_up(out),
            Action::Redraw => out.push(Command::Redraw),
            Action::ToggleMouse => {
                self.mouse_capture = !self.mouse_capture;
                out.push(Command::SetMouseCapture(self.mouse_capture));
                let key = self.global_key(Action::ToggleMouse);
                if self.mouse_capture {
                    self.info(format!(
                        "mouse capture on: the wheel scrolls, a click focuses ({key} turns it off)"
                    ));
                } else {
                    self.info(format!(
                        "mouse capture off: the terminal selects and copies text ({key} turns it back on)"
                    ));
                }
            }
            Action::FocusNext | Action::FocusPrev if self.panel.is_some() => {
                // Tab switches between /members and /attrs.
                let other = match self.panel {
                    Some(Panel::Members) => Panel::Attributes,
                    _ => Panel::Members,
                };
                if let Err(e) = self.open_panel(other) {
                    self.note(e);
                }
            }
            Action::FocusNext | Action::FocusPrev => self.cycle_focus(action == Action::FocusNext),
            Action::PageUp | Action::PageDown if self.panel.is_some() => {
                let up = action == Action::PageUp;
                for _ in 0..self.page_height().saturating_sub(1).max(1) {
                    self.step_list(up);
                }
            }
            Action::PageUp => self.scroll(|c, w, h| c.scroll_up(h.saturating_sub(1).max(1), w, h)),
            Action::PageDown => {
                self.scroll(|c, w, h| c.scroll_down(h.saturating_sub(1).max(1), w, h))
            }
            Action::Refresh => self.refresh(out),
            Action::ToggleSidePanes => self.toggle_side_panes(),
            Action::ScrollTop => self.scroll(|c, w, h| {
                c.to_top(w, h);
                // The oldest line may still be in the local history.
                c.to_oldest = true;
            }),
            Action::ScrollBottom => self.scroll(|c, _, _| c.to_bottom()),
            Action::NextUnread => self.next_unread(out),
            Action::NextConversation | Action::PrevConversation => {
                self.step_conversation(action == Action::NextConversation, out)
            }
            Action::Search => self.start_search(String::new()),
            Action::SearchOlder => self.step_search(true),
            Action::SearchNewer => self.step_search(false),
            Action::Up | Action::Down => self.step_list(action == Action::Up),
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
                            "delete {key:?} from {place}? y or Enter deletes, any other key keeps it"
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

    /// Up / Down: the next row of the focused list, or a line of the conversation.
    pub(super) fn step_list(&mut self, up: bool) {
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

    pub(super) fn cycle_focus(&mut self, forward: bool) {
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
    pub(super) fn scroll(&mut self, f: impl FnOnce(&mut Conversation, usize, usize)) {
        let (width, page) = (self.text_width(), self.page_height());
        if let Some(conv) = self
            .selected
            .as_ref()
            .and_then(|s| self.conversations.get_mut(s))
        {
            conv.to_oldest = false;
            f(conv, width, page);
        }
    }

    pub(super) fn on_mouse(&mut self, m: MouseEvent) {
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
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown if self.panel.is_some() => {
                for _ in 0..WHEEL_LINES {
                    self.step_list(m.kind == MouseEventKind::ScrollUp);
                }
            }
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
}

/// Applies an editing action to an input line.
pub(super) fn edit(input: &mut InputLine, action: Action) {
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
