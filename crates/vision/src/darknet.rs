//! Darknet model import: parse a `.cfg` and its `.weights`, and write an
//! ONNX model whose outputs are the YOLO heads' raw convolution outputs.
//!
//! Parsing is pure ([`parse_cfg`], [`Network::from_cfg`], [`parse_weights`]);
//! [`import_darknet`] adds the file reading. The YOLO metadata (anchors,
//! masks, classes, input size, class names) goes into the model's
//! `metadata_props` so [`crate::Detector`] can decode the heads.

use std::path::{Path, PathBuf};

use prost::Message;

use crate::onnx::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, ValueInfoProto,
};

/// Name of the model input.
pub const INPUT_NAME: &str = "images";
/// Metadata key holding the [`YoloMeta`] JSON.
pub const META_KEY: &str = "gopigo.yolo";

/// What can go wrong reading a Darknet model.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum DarknetError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The cfg text is malformed or uses something we do not support.
    #[error("darknet cfg line {line}: {message}")]
    Cfg {
        /// 1-based line in the cfg file (0: the file as a whole).
        line: usize,
        message: String,
    },
    /// The weights do not fit the cfg.
    #[error("darknet weights: {0} (are the cfg and weights from the same model?)")]
    Weights(String),
}

/// One `[section]` of a cfg file with its `key=value` options, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct CfgSection {
    /// Section name without brackets, e.g. `convolutional`.
    pub name: String,
    /// 1-based line of the `[section]` header.
    pub line: usize,
    /// Options in file order.
    pub options: Vec<(String, String)>,
}

impl CfgSection {
    fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn err(&self, message: impl Into<String>) -> DarknetError {
        DarknetError::Cfg {
            line: self.line,
            message: format!("[{}] {}", self.name, message.into()),
        }
    }

    fn int(&self, key: &str, default: i64) -> Result<i64, DarknetError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map_err(|_| self.err(format!("{key}={v} is not an integer"))),
        }
    }

    fn uint(&self, key: &str, default: usize) -> Result<usize, DarknetError> {
        let v = self.int(key, default as i64)?;
        usize::try_from(v).map_err(|_| self.err(format!("{key}={v} must not be negative")))
    }

    fn float(&self, key: &str, default: f32) -> Result<f32, DarknetError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<f32>()
                .map_err(|_| self.err(format!("{key}={v} is not a number"))),
        }
    }

    fn int_list(&self, key: &str) -> Result<Option<Vec<i64>>, DarknetError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<i64>()
                        .map_err(|_| self.err(format!("{key}: {s:?} is not an integer")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }

    fn float_list(&self, key: &str) -> Result<Option<Vec<f32>>, DarknetError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<f32>()
                        .map_err(|_| self.err(format!("{key}: {s:?} is not a number")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }
}

/// Split cfg text into sections. Comments start with `#` or `;`.
pub fn parse_cfg(text: &str) -> Result<Vec<CfgSection>, DarknetError> {
    let mut sections: Vec<CfgSection> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.strip_suffix(']').ok_or_else(|| DarknetError::Cfg {
                line: line_no,
                message: format!("section header {raw:?} lacks ']'"),
            })?;
            sections.push(CfgSection {
                name: name.to_string(),
                line: line_no,
                options: Vec::new(),
            });
            continue;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| DarknetError::Cfg {
            line: line_no,
            message: format!("expected key=value, got {raw:?}"),
        })?;
        let section = sections.last_mut().ok_or_else(|| DarknetError::Cfg {
            line: line_no,
            message: "option before the first [section]".into(),
        })?;
        section.options.push((k.to_string(), v.to_string()));
    }
    if sections.is_empty() {
        return Err(DarknetError::Cfg {
            line: 0,
            message: "no sections: is this a darknet .cfg file?".into(),
        });
    }
    Ok(sections)
}

/// Activation functions we translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x` unchanged (`activation=linear`).
    Linear,
    /// `x < 0 ? 0.1 x : x`.
    Leaky,
    /// `1 / (1 + e^-x)` (`activation=logistic`).
    Logistic,
    /// `max(0, x)`.
    Relu,
}

impl Activation {
    fn parse(s: &str, sec: &CfgSection) -> Result<Self, DarknetError> {
        Ok(match s {
            "linear" => Activation::Linear,
            "leaky" => Activation::Leaky,
            "logistic" => Activation::Logistic,
            "relu" => Activation::Relu,
            other => return Err(sec.err(format!("activation={other} is not supported"))),
        })
    }
}

/// One YOLO head.
#[derive(Debug, Clone, PartialEq)]
pub struct YoloHead {
    /// Indices into the anchor list used by this head.
    pub mask: Vec<usize>,
    /// All anchors of the model, `(w, h)` in network-input pixels.
    pub anchors: Vec<(f32, f32)>,
    /// Number of classes.
    pub classes: usize,
    /// `scale_x_y` (YOLOv4); 1 for YOLOv3.
    pub scale_x_y: f32,
}

