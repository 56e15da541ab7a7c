//! `App::update` without a terminal: events in, commands and state out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::{AttrRef, Command, CommandResult, Event, Focus, Screen, StatusKind};
use crate::client::{
    ChannelAttribute, ChannelEvent, ClientEvent, ConnectionChangeReason, ConnectionState,
    ErrorKind, LoginInfo, MessageProps, PeerMessageSendResult, PeerOnlineState, RtmError,
    RtmMessage,
};
use crate::client::{ChannelId, ErrorBody, Uid};
use crate::config::{ClientSettings, Paths};
use crate::tui::commands::AttrWrite;
use crate::tui::conversation::{ConvId, Delivery, EntryKind, Scroll};
use crate::tui::{App, ChatOptions, render};

const NOW: u64 = 1_700_000_000_000;

fn options(uid: Option<&str>) -> ChatOptions {
    let dir = PathBuf::from("/nonexistent/rtm-test");
    ChatOptions {
        settings: ClientSettings {
            uid: uid.map(str::to_string),
            // Local history off: these states must not touch the disk.
            history: false,
            ..ClientSettings::built_in(Paths {
                config_dir: dir.clone(),
                data_dir: dir.clone(),
                log_dir: dir.join("logs"),
            })
        },
        embedded_server: None,
        log_dir: dir.join("logs"),
    }
}

fn uid(s: &str) -> Uid {
    Uid::new(s).unwrap()
}

fn ch(s: &str) -> ChannelId {
    ChannelId::new(s).unwrap()
}

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

/// Types `text` key by key, then Enter; returns every command produced.
fn type_line(app: &mut App, text: &str) -> Vec<Command> {
    let mut out = Vec::new();
    for c in text.chars() {
        out.extend(app.update(key(KeyCode::Char(c))));
    }
    out.extend(app.update(key(KeyCode::Enter)));
    out
}

fn server_error(kind: ErrorKind, msg: &str) -> RtmError {
    RtmError::Server(ErrorBody::new(kind, msg))
}

/// A logged-in app as `alice` on a 160x48 terminal with a fixed clock.
fn logged_in() -> App {
    logged_in_with(options(None))
}

fn logged_in_with(opts: ChatOptions) -> App {
    let mut app = App::with_login_hint(&opts, Some("alice".into()));
    app.set_clock(|| NOW);
    app.update(Event::Resize(160, 48));
    app.update(Event::CommandResult(CommandResult::LoggedIn {
        uid: uid("alice"),
        result: Ok(LoginInfo {
            uid: uid("alice"),
            server_ts: NOW,
            dev_mode: true,
            token_expires_in_s: None,
        }),
    }));
    app
}

/// Joins `name` with `members` (as the executor would report it).
fn join(app: &mut App, name: &str, members: &[&str]) -> Vec<Command> {
    let mut out = type_line(app, &format!("/join {name}"));
    out.extend(app.update(Event::CommandResult(CommandResult::Joined {
        channel: ch(name),
        result: Ok(members.len() as u32),
    })));
    out.extend(app.update(Event::CommandResult(CommandResult::Members {
        channel: ch(name),
        result: Ok(members.iter().map(|m| uid(m)).collect()),
    })));
    out
}

fn peer_message(from: &str, text: &str, offline: bool) -> Event {
    Event::Rtm(ClientEvent::MessageFromPeer {
        message: RtmMessage::text(text),
        peer_id: uid(from),
        props: MessageProps {
            server_received_ts: NOW - 60_000,
            is_offline_message: offline,
        },
    })
}

fn channel_event(name: &str, event: ChannelEvent) -> Event {
    Event::Rtm(ClientEvent::Channel {
        channel_id: ch(name),
        event,
    })
}

/// The whole screen as text, rows joined by newlines.
fn screen_text(app: &App) -> String {
    let (w, h) = app.size;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| render(app, f)).unwrap();
    let buf = terminal.backend().buffer();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

fn status_error(app: &App) -> String {
    match app.status() {
        Some(s) if s.kind == StatusKind::Error => s.text.clone(),
        other => panic!("expected an error in the status bar, got {other:?}"),
    }
}

// ---------------------------------------------------------------- login

#[test]
fn login_screen_validates_the_uid_and_logs_in_on_enter() {
    let mut app = App::with_login_hint(&options(None), Some("alice".into()));
    assert_eq!(app.init(), vec![Command::LoadWatched, Command::LoadMuted]);
    assert_eq!(app.screen(), Screen::Login);
    // The suggestion is pre-filled; make it invalid.
    app.update(key(KeyCode::Char('*')));
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    let err = app.login.error.clone().unwrap();
    assert!(err.contains("'*'") && err.contains("position 6"), "{err}");
    app.update(key(KeyCode::Backspace));
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Command::Login {
            uid: uid("alice"),
            token: None
        }]
    );
    // A second Enter while the first login is in flight does nothing.
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    app.update(Event::CommandResult(CommandResult::LoggedIn {
        uid: uid("alice"),
        result: Err(RtmError::Connect {
            url: "ws://127.0.0.1:7420".into(),
            reason: "connection refused".into(),
        }),
    }));
    assert_eq!(app.screen(), Screen::Login);
    assert!(
        app.login
            .error
            .clone()
            .unwrap()
            .contains("connection refused")
    );
    // Retry works; Esc quits.
    assert_eq!(app.update(key(KeyCode::Enter)).len(), 1);
    let mut app = App::with_login_hint(&options(None), None);
    assert_eq!(app.update(key(KeyCode::Esc)), vec![Command::Quit]);
    assert!(app.quitting());
}

#[test]
fn configured_uid_logs_in_at_once_and_watched_peers_are_resubscribed() {
    let mut opts = options(Some("alice"));
    opts.settings.token = Some("tok".into());
    let mut app = App::with_login_hint(&opts, None);
    assert_eq!(
        app.init(),
        vec![
            Command::LoadWatched,
            Command::LoadMuted,
            Command::Login {
                uid: uid("alice"),
                token: Some("tok".into())
            }
        ]
    );
    // The file answers before the login: nothing to subscribe yet.
    let out = app.update(Event::CommandResult(CommandResult::WatchedLoaded(Ok(
        vec![uid("bob")],
    ))));
    assert!(out.is_empty());
    let out = app.update(Event::CommandResult(CommandResult::LoggedIn {
        uid: uid("alice"),
        result: Ok(LoginInfo {
            uid: uid("alice"),
            server_ts: NOW,
            dev_mode: false,
            token_expires_in_s: None,
        }),
    }));
    assert_eq!(out, vec![Command::Subscribe(vec![uid("bob")])]);
    assert_eq!(app.screen(), Screen::Main);
    assert_eq!(app.peer_rows(), vec![uid("bob")]);
}

// ------------------------------------------------------------- sending

