//! The robot program (`gopigo agent`): takes commands over MQTT with mutual
//! TLS, drives a GoPiGo3 (real or simulated) safely, reports telemetry and
//! shadow state, and serves the camera.
//!
//! Parts:
//! - [`config`]: `robot.toml` ([`AgentConfig`]), defaults, the seed's
//!   `AWSIOT_*` environment variables and flag [`Overrides`], validation
//!   whose errors name the file and key. A commented example is
//!   `crates/agent/robot.example.toml`.
//! - [`inbox`]: what feeds the executor: a bounded queue for commands and
//!   settings beside a stop slot that is never refused (the `stop` command,
//!   link loss, a panic elsewhere, shutdown).
//! - [`executor`]: the command executor, a state machine over the driver
//!   with an injected clock: one motion at a time (a new motion preempts the
//!   running one), timed drives that stop after their duration, position
//!   moves (`drive_cm`, `turn`) that end on target, the dead-man TTL, the
//!   obstacle stop (distance sensor polled at 50 Hz while moving forward),
//!   stop on link loss, shadow settings and telemetry.
//! - [`shadow`]: pure reading of desired settings and building of reports.
//! - [`backoff`]: reconnect delays, exponential with jitter.
//! - [`link`]: why the broker connection fails, said once per cause
//!   (certificate no longer active, client-id takeover, broker down).
//! - [`camera`]: opens the configured frame source (the simulated camera
//!   follows the simulated pose).
//! - [`limits`]: raises the open-file limit to the hard limit at start.
//! - [`onboard`]: detection on the robot (`[detect]`): the YOLO detector
//!   on its own low-priority thread, newest frame only, at most `max_fps`,
//!   results on `gopigo/{thing}/detections`.
//! - [`update`]: over-the-air updates through AWS IoT Jobs (download with
//!   a size limit, SHA-256 check, atomic swap keeping `.previous`, restart,
//!   SUCCEEDED once the new version connects, rollback on its deadline);
//!   [`download`] is its HTTP(S) GET.
//! - [`debug`]: the simulation-only debug endpoint (`GET /sim`,
//!   `POST /sim/obstacle`) for tests and benchmarks.
//! - `session`: the MQTT session: subscribe to commands at QoS 1 and route
//!   each message by its `gopigo_protocol::Topic`; results, telemetry,
//!   retained status with an offline will, shadow get/delta/report,
//!   reconnect with backoff, link watchdog.
//! - [`run`]: wires it all together: board (real or simulated; only here
//!   does the agent know which), camera server (guarded by a per-boot token
//!   published in the retained status, with a viewer cap and timeouts),
//!   executor thread, session; on shutdown it stops and floats the motors
//!   before anything else. A panic in another task becomes a stop with its
//!   reason; a panic of the executor stops and floats the motors.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod agent;
pub mod backoff;
pub mod camera;
pub mod config;
pub mod debug;
pub mod download;
pub mod executor;
pub mod inbox;
pub mod limits;
pub mod link;
pub mod onboard;
mod session;
pub mod shadow;
pub mod update;
pub mod video;

pub use agent::{run, VERSION};
pub use config::{AgentConfig, ConfigError, Overrides};

/// Everything that stops the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The board failed its check or a bus failed.
    #[error("GoPiGo3: {0}")]
    Board(#[from] gopigo3::Gopigo3Error),
    /// The MQTT identity files are unusable.
    #[error("MQTT: {0}")]
    Mqtt(#[from] gopigo_client::ClientError),
    /// The camera source cannot start.
    #[error("camera: {0} (or set [camera] enabled = false / --no-camera)")]
    Camera(#[from] gopigo_camera::CameraError),
    /// A socket or thread could not be set up.
    #[error("cannot {what}: {source}")]
    Io {
        /// What the agent was doing, with the setting that chose it.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The executor thread ended while the agent ran (it panicked; it
    /// stopped the motors and reported the reason on `cmd/result`).
    #[error("the command executor ended unexpectedly (see the panic message above); the motors were stopped")]
    ExecutorEnded,
    /// `[safety] obstacle_mm` asks for the obstacle stop but no distance
    /// sensor answered: the agent will not drive blind unless told to.
    #[error(
        "{config}[safety] obstacle_mm = {obstacle_mm} needs the distance sensor, but {reason}. \
         Plug the Distance Sensor into an I2C port and check that /dev/i2c-1 exists (I2C on, \
         i2c-dev loaded: docs/set-up-a-pi.md), or set [safety] obstacle_mm = 0 to drive \
         without the obstacle stop"
    )]
    NoDistanceSensor {
        /// `"FILE: "` for the config file in use, or empty.
        config: String,
        /// The distance asked for (mm).
        obstacle_mm: u32,
        /// Why no sensor could be used.
        reason: String,
    },
    /// The power button's shutdown command could not run or failed; the
    /// wheels were stopped first.
    #[error("the power button asked for a shutdown, but [board] shutdown_command {command:?} {outcome}; the wheels are stopped; shut the Pi down by hand")]
    ShutdownCommand {
        /// The command as configured.
        command: Vec<String>,
        /// What happened (could not start, exit status).
        outcome: String,
    },
    /// `[detect]` is enabled but cannot run: the model or ONNX Runtime is
    /// missing or does not load, or the camera is off.
    #[error("[detect] {0}")]
    Detect(String),
    /// `[board] kind = "hardware"` in a build without the feature.
    #[error("[board] kind = \"hardware\", but this gopigo was built without the real-board support: install a build with `--features hardware` (scripts/build-pi.sh, docs/set-up-a-pi.md), or pass --sim to simulate")]
    HardwareNotBuilt,
}
