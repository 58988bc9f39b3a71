//! `robot.toml`: the agent's configuration, its defaults, the seed's
//! environment variables and command-line overrides, and validation whose
//! errors name the file and the key at fault.

use std::path::{Path, PathBuf};

use gopigo3::Geometry;
use gopigo_client::MqttSettings;
use serde::{Deserialize, Serialize};

/// Errors loading or checking the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the agent config {path}: {source} (make one with `gopigo provision --thing NAME --out DIR` and pass --config DIR/robot.toml, or copy crates/agent/robot.example.toml there)")]
    Read {
        /// Absolute, so the message says where the agent looked.
        path: PathBuf,
        /// Why it could not be read (missing, permissions, ...).
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (the message names the key).
    #[error("{path}: {message}")]
    Parse {
        /// The file, as given.
        path: PathBuf,
        /// The TOML parser's message (line, column and key).
        message: String,
    },
    /// `[board] kind` is not set and this build has no real-board support,
    /// so the agent cannot tell whether it should simulate.
    #[error("{path}: [board] kind is not set and this gopigo was built without the real-board support (`--features hardware`), so it will not guess: pass --sim (or set [board] kind = \"sim\") to simulate, or install a build with `--features hardware` (docs/set-up-a-pi.md) for the GoPiGo3")]
    BoardKindUnset {
        /// The file that should set `[board] kind`.
        path: PathBuf,
    },
    /// A key holds a value the agent cannot use.
    #[error("{path}: [{section}] {key} = {value}: {reason}")]
    Invalid {
        /// The file (or "command line / environment").
        path: PathBuf,
        /// The TOML table (empty for top-level keys).
        section: &'static str,
        /// The key within it.
        key: &'static str,
        /// The value given, as the message shows it.
        value: String,
        /// What is allowed, or what to set instead.
        reason: String,
    },
}

/// The whole `robot.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The robot's AWS IoT thing name; the topics are `gopigo/{thing}/...`.
    pub thing: String,
    /// Endpoint and identity (`[mqtt]`), shared with every fleet client.
    pub mqtt: MqttSettings,
    /// Topic overrides (`[topics]`), for the seed's `AWSIOT_MQTT_TOPIC_*`.
    #[serde(default)]
    pub topics: TopicsConfig,
    /// Safety limits (`[safety]`).
    #[serde(default)]
    pub safety: SafetyConfig,
    /// Telemetry (`[telemetry]`).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// The camera server (`[camera]`).
    #[serde(default)]
    pub camera: CameraConfig,
    /// The GoPiGo3 board (`[board]`).
    #[serde(default)]
    pub board: BoardConfig,
    /// MQTT video's budget (`[video]`).
    #[serde(default)]
    pub video: crate::video::VideoConfig,
    /// Detection on the robot (`[detect]`), off by default.
    #[serde(default)]
    pub detect: crate::onboard::DetectConfig,
    /// Simulation only (`[sim]`).
    #[serde(default)]
    pub sim: SimConfig,
    /// The file this came from (for hints such as `gopigo check --config`).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `[topics]`: where commands come from and results go.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// Command topic (default `gopigo/{thing}/cmd`; env `AWSIOT_MQTT_TOPIC_COMMAND`).
    pub command: Option<String>,
    /// Result topic (default `gopigo/{thing}/cmd/result`; env `AWSIOT_MQTT_TOPIC_REPORT`).
    pub report: Option<String>,
}

/// `[safety]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetyConfig {
    /// Dead-man TTL: while the wheels turn, a motion command or a heartbeat
    /// must arrive at least this often or the robot stops (ms).
    pub deadman_ms: u64,
    /// Stop a forward move when the distance sensor reads less (mm); 0 = off.
    pub obstacle_mm: u32,
    /// Stop when the MQTT connection drops (always recommended).
    pub stop_on_link_loss: bool,
    /// While moving, stop when nothing came from the broker for this long (ms).
    pub link_timeout_ms: u64,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            deadman_ms: 3000,
            obstacle_mm: 200,
            stop_on_link_loss: true,
            link_timeout_ms: 1000,
        }
    }
}

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Telemetry messages a second (0.2..=50).
    pub hz: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { hz: 5.0 }
    }
}

