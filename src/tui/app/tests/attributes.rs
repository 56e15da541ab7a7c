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
    // e: the command that rewrites it, whole value included, ready to edit.
    app.update(char_key('e'));
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
    assert_eq!(app.input_text(), "/cattr put #general ");
    // In other lists the same keys are just typing.
    app.update(key(KeyCode::Esc));
    let mut app = logged_in(options(None));
    app.update(key(KeyCode::BackTab));
    assert_ne!(app.focus(), Focus::Attributes);
    app.update(char_key('e'));
    assert_eq!(app.input_text(), "e");
}
