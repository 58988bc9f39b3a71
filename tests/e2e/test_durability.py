"""State survives a clean restart and a `kill -9` in the middle of writes."""

import json
import signal
import sqlite3
import threading

from conftest import Core


def test_restart_keeps_everything(tmp_path):
    c = Core(tmp_path / "core")
    try:
        iot = c.client()
        iot.create_thing(thingName="keep", attributePayload={"attributes": {"k": "v"}})
        cert = iot.create_keys_and_certificate(setAsActive=True)
        doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]})
        iot.create_policy(policyName="keep-p", policyDocument=doc)
        iot.attach_policy(policyName="keep-p", target=cert["certificateArn"])
        iot.attach_thing_principal(thingName="keep", principal=cert["certificateArn"])
        c.client("iot-data").update_thing_shadow(thingName="keep", payload=b'{"state":{"reported":{"v":1}}}')
        ca_before = c.ca_path.read_bytes()
        endpoint = iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
        account = cert["certificateArn"].split(":")[4]

        assert c.stop() == 0, "SIGTERM must stop the core cleanly with exit code 0"
        assert any("stopped" in line for line in c.lines)
        c.start()

        iot = c.client()  # same credentials after the restart
        assert iot.describe_thing(thingName="keep")["attributes"] == {"k": "v"}
        d = iot.describe_certificate(certificateId=cert["certificateId"])["certificateDescription"]
        assert d["status"] == "ACTIVE" and d["certificateArn"].split(":")[4] == account
        assert [p["policyName"] for p in iot.list_attached_policies(target=cert["certificateArn"])["policies"]] == ["keep-p"]
        assert iot.list_thing_principals(thingName="keep")["principals"] == [cert["certificateArn"]]
        assert iot.describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"] == endpoint
        assert c.ca_path.read_bytes() == ca_before, "the CA must be kept, or every device cert breaks"
        shadow = json.loads(c.client("iot-data").get_thing_shadow(thingName="keep")["payload"].read())
        assert shadow["state"]["reported"] == {"v": 1}
    finally:
        c.stop()


def test_kill_9_mid_write_leaves_a_consistent_store(tmp_path):
    c = Core(tmp_path / "core")
    acked = []
    errors = []
    stop = threading.Event()

    def writer(prefix):
        iot = c.client()
        i = 0
        while not stop.is_set():
            name = f"{prefix}-{i}"
            try:
                iot.create_thing(thingName=name)
                cert = iot.create_keys_and_certificate(setAsActive=True)
                iot.attach_thing_principal(thingName=name, principal=cert["certificateArn"])
                acked.append((name, cert["certificateArn"]))
            except Exception as e:  # the kill interrupts one request; that's the point
                errors.append(e)
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("a", "b")]
    for t in threads:
        t.start()
    while len(acked) < 15:
        threading.Event().wait(0.05)
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait()
    stop.set()
    for t in threads:
        t.join(30)

    db = sqlite3.connect(tmp_path / "core" / "core.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()

    c.start()
    try:
        iot = c.client()
        names = {t["thingName"] for p in iot.get_paginator("list_things").paginate() for t in p["things"]}
        for name, arn in acked:
            assert name in names, f"{name} was acknowledged before the kill but is gone"
            assert iot.list_thing_principals(thingName=name)["principals"] == [arn]
        # the store still takes writes
        iot.create_thing(thingName="after-kill")
    finally:
        c.stop()
