"""`gopigo detect` on a robot it cannot reach directly: given only the
robot's name and a controller identity, it reads the robot's camera as MQTT
video through the broker (asking for it with the renewable request), reports
the objects of the photograph the simulated robot faces, publishes them on
gopigo/{thing}/detections, and after it exits the robot stops sending video.

The robot advertises a camera URL that does not resolve (`camera.invalid`,
as for a robot behind NAT), and the detector gets neither a URL nor the
camera token: the broker is its only way to the camera. A watcher on the
robot's video topic (a controller identity, paho) sees no video while nobody
watches, video while the detector runs, and none again once its last
request has expired."""

import json
import os
import subprocess
import time

from conftest import GOPIGO, Identity, detector_config
from mqttc import Client
from test_agent import THING, Agent, command, fleet, result_of, write_robot_toml  # noqa: F401

VIDEO = f"gopigo/{THING}/video"
DETECTIONS = f"gopigo/{THING}/detections"
# the request the detector renews (gopigo_protocol::video::VIEWER_TTL_MS)
TTL_S = 10


def detect_over_mqtt(cfg, frames=3):
    """Runs the detector on the robot's MQTT video; its lines and classes."""
    env = {k: v for k, v in os.environ.items() if k not in ("GOPIGO_CAMERA_TOKEN", "GOPIGO_THING")}
    r = subprocess.run(
        [GOPIGO, "detect", "--thing", THING, "--mqtt-config", str(cfg),
         "--max-frames", str(frames), "--conf", "0.3"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(lines) == frames, r.stdout
    assert all(line["thing"] == THING for line in lines), lines
    return lines, {d["class"] for line in lines for d in line["detections"]}


def video_in(client, seconds):
    """The video messages that arrive within `seconds` (others are kept aside)."""
    got, other = [], []
    deadline = time.time() + seconds
    while time.time() < deadline:
        m = client.get(0.1)
        if m is not None:
            (got if m.topic == VIDEO else other).append(m)
    return got, other


def test_detect_reads_a_robot_it_cannot_reach_through_the_broker(fleet, tmp_path):  # noqa: F811
    core, robot, ctrl = fleet
    cfg = write_robot_toml(tmp_path / "robot.toml", core, robot)
    cfg.write_text(cfg.read_text() + 'public_host = "camera.invalid"\n')
    agent = Agent(cfg)
    watcher = Client(core, ctrl, "watcher")
    try:
        assert agent.camera and "camera.invalid" in agent.camera, agent.camera
        assert watcher.sub(VIDEO, qos=0) == [0]
        assert watcher.sub(DETECTIONS, qos=0) == [0]
        assert watcher.sub(f"gopigo/{THING}/cmd/result") == [1]
        # nobody watches: no video message at all
        video, _ = video_in(watcher, 3)
        assert video == [], "video flowed while nobody watched"

        det_cfg = detector_config(core, tmp_path)
        lines, facing_dog = detect_over_mqtt(det_cfg)
        # facing +x: the wall with darknet's dog.jpg (dog, bicycle, truck/car)
        assert facing_dog & {"dog", "bicycle"}, facing_dog
        for line in lines:
            assert line["width"] > 0 and line["height"] > 0
            assert abs(line["frame_ts_ms"] / 1000 - time.time()) < 60
        video, other = video_in(watcher, 1)
        video += [m for m in other if m.topic == VIDEO]
        published = [json.loads(m.payload) for m in other if m.topic == DETECTIONS]
        assert published, "the detector published no detections"
        assert {"frame_ts_ms", "width", "height", "detections"} <= set(published[0])

        # turn left 90 degrees: the wall with person.jpg (person, dog, horse)
        cid = command(watcher, action="turn", degrees=-90)
        deadline = time.time() + 15
        while time.time() < deadline:
            m = watcher.get(0.2)
            if m is not None and m.topic.endswith("/cmd/result"):
                doc = json.loads(m.payload)
                if doc.get("id") == cid and doc.get("status") == "done":
                    break
        else:
            raise AssertionError("the turn did not finish")
        time.sleep(0.5)
        _, facing_person = detect_over_mqtt(det_cfg)
        assert "person" in facing_person, facing_person
        assert facing_person != facing_dog
        exited = time.monotonic()

        # the detector is gone: its last request expires and the video stops
        quiet_since = exited
        while time.monotonic() - quiet_since < 3:
            assert time.monotonic() - exited < TTL_S + 8, "video kept flowing after the detector exited"
            video, _ = video_in(watcher, 0.5)
            if video:
                quiet_since = time.monotonic()
        assert quiet_since - exited <= TTL_S + 2, f"video for {quiet_since - exited:.1f} s after the exit"
    finally:
        watcher.close()
        agent.stop()


def test_all_online_finds_the_robot_and_reads_its_video(fleet, tmp_path):  # noqa: F811
    core, robot, _ = fleet
    agent = Agent(write_robot_toml(tmp_path / "robot.toml", core, robot))
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("GOPIGO_CAMERA_TOKEN", "GOPIGO_THING")}
        r = subprocess.run(
            [GOPIGO, "detect", "--all-online", "--mqtt-config", str(detector_config(core, tmp_path)),
             "--max-frames", "2", "--conf", "0.3"],
            capture_output=True, text=True, timeout=120, env=env,
        )
        assert r.returncode == 0, r.stderr
        lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        assert [line["thing"] for line in lines] == [THING, THING], lines
        assert {d["class"] for line in lines for d in line["detections"]} & {"dog", "bicycle"}, lines
    finally:
        agent.stop()


def test_one_detector_serves_a_fast_and_a_slow_robot(fleet, tmp_path):  # noqa: F811
    """robot1's camera runs at 10 fps, robot2's at 2 fps; one detector on
    both (their MJPEG streams, tokens from their status): the slow robot's
    frames are processed too, each once, and the fast one takes the rest.
    24 frames take about 2 s of camera time whatever the detector's speed
    (it waits for frames when it is faster than both cameras together), so
    the slow robot has frames to be starved of."""
    from conftest import robot_policy

    core, robot, _ = fleet
    slow = Identity(core, tmp_path / "ids2", "robot2", robot_policy(), policy_name="robot")
    fast_agent = Agent(write_robot_toml(tmp_path / "fast.toml", core, robot))
    slow_cfg = write_robot_toml(tmp_path / "slow.toml", core, slow)
    slow_cfg.write_text(slow_cfg.read_text().replace("fps = 10.0", "fps = 2.0"))
    slow_agent = Agent(slow_cfg)
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("GOPIGO_CAMERA_TOKEN", "GOPIGO_THING")}
        r = subprocess.run(
            [GOPIGO, "detect", "--mqtt-config", str(detector_config(core, tmp_path)),
             "--thing", THING, "--url", fast_agent.camera, "--thing", "robot2", "--url", slow_agent.camera,
             "--max-frames", "24", "--size", "320"],
            capture_output=True, text=True, timeout=180, env=env,
        )
        assert r.returncode == 0, r.stderr
        lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        by = {t: [line["frame_ts_ms"] for line in lines if line["thing"] == t] for t in (THING, "robot2")}
        assert len(lines) == 24 and set(by) == {THING, "robot2"}, lines
        assert len(by["robot2"]) >= 2, f"the slow robot was starved: {by}"
        assert len(by[THING]) >= 2, f"the fast robot was starved: {by}"
        for t, stamps in by.items():
            assert len(set(stamps)) == len(stamps), f"{t}: a frame was processed twice: {stamps}"
    finally:
        fast_agent.stop()
        slow_agent.stop()