#[test]
fn typing_and_enter_sends_to_the_open_peer() {
    let mut app = logged_in();
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    let out = type_line(&mut app, "hi bob");
    assert_eq!(
        out,
        vec![Command::SendPeer {
            peer: uid("bob"),
            text: "hi bob".into(),
            id: 1
        }]
    );
    assert_eq!(app.input_text(), "");
    let conv = app.conversation(&ConvId::Peer(uid("bob"))).unwrap();
    assert!(matches!(
        &conv.entries[0].kind,
        EntryKind::Message { from, text, delivery: Delivery::Sending(1), .. }
            if from.as_str() == "alice" && text == "hi bob"
    ));
}

#[test]
fn typing_and_enter_sends_to_the_open_channel() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice", "bob"]);
    assert_eq!(app.selected(), Some(&ConvId::Channel(ch("general"))));
    let out = type_line(&mut app, "hello all");
    assert_eq!(
        out,
        vec![Command::SendChannel {
            channel: ch("general"),
            text: "hello all".into(),
            id: 1
        }]
    );
    // The result stamps the server time; a failure marks the message.
    app.update(Event::CommandResult(CommandResult::ChannelMessageSent {
        channel: ch("general"),
        id: 1,
        result: Err(server_error(ErrorKind::TooOften, "too many messages")),
    }));
    assert!(status_error(&app).contains("too many messages"));
    let conv = app.conversation(&ConvId::Channel(ch("general"))).unwrap();
    assert!(conv.entries.iter().any(|e| matches!(
        e.kind,
        EntryKind::Message {
            delivery: Delivery::Failed,
            ..
        }
    )));
}

#[test]
fn msg_command_opens_the_conversation_and_sends() {
    let mut app = logged_in();
    let out = type_line(&mut app, "/msg bob hello");
    assert!(out.contains(&Command::SendPeer {
        peer: uid("bob"),
        text: "hello".into(),
        id: 1
    }));
    assert_eq!(app.selected(), Some(&ConvId::Peer(uid("bob"))));
    assert_eq!(app.peer_rows(), vec![uid("bob")]);
}

#[test]
fn send_results_to_offline_peers_say_what_happened() {
    let mut app = logged_in();
    type_line(&mut app, "/msg bob one");
    type_line(&mut app, "two");
    let result = |id, cached| {
        Event::CommandResult(CommandResult::PeerMessageSent {
            peer: uid("bob"),
            id,
            result: Ok(PeerMessageSendResult {
                has_peer_received: false,
                cached,
                server_received_ts: NOW,
            }),
        })
    };
    app.update(result(1, true));
    app.update(result(2, false));
    let notes: Vec<String> = app
        .conversation(&ConvId::Peer(uid("bob")))
        .unwrap()
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::System(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        notes,
        vec![
            "bob is offline: stored, will be delivered",
            "bob is offline; message not delivered"
        ]
    );
}

#[test]
fn paste_inserts_without_sending() {
    let mut app = logged_in();
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    assert!(
        app.update(Event::Paste("line one\nline two".into()))
            .is_empty()
    );
    assert_eq!(app.input_text(), "line one\nline two");
    let out = app.update(key(KeyCode::Enter));
    assert!(matches!(&out[..], [Command::SendPeer { text, .. }] if text == "line one\nline two"));
}

// ------------------------------------------------------ slash commands

#[test]
fn slash_commands_parse_to_commands() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice"]);
    let cases: Vec<(&str, Vec<Command>)> = vec![
        ("/join lobby", vec![Command::Join(ch("lobby"))]),
        ("/leave", vec![Command::Leave(ch("general"))]),
        ("/leave #general", vec![Command::Leave(ch("general"))]),
        (
            "/watch bob carol",
            vec![
                Command::Subscribe(vec![uid("bob"), uid("carol")]),
                Command::SaveWatched(vec![uid("bob"), uid("carol")]),
            ],
        ),
        (
            "/unwatch bob",
            vec![
                Command::Unsubscribe(vec![uid("bob")]),
                Command::SaveWatched(vec![uid("carol")]),
            ],
        ),
        (
            "/status bob dave",
            vec![Command::QueryStatus(vec![uid("bob"), uid("dave")])],
        ),
        (
            "/attr put mood=happy",
            vec![Command::UserAttrWrite(AttrWrite::Put(BTreeMap::from([(
                "mood".to_string(),
                "happy".to_string(),
            )])))],
        ),
        (
            "/attr clear",
            vec![Command::UserAttrWrite(AttrWrite::Clear)],
        ),
        (
            "/attr del mood city",
            vec![Command::UserAttrWrite(AttrWrite::Delete(vec![
                "mood".into(),
                "city".into(),
            ]))],
        ),
        (
            "/attr get bob mood",
            vec![Command::GetUserAttributes {
                uid: uid("bob"),
                keys: Some(vec!["mood".into()]),
                explicit: true,
            }],
        ),
        (
            "/cattr set general topic=rust --notify",
            vec![Command::ChannelAttrWrite {
                channel: ch("general"),
                op: AttrWrite::Set(BTreeMap::from([("topic".to_string(), "rust".to_string())])),
                notify: true,
            }],
        ),
        (
            "/cattr clear general",
            vec![Command::ChannelAttrWrite {
                channel: ch("general"),
                op: AttrWrite::Clear,
                notify: false,
            }],
        ),
        (
            "/cattr get general",
            vec![Command::GetChannelAttributes {
                channel: ch("general"),
                keys: None,
                explicit: true,
            }],
        ),
        ("/quit", vec![Command::Quit]),
    ];
    for (line, want) in cases {
        assert_eq!(type_line(&mut app, line), want, "{line}");
        assert_eq!(app.input_text(), "", "{line}");
    }
    assert_eq!(
        app.watched().iter().collect::<Vec<_>>(),
        vec![&uid("carol")]
    );
}

#[test]
fn bad_input_sets_a_status_error_and_emits_nothing() {
    let mut app = logged_in();
    for (line, says) in [
        ("/join a*b", "'*'"),
        ("/msg bob", "text is missing"),
        ("/msg", "say who"),
        ("/frobnicate now", "unknown command /frobnicate"),
        ("/leave", "no channel is open"),
        ("/leave lobby", "not in #lobby"),
        ("/watch", "at least one"),
        ("/attr set x", "not key=value"),
        ("plain text", "no conversation is open"),
    ] {
        app.status = None;
        let out = type_line(&mut app, line);
        assert!(out.is_empty(), "{line}: {out:?}");
        let err = status_error(&app);
        assert!(err.contains(says), "{line}: {err}");
        // The line stays, to be fixed rather than retyped.
        assert_eq!(app.input_text(), line);
        app.update(ctrl('u'));
    }
}

#[test]
fn sdk_errors_show_in_words() {
    let mut app = logged_in();
    app.update(Event::CommandResult(CommandResult::UserAttrWritten {
        op: AttrWrite::Clear,
        result: Err(server_error(
            ErrorKind::SizeOverflow,
            "attributes would be 17000 bytes; the limit is 16384",
        )),
    }));
    assert!(status_error(&app).contains("the limit is 16384"));
}

