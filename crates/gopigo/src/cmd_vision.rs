//! `gopigo model import-darknet` and `gopigo detect`: the command line of
//! the vision and detect crates, which take plain option structs.
//!
//! Files, folders and video go through the vision crate's batch runner; an
//! `http(s)://` MJPEG URL goes through the live runner (newest frame only,
//! MQTT publishing, annotated stream).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use gopigo_vision::{Detector, DetectorConfig, ResizeMode};

#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Model tools.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Detect objects in an image, a folder, a video file, or a robot's MJPEG
    /// stream (then: newest frame only, optional MQTT publishing and an
    /// annotated MJPEG stream). Prints one JSON line per frame.
    Detect(DetectCommand),
}

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Convert a Darknet .cfg + .weights (e.g. yolov3-tiny) into an ONNX model.
    ImportDarknet {
        /// Darknet .cfg file.
        cfg: PathBuf,
        /// Darknet .weights file.
        weights: PathBuf,
        /// Class names file, one per line (e.g. coco.names).
        #[arg(long)]
        names: Option<PathBuf>,
        /// Where to write the ONNX model.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// The letterbox resizer, as `--resize` names it.
#[derive(ValueEnum, Debug, Clone, Copy)]
enum Resize {
    /// SIMD bilinear (`fast_image_resize`): fastest.
    Fast,
    /// Darknet's own two-pass bilinear arithmetic: matches the reference.
    Darknet,
}

impl From<Resize> for ResizeMode {
    fn from(r: Resize) -> Self {
        match r {
            Resize::Fast => ResizeMode::Fast,
            Resize::Darknet => ResizeMode::Darknet,
        }
    }
}

// The model and how to run it (no doc comment: clap would take it as
// the `detect` help text).
#[derive(Args, Debug)]
struct ModelArgs {
    /// ONNX model (default: the imported yolov3-tiny in the cache).
    #[arg(long, env = "GOPIGO_VISION_MODEL")]
    model: Option<PathBuf>,
    /// Network input size (multiple of 32; default: the model's).
    #[arg(long)]
    size: Option<u32>,
    /// Confidence threshold.
    #[arg(long, default_value_t = 0.5)]
    conf: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.45)]
    nms: f32,
    /// Inference threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Letterbox resizer: fast (SIMD) or darknet (matches the reference implementation).
    #[arg(long, value_enum, default_value_t = Resize::Fast)]
    resize: Resize,
}

impl ModelArgs {
    /// Loads the model (importing the default one on first use).
    fn load(&self) -> anyhow::Result<Detector> {
        let model = gopigo_vision::model_or_default(self.model.as_deref())?;
        let config = DetectorConfig {
            input_size: self.size,
            conf_threshold: self.conf,
            nms_threshold: self.nms,
            threads: self.threads,
            resize: self.resize.into(),
            runtime_path: None,
        };
        Detector::load(&model, &config)
            .with_context(|| format!("cannot load the model {}", model.display()))
    }
}

#[derive(Args, Debug)]
pub struct DetectCommand {
    /// Image file, folder of images, video file, or URL ffmpeg can open.
    source: String,
    #[command(flatten)]
    model: ModelArgs,
    /// Folder to write annotated JPEGs into.
    #[arg(long)]
    draw: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(long)]
    max_frames: Option<u64>,
    /// Robot whose stream this is: detections go to gopigo/{thing}/detections.
    #[arg(long, env = "GOPIGO_THING")]
    thing: Option<String>,
    /// TOML file with an [mqtt] table (a provisioned bundle's config) to
    /// publish detections with; needs --thing.
    #[arg(long)]
    mqtt_config: Option<PathBuf>,
    /// Serve the frames with boxes drawn as MJPEG on this port (0 = any free port).
    #[arg(long)]
    serve_port: Option<u16>,
    /// The robot camera's access token (sent as `Authorization: Bearer`).
    /// Without it, --thing with --mqtt-config (a controller identity) reads
    /// it from the robot's retained status, and again after the robot restarts.
    #[arg(long, env = "GOPIGO_CAMERA_TOKEN", hide_env_values = true)]
    camera_token: Option<String>,
    /// The most detections messages a second published for the robot
    /// (the newest result wins); keeps a robot on the dashboard within
    /// AWS IoT's 100 messages a second per connection (docs/dashboard.md).
    #[arg(long, default_value_t = gopigo_detect::DEFAULT_PUBLISH_HZ, env = "GOPIGO_DETECT_PUBLISH_HZ")]
    max_publish_hz: f64,
}

