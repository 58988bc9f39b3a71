//! The MJPEG stream in Motion's format, both ends.
//!
//! Server ([`router`], [`serve`]): `GET /`, `/stream` and `/stream.mjpg`
//! answer `Content-Type: multipart/x-mixed-replace; boundary=BoundaryString`
//! and then one part per frame, exactly
//! `--BoundaryString\r\nContent-Type: image/jpeg\r\nContent-Length: N\r\n\r\n<jpeg>\r\n`
//! (no other part headers: OpenCV and ffmpeg want exactly this). Each
//! viewer gets the newest frame each time its connection can take one, so
//! a slow viewer skips frames rather than queueing them; `?fps=N` caps a
//! viewer's rate. `GET /snapshot.jpg` answers the newest frame, or 503
//! before the first one. The capture time and sequence number travel inside
//! each JPEG as a COM segment (see [`crate::jpeg`]); the snapshot also
//! carries them as `X-Frame-Seq` and `X-Captured-At-Ms` headers.
//!
//! On HTTP/1.1 the stream body is sent with chunked transfer encoding
//! (hyper decides); every HTTP client decodes that transparently.
//!
//! Client ([`MjpegClient`]): reads any such stream (Motion, mjpg-streamer,
//! IP cameras, this server) into [`crate::Frame`]s, using the pure parser in
//! [`multipart`].

mod client;
pub mod multipart;
mod server;

pub use client::{ClientOptions, LatestFrames, MjpegClient};
pub use server::{router, serve, BOUNDARY, CONTENT_TYPE};