#[test]
fn help_opens_from_keys_and_commands_and_esc_closes_it() {
    let mut app = logged_in();
    app.update(key(KeyCode::Char('?')));
    assert!(app.help_open());
    app.update(key(KeyCode::Esc));
    assert!(!app.help_open());
    app.update(key(KeyCode::F(1)));
    assert!(app.help_open());
    app.update(key(KeyCode::Esc));
    type_line(&mut app, "/help");
    assert!(app.help_open());
    app.update(key(KeyCode::Esc));
    // With text in the line, '?' is just a character.
    app.update(key(KeyCode::Char('a')));
    app.update(key(KeyCode::Char('?')));
    assert!(!app.help_open());
    assert_eq!(app.input_text(), "a?");
    // F1 is help whatever the line holds.
    app.update(key(KeyCode::F(1)));
    assert!(app.help_open());
    app.update(key(KeyCode::Esc));
    app.update(ctrl('u'));
    type_line(&mut app, "/help join");
    assert_eq!(app.help.unwrap().topic.unwrap().name, "join");
    let screen = screen_text(&app);
    assert!(
        screen.contains("Help: /join") && screen.contains("/join #general"),
        "{screen}"
    );
}

// ------------------------------------------------------------- focus

#[test]
fn tab_and_backtab_cycle_through_visible_panes() {
    let mut app = logged_in();
    assert_eq!(app.focus(), Focus::Input);
    let mut seen = Vec::new();
    for _ in 0..6 {
        app.update(key(KeyCode::Tab));
        seen.push(app.focus());
    }
    assert_eq!(
        seen,
        vec![
            Focus::Members,
            Focus::Attributes,
            Focus::Peers,
            Focus::Channels,
            Focus::Conversation,
            Focus::Input
        ]
    );
    app.update(key(KeyCode::BackTab));
    assert_eq!(app.focus(), Focus::Conversation);
    // At 80 columns the right column is hidden and skipped.
    app.update(Event::Resize(80, 24));
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus(), Focus::Input);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus(), Focus::Peers);
    // Below 60 columns only the conversation and the input remain.
    app.update(Event::Resize(50, 20));
    assert_eq!(app.focus(), Focus::Input);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus(), Focus::Conversation);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus(), Focus::Input);
    // With text in the input, Tab completes instead.
    app.update(key(KeyCode::Char('x')));
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus(), Focus::Input);
}

#[test]
fn enter_in_lists_opens_conversations() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice", "bob"]);
    app.update(peer_message("carol", "hi", false));
    // Members pane: Enter on bob opens a direct conversation.
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus(), Focus::Members);
    app.update(key(KeyCode::Down));
    assert_eq!(app.members_list.selected(), Some(&uid("bob")));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.selected(), Some(&ConvId::Peer(uid("bob"))));
    assert_eq!(app.focus(), Focus::Input);
    // Peers pane: carol (unknown presence) sorts after nothing else; Down reaches her.
    app.update(key(KeyCode::BackTab));
    app.update(key(KeyCode::BackTab));
    app.update(key(KeyCode::BackTab));
    assert_eq!(app.focus(), Focus::Peers);
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Enter));
    assert_eq!(app.selected(), Some(&ConvId::Peer(uid("carol"))));
    assert_eq!(
        app.conversation(&ConvId::Peer(uid("carol")))
            .unwrap()
            .unread,
        0
    );
    // Channels pane (Enter left the focus on the input line).
    app.update(key(KeyCode::BackTab));
    app.update(key(KeyCode::BackTab));
    assert_eq!(app.focus(), Focus::Channels);
    app.update(key(KeyCode::Enter));
    assert_eq!(app.selected(), Some(&ConvId::Channel(ch("general"))));
    // Typing while a list is focused goes to the input line.
    app.update(key(KeyCode::Tab));
    app.update(key(KeyCode::Tab));
    app.update(key(KeyCode::Char('x')));
    assert_eq!((app.focus(), app.input_text()), (Focus::Input, "x"));
}

// --------------------------------------------------------- live state

#[test]
fn with_nothing_open_an_incoming_message_opens_its_conversation_and_follows_the_peer() {
    let mut app = logged_in();
    assert_eq!(app.selected(), None);
    let out = app.update(peer_message("bob", "hello", false));
    assert_eq!(app.selected(), Some(&ConvId::Peer(uid("bob"))));
    assert_eq!(
        app.conversation(&ConvId::Peer(uid("bob"))).unwrap().unread,
        0
    );
    // bob's presence is followed (once), without adding him to the watched list.
    assert!(
        out.contains(&Command::Subscribe(vec![uid("bob")])),
        "{out:?}"
    );
    let again = app.update(peer_message("bob", "still there?", false));
    assert!(
        !again.iter().any(|c| matches!(c, Command::Subscribe(_))),
        "{again:?}"
    );
    assert!(app.watched().is_empty());
}

#[test]
fn incoming_peer_message_creates_a_conversation_with_unread() {
    let mut app = logged_in();
    app.open(ConvId::Peer(uid("carol")), &mut Vec::new());
    app.update(peer_message("bob", "are you there?", false));
    app.update(peer_message("bob", "stored one", true));
    let conv = app.conversation(&ConvId::Peer(uid("bob"))).unwrap();
    assert_eq!(conv.unread, 2);
    assert!(matches!(
        &conv.entries[1].kind,
        EntryKind::Message { offline: true, text, .. } if text == "stored one"
    ));
    assert_eq!(conv.entries[0].ts, NOW - 60_000);
    // Opening it clears the count; messages to the open conversation are not unread.
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    app.update(peer_message("bob", "again", false));
    assert_eq!(
        app.conversation(&ConvId::Peer(uid("bob"))).unwrap().unread,
        0
    );
}

#[test]
fn joining_fetches_members_and_attributes() {
    let mut app = logged_in();
    let out = join(&mut app, "general", &["alice", "bob"]);
    assert_eq!(
        out,
        vec![
            Command::Join(ch("general")),
            Command::GetMembers(ch("general")),
            Command::GetChannelAttributes {
                channel: ch("general"),
                keys: None,
                explicit: false
            },
        ]
    );
    assert_eq!(app.member_rows(), vec![uid("alice"), uid("bob")]);
    assert_eq!(app.channel(&ch("general")).unwrap().member_count, Some(2));
    // A join error is reported and nothing is added.
    type_line(&mut app, "/join full");
    app.update(Event::CommandResult(CommandResult::Joined {
        channel: ch("full"),
        result: Err(server_error(
            ErrorKind::ExceedLimit,
            "you are in 20 channels",
        )),
    }));
    assert!(status_error(&app).contains("cannot join #full: you are in 20 channels"));
    assert_eq!(app.channel_rows(), vec![ch("general")]);
}

