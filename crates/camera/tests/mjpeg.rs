//! The MJPEG server and client over real loopback sockets, and real
//! third-party clients (curl, ffmpeg, OpenCV) where installed.
#![allow(clippy::unwrap_used)] // test helpers may panic

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gopigo_camera::jpeg::{self, RgbImage};
use gopigo_camera::mjpeg::{self, AccessToken, ClientOptions, MjpegClient, ServeOptions};
use gopigo_camera::{CameraError, Frame, FrameBus};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A real JPEG of `w`x`h` in colour `rgb`, padded with COM segments to at
/// least `min_bytes` (to fill socket buffers quickly).
fn jpeg_bytes(w: u32, h: u32, rgb: [u8; 3], min_bytes: usize) -> Vec<u8> {
    let base = jpeg::encode_jpeg(&RgbImage::filled(w, h, rgb), 80).unwrap();
    let mut out = base[..2].to_vec();
    while out.len() + base.len() < min_bytes {
        let n = (min_bytes - out.len() - base.len()).clamp(16, 60_000);
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&((n + 2) as u16).to_be_bytes());
        out.extend(std::iter::repeat_n(b'.', n));
    }
    out.extend_from_slice(&base[2..]);
    out
}

fn frame(seq: u64, body: &[u8]) -> Frame {
    Frame::from_jpeg(body, seq, gopigo_camera::unix_ms_now(), "test").unwrap()
}

struct Server {
    url: String,
    bus: FrameBus,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// An open server (no token), default bounds.
async fn start() -> Server {
    start_with(ServeOptions::default()).await
}

async fn start_with(options: ServeOptions) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bus = FrameBus::new();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(mjpeg::serve(listener, bus.clone(), options, async move {
        let _ = rx.await;
    }));
    Server {
        url,
        bus,
        stop: Some(tx),
        task,
    }
}

/// Publishes frames every `period` until dropped; returns the newest seq.
fn publish_forever(
    bus: FrameBus,
    period: Duration,
    min_bytes: usize,
) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let latest = Arc::new(AtomicU64::new(0));
    let l = latest.clone();
    let colours = [[200, 30, 30], [30, 200, 30], [30, 30, 200]];
    let bodies: Vec<Vec<u8>> = colours
        .iter()
        .map(|c| jpeg_bytes(64, 48, *c, min_bytes))
        .collect();
    let h = tokio::spawn(async move {
        let mut seq = 0u64;
        loop {
            seq += 1;
            bus.publish(frame(seq, &bodies[seq as usize % 3]));
            l.store(seq, Ordering::SeqCst);
            tokio::time::sleep(period).await;
        }
    });
    (latest, h)
}

#[tokio::test]
async fn snapshot_is_503_before_the_first_frame_then_the_jpeg() {
    let s = start().await;
    let url = format!("{}/snapshot.jpg", s.url);
    let out = curl(&["-s", "-i", &url]).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("no camera frame yet"), "{text}");

    let body = jpeg_bytes(32, 24, [1, 2, 3], 0);
    s.bus.publish(frame(7, &body));
    let out = curl(&["-s", "-D", "-", "-o", "/dev/null", &url]).await;
    let head = String::from_utf8_lossy(&out).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: image/jpeg\r\n"), "{head}");
    assert!(head.contains("x-frame-seq: 7\r\n"), "{head}");
    let img = curl(&["-s", &url]).await;
    assert_eq!(jpeg::read_stamp(&img).map(|s| s.seq), Some(7));
    assert_eq!(jpeg::decode_jpeg(&img, "snapshot").unwrap().width, 32);
}

async fn curl(args: &[&str]) -> Vec<u8> {
    let out = tokio::process::Command::new("curl")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("curl runs (apt-get install curl)");
    out.stdout
}

