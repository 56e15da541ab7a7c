//! State kept current by SDK events: messages, members, presence, scrolling.

use super::*;

#[test]
fn with_nothing_open_an_incoming_message_opens_its_conversation_and_follows_the_peer() {
    let mut app = logged_in(options(None));
    assert_eq!(app.selected(), None);
    let out = app.update(peer_message("bob", "hello", NOW - MINUTE, false));
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
    let again = app.update(peer_message("bob", "still there?", NOW - MINUTE, false));
    assert!(
        !again.iter().any(|c| matches!(c, Command::Subscribe(_))),
        "{again:?}"
    );
    assert!(app.watched().is_empty());
}

#[test]
fn incoming_peer_message_creates_a_conversation_with_unread() {
    let mut app = logged_in(options(None));
    app.open(ConvId::Peer(uid("carol")), &mut Vec::new());
    app.update(peer_message("bob", "are you there?", NOW - MINUTE, false));
    app.update(peer_message("bob", "stored one", NOW - MINUTE, true));
    let conv = app.conversation(&ConvId::Peer(uid("bob"))).unwrap();
    assert_eq!(conv.unread, 2);
    assert!(matches!(
        &conv.entries[1].kind,
        EntryKind::Message { offline: true, text, .. } if text == "stored one"
    ));
    assert_eq!(conv.entries[0].ts, NOW - 60_000);
    // Opening it clears the count; messages to the open conversation are not unread.
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    app.update(peer_message("bob", "again", NOW - MINUTE, false));
    assert_eq!(
        app.conversation(&ConvId::Peer(uid("bob"))).unwrap().unread,
        0
    );
}

