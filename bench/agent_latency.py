"""Bench: the robot agent beside the seed's stack, same machine, same run.

1. Command latency, publish -> first motor SPI message, apples to apples.
   The same paho-mqtt publisher code (TLS client certificate, QoS 1, the
   message written in the calling thread right after the timestamp, no
   network thread) sends a drive command to each stack; the figure is the time from just before
   `publish()` to the moment the robot program hands its first motor
   message (SET_MOTOR_DPS or SET_MOTOR_PWM with a non-zero speed) to the SPI
   bus. Both ends are stamped on CLOCK_REALTIME (`time.time_ns()`, Rust
   `SystemTime`) on this machine.
   - ours: `gopigo core` (our broker, mutual TLS, policies enforced) ->
     `gopigo agent --sim --no-camera`; the simulated board stamps each SPI
     transfer as it starts, read afterwards from the sim debug endpoint
     (`GET /sim`, once per sample, never while a command is in flight).
     The command is `{"action":"drive","direction":...,"duration_ms":100}`.
   - seed: Debian's Mosquitto 2 with TLS client certificates -> the seed's
     robot program re-created in `bench/seed_robot/seed_robot.py` (paho-mqtt
     subscriber, `on_message` -> the vendor's `easygopigo3.EasyGoPiGo3().
     forward()` / `backward()` from PyPI `gopigo3` 1.1.1 -> `gopigo3.py`
     `set_motor_dps` -> `spidev.xfer2`), where `spidev` is the stand-in in
     `bench/seed_robot/spidev.py` that stamps each `xfer2` on entry. The
     command is the seed's word (`f` / `b`); it drives 100 ms (`SEED_DRIVE_S`).
   Samples alternate between the two stacks (and which one goes first) so
   both see the same machine load; the first WARMUP pairs are dropped.
   Printed: p50 / p90 / p99 / max / mean of each, the ratio ours / seed and
   the load average. `--stages` also runs our processes with
   RUST_LOG=latency=trace and prints each stage of ours (publish -> broker
   reads it -> broker writes the delivery -> agent session has it ->
   executor starts it -> SPI); those trace lines are written synchronously,
   so a --stages run is slower than a plain one.
2. Agent RSS and idle CPU (and the seed robot's).
3. MJPEG: frames a second per viewer and agent CPU with 0, 1 and 4 viewers.

    python3 bench/agent_latency.py [N] [--latency-only] [--stages]
    # GOPIGO_BIN, default target/release/gopigo (cargo build --release -p gopigo)
    # needs: /usr/sbin/mosquitto, openssl, paho-mqtt, PyPI gopigo3 (scripts/setup.sh)
"""

import datetime
import json
import os
import re
import socket
import ssl
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
SEED_ROBOT = ROOT / "bench" / "seed_robot"
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
if "GOPIGO_BIN" not in os.environ and (ROOT / "target" / "release" / "gopigo").exists():
    os.environ["GOPIGO_BIN"] = str(ROOT / "target" / "release" / "gopigo")
import paho.mqtt.client as mqtt  # noqa: E402
from conftest import GOPIGO, Core, Identity, free_port, open_policy, robot_policy  # noqa: E402
from test_agent import Agent, write_robot_toml  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
WARMUP = 20
GAP_S = 0.25  # between two commands (one to each stack); both drives last 100 ms
SET_MOTOR_PWM, SET_MOTOR_DPS = 0x0A, 0x0E


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


def is_motor_start(tx):
    """A motor message that makes a wheel turn: SET_MOTOR_DPS with a non-zero
    speed, or SET_MOTOR_PWM with a power other than 0 and float (-128)."""
    if len(tx) >= 5 and tx[1] == SET_MOTOR_DPS:
        return (tx[3], tx[4]) != (0, 0)
    if len(tx) >= 4 and tx[1] == SET_MOTOR_PWM:
        return tx[3] not in (0, 0x80)
    return False


def first_motor_start(frames, t_ns):
    """The time (ns) of the first motor-start frame at or after t_ns."""
    times = [t for t, tx in frames if t >= t_ns and is_motor_start(tx)]
    return min(times) if times else None


def drain(stream, sink):
    for line in stream:
        sink.append(line)


