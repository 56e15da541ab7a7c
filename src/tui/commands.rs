//! Slash commands: one table ([`COMMANDS`]) that both the parser and the help
//! overlay read, and [`parse`], which turns a typed line into a
//! [`SlashCommand`] or an error worded for the status bar.

use std::collections::BTreeMap;

use super::conversation::ConvId;
use crate::client::{ChannelId, IdError, Uid};

/// One row of the command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: &'static str,
    pub args: &'static str,
    pub description: &'static str,
    /// `/help <name>`: more on the command, with examples; one line each.
    pub details: &'static [&'static str],
}

/// Every slash command, in the order the help overlay lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "msg",
        args: "<peer> <text>",
        description: "open a direct conversation with <peer> and send <text>",
        details: &[
            "Opens the direct conversation and sends the rest of the line as one message.",
            "Quote a uid that has spaces: /msg \"bob smith\" hello",
            "When the peer is offline the server stores the message (offline_messages in client.toml).",
        ],
    },
    CommandSpec {
        name: "join",
        args: "<channel>",
        description: "join a channel and open it",
        details: &[
            "Joins the channel and opens it; its members and attributes fill the right column.",
            "Example: /join general   (a leading # is fine: /join #general)",
        ],
    },
    CommandSpec {
        name: "leave",
        args: "[channel]",
        description: "leave a channel (default: the open one)",
        details: &[
            "Leaves the open channel, or the one named.",
            "Example: /leave #random",
        ],
    },
    CommandSpec {
        name: "watch",
        args: "<uid>…",
        description: "follow peers' online state (remembered in watched.txt)",
        details: &[
            "Subscribes to the peers' online state; changes show in the status bar.",
            "Example: /watch bob carol",
        ],
    },
    CommandSpec {
        name: "unwatch",
        args: "<uid>…",
        description: "stop following peers' online state",
        details: &["Stops following the peers' online state and forgets them in watched.txt."],
    },
    CommandSpec {
        name: "status",
        args: "<uid>…",
        description: "ask once whether peers are online",
        details: &[
            "Asks the server once; the answer shows in the status bar.",
            "Example: /status bob",
        ],
    },
    CommandSpec {
        name: "attr",
        args: "set|put k=v… | del k… | clear | get <uid> [k…]",
        description: "your user attributes (set replaces all, put adds); get reads anyone's",
        details: &[
            "set replaces all your attributes, put adds or updates, del removes keys, clear removes all.",
            "Example: /attr put mood=busy city=\"New York\"",
            "get reads anyone's: /attr get bob mood",
        ],
    },
    CommandSpec {
        name: "cattr",
        args: "set|put|del|clear <channel> … [--quiet] | get <channel> [k…]",
        description: "channel attributes; members are told of a change unless --quiet",
        details: &[
            "Channel attributes, shared by everyone in the channel.",
            "Example: /cattr put #general topic=\"release 0.2\"",
            "A change is sent to the channel's members, so their Attributes panes show it;",
            "--quiet changes without telling them (they see it when they next open or refresh",
            "the channel). --notify, the default, is accepted too.",
            "get reads them into the status bar: /cattr get #general  (/attrs shows them whole)",
        ],
    },
    CommandSpec {
        name: "members",
        args: "",
        description: "the open channel's members, over the screen (Esc closes)",
        details: &[
            "Lists everyone in the open channel with their presence (● online, ◐ unreachable),",
            "at any terminal size. ↑/↓ and PgUp/PgDn move, Enter opens a direct conversation,",
            "r reads the list again, Tab switches to /attrs, Esc closes.",
        ],
    },
    CommandSpec {
        name: "attrs",
        args: "",
        description: "the open channel's attributes, whole, with who changed them and when",
        details: &[
            "Shows every attribute of the open channel with its whole value, who changed it",
            "and when, and how long ago they were read; then your own attributes",
            "(a peer's when a direct conversation is open). ↑/↓ select, e edits, a adds,",
            "d deletes (y confirms), r reads them again, Tab switches to /members, Esc closes.",
        ],
    },
    CommandSpec {
        name: "token",
        args: "<token>",
        description: "renew the login token without reconnecting",
        details: &[
            "For servers with an app certificate. The operator mints tokens with",
            "`rtm token --uid <you>`. Set token_command in client.toml to have the",
            "messenger fetch a fresh one by itself before the old one expires.",
        ],
    },
    CommandSpec {
        name: "call",
        args: "[uid] [text]",
        description: "ring someone (alone in a direct conversation: its peer)",
        details: &[
            "Rings the peer; the first word is always who to ring, the rest of the line goes",
            "with the call. In a direct conversation /call alone rings its peer.",
            "Example: /call bob lunch?   The status bar says \"ringing bob…\", then",
            "\"bob's phone rings\" once bob's messenger shows it; an unanswered call ends after 60 s.",
            "Every call leaves a line in the direct conversation: accepted, refused, missed, failed.",
            "/cancel (or Ctrl-X) hangs up before it is answered.",
        ],
    },
    CommandSpec {
        name: "accept",
        args: "[caller] [response]",
        description: "answer the ringing call yes, with an optional response (also Ctrl-Y)",
        details: &[
            "Accepts the call that rings, sending the rest of the line to the caller.",
            "When several ring, name whose: /accept alice on my way",
            "Ctrl-Y accepts the call in the banner without a response.",
        ],
    },
    CommandSpec {
        name: "refuse",
        args: "[caller] [response]",
        description: "answer the ringing call no, with an optional response (also Ctrl-X)",
        details: &[
            "Refuses the call that rings, sending the rest of the line to the caller.",
            "When several ring, name whose: /refuse alice busy, later",
            "Ctrl-X refuses the call in the banner without a response.",
        ],
    },
    CommandSpec {
        name: "cancel",
        args: "[uid]",
        description: "hang up your ringing call (default: the newest)",
        details: &[
            "Stops ringing before the call is answered; the callee sees a missed call.",
            "Example: /cancel bob   (Ctrl-X hangs up too when no call rings here)",
        ],
    },
    CommandSpec {
        name: "file",
        args: "<path>",
        description: "send a file (up to 32 MiB) to the open conversation",
        details: &[
            "Uploads the file and sends it to the open conversation; a progress bar shows",
            "how far it is. Esc (with the input line empty) cancels the newest transfer here.",
            "~ is your home directory; a relative path starts where rtm was started.",
            "Example: /file ~/docs/report 2026.pdf   (spaces need no quotes)",
        ],
    },
    CommandSpec {
        name: "image",
        args: "<path>",
        description: "send a picture (PNG, JPEG, GIF, BMP) with a preview",
        details: &[
            "Like /file, with a small thumbnail sent along, so the receiver sees the",
            "picture at once (in the terminal's graphics, or coloured blocks).",
            "Example: /image ~/Pictures/cat.png",
        ],
    },
    CommandSpec {
        name: "save",
        args: "[destination]",
        description: "download the newest file here (or the search hit) to your downloads",
        details: &[
            "Saves the newest file or picture of the open conversation; with a search",
            "hit on a file (Ctrl-F, n/N), that one. Without a destination it goes to your",
            "download folder under its own name; a folder puts it there; a taken name gets",
            "\" (1)\" and so on, so nothing is overwritten. Esc cancels, as for /file.",
            "Example: /save   /save ~/Desktop   /save ~/notes/copy.pdf",
        ],
    },
    CommandSpec {
        name: "search",
        args: "<text>",
        description: "search the open conversation (also Ctrl-F, or / in a pane)",
        details: &[
            "Shows the newest match; n / N step to older / newer ones in the conversation pane.",
            "Matches ignore case. Esc ends the search.",
        ],
    },
    CommandSpec {
        name: "mute",
        args: "[peer | #channel]",
        description: "no bell or notification for a conversation (default: the open one)",
        details: &[
            "Muted conversations still count unread messages, shown dimmed with ⊘.",
            "Remembered in muted.txt. Example: /mute #random",
        ],
    },
    CommandSpec {
        name: "unmute",
        args: "[peer | #channel]",
        description: "notify again for a muted conversation",
        details: &["Example: /unmute #random"],
    },
    CommandSpec {
        name: "clear",
        args: "",
        description: "clear the open conversation on this screen",
        details: &["Only this screen forgets the lines; nothing is deleted on the server."],
    },
    CommandSpec {
        name: "help",
        args: "[command]",
        description: "show keys and commands, or how to use one command",
        details: &[
            "Without a command: every key and command. With one: this page.",
            "Example: /help cattr",
        ],
    },
    CommandSpec {
        name: "quit",
        args: "",
        description: "log out and leave the messenger",
        details: &["Logs out (so peers see you leave at once) and restores the terminal."],
    },
];

