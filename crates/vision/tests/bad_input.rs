//! Bad input gives a clear error, never a panic: truncated or non-JPEG
//! bytes, model files that are not models, cfg/weights that do not fit.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use gopigo_vision::darknet::{import_darknet, DarknetError};
use gopigo_vision::{Detector, DetectorConfig, VisionError};

fn detector() -> Detector {
    Detector::load(model(), &DetectorConfig::default()).unwrap()
}

#[test]
fn truncated_and_garbage_jpegs_are_decode_errors() {
    let mut det = detector();
    let jpeg = std::fs::read(image("dog")).unwrap();
    for cut in [10, 1000, jpeg.len() / 2, jpeg.len() - 2] {
        match det.detect_jpeg(&jpeg[..cut]) {
            Err(VisionError::Decode(m)) => assert!(!m.is_empty()),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    for junk in [&b""[..], b"hello", &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0, 0, 0]] {
        assert!(
            matches!(det.detect_jpeg(junk), Err(VisionError::Decode(_))),
            "{junk:?}"
        );
    }
    // and the detector still works afterwards
    assert!(!det.detect_jpeg(&jpeg).unwrap().is_empty());
}

#[test]
fn a_file_that_is_not_a_model_is_a_model_error() {
    cache();
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8]); 3] = [
        ("empty.onnx", b""),
        ("text.onnx", b"this is not a model"),
        ("weights.onnx", &std::fs::read(weights()).unwrap()[..4096]),
    ];
    for (name, bytes) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        match Detector::load(&p, &DetectorConfig::default()) {
            Err(e @ VisionError::Model { .. }) => assert!(e.to_string().contains(name), "{e}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let missing = dir.path().join("missing.onnx");
    let e = Detector::load(&missing, &DetectorConfig::default()).unwrap_err();
    assert!(matches!(e, VisionError::ModelMissing { .. }));
    assert!(e.to_string().contains("setup.sh"), "{e}");
}

#[test]
fn mismatched_cfg_and_weights_are_import_errors() {
    let dir = tempfile::tempdir().unwrap();
    // yolov3-tiny weights with a cfg that has one filter fewer in the first layer
    let cfg_text = std::fs::read_to_string(cfg())
        .unwrap()
        .replacen("filters=16", "filters=15", 1);
    let bad_cfg = dir.path().join("bad.cfg");
    std::fs::write(&bad_cfg, cfg_text).unwrap();
    let e = import_darknet(&bad_cfg, &weights()).unwrap_err();
    assert!(matches!(e, DarknetError::Weights(_)), "{e}");
    assert!(e.to_string().contains("same model"), "{e}");
    // truncated weights
    let short = dir.path().join("short.weights");
    std::fs::write(&short, &std::fs::read(weights()).unwrap()[..100_000]).unwrap();
    let e = import_darknet(&cfg(), &short).unwrap_err();
    assert!(e.to_string().contains("ends inside layer"), "{e}");
    // missing file
    let e = import_darknet(&dir.path().join("nope.cfg"), &weights()).unwrap_err();
    assert!(e.to_string().contains("nope.cfg"), "{e}");
}
