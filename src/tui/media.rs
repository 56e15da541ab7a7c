//! Files and images in the messenger: what a FILE or IMAGE message shows
//! ([`Media`], its half-block [`Preview`]), the words for sizes and
//! progress, where `/save` puts a file without overwriting anything, and
//! what `/file` and `/image` check and make before an upload (the
//! thumbnail). The app stays pure: the executor calls the functions that
//! touch the disk ([`prepare_upload`], [`reserve_destination`]).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

use crate::client::{MAX_MEDIA_BYTES, MAX_MEDIA_META_BYTES, MediaType, RtmMessage};

/// Rows a picture's preview takes in the conversation: a few, so a picture
/// does not push the talk off the screen (half-blocks: 2 pixels a row).
pub const PREVIEW_ROWS: u16 = 8;
/// Most columns a preview takes.
pub const PREVIEW_MAX_COLS: u16 = 48;
/// The longest side of the thumbnail sent with a picture, in pixels.
pub const THUMBNAIL_PX: u32 = 160;

/// A picture decoded for its preview, once, when its message is shown:
/// the colour of the upper and lower half of every cell (`▀` with the
/// upper as foreground and the lower as background), row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub cols: u16,
    pub rows: u16,
    pub cells: Vec<([u8; 3], [u8; 3])>,
}

/// Decodes a picture of at most `max_side` × `max_side` pixels and 64 MiB
/// decoded: a thumbnail is under 32 KB, but its header could claim a
/// gigapixel (a decompression bomb); such a picture shows no preview.
fn decode_limited(bytes: &[u8], max_side: u32) -> Result<DynamicImage, String> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    limits.max_alloc = Some(64 * 1024 * 1024);
    reader.limits(limits);
    reader.decode().map_err(|e| e.to_string())
}

/// Decodes a thumbnail for the graphics-protocol preview (kitty, sixel,
/// iTerm2); `None` when it is not a picture.
pub fn decode_thumbnail(bytes: &[u8]) -> Option<DynamicImage> {
    decode_limited(bytes, 4096).ok()
}

impl Preview {
    /// The preview of a thumbnail (PNG or JPEG bytes), fitted in
    /// [`PREVIEW_MAX_COLS`] × [`PREVIEW_ROWS`] cells; `None` when the bytes
    /// are not a picture.
    pub fn from_thumbnail(bytes: &[u8]) -> Option<Preview> {
        if bytes.is_empty() {
            return None;
        }
        let img = decode_thumbnail(bytes)?;
        let (w, h) = (img.width().max(1), img.height().max(1));
        let (cols, rows) = preview_cells(w, h);
        // A cell is about twice as high as wide, so a cell holds two pixels
        // stacked: the picture is resized to cols × 2·rows pixels.
        let small = img
            .resize_exact(
                u32::from(cols),
                u32::from(rows) * 2,
                image::imageops::FilterType::Triangle,
            )
            .to_rgb8();
        let mut cells = Vec::with_capacity(usize::from(cols) * usize::from(rows));
        for r in 0..u32::from(rows) {
            for c in 0..u32::from(cols) {
                let top = small.get_pixel(c, r * 2).0;
                let bottom = small.get_pixel(c, r * 2 + 1).0;
                cells.push((top, bottom));
            }
        }
        Some(Preview { cols, rows, cells })
    }
}

/// The cells a `w` × `h` picture's preview takes: [`PREVIEW_ROWS`] high
/// (fewer for a wide one) and as wide as its shape asks, at most
/// [`PREVIEW_MAX_COLS`].
pub fn preview_cells(w: u32, h: u32) -> (u16, u16) {
    let (w, h) = (f64::from(w.max(1)), f64::from(h.max(1)));
    let px_rows = f64::from(PREVIEW_ROWS) * 2.0;
    let cols = (px_rows * w / h)
        .round()
        .clamp(1.0, f64::from(PREVIEW_MAX_COLS));
    let rows = ((cols * h / w) / 2.0)
        .round()
        .clamp(1.0, f64::from(PREVIEW_ROWS));
    (cols as u16, rows as u16)
}

