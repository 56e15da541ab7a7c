//! Editing attributes from the Attributes pane.

use super::*;

#[test]
fn attributes_pane_keys_edit_add_and_delete_with_confirmation() {
    let mut app = logged_in(options(None));
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
    // F2: the command that rewrites it, whole value included, ready to edit.
    app.update(key(KeyCode::F(2)));
    assert_eq!(app.focus(), Focus::Input);
    assert_eq!(
        app.input_text(),
        r#"/cattr put #general "topic=launch day""#
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
    // Delete asks first; any other key keeps it (and a letter still types).
    focus_attributes(&mut app);
    app.update(key(KeyCode::Delete));
    assert!(app.status().unwrap().text.contains("y or Enter deletes"));
    assert!(app.update(char_key('n')).is_empty());
    assert_eq!(app.status().unwrap().text, "kept");
    assert_eq!((app.focus(), app.input_text()), (Focus::Input, "n"));
    app.update(ctrl('u'));
    focus_attributes(&mut app);
    app.update(key(KeyCode::Delete));
    let out = app.update(char_key('y'));
    assert_eq!(
        out,
        vec![Command::ChannelAttrWrite {
            channel: ch("general"),
            op: AttrWrite::Delete(vec!["topic".into()]),
            notify: true,
        }]
    );
    // Insert: an add command for the open channel (members are told by default).
    focus_attributes(&mut app);
    app.update(key(KeyCode::Insert));
    assert_eq!(app.input_text(), "/cattr put #general ");
    // In other lists the same keys are just typing.
    app.update(key(KeyCode::Esc));
    let mut app = logged_in(options(None));
    app.update(key(KeyCode::BackTab));
    assert_ne!(app.focus(), Focus::Attributes);
    app.update(char_key('e'));
    assert_eq!(app.input_text(), "e");
}

fn with_topic(app: &mut App) {
    app.update(Event::CommandResult(CommandResult::ChannelAttributes {
        channel: ch("general"),
        keys: None,
        explicit: false,
        result: Ok(vec![ChannelAttribute {
            key: "topic".into(),
            value: "launch".into(),
            last_update_user_id: uid("bob"),
            last_update_ts: NOW,
        }]),
    }));
}

/// Typing "dynamite" with the Attributes pane focused and an attribute
/// selected once deleted it ("d" asked, "y" confirmed). Letters are text.
#[test]
fn typing_in_the_attributes_pane_goes_to_the_input_and_deletes_nothing() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice", "bob"]);
    with_topic(&mut app);
    focus_attributes(&mut app);
    app.update(key(KeyCode::Down));
    assert!(app.attrs_list.selected().is_some());
    let mut out = Vec::new();
    for c in "dynamite ?/e a".chars() {
        out.extend(app.update(char_key(c)));
    }
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(app.input_text(), "dynamite ?/e a");
    assert!(!app.help_open());
    assert_eq!(app.channel(&ch("general")).unwrap().attributes.len(), 1);
}

/// Esc while editing an attribute puts back what the input held; nothing is sent.
#[test]
fn esc_cancels_an_attribute_edit() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice"]);
    with_topic(&mut app);
    for c in "half a thought".chars() {
        app.update(char_key(c));
    }
    // Tab completes while the input holds text; Shift-Tab moves.
    while app.focus() != Focus::Attributes {
        app.update(Event::Key(KeyEvent::new(
            KeyCode::BackTab,
            KeyModifiers::SHIFT,
        )));
    }
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Enter));
    assert!(app.input_text().starts_with("/cattr put #general"));
    assert!(app.update(key(KeyCode::Esc)).is_empty());
    assert_eq!(app.input_text(), "half a thought");
    assert!(app.status().unwrap().text.contains("cancelled"));
    // Enter now sends the text, not the edit.
    let out = app.update(key(KeyCode::Enter));
    assert!(
        out.iter()
            .any(|c| matches!(c, Command::SendChannel { text, .. } if text == "half a thought")),
        "{out:?}"
    );
}