/// Where camera frames come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraSource {
    /// The simulated camera (photos on the walls of the simulated room).
    Sim,
    /// A folder of JPEG/PNG images, played in a loop.
    Folder,
    /// A USB camera through V4L2 (build with feature `v4l2`).
    V4l2,
    /// The Pi camera through `rpicam-vid` (build with feature `rpicam` or `hardware`).
    Rpicam,
}

/// `[camera]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    /// Serve the camera at all.
    pub enabled: bool,
    /// MJPEG port (Motion's 8081); 0 = any free port (the URL is printed).
    pub port: u16,
    /// Address to listen on (`0.0.0.0` = the LAN; `127.0.0.1` = this machine).
    pub bind: String,
    /// Host name put in the advertised URL (status `camera_url`); default:
    /// 127.0.0.1 for a loopback bind, else this machine's host name.
    pub public_host: Option<String>,
    /// Frames a second (0.1..=60).
    pub fps: f64,
    /// `sim`, `folder`, `v4l2` or `rpicam`.
    pub source: CameraSource,
    /// Frame width in pixels (16..=4096).
    pub width: u32,
    /// Frame height in pixels (16..=4096).
    pub height: u32,
    /// Image folder for `source = "folder"`.
    pub folder: Option<PathBuf>,
    /// Photos for the simulated room (default /usr/share/darknet/data).
    pub photo_dir: Option<PathBuf>,
    /// V4L2 device for `source = "v4l2"`.
    pub device: String,
    /// Streams served at once (1..=256); one more viewer gets 503 with
    /// `Retry-After`. Each viewer holds a socket and its frames' bandwidth.
    pub max_viewers: usize,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            port: gopigo_camera::DEFAULT_PORT,
            bind: "0.0.0.0".into(),
            public_host: None,
            fps: 10.0,
            source: CameraSource::Sim,
            width: 640,
            height: 480,
            folder: None,
            photo_dir: None,
            device: "/dev/video0".into(),
            max_viewers: gopigo_camera::mjpeg::DEFAULT_MAX_VIEWERS,
        }
    }
}

/// Which board drives the wheels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoardKind {
    /// The simulated board and room (no hardware needed).
    Sim,
    /// The real GoPiGo3 on /dev/spidev0.1 (build with feature `hardware`).
    Hardware,
}

/// Whether this build can drive the real board (`--features hardware`).
pub const HARDWARE_BUILT: bool = cfg!(feature = "hardware");

/// Why the board in use was chosen, for the start line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BoardChoice {
    /// `[board] kind` in the file.
    #[default]
    File,
    /// `--sim` on the command line.
    SimFlag,
    /// No `kind` in the file: a build with `--features hardware` drives
    /// the real board.
    BuildDefault,
}

/// `[board]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoardConfig {
    /// `sim` or `hardware`; unset means the real board in a build with
    /// `--features hardware`, and is refused by other builds (they never
    /// simulate unless told to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<BoardKind>,
    /// Encoder ticks per motor turn: 6, 16 (robots built from 2021), or
    /// `"auto"`: decided at start as the vendor's driver does (its config
    /// file's `ticks`, else 16 when the board's serial number is in its
    /// list of 16-tick robots, else 6); see [`gopigo3::ticks`].
    pub ticks: TicksSetting,
    /// The vendor's robot-constants file that `ticks = "auto"` reads
    /// (`.gpg3_config.json`; its 16-tick serial list
    /// `.gpg3_list_of_serial_numbers.pkl` sits beside it). Unset:
    /// `$HOME/.gpg3_config.json`, as the vendor's driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_config: Option<PathBuf>,
    /// Wheel diameter (mm).
    pub wheel_diameter_mm: f64,
    /// Distance between the wheels (mm).
    pub wheel_base_mm: f64,
    /// Default wheel speed in dps until the shadow sets `speed_dps`.
    pub speed_dps: u32,
    /// Hardware only: hold GPIO23 high (the board's "Pi is on" line) while
    /// the agent runs. Set false when the vendor's `gopigo3_power` service
    /// already holds it (the line can only be requested once). While the
    /// agent holds the power line it also watches the power button
    /// (GPIO22), as the vendor's service does.
    pub hold_power_line: bool,
    /// Run when the power button asks for a shutdown, after the wheels are
    /// stopped and floated: program and arguments, no shell. Unset: `systemctl
    /// poweroff` on the real board, nothing on the simulated one (whose
    /// button any local user can press through the debug endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown_command: Option<Vec<String>>,
    /// Why `kind` is what it is (set by [`AgentConfig::apply`]).
    #[serde(skip)]
    pub choice: BoardChoice,
}

