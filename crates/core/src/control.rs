//! The control-plane HTTP API: AWS IoT's REST-JSON operations for things,
//! certificates, policies, attachments and the endpoint, as the aws CLI and
//! boto3 call them (`--endpoint-url http://127.0.0.1:4580`).
//!
//! Handlers validate input into typed values, call the [`Store`](crate::store::Store)
//! and shape AWS's responses; SigV4 is checked by [`auth`] before any handler.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::store::{now_secs, Certificate, Thing};
use crate::CoreState;

pub(crate) type Q = Query<HashMap<String, String>>;
pub(crate) type ApiResult = Result<Response, ApiError>;

/// Largest request body the API reads (policy documents and CSRs are small).
const MAX_BODY: usize = 1 << 20;

/// The control plane and iot-data routes, behind SigV4 verification.
pub fn router(state: Arc<CoreState>) -> Router {
    Router::new()
        .route("/things", get(list_things))
        .route(
            "/things/{name}",
            post(create_thing)
                .get(describe_thing)
                .delete(delete_thing)
                .patch(update_thing),
        )
        .route(
            "/things/{name}/principals",
            put(attach_thing_principal)
                .delete(detach_thing_principal)
                .get(list_thing_principals),
        )
        .route("/principals/things", get(list_principal_things))
        .route("/policies", get(list_policies))
        .route(
            "/policies/{name}",
            post(create_policy).get(get_policy).delete(delete_policy),
        )
        .route(
            "/policies/{name}/version",
            post(create_policy_version).get(list_policy_versions),
        )
        .route(
            "/policies/{name}/version/{version}",
            get(get_policy_version)
                .delete(delete_policy_version)
                .patch(set_default_policy_version),
        )
        .route(
            "/certificates",
            post(create_certificate_from_csr).get(list_certificates),
        )
        .route(
            "/certificates/{id}",
            get(describe_certificate)
                .put(update_certificate)
                .delete(delete_certificate),
        )
        .route("/keys-and-certificate", post(create_keys_and_certificate))
        .route(
            "/target-policies/{policy}",
            put(attach_policy).post(detach_policy),
        )
        .route("/attached-policies/{target}", post(list_attached_policies))
        .route("/policy-targets/{policy}", post(list_targets_for_policy))
        .route("/endpoint", get(describe_endpoint))
        .merge(crate::data::router())
        .merge(crate::fleet::routes())
        .merge(crate::registration::router())
        .merge(crate::rules::router())
        .merge(crate::search::router())
        .merge(crate::jobs::router())
        .fallback(unknown_operation)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

async fn unknown_operation(req: Request) -> ApiError {
    ApiError::new(
        404,
        "UnknownOperationException",
        format!(
            "{} {} is not an operation of the local core (see docs/core.md for the supported ones)",
            req.method(),
            req.uri().path()
        ),
    )
}

/// SigV4 verification for every request, unless the core runs with
/// `--insecure-accept-any-signature`.
async fn auth(State(state): State<Arc<CoreState>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) if gopigo_broker::limits::is_length_limit(&e) => {
            return ApiError::new(
                413,
                "RequestEntityTooLargeException",
                format!("request body is larger than {MAX_BODY} bytes"),
            )
            .into_response()
        }
        Err(e) => {
            return ApiError::invalid(format!(
                "the request body is malformed ({e}): send a Content-Length body or valid chunked encoding"
            ))
            .into_response()
        }
    };
    if let Some(verifier) = &state.verifier {
        let path = parts.uri.path();
        let services: &[&str] = if crate::data::is_data_plane(path) {
            &["iotdata"]
        } else {
            &["iot", "execute-api"]
        };
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or(path);
        if let Err(e) = verifier.verify(
            parts.method.as_str(),
            pq,
            &parts.headers,
            &bytes,
            services,
            std::time::SystemTime::now(),
        ) {
            tracing::info!(path = %path, error = %e.message, "refused request");
            return e.into_response();
        }
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// `{list_key: items, token_key?: next}`: the shape of every AWS list response.
/// A page of policy names as AWS lists them (`policies` with names and
/// ARNs, `nextMarker`).
pub(crate) fn policies_page(
    state: &CoreState,
    names: &[String],
    next: Option<String>,
) -> ApiResult {
    let policies: Vec<Value> = names
        .iter()
        .map(|n| json!({"policyName": n, "policyArn": state.arn(&format!("policy/{n}"))}))
        .collect();
    page_response("policies", json!(policies), "nextMarker", next)
}

pub(crate) fn page_response(
    list_key: &str,
    items: Value,
    token_key: &str,
    next: Option<String>,
) -> ApiResult {
    let mut v = json!({ list_key: items });
    if let Some(n) = next {
        v[token_key] = json!(n);
    }
    ok(v)
}

pub(crate) fn ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

pub(crate) fn empty() -> ApiResult {
    Ok((
        [(http::header::CONTENT_TYPE, "application/json")],
        "{}".to_string(),
    )
        .into_response())
}

/// Parses a JSON request body into an object (an empty body is `{}`).
pub(crate) fn body_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::new(
            400,
            "SerializationException",
            "request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            400,
            "SerializationException",
            format!("request body is not valid JSON: {e}"),
        )),
    }
}

