//! Pure SPI frame building and parsing for the GoPiGo3 board.
//!
//! Every message is one full-duplex transfer. Byte 0 is the board address
//! ([`ADDRESS`]), byte 1 the [`MessageType`]. A read reply is valid only when
//! `rx[3] == 0xA5` ([`REPLY_MARKER`]); its data starts at `rx[4]`. Multi-byte
//! values are big-endian. Degrees travel as `trunc(deg * T)` encoder ticks,
//! where `T` is [`crate::Geometry::ticks_per_degree`].
//!
//! Nothing here does I/O: builders return the exact bytes to send, parsers
//! take the bytes received. Both the driver and the simulated board use them.

use std::fmt;

/// SPI address of the GoPiGo3 board (byte 0 of every frame).
pub const ADDRESS: u8 = 0x08;
/// The byte the board puts at `rx[3]` of a valid read reply.
pub const REPLY_MARKER: u8 = 0xA5;
/// Offset of the first data byte in a read reply.
pub const DATA_OFFSET: usize = 4;
/// Longest frame the protocol uses, in bytes.
pub const LONGEST_FRAME: usize = 38;
/// Power value that lets a motor float (no drive, no brake).
pub const MOTOR_FLOAT: i8 = -128;
/// Length of the manufacturer and board-name strings in a reply.
pub const STRING_LEN: usize = 20;
/// Length of the serial number in a reply.
pub const ID_LEN: usize = 16;

/// SPI message types; the values count up from 0 exactly as the firmware's.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    None = 0,
    GetManufacturer = 1,
    GetName = 2,
    GetHardwareVersion = 3,
    GetFirmwareVersion = 4,
    GetId = 5,
    SetLed = 6,
    GetVoltage5v = 7,
    GetVoltageVcc = 8,
    SetServo = 9,
    SetMotorPwm = 10,
    SetMotorPosition = 11,
    SetMotorPositionKp = 12,
    SetMotorPositionKd = 13,
    SetMotorDps = 14,
    SetMotorLimits = 15,
    OffsetMotorEncoder = 16,
    GetMotorEncoderLeft = 17,
    GetMotorEncoderRight = 18,
    GetMotorStatusLeft = 19,
    GetMotorStatusRight = 20,
    SetGroveType = 21,
    SetGroveMode = 22,
    SetGroveState = 23,
    SetGrovePwmDuty = 24,
    SetGrovePwmFrequency = 25,
    GetGroveValue1 = 26,
    GetGroveValue2 = 27,
    GetGroveState1_1 = 28,
    GetGroveState1_2 = 29,
    GetGroveState2_1 = 30,
    GetGroveState2_2 = 31,
    GetGroveVoltage1_1 = 32,
    GetGroveVoltage1_2 = 33,
    GetGroveVoltage2_1 = 34,
    GetGroveVoltage2_2 = 35,
    GetGroveAnalog1_1 = 36,
    GetGroveAnalog1_2 = 37,
    GetGroveAnalog2_1 = 38,
    GetGroveAnalog2_2 = 39,
    StartGroveI2c1 = 40,
    StartGroveI2c2 = 41,
}

impl MessageType {
    /// All message types in wire order.
    pub const ALL: [MessageType; 42] = [
        Self::None,
        Self::GetManufacturer,
        Self::GetName,
        Self::GetHardwareVersion,
        Self::GetFirmwareVersion,
        Self::GetId,
        Self::SetLed,
        Self::GetVoltage5v,
        Self::GetVoltageVcc,
        Self::SetServo,
        Self::SetMotorPwm,
        Self::SetMotorPosition,
        Self::SetMotorPositionKp,
        Self::SetMotorPositionKd,
        Self::SetMotorDps,
        Self::SetMotorLimits,
        Self::OffsetMotorEncoder,
        Self::GetMotorEncoderLeft,
        Self::GetMotorEncoderRight,
        Self::GetMotorStatusLeft,
        Self::GetMotorStatusRight,
        Self::SetGroveType,
        Self::SetGroveMode,
        Self::SetGroveState,
        Self::SetGrovePwmDuty,
        Self::SetGrovePwmFrequency,
        Self::GetGroveValue1,
        Self::GetGroveValue2,
        Self::GetGroveState1_1,
        Self::GetGroveState1_2,
        Self::GetGroveState2_1,
        Self::GetGroveState2_2,
        Self::GetGroveVoltage1_1,
        Self::GetGroveVoltage1_2,
        Self::GetGroveVoltage2_1,
        Self::GetGroveVoltage2_2,
        Self::GetGroveAnalog1_1,
        Self::GetGroveAnalog1_2,
        Self::GetGroveAnalog2_1,
        Self::GetGroveAnalog2_2,
        Self::StartGroveI2c1,
        Self::StartGroveI2c2,
    ];

