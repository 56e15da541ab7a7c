//! Files and images: /file and /image (parsing, errors, the upload's
//! progress line, Esc), the file's line once sent and when it arrives, and
//! /save (which file, where, and its outcome).

use std::path::PathBuf;

use super::*;
use crate::client::MediaType;
use crate::tui::conversation::TransferLine;

/// alice in a direct conversation with bob; `~` is /home/alice.
fn with_bob() -> App {
    let mut app = logged_in(options(None));
    app.set_home(Some(PathBuf::from("/home/alice")));
    type_line(&mut app, "/msg bob hi");
    app
}

fn uploads(out: &[Command]) -> Vec<(u64, PathBuf, String, MediaType)> {
    out.iter()
        .filter_map(|c| match c {
            Command::Upload {
                id,
                path,
                typed,
                kind,
            } => Some((*id, path.clone(), typed.clone(), *kind)),
            _ => None,
        })
        .collect()
}

fn transfer_line(app: &App, id: u64) -> Option<TransferLine> {
    app.conversations.values().find_map(|c| {
        c.entries.iter().find_map(|e| match &e.kind {
            EntryKind::Transfer(t) if t.id == id => Some(t.clone()),
            _ => None,
        })
    })
}

fn progress(id: u64, current: u64, total: u64) -> Event {
    Event::CommandResult(CommandResult::TransferProgress { id, current, total })
}

/// `/file <typed>` in the open conversation: the upload's id.
fn send_file(app: &mut App, typed: &str) -> u64 {
    let out = type_line(app, &format!("/file {typed}"));
    let up = uploads(&out);
    assert_eq!(up.len(), 1, "{out:?}");
    up[0].0
}

#[test]
fn file_and_image_take_the_path_as_typed_with_the_home_expanded() {
    let mut app = with_bob();
    let out = type_line(&mut app, "/file ~/docs/report 2026.pdf");
    let [(id, path, typed, kind)] = uploads(&out).try_into().unwrap();
    assert_eq!(path, PathBuf::from("/home/alice/docs/report 2026.pdf"));
    assert_eq!(typed, "~/docs/report 2026.pdf");
    assert_eq!(kind, MediaType::File);
    let line = transfer_line(&app, id).expect("a progress line");
    assert!(line.upload && line.file_name == "report 2026.pdf" && line.current == 0);
    assert_eq!(app.transfers().len(), 1);

    let out = type_line(&mut app, "/image pics/cat.png");
    let [(_, path, _, kind)] = uploads(&out).try_into().unwrap();
    assert_eq!(path, PathBuf::from("pics/cat.png"));
    assert_eq!(kind, MediaType::Image);
}

#[test]
fn file_errors_are_worded_for_people() {
    let mut app = logged_in(options(None));
    let out = type_line(&mut app, "/file a.pdf");
    assert!(uploads(&out).is_empty());
    assert!(
        status_error(&app).contains("no conversation is open"),
        "{}",
        status_error(&app)
    );
    // The line stays, to fix it rather than retype it.
    assert_eq!(app.input_text(), "/file a.pdf");

    let mut app = with_bob();
    type_line(&mut app, "/file");
    assert_eq!(
        status_error(&app),
        "/file: say which file. Usage: /file <path>"
    );
    app.update(ctrl('u'));

    // The checks that need the disk come back from the executor, and the
    // progress line turns into the reason.
    let id = send_file(&mut app, "nope.pdf");
    app.update(Event::CommandResult(CommandResult::Uploaded {
        id,
        result: Err("no such file: nope.pdf".into()),
    }));
    assert_eq!(
        status_error(&app),
        "could not send nope.pdf: no such file: nope.pdf"
    );
    assert!(transfer_line(&app, id).is_none());
    assert!(app.transfers().is_empty());
    assert!(
        conversation_text(&app)
            .iter()
            .any(|l| l.ends_with("could not send nope.pdf: no such file: nope.pdf")),
        "{:?}",
        conversation_text(&app)
    );

    // Not connected: a file is not queued.
    app.update(Event::Rtm(ClientEvent::ConnectionStateChanged {
        state: ConnectionState::Reconnecting,
        reason: ConnectionChangeReason::Interrupted,
    }));
    let out = type_line(&mut app, "/file a.pdf");
    assert!(uploads(&out).is_empty());
    assert!(status_error(&app).contains("not connected"));
}

