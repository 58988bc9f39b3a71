//! The fleet indexing configuration (Get/UpdateIndexingConfiguration),
//! validated as AWS documents it (pure, no I/O).
//!
//! The local core starts with thing indexing on (registry, classic shadow and
//! connectivity), so SearchIndex works without set-up; AWS starts with
//! `thingIndexingMode` OFF. `thingIndexingMode: OFF` removes the index here
//! as there.

use serde_json::{json, Map, Value};

/// Named shadows one configuration may list (AWS's default quota: 10).
pub const MAX_NAMED_SHADOWS: usize = 10;

/// The account's indexing configuration, as GetIndexingConfiguration returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexingConfig {
    /// `thingIndexingConfiguration`, every mode filled in.
    pub thing: Map<String, Value>,
    /// `thingGroupIndexingConfiguration`.
    pub group: Map<String, Value>,
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Default for IndexingConfig {
    fn default() -> Self {
        IndexingConfig {
            thing: object(json!({
                "thingIndexingMode": "REGISTRY_AND_SHADOW",
                "thingConnectivityIndexingMode": "STATUS",
                "deviceDefenderIndexingMode": "OFF",
                "namedShadowIndexingMode": "OFF",
            })),
            group: object(json!({ "thingGroupIndexingMode": "OFF" })),
        }
    }
}

impl IndexingConfig {
    fn mode(&self, key: &str) -> &str {
        self.thing.get(key).and_then(Value::as_str).unwrap_or("OFF")
    }

    /// Whether the `AWS_Things` index exists.
    pub fn things_on(&self) -> bool {
        self.mode("thingIndexingMode") != "OFF"
    }

    /// Whether shadows are indexed (`REGISTRY_AND_SHADOW`).
    pub fn shadow_on(&self) -> bool {
        self.mode("thingIndexingMode") == "REGISTRY_AND_SHADOW"
    }

    /// Whether `connectivity.*` is indexed (`STATUS`).
    pub fn connectivity_on(&self) -> bool {
        self.mode("thingConnectivityIndexingMode") == "STATUS"
    }

