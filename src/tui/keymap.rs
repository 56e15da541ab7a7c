//! Keys become actions here, through one table ([`KEYMAP`]) that the key
//! handler and the help overlay both read, so the help can never drift from
//! what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for; `App::update` turns actions into state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    /// Close the overlay, or go back to the input line.
    Back,
    FocusNext,
    FocusPrev,
    Up,
    Down,
    PageUp,
    PageDown,
    /// Open the selected peer, channel or member.
    Open,
    /// Send the input line (or run it as a command; on the login screen: log in).
    Submit,
    Left,
    Right,
    Home,
    End,
    Backspace,
    Delete,
    DeleteWord,
    ClearLine,
}

/// Where a binding applies. The handler looks in the specific context first,
/// then in [`Context::Global`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Global,
    /// Peers, Channels, Members and Attributes panes.
    List,
    /// The message input line (and the login field).
    Input,
    /// The login screen, before the input-line keys.
    Login,
    /// The help overlay.
    Overlay,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::List => "In a list (Peers, Channels, Members, Attributes)",
            Context::Input => "In the input line",
            Context::Login => "On the login screen",
            Context::Overlay => "In this help",
        }
    }
}

/// A key with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const fn key(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::NONE,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::CONTROL,
    }
}

impl Key {
    /// True when a pressed key is this one. Shift is ignored for characters
    /// (`?` arrives as Shift+`/` on many layouts) and for BackTab.
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        let ignore_shift = matches!(ev.code, KeyCode::Char(_) | KeyCode::BackTab);
        let mut mods = ev.modifiers;
        if ignore_shift {
            mods.remove(KeyModifiers::SHIFT);
        }
        self.code == ev.code && self.mods == mods
    }

    /// How the help overlay spells the key.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) if self.mods.contains(KeyModifiers::CONTROL) => {
                c.to_ascii_uppercase().to_string()
            }
            KeyCode::Char(c) => c.to_string(),
            KeyCode::F(n) => format!("F{n}"),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Backspace => "Backspace".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            other => format!("{other:?}"),
        };
        if self.mods.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{base}")
        } else {
            base
        }
    }
}

/// One row of the keymap.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub context: Context,
    pub keys: &'static [Key],
    pub action: Action,
    pub description: &'static str,
}

const fn bind(
    context: Context,
    keys: &'static [Key],
    action: Action,
    description: &'static str,
) -> Binding {
    Binding {
        context,
        keys,
        action,
        description,
    }
}

use Action as A;
use Context as C;

/// Every key binding, grouped by context in the order the help shows them.
pub const KEYMAP: &[Binding] = &[
    bind(C::Global, &[ctrl('c')], A::Quit, "quit (logs out)"),
    bind(C::Global, &[key(KeyCode::F(1))], A::Help, "this help"),
    bind(
        C::Global,
        &[key(KeyCode::Tab)],
        A::FocusNext,
        "focus the next pane",
    ),
    bind(
        C::Global,
        &[key(KeyCode::BackTab)],
        A::FocusPrev,
        "focus the previous pane",
    ),
    bind(
        C::Global,
        &[key(KeyCode::PageUp)],
        A::PageUp,
        "scroll the conversation up a page",
    ),
    bind(
        C::Global,
        &[key(KeyCode::PageDown)],
        A::PageDown,
        "scroll the conversation down a page",
    ),
    bind(
        C::Global,
        &[key(KeyCode::Esc)],
        A::Back,
        "close the help; back to the input line",
    ),
    bind(
        C::List,
        &[key(KeyCode::Up)],
        A::Up,
        "select the previous item",
    ),
    bind(
        C::List,
        &[key(KeyCode::Down)],
        A::Down,
        "select the next item",
    ),
    bind(
        C::List,
        &[key(KeyCode::Enter)],
        A::Open,
        "open the selected peer, channel or member",
    ),
    bind(C::List, &[key(KeyCode::Char('?'))], A::Help, "this help"),
    bind(
        C::Input,
        &[key(KeyCode::Enter)],
        A::Submit,
        "send the line, or run it if it starts with /",
    ),
    bind(
        C::Input,
        &[key(KeyCode::Char('?'))],
        A::Help,
        "this help (when the line is empty)",
    ),
    bind(
        C::Input,
        &[key(KeyCode::Left), key(KeyCode::Right)],
        A::Left,
        "move the cursor",
    ),
    bind(
        C::Input,
        &[key(KeyCode::Home), ctrl('a')],
        A::Home,
        "cursor to the start",
    ),
    bind(
        C::Input,
        &[key(KeyCode::End), ctrl('e')],
        A::End,
        "cursor to the end",
    ),
    bind(
        C::Input,
        &[key(KeyCode::Backspace), key(KeyCode::Delete)],
        A::Backspace,
        "delete before / at the cursor",
    ),
    bind(
        C::Input,
        &[ctrl('w')],
        A::DeleteWord,
        "delete the word before the cursor",
    ),
    bind(C::Input, &[ctrl('u')], A::ClearLine, "clear the line"),
    bind(
        C::Input,
        &[key(KeyCode::Up), key(KeyCode::Down)],
        A::Up,
        "scroll the conversation a line",
    ),
    bind(C::Login, &[key(KeyCode::Enter)], A::Submit, "log in"),
    bind(C::Login, &[key(KeyCode::Esc)], A::Quit, "quit"),
    bind(
        C::Overlay,
        &[key(KeyCode::Up), key(KeyCode::Down)],
        A::Up,
        "scroll",
    ),
    bind(
        C::Overlay,
        &[
            key(KeyCode::Esc),
            key(KeyCode::Char('q')),
            key(KeyCode::Char('?')),
        ],
        A::Back,
        "close",
    ),
];

