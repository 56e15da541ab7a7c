//! Login tokens (PROTOCOL.md §4.9): an expiring credential bound to one uid, signed
//! with HMAC-SHA256 under the server's app certificate (a shared secret).
//!
//! Format: `rtm1.<payload>.<signature>`, both parts base64url without
//! padding; the payload is `{"exp":1767225600,"uid":"alice"}` (exp in seconds
//! since the epoch) and the signature is HMAC-SHA256(certificate,
//! "rtm1." + payload part). App servers mint tokens with [`mint`]; `rtm token`
//! is the same function on the command line. Verification compares the
//! signature in constant time.
//!
//! ```
//! use rtm::protocol::Uid;
//! use rtm::token::{self, TokenError};
//!
//! let certificate = b"the server's app certificate";
//! let alice = Uid::new("alice").unwrap();
//! let now_s = 1_767_225_600; // seconds since the epoch
//!
//! // The app server mints a token valid for an hour …
//! let token = token::mint(certificate, &alice, now_s + 3600);
//! assert!(token.starts_with("rtm1."));
//!
//! // … and the rtm server checks it at login.
//! let claims = token::verify(certificate, &token, &alice, now_s).unwrap();
//! assert_eq!(claims.uid, alice);
//! assert_eq!(claims.expires_at, now_s + 3600);
//!
//! // Refused: another uid, another certificate, too late.
//! let bob = Uid::new("bob").unwrap();
//! assert!(matches!(
//!     token::verify(certificate, &token, &bob, now_s),
//!     Err(TokenError::WrongUid { .. })
//! ));
//! assert_eq!(
//!     token::verify(b"another certificate", &token, &alice, now_s),
//!     Err(TokenError::BadSignature)
//! );
//! assert_eq!(
//!     token::verify(certificate, &token, &alice, now_s + 3605),
//!     Err(TokenError::Expired { ago_s: 5 })
//! );
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::protocol::{ErrorBody, ErrorKind, Uid};

const PREFIX: &str = "rtm1";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    uid: String,
    /// Expiry, seconds since the Unix epoch.
    exp: u64,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user the token was minted for (checked to be the one logging in).
    pub uid: Uid,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Why a token was refused. The message tells a person what to do; the
/// server answers a login or `renew_token` with [`TokenError::to_error_body`].
/// Non-exhaustive: a later token version may add reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three dot-separated parts, an unknown version prefix, bad
    /// base64url or an unreadable payload; the text names which
    /// (`INVALID_TOKEN` on the wire).
    #[error("the token is malformed ({0}); mint one with `rtm token --uid <uid>`")]
    Malformed(&'static str),
    /// Well-formed, but not signed with this app certificate (`INVALID_TOKEN`).
    #[error(
        "the token was not signed with this server's app certificate; get a fresh token from whoever runs the server (`rtm token --uid <uid>`)"
    )]
    BadSignature,
    /// Past its expiry (`TOKEN_EXPIRED` on the wire). A token is expired from
    /// its `exp` second on.
    #[error("the token expired {ago_s} s ago; get a fresh one (`rtm token --uid <uid>`)")]
    Expired {
        /// Seconds since the expiry.
        ago_s: u64,
    },
    /// Valid, but minted for another uid (`INVALID_ARGUMENT` on the wire).
    #[error("the token is for user {token_uid:?}, not {login_uid:?}")]
    WrongUid {
        /// The uid the token was minted for.
        token_uid: String,
        /// The uid that tried to use it.
        login_uid: String,
    },
    /// A `login` without a token on a server that requires one
    /// (`INVALID_TOKEN` on the wire); [`verify`] itself never returns it.
    #[error(
        "this server requires a token to log in; ask its operator for one (they can run `rtm token --uid <your uid>`)"
    )]
    Missing,
}

impl TokenError {
    /// The error the server answers a `login` or `renew_token` with:
    /// `TOKEN_EXPIRED` for [`TokenError::Expired`], `INVALID_ARGUMENT` for
    /// [`TokenError::WrongUid`], `INVALID_TOKEN` otherwise; the message is
    /// this error's text.
    pub fn to_error_body(&self) -> ErrorBody {
        let kind = match self {
            TokenError::Expired { .. } => ErrorKind::TokenExpired,
            TokenError::WrongUid { .. } => ErrorKind::InvalidArgument,
            _ => ErrorKind::InvalidToken,
        };
        ErrorBody::new(kind, self.to_string())
    }
}

