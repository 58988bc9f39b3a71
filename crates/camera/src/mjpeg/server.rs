//! The MJPEG HTTP server (axum over hyper), guarded: a token, a viewer cap,
//! a connection cap and timeouts (see [`ServeOptions`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::access::{self, AccessToken, Denied};
use super::deadline::WriteDeadline;
use super::multipart::part_head;
use crate::{Frame, FrameBus};

/// The multipart boundary, as Motion spells it.
pub const BOUNDARY: &str = "BoundaryString";
/// The stream's Content-Type.
pub const CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=BoundaryString";

/// Viewers served at once unless configured otherwise.
pub const DEFAULT_MAX_VIEWERS: usize = 8;
/// Connections beyond the viewer cap kept open for snapshots and for
/// answering 401 or 503; further connections are closed at once.
pub const SPARE_CONNECTIONS: usize = 16;
/// How long a viewer may take no bytes before it is dropped.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may take to send a request's headers, and to
/// present a valid token; also how long an idle keep-alive connection lives.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// `Retry-After` (seconds) when every viewer slot is taken.
const BUSY_RETRY_AFTER_S: &str = "5";

/// Who may watch and what bounds the server. Every bound holds whatever
/// the peers do: at most `max_connections` sockets are held, each viewer
/// write makes progress within `write_timeout`, and a connection that has
/// not shown the token within `header_timeout` is closed.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The token every request must present. `None` serves anyone who can
    /// connect: only for a listener bound to loopback.
    pub token: Option<AccessToken>,
    /// Streams served at once; one more gets 503 with `Retry-After`.
    pub max_viewers: usize,
    /// Open connections held at once (viewers, snapshots, refusals); a
    /// connection beyond it is answered 503 and closed without being served.
    pub max_connections: usize,
    /// See [`DEFAULT_WRITE_TIMEOUT`].
    pub write_timeout: Duration,
    /// See [`DEFAULT_HEADER_TIMEOUT`].
    pub header_timeout: Duration,
}

impl Default for ServeOptions {
    /// Open (no token), default bounds: for loopback listeners and tests.
    fn default() -> Self {
        Self::new(None)
    }
}

impl ServeOptions {
    /// Default bounds, with `token` required when given.
    pub fn new(token: Option<AccessToken>) -> Self {
        Self {
            token,
            max_viewers: DEFAULT_MAX_VIEWERS,
            max_connections: DEFAULT_MAX_VIEWERS + SPARE_CONNECTIONS,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
        }
    }

    /// Sets the viewer cap, and the connection cap to match it.
    pub fn with_max_viewers(mut self, max_viewers: usize) -> Self {
        self.max_viewers = max_viewers;
        self.max_connections = max_viewers + SPARE_CONNECTIONS;
        self
    }
}

#[derive(Clone)]
struct AppState {
    bus: FrameBus,
    stop: CancellationToken,
    token: Option<Arc<AccessToken>>,
    viewers: Arc<Semaphore>,
    max_viewers: usize,
}

/// Set on a connection once one of its requests showed the token.
#[derive(Clone)]
struct ConnAuthorized(Arc<AtomicBool>);

/// The camera routes over `bus`, guarded as `options` say (token and
/// viewer cap; the connection bounds need [`serve`]). Streams end when the
/// connection closes.
pub fn router(bus: FrameBus, options: &ServeOptions) -> Router {
    router_with_stop(bus, options, CancellationToken::new())
}

