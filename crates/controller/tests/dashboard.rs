//! The dashboard's routes through `app(hub).oneshot(...)`, and its camera
//! proxy against a real MJPEG server from the camera crate.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use gopigo_camera::jpeg::{encode_jpeg, read_stamp, RgbImage};
use gopigo_camera::{Frame, FrameBus};
use gopigo_controller::dashboard::app;
use gopigo_controller::hub::{Hub, Outgoing};
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

async fn get(hub: &Arc<Hub>, uri: &str) -> (StatusCode, String, Vec<u8>) {
    let resp = app(hub.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
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
async fn video_is_proxied_frame_by_frame_with_the_stamp() {
    // A real camera server with one stamped frame.
    let bus = FrameBus::new();
    let jpeg = encode_jpeg(&RgbImage::filled(64, 48, [200, 10, 10]), 80).unwrap();
    bus.publish(Frame::from_jpeg(&jpeg, 42, 1_700_000_000_123, "test").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gopigo_camera::mjpeg::serve(listener, bus.clone(), async {
        let _ = stop_rx.await;
    }));

    let (hub, _rx) = hub();
    hub.ingest(
        "gopigo/cam1/status",
        format!(r#"{{"online":true,"since":1,"camera_url":"http://{addr}/stream"}}"#).as_bytes(),
    );
    let resp = app(hub.clone())
        .oneshot(
            Request::get("/robots/cam1/video")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert_eq!(ct, "multipart/x-mixed-replace; boundary=gopigoframe");
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let part = tokio::time::timeout(Duration::from_secs(10), async {
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
                    return buf[start..start + len].to_vec();
                }
            }
        }
    })
    .await
    .unwrap();
    let stamp = read_stamp(&part).expect("the camera's stamp survives the proxy");
    assert_eq!((stamp.seq, stamp.captured_at_ms), (42, 1_700_000_000_123));
    let _ = stop_tx.send(());
    let _ = server.await;
}
