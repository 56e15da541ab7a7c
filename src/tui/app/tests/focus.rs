//! Focus between panes and opening from the lists.

use super::*;

#[test]
fn tab_and_backtab_cycle_through_visible_panes() {
    let mut app = logged_in(options(None));
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
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice", "bob"]);
    app.update(peer_message("carol", "hi", NOW - MINUTE, false));
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
