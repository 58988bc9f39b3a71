//! A simulated GoPiGo3: a board that answers the same SPI frames as the
//! firmware, wheels that move in (simulated) time, a differential-drive robot
//! in a 2-D room, and a distance sensor that reads from that room.
//!
//! - [`SimBoard`] implements [`SpiBus`]: it decodes each frame's message type
//!   and replies with the firmware's layout (`rx[3] = 0xA5`, data from
//!   `rx[4]`, big-endian). Frames not addressed to `0x08`, unknown message
//!   types, or a board switched off with [`SimHandle::set_responding`] get an
//!   all-zero reply, so the driver sees "no reply".
//! - Motors: float, power, dps and position modes; the dps limit (0 = the
//!   physical top speed, [`SimConfig::max_dps`]) caps dps mode and position
//!   moves; optional acceleration limit; encoders integrate in time and honour
//!   offsets; the battery drains with motor use and motors float below the
//!   low-voltage cut-off (status flag bit 0).
//! - [`SimHandle`] (cheap to clone, `Arc<Mutex<..>>`) lets tests, the agent
//!   or a camera read the true [`Pose`], LEDs, servos and motor modes, add
//!   obstacles, and advance time.
//! - Time: [`ClockMode::Manual`] moves only on [`SimHandle::advance`] and on
//!   the driver's poll sleeps ([`SpiBus::sleep`]), so blocking moves run
//!   instantly in tests; [`ClockMode::RealTime`] integrates up to
//!   `Instant::now()` on every transfer and every handle read.
//! - [`Room`]: walls and obstacle segments; the robot (a circle of
//!   [`SimConfig::robot_radius_mm`]) cannot pass through them: a move that
//!   would enter a wall leaves the position unchanged (wheels slip, encoders
//!   still count) and sets [`SimRobot::bumped`] and the "overloaded" flag.
//! - [`SimDistanceSensor`]: nearest wall or obstacle point inside a 25° cone from a sensor
//!   [`SimConfig::sensor_offset_mm`] ahead of the robot's centre; beyond
//!   [`SimConfig::sensor_max_range_mm`] it reads 8190 like the VL53L0X.
//!
//! Coordinates: millimetres, origin at a room corner, heading in radians
//! counter-clockwise from +x. A positive `turn_degrees` (the vendor's "right")
//! therefore lowers the heading.

use std::f64::consts::PI;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::frames::{self, MessageType, MotorPort, ServoPort, ADDRESS};
use crate::{BusError, DistanceSensor, FrameRecord, Geometry, LedMask, SpiBus};

/// Largest physics step; longer advances are split.
const MAX_STEP_S: f64 = 0.002;
/// The VL53L0X's out-of-range code.
pub const OUT_OF_RANGE_MM: u16 = 8190;
/// Half of the distance sensor's field of view.
pub const CONE_HALF_ANGLE_DEG: f64 = 12.5;

/// How simulated time advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClockMode {
    /// Only [`SimHandle::advance`] and the driver's poll sleeps move time.
    Manual,
    /// Time follows the wall clock, integrated on every transfer or handle read.
    RealTime,
}

/// Robot position and heading.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Pose {
    /// mm from the room's left wall.
    pub x_mm: f64,
    /// mm from the room's bottom wall.
    pub y_mm: f64,
    /// Radians, counter-clockwise from +x.
    pub heading_rad: f64,
}

impl Pose {
    /// Heading in degrees.
    pub fn heading_deg(&self) -> f64 {
        self.heading_rad.to_degrees()
    }

    /// The pose moved `mm` forward along its heading.
    pub fn ahead(&self, mm: f64) -> Pose {
        Pose {
            x_mm: self.x_mm + mm * self.heading_rad.cos(),
            y_mm: self.y_mm + mm * self.heading_rad.sin(),
            heading_rad: self.heading_rad,
        }
    }
}

/// A wall or obstacle edge.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// One end (mm).
    pub a: (f64, f64),
    /// Other end (mm).
    pub b: (f64, f64),
}

impl Segment {
    /// Segment from `a` to `b`.
    pub fn new(a: (f64, f64), b: (f64, f64)) -> Self {
        Self { a, b }
    }

    /// Distance from point `p` to this segment.
    pub fn distance_to(&self, p: (f64, f64)) -> f64 {
        let (ex, ey) = (self.b.0 - self.a.0, self.b.1 - self.a.1);
        let len2 = ex * ex + ey * ey;
        let t = if len2 == 0.0 {
            0.0
        } else {
            (((p.0 - self.a.0) * ex + (p.1 - self.a.1) * ey) / len2).clamp(0.0, 1.0)
        };
        let (cx, cy) = (self.a.0 + t * ex, self.a.1 + t * ey);
        ((p.0 - cx).powi(2) + (p.1 - cy).powi(2)).sqrt()
    }

    /// Distance from `o` to the nearest point of this segment that lies
    /// within `half` radians of direction `heading` (`None` if no part does).
    pub fn nearest_in_cone(&self, o: (f64, f64), heading: f64, half: f64) -> Option<f64> {
        let in_cone = |p: (f64, f64)| {
            let (dx, dy) = (p.0 - o.0, p.1 - o.1);
            if dx.abs() < 1e-9 && dy.abs() < 1e-9 {
                return true;
            }
            let diff = (dy.atan2(dx) - heading + PI).rem_euclid(2.0 * PI) - PI;
            diff.abs() <= half + 1e-12
        };
        let dist = |p: (f64, f64)| ((p.0 - o.0).powi(2) + (p.1 - o.1).powi(2)).sqrt();
        // The closest point overall, if it is inside the cone, is the answer.
        let (ex, ey) = (self.b.0 - self.a.0, self.b.1 - self.a.1);
        let len2 = ex * ex + ey * ey;
        let t = if len2 == 0.0 {
            0.0
        } else {
            (((o.0 - self.a.0) * ex + (o.1 - self.a.1) * ey) / len2).clamp(0.0, 1.0)
        };
        let foot = (self.a.0 + t * ex, self.a.1 + t * ey);
        if in_cone(foot) {
            return Some(dist(foot));
        }
        // Otherwise distance along the segment is convex, so the minimum over
        // the part inside the cone is at one of that part's ends: a segment
        // end inside the cone or a crossing of a cone edge.
        let mut best: Option<f64> = None;
        let mut consider = |d: f64| best = Some(best.map_or(d, |b: f64| b.min(d)));
        for p in [self.a, self.b] {
            if in_cone(p) {
                consider(dist(p));
            }
        }
        for edge in [heading - half, heading + half] {
            if let Some(d) = self.ray_hit(o, edge) {
                consider(d);
            }
        }
        best
    }

