//! The simulation-only debug endpoint (`[sim] debug_port`, loopback only):
//! lets tests and benchmarks see what the simulated wheels do and put
//! obstacles in the room. It does not exist on a hardware board.
//!
//! - `GET /sim`: `{pose: {x_mm, y_mm, heading_deg}, wheel_dps: {left, right},
//!   motor_modes: [left, right], bumped, true_distance_mm,
//!   last_motor_frame_unix_ms, motor_frames: [{unix_us, message, tx}]}`
//!   (the last [`KEPT_FRAMES`] motor SPI frames, from the board's frame log).
//! - `POST /sim/obstacle` `{x_mm, y_mm, w_mm, h_mm}`: a box with its lower
//!   left corner at (x, y) in room coordinates (mm, origin at a corner).
//! - `DELETE /sim/obstacles`: remove them all.
//! - `POST /sim/distance_sensor` `{"failing": bool}`: every distance reading
//!   fails (as an unplugged sensor) or reads again.
//! - `POST /sim/power_button` `{"pressed": bool}`: the power button on
//!   GPIO22 (pressed = the board asks the Pi to shut down).
//! - `POST /sim/panic`: panics a task of the agent on purpose, so tests can
//!   check that a panic outside the executor stops the wheels with a
//!   reported reason (issue 10). Answers `{"panicked": true}`.

use std::collections::VecDeque;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use gopigo3::sim::SimHandle;
use gopigo3::{FrameRecord, MotorPort};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Motor frames kept for `GET /sim`.
pub const KEPT_FRAMES: usize = 64;

/// One motor SPI frame as the simulated board saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MotorFrame {
    /// Wall-clock time (CLOCK_REALTIME) the transfer started, unix microseconds.
    pub unix_us: u64,
    /// Message type name.
    pub message: String,
    /// The bytes sent, hex.
    pub tx: String,
}

/// The recent motor frames, filled by [`collect_frames`].
pub type FrameLog = Arc<Mutex<VecDeque<MotorFrame>>>;

/// Converts the frame log's `Instant`s to unix time against an anchor
/// (a pair of clock readings taken together).
#[derive(Debug, Clone, Copy)]
struct Anchor {
    instant: Instant,
    unix_us: u64,
}

impl Anchor {
    fn now() -> Self {
        Self {
            instant: Instant::now(),
            unix_us: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
        }
    }

    fn unix_us(&self, at: Instant) -> u64 {
        if at >= self.instant {
            self.unix_us + (at - self.instant).as_micros() as u64
        } else {
            self.unix_us
                .saturating_sub((self.instant - at).as_micros() as u64)
        }
    }
}

/// Reads the board's frame log on a thread, keeping motor frames only.
pub fn collect_frames(rx: Receiver<FrameRecord>) -> std::io::Result<FrameLog> {
    let log: FrameLog = Arc::new(Mutex::new(VecDeque::with_capacity(KEPT_FRAMES)));
    let sink = log.clone();
    std::thread::Builder::new()
        .name("sim-frames".into())
        .spawn(move || {
            for rec in rx {
                let Some(m) = rec.message().filter(|m| m.is_motor_command()) else {
                    continue;
                };
                // A fresh anchor per frame, microseconds after the transfer:
                // one taken at start-up would drift from CLOCK_REALTIME as
                // NTP slews it, and benches compare these stamps with
                // `time.time_ns()` of other processes.
                let f = MotorFrame {
                    unix_us: Anchor::now().unix_us(rec.at),
                    message: m.to_string(),
                    tx: rec.tx.iter().map(|b| format!("{b:02x}")).collect(),
                };
                let mut q = sink.lock().unwrap_or_else(|e| e.into_inner());
                if q.len() == KEPT_FRAMES {
                    q.pop_front();
                }
                q.push_back(f);
            }
        })?;
    Ok(log)
}

#[derive(Clone)]
struct AppState {
    sim: SimHandle,
    frames: FrameLog,
}

/// A box to add.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObstacleBox {
    /// Lower-left corner x (mm).
    pub x_mm: f64,
    /// Lower-left corner y (mm).
    pub y_mm: f64,
    /// Width along x (mm).
    pub w_mm: f64,
    /// Height along y (mm).
    pub h_mm: f64,
}

/// The debug routes.
pub fn router(sim: SimHandle, frames: FrameLog) -> Router {
    Router::new()
        .route("/sim", get(state))
        .route("/sim/obstacle", post(add_obstacle))
        .route("/sim/obstacles", delete(clear_obstacles))
        .route("/sim/distance_sensor", post(set_sensor))
        .route("/sim/power_button", post(set_button))
        .route("/sim/panic", post(inject_panic))
        .with_state(AppState { sim, frames })
}

async fn state(State(s): State<AppState>) -> Json<serde_json::Value> {
    let pose = s.sim.pose();
    let (l, r) = (s.sim.motor(MotorPort::Left), s.sim.motor(MotorPort::Right));
    let robot = s.sim.robot();
    let frames: Vec<MotorFrame> = s
        .frames
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    Json(json!({
        "pose": {"x_mm": pose.x_mm, "y_mm": pose.y_mm, "heading_deg": pose.heading_deg()},
        "wheel_dps": {"left": l.speed_dps, "right": r.speed_dps},
        "motor_modes": [l.mode, r.mode],
        "bumped": robot.bumped,
        "true_distance_mm": s.sim.true_distance_mm(),
        "last_motor_frame_unix_ms": frames.last().map(|f| f.unix_us as f64 / 1000.0),
        "motor_frames": frames,
    }))
}

async fn add_obstacle(State(s): State<AppState>, Json(b): Json<ObstacleBox>) -> Response {
    let ok = [b.x_mm, b.y_mm, b.w_mm, b.h_mm]
        .iter()
        .all(|v| v.is_finite())
        && b.w_mm > 0.0
        && b.h_mm > 0.0;
    if !ok {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "x_mm, y_mm must be finite and w_mm, h_mm positive"})),
        )
            .into_response();
    }
    s.sim
        .add_box((b.x_mm, b.y_mm), (b.x_mm + b.w_mm, b.y_mm + b.h_mm));
    Json(json!({"ok": true, "true_distance_mm": s.sim.true_distance_mm()})).into_response()
}

async fn clear_obstacles(State(s): State<AppState>) -> Json<serde_json::Value> {
    s.sim.clear_obstacles();
    Json(json!({"ok": true}))
}

/// `POST /sim/distance_sensor`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorState {
    /// Every reading fails while true.
    pub failing: bool,
}

async fn set_sensor(
    State(s): State<AppState>,
    Json(b): Json<SensorState>,
) -> Json<serde_json::Value> {
    s.sim.set_distance_sensor_failing(b.failing);
    Json(json!({"ok": true, "failing": b.failing}))
}

/// `POST /sim/power_button`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonState {
    /// True while the button asks for a shutdown.
    pub pressed: bool,
}

async fn set_button(
    State(s): State<AppState>,
    Json(b): Json<ButtonState>,
) -> Json<serde_json::Value> {
    s.sim.set_power_button(b.pressed);
    Json(json!({"ok": true, "pressed": b.pressed}))
}

async fn inject_panic() -> Json<serde_json::Value> {
    let task = tokio::spawn(async { panic!("injected by POST /sim/panic") });
    Json(json!({"panicked": task.await.is_err()}))
}