#[test]
fn member_events_update_members_and_add_quiet_lines() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice"]);
    app.update(channel_event(
        "general",
        ChannelEvent::MemberJoined(uid("bob")),
    ));
    let info = app.channel(&ch("general")).unwrap();
    assert!(info.members.contains(&uid("bob")));
    assert_eq!(info.member_count, Some(2));
    app.update(channel_event(
        "general",
        ChannelEvent::MemberLeft(uid("bob")),
    ));
    let info = app.channel(&ch("general")).unwrap();
    assert!(!info.members.contains(&uid("bob")));
    assert_eq!(info.member_count, Some(1));
    let quiet: Vec<String> = app
        .conversation(&ConvId::Channel(ch("general")))
        .unwrap()
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Quiet(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        quiet,
        vec!["-- you joined #general", "-- bob joined", "-- bob left"]
    );
    app.update(channel_event(
        "general",
        ChannelEvent::MemberCountUpdated(700),
    ));
    assert_eq!(app.channel(&ch("general")).unwrap().member_count, Some(700));
}

#[test]
fn channel_messages_count_unread_when_elsewhere() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice", "bob"]);
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    app.update(channel_event(
        "general",
        ChannelEvent::ChannelMessage {
            message: RtmMessage::text("hey"),
            member_id: uid("bob"),
            props: MessageProps {
                server_received_ts: NOW,
                is_offline_message: false,
            },
        },
    ));
    assert_eq!(
        app.conversation(&ConvId::Channel(ch("general")))
            .unwrap()
            .unread,
        1
    );
}

#[test]
fn attribute_updates_mark_changed_rows_until_they_expire() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice"]);
    let attr = |k: &str, v: &str| ChannelAttribute {
        key: k.into(),
        value: v.into(),
        last_update_user_id: uid("bob"),
        last_update_ts: NOW,
    };
    app.update(Event::CommandResult(CommandResult::ChannelAttributes {
        channel: ch("general"),
        keys: None,
        explicit: false,
        result: Ok(vec![attr("topic", "rust"), attr("rules", "be nice")]),
    }));
    assert!(app.channel(&ch("general")).unwrap().changed.is_empty());
    app.update(channel_event(
        "general",
        ChannelEvent::AttributesUpdated(vec![attr("topic", "tokio"), attr("rules", "be nice")]),
    ));
    let info = app.channel(&ch("general")).unwrap();
    assert_eq!(info.changed.keys().collect::<Vec<_>>(), vec!["topic"]);
    assert_eq!(info.attributes[1].value, "tokio");
    // Later ticks clear the highlight.
    app.set_clock(|| NOW + 60_000);
    app.take_dirty();
    app.update(Event::Tick);
    assert!(app.take_dirty());
    assert!(app.channel(&ch("general")).unwrap().changed.is_empty());
}

#[test]
fn presence_changes_update_marks_and_note_watched_peers() {
    let mut app = logged_in();
    type_line(&mut app, "/watch bob");
    app.update(Event::Rtm(ClientEvent::PeersOnlineStatusChanged(
        BTreeMap::from([(uid("bob"), PeerOnlineState::Offline)]),
    )));
    assert_eq!(app.presence_of(&uid("bob")), Some(PeerOnlineState::Offline));
    app.update(Event::Rtm(ClientEvent::PeersOnlineStatusChanged(
        BTreeMap::from([(uid("bob"), PeerOnlineState::Online)]),
    )));
    assert_eq!(app.presence_of(&uid("bob")), Some(PeerOnlineState::Online));
    let s = app.status().unwrap();
    assert_eq!(
        (s.kind, s.text.as_str()),
        (StatusKind::Note, "bob is online")
    );
    // Notes fade; errors stay.
    app.set_clock(|| NOW + 60_000);
    app.update(Event::Tick);
    assert!(app.status().is_none());
    // Online peers sort first.
    app.update(peer_message("aaron", "hi", false));
    assert_eq!(app.peer_rows(), vec![uid("bob"), uid("aaron")]);
}

#[test]
fn status_query_answers_in_the_status_bar() {
    let mut app = logged_in();
    app.update(Event::CommandResult(CommandResult::OnlineStatus {
        peers: vec![uid("bob"), uid("carol")],
        result: Ok(BTreeMap::from([(uid("bob"), true), (uid("carol"), false)])),
    }));
    assert_eq!(app.status().unwrap().text, "bob: online · carol: offline");
}

#[test]
fn connection_changes_and_restoration_are_reported() {
    let mut app = logged_in();
    join(&mut app, "a", &["alice"]);
    join(&mut app, "b", &["alice"]);
    app.update(Event::Rtm(ClientEvent::ConnectionStateChanged {
        state: ConnectionState::Reconnecting,
        reason: ConnectionChangeReason::Interrupted,
    }));
    assert_eq!(app.connection, ConnectionState::Reconnecting);
    assert!(status_error(&app).contains("reconnecting"));
    app.update(Event::Rtm(ClientEvent::ConnectionStateChanged {
        state: ConnectionState::Connected,
        reason: ConnectionChangeReason::LoginSuccess,
    }));
    let out = app.update(Event::Rtm(ClientEvent::Restored {
        rejoined: vec![ch("a"), ch("b")],
        failed: vec![],
        attributes_restored: true,
        subscriptions_restored: 0,
    }));
    assert_eq!(app.status().unwrap().text, "reconnected; rejoined #a, #b");
    assert!(out.contains(&Command::GetMembers(ch("a"))));
}

#[test]
fn leaving_removes_the_channel() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice"]);
    type_line(&mut app, "/leave");
    app.update(Event::CommandResult(CommandResult::Left {
        channel: ch("general"),
        result: Ok(()),
    }));
    assert!(app.channel_rows().is_empty());
    assert_eq!(app.selected(), None);
    // Late events for the channel are ignored.
    app.update(channel_event(
        "general",
        ChannelEvent::MemberJoined(uid("bob")),
    ));
    assert!(app.channel(&ch("general")).is_none());
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

