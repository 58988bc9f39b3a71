//! The dashboard's listener over real loopback sockets: the header/idle
//! timeout, the connection cap, TLS, and a shutdown that does not wait for
//! clients (idle sockets, open WebSockets).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gopigo_controller::dashboard::{serve, Security};
use gopigo_controller::hub::Hub;
use gopigo_controller::security::{CameraPolicy, Guard};
use gopigo_controller::server::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "server-test-token-0123456789";

struct Running {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits) -> Running {
    start_with(limits, |_| {}).await
}

async fn start_with(limits: Limits, setup: impl FnOnce(&Hub)) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    let hub = Hub::new("localhost:1".into(), None, tx);
    setup(&hub);
    let security = Security {
        guard: Arc::new(Guard::new(TOKEN.into(), addr, false, &[])),
        camera: CameraPolicy {
            allow_loopback: true,
            ..CameraPolicy::default()
        },
        limits,
        tls: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, hub, security, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

/// Reads until the peer closes or `limit` passes; `true` when it closed.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let until = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(until, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

async fn websocket(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).await.unwrap(),
            1,
            "{}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_timeout() {
    let limits = Limits {
        header_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let mut srv = start(limits).await;
    // Nothing sent at all:
    let mut idle = TcpStream::connect(srv.addr).await.unwrap();
    // Half a request line, never finished (slowloris):
    let mut slow = TcpStream::connect(srv.addr).await.unwrap();
    slow.write_all(b"GET /api/fleet HTTP/1.1\r\nHost: x")
        .await
        .unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    assert!(closed_within(&mut slow, Duration::from_secs(5)).await);
    // A keep-alive connection that went quiet after a request is closed too.
    let mut keep = TcpStream::connect(srv.addr).await.unwrap();
    keep.write_all(
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n",
            srv.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert!(closed_within(&mut keep, Duration::from_secs(5)).await);
    let _ = srv.stop.take().unwrap().send(());
    srv.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let limits = Limits {
        max_connections: 3,
        ..Limits::default()
    };
    let mut srv = start(limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(srv.addr).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(3)).await,
        "the fourth is closed"
    );
    // a slot freed is usable again
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n", srv.addr).as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let _ = srv.stop.take().unwrap().send(());
    srv.task.await.unwrap().unwrap();
}

/// A camera that sends one part and then nothing, keeping the stream open.
async fn stalled_camera() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let jpeg = [0xffu8, 0xd8, 0xff, 0xd9];
                let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=B\r\n\r\n".to_vec();
                out.extend(
                    format!(
                        "--B\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                        jpeg.len()
                    )
                    .as_bytes(),
                );
                out.extend(jpeg);
                out.extend(b"\r\n");
                let _ = s.write_all(&out).await;
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn shutdown_returns_promptly_with_idle_websocket_and_video_clients() {
    let camera = stalled_camera().await;
    let mut srv = start_with(Limits::default(), |hub| {
        hub.ingest(
            "gopigo/r1/status",
            format!(r#"{{"online":true,"since":1,"camera_url":"http://{camera}/stream"}}"#)
                .as_bytes(),
        )
    })
    .await;
    let mut video = TcpStream::connect(srv.addr).await.unwrap();
    video
        .write_all(format!("GET /robots/r1/video HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n", srv.addr).as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 15];
    video.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK", "the video stream is open");
    let _idle: Vec<TcpStream> =
        futures::future::join_all((0..5).map(|_| TcpStream::connect(srv.addr)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    let mut ws = websocket(srv.addr).await;
    let _ws2 = websocket(srv.addr).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    let _ = srv.stop.take().unwrap().send(());
    tokio::time::timeout(Duration::from_secs(2), &mut srv.task)
        .await
        .expect("serve returned within 2 s")
        .unwrap()
        .unwrap();
    println!(
        "serve returned {} ms after shutdown",
        t0.elapsed().as_millis()
    );
    assert!(
        closed_within(&mut ws, Duration::from_secs(2)).await,
        "the WebSocket was closed"
    );
}