    /// Distance along a ray from `o` in direction `angle` to this segment.
    pub fn ray_hit(&self, o: (f64, f64), angle: f64) -> Option<f64> {
        let d = (angle.cos(), angle.sin());
        let e = (self.b.0 - self.a.0, self.b.1 - self.a.1);
        let cross = |u: (f64, f64), v: (f64, f64)| u.0 * v.1 - u.1 * v.0;
        let denom = cross(d, e);
        if denom.abs() < 1e-12 {
            return None;
        }
        let w = (self.a.0 - o.0, self.a.1 - o.1);
        let s = cross(w, e) / denom;
        let t = cross(w, d) / denom;
        if s >= 0.0 && (-1e-9..=1.0 + 1e-9).contains(&t) {
            Some(s)
        } else {
            None
        }
    }
}

/// A rectangular room with its walls at x = 0, x = width, y = 0, y = height,
/// plus obstacle segments.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Room {
    /// Extent along x (mm).
    pub width_mm: f64,
    /// Extent along y (mm).
    pub height_mm: f64,
    /// Obstacle edges inside the room.
    pub obstacles: Vec<Segment>,
}

impl Default for Room {
    /// 4 m × 3 m, empty.
    fn default() -> Self {
        Self::new(4000.0, 3000.0)
    }
}

impl Room {
    /// An empty room.
    pub fn new(width_mm: f64, height_mm: f64) -> Self {
        Self {
            width_mm,
            height_mm,
            obstacles: Vec::new(),
        }
    }

    /// The four walls.
    pub fn walls(&self) -> [Segment; 4] {
        let (w, h) = (self.width_mm, self.height_mm);
        [
            Segment::new((0.0, 0.0), (w, 0.0)),
            Segment::new((w, 0.0), (w, h)),
            Segment::new((w, h), (0.0, h)),
            Segment::new((0.0, h), (0.0, 0.0)),
        ]
    }

    /// Walls then obstacles.
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        self.walls()
            .into_iter()
            .chain(self.obstacles.iter().copied())
    }

    /// Add one obstacle edge.
    pub fn add_obstacle(&mut self, s: Segment) {
        self.obstacles.push(s);
    }

    /// Add an axis-aligned box (4 edges) between two corners.
    pub fn add_box(&mut self, min: (f64, f64), max: (f64, f64)) {
        let (x0, y0, x1, y1) = (min.0, min.1, max.0, max.1);
        self.obstacles.extend([
            Segment::new((x0, y0), (x1, y0)),
            Segment::new((x1, y0), (x1, y1)),
            Segment::new((x1, y1), (x0, y1)),
            Segment::new((x0, y1), (x0, y0)),
        ]);
    }

    /// Centre of the room facing +x (the default start).
    pub fn centre_pose(&self) -> Pose {
        Pose {
            x_mm: self.width_mm / 2.0,
            y_mm: self.height_mm / 2.0,
            heading_rad: 0.0,
        }
    }

    /// Free space around `p`: distance to the nearest wall or obstacle;
    /// negative when `p` is outside the room.
    pub fn clearance(&self, p: (f64, f64)) -> f64 {
        let inside =
            p.0.min(self.width_mm - p.0)
                .min(p.1)
                .min(self.height_mm - p.1);
        self.obstacles
            .iter()
            .map(|s| s.distance_to(p))
            .fold(inside, f64::min)
    }

    /// Nearest hit along one ray.
    pub fn ray_cast(&self, origin: (f64, f64), angle_rad: f64) -> Option<f64> {
        self.segments()
            .filter_map(|s| s.ray_hit(origin, angle_rad))
            .fold(None, |acc: Option<f64>, d| {
                Some(acc.map_or(d, |a| a.min(d)))
            })
    }

    /// Distance from `pose` (a sensor's position and direction) to the
    /// nearest point of any wall or obstacle inside a 25° cone around the
    /// heading (exact, not sampled: the nearest point in the cone cannot be
    /// hidden behind anything).
    pub fn ray_distance(&self, pose: &Pose) -> Option<f64> {
        let half = CONE_HALF_ANGLE_DEG.to_radians();
        self.segments()
            .filter_map(|s| s.nearest_in_cone((pose.x_mm, pose.y_mm), pose.heading_rad, half))
            .fold(None, |acc: Option<f64>, d| {
                Some(acc.map_or(d, |a| a.min(d)))
            })
    }
}

