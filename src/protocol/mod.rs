//! The wire contract shared by server and SDK: frames, identifiers, limits and
//! error kinds. Pure data and validation: no IO, no async, no UI.

mod compact;
mod error;
mod frames;
mod ids;
mod invitation;
pub mod limits;
mod media;

pub use compact::encode_compact_event;
pub use error::{CallFamily, ErrorBody, ErrorKind};
pub use frames::*;
pub use ids::{ChannelId, ID_PUNCTUATION, IdError, MAX_ID_BYTES, Uid, validate_id};
pub use invitation::*;
pub use limits::*;
pub use media::*;