    /// Decode a message-type byte; `None` for values the firmware does not know.
    pub fn from_u8(value: u8) -> Option<Self> {
        Self::ALL.get(usize::from(value)).copied()
    }

    /// The byte that goes on the wire.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// True for the messages whose motion/LED/servo effect changes the
    /// robot (the "first motor frame" a benchmark looks for).
    pub fn is_motor_command(self) -> bool {
        matches!(
            self,
            Self::SetMotorPwm
                | Self::SetMotorPosition
                | Self::SetMotorDps
                | Self::SetMotorLimits
                | Self::OffsetMotorEncoder
        )
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} (0x{:02X})", self.as_u8())
    }
}

/// A reply that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // fields named by the variant's message
pub enum FrameError {
    /// `rx[3]` was not 0xA5: the board did not answer.
    #[error(
        "no valid reply to {message}: rx[3] was 0x{found:02X}, expected 0xA5; \
         check the GoPiGo3 is powered (battery pack on), SPI is enabled and GPIO23 is held high"
    )]
    NoReply {
        /// The request that went unanswered.
        message: MessageType,
        /// The byte found at `rx[3]`.
        found: u8,
    },
    /// The reply is shorter than the message needs.
    #[error("reply to {message} is {len} bytes, expected at least {needed}")]
    TooShort {
        message: MessageType,
        len: usize,
        needed: usize,
    },
}

/// Motor port mask byte: left 0x01, right 0x02, both 0x03.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MotorPort {
    /// The left wheel (0x01).
    Left,
    /// The right wheel (0x02).
    Right,
    /// Both wheels (0x03); not allowed for reads.
    Both,
}

impl MotorPort {
    /// The mask byte on the wire.
    pub fn mask(self) -> u8 {
        match self {
            Self::Left => 0x01,
            Self::Right => 0x02,
            Self::Both => 0x03,
        }
    }
}

/// Servo port mask byte: servo 1 = 0x01, servo 2 = 0x02.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ServoPort {
    /// Servo 1 (0x01).
    One,
    /// Servo 2 (0x02).
    Two,
    /// Both servos (0x03).
    Both,
}

impl ServoPort {
    /// The mask byte on the wire.
    pub fn mask(self) -> u8 {
        match self {
            Self::One => 0x01,
            Self::Two => 0x02,
            Self::Both => 0x03,
        }
    }
}

/// LED mask byte; combine with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct LedMask(pub u8);

impl LedMask {
    /// Dex's right eye (0x01).
    pub const EYE_RIGHT: LedMask = LedMask(0x01);
    /// Dex's left eye (0x02).
    pub const EYE_LEFT: LedMask = LedMask(0x02);
    /// Left blinker (0x04).
    pub const BLINKER_LEFT: LedMask = LedMask(0x04);
    /// Right blinker (0x08).
    pub const BLINKER_RIGHT: LedMask = LedMask(0x08);
    /// Wi-Fi LED (0x80): the vendor's service drives it; leave alone.
    pub const WIFI: LedMask = LedMask(0x80);
    /// Both eyes and both blinkers (0x0F).
    pub const ALL_USER: LedMask = LedMask(0x0F);
}

