"""The MQTT broker of the local core with real clients: mosquitto clients,
paho-mqtt, the AWS IoT Device SDK v2, openssl and curl, with certificates made
through the control plane and AWS policies enforced."""

import json
import signal
import subprocess
import time

import pytest

from conftest import Core, Identity, open_policy, robot_policy, run
from mqttc import Client


@pytest.fixture
def fleet(core, tmp_path):
    a = Identity(core, tmp_path, "robotA", robot_policy(), policy_name="robot")
    b = Identity(core, tmp_path, "robotB", robot_policy(), policy_name="robot")
    ctl = Identity(core, tmp_path, "controller", open_policy(), attach_thing=False)
    return a, b, ctl


def test_mosquitto_clients_round_trip(core, fleet):
    a, _, ctl = fleet
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "localhost", "-p", str(core.mqtt_port), *ctl.tls_args(),
         "-i", "watcher", "-t", "gopigo/robotA/telemetry", "-C", "1", "-W", "10", "-q", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(1.0)
    r = run("mosquitto_pub", "-h", "localhost", "-p", str(core.mqtt_port), *a.tls_args(),
            "-i", "robotA", "-t", "gopigo/robotA/telemetry", "-m", '{"battery_v":9.1}', "-q", "1")
    assert r.returncode == 0, r.stderr
    out, err = sub.communicate(timeout=15)
    assert out.strip() == '{"battery_v":9.1}', err


def test_https_publish_with_curl_reaches_mosquitto_sub(core, fleet):
    _, _, ctl = fleet
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "localhost", "-p", str(core.mqtt_port), *ctl.tls_args(),
         "-i", "watcher", "-t", "gopigo/robotA/cmd", "-C", "1", "-W", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(1.0)
    r = run("curl", "-sS", "--cacert", str(core.ca_path), "--cert", str(ctl.cert), "--key", str(ctl.key),
            "-X", "POST", "--data", "forward",
            f"https://localhost:{core.https_port}/topics/gopigo%2FrobotA%2Fcmd?qos=1")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["message"] == "OK" and len(body["traceId"]) == 36
    out, err = sub.communicate(timeout=15)
    assert out.strip() == "forward", err


@pytest.mark.parametrize("which", ["mqtt", "https"])
def test_openssl_s_client_verifies(core, fleet, which):
    a, _, _ = fleet
    port = core.mqtt_port if which == "mqtt" else core.https_port
    r = subprocess.run(
        ["openssl", "s_client", "-connect", f"localhost:{port}", "-CAfile", str(core.ca_path),
         "-cert", str(a.cert), "-key", str(a.key), "-verify_return_error"],
        input="", capture_output=True, text=True, timeout=20,
    )
    assert "Verify return code: 0 (ok)" in r.stdout, r.stdout + r.stderr


def test_paho_publish_subscribe_and_policy_isolation(core, fleet):
    a, b, ctl = fleet
    watcher = Client(core, ctl, "watcher")
    assert watcher.sub("gopigo/#") is not None
    ra = Client(core, a, "robotA")
    assert ra.connect_rc == 0
    # its own topics: fine
    assert ra.sub("gopigo/robotA/cmd") is not None
    ra.pub("gopigo/robotA/telemetry", b"t1")
    m = watcher.get(5)
    assert m is not None and m.topic == "gopigo/robotA/telemetry" and m.payload == b"t1"
    # robot B's command reaches B's subscription only
    rb = Client(core, b, "robotB")
    assert rb.sub("gopigo/robotB/cmd") is not None
    watcher.pub("gopigo/robotB/cmd", b"forward")
    assert rb.get(5).payload == b"forward"
    assert ra.get(1) is None
    # A publishing to B's topic is disconnected, and B gets nothing
    ra.pub("gopigo/robotB/cmd", b"evil", qos=1, timeout=3)
    assert ra.disconnected.wait(5), "a publish outside its own topics must close the connection"
    assert rb.get(1) is None


def test_subscription_outside_own_topics_is_refused(core, fleet):
    a, _, _ = fleet
    ra = Client(core, a, "robotA")
    ra.sub("gopigo/robotB/#", timeout=3)
    assert ra.disconnected.wait(5)


