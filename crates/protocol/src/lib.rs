//! Topic names and message types shared by the robot agent, the controller
//! and the detector: the one place a topic string is spelled or read.
//!
//! Parts:
//! - [`Topic`] (module [`topic`]): every topic, parsed with [`Topic::parse`]
//!   and printed with `Display`, and the wildcard [`Filter`]s the agent and
//!   the controller subscribe with. [`topics`] has string shortcuts.
//! - [`valid_thing_name`] and [`valid_shadow_name`] (module [`name`]): AWS
//!   IoT's naming rules, which every crate that accepts a name calls.
//! - [`unix_ms`]: the clock of every `*_ms` timestamp in these messages.
//! - [`Command`] and [`parse_command`]: the command JSON (one shape with an
//!   `action` tag) and the seed's plain words (`forward`/`f`, ...), validated
//!   into typed values with errors that name the field at fault.
//! - [`CommandResult`], [`Telemetry`], [`Status`], [`Detections`]: what the
//!   robot and the detector publish.
//! - [`RobotSettings`]: the shadow's desired/reported keys.
//! - [`version`]: the agent's version, marked inside the binary.
//! - [`video`]: the binary frame format of `gopigo/{thing}/video` and the
//!   viewer's [`video::VideoRequest`].

use serde::{Deserialize, Serialize};

pub mod name;
pub mod topic;
pub mod version;

pub use version::{agent_version, agent_version_in};
pub mod video;

pub use name::{valid_shadow_name, valid_thing_name, MAX_SHADOW_NAME_BYTES, MAX_THING_NAME_BYTES};
pub use topic::{
    robot_subscriptions, valid_job_id, Filter, JobsFilter, JobsMsg, JobsRequest, PresenceEvent,
    RobotTopic, ShadowMsg, Topic, TopicError, FLEET_FILTERS, ON_SCREEN_TOPICS, PRESENCE_FILTERS,
};

/// Milliseconds since the Unix epoch: the clock of `ts_ms`, `since` and
/// `frame_ts_ms`, and of every other wall-clock stamp in the workspace
/// (0 if the system clock reads before 1970).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Topic strings for the common cases: shortcuts for `Topic::..to_string()`.
pub mod topics {
    use crate::{RobotTopic, Topic};

    /// `gopigo/{thing}/cmd`.
    pub fn cmd(thing: &str) -> String {
        Topic::robot(thing, RobotTopic::Command).to_string()
    }
    /// `gopigo/{thing}/cmd/result`.
    pub fn cmd_result(thing: &str) -> String {
        Topic::robot(thing, RobotTopic::CommandResult).to_string()
    }
    /// `gopigo/{thing}/telemetry`.
    pub fn telemetry(thing: &str) -> String {
        Topic::robot(thing, RobotTopic::Telemetry).to_string()
    }
    /// `gopigo/{thing}/status`.
    pub fn status(thing: &str) -> String {
        Topic::robot(thing, RobotTopic::Status).to_string()
    }
    /// `gopigo/{thing}/detections`.
    pub fn detections(thing: &str) -> String {
        Topic::robot(thing, RobotTopic::Detections).to_string()
    }
    /// `$aws/things/{thing}/shadow`, the classic shadow's prefix (append
    /// `/get`, `/update`, ...; or use [`Topic::shadow`]).
    pub fn shadow(thing: &str) -> String {
        format!("$aws/things/{thing}/shadow")
    }
    /// The thing name in a `gopigo/{thing}/...` topic.
    pub fn thing_of(topic: &str) -> Option<&str> {
        match Topic::parse(topic).ok()? {
            Topic::Robot { thing, .. } => Some(thing),
            _ => None,
        }
    }
}

/// Default motor speed, degrees per second of wheel rotation (vendor default).
pub const DEFAULT_SPEED_DPS: u32 = 300;
/// Highest speed a command may ask for (the vendor's "no limit").
pub const MAX_SPEED_DPS: u32 = 1000;
/// Default duration of a timed drive, as the seed ran each command.
pub const DEFAULT_DURATION_MS: u32 = 1000;
/// Longest timed drive a single command may ask for.
pub const MAX_DURATION_MS: u32 = 60_000;

/// Where a timed drive goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Both wheels forward.
    Forward,
    /// Both wheels backward.
    Backward,
    /// Turn left on the spot's edge (right wheel only), as the vendor's `left()`.
    Left,
    /// Turn right (left wheel only), as the vendor's `right()`.
    Right,
    /// Spin left in place (wheels opposite).
    SpinLeft,
    /// Spin right in place.
    SpinRight,
}

