//! YOLO object detection: Darknet import to ONNX, letterbox, decode, NMS, drawing.
//!
//! Parts:
//! * [`darknet`]: parse a Darknet `.cfg` + `.weights` and write an ONNX model
//!   ([`darknet::import_darknet`]); the YOLO heads' raw outputs are the graph
//!   outputs and the anchors, masks, classes and input size sit in its metadata.
//! * [`preprocess`]: letterboxing, with a SIMD resizer ([`ResizeMode::Fast`])
//!   or darknet's exact arithmetic ([`ResizeMode::Darknet`]).
//! * [`postprocess`]: YOLOv3 head decoding with darknet's threshold and NMS
//!   semantics, YOLOv5/v8 single-tensor decoding, IoU and class-wise NMS.
//! * [`draw`]: boxes and labels on an RGB image.
//! * [`Detector`]: ONNX Runtime (loaded at run time from
//!   `libonnxruntime.so`) running a model end to end on JPEG bytes or RGB images.
//! * [`sources`]: image and folder iteration, JSON-lines output.
//! * [`exif`]: photos turned upright by their EXIF orientation before detection.
//! * [`precision`]: fp32 or int8 default model ([`model_for`] picks the file);
//!   [`int8`] makes the int8 one at set-up time and measures agreement.
//! * [`batch`]: `gopigo detect` over files, folders and ffmpeg streams
//!   ([`batch::run_batch`]); [`write_model`] is `gopigo model import-darknet`.
//!   The binary owns the command line and calls these.
//!
//! Images are the camera crate's: [`RgbImage`], decoded and encoded by
//! [`gopigo_camera::jpeg`] (zune-jpeg in, jpeg-encoder out), so a frame is
//! decoded the same way wherever it is looked at.
//!
//! Everything a model needs at run time is put in [`cache_dir`] by
//! `crates/vision/setup.sh` (from PyPI and Debian packages only).
//!
//! The crate is synchronous; callers that serve streams run it on a
//! blocking thread.

#![warn(missing_docs)]

pub mod batch;
pub mod darknet;
mod detector;
pub mod draw;
pub mod exif;
pub mod int8;
pub mod onnx;
pub mod postprocess;
pub mod precision;
pub mod preprocess;
pub mod sources;

use std::path::{Path, PathBuf};

use gopigo_camera::CameraError;

pub use detector::{Detector, DetectorConfig, ModelKind, RawOutput};
pub use draw::draw_detections;
pub use gopigo_camera::jpeg::RgbImage;
pub use precision::{model_for, Precision};
pub use preprocess::ResizeMode;

/// The command that installs the model, runtime and fixtures.
pub const SETUP_COMMAND: &str = "crates/vision/setup.sh";

/// A box in source-image pixels: top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width in pixels, rightward from `x`.
    pub w: f32,
    /// Height in pixels, downward from `y`.
    pub h: f32,
}

/// One detected object.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    /// Class index in the model's class list.
    pub class_id: usize,
    /// Class name (`class{N}` when the model carries no names).
    pub class: String,
    /// Confidence in 0..1 (objectness x class probability for YOLOv3).
    pub score: f32,
    /// Box in source-image pixels.
    pub bbox: BBox,
}

