//! Property tests: the frame decoder never panics and is consistent, id
//! validation accepts exactly the documented alphabet, attribute limits hold
//! at every size.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rtm::protocol::{
    AttributeScope, ClientFrame, ID_PUNCTUATION, MAX_ATTRIBUTE_KEY_BYTES, MAX_ATTRIBUTE_KEYS,
    MAX_ATTRIBUTE_VALUE_BYTES, MAX_CHANNEL_ATTRIBUTES_BYTES, MAX_USER_ATTRIBUTES_BYTES, Uid,
    check_attribute, check_attribute_set,
};

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ' ' || ID_PUNCTUATION.contains(c)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary text never panics the decoder; whatever decodes re-encodes to
    /// something that decodes to the same frame.
    #[test]
    fn decoder_never_panics(s in ".{0,300}") {
        if let Ok(frame) = ClientFrame::decode(&s) {
            prop_assert_eq!(ClientFrame::decode(&frame.encode()).unwrap(), frame);
        }
    }

    /// Frame-shaped JSON with random types and fields: never panics, and an
    /// error keeps the id when there was one.
    #[test]
    fn structured_garbage_keeps_the_id(id in any::<u64>(), ty in "[a-z_]{0,30}", field in "[a-z_]{1,12}", value in ".{0,40}") {
        prop_assume!(field != "id" && field != "type");
        let text = serde_json::json!({"id": id, "type": ty, field: value}).to_string();
        if let Err(e) = ClientFrame::decode(&text) {
            prop_assert_eq!(e.id, Some(id));
            prop_assert!(!e.message.is_empty());
        }
    }

    /// Ids are accepted exactly when every character is allowed, the length is
    /// 1–64 bytes and the id is not "null".
    #[test]
    fn id_validation_matches_the_alphabet(s in "\\PC{0,70}") {
        let expected = !s.is_empty() && s.len() <= 64 && s != "null" && s.chars().all(allowed);
        prop_assert_eq!(Uid::new(s.clone()).is_ok(), expected, "{:?}", s);
    }

    #[test]
    fn ids_from_the_alphabet_are_accepted(s in "[a-zA-Z0-9 !#$%&()+\\-:;<=.>?@\\[\\]^_{}|~,]{1,64}") {
        prop_assume!(s != "null");
        prop_assert!(Uid::new(s).is_ok());
    }

    /// A single attribute passes exactly when key is 1–32 bytes and value 1–8192.
    #[test]
    fn single_attribute_limits(klen in 0usize..40, vlen in 0usize..8300) {
        let ok = check_attribute(&"k".repeat(klen), &"v".repeat(vlen)).is_ok();
        prop_assert_eq!(ok, (1..=MAX_ATTRIBUTE_KEY_BYTES).contains(&klen) && (1..=MAX_ATTRIBUTE_VALUE_BYTES).contains(&vlen));
    }

    /// A whole set passes exactly when it has ≤32 keys and its total fits the scope.
    #[test]
    fn set_limits(n in 0usize..40, vlen in 1usize..2000, channel in any::<bool>()) {
        let set: BTreeMap<String, String> = (0..n).map(|i| (format!("k{i:03}"), "v".repeat(vlen))).collect();
        let scope = if channel { AttributeScope::Channel } else { AttributeScope::User };
        let total: usize = set.iter().map(|(k, v)| k.len() + v.len()).sum();
        let limit = if channel { MAX_CHANNEL_ATTRIBUTES_BYTES } else { MAX_USER_ATTRIBUTES_BYTES };
        let ok = check_attribute_set(scope, set.iter().map(|(k, v)| (k.as_str(), v.as_str()))).is_ok();
        prop_assert_eq!(ok, n <= MAX_ATTRIBUTE_KEYS && total <= limit);
    }
}