impl std::ops::BitOr for LedMask {
    type Output = LedMask;
    fn bitor(self, rhs: Self) -> Self {
        LedMask(self.0 | rhs.0)
    }
}

/// Grove port 1 (both pins) mask.
pub const GROVE_1: u8 = 0x03;
/// Grove port 2 (both pins) mask.
pub const GROVE_2: u8 = 0x0C;
/// Grove type "custom" (plain digital/analog pins).
pub const GROVE_TYPE_CUSTOM: u8 = 1;
/// Grove pin mode "digital input".
pub const GROVE_INPUT_DIGITAL: u8 = 0;

// ---------------------------------------------------------------- conversions

/// Degrees (or degrees per second) to encoder ticks, truncated toward zero
/// like the vendor's `int(deg * T)`, saturating at the `i32` range.
pub fn deg_to_ticks_i32(deg: f64, ticks_per_degree: f64) -> i32 {
    let v = (deg * ticks_per_degree).trunc();
    if v.is_nan() {
        0
    } else {
        // `as` saturates for floats out of range.
        v as i32
    }
}

/// Degrees per second to ticks per second as `i16`, truncated toward zero,
/// saturating (the vendor wraps at 16 bits; saturating is safer).
pub fn dps_to_ticks_i16(dps: f64, ticks_per_degree: f64) -> i16 {
    let v = (dps * ticks_per_degree).trunc();
    if v.is_nan() {
        0
    } else {
        v as i16
    }
}

/// A dps limit to ticks as `u16` (0 = no limit), truncated, saturating.
pub fn dps_to_ticks_u16(dps: f64, ticks_per_degree: f64) -> u16 {
    let v = (dps.abs() * ticks_per_degree).trunc();
    if v.is_nan() {
        0
    } else {
        v as u16
    }
}

/// Firmware/hardware version number as the vendor prints it: `v/1e6 . (v/1000)%1000 . v%1000`.
pub fn format_version(v: u32) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1000) % 1000, v % 1000)
}

/// Version triple to the number the board sends (`major*1e6 + minor*1000 + patch`).
pub fn encode_version(major: u32, minor: u32, patch: u32) -> u32 {
    major * 1_000_000 + minor * 1000 + patch
}

// ---------------------------------------------------------------- builders

fn read_request(message: MessageType, data_len: usize) -> Vec<u8> {
    let mut v = vec![0u8; DATA_OFFSET + data_len];
    v[0] = ADDRESS;
    v[1] = message.as_u8();
    v
}

/// `08 01|02` + 22 zero bytes: read the manufacturer or board name.
pub fn get_string(message: MessageType) -> Vec<u8> {
    read_request(message, STRING_LEN)
}

/// `08 03|04` + 6 zeros (and any other 32-bit read, e.g. encoders).
pub fn read_32(message: MessageType) -> Vec<u8> {
    read_request(message, 4)
}

/// `08 07|08` + 4 zeros: a 16-bit read (voltages).
pub fn read_16(message: MessageType) -> Vec<u8> {
    read_request(message, 2)
}

/// `08 05` + 18 zeros: read the 16-byte serial number.
pub fn get_id() -> Vec<u8> {
    read_request(MessageType::GetId, ID_LEN)
}

/// `08 11|12` + 6 zeros: read one motor's encoder. `None` for [`MotorPort::Both`].
pub fn get_motor_encoder(port: MotorPort) -> Option<Vec<u8>> {
    let m = match port {
        MotorPort::Left => MessageType::GetMotorEncoderLeft,
        MotorPort::Right => MessageType::GetMotorEncoderRight,
        MotorPort::Both => return None,
    };
    Some(read_32(m))
}

/// `08 13|14` + 10 zeros: read one motor's status. `None` for [`MotorPort::Both`].
pub fn get_motor_status(port: MotorPort) -> Option<Vec<u8>> {
    let m = match port {
        MotorPort::Left => MessageType::GetMotorStatusLeft,
        MotorPort::Right => MessageType::GetMotorStatusRight,
        MotorPort::Both => return None,
    };
    Some(read_request(m, 8))
}