/// Errors from loading models and running detection.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    /// The ONNX Runtime library is not where we looked.
    #[error("ONNX Runtime library not found at {path}: run `{SETUP_COMMAND}` (or set ORT_DYLIB_PATH to a libonnxruntime.so)")]
    RuntimeMissing {
        /// Where we looked.
        path: PathBuf,
    },
    /// The ONNX Runtime library exists but could not be loaded.
    #[error("cannot load ONNX Runtime from {path}: {message}; run `{SETUP_COMMAND}` to install a compatible libonnxruntime.so")]
    RuntimeLoad {
        /// The `libonnxruntime.so` that failed to load.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// The model file does not exist.
    #[error("model file {path} not found: run `{SETUP_COMMAND}` and import the darknet model (gopigo model import-darknet CFG WEIGHTS -o MODEL.onnx)")]
    ModelMissing {
        /// The `.onnx` file that was asked for.
        path: PathBuf,
    },
    /// The int8 default model has not been made.
    #[error("int8 model {path} not found: run `{SETUP_COMMAND}` (it quantises the imported yolov3-tiny), or use --precision fp32")]
    Int8ModelMissing {
        /// Where it should be.
        path: PathBuf,
    },
    /// The model file is not a model ONNX Runtime can load, or not one we can decode.
    #[error("model {path}: {message}")]
    Model {
        /// The `.onnx` file.
        path: PathBuf,
        /// What is wrong with it (ONNX Runtime's message, or the input,
        /// outputs or metadata that do not fit).
        message: String,
    },
    /// A setting is out of range.
    #[error("detector config: {0}")]
    Config(String),
    /// The image could not be decoded.
    #[error("cannot decode image: {0}")]
    Decode(String),
    /// Inference failed.
    #[error("inference failed: {0}")]
    Inference(String),
    /// Encoding an output image failed.
    #[error("cannot encode JPEG: {0}")]
    Encode(String),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file, folder or program (`ffmpeg`) at fault.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Importing a darknet model failed.
    #[error(transparent)]
    Darknet(#[from] darknet::DarknetError),
}

/// The camera crate's codec errors as detector errors: a frame that does
/// not decode is [`VisionError::Decode`], one that does not encode
/// [`VisionError::Encode`].
impl From<CameraError> for VisionError {
    fn from(e: CameraError) -> Self {
        match e {
            CameraError::Decode { what, reason, .. } if what.is_empty() => {
                VisionError::Decode(reason)
            }
            CameraError::Decode { what, reason, .. } => {
                VisionError::Decode(format!("{what}: {reason}"))
            }
            CameraError::Encode { .. } => VisionError::Encode(e.to_string()),
            other => VisionError::Decode(other.to_string()),
        }
    }
}

/// Where `setup.sh` puts things: `$GOPIGO_CACHE/vision`, default
/// `$HOME/.cache/gopigo/vision`.
pub fn cache_dir() -> PathBuf {
    let base = match std::env::var_os("GOPIGO_CACHE") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".cache/gopigo"),
    };
    base.join("vision")
}

/// The ONNX Runtime library to load: `ORT_DYLIB_PATH` if set, else
/// `cache_dir()/lib/libonnxruntime.so`.
pub fn default_runtime_path() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => cache_dir().join("lib").join("libonnxruntime.so"),
    }
}

/// The default model: `cache_dir()/model/yolov3-tiny.onnx`.
pub fn default_model_path() -> PathBuf {
    cache_dir().join("model").join("yolov3-tiny.onnx")
}

/// Make sure the default model exists, importing it from the darknet cfg,
/// weights and `coco.names` that `setup.sh` fetched if needed. Returns its path.
pub fn ensure_default_model() -> Result<PathBuf, VisionError> {
    let out = default_model_path();
    if out.is_file() {
        return Ok(out);
    }
    let dir = cache_dir().join("model");
    let (cfg, weights, names) = (
        dir.join("yolov3-tiny.cfg"),
        dir.join("yolov3-tiny.weights"),
        dir.join("coco.names"),
    );
    if !cfg.is_file() || !weights.is_file() {
        return Err(VisionError::ModelMissing { path: weights });
    }
    let names = names.is_file().then_some(names.as_path());
    write_model(&cfg, &weights, names, &out)?;
    Ok(out)
}

/// `model` if given, else the default model in the default precision
/// ([`model_for`] with [`Precision::default`]).
pub fn model_or_default(model: Option<&Path>) -> Result<PathBuf, VisionError> {
    model_for(model, Precision::default())
}

/// Imports a darknet `cfg` + `weights` (with the class names in
/// `names_file`, one per line, when given) and writes the ONNX model to
/// `output`, through a temporary file so a reader never sees half a model.
pub fn write_model(
    cfg: &Path,
    weights: &Path,
    names_file: Option<&Path>,
    output: &Path,
) -> Result<(), VisionError> {
    let names = match names_file {
        Some(p) => darknet::read_names(p)?,
        None => Vec::new(),
    };
    let bytes = darknet::import_darknet_with_names(cfg, weights, &names)?;
    let tmp = output.with_extension("onnx.part");
    std::fs::write(&tmp, bytes).map_err(|source| VisionError::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, output).map_err(|source| VisionError::Io {
        path: output.to_path_buf(),
        source,
    })
}

/// The 80 COCO class names, used when an 80-class model carries no names.
pub const COCO_NAMES: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorbike",
    "aeroplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "sofa",
    "pottedplant",
    "bed",
    "diningtable",
    "toilet",
    "tvmonitor",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];
