//! The int8 model: static QDQ quantisation of the imported yolov3-tiny,
//! made once at set-up time (`crates/vision/setup.sh` runs the
//! `quantize_int8` example, which calls [`ensure_int8_model`]).
//!
//! Calibration inputs come from our own pre-processing (the same
//! [`letterbox_fast`] the detector runs) on the reference photos and on
//! frames of the simulated camera ([`gopigo_camera::sim`]) looking around
//! its default room; they are written as `.npy` files and handed to ONNX
//! Runtime's quantisation tool (`onnxruntime.quantization.quantize_static`,
//! `py/quantize_int8.py`, run in the set-up venv). Why that tool rather
//! than our importer: it places QuantizeLinear/DequantizeLinear pairs in
//! exactly the patterns ONNX Runtime's CPU provider fuses into integer
//! kernels, and brings calibration methods, per-channel weights and node
//! exclusion; the runtime path stays ours (the `.onnx` it writes is loaded
//! by [`crate::Detector`] like any other).
//!
//! [`agreement`] compares two detectors' outputs (the int8 check of
//! `tests/int8.rs` and the benchmark use it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use gopigo_camera::jpeg::RgbImage;
use gopigo_camera::sim::{Pose, SimCamera};

use crate::preprocess::{letterbox_fast, FastResizer};
use crate::{cache_dir, ensure_default_model, BBox, Detection, VisionError};

/// The quantisation script, written next to the calibration set when run.
const SCRIPT: &str = include_str!("../py/quantize_int8.py");

/// Bumped when the calibration set changes; with the script's text it
/// names the settings an int8 model was made with (`*.int8.stamp`).
const CALIBRATION_VERSION: &str = "2026-11-29 photos+sim24 416";

/// The reference photos (in `cache_dir()/images`) used for calibration.
pub const CALIBRATION_PHOTOS: [&str; 8] = [
    "dog", "person", "horses", "eagle", "giraffe", "kite", "bus", "zidane",
];

/// Network sizes the calibration set is letterboxed to (one: the
/// percentile calibrator needs every input the same shape; the ranges
/// serve 320 as well, see `tests/int8.rs`).
pub const CALIBRATION_SIZES: [u32; 1] = [416];

/// Robot poses (mm, mm, degrees) for calibration frames: the room's
/// centre facing every 30°, and four off-centre spots facing a wall.
fn calibration_poses() -> Vec<Pose> {
    let mut v: Vec<(f64, f64, f64)> = (0..12).map(|i| (0.0, 0.0, 30.0 * i as f64)).collect();
    v.extend([
        (900.0, 0.0, 0.0),
        (-900.0, 0.0, 180.0),
        (0.0, 600.0, 90.0),
        (0.0, -600.0, 270.0),
        (600.0, 500.0, 20.0),
        (-600.0, -500.0, 200.0),
        (-700.0, 600.0, 120.0),
        (700.0, -600.0, 300.0),
        (1200.0, 300.0, 350.0),
        (-1200.0, -300.0, 170.0),
        (300.0, 900.0, 80.0),
        (-300.0, -900.0, 260.0),
    ]);
    v.into_iter().map(pose).collect()
}

/// Robot poses for frames the calibration never saw (the agreement
/// check's held-out set): headings between the calibration ones, other
/// spots in the room.
pub fn held_out_poses() -> Vec<Pose> {
    let mut v: Vec<(f64, f64, f64)> = (0..12)
        .map(|i| (150.0, -100.0, 15.0 + 30.0 * i as f64))
        .collect();
    v.extend([
        (500.0, 0.0, 5.0),
        (-500.0, 200.0, 185.0),
        (200.0, 400.0, 95.0),
        (-200.0, -400.0, 275.0),
        (1000.0, -200.0, 10.0),
        (-1000.0, 200.0, 190.0),
        (400.0, 700.0, 100.0),
        (-400.0, -700.0, 280.0),
    ]);
    v.into_iter().map(pose).collect()
}

fn pose((x_mm, y_mm, deg): (f64, f64, f64)) -> Pose {
    Pose {
        x_mm,
        y_mm,
        heading_rad: deg.to_radians(),
    }
}

/// Frames of the simulated camera (640×480, its default room with the
/// photos from `photo_dir`) from each pose, named `sim_XX`.
pub fn sim_frames(
    photo_dir: &Path,
    poses: &[Pose],
) -> Result<Vec<(String, RgbImage)>, VisionError> {
    let cam = SimCamera::default_room(Some(photo_dir.to_path_buf()), Arc::new(Pose::default))
        .map_err(|e| VisionError::Decode(format!("simulated camera: {e}")))?;
    Ok(poses
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("sim_{i:02}"), cam.render(*p)))
        .collect())
}