#[test]
fn joining_fetches_members_and_attributes() {
    let mut app = logged_in(options(None));
    let out = join(&mut app, "general", &["alice", "bob"]);
    assert_eq!(
        out,
        vec![
            Command::Join(ch("general")),
            Command::GetChannelAttributes {
                channel: ch("general"),
                keys: None,
                explicit: false
            },
            Command::GetMembers(ch("general")),
            // The members' presence, for their marks (not our own).
            Command::Subscribe(vec![uid("bob")]),
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
    let mut app = logged_in(options(None));
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
    let mut app = logged_in(options(None));
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
                message_id: None,
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
    let mut app = logged_in(options(None));
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
    let mut app = logged_in(options(None));
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
    app.update(peer_message("aaron", "hi", NOW - MINUTE, false));
    assert_eq!(app.peer_rows(), vec![uid("bob"), uid("aaron")]);
}

#[test]
fn status_query_answers_in_the_status_bar() {
    let mut app = logged_in(options(None));
    app.update(Event::CommandResult(CommandResult::OnlineStatus {
        peers: vec![uid("bob"), uid("carol")],
        result: Ok(BTreeMap::from([(uid("bob"), true), (uid("carol"), false)])),
    }));
    assert_eq!(app.status().unwrap().text, "bob: online · carol: offline");
}

#[test]
fn connection_changes_and_restoration_are_reported() {
    let mut app = logged_in(options(None));
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

/// With several servers configured the status bar shows the one in use,
/// and a reconnection to another one says where it went.
#[test]
fn the_status_bar_shows_the_server_in_use_and_a_failover_is_said() {
    let mut opts = options(None);
    opts.settings.server = "ws://node1:7420,ws://node2:7420".into();
    let mut app = logged_in(opts);
    join(&mut app, "a", &["alice"]);
    let status_bar = |app: &App| screen_text(app).lines().last().unwrap_or("").to_string();
    let connected = |app: &mut App, server: &str| {
        app.update(Event::ServerInUse(server.into()));
        app.update(Event::Rtm(ClientEvent::ConnectionStateChanged {
            state: ConnectionState::Connected,
            reason: ConnectionChangeReason::LoginSuccess,
        }));
    };
    let lost = |app: &mut App| {
        app.update(Event::Rtm(ClientEvent::ConnectionStateChanged {
            state: ConnectionState::Reconnecting,
            reason: ConnectionChangeReason::Interrupted,
        }));
    };
    let restored = |app: &mut App| {
        app.update(Event::Rtm(ClientEvent::Restored {
            rejoined: vec![ch("a")],
            failed: vec![],
            attributes_restored: false,
            subscriptions_restored: 0,
        }));
    };
    // Until the SDK says which, the list as configured.
    assert!(
        status_bar(&app).contains("ws://node1:7420,ws://node2:7420"),
        "{}",
        status_bar(&app)
    );
    connected(&mut app, "ws://node1:7420");
    let bar = status_bar(&app);
    assert!(
        bar.contains("ws://node1:7420") && !bar.contains("node2"),
        "{bar}"
    );

    // The first node goes: while reconnecting the last one still shows,
    // then the one the client moved to, and the note says so.
    lost(&mut app);
    assert!(status_bar(&app).contains("ws://node1:7420"));
    connected(&mut app, "ws://node2:7420");
    restored(&mut app);
    assert_eq!(
        app.status().unwrap().text,
        "reconnected to ws://node2:7420; rejoined #a"
    );
    let bar = status_bar(&app);
    assert!(
        bar.contains("ws://node2:7420") && !bar.contains("node1"),
        "{bar}"
    );

    // Back on the same server after a drop: nothing to say about where.
    lost(&mut app);
    connected(&mut app, "ws://node2:7420");
    restored(&mut app);
    assert_eq!(app.status().unwrap().text, "reconnected; rejoined #a");
}

#[test]
fn missed_messages_after_a_resume_leave_a_line_in_the_channels_and_the_open_conversation() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice", "bob"]);
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    app.update(Event::Rtm(ClientEvent::MessagesMissed { count: 7 }));
    for id in [ConvId::Channel(ch("general")), ConvId::Peer(uid("bob"))] {
        let conv = app.conversation(&id).unwrap();
        assert!(
            matches!(
                &conv.entries.last().unwrap().kind,
                EntryKind::System(t) if t.starts_with("messages may be missing here: 7")
            ),
            "{id:?}: {:?}",
            conv.entries
        );
    }
    assert!(app.status().unwrap().text.contains("7 messages"));
}

#[test]
fn leaving_removes_the_channel() {
    let mut app = logged_in(options(None));
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

#[test]
fn page_up_scrolls_and_new_messages_keep_the_view() {
    let mut app = logged_in(options(None));
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    for i in 0..200 {
        app.update(peer_message(
            "bob",
            &format!("line {i}"),
            NOW - MINUTE,
            false,
        ));
    }
    app.update(key(KeyCode::PageUp));
    let page = bob_conv(&app).scroll;
    assert_ne!(page, Scroll::Bottom);
    let shown = conversation_text(&app);
    app.update(peer_message("bob", "new", NOW - MINUTE, false));
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
        top[0].contains("Tuesday 14 November 2023") && top[1].ends_with("bob: line 0"),
        "clamped at the first line, under its day: {top:?}"
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
    assert!(conversation_text(&app)[1].ends_with("line 0"));
    app.update(Event::Key(KeyEvent::new(
        KeyCode::End,
        KeyModifiers::CONTROL,
    )));
    assert_eq!(bob_conv(&app).scroll, Scroll::Bottom);
    app.focus = Focus::Conversation;
    app.update(key(KeyCode::Home));
    assert!(conversation_text(&app)[1].ends_with("line 0"));
    app.update(key(KeyCode::Char('j')));
    assert!(
        conversation_text(&app)[0].ends_with("line 0"),
        "the day line scrolled off"
    );
    app.update(key(KeyCode::End));
    assert_eq!(bob_conv(&app).scroll, Scroll::Bottom);
}

#[test]
fn ctrl_c_quits() {
    let mut app = logged_in(options(None));
    assert_eq!(app.update(ctrl('c')), vec![Command::Quit]);
    assert!(app.quitting());
}

#[test]
fn resize_and_render_never_panic_at_any_size() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice", "bob"]);
    app.update(peer_message(
        "bob",
        &"long words ".repeat(50),
        NOW - MINUTE,
        false,
    ));
    type_line(&mut app, "/watch bob");
    let mut login = App::with_login_hint(&options(None), Some("alice".into()));
    login.login.error = Some("cannot connect to ws://127.0.0.1:7420: refused".into());
    let mut help = logged_in(options(None));
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