fn router_with_stop(bus: FrameBus, options: &ServeOptions, stop: CancellationToken) -> Router {
    let state = AppState {
        bus,
        stop,
        token: options.token.clone().map(Arc::new),
        viewers: Arc::new(Semaphore::new(options.max_viewers)),
        max_viewers: options.max_viewers,
    };
    Router::new()
        .route("/", get(stream))
        .route("/stream", get(stream))
        .route("/stream.mjpg", get(stream))
        .route("/snapshot.jpg", get(snapshot))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Kernel send buffer asked for on each viewer's socket (Linux doubles
/// it). Small, so that a slow viewer's connection holds about one frame in
/// flight and the next part it gets is the newest frame, not one queued
/// seconds ago; still ample for 30 fps over a LAN.
pub const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// Serves [`router`] on `listener` until `shutdown` completes; then every
/// open stream ends and the function returns once connections are closed
/// (at most 5 s later).
///
/// Each connection is served by hyper with its smallest write buffer and a
/// [`SEND_BUFFER_BYTES`] socket send buffer, so that per viewer at most
/// about one frame waits in memory: the pacing that makes a slow viewer
/// skip to the newest frame. At most `options.max_connections` are held;
/// each further one is answered 503 and closed at once, so viewers never
/// use up the process's file descriptors.
pub async fn serve(
    listener: TcpListener,
    bus: FrameBus,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = CancellationToken::new();
    let app = router_with_stop(bus, &options, stop.clone());
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            %addr,
            token = options.token.is_some(),
            max_viewers = options.max_viewers,
            max_connections = options.max_connections,
            "MJPEG server listening"
        );
    }
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let limits = ConnLimits::from(&options);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    refuse(tcp, peer);
                    continue;
                };
                tune(&tcp);
                conns.spawn(serve_connection(tcp, peer, app.clone(), stop.clone(), limits, slot));
            }
        }
    }
    stop.cancel();
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        conns.abort_all();
    }
    Ok(())
}

/// What a connection gets when every connection slot is taken.
const FULL_BODY: &str =
    "the camera is serving all the connections it can; retry in a few seconds\n";

fn full_response() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: {BUSY_RETRY_AFTER_S}\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{FULL_BODY}",
        FULL_BODY.len()
    )
}

/// Answers a connection beyond the cap without waiting for it, and closes
/// it: its file descriptor is released at once.
fn refuse(tcp: TcpStream, peer: SocketAddr) {
    // Read what already arrived, so that closing sends FIN rather than RST
    // and the peer can read the answer.
    let mut sink = [0u8; 4096];
    let _ = tcp.try_read(&mut sink);
    let _ = tcp.try_write(full_response().as_bytes());
    tracing::debug!(%peer, "camera connection refused: connection cap reached");
}

fn tune(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
    if let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(SEND_BUFFER_BYTES) {
        tracing::debug!(error = %e, "cannot set SO_SNDBUF");
    }
}

/// The per-connection bounds.
#[derive(Debug, Clone, Copy)]
struct ConnLimits {
    needs_token: bool,
    write_timeout: Duration,
    header_timeout: Duration,
}

impl From<&ServeOptions> for ConnLimits {
    fn from(o: &ServeOptions) -> Self {
        Self {
            needs_token: o.token.is_some(),
            write_timeout: o.write_timeout,
            header_timeout: o.header_timeout,
        }
    }
}

/// Serves one connection: hyper with a header-read timeout over a socket
/// whose writes must progress; closed early when it has not shown the
/// token within the header timeout. `_slot` is its connection slot.
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    stop: CancellationToken,
    limits: ConnLimits,
    _slot: OwnedSemaphorePermit,
) {
    let authorized = Arc::new(AtomicBool::new(!limits.needs_token));
    let flag = ConnAuthorized(authorized.clone());
    let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(flag.clone());
        tower::ServiceExt::oneshot(app.clone(), req)
    });
    let io = hyper_util::rt::TokioIo::new(WriteDeadline::new(tcp, limits.write_timeout));
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(8192)
        .writev(true)
        .header_read_timeout(limits.header_timeout)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let auth_deadline = tokio::time::sleep(limits.header_timeout);
    tokio::pin!(auth_deadline);
    let mut awaiting_token = limits.needs_token;
    let result = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            _ = stop.cancelled() => {
                conn.as_mut().graceful_shutdown();
                break conn.await;
            }
            _ = &mut auth_deadline, if awaiting_token => {
                if !authorized.load(Ordering::Relaxed) {
                    tracing::debug!(%peer, "camera connection closed: no valid token in time");
                    return;
                }
                awaiting_token = false;
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "camera viewer connection ended");
    }
}

