//! Every style the messenger draws with, in one place. Panes ask the theme
//! ("the style for an online peer"), they never spell colours themselves.
//! Marks and words carry the meaning too, so the UI reads without colour
//! (and with `NO_COLOR` set, [`Theme::without_colour`] drops every colour).
//!
//! The built-in themes are TOML files in `assets/themes/`, embedded in the
//! binary; a user theme is the same format in `<config dir>/themes/<name>.toml`
//! and may name only the slots it changes (`base = "light"` picks the start).

use std::str::FromStr;
use std::sync::LazyLock;

use ratatui::style::{Color, Modifier, Style};

use crate::client::{ConnectionState, PeerOnlineState};

/// The built-in themes, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../../assets/themes/dark.toml")),
    ("light", include_str!("../../assets/themes/light.toml")),
];

macro_rules! theme_slots {
    ($($(#[$doc:meta])* $slot:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Theme {
            $($(#[$doc])* pub $slot: Style,)*
        }

        impl Theme {
            /// The slot names a theme file may set.
            pub const SLOTS: &[&str] = &[$(stringify!($slot)),*];

            fn slot_mut(&mut self, name: &str) -> Option<&mut Style> {
                match name {
                    $(stringify!($slot) => Some(&mut self.$slot),)*
                    _ => None,
                }
            }

            fn map(mut self, f: impl Fn(Style) -> Style) -> Theme {
                $(self.$slot = f(self.$slot);)*
                self
            }
        }
    };
}

theme_slots! {
    border,
    border_focused,
    title,
    title_focused,
    /// Timestamps, joins/leaves, hints.
    dim,
    own_name,
    peer_name,
    /// "bob is offline: stored …" and other notes inside a conversation.
    system,
    error,
    online,
    unreachable,
    offline,
    unknown,
    /// The cursor row of a focused list.
    selected,
    /// The row of the open conversation in the Peers/Channels panes.
    open,
    unread,
    /// A message that names you, and the mention count in the panes.
    mention,
    /// Muted conversations in the Peers/Channels panes.
    muted,
    /// The "new since you last looked" line.
    marker,
    /// Search hits in the conversation, and the one stepped to.
    search_match,
    search_current,
    /// Attribute rows changed in the last few seconds.
    changed,
    /// Call lines in a conversation ("alice called — accepted").
    call,
    /// The banner of a ringing call, incoming or ours.
    ringing,
    /// File and image lines in a conversation ("▤ report.pdf · 2.6 MB").
    media,
    /// The progress bar of a file being sent or saved.
    transfer,
    status_bar,
    conn_ok,
    conn_busy,
    conn_bad,
    heading,
    key,
}

/// Why a theme could not be used; shown before the messenger starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThemeError {
    #[error("theme {theme}: not valid TOML: {reason}")]
    Toml { theme: String, reason: String },
    #[error("theme {theme}: unknown slot {slot:?}; the slots are: {}", Theme::SLOTS.join(", "))]
    UnknownSlot { theme: String, slot: String },
    #[error("theme {theme}: {slot} = {value:?}: {why}")]
    BadStyle {
        theme: String,
        slot: String,
        value: String,
        why: String,
    },
    #[error("theme {theme}: base {base:?} is not a built-in theme (dark, light)")]
    BadBase { theme: String, base: String },
}

static DARK: LazyLock<Theme> = LazyLock::new(|| {
    Theme::parse("dark", BUILTIN[0].1, &Theme::blank()).unwrap_or_else(|_| Theme::blank())
});

impl Default for Theme {
    /// The built-in dark theme.
    fn default() -> Self {
        *DARK
    }
}

/// Parses a style such as `"black on yellow bold"`.
pub fn parse_style(s: &str) -> Result<Style, String> {
    let mut style = Style::new();
    let mut words = s.split_whitespace();
    while let Some(w) = words.next() {
        let lower = w.to_ascii_lowercase();
        let modifier = match lower.as_str() {
            "bold" => Some(Modifier::BOLD),
            "dim" => Some(Modifier::DIM),
            "italic" => Some(Modifier::ITALIC),
            "underlined" | "underline" => Some(Modifier::UNDERLINED),
            "reversed" | "reverse" => Some(Modifier::REVERSED),
            "crossed_out" | "strikethrough" => Some(Modifier::CROSSED_OUT),
            _ => None,
        };
        if let Some(m) = modifier {
            style = style.add_modifier(m);
        } else if lower == "on" {
            let Some(bg) = words.next() else {
                return Err("\"on\" needs a colour after it".into());
            };
            style = style.bg(colour(bg)?);
        } else {
            style = style.fg(colour(w)?);
        }
    }
    Ok(style)
}

fn colour(s: &str) -> Result<Color, String> {
    Color::from_str(s).map_err(|_| {
        format!("{s:?} is neither a colour (red, lightblue, 0-255, #rrggbb) nor a modifier (bold, italic …)")
    })
}

impl Theme {
    /// Every slot unstyled: the start of a theme file without a base.
    pub fn blank() -> Theme {
        Theme {
            border: Style::new(),
            border_focused: Style::new(),
            title: Style::new(),
            title_focused: Style::new(),
            dim: Style::new(),
            own_name: Style::new(),
            peer_name: Style::new(),
            system: Style::new(),
            error: Style::new(),
            online: Style::new(),
            unreachable: Style::new(),
            offline: Style::new(),
            unknown: Style::new(),
            selected: Style::new(),
            open: Style::new(),
            unread: Style::new(),
            mention: Style::new(),
            muted: Style::new(),
            marker: Style::new(),
            search_match: Style::new(),
            search_current: Style::new(),
            changed: Style::new(),
            call: Style::new(),
            ringing: Style::new(),
            media: Style::new(),
            transfer: Style::new(),
            status_bar: Style::new(),
            conn_ok: Style::new(),
            conn_busy: Style::new(),
            conn_bad: Style::new(),
            heading: Style::new(),
            key: Style::new(),
        }
    }

    /// A built-in theme by name.
    pub fn builtin(name: &str) -> Option<Theme> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        Theme::parse(name, text, &Theme::blank()).ok()
    }

    /// Reads a theme file over `base` (or over the built-in named by its own
    /// `base = "…"` line). `name` is only used in error messages.
    pub fn parse(name: &str, text: &str, base: &Theme) -> Result<Theme, ThemeError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ThemeError::Toml {
            theme: name.into(),
            reason: e.to_string(),
        })?;
        let mut theme = *base;
        if let Some(b) = table.get("base") {
            let b = b.as_str().unwrap_or_default();
            theme = Theme::builtin(b).ok_or_else(|| ThemeError::BadBase {
                theme: name.into(),
                base: b.into(),
            })?;
        }
        for (slot, value) in &table {
            if slot == "base" {
                continue;
            }
            let bad = |why: String| ThemeError::BadStyle {
                theme: name.into(),
                slot: slot.clone(),
                value: value.to_string(),
                why,
            };
            let Some(text) = value.as_str() else {
                return Err(bad("a style is a string, e.g. \"cyan bold\"".into()));
            };
            let style = parse_style(text).map_err(bad)?;
            let Some(target) = theme.slot_mut(slot) else {
                return Err(ThemeError::UnknownSlot {
                    theme: name.into(),
                    slot: slot.clone(),
                });
            };
            *target = style;
        }
        Ok(theme)
    }

    /// The same theme with every colour removed (modifiers stay): for `NO_COLOR`.
    pub fn without_colour(self) -> Theme {
        self.map(|s| Style {
            fg: None,
            bg: None,
            ..s
        })
    }

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

