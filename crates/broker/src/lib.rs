//! MQTT 3.1.1 broker over mutual TLS with AWS IoT Core semantics and policy
//! enforcement: the local stand-in for AWS IoT Core's message broker.
//!
//! Parts:
//! - [`tls`]: the server TLS configuration whose client-certificate verifier
//!   asks the [`Authority`] whether a certificate is registered and ACTIVE,
//!   and the client identity read from a handshake.
//! - [`topic`]: topic/filter validation against AWS limits, AWS wildcard
//!   matching (`a/#` does not match `a`), the keep-alive clamp (pure).
//! - `tree`: the subscription trie.
//! - [`authz`]: policy context of a connection and the `iot:*` checks, via
//!   `gopigo-policy`.
//! - `router`: sessions, subscriptions, retained messages, QoS 1 windows and
//!   offline queues.
//! - `store`: SQLite durability of retained messages and persistent sessions.
//! - `connection`: the per-connection task: a `Handshake` (TLS, CONNECT,
//!   its checks, authorization, session takeover) then a `Session` (packet
//!   loop, will, lifecycle events). Packets are encoded and decoded with
//!   `rumqttc::mqttbytes::v4`; the protocol level is checked at CONNECT so an
//!   MQTT 5 codec can be added beside it.
//! - [`events`]: lifecycle event JSON and disconnect reasons.
//! - [`connectivity`]: each client id's last connect or disconnect, time
//!   and reason (fleet indexing's `connectivity`), bounded.
//! - [`https`]: the HTTPS publish endpoint (`POST /topics/{topic}`).
//! - `outbox`: the bounded queue between the router and one connection (QoS
//!   0 capped in bytes and count, oldest dropped first).
//! - [`quota`]: AWS IoT Core's per-connection quotas ([`Limits`]: publish
//!   rates, throughput, subscriptions) and the token buckets that meter
//!   them (pure).
//! - [`limits`]: the stop drain and HTTP/1.1 timeouts (shared with the
//!   core's control plane); the connection cap is `gopigo-listen`'s.
//!
//! The core builds a [`Broker`] with its [`Authority`], calls [`Broker::serve`]
//! once per listener (8883, and 443-style with ALPN `x-amzn-mqtt-ca`), and
//! uses a [`BrokerHandle`] for internal publishes and subscriptions (shadow
//! service) and to disconnect certificates that leave ACTIVE.

mod authority;
pub mod authz;
mod config;
mod connection;
pub mod connectivity;
mod error;
pub mod events;
pub mod https;
pub mod limits;
mod outbox;
pub mod quota;
mod router;
mod store;
pub mod tls;
pub mod topic;
mod tree;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use gopigo_listen::{CappedListener, Refusal};

pub use authority::Authority;
pub use config::BrokerConfig;
pub use connectivity::Connectivity;
pub use error::BrokerError;
pub use events::DisconnectReason;
pub use https::{serve_https_publish, serve_https_publish_with};
pub use limits::HttpLimits;
pub use quota::Limits;
pub use tls::{certificate_id, client_identity, server_tls_config, ClientIdentity, ALPN_MQTT_CA};

use router::Router;

/// Most messages waiting in one [`BrokerHandle::subscribe_internal`]
/// channel; further ones are dropped (with a warning).
pub const INTERNAL_CHANNEL_CAPACITY: usize = 10_000;
/// Most payload bytes waiting in one internal channel; further messages are
/// dropped (with a warning).
pub const INTERNAL_CHANNEL_BYTES: usize = 16 * 1024 * 1024;

/// The receiving end of [`BrokerHandle::subscribe_internal`]: bounded in
/// messages and in bytes.
pub struct InternalReceiver {
    rx: mpsc::Receiver<(String, Bytes)>,
    bytes: Arc<AtomicUsize>,
}

impl InternalReceiver {
    /// The next `(topic, payload)`; `None` once the broker is gone.
    pub async fn recv(&mut self) -> Option<(String, Bytes)> {
        let m = self.rx.recv().await?;
        self.bytes.fetch_sub(m.1.len(), Ordering::Relaxed);
        Some(m)
    }
}

/// State shared by the broker, its handles and its connection tasks.
pub(crate) struct Shared {
    pub config: Arc<BrokerConfig>,
    pub authority: Arc<dyn Authority>,
    pub router: Router,
    pub connections: AtomicUsize,
    pub next_conn_id: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub throttled: ThrottleCounters,
    pub outbox: Arc<outbox::OutboxCounters>,
}