/// `08 06 mask r g b`.
pub fn set_led(mask: LedMask, r: u8, g: u8, b: u8) -> Vec<u8> {
    vec![ADDRESS, MessageType::SetLed.as_u8(), mask.0, r, g, b]
}

/// `08 09 mask us_hi us_lo` (0 = servo off).
pub fn set_servo(port: ServoPort, pulse_us: u16) -> Vec<u8> {
    let [hi, lo] = pulse_us.to_be_bytes();
    vec![ADDRESS, MessageType::SetServo.as_u8(), port.mask(), hi, lo]
}

/// `08 0A port i8` (−100..100, −128 = float).
pub fn set_motor_power(port: MotorPort, power: i8) -> Vec<u8> {
    vec![
        ADDRESS,
        MessageType::SetMotorPwm.as_u8(),
        port.mask(),
        power as u8,
    ]
}

fn port_i32(message: MessageType, port: MotorPort, ticks: i32) -> Vec<u8> {
    let mut v = vec![ADDRESS, message.as_u8(), port.mask()];
    v.extend_from_slice(&ticks.to_be_bytes());
    v
}

/// `08 0B port i32(ticks)`: position target.
pub fn set_motor_position(port: MotorPort, ticks: i32) -> Vec<u8> {
    port_i32(MessageType::SetMotorPosition, port, ticks)
}

/// `08 0E port i16(ticks/s)`: speed target.
pub fn set_motor_dps(port: MotorPort, ticks_per_s: i16) -> Vec<u8> {
    let [hi, lo] = ticks_per_s.to_be_bytes();
    vec![
        ADDRESS,
        MessageType::SetMotorDps.as_u8(),
        port.mask(),
        hi,
        lo,
    ]
}

/// `08 0F port power u16(ticks/s)`: limits, 0 = no limit.
pub fn set_motor_limits(port: MotorPort, power_pct: u8, dps_ticks: u16) -> Vec<u8> {
    let [hi, lo] = dps_ticks.to_be_bytes();
    vec![
        ADDRESS,
        MessageType::SetMotorLimits.as_u8(),
        port.mask(),
        power_pct,
        hi,
        lo,
    ]
}

/// `08 10 port i32(ticks)`: subtract `ticks` from the encoder.
pub fn offset_motor_encoder(port: MotorPort, ticks: i32) -> Vec<u8> {
    port_i32(MessageType::OffsetMotorEncoder, port, ticks)
}

/// `08 0C|0D port u8`: position-control gain (KP or KD).
pub fn set_motor_position_gain(message: MessageType, port: MotorPort, gain: u8) -> Vec<u8> {
    vec![ADDRESS, message.as_u8(), port.mask(), gain]
}

/// `08 15 port type`.
pub fn set_grove_type(port_mask: u8, grove_type: u8) -> Vec<u8> {
    vec![
        ADDRESS,
        MessageType::SetGroveType.as_u8(),
        port_mask,
        grove_type,
    ]
}

/// `08 16 pin mode`.
pub fn set_grove_mode(pin_mask: u8, mode: u8) -> Vec<u8> {
    vec![ADDRESS, MessageType::SetGroveMode.as_u8(), pin_mask, mode]
}

// ---------------------------------------------------------------- parsers

/// Check `rx[3] == 0xA5` and the length; return the data bytes (`rx[4..]`).
pub fn check_reply(message: MessageType, rx: &[u8], data_len: usize) -> Result<&[u8], FrameError> {
    let needed = DATA_OFFSET + data_len;
    if rx.len() < DATA_OFFSET {
        return Err(FrameError::TooShort {
            message,
            len: rx.len(),
            needed,
        });
    }
    if rx[3] != REPLY_MARKER {
        return Err(FrameError::NoReply {
            message,
            found: rx[3],
        });
    }
    if rx.len() < needed {
        return Err(FrameError::TooShort {
            message,
            len: rx.len(),
            needed,
        });
    }
    Ok(&rx[DATA_OFFSET..needed])
}

