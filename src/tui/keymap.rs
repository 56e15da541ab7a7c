//! Keys become actions here, through one table ([`DEFAULTS`], possibly
//! rebound by the `[keys.*]` tables of `client.toml` into a [`Keymap`]) that
//! the key handler and the help overlay both read, so the help can never drift
//! from what the keys do.
//!
//! Keys are written as crokey parses them: `ctrl-f`, `alt-enter`, `shift-tab`,
//! `pageup`, `f1`, `?`, `N`.

use std::collections::HashMap;
use std::fmt;

use crokey::KeyCombination;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::config::KeyBindingsFile;

/// What a key asks for; `App::update` turns actions into state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    /// Close the overlay or search, or go back to the input line.
    Back,
    FocusNext,
    FocusPrev,
    PageUp,
    PageDown,
    /// Scroll to the oldest / newest line of the conversation.
    ScrollTop,
    ScrollBottom,
    /// Open the next conversation with unread messages (mentions first).
    NextUnread,
    NextConversation,
    PrevConversation,
    /// Start searching the open conversation.
    Search,
    /// Step to the next older / newer search hit.
    SearchOlder,
    SearchNewer,
    /// Select the previous / next row; in the conversation: scroll a line.
    Up,
    Down,
    /// Open the selected peer, channel or member (in Attributes: edit).
    Open,
    /// In the Attributes pane: edit the selected attribute in the input line.
    EditAttribute,
    /// In the Attributes pane: add an attribute (a command in the input line).
    AddAttribute,
    /// In the Attributes pane: delete the selected attribute (asks first).
    DeleteAttribute,
    /// Read the open conversation's members and attributes again.
    Refresh,
    /// Show or hide the side panes (Peers, Channels, Members, Attributes).
    ToggleSidePanes,
    /// Send the input (or run it as a command; on the login screen: log in;
    /// in a search: keep the hit).
    Submit,
    /// A new line inside the message being written.
    Newline,
    Complete,
    /// Up / Down in the input: move between its lines, then through history.
    HistoryPrev,
    HistoryNext,
    Left,
    Right,
    WordLeft,
    WordRight,
    Home,
    End,
    Backspace,
    Delete,
    DeleteWord,
    ClearLine,
    /// Send again the messages of the open conversation that failed.
    RetryFailed,
    /// Clear and redraw the whole screen (ghost glyphs of wide characters).
    Redraw,
    /// Switch mouse capture off (the terminal selects text) or back on.
    ToggleMouse,
    /// Accept the incoming call in the banner (the newest that rings).
    AcceptCall,
    /// Refuse the incoming call in the banner; with none ringing, hang up
    /// our own newest ringing call.
    HangUp,
}

/// Where a binding applies. The handler looks in the specific context first,
/// then in the ones it falls back to (see [`Keymap::action`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    Global,
    /// Peers, Channels, Members and Attributes panes.
    List,
    /// The conversation pane, when focused (Tab to it, or click it).
    Conversation,
    /// The message input (and the login field).
    Input,
    /// Typing a search.
    Search,
    /// The login screen, before the input keys.
    Login,
    /// The help overlay.
    Overlay,
}

impl Context {
    pub const ALL: [Context; 7] = [
        Context::Global,
        Context::List,
        Context::Conversation,
        Context::Input,
        Context::Search,
        Context::Login,
        Context::Overlay,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Context::Global => {
                "Everywhere (Tab order: Peers, Channels, conversation, input, Members, Attributes)"
            }
            Context::List => {
                "In a list (Peers, Channels, Members, Attributes, and /members, /attrs)"
            }
            Context::Conversation => "In the conversation pane (Tab to it)",
            Context::Input => "In the input",
            Context::Search => "While typing a search",
            Context::Login => "On the login screen",
            Context::Overlay => "In this help",
        }
    }

    /// The table name in `client.toml`: `[keys.<name>]`.
    pub fn config_name(self) -> &'static str {
        match self {
            Context::Global => "global",
            Context::List => "list",
            Context::Conversation => "conversation",
            Context::Input => "input",
            Context::Search => "search",
            Context::Login => "login",
            Context::Overlay => "help",
        }
    }
}