/// What the per-connection [`Limits`] refused, all connections together.
#[derive(Default)]
pub(crate) struct ThrottleCounters {
    pub publishes_in: AtomicU64,
    pub publishes_out: AtomicU64,
    pub subscriptions: AtomicU64,
}

/// The MQTT broker. Cheap to share by reference; clone a [`BrokerHandle`]
/// to use it from elsewhere.
pub struct Broker {
    shared: Arc<Shared>,
}

/// A cloneable handle to a running broker.
#[derive(Clone)]
pub struct BrokerHandle {
    shared: Arc<Shared>,
}

/// A retained message, as iot-data's GetRetainedMessage reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMessage {
    /// The topic it was published on (exact, no wildcards).
    pub topic: String,
    /// The payload bytes as published.
    pub payload: Bytes,
    /// The QoS it was published with.
    pub qos: u8,
    /// When it was stored, Unix milliseconds.
    pub last_modified_ms: i64,
}

/// A snapshot of the broker's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Open connection tasks (TLS handshakes in progress included).
    pub connections: usize,
    /// Sessions (connected, and persistent ones awaiting their client).
    pub sessions: usize,
    /// Subscriptions (filter, subscriber) pairs, internal ones included.
    pub subscriptions: usize,
    /// Topics holding a retained message.
    pub retained: usize,
    /// PUBLISH packets accepted from clients.
    pub messages_in: u64,
    /// PUBLISH packets written to clients.
    pub messages_out: u64,
    /// Bytes (topic + payload) of QoS 0 messages waiting for connected
    /// clients, all queues together.
    pub queued_qos0_bytes: usize,
    /// The same for the fullest single queue now.
    pub max_queued_qos0_bytes: usize,
    /// The most QoS 0 bytes any single queue ever held (never above
    /// [`BrokerConfig::max_queued_qos0_bytes`]).
    pub peak_queued_qos0_bytes: usize,
    /// QoS 0 messages dropped, oldest first, because a client's queue was full.
    pub dropped_qos0: u64,
    /// Payload bytes of QoS 1 messages queued beyond the in-flight windows.
    pub queued_qos1_bytes: usize,
    /// Client PUBLISHes discarded for passing the inbound publish rate.
    pub throttled_in: u64,
    /// Deliveries discarded for passing a client's outbound publish rate.
    pub throttled_out: u64,
    /// Topic filters refused (SUBACK 0x80) for passing the subscriptions
    /// per connection.
    pub subscriptions_refused: u64,
}

impl Broker {
    /// Builds the broker; with `store`, retained messages and persistent
    /// sessions are kept in (and reloaded from) that SQLite file.
    pub fn new(
        config: BrokerConfig,
        authority: Arc<dyn Authority>,
        store: Option<PathBuf>,
    ) -> Result<Self, BrokerError> {
        let config = Arc::new(config);
        let store = match store {
            Some(path) => Some(store::Store::open(&path)?),
            None => None,
        };
        let router = Router::new(config.clone(), store)?;
        Ok(Broker {
            shared: Arc::new(Shared {
                config,
                authority,
                router,
                connections: AtomicUsize::new(0),
                next_conn_id: AtomicU64::new(1),
                messages_in: AtomicU64::new(0),
                messages_out: AtomicU64::new(0),
                throttled: ThrottleCounters::default(),
                outbox: Arc::default(),
            }),
        })
    }

    /// A handle for internal publishes, subscriptions and control.
    pub fn handle(&self) -> BrokerHandle {
        BrokerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Accepts MQTT-over-TLS connections on `listener` until `shutdown`
    /// completes, then closes them (waiting up to [`limits::DRAIN`]). At most
    /// [`BrokerConfig::max_connections`] connections are open on one
    /// listener; one past it is closed at once. May run on several
    /// listeners at once (e.g. 8883 and the ALPN one), sharing all state.
    pub async fn serve(
        &self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), BrokerError> {
        let acceptor = TlsAcceptor::from(tls);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let sweep_every = (self.shared.config.session_expiry / 10)
            .clamp(Duration::from_millis(100), Duration::from_secs(10));
        let mut sweep = tokio::time::interval(sweep_every);
        let mut release = tokio::time::interval(limits::RELEASE_EVERY);
        let listener = CappedListener::new(
            listener,
            "MQTT",
            self.shared.config.max_connections,
            Refusal::Close,
        );
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                (stream, peer, permit) = listener.accept() => {
                    let _ = stream.set_nodelay(true);
                    let conn = connection::run(
                        self.shared.clone(),
                        stream,
                        peer,
                        acceptor.clone(),
                        stop_rx.clone(),
                    );
                    tasks.spawn(async move {
                        conn.await;
                        drop(permit);
                    });
                }
                _ = sweep.tick() => self.shared.router.sweep(),
                _ = release.tick() => limits::release_freed_memory(),
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        let _ = stop_tx.send(true);
        limits::drain(&mut tasks).await;
        Ok(())
    }
}

impl BrokerHandle {
    /// Publishes on behalf of the service (shadow responses, HTTPS publish
    /// after authorization, lifecycle events). Subscribers still need
    /// `iot:Receive`. `qos` above 1 is treated as 1.
    pub fn publish(&self, topic: &str, payload: Bytes, qos: u8, retain: bool) {
        let retain = retain && !topic.starts_with('$');
        let _ = self
            .shared
            .router
            .publish(topic, payload, qos.min(1), retain);
    }

