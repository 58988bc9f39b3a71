//! Live video over MQTT: the binary frame format of `gopigo/{thing}/video`
//! and the viewer's request on `gopigo/{thing}/video/request`.
//!
//! A frame message is a 24-byte header and a complete JPEG file:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..4 | magic `GPV1` (the `1` is the format version) |
//! | 4..12 | sequence number, big-endian u64 |
//! | 12..20 | capture time, unix ms, big-endian u64 |
//! | 20..22 | width in pixels, big-endian u16 |
//! | 22..24 | height in pixels, big-endian u16 |
//! | 24.. | the JPEG (starts with `FF D8`) |
//!
//! A whole message is at most [`MAX_MESSAGE_BYTES`] (AWS IoT Core's 128 KiB
//! limit): [`encode_frame`] refuses a bigger one, so it is never sent.

use serde::{Deserialize, Serialize};

/// The first four bytes of a frame message (format version 1).
pub const MAGIC: [u8; 4] = *b"GPV1";
/// Bytes before the JPEG.
pub const HEADER_BYTES: usize = 24;
/// AWS IoT Core's largest MQTT message payload (128 KiB).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// The largest JPEG one message can carry.
pub const MAX_JPEG_BYTES: usize = MAX_MESSAGE_BYTES - HEADER_BYTES;

/// One decoded frame message, borrowing the JPEG from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoFrame<'a> {
    /// The robot's frame counter.
    pub seq: u64,
    /// When the camera captured it (unix ms, [`crate::unix_ms`]).
    pub captured_at_ms: u64,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// The frame as a complete JPEG file, `width` x `height`.
    pub jpeg: &'a [u8],
}

/// Why bytes are not a frame message (or a frame cannot be one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoError {
    /// Shorter than the header plus a JPEG start.
    #[error("video message of {0} bytes is too short: a frame is a {HEADER_BYTES}-byte header and a JPEG")]
    TooShort(usize),
    /// Not `GPV1`.
    #[error("video message starts with {0:?}, not \"GPV1\": not a gopigo frame or another format version; update the viewer")]
    Magic([u8; 4]),
    /// The payload after the header does not start like a JPEG.
    #[error("video frame payload is not a JPEG (no FF D8 start)")]
    NotJpeg,
    /// Over AWS's message limit.
    #[error("video message of {0} bytes is over AWS IoT Core's 128 KiB ({MAX_MESSAGE_BYTES}-byte) limit: lower the resolution or JPEG quality")]
    TooLarge(usize),
    /// Zero width or height.
    #[error("video frame size {0}x{1} is empty")]
    NoPixels(u16, u16),
}

/// Builds a frame message; refuses a JPEG that would make it over
/// [`MAX_MESSAGE_BYTES`] or one that is not a JPEG.
pub fn encode_frame(f: &VideoFrame<'_>) -> Result<Vec<u8>, VideoError> {
    check_body(f)?;
    let mut out = Vec::with_capacity(HEADER_BYTES + f.jpeg.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&f.seq.to_be_bytes());
    out.extend_from_slice(&f.captured_at_ms.to_be_bytes());
    out.extend_from_slice(&f.width.to_be_bytes());
    out.extend_from_slice(&f.height.to_be_bytes());
    out.extend_from_slice(f.jpeg);
    Ok(out)
}

/// Reads a frame message (see the module docs for what is refused).
pub fn decode_frame(bytes: &[u8]) -> Result<VideoFrame<'_>, VideoError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(VideoError::TooLarge(bytes.len()));
    }
    if bytes.len() < HEADER_BYTES + 2 {
        return Err(VideoError::TooShort(bytes.len()));
    }
    let magic: [u8; 4] = bytes[0..4].try_into().unwrap_or_default();
    if magic != MAGIC {
        return Err(VideoError::Magic(magic));
    }
    let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
    let u16_at = |i: usize| u16::from_be_bytes(bytes[i..i + 2].try_into().unwrap_or_default());
    let f = VideoFrame {
        seq: u64_at(4),
        captured_at_ms: u64_at(12),
        width: u16_at(20),
        height: u16_at(22),
        jpeg: &bytes[HEADER_BYTES..],
    };
    check_body(&f)?;
    Ok(f)
}

fn check_body(f: &VideoFrame<'_>) -> Result<(), VideoError> {
    if f.width == 0 || f.height == 0 {
        return Err(VideoError::NoPixels(f.width, f.height));
    }
    if !f.jpeg.starts_with(&[0xFF, 0xD8]) {
        return Err(VideoError::NotJpeg);
    }
    let total = HEADER_BYTES + f.jpeg.len();
    if total > MAX_MESSAGE_BYTES {
        return Err(VideoError::TooLarge(total));
    }
    Ok(())
}

/// How long a request lasts when it does not say.
pub const DEFAULT_REQUEST_TTL_MS: u64 = 10_000;
/// The longest a single request may last: a viewer that vanishes stops
/// costing within this time.
pub const MAX_REQUEST_TTL_MS: u64 = 30_000;

