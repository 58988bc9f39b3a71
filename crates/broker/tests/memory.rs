//! Bounded memory: a subscriber that never reads costs the broker at most
//! its QoS 0 byte cap, whatever a publisher sends; the oldest messages go.
#![allow(clippy::unwrap_used)]

mod util;

use std::time::Duration;

use gopigo_broker::BrokerConfig;
use rumqttc::mqttbytes::v4::{Packet, PubAck, Publish, Subscribe};
use rumqttc::QoS;
use util::*;

const MESSAGE: usize = 64 * 1024;
const MESSAGES: u32 = 800;

fn numbered(i: u32) -> Publish {
    let mut payload = vec![0u8; MESSAGE];
    payload[..4].copy_from_slice(&i.to_be_bytes());
    Publish::new("flood/x", QoS::AtMostOnce, payload)
}

async fn connected(b: &TestBroker, id: &str) -> Raw {
    let mut raw = b.raw(&b.admin).await.unwrap();
    assert!(is_connack_ok(
        &raw.mqtt_connect(connect_packet(id, 60, true)).await
    ));
    raw
}

/// Publishes the flood, then a QoS 1 marker whose PUBACK says every message
/// before it was routed; checks the byte bound after each message.
async fn flood(b: &TestBroker, publ: &mut Raw, cap: usize) {
    for i in 0..MESSAGES {
        publ.send(Packet::Publish(numbered(i))).await.unwrap();
        let s = b.handle.stats();
        assert!(
            s.max_queued_qos0_bytes <= cap,
            "a queue holds {} bytes, over the {cap} cap",
            s.max_queued_qos0_bytes
        );
    }
    let mut marker = Publish::new("marker", QoS::AtLeastOnce, "done");
    marker.pkid = 7;
    publ.send(Packet::Publish(marker)).await.unwrap();
    loop {
        match publ.recv(WAIT).await {
            RawEvent::Packet(Packet::PubAck(PubAck { pkid: 7, .. })) => break,
            RawEvent::Packet(_) => {}
            other => panic!("no PUBACK for the marker: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_holds_at_most_the_byte_cap_and_loses_the_oldest() {
    let cap = 1024 * 1024;
    let setup = Setup::new();
    let config = BrokerConfig {
        max_queued_qos0_bytes: cap,
        // A flood far past AWS's quotas, to test the queue's byte cap.
        limits: gopigo_broker::Limits::off(),
        ..Setup::config()
    };
    let b = setup.start(config, None).await;

    let mut sink = connected(&b, "sink").await;
    let mut sub = Subscribe::new("flood/#", QoS::AtMostOnce);
    sub.pkid = 1;
    sink.send(Packet::Subscribe(sub)).await.unwrap();
    assert!(matches!(
        sink.recv(WAIT).await,
        RawEvent::Packet(Packet::SubAck(_))
    ));
    // From here the sink reads nothing while 50 MiB are published.
    let mut publ = connected(&b, "flooder").await;
    flood(&b, &mut publ, cap).await;

    let s = b.handle.stats();
    assert!(s.peak_queued_qos0_bytes <= cap, "{s:?}");
    assert!(
        s.peak_queued_qos0_bytes > cap / 2,
        "the queue never filled: {s:?}"
    );
    assert!(s.dropped_qos0 > 0, "nothing was dropped: {s:?}");

    // Now the sink reads: what the sockets buffered, then the newest
    // messages; the ones between were dropped, oldest first.
    let mut got = Vec::new();
    while let RawEvent::Packet(p) = sink.recv(Duration::from_secs(2)).await {
        if let Packet::Publish(p) = p {
            got.push(u32::from_be_bytes(p.payload[..4].try_into().unwrap()));
        }
    }
    assert_eq!(
        got.last(),
        Some(&(MESSAGES - 1)),
        "the newest message arrives"
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
    assert!(
        got.windows(2).any(|w| w[1] - w[0] > 1),
        "a gap where the oldest queued messages were dropped"
    );
    assert!((got.len() as u32) < MESSAGES);
    let s = b.handle.stats();
    assert_eq!(s.queued_qos0_bytes, 0, "the queue drained: {s:?}");
    b.stop().await;
}