def test_receive_denied_skips_that_subscriber_only(core, tmp_path, fleet):
    _, _, ctl = fleet
    # may subscribe to everything but receive only its own topics
    t = "${iot:Connection.Thing.ThingName}"
    narrow = Identity(core, tmp_path, "robotC", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"arn:aws:iot:*:*:client/{t}"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:aws:iot:*:*:topicfilter/gopigo/*"},
        {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"arn:aws:iot:*:*:topic/gopigo/{t}/*"},
    ]})
    rc = Client(core, narrow, "robotC")
    assert rc.sub("gopigo/#") is not None
    w = Client(core, ctl, "watcher")
    assert w.sub("gopigo/#") is not None
    w2 = Client(core, ctl, "sender")
    w2.pub("gopigo/robotA/cmd", b"not for C")
    w2.pub("gopigo/robotC/cmd", b"for C")
    got_c = [m.payload for m in rc.drain(1.0)]
    got_w = [m.payload for m in w.drain(1.0)]
    assert got_c == [b"for C"]
    assert got_w == [b"not for C", b"for C"]
    assert not rc.disconnected.is_set()


def test_handshake_refusals(core, fleet, tmp_path):
    a, _, _ = fleet
    iot = core.client()

    def can_connect(cert, key, ca=None):
        r = run("mosquitto_pub", "-h", "localhost", "-p", str(core.mqtt_port),
                "--cafile", str(ca or core.ca_path), "--cert", str(cert), "--key", str(key),
                "-i", "robotA", "-t", "gopigo/robotA/x", "-m", "1", "-q", "1", timeout=20)
        return r.returncode == 0

    assert can_connect(a.cert, a.key)
    # another CA
    other = tmp_path / "other"
    other.mkdir()
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(other / "ca.key"), "-out", str(other / "ca.pem"), "-subj", "/CN=evil", "-days", "2")
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(other / "d.key"), "-out", str(other / "d.csr"), "-subj", "/CN=robotA")
    run("openssl", "x509", "-req", "-in", str(other / "d.csr"), "-CA", str(other / "ca.pem"),
        "-CAkey", str(other / "ca.key"), "-CAcreateserial", "-out", str(other / "d.pem"), "-days", "2")
    assert not can_connect(other / "d.pem", other / "d.key")
    # signed by our CA but never registered: made directly with the CA key
    ca_dir = core.data_dir / "ca"
    run("openssl", "x509", "-req", "-in", str(other / "d.csr"), "-CA", str(ca_dir / "ca.pem"),
        "-CAkey", str(ca_dir / "ca.key"), "-CAcreateserial", "-out", str(other / "unreg.pem"), "-days", "2")
    assert not can_connect(other / "unreg.pem", other / "d.key")
    # INACTIVE, then REVOKED
    iot.update_certificate(certificateId=a.cert_id, newStatus="INACTIVE")
    assert not can_connect(a.cert, a.key)
    iot.update_certificate(certificateId=a.cert_id, newStatus="ACTIVE")
    assert can_connect(a.cert, a.key)
    iot.update_certificate(certificateId=a.cert_id, newStatus="REVOKED")
    assert not can_connect(a.cert, a.key)


def test_deactivating_a_certificate_disconnects_its_device(core, fleet):
    a, _, ctl = fleet
    watcher = Client(core, ctl, "watcher")
    assert watcher.sub("$aws/events/presence/disconnected/robotA") is not None
    ra = Client(core, a, "robotA")
    assert ra.sub("gopigo/robotA/cmd") is not None
    iot = core.client()  # made before the clock starts: building a boto3 client is slow
    sent_ms = time.time() * 1000
    iot.update_certificate(certificateId=a.cert_id, newStatus="INACTIVE")
    assert ra.disconnected.wait(5), "the device is disconnected"
    m = watcher.get(5)
    assert m is not None, "the broker announces the disconnect"
    event = json.loads(m.payload)
    assert event["disconnectReason"] == "AUTH_ERROR" and not event["clientInitiatedDisconnect"], event
    # Timed by the broker's own event, so a slow test process does not count.
    # The point is "at once", as on AWS: not at the device's next keep-alive
    # (60 s here) or reconnect. 3 s leaves room for a loaded machine.
    gone_ms = event["timestamp"] - sent_ms
    print(f"deactivation -> disconnected event: {gone_ms:.0f} ms")
    assert gone_ms < 3000, f"the device was gone {gone_ms:.0f} ms after the deactivation was sent"


def test_aws_iot_device_sdk_on_the_alpn_listener(core, fleet):
    from awscrt import mqtt as crt_mqtt
    from awsiot import mqtt_connection_builder

    a, _, ctl = fleet
    watcher = Client(core, ctl, "watcher")
    assert watcher.sub("gopigo/robotA/#") is not None
    conn = mqtt_connection_builder.mtls_from_path(
        endpoint="localhost", port=core.alpn_port, cert_filepath=str(a.cert), pri_key_filepath=str(a.key),
        ca_filepath=str(core.ca_path), client_id="robotA", clean_session=False, keep_alive_secs=1200,
    )
    conn.connect().result(15)
    fut, _ = conn.publish(topic="gopigo/robotA/status", payload='{"online":true}', qos=crt_mqtt.QoS.AT_LEAST_ONCE)
    fut.result(10)
    m = watcher.get(5)
    assert m is not None and m.payload == b'{"online":true}'
    conn.disconnect().result(10)


def test_aws_semantics_retained_wildcards_will_takeover(core, fleet):
    a, _, ctl = fleet
    w = Client(core, ctl, "w")
    # a/# does not match a
    assert w.sub("gopigo/robotA/#") is not None
    s = Client(core, ctl, "s")
    s.pub("gopigo/robotA", b"parent")
    s.pub("gopigo/robotA/x", b"child")
    assert [m.payload for m in w.drain(1.0)] == [b"child"]
    # retained: only an exact filter gets it on subscribe, with RETAIN=1
    s.pub("gopigo/robotA/status", b'{"online":true}', retain=True)
    w.drain(0.5)
    exact = Client(core, ctl, "exact")
    assert exact.sub("gopigo/robotA/status") is not None
    m = exact.get(3)
    assert m is not None and m.retain and m.payload == b'{"online":true}'
    wild = Client(core, ctl, "wild")
    assert wild.sub("gopigo/robotA/+") is not None
    assert wild.get(1) is None
    # empty payload deletes it
    s.pub("gopigo/robotA/status", b"", retain=True)
    late = Client(core, ctl, "late")
    assert late.sub("gopigo/robotA/status") is not None
    assert late.get(1) is None
    # will: sent on an abrupt close, not on a clean DISCONNECT
    assert w.sub("gopigo/robotA/status") is not None
    w.drain(0.5)
    ra = Client(core, a, "robotA", will=("gopigo/robotA/status", '{"online":false}', 1, False))
    ra.close(clean=True)
    assert w.get(1.5) is None
    ra = Client(core, a, "robotA", will=("gopigo/robotA/status", '{"online":false}', 1, False))
    ra.close(clean=False)
    m = w.get(5)
    assert m is not None and m.payload == b'{"online":false}'
    # duplicate client id: the newcomer wins
    one = Client(core, ctl, "dup")
    two = Client(core, ctl, "dup")
    assert one.disconnected.wait(5) and not two.disconnected.is_set()


def test_shadow_over_mqtt_like_the_developer_guide(core, fleet):
    a, _, _ = fleet
    r = Client(core, a, "robotA")
    base = "$aws/things/robotA/shadow"
    assert r.sub(base + "/update/accepted") is not None
    assert r.sub(base + "/update/delta") is not None
    assert r.sub(base + "/get/accepted") is not None
    assert r.sub(base + "/get/rejected") is not None
    assert r.sub(base + "/update/rejected") is not None
    r.pub(base + "/get", b"")
    m = r.get(5)
    assert m.topic == base + "/get/rejected" and json.loads(m.payload)["code"] == 404
    r.pub(base + "/update", json.dumps({"state": {"desired": {"color": "red"}}, "clientToken": "t1"}))
    got = {m.topic: json.loads(m.payload) for m in r.drain(1.0)}
    acc = got[base + "/update/accepted"]
    assert acc["state"] == {"desired": {"color": "red"}} and acc["clientToken"] == "t1" and acc["version"] == 1
    assert got[base + "/update/delta"]["state"] == {"color": "red"}
    r.pub(base + "/update", json.dumps({"state": {"reported": {"color": "red"}}}))
    got = {m.topic: json.loads(m.payload) for m in r.drain(1.0)}
    assert base + "/update/delta" not in got
    r.pub(base + "/get", json.dumps({"clientToken": "g"}))
    doc = json.loads(r.get(5).payload)
    assert doc["state"] == {"desired": {"color": "red"}, "reported": {"color": "red"}}
    assert doc["version"] == 2 and doc["clientToken"] == "g"
    assert "timestamp" in doc["metadata"]["desired"]["color"]
    r.pub(base + "/update", json.dumps({"state": {"reported": {"x": 1}}, "version": 1}))
    m = r.get(5)
    assert m.topic == base + "/update/rejected" and json.loads(m.payload)["code"] == 409
    r.pub(base + "/update", b"{bad json")
    m = r.get(5)
    assert m.topic == base + "/update/rejected" and json.loads(m.payload)["code"] == 400


def test_kill_9_keeps_queued_qos1_retained_and_shadows(tmp_path):
    core = Core(tmp_path / "core")
    try:
        ctl = Identity(core, tmp_path, "controller", open_policy(), attach_thing=False)
        # a persistent session subscribes, then goes away
        p = Client(core, ctl, "persistent", clean=False)
        assert p.sub("gopigo/robotA/cmd", qos=1) is not None
        p.close(clean=True)
        s = Client(core, ctl, "sender")
        for i in range(5):
            s.pub("gopigo/robotA/cmd", f"cmd{i}".encode(), qos=1)
        s.pub("gopigo/robotA/status", b"retained!", retain=True)
        core.client("iot-data").update_thing_shadow(thingName="robotA", payload=b'{"state":{"desired":{"speed":200}}}')
        time.sleep(0.5)
        s.close()
        core.proc.send_signal(signal.SIGKILL)
        core.proc.wait()
        core.start()
        p = Client(core, ctl, "persistent", clean=False)
        assert p.session_present
        got = [m.payload for m in p.drain(2.0)]
        assert got == [f"cmd{i}".encode() for i in range(5)]
        r = Client(core, ctl, "reader")
        assert r.sub("gopigo/robotA/status") is not None
        m = r.get(3)
        assert m is not None and m.payload == b"retained!"
        doc = json.loads(core.client("iot-data").get_thing_shadow(thingName="robotA")["payload"].read())
        assert doc["state"]["desired"] == {"speed": 200}
    finally:
        core.stop()


def test_iot_data_publish_reaches_subscribers(core, fleet):
    _, _, ctl = fleet
    w = Client(core, ctl, "w")
    assert w.sub("gopigo/robotB/cmd") is not None
    core.client("iot-data").publish(topic="gopigo/robotB/cmd", qos=1, payload=b"left")
    m = w.get(5)
    assert m is not None and m.payload == b"left"


def test_connect_with_a_qos2_will_is_refused_not_silently_dropped(core, fleet):
    """AWS IoT supports QoS 0 and 1 only. A CONNECT whose will asks QoS 2 is
    refused (closed without CONNACK), never accepted with a will that would
    then not be sent ([MQTT-3.1.2-8])."""
    a, _, ctl = fleet
    w = Client(core, ctl, "watcher")
    assert w.sub("gopigo/robotA/status") is not None
    c = Client(core, a, "robotA", will=("gopigo/robotA/status", '{"online":false}', 2, False), connect=False)
    with pytest.raises(AssertionError, match="no CONNACK"):
        c.connect(timeout=5)
    assert c.connect_rc is None, "no CONNACK, so no accepted session"
    assert c.disconnected.wait(5), "the broker closed the connection"
    c.c.loop_stop()
    assert w.get(1.5) is None, "no will from a refused CONNECT"
    # the same client with a QoS 1 will connects, and its will is sent
    ok = Client(core, a, "robotA", will=("gopigo/robotA/status", '{"online":false}', 1, False))
    assert ok.connect_rc == 0
    ok.close(clean=False)
    m = w.get(5)
    assert m is not None and m.payload == b'{"online":false}'


def test_shadow_delta_repeats_after_a_report_that_leaves_a_gap(core, fleet):
    """Issue 12 / AWS: /update/delta follows every accepted update whose
    document still has a delta, reported-only updates included."""
    a, _, _ = fleet
    r = Client(core, a, "robotA")
    base = "$aws/things/robotA/shadow"
    assert r.sub(base + "/update/delta") is not None
    r.pub(base + "/update", json.dumps({"state": {"desired": {"color": "red", "speed": 200}}}))
    first = [json.loads(m.payload) for m in r.drain(1.0)]
    assert [d["state"] for d in first] == [{"color": "red", "speed": 200}]
    # the device reports one of the two: the rest is published again
    r.pub(base + "/update", json.dumps({"state": {"reported": {"color": "red"}}, "clientToken": "dev"}))
    again = [json.loads(m.payload) for m in r.drain(1.0)]
    assert len(again) == 1 and again[0]["state"] == {"speed": 200}
    assert again[0]["version"] == 2 and again[0]["clientToken"] == "dev"
    assert "timestamp" in again[0]["metadata"]["speed"]
    # a report that closes the gap: no delta
    r.pub(base + "/update", json.dumps({"state": {"reported": {"speed": 200}}}))
    assert r.drain(1.0) == []
