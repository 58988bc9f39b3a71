//! Static thing groups: Create/Describe/Update/Delete/ListThingGroups,
//! AddThingToThingGroup, RemoveThingFromThingGroup, ListThingsInThingGroup
//! (recursive too), ListThingGroupsForThing and UpdateThingGroupsForThing.
//!
//! Groups nest up to 7 levels. A policy attached to a group (AttachPolicy
//! with the group's ARN) applies to every thing in it and in its child
//! groups: the broker's authority reads them through
//! [`Store::group_policy_documents_for_principal`](crate::store::Store::group_policy_documents_for_principal),
//! and every membership change invalidates its cache.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::{json, Map, Value};

use super::store::{Group, GroupKind};
use super::{check_name, expected_version_query, parse_tags, update_body};
use crate::control::{
    body_object, empty, existing_thing, ok, page_response, paginate, query_bool, ApiResult, Q,
};
use crate::error::ApiError;
use crate::store::now_secs;
use crate::CoreState;

const KIND: GroupKind = GroupKind::Thing;

/// Deepest hierarchy AWS allows.
pub const MAX_DEPTH: usize = 7;

/// Most static groups a thing may be in (AWS: 10).
pub const MAX_GROUPS_PER_THING: usize = 10;

/// Thing-group routes.
pub fn routes() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/thing-groups", get(list))
        .route(
            "/thing-groups/{name}",
            post(create).get(describe).patch(update).delete(delete),
        )
        .route("/thing-groups/{name}/things", get(list_things))
        .route("/thing-groups/addThingToThingGroup", put(add_thing))
        .route("/thing-groups/removeThingFromThingGroup", put(remove_thing))
        .route(
            "/thing-groups/updateThingGroupsForThing",
            put(update_for_thing),
        )
        .route("/things/{name}/thing-groups", get(groups_for_thing))
}

/// Validates `thingGroupProperties` (description, attributes of strings).
pub fn properties_from(v: Option<&Value>) -> Result<Map<String, Value>, ApiError> {
    let props = match v {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::invalid("thingGroupProperties must be an object")),
    };
    if let Some(d) = props.get("thingGroupDescription") {
        if d.as_str().is_none_or(|s| s.chars().count() > 2028) {
            return Err(ApiError::invalid(
                "thingGroupDescription must be a string of at most 2028 characters",
            ));
        }
    }
    if let Some(p) = props.get("attributePayload") {
        let attrs = p.get("attributes").unwrap_or(&Value::Null);
        let ok = attrs.is_null()
            || attrs
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string));
        if !ok {
            return Err(ApiError::invalid(
                "attributePayload.attributes must be an object of strings",
            ));
        }
    }
    Ok(props)
}