/// A layer of the network, with references resolved to absolute indices.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// `[convolutional]`.
    Conv {
        /// Output channels.
        filters: usize,
        /// Kernel side, in pixels (square kernel; cfg `size`, default 1).
        size: usize,
        /// Step between kernel positions, in pixels (cfg `stride`, default 1).
        stride: usize,
        /// Padding on each side.
        pad: usize,
        /// Channel groups (cfg `groups`, default 1); input channels and
        /// `filters` are both divisible by it.
        groups: usize,
        /// Whether batch-norm parameters precede the kernel in the weights.
        batch_normalize: bool,
        /// Applied to the convolution's output (cfg `activation`).
        activation: Activation,
    },
    /// `[maxpool]`; darknet pads `padding` (default `size-1`) in total,
    /// `padding/2` before and the rest after.
    MaxPool {
        /// Side of the square window, in pixels (cfg `size`, default `stride`).
        size: usize,
        /// Step between windows, in pixels (cfg `stride`, default 1).
        stride: usize,
        /// Total padding per axis.
        padding: usize,
    },
    /// `[upsample]`, nearest neighbour.
    Upsample {
        /// Integer factor.
        stride: usize,
        /// Output multiplier.
        scale: f32,
    },
    /// `[route]`: channel concatenation of earlier layers.
    Route {
        /// Absolute layer indices.
        layers: Vec<usize>,
    },
    /// `[shortcut]`: element-wise sum with an earlier layer.
    Shortcut {
        /// Absolute layer index.
        from: usize,
        /// Activation after the sum.
        activation: Activation,
    },
    /// `[yolo]`: a detection head over its input.
    Yolo(YoloHead),
}

/// A parsed network with every layer's output shape at the cfg input size.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Input width from `[net]`.
    pub width: usize,
    /// Input height from `[net]`.
    pub height: usize,
    /// Input channels from `[net]`.
    pub channels: usize,
    /// Layers in cfg order (darknet's layer indices).
    pub layers: Vec<Layer>,
    /// `(c, h, w)` of each layer's output.
    pub shapes: Vec<(usize, usize, usize)>,
}

/// A layer's output: `(channels, height, width)`.
type Shape = (usize, usize, usize);

fn resolve(index: usize, rel: i64, sec: &CfgSection) -> Result<usize, DarknetError> {
    let abs = if rel < 0 { index as i64 + rel } else { rel };
    if abs < 0 || abs as usize >= index {
        return Err(sec.err(format!(
            "layer reference {rel} does not name an earlier layer (this is layer {index})"
        )));
    }
    Ok(abs as usize)
}

impl Network {
    /// Build the network from parsed cfg sections, checking shapes.
    pub fn from_cfg(sections: &[CfgSection]) -> Result<Self, DarknetError> {
        let (net, rest) = sections.split_first().ok_or_else(|| DarknetError::Cfg {
            line: 0,
            message: "empty cfg".into(),
        })?;
        if net.name != "net" && net.name != "network" {
            return Err(net.err("the first section must be [net]"));
        }
        let width = net.uint("width", 0)?;
        let height = net.uint("height", 0)?;
        let channels = net.uint("channels", 3)?;
        if width == 0 || height == 0 || channels == 0 {
            return Err(net.err("width, height and channels must be set and > 0"));
        }
        let mut layers = Vec::new();
        let mut shapes: Vec<(usize, usize, usize)> = Vec::new();
        for (index, sec) in rest.iter().enumerate() {
            let (c, h, w) = if index == 0 {
                (channels, height, width)
            } else {
                shapes[index - 1]
            };
            let (layer, shape) = match sec.name.as_str() {
                "convolutional" | "conv" => conv_layer(sec, (c, h, w))?,
                "maxpool" | "max" => maxpool_layer(sec, (c, h, w))?,
                "upsample" => upsample_layer(sec, (c, h, w))?,
                "route" => route_layer(sec, index, &shapes, (h, w))?,
                "shortcut" => shortcut_layer(sec, index, &shapes, (c, h, w))?,
                "yolo" => yolo_layer(sec, (c, h, w))?,
                other => return Err(sec.err(format!("layer type [{other}] is not supported"))),
            };
            layers.push(layer);
            shapes.push(shape);
        }
        if !layers.iter().any(|l| matches!(l, Layer::Yolo(_))) {
            return Err(DarknetError::Cfg {
                line: 0,
                message: "no [yolo] layer: only YOLO detection models can be imported".into(),
            });
        }
        Ok(Network {
            width,
            height,
            channels,
            layers,
            shapes,
        })
    }

    fn input_channels(&self, index: usize) -> usize {
        if index == 0 {
            self.channels
        } else {
            self.shapes[index - 1].0
        }
    }
}

/// `[convolutional]`: kernel, stride, padding and groups checked against the input.
fn conv_layer(sec: &CfgSection, (c, h, w): Shape) -> Result<(Layer, Shape), DarknetError> {
    let filters = sec.uint("filters", 1)?;
    let size = sec.uint("size", 1)?;
    let stride = sec.uint("stride", 1)?;
    let groups = sec.uint("groups", 1)?;
    let pad = if sec.int("pad", 0)? != 0 {
        size / 2
    } else {
        sec.uint("padding", 0)?
    };
    if filters == 0
        || size == 0
        || stride == 0
        || groups == 0
        || c % groups != 0
        || filters % groups != 0
    {
        return Err(sec.err(format!("filters={filters} size={size} stride={stride} groups={groups} do not fit {c} input channels")));
    }
    if h + 2 * pad < size || w + 2 * pad < size {
        return Err(sec.err(format!(
            "kernel {size} larger than the padded input {h}x{w}"
        )));
    }
    let activation = Activation::parse(sec.get("activation").unwrap_or("logistic"), sec)?;
    let out = (
        filters,
        (h + 2 * pad - size) / stride + 1,
        (w + 2 * pad - size) / stride + 1,
    );
    Ok((
        Layer::Conv {
            filters,
            size,
            stride,
            pad,
            groups,
            batch_normalize: sec.int("batch_normalize", 0)? != 0,
            activation,
        },
        out,
    ))
}