pub(crate) fn required_str<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match m.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid(format!("{key} must be a string"))),
        None => Err(ApiError::invalid(format!("{key} is required"))),
    }
}

pub(crate) fn query_bool(q: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match q.get(key).map(String::as_str) {
        None => Ok(false),
        Some("true") | Some("True") | Some("1") => Ok(true),
        Some("false") | Some("False") | Some("0") => Ok(false),
        Some(v) => Err(ApiError::invalid(format!(
            "{key} must be true or false, not '{v}'"
        ))),
    }
}

/// Page size from `key`, within 1..=250, defaulting to `default`.
pub(crate) fn page_size(
    q: &HashMap<String, String>,
    key: &str,
    default: usize,
) -> Result<usize, ApiError> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=250).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(format!(
                "{key} must be a number from 1 to 250, not '{v}'"
            ))),
        },
    }
}

pub(crate) fn decode_token(
    q: &HashMap<String, String>,
    key: &str,
) -> Result<Option<String>, ApiError> {
    match q.get(key) {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) => hex::decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{key} '{t}' is not a token this API returned; start the listing again without it"
                ))
            }),
    }
}

pub(crate) fn encode_token(s: &str) -> String {
    hex::encode(s.as_bytes())
}

pub(crate) fn check_thing_name(name: &str) -> Result<(), ApiError> {
    if gopigo_protocol::valid_thing_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "thingName '{name}' is not valid: use 1 to 128 of a-z A-Z 0-9 : _ -"
        )))
    }
}

/// AWS policy names: `[\w+=,.@-]+`, 1 to 128 characters.
pub(crate) fn check_policy_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "policyName '{name}' is not valid: use 1 to 128 of letters, digits and _+=,.@-"
        )))
    }
}

pub(crate) fn check_certificate_id(id: &str) -> Result<(), ApiError> {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "certificateId '{id}' is not valid: it is the 64 hex digits AWS returned when the certificate was made"
        )))
    }
}

// ------------------------------------------------------------------ things

pub(crate) fn attributes_from(body: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let Some(payload) = body.get("attributePayload") else {
        return Ok(Map::new());
    };
    let attrs = payload
        .get("attributes")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    let Value::Object(attrs) = attrs else {
        return Err(ApiError::invalid(
            "attributePayload.attributes must be an object of strings",
        ));
    };
    for (k, v) in &attrs {
        if !v.is_string() && !v.is_null() {
            return Err(ApiError::invalid(format!(
                "attribute '{k}' must be a string"
            )));
        }
    }
    Ok(attrs)
}

fn thing_json(state: &CoreState, t: &Thing) -> Value {
    let mut v = json!({
        "thingName": t.name,
        "thingArn": state.arn(&format!("thing/{}", t.name)),
        "attributes": t.attributes,
        "version": t.version,
    });
    if let Some(tt) = &t.type_name {
        v["thingTypeName"] = json!(tt);
    }
    v
}