/// ASCII at `rx[4..24]`, up to the first 0.
pub fn parse_string(message: MessageType, rx: &[u8]) -> Result<String, FrameError> {
    let data = check_reply(message, rx, STRING_LEN)?;
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    Ok(data[..end].iter().map(|&b| char::from(b)).collect())
}

/// Big-endian `u16` at `rx[4..6]`.
pub fn parse_u16(message: MessageType, rx: &[u8]) -> Result<u16, FrameError> {
    let d = check_reply(message, rx, 2)?;
    Ok(u16::from_be_bytes([d[0], d[1]]))
}

/// Big-endian `u32` at `rx[4..8]`.
pub fn parse_u32(message: MessageType, rx: &[u8]) -> Result<u32, FrameError> {
    let d = check_reply(message, rx, 4)?;
    Ok(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
}

/// Big-endian `i32` at `rx[4..8]` (encoder ticks).
pub fn parse_i32(message: MessageType, rx: &[u8]) -> Result<i32, FrameError> {
    parse_u32(message, rx).map(|v| v as i32)
}

/// 16 bytes at `rx[4..20]` as 32 upper-case hex characters.
pub fn parse_id(rx: &[u8]) -> Result<String, FrameError> {
    let d = check_reply(MessageType::GetId, rx, ID_LEN)?;
    Ok(d.iter().map(|b| format!("{b:02X}")).collect())
}

/// A motor status as the board sends it (ticks, not degrees).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawMotorStatus {
    /// bit 0 low-voltage float, bit 1 overloaded.
    pub flags: u8,
    /// PWM power in percent (−100..100).
    pub power: i8,
    /// Encoder position in ticks.
    pub encoder_ticks: i32,
    /// Speed in ticks per second.
    pub dps_ticks: i16,
}

/// `rx[4]` flags, `rx[5]` power, `rx[6..10]` encoder, `rx[10..12]` dps.
pub fn parse_motor_status(message: MessageType, rx: &[u8]) -> Result<RawMotorStatus, FrameError> {
    let d = check_reply(message, rx, 8)?;
    Ok(RawMotorStatus {
        flags: d[0],
        power: d[1] as i8,
        encoder_ticks: i32::from_be_bytes([d[2], d[3], d[4], d[5]]),
        dps_ticks: i16::from_be_bytes([d[6], d[7]]),
    })
}