fn signature(certificate: &[u8], signed: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(certificate)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(signed.as_bytes());
    mac
}

/// Mints a token for `uid`, valid until `expires_at` (seconds since the
/// epoch, exclusive), signed with `certificate` (the server's app
/// certificate, any length). App servers call this; `rtm token` is the same
/// on the command line. Example in the [module docs](self).
pub fn mint(certificate: &[u8], uid: &Uid, expires_at: u64) -> String {
    let payload = serde_json::json!({ "uid": uid.as_str(), "exp": expires_at }).to_string();
    let payload = B64.encode(payload.as_bytes());
    let signed = format!("{PREFIX}.{payload}");
    let sig = signature(certificate, &signed).finalize().into_bytes();
    format!("{signed}.{}", B64.encode(sig))
}

/// Checks a token as the server does at login: its form, its signature
/// (in constant time) under `certificate`, that it is for `uid`, and that it
/// has not expired at `now_s` (seconds since the epoch). Surrounding
/// whitespace is ignored. Example in the [module docs](self).
pub fn verify(
    certificate: &[u8],
    token: &str,
    uid: &Uid,
    now_s: u64,
) -> Result<Claims, TokenError> {
    let mut parts = token.trim().split('.');
    let (Some(prefix), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("expected three dot-separated parts"));
    };
    if prefix != PREFIX {
        return Err(TokenError::Malformed("unknown token version"));
    }
    let sig = B64
        .decode(sig)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    signature(certificate, &format!("{prefix}.{payload}"))
        .verify_slice(&sig)
        .map_err(|_| TokenError::BadSignature)?;
    let payload = B64
        .decode(payload)
        .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
    let payload: Payload = serde_json::from_slice(&payload)
        .map_err(|_| TokenError::Malformed("payload is not valid"))?;
    if payload.uid != uid.as_str() {
        return Err(TokenError::WrongUid {
            token_uid: payload.uid,
            login_uid: uid.to_string(),
        });
    }
    if payload.exp <= now_s {
        return Err(TokenError::Expired {
            ago_s: now_s - payload.exp,
        });
    }
    Ok(Claims {
        uid: uid.clone(),
        expires_at: payload.exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(s: &str) -> Uid {
        s.parse().unwrap()
    }

    #[test]
    fn minted_tokens_verify_and_bind_uid_and_expiry() {
        let t = mint(b"s3cret", &uid("alice"), 1000);
        assert_eq!(
            verify(b"s3cret", &t, &uid("alice"), 999)
                .unwrap()
                .expires_at,
            1000
        );
        assert_eq!(
            verify(b"s3cret", &t, &uid("alice"), 1000),
            Err(TokenError::Expired { ago_s: 0 })
        );
        assert!(matches!(
            verify(b"s3cret", &t, &uid("bob"), 1),
            Err(TokenError::WrongUid { .. })
        ));
        assert_eq!(
            verify(b"other", &t, &uid("alice"), 1),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(b"s3cret", &t, &uid("bob"), 1)
                .unwrap_err()
                .to_error_body()
                .kind,
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            verify(b"s3cret", &t, &uid("alice"), 5000)
                .unwrap_err()
                .to_error_body()
                .kind,
            ErrorKind::TokenExpired
        );
    }

    #[test]
    fn tampering_is_detected() {
        let t = mint(b"k", &uid("alice"), 10_000);
        let parts: Vec<&str> = t.split('.').collect();
        // Re-sign nothing, swap the payload for bob's: signature no longer matches.
        let bob = mint(b"k", &uid("bob"), 10_000);
        let bob_payload = bob.split('.').nth(1).unwrap();
        let forged = format!("{}.{}.{}", parts[0], bob_payload, parts[2]);
        assert_eq!(
            verify(b"k", &forged, &uid("bob"), 1),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "rtm1", "rtm1.a", "rtm2.a.b", "rtm1.a.b.c", "rtm1.!!.!!"] {
            assert!(
                matches!(
                    verify(b"k", bad, &uid("alice"), 1),
                    Err(TokenError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }
}
