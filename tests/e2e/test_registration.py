"""Certificate registration (your own CA, as on AWS), topic rules, and the
iot-data additions (named shadow list, retained messages), driven by the aws
CLI, boto3, openssl and mosquitto clients against the real core."""

import base64
import json

import pytest
from botocore.exceptions import ClientError

from conftest import open_policy, run


def openssl(*args):
    r = run("openssl", *args)
    assert r.returncode == 0, r.stderr


def make_ca(d, cn):
    """A CA made with openssl (CA:TRUE by openssl's default v3_ca)."""
    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-subj", f"/CN={cn}",
            "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE")
    return d / "ca.pem", d / "ca.key"


def sign(d, name, cn, ca_pem, ca_key):
    """A key and a certificate with subject CN=cn signed by the given CA."""
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"), "-subj", f"/CN={cn}")
    ext = d / "leaf.ext"
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n")
    openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(ca_pem), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(d / f"{name}.pem"), "-days", "2", "-extfile", str(ext))
    return d / f"{name}.pem", d / f"{name}.key"


def can_connect(core, cert, key, client_id="robotX"):
    r = run("mosquitto_pub", "-h", "localhost", "-p", str(core.mqtt_port), "--cafile", str(core.ca_path),
            "--cert", str(cert), "--key", str(key), "-i", client_id, "-t", "fleet/x", "-m", "1",
            "-q", "1", timeout=20)
    return r.returncode == 0


def registered_ca(core, tmp_path, active=True):
    iot = core.client()
    ca_pem, ca_key = make_ca(tmp_path / "myca", "My Fleet CA")
    code = iot.get_registration_code()["registrationCode"]
    assert iot.get_registration_code()["registrationCode"] == code  # stable, as on AWS
    ver_pem, _ = sign(tmp_path / "myca", "verification", code, ca_pem, ca_key)
    ca = iot.register_ca_certificate(caCertificate=ca_pem.read_text(),
                                     verificationCertificate=ver_pem.read_text(), setAsActive=active)
    return ca, ca_pem, ca_key


def allow_everything(iot, cert_arn):
    try:
        iot.create_policy(policyName="open", policyDocument=json.dumps(open_policy()))
    except iot.exceptions.ResourceAlreadyExistsException:
        pass
    iot.attach_policy(policyName="open", target=cert_arn)


def test_device_certificate_from_own_ca_connects_like_on_aws(core, tmp_path):
    iot = core.client()
    ca, ca_pem, ca_key = registered_ca(core, tmp_path)
    desc = iot.describe_ca_certificate(certificateId=ca["certificateId"])["certificateDescription"]
    assert desc["status"] == "ACTIVE" and desc["certificateMode"] == "DEFAULT"
    assert ca["certificateArn"].endswith(f":cacert/{ca['certificateId']}")
    assert [c["certificateId"] for c in iot.list_ca_certificates()["certificates"]] == [ca["certificateId"]]

    # An X.509 v1 certificate (openssl x509 -req without extensions) would
    # never pass the broker's handshake: refused at registration, saying so.
    d = tmp_path / "myca"
    openssl("x509", "-req", "-in", str(d / "verification.csr"), "-CA", str(ca_pem), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(d / "v1.pem"), "-days", "2")
    with pytest.raises(ClientError) as e:
        iot.register_certificate(certificatePem=(d / "v1.pem").read_text(), setAsActive=True)
    assert e.value.response["Error"]["Code"] == "CertificateValidationException"
    assert "version 1" in e.value.response["Error"]["Message"]

    dev_pem, dev_key = sign(tmp_path / "myca", "device", "robotX", ca_pem, ca_key)
    # Not registered yet: the broker refuses it, as AWS does.
    assert not can_connect(core, dev_pem, dev_key)
    cert = iot.register_certificate(certificatePem=dev_pem.read_text(),
                                    caCertificatePem=ca_pem.read_text(), setAsActive=True)
    allow_everything(iot, cert["certificateArn"])
    assert can_connect(core, dev_pem, dev_key)
    d = iot.describe_certificate(certificateId=cert["certificateId"])["certificateDescription"]
    assert d["caCertificateId"] == ca["certificateId"]
    by_ca = iot.list_certificates_by_ca(caCertificateId=ca["certificateId"])["certificates"]
    assert [c["certificateId"] for c in by_ca] == [cert["certificateId"]]

    # Registering it twice: AWS's conflict, with the resource named.
    with pytest.raises(ClientError) as e:
        iot.register_certificate(certificatePem=dev_pem.read_text(), setAsActive=True)
    assert e.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    assert e.value.response["resourceId"] == cert["certificateId"]

    # Deactivating the CA cuts every certificate it issued from new connections.
    iot.update_ca_certificate(certificateId=ca["certificateId"], newStatus="INACTIVE")
    assert not can_connect(core, dev_pem, dev_key)
    iot.update_ca_certificate(certificateId=ca["certificateId"], newStatus="ACTIVE")
    assert can_connect(core, dev_pem, dev_key)
    # An ACTIVE CA cannot be deleted; an INACTIVE one can, and its devices are out.
    with pytest.raises(ClientError) as e:
        iot.delete_ca_certificate(certificateId=ca["certificateId"])
    assert e.value.response["Error"]["Code"] == "CertificateStateException"
    iot.update_ca_certificate(certificateId=ca["certificateId"], newStatus="INACTIVE")
    iot.delete_ca_certificate(certificateId=ca["certificateId"])
    assert not can_connect(core, dev_pem, dev_key)