/// What a command asks the robot to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Drive for a time, then stop.
    Drive {
        /// Which wheels turn which way.
        direction: Direction,
        /// Wheel speed, 1..=1000 dps; default from the shadow's `speed_dps`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        speed_dps: Option<u32>,
        /// How long, 1..=60000 ms; default 1000 ms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u32>,
    },
    /// Turn in place by an angle (positive = right/clockwise, as the vendor).
    Turn {
        /// Robot heading change, -3600..=3600 degrees.
        degrees: f64,
    },
    /// Drive a distance (negative = backward).
    DriveCm {
        /// Distance, -1000..=1000 cm.
        cm: f64,
    },
    /// Point the servo.
    Servo {
        /// 0..=180 degrees (90 = straight ahead).
        angle: f64,
    },
    /// Set both eye LEDs.
    Led {
        /// Red, green, blue, 0..=255 each.
        color: [u8; 3],
    },
    /// Stop now and float the motors. A stop never waits behind queued
    /// commands, and it cancels the motions still waiting.
    Stop,
    /// Keep the running motion alive: refreshes the dead-man timer and
    /// does nothing else (a teleop client may send it instead of repeating
    /// its drive command).
    Heartbeat,
}

/// A command with its optional id (echoed in the result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Caller's id for matching the result; the robot makes one if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The `action` tag and its fields, flattened into the same object.
    #[serde(flatten)]
    pub action: Action,
}

impl Command {
    /// A command without id.
    pub fn new(action: Action) -> Self {
        Command { id: None, action }
    }

    /// Whether the command moves the wheels.
    pub fn is_motion(&self) -> bool {
        matches!(
            self.action,
            Action::Drive { .. } | Action::Turn { .. } | Action::DriveCm { .. }
        )
    }

    /// Whether the command is a `stop` (which bypasses the robot's queue).
    pub fn is_stop(&self) -> bool {
        matches!(self.action, Action::Stop)
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// Not JSON and not one of the plain words.
    #[error("not a command: expected JSON like {{\"action\":\"drive\",\"direction\":\"forward\"}} or one of the words forward/f, backward/b, left/l, right/r, stop/s (got {0:?})")]
    Unrecognised(String),
    /// JSON, but not a valid command.
    #[error("invalid command: {0}")]
    Invalid(String),
    /// A value out of range.
    #[error("invalid command: {field} = {value} is out of range ({range})")]
    OutOfRange {
        /// The JSON key at fault.
        field: &'static str,
        /// The value given, as text.
        value: String,
        /// The allowed range, in words.
        range: &'static str,
    },
}

/// Parses a command payload: the JSON shape, or the seed's plain words.
pub fn parse_command(payload: &[u8]) -> Result<Command, CommandError> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| CommandError::Invalid("payload is not UTF-8".into()))?
        .trim();
    let word = |d| {
        Command::new(Action::Drive {
            direction: d,
            speed_dps: None,
            duration_ms: None,
        })
    };
    let cmd = match text.to_ascii_lowercase().as_str() {
        "forward" | "f" => word(Direction::Forward),
        "backward" | "b" => word(Direction::Backward),
        "left" | "l" => word(Direction::Left),
        "right" | "r" => word(Direction::Right),
        "stop" | "s" => Command::new(Action::Stop),
        _ if text.starts_with('{') => {
            let value = parse_json_strict(text).map_err(CommandError::Invalid)?;
            let cmd =
                Command::deserialize(&value).map_err(|e| CommandError::Invalid(e.to_string()))?;
            // serde cannot deny unknown fields through `flatten`; do it here
            // so a typo ("duration": 5) is refused rather than ignored.
            if let Some(obj) = value.as_object() {
                let allowed = allowed_fields(&cmd.action);
                if let Some(k) = obj.keys().find(|k| {
                    !["id", "action"].contains(&k.as_str()) && !allowed.contains(&k.as_str())
                }) {
                    return Err(CommandError::Invalid(format!(
                        "unknown field `{k}` for action; expected one of: {}",
                        allowed.join(", ")
                    )));
                }
            }
            cmd
        }
        _ => {
            let shown: String = text.chars().take(40).collect();
            return Err(CommandError::Unrecognised(shown));
        }
    };
    validate(&cmd)?;
    Ok(cmd)
}

