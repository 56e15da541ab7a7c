//! Channels over real sockets: join/leave, channel messages, members, counts,
//! limits, the 30 s grace of a dropped member, rejoin after reconnection.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use rtm::client::{ChannelEvent, ClientEvent, ConnectionState, RtmMessage};
use rtm::protocol::ErrorKind;

#[tokio::test]
async fn three_clients_join_talk_and_agree_on_members() {
    let server = start_server().await;
    let (a, mut ae) = login(&server.url(), "alice").await;
    let (b, mut be) = login(&server.url(), "bob").await;
    let (c, mut ce) = login(&server.url(), "carol").await;
    let ach = a.create_channel("general").unwrap();
    let bch = b.create_channel("general").unwrap();
    let cch = c.create_channel("general").unwrap();
    assert_eq!(ach.join().await.unwrap(), 1);
    assert_eq!(bch.join().await.unwrap(), 2);
    assert_eq!(
        next_member_event(&mut ae, "general").await,
        ChannelEvent::MemberJoined("bob".parse().unwrap())
    );
    assert_eq!(cch.join().await.unwrap(), 3);
    assert_eq!(
        next_member_event(&mut ae, "general").await,
        ChannelEvent::MemberJoined("carol".parse().unwrap())
    );
    assert_eq!(
        next_member_event(&mut be, "general").await,
        ChannelEvent::MemberJoined("carol".parse().unwrap())
    );

    let expected: Vec<String> = vec!["alice".into(), "bob".into(), "carol".into()];
    for ch in [&ach, &bch, &cch] {
        let m: Vec<String> = ch
            .get_members()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(m, expected);
    }

    ach.send_message(RtmMessage::text("hi all")).await.unwrap();
    assert_eq!(
        next_channel_text(&mut be, "general").await,
        ("alice".into(), "hi all".into())
    );
    assert_eq!(
        next_channel_text(&mut ce, "general").await,
        ("alice".into(), "hi all".into())
    );
    bch.send_message(RtmMessage::text("hey")).await.unwrap();
    // alice gets bob's message and never her own.
    assert_eq!(
        next_channel_text(&mut ae, "general").await,
        ("bob".into(), "hey".into())
    );

    // Your own join/leave is not reported to you; others see you leave.
    cch.leave().await.unwrap();
    assert_eq!(
        next_member_event(&mut ae, "general").await,
        ChannelEvent::MemberLeft("carol".parse().unwrap())
    );
    assert_eq!(
        next_member_event(&mut be, "general").await,
        ChannelEvent::MemberLeft("carol".parse().unwrap())
    );
    assert!(
        none_within(&mut ce, Duration::from_millis(200), |e| matches!(
            e,
            ClientEvent::Channel {
                event: ChannelEvent::MemberJoined(_) | ChannelEvent::MemberLeft(_),
                ..
            }
        ))
        .await
    );
    // Each event came once, on the client stream: the channel's own stream
    // was never taken (tests/sdk_lifecycle.rs covers taking it).
    assert!(ach.events().is_some());
    server.shutdown().await;
}