/// Looks a command up by name (without the slash).
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// A write to an attribute set (user or channel); the model's four operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrWrite {
    /// Replace the whole set.
    Set(BTreeMap<String, String>),
    /// Add or update these keys.
    Put(BTreeMap<String, String>),
    Delete(Vec<String>),
    Clear,
}

impl AttrWrite {
    /// The verb for messages: "set", "updated" …
    pub fn done_verb(&self) -> &'static str {
        match self {
            AttrWrite::Set(_) => "replaced",
            AttrWrite::Put(_) => "updated",
            AttrWrite::Delete(_) => "deleted",
            AttrWrite::Clear => "cleared",
        }
    }
}

/// A parsed slash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlashCommand {
    Msg {
        peer: Uid,
        text: String,
    },
    Join(ChannelId),
    Leave(Option<ChannelId>),
    Watch(Vec<Uid>),
    Unwatch(Vec<Uid>),
    Status(Vec<Uid>),
    UserAttrWrite(AttrWrite),
    UserAttrGet {
        uid: Uid,
        keys: Option<Vec<String>>,
    },
    ChannelAttrWrite {
        channel: ChannelId,
        op: AttrWrite,
        notify: bool,
    },
    ChannelAttrGet {
        channel: ChannelId,
        keys: Option<Vec<String>>,
    },
    Help(Option<&'static CommandSpec>),
    Members,
    Attrs,
    Search(String),
    Mute(Option<ConvId>),
    Unmute(Option<ConvId>),
    Token(String),
    /// `/call [uid] [text]`: `None` rings the open direct conversation's peer.
    Call {
        peer: Option<Uid>,
        content: String,
    },
    /// `/accept` (`accept`) or `/refuse`, with the rest of the line as
    /// typed: whether its first word names a caller depends on who rings,
    /// which only the app knows.
    Answer {
        accept: bool,
        rest: String,
    },
    /// `/cancel [uid]`: `None` hangs up the newest outgoing call.
    Cancel(Option<Uid>),
    /// `/file <path>` (`image`: false) or `/image <path>`, the path as typed.
    SendFile {
        path: String,
        image: bool,
    },
    /// `/save [destination]`, as typed.
    Save(Option<String>),
    Clear,
    Quit,
}

