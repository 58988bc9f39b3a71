//! The command executor: a state machine over the GoPiGo3 driver that runs
//! one motion at a time, enforces the dead-man timer and the obstacle stop,
//! applies shadow settings and produces telemetry. It owns no clock and no
//! socket: every call takes `now`, so tests drive it with the simulated board
//! in manual-clock mode; [`spawn`] runs it on a thread at 50 Hz.
//!
//! Queue policy: commands arrive through the [`Inbox`]'s bounded queue
//! ([`crate::inbox::QUEUE_CAPACITY`]); a new motion command **preempts** the
//! running one (which ends `done` with reason `preempted by <id>`), so the
//! newest instruction of a teleoperator always wins and nothing queues up
//! behind a long move. LED, servo and heartbeat commands take effect at once.
//!
//! Safety is a property of this design, not of queue space: stops (the
//! `stop` command, link loss, a panic elsewhere, shutdown) come through the
//! inbox's stop slot, which is never full and which the executor reads
//! before anything else each time it wakes ([`Executor::service`]); the
//! dead-man timer and the obstacle stop are checked on every tick whatever
//! is queued; and a stop is not over until the wheels read back at rest
//! (the 0 dps write is retried every tick until they do).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use crate::inbox::{Inbox, StopAck, StopCause, StopRequest, Taken};

use gopigo3::{DistanceSensor, GoPiGo3, Gopigo3Error, LedMask, MotorPort, ServoPort, SpiBus};
use gopigo_camera::CameraControl;
use gopigo_protocol::{
    unix_ms, Action, Command, CommandResult, CommandStatus, Direction, RobotSettings, Telemetry,
    Wheels,
};

/// The executor's period: motion checks and distance polls run at 50 Hz.
pub const TICK: Duration = Duration::from_millis(20);
/// The vendor's pause between "dps 0" and "float" when stopping.
pub const FLOAT_DELAY: Duration = Duration::from_millis(100);
/// Distance readings at or above this mean "nothing in range" (VL53L0X).
const OUT_OF_RANGE_MM: u16 = 8000;
/// A wheel reading at most this speed (dps) counts as stopped.
const AT_REST_DPS: f64 = 5.0;
/// The executor thread's name (the panic hook tells it apart by it).
pub const EXECUTOR_THREAD: &str = "executor";

/// The driver, shared with the panic hook so a panic anywhere can float the motors.
pub type SharedRobot<B> = Arc<Mutex<GoPiGo3<B>>>;

/// Safety and pacing limits of the executor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Dead-man TTL: while moving, stop when no command came for this long.
    pub deadman: Duration,
    /// Stop a forward move closer than this (mm); 0 = off.
    pub obstacle_mm: u32,
    /// Time between telemetry messages.
    pub telemetry_period: Duration,
    /// Wheel speed until the shadow sets one (dps).
    pub speed_dps: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadman: Duration::from_millis(3000),
            obstacle_mm: 200,
            telemetry_period: Duration::from_millis(200),
            speed_dps: gopigo_protocol::DEFAULT_SPEED_DPS,
        }
    }
}

/// What the executor is told.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A parsed command.
    Command(Command),
    /// Desired shadow settings (a delta, or the desired state at connect);
    /// the executor applies them and reports its whole state.
    Settings(RobotSettings),
}

/// What the executor wants published.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// For `cmd/result`: each command's `accepted`, `done` or `rejected`.
    Result(CommandResult),
    /// For the shadow's `reported` state, after any setting changed.
    Reported(RobotSettings),
    /// For `telemetry`, at `[telemetry] hz`.
    Telemetry(Telemetry),
}

#[derive(Debug, Clone, PartialEq)]
enum Motion {
    Idle,
    Timed {
        id: String,
        label: &'static str,
        until: Instant,
        forward: bool,
    },
    Position {
        id: String,
        label: &'static str,
        left_target: f64,
        right_target: f64,
        deadline: Instant,
        forward: bool,
    },
    /// Wheels told to stop; floated once they read back at rest and
    /// [`FLOAT_DELAY`] has passed. `retries`: 0 dps writes repeated because
    /// the wheels did not read back at rest (or the bus failed).
    Stopping {
        float_at: Instant,
        retries: u32,
    },
}

/// One distance reading as the obstacle stop sees it.
#[derive(Debug, Clone, PartialEq)]
enum Reading {
    /// The robot has no sensor (only with `obstacle_mm = 0`, see the agent's start).
    NoSensor,
    /// Nothing in range.
    Clear,
    /// Something at this distance (mm).
    At(u32),
    /// The read failed, with why.
    Failed(String),
}

/// Adds to each telemetry sample what only the board in use knows: the
/// simulated board sets `sim_pose` (its true pose) through one; the real
/// board has none. Set with [`Executor::with_telemetry_extras`].
pub type TelemetryExtras = Box<dyn Fn(&mut Telemetry) + Send>;

/// The state machine. See the module docs.
pub struct Executor<B: SpiBus> {
    robot: SharedRobot<B>,
    distance: Option<Box<dyn DistanceSensor + Send>>,
    extras: Option<TelemetryExtras>,
    camera: Option<Arc<CameraControl>>,
    limits: Limits,
    settings: RobotSettings,
    motion: Motion,
    last_command_at: Option<Instant>,
    next_telemetry: Option<Instant>,
    last_distance_mm: Option<u32>,
    /// Why the last distance reading failed, until one succeeds.
    distance_error: Option<String>,
    made_ids: u64,
    id_prefix: String,
}

fn result(id: &str, status: CommandStatus, reason: Option<String>) -> Output {
    Output::Result(CommandResult {
        id: id.to_string(),
        status,
        reason,
    })
}

/// Locks the driver even if a panicking thread poisoned the mutex: stopping
/// the motors matters more than the driver's bookkeeping.
pub fn lock_robot<B: SpiBus>(robot: &SharedRobot<B>) -> MutexGuard<'_, GoPiGo3<B>> {
    robot.lock().unwrap_or_else(|e| e.into_inner())
}

