//! Detection on the robot (`[detect]` in `robot.toml`, off by default): the
//! YOLO detector of `gopigo detect` run on the robot's own camera frames,
//! its results published on `gopigo/{thing}/detections` as the same
//! [`gopigo_protocol::Detections`] message. No controller machine is needed
//! and no video leaves the robot for it.
//!
//! It never delays the safety path:
//! - it runs on its own thread ([`DETECT_THREAD`]), which lowers its own
//!   scheduling priority to [`NICE`] before ONNX Runtime starts its worker
//!   threads (they inherit it), so the executor thread, the MQTT session
//!   and the camera always win the CPU over inference;
//! - it takes the newest frame only (a slow inference skips frames, never
//!   queues them) and at most `max_fps` frames a second, with
//!   `threads` inference threads (its budget);
//! - the session publishes the newest result with a non-blocking QoS 0
//!   publish, and only while connected, so results never fill the client's
//!   queue that commands' results share.
//!
//! Parts: [`DetectConfig`] (the `[detect]` table), [`DetectConfig::choose_model`]
//! (int8 or fp32, pure), [`start`] (checks the files, loads the model on the
//! detector thread, reports a clear error at start), [`Onboard::publisher`]
//! (the session's side), and [`load_detector`], the one place the agent
//! loads a model.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopigo_camera::{Frame, FrameBus};
use gopigo_protocol::Detections;
use gopigo_vision::{Detector, DetectorConfig, Precision, VisionError};
use rumqttc::{AsyncClient, QoS};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::AgentError;

/// The detector thread's name (seen in `top -H` and `/proc/PID/task`).
pub const DETECT_THREAD: &str = "detect";

/// The scheduling priority (nice value) of the detector thread and of
/// ONNX Runtime's worker threads, which it starts: below the default 0 of
/// everything else in the agent.
pub const NICE: i32 = 10;

/// The model file in `model_dir`: the fp32 YOLOv3-tiny that our darknet
/// importer writes (`gopigo model import-darknet`, `crates/vision/setup.sh`).
pub const MODEL_FILE: &str = "yolov3-tiny.onnx";

/// The int8 model file in `model_dir`: [`MODEL_FILE`] quantised (QDQ,
/// static) by `crates/vision/setup.sh` on a development machine.
pub const INT8_MODEL_FILE: &str = "yolov3-tiny.int8.onnx";

/// Where `deploy/ansible/site.yml` installs the model and ONNX Runtime.
pub const INSTALL_DIR: &str = "/usr/local/lib/gopigo/vision";

/// `[detect]`: YOLO on the robot's own frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Run the detector on the robot (default false). Needs `[camera]
    /// enabled`.
    pub enabled: bool,
    /// Folder holding [`MODEL_FILE`] (default
    /// `/usr/local/lib/gopigo/vision/model`). Relative: from this file's folder.
    pub model_dir: PathBuf,
    /// ONNX Runtime's `libonnxruntime.so`, for this machine's architecture
    /// (default `/usr/local/lib/gopigo/vision/lib/libonnxruntime.so`).
    /// Relative: from this file's folder.
    pub runtime: PathBuf,
    /// Square network input in pixels, a multiple of 32 in 96..=608
    /// (default 320; 416 is the model's own, slower and a little better).
    pub input_size: u32,
    /// Most frames examined a second (0.1..=30; default 2).
    pub max_fps: f64,
    /// Keep detections scoring at least this (0.05..=0.95; default 0.5).
    pub threshold: f32,
    /// ONNX Runtime inference threads (1..=8; default 2 of a Pi's 4 cores).
    pub threads: usize,
    /// `"int8"` ([`INT8_MODEL_FILE`]) or `"fp32"` ([`MODEL_FILE`]). Unset:
    /// int8 when `model_dir` holds its file, else fp32 (and a log line
    /// saying how to get int8); see [`DetectConfig::choose_model`].
    #[serde(
        deserialize_with = "precision_key",
        skip_serializing_if = "Option::is_none"
    )]
    pub precision: Option<Precision>,
}

