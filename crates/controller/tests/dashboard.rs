//! The dashboard's routes through `app(hub, guard, camera).oneshot(...)`
//! (signed in with the bearer token unless a test is about sign-in), and
//! its camera proxy against a real MJPEG server from the camera crate.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gopigo_camera::jpeg::{encode_jpeg, read_stamp, RgbImage};
use gopigo_camera::{Frame, FrameBus};
use gopigo_controller::dashboard::app;
use gopigo_controller::hub::{Hub, Outgoing};
use gopigo_controller::security::{CameraPolicy, Guard};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tower::ServiceExt;

fn hub() -> (Arc<Hub>, mpsc::Receiver<Outgoing>) {
    let (tx, rx) = mpsc::channel(16);
    (
        Hub::new("localhost:8883".into(), Some("no model".into()), tx),
        rx,
    )
}

const TOKEN: &str = "test-token-0123456789abcdef";

fn guard() -> Arc<Guard> {
    Arc::new(Guard::new(
        TOKEN.into(),
        "127.0.0.1:8080".parse().unwrap(),
        false,
        &[],
    ))
}

/// The demo's policy: loopback cameras allowed, except the core's port 1883.
fn loopback_cameras() -> CameraPolicy {
    CameraPolicy {
        allow_loopback: true,
        core_addrs: vec![],
        core_ports: vec![1883],
    }
}

fn signed_in(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("host", "127.0.0.1:8080")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap()
}

async fn get(hub: &Arc<Hub>, uri: &str) -> (StatusCode, String, Vec<u8>) {
    let resp = app(hub.clone(), guard(), loopback_cameras())
        .oneshot(signed_in(uri))
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, ct, body)
}

#[tokio::test]
async fn serves_the_embedded_page() {
    let (hub, _rx) = hub();
    let (s, ct, body) = get(&hub, "/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.starts_with("text/html"));
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("/app.js") && html.contains("/style.css"));
    assert!(html.contains("name=\"viewport\""), "phone-ready");
    let (s, ct, body) = get(&hub, "/app.js").await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.starts_with("text/javascript"));
    assert!(String::from_utf8(body).unwrap().contains("new WebSocket"));
    let (s, ct, _) = get(&hub, "/style.css").await;
    assert_eq!((s, ct.starts_with("text/css")), (StatusCode::OK, true));
    assert_eq!(get(&hub, "/nope").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fleet_json_is_the_hello_state() {
    let (hub, _rx) = hub();
    hub.ingest(
        "gopigo/robot7/status",
        br#"{"online":true,"since":5,"version":"1"}"#,
    );
    let (s, _, body) = get(&hub, "/api/fleet").await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "hello");
    assert_eq!(v["robots"][0]["thing"], "robot7");
    assert_eq!(v["robots"][0]["online"], true);
    assert_eq!(v["detection"]["note"], "no model");
}

#[tokio::test]
async fn video_of_an_unknown_robot_or_a_dead_camera_says_why() {
    let (hub, _rx) = hub();
    let (s, _, body) = get(&hub, "/robots/ghost/video").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("video unavailable"));
    // A camera URL nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    hub.ingest(
        "gopigo/r1/status",
        format!(r#"{{"online":true,"since":1,"camera_url":"http://127.0.0.1:{port}/stream"}}"#)
            .as_bytes(),
    );
    let (s, _, body) = get(&hub, "/robots/r1/video").await;
    assert_eq!(s, StatusCode::BAD_GATEWAY);
    assert!(String::from_utf8_lossy(&body).contains("cannot read r1's camera"));
    hub.ingest("gopigo/r1/status", br#"{"online":false,"since":2}"#);
    let (s, _, body) = get(&hub, "/robots/r1/video").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("r1 is offline"));
}