def test_ca_registration_needs_proof_of_the_ca_key(core, tmp_path):
    """The attack: register someone else's CA (its public certificate is all
    you have) to get your own devices trusted. The verification certificate
    must carry the registration code and be signed by the CA's key."""
    iot = core.client()
    ca_pem, ca_key = make_ca(tmp_path / "victim", "Victim CA")
    attacker_pem, attacker_key = make_ca(tmp_path / "attacker", "Attacker CA")
    code = iot.get_registration_code()["registrationCode"]

    forged, _ = sign(tmp_path / "attacker", "forged", code, attacker_pem, attacker_key)
    with pytest.raises(ClientError) as e:
        iot.register_ca_certificate(caCertificate=ca_pem.read_text(),
                                    verificationCertificate=forged.read_text(), setAsActive=True)
    assert e.value.response["Error"]["Code"] == "CertificateValidationException"

    wrong_code, _ = sign(tmp_path / "victim", "wrongcode", "not-the-code", ca_pem, ca_key)
    with pytest.raises(ClientError) as e:
        iot.register_ca_certificate(caCertificate=ca_pem.read_text(),
                                    verificationCertificate=wrong_code.read_text())
    assert e.value.response["Error"]["Code"] == "RegistrationCodeValidationException"

    with pytest.raises(ClientError) as e:
        iot.register_ca_certificate(caCertificate="not a certificate", verificationCertificate="x")
    assert e.value.response["Error"]["Code"] == "CertificateValidationException"

    # A device certificate from a CA nobody registered cannot be registered with a CA.
    dev, _ = sign(tmp_path / "attacker", "dev", "robotX", attacker_pem, attacker_key)
    with pytest.raises(ClientError) as e:
        iot.register_certificate(certificatePem=dev.read_text(), setAsActive=True)
    assert e.value.response["Error"]["Code"] == "CertificateValidationException"
    assert iot.list_ca_certificates()["certificates"] == []


def test_sni_only_ca_and_certificate_without_ca(core, tmp_path):
    iot = core.client()
    ca_pem, ca_key = make_ca(tmp_path / "sni", "SNI CA")
    ca = iot.register_ca_certificate(caCertificate=ca_pem.read_text(), certificateMode="SNI_ONLY",
                                     setAsActive=True)
    d = iot.describe_ca_certificate(certificateId=ca["certificateId"])["certificateDescription"]
    assert d["certificateMode"] == "SNI_ONLY"

    # A self-signed device certificate registered without a CA: trusted by
    # its fingerprint; the handshake still proves the device holds the key.
    d = tmp_path / "self"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(d / "k.pem"), "-out", str(d / "c.pem"), "-subj", "/CN=robotS", "-days", "2")
    assert not can_connect(core, d / "c.pem", d / "k.pem")
    cert = iot.register_certificate_without_ca(certificatePem=(d / "c.pem").read_text(), status="ACTIVE")
    allow_everything(iot, cert["certificateArn"])
    desc = iot.describe_certificate(certificateId=cert["certificateId"])["certificateDescription"]
    assert desc["certificateMode"] == "SNI_ONLY"
    assert can_connect(core, d / "c.pem", d / "k.pem")
    # The same certificate with another key (the attack: a copied public
    # certificate) fails the handshake.
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(d / "other.key"))
    assert not can_connect(core, d / "c.pem", d / "other.key")


