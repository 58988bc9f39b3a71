//! End-to-end behaviour of the broker over real loopback TLS.
#![allow(clippy::unwrap_used)]

mod util;

use std::time::Duration;

use bytes::Bytes;
use rumqttc::mqttbytes::v4::{LastWill, Packet, Publish, Subscribe, SubscribeFilter};
use rumqttc::QoS;
use util::*;

const SHORT: Duration = Duration::from_millis(400);

#[tokio::test]
async fn qos0_and_qos1_publish_subscribe() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let mut sub = b.client("sub", &b.admin);
    sub.connected().await;
    sub.subscribe("gopigo/+/telemetry", QoS::AtLeastOnce).await;
    let mut publ = b.client("pub", &b.admin);
    publ.connected().await;

    publ.client
        .publish("gopigo/r1/telemetry", QoS::AtMostOnce, false, "zero")
        .await
        .unwrap();
    let p = sub.publish_within(WAIT).await.expect("QoS 0 message");
    assert_eq!(p.topic, "gopigo/r1/telemetry");
    assert_eq!(&p.payload[..], b"zero");
    assert_eq!(p.qos, QoS::AtMostOnce);

    publ.client
        .publish("gopigo/r2/telemetry", QoS::AtLeastOnce, false, "one")
        .await
        .unwrap();
    assert!(publ
        .wait_for(WAIT, |p| matches!(p, Packet::PubAck(_)))
        .await
        .is_some());
    let p = sub.publish_within(WAIT).await.expect("QoS 1 message");
    assert_eq!(&p.payload[..], b"one");
    assert_eq!(p.qos, QoS::AtLeastOnce);
    assert!(!p.retain);

    let stats = b.handle.stats();
    assert_eq!(stats.connections, 2);
    assert!(stats.messages_in >= 2);
    b.stop().await;
}

#[tokio::test]
async fn unregistered_inactive_and_foreign_certificates_are_refused() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;

    let unregistered = b.ca.client("nobody");
    let mut c = b.client("nobody", &unregistered);
    assert!(
        c.closed_within(WAIT).await,
        "unregistered cert must be refused"
    );

    let inactive = b.ca.client("inactive");
    b.authority.register(&inactive, ADMIN_POLICY, &[]);
    b.authority.set_active(&inactive, false);
    let mut c = b.client("inactive", &inactive);
    assert!(c.closed_within(WAIT).await, "inactive cert must be refused");

    let other_ca = Ca::new("other CA");
    let foreign = other_ca.client("foreign");
    // Registered by id, but issued by another CA: the chain check refuses it.
    b.authority.register(&foreign, ADMIN_POLICY, &[]);
    let mut c = b.client("foreign", &foreign);
    assert!(
        c.closed_within(WAIT).await,
        "cert from another CA must be refused"
    );

    // A registered, active one still works.
    let mut ok = b.client("ok", &b.admin);
    ok.connected().await;
    drop(ok);
    assert!(
        b.wait_idle(WAIT).await,
        "refused handshakes leave no connection behind"
    );
    b.stop().await;
}

#[tokio::test]
async fn disconnect_certificate_closes_live_client() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let robot = b.ca.client("r1");
    b.authority.register(&robot, ROBOT_POLICY, &["r1"]);
    let mut c = b.client("r1", &robot);
    c.connected().await;
    let mut other = b.client("admin", &b.admin);
    other.connected().await;

    b.authority.set_active(&robot, false);
    assert_eq!(b.handle.disconnect_certificate(&robot.id()), 1);
    assert!(
        c.closed_within(Duration::from_secs(1)).await,
        "closed within a second"
    );
    // The other certificate's connection stays.
    assert!(!other.closed_within(SHORT).await);
    b.stop().await;
}