/// Settings of the simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The true geometry of the simulated robot (the driver should be given the same).
    pub geometry: Geometry,
    /// Physical top wheel speed (dps) when no dps limit is set.
    pub max_dps: f64,
    /// Acceleration limit in dps per second; `None` = speed changes at once.
    pub accel_dps2: Option<f64>,
    /// Battery pack voltage at start (V).
    pub pack_voltage: f64,
    /// Pack drain when idle (V/s).
    pub idle_drain_v_per_s: f64,
    /// Extra pack drain per motor running at 1000 dps (V/s).
    pub motor_drain_v_per_s: f64,
    /// Below this VCC reading (V) the motors float and flag bit 0 is set.
    pub low_voltage_cutoff_v: f64,
    /// The 5 V rail (V).
    pub rail_5v: f64,
    /// What the board says it is made by; the driver accepts only
    /// "Dexter Industries" and "Modular Robotics".
    pub manufacturer: String,
    /// What the board says it is; the driver accepts only "GoPiGo3".
    pub board_name: String,
    /// Firmware version number (`major*1e6 + minor*1000 + patch`).
    pub firmware_version: u32,
    /// Encoded as the firmware version is.
    pub hardware_version: u32,
    /// The 16 bytes `GetId` answers.
    pub serial: [u8; 16],
    /// The robot's collision radius (mm).
    pub robot_radius_mm: f64,
    /// Distance sensor position ahead of the robot's centre (mm).
    pub sensor_offset_mm: f64,
    /// Farther than this the sensor reads 8190 (mm).
    pub sensor_max_range_mm: f64,
    /// Manual for tests, real time for the agent's simulated robot.
    pub clock: ClockMode,
    /// Walls and obstacles at start.
    pub room: Room,
    /// Start pose; `None` = centre of the room facing +x.
    pub start_pose: Option<Pose>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            geometry: Geometry::default(),
            max_dps: 1000.0,
            accel_dps2: None,
            pack_voltage: 9.6,
            idle_drain_v_per_s: 0.00001,
            motor_drain_v_per_s: 0.0002,
            low_voltage_cutoff_v: 6.0,
            rail_5v: 5.0,
            manufacturer: "Dexter Industries".into(),
            board_name: "GoPiGo3".into(),
            firmware_version: frames::encode_version(1, 0, 0),
            hardware_version: frames::encode_version(3, 0, 0),
            serial: [
                0x53, 0x49, 0x4D, 0x2D, 0x47, 0x50, 0x47, 0x33, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x01,
            ],
            robot_radius_mm: 90.0,
            sensor_offset_mm: 60.0,
            sensor_max_range_mm: 2300.0,
            clock: ClockMode::Manual,
            room: Room::default(),
            start_pose: None,
        }
    }
}

/// A motor's control mode.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MotorMode {
    /// No drive (power −128 / start-up).
    Float,
    /// PWM power in percent.
    Power(i8),
    /// Speed target in wheel dps.
    Dps(f64),
    /// Position target in raw shaft degrees (before the encoder offset).
    Position(f64),
}

/// One simulated motor.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SimMotor {
    /// What the last frame set the motor to do.
    pub mode: MotorMode,
    /// Raw shaft position in wheel degrees.
    pub position_deg: f64,
    /// Encoder offset in ticks (subtracted from the raw count).
    pub offset_ticks: i64,
    /// Current speed in wheel dps.
    pub speed_dps: f64,
    /// Power limit in percent (0 = none).
    pub limit_power: u8,
    /// Speed limit in dps (0 = none).
    pub limit_dps: f64,
    /// Position gains as last set (stored only).
    pub kp: u8,
    /// Position gains as last set (stored only).
    pub kd: u8,
    /// Status flags as the board reports them: bit 0 low voltage, bit 1
    /// overloaded (the robot is against a wall).
    pub flags: u8,
}

impl Default for SimMotor {
    fn default() -> Self {
        Self {
            mode: MotorMode::Float,
            position_deg: 0.0,
            offset_ticks: 0,
            speed_dps: 0.0,
            limit_power: 0,
            limit_dps: 0.0,
            kp: 25,
            kd: 70,
            flags: 0,
        }
    }
}

/// The robot's true state.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SimRobot {
    /// Where it is.
    pub pose: Pose,
    /// True while a wall or obstacle blocks its last move.
    pub bumped: bool,
    /// Distance actually travelled (mm).
    pub odometer_mm: f64,
}

/// Everything simulated; reach it through [`SimHandle`].
#[derive(Debug)]
pub struct SimWorld {
    /// What the world was made with.
    pub config: SimConfig,
    /// Simulated seconds since start.
    pub time_s: f64,
    /// Left and right motor.
    pub motors: [SimMotor; 2],
    /// Where the robot truly is (the driver only sees encoders).
    pub robot: SimRobot,
    /// The room now: obstacles added at run time included.
    pub room: Room,
    /// LED colours: eye right, eye left, blinker left, blinker right, Wi-Fi.
    pub leds: [(u8, u8, u8); 5],
    /// Servo 1 and 2 pulse widths (µs, 0 = off).
    pub servos: [u16; 2],
    /// Battery pack voltage (V).
    pub pack_voltage: f64,
    /// When false the board answers nothing (all-zero replies).
    pub responding: bool,
    /// When true every distance reading fails as an unplugged sensor does.
    pub sensor_failing: bool,
    /// The power button (GPIO22): true while pressed.
    pub power_button: bool,
    /// Frames handled so far.
    pub frame_count: u64,
    frame_log: Option<Sender<FrameRecord>>,
    last_instant: Option<Instant>,
}

const LED_BITS: [u8; 5] = [0x01, 0x02, 0x04, 0x08, 0x80];

impl SimWorld {
    fn new(config: SimConfig) -> Self {
        let room = config.room.clone();
        let pose = config.start_pose.unwrap_or_else(|| room.centre_pose());
        Self {
            time_s: 0.0,
            motors: [SimMotor::default(); 2],
            robot: SimRobot {
                pose,
                bumped: false,
                odometer_mm: 0.0,
            },
            room,
            leds: [(0, 0, 0); 5],
            servos: [0, 0],
            pack_voltage: config.pack_voltage,
            responding: true,
            sensor_failing: false,
            power_button: false,
            frame_count: 0,
            frame_log: None,
            last_instant: match config.clock {
                ClockMode::RealTime => Some(Instant::now()),
                ClockMode::Manual => None,
            },
            config,
        }
    }

    fn t(&self) -> f64 {
        self.config.geometry.ticks_per_degree()
    }