#[test]
fn page_up_scrolls_and_new_messages_keep_the_view() {
    let mut app = logged_in();
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    for i in 0..200 {
        app.update(peer_message("bob", &format!("line {i}"), false));
    }
    app.update(key(KeyCode::PageUp));
    let page = bob_conv(&app).scroll;
    assert_ne!(page, Scroll::Bottom);
    let shown = conversation_text(&app);
    app.update(peer_message("bob", "new", false));
    // The view stays put, and says that something arrived below.
    assert_eq!(bob_conv(&app).scroll, page);
    assert_eq!(conversation_text(&app), shown);
    assert_eq!(bob_conv(&app).new_below, 1);
    assert!(screen_text(&app).contains("↓ 1 new message below"));
    app.update(Event::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 50,
        row: 10,
        modifiers: KeyModifiers::NONE,
    }));
    let Scroll::Anchor { entry, .. } = bob_conv(&app).scroll else {
        panic!("still scrolled up");
    };
    let Scroll::Anchor { entry: before, .. } = page else {
        unreachable!()
    };
    assert_eq!(entry, before + 3);
    for _ in 0..100 {
        app.update(key(KeyCode::PageUp));
    }
    let top = conversation_text(&app);
    assert!(
        top[0].ends_with("bob: line 0"),
        "clamped at the first line: {top:?}"
    );
    for _ in 0..100 {
        app.update(key(KeyCode::PageDown));
    }
    assert_eq!(bob_conv(&app).scroll, Scroll::Bottom);
    assert_eq!(bob_conv(&app).new_below, 0);
    // Ctrl-Home / Ctrl-End, and Home / End in the focused conversation.
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Home,
        KeyModifiers::CONTROL,
    )));
    assert!(conversation_text(&app)[0].ends_with("line 0"));
    app.update(Event::Key(KeyEvent::new(
        KeyCode::End,
        KeyModifiers::CONTROL,
    )));
    assert_eq!(bob_conv(&app).scroll, Scroll::Bottom);
    app.focus = Focus::Conversation;
    app.update(key(KeyCode::Home));
    assert!(conversation_text(&app)[0].ends_with("line 0"));
    app.update(key(KeyCode::Char('j')));
    assert!(conversation_text(&app)[0].ends_with("line 1"));
    app.update(key(KeyCode::End));
    assert_eq!(bob_conv(&app).scroll, Scroll::Bottom);
}

#[test]
fn ctrl_c_quits() {
    let mut app = logged_in();
    assert_eq!(app.update(ctrl('c')), vec![Command::Quit]);
    assert!(app.quitting());
}

#[test]
fn resize_and_render_never_panic_at_any_size() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice", "bob"]);
    app.update(peer_message("bob", &"long words ".repeat(50), false));
    type_line(&mut app, "/watch bob");
    let mut login = App::with_login_hint(&options(None), Some("alice".into()));
    login.login.error = Some("cannot connect to ws://127.0.0.1:7420: refused".into());
    let mut help = logged_in();
    help.update(key(KeyCode::F(1)));
    for app in [&mut app, &mut login, &mut help] {
        for (w, h) in [
            (1, 1),
            (2, 2),
            (20, 5),
            (5, 20),
            (59, 10),
            (60, 6),
            (99, 7),
            (100, 30),
            (0, 0),
        ] {
            app.update(Event::Resize(w, h));
            let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
            terminal.draw(|f| render(app, f)).unwrap();
            app.update(key(KeyCode::Tab));
            app.update(key(KeyCode::PageUp));
            terminal.draw(|f| render(app, f)).unwrap();
        }
    }
}

// ------------------------------------------------ unread and mentions

fn alt(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::ALT))
}

fn channel_message(name: &str, from: &str, text: &str) -> Event {
    channel_event(
        name,
        ChannelEvent::ChannelMessage {
            message: RtmMessage::text(text),
            member_id: uid(from),
            props: MessageProps {
                server_received_ts: NOW,
                is_offline_message: false,
            },
        },
    )
}

fn notifications(out: &[Command]) -> Vec<&crate::tui::notify::Notification> {
    out.iter()
        .filter_map(|c| match c {
            Command::Notify(n) => Some(n),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------ local history

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
        },
    }
}

fn history_loaded(convs: Vec<(ConvId, Vec<crate::tui::conversation::Entry>)>) -> Event {
    Event::CommandResult(CommandResult::HistoryLoaded(Ok(convs)))
}

fn history_commands(out: &[Command]) -> Vec<&Command> {
    out.iter()
        .filter(|c| matches!(c, Command::OpenHistory(_) | Command::RecordHistory(_)))
        .collect()
}

#[test]
fn loaded_history_goes_before_live_entries_and_is_not_unread() {
    let mut app = logged_in_with(history_on());
    app.open(ConvId::Peer(uid("carol")), &mut Vec::new());
    // A live message races the history load.
    app.update(peer_message("bob", "live one", false));
    let bob = ConvId::Peer(uid("bob"));
    let general = ConvId::Channel(ch("general"));
    let out = app.update(history_loaded(vec![
        (
            bob.clone(),
            vec![
                stored("bob", "old one", NOW - 90_000),
                stored("alice", "my old reply", NOW - 80_000),
            ],
        ),
        (
            general.clone(),
            vec![stored("carol", "hi @alice", NOW - 70_000)],
        ),
    ]));
    assert!(notifications(&out).is_empty(), "history rings no bell");
    assert_eq!(
        app.selected(),
        Some(&ConvId::Peer(uid("carol"))),
        "the open one stays"
    );
    let texts: Vec<&str> = bob_conv(&app)
        .entries
        .iter()
        .map(|e| e.kind.text())
        .collect();
    assert_eq!(texts, ["old one", "my old reply", "live one"]);
    assert_eq!(bob_conv(&app).unread, 1, "only the live message is unread");
    assert_eq!(bob_conv(&app).first_unread, Some(2));
    let g = app.conversation(&general).unwrap();
    assert_eq!((g.unread, g.mentions), (0, 0));
    // The mention is still drawn as one.
    assert!(matches!(
        g.entries[0].kind,
        EntryKind::Message { mention: true, .. }
    ));
    // The channel from the history is listed, as left, and cannot be written to.
    assert_eq!(app.channel_rows(), vec![ch("general")]);
    assert!(screen_text(&app).contains("#general (left)"));
    // Opening bob puts the "new" line above the live message only.
    app.open(bob.clone(), &mut Vec::new());
    assert_eq!(bob_conv(&app).marker, Some(2));
    app.open(general, &mut Vec::new());
    type_line(&mut app, "anyone?");
    assert!(status_error(&app).contains("/join general"));
}

#[test]
fn loaded_history_opens_the_most_recent_conversation_when_none_is_open() {
    let mut app = logged_in_with(history_on());
    app.update(history_loaded(vec![
        (
            ConvId::Peer(uid("bob")),
            vec![stored("bob", "see you tomorrow", NOW - 1_000)],
        ),
        (
            ConvId::Peer(uid("carol")),
            vec![stored("carol", "older talk", NOW - 9_000)],
        ),
    ]));
    assert_eq!(app.selected(), Some(&ConvId::Peer(uid("bob"))));
    assert!(
        conversation_text(&app)
            .iter()
            .any(|l| l.contains("bob: see you tomorrow")),
        "{:?}",
        conversation_text(&app)
    );
    assert_eq!(app.peer_rows(), vec![uid("bob"), uid("carol")]);
    // A history that cannot be read says why in the status bar.
    app.update(Event::CommandResult(CommandResult::HistoryLoaded(Err(
        "local history x was written by a newer rtm".into(),
    ))));
    assert!(status_error(&app).contains("newer rtm"));
}