/// What a FILE or IMAGE message says, as a conversation keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: MediaType,
    pub media_id: String,
    pub file_name: String,
    pub size: u64,
    pub description: String,
    /// An image's size in pixels (0 when unknown).
    pub width: u32,
    pub height: u32,
    /// The thumbnail as sent (PNG or JPEG), kept to send again and to
    /// draw with the terminal's graphics.
    pub thumbnail: Vec<u8>,
    pub thumbnail_width: u32,
    pub thumbnail_height: u32,
    /// The thumbnail decoded for the half-block preview (once).
    pub preview: Option<Preview>,
}

impl Media {
    /// The media of a FILE or IMAGE message (its thumbnail decoded);
    /// `None` for other messages.
    pub fn from_message(message: &RtmMessage) -> Option<Media> {
        let media = match message {
            RtmMessage::File {
                media_id,
                size,
                file_name,
                description,
                thumbnail,
            } => Media {
                kind: MediaType::File,
                media_id: media_id.clone(),
                file_name: file_name.clone(),
                size: *size,
                description: description.clone(),
                width: 0,
                height: 0,
                thumbnail: thumbnail.clone(),
                thumbnail_width: 0,
                thumbnail_height: 0,
                preview: None,
            },
            RtmMessage::Image {
                media_id,
                size,
                file_name,
                description,
                thumbnail,
                width,
                height,
                thumbnail_width,
                thumbnail_height,
            } => Media {
                kind: MediaType::Image,
                media_id: media_id.clone(),
                file_name: file_name.clone(),
                size: *size,
                description: description.clone(),
                width: *width,
                height: *height,
                thumbnail: thumbnail.clone(),
                thumbnail_width: *thumbnail_width,
                thumbnail_height: *thumbnail_height,
                preview: Preview::from_thumbnail(thumbnail),
            },
            _ => return None,
        };
        Some(media)
    }

    /// The message that carries this media (to send it again).
    pub fn to_message(&self) -> RtmMessage {
        match self.kind {
            MediaType::File => RtmMessage::File {
                media_id: self.media_id.clone(),
                size: self.size,
                file_name: self.file_name.clone(),
                description: self.description.clone(),
                thumbnail: self.thumbnail.clone(),
            },
            MediaType::Image => RtmMessage::Image {
                media_id: self.media_id.clone(),
                size: self.size,
                file_name: self.file_name.clone(),
                description: self.description.clone(),
                thumbnail: self.thumbnail.clone(),
                width: self.width,
                height: self.height,
                thumbnail_width: self.thumbnail_width,
                thumbnail_height: self.thumbnail_height,
            },
        }
    }

    pub fn is_image(&self) -> bool {
        self.kind == MediaType::Image
    }

    /// The line's text without the sender: "report.pdf · 2.6 MB", with
    /// an image's pixels and the description. Searches and notifications
    /// read it too.
    pub fn summary(&self) -> String {
        let mut s = format!("{} · {}", self.file_name, human_size(self.size));
        if self.is_image() && self.width > 0 && self.height > 0 {
            s.push_str(&format!(" · {}×{}", self.width, self.height));
        }
        if !self.description.is_empty() {
            s.push_str(&format!(" — {}", self.description));
        }
        s
    }
}

