//! A tiny echo bot on the rtm SDK: logs in, joins a channel, and answers
//! every direct message and channel message that mentions it.
//!
//!     cargo run --example bot -- ws://127.0.0.1:7420 echobot general
use rtm::client::{ChannelEvent, ClientConfig, ClientEvent, RtmClient, RtmMessage};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:7420".into());
    let uid = args.next().unwrap_or_else(|| "echobot".into());
    let channel = args.next().unwrap_or_else(|| "general".into());
    let (client, mut events) = RtmClient::new(url, ClientConfig::default());
    client.login(&uid, None).await?;
    // Held for the whole run: dropping the last handle would leave the
    // channel. Its events come on `events` (the channel's own stream is not
    // taken), once each.
    let room = client.create_channel(&channel)?;
    room.join().await?;
    while let Some(event) = events.recv().await {
        match event {
            ClientEvent::MessageFromPeer {
                message: RtmMessage::Text { text },
                peer_id,
                ..
            } => {
                let reply = RtmMessage::text(format!("you said: {text}"));
                client
                    .send_message_to_peer(reply, peer_id.as_str(), Default::default())
                    .await?;
            }
            ClientEvent::Channel {
                event:
                    ChannelEvent::ChannelMessage {
                        message: RtmMessage::Text { text },
                        member_id,
                        ..
                    },
                ..
            } if text.contains(&uid) => room
                .send_message(RtmMessage::text(format!("{member_id}: {text}")))
                .await
                .map(|_| ())?,
            ClientEvent::ConnectionStateChanged { state, reason } => {
                println!("{state:?} ({reason:?})")
            }
            // The SDK's queue is bounded: a bot that falls behind is told.
            ClientEvent::Lagged { dropped } => println!("fell behind: {dropped} events dropped"),
            _ => {}
        }
    }
    Ok(())
}