#[tokio::test]
async fn robot_policy_confines_a_robot_to_its_topics() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let r1 = b.ca.client("r1");
    b.authority.register(&r1, ROBOT_POLICY, &["r1"]);

    // Connect with a client id that is not its thing: denied, closed without CONNACK.
    let mut wrong = b.client("r2", &r1);
    assert!(matches!(wrong.next_incoming(WAIT).await, Some(Err(_))));

    // Its own topics work.
    let mut robot = b.client("r1", &r1);
    robot.connected().await;
    robot.subscribe("gopigo/r1/cmd", QoS::AtLeastOnce).await;
    let mut admin = b.client("admin", &b.admin);
    admin.connected().await;
    admin.subscribe("gopigo/#", QoS::AtMostOnce).await;
    robot
        .client
        .publish("gopigo/r1/telemetry", QoS::AtLeastOnce, false, "ok")
        .await
        .unwrap();
    let p = admin
        .publish_within(WAIT)
        .await
        .expect("own telemetry delivered");
    assert_eq!(p.topic, "gopigo/r1/telemetry");

    // Publishing to another robot's topic: disconnected, nothing delivered.
    robot
        .client
        .publish("gopigo/r2/cmd", QoS::AtLeastOnce, false, "evil")
        .await
        .unwrap();
    assert!(robot.closed_within(WAIT).await);
    assert!(admin.publish_within(SHORT).await.is_none());

    // Subscribing outside its topics: disconnected.
    let mut robot = b.client("r1", &r1);
    robot.connected().await;
    robot
        .client
        .subscribe("gopigo/r2/cmd", QoS::AtMostOnce)
        .await
        .unwrap();
    assert!(robot.closed_within(WAIT).await);
    b.stop().await;
}

#[tokio::test]
async fn denied_receive_skips_only_that_subscriber() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let limited = b.ca.client("limited");
    b.authority.register(&limited, LIMITED_POLICY, &[]);
    let mut lim = b.client("limited", &limited);
    lim.connected().await;
    lim.subscribe("#", QoS::AtLeastOnce).await;
    let mut adm = b.client("admin-sub", &b.admin);
    adm.connected().await;
    adm.subscribe("#", QoS::AtLeastOnce).await;
    let mut publ = b.client("admin-pub", &b.admin);
    publ.connected().await;

    publ.client
        .publish("secret/x", QoS::AtLeastOnce, false, "s")
        .await
        .unwrap();
    let p = adm.publish_within(WAIT).await.expect("admin receives");
    assert_eq!(p.topic, "secret/x");
    assert!(
        lim.publish_within(SHORT).await.is_none(),
        "limited must not receive secret/x"
    );

    publ.client
        .publish("public/x", QoS::AtLeastOnce, false, "p")
        .await
        .unwrap();
    let p = lim
        .publish_within(WAIT)
        .await
        .expect("limited still connected and receives public/x");
    assert_eq!(p.topic, "public/x");
    b.stop().await;
}

#[tokio::test]
async fn hash_wildcard_does_not_match_parent_level() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let mut sub = b.client("sub", &b.admin);
    sub.connected().await;
    sub.subscribe("a/#", QoS::AtMostOnce).await;
    let mut publ = b.client("pub", &b.admin);
    publ.connected().await;
    publ.client
        .publish("a", QoS::AtMostOnce, false, "parent")
        .await
        .unwrap();
    publ.client
        .publish("a/b", QoS::AtMostOnce, false, "child")
        .await
        .unwrap();
    let p = sub.publish_within(WAIT).await.unwrap();
    assert_eq!(p.topic, "a/b", "`a/#` must not deliver `a`");
    assert!(sub.publish_within(SHORT).await.is_none());
    b.stop().await;
}