#[tokio::test]
async fn video_is_proxied_frame_by_frame_with_seq_and_capture_time() {
    // A real camera server with one stamped frame.
    let bus = FrameBus::new();
    let jpeg = encode_jpeg(&RgbImage::filled(64, 48, [200, 10, 10]), 80).unwrap();
    bus.publish(Frame::from_jpeg(&jpeg, 42, 1_700_000_000_123, "test").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gopigo_camera::mjpeg::serve(
        listener,
        bus.clone(),
        gopigo_camera::mjpeg::ServeOptions::default(),
        async {
            let _ = stop_rx.await;
        },
    ));

    let (hub, _rx) = hub();
    hub.ingest(
        "gopigo/cam1/status",
        format!(r#"{{"online":true,"since":1,"camera_url":"http://{addr}/stream"}}"#).as_bytes(),
    );
    let resp = app(hub.clone(), guard(), loopback_cameras())
        .oneshot(signed_in("/robots/cam1/video"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, "multipart/x-mixed-replace; boundary=gopigoframe");
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let (head, part) = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let frame = body.frame().await.unwrap().unwrap();
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
            }
            let text = String::from_utf8_lossy(&buf);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let head = &text[..head_end];
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .unwrap()
                    .parse()
                    .unwrap();
                let start = head_end + 4;
                if buf.len() >= start + len {
                    assert!(head.starts_with("--gopigoframe\r\n"), "{head}");
                    return (head.to_string(), buf[start..start + len].to_vec());
                }
            }
        }
    })
    .await
    .unwrap();
    // The camera's part headers are passed through, the JPEG's stamp too.
    assert!(head.contains("\r\nX-Frame-Seq: 42\r\n"), "{head}");
    assert!(
        head.contains("\r\nX-Captured-At-Ms: 1700000000123"),
        "{head}"
    );
    let stamp = read_stamp(&part).expect("the camera's stamp survives the proxy");
    assert_eq!((stamp.seq, stamp.captured_at_ms), (42, 1_700_000_000_123));
    let _ = stop_tx.send(());
    let _ = server.await;
}

async fn send(req: Request<Body>) -> axum::response::Response {
    let (hub, _rx) = hub();
    app(hub, guard(), loopback_cameras())
        .oneshot(req)
        .await
        .unwrap()
}

fn request(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

async fn body_text(resp: axum::response::Response) -> String {
    String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).to_string()
}

const HOST: (&str, &str) = ("host", "127.0.0.1:8080");