impl Default for BoardConfig {
    fn default() -> Self {
        let g = Geometry::default();
        Self {
            kind: None,
            ticks: TicksSetting::Auto,
            vendor_config: None,
            wheel_diameter_mm: g.wheel_diameter_mm,
            wheel_base_mm: g.wheel_base_mm,
            speed_dps: gopigo_protocol::DEFAULT_SPEED_DPS,
            hold_power_line: true,
            shutdown_command: None,
            choice: BoardChoice::File,
        }
    }
}

impl BoardConfig {
    /// The board in use: `kind`, else the real board (a build without
    /// `--features hardware` refuses an unset kind in [`AgentConfig::validate`]).
    pub fn kind(&self) -> BoardKind {
        self.kind.unwrap_or(BoardKind::Hardware)
    }

    /// Why this board, in words for the start line.
    pub fn reason(&self) -> &'static str {
        match (self.choice, self.kind()) {
            (BoardChoice::SimFlag, _) => "--sim",
            (BoardChoice::BuildDefault, _) => {
                "[board] kind not set: the default of a build with --features hardware"
            }
            (BoardChoice::File, BoardKind::Sim) => "[board] kind = \"sim\"",
            (BoardChoice::File, BoardKind::Hardware) => "[board] kind = \"hardware\"",
        }
    }

    /// The driver's geometry (with `ticks = "auto"`, 6 ticks until the
    /// agent has read the board's serial number).
    pub fn geometry(&self) -> Geometry {
        Geometry {
            wheel_diameter_mm: self.wheel_diameter_mm,
            wheel_base_mm: self.wheel_base_mm,
            encoder_ticks_per_rotation: match self.ticks {
                TicksSetting::Fixed(t) => t,
                TicksSetting::Auto => Geometry::default().encoder_ticks_per_rotation,
            },
            ..Geometry::default()
        }
    }

    /// What a power-button press runs once the wheels are stopped: the
    /// configured command, else `systemctl poweroff` on the real board and
    /// nothing on the simulated one.
    pub fn shutdown_command(&self) -> Option<Vec<String>> {
        match (&self.shutdown_command, self.kind()) {
            (Some(c), _) => Some(c.clone()),
            (None, BoardKind::Hardware) => Some(vec!["systemctl".into(), "poweroff".into()]),
            (None, BoardKind::Sim) => None,
        }
    }

    /// The vendor's config file that `ticks = "auto"` reads.
    pub fn vendor_config_path(&self) -> PathBuf {
        match &self.vendor_config {
            Some(p) => p.clone(),
            None => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(gopigo3::ticks::VENDOR_CONFIG_FILE),
        }
    }
}

/// `[board] ticks`: a number of encoder ticks per motor turn, or `"auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TicksSetting {
    /// Decide at start as the vendor's driver does.
    #[default]
    Auto,
    /// This many (6 or 16).
    Fixed(u32),
}

impl std::fmt::Display for TicksSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("\"auto\""),
            Self::Fixed(t) => write!(f, "{t}"),
        }
    }
}

impl Serialize for TicksSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::Fixed(t) => s.serialize_u32(*t),
        }
    }
}

impl<'de> Deserialize<'de> for TicksSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Word(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Number(t)) => Ok(Self::Fixed(t)),
            Ok(Raw::Word(w)) if w == "auto" => Ok(Self::Auto),
            _ => Err(serde::de::Error::custom(
                "ticks must be 6, 16 (robots built from 2021) or \"auto\"",
            )),
        }
    }
}

/// `[sim]`: simulation only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Port of the simulation-only debug endpoint (`GET /sim`,
    /// `POST /sim/obstacle`) on 127.0.0.1; absent = off, 0 = any free port.
    pub debug_port: Option<u16>,
    /// The simulated robot's motors: 6 or 16 encoder ticks per turn (what
    /// `[board] ticks` must match, or detect, for distances to come out right).
    pub motor_ticks: u32,
    /// Whether the simulated robot has a distance sensor (false: as a robot
    /// without one, which `[safety] obstacle_mm` > 0 refuses).
    pub distance_sensor: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            debug_port: None,
            motor_ticks: Geometry::default().encoder_ticks_per_rotation,
            distance_sensor: true,
        }
    }
}

