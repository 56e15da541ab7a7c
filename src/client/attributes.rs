//! User and channel attributes (methods of [`RtmClient`]), and the local
//! checks that let obvious mistakes fail without a round trip.

use super::*;

impl RtmClient {
    async fn user_attr_write(
        &self,
        request: Request,
        apply: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<(), RtmError> {
        match self.shared.request(request).await? {
            Reply::Done => {
                apply(&mut self.shared.lock().attributes);
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    /// Replaces all attributes of the logged-in user (an empty map clears
    /// them). Other users read them with
    /// [`get_user_attributes`](Self::get_user_attributes); the SDK sets them
    /// again after a reconnection. No event is sent to anyone.
    ///
    /// Limits (checked locally, then by the server; `SIZE_OVERFLOW`, nothing
    /// changed): at most 32 keys, keys of at most 32 bytes, values of at most
    /// 8 KB, 16 KB in all (see [`crate::protocol`]'s `MAX_*` constants). An
    /// empty key or value is `INVALID_ARGUMENT`. Also `TOO_OFTEN`, timeout,
    /// `NOT_LOGGED_IN`.
    pub async fn set_local_user_attributes(
        &self,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), RtmError> {
        check_local_attributes(&attributes, true)?;
        let copy = attributes.clone();
        self.user_attr_write(Request::SetLocalUserAttributes { attributes }, |m| {
            *m = copy
        })
        .await
    }

    /// Adds these attributes to the logged-in user's, replacing the values
    /// of keys it already has. Same limits and errors as
    /// [`set_local_user_attributes`](Self::set_local_user_attributes), on the
    /// resulting set.
    pub async fn add_or_update_local_user_attributes(
        &self,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), RtmError> {
        check_local_attributes(&attributes, false)?;
        let copy = attributes.clone();
        self.user_attr_write(
            Request::AddOrUpdateLocalUserAttributes { attributes },
            |m| m.extend(copy),
        )
        .await
    }

    /// Removes these keys from the logged-in user's attributes.
    ///
    /// Errors: an empty key list is `INVALID_ARGUMENT` (locally: use
    /// [`clear_local_user_attributes`](Self::clear_local_user_attributes)); `TOO_OFTEN`, timeout, `NOT_LOGGED_IN`.
    pub async fn delete_local_user_attributes_by_keys(
        &self,
        keys: &[&str],
    ) -> Result<(), RtmError> {
        check_keys(keys, crate::protocol::KeyListUse::Delete)?;
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let copy = keys.clone();
        self.user_attr_write(Request::DeleteLocalUserAttributesByKeys { keys }, |m| {
            for k in &copy {
                m.remove(k);
            }
        })
        .await
    }

    /// Removes every attribute of the logged-in user.
    ///
    /// Errors: `TOO_OFTEN`, timeout, `NOT_LOGGED_IN`.
    pub async fn clear_local_user_attributes(&self) -> Result<(), RtmError> {
        self.user_attr_write(Request::ClearLocalUserAttributes, |m| m.clear())
            .await
    }

    /// The attributes the SDK believes the logged-in user has (what the
    /// successful writes left). Local; nothing is sent. rtm only.
    pub fn local_user_attributes(&self) -> BTreeMap<String, String> {
        self.shared.lock().attributes.clone()
    }

    /// All attributes of an online user (USER_NOT_FOUND when offline);
    /// Agora's `getUserAttributes`.
    ///
    /// Errors: `INVALID_USERID` (locally), `USER_NOT_FOUND`, `TOO_OFTEN`,
    /// timeout, `NOT_LOGGED_IN`.
    pub async fn get_user_attributes(
        &self,
        user_id: &str,
    ) -> Result<BTreeMap<String, String>, RtmError> {
        self.get_user_attrs(user_id, None).await
    }

    /// The attributes of an online user under these keys (1 to 32); keys
    /// the user does not have are left out.
    ///
    /// Errors: as [`get_user_attributes`](Self::get_user_attributes), plus
    /// `INVALID_ARGUMENT` for an empty list or more than 32 keys (both
    /// locally).
    pub async fn get_user_attributes_by_keys(
        &self,
        user_id: &str,
        keys: &[&str],
    ) -> Result<BTreeMap<String, String>, RtmError> {
        check_keys(keys, crate::protocol::KeyListUse::Read)?;
        self.get_user_attrs(user_id, Some(keys.iter().map(|k| k.to_string()).collect()))
            .await
    }

    async fn get_user_attrs(
        &self,
        user_id: &str,
        keys: Option<Vec<String>>,
    ) -> Result<BTreeMap<String, String>, RtmError> {
        let user_id = Uid::new(user_id)?;
        match self
            .shared
            .request(Request::GetUserAttributes { user_id, keys })
            .await?
        {
            Reply::UserAttributes { attributes, .. } => Ok(attributes),
            other => Err(unexpected(other)),
        }
    }

    // -------------------------------------------------- channel attributes

    async fn channel_attr_write(&self, request: Request) -> Result<(), RtmError> {
        match self.shared.request(request).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces all attributes of a channel (an empty map clears them). The
    /// caller need not have joined it. With
    /// `options.enable_notification_to_channel_members`, every member gets
    /// [`ChannelEvent::AttributesUpdated`] with the full set (even if
    /// nothing changed).
    ///
    /// Limits (checked locally, then by the server; `SIZE_OVERFLOW`, nothing
    /// changed): at most 32 keys, keys of at most 32 bytes, values of at most
    /// 8 KB, 32 KB in all. A bad channel id, empty key or empty value is
    /// `INVALID_ARGUMENT`. Also `TOO_OFTEN`, timeout, `NOT_LOGGED_IN`.
    pub async fn set_channel_attributes(
        &self,
        channel_id: &str,
        attributes: BTreeMap<String, String>,
        options: ChannelAttributeOptions,
    ) -> Result<(), RtmError> {
        let channel_id = ChannelId::new(channel_id)?;
        check_channel_attributes(&attributes)?;
        self.channel_attr_write(Request::SetChannelAttributes {
            channel_id,
            attributes,
            options,
        })
        .await
    }

    /// Adds these attributes to the channel's, replacing the values of keys
    /// it already has; each records the caller as its last updater. Same
    /// limits, errors and notification as
    /// [`set_channel_attributes`](Self::set_channel_attributes), on the
    /// resulting set.
    pub async fn add_or_update_channel_attributes(
        &self,
        channel_id: &str,
        attributes: BTreeMap<String, String>,
        options: ChannelAttributeOptions,
    ) -> Result<(), RtmError> {
        let channel_id = ChannelId::new(channel_id)?;
        check_channel_attributes(&attributes)?;
        self.channel_attr_write(Request::AddOrUpdateChannelAttributes {
            channel_id,
            attributes,
            options,
        })
        .await
    }

    /// Removes these keys from the channel's attributes. Notifies members as
    /// [`set_channel_attributes`](Self::set_channel_attributes) when asked.
    ///
    /// Errors: a bad channel id or an empty key list is `INVALID_ARGUMENT`
    /// (locally: use [`clear_channel_attributes`](Self::clear_channel_attributes)); `TOO_OFTEN`, timeout, `NOT_LOGGED_IN`.
    pub async fn delete_channel_attributes_by_keys(
        &self,
        channel_id: &str,
        keys: &[&str],
        options: ChannelAttributeOptions,
    ) -> Result<(), RtmError> {
        let channel_id = ChannelId::new(channel_id)?;
        check_keys(keys, crate::protocol::KeyListUse::Delete)?;
        self.channel_attr_write(Request::DeleteChannelAttributesByKeys {
            channel_id,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            options,
        })
        .await
    }

    /// Removes every attribute of the channel. Notifies members as
    /// [`set_channel_attributes`](Self::set_channel_attributes) when asked.
    ///
    /// Errors: a bad channel id is `INVALID_ARGUMENT` (locally);
    /// `TOO_OFTEN`, timeout, `NOT_LOGGED_IN`.
    pub async fn clear_channel_attributes(
        &self,
        channel_id: &str,
        options: ChannelAttributeOptions,
    ) -> Result<(), RtmError> {
        let channel_id = ChannelId::new(channel_id)?;
        self.channel_attr_write(Request::ClearChannelAttributes {
            channel_id,
            options,
        })
        .await
    }

    /// All attributes of a channel, joined or not, each with who last
    /// updated it and when (empty for a channel without any).
    ///
    /// Errors: a bad channel id is `INVALID_ARGUMENT` (locally);
    /// `TOO_OFTEN`, timeout, `NOT_LOGGED_IN`.
    pub async fn get_channel_attributes(
        &self,
        channel_id: &str,
    ) -> Result<Vec<ChannelAttribute>, RtmError> {
        self.get_channel_attrs(channel_id, None).await
    }

    /// The channel's attributes under these keys (1 to 32); keys it does not
    /// have are left out.
    ///
    /// Errors: as [`get_channel_attributes`](Self::get_channel_attributes),
    /// plus `INVALID_ARGUMENT` for an empty list or more than 32 keys (both
    /// locally).
    pub async fn get_channel_attributes_by_keys(
        &self,
        channel_id: &str,
        keys: &[&str],
    ) -> Result<Vec<ChannelAttribute>, RtmError> {
        check_keys(keys, crate::protocol::KeyListUse::Read)?;
        self.get_channel_attrs(
            channel_id,
            Some(keys.iter().map(|k| k.to_string()).collect()),
        )
        .await
    }

    async fn get_channel_attrs(
        &self,
        channel_id: &str,
        keys: Option<Vec<String>>,
    ) -> Result<Vec<ChannelAttribute>, RtmError> {
        let channel_id = ChannelId::new(channel_id)?;
        match self
            .shared
            .request(Request::GetChannelAttributes { channel_id, keys })
            .await?
        {
            Reply::ChannelAttributes { attributes, .. } => Ok(attributes),
            other => Err(unexpected(other)),
        }
    }
}

/// The SDK checks limits early so that obvious mistakes fail without a round trip.
fn check_local_attributes(
    attributes: &BTreeMap<String, String>,
    whole_set: bool,
) -> Result<(), RtmError> {
    crate::protocol::check_attribute_map(attributes).map_err(RtmError::Local)?;
    if whole_set {
        crate::protocol::check_attribute_set(
            crate::protocol::AttributeScope::User,
            attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(RtmError::Local)?;
    }
    Ok(())
}

fn check_channel_attributes(attributes: &BTreeMap<String, String>) -> Result<(), RtmError> {
    crate::protocol::check_attribute_map(attributes).map_err(RtmError::Local)
}

/// The key lists of `*_by_keys` calls, checked as the server checks them.
fn check_keys(keys: &[&str], purpose: crate::protocol::KeyListUse) -> Result<(), RtmError> {
    crate::protocol::check_key_list(keys, purpose).map_err(RtmError::Local)
}
