//! The dashboard's broker link: one MQTT session (rumqttc over mutual TLS,
//! the controller's own identity) that subscribes to the fleet's topics,
//! feeds every message to the [`Hub`], publishes what the pages ask for, and
//! reconnects with a short back-off, telling the pages while it is down.
//!
//! Retained messages reach only subscriptions that name their topic exactly
//! (AWS IoT's rule, which the local core follows), so besides the wildcard
//! filters the link subscribes to each known robot's `gopigo/{thing}/status`
//! as the hub asks ([`Outgoing::Subscribe`]) and again after a reconnect.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gopigo_protocol::{FLEET_FILTERS, PRESENCE_FILTERS};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubAck, SubscribeFilter,
    SubscribeReasonCode,
};
use tokio::sync::mpsc;

use crate::hub::{Hub, Outgoing};

/// The topic filters the dashboard needs ([`FLEET_FILTERS`]).
pub fn subscriptions() -> Vec<String> {
    FLEET_FILTERS.iter().map(ToString::to_string).collect()
}

/// The lifecycle-event filters ([`PRESENCE_FILTERS`]), subscribed
/// separately after the others: a policy that does not grant them makes the
/// broker (AWS and the local core alike) close the connection, and then the
/// dashboard goes on without them, relying on the robots' retained status
/// and last will.
pub fn presence_subscriptions() -> Vec<String> {
    PRESENCE_FILTERS.iter().map(ToString::to_string).collect()
}

/// AWS IoT accepts at most 8 topic filters in one SUBSCRIBE.
pub const MAX_FILTERS_PER_SUBSCRIBE: usize = 8;

/// How long to wait before reconnecting after the connection failed.
const RETRY: Duration = Duration::from_secs(1);
/// The pause before reconnecting without the refused presence filters.
const RETRY_WITHOUT_PRESENCE: Duration = Duration::from_millis(100);

/// Where the subscriptions of the current connection stand.
#[derive(Debug, Default)]
struct Subscribing {
    /// SUBSCRIBEs sent and not yet acknowledged, in order.
    pending: VecDeque<Vec<String>>,
    /// Filters the broker refused in a SUBACK.
    refused: Vec<String>,
    /// The presence SUBSCRIBE is out and unanswered.
    presence_in_flight: bool,
    /// The presence filters were sent on this connection.
    presence_sent: bool,
}

fn subscribe(
    client: &AsyncClient,
    filters: &[String],
    sub: &mut Subscribing,
) -> Result<(), String> {
    for chunk in filters.chunks(MAX_FILTERS_PER_SUBSCRIBE) {
        let subs = chunk
            .iter()
            .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
        client
            .try_subscribe_many(subs)
            .map_err(|e| format!("cannot subscribe: {e}"))?;
        sub.pending.push_back(chunk.to_vec());
    }
    Ok(())
}

/// The link's state between events; each `on_*` step handles one event.
struct Link {
    client: AsyncClient,
    hub: Arc<Hub>,
    filters: Vec<String>,
    /// False once the broker closed the connection on the presence filters.
    presence_allowed: bool,
    sub: Subscribing,
    /// Exact topics (each robot's status) kept across reconnects.
    exact: BTreeSet<String>,
    connected: bool,
}

impl Link {
    fn new(client: AsyncClient, hub: Arc<Hub>) -> Self {
        Link {
            client,
            hub,
            filters: subscriptions(),
            presence_allowed: true,
            sub: Subscribing::default(),
            exact: BTreeSet::new(),
            connected: false,
        }
    }

    /// What the hub asks for: a publish, or a robot's exact status topic.
    fn on_outgoing(&mut self, out: Outgoing) {
        match out {
            Outgoing::Publish { topic, payload } => {
                if let Err(e) =
                    self.client
                        .try_publish(topic.clone(), QoS::AtLeastOnce, false, payload)
                {
                    tracing::warn!(topic = %topic, error = %e, "publish not queued");
                }
            }
            Outgoing::Subscribe { filter } => {
                if self.exact.insert(filter.clone()) && self.connected {
                    if let Err(e) = subscribe(&self.client, &[filter], &mut self.sub) {
                        tracing::warn!(error = %e, "cannot subscribe");
                    }
                }
            }
        }
    }

