//! Domain configurations, stored: CreateDomainConfiguration,
//! DescribeDomainConfiguration, UpdateDomainConfiguration,
//! DeleteDomainConfiguration, ListDomainConfigurations. The local core serves
//! one endpoint whatever is stored; the records let stacks that declare
//! custom domains deploy and read them back.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::parse_tags;
use super::principals::page_in_order;
use super::store::DomainConfiguration;
use crate::control::{body_object, empty, ok, page_response, ApiResult, Q};
use crate::error::ApiError;
use crate::store::now_secs;
use crate::CoreState;

/// Domain-configuration routes.
pub fn routes() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/domainConfigurations", get(list))
        .route(
            "/domainConfigurations/{name}",
            post(create).get(describe).put(update).delete(delete),
        )
}

/// Fields stored as given on create and update.
const PASSED_THROUGH: &[&str] = &[
    "authorizerConfig",
    "tlsConfig",
    "serverCertificateConfig",
    "authenticationType",
    "applicationProtocol",
    "clientCertificateConfig",
];

/// AWS's name rule: `[\w.-]+`, 1 to 128 characters.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "domainConfigurationName '{name}' is not valid: use 1 to 128 of letters, digits and _.-"
        )))
    }
}

fn not_found() -> ApiError {
    // AWS's text as moto records it.
    ApiError::not_found("The specified resource does not exist.")
}

/// The described fields of a new configuration (pure): defaults are
/// ENABLED, service type DATA, and AWS_MANAGED unless a domain name is given.
pub fn new_document(body: &Map<String, Value>, now: f64) -> Result<Map<String, Value>, ApiError> {
    let service = match body.get("serviceType") {
        None | Some(Value::Null) => "DATA",
        Some(Value::String(s)) if ["DATA", "CREDENTIAL_PROVIDER", "JOBS"].contains(&s.as_str()) => {
            s.as_str()
        }
        Some(other) => {
            let s = other
                .as_str()
                .map(str::to_string)
                .unwrap_or(other.to_string());
            return Err(ApiError::invalid(format!(
                "Service type {s} not recognized."
            )));
        }
    };
    let mut doc = Map::new();
    doc.insert("serviceType".into(), json!(service));
    doc.insert("domainConfigurationStatus".into(), json!("ENABLED"));
    doc.insert("lastStatusChangeDate".into(), json!(now));
    let domain = body.get("domainName").and_then(Value::as_str);
    doc.insert(
        "domainType".into(),
        json!(if domain.is_some() {
            "CUSTOMER_MANAGED"
        } else {
            "AWS_MANAGED"
        }),
    );
    if let Some(d) = domain {
        doc.insert("domainName".into(), json!(d));
    }
    let certs: Vec<Value> = body
        .get("serverCertificateArns")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(|a| json!({"serverCertificateArn": a, "serverCertificateStatus": "VALID"}))
                .collect()
        })
        .unwrap_or_default();
    doc.insert("serverCertificates".into(), json!(certs));
    copy_fields(body, &mut doc);
    Ok(doc)
}

fn copy_fields(body: &Map<String, Value>, doc: &mut Map<String, Value>) {
    for k in PASSED_THROUGH {
        if let Some(v) = body.get(*k).filter(|v| !v.is_null()) {
            doc.insert((*k).to_string(), v.clone());
        }
    }
}

/// Applies an UpdateDomainConfiguration (pure).
pub fn apply_update(
    doc: &mut Map<String, Value>,
    body: &Map<String, Value>,
    now: f64,
) -> Result<(), ApiError> {
    match body.get("domainConfigurationStatus") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "ENABLED" || s == "DISABLED" => {
            if doc.get("domainConfigurationStatus").and_then(Value::as_str) != Some(s) {
                doc.insert("lastStatusChangeDate".into(), json!(now));
            }
            doc.insert("domainConfigurationStatus".into(), json!(s));
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "domainConfigurationStatus {other} is not valid: use ENABLED or DISABLED"
            )))
        }
    }
    copy_fields(body, doc);
    if body.get("removeAuthorizerConfig").and_then(Value::as_bool) == Some(true) {
        doc.remove("authorizerConfig");
    }
    Ok(())
}

