//! Lifecycle events (`$aws/events/presence/...`) and disconnect reasons.

/// Why a connection ended, with AWS IoT's `disconnectReason` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// Authentication or authorization failed (also: certificate deactivated).
    AuthError,
    /// The client sent DISCONNECT.
    ClientInitiated,
    /// The client broke the protocol or a limit.
    ClientError,
    /// The connection dropped.
    ConnectionLost,
    /// Another connection took over the client id.
    DuplicateClientId,
    /// An action the policy does not allow.
    ForbiddenAccess,
    /// Nothing arrived within 1.5 × keep-alive.
    KeepAliveTimeout,
    /// The broker is shutting down.
    ServerInitiated,
    /// Internal failure.
    ServerError,
}

impl DisconnectReason {
    /// The `disconnectReason` string.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::AuthError => "AUTH_ERROR",
            DisconnectReason::ClientInitiated => "CLIENT_INITIATED_DISCONNECT",
            DisconnectReason::ClientError => "CLIENT_ERROR",
            DisconnectReason::ConnectionLost => "CONNECTION_LOST",
            DisconnectReason::DuplicateClientId => "DUPLICATE_CLIENTID",
            DisconnectReason::ForbiddenAccess => "FORBIDDEN_ACCESS",
            DisconnectReason::KeepAliveTimeout => "MQTT_KEEP_ALIVE_TIMEOUT",
            DisconnectReason::ServerInitiated => "SERVER_INITIATED_DISCONNECT",
            DisconnectReason::ServerError => "SERVER_ERROR",
        }
    }

    /// The reason a `disconnectReason` string names (the inverse of
    /// [`DisconnectReason::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        use DisconnectReason::*;
        [
            AuthError,
            ClientInitiated,
            ClientError,
            ConnectionLost,
            DuplicateClientId,
            ForbiddenAccess,
            KeepAliveTimeout,
            ServerInitiated,
            ServerError,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }

    /// Whether the last will is published (every reason but a clean DISCONNECT).
    pub fn sends_will(self) -> bool {
        self != DisconnectReason::ClientInitiated
    }
}

/// Facts about one connection for its lifecycle events.
#[derive(Debug, Clone)]
pub struct Presence<'a> {
    /// MQTT client id.
    pub client_id: &'a str,
    /// Unique id of this connection.
    pub session_identifier: &'a str,
    /// The certificate id of the client.
    pub principal_identifier: &'a str,
    /// Peer IP address.
    pub ip_address: &'a str,
    /// Increases with each event for the client id.
    pub version_number: u64,
}

/// The topic of a connect (`connected`) or disconnect (`disconnected`) event;
/// `None` for client ids with `#` or `+`, which AWS gives no events.
pub fn presence_topic(kind: &str, client_id: &str) -> Option<String> {
    if client_id.contains(['#', '+']) {
        return None;
    }
    Some(format!("$aws/events/presence/{kind}/{client_id}"))
}

/// The JSON of a `connected` event.
pub fn connected_event(p: &Presence<'_>, timestamp_ms: u64) -> String {
    serde_json::json!({
        "clientId": p.client_id,
        "timestamp": timestamp_ms,
        "eventType": "connected",
        "sessionIdentifier": p.session_identifier,
        "principalIdentifier": p.principal_identifier,
        "ipAddress": p.ip_address,
        "versionNumber": p.version_number,
    })
    .to_string()
}

/// The JSON of a `disconnected` event.
pub fn disconnected_event(p: &Presence<'_>, reason: DisconnectReason, timestamp_ms: u64) -> String {
    serde_json::json!({
        "clientId": p.client_id,
        "timestamp": timestamp_ms,
        "eventType": "disconnected",
        "sessionIdentifier": p.session_identifier,
        "principalIdentifier": p.principal_identifier,
        "clientInitiatedDisconnect": reason == DisconnectReason::ClientInitiated,
        "disconnectReason": reason.as_str(),
        "versionNumber": p.version_number,
    })
    .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn event_shapes() {
        let p = Presence {
            client_id: "robot1",
            session_identifier: "s-1",
            principal_identifier: "abc",
            ip_address: "127.0.0.1",
            version_number: 3,
        };
        let c: serde_json::Value = serde_json::from_str(&connected_event(&p, 42)).unwrap();
        assert_eq!(c["eventType"], "connected");
        assert_eq!(c["clientId"], "robot1");
        assert_eq!(c["timestamp"], 42);
        assert_eq!(c["versionNumber"], 3);
        assert!(c.get("disconnectReason").is_none());
        let d: serde_json::Value = serde_json::from_str(&disconnected_event(
            &p,
            DisconnectReason::KeepAliveTimeout,
            43,
        ))
        .unwrap();
        assert_eq!(d["eventType"], "disconnected");
        assert_eq!(d["disconnectReason"], "MQTT_KEEP_ALIVE_TIMEOUT");
        assert_eq!(d["clientInitiatedDisconnect"], false);
        assert_eq!(d["principalIdentifier"], "abc");
        assert_eq!(
            DisconnectReason::from_name("MQTT_KEEP_ALIVE_TIMEOUT"),
            Some(DisconnectReason::KeepAliveTimeout)
        );
        assert_eq!(DisconnectReason::from_name("NONE"), None);
    }

    #[test]
    fn presence_topics() {
        assert_eq!(
            presence_topic("connected", "r1").as_deref(),
            Some("$aws/events/presence/connected/r1")
        );
        assert_eq!(presence_topic("connected", "r#1"), None);
        assert!(!DisconnectReason::ClientInitiated.sends_will());
        assert!(DisconnectReason::ConnectionLost.sends_will());
    }
}
