"""Bench: the robot's video via MQTT and via direct MJPEG, in one run.

For each resolution (320x240 and 640x480) a `gopigo agent --sim` runs against
`gopigo core` (local, loopback, mutual TLS) with its camera at 15 fps, and
the bench reads, for SECONDS each:
- direct: the agent's MJPEG stream (token from the retained status), and
- mqtt: `gopigo/{thing}/video` as a paho subscriber that renews
  `video/request` every 3 s (as the dashboard does).
Printed per path and resolution: frames/s, frame age p50/p99 (receipt time
minus the frame's capture time, both CLOCK_REALTIME on this machine) and
bytes/s on the robot's connection (payload bytes; for MQTT also the budget).
Goal (issue 13): >= 10 fps at 320x240 with p50 age < 150 ms through the
local core; never over `[video] max_bytes_per_s`.

    python3 bench/video_path.py [SECONDS]
    # GOPIGO_BIN, default target/release/gopigo if built, else target/debug/gopigo
"""

import json
import os
import statistics
import struct
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
if "GOPIGO_BIN" not in os.environ and (ROOT / "target" / "release" / "gopigo").exists():
    os.environ["GOPIGO_BIN"] = str(ROOT / "target" / "release" / "gopigo")
from conftest import Core, Identity, open_policy, robot_policy  # noqa: E402
from mqttc import Client  # noqa: E402
from test_agent import Agent, write_robot_toml  # noqa: E402

THING = "benchbot"
HEADER = struct.Struct(">4sQQHH")
BUDGET = 256 * 1024


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def summary(ages, sizes, seconds):
    return {"fps": len(ages) / seconds, "age_p50_ms": pct(ages, 50), "age_p99_ms": pct(ages, 99),
            "bytes_per_s": sum(sizes) / seconds}


def direct(url, token, seconds):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    ages, sizes = [], []
    end = time.time() + seconds
    with urllib.request.urlopen(req, timeout=10) as r:
        while time.time() < end:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += r.read(1)
            h = {k.lower(): v for k, v in (line.split(": ", 1) for line in
                 head.decode(errors="replace").split("\r\n") if ": " in line)}
            body = r.read(int(h["content-length"]))
            now = time.time() * 1000
            if "x-captured-at-ms" in h:
                ages.append(now - int(h["x-captured-at-ms"]))
            sizes.append(len(body))
    return summary(ages, sizes, seconds)


def via_mqtt(client, seconds):
    ages, sizes = [], []
    stop = threading.Event()

    def renew():
        while not stop.is_set():
            client.pub(f"gopigo/{THING}/video/request", json.dumps({"ttl_ms": 10000}), qos=0)
            stop.wait(3)

    threading.Thread(target=renew, daemon=True).start()
    time.sleep(1)  # the first frames, then measure
    client.drain(0.1)
    end = time.time() + seconds
    while time.time() < end:
        m = client.get(0.2)
        if m is None or not m.topic.endswith("/video"):
            continue
        _, _, captured, _, _ = HEADER.unpack_from(m.payload)
        ages.append(time.time() * 1000 - captured)
        sizes.append(len(m.payload))
    stop.set()
    return summary(ages, sizes, seconds)


def run(tmp, w, h, seconds):
    core = Core(tmp / f"core{w}")
    try:
        robot = Identity(core, tmp / f"ids{w}", THING, robot_policy(), policy_name="robot")
        ctl = Identity(core, tmp / f"ids{w}", "viewer", open_policy(), policy_name="open")
        cfg = write_robot_toml(tmp / f"robot{w}.toml", core, robot)
        cfg.write_text(cfg.read_text().replace("fps = 10.0", f"fps = 15.0\nwidth = {w}\nheight = {h}"))
        agent = Agent(cfg)
        c = Client(core, ctl, "viewer")
        try:
            c.sub(f"gopigo/{THING}/status")
            token = None
            while token is None:
                m = c.get(5)
                if m and m.topic.endswith("/status"):
                    token = json.loads(m.payload).get("camera_token")
            c.sub(f"gopigo/{THING}/video", qos=0)
            return {"direct": direct(agent.camera, token, seconds), "mqtt": via_mqtt(c, seconds)}
        finally:
            c.close()
            agent.stop()
    finally:
        core.stop()


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"binary {os.environ.get('GOPIGO_BIN', 'target/debug/gopigo')}, {seconds:.0f} s per path")
    print(f"{'size':>8} {'path':>6} {'fps':>6} {'age p50':>9} {'age p99':>9} {'bytes/s':>10}")
    with tempfile.TemporaryDirectory() as d:
        for w, h in [(320, 240), (640, 480)]:
            res = run(Path(d), w, h, seconds)
            for path, r in res.items():
                print(f"{w}x{h:<4} {path:>6} {r['fps']:6.1f} {r['age_p50_ms']:7.0f}ms "
                      f"{r['age_p99_ms']:7.0f}ms {r['bytes_per_s'] / 1024:8.1f}Ki")
            over = res["mqtt"]["bytes_per_s"] > BUDGET
            print(f"         mqtt under the {BUDGET // 1024} KiB/s budget: {'NO' if over else 'yes'}")


if __name__ == "__main__":
    main()