/// The calibration images: the reference photos, upright, and the
/// simulated camera's frames from [`calibration_poses`].
pub fn calibration_images(images_dir: &Path) -> Result<Vec<(String, RgbImage)>, VisionError> {
    let mut out = Vec::new();
    for name in CALIBRATION_PHOTOS {
        let path = images_dir.join(format!("{name}.jpg"));
        let bytes = std::fs::read(&path).map_err(|source| VisionError::Io {
            path: path.clone(),
            source,
        })?;
        out.push((
            name.to_string(),
            crate::exif::decode_upright(&bytes, &path.display().to_string())?,
        ));
    }
    out.extend(sim_frames(images_dir, &calibration_poses())?);
    Ok(out)
}

/// A `.npy` file (format 1.0) holding `data` as little-endian f32 with `shape`.
pub fn npy_bytes(data: &[f32], shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    // Magic (6) + version (2) + length (2) + header + '\n', padded to 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Letterboxes each image at each size (as the detector does) into
/// `dir/{name}_{size}.npy`, shape `[1, 3, size, size]`. Returns the count.
pub fn write_calibration_set(
    images: &[(String, RgbImage)],
    sizes: &[u32],
    dir: &Path,
) -> Result<usize, VisionError> {
    std::fs::create_dir_all(dir).map_err(|source| VisionError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let (mut resizer, mut buf, mut n) = (FastResizer::default(), Vec::new(), 0);
    for (name, img) in images {
        for &s in sizes {
            letterbox_fast(img, s, s, &mut resizer, &mut buf);
            let path = dir.join(format!("{name}_{s}.npy"));
            let bytes = npy_bytes(&buf, &[1, 3, s as usize, s as usize]);
            std::fs::write(&path, bytes).map_err(|source| VisionError::Io { path, source })?;
            n += 1;
        }
    }
    Ok(n)
}

/// What an int8 model was made with: the calibration version and a hash
/// of the quantisation script (FNV-1a), one line.
pub fn settings_id() -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in SCRIPT.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{CALIBRATION_VERSION}; script {h:016x}")
}

/// The stamp file beside an int8 model, holding [`settings_id`].
fn stamp_path(model: &Path) -> PathBuf {
    model.with_extension("stamp")
}

/// Makes the int8 default model unless one made with the current
/// settings is there: imports the fp32 model if needed, writes the
/// calibration set to a temporary folder and runs ONNX Runtime's
/// quantiser with `python` (a Python with `onnxruntime` and `onnx`).
/// Returns the model's path.
pub fn ensure_int8_model(python: &Path) -> Result<PathBuf, VisionError> {
    let out = crate::precision::int8_model_path();
    let stamp = stamp_path(&out);
    let id = settings_id();
    if out.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == id) {
        return Ok(out);
    }
    let fp32 = ensure_default_model()?;
    let work = cache_dir().join("calib");
    let _ = std::fs::remove_dir_all(&work);
    let n = write_calibration_set(
        &calibration_images(&cache_dir().join("images"))?,
        &CALIBRATION_SIZES,
        &work,
    )?;
    tracing::info!(inputs = n, dir = %work.display(), "calibration set written");
    run_quantizer(python, &fp32, &work, &out)?;
    let _ = std::fs::remove_dir_all(&work);
    std::fs::write(&stamp, format!("{id}\n")).map_err(|source| VisionError::Io {
        path: stamp,
        source,
    })?;
    Ok(out)
}

