//! Drop-in single-tensor models (YOLOv8 `[1, 4+C, N]`, YOLOv5 `[1, N, 5+C]`)
//! run through ONNX Runtime end to end. The models are built here with our
//! ONNX writer: their output is a constant prediction tensor (plus 0 x the
//! input mean, so the input is consumed), so the expected boxes are known.
#![allow(clippy::unwrap_used)]

mod common;

use gopigo_vision::onnx::*;
use gopigo_vision::{Detector, DetectorConfig, ModelKind, VisionError};
use prost::Message;

fn constant_model(pred_dims: &[i64], pred: &[f32], names: Option<&str>) -> Vec<u8> {
    let nodes = vec![
        NodeProto::new(
            "ReduceMean",
            "mean",
            &["images"],
            &["m"],
            vec![AttributeProto::int("keepdims", 0)],
        ),
        NodeProto::new("Mul", "zero", &["m", "zero_c"], &["z"], vec![]),
        NodeProto::new("Add", "add", &["pred_c", "z"], &["output0"], vec![]),
    ];
    let model = ModelProto {
        ir_version: Some(7),
        producer_name: Some("test".into()),
        graph: Some(GraphProto {
            node: nodes,
            name: Some("g".into()),
            initializer: vec![
                TensorProto::floats("zero_c", &[], &[0.0]),
                TensorProto::floats("pred_c", pred_dims, pred),
            ],
            input: vec![ValueInfoProto::float_tensor(
                "images",
                [1, 3, 64, 64].map(Dimension::fixed).to_vec(),
            )],
            output: vec![ValueInfoProto::float_tensor(
                "output0",
                pred_dims.iter().map(|&d| Dimension::fixed(d)).collect(),
            )],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        metadata_props: names
            .map(|n| {
                vec![StringStringEntryProto {
                    key: Some("names".into()),
                    value: Some(n.into()),
                }]
            })
            .unwrap_or_default(),
        ..Default::default()
    };
    model.encode_to_vec()
}

fn load(bytes: &[u8], config: &DetectorConfig) -> Result<Detector, VisionError> {
    common::cache(); // the runtime
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.onnx");
    std::fs::write(&p, bytes).unwrap();
    Detector::load(&p, config)
}

fn near(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-3
}

#[test]
fn yolov8_layout_end_to_end() {
    // 3 candidates, 2 classes, channel-major: cx, cy, w, h, score0, score1.
    #[rustfmt::skip]
    let pred = [
        32.0, 33.0, 10.0,
        32.0, 32.0, 10.0,
        32.0, 32.0, 4.0,
        16.0, 16.0, 4.0,
        0.9, 0.8, 0.1,   // class 0: the second overlaps the first -> suppressed
        0.1, 0.2, 0.7,   // class 1
    ];
    let mut det = load(
        &constant_model(&[1, 6, 3], &pred, Some("{0: 'cat', 1: 'dog'}")),
        &DetectorConfig::default(),
    )
    .unwrap();
    assert_eq!(det.kind(), &ModelKind::SingleTensor);
    assert_eq!(det.input_size(), (64, 64));
    assert_eq!(det.class_names(), ["cat", "dog"]);
    // 128x64 source: scaled to 64x32 at y offset 16, factor 2 back.
    let found = det
        .detect_rgb(&gopigo_vision::RgbImage::filled(128, 64, [0, 0, 0]))
        .unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    let cat = &found[0];
    assert_eq!((cat.class.as_str(), cat.score), ("cat", 0.9));
    let b = cat.bbox;
    assert!(
        near(b.x, 32.0) && near(b.y, 16.0) && near(b.w, 64.0) && near(b.h, 32.0),
        "{b:?}"
    );
    assert_eq!(found[1].class, "dog");
}

#[test]
fn yolov5_layout_end_to_end() {
    // rows: cx cy w h obj c0 c1
    #[rustfmt::skip]
    let pred = [
        32.0, 32.0, 32.0, 16.0, 0.9, 0.1, 0.9,
        10.0, 10.0, 4.0, 4.0, 0.3, 0.9, 0.1, // 0.27 < 0.5
        50.0, 40.0, 8.0, 8.0, 0.95, 0.9, 0.05,
    ];
    let mut det = load(
        &constant_model(&[1, 3, 7], &pred, None),
        &DetectorConfig::default(),
    )
    .unwrap();
    let found = det
        .detect_rgb(&gopigo_vision::RgbImage::filled(128, 64, [0, 0, 0]))
        .unwrap();
    let got: Vec<(String, f32)> = found.iter().map(|d| (d.class.clone(), d.score)).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "class0");
    assert!(near(got[0].1, 0.855) && near(got[1].1, 0.81), "{got:?}");
}

#[test]
fn fixed_input_size_conflicts_are_config_errors() {
    let bytes = constant_model(&[1, 6, 1], &[1.0; 6], None);
    let e = load(
        &bytes,
        &DetectorConfig {
            input_size: Some(320),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, VisionError::Config(_)), "{e:?}");
    // a model with an output we cannot decode is reported at detection time
    let mut det = load(
        &constant_model(&[1, 2, 2], &[0.0; 4], None),
        &DetectorConfig::default(),
    )
    .unwrap();
    assert!(matches!(
        det.detect_rgb(&gopigo_vision::RgbImage::filled(8, 8, [0, 0, 0])),
        Err(VisionError::Inference(_))
    ));
}
