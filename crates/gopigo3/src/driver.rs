//! The GoPiGo3 driver: low-level board calls and the vendor's "easy" moves.

use std::time::Duration;

use crate::frames::{self, LedMask, MessageType, MotorPort, ServoPort, MOTOR_FLOAT};
use crate::{Geometry, Gopigo3Error, SpiBus};

/// Default speed of the easy moves, degrees per second (≈174 mm/s).
pub const DEFAULT_SPEED_DPS: f64 = 300.0;
/// The speed the easy moves ask for; the board caps it at the speed limit.
pub const NO_LIMIT_SPEED_DPS: f64 = 1000.0;
/// `target_reached` tolerance in wheel degrees.
pub const TARGET_TOLERANCE_DEG: f64 = 5.0;
/// Voltage lost over the board's reverse-polarity diode: the VCC reading is
/// about this much below the battery pack.
pub const DIODE_DROP_V: f64 = 0.7;
/// How often blocking moves poll the encoders.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Which side, for blinkers and eyes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Side {
    /// The robot's left, seen from behind (left eye, left blinker).
    Left,
    /// The robot's right, seen from behind.
    Right,
}

/// Motor status flags (`rx[4]` of a status reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct MotorFlags(pub u8);

impl MotorFlags {
    /// bit 0: motors disabled because the battery voltage is too low.
    pub fn low_voltage_float(self) -> bool {
        self.0 & 0x01 != 0
    }
    /// bit 1: the motor is not near its target (position or dps control).
    pub fn overloaded(self) -> bool {
        self.0 & 0x02 != 0
    }
}

/// One motor's status in degrees.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MotorStatus {
    /// Low-voltage and overload bits the board reports for this motor.
    pub flags: MotorFlags,
    /// PWM power in percent (−100..100).
    pub power: i8,
    /// Encoder position in wheel degrees.
    pub encoder_deg: f64,
    /// Current speed in wheel degrees per second.
    pub dps: f64,
}

/// A GoPiGo3 board on some [`SpiBus`].
pub struct GoPiGo3<B: SpiBus> {
    bus: B,
    geometry: Geometry,
    speed_dps: f64,
    left_eye: (u8, u8, u8),
    right_eye: (u8, u8, u8),
}

impl<B: SpiBus> GoPiGo3<B> {
    /// Check the board (manufacturer "Dexter Industries" or "Modular
    /// Robotics", name "GoPiGo3", firmware 1.0.x), then set the speed limit
    /// to the default 300 dps as the vendor's easy library does.
    pub fn new(bus: B, geometry: Geometry) -> Result<Self, Gopigo3Error> {
        let mut g = Self::new_unchecked(bus, geometry)?;
        let manufacturer = g.manufacturer()?;
        if manufacturer != "Dexter Industries" && manufacturer != "Modular Robotics" {
            return Err(Gopigo3Error::WrongManufacturer {
                found: manufacturer,
            });
        }
        let name = g.board_name()?;
        if name != "GoPiGo3" {
            return Err(Gopigo3Error::WrongBoard { found: name });
        }
        let v = g.firmware_version_raw()?;
        if v / 1_000_000 != 1 || (v / 1000) % 1000 != 0 {
            return Err(Gopigo3Error::WrongFirmware {
                found: frames::format_version(v),
            });
        }
        g.set_speed(DEFAULT_SPEED_DPS)?;
        Ok(g)
    }

    /// Wrap a bus without talking to the board (the vendor's `detect=False`).
    /// Only the geometry is checked.
    pub fn new_unchecked(bus: B, geometry: Geometry) -> Result<Self, Gopigo3Error> {
        geometry.validate()?;
        Ok(Self {
            bus,
            geometry,
            speed_dps: DEFAULT_SPEED_DPS,
            left_eye: (0, 255, 255),
            right_eye: (0, 255, 255),
        })
    }

    /// The bus, e.g. the simulated board.
    pub fn bus_mut(&mut self) -> &mut B {
        &mut self.bus
    }

    /// Give the bus back.
    pub fn into_bus(self) -> B {
        self.bus
    }

    /// The geometry in use.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Use `geometry` from now on (e.g. once the motors' tick count is
    /// known from the board's serial number); checked like [`Self::new`]'s.
    pub fn set_geometry(&mut self, geometry: Geometry) -> Result<(), Gopigo3Error> {
        geometry.validate()?;
        self.geometry = geometry;
        Ok(())
    }

    fn t(&self) -> f64 {
        self.geometry.ticks_per_degree()
    }