    /// The VCC reading the board reports: pack minus the 0.7 V diode drop.
    pub fn vcc(&self) -> f64 {
        (self.pack_voltage - crate::driver::DIODE_DROP_V).max(0.0)
    }

    /// Encoder reading in ticks, as the board reports it.
    pub fn encoder_ticks(&self, i: usize) -> i32 {
        let m = &self.motors[i];
        let raw = (m.position_deg * self.t()).trunc() as i64;
        (raw - m.offset_ticks).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }

    /// Catch up with the wall clock (real-time mode only).
    pub fn sync(&mut self) {
        if let Some(last) = self.last_instant {
            let now = Instant::now();
            let dt = now.duration_since(last).as_secs_f64();
            self.last_instant = Some(now);
            self.step_total(dt);
        }
    }

    /// Advance simulated time by `dt` seconds.
    pub fn step_total(&mut self, dt: f64) {
        if !(dt.is_finite() && dt > 0.0) {
            return;
        }
        let n = (dt / MAX_STEP_S).ceil().max(1.0) as usize;
        let h = dt / n as f64;
        for _ in 0..n {
            self.step(h);
        }
    }

    fn motor_ports(mask: u8) -> impl Iterator<Item = usize> {
        (0..2).filter(move |i| mask & (1 << i) != 0)
    }

    /// One physics step of `dt` seconds: wheels, then the robot's move,
    /// then the battery.
    fn step(&mut self, dt: f64) {
        let low_voltage = self.vcc() < self.config.low_voltage_cutoff_v;
        let mut wheel_delta = [0.0f64; 2];
        for (i, delta) in wheel_delta.iter_mut().enumerate() {
            let speed = self.wheel_speed(i, dt, low_voltage);
            *delta = speed * dt;
            let motor = &mut self.motors[i];
            motor.speed_dps = speed;
            motor.position_deg += *delta;
            motor.flags = u8::from(low_voltage);
        }
        self.drive(wheel_delta);
        let work: f64 = self.motors.iter().map(|m| m.speed_dps.abs() / 1000.0).sum();
        self.pack_voltage -=
            (self.config.idle_drain_v_per_s + self.config.motor_drain_v_per_s * work) * dt;
        self.time_s += dt;
    }

    /// Motor `i`'s speed (dps) over the next `dt`: what its mode asks,
    /// within its limits and the acceleration limit; a position move slows
    /// to stop on its target, never past it. Nothing below the low-voltage
    /// cut-off.
    fn wheel_speed(&self, i: usize, dt: f64, low_voltage: bool) -> f64 {
        let m = self.motors[i];
        let max_phys = self.config.max_dps;
        let mut max = max_phys;
        if m.limit_dps > 0.0 {
            max = max.min(m.limit_dps);
        }
        if m.limit_power > 0 {
            max *= f64::from(m.limit_power.min(100)) / 100.0;
        }
        let (mut desired, position_err) = match m.mode {
            _ if low_voltage => (0.0, None),
            MotorMode::Float => (0.0, None),
            MotorMode::Power(p) => {
                let mut p = f64::from(p.clamp(-100, 100));
                if m.limit_power > 0 {
                    let lim = f64::from(m.limit_power.min(100));
                    p = p.clamp(-lim, lim);
                }
                (p / 100.0 * max_phys, None)
            }
            MotorMode::Dps(v) => (v.clamp(-max, max), None),
            MotorMode::Position(target) => {
                let err = target - m.position_deg;
                (err / dt, Some(err))
            }
        };
        if let Some(err) = position_err {
            let mut cap = max;
            if let Some(a) = self.config.accel_dps2 {
                cap = cap.min((2.0 * a * err.abs()).sqrt());
            }
            desired = desired.clamp(-cap, cap);
        }
        match self.config.accel_dps2 {
            Some(a) if a > 0.0 => {
                let dv = (desired - m.speed_dps).clamp(-a * dt, a * dt);
                let v = m.speed_dps + dv;
                match position_err {
                    // never overshoot a position target
                    Some(err) if (v * dt).abs() > err.abs() => err / dt,
                    _ => v,
                }
            }
            _ => desired,
        }
    }

    /// Moves the robot by its wheels' travel (differential drive); a move
    /// into a wall or obstacle leaves it in place, bumped, with the
    /// "overloaded" flag on each turning motor.
    fn drive(&mut self, wheel_delta: [f64; 2]) {
        let g = self.config.geometry;
        let dl = g.wheel_degrees_to_mm(wheel_delta[0]);
        let dr = g.wheel_degrees_to_mm(wheel_delta[1]);
        let v = (dl + dr) / 2.0;
        let dtheta = (dr - dl) / g.wheel_base_mm;
        let pose = self.robot.pose;
        let mid = pose.heading_rad + dtheta / 2.0;
        let next = (pose.x_mm + v * mid.cos(), pose.y_mm + v * mid.sin());
        let mut heading = pose.heading_rad + dtheta;
        heading = (heading + PI).rem_euclid(2.0 * PI) - PI;
        let r = self.config.robot_radius_mm;
        let old_clear = self.room.clearance((pose.x_mm, pose.y_mm));
        let new_clear = self.room.clearance(next);
        let blocked = v != 0.0 && new_clear < r && new_clear < old_clear;
        if blocked {
            self.robot.pose.heading_rad = heading;
            self.robot.bumped = true;
            for m in &mut self.motors {
                if m.speed_dps != 0.0 {
                    m.flags |= 0x02;
                }
            }
        } else {
            self.robot.pose = Pose {
                x_mm: next.0,
                y_mm: next.1,
                heading_rad: heading,
            };
            if v != 0.0 {
                self.robot.bumped = false;
            }
            self.robot.odometer_mm += v.abs();
        }
    }