#[test]
fn a_file_to_a_channel_needs_membership() {
    let mut app = logged_in(options(None));
    join(&mut app, "general", &["alice", "bob"]);
    let id = send_file(&mut app, "notes.txt");
    assert!(matches!(
        &app.transfers()[&id].conv,
        ConvId::Channel(c) if *c == ch("general")
    ));
}

#[test]
fn progress_fills_the_bar_and_the_upload_becomes_the_file_line() {
    let mut app = with_bob();
    let id = send_file(&mut app, "report.pdf");
    app.update(progress(id, 512 * 1024, 1024 * 1024));
    let line = transfer_line(&app, id).unwrap();
    assert_eq!((line.current, line.total), (512 * 1024, 1024 * 1024));
    let text = conversation_text(&app).join("\n");
    assert!(
        text.contains(
            "↑ sending report.pdf ████████░░░░░░░░  50% · 512 KB of 1.0 MB · Esc cancels"
        ),
        "{text}"
    );

    let message = file_message("report.pdf", 1024 * 1024, 7);
    let out = app.update(Event::CommandResult(CommandResult::Uploaded {
        id,
        result: Ok(message.clone()),
    }));
    assert!(
        out.contains(&Command::SendMedia {
            conv: ConvId::Peer(uid("bob")),
            message,
            id
        }),
        "{out:?}"
    );
    assert!(app.transfers().is_empty());
    let last = bob_conv(&app).entries.last().unwrap();
    assert!(matches!(
        &last.kind,
        EntryKind::Message { media: Some(m), delivery: Delivery::Sending(i), .. }
            if m.file_name == "report.pdf" && *i == id
    ));
    app.update(Event::CommandResult(CommandResult::PeerMessageSent {
        peer: uid("bob"),
        id,
        result: Ok(PeerMessageSendResult {
            has_peer_received: true,
            cached: false,
            server_received_ts: NOW,
        }),
    }));
    let text = conversation_text(&app).join("\n");
    assert!(text.contains("alice: ▤ report.pdf · 1.0 MB"), "{text}");
    assert!(!text.contains("sending report.pdf"), "{text}");
}

#[test]
fn esc_in_an_empty_input_cancels_the_newest_transfer_of_the_open_conversation() {
    let mut app = with_bob();
    let first = send_file(&mut app, "a.bin");
    let second = send_file(&mut app, "b.bin");
    // With text in the input, Esc never touches a transfer.
    for c in "draft".chars() {
        app.update(key(KeyCode::Char(c)));
    }
    let out = app.update(key(KeyCode::Esc));
    assert!(!out.iter().any(|c| matches!(c, Command::CancelTransfer(_))));
    for _ in 0..5 {
        app.update(key(KeyCode::Backspace));
    }
    let out = app.update(key(KeyCode::Esc));
    assert_eq!(out, vec![Command::CancelTransfer(second)]);
    assert!(transfer_line(&app, second).unwrap().canceling);
    assert!(conversation_text(&app).join("\n").contains("b.bin"));
    // The next Esc takes the one before.
    let out = app.update(key(KeyCode::Esc));
    assert_eq!(out, vec![Command::CancelTransfer(first)]);
    // None left: Esc does what it always did.
    let out = app.update(key(KeyCode::Esc));
    assert!(out.is_empty());

    app.update(Event::CommandResult(CommandResult::Uploaded {
        id: second,
        result: Err("the transfer was canceled; nothing was kept".into()),
    }));
    assert!(app.status().is_none_or(|s| s.kind != StatusKind::Error));
    let text = conversation_text(&app).join("\n");
    assert!(text.contains("sending b.bin canceled"), "{text}");

    // Another conversation's transfer is not this one's to cancel.
    type_line(&mut app, "/msg carol hello");
    let out = app.update(key(KeyCode::Esc));
    assert!(!out.iter().any(|c| matches!(c, Command::CancelTransfer(_))));
}

