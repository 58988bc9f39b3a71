//! AWS Signature Version 4 verification for the control plane and iot-data.
//!
//! We parse the client's `Authorization` header ourselves, then let the
//! `aws-sigv4` crate recompute the signature over exactly the headers the
//! client said it signed, with the client's own timestamp, and compare. The
//! canonicalisation (double URI-encoding of the path, query sorting, header
//! normalisation) is the library's, so it matches what real SDKs compute.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http::HeaderMap;

use crate::error::ApiError;

/// One access key the core accepts.
#[derive(Clone)]
pub struct AccessKey {
    /// Access key id (`AKIA...`).
    pub id: String,
    /// Secret access key.
    pub secret: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq)]
pub struct AuthHeader {
    /// Access key id.
    pub access_key: String,
    /// Scope date `YYYYMMDD`.
    pub date: String,
    /// Scope region.
    pub region: String,
    /// Scope service (`iot`, `iotdata`).
    pub service: String,
    /// Lowercase signed header names, in order.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

fn incomplete(msg: impl Into<String>) -> ApiError {
    ApiError::forbidden("IncompleteSignatureException", msg)
}

/// Parses an `Authorization` header value (pure).
pub fn parse_authorization(value: &str) -> Result<AuthHeader, ApiError> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| {
        incomplete(format!(
            "Authorization header must start with 'AWS4-HMAC-SHA256 ' (got '{}'); sign requests with SigV4",
            value.split(' ').next().unwrap_or("")
        ))
    })?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let (Some(cred), Some(signed), Some(sig)) = (cred, signed, sig) else {
        return Err(incomplete(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters",
        ));
    };
    let scope: Vec<&str> = cred.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" {
        return Err(incomplete(format!(
            "Credential '{cred}' must look like AKID/YYYYMMDD/region/service/aws4_request"
        )));
    }
    Ok(AuthHeader {
        access_key: scope[0].to_string(),
        date: scope[1].to_string(),
        region: scope[2].to_string(),
        service: scope[3].to_string(),
        signed_headers: signed.split(';').map(|s| s.to_ascii_lowercase()).collect(),
        signature: sig.to_ascii_lowercase(),
    })
}

/// Parses an `X-Amz-Date` value (`20150830T123600Z`).
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let dt = time::PrimitiveDateTime::parse(s, &fmt).ok()?.assume_utc();
    let secs = u64::try_from(dt.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Checks SigV4 signatures against a set of access keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<AccessKey>,
    max_skew: Duration,
}

impl Verifier {
    /// A verifier accepting `keys`, with AWS's 5 minute clock-skew window.
    pub fn new(keys: Vec<AccessKey>) -> Self {
        Verifier {
            keys,
            max_skew: Duration::from_secs(300),
        }
    }

    /// Verifies one request. `path_and_query` is the raw (still percent-encoded)
    /// request target; `services` are the signing names this route accepts.
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
        services: &[&str],
        now: SystemTime,
    ) -> Result<(), ApiError> {
        let auth = authorization(headers)?;
        let key = self.key(&auth.access_key)?;
        check_service(&auth, services)?;
        let signed_at = self.signing_time(headers, &auth, now)?;
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| incomplete("missing Host header"))?;
        let request = SignedRequest {
            method,
            uri: format!("http://{host}{path_and_query}"),
            headers: signed_headers(headers, &auth)?,
            session_token: headers
                .get("x-amz-security-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body,
        };
        let expected = expected_signature(key, &auth, signed_at, request)?;
        if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
            ))
        }
    }

    /// The key the request names, if this core has it.
    fn key(&self, access_key: &str) -> Result<&AccessKey, ApiError> {
        self.keys.iter().find(|k| k.id == access_key).ok_or_else(|| {
            ApiError::forbidden(
                "UnrecognizedClientException",
                format!(
                    "The security token included in the request is invalid: access key {access_key} is not known to this core (use the credentials `gopigo core` wrote)"
                ),
            )
        })
    }

    /// The `X-Amz-Date` the client signed at: within the clock-skew window
    /// of `now`, and on the day its credential scope names.
    fn signing_time(
        &self,
        headers: &HeaderMap,
        auth: &AuthHeader,
        now: SystemTime,
    ) -> Result<SystemTime, ApiError> {
        let date = headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| incomplete("missing X-Amz-Date header"))?;
        let signed_at = parse_amz_date(date)
            .ok_or_else(|| incomplete(format!("X-Amz-Date '{date}' is not YYYYMMDDTHHMMSSZ")))?;
        let skew = now
            .duration_since(signed_at)
            .or_else(|e| Ok::<_, ()>(e.duration()))
            .unwrap_or_default();
        if skew > self.max_skew {
            return Err(ApiError::forbidden(
                "InvalidSignatureException",
                format!(
                    "Signature expired: {date} is more than 5 minutes away from the core's clock; fix this machine's clock"
                ),
            ));
        }
        if !date.starts_with(&auth.date) {
            return Err(ApiError::forbidden(
                "InvalidSignatureException",
                "Date in Credential scope does not match X-Amz-Date",
            ));
        }
        Ok(signed_at)
    }
}