#[test]
fn messages_are_recorded_in_the_history_only_when_it_is_on() {
    use crate::tui::history::HistoryRecord;
    let login = || {
        Event::CommandResult(CommandResult::LoggedIn {
            uid: uid("alice"),
            result: Ok(LoginInfo {
                uid: uid("alice"),
                server_ts: NOW,
                dev_mode: true,
                token_expires_in_s: None,
            }),
        })
    };
    let sent = Event::CommandResult(CommandResult::PeerMessageSent {
        peer: uid("bob"),
        id: 1,
        result: Ok(PeerMessageSendResult {
            has_peer_received: true,
            cached: false,
            server_received_ts: NOW + 5,
        }),
    });

    // On: the login opens the history, and every message is recorded.
    let mut app = App::with_login_hint(&history_on(), None);
    app.set_clock(|| NOW);
    app.update(Event::Resize(160, 48));
    assert_eq!(
        history_commands(&app.update(login())),
        [&Command::OpenHistory(uid("alice"))]
    );
    let out = type_line(&mut app, "/msg bob hello");
    assert_eq!(
        history_commands(&out),
        [&Command::RecordHistory(HistoryRecord::Message {
            conv: ConvId::Peer(uid("bob")),
            ts: NOW,
            from: uid("alice"),
            text: "hello".into(),
            offline: false,
            outgoing: true,
            delivery: Delivery::Sending(1),
        })]
    );
    assert_eq!(
        history_commands(&app.update(sent.clone())),
        [&Command::RecordHistory(HistoryRecord::Delivery {
            id: 1,
            delivery: Delivery::Sent,
            ts: NOW + 5,
        })]
    );
    assert_eq!(
        history_commands(&app.update(peer_message("bob", "hi", true))),
        [&Command::RecordHistory(HistoryRecord::Message {
            conv: ConvId::Peer(uid("bob")),
            ts: NOW - 60_000,
            from: uid("bob"),
            text: "hi".into(),
            offline: true,
            outgoing: false,
            delivery: Delivery::Received,
        })]
    );
    assert!(history_commands(&join(&mut app, "general", &["alice", "carol"])).is_empty());
    let out = app.update(channel_message("general", "carol", "morning"));
    assert!(matches!(
        history_commands(&out)[..],
        [Command::RecordHistory(HistoryRecord::Message { conv: ConvId::Channel(c), outgoing: false, .. })] if *c == ch("general")
    ));
    // Joins and leaves are not messages.
    let out = app.update(channel_event(
        "general",
        ChannelEvent::MemberJoined(uid("dave")),
    ));
    assert!(history_commands(&out).is_empty());
    // A channel with history stays listed (as left) after leaving it.
    type_line(&mut app, "/leave");
    app.update(Event::CommandResult(CommandResult::Left {
        channel: ch("general"),
        result: Ok(()),
    }));
    assert_eq!(app.channel_rows(), vec![ch("general")]);
    assert!(app.channel(&ch("general")).is_none());

    // Off: the same session asks nothing of the history.
    let mut app = App::with_login_hint(&options(None), None);
    app.set_clock(|| NOW);
    app.update(Event::Resize(160, 48));
    let mut out = app.update(login());
    out.extend(type_line(&mut app, "/msg bob hello"));
    out.extend(app.update(sent));
    out.extend(app.update(peer_message("bob", "hi", true)));
    out.extend(join(&mut app, "general", &["alice", "carol"]));
    out.extend(app.update(channel_message("general", "carol", "morning")));
    assert!(history_commands(&out).is_empty(), "{out:?}");
}

#[test]
fn mentions_mark_the_line_and_the_conversation_and_ring_the_bell() {
    let mut app = logged_in();
    join(&mut app, "rust", &["alice", "bob"]);
    join(&mut app, "general", &["alice", "bob"]);
    // In #rust (not open): a plain message counts, rings nothing (channels: mentions only).
    let out = app.update(channel_message("rust", "bob", "anyone here?"));
    assert!(notifications(&out).is_empty());
    let out = app.update(channel_message("rust", "bob", "@alice can you look?"));
    let n = notifications(&out);
    assert_eq!(n.len(), 1);
    assert!(n[0].bell && n[0].title.contains("bob") && n[0].body.contains("look"));
    let conv = app.conversation(&ConvId::Channel(ch("rust"))).unwrap();
    assert_eq!((conv.unread, conv.mentions), (2, 1));
    assert!(matches!(
        conv.entries.last().unwrap().kind,
        EntryKind::Message { mention: true, .. }
    ));
    // Not a mention: "malice"; and our own message never is.
    app.update(channel_message("rust", "bob", "with malice"));
    assert_eq!(
        app.conversation(&ConvId::Channel(ch("rust")))
            .unwrap()
            .mentions,
        1
    );
    let screen = screen_text(&app);
    assert!(screen.contains("#rust (2) [3 @1]"), "{screen}");
    // A direct message rings too (peers: all).
    let out = app.update(peer_message("carol", "psst", false));
    assert_eq!(notifications(&out).len(), 1);
    // Alt-A: mentions first, whatever the pane order.
    app.update(alt(KeyCode::Char('a')));
    assert_eq!(app.selected(), Some(&ConvId::Channel(ch("rust"))));
    let conv = app.conversation(&ConvId::Channel(ch("rust"))).unwrap();
    assert_eq!((conv.unread, conv.mentions), (0, 0));
    // The "new" line sits above the first unread message, with the » mark on the mention.
    let text = conversation_text(&app).join("\n");
    let new_at = text.find("── new ──").expect("a new-messages line");
    assert!(new_at < text.find("anyone here?").unwrap(), "{text}");
    assert!(text.contains("» bob: @alice can you look?"), "{text}");
    app.update(alt(KeyCode::Char('a')));
    assert_eq!(app.selected(), Some(&ConvId::Peer(uid("carol"))));
    app.update(alt(KeyCode::Char('a')));
    assert!(app.status().unwrap().text.contains("no unread"));
    // The open conversation at the bottom, terminal focused: no bell.
    let out = app.update(peer_message("carol", "alice?", false));
    assert!(notifications(&out).is_empty());
    // Terminal in the background: the bell again.
    app.update(Event::FocusChanged(false));
    let out = app.update(peer_message("carol", "alice??", false));
    assert_eq!(notifications(&out).len(), 1);
}

#[test]
fn mute_and_unmute_silence_a_conversation_and_are_saved() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice", "bob"]);
    let out = type_line(&mut app, "/mute");
    assert_eq!(
        out,
        vec![Command::SaveMuted(vec![ConvId::Channel(ch("general"))])]
    );
    assert!(app.is_muted(&ConvId::Channel(ch("general"))));
    app.update(key(KeyCode::Char('x')));
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    let out = app.update(channel_message("general", "bob", "alice: hello"));
    assert!(
        notifications(&out).is_empty(),
        "muted: no bell even for a mention"
    );
    assert!(screen_text(&app).contains("⊘ #general"));
    let out = type_line(&mut app, "/unmute #general");
    assert_eq!(out, vec![Command::SaveMuted(vec![])]);
    let out = app.update(channel_message("general", "bob", "alice: again"));
    assert_eq!(notifications(&out).len(), 1);
    // Muted list read at start.
    app.update(Event::CommandResult(CommandResult::MutedLoaded(Ok(vec![
        ConvId::Peer(uid("dave")),
    ]))));
    assert!(app.is_muted(&ConvId::Peer(uid("dave"))));
    let out = app.update(peer_message("dave", "hi", false));
    assert!(notifications(&out).is_empty());
    assert!(type_line(&mut app, "/mute a*b").is_empty());
    assert!(status_error(&app).contains("/mute"));
}