    fn write(&mut self, tx: &[u8]) -> Result<(), Gopigo3Error> {
        let mut rx = vec![0u8; tx.len()];
        self.bus.transfer(tx, &mut rx)?;
        Ok(())
    }

    fn read(&mut self, tx: &[u8]) -> Result<Vec<u8>, Gopigo3Error> {
        let mut rx = vec![0u8; tx.len()];
        self.bus.transfer(tx, &mut rx)?;
        Ok(rx)
    }

    // ------------------------------------------------------------ identity

    /// Manufacturer string ("Dexter Industries").
    pub fn manufacturer(&mut self) -> Result<String, Gopigo3Error> {
        let m = MessageType::GetManufacturer;
        let rx = self.read(&frames::get_string(m))?;
        Ok(frames::parse_string(m, &rx)?)
    }

    /// Board name ("GoPiGo3").
    pub fn board_name(&mut self) -> Result<String, Gopigo3Error> {
        let m = MessageType::GetName;
        let rx = self.read(&frames::get_string(m))?;
        Ok(frames::parse_string(m, &rx)?)
    }

    /// Firmware version number as sent (`major*1e6 + minor*1000 + patch`).
    pub fn firmware_version_raw(&mut self) -> Result<u32, Gopigo3Error> {
        let m = MessageType::GetFirmwareVersion;
        let rx = self.read(&frames::read_32(m))?;
        Ok(frames::parse_u32(m, &rx)?)
    }

    /// Firmware version as `major.minor.patch`.
    pub fn firmware_version(&mut self) -> Result<String, Gopigo3Error> {
        Ok(frames::format_version(self.firmware_version_raw()?))
    }

    /// Hardware version as `major.minor.patch` (the vendor's Python shows
    /// only the major: `3.x.x`).
    pub fn hardware_version(&mut self) -> Result<String, Gopigo3Error> {
        let m = MessageType::GetHardwareVersion;
        let rx = self.read(&frames::read_32(m))?;
        Ok(frames::format_version(frames::parse_u32(m, &rx)?))
    }

    /// 128-bit serial number as 32 upper-case hex characters.
    pub fn serial_id(&mut self) -> Result<String, Gopigo3Error> {
        let rx = self.read(&frames::get_id())?;
        Ok(frames::parse_id(&rx)?)
    }

    // ------------------------------------------------------------ power

    /// The board's VCC reading in volts, like the vendor's
    /// `get_voltage_battery()`/`volt()`. It is about [`DIODE_DROP_V`] (0.7 V)
    /// below the battery pack because of the input diode; use
    /// [`Self::battery_pack_voltage`] for the pack itself.
    pub fn battery_voltage(&mut self) -> Result<f64, Gopigo3Error> {
        let m = MessageType::GetVoltageVcc;
        let rx = self.read(&frames::read_16(m))?;
        Ok(f64::from(frames::parse_u16(m, &rx)?) / 1000.0)
    }

    /// The battery pack's voltage: VCC reading + 0.7 V diode drop.
    pub fn battery_pack_voltage(&mut self) -> Result<f64, Gopigo3Error> {
        Ok(self.battery_voltage()? + DIODE_DROP_V)
    }

    /// The 5 V rail in volts.
    pub fn voltage_5v(&mut self) -> Result<f64, Gopigo3Error> {
        let m = MessageType::GetVoltage5v;
        let rx = self.read(&frames::read_16(m))?;
        Ok(f64::from(frames::parse_u16(m, &rx)?) / 1000.0)
    }

    // ------------------------------------------------------------ LEDs and servos

    /// Set LED(s) to an RGB colour. The Wi-Fi LED bit (0x80) belongs to the
    /// vendor's service and is refused.
    pub fn set_led(&mut self, led: LedMask, r: u8, g: u8, b: u8) -> Result<(), Gopigo3Error> {
        if led.0 & LedMask::WIFI.0 != 0 {
            return Err(Gopigo3Error::InvalidArgument {
                what: "led",
                reason: "the Wi-Fi LED (0x80) is driven by the vendor's service; leave it alone"
                    .into(),
            });
        }
        self.write(&frames::set_led(led, r, g, b))
    }

    /// Store the colour used by [`Self::open_eyes`] for both eyes.
    pub fn set_eye_color(&mut self, rgb: (u8, u8, u8)) {
        self.left_eye = rgb;
        self.right_eye = rgb;
    }

    /// Store one eye's colour.
    pub fn set_side_eye_color(&mut self, side: Side, rgb: (u8, u8, u8)) {
        match side {
            Side::Left => self.left_eye = rgb,
            Side::Right => self.right_eye = rgb,
        }
    }

