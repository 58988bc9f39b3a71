//! The Device Shadow service: one read-modify-write of the stored document per
//! request (in a store transaction), shared by the MQTT topics and the
//! iot-data HTTP API. The document logic itself is `gopigo-shadow`'s.

use gopigo_shadow::{ShadowError, ShadowOp, StoredShadow};
use serde_json::Value;

use crate::error::ApiError;
use crate::CoreState;

/// What one shadow request produced.
#[derive(Debug)]
pub struct ShadowOutcome {
    /// The accepted payload, or the rejection with the request's clientToken.
    pub result: Result<Value, (ShadowError, Option<String>)>,
    /// Messages to publish after an accepted change: `/accepted`, `/delta`,
    /// `/documents` (MQTT and HTTP requests alike).
    pub notifications: Vec<(String, Value)>,
}

/// Epoch seconds, the shadow documents' clock.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Applies one get / update / delete to the stored shadow, within AWS's
/// limits: 8 KB of `desired` + `reported` (413, in `gopigo-shadow`) and 20
/// requests a second per thing (429).
pub fn handle(
    state: &CoreState,
    thing: &str,
    name: Option<&str>,
    op: ShadowOp,
    payload: &[u8],
) -> Result<ShadowOutcome, ApiError> {
    if !state.shadow_request_allowed(thing) {
        let token = serde_json::from_slice::<Value>(payload)
            .ok()
            .and_then(|v| v.get("clientToken")?.as_str().map(str::to_string));
        return Ok(ShadowOutcome {
            result: Err((ShadowError::too_many_requests(), token)),
            notifications: Vec::new(),
        });
    }
    let key = name.unwrap_or("");
    let now = now();
    state.store.tx(|tx| {
        let current: Option<StoredShadow> =
            crate::store::get_shadow(tx, thing, key)?.and_then(|s| serde_json::from_str(&s).ok());
        let topic = |suffix: &str| gopigo_shadow::response_topic(thing, name, op, suffix);
        let mut notifications = Vec::new();
        let result = match op {
            ShadowOp::Get => gopigo_shadow::get(current.as_ref(), payload, now, thing, name),
            ShadowOp::Update => match gopigo_shadow::update(current.as_ref(), payload, now) {
                Ok(out) => {
                    crate::store::put_shadow(tx, thing, key, &to_json(&out.shadow)?)?;
                    notifications.push((topic("accepted"), out.accepted.clone()));
                    if let Some(delta) = out.delta {
                        notifications.push((
                            gopigo_shadow::response_topic(thing, name, ShadowOp::Update, "delta"),
                            delta,
                        ));
                    }
                    notifications.push((
                        gopigo_shadow::response_topic(thing, name, ShadowOp::Update, "documents"),
                        out.documents,
                    ));
                    Ok(out.accepted)
                }
                Err(e) => Err(e),
            },
            ShadowOp::Delete => {
                match gopigo_shadow::delete(current.as_ref(), payload, now, thing, name) {
                    Ok(out) => {
                        crate::store::put_shadow(tx, thing, key, &to_json(&out.shadow)?)?;
                        notifications.push((topic("accepted"), out.accepted.clone()));
                        Ok(out.accepted)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        Ok(ShadowOutcome {
            result,
            notifications,
        })
    })
}

fn to_json(s: &StoredShadow) -> Result<String, ApiError> {
    serde_json::to_string(s).map_err(ApiError::internal)
}

/// The iot-data error type for a shadow error code.
pub fn error_kind(code: u16) -> &'static str {
    match code {
        400 => "InvalidRequestException",
        401 => "UnauthorizedException",
        403 => "ForbiddenException",
        404 => "ResourceNotFoundException",
        409 => "ConflictException",
        413 => "RequestEntityTooLargeException",
        415 => "UnsupportedDocumentEncodingException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalFailureException",
    }
}