/// A short text answer that browsers will not sniff or cache.
fn plain(status: StatusCode, message: String) -> Response {
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Lets a request through only with the token (when one is set), and
/// marks its connection as authorized.
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let pairs = access::query_pairs(req.uri().query());
        if let Err(denied) = access::authorize(token, req.headers(), access::as_str_pairs(&pairs)) {
            return unauthorized(denied);
        }
    }
    if let Some(ConnAuthorized(flag)) = req.extensions().get::<ConnAuthorized>() {
        flag.store(true, Ordering::Relaxed);
    }
    next.run(req).await
}

fn unauthorized(denied: Denied) -> Response {
    let mut resp = plain(StatusCode::UNAUTHORIZED, denied.message().to_string());
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"gopigo-camera\""),
    );
    resp
}

fn no_cache(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate, private"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("0"));
}

async fn snapshot(State(state): State<AppState>) -> Response {
    match state.bus.latest() {
        Some(frame) => {
            let mut resp = (
                [(header::CONTENT_TYPE, "image/jpeg")],
                Body::from(frame.jpeg.clone()),
            )
                .into_response();
            no_cache(&mut resp);
            let h = resp.headers_mut();
            // FRAME_SEQ_HEADER and CAPTURED_AT_HEADER, as `http` spells names.
            h.insert("x-frame-seq", HeaderValue::from(frame.seq));
            h.insert("x-captured-at-ms", HeaderValue::from(frame.captured_at_ms));
            resp
        }
        None => {
            let mut resp = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "no camera frame yet: the camera is starting or switched off; retry in a moment\n"
                    .into(),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
    }
}

/// The chunks of one multipart part, without copying the JPEG.
fn part_chunks(frame: &Frame) -> [Bytes; 3] {
    [
        Bytes::from(part_head(BOUNDARY, frame)),
        frame.jpeg.clone(),
        Bytes::from_static(b"\r\n"),
    ]
}

struct Viewer {
    rx: watch::Receiver<Option<Arc<Frame>>>,
    stop: CancellationToken,
    min_interval: Option<Duration>,
    last_sent: Option<Instant>,
    pending: VecDeque<Bytes>,
    /// The viewer slot, freed when the stream is dropped.
    _slot: OwnedSemaphorePermit,
}

impl Viewer {
    /// The next chunk to send, or `None` when the stream should end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(chunk);
            }
            if let (Some(min), Some(last)) = (self.min_interval, self.last_sent) {
                tokio::select! {
                    _ = tokio::time::sleep_until(last + min) => {}
                    _ = self.stop.cancelled() => return None,
                }
            }
            // Wait for a frame this viewer has not had; the watch holds
            // only the newest, so everything older is skipped.
            tokio::select! {
                changed = self.rx.changed() => changed.ok()?,
                _ = self.stop.cancelled() => return None,
            }
            let frame = self.rx.borrow_and_update().clone();
            if let Some(frame) = frame {
                self.pending.extend(part_chunks(&frame));
                self.last_sent = Some(Instant::now());
            }
        }
    }
}

fn busy(max_viewers: usize) -> Response {
    let mut resp = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the camera is busy: {max_viewers} viewers are watching, the most it serves \
             ([camera] max_viewers); retry in a few seconds\n"
        ),
    );
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(BUSY_RETRY_AFTER_S),
    );
    resp
}

async fn stream(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let pairs = access::query_pairs(query.as_deref());
    let params = match access::stream_params(access::as_str_pairs(&pairs)) {
        Ok(p) => p,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    // In range by validation: at most 1/MIN_VIEWER_FPS seconds.
    let min_interval = params.fps.map(|fps| Duration::from_secs_f64(1.0 / fps));
    let Ok(slot) = state.viewers.clone().try_acquire_owned() else {
        return busy(state.max_viewers);
    };
    let mut rx = state.bus.subscribe();
    // A new viewer gets the current frame at once, not after the next one.
    if rx.borrow().is_some() {
        rx.mark_changed();
    }
    let viewer = Viewer {
        rx,
        stop: state.stop.clone(),
        min_interval,
        last_sent: None,
        pending: VecDeque::new(),
        _slot: slot,
    };
    let body = futures::stream::unfold(viewer, |mut v| async move {
        let chunk = v.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), v))
    });
    let mut resp = (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        Body::from_stream(body),
    )
        .into_response();
    no_cache(&mut resp);
    resp
}