impl<B: SpiBus> Executor<B> {
    /// An executor over `robot`; `distance` feeds the obstacle stop,
    /// `camera` follows `camera_on`.
    pub fn new(
        robot: SharedRobot<B>,
        distance: Option<Box<dyn DistanceSensor + Send>>,
        camera: Option<Arc<CameraControl>>,
        limits: Limits,
    ) -> Result<Self, Gopigo3Error> {
        lock_robot(&robot).set_speed(f64::from(limits.speed_dps))?;
        let settings = RobotSettings {
            speed_dps: Some(limits.speed_dps),
            led: None,
            servo_angle: None,
            camera_on: camera.as_ref().map(|c| c.is_enabled()),
            detection_on: None,
        };
        Ok(Self {
            robot,
            distance,
            extras: None,
            camera,
            limits,
            settings,
            motion: Motion::Idle,
            last_command_at: None,
            next_telemetry: None,
            last_distance_mm: None,
            distance_error: None,
            made_ids: 0,
            id_prefix: format!("r{}", unix_ms() % 1_000_000),
        })
    }

    /// Has `extras` add the board's own fields to every telemetry sample.
    pub fn with_telemetry_extras(mut self, extras: TelemetryExtras) -> Self {
        self.extras = Some(extras);
        self
    }

    /// True while a motion command drives the wheels.
    pub fn is_moving(&self) -> bool {
        matches!(self.motion, Motion::Timed { .. } | Motion::Position { .. })
    }

    /// The state to report in the shadow.
    pub fn reported(&self) -> RobotSettings {
        self.settings.clone()
    }

    /// The wheel speed used when a command names none (dps).
    pub fn speed_dps(&self) -> u32 {
        self.settings.speed_dps.unwrap_or(self.limits.speed_dps)
    }

