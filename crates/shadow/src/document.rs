//! The stored shadow and the three operations on it: update, get, delete.
//!
//! Behaviour follows the AWS IoT Developer Guide pages "Device Shadow service
//! documents", "Interacting with shadows", "Device Shadow MQTT topics" and
//! "Device Shadow error messages". Where those pages are silent, we follow
//! what AWS's own local shadow implementation (the Greengrass Shadow manager)
//! does; each such choice is marked "(not in the guide)".

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::delta::{delta, delta_metadata};
use crate::error::{
    ShadowError, MSG_DESIRED_NOT_OBJECT, MSG_INVALID_CLIENT_TOKEN, MSG_INVALID_JSON,
    MSG_INVALID_NODE, MSG_INVALID_VERSION, MSG_MISSING_STATE, MSG_REPORTED_NOT_OBJECT,
    MSG_STATE_NOT_OBJECT, MSG_TOO_DEEP,
};

/// A JSON object, as stored in the `desired`/`reported` sections.
pub type Map = serde_json::Map<String, Value>;

/// A client token longer than this is rejected with 400 "Invalid clientToken".
pub const MAX_CLIENT_TOKEN_BYTES: usize = 64;
/// Maximum nesting of objects/arrays in a state section, counting the
/// `desired`/`reported` object itself as level 1.
pub const MAX_STATE_DEPTH: usize = 6;
/// Maximum size of the stored state: compact JSON of `desired` plus compact
/// JSON of `reported`, metadata excluded ("the device's shadow supports 8 KB
/// of data only ... only the data for desired and reported state counts").
pub const MAX_STATE_BYTES: usize = 8 * 1024;
/// A shadow re-created within this many seconds of its deletion continues the
/// deleted shadow's version numbers; later, numbering starts again
/// ("Interacting with shadows", DELETE: 48 hours).
pub const DELETED_VERSION_RETENTION_SECS: u64 = 48 * 3600;

/// One shadow as the core persists it (JSON in SQLite).
///
/// A deleted shadow is kept as a *tombstone* (`deleted_at` set, no state), so
/// that a shadow re-created soon after keeps counting versions as AWS does.
/// `get`/`delete` treat a tombstone as "no shadow".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredShadow {
    /// The `desired` section; `None` when the shadow has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Map>,
    /// The `reported` section; `None` when the shadow has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Map>,
    /// Per-leaf `{"timestamp": epoch_s}` mirroring `desired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_desired: Option<Map>,
    /// Per-leaf `{"timestamp": epoch_s}` mirroring `reported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_reported: Option<Map>,
    /// Document version: 1 after the first update, +1 on every accepted update.
    pub version: u64,
    /// Epoch seconds of the last accepted update (or of the deletion).
    pub timestamp: u64,
    /// Set when the shadow was deleted (epoch seconds): a tombstone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<u64>,
}

impl StoredShadow {
    /// Whether this is a live shadow (not a tombstone left by a delete).
    pub fn exists(&self) -> bool {
        self.deleted_at.is_none()
    }

    /// The current delta of `desired` against `reported`, if any.
    pub fn delta(&self) -> Option<Map> {
        self.desired
            .as_ref()
            .and_then(|d| delta(d, self.reported.as_ref()))
    }

    /// Bytes counted against [`MAX_STATE_BYTES`]: compact `desired` + `reported`.
    pub fn state_size(&self) -> usize {
        [&self.desired, &self.reported]
            .into_iter()
            .flatten()
            .map(|section| serde_json::to_vec(section).map_or(0, |v| v.len()))
            .sum()
    }

    /// The document as it appears in `/update/documents` (`previous` and
    /// `current`): `{"state": {desired?, reported?}, "metadata": {...}, "version"}`.
    pub fn document(&self) -> Value {
        json!({
            "state": sections(self.desired.as_ref(), self.reported.as_ref(), None),
            "metadata": sections(
                self.metadata_desired.as_ref(),
                self.metadata_reported.as_ref(),
                None,
            ),
            "version": self.version,
        })
    }
}

