//! Configuration: where rtm keeps its files, how a config file is read, and
//! the messenger's settings (the server's are in `server::config`). The
//! documented defaults in `config/*.toml` are embedded in the binary; a user
//! file in the `directories` config dir (or `--config FILE`) overrides them;
//! `RTM_*` environment variables override that; flags last. Each file is
//! read into a struct of `Option`s, then resolved into settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The defaults, as shipped and documented.
pub const CLIENT_DEFAULTS: &str = include_str!("../config/client.toml");

/// The default server address of the messenger and of `rtm serve`.
pub const DEFAULT_SERVER_URL: &str = "ws://127.0.0.1:7420";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {reason}")]
    Parse { path: PathBuf, reason: String },
    /// A value that parses but cannot be used; `origin` names where it came
    /// from (a file key, an environment variable, a flag).
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
}

/// Where rtm keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
}

impl Paths {
    /// The platform's places (`~/.config/rtm`, `~/.local/share/rtm` on Linux);
    /// `RTM_HOME` puts everything under one directory instead (tests use it).
    pub fn discover() -> Paths {
        if let Some(home) = std::env::var_os("RTM_HOME") {
            let home = PathBuf::from(home);
            return Paths {
                config_dir: home.join("config"),
                data_dir: home.join("data"),
                log_dir: home.join("data").join("logs"),
            };
        }
        match directories::ProjectDirs::from("", "", "rtm") {
            Some(d) => Paths {
                config_dir: d.config_dir().to_path_buf(),
                data_dir: d.data_dir().to_path_buf(),
                log_dir: d.data_dir().join("logs"),
            },
            None => {
                let base = PathBuf::from(".rtm");
                Paths {
                    config_dir: base.clone(),
                    data_dir: base.clone(),
                    log_dir: base.join("logs"),
                }
            }
        }
    }

    /// Where an embedded server (the one `rtm chat` starts when no server is
    /// configured) keeps its data: one directory per OS user, whatever
    /// `RTM_HOME` says, because the embedded server's address is shared by
    /// every messenger of this user on the machine, and the one that takes
    /// over when the host quits must find the same channel attributes and
    /// stored offline messages. `RTM_EMBEDDED_DATA` overrides it.
    pub fn embedded_server_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("RTM_EMBEDDED_DATA").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        match directories::ProjectDirs::from("", "", "rtm") {
            Some(d) => d.data_dir().join("server"),
            None => PathBuf::from(".rtm").join("server"),
        }
    }

    pub fn client_config_file(&self) -> PathBuf {
        self.config_dir.join("client.toml")
    }

    pub fn server_config_file(&self) -> PathBuf {
        self.config_dir.join("server.toml")
    }
}

pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
    text: &str,
    path: &Path,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads `path` if it exists. A missing default file is fine; a missing file
/// the user named explicitly is an error.
pub(crate) fn read_optional(path: &Path, must_exist: bool) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `client.toml` as written: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// One URL, several separated by commas, or a list of URLs (kept here
    /// joined with commas, as `--server` and `RTM_SERVER` give them).
    #[serde(default, deserialize_with = "server_list")]
    pub server: Option<String>,
    pub uid: Option<String>,
    pub token: Option<String>,
    pub log_level: Option<String>,
    pub offline_messages: Option<bool>,
    pub request_timeout_s: Option<u64>,
    pub ca_file: Option<PathBuf>,
    /// A shell command that prints a fresh login token (run before expiry).
    pub token_command: Option<String>,
    /// Keep a local history of the conversations in the data dir.
    pub history: Option<bool>,
    /// Capture the mouse (wheel scrolls, click focuses) at start.
    pub mouse: Option<bool>,
    /// `dark`, `light` or the name of a file in `<config dir>/themes/`.
    pub theme: Option<String>,
    /// `[keys.<context>] <action> = ["key", …]`: rebinds the messenger's keys.
    pub keys: Option<KeyBindingsFile>,
    pub notify: Option<NotifyFile>,
}

/// `server = "ws://a:7420"`, `"ws://a:7420,ws://b:7420"` or
/// `["ws://a:7420", "ws://b:7420"]`: one string, the list joined with commas.
fn server_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s,
        OneOrMany::Many(list) => list.join(","),
    }))
}