/// Stored form of new properties: attributes without empty values, no
/// `merge` flag.
fn stored(mut props: Map<String, Value>) -> Map<String, Value> {
    let attrs: Map<String, Value> = props
        .get("attributePayload")
        .and_then(|p| p.get("attributes"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_str() != Some(""))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    props.remove("attributePayload");
    if !attrs.is_empty() {
        props.insert("attributePayload".into(), json!({ "attributes": attrs }));
    }
    props
}

/// Applies an UpdateThingGroup to stored properties (pure): a description
/// replaces the old one; attributes replace the old ones, or merge into
/// them with `merge: true`; an empty value removes an attribute.
pub fn apply_update(props: &mut Map<String, Value>, update: &Map<String, Value>) {
    if let Some(d) = update.get("thingGroupDescription") {
        props.insert("thingGroupDescription".into(), d.clone());
    }
    let Some(payload) = update.get("attributePayload") else {
        return;
    };
    let merge = payload.get("merge").and_then(Value::as_bool) == Some(true);
    let mut attrs: Map<String, Value> = if merge {
        props
            .get("attributePayload")
            .and_then(|p| p.get("attributes"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    } else {
        Map::new()
    };
    if let Some(new) = payload.get("attributes").and_then(Value::as_object) {
        for (k, v) in new {
            if v.as_str() == Some("") {
                attrs.remove(k);
            } else {
                attrs.insert(k.clone(), v.clone());
            }
        }
    }
    props.remove("attributePayload");
    if !attrs.is_empty() {
        props.insert("attributePayload".into(), json!({ "attributes": attrs }));
    }
}

/// Ancestors of `name`, root first (pure; stops on a cycle).
pub fn ancestors(groups: &HashMap<String, Group>, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = groups.get(name).and_then(|g| g.parent.clone());
    while let Some(p) = cur {
        if out.contains(&p) || out.len() > MAX_DEPTH {
            break;
        }
        cur = groups.get(&p).and_then(|g| g.parent.clone());
        out.push(p);
    }
    out.reverse();
    out
}

/// `name` and every group below it (pure).
pub fn descendants(groups: &HashMap<String, Group>, name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i].clone();
        let mut kids: Vec<String> = groups
            .values()
            .filter(|g| g.parent.as_deref() == Some(cur.as_str()))
            .map(|g| g.name.clone())
            .filter(|n| !out.contains(n))
            .collect();
        kids.sort();
        out.extend(kids);
        i += 1;
    }
    out
}

/// The things in thing group `name` and in all its descendants, in name
/// order (a job that targets the group reaches these); a missing group is
/// ResourceNotFoundException.
pub fn things_in_tree(state: &CoreState, name: &str) -> Result<Vec<String>, ApiError> {
    let groups = all_groups(state)?;
    if !groups.contains_key(name) {
        return Err(super::store::group_not_found(KIND, name));
    }
    state.store.group_members(KIND, &descendants(&groups, name))
}

fn all_groups(state: &CoreState) -> Result<HashMap<String, Group>, ApiError> {
    Ok(state
        .store
        .groups(KIND)?
        .into_iter()
        .map(|g| (g.name.clone(), g))
        .collect())
}

fn arn(state: &CoreState, name: &str) -> String {
    state.arn(&format!("thinggroup/{name}"))
}

fn name_and_arn(state: &CoreState, name: &str) -> Value {
    json!({"groupName": name, "groupArn": arn(state, name)})
}

fn existing(state: &CoreState, name: &str) -> Result<Group, ApiError> {
    state
        .store
        .group(KIND, name)?
        .ok_or_else(|| super::store::group_not_found(KIND, name))
}

/// Refuses a static-group call on a dynamic group (Developer Guide,
/// Dynamic thing groups: "You use a different set of commands to create,
/// update, and delete dynamic thing groups").
fn refuse_dynamic(state: &CoreState, name: &str, instead: &str) -> Result<(), ApiError> {
    if state.store.dynamic_group(name)?.is_some() {
        return Err(ApiError::invalid(format!(
            "{name} is a dynamic thing group: {instead}"
        )));
    }
    Ok(())
}

const MEMBERS_BY_QUERY: &str =
    "its members are the things that match its query, so change the thing or the group's query instead";

fn check_parent(state: &CoreState, parent: &str) -> Result<(), ApiError> {
    let groups = all_groups(state)?;
    if !groups.contains_key(parent) {
        return Err(ApiError::invalid(format!(
            "parent thing group {parent} does not exist; create it first"
        )));
    }
    if state.store.dynamic_group(parent)?.is_some() {
        return Err(ApiError::invalid(format!(
            "{parent} is a dynamic thing group, and dynamic thing groups can't be part of a hierarchy; choose a static parent"
        )));
    }
    if ancestors(&groups, parent).len() + 1 >= MAX_DEPTH {
        return Err(ApiError::invalid(format!(
            "thing group {parent} is already {MAX_DEPTH} levels deep, the most AWS IoT allows"
        )));
    }
    Ok(())
}

async fn create(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    check_name("thingGroupName", &name)?;
    let body = body_object(&body)?;
    let props = stored(properties_from(body.get("thingGroupProperties"))?);
    let tags = parse_tags(&body, "tags")?;
    let parent = match body.get("parentGroupName") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => {
            check_parent(&state, p)?;
            Some(p.clone())
        }
        Some(_) => return Err(ApiError::invalid("parentGroupName must be a string")),
    };
    let g = Group {
        name: name.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        parent,
        properties: props,
        version: 1,
        created: now_secs(),
    };
    let g = match state.store.create_group(KIND, &g, &tags)? {
        None => g,
        Some(old)
            if old.properties == g.properties
                && old.parent == g.parent
                && state.store.dynamic_group(&name)?.is_none() =>
        {
            old
        }
        Some(_) => {
            return Err(ApiError::already_exists(format!(
                "Thing Group {name} already exists in current account with different properties"
            )))
        }
    };
    ok(json!({
        "thingGroupName": g.name,
        "thingGroupArn": arn(&state, &g.name),
        "thingGroupId": g.id,
    }))
}

