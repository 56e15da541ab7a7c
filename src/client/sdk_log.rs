//! The SDK's own log level, which [`RtmClient::update_config`] sets: every
//! `tracing` event of the SDK checks it first, so `update_config("debug")` or
//! `("off")` changes what the SDK emits even when the program gave no
//! [`ClientConfig::log_filter`] hook (the SDK installs no subscriber; what a
//! subscriber does with the events stays the program's choice). One level
//! for the whole process, as `tracing`'s dispatcher is.
//!
//! [`RtmClient::update_config`]: super::RtmClient::update_config
//! [`ClientConfig::log_filter`]: super::ClientConfig::log_filter

use std::sync::atomic::{AtomicU8, Ordering};

use tracing::Level;

/// 0 = off, 1 = error … 5 = trace. Trace by default: until the program says
/// otherwise the SDK filters nothing, and the subscriber decides, as before.
static LEVEL: AtomicU8 = AtomicU8::new(5);

fn rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Whether the SDK emits events of `level` now.
pub(crate) fn enabled(level: Level) -> bool {
    rank(level) <= LEVEL.load(Ordering::Relaxed)
}

fn set(rank: u8) {
    LEVEL.store(rank, Ordering::Relaxed);
}

fn parse_level(text: &str) -> Option<u8> {
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "off" => 0,
        "error" => 1,
        "warn" => 2,
        "info" => 3,
        "debug" => 4,
        "trace" => 5,
        _ => return None,
    })
}

/// What a filter in `RTM_LOG` syntax means for the SDK: `"debug"` (everyone,
/// so the SDK too), `"warn,rtm=debug"`, `"rtm::client=trace"`, `"off"`. The
/// most specific directive for the SDK wins (`rtm::client` over `rtm` over a
/// bare level). `Ok(None)`: a valid filter that says nothing about the SDK
/// (`"hyper=debug"`). `Err`: not a filter this reads.
pub(crate) fn parse(filter: &str) -> Result<Option<u8>, String> {
    let mut best: Option<(usize, u8)> = None;
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let (specificity, level) = match directive.split_once('=') {
            None => (0, directive),
            Some((target, level)) => match target.trim() {
                "rtm" => (1, level),
                t if t == "rtm::client" || t.starts_with("rtm::client::") => (2, level),
                _ => {
                    // Another crate's directive: valid, not ours.
                    parse_level(level)
                        .ok_or_else(|| format!("{directive:?}: {level:?} is not a log level"))?;
                    continue;
                }
            },
        };
        let rank = parse_level(level).ok_or_else(|| {
            format!(
                "{directive:?} is not a log filter; use off, error, warn, info, debug or trace, \
                 optionally per target as in \"warn,rtm=debug\""
            )
        })?;
        if best.is_none_or(|(s, _)| specificity >= s) {
            best = Some((specificity, rank));
        }
    }
    match best {
        Some((_, rank)) => Ok(Some(rank)),
        None if filter.trim().is_empty() => {
            Err("the log filter is empty; use off, error, warn, info, debug or trace".to_string())
        }
        None => Ok(None),
    }
}

/// Applies a parsed filter (see [`parse`]).
pub(crate) fn apply(rank: Option<u8>) {
    if let Some(rank) = rank {
        set(rank);
    }
}

/// `tracing::info!` and friends, behind the SDK's own level.
macro_rules! sdk_event {
    ($level:ident, $($arg:tt)+) => {
        if $crate::client::sdk_log::enabled(::tracing::Level::$level) {
            ::tracing::event!(::tracing::Level::$level, $($arg)+);
        }
    };
}
pub(crate) use sdk_event;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_read_for_the_sdk() {
        assert_eq!(parse("debug"), Ok(Some(4)));
        assert_eq!(parse("OFF"), Ok(Some(0)));
        assert_eq!(parse("warn,rtm=debug"), Ok(Some(4)));
        assert_eq!(
            parse("rtm=debug,warn"),
            Ok(Some(4)),
            "order does not matter"
        );
        assert_eq!(parse("rtm=info,rtm::client=trace"), Ok(Some(5)));
        assert_eq!(parse("hyper=debug"), Ok(None));
        assert!(parse("nonsense[").is_err());
        assert!(parse("rtm=loud").is_err());
        assert!(parse("").is_err());
    }
}
