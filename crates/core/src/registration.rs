//! Certificate registration: your own CA certificates (RegisterCACertificate,
//! GetRegistrationCode, Describe/List/Update/DeleteCACertificate) and device
//! certificates made outside the core (RegisterCertificate,
//! RegisterCertificateWithoutCA, ListCertificatesByCA).
//!
//! As on AWS, a device certificate from a registered, ACTIVE CA connects to
//! the broker once the certificate itself is registered and ACTIVE: the
//! broker's verifier asks [`trusted_cas`] for the extra trust anchors on each
//! handshake, so registering, deactivating or deleting a CA takes effect for
//! the next connection. A certificate registered without a CA (AWS's
//! `SNI_ONLY` mode) is trusted by its fingerprint alone; the TLS handshake
//! still proves the device holds its private key.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use rusqlite::{params, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::control::{
    body_object, check_certificate_id, empty, ok, page_size, query_bool, required_str, ApiResult, Q,
};
use crate::error::ApiError;
use crate::store::{now_secs, Certificate};
use crate::CoreState;

/// Tables of this module (created with the store's).
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS ca_certificates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    pem TEXT NOT NULL,
    status TEXT NOT NULL,
    auto_registration TEXT NOT NULL,
    mode TEXT NOT NULL,
    registration_config TEXT NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    customer_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS certificate_registrations (
    id TEXT PRIMARY KEY,
    ca_id TEXT,
    mode TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS certificate_registrations_by_ca ON certificate_registrations(ca_id);
"#;

/// The registration routes.
pub fn router() -> Router<Arc<CoreState>> {
    Router::new()
        .route("/registrationcode", get(get_registration_code))
        .route("/cacertificate", post(register_ca_certificate))
        .route(
            "/cacertificate/{id}",
            get(describe_ca_certificate)
                .put(update_ca_certificate)
                .delete(delete_ca_certificate),
        )
        .route("/cacertificates", get(list_ca_certificates))
        .route("/certificate/register", post(register_certificate))
        .route(
            "/certificate/register-no-ca",
            post(register_certificate_without_ca),
        )
        .route("/certificates-by-ca/{id}", get(list_certificates_by_ca))
}

/// A registered CA certificate.
#[derive(Debug, Clone)]
struct CaCertificate {
    id: String,
    pem: String,
    status: String,
    auto_registration: String,
    mode: String,
    registration_config: Value,
    created: f64,
    modified: f64,
    not_before: i64,
    not_after: i64,
    customer_version: i64,
    seq: i64,
}

const CA_COLUMNS: &str = "id, pem, status, auto_registration, mode, registration_config, created, modified, not_before, not_after, customer_version, seq";

fn ca_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CaCertificate> {
    let config: String = r.get(5)?;
    Ok(CaCertificate {
        id: r.get(0)?,
        pem: r.get(1)?,
        status: r.get(2)?,
        auto_registration: r.get(3)?,
        mode: r.get(4)?,
        registration_config: serde_json::from_str(&config).unwrap_or(json!({})),
        created: r.get(6)?,
        modified: r.get(7)?,
        not_before: r.get(8)?,
        not_after: r.get(9)?,
        customer_version: r.get(10)?,
        seq: r.get(11)?,
    })
}

fn ca_certificate(state: &CoreState, id: &str) -> Result<Option<CaCertificate>, ApiError> {
    state.store.tx(|tx| {
        Ok(tx
            .query_row(
                &format!("SELECT {CA_COLUMNS} FROM ca_certificates WHERE id=?1"),
                [id],
                ca_row,
            )
            .optional()?)
    })
}

fn all_ca_certificates(state: &CoreState) -> Result<Vec<CaCertificate>, ApiError> {
    state.store.tx(|tx| {
        let mut stmt = tx.prepare(&format!(
            "SELECT {CA_COLUMNS} FROM ca_certificates ORDER BY seq"
        ))?;
        let rows = stmt.query_map([], ca_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
}

fn existing_ca(state: &CoreState, id: &str) -> Result<CaCertificate, ApiError> {
    check_certificate_id(id)?;
    ca_certificate(state, id)?
        .ok_or_else(|| ApiError::not_found(format!("The CA certificate {id} does not exist")))
}

/// DER of every ACTIVE registered CA certificate: the broker trusts device
/// certificates that chain to one of them, besides the core's own CA.
pub fn trusted_cas(state: &CoreState) -> Vec<Vec<u8>> {
    let cas = match all_ca_certificates(state) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot read registered CA certificates; trusting none");
            return Vec::new();
        }
    };
    cas.into_iter()
        .filter(|c| c.status == "ACTIVE")
        .filter_map(|c| gopigo_pki::parse_certificate_pem(&c.pem).ok())
        .map(|info| info.der)
        .collect()
}

/// Whether the device certificate was registered without a CA (SNI_ONLY):
/// the broker then trusts it by its fingerprint.
pub fn registered_without_ca(state: &CoreState, certificate_id: &str) -> bool {
    registration_of(state, certificate_id)
        .ok()
        .flatten()
        .is_some_and(|(ca, _)| ca.is_none())
}

/// `(caCertificateId, certificateMode)` of a registered device certificate.
pub fn registration_of(
    state: &CoreState,
    certificate_id: &str,
) -> Result<Option<(Option<String>, String)>, ApiError> {
    state.store.tx(|tx| {
        Ok(tx
            .query_row(
                "SELECT ca_id, mode FROM certificate_registrations WHERE id=?1",
                [certificate_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    })
}

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "CertificateValidationException", message)
}

fn parse_pem(what: &str, pem: &str) -> Result<gopigo_pki::CertificateInfo, ApiError> {
    let info = gopigo_pki::parse_certificate_pem(pem).map_err(|e| {
        validation(format!(
            "The {what} is not a valid PEM X.509 certificate ({e}); pass the -----BEGIN CERTIFICATE----- text"
        ))
    })?;
    match gopigo_pki::certificate_version(&info.der) {
        Some(3) => Ok(info),
        v => Err(validation(format!(
            "The {what} is X.509 version {}: TLS peers (and this broker) accept version 3 only; sign it again with extensions (openssl x509 -req ... -extfile with basicConstraints)",
            v.unwrap_or(0)
        ))),
    }
}

// --------------------------------------------------------- registration code

async fn get_registration_code(State(state): State<Arc<CoreState>>) -> ApiResult {
    ok(json!({ "registrationCode": registration_code(&state)? }))
}

/// The account's registration code: made once, the same on every call, as on
/// AWS. The verification certificate's common name must be this code.
fn registration_code(state: &CoreState) -> Result<String, ApiError> {
    state.store.meta_get_or_init("registration_code", || {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    })
}

// ------------------------------------------------------------ CA certificates

fn check_mode(body: &Map<String, Value>) -> Result<String, ApiError> {
    match body.get("certificateMode") {
        None | Some(Value::Null) => Ok("DEFAULT".into()),
        Some(Value::String(m)) if m == "DEFAULT" || m == "SNI_ONLY" => Ok(m.clone()),
        Some(other) => Err(ApiError::invalid(format!(
            "certificateMode {other} is not valid: use DEFAULT or SNI_ONLY"
        ))),
    }
}

/// DEFAULT mode proves the caller holds the CA's key: a verification
/// certificate whose common name is the registration code, signed by the CA.
fn check_verification(
    state: &CoreState,
    ca: &gopigo_pki::CertificateInfo,
    body: &Map<String, Value>,
) -> Result<(), ApiError> {
    let pem = match body.get("verificationCertificate") {
        Some(Value::String(p)) => p,
        _ => {
            return Err(ApiError::invalid(
                "verificationCertificate is required in DEFAULT mode: sign a certificate whose common name is the registration code (get-registration-code) with the CA's key, or register with --certificate-mode SNI_ONLY",
            ))
        }
    };
    let verification = parse_pem("verification certificate", pem)?;
    let code = registration_code(state)?;
    if verification.common_name.as_deref() != Some(code.as_str()) {
        return Err(ApiError::new(
            400,
            "RegistrationCodeValidationException",
            "The verification certificate does not contain the correct registration code: its subject common name must be the code get-registration-code returns",
        ));
    }
    if !gopigo_pki::is_issued_by(&verification.der, &ca.der) {
        return Err(validation(
            "The verification certificate is not signed by the CA certificate: sign it with the CA's private key",
        ));
    }
    Ok(())
}

async fn register_ca_certificate(
    State(state): State<Arc<CoreState>>,
    q: Q,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let pem = required_str(&body, "caCertificate")?;
    let info = parse_pem("CA certificate", pem)?;
    if !gopigo_pki::is_ca_certificate(&info.der) {
        return Err(validation(
            "CA certificate is not valid. The CA certificate does not have the basicConstraints extension as true",
        ));
    }
    let mode = check_mode(&body)?;
    if mode == "DEFAULT" {
        check_verification(&state, &info, &body)?;
    }
    let arn = state.arn(&format!("cacert/{}", info.id));
    if ca_certificate(&state, &info.id)?.is_some() {
        return Err(
            ApiError::already_exists("The CA certificate is already registered")
                .with("resourceId", info.id.clone())
                .with("resourceArn", arn),
        );
    }
    let status = if query_bool(&q, "setAsActive")? {
        "ACTIVE"
    } else {
        "INACTIVE"
    };
    let auto = if query_bool(&q, "allowAutoRegistration")? {
        "ENABLE"
    } else {
        "DISABLE"
    };
    let config = body.get("registrationConfig").cloned().unwrap_or(json!({}));
    let now = now_secs();
    state.store.tx(|tx| {
        tx.execute(
            "INSERT INTO ca_certificates(id,pem,status,auto_registration,mode,registration_config,created,modified,not_before,not_after,customer_version)
             VALUES(?1,?2,?3,?4,?5,?6,?7,?7,?8,?9,1)",
            params![info.id, pem, status, auto, mode, config.to_string(), now, info.not_before, info.not_after],
        )?;
        Ok(())
    })?;
    state.changed();
    tracing::info!(ca = %info.id, status, mode, "registered a CA certificate");
    ok(json!({ "certificateArn": arn, "certificateId": info.id }))
}

async fn describe_ca_certificate(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
) -> ApiResult {
    let c = existing_ca(&state, &id)?;
    ok(json!({
        "certificateDescription": {
            "certificateArn": state.arn(&format!("cacert/{}", c.id)),
            "certificateId": c.id,
            "status": c.status,
            "certificatePem": c.pem,
            "ownedBy": state.account_id,
            "creationDate": c.created,
            "autoRegistrationStatus": c.auto_registration,
            "lastModifiedDate": c.modified,
            "customerVersion": c.customer_version,
            "generationId": format!("{}-{}", c.id.get(..8).unwrap_or(""), c.customer_version),
            "validity": { "notBefore": c.not_before, "notAfter": c.not_after },
            "certificateMode": c.mode,
        },
        "registrationConfig": c.registration_config,
    }))
}

/// Pages `items` (in `seq` order) with a numeric marker, as ListCertificates does.
fn seq_page<T>(
    mut items: Vec<T>,
    seq: impl Fn(&T) -> i64,
    q: &std::collections::HashMap<String, String>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = page_size(q, "pageSize", 25)?;
    let ascending = q.get("isAscendingOrder").map(String::as_str) != Some("false");
    if !ascending {
        items.reverse();
    }
    if let Some(m) = q.get("marker") {
        let after: i64 = m.parse().map_err(|_| {
            ApiError::invalid(format!(
                "marker '{m}' is not a marker this API returned; list again without it"
            ))
        })?;
        items.retain(|i| {
            if ascending {
                seq(i) > after
            } else {
                seq(i) < after
            }
        });
    }
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(|i| seq(i).to_string());
        Ok((items, next))
    } else {
        Ok((items, None))
    }
}

fn page_json(list: Vec<Value>, next: Option<String>) -> ApiResult {
    let mut v = json!({ "certificates": list });
    if let Some(n) = next {
        v["nextMarker"] = json!(n);
    }
    ok(v)
}

async fn list_ca_certificates(State(state): State<Arc<CoreState>>, q: Q) -> ApiResult {
    let (page, next) = seq_page(all_ca_certificates(&state)?, |c| c.seq, &q)?;
    let list = page
        .iter()
        .map(|c| {
            json!({
                "certificateArn": state.arn(&format!("cacert/{}", c.id)),
                "certificateId": c.id,
                "status": c.status,
                "creationDate": c.created,
            })
        })
        .collect();
    page_json(list, next)
}

fn check_ca_update(q: &std::collections::HashMap<String, String>) -> Result<(), ApiError> {
    if let Some(s) = q.get("newStatus") {
        if s != "ACTIVE" && s != "INACTIVE" {
            return Err(ApiError::invalid(format!(
                "newStatus '{s}' is not a CA certificate status: use ACTIVE or INACTIVE"
            )));
        }
    }
    if let Some(s) = q.get("newAutoRegistrationStatus") {
        if s != "ENABLE" && s != "DISABLE" {
            return Err(ApiError::invalid(format!(
                "newAutoRegistrationStatus '{s}' is not valid: use ENABLE or DISABLE"
            )));
        }
    }
    Ok(())
}

async fn update_ca_certificate(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
    q: Q,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    check_ca_update(&q)?;
    let mut c = existing_ca(&state, &id)?;
    if let Some(s) = q.get("newStatus") {
        c.status = s.clone();
    }
    if let Some(s) = q.get("newAutoRegistrationStatus") {
        c.auto_registration = s.clone();
    }
    if let Some(config) = body.get("registrationConfig") {
        c.registration_config = config.clone();
    }
    if body.get("removeAutoRegistration").and_then(Value::as_bool) == Some(true) {
        c.auto_registration = "DISABLE".into();
    }
    state.store.tx(|tx| {
        tx.execute(
            "UPDATE ca_certificates SET status=?2, auto_registration=?3, registration_config=?4,
             modified=?5, customer_version=customer_version+1 WHERE id=?1",
            params![
                c.id,
                c.status,
                c.auto_registration,
                c.registration_config.to_string(),
                now_secs()
            ],
        )?;
        Ok(())
    })?;
    state.changed();
    empty()
}

async fn delete_ca_certificate(
    State(state): State<Arc<CoreState>>,
    Path(id): Path<String>,
) -> ApiResult {
    let c = existing_ca(&state, &id)?;
    if c.status == "ACTIVE" {
        return Err(ApiError::certificate_state(format!(
            "The CA certificate {id} is ACTIVE: deactivate it (update-ca-certificate --new-status INACTIVE) before deleting it"
        )));
    }
    state.store.tx(|tx| {
        tx.execute("DELETE FROM ca_certificates WHERE id=?1", [&id])?;
        Ok(())
    })?;
    state.changed();
    empty()
}

// -------------------------------------------------------- device certificates

fn check_status(body: &Map<String, Value>, set_as_active: bool) -> Result<String, ApiError> {
    if set_as_active {
        return Ok("ACTIVE".into());
    }
    match body.get("status") {
        None | Some(Value::Null) => Ok("INACTIVE".into()),
        Some(Value::String(s)) if ["ACTIVE", "INACTIVE", "REVOKED"].contains(&s.as_str()) => {
            Ok(s.clone())
        }
        Some(other) => Err(ApiError::invalid(format!(
            "status {other} is not valid for a registered certificate: use ACTIVE, INACTIVE or REVOKED"
        ))),
    }
}

/// The registered CA (or the core's own) that issued `cert`: the one given as
/// `caCertificatePem`, else any registered one that verifies it.
fn issuing_ca(
    state: &CoreState,
    cert: &gopigo_pki::CertificateInfo,
    body: &Map<String, Value>,
) -> Result<(Option<String>, String), ApiError> {
    if gopigo_pki::is_issued_by(&cert.der, state.ca.cert_der()) {
        return Ok((None, "DEFAULT".into()));
    }
    let candidates: Vec<CaCertificate> = match body.get("caCertificatePem") {
        Some(Value::String(pem)) => {
            let ca = parse_pem("CA certificate", pem)?;
            vec![ca_certificate(state, &ca.id)?.ok_or_else(|| {
                validation(format!(
                    "The CA certificate {} is not registered: register it with register-ca-certificate first",
                    ca.id
                ))
            })?]
        }
        _ => all_ca_certificates(state)?,
    };
    candidates
        .into_iter()
        .find(|ca| {
            gopigo_pki::parse_certificate_pem(&ca.pem)
                .is_ok_and(|info| gopigo_pki::is_issued_by(&cert.der, &info.der))
        })
        .map(|ca| (Some(ca.id), ca.mode))
        .ok_or_else(|| {
            validation(
                "The certificate is not signed by a registered CA certificate: register its CA with register-ca-certificate, or use register-certificate-without-ca",
            )
        })
}

fn insert_registered(
    state: &CoreState,
    info: &gopigo_pki::CertificateInfo,
    pem: &str,
    status: &str,
    ca: (Option<String>, String),
) -> ApiResult {
    let arn = state.arn(&format!("cert/{}", info.id));
    if state.store.certificate(&info.id)?.is_some() {
        return Err(ApiError::already_exists(
            "The certificate is already provisioned or registered",
        )
        .with("resourceId", info.id.clone())
        .with("resourceArn", arn));
    }
    let now = now_secs();
    state.store.insert_certificate(&Certificate {
        id: info.id.clone(),
        pem: pem.to_string(),
        status: status.to_string(),
        created: now,
        modified: now,
        not_before: info.not_before,
        not_after: info.not_after,
        customer_version: 1,
        seq: 0,
    })?;
    state.store.tx(|tx| {
        tx.execute(
            "INSERT INTO certificate_registrations(id,ca_id,mode) VALUES(?1,?2,?3)
             ON CONFLICT(id) DO UPDATE SET ca_id=excluded.ca_id, mode=excluded.mode",
            params![info.id, ca.0, ca.1],
        )?;
        Ok(())
    })?;
    state.changed();
    tracing::info!(certificate = %info.id, status, ca = ?ca.0, "registered a device certificate");
    ok(json!({ "certificateArn": arn, "certificateId": info.id }))
}

async fn register_certificate(State(state): State<Arc<CoreState>>, q: Q, body: Bytes) -> ApiResult {
    let body = body_object(&body)?;
    let pem = required_str(&body, "certificatePem")?;
    let info = parse_pem("certificate", pem)?;
    let status = check_status(&body, query_bool(&q, "setAsActive")?)?;
    let ca = issuing_ca(&state, &info, &body)?;
    insert_registered(&state, &info, pem, &status, ca)
}

async fn register_certificate_without_ca(
    State(state): State<Arc<CoreState>>,
    body: Bytes,
) -> ApiResult {
    let body = body_object(&body)?;
    let pem = required_str(&body, "certificatePem")?;
    let info = parse_pem("certificate", pem)?;
    let status = check_status(&body, false)?;
    insert_registered(&state, &info, pem, &status, (None, "SNI_ONLY".into()))
}

async fn list_certificates_by_ca(
    State(state): State<Arc<CoreState>>,
    Path(ca_id): Path<String>,
    q: Q,
) -> ApiResult {
    existing_ca(&state, &ca_id)?;
    let certs: Vec<(String, String, f64, i64)> = state.store.tx(|tx| {
        let mut stmt = tx.prepare(
            "SELECT c.id, c.status, c.created, c.seq FROM certificates c
             JOIN certificate_registrations r ON r.id = c.id
             WHERE r.ca_id = ?1 ORDER BY c.seq",
        )?;
        let rows = stmt.query_map([&ca_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })?;
    let (page, next) = seq_page(certs, |c| c.3, &q)?;
    let list = page
        .iter()
        .map(|(id, status, created, _)| {
            json!({
                "certificateArn": state.arn(&format!("cert/{id}")),
                "certificateId": id,
                "status": status,
                "creationDate": created,
                "certificateMode": "DEFAULT",
            })
        })
        .collect();
    page_json(list, next)
}