/// The request's parsed `Authorization` header.
fn authorization(headers: &HeaderMap) -> Result<AuthHeader, ApiError> {
    let Some(auth) = headers.get(http::header::AUTHORIZATION) else {
        return Err(ApiError::forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: sign the request with SigV4 (the aws CLI and boto3 do; for the local core use the profile `gopigo core` prints)",
        ));
    };
    let auth = auth
        .to_str()
        .map_err(|_| incomplete("Authorization header is not ASCII"))?;
    parse_authorization(auth)
}

/// The credential must be scoped to one of the route's signing names.
fn check_service(auth: &AuthHeader, services: &[&str]) -> Result<(), ApiError> {
    if services.contains(&auth.service.as_str()) {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "InvalidSignatureException",
        format!(
            "Credential should be scoped to correct service: '{}'.",
            services.first().copied().unwrap_or("iot")
        ),
    ))
}

/// Exactly the headers the client signed, values of repeated headers kept
/// in order. `x-amz-date` comes from the signing time and the session token
/// from the credentials, so both are left out here.
fn signed_headers(
    headers: &HeaderMap,
    auth: &AuthHeader,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut signed = Vec::new();
    for name in &auth.signed_headers {
        if name == "x-amz-date" || name == "x-amz-security-token" {
            continue;
        }
        for v in headers.get_all(name.as_str()) {
            let v = v
                .to_str()
                .map_err(|_| incomplete(format!("header {name} is not ASCII")))?;
            signed.push((name.clone(), v.to_string()));
        }
    }
    Ok(signed)
}

/// What the signature covers besides the credential scope.
struct SignedRequest<'a> {
    method: &'a str,
    uri: String,
    headers: Vec<(String, String)>,
    session_token: Option<String>,
    body: &'a [u8],
}

/// The signature `key` gives `request` at `signed_at`, computed by
/// `aws-sigv4` so the canonical form is the SDKs' own.
fn expected_signature(
    key: &AccessKey,
    auth: &AuthHeader,
    signed_at: SystemTime,
    request: SignedRequest<'_>,
) -> Result<String, ApiError> {
    let identity = aws_credential_types::Credentials::new(
        key.id.clone(),
        key.secret.clone(),
        request.session_token,
        None,
        "gopigo-core",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(&auth.service)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(ApiError::internal)?
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.uri,
        request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| incomplete(format!("request cannot be canonicalised: {e}")))?;
    let (_, signature) = sign(signable, &params)
        .map_err(|e| incomplete(format!("request cannot be canonicalised: {e}")))?
        .into_parts();
    Ok(signature)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_authorization_header() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature=ABCDEF",
        )
        .unwrap();
        assert_eq!(a.access_key, "AKIDEXAMPLE");
        assert_eq!(a.date, "20150830");
        assert_eq!(a.region, "us-east-1");
        assert_eq!(a.service, "iot");
        assert_eq!(a.signed_headers, vec!["host", "x-amz-date"]);
        assert_eq!(a.signature, "abcdef");
    }

    #[test]
    fn rejects_malformed_authorization() {
        for bad in [
            "Basic dXNlcjpwYXNz",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iot/aws4_request",
            "AWS4-HMAC-SHA256 Credential=AKID/x, SignedHeaders=host, Signature=00",
        ] {
            let e = parse_authorization(bad).unwrap_err();
            assert_eq!(e.status, 403, "{bad}");
            assert_eq!(e.kind, "IncompleteSignatureException");
        }
    }

    #[test]
    fn parses_amz_date() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1440938160
        );
        assert!(parse_amz_date("2015-08-30").is_none());
    }

    /// The AWS SigV4 test suite's `get-vanilla` case: its published signature
    /// must verify, and any change to the secret must not.
    #[test]
    fn verifies_aws_test_suite_get_vanilla() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
                .parse()
                .unwrap(),
        );
        let now = parse_amz_date("20150830T123700Z").unwrap();
        let good = Verifier::new(vec![AccessKey {
            id: "AKIDEXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        }]);
        good.verify("GET", "/", &headers, b"", &["service"], now)
            .unwrap();
        let bad = Verifier::new(vec![AccessKey {
            id: "AKIDEXAMPLE".into(),
            secret: "not-the-secret".into(),
        }]);
        let e = bad
            .verify("GET", "/", &headers, b"", &["service"], now)
            .unwrap_err();
        assert_eq!(e.kind, "InvalidSignatureException");
        // Too far from the signing time.
        let late = parse_amz_date("20150830T130000Z").unwrap();
        let e = good
            .verify("GET", "/", &headers, b"", &["service"], late)
            .unwrap_err();
        assert!(e.message.contains("Signature expired"), "{}", e.message);
        // Wrong service scope.
        let e = good
            .verify("GET", "/", &headers, b"", &["iot"], now)
            .unwrap_err();
        assert!(e.message.contains("service"), "{}", e.message);
    }
}
