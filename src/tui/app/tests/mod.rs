//! `App::update` without a terminal: events in, commands and state out.
//! One file per part of the app; the sessions come from `tui::fixtures`.

mod attributes;
mod calls;
mod editing;
mod files;
mod focus;
mod history;
mod live;
mod login;
mod outbox;
mod panels;
mod search;
mod sending;
mod slash;
mod tokens;

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::{AttrRef, Command, CommandResult, Event, Focus, Panel, Screen, StatusKind};
use crate::client::ErrorBody;
use crate::client::{
    ChannelAttribute, ChannelEvent, ClientEvent, ConnectionChangeReason, ConnectionState,
    ErrorKind, LoginInfo, MessageProps, PeerMessageSendResult, PeerOnlineState, RtmError,
    RtmMessage,
};
use crate::tui::commands::AttrWrite;
use crate::tui::conversation::{ConvId, Delivery, EntryKind, Scroll};
pub(super) use crate::tui::fixtures::*;
use crate::tui::{App, ChatOptions, render};

fn server_error(kind: ErrorKind, msg: &str) -> RtmError {
    RtmError::Server(ErrorBody::new(kind, msg))
}

/// The whole screen as text, rows joined by newlines.
fn screen_text(app: &App) -> String {
    screen_rows(app, app.size.0, app.size.1).join("\n")
}

fn status_error(app: &App) -> String {
    match app.status() {
        Some(s) if s.kind == StatusKind::Error => s.text.clone(),
        other => panic!("expected an error in the status bar, got {other:?}"),
    }
}

/// The conversation as drawn on a 160x48 screen: its text rows, trimmed.
fn conversation_text(app: &App) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    terminal.draw(|f| render(app, f)).unwrap();
    let r = app.layout().conversation_text();
    let buf = terminal.backend().buffer();
    (r.y..r.y + r.height)
        .map(|y| {
            (r.x..r.x + r.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect()
}

fn bob_conv(app: &App) -> &crate::tui::conversation::Conversation {
    app.conversation(&ConvId::Peer(uid("bob"))).unwrap()
}

fn notifications(out: &[Command]) -> Vec<&crate::tui::notify::Notification> {
    out.iter()
        .filter_map(|c| match c {
            Command::Notify(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn history_on() -> ChatOptions {
    let mut opts = options(None);
    opts.settings.history = true;
    opts
}

fn stored(from: &str, text: &str, ts: u64) -> crate::tui::conversation::Entry {
    crate::tui::conversation::Entry {
        ts,
        kind: EntryKind::Message {
            from: uid(from),
            text: text.into(),
            offline: false,
            delivery: if from == "alice" {
                Delivery::Sent
            } else {
                Delivery::Received
            },
            mention: false,
            media: None,
        },
    }
}

/// The start-up load of the local history, each conversation complete.
fn history_loaded(convs: Vec<(ConvId, Vec<crate::tui::conversation::Entry>)>) -> Event {
    history_loaded_with_more(convs.into_iter().map(|(c, e)| (c, e, None)).collect())
}

/// The start-up load, each conversation with the row id older pages start
/// before (`None`: it is all loaded).
fn history_loaded_with_more(
    convs: Vec<(ConvId, Vec<crate::tui::conversation::Entry>, Option<i64>)>,
) -> Event {
    use crate::tui::history::{HistoryPage, LoadedConversation};
    Event::CommandResult(CommandResult::HistoryLoaded(Ok(convs
        .into_iter()
        .map(|(conv, entries, older)| LoadedConversation {
            conv,
            page: HistoryPage { entries, older },
        })
        .collect())))
}

fn history_commands(out: &[Command]) -> Vec<&Command> {
    out.iter()
        .filter(|c| matches!(c, Command::OpenHistory(_) | Command::RecordHistory(_)))
        .collect()
}

fn focus_attributes(app: &mut App) {
    for _ in 0..8 {
        if app.focus() == Focus::Attributes {
            return;
        }
        app.update(key(KeyCode::Tab));
    }
    panic!("the Attributes pane never got the focus");
}

fn char_key(c: char) -> Event {
    key(KeyCode::Char(c))
}