#[tokio::test]
async fn retained_messages_exact_filter_only_and_empty_payload_deletes() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let mut publ = b.client("pub", &b.admin);
    publ.connected().await;
    publ.client
        .publish(
            "gopigo/r1/status",
            QoS::AtLeastOnce,
            true,
            r#"{"online":true}"#,
        )
        .await
        .unwrap();
    assert!(publ
        .wait_for(WAIT, |p| matches!(p, Packet::PubAck(_)))
        .await
        .is_some());
    assert_eq!(b.handle.stats().retained, 1);

    let mut wild = b.client("wild", &b.admin);
    wild.connected().await;
    wild.subscribe("gopigo/+/status", QoS::AtLeastOnce).await;
    assert!(
        wild.publish_within(SHORT).await.is_none(),
        "wildcard gets no retained message"
    );

    let mut exact = b.client("exact", &b.admin);
    exact.connected().await;
    exact.subscribe("gopigo/r1/status", QoS::AtLeastOnce).await;
    let p = exact
        .publish_within(WAIT)
        .await
        .expect("exact filter gets the retained message");
    assert!(p.retain, "retained delivery has RETAIN=1");
    assert_eq!(&p.payload[..], br#"{"online":true}"#);

    // Empty payload: delivered live, deletes the retained message.
    publ.client
        .publish("gopigo/r1/status", QoS::AtLeastOnce, true, "")
        .await
        .unwrap();
    let live = wild
        .publish_within(WAIT)
        .await
        .expect("empty retained publish still delivered live");
    assert!(live.payload.is_empty());
    assert!(!live.retain);
    let mut later = b.client("later", &b.admin);
    later.connected().await;
    later.subscribe("gopigo/r1/status", QoS::AtLeastOnce).await;
    assert!(
        later.publish_within(SHORT).await.is_none(),
        "retained message was deleted"
    );
    assert_eq!(b.handle.stats().retained, 0);

    // Retain on a reserved topic: disconnected.
    publ.client
        .publish("$aws/things/r1/shadow/update", QoS::AtMostOnce, true, "x")
        .await
        .unwrap();
    assert!(publ.closed_within(WAIT).await);
    b.stop().await;
}

#[tokio::test]
async fn qos2_publish_and_subscribe_are_refused() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let mut c = b.client("q2", &b.admin);
    c.connected().await;
    c.client
        .publish("a/b", QoS::ExactlyOnce, false, "x")
        .await
        .unwrap();
    assert!(c.closed_within(WAIT).await, "QoS 2 PUBLISH disconnects");
    assert!(!matches!(
        c.next_incoming(SHORT).await,
        Some(Ok(Packet::PubRec(_)))
    ));

    let mut c = b.client("q2s", &b.admin);
    c.connected().await;
    c.client.subscribe("a/b", QoS::ExactlyOnce).await.unwrap();
    assert!(c.closed_within(WAIT).await, "QoS 2 SUBSCRIBE disconnects");
    b.stop().await;
}

#[tokio::test]
async fn duplicate_client_id_new_connection_wins() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let mut first = b.client("dup", &b.admin);
    first.connected().await;
    let mut second = b.client("dup", &b.admin);
    second.connected().await;
    assert!(first.closed_within(WAIT).await, "old connection closed");
    second.subscribe("x/y", QoS::AtMostOnce).await;
    b.handle.publish("x/y", Bytes::from_static(b"hi"), 0, false);
    assert!(
        second.publish_within(WAIT).await.is_some(),
        "new connection works"
    );
    b.stop().await;
}

#[tokio::test]
async fn will_sent_on_abrupt_close_not_on_clean_disconnect() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let mut watcher = b.client("watcher", &b.admin);
    watcher.connected().await;
    watcher.subscribe("gopigo/+/status", QoS::AtLeastOnce).await;

    // Clean DISCONNECT: no will.
    let mut o = b.options("clean", &b.admin);
    o.set_last_will(LastWill::new(
        "gopigo/clean/status",
        "offline",
        QoS::AtLeastOnce,
        false,
    ));
    let mut c = TestClient::start(o);
    c.connected().await;
    c.client.disconnect().await.unwrap();
    assert!(c.closed_within(WAIT).await);
    assert!(
        watcher.publish_within(SHORT).await.is_none(),
        "no will after clean DISCONNECT"
    );

    // Abrupt close: will published.
    let mut o = b.options("abrupt", &b.admin);
    o.set_last_will(LastWill::new(
        "gopigo/abrupt/status",
        "offline",
        QoS::AtLeastOnce,
        false,
    ));
    let mut c = TestClient::start(o);
    c.connected().await;
    c.kill();
    let p = watcher
        .publish_within(WAIT)
        .await
        .expect("will after abrupt close");
    assert_eq!(p.topic, "gopigo/abrupt/status");
    assert_eq!(&p.payload[..], b"offline");

    // A will the policy does not allow is not published.
    let r1 = b.ca.client("r1");
    b.authority.register(&r1, ROBOT_POLICY, &["r1"]);
    let mut o = b.options("r1", &r1);
    o.set_last_will(LastWill::new(
        "gopigo/r2/status",
        "spoof",
        QoS::AtLeastOnce,
        false,
    ));
    let mut c = TestClient::start(o);
    c.connected().await;
    c.kill();
    assert!(
        watcher.publish_within(SHORT).await.is_none(),
        "will outside the policy not sent"
    );
    b.stop().await;
}

