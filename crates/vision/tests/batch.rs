//! Batch detection (`gopigo detect` on files) and the darknet import
//! (`gopigo model import-darknet`) end to end: a folder of images, a video
//! file and an MJPEG stream through ffmpeg, annotated output.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gopigo_camera::jpeg;
use gopigo_vision::batch::{run_batch, BatchOptions};
use gopigo_vision::{Detector, DetectorConfig, VisionError};

fn args(source: &str) -> BatchOptions {
    BatchOptions {
        source: source.into(),
        draw: None,
        max_frames: None,
    }
}

fn run_detect(opts: &BatchOptions, out: &mut Vec<u8>) -> Result<u64, VisionError> {
    run_with_model(&model(), opts, out)
}

fn run_with_model(
    model: &std::path::Path,
    opts: &BatchOptions,
    out: &mut Vec<u8>,
) -> Result<u64, VisionError> {
    let mut det = Detector::load(model, &DetectorConfig::default())?;
    run_batch(&mut det, opts, out)
}

fn lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn classes(v: &serde_json::Value) -> Vec<String> {
    v["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["class"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn detect_over_a_folder_of_jpegs_and_pngs_writes_json_lines_and_drawings() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("in");
    std::fs::create_dir(&imgs).unwrap();
    std::fs::copy(image("dog"), imgs.join("dog.jpg")).unwrap();
    // A PNG in the folder is detected on too.
    let st = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(image("horses"))
        .arg(imgs.join("horses.png"))
        .status()
        .expect("ffmpeg not installed: run crates/vision/setup.sh");
    assert!(st.success());
    std::fs::write(imgs.join("notes.txt"), "ignored").unwrap();
    let draw = dir.path().join("out");
    let mut a = args(imgs.to_str().unwrap());
    a.draw = Some(draw.clone());
    let mut out = Vec::new();
    assert_eq!(run_detect(&a, &mut out).unwrap(), 2);
    let recs = lines(&out);
    assert_eq!(recs.len(), 2);
    assert!(recs[0]["source"].as_str().unwrap().ends_with("dog.jpg"));
    assert!(
        classes(&recs[0]).contains(&"dog".to_string()),
        "{}",
        recs[0]
    );
    assert!(recs[1]["source"].as_str().unwrap().ends_with("horses.png"));
    assert!(
        classes(&recs[1]).contains(&"horse".to_string()),
        "{}",
        recs[1]
    );
    // annotated copies: same size, and changed (boxes drawn)
    let read = |p: &std::path::Path| jpeg::decode_jpeg(&std::fs::read(p).unwrap(), "t").unwrap();
    let (drawn, orig) = (read(&draw.join("dog.jpg")), read(&image("dog")));
    assert_eq!((drawn.width, drawn.height), (orig.width, orig.height));
    let changed = drawn
        .data
        .chunks_exact(3)
        .zip(orig.data.chunks_exact(3))
        .filter(|(a, b)| a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > 60))
        .count();
    assert!(changed > 1000, "only {changed} pixels differ");
}

#[test]
fn detect_over_a_video_via_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("dog.avi");
    let st = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-loop", "1", "-i"])
        .arg(image("dog"))
        .args(["-frames:v", "4", "-r", "5", "-c:v", "mjpeg", "-q:v", "2"])
        .arg(&video)
        .status()
        .expect("ffmpeg not installed: run crates/vision/setup.sh");
    assert!(st.success());
    let mut a = args(video.to_str().unwrap());
    a.max_frames = Some(3);
    let mut out = Vec::new();
    assert_eq!(run_detect(&a, &mut out).unwrap(), 3);
    let recs = lines(&out);
    assert_eq!(
        recs.iter()
            .map(|r| r["frame"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for r in &recs {
        assert!(classes(r).contains(&"dog".to_string()), "{r}");
    }
    // An unreadable source is an error, not an empty success.
    let mut out = Vec::new();
    assert!(run_detect(
        &args(dir.path().join("missing.mp4").to_str().unwrap()),
        &mut out
    )
    .is_err());
}

#[test]
fn imported_model_file_is_loadable_and_names_classes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    gopigo_vision::write_model(
        &cfg(),
        &weights(),
        Some(&cache().join("model/coco.names")),
        &out,
    )
    .unwrap();
    let meta = gopigo_vision::darknet::read_meta(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(meta.names.len(), 80);
    assert_eq!(meta.names[16], "dog");
    let a = args(image("dog").to_str().unwrap());
    let mut buf = Vec::new();
    run_with_model(&out, &a, &mut buf).unwrap();
    assert!(classes(&lines(&buf)[0]).contains(&"dog".to_string()));
}

#[test]
fn detect_over_an_mjpeg_http_stream() {
    // A Motion-style multipart MJPEG stream on loopback, read through ffmpeg.
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let jpeg = std::fs::read(image("dog")).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = [0u8; 2048];
        let _ = s.read(&mut req).unwrap();
        s.write_all(
            b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n",
        )
        .unwrap();
        for _ in 0..3 {
            let head = format!(
                "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            );
            if s.write_all(head.as_bytes())
                .and_then(|_| s.write_all(&jpeg))
                .and_then(|_| s.write_all(b"\r\n"))
                .is_err()
            {
                break;
            }
        }
    });
    let mut a = args(&url);
    a.max_frames = Some(2);
    let mut out = Vec::new();
    assert_eq!(run_detect(&a, &mut out).unwrap(), 2);
    for r in lines(&out) {
        assert!(classes(&r).contains(&"dog".to_string()), "{r}");
        assert_eq!(r["source"].as_str().unwrap(), url);
    }
    server.join().unwrap();
}