/// Values from flags and environment variables, applied over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--sim`: simulated board (and simulated camera unless the file says otherwise).
    pub sim: bool,
    /// `--thing`: replaces `thing`.
    pub thing: Option<String>,
    /// `AWSIOT_MQTT_HOST`.
    pub host: Option<String>,
    /// `AWSIOT_MQTT_PORT`.
    pub port: Option<u16>,
    /// `--client-id`: replaces `[mqtt] client_id`.
    pub client_id: Option<String>,
    /// `AWSIOT_MQTT_TOPIC_COMMAND`.
    pub command_topic: Option<String>,
    /// `AWSIOT_MQTT_TOPIC_REPORT`.
    pub report_topic: Option<String>,
    /// `AWSIOT_TLS_DIR`: relative certificate/key names are joined to it.
    pub tls_dir: Option<PathBuf>,
    /// `AWSIOT_CA_FILE`.
    pub ca_file: Option<PathBuf>,
    /// `AWSIOT_CERT_FILE`.
    pub cert_file: Option<PathBuf>,
    /// `AWSIOT_KEY_FILE`.
    pub key_file: Option<PathBuf>,
    /// Replaces `[camera] port`.
    pub camera_port: Option<u16>,
    /// Replaces `[camera] bind`.
    pub camera_bind: Option<String>,
    /// `--no-camera`: sets `[camera] enabled = false`.
    pub no_camera: bool,
    /// Replaces `[telemetry] hz`.
    pub telemetry_hz: Option<f64>,
    /// Replaces `[safety] deadman_ms`.
    pub deadman_ms: Option<u64>,
    /// Replaces `[safety] obstacle_mm`.
    pub obstacle_mm: Option<u32>,
    /// Sets `[sim] debug_port`.
    pub sim_debug_port: Option<u16>,
}