    /// Light both eyes in their stored colours.
    pub fn open_eyes(&mut self) -> Result<(), Gopigo3Error> {
        let (r, g, b) = self.left_eye;
        self.set_led(LedMask::EYE_LEFT, r, g, b)?;
        let (r, g, b) = self.right_eye;
        self.set_led(LedMask::EYE_RIGHT, r, g, b)
    }

    /// Turn both eyes off.
    pub fn close_eyes(&mut self) -> Result<(), Gopigo3Error> {
        self.set_led(LedMask::EYE_LEFT | LedMask::EYE_RIGHT, 0, 0, 0)
    }

    /// Blinker on (full red channel, like the vendor) or off.
    pub fn set_blinker(&mut self, side: Side, on: bool) -> Result<(), Gopigo3Error> {
        let mask = match side {
            Side::Left => LedMask::BLINKER_LEFT,
            Side::Right => LedMask::BLINKER_RIGHT,
        };
        let v = if on { 255 } else { 0 };
        self.set_led(mask, v, 0, 0)
    }

    /// Servo pulse width in µs (0 = off, at most 16666).
    pub fn set_servo(&mut self, servo: ServoPort, pulse_us: u16) -> Result<(), Gopigo3Error> {
        if pulse_us > 16666 {
            return Err(Gopigo3Error::InvalidArgument {
                what: "servo pulse_us",
                reason: format!("{pulse_us} µs is over the 16666 µs frame; use 0..=16666"),
            });
        }
        self.write(&frames::set_servo(servo, pulse_us))
    }

    /// Servo angle 0..180° (clamped): pulse = round(575 + 1850/180 · deg), 90° = 1500 µs.
    pub fn set_servo_angle(&mut self, servo: ServoPort, deg: f64) -> Result<(), Gopigo3Error> {
        self.set_servo(servo, servo_pulse_for_angle(deg))
    }

    // ------------------------------------------------------------ motors

    /// Motor power in percent (−100..100); [`MOTOR_FLOAT`] (−128) floats.
    pub fn set_motor_power(&mut self, port: MotorPort, power: i8) -> Result<(), Gopigo3Error> {
        let p = if power == MOTOR_FLOAT {
            power
        } else {
            power.clamp(-100, 100)
        };
        self.write(&frames::set_motor_power(port, p))
    }

    /// Let the motor(s) float (no drive, no brake).
    pub fn float_motors(&mut self, port: MotorPort) -> Result<(), Gopigo3Error> {
        self.write(&frames::set_motor_power(port, MOTOR_FLOAT))
    }

    /// Position target in wheel degrees (absolute, in encoder coordinates).
    pub fn set_motor_position(&mut self, port: MotorPort, deg: f64) -> Result<(), Gopigo3Error> {
        finite("position degrees", deg)?;
        let ticks = frames::deg_to_ticks_i32(deg, self.t());
        self.write(&frames::set_motor_position(port, ticks))
    }

    /// Speed target in wheel degrees per second (capped by the dps limit on the board).
    pub fn set_motor_dps(&mut self, port: MotorPort, dps: f64) -> Result<(), Gopigo3Error> {
        finite("dps", dps)?;
        let ticks = frames::dps_to_ticks_i16(dps, self.t());
        self.write(&frames::set_motor_dps(port, ticks))
    }

    /// Limits: power in percent (0 = no limit) and speed in dps (0 = no limit).
    /// The dps limit also caps dps mode and position moves.
    pub fn set_motor_limits(
        &mut self,
        port: MotorPort,
        power_pct: u8,
        dps: f64,
    ) -> Result<(), Gopigo3Error> {
        finite("dps limit", dps)?;
        let ticks = frames::dps_to_ticks_u16(dps, self.t());
        self.write(&frames::set_motor_limits(port, power_pct.min(100), ticks))
    }

    /// Subtract `deg` from the encoder reading.
    pub fn offset_motor_encoder(&mut self, port: MotorPort, deg: f64) -> Result<(), Gopigo3Error> {
        finite("encoder offset", deg)?;
        let ticks = frames::deg_to_ticks_i32(deg, self.t());
        self.write(&frames::offset_motor_encoder(port, ticks))
    }

    /// Zero one or both encoders (one offset message per motor, as the vendor does).
    pub fn reset_motor_encoder(&mut self, port: MotorPort) -> Result<(), Gopigo3Error> {
        for p in single_ports(port) {
            let ticks = self.motor_encoder_ticks(p)?;
            self.write(&frames::offset_motor_encoder(p, ticks))?;
        }
        Ok(())
    }

