//! # rtm — self-hosted real-time messaging
//!
//! One crate, three parts, dependencies pointing one way
//! (`protocol` ← `client` ← `tui`; `protocol` ← `server` ← `tui`, the
//! messenger using the server only to embed one):
//!
//! - [`protocol`]: the wire contract — frames (serde), identifier and size
//!   validation, error kinds. Pure data, no IO. A new request or event starts
//!   here (and in `docs/PROTOCOL.md`).
//! - [`server`]: `rtm serve` — listener, one task per connection, the hub
//!   (sessions, channels, presence, attributes), rate limits, and the
//!   [`server::Store`] boundary for what outlives a restart (channel
//!   attributes, offline messages), with the SQLite back end in
//!   `server::sqlite`. Its settings and their one source of defaults (the
//!   shipped `config/server.toml`) are `server::config`; everything that goes
//!   on the wire or expires reads the injectable wall clock of
//!   `server::clock`. A new server-side behaviour goes into the hub and is
//!   wired up in `server::requests::handle_request`; a new back end (Redis for
//!   cluster mode) implements `Store`.
//! - [`client`]: the SDK — [`client::RtmClient`], [`client::RtmChannel`]; one
//!   connection task with reconnection, requests matched to replies by id with
//!   timeouts, events as a stream. No UI types.
//! - [`tui`]: `rtm chat` — the full-screen messenger: pure `App::update`,
//!   pure rendering, one event loop, the terminal guard; keymap, commands,
//!   themes, notifications and the local history (`tui::history`).
//! - [`token`]: login tokens (HMAC-SHA256, bound to a uid, expiring);
//!   `rtm token` and app servers mint them, the server verifies them.
//! - [`bench`]: `rtm bench` — the load generator (scenarios, pacing,
//!   histograms, worker processes) and the adapters for the reference servers.
//! - [`config`] and [`logging`]: the file locations, the messenger's settings
//!   (embedded defaults ← user file ← env ← flags), and the log file.
//!
//! ## Features: the layers, held by the compiler
//!
//! | feature  | modules                         | for                                   |
//! |----------|---------------------------------|---------------------------------------|
//! | (none)   | `protocol`, `token`             | the wire contract; minting tokens     |
//! | `client` | + `client`                      | the SDK alone (no ratatui, crossterm, rusqlite, clap) |
//! | `server` | + `server`, `config`            | embedding the server                  |
//! | `tui`    | + `tui` (needs client + server) | the messenger and its embedded server |
//! | `bench`  | + `bench`                       | `rtm bench`                           |
//! | `cli`    | + `logging`; the `rtm` binary   | `rtm serve`, `rtm token`; `chat` and `bench` with their features |
//!
//! `default` is all of them. A program that wants only the SDK depends on
//! `rtm = { default-features = false, features = ["client"] }`. CI builds and
//! lints each set alone, so an import that crosses a layer stops compiling.
//! The binary's own glue (`rtm chat` finding or embedding a server) lives in
//! `src/main.rs` and `src/cli/`.

// Always built: the wire contract and tokens, pure data with no IO.
#[deny(missing_docs)]
pub mod protocol;
#[deny(missing_docs)]
pub mod token;

#[cfg(feature = "client")]
#[deny(missing_docs)]
pub mod client;

// File transfers of the server and the SDK give way to chat.
#[cfg(any(feature = "client", feature = "server"))]
mod lowprio;

#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "tui")]
pub mod tui;

#[cfg(feature = "bench")]
pub mod bench;

#[cfg(feature = "cli")]
pub mod logging;