/// A viewer's request for video (`video/request`, JSON, QoS 0). Sent again
/// before it expires for as long as someone watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoRequest {
    /// How long the robot keeps publishing after this request, in ms
    /// (clamped to 1..=[`MAX_REQUEST_TTL_MS`]).
    #[serde(default = "default_ttl")]
    pub ttl_ms: u64,
}

fn default_ttl() -> u64 {
    DEFAULT_REQUEST_TTL_MS
}

impl Default for VideoRequest {
    fn default() -> Self {
        Self {
            ttl_ms: DEFAULT_REQUEST_TTL_MS,
        }
    }
}

/// How often a viewer that keeps watching renews its request (the
/// dashboard and `gopigo detect` both do).
pub const VIEWER_RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(3);
/// The TTL a viewer's request asks for: three renewals may be lost before
/// the video stops, and a viewer that vanishes stops costing within it.
pub const VIEWER_TTL_MS: u64 = 10_000;

impl VideoRequest {
    /// The request a watching viewer sends every [`VIEWER_RENEW_EVERY`].
    pub fn viewer() -> Self {
        Self {
            ttl_ms: VIEWER_TTL_MS,
        }
    }

    /// The request as its JSON payload, e.g. `{"ttl_ms":10000}`.
    pub fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a request; an empty payload is the default request.
    pub fn parse(payload: &[u8]) -> Result<Self, String> {
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(payload).map_err(|e| {
            format!("video request is not {{\"ttl_ms\": N}} ({e}); send e.g. {{\"ttl_ms\": 10000}}")
        })
    }

    /// The request's lifetime, clamped to 1 ms..=[`MAX_REQUEST_TTL_MS`].
    pub fn ttl(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ttl_ms.clamp(1, MAX_REQUEST_TTL_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];

    fn frame(jpeg: &[u8]) -> VideoFrame<'_> {
        VideoFrame {
            seq: 7,
            captured_at_ms: 1_700_000_000_123,
            width: 320,
            height: 240,
            jpeg,
        }
    }

    #[test]
    fn a_frame_round_trips_with_its_capture_time() {
        let bytes = encode_frame(&frame(JPEG)).unwrap();
        assert_eq!(&bytes[..4], b"GPV1");
        assert_eq!(bytes.len(), HEADER_BYTES + JPEG.len());
        assert_eq!(decode_frame(&bytes).unwrap(), frame(JPEG));
    }

    #[test]
    fn bad_messages_are_refused_with_the_reason() {
        let good = encode_frame(&frame(JPEG)).unwrap();
        assert_eq!(decode_frame(&good[..10]), Err(VideoError::TooShort(10)));
        assert_eq!(decode_frame(b""), Err(VideoError::TooShort(0)));
        let mut bad = good.clone();
        bad[3] = b'2';
        assert!(matches!(decode_frame(&bad), Err(VideoError::Magic(_))));
        let mut bad = good.clone();
        bad[HEADER_BYTES] = 0;
        assert_eq!(decode_frame(&bad), Err(VideoError::NotJpeg));
        let mut bad = good.clone();
        bad[20..22].copy_from_slice(&[0, 0]);
        assert_eq!(decode_frame(&bad), Err(VideoError::NoPixels(0, 240)));
        let err = decode_frame(b"{\"json\": \"not a frame at all\"}").unwrap_err();
        assert!(err.to_string().contains("GPV1"), "{err}");
    }

    #[test]
    fn a_frame_over_128_kib_is_never_built() {
        let mut big = vec![0u8; MAX_JPEG_BYTES + 1];
        big[..2].copy_from_slice(&[0xFF, 0xD8]);
        let err = encode_frame(&frame(&big)).unwrap_err();
        assert_eq!(err, VideoError::TooLarge(MAX_MESSAGE_BYTES + 1));
        assert!(err.to_string().contains("128"), "{err}");
        big.pop();
        let ok = encode_frame(&frame(&big)).unwrap();
        assert_eq!(ok.len(), MAX_MESSAGE_BYTES);
        let mut over = ok.clone();
        over.push(0);
        assert!(matches!(decode_frame(&over), Err(VideoError::TooLarge(_))));
    }

    #[test]
    fn requests_default_clamp_and_refuse_garbage() {
        assert_eq!(VideoRequest::parse(b"").unwrap(), VideoRequest::default());
        let r = VideoRequest::parse(br#"{"ttl_ms": 3000}"#).unwrap();
        assert_eq!(r.ttl().as_millis(), 3000);
        let r = VideoRequest::parse(br#"{"ttl_ms": 99999999}"#).unwrap();
        assert_eq!(r.ttl().as_millis() as u64, MAX_REQUEST_TTL_MS);
        assert_eq!(VideoRequest::parse(b"{}").unwrap().ttl_ms, 10_000);
        let v = VideoRequest::viewer();
        assert_eq!(VideoRequest::parse(&v.payload()).unwrap(), v);
        assert!(v.ttl() >= 3 * VIEWER_RENEW_EVERY, "a renewal may be lost");
        let e = VideoRequest::parse(b"please").unwrap_err();
        assert!(e.contains("ttl_ms"), "{e}");
    }
}
