//! The adapters: one raw WebSocket per load client, and for each server under
//! test how to log in, join a channel, publish, send to a peer and read what
//! comes back. Raw frames instead of SDK clients keep the load generator cheap
//! at high client counts (no request map, no event stream per client), and let
//! the same scenario code drive rtm, the bare server, nats-server and
//! socket.io.
//!
//! | target   | login                         | channel        | peer            |
//! |----------|-------------------------------|----------------|-----------------|
//! | rtm      | `login` frame (PROTOCOL.md)   | `join`, `send_channel_message` | `send_peer_message` |
//! | bare     | the URL path names the client | one room: `* text` to all others | `@uid text` |
//! | nats     | `CONNECT`, `SUB p.<uid>`      | `SUB c.<ch>`, `PUB c.<ch>` | `PUB p.<uid>` |
//! | socketio | engine.io open, `40`, `login` event | `join` / `pub` events | `peer` event |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::protocol::{ChannelId, ClientFrame, PROTOCOL_VERSION, Request, RtmMessage, Uid};
use anyhow::{Context as _, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Which server a scenario drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// `rtm serve`, over its JSON protocol.
    Rtm,
    /// The bare tokio-tungstenite relay (`rtm bench --bare-server`): the
    /// physical limit of this stack.
    Bare,
    /// nats-server over its WebSocket listener, NATS text protocol.
    Nats,
    /// A socket.io server (bench/peers/socketio.js).
    Socketio,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Rtm => "rtm",
            Target::Bare => "bare",
            Target::Nats => "nats",
            Target::Socketio => "socketio",
        }
    }
}

pub type Ws = WebSocketStream<TcpStream>;

/// How long one setup step (connect, login, join) may take.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Client side socket settings: a small read buffer like the server's, so
/// thousands of load clients stay cheap.
fn client_ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(1024 * 1024))
}

/// The loopback source address of client `i`: 127.0.0.1 … 127.0.0.`n`.
/// Spreading clients over several addresses multiplies the ephemeral ports.
pub fn source_addr(i: usize, n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % n.clamp(1, 250)) as u8))
}

/// `ws://host:port[/…]` → host:port.
pub fn socket_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("ws://")
        .with_context(|| format!("{url}: only ws:// URLs can be benchmarked"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    hostport
        .parse()
        .with_context(|| format!("{url}: expected ws://IP:PORT on loopback"))
}

/// Opens the WebSocket of client `uid` from `source`.
pub async fn open(target: Target, url: &str, uid: &str, source: IpAddr) -> anyhow::Result<Ws> {
    let addr = socket_addr(url)?;
    if !addr.ip().is_loopback() {
        bail!("{url}: benchmarks only run against loopback addresses (127.0.0.x)");
    }
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::new(source, 0))
        .with_context(|| format!("cannot bind a client socket to {source}"))?;
    let stream = socket
        .connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let _ = stream.set_nodelay(true);
    let path = match target {
        Target::Rtm | Target::Nats => "/".to_string(),
        Target::Bare => format!("/{uid}"),
        Target::Socketio => "/socket.io/?EIO=4&transport=websocket".to_string(),
    };
    let request = format!("ws://{addr}{path}");
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(client_ws_config()))
            .await
            .with_context(|| format!("WebSocket handshake with {addr} failed"))?;
    Ok(ws)
}