class Publisher:
    """The controller side, the same code for both stacks: paho-mqtt over
    TLS with a client certificate, QoS 1. No network thread: `publish()`
    writes the message in the caller's thread, right after the timestamp
    (paho's loop thread would add a thread wake-up to both figures), and
    `pump()` reads the PUBACKs between samples."""

    def __init__(self, port, ca, cert, key, client_id):
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.c.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key), cert_reqs=ssl.CERT_REQUIRED)
        self.connected = threading.Event()
        self.c.on_connect = lambda *a: self.connected.set()
        self.c.connect("localhost", port, 60)
        deadline = time.time() + 10
        while not self.connected.is_set() and time.time() < deadline:
            self.c.loop(0.05)
        if not self.connected.is_set():
            raise RuntimeError(f"publisher {client_id}: no CONNACK from port {port}")

    def publish(self, topic, payload):
        t = time.time_ns()
        self.c.publish(topic, payload, qos=1)
        return t

    def pump(self, timeout):
        self.c.loop(timeout)

    def close(self):
        self.c.disconnect()
        self.c.loop(0.1)


def pump_for(stacks, seconds):
    """Lets the publishers read their PUBACKs for `seconds`."""
    end = time.time() + seconds
    while time.time() < end:
        for s in stacks:
            s.pub.pump(min(0.005, max(0.0, end - time.time())))


class OurStack:
    """gopigo core + gopigo agent --sim --no-camera + a controller publisher."""

    name = "ours: gopigo core -> gopigo agent"

    def __init__(self, tmp, agent_args=("--no-camera",)):
        self.core = Core(Path(tmp) / "core")
        self.core_err = []
        threading.Thread(target=drain, args=(self.core.proc.stderr, self.core_err), daemon=True).start()
        ids = Path(tmp) / "ids"
        robot = Identity(self.core, ids, "robot1", robot_policy(), policy_name="robot")
        ctrl = Identity(self.core, ids, "controller", open_policy(), policy_name="open")
        self.cfg = write_robot_toml(Path(tmp) / "robot.toml", self.core, robot)
        self.agent = Agent(self.cfg, ["--deadman-ms", "60000", *agent_args])
        self.pub = Publisher(self.core.mqtt_port, self.core.ca_path, ctrl.cert, ctrl.key, "controller")
        time.sleep(1)

    def send(self, i, forward):
        body = json.dumps({"id": f"b{i}", "action": "drive",
                           "direction": "forward" if forward else "backward", "duration_ms": 100})
        return self.pub.publish("gopigo/robot1/cmd", body)

    def frames(self):
        with urllib.request.urlopen(self.agent.debug, timeout=5) as r:
            doc = json.loads(r.read())
        return [(f["unix_us"] * 1000, bytes.fromhex(f["tx"])) for f in doc["motor_frames"]]

    def stop(self):
        self.pub.close()
        self.agent.stop()
        self.core.stop()


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_seed_pki(d):
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


class SeedStack:
    """Mosquitto 2 (TLS client certificates) + the seed's robot program on
    the vendor's driver and the stand-in spidev + a controller publisher."""

    name = "seed: mosquitto -> paho + gopigo3.py"

    def __init__(self, tmp):
        d = Path(tmp) / "seed"
        d.mkdir()
        make_seed_pki(d)
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
        self.broker = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(d / "mosquitto.conf")],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        rfd, wfd = os.pipe()
        env = dict(os.environ, AWSIOT_MQTT_HOST="localhost", AWSIOT_MQTT_PORT=str(port),
                   AWSIOT_MQTT_TOPIC_COMMAND="gopigo3/cmd", AWSIOT_TLS_DIR=str(d),
                   AWSIOT_CA_FILE="ca.pem", AWSIOT_CERT_FILE="robot.pem", AWSIOT_KEY_FILE="robot.key",
                   SEED_DRIVE_S="0.1", SPIDEV_STANDIN_FD=str(wfd),
                   PYTHONPATH=os.pathsep.join([str(SEED_ROBOT), os.environ.get("PYTHONPATH", "")]))
        self.err = open(d / "seed_robot.stderr", "w")
        self.robot = subprocess.Popen([sys.executable, str(SEED_ROBOT / "seed_robot.py")], env=env,
                                      stdout=subprocess.PIPE, stderr=self.err, text=True, pass_fds=(wfd,))
        os.close(wfd)
        self._frames = []
        threading.Thread(target=self._read_frames, args=(rfd,), daemon=True).start()
        self.out = []
        deadline = time.time() + 20
        for line in self.robot.stdout:
            self.out.append(line)
            if line.strip() == "subscribed" or time.time() > deadline:
                break
        if not self.out or self.out[-1].strip() != "subscribed":
            raise RuntimeError("seed robot did not subscribe:\n" + "".join(self.out)
                               + (d / "seed_robot.stderr").read_text())
        threading.Thread(target=drain, args=(self.robot.stdout, self.out), daemon=True).start()
        self.pub = Publisher(port, d / "ca.pem", d / "controller.pem", d / "controller.key", "seed-controller")
        time.sleep(0.3)

    def _read_frames(self, rfd):
        with os.fdopen(rfd, "r") as f:
            for line in f:
                t, tx = line.split()
                self._frames.append((int(t), bytes.fromhex(tx)))

    def send(self, i, forward):
        return self.pub.publish("gopigo3/cmd", "f" if forward else "b")

    def frames(self):
        return list(self._frames)

    def stop(self):
        self.pub.close()
        self.robot.terminate()
        self.broker.terminate()
        self.robot.wait()
        self.broker.wait()
        self.err.close()