    fn bot(&self) -> MutexGuard<'_, GoPiGo3<B>> {
        lock_robot(&self.robot)
    }

    fn set_servo(&self, angle: f64) -> Result<(), Gopigo3Error> {
        self.bot().set_servo_angle(ServoPort::One, angle)
    }

    fn make_id(&mut self) -> String {
        self.made_ids += 1;
        format!("{}-{}", self.id_prefix, self.made_ids)
    }

    /// Runs a command or applies settings (stops come through [`Executor::service`]).
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Output> {
        match input {
            Input::Command(cmd) => {
                // Off unless RUST_LOG enables target `latency`.
                tracing::trace!(target: "latency", "executor command start");
                self.command(cmd, now)
            }
            Input::Settings(s) => self.apply_settings(s),
        }
    }

    /// Applies what was taken from the inbox: every stop first, then the
    /// close (reporting the inputs that will never run, stopping and
    /// floating the wheels), else the one input. `false` once closed.
    pub fn service(&mut self, taken: Taken, now: Instant) -> (Vec<Output>, bool) {
        let mut out = Vec::new();
        for stop in taken.stops {
            out.extend(self.apply_stop(stop, now));
        }
        if let Some(left) = taken.closed {
            for input in left {
                if let Input::Command(c) = input {
                    let id = c.id.unwrap_or_else(|| self.make_id());
                    let why = "agent shutting down before it ran".to_string();
                    out.push(result(&id, CommandStatus::Rejected, Some(why)));
                }
            }
            out.extend(self.shutdown("agent shutting down"));
            return (out, false);
        }
        if let Some(input) = taken.input {
            out.extend(self.handle(input, now));
        }
        (out, true)
    }

    /// One executor tick without waiting: [`Executor::service`] what the
    /// inbox holds, then [`Executor::tick`]. Tests step the executor with it.
    pub fn step(&mut self, inbox: &Inbox, now: Instant) -> (Vec<Output>, bool) {
        let (mut out, open) = self.service(inbox.take(), now);
        if open {
            out.extend(self.tick(now));
        }
        (out, open)
    }

    /// Applies one stop: ends the running motion with the stop's reason,
    /// reports the cancelled motions as `rejected`, stops the wheels, and
    /// for a `stop` command reports `accepted` and `done`.
    pub fn apply_stop(&mut self, stop: StopRequest, now: Instant) -> Vec<Output> {
        let StopRequest { cause, cancelled } = stop;
        let (reason, stop_id) = match cause {
            StopCause::Command(id) => {
                let id = id.unwrap_or_else(|| self.make_id());
                (format!("stopped by command {id}"), Some(id))
            }
            StopCause::LinkLost(why) => (format!("link to the broker lost ({why})"), None),
            StopCause::Panic(what) => (format!("stopped for safety: {what}"), None),
            StopCause::PowerButton => ("power button: the Pi is shutting down".to_string(), None),
        };
        let was_moving = self.is_moving();
        if stop_id.is_none() && was_moving {
            tracing::warn!(%reason, "safety stop");
        }
        let mut out = self.end_motion(Some(reason.clone()));
        for c in cancelled {
            let id = c.id.unwrap_or_else(|| self.make_id());
            let why = format!("cancelled before it ran: {reason}");
            out.push(result(&id, CommandStatus::Rejected, Some(why)));
        }
        if was_moving || stop_id.is_some() {
            self.halt(now);
        }
        if let Some(id) = stop_id {
            out.push(result(&id, CommandStatus::Accepted, None));
            out.push(result(&id, CommandStatus::Done, None));
        }
        out
    }

    /// Commands the wheels to 0 dps now; [`Executor::tick`] checks that they
    /// come to rest (retrying the write until they do) and floats them
    /// [`FLOAT_DELAY`] later.
    fn halt(&mut self, now: Instant) {
        if let Err(e) = self.bot().set_motor_dps(MotorPort::Both, 0.0) {
            tracing::error!(error = %e, "cannot stop the motors; trying to float them, and retrying every tick");
            let _ = self.bot().float_motors(MotorPort::Both);
        }
        self.motion = Motion::Stopping {
            float_at: now + FLOAT_DELAY,
            retries: 0,
        };
    }

    /// Both wheels read back at most [`AT_REST_DPS`].
    fn wheels_at_rest(&mut self) -> Result<bool, Gopigo3Error> {
        let mut bot = self.bot();
        let l = bot.get_motor_status(MotorPort::Left)?;
        let r = bot.get_motor_status(MotorPort::Right)?;
        Ok(l.dps.abs() <= AT_REST_DPS && r.dps.abs() <= AT_REST_DPS)
    }

    /// The `Stopping` state's tick: float once at rest and due; retry the
    /// stop when the wheels still turn after [`FLOAT_DELAY`] or the bus fails.
    fn check_stopping(&mut self, now: Instant, float_at: Instant, retries: u32) {
        match self.wheels_at_rest() {
            Ok(true) if now >= float_at => {
                if let Err(e) = self.bot().float_motors(MotorPort::Both) {
                    tracing::error!(error = %e, "cannot float the motors (they are at 0 dps)");
                }
                if retries > 0 {
                    tracing::warn!(retries, "the wheels are stopped after retrying");
                }
                self.motion = Motion::Idle;
            }
            Ok(true) => {}
            Ok(false) if now < float_at => {}
            outcome => {
                let retries = retries.saturating_add(1);
                let why = match outcome {
                    Err(e) => format!("cannot read the motor status: {e}"),
                    Ok(_) => "the wheels still turn".to_string(),
                };
                let wrote = self.bot().set_motor_dps(MotorPort::Both, 0.0);
                if retries == 1 || retries % 50 == 0 {
                    match &wrote {
                        Ok(()) => {
                            tracing::error!(retries, %why, "wheels not confirmed stopped; 0 dps sent again (retrying every tick)")
                        }
                        Err(e) => {
                            tracing::error!(retries, %why, error = %e, "wheels not confirmed stopped and the stop write failed; retrying every tick")
                        }
                    }
                }
                self.motion = Motion::Stopping { float_at, retries };
            }
        }
    }

    /// Ends the running motion (if any) with `done` and `reason`.
    fn end_motion(&mut self, reason: Option<String>) -> Vec<Output> {
        match std::mem::replace(&mut self.motion, Motion::Idle) {
            Motion::Timed { id, .. } | Motion::Position { id, .. } => {
                vec![result(&id, CommandStatus::Done, reason)]
            }
            other => {
                self.motion = other;
                Vec::new()
            }
        }
    }

    fn safety_stop(&mut self, now: Instant, reason: String) -> Vec<Output> {
        tracing::warn!(%reason, "safety stop");
        let out = self.end_motion(Some(reason));
        self.halt(now);
        out
    }

    /// One raw distance reading; remembers it (or why it failed) for telemetry.
    fn read_distance(&mut self) -> Reading {
        let Some(d) = self.distance.as_mut() else {
            return Reading::NoSensor;
        };
        match d.read_mm() {
            Ok(mm) => {
                self.distance_error = None;
                if mm < OUT_OF_RANGE_MM {
                    self.last_distance_mm = Some(u32::from(mm));
                    Reading::At(u32::from(mm))
                } else {
                    self.last_distance_mm = Some(u32::from(gopigo3::NOTHING_IN_RANGE_MM));
                    Reading::Clear
                }
            }
            Err(e) => {
                let why = e.to_string();
                if self.distance_error.as_deref() != Some(why.as_str()) {
                    tracing::warn!(error = %e, "distance sensor read failed");
                }
                self.last_distance_mm = None;
                self.distance_error = Some(why.clone());
                Reading::Failed(why)
            }
        }
    }

    /// `Some(reason)` when the robot must not move forward: an obstacle
    /// closer than `obstacle_mm`, or a distance reading that failed (fail
    /// safe: a sensor that cannot see cannot clear the way). Each forward
    /// command reads the sensor again, so forward moves are taken again as
    /// soon as a reading succeeds; a stopped move does not resume by itself.
    fn obstacle_ahead(&mut self) -> Option<String> {
        if self.limits.obstacle_mm == 0 {
            return None;
        }
        match self.read_distance() {
            Reading::At(mm) if mm < self.limits.obstacle_mm => Some(format!(
                "obstacle at {mm} mm ahead (closer than obstacle_mm = {})",
                self.limits.obstacle_mm
            )),
            Reading::Failed(why) => Some(format!(
                "distance sensor read failed ({why}); forward moves stop until it reads again"
            )),
            Reading::At(_) | Reading::Clear | Reading::NoSensor => None,
        }
    }

    fn command(&mut self, cmd: Command, now: Instant) -> Vec<Output> {
        // Only what asks for motion keeps the dead-man happy: an LED or
        // servo change says nothing about a driver watching the robot.
        if cmd.is_motion() || matches!(cmd.action, Action::Heartbeat) {
            self.last_command_at = Some(now);
        }
        let id = cmd.id.clone().unwrap_or_else(|| self.make_id());
        match cmd.action {
            Action::Stop => {
                let stop = StopRequest {
                    cause: StopCause::Command(Some(id)),
                    cancelled: Vec::new(),
                };
                self.apply_stop(stop, now)
            }
            Action::Heartbeat => vec![
                result(&id, CommandStatus::Accepted, None),
                result(&id, CommandStatus::Done, None),
            ],
            Action::Led { color } => {
                let [r, g, b] = color;
                let set = self
                    .bot()
                    .set_led(LedMask::EYE_LEFT | LedMask::EYE_RIGHT, r, g, b);
                if set.is_ok() {
                    self.settings.led = Some(color);
                }
                self.setting_done(&id, set)
            }
            Action::Servo { angle } => {
                let set = self.set_servo(angle);
                if set.is_ok() {
                    self.settings.servo_angle = Some(angle);
                }
                self.setting_done(&id, set)
            }
            Action::Drive {
                direction,
                speed_dps,
                duration_ms,
            } => self.drive(&id, direction, speed_dps, duration_ms, now),
            Action::Turn { degrees } => {
                let w = self.bot().geometry().spin_wheel_degrees(degrees);
                let mut out = self.end_motion(Some(format!("preempted by {id}")));
                out.extend(self.start_position(&id, "turning", w, -w, false, now));
                out
            }
            Action::DriveCm { cm } => self.drive_cm(&id, cm, now),
        }
    }

    /// The results of an LED or servo command that takes effect at once:
    /// `accepted`, `done` and the new reported state, or the board error.
    fn setting_done(&self, id: &str, set: Result<(), Gopigo3Error>) -> Vec<Output> {
        match set {
            Ok(()) => vec![
                result(id, CommandStatus::Accepted, None),
                result(id, CommandStatus::Done, None),
                Output::Reported(self.reported()),
            ],
            Err(e) => vec![self.board_error(id, &e)],
        }
    }

    /// A timed drive, refused when an obstacle is too close ahead; it
    /// preempts the running motion.
    fn drive(
        &mut self,
        id: &str,
        direction: Direction,
        speed_dps: Option<u32>,
        duration_ms: Option<u32>,
        now: Instant,
    ) -> Vec<Output> {
        let forward = matches!(
            direction,
            Direction::Forward | Direction::Left | Direction::Right
        );
        if let Some(reason) = forward.then(|| self.obstacle_ahead()).flatten() {
            return self.refuse_for_obstacle(id, reason, now);
        }
        let mut out = self.end_motion(Some(format!("preempted by {id}")));
        let speed = f64::from(speed_dps.unwrap_or(self.speed_dps()));
        let duration = Duration::from_millis(u64::from(
            duration_ms.unwrap_or(gopigo_protocol::DEFAULT_DURATION_MS),
        ));
        out.push(self.start_timed(id, direction, speed, now, duration));
        out
    }

    /// A move by distance (negative: backward), refused when going forward
    /// toward an obstacle too close; it preempts the running motion.
    fn drive_cm(&mut self, id: &str, cm: f64, now: Instant) -> Vec<Output> {
        if let Some(reason) = (cm > 0.0).then(|| self.obstacle_ahead()).flatten() {
            return self.refuse_for_obstacle(id, reason, now);
        }
        let deg = self.bot().geometry().mm_to_wheel_degrees(cm * 10.0);
        let mut out = self.end_motion(Some(format!("preempted by {id}")));
        out.extend(self.start_position(id, "drive_cm", deg, deg, cm > 0.0, now));
        out
    }

    /// A forward move refused for an obstacle: the running motion is
    /// preempted all the same (the teleoperator asked for something else),
    /// so the wheels stop too.
    fn refuse_for_obstacle(&mut self, id: &str, reason: String, now: Instant) -> Vec<Output> {
        let was_moving = self.is_moving();
        let mut out = self.end_motion(Some(format!("preempted by {id}")));
        if was_moving {
            self.halt(now);
        }
        out.push(result(id, CommandStatus::Rejected, Some(reason)));
        out
    }

    /// Starts a timed drive; its result (`accepted`, or `rejected` with the
    /// board error, the wheels stopped).
    fn start_timed(
        &mut self,
        id: &str,
        direction: Direction,
        speed: f64,
        now: Instant,
        duration: Duration,
    ) -> Output {
        let started = {
            let mut bot = self.bot();
            bot.set_speed(speed).and_then(|()| match direction {
                Direction::Forward => bot.forward(),
                Direction::Backward => bot.backward(),
                Direction::Left => bot.left(),
                Direction::Right => bot.right(),
                Direction::SpinLeft => bot.spin_left(),
                Direction::SpinRight => bot.spin_right(),
            })
        };
        match started {
            Ok(()) => {
                let label = match direction {
                    Direction::Forward | Direction::Backward => "driving",
                    _ => "turning",
                };
                let forward = matches!(
                    direction,
                    Direction::Forward | Direction::Left | Direction::Right
                );
                self.motion = Motion::Timed {
                    id: id.to_string(),
                    label,
                    until: now + duration,
                    forward,
                };
                result(id, CommandStatus::Accepted, None)
            }
            Err(e) => {
                self.halt(now);
                self.board_error(id, &e)
            }
        }
    }

    fn board_error(&self, id: &str, e: &Gopigo3Error) -> Output {
        tracing::error!(error = %e, id, "board error");
        result(
            id,
            CommandStatus::Rejected,
            Some(format!("board error: {e}")),
        )
    }

    fn start_position(
        &mut self,
        id: &str,
        label: &'static str,
        left_deg: f64,
        right_deg: f64,
        forward: bool,
        now: Instant,
    ) -> Vec<Output> {
        let speed = f64::from(self.speed_dps());
        let started = {
            let mut bot = self.bot();
            bot.set_speed(speed)
                .and_then(|()| bot.read_encoders())
                .and_then(|(l0, r0)| {
                    let (lt, rt) = (l0 + left_deg, r0 + right_deg);
                    bot.set_motor_position(MotorPort::Left, lt)?;
                    bot.set_motor_position(MotorPort::Right, rt)?;
                    Ok((lt, rt))
                })
        };
        match started {
            Ok((left_target, right_target)) => {
                let secs = 2.0 * left_deg.abs().max(right_deg.abs()) / speed + 2.0;
                self.motion = Motion::Position {
                    id: id.to_string(),
                    label,
                    left_target,
                    right_target,
                    deadline: now + Duration::from_secs_f64(secs),
                    forward,
                };
                vec![result(id, CommandStatus::Accepted, None)]
            }
            Err(e) => {
                self.halt(now);
                vec![self.board_error(id, &e)]
            }
        }
    }

    /// Applies desired settings, then reports the whole state.
    fn apply_settings(&mut self, s: RobotSettings) -> Vec<Output> {
        if let Some(v) = s.speed_dps {
            if (1..=gopigo_protocol::MAX_SPEED_DPS).contains(&v) {
                self.settings.speed_dps = Some(v);
            } else {
                tracing::warn!(speed_dps = v, "shadow speed_dps out of 1..=1000; ignored");
            }
        }
        if let Some(c) = s.led {
            let [r, g, b] = c;
            let set = self
                .bot()
                .set_led(LedMask::EYE_LEFT | LedMask::EYE_RIGHT, r, g, b);
            match set {
                Ok(()) => self.settings.led = Some(c),
                Err(e) => tracing::error!(error = %e, "cannot set the LEDs"),
            }
        }
        if let Some(a) = s.servo_angle {
            if a.is_finite() && (0.0..=180.0).contains(&a) {
                match self.set_servo(a) {
                    Ok(()) => self.settings.servo_angle = Some(a),
                    Err(e) => tracing::error!(error = %e, "cannot set the servo"),
                }
            } else {
                tracing::warn!(
                    servo_angle = a,
                    "shadow servo_angle out of 0..=180; ignored"
                );
            }
        }
        if let Some(on) = s.camera_on {
            if let Some(c) = &self.camera {
                c.set_enabled(on);
                self.settings.camera_on = Some(on);
            }
        }
        if let Some(on) = s.detection_on {
            // read by the detector; the robot only acknowledges it
            self.settings.detection_on = Some(on);
        }
        vec![Output::Reported(self.reported())]
    }

    /// Periodic work: ends motions that are due, enforces the dead-man and
    /// obstacle limits, floats stopped motors, and emits telemetry.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match self.motion.clone() {
            Motion::Timed { until, .. } if now >= until => {
                out.extend(self.end_motion(None));
                self.halt(now);
            }
            Motion::Position {
                left_target,
                right_target,
                deadline,
                ..
            } => {
                let reached = self.bot().target_reached(left_target, right_target);
                match reached {
                    Ok(true) => {
                        out.extend(self.end_motion(None));
                        self.halt(now);
                    }
                    Ok(false) if now >= deadline => out.extend(self.safety_stop(
                        now,
                        "did not reach the target in time (blocked?)".to_string(),
                    )),
                    Ok(false) => {}
                    Err(e) => out.extend(self.safety_stop(now, format!("board error: {e}"))),
                }
            }
            Motion::Stopping { float_at, retries } => self.check_stopping(now, float_at, retries),
            _ => {}
        }
        if self.is_moving() {
            let idle = self
                .last_command_at
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
            if idle > self.limits.deadman {
                out.extend(self.safety_stop(
                    now,
                    format!(
                        "dead-man: no command for {} ms while moving",
                        self.limits.deadman.as_millis()
                    ),
                ));
            }
        }
        let forward = matches!(
            self.motion,
            Motion::Timed { forward: true, .. } | Motion::Position { forward: true, .. }
        );
        if forward {
            if let Some(reason) = self.obstacle_ahead() {
                out.extend(self.safety_stop(now, reason));
            }
        }
        let due = self.next_telemetry.is_none_or(|t| now >= t);
        if due {
            let next = self
                .next_telemetry
                .map_or(now, |t| t + self.limits.telemetry_period);
            self.next_telemetry = Some(if next <= now {
                now + self.limits.telemetry_period
            } else {
                next
            });
            match self.telemetry(!forward) {
                Ok(t) => out.push(Output::Telemetry(t)),
                Err(e) => tracing::warn!(error = %e, "telemetry read failed"),
            }
        }
        out
    }

    /// A telemetry sample now (`read_distance`: poll the sensor too).
    pub fn telemetry(&mut self, read_distance: bool) -> Result<Telemetry, Gopigo3Error> {
        let (battery_v, (l, r), sl, sr) = {
            let mut bot = self.bot();
            (
                // What the vendor's get_voltage_battery() reads (VCC, after
                // the input diode), so figures match the vendor's tools.
                bot.battery_voltage()?,
                bot.read_encoders()?,
                bot.get_motor_status(MotorPort::Left)?,
                bot.get_motor_status(MotorPort::Right)?,
            )
        };
        if read_distance {
            self.read_distance();
        }
        let (motion, command_id) = match &self.motion {
            Motion::Idle => ("stopped", None),
            Motion::Stopping { .. } => ("stopping", None),
            Motion::Timed { id, label, .. } | Motion::Position { id, label, .. } => {
                (*label, Some(id.clone()))
            }
        };
        let mut sample = Telemetry {
            ts_ms: unix_ms(),
            battery_v: (battery_v * 100.0).round() / 100.0,
            encoders_deg: Wheels { left: l, right: r },
            wheel_dps: Wheels {
                left: sl.dps,
                right: sr.dps,
            },
            distance_mm: self
                .last_distance_mm
                .map(|d| d.min(u32::from(gopigo3::NOTHING_IN_RANGE_MM))),
            distance_error: self.distance_error.clone(),
            motion: motion.to_string(),
            command_id,
            sim_pose: None,
        };
        if let Some(add) = &self.extras {
            add(&mut sample);
        }
        Ok(sample)
    }

    /// Ends any motion, stops the wheels (retrying the 0 dps write, for up
    /// to a second, until they read back at rest), waits [`FLOAT_DELAY`] and
    /// floats them (SIGTERM, SIGINT, end of the program, executor panic).
    pub fn shutdown(&mut self, reason: &str) -> Vec<Output> {
        let out = self.end_motion(Some(reason.to_string()));
        for attempt in 1..=50u32 {
            let wrote = self.bot().set_motor_dps(MotorPort::Both, 0.0);
            // The bus's sleep: real time on a board, simulated time in tests.
            let pause = if attempt == 1 { FLOAT_DELAY } else { TICK };
            self.bot().bus_mut().sleep(pause);
            match (wrote, self.wheels_at_rest()) {
                (Ok(()), Ok(true)) => break,
                (wrote, rest) => tracing::error!(
                    attempt,
                    write = ?wrote.err().map(|e| e.to_string()),
                    at_rest = ?rest.map_err(|e| e.to_string()),
                    "the wheels are not confirmed stopped at shutdown; retrying"
                ),
            }
        }
        if let Err(e) = self.bot().float_motors(MotorPort::Both) {
            tracing::error!(error = %e, "cannot float the motors at shutdown");
        }
        self.motion = Motion::Idle;
        out
    }
}

