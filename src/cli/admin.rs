//! `rtm admin`: the operator's commands, over the admin interface of a
//! running server's metrics listener (see `rtm::server::admin`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct AdminArgs {
    /// The server's metrics listener [env: RTM_ADMIN_URL]
    #[arg(long, env = "RTM_ADMIN_URL", default_value = "http://127.0.0.1:9420")]
    url: String,
    /// The admin secret the server was started with [env: RTM_ADMIN_SECRET]
    #[arg(long, env = "RTM_ADMIN_SECRET", hide_env_values = true)]
    secret: String,
    #[command(subcommand)]
    action: AdminAction,
}

#[derive(Subcommand)]
enum AdminAction {
    /// List the sessions of that server
    Sessions,
    /// End a uid's session (it may log in again)
    Kick {
        uid: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// End a uid's session and refuse its logins for a while
    Ban {
        uid: String,
        /// How long: seconds, or with a unit (90s, 10m, 2h, 1d)
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift a ban
    Unban { uid: String },
}

/// "90", "90s", "10m", "2h", "1d" → seconds.
fn parse_duration(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a duration; write e.g. 90s, 10m, 2h or 1d"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => bail!("unknown unit {other:?} in {s:?}; use s, m, h or d"),
    };
    Ok(n * factor)
}

pub fn admin(args: AdminArgs) -> anyhow::Result<()> {
    let (method, path, body) = match &args.action {
        AdminAction::Sessions => ("GET", "/admin/sessions", String::new()),
        AdminAction::Kick { uid, reason } => (
            "POST",
            "/admin/kick",
            serde_json::json!({ "uid": uid, "reason": reason }).to_string(),
        ),
        AdminAction::Ban {
            uid,
            duration,
            reason,
        } => (
            "POST",
            "/admin/ban",
            serde_json::json!({ "uid": uid, "seconds": parse_duration(duration)?, "reason": reason })
                .to_string(),
        ),
        AdminAction::Unban { uid } => (
            "POST",
            "/admin/unban",
            serde_json::json!({ "uid": uid }).to_string(),
        ),
    };
    let (status, answer) = request(&args.url, &args.secret, method, path, &body)?;
    let value: serde_json::Value = serde_json::from_str(&answer)
        .with_context(|| format!("the server answered {status} with: {answer}"))?;
    if status != 200 {
        bail!(
            "the server refused ({status}): {}",
            value["error"].as_str().unwrap_or(answer.trim())
        );
    }
    match &args.action {
        AdminAction::Sessions => {
            let sessions = value.as_array().cloned().unwrap_or_default();
            println!(
                "{:<24} {:>8} {:<5} {:>8} {:>8}",
                "UID", "SESSION", "LINK", "CHANNELS", "WATCHING"
            );
            // JSON values ignore widths when printed: numbers as numbers.
            let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
            for s in &sessions {
                println!(
                    "{:<24} {:>8} {:<5} {:>8} {:>8}",
                    s["uid"].as_str().unwrap_or("?"),
                    n(&s["session"]),
                    s["link"].as_str().unwrap_or("?"),
                    n(&s["channels"]),
                    n(&s["watching"])
                );
            }
            println!("{} session(s)", sessions.len());
        }
        AdminAction::Kick { uid, .. } => match value["ended"].as_bool() {
            Some(true) => println!("{uid}: session ended"),
            _ => println!("{uid}: no session on this server"),
        },
        AdminAction::Ban { uid, duration, .. } => {
            // A node ends the sessions it holds; in a cluster, a session on
            // another node is ended there (the ban is kept in Redis).
            let ended = if value["ended"].as_bool() == Some(true) {
                "; its session was ended"
            } else {
                "; no session of it on this server (in a cluster, the node holding it ends it)"
            };
            println!("{uid}: banned for {duration}{ended}");
        }
        AdminAction::Unban { uid } => match value["lifted"].as_bool() {
            Some(true) => println!("{uid}: ban lifted"),
            _ => println!("{uid}: was not banned on this server"),
        },
    }
    Ok(())
}

/// One HTTP/1.1 request to the admin interface: (status, body).
fn request(
    url: &str,
    secret: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let addr = url
        .strip_prefix("http://")
        .with_context(|| {
            format!("{url:?}: the admin URL must start with http:// (the metrics listener)")
        })?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(addr)
        .with_context(|| format!("cannot reach the server's metrics listener at {addr}; is it started with --metrics-listen {addr}?"))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {secret}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .context("reading the server's answer")?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("not an HTTP answer: {answer:?}"))?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("10m").unwrap(), 600);
        assert_eq!(parse_duration("2h").unwrap(), 7200);
        assert_eq!(parse_duration("1d").unwrap(), 86_400);
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
