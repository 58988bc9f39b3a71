//! The AWS IoT Developer Guide's own shadow examples, replayed through the
//! crate. Each case names the guide page (and section) it comes from.

#![allow(clippy::unwrap_used)]

use gopigo_shadow::{
    delete, get, update, ShadowError, StoredShadow, UpdateOutcome, MAX_STATE_BYTES,
};
use serde_json::{json, Value};

const T0: u64 = 1_591_057_529;

fn upd(current: Option<&StoredShadow>, req: Value, now: u64) -> UpdateOutcome {
    update(current, req.to_string().as_bytes(), now)
        .unwrap_or_else(|(e, _)| panic!("update {req} rejected: {e}"))
}

fn rejected(current: Option<&StoredShadow>, req: &[u8]) -> (ShadowError, Option<String>) {
    match update(current, req, T0) {
        Ok(out) => panic!("expected a rejection, got {}", out.accepted),
        Err(rej) => rej,
    }
}

fn get_doc(shadow: &StoredShadow, now: u64) -> Value {
    get(Some(shadow), b"", now, "thing", None).unwrap()
}

// --- "Interacting with shadows" -------------------------------------------

#[test]
fn interacting_with_shadows_client_requests_then_device_reports() {
    // Step 3 of "Updating a shadow when a client requests a state change".
    let req =
        json!({"state": {"desired": {"color": {"r": 10}, "engine": "ON"}}, "clientToken": "app-1"});
    let out = upd(None, req, T0);
    assert_eq!(out.shadow.version, 1, "a new shadow starts at version 1");
    assert_eq!(
        out.accepted,
        json!({
            "state": {"desired": {"color": {"r": 10}, "engine": "ON"}},
            "metadata": {"desired": {"color": {"r": {"timestamp": T0}}, "engine": {"timestamp": T0}}},
            "version": 1,
            "timestamp": T0,
            "clientToken": "app-1"
        })
    );
    // Step 4: AWS publishes /update/delta (nothing reported yet).
    assert_eq!(
        out.delta,
        Some(json!({
            "version": 1,
            "timestamp": T0,
            "state": {"color": {"r": 10}, "engine": "ON"},
            "metadata": {"color": {"r": {"timestamp": T0}}, "engine": {"timestamp": T0}},
            "clientToken": "app-1"
        }))
    );

    // "Updating a shadow when a device reports its current state".
    let report = json!({"state": {"reported": {"color": {"r": 10}, "engine": "ON"}}});
    let out2 = upd(Some(&out.shadow), report, T0 + 5);
    assert_eq!(out2.shadow.version, 2);
    assert_eq!(out2.delta, None, "desired and reported now agree");
    assert!(
        out2.accepted.get("clientToken").is_none(),
        "no token sent, none echoed"
    );
    let doc = get_doc(&out2.shadow, T0 + 6);
    assert!(
        doc["state"].get("delta").is_none(),
        "get has no delta when in sync"
    );
    assert_eq!(
        doc["state"]["reported"],
        json!({"color": {"r": 10}, "engine": "ON"})
    );
    assert_eq!(
        doc["metadata"]["reported"]["engine"],
        json!({"timestamp": T0 + 5})
    );
    assert_eq!(
        doc["metadata"]["desired"]["engine"],
        json!({"timestamp": T0})
    );
    assert_eq!(
        doc["timestamp"],
        json!(T0 + 6),
        "timestamp is the response time"
    );
}

