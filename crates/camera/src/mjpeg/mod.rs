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
//! Guarded ([`ServeOptions`], [`access`]): with a token set, every route
//! answers 401 unless the request carries `Authorization: Bearer TOKEN` or
//! `?token=TOKEN` (compared in constant time); `?fps=` outside
//! 0.1..=1000 (NaN, infinite, negative, not a number) answers 400; beyond
//! `max_viewers` open streams a new one answers 503 with `Retry-After`;
//! beyond `max_connections` sockets a new connection is answered 503 and
//! closed at once; a viewer that takes no bytes for `write_timeout` is
//! dropped; a connection that has not sent its headers, or shown the
//! token, within `header_timeout` is closed.
//!
//! Client ([`MjpegClient`]): reads any such stream (Motion, mjpg-streamer,
//! IP cameras, this server) into [`crate::Frame`]s, using the pure parser in
//! [`multipart`].

pub mod access;
mod client;
mod deadline;
pub mod multipart;
mod server;

pub use access::AccessToken;
pub use client::{ClientOptions, LatestFrames, MjpegClient};
pub use server::{
    router, serve, ServeOptions, BOUNDARY, CONTENT_TYPE, DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_VIEWERS, DEFAULT_WRITE_TIMEOUT, SEND_BUFFER_BYTES, SPARE_CONNECTIONS,
};
