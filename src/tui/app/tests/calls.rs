//! Call invitations: /call and its errors, the ringing banner and its
//! countdown, the answer keys and commands, and the line each call leaves.

use std::cell::Cell;

use super::*;
use crate::client::{
    LocalInvitationEvent, LocalInvitationFailureReason, RemoteInvitationEvent,
    RemoteInvitationFailureReason,
};
use crate::tui::app::{CALL_GRACE_MS, Dialing};
use crate::tui::notify::NotifyPolicy;

thread_local! {
    /// The app's clock here: per thread, because tests run in parallel.
    static CLOCK: Cell<u64> = const { Cell::new(NOW) };
}

fn clock() -> u64 {
    CLOCK.with(Cell::get)
}

/// alice logged in, with a clock these tests move.
fn session() -> App {
    CLOCK.with(|c| c.set(NOW));
    let mut app = logged_in(options(None));
    app.set_clock(clock);
    app
}

fn later(ms: u64) {
    CLOCK.with(|c| c.set(c.get() + ms));
}

/// The call lines of the direct conversation with `peer`.
fn call_lines(app: &App, peer: &str) -> Vec<String> {
    app.conversation(&ConvId::Peer(uid(peer)))
        .map(|c| {
            c.entries
                .iter()
                .filter_map(|e| match &e.kind {
                    EntryKind::Call(t) => Some(t.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn answer(caller: &str, id: u64, accept: bool, response: &str) -> Command {
    Command::AnswerCall {
        caller: uid(caller),
        id,
        accept,
        response: response.into(),
    }
}

/// Rings bob as `/call bob <content>` does; the app's id of the call.
fn call_bob(app: &mut App, content: &str) -> u64 {
    let line = if content.is_empty() {
        "/call bob".to_string()
    } else {
        format!("/call bob {content}")
    };
    let out = type_line(app, &line);
    let Some(Command::Call {
        call,
        callee,
        content: sent,
    }) = out.iter().find(|c| matches!(c, Command::Call { .. }))
    else {
        panic!("no Call command in {out:?}");
    };
    assert_eq!((callee, sent.as_str()), (&uid("bob"), content));
    *call
}

#[test]
fn an_incoming_call_shows_a_banner_with_a_countdown_and_rings() {
    let mut app = session();
    let out = app.update(incoming_call("bob", 7, "lunch?"));
    let call = app.banner_call().expect("the call is in the banner");
    assert_eq!((call.caller.as_str(), call.id), ("bob", 7));
    assert_eq!(app.seconds_left(call), 60);
    // The bell rings (the default settings), like for a direct message.
    let n = notifications(&out);
    assert_eq!(n.len(), 1, "{out:?}");
    assert!(n[0].bell && n[0].title.contains("bob is calling"), "{n:?}");
    assert_eq!(n[0].body, "lunch?");
    let screen = screen_text(&app);
    assert!(screen.contains("☎ bob is calling · 60 s"), "{screen}");
    assert!(screen.contains("lunch?"), "{screen}");
    assert!(
        screen.contains("Ctrl-Y accept · Ctrl-X refuse · /accept [text] · /refuse [text]"),
        "{screen}"
    );
    // The countdown redraws as its second changes, not on every tick.
    app.take_dirty();
    later(15_200);
    app.update(Event::Tick);
    assert!(app.take_dirty(), "a new second is drawn");
    assert!(screen_text(&app).contains("bob is calling · 45 s"));
    later(300);
    app.update(Event::Tick);
    assert!(!app.take_dirty(), "the same second is not drawn again");
    // The last part of a second still counts as a second.
    later(44_400);
    app.update(Event::Tick);
    assert!(screen_text(&app).contains("bob is calling · 1 s"));
}

#[test]
fn a_call_rings_only_as_the_notification_settings_allow() {
    let mut app = session();
    type_line(&mut app, "/mute bob");
    let out = app.update(incoming_call("bob", 1, ""));
    assert!(notifications(&out).is_empty(), "muted: {out:?}");
    // The banner shows anyway: a muted caller can still be answered.
    assert!(app.banner_call().is_some());

    let mut quiet = session();
    quiet.notify = NotifyPolicy {
        bell: false,
        ..NotifyPolicy::default()
    };
    let out = quiet.update(incoming_call("carol", 1, ""));
    assert!(
        notifications(&out).is_empty(),
        "no bell, no desktop: {out:?}"
    );
}

#[test]
fn the_accept_and_refuse_keys_answer_the_call_in_the_banner() {
    let mut app = session();
    app.update(incoming_call("bob", 7, "lunch?"));
    let out = app.update(ctrl('y'));
    assert_eq!(out, vec![answer("bob", 7, true, "")]);
    // Answered: the banner goes while the answer is on its way.
    assert!(app.banner_call().is_none());
    assert!(!screen_text(&app).contains("is calling"));
    app.update(incoming_call_event(
        "bob",
        7,
        Some(""),
        RemoteInvitationEvent::Accepted,
    ));
    assert!(app.incoming_calls().is_empty());
    assert_eq!(call_lines(&app, "bob"), ["bob called (lunch?) — accepted"]);
    // Accepting turns to the caller.
    assert_eq!(app.selected(), Some(&ConvId::Peer(uid("bob"))));

    app.update(incoming_call("carol", 3, ""));
    let out = app.update(ctrl('x'));
    assert_eq!(out, vec![answer("carol", 3, false, "")]);
    app.update(incoming_call_event(
        "carol",
        3,
        Some(""),
        RemoteInvitationEvent::Refused,
    ));
    assert_eq!(call_lines(&app, "carol"), ["carol called — refused"]);
}

#[test]
fn the_answer_keys_work_over_the_help_and_while_searching() {
    let mut app = session();
    app.update(key(KeyCode::F(1)));
    assert!(app.help_open());
    app.update(incoming_call("bob", 7, ""));
    // Drawn over the help.
    assert!(screen_text(&app).contains("bob is calling"));
    assert_eq!(app.update(ctrl('y')), vec![answer("bob", 7, true, "")]);

    let mut app = session();
    app.update(ctrl('f'));
    app.update(incoming_call("bob", 8, ""));
    assert_eq!(app.update(ctrl('x')), vec![answer("bob", 8, false, "")]);
}

#[test]
fn accept_and_refuse_commands_send_the_response_and_name_the_caller_when_several_ring() {
    let mut app = session();
    let out = type_line(&mut app, "/accept sure");
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(status_error(&app), "/accept: no call is ringing");
    app.update(ctrl('u'));

    app.update(incoming_call("bob", 7, "lunch?"));
    // One call: the whole line is the response, even when it starts
    // with a word that is not the caller.
    let out = type_line(&mut app, "/accept sure, 5 min");
    assert_eq!(out, vec![answer("bob", 7, true, "sure, 5 min")]);

    app.update(incoming_call("carol", 1, ""));
    app.update(incoming_call("dave", 2, ""));
    let out = type_line(&mut app, "/refuse busy");
    assert!(out.is_empty(), "{out:?}");
    let e = status_error(&app);
    assert!(
        e.contains("2 calls ring (carol, dave)") && e.contains("/refuse dave [response]"),
        "{e}"
    );
    // The line stays, to fix.
    assert_eq!(app.input_text(), "/refuse busy");
    app.update(ctrl('u'));
    let out = type_line(&mut app, "/refuse carol busy, later");
    assert_eq!(out, vec![answer("carol", 1, false, "busy, later")]);
    // Naming the caller alone answers without words.
    let out = type_line(&mut app, "/accept dave");
    assert_eq!(out, vec![answer("dave", 2, true, "")]);
}

#[test]
fn an_answer_that_did_not_get_through_says_why_and_a_refusal_rings_again() {
    let mut app = session();
    app.update(incoming_call("bob", 7, ""));
    type_line(&mut app, "/refuse no");
    assert!(app.banner_call().is_none());
    app.update(Event::CommandResult(CommandResult::CallAnswered {
        caller: uid("bob"),
        id: 7,
        accept: false,
        result: Err(RtmError::ConnectionLost),
    }));
    assert!(
        status_error(&app).starts_with("cannot refuse bob's call: the connection was lost"),
        "{}",
        status_error(&app)
    );
    assert!(app.banner_call().is_some(), "still ringing");
}

#[test]
fn a_call_out_rings_then_leaves_its_line_in_the_conversation() {
    let mut app = session();
    let call = call_bob(&mut app, "lunch?");
    assert_eq!(app.selected(), Some(&ConvId::Peer(uid("bob"))));
    assert_eq!(app.status().unwrap().text, "ringing bob…");
    assert_eq!(app.outgoing_calls()[0].state, Dialing::Sending);
    assert!(screen_text(&app).contains("☎ ringing bob… · Ctrl-X or /cancel hangs up"));
    app.update(Event::CommandResult(CommandResult::CallSent {
        call,
        callee: uid("bob"),
        result: Ok(()),
    }));
    assert_eq!(app.outgoing_calls()[0].state, Dialing::Ringing);
    app.update(outgoing_call_event(
        call,
        "bob",
        LocalInvitationEvent::ReceivedByPeer,
    ));
    assert_eq!(app.status().unwrap().text, "bob's phone rings…");
    assert!(screen_text(&app).contains("☎ bob's phone rings…"));
    app.update(outgoing_call_event(
        call,
        "bob",
        LocalInvitationEvent::Accepted {
            response: "sure".into(),
        },
    ));
    assert!(app.outgoing_calls().is_empty());
    assert_eq!(app.status().unwrap().text, "bob accepted: sure");
    assert_eq!(
        call_lines(&app, "bob"),
        ["you called bob (lunch?) — accepted: sure"]
    );
    assert!(
        conversation_text(&app)
            .iter()
            .any(|l| l.ends_with("☎ you called bob (lunch?) — accepted: sure")),
        "{:?}",
        conversation_text(&app)
    );

    let call = call_bob(&mut app, "");
    app.update(outgoing_call_event(
        call,
        "bob",
        LocalInvitationEvent::Refused {
            response: "busy".into(),
        },
    ));
    assert_eq!(call_lines(&app, "bob")[1], "you called bob — refused: busy");
}

#[test]
fn a_call_to_someone_offline_fails_in_words() {
    let mut app = session();
    let call = call_bob(&mut app, "");
    // The SDK reports it at once, maybe before the send's answer.
    app.update(outgoing_call_event(
        call,
        "bob",
        LocalInvitationEvent::Failure(LocalInvitationFailureReason::PeerOffline),
    ));
    app.update(Event::CommandResult(CommandResult::CallSent {
        call,
        callee: uid("bob"),
        result: Ok(()),
    }));
    assert!(app.outgoing_calls().is_empty());
    assert_eq!(status_error(&app), "call to bob failed: peer offline");
    assert_eq!(
        call_lines(&app, "bob"),
        ["call to bob failed: peer offline"]
    );
}

#[test]
fn call_errors_say_how_to_call() {
    let mut app = session();
    type_line(&mut app, "/call");
    let e = status_error(&app);
    assert!(
        e.contains("say who to ring: /call <uid> [text]") && e.contains("/call alone"),
        "{e}"
    );
    app.update(ctrl('u'));
    type_line(&mut app, "/call alice hi");
    assert!(status_error(&app).starts_with("you cannot call yourself"));
    app.update(ctrl('u'));
    // In a direct conversation /call alone rings its peer.
    app.open(ConvId::Peer(uid("bob")), &mut Vec::new());
    let out = type_line(&mut app, "/call");
    assert!(
        out.contains(&Command::Call {
            call: app.outgoing_calls()[0].call,
            callee: uid("bob"),
            content: String::new()
        }),
        "{out:?}"
    );
    let out = type_line(&mut app, "/call bob again");
    assert!(!out.iter().any(|c| matches!(c, Command::Call { .. })));
    assert_eq!(
        status_error(&app),
        "you are already ringing bob; /cancel bob hangs up"
    );
    app.update(ctrl('u'));
    // Refused by the server: the reason in words, and the call's line.
    let call = call_bob_as_carol(&mut app);
    app.update(Event::CommandResult(CommandResult::CallSent {
        call,
        callee: uid("carol"),
        result: Err(server_error(ErrorKind::TooOften, "too many invitations")),
    }));
    let e = status_error(&app);
    assert!(
        e.starts_with("call to carol failed: you are calling too often"),
        "{e}"
    );
    assert!(call_lines(&app, "carol")[0].contains("calling too often"));
    // Not connected: a call does not wait in an outbox.
    app.update(Event::Rtm(ClientEvent::ConnectionStateChanged {
        state: ConnectionState::Reconnecting,
        reason: ConnectionChangeReason::Interrupted,
    }));
    app.update(ctrl('u'));
    let out = type_line(&mut app, "/call dave");
    assert!(!out.iter().any(|c| matches!(c, Command::Call { .. })));
    assert!(status_error(&app).starts_with("not connected"));
}

fn call_bob_as_carol(app: &mut App) -> u64 {
    let out = type_line(app, "/call carol");
    out.iter()
        .find_map(|c| match c {
            Command::Call { call, .. } => Some(*call),
            _ => None,
        })
        .expect("a Call command")
}

#[test]
fn cancel_hangs_up_the_newest_or_the_named_call() {
    let mut app = session();
    type_line(&mut app, "/cancel");
    assert_eq!(status_error(&app), "no call of yours is ringing");
    app.update(ctrl('u'));
    let bob = call_bob(&mut app, "");
    let carol = call_bob_as_carol(&mut app);
    let out = type_line(&mut app, "/cancel bob");
    assert_eq!(
        out,
        vec![Command::CancelCall {
            call: bob,
            callee: uid("bob")
        }]
    );
    // With nothing ringing here, the hang-up key cancels our newest call.
    let out = app.update(ctrl('x'));
    assert_eq!(
        out,
        vec![Command::CancelCall {
            call: carol,
            callee: uid("carol")
        }]
    );
    app.update(outgoing_call_event(
        bob,
        "bob",
        LocalInvitationEvent::Canceled,
    ));
    assert_eq!(call_lines(&app, "bob"), ["you called bob — canceled"]);
}

#[test]
fn missed_calls_are_lines_and_count_as_unread() {
    let mut app = session();
    app.open(ConvId::Peer(uid("carol")), &mut Vec::new());
    app.update(incoming_call("bob", 1, "lunch?"));
    app.update(incoming_call_event(
        "bob",
        1,
        None,
        RemoteInvitationEvent::Canceled {
            content: "lunch?".into(),
        },
    ));
    app.update(incoming_call("bob", 2, ""));
    app.update(incoming_call_event(
        "bob",
        2,
        None,
        RemoteInvitationEvent::Failure(RemoteInvitationFailureReason::InvitationExpire),
    ));
    app.update(incoming_call("bob", 3, ""));
    app.update(incoming_call_event(
        "bob",
        3,
        None,
        RemoteInvitationEvent::Failure(RemoteInvitationFailureReason::PeerOffline),
    ));
    assert_eq!(
        call_lines(&app, "bob"),
        [
            "missed call from bob (lunch?)",
            "missed call from bob — nobody answered in time",
            "missed call from bob — caller offline",
        ]
    );
    assert_eq!(bob_conv(&app).unread, 3);
    // A missed call does not take the screen from what is open.
    assert_eq!(app.selected(), Some(&ConvId::Peer(uid("carol"))));
    assert!(app.incoming_calls().is_empty());
}

#[test]
fn a_call_the_server_never_ended_leaves_the_banner_after_its_deadline() {
    let mut app = session();
    app.update(incoming_call("bob", 1, ""));
    later(60_000 + CALL_GRACE_MS);
    app.update(Event::Tick);
    assert!(app.banner_call().is_some(), "not before the grace is over");
    later(1);
    app.update(Event::Tick);
    assert!(app.incoming_calls().is_empty());
    assert_eq!(
        call_lines(&app, "bob"),
        ["missed call from bob — nobody answered in time"]
    );
    // The server's late word on it adds nothing.
    app.update(incoming_call_event(
        "bob",
        1,
        None,
        RemoteInvitationEvent::Failure(RemoteInvitationFailureReason::InvitationExpire),
    ));
    assert_eq!(call_lines(&app, "bob").len(), 1);
}

#[test]
fn call_lines_are_kept_in_the_local_history() {
    let mut app = logged_in(history_on());
    app.update(incoming_call("bob", 1, ""));
    let out = app.update(incoming_call_event(
        "bob",
        1,
        Some("sure"),
        RemoteInvitationEvent::Accepted,
    ));
    assert_eq!(
        history_commands(&out),
        vec![&Command::RecordHistory(
            crate::tui::history::HistoryRecord::Call {
                conv: ConvId::Peer(uid("bob")),
                ts: NOW,
                caller: uid("bob"),
                text: "bob called — accepted: sure".into(),
                outgoing: false,
            }
        )]
    );
}