#[tokio::test]
async fn curl_sees_motion_headers_and_stamped_parts_exactly() {
    let s = start().await;
    let body = jpeg_bytes(32, 24, [10, 20, 30], 0);
    s.bus.publish(frame(1, &body));
    let latest = s.bus.latest().unwrap();
    let stamped = latest.jpeg.clone();
    // curl stops after --max-time (exit 28); the bytes it got are enough.
    let out = curl(&[
        "-s",
        "-N",
        "-i",
        "--max-time",
        "1",
        &format!("{}/stream", s.url),
    ])
    .await;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let head_l = head.to_ascii_lowercase();
    assert!(head_l.starts_with("http/1.1 200 ok"), "{head}");
    assert!(
        head_l.contains("\r\ncontent-type: multipart/x-mixed-replace; boundary=boundarystring\r\n"),
        "{head}"
    );
    assert!(head.contains("multipart/x-mixed-replace; boundary=BoundaryString"));
    assert!(head_l.contains("cache-control: no-cache"), "{head}");
    // curl has already undone the chunked transfer encoding.
    let raw = &out[split + 4..];
    let body_bytes = raw;
    // Motion's part headers, then the frame's sequence number and capture
    // time (which ffmpeg and OpenCV skip, see the tests below).
    let want_head = format!(
        "--BoundaryString\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\
         X-Frame-Seq: 1\r\nX-Captured-At-Ms: {}\r\n\r\n",
        stamped.len(),
        latest.captured_at_ms
    );
    let mut want = want_head.into_bytes();
    want.extend_from_slice(&stamped);
    want.extend_from_slice(b"\r\n");
    if body_bytes.len() < want.len() || body_bytes[..want.len()] != want[..] {
        panic!(
            "first part differs: got {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        );
    }
}

#[tokio::test]
async fn ffmpeg_reads_frames_from_the_stream() {
    if std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_err()
    {
        eprintln!("skipping: ffmpeg not installed (apt-get install ffmpeg)");
        return;
    }
    let s = start().await;
    let (_latest, publisher) = publish_forever(s.bus.clone(), Duration::from_millis(40), 0);
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(format!("{}/stream", s.url))
            .args(["-frames:v", "5", "-f", "null", "-"])
            .output(),
    )
    .await
    .expect("ffmpeg finished in time")
    .unwrap();
    publisher.abort();
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn opencv_reads_frames_from_the_stream() {
    // Debian's python3-opencv lives in the system Python, which a pyenv or
    // venv `python3` on PATH may hide.
    let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import cv2"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    let Some(python) = python else {
        eprintln!("skipping: python3-opencv not installed (apt-get install python3-opencv)");
        return;
    };
    let s = start().await;
    let (_latest, publisher) = publish_forever(s.bus.clone(), Duration::from_millis(40), 0);
    let script = r#"
import sys, cv2
cap = cv2.VideoCapture(sys.argv[1])
n = 0
for _ in range(5):
    ok, img = cap.read()
    if ok and img.shape[:2] == (48, 64):
        n += 1
print(n)
"#;
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(python)
            .args(["-c", script, &format!("{}/stream.mjpg", s.url)])
            .output(),
    )
    .await
    .expect("python finished in time")
    .unwrap();
    publisher.abort();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        printed.trim(),
        "5",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_slow_viewer_gets_the_newest_frame_without_backlog() {
    let s = start().await;
    // 256 KB frames at 100 fps: ~25 MB/s offered to each viewer.
    let (latest, publisher) = publish_forever(s.bus.clone(), Duration::from_millis(10), 256 * 1024);
    let mut fast = MjpegClient::connect(&format!("{}/stream", s.url))
        .await
        .unwrap();
    // The slow viewer's socket buffer is kept small, as a remote viewer's
    // TCP window effectively is; on loopback the kernel would otherwise
    // autotune it to 32 MB and hold a hundred frames itself.
    let opts = ClientOptions {
        recv_buffer_bytes: Some(64 * 1024),
        ..ClientOptions::default()
    };
    let mut slow = MjpegClient::connect_with(&format!("{}/", s.url), &opts)
        .await
        .unwrap();

    let fast_task = tokio::spawn(async move {
        let mut seqs = Vec::new();
        let end = tokio::time::Instant::now() + Duration::from_secs(3);
        while tokio::time::Instant::now() < end {
            seqs.push(fast.next_frame().await.unwrap().unwrap().seq);
        }
        seqs
    });
    let mut slow_seqs = Vec::new();
    let mut lags = Vec::new();
    for _ in 0..25 {
        let f = slow.next_frame().await.unwrap().unwrap();
        lags.push(latest.load(Ordering::SeqCst) - f.seq);
        slow_seqs.push(f.seq);
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    let fast_seqs = fast_task.await.unwrap();
    publisher.abort();

    assert!(
        slow_seqs.windows(2).all(|w| w[1] > w[0]),
        "in order: {slow_seqs:?}"
    );
    let max_jump = slow_seqs.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        max_jump >= 5,
        "the slow viewer should skip frames: {slow_seqs:?}"
    );
    // Without skipping, the 25th frame would be seq ~25 and the lag would
    // grow to hundreds; with it, the lag stays bounded by socket buffers.
    let last_lag = *lags.last().unwrap();
    assert!(
        last_lag <= 40,
        "slow viewer lags {last_lag} frames behind: backlog grows ({lags:?})"
    );
    assert!(
        *slow_seqs.last().unwrap() > 150,
        "the slow viewer saw old frames: {slow_seqs:?}"
    );
    // The fast viewer keeps up with most frames, in order.
    assert!(fast_seqs.windows(2).all(|w| w[1] > w[0]));
    assert!(
        fast_seqs.len() > 100,
        "fast viewer got {} frames",
        fast_seqs.len()
    );
}

