//! Presence: query peers' online status and subscribe to its changes
//! (methods of [`RtmClient`]).

use super::*;

impl RtmClient {
    /// Online (true) or not, for 1–256 peers (Agora's
    /// `queryPeersOnlineStatus`; `UNREACHABLE` counts as not online). A
    /// one-off query: for changes, subscribe.
    ///
    /// Errors: `INVALID_USERID` for a bad id; `INVALID_ARGUMENT` for an empty
    /// list or more than
    /// [`MAX_QUERY_PEERS`](crate::protocol::MAX_QUERY_PEERS) ids (both
    /// checked locally); `TOO_OFTEN`, timeout, `NOT_LOGGED_IN`.
    pub async fn query_peers_online_status(
        &self,
        peer_ids: &[&str],
    ) -> Result<BTreeMap<Uid, bool>, RtmError> {
        let peer_ids = uids(peer_ids)?;
        if peer_ids.is_empty() || peer_ids.len() > crate::protocol::MAX_QUERY_PEERS {
            return Err(RtmError::local(
                ErrorKind::InvalidArgument,
                format!("give 1 to {} peer ids", crate::protocol::MAX_QUERY_PEERS),
            ));
        }
        match self
            .shared
            .request(Request::QueryPeersOnlineStatus { peer_ids })
            .await?
        {
            Reply::OnlineStatus { statuses } => Ok(statuses),
            other => Err(unexpected(other)),
        }
    }

    /// Watches peers; their current state arrives at once as
    /// [`ClientEvent::PeersOnlineStatusChanged`], then every change. The SDK
    /// renews its subscriptions after a reconnection (see
    /// [`ClientEvent::Restored`]).
    ///
    /// Errors: `INVALID_USERID` for a bad id (locally); `OVERFLOW` when the
    /// session would watch more than
    /// [`MAX_SUBSCRIPTIONS`](crate::protocol::MAX_SUBSCRIPTIONS) (512) users
    /// (nothing changed); `TOO_OFTEN`, timeout, `NOT_LOGGED_IN`.
    pub async fn subscribe_peers_online_status(&self, peer_ids: &[&str]) -> Result<(), RtmError> {
        let peer_ids = uids(peer_ids)?;
        match self
            .shared
            .request(Request::SubscribePeersOnlineStatus {
                peer_ids: peer_ids.clone(),
            })
            .await?
        {
            Reply::Done => {
                self.shared.lock().subscriptions.extend(peer_ids);
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    /// Stops watching these peers: no more
    /// [`ClientEvent::PeersOnlineStatusChanged`] for them, and they are not
    /// renewed after a reconnection.
    ///
    /// Errors: `INVALID_USERID` for a bad id (locally); `TOO_OFTEN`,
    /// timeout, `NOT_LOGGED_IN`.
    pub async fn unsubscribe_peers_online_status(&self, peer_ids: &[&str]) -> Result<(), RtmError> {
        let peer_ids = uids(peer_ids)?;
        match self
            .shared
            .request(Request::UnsubscribePeersOnlineStatus {
                peer_ids: peer_ids.clone(),
            })
            .await?
        {
            Reply::Done => {
                let mut st = self.shared.lock();
                for p in &peer_ids {
                    st.subscriptions.remove(p);
                }
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    /// The peers this client watches (as the server knows them); Agora's
    /// `queryPeersBySubscriptionOption`.
    ///
    /// Errors: `TOO_OFTEN`, timeout, `NOT_LOGGED_IN`.
    pub async fn query_peers_by_subscription_option(
        &self,
        option: SubscriptionOption,
    ) -> Result<Vec<Uid>, RtmError> {
        match self
            .shared
            .request(Request::QueryPeersBySubscriptionOption { option })
            .await?
        {
            Reply::Subscriptions { peer_ids } => Ok(peer_ids),
            other => Err(unexpected(other)),
        }
    }
}