async fn create_thing(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    check_thing_name(&name)?;
    let body = body_object(&body)?;
    let attributes: Map<String, Value> = attributes_from(&body)?
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
    let type_name = match body.get("thingTypeName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(crate::fleet::thing_types::usable_type(&state, s, true)?),
        Some(_) => return Err(ApiError::invalid("thingTypeName must be a string")),
    };
    let billing_group = crate::fleet::billing_groups::requested(&state, &body)?;
    let thing = match state.store.thing(&name)? {
        Some(existing) => {
            if existing.attributes != attributes || existing.type_name != type_name {
                return Err(ApiError::already_exists(format!(
                    "Thing {name} already exists with different attributes or type; use update-thing to change it"
                )));
            }
            existing
        }
        None => {
            let t = Thing {
                name: name.clone(),
                id: uuid::Uuid::new_v4().to_string(),
                type_name,
                attributes,
                version: 1,
            };
            state.store.insert_thing(&t)?;
            t
        }
    };
    if let Some(g) = billing_group {
        crate::fleet::billing_groups::add(&state, &g, &name)?;
    }
    state.dynamic.thing(&name);
    ok(json!({
        "thingName": thing.name,
        "thingArn": state.arn(&format!("thing/{}", thing.name)),
        "thingId": thing.id,
    }))
}

pub(crate) fn existing_thing(state: &CoreState, name: &str) -> Result<Thing, ApiError> {
    state
        .store
        .thing(name)?
        .ok_or_else(|| ApiError::not_found(format!("Thing {name} cannot be found.")))
}

async fn describe_thing(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
) -> ApiResult {
    let t = existing_thing(&state, &name)?;
    let mut v = thing_json(&state, &t);
    v["thingId"] = json!(t.id);
    v["defaultClientId"] = json!(t.name);
    if let Some(g) = crate::fleet::billing_groups::of_thing(&state, &t.name)? {
        v["billingGroupName"] = json!(g);
    }
    ok(v)
}

async fn update_thing(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let mut t = existing_thing(&state, &name)?;
    if let Some(expected) = body.get("expectedVersion").and_then(Value::as_i64) {
        if expected != t.version {
            return Err(ApiError::new(
                409,
                "VersionConflictException",
                format!(
                    "expectedVersion {expected} does not match thing {name}'s version {}",
                    t.version
                ),
            ));
        }
    }
    let merge = body
        .get("attributePayload")
        .and_then(|p| p.get("merge"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if body.contains_key("attributePayload") {
        let attrs = attributes_from(&body)?;
        if !merge {
            t.attributes.clear();
        }
        for (k, v) in attrs {
            // AttributePayload: "To remove an attribute, call UpdateThing
            // with an empty attribute value."
            if v.is_null() || v.as_str() == Some("") {
                t.attributes.remove(&k);
            } else {
                t.attributes.insert(k, v);
            }
        }
    }
    let remove_type = body.get("removeThingType").and_then(Value::as_bool) == Some(true);
    match body.get("thingTypeName") {
        Some(Value::String(_)) if remove_type => {
            return Err(ApiError::invalid(
                "give either thingTypeName or removeThingType, not both",
            ))
        }
        Some(Value::String(tt)) => {
            t.type_name = Some(crate::fleet::thing_types::usable_type(&state, tt, false)?)
        }
        _ if remove_type => t.type_name = None,
        _ => {}
    }
    t.version += 1;
    state.store.update_thing(&t)?;
    state.dynamic.thing(&name);
    empty()
}

async fn delete_thing(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    q: Q,
) -> ApiResult {
    if let Some(t) = state.store.thing(&name)? {
        if let Some(expected) = q.get("expectedVersion") {
            if expected.parse::<i64>().ok() != Some(t.version) {
                return Err(ApiError::new(
                    409,
                    "VersionConflictException",
                    format!(
                        "expectedVersion {expected} does not match thing {name}'s version {}",
                        t.version
                    ),
                ));
            }
        }
        if !state.thing_principals(&name)?.is_empty() {
            // AWS refuses (a real account's log: aws-nuke issue 374); the
            // caller detaches first, and waits, since detaching is eventual.
            return Err(ApiError::invalid(format!(
                "Cannot delete. Thing {name} is still attached to one or more principals"
            )));
        }
        state.store.delete_thing(&name)?;
    }
    empty()
}

async fn list_things(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let limit = page_size(&q, "maxResults", 50)?;
    let after = decode_token(&q, "nextToken")?;
    let attr_filter = q.get("attributeName").zip(q.get("attributeValue"));
    let type_filter = q.get("thingTypeName");
    if attr_filter.is_some() && type_filter.is_some() {
        // AWS's own text (aws/aws-sdk-js issue 4237 quotes it).
        return Err(ApiError::invalid(
            "Listing things by the combination of attribute and thing type is not supported",
        ));
    }
    let prefix = query_bool(&q, "usePrefixAttributeValue")?;
    let mut out = Vec::new();
    let mut cursor = after.clone();
    let mut next = None;
    // Filters apply before paging, so read on until a page is full.
    'outer: loop {
        let batch = state.store.list_things(cursor.as_deref(), 500)?;
        if batch.is_empty() {
            break;
        }
        for t in batch {
            cursor = Some(t.name.clone());
            let attr_ok = attr_filter.is_none_or(|(k, v)| {
                t.attributes
                    .get(k)
                    .and_then(Value::as_str)
                    .is_some_and(|a| {
                        if prefix {
                            a.starts_with(v.as_str())
                        } else {
                            a == v
                        }
                    })
            });
            let type_ok = type_filter.is_none_or(|tt| t.type_name.as_deref() == Some(tt));
            if attr_ok && type_ok {
                if out.len() == limit {
                    next = out
                        .last()
                        .map(|v: &Value| encode_token(v["thingName"].as_str().unwrap_or("")));
                    break 'outer;
                }
                out.push(thing_json(&state, &t));
            }
        }
    }
    page_response("things", json!(out), "nextToken", next)
}

// --------------------------------------------------------------- principals

pub(crate) fn principal_header(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get("x-amzn-principal")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid("principal (header x-amzn-principal) is required"))
}