impl DetectCommand {
    fn is_live(&self) -> bool {
        self.source.starts_with("http://") || self.source.starts_with("https://")
    }
}

pub fn run(cmd: Commands) -> anyhow::Result<()> {
    match cmd {
        Commands::Model(ModelCommand::ImportDarknet {
            cfg,
            weights,
            names,
            output,
        }) => {
            gopigo_vision::write_model(&cfg, &weights, names.as_deref(), &output)?;
            println!("wrote {}", output.display());
            Ok(())
        }
        Commands::Detect(d) if d.is_live() => run_live(d),
        Commands::Detect(d) => run_batch(d),
    }
}

/// Files, folders and video: JSON lines to stdout.
fn run_batch(d: DetectCommand) -> anyhow::Result<()> {
    if d.mqtt_config.is_some() || d.serve_port.is_some() {
        anyhow::bail!("--mqtt-config and --serve-port need a live MJPEG URL (http://robot:8081/stream) as SOURCE");
    }
    let mut detector = d.model.load()?;
    let opts = gopigo_vision::batch::BatchOptions {
        source: d.source,
        draw: d.draw,
        max_frames: d.max_frames,
    };
    gopigo_vision::batch::run_batch(&mut detector, &opts, &mut std::io::stdout().lock())?;
    Ok(())
}

/// A robot's MJPEG stream: newest frame only, optional MQTT and annotated stream.
fn run_live(d: DetectCommand) -> anyhow::Result<()> {
    anyhow::ensure!(
        d.max_publish_hz.is_finite() && d.max_publish_hz >= 0.1,
        "--max-publish-hz {} is not a rate: give a number of messages a second, 0.1 or more",
        d.max_publish_hz
    );
    let detector = d.model.load()?;
    let opts = gopigo_detect::LiveOptions {
        url: d.source,
        thing: d.thing,
        mqtt_config: d.mqtt_config,
        serve_port: d.serve_port,
        max_frames: d.max_frames,
        camera_token: d.camera_token,
        publish_hz: d.max_publish_hz,
    };
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let mut out = std::io::stdout();
        let n = gopigo_detect::run_live(detector, opts, &mut out, crate::shutdown_signal()).await?;
        eprintln!("detected on {n} frames");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        c: Commands,
    }

    #[test]
    fn detect_flags_parse_into_the_detector_settings() {
        let t = T::try_parse_from([
            "t", "detect", "img.jpg", "--size", "320", "--resize", "darknet", "--conf", "0.3",
        ])
        .unwrap();
        let Commands::Detect(d) = t.c else {
            panic!("not detect")
        };
        let m = &d.model;
        assert_eq!((m.size, m.conf, m.threads), (Some(320), 0.3, 2));
        assert_eq!(ResizeMode::from(m.resize), ResizeMode::Darknet);
        assert!(!d.is_live());
        let t = T::try_parse_from([
            "t",
            "model",
            "import-darknet",
            "a.cfg",
            "a.weights",
            "-o",
            "m.onnx",
        ])
        .unwrap();
        assert!(matches!(
            t.c,
            Commands::Model(ModelCommand::ImportDarknet { .. })
        ));
        assert!(T::try_parse_from(["t", "detect", "x.jpg", "--resize", "slow"]).is_err());
    }
}