/// Stops (0 dps) and floats the motors straight from a panic hook, for when
/// the executor is gone: tries the lock for a while (the panicking thread
/// may hold it; then [`spawn`]'s unwind handler does it).
pub fn float_from_panic<B: SpiBus>(robot: &SharedRobot<B>) -> bool {
    let stop = |g: &mut GoPiGo3<B>| {
        let zero = g.set_motor_dps(MotorPort::Both, 0.0);
        let float = g.float_motors(MotorPort::Both);
        zero.is_ok() || float.is_ok()
    };
    for _ in 0..20 {
        match robot.try_lock() {
            Ok(mut g) => return stop(&mut g),
            Err(TryLockError::Poisoned(p)) => return stop(&mut p.into_inner()),
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    false
}

/// The panic's message and place, for the stop's reason.
fn describe_panic(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

/// What the agent's panic hook does, outside the executor: the panic
/// becomes a stop through the inbox's stop slot, so the executor ends the
/// running command with the reason (`cmd/result` `done`, telemetry
/// `stopping` then `stopped`) instead of the motors floating under a
/// command that still reports `driving`. When the executor is gone (or the
/// inbox cannot be reached in time) the motors are stopped directly. A panic
/// of the executor itself is left to [`spawn`]'s unwind handler. Returns
/// what was done, for the log line.
pub fn stop_on_panic<B: SpiBus>(
    inbox: &Inbox,
    robot: &SharedRobot<B>,
    info: &std::panic::PanicHookInfo<'_>,
) -> &'static str {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unnamed");
    if name == EXECUTOR_THREAD {
        return "the executor stops and floats the wheels while unwinding";
    }
    let place = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    let what = format!(
        "a panic in thread '{name}'{place}: {}",
        describe_panic(info.payload())
    );
    match inbox.try_stop(StopCause::Panic(what), Duration::from_millis(200)) {
        Some(StopAck::Pending | StopAck::Merged) => "the executor stops the wheels and reports why",
        Some(StopAck::Closed) | None => {
            if float_from_panic(robot) {
                "the executor is gone: motors stopped and floated directly"
            } else {
                "the executor is gone and the driver is locked: motors NOT confirmed stopped"
            }
        }
    }
}

/// Runs `exec` on its own thread ([`EXECUTOR_THREAD`]): stops and inputs
/// from `inbox`, a [`TICK`] period, outputs to `out`, and `moving` kept up
/// to date for the link watchdog. The thread ends (stopping and floating the
/// motors) when the inbox is closed. If the executor itself panics, the
/// unwind handler ends the running command with the reason, stops and
/// floats the motors, sends a last telemetry (`stopped`), closes the inbox
/// (later commands are refused with the reason) and ends the thread, which
/// drops `out`: the session sees that and exits with an error.
pub fn spawn<B: SpiBus + Send + 'static>(
    mut exec: Executor<B>,
    inbox: Arc<Inbox>,
    out: tokio::sync::mpsc::UnboundedSender<Output>,
    moving: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(EXECUTOR_THREAD.into())
        .spawn(move || {
            let send = |outs: Vec<Output>| {
                for o in outs {
                    let _ = out.send(o);
                }
            };
            let run = std::panic::AssertUnwindSafe(|| run_loop(&mut exec, &inbox, &send, &moving));
            if let Err(panic) = std::panic::catch_unwind(run) {
                let what = format!("the executor panicked: {}", describe_panic(&*panic));
                inbox.close(&what);
                send(exec.shutdown(&format!("stopped for safety: {what}")));
                if let Ok(t) = exec.telemetry(false) {
                    send(vec![Output::Telemetry(t)]);
                }
                eprintln!("gopigo agent: {what}; motors stopped and floated");
            }
            inbox.close("the executor has ended");
            moving.store(false, Ordering::Relaxed);
        })
}

/// The executor thread's loop: wake on an input, a stop or the next tick.
fn run_loop<B: SpiBus>(
    exec: &mut Executor<B>,
    inbox: &Inbox,
    send: &dyn Fn(Vec<Output>),
    moving: &AtomicBool,
) {
    let mut next_tick = Instant::now();
    loop {
        let taken = inbox.wait_take(next_tick);
        let (outs, open) = exec.service(taken, Instant::now());
        send(outs);
        if !open {
            break;
        }
        let now = Instant::now();
        if now >= next_tick {
            send(exec.tick(now));
            next_tick += TICK;
            if next_tick < now {
                next_tick = now + TICK;
            }
        }
        moving.store(exec.is_moving(), Ordering::Relaxed);
    }
    moving.store(false, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use gopigo3::sim::{self, ClockMode, MotorMode, SimHandle};
    use gopigo_protocol::parse_command;

    struct Rig {
        exec: Executor<sim::SimBoard>,
        sim: SimHandle,
        now: Instant,
        out: Vec<Output>,
    }

    fn rig(limits: Limits) -> Rig {
        let kit = sim::new_robot(sim::SimConfig {
            clock: ClockMode::Manual,
            ..sim::SimConfig::default()
        })
        .unwrap();
        let robot = Arc::new(Mutex::new(kit.gopigo));
        let exec = Executor::new(robot, Some(Box::new(kit.distance)), None, limits)
            .unwrap()
            .with_telemetry_extras(crate::agent::sim_telemetry(kit.handle.clone()));
        Rig {
            exec,
            sim: kit.handle,
            now: Instant::now(),
            out: Vec::new(),
        }
    }

    impl Rig {
        fn send(&mut self, payload: &str) {
            let cmd = parse_command(payload.as_bytes()).unwrap();
            let o = self.exec.handle(Input::Command(cmd), self.now);
            self.out.extend(o);
        }
        fn run_for(&mut self, d: Duration) {
            let end = self.now + d;
            while self.now < end {
                self.sim.advance(TICK);
                self.now += TICK;
                let o = self.exec.tick(self.now);
                self.out.extend(o);
            }
        }
        fn results(&self) -> Vec<(String, CommandStatus, Option<String>)> {
            self.out
                .iter()
                .filter_map(|o| match o {
                    Output::Result(r) => Some((r.id.clone(), r.status, r.reason.clone())),
                    _ => None,
                })
                .collect()
        }
        fn x(&self) -> f64 {
            self.sim.pose().x_mm
        }
        fn wheels(&self) -> (f64, f64) {
            (
                self.sim.motor(MotorPort::Left).speed_dps,
                self.sim.motor(MotorPort::Right).speed_dps,
            )
        }
        fn modes(&self) -> [MotorMode; 2] {
            [
                self.sim.motor(MotorPort::Left).mode,
                self.sim.motor(MotorPort::Right).mode,
            ]
        }
    }

    fn done(id: &str) -> (String, CommandStatus, Option<String>) {
        (id.into(), CommandStatus::Done, None)
    }
    fn accepted(id: &str) -> (String, CommandStatus, Option<String>) {
        (id.into(), CommandStatus::Accepted, None)
    }

    #[test]
    fn timed_drive_runs_its_duration_then_stops_and_floats() {
        let mut r = rig(Limits::default());
        let x0 = r.x();
        r.send(r#"{"id":"d1","action":"drive","direction":"forward","duration_ms":500}"#);
        assert!(r.exec.is_moving());
        r.run_for(Duration::from_millis(480));
        assert!(r.exec.is_moving());
        assert_eq!(r.wheels(), (300.0, 300.0));
        r.run_for(Duration::from_millis(40));
        assert!(!r.exec.is_moving());
        assert_eq!(r.wheels(), (0.0, 0.0));
        assert_eq!(r.results(), vec![accepted("d1"), done("d1")]);
        // 0.5 s at 300 dps = 150 wheel degrees = 87 mm
        let moved = r.x() - x0;
        assert!((moved - 87.0).abs() < 6.0, "moved {moved} mm");
        r.run_for(Duration::from_millis(120));
        assert_eq!(r.modes(), [MotorMode::Float, MotorMode::Float]);
    }

    #[test]
    fn plain_word_drives_one_second_by_default() {
        let mut r = rig(Limits::default());
        r.send("f");
        r.run_for(Duration::from_millis(980));
        assert!(r.exec.is_moving());
        r.run_for(Duration::from_millis(40));
        assert!(!r.exec.is_moving());
        let ids: Vec<_> = r.results().into_iter().map(|x| x.1).collect();
        assert_eq!(ids, [CommandStatus::Accepted, CommandStatus::Done]);
    }

    #[test]
    fn drive_cm_ends_on_target() {
        let mut r = rig(Limits::default());
        let x0 = r.x();
        r.send(r#"{"id":"c","action":"drive_cm","cm":20}"#);
        r.run_for(Duration::from_millis(2500));
        assert_eq!(r.results(), vec![accepted("c"), done("c")]);
        let moved = r.x() - x0;
        assert!((moved - 200.0).abs() < 10.0, "moved {moved} mm");
        let t = r.exec.telemetry(true).unwrap();
        let cm = t.encoders_deg.left / 360.0 * 20.8916;
        assert!((cm - 20.0).abs() < 1.0, "{cm}");
    }

    #[test]
    fn turn_turns_the_pose_clockwise_for_positive_degrees() {
        let mut r = rig(Limits::default());
        r.send(r#"{"id":"t","action":"turn","degrees":90}"#);
        r.run_for(Duration::from_millis(2500));
        assert_eq!(r.results(), vec![accepted("t"), done("t")]);
        let h = r.sim.pose().heading_deg();
        assert!((h + 90.0).abs() < 5.0, "heading {h}");
    }

    #[test]
    fn a_new_motion_preempts_the_running_one() {
        let mut r = rig(Limits::default());
        r.send(r#"{"id":"a","action":"drive","direction":"forward","duration_ms":5000}"#);
        r.run_for(Duration::from_millis(200));
        r.send(r#"{"id":"b","action":"drive","direction":"backward","duration_ms":200}"#);
        assert_eq!(r.wheels(), (300.0, 300.0)); // not integrated yet
        r.run_for(Duration::from_millis(100));
        assert_eq!(r.wheels(), (-300.0, -300.0));
        r.run_for(Duration::from_millis(200));
        assert_eq!(
            r.results(),
            vec![
                accepted("a"),
                (
                    "a".into(),
                    CommandStatus::Done,
                    Some("preempted by b".into())
                ),
                accepted("b"),
                done("b"),
            ]
        );
    }

    #[test]
    fn stop_command_stops_at_once() {
        let mut r = rig(Limits::default());
        r.send(r#"{"id":"a","action":"drive","direction":"spin_left","duration_ms":5000}"#);
        r.run_for(Duration::from_millis(100));
        r.send(r#"{"id":"s","action":"stop"}"#);
        r.run_for(Duration::from_millis(20));
        assert_eq!(r.wheels(), (0.0, 0.0));
        assert_eq!(r.results()[1].2.as_deref(), Some("stopped by command s"));
    }

    #[test]
    fn dead_man_stops_a_long_drive_without_fresh_commands() {
        let mut r = rig(Limits {
            deadman: Duration::from_millis(600),
            ..Limits::default()
        });
        r.send(r#"{"id":"long","action":"drive","direction":"forward","duration_ms":10000}"#);
        r.run_for(Duration::from_millis(580));
        assert!(r.exec.is_moving());
        r.run_for(Duration::from_millis(60));
        assert!(!r.exec.is_moving());
        assert_eq!(r.wheels(), (0.0, 0.0));
        let res = r.results();
        assert!(
            res[1].2.as_deref().unwrap().starts_with("dead-man"),
            "{res:?}"
        );
    }

    #[test]
    fn repeating_the_command_keeps_the_dead_man_happy() {
        let mut r = rig(Limits {
            deadman: Duration::from_millis(600),
            ..Limits::default()
        });
        for _ in 0..4 {
            r.send(r#"{"action":"drive","direction":"forward","duration_ms":10000}"#);
            r.run_for(Duration::from_millis(400));
            assert!(r.exec.is_moving());
        }
    }

    #[test]
    fn obstacle_ahead_refuses_and_stops_forward_moves_only() {
        let mut r = rig(Limits::default());
        let p = r.sim.pose();
        // the robot faces +x; a box whose near face is 400 mm ahead of the centre
        r.sim.add_box(
            (p.x_mm + 400.0, p.y_mm - 200.0),
            (p.x_mm + 500.0, p.y_mm + 200.0),
        );
        r.send(r#"{"id":"f","action":"drive","direction":"forward","duration_ms":5000}"#);
        r.run_for(Duration::from_millis(3000));
        let res = r.results();
        assert_eq!(res[0], accepted("f"));
        assert!(
            res[1].2.as_deref().unwrap().starts_with("obstacle at"),
            "{res:?}"
        );
        assert_eq!(r.wheels(), (0.0, 0.0));
        assert!(!r.sim.robot().bumped);
        let d = r.sim.true_distance_mm().unwrap();
        assert!(d < 200.0 && d > 150.0, "stopped {d} mm away");
        // a new forward move is refused, nothing moves
        let x = r.x();
        r.send(r#"{"id":"g","action":"drive_cm","cm":10}"#);
        r.run_for(Duration::from_millis(500));
        assert_eq!(r.results()[2].1, CommandStatus::Rejected);
        assert!((r.x() - x).abs() < 0.5);
        // backing away is allowed
        r.send(r#"{"id":"b","action":"drive","direction":"backward","duration_ms":300}"#);
        r.run_for(Duration::from_millis(400));
        assert!(r.x() < x - 30.0);
    }

    #[test]
    fn a_failed_distance_read_while_driving_forward_stops_at_once_and_says_why() {
        let mut r = rig(Limits::default());
        r.send(r#"{"id":"f","action":"drive","direction":"forward","duration_ms":5000}"#);
        r.run_for(Duration::from_millis(200));
        assert!(r.exec.is_moving());
        r.sim.set_distance_sensor_failing(true);
        // the very next tick reads the sensor, fails, and stops
        r.run_for(TICK);
        assert!(!r.exec.is_moving());
        let res = r.results();
        let reason = res[1].2.as_deref().unwrap();
        assert_eq!((res[1].0.as_str(), res[1].1), ("f", CommandStatus::Done));
        assert!(
            reason.starts_with("distance sensor read failed")
                && reason.contains("until it reads again"),
            "{reason}"
        );
        r.run_for(Duration::from_millis(300));
        assert_eq!(r.wheels(), (0.0, 0.0));
        // telemetry says why, and shows no stale distance
        let t = r.exec.telemetry(true).unwrap();
        assert!(
            t.distance_error
                .as_deref()
                .unwrap()
                .contains("simulated VL53L0X"),
            "{t:?}"
        );
        assert_eq!(t.distance_mm, None);
        // while it fails, forward moves are refused; backward ones run
        let x = r.x();
        r.send(r#"{"id":"g","action":"drive_cm","cm":10}"#);
        r.run_for(Duration::from_millis(300));
        assert_eq!(r.results()[2].1, CommandStatus::Rejected);
        assert!((r.x() - x).abs() < 0.5);
        r.send(r#"{"id":"b","action":"drive","direction":"backward","duration_ms":300}"#);
        r.run_for(Duration::from_millis(400));
        assert!(r.x() < x - 30.0);
        // recovery is explicit: nothing resumes by itself; the next forward
        // command after a good reading runs
        r.sim.set_distance_sensor_failing(false);
        r.run_for(Duration::from_millis(500));
        assert_eq!(r.wheels(), (0.0, 0.0));
        r.send(r#"{"id":"h","action":"drive","direction":"forward","duration_ms":300}"#);
        assert_eq!(r.results().last().unwrap(), &accepted("h"));
        r.run_for(Duration::from_millis(100));
        assert!(r.exec.is_moving());
        assert_eq!(r.exec.telemetry(true).unwrap().distance_error, None);
    }

    #[test]
    fn without_the_obstacle_stop_a_failing_sensor_does_not_stop_the_robot() {
        let mut r = rig(Limits {
            obstacle_mm: 0,
            ..Limits::default()
        });
        r.sim.set_distance_sensor_failing(true);
        r.send(r#"{"id":"f","action":"drive","direction":"forward","duration_ms":1000}"#);
        r.run_for(Duration::from_millis(500));
        assert!(
            r.exec.is_moving(),
            "obstacle_mm = 0 means drive without the sensor"
        );
    }

    #[test]
    fn battery_is_the_vendors_get_voltage_battery_reading() {
        let mut r = rig(Limits::default());
        r.sim.set_pack_voltage(9.6);
        let t = r.exec.telemetry(false).unwrap();
        // The board measures VCC behind its 0.7 V input diode; the vendor's
        // get_voltage_battery() returns that reading (mV / 1000) unchanged.
        let vendor = r.sim.with_world(|w| (w.vcc() * 1000.0).round() / 1000.0);
        assert!(
            (t.battery_v - vendor).abs() < 0.005,
            "{} vs {vendor}",
            t.battery_v
        );
        assert!((t.battery_v - 8.9).abs() < 0.005, "{}", t.battery_v);
    }

    #[test]
    fn link_loss_stops_a_moving_robot() {
        let mut r = rig(Limits::default());
        r.send(r#"{"id":"a","action":"drive","direction":"forward","duration_ms":5000}"#);
        r.run_for(Duration::from_millis(100));
        let stop = StopRequest {
            cause: StopCause::LinkLost("eof".into()),
            cancelled: Vec::new(),
        };
        let o = r.exec.apply_stop(stop, r.now);
        r.out.extend(o);
        r.run_for(Duration::from_millis(20));
        assert_eq!(r.wheels(), (0.0, 0.0));
        assert!(r.results()[1]
            .2
            .as_deref()
            .unwrap()
            .contains("link to the broker lost"));
    }

    #[test]
    fn shadow_speed_is_reported_and_used_by_the_next_drive() {
        let mut r = rig(Limits::default());
        let o = r.exec.handle(
            Input::Settings(RobotSettings {
                speed_dps: Some(200),
                led: Some([0, 0, 255]),
                servo_angle: Some(30.0),
                ..RobotSettings::default()
            }),
            r.now,
        );
        let Output::Reported(rep) = &o[0] else {
            panic!("{o:?}")
        };
        assert_eq!(rep.speed_dps, Some(200));
        assert_eq!(rep.led, Some([0, 0, 255]));
        assert_eq!(r.sim.led(LedMask::EYE_LEFT), (0, 0, 255));
        assert_eq!(
            r.sim.servo_pulse_us(ServoPort::One),
            gopigo3::servo_pulse_for_angle(30.0)
        );
        r.send("forward");
        r.run_for(Duration::from_millis(100));
        assert_eq!(r.wheels(), (200.0, 200.0));
        // out-of-range values are ignored, the old value stays reported
        let o = r.exec.handle(
            Input::Settings(RobotSettings {
                speed_dps: Some(5000),
                ..RobotSettings::default()
            }),
            r.now,
        );
        assert_eq!(o, vec![Output::Reported(r.exec.reported())]);
        assert_eq!(r.exec.speed_dps(), 200);
    }

    #[test]
    fn telemetry_at_its_rate_with_the_sim_pose() {
        let mut r = rig(Limits::default());
        r.run_for(Duration::from_millis(1000));
        let t: Vec<_> = r
            .out
            .iter()
            .filter_map(|o| match o {
                Output::Telemetry(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(t.len(), 5);
        assert_eq!(t[0].motion, "stopped");
        assert_eq!(t[0].sim_pose.unwrap()[0], 2000.0);
        assert!(t[0].battery_v > 8.0);
    }

    #[test]
    fn shutdown_floats_the_motors() {
        let mut r = rig(Limits::default());
        r.send(r#"{"id":"a","action":"drive","direction":"forward","duration_ms":5000}"#);
        r.run_for(Duration::from_millis(100));
        let o = r.exec.shutdown("bye");
        assert_eq!(
            o,
            vec![result("a", CommandStatus::Done, Some("bye".into()))]
        );
        assert_eq!(r.modes(), [MotorMode::Float, MotorMode::Float]);
    }

    #[test]
    fn panic_stop_floats_even_through_a_poisoned_lock() {
        let mut r = rig(Limits::default());
        r.send(r#"{"action":"drive","direction":"forward","duration_ms":5000}"#);
        r.run_for(Duration::from_millis(40));
        assert_eq!(r.modes(), [MotorMode::Dps(1000.0), MotorMode::Dps(1000.0)]);
        let robot = r.exec.robot.clone();
        let poisoner = robot.clone();
        let _ = std::thread::spawn(move || {
            let _g = poisoner.lock().unwrap();
            panic!("poison the driver lock");
        })
        .join();
        assert!(robot.is_poisoned());
        assert!(float_from_panic(&robot));
        assert_eq!(r.modes(), [MotorMode::Float, MotorMode::Float]);
    }
}
