//! The detector: ONNX Runtime session plus pre- and post-processing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gopigo_camera::jpeg::RgbImage;
use ort::environment::Environment;
use ort::session::{Session, SessionOutputs};
use ort::value::TensorRef;

use crate::darknet::{YoloMeta, META_KEY};
use crate::postprocess::{
    candidates_to_detections, darknet_detections, decode_v5, decode_v8, decode_yolo_head, nms,
    nms_sort_darknet, HeadParams,
};
use crate::preprocess::{letterbox_darknet, letterbox_fast, FastResizer, Letterbox, ResizeMode};
use crate::{default_runtime_path, Detection, VisionError, COCO_NAMES};

/// Detector settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Square network input size in pixels (multiple of 32). `None`: the
    /// model's own (the cfg's for imported darknet models, 640 for
    /// dynamic single-tensor models).
    pub input_size: Option<u32>,
    /// Keep detections scoring above this (darknet's `-thresh`).
    pub conf_threshold: f32,
    /// IoU above which NMS suppresses a box of the same class.
    pub nms_threshold: f32,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
    /// Whether ONNX Runtime's intra-op threads spin while they wait for
    /// work (its default: `true`). Spinning saves a wake-up per operator but
    /// burns the CPU that other sessions in the process (the fleet
    /// detector's workers) could use.
    pub intra_op_spinning: bool,
    /// Letterbox resizer.
    pub resize: ResizeMode,
    /// `libonnxruntime.so` to load; `None`: [`default_runtime_path`].
    /// ONNX Runtime is loaded once per process: the first successful load
    /// wins and later paths are ignored.
    pub runtime_path: Option<PathBuf>,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            input_size: None,
            conf_threshold: crate::preprocess::DEFAULT_CONF_THRESHOLD,
            nms_threshold: 0.45,
            threads: 2,
            intra_op_spinning: true,
            resize: ResizeMode::Fast,
            runtime_path: None,
        }
    }
}

/// One raw output tensor, from [`Detector::raw_outputs`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutput {
    /// Graph output name.
    pub name: String,
    /// Dimensions as the model reports them, e.g. `[1, 84, 8400]`.
    pub shape: Vec<i64>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// Which output layout the model has.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelKind {
    /// Imported darknet YOLO: raw heads plus metadata.
    Darknet(YoloMeta),
    /// One output tensor, `[1, 4+C, N]` (YOLOv8) or `[1, N, 5+C]` (YOLOv5),
    /// told apart by shape at run time.
    SingleTensor,
}

/// A loaded model ready to detect.
pub struct Detector {
    session: Session,
    input_name: String,
    output_names: Vec<String>,
    kind: ModelKind,
    names: Vec<String>,
    net_w: u32,
    net_h: u32,
    config: DetectorConfig,
    model_path: PathBuf,
    input: Vec<f32>,
    fast: FastResizer,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("model", &self.model_path)
            .field("input", &(self.net_w, self.net_h))
            .field("classes", &self.names.len())
            .field("config", &self.config)
            .finish()
    }
}

static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

