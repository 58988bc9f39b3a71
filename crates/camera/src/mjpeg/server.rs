//! The MJPEG HTTP server (axum).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{Frame, FrameBus};

/// The multipart boundary, as Motion spells it.
pub const BOUNDARY: &str = "BoundaryString";
/// The stream's Content-Type.
pub const CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=BoundaryString";

#[derive(Clone)]
struct AppState {
    bus: FrameBus,
    stop: CancellationToken,
}

/// Query parameters of the stream endpoints.
#[derive(Debug, serde::Deserialize)]
struct StreamParams {
    /// Most frames a second this viewer gets.
    fps: Option<f64>,
}

/// The camera routes over `bus`. Streams end when the connection closes;
/// use [`serve`] for a server whose streams also end on shutdown.
pub fn router(bus: FrameBus) -> Router {
    router_with_stop(bus, CancellationToken::new())
}

fn router_with_stop(bus: FrameBus, stop: CancellationToken) -> Router {
    Router::new()
        .route("/", get(stream))
        .route("/stream", get(stream))
        .route("/stream.mjpg", get(stream))
        .route("/snapshot.jpg", get(snapshot))
        .with_state(AppState { bus, stop })
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
/// skip to the newest frame.
pub async fn serve(
    listener: TcpListener,
    bus: FrameBus,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = CancellationToken::new();
    let app = router_with_stop(bus, stop.clone());
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "MJPEG server listening");
    }
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
                let _ = tcp.set_nodelay(true);
                if let Err(e) = socket2::SockRef::from(&tcp).set_send_buffer_size(SEND_BUFFER_BYTES) {
                    tracing::debug!(error = %e, "cannot set SO_SNDBUF");
                }
                let (app, stop) = (app.clone(), stop.clone());
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        tower::ServiceExt::oneshot(app.clone(), req)
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .max_buf_size(8192)
                        .writev(true)
                        .header_read_timeout(Duration::from_secs(10))
                        .timer(hyper_util::rt::TokioTimer::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc);
                    tokio::pin!(conn);
                    let result = tokio::select! {
                        r = conn.as_mut() => r,
                        _ = stop.cancelled() => {
                            conn.as_mut().graceful_shutdown();
                            conn.await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "camera viewer connection ended");
                    }
                });
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
            h.insert("x-frame-seq", HeaderValue::from(frame.seq));
            h.insert("x-captured-at-ms", HeaderValue::from(frame.captured_at_ms));
            resp
        }
        None => {
            let mut resp = (
                StatusCode::SERVICE_UNAVAILABLE,
                "no camera frame yet: the camera is starting or switched off; retry in a moment\n",
            )
                .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
    }
}

/// The chunks of one multipart part, without copying the JPEG.
fn part_chunks(frame: &Frame) -> [Bytes; 3] {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        frame.jpeg.len()
    );
    [
        Bytes::from(head),
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

async fn stream(State(state): State<AppState>, Query(params): Query<StreamParams>) -> Response {
    let min_interval = match params.fps {
        None => None,
        Some(fps) if fps.is_finite() && fps > 0.0 && fps <= 1000.0 => {
            Some(Duration::from_secs_f64(1.0 / fps))
        }
        Some(fps) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("fps={fps} is not a frame rate: use a number above 0 and at most 1000\n"),
            )
                .into_response()
        }
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
