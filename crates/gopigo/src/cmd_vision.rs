//! `gopigo model import-darknet` and `gopigo detect`: the command line of
//! the vision and detect crates, which take plain option structs.
//!
//! Files, folders and video go through the vision crate's batch runner;
//! robots' live cameras (`http(s)://` MJPEG URLs, `--url`, or `--thing`
//! alone for MQTT video, or `--all-online`) go through the detect crate's
//! fleet runner (`--workers`, each its own session; newest frame of each
//! robot in turn, MQTT publishing, annotated stream).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use gopigo_vision::{Detector, DetectorConfig, Precision, ResizeMode};

#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Model tools.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Detect objects in an image, a folder, a video file, or robots' live
    /// cameras: MJPEG streams (SOURCE or --url), robots' MQTT video through
    /// the broker (--thing without a URL), or every online robot
    /// (--all-online). One process serves several robots, taking the newest
    /// frame of each in turn (--workers: frames of different robots at
    /// once). Prints one JSON line per frame.
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
    /// The default model's precision: int8 (default: faster, finds 95 %
    /// of fp32's detections; fp32 with a note when crates/vision/setup.sh
    /// has not made it) or fp32 (default with --resize darknet). Not with --model.
    #[arg(long, value_parser = parse_precision, conflicts_with = "model")]
    precision: Option<Precision>,
    /// Network input size (multiple of 32; default: the model's).
    #[arg(long)]
    size: Option<u32>,
    /// Confidence threshold (default: 0.5; 0.25, darknet's, with --resize darknet).
    #[arg(long)]
    conf: Option<f32>,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.45)]
    nms: f32,
    /// Inference threads; with several robots, shared out among the
    /// --workers (each at least 1).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Letterbox resizer: fast (SIMD) or darknet (matches the reference implementation).
    #[arg(long, value_enum, default_value_t = Resize::Fast)]
    resize: Resize,
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse()
        .map_err(|e: gopigo_vision::VisionError| e.to_string())
}

impl ModelArgs {
    /// The precision and detector settings the flags ask for, with the
    /// mode's defaults where a flag is left out (darknet-compatible mode:
    /// fp32 and darknet's 0.25 threshold).
    fn settings(&self) -> (Precision, DetectorConfig) {
        let resize = ResizeMode::from(self.resize);
        let precision = self
            .precision
            .unwrap_or_else(|| Precision::for_resize(resize));
        let config = DetectorConfig {
            input_size: self.size,
            conf_threshold: self.conf.unwrap_or_else(|| resize.default_conf_threshold()),
            nms_threshold: self.nms,
            threads: self.threads,
            intra_op_spinning: true,
            resize,
            runtime_path: None,
        };
        (precision, config)
    }

    /// Loads the model (importing the default one on first use). When
    /// int8 is only the default (no --precision) and its model has not
    /// been made (`crates/vision/setup.sh` without its Python step, as
    /// `scripts/demo.sh` runs it), fp32 is used and the log says so.
    fn load(&self) -> anyhow::Result<Detector> {
        let (_, config) = self.settings();
        Ok(self.load_workers(&config, 1)?.remove(0))
    }

    /// [`ModelArgs::load`] `n` times with `config`: one session per worker.
    fn load_workers(&self, config: &DetectorConfig, n: usize) -> anyhow::Result<Vec<Detector>> {
        let (precision, _) = self.settings();
        let model = match gopigo_vision::model_for(self.model.as_deref(), precision) {
            Err(gopigo_vision::VisionError::Int8ModelMissing { path })
                if self.precision.is_none() =>
            {
                eprintln!(
                    "detect: no int8 model at {} (made by crates/vision/setup.sh); using fp32",
                    path.display()
                );
                gopigo_vision::model_for(None, Precision::Fp32)?
            }
            other => other?,
        };
        (0..n)
            .map(|_| {
                Detector::load(&model, config)
                    .with_context(|| format!("cannot load the model {}", model.display()))
            })
            .collect()
    }
}