/// `[detect] precision`: exactly `"int8"` or `"fp32"` (the parser adds the
/// file, line and key to the message).
fn precision_key<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Precision>, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::String(s) if s == "int8" => Ok(Some(Precision::Int8)),
        toml::Value::String(s) if s == "fp32" => Ok(Some(Precision::Fp32)),
        other => Err(serde::de::Error::custom(format!(
            "[detect] precision = {other}: allowed \"int8\" or \"fp32\" (or leave it out: int8 when model_dir holds {INT8_MODEL_FILE}, else fp32)"
        ))),
    }
}

impl Default for DetectConfig {
    fn default() -> Self {
        let dir = Path::new(INSTALL_DIR);
        Self {
            enabled: false,
            model_dir: dir.join("model"),
            runtime: dir.join("lib").join("libonnxruntime.so"),
            input_size: 320,
            max_fps: 2.0,
            threshold: 0.5,
            threads: 2,
            precision: None,
        }
    }
}

/// The model the agent runs, and why that one.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelChoice {
    /// int8 or fp32.
    pub precision: Precision,
    /// The file in `model_dir`.
    pub path: PathBuf,
    /// Why: `[detect] precision` set, or the default with or without the
    /// int8 file.
    pub why: Why,
}

/// Why the agent runs the precision it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// `[detect] precision` says so.
    Asked,
    /// `precision` unset and the int8 model is there.
    Default,
    /// `precision` unset and no int8 model: fp32.
    NoInt8,
}

impl ModelChoice {
    /// For the start line: `int8, [detect] precision`, `int8, the default`
    /// or `fp32: no yolov3-tiny.int8.onnx in model_dir`.
    pub fn describe(&self) -> String {
        match self.why {
            Why::Asked => format!("{}, [detect] precision", self.precision),
            Why::Default => format!("{}, the default", self.precision),
            Why::NoInt8 => format!("{}: no {INT8_MODEL_FILE} in model_dir", self.precision),
        }
    }
}

/// How to get the int8 model onto a robot, for the log line and the error.
const HOW_TO_GET_INT8: &str = "crates/vision/setup.sh makes it on a development machine (in ~/.cache/gopigo/vision/model), scripts/build-pi.sh stages it beside the fp32 model and deploy/ansible/site.yml installs it";

impl DetectConfig {
    /// Allowed `input_size` (a multiple of 32 is checked too).
    pub const INPUT_RANGE: std::ops::RangeInclusive<u32> = 96..=608;
    /// Allowed `max_fps`.
    pub const FPS_RANGE: std::ops::RangeInclusive<f64> = 0.1..=30.0;
    /// Allowed `threshold`.
    pub const THRESHOLD_RANGE: std::ops::RangeInclusive<f32> = 0.05..=0.95;
    /// Allowed `threads`.
    pub const THREADS_RANGE: std::ops::RangeInclusive<usize> = 1..=8;

    /// The model file of `precision` in `model_dir`.
    pub fn model_path(&self, precision: Precision) -> PathBuf {
        self.model_dir.join(match precision {
            Precision::Fp32 => MODEL_FILE,
            Precision::Int8 => INT8_MODEL_FILE,
        })
    }

    /// Which model to run, given whether `model_dir` holds the int8 one:
    /// `precision` when set (int8 without its file is an error naming the
    /// file and the fix), else int8 when its file is there (faster: ONNX
    /// Runtime's int8 kernels, with the dot-product instructions of a Pi
    /// 5's Cortex-A76), else fp32.
    pub fn choose_model(&self, int8_present: bool) -> Result<ModelChoice, AgentError> {
        let (precision, why) = match (self.precision, int8_present) {
            (Some(p), _) => (p, Why::Asked),
            (None, true) => (Precision::Int8, Why::Default),
            (None, false) => (Precision::Fp32, Why::NoInt8),
        };
        let path = self.model_path(precision);
        if precision == Precision::Int8 && !int8_present {
            return Err(AgentError::Detect(format!(
                "precision = \"int8\", but the int8 model {} is missing: {HOW_TO_GET_INT8}; or set [detect] precision = \"fp32\" (or leave it out: int8 when the file is there, else fp32)",
                path.display()
            )));
        }
        Ok(ModelChoice {
            precision,
            path,
            why,
        })
    }