    fn string_reply(s: &str, len: usize) -> Vec<u8> {
        let mut d: Vec<u8> = s.bytes().take(frames::STRING_LEN).collect();
        d.resize(frames::STRING_LEN, 0);
        frames::build_reply(len, &d)
    }

    /// Decodes one frame the way the firmware does and builds the reply:
    /// a read's data, or all zeros for a write (and for a frame the board
    /// would not answer).
    fn handle(&mut self, tx: &[u8]) -> Vec<u8> {
        let silent = vec![0u8; tx.len()];
        if !self.responding || tx.len() < 2 || tx[0] != ADDRESS {
            return silent;
        }
        let Some(msg) = MessageType::from_u8(tx[1]) else {
            return silent;
        };
        match self.read(msg, tx.len()) {
            Some(reply) => reply,
            None => {
                self.write(msg, tx);
                silent
            }
        }
    }

    /// The reply to a read message in a frame of `len` bytes; `None` for a
    /// write (or `None`, the empty message).
    fn read(&self, msg: MessageType, len: usize) -> Option<Vec<u8>> {
        let reply = |data: &[u8]| Some(frames::build_reply(len, data));
        match msg {
            MessageType::GetManufacturer => Some(Self::string_reply(&self.config.manufacturer, len)),
            MessageType::GetName => Some(Self::string_reply(&self.config.board_name, len)),
            MessageType::GetHardwareVersion => reply(&self.config.hardware_version.to_be_bytes()),
            MessageType::GetFirmwareVersion => reply(&self.config.firmware_version.to_be_bytes()),
            MessageType::GetId => reply(&self.config.serial),
            MessageType::GetVoltage5v => {
                reply(&((self.config.rail_5v * 1000.0).round() as u16).to_be_bytes())
            }
            MessageType::GetVoltageVcc => {
                reply(&((self.vcc() * 1000.0).round() as u16).to_be_bytes())
            }
            MessageType::GetMotorEncoderLeft => reply(&self.encoder_ticks(0).to_be_bytes()),
            MessageType::GetMotorEncoderRight => reply(&self.encoder_ticks(1).to_be_bytes()),
            MessageType::GetMotorStatusLeft => reply(&self.motor_status(0)),
            MessageType::GetMotorStatusRight => reply(&self.motor_status(1)),
            MessageType::None
            | MessageType::SetLed
            | MessageType::SetServo
            | MessageType::SetMotorPwm
            | MessageType::SetMotorPosition
            | MessageType::SetMotorPositionKp
            | MessageType::SetMotorPositionKd
            | MessageType::SetMotorDps
            | MessageType::SetMotorLimits
            | MessageType::OffsetMotorEncoder
            // Grove ports: setters accepted and ignored.
            | MessageType::SetGroveType
            | MessageType::SetGroveMode
            | MessageType::SetGroveState
            | MessageType::SetGrovePwmDuty
            | MessageType::SetGrovePwmFrequency => None,
            // Grove getters answer "valid, zero" so a driver sees a live board.
            _ => reply(&[]),
        }
    }

    /// A motor's status data: flags, power %, encoder ticks, speed in ticks/s.
    fn motor_status(&self, i: usize) -> Vec<u8> {
        let m = self.motors[i];
        let power: i8 = match m.mode {
            MotorMode::Float => 0,
            MotorMode::Power(p) => p.clamp(-100, 100),
            _ => (m.speed_dps / self.config.max_dps * 100.0)
                .round()
                .clamp(-100.0, 100.0) as i8,
        };
        let mut d = vec![m.flags, power as u8];
        d.extend_from_slice(&self.encoder_ticks(i).to_be_bytes());
        d.extend_from_slice(&frames::dps_to_ticks_i16(m.speed_dps, self.t()).to_be_bytes());
        d
    }

    /// Applies a write message; a frame too short for its arguments is
    /// ignored, as the firmware does.
    fn write(&mut self, msg: MessageType, tx: &[u8]) {
        let len = tx.len();
        let arg = |i: usize| tx.get(i).copied().unwrap_or(0);
        let i32_at = |i: usize| i32::from_be_bytes([arg(i), arg(i + 1), arg(i + 2), arg(i + 3)]);
        let u16_at = |i: usize| u16::from_be_bytes([arg(i), arg(i + 1)]);
        let t = self.t();
        let ports = Self::motor_ports(arg(2));
        match msg {
            MessageType::SetLed if len >= 6 => {
                for (slot, bit) in self.leds.iter_mut().zip(LED_BITS) {
                    if tx[2] & bit != 0 {
                        *slot = (tx[3], tx[4], tx[5]);
                    }
                }
            }
            MessageType::SetServo if len >= 5 => {
                for (i, s) in self.servos.iter_mut().enumerate() {
                    if tx[2] & (1 << i) != 0 {
                        *s = u16_at(3);
                    }
                }
            }
            MessageType::SetMotorPwm if len >= 4 => {
                let p = tx[3] as i8;
                let mode = if p == frames::MOTOR_FLOAT {
                    MotorMode::Float
                } else {
                    MotorMode::Power(p)
                };
                ports.for_each(|i| self.motors[i].mode = mode);
            }
            MessageType::SetMotorPosition if len >= 7 => {
                let ticks = i64::from(i32_at(3));
                for i in ports {
                    let raw = (ticks + self.motors[i].offset_ticks) as f64 / t;
                    self.motors[i].mode = MotorMode::Position(raw);
                }
            }
            MessageType::SetMotorPositionKp if len >= 4 => {
                ports.for_each(|i| self.motors[i].kp = tx[3]);
            }
            MessageType::SetMotorPositionKd if len >= 4 => {
                ports.for_each(|i| self.motors[i].kd = tx[3]);
            }
            MessageType::SetMotorDps if len >= 5 => {
                let dps = f64::from(u16_at(3) as i16) / t;
                ports.for_each(|i| self.motors[i].mode = MotorMode::Dps(dps));
            }
            MessageType::SetMotorLimits if len >= 6 => {
                let dps = f64::from(u16_at(4)) / t;
                for i in ports {
                    self.motors[i].limit_power = tx[3];
                    self.motors[i].limit_dps = dps;
                }
            }
            MessageType::OffsetMotorEncoder if len >= 7 => {
                let ticks = i64::from(i32_at(3));
                ports.for_each(|i| self.motors[i].offset_ticks += ticks);
            }
            _ => {}
        }
    }
}

