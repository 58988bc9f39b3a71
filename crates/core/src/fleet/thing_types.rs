//! Thing types: CreateThingType, DescribeThingType, ListThingTypes,
//! UpdateThingType, DeprecateThingType (and its undo) and DeleteThingType.
//!
//! As on AWS, a deprecated type takes no new things, and a type is deleted
//! only once it has been deprecated for five minutes and no thing uses it
//! (the wait is `GOPIGO_CORE_THING_TYPE_DELETE_WAIT` seconds, for tests).

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::store::ThingType;
use super::{check_name, parse_tags};
use crate::control::{
    body_object, decode_token, empty, encode_token, ok, page_response, page_size, ApiResult, Q,
};
use crate::error::ApiError;
use crate::store::now_secs;
use crate::CoreState;

/// How long a type must have been deprecated before it can be deleted (AWS:
/// "You must wait five minutes after you deprecate a thing type before you
/// can delete it").
pub const DELETE_WAIT_SECS: f64 = 300.0;

/// The wait, from `GOPIGO_CORE_THING_TYPE_DELETE_WAIT` when set (tests).
fn delete_wait() -> f64 {
    static WAIT: OnceLock<f64> = OnceLock::new();
    *WAIT.get_or_init(|| {
        std::env::var("GOPIGO_CORE_THING_TYPE_DELETE_WAIT")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v >= 0.0)
            .unwrap_or(DELETE_WAIT_SECS)
    })
}

/// Thing-type routes.
pub fn routes() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/thing-types", get(list))
        .route(
            "/thing-types/{name}",
            post(create).get(describe).patch(update).delete(delete),
        )
        .route("/thing-types/{name}/deprecate", post(deprecate))
}

/// Validates `thingTypeProperties` (description up to 2028 characters, at
/// most 3 searchable attributes).
pub fn properties_from(body: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let props = match body.get("thingTypeProperties") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::invalid("thingTypeProperties must be an object")),
    };
    if let Some(d) = props.get("thingTypeDescription") {
        match d.as_str() {
            Some(s) if s.chars().count() <= 2028 => {}
            _ => {
                return Err(ApiError::invalid(
                    "thingTypeDescription must be a string of at most 2028 characters",
                ))
            }
        }
    }
    if let Some(a) = props.get("searchableAttributes") {
        let ok = a
            .as_array()
            .is_some_and(|l| l.len() <= 3 && l.iter().all(Value::is_string));
        if !ok {
            return Err(ApiError::invalid(
                "searchableAttributes must be a list of at most 3 attribute names",
            ));
        }
    }
    Ok(props)
}

/// Whether a deprecated type may go: deprecated for `wait` seconds by `now`
/// and used by no thing (pure).
pub fn check_delete(t: &ThingType, users: i64, now: f64, wait: f64) -> Result<(), ApiError> {
    let name = &t.name;
    if !t.deprecated {
        return Err(ApiError::invalid(format!(
            "Thing Type {name} is not deprecated: deprecate it (deprecate-thing-type), wait 5 minutes, then delete it"
        )));
    }
    let since = now - t.deprecation_date.unwrap_or(now);
    if since < wait {
        return Err(ApiError::invalid(format!(
            "Thing Type {name} was deprecated {since:.0} seconds ago; AWS IoT deletes a thing type only 5 minutes after it is deprecated, so retry in {:.0} seconds",
            (wait - since).ceil()
        )));
    }
    if users > 0 {
        return Err(ApiError::invalid(format!(
            "Thing Type {name} cannot be deleted: {users} thing(s) still use it; remove it from them first (update-thing --remove-thing-type)"
        )));
    }
    Ok(())
}

fn type_json(state: &CoreState, t: &ThingType) -> Value {
    let mut meta = json!({ "deprecated": t.deprecated, "creationDate": t.created });
    if let Some(d) = t.deprecation_date {
        meta["deprecationDate"] = json!(d);
    }
    json!({
        "thingTypeName": t.name,
        "thingTypeId": t.id,
        "thingTypeArn": state.arn(&format!("thingtype/{}", t.name)),
        "thingTypeProperties": t.properties,
        "thingTypeMetadata": meta,
    })
}

fn existing(state: &CoreState, name: &str) -> Result<ThingType, ApiError> {
    state
        .store
        .thing_type(name)?
        .ok_or_else(|| ApiError::not_found(format!("Thing Type {name} does not exist")))
}

/// The type a thing may be given by CreateThing or UpdateThing: it must
/// exist and not be deprecated (AWS's texts, typo included, as moto records
/// them). `creating` picks the text.
pub fn usable_type(state: &CoreState, name: &str, creating: bool) -> Result<String, ApiError> {
    let t = existing(state, name)?;
    if t.deprecated {
        return Err(ApiError::invalid(if creating {
            format!("Can not create new thing with depreated thing type:{name}")
        } else {
            format!("Can not update a thing to use deprecated thing type: {name}")
        }));
    }
    Ok(t.name)
}

