//! The wire contract, tested without sockets: every frame round-trips through
//! its JSON text, bad input is refused with an error that names the problem
//! (and keeps the request id when there is one), the decoder survives garbage,
//! and every example in `docs/PROTOCOL.md` is exactly what the types produce.

use std::collections::{BTreeMap, BTreeSet};

use rtm::protocol::{
    ChannelAttribute, ChannelAttributeOptions, ChannelId, ChannelMemberCount, ClientFrame,
    DecodeError, ErrorBody, ErrorKind, Event, ID_PUNCTUATION, LocalInvitationFailureReason,
    MAX_ATTRIBUTE_KEY_BYTES, MAX_ATTRIBUTE_KEYS, MAX_ATTRIBUTE_VALUE_BYTES,
    MAX_CHANNEL_ATTRIBUTES_BYTES, MAX_ID_BYTES, MAX_JOINED_CHANNELS, MAX_MEMBER_COUNT_CHANNELS,
    MAX_MESSAGE_BYTES, MAX_QUERY_PEERS, MAX_SUBSCRIPTIONS, MAX_USER_ATTRIBUTES_BYTES,
    MEMBER_EVENTS_MAX_MEMBERS, MediaType, MessageProps, PROTOCOL_VERSION, PeerOnlineState,
    RemoteInvitationFailureReason, Reply, Request, RtmMessage, SendMessageOptions, ServerFrame,
    SubscriptionOption, Uid, base64_encode, close_code, encode_event,
};

/// The reference, checked against the types below.
const PROTOCOL_MD: &str = include_str!("../docs/PROTOCOL.md");

/// A fixed timestamp (ms since the epoch) so that encodings are reproducible.
const TS: u64 = 1_767_225_600_123;

fn uid(s: &str) -> Uid {
    Uid::new(s).expect("valid uid in test data")
}

fn ch(s: &str) -> ChannelId {
    ChannelId::new(s).expect("valid channel id in test data")
}

fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn attribute() -> ChannelAttribute {
    ChannelAttribute {
        key: "topic".into(),
        value: "release planning".into(),
        last_update_user_id: uid("alice"),
        last_update_ts: TS,
    }
}

fn raw_message() -> RtmMessage {
    RtmMessage::Raw {
        raw: vec![0, 1, 2, 0xfe, 0xff],
        description: "five bytes".into(),
    }
}

// ------------------------------------------------------------ the samples

/// At least one sample of every request, with optional fields both set and unset.
fn sample_requests() -> Vec<Request> {
    let notify = ChannelAttributeOptions {
        enable_notification_to_channel_members: true,
    };
    vec![
        Request::Login {
            protocol: PROTOCOL_VERSION,
            uid: uid("alice"),
            token: None,
            compact_events: false,
        },
        Request::Login {
            protocol: PROTOCOL_VERSION,
            uid: uid("a b!#$%&()+-:;<=.>?@[]^_{}|~,"),
            token: Some("rtm1.eyJ1aWQiOiJhbGljZSJ9.c2ln".into()),
            compact_events: true,
        },
        Request::Logout,
        Request::RenewToken {
            token: "rtm1.new".into(),
        },
        Request::Ping,
        Request::SendPeerMessage {
            peer_id: uid("bob"),
            message: RtmMessage::text("hello bob"),
            options: SendMessageOptions {
                enable_offline_messaging: true,
            },
        },
        Request::SendPeerMessage {
            peer_id: uid("bob"),
            message: raw_message(),
            options: SendMessageOptions::default(),
        },
        Request::Join {
            channel_id: ch("lobby"),
        },
        Request::Leave {
            channel_id: ch("lobby"),
        },
        Request::SendChannelMessage {
            channel_id: ch("lobby"),
            message: RtmMessage::text("hi all — ünïcödé ✓"),
        },
        Request::GetMembers {
            channel_id: ch("lobby"),
        },
        Request::GetChannelMemberCount {
            channel_ids: vec![ch("lobby"), ch("empty room")],
        },
        Request::GetChannelMemberCount {
            channel_ids: vec![],
        },
        Request::QueryPeersOnlineStatus {
            peer_ids: vec![uid("bob"), uid("dave")],
        },
        Request::SubscribePeersOnlineStatus {
            peer_ids: vec![uid("bob")],
        },
        Request::UnsubscribePeersOnlineStatus {
            peer_ids: vec![uid("dave")],
        },
        Request::QueryPeersBySubscriptionOption {
            option: SubscriptionOption::OnlineStatus,
        },
        Request::SetLocalUserAttributes {
            attributes: map(&[("mood", "busy"), ("status", "in a meeting")]),
        },
        Request::SetLocalUserAttributes {
            attributes: BTreeMap::new(),
        },
        Request::AddOrUpdateLocalUserAttributes {
            attributes: map(&[("mood", "happy")]),
        },
        Request::DeleteLocalUserAttributesByKeys {
            keys: vec!["status".into()],
        },
        Request::ClearLocalUserAttributes,
        Request::GetUserAttributes {
            user_id: uid("bob"),
            keys: None,
        },
        Request::GetUserAttributes {
            user_id: uid("bob"),
            keys: Some(vec!["mood".into()]),
        },
        Request::SetChannelAttributes {
            channel_id: ch("lobby"),
            attributes: map(&[("topic", "release planning")]),
            options: notify,
        },
        Request::AddOrUpdateChannelAttributes {
            channel_id: ch("lobby"),
            attributes: map(&[("owner", "alice")]),
            options: ChannelAttributeOptions::default(),
        },
        Request::DeleteChannelAttributesByKeys {
            channel_id: ch("lobby"),
            keys: vec!["owner".into()],
            options: notify,
        },
        Request::ClearChannelAttributes {
            channel_id: ch("lobby"),
            options: ChannelAttributeOptions::default(),
        },
        Request::GetChannelAttributes {
            channel_id: ch("lobby"),
            keys: None,
        },
        Request::GetChannelAttributes {
            channel_id: ch("lobby"),
            keys: Some(vec!["topic".into()]),
        },
        Request::AckOffline { up_to: 42 },
        Request::SendLocalInvitation {
            invitation_id: 1_733_000_000_000,
            callee_id: uid("bob"),
            content: "lunch?".into(),
            channel_id: Some("call-42".into()),
        },
        Request::SendLocalInvitation {
            invitation_id: 7,
            callee_id: uid("bob"),
            content: String::new(),
            channel_id: None,
        },
        Request::CancelLocalInvitation { invitation_id: 7 },
        Request::AckRemoteInvitation {
            caller_id: uid("alice"),
            invitation_id: 7,
        },
        Request::AcceptRemoteInvitation {
            caller_id: uid("alice"),
            invitation_id: 7,
            response: "sure".into(),
        },
        Request::RefuseRemoteInvitation {
            caller_id: uid("alice"),
            invitation_id: 7,
            response: String::new(),
        },
        Request::RequestMediaUpload {
            media_type: MediaType::File,
            size: 1_048_576,
            sha256: "9f2c".repeat(16),
            file_name: "report.pdf".into(),
            resume_media_id: None,
        },
        Request::RequestMediaUpload {
            media_type: MediaType::Image,
            size: 1_048_576,
            sha256: "9f2c".repeat(16),
            file_name: "cat.png".into(),
            resume_media_id: Some(MEDIA_ID.into()),
        },
        Request::RequestMediaDownload {
            media_id: MEDIA_ID.into(),
            offset: 0,
        },
        Request::CancelMediaUpload {
            media_id: MEDIA_ID.into(),
        },
    ]
}