/// One row of the built-in keymap.
#[derive(Debug, Clone, Copy)]
pub struct DefaultBinding {
    pub context: Context,
    /// The name in `[keys.<context>]`.
    pub name: &'static str,
    pub action: Action,
    pub keys: &'static [&'static str],
    pub description: &'static str,
}

const fn bind(
    context: Context,
    name: &'static str,
    action: Action,
    keys: &'static [&'static str],
    description: &'static str,
) -> DefaultBinding {
    DefaultBinding {
        context,
        name,
        action,
        keys,
        description,
    }
}

use Action as A;
use Context as C;

/// Every key binding, grouped by context in the order the help shows them.
pub const DEFAULTS: &[DefaultBinding] = &[
    bind(C::Global, "quit", A::Quit, &["ctrl-c"], "quit (logs out)"),
    bind(C::Global, "help", A::Help, &["f1"], "this help"),
    bind(
        C::Global,
        "focus_next",
        A::FocusNext,
        &["tab"],
        "focus the next pane",
    ),
    bind(
        C::Global,
        "focus_prev",
        A::FocusPrev,
        &["shift-tab"],
        "focus the previous pane",
    ),
    bind(
        C::Global,
        "page_up",
        A::PageUp,
        &["pageup"],
        "scroll the conversation up a page",
    ),
    bind(
        C::Global,
        "page_down",
        A::PageDown,
        &["pagedown"],
        "scroll the conversation down a page",
    ),
    bind(
        C::Global,
        "scroll_top",
        A::ScrollTop,
        &["ctrl-home"],
        "to the oldest line",
    ),
    bind(
        C::Global,
        "scroll_bottom",
        A::ScrollBottom,
        &["ctrl-end"],
        "to the newest line",
    ),
    bind(
        C::Global,
        "next_unread",
        A::NextUnread,
        &["alt-a"],
        "open the next conversation with unread messages (mentions first)",
    ),
    bind(
        C::Global,
        "next_conversation",
        A::NextConversation,
        &["alt-down"],
        "open the next conversation",
    ),
    bind(
        C::Global,
        "prev_conversation",
        A::PrevConversation,
        &["alt-up"],
        "open the previous conversation",
    ),
    bind(
        C::Global,
        "search",
        A::Search,
        &["ctrl-f"],
        "search the open conversation",
    ),
    bind(
        C::Global,
        "back",
        A::Back,
        &["esc"],
        "close the search; back to the input; in an empty input: cancel the newest file transfer here",
    ),
    bind(
        C::Global,
        "retry_failed",
        A::RetryFailed,
        &["ctrl-r"],
        "send the open conversation's unsent messages again",
    ),
    bind(
        C::Global,
        "redraw",
        A::Redraw,
        &["ctrl-l"],
        "redraw the whole screen",
    ),
    bind(
        C::Global,
        "toggle_mouse",
        A::ToggleMouse,
        &["alt-m"],
        "mouse capture on/off (off: the terminal selects and copies text)",
    ),
    bind(
        C::Global,
        "side_panes",
        A::ToggleSidePanes,
        &["f3"],
        "show or hide the side panes (Members and Attributes too on a small screen)",
    ),
    bind(
        C::Global,
        "refresh",
        A::Refresh,
        &["f5"],
        "read the open channel's members and attributes again",
    ),
    bind(
        C::Global,
        "accept_call",
        A::AcceptCall,
        &["ctrl-y"],
        "accept the ringing call (/accept [text] answers with words)",
    ),
    bind(
        C::Global,
        "hang_up",
        A::HangUp,
        &["ctrl-x"],
        "refuse the ringing call; with none ringing, hang up your own call",
    ),
    bind(C::List, "up", A::Up, &["up"], "select the previous item"),
    bind(C::List, "down", A::Down, &["down"], "select the next item"),
    bind(
        C::List,
        "open",
        A::Open,
        &["enter"],
        "open the selected peer, channel or member",
    ),
    bind(
        C::List,
        "edit_attribute",
        A::EditAttribute,
        &["f2"],
        "in Attributes: edit the selected attribute (Enter too)",
    ),
    bind(
        C::List,
        "add_attribute",
        A::AddAttribute,
        &["insert"],
        "in Attributes: add an attribute",
    ),
    bind(
        C::List,
        "delete_attribute",
        A::DeleteAttribute,
        &["delete"],
        "in Attributes: delete the selected attribute (y or Enter confirms)",
    ),
    bind(
        C::Conversation,
        "up",
        A::Up,
        &["up", "k"],
        "scroll up a line",
    ),
    bind(
        C::Conversation,
        "down",
        A::Down,
        &["down", "j"],
        "scroll down a line",
    ),
    bind(
        C::Conversation,
        "top",
        A::ScrollTop,
        &["home", "g"],
        "to the oldest line",
    ),
    bind(
        C::Conversation,
        "bottom",
        A::ScrollBottom,
        &["end", "G"],
        "to the newest line",
    ),
    bind(
        C::Conversation,
        "search_older",
        A::SearchOlder,
        &["n"],
        "the next older search hit",
    ),
    bind(
        C::Conversation,
        "search_newer",
        A::SearchNewer,
        &["N"],
        "the next newer search hit",
    ),
    bind(
        C::Input,
        "submit",
        A::Submit,
        &["enter"],
        "send, or run the line if it starts with /",
    ),
    bind(
        C::Input,
        "newline",
        A::Newline,
        &["alt-enter", "shift-enter"],
        "a new line in the message",
    ),
    bind(
        C::Input,
        "complete",
        A::Complete,
        &["tab"],
        "complete a peer, #channel or /command (again: the next one; empty input: next pane)",
    ),
    bind(
        C::Input,
        "history_prev",
        A::HistoryPrev,
        &["up"],
        "the line above, or earlier input in this conversation",
    ),
    bind(
        C::Input,
        "history_next",
        A::HistoryNext,
        &["down"],
        "the line below, or later input",
    ),
    bind(C::Input, "left", A::Left, &["left"], "cursor left"),
    bind(C::Input, "right", A::Right, &["right"], "cursor right"),
    bind(
        C::Input,
        "word_left",
        A::WordLeft,
        &["ctrl-left", "alt-b"],
        "cursor a word left",
    ),
    bind(
        C::Input,
        "word_right",
        A::WordRight,
        &["ctrl-right", "alt-f"],
        "cursor a word right",
    ),
    bind(
        C::Input,
        "home",
        A::Home,
        &["home", "ctrl-a"],
        "cursor to the start of the line",
    ),
    bind(
        C::Input,
        "end",
        A::End,
        &["end", "ctrl-e"],
        "cursor to the end of the line",
    ),
    bind(
        C::Input,
        "backspace",
        A::Backspace,
        &["backspace"],
        "delete before the cursor",
    ),
    bind(
        C::Input,
        "delete",
        A::Delete,
        &["delete", "ctrl-d"],
        "delete at the cursor",
    ),
    bind(
        C::Input,
        "delete_word",
        A::DeleteWord,
        &["ctrl-w", "alt-backspace"],
        "delete the word before the cursor",
    ),
    bind(
        C::Input,
        "clear",
        A::ClearLine,
        &["ctrl-u"],
        "clear the input",
    ),
    bind(
        C::Search,
        "keep",
        A::Submit,
        &["enter"],
        "keep the hit; then n / N step through the others",
    ),
    bind(
        C::Search,
        "older",
        A::SearchOlder,
        &["up", "ctrl-p"],
        "the next older hit",
    ),
    bind(
        C::Search,
        "newer",
        A::SearchNewer,
        &["down", "ctrl-n"],
        "the next newer hit",
    ),
    bind(
        C::Search,
        "cancel",
        A::Back,
        &["esc"],
        "stop searching, back to where you were",
    ),
    bind(C::Login, "log_in", A::Submit, &["enter"], "log in"),
    bind(C::Login, "quit", A::Quit, &["esc"], "quit"),
    bind(C::Overlay, "up", A::Up, &["up", "k"], "scroll up"),
    bind(C::Overlay, "down", A::Down, &["down", "j"], "scroll down"),
    bind(
        C::Overlay,
        "close",
        A::Back,
        &["esc", "q", "?", "f1"],
        "close",
    ),
];