    fn motor_encoder_ticks(&mut self, port: MotorPort) -> Result<i32, Gopigo3Error> {
        let (m, tx) = match port {
            MotorPort::Left => (
                MessageType::GetMotorEncoderLeft,
                frames::read_32(MessageType::GetMotorEncoderLeft),
            ),
            MotorPort::Right => (
                MessageType::GetMotorEncoderRight,
                frames::read_32(MessageType::GetMotorEncoderRight),
            ),
            MotorPort::Both => return Err(one_port_only("get_motor_encoder")),
        };
        let rx = self.read(&tx)?;
        Ok(frames::parse_i32(m, &rx)?)
    }

    /// Encoder position in wheel degrees (one motor at a time).
    pub fn get_motor_encoder(&mut self, port: MotorPort) -> Result<f64, Gopigo3Error> {
        Ok(f64::from(self.motor_encoder_ticks(port)?) / self.t())
    }

    /// Both encoders in wheel degrees (left, right).
    pub fn read_encoders(&mut self) -> Result<(f64, f64), Gopigo3Error> {
        Ok((
            self.get_motor_encoder(MotorPort::Left)?,
            self.get_motor_encoder(MotorPort::Right)?,
        ))
    }

    /// Mean of both encoders as floor distance in cm.
    pub fn read_encoders_average_cm(&mut self) -> Result<f64, Gopigo3Error> {
        let (l, r) = self.read_encoders()?;
        Ok(self.geometry.wheel_degrees_to_mm((l + r) / 2.0) / 10.0)
    }

    /// Flags, power, encoder and speed of one motor.
    pub fn get_motor_status(&mut self, port: MotorPort) -> Result<MotorStatus, Gopigo3Error> {
        let m = match port {
            MotorPort::Left => MessageType::GetMotorStatusLeft,
            MotorPort::Right => MessageType::GetMotorStatusRight,
            MotorPort::Both => return Err(one_port_only("get_motor_status")),
        };
        let tx = frames::get_motor_status(port).ok_or_else(|| one_port_only("get_motor_status"))?;
        let rx = self.read(&tx)?;
        let raw = frames::parse_motor_status(m, &rx)?;
        let t = self.t();
        Ok(MotorStatus {
            flags: MotorFlags(raw.flags),
            power: raw.power,
            encoder_deg: f64::from(raw.encoder_ticks) / t,
            dps: f64::from(raw.dps_ticks) / t,
        })
    }

    // ------------------------------------------------------------ easy moves

    /// Speed limit for the easy moves (wheel dps, sign ignored): sets the
    /// board's dps limit on both motors.
    pub fn set_speed(&mut self, dps: f64) -> Result<(), Gopigo3Error> {
        finite("speed", dps)?;
        self.speed_dps = dps.abs();
        self.set_motor_limits(MotorPort::Both, 0, self.speed_dps)
    }

    /// The speed set by [`Self::set_speed`] (300 by default).
    pub fn get_speed(&self) -> f64 {
        self.speed_dps
    }

    /// Back to the default 300 dps.
    pub fn reset_speed(&mut self) -> Result<(), Gopigo3Error> {
        self.set_speed(DEFAULT_SPEED_DPS)
    }

    /// Both wheels forward (1000 dps capped by the speed limit).
    pub fn forward(&mut self) -> Result<(), Gopigo3Error> {
        self.set_motor_dps(MotorPort::Both, NO_LIMIT_SPEED_DPS)
    }

    /// Both wheels backward.
    pub fn backward(&mut self) -> Result<(), Gopigo3Error> {
        self.set_motor_dps(MotorPort::Both, -NO_LIMIT_SPEED_DPS)
    }

    /// Turn left around the left wheel: right wheel on, left wheel stopped.
    pub fn left(&mut self) -> Result<(), Gopigo3Error> {
        self.set_motor_dps(MotorPort::Left, 0.0)?;
        self.set_motor_dps(MotorPort::Right, NO_LIMIT_SPEED_DPS)
    }

    /// Turn right around the right wheel: left wheel on, right wheel stopped.
    pub fn right(&mut self) -> Result<(), Gopigo3Error> {
        self.set_motor_dps(MotorPort::Left, NO_LIMIT_SPEED_DPS)?;
        self.set_motor_dps(MotorPort::Right, 0.0)
    }