/// Checks that `principal` is a certificate ARN of this core and returns its id.
pub(crate) fn certificate_of_principal(
    state: &CoreState,
    principal: &str,
) -> Result<String, ApiError> {
    let id = state.certificate_id_from_arn(principal).ok_or_else(|| {
        ApiError::invalid(format!(
            "principal '{principal}' is not a certificate ARN of this account ({})",
            state.arn("cert/<certificateId>")
        ))
    })?;
    if state.store.certificate(&id)?.is_none() {
        return Err(ApiError::not_found(format!(
            "The certificate {id} does not exist"
        )));
    }
    Ok(id)
}

async fn attach_thing_principal(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let principal = principal_header(&headers)?;
    existing_thing(&state, &name)?;
    certificate_of_principal(&state, &principal)?;
    state.store.attach_thing_principal(&name, &principal)?;
    state.lingering.attached(&name, &principal);
    state.changed();
    empty()
}

async fn detach_thing_principal(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let principal = principal_header(&headers)?;
    existing_thing(&state, &name)?;
    if state.store.thing_principals(&name)?.contains(&principal) {
        // Asynchronous on AWS: still listed, still blocking DeleteThing,
        // for a while.
        state
            .lingering
            .detached(&name, &principal, state.detach_delay);
    }
    state.store.detach_thing_principal(&name, &principal)?;
    state.changed();
    empty()
}

async fn list_thing_principals(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    q: Q,
) -> ApiResult {
    if state.store.thing(&name)?.is_none() {
        return Err(ApiError::not_found(format!(
            "Failed to list principals for thing {name} because the thing does not exist in your account"
        )));
    }
    let all = state.thing_principals(&name)?;
    let (page, next) = paginate(&all, &q, "maxResults", "nextToken", 25)?;
    page_response("principals", json!(page), "nextToken", next)
}

async fn list_principal_things(
    State(state): State<Arc<CoreState>>,
    headers: HeaderMap,
    q: Q,
) -> ApiResult {
    let principal = principal_header(&headers)?;
    let all = state.principal_things(&principal)?;
    let (page, next) = paginate(&all, &q, "maxResults", "nextToken", 25)?;
    page_response("things", json!(page), "nextToken", next)
}