impl AgentConfig {
    /// Parses TOML text (`path` only names the file in errors; relative
    /// file names are resolved later by [`AgentConfig::resolve`]).
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Reads, overrides, resolves and validates the file at `path`.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            source,
        })?;
        let mut cfg = Self::from_toml(&text, path)?;
        cfg.apply(overrides);
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        cfg.resolve(&base, overrides.tls_dir.as_deref());
        cfg.validate(path)?;
        cfg.path = Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
        Ok(cfg)
    }

    /// Applies flags and environment variables.
    pub fn apply(&mut self, o: &Overrides) {
        if o.sim {
            self.board.kind = Some(BoardKind::Sim);
            self.board.choice = BoardChoice::SimFlag;
        } else if self.board.kind.is_none() {
            self.board.choice = BoardChoice::BuildDefault;
        }
        if let Some(v) = &o.thing {
            self.thing = v.clone();
        }
        if let Some(v) = &o.host {
            self.mqtt.host = v.clone();
        }
        if let Some(v) = o.port {
            self.mqtt.port = v;
        }
        if let Some(v) = &o.client_id {
            self.mqtt.client_id = v.clone();
        }
        if let Some(v) = &o.command_topic {
            self.topics.command = Some(v.clone());
        }
        if let Some(v) = &o.report_topic {
            self.topics.report = Some(v.clone());
        }
        if let Some(v) = &o.ca_file {
            self.mqtt.ca_file = v.clone();
        }
        if let Some(v) = &o.cert_file {
            self.mqtt.cert_file = v.clone();
        }
        if let Some(v) = &o.key_file {
            self.mqtt.key_file = v.clone();
        }
        if let Some(v) = o.camera_port {
            self.camera.port = v;
        }
        if let Some(v) = &o.camera_bind {
            self.camera.bind = v.clone();
        }
        if o.no_camera {
            self.camera.enabled = false;
        }
        if let Some(v) = o.telemetry_hz {
            self.telemetry.hz = v;
        }
        if let Some(v) = o.deadman_ms {
            self.safety.deadman_ms = v;
        }
        if let Some(v) = o.obstacle_mm {
            self.safety.obstacle_mm = v;
        }
        if let Some(v) = o.sim_debug_port {
            self.sim.debug_port = Some(v);
        }
    }

    /// Makes relative file names absolute: against `tls_dir` when given
    /// (the seed's `AWSIOT_TLS_DIR`), else against the config file's folder.
    pub fn resolve(&mut self, config_dir: &Path, tls_dir: Option<&Path>) {
        self.mqtt.resolve_paths(tls_dir.unwrap_or(config_dir));
        for p in [&mut self.camera.folder, &mut self.camera.photo_dir]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = config_dir.join(&*p);
            }
        }
        self.detect.resolve(config_dir);
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let check = Check(path);
        self.check_identity(&check)?;
        self.safety.check(&check)?;
        let hz = self.telemetry.hz;
        check.ensure(
            hz.is_finite() && (0.2..=50.0).contains(&hz),
            ("telemetry", "hz"),
            hz,
            "allowed 0.2..=50",
        )?;
        self.camera.check(&check)?;
        let v = &self.video;
        check.ensure(
            crate::video::VideoConfig::BYTES_RANGE.contains(&v.max_bytes_per_s),
            ("video", "max_bytes_per_s"),
            v.max_bytes_per_s,
            "allowed 8192..=262144 (half of AWS's 512 KiB/s per connection)",
        )?;
        check.ensure(
            crate::video::VideoConfig::FPS_RANGE.contains(&v.max_fps),
            ("video", "max_fps"),
            v.max_fps,
            "allowed 1..=50 (half of AWS's 100 publishes/s per connection)",
        )?;
        self.board.check(&check)?;
        check.ensure(
            matches!(self.sim.motor_ticks, 6 | 16),
            ("sim", "motor_ticks"),
            self.sim.motor_ticks,
            "6 or 16",
        )?;
        self.detect.check(&check, self.camera.enabled)?;
        if self.board.kind.is_none() && !HARDWARE_BUILT {
            return Err(ConfigError::BoardKindUnset {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }

    /// Who the robot is and where it connects: thing, `[mqtt]`, `[topics]`.
    fn check_identity(&self, check: &Check<'_>) -> Result<(), ConfigError> {
        check.ensure(
            gopigo_protocol::valid_thing_name(&self.thing),
            ("", "thing"),
            format!("{:?}", self.thing),
            "a thing name is 1-128 characters of letters, digits, ':', '_' and '-'",
        )?;
        let m = &self.mqtt;
        check.ensure(
            !m.host.trim().is_empty(),
            ("mqtt", "host"),
            "\"\"",
            "set the endpoint host (AWSIOT_MQTT_HOST)",
        )?;
        check.ensure(
            m.port != 0,
            ("mqtt", "port"),
            0,
            "use 8883, or 443 with alpn = true",
        )?;
        check.ensure(
            !m.client_id.is_empty(),
            ("mqtt", "client_id"),
            "\"\"",
            "use the thing name",
        )?;
        for (key, topic) in [
            ("command", &self.topics.command),
            ("report", &self.topics.report),
        ] {
            if let Some(t) = topic {
                check.ensure(
                    !(t.is_empty() || t.contains('+') || t.contains('#')),
                    ("topics", key),
                    format!("{t:?}"),
                    "a topic name must be non-empty and hold no wildcard",
                )?;
            }
        }
        Ok(())
    }

    /// The command topic in use: `[topics] command`, else `gopigo/{thing}/cmd`.
    pub fn command_topic(&self) -> String {
        self.topics
            .command
            .clone()
            .unwrap_or_else(|| gopigo_protocol::topics::cmd(&self.thing))
    }

    /// The result topic in use: `[topics] report`, else `gopigo/{thing}/cmd/result`.
    pub fn report_topic(&self) -> String {
        self.topics
            .report
            .clone()
            .unwrap_or_else(|| gopigo_protocol::topics::cmd_result(&self.thing))
    }
}

/// Names the file in each [`ConfigError::Invalid`].
struct Check<'a>(&'a Path);

impl Check<'_> {
    /// `Err` naming `[section] key = value` and `reason` unless `ok`.
    fn ensure(
        &self,
        ok: bool,
        (section, key): (&'static str, &'static str),
        value: impl ToString,
        reason: &str,
    ) -> Result<(), ConfigError> {
        if ok {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            path: self.0.to_path_buf(),
            section,
            key,
            value: value.to_string(),
            reason: reason.to_string(),
        })
    }
}

impl SafetyConfig {
    fn check(&self, check: &Check<'_>) -> Result<(), ConfigError> {
        check.ensure(
            (100..=600_000).contains(&self.deadman_ms),
            ("safety", "deadman_ms"),
            self.deadman_ms,
            "allowed 100..=600000",
        )?;
        check.ensure(
            self.obstacle_mm <= 2000,
            ("safety", "obstacle_mm"),
            self.obstacle_mm,
            "allowed 0 (off) ..=2000; the sensor sees about 2.3 m",
        )?;
        check.ensure(
            (100..=60_000).contains(&self.link_timeout_ms),
            ("safety", "link_timeout_ms"),
            self.link_timeout_ms,
            "allowed 100..=60000",
        )
    }
}

