//! GoPiGo3 driver over an SPI trait, and a simulated board answering the same frames.
//!
//! Parts:
//! - [`frames`]: pure building and parsing of the board's SPI frames (message
//!   types, big-endian helpers, the `0xA5` reply check), table-tested with
//!   golden bytes.
//! - [`GoPiGo3`]: the driver, generic over [`SpiBus`]: board check at start,
//!   motors (power, dps, position, limits, encoders, status), LEDs, servos,
//!   voltages, and the high-level moves of the vendor's "easy" library
//!   (`forward`, `drive_cm`, `turn_degrees`, `steer`, `stop`, ...).
//! - [`Geometry`]: wheel diameter, wheel base, encoder ticks (6 or 16), gear ratio.
//! - [`DistanceSensor`] and [`EasyDistance`], the vendor-style filter
//!   (retries, moving average of 3, clamp at 3000 mm); [`SensorThread`]
//!   reads a sensor on its own thread so that callers never wait on the bus.
//! - [`vl53l0x`]: the distance sensor's long-range mode, register for
//!   register as the vendor's DI_Sensors sets it.
//! - [`ticks`]: 6- or 16-tick motors, decided as the vendor's driver does
//!   (its config file, then its list of 16-tick serial numbers).
//! - [`PowerButton`]: the power button's shutdown request on GPIO22.
//! - [`sim`]: a simulated board that decodes the same frames as the firmware,
//!   integrates wheel motion in time, moves a differential-drive robot in a
//!   2-D room with walls and obstacles, and feeds a simulated distance sensor.
//! - [`LoggingBus`] and [`FrameRecord`]: timestamped log of every SPI frame.
//! - `linux` (cargo feature `hardware`): spidev on `/dev/spidev0.1`, GPIO23
//!   held high, GPIO22 read, VL53L0X on `/dev/i2c-1` in long-range mode.

#![cfg_attr(test, allow(clippy::unwrap_used))]

use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

mod driver;
mod easy_distance;
pub mod frames;
#[cfg(feature = "hardware")]
pub mod linux;
mod sensor_thread;
pub mod sim;
pub mod ticks;
pub mod vl53l0x;

pub use driver::{
    servo_pulse_for_angle, GoPiGo3, MotorFlags, MotorStatus, Side, DEFAULT_SPEED_DPS, DIODE_DROP_V,
    NO_LIMIT_SPEED_DPS, POLL_INTERVAL, TARGET_TOLERANCE_DEG,
};
pub use easy_distance::{EasyDistance, NOTHING_IN_RANGE_MM};
pub use frames::{LedMask, MessageType, MotorPort, ServoPort};
pub use sensor_thread::SensorThread;

/// An I/O failure on the SPI or I2C bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum BusError {
    /// The transfer itself failed (device missing, permissions, ioctl error).
    #[error("transfer on {device} failed: {reason}")]
    Transfer {
        /// The device path or name.
        device: String,
        /// What the OS or the peer said.
        reason: String,
    },
    /// Opening or configuring the device failed.
    #[error("cannot open {device}: {reason}")]
    Open {
        /// The device path or name.
        device: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// The sensor did not produce a reading.
    #[error("sensor {device} gave no reading: {reason}")]
    Sensor { device: String, reason: String },
}

/// One full-duplex SPI transfer per message.
pub trait SpiBus {
    /// Send `tx` while receiving the same number of bytes into `rx`
    /// (`rx.len() == tx.len()`).
    fn transfer(&mut self, tx: &[u8], rx: &mut [u8]) -> Result<(), BusError>;

