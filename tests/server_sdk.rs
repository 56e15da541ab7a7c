//! The server and the SDK together, over real WebSocket connections on
//! loopback: login, kicks, peer messages, limits, bad input, reconnection.

mod common;

use std::time::Duration;

use common::*;
use rtm::client::{
    ClientEvent, ConnectionChangeReason, ConnectionState, RtmClient, RtmMessage, SendMessageOptions,
};
use rtm::protocol::{ErrorKind, Event, Reply, ServerFrame};

#[tokio::test]
async fn login_and_logout() {
    let server = start_server().await;
    let (alice, mut events) = RtmClient::new(server.url(), fast_client_config());
    assert_eq!(alice.connection_state(), ConnectionState::Disconnected);
    let info = alice.login("alice", None).await.unwrap();
    assert_eq!(info.uid.as_str(), "alice");
    assert!(info.dev_mode);
    assert_eq!(
        wait_state(&mut events, ConnectionState::Connecting).await,
        ConnectionChangeReason::Login
    );
    assert_eq!(
        wait_state(&mut events, ConnectionState::Connected).await,
        ConnectionChangeReason::LoginSuccess
    );
    assert_eq!(server.hub.user_count(), 1);
    alice.logout().await.unwrap();
    assert_eq!(
        wait_state(&mut events, ConnectionState::Disconnected).await,
        ConnectionChangeReason::Logout
    );
    // The server forgets the user at once (no grace after an explicit logout).
    tokio::time::timeout(WAIT, async {
        while server.hub.user_count() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    // Operations now fail fast.
    let err = alice
        .send_message_to_peer(RtmMessage::text("hi"), "bob", SendMessageOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLoggedIn);
    // And a new login works.
    alice.login("alice", None).await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_uid_is_rejected_by_sdk_and_server_naming_the_problem() {
    let server = start_server().await;
    let (c, _events) = RtmClient::new(server.url(), fast_client_config());
    let err = c.login("bad*uid", None).await.unwrap_err();
    // The SDK's own check names the kind as the reference does.
    assert_eq!(err.kind(), ErrorKind::InvalidUserId);
    assert!(err.to_string().contains("'*'"), "{err}");
    // The server never trusts the client: the same check on the wire.
    let mut ws = raw_connect(&server.url()).await;
    raw_send(
        &mut ws,
        r#"{"id":9,"type":"login","protocol":1,"uid":"bad*uid"}"#,
    )
    .await;
    match raw_recv(&mut ws).await.unwrap() {
        ServerFrame::Error { id, error } => {
            assert_eq!(id, Some(9));
            assert_eq!(error.kind, ErrorKind::InvalidArgument);
            assert!(error.message.contains("'*'"), "{}", error.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let long = "x".repeat(65);
    raw_send(
        &mut ws,
        &format!(r#"{{"id":10,"type":"login","protocol":1,"uid":"{long}"}}"#),
    )
    .await;
    match raw_recv(&mut ws).await.unwrap() {
        ServerFrame::Error { error, .. } => {
            assert!(error.message.contains("65 bytes"), "{}", error.message)
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // The connection is still usable for a good login.
    raw_send(
        &mut ws,
        r#"{"id":11,"type":"login","protocol":1,"uid":"good"}"#,
    )
    .await;
    assert!(matches!(
        raw_recv(&mut ws).await.unwrap(),
        ServerFrame::Ok {
            id: 11,
            result: Reply::LoggedIn { .. }
        }
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_protocol_version_gets_a_clear_error() {
    let server = start_server().await;
    let mut ws = raw_connect(&server.url()).await;
    raw_send(
        &mut ws,
        r#"{"id":1,"type":"login","protocol":99,"uid":"alice"}"#,
    )
    .await;
    match raw_recv(&mut ws).await.unwrap() {
        ServerFrame::Error { error, .. } => {
            assert_eq!(error.kind, ErrorKind::Rejected);
            assert!(
                error.message.contains("99") && error.message.contains("version 1"),
                "{}",
                error.message
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn requests_before_login_fail_with_not_logged_in() {
    let server = start_server().await;
    let mut ws = raw_connect(&server.url()).await;
    raw_send(&mut ws, r#"{"id":4,"type":"join","channel_id":"general"}"#).await;
    match raw_recv(&mut ws).await.unwrap() {
        ServerFrame::Error { id, error } => {
            assert_eq!(id, Some(4));
            assert_eq!(error.kind, ErrorKind::NotLoggedIn);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn second_login_kicks_the_first_with_remote_login() {
    let server = start_server().await;
    let (first, mut first_events) = login(&server.url(), "alice").await;
    let (_second, _second_events) = login(&server.url(), "alice").await;
    assert_eq!(
        wait_state(&mut first_events, ConnectionState::Aborted).await,
        ConnectionChangeReason::RemoteLogin
    );
    assert_eq!(first.connection_state(), ConnectionState::Aborted);
    // The kicked client does not reconnect by itself.
    assert!(
        none_within(&mut first_events, Duration::from_millis(300), |e| matches!(
            e,
            ClientEvent::ConnectionStateChanged { .. }
        ))
        .await
    );
    // A raw client sees the event and the close code.
    let (mut raw, _) = raw_login(&server.url(), "carol").await;
    let (_c2, _e2) = login(&server.url(), "carol").await;
    assert!(matches!(
        raw_recv_or_close(&mut raw).await,
        Ok(ServerFrame::Event {
            event: Event::RemoteLogin
        })
    ));
    match raw_recv_or_close(&mut raw).await {
        Err(Some((code, reason))) => {
            assert_eq!(code, REMOTE_LOGIN_CODE);
            assert!(reason.contains("another place"), "{reason}");
        }
        other => panic!("expected close 4000, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn peer_message_to_online_and_absent_peers() {
    let server = start_server().await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let (_bob, mut be) = login(&server.url(), "bob").await;
    let r = alice
        .send_message_to_peer(
            RtmMessage::text("hello"),
            "bob",
            SendMessageOptions::default(),
        )
        .await
        .unwrap();
    assert!(r.has_peer_received);
    assert!(r.server_received_ts > 0);
    let (msg, from, props) = wait_for(&mut be, |e| match e {
        ClientEvent::MessageFromPeer {
            message,
            peer_id,
            props,
        } => Some((message.clone(), peer_id.clone(), *props)),
        _ => None,
    })
    .await;
    assert_eq!(msg, RtmMessage::text("hello"));
    assert_eq!(from.as_str(), "alice");
    assert_eq!(props.server_received_ts, r.server_received_ts);
    assert!(!props.is_offline_message);

    let r = alice
        .send_message_to_peer(
            RtmMessage::text("anyone?"),
            "nobody",
            SendMessageOptions::default(),
        )
        .await
        .unwrap();
    assert!(!r.has_peer_received);
    assert!(!r.cached);

    // RAW messages carry bytes and a description.
    let raw = RtmMessage::Raw {
        raw: vec![0, 1, 2, 255],
        description: "bytes".into(),
    };
    assert!(
        alice
            .send_message_to_peer(raw.clone(), "bob", SendMessageOptions::default())
            .await
            .unwrap()
            .has_peer_received
    );
    let got = wait_for(&mut be, |e| match e {
        ClientEvent::MessageFromPeer { message, .. } => Some(message.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, raw);
    server.shutdown().await;
}

#[tokio::test]
async fn peer_messages_keep_per_sender_order() {
    let server = start_server().await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let (_bob, mut be) = login(&server.url(), "bob").await;
    for i in 0..150 {
        alice
            .send_message_to_peer(
                RtmMessage::text(format!("{i}")),
                "bob",
                SendMessageOptions::default(),
            )
            .await
            .unwrap();
    }
    for i in 0..150 {
        let text = wait_for(&mut be, |e| match e {
            ClientEvent::MessageFromPeer {
                message: RtmMessage::Text { text },
                ..
            } => Some(text.clone()),
            _ => None,
        })
        .await;
        assert_eq!(text, i.to_string());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn oversize_message_is_rejected_and_the_session_still_works() {
    let server = start_server().await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let (_bob, mut be) = login(&server.url(), "bob").await;
    let big = RtmMessage::text("x".repeat(40 * 1024));
    let err = alice
        .send_message_to_peer(big, "bob", SendMessageOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidMessage);
    assert!(err.to_string().contains("32768"), "{err}");
    // Exactly 32 KB is fine.
    let max = RtmMessage::text("y".repeat(32 * 1024));
    assert!(
        alice
            .send_message_to_peer(max, "bob", SendMessageOptions::default())
            .await
            .unwrap()
            .has_peer_received
    );

    // The server enforces the limit itself, not only the SDK.
    let (mut raw, _) = raw_login(&server.url(), "mallory").await;
    let text = "z".repeat(40 * 1024);
    raw_send(&mut raw, &format!(r#"{{"id":2,"type":"send_peer_message","peer_id":"bob","message":{{"type":"TEXT","text":"{text}"}}}}"#)).await;
    match raw_recv(&mut raw).await.unwrap() {
        ServerFrame::Error { id, error } => {
            assert_eq!(id, Some(2));
            assert_eq!(error.kind, ErrorKind::InvalidMessage);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    raw_send(&mut raw, r#"{"id":3,"type":"send_peer_message","peer_id":"bob","message":{"type":"TEXT","text":"still here"}}"#).await;
    assert!(matches!(
        raw_recv(&mut raw).await.unwrap(),
        ServerFrame::Ok {
            id: 3,
            result: Reply::PeerMessageSent {
                has_peer_received: true,
                ..
            }
        }
    ));
    // bob got the 32 KB one and "still here", not the oversize ones.
    let texts: Vec<usize> = {
        let mut v = Vec::new();
        for _ in 0..2 {
            v.push(
                wait_for(&mut be, |e| match e {
                    ClientEvent::MessageFromPeer {
                        message: RtmMessage::Text { text },
                        ..
                    } => Some(text.len()),
                    _ => None,
                })
                .await,
            );
        }
        v
    };
    assert_eq!(texts, vec![32 * 1024, "still here".len()]);
    // A frame beyond the server's frame cap is refused before parsing: close 1009.
    let huge = "w".repeat(300 * 1024);
    raw_send(&mut raw, &huge).await;
    loop {
        match raw_recv_or_close(&mut raw).await {
            Ok(_) => continue,
            Err(Some((code, _))) => {
                assert_eq!(code, 1009);
                break;
            }
            Err(None) => break, // the server may reset instead of completing the close
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_thousand_garbage_frames_do_not_disturb_other_users() {
    let server = start_server().await;
    let (alice, _ae) = login(&server.url(), "alice").await;
    let (bob, mut be) = login(&server.url(), "bob").await;
    let (mut raw, _) = raw_login(&server.url(), "mallory").await;
    let garbage = [
        "not json",
        "{",
        "[]",
        "null",
        r#"{"id":"x","type":"join"}"#,
        r#"{"id":1,"type":"no_such_request"}"#,
        r#"{"id":2,"type":"join"}"#,
        r#"{"id":3,"type":"join","channel_id":"bad*id"}"#,
        r#"{"type":"ping"}"#,
        "\u{0}\u{1}\u{2}",
    ];
    let url = server.url();
    let _ = url;
    let flood = tokio::spawn(async move {
        for i in 0..1000 {
            raw_send(&mut raw, garbage[i % garbage.len()]).await;
        }
        // Every garbage frame gets its error reply.
        let mut errors = 0;
        while errors < 1000 {
            match raw_recv(&mut raw).await {
                Some(ServerFrame::Error { .. }) => errors += 1,
                Some(_) => {}
                None => break,
            }
        }
        errors
    });
    for i in 0..100 {
        let r = alice
            .send_message_to_peer(
                RtmMessage::text(format!("m{i}")),
                "bob",
                SendMessageOptions::default(),
            )
            .await
            .unwrap();
        assert!(r.has_peer_received);
        let text = wait_for(&mut be, |e| match e {
            ClientEvent::MessageFromPeer {
                message: RtmMessage::Text { text },
                ..
            } => Some(text.clone()),
            _ => None,
        })
        .await;
        assert_eq!(text, format!("m{i}"));
    }
    assert_eq!(flood.await.unwrap(), 1000);
    assert_eq!(bob.connection_state(), ConnectionState::Connected);
    server.shutdown().await;
}

#[tokio::test]
async fn server_restart_makes_the_client_reconnect_by_itself() {
    let server = start_server().await;
    let addr = server.addr;
    let (alice, mut ae) = login(&server.url(), "alice").await;
    server.shutdown().await;
    assert_eq!(
        wait_state(&mut ae, ConnectionState::Reconnecting).await,
        ConnectionChangeReason::Interrupted
    );
    // A request while reconnecting is held and goes out once the link is back
    // (tests/sdk_lifecycle.rs covers the hold and its timeout).
    let held = {
        let alice = alice.clone();
        tokio::spawn(async move {
            alice
                .send_message_to_peer(RtmMessage::text("x"), "bob", SendMessageOptions::default())
                .await
        })
    };
    let server = start_server_on(
        &addr.to_string(),
        test_config(),
        std::sync::Arc::new(rtm::server::MemoryStore::new()),
    )
    .await;
    assert_eq!(
        wait_state(&mut ae, ConnectionState::Connected).await,
        ConnectionChangeReason::LoginSuccess
    );
    held.await
        .unwrap()
        .expect("the held send went out after the reconnection");
    let (_bob, mut be) = login(&server.url(), "bob").await;
    assert!(
        alice
            .send_message_to_peer(
                RtmMessage::text("back"),
                "bob",
                SendMessageOptions::default()
            )
            .await
            .unwrap()
            .has_peer_received
    );
    wait_for(&mut be, |e| {
        matches!(e, ClientEvent::MessageFromPeer { .. }).then_some(())
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn login_to_a_dead_address_fails_with_a_clear_error() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (c, mut events) = RtmClient::new(format!("ws://127.0.0.1:{port}"), fast_client_config());
    let err = c.login("alice", None).await.unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
    assert_eq!(
        wait_state(&mut events, ConnectionState::Disconnected).await,
        ConnectionChangeReason::LoginFailure
    );
    assert_eq!(c.connection_state(), ConnectionState::Disconnected);
}

#[tokio::test]
async fn graceful_shutdown_tells_sessions() {
    let server = start_server().await;
    let (mut raw, _) = raw_login(&server.url(), "alice").await;
    let stop = tokio::spawn(server.shutdown());
    assert!(matches!(
        raw_recv_or_close(&mut raw).await,
        Ok(ServerFrame::Event {
            event: Event::ServerShutdown
        })
    ));
    match raw_recv_or_close(&mut raw).await {
        Err(Some((code, _))) => assert_eq!(code, 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    stop.await.unwrap();
}

#[tokio::test]
async fn request_timeout_gives_timeout_error() {
    // A server that accepts the login and then never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use futures_util::{SinkExt, StreamExt};
        let (s, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
        let _login = ws.next().await;
        let reply = r#"{"type":"ok","id":0,"result":{"kind":"logged_in","uid":"alice","server_ts":1,"heartbeat_interval_ms":5000,"resumed":false,"dev_mode":true}}"#;
        ws.send(tokio_tungstenite::tungstenite::Message::Text(reply.into()))
            .await
            .unwrap();
        while ws.next().await.is_some() {}
    });
    let config = rtm::client::ClientConfig {
        request_timeout: Duration::from_millis(300),
        ..fast_client_config()
    };
    let (c, _e) = RtmClient::new(format!("ws://{addr}"), config);
    c.login("alice", None).await.unwrap();
    let err = c
        .send_message_to_peer(RtmMessage::text("x"), "bob", SendMessageOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_and_others_are_unaffected() {
    let mut config = test_config();
    config.conn.queue_frames = 32;
    config.limit_scale = 1000;
    let server = start_server_with(config).await;
    let (watcher, mut we) = login(&server.url(), "watcher").await;
    // sloth joins and then never reads again. Its socket's receive buffer is
    // small, so the server's queue fills after a few megabytes, not dozens.
    let mut sloth = {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(16 * 1024).unwrap();
        let tcp = sock.connect(server.addr).await.unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async(
            server.url(),
            tokio_tungstenite::MaybeTlsStream::Plain(tcp),
        )
        .await
        .unwrap();
        raw_send(
            &mut ws,
            r#"{"id":1,"type":"login","protocol":1,"uid":"sloth"}"#,
        )
        .await;
        raw_recv(&mut ws).await.unwrap();
        ws
    };
    watcher
        .subscribe_peers_online_status(&["sloth"])
        .await
        .unwrap();
    wait_for(&mut we, |e| {
        matches!(e, ClientEvent::PeersOnlineStatusChanged(_)).then_some(())
    })
    .await;
    raw_send(&mut sloth, r#"{"id":2,"type":"join","channel_id":"busy"}"#).await;
    let (talker, _te) = login(&server.url(), "talker").await;
    let (_fast, mut fe) = login(&server.url(), "fast").await;
    let ch = talker.create_channel("busy").unwrap();
    ch.join().await.unwrap();
    let _busy_fast = _fast.create_channel("busy").unwrap();
    _busy_fast.join().await.unwrap();
    // Enough bytes to fill the kernel's socket buffers and then the queue.
    let payload = "p".repeat(30 * 1024);
    let fast_reader = tokio::spawn(async move {
        let mut n = 0;
        while n < 300 {
            match fe.recv().await {
                Some(ClientEvent::Channel {
                    event: rtm::client::ChannelEvent::ChannelMessage { .. },
                    ..
                }) => n += 1,
                Some(_) => {}
                None => break,
            }
        }
        n
    });
    for _ in 0..300 {
        ch.send_message(RtmMessage::text(payload.clone()))
            .await
            .unwrap();
    }
    // The watcher sees sloth drop (the server cut it), the fast reader got everything.
    let state = wait_for(&mut we, |e| match e {
        ClientEvent::PeersOnlineStatusChanged(m) => m
            .get("sloth")
            .copied()
            .filter(|s| *s != rtm::client::PeerOnlineState::Online),
        _ => None,
    })
    .await;
    assert_eq!(state, rtm::client::PeerOnlineState::Unreachable);
    // When sloth reads again (within the server's closing time), the close
    // frame says why.
    let (code, reason) = loop {
        match raw_recv_or_close(&mut sloth).await {
            Ok(_) => continue,
            Err(close) => break close.expect("a close frame"),
        }
    };
    assert_eq!(fast_reader.await.unwrap(), 300);
    assert_eq!(code, rtm::protocol::close_code::SLOW_CONSUMER);
    assert!(reason.contains("slow consumer"), "{reason}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_server_drops_a_silent_link_after_the_heartbeat_timeout() {
    let mut config = test_config();
    config.timing.heartbeat_interval = Duration::from_millis(50);
    config.timing.heartbeat_timeout = Duration::from_millis(300);
    let server = start_server_with(config).await;
    let (watcher, mut we) = login(&server.url(), "watcher").await;
    // A client that logs in and then never reads (so never answers pings).
    let (_silent, _) = raw_login(&server.url(), "silent").await;
    watcher
        .subscribe_peers_online_status(&["silent"])
        .await
        .unwrap();
    wait_for(&mut we, |e| {
        matches!(e, ClientEvent::PeersOnlineStatusChanged(_)).then_some(())
    })
    .await;
    let state = wait_for(&mut we, |e| match e {
        ClientEvent::PeersOnlineStatusChanged(m) => m
            .get("silent")
            .copied()
            .filter(|s| *s != rtm::client::PeerOnlineState::Online),
        _ => None,
    })
    .await;
    assert_eq!(state, rtm::client::PeerOnlineState::Unreachable);
    // The SDK client, which answers pings, stayed connected all along.
    assert_eq!(watcher.connection_state(), ConnectionState::Connected);
    server.shutdown().await;
}

#[tokio::test]
async fn the_client_notices_a_silent_server_and_reconnects() {
    // A server that logs the client in, then neither reads nor writes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use futures_util::{SinkExt, StreamExt};
        let mut keep = Vec::new();
        loop {
            let (s, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
            let _login = ws.next().await;
            let reply = r#"{"type":"ok","id":0,"result":{"kind":"logged_in","uid":"alice","server_ts":1,"heartbeat_interval_ms":5000,"resumed":false,"dev_mode":true}}"#;
            ws.send(tokio_tungstenite::tungstenite::Message::Text(reply.into()))
                .await
                .unwrap();
            keep.push(ws);
        }
    });
    let config = rtm::client::ClientConfig {
        heartbeat_interval: Duration::from_millis(50),
        heartbeat_timeout: Duration::from_millis(300),
        ..fast_client_config()
    };
    let (c, mut events) = RtmClient::new(format!("ws://{addr}"), config);
    c.login("alice", None).await.unwrap();
    wait_state(&mut events, ConnectionState::Connected).await;
    assert_eq!(
        wait_state(&mut events, ConnectionState::Reconnecting).await,
        ConnectionChangeReason::Interrupted
    );
    assert_eq!(
        wait_state(&mut events, ConnectionState::Connected).await,
        ConnectionChangeReason::LoginSuccess
    );
    c.logout().await.unwrap();
}

#[tokio::test]
async fn a_pipelining_client_is_slowed_down_not_dropped() {
    let mut config = test_config();
    config.conn.queue_frames = 64;
    config.limit_scale = 1000;
    let server = start_server_with(config).await;
    let (ws, _) = raw_login(&server.url(), "pipeliner").await;
    let (mut tx, mut rx) = futures_util::StreamExt::split(ws);
    // 50,000 requests written without reading a reply first: their replies
    // outgrow the socket buffers, so the server's queue must fill up.
    let writer = tokio::spawn(async move {
        use futures_util::SinkExt;
        for i in 0..50_000u64 {
            let frame = format!(r#"{{"id":{},"type":"ping"}}"#, i + 10);
            tx.feed(tokio_tungstenite::tungstenite::Message::Text(frame.into()))
                .await
                .unwrap();
        }
        tx.flush().await.unwrap();
        tx
    });
    let mut next = 10;
    while next < 50_010 {
        use futures_util::StreamExt;
        match rx.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                match ServerFrame::decode(&t).unwrap() {
                    ServerFrame::Ok {
                        id,
                        result: Reply::Pong { .. },
                    } => {
                        assert_eq!(id, next, "replies in order, none lost");
                        next += 1;
                    }
                    other => panic!("{other:?}"),
                }
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f))) => panic!("closed: {f:?}"),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    let _ = writer.await;
    server.shutdown().await;
}