/// Shared access to a [`SimWorld`]; clone freely across threads.
#[derive(Debug, Clone)]
pub struct SimHandle(Arc<Mutex<SimWorld>>);

impl SimHandle {
    fn lock(&self) -> MutexGuard<'_, SimWorld> {
        // A panic while holding the lock cannot leave the world inconsistent
        // in a way that matters to a simulation; keep going.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` on the world (synchronised with real time first if that mode is on).
    pub fn with_world<R>(&self, f: impl FnOnce(&mut SimWorld) -> R) -> R {
        let mut w = self.lock();
        w.sync();
        f(&mut w)
    }

    /// Advance simulated time (any clock mode).
    pub fn advance(&self, dt: Duration) {
        self.with_world(|w| w.step_total(dt.as_secs_f64()));
    }

    /// Simulated seconds since start.
    pub fn time_s(&self) -> f64 {
        self.with_world(|w| w.time_s)
    }

    /// The robot's true pose.
    pub fn pose(&self) -> Pose {
        self.with_world(|w| w.robot.pose)
    }

    /// Put the robot somewhere.
    pub fn set_pose(&self, pose: Pose) {
        self.with_world(|w| w.robot.pose = pose);
    }

    /// The robot's true state.
    pub fn robot(&self) -> SimRobot {
        self.with_world(|w| w.robot)
    }

    /// One motor's state (`Both` gives the left one).
    pub fn motor(&self, port: MotorPort) -> SimMotor {
        let i = usize::from(port == MotorPort::Right);
        self.with_world(|w| w.motors[i])
    }

    /// One LED's colour (first bit of the mask that is set).
    pub fn led(&self, led: LedMask) -> (u8, u8, u8) {
        self.with_world(|w| {
            LED_BITS
                .iter()
                .position(|b| led.0 & b != 0)
                .map_or((0, 0, 0), |i| w.leds[i])
        })
    }

    /// A servo's pulse width (µs; `Both` gives servo 1).
    pub fn servo_pulse_us(&self, servo: ServoPort) -> u16 {
        let i = usize::from(servo == ServoPort::Two);
        self.with_world(|w| w.servos[i])
    }

    /// Battery pack voltage.
    pub fn pack_voltage(&self) -> f64 {
        self.with_world(|w| w.pack_voltage)
    }

    /// Set the battery pack voltage (e.g. to test low-battery handling).
    pub fn set_pack_voltage(&self, v: f64) {
        self.with_world(|w| w.pack_voltage = v);
    }

    /// Switch the board's replies on or off (off = a dead or missing board).
    pub fn set_responding(&self, on: bool) {
        self.with_world(|w| w.responding = on);
    }

    /// Make every distance reading fail (`true`) as an unplugged or broken
    /// sensor does, or read again (`false`).
    pub fn set_distance_sensor_failing(&self, failing: bool) {
        self.with_world(|w| w.sensor_failing = failing);
    }

    /// Press (`true`) or release the power button on GPIO22.
    pub fn set_power_button(&self, pressed: bool) {
        self.with_world(|w| w.power_button = pressed);
    }

    /// Add an obstacle edge.
    pub fn add_obstacle(&self, s: Segment) {
        self.with_world(|w| w.room.add_obstacle(s));
    }

    /// Add an axis-aligned box obstacle.
    pub fn add_box(&self, min: (f64, f64), max: (f64, f64)) {
        self.with_world(|w| w.room.add_box(min, max));
    }

    /// Remove all obstacles (walls stay).
    pub fn clear_obstacles(&self) {
        self.with_world(|w| w.room.obstacles.clear());
    }

    /// Send every frame from now on to `log` (`None` stops logging).
    pub fn set_frame_log(&self, log: Option<Sender<FrameRecord>>) {
        self.with_world(|w| w.frame_log = log);
    }

    /// The sensor's true distance to the nearest thing in its cone (mm).
    pub fn true_distance_mm(&self) -> Option<f64> {
        self.with_world(|w| {
            let sensor = w.robot.pose.ahead(w.config.sensor_offset_mm);
            w.room.ray_distance(&sensor)
        })
    }
}

/// The simulated board; hand it to [`crate::GoPiGo3::new`].
#[derive(Debug)]
pub struct SimBoard {
    handle: SimHandle,
    clock: ClockMode,
}

impl Default for SimBoard {
    fn default() -> Self {
        Self::new(SimConfig::default())
    }
}

impl SimBoard {
    /// A board, robot and room from `config`.
    pub fn new(config: SimConfig) -> Self {
        let clock = config.clock;
        Self {
            handle: SimHandle(Arc::new(Mutex::new(SimWorld::new(config)))),
            clock,
        }
    }

    /// A shared handle to the simulated world.
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// A distance sensor reading from this world.
    pub fn distance_sensor(&self) -> SimDistanceSensor {
        SimDistanceSensor {
            handle: self.handle(),
        }
    }
}

impl SpiBus for SimBoard {
    fn transfer(&mut self, tx: &[u8], rx: &mut [u8]) -> Result<(), BusError> {
        // Stamped before the world lock: a hardware bus does not wait for
        // the simulation's physics step or a camera frame render.
        let at = Instant::now();
        if tx.len() != rx.len() {
            return Err(BusError::Transfer {
                device: "simulated GoPiGo3".into(),
                reason: format!(
                    "tx is {} bytes but rx is {}; a full-duplex transfer needs equal lengths",
                    tx.len(),
                    rx.len()
                ),
            });
        }
        let mut w = self.handle.lock();
        w.sync();
        let reply = w.handle(tx);
        rx.copy_from_slice(&reply);
        w.frame_count += 1;
        if let Some(log) = &w.frame_log {
            let rec = FrameRecord {
                at,
                sim_time_s: Some(w.time_s),
                tx: tx.to_vec(),
                rx: rx.to_vec(),
            };
            if log.send(rec).is_err() {
                w.frame_log = None;
            }
        }
        Ok(())
    }