def test_two_workers_serve_every_robot_and_keep_each_robots_order(fleet, tmp_path):  # noqa: F811
    """Two robots at 10 fps, one detector with --workers 2 (two sessions,
    frames of both robots at once): every robot's detections arrive, as
    JSON lines and on its MQTT detections topic, and each robot's frames
    come out in capture order (frame_ts_ms strictly increasing), although
    the two workers finish in any order."""
    from conftest import robot_policy

    core, robot, ctrl = fleet
    other = Identity(core, tmp_path / "ids2", "robot2", robot_policy(), policy_name="robot")
    agents = [Agent(write_robot_toml(tmp_path / "r1.toml", core, robot)),
              Agent(write_robot_toml(tmp_path / "r2.toml", core, other))]
    watcher = Client(core, ctrl, "watcher")
    try:
        assert watcher.sub("gopigo/+/detections", qos=0) == [0]
        env = {k: v for k, v in os.environ.items() if k not in ("GOPIGO_CAMERA_TOKEN", "GOPIGO_THING")}
        env["RUST_LOG"] = "gopigo_detect=info"
        r = subprocess.run(
            [GOPIGO, "detect", "--mqtt-config", str(detector_config(core, tmp_path)),
             "--thing", THING, "--url", agents[0].camera, "--thing", "robot2", "--url", agents[1].camera,
             "--workers", "2", "--max-frames", "30", "--size", "320", "--conf", "0.3"],
            capture_output=True, text=True, timeout=180, env=env,
        )
        assert r.returncode == 0, r.stderr
        assert "workers=2" in r.stderr, r.stderr
        lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        assert len(lines) == 30, r.stdout
        by = {t: [line["frame_ts_ms"] for line in lines if line["thing"] == t] for t in (THING, "robot2")}
        for t, stamps in by.items():
            assert len(stamps) >= 5, f"{t} was starved: {by}"
            assert all(b > a for a, b in zip(stamps, stamps[1:])), f"{t} out of capture order: {stamps}"
        # both robots face darknet's dog.jpg wall
        for t in by:
            classes = {d["class"] for line in lines if line["thing"] == t for d in line["detections"]}
            assert classes & {"dog", "bicycle"}, (t, classes)
        published = set()
        deadline = time.time() + 5
        while time.time() < deadline and published != {THING, "robot2"}:
            m = watcher.get(0.2)
            if m is not None:
                published.add(m.topic.split("/")[1])
        assert published == {THING, "robot2"}, published
    finally:
        watcher.close()
        for a in agents:
            a.stop()
