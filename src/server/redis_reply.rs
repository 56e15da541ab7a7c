//! Reading Redis answers and showing Redis URLs, shared by the Redis store
//! and the cluster layer.

use redis::Value;

/// The URL as given, without user name or password (for messages and logs).
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A number, whether Redis sent it as an integer or as text.
pub fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        Value::Double(d) => Some(*d as i64),
        _ => None,
    }
}

/// The items of an array or set (nil: none).
pub fn array_of(v: Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        Value::Nil => Some(Vec::new()),
        _ => None,
    }
}

/// The bytes of a string reply.
pub fn bytes_of(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        _ => None,
    }
}

/// A reply as text (numbers written out; anything else empty).
pub fn text_of(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        other => bytes_of(other.clone())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
    }
}

/// The items of an array or set reply, as text.
pub fn texts_of(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().map(text_of).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact_url("redis://user:secret@host:6379/2"),
            "redis://host:6379/2"
        );
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn replies_read_as_numbers_and_text() {
        assert_eq!(int_of(&Value::BulkString(b"42".to_vec())), Some(42));
        assert_eq!(int_of(&Value::Int(7)), Some(7));
        assert_eq!(text_of(&Value::Int(3)), "3");
        assert_eq!(
            texts_of(&Value::Array(vec![
                Value::BulkString(b"a".to_vec()),
                Value::Int(1)
            ])),
            ["a", "1"]
        );
    }
}
