"""Bench: the robot agent beside the seed's stack, same machine, same run.

1. Command latency, publish -> first motor SPI frame: a paho client publishes
   a drive command through the local core (MQTT, mutual TLS) to
   `gopigo agent --sim`; the time of the first motor frame comes from the
   simulated board's frame log (the sim-only debug endpoint).
   Beside it the seed's stack: a Python paho-mqtt subscriber like the seed's,
   behind Debian's Mosquitto 2 with TLS client certificates, timed to the
   point where it would call the motor (its on_message).
2. Agent RSS and idle CPU (and the seed subscriber's).
3. MJPEG: frames a second per viewer and agent CPU with 0, 1 and 4 viewers.

    python3 bench/agent_latency.py [N]     # GOPIGO_BIN, default target/release/gopigo
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
if "GOPIGO_BIN" not in os.environ and (ROOT / "target" / "release" / "gopigo").exists():
    os.environ["GOPIGO_BIN"] = str(ROOT / "target" / "release" / "gopigo")
import paho.mqtt.client as mqtt  # noqa: E402
from conftest import GOPIGO, Core, Identity, free_port, open_policy, robot_policy  # noqa: E402
from mqttc import Client  # noqa: E402
from test_agent import Agent, write_robot_toml  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_percent(pid, seconds):
    c0, t0 = cpu_seconds(pid), time.time()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.time() - t0)


def sim(agent):
    with urllib.request.urlopen(agent.debug, timeout=5) as r:
        return json.loads(r.read())


def agent_latency(agent, ctrl, n):
    lat = []
    for i in range(n):
        direction = "forward" if i % 2 == 0 else "backward"
        body = json.dumps({"id": f"b{i}", "action": "drive", "direction": direction, "duration_ms": 100})
        t_pub = time.time()
        ctrl.pub("gopigo/robot1/cmd", body)
        deadline = time.time() + 3
        first = None
        while first is None and time.time() < deadline:
            for f in sim(agent)["motor_frames"]:
                if f["unix_us"] / 1e6 >= t_pub:
                    first = f["unix_us"] / 1e6
                    break
            else:
                time.sleep(0.002)
        if first is not None:
            lat.append((first - t_pub) * 1000)
        time.sleep(0.35)  # let the drive end and the motors float
    return lat


SEED_SUBSCRIBER = r'''
import os, ssl, sys, time
import paho.mqtt.client as mqtt

def on_connect(client, userdata, flags, rc, props=None):
    client.subscribe(os.environ["AWSIOT_MQTT_TOPIC_COMMAND"], qos=1)

def on_message(client, userdata, msg):
    t = time.time()  # here the seed would call gopigo3 forward()/backward()/...
    sys.stdout.write(f"{msg.payload.decode()} {t:.6f}\n")
    sys.stdout.flush()

def on_subscribe(client, userdata, mid, rcs, props=None):
    sys.stdout.write("ready\n")
    sys.stdout.flush()

c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="seed-robot")
c.on_connect, c.on_message, c.on_subscribe = on_connect, on_message, on_subscribe
tls = os.environ["AWSIOT_TLS_DIR"]
c.tls_set(ca_certs=os.path.join(tls, os.environ["AWSIOT_CA_FILE"]),
          certfile=os.path.join(tls, os.environ["AWSIOT_CERT_FILE"]),
          keyfile=os.path.join(tls, os.environ["AWSIOT_KEY_FILE"]), cert_reqs=ssl.CERT_REQUIRED)
c.connect(os.environ["AWSIOT_MQTT_HOST"], int(os.environ["AWSIOT_MQTT_PORT"]), 60)
c.loop_forever()
'''


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def seed_stack(tmp, n):
    d = Path(tmp) / "seed"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=seed-ca", cwd=d)
    for name in ("server", "robot", "controller"):
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN={'localhost' if name == 'server' else name}", cwd=d)
        ext = d / f"{name}.ext"
        ext.write_text("subjectAltName=DNS:localhost\n" if name == "server" else "basicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", str(ext), cwd=d)
    port = free_port()
    (d / "mosquitto.conf").write_text(textwrap.dedent(f"""\
        per_listener_settings false
        allow_anonymous true
        listener {port} 127.0.0.1
        cafile {d}/ca.pem
        certfile {d}/server.pem
        keyfile {d}/server.key
        require_certificate true
        use_identity_as_username true
        """) + ("user root\n" if os.geteuid() == 0 else ""))
    broker = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(d / "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    env = dict(os.environ, AWSIOT_MQTT_HOST="localhost", AWSIOT_MQTT_PORT=str(port),
               AWSIOT_MQTT_TOPIC_COMMAND="gopigo3/cmd", AWSIOT_TLS_DIR=str(d),
               AWSIOT_CA_FILE="ca.pem", AWSIOT_CERT_FILE="robot.pem", AWSIOT_KEY_FILE="robot.key")
    (d / "sub.py").write_text(SEED_SUBSCRIBER)
    sub = subprocess.Popen([sys.executable, str(d / "sub.py")], env=env, stdout=subprocess.PIPE, text=True)
    assert sub.stdout.readline().strip() == "ready"
    got = {}

    def read():
        for line in sub.stdout:
            word, t = line.split()
            got[word] = float(t)

    threading.Thread(target=read, daemon=True).start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="seed-controller")
    pub.tls_set(ca_certs=str(d / "ca.pem"), certfile=str(d / "controller.pem"), keyfile=str(d / "controller.key"))
    pub.connect("localhost", port, 60)
    pub.loop_start()
    time.sleep(0.3)
    lat = []
    for i in range(n):
        word = f"forward-{i}"
        t_pub = time.time()
        pub.publish("gopigo3/cmd", word, qos=1)
        deadline = time.time() + 3
        while word not in got and time.time() < deadline:
            time.sleep(0.001)
        if word in got:
            lat.append((got[word] - t_pub) * 1000)
        time.sleep(0.05)
    rss, idle = rss_mib(sub.pid), cpu_percent(sub.pid, 5)
    pub.loop_stop()
    pub.disconnect()
    sub.terminate()
    broker.terminate()
    sub.wait()
    broker.wait()
    return lat, rss, idle


def mjpeg_viewers(url, k, seconds):
    """k viewers read the stream for `seconds`; frames a second of each."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    counts = [0] * k
    stop = time.time() + seconds

    def view(i):
        s = socket.create_connection((host, int(port)))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        buf = b""
        while time.time() < stop:
            data = s.recv(65536)
            if not data:
                break
            buf = buf[-20:] + data
            counts[i] += buf.count(b"--BoundaryString") - buf[:-len(data)].count(b"--BoundaryString")
        s.close()

    threads = [threading.Thread(target=view, args=(i,)) for i in range(k)]
    for t in threads:
        t.start()
    return threads, counts


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    with tempfile.TemporaryDirectory() as tmp:
        core = Core(Path(tmp) / "core")
        try:
            robot = Identity(core, Path(tmp) / "ids", "robot1", robot_policy(), policy_name="robot")
            ctrl_id = Identity(core, Path(tmp) / "ids", "controller", open_policy(), policy_name="open")
            cfg = write_robot_toml(Path(tmp) / "robot.toml", core, robot)
            text = cfg.read_text().replace("fps = 10.0", "fps = 15.0")
            cfg.write_text(text)
            agent = Agent(cfg, ["--deadman-ms", "60000"])
            ctrl = Client(core, ctrl_id, "controller")
            time.sleep(1)
            agent_lat = agent_latency(agent, ctrl, n)
            ctrl.close()
            pid = agent.proc.pid
            time.sleep(1)
            a_rss = rss_mib(pid)
            a_idle_cam = cpu_percent(pid, 5)
            fps_rows = []
            for k in (1, 4):
                c0, t0 = cpu_seconds(pid), time.time()
                threads, counts = mjpeg_viewers(agent.camera, k, 5)
                for t in threads:
                    t.join()
                cpu = 100 * (cpu_seconds(pid) - c0) / (time.time() - t0)
                fps_rows.append((k, sum(counts) / k / 5, cpu))
            agent.stop()
            # the same agent without the camera: idle CPU of the robot program itself
            agent = Agent(cfg, ["--no-camera"])
            time.sleep(1)
            a_rss_nocam = rss_mib(agent.proc.pid)
            a_idle = cpu_percent(agent.proc.pid, 5)
            agent.stop()
        finally:
            core.stop()
        seed_lat, s_rss, s_idle = seed_stack(tmp, n)

    print(f"\nbinary: {GOPIGO}   runs: {n}\n")
    print(f"{'command latency, publish -> motor (ms)':44} {'p50':>8} {'p99':>8} {'n':>5}")
    print(f"{'gopigo agent via gopigo core (mTLS)':44} {statistics.median(agent_lat):8.2f} {pct(agent_lat, 99):8.2f} {len(agent_lat):5}")
    print(f"{'  to the first SPI motor frame (sim board)':44}")
    print(f"{'seed: paho subscriber via mosquitto 2 (mTLS)':44} {statistics.median(seed_lat):8.2f} {pct(seed_lat, 99):8.2f} {len(seed_lat):5}")
    print(f"{'  to on_message (before any motor call)':44}")
    print()
    print(f"{'process':44} {'RSS MiB':>8} {'idle CPU %':>10}")
    print(f"{'gopigo agent --sim --no-camera':44} {a_rss_nocam:8.1f} {a_idle:10.2f}")
    print(f"{'gopigo agent --sim, sim camera at 15 fps':44} {a_rss:8.1f} {a_idle_cam:10.2f}")
    print(f"{'seed paho subscriber (python3)':44} {s_rss:8.1f} {s_idle:10.2f}")
    print()
    print(f"{'MJPEG viewers':44} {'fps/viewer':>10} {'agent CPU %':>11}")
    print(f"{'0 (capture + render only)':44} {'-':>10} {a_idle_cam:11.1f}")
    for k, fps, cpu in fps_rows:
        print(f"{k:<44} {fps:10.1f} {cpu:11.1f}")
    if len(fps_rows) == 2:
        per = (fps_rows[1][2] - a_idle_cam) / 4
        print(f"{'CPU per viewer (4 viewers - 0) / 4':44} {'':10} {per:11.2f}")


if __name__ == "__main__":
    main()
