//! When the messenger calls for attention, and how: the terminal bell, and
//! optionally a desktop notification through the terminal (OSC 9 or OSC 777).
//! [`NotifyPolicy`] is resolved from `[notify]` at start-up; `App::update`
//! asks it and emits `Command::Notify`; the event loop writes [`escape`].

use std::collections::BTreeMap;

use super::conversation::ConvId;
use crate::client::{ChannelId, Uid};
use crate::config::NotifyFile;

/// Which messages of a conversation call for attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyLevel {
    All,
    Mentions,
    /// Muted.
    None,
}

impl NotifyLevel {
    fn parse(s: &str) -> Result<NotifyLevel, String> {
        match s {
            "all" => Ok(NotifyLevel::All),
            "mentions" => Ok(NotifyLevel::Mentions),
            "none" => Ok(NotifyLevel::None),
            other => Err(format!("{other:?}: say all, mentions or none")),
        }
    }
}

/// The desktop notification escape the terminal understands, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desktop {
    Off,
    /// `ESC ] 9 ; text BEL` (iTerm2, WezTerm, Windows Terminal, kitty).
    Osc9,
    /// `ESC ] 777 ; notify ; title ; body BEL` (urxvt, foot, VTE-based terminals).
    Osc777,
}

/// The resolved `[notify]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPolicy {
    pub bell: bool,
    pub desktop: Desktop,
    pub peers: NotifyLevel,
    pub channels: NotifyLevel,
    /// Per conversation, from the config file.
    pub overrides: BTreeMap<ConvId, NotifyLevel>,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        NotifyPolicy {
            bell: true,
            desktop: Desktop::Off,
            peers: NotifyLevel::All,
            channels: NotifyLevel::Mentions,
            overrides: BTreeMap::new(),
        }
    }
}

/// One call for attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub bell: bool,
    pub desktop: Desktop,
    pub title: String,
    pub body: String,
}

/// `bob` is a peer, `#general` a channel, in the config's conversation names.
pub fn conv_from_name(name: &str) -> Result<ConvId, String> {
    match name.strip_prefix('#') {
        Some(c) => ChannelId::new(c)
            .map(ConvId::Channel)
            .map_err(|e| format!("{name:?}: {e}")),
        None => Uid::new(name)
            .map(ConvId::Peer)
            .map_err(|e| format!("{name:?}: {e}")),
    }
}

impl NotifyPolicy {
    pub fn from_file(f: &NotifyFile) -> Result<NotifyPolicy, String> {
        let d = NotifyPolicy::default();
        let level = |v: &Option<String>, dflt| match v {
            Some(s) => NotifyLevel::parse(s),
            None => Ok(dflt),
        };
        let desktop = match f.desktop.as_deref() {
            None | Some("off") => Desktop::Off,
            Some("osc9") => Desktop::Osc9,
            Some("osc777") => Desktop::Osc777,
            Some(other) => {
                return Err(format!(
                    "notify.desktop = {other:?}: say off, osc9 or osc777"
                ));
            }
        };
        let mut overrides = BTreeMap::new();
        for (name, v) in f.conversations.iter().flatten() {
            let id = conv_from_name(name).map_err(|e| format!("notify.conversations: {e}"))?;
            let l =
                NotifyLevel::parse(v).map_err(|e| format!("notify.conversations.{name}: {e}"))?;
            overrides.insert(id, l);
        }
        Ok(NotifyPolicy {
            bell: f.bell.unwrap_or(d.bell),
            desktop,
            peers: level(&f.peers, d.peers).map_err(|e| format!("notify.peers: {e}"))?,
            channels: level(&f.channels, d.channels)
                .map_err(|e| format!("notify.channels: {e}"))?,
            overrides,
        })
    }

    /// The level for a conversation before `/mute`.
    pub fn level(&self, id: &ConvId) -> NotifyLevel {
        self.overrides.get(id).copied().unwrap_or(match id {
            ConvId::Peer(_) => self.peers,
            ConvId::Channel(_) => self.channels,
        })
    }
}

/// Terminal text without anything that could end the escape early.
fn clean(s: &str, max_chars: usize) -> String {
    s.chars()
        .map(|c| if c.is_control() || c == ';' { ' ' } else { c })
        .take(max_chars)
        .collect()
}

/// The bytes to write to the terminal for `n`.
pub fn escape(n: &Notification) -> Vec<u8> {
    let mut out = Vec::new();
    match n.desktop {
        Desktop::Off => {}
        Desktop::Osc9 => {
            let text = clean(&format!("{}: {}", n.title, n.body), 200);
            out.extend_from_slice(format!("\x1b]9;{text}\x07").as_bytes());
        }
        Desktop::Osc777 => {
            let (t, b) = (clean(&n.title, 80), clean(&n.body, 200));
            out.extend_from_slice(format!("\x1b]777;notify;{t};{b}\x07").as_bytes());
        }
    }
    if n.bell {
        out.push(0x07);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_from_the_file_and_escapes() {
        let f = NotifyFile {
            bell: Some(false),
            desktop: Some("osc777".into()),
            peers: None,
            channels: Some("all".into()),
            conversations: Some(BTreeMap::from([("#random".into(), "none".into())])),
        };
        let p = NotifyPolicy::from_file(&f).unwrap();
        assert!(!p.bell);
        assert_eq!(
            p.level(&conv_from_name("#random").unwrap()),
            NotifyLevel::None
        );
        assert_eq!(p.level(&conv_from_name("#rust").unwrap()), NotifyLevel::All);
        assert_eq!(p.level(&conv_from_name("bob").unwrap()), NotifyLevel::All);
        let bad = NotifyFile {
            channels: Some("loud".into()),
            ..NotifyFile::default()
        };
        assert!(NotifyPolicy::from_file(&bad).unwrap_err().contains("loud"));
        let n = Notification {
            bell: true,
            desktop: Desktop::Osc777,
            title: "bob".into(),
            body: "hi;\x1b]evil".into(),
        };
        assert_eq!(
            escape(&n),
            b"\x1b]777;notify;bob;hi  ]evil\x07\x07".to_vec()
        );
        let n = Notification {
            desktop: Desktop::Osc9,
            bell: false,
            ..n
        };
        assert_eq!(escape(&n), b"\x1b]9;bob: hi  ]evil\x07".to_vec());
    }
}