const MEDIA_ID: &str = "3f8a9c1e5b7d4f2a8c6e1b3d5f7a9c2e";

/// Exhaustive on purpose: a new request variant fails to compile here until
/// it gets a sample (and, through `every_frame_kind_has_a_documented_example`,
/// an example in the docs).
fn request_variant(r: &Request) -> usize {
    match r {
        Request::Login { .. } => 0,
        Request::Logout => 1,
        Request::RenewToken { .. } => 2,
        Request::Ping => 3,
        Request::SendPeerMessage { .. } => 4,
        Request::Join { .. } => 5,
        Request::Leave { .. } => 6,
        Request::SendChannelMessage { .. } => 7,
        Request::GetMembers { .. } => 8,
        Request::GetChannelMemberCount { .. } => 9,
        Request::QueryPeersOnlineStatus { .. } => 10,
        Request::SubscribePeersOnlineStatus { .. } => 11,
        Request::UnsubscribePeersOnlineStatus { .. } => 12,
        Request::QueryPeersBySubscriptionOption { .. } => 13,
        Request::SetLocalUserAttributes { .. } => 14,
        Request::AddOrUpdateLocalUserAttributes { .. } => 15,
        Request::DeleteLocalUserAttributesByKeys { .. } => 16,
        Request::ClearLocalUserAttributes => 17,
        Request::GetUserAttributes { .. } => 18,
        Request::SetChannelAttributes { .. } => 19,
        Request::AddOrUpdateChannelAttributes { .. } => 20,
        Request::DeleteChannelAttributesByKeys { .. } => 21,
        Request::ClearChannelAttributes { .. } => 22,
        Request::GetChannelAttributes { .. } => 23,
        Request::AckOffline { .. } => 24,
        Request::SendLocalInvitation { .. } => 25,
        Request::CancelLocalInvitation { .. } => 26,
        Request::AckRemoteInvitation { .. } => 27,
        Request::AcceptRemoteInvitation { .. } => 28,
        Request::RefuseRemoteInvitation { .. } => 29,
        Request::RequestMediaUpload { .. } => 30,
        Request::RequestMediaDownload { .. } => 31,
        Request::CancelMediaUpload { .. } => 32,
    }
}
const REQUEST_VARIANTS: usize = 33;

fn sample_replies() -> Vec<Reply> {
    vec![
        Reply::LoggedIn {
            uid: uid("alice"),
            server_ts: TS,
            heartbeat_interval_ms: 5000,
            resumed: false,
            dev_mode: true,
            token_expires_in_s: None,
            compact_events: false,
        },
        Reply::LoggedIn {
            uid: uid("alice"),
            server_ts: TS,
            heartbeat_interval_ms: 5000,
            resumed: true,
            dev_mode: false,
            token_expires_in_s: Some(3600),
            compact_events: true,
        },
        Reply::Done,
        Reply::PeerMessageSent {
            has_peer_received: true,
            server_received_ts: TS,
            cached: false,
        },
        Reply::PeerMessageSent {
            has_peer_received: false,
            server_received_ts: TS,
            cached: true,
        },
        Reply::Joined { member_count: 3 },
        Reply::ChannelMessageSent {
            server_received_ts: TS,
        },
        Reply::Members {
            members: vec![uid("alice"), uid("bob"), uid("carol")],
        },
        Reply::MemberCounts {
            counts: vec![
                ChannelMemberCount {
                    channel_id: ch("lobby"),
                    member_count: 3,
                },
                ChannelMemberCount {
                    channel_id: ch("empty room"),
                    member_count: 0,
                },
            ],
        },
        Reply::OnlineStatus {
            statuses: [(uid("bob"), true), (uid("dave"), false)].into(),
        },
        Reply::Subscriptions {
            peer_ids: vec![uid("bob"), uid("dave")],
        },
        Reply::UserAttributes {
            user_id: uid("bob"),
            attributes: map(&[("mood", "happy")]),
        },
        Reply::ChannelAttributes {
            channel_id: ch("lobby"),
            attributes: vec![attribute()],
        },
        Reply::ChannelAttributes {
            channel_id: ch("lobby"),
            attributes: vec![],
        },
        Reply::Pong { server_ts: TS },
        Reply::InvitationSent {
            peer_online: true,
            expires_in_ms: 60_000,
        },
        Reply::MediaUploadTicket {
            media_id: MEDIA_ID.into(),
            ticket: "b1946ac92492d2347c6235b4d2611184".into(),
            offset: 0,
            expires_in_ms: 60_000,
        },
        Reply::MediaDownloadTicket {
            media_id: MEDIA_ID.into(),
            ticket: "b1946ac92492d2347c6235b4d2611184".into(),
            size: 1_048_576,
            sha256: "9f2c".repeat(16),
            file_name: "report.pdf".into(),
            expires_in_ms: 60_000,
        },
    ]
}

/// Exhaustive on purpose, as [`request_variant`].
fn reply_variant(r: &Reply) -> usize {
    match r {
        Reply::LoggedIn { .. } => 0,
        Reply::Done => 1,
        Reply::PeerMessageSent { .. } => 2,
        Reply::Joined { .. } => 3,
        Reply::ChannelMessageSent { .. } => 4,
        Reply::Members { .. } => 5,
        Reply::MemberCounts { .. } => 6,
        Reply::OnlineStatus { .. } => 7,
        Reply::Subscriptions { .. } => 8,
        Reply::UserAttributes { .. } => 9,
        Reply::ChannelAttributes { .. } => 10,
        Reply::Pong { .. } => 11,
        Reply::InvitationSent { .. } => 12,
        Reply::MediaUploadTicket { .. } => 13,
        Reply::MediaDownloadTicket { .. } => 14,
    }
}
const REPLY_VARIANTS: usize = 15;