    /// An in-process subscription to `filter` (e.g. `$aws/things/+/shadow/#`);
    /// messages arrive as `(topic, payload)`. Dropping the receiver ends it.
    pub fn subscribe_internal(&self, filter: &str) -> InternalReceiver {
        let bytes = Arc::new(AtomicUsize::new(0));
        let rx = self.shared.router.subscribe_internal(
            filter,
            INTERNAL_CHANNEL_CAPACITY,
            bytes.clone(),
            INTERNAL_CHANNEL_BYTES,
        );
        InternalReceiver { rx, bytes }
    }

    /// Whether the principal of `identity` may publish to `topic` (and retain
    /// it), for publishes that do not come over MQTT (HTTPS). Also checks the
    /// topic against the limits.
    pub fn authorize_publish(
        &self,
        identity: &ClientIdentity,
        client_id: Option<&str>,
        topic: &str,
        retain: bool,
    ) -> bool {
        if topic::validate_topic(topic).is_err() || (retain && topic.starts_with('$')) {
            return false;
        }
        let mut authz = authz::ConnectionAuthz::new(
            self.shared.authority.clone(),
            self.shared.config.clone(),
            identity.clone(),
            client_id.unwrap_or(""),
            None,
        );
        authz.certificate_active() && authz.publish(topic, retain)
    }

    /// The last known connectivity of each client id, in the same order
    /// (fleet indexing's `connectivity`; AWS keys it by client id, the
    /// thing's name); `None` for one not seen since the broker started.
    pub fn connectivity(&self, client_ids: &[&str]) -> Vec<Option<Connectivity>> {
        self.shared.router.connectivity(client_ids)
    }

    /// The retained messages, sorted by topic.
    pub fn retained_messages(&self) -> Vec<RetainedMessage> {
        self.shared.router.retained_messages()
    }

    /// Closes every connection authenticated with this certificate (call it
    /// when the certificate leaves ACTIVE); returns how many were told.
    pub fn disconnect_certificate(&self, certificate_id: &str) -> usize {
        self.shared
            .router
            .kick_certificate(certificate_id, DisconnectReason::AuthError)
    }

    /// The counters now (each read on its own: not one consistent snapshot).
    pub fn stats(&self) -> Stats {
        let c = self.shared.router.counts();
        let t = &self.shared.throttled;
        Stats {
            connections: self.shared.connections.load(Ordering::Relaxed),
            sessions: c.sessions,
            subscriptions: c.subscriptions,
            retained: c.retained,
            messages_in: self.shared.messages_in.load(Ordering::Relaxed),
            messages_out: self.shared.messages_out.load(Ordering::Relaxed),
            queued_qos0_bytes: c.queued_qos0_bytes,
            max_queued_qos0_bytes: c.max_queued_qos0_bytes,
            peak_queued_qos0_bytes: self.shared.outbox.peak_qos0_bytes.load(Ordering::Relaxed),
            dropped_qos0: self.shared.outbox.dropped.load(Ordering::Relaxed),
            queued_qos1_bytes: c.queued_qos1_bytes,
            throttled_in: t.publishes_in.load(Ordering::Relaxed),
            throttled_out: t.publishes_out.load(Ordering::Relaxed),
            subscriptions_refused: t.subscriptions.load(Ordering::Relaxed),
        }
    }

    /// The broker's configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.shared.config
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn broker_and_handle_can_cross_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::Broker>();
        assert_send_sync::<super::BrokerHandle>();
    }
}