/// Everything an accepted update produces.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The new state to store.
    pub shadow: StoredShadow,
    /// The `/update/accepted` payload (also the HTTP UpdateThingShadow body).
    pub accepted: Value,
    /// The `/update/delta` payload, present whenever the updated document has
    /// a delta, whichever section the update touched (AWS republishes the
    /// delta after a reported-only update that leaves desired and reported
    /// apart, so devices must apply deltas idempotently).
    pub delta: Option<Value>,
    /// The `/update/documents` payload.
    pub documents: Value,
}

/// Everything an accepted delete produces.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteOutcome {
    /// What to store in place of the shadow: a tombstone keeping the version.
    pub shadow: StoredShadow,
    /// The `/delete/accepted` payload `{"version", "timestamp", "clientToken"?}`.
    pub accepted: Value,
}

/// A rejected request: the error, and the request's client token if it could
/// be read (to echo in the `/rejected` payload).
pub type Rejection = (ShadowError, Option<String>);

/// Applies an update request (a request state document) to the shadow.
///
/// `current` is what is stored (a live shadow, a tombstone, or nothing);
/// `now` is the time in epoch seconds.
pub fn update(
    current: Option<&StoredShadow>,
    request: &[u8],
    now: u64,
) -> Result<UpdateOutcome, Rejection> {
    let obj = request_object(request).map_err(|e| (e, None))?;
    let token = client_token(&obj).map_err(|e| (e, None))?;
    let reject = |e: ShadowError| (e, token.clone());

    let version = request_version(&obj).map_err(reject)?;
    let patch = parse_state(&obj).map_err(reject)?;

    let existing = current.filter(|s| s.exists());
    if let Some(v) = version {
        // "the Device Shadow service processes the update only if the
        // specified version matches the latest version it has". With no shadow
        // there is no version to match (not in the guide).
        if existing.map(|s| s.version) != Some(v) {
            return Err(reject(ShadowError::version_conflict()));
        }
    }

    let mut next = existing.cloned().unwrap_or_default();
    next.version = next_version(current, now);
    next.timestamp = now;
    next.deleted_at = None;
    apply_patch(&mut next, &patch, now);
    if next.state_size() > MAX_STATE_BYTES {
        return Err(reject(ShadowError::payload_too_large()));
    }

    let token = token.as_deref();
    Ok(UpdateOutcome {
        accepted: accepted_payload(&patch, next.version, now, token),
        delta: delta_payload(&next, now, token),
        documents: documents_payload(existing, &next, now, token),
        shadow: next,
    })
}

/// The request as a JSON object: UTF-8 (else 415) and an object (else 400).
fn request_object(request: &[u8]) -> Result<Map, ShadowError> {
    let text = std::str::from_utf8(request).map_err(|_| ShadowError::unsupported_encoding())?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err(ShadowError::bad_request(MSG_INVALID_JSON)),
    }
}

/// The version an accepted update gets: one past the live shadow's, or
/// past a tombstone's when it was deleted within
/// [`DELETED_VERSION_RETENTION_SECS`]; else 1.
fn next_version(current: Option<&StoredShadow>, now: u64) -> u64 {
    match current {
        Some(live) if live.exists() => live.version.saturating_add(1),
        Some(tomb) => {
            let deleted_at = tomb.deleted_at.unwrap_or(tomb.timestamp);
            if now.saturating_sub(deleted_at) <= DELETED_VERSION_RETENTION_SECS {
                tomb.version.saturating_add(1)
            } else {
                1
            }
        }
        None => 1,
    }
}

/// Merges the request's sections into `next` (or clears both).
fn apply_patch(next: &mut StoredShadow, patch: &StatePatch, now: u64) {
    match patch {
        StatePatch::ClearAll => {
            next.desired = None;
            next.reported = None;
            next.metadata_desired = None;
            next.metadata_reported = None;
        }
        StatePatch::Sections {
            desired, reported, ..
        } => {
            apply_section(&mut next.desired, &mut next.metadata_desired, desired, now);
            apply_section(
                &mut next.reported,
                &mut next.metadata_reported,
                reported,
                now,
            );
        }
    }
}