fn sample_events() -> Vec<Event> {
    vec![
        Event::MessageFromPeer {
            peer_id: uid("bob"),
            message: RtmMessage::text("hello alice"),
            props: MessageProps {
                server_received_ts: TS,
                is_offline_message: false,
                message_id: None,
            },
        },
        Event::MessageFromPeer {
            peer_id: uid("bob"),
            message: raw_message(),
            props: MessageProps {
                server_received_ts: TS,
                is_offline_message: true,
                message_id: Some(41),
            },
        },
        Event::ChannelMessage {
            channel_id: ch("lobby"),
            member_id: uid("bob"),
            message: RtmMessage::text("hi all"),
            props: MessageProps {
                server_received_ts: TS,
                is_offline_message: false,
                message_id: None,
            },
        },
        Event::MemberJoined {
            channel_id: ch("lobby"),
            member_id: uid("carol"),
        },
        Event::MemberLeft {
            channel_id: ch("lobby"),
            member_id: uid("carol"),
        },
        Event::MemberCountUpdated {
            channel_id: ch("lobby"),
            member_count: 2,
        },
        Event::AttributesUpdated {
            channel_id: ch("lobby"),
            attributes: vec![attribute()],
        },
        Event::AttributesUpdated {
            channel_id: ch("lobby"),
            attributes: vec![],
        },
        Event::PeersOnlineStatusChanged {
            statuses: [
                (uid("bob"), PeerOnlineState::Online),
                (uid("carol"), PeerOnlineState::Unreachable),
                (uid("dave"), PeerOnlineState::Offline),
            ]
            .into(),
        },
        Event::RemoteLogin,
        Event::TokenPrivilegeWillExpire { expires_in_s: 30 },
        Event::TokenExpired,
        Event::ServerShutdown,
        Event::MessagesMissed { count: 12 },
        Event::RemoteInvitationReceived {
            caller_id: uid("alice"),
            invitation_id: 7,
            content: "lunch?".into(),
            channel_id: Some("call-42".into()),
            expires_in_ms: 60_000,
        },
        Event::LocalInvitationReceivedByPeer { invitation_id: 7 },
        Event::LocalInvitationAccepted {
            invitation_id: 7,
            response: "sure".into(),
        },
        Event::LocalInvitationRefused {
            invitation_id: 7,
            response: String::new(),
        },
        Event::LocalInvitationFailure {
            invitation_id: 7,
            reason: LocalInvitationFailureReason::PeerNoResponse,
        },
        Event::RemoteInvitationCanceled {
            caller_id: uid("alice"),
            invitation_id: 7,
            content: "lunch?".into(),
        },
        Event::RemoteInvitationFailure {
            caller_id: uid("alice"),
            invitation_id: 7,
            reason: RemoteInvitationFailureReason::InvitationExpire,
        },
    ]
}

/// Exhaustive on purpose, as [`request_variant`].
fn event_variant(e: &Event) -> usize {
    match e {
        Event::MessageFromPeer { .. } => 0,
        Event::ChannelMessage { .. } => 1,
        Event::MemberJoined { .. } => 2,
        Event::MemberLeft { .. } => 3,
        Event::MemberCountUpdated { .. } => 4,
        Event::AttributesUpdated { .. } => 5,
        Event::PeersOnlineStatusChanged { .. } => 6,
        Event::RemoteLogin => 7,
        Event::TokenPrivilegeWillExpire { .. } => 8,
        Event::TokenExpired => 9,
        Event::ServerShutdown => 10,
        Event::MessagesMissed { .. } => 11,
        Event::RemoteInvitationReceived { .. } => 12,
        Event::LocalInvitationReceivedByPeer { .. } => 13,
        Event::LocalInvitationAccepted { .. } => 14,
        Event::LocalInvitationRefused { .. } => 15,
        Event::LocalInvitationFailure { .. } => 16,
        Event::RemoteInvitationCanceled { .. } => 17,
        Event::RemoteInvitationFailure { .. } => 18,
    }
}
const EVENT_VARIANTS: usize = 19;

const ALL_ERROR_KINDS: [ErrorKind; 28] = [
    ErrorKind::Unknown,
    ErrorKind::InvalidArgument,
    ErrorKind::Rejected,
    ErrorKind::InvalidToken,
    ErrorKind::TokenExpired,
    ErrorKind::NotAuthorized,
    ErrorKind::AlreadyLogin,
    ErrorKind::Timeout,
    ErrorKind::TooOften,
    ErrorKind::NotLoggedIn,
    ErrorKind::InvalidMessage,
    ErrorKind::ExceedLimit,
    ErrorKind::AlreadyJoined,
    ErrorKind::NotInChannel,
    ErrorKind::SizeOverflow,
    ErrorKind::UserNotFound,
    ErrorKind::Overflow,
    ErrorKind::NotExist,
    ErrorKind::ServerBusy,
    ErrorKind::QuotaExceeded,
    ErrorKind::InvalidUserId,
    ErrorKind::JoinSameChannelTooOften,
    ErrorKind::NotStarted,
    ErrorKind::AlreadyEnd,
    ErrorKind::AlreadyAccept,
    ErrorKind::AlreadySent,
    ErrorKind::ConcurrencyLimitExceeded,
    ErrorKind::Interrupted,
];

/// The close codes with the names the docs use for them.
const CLOSE_CODES: [(u16, &str); 10] = [
    (close_code::GOING_AWAY, "GOING_AWAY"),
    (close_code::TOO_BIG, "TOO_BIG"),
    (close_code::REMOTE_LOGIN, "REMOTE_LOGIN"),
    (close_code::SLOW_CONSUMER, "SLOW_CONSUMER"),
    (close_code::PROTOCOL_ERROR, "PROTOCOL_ERROR"),
    (close_code::LOGIN_TIMEOUT, "LOGIN_TIMEOUT"),
    (close_code::TOKEN_EXPIRED, "TOKEN_EXPIRED"),
    (close_code::LOGOUT, "LOGOUT"),
    (close_code::TOO_MANY_CONNECTIONS, "TOO_MANY_CONNECTIONS"),
    (close_code::HEARTBEAT_TIMEOUT, "HEARTBEAT_TIMEOUT"),
];

/// What the server sends for a client frame that does not decode (as `conn.rs` does).
fn error_reply_for(e: DecodeError) -> ServerFrame {
    ServerFrame::error(e.id, ErrorBody::new(ErrorKind::InvalidArgument, e.message))
}

fn decode_err(text: &str) -> DecodeError {
    match ClientFrame::decode(text) {
        Ok(f) => panic!("{text} decoded to {f:?}, expected an error"),
        Err(e) => e,
    }
}

fn json_frame(value: serde_json::Value) -> String {
    value.to_string()
}

// --------------------------------------------------------------- round trips

#[test]
fn samples_cover_every_variant() {
    let requests: BTreeSet<usize> = sample_requests().iter().map(request_variant).collect();
    assert_eq!(
        requests.len(),
        REQUEST_VARIANTS,
        "a request variant has no sample"
    );
    let replies: BTreeSet<usize> = sample_replies().iter().map(reply_variant).collect();
    assert_eq!(
        replies.len(),
        REPLY_VARIANTS,
        "a reply variant has no sample"
    );
    let events: BTreeSet<usize> = sample_events().iter().map(event_variant).collect();
    assert_eq!(
        events.len(),
        EVENT_VARIANTS,
        "an event variant has no sample"
    );
}

