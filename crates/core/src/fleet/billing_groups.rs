//! Billing groups: Create/Describe/Update/Delete/ListBillingGroups,
//! AddThingToBillingGroup, RemoveThingFromBillingGroup and
//! ListThingsInBillingGroup. A thing is in at most one billing group;
//! adding it to another moves it. DescribeThing reports it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::{json, Map, Value};

use super::store::{group_not_found, Group, GroupKind};
use super::thing_groups::resolve;
use super::{check_name, expected_version_query, parse_tags, update_body};
use crate::control::{
    body_object, empty, existing_thing, ok, page_response, paginate, ApiResult, Q,
};
use crate::error::ApiError;
use crate::store::now_secs;
use crate::CoreState;

const KIND: GroupKind = GroupKind::Billing;

/// Billing-group routes.
pub fn routes() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/billing-groups", get(list))
        .route(
            "/billing-groups/{name}",
            post(create).get(describe).patch(update).delete(delete),
        )
        .route("/billing-groups/{name}/things", get(list_things))
        .route("/billing-groups/addThingToBillingGroup", put(add_thing))
        .route(
            "/billing-groups/removeThingFromBillingGroup",
            put(remove_thing),
        )
}

/// The billing group a thing is in, if any (for DescribeThing).
pub fn of_thing(state: &CoreState, thing: &str) -> Result<Option<String>, ApiError> {
    Ok(state.store.groups_of_thing(KIND, thing)?.into_iter().next())
}

/// The billing group a CreateThing names (`billingGroupName`), checked to exist.
pub fn requested(state: &CoreState, body: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match body.get("billingGroupName") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(g)) => existing(state, g).map(|g| Some(g.name)),
        Some(_) => Err(ApiError::invalid("billingGroupName must be a string")),
    }
}

/// Puts a thing in a billing group (out of any other).
pub fn add(state: &CoreState, group: &str, thing: &str) -> Result<(), ApiError> {
    state.store.add_group_member(KIND, group, thing)
}

fn properties_from(v: Option<&Value>) -> Result<Map<String, Value>, ApiError> {
    let props = match v {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(ApiError::invalid(
                "billingGroupProperties must be an object",
            ))
        }
    };
    if let Some(d) = props.get("billingGroupDescription") {
        if d.as_str().is_none_or(|s| s.chars().count() > 2028) {
            return Err(ApiError::invalid(
                "billingGroupDescription must be a string of at most 2028 characters",
            ));
        }
    }
    Ok(props)
}

fn arn(state: &CoreState, name: &str) -> String {
    state.arn(&format!("billinggroup/{name}"))
}

fn existing(state: &CoreState, name: &str) -> Result<Group, ApiError> {
    state
        .store
        .group(KIND, name)?
        .ok_or_else(|| group_not_found(KIND, name))
}

async fn create(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    check_name("billingGroupName", &name)?;
    let body = body_object(&body)?;
    let props = properties_from(body.get("billingGroupProperties"))?;
    let tags = parse_tags(&body, "tags")?;
    let g = Group {
        name: name.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        parent: None,
        properties: props,
        version: 1,
        created: now_secs(),
    };
    // AWS: the same name and configuration succeeds; another configuration
    // is ResourceAlreadyExistsException (API_CreateBillingGroup).
    let g = match state.store.create_group(KIND, &g, &tags)? {
        None => g,
        Some(old) if old.properties == g.properties => old,
        Some(_) => {
            return Err(ApiError::already_exists(format!(
                "Billing group {name} already exists."
            )))
        }
    };
    ok(json!({
        "billingGroupName": g.name,
        "billingGroupArn": arn(&state, &g.name),
        "billingGroupId": g.id,
    }))
}

async fn describe(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> ApiResult {
    let g = existing(&state, &name)?;
    ok(json!({
        "billingGroupName": g.name,
        "billingGroupId": g.id,
        "billingGroupArn": arn(&state, &g.name),
        "version": g.version,
        "billingGroupProperties": g.properties,
        "billingGroupMetadata": { "creationDate": g.created },
    }))
}

async fn update(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let (raw, expected) = update_body(&body, "billingGroupProperties")?;
    let props = properties_from(Some(raw))?;
    let version = state
        .store
        .update_group(KIND, &name, expected, |p| *p = props)?;
    ok(json!({ "version": version }))
}

async fn delete(State(state): State<Arc<CoreState>>, Path(name): Path<String>, q: Q) -> ApiResult {
    let expected = expected_version_query(&q)?;
    // DeleteBillingGroup has no ResourceNotFoundException in AWS's model:
    // deleting a missing group succeeds.
    state
        .store
        .delete_group(KIND, &name, &arn(&state, &name), expected)?;
    empty()
}

async fn list(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let mut names: Vec<String> = state
        .store
        .groups(KIND)?
        .into_iter()
        .map(|g| g.name)
        .collect();
    if let Some(prefix) = q.get("namePrefixFilter") {
        names.retain(|n| n.starts_with(prefix.as_str()));
    }
    names.sort();
    let (page, next) = paginate(&names, &q, "maxResults", "nextToken", 250)?;
    let items: Vec<Value> = page
        .iter()
        .map(|n| json!({"groupName": n, "groupArn": arn(&state, n)}))
        .collect();
    page_response("billingGroups", json!(items), "nextToken", next)
}

async fn list_things(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    q: Q,
) -> ApiResult {
    existing(&state, &name)?;
    let things = state.store.group_members(KIND, &[name])?;
    let (page, next) = paginate(&things, &q, "maxResults", "nextToken", 250)?;
    page_response("things", json!(page), "nextToken", next)
}

fn member_request(
    state: &CoreState,
    body: &Map<String, Value>,
) -> Result<(String, String), ApiError> {
    let group = resolve(
        body,
        "billingGroupName",
        "billingGroupArn",
        &state.arn("billinggroup/"),
    )?;
    let thing = resolve(body, "thingName", "thingArn", &state.arn("thing/"))?;
    existing(state, &group)?;
    existing_thing(state, &thing)?;
    Ok((group, thing))
}

async fn add_thing(State(state): State<Arc<CoreState>>, body: Bytes) -> ApiResult {
    let body = body_object(&body)?;
    let (group, thing) = member_request(&state, &body)?;
    state.store.add_group_member(KIND, &group, &thing)?;
    state.dynamic.thing(&thing);
    empty()
}

async fn remove_thing(State(state): State<Arc<CoreState>>, body: Bytes) -> ApiResult {
    let body = body_object(&body)?;
    let (group, thing) = member_request(&state, &body)?;
    state.store.remove_group_member(KIND, &group, &thing)?;
    state.dynamic.thing(&thing);
    empty()
}
