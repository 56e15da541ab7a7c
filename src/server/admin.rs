//! The admin interface on the metrics listener (`rtm admin` uses it). Off
//! unless an admin secret is configured (`--admin-secret`,
//! `RTM_ADMIN_SECRET`, `admin_secret` in server.toml); every request carries
//! it as `Authorization: Bearer SECRET`.
//!
//! - `GET  /admin/sessions` → `[{uid, session, link, channels, watching}]`
//! - `POST /admin/kick  {"uid": U, "reason": R}` → `{"ended": bool}`
//! - `POST /admin/ban   {"uid": U, "seconds": N, "reason": R}` → `{"ended": bool, "until_ms": T}`
//! - `POST /admin/unban {"uid": U}` → `{"lifted": bool}`

use std::sync::Arc;

use serde::Deserialize;

use super::hub::Hub;
use crate::protocol::Uid;

#[derive(Deserialize)]
struct Target {
    uid: String,
    #[serde(default)]
    seconds: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
}

/// Longest ban: a year.
const MAX_BAN_SECONDS: u64 = 365 * 24 * 3600;

/// Equal without telling by its timing how much of the secret was right.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn json(status: u16, value: serde_json::Value) -> (u16, &'static str, String) {
    (status, "application/json", format!("{value}\n"))
}

fn error(status: u16, message: &str) -> (u16, &'static str, String) {
    json(status, serde_json::json!({ "error": message }))
}

/// Answers `/admin/ACTION`: (status, content type, body).
pub fn handle(
    hub: &Arc<Hub>,
    secret: Option<&str>,
    method: &str,
    action: &str,
    bearer: Option<&str>,
    body: &[u8],
) -> (u16, &'static str, String) {
    let Some(secret) = secret else {
        return error(
            404,
            "the admin interface is off; start the server with --admin-secret (or admin_secret in server.toml)",
        );
    };
    if !bearer.is_some_and(|b| same_secret(b, secret)) {
        tracing::warn!(action, "admin request with a wrong or missing secret");
        return error(
            401,
            "wrong or missing admin secret; send it as Authorization: Bearer SECRET",
        );
    }
    match (method, action) {
        ("GET", "sessions") => json(200, serde_json::json!(hub.sessions())),
        ("POST", "kick" | "ban" | "unban") => {
            let target: Target = match serde_json::from_slice(body) {
                Ok(t) => t,
                Err(e) => return error(400, &format!("the body is not {{\"uid\": …}}: {e}")),
            };
            let uid = match Uid::new(target.uid) {
                Ok(u) => u,
                Err(e) => return error(400, &e.to_string()),
            };
            let reason = target.reason.unwrap_or_default();
            match action {
                "kick" => json(200, serde_json::json!({ "ended": hub.kick(&uid, &reason) })),
                "ban" => {
                    let Some(seconds) =
                        target.seconds.filter(|s| (1..=MAX_BAN_SECONDS).contains(s))
                    else {
                        return error(
                            400,
                            "give \"seconds\": how long the ban lasts, 1 to 31536000",
                        );
                    };
                    let until_ms = hub.now_ms() + seconds * 1000;
                    let ended = hub.ban(&uid, until_ms, &reason);
                    json(
                        200,
                        serde_json::json!({ "ended": ended, "until_ms": until_ms }),
                    )
                }
                _ => json(200, serde_json::json!({ "lifted": hub.unban(&uid) })),
            }
        }
        _ => error(
            404,
            "unknown admin request; try GET /admin/sessions, POST /admin/kick, /admin/ban, /admin/unban",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}
