//! Login tokens (spec §2): an expiring credential bound to one uid, signed
//! with HMAC-SHA256 under the server's app certificate (a shared secret).
//!
//! Format: `rtm1.<payload>.<signature>`, both parts base64url without
//! padding; the payload is `{"exp":1767225600,"uid":"alice"}` (exp in seconds
//! since the epoch) and the signature is HMAC-SHA256(certificate,
//! "rtm1." + payload part). App servers mint tokens with [`mint`]; `rtm token`
//! is the same function on the command line. Verification compares the
//! signature in constant time.

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
    pub uid: Uid,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed ({0}); mint one with `rtm token --uid <uid>`")]
    Malformed(&'static str),
    #[error(
        "the token was not signed with this server's app certificate; get a fresh token from whoever runs the server (`rtm token --uid <uid>`)"
    )]
    BadSignature,
    #[error("the token expired {ago_s} s ago; get a fresh one (`rtm token --uid <uid>`)")]
    Expired { ago_s: u64 },
    #[error("the token is for user {token_uid:?}, not {login_uid:?}")]
    WrongUid {
        token_uid: String,
        login_uid: String,
    },
    #[error(
        "this server requires a token to log in; ask its operator for one (they can run `rtm token --uid <your uid>`)"
    )]
    Missing,
}

impl TokenError {
    /// The login error the server answers with.
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

/// Mints a token for `uid`, valid until `expires_at` (seconds since the epoch).
pub fn mint(certificate: &[u8], uid: &Uid, expires_at: u64) -> String {
    let payload = serde_json::json!({ "uid": uid.as_str(), "exp": expires_at }).to_string();
    let payload = B64.encode(payload.as_bytes());
    let signed = format!("{PREFIX}.{payload}");
    let sig = signature(certificate, &signed).finalize().into_bytes();
    format!("{signed}.{}", B64.encode(sig))
}

/// Checks signature, expiry (against `now_s`) and that the token is for `uid`.
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
