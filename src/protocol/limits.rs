//! Numeric limits of the model (PROTOCOL.md §14 lists them all), checked by
//! the server and early by the SDK. Each constant carries its unit in its name
//! or doc; every limit is inclusive.

use std::collections::BTreeMap;

use super::{ErrorBody, ErrorKind};

/// Largest peer or channel message, 32 768 bytes: text as UTF-8, or raw
/// bytes plus description (see [`RtmMessage::size`](super::RtmMessage::size)).
/// Larger is refused with `INVALID_MESSAGE`.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Most channels one session may have joined at once; one more `join` is
/// refused with `EXCEED_LIMIT`.
pub const MAX_JOINED_CHANNELS: usize = 20;
/// Most channels per `get_channel_member_count` call; more is `EXCEED_LIMIT`.
pub const MAX_MEMBER_COUNT_CHANNELS: usize = 32;
/// Most peers per `query_peers_online_status` call; more is `INVALID_ARGUMENT`.
pub const MAX_QUERY_PEERS: usize = 256;
/// Most users one session watches (`subscribe_peers_online_status`); a
/// subscription that would pass it is refused with `OVERFLOW`.
pub const MAX_SUBSCRIPTIONS: usize = 512;
/// Above this many members a channel sends no `member_joined`/`member_left`
/// events, only (slower) `member_count_updated` (PROTOCOL.md §9).
pub const MEMBER_EVENTS_MAX_MEMBERS: usize = 512;
/// Most keys per attribute set (user or channel), and per write call;
/// more is `SIZE_OVERFLOW`.
pub const MAX_ATTRIBUTE_KEYS: usize = 32;
/// Longest attribute key, in bytes; longer is `SIZE_OVERFLOW` (empty is
/// `INVALID_ARGUMENT`).
pub const MAX_ATTRIBUTE_KEY_BYTES: usize = 32;
/// Longest attribute value, 8 192 bytes; longer is `SIZE_OVERFLOW` (empty is
/// `INVALID_ARGUMENT`).
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 8 * 1024;
/// Largest total of keys + values of one user's attributes, 16 384 bytes.
pub const MAX_USER_ATTRIBUTES_BYTES: usize = 16 * 1024;
/// Largest total of keys + values of one channel's attributes, 32 768 bytes.
pub const MAX_CHANNEL_ATTRIBUTES_BYTES: usize = 32 * 1024;

/// Which attribute set a check is for; the totals differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeScope {
    /// A user's own attributes: at most [`MAX_USER_ATTRIBUTES_BYTES`] in all.
    User,
    /// A channel's attributes: at most [`MAX_CHANNEL_ATTRIBUTES_BYTES`] in all.
    Channel,
}

impl AttributeScope {
    fn total_limit(self) -> usize {
        match self {
            AttributeScope::User => MAX_USER_ATTRIBUTES_BYTES,
            AttributeScope::Channel => MAX_CHANNEL_ATTRIBUTES_BYTES,
        }
    }
    fn name(self) -> &'static str {
        match self {
            AttributeScope::User => "user attributes",
            AttributeScope::Channel => "channel attributes",
        }
    }
}

/// Checks one key and value; used for every key that a call writes.
pub fn check_attribute(key: &str, value: &str) -> Result<(), ErrorBody> {
    if key.is_empty() {
        return Err(ErrorBody::new(
            ErrorKind::InvalidArgument,
            "attribute keys must not be empty",
        ));
    }
    if key.len() > MAX_ATTRIBUTE_KEY_BYTES {
        return Err(ErrorBody::new(
            ErrorKind::SizeOverflow,
            format!(
                "attribute key {key:?} is {} bytes; the limit is {MAX_ATTRIBUTE_KEY_BYTES}",
                key.len()
            ),
        ));
    }
    if value.is_empty() {
        return Err(ErrorBody::new(
            ErrorKind::InvalidArgument,
            format!("the value of attribute {key:?} is empty; use delete to remove a key"),
        ));
    }
    if value.len() > MAX_ATTRIBUTE_VALUE_BYTES {
        return Err(ErrorBody::new(
            ErrorKind::SizeOverflow,
            format!(
                "the value of attribute {key:?} is {} bytes; the limit is {MAX_ATTRIBUTE_VALUE_BYTES}",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// Checks a whole attribute set as it would be after a write: key count and total size.
pub fn check_attribute_set<'a>(
    scope: AttributeScope,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), ErrorBody> {
    let mut count = 0usize;
    let mut total = 0usize;
    for (k, v) in entries {
        count += 1;
        total += k.len() + v.len();
    }
    if count > MAX_ATTRIBUTE_KEYS {
        return Err(ErrorBody::new(
            ErrorKind::SizeOverflow,
            format!(
                "{} would have {count} keys; the limit is {MAX_ATTRIBUTE_KEYS}",
                scope.name()
            ),
        ));
    }
    if total > scope.total_limit() {
        return Err(ErrorBody::new(
            ErrorKind::SizeOverflow,
            format!(
                "{} would total {total} bytes of keys and values; the limit is {}",
                scope.name(),
                scope.total_limit()
            ),
        ));
    }
    Ok(())
}

/// Keys per `get_*_attributes_by_keys` call: no set holds more, so asking for
/// more is a mistake the reference refuses too.
pub const MAX_KEYS_PER_READ: usize = MAX_ATTRIBUTE_KEYS;

/// What a list of attribute keys is for: deleting, or reading only these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyListUse {
    /// The keys of a `delete_*_attributes_by_keys` call: at least one.
    Delete,
    /// The `keys` filter of a `get_*_attributes` call: 1 to [`MAX_KEYS_PER_READ`].
    Read,
}

/// Checks the key list of a `*_by_keys` call, as the reference does: it must
/// name at least one key (an empty list would delete nothing or read
/// nothing, which is never what the caller meant: use `clear_*` or the
/// read without keys), and a read may name at most [`MAX_KEYS_PER_READ`].
pub fn check_key_list(keys: &[impl AsRef<str>], purpose: KeyListUse) -> Result<(), ErrorBody> {
    if keys.is_empty() {
        let instead = match purpose {
            KeyListUse::Delete => "to remove every attribute use the clear call",
            KeyListUse::Read => "to read every attribute leave the keys out (null)",
        };
        return Err(ErrorBody::new(
            ErrorKind::InvalidArgument,
            format!("the list of attribute keys is empty; name at least one key, or {instead}"),
        ));
    }
    if purpose == KeyListUse::Read && keys.len() > MAX_KEYS_PER_READ {
        return Err(ErrorBody::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} attribute keys asked for; ask for at most {MAX_KEYS_PER_READ} per call \
                 (no attribute set holds more), or read them all by leaving the keys out",
                keys.len()
            ),
        ));
    }
    Ok(())
}

