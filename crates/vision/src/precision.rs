//! Which numbers the default model computes with: the fp32 import of
//! yolov3-tiny, or its int8 quantisation (QDQ, static, made at set-up time
//! by [`crate::int8`]). Everything that loads the default model picks it
//! through [`model_for`], so `gopigo detect --precision`, the demo and the
//! robot's own detector choose the same way.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{cache_dir, ensure_default_model, ResizeMode, VisionError};

/// The default model's precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The imported model as darknet computes it (32-bit floats).
    Fp32,
    /// Weights and activations quantised to 8 bits: faster on CPUs with
    /// integer dot-product instructions, slightly different scores.
    Int8,
}

impl Default for Precision {
    /// int8: on the development machine (AVX2, no VNNI) it is 1.07–1.20×
    /// (416) and 1.23–1.28× (320) as fast as fp32 end to end when the
    /// machine is quiet (1.55× / 1.40× when busy), more on CPUs with int8
    /// dot-product instructions, and finds 95.3 % of
    /// fp32's detections, every disagreement a score within 0.05 of the
    /// threshold (`docs/benchmarks.md`, `tests/int8.rs`).
    fn default() -> Self {
        Precision::Int8
    }
}

impl Precision {
    /// The precision a resize mode implies when none is asked for:
    /// darknet-compatible mode (`ResizeMode::Darknet`) reproduces darknet,
    /// which computes in fp32; the fast mode takes the default.
    pub fn for_resize(resize: ResizeMode) -> Self {
        match resize {
            ResizeMode::Darknet => Precision::Fp32,
            ResizeMode::Fast => Precision::default(),
        }
    }

    /// As the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = VisionError;

    fn from_str(s: &str) -> Result<Self, VisionError> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" | "float" | "f32" => Ok(Precision::Fp32),
            "int8" | "i8" => Ok(Precision::Int8),
            _ => Err(VisionError::Config(format!(
                "precision {s:?}: expected fp32 or int8"
            ))),
        }
    }
}

/// The int8 default model: `cache_dir()/model/yolov3-tiny.int8.onnx`.
pub fn int8_model_path() -> PathBuf {
    cache_dir().join("model").join("yolov3-tiny.int8.onnx")
}

/// The model file to load: `model` as given when there is one (its
/// precision is whatever it holds), else the default yolov3-tiny in
/// `precision` (fp32: imported on first use; int8: made by
/// `crates/vision/setup.sh`, an error naming it when missing).
pub fn model_for(model: Option<&Path>, precision: Precision) -> Result<PathBuf, VisionError> {
    if let Some(m) = model {
        return Ok(m.to_path_buf());
    }
    match precision {
        Precision::Fp32 => ensure_default_model(),
        Precision::Int8 => {
            let path = int8_model_path();
            if path.is_file() {
                Ok(path)
            } else {
                Err(VisionError::Int8ModelMissing { path })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for p in [Precision::Fp32, Precision::Int8] {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
        }
        assert_eq!("INT8".parse::<Precision>().unwrap(), Precision::Int8);
        let e = "int4".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("int4") && e.contains("fp32 or int8"), "{e}");
    }

    #[test]
    fn darknet_mode_computes_in_fp32() {
        assert_eq!(Precision::for_resize(ResizeMode::Darknet), Precision::Fp32);
        assert_eq!(
            Precision::for_resize(ResizeMode::Fast),
            Precision::default()
        );
    }

    #[test]
    fn a_given_model_is_used_as_is() {
        let p = Path::new("/somewhere/my.onnx");
        for prec in [Precision::Fp32, Precision::Int8] {
            assert_eq!(model_for(Some(p), prec).unwrap(), p);
        }
    }
}