#[tokio::test]
async fn persistent_session_queues_qos1_across_reconnect_and_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("broker.sqlite");
    let setup = Setup::new();
    let b = setup.start(Setup::config(), Some(store.clone())).await;

    let mut o = b.options("persist", &b.admin);
    o.set_clean_session(false);
    let mut c = TestClient::start(o.clone());
    assert!(!c.connected().await, "first connect: no session");
    c.subscribe("q/#", QoS::AtLeastOnce).await;
    c.client.disconnect().await.unwrap();
    assert!(c.closed_within(WAIT).await);

    for i in 0..3 {
        b.handle
            .publish("q/a", Bytes::from(format!("m{i}")), 1, false);
    }
    b.handle
        .publish("q/a", Bytes::from_static(b"qos0-dropped"), 0, false);

    let mut c = TestClient::start(o.clone());
    assert!(c.connected().await, "session present on reconnect");
    for i in 0..3 {
        let p = c.publish_within(WAIT).await.expect("queued message");
        assert_eq!(p.payload, Bytes::from(format!("m{i}")));
        assert_eq!(p.qos, QoS::AtLeastOnce);
    }
    assert!(c.publish_within(SHORT).await.is_none(), "QoS 0 not queued");
    c.client.disconnect().await.unwrap();
    assert!(c.closed_within(WAIT).await);

    // Queue two more while offline (one through a real publisher, acked),
    // then crash the broker and start a new one on the same file.
    b.handle
        .publish("q/b", Bytes::from_static(b"after-1"), 1, false);
    let mut publ = b.client("publisher", &b.admin);
    publ.connected().await;
    publ.client
        .publish("q/b", QoS::AtLeastOnce, false, "after-2")
        .await
        .unwrap();
    assert!(publ
        .wait_for(WAIT, |p| matches!(p, Packet::PubAck(_)))
        .await
        .is_some());
    b.crash();

    let b = setup.start(Setup::config(), Some(store.clone())).await;
    let mut o = b.options("persist", &b.admin);
    o.set_clean_session(false);
    let mut c = TestClient::start(o);
    assert!(c.connected().await, "session survives restart");
    let p = c.publish_within(WAIT).await.expect("queued before restart");
    assert_eq!(&p.payload[..], b"after-1");
    let p = c.publish_within(WAIT).await.expect("queued before restart");
    assert_eq!(&p.payload[..], b"after-2");
    // The subscription survived too.
    b.handle
        .publish("q/c", Bytes::from_static(b"live"), 1, false);
    let p = c.publish_within(WAIT).await.expect("subscription restored");
    assert_eq!(&p.payload[..], b"live");

    // A clean-session connect discards it.
    c.client.disconnect().await.unwrap();
    assert!(c.closed_within(WAIT).await);
    let mut clean = b.client("persist", &b.admin);
    assert!(!clean.connected().await);
    b.stop().await;
}