/// Why a line could not be run; the text goes to the status bar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command /{0}; /help lists the commands")]
    Unknown(String),
    #[error("/{name}: {why}. Usage: /{name} {args}")]
    Usage {
        name: &'static str,
        args: &'static str,
        why: String,
    },
    #[error("/{name}: {source}")]
    BadId { name: &'static str, source: IdError },
}

/// Splits off the first word of `s`; double quotes group words (`"bob smith"`,
/// `k="a b"`) and `\"` inside quotes is a literal quote. Returns the word and
/// the rest of the line, or `None` when only whitespace is left.
pub fn next_token(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted && matches!(chars.peek(), Some((_, '"'))) => {
                out.push('"');
                chars.next();
            }
            c if c.is_whitespace() && !quoted => return Some((out, &s[i..])),
            c => out.push(c),
        }
    }
    Some((out, ""))
}

fn tokens(mut s: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some((t, rest)) = next_token(s) {
        out.push(t);
        s = rest;
    }
    out
}

struct Ctx {
    spec: &'static CommandSpec,
}

impl Ctx {
    fn usage(&self, why: impl Into<String>) -> ParseError {
        ParseError::Usage {
            name: self.spec.name,
            args: self.spec.args,
            why: why.into(),
        }
    }

    fn uid(&self, s: &str) -> Result<Uid, ParseError> {
        Uid::new(s).map_err(|source| ParseError::BadId {
            name: self.spec.name,
            source,
        })
    }