#[test]
fn a_report_that_leaves_a_delta_publishes_the_delta_again() {
    // AWS publishes /update/delta after every accepted update whose resulting
    // document still has a delta, reported-only updates included (issue 12;
    // devices on AWS's forums dedupe these repeats).
    let s = upd(None, json!({"state": {"desired": {"color": "RED"}}}), T0).shadow;
    let out = upd(
        Some(&s),
        json!({"state": {"reported": {"color": "GREEN"}}, "clientToken": "dev"}),
        T0 + 1,
    );
    let delta = out.delta.expect("desired and reported still differ");
    assert_eq!(delta["state"], json!({"color": "RED"}));
    assert_eq!(delta["version"], json!(2));
    assert_eq!(delta["clientToken"], json!("dev"));
    assert_eq!(
        get_doc(&out.shadow, T0 + 2)["state"]["delta"],
        json!({"color": "RED"})
    );
    // A report that closes the gap publishes none.
    let done = upd(
        Some(&out.shadow),
        json!({"state": {"reported": {"color": "RED"}}}),
        T0 + 3,
    );
    assert_eq!(done.delta, None);
    // A report about another field, with the gap still open: delta again.
    let other = upd(
        Some(&s),
        json!({"state": {"reported": {"speed": 3}}}),
        T0 + 4,
    );
    assert_eq!(other.delta.unwrap()["state"], json!({"color": "RED"}));
}

#[test]
fn empty_objects_are_stored_as_given() {
    // moto's test_update_desired, marked verified against AWS: the desired
    // document comes back exactly as written, empty objects included.
    let table = [
        (
            json!({"a": 1, "b": {"c": 3}}),
            json!({"a": 1, "b": {"c": 3}, "d": {}}),
        ),
        (
            json!({"a": 1, "b": {"c": 3}, "d": {}}),
            json!({"a": 1, "b": {"c": {}}, "d": {}}),
        ),
        (
            json!({"a": 1, "b": {"c": 3}}),
            json!({"a": 1, "b": {"c": {"d": 3}}}),
        ),
    ];
    for (initial, updated) in table {
        let s = upd(None, json!({"state": {"desired": initial}}), T0).shadow;
        let out = upd(Some(&s), json!({"state": {"desired": updated}}), T0 + 1);
        let doc = get_doc(&out.shadow, T0 + 2);
        assert_eq!(doc["state"]["desired"], updated, "desired after {initial}");
        assert_eq!(doc["state"]["delta"], updated, "delta after {initial}");
    }
    // null still deletes.
    let s = upd(None, json!({"state": {"desired": {"a": 1, "d": {}}}}), T0).shadow;
    let out = upd(Some(&s), json!({"state": {"desired": {"d": null}}}), T0 + 1);
    assert_eq!(
        get_doc(&out.shadow, T0 + 2)["state"]["desired"],
        json!({"a": 1})
    );
}

