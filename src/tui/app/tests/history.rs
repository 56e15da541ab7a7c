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

fn page_requests(out: &[Command]) -> Vec<(Option<i64>, Option<i64>)> {
    out.iter()
        .filter_map(|c| match c {
            Command::LoadHistoryPage { before, until, .. } => Some((*before, *until)),
            _ => None,
        })
        .collect()
}

fn page_answer(
    conv: &ConvId,
    before: Option<i64>,
    from: u64,
    to: u64,
    older: Option<i64>,
) -> Event {
    use crate::tui::history::HistoryPage;
    Event::CommandResult(CommandResult::HistoryPage {
        conv: conv.clone(),
        before,
        result: Ok(HistoryPage {
            entries: (from..=to)
                .map(|i| stored("bob", &format!("m{i}"), NOW - 20_000 + i))
                .collect(),
            older,
        }),
    })
}

/// Issue 16: after a restart only the newest 500 are loaded; scrolling up
/// past them reads older pages from the local history, the view staying
/// on the lines it showed, and Ctrl-Home goes on to the very first line.
#[test]
fn scrolling_up_past_what_is_loaded_reads_older_pages_from_the_history() {
    let mut app = logged_in(history_on());
    let bob = ConvId::Peer(uid("bob"));
    // Rows are numbered like messages here: m_i is row i; m9601..m10100 loaded.
    let out = app.update(history_loaded_with_more(vec![(
        bob.clone(),
        (9_601..=10_100)
            .map(|i| stored("bob", &format!("m{i}"), NOW - 20_000 + i))
            .collect(),
        Some(9_601),
    )]));
    assert!(page_requests(&out).is_empty(), "the view is at the bottom");
    // Page up until the top of the view nears the oldest loaded entry.
    let mut asked = Vec::new();
    for _ in 0..40 {
        asked.extend(page_requests(&app.update(key(KeyCode::PageUp))));
    }
    assert_eq!(asked, [(Some(9_601), None)], "one page asked, once");
    // The lines on screen stay put. (The day line above the oldest loaded
    // message moves up to the new oldest when they share a day, so the
    // comparison skips day lines.)
    let messages = |app: &App| {
        conversation_text(app)
            .into_iter()
            .filter(|l| !l.starts_with('─'))
            .collect::<Vec<_>>()
    };
    let before = messages(&app);
    let out = app.update(page_answer(&bob, Some(9_601), 9_101, 9_600, Some(9_101)));
    assert!(page_requests(&out).is_empty());
    let after = messages(&app);
    assert_eq!(
        after[after.len() - before.len()..],
        before[..],
        "the view did not jump"
    );
    assert_eq!(bob_conv(&app).entries.len(), 1_000);
    // A second answer changes nothing.
    app.update(page_answer(&bob, Some(9_601), 9_101, 9_600, Some(9_101)));
    assert_eq!(bob_conv(&app).entries.len(), 1_000);
    // Ctrl-Home: page after page until the start, the view on the first line.
    let mut out = app.update(Event::Key(KeyEvent::new(
        KeyCode::Home,
        KeyModifiers::CONTROL,
    )));
    let mut before = Some(9_101);
    let mut pages = 0;
    loop {
        assert_eq!(page_requests(&out), [(before, None)]);
        let to = before.unwrap() - 1;
        let from = (to - 499).max(101);
        let older = (from > 101).then_some(from);
        out = app.update(page_answer(&bob, before, from as u64, to as u64, older));
        pages += 1;
        before = older;
        if before.is_none() {
            break;
        }
    }
    assert!(page_requests(&out).is_empty(), "the start was reached");
    assert_eq!(pages, 18);
    assert_eq!(bob_conv(&app).entries.len(), 10_000);
    // The very first stored message, under the line naming its day.
    assert!(
        messages(&app)[0].ends_with("bob: m101"),
        "{:?}",
        conversation_text(&app)
    );
    // Nothing more is asked at the top once everything is loaded.
    assert!(page_requests(&app.update(key(KeyCode::PageUp))).is_empty());
}

