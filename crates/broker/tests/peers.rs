//! Real third-party clients against the broker: Debian's mosquitto_pub /
//! mosquitto_sub and PyPI paho-mqtt. Each test is skipped (with a note) when
//! the peer is not installed.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rumqttc::QoS;
use tokio::process::Command;
use util::*;

fn write_identity(dir: &Path, name: &str, who: &Identity) {
    std::fs::write(dir.join(format!("{name}.pem")), &who.cert_pem).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), &who.key_pem).unwrap();
}

fn have(bin: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {bin}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn mosquitto_clients_publish_and_subscribe() {
    if !have("mosquitto_sub") || !have("mosquitto_pub") {
        eprintln!("mosquitto-clients not installed; skipping");
        return;
    }
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), b.ca.cert.pem()).unwrap();
    write_identity(dir.path(), "admin", &b.admin);
    let stranger = b.ca.client("stranger");
    write_identity(dir.path(), "stranger", &stranger);
    let port = b.addr.port().to_string();
    let d = dir.path();
    let tls_args = |who: &str| {
        vec![
            "-h".to_string(),
            "localhost".into(),
            "-p".into(),
            port.clone(),
            "--cafile".into(),
            d.join("ca.pem").display().to_string(),
            "--cert".into(),
            d.join(format!("{who}.pem")).display().to_string(),
            "--key".into(),
            d.join(format!("{who}.key")).display().to_string(),
        ]
    };

    let sub = Command::new("mosquitto_sub")
        .args(tls_args("admin"))
        .args([
            "-i",
            "msub",
            "-t",
            "gopigo/r1/#",
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "10",
            "-v",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the subscription exists.
    for _ in 0..100 {
        if b.handle.stats().subscriptions > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = Command::new("mosquitto_pub")
        .args(tls_args("admin"))
        .args([
            "-i",
            "mpub",
            "-t",
            "gopigo/r1/cmd",
            "-q",
            "1",
            "-m",
            "forward",
        ])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "mosquitto_pub failed");
    let out = tokio::time::timeout(Duration::from_secs(15), sub.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "gopigo/r1/cmd forward",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An unregistered certificate is refused.
    let status = Command::new("mosquitto_pub")
        .args(tls_args("stranger"))
        .args([
            "-i",
            "intruder",
            "-t",
            "gopigo/r1/cmd",
            "-q",
            "1",
            "-m",
            "x",
        ])
        .stderr(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(
        !status.success(),
        "unregistered certificate must be refused"
    );
    b.stop().await;
}

const PAHO_SCRIPT: &str = r#"
import ssl, sys, time
import paho.mqtt.client as mqtt
port, d = int(sys.argv[1]), sys.argv[2]
got = []
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-r1", clean_session=False)
c.tls_set(ca_certs=d + "/ca.pem", certfile=d + "/admin.pem", keyfile=d + "/admin.key")
c.on_message = lambda cl, ud, m: got.append((m.topic, m.payload.decode(), m.retain))
c.connect("localhost", port, keepalive=60)
c.loop_start()
time.sleep(0.3)
c.publish("gopigo/paho/status", '{"online":true}', qos=1, retain=True).wait_for_publish(5)
c.subscribe("gopigo/paho/status", qos=1)
for _ in range(100):
    if got:
        break
    time.sleep(0.05)
c.disconnect()
c.loop_stop()
print(got[0] if got else "nothing")
"#;

#[tokio::test]
async fn paho_retained_qos1_round_trip() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import paho.mqtt.client"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("paho-mqtt not installed; skipping");
        return;
    }
    let setup = Setup::new();
    let b = setup.start(Setup::config(), None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), b.ca.cert.pem()).unwrap();
    write_identity(dir.path(), "admin", &b.admin);
    let mut watcher = b.client("watcher", &b.admin);
    watcher.connected().await;
    watcher.subscribe("gopigo/+/status", QoS::AtLeastOnce).await;

    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new("python3")
            .args([
                "-c",
                PAHO_SCRIPT,
                &b.addr.port().to_string(),
                &dir.path().display().to_string(),
            ])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(r#"('gopigo/paho/status', '{"online":true}', True)"#),
        "paho saw: {stdout} / {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = watcher
        .publish_within(WAIT)
        .await
        .expect("paho publish delivered");
    assert_eq!(p.topic, "gopigo/paho/status");
    b.stop().await;
}

const AWS_SDK_SCRIPT: &str = r#"
import sys, threading
from awscrt import io, mqtt
port, d = int(sys.argv[1]), sys.argv[2]
opts = io.TlsContextOptions.create_client_with_mtls_from_path(d + "/admin.pem", d + "/admin.key")
opts.override_default_trust_store_from_path(None, d + "/ca.pem")
opts.alpn_list = ["x-amzn-mqtt-ca"]
client = mqtt.Client(None, io.ClientTlsContext(opts))
conn = mqtt.Connection(client=client, host_name="localhost", port=port, client_id="sdk-r1",
                       clean_session=False, keep_alive_secs=1200)
print("session_present", conn.connect().result(10)["session_present"])
got = threading.Event()
msgs = []
def on_msg(topic, payload, **kw):
    msgs.append((topic, payload.decode()))
    got.set()
f, _ = conn.subscribe("gopigo/sdk/#", mqtt.QoS.AT_LEAST_ONCE, on_msg)
f.result(10)
f, _ = conn.publish("gopigo/sdk/telemetry", '{"v":1}', mqtt.QoS.AT_LEAST_ONCE)
f.result(10)
got.wait(10)
print(msgs)
conn.disconnect().result(10)
"#;

/// The AWS IoT Device SDK v2 (awscrt) in its port-443 style: ALPN
/// `x-amzn-mqtt-ca`, persistent session, keep-alive 1200 s.
#[tokio::test]
async fn aws_device_sdk_over_alpn_listener() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import awscrt.mqtt"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("awscrt (awsiotsdk) not installed; skipping");
        return;
    }
    let setup = Setup::new();
    let b = setup
        .start_alpn(
            Setup::config(),
            None,
            Some(vec![gopigo_broker::ALPN_MQTT_CA.to_vec()]),
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), b.ca.cert.pem()).unwrap();
    write_identity(dir.path(), "admin", &b.admin);
    let out = tokio::time::timeout(
        Duration::from_secs(40),
        Command::new("python3")
            .args([
                "-c",
                AWS_SDK_SCRIPT,
                &b.addr.port().to_string(),
                &dir.path().display().to_string(),
            ])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("session_present False")
            && stdout.contains(r#"[('gopigo/sdk/telemetry', '{"v":1}')]"#),
        "SDK saw: {stdout} / {}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.stop().await;
}
