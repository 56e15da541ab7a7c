//! What a logged-in session's requests do: the uid's call limits first,
//! then the hub. Login, logout and token renewal change the connection
//! itself and are handled there.

use std::sync::Arc;

use super::hub::Hub;
use super::ratelimit::CallLimits;
use super::session::SessionHandle;
use crate::protocol::{
    ErrorBody, ErrorKind, KeyListUse, MAX_INVITATION_CHANNEL_BYTES, MAX_INVITATION_CONTENT_BYTES,
    MAX_INVITATION_RESPONSE_BYTES, MAX_MEMBER_COUNT_CHANNELS, Reply, Request, Uid,
    check_invitation_text, check_key_list,
};

pub(super) async fn handle_request(
    hub: &Arc<Hub>,
    s: &Arc<SessionHandle>,
    limits: &CallLimits,
    request: Request,
) -> Result<Reply, ErrorBody> {
    let uid = &s.uid;
    match request {
        Request::Login { .. } => Err(ErrorBody::new(
            ErrorKind::AlreadyLogin,
            format!("already logged in as {uid}; log out first"),
        )),
        Request::Logout => Ok(Reply::Done), // handled by the caller
        Request::Ping => Ok(Reply::Pong {
            server_ts: hub.now_ms(),
        }),
        Request::RenewToken { .. } => Ok(Reply::Done), // handled by the caller
        Request::SendPeerMessage {
            peer_id,
            message,
            options,
        } => {
            message.validate()?;
            limits.with(|l| l.messages.check("messages"))?;
            hub.send_peer_message(uid, &peer_id, &message, options)
                .await
        }
        Request::Join { channel_id } => {
            limits.with(|l| l.joins.check("joins"))?;
            // The reference tells this limit from the one on all joins, so
            // code ported from it can react to each (wait for this channel,
            // or slow down in general).
            limits
                .with(|l| l.join_channel(&channel_id))
                .map_err(|e| ErrorBody::new(ErrorKind::JoinSameChannelTooOften, e.message))?;
            hub.join(s, &channel_id).await
        }
        Request::Leave { channel_id } => hub.leave(uid, &channel_id),
        Request::SendChannelMessage {
            channel_id,
            message,
        } => {
            message.validate()?;
            limits.with(|l| l.messages.check("messages"))?;
            hub.send_channel_message(uid, &channel_id, message)
        }
        Request::GetMembers { channel_id } => {
            limits.with(|l| l.get_members.check("member list requests"))?;
            hub.get_members(uid, &channel_id).await
        }
        Request::GetChannelMemberCount { channel_ids } => {
            check_member_count_channels(channel_ids.len())?;
            limits.with(|l| l.member_count.check("member count queries"))?;
            hub.member_counts(&channel_ids).await
        }
        Request::QueryPeersOnlineStatus { peer_ids } => {
            limits.with(|l| l.query_status.check("online status queries"))?;
            hub.query_online(&peer_ids).await
        }
        Request::SubscribePeersOnlineStatus { peer_ids } => {
            limits.with(|l| l.subscribe.check("subscribe calls"))?;
            hub.subscribe(uid, &peer_ids).await
        }
        Request::UnsubscribePeersOnlineStatus { peer_ids } => {
            limits.with(|l| l.unsubscribe.check("unsubscribe calls"))?;
            hub.unsubscribe(uid, &peer_ids)
        }
        // Not rate limited: each one only releases what the server sent.
        Request::AckOffline { up_to } => hub.ack_offline(s, up_to).await,
        Request::QueryPeersBySubscriptionOption { option: _ } => {
            limits.with(|l| l.query_subscription.check("subscription queries"))?;
            hub.subscriptions(uid)
        }
        Request::SendLocalInvitation {
            invitation_id,
            callee_id,
            content,
            channel_id,
        } => {
            check_invitation_text("content", &content, MAX_INVITATION_CONTENT_BYTES)?;
            if let Some(ch) = &channel_id {
                check_invitation_text("channel id", ch, MAX_INVITATION_CHANNEL_BYTES)?;
            }
            if &callee_id == uid {
                return Err(ErrorBody::new(
                    ErrorKind::InvalidArgument,
                    "you cannot ring yourself; name another user",
                ));
            }
            limits.with(|l| l.invitations.check("call invitations"))?;
            hub.send_invitation(uid, invitation_id, &callee_id, content, channel_id)
                .await
        }
        // Not rate limited: each acts on one open invitation, and a user has
        // few of those.
        Request::CancelLocalInvitation { invitation_id } => {
            hub.cancel_invitation(uid, invitation_id)
        }
        Request::AckRemoteInvitation {
            caller_id,
            invitation_id,
        } => hub.ack_invitation(uid, &caller_id, invitation_id),
        Request::AcceptRemoteInvitation {
            caller_id,
            invitation_id,
            response,
        } => {
            check_invitation_text("response", &response, MAX_INVITATION_RESPONSE_BYTES)?;
            hub.answer_invitation(uid, &caller_id, invitation_id, response, true)
        }
        Request::RefuseRemoteInvitation {
            caller_id,
            invitation_id,
            response,
        } => {
            check_invitation_text("response", &response, MAX_INVITATION_RESPONSE_BYTES)?;
            hub.answer_invitation(uid, &caller_id, invitation_id, response, false)
        }
        Request::RequestMediaUpload {
            media_type,
            size,
            sha256,
            file_name,
            resume_media_id,
        } => hub.media().request_upload(
            uid,
            media_type,
            size,
            &sha256,
            &file_name,
            resume_media_id.as_deref(),
        ),
        Request::RequestMediaDownload { media_id, offset } => {
            hub.media().request_download(uid, &media_id, offset)
        }
        Request::CancelMediaUpload { media_id } => hub.media().cancel_upload(uid, &media_id),
        other => Box::pin(attribute_request(hub, uid, limits, other)).await,
    }
}

