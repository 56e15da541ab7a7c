//! Sending messages and their delivery.

use super::*;

#[test]
fn typing_and_enter_sends_to_the_open_peer() {
    let mut app = logged_in(options(None));
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
    let mut app = logged_in(options(None));
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
            delivery: Delivery::Unsent(1),
            ..
        }
    )));
}

#[test]
fn msg_command_opens_the_conversation_and_sends() {
    let mut app = logged_in(options(None));
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
    let mut app = logged_in(options(None));
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
    let mut app = logged_in(options(None));
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    assert!(
        app.update(Event::Paste("line one\nline two".into()))
            .is_empty()
    );
    assert_eq!(app.input_text(), "line one\nline two");
    let out = app.update(key(KeyCode::Enter));
    assert!(matches!(&out[..], [Command::SendPeer { text, .. }] if text == "line one\nline two"));
}