#[tokio::test]
async fn fps_query_caps_a_viewer() {
    let s = start().await;
    let (_latest, publisher) = publish_forever(s.bus.clone(), Duration::from_millis(10), 0);
    let mut c = MjpegClient::connect(&format!("{}/stream?fps=5", s.url))
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        c.next_frame().await.unwrap().unwrap();
        n += 1;
    }
    publisher.abort();
    assert!((6..=10).contains(&n), "{n} frames in 1.5 s at fps=5");

    let bad = curl(&["-s", "-i", &format!("{}/stream?fps=0", s.url)]).await;
    assert!(String::from_utf8_lossy(&bad).starts_with("HTTP/1.1 400"));
}

#[tokio::test]
async fn latest_mode_skips_to_the_newest_frame() {
    let s = start().await;
    let (latest, publisher) = publish_forever(s.bus.clone(), Duration::from_millis(5), 0);
    let c = MjpegClient::connect(&format!("{}/stream", s.url))
        .await
        .unwrap();
    let mut frames = c.latest();
    let first = frames.next().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = frames.next().await.unwrap().unwrap();
    let now = latest.load(Ordering::SeqCst);
    publisher.abort();
    assert!(
        second.seq > first.seq + 20,
        "{} then {}",
        first.seq,
        second.seq
    );
    assert!(now - second.seq < 20, "newest is {now}, got {}", second.seq);
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_the_server() {
    let mut s = start().await;
    s.bus.publish(frame(1, &jpeg_bytes(8, 8, [0, 0, 0], 0)));
    let mut c = MjpegClient::connect(&format!("{}/stream", s.url))
        .await
        .unwrap();
    assert_eq!(c.next_frame().await.unwrap().unwrap().seq, 1);
    s.stop.take().unwrap().send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(3), &mut s.task).await;
    served.expect("server stopped in time").unwrap().unwrap();
    let end = tokio::time::timeout(Duration::from_secs(3), c.next_frame())
        .await
        .unwrap();
    assert!(matches!(end, Ok(None)), "{end:?}");
}

/// A one-shot raw HTTP server sending `response` and closing.
async fn raw_server(response: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
        sock.write_all(&response).await.unwrap();
        sock.shutdown().await.unwrap();
    });
    url
}

