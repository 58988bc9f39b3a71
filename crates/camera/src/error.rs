//! The crate's error type.

use std::path::PathBuf;

use crate::mjpeg::multipart::MultipartError;

/// Everything that can go wrong while capturing, encoding, serving or
/// reading camera frames. Each message names the file, device, program or
/// URL at fault and says what to do.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum CameraError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Bytes that should have been an image could not be decoded.
    #[error("cannot decode {what} as {format}: {reason}")]
    Decode {
        /// What was being decoded (a file name, "frame 12 from http://...").
        what: String,
        /// "JPEG" or "PNG".
        format: &'static str,
        /// The decoder's explanation.
        reason: String,
    },
    /// An image could not be encoded as JPEG (bad dimensions, usually).
    #[error("cannot encode a {width}x{height} image as JPEG: {reason}")]
    Encode {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The encoder's explanation.
        reason: String,
    },
    /// A folder given as a frame source holds no usable images.
    #[error("no .jpg, .jpeg or .png images in {dir}: put some there or point the image folder source elsewhere")]
    NoImages { dir: PathBuf },
    /// A helper program (ffmpeg, rpicam-vid) could not be started.
    #[error("cannot start `{program}`: {source}; is it installed and on PATH? ({hint})")]
    Spawn {
        program: String,
        /// Why the start failed.
        source: std::io::Error,
        /// How to install it.
        hint: &'static str,
    },
    /// A source has no more frames (a video file ended, a helper exited).
    #[error("{source_name} has no more frames: {reason}")]
    EndOfStream {
        /// The source (file, program, URL).
        source_name: String,
        /// Why it ended (exit status, stderr tail, "end of file").
        reason: String,
    },
    /// A byte stream that should carry JPEG frames was corrupt.
    #[error("corrupt JPEG stream from {source_name}: {reason}")]
    CorruptStream {
        /// The source (program or device).
        source_name: String,
        reason: String,
    },
    /// A camera device failed (V4L2).
    #[error("camera device {device}: {reason}")]
    Device {
        /// The device path, e.g. /dev/video0.
        device: String,
        /// What failed and what to check.
        reason: String,
    },
    /// The MJPEG URL is malformed or not supported.
    #[error("bad MJPEG URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Talking HTTP to an MJPEG server failed.
    #[error("MJPEG stream {url}: {reason}")]
    Http { url: String, reason: String },
    /// The server wants an access token, or refused the one sent (401).
    #[error("MJPEG stream {url} answered 401 Unauthorized: {reason}")]
    Unauthorized {
        url: String,
        /// Whether a token was sent, and what to do.
        reason: String,
    },
    /// The server answered, but not with a multipart/x-mixed-replace stream.
    #[error("{url} is not an MJPEG stream: Content-Type is {content_type:?}, expected multipart/x-mixed-replace; boundary=...; check the URL's path (Motion serves the stream on / of port 8081)")]
    NotMultipart {
        url: String,
        /// The Content-Type the server sent.
        content_type: String,
    },
    /// The multipart body of an MJPEG stream was malformed.
    #[error("MJPEG stream {url}: {source}")]
    Multipart { url: String, source: MultipartError },
    /// Capture settings are invalid.
    #[error("invalid camera setting {field}: {reason}")]
    Config {
        /// The setting at fault.
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
}