    /// The shortest time between two frames' starts (1 / `max_fps`).
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.max_fps)
    }

    /// Makes relative paths absolute against the config file's folder.
    pub fn resolve(&mut self, config_dir: &Path) {
        for p in [&mut self.model_dir, &mut self.runtime] {
            if p.is_relative() {
                *p = config_dir.join(&*p);
            }
        }
    }
}

/// The one place the agent loads a model: the settings of `[detect]` as
/// the vision crate's [`DetectorConfig`].
pub fn load_detector(cfg: &DetectConfig, model: &Path) -> Result<Detector, VisionError> {
    let config = DetectorConfig {
        input_size: Some(cfg.input_size),
        conf_threshold: cfg.threshold,
        threads: cfg.threads,
        runtime_path: Some(cfg.runtime.clone()),
        ..DetectorConfig::default()
    };
    Detector::load(model, &config)
}

/// How to put the files in place, for the start errors.
const HOW_TO_INSTALL: &str = "on a Pi, scripts/build-pi.sh stages both files and deploy/ansible/site.yml installs them under /usr/local/lib/gopigo/vision; on this machine, crates/vision/setup.sh puts them in ~/.cache/gopigo/vision (docs/robot.md, \"Detection on the robot\")";

/// Chooses the model, then checks that it and the runtime exist before
/// anything loads (pure but for the `is_file` looks); the error names the
/// file, the key and the fix. Running fp32 only because the int8 model is
/// absent is logged once, with how to get it.
pub fn check_files(cfg: &DetectConfig) -> Result<ModelChoice, AgentError> {
    let missing = |what: &str, key: &str, path: &Path| {
        AgentError::Detect(format!(
            "{what} {} is missing: {HOW_TO_INSTALL}; or point [detect] {key} at it, or set [detect] enabled = false",
            path.display()
        ))
    };
    let choice = cfg.choose_model(cfg.model_path(Precision::Int8).is_file())?;
    if !choice.path.is_file() {
        return Err(missing("the model", "model_dir", &choice.path));
    }
    if !cfg.runtime.is_file() {
        return Err(missing("the ONNX Runtime library", "runtime", &cfg.runtime));
    }
    if choice.why == Why::NoInt8 {
        tracing::info!(
            "[detect] precision is not set and there is no int8 model at {}: running fp32; for int8 (faster, most on a Pi 5): {HOW_TO_GET_INT8}",
            cfg.model_path(Precision::Int8).display()
        );
    }
    Ok(choice)
}

/// A loading error in the agent's words: which key to fix.
fn load_error(cfg: &DetectConfig, e: VisionError) -> AgentError {
    AgentError::Detect(match e {
        VisionError::RuntimeLoad { path, message } => format!(
            "runtime = {}: ONNX Runtime does not load ({message}); it must be the build for this machine's architecture (aarch64 on a Pi: scripts/build-pi.sh stages it)",
            path.display()
        ),
        e => format!("model_dir = {}: {e}", cfg.model_dir.display()),
    })
}

