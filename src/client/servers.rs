//! The servers of a client: one URL, or several for failover. A URL string
//! may hold several separated by commas (`"ws://a:7420,ws://b:7420"`); each
//! is checked before anything connects.

use tokio_tungstenite::tungstenite::http::Uri;

use super::RtmError;

/// The URLs in `specs`, each split at commas and trimmed; empty pieces (a
/// trailing comma, doubled commas) are skipped.
pub(super) fn split<I, S>(specs: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    specs
        .into_iter()
        .flat_map(|s| {
            s.as_ref()
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Checks every URL of `urls`; the error names the first bad one.
pub(super) fn check_all(urls: &[String]) -> Result<(), RtmError> {
    if urls.is_empty() {
        return Err(RtmError::InvalidServerUrl {
            url: String::new(),
            reason: "no server URL given (expected ws://host:port, or several separated by commas)"
                .into(),
        });
    }
    for url in urls {
        check(url).map_err(|reason| RtmError::InvalidServerUrl {
            url: url.clone(),
            reason,
        })?;
    }
    Ok(())
}

/// Why `url` cannot be a server's URL, if it cannot.
fn check(url: &str) -> Result<(), String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("not a URL ({e}); expected ws://host:port or wss://host:port"))?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("ws") || s.eq_ignore_ascii_case("wss") => {}
        Some(s) => {
            return Err(format!(
                "the scheme is {s}:// — use ws:// (or wss:// for TLS)"
            ));
        }
        None => return Err("no scheme; write ws://host:port (or wss:// for TLS)".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host; write ws://host:port".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorKind;

    #[test]
    fn a_list_is_split_at_commas_and_trimmed() {
        assert_eq!(split(["ws://a:1"]), ["ws://a:1"]);
        assert_eq!(
            split(["ws://a:1, ws://b:2,", "wss://c/path"]),
            ["ws://a:1", "ws://b:2", "wss://c/path"]
        );
        assert!(split([" , "]).is_empty());
    }

    #[test]
    fn bad_urls_are_named_in_the_error() {
        let ok = split(["ws://127.0.0.1:7420,wss://chat.example.org/rtm,WS://h"]);
        assert_eq!(check_all(&ok), Ok(()));
        for (bad, says) in [
            ("http://a:1", "scheme is http"),
            ("127.0.0.1:7420", "ws://"),
            ("ws://", "not a URL"),
            ("ws:// a", "not a URL"),
        ] {
            let urls = vec!["ws://good:1".to_string(), bad.to_string()];
            let err = check_all(&urls).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            let text = err.to_string();
            assert!(text.contains(bad) && text.contains(says), "{bad}: {text}");
        }
        let err = check_all(&[]).unwrap_err();
        assert!(err.to_string().contains("no server URL"), "{err}");
    }
}