/// `/update/accepted`: the request's state echoed with its metadata.
fn accepted_payload(patch: &StatePatch, version: u64, now: u64, token: Option<&str>) -> Value {
    let echoed_state = match patch {
        StatePatch::ClearAll => Value::Null,
        StatePatch::Sections { echo, .. } => Value::Object(echo.clone()),
    };
    let mut accepted = json!({
        "state": echoed_state,
        "metadata": metadata_for(&echoed_state, now),
        "version": version,
        "timestamp": now,
    });
    add_token(&mut accepted, token);
    accepted
}

/// `/update/delta`, when the updated shadow has one.
fn delta_payload(next: &StoredShadow, now: u64, token: Option<&str>) -> Option<Value> {
    next.delta().map(|d| {
        let meta = delta_metadata(&d, next.metadata_desired.as_ref());
        let mut payload = json!({
            "version": next.version,
            "timestamp": now,
            "state": d,
            "metadata": meta,
        });
        add_token(&mut payload, token);
        payload
    })
}

/// `/update/documents`: the live shadow before (if any) and after.
fn documents_payload(
    previous: Option<&StoredShadow>,
    next: &StoredShadow,
    now: u64,
    token: Option<&str>,
) -> Value {
    let mut documents = Map::new();
    if let Some(prev) = previous {
        documents.insert("previous".into(), prev.document());
    }
    documents.insert("current".into(), next.document());
    documents.insert("timestamp".into(), now.into());
    let mut documents = Value::Object(documents);
    add_token(&mut documents, token);
    documents
}

/// Answers a get request: the whole document with `state.delta` (only when
/// non-empty), metadata, version, the response time and the client token.
///
/// The request payload may be empty or `{"clientToken": ".."}`. 404 when there
/// is no shadow (never created, or deleted).
pub fn get(
    current: Option<&StoredShadow>,
    request: &[u8],
    now: u64,
    thing: &str,
    shadow_name: Option<&str>,
) -> Result<Value, Rejection> {
    let token = lenient_token(request)?;
    let Some(shadow) = current.filter(|s| s.exists()) else {
        return Err((ShadowError::no_shadow(thing, shadow_name), token));
    };
    let d = shadow.delta();
    let delta_meta = d
        .as_ref()
        .map(|d| delta_metadata(d, shadow.metadata_desired.as_ref()));
    let mut doc = json!({
        "state": sections(shadow.desired.as_ref(), shadow.reported.as_ref(), d.as_ref()),
        "metadata": sections(
            shadow.metadata_desired.as_ref(),
            shadow.metadata_reported.as_ref(),
            delta_meta.as_ref(),
        ),
        "version": shadow.version,
        "timestamp": now,
    });
    add_token(&mut doc, token.as_deref());
    Ok(doc)
}

/// Deletes the shadow: returns the `/delete/accepted` payload (the deleted
/// document's version and the time) and the tombstone to store.
///
/// "The content of the message is ignored" (except a `clientToken`, echoed).
/// 404 when there is no shadow.
pub fn delete(
    current: Option<&StoredShadow>,
    request: &[u8],
    now: u64,
    thing: &str,
    shadow_name: Option<&str>,
) -> Result<DeleteOutcome, Rejection> {
    let token = lenient_token(request)?;
    let Some(shadow) = current.filter(|s| s.exists()) else {
        return Err((ShadowError::no_shadow(thing, shadow_name), token));
    };
    let mut accepted = json!({ "version": shadow.version, "timestamp": now });
    add_token(&mut accepted, token.as_deref());
    Ok(DeleteOutcome {
        shadow: StoredShadow {
            version: shadow.version,
            timestamp: now,
            deleted_at: Some(now),
            ..StoredShadow::default()
        },
        accepted,
    })
}

/// What an update does to one section.
#[derive(Debug)]
enum SectionPatch {
    /// The request does not mention the section.
    Absent,
    /// `null` (or `{}`): remove the section and its metadata.
    Remove,
    /// Merge these fields.
    Merge(Map),
}

