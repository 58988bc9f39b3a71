//! The MJPEG stream in Motion's format, both ends.
//!
//! Server ([`router`], [`serve`]): `GET /`, `/stream` and `/stream.mjpg`
//! answer `Content-Type: multipart/x-mixed-replace; boundary=BoundaryString`
//! and then one part per frame ([`multipart::part_head`]):
//!
//! ```text
//! --BoundaryString\r\n
//! Content-Type: image/jpeg\r\n
//! Content-Length: N\r\n
//! X-Frame-Seq: SEQ\r\n
//! X-Captured-At-Ms: UNIX_MS\r\n
//! \r\n
//! <jpeg>\r\n
//! ```
//!
//! (ffmpeg, OpenCV and browsers skip the two `X-` headers). Each viewer
//! gets the newest frame each time its connection can take one, so a slow
//! viewer skips frames rather than queueing them; `?fps=N` caps a viewer's
//! rate. `GET /snapshot.jpg` answers the newest frame, or 503 before the
//! first one, with the same two values as response headers. The JPEG
//! itself carries them too, as a COM segment (see [`crate::jpeg`]).
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
//! [`multipart`]; each frame's `seq` and `captured_at_ms` come from the
//! part headers when sent, else from the JPEG's stamp.

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
