//! `gopigo model import-darknet` and `gopigo detect`.
//!
//! Files, folders and video go through the vision crate's batch runner; an
//! `http(s)://` MJPEG URL goes through the live runner (newest frame only,
//! MQTT publishing, annotated stream).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use gopigo_vision::cli::DetectArgs;

/// The vision subcommands.
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

/// `gopigo model ...`.
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

/// `gopigo detect` arguments.
#[derive(Args, Debug)]
pub struct DetectCommand {
    #[command(flatten)]
    vision: DetectArgs,
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
}

/// Runs a vision subcommand.
pub fn run(cmd: Commands) -> anyhow::Result<()> {
    match cmd {
        Commands::Model(ModelCommand::ImportDarknet {
            cfg,
            weights,
            names,
            output,
        }) => {
            gopigo_vision::cli::run(gopigo_vision::cli::Commands::ImportDarknet {
                cfg,
                weights,
                names,
                output: output.clone(),
            })?;
            println!("wrote {}", output.display());
            Ok(())
        }
        Commands::Detect(d) => {
            let live =
                d.vision.source.starts_with("http://") || d.vision.source.starts_with("https://");
            if !live {
                if d.mqtt_config.is_some() || d.serve_port.is_some() {
                    anyhow::bail!("--mqtt-config and --serve-port need a live MJPEG URL (http://robot:8081/stream) as SOURCE");
                }
                return Ok(gopigo_vision::cli::run(
                    gopigo_vision::cli::Commands::Detect(d.vision),
                )?);
            }
            let model = match &d.vision.model {
                Some(m) => m.clone(),
                None => gopigo_vision::ensure_default_model()?,
            };
            let config = gopigo_vision::DetectorConfig {
                input_size: d.vision.size,
                conf_threshold: d.vision.conf,
                nms_threshold: d.vision.nms,
                threads: d.vision.threads,
                resize: d.vision.resize,
                runtime_path: None,
            };
            let detector = gopigo_vision::Detector::load(&model, &config)
                .with_context(|| format!("cannot load the model {}", model.display()))?;
            let opts = gopigo_detect::LiveOptions {
                url: d.vision.source.clone(),
                thing: d.thing,
                mqtt_config: d.mqtt_config,
                serve_port: d.serve_port,
                max_frames: d.vision.max_frames,
                camera_token: d.camera_token,
            };
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(async move {
                let mut out = std::io::stdout();
                let n = gopigo_detect::run_live(detector, opts, &mut out, crate::shutdown_signal())
                    .await?;
                eprintln!("detected on {n} frames");
                Ok(())
            })
        }
    }
}