/// A key with its modifiers, normalized so that a pressed key and a written
/// one compare equal (`?` arrives with or without Shift, BackTab always with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        let mut mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            // Shift is in the character itself ('N', '?'); terminals differ in reporting it.
            KeyCode::Char(c) => {
                if mods.contains(KeyModifiers::SHIFT) {
                    mods.remove(KeyModifiers::SHIFT);
                    KeyCode::Char(c.to_uppercase().next().unwrap_or(c))
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::Tab if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
            other => other,
        };
        if code == KeyCode::BackTab {
            mods.insert(KeyModifiers::SHIFT);
        }
        Key { code, mods }
    }

    pub fn of_event(ev: &KeyEvent) -> Key {
        Key::new(ev.code, ev.modifiers)
    }

    /// Parses `ctrl-f`, `alt-enter`, `?` …
    pub fn parse(s: &str) -> Result<Key, String> {
        // crokey lowercases everything; a lone capital letter means Shift+letter.
        if let [c] = s.chars().collect::<Vec<_>>()[..]
            && c.is_uppercase()
        {
            return Ok(Key::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
        let combo: KeyCombination = crokey::parse(s).map_err(|e| e.to_string())?;
        if !combo.is_ansi_compatible() {
            return Err(format!("{s:?}: one key with modifiers, not a chord"));
        }
        Ok(Key::new(*combo.codes.first(), combo.modifiers))
    }

    /// How the help spells the key.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c)
                if self
                    .mods
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                c.to_ascii_uppercase().to_string()
            }
            KeyCode::Char(c) => c.to_string(),
            KeyCode::F(n) => format!("F{n}"),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            other => format!("{other:?}"),
        };
        let mut out = String::new();
        if self.mods.contains(KeyModifiers::CONTROL) {
            out.push_str("Ctrl-");
        }
        if self.mods.contains(KeyModifiers::ALT) {
            out.push_str("Alt-");
        }
        if self.mods.contains(KeyModifiers::SHIFT) && self.code != KeyCode::BackTab {
            out.push_str("Shift-");
        }
        out + &base
    }

    /// A printable character without Ctrl/Alt: in the input it types itself
    /// unless the input is empty.
    pub fn is_plain_char(&self) -> bool {
        matches!(self.code, KeyCode::Char(_))
            && !self
                .mods
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// One resolved row: the default with the user's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub context: Context,
    pub name: &'static str,
    pub action: Action,
    pub keys: Vec<Key>,
    pub description: &'static str,
}

