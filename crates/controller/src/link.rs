//! The dashboard's broker link: one MQTT session (rumqttc over mutual TLS,
//! the controller's own identity) that subscribes to the fleet's topics,
//! feeds every message to the [`Hub`], publishes what the pages ask for, and
//! reconnects with a short back-off, telling the pages while it is down.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use gopigo_protocol::topics;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter, SubscribeReasonCode};
use tokio::sync::mpsc;

use crate::hub::{Hub, Outgoing};

/// The topic filters the dashboard subscribes to.
pub fn subscriptions() -> Vec<String> {
    vec![
        topics::all("status"),
        topics::all("telemetry"),
        topics::all("cmd/result"),
        topics::all("detections"),
        "$aws/things/+/shadow/update/documents".into(),
        "$aws/things/+/shadow/get/accepted".into(),
        "$aws/things/+/shadow/get/rejected".into(),
        "$aws/events/presence/connected/+".into(),
        "$aws/events/presence/disconnected/+".into(),
    ]
}

/// How long to wait before reconnecting after the connection failed.
const RETRY: Duration = Duration::from_secs(1);

/// Runs the link until `shutdown` completes, then disconnects cleanly.
pub async fn run(
    options: MqttOptions,
    hub: Arc<Hub>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    shutdown: impl Future<Output = ()>,
) {
    let (client, mut events) = AsyncClient::new(options, 256);
    let filters = subscriptions();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            out = outgoing.recv() => {
                let Some(out) = out else { break };
                if let Err(e) = client.try_publish(out.topic.clone(), QoS::AtLeastOnce, false, out.payload) {
                    tracing::warn!(topic = %out.topic, error = %e, "publish not queued");
                }
            }
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!("connected to the broker");
                    let subs = filters.iter().map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                    if let Err(e) = client.try_subscribe_many(subs) {
                        hub.set_broker(false, Some(format!("cannot subscribe: {e}")));
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let refused: Vec<&str> = ack
                        .return_codes
                        .iter()
                        .zip(&filters)
                        .filter(|(c, _)| matches!(c, SubscribeReasonCode::Failure))
                        .map(|(_, f)| f.as_str())
                        .collect();
                    if refused.is_empty() {
                        hub.set_broker(true, None);
                    } else {
                        tracing::warn!(?refused, "subscriptions refused by the policy");
                        hub.set_broker(true, Some(format!(
                            "the broker refused these subscriptions (check the controller's policy): {}",
                            refused.join(", ")
                        )));
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => hub.ingest(&p.topic, &p.payload),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "broker connection failed; retrying");
                    hub.set_broker(false, Some(e.to_string()));
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(RETRY) => {}
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
        for f in subscriptions() {
            let topic = f.replacen('+', "r1", 1);
            let topic = if topic.contains("presence") {
                topic
            } else {
                topic.replace('+', "r1")
            };
            let payload = if topic.contains("presence") {
                br#"{"timestamp":1}"#.to_vec()
            } else {
                Vec::new()
            };
            match crate::fleet::classify(&topic, &payload) {
                Err(crate::fleet::MessageError::UnknownTopic(t)) => {
                    panic!("subscribed to {f} but {t} is not understood")
                }
                _ => {}
            }
        }
    }
}