/// Load ONNX Runtime once per process from `path`.
fn environment(path: &Path) -> Result<Environment, VisionError> {
    let mut guard = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = guard.as_ref() {
        return Ok(env.clone());
    }
    if !path.is_file() {
        return Err(VisionError::RuntimeMissing {
            path: path.to_path_buf(),
        });
    }
    let builder = ort::init_from(path).map_err(|e| VisionError::RuntimeLoad {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let env = builder
        .with_name("gopigo-vision")
        .build()
        .map_err(|e| VisionError::RuntimeLoad {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    *guard = Some(env.clone());
    Ok(env)
}

/// Parse ultralytics' `names` metadata: `{0: 'person', 1: 'bicycle'}`.
pub(crate) fn parse_names_dict(s: &str) -> Vec<String> {
    let inner = s.trim().trim_start_matches('{').trim_end_matches('}');
    let mut pairs: Vec<(usize, String)> = inner
        .split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once(':')?;
            let id = k.trim().parse::<usize>().ok()?;
            Some((
                id,
                v.trim().trim_matches(|c| c == '\'' || c == '"').to_string(),
            ))
        })
        .collect();
    pairs.sort_by_key(|p| p.0);
    if pairs.iter().enumerate().all(|(i, p)| p.0 == i) {
        pairs.into_iter().map(|p| p.1).collect()
    } else {
        Vec::new()
    }
}

impl DetectorConfig {
    /// Darknet-compatible settings: darknet's resize arithmetic and its
    /// documented confidence threshold (0.25), NMS 0.45 as darknet's
    /// `detector test`. Load the fp32 model with it
    /// ([`crate::Precision::for_resize`]).
    pub fn darknet_compatible() -> Self {
        DetectorConfig {
            conf_threshold: ResizeMode::Darknet.default_conf_threshold(),
            resize: ResizeMode::Darknet,
            ..Default::default()
        }
    }

    /// Checks every setting's range; the error names the setting.
    fn validate(&self) -> Result<(), VisionError> {
        if !(self.conf_threshold >= 0.0 && self.conf_threshold < 1.0) {
            return Err(VisionError::Config(format!(
                "conf_threshold {} must be in [0, 1)",
                self.conf_threshold
            )));
        }
        if !(self.nms_threshold > 0.0 && self.nms_threshold <= 1.0) {
            return Err(VisionError::Config(format!(
                "nms_threshold {} must be in (0, 1]",
                self.nms_threshold
            )));
        }
        if self.threads == 0 || self.threads > 256 {
            return Err(VisionError::Config(format!(
                "threads {} must be 1..=256",
                self.threads
            )));
        }
        match self.input_size {
            Some(s) if s == 0 || s % 32 != 0 || s > 4096 => Err(VisionError::Config(format!(
                "input_size {s} must be a positive multiple of 32 up to 4096"
            ))),
            _ => Ok(()),
        }
    }
}

/// An ONNX Runtime session on `model_path` with `threads` intra-op threads,
/// spinning or not while they wait.
fn open_session(
    env: &Environment,
    model_path: &Path,
    threads: usize,
    spinning: bool,
) -> Result<Session, String> {
    Session::builder(env)
        .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
        .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
        .and_then(|b| b.with_intra_op_spinning(spinning).map_err(Into::into))
        .and_then(|mut b| b.commit_from_file(model_path))
        .map_err(|e| format!("ONNX Runtime cannot load it: {e}"))
}

/// The model's first input, which must be an image batch `[1, 3, H, W]`:
/// its name and shape (`-1` for free sizes).
fn image_input(session: &Session) -> Result<(String, Vec<i64>), String> {
    let input = session.inputs().first().ok_or("has no inputs")?;
    let name = input.name().to_string();
    let shape: Vec<i64> = input
        .dtype()
        .tensor_shape()
        .map(|s| s.to_vec())
        .unwrap_or_default();
    if shape.len() != 4 || (shape[1] != 3 && shape[1] != -1) {
        return Err(format!(
            "input {name} has shape {shape:?}; expected [1, 3, H, W]"
        ));
    }
    Ok((name, shape))
}

/// What [`Detector::load`] learns from a model: its output layout, class
/// names and network input size.
struct ModelShape {
    kind: ModelKind,
    names: Vec<String>,
    net_w: u32,
    net_h: u32,
}

/// A darknet import, from its metadata JSON; every head it names must be a
/// graph output.
fn darknet_shape(
    json: &str,
    output_names: &[String],
    config: &DetectorConfig,
) -> Result<ModelShape, String> {
    let meta: YoloMeta =
        serde_json::from_str(json).map_err(|e| format!("bad {META_KEY} metadata: {e}"))?;
    for h in &meta.heads {
        if !output_names.contains(&h.output) {
            return Err(format!(
                "metadata names output {} which the graph lacks",
                h.output
            ));
        }
        if h.mask.iter().any(|&m| m >= meta.anchors.len()) {
            return Err(format!(
                "head {} masks an anchor that does not exist",
                h.output
            ));
        }
    }
    let names = if !meta.names.is_empty() {
        meta.names.clone()
    } else if meta.classes == COCO_NAMES.len() {
        COCO_NAMES.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    let (net_w, net_h) = match config.input_size {
        Some(s) => (s, s),
        None => (meta.input_width as u32, meta.input_height as u32),
    };
    Ok(ModelShape {
        kind: ModelKind::Darknet(meta),
        names,
        net_w,
        net_h,
    })
}

/// A single-tensor YOLOv5/v8 export: its input size is fixed by the graph,
/// or free (then `input_size`, default 640).
fn single_tensor_shape(
    session: &Session,
    in_shape: &[i64],
    config: &DetectorConfig,
) -> Result<ModelShape, VisionError> {
    let (h, w) = (in_shape[2], in_shape[3]);
    let (net_w, net_h) = match (w > 0 && h > 0, config.input_size) {
        (true, Some(s)) if (s as i64, s as i64) != (w, h) => {
            return Err(VisionError::Config(format!(
                "model input is fixed at {w}x{h}; input_size {s} cannot be used"
            )))
        }
        (true, _) => (w as u32, h as u32),
        (false, Some(s)) => (s, s),
        (false, None) => (640, 640),
    };
    let names = session
        .metadata()
        .ok()
        .and_then(|m| m.custom("names"))
        .map(|s| parse_names_dict(&s))
        .unwrap_or_default();
    Ok(ModelShape {
        kind: ModelKind::SingleTensor,
        names,
        net_w,
        net_h,
    })
}

impl Detector {
    /// Loads `model_path` (an ONNX file) with ONNX Runtime: a darknet
    /// import (raw heads and [`META_KEY`] metadata) or a single-tensor
    /// YOLOv5/v8 export. The settings are checked before anything loads.
    pub fn load(
        model_path: impl AsRef<Path>,
        config: &DetectorConfig,
    ) -> Result<Self, VisionError> {
        let model_path = model_path.as_ref().to_path_buf();
        config.validate()?;
        if !model_path.is_file() {
            return Err(VisionError::ModelMissing { path: model_path });
        }
        let model_err = |message: String| VisionError::Model {
            path: model_path.clone(),
            message,
        };
        let runtime = config
            .runtime_path
            .clone()
            .unwrap_or_else(default_runtime_path);
        let env = environment(&runtime)?;
        let session = open_session(&env, &model_path, config.threads, config.intra_op_spinning)
            .map_err(model_err)?;
        let (input_name, in_shape) = image_input(&session).map_err(model_err)?;
        let output_names: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let meta_json = session.metadata().ok().and_then(|m| m.custom(META_KEY));
        let shape = match meta_json {
            Some(json) => darknet_shape(&json, &output_names, config).map_err(model_err)?,
            None if output_names.len() != 1 => {
                return Err(model_err(format!(
                    "has {} outputs and no {META_KEY} metadata; expected a darknet import or a single-tensor YOLOv5/v8 export",
                    output_names.len()
                )))
            }
            None => single_tensor_shape(&session, &in_shape, config)?,
        };
        let ModelShape {
            kind,
            names,
            net_w,
            net_h,
        } = shape;
        tracing::debug!(model = %model_path.display(), net_w, net_h, "vision model loaded");
        Ok(Detector {
            session,
            input_name,
            output_names,
            kind,
            names,
            net_w,
            net_h,
            config: config.clone(),
            model_path,
            input: Vec::new(),
            fast: FastResizer::default(),
        })
    }

    /// Class names the detector reports.
    pub fn class_names(&self) -> &[String] {
        &self.names
    }

    /// Network input size `(width, height)`.
    pub fn input_size(&self) -> (u32, u32) {
        (self.net_w, self.net_h)
    }

    /// The model's output layout.
    pub fn kind(&self) -> &ModelKind {
        &self.kind
    }

    /// The settings in use.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Decodes a JPEG (or PNG) with the camera crate's decoder, turns it
    /// upright by its EXIF orientation, and detects; boxes are in the
    /// upright image's pixels. A JPEG cut short is a [`VisionError::Decode`].
    pub fn detect_jpeg(&mut self, bytes: &[u8]) -> Result<Vec<Detection>, VisionError> {
        let img = crate::exif::decode_upright(bytes, "")?;
        self.detect_rgb(&img)
    }

    /// Detect objects in an RGB image; boxes are in its pixels.
    pub fn detect_rgb(&mut self, img: &RgbImage) -> Result<Vec<Detection>, VisionError> {
        if img.width == 0 || img.height == 0 {
            return Err(VisionError::Decode("image has no pixels".into()));
        }
        let lb = match self.config.resize {
            ResizeMode::Fast => {
                letterbox_fast(img, self.net_w, self.net_h, &mut self.fast, &mut self.input)
            }
            ResizeMode::Darknet => letterbox_darknet(img, self.net_w, self.net_h, &mut self.input),
        };
        self.detect_letterboxed(&lb)
    }

    /// Runs the network on `self.input` (already letterboxed as `lb`) and
    /// decodes its outputs into boxes on the source image.
    fn detect_letterboxed(&mut self, lb: &Letterbox) -> Result<Vec<Detection>, VisionError> {
        let shape = [1usize, 3, self.net_h as usize, self.net_w as usize];
        let tensor = TensorRef::from_array_view((shape, self.input.as_slice()))
            .map_err(|e| VisionError::Inference(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| VisionError::Inference(e.to_string()))?;
        let (thresh, nms) = (self.config.conf_threshold, self.config.nms_threshold);
        match &self.kind {
            ModelKind::Darknet(meta) => {
                decode_darknet(&outputs, meta, lb, thresh, nms, &self.names)
            }
            ModelKind::SingleTensor => {
                decode_single_tensor(&outputs, &self.output_names, lb, thresh, nms, &self.names)
            }
        }
    }

    /// Run the network on an already letterboxed `[3, H, W]` input and
    /// return the raw output tensors by name (for checks against other
    /// loaders).
    pub fn raw_outputs(&mut self, input: &[f32]) -> Result<Vec<RawOutput>, VisionError> {
        let (w, h) = (self.net_w as usize, self.net_h as usize);
        if input.len() != 3 * w * h {
            return Err(VisionError::Inference(format!(
                "input has {} floats, expected 3x{h}x{w}",
                input.len()
            )));
        }
        let tensor = TensorRef::from_array_view(([1usize, 3, h, w], input))
            .map_err(|e| VisionError::Inference(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| VisionError::Inference(e.to_string()))?;
        let mut out = Vec::new();
        for name in &self.output_names {
            let (shape, data) = outputs[name.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(|e| VisionError::Inference(e.to_string()))?;
            out.push(RawOutput {
                name: name.clone(),
                shape: shape.to_vec(),
                data: data.to_vec(),
            });
        }
        Ok(out)
    }
}

/// Darknet heads: each decoded as darknet's `get_yolo_detections` does,
/// mapped back through the letterbox, then darknet's sort-and-NMS.
fn decode_darknet(
    outputs: &SessionOutputs<'_>,
    meta: &YoloMeta,
    lb: &Letterbox,
    thresh: f32,
    nms_threshold: f32,
    names: &[String],
) -> Result<Vec<Detection>, VisionError> {
    let mut dets = Vec::new();
    for head in &meta.heads {
        let value = outputs
            .get(&head.output)
            .ok_or_else(|| VisionError::Inference(format!("output {} missing", head.output)))?;
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| VisionError::Inference(e.to_string()))?;
        if shape.len() != 4 {
            return Err(VisionError::Inference(format!(
                "output {} has shape {shape:?}",
                head.output
            )));
        }
        let p = HeadParams {
            grid_h: shape[2] as usize,
            grid_w: shape[3] as usize,
            mask: &head.mask,
            anchors: &meta.anchors,
            classes: meta.classes,
            scale_x_y: head.scale_x_y,
            net_w: lb.net_w as usize,
            net_h: lb.net_h as usize,
        };
        let mut d = decode_yolo_head(data, &p, thresh).ok_or_else(|| {
            VisionError::Inference(format!(
                "output {} of shape {shape:?} does not fit {} anchors x {} classes",
                head.output,
                head.mask.len(),
                meta.classes
            ))
        })?;
        for det in &mut d {
            det.bbox = lb.to_source(det.bbox);
        }
        dets.extend(d);
    }
    nms_sort_darknet(&mut dets, meta.classes, nms_threshold);
    Ok(darknet_detections(&dets, thresh, lb.src_w, lb.src_h, names))
}

/// A single-tensor YOLOv5/v8 output, its layout told by shape.
fn decode_single_tensor(
    outputs: &SessionOutputs<'_>,
    output_names: &[String],
    lb: &Letterbox,
    thresh: f32,
    nms_threshold: f32,
    names: &[String],
) -> Result<Vec<Detection>, VisionError> {
    let name = &output_names[0];
    let (shape, data) = outputs[name.as_str()]
        .try_extract_tensor::<f32>()
        .map_err(|e| VisionError::Inference(e.to_string()))?;
    if shape.len() != 3 || shape[0] != 1 {
        return Err(VisionError::Inference(format!(
            "output {name} has shape {shape:?}; expected [1, A, B]"
        )));
    }
    let (a, b) = (shape[1] as usize, shape[2] as usize);
    let nc = (!names.is_empty()).then_some(names.len());
    let cands = match single_tensor_layout(a, b, nc) {
        Some(Layout::V8) => decode_v8(data, a, b, thresh),
        Some(Layout::V5) => decode_v5(data, a, b, thresh),
        None => None,
    }
    .ok_or_else(|| {
        VisionError::Inference(format!(
            "output {name} of shape {shape:?} is neither [1, 4+C, N] nor [1, N, 5+C]"
        ))
    })?;
    let kept = nms(cands, nms_threshold);
    Ok(candidates_to_detections(&kept, lb, names))
}

/// Layout of a single-tensor output `[1, a, b]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `[1, 4+C, N]`.
    V8,
    /// `[1, N, 5+C]`.
    V5,
}

/// Tell the layouts apart: by the class count when known, else by which
/// reading is possible, else the shorter axis holds the per-box values.
pub(crate) fn single_tensor_layout(a: usize, b: usize, classes: Option<usize>) -> Option<Layout> {
    if let Some(nc) = classes {
        if a == 4 + nc {
            return Some(Layout::V8);
        }
        if b == 5 + nc {
            return Some(Layout::V5);
        }
    }
    match (a >= 5, b >= 6) {
        (true, false) => Some(Layout::V8),
        (false, true) => Some(Layout::V5),
        (true, true) => Some(if a <= b { Layout::V8 } else { Layout::V5 }),
        (false, false) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_can_move_to_a_worker_thread() {
        fn is_send<T: Send>() {}
        is_send::<Detector>();
    }

    #[test]
    fn single_tensor_layouts() {
        let cases = [
            ((84, 8400, None), Some(Layout::V8)),
            ((25200, 85, None), Some(Layout::V5)),
            ((84, 8400, Some(80)), Some(Layout::V8)),
            ((6, 3, None), Some(Layout::V8)),
            ((3, 7, None), Some(Layout::V5)),
            ((7, 7, Some(2)), Some(Layout::V5)),
            ((6, 6, Some(2)), Some(Layout::V8)),
            ((2, 2, None), None),
        ];
        for ((a, b, nc), want) in cases {
            assert_eq!(single_tensor_layout(a, b, nc), want, "{a}x{b} {nc:?}");
        }
    }

    #[test]
    fn ultralytics_names() {
        assert_eq!(
            parse_names_dict("{0: 'person', 1: 'bicycle', 2: 'hair drier'}"),
            ["person", "bicycle", "hair drier"]
        );
        assert!(parse_names_dict("{1: 'a'}").is_empty());
        assert!(parse_names_dict("junk").is_empty());
    }

    #[test]
    fn bad_config_is_rejected_before_loading() {
        for c in [
            DetectorConfig {
                conf_threshold: 1.5,
                ..Default::default()
            },
            DetectorConfig {
                nms_threshold: 0.0,
                ..Default::default()
            },
            DetectorConfig {
                threads: 0,
                ..Default::default()
            },
            DetectorConfig {
                input_size: Some(300),
                ..Default::default()
            },
        ] {
            assert!(
                matches!(
                    Detector::load("/nonexistent.onnx", &c),
                    Err(VisionError::Config(_))
                ),
                "{c:?}"
            );
        }
        let e = Detector::load("/nonexistent.onnx", &DetectorConfig::default()).unwrap_err();
        assert!(matches!(e, VisionError::ModelMissing { .. }));
        assert!(e.to_string().contains("setup.sh"));
    }
}