/// A size in words: "512 bytes", "12.5 KB", "340 KB", "2.6 MB" (1 KB = 1024 bytes).
pub fn human_size(n: u64) -> String {
    const KB: f64 = 1024.0;
    let f = n as f64;
    let (v, unit) = if n < 1024 {
        return if n == 1 {
            "1 byte".into()
        } else {
            format!("{n} bytes")
        };
    } else if f < KB * KB {
        (f / KB, "KB")
    } else if f < KB * KB * KB {
        (f / KB / KB, "MB")
    } else {
        (f / KB / KB / KB, "GB")
    };
    if v < 100.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

/// A progress bar of `width` cells: `█` done, `░` to go.
pub fn bar(current: u64, total: u64, width: usize) -> String {
    let done = if total == 0 {
        0
    } else {
        ((current.min(total) as u128 * width as u128) / total as u128) as usize
    };
    format!("{}{}", "█".repeat(done), "░".repeat(width - done))
}

/// Percent done, 0–100 (100 only when done).
pub fn percent(current: u64, total: u64) -> u64 {
    if total == 0 {
        return 0;
    }
    let p = (current.min(total) as u128 * 100 / total as u128) as u64;
    if current < total { p.min(99) } else { 100 }
}

/// A typed path: `~` and `~/…` are the home directory; anything else is
/// taken as typed (a relative path is relative to the directory the
/// messenger was started in).
pub fn expand_path(typed: &str, home: Option<&Path>) -> PathBuf {
    match (typed, home) {
        ("~", Some(h)) => h.to_path_buf(),
        (t, Some(h)) if t.starts_with("~/") => h.join(&t[2..]),
        (t, _) => PathBuf::from(t),
    }
}

/// A name safe to create in a directory: a received file name is checked
/// by the server (no separators), but a save never trusts it.
fn safe_name(name: &str) -> String {
    match Path::new(name).file_name().and_then(|n| n.to_str()) {
        Some(n) if !n.is_empty() && n != "." && n != ".." => n.to_string(),
        _ => "file".to_string(),
    }
}

/// Where `/save` writes `file_name`: into `default_dir` without a
/// destination; inside a destination that is a directory (or ends with
/// `/`); else the destination itself. Then, when that path is taken, the
/// first free of "name (1).ext", "name (2).ext", … — nothing is ever
/// overwritten silently.
pub fn destination(
    dest: Option<&Path>,
    default_dir: &Path,
    file_name: &str,
    is_dir: impl Fn(&Path) -> bool,
    exists: impl Fn(&Path) -> bool,
) -> PathBuf {
    let name = safe_name(file_name);
    let path = match dest {
        None => default_dir.join(&name),
        Some(d) if is_dir(d) || d.as_os_str().to_string_lossy().ends_with('/') => d.join(&name),
        Some(f) => f.to_path_buf(),
    };
    unique_path(&path, exists)
}

/// `path` if free, else the first free "stem (n).ext" next to it.
pub fn unique_path(path: &Path, exists: impl Fn(&Path) -> bool) -> PathBuf {
    if !exists(path) {
        return path.to_path_buf();
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "file".into());
    // "archive.tar.gz" → "archive (1).tar.gz"; ".bashrc" → ".bashrc (1)".
    let split = name
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '.')
        .map_or(name.len(), |(i, _)| i);
    let (stem, ext) = name.split_at(split);
    let dir = path.parent().unwrap_or(Path::new(""));
    (1u32..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| !exists(p))
        .unwrap_or_else(|| path.to_path_buf())
}

/// Takes the destination of a download on disk: creates it empty, failing
/// if someone else made it meanwhile (then the next free name is tried), so
/// two saves at once never write the same file. The download's `.part`
/// file is renamed over it at the end.
pub fn reserve_destination(
    dest: Option<&Path>,
    default_dir: &Path,
    file_name: &str,
) -> Result<PathBuf, String> {
    if dest.is_none() {
        std::fs::create_dir_all(default_dir)
            .map_err(|e| format!("cannot create {}: {e}", default_dir.display()))?;
    }
    for _ in 0..100 {
        let path = destination(dest, default_dir, file_name, Path::is_dir, |p| {
            p.exists() || Path::new(&format!("{}.part", p.display())).exists()
        });
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = path.parent().unwrap_or(Path::new("."));
                return Err(format!("cannot save there: no folder {}", dir.display()));
            }
            Err(e) => return Err(format!("cannot save to {}: {e}", path.display())),
        }
    }
    Err("cannot find a free file name to save to".into())
}

/// A thumbnail made for a picture being sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// What an upload needs that the disk tells: the file's size, and for a
/// picture its dimensions and thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedUpload {
    pub size: u64,
    pub file_name: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub thumbnail: Option<Thumbnail>,
}

