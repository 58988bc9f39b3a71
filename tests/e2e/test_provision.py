"""`gopigo provision`, `deprovision` and `check` against the local core (and
moto's server as a stand-in for AWS's control plane), with paho as the
device: each robot can use only its own topics and shadow, re-runs change
nothing, deprovision leaves nothing behind, and each `check` failure names
its cause."""

import json
import os
import shutil
import subprocess
import time
import types
from pathlib import Path

import pytest

from conftest import GOPIGO, run
from mqttc import Client


def gopigo(*args, env=None, timeout=120):
    return subprocess.run([GOPIGO, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def provision(core, tmp_path, thing, *extra):
    out = tmp_path / "bundles" / thing
    r = gopigo("provision", "--thing", thing, "--data-dir", core.data_dir, "--out", out, *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r


def ident(bundle):
    """What mqttc.Client needs: the bundle's cert and key."""
    return types.SimpleNamespace(cert=bundle / "cert.pem", key=bundle / "key.pem")


def registry(core):
    iot = core.client()
    certs = iot.list_certificates()["certificates"]
    policies = iot.list_policies()["policies"]
    return {
        "things": sorted(t["thingName"] for t in iot.list_things()["things"]),
        "certs": sorted(c["certificateId"] for c in certs),
        "policies": sorted(p["policyName"] for p in policies),
        "versions": {p["policyName"]: len(iot.list_policy_versions(policyName=p["policyName"])["policyVersions"])
                     for p in policies},
        "attached": {c["certificateId"]: sorted(p["policyName"] for p in
                                                iot.list_attached_policies(target=c["certificateArn"])["policies"])
                     for c in certs},
    }


@pytest.fixture
def fleet(core, tmp_path):
    r1, _ = provision(core, tmp_path, "r1")
    r2, _ = provision(core, tmp_path, "r2")
    ctl, _ = provision(core, tmp_path, "ctl", "--role", "controller")
    return r1, r2, ctl


def test_bundle_files_and_config(core, fleet):
    r1, _, ctl = fleet
    for b in (r1, ctl):
        assert sorted(os.listdir(b)) == ["ca.pem", "cert.pem", "key.pem", "robot.toml"]
        assert (b / "key.pem").stat().st_mode & 0o777 == 0o600
        assert (b / "ca.pem").read_bytes() == core.ca_path.read_bytes()
    text = (r1 / "robot.toml").read_text()
    assert 'thing = "r1"' in text and "[mqtt]" in text
    assert f"port = {core.mqtt_port}" in text and 'client_id = "r1"' in text
    # the key never travelled: the registry's certificate carries the bundle key's public key
    pub_cert = run("openssl", "x509", "-in", str(r1 / "cert.pem"), "-noout", "-pubkey").stdout
    pub_key = run("openssl", "pkey", "-in", str(r1 / "key.pem"), "-pubout").stdout
    assert pub_cert == pub_key and pub_key
    iot = core.client()
    policy = json.loads(iot.get_policy(policyName="gopigo-robot")["policyDocument"])
    flat = json.dumps(policy)
    assert "iot:*" not in flat and '"Resource": "*"' not in flat
    assert "${iot:Connection.Thing.ThingName}" in flat
    assert iot.describe_thing(thingName="ctl")["thingName"] == "ctl"


def test_robots_isolated_controller_drives(core, fleet):
    r1, r2, ctl = fleet
    a = Client(core, ident(r1), "r1")
    b = Client(core, ident(r2), "r2")
    c = Client(core, ident(ctl), "ctl")
    assert a.connect_rc == 0 and b.connect_rc == 0 and c.connect_rc == 0
    # the controller commands each robot; only that robot hears it
    assert a.sub("gopigo/r1/cmd") is not None
    assert b.sub("gopigo/r2/cmd") is not None
    c.pub("gopigo/r2/cmd", b'{"action":"stop"}')
    assert b.get(5).payload == b'{"action":"stop"}'
    assert a.get(1) is None
    # telemetry reaches the controller
    assert c.sub("gopigo/+/telemetry") is not None
    a.pub("gopigo/r1/telemetry", b"t1")
    m = c.get(5)
    assert m is not None and (m.topic, m.payload) == ("gopigo/r1/telemetry", b"t1")
    # own shadow works
    assert a.sub("$aws/things/r1/shadow/update/accepted") is not None
    a.pub("$aws/things/r1/shadow/update", json.dumps({"state": {"reported": {"speed": 300}}}))
    m = a.get(5)
    assert m is not None and json.loads(m.payload)["state"]["reported"]["speed"] == 300
    # retained status on its own topic is allowed
    a.pub("gopigo/r1/status", b'{"online":true}', retain=True)
    assert not a.disconnected.wait(1)
    # the controller may not impersonate a robot's telemetry
    c.pub("gopigo/r1/telemetry", b"fake", timeout=3)
    assert c.disconnected.wait(5), "controller publishing telemetry must be refused"
    # robot 1 on robot 2's shadow: refused (disconnected)
    a.sub("$aws/things/r2/shadow/update/accepted", timeout=3)
    assert a.disconnected.wait(5)
    # robot 2 publishing on robot 1's command topic: refused
    b.pub("gopigo/r1/cmd", b"evil", timeout=3)
    assert b.disconnected.wait(5)
    for x in (a, b, c):
        x.close()
    # a robot may not connect under another robot's name
    d = Client(core, ident(r1), "r2", connect=False)
    d.c.connect("localhost", core.mqtt_port, keepalive=30)
    d.c.loop_start()
    assert d.disconnected.wait(5) and d.connect_rc in (None, 5)
    d.c.loop_stop()


def test_check_passes_and_rerun_is_noop(core, tmp_path, fleet):
    r1, r2, ctl = fleet
    for b in fleet:
        r = gopigo("check", "--bundle", b)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "FAIL" not in r.stdout
        for step in ("dns", "tcp", "tls", "client cert", "connect", "subscribe", "round trip"):
            assert f"PASS {step}" in r.stdout, r.stdout
    assert "TLS 1.3" in r.stdout and "CN=localhost" in r.stdout
    before = registry(core)
    files = {p: p.read_bytes() for b in fleet for p in b.iterdir()}
    for thing, extra in (("r1", ()), ("r2", ()), ("ctl", ("--role", "controller"))):
        _, r = provision(core, tmp_path, thing, *extra)
        assert "nothing to do" in r.stdout, r.stdout
        assert "changed:" not in r.stdout
    assert registry(core) == before
    assert before["versions"] == {"gopigo-controller": 1, "gopigo-robot": 1}
    assert {p: p.read_bytes() for b in fleet for p in b.iterdir()} == files
    # --config with the bundle's robot.toml works too
    r = gopigo("check", "--config", r1 / "robot.toml")
    assert r.returncode == 0, r.stdout


def test_policy_drift_is_repaired_with_one_version(core, tmp_path, fleet):
    iot = core.client()
    iot.create_policy_version(policyName="gopigo-robot", setAsDefault=True,
                              policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                  {"Effect": "Allow", "Action": "iot:Connect",
                                   "Resource": "arn:aws:iot:*:*:client/nobody"}]}))
    _, r = provision(core, tmp_path, "r1")
    assert "made version 3 the default" in r.stdout, r.stdout
    _, r = provision(core, tmp_path, "r1")
    assert "nothing to do" in r.stdout
    assert len(iot.list_policy_versions(policyName="gopigo-robot")["policyVersions"]) == 3