impl Binding {
    /// "Ctrl-C", "↑ / k" … the keys as the help shows them.
    pub fn keys_label(&self) -> String {
        if self.keys.is_empty() {
            return "(unbound)".into();
        }
        self.keys
            .iter()
            .map(Key::label)
            .collect::<Vec<_>>()
            .join(" / ")
    }
}

/// Why the `[keys]` tables could not be used; every problem, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key bindings in the config: {}", .problems.join("; "))]
pub struct KeymapError {
    pub problems: Vec<String>,
}

/// The keymap in force: [`DEFAULTS`] with the user's rebindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    rows: Vec<Binding>,
    /// (context, key) → row index, for the lookup on every key press.
    index: HashMap<(Context, Key), usize>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::with_overrides(&KeyBindingsFile::new())
            .unwrap_or_else(|e| unreachable!("the built-in keymap is consistent: {e}"))
    }
}

impl Keymap {
    /// The built-in keymap with `file`'s rebindings. Unknown names, keys that
    /// do not parse, and one key bound to two actions of the same context are
    /// all reported (not silently ignored). An empty list unbinds an action.
    pub fn with_overrides(file: &KeyBindingsFile) -> Result<Keymap, KeymapError> {
        let mut problems = Vec::new();
        let mut rows: Vec<Binding> = DEFAULTS
            .iter()
            .map(|d| Binding {
                context: d.context,
                name: d.name,
                action: d.action,
                keys: d.keys.iter().filter_map(|k| Key::parse(k).ok()).collect(),
                description: d.description,
            })
            .collect();
        for (ctx_name, actions) in file {
            let Some(ctx) = Context::ALL
                .into_iter()
                .find(|c| c.config_name() == ctx_name)
            else {
                let names: Vec<_> = Context::ALL.iter().map(|c| c.config_name()).collect();
                problems.push(format!(
                    "[keys.{ctx_name}] is not a context; the contexts are {}",
                    names.join(", ")
                ));
                continue;
            };
            for (name, keys) in actions {
                let Some(row) = rows.iter_mut().find(|r| r.context == ctx && r.name == name) else {
                    let names: Vec<_> = DEFAULTS
                        .iter()
                        .filter(|d| d.context == ctx)
                        .map(|d| d.name)
                        .collect();
                    problems.push(format!(
                        "keys.{ctx_name}.{name} is not an action; in {ctx_name} they are {}",
                        names.join(", ")
                    ));
                    continue;
                };
                let mut parsed = Vec::new();
                for k in keys.keys() {
                    match Key::parse(&k) {
                        Ok(key) => parsed.push(key),
                        Err(e) => problems.push(format!("keys.{ctx_name}.{name}: {e}")),
                    }
                }
                row.keys = parsed;
            }
        }
        let mut index = HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            for key in &row.keys {
                if let Some(&j) = index.get(&(row.context, *key)) {
                    let other: &Binding = &rows[j];
                    if other.name != row.name {
                        problems.push(format!(
                            "{key} is bound to both {ctx}.{} and {ctx}.{}; rebind one of them",
                            other.name,
                            row.name,
                            ctx = row.context.config_name(),
                        ));
                    }
                    continue;
                }
                index.insert((row.context, *key), i);
            }
        }
        if problems.is_empty() {
            Ok(Keymap { rows, index })
        } else {
            Err(KeymapError { problems })
        }
    }

    pub fn rows(&self) -> &[Binding] {
        &self.rows
    }

    fn lookup(&self, context: Context, key: &Key) -> Option<Action> {
        self.index
            .get(&(context, *key))
            .map(|&i| self.rows[i].action)
    }

    /// The action for a key in `context`, falling back as the screen suggests:
    /// the login field and the search field edit like the input; lists, the
    /// conversation and the input fall back to the global keys; on the login
    /// screen only quitting applies (in a search, help too); the help answers
    /// only its own keys and quitting.
    pub fn action(&self, context: Context, ev: &KeyEvent) -> Option<Action> {
        let key = Key::of_event(ev);
        if let Some(a) = self.lookup(context, &key) {
            return Some(a);
        }
        let editing = |a: &Action| {
            matches!(
                a,
                A::Left
                    | A::Right
                    | A::WordLeft
                    | A::WordRight
                    | A::Home
                    | A::End
                    | A::Backspace
                    | A::Delete
                    | A::DeleteWord
                    | A::ClearLine
            )
        };
        match context {
            C::Login | C::Search => {
                if let Some(a) = self.lookup(C::Input, &key).filter(editing) {
                    return Some(a);
                }
                let global = self.lookup(C::Global, &key)?;
                // Quitting always works; help too, except on the login
                // screen; and a ringing call can be answered while searching.
                (global == A::Quit
                    || (matches!(global, A::Help | A::AcceptCall | A::HangUp)
                        && context == C::Search))
                    .then_some(global)
            }
            // A call must be answerable whatever is open.
            C::Overlay => self
                .lookup(C::Global, &key)
                .filter(|a| matches!(a, A::Quit | A::AcceptCall | A::HangUp)),
            C::Global | C::List | C::Conversation | C::Input => self.lookup(C::Global, &key),
        }
    }

    /// The first key of a global action as the help writes it, or
    /// "(unbound)": for hints in the status bar.
    pub fn global_label(&self, action: Action) -> String {
        self.first_key(Context::Global, action)
            .map_or_else(|| "(unbound)".to_string(), |k| k.label())
    }

    /// The first key of an action in a context, for hints ("Ctrl-F search").
    pub fn first_key(&self, context: Context, action: Action) -> Option<Key> {
        self.rows
            .iter()
            .find(|r| r.context == context && r.action == action)
            .and_then(|r| r.keys.first().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyList;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn every_default_key_parses() {
        for d in DEFAULTS {
            for k in d.keys {
                Key::parse(k)
                    .unwrap_or_else(|e| panic!("{}.{}: {e}", d.context.config_name(), d.name));
            }
        }
    }

    #[test]
    fn context_first_then_fallbacks() {
        let km = Keymap::default();
        let enter = ev(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(km.action(C::Input, &enter), Some(A::Submit));
        assert_eq!(km.action(C::List, &enter), Some(A::Open));
        let tab = ev(KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(km.action(C::List, &tab), Some(A::FocusNext));
        assert_eq!(km.action(C::Input, &tab), Some(A::Complete));
        assert_eq!(km.action(C::Login, &tab), None);
        let back = ev(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(km.action(C::Input, &back), Some(A::FocusPrev));
        // '?' and '/' are text everywhere: help is F1, search Ctrl-F.
        let q = ev(KeyCode::Char('?'), KeyModifiers::SHIFT);
        assert_eq!(km.action(C::List, &q), None);
        assert_eq!(km.action(C::Input, &q), None);
        let slash = ev(KeyCode::Char('/'), KeyModifiers::NONE);
        assert_eq!(km.action(C::Conversation, &slash), None);
        let right = ev(KeyCode::Right, KeyModifiers::NONE);
        assert_eq!(km.action(C::Login, &right), Some(A::Right));
        assert_eq!(km.action(C::Search, &right), Some(A::Right));
        let ctrl_c = ev(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(km.action(C::Login, &ctrl_c), Some(A::Quit));
        assert_eq!(km.action(C::Overlay, &ctrl_c), Some(A::Quit));
        assert_eq!(
            km.action(C::Input, &ev(KeyCode::Delete, KeyModifiers::NONE)),
            Some(A::Delete)
        );
        assert_eq!(
            km.action(C::Input, &ev(KeyCode::Char('x'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            km.action(C::Input, &ev(KeyCode::Enter, KeyModifiers::ALT)),
            Some(A::Newline)
        );
        // 'N' arrives as Shift+n or as 'N' with Shift, depending on the terminal.
        for e in [
            ev(KeyCode::Char('N'), KeyModifiers::SHIFT),
            ev(KeyCode::Char('N'), KeyModifiers::NONE),
            ev(KeyCode::Char('n'), KeyModifiers::SHIFT),
        ] {
            assert_eq!(km.action(C::Conversation, &e), Some(A::SearchNewer));
        }
    }

    #[test]
    fn rebinding_replaces_keys_and_problems_are_reported() {
        let mut file = KeyBindingsFile::new();
        file.entry("global".into())
            .or_default()
            .insert("search".into(), KeyList::One("ctrl-g".into()));
        let km = Keymap::with_overrides(&file).unwrap();
        let ctrl = |c| ev(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(km.action(C::Input, &ctrl('g')), Some(A::Search));
        assert_eq!(km.action(C::Input, &ctrl('f')), None);

        let mut file = KeyBindingsFile::new();
        let input = file.entry("input".into()).or_default();
        input.insert("clear".into(), KeyList::Many(vec!["ctrl-w".into()]));
        input.insert("frobnicate".into(), KeyList::One("x".into()));
        input.insert("home".into(), KeyList::One("ctrl-nope".into()));
        file.entry("nowhere".into()).or_default();
        let err = Keymap::with_overrides(&file).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 4, "{text}");
        assert!(
            text.contains("Ctrl-W is bound to both input.delete_word and input.clear"),
            "{text}"
        );
        assert!(text.contains("frobnicate"), "{text}");
        assert!(text.contains("nope"), "{text}");
        assert!(text.contains("[keys.nowhere]"), "{text}");
    }

    #[test]
    fn client_toml_documents_every_default() {
        let doc = crate::config::CLIENT_DEFAULTS;
        for ctx in Context::ALL {
            assert!(
                doc.contains(&format!("[keys.{}]", ctx.config_name())),
                "{ctx:?}"
            );
        }
        for d in DEFAULTS {
            let keys: Vec<String> = d.keys.iter().map(|k| format!("{k:?}")).collect();
            let line = format!("{} = [{}]", d.name, keys.join(", "));
            assert!(doc.contains(&line), "config/client.toml lacks `{line}`");
        }
    }

    #[test]
    fn labels() {
        let km = Keymap::default();
        assert_eq!(km.rows()[0].keys_label(), "Ctrl-C");
        assert_eq!(Key::parse("shift-tab").unwrap().label(), "Shift-Tab");
        assert_eq!(Key::parse("alt-enter").unwrap().label(), "Alt-Enter");
    }
}