fn arn(state: &CoreState, d: &DomainConfiguration) -> String {
    state.arn(&format!("domainconfiguration/{}/{}", d.name, d.id))
}

fn existing(state: &CoreState, name: &str) -> Result<DomainConfiguration, ApiError> {
    state
        .store
        .domain_configuration(name)?
        .ok_or_else(not_found)
}

async fn create(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    check_name(&name)?;
    let body = body_object(&body)?;
    let d = DomainConfiguration {
        name: name.clone(),
        id: uuid::Uuid::new_v4().simple().to_string()[..5].to_string(),
        document: new_document(&body, now_secs())?,
    };
    let tags = parse_tags(&body, "tags")?;
    if !state.store.create_domain_configuration(&d, &tags)? {
        return Err(ApiError::already_exists(
            "Domain configuration with given name already exists.",
        ));
    }
    ok(json!({ "domainConfigurationName": name, "domainConfigurationArn": arn(&state, &d) }))
}

async fn describe(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> ApiResult {
    let d = existing(&state, &name)?;
    let mut v = Value::Object(d.document.clone());
    v["domainConfigurationName"] = json!(d.name);
    v["domainConfigurationArn"] = json!(arn(&state, &d));
    ok(v)
}

async fn update(
    State(state): State<Arc<CoreState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let mut d = existing(&state, &name)?;
    apply_update(&mut d.document, &body, now_secs())?;
    state.store.set_domain_configuration(&d)?;
    ok(json!({ "domainConfigurationName": name, "domainConfigurationArn": arn(&state, &d) }))
}

async fn delete(State(state): State<Arc<CoreState>>, Path(name): Path<String>) -> ApiResult {
    if !state.store.delete_domain_configuration(&name)? {
        return Err(not_found());
    }
    empty()
}

async fn list(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let all: Vec<DomainConfiguration> = state
        .store
        .domain_configurations()?
        .into_iter()
        .filter(|d| {
            q.get("serviceType")
                .is_none_or(|s| d.document.get("serviceType").and_then(Value::as_str) == Some(s))
        })
        .collect();
    let names: Vec<String> = all.iter().map(|d| d.name.clone()).collect();
    let (page, next) = page_in_order(names, &q)?;
    let items: Vec<Value> = page
        .iter()
        .filter_map(|n| all.iter().find(|d| &d.name == n))
        .map(|d| {
            json!({
                "domainConfigurationName": d.name,
                "domainConfigurationArn": arn(&state, d),
                "serviceType": d.document.get("serviceType"),
            })
        })
        .collect();
    page_response("domainConfigurations", json!(items), "nextMarker", next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn documents_default_and_update_like_aws() {
        let doc = new_document(&body(json!({})), 1.0).unwrap();
        assert_eq!(doc["serviceType"], json!("DATA"));
        assert_eq!(doc["domainType"], json!("AWS_MANAGED"));
        assert_eq!(doc["domainConfigurationStatus"], json!("ENABLED"));
        let mut doc = new_document(
            &body(json!({"domainName": "iot.example.com", "serverCertificateArns": ["A"],
                         "authorizerConfig": {"defaultAuthorizerName": "n"}, "serviceType": "JOBS"})),
            1.0,
        )
        .unwrap();
        assert_eq!(doc["domainType"], json!("CUSTOMER_MANAGED"));
        assert_eq!(
            doc["serverCertificates"][0]["serverCertificateStatus"],
            json!("VALID")
        );
        let e = new_document(&body(json!({"serviceType": "NOPE"})), 1.0).unwrap_err();
        assert_eq!(e.message, "Service type NOPE not recognized.");

        apply_update(
            &mut doc,
            &body(json!({"domainConfigurationStatus": "DISABLED"})),
            5.0,
        )
        .unwrap();
        assert_eq!(doc["domainConfigurationStatus"], json!("DISABLED"));
        assert_eq!(doc["lastStatusChangeDate"], json!(5.0));
        apply_update(
            &mut doc,
            &body(json!({"removeAuthorizerConfig": true})),
            6.0,
        )
        .unwrap();
        assert!(!doc.contains_key("authorizerConfig"));
        assert!(apply_update(
            &mut doc,
            &body(json!({"domainConfigurationStatus": "OFF"})),
            7.0
        )
        .is_err());
        assert!(check_name("bad/name").is_err());
    }
}