#[tokio::test]
async fn without_a_session_every_route_but_sign_in_answers_401() {
    for (uri, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/plain"),
        ("/api/fleet", "application/json"),
        ("/robots/r1/video", "text/plain"),
        ("/ws", "text/plain"),
        ("/healthz", "text/plain"),
    ] {
        let resp = send(request(uri, &[HOST])).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert!(resp.headers().contains_key("www-authenticate"), "{uri}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(kind), "{uri}: {ct}");
        let text = body_text(resp).await;
        assert!(!text.contains("robots"), "{uri} leaks nothing: {text}");
    }
    let page = body_text(send(request("/", &[HOST])).await).await;
    assert!(
        page.contains("name=\"token\""),
        "the sign-in page asks for the token"
    );
    // a wrong bearer token or a forged cookie are no better
    for h in [
        ("authorization", "Bearer wrong-token-0123456789abc"),
        (
            "cookie",
            "gopigo_dashboard_8080=test-token-0123456789abcdef",
        ),
    ] {
        let resp = send(request("/api/fleet", &[HOST, h])).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{h:?}");
    }
}

#[tokio::test]
async fn the_token_link_sets_a_strict_http_only_cookie_and_redirects_to_the_clean_url() {
    let resp = send(request("/?token=not-the-token-at-all-xxxxx", &[HOST])).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(body_text(resp).await.contains("not this dashboard"));

    let resp = send(request(&format!("/?token={TOKEN}"), &[HOST])).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(
        !cookie.contains(TOKEN),
        "the cookie is a session secret, not the token"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    // the same guard (one dashboard) accepts its cookie
    let (hub, _rx) = hub();
    let g = guard();
    let resp = app(hub.clone(), g.clone(), loopback_cameras())
        .oneshot(request(&format!("/?token={TOKEN}"), &[HOST]))
        .await
        .unwrap();
    let pair2 = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let resp = app(hub, g, loopback_cameras())
        .oneshot(request("/api/fleet", &[HOST, ("cookie", &pair2)]))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // ... and another dashboard's (another process, another secret) does not
    let resp = send(request("/api/fleet", &[HOST, ("cookie", &pair)])).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_foreign_host_is_refused_even_with_the_token() {
    let auth = ("authorization", "Bearer test-token-0123456789abcdef");
    for host in [
        "attacker.example:8080",
        "attacker.example",
        "127.0.0.2:8080",
    ] {
        let resp = send(request("/api/fleet", &[("host", host), auth])).await;
        assert_eq!(resp.status(), StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert!(body_text(resp).await.contains("--allow-host"));
    }
    let resp = send(request("/api/fleet", &[auth])).await;
    assert_eq!(
        resp.status(),
        StatusCode::MISDIRECTED_REQUEST,
        "no Host at all"
    );
    for host in ["localhost:8080", "[::1]:8080", "127.0.0.1:8080"] {
        let resp = send(request("/api/fleet", &[("host", host), auth])).await;
        assert_eq!(resp.status(), StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn the_websocket_needs_the_dashboards_own_origin() {
    let auth = ("authorization", "Bearer test-token-0123456789abcdef");
    let upgrade = [
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    for origin in [
        Some("http://evil.example.com"),
        Some("http://127.0.0.1:9999"),
        Some("null"),
        None,
    ] {
        let mut h = vec![HOST, auth];
        h.extend(upgrade);
        if let Some(o) = origin {
            h.push(("origin", o));
        }
        let resp = send(request("/ws", &h)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin:?}");
    }
}

#[tokio::test]
async fn cross_site_browser_requests_are_refused() {
    let auth = ("authorization", "Bearer test-token-0123456789abcdef");
    for site in ["cross-site", "same-site"] {
        let resp = send(request(
            "/api/fleet",
            &[
                HOST,
                auth,
                ("sec-fetch-site", site),
                ("sec-fetch-mode", "cors"),
            ],
        ))
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{site}");
    }
    let resp = send(request(
        "/api/fleet",
        &[
            HOST,
            auth,
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-mode", "cors"),
        ],
    ))
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let auth = ("authorization", "Bearer test-token-0123456789abcdef");
    for (uri, headers) in [
        ("/", vec![HOST, auth]),
        ("/", vec![HOST]),
        ("/api/fleet", vec![("host", "attacker.example")]),
        ("/nope", vec![HOST, auth]),
        ("/style.css", vec![HOST]),
    ] {
        let resp = send(request(uri, &headers)).await;
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{uri}: {csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
}

#[tokio::test]
async fn the_page_needs_no_inline_script_or_style() {
    let (hub, _rx) = hub();
    let (_, _, body) = get(&hub, "/").await;
    let html = String::from_utf8(body).unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "{html}"
    );
    assert!(!html.contains("<style"), "{html}");
    assert!(
        !html.contains("onclick=") && !html.contains("onload="),
        "no inline handlers"
    );
}

/// A camera stand-in that records the request head it got and answers
/// with one multipart part.
async fn recording_camera() -> (std::net::SocketAddr, tokio::sync::oneshot::Receiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).await.unwrap() == 0 {
                break;
            }
            head.push(b[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&head).to_string());
        let jpeg = encode_jpeg(&RgbImage::filled(8, 8, [1, 2, 3]), 80).unwrap();
        let mut out =
            b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=B\r\n\r\n"
                .to_vec();
        out.extend(
            format!(
                "--B\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            )
            .as_bytes(),
        );
        out.extend(&jpeg);
        out.extend(b"\r\n");
        let _ = s.write_all(&out).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    (addr, rx)
}

#[tokio::test]
async fn the_video_proxy_sends_the_camera_token_and_never_shows_it() {
    let (addr, head) = recording_camera().await;
    let (hub, _rx) = hub();
    hub.ingest(
        "gopigo/cam1/status",
        format!(
            r#"{{"online":true,"since":1,"camera_url":"http://{addr}/stream","camera_token":"camera-secret-0123456789abcdef"}}"#
        )
        .as_bytes(),
    );
    let resp = app(hub.clone(), guard(), loopback_cameras())
        .oneshot(signed_in("/robots/cam1/video"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let head = tokio::time::timeout(Duration::from_secs(5), head)
        .await
        .unwrap()
        .unwrap();
    assert!(
        head.lines().any(|l| l.eq_ignore_ascii_case("authorization: Bearer camera-secret-0123456789abcdef")),
        "{head}"
    );
    let (_, _, fleet) = get(&hub, "/api/fleet").await;
    assert!(!String::from_utf8_lossy(&fleet).contains("camera-secret"));
    assert!(!hub.hello_text().contains("camera-secret"));
}

#[tokio::test]
async fn camera_urls_on_loopback_or_the_cores_ports_are_not_fetched() {
    let (hub, _rx) = hub();
    let status = |url: &str| format!(r#"{{"online":true,"since":1,"camera_url":"{url}"}}"#);
    // A listening loopback port: refused unless the demo's opt-in is set.
    let (addr, _head) = recording_camera().await;
    hub.ingest(
        "gopigo/r1/status",
        status(&format!("http://{addr}/stream")).as_bytes(),
    );
    let strict = CameraPolicy::default();
    let resp = app(hub.clone(), guard(), strict)
        .oneshot(signed_in("/robots/r1/video"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(body_text(resp).await.contains("loopback"));
    for (url, needle) in [
        ("http://127.0.0.1:1883/", "core"),
        ("file:///etc/passwd", "refused"),
        ("gopher://10.0.0.9:70/", "only http://"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ] {
        hub.ingest("gopigo/r2/status", status(url).as_bytes());
        let (s, _, body) = get(&hub, "/robots/r2/video").await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{url}");
        assert!(
            String::from_utf8_lossy(&body).contains(needle),
            "{url}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}
