//! Role aliases, stored: CreateRoleAlias, DescribeRoleAlias, UpdateRoleAlias,
//! DeleteRoleAlias, ListRoleAliases. The local core has no credentials
//! provider, so an alias is a record that stacks can declare and read back.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::parse_tags;
use super::principals::page_in_order;
use super::store::RoleAlias;
use crate::control::{body_object, empty, ok, page_response, required_str, ApiResult, Q};
use crate::error::ApiError;
use crate::store::now_secs;
use crate::CoreState;

/// Credential lifetime when none is given (AWS: 3600 s).
pub const DEFAULT_DURATION: i64 = 3600;

/// Role-alias routes.
pub fn routes() -> Router<Arc<CoreState>> {
    Router::new().route("/role-aliases", get(list)).route(
        "/role-aliases/{alias}",
        post(create).get(describe).put(update).delete(delete),
    )
}

/// AWS's alias names: `[\w=,@-]+`, 1 to 128 characters.
pub fn check_alias(name: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_=,@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "roleAlias '{name}' is not valid: use 1 to 128 of letters, digits and _=,@-"
        )))
    }
}

/// `credentialDurationSeconds`: 900 to 43200, or `None` when absent.
pub fn duration_from(body: &Map<String, Value>) -> Result<Option<i64>, ApiError> {
    match body.get("credentialDurationSeconds") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (900..=43200).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::invalid(format!(
                "credentialDurationSeconds must be from 900 to 43200, not {v}"
            ))),
        },
    }
}

fn check_role_arn(arn: &str) -> Result<(), ApiError> {
    if (20..=2048).contains(&arn.len()) && arn.starts_with("arn:") {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "roleArn '{arn}' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
        )))
    }
}

fn arn(state: &CoreState, name: &str) -> String {
    state.arn(&format!("rolealias/{name}"))
}

fn existing(state: &CoreState, name: &str) -> Result<RoleAlias, ApiError> {
    state
        .store
        .role_alias(name)?
        .ok_or_else(|| ApiError::not_found(format!("Role alias {name} does not exist")))
}

async fn create(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    check_alias(&name)?;
    let body = body_object(&body)?;
    let role_arn = required_str(&body, "roleArn")?;
    check_role_arn(role_arn)?;
    let a = RoleAlias {
        name: name.clone(),
        role_arn: role_arn.to_string(),
        duration: duration_from(&body)?.unwrap_or(DEFAULT_DURATION),
        created: now_secs(),
        modified: now_secs(),
    };
    let tags = parse_tags(&body, "tags")?;
    if !state.store.create_role_alias(&a, &tags)? {
        return Err(ApiError::already_exists(format!(
            "Role alias {name} already exists"
        )));
    }
    ok(json!({ "roleAlias": name, "roleAliasArn": arn(&state, &name) }))
}

async fn describe(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> ApiResult {
    let a = existing(&state, &name)?;
    ok(json!({ "roleAliasDescription": {
        "roleAlias": a.name,
        "roleAliasArn": arn(&state, &a.name),
        "roleArn": a.role_arn,
        "owner": state.account_id,
        "credentialDurationSeconds": a.duration,
        "creationDate": a.created,
        "lastModifiedDate": a.modified,
    }}))
}

async fn update(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let mut a = existing(&state, &name)?;
    if let Some(r) = body.get("roleArn").and_then(Value::as_str) {
        check_role_arn(r)?;
        a.role_arn = r.to_string();
    }
    if let Some(d) = duration_from(&body)? {
        a.duration = d;
    }
    state.store.update_role_alias(&a)?;
    ok(json!({ "roleAlias": name, "roleAliasArn": arn(&state, &name) }))
}

async fn delete(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> ApiResult {
    if !state.store.delete_role_alias(&name)? {
        return Err(ApiError::not_found(format!(
            "Role alias {name} does not exist"
        )));
    }
    empty()
}

/// Role aliases in the order ListRoleAliases gives them (pure): AWS's
/// `ascendingOrder` is "Return the list of role aliases in ascending
/// alphabetical order", so without it (or false) the order is descending.
fn alias_order(mut names: Vec<String>, ascending: bool) -> Vec<String> {
    names.sort();
    if !ascending {
        names.reverse();
    }
    names
}

async fn list(State(state): State<Arc<CoreState>>, mut q: Q) -> ApiResult {
    let ascending = match q.remove("isAscendingOrder").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(ApiError::invalid(format!(
                "isAscendingOrder '{v}' is not valid: use true or false"
            )))
        }
    };
    let names = alias_order(state.store.role_aliases()?, ascending);
    let (page, next) = page_in_order(names, &q)?;
    page_response("roleAliases", json!(page), "nextMarker", next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_list_descending_unless_ascending_is_asked() {
        let names = || vec!["b".to_string(), "a".to_string(), "c".to_string()];
        assert_eq!(alias_order(names(), false), ["c", "b", "a"]);
        assert_eq!(alias_order(names(), true), ["a", "b", "c"]);
    }

    #[test]
    fn aliases_and_durations_are_checked() {
        assert!(check_alias("robot-role_alias=1,@x").is_ok());
        assert!(check_alias("").is_err());
        assert!(check_alias("a/b").is_err());
        let b = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(duration_from(&b(json!({}))).unwrap(), None);
        assert_eq!(
            duration_from(&b(json!({"credentialDurationSeconds": 900}))).unwrap(),
            Some(900)
        );
        assert!(duration_from(&b(json!({"credentialDurationSeconds": 899}))).is_err());
        assert!(duration_from(&b(json!({"credentialDurationSeconds": 43201}))).is_err());
        assert!(check_role_arn("arn:aws:iam::123456789012:role/robot").is_ok());
        assert!(check_role_arn("role/robot").is_err());
    }
}