/// Pages a sorted list of names with an opaque "last name" token.
pub(crate) fn paginate(
    all: &[String],
    q: &HashMap<String, String>,
    size_key: &str,
    token_key: &str,
    default: usize,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let limit = page_size(q, size_key, default)?;
    let after = decode_token(q, token_key)?;
    let rest: Vec<String> = all
        .iter()
        .filter(|s| after.as_ref().is_none_or(|a| s.as_str() > a.as_str()))
        .cloned()
        .collect();
    if rest.len() > limit {
        let page = rest[..limit].to_vec();
        let next = page.last().map(|s| encode_token(s));
        Ok((page, next))
    } else {
        Ok((rest, None))
    }
}

// ----------------------------------------------------------------- policies

fn validate_policy(document: &str) -> Result<(), ApiError> {
    gopigo_policy::PolicyDocument::parse(document)
        .map(|_| ())
        .map_err(|e| ApiError::malformed_policy(e.to_string()))
}

async fn create_policy(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    check_policy_name(&name)?;
    let body = body_object(&body)?;
    let document = required_str(&body, "policyDocument")?;
    validate_policy(document)?;
    if state.store.policy(&name)?.is_some() {
        return Err(ApiError::already_exists(format!(
            "Policy cannot be created - name already exists (name={name})"
        )));
    }
    let p = state.store.insert_policy(&name, document)?;
    ok(json!({
        "policyName": p.name,
        "policyArn": state.arn(&format!("policy/{}", p.name)),
        "policyDocument": p.document,
        "policyVersionId": p.default_version.to_string(),
    }))
}

pub(crate) fn existing_policy(
    state: &CoreState,
    name: &str,
) -> Result<crate::store::Policy, ApiError> {
    state
        .store
        .policy(name)?
        .ok_or_else(|| ApiError::not_found(format!("Policy not found: {name} does not exist")))
}

async fn get_policy(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> ApiResult {
    let p = existing_policy(&state, &name)?;
    ok(json!({
        "policyName": p.name,
        "policyArn": state.arn(&format!("policy/{}", p.name)),
        "policyDocument": p.document,
        "defaultVersionId": p.default_version.to_string(),
        "creationDate": p.created,
        "lastModifiedDate": p.modified,
        "generationId": p.generation_id,
    }))
}

async fn delete_policy(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> ApiResult {
    state.store.delete_policy(&name)?;
    state.changed();
    empty()
}

async fn list_policies(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let limit = page_size(&q, "pageSize", 25)?;
    let after = decode_token(&q, "marker")?;
    let ascending = q.get("isAscendingOrder").map(String::as_str) != Some("false");
    let mut names = state
        .store
        .list_policies(after.as_deref(), limit + 1, ascending)?;
    let next = if names.len() > limit {
        names.truncate(limit);
        names.last().map(|n| encode_token(n))
    } else {
        None
    };
    policies_page(&state, &names, next)
}

fn parse_version(v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::invalid(format!("policyVersionId '{v}' must be a positive number"))
    })
}

async fn create_policy_version(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    q: Q,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let document = required_str(&body, "policyDocument")?;
    existing_policy(&state, &name)?;
    validate_policy(document)?;
    let set_default = query_bool(&q, "setAsDefault")?;
    let old = existing_policy(&state, &name)?.document;
    let v = state
        .store
        .add_policy_version(&name, document, set_default)?;
    if set_default {
        state
            .policy_pending
            .new_default(&name, old, state.policy_delay);
    }
    state.changed_now_and_after(state.policy_delay);
    ok(json!({
        "policyArn": state.arn(&format!("policy/{name}")),
        "policyDocument": v.document,
        "policyVersionId": v.version.to_string(),
        "isDefaultVersion": v.is_default,
    }))
}

async fn list_policy_versions(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
) -> ApiResult {
    let versions: Vec<Value> = state
        .store
        .policy_versions(&name)?
        .iter()
        .map(|v| {
            json!({
                "versionId": v.version.to_string(),
                "isDefaultVersion": v.is_default,
                "createDate": v.created,
            })
        })
        .collect();
    ok(json!({ "policyVersions": versions }))
}