    fn channel(&self, s: &str) -> Result<ChannelId, ParseError> {
        ChannelId::new(s.strip_prefix('#').unwrap_or(s)).map_err(|source| ParseError::BadId {
            name: self.spec.name,
            source,
        })
    }

    fn uids(&self, args: &[String]) -> Result<Vec<Uid>, ParseError> {
        if args.is_empty() {
            return Err(self.usage("give at least one user id"));
        }
        args.iter().map(|a| self.uid(a)).collect()
    }

    fn pairs(&self, args: &[String]) -> Result<BTreeMap<String, String>, ParseError> {
        if args.is_empty() {
            return Err(self.usage("give at least one key=value"));
        }
        let mut map = BTreeMap::new();
        for a in args {
            let Some((k, v)) = a.split_once('=') else {
                return Err(self.usage(format!("{a:?} is not key=value")));
            };
            if k.is_empty() {
                return Err(self.usage(format!("{a:?} has an empty key")));
            }
            map.insert(k.to_string(), v.to_string());
        }
        Ok(map)
    }

    fn keys(&self, args: &[String]) -> Result<Vec<String>, ParseError> {
        if args.is_empty() {
            return Err(self.usage("give at least one key"));
        }
        Ok(args.to_vec())
    }

    /// `set|put k=v…`, `del k…`, `clear`: the write operations shared by /attr and /cattr.
    fn write(&self, verb: &str, args: &[String]) -> Result<Option<AttrWrite>, ParseError> {
        Ok(Some(match verb {
            "set" => AttrWrite::Set(self.pairs(args)?),
            "put" => AttrWrite::Put(self.pairs(args)?),
            "del" => AttrWrite::Delete(self.keys(args)?),
            "clear" if args.is_empty() => AttrWrite::Clear,
            "clear" => return Err(self.usage("clear takes no keys")),
            _ => return Ok(None),
        }))
    }
}

/// A path argument: the rest of the line as typed (so spaces need no
/// quotes), or the quoted word when it starts with a quote.
fn path_arg(rest: &str) -> Option<String> {
    let rest = rest.trim();
    if rest.is_empty() {
        return None;
    }
    if rest.starts_with('"') {
        return next_token(rest).map(|(p, _)| p).filter(|p| !p.is_empty());
    }
    Some(rest.to_string())
}