/// Runs `py/quantize_int8.py FP32 CALIB_DIR OUT` with `python`.
fn run_quantizer(python: &Path, fp32: &Path, calib: &Path, out: &Path) -> Result<(), VisionError> {
    let script = calib.join("quantize_int8.py");
    std::fs::write(&script, SCRIPT).map_err(|source| VisionError::Io {
        path: script.clone(),
        source,
    })?;
    let status = Command::new(python)
        .arg(&script)
        .arg(fp32)
        .arg(calib)
        .arg(out)
        .status()
        .map_err(|source| VisionError::Io {
            path: python.to_path_buf(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(VisionError::Model {
            path: out.to_path_buf(),
            message: format!(
                "quantisation failed ({status}); run {} for the venv with onnxruntime and onnx",
                crate::SETUP_COMMAND
            ),
        })
    }
}

/// How well one detector's output (`candidate`, e.g. int8) agrees with
/// another's (`reference`, e.g. fp32), over the detections scoring at
/// least the threshold [`agreement`] was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Agreement {
    /// Reference detections.
    pub reference: usize,
    /// Reference detections matched by a candidate one (same class,
    /// IoU at least the threshold, each candidate used once).
    pub matched: usize,
    /// Candidate detections matching no reference detection.
    pub new: usize,
}

impl Agreement {
    /// Adds another image's counts.
    pub fn add(&mut self, o: Agreement) {
        self.reference += o.reference;
        self.matched += o.matched;
        self.new += o.new;
    }

    /// Matched share of the reference detections (1 when there are none).
    pub fn matched_share(&self) -> f64 {
        if self.reference == 0 {
            1.0
        } else {
            self.matched as f64 / self.reference as f64
        }
    }
}

/// IoU of two pixel boxes.
pub fn bbox_iou(a: &BBox, b: &BBox) -> f32 {
    let iw = ((a.x + a.w).min(b.x + b.w) - a.x.max(b.x)).max(0.0);
    let ih = ((a.y + a.h).min(b.y + b.h) - a.y.max(b.y)).max(0.0);
    let inter = iw * ih;
    let union = a.w * a.h + b.w * b.h - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Which detections [`agreement`] paired up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matching {
    /// The counts.
    pub counts: Agreement,
    /// Per reference detection: counted and matched.
    pub reference_matched: Vec<bool>,
    /// Per candidate detection: counted and matched.
    pub candidate_matched: Vec<bool>,
}

/// Matches `reference` detections scoring at least `min_score` to
/// `candidate` ones scoring at least `min_score`: strongest reference
/// first, each to the unused candidate of the same class with the highest
/// IoU, if that is at least `min_iou`.
pub fn agreement(
    reference: &[Detection],
    candidate: &[Detection],
    min_score: f32,
    min_iou: f32,
) -> Matching {
    let mut order: Vec<usize> = (0..reference.len())
        .filter(|&i| reference[i].score >= min_score)
        .collect();
    order.sort_by(|&a, &b| reference[b].score.total_cmp(&reference[a].score));
    let mut m = Matching {
        counts: Agreement {
            reference: order.len(),
            ..Default::default()
        },
        reference_matched: vec![false; reference.len()],
        candidate_matched: vec![false; candidate.len()],
    };
    for r in order {
        let best = candidate
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                !m.candidate_matched[*i]
                    && c.score >= min_score
                    && c.class_id == reference[r].class_id
            })
            .map(|(i, c)| (i, bbox_iou(&reference[r].bbox, &c.bbox)))
            .max_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((i, iou)) = best {
            if iou >= min_iou {
                m.candidate_matched[i] = true;
                m.reference_matched[r] = true;
                m.counts.matched += 1;
            }
        }
    }
    m.counts.new = candidate
        .iter()
        .zip(&m.candidate_matched)
        .filter(|(c, &hit)| !hit && c.score >= min_score)
        .count();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class_id: usize, score: f32, x: f32) -> Detection {
        Detection {
            class_id,
            class: format!("c{class_id}"),
            score,
            bbox: BBox {
                x,
                y: 0.0,
                w: 10.0,
                h: 10.0,
            },
        }
    }

    #[test]
    fn agreement_counts_matches_misses_and_new_ones() {
        let fp32 = [
            det(0, 0.9, 0.0),
            det(1, 0.8, 50.0),
            det(2, 0.6, 100.0),
            det(3, 0.3, 0.0),
        ];
        let int8 = [
            det(0, 0.85, 1.0),  // matches class 0 (IoU 0.82)
            det(1, 0.7, 56.0),  // class 1 but IoU 0.25: no match, and new
            det(2, 0.4, 100.0), // below the threshold: fp32's class 2 is missed
            det(4, 0.55, 0.0),  // a class fp32 did not report: new
        ];
        let m = agreement(&fp32, &int8, 0.5, 0.5);
        let a = m.counts;
        assert_eq!(
            a,
            Agreement {
                reference: 3,
                matched: 1,
                new: 2
            }
        );
        assert_eq!(m.candidate_matched, [true, false, false, false]);
        assert_eq!(m.reference_matched, [true, false, false, false]);
        assert!((a.matched_share() - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn one_candidate_matches_one_reference() {
        let fp32 = [det(0, 0.9, 0.0), det(0, 0.8, 1.0)];
        let int8 = [det(0, 0.9, 0.5)];
        let a = agreement(&fp32, &int8, 0.5, 0.5).counts;
        assert_eq!((a.reference, a.matched, a.new), (2, 1, 0));
        assert_eq!(Agreement::default().matched_share(), 1.0);
    }

    #[test]
    fn npy_header_is_numpy_v1() {
        let b = npy_bytes(&[1.0, 2.0], &[1, 2]);
        assert!(b.starts_with(b"\x93NUMPY\x01\x00"));
        let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hl) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
        assert!(header.contains("'shape': (1, 2,)") && header.ends_with('\n'));
        assert_eq!(
            &b[10 + hl..],
            [1f32.to_le_bytes(), 2f32.to_le_bytes()].concat()
        );
    }

    #[test]
    fn calibration_and_held_out_poses_differ() {
        let cal = calibration_poses();
        for p in held_out_poses() {
            assert!(!cal.contains(&p), "{p:?} is also a calibration pose");
        }
    }
}