/// Context → action → keys, as written; the messenger checks the names.
pub type KeyBindingsFile = BTreeMap<String, BTreeMap<String, KeyList>>;

/// One key (`"ctrl-f"`) or several (`["ctrl-f", "f3"]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum KeyList {
    One(String),
    Many(Vec<String>),
}

impl KeyList {
    pub fn keys(&self) -> Vec<String> {
        match self {
            KeyList::One(k) => vec![k.clone()],
            KeyList::Many(ks) => ks.clone(),
        }
    }
}

/// `[notify]` of `client.toml`: when the messenger rings the bell.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFile {
    pub bell: Option<bool>,
    /// `off`, `osc9` or `osc777`: also ask the terminal for a desktop notification.
    pub desktop: Option<String>,
    /// `all`, `mentions` or `none`, for direct conversations and for channels.
    pub peers: Option<String>,
    pub channels: Option<String>,
    /// Per conversation (`"bob"`, `"#general"`), the same three levels.
    pub conversations: Option<BTreeMap<String, String>>,
}

impl NotifyFile {
    fn merge(self, over: NotifyFile) -> NotifyFile {
        let mut conversations = self.conversations.unwrap_or_default();
        conversations.extend(over.conversations.unwrap_or_default());
        NotifyFile {
            bell: over.bell.or(self.bell),
            desktop: over.desktop.or(self.desktop),
            peers: over.peers.or(self.peers),
            channels: over.channels.or(self.channels),
            conversations: Some(conversations),
        }
    }
}

impl ClientFile {
    fn merge(self, over: ClientFile) -> ClientFile {
        // Key tables merge per action, so a user file names only what it changes.
        let mut keys = self.keys.unwrap_or_default();
        for (context, actions) in over.keys.unwrap_or_default() {
            keys.entry(context).or_default().extend(actions);
        }
        let notify = match (self.notify, over.notify) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            (a, b) => b.or(a),
        };
        ClientFile {
            theme: over.theme.or(self.theme),
            keys: Some(keys),
            notify,
            server: over.server.or(self.server),
            uid: over.uid.or(self.uid),
            token: over.token.or(self.token),
            log_level: over.log_level.or(self.log_level),
            offline_messages: over.offline_messages.or(self.offline_messages),
            request_timeout_s: over.request_timeout_s.or(self.request_timeout_s),
            ca_file: over.ca_file.or(self.ca_file),
            token_command: over.token_command.or(self.token_command),
            history: over.history.or(self.history),
            mouse: over.mouse.or(self.mouse),
        }
    }
}

/// The messenger's resolved settings.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub server: String,
    /// True when the server came from the user (file, env or flag), not the
    /// built-in default: only the default may fall back to an embedded server.
    pub server_configured: bool,
    pub uid: Option<String>,
    pub token: Option<String>,
    pub log_level: String,
    pub offline_messages: bool,
    pub request_timeout: Duration,
    /// For `wss://` servers: trust this CA (PEM) instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Run to get a fresh token when the current one is about to expire.
    pub token_command: Option<String>,
    /// Keep each conversation's messages in `<data dir>/history-<uid>.sqlite3`
    /// and show them at the next start (`--no-history` turns it off).
    pub history: bool,
    /// Capture the mouse at start (`mouse = false`: the terminal keeps text
    /// selection; a key switches it at run time).
    pub mouse: bool,
    pub paths: Paths,
    /// The user config file that was (or would be) read.
    pub config_file: PathBuf,
    /// Theme name; the messenger resolves it (built in or `<config dir>/themes/<name>.toml`).
    pub theme: String,
    /// Key rebindings over the built-in keymap; checked by the messenger at start-up.
    pub keys: KeyBindingsFile,
    pub notify: NotifyFile,
}

