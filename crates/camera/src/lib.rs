//! Camera frames for the GoPiGo robots: where they come from, how they are
//! shared, and how they travel as a Motion-compatible MJPEG stream.
//!
//! Parts:
//! - [`Frame`], [`FrameSource`]: a JPEG plus its sequence number and capture
//!   time; a source produces them on demand (blocking).
//! - [`FrameBus`]: the newest frame only (a `tokio::sync::watch`);
//!   publishers replace it, viewers read the latest, so a slow viewer skips
//!   frames instead of building a backlog.
//! - [`spawn_capture`] with [`CameraControl`]: runs a source on a blocking
//!   thread at a frame rate, pausable (camera on/off from the shadow).
//! - [`sim`]: a simulated camera that ray-casts the robot's view of a room
//!   whose walls carry real photographs (Debian's `darknet` samples).
//! - [`folder`]: an image folder source; [`pipe`]: a video file through
//!   `ffmpeg`, and (feature `rpicam`) the Pi camera through `rpicam-vid`;
//!   `v4l2` (feature `v4l2`): USB cameras.
//! - [`mjpeg`]: the MJPEG server (`GET /`, `/stream`, `/stream.mjpg`,
//!   `/snapshot.jpg`) and client, with a pure multipart parser.
//! - [`jpeg`]: the workspace's one RGB image type, JPEG decoder and
//!   encoder, the frame stamp (a JPEG COM segment carrying `seq` and
//!   `captured_at_ms`), and the JPEG stream splitter; the vision and detect
//!   crates use these.

mod capture;
mod error;
pub mod folder;
pub mod jpeg;
pub mod mjpeg;
pub mod pipe;
pub mod sim;
#[cfg(feature = "v4l2")]
pub mod v4l2;

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

pub use capture::{spawn_capture, CameraControl};
pub use error::CameraError;

/// Motion's stream port, the default for the robot's MJPEG server.
pub const DEFAULT_PORT: u16 = 8081;

/// One camera frame: a complete JPEG file and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The JPEG bytes (they also carry the stamp, see [`jpeg::read_stamp`]).
    pub jpeg: Bytes,
    /// Sequence number from the source, counting up from 1.
    pub seq: u64,
    /// Capture time in unix milliseconds, stamped by the source; the
    /// dashboard computes end-to-end latency from it.
    pub captured_at_ms: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl From<gopigo_protocol::video::VideoFrame<'_>> for Frame {
    /// A frame that came over MQTT (`gopigo/{thing}/video`): the JPEG is
    /// copied out of the message as is (it already carries the robot's stamp).
    fn from(f: gopigo_protocol::video::VideoFrame<'_>) -> Self {
        Frame {
            jpeg: Bytes::copy_from_slice(f.jpeg),
            seq: f.seq,
            captured_at_ms: f.captured_at_ms,
            width: u32::from(f.width),
            height: u32::from(f.height),
        }
    }
}

impl Frame {
    /// Wraps a JPEG produced by a source: reads its size from the SOF
    /// header and inserts the stamp COM segment. `what` names the source in
    /// the error when the bytes are not a JPEG.
    pub fn from_jpeg(
        jpeg: &[u8],
        seq: u64,
        captured_at_ms: u64,
        what: &str,
    ) -> Result<Frame, CameraError> {
        let (width, height) = jpeg::jpeg_dimensions(jpeg).ok_or_else(|| CameraError::Decode {
            what: what.to_string(),
            format: "JPEG",
            reason: "no SOI/SOF header found".to_string(),
        })?;
        let stamped = jpeg::stamp(
            jpeg,
            jpeg::Stamp {
                seq,
                captured_at_ms,
            },
        );
        Ok(Frame {
            jpeg: Bytes::from(stamped),
            seq,
            captured_at_ms,
            width,
            height,
        })
    }
}

/// Produces frames. `next_frame` blocks until a frame is ready; the caller
/// ([`spawn_capture`]) decides the pace.
pub trait FrameSource: Send {
    /// The next frame, or an error ([`CameraError::EndOfStream`] when the
    /// source is finished for good).
    fn next_frame(&mut self) -> Result<Frame, CameraError>;
}

/// The newest frame, shared between one capture loop and any number of
/// viewers. Cloning gives another handle to the same bus.
#[derive(Clone, Debug)]
pub struct FrameBus {
    tx: Arc<watch::Sender<Option<Arc<Frame>>>>,
}

impl Default for FrameBus {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameBus {
    /// An empty bus (no frame yet).
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Replaces the newest frame; viewers that have not read the previous
    /// one simply never see it.
    pub fn publish(&self, frame: Frame) {
        self.tx.send_replace(Some(Arc::new(frame)));
    }

    /// The newest frame, if any was published.
    pub fn latest(&self) -> Option<Arc<Frame>> {
        self.tx.borrow().clone()
    }

    /// A receiver that wakes on each new frame.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Frame>>> {
        self.tx.subscribe()
    }

    /// How many receivers (stream viewers and other subscribers) exist.
    pub fn viewer_count(&self) -> usize {
        self.tx.receiver_count()
    }
}
