//! File and image messages on the wire (spec §9, PROTOCOL.md §16): the
//! limits, media ids, and the frames of the separate transfer connection
//! (`ws://host:port/media`) that carries the bytes.
//!
//! The chat connection only asks for a one-time *ticket*
//! ([`Request::RequestMediaUpload`](super::Request::RequestMediaUpload),
//! [`Request::RequestMediaDownload`](super::Request::RequestMediaDownload));
//! the bytes then flow over a second WebSocket opened with that ticket, so
//! a 32 MB upload never queues in front of the same user's chat messages.

use serde::{Deserialize, Serialize};

use super::{ErrorBody, ErrorKind};

/// Largest file or image, 32 MiB (33 554 432 bytes); larger is refused with
/// `SIZE_OVERFLOW` before anything is sent.
pub const MAX_MEDIA_BYTES: u64 = 32 * 1024 * 1024;
/// Most bytes of a FILE or IMAGE message's own fields: file name +
/// description + thumbnail, 32 768 bytes (the message limit). Larger is
/// `INVALID_MESSAGE`.
pub const MAX_MEDIA_META_BYTES: usize = 32 * 1024;
/// Longest file name, in bytes (the rest of the 32 KB can go to the
/// description and thumbnail).
pub const MAX_MEDIA_FILE_NAME_BYTES: usize = 255;
/// Most transfers (uploads and downloads together) one user may run at
/// once, as in the reference; one more is `CONCURRENCY_LIMIT_EXCEEDED`.
pub const MAX_CONCURRENT_TRANSFERS: usize = 9;
/// Largest binary frame on a transfer connection, 256 KiB: the chunk size.
pub const MEDIA_CHUNK_BYTES: usize = 256 * 1024;
/// The path of the transfer endpoint on the server's listener.
pub const MEDIA_PATH: &str = "/media";

/// Whether a media message is a file or an image (the model's `FILE` and
/// `IMAGE` message types).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MediaType {
    /// Any file, shown with its name and size.
    #[default]
    File,
    /// A picture, with its width, height and an optional thumbnail.
    Image,
}

/// `len` lowercase hex digits.
fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a media id: 32 lowercase hex digits, as the server makes them.
/// Anything else is `INVALID_ARGUMENT` (the reference's "mediaId is in the
/// wrong format").
pub fn check_media_id(id: &str) -> Result<(), ErrorBody> {
    if is_lower_hex(id, 32) {
        Ok(())
    } else {
        Err(ErrorBody::new(
            ErrorKind::InvalidArgument,
            format!("{id:?} is not a media id (32 lowercase hex digits); copy it from the message"),
        ))
    }
}

/// Checks a SHA-256 in hex: 64 lowercase hex digits.
pub fn check_sha256_hex(hash: &str) -> Result<(), ErrorBody> {
    if is_lower_hex(hash, 64) {
        Ok(())
    } else {
        Err(ErrorBody::new(
            ErrorKind::InvalidArgument,
            "sha256 must be 64 lowercase hex digits (the SHA-256 of the whole file)",
        ))
    }
}

/// Checks the size of a file to upload.
pub fn check_media_size(size: u64) -> Result<(), ErrorBody> {
    if size > MAX_MEDIA_BYTES {
        return Err(ErrorBody::new(
            ErrorKind::SizeOverflow,
            format!(
                "the file is {size} bytes; the limit is {MAX_MEDIA_BYTES} bytes (32 MB). Compress \
                 or split it"
            ),
        ));
    }
    Ok(())
}

/// Checks a file name: 1 to [`MAX_MEDIA_FILE_NAME_BYTES`] bytes, no path
/// separators or control characters (a receiver saves under this name).
pub fn check_file_name(name: &str) -> Result<(), ErrorBody> {
    let bad = |why: &str| {
        Err(ErrorBody::new(
            ErrorKind::InvalidArgument,
            format!("file name {name:?} {why}"),
        ))
    };
    if name.is_empty() {
        return bad("is empty; give the file a name");
    }
    if name.len() > MAX_MEDIA_FILE_NAME_BYTES {
        return bad(&format!(
            "is {} bytes; the limit is {MAX_MEDIA_FILE_NAME_BYTES}",
            name.len()
        ));
    }
    if name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        return bad("holds a path separator or control character; use a plain name");
    }
    Ok(())
}

/// The first frame on a transfer connection, from the client:
/// `{"ticket":"…"}` (PROTOCOL.md §16.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaHello {
    /// The ticket from `media_upload_ticket` or `media_download_ticket`.
    pub ticket: String,
}

/// What the server says on a transfer connection (text frames; the bytes
/// themselves are binary frames). PROTOCOL.md §16.3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MediaServerFrame {
    /// The ticket is good: an upload sends binary frames from `offset`;
    /// a download receives them from `offset`.
    Ready {
        /// Where the bytes start (after a resumed upload, what the server
        /// already has; for a download, the offset asked for).
        offset: u64,
        /// The whole file's size.
        size: u64,
    },
    /// The transfer is complete (an upload: stored and its hash checked).
    Done {
        /// The media id.
        media_id: String,
        /// The whole file's size.
        size: u64,
    },
    /// The transfer failed; the connection closes after this.
    Error {
        /// What went wrong: `{code, kind, message}`.
        error: ErrorBody,
    },
}

impl MediaServerFrame {
    /// The frame as one line of JSON.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_hashes_sizes_and_names_are_checked() {
        assert!(check_media_id("0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_media_id("0123456789ABCDEF0123456789abcdef").is_err());
        assert!(check_media_id("../etc/passwd").is_err());
        assert!(check_media_id("").is_err());
        assert!(check_sha256_hex(&"a".repeat(64)).is_ok());
        assert!(check_sha256_hex(&"a".repeat(63)).is_err());
        assert!(check_media_size(MAX_MEDIA_BYTES).is_ok());
        let e = check_media_size(MAX_MEDIA_BYTES + 1).unwrap_err();
        assert_eq!(e.kind, ErrorKind::SizeOverflow);
        assert!(e.message.contains("33554433"));
        assert!(check_file_name("report.pdf").is_ok());
        for bad in ["", "a/b", "..", "a\\b", "x\ny"] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name(&"n".repeat(256)).is_err());
    }

    #[test]
    fn transfer_frames_have_their_documented_shape() {
        let ready = MediaServerFrame::Ready {
            offset: 0,
            size: 10,
        };
        assert_eq!(ready.encode(), r#"{"type":"ready","offset":0,"size":10}"#);
        let hello: MediaHello = serde_json::from_str(r#"{"ticket":"abc"}"#).unwrap();
        assert_eq!(hello.ticket, "abc");
    }
}
