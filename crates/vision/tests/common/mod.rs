//! Shared helpers for the integration tests: the set-up cache, the model,
//! and the reference scripts.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The images the reference tests run on.
pub const IMAGES: [&str; 8] = [
    "dog", "person", "horses", "eagle", "giraffe", "kite", "bus", "zidane",
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cache, set up by `setup.sh` (run here if something is missing).
/// Panics, naming the command, if it cannot be set up.
pub fn cache() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = gopigo_vision::cache_dir();
        let complete = dir.join("model/yolov3-tiny.weights").is_file()
            && dir.join("lib/libonnxruntime.so").exists()
            && dir.join("images/bus.jpg").is_file()
            && dir.join("images/dog.jpg").is_file()
            && dir.join("py/bin/python").is_file();
        if !complete {
            eprintln!(
                "vision cache incomplete at {}: running crates/vision/setup.sh",
                dir.display()
            );
            let st = Command::new("bash")
                .arg(crate_dir().join("setup.sh"))
                .status();
            assert!(
                matches!(st, Ok(s) if s.success()),
                "crates/vision/setup.sh failed ({st:?}); run it by hand and fix what it reports"
            );
        }
        dir
    })
    .clone()
}

/// The imported default model (imported on first use).
pub fn model() -> PathBuf {
    cache();
    static M: OnceLock<PathBuf> = OnceLock::new();
    M.get_or_init(|| gopigo_vision::ensure_default_model().unwrap())
        .clone()
}

/// The int8 model, made on first use (or when its settings changed) by
/// the same code `setup.sh` runs, in this process.
pub fn int8_model() -> PathBuf {
    cache();
    static M: OnceLock<PathBuf> = OnceLock::new();
    M.get_or_init(|| {
        let has_onnx = Command::new(python())
            .args(["-c", "import onnx"])
            .status()
            .is_ok_and(|s| s.success());
        if !has_onnx {
            // An older venv: setup.sh adds the onnx package (int8 step skipped here).
            let st = Command::new("bash")
                .arg(crate_dir().join("setup.sh"))
                .env("GOPIGO_VISION_NO_INT8", "1")
                .status();
            assert!(
                matches!(st, Ok(s) if s.success()),
                "setup.sh failed: {st:?}"
            );
        }
        gopigo_vision::int8::ensure_int8_model(&python())
            .unwrap_or_else(|e| panic!("cannot make the int8 model: {e}"))
    })
    .clone()
}

pub fn image(name: &str) -> PathBuf {
    cache().join("images").join(format!("{name}.jpg"))
}

pub fn python() -> PathBuf {
    cache().join("py/bin/python")
}

pub fn script(name: &str) -> PathBuf {
    crate_dir().join("tests/py").join(name)
}

pub fn cfg() -> PathBuf {
    cache().join("model/yolov3-tiny.cfg")
}

pub fn weights() -> PathBuf {
    cache().join("model/yolov3-tiny.weights")
}

/// One reference detection (box centre and size in pixels).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RefDet {
    pub class_id: usize,
    pub score: f32,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct RefImage {
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub detections: Vec<RefDet>,
}

/// Run libdarknet (as `darknet detector test` does) on images.
pub fn darknet_reference(images: &[PathBuf], thresh: f32) -> Vec<RefImage> {
    assert!(
        Path::new("/usr/lib/darknet/libdarknet.so").is_file(),
        "Debian's darknet is not installed: run crates/vision/setup.sh (apt-get install darknet)"
    );
    let out = Command::new("python3")
        .arg(script("darknet_ref.py"))
        .arg(cfg())
        .arg(weights())
        .arg(thresh.to_string())
        .args(images)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "darknet_ref.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `name: NN%` lines printed by the real `darknet detector test` binary.
pub fn darknet_cli(image: &Path, thresh: f32) -> Vec<(String, u32)> {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("darknet")
        .current_dir(tmp.path())
        .args(["detector", "test", "/usr/share/darknet/cfg/coco.data"])
        .arg(cfg())
        .arg(weights())
        .arg(image)
        .args(["-out", "pred", "-thresh", &thresh.to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "darknet failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<(String, u32)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, pct) = l.rsplit_once(": ")?;
            Some((name.to_string(), pct.strip_suffix('%')?.parse().ok()?))
        })
        .collect();
    v.sort();
    v
}

/// IoU of a reference box and one of ours (both clamped to the image).
pub fn iou_ref(r: &RefDet, b: &gopigo_vision::BBox, w: u32, h: u32) -> f32 {
    let (wf, hf) = (w as f32, h as f32);
    let (l1, t1) = (
        (r.x - r.w / 2.0).clamp(0.0, wf),
        (r.y - r.h / 2.0).clamp(0.0, hf),
    );
    let (r1, b1) = (
        (r.x + r.w / 2.0).clamp(0.0, wf),
        (r.y + r.h / 2.0).clamp(0.0, hf),
    );
    let (l2, t2, r2, b2) = (b.x, b.y, b.x + b.w, b.y + b.h);
    let iw = (r1.min(r2) - l1.max(l2)).max(0.0);
    let ih = (b1.min(b2) - t1.max(t2)).max(0.0);
    let inter = iw * ih;
    let union = (r1 - l1) * (b1 - t1) + (r2 - l2) * (b2 - t2) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}
