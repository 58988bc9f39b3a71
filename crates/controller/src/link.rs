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

use gopigo_protocol::topics;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter, SubscribeReasonCode};
use tokio::sync::mpsc;

use crate::hub::{Hub, Outgoing};

/// The topic filters the dashboard needs.
pub fn subscriptions() -> Vec<String> {
    vec![
        topics::all("status"),
        topics::all("telemetry"),
        topics::all("cmd/result"),
        topics::all("detections"),
        "$aws/things/+/shadow/update/documents".into(),
        "$aws/things/+/shadow/get/accepted".into(),
        "$aws/things/+/shadow/get/rejected".into(),
    ]
}

/// The lifecycle-event filters, subscribed separately after the others: a
/// policy that does not grant them makes the broker (AWS and the local core
/// alike) close the connection, and then the dashboard goes on without them,
/// relying on the robots' retained status and last will.
pub fn presence_subscriptions() -> Vec<String> {
    vec![
        "$aws/events/presence/connected/+".into(),
        "$aws/events/presence/disconnected/+".into(),
    ]
}

/// AWS IoT accepts at most 8 topic filters in one SUBSCRIBE.
pub const MAX_FILTERS_PER_SUBSCRIBE: usize = 8;

/// How long to wait before reconnecting after the connection failed.
const RETRY: Duration = Duration::from_secs(1);

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

/// Runs the link until `shutdown` completes, then disconnects cleanly.
pub async fn run(
    options: MqttOptions,
    hub: Arc<Hub>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    shutdown: impl Future<Output = ()>,
) {
    // Nagle off: a `stop` right after a heartbeat must not wait for a delayed ACK.
    let (client, mut events) = gopigo_client::new_client(options, 256);
    let filters = subscriptions();
    let mut presence_allowed = true;
    let mut sub = Subscribing::default();
    // Exact topics (each robot's status) kept across reconnects.
    let mut exact: BTreeSet<String> = BTreeSet::new();
    let mut connected = false;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            out = outgoing.recv() => match out {
                None => break,
                Some(Outgoing::Publish { topic, payload }) => {
                    if let Err(e) = client.try_publish(topic.clone(), QoS::AtLeastOnce, false, payload) {
                        tracing::warn!(topic = %topic, error = %e, "publish not queued");
                    }
                }
                Some(Outgoing::Subscribe { filter }) => {
                    if exact.insert(filter.clone()) && connected {
                        if let Err(e) = subscribe(&client, &[filter], &mut sub) {
                            tracing::warn!(error = %e, "cannot subscribe");
                        }
                    }
                }
            },
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!("connected to the broker");
                    connected = true;
                    sub = Subscribing::default();
                    let all: Vec<String> = filters.iter().chain(&exact).cloned().collect();
                    if let Err(e) = subscribe(&client, &all, &mut sub) {
                        hub.set_broker(false, Some(e));
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    // SUBACKs come back in the order the SUBSCRIBEs went out.
                    let chunk = sub.pending.pop_front().unwrap_or_default();
                    sub.refused.extend(
                        ack.return_codes
                            .iter()
                            .zip(chunk)
                            .filter(|(c, _)| matches!(c, SubscribeReasonCode::Failure))
                            .map(|(_, f)| f),
                    );
                    if !sub.pending.is_empty() {
                        continue;
                    }
                    sub.presence_in_flight = false;
                    if presence_allowed && !sub.presence_sent {
                        sub.presence_sent = true;
                        sub.presence_in_flight = true;
                        if let Err(e) = subscribe(&client, &presence_subscriptions(), &mut sub) {
                            tracing::warn!(error = %e, "cannot subscribe to lifecycle events");
                        }
                    }
                    if sub.refused.is_empty() {
                        hub.set_broker(true, None);
                    } else {
                        tracing::warn!(refused = ?sub.refused, "subscriptions refused by the policy");
                        hub.set_broker(true, Some(format!(
                            "the broker refused these subscriptions (check the controller's policy): {}",
                            sub.refused.join(", ")
                        )));
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => hub.ingest(&p.topic, &p.payload),
                Ok(_) => {}
                Err(e) => {
                    if sub.presence_in_flight {
                        presence_allowed = false;
                        tracing::warn!(
                            "the broker closed the connection on the lifecycle-event subscription \
                             ($aws/events/presence/...); going on without it (grant iot:Subscribe \
                             and iot:Receive on it to the controller's policy for faster offline \
                             detection)"
                        );
                    } else {
                        tracing::warn!(error = %e, "broker connection failed; retrying");
                    }
                    sub = Subscribing::default();
                    connected = false;
                    hub.set_broker(false, Some(e.to_string()));
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(if presence_allowed { RETRY } else { Duration::from_millis(100) }) => {}
                    }
                }
            }
        }
    }
    if hub.broker_connected() && client.try_disconnect().is_ok() {
        // Let the event loop send the DISCONNECT (bounded).
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(ev) = events.poll().await {
                if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
    hub.set_broker(false, Some("dashboard stopping".into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribes_to_what_the_reducer_reads() {
        // Every filter, instantiated for a robot, must be a topic that
        // `fleet::classify` understands (else the dashboard would drop it).
        for f in subscriptions().into_iter().chain(presence_subscriptions()) {
            let topic = f.replace('+', "r1");
            let payload = br#"{"timestamp":1}"#;
            if let Err(crate::fleet::MessageError::UnknownTopic(t)) =
                crate::fleet::classify(&topic, payload)
            {
                panic!("subscribed to {f} but {t} is not understood");
            }
        }
    }
}
