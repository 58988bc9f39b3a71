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
use gopigo3::{BusError, DistanceSensor, GoPiGo3, PowerButton, SpiBus};
use gopigo_protocol::Telemetry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{AgentConfig, BoardKind, TicksSetting};
use crate::executor::{self, Executor, Limits, SharedRobot, TelemetryExtras};
use crate::inbox::{Inbox, StopCause};
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
    match cfg.board.kind() {
        BoardKind::Sim => run_sim(cfg, shutdown).await,
        BoardKind::Hardware => run_hardware(cfg, shutdown).await,
    }
}

/// The distance sensor as `[safety] obstacle_mm` needs it: with an obstacle
/// distance set, a missing sensor refuses the start (the agent will not
/// drive blind); `obstacle_mm = 0` says the user means to drive without one.
fn require_distance_sensor(
    cfg: &AgentConfig,
    opened: Result<Box<dyn DistanceSensor + Send>, BusError>,
) -> Result<Option<Box<dyn DistanceSensor + Send>>, AgentError> {
    let mm = cfg.safety.obstacle_mm;
    match opened {
        Ok(sensor) => {
            announce(if mm == 0 {
                "distance    sensor found; obstacle stop off ([safety] obstacle_mm = 0)".to_string()
            } else {
                format!("distance    sensor found; forward moves stop closer than {mm} mm")
            });
            Ok(Some(sensor))
        }
        Err(e) if mm == 0 => {
            tracing::warn!(error = %e, "no distance sensor; the obstacle stop is off ([safety] obstacle_mm = 0)");
            announce("distance    none; obstacle stop off ([safety] obstacle_mm = 0)".to_string());
            Ok(None)
        }
        Err(e) => Err(AgentError::NoDistanceSensor {
            config: cfg
                .path
                .as_ref()
                .map(|p| format!("{}: ", p.display()))
                .unwrap_or_default(),
            obstacle_mm: mm,
            reason: e.to_string(),
        }),
    }
}

/// Sets the driver's tick count from `[board] ticks`: the number given, or
/// (`"auto"`) the vendor's decision from the board's serial number; says
/// which on the `motors` line.
fn resolve_ticks<B: SpiBus>(cfg: &AgentConfig, g: &mut GoPiGo3<B>) -> Result<(), AgentError> {
    let line = match cfg.board.ticks {
        TicksSetting::Fixed(t) => format!("{t} ticks ([board] ticks = {t})"),
        TicksSetting::Auto => {
            let serial = g.serial_id()?;
            let d = gopigo3::ticks::detect(&cfg.board.vendor_config_path(), &serial);
            g.set_geometry(gopigo3::Geometry {
                encoder_ticks_per_rotation: d.ticks,
                ..g.geometry()
            })?;
            // the speed limit is sent in ticks: send it again
            let speed = g.get_speed();
            g.set_speed(speed)?;
            format!("{d}; [board] ticks = \"auto\", serial {serial}")
        }
    };
    announce(format!("motors      {line}"));
    Ok(())
}

/// The power button is ours to watch only where we hold the power line;
/// where the vendor's `gopigo3_power` runs, it handles the button.
fn power_button(
    cfg: &AgentConfig,
    open: impl FnOnce() -> Result<Box<dyn PowerButton + Send>, BusError>,
) -> Option<Box<dyn PowerButton + Send>> {
    if !cfg.board.hold_power_line {
        announce("power       button left to the vendor's gopigo3_power ([board] hold_power_line = false)".to_string());
        return None;
    }
    match open() {
        Ok(b) => {
            announce(match cfg.board.shutdown_command() {
                Some(c) => format!("power       button on GPIO22 runs {c:?} after stopping the wheels"),
                None => "power       button on GPIO22 stops the wheels (simulated board: no [board] shutdown_command set, nothing is run)".to_string(),
            });
            Some(b)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the power button (GPIO22): pressing it will not shut the Pi down cleanly");
            None
        }
    }
}

async fn run_sim(
    cfg: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let why = cfg.board.reason();
    let motors = gopigo3::Geometry {
        encoder_ticks_per_rotation: cfg.sim.motor_ticks,
        ..cfg.board.geometry()
    };
    let kit = gopigo3::sim::new_robot(gopigo3::sim::SimConfig {
        geometry: motors,
        clock: ClockMode::RealTime,
        ..gopigo3::sim::SimConfig::default()
    })?;
    announce(format!("board       simulated GoPiGo3 ({why})"));
    tracing::info!(
        motor_ticks = cfg.sim.motor_ticks,
        "simulated motors ([sim] motor_ticks)"
    );
    let mut g = kit.gopigo;
    g.set_geometry(cfg.board.geometry())?;
    resolve_ticks(&cfg, &mut g)?;
    let sensor: Result<Box<dyn DistanceSensor + Send>, BusError> = if cfg.sim.distance_sensor {
        Ok(Box::new(kit.distance))
    } else {
        Err(BusError::Open {
            device: "simulated VL53L0X".into(),
            reason: "the simulated robot has none ([sim] distance_sensor = false)".into(),
        })
    };
    let distance = require_distance_sensor(&cfg, sensor)?;
    let handle = kit.handle.clone();
    let button = power_button(&cfg, || {
        Ok(Box::new(gopigo3::sim::SimPowerButton::new(handle)))
    });
    run_with(cfg, g, distance, button, Some(kit.handle), shutdown).await
}