#[test]
fn optimistic_locking_example() {
    // "Interacting with shadows" > Optimistic locking.
    let mut s = upd(
        None,
        json!({"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}}),
        T0,
    )
    .shadow;
    s.version = 10; // the guide's initial document is at version 10
    let stale = json!({
        "state": {"desired": {"colors": ["BLUE"]}},
        "version": 9,
        "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6"
    });
    let (err, token) = rejected(Some(&s), stale.to_string().as_bytes());
    assert_eq!((err.code, err.message.as_str()), (409, "Version conflict"));
    assert_eq!(
        token.as_deref(),
        Some("426bfd96-e720-46d3-95cd-014e3ef12bb6")
    );
    assert_eq!(
        err.rejected_payload(token.as_deref(), T0)["clientToken"],
        json!("426bfd96-e720-46d3-95cd-014e3ef12bb6")
    );

    let ok = upd(
        Some(&s),
        json!({"state": {"desired": {"colors": ["BLUE"]}}, "version": 10}),
        T0 + 1,
    );
    assert_eq!(ok.shadow.version, 11);
    assert_eq!(
        ok.shadow.desired,
        Some(json!({"colors": ["BLUE"]}).as_object().unwrap().clone())
    );
}

#[test]
fn deleting_a_property_with_null() {
    // "Interacting with shadows" > Deleting a property from a shadow document.
    let s = upd(
        None,
        json!({"state": {"desired": {"color": "red", "engine": "ON"}}}),
        T0,
    )
    .shadow;
    let out = upd(
        Some(&s),
        json!({"state": {"desired": {"engine": null}}}),
        T0 + 1,
    );
    let desired = out.shadow.desired.clone().unwrap();
    assert_eq!(Value::Object(desired), json!({"color": "red"}));
    assert_eq!(
        out.shadow.metadata_desired.clone().map(Value::Object),
        Some(json!({"color": {"timestamp": T0}})),
        "the deleted key's metadata goes too"
    );
    // The accepted document echoes the request, nulls included.
    assert_eq!(out.accepted["state"], json!({"desired": {"engine": null}}));
    assert_eq!(
        out.accepted["metadata"],
        json!({"desired": {"engine": {"timestamp": T0 + 1}}})
    );
}

#[test]
fn deleting_a_nested_leaf_prunes_emptied_objects() {
    let s = upd(
        None,
        json!({"state": {"reported": {"led": {"left": 1}, "speed": 3}}}),
        T0,
    )
    .shadow;
    let out = upd(
        Some(&s),
        json!({"state": {"reported": {"led": {"left": null}}}}),
        T0 + 1,
    );
    assert_eq!(
        out.shadow.reported.clone().map(Value::Object),
        Some(json!({"speed": 3}))
    );
    assert_eq!(
        out.shadow.metadata_reported.clone().map(Value::Object),
        Some(json!({"speed": {"timestamp": T0}}))
    );
    // Removing the last key removes the section.
    let out = upd(
        Some(&out.shadow),
        json!({"state": {"reported": {"speed": null}}}),
        T0 + 2,
    );
    assert_eq!(out.shadow.reported, None);
    assert_eq!(out.shadow.metadata_reported, None);
}

#[test]
fn delete_accepted_payload_and_version_kept_across_delete() {
    // "Interacting with shadows" > Deleting a shadow: accepted is
    // {"version": 4, "timestamp": 1591057529}; "Deleting a shadow does not
    // reset its version number to 0".
    let mut s = upd(None, json!({"state": {"reported": {"temp": 55}}}), T0 - 100).shadow;
    s.version = 4;
    let out = delete(Some(&s), b"", T0, "thing", None).unwrap();
    assert_eq!(out.accepted, json!({"version": 4, "timestamp": T0}));
    assert!(!out.shadow.exists());
    assert_eq!(out.shadow.desired, None);
    assert_eq!(out.shadow.reported, None);

    // Delete then get: 404.
    let (err, _) = get(Some(&out.shadow), b"", T0 + 1, "thing", None).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "No shadow exists with name: 'thing'")
    );
    // Delete twice: 404.
    let (err, _) = delete(Some(&out.shadow), b"", T0 + 1, "thing", None).unwrap_err();
    assert_eq!(err.code, 404);

    // Re-created within 48 hours: versions follow the deleted shadow's.
    let again = upd(
        Some(&out.shadow),
        json!({"state": {"reported": {"temp": 56}}}),
        T0 + 3600,
    );
    assert_eq!(again.shadow.version, 5);
    assert!(again.shadow.exists());
    assert!(
        again.documents.get("previous").is_none(),
        "a re-created shadow has no previous"
    );
    // Re-created after more than 48 hours: numbering starts again.
    let late = upd(
        Some(&out.shadow),
        json!({"state": {"reported": {"temp": 56}}}),
        T0 + 49 * 3600,
    );
    assert_eq!(late.shadow.version, 1);
}

#[test]
fn delete_echoes_client_token_and_ignores_the_rest() {
    let s = upd(None, json!({"state": {"reported": {"a": 1}}}), T0).shadow;
    let out = delete(
        Some(&s),
        br#"{"clientToken":"del-1","junk":[1]}"#,
        T0,
        "thing",
        None,
    )
    .unwrap();
    assert_eq!(
        out.accepted,
        json!({"version": 1, "timestamp": T0, "clientToken": "del-1"})
    );
    // "The content of the message is ignored": non-JSON is fine.
    assert!(delete(Some(&s), b"not json", T0, "thing", None).is_ok());
}

