//! AWS-shaped API errors: HTTP status, `x-amzn-ErrorType` header and a
//! `{"message": ".."}` body, the way botocore and the aws CLI parse them.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};

/// An error returned to an API client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind} ({status}): {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// AWS error type, e.g. `ResourceNotFoundException`.
    pub kind: &'static str,
    /// Human-readable message: what is wrong and what to do.
    pub message: String,
    /// Further members of the error body, as some AWS errors carry them
    /// (ResourceAlreadyExistsException's `resourceId` and `resourceArn`).
    pub fields: Vec<(&'static str, String)>,
}

impl ApiError {
    /// Any error.
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            fields: Vec::new(),
        }
    }
    /// Adds a member to the error body.
    pub fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((key, value.into()));
        self
    }
    /// 400 InvalidRequestException.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidRequestException", message)
    }
    /// 404 ResourceNotFoundException.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "ResourceNotFoundException", message)
    }
    /// 409 ResourceAlreadyExistsException.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(409, "ResourceAlreadyExistsException", message)
    }
    /// 409 DeleteConflictException.
    pub fn delete_conflict(message: impl Into<String>) -> Self {
        Self::new(409, "DeleteConflictException", message)
    }
    /// 406 CertificateStateException.
    pub fn certificate_state(message: impl Into<String>) -> Self {
        Self::new(406, "CertificateStateException", message)
    }
    /// 400 MalformedPolicyException.
    pub fn malformed_policy(message: impl Into<String>) -> Self {
        Self::new(400, "MalformedPolicyException", message)
    }
    /// 403, for SigV4 failures.
    pub fn forbidden(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(403, kind, message)
    }
    /// 500 InternalFailureException; details go to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal failure");
        Self::new(
            500,
            "InternalFailureException",
            "internal failure in the local core; its log has the details",
        )
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::internal(format!("registry database: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = serde_json::json!({ "message": self.message });
        for (k, v) in self.fields {
            body[k] = serde_json::Value::String(v);
        }
        let body = body.to_string();
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert("x-amzn-ErrorType", HeaderValue::from_static(self.kind));
        resp
    }
}