/// /clear forgets the lines on screen: they do not come back from the
/// history, not even from a page asked for just before.
#[test]
fn cleared_lines_do_not_come_back_from_the_history() {
    let mut app = logged_in(history_on());
    let bob = ConvId::Peer(uid("bob"));
    // 50 lines: the top of the view is near the oldest, so the next page
    // is asked for at once.
    let out = app.update(history_loaded_with_more(vec![(
        bob.clone(),
        (9_951..=10_000)
            .map(|i| stored("bob", &format!("m{i}"), NOW - 20_000 + i))
            .collect(),
        Some(9_951),
    )]));
    assert_eq!(page_requests(&out), [(Some(9_951), None)]);
    type_line(&mut app, "/clear");
    app.update(page_answer(&bob, Some(9_951), 9_451, 9_950, Some(9_451)));
    assert!(bob_conv(&app).entries.is_empty());
    assert!(page_requests(&app.update(key(KeyCode::PageUp))).is_empty());
    assert!(!screen_text(&app).contains("reading older"));
}

/// Issue 16: a search finds the stored matches that are not loaded too,
/// counts them, and stepping to an older one loads down to it.
#[test]
fn search_covers_the_stored_history_and_steps_into_it() {
    let mut app = logged_in(history_on());
    let bob = ConvId::Peer(uid("bob"));
    let mut loaded: Vec<_> = (9_601..=10_100)
        .map(|i| stored("bob", &format!("m{i}"), NOW - 20_000 + i))
        .collect();
    loaded[399].kind = stored("bob", "m10000 the needle", NOW).kind;
    app.update(history_loaded_with_more(vec![(
        bob.clone(),
        loaded,
        Some(9_601),
    )]));
    // Typing the query asks the history about the rows not loaded.
    app.update(ctrl('f'));
    let mut out = Vec::new();
    for c in "NEEDLE".chars() {
        out.extend(app.update(char_key(c)));
    }
    let asked: Vec<_> = out
        .iter()
        .filter_map(|c| match c {
            Command::SearchHistory { query, before, .. } => Some((query.clone(), *before)),
            _ => None,
        })
        .collect();
    assert_eq!(asked.last(), Some(&("NEEDLE".to_string(), Some(9_601))));
    // An answer for an older query is ignored; the current one is counted.
    for q in ["NEEDL", "NEEDLE"] {
        app.update(Event::CommandResult(CommandResult::HistoryFound {
            conv: bob.clone(),
            query: q.into(),
            result: Ok(vec![9_000, 5_000, 250]),
        }));
    }
    app.update(key(KeyCode::Enter));
    let s = app.search_state().unwrap();
    assert_eq!((s.position(), s.total()), (Some(4), 4));
    assert!(
        screen_text(&app).contains("match 4/4"),
        "{}",
        screen_text(&app)
    );
    // n: the next older match is stored; its page is read down to it.
    let out = app.update(char_key('n'));
    assert_eq!(page_requests(&out), [(Some(9_601), Some(9_000))]);
    let Event::CommandResult(CommandResult::HistoryPage {
        result: Ok(mut page),
        ..
    }) = page_answer(&bob, Some(9_601), 8_980, 9_600, Some(8_980))
    else {
        unreachable!()
    };
    page.entries[20].kind = stored("bob", "m9000 a needle", NOW).kind;
    app.update(Event::CommandResult(CommandResult::HistoryPage {
        conv: bob.clone(),
        before: Some(9_601),
        result: Ok(page),
    }));
    let s = app.search_state().unwrap();
    assert_eq!((s.position(), s.total()), (Some(3), 4));
    let hit = s.current_entry().unwrap();
    assert_eq!(bob_conv(&app).entries[hit].kind.text(), "m9000 a needle");
    assert!(
        conversation_text(&app)
            .iter()
            .any(|l| l.ends_with("bob: m9000 a needle")),
        "{:?}",
        conversation_text(&app)
    );
    // Near the top of what is loaded now: the next page is read as usual.
    let out = app.update(char_key('N'));
    assert!(page_requests(&out).is_empty(), "m10000 is near the bottom");
}

/// Issue 16: the peers restored from the history are subscribed to at
/// start, in one request, so their presence marks are not "unknown".
#[test]
fn peers_restored_from_history_are_subscribed_at_start() {
    let mut app = logged_in(history_on());
    let out = app.update(history_loaded(vec![
        (
            ConvId::Peer(uid("bob")),
            vec![stored("bob", "hi", NOW - 1_000)],
        ),
        (
            ConvId::Channel(ch("general")),
            vec![stored("carol", "yo", NOW - 2_000)],
        ),
        (
            ConvId::Peer(uid("dave")),
            vec![stored("dave", "hey", NOW - 3_000)],
        ),
    ]));
    let subs: Vec<_> = out
        .iter()
        .filter(|c| matches!(c, Command::Subscribe(_)))
        .collect();
    assert_eq!(subs, [&Command::Subscribe(vec![uid("bob"), uid("dave")])]);
}