async fn describe(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> ApiResult {
    let groups = all_groups(&state)?;
    let g = groups
        .get(&name)
        .ok_or_else(|| super::store::group_not_found(KIND, &name))?;
    let chain: Vec<Value> = ancestors(&groups, &name)
        .iter()
        .map(|n| name_and_arn(&state, n))
        .collect();
    // A root group's metadata is its creation date alone (moto's
    // test_describe_thing_group_metadata_hierarchy).
    let mut meta = json!({ "creationDate": g.created });
    if let Some(p) = &g.parent {
        meta["parentGroupName"] = json!(p);
        meta["rootToParentThingGroups"] = json!(chain);
    }
    let mut out = json!({
        "thingGroupName": g.name,
        "thingGroupId": g.id,
        "thingGroupArn": arn(&state, &g.name),
        "version": g.version,
        "thingGroupProperties": g.properties,
        "thingGroupMetadata": meta,
    });
    if let Some(s) = state.store.dynamic_group(&name)? {
        // Evaluated as things change, never rebuilding in the background.
        out["indexName"] = json!(s.index_name);
        out["queryString"] = json!(s.query_string);
        out["queryVersion"] = json!(s.query_version);
        out["status"] = json!("ACTIVE");
    }
    ok(out)
}

async fn update(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let (raw, expected) = update_body(&body, "thingGroupProperties")?;
    let update = properties_from(Some(raw))?;
    refuse_dynamic(&state, &name, "update it with UpdateDynamicThingGroup")?;
    let version = state
        .store
        .update_group(KIND, &name, expected, |p| apply_update(p, &update))?;
    ok(json!({ "version": version }))
}

async fn delete(State(state): State<Arc<CoreState>>, Path(name): Path<String>, q: Q) -> ApiResult {
    let expected = expected_version_query(&q)?;
    refuse_dynamic(&state, &name, "delete it with DeleteDynamicThingGroup")?;
    // AWS answers success for a group that does not exist (moto records it).
    if state
        .store
        .delete_group(KIND, &name, &arn(&state, &name), expected)?
    {
        state.changed();
    }
    empty()
}

async fn list(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let groups = all_groups(&state)?;
    let recursive = q.get("recursive").is_none() || query_bool(&q, "recursive")?;
    let mut names: Vec<String> = match q.get("parentGroup") {
        Some(parent) => {
            if !groups.contains_key(parent) {
                return Err(super::store::group_not_found(KIND, parent));
            }
            if recursive {
                descendants(&groups, parent).into_iter().skip(1).collect()
            } else {
                kids(&groups, Some(parent))
            }
        }
        None if recursive => groups.keys().cloned().collect(),
        None => kids(&groups, None),
    };
    if let Some(prefix) = q.get("namePrefixFilter") {
        names.retain(|n| n.starts_with(prefix.as_str()));
    }
    names.sort();
    let (page, next) = paginate(&names, &q, "maxResults", "nextToken", 250)?;
    let items: Vec<Value> = page.iter().map(|n| name_and_arn(&state, n)).collect();
    page_response("thingGroups", json!(items), "nextToken", next)
}

fn kids(groups: &HashMap<String, Group>, parent: Option<&str>) -> Vec<String> {
    groups
        .values()
        .filter(|g| g.parent.as_deref() == parent)
        .map(|g| g.name.clone())
        .collect()
}

async fn list_things(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    q: Q,
) -> ApiResult {
    let groups = all_groups(&state)?;
    if !groups.contains_key(&name) {
        return Err(super::store::group_not_found(KIND, &name));
    }
    let scope = if query_bool(&q, "recursive")? {
        descendants(&groups, &name)
    } else {
        vec![name]
    };
    let things = state.store.group_members(KIND, &scope)?;
    let (page, next) = paginate(&things, &q, "maxResults", "nextToken", 250)?;
    page_response("things", json!(page), "nextToken", next)
}

async fn groups_for_thing(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    q: Q,
) -> ApiResult {
    existing_thing(&state, &name)?;
    let names = state.store.groups_of_thing(KIND, &name)?;
    let (page, next) = paginate(&names, &q, "maxResults", "nextToken", 25)?;
    let items: Vec<Value> = page.iter().map(|n| name_and_arn(&state, n)).collect();
    page_response("thingGroups", json!(items), "nextToken", next)
}

/// The group and thing a membership request names, by name or by ARN
/// (both given must agree).
fn member_request(
    state: &CoreState,
    body: &Map<String, Value>,
) -> Result<(String, String), ApiError> {
    let group = resolve(
        body,
        "thingGroupName",
        "thingGroupArn",
        &state.arn("thinggroup/"),
    )?;
    let thing = resolve(body, "thingName", "thingArn", &state.arn("thing/"))?;
    existing(state, &group)?;
    existing_thing(state, &thing)?;
    refuse_dynamic(state, &group, MEMBERS_BY_QUERY)?;
    Ok((group, thing))
}

/// A resource named by `name_key` or `arn_key` (`arn_prefix` + name).
pub fn resolve(
    body: &Map<String, Value>,
    name_key: &str,
    arn_key: &str,
    arn_prefix: &str,
) -> Result<String, ApiError> {
    let name = body.get(name_key).and_then(Value::as_str);
    let from_arn = match body.get(arn_key).and_then(Value::as_str) {
        None => None,
        Some(a) => Some(a.strip_prefix(arn_prefix).ok_or_else(|| {
            ApiError::invalid(format!(
                "{arn_key} '{a}' is not an ARN of the form {arn_prefix}NAME"
            ))
        })?),
    };
    match (name, from_arn) {
        (Some(n), Some(a)) if n != a => Err(ApiError::invalid(format!(
            "{arn_key} does not match specified {name_key} in request"
        ))),
        (Some(n), _) | (None, Some(n)) => Ok(n.to_string()),
        (None, None) => Err(ApiError::invalid(format!(
            "Both {arn_key} and {name_key} are empty. Need to specify at least one of them"
        ))),
    }
}

/// The root of `name`'s hierarchy (pure).
pub fn root(groups: &HashMap<String, Group>, name: &str) -> String {
    ancestors(groups, name)
        .into_iter()
        .next()
        .unwrap_or_else(|| name.to_string())
}

/// Whether `thing`, now in `current`, may join `group` (pure): at most
/// [`MAX_GROUPS_PER_THING`] groups, and one group per hierarchy (AWS: "you
/// can't add a thing to more than one group in the same hierarchy").
pub fn check_join(
    groups: &HashMap<String, Group>,
    current: &[String],
    group: &str,
    thing: &str,
) -> Result<(), ApiError> {
    if current.iter().any(|g| g == group) {
        return Ok(());
    }
    if current.len() >= MAX_GROUPS_PER_THING {
        return Err(ApiError::invalid(format!(
            "Thing {thing} is already in {MAX_GROUPS_PER_THING} thing groups, the most AWS IoT allows; remove it from one first"
        )));
    }
    let target = root(groups, group);
    if let Some(other) = current.iter().find(|g| root(groups, g) == target) {
        return Err(ApiError::invalid(format!(
            "Thing {thing} is already in thing group {other}, in the same hierarchy as {group}; AWS IoT allows a thing in one group per hierarchy, so remove it from {other} first"
        )));
    }
    Ok(())
}

/// Adds `thing` to static `group`; with `override_dynamic`, a thing in
/// [`MAX_GROUPS_PER_THING`] groups leaves its last dynamic group to make
/// room (API_AddThingToThingGroup, overrideDynamicGroups).
fn add(
    state: &CoreState,
    group: &str,
    thing: &str,
    override_dynamic: bool,
) -> Result<(), ApiError> {
    let mut current = state.store.groups_of_thing(KIND, thing)?;
    let groups = all_groups(state)?;
    if override_dynamic {
        make_room(state, thing, &mut current, 1)?;
    }
    check_join(&groups, &current, group, thing)?;
    state.store.add_group_member(KIND, group, thing)?;
    joined(state, &groups, group, thing)
}

/// Takes `thing` out of its dynamic groups, last first, until `joining`
/// more groups fit under [`MAX_GROUPS_PER_THING`]; `current` follows.
fn make_room(
    state: &CoreState,
    thing: &str,
    current: &mut Vec<String>,
    joining: usize,
) -> Result<(), ApiError> {
    let dynamic = state.store.dynamic_groups()?;
    while current.len() + joining > MAX_GROUPS_PER_THING {
        let Some(i) = current
            .iter()
            .rposition(|g| dynamic.iter().any(|(n, _)| n == g))
        else {
            break;
        };
        let g = current.remove(i);
        state.store.remove_group_member(KIND, &g, thing)?;
    }
    Ok(())
}

/// A thing joined `group`: it gets the running CONTINUOUS jobs that target
/// the group or any group above it, as on AWS (a job for a parent group
/// reaches its children's things).
fn joined(
    state: &CoreState,
    groups: &HashMap<String, Group>,
    group: &str,
    thing: &str,
) -> Result<(), ApiError> {
    let mut chain = ancestors(groups, group);
    chain.push(group.to_string());
    for g in chain {
        let n = crate::jobs::api::thing_joined_group(state, thing, &arn(state, &g))?;
        if n > 0 {
            tracing::info!(thing, group = %g, jobs = n, "thing joined a group with continuous jobs");
        }
    }
    Ok(())
}

async fn add_thing(State(state): State<Arc<CoreState>>, body: Bytes) -> ApiResult {
    let body = body_object(&body)?;
    let (group, thing) = member_request(&state, &body)?;
    let override_dynamic = body.get("overrideDynamicGroups").and_then(Value::as_bool) == Some(true);
    add(&state, &group, &thing, override_dynamic)?;
    state.changed();
    state.dynamic.thing(&thing);
    empty()
}

async fn remove_thing(State(state): State<Arc<CoreState>>, body: Bytes) -> ApiResult {
    let body = body_object(&body)?;
    let (group, thing) = member_request(&state, &body)?;
    state.store.remove_group_member(KIND, &group, &thing)?;
    state.changed();
    state.dynamic.thing(&thing);
    empty()
}

fn name_list(body: &Map<String, Value>, key: &str) -> Result<Vec<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::invalid(format!("{key} must be a list of group names"))
                })
            })
            .collect(),
        Some(_) => Err(ApiError::invalid(format!(
            "{key} must be a list of group names"
        ))),
    }
}