/// The mark in front of a message that mentions you.
pub const MENTION_MARK: &str = "» ";
/// The mark of a muted conversation in the panes.
pub const MUTED_MARK: char = '⊘';
/// Marks call lines and the ringing banner: a telephone, one column wide
/// in every terminal (unlike the emoji telephone).
pub const CALL_MARK: char = '☎';
/// Marks a file's line (a page with lines), one column wide.
pub const FILE_MARK: char = '▤';
/// Marks a picture's line, one column wide.
pub const IMAGE_MARK: char = '▨';

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_themes_parse_and_set_every_slot() {
        for (name, text) in BUILTIN {
            let table: toml::Table = toml::from_str(text).unwrap();
            for slot in Theme::SLOTS {
                assert!(table.contains_key(*slot), "{name} lacks {slot}");
            }
            Theme::parse(name, text, &Theme::blank()).unwrap();
        }
        assert_eq!(Theme::default().online.fg, Some(Color::Green));
        assert_ne!(Theme::builtin("light"), Theme::builtin("dark"));
    }

    #[test]
    fn styles_parse_and_errors_name_the_problem() {
        assert_eq!(
            parse_style("black on yellow bold").unwrap(),
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            parse_style("#ff8800").unwrap().fg,
            Some(Color::Rgb(255, 136, 0))
        );
        assert_eq!(parse_style("130").unwrap().fg, Some(Color::Indexed(130)));
        let e = Theme::parse("mine", "online = \"grean\"", &Theme::default()).unwrap_err();
        assert!(e.to_string().contains("grean"), "{e}");
        let e = Theme::parse("mine", "onlin = \"green\"", &Theme::default()).unwrap_err();
        assert!(e.to_string().contains("onlin"), "{e}");
        let t = Theme::parse(
            "mine",
            "base = \"light\"\nonline = \"red\"",
            &Theme::blank(),
        )
        .unwrap();
        assert_eq!(t.online.fg, Some(Color::Red));
        assert_eq!(t.own_name, Theme::builtin("light").unwrap().own_name);
    }

    #[test]
    fn no_colour_keeps_modifiers_only() {
        let t = Theme::default().without_colour();
        assert_eq!(t.conn_ok.fg, None);
        assert_eq!(t.conn_ok.bg, None);
        assert!(t.conn_ok.add_modifier.contains(Modifier::BOLD));
        assert!(t.selected.add_modifier.contains(Modifier::REVERSED));
    }
}