/// The attribute requests of a logged-in session: limits first, then the hub.
async fn attribute_request(
    hub: &Arc<Hub>,
    uid: &Uid,
    limits: &CallLimits,
    request: Request,
) -> Result<Reply, ErrorBody> {
    match request {
        Request::SetLocalUserAttributes { attributes } => {
            limits.with(|l| l.user_attr_writes.check("user attribute writes"))?;
            hub.update_user_attributes(uid, &attributes, |m| *m = attributes.clone())
        }
        Request::AddOrUpdateLocalUserAttributes { attributes } => {
            limits.with(|l| l.user_attr_writes.check("user attribute writes"))?;
            hub.update_user_attributes(uid, &attributes, |m| {
                m.extend(attributes.iter().map(|(k, v)| (k.clone(), v.clone())))
            })
        }
        Request::DeleteLocalUserAttributesByKeys { keys } => {
            check_key_list(&keys, KeyListUse::Delete)?;
            limits.with(|l| l.user_attr_writes.check("user attribute writes"))?;
            hub.update_user_attributes(uid, &Default::default(), |m| {
                keys.iter().for_each(|k| {
                    m.remove(k);
                })
            })
        }
        Request::ClearLocalUserAttributes => {
            limits.with(|l| l.user_attr_writes.check("user attribute writes"))?;
            hub.update_user_attributes(uid, &Default::default(), |m| m.clear())
        }
        Request::GetUserAttributes { user_id, keys } => {
            if let Some(keys) = &keys {
                check_key_list(keys, KeyListUse::Read)?;
            }
            limits.with(|l| l.user_attr_reads.check("user attribute reads"))?;
            hub.get_user_attributes(&user_id, keys.as_deref()).await
        }
        Request::SetChannelAttributes {
            channel_id,
            attributes,
            options,
        } => {
            limits.with(|l| l.channel_attr_writes.check("channel attribute writes"))?;
            let all = attributes.clone();
            hub.update_channel_attributes(uid, &channel_id, attributes, options, move |m| {
                *m = all.clone()
            })
            .await
        }
        Request::AddOrUpdateChannelAttributes {
            channel_id,
            attributes,
            options,
        } => {
            limits.with(|l| l.channel_attr_writes.check("channel attribute writes"))?;
            let add = attributes.clone();
            hub.update_channel_attributes(uid, &channel_id, attributes, options, move |m| {
                m.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())))
            })
            .await
        }
        Request::DeleteChannelAttributesByKeys {
            channel_id,
            keys,
            options,
        } => {
            check_key_list(&keys, KeyListUse::Delete)?;
            limits.with(|l| l.channel_attr_writes.check("channel attribute writes"))?;
            hub.update_channel_attributes(uid, &channel_id, Default::default(), options, move |m| {
                keys.iter().for_each(|k| {
                    m.remove(k);
                })
            })
            .await
        }
        Request::ClearChannelAttributes {
            channel_id,
            options,
        } => {
            limits.with(|l| l.channel_attr_writes.check("channel attribute writes"))?;
            hub.update_channel_attributes(uid, &channel_id, Default::default(), options, |m| {
                m.clear()
            })
            .await
        }
        Request::GetChannelAttributes { channel_id, keys } => {
            if let Some(keys) = &keys {
                check_key_list(keys, KeyListUse::Read)?;
            }
            limits.with(|l| l.channel_attr_reads.check("channel attribute reads"))?;
            hub.get_channel_attributes(&channel_id, keys.as_deref())
                .await
        }
        other => Err(ErrorBody::new(
            ErrorKind::Unknown,
            format!(
                "{} reached the attribute requests; this is a server bug",
                other.name()
            ),
        )),
    }
}

/// `get_channel_member_count` takes 1 to 32 channels. More is its own kind,
/// `EXCEED_LIMIT`, as in the reference (which numbers it apart from an
/// invalid argument); checked before the call is counted against the limits,
/// like every argument check.
fn check_member_count_channels(n: usize) -> Result<(), ErrorBody> {
    if n == 0 {
        return Err(ErrorBody::new(
            ErrorKind::InvalidArgument,
            "no channel ids given; name 1 to 32 channels",
        ));
    }
    if n > MAX_MEMBER_COUNT_CHANNELS {
        return Err(ErrorBody::new(
            ErrorKind::ExceedLimit,
            format!(
                "{n} channels asked for; ask for at most {MAX_MEMBER_COUNT_CHANNELS} per call \
                 (split the list)"
            ),
        ));
    }
    Ok(())
}