def test_deprovision_leaves_nothing(core, tmp_path, fleet):
    outs = []
    for thing in ("r1", "r2", "ctl"):
        r = gopigo("deprovision", "--thing", thing, "--data-dir", core.data_dir, "--delete-policies")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "delete the thing" in r.stdout
        outs.append(r.stdout)
    # the robot policy stays while r2 still uses it, and goes with the last robot
    assert "kept policy gopigo-robot" in outs[0]
    assert "delete policy gopigo-robot" in outs[1]
    assert "delete policy gopigo-controller" in outs[2]
    assert registry(core) == {"things": [], "certs": [], "policies": [], "versions": {}, "attached": {}}
    r = gopigo("deprovision", "--thing", "r1", "--data-dir", core.data_dir)
    assert r.returncode == 0 and "nothing to do" in r.stdout
    # the device's key is not touched by deprovision
    assert (fleet[0] / "key.pem").exists()


def test_deprovision_waits_for_an_asynchronous_detach(tmp_path):
    """AWS detaches a thing's principal asynchronously: it stays listed, and
    DeleteThing fails with "still attached", for a while. The core emulates
    this (--detach-delay); a naive detach-then-delete fails against it, and
    `gopigo deprovision` waits and succeeds."""
    from conftest import Core

    delay = 8
    core = Core(tmp_path / "core", extra=["--detach-delay", str(delay)])
    try:
        provision(core, tmp_path, "slow")
        provision(core, tmp_path, "r1")
        iot = core.client()
        # the naive order, as a script without waiting would do it
        [arn] = iot.list_thing_principals(thingName="r1")["principals"]
        iot.detach_thing_principal(thingName="r1", principal=arn)
        assert iot.list_thing_principals(thingName="r1")["principals"] == [arn]
        with pytest.raises(iot.exceptions.InvalidRequestException) as e:
            iot.delete_thing(thingName="r1")
        assert e.value.response["Error"]["Message"] == \
            "Cannot delete. Thing r1 is still attached to one or more principals"
        # ... and the certificate cannot go either while the thing still lists it
        cert_id = arn.rsplit("/", 1)[1]
        iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
        with pytest.raises(iot.exceptions.DeleteConflictException):
            iot.delete_certificate(certificateId=cert_id, forceDelete=True)

        # deprovision waits it out: polls ListThingPrincipals, retries the deletes
        started = time.monotonic()
        r = gopigo("deprovision", "--thing", "slow", "--data-dir", core.data_dir,
                   "--delete-policies")
        took = time.monotonic() - started
        assert r.returncode == 0, r.stdout + r.stderr
        assert "delete the thing" in r.stdout
        # it could only succeed once the detach had landed
        assert took >= delay - 0.5, took
        things = sorted(t["thingName"] for t in iot.list_things()["things"])
        assert things == ["r1"]
        # the lingering attachment of r1 is over too
        assert iot.list_thing_principals(thingName="r1")["principals"] == []
        iot.delete_thing(thingName="r1")
    finally:
        core.stop()