    /// Spin left in place (left wheel back, right wheel forward).
    pub fn spin_left(&mut self) -> Result<(), Gopigo3Error> {
        self.set_motor_dps(MotorPort::Left, -NO_LIMIT_SPEED_DPS)?;
        self.set_motor_dps(MotorPort::Right, NO_LIMIT_SPEED_DPS)
    }

    /// Spin right in place (left wheel forward, right wheel back).
    pub fn spin_right(&mut self) -> Result<(), Gopigo3Error> {
        self.set_motor_dps(MotorPort::Left, NO_LIMIT_SPEED_DPS)?;
        self.set_motor_dps(MotorPort::Right, -NO_LIMIT_SPEED_DPS)
    }

    /// Stop: both motors to 0 dps, wait 0.1 s, then float (as the vendor does).
    pub fn stop(&mut self) -> Result<(), Gopigo3Error> {
        self.set_motor_dps(MotorPort::Both, 0.0)?;
        self.bus.sleep(Duration::from_millis(100));
        self.float_motors(MotorPort::Both)
    }

    /// Each wheel at a percentage of the current speed (−100..100 expected).
    pub fn steer(&mut self, left_pct: f64, right_pct: f64) -> Result<(), Gopigo3Error> {
        let s = self.speed_dps;
        self.set_motor_dps(MotorPort::Left, s * left_pct / 100.0)?;
        self.set_motor_dps(MotorPort::Right, s * right_pct / 100.0)
    }

    /// Drive `cm` forward (negative: backward) with position control. With
    /// `blocking`, wait until both wheels are within ±5° of their targets.
    pub fn drive_cm(&mut self, cm: f64, blocking: bool) -> Result<(), Gopigo3Error> {
        finite("distance cm", cm)?;
        let deg = self.geometry.mm_to_wheel_degrees(cm * 10.0);
        self.move_wheels("drive_cm", deg, deg, blocking)
    }

    /// Turn the wheels `deg` degrees each (wheel rotation, not robot rotation).
    pub fn drive_degrees(&mut self, deg: f64, blocking: bool) -> Result<(), Gopigo3Error> {
        finite("wheel degrees", deg)?;
        self.move_wheels("drive_degrees", deg, deg, blocking)
    }

    /// Turn in place by `deg` robot degrees: positive turns right
    /// (clockwise seen from above), negative left, as the vendor's.
    pub fn turn_degrees(&mut self, deg: f64, blocking: bool) -> Result<(), Gopigo3Error> {
        finite("turn degrees", deg)?;
        let w = self.geometry.spin_wheel_degrees(deg);
        self.move_wheels("turn_degrees", w, -w, blocking)
    }

    fn move_wheels(
        &mut self,
        what: &'static str,
        left_deg: f64,
        right_deg: f64,
        blocking: bool,
    ) -> Result<(), Gopigo3Error> {
        let (l0, r0) = self.read_encoders()?;
        let (lt, rt) = (l0 + left_deg, r0 + right_deg);
        self.set_motor_position(MotorPort::Left, lt)?;
        self.set_motor_position(MotorPort::Right, rt)?;
        if !blocking {
            return Ok(());
        }
        // Generous: twice the time at the set speed, plus 3 s.
        let speed = if self.speed_dps > 0.0 {
            self.speed_dps
        } else {
            NO_LIMIT_SPEED_DPS
        };
        let timeout_s = 2.0 * left_deg.abs().max(right_deg.abs()) / speed + 3.0;
        let mut waited = 0.0;
        loop {
            let (l, r) = self.read_encoders()?;
            if within(l, lt) && within(r, rt) {
                return Ok(());
            }
            if waited >= timeout_s {
                self.float_motors(MotorPort::Both)?;
                return Err(Gopigo3Error::MoveTimeout {
                    what,
                    timeout_s,
                    left_deg: l,
                    left_target_deg: lt,
                    right_deg: r,
                    right_target_deg: rt,
                });
            }
            self.bus.sleep(POLL_INTERVAL);
            waited += POLL_INTERVAL.as_secs_f64();
        }
    }

    /// True when both encoders are within ±5° (exclusive) of the targets.
    pub fn target_reached(
        &mut self,
        left_target_deg: f64,
        right_target_deg: f64,
    ) -> Result<bool, Gopigo3Error> {
        let (l, r) = self.read_encoders()?;
        Ok(within(l, left_target_deg) && within(r, right_target_deg))
    }

    /// Zero both encoders: power 0, then offset each by its reading.
    pub fn reset_encoders(&mut self) -> Result<(), Gopigo3Error> {
        self.set_motor_power(MotorPort::Both, 0)?;
        self.reset_motor_encoder(MotorPort::Both)
    }