#[derive(Debug)]
enum StatePatch {
    /// `"state": null`: clears `desired` and `reported` (the shadow stays).
    ClearAll,
    Sections {
        desired: SectionPatch,
        reported: SectionPatch,
        /// The request's state as echoed in `/update/accepted`.
        echo: Map,
    },
}

fn parse_state(obj: &Map) -> Result<StatePatch, ShadowError> {
    let state = match obj.get("state") {
        None => return Err(ShadowError::bad_request(MSG_MISSING_STATE)),
        Some(Value::Null) => return Ok(StatePatch::ClearAll),
        Some(Value::Object(state)) => state,
        Some(_) => return Err(ShadowError::bad_request(MSG_STATE_NOT_OBJECT)),
    };
    let mut desired = SectionPatch::Absent;
    let mut reported = SectionPatch::Absent;
    let mut echo = Map::new();
    for (key, value) in state {
        let (slot, not_object) = match key.as_str() {
            "desired" => (&mut desired, MSG_DESIRED_NOT_OBJECT),
            "reported" => (&mut reported, MSG_REPORTED_NOT_OBJECT),
            // Clients often send back a document they got, delta included;
            // the delta is computed, so it is dropped (not in the guide).
            "delta" => continue,
            _ => return Err(ShadowError::bad_request(MSG_INVALID_NODE)),
        };
        *slot = match value {
            Value::Null => SectionPatch::Remove,
            Value::Object(m) if m.is_empty() => SectionPatch::Remove,
            Value::Object(m) => {
                if has_null_in_array(value) {
                    // "Arrays can't have null values ... will be rejected."
                    return Err(ShadowError::bad_request(MSG_INVALID_NODE));
                }
                if too_deep(value, 1) {
                    return Err(ShadowError::bad_request(MSG_TOO_DEEP));
                }
                SectionPatch::Merge(m.clone())
            }
            _ => return Err(ShadowError::bad_request(not_object)),
        };
        echo.insert(key.clone(), value.clone());
    }
    Ok(StatePatch::Sections {
        desired,
        reported,
        echo,
    })
}

/// Whether a non-empty object/array sits deeper than [`MAX_STATE_DEPTH`].
fn too_deep(value: &Value, depth: usize) -> bool {
    let children: Box<dyn Iterator<Item = &Value>> = match value {
        Value::Object(m) if !m.is_empty() => Box::new(m.values()),
        Value::Array(a) if !a.is_empty() => Box::new(a.iter()),
        _ => return false,
    };
    if depth > MAX_STATE_DEPTH {
        return true;
    }
    children.into_iter().any(|child| too_deep(child, depth + 1))
}

fn has_null_in_array(value: &Value) -> bool {
    match value {
        Value::Array(a) => a.iter().any(|v| v.is_null() || has_null_in_array(v)),
        Value::Object(m) => m.values().any(has_null_in_array),
        _ => false,
    }
}

fn client_token(obj: &Map) -> Result<Option<String>, ShadowError> {
    match obj.get("clientToken") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_CLIENT_TOKEN_BYTES => Ok(Some(s.clone())),
        Some(_) => Err(ShadowError::bad_request(MSG_INVALID_CLIENT_TOKEN)),
    }
}

/// The client token of a get/delete request, whose body AWS otherwise
/// ignores: an empty or non-JSON body has no token; a bad token is still 400.
fn lenient_token(request: &[u8]) -> Result<Option<String>, Rejection> {
    match serde_json::from_slice::<Value>(request) {
        Ok(Value::Object(obj)) => client_token(&obj).map_err(|e| (e, None)),
        _ => Ok(None),
    }
}

fn request_version(obj: &Map) -> Result<Option<u64>, ShadowError> {
    match obj.get("version") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| ShadowError::bad_request(MSG_INVALID_VERSION)),
        Some(_) => Err(ShadowError::bad_request(MSG_INVALID_VERSION)),
    }
}

