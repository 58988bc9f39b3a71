//! A missing or unloadable ONNX Runtime library is a clear error naming the
//! fix. Its own test binary: ONNX Runtime can be loaded once per process,
//! and nothing here may load the real one first.
#![allow(clippy::unwrap_used)]

use gopigo_vision::{Detector, DetectorConfig, VisionError};

#[test]
fn missing_or_broken_runtime_library() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.onnx");
    std::fs::write(&model, b"placeholder").unwrap();

    let missing = dir.path().join("libonnxruntime.so");
    let config = DetectorConfig {
        runtime_path: Some(missing.clone()),
        ..Default::default()
    };
    let e = Detector::load(&model, &config).unwrap_err();
    assert!(matches!(e, VisionError::RuntimeMissing { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("setup.sh") && msg.contains(&*missing.to_string_lossy()),
        "{msg}"
    );

    let broken = dir.path().join("libbroken.so");
    std::fs::write(&broken, b"not a shared library").unwrap();
    let config = DetectorConfig {
        runtime_path: Some(broken.clone()),
        ..Default::default()
    };
    let e = Detector::load(&model, &config).unwrap_err();
    assert!(matches!(e, VisionError::RuntimeLoad { .. }), "{e:?}");
    assert!(e.to_string().contains("setup.sh"), "{e}");

    // A real shared library that is not ONNX Runtime.
    let libm = std::path::Path::new("/lib/x86_64-linux-gnu/libm.so.6");
    if libm.is_file() {
        let config = DetectorConfig {
            runtime_path: Some(libm.into()),
            ..Default::default()
        };
        let e = Detector::load(&model, &config).unwrap_err();
        assert!(matches!(e, VisionError::RuntimeLoad { .. }), "{e:?}");
    }
}