impl CameraConfig {
    fn check(&self, check: &Check<'_>) -> Result<(), ConfigError> {
        check.ensure(
            self.fps.is_finite() && (0.1..=60.0).contains(&self.fps),
            ("camera", "fps"),
            self.fps,
            "allowed 0.1..=60",
        )?;
        check.ensure(
            (1..=256).contains(&self.max_viewers),
            ("camera", "max_viewers"),
            self.max_viewers,
            "allowed 1..=256",
        )?;
        check.ensure(
            (16..=4096).contains(&self.width),
            ("camera", "width"),
            self.width,
            "allowed 16..=4096",
        )?;
        check.ensure(
            (16..=4096).contains(&self.height),
            ("camera", "height"),
            self.height,
            "allowed 16..=4096",
        )?;
        check.ensure(
            self.bind.parse::<std::net::IpAddr>().is_ok(),
            ("camera", "bind"),
            format!("{:?}", self.bind),
            "an IP address such as 0.0.0.0 or 127.0.0.1",
        )?;
        check.ensure(
            !(self.enabled && self.source == CameraSource::Folder && self.folder.is_none()),
            ("camera", "folder"),
            "(missing)",
            "source = \"folder\" needs folder = \"/path/to/images\"",
        )
    }
}

impl BoardConfig {
    fn check(&self, check: &Check<'_>) -> Result<(), ConfigError> {
        check.ensure(
            matches!(self.ticks, TicksSetting::Auto | TicksSetting::Fixed(6 | 16)),
            ("board", "ticks"),
            self.ticks,
            "6, 16 on robots built from 2021, or \"auto\" (decided from the board's serial number as the vendor does)",
        )?;
        check.ensure(
            self.shutdown_command
                .as_ref()
                .is_none_or(|c| c.first().is_some_and(|p| !p.is_empty())),
            ("board", "shutdown_command"),
            format!("{:?}", self.shutdown_command.as_deref().unwrap_or_default()),
            "a program and its arguments, e.g. [\"systemctl\", \"poweroff\"]",
        )?;
        check.ensure(
            self.wheel_diameter_mm.is_finite() && (10.0..=500.0).contains(&self.wheel_diameter_mm),
            ("board", "wheel_diameter_mm"),
            self.wheel_diameter_mm,
            "allowed 10..=500 (GoPiGo3: 66.5)",
        )?;
        check.ensure(
            self.wheel_base_mm.is_finite() && (10.0..=1000.0).contains(&self.wheel_base_mm),
            ("board", "wheel_base_mm"),
            self.wheel_base_mm,
            "allowed 10..=1000 (GoPiGo3: 117)",
        )?;
        check.ensure(
            (1..=gopigo_protocol::MAX_SPEED_DPS).contains(&self.speed_dps),
            ("board", "speed_dps"),
            self.speed_dps,
            "allowed 1..=1000",
        )
    }
}