def test_detach_delay_zero_detaches_at_once(tmp_path):
    from conftest import Core

    core = Core(tmp_path / "core", extra=["--detach-delay", "0"])
    try:
        provision(core, tmp_path, "r1")
        iot = core.client()
        [arn] = iot.list_thing_principals(thingName="r1")["principals"]
        iot.detach_thing_principal(thingName="r1", principal=arn)
        assert iot.list_thing_principals(thingName="r1")["principals"] == []
        iot.delete_thing(thingName="r1")
        r = gopigo("core", "--detach-delay=-1", "--data-dir", tmp_path / "x")
        assert r.returncode != 0 and "give seconds from 0 to 3600" in r.stderr, r.stderr
    finally:
        core.stop()


def test_check_waits_for_a_fresh_policy_to_take_effect(tmp_path):
    """On AWS a new policy attachment takes minutes to reach the broker; the
    core emulates it (--policy-delay). `gopigo check` on a fresh bundle says
    so (WAIT lines) and retries, instead of telling the user to re-provision."""
    from conftest import Core

    delay = 10
    core = Core(tmp_path / "core", extra=["--policy-delay", str(delay)])
    try:
        early, _ = provision(core, tmp_path, "r2")
        # without waiting, the connect is refused: the policy is not in force yet
        r = gopigo("check", "--bundle", early, "--policy-wait", "0")
        assert r.returncode != 0, r.stdout
        assert "FAIL connect" in r.stdout, r.stdout
        assert "WAIT" not in r.stdout

        bundle, _ = provision(core, tmp_path, "r1")
        started = time.monotonic()
        r = gopigo("check", "--bundle", bundle, "--policy-wait", "120", "--retry-every", "1")
        took = time.monotonic() - started
        assert r.returncode == 0, r.stdout + r.stderr
        assert "all checks passed" in r.stdout
        waits = [l for l in r.stdout.splitlines() if l.startswith("WAIT")]
        assert waits, r.stdout
        assert "up to 8 minutes to put a new policy in force" in waits[0]
        assert "re-run" not in r.stdout and "FAIL" not in r.stdout, r.stdout
        # every PASS step is shown once, not once per retry
        assert r.stdout.count("PASS tcp") == 1, r.stdout
        assert took < 120

        # a bound: past --policy-wait it fails, and says what to do first
        iot = core.client()
        [arn] = iot.list_thing_principals(thingName="r2")["principals"]
        iot.detach_policy(policyName="gopigo-robot", target=arn)
        time.sleep(delay + 1)
        r = gopigo("check", "--bundle", early, "--policy-wait", "3", "--retry-every", "1")
        assert r.returncode != 0
        assert "WAIT" in r.stdout and "FAIL connect" in r.stdout, r.stdout
        assert "run `gopigo check` again in a few minutes before changing anything" in r.stdout
    finally:
        core.stop()