#[tokio::test]
async fn unacked_qos1_is_resent_with_dup_on_reconnect() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let mut raw = b.raw(&b.admin).await.unwrap();
    assert!(is_connack_ok(
        &raw.mqtt_connect(connect_packet("dupper", 60, false)).await
    ));
    raw.send(Packet::Subscribe(Subscribe::new("d/#", QoS::AtLeastOnce)))
        .await
        .unwrap();
    assert!(matches!(
        raw.recv(WAIT).await,
        RawEvent::Packet(Packet::SubAck(_))
    ));
    b.handle
        .publish("d/x", Bytes::from_static(b"once"), 1, false);
    let first = match raw.recv(WAIT).await {
        RawEvent::Packet(Packet::Publish(p)) => p,
        other => panic!("{other:?}"),
    };
    assert!(!first.dup);
    drop(raw); // no PUBACK

    let mut raw = b.raw(&b.admin).await.unwrap();
    match raw.mqtt_connect(connect_packet("dupper", 60, false)).await {
        RawEvent::Packet(Packet::ConnAck(a)) => assert!(a.session_present),
        other => panic!("{other:?}"),
    }
    match raw.recv(WAIT).await {
        RawEvent::Packet(Packet::Publish(p)) => {
            assert!(p.dup, "resent with DUP");
            assert_eq!(p.pkid, first.pkid);
            assert_eq!(&p.payload[..], b"once");
        }
        other => panic!("{other:?}"),
    }
    b.stop().await;
}

#[tokio::test]
async fn keep_alive_is_clamped_and_enforced_at_one_and_a_half_times() {
    let setup = Setup::new();
    let config = gopigo_broker::BrokerConfig {
        keep_alive_min: Duration::from_secs(2),
        keep_alive_max: Duration::from_secs(3),
        ..Setup::config()
    };
    let b = setup.start(config, None).await;

    // Asks for 1 s: clamped up to 2 s, so silence of 2.2 s (> 1.5 × 1 s) is fine.
    let mut low = b.raw(&b.admin).await.unwrap();
    assert!(is_connack_ok(
        &low.mqtt_connect(connect_packet("low", 1, true)).await
    ));
    // Asks for 0: becomes the maximum (3 s), dropped after 4.5 s of silence.
    let mut zero = b.raw(&b.admin).await.unwrap();
    assert!(is_connack_ok(
        &zero.mqtt_connect(connect_packet("zero", 0, true)).await
    ));

    assert!(
        !low.closed_within(Duration::from_millis(2200)).await,
        "min clamp"
    );
    assert!(
        low.closed_within(Duration::from_millis(1600)).await,
        "closed after 1.5 × 2 s"
    );
    assert!(
        !zero.closed_within(Duration::from_millis(1000)).await,
        "0 becomes the maximum"
    );
    assert!(
        zero.closed_within(Duration::from_secs(2)).await,
        "closed after 1.5 × 3 s"
    );
    b.stop().await;
}

#[tokio::test]
async fn limits_disconnect() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;

    // Client id over 128 bytes: closed without CONNACK.
    let mut raw = b.raw(&b.admin).await.unwrap();
    let long_id = "c".repeat(129);
    assert!(matches!(
        raw.mqtt_connect(connect_packet(&long_id, 60, true)).await,
        RawEvent::Closed
    ));
    let mut raw = b.raw(&b.admin).await.unwrap();
    assert!(is_connack_ok(
        &raw.mqtt_connect(connect_packet(&"c".repeat(128), 60, true))
            .await
    ));

    let cases: Vec<(&str, Packet)> = vec![
        (
            "topic over 256 bytes",
            Packet::Publish(Publish::new("t".repeat(257), QoS::AtMostOnce, "x")),
        ),
        (
            "8 slashes",
            Packet::Publish(Publish::new("a/b/c/d/e/f/g/h/i", QoS::AtMostOnce, "x")),
        ),
        (
            "payload over 128 KiB",
            Packet::Publish(Publish::new(
                "a/b",
                QoS::AtMostOnce,
                vec![0u8; 128 * 1024 + 1],
            )),
        ),
        (
            "wildcard in topic",
            Packet::Publish(Publish::new("a/+", QoS::AtMostOnce, "x")),
        ),
        (
            "9 filters",
            Packet::Subscribe(Subscribe::new_many(
                (0..9).map(|i| SubscribeFilter::new(format!("f/{i}"), QoS::AtMostOnce)),
            )),
        ),
        (
            "bad filter",
            Packet::Subscribe(Subscribe::new("a/#/b", QoS::AtMostOnce)),
        ),
    ];
    for (what, packet) in cases {
        let mut raw = b.raw(&b.admin).await.unwrap();
        assert!(is_connack_ok(
            &raw.mqtt_connect(connect_packet("lim", 60, true)).await
        ));
        raw.send(packet).await.unwrap();
        assert!(raw.closed_within(WAIT).await, "{what}: must disconnect");
    }

    // At the limits: accepted.
    let mut raw = b.raw(&b.admin).await.unwrap();
    assert!(is_connack_ok(
        &raw.mqtt_connect(connect_packet("lim", 60, true)).await
    ));
    raw.send(Packet::Subscribe(Subscribe::new_many((0..8).map(|i| {
        SubscribeFilter::new(format!("f/{i}"), QoS::AtMostOnce)
    }))))
    .await
    .unwrap();
    assert!(
        matches!(raw.recv(WAIT).await, RawEvent::Packet(Packet::SubAck(s)) if s.return_codes.len() == 8)
    );
    let mut p = Publish::new("a/b/c/d/e/f/g/h", QoS::AtLeastOnce, vec![1u8; 128 * 1024]);
    p.pkid = 7;
    raw.send(Packet::Publish(p)).await.unwrap();
    assert!(matches!(raw.recv(WAIT).await, RawEvent::Packet(Packet::PubAck(a)) if a.pkid == 7));
    b.stop().await;
}

