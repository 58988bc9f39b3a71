//! YOLO on robots' live camera streams, as the controller side runs it.
//!
//! Parts:
//! - [`fleet`]: one detector for several robots. Each robot's camera is read
//!   as MJPEG over HTTP or as MQTT video through the broker (for a robot the
//!   detector cannot reach); [`fleet::run_fleet`] takes the newest frame of
//!   each stream in turn ([`schedule`]) with one or more workers, each its
//!   own ONNX Runtime session, each on a different stream at a time.
//! - [`link`]: the one MQTT connection: detections out; robots' status
//!   (camera tokens, who is online) and MQTT video in; video requests renewed.
//! - [`LiveOptions`]: the stream URL, the robot it belongs to, where to
//!   publish (an `[mqtt]` table of a bundle's TOML) and whether to serve an
//!   annotated stream.
//! - [`run_live`]: one robot's MJPEG stream (a fleet of one): always works on the newest
//!   frame (the camera client drops what arrived during inference, so there
//!   is never a backlog), prints one JSON line per processed frame, publishes
//!   [`gopigo_protocol::Detections`] on `gopigo/{thing}/detections`, serves
//!   the frames with boxes drawn as MJPEG, and reports frames per second.
//! - [`to_message`]: detector output → the wire message (pure).
//! - [`Throttle`]: at most [`LiveOptions::publish_hz`] detections messages
//!   a second for the robot (default [`DEFAULT_PUBLISH_HZ`]); a result that
//!   comes sooner waits for the next slot and a newer one replaces it
//!   (the latest wins). Every processed frame still prints its JSON line.
//! - The camera token: the robot's camera wants its per-boot token. Given
//!   (`--camera-token`, `GOPIGO_CAMERA_TOKEN`) it is used as is; otherwise,
//!   with `--thing` and an MQTT identity that may read the robot's status (a
//!   controller), it is learned from the retained `gopigo/{thing}/status`
//!   (`camera_token`), and learned again when the robot restarts.
//!
//! A stream that drops is reconnected with backoff; a URL that never was an
//! MJPEG stream is an error at once.

pub mod fleet;
pub mod link;
pub mod schedule;

pub use fleet::{
    plan_streams, plan_workers, run_fleet, FleetOptions, Source, StreamSpec, WorkerPlan,
    MAX_WORKERS,
};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gopigo_camera::mjpeg::{ClientOptions, LatestFrames, MjpegClient};
use gopigo_camera::{jpeg, Frame, FrameBus};
use gopigo_client::MqttSettings;
use gopigo_protocol::{Detection as WireDetection, Detections, Status};
use gopigo_vision::{draw_detections, Detection, Detector};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::watch;