/// Lowers the calling thread's priority to [`NICE`]. On Linux the nice
/// value is per thread and threads inherit it from the one that starts them.
#[allow(unsafe_code)]
fn lower_priority() -> std::io::Result<()> {
    // SAFETY: setpriority(2) only reads its integer arguments; `who` 0 with
    // PRIO_PROCESS is the calling thread on Linux.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Detection running on the robot: the newest result, for the session.
pub struct Onboard {
    results: watch::Receiver<Option<Detections>>,
}

/// Checks the files, then starts the detector thread on the camera's
/// `bus` and waits for it to load the model. `Ok(None)` when `[detect]` is
/// off; an error (naming the file and the fix) when the model or runtime is
/// missing or does not load.
pub async fn start(
    cfg: &DetectConfig,
    bus: Option<&FrameBus>,
    cancel: CancellationToken,
) -> Result<Option<Onboard>, AgentError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let bus = bus.ok_or_else(|| {
        AgentError::Detect(
            "enabled, but the camera is off: set [camera] enabled = true (and drop --no-camera), or set [detect] enabled = false".into(),
        )
    })?;
    let choice = check_files(cfg)?;
    let (loaded_tx, loaded_rx) = oneshot::channel();
    let (results_tx, results) = watch::channel(None);
    let worker = Worker {
        cfg: cfg.clone(),
        model: choice.path.clone(),
        frames: bus.subscribe(),
        results: results_tx,
        cancel,
        handle: tokio::runtime::Handle::current(),
    };
    std::thread::Builder::new()
        .name(DETECT_THREAD.into())
        .spawn(move || worker.run(loaded_tx))
        .map_err(|source| AgentError::Io {
            what: "start the detector thread".into(),
            source,
        })?;
    match loaded_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(load_error(cfg, e)),
        Err(_) => {
            return Err(AgentError::Detect(
                "the detector thread ended while loading".into(),
            ))
        }
    }
    crate::agent::announce(format!(
        "detect      {} ({}) at {}x{}, at most {} frames/s, {} threads at nice {NICE}",
        choice.path.display(),
        choice.describe(),
        cfg.input_size,
        cfg.input_size,
        cfg.max_fps,
        cfg.threads
    ));
    Ok(Some(Onboard { results }))
}

impl Onboard {
    /// Starts publishing each new result on `topic` through the session's
    /// `client`, while the returned handle says the link is up.
    pub fn publisher(self, client: AsyncClient, topic: String) -> Publisher {
        let online = Arc::new(AtomicBool::new(false));
        let up = online.clone();
        let mut results = self.results;
        tokio::spawn(async move {
            while results.changed().await.is_ok() {
                let Some(msg) = results.borrow_and_update().clone() else {
                    continue;
                };
                if !up.load(Ordering::Relaxed) {
                    continue; // offline: nothing queues up; the next result goes
                }
                let payload = serde_json::to_vec(&msg).unwrap_or_default();
                if let Err(e) = client.try_publish(&topic, QoS::AtMostOnce, false, payload) {
                    tracing::debug!(error = %e, "detections not published (client queue full)");
                }
            }
        });
        Publisher { online }
    }
}

/// The session's handle on the detections publisher.
pub struct Publisher {
    online: Arc<AtomicBool>,
}

impl Publisher {
    /// The link is up (CONNACK) or down (an error): results go only while up.
    pub fn set_online(&self, up: bool) {
        self.online.store(up, Ordering::Relaxed);
    }
}

/// What the detector thread owns.
struct Worker {
    cfg: DetectConfig,
    /// The model file [`DetectConfig::choose_model`] chose.
    model: PathBuf,
    frames: watch::Receiver<Option<Arc<Frame>>>,
    results: watch::Sender<Option<Detections>>,
    cancel: CancellationToken,
    handle: tokio::runtime::Handle,
}