// --------------------------------------------------- input editing

#[test]
fn tab_completes_commands_channels_and_peers_and_cycles() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice", "bob", "bea"]);
    join(&mut app, "gamedev", &["alice"]);
    let typed = |app: &mut App, s: &str| {
        app.update(ctrl('u'));
        for c in s.chars() {
            app.update(key(KeyCode::Char(c)));
        }
        app.update(key(KeyCode::Tab));
        app.input_text().to_string()
    };
    assert_eq!(typed(&mut app, "/jo"), "/join ");
    assert_eq!(typed(&mut app, "/join ga"), "/join gamedev ");
    assert_eq!(typed(&mut app, "see #gen"), "see #general ");
    // A name at the start of a channel message addresses someone.
    assert_eq!(typed(&mut app, "b"), "bea: ");
    app.update(key(KeyCode::Tab));
    assert_eq!(app.input_text(), "bob: ");
    app.update(key(KeyCode::Tab));
    assert_eq!(app.input_text(), "bea: ");
    assert_eq!(typed(&mut app, "hi @bo"), "hi @bob ");
    assert_eq!(typed(&mut app, "/msg bo"), "/msg bob ");
    // Text after the cursor stays.
    app.update(ctrl('u'));
    for c in "x tail".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    for _ in 0..5 {
        app.update(key(KeyCode::Left));
    }
    app.update(key(KeyCode::Backspace));
    for c in "/lea".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    app.update(key(KeyCode::Home));
    app.update(ctrl('u'));
    assert_eq!(typed(&mut app, "zz"), "zz");
    assert!(app.status().unwrap().text.contains("nothing to complete"));
}

#[test]
fn history_is_per_conversation_and_up_down_walk_it() {
    let mut app = logged_in();
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    type_line(&mut app, "first");
    type_line(&mut app, "second");
    app.open(ConvId::Peer(uid("carol")), &mut Vec::new());
    type_line(&mut app, "to carol");
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    app.update(key(KeyCode::Char('d')));
    app.update(key(KeyCode::Up));
    assert_eq!(app.input_text(), "second");
    app.update(key(KeyCode::Up));
    assert_eq!(app.input_text(), "first");
    app.update(key(KeyCode::Up));
    assert_eq!(app.input_text(), "first");
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Down));
    // Past the newest: the draft comes back.
    assert_eq!(app.input_text(), "d");
    // Drafts stay with their conversation.
    app.open(ConvId::Peer(uid("carol")), &mut Vec::new());
    assert_eq!(app.input_text(), "");
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    assert_eq!(app.input_text(), "d");
}

#[test]
fn alt_enter_makes_a_multi_line_message_sent_as_one() {
    let mut app = logged_in();
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    for c in "one".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    app.update(alt(KeyCode::Enter));
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::SHIFT,
    )));
    for c in "three".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    // The input grows; Up moves inside it before it recalls history.
    assert_eq!(app.layout().input.height, 5);
    app.update(key(KeyCode::Up));
    app.update(key(KeyCode::Up));
    app.update(key(KeyCode::Char('!')));
    assert_eq!(app.input_text(), "!one\n\nthree");
    let out = app.update(key(KeyCode::Enter));
    assert!(matches!(&out[..], [Command::SendPeer { text, .. }] if text == "!one\n\nthree"));
    assert_eq!(app.layout().input.height, 3);
    // A pasted block is one message too.
    app.update(Event::Paste("a\nb\nc".into()));
    let out = app.update(key(KeyCode::Enter));
    assert!(matches!(&out[..], [Command::SendPeer { text, .. }] if text == "a\nb\nc"));
}

// ------------------------------------------------------------ search

#[test]
fn search_finds_steps_and_restores_the_view() {
    let mut app = logged_in();
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    for i in 0..300 {
        let text = if i % 100 == 7 {
            format!("needle {i}")
        } else {
            format!("hay {i}")
        };
        app.update(peer_message("bob", &text, false));
    }
    app.update(ctrl('f'));
    for c in "NEEDLE".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    let search = app.search_state().unwrap();
    assert_eq!(search.hits.len(), 3);
    assert!(
        conversation_text(&app)
            .iter()
            .any(|l| l.ends_with("needle 207"))
    );
    assert!(screen_text(&app).contains("match 3/3"));
    // Enter keeps it; n steps older, N newer, in the conversation pane.
    app.update(key(KeyCode::Enter));
    assert_eq!(app.focus(), Focus::Conversation);
    app.update(key(KeyCode::Char('n')));
    assert!(
        conversation_text(&app)
            .iter()
            .any(|l| l.ends_with("needle 107"))
    );
    app.update(key(KeyCode::Char('n')));
    app.update(key(KeyCode::Char('n')));
    assert!(app.status().unwrap().text.contains("oldest match"));
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('N'),
        KeyModifiers::SHIFT,
    )));
    assert!(
        conversation_text(&app)
            .iter()
            .any(|l| l.ends_with("needle 107"))
    );
    // Esc ends it; the view stays where the hit was.
    app.update(key(KeyCode::Esc));
    assert!(app.search_state().is_none());
    // Typing a search and Esc goes back to where you were.
    app.update(key(KeyCode::End));
    app.update(key(KeyCode::Char('/')));
    app.update(key(KeyCode::Char('h')));
    app.update(key(KeyCode::Esc));
    assert_eq!(bob_conv(&app).scroll, Scroll::Bottom);
    // /search with no match says so (Esc first: back to the input).
    app.update(key(KeyCode::Esc));
    assert_eq!(app.focus(), Focus::Input);
    type_line(&mut app, "/search zebra");
    assert!(app.search_state().is_none());
    assert!(app.status().unwrap().text.contains("no match"));
    type_line(&mut app, "/search hay 29");
    assert_eq!(app.search_state().unwrap().hits.len(), 11);
}

#[test]
fn next_and_previous_conversation_and_clear() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice"]);
    app.update(peer_message("bob", "hi", false));
    app.update(alt(KeyCode::Down));
    assert_eq!(app.selected(), Some(&ConvId::Peer(uid("bob"))));
    app.update(alt(KeyCode::Up));
    assert_eq!(app.selected(), Some(&ConvId::Channel(ch("general"))));
    type_line(&mut app, "/clear");
    assert!(
        app.conversation(&ConvId::Channel(ch("general")))
            .unwrap()
            .entries
            .is_empty()
    );
}

