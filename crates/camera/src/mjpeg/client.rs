//! An MJPEG client over plain HTTP (hyper).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::multipart::{boundary_from_content_type, MultipartError, MultipartParser, Part};
use crate::{jpeg, CameraError, Frame};

/// Largest frame the client accepts.
const MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;

/// Reads frames from an MJPEG URL, in order.
pub struct MjpegClient {
    url: String,
    body: Incoming,
    parser: MultipartParser,
    conn: JoinHandle<()>,
    read_timeout: Duration,
    received: u64,
}

impl std::fmt::Debug for MjpegClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MjpegClient")
            .field("url", &self.url)
            .field("received", &self.received)
            .finish()
    }
}

impl Drop for MjpegClient {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// How [`MjpegClient`] connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Longest wait for the connection and the response headers (default 5 s).
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of the stream (default 10 s).
    pub read_timeout: Duration,
    /// Socket receive buffer size. `None` leaves the kernel's autotuning,
    /// which on a fast link can hold many frames; a small buffer (say
    /// 64 KiB) keeps a slowly read stream close to live, because the server
    /// only sends the newest frame when the socket can take one.
    pub recv_buffer_bytes: Option<u32>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            recv_buffer_bytes: None,
        }
    }
}

async fn open_tcp(host: &str, port: u16, recv_buffer: Option<u32>) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        match socket.connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        )
    }))
}

/// Where an `http://host[:port]/path` URL points (pure).
struct Target {
    host: String,
    port: u16,
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, CameraError> {
        let bad = |reason: String| CameraError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e| bad(format!("{e}; expected http://host:port/path")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(bad(format!(
                    "scheme {other:?} is not supported; only plain http:// MJPEG streams"
                )))
            }
            None => return Err(bad("no scheme; write it as http://host:port/path".into())),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| bad("no host; write it as http://host:port/path".into()))?;
        Ok(Self {
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_string(),
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".to_string()),
        })
    }

    /// The GET request, with the token as a bearer credential.
    fn request(
        &self,
        url: &str,
        token: Option<&str>,
    ) -> Result<http::Request<http_body_util::Empty<Bytes>>, CameraError> {
        let bad = |reason: String| CameraError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let mut req = http::Request::get(self.path.as_str())
            .header(http::header::HOST, self.authority.as_str())
            .header(http::header::USER_AGENT, "gopigo-camera")
            .header(http::header::ACCEPT, "multipart/x-mixed-replace, */*");
        if let Some(token) = token {
            let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| bad("the camera token has characters a header cannot carry".into()))?;
            value.set_sensitive(true);
            req = req.header(http::header::AUTHORIZATION, value);
        }
        req.body(http_body_util::Empty::<Bytes>::new())
            .map_err(|e| bad(e.to_string()))
    }
}

/// Checks that `resp` is a 200 multipart stream; returns it with its
/// boundary.
fn check_response(
    url: &str,
    resp: http::Response<Incoming>,
    sent_token: bool,
) -> Result<(http::Response<Incoming>, String), CameraError> {
    if resp.status() == http::StatusCode::UNAUTHORIZED {
        return Err(CameraError::Unauthorized {
            url: url.to_string(),
            reason: if sent_token {
                "the camera refused the token (a robot makes a new one at each start: read camera_token from its status again)".into()
            } else {
                "the camera needs its access token (camera_token in the robot's retained status)"
                    .into()
            },
        });
    }
    if resp.status() != http::StatusCode::OK {
        return Err(http_err(
            url,
            format!("server answered {} instead of 200 OK", resp.status()),
        ));
    }
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/x-mixed-replace")
    {
        return Err(CameraError::NotMultipart {
            url: url.to_string(),
            content_type,
        });
    }
    match boundary_from_content_type(&content_type) {
        Some(boundary) => Ok((resp, boundary)),
        None => Err(CameraError::Multipart {
            url: url.to_string(),
            source: MultipartError::MissingBoundary { content_type },
        }),
    }
}

