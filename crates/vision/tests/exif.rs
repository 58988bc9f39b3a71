//! Photos are turned upright by their EXIF orientation before detection.
//! The JPEGs are made at test time by Pillow (in the set-up venv), which
//! also says what the upright picture is (`ImageOps.exif_transpose`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use gopigo_camera::jpeg::{decode_image, decode_png};
use gopigo_vision::exif::{decode_upright, orientation};
use gopigo_vision::int8::agreement;
use gopigo_vision::{Detector, DetectorConfig};

/// Runs Python code in the set-up venv with `args` as sys.argv[1:].
fn pillow(code: &str, args: &[&Path]) {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Saves `src` stored as a camera held with EXIF orientation `o` would
/// store it (so that turning it by `o` gives `src` back), as `dst`.
const STORE_SIDEWAYS: &str = r#"
import sys
from PIL import Image
src, dst, o = sys.argv[1], sys.argv[2], int(sys.argv[3])
img = Image.open(src).convert("RGB")
# The inverse of what exif_transpose applies for each orientation.
undo = {2: Image.FLIP_LEFT_RIGHT, 3: Image.ROTATE_180, 4: Image.FLIP_TOP_BOTTOM,
        5: Image.TRANSPOSE, 6: Image.ROTATE_90, 7: Image.TRANSVERSE, 8: Image.ROTATE_270}
if o in undo:
    img = img.transpose(undo[o])
exif = Image.Exif()
exif[0x0112] = o
img.save(dst, quality=95, exif=exif.tobytes())
"#;

#[test]
fn every_orientation_turns_like_pillow() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.png");
    // An asymmetric picture: a red block top-left, a blue bar along the bottom.
    std::fs::write(
        &src,
        gopigo_camera::jpeg::encode_jpeg(
            &gopigo_vision::RgbImage::from_fn(48, 32, |x, y| match (x, y) {
                (0..=15, 0..=11) => [230, 20, 20],
                (_, 26..) => [20, 20, 230],
                _ => [200, 200, 200],
            }),
            100,
        )
        .unwrap(),
    )
    .unwrap();
    for o in 1..=8u8 {
        let jpg = dir.path().join(format!("o{o}.jpg"));
        let upright = dir.path().join(format!("o{o}.png"));
        pillow(STORE_SIDEWAYS, &[&src, &jpg, Path::new(&o.to_string())]);
        pillow(
            "import sys\nfrom PIL import Image, ImageOps\nImageOps.exif_transpose(Image.open(sys.argv[1])).convert('RGB').save(sys.argv[2])",
            &[&jpg, &upright],
        );
        let bytes = std::fs::read(&jpg).unwrap();
        assert_eq!(orientation(&bytes), Some(o));
        let ours = decode_upright(&bytes, "test").unwrap();
        let theirs = decode_png(&std::fs::read(&upright).unwrap(), "pillow").unwrap();
        assert_eq!((ours.width, ours.height), (48, 32), "orientation {o}");
        assert_eq!((theirs.width, theirs.height), (48, 32), "orientation {o}");
        let diff: f64 = ours
            .data
            .iter()
            .zip(&theirs.data)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
            .sum::<f64>()
            / ours.data.len() as f64;
        // Two JPEG decoders differ by a level or two; a wrong turn by ~100.
        assert!(
            diff < 4.0,
            "orientation {o}: mean |ours - Pillow| = {diff:.1}"
        );
    }
}

#[test]
fn a_sideways_stored_photo_is_detected_upright() {
    let dir = tempfile::tempdir().unwrap();
    let jpg = dir.path().join("dog_rot.jpg");
    pillow(STORE_SIDEWAYS, &[&image("dog"), &jpg, Path::new("6")]);
    let bytes = std::fs::read(&jpg).unwrap();
    let stored = decode_image(&bytes, "dog_rot").unwrap();
    let original = std::fs::read(image("dog")).unwrap();
    let upright = decode_image(&original, "dog").unwrap();
    assert_eq!(
        (stored.width, stored.height),
        (upright.height, upright.width),
        "the file stores the photo sideways"
    );
    let mut det = Detector::load(model(), &DetectorConfig::default()).unwrap();
    let want = det.detect_jpeg(&original).unwrap();
    let got = det.detect_jpeg(&bytes).unwrap();
    let m = agreement(&want, &got, 0.5, 0.8);
    eprintln!("upright dog: {want:?}\nEXIF-turned dog: {got:?}");
    assert!(want.iter().any(|d| d.class == "dog"));
    assert_eq!(
        (m.counts.matched, m.counts.new),
        (m.counts.reference, 0),
        "the EXIF-turned photo gives the upright photo's detections (IoU >= 0.8)"
    );
    // Read sideways, as before orientation was applied, the dog is lost or moved.
    let sideways = det.detect_rgb(&stored).unwrap();
    let m = agreement(&want, &sideways, 0.5, 0.8);
    assert!(m.counts.matched < m.counts.reference, "{sideways:?}");
}