#[test]
fn rebound_keys_drive_the_app_and_the_help() {
    let mut app = logged_in();
    let mut file = crate::config::KeyBindingsFile::new();
    file.entry("global".into())
        .or_default()
        .insert("help".into(), crate::config::KeyList::One("f2".into()));
    let ui = crate::tui::UiConfig {
        keymap: crate::tui::keymap::Keymap::with_overrides(&file).unwrap(),
        ..Default::default()
    };
    app.configure(ui);
    app.update(key(KeyCode::F(1)));
    assert!(!app.help_open());
    app.update(key(KeyCode::F(2)));
    assert!(app.help_open());
    assert!(screen_text(&app).contains("F2"));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Random keys, pastes, clicks, messages and sizes never panic, and every
    /// state renders at the size it was given.
    #[test]
    fn random_input_and_sizes_never_panic(
        steps in proptest::collection::vec((0u8..40, 0u16..170, 0u16..56), 1..60)
    ) {
        let mut app = logged_in();
        join(&mut app, "general", &["alice", "bob"]);
        app.update(peer_message("bob", "hello alice", false));
        let codes = [
            KeyCode::Tab, KeyCode::BackTab, KeyCode::Enter, KeyCode::Esc, KeyCode::Up,
            KeyCode::Down, KeyCode::Left, KeyCode::Right, KeyCode::Home, KeyCode::End,
            KeyCode::PageUp, KeyCode::PageDown, KeyCode::Backspace, KeyCode::Delete,
            KeyCode::F(1), KeyCode::Char('?'), KeyCode::Char('/'), KeyCode::Char('n'),
            KeyCode::Char('N'), KeyCode::Char('a'), KeyCode::Char('#'), KeyCode::Char('日'),
        ];
        let mods = [KeyModifiers::NONE, KeyModifiers::ALT, KeyModifiers::SHIFT];
        for (op, a, b) in steps {
            let op = usize::from(op);
            let ev = match op {
                0 => Event::Resize(a, b),
                1 => Event::Paste(format!("p{a}\nq{b}")),
                2 => Event::Mouse(MouseEvent {
                    kind: if a % 2 == 0 { MouseEventKind::ScrollUp } else { MouseEventKind::Down(crossterm::event::MouseButton::Left) },
                    column: a,
                    row: b,
                    modifiers: KeyModifiers::NONE,
                }),
                3 => channel_message("general", "bob", &"alice word ".repeat(usize::from(b % 30))),
                4 => peer_message("bob", &format!("msg {a}"), false),
                5 => Event::Key(KeyEvent::new(KeyCode::Char('f'), KeyModifiers::CONTROL)),
                _ => Event::Key(KeyEvent::new(codes[(op + usize::from(a)) % codes.len()], mods[usize::from(b) % 3])),
            };
            let out = app.update(ev);
            proptest::prop_assert!(!out.contains(&Command::Quit) || app.quitting());
            let (w, h) = app.size;
            let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
            terminal.draw(|f| render(&app, f)).unwrap();
        }
    }
}

// ------------------------------------------------------------ tokens

#[test]
fn slash_token_renews_the_token() {
    let mut app = logged_in();
    let out = type_line(&mut app, "/token rtm1.new.token");
    assert!(
        out.contains(&Command::RenewToken("rtm1.new.token".into())),
        "{out:?}"
    );
    app.update(Event::CommandResult(CommandResult::TokenRenewed(Ok(()))));
    assert_eq!(app.status().unwrap().text, "login token renewed");
    app.update(Event::CommandResult(CommandResult::TokenRenewed(Err(
        "bad".into(),
    ))));
    assert!(status_error(&app).contains("/token <new token>"));
    assert!(
        type_line(&mut app, "/token")
            .iter()
            .all(|c| !matches!(c, Command::RenewToken(_)))
    );
}

#[test]
fn expiry_warning_asks_for_a_token_or_fetches_one() {
    let mut app = logged_in();
    let out = app.update(Event::Rtm(ClientEvent::TokenPrivilegeWillExpire {
        expires_in_s: 30,
    }));
    assert!(!out.contains(&Command::FetchToken));
    let text = status_error(&app);
    assert!(
        text.contains("30 s") && text.contains("/token") && text.contains("rtm token --uid alice"),
        "{text}"
    );

    let mut opts = options(Some("alice"));
    opts.settings.token_command = Some("echo rtm1.x.y".into());
    let mut app = logged_in_with(opts);
    let out = app.update(Event::Rtm(ClientEvent::TokenPrivilegeWillExpire {
        expires_in_s: 30,
    }));
    assert!(out.contains(&Command::FetchToken), "{out:?}");
}

// ------------------------------------------------ editing attributes

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

#[test]
fn attributes_pane_keys_edit_add_and_delete_with_confirmation() {
    let mut app = logged_in();
    join(&mut app, "general", &["alice", "bob"]);
    let attr = |k: &str, v: &str| ChannelAttribute {
        key: k.into(),
        value: v.into(),
        last_update_user_id: uid("bob"),
        last_update_ts: NOW,
    };
    app.update(Event::CommandResult(CommandResult::ChannelAttributes {
        channel: ch("general"),
        keys: None,
        explicit: false,
        result: Ok(vec![attr("rules", "be nice"), attr("topic", "launch day")]),
    }));
    focus_attributes(&mut app);
    // Down selects the first row, again the second.
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Down));
    assert_eq!(
        app.attrs_list.selected(),
        Some(&AttrRef::Channel(ch("general"), "topic".into()))
    );
    // e: the command that rewrites it, whole value included, ready to edit.
    app.update(char_key('e'));
    assert_eq!(app.focus(), Focus::Input);
    assert_eq!(
        app.input_text(),
        r#"/cattr put #general "topic=launch day" --notify"#
    );
    // Sending it parses back to the same key and value.
    let out = app.update(key(KeyCode::Enter));
    assert!(
        out.contains(&Command::ChannelAttrWrite {
            channel: ch("general"),
            op: AttrWrite::Put(BTreeMap::from([(
                "topic".to_string(),
                "launch day".to_string()
            )])),
            notify: true,
        }),
        "{out:?}"
    );
    // d asks first; any key but y keeps it.
    focus_attributes(&mut app);
    app.update(char_key('d'));
    assert!(app.status().unwrap().text.contains("press y"));
    assert!(app.update(char_key('n')).is_empty());
    assert_eq!(app.status().unwrap().text, "kept");
    app.update(char_key('d'));
    let out = app.update(char_key('y'));
    assert_eq!(
        out,
        vec![Command::ChannelAttrWrite {
            channel: ch("general"),
            op: AttrWrite::Delete(vec!["topic".into()]),
            notify: true,
        }]
    );
    // a: an add command for the open channel.
    app.update(char_key('a'));
    assert_eq!(app.input_text(), "/cattr put #general --notify ");
    // In other lists the same keys are just typing.
    app.update(key(KeyCode::Esc));
    let mut app = logged_in();
    app.update(key(KeyCode::BackTab));
    assert_ne!(app.focus(), Focus::Attributes);
    app.update(char_key('e'));
    assert_eq!(app.input_text(), "e");
}
