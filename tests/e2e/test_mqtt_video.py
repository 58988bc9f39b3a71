"""Camera video through the broker, against the real `gopigo agent --sim` and
a local core: nothing flows while nobody watches, a viewer's request brings
GPV1 frames (header + JPEG, capture time) within the `[video]` budget and
under AWS's 128 KiB limit, and the video stops when the request expires.
The viewer reads the frames as a privileged MQTT client (paho), never
through the robot's camera port."""

import json
import struct
import subprocess
import time

from conftest import GOPIGO
from mqttc import Client
from test_agent import THING, Agent, fleet, write_robot_toml  # noqa: F401

VIDEO = f"gopigo/{THING}/video"
REQUEST = f"gopigo/{THING}/video/request"
HEADER = struct.Struct(">4sQQHH")
BUDGET = 48 * 1024
FPS = 5


def robot_toml(tmp_path, core, robot, video=f"max_bytes_per_s = {BUDGET}\nmax_fps = {FPS}\n"):
    cfg = write_robot_toml(tmp_path / "robot.toml", core, robot)
    cfg.write_text(cfg.read_text() + "[video]\n" + video)
    return cfg


def frames_for(client, seconds):
    """Every video message that arrives within `seconds`."""
    out = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        m = client.get(0.1)
        if m is not None and m.topic == VIDEO:
            out.append(m)
    return out


def decode(payload):
    magic, seq, captured_ms, w, h = HEADER.unpack_from(payload)
    return magic, seq, captured_ms, w, h, payload[HEADER.size:]


def test_video_flows_only_while_a_viewer_asks_and_within_budget(fleet, tmp_path):  # noqa: F811
    core, robot, ctrl = fleet
    agent = Agent(robot_toml(tmp_path, core, robot))
    viewer = Client(core, ctrl, "viewer")
    try:
        assert viewer.sub(VIDEO, qos=0) == [0]
        # nobody watches: no video message at all
        assert frames_for(viewer, 3) == []

        viewer.pub(REQUEST, json.dumps({"ttl_ms": 4000}), qos=0)
        asked = time.time()
        got = frames_for(viewer, 3.5)
        assert len(got) >= 5, f"only {len(got)} frames in 3.5 s"
        seqs = []
        for m in got:
            assert len(m.payload) <= 128 * 1024
            magic, seq, captured_ms, w, h, jpeg = decode(m.payload)
            assert magic == b"GPV1"
            assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
            assert w > 0 and h > 0
            # the capture time is a real clock reading, close to now
            assert abs(captured_ms / 1000 - asked) < 10
            seqs.append(seq)
        assert seqs == sorted(seqs), "frames out of order"
        span = got[-1].timestamp - got[0].timestamp
        total = sum(len(m.payload) for m in got[1:])
        # never over the budget (measured between the first and last arrival,
        # with one second of slack for delivery jitter)
        assert total <= BUDGET * (span + 1), f"{total} bytes in {span:.2f} s"
        assert len(got) <= FPS * (span + 1) + 1, f"{len(got)} frames in {span:.2f} s"

        # the request expires (no renewal): the video stops
        time.sleep(max(0.0, asked + 4.5 - time.time()))
        viewer.drain(0.3)
        assert frames_for(viewer, 3) == [], "video kept flowing after the request expired"
    finally:
        viewer.close()
        agent.stop()


def test_a_budget_over_half_the_connection_is_refused(fleet, tmp_path):  # noqa: F811
    core, robot, _ = fleet
    cfg = robot_toml(tmp_path, core, robot, video="max_fps = 500\n")
    r = subprocess.run([GOPIGO, "agent", "--config", str(cfg), "--sim"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "max_fps" in r.stderr, r.stderr