    /// Vendor order: grove ports to custom/digital input, motors float,
    /// limits 0/0, servos off, LEDs off. The stored speed is kept.
    pub fn reset_all(&mut self) -> Result<(), Gopigo3Error> {
        let grove = frames::GROVE_1 | frames::GROVE_2;
        self.write(&frames::set_grove_type(grove, frames::GROVE_TYPE_CUSTOM))?;
        self.write(&frames::set_grove_mode(grove, frames::GROVE_INPUT_DIGITAL))?;
        self.float_motors(MotorPort::Both)?;
        self.write(&frames::set_motor_limits(MotorPort::Both, 0, 0))?;
        self.set_servo(ServoPort::Both, 0)?;
        self.set_led(LedMask::ALL_USER, 0, 0, 0)
    }
}

/// Pulse width in µs for a servo angle (clamped to 0..180):
/// `round(575 + 1850/180 · deg)`.
pub fn servo_pulse_for_angle(deg: f64) -> u16 {
    let d = if deg.is_nan() {
        90.0
    } else {
        deg.clamp(0.0, 180.0)
    };
    (575.0 + 1850.0 / 180.0 * d).round() as u16
}

fn within(value: f64, target: f64) -> bool {
    value > target - TARGET_TOLERANCE_DEG && value < target + TARGET_TOLERANCE_DEG
}

fn single_ports(port: MotorPort) -> Vec<MotorPort> {
    match port {
        MotorPort::Left => vec![MotorPort::Left],
        MotorPort::Right => vec![MotorPort::Right],
        MotorPort::Both => vec![MotorPort::Left, MotorPort::Right],
    }
}

fn one_port_only(call: &'static str) -> Gopigo3Error {
    Gopigo3Error::InvalidArgument {
        what: "motor port",
        reason: format!(
            "{call} reads one motor at a time: use MotorPort::Left or MotorPort::Right"
        ),
    }
}