#[test]
fn every_request_round_trips_inside_a_client_frame() {
    for (i, request) in sample_requests().into_iter().enumerate() {
        let frame = ClientFrame {
            id: 1000 + i as u64,
            request,
        };
        let text = frame.encode();
        assert_eq!(ClientFrame::decode(&text), Ok(frame.clone()), "{text}");

        // The envelope: a numeric id and the request's name as `type`, at the top level.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["id"], serde_json::json!(frame.id), "{text}");
        assert_eq!(value["type"], frame.request.name(), "{text}");
        // A second trip gives the same bytes.
        assert_eq!(ClientFrame::decode(&text).unwrap().encode(), text);
    }
}

#[test]
fn extreme_request_ids_round_trip() {
    for id in [0, 1, (1u64 << 53) - 1, u64::MAX] {
        let frame = ClientFrame {
            id,
            request: Request::Ping,
        };
        assert_eq!(ClientFrame::decode(&frame.encode()), Ok(frame));
    }
}

#[test]
fn request_names_are_unique_snake_case_tags() {
    let names: BTreeSet<&str> = sample_requests().iter().map(Request::name).collect();
    assert_eq!(names.len(), REQUEST_VARIANTS);
    for name in names {
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{name}"
        );
    }
}

#[test]
fn every_reply_round_trips_inside_an_ok_frame() {
    for (i, result) in sample_replies().into_iter().enumerate() {
        let frame = ServerFrame::Ok {
            id: i as u64,
            result,
        };
        let text = frame.encode();
        assert_eq!(ServerFrame::decode(&text).unwrap(), frame, "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "ok", "{text}");
        assert_eq!(value["id"], serde_json::json!(i), "{text}");
        assert!(value["result"]["kind"].is_string(), "{text}");
    }
}

#[test]
fn every_event_round_trips_inside_an_event_frame() {
    for event in sample_events() {
        let frame = ServerFrame::Event {
            event: event.clone(),
        };
        let text = frame.encode();
        assert_eq!(ServerFrame::decode(&text).unwrap(), frame, "{text}");
        // The shared, encode-once path produces the very same bytes.
        assert_eq!(encode_event(&event), text);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "event", "{text}");
        assert!(value["event"]["kind"].is_string(), "{text}");
    }
}

#[test]
fn error_frames_round_trip_with_and_without_id() {
    for (id, kind) in [
        (Some(7), ErrorKind::NotInChannel),
        (None, ErrorKind::InvalidArgument),
    ] {
        let frame = ServerFrame::error(id, ErrorBody::new(kind, "why, and what to do"));
        let text = frame.encode();
        assert_eq!(ServerFrame::decode(&text).unwrap(), frame, "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "error");
        assert_eq!(value["id"], serde_json::json!(id));
        assert_eq!(value["error"]["code"], kind.code());
        assert_eq!(value["error"]["kind"], kind.as_str());
    }
}

#[test]
fn error_kinds_have_stable_distinct_codes_and_names() {
    let codes: BTreeSet<u16> = ALL_ERROR_KINDS.iter().map(|k| k.code()).collect();
    assert_eq!(codes.len(), ALL_ERROR_KINDS.len());
    for kind in ALL_ERROR_KINDS {
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{}\"", kind.as_str()));
        assert_eq!(kind.to_string(), kind.as_str());
        assert_eq!(serde_json::from_str::<ErrorKind>(&json).unwrap(), kind);
        let body = ErrorBody::new(kind, "m");
        assert_eq!(body.code, kind.code());
    }
    assert_eq!(ErrorKind::NotInChannel.code(), 203);
    assert_eq!(ErrorKind::InvalidArgument.code(), 2);
    assert_eq!(ErrorKind::TooOften.code(), 9);
    // Kinds added for porting from Agora keep their own numbers and spellings.
    assert_eq!(ErrorKind::InvalidUserId.code(), 103);
    assert_eq!(ErrorKind::InvalidUserId.as_str(), "INVALID_USERID");
    assert_eq!(ErrorKind::JoinSameChannelTooOften.code(), 204);
}

#[test]
fn the_docs_stand_alone() {
    // No pointer into a behaviour model that is not in the repository.
    assert!(
        !PROTOCOL_MD.contains("spec §"),
        "PROTOCOL.md points at a spec section"
    );
    for needle in [
        "no subprotocol",
        "permessage-deflate",
        "`Origin`",
        "failed_logins_per_address",
        "`=` padding",
        "as a float",
        "notifies even when it changes nothing",
        "**clears**",
    ] {
        assert!(PROTOCOL_MD.contains(needle), "PROTOCOL.md lacks {needle:?}");
    }
}

#[test]
fn close_codes_are_distinct() {
    let codes: BTreeSet<u16> = CLOSE_CODES.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes.len(), CLOSE_CODES.len());
}

// ---------------------------------------------------------------- rejection

