//! The local history: loading and recording.

use super::*;

#[test]
fn loaded_history_goes_before_live_entries_and_is_not_unread() {
    let mut app = logged_in(history_on());
    app.open(ConvId::Peer(uid("carol")), &mut Vec::new());
    // A live message races the history load.
    app.update(peer_message("bob", "live one", NOW - MINUTE, false));
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
    let mut app = logged_in(history_on());
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
    let login = || login_answer("alice");
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
        history_commands(&app.update(peer_message("bob", "hi", NOW - MINUTE, true))),
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
    let out = app.update(channel_message("general", "carol", "morning", NOW));
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
    out.extend(app.update(peer_message("bob", "hi", NOW - MINUTE, true)));
    out.extend(join(&mut app, "general", &["alice", "carol"]));
    out.extend(app.update(channel_message("general", "carol", "morning", NOW)));
    assert!(history_commands(&out).is_empty(), "{out:?}");
}

#[test]
fn mentions_mark_the_line_and_the_conversation_and_ring_the_bell() {
    let mut app = logged_in(options(None));
    join(&mut app, "rust", &["alice", "bob"]);
    join(&mut app, "general", &["alice", "bob"]);
    // In #rust (not open): a plain message counts, rings nothing (channels: mentions only).
    let out = app.update(channel_message("rust", "bob", "anyone here?", NOW));
    assert!(notifications(&out).is_empty());
    let out = app.update(channel_message("rust", "bob", "@alice can you look?", NOW));
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
    app.update(channel_message("rust", "bob", "with malice", NOW));
    assert_eq!(
        app.conversation(&ConvId::Channel(ch("rust")))
            .unwrap()
            .mentions,
        1
    );
    let screen = screen_text(&app);
    assert!(screen.contains("#rust (2) [3 @1]"), "{screen}");
    // A direct message rings too (peers: all).
    let out = app.update(peer_message("carol", "psst", NOW - MINUTE, false));
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
    let out = app.update(peer_message("carol", "alice?", NOW - MINUTE, false));
    assert!(notifications(&out).is_empty());
    // Terminal in the background: the bell again.
    app.update(Event::FocusChanged(false));
    let out = app.update(peer_message("carol", "alice??", NOW - MINUTE, false));
    assert_eq!(notifications(&out).len(), 1);
}

#[test]
fn mute_and_unmute_silence_a_conversation_and_are_saved() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice", "bob"]);
    let out = type_line(&mut app, "/mute");
    assert_eq!(
        out,
        vec![Command::SaveMuted(vec![ConvId::Channel(ch("general"))])]
    );
    assert!(app.is_muted(&ConvId::Channel(ch("general"))));
    app.update(key(KeyCode::Char('x')));
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    let out = app.update(channel_message("general", "bob", "alice: hello", NOW));
    assert!(
        notifications(&out).is_empty(),
        "muted: no bell even for a mention"
    );
    assert!(screen_text(&app).contains("⊘ #general"));
    let out = type_line(&mut app, "/unmute #general");
    assert_eq!(out, vec![Command::SaveMuted(vec![])]);
    let out = app.update(channel_message("general", "bob", "alice: again", NOW));
    assert_eq!(notifications(&out).len(), 1);
    // Muted list read at start.
    app.update(Event::CommandResult(CommandResult::MutedLoaded(Ok(vec![
        ConvId::Peer(uid("dave")),
    ]))));
    assert!(app.is_muted(&ConvId::Peer(uid("dave"))));
    let out = app.update(peer_message("dave", "hi", NOW - MINUTE, false));
    assert!(notifications(&out).is_empty());
    assert!(type_line(&mut app, "/mute a*b").is_empty());
    assert!(status_error(&app).contains("/mute"));
}