fn allowed_fields(action: &Action) -> &'static [&'static str] {
    match action {
        Action::Drive { .. } => &["direction", "speed_dps", "duration_ms"],
        Action::Turn { .. } => &["degrees"],
        Action::DriveCm { .. } => &["cm"],
        Action::Servo { .. } => &["angle"],
        Action::Led { .. } => &["color"],
        Action::Stop | Action::Heartbeat => &[],
    }
}

fn validate(cmd: &Command) -> Result<(), CommandError> {
    if let Some(id) = &cmd.id {
        if id.len() > 64 {
            return Err(CommandError::OutOfRange {
                field: "id",
                value: format!("{} bytes", id.len()),
                range: "at most 64 bytes",
            });
        }
    }
    match &cmd.action {
        Action::Drive {
            speed_dps,
            duration_ms,
            ..
        } => {
            if let Some(s) = speed_dps {
                if *s == 0 || *s > MAX_SPEED_DPS {
                    return Err(CommandError::OutOfRange {
                        field: "speed_dps",
                        value: s.to_string(),
                        range: "1..=1000",
                    });
                }
            }
            if let Some(d) = duration_ms {
                if *d == 0 || *d > MAX_DURATION_MS {
                    return Err(CommandError::OutOfRange {
                        field: "duration_ms",
                        value: d.to_string(),
                        range: "1..=60000",
                    });
                }
            }
        }
        Action::Turn { degrees } => {
            if !degrees.is_finite() || degrees.abs() > 3600.0 {
                return Err(CommandError::OutOfRange {
                    field: "degrees",
                    value: degrees.to_string(),
                    range: "-3600..=3600",
                });
            }
        }
        Action::DriveCm { cm } => {
            if !cm.is_finite() || cm.abs() > 1000.0 {
                return Err(CommandError::OutOfRange {
                    field: "cm",
                    value: cm.to_string(),
                    range: "-1000..=1000",
                });
            }
        }
        Action::Servo { angle } => {
            if !angle.is_finite() || !(0.0..=180.0).contains(angle) {
                return Err(CommandError::OutOfRange {
                    field: "angle",
                    value: angle.to_string(),
                    range: "0..=180",
                });
            }
        }
        Action::Led { .. } | Action::Stop | Action::Heartbeat => {}
    }
    Ok(())
}

/// Parses JSON like `serde_json::from_str`, but refuses an object that
/// names a key twice, at any depth. serde_json keeps the last of duplicate
/// keys, so `{"duration_ms":100,"duration_ms":60000}` would silently run a
/// minute while a reviewer (or a filter) reading the first key saw 100 ms.
/// The error names the key and says where it is.
pub fn parse_json_strict(text: &str) -> Result<serde_json::Value, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = strict::Value::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value.0)
}

/// The duplicate-refusing JSON visitor behind [`parse_json_strict`].
mod strict {
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    /// A JSON value whose objects had no duplicate keys.
    pub struct Value(pub serde_json::Value);

    impl<'de> Deserialize<'de> for Value {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StrictVisitor).map(Value)
        }
    }

    struct StrictVisitor;

    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = serde_json::Value;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(serde_json::Value::Null)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(serde_json::Value::Null)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            Value::deserialize(d).map(|v| v.0)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(Value(v)) = seq.next_element()? {
                items.push(v);
            }
            Ok(serde_json::Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut object = serde_json::Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if object.contains_key(&key) {
                    return Err(de::Error::custom(format_args!(
                        "duplicate key `{key}` (each key may appear once; send the value you mean only once)"
                    )));
                }
                let Value(v) = map.next_value()?;
                object.insert(key, v);
            }
            Ok(serde_json::Value::Object(object))
        }
    }
}

/// Outcome of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Queued to run.
    Accepted,
    /// Refused; `reason` says why.
    Rejected,
    /// Finished (or stopped by safety: `reason` says why).
    Done,
}

/// Published on `gopigo/{thing}/cmd/result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    /// The command's id (or one the robot made).
    pub id: String,
    /// `accepted` when it starts, then `done`; or `rejected`.
    pub status: CommandStatus,
    /// Why it was rejected, or why a motion ended early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One reading per wheel.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Wheels {
    /// Motor port A.
    pub left: f64,
    /// Motor port B.
    pub right: f64,
}