async fn update_for_thing(State(state): State<Arc<CoreState>>, body: Bytes) -> ApiResult {
    let body = body_object(&body)?;
    let thing = crate::control::required_str(&body, "thingName")?.to_string();
    existing_thing(&state, &thing)?;
    let to_add = name_list(&body, "thingGroupsToAdd")?;
    let to_remove = name_list(&body, "thingGroupsToRemove")?;
    let groups = all_groups(&state)?;
    if let Some(g) = to_add
        .iter()
        .chain(&to_remove)
        .find(|g| !groups.contains_key(*g))
    {
        return Err(super::store::group_not_found(KIND, g));
    }
    for g in to_add.iter().chain(&to_remove) {
        refuse_dynamic(&state, g, MEMBERS_BY_QUERY)?;
    }
    // Check the whole change before making any of it.
    let mut after: Vec<String> = state.store.groups_of_thing(KIND, &thing)?;
    after.retain(|g| !to_remove.contains(g));
    if body.get("overrideDynamicGroups").and_then(Value::as_bool) == Some(true) {
        let joining = to_add.iter().filter(|g| !after.contains(g)).count();
        make_room(&state, &thing, &mut after, joining)?;
    }
    for g in &to_add {
        check_join(&groups, &after, g, &thing)?;
        after.push(g.clone());
    }
    for g in &to_remove {
        state.store.remove_group_member(KIND, g, &thing)?;
    }
    for g in &to_add {
        state.store.add_group_member(KIND, g, &thing)?;
        joined(&state, &groups, g, &thing)?;
    }
    state.changed();
    state.dynamic.thing(&thing);
    empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, parent: Option<&str>) -> (String, Group) {
        (
            name.to_string(),
            Group {
                name: name.into(),
                id: String::new(),
                parent: parent.map(str::to_string),
                properties: Map::new(),
                version: 1,
                created: 0.0,
            },
        )
    }

    #[test]
    fn hierarchy_walks_both_ways() {
        let groups: HashMap<_, _> = [
            group("fleet", None),
            group("lab", Some("fleet")),
            group("bench", Some("lab")),
            group("field", Some("fleet")),
            group("other", None),
        ]
        .into_iter()
        .collect();
        assert_eq!(ancestors(&groups, "bench"), vec!["fleet", "lab"]);
        assert!(ancestors(&groups, "fleet").is_empty());
        assert_eq!(
            descendants(&groups, "fleet"),
            vec!["fleet", "field", "lab", "bench"]
        );
        assert_eq!(descendants(&groups, "other"), vec!["other"]);
        let mut cyclic = groups.clone();
        cyclic.insert("a".into(), group("a", Some("b")).1);
        cyclic.insert("b".into(), group("b", Some("a")).1);
        assert!(ancestors(&cyclic, "a").len() <= MAX_DEPTH + 1);
    }

    #[test]
    fn a_thing_joins_one_group_per_hierarchy_and_ten_at_most() {
        let mut groups: HashMap<_, _> = [
            group("fleet", None),
            group("lab", Some("fleet")),
            group("bench", Some("lab")),
            group("field", None),
        ]
        .into_iter()
        .collect();
        let now = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(root(&groups, "bench"), "fleet");
        assert!(check_join(&groups, &now(&["lab"]), "field", "r").is_ok());
        assert!(check_join(&groups, &now(&["lab"]), "lab", "r").is_ok());
        let e = check_join(&groups, &now(&["lab"]), "bench", "r").unwrap_err();
        assert!(e.message.contains("same hierarchy"), "{}", e.message);
        assert!(check_join(&groups, &now(&["bench"]), "fleet", "r").is_err());
        for i in 0..10 {
            groups.insert(format!("g{i}"), group(&format!("g{i}"), None).1);
        }
        let ten: Vec<String> = (0..10).map(|i| format!("g{i}")).collect();
        let e = check_join(&groups, &ten, "field", "r").unwrap_err();
        assert!(e.message.contains("10 thing groups"), "{}", e.message);
    }

    #[test]
    fn updates_replace_merge_and_remove() {
        let mut p = stored(
            json!({"thingGroupDescription": "old", "attributePayload": {"attributes": {"a": "1", "b": "2", "c": ""}}})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(
            p["attributePayload"],
            json!({"attributes": {"a": "1", "b": "2"}})
        );
        let merge = json!({"attributePayload": {"attributes": {"b": "", "d": "4"}, "merge": true}});
        apply_update(&mut p, merge.as_object().unwrap());
        assert_eq!(
            p["attributePayload"],
            json!({"attributes": {"a": "1", "d": "4"}})
        );
        assert_eq!(p["thingGroupDescription"], json!("old"));
        let replace =
            json!({"thingGroupDescription": "new", "attributePayload": {"attributes": {"z": "9"}}});
        apply_update(&mut p, replace.as_object().unwrap());
        assert_eq!(p["attributePayload"], json!({"attributes": {"z": "9"}}));
        assert_eq!(p["thingGroupDescription"], json!("new"));
    }

    #[test]
    fn members_resolve_by_name_or_arn() {
        let prefix = "arn:aws:iot:us-east-1:1:thinggroup/";
        let body = |v: Value| v.as_object().unwrap().clone();
        let by_arn = body(json!({"thingGroupArn": format!("{prefix}lab")}));
        assert_eq!(
            resolve(&by_arn, "thingGroupName", "thingGroupArn", prefix).unwrap(),
            "lab"
        );
        let both =
            body(json!({"thingGroupName": "lab", "thingGroupArn": format!("{prefix}field")}));
        assert!(resolve(&both, "thingGroupName", "thingGroupArn", prefix).is_err());
        let none = body(json!({}));
        let e = resolve(&none, "thingGroupName", "thingGroupArn", prefix).unwrap_err();
        assert!(e.message.contains("at least one"), "{}", e.message);
        let foreign = body(json!({"thingGroupArn": "arn:aws:iot:eu-west-1:2:thinggroup/lab"}));
        assert!(resolve(&foreign, "thingGroupName", "thingGroupArn", prefix).is_err());
    }
}
