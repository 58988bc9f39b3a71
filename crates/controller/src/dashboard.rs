//! The dashboard's HTTP side: the embedded page, the WebSocket to it, the
//! fleet as JSON, and each robot's camera proxied through one origin.
//!
//! Routes of [`app`]:
//! - `GET /`: the page; `GET /static/{file}`: its ES modules and
//!   stylesheet, from the allow-list [`STATIC_FILES`] (compiled into the
//!   binary, so the binary stays self-contained; no build step).
//! - `GET /ws`: the WebSocket ([`crate::hub`] documents its messages).
//! - `GET /api/fleet`: the `hello` message as JSON (for scripts and tests).
//! - `GET /robots/{thing}/video`: the robot's MJPEG stream, re-served as
//!   `multipart/x-mixed-replace` with `Content-Length`, `X-Frame-Seq` and
//!   `X-Captured-At-Ms` per part (the page's `<robot-video>` shows the
//!   frame's age from the last). The dashboard reads the robot's stream
//!   with the camera crate's client and always forwards the newest frame,
//!   so a slow page skips frames rather than falling behind.
//! - `GET /healthz`.
//!
//! Every request first passes [`gate`] (the rules are in
//! [`crate::security`]): the `Host` must be allowed (else 421), a browser
//! request marked cross-site is refused (403), `/?token=T` signs in
//! (303 to `/` with the session cookie), and every route but the sign-in
//! page and its stylesheet (`/static/style.css`) needs the session (else 401: the sign-in page
//! for `/`, JSON for `/api/...`, text otherwise); the WebSocket also needs
//! the dashboard's own `Origin` (403). Every response carries the
//! security headers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::{BufMut, Bytes, BytesMut};
use gopigo_camera::mjpeg::multipart::part_head;
use gopigo_camera::mjpeg::{ClientOptions, MjpegClient};
use gopigo_camera::Frame;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::hub::{to_text, CameraAccess, Hub};
use crate::security::{cross_site_refused, parse_camera_url, CameraPolicy, Guard};
use crate::server::Limits;

const INDEX_HTML: &str = include_str!("../static/index.html");
const SIGNIN_HTML: &str = include_str!("../static/signin.html");
/// The stylesheet, which the sign-in page needs before there is a session.
const SIGNIN_STYLE: &str = "/static/style.css";

/// What `GET /static/{file}` serves, and all it serves: the page's ES
/// modules (`main.js` imports the others) and its stylesheet.
pub const STATIC_FILES: &[(&str, &str)] = &[
    ("main.js", include_str!("../static/main.js")),
    ("ws.js", include_str!("../static/ws.js")),
    ("fleet.js", include_str!("../static/fleet.js")),
    ("view.js", include_str!("../static/view.js")),
    ("format.js", include_str!("../static/format.js")),
    ("jobs.js", include_str!("../static/jobs.js")),
    ("onscreen.js", include_str!("../static/onscreen.js")),
    ("teleop.js", include_str!("../static/teleop.js")),
    ("plot.js", include_str!("../static/plot.js")),
    ("multipart.js", include_str!("../static/multipart.js")),
    ("robot-video.js", include_str!("../static/robot-video.js")),
    ("style.css", include_str!("../static/style.css")),
];

/// The boundary of the re-served video stream.
pub const VIDEO_BOUNDARY: &str = "gopigoframe";

/// A WebSocket that has heard nothing (not even a pong) for this long is closed.
pub const WS_IDLE: Duration = Duration::from_secs(60);
/// How often the server pings each WebSocket.
pub const WS_PING: Duration = Duration::from_secs(20);