/// Published on `gopigo/{thing}/telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// When the sample was read, Unix ms ([`unix_ms`]).
    pub ts_ms: u64,
    /// The battery reading in volts, rounded to 10 mV: the same quantity as
    /// the vendor's `get_voltage_battery()` (and `volt()`), the board's VCC
    /// measurement, which is taken after the input diode and so reads about
    /// 0.7 V below the pack's terminals. Compare it with what the vendor's
    /// tools show, not with a meter on the pack.
    pub battery_v: f64,
    /// Encoder positions, wheel degrees.
    pub encoders_deg: Wheels,
    /// Wheel speeds, degrees per second.
    pub wheel_dps: Wheels,
    /// Distance sensor reading, mm (3000 = nothing in range); absent when
    /// the robot has no sensor or the last read failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance_mm: Option<u32>,
    /// Why the last distance reading failed, while it does; forward moves
    /// are stopped and refused until the sensor reads again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance_error: Option<String>,
    /// `stopped`, `driving`, `turning`, ...
    pub motion: String,
    /// The command running, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    /// The simulator's true pose (x mm, y mm, heading degrees); absent on hardware.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_pose: Option<[f64; 3]>,
}

/// Retained on `gopigo/{thing}/status`; the MQTT will says `online: false`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Whether the agent is connected.
    pub online: bool,
    /// When it went online or offline, Unix ms.
    pub since: u64,
    /// The agent's crate version (empty from an older agent).
    #[serde(default)]
    pub version: String,
    /// Where the camera streams, if it does (MJPEG URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_url: Option<String>,
    /// The camera's per-boot access token: a viewer sends it as
    /// `Authorization: Bearer TOKEN` (or `?token=TOKEN`). Only readers of
    /// this retained status (the robot itself and controllers) learn it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_token: Option<String>,
}

/// A box in source-image pixels: x, y (top left), width, height.
pub type BoxXywh = [f32; 4];

/// One detected object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// COCO class name, e.g. `person`.
    pub class: String,
    /// The detector's confidence, 0..=1.
    pub score: f32,
    /// Where, in the source frame's pixels (`box` in JSON).
    #[serde(rename = "box")]
    pub bbox: BoxXywh,
}

/// Published on `gopigo/{thing}/detections`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detections {
    /// Capture time of the frame, Unix ms (latency = now − this).
    pub frame_ts_ms: u64,
    /// Frame width in pixels, the boxes' coordinate space.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Objects above the detector's threshold, after NMS (may be empty).
    pub detections: Vec<Detection>,
}