def test_check_failures_name_their_cause(core, tmp_path, fleet):
    r1, r2, _ = fleet
    iot = core.client()

    def check_config(bundle, **changes):
        text = (bundle / "robot.toml").read_text()
        for k, v in changes.items():
            lines = [f"{k} = {json.dumps(v)}" if ln.startswith(f"{k} =") else ln for ln in text.splitlines()]
            text = "\n".join(lines) + "\n"
        # beside the bundle: its robot.toml names the files relative to itself
        cfg = bundle / f"check-{len(list(bundle.iterdir()))}.toml"
        cfg.write_text(text)
        r = gopigo("check", "--config", cfg)
        assert r.returncode != 0, r.stdout
        return r.stdout

    # wrong CA file: a CA that did not sign the server's certificate
    other = tmp_path / "other-ca.pem"
    assert run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes", "-keyout", str(tmp_path / "other-ca.key"), "-out", str(other),
               "-subj", "/CN=Some Other CA", "-days", "1").returncode == 0
    out = check_config(r1, ca_file=str(other))
    assert "FAIL tls" in out and "wrong CA file" in out and "CN=Some Other CA" in out, out
    assert "gopigo-iot local CA" in out, out  # the server chain is shown

    # wrong port: the control plane's HTTP port is not TLS; a closed port refuses
    http_port = int(core.url.rsplit(":", 1)[1])
    out = check_config(r1, port=http_port)
    assert "FAIL tls" in out and "not a TLS port" in out, out
    closed = __import__("conftest").free_port()
    out = check_config(r1, port=closed)
    assert "FAIL tcp" in out and "refused" in out and "wrong port" in out, out

    # DNS: a host that cannot resolve
    out = check_config(r1, host="no-such-endpoint.invalid")
    assert "FAIL dns" in out and "cannot resolve no-such-endpoint.invalid" in out, out
    assert "describe-endpoint" in out

    # policy without iot:Connect: swap r2's policy for one that only publishes
    t = "${iot:Connection.Thing.ThingName}"
    iot.create_policy(policyName="no-connect", policyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Publish",
                                                "Resource": f"arn:aws:iot:*:*:topic/gopigo/{t}/*"}]}))
    arn2 = iot.describe_thing(thingName="r2") and iot.list_thing_principals(thingName="r2")["principals"][0]
    iot.detach_policy(policyName="gopigo-robot", target=arn2)
    iot.attach_policy(policyName="no-connect", target=arn2)
    r = gopigo("check", "--bundle", r2)
    assert r.returncode != 0
    assert "PASS client cert" in r.stdout and "FAIL connect" in r.stdout, r.stdout
    assert "iot:Connect" in r.stdout, r.stdout

    # INACTIVE certificate: the handshake is followed by a refusal
    cert_id = iot.list_thing_principals(thingName="r1")["principals"][0].rsplit("/", 1)[1]
    iot.update_certificate(certificateId=cert_id, newStatus="INACTIVE")
    r = gopigo("check", "--bundle", r1)
    assert r.returncode != 0
    assert "FAIL client cert" in r.stdout and "INACTIVE" in r.stdout and cert_id in r.stdout, r.stdout
    # provision notices and signs a new certificate for the same key
    _, p = provision(core, tmp_path, "r1")
    assert "is INACTIVE" in p.stderr and "signed certificate" in p.stdout, p.stdout + p.stderr
    assert gopigo("check", "--bundle", r1).returncode == 0