    /// Wait between polls of a blocking move. Real buses sleep; the
    /// simulated board in manual-clock mode advances its clock instead, so
    /// blocking moves run instantly in tests.
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

impl<B: SpiBus + ?Sized> SpiBus for Box<B> {
    fn transfer(&mut self, tx: &[u8], rx: &mut [u8]) -> Result<(), BusError> {
        (**self).transfer(tx, rx)
    }
    fn sleep(&mut self, d: Duration) {
        (**self).sleep(d)
    }
}

/// A raw distance reading in millimetres (VL53L0X: 8190/8191 = out of range).
pub trait DistanceSensor {
    /// One ranging measurement.
    fn read_mm(&mut self) -> Result<u16, BusError>;
}

impl<S: DistanceSensor + ?Sized> DistanceSensor for Box<S> {
    fn read_mm(&mut self) -> Result<u16, BusError> {
        (**self).read_mm()
    }
}

/// The power button's shutdown request: GPIO22, pulled down, high while the
/// button asks the Pi to shut down (the vendor's `gopigo3_power` polls it
/// every 100 ms and runs `shutdown now -h`).
pub trait PowerButton {
    /// True while the button asks for a shutdown.
    fn pressed(&mut self) -> Result<bool, BusError>;
}

impl<P: PowerButton + ?Sized> PowerButton for Box<P> {
    fn pressed(&mut self) -> Result<bool, BusError> {
        (**self).pressed()
    }
}

/// Robot geometry; every constant the vendor makes configurable.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Geometry {
    /// Wheel diameter in mm (66.5).
    pub wheel_diameter_mm: f64,
    /// Distance between the wheels' contact points in mm (117).
    pub wheel_base_mm: f64,
    /// Encoder ticks per motor rotation: 6, or 16 on robots built from 2021.
    pub encoder_ticks_per_rotation: u32,
    /// Motor gear ratio (120).
    pub gear_ratio: f64,
}

impl Default for Geometry {
    fn default() -> Self {
        Self {
            wheel_diameter_mm: 66.5,
            wheel_base_mm: 117.0,
            encoder_ticks_per_rotation: 6,
            gear_ratio: 120.0,
        }
    }
}

impl Geometry {
    /// The 16-tick motors of robots built from 2021.
    pub fn sixteen_ticks() -> Self {
        Self {
            encoder_ticks_per_rotation: 16,
            ..Self::default()
        }
    }

    /// T = gear ratio × ticks per rotation / 360 (2.0, or 5.333 for 16 ticks).
    pub fn ticks_per_degree(&self) -> f64 {
        (self.gear_ratio * f64::from(self.encoder_ticks_per_rotation)) / 360.0
    }

    /// Wheel circumference in mm (208.916 by default).
    pub fn wheel_circumference_mm(&self) -> f64 {
        self.wheel_diameter_mm * std::f64::consts::PI
    }

    /// Wheel degrees to travel `mm` along the floor.
    pub fn mm_to_wheel_degrees(&self, mm: f64) -> f64 {
        mm / self.wheel_circumference_mm() * 360.0
    }

    /// Floor distance for `deg` wheel degrees.
    pub fn wheel_degrees_to_mm(&self, deg: f64) -> f64 {
        deg / 360.0 * self.wheel_circumference_mm()
    }

    /// Wheel degrees each wheel turns (in opposite directions) to spin the
    /// robot by `robot_deg` in place: `robot_deg × base / diameter`.
    pub fn spin_wheel_degrees(&self, robot_deg: f64) -> f64 {
        robot_deg * self.wheel_base_mm / self.wheel_diameter_mm
    }

    /// Check every field is positive and finite; the message names the field.
    pub fn validate(&self) -> Result<(), Gopigo3Error> {
        let bad = |field: &'static str, value: f64| Gopigo3Error::InvalidArgument {
            what: field,
            reason: format!("must be a positive finite number, got {value}"),
        };
        if !(self.wheel_diameter_mm.is_finite() && self.wheel_diameter_mm > 0.0) {
            return Err(bad("geometry.wheel_diameter_mm", self.wheel_diameter_mm));
        }
        if !(self.wheel_base_mm.is_finite() && self.wheel_base_mm > 0.0) {
            return Err(bad("geometry.wheel_base_mm", self.wheel_base_mm));
        }
        if self.encoder_ticks_per_rotation == 0 {
            return Err(bad("geometry.encoder_ticks_per_rotation", 0.0));
        }
        if !(self.gear_ratio.is_finite() && self.gear_ratio > 0.0) {
            return Err(bad("geometry.gear_ratio", self.gear_ratio));
        }
        Ok(())
    }
}

