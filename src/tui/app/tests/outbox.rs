//! No lost words: the outbox while the link is down, the retry key, an
//! oversize message kept in the input; and the small keys (Ctrl-L, mouse
//! capture), status expiry, a message to yourself, the takeover notice.

use super::*;
use crate::tui::keymap::Action;

fn link(app: &mut App, state: ConnectionState, reason: ConnectionChangeReason) -> Vec<Command> {
    app.update(Event::Rtm(ClientEvent::ConnectionStateChanged {
        state,
        reason,
    }))
}

fn deliveries(app: &App, conv: &ConvId) -> Vec<(String, Delivery)> {
    app.conversation(conv)
        .unwrap()
        .entries
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Message { text, delivery, .. } => Some((text.clone(), *delivery)),
            _ => None,
        })
        .collect()
}

fn sends(out: &[Command]) -> Vec<(String, u64)> {
    out.iter()
        .filter_map(|c| match c {
            Command::SendPeer { text, id, .. } | Command::SendChannel { text, id, .. } => {
                Some((text.clone(), *id))
            }
            _ => None,
        })
        .collect()
}

/// Typed while reconnecting: shown as queued (once "(not sent)" and
/// dropped), sent in order when the link is back, and marked sent.
#[test]
fn text_typed_while_reconnecting_waits_in_the_outbox_and_goes_out_in_order() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice", "bob"]);
    let general = ConvId::Channel(ch("general"));
    // One message is on its way when the link drops.
    assert_eq!(
        sends(&type_line(&mut app, "first")),
        vec![("first".into(), 1)]
    );
    link(
        &mut app,
        ConnectionState::Reconnecting,
        ConnectionChangeReason::Interrupted,
    );
    assert!(sends(&type_line(&mut app, "second")).is_empty());
    assert!(sends(&type_line(&mut app, "third")).is_empty());
    assert!(app.status().unwrap().text.contains("2 messages queued"));
    // The SDK gives up on the first after its timeout: back to the outbox, first in line.
    app.update(Event::CommandResult(CommandResult::ChannelMessageSent {
        channel: ch("general"),
        id: 1,
        result: Err(RtmError::Timeout(10)),
    }));
    assert_eq!(
        deliveries(&app, &general),
        vec![
            ("first".into(), Delivery::Queued(1)),
            ("second".into(), Delivery::Queued(2)),
            ("third".into(), Delivery::Queued(3)),
        ]
    );
    assert!(screen_text(&app).contains("third (queued)"));
    assert!(screen_text(&app).contains("RECONNECTING…  alice  3 queued"));
    let out = link(
        &mut app,
        ConnectionState::Connected,
        ConnectionChangeReason::LoginSuccess,
    );
    assert_eq!(
        sends(&out),
        vec![
            ("first".into(), 1),
            ("second".into(), 2),
            ("third".into(), 3)
        ]
    );
    assert!(app.outbox.is_empty());
    for id in 1..=3 {
        app.update(Event::CommandResult(CommandResult::ChannelMessageSent {
            channel: ch("general"),
            id,
            result: Ok(NOW + id),
        }));
    }
    assert!(
        deliveries(&app, &general)
            .iter()
            .all(|(_, d)| *d == Delivery::Sent)
    );
    assert!(!screen_text(&app).contains("(queued)"));
}