async fn get_policy_version(
    State(state): State<Arc<CoreState>>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    let n = parse_version(&version)?;
    let p = existing_policy(&state, &name)?;
    let v = state
        .store
        .policy_versions(&name)?
        .into_iter()
        .find(|v| v.version == n)
        .ok_or_else(|| {
            ApiError::not_found(format!("Version {n} of policy {name} does not exist"))
        })?;
    ok(json!({
        "policyArn": state.arn(&format!("policy/{name}")),
        "policyName": name,
        "policyDocument": v.document,
        "policyVersionId": v.version.to_string(),
        "isDefaultVersion": v.is_default,
        "creationDate": v.created,
        "lastModifiedDate": v.created,
        "generationId": p.generation_id,
    }))
}

async fn delete_policy_version(
    State(state): State<Arc<CoreState>>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    let n = parse_version(&version)?;
    state.store.delete_policy_version(&name, n)?;
    empty()
}

async fn set_default_policy_version(
    State(state): State<Arc<CoreState>>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    let n = parse_version(&version)?;
    let old = existing_policy(&state, &name)?.document;
    state.store.set_default_policy_version(&name, n)?;
    state
        .policy_pending
        .new_default(&name, old, state.policy_delay);
    state.changed_now_and_after(state.policy_delay);
    empty()
}

const MAX_POLICIES_PER_TARGET: usize = 10;

async fn attach_policy(
    State(state): State<Arc<CoreState>>,
    Path(policy): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let target = required_str(&body, "target")?;
    existing_policy(&state, &policy)?;
    crate::fleet::check_policy_target(&state, target)?;
    let attached = state.store.policies_for_target(target)?;
    if !attached.contains(&policy) && attached.len() >= MAX_POLICIES_PER_TARGET {
        return Err(ApiError::new(
            410,
            "LimitExceededException",
            format!("{target} already has {MAX_POLICIES_PER_TARGET} policies attached, the most AWS IoT allows"),
        ));
    }
    state.store.attach_policy(&policy, target)?;
    if !attached.contains(&policy) {
        state
            .policy_pending
            .attached(&policy, target, state.policy_delay);
    }
    state.changed_now_and_after(state.policy_delay);
    empty()
}

async fn detach_policy(
    State(state): State<Arc<CoreState>>,
    Path(policy): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let target = required_str(&body, "target")?;
    let document = existing_policy(&state, &policy)?.document;
    if !state.store.detach_policy(&policy, target)? {
        // ResourceNotFoundException, as moto's tests/test_iot/test_iot.py
        // (test_principal_policy) expects; no AWS log says otherwise.
        return Err(ApiError::not_found(format!(
            "The policy {policy} is not attached to {target}"
        )));
    }
    state
        .policy_pending
        .detached(&policy, target, document, state.policy_delay);
    state.changed_now_and_after(state.policy_delay);
    empty()
}

async fn list_attached_policies(
    State(state): State<Arc<CoreState>>,
    Path(target): Path<String>,
    q: Q,
) -> ApiResult {
    let all = state.store.policies_for_target(&target)?;
    let (page, next) = paginate(&all, &q, "pageSize", "marker", 25)?;
    policies_page(&state, &page, next)
}

async fn list_targets_for_policy(
    State(state): State<Arc<CoreState>>,
    Path(policy): Path<String>,
    q: Q,
) -> ApiResult {
    existing_policy(&state, &policy)?;
    let all = state.store.targets_for_policy(&policy)?;
    let (page, next) = paginate(&all, &q, "pageSize", "marker", 25)?;
    page_response("targets", json!(page), "nextMarker", next)
}

// ------------------------------------------------------------- certificates

const CERT_VALIDITY_DAYS: u32 = 365 * 10;

fn store_certificate(
    state: &CoreState,
    pem: &str,
    id: &str,
    active: bool,
) -> Result<Certificate, ApiError> {
    let info = gopigo_pki::parse_certificate_pem(pem).map_err(ApiError::internal)?;
    let now = now_secs();
    let cert = Certificate {
        id: id.to_string(),
        pem: pem.to_string(),
        status: if active { "ACTIVE" } else { "INACTIVE" }.to_string(),
        created: now,
        modified: now,
        not_before: info.not_before,
        not_after: info.not_after,
        customer_version: 1,
        seq: 0,
    };
    state.store.insert_certificate(&cert)?;
    Ok(cert)
}