    fn sleep(&mut self, d: Duration) {
        match self.clock {
            ClockMode::Manual => self.handle.advance(d),
            ClockMode::RealTime => std::thread::sleep(d),
        }
    }
}

/// A ready simulated robot: the driver (board check passed), its distance
/// sensor and a handle on the world.
pub struct SimKit {
    /// The driver on a simulated board.
    pub gopigo: crate::GoPiGo3<SimBoard>,
    /// The simulated VL53L0X (raw readings; wrap in [`crate::EasyDistance`] to filter).
    pub distance: SimDistanceSensor,
    /// The world: true pose, LEDs, obstacles, time.
    pub handle: SimHandle,
}

/// Build a simulated robot from `config`; the driver gets the same geometry.
pub fn new_robot(config: SimConfig) -> Result<SimKit, crate::Gopigo3Error> {
    let geometry = config.geometry;
    let board = SimBoard::new(config);
    let handle = board.handle();
    let distance = board.distance_sensor();
    let gopigo = crate::GoPiGo3::new(board, geometry)?;
    Ok(SimKit {
        gopigo,
        distance,
        handle,
    })
}

/// A VL53L0X stand-in reading from the simulated room.
#[derive(Debug, Clone)]
pub struct SimDistanceSensor {
    handle: SimHandle,
}

impl SimDistanceSensor {
    /// A sensor on the robot of `handle`.
    pub fn new(handle: SimHandle) -> Self {
        Self { handle }
    }
}

impl DistanceSensor for SimDistanceSensor {
    fn read_mm(&mut self) -> Result<u16, BusError> {
        let (d, max, failing) = self.handle.with_world(|w| {
            let sensor = w.robot.pose.ahead(w.config.sensor_offset_mm);
            (
                w.room.ray_distance(&sensor),
                w.config.sensor_max_range_mm,
                w.sensor_failing,
            )
        });
        if failing {
            return Err(BusError::Transfer {
                device: "simulated VL53L0X".into(),
                reason: "no acknowledgement (sensor unplugged?)".into(),
            });
        }
        Ok(match d {
            Some(d) if d <= max => d.max(0.0).round() as u16,
            _ => OUT_OF_RANGE_MM,
        })
    }
}

/// The power button on GPIO22 of the simulated robot.
#[derive(Debug, Clone)]
pub struct SimPowerButton {
    handle: SimHandle,
}

impl SimPowerButton {
    /// The button of `handle`'s robot.
    pub fn new(handle: SimHandle) -> Self {
        Self { handle }
    }
}

impl crate::PowerButton for SimPowerButton {
    fn pressed(&mut self) -> Result<bool, BusError> {
        Ok(self.handle.with_world(|w| w.power_button))
    }
}

/// A VL53L0X's register file as the sensor's init leaves it (the ST default
/// tuning, sequence config 0xE8), recording every write: the I2C side of the
/// distance sensor, for register-level tests such as the long-range set-up.
/// Reference calibrations complete at once (`RESULT_INTERRUPT_STATUS` reads 0x07).
#[derive(Debug, Clone)]
pub struct SimVl53l0x {
    regs: [u8; 256],
    writes: Vec<(u8, Vec<u8>)>,
    failing: bool,
}

impl SimVl53l0x {
    /// The registers after init.
    pub fn after_init() -> Self {
        let mut regs = [0u8; 256];
        for (r, v) in [
            (0x01, 0xE8), // SYSTEM_SEQUENCE_CONFIG
            (0x44, 0x00), // final range signal rate limit: 0.25 MCPS
            (0x45, 0x20),
            (0x46, 0x25), // MSRC timeout
            (0x50, 0x06), // pre-range VCSEL period: 14 PCLKs
            (0x51, 0x00), // pre-range timeout
            (0x52, 0x96),
            (0x70, 0x04), // final-range VCSEL period: 10 PCLKs
            (0x71, 0x01), // final-range timeout
            (0x72, 0xFE),
            (0xC0, 0xEE), // IDENTIFICATION_MODEL_ID
        ] {
            regs[r] = v;
        }
        Self {
            regs,
            writes: Vec::new(),
            failing: false,
        }
    }

    /// Every write so far: register and the bytes written from it on.
    pub fn writes(&self) -> &[(u8, Vec<u8>)] {
        &self.writes
    }

    /// One register's value now.
    pub fn register(&self, reg: u8) -> u8 {
        self.regs[usize::from(reg)]
    }

    /// Set a register without recording a write.
    pub fn set_register(&mut self, reg: u8, v: u8) {
        self.regs[usize::from(reg)] = v;
    }

    /// Make every transaction fail (`true`), as a sensor gone from the bus.
    pub fn set_failing(&mut self, failing: bool) {
        self.failing = failing;
    }

    fn check(&self) -> Result<(), BusError> {
        if self.failing {
            return Err(BusError::Transfer {
                device: "simulated VL53L0X".into(),
                reason: "no acknowledgement".into(),
            });
        }
        Ok(())
    }
}

impl crate::vl53l0x::Registers for SimVl53l0x {
    fn read_u8(&mut self, reg: u8) -> Result<u8, BusError> {
        self.check()?;
        Ok(if reg == 0x13 {
            0x07
        } else {
            self.register(reg)
        })
    }