#[test]
fn state_null_clears_the_state_but_keeps_the_shadow() {
    // "Setting the device's shadow state to null does not delete the shadow.
    // The shadow version will be incremented on the next update."
    let s = upd(
        None,
        json!({"state": {"desired": {"a": 1}, "reported": {"a": 2}}}),
        T0,
    )
    .shadow;
    let out = upd(Some(&s), json!({"state": null}), T0 + 1);
    assert!(out.shadow.exists());
    assert_eq!(out.shadow.version, 2);
    assert_eq!(
        (out.shadow.desired.as_ref(), out.shadow.reported.as_ref()),
        (None, None)
    );
    assert_eq!(out.accepted["state"], Value::Null);
    let doc = get_doc(&out.shadow, T0 + 2);
    assert_eq!(doc["state"], json!({}));
    assert_eq!(doc["version"], json!(2));
    let next = upd(
        Some(&out.shadow),
        json!({"state": {"desired": {"a": 3}}}),
        T0 + 3,
    );
    assert_eq!(next.shadow.version, 3);
}

// --- "Device Shadow service documents" ------------------------------------

#[test]
fn delta_state_example_color_and_engine() {
    // "Delta state": desired {color RED, state STOP}, reported {color GREEN,
    // engine ON} -> delta {color RED, state STOP}, with desired's metadata.
    let s = upd(
        None,
        json!({"state": {"desired": {"color": "RED", "state": "STOP"}}}),
        12345,
    )
    .shadow;
    let s = upd(
        Some(&s),
        json!({"state": {"reported": {"color": "GREEN", "engine": "ON"}}}),
        12345,
    )
    .shadow;
    let doc = get_doc(&s, 123_456_789);
    assert_eq!(
        doc,
        json!({
            "state": {
                "desired": {"color": "RED", "state": "STOP"},
                "reported": {"color": "GREEN", "engine": "ON"},
                "delta": {"color": "RED", "state": "STOP"}
            },
            "metadata": {
                "desired": {"color": {"timestamp": 12345}, "state": {"timestamp": 12345}},
                "reported": {"color": {"timestamp": 12345}, "engine": {"timestamp": 12345}},
                "delta": {"color": {"timestamp": 12345}, "state": {"timestamp": 12345}}
            },
            "version": 2,
            "timestamp": 123_456_789
        })
    );
}

#[test]
fn delta_state_example_nested_lights_to_the_leaf() {
    // "Delta state": "When nested objects differ, the delta contains the path
    // all the way to the root."
    let s = upd(
        None,
        json!({"state": {"reported": {"lights": {"color": {"r": 255, "g": 0, "b": 255}}}}}),
        T0,
    )
    .shadow;
    let out = upd(
        Some(&s),
        json!({"state": {"desired": {"lights": {"color": {"r": 255, "g": 255, "b": 255}}}}}),
        T0 + 1,
    );
    let delta = out.delta.expect("desired changed and differs");
    assert_eq!(delta["state"], json!({"lights": {"color": {"g": 255}}}));
    assert_eq!(
        delta["metadata"],
        json!({"lights": {"color": {"g": {"timestamp": T0 + 1}}}})
    );
    assert_eq!(
        get_doc(&out.shadow, T0 + 2)["state"]["delta"],
        json!({"lights": {"color": {"g": 255}}})
    );
}

#[test]
fn delta_message_carries_all_differences_not_just_this_update() {
    // "Device Shadow MQTT topics" > /update/delta: "It contains all of these
    // attributes, regardless of whether these attributes were contained in the
    // current update message or were already stored".
    let s = upd(None, json!({"state": {"desired": {"a": 1}}}), T0).shadow;
    let out = upd(Some(&s), json!({"state": {"desired": {"b": 2}}}), T0 + 1);
    assert_eq!(out.delta.unwrap()["state"], json!({"a": 1, "b": 2}));
}