/// `[maxpool]`, padding defaulting to `size - 1` as darknet does.
fn maxpool_layer(sec: &CfgSection, (c, h, w): Shape) -> Result<(Layer, Shape), DarknetError> {
    let stride = sec.uint("stride", 1)?;
    let size = sec.uint("size", stride)?;
    if size == 0 || stride == 0 {
        return Err(sec.err("size and stride must be > 0"));
    }
    let padding = sec.uint("padding", size - 1)?;
    if h + padding < size || w + padding < size {
        return Err(sec.err(format!("window {size} larger than the input {h}x{w}")));
    }
    let out = (
        c,
        (h + padding - size) / stride + 1,
        (w + padding - size) / stride + 1,
    );
    Ok((
        Layer::MaxPool {
            size,
            stride,
            padding,
        },
        out,
    ))
}

/// `[upsample]` by an integer stride.
fn upsample_layer(sec: &CfgSection, (c, h, w): Shape) -> Result<(Layer, Shape), DarknetError> {
    let stride = sec.uint("stride", 2)?;
    if stride == 0 {
        return Err(sec.err("negative (down-sampling) or zero stride is not supported"));
    }
    let scale = sec.float("scale", 1.0)?;
    Ok((
        Layer::Upsample { stride, scale },
        (c, h * stride, w * stride),
    ))
}

/// `[route]`: earlier layers of one spatial size, concatenated.
fn route_layer(
    sec: &CfgSection,
    index: usize,
    shapes: &[Shape],
    (h, w): (usize, usize),
) -> Result<(Layer, Shape), DarknetError> {
    let refs = sec
        .int_list("layers")?
        .ok_or_else(|| sec.err("layers= is required"))?;
    if refs.is_empty() {
        return Err(sec.err("layers= is empty"));
    }
    let mut abs = Vec::new();
    let mut out_c = 0;
    let mut hw = None;
    for r in refs {
        let a = resolve(index, r, sec)?;
        let (lc, lh, lw) = shapes[a];
        if let Some(prev) = hw {
            if prev != (lh, lw) {
                return Err(sec.err(format!(
                    "routed layers differ in size: {prev:?} vs {:?}",
                    (lh, lw)
                )));
            }
        }
        hw = Some((lh, lw));
        out_c += lc;
        abs.push(a);
    }
    let (oh, ow) = hw.unwrap_or((h, w));
    Ok((Layer::Route { layers: abs }, (out_c, oh, ow)))
}

/// `[shortcut]`: an earlier layer of the same shape, added.
fn shortcut_layer(
    sec: &CfgSection,
    index: usize,
    shapes: &[Shape],
    (c, h, w): Shape,
) -> Result<(Layer, Shape), DarknetError> {
    let from_rel = sec.int("from", 0)?;
    let from = resolve(index, from_rel, sec)?;
    if shapes[from] != (c, h, w) {
        return Err(sec.err(format!(
            "shortcut shapes differ: {:?} vs {:?}",
            shapes[from],
            (c, h, w)
        )));
    }
    let activation = Activation::parse(sec.get("activation").unwrap_or("linear"), sec)?;
    Ok((Layer::Shortcut { from, activation }, (c, h, w)))
}