/// Errors of the live detector; each names the URL, file or output at fault.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The stream cannot be opened at all.
    #[error("cannot read the MJPEG stream {url}: {reason}")]
    Stream {
        /// The stream URL as given.
        url: String,
        /// What failed and, where it helps, what to do (a token to give,
        /// a camera that is not running).
        reason: String,
    },
    /// The MQTT config cannot be used.
    #[error("MQTT config {path}: {reason}")]
    Config {
        /// The TOML file given as `--mqtt-config`.
        path: PathBuf,
        /// The TOML parser's message, or the missing `--thing`.
        reason: String,
    },
    /// TLS material of the MQTT identity.
    #[error(transparent)]
    Client(#[from] gopigo_client::ClientError),
    /// The detector failed on every frame, or cannot load.
    #[error(transparent)]
    Vision(#[from] gopigo_vision::VisionError),
    /// Options that cannot work together; says what to give instead.
    #[error("{0}")]
    Usage(String),
    /// Output could not be written.
    #[error("cannot write {what}: {source}")]
    Io {
        /// `stdout`, or the annotated stream's listen address.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// How to run on a live stream.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// MJPEG URL (the robot's `http://host:8081/stream`).
    pub url: String,
    /// Robot the stream belongs to; names the detections topic.
    pub thing: Option<String>,
    /// A TOML file with an `[mqtt]` table (a provisioned bundle's config).
    pub mqtt_config: Option<PathBuf>,
    /// Port for the annotated MJPEG stream (0 = any free port).
    pub serve_port: Option<u16>,
    /// Stop after this many frames.
    pub max_frames: Option<u64>,
    /// The camera's access token; `None` learns it from the robot's
    /// retained status when `thing` and `mqtt_config` are set.
    pub camera_token: Option<String>,
    /// The most detections messages a second published for the robot.
    pub publish_hz: f64,
}

/// The default of [`LiveOptions::publish_hz`] (`--max-publish-hz`): five a
/// second draws boxes that follow a moving object (the page keeps each for
/// 1.5 s) and, with the robot's 5 Hz telemetry, keeps a robot on screen at
/// 10 messages a second on the dashboard's connection, a tenth of AWS
/// IoT's 100 publishes a second per connection (docs/dashboard.md).
pub const DEFAULT_PUBLISH_HZ: f64 = 5.0;

/// The publish rate limit (see the crate docs); pure, with the clock passed in.
#[derive(Debug)]
pub struct Throttle {
    gap: Duration,
    last: Option<Instant>,
    pending: Option<String>,
}

impl Throttle {
    /// At most `hz` messages a second (`hz` > 0).
    pub fn new(hz: f64) -> Self {
        Throttle {
            gap: Duration::from_secs_f64(1.0 / hz),
            last: None,
            pending: None,
        }
    }

    fn ready(&self, now: Instant) -> bool {
        self.last.is_none_or(|l| now.duration_since(l) >= self.gap)
    }

    /// A new result: `Some` to publish now, or `None` when it waits (in
    /// place of any older one waiting).
    pub fn offer(&mut self, now: Instant, msg: String) -> Option<String> {
        if self.ready(now) {
            self.last = Some(now);
            self.pending = None;
            Some(msg)
        } else {
            self.pending = Some(msg);
            None
        }
    }

    /// When the waiting result may go, if one waits.
    pub fn due(&self) -> Option<Instant> {
        self.pending.as_ref()?;
        Some(self.last.map_or(Instant::now(), |l| l + self.gap))
    }

    /// The waiting result, once its slot has come.
    pub fn take_due(&mut self, now: Instant) -> Option<String> {
        if self.pending.is_some() && self.ready(now) {
            self.last = Some(now);
            return self.pending.take();
        }
        None
    }
}

#[derive(serde::Deserialize)]
struct MqttFile {
    mqtt: MqttSettings,
}

/// Reads the `[mqtt]` table of a TOML file.
pub fn load_mqtt_settings(path: &Path) -> Result<MqttSettings, DetectError> {
    let err = |reason: String| DetectError::Config {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let mut file: MqttFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    file.mqtt
        .resolve_paths(path.parent().unwrap_or(Path::new(".")));
    Ok(file.mqtt)
}

/// The wire message for one frame's detections (pure).
pub fn to_message(frame: &Frame, dets: &[Detection]) -> Detections {
    Detections {
        frame_ts_ms: frame.captured_at_ms,
        width: frame.width,
        height: frame.height,
        detections: dets
            .iter()
            .map(|d| WireDetection {
                class: d.class.clone(),
                score: d.score,
                bbox: [d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h],
            })
            .collect(),
    }
}

async fn connect(url: &str, token: Option<&str>) -> Result<MjpegClient, DetectError> {
    let opts = ClientOptions {
        recv_buffer_bytes: Some(64 * 1024),
        ..Default::default()
    };
    MjpegClient::connect_with_token(url, &opts, token)
        .await
        .map_err(|e| DetectError::Stream {
            url: url.to_string(),
            reason: match e {
                gopigo_camera::CameraError::Unauthorized { .. } => format!(
                    "{e}; give the token with --camera-token (GOPIGO_CAMERA_TOKEN), or --thing \
                     with --mqtt-config of a controller identity to read it from the robot's status"
                ),
                e => e.to_string(),
            },
        })
}

/// Where the camera token comes from.
pub(crate) enum Token {
    /// No token: an open camera.
    None,
    /// Given on the command line or in the environment.
    Given(String),
    /// The newest `camera_token` of the robot's retained status.
    Status(watch::Receiver<Option<String>>),
}

/// How long to wait for the robot's status to carry a token.
pub const STATUS_WAIT: Duration = Duration::from_secs(15);

impl Token {
    /// The token to use now; from the status, waits up to [`STATUS_WAIT`]
    /// for an online status with one.
    async fn current(&mut self) -> Option<String> {
        match self {
            Token::None => None,
            Token::Given(t) => Some(t.clone()),
            Token::Status(rx) => {
                let _ = tokio::time::timeout(STATUS_WAIT, rx.wait_for(Option::is_some)).await;
                let t = rx.borrow_and_update().clone();
                if t.is_none() {
                    tracing::warn!("no camera_token in the robot's status yet; trying without");
                }
                t
            }
        }
    }
}

/// The camera token in a status payload: only an online robot's counts.
pub fn token_of_status(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<Status>(payload)
        .ok()
        .filter(|s| s.online)
        .and_then(|s| s.camera_token)
}

/// How long the first connection may keep failing at the network level (a
/// robot that is still starting) before the detector gives up.
pub const STARTUP_GRACE: Duration = Duration::from_secs(30);

/// `host:port` of an `http://` URL (pure).
pub fn authority_of(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let auth = rest.split(['/', '?', '#']).next()?;
    if auth.is_empty() {
        return None;
    }
    if auth.starts_with('[')
        || auth
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        Some(auth.to_string())
    } else {
        Some(format!("{auth}:80"))
    }
}

/// Connects once the server accepts TCP connections, waiting up to
/// [`STARTUP_GRACE`] for that (a robot that is still starting). A server
/// that answers with something other than an MJPEG stream is an error at once.
pub(crate) async fn connect_first(
    url: &str,
    token: &mut Token,
) -> Result<MjpegClient, DetectError> {
    if let Some(addr) = authority_of(url) {
        let started = Instant::now();
        let mut wait = Duration::from_millis(200);
        while let Err(e) = tokio::net::TcpStream::connect(&addr).await {
            if started.elapsed() + wait >= STARTUP_GRACE {
                return Err(DetectError::Stream {
                    url: url.to_string(),
                    reason: format!(
                        "cannot connect to {addr} for {}s: {e}; is the robot's camera running?",
                        STARTUP_GRACE.as_secs()
                    ),
                });
            }
            tracing::info!(url, error = %e, "stream not reachable yet; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
    let t = token.current().await;
    connect(url, t.as_deref()).await
}

/// Serves the annotated frames on 127.0.0.1:`port` until `stop` is true.
pub(crate) async fn serve_annotated(
    port: u16,
    bus: FrameBus,
    mut stop: watch::Receiver<bool>,
) -> Result<(), DetectError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| DetectError::Io {
            what: format!("127.0.0.1:{port} (annotated stream)"),
            source,
        })?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("annotated stream on http://{addr}/stream");
        eprintln!("annotated stream: http://{addr}/stream");
    }
    // Loopback only: no token, the default viewer cap and timeouts.
    let options = gopigo_camera::mjpeg::ServeOptions::default();
    tokio::spawn(async move {
        let _ = gopigo_camera::mjpeg::serve(listener, bus, options, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    });
    Ok(())
}

/// Detections of one frame, and the frame with boxes drawn when `draw`.
pub(crate) type Detected = (Vec<Detection>, Option<Vec<u8>>);

/// Runs `det` on `frame` (call it on a blocking thread): decode, letterbox,
/// inference, and the boxes drawn when `draw`.
pub(crate) fn detect_frame(
    det: &mut Detector,
    frame: &Frame,
    draw: bool,
) -> Result<Detected, gopigo_vision::VisionError> {
    let img = jpeg::decode_jpeg(&frame.jpeg, "")?;
    let dets = det.detect_rgb(&img)?;
    let drawn = match draw {
        true => Some(jpeg::encode_jpeg(&draw_detections(&img, &dets), 80)?),
        false => None,
    };
    Ok((dets, drawn))
}

/// Publishes a detections message (QoS 0: a newer one follows).
pub(crate) fn publish(client: &AsyncClient, topic: &str, payload: Option<String>) {
    if let Some(payload) = payload {
        if let Err(e) = client.try_publish(topic, QoS::AtMostOnce, false, payload) {
            tracing::debug!(error = %e, "detections not published");
        }
    }
}

/// One line of output: the wire message, and the robot when known.
#[derive(serde::Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    thing: Option<&'a str>,
    #[serde(flatten)]
    msg: &'a Detections,
}

/// Hands one frame's detections on: a JSON line to `out` (naming `thing`),
/// the message to MQTT (`client`, detections topic) through the robot's
/// [`Throttle`], the drawn frame to the annotated stream.
pub(crate) fn emit(
    out: &mut (dyn Write + Send),
    thing: Option<&str>,
    mqtt: Option<(&AsyncClient, &str, &mut Throttle)>,
    annotated: &FrameBus,
    frame: &Frame,
    dets: &[Detection],
    drawn: Option<Vec<u8>>,
) -> Result<(), DetectError> {
    let msg = to_message(frame, dets);
    let line = serde_json::to_string(&Line { thing, msg: &msg }).unwrap_or_default();
    writeln!(out, "{line}").map_err(|source| DetectError::Io {
        what: "stdout".into(),
        source,
    })?;
    if let Some((client, topic, throttle)) = mqtt {
        let payload = serde_json::to_string(&msg).unwrap_or_default();
        publish(client, topic, throttle.offer(Instant::now(), payload));
    }
    if let Some(jpeg) = drawn {
        if let Ok(f) = Frame::from_jpeg(&jpeg, frame.seq, frame.captured_at_ms, "annotated") {
            annotated.publish(f);
        }
    }
    Ok(())
}

/// Runs the detector on the newest frames of `opts.url` until `shutdown`
/// resolves or `max_frames` are done: [`run_fleet`] with this one stream.
/// JSON lines go to `out`; progress (frames per second, the annotated
/// stream's address) to the log.
pub async fn run_live(
    detector: Detector,
    opts: LiveOptions,
    out: &mut (dyn Write + Send),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<u64, DetectError> {
    let fleet = FleetOptions {
        streams: vec![StreamSpec {
            thing: opts.thing,
            source: Source::Mjpeg(opts.url),
        }],
        all_online: false,
        mqtt_config: opts.mqtt_config,
        serve_port: opts.serve_port,
        max_frames: opts.max_frames,
        camera_token: opts.camera_token,
        publish_hz: opts.publish_hz,
    };
    run_fleet(vec![detector], fleet, out, shutdown).await
}

/// Sleeps until `at`, or for ever when there is nothing to wait for.
pub(crate) async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Wait before the first reconnect; doubled per failure up to [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between reconnects.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The robot's stream, reconnected with backoff when it ends.
pub(crate) struct LiveStream {
    pub(crate) url: String,
    pub(crate) latest: LatestFrames,
    pub(crate) token: Token,
    pub(crate) backoff: Duration,
}

impl LiveStream {
    /// The newest frame; `None` after the stream ended and a reconnect was
    /// tried (the caller just asks again).
    pub(crate) async fn next(&mut self) -> Option<Arc<Frame>> {
        if let Ok(Some(f)) = self.latest.next().await {
            return Some(f);
        }
        tracing::warn!(url = %self.url, "stream ended; reconnecting");
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        let t = self.token.current().await;
        match connect(&self.url, t.as_deref()).await {
            Ok(c) => {
                self.latest = c.latest();
                self.backoff = FIRST_BACKOFF;
            }
            Err(e) => tracing::warn!(error = %e, "reconnect failed"),
        }
        None
    }
}

/// Frames per second over windows of [`Rate::WINDOW`], logged and printed.
pub(crate) struct Rate {
    since: Instant,
    frames: u32,
}

impl Rate {
    const WINDOW: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Self {
        Self {
            since: Instant::now(),
            frames: 0,
        }
    }

    /// Counts one frame (`done` in all) and reports when a window is over.
    pub(crate) fn count(&mut self, done: u64) {
        self.frames += 1;
        let elapsed = self.since.elapsed();
        if elapsed >= Self::WINDOW {
            let fps = f64::from(self.frames) / elapsed.as_secs_f64();
            tracing::info!(fps = format!("{fps:.1}"), frames = done, "detecting");
            eprintln!("{fps:.1} FPS ({done} frames)");
            *self = Self::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn messages_carry_the_frame_stamp_and_boxes() {
        let frame = Frame {
            jpeg: Bytes::new(),
            seq: 7,
            captured_at_ms: 1234,
            width: 640,
            height: 480,
        };
        let dets = vec![Detection {
            class_id: 16,
            class: "dog".into(),
            score: 0.9,
            bbox: gopigo_vision::BBox {
                x: 1.0,
                y: 2.0,
                w: 3.0,
                h: 4.0,
            },
        }];
        let m = to_message(&frame, &dets);
        assert_eq!(m.frame_ts_ms, 1234);
        assert_eq!((m.width, m.height), (640, 480));
        assert_eq!(m.detections[0].class, "dog");
        assert_eq!(m.detections[0].bbox, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn the_throttle_publishes_at_most_its_rate_and_the_latest_wins() {
        let mut t = Throttle::new(DEFAULT_PUBLISH_HZ);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(t.offer(t0, "a".into()).as_deref(), Some("a"));
        assert_eq!(t.due(), None);
        // two results within the 200 ms gap: only the newer is kept
        assert_eq!(t.offer(ms(50), "b".into()), None);
        assert_eq!(t.offer(ms(120), "c".into()), None);
        assert_eq!(t.due(), Some(ms(200)));
        assert_eq!(t.take_due(ms(199)), None);
        assert_eq!(t.take_due(ms(200)).as_deref(), Some("c"));
        assert_eq!(t.take_due(ms(500)), None, "b was replaced, not queued");
        // a steady 30 fps detector publishes 5 a second
        let mut sent = 0;
        for i in 0..30u64 {
            let now = ms(1000 + i * 33);
            sent += usize::from(t.offer(now, format!("{i}")).is_some());
            sent += usize::from(t.take_due(now).is_some());
        }
        assert!((4..=6).contains(&sent), "{sent}");
    }

    #[test]
    fn only_an_online_status_gives_a_token() {
        let cases: [(&[u8], Option<&str>); 5] = [
            (
                br#"{"online":true,"since":1,"version":"v","camera_token":"abc"}"#,
                Some("abc"),
            ),
            (
                br#"{"online":false,"since":1,"version":"v","camera_token":"abc"}"#,
                None,
            ),
            (br#"{"online":true,"since":1,"version":"v"}"#, None),
            (b"not json", None),
            (b"", None),
        ];
        for (payload, want) in cases {
            assert_eq!(token_of_status(payload).as_deref(), want);
        }
    }

    #[test]
    fn authority_of_urls() {
        assert_eq!(
            authority_of("http://127.0.0.1:8081/stream").as_deref(),
            Some("127.0.0.1:8081")
        );
        assert_eq!(
            authority_of("http://robot/stream").as_deref(),
            Some("robot:80")
        );
        assert_eq!(
            authority_of("http://[::1]:8081/").as_deref(),
            Some("[::1]:8081")
        );
        assert_eq!(authority_of("https://x/"), None);
        assert_eq!(authority_of("http:///x"), None);
    }

    #[test]
    fn mqtt_config_paths_are_relative_to_the_file() {
        let dir = std::env::temp_dir().join(format!("gopigo-detect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("robot.toml");
        std::fs::write(
            &p,
            "thing = \"r1\"\n[mqtt]\nhost = \"localhost\"\nclient_id = \"d\"\nca_file = \"ca.pem\"\ncert_file = \"/abs/cert.pem\"\nkey_file = \"key.pem\"\n",
        )
        .unwrap();
        let s = load_mqtt_settings(&p).unwrap();
        assert_eq!(s.ca_file, dir.join("ca.pem"));
        assert_eq!(s.cert_file, PathBuf::from("/abs/cert.pem"));
        std::fs::write(&p, "[mqtt]\nhost = 1\n").unwrap();
        let e = load_mqtt_settings(&p).unwrap_err().to_string();
        assert!(e.contains("robot.toml"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
