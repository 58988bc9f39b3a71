//! The legacy principal-policy calls, mapped onto the policy attachments
//! AttachPolicy makes: AttachPrincipalPolicy, DetachPrincipalPolicy,
//! ListPrincipalPolicies, ListPolicyPrincipals; and ListThingPrincipalsV2.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::control::{
    certificate_of_principal, decode_token, empty, encode_token, existing_policy, page_response,
    page_size, paginate, policies_page, ApiResult, Q,
};
use crate::error::ApiError;
use crate::CoreState;

/// Most policies on one principal (AWS: 10).
const MAX_POLICIES_PER_TARGET: usize = 10;

/// Principal-policy routes.
pub fn routes() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/principal-policies", get(list_principal_policies))
        .route(
            "/principal-policies/{policy}",
            axum::routing::put(attach).delete(detach),
        )
        .route("/policy-principals", get(list_policy_principals))
        .route(
            "/things/{name}/principals-v2",
            get(list_thing_principals_v2),
        )
}

fn header(headers: &HeaderMap, name: &str, field: &str) -> Result<String, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid(format!("{field} (header {name}) is required")))
}

/// One page of `items` in the order asked for (`isAscendingOrder`, default
/// ascending) with a position marker (pure).
pub fn page_in_order(
    mut items: Vec<String>,
    q: &HashMap<String, String>,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    if q.get("isAscendingOrder").map(String::as_str) == Some("false") {
        items.reverse();
    }
    let limit = page_size(q, "pageSize", 25)?;
    let start = match decode_token(q, "marker")? {
        None => 0,
        Some(m) => m.parse::<usize>().map_err(|_| {
            ApiError::invalid("marker is not a marker this API returned; list again without it")
        })?,
    };
    let page: Vec<String> = items.iter().skip(start).take(limit).cloned().collect();
    let next = (start + limit < items.len()).then(|| encode_token(&(start + limit).to_string()));
    Ok((page, next))
}

async fn attach(
    State(state): State<Arc<CoreState>>,
    Path(policy): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let principal = header(&headers, "x-amzn-iot-principal", "principal")?;
    existing_policy(&state, &policy)?;
    certificate_of_principal(&state, &principal)?;
    let attached = state.store.policies_for_target(&principal)?;
    if !attached.contains(&policy) && attached.len() >= MAX_POLICIES_PER_TARGET {
        return Err(ApiError::new(
            410,
            "LimitExceededException",
            format!("{principal} already has {MAX_POLICIES_PER_TARGET} policies attached, the most AWS IoT allows"),
        ));
    }
    state.store.attach_policy(&policy, &principal)?;
    if !attached.contains(&policy) {
        state
            .policy_pending
            .attached(&policy, &principal, state.policy_delay);
    }
    state.changed_now_and_after(state.policy_delay);
    empty()
}

async fn detach(
    State(state): State<Arc<CoreState>>,
    Path(policy): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let principal = header(&headers, "x-amzn-iot-principal", "principal")?;
    let document = existing_policy(&state, &policy)?.document;
    if !state.store.detach_policy(&policy, &principal)? {
        return Err(ApiError::not_found(format!(
            "The policy {policy} is not attached to {principal}"
        )));
    }
    state
        .policy_pending
        .detached(&policy, &principal, document, state.policy_delay);
    state.changed_now_and_after(state.policy_delay);
    empty()
}

async fn list_principal_policies(
    State(state): State<Arc<CoreState>>,
    headers: HeaderMap,
    q: Q,
) -> ApiResult {
    let principal = header(&headers, "x-amzn-iot-principal", "principal")?;
    certificate_of_principal(&state, &principal)?;
    let (page, next) = page_in_order(state.store.policies_for_target(&principal)?, &q)?;
    policies_page(&state, &page, next)
}

async fn list_policy_principals(
    State(state): State<Arc<CoreState>>,
    headers: HeaderMap,
    q: Q,
) -> ApiResult {
    let policy = header(&headers, "x-amzn-iot-policy", "policyName")?;
    existing_policy(&state, &policy)?;
    let (page, next) = page_in_order(state.store.targets_for_policy(&policy)?, &q)?;
    page_response("principals", json!(page), "nextMarker", next)
}

async fn list_thing_principals_v2(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    q: Q,
) -> ApiResult {
    if state.store.thing(&name)?.is_none() {
        return Err(ApiError::not_found(format!(
            "Failed to list principals for thing {name} because the thing does not exist in your account"
        )));
    }
    // Attachments here are all non-exclusive (AttachThingPrincipal's default).
    let kind = "NON_EXCLUSIVE_THING";
    match q.get("thingPrincipalType").map(String::as_str) {
        None | Some("NON_EXCLUSIVE_THING") => {}
        Some("EXCLUSIVE_THING") => {
            return page_response("thingPrincipalObjects", json!([]), "nextToken", None)
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
            "thingPrincipalType '{other}' is not valid: use EXCLUSIVE_THING or NON_EXCLUSIVE_THING"
        )))
        }
    }
    let all = state.thing_principals(&name)?;
    let (page, next) = paginate(&all, &q, "maxResults", "nextToken", 25)?;
    let items: Vec<Value> = page
        .iter()
        .map(|p| json!({"principal": p, "thingPrincipalType": kind}))
        .collect();
    page_response("thingPrincipalObjects", json!(items), "nextToken", next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_order_and_marker() {
        let items: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
        let mut q = HashMap::from([("pageSize".to_string(), "2".to_string())]);
        let mut seen = Vec::new();
        loop {
            let (page, next) = page_in_order(items.clone(), &q).unwrap();
            seen.extend(page);
            match next {
                Some(m) => q.insert("marker".into(), m),
                None => break,
            };
        }
        assert_eq!(seen, items);
        let q = HashMap::from([("isAscendingOrder".to_string(), "false".to_string())]);
        assert_eq!(page_in_order(items.clone(), &q).unwrap().0[0], "p4");
        let q = HashMap::from([("marker".to_string(), "zz".to_string())]);
        assert!(page_in_order(items, &q).is_err());
    }
}