#[derive(Args, Debug)]
pub struct DetectCommand {
    /// Image file, folder of images, video file, URL ffmpeg can open, or a
    /// robot's MJPEG stream (http://robot:8081/stream). Leave it out to name
    /// robots with --url/--thing or --all-online.
    source: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    /// Folder to write annotated JPEGs into.
    #[arg(long)]
    draw: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(long)]
    max_frames: Option<u64>,
    /// A robot: its detections go to gopigo/{thing}/detections. Repeat for
    /// several. Paired in order with the stream URLs (SOURCE, --url); with no
    /// URL at all, the detector reads each robot's MQTT video through the
    /// broker (it asks for it while it runs), so it works for a robot it
    /// cannot reach directly.
    #[arg(long, env = "GOPIGO_THING")]
    thing: Vec<String>,
    /// Another robot's MJPEG stream URL; repeat for several (one --thing per URL).
    #[arg(long, value_name = "URL")]
    url: Vec<String>,
    /// Every robot that is online (it sends telemetry; its status says when
    /// it leaves), through its MQTT video; robots join and leave as they go
    /// on- and offline. Needs --mqtt-config of a controller identity.
    #[arg(long)]
    all_online: bool,
    /// TOML file with an [mqtt] table (a provisioned bundle's config) to
    /// publish detections with; needs --thing. A controller identity also
    /// reads the robots' MQTT video and camera tokens.
    #[arg(long)]
    mqtt_config: Option<PathBuf>,
    /// Serve the frames with boxes drawn as MJPEG on this port (0 = any free
    /// port); one robot only.
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
    /// Live cameras: frames detected at once, each by a worker with its own
    /// model session and --threads/N inference threads; a robot is on one
    /// worker at a time, so its results stay in order. auto (default): one
    /// per robot up to --threads (one robot: one worker with every thread).
    /// Never more than the robots named (not capped with --all-online).
    #[arg(long, value_name = "N|auto", value_parser = parse_workers, default_value = "auto")]
    workers: Workers,
    /// Whether the inference threads spin while they wait for work: auto
    /// (default) spins with one worker (ONNX Runtime's default) and not with
    /// several, where a spinning thread takes the CPU another worker needs.
    /// A session of one thread has none to spin (it runs on the worker's).
    #[arg(long, value_enum, default_value_t = Spinning::Auto)]
    spinning: Spinning,
}

/// `--workers`: a number, or auto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Workers(Option<usize>);

fn parse_workers(s: &str) -> Result<Workers, String> {
    match s {
        "auto" => Ok(Workers(None)),
        n => n.parse().map(|n| Workers(Some(n))).map_err(|_| {
            format!("{n:?} is not a number of workers: give a whole number (1 or more) or auto")
        }),
    }
}

/// `--spinning`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Spinning {
    /// On with one worker, off with several.
    Auto,
    /// Always (ONNX Runtime's default).
    On,
    /// Never: a waiting thread sleeps.
    Off,
}

impl DetectCommand {
    /// Whether this reads robots' live cameras rather than files.
    fn is_live(&self) -> bool {
        let url = |s: &String| s.starts_with("http://") || s.starts_with("https://");
        match &self.source {
            Some(s) => url(s),
            None => !self.url.is_empty() || !self.thing.is_empty() || self.all_online,
        }
    }