fn apply_section(
    section: &mut Option<Map>,
    meta: &mut Option<Map>,
    patch: &SectionPatch,
    now: u64,
) {
    match patch {
        SectionPatch::Absent => {}
        SectionPatch::Remove => {
            *section = None;
            *meta = None;
        }
        SectionPatch::Merge(fields) => {
            let mut target = section.take().unwrap_or_default();
            let mut target_meta = meta.take().unwrap_or_default();
            merge_object(&mut target, &mut target_meta, fields, now);
            if !target.is_empty() {
                *section = Some(target);
                *meta = Some(target_meta);
            }
        }
    }
}

/// Merges `patch` into `target`, keeping `meta` parallel to it: a field set to
/// `null` is removed with its metadata; objects merge key by key; anything else
/// (scalars, arrays) replaces the old value and gets fresh timestamps. An empty
/// object is a value like any other: AWS stores `{"d": {}}` as given and
/// `{"b": {"c": {}}}` over `{"b": {"c": 3}}` leaves `{"b": {"c": {}}}` (moto's
/// `test_update_desired`, verified against AWS). Objects left empty by `null`
/// removals disappear.
fn merge_object(target: &mut Map, meta: &mut Map, patch: &Map, now: u64) {
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
            meta.remove(key);
            continue;
        }
        match (value, target.get_mut(key)) {
            (Value::Object(fields), Some(Value::Object(existing))) => {
                let child_meta = meta
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !child_meta.is_object() {
                    *child_meta = Value::Object(Map::new());
                }
                if let Value::Object(child_meta) = child_meta {
                    merge_object(existing, child_meta, fields, now);
                }
                if existing.is_empty() && !fields.is_empty() {
                    target.remove(key);
                    meta.remove(key);
                }
            }
            (Value::Object(fields), _) => match without_nulls(fields) {
                Some(clean) => {
                    let clean = Value::Object(clean);
                    meta.insert(key.clone(), metadata_for(&clean, now));
                    target.insert(key.clone(), clean);
                }
                None => {
                    target.remove(key);
                    meta.remove(key);
                }
            },
            _ => {
                meta.insert(key.clone(), metadata_for(value, now));
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

/// A new object with its `null` fields dropped (recursively); `None` if only
/// nulls were there (an object given empty stays, as AWS stores it).
fn without_nulls(fields: &Map) -> Option<Map> {
    let mut out = Map::new();
    for (key, value) in fields {
        match value {
            Value::Null => {}
            Value::Object(inner) => {
                if let Some(inner) = without_nulls(inner) {
                    out.insert(key.clone(), Value::Object(inner));
                }
            }
            v => {
                out.insert(key.clone(), v.clone());
            }
        }
    }
    if out.is_empty() && !fields.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Metadata mirroring `value`: every leaf (including `null`) becomes
/// `{"timestamp": now}`; arrays get one entry per element.
fn metadata_for(value: &Value, now: u64) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), metadata_for(v, now)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| metadata_for(v, now)).collect()),
        _ => json!({ "timestamp": now }),
    }
}

/// `{"desired"?, "reported"?, "delta"?}` with absent parts left out.
fn sections(desired: Option<&Map>, reported: Option<&Map>, delta: Option<&Map>) -> Value {
    let mut out = Map::new();
    for (name, part) in [
        ("desired", desired),
        ("reported", reported),
        ("delta", delta),
    ] {
        if let Some(part) = part {
            out.insert(name.into(), Value::Object(part.clone()));
        }
    }
    Value::Object(out)
}