impl Worker {
    /// The thread: lower the priority, load the model (reported through
    /// `loaded`), then detect until cancelled.
    fn run(mut self, loaded: oneshot::Sender<Result<(), VisionError>>) {
        if let Err(e) = lower_priority() {
            tracing::warn!(error = %e, "cannot lower the detector's priority; it runs at the agent's");
        }
        let mut det = match load_detector(&self.cfg, &self.model) {
            Ok(d) => d,
            Err(e) => {
                let _ = loaded.send(Err(e));
                return;
            }
        };
        if loaded.send(Ok(())).is_err() {
            return;
        }
        let period = self.cfg.period();
        let mut last_seq = None;
        let mut rate = Rate::new();
        while let Some(frame) = self.next_frame(last_seq) {
            let started = Instant::now();
            last_seq = Some(frame.seq);
            match detect(&mut det, &frame) {
                Ok(msg) => {
                    rate.count(started.elapsed());
                    self.results.send_replace(Some(msg));
                }
                Err(e) => {
                    tracing::warn!(seq = frame.seq, error = %e, "frame skipped by the detector")
                }
            }
            if self.pause(period.saturating_sub(started.elapsed())) {
                break;
            }
        }
        tracing::debug!("the detector thread ends");
    }

    /// The newest frame other than `last`, waiting for one; `None` once
    /// cancelled or the camera is gone.
    fn next_frame(&mut self, last: Option<u64>) -> Option<Arc<Frame>> {
        let (frames, cancel) = (&mut self.frames, &self.cancel);
        self.handle.block_on(async {
            loop {
                if cancel.is_cancelled() {
                    return None;
                }
                let newest = frames.borrow_and_update().clone();
                if let Some(f) = newest.filter(|f| Some(f.seq) != last) {
                    return Some(f);
                }
                tokio::select! {
                    r = frames.changed() => r.ok()?,
                    _ = cancel.cancelled() => return None,
                }
            }
        })
    }

    /// Waits `d` (the rest of the frame's budget); true when cancelled.
    fn pause(&self, d: Duration) -> bool {
        if d.is_zero() {
            return self.cancel.is_cancelled();
        }
        let cancel = &self.cancel;
        self.handle.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(d) => cancel.is_cancelled(),
                _ = cancel.cancelled() => true,
            }
        })
    }
}

/// One frame: decode, detect, and the wire message (the same as `gopigo
/// detect` publishes).
fn detect(det: &mut Detector, frame: &Frame) -> Result<Detections, VisionError> {
    let img = gopigo_camera::jpeg::decode_jpeg(&frame.jpeg, "camera frame")?;
    let dets = det.detect_rgb(&img)?;
    Ok(gopigo_detect::to_message(frame, &dets))
}

/// Frames a second and inference time, logged once a minute.
struct Rate {
    since: Instant,
    frames: u32,
    busy: Duration,
}

impl Rate {
    const WINDOW: Duration = Duration::from_secs(60);

    fn new() -> Self {
        Self {
            since: Instant::now(),
            frames: 0,
            busy: Duration::ZERO,
        }
    }