/// Everything the driver can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum Gopigo3Error {
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The board's reply was unusable (no `0xA5`, too short).
    #[error(transparent)]
    Frame(#[from] frames::FrameError),
    /// The manufacturer string is not a GoPiGo3 maker's.
    #[error(
        "board check failed: manufacturer is {found:?}, expected \"Dexter Industries\" or \
         \"Modular Robotics\"; is the device on /dev/spidev0.1 a GoPiGo3?"
    )]
    WrongManufacturer {
        /// What the board said.
        found: String,
    },
    /// The board name is not "GoPiGo3".
    #[error("board check failed: board name is {found:?}, expected \"GoPiGo3\"")]
    WrongBoard {
        /// What the board said.
        found: String,
    },
    /// The firmware is not 1.0.x.
    #[error(
        "board check failed: firmware is {found}, this driver needs 1.0.x; \
         update the firmware with the vendor's tools"
    )]
    WrongFirmware {
        /// The version read, as `major.minor.patch`.
        found: String,
    },
    /// A caller passed a value the driver cannot use.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// The parameter at fault.
        what: &'static str,
        reason: String,
    },
    /// A blocking move did not reach its target in time; the motors were
    /// set to float.
    #[error(
        "{what} did not reach its target within {timeout_s:.1} s (left {left_deg:.1}° of \
         {left_target_deg:.1}°, right {right_deg:.1}° of {right_target_deg:.1}°); \
         the robot may be blocked or the battery flat; motors now float"
    )]
    MoveTimeout {
        /// Which call started the move (`drive_cm`, `turn_degrees`, ...).
        what: &'static str,
        /// Time allowed.
        timeout_s: f64,
        /// Left encoder at the end.
        left_deg: f64,
        left_target_deg: f64,
        /// Right encoder at the end.
        right_deg: f64,
        right_target_deg: f64,
    },
}

/// One SPI frame as it went over the bus.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRecord {
    /// When the transfer started: the moment the driver handed the message
    /// to the bus (what a latency figure "to the first SPI frame" means).
    pub at: Instant,
    /// Simulated time in seconds (sim only; `None` on real buses).
    pub sim_time_s: Option<f64>,
    /// Bytes sent.
    pub tx: Vec<u8>,
    /// Bytes received.
    pub rx: Vec<u8>,
}

impl FrameRecord {
    /// The decoded message type, if known.
    pub fn message(&self) -> Option<MessageType> {
        self.tx.get(1).and_then(|&b| MessageType::from_u8(b))
    }
}

/// Wraps any [`SpiBus`] and sends a [`FrameRecord`] for every transfer to a
/// channel (e.g. to time "first motor SPI frame" in a benchmark). A closed
/// receiver is ignored.
pub struct LoggingBus<B> {
    inner: B,
    log: Sender<FrameRecord>,
}

impl<B: SpiBus> LoggingBus<B> {
    /// Log every frame of `inner` to `log`.
    pub fn new(inner: B, log: Sender<FrameRecord>) -> Self {
        Self { inner, log }
    }

    /// The wrapped bus.
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// Stops logging and hands back the wrapped bus.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: SpiBus> SpiBus for LoggingBus<B> {
    fn transfer(&mut self, tx: &[u8], rx: &mut [u8]) -> Result<(), BusError> {
        let at = Instant::now();
        let r = self.inner.transfer(tx, rx);
        if r.is_ok() {
            let _ = self.log.send(FrameRecord {
                at,
                sim_time_s: None,
                tx: tx.to_vec(),
                rx: rx.to_vec(),
            });
        }
        r
    }
    fn sleep(&mut self, d: Duration) {
        self.inner.sleep(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_per_degree_for_6_and_16_ticks() {
        assert_eq!(Geometry::default().ticks_per_degree(), 2.0);
        let t16 = Geometry::sixteen_ticks().ticks_per_degree();
        assert!((t16 - 5.3333333).abs() < 1e-6, "{t16}");
        assert!((Geometry::default().wheel_circumference_mm() - 208.916).abs() < 1e-3);
    }

    #[test]
    fn geometry_validation_names_the_field() {
        let g = Geometry {
            wheel_base_mm: -1.0,
            ..Geometry::default()
        };
        let e = g.validate().unwrap_err().to_string();
        assert!(e.contains("wheel_base_mm"), "{e}");
        assert!(Geometry::default().validate().is_ok());
    }

    #[test]
    fn logging_bus_records_frames() {
        struct Echo;
        impl SpiBus for Echo {
            fn transfer(&mut self, tx: &[u8], rx: &mut [u8]) -> Result<(), BusError> {
                rx.copy_from_slice(tx);
                Ok(())
            }
        }
        let (txc, rxc) = std::sync::mpsc::channel();
        let mut bus = LoggingBus::new(Echo, txc);
        let mut rx = [0u8; 5];
        bus.transfer(&[8, 14, 3, 2, 0x58], &mut rx).unwrap();
        let rec = rxc.try_recv().unwrap();
        assert_eq!(rec.message(), Some(MessageType::SetMotorDps));
        assert_eq!(rec.rx, vec![8, 14, 3, 2, 0x58]);
    }
}