def latency(stacks, n):
    """n interleaved samples per stack (after WARMUP): for each stack a list
    of (publish ns, first motor-start frame ns or None when lost)."""
    samples = {s.name: [] for s in stacks}
    for i in range(WARMUP + n):
        order = stacks if i % 2 == 0 else list(reversed(stacks))
        sent = []
        for s in order:
            sent.append((s, s.send(i, forward=(i // 2) % 2 == 0)))
            pump_for(stacks, GAP_S)
        if i < WARMUP:
            continue
        for s, t_pub in sent:
            samples[s.name].append((t_pub, first_motor_start(s.frames(), t_pub)))
    return samples


STAGES = [("broker publish in", "gopigo/robot1/cmd"), ("broker delivery out", "gopigo/robot1/cmd"),
          ("agent command in", None), ("executor command start", None)]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def stage_events(lines):
    """(unix ns, message, topic) of each `latency` trace line of our processes."""
    out = []
    for line in lines:
        line = ANSI.sub("", line)
        if " latency: " not in line:
            continue
        stamp, rest = line.split(" ", 1)
        dt = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        ns = int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
        msg = rest.split(" latency: ", 1)[1].strip()
        topic = None
        if " topic=" in msg:
            msg, topic = msg.split(" topic=", 1)
        out.append((ns, msg.strip(), topic))
    return out


def print_stages(ours, samples):
    """Where our time goes: the span between consecutive trace points of one
    command (a diagnostic run: the trace lines are written to stderr
    synchronously, so the total is higher than without --stages)."""
    events = stage_events(list(ours.core_err) + list(ours.agent.err))
    names = ["publish"] + [m for m, _ in STAGES] + ["first motor SPI message"]
    spans = [[] for _ in range(len(names) - 1)]
    for t_pub, t_spi in samples:
        if t_spi is None:
            continue
        points = [t_pub]
        for msg, topic in STAGES:
            ts = [t for t, m, tp in events if m == msg and (topic is None or tp == topic) and t_pub <= t <= t_spi]
            points.append(min(ts) if ts else None)
        points.append(t_spi)
        if None in points:
            continue
        for k in range(len(spans)):
            spans[k].append((points[k + 1] - points[k]) / 1e6)
    print(f"\nours, stage by stage (ms; {len(spans[0])} samples; trace timestamps have 1 us resolution)")
    print(f"{'':52}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    for k, xs in enumerate(spans):
        if xs:
            row = [pct(xs, 50), pct(xs, 90), pct(xs, 99), max(xs)]
            print(f"{names[k] + ' -> ' + names[k + 1]:52}" + "".join(f"{v:9.3f}" for v in row))


def print_latency(stacks, samples, load0, load1):
    lat = {name: [(t - p) / 1e6 for p, t in xs if t is not None] for name, xs in samples.items()}
    lost = {name: sum(1 for _, t in xs if t is None) for name, xs in samples.items()}
    print(f"\ncommand latency, publish -> first motor SPI message (ms); "
          f"{len(samples[stacks[0].name])} samples per stack, interleaved")
    print(f"load average before {load0[0]:.2f} {load0[1]:.2f}, after {load1[0]:.2f} {load1[1]:.2f} "
          f"(1 / 5 min), {os.cpu_count()} CPUs\n")
    cols = [("p50", 50), ("p90", 90), ("p99", 99), ("max", 100), ("mean", None)]
    print(f"{'':40}" + "".join(f"{c:>9}" for c, _ in cols) + f"{'lost':>6}")
    rows = {}
    for s in stacks:
        xs = lat[s.name]
        rows[s.name] = [statistics.mean(xs) if p is None else pct(xs, p) if p < 100 else max(xs)
                        for _, p in cols]
        print(f"{s.name:40}" + "".join(f"{v:9.3f}" for v in rows[s.name]) + f"{lost[s.name]:6}")
    ours, seed = rows[stacks[0].name], rows[stacks[1].name]
    print(f"{'ratio ours / seed':40}" + "".join(f"{a / b:8.2f}x" for a, b in zip(ours, seed)))


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


def resources(tmp, seed):
    """RSS and idle CPU of the agent (with and without the sim camera) and of
    the seed robot; MJPEG frames a second and CPU with 1 and 4 viewers."""
    s_rss, s_idle = rss_mib(seed.robot.pid), cpu_percent(seed.robot.pid, 5)
    ours = OurStack(Path(tmp) / "res", agent_args=())
    try:
        text = ours.cfg.read_text().replace("fps = 10.0", "fps = 15.0")
        ours.cfg.write_text(text)
        ours.agent.stop()
        agent = Agent(ours.cfg, ["--deadman-ms", "60000"])
        pid = agent.proc.pid
        time.sleep(2)
        a_rss, a_idle_cam = rss_mib(pid), cpu_percent(pid, 5)
        fps_rows = []
        for k in (1, 4):
            c0, t0 = cpu_seconds(pid), time.time()
            threads, counts = mjpeg_viewers(agent.camera, k, 5)
            for t in threads:
                t.join()
            fps_rows.append((k, sum(counts) / k / 5, 100 * (cpu_seconds(pid) - c0) / (time.time() - t0)))
        agent.stop()
        agent = Agent(ours.cfg, ["--no-camera"])
        time.sleep(1)
        a_rss_nocam, a_idle = rss_mib(agent.proc.pid), cpu_percent(agent.proc.pid, 5)
        agent.stop()
    finally:
        ours.pub.close()
        ours.core.stop()
    print()
    print(f"{'process':44} {'RSS MiB':>8} {'idle CPU %':>10}")
    print(f"{'gopigo agent --sim --no-camera':44} {a_rss_nocam:8.1f} {a_idle:10.2f}")
    print(f"{'gopigo agent --sim, sim camera at 15 fps':44} {a_rss:8.1f} {a_idle_cam:10.2f}")
    print(f"{'seed robot (python3, paho + gopigo3.py)':44} {s_rss:8.1f} {s_idle:10.2f}")
    print()
    print(f"{'MJPEG viewers':44} {'fps/viewer':>10} {'agent CPU %':>11}")
    print(f"{'0 (capture + render only)':44} {'-':>10} {a_idle_cam:11.1f}")
    for k, fps, cpu in fps_rows:
        print(f"{k:<44} {fps:10.1f} {cpu:11.1f}")
    per = (fps_rows[1][2] - a_idle_cam) / 4
    print(f"{'CPU per viewer (4 viewers - 0) / 4':44} {'':10} {per:11.2f}")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 200
    latency_only = "--latency-only" in sys.argv or "--stages" in sys.argv
    if "--stages" in sys.argv:
        os.environ["RUST_LOG"] = "info,latency=trace"
        os.environ["NO_COLOR"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        stacks = []
        try:
            stacks.append(OurStack(tmp))
            stacks.append(SeedStack(tmp))
            print(f"binary: {GOPIGO}")
            load0 = os.getloadavg()
            samples = latency(stacks, n)
            load1 = os.getloadavg()
            print_latency(stacks, samples, load0, load1)
            if "--stages" in sys.argv:
                print_stages(stacks[0], samples[stacks[0].name])
            if not latency_only:
                stacks[0].stop()
                stacks.pop(0)
                resources(tmp, stacks[0])
        finally:
            for s in stacks:
                s.stop()


if __name__ == "__main__":
    main()