async fn create(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    check_name("thingTypeName", &name)?;
    let body = body_object(&body)?;
    let properties = properties_from(&body)?;
    let tags = parse_tags(&body, "tags")?;
    let t = ThingType {
        name: name.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        properties,
        deprecated: false,
        deprecation_date: None,
        created: now_secs(),
    };
    let t = match state.store.create_thing_type(&t, &tags)? {
        None => t,
        Some(old) if old.properties == t.properties => old,
        Some(_) => {
            return Err(ApiError::already_exists(format!(
                "Thing Type {name} already exists with different properties; use update-thing-type to change it"
            )))
        }
    };
    ok(json!({
        "thingTypeName": t.name,
        "thingTypeArn": state.arn(&format!("thingtype/{}", t.name)),
        "thingTypeId": t.id,
    }))
}

async fn describe(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> ApiResult {
    let t = existing(&state, &name)?;
    ok(type_json(&state, &t))
}

async fn list(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let limit = page_size(&q, "maxResults", 50)?;
    let after = match decode_token(&q, "nextToken")? {
        None => 0,
        Some(t) => t.parse::<i64>().map_err(|_| {
            ApiError::invalid("nextToken is not a token this API returned; list again without it")
        })?,
    };
    let prefix = q.get("thingTypeName").map(String::as_str).unwrap_or("");
    let mut rows = state.store.list_thing_types(prefix, after, limit + 1)?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(pos, _)| encode_token(&pos.to_string()))
    } else {
        None
    };
    let items: Vec<Value> = rows
        .iter()
        .map(|(_, t)| {
            let mut v = type_json(&state, t);
            if let Some(o) = v.as_object_mut() {
                o.remove("thingTypeId");
            }
            v
        })
        .collect();
    page_response("thingTypes", json!(items), "nextToken", next)
}

async fn update(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let changes = properties_from(&body)?;
    let mut t = existing(&state, &name)?;
    for (k, v) in changes {
        t.properties.insert(k, v);
    }
    state
        .store
        .set_thing_type_properties(&name, &t.properties)?;
    empty()
}

async fn deprecate(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let undo = match body.get("undoDeprecate") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("undoDeprecate must be true or false")),
    };
    if !state.store.set_thing_type_deprecated(&name, !undo)? {
        return Err(ApiError::not_found(format!(
            "Thing Type {name} does not exist"
        )));
    }
    empty()
}

async fn delete(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> ApiResult {
    let wait = delete_wait();
    state
        .store
        .delete_thing_type(&name, |t, users| check_delete(t, users, now_secs(), wait))?;
    empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(deprecated: bool, date: Option<f64>) -> ThingType {
        ThingType {
            name: "robot".into(),
            id: "id".into(),
            properties: Map::new(),
            deprecated,
            deprecation_date: date,
            created: 0.0,
        }
    }

    #[test]
    fn delete_follows_aws_rules() {
        let table = [
            (ty(false, None), 0, 1000.0, Err("not deprecated")),
            (
                ty(true, Some(900.0)),
                0,
                1000.0,
                Err("retry in 200 seconds"),
            ),
            (ty(true, Some(700.0)), 0, 1000.0, Ok(())),
            (
                ty(true, Some(700.0)),
                2,
                1000.0,
                Err("2 thing(s) still use it"),
            ),
            // Undeprecated after a deprecation: refused again.
            (ty(false, Some(100.0)), 0, 1000.0, Err("not deprecated")),
        ];
        for (t, users, now, want) in table {
            let got = check_delete(&t, users, now, DELETE_WAIT_SECS);
            match want {
                Ok(()) => assert!(got.is_ok(), "{t:?}: {got:?}"),
                Err(text) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.kind, "InvalidRequestException");
                    assert!(e.message.contains(text), "{}", e.message);
                }
            }
        }
    }

    #[test]
    fn properties_are_checked() {
        let ok_body = json!({"thingTypeProperties": {"thingTypeDescription": "a robot", "searchableAttributes": ["model"]}});
        assert_eq!(
            properties_from(ok_body.as_object().unwrap()).unwrap()["searchableAttributes"],
            json!(["model"])
        );
        for bad in [
            json!({"thingTypeProperties": "x"}),
            json!({"thingTypeProperties": {"thingTypeDescription": 3}}),
            json!({"thingTypeProperties": {"searchableAttributes": ["a", "b", "c", "d"]}}),
        ] {
            assert!(properties_from(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }
}