    fn count(&mut self, took: Duration) {
        self.frames += 1;
        self.busy += took;
        let elapsed = self.since.elapsed();
        if elapsed >= Self::WINDOW {
            let fps = f64::from(self.frames) / elapsed.as_secs_f64();
            let ms = self.busy.as_secs_f64() * 1000.0 / f64::from(self.frames);
            tracing::info!(
                fps = format!("{fps:.2}"),
                ms_per_frame = format!("{ms:.0}"),
                "on-robot detection"
            );
            *self = Self::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_point_at_the_install_dir() {
        let c = DetectConfig::default();
        assert!(!c.enabled);
        assert_eq!(c.precision, None, "chosen by the files at start");
        assert_eq!(
            c.model_path(Precision::Fp32),
            Path::new("/usr/local/lib/gopigo/vision/model/yolov3-tiny.onnx")
        );
        assert_eq!(
            c.model_path(Precision::Int8),
            Path::new("/usr/local/lib/gopigo/vision/model/yolov3-tiny.int8.onnx")
        );
        assert_eq!(
            c.runtime,
            Path::new("/usr/local/lib/gopigo/vision/lib/libonnxruntime.so")
        );
        assert_eq!(c.period(), Duration::from_millis(500));
    }

    const MINIMAL: &str = "thing = \"r1\"\n[mqtt]\nhost = \"localhost\"\nclient_id = \"r1\"\nca_file = \"ca.pem\"\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n[board]\nkind = \"sim\"\n";

    fn validate(extra: &str) -> Result<crate::AgentConfig, String> {
        let p = Path::new("/etc/gopigo/robot.toml");
        crate::AgentConfig::from_toml(&format!("{MINIMAL}{extra}"), p)
            .and_then(|c| c.validate(p).map(|_| c))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_table_parses_and_bad_values_name_the_key() {
        let c = validate("").unwrap();
        assert_eq!(c.detect, DetectConfig::default());
        let c = validate(
            "[detect]\nenabled = true\nmodel_dir = \"m\"\nruntime = \"lib/libonnxruntime.so\"\ninput_size = 416\nmax_fps = 1.5\nthreshold = 0.4\nthreads = 3\n",
        )
        .unwrap();
        assert!(c.detect.enabled && c.detect.input_size == 416 && c.detect.threads == 3);
        for (word, p) in [("int8", Precision::Int8), ("fp32", Precision::Fp32)] {
            let c = validate(&format!("[detect]\nprecision = \"{word}\"\n")).unwrap();
            assert_eq!(c.detect.precision, Some(p));
            // what the agent writes back reads the same
            let back = toml::to_string(&c).unwrap();
            let again = crate::AgentConfig::from_toml(&back, Path::new("x")).unwrap();
            assert_eq!(again.detect.precision, Some(p), "{back}");
        }
        let cases: &[(&str, &[&str])] = &[
            (
                "input_size = 300",
                &["[detect] input_size = 300", "multiple of 32"],
            ),
            ("input_size = 1024", &["[detect] input_size"]),
            ("max_fps = 0.0", &["[detect] max_fps", "0.1..=30"]),
            ("threshold = 1.0", &["[detect] threshold"]),
            ("threads = 0", &["[detect] threads"]),
            ("model = \"x.onnx\"", &["robot.toml", "model"]),
            (
                "precision = \"int4\"",
                &[
                    "robot.toml",
                    "[detect] precision = \"int4\"",
                    "\"int8\" or \"fp32\"",
                ],
            ),
            (
                "precision = \"INT8\"",
                &["[detect] precision", "\"int8\" or \"fp32\""],
            ),
            (
                "precision = 8",
                &["[detect] precision = 8", "\"int8\" or \"fp32\""],
            ),
        ];
        for (line, needles) in cases {
            let e = validate(&format!("[detect]\n{line}\n")).unwrap_err();
            for n in *needles {
                assert!(e.contains(n), "{n:?} missing from {e:?} for {line}");
            }
        }
        let e = validate("[camera]\nenabled = false\n[detect]\nenabled = true\n").unwrap_err();
        assert!(
            e.contains("[detect] enabled") && e.contains("[camera] enabled = true"),
            "{e}"
        );
    }

    #[test]
    fn the_example_file_documents_every_key_with_its_default() {
        let c = crate::AgentConfig::from_toml(
            include_str!("../robot.example.toml"),
            Path::new("robot.example.toml"),
        )
        .unwrap();
        assert_eq!(c.detect, DetectConfig::default());
    }

    #[test]
    fn relative_paths_are_taken_from_the_config_folder() {
        let mut c = DetectConfig {
            model_dir: "vision/model".into(),
            runtime: "/opt/ort/libonnxruntime.so".into(),
            ..DetectConfig::default()
        };
        c.resolve(Path::new("/etc/gopigo"));
        assert_eq!(c.model_dir, Path::new("/etc/gopigo/vision/model"));
        assert_eq!(c.runtime, Path::new("/opt/ort/libonnxruntime.so"));
    }

    #[test]
    fn a_missing_file_is_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = DetectConfig {
            enabled: true,
            model_dir: dir.path().to_path_buf(),
            runtime: dir.path().join("libonnxruntime.so"),
            ..DetectConfig::default()
        };
        let e = check_files(&c).unwrap_err().to_string();
        let fp32 = c.model_path(Precision::Fp32);
        assert!(e.contains(&fp32.display().to_string()), "{e}");
        assert!(
            e.contains("model_dir") && e.contains("enabled = false"),
            "{e}"
        );
        assert!(e.contains("deploy/ansible/site.yml"), "{e}");
        std::fs::write(&fp32, b"x").unwrap();
        let e = check_files(&c).unwrap_err().to_string();
        assert!(
            e.contains("libonnxruntime.so") && e.contains("[detect] runtime"),
            "{e}"
        );
        c.runtime = fp32.clone();
        let choice = check_files(&c).unwrap();
        assert_eq!(
            (choice.precision, choice.why),
            (Precision::Fp32, Why::NoInt8)
        );
        assert_eq!(choice.path, fp32);
        // int8 asked for by name, without its file: refused with the file and the fix
        c.precision = Some(Precision::Int8);
        let e = check_files(&c).unwrap_err().to_string();
        let int8 = dir.path().join("yolov3-tiny.int8.onnx");
        assert!(e.contains(&int8.display().to_string()), "{e}");
        assert!(
            e.contains("precision = \"int8\"")
                && e.contains("crates/vision/setup.sh")
                && e.contains("scripts/build-pi.sh")
                && e.contains("precision = \"fp32\""),
            "{e}"
        );
        // with the file: int8, asked for or by default
        std::fs::write(&int8, b"x").unwrap();
        assert_eq!(check_files(&c).unwrap().path, int8);
        c.precision = None;
        assert_eq!(check_files(&c).unwrap().path, int8);
    }

    #[test]
    fn int8_is_the_default_when_its_model_is_there() {
        let cfg = |precision| DetectConfig {
            model_dir: "/m".into(),
            precision,
            ..DetectConfig::default()
        };
        let int8 = Path::new("/m/yolov3-tiny.int8.onnx");
        let fp32 = Path::new("/m/yolov3-tiny.onnx");
        use Precision::{Fp32, Int8};
        let cases: &[(Option<Precision>, bool, Precision, &Path, Why)] = &[
            (None, true, Int8, int8, Why::Default),
            (None, false, Fp32, fp32, Why::NoInt8),
            (Some(Int8), true, Int8, int8, Why::Asked),
            (Some(Fp32), true, Fp32, fp32, Why::Asked),
            (Some(Fp32), false, Fp32, fp32, Why::Asked),
        ];
        for &(asked, present, precision, path, why) in cases {
            let got = cfg(asked).choose_model(present).unwrap();
            let want = ModelChoice {
                precision,
                path: path.into(),
                why,
            };
            assert_eq!(got, want, "precision {asked:?}, int8 file there: {present}");
        }
        let e = cfg(Some(Int8)).choose_model(false).unwrap_err().to_string();
        assert!(e.contains("/m/yolov3-tiny.int8.onnx is missing"), "{e}");
        // the start line says which and why
        let line = |asked, present| cfg(asked).choose_model(present).unwrap().describe();
        assert_eq!(line(None, true), "int8, the default");
        assert_eq!(line(Some(Fp32), true), "fp32, [detect] precision");
        assert_eq!(
            line(None, false),
            "fp32: no yolov3-tiny.int8.onnx in model_dir"
        );
    }

    #[test]
    fn lowering_the_priority_is_inherited_by_new_threads() {
        let base = thread_nice();
        if base > NICE {
            return; // the test runs at a lower priority already
        }
        let got = std::thread::spawn(|| {
            lower_priority().unwrap();
            let child = std::thread::spawn(thread_nice).join().unwrap();
            (thread_nice(), child)
        })
        .join()
        .unwrap();
        assert_eq!(got, (NICE, NICE));
        assert_eq!(thread_nice(), base, "the caller keeps its priority");
    }

    /// The calling thread's nice value, from /proc (field 19 of stat).
    fn thread_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split(' ').nth(16).unwrap().parse().unwrap()
    }
}
