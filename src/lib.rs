//! # rtm — self-hosted real-time messaging
//!
//! One crate, three parts, dependencies pointing one way
//! (`protocol` ← `server`; `protocol` ← `client` ← `tui`):
//!
//! - [`protocol`]: the wire contract — frames (serde), identifier and size
//!   validation, error kinds. Pure data, no IO. A new request or event starts
//!   here (and in `docs/PROTOCOL.md`).
//! - [`server`]: `rtm serve` — listener, one task per connection, the hub
//!   (sessions, channels, presence, attributes), rate limits, and the
//!   [`server::Store`] boundary for what outlives a restart (channel
//!   attributes, offline messages), with the SQLite back end in
//!   `server::sqlite`. A new server-side behaviour goes into the hub and is
//!   wired up in `server::conn::handle_request`; a new back end (Redis for
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
//! - [`config`] and [`logging`]: settings (embedded defaults ← user file ←
//!   env ← flags) and the log file.

pub mod bench;
pub mod client;
pub mod config;
pub mod logging;
pub mod protocol;
pub mod server;
pub mod token;
pub mod tui;