/// How the dashboard is guarded and bounded.
#[derive(Debug, Clone)]
pub struct Security {
    /// Sign-in, hosts, origin, headers.
    pub guard: Arc<Guard>,
    /// Which camera URLs may be fetched.
    pub camera: CameraPolicy,
    /// Listener bounds (also caps open WebSockets).
    pub limits: Limits,
    /// TLS, when serving HTTPS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

#[derive(Clone)]
struct AppState {
    hub: Arc<Hub>,
    stop: CancellationToken,
    guard: Arc<Guard>,
    camera: Arc<CameraPolicy>,
    sockets: Arc<Semaphore>,
}

/// The dashboard's routes over `hub`, guarded by `guard` (see the module docs).
pub fn app(hub: Arc<Hub>, guard: Arc<Guard>, camera: CameraPolicy) -> Router {
    let sockets = Limits::default().max_connections;
    app_with_stop(hub, guard, camera, sockets, CancellationToken::new())
}

fn app_with_stop(
    hub: Arc<Hub>,
    guard: Arc<Guard>,
    camera: CameraPolicy,
    max_sockets: usize,
    stop: CancellationToken,
) -> Router {
    let state = AppState {
        hub,
        stop,
        guard,
        camera: Arc::new(camera),
        sockets: Arc::new(Semaphore::new(max_sockets)),
    };
    Router::new()
        .route("/", get(index))
        .route("/static/{file}", get(static_file))
        .route("/ws", get(ws_upgrade))
        .route("/api/fleet", get(fleet))
        .route("/robots/{thing}/video", get(video))
        .route("/robots/{thing}/video/mqtt", get(mqtt_video))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` completes; open WebSockets
/// and video streams are then closed, so the function returns promptly.
pub async fn serve(
    listener: TcpListener,
    hub: Arc<Hub>,
    security: Security,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = CancellationToken::new();
    let router = app_with_stop(
        hub,
        security.guard,
        security.camera,
        security.limits.max_connections,
        stop.clone(),
    );
    crate::server::serve(
        listener,
        router,
        security.tls,
        security.limits,
        stop,
        shutdown,
    )
    .await
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The query of the sign-in link.
#[derive(Debug, serde::Deserialize)]
struct SignIn {
    token: Option<String>,
}

/// What the gate decided.
enum Gate {
    /// Go on to the route.
    Pass,
    /// Answer with this instead.
    Answer(Response),
}

/// The guard in front of every route (see the module docs).
async fn gate(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let host = header_str(req.headers(), &header::HOST).map(str::to_string);
    let mut resp = match check(&st.guard, &req, host.as_deref()) {
        Gate::Pass => next.run(req).await,
        Gate::Answer(resp) => resp,
    };
    let h = resp.headers_mut();
    for (name, value) in st.guard.security_headers(host.as_deref()) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    resp
}

fn check(guard: &Guard, req: &Request, host: Option<&str>) -> Gate {
    let headers = req.headers();
    let path = req.uri().path();
    let Some(host) = host.filter(|h| guard.host_allowed(h)) else {
        return Gate::Answer(plain(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "refused: Host {:?} is not one of this dashboard's names ({}); \
                 start it with --allow-host NAME to add one",
                host.unwrap_or(""),
                guard.hosts().join(", ")
            ),
        ));
    };
    let fetch = |n: &'static str| header_str(headers, &HeaderName::from_static(n));
    if cross_site_refused(
        fetch("sec-fetch-site"),
        fetch("sec-fetch-mode"),
        fetch("sec-fetch-dest"),
    ) {
        return Gate::Answer(plain(
            StatusCode::FORBIDDEN,
            "refused: a request from another site (Sec-Fetch-Site) may not use the dashboard"
                .into(),
        ));
    }
    if path == "/" {
        if let Ok(Query(SignIn { token: Some(token) })) = Query::<SignIn>::try_from_uri(req.uri()) {
            return Gate::Answer(sign_in(guard, &token));
        }
    }
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    if path != SIGNIN_STYLE
        && !guard.signed_in(cookies, header_str(headers, &header::AUTHORIZATION))
    {
        return Gate::Answer(unauthorized(path, None));
    }
    if path == "/ws" && !guard.origin_ok(header_str(headers, &header::ORIGIN), host) {
        tracing::warn!(origin = ?header_str(headers, &header::ORIGIN), "WebSocket refused: foreign Origin");
        return Gate::Answer(plain(
            StatusCode::FORBIDDEN,
            format!(
                "refused: the WebSocket is open only to pages of {} (Origin {:?})",
                guard.own_origin(host),
                header_str(headers, &header::ORIGIN).unwrap_or("missing")
            ),
        ));
    }
    Gate::Pass
}

/// `/?token=T`: the session cookie and the clean URL, or the sign-in page again.
fn sign_in(guard: &Guard, token: &str) -> Response {
    if !guard.token_ok(token) {
        tracing::warn!("dashboard sign-in with a wrong token");
        return unauthorized("/", Some("That token is not this dashboard's."));
    }
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&guard.session_cookie()) {
        h.insert(header::SET_COOKIE, v);
    }
    resp
}

/// 401 in the form the route's clients read.
fn unauthorized(path: &str, why: Option<&str>) -> Response {
    let what = "sign in first: open the URL with ?token= that the dashboard printed at start, \
                or send Authorization: Bearer TOKEN";
    let mut resp = if path == "/" || path == "/index.html" {
        let why = why.unwrap_or("Sign in to use this dashboard.");
        let page = SIGNIN_HTML.replace("{{WHY}}", why);
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            page,
        )
            .into_response()
    } else if path.starts_with("/api/") {
        Json(serde_json::json!({ "error": "unauthorized", "message": what })).into_response()
    } else {
        plain(StatusCode::UNAUTHORIZED, format!("unauthorized: {what}"))
    };
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"gopigo dashboard\""),
    );
    resp
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

/// The Content-Type of a file in [`STATIC_FILES`]: module scripts must be
/// served as JavaScript, and `nosniff` makes browsers hold to it.
fn static_content_type(name: &str) -> &'static str {
    if name.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        "text/javascript; charset=utf-8"
    }
}

async fn static_file(Path(file): Path<String>) -> Response {
    match STATIC_FILES.iter().find(|(name, _)| *name == file) {
        Some((name, body)) => text_response(static_content_type(name), body),
        None => plain(
            StatusCode::NOT_FOUND,
            "not found: the dashboard serves no such file under /static/".into(),
        ),
    }
}

async fn fleet(State(st): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(st.hub.hello()).unwrap_or_default())
}

async fn ws_upgrade(ws: WebSocketUpgrade, State(st): State<AppState>) -> Response {
    let Ok(permit) = st.sockets.clone().try_acquire_owned() else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open dashboard pages; close one and reload".into(),
        );
    };
    ws.max_message_size(64 * 1024)
        .on_upgrade(move |socket| page_session(socket, st, permit))
}

async fn send_text(socket: &mut WebSocket, text: &str) -> bool {
    socket.send(Message::Text(text.into())).await.is_ok()
}

/// One page's WebSocket; when it ends, the robots it showed are let go
/// (see [`crate::onscreen`]).
async fn page_session(socket: WebSocket, st: AppState, _permit: OwnedSemaphorePermit) {
    let page = st.hub.open_page();
    page_loop(socket, &st, page).await;
    st.hub.close_page(page);
}

async fn page_loop(mut socket: WebSocket, st: &AppState, page: u64) {
    let mut feed = st.hub.subscribe();
    if !send_text(&mut socket, &st.hub.hello_text()).await {
        return;
    }
    let mut ping = tokio::time::interval(WS_PING);
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = st.stop.cancelled() => {
                // Bounded: a peer that does not read cannot hold shutdown.
                let _ = tokio::time::timeout(Duration::from_millis(200), socket.send(Message::Close(None))).await;
                break;
            }
            _ = ping.tick() => {
                if heard.elapsed() > WS_IDLE {
                    tracing::debug!("closing a silent WebSocket");
                    break;
                }
                if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                    break;
                }
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
                    heard = tokio::time::Instant::now();
                    let reply = st.hub.handle_page_text(page, t.as_str());
                    if !send_text(&mut socket, &to_text(&reply)).await {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => heard = tokio::time::Instant::now(),
            }
        }
    }
}

/// One part of the re-served stream, with the camera's part headers
/// (sequence number and capture time) passed through.
fn part(frame: &Frame) -> Bytes {
    let head = part_head(VIDEO_BOUNDARY, frame);
    let mut b = BytesMut::with_capacity(head.len() + frame.jpeg.len() + 2);
    b.put_slice(head.as_bytes());
    b.put_slice(&frame.jpeg);
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

/// Resolves a camera URL and checks every address against the policy;
/// the URL returned names the checked address, so a second lookup cannot
/// lead elsewhere (DNS rebinding).
async fn pinned_camera_url(policy: &CameraPolicy, url: &str) -> Result<String, String> {
    let target = parse_camera_url(url)?;
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let addrs: Vec<SocketAddr> = tokio::time::timeout(Duration::from_secs(3), lookup)
        .await
        .map_err(|_| format!("cannot resolve {} within 3 s", target.host))?
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let Some(first) = addrs.first() else {
        return Err(format!("{} has no address", target.host));
    };
    for a in &addrs {
        policy.check_addr(*a)?;
    }
    Ok(format!("http://{first}{}", target.path))
}

async fn video(State(st): State<AppState>, Path(thing): Path<String>) -> Response {
    let CameraAccess { url, token } = match st.hub.camera(&thing) {
        Ok(c) => c,
        Err(why) => return plain(StatusCode::NOT_FOUND, format!("video unavailable: {why}")),
    };
    let url = match pinned_camera_url(&st.camera, &url).await {
        Ok(u) => u,
        Err(why) => {
            tracing::warn!(thing = %thing, reason = %why, "camera URL refused");
            return plain(
                StatusCode::FORBIDDEN,
                format!("video unavailable: {thing}'s camera URL is refused: {why}"),
            );
        }
    };
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(3),
        read_timeout: Duration::from_secs(5),
        recv_buffer_bytes: Some(256 * 1024),
    };
    let client = match MjpegClient::connect_with_token(&url, &options, token.as_deref()).await {
        Ok(c) => c,
        Err(e) => {
            return plain(
                StatusCode::BAD_GATEWAY,
                format!("video unavailable: cannot read {thing}'s camera: {e}"),
            )
        }
    };
    video_response(client, st.stop.clone())
}

/// The robot's video through the broker, in the same multipart format.
async fn mqtt_video(State(st): State<AppState>, Path(thing): Path<String>) -> Response {
    let viewer = match st.hub.watch_video(&thing) {
        Ok(v) => v,
        Err(why) => return plain(StatusCode::NOT_FOUND, format!("video unavailable: {why}")),
    };
    let stream = futures::stream::unfold(viewer, |mut v| async move {
        v.frames.changed().await.ok()?;
        let frame = v.frames.borrow_and_update().clone()?;
        Some((Ok::<Bytes, Infallible>(part(&frame)), v))
    });
    multipart(futures::StreamExt::take_until(
        stream,
        st.stop.cancelled_owned(),
    ))
}

fn multipart(
    stream: impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
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

fn video_response(client: MjpegClient, stop: CancellationToken) -> Response {
    let frames = client.latest();
    let stream = futures::stream::unfold(frames, |mut frames| async move {
        match frames.next().await {
            Ok(Some(frame)) => Some((Ok::<Bytes, Infallible>(part(&frame)), frames)),
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
