"""Shared helpers for the end-to-end tests: start the real `gopigo` binary on
loopback ports chosen at run time and talk to it with real peers."""

import configparser
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOPIGO = os.environ.get("GOPIGO_BIN", str(ROOT / "target" / "debug" / "gopigo"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "limits_off: the test floods the broker on purpose (to attack something behind it), "
        "so its core runs with `--limits off`; AWS's quotas would discard the flood first "
        "(tests/e2e/test_mqtt_quotas.py attacks those)",
    )


def limits_args(request):
    """`--limits off` for a test marked `limits_off`, nothing otherwise."""
    return ["--limits", "off"] if request.node.get_closest_marker("limits_off") else []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Core:
    """A running `gopigo core` with its own data dir."""

    def __init__(self, data_dir, extra=(), preexec_fn=None):
        self.data_dir = Path(data_dir)
        self.extra = list(extra)
        self.preexec_fn = preexec_fn
        self.proc = None
        self.lines = []
        self.start()

    def start(self):
        args = [GOPIGO, "core", "--data-dir", str(self.data_dir), "--port", "0",
                "--mqtt-port", "0", "--https-port", "0", "--alpn-port", "0", *self.extra]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=self.preexec_fn,
        )
        self.url = None
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            m = re.search(r"control plane\s+(http://\S+)", line)
            if m:
                self.url = m.group(1)
            m = re.search(r"MQTT \(mTLS\)\s+127.0.0.1:(\d+)", line)
            if m:
                self.mqtt_port = int(m.group(1))
            m = re.search(r"MQTT \(ALPN\)\s+127.0.0.1:(\d+)", line)
            if m:
                self.alpn_port = int(m.group(1))
            m = re.search(r"HTTPS publish\s+https://127.0.0.1:(\d+)", line)
            if m:
                self.https_port = int(m.group(1))
            if line.startswith("Stop with"):
                break
        if not self.url:
            self.proc.kill()
            raise RuntimeError(
                "gopigo core did not start:\n" + "".join(self.lines) + self.proc.stderr.read()
            )
        # keep draining output so the process never blocks on a full pipe
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _read_rest(self):
        proc = self.proc
        for line in proc.stdout:
            self.lines.append(line)

    @property
    def ca_path(self):
        return self.data_dir / "ca" / "ca.pem"

    def credentials(self):
        c = configparser.ConfigParser()
        c.read(self.data_dir / "aws" / "credentials")
        p = c["gopigo-local"]
        return p["aws_access_key_id"], p["aws_secret_access_key"]

    def env(self):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("AWS_"):
                del env[k]
        env.update(
            AWS_CONFIG_FILE=str(self.data_dir / "aws" / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.data_dir / "aws" / "credentials"),
            AWS_PROFILE="gopigo-local",
        )
        return env

    def aws(self, *args, check=True):
        """Runs the real aws CLI against this core through the written profile."""
        r = subprocess.run(
            ["aws", *args, "--output", "json"], env=self.env(), capture_output=True, text=True
        )
        if check and r.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {r.stderr}")
        if not check:
            return r
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def client(self, service="iot", **kw):
        import boto3

        key, secret = self.credentials()
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=kw.get("key", key),
            aws_secret_access_key=kw.get("secret", secret),
        )

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def restart(self):
        self.stop()
        self.start()


@pytest.fixture
def core(tmp_path):
    c = Core(tmp_path / "core")
    yield c
    c.stop()


def run(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(list(args), **kw)


class Identity:
    """A device identity made through the control plane: key + CSR made
    locally (the key never leaves), certificate signed by the core."""

    def __init__(self, core, directory, thing, policy_doc=None, policy_name=None, active=True,
                 attach_thing=True):
        from pathlib import Path as _P

        self.core = core
        self.thing = thing
        d = _P(directory) / thing
        d.mkdir(parents=True, exist_ok=True)
        self.key = d / "device.key"
        csr = d / "device.csr"
        r = run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", str(self.key), "-out", str(csr), "-subj", f"/CN={thing}")
        assert r.returncode == 0, r.stderr
        iot = core.client()
        cert = iot.create_certificate_from_csr(certificateSigningRequest=csr.read_text(), setAsActive=active)
        self.cert_id, self.arn = cert["certificateId"], cert["certificateArn"]
        self.cert = d / "device.pem"
        self.cert.write_text(cert["certificatePem"])
        if attach_thing:
            iot.create_thing(thingName=thing)
            iot.attach_thing_principal(thingName=thing, principal=self.arn)
        if policy_doc is not None:
            name = policy_name or f"{thing}-policy"
            try:
                iot.create_policy(policyName=name, policyDocument=json.dumps(policy_doc))
            except iot.exceptions.ResourceAlreadyExistsException:
                pass
            iot.attach_policy(policyName=name, target=self.arn)

    def tls_args(self):
        return ["--cafile", str(self.core.ca_path), "--cert", str(self.cert), "--key", str(self.key)]


def robot_policy(jobs=True):
    """The fleet's least-privilege robot policy: one policy, each robot only
    its own topics, shadow and jobs, through ${iot:Connection.Thing.ThingName}.
    `jobs=False` is the policy of fleets provisioned before over-the-air updates."""
    t = "${iot:Connection.Thing.ThingName}"
    topics = [f"gopigo/{t}/*", f"$aws/things/{t}/shadow/*"] + ([f"$aws/things/{t}/jobs/*"] if jobs else [])
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"arn:aws:iot:*:*:client/{t}"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"],
             "Resource": [f"arn:aws:iot:*:*:topic/{x}" for x in topics]},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": [f"arn:aws:iot:*:*:topicfilter/{x}" for x in topics]},
        ],
    }


def open_policy():
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive", "iot:RetainPublish"],
         "Resource": "arn:aws:iot:*:*:*"}]}


def detector_config(core, tmp_path):
    """A `[mqtt]` file for `gopigo detect --mqtt-config`: a controller-like
    identity named `detector` with an open policy, no thing attached."""
    ident = Identity(core, tmp_path / "det", "detector", open_policy(), policy_name="det-open",
                     attach_thing=False)
    cfg = tmp_path / "detector.toml"
    cfg.write_text(
        "[mqtt]\n"
        f'host = "localhost"\nport = {core.mqtt_port}\nclient_id = "detector"\n'
        f'ca_file = "{core.ca_path}"\ncert_file = "{ident.cert}"\nkey_file = "{ident.key}"\n'
    )
    return cfg
