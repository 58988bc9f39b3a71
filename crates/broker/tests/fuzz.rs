//! A bounded fuzz of the packet layer: random and mutated bytes sent after
#![allow(clippy::unwrap_used)]
//! the TLS handshake must never take the broker down or leak connections.

mod util;

use std::time::Duration;

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rumqttc::mqttbytes::v4::{LastWill, Packet, Publish, Subscribe, Unsubscribe};
use rumqttc::QoS;
use util::*;

fn encode(p: Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    p.write(&mut out, usize::MAX).unwrap();
    out.to_vec()
}

fn corpus() -> Vec<Vec<u8>> {
    let mut connect = connect_packet("fuzz", 30, false);
    connect.last_will = Some(LastWill::new("fuzz/will", "w", QoS::AtLeastOnce, true));
    let mut publish = Publish::new("fuzz/a", QoS::AtLeastOnce, "payload");
    publish.pkid = 3;
    let mut subscribe = Subscribe::new("fuzz/#", QoS::AtLeastOnce);
    subscribe.pkid = 4;
    vec![
        encode(Packet::Connect(connect)),
        encode(Packet::Publish(publish)),
        encode(Packet::Subscribe(subscribe)),
        encode(Packet::Unsubscribe(Unsubscribe::new("fuzz/#"))),
        encode(Packet::PingReq),
        encode(Packet::Disconnect),
    ]
}

fn mutate(rng: &mut StdRng, mut bytes: Vec<u8>) -> Vec<u8> {
    let n = rng.gen_range(1..=4);
    for _ in 0..n {
        if bytes.is_empty() {
            bytes.push(rng.gen());
            continue;
        }
        match rng.gen_range(0..4) {
            0 => {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] = rng.gen();
            }
            2 => bytes.truncate(rng.gen_range(0..bytes.len())),
            _ => {
                let i = rng.gen_range(0..=bytes.len());
                bytes.insert(i, rng.gen());
            }
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_packets_leave_the_broker_serving() {
    let setup = Setup::new();
    let config = gopigo_broker::BrokerConfig {
        handshake_timeout: Duration::from_secs(2),
        ..Setup::config()
    };
    let b = setup.start(config, None).await;
    let corpus = corpus();
    let mut rng = StdRng::seed_from_u64(0x6f70_6967);
    let mut cases = Vec::new();
    for i in 0..300 {
        let bytes = match i % 3 {
            0 => (0..rng.gen_range(1..200)).map(|_| rng.gen()).collect(),
            1 => {
                // A valid CONNECT, then mutated packets.
                let mut v = corpus[0].clone();
                for _ in 0..rng.gen_range(1..4) {
                    let base = corpus[rng.gen_range(1..corpus.len())].clone();
                    v.extend(mutate(&mut rng, base));
                }
                v
            }
            _ => mutate(&mut rng, corpus[0].clone()),
        };
        cases.push(bytes);
    }

    for batch in cases.chunks(25) {
        let mut set = tokio::task::JoinSet::new();
        for bytes in batch {
            let bytes = bytes.clone();
            let cfg = b.client_config(&b.admin, None);
            let addr = b.addr;
            set.spawn(async move {
                let Ok(mut raw) = Raw::connect(addr, cfg).await else {
                    return;
                };
                let _ = raw.send_bytes(&bytes).await;
                let _ = raw.closed_within(Duration::from_millis(150)).await;
            });
        }
        while set.join_next().await.is_some() {}
    }

    // Still serving.
    let mut sub = b.client("after-sub", &b.admin);
    sub.connected().await;
    sub.subscribe("after/x", QoS::AtLeastOnce).await;
    let mut publ = b.client("after-pub", &b.admin);
    publ.connected().await;
    publ.client
        .publish("after/x", QoS::AtLeastOnce, false, "alive")
        .await
        .unwrap();
    assert_eq!(
        &sub.publish_within(WAIT)
            .await
            .expect("broker still routes")
            .payload[..],
        b"alive"
    );
    drop(sub);
    drop(publ);
    assert!(
        b.wait_idle(Duration::from_secs(10)).await,
        "connections leaked: {:?}",
        b.handle.stats()
    );
    b.stop().await;
}