def test_check_diagnoses_clock_skew(core, tmp_path, fleet):
    """A certificate whose validity starts tomorrow (as a Pi with no network
    time sees a fresh one): `check` blames the clock before connecting."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    r1 = fleet[0]
    ca_key = serialization.load_pem_private_key((core.data_dir / "ca" / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate(core.ca_path.read_bytes())
    dev_key = serialization.load_pem_private_key((r1 / "key.pem").read_bytes(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "r1")]))
            .issuer_name(ca.subject).public_key(dev_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .sign(ca_key, hashes.SHA256()))
    skewed = tmp_path / "skewed"
    shutil.copytree(r1, skewed)
    (skewed / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    r = gopigo("check", "--bundle", skewed)
    assert r.returncode != 0
    assert "FAIL validity" in r.stdout and "not valid yet" in r.stdout and "clock skew" in r.stdout, r.stdout
    assert "PASS tcp" not in r.stdout


def test_csr_made_elsewhere(core, tmp_path):
    """The seed's flow: the device makes key and CSR with openssl; only the CSR travels."""
    dev = tmp_path / "device"
    dev.mkdir()
    assert run("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(dev / "iot.key"),
               "-out", str(dev / "iot.csr"), "-subj", "/CN=r9").returncode == 0
    out, r = provision(core, tmp_path, "r9", "--csr", dev / "iot.csr")
    assert not (out / "key.pem").exists()
    assert sorted(os.listdir(out)) == ["ca.pem", "cert.pem", "robot.toml"]
    shutil.copy(dev / "iot.key", out / "key.pem")
    r = gopigo("check", "--bundle", out)
    assert r.returncode == 0, r.stdout
    _, r = provision(core, tmp_path, "r9", "--csr", dev / "iot.csr")
    assert "nothing to do" in r.stdout, r.stdout
    # forgetting --csr does not replace the device's certificate with one for a new key
    (out / "key.pem").unlink()
    cert = (out / "cert.pem").read_bytes()
    r = gopigo("provision", "--thing", "r9", "--data-dir", core.data_dir, "--out", out)
    assert r.returncode != 0 and "--csr" in r.stderr, r.stderr
    assert (out / "cert.pem").read_bytes() == cert and not (out / "key.pem").exists()