/// A refusal (not a dropped link) marks the message unsent; the retry key
/// sends it again under the same id; the key is in the help.
#[test]
fn a_refused_message_is_marked_and_the_retry_key_sends_it_again() {
    let mut app = logged_in(options(None));
    let bob = ConvId::Peer(uid("bob"));
    type_line(&mut app, "/msg bob are you there");
    app.update(Event::CommandResult(CommandResult::PeerMessageSent {
        peer: uid("bob"),
        id: 1,
        result: Err(server_error(ErrorKind::TooOften, "too many messages")),
    }));
    assert_eq!(
        deliveries(&app, &bob),
        vec![("are you there".into(), Delivery::Unsent(1))]
    );
    assert!(status_error(&app).contains("Ctrl-R sends it again"));
    assert!(screen_text(&app).contains("are you there (not sent)"));
    let out = app.update(ctrl('r'));
    assert_eq!(sends(&out), vec![("are you there".into(), 1)]);
    assert_eq!(
        deliveries(&app, &bob),
        vec![("are you there".into(), Delivery::Sending(1))]
    );
    // Nothing left to retry.
    assert!(sends(&app.update(ctrl('r'))).is_empty());
    // Rebindable, and the help lists it.
    assert!(
        app.keymap()
            .rows()
            .iter()
            .any(|b| b.action == Action::RetryFailed && b.keys_label() == "Ctrl-R")
    );
    app.update(key(KeyCode::F(1)));
    assert!(screen_text(&app).contains("unsent messages again"));
}

/// The session ends (another login) with messages queued: they are marked
/// unsent (and recorded so in the history at quit), not silently dropped.
#[test]
fn queued_messages_are_marked_unsent_when_the_session_ends_or_at_quit() {
    let mut app = logged_in(options(None));
    type_line(&mut app, "/msg bob hello");
    link(
        &mut app,
        ConnectionState::Reconnecting,
        ConnectionChangeReason::Interrupted,
    );
    type_line(&mut app, "still there?");
    link(
        &mut app,
        ConnectionState::Aborted,
        ConnectionChangeReason::RemoteLogin,
    );
    let bob = ConvId::Peer(uid("bob"));
    assert_eq!(
        deliveries(&app, &bob)[1],
        ("still there?".into(), Delivery::Unsent(2))
    );
    let status = status_error(&app);
    assert!(
        status.contains("logged in somewhere else") && status.contains("1 queued message not sent"),
        "{status}"
    );
    // Nothing more can be sent in an ended session: the text stays in the input.
    let out = type_line(&mut app, "anyone?");
    assert!(sends(&out).is_empty());
    assert_eq!(app.input_text(), "anyone?");
    assert!(status_error(&app).contains("the session has ended"));

    let mut app = logged_in(history_on());
    type_line(&mut app, "/msg bob hi");
    link(
        &mut app,
        ConnectionState::Reconnecting,
        ConnectionChangeReason::Interrupted,
    );
    type_line(&mut app, "queued at quit");
    let out = app.update(ctrl('c'));
    let pos = |f: &dyn Fn(&Command) -> bool| out.iter().position(f);
    let recorded = pos(&|c| {
        matches!(
            c,
            Command::RecordHistory(crate::tui::history::HistoryRecord::Delivery {
                id: 2,
                delivery: Delivery::Unsent(2),
                ..
            })
        )
    });
    let quit = pos(&|c| *c == Command::Quit);
    assert!(recorded.is_some() && recorded < quit, "{out:?}");
}

/// Over 32 KB: the text stays in the input with the error, nothing goes
/// into the conversation.
#[test]
fn an_oversize_message_stays_in_the_input_with_the_error() {
    let mut app = logged_in(options(None));
    type_line(&mut app, "/msg bob hi");
    let big = "x".repeat(40 * 1024) + "\nlast line";
    app.update(Event::Paste(big.clone()));
    let out = app.update(key(KeyCode::Enter));
    assert!(sends(&out).is_empty(), "{out:?}");
    assert_eq!(app.input_text(), big);
    assert!(status_error(&app).contains("over the limit of 32768 bytes"));
    assert_eq!(deliveries(&app, &ConvId::Peer(uid("bob"))).len(), 1);
}

