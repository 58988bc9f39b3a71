//! The robot's side of the device shadow, as pure functions: read the
//! desired settings out of a `get/accepted` or `update/delta` document, and
//! build the `update` that reports the robot's state.

use gopigo_protocol::RobotSettings;
use serde_json::{json, Value};

/// The desired settings in a shadow document and the keys that could not
/// be used (named, with why). `get/accepted` carries them under
/// `state.desired`; `update/delta` directly under `state`.
pub fn desired_settings(doc: &Value) -> (RobotSettings, Vec<String>) {
    let state = doc.get("state").unwrap_or(&Value::Null);
    let desired = state.get("desired").unwrap_or(state);
    let mut problems = Vec::new();
    let mut s = RobotSettings::default();
    let Some(obj) = desired.as_object() else {
        return (s, problems);
    };
    fn take<T: serde::de::DeserializeOwned>(
        obj: &serde_json::Map<String, Value>,
        key: &str,
        problems: &mut Vec<String>,
    ) -> Option<T> {
        let v = obj.get(key)?;
        if v.is_null() {
            return None;
        }
        match serde_json::from_value(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(format!("desired.{key} = {v}: {e}"));
                None
            }
        }
    }
    s.speed_dps = take(obj, "speed_dps", &mut problems);
    s.led = take(obj, "led", &mut problems);
    s.servo_angle = take(obj, "servo_angle", &mut problems);
    s.camera_on = take(obj, "camera_on", &mut problems);
    s.detection_on = take(obj, "detection_on", &mut problems);
    (s, problems)
}

/// Remembers the state of the last `/update/delta` the robot applied.
///
/// AWS publishes `/update/delta` after every accepted update that leaves
/// desired and reported apart, reported-only updates included. A value the
/// robot refuses (out of range, a key it does not know) stays in the delta,
/// so applying and reporting every repeat would loop: report, delta, report.
/// A delta whose state equals the last one applied is skipped instead.
#[derive(Debug, Default)]
pub struct DeltaDedup {
    last: Option<Value>,
}

impl DeltaDedup {
    /// Whether `doc` (an `/update/delta` payload) differs from the last one
    /// applied; remembers it if so.
    pub fn is_new(&mut self, doc: &Value) -> bool {
        let state = doc.get("state").cloned().unwrap_or(Value::Null);
        if self.last.as_ref() == Some(&state) {
            return false;
        }
        self.last = Some(state);
        true
    }

    /// Forgets the last delta (a full `get/accepted` document was applied).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

/// The payload for `$aws/things/{thing}/shadow/update` reporting `s`.
pub fn report(s: &RobotSettings) -> Value {
    json!({ "state": { "reported": s } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_desired_from_get_and_delta_documents() {
        let table = [
            (
                json!({"state":{"desired":{"speed_dps":200,"led":[1,2,3]},"reported":{"speed_dps":300}},"version":3}),
                RobotSettings {
                    speed_dps: Some(200),
                    led: Some([1, 2, 3]),
                    ..RobotSettings::default()
                },
            ),
            (
                json!({"version":4,"timestamp":1,"state":{"servo_angle":45.5,"camera_on":false},"metadata":{}}),
                RobotSettings {
                    servo_angle: Some(45.5),
                    camera_on: Some(false),
                    ..RobotSettings::default()
                },
            ),
            (
                json!({"state":{"reported":{"speed_dps":1}}}),
                RobotSettings::default(),
            ),
            (json!({}), RobotSettings::default()),
            (
                json!({"state":{"desired":{"detection_on":true,"unknown":1}}}),
                RobotSettings {
                    detection_on: Some(true),
                    ..RobotSettings::default()
                },
            ),
        ];
        for (doc, want) in table {
            let (got, problems) = desired_settings(&doc);
            assert_eq!(got, want, "{doc}");
            assert!(problems.is_empty(), "{problems:?}");
        }
    }

    #[test]
    fn bad_values_are_named_and_the_rest_kept() {
        let (s, problems) =
            desired_settings(&json!({"state":{"speed_dps":"fast","led":[0,255,0]}}));
        assert_eq!(s.led, Some([0, 255, 0]));
        assert_eq!(s.speed_dps, None);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("speed_dps"), "{problems:?}");
    }

    #[test]
    fn repeated_deltas_are_applied_once() {
        let mut d = DeltaDedup::default();
        let refused = json!({"version":3,"state":{"speed_dps":5000}});
        assert!(d.is_new(&refused));
        // AWS repeats it after our report (which could not close the gap).
        let again = json!({"version":4,"state":{"speed_dps":5000}});
        assert!(!d.is_new(&again));
        // A different request is applied.
        let led = json!({"version":5,"state":{"speed_dps":5000,"led":[1,2,3]}});
        assert!(d.is_new(&led));
        // After a full get, the same delta counts as new again.
        d.reset();
        assert!(d.is_new(&led));
    }

    #[test]
    fn report_has_the_aws_shape() {
        let v = report(&RobotSettings {
            speed_dps: Some(200),
            ..RobotSettings::default()
        });
        assert_eq!(v, json!({"state":{"reported":{"speed_dps":200}}}));
    }
}