/// Checks a file before it is sent, in words for people: it exists, is a
/// file, is at most 32 MiB, and for `/image` is a PNG, JPEG, GIF or BMP;
/// makes a picture's thumbnail. `typed` is the path as the user typed it
/// (for the messages). Blocking: the executor runs it off the async workers.
pub fn prepare_upload(path: &Path, typed: &str, image: bool) -> Result<PreparedUpload, String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("no such file: {typed}"),
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot read {typed}: permission denied")
        }
        _ => format!("cannot read {typed}: {e}"),
    })?;
    if meta.is_dir() {
        return Err(format!(
            "{typed} is a folder; send one file at a time (zip a folder first)"
        ));
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "file".into());
    let size = meta.len();
    if size > MAX_MEDIA_BYTES {
        // In bytes too: just over the limit reads "32.0 MB" in words.
        return Err(format!(
            "{file_name} is {} ({size} bytes); files can be at most 32 MiB ({MAX_MEDIA_BYTES} \
             bytes)",
            human_size(size)
        ));
    }
    let mut prepared = PreparedUpload {
        size,
        file_name: file_name.clone(),
        width: None,
        height: None,
        thumbnail: None,
    };
    if !image {
        return Ok(prepared);
    }
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| format!("cannot read {typed}: {e}"))?;
    let format = image::guess_format(&head[..n]).ok();
    if !matches!(
        format,
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::Bmp)
    ) {
        return Err(format!(
            "{file_name} is not a picture (PNG, JPEG, GIF or BMP); send it with /file"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {typed}: {e}"))?;
    // A picture too large to decode here (over 16384 px a side or 512 MiB
    // of pixels) is still sent, without a thumbnail.
    let mut reader = ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read {typed}: {e}"))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    match reader.decode() {
        Ok(img) => {
            prepared.width = Some(img.width());
            prepared.height = Some(img.height());
            let budget = MAX_MEDIA_META_BYTES.saturating_sub(file_name.len());
            prepared.thumbnail = make_thumbnail(&img, budget);
        }
        Err(image::ImageError::Limits(_)) => {}
        Err(e) => return Err(format!("cannot read {file_name} as a picture: {e}")),
    }
    Ok(prepared)
}

/// A thumbnail of at most [`THUMBNAIL_PX`] a side in `budget` bytes: PNG
/// when it fits (sharp for drawings and screenshots), else JPEG at falling
/// quality, else smaller; `None` when nothing fits.
pub fn make_thumbnail(img: &DynamicImage, budget: usize) -> Option<Thumbnail> {
    let mut side = THUMBNAIL_PX;
    while side >= 32 {
        let small = img.thumbnail(side, side);
        let (width, height) = (small.width(), small.height());
        let mut png = Vec::new();
        if small
            .to_rgba8()
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .is_ok()
            && png.len() <= budget
        {
            return Some(Thumbnail {
                bytes: png,
                width,
                height,
            });
        }
        let rgb = small.to_rgb8();
        for quality in [85u8, 70, 50] {
            let mut jpeg = Vec::new();
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality);
            if rgb.write_with_encoder(encoder).is_ok() && jpeg.len() <= budget {
                return Some(Thumbnail {
                    bytes: jpeg,
                    width,
                    height,
                });
            }
        }
        side /= 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn sizes_read_as_words() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(12_800), "12.5 KB");
        assert_eq!(human_size(340 * 1024), "340 KB");
        assert_eq!(human_size(2_726_298), "2.6 MB");
        assert_eq!(human_size(MAX_MEDIA_BYTES), "32.0 MB");
        assert_eq!(bar(1, 4, 8), "██░░░░░░");
        assert_eq!(bar(0, 0, 3), "░░░");
        assert_eq!(percent(999, 1000), 99);
        assert_eq!(percent(1000, 1000), 100);
    }

    #[test]
    fn paths_expand_the_home_directory_only() {
        let home = Path::new("/home/ann");
        assert_eq!(expand_path("~", Some(home)), PathBuf::from("/home/ann"));
        assert_eq!(
            expand_path("~/docs/a b.pdf", Some(home)),
            PathBuf::from("/home/ann/docs/a b.pdf")
        );
        assert_eq!(expand_path("~bob/x", Some(home)), PathBuf::from("~bob/x"));
        assert_eq!(expand_path("rel/x", Some(home)), PathBuf::from("rel/x"));
        assert_eq!(expand_path("~/x", None), PathBuf::from("~/x"));
    }

    #[test]
    fn destinations_never_overwrite() {
        let taken: BTreeSet<PathBuf> = ["/dl/report.pdf", "/dl/report (1).pdf", "/dl/.bashrc"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let exists = |p: &Path| taken.contains(p);
        let dirs = |p: &Path| p == Path::new("/dl") || p == Path::new("/other");
        let dl = Path::new("/dl");
        assert_eq!(
            destination(None, dl, "report.pdf", dirs, exists),
            PathBuf::from("/dl/report (2).pdf")
        );
        assert_eq!(
            destination(None, dl, "new.pdf", dirs, exists),
            PathBuf::from("/dl/new.pdf")
        );
        assert_eq!(
            destination(Some(Path::new("/other")), dl, "report.pdf", dirs, exists),
            PathBuf::from("/other/report.pdf")
        );
        assert_eq!(
            destination(Some(Path::new("/dl/x.pdf")), dl, "report.pdf", dirs, exists),
            PathBuf::from("/dl/x.pdf")
        );
        assert_eq!(
            destination(Some(Path::new("/dl")), dl, ".bashrc", dirs, exists),
            PathBuf::from("/dl/.bashrc (1)")
        );
        assert_eq!(
            destination(None, dl, "../../etc/passwd", dirs, exists),
            PathBuf::from("/dl/passwd")
        );
        assert_eq!(
            unique_path(Path::new("/dl/archive.tar.gz"), |p| p
                == Path::new("/dl/archive.tar.gz")),
            PathBuf::from("/dl/archive (1).tar.gz")
        );
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rtm-media-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A gradient picture, `w` × `h`, as PNG bytes.
    pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        });
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn uploads_are_checked_in_words_and_pictures_get_a_small_thumbnail() {
        let d = temp_dir("upload");
        let e = prepare_upload(&d.join("nope.pdf"), "nope.pdf", false).unwrap_err();
        assert_eq!(e, "no such file: nope.pdf");
        let e = prepare_upload(&d, "docs", false).unwrap_err();
        assert!(e.contains("docs is a folder"), "{e}");
        let big = d.join("big.bin");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_MEDIA_BYTES + 1).unwrap();
        let e = prepare_upload(&big, "big.bin", false).unwrap_err();
        assert_eq!(
            e,
            "big.bin is 32.0 MB (33554433 bytes); files can be at most 32 MiB (33554432 bytes)"
        );
        let text = d.join("notes.txt");
        std::fs::write(&text, "hello").unwrap();
        assert_eq!(prepare_upload(&text, "notes.txt", false).unwrap().size, 5);
        let e = prepare_upload(&text, "notes.txt", true).unwrap_err();
        assert!(e.contains("notes.txt is not a picture"), "{e}");
        let pic = d.join("pic.png");
        std::fs::write(&pic, png(1200, 600)).unwrap();
        let p = prepare_upload(&pic, "pic.png", true).unwrap();
        assert_eq!((p.width, p.height), (Some(1200), Some(600)));
        let t = p.thumbnail.expect("a thumbnail");
        assert_eq!((t.width, t.height), (160, 80));
        assert!(t.bytes.len() <= MAX_MEDIA_META_BYTES - "pic.png".len());
        let preview = Preview::from_thumbnail(&t.bytes).unwrap();
        assert_eq!((preview.cols, preview.rows), (32, 8));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_noisy_picture_still_gets_a_thumbnail_within_the_budget() {
        let mut seed = 7u32;
        let img = image::RgbImage::from_fn(400, 400, |_, _| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let b = seed.to_le_bytes();
            image::Rgb([b[1], b[2], b[3]])
        });
        let t = make_thumbnail(&DynamicImage::ImageRgb8(img), 8 * 1024).unwrap();
        assert!(t.bytes.len() <= 8 * 1024, "{}", t.bytes.len());
        assert!(Preview::from_thumbnail(b"not a picture").is_none());
    }

    #[test]
    fn previews_keep_the_shape_within_a_few_rows() {
        assert_eq!(preview_cells(100, 100), (16, 8));
        assert_eq!(preview_cells(1000, 100), (48, 2));
        assert_eq!(preview_cells(100, 1000), (2, 8));
        assert_eq!(preview_cells(0, 0), (16, 8));
    }
}