    /// The robots to watch, from SOURCE, --url, --thing and --all-online.
    fn fleet(&self) -> anyhow::Result<gopigo_detect::FleetOptions> {
        let urls: Vec<String> = self.source.iter().chain(&self.url).cloned().collect();
        let streams =
            gopigo_detect::plan_streams(&urls, &self.thing).map_err(anyhow::Error::msg)?;
        Ok(gopigo_detect::FleetOptions {
            streams,
            all_online: self.all_online,
            mqtt_config: self.mqtt_config.clone(),
            serve_port: self.serve_port,
            max_frames: self.max_frames,
            camera_token: self.camera_token.clone(),
            publish_hz: self.max_publish_hz,
        })
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
    if d.mqtt_config.is_some() || d.serve_port.is_some() || d.workers.0.is_some() {
        anyhow::bail!("--mqtt-config, --serve-port and --workers need a robot's live camera: an MJPEG URL (http://robot:8081/stream), --thing, or --all-online");
    }
    let Some(source) = d.source else {
        anyhow::bail!("no SOURCE: give an image, folder, video or stream URL, or robots with --thing/--url/--all-online");
    };
    let mut detector = d.model.load()?;
    let opts = gopigo_vision::batch::BatchOptions {
        source,
        draw: d.draw,
        max_frames: d.max_frames,
    };
    gopigo_vision::batch::run_batch(&mut detector, &opts, &mut std::io::stdout().lock())?;
    Ok(())
}

impl DetectCommand {
    /// The workers, and the detector settings of each one's session.
    fn workers(
        &self,
        opts: &gopigo_detect::FleetOptions,
    ) -> anyhow::Result<(usize, DetectorConfig)> {
        let streams = (!opts.all_online).then_some(opts.streams.len());
        let plan = gopigo_detect::plan_workers(self.workers.0, self.model.threads, streams)
            .map_err(anyhow::Error::msg)?;
        let (_, mut config) = self.model.settings();
        config.threads = plan.threads_each;
        config.intra_op_spinning = match self.spinning {
            Spinning::Auto => plan.workers == 1,
            Spinning::On => true,
            Spinning::Off => false,
        };
        Ok((plan.workers, config))
    }
}

/// Robots' live cameras: newest frame of each in turn, optional MQTT and
/// annotated stream.
fn run_live(d: DetectCommand) -> anyhow::Result<()> {
    let opts = d.fleet()?;
    // Wrong flags fail before the model loads.
    opts.check()?;
    let (workers, config) = d.workers(&opts)?;
    let detectors = d.model.load_workers(&config, workers)?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let mut out = std::io::stdout();
        let n =
            gopigo_detect::run_fleet(detectors, opts, &mut out, crate::shutdown_signal()).await?;
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
        assert_eq!((m.size, m.conf, m.threads), (Some(320), Some(0.3), 2));
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

    fn detect(args: &[&str]) -> DetectCommand {
        let t = T::try_parse_from(["t", "detect"].iter().chain(args)).unwrap();
        let Commands::Detect(d) = t.c else {
            panic!("not detect")
        };
        d
    }

    #[test]
    fn several_robots_by_url_by_name_or_all_online() {
        let d = detect(&[
            "http://a:1/stream",
            "--url",
            "http://b:2/stream",
            "--thing",
            "r1",
            "--thing",
            "r2",
        ]);
        assert!(d.is_live());
        let f = d.fleet().unwrap();
        assert_eq!(f.streams.len(), 2);
        assert_eq!(f.streams[1].thing.as_deref(), Some("r2"));
        assert_eq!(
            f.streams[1].source,
            gopigo_detect::Source::Mjpeg("http://b:2/stream".into())
        );
        let d = detect(&["--thing", "r1", "--thing", "r2", "--mqtt-config", "c.toml"]);
        assert!(d.is_live());
        let f = d.fleet().unwrap();
        assert!(f
            .streams
            .iter()
            .all(|s| s.source == gopigo_detect::Source::Mqtt));
        f.check().unwrap();
        let d = detect(&["--all-online"]);
        assert!(d.is_live());
        let e = d.fleet().unwrap().check().unwrap_err().to_string();
        assert!(e.contains("--mqtt-config"), "{e}");
        let e = detect(&["--url", "http://a/", "--thing", "r1", "--thing", "r2"])
            .fleet()
            .unwrap_err()
            .to_string();
        assert!(e.contains("one --thing per URL"), "{e}");
        assert!(!detect(&["photos/"]).is_live());
        assert!(run_batch(detect(&[]))
            .unwrap_err()
            .to_string()
            .contains("no SOURCE"));
    }

    #[test]
    fn workers_flag_shares_the_threads_and_says_what_is_wrong() {
        let two = ["--thing", "r1", "--thing", "r2", "--mqtt-config", "c.toml"];
        let plan = |extra: &[&str]| {
            let args: Vec<&str> = two.iter().chain(extra).copied().collect();
            let d = detect(&args);
            let (n, c) = d.workers(&d.fleet().unwrap()).unwrap();
            (n, c.threads, c.intra_op_spinning)
        };
        assert_eq!(plan(&[]), (2, 1, false));
        assert_eq!(plan(&["--workers", "1"]), (1, 2, true));
        assert_eq!(plan(&["--workers", "2", "--threads", "4"]), (2, 2, false));
        assert_eq!(plan(&["--workers", "2", "--spinning", "on"]), (2, 1, true));
        assert_eq!(
            plan(&["--workers", "1", "--spinning", "off"]),
            (1, 2, false)
        );
        let one = detect(&["http://a/stream", "--workers", "4"]);
        let (n, c) = one.workers(&one.fleet().unwrap()).unwrap();
        assert_eq!((n, c.threads, c.intra_op_spinning), (1, 2, true));
        let zero = detect(&["http://a/stream", "--workers", "0"]);
        let e = zero
            .workers(&zero.fleet().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--workers 0"), "{e}");
        let e = T::try_parse_from(["t", "detect", "--workers", "many"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("whole number"), "{e}");
        let e = run_batch(detect(&["photos/", "--workers", "2"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--workers"), "{e}");
    }

    fn model_args(args: &[&str]) -> Result<ModelArgs, clap::Error> {
        let t = T::try_parse_from(["t", "detect", "x.jpg"].iter().chain(args))?;
        let Commands::Detect(d) = t.c else {
            panic!("not detect")
        };
        Ok(d.model)
    }

    #[test]
    fn darknet_mode_defaults_to_darknets_threshold_in_fp32() {
        let (p, c) = model_args(&["--resize", "darknet"]).unwrap().settings();
        assert_eq!((p, c.conf_threshold), (Precision::Fp32, 0.25));
        let (p, c) = model_args(&[]).unwrap().settings();
        assert_eq!((p, c.conf_threshold), (Precision::default(), 0.5));
        let (p, c) = model_args(&[
            "--resize",
            "darknet",
            "--conf",
            "0.4",
            "--precision",
            "int8",
        ])
        .unwrap()
        .settings();
        assert_eq!((p, c.conf_threshold), (Precision::Int8, 0.4));
    }

    #[test]
    fn precision_flag() {
        let (p, _) = model_args(&["--precision", "int8"]).unwrap().settings();
        assert_eq!(p, Precision::Int8);
        let (p, _) = model_args(&["--precision", "fp32"]).unwrap().settings();
        assert_eq!(p, Precision::Fp32);
        let e = model_args(&["--precision", "int4"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("fp32 or int8"), "{e}");
        let e = model_args(&["--model", "m.onnx", "--precision", "int8"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--model"), "{e}");
    }
}
