//! What a controller sends, checked before it leaves: thing names, commands
//! (with an id added so the result can be matched), shadow `desired`
//! changes, and the CLI's words (`forward --for 1s`, `turn 90`,
//! `led=0,255,255`). Pure functions, table-tested.

use gopigo_protocol::{parse_command, Action, Command, Direction, RobotSettings};
use serde_json::{Map, Value};

/// A request the controller refuses to send, with what to do instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    /// Not a usable thing name.
    #[error("bad thing name {0:?}: use 1-128 characters of letters, digits, '-', '_' or ':'")]
    ThingName(String),
    /// The command does not validate (the reason comes from the protocol).
    #[error("{0}")]
    Command(String),
    /// A shadow key the robots do not know.
    #[error("unknown shadow key `{0}`: expected one of speed_dps, led, servo_angle, camera_on, detection_on")]
    ShadowKey(String),
    /// A shadow value of the wrong type or range.
    #[error("bad shadow value for `{key}`: {reason}")]
    ShadowValue {
        /// The `desired` key at fault.
        key: String,
        /// The type or range it needs.
        reason: String,
    },
    /// A CLI word or argument that does not parse.
    #[error("{0}")]
    Usage(String),
}

/// Checks a thing name with the protocol's rule, before it goes into a topic.
pub fn check_thing(thing: &str) -> Result<(), ActionError> {
    if gopigo_protocol::valid_thing_name(thing) {
        Ok(())
    } else {
        Err(ActionError::ThingName(thing.to_string()))
    }
}

/// A fresh command id.
pub fn new_id() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("c-{}", &u[..12])
}

/// Validates a command as the robot will (same parser), giving it an id if
/// it has none. Returns the command and the JSON payload to publish.
pub fn prepare_command(command: &Value) -> Result<(Command, Vec<u8>), ActionError> {
    let text = command.to_string();
    let mut cmd =
        parse_command(text.as_bytes()).map_err(|e| ActionError::Command(e.to_string()))?;
    if cmd.id.is_none() {
        cmd.id = Some(new_id());
    }
    let payload = serde_json::to_vec(&cmd).map_err(|e| ActionError::Command(e.to_string()))?;
    Ok((cmd, payload))
}

const SHADOW_KEYS: &[&str] = &[
    "speed_dps",
    "led",
    "servo_angle",
    "camera_on",
    "detection_on",
];

/// Checks a `desired` change against [`RobotSettings`]: known keys, right
/// types and ranges; `null` (delete the key) is allowed for every key.
pub fn check_desired(desired: &Map<String, Value>) -> Result<(), ActionError> {
    if desired.is_empty() {
        return Err(ActionError::Usage(
            "nothing to set: give at least one key=value".into(),
        ));
    }
    for (key, value) in desired {
        if !SHADOW_KEYS.contains(&key.as_str()) {
            return Err(ActionError::ShadowKey(key.clone()));
        }
        if value.is_null() {
            continue;
        }
        let one = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
        let s: RobotSettings =
            serde_json::from_value(one).map_err(|e| ActionError::ShadowValue {
                key: key.clone(),
                reason: e.to_string(),
            })?;
        let range = |reason: &str| ActionError::ShadowValue {
            key: key.clone(),
            reason: reason.into(),
        };
        if let Some(speed) = s.speed_dps {
            if speed == 0 || speed > gopigo_protocol::MAX_SPEED_DPS {
                return Err(range("speed_dps must be 1..=1000"));
            }
        }
        if let Some(a) = s.servo_angle {
            if !(0.0..=180.0).contains(&a) {
                return Err(range("servo_angle must be 0..=180"));
            }
        }
    }
    Ok(())
}

/// The shadow update document that sets `desired`.
pub fn shadow_update(desired: &Map<String, Value>, client_token: &str) -> Vec<u8> {
    serde_json::json!({"state": {"desired": desired}, "clientToken": client_token})
        .to_string()
        .into_bytes()
}

/// Reads `key=value` words into a `desired` map. Values are JSON when they
/// parse as JSON (`90`, `true`, `[0,255,255]`, `null`); `led` also takes
/// `0,255,255` and `#00ffff`.
pub fn parse_assignments(words: &[String]) -> Result<Map<String, Value>, ActionError> {
    let mut out = Map::new();
    for w in words {
        let (k, v) = w.split_once('=').ok_or_else(|| {
            ActionError::Usage(format!(
                "expected key=value, got {w:?} (e.g. servo_angle=90)"
            ))
        })?;
        let k = k.trim();
        let v = v.trim();
        let value = if k == "led" {
            parse_color(v)?
        } else {
            serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()))
        };
        out.insert(k.to_string(), value);
    }
    check_desired(&out)?;
    Ok(out)
}