def test_topic_rules_with_the_aws_cli(core, tmp_path):
    payload = {"sql": "SELECT * FROM 'fleet/+/telemetry' WHERE temp > 50", "ruleDisabled": False,
               "actions": [{"republish": {"topic": "alerts/hot", "roleArn": "arn:aws:iam::123456789012:role/r"}}]}
    f = tmp_path / "rule.json"
    f.write_text(json.dumps(payload))
    core.aws("iot", "create-topic-rule", "--rule-name", "hot", "--topic-rule-payload", f"file://{f}")
    r = core.aws("iot", "create-topic-rule", "--rule-name", "hot", "--topic-rule-payload", f"file://{f}",
                 check=False)
    assert r.returncode != 0 and "ResourceAlreadyExistsException" in r.stderr
    got = core.aws("iot", "get-topic-rule", "--rule-name", "hot")
    assert got["rule"]["sql"] == payload["sql"] and got["rule"]["actions"] == payload["actions"]
    assert got["ruleArn"].endswith(":rule/hot")
    rules = core.aws("iot", "list-topic-rules")["rules"]
    assert [(x["ruleName"], x["topicPattern"], x["ruleDisabled"]) for x in rules] == \
        [("hot", "fleet/+/telemetry", False)]
    core.aws("iot", "disable-topic-rule", "--rule-name", "hot")
    assert core.aws("iot", "get-topic-rule", "--rule-name", "hot")["rule"]["ruleDisabled"] is True
    assert core.aws("iot", "list-topic-rules", "--rule-disabled")["rules"][0]["ruleName"] == "hot"
    core.aws("iot", "enable-topic-rule", "--rule-name", "hot")
    payload["sql"] = "SELECT * FROM 'fleet/#'"
    f.write_text(json.dumps(payload))
    core.aws("iot", "replace-topic-rule", "--rule-name", "hot", "--topic-rule-payload", f"file://{f}")
    assert core.aws("iot", "list-topic-rules", "--topic", "fleet/#")["rules"][0]["ruleName"] == "hot"
    bad = dict(payload, sql="DROP TABLE things")
    f.write_text(json.dumps(bad))
    r = core.aws("iot", "create-topic-rule", "--rule-name", "bad", "--topic-rule-payload", f"file://{f}",
                 check=False)
    assert r.returncode != 0 and "SqlParseException" in r.stderr
    core.aws("iot", "delete-topic-rule", "--rule-name", "hot")
    assert core.aws("iot", "list-topic-rules")["rules"] == []
    r = core.aws("iot", "get-topic-rule", "--rule-name", "hot", check=False)
    assert r.returncode != 0 and "ResourceNotFoundException" in r.stderr


def test_retained_messages_and_named_shadows_over_iot_data(core, tmp_path):
    data = core.client("iot-data")
    data.publish(topic="fleet/robot1/status", qos=1, retain=True, payload=b"online")
    data.publish(topic="fleet/robot2/status", qos=0, retain=True, payload=b"\x00\xff")
    got = data.get_retained_message(topic="fleet/robot1/status")
    assert got["payload"] == b"online" and got["qos"] == 1 and got["lastModifiedTime"] > 0
    listed = data.list_retained_messages()["retainedTopics"]
    assert [(m["topic"], m["payloadSize"]) for m in listed] == \
        [("fleet/robot1/status", 6), ("fleet/robot2/status", 2)]
    # An empty retained publish clears it, as MQTT says.
    data.publish(topic="fleet/robot1/status", qos=1, retain=True, payload=b"")
    with pytest.raises(ClientError) as e:
        data.get_retained_message(topic="fleet/robot1/status")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"

    core.client().create_thing(thingName="robot1")
    for name in ("arm", "camera", "wheels"):
        data.update_thing_shadow(thingName="robot1", shadowName=name,
                                 payload=json.dumps({"state": {"reported": {"ok": True}}}))
    data.update_thing_shadow(thingName="robot1", payload=json.dumps({"state": {"reported": {"a": 1}}}))
    data.delete_thing_shadow(thingName="robot1", shadowName="camera")
    first = data.list_named_shadows_for_thing(thingName="robot1", pageSize=1)
    assert first["results"] == ["arm"] and "nextToken" in first
    rest = data.list_named_shadows_for_thing(thingName="robot1", nextToken=first["nextToken"])
    assert rest["results"] == ["wheels"]
    # The aws CLI decodes the retained payload the same way.
    data.publish(topic="fleet/robot3/status", qos=1, retain=True, payload=b"hi")
    out = core.aws("iot-data", "get-retained-message", "--topic", "fleet/robot3/status")
    assert base64.b64decode(out["payload"]) == b"hi"


