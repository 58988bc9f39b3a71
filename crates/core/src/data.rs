//! The iot-data API (SigV4 service `iotdata`): device shadows over HTTP.

use std::sync::Arc;

use axum::Router;

use crate::CoreState;

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
