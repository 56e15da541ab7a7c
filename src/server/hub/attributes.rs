//! The hub's attributes: a user's own (held by the hub while the user is
//! logged in) and a channel's (kept by the store), and the sweep that clears
//! those of channels left empty and offline messages past their time.

use std::collections::{BTreeMap, HashMap};

use super::{Hub, err, event_frame};
use crate::protocol::{
    AttributeScope, ChannelAttribute, ChannelAttributeOptions, ChannelId, ErrorBody, ErrorKind,
    Event, Reply, Uid, check_attribute_map, check_attribute_set,
};
use crate::server::store::AttributeEdit;

impl Hub {
    // ------------------------------------------------------- user attributes

    /// Applies `f` to a copy of the user's attributes; commits only if the
    /// result is within limits.
    pub fn update_user_attributes(
        &self,
        uid: &Uid,
        input: &BTreeMap<String, String>,
        f: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<Reply, ErrorBody> {
        check_attribute_map(input)?;
        let mut st = self.lock();
        let user = st
            .users
            .get_mut(uid)
            .ok_or_else(|| err(ErrorKind::NotLoggedIn, "log in first"))?;
        let mut next = user.attributes.clone();
        f(&mut next);
        check_attribute_set(
            AttributeScope::User,
            next.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        self.cluster_set_attributes(uid, user.session.id, &next);
        user.attributes = next;
        Ok(Reply::Done)
    }

    pub async fn get_user_attributes(
        &self,
        of: &Uid,
        keys: Option<&[String]>,
    ) -> Result<Reply, ErrorBody> {
        let local = self.lock().users.get(of).map(|u| u.attributes.clone());
        let all = match local {
            Some(all) => all,
            // In cluster mode the user may be on another node.
            None => self
                .cluster_attributes(of)
                .await?
                .ok_or_else(|| err(ErrorKind::UserNotFound, format!("user {of} is not online")))?,
        };
        let attributes = match keys {
            None => all,
            Some(keys) => keys
                .iter()
                .filter_map(|k| all.get(k).map(|v| (k.clone(), v.clone())))
                .collect(),
        };
        Ok(Reply::UserAttributes {
            user_id: of.clone(),
            attributes,
        })
    }

    // ---------------------------------------------------- channel attributes

    /// Read-modify-write of a channel's attributes, done by the store in one
    /// atomic step, so concurrent writers serialise and a write that breaks a
    /// limit changes nothing. `f` edits a key → value map; keys whose value it
    /// changes (or that are in `input`) get the writer as
    /// `last_update_user_id` and now as `last_update_ts`. Answers after commit.
    pub async fn update_channel_attributes(
        &self,
        uid: &Uid,
        ch: &ChannelId,
        input: BTreeMap<String, String>,
        options: ChannelAttributeOptions,
        f: impl Fn(&mut BTreeMap<String, String>) + Send + Sync + 'static,
    ) -> Result<Reply, ErrorBody> {
        check_attribute_map(&input)?;
        let ts = self.now_ms();
        let writer = uid.clone();
        let edit: AttributeEdit = Box::new(move |current: &[ChannelAttribute]| {
            let mut values: BTreeMap<String, String> = current
                .iter()
                .map(|a| (a.key.clone(), a.value.clone()))
                .collect();
            f(&mut values);
            check_attribute_set(
                AttributeScope::Channel,
                values.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )?;
            let old: HashMap<&str, &ChannelAttribute> =
                current.iter().map(|a| (a.key.as_str(), a)).collect();
            Ok(values
                .into_iter()
                .map(|(key, value)| match old.get(key.as_str()) {
                    Some(a) if a.value == value && !input.contains_key(&key) => (*a).clone(),
                    _ => ChannelAttribute {
                        key,
                        value,
                        last_update_user_id: writer.clone(),
                        last_update_ts: ts,
                    },
                })
                .collect())
        });
        let (done, number) = {
            let mut st = self.lock();
            if !st.channels.contains_key(ch) {
                // Attributes of a channel nobody is in start their countdown now.
                self.store
                    .set_channel_empty_since(ch, Some(ts))
                    .log_failure("marking a channel empty");
            }
            let writes = st.attribute_writes.entry(ch.clone()).or_default();
            writes.submitted += 1;
            writes.in_flight += 1;
            (
                self.store.update_channel_attributes(ch, edit),
                writes.submitted,
            )
        };
        let submitted = std::time::Instant::now();
        let result = done.await;
        crate::server::metrics::METRICS
            .store_seconds
            .observe(crate::server::metrics::since(submitted));
        let mut st = self.lock();
        let notify = match st.attribute_writes.get_mut(ch) {
            Some(writes) => {
                writes.in_flight -= 1;
                let newest = number > writes.notified;
                if newest && matches!(result, Ok(Ok(_))) {
                    writes.notified = number;
                }
                if writes.in_flight == 0 {
                    st.attribute_writes.remove(ch);
                }
                newest
            }
            None => true,
        };
        let next = result.map_err(Self::store_err)??;
        if options.enable_notification_to_channel_members && notify {
            let event = Event::AttributesUpdated {
                channel_id: ch.clone(),
                attributes: next,
            };
            let frame = event_frame(&event);
            if let Some(channel) = st.channels.get(ch) {
                for s in channel.members.values() {
                    s.send(frame.clone());
                }
            }
            if let Some(c) = self.cluster() {
                c.publish(
                    c.topic_channel(ch.as_str()),
                    &crate::server::cluster::BusEvent::Attributes {
                        ch: ch.to_string(),
                        frame: crate::protocol::encode_event(&event),
                    },
                );
            }
        }
        Ok(Reply::Done)
    }

    pub async fn get_channel_attributes(
        &self,
        ch: &ChannelId,
        keys: Option<&[String]>,
    ) -> Result<Reply, ErrorBody> {
        let mut attributes = self
            .store
            .channel_attributes(ch)
            .await
            .map_err(Self::store_err)?;
        if let Some(keys) = keys {
            attributes.retain(|a| keys.contains(&a.key));
        }
        Ok(Reply::ChannelAttributes {
            channel_id: ch.clone(),
            attributes,
        })
    }

    /// Start-up: nobody is in any channel yet, so each channel's empty
    /// countdown starts now unless it was already running (then the time the
    /// server was down counts too); then what has expired is swept.
    pub async fn start_up(&self) {
        if let Err(e) = self.store.mark_all_channels_empty(self.now_ms()).await {
            tracing::error!("store start-up: {e}");
        }
        self.sweep().await;
    }

    /// Clears attributes of channels that have been empty longer than the
    /// configured while (also when that while passed while the server was
    /// down) and removes expired offline messages. Run at start-up and
    /// periodically by the server.
    pub async fn sweep(&self) {
        let now = self.now_ms();
        let cutoff = now.saturating_sub(self.config.channel_attributes_ttl.as_millis() as u64);
        let oldest = now.saturating_sub(self.config.offline_ttl.as_millis() as u64);
        self.media().sweep();
        let channels = self.store.sweep_empty_channels(cutoff);
        let offline = self.store.purge_offline(oldest);
        match channels.await {
            Ok(cleared) if !cleared.is_empty() => {
                tracing::info!(?cleared, "cleared attributes of empty channels");
            }
            Ok(_) => {}
            Err(e) => tracing::error!("store sweep: {e}"),
        }
        match offline.await {
            Ok(n) if n > 0 => tracing::info!("removed {n} expired offline messages"),
            Ok(_) => {}
            Err(e) => tracing::error!("store sweep: {e}"),
        }
    }
}
