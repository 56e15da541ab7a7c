//! Identifier validation (PROTOCOL.md §5), shared by the server and the SDK.
//!
//! A `uid`, `peerId` or `channelId` is 1 to 64 bytes of letters, digits, space
//! and a fixed set of punctuation, and never the literal `null`. The newtypes
//! below can only be built through [`validate_id`], so holding a [`Uid`] or a
//! [`ChannelId`] proves it is valid; deserialising one runs the same check,
//! which is how the server refuses a bad id inside an otherwise good frame.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest identifier, in bytes.
pub const MAX_ID_BYTES: usize = 64;

/// The punctuation an identifier may contain besides letters, digits and space.
pub const ID_PUNCTUATION: &str = "!#$%&()+-:;<=.>?@[]^_{}|~,";

/// Why an identifier was refused; the message names the problem for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier is the empty string.
    #[error("{what} must not be empty")]
    Empty {
        /// Which identifier: `"user id"` or `"channel id"`.
        what: &'static str,
    },
    /// The identifier is longer than [`MAX_ID_BYTES`] (64) bytes.
    #[error("{what} is {len} bytes long; the limit is {MAX_ID_BYTES} bytes")]
    TooLong {
        /// Which identifier: `"user id"` or `"channel id"`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The identifier holds a character other than an ASCII letter, digit,
    /// space or one of [`ID_PUNCTUATION`]; the first such is reported.
    #[error(
        "{what} may not contain {ch:?} (position {position}); allowed are letters, digits, space and {ID_PUNCTUATION}"
    )]
    BadChar {
        /// Which identifier: `"user id"` or `"channel id"`.
        what: &'static str,
        /// The refused character.
        ch: char,
        /// Its position, counted in characters from 1.
        position: usize,
    },
    /// The identifier is exactly the word `null` (lower case; `NULL` is allowed).
    #[error("{what} may not be the word \"null\"")]
    Null {
        /// Which identifier: `"user id"` or `"channel id"`.
        what: &'static str,
    },
}

impl IdError {
    /// Which identifier was refused ("user id", "channel id").
    pub fn what(&self) -> &'static str {
        match self {
            IdError::Empty { what }
            | IdError::TooLong { what, .. }
            | IdError::BadChar { what, .. }
            | IdError::Null { what } => what,
        }
    }

    /// True when a user (or peer) id was refused: the reference reports those
    /// as `INVALID_USERID`, other ids as `INVALID_ARGUMENT`.
    pub fn is_user_id(&self) -> bool {
        self.what() == USER_ID
    }
}

/// How [`Uid`] names itself in errors; [`IdError::is_user_id`] matches on it.
const USER_ID: &str = "user id";

/// Checks one identifier against the rule of PROTOCOL.md §5, in its order:
/// empty, too long, `null`, then each character; the first failure is
/// returned. `what` names it in the error ("user id", "channel id").
/// [`Uid::new`] and [`ChannelId::new`] call it.
pub fn validate_id(what: &'static str, id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty { what });
    }
    if id.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong {
            what,
            len: id.len(),
        });
    }
    if id == "null" {
        return Err(IdError::Null { what });
    }
    for (i, ch) in id.chars().enumerate() {
        let ok = ch.is_ascii_alphanumeric() || ch == ' ' || ID_PUNCTUATION.contains(ch);
        if !ok {
            return Err(IdError::BadChar {
                what,
                ch,
                position: i + 1,
            });
        }
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier: 1 to [`MAX_ID_BYTES`]
            /// bytes of ASCII letters, digits, space and [`ID_PUNCTUATION`],
            /// never the word `null` (PROTOCOL.md §5). `str::parse` does the same.
            pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
                let id = id.into();
                validate_id($what, &id)?;
                Ok(Self(id))
            }
            /// The identifier as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// The identifier as an owned string, without copying.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A user id (also a peer id or member id): who logs in, who a peer
    /// message goes to. Holding one proves it is valid; it serialises as a
    /// plain JSON string, and deserialising one validates it.
    ///
    /// ```
    /// use rtm::protocol::{IdError, Uid};
    ///
    /// let alice = Uid::new("alice").unwrap();
    /// assert_eq!(alice.as_str(), "alice");
    /// let bob: Uid = "bob@example.com".parse().unwrap();
    /// assert_eq!(bob.to_string(), "bob@example.com");
    ///
    /// assert_eq!(Uid::new(""), Err(IdError::Empty { what: "user id" }));
    /// assert_eq!(Uid::new("null"), Err(IdError::Null { what: "user id" }));
    /// assert!(matches!(Uid::new("x".repeat(65)), Err(IdError::TooLong { len: 65, .. })));
    /// let err = Uid::new("a/b").unwrap_err();
    /// assert!(err.is_user_id());
    /// assert_eq!(
    ///     err.to_string(),
    ///     "user id may not contain '/' (position 2); \
    ///      allowed are letters, digits, space and !#$%&()+-:;<=.>?@[]^_{}|~,"
    /// );
    /// ```
    Uid,
    "user id"
);
id_type!(
    /// A channel id: the same rule as [`Uid`] (PROTOCOL.md §5), reported as
    /// `"channel id"` in errors. Channels exist while they have members;
    /// joining an unknown one creates it.
    ///
    /// ```
    /// use rtm::protocol::{ChannelId, IdError};
    ///
    /// let lobby = ChannelId::new("lobby #1").unwrap();
    /// assert_eq!(serde_json::to_string(&lobby).unwrap(), r#""lobby #1""#);
    ///
    /// let err = ChannelId::new("a*b").unwrap_err();
    /// assert_eq!(err, IdError::BadChar { what: "channel id", ch: '*', position: 2 });
    /// assert!(!err.is_user_id());
    /// // Deserialising runs the same check.
    /// assert!(serde_json::from_str::<ChannelId>(r#""a*b""#).is_err());
    /// ```
    ChannelId,
    "channel id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        assert!(Uid::new("alice").is_ok());
        assert!(Uid::new("a b!#$%&()+-:;<=.>?@[]^_{}|~,").is_ok());
        assert!(Uid::new("x".repeat(64)).is_ok());
    }

    #[test]
    fn rejects_with_a_reason_that_names_the_problem() {
        assert_eq!(Uid::new(""), Err(IdError::Empty { what: "user id" }));
        assert_eq!(
            Uid::new("x".repeat(65)),
            Err(IdError::TooLong {
                what: "user id",
                len: 65
            })
        );
        assert_eq!(Uid::new("null"), Err(IdError::Null { what: "user id" }));
        let err = ChannelId::new("abc*def").unwrap_err();
        assert_eq!(
            err,
            IdError::BadChar {
                what: "channel id",
                ch: '*',
                position: 4
            }
        );
        assert!(err.to_string().contains("'*'"), "{err}");
        assert!(err.to_string().contains("position 4"), "{err}");
        assert!(Uid::new("é").is_err());
        assert!(Uid::new("a/b").is_err());
        assert!(Uid::new("a\"b").is_err());
        assert!(Uid::new("tab\there").is_err());
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<Uid>("\"bob\"").is_ok());
        let err = serde_json::from_str::<Uid>("\"bo*b\"").unwrap_err();
        assert!(err.to_string().contains("'*'"), "{err}");
    }
}
