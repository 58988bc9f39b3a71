//! The fleet registry APIs beyond things, certificates and policies, shaped
//! as botocore's `iot` model defines them:
//! - [`thing_types`]: create, describe, list, deprecate, update, delete;
//! - [`thing_groups`]: static groups with parents; policies attached to a
//!   group apply on the broker to every thing in it and in its child groups;
//! - [`dynamic_groups`]: thing groups whose members are the things a fleet
//!   indexing query matches;
//! - [`billing_groups`]: flat groups, a thing in at most one;
//! - [`tags`]: TagResource, UntagResource, ListTagsForResource;
//! - [`principals`]: the legacy principal-policy calls and
//!   ListThingPrincipalsV2, over the existing attachments;
//! - [`role_aliases`]: stored role aliases;
//! - [`domain_configurations`]: stored domain configurations;
//! - [`store`]: their SQLite tables.
//!
//! Each family has its own routes; [`routes`] merges them into the control
//! plane.

pub mod billing_groups;
pub mod domain_configurations;
pub mod dynamic_groups;
pub mod principals;
pub mod role_aliases;
pub mod store;
pub mod tags;
pub mod thing_groups;
pub mod thing_types;

use std::sync::Arc;

use axum::Router;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::CoreState;

/// Every fleet route.
pub fn routes() -> Router<Arc<CoreState>> {
    Router::new()
        .merge(thing_types::routes())
        .merge(thing_groups::routes())
        .merge(dynamic_groups::routes())
        .merge(billing_groups::routes())
        .merge(tags::routes())
        .merge(principals::routes())
        .merge(role_aliases::routes())
        .merge(domain_configurations::routes())
}

/// Names of thing types, thing groups and billing groups: `[a-zA-Z0-9:_-]`,
/// 1 to 128 characters (the same rule as thing names).
pub fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{field} '{name}' is not valid: use 1 to 128 of a-z A-Z 0-9 : _ -"
        )))
    }
}

/// Most tags a resource may carry (AWS: 50).
pub const MAX_TAGS: usize = 50;

/// Parses a `TagList` (`[{"Key": .., "Value": ..}]`) from `body[field]`;
/// a missing field is no tags.
pub fn parse_tags(
    body: &Map<String, Value>,
    field: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let list = match body.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "{field} must be a list of {{\"Key\": .., \"Value\": ..}}"
            )))
        }
    };
    if list.len() > MAX_TAGS {
        return Err(ApiError::invalid(format!(
            "{field} has {} tags; a resource takes at most {MAX_TAGS}",
            list.len()
        )));
    }
    list.iter().map(parse_tag).collect()
}

fn parse_tag(t: &Value) -> Result<(String, String), ApiError> {
    let key = t.get("Key").and_then(Value::as_str).ok_or_else(|| {
        ApiError::invalid("every tag needs a Key (a string of 1 to 128 characters)")
    })?;
    if key.is_empty() || key.chars().count() > 128 || key.starts_with("aws:") {
        return Err(ApiError::invalid(format!(
            "tag key '{key}' is not valid: use 1 to 128 characters, not starting with aws:"
        )));
    }
    let value = match t.get("Value") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "the value of tag '{key}' must be a string"
            )))
        }
    };
    if value.chars().count() > 256 {
        return Err(ApiError::invalid(format!(
            "the value of tag '{key}' is longer than 256 characters"
        )));
    }
    Ok((key.to_string(), value.to_string()))
}

/// A `TagList` in AWS's shape.
pub fn tags_json(tags: &[(String, String)]) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| serde_json::json!({"Key": k, "Value": v}))
            .collect(),
    )
}

/// An Update*Group body's required properties object (`key`) and its
/// `expectedVersion`.
pub fn update_body<'a>(
    body: &'a Map<String, Value>,
    key: &str,
) -> Result<(&'a Value, Option<i64>), ApiError> {
    let raw = body
        .get(key)
        .ok_or_else(|| ApiError::invalid(format!("{key} is required")))?;
    Ok((raw, expected_version(body)?))
}

/// `expectedVersion` from a query string (the Delete*Group calls), if given.
pub fn expected_version_query(
    q: &std::collections::HashMap<String, String>,
) -> Result<Option<i64>, ApiError> {
    q.get("expectedVersion")
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ApiError::invalid("expectedVersion must be a whole number"))
        })
        .transpose()
}

/// `expectedVersion` from a body, if given.
pub fn expected_version(body: &Map<String, Value>) -> Result<Option<i64>, ApiError> {
    match body.get("expectedVersion") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid("expectedVersion must be a whole number")),
    }
}

/// Checks an AttachPolicy target: one of this account's certificates, or an
/// existing thing group (whose things then get the policy, as on AWS).
pub fn check_policy_target(state: &CoreState, target: &str) -> Result<(), ApiError> {
    if let Some(name) = target.strip_prefix(&state.arn("thinggroup/")) {
        if state.store.group(store::GroupKind::Thing, name)?.is_none() {
            return Err(store::group_not_found(store::GroupKind::Thing, name));
        }
        // Developer Guide, Dynamic thing groups: "Dynamic thing groups
        // can't have policies applied to them."
        if state.store.dynamic_group(name)?.is_some() {
            return Err(ApiError::invalid(format!(
                "{name} is a dynamic thing group: dynamic thing groups can't have policies applied to them; attach the policy to a static thing group or a certificate"
            )));
        }
        return Ok(());
    }
    crate::control::certificate_of_principal(state, target).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_aws_pattern() {
        for good in ["a", "robots:lab_1-2", &"x".repeat(128)] {
            assert!(check_name("thingTypeName", good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "a b", "é", &"x".repeat(129)] {
            let e = check_name("thingTypeName", bad).unwrap_err();
            assert_eq!(e.kind, "InvalidRequestException", "{bad}");
            assert!(e.message.contains("thingTypeName"), "{}", e.message);
        }
    }

    #[test]
    fn tags_parse_and_refuse_bad_ones() {
        let body = json!({"tags": [{"Key": "env", "Value": "lab"}, {"Key": "empty"}]});
        let tags = parse_tags(body.as_object().unwrap(), "tags").unwrap();
        assert_eq!(
            tags,
            vec![("env".into(), "lab".into()), ("empty".into(), "".into())]
        );
        assert_eq!(tags_json(&tags)[0], json!({"Key": "env", "Value": "lab"}));
        for bad in [
            json!({"tags": "env=lab"}),
            json!({"tags": [{"Value": "x"}]}),
            json!({"tags": [{"Key": "aws:reserved", "Value": "x"}]}),
            json!({"tags": [{"Key": "k", "Value": 3}]}),
            json!({"tags": [{"Key": "k", "Value": "v".repeat(257)}]}),
            json!({"tags": (0..51).map(|i| json!({"Key": format!("k{i}"), "Value": ""})).collect::<Vec<_>>()}),
        ] {
            assert!(parse_tags(body_of(&bad), "tags").is_err(), "{bad}");
        }
        assert!(parse_tags(&Map::new(), "tags").unwrap().is_empty());
    }

    fn body_of(v: &Value) -> &Map<String, Value> {
        v.as_object().unwrap()
    }

    #[test]
    fn expected_version_is_a_number() {
        assert_eq!(expected_version(body_of(&json!({}))).unwrap(), None);
        assert_eq!(
            expected_version(body_of(&json!({"expectedVersion": 3}))).unwrap(),
            Some(3)
        );
        assert!(expected_version(body_of(&json!({"expectedVersion": "3"}))).is_err());
    }
}