/// The action for a key in `context` (falling back to the global bindings).
///
/// A few rows list two keys for two directions (←/→, Backspace/Delete, ↑/↓)
/// to keep the help short; the second key maps to the opposite action here.
pub fn action(context: Context, ev: &KeyEvent) -> Option<Action> {
    let lookup = |ctx: Context| {
        KEYMAP.iter().filter(|b| b.context == ctx).find_map(|b| {
            let i = b.keys.iter().position(|k| k.matches(ev))?;
            Some(if i == 1 { paired(b.action) } else { b.action })
        })
    };
    let mut found = lookup(context);
    if found.is_none() && context == Context::Login {
        // The login field edits like the input line.
        found = lookup(Context::Input).filter(|a| !matches!(a, A::Up | A::Down | A::Help));
    }
    found.or_else(|| {
        let global = lookup(Context::Global)?;
        // On the login screen only quitting applies; there are no panes yet.
        (context != Context::Login || global == A::Quit).then_some(global)
    })
}

/// The second key of a two-key row.
fn paired(action: Action) -> Action {
    match action {
        A::Left => A::Right,
        A::Backspace => A::Delete,
        A::Up => A::Down,
        // Rows whose keys are synonyms (Home/Ctrl-A, Esc/q/?).
        other => other,
    }
}

/// "Ctrl-C", "← / →" … the keys of a binding as the help shows them.
pub fn keys_label(b: &Binding) -> String {
    b.keys
        .iter()
        .map(Key::label)
        .collect::<Vec<_>>()
        .join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn context_first_then_global() {
        let enter = ev(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(action(Context::Input, &enter), Some(A::Submit));
        assert_eq!(action(Context::List, &enter), Some(A::Open));
        let tab = ev(KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(action(Context::List, &tab), Some(A::FocusNext));
        assert_eq!(action(Context::Login, &tab), None);
        let back = ev(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(action(Context::Input, &back), Some(A::FocusPrev));
        let q = ev(KeyCode::Char('?'), KeyModifiers::SHIFT);
        assert_eq!(action(Context::List, &q), Some(A::Help));
        let right = ev(KeyCode::Right, KeyModifiers::NONE);
        assert_eq!(action(Context::Login, &right), Some(A::Right));
        assert_eq!(
            action(
                Context::Login,
                &ev(KeyCode::Char('c'), KeyModifiers::CONTROL)
            ),
            Some(A::Quit)
        );
        assert_eq!(
            action(Context::Input, &ev(KeyCode::Delete, KeyModifiers::NONE)),
            Some(A::Delete)
        );
        assert_eq!(
            action(Context::Input, &ev(KeyCode::Char('x'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn labels() {
        assert_eq!(keys_label(&KEYMAP[0]), "Ctrl-C");
        assert_eq!(key(KeyCode::BackTab).label(), "Shift-Tab");
    }
}