#[test]
fn a_bad_channel_id_inside_a_frame_is_refused_with_the_frame_id() {
    let e = decode_err(r#"{"id":1,"type":"join","channel_id":"a*b"}"#);
    assert_eq!(e.id, Some(1));
    assert!(e.message.contains("'*'"), "{}", e.message);
    assert!(e.message.contains("channel id"), "{}", e.message);
    assert!(e.message.contains("position 2"), "{}", e.message);
    assert!(e.message.starts_with("invalid request: "), "{}", e.message);
}

#[test]
fn bad_ids_are_refused_wherever_they_appear() {
    let cases = [
        (
            2,
            r#"{"id":2,"type":"login","protocol":1,"uid":"al/ice"}"#,
            "user id",
        ),
        (
            3,
            r#"{"id":3,"type":"send_peer_message","peer_id":"b*b","message":{"type":"TEXT","text":"x"}}"#,
            "user id",
        ),
        (
            4,
            r#"{"id":4,"type":"query_peers_online_status","peer_ids":["bob","null"]}"#,
            "user id",
        ),
        (
            5,
            r#"{"id":5,"type":"subscribe_peers_online_status","peer_ids":[""]}"#,
            "user id",
        ),
        (
            6,
            r#"{"id":6,"type":"get_channel_member_count","channel_ids":["ok","no'quote"]}"#,
            "channel id",
        ),
        (
            7,
            r#"{"id":7,"type":"get_user_attributes","user_id":"tab\there"}"#,
            "user id",
        ),
        (
            8,
            r#"{"id":8,"type":"set_channel_attributes","channel_id":"é","attributes":{}}"#,
            "channel id",
        ),
        (
            9,
            r#"{"id":9,"type":"leave","channel_id":"back`tick"}"#,
            "channel id",
        ),
    ];
    for (id, text, what) in cases {
        let e = decode_err(text);
        assert_eq!(e.id, Some(id), "{text}");
        assert!(e.message.contains(what), "{text}: {}", e.message);
    }
}

#[test]
fn identifier_rules_match_the_spec() {
    let join = |id: &str| {
        ClientFrame::decode(&json_frame(
            serde_json::json!({"id": 1, "type": "join", "channel_id": id}),
        ))
    };
    // The whole allowed alphabet.
    let letters: String = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    assert!(join(&letters).is_ok());
    assert!(join(" ").is_ok());
    for c in ID_PUNCTUATION.chars() {
        assert!(join(&format!("x{c}y")).is_ok(), "{c:?} should be allowed");
    }
    assert_eq!(ID_PUNCTUATION.chars().count(), 26);
    // Every other printable ASCII character, control characters and non-ASCII are refused,
    // with a message that names the character and its position.
    for c in (0u8..=127).map(char::from).chain(['é', '✓', '\u{a0}']) {
        if c.is_ascii_alphanumeric() || c == ' ' || ID_PUNCTUATION.contains(c) {
            continue;
        }
        let e = join(&format!("ab{c}")).unwrap_err();
        assert_eq!(e.id, Some(1));
        assert!(
            e.message.contains(&format!("{c:?}")),
            "{c:?}: {}",
            e.message
        );
        assert!(e.message.contains("position 3"), "{c:?}: {}", e.message);
    }
    // Length in bytes: 64 is fine, 65 is not.
    assert!(join(&"x".repeat(MAX_ID_BYTES)).is_ok());
    let e = join(&"x".repeat(MAX_ID_BYTES + 1)).unwrap_err();
    assert!(e.message.contains("65 bytes"), "{}", e.message);
    // Never empty, never the word null (case-sensitive).
    assert!(join("").unwrap_err().message.contains("must not be empty"));
    assert!(join("null").unwrap_err().message.contains("\"null\""));
    assert!(join("NULL").is_ok());
    assert!(join("Null").is_ok());
    assert!(join("nullx").is_ok());
    // Escapes are decoded before the check.
    assert_eq!(
        ClientFrame::decode(r#"{"id":1,"type":"join","channel_id":"\u0041bc"}"#)
            .unwrap()
            .request,
        Request::Join {
            channel_id: ch("Abc")
        }
    );
}

#[test]
fn unknown_types_are_refused_with_the_frame_id() {
    let e = decode_err(r#"{"id":2,"type":"fly"}"#);
    assert_eq!(e.id, Some(2));
    assert!(e.message.contains("unknown variant `fly`"), "{}", e.message);
    // Tags are case-sensitive and must be strings.
    assert_eq!(
        decode_err(r#"{"id":3,"type":"JOIN","channel_id":"a"}"#).id,
        Some(3)
    );
    assert_eq!(decode_err(r#"{"id":4,"type":7}"#).id, Some(4));
    // Server frame types are not requests.
    assert_eq!(decode_err(r#"{"id":5,"type":"ok"}"#).id, Some(5));
    // Unknown message types and subscription options too.
    let e = decode_err(
        r#"{"id":6,"type":"send_peer_message","peer_id":"bob","message":{"type":"VIDEO","media_id":"x"}}"#,
    );
    assert_eq!(e.id, Some(6));
    assert!(e.message.contains("`VIDEO`"), "{}", e.message);
    let e =
        decode_err(r#"{"id":7,"type":"query_peers_by_subscription_option","option":"EVERYTHING"}"#);
    assert_eq!(e.id, Some(7));
}

#[test]
fn missing_fields_are_refused_with_the_frame_id() {
    let cases = [
        (1, r#"{"id":1}"#, "type"),
        (2, r#"{"id":2,"type":"join"}"#, "channel_id"),
        (3, r#"{"id":3,"type":"login","uid":"alice"}"#, "protocol"),
        (4, r#"{"id":4,"type":"login","protocol":1}"#, "uid"),
        (
            5,
            r#"{"id":5,"type":"send_peer_message","peer_id":"bob"}"#,
            "message",
        ),
        (
            6,
            r#"{"id":6,"type":"send_channel_message","channel_id":"c","message":{"type":"TEXT"}}"#,
            "text",
        ),
        (
            7,
            r#"{"id":7,"type":"send_peer_message","peer_id":"bob","message":{"type":"RAW"}}"#,
            "raw",
        ),
        (8, r#"{"id":8,"type":"renew_token"}"#, "token"),
        (
            9,
            r#"{"id":9,"type":"set_channel_attributes","channel_id":"c"}"#,
            "attributes",
        ),
    ];
    for (id, text, field) in cases {
        let e = decode_err(text);
        assert_eq!(e.id, Some(id), "{text}");
        assert!(
            e.message.contains(&format!("missing field `{field}`")),
            "{text}: {}",
            e.message
        );
    }
}

#[test]
fn mistyped_fields_are_refused_with_the_frame_id() {
    let cases = [
        r#"{"id":1,"type":"login","protocol":"1","uid":"alice"}"#,
        r#"{"id":1,"type":"login","protocol":-1,"uid":"alice"}"#,
        r#"{"id":1,"type":"join","channel_id":7}"#,
        r#"{"id":1,"type":"query_peers_online_status","peer_ids":"bob"}"#,
        r#"{"id":1,"type":"set_local_user_attributes","attributes":{"k":1}}"#,
        r#"{"id":1,"type":"send_peer_message","peer_id":"bob","message":{"type":"TEXT","text":"x"},"options":{"enable_offline_messaging":"yes"}}"#,
    ];
    for text in cases {
        assert_eq!(decode_err(text).id, Some(1), "{text}");
    }
}

#[test]
fn non_json_is_refused_without_an_id() {
    for text in [
        "",
        "hello",
        "{",
        "{\"id\":1,",
        "{'id':1}",
        "{\"id\":1,\"type\":\"ping\"}x",
    ] {
        let e = decode_err(text);
        assert_eq!(e.id, None, "{text:?}");
        assert!(
            e.message.starts_with("frame is not valid JSON"),
            "{text:?}: {}",
            e.message
        );
    }
}

#[test]
fn json_that_is_not_an_object_is_refused() {
    for text in [
        "[1,2]",
        "[]",
        r#"[{"id":1,"type":"ping"}]"#,
        "42",
        "\"ping\"",
        "null",
        "true",
    ] {
        let e = decode_err(text);
        assert_eq!(e.id, None, "{text}");
        assert!(!e.message.is_empty());
    }
    // A one-element array is refused as well (whatever id is recovered from it).
    assert!(ClientFrame::decode("[1]").is_err());
}

#[test]
fn an_id_that_is_not_an_unsigned_integer_is_not_recovered() {
    for id in [
        "null",
        "\"7\"",
        "-1",
        "1.5",
        "1e3",
        "18446744073709551616",
        "true",
        "[1]",
        "{}",
    ] {
        let text = format!(r#"{{"id":{id},"type":"ping"}}"#);
        let e = decode_err(&text);
        assert_eq!(e.id, None, "{text}");
        assert!(
            e.message.starts_with("frame has no numeric \"id\""),
            "{text}: {}",
            e.message
        );
    }
    let e = decode_err(r#"{"type":"ping"}"#);
    assert_eq!(e.id, None);
    assert!(e.message.contains("missing field `id`"), "{}", e.message);
}

#[test]
fn optional_fields_default_and_unknown_fields_are_ignored() {
    let f = ClientFrame::decode(
        r#"{"id":5,"type":"send_peer_message","peer_id":"bob","message":{"type":"TEXT","text":"hi"}}"#,
    )
    .unwrap();
    assert_eq!(
        f.request,
        Request::SendPeerMessage {
            peer_id: uid("bob"),
            message: RtmMessage::text("hi"),
            options: SendMessageOptions::default(),
        }
    );
    let f =
        ClientFrame::decode(r#"{"id":1,"type":"login","protocol":1,"uid":"alice","token":null}"#)
            .unwrap();
    assert_eq!(
        f.request,
        Request::Login {
            protocol: 1,
            uid: uid("alice"),
            token: None,
            compact_events: false,
        }
    );
    let f = ClientFrame::decode(
        r#"{"id":2,"type":"get_channel_attributes","channel_id":"c","keys":null}"#,
    )
    .unwrap();
    assert_eq!(
        f.request,
        Request::GetChannelAttributes {
            channel_id: ch("c"),
            keys: None
        }
    );
    let f = ClientFrame::decode(r#"{"id":3,"type":"clear_channel_attributes","channel_id":"c"}"#)
        .unwrap();
    assert_eq!(
        f.request,
        Request::ClearChannelAttributes {
            channel_id: ch("c"),
            options: ChannelAttributeOptions::default()
        }
    );
    let f = ClientFrame::decode(
        r#"{"id":4,"type":"send_peer_message","peer_id":"bob","message":{"type":"TEXT","text":"x"},"options":{}}"#,
    )
    .unwrap();
    assert!(matches!(
        f.request,
        Request::SendPeerMessage {
            options: SendMessageOptions {
                enable_offline_messaging: false
            },
            ..
        }
    ));
    // Field order does not matter; unknown fields are ignored.
    let f = ClientFrame::decode(r#"{"future":[1,{"x":null}],"type":"ping","id":9,"v":2}"#).unwrap();
    assert_eq!(
        f,
        ClientFrame {
            id: 9,
            request: Request::Ping
        }
    );
}

// ----------------------------------------------------------------- messages

#[test]
fn message_size_limit_is_32768_bytes_inclusive() {
    assert_eq!(MAX_MESSAGE_BYTES, 32768);
    assert!(RtmMessage::text("x".repeat(32768)).validate().is_ok());
    let err = RtmMessage::text("x".repeat(32769)).validate().unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidMessage);
    assert_eq!(err.code, 102);
    assert!(err.message.contains("32769"), "{}", err.message);

    // Bytes, not characters: 16384 two-byte characters fit exactly, one more byte does not.
    let wide = "é".repeat(16384);
    assert_eq!(wide.len(), 32768);
    assert!(RtmMessage::text(wide.clone()).validate().is_ok());
    assert!(RtmMessage::text(wide + "x").validate().is_err());

    // RAW counts its bytes plus the description.
    let raw = |n: usize, d: usize| RtmMessage::Raw {
        raw: vec![7; n],
        description: "d".repeat(d),
    };
    assert!(raw(32768, 0).validate().is_ok());
    assert!(raw(32000, 768).validate().is_ok());
    assert_eq!(
        raw(32000, 769).validate().unwrap_err().kind,
        ErrorKind::InvalidMessage
    );
    assert_eq!(
        raw(0, 32769).validate().unwrap_err().kind,
        ErrorKind::InvalidMessage
    );
}

#[test]
fn empty_text_is_invalid_but_empty_raw_is_not() {
    let err = RtmMessage::text("").validate().unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidMessage);
    assert!(
        RtmMessage::Raw {
            raw: vec![],
            description: String::new()
        }
        .validate()
        .is_ok()
    );
}

#[test]
fn an_oversize_message_still_decodes_so_the_server_can_answer_invalid_message() {
    // Size is a semantic check (validate), not a decoding one: the server
    // answers INVALID_MESSAGE with the request's id rather than a decode error.
    let frame = ClientFrame {
        id: 5,
        request: Request::SendChannelMessage {
            channel_id: ch("lobby"),
            message: RtmMessage::text("x".repeat(40000)),
        },
    };
    let decoded = ClientFrame::decode(&frame.encode()).unwrap();
    let Request::SendChannelMessage { message, .. } = decoded.request else {
        panic!("wrong request")
    };
    assert_eq!(
        message.validate().unwrap_err().kind,
        ErrorKind::InvalidMessage
    );
}

#[test]
fn raw_bytes_travel_as_standard_base64() {
    let all_bytes: Vec<u8> = (0..=255).collect();
    for raw in [
        vec![],
        vec![0],
        vec![0, 1],
        vec![0xfb, 0xff, 0xbf],
        all_bytes,
    ] {
        let message = RtmMessage::Raw {
            raw: raw.clone(),
            description: "bytes".into(),
        };
        let text = serde_json::to_string(&message).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "RAW");
        assert_eq!(value["raw"], base64_encode(&raw));
        assert_eq!(serde_json::from_str::<RtmMessage>(&text).unwrap(), message);

        let frame = ClientFrame {
            id: 3,
            request: Request::SendPeerMessage {
                peer_id: uid("bob"),
                message,
                options: SendMessageOptions::default(),
            },
        };
        assert_eq!(ClientFrame::decode(&frame.encode()), Ok(frame));
    }
    // The standard alphabet with + and /, padded.
    assert_eq!(base64_encode(&[0xfb, 0xff, 0xbf]), "+/+/");
    assert_eq!(base64_encode(&[0, 1, 2, 0xfe, 0xff]), "AAEC/v8=");
    // `description` may be left out of a request.
    let m: RtmMessage = serde_json::from_str(r#"{"type":"RAW","raw":"AAE="}"#).unwrap();
    assert_eq!(
        m,
        RtmMessage::Raw {
            raw: vec![0, 1],
            description: String::new()
        }
    );
}

#[test]
fn invalid_base64_is_refused_with_the_frame_id() {
    for raw in [
        "%%%", "AAE", "AAF=", "-_8=", " AAE=", "AAE=\n", "A===", "AAE===",
    ] {
        let text = json_frame(serde_json::json!({
            "id": 4,
            "type": "send_peer_message",
            "peer_id": "bob",
            "message": {"type": "RAW", "raw": raw},
        }));
        let e = decode_err(&text);
        assert_eq!(e.id, Some(4), "{text}");
        assert!(e.message.contains("base64"), "{text}: {}", e.message);
    }
    // Not a string at all.
    let e = decode_err(
        r#"{"id":4,"type":"send_peer_message","peer_id":"bob","message":{"type":"RAW","raw":[0,1]}}"#,
    );
    assert_eq!(e.id, Some(4));
}

// ------------------------------------------------------------------ fuzzing

/// splitmix64: small, deterministic, good enough to scatter inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Pieces of JSON and of this protocol, glued at random.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\\",
    "\"id\"",
    "\"type\"",
    "\"login\"",
    "\"join\"",
    "\"ping\"",
    "\"send_peer_message\"",
    "\"message\"",
    "\"TEXT\"",
    "\"RAW\"",
    "\"raw\"",
    "\"text\"",
    "\"channel_id\"",
    "\"peer_ids\"",
    "\"uid\"",
    "\"protocol\"",
    "1",
    "0",
    "-1",
    "18446744073709551615",
    "18446744073709551616",
    "1e999",
    "-0",
    "0.5",
    "null",
    "true",
    "false",
    "\"\"",
    "\"null\"",
    "\"a*b\"",
    "\"AAE=\"",
    "\"%%\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\\uD83D\\uDE00\"",
    "\u{0}",
    "é",
    "\u{feff}",
    " ",
    "\n",
    "\"options\"",
    "{}",
    "[]",
];

fn garbage(rng: &mut Rng, valid: &[String]) -> String {
    match rng.below(6) {
        // Random bytes, made into a string the way a lenient reader would.
        0 => {
            let n = rng.below(120);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        // Token soup.
        1 | 2 => (0..rng.below(40)).map(|_| *rng.pick(TOKENS)).collect(),
        // A valid frame with a few random edits.
        3 | 4 => {
            let mut chars: Vec<char> = rng.pick(valid).chars().collect();
            for _ in 0..=rng.below(4) {
                let at = rng.below(chars.len() + 1);
                match rng.below(4) {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 => {
                        let token: Vec<char> = rng.pick(TOKENS).chars().collect();
                        chars.splice(at..at, token);
                    }
                    2 => chars.truncate(at),
                    _ => {
                        let c = char::from_u32(rng.below(0x3000) as u32).unwrap_or('?');
                        chars.insert(at, c);
                    }
                }
            }
            chars.into_iter().collect()
        }
        // Deep nesting, in a value position and at the top.
        _ => {
            let depth = 1 + rng.below(5000);
            let (open, close) = if rng.below(2) == 0 {
                ("[", "]")
            } else {
                ("{\"a\":", "}")
            };
            let inner = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            if rng.below(2) == 0 {
                inner
            } else {
                format!(r#"{{"id":1,"type":"join","channel_id":{inner}}}"#)
            }
        }
    }
}

#[test]
fn decode_never_panics_on_garbage() {
    let valid: Vec<String> = sample_requests()
        .into_iter()
        .enumerate()
        .map(|(i, request)| {
            ClientFrame {
                id: i as u64,
                request,
            }
            .encode()
        })
        .collect();
    let mut rng = Rng(0x5eed_2026);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..4000 {
        let input = garbage(&mut rng, &valid);
        match ClientFrame::decode(&input) {
            // Whatever decodes is a real frame: it survives another trip unchanged.
            Ok(frame) => {
                ok += 1;
                assert_eq!(ClientFrame::decode(&frame.encode()), Ok(frame), "{input:?}");
            }
            Err(e) => {
                refused += 1;
                assert!(!e.message.is_empty(), "{input:?}");
                // The error reply itself is always a valid server frame.
                let reply = error_reply_for(e);
                assert_eq!(ServerFrame::decode(&reply.encode()).unwrap(), reply);
            }
        }
        let _ = ServerFrame::decode(&input);
    }
    // The generator exercises both paths.
    assert!(ok > 0 && refused > 1000, "ok {ok}, refused {refused}");
}

// ------------------------------------------------------ the documented text

/// Fenced blocks of the reference: (info string, lines without indentation).
fn doc_blocks() -> Vec<(String, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in PROTOCOL_MD.lines() {
        let t = line.trim_start();
        if let Some(info) = t.strip_prefix("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some((info.trim().to_string(), Vec::new())),
            }
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(t.to_string());
        }
    }
    assert!(current.is_none(), "unclosed code block in PROTOCOL.md");
    blocks
}

/// Every frame text shown in the reference: whole `json` blocks and the
/// `→`/`←` lines of transcripts.
fn documented_frames() -> Vec<String> {
    let mut frames = Vec::new();
    for (info, lines) in doc_blocks() {
        if info == "json" {
            frames.push(lines.join("\n"));
        } else {
            for line in lines {
                if let Some(f) = line.strip_prefix("→ ").or_else(|| line.strip_prefix("← ")) {
                    frames.push(f.to_string());
                }
            }
        }
    }
    frames
}

/// Re-encodes a documented JSON text through the type it shows; returns the type's name.
fn reencode(text: &str) -> Option<(&'static str, String)> {
    if let Ok(f) = ClientFrame::decode(text) {
        return Some(("client frame", f.encode()));
    }
    if let Ok(f) = ServerFrame::decode(text) {
        if text.starts_with('[') {
            let ServerFrame::Event { event } = f else {
                return None;
            };
            return Some((
                "compact event",
                rtm::protocol::encode_compact_event(&event)?,
            ));
        }
        let again = f.encode();
        // A transfer connection's `error` frame has no id; it reads as a
        // server frame with `"id":null`.
        if again != text
            && let Ok(m) = serde_json::from_str::<rtm::protocol::MediaServerFrame>(text)
            && m.encode() == text
        {
            return Some(("transfer frame", m.encode()));
        }
        return Some(("server frame", again));
    }
    if let Ok(m) = serde_json::from_str::<RtmMessage>(text) {
        return Some(("message", serde_json::to_string(&m).unwrap()));
    }
    if let Ok(b) = serde_json::from_str::<ErrorBody>(text) {
        return Some(("error body", serde_json::to_string(&b).unwrap()));
    }
    if let Ok(f) = serde_json::from_str::<rtm::protocol::MediaServerFrame>(text) {
        return Some(("transfer frame", f.encode()));
    }
    if let Ok(h) = serde_json::from_str::<rtm::protocol::MediaHello>(text) {
        return Some(("transfer hello", serde_json::to_string(&h).unwrap()));
    }
    None
}

#[test]
fn every_json_example_in_the_docs_is_exactly_what_the_types_produce() {
    let mut checked = 0;
    for (info, lines) in doc_blocks() {
        if info != "json" {
            continue;
        }
        assert_eq!(
            lines.len(),
            1,
            "a json example should be one compact line: {lines:?}"
        );
        let text = &lines[0];
        let Some((what, again)) = reencode(text) else {
            panic!("documented JSON is not a frame, message or error body: {text}");
        };
        assert_eq!(
            &again, text,
            "the documented {what} differs from its encoding"
        );
        checked += 1;
    }
    assert!(checked > 60, "only {checked} json examples found");
}

#[test]
fn every_transcript_in_the_docs_is_what_the_server_would_send() {
    let mut checked = 0;
    for (_, lines) in doc_blocks() {
        // The error reply the last client line calls for, if it did not decode.
        let mut expected_error: Option<String> = None;
        for line in lines {
            if let Some(sent) = line.strip_prefix("→ ") {
                assert!(
                    expected_error.is_none(),
                    "no reply documented before {sent}"
                );
                match ClientFrame::decode(sent) {
                    Ok(f) => assert_eq!(f.encode(), sent, "documented client frame"),
                    Err(e) => expected_error = Some(error_reply_for(e).encode()),
                }
                checked += 1;
            } else if let Some(received) = line.strip_prefix("← ") {
                let frame = ServerFrame::decode(received)
                    .unwrap_or_else(|e| panic!("not a server frame ({e}): {received}"));
                assert_eq!(frame.encode(), received, "documented server frame");
                if let Some(expected) = expected_error.take() {
                    assert_eq!(received, expected, "documented reply to a malformed frame");
                }
                checked += 1;
            }
        }
        assert!(
            expected_error.is_none(),
            "a malformed frame has no documented reply"
        );
    }
    assert!(checked >= 15, "only {checked} transcript lines found");
}

/// The documented frames that contain `needle`, decoded.
fn documented_client_frames(needle: &str) -> Vec<ClientFrame> {
    documented_frames()
        .iter()
        .filter(|f| f.contains(needle))
        .filter_map(|f| ClientFrame::decode(f).ok())
        .collect()
}

fn documented_server_frames(needle: &str) -> Vec<ServerFrame> {
    documented_frames()
        .iter()
        .filter(|f| f.contains(needle))
        .filter_map(|f| ServerFrame::decode(f).ok())
        .collect()
}

#[test]
fn documented_examples_mean_what_the_docs_say() {
    // The login request and its reply.
    assert!(
        documented_client_frames("\"type\":\"login\"").contains(&ClientFrame {
            id: 1,
            request: Request::Login {
                protocol: 1,
                uid: uid("alice"),
                token: None,
                compact_events: false,
            }
        })
    );
    assert!(
        documented_server_frames("logged_in").contains(&ServerFrame::Ok {
            id: 1,
            result: Reply::LoggedIn {
                uid: uid("alice"),
                server_ts: TS,
                heartbeat_interval_ms: 5000,
                resumed: true,
                dev_mode: true,
                token_expires_in_s: None,
                compact_events: false,
            }
        })
    );
    // A stored message is flagged.
    assert!(
        documented_server_frames("message_from_peer")
            .iter()
            .any(|f| matches!(
                f,
                ServerFrame::Event {
                    event: Event::MessageFromPeer {
                        props: MessageProps {
                            is_offline_message: true,
                            ..
                        },
                        ..
                    }
                }
            ))
    );
    // The RAW example carries the bytes it claims.
    assert!(documented_client_frames("\"RAW\"").contains(&ClientFrame {
        id: 5,
        request: Request::SendPeerMessage {
            peer_id: uid("bob"),
            message: raw_message(),
            options: SendMessageOptions::default()
        }
    }));
    // The bad-id example is answered exactly as the decoder answers it.
    let bad = r#"{"id":6,"type":"join","channel_id":"a*b"}"#;
    let reply = error_reply_for(decode_err(bad)).encode();
    assert!(PROTOCOL_MD.contains(&format!("→ {bad}\n← {reply}")));
    // Presence uses the model's state names.
    assert!(
        documented_server_frames("peers_online_status_changed").contains(&ServerFrame::Event {
            event: Event::PeersOnlineStatusChanged {
                statuses: [(uid("bob"), PeerOnlineState::Unreachable)].into()
            }
        })
    );
    // The binary-frame error has no id.
    assert!(
        documented_server_frames("binary frames")
            .iter()
            .any(|f| matches!(f, ServerFrame::Error { id: None, error } if error.kind == ErrorKind::InvalidArgument))
    );
}

#[test]
fn every_frame_kind_has_a_documented_example() {
    let frames = documented_frames();
    let has = |needle: String| frames.iter().any(|f| f.contains(&needle));
    for request in sample_requests() {
        let name = request.name();
        assert!(
            has(format!("\"type\":\"{name}\"")),
            "no documented example of request {name}"
        );
    }
    for reply in sample_replies() {
        let value = serde_json::to_value(&reply).unwrap();
        let kind = value["kind"].as_str().unwrap();
        assert!(
            has(format!("\"result\":{{\"kind\":\"{kind}\"")),
            "no documented example of reply {kind}"
        );
    }
    for event in sample_events() {
        let value = serde_json::to_value(&event).unwrap();
        let kind = value["kind"].as_str().unwrap();
        assert!(
            has(format!("\"event\":{{\"kind\":\"{kind}\"")),
            "no documented example of event {kind}"
        );
        assert!(
            PROTOCOL_MD
                .lines()
                .any(|l| l.starts_with("### 8.") && l.contains(&format!("`{kind}`"))),
            "event {kind} has no section"
        );
    }
}

#[test]
fn the_error_and_close_code_tables_match_the_code() {
    for kind in ALL_ERROR_KINDS {
        let row = format!("| {} | `{}` |", kind.code(), kind.as_str());
        assert!(PROTOCOL_MD.contains(&row), "error table lacks row {row}");
    }
    for (code, name) in CLOSE_CODES {
        let row = format!("| {code} | `{name}` |");
        assert!(
            PROTOCOL_MD.contains(&row),
            "close code table lacks row {row}"
        );
    }
}

#[test]
fn the_documented_limits_are_the_codes_limits() {
    // If one of these changes, update docs/PROTOCOL.md (sections 5, 6, 9–11, 14) with it.
    assert_eq!(PROTOCOL_VERSION, 1);
    assert_eq!(MAX_ID_BYTES, 64);
    assert!(PROTOCOL_MD.contains(ID_PUNCTUATION));
    assert_eq!(MAX_MESSAGE_BYTES, 32_768);
    assert_eq!(MAX_JOINED_CHANNELS, 20);
    assert_eq!(MAX_MEMBER_COUNT_CHANNELS, 32);
    assert_eq!(MAX_QUERY_PEERS, 256);
    assert_eq!(MAX_SUBSCRIPTIONS, 512);
    assert_eq!(MEMBER_EVENTS_MAX_MEMBERS, 512);
    assert_eq!(MAX_ATTRIBUTE_KEYS, 32);
    assert_eq!(MAX_ATTRIBUTE_KEY_BYTES, 32);
    assert_eq!(MAX_ATTRIBUTE_VALUE_BYTES, 8_192);
    assert_eq!(MAX_USER_ATTRIBUTES_BYTES, 16_384);
    assert_eq!(MAX_CHANNEL_ATTRIBUTES_BYTES, 32_768);
}
