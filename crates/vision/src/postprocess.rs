//! Decoding network outputs into boxes, and non-maximum suppression.
//!
//! * YOLOv3 heads (darknet layout `[1, A*(5+C), H, W]`): [`decode_yolo_head`]
//!   with darknet's threshold semantics, then [`nms_sort_darknet`] (darknet's
//!   `do_nms_sort`) and [`darknet_detections`].
//! * Single-tensor exports: [`decode_v8`] (`[1, 4+C, N]`) and [`decode_v5`]
//!   (`[1, N, 5+C]`), then class-wise [`nms`].
//!
//! All pure functions on slices.

use crate::preprocess::{CenterBox, Letterbox};
use crate::{BBox, Detection};

/// Intersection over union of two centre-form boxes (same unit).
pub fn iou(a: &CenterBox, b: &CenterBox) -> f32 {
    let overlap = |x1: f32, w1: f32, x2: f32, w2: f32| {
        let l = (x1 - w1 / 2.0).max(x2 - w2 / 2.0);
        let r = (x1 + w1 / 2.0).min(x2 + w2 / 2.0);
        r - l
    };
    let w = overlap(a.x, a.w, b.x, b.w);
    let h = overlap(a.y, a.h, b.y, b.h);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    let union = a.w * a.h + b.w * b.h - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// A darknet detection: one box with a probability per class.
#[derive(Debug, Clone, PartialEq)]
pub struct DarknetDet {
    /// Centre-form box relative to the network input (0..1), or to the
    /// source after [`Letterbox::to_source`].
    pub bbox: CenterBox,
    /// Probability that the box holds any object (logistic of the
    /// head's output, 0..1); 0 once NMS has suppressed the box.
    pub objectness: f32,
    /// `objectness * class prob`, zeroed where not above the threshold.
    pub prob: Vec<f32>,
}

fn logistic(x: f32) -> f32 {
    (1.0 / (1.0 + (-(x as f64)).exp())) as f32
}

/// Parameters of one YOLO head.
#[derive(Debug, Clone, Copy)]
pub struct HeadParams<'a> {
    /// Rows of the head's output feature map (cells down the image).
    pub grid_h: usize,
    /// Columns of the head's output feature map (cells across the image).
    pub grid_w: usize,
    /// Anchor indices of this head.
    pub mask: &'a [usize],
    /// All anchors `[w, h]` in input pixels.
    pub anchors: &'a [[f32; 2]],
    /// Number of classes the head predicts (`5 + classes` values per anchor).
    pub classes: usize,
    /// `scale_x_y` (1 for YOLOv3).
    pub scale_x_y: f32,
    /// Network input width.
    pub net_w: usize,
    /// Network input height.
    pub net_h: usize,
}

/// Decode one raw head tensor (`[A*(5+C), H, W]`, logits) as darknet's
/// `get_yolo_detections` does: keep a box when `sigmoid(obj) > thresh`; a
/// class probability is `obj * sigmoid(cls)`, kept when `> thresh`.
/// Returns `None` if the tensor size does not match the parameters.
pub fn decode_yolo_head(data: &[f32], p: &HeadParams, thresh: f32) -> Option<Vec<DarknetDet>> {
    let hw = p.grid_h * p.grid_w;
    let per = 5 + p.classes;
    if data.len() != p.mask.len() * per * hw || hw == 0 {
        return None;
    }
    let mut out = Vec::new();
    for i in 0..hw {
        let (row, col) = (i / p.grid_w, i % p.grid_w);
        for (n, &a) in p.mask.iter().enumerate() {
            let anchor = p.anchors.get(a)?;
            let at = |entry: usize| data[(n * per + entry) * hw + i];
            let objectness = logistic(at(4));
            if objectness <= thresh {
                continue;
            }
            let s = p.scale_x_y;
            let bx = logistic(at(0)) * s - (s - 1.0) / 2.0;
            let by = logistic(at(1)) * s - (s - 1.0) / 2.0;
            let bbox = CenterBox {
                x: (col as f32 + bx) / p.grid_w as f32,
                y: (row as f32 + by) / p.grid_h as f32,
                w: ((at(2) as f64).exp() * anchor[0] as f64 / p.net_w as f64) as f32,
                h: ((at(3) as f64).exp() * anchor[1] as f64 / p.net_h as f64) as f32,
            };
            let prob = (0..p.classes)
                .map(|j| {
                    let pr = objectness * logistic(at(5 + j));
                    if pr > thresh {
                        pr
                    } else {
                        0.0
                    }
                })
                .collect();
            out.push(DarknetDet {
                bbox,
                objectness,
                prob,
            });
        }
    }
    Some(out)
}

