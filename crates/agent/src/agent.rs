//! Wiring: board, camera, debug endpoint, executor thread and the MQTT
//! session ([`crate::session`]), started from one [`AgentConfig`] and
//! stopped by one future. Only this file knows whether the board is
//! simulated: the simulator's extras reach the executor as a
//! [`TelemetryExtras`] and the camera as a pose source.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gopigo3::sim::{ClockMode, SimHandle};
use gopigo3::{DistanceSensor, GoPiGo3, SpiBus};
use gopigo_protocol::Telemetry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{AgentConfig, BoardKind};
use crate::executor::{self, Executor, Limits, SharedRobot, TelemetryExtras};
use crate::inbox::Inbox;
use crate::{session, AgentError};

/// The agent's version, reported in `status`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Prints a line for people and test harnesses (bound URLs, final state).
pub(crate) fn announce(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the agent until `shutdown` completes; then stops and floats the
/// motors, publishes `online: false` and disconnects.
pub async fn run(
    cfg: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    match crate::limits::raise_open_files() {
        Ok(files) => {
            tracing::debug!(
                before = files.before,
                now = files.now,
                "open-file limit (RLIMIT_NOFILE)"
            );
            announce(format!(
                "files       up to {} open (RLIMIT_NOFILE; was {})",
                files.now, files.before
            ));
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let geometry = cfg.board.geometry();
    let why = cfg.board.reason();
    match cfg.board.kind() {
        BoardKind::Sim => {
            let kit = gopigo3::sim::new_robot(gopigo3::sim::SimConfig {
                geometry,
                clock: ClockMode::RealTime,
                ..gopigo3::sim::SimConfig::default()
            })?;
            announce(format!("board       simulated GoPiGo3 ({why})"));
            run_with(
                cfg,
                kit.gopigo,
                Some(Box::new(kit.distance)),
                Some(kit.handle),
                shutdown,
            )
            .await
        }
        BoardKind::Hardware => {
            #[cfg(feature = "hardware")]
            {
                let spi = gopigo3::linux::LinuxSpiConfig {
                    hold_power_line: cfg.board.hold_power_line,
                    ..gopigo3::linux::LinuxSpiConfig::default()
                };
                let g = gopigo3::linux::open_gopigo3(&spi, geometry)?;
                let distance: Option<Box<dyn DistanceSensor + Send>> =
                    match gopigo3::linux::Vl53l0xSensor::open_default() {
                        Ok(s) => Some(Box::new(s)),
                        Err(e) => {
                            tracing::warn!(error = %e, "no distance sensor: the obstacle stop is OFF");
                            None
                        }
                    };
                announce(format!("board       GoPiGo3 on /dev/spidev0.1 ({why})"));
                run_with(cfg, g, distance, None, shutdown).await
            }
            #[cfg(not(feature = "hardware"))]
            {
                let _ = why;
                Err(AgentError::HardwareNotBuilt)
            }
        }
    }
}

/// A panic anywhere becomes a reported stop (see [`executor::stop_on_panic`]).
fn install_panic_stop<B: SpiBus + Send + 'static>(robot: SharedRobot<B>, inbox: Arc<Inbox>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let done = executor::stop_on_panic(&inbox, &robot, info);
        previous(info);
        eprintln!("gopigo agent: panic; {done}");
    }));
}