    /// Connected: subscribe to the filters and every exact topic again.
    fn on_connack(&mut self) {
        tracing::info!("connected to the broker");
        self.connected = true;
        self.sub = Subscribing::default();
        let all: Vec<String> = self.filters.iter().chain(&self.exact).cloned().collect();
        if let Err(e) = subscribe(&self.client, &all, &mut self.sub) {
            self.hub.set_broker(false, Some(e));
        }
    }

    /// A SUBACK (they come back in the order the SUBSCRIBEs went out): note
    /// refusals; once all are answered, try the presence filters, then tell
    /// the pages how the subscriptions stand.
    fn on_suback(&mut self, ack: &SubAck) {
        let chunk = self.sub.pending.pop_front().unwrap_or_default();
        self.sub.refused.extend(
            ack.return_codes
                .iter()
                .zip(chunk)
                .filter(|(c, _)| matches!(c, SubscribeReasonCode::Failure))
                .map(|(_, f)| f),
        );
        if !self.sub.pending.is_empty() {
            return;
        }
        self.sub.presence_in_flight = false;
        if self.presence_allowed && !self.sub.presence_sent {
            self.sub.presence_sent = true;
            self.sub.presence_in_flight = true;
            if let Err(e) = subscribe(&self.client, &presence_subscriptions(), &mut self.sub) {
                tracing::warn!(error = %e, "cannot subscribe to lifecycle events");
            }
        }
        if self.sub.refused.is_empty() {
            self.hub.set_broker(true, None);
        } else {
            tracing::warn!(refused = ?self.sub.refused, "subscriptions refused by the policy");
            self.hub.set_broker(
                true,
                Some(format!(
                    "the broker refused these subscriptions (check the controller's policy): {}",
                    self.sub.refused.join(", ")
                )),
            );
        }
    }

    /// The connection failed: tell the pages; returns the pause before the
    /// next attempt (short when it failed on the presence filters, which
    /// are then left out).
    fn on_error(&mut self, e: &rumqttc::ConnectionError) -> Duration {
        if self.sub.presence_in_flight {
            self.presence_allowed = false;
            tracing::warn!(
                "the broker closed the connection on the lifecycle-event subscription \
                 ($aws/events/presence/...); going on without it (grant iot:Subscribe \
                 and iot:Receive on it to the controller's policy for faster offline \
                 detection)"
            );
        } else {
            tracing::warn!(error = %e, "broker connection failed; retrying");
        }
        self.sub = Subscribing::default();
        self.connected = false;
        self.hub.set_broker(false, Some(e.to_string()));
        if self.presence_allowed {
            RETRY
        } else {
            RETRY_WITHOUT_PRESENCE
        }
    }

    /// Sends DISCONNECT when connected and lets the event loop write it (bounded).
    async fn disconnect(&self, events: &mut EventLoop) {
        if self.hub.broker_connected() && self.client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Ok(ev) = events.poll().await {
                    if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        }
        self.hub
            .set_broker(false, Some("dashboard stopping".into()));
    }
}

/// Runs the link until `shutdown` completes, then disconnects cleanly.
pub async fn run(
    options: MqttOptions,
    hub: Arc<Hub>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    shutdown: impl Future<Output = ()>,
) {
    // Nagle off: a `stop` right after a heartbeat must not wait for a delayed ACK.
    let (client, mut events) = gopigo_client::new_client(options, 256);
    let mut link = Link::new(client, hub);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            out = outgoing.recv() => match out {
                None => break,
                Some(out) => link.on_outgoing(out),
            },
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => link.on_connack(),
                Ok(Event::Incoming(Packet::SubAck(ack))) => link.on_suback(&ack),
                Ok(Event::Incoming(Packet::Publish(p))) => link.hub.ingest(&p.topic, &p.payload),
                Ok(_) => {}
                Err(e) => {
                    let pause = link.on_error(&e);
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }
    link.disconnect(&mut events).await;
}