/// Something read from a server.
#[derive(Debug)]
pub enum Ev<'a> {
    /// A load message's text (see `stats::payload`).
    Payload(&'a str),
    /// The reply to a request: rtm `ok` (with its id), socket.io ack (its id),
    /// nats `PONG`, the bare server's greeting.
    Reply(Option<u64>),
    /// The server said no: rtm `error`, nats `-ERR`, socket.io connect error.
    Error(&'a str),
    /// A frame that must be answered (nats `PING`, engine.io ping).
    Answer(Message),
    /// The handshake greeting of nats (`INFO`) and engine.io (`0{…}`).
    Open,
    /// rtm `peers_online_status_changed`: the whole frame.
    Presence(&'a str),
    /// rtm call invitations, the whole frame: every `*_invitation_*` event
    /// and the `invitation_sent` reply (whose `peer_online` matters).
    Invitation(&'a str),
    /// Anything else (rtm member events, replies nobody waits for …).
    Other,
}

/// Turns frames into [`Ev`]s. NATS is a byte stream cut into WebSocket frames
/// anywhere, so its decoder keeps what is not yet a whole protocol message.
pub struct Decoder {
    target: Target,
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new(target: Target) -> Decoder {
        Decoder {
            target,
            buf: Vec::new(),
        }
    }

    pub fn decode(&mut self, msg: &Message, f: &mut dyn FnMut(Ev<'_>)) {
        match self.target {
            Target::Rtm => {
                if let Message::Text(t) = msg {
                    f(decode_rtm(t.as_str()));
                }
            }
            Target::Bare => {
                if let Message::Text(t) = msg {
                    let t = t.as_str();
                    f(match t.split_once(' ') {
                        Some((_, p)) => Ev::Payload(p),
                        None if t == "hi" => Ev::Reply(None),
                        None => Ev::Other,
                    });
                }
            }
            Target::Socketio => {
                if let Message::Text(t) = msg {
                    f(decode_socketio(t.as_str()));
                }
            }
            Target::Nats => {
                let data: &[u8] = match msg {
                    Message::Binary(b) => b,
                    Message::Text(t) => t.as_bytes(),
                    _ => return,
                };
                self.buf.extend_from_slice(data);
                let used = decode_nats(&self.buf, f);
                self.buf.drain(..used);
            }
        }
    }
}

/// The text between `"text":"` and the next quote.
fn rtm_text(t: &str) -> Option<&str> {
    const KEY: &str = "\"text\":\"";
    let at = t.find(KEY)? + KEY.len();
    let end = t[at..].find('"')?;
    Some(&t[at..at + end])
}

/// The `kind` of an rtm event frame: the event's first field, as the server
/// writes it (`{"type":"event","event":{"kind":"…"`).
fn event_kind(t: &str) -> Option<&str> {
    let rest = t.strip_prefix(r#"{"type":"event","event":{"kind":""#)?;
    rest.split('"').next()
}

fn decode_rtm(t: &str) -> Ev<'_> {
    // A compact live message (PROTOCOL.md §8.13): its text is the last field.
    if let Some(rest) = t
        .strip_prefix("[\"c\",")
        .or_else(|| t.strip_prefix("[\"p\","))
    {
        return match rest
            .strip_suffix("\"]")
            .and_then(|r| r.rfind(",\"").map(|at| &r[at + 2..]))
        {
            Some(text) => Ev::Payload(text),
            None => Ev::Other,
        };
    }
    // The server writes `type` first (PROTOCOL.md shows its exact output).
    let head = &t[..t.len().min(24)];
    if head.contains("\"event\"") {
        if let Some(text) = rtm_text(t) {
            return Ev::Payload(text);
        }
        if event_kind(t).is_some_and(|k| k.contains("invitation")) {
            return Ev::Invitation(t);
        }
        if t.contains("peers_online_status_changed") {
            return Ev::Presence(t);
        }
        Ev::Other
    } else if head.contains("\"ok\"") {
        if t.contains("\"kind\":\"invitation_sent\"") {
            return Ev::Invitation(t);
        }
        let id = t.find("\"id\":").and_then(|at| {
            let rest = &t[at + 5..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse().ok()
        });
        Ev::Reply(id)
    } else if head.contains("\"error\"") {
        Ev::Error(t)
    } else {
        Ev::Other
    }
}

fn decode_socketio(t: &str) -> Ev<'_> {
    if t == "2" {
        return Ev::Answer(Message::text("3"));
    }
    if t.starts_with("0{") {
        return Ev::Open;
    }
    if let Some(rest) = t.strip_prefix("42[\"m\",\"") {
        return match rest.find('"') {
            Some(end) => Ev::Payload(&rest[..end]),
            None => Ev::Other,
        };
    }
    if let Some(rest) = t.strip_prefix("43") {
        let end = rest.find('[').unwrap_or(rest.len());
        return Ev::Reply(rest[..end].parse().ok());
    }
    if t.starts_with("40") {
        return Ev::Reply(None);
    }
    if t.starts_with("44") {
        return Ev::Error(t);
    }
    Ev::Other
}

/// Decodes whole NATS protocol messages from `buf`; returns the bytes used.
fn decode_nats(buf: &[u8], f: &mut dyn FnMut(Ev<'_>)) -> usize {
    let mut at = 0;
    loop {
        let rest = &buf[at..];
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return at;
        };
        let line = &rest[..eol];
        if line.starts_with(b"MSG ") || line.starts_with(b"HMSG ") {
            // MSG <subject> <sid> [reply-to] <#bytes>
            let len: Option<usize> = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse().ok());
            let Some(len) = len else {
                f(Ev::Error("malformed MSG line"));
                return buf.len();
            };
            let start = eol + 2;
            if rest.len() < start + len + 2 {
                return at; // the payload is not all here yet
            }
            match std::str::from_utf8(&rest[start..start + len]) {
                Ok(p) => f(Ev::Payload(p)),
                Err(_) => f(Ev::Other),
            }
            at += start + len + 2;
            continue;
        }
        let ev = if line == b"PING" {
            Ev::Answer(Message::binary(&b"PONG\r\n"[..]))
        } else if line == b"PONG" {
            Ev::Reply(None)
        } else if line.starts_with(b"INFO") {
            Ev::Open
        } else if line.starts_with(b"-ERR") {
            Ev::Error(std::str::from_utf8(line).unwrap_or("-ERR"))
        } else {
            Ev::Other
        };
        f(ev);
        at += eol + 2;
    }
}

fn nats(text: String) -> Message {
    Message::binary(text.into_bytes())
}

/// A channel message carrying `payload`.
pub fn publish(target: Target, channel: &ChannelId, payload: &str, id: u64) -> Message {
    match target {
        Target::Rtm => rtm_request(
            id,
            Request::SendChannelMessage {
                channel_id: channel.clone(),
                message: RtmMessage::text(payload),
            },
        ),
        Target::Bare => Message::text(format!("* {payload}")),
        Target::Nats => nats(format!(
            "PUB c.{channel} {}\r\n{payload}\r\n",
            payload.len()
        )),
        Target::Socketio => Message::text(format!(r#"42["pub","{channel}","{payload}"]"#)),
    }
}

/// A peer message to `to` carrying `payload`.
pub fn to_peer(target: Target, to: &Uid, payload: &str, id: u64) -> Message {
    match target {
        Target::Rtm => rtm_request(
            id,
            Request::SendPeerMessage {
                peer_id: to.clone(),
                message: RtmMessage::text(payload),
                options: Default::default(),
            },
        ),
        Target::Bare => Message::text(format!("@{to} {payload}")),
        Target::Nats => nats(format!("PUB p.{to} {}\r\n{payload}\r\n", payload.len())),
        Target::Socketio => Message::text(format!(r#"42["peer","{to}","{payload}"]"#)),
    }
}

/// rtm request frames used outside the hot path.
pub fn rtm_request(id: u64, request: Request) -> Message {
    // The protocol's own types, so the load generator cannot drift from it.
    Message::text(ClientFrame { id, request }.encode())
}

/// A validated uid (the error says which character is wrong).
pub fn uid(s: &str) -> anyhow::Result<Uid> {
    Uid::new(s).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A validated channel id.
pub fn channel_id(s: &str) -> anyhow::Result<ChannelId> {
    ChannelId::new(s).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Reads until `done` accepts an event, answering pings; fails on a server
/// error, a closed socket or the setup timeout.
async fn wait(
    ws: &mut Ws,
    dec: &mut Decoder,
    what: &str,
    mut done: impl FnMut(&Ev<'_>) -> bool,
) -> anyhow::Result<()> {
    let step = async {
        loop {
            let msg = match ws.next().await {
                Some(Ok(m)) => m,
                Some(Err(e)) => bail!("{what}: {e}"),
                None => bail!("{what}: the server closed the connection"),
            };
            if let Message::Close(c) = &msg {
                bail!("{what}: the server closed the connection ({c:?})");
            }
            let mut finished = false;
            let mut error = None;
            let mut answers = Vec::new();
            dec.decode(&msg, &mut |ev| match ev {
                Ev::Error(e) => error = Some(e.to_string()),
                Ev::Answer(m) => answers.push(m),
                ref other => finished |= done(other),
            });
            for a in answers {
                ws.send(a).await?;
            }
            if let Some(e) = error {
                bail!("{what}: {e}");
            }
            if finished {
                return Ok(());
            }
        }
    };
    tokio::time::timeout(SETUP_TIMEOUT, step)
        .await
        .with_context(|| format!("{what}: no answer within {SETUP_TIMEOUT:?}"))?
}

/// Logs `uid` in (whatever that means for the target). Request id 1 is used.
pub async fn login(
    target: Target,
    ws: &mut Ws,
    dec: &mut Decoder,
    uid: &str,
) -> anyhow::Result<()> {
    let what = format!("login of {uid}");
    match target {
        Target::Rtm => {
            let request = Request::Login {
                protocol: PROTOCOL_VERSION,
                uid: self::uid(uid)?,
                token: None,
                // As the SDK asks by default.
                compact_events: true,
            };
            ws.send(rtm_request(1, request)).await?;
            wait(ws, dec, &what, |e| matches!(e, Ev::Reply(Some(1)))).await
        }
        Target::Bare => wait(ws, dec, &what, |e| matches!(e, Ev::Reply(None))).await,
        Target::Nats => {
            wait(ws, dec, &what, |e| matches!(e, Ev::Open)).await?;
            ws.send(nats(format!(
                "CONNECT {{\"verbose\":false,\"pedantic\":false,\"echo\":false,\"protocol\":1}}\r\nSUB p.{uid} 1\r\nPING\r\n"
            )))
            .await?;
            wait(ws, dec, &what, |e| matches!(e, Ev::Reply(None))).await
        }
        Target::Socketio => {
            wait(ws, dec, &what, |e| matches!(e, Ev::Open)).await?;
            ws.send(Message::text("40")).await?;
            wait(ws, dec, &what, |e| matches!(e, Ev::Reply(None))).await?;
            ws.send(Message::text(format!(r#"421["login","{uid}"]"#)))
                .await?;
            wait(ws, dec, &what, |e| matches!(e, Ev::Reply(Some(1)))).await
        }
    }
}

/// Joins `channel`. Request id 2 is used. The bare server has one room that
/// every connection is in.
pub async fn join(
    target: Target,
    ws: &mut Ws,
    dec: &mut Decoder,
    channel: &str,
) -> anyhow::Result<()> {
    let what = format!("join of {channel}");
    match target {
        Target::Rtm => {
            let request = Request::Join {
                channel_id: channel_id(channel)?,
            };
            ws.send(rtm_request(2, request)).await?;
            wait(ws, dec, &what, |e| matches!(e, Ev::Reply(Some(2)))).await
        }
        Target::Bare => Ok(()),
        Target::Nats => {
            ws.send(nats(format!("SUB c.{channel} 2\r\nPING\r\n")))
                .await?;
            wait(ws, dec, &what, |e| matches!(e, Ev::Reply(None))).await
        }
        Target::Socketio => {
            ws.send(Message::text(format!(r#"422["join","{channel}"]"#)))
                .await?;
            wait(ws, dec, &what, |e| matches!(e, Ev::Reply(Some(2)))).await
        }
    }
}

/// An rtm request during setup: sends it and waits for its reply.
pub async fn rtm_call(
    ws: &mut Ws,
    dec: &mut Decoder,
    id: u64,
    request: Request,
) -> anyhow::Result<()> {
    let what = request.name();
    ws.send(rtm_request(id, request)).await?;
    wait(
        ws,
        dec,
        what,
        |e| matches!(e, Ev::Reply(Some(i)) if *i == id),
    )
    .await
}

/// A running connection: a writer task that feeds every queued frame and
/// flushes once per batch, and the read half for the scenario's reader.
pub struct Link {
    /// Frames to send; dropping every sender closes the socket.
    pub tx: mpsc::UnboundedSender<Message>,
    pub stream: SplitStream<Ws>,
    pub decoder: Decoder,
}

impl Link {
    pub fn start(target: Target, ws: Ws, decoder: Decoder) -> Link {
        let _ = target;
        let (sink, stream) = ws.split();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(sink, rx));
        Link {
            tx,
            stream,
            decoder,
        }
    }
}

async fn write_loop(mut sink: SplitSink<Ws, Message>, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut batch = Vec::with_capacity(64);
    while rx.recv_many(&mut batch, 64).await > 0 {
        for m in batch.drain(..) {
            if sink.feed(m).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(target: Target, frames: &[Message]) -> Vec<String> {
        let mut d = Decoder::new(target);
        let mut out = Vec::new();
        for m in frames {
            d.decode(m, &mut |e| out.push(format!("{e:?}")));
        }
        out
    }

    #[test]
    fn rtm_frames() {
        let ev = events(
            Target::Rtm,
            &[
                Message::text(
                    r#"{"type":"event","event":{"kind":"channel_message","channel_id":"b","member_id":"x","message":{"type":"TEXT","text":"1:2:3"},"props":{"server_received_ts":1,"is_offline_message":false}}}"#,
                ),
                Message::text(r#"{"type":"ok","id":17,"result":{"kind":"done"}}"#),
                Message::text(r#"{"type":"error","id":7,"error":{"code":9}}"#),
            ],
        );
        assert_eq!(ev[0], r#"Payload("1:2:3")"#);
        assert_eq!(ev[1], "Reply(Some(17))");
        assert!(ev[2].starts_with("Error"));
    }

    #[test]
    fn rtm_invitation_frames_come_whole() {
        use crate::protocol::{Event, Reply, ServerFrame};
        let frames = [
            ServerFrame::Event {
                event: Event::LocalInvitationAccepted {
                    invitation_id: 3,
                    // Text that looks like a load payload must not fool it.
                    response: "1:2:3".into(),
                },
            },
            ServerFrame::Ok {
                id: 9,
                result: Reply::InvitationSent {
                    peer_online: false,
                    expires_in_ms: 0,
                },
            },
            ServerFrame::Ok {
                id: 10,
                result: Reply::Done,
            },
        ];
        let msgs: Vec<Message> = frames.iter().map(|f| Message::text(f.encode())).collect();
        let ev = events(Target::Rtm, &msgs);
        assert!(ev[0].starts_with("Invitation(") && ev[0].contains("local_invitation_accepted"));
        assert!(ev[1].starts_with("Invitation(") && ev[1].contains("peer_online"));
        assert_eq!(ev[2], "Reply(Some(10))");
    }

    #[test]
    fn nats_stream_split_anywhere() {
        let all = b"INFO {}\r\nPING\r\nMSG c.x 2 5\r\n1:2:3\r\nMSG p.a 1 5\r\n4:5:6\r\n";
        let frames: Vec<Message> = all.chunks(7).map(|c| Message::binary(c.to_vec())).collect();
        let ev = events(Target::Nats, &frames);
        assert_eq!(ev.len(), 4);
        assert_eq!(ev[0], "Open");
        assert!(ev[1].starts_with("Answer"));
        assert_eq!(ev[2], r#"Payload("1:2:3")"#);
        assert_eq!(ev[3], r#"Payload("4:5:6")"#);
    }

    #[test]
    fn socketio_frames() {
        let ev = events(
            Target::Socketio,
            &[
                Message::text("2"),
                Message::text(r#"42["m","1:2:3"]"#),
                Message::text("431[]"),
            ],
        );
        assert!(ev[0].starts_with("Answer"));
        assert_eq!(ev[1], r#"Payload("1:2:3")"#);
        assert_eq!(ev[2], "Reply(Some(1))");
    }
}