/// Build the reply the firmware sends for a read: zeros, `0xA5` at index 3,
/// then `data` from index 4, truncated or zero-padded to `len` bytes.
pub fn build_reply(len: usize, data: &[u8]) -> Vec<u8> {
    let mut rx = vec![0u8; len];
    if len > 3 {
        rx[3] = REPLY_MARKER;
    }
    for (i, b) in data.iter().enumerate() {
        if let Some(slot) = rx.get_mut(DATA_OFFSET + i) {
            *slot = *b;
        }
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    const T6: f64 = 2.0; // 120 * 6 / 360
    const T16: f64 = 120.0 * 16.0 / 360.0;

    fn hex(v: &[u8]) -> String {
        v.iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn message_type_values_count_up_from_zero() {
        for (i, m) in MessageType::ALL.iter().enumerate() {
            assert_eq!(usize::from(m.as_u8()), i);
            assert_eq!(MessageType::from_u8(i as u8), Some(*m));
        }
        assert_eq!(MessageType::SetMotorDps.as_u8(), 14);
        assert_eq!(MessageType::GetMotorStatusRight.as_u8(), 20);
        assert_eq!(MessageType::StartGroveI2c2.as_u8(), 41);
        assert_eq!(MessageType::from_u8(42), None);
    }

    /// Golden bytes for every row of the frame table in GOPIGO3.md.
    #[test]
    fn golden_tx_frames() {
        let z = |n: usize| vec!["00"; n].join(" ");
        let cases: Vec<(&str, Vec<u8>, String)> = vec![
            (
                "manufacturer",
                get_string(MessageType::GetManufacturer),
                format!("08 01 {}", z(22)),
            ),
            (
                "name",
                get_string(MessageType::GetName),
                format!("08 02 {}", z(22)),
            ),
            (
                "hardware version",
                read_32(MessageType::GetHardwareVersion),
                "08 03 00 00 00 00 00 00".into(),
            ),
            (
                "firmware version",
                read_32(MessageType::GetFirmwareVersion),
                "08 04 00 00 00 00 00 00".into(),
            ),
            ("serial id", get_id(), format!("08 05 {}", z(18))),
            (
                "set led both eyes cyan",
                set_led(LedMask::EYE_LEFT | LedMask::EYE_RIGHT, 0, 255, 255),
                "08 06 03 00 FF FF".into(),
            ),
            (
                "5v rail",
                read_16(MessageType::GetVoltage5v),
                "08 07 00 00 00 00".into(),
            ),
            (
                "vcc",
                read_16(MessageType::GetVoltageVcc),
                "08 08 00 00 00 00".into(),
            ),
            (
                "servo 1 at 1500us",
                set_servo(ServoPort::One, 1500),
                "08 09 01 05 DC".into(),
            ),
            (
                "servos off",
                set_servo(ServoPort::Both, 0),
                "08 09 03 00 00".into(),
            ),
            (
                "motor power left 50",
                set_motor_power(MotorPort::Left, 50),
                "08 0A 01 32".into(),
            ),
            (
                "motor power right -100",
                set_motor_power(MotorPort::Right, -100),
                "08 0A 02 9C".into(),
            ),
            (
                "motors float",
                set_motor_power(MotorPort::Both, MOTOR_FLOAT),
                "08 0A 03 80".into(),
            ),
            (
                "position left 360deg T=2",
                set_motor_position(MotorPort::Left, deg_to_ticks_i32(360.0, T6)),
                "08 0B 01 00 00 02 D0".into(),
            ),
            (
                "position right -90deg T=2",
                set_motor_position(MotorPort::Right, deg_to_ticks_i32(-90.0, T6)),
                "08 0B 02 FF FF FF 4C".into(),
            ),
            (
                "both at 300 dps T=2",
                set_motor_dps(MotorPort::Both, dps_to_ticks_i16(300.0, T6)),
                "08 0E 03 02 58".into(),
            ),
            (
                "both at -300 dps T=2",
                set_motor_dps(MotorPort::Both, dps_to_ticks_i16(-300.0, T6)),
                "08 0E 03 FD A8".into(),
            ),
            (
                "both at 300 dps T=5.333",
                set_motor_dps(MotorPort::Both, dps_to_ticks_i16(300.0, T16)),
                // 300 * 5.333.. = 1600 = 0x0640
                "08 0E 03 06 40".into(),
            ),
            (
                "limits 300 dps",
                set_motor_limits(MotorPort::Both, 0, dps_to_ticks_u16(300.0, T6)),
                "08 0F 03 00 02 58".into(),
            ),
            (
                "limits none",
                set_motor_limits(MotorPort::Both, 0, 0),
                "08 0F 03 00 00 00".into(),
            ),
            (
                "offset left 100deg",
                offset_motor_encoder(MotorPort::Left, deg_to_ticks_i32(100.0, T6)),
                "08 10 01 00 00 00 C8".into(),
            ),
            (
                "encoder left",
                get_motor_encoder(MotorPort::Left).unwrap(),
                "08 11 00 00 00 00 00 00".into(),
            ),
            (
                "encoder right",
                get_motor_encoder(MotorPort::Right).unwrap(),
                "08 12 00 00 00 00 00 00".into(),
            ),
            (
                "status left",
                get_motor_status(MotorPort::Left).unwrap(),
                format!("08 13 {}", z(10)),
            ),
            (
                "status right",
                get_motor_status(MotorPort::Right).unwrap(),
                format!("08 14 {}", z(10)),
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(hex(&got), want, "frame {name}");
        }
        assert_eq!(get_motor_encoder(MotorPort::Both), None);
        assert_eq!(get_motor_status(MotorPort::Both), None);
    }

    #[test]
    fn ticks_truncate_toward_zero() {
        assert_eq!(deg_to_ticks_i32(344.63, T6), 689);
        assert_eq!(deg_to_ticks_i32(-344.63, T6), -689);
        assert_eq!(deg_to_ticks_i32(10.0, T16), 53); // 53.33
        assert_eq!(dps_to_ticks_i16(1e9, T6), i16::MAX);
        assert_eq!(dps_to_ticks_u16(-300.0, T6), 600);
        assert_eq!(deg_to_ticks_i32(f64::NAN, T6), 0);
    }

    #[test]
    fn parse_strings_and_numbers() {
        let rx = build_reply(24, b"Dexter Industries");
        assert_eq!(
            parse_string(MessageType::GetManufacturer, &rx).unwrap(),
            "Dexter Industries"
        );
        let rx = build_reply(8, &1_000_002u32.to_be_bytes());
        let v = parse_u32(MessageType::GetFirmwareVersion, &rx).unwrap();
        assert_eq!(format_version(v), "1.0.2");
        assert_eq!(encode_version(1, 0, 2), 1_000_002);
        let rx = build_reply(6, &[0x22, 0xC4]); // 8900 mV
        assert_eq!(parse_u16(MessageType::GetVoltageVcc, &rx).unwrap(), 8900);
        let rx = build_reply(8, &(-689i32).to_be_bytes());
        assert_eq!(
            parse_i32(MessageType::GetMotorEncoderLeft, &rx).unwrap(),
            -689
        );
        let id: Vec<u8> = (0u8..16).map(|i| i * 17).collect();
        let rx = build_reply(20, &id);
        assert_eq!(parse_id(&rx).unwrap(), "00112233445566778899AABBCCDDEEFF");
    }

    #[test]
    fn parse_motor_status_fields() {
        // flags overloaded, power -42, encoder -1000 ticks, dps -600 ticks
        let rx = [
            0x00, 0x00, 0x00, 0xA5, 0x02, 0xD6, 0xFF, 0xFF, 0xFC, 0x18, 0xFD, 0xA8,
        ];
        let s = parse_motor_status(MessageType::GetMotorStatusLeft, &rx).unwrap();
        assert_eq!(
            s,
            RawMotorStatus {
                flags: 0x02,
                power: -42,
                encoder_ticks: -1000,
                dps_ticks: -600
            }
        );
    }

    #[test]
    fn bad_marker_is_no_reply() {
        let mut rx = build_reply(8, &[0, 0, 1, 0]);
        rx[3] = 0x00;
        let err = parse_u32(MessageType::GetFirmwareVersion, &rx).unwrap_err();
        assert_eq!(
            err,
            FrameError::NoReply {
                message: MessageType::GetFirmwareVersion,
                found: 0
            }
        );
        assert!(err.to_string().contains("expected 0xA5"));
        let err = parse_u32(
            MessageType::GetFirmwareVersion,
            &[0xA5, 0xA5, 0xA5, 0xA5, 1],
        )
        .unwrap_err();
        assert!(matches!(err, FrameError::TooShort { needed: 8, .. }));
        assert!(matches!(
            parse_u16(MessageType::GetVoltageVcc, &[0, 0]),
            Err(FrameError::TooShort { .. })
        ));
    }

    #[test]
    fn string_stops_at_first_nul_and_fills_20() {
        let rx = build_reply(24, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        assert_eq!(
            parse_string(MessageType::GetName, &rx).unwrap(),
            "ABCDEFGHIJKLMNOPQRST"
        );
        let mut data = b"GoPiGo3".to_vec();
        data.extend_from_slice(&[0, b'x', b'y']);
        let rx = build_reply(24, &data);
        assert_eq!(parse_string(MessageType::GetName, &rx).unwrap(), "GoPiGo3");
    }
}
