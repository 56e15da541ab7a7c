//! Searching the open conversation: typed live, stepped with n/N, Esc
//! goes back to where the view was.

use super::*;
use crate::tui::input::InputLine;
use crate::tui::keymap::{Action, Context};

impl App {
    // ------------------------------------------------------------ search

    pub(super) fn start_search(&mut self, query: String) {
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
            ..SearchState::default()
        });
        self.run_search();
    }

    /// Finds the query's hits and shows the newest one (as you type).
    pub(super) fn run_search(&mut self) {
        let (width, page) = (self.text_width(), self.page_height());
        let history = self.history_readable();
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
        // The local history is asked too (by `after_update`), for the
        // matches that are not loaded.
        search.stored.clear();
        search.asked = None;
        search.fetching_hit = false;
        search.store_pending =
            history && conv.stored.next_page().is_some() && !search.query.is_empty();
        match search.current_entry() {
            Some(e) => conv.show_entry(e, width, page),
            None => conv.scroll = search.origin,
        }
    }

    /// Steps to the next older (or newer) hit.
    pub(super) fn step_search(&mut self, older: bool) {
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
        let next = match search.current {
            Some(i) if older => i.checked_sub(1),
            Some(i) => (i + 1 < n).then_some(i + 1),
            None => n.checked_sub(1),
        };
        let Some(next) = next else {
            if older && !search.stored.is_empty() {
                // The next older match is in the local history: read down
                // to it (`after_update` asks, the page steps to it).
                search.fetching_hit = true;
                return;
            }
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

    pub(super) fn cancel_search(&mut self) {
        if let Some(search) = self.search.take()
            && let Some(conv) = self
                .selected
                .as_ref()
                .and_then(|s| self.conversations.get_mut(s))
        {
            conv.scroll = search.origin;
        }
    }
}