    /// The named shadows indexed: those in `filter.namedShadowNames`, when
    /// `namedShadowIndexingMode` is ON and shadows are indexed.
    pub fn named_shadows(&self) -> Vec<String> {
        if !self.shadow_on() || self.mode("namedShadowIndexingMode") != "ON" {
            return Vec::new();
        }
        self.thing
            .get("filter")
            .and_then(|f| f.get("namedShadowNames"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the `AWS_ThingGroups` index exists.
    pub fn groups_on(&self) -> bool {
        self.group
            .get("thingGroupIndexingMode")
            .and_then(Value::as_str)
            == Some("ON")
    }

    /// DescribeIndex's `schema` for `AWS_Things` (botocore's IndexSchema):
    /// named shadows or Device Defender make it MULTI_INDEXING_MODE.
    pub fn thing_schema(&self) -> &'static str {
        let multi = self.mode("namedShadowIndexingMode") == "ON"
            || self.mode("deviceDefenderIndexingMode") == "VIOLATIONS";
        match (multi, self.shadow_on(), self.connectivity_on()) {
            (true, _, _) => "MULTI_INDEXING_MODE",
            (false, false, false) => "REGISTRY",
            (false, true, false) => "REGISTRY_AND_SHADOW",
            (false, false, true) => "REGISTRY_AND_CONNECTIVITY_STATUS",
            (false, true, true) => "REGISTRY_AND_SHADOW_AND_CONNECTIVITY_STATUS",
        }
    }

    /// The GetIndexingConfiguration response.
    pub fn to_json(&self) -> Value {
        json!({
            "thingIndexingConfiguration": self.thing,
            "thingGroupIndexingConfiguration": self.group,
        })
    }

    /// Reads a stored configuration (the response's shape); a damaged one
    /// reads as the default.
    pub fn from_json(v: &Value) -> Self {
        let d = IndexingConfig::default();
        IndexingConfig {
            thing: v
                .get("thingIndexingConfiguration")
                .cloned()
                .map(object)
                .unwrap_or(d.thing),
            group: v
                .get("thingGroupIndexingConfiguration")
                .cloned()
                .map(object)
                .unwrap_or(d.group),
        }
    }

    /// Applies an UpdateIndexingConfiguration body: each configuration given
    /// replaces the stored one whole; an error names the field at fault.
    pub fn update(&mut self, body: &Map<String, Value>) -> Result<(), String> {
        let thing = body.get("thingIndexingConfiguration");
        let group = body.get("thingGroupIndexingConfiguration");
        let thing = thing.map(validate_thing).transpose()?;
        let group = group.map(validate_group).transpose()?;
        if let Some(t) = thing {
            self.thing = t;
        }
        if let Some(g) = group {
            self.group = g;
        }
        Ok(())
    }
}

fn one_of(
    m: &Map<String, Value>,
    key: &str,
    allowed: &[&str],
    required: bool,
) -> Result<String, String> {
    match m.get(key) {
        None if !required => Ok("OFF".into()),
        None => Err(format!("{key} is required ({})", allowed.join(", "))),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        Some(v) => Err(format!(
            "{key} is {v}; it must be one of {}",
            allowed.join(", ")
        )),
    }
}

fn validate_thing(v: &Value) -> Result<Map<String, Value>, String> {
    let m = v
        .as_object()
        .ok_or("thingIndexingConfiguration must be an object")?;
    let mode = one_of(
        m,
        "thingIndexingMode",
        &["OFF", "REGISTRY", "REGISTRY_AND_SHADOW"],
        true,
    )?;
    let conn = one_of(
        m,
        "thingConnectivityIndexingMode",
        &["OFF", "STATUS"],
        false,
    )?;
    let dd = one_of(
        m,
        "deviceDefenderIndexingMode",
        &["OFF", "VIOLATIONS"],
        false,
    )?;
    let named = one_of(m, "namedShadowIndexingMode", &["OFF", "ON"], false)?;
    if mode == "OFF" && (conn != "OFF" || dd != "OFF" || named != "OFF") {
        return Err(
            "thingIndexingMode OFF turns thing indexing off: connectivity, Device Defender \
                    and named shadow indexing need REGISTRY or REGISTRY_AND_SHADOW"
                .into(),
        );
    }
    let mut out = object(json!({
        "thingIndexingMode": mode,
        "thingConnectivityIndexingMode": conn,
        "deviceDefenderIndexingMode": dd,
        "namedShadowIndexingMode": named,
    }));
    for key in ["managedFields", "customFields"] {
        if let Some(f) = m.get(key) {
            out.insert(key.into(), validate_fields(key, f)?);
        }
    }
    if let Some(f) = m.get("filter") {
        out.insert("filter".into(), validate_filter(f)?);
    }
    Ok(out)
}

fn validate_group(v: &Value) -> Result<Map<String, Value>, String> {
    let m = v
        .as_object()
        .ok_or("thingGroupIndexingConfiguration must be an object")?;
    let mode = one_of(m, "thingGroupIndexingMode", &["OFF", "ON"], true)?;
    let mut out = object(json!({ "thingGroupIndexingMode": mode }));
    for key in ["managedFields", "customFields"] {
        if let Some(f) = m.get(key) {
            out.insert(key.into(), validate_fields(key, f)?);
        }
    }
    Ok(out)
}

fn validate_fields(key: &str, v: &Value) -> Result<Value, String> {
    let list = v.as_array().ok_or(format!("{key} must be a list"))?;
    for f in list {
        let name = f.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            return Err(format!("each of {key} needs a name"));
        }
        match f.get("type").and_then(Value::as_str) {
            None | Some("Number" | "String" | "Boolean") => {}
            Some(t) => {
                return Err(format!(
                    "{key} {name} has type {t}; it must be Number, String or Boolean"
                ))
            }
        }
    }
    Ok(v.clone())
}

fn validate_filter(v: &Value) -> Result<Value, String> {
    let names = v.get("namedShadowNames");
    if let Some(names) = names {
        let list = names
            .as_array()
            .filter(|a| a.iter().all(Value::is_string))
            .ok_or("filter.namedShadowNames must be a list of shadow names")?;
        if list.len() > MAX_NAMED_SHADOWS {
            return Err(format!(
                "filter.namedShadowNames has {} names; at most {MAX_NAMED_SHADOWS} may be indexed",
                list.len()
            ));
        }
    }
    Ok(v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(c: &mut IndexingConfig, body: Value) -> Result<(), String> {
        c.update(body.as_object().unwrap())
    }

    #[test]
    fn the_local_default_indexes_registry_shadow_and_connectivity() {
        let c = IndexingConfig::default();
        assert!(c.things_on() && c.shadow_on() && c.connectivity_on());
        assert!(!c.groups_on());
        assert!(c.named_shadows().is_empty());
        assert_eq!(
            c.thing_schema(),
            "REGISTRY_AND_SHADOW_AND_CONNECTIVITY_STATUS"
        );
    }

    #[test]
    fn an_update_replaces_the_configuration_given_and_fills_modes() {
        let mut c = IndexingConfig::default();
        update(
            &mut c,
            json!({"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY"}}),
        )
        .unwrap();
        assert!(c.things_on() && !c.shadow_on() && !c.connectivity_on());
        assert_eq!(c.thing_schema(), "REGISTRY");
        assert_eq!(c.thing["namedShadowIndexingMode"], "OFF");
        assert!(!c.groups_on(), "the group configuration stays");
        update(
            &mut c,
            json!({"thingIndexingConfiguration": {
                "thingIndexingMode": "REGISTRY_AND_SHADOW",
                "namedShadowIndexingMode": "ON",
                "filter": {"namedShadowNames": ["lights"]}},
              "thingGroupIndexingConfiguration": {"thingGroupIndexingMode": "ON"}}),
        )
        .unwrap();
        assert_eq!(c.named_shadows(), ["lights"]);
        assert_eq!(c.thing_schema(), "MULTI_INDEXING_MODE");
        assert!(c.groups_on());
        let back = IndexingConfig::from_json(&c.to_json());
        assert_eq!(back, c);
    }

    #[test]
    fn refuses_what_aws_refuses() {
        for (body, needle) in [
            (
                json!({"thingIndexingConfiguration": {}}),
                "thingIndexingMode is required",
            ),
            (
                json!({"thingIndexingConfiguration": {"thingIndexingMode": "ON"}}),
                "one of",
            ),
            (
                json!({"thingIndexingConfiguration": {"thingIndexingMode": "OFF",
                    "thingConnectivityIndexingMode": "STATUS"}}),
                "REGISTRY",
            ),
            (
                json!({"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY",
                    "customFields": [{"name": "x", "type": "Date"}]}}),
                "Date",
            ),
            (
                json!({"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY",
                    "filter": {"namedShadowNames": ["a","b","c","d","e","f","g","h","i","j","k"]}}}),
                "at most 10",
            ),
            (
                json!({"thingGroupIndexingConfiguration": {}}),
                "thingGroupIndexingMode",
            ),
        ] {
            let mut c = IndexingConfig::default();
            let e = update(&mut c, body.clone()).unwrap_err();
            assert!(e.contains(needle), "{body}: {e}");
            assert_eq!(
                c,
                IndexingConfig::default(),
                "a refused update changes nothing"
            );
        }
    }
}
