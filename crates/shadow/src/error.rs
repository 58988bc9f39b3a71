//! The Device Shadow service's error responses.
//!
//! Codes and messages follow the AWS IoT Developer Guide page "Device Shadow
//! error messages" word for word, so that clients which match on the message
//! text (the AWS device SDKs log it, some samples compare it) behave as they do
//! against AWS.

use serde_json::{json, Value};

/// Message for 400: the payload is not JSON (or not a JSON object).
pub const MSG_INVALID_JSON: &str = "Invalid JSON";
/// Message for 400: an update without a `state` node.
pub const MSG_MISSING_STATE: &str = "Missing required node: state";
/// Message for 400: `state` is neither an object nor `null`.
pub const MSG_STATE_NOT_OBJECT: &str = "State node must be an object";
/// Message for 400: `state.desired` is neither an object nor `null`.
pub const MSG_DESIRED_NOT_OBJECT: &str = "Desired node must be an object";
/// Message for 400: `state.reported` is neither an object nor `null`.
pub const MSG_REPORTED_NOT_OBJECT: &str = "Reported node must be an object";
/// Message for 400: `version` is not a non-negative integer.
pub const MSG_INVALID_VERSION: &str = "Invalid version";
/// Message for 400: `clientToken` is not a string of at most 64 bytes.
pub const MSG_INVALID_CLIENT_TOKEN: &str = "Invalid clientToken";
/// Message for 400: the state nests objects/arrays more than 6 levels deep.
pub const MSG_TOO_DEEP: &str = "JSON contains too many levels of nesting; maximum is 6";
/// Message for 400: `state` holds something other than `desired`/`reported`,
/// or an array holds a `null`.
pub const MSG_INVALID_NODE: &str = "State contains an invalid node";
/// Message for 401.
pub const MSG_UNAUTHORIZED: &str = "Unauthorized";
/// Message for 403.
pub const MSG_FORBIDDEN: &str = "Forbidden";
/// Message for 404 when the thing itself is unknown.
pub const MSG_THING_NOT_FOUND: &str = "Thing not found";
/// Message for 409: the request's `version` is not the shadow's current one.
pub const MSG_VERSION_CONFLICT: &str = "Version conflict";
/// Message for 413: the resulting `desired` + `reported` exceed the size limit.
pub const MSG_PAYLOAD_TOO_LARGE: &str = "The payload exceeds the maximum size allowed";
/// Message for 415: the payload is not UTF-8.
pub const MSG_UNSUPPORTED_ENCODING: &str =
    "Unsupported documented encoding; supported encoding is UTF-8";
/// Message for 429: more than 10 requests in flight on one connection, or
/// more than the per-thing request rate.
pub const MSG_TOO_MANY_REQUESTS: &str = "Too Many Requests";
/// Message for 500.
pub const MSG_INTERNAL: &str = "Internal service failure";

/// A rejected shadow request: the HTTP status code AWS uses and its message.
///
/// Over MQTT this becomes the `/rejected` payload ([`ShadowError::rejected_payload`]);
/// over HTTP the code is the response status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shadow request rejected with {code}: {message}")]
pub struct ShadowError {
    /// HTTP status code: 400, 401, 403, 404, 409, 413, 415, 429 or 500.
    pub code: u16,
    /// The message text, as AWS words it.
    pub message: String,
}

impl ShadowError {
    /// An error with any code and message.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// 400 Bad Request with one of the `MSG_*` texts.
    pub fn bad_request(message: &str) -> Self {
        Self::new(400, message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, MSG_UNAUTHORIZED)
    }

    /// 403 Forbidden (the caller's policy denies the shadow action).
    pub fn forbidden() -> Self {
        Self::new(403, MSG_FORBIDDEN)
    }

    /// 404 for a shadow that does not exist (or was deleted).
    ///
    /// AWS quotes the name: `No shadow exists with name: 'thing'` for the
    /// classic shadow and `'thing~shadow'` for a named one (as seen in the AWS
    /// IoT tutorial "Simulate a device shadow" and in SDK sample logs).
    pub fn no_shadow(thing: &str, shadow_name: Option<&str>) -> Self {
        let name = match shadow_name {
            Some(shadow) => format!("{thing}~{shadow}"),
            None => thing.to_string(),
        };
        Self::new(404, format!("No shadow exists with name: '{name}'"))
    }

    /// 404 for an unknown thing.
    pub fn thing_not_found() -> Self {
        Self::new(404, MSG_THING_NOT_FOUND)
    }

    /// 409 Conflict: the request's `version` is not the current version.
    pub fn version_conflict() -> Self {
        Self::new(409, MSG_VERSION_CONFLICT)
    }

    /// 413 Payload Too Large.
    pub fn payload_too_large() -> Self {
        Self::new(413, MSG_PAYLOAD_TOO_LARGE)
    }

    /// 415 Unsupported Media Type (payload is not UTF-8).
    pub fn unsupported_encoding() -> Self {
        Self::new(415, MSG_UNSUPPORTED_ENCODING)
    }

    /// 429 Too Many Requests (over the per-thing rate, or more than 10 in
    /// flight on one connection).
    pub fn too_many_requests() -> Self {
        Self::new(429, MSG_TOO_MANY_REQUESTS)
    }

    /// 500 Internal Server Error.
    pub fn internal() -> Self {
        Self::new(500, MSG_INTERNAL)
    }

    /// The error response document published on `.../rejected`:
    /// `{"code", "message", "timestamp", "clientToken"?}`.
    pub fn rejected_payload(&self, client_token: Option<&str>, now: u64) -> Value {
        let mut doc = json!({
            "code": self.code,
            "message": self.message,
            "timestamp": now,
        });
        if let (Some(token), Some(obj)) = (client_token, doc.as_object_mut()) {
            obj.insert("clientToken".into(), Value::String(token.to_string()));
        }
        doc
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rejected_payload_matches_the_error_response_document() {
        // "Error response document" in "Device Shadow service documents";
        // the 409 example in "Interacting with shadows" / Optimistic locking.
        let err = ShadowError::version_conflict();
        assert_eq!(
            err.rejected_payload(Some("426bfd96-e720-46d3-95cd-014e3ef12bb6"), 1_700_000_000),
            json!({
                "code": 409,
                "message": "Version conflict",
                "timestamp": 1_700_000_000u64,
                "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6"
            })
        );
        let without = err.rejected_payload(None, 5);
        assert!(without.get("clientToken").is_none());
    }

    #[test]
    fn not_found_names_classic_and_named_shadows_as_aws_does() {
        assert_eq!(
            ShadowError::no_shadow("simShadow1", None).message,
            "No shadow exists with name: 'simShadow1'"
        );
        assert_eq!(
            ShadowError::no_shadow("bot", Some("GrootShadow")).message,
            "No shadow exists with name: 'bot~GrootShadow'"
        );
        assert_eq!(ShadowError::no_shadow("x", None).code, 404);
    }
}