/// Starts the parts in order (panic stop, sim debug endpoint, camera,
/// executor thread), runs the MQTT session until `shutdown`, then waits for
/// the executor to stop the wheels and stops the rest.
async fn run_with<B: SpiBus + Send + 'static>(
    cfg: AgentConfig,
    gopigo: GoPiGo3<B>,
    distance: Option<Box<dyn DistanceSensor + Send>>,
    sim: Option<SimHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let cancel = CancellationToken::new();
    let robot: SharedRobot<B> = Arc::new(Mutex::new(gopigo));
    let inbox = Arc::new(Inbox::new());
    install_panic_stop(robot.clone(), inbox.clone());
    if let (Some(h), Some(port)) = (&sim, cfg.sim.debug_port) {
        start_sim_debug(h, port, &cancel).await?;
    }
    // Camera, guarded by a per-boot token that the online status carries.
    let camera = crate::camera::start(&cfg, sim.as_ref(), cancel.clone()).await?;
    let (camera_ctl, camera_link, video_bus) = match camera {
        Some(c) => (Some(c.control), Some((c.url, c.token)), Some(c.bus)),
        None => (None, None, None),
    };
    // Detection on the robot, on its own low-priority thread ([detect]).
    // An error stops the camera first: its capture would keep the runtime alive.
    let onboard = crate::onboard::start(&cfg.detect, video_bus.as_ref(), cancel.clone())
        .await
        .inspect_err(|_| cancel.cancel())?;
    let mut exec = Executor::new(robot.clone(), distance, camera_ctl, limits(&cfg))?;
    if let Some(h) = &sim {
        exec = exec.with_telemetry_extras(sim_telemetry(h.clone()));
    }
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let moving = Arc::new(AtomicBool::new(false));
    let thread =
        executor::spawn(exec, inbox.clone(), out_tx, moving.clone()).map_err(|source| {
            AgentError::Io {
                what: "start the executor thread".into(),
                source,
            }
        })?;
    let result = session::run(
        &cfg,
        (camera_link, video_bus),
        onboard,
        inbox,
        out_rx,
        moving,
        shutdown,
    )
    .await;
    // The executor stopped when the session closed the inbox; wait for it.
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    cancel.cancel();
    if let Some(h) = &sim {
        announce_sim_final(h);
    }
    result
}

/// The executor's limits from `[safety]`, `[telemetry]` and `[board]`.
fn limits(cfg: &AgentConfig) -> Limits {
    Limits {
        deadman: Duration::from_millis(cfg.safety.deadman_ms),
        obstacle_mm: cfg.safety.obstacle_mm,
        telemetry_period: Duration::from_secs_f64(1.0 / cfg.telemetry.hz),
        speed_dps: cfg.board.speed_dps,
    }
}

/// The simulated board's extra telemetry: its true pose as `sim_pose`
/// (x mm, y mm to 0.1 mm; heading to 0.01 degree), which tests and the
/// dashboard compare with what the robot was told to do.
pub(crate) fn sim_telemetry(sim: SimHandle) -> TelemetryExtras {
    Box::new(move |t: &mut Telemetry| {
        let p = sim.pose();
        t.sim_pose = Some([
            (p.x_mm * 10.0).round() / 10.0,
            (p.y_mm * 10.0).round() / 10.0,
            (p.heading_deg() * 100.0).round() / 100.0,
        ]);
    })
}

/// The simulation-only debug endpoint on 127.0.0.1:`port`, with the
/// board's frame log; it stops with `cancel`.
async fn start_sim_debug(
    sim: &SimHandle,
    port: u16,
    cancel: &CancellationToken,
) -> Result<(), AgentError> {
    let (tx, rx) = std::sync::mpsc::channel();
    sim.set_frame_log(Some(tx));
    let frames = crate::debug::collect_frames(rx).map_err(|source| AgentError::Io {
        what: "start the frame log thread".into(),
        source,
    })?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| AgentError::Io {
            what: format!("bind the sim debug port 127.0.0.1:{port} ([sim] debug_port)"),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| AgentError::Io {
        what: "read the sim debug address".into(),
        source,
    })?;
    announce(format!("sim debug   http://{addr}/sim"));
    let app = crate::debug::router(sim.clone(), frames);
    let stop = cancel.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok(())
}

/// The simulated motors' last state, for tests that check the agent
/// floated them on the way out.
fn announce_sim_final(sim: &SimHandle) {
    let (l, r) = (
        sim.motor(gopigo3::MotorPort::Left),
        sim.motor(gopigo3::MotorPort::Right),
    );
    announce(format!(
        "sim final   {}",
        json!({"motor_modes": [l.mode, r.mode], "wheel_dps": [l.speed_dps, r.speed_dps]})
    ));
}