async fn create_certificate_from_csr(
    State(state): State<Arc<CoreState>>,
    q: Q,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let csr = required_str(&body, "certificateSigningRequest")?;
    let active = query_bool(&q, "setAsActive")?;
    let issued = state
        .ca
        .sign_csr(csr, CERT_VALIDITY_DAYS)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    store_certificate(&state, &issued.pem, &issued.id, active)?;
    tracing::info!(certificate = %issued.id, active, "signed a CSR");
    ok(json!({
        "certificateArn": state.arn(&format!("cert/{}", issued.id)),
        "certificateId": issued.id,
        "certificatePem": issued.pem,
    }))
}

async fn create_keys_and_certificate(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let active = query_bool(&q, "setAsActive")?;
    let st = state.clone();
    let (issued, key) = tokio::task::spawn_blocking(move || {
        st.ca
            .create_keys_and_certificate("AWS IoT Certificate", CERT_VALIDITY_DAYS)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    store_certificate(&state, &issued.pem, &issued.id, active)?;
    ok(json!({
        "certificateArn": state.arn(&format!("cert/{}", issued.id)),
        "certificateId": issued.id,
        "certificatePem": issued.pem,
        "keyPair": { "PublicKey": key.public_key_pem, "PrivateKey": key.private_key_pem },
    }))
}

fn existing_certificate(state: &CoreState, id: &str) -> Result<Certificate, ApiError> {
    check_certificate_id(id)?;
    state
        .store
        .certificate(id)?
        .ok_or_else(|| ApiError::not_found(format!("The certificate {id} does not exist")))
}

async fn describe_certificate(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
) -> ApiResult {
    let c = existing_certificate(&state, &id)?;
    let (ca_id, mode) = crate::registration::registration_of(&state, &c.id)?
        .unwrap_or((None, "DEFAULT".to_string()));
    let mut v = json!({
        "certificateDescription": {
            "certificateArn": state.arn(&format!("cert/{}", c.id)),
            "certificateId": c.id,
            "status": c.status,
            "certificatePem": c.pem,
            "ownedBy": state.account_id,
            "creationDate": c.created,
            "lastModifiedDate": c.modified,
            "customerVersion": c.customer_version,
            "generationId": format!("{}-{}", c.id.get(..8).unwrap_or(""), c.customer_version),
            "transferData": {},
            "validity": { "notBefore": c.not_before, "notAfter": c.not_after },
            "certificateMode": mode,
        }
    });
    if let Some(ca) = ca_id {
        v["certificateDescription"]["caCertificateId"] = json!(ca);
    }
    ok(v)
}

async fn list_certificates(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let limit = page_size(&q, "pageSize", 25)?;
    let after = match q.get("marker") {
        None => None,
        Some(m) => Some(m.parse::<i64>().map_err(|_| {
            ApiError::invalid(format!(
                "marker '{m}' is not a marker this API returned; list again without it"
            ))
        })?),
    };
    let ascending = q.get("isAscendingOrder").map(String::as_str) != Some("false");
    let mut certs = state.store.list_certificates(after, limit + 1, ascending)?;
    let next = if certs.len() > limit {
        certs.truncate(limit);
        certs.last().map(|c| c.seq.to_string())
    } else {
        None
    };
    let list: Vec<Value> = certs
        .iter()
        .map(|c| {
            json!({
                "certificateArn": state.arn(&format!("cert/{}", c.id)),
                "certificateId": c.id,
                "status": c.status,
                "certificateMode": "DEFAULT",
                "creationDate": c.created,
            })
        })
        .collect();
    page_response("certificates", json!(list), "nextMarker", next)
}

/// The legal moves of `UpdateCertificate` (pure).
pub fn check_status_move(from: &str, to: &str) -> Result<(), ApiError> {
    match to {
        "ACTIVE" | "INACTIVE" | "REVOKED" => {}
        "PENDING_TRANSFER" | "PENDING_ACTIVATION" | "REGISTER_ACTIVE" | "REGISTER_INACTIVE" => {
            return Err(ApiError::invalid(format!(
                "newStatus {to} cannot be set with update-certificate; use ACTIVE, INACTIVE or REVOKED"
            )))
        }
        other => {
            return Err(ApiError::invalid(format!(
                "newStatus '{other}' is not a certificate status; use ACTIVE, INACTIVE or REVOKED"
            )))
        }
    }
    if from == "REVOKED" && to != "REVOKED" {
        return Err(ApiError::certificate_state(format!(
            "Certificate is REVOKED: a revoked certificate cannot become {to}; make a new certificate instead"
        )));
    }
    if from == "PENDING_TRANSFER" {
        return Err(ApiError::certificate_state(
            "Certificate is pending transfer and cannot change state",
        ));
    }
    Ok(())
}

async fn update_certificate(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult {
    let to = q
        .get("newStatus")
        .ok_or_else(|| ApiError::invalid("newStatus is required"))?;
    let c = existing_certificate(&state, &id)?;
    check_status_move(&c.status, to)?;
    if c.status != *to {
        state.store.set_certificate_status(&id, to)?;
        state.changed();
        if c.status == "ACTIVE" {
            tracing::info!(certificate = %id, status = %to, "certificate left ACTIVE");
            state.certificate_deactivated(&id);
        }
    }
    empty()
}

async fn delete_certificate(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    q: Q,
) -> ApiResult {
    let c = existing_certificate(&state, &id)?;
    if c.status == "ACTIVE" {
        return Err(ApiError::certificate_state(format!(
            "Certificate must be deactivated (not ACTIVE) before deletion. Id: {id}"
        )));
    }
    let arn = state.arn(&format!("cert/{id}"));
    let things = state.principal_things(&arn)?;
    if !things.is_empty() {
        return Err(ApiError::delete_conflict(format!(
            "Things must be detached before deletion (arn: {arn})"
        )));
    }
    let force = query_bool(&q, "forceDelete")?;
    let policies = state.store.policies_for_target(&arn)?;
    if !policies.is_empty() && !force {
        return Err(ApiError::delete_conflict(format!(
            "Certificate policies must be detached before deletion (arn: {arn})"
        )));
    }
    state.store.delete_certificate(&id, &arn)?;
    state.changed();
    empty()
}

// ----------------------------------------------------------------- endpoint

async fn describe_endpoint(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let kind = q
        .get("endpointType")
        .map(String::as_str)
        .unwrap_or("iot:Data");
    match kind {
        "iot:Data" | "iot:Data-ATS" | "iot:CredentialProvider" | "iot:Jobs" => {
            ok(json!({ "endpointAddress": state.endpoint_address }))
        }
        other => Err(ApiError::invalid(format!(
            "endpointType '{other}' is not valid: use iot:Data-ATS, iot:Data, iot:CredentialProvider or iot:Jobs"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_moves_follow_aws() {
        let table = [
            ("ACTIVE", "INACTIVE", Ok(())),
            ("INACTIVE", "ACTIVE", Ok(())),
            ("ACTIVE", "REVOKED", Ok(())),
            ("INACTIVE", "REVOKED", Ok(())),
            ("REVOKED", "ACTIVE", Err(406)),
            ("REVOKED", "INACTIVE", Err(406)),
            ("ACTIVE", "PENDING_TRANSFER", Err(400)),
            ("ACTIVE", "BOGUS", Err(400)),
        ];
        for (from, to, want) in table {
            let got = check_status_move(from, to).map_err(|e| e.status);
            assert_eq!(got, want, "{from} -> {to}");
        }
    }

    #[test]
    fn thing_names() {
        assert!(check_thing_name("robot-1:a_b").is_ok());
        assert!(check_thing_name("").is_err());
        assert!(check_thing_name("a/b").is_err());
        assert!(check_thing_name(&"x".repeat(129)).is_err());
    }

    #[test]
    fn paging_tokens_round_trip() {
        let all: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
        let mut q = HashMap::new();
        q.insert("maxResults".to_string(), "3".to_string());
        let mut seen = Vec::new();
        loop {
            let (page, next) = paginate(&all, &q, "maxResults", "nextToken", 25).unwrap();
            seen.extend(page);
            match next {
                Some(n) => {
                    q.insert("nextToken".into(), n);
                }
                None => break,
            }
        }
        assert_eq!(seen, all);
        q.insert("nextToken".into(), "zz".into());
        assert_eq!(
            paginate(&all, &q, "maxResults", "nextToken", 25)
                .unwrap_err()
                .status,
            400
        );
    }
}