/// The robot's shadow state (desired and reported use the same keys).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RobotSettings {
    /// Speed of commands that name none, 1..=1000 dps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_dps: Option<u32>,
    /// Both eye LEDs, red/green/blue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub led: Option<[u8; 3]>,
    /// Servo angle, 0..=180 degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servo_angle: Option<f64>,
    /// Camera streaming on/off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_on: Option<bool>,
    /// Detection on/off (read by the detector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_on: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_from_the_seed() {
        for (w, d) in [
            ("forward", Direction::Forward),
            ("f", Direction::Forward),
            ("backward", Direction::Backward),
            ("b", Direction::Backward),
            ("left", Direction::Left),
            ("l", Direction::Left),
            ("right", Direction::Right),
            ("R", Direction::Right),
        ] {
            let c = parse_command(w.as_bytes()).unwrap();
            assert!(
                matches!(c.action, Action::Drive { direction, .. } if direction == d),
                "{w}"
            );
        }
        assert_eq!(parse_command(b" s\n").unwrap().action, Action::Stop);
        assert_eq!(parse_command(b"stop").unwrap().action, Action::Stop);
    }

    #[test]
    fn json_commands_of_the_architecture() {
        let c = parse_command(
            br#"{"id":"a1","action":"drive","direction":"forward","speed_dps":300,"duration_ms":1000}"#,
        )
        .unwrap();
        assert_eq!(c.id.as_deref(), Some("a1"));
        assert_eq!(
            c.action,
            Action::Drive {
                direction: Direction::Forward,
                speed_dps: Some(300),
                duration_ms: Some(1000)
            }
        );
        assert_eq!(
            parse_command(br#"{"action":"turn","degrees":90}"#)
                .unwrap()
                .action,
            Action::Turn { degrees: 90.0 }
        );
        assert_eq!(
            parse_command(br#"{"action":"drive_cm","cm":20}"#)
                .unwrap()
                .action,
            Action::DriveCm { cm: 20.0 }
        );
        assert_eq!(
            parse_command(br#"{"action":"servo","angle":90}"#)
                .unwrap()
                .action,
            Action::Servo { angle: 90.0 }
        );
        assert_eq!(
            parse_command(br#"{"action":"led","color":[0,255,255]}"#)
                .unwrap()
                .action,
            Action::Led {
                color: [0, 255, 255]
            }
        );
        assert_eq!(
            parse_command(br#"{"action":"stop"}"#).unwrap().action,
            Action::Stop
        );
    }

    #[test]
    fn bad_commands_name_the_problem() {
        let table: &[(&[u8], &str)] = &[
            (b"jump", "not a command"),
            (br#"{"action":"fly"}"#, "fly"),
            (br#"{"action":"drive"}"#, "direction"),
            (br#"{"action":"drive","direction":"up"}"#, "up"),
            (
                br#"{"action":"drive","direction":"forward","speed_dps":5000}"#,
                "speed_dps",
            ),
            (
                br#"{"action":"drive","direction":"forward","duration_ms":0}"#,
                "duration_ms",
            ),
            (br#"{"action":"servo","angle":270}"#, "angle"),
            (br#"{"action":"led","color":[0,300,0]}"#, "300"),
            (br#"{"action":"turn","degrees":"ninety"}"#, "ninety"),
            (br#"{"action":"stop","extra":1}"#, "extra"),
            (b"{not json", "invalid command"),
            (&[0xff, 0xfe], "UTF-8"),
        ];
        for (payload, needle) in table {
            let e = parse_command(payload).unwrap_err().to_string();
            assert!(
                e.contains(needle),
                "{:?}: {e}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_every_level() {
        let table: &[(&[u8], &str)] = &[
            // the attack: a short drive for whoever reads the first key, a minute for serde
            (
                br#"{"action":"drive","direction":"forward","duration_ms":100,"duration_ms":60000}"#,
                "duplicate key `duration_ms`",
            ),
            (br#"{"id":"a","id":"b","action":"stop"}"#, "duplicate key `id`"),
            (
                br#"{"action":"stop","action":"drive","direction":"forward"}"#,
                "duplicate key `action`",
            ),
            (
                br#"{"action":"led","color":[1,2,3],"x":{"k":1,"k":2}}"#,
                "duplicate key `k`",
            ),
            (
                br#"{"action":"led","color":[{"a":[{"z":1,"z":1}]}]}"#,
                "duplicate key `z`",
            ),
        ];
        for (payload, needle) in table {
            let e = parse_command(payload).unwrap_err().to_string();
            assert!(
                e.contains(needle),
                "{:?}: {e}",
                String::from_utf8_lossy(payload)
            );
        }
        // the same keys once each are fine, and so are equal keys in sibling objects
        let ok = parse_json_strict(r#"{"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]}"#).unwrap();
        assert_eq!(ok["b"]["k"], 2);
        assert!(parse_json_strict(r#"{"a":1} trailing"#).is_err());
    }

    #[test]
    fn heartbeat_is_a_command_without_fields() {
        let c = parse_command(br#"{"id":"h","action":"heartbeat"}"#).unwrap();
        assert_eq!(c.action, Action::Heartbeat);
        assert!(!c.is_motion() && !c.is_stop());
        let e = parse_command(br#"{"action":"heartbeat","duration_ms":5}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("duration_ms"), "{e}");
    }

    #[test]
    fn topic_shortcuts_print_what_topic_prints() {
        assert_eq!(topics::cmd("r1"), "gopigo/r1/cmd");
        assert_eq!(topics::cmd_result("r1"), "gopigo/r1/cmd/result");
        assert_eq!(topics::telemetry("r1"), "gopigo/r1/telemetry");
        assert_eq!(topics::status("r1"), "gopigo/r1/status");
        assert_eq!(topics::detections("r1"), "gopigo/r1/detections");
        assert_eq!(topics::thing_of("gopigo/r1/telemetry"), Some("r1"));
        assert_eq!(topics::thing_of("other/r1"), None);
        assert_eq!(topics::thing_of("$aws/things/r1/shadow/get"), None);
        assert_eq!(
            format!("{}/get", topics::shadow("r1")),
            Topic::shadow("r1", ShadowMsg::Get).to_string()
        );
    }

    #[test]
    fn messages_round_trip_as_json() {
        let r = CommandResult {
            id: "x".into(),
            status: CommandStatus::Rejected,
            reason: Some("why".into()),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":"x","status":"rejected","reason":"why"})
        );
        let d = Detections {
            frame_ts_ms: 1,
            width: 640,
            height: 480,
            detections: vec![Detection {
                class: "dog".into(),
                score: 0.9,
                bbox: [1.0, 2.0, 3.0, 4.0],
            }],
        };
        let s = serde_json::to_string(&d).unwrap();
        assert!(s.contains("\"box\":[1.0,2.0,3.0,4.0]"));
        assert_eq!(serde_json::from_str::<Detections>(&s).unwrap(), d);
    }
}
