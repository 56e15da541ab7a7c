//! # rtm — self-hosted real-time messaging
//!
//! One crate, three parts, dependencies pointing one way
//! (`protocol` ← `server`; `protocol` ← `client` ← `tui`):
//!
//! - [`protocol`]: the wire contract — frames (serde), identifier and size
//!   validation, error kinds. Pure data, no IO. A new request or event starts
//!   here (and in `docs/PROTOCOL.md`).
//! - [`server`]: `rtm serve` — listener, one task per connection, the hub
//!   (sessions, channels, presence, attributes), rate limits, the store
//!   boundary. A new server-side behaviour goes into the hub and is wired up in
//!   `server::conn::handle_request`.
//! - [`client`]: the SDK — [`client::RtmClient`], [`client::RtmChannel`]; one
//!   connection task with reconnection, requests matched to replies by id with
//!   timeouts, events as a stream. No UI types.
//! - [`tui`]: `rtm chat` — the full-screen messenger: pure `App::update`,
//!   pure rendering, one event loop, the terminal guard.
//! - [`token`]: login tokens (HMAC-SHA256, bound to a uid, expiring);
//!   `rtm token` and app servers mint them, the server verifies them.
//! - [`bench`]: `rtm bench` — the load generator (scenarios, histograms).
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