/// Parses a line that starts with `/`.
pub fn parse(line: &str) -> Result<SlashCommand, ParseError> {
    let body = line.strip_prefix('/').unwrap_or(line);
    let (name, rest) = match body.split_once(char::is_whitespace) {
        Some((n, r)) => (n, r),
        None => (body, ""),
    };
    let Some(found) = spec(name) else {
        return Err(ParseError::Unknown(name.to_string()));
    };
    let cx = Ctx { spec: found };
    let args = tokens(rest);
    match found.name {
        "msg" => {
            let Some((peer, text)) = next_token(rest) else {
                return Err(cx.usage("say who to write to"));
            };
            let peer = cx.uid(&peer)?;
            let text = text.trim_start();
            if text.trim().is_empty() {
                return Err(cx.usage("the message text is missing"));
            }
            Ok(SlashCommand::Msg {
                peer,
                text: text.to_string(),
            })
        }
        "join" => match args.as_slice() {
            [ch] => Ok(SlashCommand::Join(cx.channel(ch)?)),
            [] => Err(cx.usage("say which channel")),
            _ => Err(cx.usage("one channel at a time")),
        },
        "leave" => match args.as_slice() {
            [] => Ok(SlashCommand::Leave(None)),
            [ch] => Ok(SlashCommand::Leave(Some(cx.channel(ch)?))),
            _ => Err(cx.usage("one channel at a time")),
        },
        "watch" => Ok(SlashCommand::Watch(cx.uids(&args)?)),
        "unwatch" => Ok(SlashCommand::Unwatch(cx.uids(&args)?)),
        "status" => Ok(SlashCommand::Status(cx.uids(&args)?)),
        "attr" => {
            let Some((verb, rest)) = args.split_first() else {
                return Err(cx.usage("say set, put, del, clear or get"));
            };
            if verb == "get" {
                let Some((uid, keys)) = rest.split_first() else {
                    return Err(cx.usage("say whose attributes"));
                };
                return Ok(SlashCommand::UserAttrGet {
                    uid: cx.uid(uid)?,
                    keys: (!keys.is_empty()).then(|| keys.to_vec()),
                });
            }
            match cx.write(verb, rest)? {
                Some(op) => Ok(SlashCommand::UserAttrWrite(op)),
                None => Err(cx.usage(format!("unknown operation {verb:?}"))),
            }
        }
        "cattr" => {
            let loud = args.iter().any(|a| a == "--notify");
            let quiet = args.iter().any(|a| a == "--quiet");
            if loud && quiet {
                return Err(cx.usage("--notify and --quiet contradict each other; give one"));
            }
            // The messenger tells the members by default: a change they are
            // not told of leaves their panes showing the old values.
            let notify = !quiet;
            let args: Vec<String> = args
                .into_iter()
                .filter(|a| a != "--notify" && a != "--quiet")
                .collect();
            let [verb, channel, rest @ ..] = args.as_slice() else {
                return Err(cx.usage("say the operation and the channel"));
            };
            let channel = cx.channel(channel)?;
            if verb == "get" {
                if loud || quiet {
                    return Err(cx.usage("--notify and --quiet go with writes, not get"));
                }
                return Ok(SlashCommand::ChannelAttrGet {
                    channel,
                    keys: (!rest.is_empty()).then(|| rest.to_vec()),
                });
            }
            match cx.write(verb, rest)? {
                Some(op) => Ok(SlashCommand::ChannelAttrWrite {
                    channel,
                    op,
                    notify,
                }),
                None => Err(cx.usage(format!("unknown operation {verb:?}"))),
            }
        }
        "help" => match args.as_slice() {
            [] => Ok(SlashCommand::Help(None)),
            [name] => {
                let name = name.strip_prefix('/').unwrap_or(name);
                spec(name)
                    .map(|s| SlashCommand::Help(Some(s)))
                    .ok_or_else(|| ParseError::Unknown(name.to_string()))
            }
            _ => Err(cx.usage("one command at a time")),
        },
        "quit" => Ok(SlashCommand::Quit),
        "members" | "attrs" => {
            if !args.is_empty() {
                return Err(cx.usage("it shows the open channel's; open another one first"));
            }
            Ok(if found.name == "members" {
                SlashCommand::Members
            } else {
                SlashCommand::Attrs
            })
        }
        "clear" => Ok(SlashCommand::Clear),
        "token" => match args.as_slice() {
            [token] => Ok(SlashCommand::Token(token.to_string())),
            [] => Err(cx.usage("give the new token")),
            _ => Err(cx.usage("one token")),
        },
        "search" => {
            let text = rest.trim();
            if text.is_empty() {
                return Err(cx.usage("say what to look for"));
            }
            Ok(SlashCommand::Search(text.to_string()))
        }
        "call" => match next_token(rest) {
            None => Ok(SlashCommand::Call {
                peer: None,
                content: String::new(),
            }),
            Some((peer, content)) => Ok(SlashCommand::Call {
                peer: Some(cx.uid(&peer)?),
                content: content.trim().to_string(),
            }),
        },
        "accept" | "refuse" => Ok(SlashCommand::Answer {
            accept: found.name == "accept",
            rest: rest.trim().to_string(),
        }),
        "cancel" => match args.as_slice() {
            [] => Ok(SlashCommand::Cancel(None)),
            [peer] => Ok(SlashCommand::Cancel(Some(cx.uid(peer)?))),
            _ => Err(cx.usage("one call at a time")),
        },
        "file" | "image" => match path_arg(rest) {
            Some(path) => Ok(SlashCommand::SendFile {
                path,
                image: found.name == "image",
            }),
            None => Err(cx.usage("say which file")),
        },
        "save" => Ok(SlashCommand::Save(path_arg(rest))),
        "mute" | "unmute" => {
            let target = match args.as_slice() {
                [] => None,
                [name] => Some(match name.strip_prefix('#') {
                    Some(c) => ConvId::Channel(cx.channel(c)?),
                    None => ConvId::Peer(cx.uid(name)?),
                }),
                _ => return Err(cx.usage("one conversation at a time")),
            };
            Ok(if found.name == "mute" {
                SlashCommand::Mute(target)
            } else {
                SlashCommand::Unmute(target)
            })
        }
        // Every name in COMMANDS has an arm above; a new row without one is a bug
        // that the `every_command_in_the_table_parses` test catches.
        other => Err(ParseError::Unknown(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(s: &str) -> Uid {
        Uid::new(s).unwrap()
    }

    #[test]
    fn tokens_respect_quotes() {
        assert_eq!(
            tokens(r#"a "b c" k="x y" "q\"q""#),
            vec!["a", "b c", "k=x y", "q\"q"]
        );
        assert_eq!(
            next_token("  bob   hello  world "),
            Some(("bob".into(), "   hello  world "))
        );
    }

    #[test]
    fn msg_keeps_the_text_as_typed() {
        assert_eq!(
            parse("/msg bob  hello   there").unwrap(),
            SlashCommand::Msg {
                peer: uid("bob"),
                text: "hello   there".into()
            }
        );
        assert_eq!(
            parse(r#"/msg "bob smith" hi"#).unwrap(),
            SlashCommand::Msg {
                peer: uid("bob smith"),
                text: "hi".into()
            }
        );
        let err = parse("/msg bob").unwrap_err().to_string();
        assert!(
            err.contains("text is missing") && err.contains("/msg <peer> <text>"),
            "{err}"
        );
    }

    #[test]
    fn attribute_commands() {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            parse("/attr set mood=happy city=\"New York\"").unwrap(),
            SlashCommand::UserAttrWrite(AttrWrite::Set(map(&[
                ("mood", "happy"),
                ("city", "New York")
            ])))
        );
        assert_eq!(
            parse("/attr get bob mood").unwrap(),
            SlashCommand::UserAttrGet {
                uid: uid("bob"),
                keys: Some(vec!["mood".into()])
            }
        );
        assert_eq!(
            parse("/cattr del #general topic --notify").unwrap(),
            SlashCommand::ChannelAttrWrite {
                channel: ChannelId::new("general").unwrap(),
                op: AttrWrite::Delete(vec!["topic".into()]),
                notify: true
            }
        );
        // Members are told by default; --quiet does not tell them.
        assert_eq!(
            parse("/cattr put general topic=x").unwrap(),
            SlashCommand::ChannelAttrWrite {
                channel: ChannelId::new("general").unwrap(),
                op: AttrWrite::Put(map(&[("topic", "x")])),
                notify: true
            }
        );
        assert_eq!(
            parse("/cattr clear general --quiet").unwrap(),
            SlashCommand::ChannelAttrWrite {
                channel: ChannelId::new("general").unwrap(),
                op: AttrWrite::Clear,
                notify: false
            }
        );
        let e = parse("/cattr put general a=b --quiet --notify")
            .unwrap_err()
            .to_string();
        assert!(e.contains("contradict"), "{e}");
        assert!(parse("/cattr get general --quiet").is_err());
        assert!(parse("/attr set novalue").is_err());
        assert!(parse("/attr frob x").is_err());
        assert!(parse("/cattr clear general extra").is_err());
    }

    #[test]
    fn every_command_in_the_table_parses() {
        let examples = [
            "/msg a b",
            "/join a",
            "/leave",
            "/watch a",
            "/unwatch a",
            "/status a",
            "/attr clear",
            "/cattr get a",
            "/help",
            "/quit",
            "/search x",
            "/token rtm1.a.b",
            "/mute #a",
            "/unmute bob",
            "/clear",
            "/members",
            "/attrs",
            "/call bob",
            "/accept",
            "/refuse",
            "/cancel",
            "/file x.pdf",
            "/image x.png",
            "/save",
        ];
        for spec in COMMANDS {
            let line = examples
                .iter()
                .find(|l| l[1..].split(' ').next() == Some(spec.name))
                .unwrap_or_else(|| panic!("no example for /{}", spec.name));
            assert!(parse(line).is_ok(), "{line}");
        }
    }

    #[test]
    fn file_commands_take_the_rest_of_the_line_as_the_path() {
        assert_eq!(
            parse("/file ~/docs/report 2026.pdf ").unwrap(),
            SlashCommand::SendFile {
                path: "~/docs/report 2026.pdf".into(),
                image: false
            }
        );
        assert_eq!(
            parse(r#"/image "my cat.png""#).unwrap(),
            SlashCommand::SendFile {
                path: "my cat.png".into(),
                image: true
            }
        );
        let e = parse("/file").unwrap_err().to_string();
        assert_eq!(e, "/file: say which file. Usage: /file <path>");
        assert_eq!(parse("/save").unwrap(), SlashCommand::Save(None));
        assert_eq!(
            parse("/save ~/Desktop").unwrap(),
            SlashCommand::Save(Some("~/Desktop".into()))
        );
    }

    #[test]
    fn call_commands() {
        assert_eq!(
            parse("/call").unwrap(),
            SlashCommand::Call {
                peer: None,
                content: String::new()
            }
        );
        assert_eq!(
            parse("/call bob  lunch? at  noon ").unwrap(),
            SlashCommand::Call {
                peer: Some(uid("bob")),
                content: "lunch? at  noon".into()
            }
        );
        assert_eq!(
            parse(r#"/call "bob smith""#).unwrap(),
            SlashCommand::Call {
                peer: Some(uid("bob smith")),
                content: String::new()
            }
        );
        let e = parse("/call a*b hi").unwrap_err().to_string();
        assert!(e.starts_with("/call:"), "{e}");
        assert_eq!(
            parse("/accept  alice sure ").unwrap(),
            SlashCommand::Answer {
                accept: true,
                rest: "alice sure".into()
            }
        );
        assert_eq!(
            parse("/refuse").unwrap(),
            SlashCommand::Answer {
                accept: false,
                rest: String::new()
            }
        );
        assert_eq!(parse("/cancel").unwrap(), SlashCommand::Cancel(None));
        assert_eq!(
            parse("/cancel bob").unwrap(),
            SlashCommand::Cancel(Some(uid("bob")))
        );
        let e = parse("/cancel bob carol").unwrap_err().to_string();
        assert!(e.contains("one call at a time"), "{e}");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse("/frob x").unwrap_err().to_string();
        assert!(e.contains("/frob"), "{e}");
        let e = parse("/join a*b").unwrap_err().to_string();
        assert!(e.contains("'*'") && e.contains("position 2"), "{e}");
        assert_eq!(
            parse("/help join").unwrap(),
            SlashCommand::Help(spec("join"))
        );
        assert_eq!(
            parse("/mute #random").unwrap(),
            SlashCommand::Mute(Some(ConvId::Channel(ChannelId::new("random").unwrap())))
        );
        assert_eq!(parse("/unmute").unwrap(), SlashCommand::Unmute(None));
        assert!(parse("/search").is_err());
        assert_eq!(
            parse("/search  a b ").unwrap(),
            SlashCommand::Search("a b".into())
        );
    }
}