def test_moto_control_plane(tmp_path):
    """Every control-plane call against moto's server, signed through the
    standard AWS environment. Moto signs a key of its own instead of the CSR's:
    provision must say so and not write a broken bundle."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION="eu-west-1", AWS_ENDPOINT_URL=url, HOME=str(tmp_path / "home"))
        out = tmp_path / "bundle"
        r = gopigo("provision", "--aws", "--thing", "robot-m", "--out", out, env=env)
        assert r.returncode != 0
        assert "does not carry the public key of the CSR" in r.stderr, r.stderr
        assert "NOT written" in r.stderr
        assert not (out / "cert.pem").exists() and not (out / "robot.toml").exists()
        iot = boto3.client("iot", endpoint_url=url, region_name="eu-west-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        assert [t["thingName"] for t in iot.list_things()["things"]] == ["robot-m"]
        certs = iot.list_certificates()["certificates"]
        assert len(certs) == 1 and certs[0]["status"] == "ACTIVE"
        arn = certs[0]["certificateArn"]
        assert arn.startswith("arn:aws:iot:eu-west-1:")
        assert [p["policyName"] for p in iot.list_attached_policies(target=arn)["policies"]] == ["gopigo-robot"]
        assert iot.list_thing_principals(thingName="robot-m")["principals"] == [arn]
        doc = json.loads(iot.get_policy(policyName="gopigo-robot")["policyDocument"])
        assert "arn:aws:iot:eu-west-1:123456789012:client/${iot:Connection.Thing.ThingName}" in json.dumps(doc)
        # deprovision in AWS's order, through moto's checks
        r = gopigo("deprovision", "--aws", "--thing", "robot-m", "--delete-policies", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert iot.list_things()["things"] == []
        assert iot.list_certificates()["certificates"] == []
        assert iot.list_policies()["policies"] == []
        # missing credentials are named
        bare = {k: v for k, v in env.items() if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")}
        r = gopigo("provision", "--aws", "--thing", "x", "--out", tmp_path / "x", env=bare)
        assert r.returncode != 0 and "AWS_ACCESS_KEY_ID" in r.stderr, r.stderr
    finally:
        server.stop()


TF_PLUGINS = os.environ.get("GOPIGO_TF_PLUGIN_DIR", "/opt/tf-plugins")


@pytest.mark.skipif(shutil.which("terraform") is None or not Path(TF_PLUGINS).is_dir(),
                    reason="needs terraform and a local provider mirror (GOPIGO_TF_PLUGIN_DIR)")
def test_terraform_module_against_moto(tmp_path):
    """deploy/terraform applied (and destroyed) against moto's server, with the
    AWS provider from a local mirror. Its policy must be the very document
    `gopigo provision` makes: provisioning after it creates no new version."""
    import boto3
    from moto.iot.responses import IoTResponse
    from moto.server import ThreadedMotoServer

    # moto 5.2 has no IoT ListTagsForResource, which the provider reads after
    # creating a policy; answer "no tags" (nothing here uses tags).
    if not hasattr(IoTResponse, "list_tags_for_resource"):
        IoTResponse.list_tags_for_resource = lambda self: json.dumps({"tags": []})

    module = Path(__file__).resolve().parents[2] / "deploy" / "terraform"
    root = tmp_path / "root"
    root.mkdir()
    for name in ("device", "r2", "r3", "ctl"):
        assert run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                   "-keyout", str(root / f"{name}.key"), "-out", str(root / f"{name}.csr"),
                   "-subj", f"/CN=tf-{name}").returncode == 0
    (root / "main.tf").write_text(f"""