/// Checks the attributes of a write call (each key/value) before it is merged.
pub fn check_attribute_map(map: &BTreeMap<String, String>) -> Result<(), ErrorBody> {
    if map.len() > MAX_ATTRIBUTE_KEYS {
        return Err(ErrorBody::new(
            ErrorKind::SizeOverflow,
            format!(
                "{} attributes given; the limit is {MAX_ATTRIBUTE_KEYS}",
                map.len()
            ),
        ));
    }
    map.iter().try_for_each(|(k, v)| check_attribute(k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(n: usize, value_len: usize) -> BTreeMap<String, String> {
        (0..n)
            .map(|i| (format!("k{i}"), "v".repeat(value_len)))
            .collect()
    }

    #[test]
    fn key_count_boundary() {
        let m = map(32, 1);
        assert!(check_attribute_map(&m).is_ok());
        assert!(
            check_attribute_set(
                AttributeScope::User,
                m.iter().map(|(k, v)| (k.as_str(), v.as_str()))
            )
            .is_ok()
        );
        let m = map(33, 1);
        assert_eq!(
            check_attribute_map(&m).unwrap_err().kind,
            ErrorKind::SizeOverflow
        );
        assert_eq!(
            check_attribute_set(
                AttributeScope::User,
                m.iter().map(|(k, v)| (k.as_str(), v.as_str()))
            )
            .unwrap_err()
            .kind,
            ErrorKind::SizeOverflow
        );
    }

    #[test]
    fn value_and_key_size_boundary() {
        assert!(check_attribute("k", &"v".repeat(8192)).is_ok());
        assert_eq!(
            check_attribute("k", &"v".repeat(8193)).unwrap_err().kind,
            ErrorKind::SizeOverflow
        );
        assert!(check_attribute(&"k".repeat(32), "v").is_ok());
        assert_eq!(
            check_attribute(&"k".repeat(33), "v").unwrap_err().kind,
            ErrorKind::SizeOverflow
        );
        assert_eq!(
            check_attribute("", "v").unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            check_attribute("k", "").unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn key_lists_must_name_a_key_and_reads_at_most_32() {
        let none: [&str; 0] = [];
        for purpose in [KeyListUse::Delete, KeyListUse::Read] {
            let e = check_key_list(&none, purpose).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            assert!(check_key_list(&["k"], purpose).is_ok());
        }
        let keys: Vec<String> = (0..33).map(|i| format!("k{i}")).collect();
        assert!(check_key_list(&keys[..32], KeyListUse::Read).is_ok());
        let e = check_key_list(&keys, KeyListUse::Read).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(e.message.contains("at most 32"), "{}", e.message);
        // Deleting keys that are not there is harmless, whatever their number.
        assert!(check_key_list(&keys, KeyListUse::Delete).is_ok());
    }

    #[test]
    fn totals_differ_by_scope() {
        // 3 keys of 2 bytes with 5000-byte values: 15006 bytes fits a user set; 4 do not.
        let ok = map(3, 5000);
        assert!(
            check_attribute_set(
                AttributeScope::User,
                ok.iter().map(|(k, v)| (k.as_str(), v.as_str()))
            )
            .is_ok()
        );
        let big = map(4, 5000);
        assert!(
            check_attribute_set(
                AttributeScope::User,
                big.iter().map(|(k, v)| (k.as_str(), v.as_str()))
            )
            .is_err()
        );
        assert!(
            check_attribute_set(
                AttributeScope::Channel,
                big.iter().map(|(k, v)| (k.as_str(), v.as_str()))
            )
            .is_ok()
        );
    }
}