#[test]
fn arrays_are_replaced_whole_with_per_element_metadata() {
    // "Array values in shadow documents": [RED, GREEN, BLUE] then [RED].
    let s = upd(
        None,
        json!({"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}}),
        T0,
    )
    .shadow;
    assert_eq!(
        s.metadata_desired.clone().map(Value::Object),
        Some(json!({"colors": [{"timestamp": T0}, {"timestamp": T0}, {"timestamp": T0}]}))
    );
    let out = upd(
        Some(&s),
        json!({"state": {"desired": {"colors": ["RED"]}}}),
        T0 + 1,
    );
    assert_eq!(
        out.shadow.desired.clone().map(Value::Object),
        Some(json!({"colors": ["RED"]}))
    );
    assert_eq!(
        out.shadow.metadata_desired.clone().map(Value::Object),
        Some(json!({"colors": [{"timestamp": T0 + 1}]}))
    );
    // A differing array is copied whole into the delta.
    let out = upd(
        Some(&out.shadow),
        json!({"state": {"reported": {"colors": ["RED", "BLUE"]}}}),
        T0 + 2,
    );
    assert_eq!(
        get_doc(&out.shadow, T0 + 3)["state"]["delta"],
        json!({"colors": ["RED"]})
    );
}

#[test]
fn arrays_cannot_hold_null() {
    // "Array values in shadow documents": [null, "RED", "GREEN"] is rejected.
    let (err, _) = rejected(
        None,
        br#"{"state":{"desired":{"colors":[null,"RED","GREEN"]}}}"#,
    );
    assert_eq!(err.code, 400);
}

#[test]
fn desired_null_removes_the_section() {
    // "Empty shadow document properties".
    let s = upd(None, json!({"state": {"desired": {"color": "red"}}}), T0).shadow;
    let out = upd(
        Some(&s),
        json!({"state": {"reported": {"color": "red"}, "desired": null}}),
        T0 + 1,
    );
    assert_eq!(out.shadow.desired, None);
    assert_eq!(out.shadow.metadata_desired, None);
    let doc = get_doc(&out.shadow, T0 + 2);
    assert_eq!(doc["state"], json!({"reported": {"color": "red"}}));
    assert_eq!(
        doc["metadata"],
        json!({"reported": {"color": {"timestamp": T0 + 1}}})
    );
}

#[test]
fn documents_payload_has_previous_and_current() {
    // "/documents response state document".
    let first = upd(
        None,
        json!({"state": {"desired": {"color": "RED"}}, "clientToken": "c1"}),
        T0,
    );
    assert_eq!(
        first.documents,
        json!({
            "current": {
                "state": {"desired": {"color": "RED"}},
                "metadata": {"desired": {"color": {"timestamp": T0}}},
                "version": 1
            },
            "timestamp": T0,
            "clientToken": "c1"
        })
    );
    let second = upd(
        Some(&first.shadow),
        json!({"state": {"reported": {"color": "RED"}}}),
        T0 + 1,
    );
    assert_eq!(
        second.documents,
        json!({
            "previous": {
                "state": {"desired": {"color": "RED"}},
                "metadata": {"desired": {"color": {"timestamp": T0}}},
                "version": 1
            },
            "current": {
                "state": {"desired": {"color": "RED"}, "reported": {"color": "RED"}},
                "metadata": {
                    "desired": {"color": {"timestamp": T0}},
                    "reported": {"color": {"timestamp": T0 + 1}}
                },
                "version": 2
            },
            "timestamp": T0 + 1
        })
    );
}

#[test]
fn every_accepted_update_bumps_the_version() {
    // "Versioning shadow documents": "with every update of a shadow, the
    // version of the JSON document is incremented" -- even with equal values.
    let s = upd(None, json!({"state": {"reported": {"temp": 55}}}), T0).shadow;
    let same = upd(
        Some(&s),
        json!({"state": {"reported": {"temp": 55}}}),
        T0 + 1,
    );
    assert_eq!(same.shadow.version, 2);
    assert_eq!(
        same.shadow.metadata_reported.as_ref().unwrap()["temp"],
        json!({"timestamp": T0 + 1})
    );
    let empty = upd(Some(&same.shadow), json!({"state": {}}), T0 + 2);
    assert_eq!(empty.shadow.version, 3);
}

#[test]
fn get_echoes_client_token_and_404s_on_missing_shadows() {
    let s = upd(None, json!({"state": {"reported": {"a": 1}}}), T0).shadow;
    let doc = get(Some(&s), br#"{"clientToken":"g-7"}"#, T0, "thing", None).unwrap();
    assert_eq!(doc["clientToken"], json!("g-7"));
    assert_eq!(doc["version"], json!(1));

    let (err, token) = get(None, br#"{"clientToken":"g-8"}"#, T0, "simShadow1", None).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "No shadow exists with name: 'simShadow1'")
    );
    assert_eq!(token.as_deref(), Some("g-8"));
    let (err, _) = get(None, b"", T0, "bot", Some("GrootShadow")).unwrap_err();
    assert_eq!(err.message, "No shadow exists with name: 'bot~GrootShadow'");
}

// --- "Device Shadow error messages" ---------------------------------------

#[test]
fn bad_requests_get_the_documented_code_and_message() {
    let deep_ok = br#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}}"#.to_vec();
    let deep_bad = br#"{"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}}"#.to_vec();
    let long_token = format!(r#"{{"state":{{}},"clientToken":"{}"}}"#, "t".repeat(65));
    let table: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("not JSON", b"{state:".to_vec(), 400, "Invalid JSON"),
        ("empty payload", b"".to_vec(), 400, "Invalid JSON"),
        (
            "JSON but not an object",
            b"[1,2]".to_vec(),
            400,
            "Invalid JSON",
        ),
        (
            "no state node",
            br#"{"desired":{"a":1}}"#.to_vec(),
            400,
            "Missing required node: state",
        ),
        (
            "state is a string",
            br#"{"state":"on"}"#.to_vec(),
            400,
            "State node must be an object",
        ),
        (
            "desired is a number",
            br#"{"state":{"desired":5}}"#.to_vec(),
            400,
            "Desired node must be an object",
        ),
        (
            "reported is an array",
            br#"{"state":{"reported":[1]}}"#.to_vec(),
            400,
            "Reported node must be an object",
        ),
        (
            "unknown node in state",
            br#"{"state":{"wanted":{"a":1}}}"#.to_vec(),
            400,
            "State contains an invalid node",
        ),
        (
            "version is a string",
            br#"{"state":{},"version":"3"}"#.to_vec(),
            400,
            "Invalid version",
        ),
        (
            "version is negative",
            br#"{"state":{},"version":-1}"#.to_vec(),
            400,
            "Invalid version",
        ),
        (
            "clientToken over 64 bytes",
            long_token.into_bytes(),
            400,
            "Invalid clientToken",
        ),
        (
            "clientToken not a string",
            br#"{"state":{},"clientToken":7}"#.to_vec(),
            400,
            "Invalid clientToken",
        ),
        (
            "nesting deeper than 6",
            deep_bad,
            400,
            "JSON contains too many levels of nesting; maximum is 6",
        ),
        (
            "not UTF-8",
            b"{\"state\":{\"desired\":{\"a\":\"\xff\"}}}".to_vec(),
            415,
            "Unsupported documented encoding; supported encoding is UTF-8",
        ),
        (
            "version given but no shadow yet",
            br#"{"state":{},"version":1}"#.to_vec(),
            409,
            "Version conflict",
        ),
    ];
    for (case, payload, code, message) in table {
        let (err, _) = rejected(None, &payload);
        assert_eq!((err.code, err.message.as_str()), (code, message), "{case}");
    }
    // Six levels (desired + five nested objects around a leaf) is allowed.
    assert!(update(None, &deep_ok, T0).is_ok());
    // A 64-byte token is allowed and echoed.
    let ok = format!(r#"{{"state":{{}},"clientToken":"{}"}}"#, "t".repeat(64));
    let out = update(None, ok.as_bytes(), T0).unwrap();
    assert_eq!(out.accepted["clientToken"], json!("t".repeat(64)));
}

#[test]
fn rejections_echo_the_client_token_when_readable() {
    let (_, token) = rejected(None, br#"{"clientToken":"abc"}"#);
    assert_eq!(
        token.as_deref(),
        Some("abc"),
        "missing state, token still echoed"
    );
    let (_, token) = rejected(None, b"{oops");
    assert_eq!(token, None);
}

#[test]
fn state_over_8_kb_is_rejected_with_413_and_metadata_does_not_count() {
    // "Diagnosing problems with shadows": 8 KB of desired + reported; the
    // metadata AWS adds does not count.
    let s = upd(
        None,
        json!({"state": {"reported": {"a": "x".repeat(4000)}}}),
        T0,
    )
    .shadow;
    // Fits alone, but not merged with what is stored.
    let big = json!({"state": {"desired": {"b": "y".repeat(4200)}}});
    let (err, _) = rejected(Some(&s), big.to_string().as_bytes());
    assert_eq!(
        (err.code, err.message.as_str()),
        (413, "The payload exceeds the maximum size allowed")
    );
    // Exactly at the limit is fine; many leaves make metadata far larger.
    let mut fields = serde_json::Map::new();
    let mut i = 0;
    loop {
        fields.insert(format!("k{i}"), json!(1));
        let size = serde_json::to_vec(&fields).unwrap().len();
        if size > MAX_STATE_BYTES - 20 {
            fields.remove(&format!("k{i}"));
            break;
        }
        i += 1;
    }
    let out = upd(None, json!({"state": {"reported": fields}}), T0);
    assert!(out.shadow.state_size() <= MAX_STATE_BYTES);
    let meta = serde_json::to_vec(&out.shadow.metadata_reported)
        .unwrap()
        .len();
    assert!(meta > MAX_STATE_BYTES, "metadata ({meta} B) is not limited");
}

#[test]
fn stored_shadow_round_trips_through_json() {
    let s = upd(
        None,
        json!({"state": {"desired": {"c": [1, 2]}, "reported": {"c": [1]}}}),
        T0,
    )
    .shadow;
    let text = serde_json::to_string(&s).unwrap();
    let back: StoredShadow = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
    let tomb = delete(Some(&s), b"", T0, "t", None).unwrap().shadow;
    let back: StoredShadow = serde_json::from_str(&serde_json::to_string(&tomb).unwrap()).unwrap();
    assert!(!back.exists());
}

// --- "Using Shadows" (earlier edition of the guide) -----------------------

#[test]
fn using_shadows_updating_a_shadow_example() {
    // Initial state, update message, delta to the device, final state.
    let s = upd(
        None,
        json!({"state": {"reported": {"color": {"r": 255, "g": 255, "b": 0}}}}),
        T0,
    )
    .shadow;
    let out = upd(
        Some(&s),
        json!({"state": {"desired": {"color": {"r": 10}, "engine": "ON"}}}),
        T0 + 1,
    );
    assert_eq!(
        out.delta.unwrap()["state"],
        json!({"color": {"r": 10}, "engine": "ON"}),
        "the device receives the desired changes on /update/delta"
    );
    let fin = upd(
        Some(&out.shadow),
        json!({"state": {"reported": {"color": {"r": 10}, "engine": "ON"}}}),
        T0 + 2,
    );
    assert_eq!(
        fin.shadow.reported.clone().map(Value::Object),
        Some(json!({"color": {"r": 10, "g": 255, "b": 0}, "engine": "ON"})),
        "final state"
    );
    assert!(get_doc(&fin.shadow, T0 + 3)["state"].get("delta").is_none());
}

#[test]
fn using_shadows_retrieving_a_shadow_document_example() {
    let s = upd(
        None,
        json!({"state": {"desired": {"lights": {"color": "RED"}, "engine": "ON"}}}),
        123_456,
    )
    .shadow;
    let mut s = upd(
        Some(&s),
        json!({"state": {"reported": {"lights": {"color": "GREEN"}, "engine": "ON"}}}),
        789_012,
    )
    .shadow;
    s.version = 10;
    assert_eq!(
        get_doc(&s, 123_456_789),
        json!({
            "state": {
                "desired": {"lights": {"color": "RED"}, "engine": "ON"},
                "reported": {"lights": {"color": "GREEN"}, "engine": "ON"},
                "delta": {"lights": {"color": "RED"}}
            },
            "metadata": {
                "desired": {"lights": {"color": {"timestamp": 123_456}}, "engine": {"timestamp": 123_456}},
                "reported": {"lights": {"color": {"timestamp": 789_012}}, "engine": {"timestamp": 789_012}},
                "delta": {"lights": {"color": {"timestamp": 123_456}}}
            },
            "version": 10,
            "timestamp": 123_456_789
        })
    );
}