def _watch(core, tmp_path, client_id, topic, out, *extra):
    """A `mosquitto_sub` with an open-policy identity, writing to `out`."""
    import subprocess

    from conftest import Identity

    ident = Identity(core, tmp_path, client_id, policy_doc=open_policy(), attach_thing=False)
    with open(out, "w") as f:
        return subprocess.Popen(["mosquitto_sub", "-h", "localhost", "-p", str(core.mqtt_port), *ident.tls_args(),
                                 "-i", client_id, "-t", topic, "-q", "1", *extra],
                                stdout=f, stderr=subprocess.STDOUT)


def test_a_select_star_rule_republishes_until_disabled(core, tmp_path):
    """The first step of a local rules engine: `SELECT * FROM '<filter>'` with
    a republish action copies each matching message, as on AWS."""
    import time

    iot, data = core.client(), core.client("iot-data")
    iot.create_topic_rule(ruleName="copy", topicRulePayload={
        "sql": "SELECT * FROM 'sensors/#'",
        "actions": [{"republish": {"topic": "alerts/all", "qos": 1,
                                   "roleArn": "arn:aws:iam::123456789012:role/r"}}]})
    out = tmp_path / "sub.out"
    sub = _watch(core, tmp_path, "watcher", "alerts/all", out)
    try:
        deadline = time.time() + 20
        while time.time() < deadline and "hot" not in out.read_text():
            data.publish(topic="sensors/t1", qos=1, payload=b"hot")
            time.sleep(0.3)
        assert "hot" in out.read_text()
        iot.disable_topic_rule(ruleName="copy")
        time.sleep(1)  # the engine restarts its rules on the registry event
        data.publish(topic="sensors/t1", qos=1, payload=b"after-disable")
        data.publish(topic="alerts/all", qos=1, payload=b"marker")
        deadline = time.time() + 20
        while time.time() < deadline and "marker" not in out.read_text():
            time.sleep(0.2)
        assert "marker" in out.read_text()
        assert "after-disable" not in out.read_text()
    finally:
        sub.terminate()
        sub.wait(10)


def test_a_rule_with_where_projection_and_template_republishes_only_what_matches(core, tmp_path):
    """The local rules engine runs AWS's SQL subset: WHERE decides, SELECT
    shapes the outgoing JSON, `${topic(2)}` names the republish topic; a
    message the WHERE refuses, or that is not JSON, is not republished."""
    import json
    import time

    iot, data = core.client(), core.client("iot-data")
    iot.create_topic_rule(ruleName="near", topicRulePayload={
        "sql": "SELECT distance_mm AS mm, topic(2) AS robot, distance_mm < 50 AS urgent "
               "FROM 'gopigo/+/telemetry' WHERE distance_mm < 100 AND NOT lower(mode) = 'parked'",
        "awsIotSqlVersion": "2016-03-23",
        "actions": [{"republish": {"topic": "alerts/${topic(2)}/near", "qos": 1,
                                   "roleArn": "arn:aws:iam::123456789012:role/r"}}]})
    out = tmp_path / "sub.out"
    sub = _watch(core, tmp_path, "watcher2", "alerts/+/near", out, "-v")
    try:
        far = json.dumps({"distance_mm": 400, "mode": "drive"})
        parked = json.dumps({"distance_mm": 20, "mode": "PARKED"})
        near = json.dumps({"distance_mm": 42, "mode": "drive", "speed": 3})
        deadline = time.time() + 20
        while time.time() < deadline and "alerts/r7/near" not in out.read_text():
            for payload in (far, parked, b"not json", near):
                data.publish(topic="gopigo/r7/telemetry", qos=1, payload=payload)
            time.sleep(0.3)
        lines = [ln for ln in out.read_text().splitlines() if ln.startswith("alerts/")]
        assert lines, out.read_text()
        for ln in lines:
            topic, body = ln.split(" ", 1)
            assert topic == "alerts/r7/near"
            assert json.loads(body) == {"mm": 42, "robot": "r7", "urgent": True}
    finally:
        sub.terminate()
        sub.wait(10)
