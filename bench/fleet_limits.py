#!/usr/bin/env python3
"""The dashboard within AWS IoT Core's per-connection limits, with many robots.

For each N (default 10, 50, 100): one `gopigo core` (with `--limits aws`
when the build has it), N simulated robots in one `gopigo swarm` process
(the agent's own code path, simulated boards, no camera), one dashboard
(`gopigo dashboard`) with the N robots listed, and one page (a WebSocket
client) that selects the first robot. Measured over --seconds:

- throttling disconnects: presence `disconnected` events seen by an extra
  observer connection, and the core's log lines about limits (must be 0);
- the selected robot's telemetry rate at the dashboard (relayed to the
  page) against the agents' configured rate, and the page's message rate
  (every telemetry the dashboard receives is relayed; fleet-list changes too);
- the core's CPU % and RSS, and per robot; the swarm's CPU and RSS per robot.

The reference peer, in the same run: Mosquitto 2 with TLS client
certificates (as tests/e2e does), carrying the same N robots' traffic
(a second swarm pointed at it, the same dashboard config pointed at it),
its CPU and RSS beside the core's with the ratio.

No assertions: it prints a table (docs/benchmarks.md). Build first:
  cargo build --release -p gopigo     # or debug: set GOPIGO_BIN
  python3 bench/fleet_limits.py [--robots 10,50,100] [--seconds 20]
Needs mosquitto, openssl (scripts/setup.sh).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from wsclient import WsClient  # noqa: E402

GOPIGO = os.environ.get("GOPIGO_BIN", str(ROOT / "target" / "release" / "gopigo"))
TOKEN = "fleet-limits-bench-token-0123456789"
TELEMETRY_HZ = 5.0
TICK = os.sysconf("SC_CLK_TCK")
SIGN_IN = re.compile(r"(https?://[^\s/]+/)\?token=")


def cpu_seconds(pid):
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Proc:
    """A child whose output is kept (and drained so it never blocks)."""

    def __init__(self, args, log, wait_for=None, timeout=120, env=None):
        self.log = open(log, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        self.lines = []
        deadline = time.time() + timeout
        while wait_for and time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            self.log.write(line)
            if re.search(wait_for, line):
                break
        else:
            if wait_for:
                self.stop()
                raise RuntimeError(f"{args[0:2]} did not start:\n" + "".join(self.lines[-30:]))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            self.log.write(line)

    def text(self):
        return "".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run(*args, **kw):
    r = subprocess.run([GOPIGO, *args], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"gopigo {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def start_core(d, limits):
    extra = ["--limits", "aws"] if limits else []
    core = Proc([GOPIGO, "core", "--data-dir", str(d), "--port", "0", "--mqtt-port", "0",
                 "--https-port", "0", "--alpn-port", "0", *extra], d.parent / "core.log",
                wait_for=r"^Stop with")
    core.mqtt_port = int(re.search(r"MQTT \(mTLS\)\s+127.0.0.1:(\d+)", core.text()).group(1))
    return core


def controller(core_dir, name, out):
    run("provision", "--thing", name, "--role", "controller", "--out", str(out),
        "--data-dir", str(core_dir), "--mqtt-host", "localhost")
    return out


def dashboard_config(bundle, robots, port, path):
    text = (bundle / "robot.toml").read_text()
    text = re.sub(r"(?m)^port\s*=\s*\d+", f"port = {port}", text)
    for name in ("ca_file", "cert_file", "key_file"):
        text = re.sub(rf'(?m)^{name}\s*=\s*"([^"/]+)"', lambda m: f'{name} = "{bundle / m.group(1)}"', text)
    text += "\n[dashboard]\nrobots = [" + ", ".join(f'"{r}"' for r in robots) + "]\n"
    path.write_text(text)
    return path


class Observer:
    """mosquitto_sub (a controller identity) on `topic`."""

    def __init__(self, bundle, port, log, topic):
        self.topic = topic.split("+")[0]
        self.proc = Proc(["mosquitto_sub", "-h", "localhost", "-p", str(port), "-i", bundle.name,
                          "--cafile", str(bundle / "ca.pem"), "--cert", str(bundle / "cert.pem"),
                          "--key", str(bundle / "key.pem"), "-t", topic, "-v"], log)

    def count(self):
        return sum(1 for l in self.proc.lines if l.startswith(self.topic))


def discarded(lines, field, keep=lambda line: True):
    """The broker's count of publishes its quotas discarded, from its log
    (each line names the connection's client id in its span)."""
    return sum(int(m.group(1)) for l in lines if keep(l) for m in [re.search(rf"{field}\D*(\d+)", l)] if m)


def wait_online(dash_url, n, timeout):
    import urllib.request
    req = urllib.request.Request(dash_url + "api/fleet", headers={"Authorization": f"Bearer {TOKEN}"})
    deadline = time.time() + timeout
    online = 0
    while time.time() < deadline:
        with urllib.request.urlopen(req, timeout=5) as r:
            hello = json.loads(r.read())
        online = sum(1 for r in hello["robots"] if r["online"])
        if online >= n:
            return online
        time.sleep(1)
    return online


def measure(stack, seconds, n):
    """Opens a page on the dashboard, selects the first robot, and measures."""
    port = int(stack["dash_url"].rsplit(":", 1)[1].strip("/"))
    ws = WsClient(("127.0.0.1", port), origin=stack["dash_url"].rstrip("/"), token=TOKEN, timeout=10)
    ws.recv()
    ws.send({"type": "view", "things": ["swarm-1"]})
    ws.messages(3.0)   # the subscription settles
    pids = {k: p.proc.pid for k, p in stack["procs"].items()}
    cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
    t0 = time.monotonic()
    msgs = ws.messages(seconds)
    took = time.monotonic() - t0
    cpu = {k: (cpu_seconds(p) - cpu0[k]) / took * 100 for k, p in pids.items()}
    rss = {k: rss_mib(p) for k, p in pids.items()}
    ws.close()
    selected = sum(1 for m in msgs if m["type"] == "telemetry" and m["thing"] == "swarm-1")
    others = sum(1 for m in msgs if m["type"] == "telemetry" and m["thing"] != "swarm-1")
    return {
        "n": n, "took": took, "selected_hz": selected / took, "others": others, "page_msgs": len(msgs) / took,
        "cpu": cpu, "rss": rss,
    }


def mosquitto_pki(core_dir, d):
    """A server certificate for mosquitto signed by the core's CA, which
    the bundles trust (and which signed the robots' certificates)."""
    ca, key = core_dir / "ca" / "ca.pem", core_dir / "ca" / "ca.key"
    def openssl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (d / "server.ext").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", str(ca), "-CAkey", str(key),
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return ca


def start_mosquitto(core_dir, d):
    d.mkdir(exist_ok=True)
    ca = mosquitto_pki(core_dir, d)
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    (d / "mosquitto.conf").write_text(textwrap.dedent(f"""\
        per_listener_settings false
        allow_anonymous true
        listener {port} 127.0.0.1
        cafile {ca}
        certfile {d}/server.pem
        keyfile {d}/server.key
        require_certificate true
        use_identity_as_username true
        max_queued_messages 10000
        """) + ("user root\n" if os.geteuid() == 0 else ""))
    p = Proc(["/usr/sbin/mosquitto", "-c", str(d / "mosquitto.conf")], d / "mosquitto.log")
    time.sleep(0.5)
    p.mqtt_port = port
    return p


def one_stack(name, broker, broker_port, core_dir, bundles, ctl, robots, d, swarm_port=None):
    """The swarm and the dashboard on `broker`; returns what to measure."""
    extra = ["--port", str(swarm_port)] if swarm_port else []
    t0 = time.monotonic()
    swarm = Proc([GOPIGO, "swarm", "--count", str(len(robots)), "--bundles", str(bundles),
                  "--data-dir", str(core_dir), "--telemetry-hz", str(TELEMETRY_HZ), *extra],
                 d / f"swarm-{name}.log", wait_for=r"simulated robots running", timeout=600)
    provisioned = re.search(r"provisioned in ([\d.]+) s", swarm.text())
    # The dashboard starts on a running fleet, as it would in the field: a
    # hundred robots connecting in the same second as the dashboard bring it
    # their status, presence and shadow reports at once, past 100/s
    # (docs/dashboard.md: a reconnect storm).
    time.sleep(max(3.0, len(robots) / 10))
    cfg = dashboard_config(ctl, robots, broker_port, d / f"dashboard-{name}.toml")
    dash = Proc([GOPIGO, "dashboard", "--config", str(cfg), "--port", "0", "--token", TOKEN, "--no-tls"],
                d / f"dashboard-{name}.log", wait_for=r"^Stop with")
    url = SIGN_IN.search(dash.text()).group(1)
    online = wait_online(url, len(robots), 120)
    return {"procs": {"broker": broker, "swarm": swarm}, "dash": dash, "swarm": swarm, "dash_url": url,
            "online": online, "provision_s": float(provisioned.group(1)) if provisioned else None,
            "start_s": time.monotonic() - t0}


def bench_n(n, seconds, limits, work):
    d = work / f"n{n}"
    d.mkdir()
    core_dir = d / "core"
    core = start_core(core_dir, limits)
    robots = [f"swarm-{i}" for i in range(1, n + 1)]
    rows = {}
    try:
        ctl = controller(core_dir, "bench-dashboard", d / "ctl")
        obs = Observer(controller(core_dir, "bench-observer", d / "bench-observer"), core.mqtt_port, d / "observer.log",
                       "$aws/events/presence/disconnected/+")
        # what the dashboard's old subscription (every robot's telemetry) would get
        wild = Observer(controller(core_dir, "bench-wildcard", d / "bench-wildcard"), core.mqtt_port, d / "wild.log",
                        "gopigo/+/telemetry")
        time.sleep(1)
        base_rss = rss_mib(core.proc.pid)
        log0 = len(core.lines)   # discards count from the dashboard's start
        ours = one_stack("core", core, core.mqtt_port, core_dir, d / "bundles", ctl, robots, d)
        try:
            wild0 = wild.count()
            r = measure(ours, seconds, n)
            took = r.pop("took")
            log = core.lines[log0:]
            r.update(online=ours["online"], provision_s=ours["provision_s"], base_rss=base_rss,
                     disconnects=obs.count(), wild_hz=(wild.count() - wild0) / took,
                     discarded_in=discarded(log, "publishes_in_discarded"),
                     discarded_out=discarded(log, "deliveries_discarded",
                                             lambda l: "client_id=bench-wildcard" not in l),
                     wild_discarded=discarded(log, "deliveries_discarded",
                                              lambda l: "client_id=bench-wildcard" in l))
            rows["core"] = r
        finally:
            ours["dash"].stop()
            ours["swarm"].stop()
            obs.proc.stop()
            wild.proc.stop()
        mosq = start_mosquitto(core_dir, d / "mosquitto")
        try:
            base = rss_mib(mosq.proc.pid)
            theirs = one_stack("mosquitto", mosq, mosq.mqtt_port, core_dir, d / "bundles", ctl, robots, d,
                               swarm_port=mosq.mqtt_port)
            try:
                r = measure(theirs, seconds, n)
                r.pop("took")
                r.update(online=theirs["online"], base_rss=base)
                rows["mosquitto"] = r
            finally:
                theirs["dash"].stop()
                theirs["swarm"].stop()
        finally:
            mosq.stop()
    finally:
        core.stop()
    return rows


def table(results):
    print()
    print(f"telemetry {TELEMETRY_HZ:g} Hz per robot; one dashboard, one page showing swarm-1")
    print()
    print("| N | online | throttling disconnects | publishes discarded (robots in / to the dashboard) | swarm-1 telemetry at the dashboard (Hz) "
          "| other robots' telemetry | page msgs/s | all-telemetry subscriber msgs/s (of N × 5; discarded) "
          "| core CPU % | core RSS MiB | core CPU %/robot | core RSS KiB/robot | swarm CPU %/robot | swarm RSS MiB/robot "
          "| mosquitto CPU % | mosquitto RSS MiB | CPU core/mosquitto | RSS core/mosquitto |")
    print("|" + " --- |" * 18)
    for n, rows in results:
        c, m = rows["core"], rows.get("mosquitto")
        ccpu, crss = c["cpu"]["broker"], c["rss"]["broker"]
        mcpu = m["cpu"]["broker"] if m else float("nan")
        mrss = m["rss"]["broker"] if m else float("nan")
        print(f"| {n} | {c['online']} | {c['disconnects']} | {c['discarded_in']} / {c['discarded_out']} | {c['selected_hz']:.2f} "
              f"| {c['others']} | {c['page_msgs']:.1f} | {c['wild_hz']:.0f} ({c['wild_discarded']}) | {ccpu:.1f} | {crss:.1f} | {ccpu / n:.2f} "
              f"| {(crss - c['base_rss']) * 1024 / n:.0f} | {c['cpu']['swarm'] / n:.2f} | {c['rss']['swarm'] / n:.2f} "
              f"| {mcpu:.1f} | {mrss:.1f} | {ccpu / mcpu if mcpu else float('nan'):.1f} | {crss / mrss if mrss else float('nan'):.1f} |")
    print()
    for n, rows in results:
        c = rows["core"]
        print(f"N={n}: provisioning {c['provision_s']} s; with mosquitto: swarm-1 at "
              f"{rows['mosquitto']['selected_hz']:.2f} Hz, page {rows['mosquitto']['page_msgs']:.1f} msgs/s"
              if "mosquitto" in rows else f"N={n}: provisioning {c['provision_s']} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--robots", default="10,50,100")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    a = ap.parse_args()
    help_text = subprocess.run([GOPIGO, "core", "--help"], capture_output=True, text=True).stdout
    limits = "--limits" in help_text
    print(f"gopigo: {GOPIGO}; core limits: {'--limits aws' if limits else 'this build has no --limits (today: off)'}")
    work = Path(tempfile.mkdtemp(prefix="fleet-limits-"))
    results = []
    try:
        for n in [int(x) for x in a.robots.split(",")]:
            print(f"N = {n} ...", flush=True)
            results.append((n, bench_n(n, a.seconds, limits, work)))
        table(results)
    finally:
        if a.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