fn add_token(doc: &mut Value, token: Option<&str>) {
    if let (Some(token), Some(obj)) = (token, doc.as_object_mut()) {
        obj.insert("clientToken".into(), Value::String(token.to_string()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn apply(current: Option<&StoredShadow>, req: Value) -> StoredShadow {
        update(current, req.to_string().as_bytes(), 7)
            .unwrap()
            .shadow
    }

    #[test]
    fn nesting_limit_counts_arrays_and_objects_from_the_section() {
        // (case, desired section, accepted?)
        let table = [
            (
                "section + five arrays = six levels",
                json!({"a": [[[[[1]]]]]}),
                true,
            ),
            (
                "section + six arrays = seven levels",
                json!({"a": [[[[[[1]]]]]]}),
                false,
            ),
            (
                "objects inside arrays",
                json!({"a": [{"b": [{"c": 1}]}]}),
                true,
            ),
            (
                "empty containers do not add a level",
                json!({"a": {"b": {"c": {"d": {"e": {"f": []}}}}}}),
                true,
            ),
            (
                "a seventh object level",
                json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}),
                false,
            ),
        ];
        for (case, desired, ok) in table {
            let req = json!({"state": {"desired": desired}});
            let got = update(None, req.to_string().as_bytes(), 1);
            assert_eq!(got.is_ok(), ok, "{case}");
            if let Err((err, _)) = got {
                assert_eq!(err.message, MSG_TOO_DEEP, "{case}");
            }
        }
    }

    #[test]
    fn merge_rules_table() {
        // (case, stored reported, patch, resulting reported)
        let table = [
            (
                "new key added",
                json!({"a": 1}),
                json!({"b": 2}),
                json!({"a": 1, "b": 2}),
            ),
            (
                "scalar replaced by object",
                json!({"a": 1}),
                json!({"a": {"x": 1}}),
                json!({"a": {"x": 1}}),
            ),
            (
                "object replaced by scalar",
                json!({"a": {"x": 1}}),
                json!({"a": 2}),
                json!({"a": 2}),
            ),
            (
                "objects merge key by key",
                json!({"a": {"x": 1, "y": 2}}),
                json!({"a": {"y": 3}}),
                json!({"a": {"x": 1, "y": 3}}),
            ),
            (
                "an empty object merges into an object as nothing",
                json!({"a": {"x": 1}, "b": 1}),
                json!({"a": {}}),
                json!({"a": {"x": 1}, "b": 1}),
            ),
            (
                "an empty object is stored as given",
                json!({"b": 1}),
                json!({"d": {}}),
                json!({"b": 1, "d": {}}),
            ),
            (
                "an empty object replaces a scalar",
                json!({"b": {"c": 3}}),
                json!({"b": {"c": {}}}),
                json!({"b": {"c": {}}}),
            ),
            (
                "nulls inside a new object are dropped",
                json!({"b": 1}),
                json!({"a": {"x": null, "y": 1}}),
                json!({"a": {"y": 1}, "b": 1}),
            ),
            (
                "a new object of only nulls is not stored",
                json!({"b": 1}),
                json!({"a": {"x": null}}),
                json!({"b": 1}),
            ),
            (
                "arrays replace arrays",
                json!({"a": [1, 2, 3]}),
                json!({"a": [4]}),
                json!({"a": [4]}),
            ),
        ];
        for (case, stored, patch, want) in table {
            let s = apply(None, json!({"state": {"reported": stored}}));
            let s = apply(Some(&s), json!({"state": {"reported": patch}}));
            assert_eq!(
                s.reported.clone().map(Value::Object),
                Some(want.clone()),
                "{case}"
            );
            // Metadata mirrors the state's shape exactly.
            let meta = s.metadata_reported.clone().map(Value::Object).unwrap();
            assert!(
                same_shape(&want, &meta),
                "{case}: metadata {meta} vs state {want}"
            );
        }
    }

    /// Whether `meta` has a `{"timestamp"}` for every leaf of `state`.
    fn same_shape(state: &Value, meta: &Value) -> bool {
        match (state, meta) {
            (Value::Object(s), Value::Object(m)) => {
                s.len() == m.len()
                    && s.iter()
                        .all(|(k, v)| m.get(k).is_some_and(|mv| same_shape(v, mv)))
            }
            (Value::Array(s), Value::Array(m)) => {
                s.len() == m.len() && s.iter().zip(m).all(|(v, mv)| same_shape(v, mv))
            }
            (_, Value::Object(m)) => m.len() == 1 && m.get("timestamp").is_some_and(Value::is_u64),
            _ => false,
        }
    }
}