/// Darknet's `do_nms_sort`: drop boxes with zero objectness, then for each
/// class sort by that class's probability (descending) and zero the class
/// in every later box overlapping a kept one by IoU > `thresh`.
pub fn nms_sort_darknet(dets: &mut Vec<DarknetDet>, classes: usize, thresh: f32) {
    dets.retain(|d| d.objectness != 0.0);
    for k in 0..classes {
        dets.sort_by(|a, b| {
            let pa = a.prob.get(k).copied().unwrap_or(0.0);
            let pb = b.prob.get(k).copied().unwrap_or(0.0);
            pb.total_cmp(&pa)
        });
        for i in 0..dets.len() {
            if dets[i].prob.get(k).copied().unwrap_or(0.0) == 0.0 {
                continue;
            }
            let a = dets[i].bbox;
            for other in dets.iter_mut().skip(i + 1) {
                if iou(&a, &other.bbox) > thresh {
                    if let Some(p) = other.prob.get_mut(k) {
                        *p = 0.0;
                    }
                }
            }
        }
    }
}

/// Turn source-relative darknet detections into [`Detection`]s in source
/// pixels: one per (box, class) with probability above `thresh`, the box
/// clamped to the image, best score first.
pub fn darknet_detections(
    dets: &[DarknetDet],
    thresh: f32,
    src_w: u32,
    src_h: u32,
    names: &[String],
) -> Vec<Detection> {
    let mut out = Vec::new();
    for d in dets {
        for (j, &p) in d.prob.iter().enumerate() {
            if p > thresh {
                out.push(Detection {
                    class_id: j,
                    class: class_name(names, j),
                    score: p,
                    bbox: to_pixels(&d.bbox, src_w, src_h),
                });
            }
        }
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

/// Name of class `id`, or `class{id}` when unknown.
pub fn class_name(names: &[String], id: usize) -> String {
    names
        .get(id)
        .cloned()
        .unwrap_or_else(|| format!("class{id}"))
}

/// Source-relative centre box to a clamped pixel box.
pub fn to_pixels(b: &CenterBox, src_w: u32, src_h: u32) -> BBox {
    let (w, h) = (src_w as f32, src_h as f32);
    let left = ((b.x - b.w / 2.0) * w).clamp(0.0, w);
    let right = ((b.x + b.w / 2.0) * w).clamp(0.0, w);
    let top = ((b.y - b.h / 2.0) * h).clamp(0.0, h);
    let bottom = ((b.y + b.h / 2.0) * h).clamp(0.0, h);
    BBox {
        x: left,
        y: top,
        w: right - left,
        h: bottom - top,
    }
}

/// A candidate from a single-tensor model, box in network-input pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Centre-form box in input pixels.
    pub bbox: CenterBox,
    /// Index into the model's class-name list.
    pub class_id: usize,
    /// Confidence, 0..1: the best class's score (YOLOv8) or
    /// `objectness * class score` (YOLOv5); above the threshold.
    pub score: f32,
}

/// Decode a YOLOv8-style `[1, 4+C, N]` output (already-activated class
/// scores, no objectness): keep each anchor's best class if `> conf`.
pub fn decode_v8(data: &[f32], channels: usize, n: usize, conf: f32) -> Option<Vec<Candidate>> {
    if channels < 5 || data.len() != channels * n {
        return None;
    }
    let classes = channels - 4;
    let mut out = Vec::new();
    for i in 0..n {
        let (mut best, mut score) = (0, f32::MIN);
        for c in 0..classes {
            let s = data[(4 + c) * n + i];
            if s > score {
                best = c;
                score = s;
            }
        }
        if score > conf {
            out.push(Candidate {
                bbox: CenterBox {
                    x: data[i],
                    y: data[n + i],
                    w: data[2 * n + i],
                    h: data[3 * n + i],
                },
                class_id: best,
                score,
            });
        }
    }
    Some(out)
}

/// Decode a YOLOv5-style `[1, N, 5+C]` output: score is
/// `objectness * class score` for the best class, kept if `> conf`.
pub fn decode_v5(data: &[f32], n: usize, per: usize, conf: f32) -> Option<Vec<Candidate>> {
    if per < 6 || data.len() != n * per {
        return None;
    }
    let mut out = Vec::new();
    for row in data.chunks_exact(per) {
        let obj = row[4];
        if obj <= conf {
            continue;
        }
        let (mut best, mut cls) = (0, f32::MIN);
        for (c, &s) in row[5..].iter().enumerate() {
            if s > cls {
                best = c;
                cls = s;
            }
        }
        let score = obj * cls;
        if score > conf {
            out.push(Candidate {
                bbox: CenterBox {
                    x: row[0],
                    y: row[1],
                    w: row[2],
                    h: row[3],
                },
                class_id: best,
                score,
            });
        }
    }
    Some(out)
}

/// Class-wise greedy NMS: best score first, drop a candidate overlapping a
/// kept one of the same class by IoU > `thresh`.
pub fn nms(mut cands: Vec<Candidate>, thresh: f32) -> Vec<Candidate> {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Candidate> = Vec::new();
    for c in cands {
        if kept
            .iter()
            .all(|k| k.class_id != c.class_id || iou(&k.bbox, &c.bbox) <= thresh)
        {
            kept.push(c);
        }
    }
    kept
}

/// Map kept candidates (input pixels) to [`Detection`]s in source pixels.
pub fn candidates_to_detections(
    cands: &[Candidate],
    lb: &Letterbox,
    names: &[String],
) -> Vec<Detection> {
    cands
        .iter()
        .map(|c| {
            let rel = CenterBox {
                x: c.bbox.x / lb.net_w as f32,
                y: c.bbox.y / lb.net_h as f32,
                w: c.bbox.w / lb.net_w as f32,
                h: c.bbox.h / lb.net_h as f32,
            };
            Detection {
                class_id: c.class_id,
                class: class_name(names, c.class_id),
                score: c.score,
                bbox: to_pixels(&lb.to_source(rel), lb.src_w, lb.src_h),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cb(x: f32, y: f32, w: f32, h: f32) -> CenterBox {
        CenterBox { x, y, w, h }
    }

    #[test]
    fn iou_table() {
        let cases = [
            (cb(0.5, 0.5, 1.0, 1.0), cb(0.5, 0.5, 1.0, 1.0), 1.0),
            (cb(0.0, 0.0, 2.0, 2.0), cb(1.0, 0.0, 2.0, 2.0), 2.0 / 6.0),
            (cb(0.0, 0.0, 1.0, 1.0), cb(5.0, 5.0, 1.0, 1.0), 0.0),
            (cb(0.0, 0.0, 1.0, 1.0), cb(1.0, 0.0, 1.0, 1.0), 0.0), // touching
            (cb(0.0, 0.0, 4.0, 4.0), cb(0.0, 0.0, 2.0, 2.0), 0.25),
            (cb(0.0, 0.0, 0.0, 0.0), cb(0.0, 0.0, 0.0, 0.0), 0.0),
        ];
        for (a, b, want) in cases {
            let got = iou(&a, &b);
            assert!((got - want).abs() < 1e-6, "{a:?} {b:?}: {got} != {want}");
            assert!((iou(&b, &a) - got).abs() < 1e-6);
        }
    }

    fn logit(p: f32) -> f32 {
        (p / (1.0 - p)).ln()
    }

    /// A 2x2 grid, 2 anchors, 2 classes; one confident box at cell (row 1, col 0), anchor 1.
    fn head() -> Vec<f32> {
        let (hw, per) = (4, 7);
        let mut d = vec![-10.0f32; 2 * per * hw];
        let i = 2; // row 1, col 0
        let n = 1;
        let set = |d: &mut Vec<f32>, e: usize, v: f32| d[(n * per + e) * hw + i] = v;
        set(&mut d, 0, 0.0); // x: sigmoid 0.5
        set(&mut d, 1, logit(0.25));
        set(&mut d, 2, 0.0); // w = anchor
        set(&mut d, 3, 2f32.ln()); // h = 2 * anchor
        set(&mut d, 4, logit(0.9));
        set(&mut d, 5, logit(0.5)); // class 0: 0.45
        set(&mut d, 6, logit(0.8)); // class 1: 0.72
        d
    }

    #[test]
    fn decode_head_like_darknet() {
        let anchors = [[10.0, 20.0], [32.0, 16.0]];
        let p = HeadParams {
            grid_h: 2,
            grid_w: 2,
            mask: &[0, 1],
            anchors: &anchors,
            classes: 2,
            scale_x_y: 1.0,
            net_w: 64,
            net_h: 64,
        };
        let dets = decode_yolo_head(&head(), &p, 0.5).unwrap();
        assert_eq!(dets.len(), 1);
        let d = &dets[0];
        assert!((d.objectness - 0.9).abs() < 1e-5);
        assert!((d.bbox.x - 0.25).abs() < 1e-6, "{:?}", d.bbox);
        assert!((d.bbox.y - 0.625).abs() < 1e-6);
        assert!((d.bbox.w - 0.5).abs() < 1e-6);
        assert!((d.bbox.h - 0.5).abs() < 1e-6);
        // class 0: 0.45 is not above 0.5, zeroed; class 1: 0.72 kept.
        assert_eq!(d.prob[0], 0.0);
        assert!((d.prob[1] - 0.72).abs() < 1e-5);
        // at a lower threshold class 0 survives
        let dets = decode_yolo_head(&head(), &p, 0.3).unwrap();
        assert!((dets[0].prob[0] - 0.45).abs() < 1e-5);
        // wrong size
        assert!(decode_yolo_head(&head()[1..], &p, 0.5).is_none());
    }

    fn det(x: f32, probs: &[f32]) -> DarknetDet {
        DarknetDet {
            bbox: cb(x, 0.5, 0.2, 0.2),
            objectness: 1.0,
            prob: probs.to_vec(),
        }
    }

    #[test]
    fn darknet_nms_is_per_class() {
        let mut dets = vec![
            det(0.50, &[0.6, 0.0]),
            det(0.51, &[0.9, 0.7]), // overlaps the first; best in class 0
            det(0.90, &[0.8, 0.0]), // far away
            DarknetDet {
                objectness: 0.0,
                ..det(0.5, &[0.0, 0.0])
            },
        ];
        nms_sort_darknet(&mut dets, 2, 0.45);
        assert_eq!(dets.len(), 3, "zero-objectness box dropped");
        let out = darknet_detections(&dets, 0.5, 100, 100, &["a".into(), "b".into()]);
        let got: Vec<(String, f32)> = out.iter().map(|d| (d.class.clone(), d.score)).collect();
        assert_eq!(
            got,
            vec![("a".into(), 0.9), ("a".into(), 0.8), ("b".into(), 0.7)]
        );
        assert!((out[0].bbox.x - 41.0).abs() < 1e-3 && (out[0].bbox.w - 20.0).abs() < 1e-3);
    }

    #[test]
    fn pixel_boxes_are_clamped() {
        let b = to_pixels(&cb(0.05, 0.5, 0.2, 2.0), 200, 100);
        let want = [0.0, 0.0, 30.0, 100.0];
        for (g, w) in [b.x, b.y, b.w, b.h].into_iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "{b:?}");
        }
    }

    #[test]
    fn v8_and_v5_layouts() {
        // v8: 2 classes, 3 anchors, channel-major.
        #[rustfmt::skip]
        let v8 = [
            10.0, 20.0, 30.0, // x
            10.0, 20.0, 30.0, // y
            4.0, 4.0, 4.0,    // w
            4.0, 4.0, 4.0,    // h
            0.9, 0.1, 0.1,    // class 0
            0.05, 0.6, 0.2,   // class 1
        ];
        let c = decode_v8(&v8, 6, 3, 0.25).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].class_id, c[0].score), (0, 0.9));
        assert_eq!((c[1].class_id, c[1].bbox.x), (1, 20.0));
        assert!(decode_v8(&v8, 6, 4, 0.25).is_none());
        // v5: rows of x y w h obj c0 c1
        let v5 = [
            10.0, 10.0, 4.0, 4.0, 0.9, 0.2, 0.8, 20.0, 20.0, 4.0, 4.0, 0.2, 0.9, 0.1,
        ];
        let c = decode_v5(&v5, 2, 7, 0.25).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].class_id, 1);
        assert!((c[0].score - 0.72).abs() < 1e-6);
    }

    #[test]
    fn classwise_nms_keeps_other_classes() {
        let cand = |x: f32, class_id: usize, score: f32| Candidate {
            bbox: cb(x, 0.0, 10.0, 10.0),
            class_id,
            score,
        };
        let kept = nms(
            vec![
                cand(0.0, 0, 0.5),
                cand(1.0, 0, 0.9),
                cand(1.0, 1, 0.4),
                cand(50.0, 0, 0.3),
            ],
            0.45,
        );
        let got: Vec<(usize, f32)> = kept.iter().map(|c| (c.class_id, c.score)).collect();
        assert_eq!(got, vec![(0, 0.9), (1, 0.4), (0, 0.3)]);
    }

    #[test]
    fn candidates_map_through_the_letterbox() {
        let lb = Letterbox::new(200, 100, 64, 64); // new 64x32, offset y 16
        let c = Candidate {
            bbox: cb(32.0, 32.0, 32.0, 16.0),
            class_id: 0,
            score: 1.0,
        };
        let d = &candidates_to_detections(&[c], &lb, &[])[0];
        assert_eq!(d.class, "class0");
        let want = BBox {
            x: 50.0,
            y: 25.0,
            w: 100.0,
            h: 50.0,
        };
        for (a, b) in [
            (d.bbox.x, want.x),
            (d.bbox.y, want.y),
            (d.bbox.w, want.w),
            (d.bbox.h, want.h),
        ] {
            assert!((a - b).abs() < 1e-3, "{:?}", d.bbox);
        }
    }
}