impl ClientSettings {
    /// Defaults ← user file (`file` or the default location) ← environment.
    pub fn load(paths: Paths, file: Option<&Path>) -> Result<ClientSettings, ConfigError> {
        let defaults: ClientFile = parse(CLIENT_DEFAULTS, Path::new("<built-in client.toml>"))?;
        let config_file = file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| paths.client_config_file());
        let user: ClientFile = match read_optional(&config_file, file.is_some())? {
            Some(text) => parse(&text, &config_file)?,
            None => ClientFile::default(),
        };
        let server_configured = user.server.is_some() || env("RTM_SERVER").is_some();
        let envs = ClientFile {
            server: env("RTM_SERVER"),
            uid: env("RTM_UID"),
            token: env("RTM_TOKEN"),
            log_level: env("RTM_LOG"),
            theme: env("RTM_THEME"),
            ..ClientFile::default()
        };
        let f = defaults.merge(user).merge(envs);
        Ok(Self::resolve(f, server_configured, paths, config_file))
    }

    /// The built-in defaults alone (no user file, no environment): what a
    /// fresh install runs with. Tests and benchmarks start from it.
    pub fn built_in(paths: Paths) -> ClientSettings {
        // The embedded file is checked by a unit test; an empty file is the
        // (unreachable) fallback rather than a panic.
        let defaults: ClientFile =
            parse(CLIENT_DEFAULTS, Path::new("<built-in client.toml>")).unwrap_or_default();
        let config_file = paths.client_config_file();
        Self::resolve(defaults, false, paths, config_file)
    }

    /// Fills every setting from the merged file, with the documented fallbacks.
    fn resolve(
        f: ClientFile,
        server_configured: bool,
        paths: Paths,
        config_file: PathBuf,
    ) -> ClientSettings {
        ClientSettings {
            server: f.server.unwrap_or_else(|| DEFAULT_SERVER_URL.to_string()),
            server_configured,
            uid: f.uid,
            token: f.token,
            log_level: f.log_level.unwrap_or_else(|| "info".into()),
            offline_messages: f.offline_messages.unwrap_or(true),
            request_timeout: Duration::from_secs(f.request_timeout_s.unwrap_or(10)),
            ca_file: f.ca_file,
            token_command: f.token_command.filter(|c| !c.trim().is_empty()),
            history: f.history.unwrap_or(true),
            mouse: f.mouse.unwrap_or(true),
            paths,
            config_file,
            theme: f.theme.unwrap_or_else(|| "dark".into()),
            keys: f.keys.unwrap_or_default(),
            notify: f.notify.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let c: ClientFile = toml::from_str(CLIENT_DEFAULTS).unwrap();
        assert_eq!(c.server.as_deref(), Some(DEFAULT_SERVER_URL));
    }

    #[test]
    fn the_server_may_be_a_list() {
        let one: ClientFile = toml::from_str("server = \"ws://a:1,ws://b:2\"").unwrap();
        assert_eq!(one.server.as_deref(), Some("ws://a:1,ws://b:2"));
        let many: ClientFile = toml::from_str("server = [\"ws://a:1\", \"ws://b:2\"]").unwrap();
        assert_eq!(many.server.as_deref(), Some("ws://a:1,ws://b:2"));
        let none: ClientFile = toml::from_str("uid = \"alice\"").unwrap();
        assert_eq!(none.server, None);
        assert!(toml::from_str::<ClientFile>("server = 7420").is_err());
    }

    #[test]
    fn user_file_overrides_defaults_and_typos_are_reported() {
        let dir = std::env::temp_dir().join(format!("rtm-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = Paths {
            config_dir: dir.clone(),
            data_dir: dir.clone(),
            log_dir: dir.clone(),
        };
        let f = dir.join("c.toml");
        std::fs::write(&f, "offline_messages = false\nrequest_timeout_s = 3\n").unwrap();
        let s = ClientSettings::load(paths.clone(), Some(&f)).unwrap();
        assert!(!s.offline_messages);
        assert_eq!(s.request_timeout, Duration::from_secs(3));
        std::fs::write(&f, "sever = \"ws://x\"\n").unwrap();
        let err = ClientSettings::load(paths.clone(), Some(&f)).unwrap_err();
        assert!(err.to_string().contains("sever"), "{err}");
        let missing = dir.join("nope.toml");
        assert!(matches!(
            ClientSettings::load(paths, Some(&missing)),
            Err(ConfigError::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}