/// `[yolo]`: anchors, mask and classes, checked against the input channels.
fn yolo_layer(sec: &CfgSection, (c, h, w): Shape) -> Result<(Layer, Shape), DarknetError> {
    let classes = sec.uint("classes", 20)?;
    let num = sec.uint("num", 1)?;
    let flat = sec.float_list("anchors")?.unwrap_or_default();
    if flat.len() != 2 * num {
        return Err(sec.err(format!(
            "num={num} needs {} anchor values, got {}",
            2 * num,
            flat.len()
        )));
    }
    let anchors: Vec<(f32, f32)> = flat.chunks(2).map(|p| (p[0], p[1])).collect();
    let mask: Vec<usize> = match sec.int_list("mask")? {
        Some(m) => m
            .into_iter()
            .map(|v| {
                usize::try_from(v).ok().filter(|&u| u < num).ok_or_else(|| {
                    sec.err(format!(
                        "mask entry {v} is not an anchor index below num={num}"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        None => (0..num).collect(),
    };
    let want = mask.len() * (classes + 5);
    if c != want {
        return Err(sec.err(format!(
            "input has {c} channels; {} anchors x ({classes} classes + 5) = {want}",
            mask.len()
        )));
    }
    let scale_x_y = sec.float("scale_x_y", 1.0)?;
    Ok((
        Layer::Yolo(YoloHead {
            mask,
            anchors,
            classes,
            scale_x_y,
        }),
        (c, h, w),
    ))
}

/// The weights file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightsHeader {
    /// Format version, major part; `major*10 + minor >= 2` means `seen`
    /// is stored as u64, else as u32.
    pub major: i32,
    /// Format version, minor part.
    pub minor: i32,
    /// Revision; read but not used to choose the layout.
    pub revision: i32,
    /// Images seen in training.
    pub seen: u64,
    /// Header length in bytes (16 or 20).
    pub len: usize,
}

/// Parse the header: three i32, then `seen` as u64 when
/// `major*10 + minor >= 2`, else as u32 (all little-endian).
pub fn parse_weights_header(bytes: &[u8]) -> Result<WeightsHeader, DarknetError> {
    let i32_at = |o: usize| -> Option<i32> {
        bytes
            .get(o..o + 4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let short = || {
        DarknetError::Weights(format!(
            "file of {} bytes is too short for a header",
            bytes.len()
        ))
    };
    let major = i32_at(0).ok_or_else(short)?;
    let minor = i32_at(4).ok_or_else(short)?;
    let revision = i32_at(8).ok_or_else(short)?;
    if !(0..1000).contains(&major) || !(0..1000).contains(&minor) {
        return Err(DarknetError::Weights(format!(
            "header version {major}.{minor} is implausible: not a darknet .weights file"
        )));
    }
    let (seen, len) = if major * 10 + minor >= 2 {
        let b = bytes.get(12..20).ok_or_else(short)?;
        (
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            20,
        )
    } else {
        let b = bytes.get(12..16).ok_or_else(short)?;
        (u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])), 16)
    };
    Ok(WeightsHeader {
        major,
        minor,
        revision,
        seen,
        len,
    })
}

/// One convolution's kernel and bias with batch norm folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvWeights {
    /// `[filters, c/groups, size, size]`, row-major.
    pub kernel: Vec<f32>,
    /// `[filters]`.
    pub bias: Vec<f32>,
}

/// Read every convolution's weights in cfg order, folding batch norm the
/// way darknet applies it: `(x - mean) / (sqrt(var) + 1e-6) * scale + bias`.
/// Returns one entry per layer (`None` for layers without weights).
pub fn parse_weights(
    bytes: &[u8],
    net: &Network,
) -> Result<Vec<Option<ConvWeights>>, DarknetError> {
    let header = parse_weights_header(bytes)?;
    let body = &bytes[header.len..];
    if body.len() % 4 != 0 {
        return Err(DarknetError::Weights(format!(
            "body of {} bytes is not a whole number of floats",
            body.len()
        )));
    }
    let mut pos = 0usize;
    let total = body.len() / 4;
    let mut take = |n: usize, what: &str, layer: usize| -> Result<Vec<f32>, DarknetError> {
        if pos + n > total {
            return Err(DarknetError::Weights(format!(
                "file ends inside layer {layer} ({what}): needs {} more floats, has {}",
                n,
                total - pos
            )));
        }
        let out = body[pos * 4..(pos + n) * 4]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        pos += n;
        Ok(out)
    };
    let mut out = Vec::with_capacity(net.layers.len());
    for (i, layer) in net.layers.iter().enumerate() {
        let Layer::Conv {
            filters,
            size,
            groups,
            batch_normalize,
            ..
        } = *layer
        else {
            out.push(None);
            continue;
        };
        let c = net.input_channels(i);
        let n_kernel = filters * (c / groups) * size * size;
        let mut bias = take(filters, "biases", i)?;
        let mut kernel;
        if batch_normalize {
            let scales = take(filters, "bn scales", i)?;
            let mean = take(filters, "bn rolling mean", i)?;
            let var = take(filters, "bn rolling variance", i)?;
            kernel = take(n_kernel, "kernel", i)?;
            let per = n_kernel / filters;
            for f in 0..filters {
                let k = scales[f] / (var[f].sqrt() + 0.000_001);
                for v in &mut kernel[f * per..(f + 1) * per] {
                    *v *= k;
                }
                bias[f] -= mean[f] * k;
            }
        } else {
            kernel = take(n_kernel, "kernel", i)?;
        }
        out.push(Some(ConvWeights { kernel, bias }));
    }
    if pos != total {
        return Err(DarknetError::Weights(format!(
            "{} floats left over after the last layer",
            total - pos
        )));
    }
    Ok(out)
}

/// The YOLO description stored in the model's metadata under [`META_KEY`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct YoloMeta {
    /// Always `"darknet-yolo"`.
    pub format: String,
    /// Input width the cfg was trained at.
    pub input_width: usize,
    /// Input height the cfg was trained at.
    pub input_height: usize,
    /// Number of classes.
    pub classes: usize,
    /// All anchors, `[w, h]` in input pixels.
    pub anchors: Vec<[f32; 2]>,
    /// Heads in graph-output order.
    pub heads: Vec<YoloMetaHead>,
    /// Class names, when known.
    #[serde(default)]
    pub names: Vec<String>,
}

/// One head in [`YoloMeta`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct YoloMetaHead {
    /// Graph output name.
    pub output: String,
    /// Anchor indices.
    pub mask: Vec<usize>,
    /// `scale_x_y`.
    pub scale_x_y: f32,
}

/// Build the ONNX model (opset 13). Input `images` is `[1, C, height, width]`
/// with free spatial sizes (multiples of 32 work for YOLO cfgs); outputs
/// `yolo0`, `yolo1`, ... are the raw head tensors `[1, A*(5+classes), H, W]`.
pub fn to_onnx(
    net: &Network,
    weights: &[Option<ConvWeights>],
    names: &[String],
) -> Result<Vec<u8>, DarknetError> {
    let mut graph = OnnxGraph::new(net);
    for (i, layer) in net.layers.iter().enumerate() {
        let out = graph.layer(i, layer, weights)?;
        graph.tensor.push(out);
    }
    let meta = graph.yolo_meta(names)?;
    let metadata_props = metadata_props(&meta, net)?;
    let model = ModelProto {
        ir_version: Some(7),
        producer_name: Some("gopigo-vision".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some("imported from a darknet cfg + weights".into()),
        graph: Some(GraphProto {
            node: graph.nodes,
            name: Some("darknet".into()),
            initializer: graph.inits,
            input: vec![ValueInfoProto::float_tensor(
                INPUT_NAME,
                vec![
                    Dimension::fixed(1),
                    Dimension::fixed(net.channels as i64),
                    Dimension::named("height"),
                    Dimension::named("width"),
                ],
            )],
            output: graph.outputs,
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        metadata_props,
    };
    Ok(model.encode_to_vec())
}

/// The ONNX graph under construction: one step per darknet layer kind,
/// each adding its nodes and initializers and naming its output tensor
/// (`l{i}` where a node computes it).
struct OnnxGraph<'a> {
    net: &'a Network,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    /// The output tensor of each layer done so far.
    tensor: Vec<String>,
    heads: Vec<YoloMetaHead>,
    outputs: Vec<ValueInfoProto>,
    /// Classes and anchors, which every `[yolo]` layer must agree on.
    yolo: Option<(usize, Vec<(f32, f32)>)>,
}

impl<'a> OnnxGraph<'a> {
    fn new(net: &'a Network) -> Self {
        Self {
            net,
            nodes: Vec::new(),
            inits: Vec::new(),
            tensor: Vec::with_capacity(net.layers.len()),
            heads: Vec::new(),
            outputs: Vec::new(),
            yolo: None,
        }
    }

    /// Adds layer `i`; returns its output tensor's name.
    fn layer(
        &mut self,
        i: usize,
        layer: &Layer,
        weights: &[Option<ConvWeights>],
    ) -> Result<String, DarknetError> {
        let input = if i == 0 {
            INPUT_NAME.to_string()
        } else {
            self.tensor[i - 1].clone()
        };
        Ok(match layer {
            Layer::Conv { .. } => {
                let w = weights.get(i).and_then(|w| w.as_ref()).ok_or_else(|| {
                    DarknetError::Weights(format!("no weights for convolutional layer {i}"))
                })?;
                self.conv(i, input, layer, w)
            }
            Layer::MaxPool {
                size,
                stride,
                padding,
            } => self.maxpool(i, input, *size, *stride, *padding),
            Layer::Upsample { stride, scale } => self.upsample(i, input, *stride, *scale),
            Layer::Route { layers } => self.route(i, layers),
            Layer::Shortcut { from, activation } => self.shortcut(i, input, *from, *activation),
            Layer::Yolo(head) => self.yolo(i, input, head)?,
        })
    }

    /// The activation node after layer `i`'s `input`; none for linear.
    fn activation(&mut self, a: Activation, input: String, i: usize) -> String {
        let out = format!("l{i}");
        let node = match a {
            Activation::Linear => return input,
            Activation::Leaky => NodeProto::new(
                "LeakyRelu",
                &format!("leaky{i}"),
                &[&input],
                &[&out],
                vec![AttributeProto::float("alpha", 0.1)],
            ),
            Activation::Logistic => NodeProto::new(
                "Sigmoid",
                &format!("sigmoid{i}"),
                &[&input],
                &[&out],
                vec![],
            ),
            Activation::Relu => {
                NodeProto::new("Relu", &format!("relu{i}"), &[&input], &[&out], vec![])
            }
        };
        self.nodes.push(node);
        out
    }

    /// `[convolutional]`: Conv with the folded weights, then the activation.
    fn conv(&mut self, i: usize, input: String, layer: &Layer, w: &ConvWeights) -> String {
        let Layer::Conv {
            filters,
            size,
            stride,
            pad,
            groups,
            activation,
            ..
        } = *layer
        else {
            unreachable!("conv is called for convolutional layers only")
        };
        let c = self.net.input_channels(i);
        let (wn, bn) = (format!("l{i}.weight"), format!("l{i}.bias"));
        let (k, f) = (size as i64, filters as i64);
        self.inits.push(TensorProto::floats(
            &wn,
            &[f, (c / groups) as i64, k, k],
            &w.kernel,
        ));
        self.inits.push(TensorProto::floats(&bn, &[f], &w.bias));
        let conv_out = if activation == Activation::Linear {
            format!("l{i}")
        } else {
            format!("l{i}.conv")
        };
        let (p, s) = (pad as i64, stride as i64);
        self.nodes.push(NodeProto::new(
            "Conv",
            &format!("conv{i}"),
            &[&input, &wn, &bn],
            &[&conv_out],
            vec![
                AttributeProto::ints("kernel_shape", &[k, k]),
                AttributeProto::ints("strides", &[s, s]),
                AttributeProto::ints("pads", &[p, p, p, p]),
                AttributeProto::int("group", groups as i64),
            ],
        ));
        self.activation(activation, conv_out, i)
    }

    /// `[maxpool]` with darknet's asymmetric padding.
    fn maxpool(
        &mut self,
        i: usize,
        input: String,
        size: usize,
        stride: usize,
        padding: usize,
    ) -> String {
        let out = format!("l{i}");
        let before = (padding / 2) as i64;
        let after = padding as i64 - before;
        let (k, s) = (size as i64, stride as i64);
        self.nodes.push(NodeProto::new(
            "MaxPool",
            &format!("maxpool{i}"),
            &[&input],
            &[&out],
            vec![
                AttributeProto::ints("kernel_shape", &[k, k]),
                AttributeProto::ints("strides", &[s, s]),
                AttributeProto::ints("pads", &[before, before, after, after]),
            ],
        ));
        out
    }

    /// `[upsample]`: nearest-neighbour Resize, then Mul when `scale` != 1.
    fn upsample(&mut self, i: usize, input: String, stride: usize, scale: f32) -> String {
        let scales = format!("l{i}.scales");
        self.inits.push(TensorProto::floats(
            &scales,
            &[4],
            &[1.0, 1.0, stride as f32, stride as f32],
        ));
        let scaled = (scale - 1.0).abs() > f32::EPSILON;
        let resized = if scaled {
            format!("l{i}.resized")
        } else {
            format!("l{i}")
        };
        self.nodes.push(NodeProto::new(
            "Resize",
            &format!("upsample{i}"),
            &[&input, "", &scales],
            &[&resized],
            vec![
                AttributeProto::string("mode", "nearest"),
                AttributeProto::string("coordinate_transformation_mode", "asymmetric"),
                AttributeProto::string("nearest_mode", "floor"),
            ],
        ));
        if !scaled {
            return resized;
        }
        let k = format!("l{i}.scale");
        self.inits.push(TensorProto::floats(&k, &[], &[scale]));
        let out = format!("l{i}");
        self.nodes.push(NodeProto::new(
            "Mul",
            &format!("scale{i}"),
            &[&resized, &k],
            &[&out],
            vec![],
        ));
        out
    }

    /// `[route]`: the one routed tensor itself, or a channel Concat.
    fn route(&mut self, i: usize, layers: &[usize]) -> String {
        if let [only] = layers {
            return self.tensor[*only].clone();
        }
        let out = format!("l{i}");
        let ins: Vec<&str> = layers.iter().map(|&l| self.tensor[l].as_str()).collect();
        let node = NodeProto::new(
            "Concat",
            &format!("route{i}"),
            &ins,
            &[&out],
            vec![AttributeProto::int("axis", 1)],
        );
        self.nodes.push(node);
        out
    }

    /// `[shortcut]`: Add, then the activation (an Identity keeps the name
    /// `l{i}` when that is linear).
    fn shortcut(&mut self, i: usize, input: String, from: usize, activation: Activation) -> String {
        let sum = format!("l{i}.sum");
        self.nodes.push(NodeProto::new(
            "Add",
            &format!("shortcut{i}"),
            &[&input, &self.tensor[from]],
            &[&sum],
            vec![],
        ));
        let out = self.activation(activation, sum.clone(), i);
        if out != sum {
            return out;
        }
        let o = format!("l{i}");
        self.nodes.push(NodeProto::new(
            "Identity",
            &format!("id{i}"),
            &[&sum],
            &[&o],
            vec![],
        ));
        o
    }

    /// `[yolo]`: its input becomes graph output `yolo{k}` and a head in the
    /// metadata. Layers that route to a yolo layer see its input, which is
    /// what this returns.
    fn yolo(&mut self, i: usize, input: String, head: &YoloHead) -> Result<String, DarknetError> {
        let k = self.heads.len();
        let out = format!("yolo{k}");
        self.nodes.push(NodeProto::new(
            "Identity",
            &format!("yolo_out{k}"),
            &[&input],
            &[&out],
            vec![],
        ));
        self.outputs.push(ValueInfoProto::float_tensor(
            &out,
            vec![
                Dimension::fixed(1),
                Dimension::fixed(self.net.shapes[i].0 as i64),
                Dimension::named(&format!("yolo{k}_h")),
                Dimension::named(&format!("yolo{k}_w")),
            ],
        ));
        match &self.yolo {
            None => self.yolo = Some((head.classes, head.anchors.clone())),
            Some((classes, anchors)) if *classes != head.classes || *anchors != head.anchors => {
                return Err(DarknetError::Cfg {
                    line: 0,
                    message: "[yolo] layers disagree on classes or anchors".into(),
                });
            }
            Some(_) => {}
        }
        self.heads.push(YoloMetaHead {
            output: out,
            mask: head.mask.clone(),
            scale_x_y: head.scale_x_y,
        });
        Ok(input)
    }

    /// The [`YoloMeta`] of the finished graph, with `names` when given.
    fn yolo_meta(&mut self, names: &[String]) -> Result<YoloMeta, DarknetError> {
        let (classes, anchors) = self.yolo.take().unwrap_or_default();
        if !names.is_empty() && names.len() != classes {
            return Err(DarknetError::Cfg {
                line: 0,
                message: format!(
                    "{} class names given for a model with {classes} classes",
                    names.len()
                ),
            });
        }
        Ok(YoloMeta {
            format: "darknet-yolo".into(),
            input_width: self.net.width,
            input_height: self.net.height,
            classes,
            anchors: anchors.iter().map(|&(w, h)| [w, h]).collect(),
            heads: std::mem::take(&mut self.heads),
            names: names.to_vec(),
        })
    }
}

/// The model's `metadata_props`: the [`YoloMeta`] JSON under [`META_KEY`],
/// and the same facts as plain keys for people reading the model in
/// Netron or similar.
fn metadata_props(
    meta: &YoloMeta,
    net: &Network,
) -> Result<Vec<StringStringEntryProto>, DarknetError> {
    let meta_json = serde_json::to_string(meta).map_err(|e| DarknetError::Cfg {
        line: 0,
        message: e.to_string(),
    })?;
    let kv = |k: &str, v: String| StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v),
    };
    let anchors: Vec<String> = meta
        .anchors
        .iter()
        .map(|[w, h]| format!("{w},{h}"))
        .collect();
    let masks: Vec<String> = meta
        .heads
        .iter()
        .map(|h| {
            h.mask
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    Ok(vec![
        kv(META_KEY, meta_json),
        kv("classes", meta.classes.to_string()),
        kv("input_size", format!("{}x{}", net.width, net.height)),
        kv("anchors", anchors.join(", ")),
        kv("masks", masks.join(";")),
    ])
}

/// Read the `gopigo.yolo` metadata back from ONNX bytes (used by tests and
/// tools; the detector reads it through ONNX Runtime).
pub fn read_meta(onnx: &[u8]) -> Option<YoloMeta> {
    let model = ModelProto::decode(onnx).ok()?;
    let entry = model
        .metadata_props
        .iter()
        .find(|p| p.key.as_deref() == Some(META_KEY))?;
    serde_json::from_str(entry.value.as_deref()?).ok()
}

fn read(path: &Path) -> Result<Vec<u8>, DarknetError> {
    std::fs::read(path).map_err(|source| DarknetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Import a Darknet model: read the cfg and weights and return ONNX bytes.
pub fn import_darknet(cfg_path: &Path, weights_path: &Path) -> Result<Vec<u8>, DarknetError> {
    import_darknet_with_names(cfg_path, weights_path, &[])
}

/// As [`import_darknet`], also storing class names (one per class, e.g. the
/// lines of `coco.names`) in the model.
pub fn import_darknet_with_names(
    cfg_path: &Path,
    weights_path: &Path,
    names: &[String],
) -> Result<Vec<u8>, DarknetError> {
    let text = String::from_utf8(read(cfg_path)?).map_err(|_| DarknetError::Cfg {
        line: 0,
        message: format!("{} is not UTF-8 text", cfg_path.display()),
    })?;
    let sections = parse_cfg(&text).map_err(|e| with_file(e, cfg_path))?;
    let net = Network::from_cfg(&sections).map_err(|e| with_file(e, cfg_path))?;
    let weights = parse_weights(&read(weights_path)?, &net)
        .map_err(|e| DarknetError::Weights(format!("{}: {}", weights_path.display(), strip(e))))?;
    to_onnx(&net, &weights, names)
}

/// Read a `.names` file: one class name per non-empty line.
pub fn read_names(path: &Path) -> Result<Vec<String>, DarknetError> {
    let text = String::from_utf8_lossy(&read(path)?).into_owned();
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn strip(e: DarknetError) -> String {
    match e {
        DarknetError::Weights(m) => m,
        other => other.to_string(),
    }
}

fn with_file(e: DarknetError, path: &Path) -> DarknetError {
    match e {
        DarknetError::Cfg { line, message } => DarknetError::Cfg {
            line,
            message: format!("{}: {message}", path.display()),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = "
[net]
width=64
height=64
channels=3
# comment
[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[maxpool]
size=2
stride=1

[convolutional]
filters=18
size=1
stride=1
pad=1
activation=linear

[yolo]
mask = 0,1,2
anchors = 10,14,  23,27,  37,58
classes=1
num=3

[route]
layers = -3

[upsample]
stride=2

[route]
layers = -1, 0
";

    #[test]
    fn cfg_sections_and_options() {
        let s = parse_cfg(TINY).unwrap();
        assert_eq!(s.len(), 9);
        assert_eq!(s[0].name, "net");
        assert_eq!(s[1].get("activation"), Some("leaky"));
        assert_eq!(s[5].get("mask"), Some("0,1,2"));
    }

    #[test]
    fn cfg_errors_name_the_line() {
        for (text, line) in [
            ("[net]\nwidth=1\nbogus\n", 3),
            ("width=1\n", 1),
            ("[net\n", 1),
        ] {
            match parse_cfg(text) {
                Err(DarknetError::Cfg { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn shapes_follow_darknet_arithmetic() {
        let net = Network::from_cfg(&parse_cfg(TINY).unwrap()).unwrap();
        assert_eq!(
            net.shapes,
            vec![
                (4, 64, 64),
                (4, 32, 32),
                (4, 32, 32),
                (18, 32, 32),
                (18, 32, 32),
                (4, 32, 32),
                (4, 64, 64),
                (8, 64, 64)
            ]
        );
        assert_eq!(
            net.layers[2],
            Layer::MaxPool {
                size: 2,
                stride: 1,
                padding: 1
            }
        );
        assert_eq!(net.layers[5], Layer::Route { layers: vec![2] });
        assert_eq!(net.layers[7], Layer::Route { layers: vec![6, 0] });
    }

    #[test]
    fn bad_cfgs_are_rejected() {
        let cases = [
            TINY.replace("layers = -3", "layers = -30"),
            TINY.replace("filters=18", "filters=17"),
            TINY.replace("[upsample]", "[lstm]"),
            TINY.replace("activation=leaky", "activation=swishy"),
            TINY.replace("mask = 0,1,2", "mask = 0,1,7"),
        ];
        for c in cases {
            assert!(Network::from_cfg(&parse_cfg(&c).unwrap()).is_err(), "{c}");
        }
    }

    #[test]
    fn header_seen_width_depends_on_version() {
        let mut v2 = vec![];
        for x in [0i32, 2, 0] {
            v2.extend_from_slice(&x.to_le_bytes());
        }
        v2.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let h = parse_weights_header(&v2).unwrap();
        assert_eq!((h.seen, h.len), (1 << 40, 20));
        let mut v1 = vec![];
        for x in [0i32, 1, 0] {
            v1.extend_from_slice(&x.to_le_bytes());
        }
        v1.extend_from_slice(&7u32.to_le_bytes());
        let h = parse_weights_header(&v1).unwrap();
        assert_eq!((h.seen, h.len), (7, 16));
        assert!(parse_weights_header(&[1, 2, 3]).is_err());
    }

    fn weights_for(net: &Network, fill: impl Fn(usize) -> f32) -> Vec<u8> {
        let mut b = vec![];
        for x in [0i32, 2, 0] {
            b.extend_from_slice(&x.to_le_bytes());
        }
        b.extend_from_slice(&0u64.to_le_bytes());
        let mut n = 0;
        for (i, l) in net.layers.iter().enumerate() {
            if let Layer::Conv {
                filters,
                size,
                groups,
                batch_normalize,
                ..
            } = *l
            {
                n += filters * (1 + 3 * batch_normalize as usize)
                    + filters * net.input_channels(i) / groups * size * size;
            }
        }
        for k in 0..n {
            b.extend_from_slice(&fill(k).to_le_bytes());
        }
        b
    }

    #[test]
    fn batch_norm_is_folded() {
        let net = Network::from_cfg(&parse_cfg(TINY).unwrap()).unwrap();
        // biases 1, scales 2, mean 0.5, var 4 for all 4 filters; kernel all 3.
        let mut vals = vec![1.0f32; 4];
        vals.extend([2.0; 4]);
        vals.extend([0.5; 4]);
        vals.extend([4.0; 4]);
        vals.extend([3.0; 4 * 3 * 9]);
        let bytes = weights_for(&net, |k| vals.get(k).copied().unwrap_or(0.25));
        let w = parse_weights(&bytes, &net).unwrap();
        let c0 = w[0].as_ref().unwrap();
        let k = 2.0 / (2.0 + 0.000_001);
        assert!((c0.kernel[0] - 3.0 * k).abs() < 1e-6);
        assert!((c0.bias[0] - (1.0 - 0.5 * k)).abs() < 1e-6);
        let c3 = w[3].as_ref().unwrap();
        assert_eq!(c3.bias.len(), 18);
        assert_eq!(c3.kernel.len(), 18 * 4);
        assert!(w[1].is_none());
    }

    #[test]
    fn short_or_long_weights_are_errors() {
        let net = Network::from_cfg(&parse_cfg(TINY).unwrap()).unwrap();
        let bytes = weights_for(&net, |_| 0.5);
        assert!(parse_weights(&bytes[..bytes.len() - 4], &net).is_err());
        let mut long = bytes.clone();
        long.extend_from_slice(&[0; 8]);
        assert!(parse_weights(&long, &net).is_err());
        assert!(parse_weights(&bytes, &net).is_ok());
    }

    #[test]
    fn onnx_has_outputs_and_metadata() {
        let net = Network::from_cfg(&parse_cfg(TINY).unwrap()).unwrap();
        let w = parse_weights(&weights_for(&net, |_| 0.5), &net).unwrap();
        let bytes = to_onnx(&net, &w, &["thing".to_string()]).unwrap();
        let model = ModelProto::decode(bytes.as_slice()).unwrap();
        let g = model.graph.unwrap();
        assert_eq!(g.output.len(), 1);
        assert_eq!(g.output[0].name.as_deref(), Some("yolo0"));
        let ops: Vec<_> = g.node.iter().map(|n| n.op_type.clone().unwrap()).collect();
        assert_eq!(
            ops,
            [
                "Conv",
                "LeakyRelu",
                "MaxPool",
                "MaxPool",
                "Conv",
                "Identity",
                "Resize",
                "Concat"
            ]
        );
        let pool = &g.node[3];
        let pads = pool
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some("pads"))
            .unwrap();
        assert_eq!(
            pads.ints,
            [0, 0, 1, 1],
            "size-2 stride-1 maxpool pads right/bottom"
        );
        let meta = read_meta(&bytes).unwrap();
        assert_eq!(meta.classes, 1);
        assert_eq!(meta.heads[0].mask, [0, 1, 2]);
        assert_eq!(meta.anchors[1], [23.0, 27.0]);
        assert_eq!(meta.names, ["thing"]);
        assert_eq!((meta.input_width, meta.input_height), (64, 64));
    }
}
