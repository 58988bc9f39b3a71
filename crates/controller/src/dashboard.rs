//! The dashboard's HTTP side: the embedded page, the WebSocket to it, the
//! fleet as JSON, and each robot's camera proxied through one origin.
//!
//! Routes of [`app`]:
//! - `GET /`, `/app.js`, `/style.css`: the page (compiled into the binary).
//! - `GET /ws`: the WebSocket ([`crate::hub`] documents its messages).
//! - `GET /api/fleet`: the `hello` message as JSON (for scripts and tests).
//! - `GET /robots/{thing}/video`: the robot's MJPEG stream, re-served as
//!   `multipart/x-mixed-replace` with a `Content-Length` per part. The
//!   dashboard reads the robot's stream with the camera crate's client and
//!   always forwards the newest frame, so a slow page skips frames rather
//!   than falling behind.
//! - `GET /healthz`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::{BufMut, Bytes, BytesMut};
use gopigo_camera::mjpeg::{ClientOptions, MjpegClient};
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::hub::{to_text, Hub};

const INDEX_HTML: &str = include_str!("../static/index.html");
const APP_JS: &str = include_str!("../static/app.js");
const STYLE_CSS: &str = include_str!("../static/style.css");

/// The boundary of the re-served video stream.
pub const VIDEO_BOUNDARY: &str = "gopigoframe";

#[derive(Clone)]
struct AppState {
    hub: Arc<Hub>,
    stop: CancellationToken,
}

/// The dashboard's routes over `hub` (see the module docs).
pub fn app(hub: Arc<Hub>) -> Router {
    app_with_stop(hub, CancellationToken::new())
}

fn app_with_stop(hub: Arc<Hub>, stop: CancellationToken) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/ws", get(ws_upgrade))
        .route("/api/fleet", get(fleet))
        .route("/robots/{thing}/video", get(video))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(AppState { hub, stop })
}

/// Serves [`app`] on `listener` until `shutdown` completes; open WebSockets
/// and video streams are then closed, so the function returns promptly.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = CancellationToken::new();
    let router = app_with_stop(hub, stop.clone());
    let stopped = stop.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopped.cancel();
        })
        .await
}

fn text_response(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    text_response("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    text_response("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> Response {
    text_response("text/css; charset=utf-8", STYLE_CSS)
}

async fn fleet(State(st): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(st.hub.hello()).unwrap_or_default())
}

async fn ws_upgrade(ws: WebSocketUpgrade, State(st): State<AppState>) -> Response {
    ws.on_upgrade(move |socket| page_session(socket, st))
}

async fn send_text(socket: &mut WebSocket, text: &str) -> bool {
    socket.send(Message::Text(text.into())).await.is_ok()
}

async fn page_session(mut socket: WebSocket, st: AppState) {
    let mut feed = st.hub.subscribe();
    if !send_text(&mut socket, &st.hub.hello_text()).await {
        return;
    }
    loop {
        tokio::select! {
            _ = st.stop.cancelled() => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            ev = feed.recv() => {
                let ok = match ev {
                    Ok(text) => send_text(&mut socket, &text).await,
                    // The page fell behind: start it over from the whole state.
                    Err(RecvError::Lagged(_)) => send_text(&mut socket, &st.hub.hello_text()).await,
                    Err(RecvError::Closed) => false,
                };
                if !ok {
                    break;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let reply = st.hub.handle_page_text(t.as_str());
                    if !send_text(&mut socket, &to_text(&reply)).await {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    }
}

fn part(jpeg: &[u8]) -> Bytes {
    let head = format!(
        "--{VIDEO_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.len()
    );
    let mut b = BytesMut::with_capacity(head.len() + jpeg.len() + 2);
    b.put_slice(head.as_bytes());
    b.put_slice(jpeg);
    b.put_slice(b"\r\n");
    b.freeze()
}

fn plain(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response()
}

async fn video(State(st): State<AppState>, Path(thing): Path<String>) -> Response {
    let url = match st.hub.camera_url(&thing) {
        Ok(u) => u,
        Err(why) => return plain(StatusCode::NOT_FOUND, format!("video unavailable: {why}")),
    };
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(3),
        read_timeout: Duration::from_secs(5),
        recv_buffer_bytes: Some(256 * 1024),
    };
    let client = match MjpegClient::connect_with(&url, &options).await {
        Ok(c) => c,
        Err(e) => {
            return plain(
                StatusCode::BAD_GATEWAY,
                format!("video unavailable: cannot read {thing}'s camera: {e}"),
            )
        }
    };
    let frames = client.latest();
    let stop = st.stop.clone();
    let stream = futures::stream::unfold(frames, |mut frames| async move {
        match frames.next().await {
            Ok(Some(frame)) => Some((Ok::<Bytes, Infallible>(part(&frame.jpeg)), frames)),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(error = %e, "camera stream ended");
                None
            }
        }
    });
    let stream = futures::StreamExt::take_until(stream, stop.cancelled_owned());
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "multipart/x-mixed-replace; boundary={VIDEO_BOUNDARY}"
    )) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