    fn read_u16(&mut self, reg: u8) -> Result<u16, BusError> {
        self.check()?;
        Ok(u16::from_be_bytes([
            self.register(reg),
            self.register(reg.wrapping_add(1)),
        ]))
    }

    fn write(&mut self, reg: u8, bytes: &[u8]) -> Result<(), BusError> {
        self.check()?;
        for (i, b) in bytes.iter().enumerate() {
            self.regs[usize::from(reg.wrapping_add(i as u8))] = *b;
        }
        self.writes.push((reg, bytes.to_vec()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ray_hits_the_nearest_wall() {
        let room = Room::default();
        let p = room.centre_pose();
        assert!((room.ray_cast((p.x_mm, p.y_mm), 0.0).unwrap() - 2000.0).abs() < 1e-9);
        assert!((room.ray_cast((p.x_mm, p.y_mm), PI / 2.0).unwrap() - 1500.0).abs() < 1e-9);
        // a cone facing +x at the centre: centre ray is the shortest
        assert!((room.ray_distance(&p).unwrap() - 2000.0).abs() < 1e-6);
        // outside-of-room rays from a corner-facing pose still hit something
        let corner = Pose {
            x_mm: 100.0,
            y_mm: 100.0,
            heading_rad: PI,
        };
        assert!((room.ray_distance(&corner).unwrap() - 100.0).abs() < 1e-6);
    }

    #[test]
    fn cone_sees_obstacles_off_axis() {
        let mut room = Room::default();
        let p = room.centre_pose();
        // A post 10° to the left, 500 mm out: inside the 25° cone.
        let a = 10f64.to_radians();
        let (px, py) = (p.x_mm + 500.0 * a.cos(), p.y_mm + 500.0 * a.sin());
        room.add_box((px - 5.0, py - 5.0), (px + 5.0, py + 5.0));
        let d = room.ray_distance(&p).unwrap();
        assert!(d < 500.0 && d > 480.0, "{d}");
        // 20° off axis: outside the cone.
        let mut room = Room::default();
        let a = 20f64.to_radians();
        let (px, py) = (p.x_mm + 500.0 * a.cos(), p.y_mm + 500.0 * a.sin());
        room.add_box((px - 5.0, py - 5.0), (px + 5.0, py + 5.0));
        assert!((room.ray_distance(&p).unwrap() - 2000.0).abs() < 1e-6);
    }

    #[test]
    fn cone_edges_clip_segments() {
        let half = CONE_HALF_ANGLE_DEG.to_radians();
        // Nearest point outside the cone, the part inside starts at the cone edge.
        let s = Segment::new((50.0, 30.0), (300.0, 30.0));
        let d = s.nearest_in_cone((0.0, 0.0), 0.0, half).unwrap();
        let want = 30.0 / half.sin();
        assert!((d - want).abs() < 1e-6, "{d} vs {want}");
        // Entirely outside the cone.
        let s = Segment::new((100.0, 50.0), (100.0, 500.0));
        assert_eq!(s.nearest_in_cone((0.0, 0.0), 0.0, half), None);
        // Behind the sensor.
        let s = Segment::new((-100.0, -50.0), (-100.0, 50.0));
        assert_eq!(s.nearest_in_cone((0.0, 0.0), 0.0, half), None);
    }

    #[test]
    fn clearance_and_segment_distance() {
        let room = Room::default();
        assert_eq!(room.clearance((2000.0, 1500.0)), 1500.0);
        assert!(room.clearance((-10.0, 1500.0)) < 0.0);
        let s = Segment::new((0.0, 0.0), (10.0, 0.0));
        assert_eq!(s.distance_to((5.0, 3.0)), 3.0);
        assert_eq!(s.distance_to((13.0, 4.0)), 5.0);
    }

    #[test]
    fn unknown_or_misaddressed_frames_get_no_reply() {
        let mut b = SimBoard::default();
        let mut rx = [0xFFu8; 8];
        b.transfer(&[0x09, 4, 0, 0, 0, 0, 0, 0], &mut rx).unwrap();
        assert_eq!(rx, [0; 8]);
        b.transfer(&[0x08, 99, 0, 0, 0, 0, 0, 0], &mut rx).unwrap();
        assert_eq!(rx, [0; 8]);
        b.transfer(&[0x08, 4, 0, 0, 0, 0, 0, 0], &mut rx).unwrap();
        assert_eq!(rx, [0, 0, 0, 0xA5, 0x00, 0x0F, 0x42, 0x40]); // 1_000_000
        let mut short = [0u8; 3];
        assert!(b.transfer(&[0x08, 4, 0, 0], &mut short).is_err());
    }

    #[test]
    fn dps_mode_is_capped_by_limit_and_physical_max() {
        let b = SimBoard::default();
        let h = b.handle();
        h.with_world(|w| {
            w.motors[0].mode = MotorMode::Dps(5000.0);
            w.motors[1].mode = MotorMode::Dps(5000.0);
            w.motors[1].limit_dps = 200.0;
        });
        h.advance(Duration::from_secs(1));
        let (l, r) = (h.motor(MotorPort::Left), h.motor(MotorPort::Right));
        assert!((l.position_deg - 1000.0).abs() < 1e-6, "{}", l.position_deg);
        assert!((r.position_deg - 200.0).abs() < 1e-6, "{}", r.position_deg);
    }

    #[test]
    fn acceleration_limit_ramps_speed() {
        let b = SimBoard::new(SimConfig {
            accel_dps2: Some(1000.0),
            ..SimConfig::default()
        });
        let h = b.handle();
        h.with_world(|w| w.motors[0].mode = MotorMode::Dps(500.0));
        h.advance(Duration::from_millis(250));
        let m = h.motor(MotorPort::Left);
        assert!((m.speed_dps - 250.0).abs() < 1.0, "{}", m.speed_dps);
        h.advance(Duration::from_millis(500));
        assert!((h.motor(MotorPort::Left).speed_dps - 500.0).abs() < 1e-6);
    }
}
