"""`gopigo demo`, `gopigo drive`, `gopigo watch`, `gopigo shadow` and the
dashboard's HTTP side, end to end: the real binary, two simulated robots on
the local core, and the simulated board's debug endpoint as the witness of
what the wheels did."""

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import GOPIGO, run


def http_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


class Demo:
    def __init__(self, data_dir):
        self.data_dir = Path(data_dir)
        self.proc = subprocess.Popen(
            # detectors off: nothing here reads detections, and on a small
            # machine they would compete with the robots for the CPU
            [GOPIGO, "demo", "--data-dir", str(self.data_dir), "--port", "0", "--no-detect"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines = []
        deadline = time.time() + 180
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if line.startswith("Stop with Ctrl-C."):
                break
        else:
            self.proc.kill()
        if not self.lines or not self.lines[-1].startswith("Stop with"):
            self.proc.kill()
            raise RuntimeError("gopigo demo did not start:\n" + "".join(self.lines))
        threading.Thread(target=self._drain, daemon=True).start()
        self.info = json.loads((self.data_dir / "demo.json").read_text())
        self.url = self.info["dashboard_url"]
        self.env = dict(os.environ, GOPIGO_CONTROLLER_CONFIG=self.info["operator_config"])

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def sim(self, thing):
        return http_json(self.info["robots"][thing]["sim_url"])

    def gopigo(self, *args, env=None, timeout=60):
        return subprocess.run([GOPIGO, *args], env=env or self.env, capture_output=True,
                              text=True, timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = Demo(tmp_path_factory.mktemp("demo"))
    yield d
    d.stop()


def wait_for(what, fn, timeout=10, every=0.1):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def test_demo_lists_both_robots_online_on_the_dashboard(demo):
    hello = http_json(demo.url + "api/fleet")
    assert hello["broker"]["connected"] is True
    robots = {r["thing"]: r for r in hello["robots"]}
    assert set(robots) >= {"robot1", "robot2"}
    for r in robots.values():
        assert r["online"] and r["has_camera"], r
    with urllib.request.urlopen(demo.url, timeout=5) as r:
        page = r.read().decode()
    assert "GoPiGo fleet" in page and "/app.js" in page


def test_video_is_proxied_with_the_cameras_stamp(demo):
    with urllib.request.urlopen(demo.url + "robots/robot1/video", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        head = b""
        while b"\r\n\r\n" not in head:
            head += r.read(1)
        length = int([h for h in head.decode().split("\r\n") if h.lower().startswith("content-length")][0].split(":")[1])
        jpeg = r.read(length)
    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    assert b"gopigo-camera seq=" in jpeg[:200], "the camera's COM stamp survives the proxy"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(demo.url + "robots/nosuchrobot/video", timeout=5)
    assert e.value.code == 404
    assert b"video unavailable" in e.value.read()


def test_drive_forward_moves_the_robot_and_prints_the_result(demo):
    x0 = demo.sim("robot1")["pose"]["x_mm"]
    r = demo.gopigo("drive", "robot1", "forward", "--for", "1s")
    assert r.returncode == 0, r.stderr
    assert "accepted" in r.stdout and "done" in r.stdout, r.stdout
    moved = demo.sim("robot1")["pose"]["x_mm"] - x0
    # 1 s at the default 300 dps on 66.5 mm wheels is about 174 mm.
    assert 100 < moved < 260, moved
    r = demo.gopigo("drive", "robot1", "turn", "-90", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["status"] == "done" and out["thing"] == "robot1"
    assert abs(demo.sim("robot1")["pose"]["heading_deg"] % 360 - 90) < 15 or \
        abs(demo.sim("robot1")["pose"]["heading_deg"] % 360 - 270) < 15


def test_drive_exits_non_zero_when_rejected_with_the_reason(demo):
    r = demo.gopigo("drive", "robot1", "forward", "--speed", "5000")
    assert r.returncode != 0 and "speed_dps" in r.stderr, "refused before sending"
    s = demo.sim("robot1")
    x, y, h = s["pose"]["x_mm"], s["pose"]["y_mm"], s["pose"]["heading_deg"]
    # a wall right in front of robot1, whichever way it faces
    import math
    fx, fy = x + 120 * math.cos(math.radians(h)), y + 120 * math.sin(math.radians(h))
    req = urllib.request.Request(
        demo.info["robots"]["robot1"]["sim_url"] + "/obstacle", method="POST",
        headers={"content-type": "application/json"},
        data=json.dumps({"x_mm": fx - 40, "y_mm": fy - 40, "w_mm": 80, "h_mm": 80}).encode())
    urllib.request.urlopen(req, timeout=5).read()
    try:
        r = demo.gopigo("drive", "robot1", "forward", "--for", "1s")
        assert r.returncode != 0
        assert "rejected" in r.stderr and "obstacle" in r.stderr, r.stderr
    finally:
        urllib.request.urlopen(urllib.request.Request(
            demo.info["robots"]["robot1"]["sim_url"] + "/obstacles", method="DELETE"), timeout=5).read()


def test_watch_shows_telemetry_and_results_while_driving(demo, tmp_path):
    # A second controller identity: the fleet policy ties a client id to its
    # thing, so `watch` and `drive` at the same time need one each.
    r = run(GOPIGO, "provision", "--thing", "watcher", "--role", "controller",
            "--out", str(tmp_path / "watcher"), "--data-dir", str(demo.data_dir / "core"),
            "--mqtt-host", "localhost",
            "--mqtt-port", demo.info["core"]["mqtt"].rsplit(":", 1)[1])
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, GOPIGO_CONTROLLER_CONFIG=str(tmp_path / "watcher" / "robot.toml"))
    watch = subprocess.Popen([GOPIGO, "watch", "robot2", "--json", "--count", "40"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    d = demo.gopigo("drive", "robot2", "spin-left", "--for", "800ms", "--json")
    assert d.returncode == 0, d.stderr
    cmd_id = json.loads(d.stdout.strip().splitlines()[-1])["id"]
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    msgs = [json.loads(line) for line in out.splitlines()]
    assert len(msgs) == 40
    kinds = {m["kind"] for m in msgs}
    assert {"status", "telemetry", "result"} <= kinds, kinds
    assert all(m["thing"] == "robot2" for m in msgs)
    results = [m["message"] for m in msgs if m["kind"] == "result"]
    assert any(r["id"] == cmd_id and r["status"] == "done" for r in results), results
    assert any(m["message"].get("motion") not in (None, "stopped") for m in msgs if m["kind"] == "telemetry")
    # human-readable form
    r = subprocess.run([GOPIGO, "watch", "robot2", "--count", "2"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "robot2 status     online" in r.stdout
    assert "robot2 telemetry  battery" in r.stdout
    # every robot: statuses too, though retained messages skip wildcards
    r = subprocess.run([GOPIGO, "watch", "--count", "12"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "robot1 status     online" in r.stdout and "robot2 status     online" in r.stdout, r.stdout


def test_shadow_set_reaches_the_robot(demo):
    r = demo.gopigo("shadow", "set", "robot1", "servo_angle=30", "led=#ff8000")
    assert r.returncode == 0, r.stderr
    def reported():
        g = demo.gopigo("shadow", "get", "robot1")
        assert g.returncode == 0, g.stderr
        rep = json.loads(g.stdout)["state"].get("reported", {})
        return rep.get("servo_angle") == 30 and rep.get("led") == [255, 128, 0] and rep
    wait_for("the robot to report the new settings", reported, timeout=15, every=0.5)
    r = demo.gopigo("shadow", "set", "robot1", "wheels=2")
    assert r.returncode != 0 and "unknown shadow key" in r.stderr


def test_drive_refuses_an_offline_robot_and_demo_stops_cleanly(demo):
    pid = demo.info["robots"]["robot2"]["pid"]
    os.kill(pid, signal.SIGTERM)
    wait_for("robot2 offline on the dashboard", lambda: any(
        r["thing"] == "robot2" and not r["online"] for r in http_json(demo.url + "api/fleet")["robots"]))
    r = demo.gopigo("drive", "robot2", "forward")
    assert r.returncode != 0 and "offline" in r.stderr, r.stderr
    pids = [demo.info["core_pid"], demo.info["dashboard_pid"],
            *(r["pid"] for r in demo.info["robots"].values())]
    assert demo.stop() == 0, "".join(demo.lines)
    assert "gopigo demo stopped" in "".join(demo.lines)
    wait_for("no child left", lambda: not any(alive(p) for p in pids), timeout=5)