impl crate::onboard::DetectConfig {
    /// The ranges of `[detect]`; the files are looked at when it starts.
    fn check(&self, check: &Check<'_>, camera: bool) -> Result<(), ConfigError> {
        check.ensure(
            Self::INPUT_RANGE.contains(&self.input_size) && self.input_size % 32 == 0,
            ("detect", "input_size"),
            self.input_size,
            "a multiple of 32 in 96..=608 (320 suits a Pi; 416 is the model's own)",
        )?;
        check.ensure(
            self.max_fps.is_finite() && Self::FPS_RANGE.contains(&self.max_fps),
            ("detect", "max_fps"),
            self.max_fps,
            "allowed 0.1..=30",
        )?;
        check.ensure(
            Self::THRESHOLD_RANGE.contains(&self.threshold),
            ("detect", "threshold"),
            self.threshold,
            "allowed 0.05..=0.95",
        )?;
        check.ensure(
            Self::THREADS_RANGE.contains(&self.threads),
            ("detect", "threads"),
            self.threads,
            "allowed 1..=8 (a Pi has 4 cores; leave some to the agent)",
        )?;
        check.ensure(
            !self.enabled || camera,
            ("detect", "enabled"),
            true,
            "detection needs the camera: set [camera] enabled = true (and drop --no-camera), or [detect] enabled = false",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
thing = "robot1"
[mqtt]
host = "localhost"
client_id = "robot1"
ca_file = "ca.pem"
cert_file = "device.pem"
key_file = "device.key"
"#;

    fn p() -> PathBuf {
        PathBuf::from("/etc/gopigo/robot.toml")
    }

    #[test]
    fn minimal_file_gets_the_documented_defaults() {
        let mut c = AgentConfig::from_toml(MINIMAL, &p()).unwrap();
        assert_eq!(c.board.kind, None);
        c.apply(&Overrides::default());
        assert_eq!(c.board.choice, BoardChoice::BuildDefault);
        assert_eq!(c.board.kind(), BoardKind::Hardware);
        if !HARDWARE_BUILT {
            // A build that cannot drive the board never simulates unasked.
            let e = c.validate(&p()).unwrap_err().to_string();
            assert!(
                e.contains("[board] kind is not set") && e.contains("--sim"),
                "{e}"
            );
            c.apply(&Overrides {
                sim: true,
                ..Overrides::default()
            });
            assert_eq!(c.board.reason(), "--sim");
        }
        c.validate(&p()).unwrap();
        assert_eq!(c.mqtt.port, 8883);
        assert_eq!(c.safety.deadman_ms, 3000);
        assert_eq!(c.safety.obstacle_mm, 200);
        assert_eq!(c.telemetry.hz, 5.0);
        assert_eq!(c.camera.port, 8081);
        assert_eq!(c.camera.max_viewers, 8);
        assert_eq!(c.board.ticks, TicksSetting::Auto);
        assert_eq!(c.command_topic(), "gopigo/robot1/cmd");
        assert_eq!(c.report_topic(), "gopigo/robot1/cmd/result");
    }

    #[test]
    fn the_example_file_parses_and_validates() {
        let text = include_str!("../robot.example.toml");
        let mut c = AgentConfig::from_toml(text, &p()).unwrap();
        assert_eq!(
            c.board.kind, None,
            "the example leaves the board to the build"
        );
        c.apply(&Overrides {
            sim: !HARDWARE_BUILT,
            ..Overrides::default()
        });
        c.validate(&p()).unwrap();
        // It names the files `gopigo provision` writes.
        assert_eq!(c.mqtt.cert_file, Path::new("cert.pem"));
        assert_eq!(c.mqtt.key_file, Path::new("key.pem"));
        assert_eq!(c.mqtt.ca_file, Path::new("ca.pem"));
    }

    #[test]
    fn ticks_take_a_number_or_auto() {
        let c = |extra: &str| AgentConfig::from_toml(&format!("{MINIMAL}\n{extra}"), &p()).unwrap();
        assert_eq!(
            c("[board]\nticks = 16\n").board.ticks,
            TicksSetting::Fixed(16)
        );
        assert_eq!(
            c("[board]\nticks = 16\n")
                .board
                .geometry()
                .encoder_ticks_per_rotation,
            16
        );
        assert_eq!(
            c("[board]\nticks = \"auto\"\n").board.ticks,
            TicksSetting::Auto
        );
        let vendor = c("[board]\nvendor_config = \"/etc/gopigo/.gpg3_config.json\"\n");
        assert_eq!(
            vendor.board.vendor_config_path(),
            Path::new("/etc/gopigo/.gpg3_config.json")
        );
        assert!(c("")
            .board
            .vendor_config_path()
            .ends_with(".gpg3_config.json"));
        // the power button's command: systemctl poweroff only on the real board
        let hw = c("[board]\nkind = \"hardware\"\n");
        assert_eq!(
            hw.board.shutdown_command(),
            Some(vec!["systemctl".to_string(), "poweroff".to_string()])
        );
        assert_eq!(
            c("[board]\nkind = \"sim\"\n").board.shutdown_command(),
            None
        );
        let set = c("[board]\nkind = \"sim\"\nshutdown_command = [\"true\"]\n");
        assert_eq!(set.board.shutdown_command(), Some(vec!["true".to_string()]));
        // what the agent writes back (e.g. `gopigo config`) reads again
        let back = toml::to_string(&c("[board]\nticks = 16\n")).unwrap();
        assert_eq!(
            AgentConfig::from_toml(&back, &p()).unwrap().board.ticks,
            TicksSetting::Fixed(16)
        );
    }

    #[test]
    fn broken_files_name_the_file_and_key() {
        let cases: &[(&str, &[&str])] = &[
            (
                "thing = \"r\"\n[mqtt]\nhost = \"h\"\n",
                &["robot.toml", "client_id"],
            ),
            (
                &format!("{MINIMAL}\n[safety]\ndeadman_ms = \"soon\"\n"),
                &["robot.toml", "deadman_ms"],
            ),
            (
                &format!("{MINIMAL}\n[safety]\ndeadmen_ms = 5\n"),
                &["robot.toml", "deadmen_ms"],
            ),
            (
                &format!("{MINIMAL}\n[board]\nkind = \"lego\"\n"),
                &["robot.toml", "lego"],
            ),
            (
                &format!("{MINIMAL}\n[board]\nticks = 7\n"),
                &["robot.toml", "[board] ticks", "16", "auto"],
            ),
            (
                &format!("{MINIMAL}\n[board]\nticks = \"many\"\n"),
                &["robot.toml", "ticks", "\"auto\""],
            ),
            (
                &format!("{MINIMAL}\n[board]\nshutdown_command = []\n"),
                &["[board] shutdown_command", "systemctl"],
            ),
            (
                &format!("{MINIMAL}\n[sim]\nmotor_ticks = 8\n"),
                &["[sim] motor_ticks", "6 or 16"],
            ),
            (
                &format!("{MINIMAL}\n[telemetry]\nhz = 500.0\n"),
                &["[telemetry] hz", "0.2..=50"],
            ),
            (
                &format!("{MINIMAL}\n[camera]\nsource = \"folder\"\n"),
                &["[camera] folder"],
            ),
            (
                &format!("{MINIMAL}\n[camera]\nbind = \"everywhere\"\n"),
                &["[camera] bind"],
            ),
            (
                &format!("{MINIMAL}\n[camera]\nmax_viewers = 0\n"),
                &["[camera] max_viewers", "1..=256"],
            ),
            (
                &format!("{MINIMAL}\n[camera]\nmax_viewers = -1\n"),
                &["robot.toml", "max_viewers"],
            ),
            (
                &MINIMAL.replace("robot1\"\n[mqtt]", "robot 1\"\n[mqtt]"),
                &["thing", "robot 1"],
            ),
            (
                &format!("{MINIMAL}\n[topics]\ncommand = \"gopigo/+/cmd\"\n"),
                &["[topics] command", "wildcard"],
            ),
        ];
        for (text, needles) in cases {
            let e = AgentConfig::from_toml(text, &p())
                .and_then(|c| c.validate(&p()).map(|_| c))
                .unwrap_err()
                .to_string();
            for n in *needles {
                assert!(e.contains(n), "{n:?} missing from {e:?} for {text}");
            }
        }
    }

    #[test]
    fn seed_environment_overrides_and_tls_dir() {
        let mut c = AgentConfig::from_toml(MINIMAL, &p()).unwrap();
        let o = Overrides {
            host: Some("example.iot".into()),
            port: Some(443),
            command_topic: Some("seed/cmd".into()),
            report_topic: Some("seed/report".into()),
            tls_dir: Some("/secrets".into()),
            key_file: Some("other.key".into()),
            cert_file: Some("/abs/cert.pem".into()),
            sim: true,
            ..Overrides::default()
        };
        c.apply(&o);
        c.resolve(Path::new("/etc/gopigo"), o.tls_dir.as_deref());
        assert_eq!((c.mqtt.host.as_str(), c.mqtt.port), ("example.iot", 443));
        assert_eq!(c.command_topic(), "seed/cmd");
        assert_eq!(c.report_topic(), "seed/report");
        assert_eq!(c.mqtt.ca_file, PathBuf::from("/secrets/ca.pem"));
        assert_eq!(c.mqtt.key_file, PathBuf::from("/secrets/other.key"));
        assert_eq!(c.mqtt.cert_file, PathBuf::from("/abs/cert.pem"));
        // without a TLS dir, relative names are next to the config file
        let mut c = AgentConfig::from_toml(MINIMAL, &p()).unwrap();
        c.resolve(Path::new("/etc/gopigo"), None);
        assert_eq!(c.mqtt.ca_file, PathBuf::from("/etc/gopigo/ca.pem"));
    }

    #[test]
    fn missing_file_names_it() {
        let e = AgentConfig::load(Path::new("/nonexistent/robot.toml"), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/robot.toml"), "{e}");
    }
}