#[cfg(feature = "hardware")]
async fn run_hardware(
    cfg: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let why = cfg.board.reason();
    let spi = gopigo3::linux::LinuxSpiConfig {
        hold_power_line: cfg.board.hold_power_line,
        ..gopigo3::linux::LinuxSpiConfig::default()
    };
    let mut g = gopigo3::linux::open_gopigo3(&spi, cfg.board.geometry())?;
    announce(format!("board       GoPiGo3 on /dev/spidev0.1 ({why})"));
    resolve_ticks(&cfg, &mut g)?;
    // Read on its own thread: the executor (which also applies stops) never
    // waits on the I2C bus; a reading older than 200 ms counts as failed.
    let sensor = gopigo3::linux::Vl53l0xSensor::open_default().and_then(|s| {
        gopigo3::SensorThread::spawn(
            s,
            "distance-sensor",
            Duration::from_millis(5),
            Duration::from_millis(200),
        )
        .map(|t| Box::new(t) as Box<dyn DistanceSensor + Send>)
        .map_err(|e| BusError::Open {
            device: "/dev/i2c-1".into(),
            reason: format!("cannot start the sensor thread: {e}"),
        })
    });
    let distance = require_distance_sensor(&cfg, sensor)?;
    let button = power_button(&cfg, || {
        gopigo3::linux::Gpio22Button::open().map(|b| Box::new(b) as Box<dyn PowerButton + Send>)
    });
    run_with(cfg, g, distance, button, None, shutdown).await
}

#[cfg(not(feature = "hardware"))]
async fn run_hardware(
    _cfg: AgentConfig,
    _shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    Err(AgentError::HardwareNotBuilt)
}

/// Polls the power button every 100 ms (as the vendor's service does) on
/// its own thread until `cancel`; on a press it stops the wheels through the
/// inbox's stop slot, which never waits, then cancels `pressed` so the
/// agent shuts down gracefully.
fn watch_power_button(
    mut button: Box<dyn PowerButton + Send>,
    inbox: Arc<Inbox>,
    pressed: CancellationToken,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("power-button".into())
        .spawn(move || {
            let mut failing = false;
            while !cancel.is_cancelled() {
                match button.pressed() {
                    Ok(true) => {
                        tracing::warn!("power button: stopping the wheels, then shutting down");
                        inbox.stop(StopCause::PowerButton);
                        pressed.cancel();
                        return;
                    }
                    Ok(false) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "cannot read the power button");
                    }
                    Err(_) => {}
                }
                std::thread::sleep(POWER_BUTTON_POLL);
            }
        })
        .map(|_| ())
}

/// How often the power button is read (the vendor's `gopigo3_power`: 0.1 s).
const POWER_BUTTON_POLL: Duration = Duration::from_millis(100);
/// How long the shutdown command may take before the agent gives up on it.
const SHUTDOWN_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `[board] shutdown_command` (the wheels are already stopped and
/// floated, the session closed); an error if it cannot start, fails or hangs.
async fn run_shutdown_command(command: &[String]) -> Result<(), AgentError> {
    let fail = |outcome: String| AgentError::ShutdownCommand {
        command: command.to_vec(),
        outcome,
    };
    let (program, args) = command
        .split_first()
        .ok_or_else(|| fail("is empty".into()))?;
    announce(format!(
        "power       button pressed, wheels stopped: running {command:?}"
    ));
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("could not start ({e})")))?;
    match tokio::time::timeout(SHUTDOWN_COMMAND_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(fail(format!("failed ({status})"))),
        Ok(Err(e)) => Err(fail(format!("could not be waited for ({e})"))),
        Err(_) => Err(fail(format!(
            "did not finish within {} s",
            SHUTDOWN_COMMAND_TIMEOUT.as_secs()
        ))),
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
    button: Option<Box<dyn PowerButton + Send>>,
    sim: Option<SimHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let cancel = CancellationToken::new();
    let pressed = CancellationToken::new();
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
    if let Some(b) = button {
        watch_power_button(b, inbox.clone(), pressed.clone(), cancel.clone()).map_err(
            |source| AgentError::Io {
                what: "start the power button thread".into(),
                source,
            },
        )?;
    }
    let on_button = pressed.clone();
    let shutdown = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = on_button.cancelled() => {}
        }
    };
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
    result?;
    if pressed.is_cancelled() {
        power_off(&cfg).await?;
    }
    Ok(())
}

/// After the power button stopped the agent (wheels stopped): runs
/// `[board] shutdown_command`, or says there is none (simulated board).
async fn power_off(cfg: &AgentConfig) -> Result<(), AgentError> {
    match cfg.board.shutdown_command() {
        Some(command) => run_shutdown_command(&command).await,
        None => {
            announce(
                "power       button pressed, wheels stopped; no shutdown_command on the simulated board".to_string(),
            );
            Ok(())
        }
    }
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
