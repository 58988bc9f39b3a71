//! Tags: TagResource, UntagResource and ListTagsForResource on thing types,
//! thing groups, billing groups, policies, role aliases and domain
//! configurations (the `tags` of
//! their Create calls land in the same place). Things take attributes, not
//! tags, on AWS: CreateThing has no `tags`, and a thing ARN is refused here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use super::store::GroupKind;
use super::{parse_tags, tags_json, MAX_TAGS};
use crate::control::{body_object, empty, ok, required_str, ApiResult, Q};
use crate::error::ApiError;
use crate::CoreState;

/// Tag routes.
pub fn routes() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/tags", post(tag).get(list))
        .route("/untag", post(untag))
}

/// Resource types that carry tags here.
pub const TAGGABLE: &[&str] = &[
    "thingtype",
    "thinggroup",
    "billinggroup",
    "policy",
    "rolealias",
    "domainconfiguration",
];

/// Splits one of this account's ARNs into `(resource type, name)` (pure).
pub fn parse_arn<'a>(account_prefix: &str, arn: &'a str) -> Result<(&'a str, &'a str), ApiError> {
    let rest = arn.strip_prefix(account_prefix).ok_or_else(|| {
        ApiError::invalid(format!(
            "resourceArn '{arn}' is not an ARN of this account's resources ({account_prefix}TYPE/NAME)"
        ))
    })?;
    let (kind, name) = rest.split_once('/').ok_or_else(|| {
        ApiError::invalid(format!(
            "resourceArn '{arn}' has no resource name (TYPE/NAME)"
        ))
    })?;
    if name.is_empty() {
        return Err(ApiError::invalid(format!(
            "resourceArn '{arn}' has an empty name"
        )));
    }
    if kind == "thing" {
        return Err(ApiError::invalid(format!(
            "{arn} is a thing: AWS IoT things carry attributes, not tags (update-thing --attribute-payload)"
        )));
    }
    if !TAGGABLE.contains(&kind) {
        return Err(ApiError::invalid(format!(
            "resource type '{kind}' of {arn} cannot be tagged in the local core; it tags {}",
            TAGGABLE.join(", ")
        )));
    }
    Ok((kind, name))
}

/// The resource an ARN names, checked to exist.
fn resource(state: &CoreState, arn: &str) -> Result<(String, String), ApiError> {
    let prefix = state.arn("");
    let (kind, name) = parse_arn(&prefix, arn)?;
    // A domain configuration's ARN ends in NAME/ID.
    let name = match kind {
        "domainconfiguration" => name.split('/').next().unwrap_or(name),
        _ => name,
    };
    let exists = match kind {
        "thingtype" => state.store.thing_type(name)?.is_some(),
        "thinggroup" => state.store.group(GroupKind::Thing, name)?.is_some(),
        "billinggroup" => state.store.group(GroupKind::Billing, name)?.is_some(),
        "policy" => state.store.policy(name)?.is_some(),
        "rolealias" => state.store.role_alias(name)?.is_some(),
        "domainconfiguration" => state.store.domain_configuration(name)?.is_some(),
        _ => false,
    };
    if !exists {
        return Err(ApiError::not_found(format!("{arn} does not exist")));
    }
    Ok((kind.to_string(), name.to_string()))
}

async fn tag(State(state): State<Arc<CoreState>>, body: Bytes) -> ApiResult {
    let body = body_object(&body)?;
    let arn = required_str(&body, "resourceArn")?;
    if !body.contains_key("tags") {
        return Err(ApiError::invalid("tags is required"));
    }
    let tags = parse_tags(&body, "tags")?;
    let (kind, name) = resource(&state, arn)?;
    let mut keys: Vec<String> = state
        .store
        .tags(&kind, &name)?
        .into_iter()
        .map(|t| t.0)
        .collect();
    keys.extend(tags.iter().map(|t| t.0.clone()));
    keys.sort();
    keys.dedup();
    if keys.len() > MAX_TAGS {
        return Err(ApiError::new(
            410,
            "LimitExceededException",
            format!(
                "{arn} would have {} tags; a resource takes at most {MAX_TAGS}",
                keys.len()
            ),
        ));
    }
    state.store.tag(&kind, &name, &tags)?;
    empty()
}

async fn untag(State(state): State<Arc<CoreState>>, body: Bytes) -> ApiResult {
    let body = body_object(&body)?;
    let arn = required_str(&body, "resourceArn")?;
    let keys: Vec<String> = match body.get("tagKeys") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::invalid("tagKeys must be a list of strings"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(ApiError::invalid("tagKeys is required: a list of tag keys")),
    };
    let (kind, name) = resource(&state, arn)?;
    state.store.untag(&kind, &name, &keys)?;
    empty()
}

async fn list(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let arn = q
        .get("resourceArn")
        .ok_or_else(|| ApiError::invalid("resourceArn is required"))?;
    let (kind, name) = resource(&state, arn)?;
    // At most 50 tags: one page always holds them all.
    ok(json!({ "tags": tags_json(&state.store.tags(&kind, &name)?) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_split_into_type_and_name() {
        let p = "arn:aws:iot:us-east-1:123456789012:";
        assert_eq!(
            parse_arn(p, &format!("{p}thinggroup/lab")).unwrap(),
            ("thinggroup", "lab")
        );
        assert_eq!(
            parse_arn(p, &format!("{p}policy/a/b")).unwrap(),
            ("policy", "a/b")
        );
        for bad in [
            "arn:aws:iot:eu-west-1:123456789012:thinggroup/lab".to_string(),
            format!("{p}thinggroup"),
            format!("{p}thinggroup/"),
            format!("{p}thing/robot-1"),
            format!("{p}cert/abc"),
        ] {
            let e = parse_arn(p, &bad).unwrap_err();
            assert_eq!(e.kind, "InvalidRequestException", "{bad}");
        }
        let e = parse_arn(p, &format!("{p}thing/robot-1")).unwrap_err();
        assert!(e.message.contains("attributes"), "{}", e.message);
    }
}