fn downloads(out: &[Command]) -> Vec<(u64, String, String, Option<PathBuf>)> {
    out.iter()
        .filter_map(|c| match c {
            Command::Download {
                id,
                media_id,
                file_name,
                dest,
            } => Some((*id, media_id.clone(), file_name.clone(), dest.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn incoming_files_show_name_size_and_sender() {
    let mut app = with_bob();
    app.update(peer_rtm_message(
        "bob",
        file_message("report.pdf", 2_726_298, 1),
        NOW,
    ));
    let text = conversation_text(&app).join("\n");
    assert!(text.contains("bob: ▤ report.pdf · 2.6 MB"), "{text}");
    // Searches find it by name.
    assert_eq!(bob_conv(&app).search("report"), vec![1]);
    app.update(peer_rtm_message(
        "bob",
        image_message("cat.png", 640, 480, 2),
        NOW,
    ));
    let text = conversation_text(&app).join("\n");
    assert!(text.contains("bob: ▨ cat.png · 300 KB · 640×480"), "{text}");
    // The preview: rows of half-blocks under the line.
    assert!(text.matches("▀▀▀▀▀▀▀▀").count() >= 4, "{text}");
}

#[test]
fn save_takes_the_newest_file_or_the_search_hit() {
    let mut app = with_bob();
    type_line(&mut app, "/save");
    assert!(status_error(&app).contains("no file in bob to save"));
    app.update(ctrl('u'));
    app.update(peer_rtm_message("bob", file_message("old.pdf", 10, 1), NOW));
    app.update(peer_message("bob", "and the new one:", NOW, false));
    app.update(peer_rtm_message("bob", file_message("new.pdf", 20, 2), NOW));

    let out = type_line(&mut app, "/save");
    let [(id, media, name, dest)] = downloads(&out).try_into().unwrap();
    assert_eq!(
        (media.as_str(), name.as_str(), dest),
        (media_id(2).as_str(), "new.pdf", None)
    );
    let text = conversation_text(&app).join("\n");
    assert!(text.contains("↓ saving new.pdf"), "{text}");
    app.update(progress(id, 10, 20));
    assert_eq!(transfer_line(&app, id).unwrap().current, 10);
    app.update(Event::CommandResult(CommandResult::Saved {
        id,
        result: Ok(PathBuf::from("/home/alice/Downloads/new (1).pdf")),
    }));
    assert_eq!(
        app.status().map(|s| s.text.as_str()),
        Some("saved to /home/alice/Downloads/new (1).pdf")
    );
    assert!(
        conversation_text(&app)
            .join("\n")
            .contains("saved new.pdf to /home/alice/Downloads/new (1).pdf")
    );

    // A search hit on a file picks that one; the destination's ~ expands.
    type_line(&mut app, "/search old.pdf");
    app.update(Event::Paste("/save ~/Desktop".into()));
    let out = app.update(key(KeyCode::Enter));
    let [(_, media, name, dest)] = downloads(&out).try_into().unwrap();
    assert_eq!((media, name), (media_id(1), "old.pdf".to_string()));
    assert_eq!(dest, Some(PathBuf::from("/home/alice/Desktop")));
}

#[test]
fn a_failed_save_says_why() {
    let mut app = with_bob();
    app.update(peer_rtm_message("bob", file_message("a.pdf", 10, 1), NOW));
    let out = type_line(&mut app, "/save /nope/x.pdf");
    let [(id, ..)] = downloads(&out).try_into().unwrap();
    app.update(Event::CommandResult(CommandResult::Saved {
        id,
        result: Err("cannot save there: no folder /nope".into()),
    }));
    assert_eq!(
        status_error(&app),
        "could not save a.pdf: cannot save there: no folder /nope"
    );
}
