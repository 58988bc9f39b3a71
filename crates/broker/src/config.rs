//! Broker settings.

use std::time::Duration;

use crate::quota::Limits;

/// Settings of the broker; [`Default`] gives AWS IoT Core's values.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Region used in resource ARNs (`arn:aws:iot:{region}:...`).
    pub region: String,
    /// Account id used in resource ARNs.
    pub account_id: String,
    /// How long a persistent session (clean session = 0) outlives its connection.
    pub session_expiry: Duration,
    /// Largest PUBLISH payload accepted, bytes (AWS: 128 KiB).
    pub max_payload: usize,
    /// Time allowed for the TLS handshake and for the CONNECT packet that follows.
    pub handshake_timeout: Duration,
    /// Lower bound of the keep-alive clamp (AWS: 30 s).
    pub keep_alive_min: Duration,
    /// Upper bound of the keep-alive clamp and the value for 0 (AWS: 1200 s).
    pub keep_alive_max: Duration,
    /// Most unacknowledged QoS 1 messages sent to one client (AWS: 100).
    pub max_inflight: usize,
    /// Most QoS 1 messages queued for one session beyond the in-flight window.
    pub max_queued: usize,
    /// Most payload bytes of QoS 1 messages queued for one session beyond
    /// the in-flight window; further messages are dropped (with a warning).
    pub max_queued_bytes: usize,
    /// Most QoS 0 messages waiting to be written to one slow client; past
    /// it the oldest waiting QoS 0 message is dropped, as AWS IoT does.
    pub max_queued_qos0: usize,
    /// Most bytes (topic + payload) of QoS 0 messages waiting to be written
    /// to one slow client; past it the oldest are dropped. At least
    /// `max_payload`.
    pub max_queued_qos0_bytes: usize,
    /// Most open connections per listener (TLS handshakes included); a
    /// connection past it is closed at once.
    pub max_connections: usize,
    /// How long a connection reuses the policies it fetched from the
    /// [`crate::Authority`] before asking again.
    pub policy_refresh: Duration,
    /// Whether to publish `$aws/events/presence/...` lifecycle events.
    pub lifecycle_events: bool,
    /// Per-connection quotas (publish rates, throughput, subscriptions):
    /// AWS IoT Core's by default, [`Limits::off`] for none.
    pub limits: Limits,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
            session_expiry: Duration::from_secs(3600),
            max_payload: 128 * 1024,
            handshake_timeout: Duration::from_secs(10),
            keep_alive_min: Duration::from_secs(30),
            keep_alive_max: Duration::from_secs(1200),
            max_inflight: 100,
            max_queued: 10_000,
            max_queued_bytes: 16 * 1024 * 1024,
            max_queued_qos0: 10_000,
            max_queued_qos0_bytes: 4 * 1024 * 1024,
            max_connections: 4096,
            policy_refresh: Duration::from_secs(1),
            lifecycle_events: true,
            limits: Limits::aws(),
        }
    }
}

impl BrokerConfig {
    /// `arn:{partition}:iot:{region}:{account}:{resource}`.
    pub fn arn(&self, resource: &str) -> String {
        gopigo_policy::arn(&self.region, &self.account_id, resource)
    }

    /// The QoS 0 queue byte cap in force: never below one whole message.
    pub fn qos0_byte_cap(&self) -> usize {
        self.max_queued_qos0_bytes.max(self.max_payload + 1024)
    }

    /// The principal ARN of a certificate id.
    pub fn cert_arn(&self, certificate_id: &str) -> String {
        self.arn(&format!("cert/{certificate_id}"))
    }
}