#[tokio::test]
async fn client_errors_are_clear() {
    // Not multipart.
    let url = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
    )
    .await;
    let err = MjpegClient::connect(&url).await.unwrap_err();
    assert!(matches!(err, CameraError::NotMultipart { .. }), "{err}");
    assert!(err.to_string().contains("text/html"));

    // Truncated part.
    let body = jpeg_bytes(8, 8, [1, 1, 1], 0);
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=BoundaryString\r\nConnection: close\r\n\r\n".to_vec();
    resp.extend_from_slice(
        format!(
            "--BoundaryString\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    resp.extend_from_slice(&body);
    resp.extend_from_slice(
        format!(
            "\r\n--BoundaryString\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    resp.extend_from_slice(&body[..body.len() / 2]);
    let url = raw_server(resp).await;
    let mut c = MjpegClient::connect(&url).await.unwrap();
    assert_eq!(c.next_frame().await.unwrap().unwrap().width, 8);
    let err = c.next_frame().await.unwrap_err();
    assert!(err.to_string().contains("ended inside part 2"), "{err}");

    // Declared boundary never appears.
    let url = raw_server(
        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=foo\r\nConnection: close\r\n\r\n--bar\r\nContent-Length: 1\r\n\r\nx\r\n".to_vec(),
    )
    .await;
    let mut c = MjpegClient::connect(&url).await.unwrap();
    let err = c.next_frame().await.unwrap_err();
    assert!(
        err.to_string().contains("no boundary line \"--foo\""),
        "{err}"
    );

    // No server at all; and a bad URL.
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let err = MjpegClient::connect(&format!("http://{addr}/"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
    let err = MjpegClient::connect("https://example.invalid/")
        .await
        .unwrap_err();
    assert!(matches!(err, CameraError::BadUrl { .. }), "{err}");
}

// ---- The guarded server: token, parameters, caps and timeouts. ----

const SECRET: &str = "4f1c2e9a7b3d5c8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70";

fn token() -> AccessToken {
    AccessToken::from_secret(SECRET).unwrap()
}

fn guarded() -> ServeOptions {
    ServeOptions::new(Some(token()))
}

/// curl's status line and headers (lower case) and body for `url`.
async fn curl_head_body(args: &[&str], url: &str) -> (String, String) {
    let mut all = vec!["-s", "-i", "--max-time", "3"];
    all.extend_from_slice(args);
    all.push(url);
    let out = curl(&all).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((h, b)) => (h.to_ascii_lowercase(), b.to_string()),
        None => (text.to_ascii_lowercase(), String::new()),
    }
}

fn bearer() -> String {
    format!("Authorization: Bearer {SECRET}")
}

#[tokio::test]
async fn every_route_answers_401_without_the_token_and_serves_with_it() {
    let s = start_with(guarded()).await;
    s.bus.publish(frame(3, &jpeg_bytes(16, 16, [9, 9, 9], 0)));
    let wrong = format!("Authorization: Bearer {}", SECRET.replace('4', "5"));
    for path in [
        "/",
        "/stream",
        "/stream.mjpg",
        "/snapshot.jpg",
        "/stream?fps=1e-30",
    ] {
        let url = format!("{}{path}", s.url);
        let (head, body) = curl_head_body(&[], &url).await;
        assert!(head.starts_with("http/1.1 401"), "{path}: {head}");
        assert!(head.contains("www-authenticate: bearer"), "{path}: {head}");
        assert!(body.contains("Authorization: Bearer TOKEN"), "{body}");
        let (head, body) = curl_head_body(&["-H", &wrong], &url).await;
        assert!(head.starts_with("http/1.1 401"), "{path}: {head}");
        assert!(body.contains("wrong camera access token"), "{body}");
        let (head, _) = curl_head_body(&[], &format!("{url}?token=nope")).await;
        assert!(head.starts_with("http/1.1 401"), "{path}: {head}");
    }
    // The snapshot and the stream with the header, and with ?token=.
    let snap = format!("{}/snapshot.jpg", s.url);
    let (head, _) = curl_head_body(&["-H", &bearer()], &snap).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let (head, _) = curl_head_body(&[], &format!("{snap}?token={SECRET}")).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let mut c = MjpegClient::connect(&format!("{}/stream.mjpg?token={SECRET}", s.url))
        .await
        .unwrap();
    assert_eq!(c.next_frame().await.unwrap().unwrap().seq, 3);
    let mut c =
        MjpegClient::connect_with_token(&format!("{}/", s.url), &Default::default(), Some(SECRET))
            .await
            .unwrap();
    assert_eq!(c.next_frame().await.unwrap().unwrap().seq, 3);
    // The client's errors say what is missing.
    let err = MjpegClient::connect(&format!("{}/", s.url))
        .await
        .unwrap_err();
    assert!(matches!(err, CameraError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("camera_token"), "{err}");
    let err =
        MjpegClient::connect_with_token(&format!("{}/", s.url), &Default::default(), Some("x"))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("refused the token"), "{err}");
}

#[tokio::test]
async fn bad_frame_rates_are_400_and_the_server_keeps_serving() {
    let s = start_with(guarded()).await;
    let (_latest, publisher) = publish_forever(s.bus.clone(), Duration::from_millis(20), 0);
    // The first one panicked the handler before (Duration overflow).
    for fps in ["1e-30", "NaN", "-1", "1e300", "inf", "0", "abc", ""] {
        let url = format!("{}/stream.mjpg?fps={fps}", s.url);
        let (head, body) = curl_head_body(&["-H", &bearer()], &url).await;
        assert!(head.starts_with("http/1.1 400"), "fps={fps}: {head}");
        assert!(
            body.contains("fps=") && body.contains("0.1 to 1000"),
            "{body}"
        );
    }
    let (head, body) = curl_head_body(&["-H", &bearer()], &format!("{}/?fps=1&fps=2", s.url)).await;
    assert!(
        head.starts_with("http/1.1 400") && body.contains("more than once"),
        "{head}{body}"
    );
    let mut c = MjpegClient::connect_with_token(
        &format!("{}/stream.mjpg?fps=0.1&t=cachebuster", s.url),
        &Default::default(),
        Some(SECRET),
    )
    .await
    .unwrap();
    assert!(c.next_frame().await.unwrap().is_some());
    publisher.abort();
}

#[tokio::test]
async fn the_viewer_after_the_cap_gets_503_with_retry_after() {
    let s = start_with(guarded().with_max_viewers(3)).await;
    let (_latest, publisher) = publish_forever(s.bus.clone(), Duration::from_millis(20), 0);
    let url = format!("{}/stream", s.url);
    let mut viewers = Vec::new();
    for _ in 0..3 {
        let mut c = MjpegClient::connect_with_token(&url, &Default::default(), Some(SECRET))
            .await
            .unwrap();
        c.next_frame().await.unwrap().unwrap();
        viewers.push(c);
    }
    let (head, body) = curl_head_body(&["-H", &bearer()], &url).await;
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("\r\nretry-after: 5"), "{head}");
    assert!(body.contains("max_viewers"), "{body}");
    // The snapshot is not a viewer: it still works.
    let (head, _) = curl_head_body(&["-H", &bearer()], &format!("{}/snapshot.jpg", s.url)).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    // A viewer leaves: its slot is free again.
    drop(viewers.pop());
    let mut again = None;
    for _ in 0..50 {
        match MjpegClient::connect_with_token(&url, &Default::default(), Some(SECRET)).await {
            Ok(c) => {
                again = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(
        again.is_some(),
        "the freed slot was not given to a new viewer"
    );
    publisher.abort();
}

/// A raw socket with a tiny receive buffer that asks for the stream and
/// then never reads.
async fn stalled_viewer(url: &str) -> tokio::net::TcpStream {
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    let req =
        format!("GET /stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {SECRET}\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    tcp
}

/// Reads until EOF or a reset; `true` when the server closed the socket.
async fn closed_by_server(tcp: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 1 << 20];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_stalled_viewer_is_dropped_after_the_write_timeout() {
    let mut options = guarded().with_max_viewers(1);
    options.write_timeout = Duration::from_secs(1);
    let s = start_with(options).await;
    // 256 KB frames fill the stalled viewer's buffers at once.
    let (_latest, publisher) =
        publish_forever(s.bus.clone(), Duration::from_millis(20), 256 * 1024);
    let started = tokio::time::Instant::now();
    let mut stalled = stalled_viewer(&s.url).await;
    // While it holds the only slot, another viewer is turned away.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (head, _) = curl_head_body(&["-H", &bearer()], &format!("{}/stream", s.url)).await;
    assert!(head.starts_with("http/1.1 503"), "{head}");
    // Within a generous bound of the 1 s timeout the slot is free again.
    let mut served = None;
    while served.is_none() && started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        served = MjpegClient::connect_with_token(
            &format!("{}/stream", s.url),
            &Default::default(),
            Some(SECRET),
        )
        .await
        .ok();
    }
    assert!(served.is_some(), "the stalled viewer kept its slot");
    // ... because the server closed the stalled connection.
    assert!(closed_by_server(&mut stalled, Duration::from_secs(5)).await);
    publisher.abort();
}

#[tokio::test]
async fn silent_and_unauthenticated_connections_are_closed_after_the_header_timeout() {
    let mut options = guarded();
    options.header_timeout = Duration::from_secs(1);
    let s = start_with(options).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    // Says nothing at all.
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Asks without the token, keeps the connection alive, asks again.
    let mut asking = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!("GET /stream HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    asking.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::io::AsyncReadExt::read(&mut asking, &mut buf)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"));
    asking.write_all(req.as_bytes()).await.unwrap();
    let started = tokio::time::Instant::now();
    assert!(closed_by_server(&mut silent, Duration::from_secs(10)).await);
    assert!(closed_by_server(&mut asking, Duration::from_secs(10)).await);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn connections_beyond_the_cap_are_answered_503_and_closed_at_once() {
    let mut options = guarded().with_max_viewers(1);
    options.header_timeout = Duration::from_secs(30);
    let cap = options.max_connections;
    let s = start_with(options).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Let the server accept them all (they say nothing and stay open).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = 0;
    for _ in 0..40 {
        let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut got = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_to_end(&mut extra, &mut got),
        )
        .await;
        let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
        if read.is_ok()
            && text.starts_with("http/1.1 503")
            && text.contains("\r\nretry-after: 5\r\n")
        {
            refused += 1;
        }
    }
    assert_eq!(
        refused, 40,
        "each connection beyond the cap is answered and closed"
    );
    // Once the held ones go, a viewer is served again.
    drop(held);
    s.bus.publish(frame(1, &jpeg_bytes(8, 8, [1, 1, 1], 0)));
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(mut c) = MjpegClient::connect_with_token(
            &format!("{}/stream", s.url),
            &Default::default(),
            Some(SECRET),
        )
        .await
        {
            ok = c.next_frame().await.unwrap().is_some();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok);
}

mod property {
    //! Random query strings against the routes: the handler never panics
    //! and answers exactly what the pure validator says.

    use super::*;
    use gopigo_camera::mjpeg::access;
    use http::{Request, StatusCode};
    use proptest::prelude::*;
    use tower::ServiceExt;

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => any::<f64>().prop_map(|f| f.to_string()),
            2 => any::<f64>().prop_map(|f| format!("{f:e}")),
            1 => (-1e6f64..1e6).prop_map(|f| f.to_string()),
            // tiny and huge magnitudes, where 1/fps overflows a Duration
            2 => (-330i32..330, 1u32..10).prop_map(|(e, m)| format!("{m}e{e}")),
            1 => prop::sample::select(vec![
                "NaN", "nan", "inf", "-inf", "infinity", "1e-30", "1e308", "-1", "0", "-0", "",
                "0.1", "1000", "1e3", "5", " 5", "0x10", "1_000",
            ])
            .prop_map(str::to_string),
            1 => "[0-9eE.+-]{0,12}",
            1 => any::<String>(),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => Just("fps".to_string()),
            1 => Just("token".to_string()),
            1 => "[a-z]{0,6}",
            1 => any::<String>(),
        ]
    }

    fn query() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::collection::vec((key(), value()), 0..4).prop_map(|pairs| {
                let mut q = form_urlencoded::Serializer::new(String::new());
                for (k, v) in pairs {
                    q.append_pair(&k, &v);
                }
                q.finish()
            }),
            1 => "[!-~]{0,80}",
        ]
    }

    fn app() -> axum::Router {
        let bus = FrameBus::new();
        bus.publish(frame(1, &jpeg_bytes(8, 8, [1, 2, 3], 0)));
        mjpeg::router(bus, &guarded())
    }

    fn status(
        rt: &tokio::runtime::Runtime,
        app: &axum::Router,
        uri: &str,
        auth: bool,
    ) -> StatusCode {
        let mut req = Request::get(uri);
        if auth {
            req = req.header("authorization", format!("Bearer {SECRET}"));
        }
        let req = req.body(axum::body::Body::empty()).unwrap();
        // The response (and an open stream's viewer slot) is dropped here.
        rt.block_on(app.clone().oneshot(req)).unwrap().status()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn any_query_answers_200_400_or_401_and_never_panics(
            q in query(),
            path in prop::sample::select(vec!["/", "/stream", "/stream.mjpg", "/snapshot.jpg"]),
            auth in any::<bool>(),
        ) {
            let uri = format!("{path}?{q}");
            prop_assume!(uri.parse::<http::Uri>().is_ok());
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let app = app();
            let got = status(&rt, &app, &uri, auth);
            let pairs = access::query_pairs(Some(&q));
            let authorized = auth || access::authorize(
                &token(), &http::HeaderMap::new(), access::as_str_pairs(&pairs)).is_ok();
            let valid = path == "/snapshot.jpg"
                || access::stream_params(access::as_str_pairs(&pairs)).is_ok();
            let want = match (authorized, valid) {
                (false, _) => StatusCode::UNAUTHORIZED,
                (true, false) => StatusCode::BAD_REQUEST,
                (true, true) => StatusCode::OK,
            };
            prop_assert_eq!(got, want, "{}", uri);
        }
    }
}
