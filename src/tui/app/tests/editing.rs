//! The input line: completion, input history, multi-line messages.

use super::*;

#[test]
fn tab_completes_commands_channels_and_peers_and_cycles() {
    let mut app = logged_in(options(None));
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
    let mut app = logged_in(options(None));
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
    let mut app = logged_in(options(None));
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