#[tokio::test]
async fn channel_errors_and_limits() {
    let server = start_server().await;
    let (a, _ae) = login(&server.url(), "alice").await;
    let g = a.create_channel("g").unwrap();
    assert_eq!(g.leave().await.unwrap_err().kind(), ErrorKind::NotInChannel);
    assert_eq!(
        g.send_message(RtmMessage::text("x"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotInChannel
    );
    assert_eq!(
        g.get_members().await.unwrap_err().kind(),
        ErrorKind::NotInChannel
    );
    g.join().await.unwrap();
    assert_eq!(g.join().await.unwrap_err().kind(), ErrorKind::AlreadyJoined);
    // Held: dropping the last handle of a channel leaves it.
    let mut held = Vec::new();
    for i in 1..20 {
        let ch = a.create_channel(&format!("c{i}")).unwrap();
        ch.join().await.unwrap();
        held.push(ch);
    }
    let err = a.create_channel("c20").unwrap().join().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExceedLimit);
    assert!(err.to_string().contains("20"), "{err}");
    assert_eq!(a.joined_channels().len(), 20);
    assert!(a.create_channel("bad*name").is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn member_counts_for_joined_and_unjoined_channels() {
    let server = start_server().await;
    let (a, _ae) = login(&server.url(), "alice").await;
    let (b, _be) = login(&server.url(), "bob").await;
    let _one_a = a.create_channel("one").unwrap();
    _one_a.join().await.unwrap();
    let _two_a = a.create_channel("two").unwrap();
    _two_a.join().await.unwrap();
    let _two_b = b.create_channel("two").unwrap();
    _two_b.join().await.unwrap();
    // bob asks about channels he is not in too.
    let counts = b
        .get_channel_member_count(&["one", "two", "empty"])
        .await
        .unwrap();
    let got: Vec<(String, u32)> = counts
        .into_iter()
        .map(|c| (c.channel_id.to_string(), c.member_count))
        .collect();
    assert_eq!(
        got,
        vec![("one".into(), 1), ("two".into(), 2), ("empty".into(), 0)]
    );
    // 1 per second: a second call right away is TOO_OFTEN.
    assert_eq!(
        b.get_channel_member_count(&["one"])
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::TooOften
    );
    let many: Vec<String> = (0..33).map(|i| format!("c{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        b.get_channel_member_count(&refs).await.unwrap_err().kind(),
        // As the reference: GET_CHANNEL_MEMBER_COUNT_ERR_EXCEED_LIMIT.
        ErrorKind::ExceedLimit
    );
    server.shutdown().await;
}

// Paused time: the 1 s spacing is the server's timer, not the machine's
// scheduling, so a loaded machine cannot make the gaps look short.
#[tokio::test(start_paused = true)]
async fn member_count_updates_arrive_at_most_once_per_second() {
    let server = start_server_with(paused_server_config()).await;
    let (a, mut ae) = login_with(&server.url(), "alice", paused_client_config()).await;
    let _room_a = a.create_channel("room").unwrap();
    _room_a.join().await.unwrap();
    let mut others = Vec::new();
    for i in 0..5 {
        let (c, e) = login_with(&server.url(), &format!("u{i}"), paused_client_config()).await;
        let room = c.create_channel("room").unwrap();
        room.join().await.unwrap();
        others.push((c, e, room));
    }
    // Collect counts for a while: the last one is 6 and they are ≥1 s apart.
    let start = tokio::time::Instant::now();
    let mut counts = Vec::new();
    while start.elapsed() < Duration::from_millis(2500) {
        if let Ok(Some(ClientEvent::Channel {
            event: ChannelEvent::MemberCountUpdated(n),
            ..
        })) = tokio::time::timeout(Duration::from_millis(100), ae.recv()).await
        {
            counts.push((n, tokio::time::Instant::now()));
        }
    }
    assert_eq!(counts.last().map(|c| c.0), Some(6), "{counts:?}");
    assert!(counts.len() <= 3, "too many count updates: {counts:?}");
    for w in counts.windows(2) {
        assert!(w[1].1 - w[0].1 >= Duration::from_millis(900), "{counts:?}");
    }
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_killed_member_counts_as_left_only_after_the_grace() {
    let server = start_server_with(paused_server_config()).await;
    let (a, mut ae) = login_with(&server.url(), "alice", paused_client_config()).await;
    let _room_a = a.create_channel("room").unwrap();
    _room_a.join().await.unwrap();
    // bob joins over a raw connection, then his link dies without logout.
    let (mut bob, _) = raw_login(&server.url(), "bob").await;
    raw_send(&mut bob, r#"{"id":2,"type":"join","channel_id":"room"}"#).await;
    raw_recv(&mut bob).await.unwrap();
    assert_eq!(
        next_member_event(&mut ae, "room").await,
        ChannelEvent::MemberJoined("bob".parse().unwrap())
    );
    drop(bob);
    // 29 s later bob still counts as a member.
    tokio::time::sleep(Duration::from_secs(29)).await;
    let ch = a.create_channel("room").unwrap();
    assert!(
        ch.get_members()
            .await
            .unwrap()
            .iter()
            .any(|m| m.as_str() == "bob")
    );
    // Past 30 s he has left.
    let left = wait_for_within(&mut ae, Duration::from_secs(5), |e| match e {
        ClientEvent::Channel {
            event: ev @ ChannelEvent::MemberLeft(_),
            ..
        } => Some(ev.clone()),
        _ => None,
    })
    .await;
    assert_eq!(left, ChannelEvent::MemberLeft("bob".parse().unwrap()));
    assert!(
        !ch.get_members()
            .await
            .unwrap()
            .iter()
            .any(|m| m.as_str() == "bob")
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_short_drop_is_invisible_to_other_members() {
    let server = start_server_with(paused_server_config()).await;
    let (a, mut ae) = login_with(&server.url(), "alice", paused_client_config()).await;
    let _room_a = a.create_channel("room").unwrap();
    _room_a.join().await.unwrap();
    let (mut bob, _) = raw_login(&server.url(), "bob").await;
    raw_send(&mut bob, r#"{"id":2,"type":"join","channel_id":"room"}"#).await;
    raw_recv(&mut bob).await.unwrap();
    assert_eq!(
        next_member_event(&mut ae, "room").await,
        ChannelEvent::MemberJoined("bob".parse().unwrap())
    );
    drop(bob);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (bob, reply) = raw_login(&server.url(), "bob").await;
    assert!(
        matches!(
            reply,
            rtm::protocol::ServerFrame::Ok {
                result: rtm::protocol::Reply::LoggedIn { resumed: true, .. },
                ..
            }
        ),
        "{reply:?}"
    );
    // Well past the first link's grace: no leave was ever reported.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        none_within(&mut ae, Duration::from_secs(1), |e| matches!(
            e,
            ClientEvent::Channel {
                event: ChannelEvent::MemberLeft(_),
                ..
            }
        ))
        .await
    );
    let ch = a.create_channel("room").unwrap();
    assert!(
        ch.get_members()
            .await
            .unwrap()
            .iter()
            .any(|m| m.as_str() == "bob")
    );
    drop(bob);
    server.shutdown().await;
}

#[tokio::test]
async fn logout_and_remote_login_remove_the_user_from_channels() {
    let server = start_server().await;
    let (a, mut ae) = login(&server.url(), "alice").await;
    let _room_a = a.create_channel("room").unwrap();
    _room_a.join().await.unwrap();
    let (b, _be) = login(&server.url(), "bob").await;
    let _room_b = b.create_channel("room").unwrap();
    _room_b.join().await.unwrap();
    assert_eq!(
        next_member_event(&mut ae, "room").await,
        ChannelEvent::MemberJoined("bob".parse().unwrap())
    );
    b.logout().await.unwrap();
    assert_eq!(
        next_member_event(&mut ae, "room").await,
        ChannelEvent::MemberLeft("bob".parse().unwrap())
    );

    let (c1, _c1e) = login(&server.url(), "carol").await;
    let _room_c1 = c1.create_channel("room").unwrap();
    _room_c1.join().await.unwrap();
    assert_eq!(
        next_member_event(&mut ae, "room").await,
        ChannelEvent::MemberJoined("carol".parse().unwrap())
    );
    let (_c2, _c2e) = login(&server.url(), "carol").await;
    assert_eq!(
        next_member_event(&mut ae, "room").await,
        ChannelEvent::MemberLeft("carol".parse().unwrap())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn reconnection_rejoins_channels_and_tells_the_app() {
    let server = start_server().await;
    let addr = server.addr.to_string();
    let (a, mut ae) = login(&server.url(), "alice").await;
    let _one_a = a.create_channel("one").unwrap();
    _one_a.join().await.unwrap();
    let _two_a = a.create_channel("two").unwrap();
    _two_a.join().await.unwrap();
    server.shutdown().await;
    wait_state(&mut ae, ConnectionState::Reconnecting).await;
    let server = start_server_on(
        &addr,
        test_config(),
        std::sync::Arc::new(rtm::server::MemoryStore::new()),
    )
    .await;
    wait_state(&mut ae, ConnectionState::Connected).await;
    let rejoined = wait_for(&mut ae, |e| match e {
        ClientEvent::Restored {
            rejoined, failed, ..
        } => {
            assert!(failed.is_empty(), "{failed:?}");
            Some(
                rejoined
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<BTreeSet<_>>(),
            )
        }
        _ => None,
    })
    .await;
    assert_eq!(
        rejoined,
        BTreeSet::from(["one".to_string(), "two".to_string()])
    );
    // The new server really has alice in both channels.
    let (b, _be) = login(&server.url(), "bob").await;
    let counts = b.get_channel_member_count(&["one", "two"]).await.unwrap();
    assert!(counts.iter().all(|c| c.member_count == 1), "{counts:?}");
    // And messages flow.
    let bch = b.create_channel("one").unwrap();
    bch.join().await.unwrap();
    bch.send_message(RtmMessage::text("welcome back"))
        .await
        .unwrap();
    assert_eq!(
        next_channel_text(&mut ae, "one").await,
        ("bob".into(), "welcome back".into())
    );
    server.shutdown().await;
}

#[tokio::test]
async fn above_512_members_no_join_leave_events_but_counts() {
    let mut config = test_config();
    // 600 connections from one address within a second or two: more than
    // the default 200 new connections per second per address.
    config.connect_rate_per_ip = 0;
    let server = start_server_with(config).await;
    let (watcher, mut we) = login(&server.url(), "watcher").await;
    let _big_watcher = watcher.create_channel("big").unwrap();
    _big_watcher.join().await.unwrap();
    // 599 more members over raw connections (cheap).
    let mut raws = Vec::new();
    for i in 0..599 {
        let (mut ws, _) = raw_login(&server.url(), &format!("m{i}")).await;
        raw_send(&mut ws, r#"{"id":2,"type":"join","channel_id":"big"}"#).await;
        raws.push(ws);
    }
    for ws in raws.iter_mut() {
        loop {
            if let Some(rtm::protocol::ServerFrame::Ok { id: 2, .. }) = raw_recv(ws).await {
                break;
            }
        }
    }
    // Drain: the watcher saw joins only while the channel had ≤512 members.
    let mut joins = 0;
    let mut last_count = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline && last_count != 600 {
        match tokio::time::timeout(Duration::from_millis(500), we.recv()).await {
            Ok(Some(ClientEvent::Channel {
                event: ChannelEvent::MemberJoined(_),
                ..
            })) => joins += 1,
            Ok(Some(ClientEvent::Channel {
                event: ChannelEvent::MemberCountUpdated(n),
                ..
            })) => last_count = n,
            _ => {}
        }
    }
    assert_eq!(joins, 511, "joins reported up to 512 members");
    assert_eq!(last_count, 600);
    // A leave in the big channel is not reported.
    let _ = raws.pop();
    let (c, _ce) = login(&server.url(), "leaver").await;
    let ch = c.create_channel("big").unwrap();
    ch.join().await.unwrap();
    ch.leave().await.unwrap();
    assert!(
        none_within(&mut we, Duration::from_millis(300), |e| matches!(
            e,
            ClientEvent::Channel {
                event: ChannelEvent::MemberLeft(_) | ChannelEvent::MemberJoined(_),
                ..
            }
        ))
        .await
    );
    server.shutdown().await;
}

#[tokio::test]
async fn channel_and_peer_messages_share_one_rate_limit() {
    let server = start_server().await;
    let (a, _ae) = login(&server.url(), "alice").await;
    let ch = a.create_channel("r").unwrap();
    ch.join().await.unwrap();
    for i in 0..180 {
        if i % 2 == 0 {
            ch.send_message(RtmMessage::text("x")).await.unwrap();
        } else {
            a.send_message_to_peer(RtmMessage::text("x"), "bob", Default::default())
                .await
                .unwrap();
        }
    }
    assert_eq!(
        ch.send_message(RtmMessage::text("x"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::TooOften
    );
    assert_eq!(
        a.send_message_to_peer(RtmMessage::text("x"), "bob", Default::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::TooOften
    );
    server.shutdown().await;
}

#[tokio::test]
async fn call_limits_belong_to_the_uid_so_reconnecting_does_not_reset_them() {
    let server = start_server().await;
    let (first, _fe) = login(&server.url(), "alice").await;
    first.get_channel_member_count(&["one"]).await.unwrap();
    // The same uid on a new connection (the old one is kicked) is still
    // within the same 1-per-second window: a fresh connection must not mean
    // fresh counters, or six reconnections would send six times the limit.
    let (second, _se) = login(&server.url(), "alice").await;
    assert_eq!(
        second
            .get_channel_member_count(&["one"])
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::TooOften
    );
    // Another uid has its own counters.
    let (bob, _be) = login(&server.url(), "bob").await;
    bob.get_channel_member_count(&["one"]).await.unwrap();
    server.shutdown().await;
}
