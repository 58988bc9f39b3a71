//! The delta state: what `desired` asks for that `reported` does not show.
//!
//! "Device Shadow service documents", section "Delta state": fields in
//! `desired` but not in `reported` are in the delta; fields only in
//! `reported` are not; when nested objects differ, the delta contains the path
//! from the root down to the differing leaf; arrays are values, so a differing
//! array is copied whole. Numbers compare by value (`1` equals `1.0`).

use serde_json::{Map, Value};

/// The delta of `desired` against `reported`, or `None` when there is nothing
/// to do (the device already reports every desired value).
pub fn delta(
    desired: &Map<String, Value>,
    reported: Option<&Map<String, Value>>,
) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for (key, want) in desired {
        let have = reported.and_then(|r| r.get(key));
        match (want, have) {
            (_, None) | (_, Some(Value::Null)) => {
                out.insert(key.clone(), want.clone());
            }
            (Value::Object(want_obj), Some(Value::Object(have_obj))) => {
                if let Some(inner) = delta(want_obj, Some(have_obj)) {
                    out.insert(key.clone(), Value::Object(inner));
                }
            }
            (_, Some(have)) => {
                if !json_eq(want, have) {
                    out.insert(key.clone(), want.clone());
                }
            }
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// The metadata for a delta: the entries of the desired metadata for the
/// delta's leaves ("The delta contains metadata, and its values are equal to
/// the metadata in the `desired` field").
pub fn delta_metadata(
    delta: &Map<String, Value>,
    desired_meta: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in delta {
        let meta = desired_meta.and_then(|m| m.get(key));
        match (value, meta) {
            (Value::Object(inner), Some(Value::Object(inner_meta))) => {
                out.insert(
                    key.clone(),
                    Value::Object(delta_metadata(inner, Some(inner_meta))),
                );
            }
            (_, Some(meta)) => {
                out.insert(key.clone(), meta.clone());
            }
            (_, None) => {}
        }
    }
    out
}

/// JSON equality where numbers compare by value, so `5` equals `5.0`.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => x == y,
                    _ => false,
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn delta_examples_from_the_developer_guide() {
        // (source, desired, reported, expected delta)
        let table = [
            (
                "Delta state: color/state vs color/engine",
                json!({"color": "RED", "state": "STOP"}),
                Some(json!({"color": "GREEN", "engine": "ON"})),
                Some(json!({"color": "RED", "state": "STOP"})),
            ),
            (
                "Delta state: nested objects, path down to the differing leaf",
                json!({"lights": {"color": {"r": 255, "g": 255, "b": 255}}}),
                Some(json!({"lights": {"color": {"r": 255, "g": 0, "b": 255}}})),
                Some(json!({"lights": {"color": {"g": 255}}})),
            ),
            (
                "Delta state: arrays are values, copied whole when they differ",
                json!({"colors": ["RED", "GREEN", "BLUE"], "same": [1, 2]}),
                Some(json!({"colors": ["RED", "GREEN"], "same": [1, 2]})),
                Some(json!({"colors": ["RED", "GREEN", "BLUE"]})),
            ),
            (
                "/update/delta rules: desired attribute with no reported section",
                json!({"color": "red", "power": "on"}),
                None,
                Some(json!({"color": "red", "power": "on"})),
            ),
            (
                "/update/delta rules: reported-only attributes are not included",
                json!({"color": "red"}),
                Some(json!({"color": "red", "temp": 55})),
                None,
            ),
            (
                "equal numbers in different spellings are not a difference",
                json!({"speed": 5, "ratio": 0.5}),
                Some(json!({"speed": 5.0, "ratio": 0.5})),
                None,
            ),
            (
                "type change object -> scalar is a difference",
                json!({"led": {"on": true}}),
                Some(json!({"led": "off"})),
                Some(json!({"led": {"on": true}})),
            ),
        ];
        for (source, desired, reported, want) in table {
            let reported = reported.map(obj);
            let got = delta(&obj(desired), reported.as_ref());
            assert_eq!(got, want.map(obj), "{source}");
        }
    }

    #[test]
    fn delta_metadata_follows_desired_metadata_to_the_leaf() {
        let d = obj(json!({"lights": {"color": {"g": 255}}, "seq": [1, 2]}));
        let meta = obj(json!({
            "lights": {"color": {"r": {"timestamp": 1}, "g": {"timestamp": 2}, "b": {"timestamp": 3}}},
            "seq": [{"timestamp": 4}, {"timestamp": 4}]
        }));
        assert_eq!(
            Value::Object(delta_metadata(&d, Some(&meta))),
            json!({"lights": {"color": {"g": {"timestamp": 2}}}, "seq": [{"timestamp": 4}, {"timestamp": 4}]})
        );
    }
}