fn http_err(url: &str, reason: impl std::fmt::Display) -> CameraError {
    CameraError::Http {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

impl MjpegClient {
    /// Connects to `url` (`http://host[:port]/path`) with default
    /// [`ClientOptions`] and checks that the answer is a
    /// multipart/x-mixed-replace stream.
    pub async fn connect(url: &str) -> Result<Self, CameraError> {
        Self::connect_with(url, &ClientOptions::default()).await
    }

    /// Like [`Self::connect`], with options.
    pub async fn connect_with(url: &str, options: &ClientOptions) -> Result<Self, CameraError> {
        Self::connect_with_token(url, options, None).await
    }

    /// Like [`Self::connect_with`], sending `token` as
    /// `Authorization: Bearer TOKEN` (the robot's per-boot camera token,
    /// `camera_token` in its retained status). A 401 answer is
    /// [`CameraError::Unauthorized`].
    pub async fn connect_with_token(
        url: &str,
        options: &ClientOptions,
        token: Option<&str>,
    ) -> Result<Self, CameraError> {
        let connect_timeout = options.connect_timeout;
        let target = Target::parse(url)?;
        let req = target.request(url, token)?;
        let tcp = tokio::time::timeout(
            connect_timeout,
            open_tcp(&target.host, target.port, options.recv_buffer_bytes),
        )
        .await
        .map_err(|_| http_err(url, format!("no connection within {connect_timeout:?}")))?
        .map_err(|e| {
            http_err(
                url,
                format!("cannot connect: {e}; is the camera server running?"),
            )
        })?;
        let _ = tcp.set_nodelay(true);
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| http_err(url, e))?;
        let conn = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "MJPEG client connection ended");
            }
        });
        let resp = tokio::time::timeout(connect_timeout, sender.send_request(req))
            .await
            .map_err(|_| http_err(url, format!("no response within {connect_timeout:?}")))?
            .map_err(|e| http_err(url, e));
        match resp.and_then(|r| check_response(url, r, token.is_some())) {
            Ok((resp, boundary)) => Ok(Self {
                url: url.to_string(),
                body: resp.into_body(),
                parser: MultipartParser::new(&boundary, MAX_FRAME_BYTES),
                conn,
                read_timeout: options.read_timeout,
                received: 0,
            }),
            Err(e) => {
                conn.abort();
                Err(e)
            }
        }
    }

    /// The URL this client reads.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next frame, in order; `Ok(None)` when the server ended the
    /// stream cleanly. Frames that carry `seq` and `captured_at_ms` (as
    /// part headers or as this crate's JPEG stamp) keep them; others are
    /// numbered by arrival and stamped with the arrival time.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, CameraError> {
        loop {
            let part = self
                .parser
                .next_part()
                .map_err(|source| CameraError::Multipart {
                    url: self.url.clone(),
                    source,
                })?;
            if let Some(part) = part {
                self.received += 1;
                if let Some(ct) = part.content_type() {
                    if !ct.to_ascii_lowercase().starts_with("image/jpeg") {
                        tracing::debug!(url = %self.url, content_type = ct, "skipping non-JPEG part");
                        continue;
                    }
                }
                return self.to_frame(part).map(Some);
            }
            if self.parser.is_finished() {
                return Ok(None);
            }
            let next = tokio::time::timeout(self.read_timeout, self.body.frame())
                .await
                .map_err(|_| {
                    http_err(
                        &self.url,
                        format!("no data for {:?}; the stream stalled", self.read_timeout),
                    )
                })?;
            match next {
                None => {
                    self.parser
                        .finish()
                        .map_err(|source| CameraError::Multipart {
                            url: self.url.clone(),
                            source,
                        })?;
                    return Ok(None);
                }
                Some(Err(e)) => return Err(http_err(&self.url, e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.parser.feed(&data);
                    }
                }
            }
        }
    }

    /// The part as a frame. Its sequence number and capture time come from
    /// the part's headers, else from the JPEG's stamp, else from arrival.
    fn to_frame(&self, part: Part) -> Result<Frame, CameraError> {
        let body = part.body.clone();
        let (width, height) = jpeg::jpeg_dimensions(&body).ok_or_else(|| CameraError::Decode {
            what: format!("part {} of {}", self.received, self.url),
            format: "JPEG",
            reason: "no SOI/SOF header".to_string(),
        })?;
        let (seq, captured_at_ms) = match (part.frame_seq(), part.captured_at_ms()) {
            (Some(seq), Some(at)) => (seq, at),
            _ => match jpeg::read_stamp(&body) {
                Some(s) => (s.seq, s.captured_at_ms),
                None => (self.received, crate::unix_ms_now()),
            },
        };
        Ok(Frame {
            jpeg: body,
            seq,
            captured_at_ms,
            width,
            height,
        })
    }

    /// Turns this client into a reader that always yields the newest frame:
    /// a background task reads the stream as fast as it comes and older
    /// frames a slow consumer never asked for are dropped.
    pub fn latest(mut self) -> LatestFrames {
        let (tx, rx) = watch::channel(LatestState::Waiting);
        let task = tokio::spawn(async move {
            loop {
                let next = self.next_frame().await;
                let state = match next {
                    Ok(Some(f)) => LatestState::Frame(Arc::new(f)),
                    Ok(None) => LatestState::Ended(None),
                    Err(e) => LatestState::Ended(Some(Arc::new(e))),
                };
                let done = matches!(state, LatestState::Ended(_));
                if tx.send(state).is_err() || done {
                    break;
                }
            }
        });
        LatestFrames { rx, task }
    }
}

#[derive(Debug, Clone)]
enum LatestState {
    Waiting,
    Frame(Arc<Frame>),
    Ended(Option<Arc<CameraError>>),
}

/// The newest-frame view of an MJPEG stream, from [`MjpegClient::latest`].
#[derive(Debug)]
pub struct LatestFrames {
    rx: watch::Receiver<LatestState>,
    task: JoinHandle<()>,
}

impl Drop for LatestFrames {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LatestFrames {
    /// Waits for a frame newer than the last one returned and returns the
    /// newest; `Ok(None)` when the stream ended cleanly. An error is shared
    /// (`Arc`) because the background reader owns it.
    pub async fn next(&mut self) -> Result<Option<Arc<Frame>>, Arc<CameraError>> {
        loop {
            let closed = self.rx.changed().await.is_err();
            let state = self.rx.borrow_and_update().clone();
            match state {
                LatestState::Frame(f) if !closed => return Ok(Some(f)),
                LatestState::Ended(Some(e)) => return Err(e),
                LatestState::Ended(None) => return Ok(None),
                LatestState::Frame(_) | LatestState::Waiting if closed => return Ok(None),
                LatestState::Frame(_) | LatestState::Waiting => {}
            }
        }
    }
}
