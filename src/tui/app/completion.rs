//! Tab completion of names and commands, and Up/Down through the lines
//! sent from a conversation.

use std::collections::BTreeSet;

use super::*;
use crate::client::Uid;
use crate::tui::commands::{self};
use crate::tui::conversation::{ConvId, Conversation};
use crate::tui::input::InputLine;

/// Tab completion in progress: pressing Tab again cycles through `candidates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Completion {
    /// Char index where the completed word starts.
    pub(super) start: usize,
    /// The input before completing, to cycle from.
    pub(super) original: String,
    pub(super) candidates: Vec<String>,
    pub(super) index: usize,
}

/// Input history navigation in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HistoryNav {
    /// Index into the conversation's history of the line shown.
    pub(super) pos: usize,
    /// What was typed before Up was pressed.
    pub(super) draft: String,
}

impl App {
    // --------------------------------------------- completion, history

    /// Every name Tab can complete to in a plain message: peers we know,
    /// members of joined channels; not ourselves.
    pub(super) fn known_peers(&self) -> BTreeSet<Uid> {
        let mut all: BTreeSet<Uid> = self.peer_rows().into_iter().collect();
        for info in self.channels.values() {
            all.extend(info.members.iter().cloned());
        }
        if let Some(me) = &self.me {
            all.remove(me);
        }
        all
    }

    /// Completes the word before the cursor; pressed again, the next candidate.
    pub(super) fn complete(&mut self) {
        if let Some(c) = &mut self.completion {
            c.index = (c.index + 1) % c.candidates.len();
            let (start, original, pick) =
                (c.start, c.original.clone(), c.candidates[c.index].clone());
            self.apply_completion(start, &original, &pick);
            return;
        }
        let text = self.input.text().to_string();
        let chars: Vec<char> = text.chars().collect();
        let cursor = self.input.cursor();
        let mut start = cursor;
        while start > 0 && !chars[start - 1].is_whitespace() {
            start -= 1;
        }
        let word: String = chars[start..cursor].iter().collect();
        let before: String = chars[..start].iter().collect();
        let first_word = before.trim().is_empty();
        let command = before
            .split_whitespace()
            .next()
            .filter(|w| w.starts_with('/'));
        let quote = |s: String| {
            if s.contains(char::is_whitespace) {
                format!("\"{s}\"")
            } else {
                s
            }
        };
        let lower = word.to_lowercase();
        let matches = |name: &str| name.to_lowercase().starts_with(&lower);
        let channels = |prefix: &str| -> Vec<String> {
            self.channels
                .keys()
                .map(|c| format!("{prefix}{c}"))
                .filter(|c| matches(c))
                .collect()
        };
        let peers = || -> Vec<String> {
            self.known_peers()
                .into_iter()
                .map(|p| p.to_string())
                .filter(|p| matches(p) || matches(&format!("@{p}")))
                .collect()
        };
        let in_channel = matches!(self.selected, Some(ConvId::Channel(_)));
        let candidates: Vec<String> = if first_word && word.starts_with('/') {
            commands::COMMANDS
                .iter()
                .map(|c| format!("/{} ", c.name))
                .filter(|c| matches(c))
                .collect()
        } else if word.starts_with('#') {
            channels("#").into_iter().map(|c| c + " ").collect()
        } else if matches!(
            command,
            Some("/join" | "/leave" | "/cattr" | "/mute" | "/unmute")
        ) {
            let mut c = channels("");
            if matches!(command, Some("/mute" | "/unmute")) {
                c.extend(peers());
            }
            c.into_iter().map(|c| quote(c) + " ").collect()
        } else if command.is_some() {
            peers().into_iter().map(|p| quote(p) + " ").collect()
        } else {
            // A name at the start of a channel message addresses someone: "bob: ".
            let suffix = if first_word && in_channel { ": " } else { " " };
            let at = if word.starts_with('@') { "@" } else { "" };
            peers()
                .into_iter()
                .map(|p| format!("{at}{p}{suffix}"))
                .collect()
        };
        if candidates.is_empty() {
            self.note(format!("nothing to complete for {word:?}"));
            return;
        }
        let pick = candidates[0].clone();
        // Keep the text after the cursor; complete only what is before it.
        let original: String = chars[..start]
            .iter()
            .chain(chars[cursor..].iter())
            .collect();
        self.apply_completion(start, &original, &pick);
        if candidates.len() > 1 {
            self.note(format!(
                "{} matches: {}",
                candidates.len(),
                join_names(candidates.iter().take(8).map(|c| c.trim_end()))
            ));
        }
        self.completion = Some(Completion {
            start,
            original,
            candidates,
            index: 0,
        });
    }

    pub(super) fn apply_completion(&mut self, start: usize, original: &str, pick: &str) {
        let mut input = InputLine::with_text(original);
        input.home();
        for _ in 0..start {
            input.right();
        }
        input.replace_range(start, start, pick);
        self.input = input;
    }

    /// The history of the open conversation (or of the no-conversation input).
    pub(super) fn history_of_selected(&mut self) -> &mut Conversation {
        match &self.selected {
            Some(id) => self.conversations.entry(id.clone()).or_default(),
            None => &mut self.global_history,
        }
    }

    /// Up/Down in the input: move between its rows first, then through the
    /// lines sent from this conversation.
    pub(super) fn recall(&mut self, older: bool) {
        let width = usize::from(self.layout().input.width.saturating_sub(2)).max(1);
        if self.input.move_row(width, older) {
            return;
        }
        let current = self.input.text().to_string();
        let nav = self.history.take();
        let history = self.history_of_selected().history.clone();
        let next = match (nav, older) {
            (None, true) => history.len().checked_sub(1).map(|pos| HistoryNav {
                pos,
                draft: current,
            }),
            (None, false) => None,
            (Some(n), true) => Some(HistoryNav {
                pos: n.pos.saturating_sub(1),
                ..n
            }),
            (Some(n), false) if n.pos + 1 < history.len() => Some(HistoryNav {
                pos: n.pos + 1,
                ..n
            }),
            (Some(n), false) => {
                // Past the newest: back to what was being typed.
                self.input = InputLine::with_text(n.draft);
                None
            }
        };
        if let Some(n) = &next
            && let Some(line) = history.get(n.pos)
        {
            self.input = InputLine::with_text(line.clone());
        }
        self.history = next;
    }
}