fn finite(what: &'static str, v: f64) -> Result<(), Gopigo3Error> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Gopigo3Error::InvalidArgument {
            what,
            reason: format!("must be a finite number, got {v}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::build_reply;
    use crate::BusError;
    use std::collections::VecDeque;

    /// A scripted bus: records every tx and answers reads from a queue of
    /// replies, each for one message type, in order; writes get all-zero
    /// replies. Like embedded-hal-mock's `.done()`, dropping it with a
    /// reply left unused fails the test: a reply the driver never asked for
    /// means it skipped a read, or read in another order than scripted.
    #[derive(Default)]
    struct Scripted {
        sent: Vec<Vec<u8>>,
        replies: VecDeque<(u8, Vec<u8>)>,
    }

    impl Scripted {
        fn reply(mut self, msg: MessageType, data: &[u8], len: usize) -> Self {
            self.replies
                .push_back((msg.as_u8(), build_reply(len, data)));
            self
        }
        fn board(manufacturer: &str, name: &str, fw: u32) -> Self {
            Scripted::default()
                .reply(MessageType::GetManufacturer, manufacturer.as_bytes(), 24)
                .reply(MessageType::GetName, name.as_bytes(), 24)
                .reply(MessageType::GetFirmwareVersion, &fw.to_be_bytes(), 8)
        }
    }

    impl Drop for Scripted {
        fn drop(&mut self) {
            if std::thread::panicking() || self.replies.is_empty() {
                return;
            }
            let left: Vec<String> = self
                .replies
                .iter()
                .map(|(m, _)| format!("{m:#04X}"))
                .collect();
            panic!(
                "scripted replies left unused for message types [{}] (frames sent: {})",
                left.join(", "),
                self.sent.len()
            );
        }
    }

    impl SpiBus for Scripted {
        fn transfer(&mut self, tx: &[u8], rx: &mut [u8]) -> Result<(), BusError> {
            self.sent.push(tx.to_vec());
            rx.fill(0);
            if let Some((m, _)) = self.replies.front() {
                if *m == tx[1] {
                    let (_, r) = self.replies.pop_front().unwrap_or_default();
                    rx.copy_from_slice(&r[..rx.len()]);
                }
            }
            Ok(())
        }
        fn sleep(&mut self, _d: Duration) {}
    }

    #[test]
    #[should_panic(expected = "scripted replies left unused for message types [0x08]")]
    fn an_unused_scripted_reply_fails_the_test() {
        let bus = Scripted::default().reply(MessageType::GetVoltageVcc, &[0, 0], 6);
        let mut g = GoPiGo3::new_unchecked(bus, Geometry::default()).unwrap();
        // A read of another message type does not consume it.
        let _ = g.voltage_5v();
    }

    fn hex(v: &[u8]) -> String {
        v.iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn board_check_accepts_both_makers_and_sets_default_speed() {
        for maker in ["Dexter Industries", "Modular Robotics"] {
            let bus = Scripted::board(maker, "GoPiGo3", 1_000_003);
            let mut g = GoPiGo3::new(bus, Geometry::default()).unwrap();
            let sent = &g.bus_mut().sent;
            assert_eq!(sent.len(), 4);
            assert_eq!(hex(&sent[3]), "08 0F 03 00 02 58", "speed limit 300 dps");
            assert_eq!(g.get_speed(), 300.0);
        }
    }

    #[test]
    fn board_check_refuses_wrong_name() {
        // The check stops at the name: the firmware is never asked for.
        let bus = Scripted::default()
            .reply(MessageType::GetManufacturer, b"Dexter Industries", 24)
            .reply(MessageType::GetName, b"BrickPi3", 24);
        let err = GoPiGo3::new(bus, Geometry::default()).err().unwrap();
        assert_eq!(
            err,
            Gopigo3Error::WrongBoard {
                found: "BrickPi3".into()
            }
        );
        assert!(err.to_string().contains("\"BrickPi3\""));
    }

    #[test]
    fn board_check_refuses_wrong_manufacturer() {
        // The check stops at the manufacturer.
        let bus = Scripted::default().reply(MessageType::GetManufacturer, b"ACME", 24);
        let err = GoPiGo3::new(bus, Geometry::default()).err().unwrap();
        assert!(err.to_string().contains("\"ACME\""), "{err}");
    }

    #[test]
    fn board_check_refuses_wrong_firmware() {
        for (v, shown) in [(1_001_000u32, "1.1.0"), (2_000_005, "2.0.5"), (0, "0.0.0")] {
            let bus = Scripted::board("Dexter Industries", "GoPiGo3", v);
            let err = GoPiGo3::new(bus, Geometry::default()).err().unwrap();
            assert_eq!(
                err,
                Gopigo3Error::WrongFirmware {
                    found: shown.into()
                }
            );
            assert!(err.to_string().contains(shown));
        }
    }

    #[test]
    fn silent_board_is_no_reply() {
        let err = GoPiGo3::new(Scripted::default(), Geometry::default())
            .err()
            .unwrap();
        assert!(matches!(
            err,
            Gopigo3Error::Frame(frames::FrameError::NoReply {
                message: MessageType::GetManufacturer,
                found: 0
            })
        ));
    }

    fn unchecked(geometry: Geometry) -> GoPiGo3<Scripted> {
        GoPiGo3::new_unchecked(Scripted::default(), geometry).unwrap()
    }

    #[test]
    fn high_level_frames() {
        let mut g = unchecked(Geometry::default());
        g.set_motor_dps(MotorPort::Both, 300.0).unwrap();
        g.forward().unwrap();
        g.backward().unwrap();
        g.left().unwrap();
        g.right().unwrap();
        g.spin_left().unwrap();
        g.spin_right().unwrap();
        g.set_speed(150.0).unwrap();
        g.steer(100.0, -50.0).unwrap();
        g.stop().unwrap();
        g.set_servo_angle(ServoPort::One, 90.0).unwrap();
        g.set_servo_angle(ServoPort::Two, 0.0).unwrap();
        g.set_servo_angle(ServoPort::Two, 500.0).unwrap();
        g.set_motor_power(MotorPort::Left, 120).unwrap();
        let sent: Vec<String> = g.bus_mut().sent.iter().map(|f| hex(f)).collect();
        assert_eq!(
            sent,
            vec![
                "08 0E 03 02 58", // 300 dps
                "08 0E 03 07 D0", // forward 1000 dps = 2000 ticks
                "08 0E 03 F8 30", // backward
                "08 0E 01 00 00", // left: left wheel 0
                "08 0E 02 07 D0", //       right wheel on
                "08 0E 01 07 D0", // right
                "08 0E 02 00 00",
                "08 0E 01 F8 30", // spin left
                "08 0E 02 07 D0",
                "08 0E 01 07 D0", // spin right
                "08 0E 02 F8 30",
                "08 0F 03 00 01 2C", // speed 150 → limit 300 ticks
                "08 0E 01 01 2C",    // steer 100% of 150
                "08 0E 02 FF 6A",    // steer -50% → -75 dps = -150 ticks
                "08 0E 03 00 00",    // stop: 0 dps
                "08 0A 03 80",       //       then float
                "08 09 01 05 DC",    // 90° = 1500 µs
                "08 09 02 02 3F",    // 0° = 575 µs
                "08 09 02 09 79",    // clamped 180° = 2425 µs
                "08 0A 01 64",       // power clamped to 100
            ]
        );
    }

    #[test]
    fn reset_all_in_vendor_order() {
        let mut g = unchecked(Geometry::default());
        g.reset_all().unwrap();
        let sent: Vec<String> = g.bus_mut().sent.iter().map(|f| hex(f)).collect();
        assert_eq!(
            sent,
            vec![
                "08 15 0F 01",
                "08 16 0F 00",
                "08 0A 03 80",
                "08 0F 03 00 00 00",
                "08 09 03 00 00",
                "08 06 0F 00 00 00",
            ]
        );
    }

    #[test]
    fn leds_eyes_and_wifi_refusal() {
        let mut g = unchecked(Geometry::default());
        g.set_eye_color((10, 20, 30));
        g.open_eyes().unwrap();
        g.set_blinker(Side::Right, true).unwrap();
        g.close_eyes().unwrap();
        assert!(g.set_led(LedMask::WIFI, 1, 1, 1).is_err());
        let sent: Vec<String> = g.bus_mut().sent.iter().map(|f| hex(f)).collect();
        assert_eq!(
            sent,
            vec![
                "08 06 02 0A 14 1E",
                "08 06 01 0A 14 1E",
                "08 06 08 FF 00 00",
                "08 06 03 00 00 00"
            ]
        );
    }

    #[test]
    fn reads_parse_through_the_driver() {
        let bus = Scripted::default()
            .reply(MessageType::GetVoltageVcc, &8900u16.to_be_bytes(), 6)
            .reply(MessageType::GetVoltage5v, &5012u16.to_be_bytes(), 6)
            .reply(
                MessageType::GetMotorEncoderLeft,
                &(-689i32).to_be_bytes(),
                8,
            )
            .reply(
                MessageType::GetMotorStatusRight,
                &[0x02, 50, 0, 0, 0x02, 0x58, 0x01, 0x2C],
                12,
            )
            .reply(
                MessageType::GetHardwareVersion,
                &3_000_000u32.to_be_bytes(),
                8,
            );
        let mut g = GoPiGo3::new_unchecked(bus, Geometry::default()).unwrap();
        assert!((g.battery_voltage().unwrap() - 8.9).abs() < 1e-9);
        assert!((g.voltage_5v().unwrap() - 5.012).abs() < 1e-9);
        assert_eq!(g.get_motor_encoder(MotorPort::Left).unwrap(), -344.5);
        let s = g.get_motor_status(MotorPort::Right).unwrap();
        assert!(s.flags.overloaded() && !s.flags.low_voltage_float());
        assert_eq!((s.power, s.encoder_deg, s.dps), (50, 300.0, 150.0));
        assert_eq!(g.hardware_version().unwrap(), "3.0.0");
        assert!(g.get_motor_encoder(MotorPort::Both).is_err());
        assert!(g.get_motor_status(MotorPort::Both).is_err());
    }

    #[test]
    fn sixteen_tick_geometry_scales_frames() {
        let mut g = unchecked(Geometry::sixteen_ticks());
        g.set_motor_dps(MotorPort::Left, 300.0).unwrap();
        g.set_motor_position(MotorPort::Right, 90.0).unwrap();
        let sent: Vec<String> = g.bus_mut().sent.iter().map(|f| hex(f)).collect();
        // 300 · 5.333 = 1600 = 0x640; 90 · 5.333 = 480 = 0x1E0
        assert_eq!(sent, vec!["08 0E 01 06 40", "08 0B 02 00 00 01 E0"]);
    }

    #[test]
    fn servo_pulse_mapping() {
        assert_eq!(servo_pulse_for_angle(90.0), 1500);
        assert_eq!(servo_pulse_for_angle(0.0), 575);
        assert_eq!(servo_pulse_for_angle(180.0), 2425);
        assert_eq!(servo_pulse_for_angle(-10.0), 575);
        let mut g = unchecked(Geometry::default());
        assert!(g.set_servo(ServoPort::One, 20000).is_err());
    }

    #[test]
    fn non_finite_arguments_are_refused() {
        let mut g = unchecked(Geometry::default());
        assert!(g.set_motor_dps(MotorPort::Both, f64::NAN).is_err());
        assert!(g.drive_cm(f64::INFINITY, false).is_err());
        assert!(g.bus_mut().sent.is_empty());
    }
}