fn parse_color(v: &str) -> Result<Value, ActionError> {
    let bad = || ActionError::ShadowValue {
        key: "led".into(),
        reason: format!("{v:?} is not a colour: use R,G,B (0-255 each), #rrggbb or null"),
    };
    if v == "null" {
        return Ok(Value::Null);
    }
    let rgb: Vec<u8> = if let Some(hex) = v.strip_prefix('#') {
        if hex.len() != 6 {
            return Err(bad());
        }
        (0..3)
            .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).map_err(|_| bad()))
            .collect::<Result<_, _>>()?
    } else {
        v.trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|p| p.trim().parse::<u8>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?
    };
    if rgb.len() != 3 {
        return Err(bad());
    }
    Ok(Value::from(rgb))
}

/// Reads a duration: `1s`, `1.5s`, `400ms`, `2m`, or a bare number of seconds.
pub fn parse_duration_ms(text: &str) -> Result<u32, ActionError> {
    let t = text.trim();
    let bad = || {
        ActionError::Usage(format!(
            "bad duration {text:?}: use e.g. 1s, 1.5s, 400ms or 2m"
        ))
    };
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (t, 1000.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    let ms = (v * scale).round();
    if !ms.is_finite() || ms < 1.0 || ms > f64::from(u32::MAX) {
        return Err(bad());
    }
    Ok(ms as u32)
}

/// Builds the action of `gopigo drive THING WORDS...`:
/// `forward|backward|left|right|spin-left|spin-right [--for D] [--speed S]`,
/// `turn DEG`, `cm N`, `servo DEG`, `led R,G,B`, `stop`.
pub fn drive_action(
    words: &[String],
    duration_ms: Option<u32>,
    speed_dps: Option<u32>,
) -> Result<Action, ActionError> {
    let usage = || {
        ActionError::Usage(
            "expected one of: forward|backward|left|right|spin-left|spin-right [--for 1s] [--speed DPS], turn DEG, cm N, servo DEG, led R,G,B, stop".into(),
        )
    };
    let (first, rest) = words.split_first().ok_or_else(usage)?;
    let number = |what: &str| -> Result<f64, ActionError> {
        match rest {
            [n] => n.parse::<f64>().map_err(|_| {
                ActionError::Usage(format!("`{first}` takes a number of {what}, got {n:?}"))
            }),
            _ => Err(ActionError::Usage(format!(
                "`{first}` takes one number of {what}, e.g. `{first} 90`"
            ))),
        }
    };
    let direction = match first.to_ascii_lowercase().as_str() {
        "forward" | "f" => Some(Direction::Forward),
        "backward" | "back" | "b" => Some(Direction::Backward),
        "left" | "l" => Some(Direction::Left),
        "right" | "r" => Some(Direction::Right),
        "spin-left" | "spin_left" => Some(Direction::SpinLeft),
        "spin-right" | "spin_right" => Some(Direction::SpinRight),
        _ => None,
    };
    let action = if let Some(direction) = direction {
        if !rest.is_empty() {
            return Err(ActionError::Usage(format!(
                "`{first}` takes no further words (use --for and --speed), got {rest:?}"
            )));
        }
        Action::Drive {
            direction,
            speed_dps,
            duration_ms,
        }
    } else {
        match first.to_ascii_lowercase().as_str() {
            "turn" => Action::Turn {
                degrees: number("degrees")?,
            },
            "cm" => Action::DriveCm {
                cm: number("centimetres")?,
            },
            "servo" => Action::Servo {
                angle: number("degrees")?,
            },
            "led" => {
                let joined = rest.join(",");
                let v = parse_color(&joined)?;
                let color: [u8; 3] = serde_json::from_value(v).map_err(|_| usage())?;
                Action::Led { color }
            }
            "stop" | "s" => Action::Stop,
            _ => return Err(usage()),
        }
    };
    // The same checks the robot makes, so a bad value fails here.
    let value = serde_json::to_value(Command::new(action.clone()))
        .map_err(|e| ActionError::Command(e.to_string()))?;
    prepare_command(&value)?;
    Ok(action)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn thing_names() {
        for ok in ["robot1", "a", "r-1_x:y"] {
            assert!(check_thing(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "+", "#", "a b", &"x".repeat(129)] {
            assert!(check_thing(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn commands_get_an_id_and_bad_ones_say_why() {
        let (cmd, payload) =
            prepare_command(&json!({"action":"drive","direction":"forward","duration_ms":400}))
                .unwrap();
        assert!(cmd.id.as_deref().unwrap().starts_with("c-"));
        let back: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(back["duration_ms"], 400);
        assert_eq!(back["id"], json!(cmd.id));
        let (cmd, _) = prepare_command(&json!({"id":"mine","action":"stop"})).unwrap();
        assert_eq!(cmd.id.as_deref(), Some("mine"));
        let e = prepare_command(&json!({"action":"drive","direction":"forward","speed_dps":5000}))
            .unwrap_err();
        assert!(e.to_string().contains("speed_dps"), "{e}");
    }

    #[test]
    fn desired_checks() {
        let ok = |v: Value| check_desired(v.as_object().unwrap());
        assert!(ok(json!({"led":[0,255,255],"servo_angle":90,"speed_dps":300})).is_ok());
        assert!(ok(json!({"camera_on":false,"detection_on":null})).is_ok());
        let table = [
            (json!({"colour":[1,2,3]}), "colour"),
            (json!({"led":[0,300,0]}), "led"),
            (json!({"servo_angle":270}), "0..=180"),
            (json!({"speed_dps":0}), "1..=1000"),
            (json!({"camera_on":"yes"}), "camera_on"),
            (json!({}), "nothing to set"),
        ];
        for (v, needle) in table {
            let e = ok(v.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{v}: {e}");
        }
    }

    #[test]
    fn assignments_from_the_command_line() {
        let m = parse_assignments(&words("servo_angle=45 led=0,255,255 camera_on=false")).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"servo_angle":45,"led":[0,255,255],"camera_on":false})
        );
        let m = parse_assignments(&words("led=#ff8000")).unwrap();
        assert_eq!(m["led"], json!([255, 128, 0]));
        for (w, needle) in [
            ("servo", "key=value"),
            ("led=1,2", "colour"),
            ("led=#12", "colour"),
            ("wheels=2", "unknown shadow key"),
        ] {
            let e = parse_assignments(&words(w)).unwrap_err().to_string();
            assert!(e.contains(needle), "{w}: {e}");
        }
    }

    #[test]
    fn durations() {
        for (t, ms) in [
            ("1s", 1000),
            ("1.5s", 1500),
            ("400ms", 400),
            ("2", 2000),
            ("1m", 60_000),
        ] {
            assert_eq!(parse_duration_ms(t).unwrap(), ms, "{t}");
        }
        for t in ["", "fast", "0s", "-1s", "1h"] {
            assert!(parse_duration_ms(t).is_err(), "{t}");
        }
    }

    #[test]
    fn drive_words() {
        assert_eq!(
            drive_action(&words("forward"), Some(1000), Some(200)).unwrap(),
            Action::Drive {
                direction: Direction::Forward,
                speed_dps: Some(200),
                duration_ms: Some(1000)
            }
        );
        assert_eq!(
            drive_action(&words("spin-left"), None, None).unwrap(),
            Action::Drive {
                direction: Direction::SpinLeft,
                speed_dps: None,
                duration_ms: None
            }
        );
        assert_eq!(
            drive_action(&words("turn -90"), None, None).unwrap(),
            Action::Turn { degrees: -90.0 }
        );
        assert_eq!(
            drive_action(&words("cm 20"), None, None).unwrap(),
            Action::DriveCm { cm: 20.0 }
        );
        assert_eq!(
            drive_action(&words("led 0 255 255"), None, None).unwrap(),
            Action::Led {
                color: [0, 255, 255]
            }
        );
        assert_eq!(
            drive_action(&words("stop"), None, None).unwrap(),
            Action::Stop
        );
        for (w, needle) in [
            ("", "expected one of"),
            ("jump", "expected one of"),
            ("turn", "one number"),
            ("turn left", "number of degrees"),
            ("forward 3", "no further words"),
            ("servo 270", "angle"),
        ] {
            let e = drive_action(&words(w), None, None).unwrap_err().to_string();
            assert!(e.contains(needle), "{w}: {e}");
        }
        let e = drive_action(&words("forward"), None, Some(5000))
            .unwrap_err()
            .to_string();
        assert!(e.contains("speed_dps"), "{e}");
    }
}