variable "endpoint" {{ type = string }}
provider "aws" {{
  region                      = "eu-west-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {{
    iot = var.endpoint
    sts = var.endpoint
  }}
}}
module "robot" {{
  source     = "{module}"
  thing_name = "tf-robot"
  csr_path   = "device.csr"
}}
# further robots share the policy the first one creates; the reference to its
# output is what makes their attachments wait for the policy
module "robot2" {{
  source        = "{module}"
  thing_name    = "tf-robot2"
  csr_path      = "r2.csr"
  create_policy = false
  policy_name   = module.robot.policy_name
}}
module "robot3" {{
  source        = "{module}"
  thing_name    = "tf-robot3"
  csr_path      = "r3.csr"
  create_policy = false
  policy_name   = module.robot.policy_name
}}
module "controller" {{
  source     = "{module}"
  thing_name = "tf-ctl"
  csr_path   = "ctl.csr"
  role       = "controller"
}}
output "endpoint_address" {{ value = module.robot.endpoint_address }}
output "certificate_arn" {{ value = module.robot.certificate_arn }}
""")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        env = dict(os.environ, TF_CLI_CONFIG_FILE="/dev/null", TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")

        def tf(*args):
            r = subprocess.run(["terraform", *args, "-no-color"], cwd=root, env=env,
                               capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, f"terraform {args[0]}: {r.stdout[-2000:]}{r.stderr[-2000:]}"
            return r.stdout

        tf("init", "-input=false", f"-plugin-dir={TF_PLUGINS}")
        tf("validate")
        out = tf("apply", "-auto-approve", "-input=false", f"-var=endpoint={url}")
        assert "Resources: 18 added" in out, out
        iot = boto3.client("iot", endpoint_url=url, region_name="eu-west-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        assert sorted(t["thingName"] for t in iot.list_things()["things"]) == \
            ["tf-ctl", "tf-robot", "tf-robot2", "tf-robot3"]
        for thing, policy in [("tf-robot", "gopigo-robot"), ("tf-robot2", "gopigo-robot"),
                              ("tf-robot3", "gopigo-robot"), ("tf-ctl", "gopigo-controller")]:
            [arn] = iot.list_thing_principals(thingName=thing)["principals"]
            cert = iot.describe_certificate(certificateId=arn.rsplit("/", 1)[1])["certificateDescription"]
            assert cert["status"] == "ACTIVE"
            assert [p["policyName"] for p in iot.list_attached_policies(target=arn)["policies"]] == [policy]
        doc = iot.get_policy(policyName="gopigo-robot")["policyDocument"]
        assert "iot:*" not in doc and "${iot:Connection.Thing.ThingName}" in doc
        # the controller's policy is provision's too: presence events included
        ctl_doc = json.loads(iot.get_policy(policyName="gopigo-controller")["policyDocument"])
        assert "$aws/events/presence" in json.dumps(ctl_doc)
        r = gopigo("policy", "--role", "controller", "--region", "eu-west-1",
                   "--account", ctl_doc["Statement"][0]["Resource"].split(":")[4])
        assert json.loads(r.stdout) == ctl_doc, r.stdout + r.stderr

        # the same template as gopigo provision: no new policy version
        genv = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        genv.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="eu-west-1",
                    AWS_ENDPOINT_URL=url, HOME=str(tmp_path))
        r = gopigo("provision", "--aws", "--thing", "robot-2", "--out", tmp_path / "b2", env=genv)
        assert "created policy" not in r.stderr and "policy gopigo-robot differed" not in r.stderr, r.stderr
        assert len(iot.list_policy_versions(policyName="gopigo-robot")["policyVersions"]) == 1
        r = gopigo("deprovision", "--aws", "--thing", "robot-2", env=genv)
        assert r.returncode == 0, r.stderr

        out = tf("destroy", "-auto-approve", "-input=false", f"-var=endpoint={url}")
        assert "Resources: 18 destroyed" in out
        assert iot.list_things()["things"] == [] and iot.list_certificates()["certificates"] == []
        assert iot.list_policies()["policies"] == []
    finally:
        server.stop()


def test_bundles_run_the_agent_and_the_controller(core, fleet):
    """The bundles as written are what the agent and the controller tools
    read: a simulated robot under the robot policy obeys `gopigo drive` run
    with the controller's bundle under the controller policy."""
    r1, _, ctl = fleet
    agent = subprocess.Popen([GOPIGO, "agent", "--config", str(r1 / "robot.toml"), "--sim", "--camera-port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = __import__("time").time() + 30
        r = None
        while __import__("time").time() < deadline:
            r = gopigo("drive", "--config", ctl / "robot.toml", "r1", "forward", "--for", "300ms", timeout=30)
            if r.returncode == 0:
                break
        assert r is not None and r.returncode == 0, r.stdout + r.stderr
        assert "done" in r.stdout, r.stdout
        r = gopigo("shadow", "set", "--config", ctl / "robot.toml", "r1", "speed_dps=200", timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        agent.terminate()
        agent.wait(15)


class TlsProxy:
    """HTTPS in front of the core's HTTP control plane, so the `--aws` code
    path (rustls, SNI, SigV4 over https://) runs end to end on loopback."""

    def __init__(self, tmp_path, upstream_port):
        import socket
        import ssl
        import threading

        d = tmp_path / "proxy-pki"
        d.mkdir()
        ok = run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-subj", "/CN=Test HTTPS CA",
                 "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign").returncode == 0
        ok &= run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", str(d / "srv.key"), "-out", str(d / "srv.csr"), "-subj", "/CN=localhost").returncode == 0
        (d / "ext.cnf").write_text("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
        ok &= run("openssl", "x509", "-req", "-in", str(d / "srv.csr"), "-CA", str(d / "ca.pem"),
                  "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-out", str(d / "srv.pem"), "-days", "2",
                  "-extfile", str(d / "ext.cnf")).returncode == 0
        assert ok
        self.ca = d / "ca.pem"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(d / "srv.pem"), str(d / "srv.key"))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = 0

        def pipe(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def serve():
            while True:
                try:
                    raw, _ = self.sock.accept()
                except OSError:
                    return
                try:
                    tls = ctx.wrap_socket(raw, server_side=True)
                except (OSError, ssl.SSLError):
                    raw.close()
                    continue
                self.requests += 1
                up = socket.create_connection(("127.0.0.1", upstream_port))
                threading.Thread(target=pipe, args=(tls, up), daemon=True).start()
                threading.Thread(target=pipe, args=(up, tls), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()

    def close(self):
        self.sock.close()


def test_aws_code_path_over_https_against_the_core(core, tmp_path):
    """`--aws` with the standard environment (AWS_ENDPOINT_URL, AWS_CA_BUNDLE,
    keys, region), over HTTPS, against the core, which checks every SigV4
    signature; the bundle it writes then passes `check`, over ALPN too."""
    key, secret = core.credentials()
    proxy = TlsProxy(tmp_path, int(core.url.rsplit(":", 1)[1]))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_REGION="us-east-1",
                   AWS_ENDPOINT_URL=f"https://localhost:{proxy.port}", AWS_CA_BUNDLE=str(proxy.ca),
                   HOME=str(tmp_path / "home"))
        out = tmp_path / "aws-bundle"
        args = ("provision", "--aws", "--thing", "robot-a", "--out", out, "--ca-file", core.ca_path,
                "--mqtt-port", core.alpn_port, "--alpn")
        r = gopigo(*args, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "created thing robot-a" in r.stdout
        assert proxy.requests >= 8, "every call went through HTTPS"
        text = (out / "robot.toml").read_text()
        assert "alpn = true" in text and f"port = {core.alpn_port}" in text
        c = gopigo("check", "--bundle", out)
        assert c.returncode == 0, c.stdout
        assert "ALPN x-amzn-mqtt-ca" in c.stdout
        r = gopigo(*args, env=env)
        assert r.returncode == 0 and "nothing to do" in r.stdout, r.stdout + r.stderr
        # without the CA bundle, the proxy's certificate is not trusted
        bare = dict(env)
        del bare["AWS_CA_BUNDLE"]
        r = gopigo("deprovision", "--aws", "--thing", "robot-a", env=bare)
        assert r.returncode != 0 and "TLS handshake" in r.stderr, r.stderr
        # a wrong secret is refused by the core's SigV4 check, with a hint
        r = gopigo("deprovision", "--aws", "--thing", "robot-a", env=dict(env, AWS_SECRET_ACCESS_KEY="wrong"))
        assert r.returncode != 0 and "InvalidSignatureException" in r.stderr, r.stderr
        assert "check the access key" in r.stderr
        r = gopigo("deprovision", "--aws", "--thing", "robot-a", "--delete-policies", env=env)
        assert r.returncode == 0, r.stderr
        assert core.client().list_things()["things"] == []
    finally:
        proxy.close()


def test_parallel_provisioning_of_a_fleet(core, tmp_path):
    """Five robots provisioned at once share one policy without tripping
    over its creation."""
    procs = [subprocess.Popen([GOPIGO, "provision", "--thing", f"p{i}", "--data-dir", str(core.data_dir),
                               "--out", str(tmp_path / f"p{i}")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(5)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, out + err
    reg = registry(core)
    assert reg["things"] == [f"p{i}" for i in range(5)]
    assert reg["policies"] == ["gopigo-robot"] and reg["versions"] == {"gopigo-robot": 1}
    assert all(v == ["gopigo-robot"] for v in reg["attached"].values()) and len(reg["attached"]) == 5