#[tokio::test]
async fn lifecycle_events_are_published() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let mut watcher = b.client("watcher", &b.admin);
    watcher.connected().await;
    watcher
        .subscribe("$aws/events/presence/+/+", QoS::AtLeastOnce)
        .await;

    let mut c = b.client("robot-x", &b.admin);
    c.connected().await;
    let p = watcher.publish_within(WAIT).await.expect("connected event");
    assert_eq!(p.topic, "$aws/events/presence/connected/robot-x");
    let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
    assert_eq!(v["eventType"], "connected");
    assert_eq!(v["clientId"], "robot-x");
    assert_eq!(v["principalIdentifier"], b.admin.id());
    assert!(v["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    let session = v["sessionIdentifier"].as_str().unwrap().to_owned();

    c.client.disconnect().await.unwrap();
    let p = watcher
        .publish_within(WAIT)
        .await
        .expect("disconnected event");
    assert_eq!(p.topic, "$aws/events/presence/disconnected/robot-x");
    let d: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
    assert_eq!(d["eventType"], "disconnected");
    assert_eq!(d["disconnectReason"], "CLIENT_INITIATED_DISCONNECT");
    assert_eq!(d["clientInitiatedDisconnect"], true);
    assert_eq!(d["sessionIdentifier"], session.as_str());
    assert!(d["versionNumber"].as_u64() > v["versionNumber"].as_u64());

    // `#` does not see `$aws/...` topics.
    let mut hash = b.client("hash", &b.admin);
    hash.connected().await;
    hash.subscribe("#", QoS::AtMostOnce).await;
    let mut c = b.client("robot-y", &b.admin);
    c.connected().await;
    assert!(hash.publish_within(SHORT).await.is_none());
    b.stop().await;
}

/// The connectivity the handle reports once it satisfies `want`.
async fn connectivity_when(
    b: &TestBroker,
    client_id: &str,
    want: fn(&gopigo_broker::Connectivity) -> bool,
) -> gopigo_broker::Connectivity {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(c) = b.handle.connectivity(&[client_id])[0].filter(want) {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{client_id}: connectivity never matched: {:?}",
            b.handle.connectivity(&[client_id])
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `timestamp` of the next lifecycle event the watcher sees.
async fn event_timestamp(watcher: &mut TestClient, topic: &str) -> (u64, serde_json::Value) {
    let p = watcher.publish_within(WAIT).await.expect("lifecycle event");
    assert_eq!(p.topic, topic);
    let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
    (v["timestamp"].as_u64().unwrap(), v)
}

#[tokio::test]
async fn connectivity_follows_connects_and_says_why_a_client_dropped() {
    use gopigo_broker::DisconnectReason as R;
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    assert_eq!(
        b.handle.connectivity(&["robot-c"]),
        vec![None],
        "never connected"
    );
    let mut watcher = b.client("watcher", &b.admin);
    watcher.connected().await;
    watcher
        .subscribe("$aws/events/presence/+/robot-c", QoS::AtLeastOnce)
        .await;

    // Connected: the same timestamp as the `connected` event.
    let mut c = b.client("robot-c", &b.admin);
    c.connected().await;
    let (t, _) = event_timestamp(&mut watcher, "$aws/events/presence/connected/robot-c").await;
    let now = connectivity_when(&b, "robot-c", |c| c.connected).await;
    assert_eq!((now.timestamp_ms, now.disconnect_reason), (t, None));

    // A clean DISCONNECT.
    c.client.disconnect().await.unwrap();
    let (t, _) = event_timestamp(&mut watcher, "$aws/events/presence/disconnected/robot-c").await;
    let now = connectivity_when(&b, "robot-c", |c| !c.connected).await;
    assert_eq!(now.timestamp_ms, t);
    assert_eq!(now.disconnect_reason, Some(R::ClientInitiated));

    // The socket dropped without DISCONNECT.
    let mut c = b.client("robot-c", &b.admin);
    c.connected().await;
    event_timestamp(&mut watcher, "$aws/events/presence/connected/robot-c").await;
    connectivity_when(&b, "robot-c", |c| c.connected).await;
    c.kill();
    let (t, v) = event_timestamp(&mut watcher, "$aws/events/presence/disconnected/robot-c").await;
    assert_eq!(v["disconnectReason"], "CONNECTION_LOST");
    let now = connectivity_when(&b, "robot-c", |c| !c.connected).await;
    assert_eq!(
        (now.timestamp_ms, now.disconnect_reason),
        (t, Some(R::ConnectionLost))
    );

    // Another connection takes the client id over: the id stays connected
    // although the older connection closes (DUPLICATE_CLIENTID) after.
    let mut first = b.client("robot-c", &b.admin);
    first.connected().await;
    let mut second = b.client("robot-c", &b.admin);
    second.connected().await;
    assert!(first.closed_within(WAIT).await);
    let mut reasons = Vec::new();
    for _ in 0..3 {
        let p = watcher.publish_within(WAIT).await.expect("lifecycle event");
        let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
        reasons.push(v["disconnectReason"].as_str().unwrap_or("").to_owned());
    }
    assert!(
        reasons.contains(&"DUPLICATE_CLIENTID".to_owned()),
        "{reasons:?}"
    );
    let now = connectivity_when(&b, "robot-c", |c| c.connected).await;
    assert_eq!(now.disconnect_reason, None);
    b.stop().await;
}

#[tokio::test]
async fn internal_subscriber_and_internal_publish() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let mut shadow_rx = b.handle.subscribe_internal("$aws/things/+/shadow/#");
    let r1 = b.ca.client("r1");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect","iot:Publish","iot:Subscribe","iot:Receive"],"Resource":"*"}]}"#;
    b.authority.register(&r1, policy, &["r1"]);
    let mut robot = b.client("r1", &r1);
    robot.connected().await;
    robot
        .subscribe("$aws/things/r1/shadow/update/accepted", QoS::AtLeastOnce)
        .await;
    robot
        .client
        .publish(
            "$aws/things/r1/shadow/update",
            QoS::AtLeastOnce,
            false,
            r#"{"state":{}}"#,
        )
        .await
        .unwrap();
    let (topic, payload) = tokio::time::timeout(WAIT, shadow_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(topic, "$aws/things/r1/shadow/update");
    assert_eq!(&payload[..], br#"{"state":{}}"#);
    b.handle.publish(
        "$aws/things/r1/shadow/update/accepted",
        Bytes::from_static(b"{}"),
        1,
        false,
    );
    let p = robot
        .publish_within(WAIT)
        .await
        .expect("internal publish delivered");
    assert_eq!(p.topic, "$aws/things/r1/shadow/update/accepted");
    b.stop().await;
}

#[tokio::test]
async fn alpn_listener_serves_the_same_broker() {
    let setup = Setup::new();
    let b = setup
        .start_alpn(
            Setup::config(),
            None,
            Some(vec![gopigo_broker::ALPN_MQTT_CA.to_vec()]),
        )
        .await;
    let cfg = b.client_config(&b.admin, Some(vec![gopigo_broker::ALPN_MQTT_CA.to_vec()]));
    let mut raw = Raw::connect(b.addr, cfg).await.unwrap();
    assert_eq!(
        raw.stream.get_ref().1.alpn_protocol(),
        Some(gopigo_broker::ALPN_MQTT_CA)
    );
    assert!(is_connack_ok(
        &raw.mqtt_connect(connect_packet("alpn", 60, true)).await
    ));
    b.stop().await;
}

#[tokio::test]
async fn persistent_session_expires() {
    let setup = Setup::new();
    let config = gopigo_broker::BrokerConfig {
        session_expiry: Duration::from_millis(300),
        ..Setup::config()
    };
    let b = setup.start(config, None).await;
    let mut o = b.options("short", &b.admin);
    o.set_clean_session(false);
    let mut c = TestClient::start(o.clone());
    assert!(!c.connected().await);
    c.subscribe("s/#", QoS::AtLeastOnce).await;
    c.client.disconnect().await.unwrap();
    assert!(c.closed_within(WAIT).await);
    // Reconnect in time: the session is there.
    let mut c = TestClient::start(o.clone());
    assert!(c.connected().await);
    c.client.disconnect().await.unwrap();
    assert!(c.closed_within(WAIT).await);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(b.handle.stats().sessions, 0, "expired session swept");
    b.handle
        .publish("s/x", Bytes::from_static(b"late"), 1, false);
    let mut c = TestClient::start(o);
    assert!(!c.connected().await, "expired: no session present");
    assert!(c.publish_within(SHORT).await.is_none());
    b.stop().await;
}

#[tokio::test]
async fn policy_changes_apply_to_live_connections() {
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let dev = b.ca.client("dev");
    b.authority.register(&dev, ADMIN_POLICY, &[]);
    let mut c = b.client("dev", &dev);
    c.connected().await;
    c.client
        .publish("free/x", QoS::AtLeastOnce, false, "1")
        .await
        .unwrap();
    assert!(c
        .wait_for(WAIT, |p| matches!(p, Packet::PubAck(_)))
        .await
        .is_some());
    // The registry now attaches only the robot policy: the next publish is denied.
    b.authority.register(&dev, ROBOT_POLICY, &[]);
    c.client
        .publish("free/x", QoS::AtLeastOnce, false, "2")
        .await
        .unwrap();
    assert!(c.closed_within(WAIT).await);
    b.stop().await;
}

#[tokio::test]
async fn fast_qos1_publisher_is_slowed_not_dropped() {
    let setup = Setup::new();
    let config = gopigo_broker::BrokerConfig {
        max_inflight: 5,
        max_queued: 100,
        // This floods on purpose to test the broker's backpressure; AWS's
        // quotas would discard most of it (tests/quotas.rs attacks those).
        limits: gopigo_broker::Limits::off(),
        ..Setup::config()
    };
    let b = setup.start(config, None).await;
    let mut sub = b.client("slow-sub", &b.admin);
    sub.connected().await;
    sub.subscribe("flood/x", QoS::AtLeastOnce).await;
    let mut publ = b.client("fast-pub", &b.admin);
    publ.connected().await;
    let n = 1000;
    let client = publ.client.clone();
    let sender = tokio::spawn(async move {
        for i in 0..n {
            client
                .publish("flood/x", QoS::AtLeastOnce, false, format!("{i}"))
                .await
                .unwrap();
        }
    });
    // Keep the publisher's event loop polled while the subscriber counts.
    let drain = tokio::spawn(async move {
        while publ.next_incoming(Duration::from_secs(10)).await.is_some() {}
    });
    let mut got = 0;
    while let Some(p) = sub.publish_within(Duration::from_secs(5)).await {
        assert_eq!(
            p.payload,
            Bytes::from(format!("{got}")),
            "in order, none lost"
        );
        got += 1;
        if got == n {
            break;
        }
    }
    assert_eq!(
        got, n,
        "every QoS 1 message delivered despite a 100-message queue"
    );
    sender.await.unwrap();
    drain.abort();
    b.stop().await;
}