/// `/watch dave` typed with the conversation pane (or a list) focused runs
/// the command; it used to become a search for "watch dave".
#[test]
fn a_slash_command_typed_in_a_pane_reaches_the_command_line() {
    let mut app = logged_in(options(None));
    app.update(peer_message("bob", "hello", NOW, false));
    for pane in [Focus::Conversation, Focus::Peers] {
        while app.focus() != pane {
            app.update(key(KeyCode::Tab));
        }
        let out = type_line(&mut app, "/watch dave");
        assert!(app.search_state().is_none());
        assert!(
            out.contains(&Command::Subscribe(vec![uid("dave")])),
            "{pane:?}: {out:?}"
        );
    }
    // And a message may start with '?'.
    let out = type_line(&mut app, "?! what");
    assert_eq!(sends(&out), vec![("?! what".into(), 1)]);
}

static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(NOW);

#[test]
fn status_answers_and_errors_fade() {
    let mut app = logged_in(options(None));
    app.set_clock(|| CLOCK.load(std::sync::atomic::Ordering::SeqCst));
    type_line(&mut app, "/join general");
    assert_eq!(app.status().unwrap().kind, StatusKind::Info);
    CLOCK.store(
        NOW + super::super::NOTE_TTL_MS,
        std::sync::atomic::Ordering::SeqCst,
    );
    app.update(Event::Tick);
    assert!(
        app.status().is_none(),
        "an answer fades after a few seconds"
    );
    type_line(&mut app, "/leave nowhere");
    assert_eq!(app.status().unwrap().kind, StatusKind::Error);
    CLOCK.store(
        NOW + 2 * super::super::NOTE_TTL_MS,
        std::sync::atomic::Ordering::SeqCst,
    );
    app.update(Event::Tick);
    assert!(app.status().is_some(), "an error stays longer");
    CLOCK.store(
        NOW + super::super::NOTE_TTL_MS + super::super::ERROR_TTL_MS,
        std::sync::atomic::Ordering::SeqCst,
    );
    app.update(Event::Tick);
    assert!(app.status().is_none());
}

#[test]
fn a_message_to_yourself_shows_once() {
    let mut app = logged_in(options(None));
    type_line(&mut app, "/msg alice note to self");
    app.update(peer_message("alice", "note to self", NOW, false));
    let me = ConvId::Peer(uid("alice"));
    assert_eq!(deliveries(&app, &me).len(), 1);
    assert_eq!(app.conversation(&me).unwrap().unread, 0);
}

#[test]
fn ctrl_l_redraws_and_the_mouse_key_switches_capture() {
    let mut app = logged_in(options(None));
    assert_eq!(app.update(ctrl('l')), vec![Command::Redraw]);
    assert!(app.mouse_capture());
    assert_eq!(
        app.update(alt(KeyCode::Char('m'))),
        vec![Command::SetMouseCapture(false)]
    );
    assert!(app.status().unwrap().text.contains("mouse capture off"));
    assert_eq!(
        app.update(alt(KeyCode::Char('m'))),
        vec![Command::SetMouseCapture(true)]
    );
    // `mouse = false` in client.toml starts with it off.
    let mut opts = options(None);
    opts.settings.mouse = false;
    assert!(!logged_in(opts).mouse_capture());
}

#[test]
fn taking_over_the_embedded_server_is_said() {
    let mut app = logged_in(options(None));
    type_line(&mut app, "/msg bob hi");
    app.update(Event::NowHosting {
        addr: "127.0.0.1:7420".into(),
        kept_data: true,
    });
    let text = &app.status().unwrap().text;
    assert!(
        text.contains("this one hosts it now on 127.0.0.1:7420"),
        "{text}"
    );
    assert!(text.contains("kept"), "{text}");
    assert!(screen_text(&app).contains("this one hosts it now"));
    assert_eq!(
        app.embedded_server.as_deref(),
        Some("hosting the server on 127.0.0.1:7420")
    );
    app.update(Event::NowHosting {
        addr: "127.0.0.1:7420".into(),
        kept_data: false,
    });
    assert!(app.status().unwrap().text.contains("start empty"));
}
