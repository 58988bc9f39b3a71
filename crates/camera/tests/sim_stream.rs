//! The simulated camera end to end: capture loop, MJPEG server, snapshot;
//! turning the robot 90° changes the photograph the snapshot shows.
#![allow(clippy::unwrap_used)] // test helpers may panic

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gopigo_camera::jpeg::{self, RgbImage};
use gopigo_camera::mjpeg::{self, MjpegClient};
use gopigo_camera::sim::{Pose, Probe, Scene, SimCamera, Texture, DEFAULT_PHOTO_DIR};
use gopigo_camera::{spawn_capture, CameraControl, FrameBus};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The darknet room when installed, else a room of solid-colour "photos".
fn scene() -> Scene {
    let dir = Path::new(DEFAULT_PHOTO_DIR);
    if dir.join("dog.jpg").exists() {
        return Scene::default_room(dir).unwrap();
    }
    eprintln!("note: {DEFAULT_PHOTO_DIR} missing (apt-get install darknet); using colour panels");
    let mut s = Scene::empty_room(4000.0, 3000.0);
    for (wall, name, rgb) in [(1, "dog", [200, 40, 40]), (0, "person", [40, 200, 40])] {
        let image = RgbImage::filled(40, 30, rgb);
        s.hang(
            wall,
            Texture {
                name: name.into(),
                image,
            },
            0.5,
            1800.0,
            100.0,
        );
    }
    s
}

fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!((a.width, a.height), (b.width, b.height));
    let sum: u64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.data.len() as f64
}

async fn snapshot(url: &str) -> (u64, RgbImage) {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-D", "/dev/stderr", url])
        .output()
        .await
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    assert!(headers.contains("content-type: image/jpeg"), "{headers}");
    let seq = jpeg::read_stamp(&out.stdout).unwrap().seq;
    (seq, jpeg::decode_jpeg(&out.stdout, "snapshot").unwrap())
}

#[tokio::test]
async fn turning_90_degrees_changes_the_snapshot_photo() {
    let pose = Arc::new(Mutex::new(Pose::default()));
    let p = pose.clone();
    let cam = SimCamera::new(scene(), Arc::new(move || *p.lock().unwrap()));
    // A second camera on the same scene renders the expected views.
    let reference = SimCamera::new(scene(), Arc::new(Pose::default));

    let bus = FrameBus::new();
    let stop = CancellationToken::new();
    let capture = spawn_capture(
        Box::new(cam),
        20.0,
        bus.clone(),
        CameraControl::new(true),
        stop.clone(),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let s = stop.clone();
    let server = tokio::spawn(mjpeg::serve(
        listener,
        bus.clone(),
        mjpeg::ServeOptions::default(),
        async move { s.cancelled().await },
    ));

    // Wait for the first frame through the stream itself.
    let mut client = MjpegClient::connect(&format!("{base}/stream"))
        .await
        .unwrap();
    let first = client.next_frame().await.unwrap().unwrap();
    assert_eq!((first.width, first.height), (640, 480));

    let facing_east = Pose::default();
    let facing_north = Pose {
        heading_rad: std::f64::consts::FRAC_PI_2,
        ..Pose::default()
    };
    let (seq_a, a) = snapshot(&format!("{base}/snapshot.jpg")).await;

    *pose.lock().unwrap() = facing_north;
    // Frames rendered after the turn have a higher seq; skip one in flight.
    let mut seq_b = seq_a;
    let mut b = a.clone();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        (seq_b, b) = snapshot(&format!("{base}/snapshot.jpg")).await;
        if seq_b >= seq_a + 2 {
            break;
        }
    }
    assert!(seq_b >= seq_a + 2, "no new frame after the turn");

    assert_eq!(
        reference.probe(facing_east, 320, 240),
        Probe::Photo("dog".into())
    );
    assert_eq!(
        reference.probe(facing_north, 320, 240),
        Probe::Photo("person".into())
    );
    let want_a = reference.render(facing_east);
    let want_b = reference.render(facing_north);
    // Each snapshot matches the view for its pose (JPEG noise only) and
    // the two photographs differ clearly.
    let (da, db) = (mean_abs_diff(&a, &want_a), mean_abs_diff(&b, &want_b));
    assert!(
        da < 6.0 && db < 6.0,
        "snapshots differ from the views: {da:.1} {db:.1}"
    );
    let across = mean_abs_diff(&a, &b);
    assert!(
        across > 25.0,
        "the turn barely changed the picture: {across:.1}"
    );

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), capture)
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
