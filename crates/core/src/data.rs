//! The iot-data API (SigV4 service `iotdata`): device shadows over HTTP
//! (`GET|POST|DELETE /things/{thing}/shadow[?name=]`) and publishing
//! (`POST /topics/{topic}?qos=&retain=`), as `aws iot-data` and boto3's
//! `iot-data` client call them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gopigo_shadow::ShadowOp;

use crate::error::ApiError;
use crate::CoreState;

type Q = Query<HashMap<String, String>>;

/// Whether a request path belongs to the iot-data API (signed as `iotdata`)
/// rather than the control plane (signed as `iot`).
pub fn is_data_plane(path: &str) -> bool {
    path.starts_with("/topics/")
        || path.starts_with("/retainedMessage")
        || path.starts_with("/api/things/shadow/")
        || (path.starts_with("/things/") && path.ends_with("/shadow"))
}

/// iot-data routes.
pub fn router() -> Router<Arc<CoreState>> {
    Router::new()
        .route(
            "/things/{thing}/shadow",
            get(get_shadow).post(update_shadow).delete(delete_shadow),
        )
        .route("/topics/{topic}", post(publish))
}

async fn get_shadow(
    State(state): State<Arc<CoreState>>,
    Path(thing): Path<String>,
    q: Q,
) -> Result<Response, ApiError> {
    shadow(&state, &thing, q.get("name"), ShadowOp::Get, b"")
}

async fn update_shadow(
    State(state): State<Arc<CoreState>>,
    Path(thing): Path<String>,
    q: Q,
    body: Bytes,
) -> Result<Response, ApiError> {
    shadow(&state, &thing, q.get("name"), ShadowOp::Update, &body)
}

async fn delete_shadow(
    State(state): State<Arc<CoreState>>,
    Path(thing): Path<String>,
    q: Q,
) -> Result<Response, ApiError> {
    shadow(&state, &thing, q.get("name"), ShadowOp::Delete, b"")
}

fn shadow(
    state: &CoreState,
    thing: &str,
    name: Option<&String>,
    op: ShadowOp,
    body: &[u8],
) -> Result<Response, ApiError> {
    if !gopigo_protocol::valid_thing_name(thing) {
        return Err(ApiError::invalid(format!(
            "thingName '{thing}' is not valid: use 1 to 128 of a-z A-Z 0-9 : _ -"
        )));
    }
    if let Some(n) = name {
        if !gopigo_shadow::valid_shadow_name(n) {
            return Err(ApiError::invalid(format!(
                "shadow name '{n}' is not valid: use 1 to 64 of a-z A-Z 0-9 $ : _ -"
            )));
        }
    }
    let out = crate::shadow::handle(state, thing, name.map(String::as_str), op, body)?;
    for (topic, payload) in &out.notifications {
        state.publish(topic, payload.to_string().into_bytes(), 1, false);
    }
    match out.result {
        Ok(v) => Ok((
            [(http::header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response()),
        Err((e, _token)) => Err(ApiError::new(
            e.code,
            crate::shadow::error_kind(e.code),
            e.message,
        )),
    }
}

async fn publish(
    State(state): State<Arc<CoreState>>,
    Path(topic): Path<String>,
    q: Q,
    body: Bytes,
) -> Result<Response, ApiError> {
    let qos = match q.get("qos").map(String::as_str) {
        None | Some("0") => 0,
        Some("1") => 1,
        Some(v) => {
            return Err(ApiError::invalid(format!(
                "qos must be 0 or 1 (AWS IoT does not support QoS {v})"
            )))
        }
    };
    let retain = matches!(q.get("retain").map(String::as_str), Some("true"));
    if let Err(e) = gopigo_broker::topic::validate_topic(&topic) {
        return Err(ApiError::invalid(format!("topic '{topic}': {e}")));
    }
    if body.len() > 128 * 1024 {
        return Err(ApiError::new(
            413,
            "RequestEntityTooLargeException",
            "payload is larger than AWS IoT's 128 KB message limit",
        ));
    }
    if !state.publish(&topic, body.to_vec(), qos, retain) {
        return Err(ApiError::new(
            503,
            "ServiceUnavailableException",
            "the MQTT broker of this core is not running",
        ));
    }
    Ok((
        [(http::header::CONTENT_TYPE, "application/json")],
        "{}".to_string(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_data_plane_paths_apart() {
        assert!(is_data_plane("/things/robot1/shadow"));
        assert!(is_data_plane("/topics/a%2Fb"));
        assert!(!is_data_plane("/things/robot1"));
        assert!(!is_data_plane("/things/robot1/principals"));
    }
}
