"""`gopigo detect` on the agent's live simulated camera: it reports the
objects of the photograph the robot faces, publishes them on
gopigo/{thing}/detections, and reports a different set after the robot turns.
The camera wants its per-boot token: given with --camera-token (or
GOPIGO_CAMERA_TOKEN), or learned from the robot's retained status over MQTT."""

import json
import os
import subprocess
import time

from conftest import GOPIGO
from test_agent import THING, camera_token, command, fleet, result_of, rig  # noqa: F401  (fixtures)


def detect(camera_url, *extra, frames=3, env=None):
    r = subprocess.run(
        [GOPIGO, "detect", camera_url, "--max-frames", str(frames), "--conf", "0.3", *extra],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(lines) == frames
    return lines, {d["class"] for line in lines for d in line["detections"]}


def test_detections_follow_what_the_robot_faces(rig, tmp_path):
    core, agent, c = rig
    assert agent.camera, "the agent printed no camera URL"
    token = camera_token(c)
    # facing +x: the wall with darknet's dog.jpg (dog, bicycle, truck/car)
    lines, facing_dog = detect(agent.camera, "--camera-token", token)
    assert facing_dog & {"dog", "bicycle"}, facing_dog
    frame = lines[0]
    assert frame["width"] == 640 and frame["height"] == 480 and frame["frame_ts_ms"] > 0
    for d in frame["detections"]:
        x, y, w, h = d["box"]
        assert 0 <= x <= 640 and 0 <= y <= 480 and w > 0 and h > 0

    # turn left 90 degrees: the wall with person.jpg (person, dog, horse)
    cid = command(c, action="turn", degrees=-90)
    result_of(c, cid, "done", timeout=15)
    time.sleep(0.5)
    _, facing_person = detect(agent.camera, env={**os.environ, "GOPIGO_CAMERA_TOKEN": token})
    assert "person" in facing_person, facing_person
    assert facing_person != facing_dog


def test_detections_are_published_over_mqtt(rig, tmp_path):
    core, agent, c = rig
    from conftest import detector_config

    cfg = detector_config(core, tmp_path)
    assert c.sub(f"gopigo/{THING}/detections", qos=0) == [0]
    # no token given: the detector reads camera_token from the robot's status
    env = {k: v for k, v in os.environ.items() if k != "GOPIGO_CAMERA_TOKEN"}
    detect(agent.camera, "--mqtt-config", str(cfg), "--thing", THING, frames=3, env=env)
    got = None
    deadline = time.time() + 10
    while time.time() < deadline and got is None:
        m = c.get(0.5)
        if m is not None and m.topic.endswith("/detections"):
            got = json.loads(m.payload)
    assert got is not None, "no detections message arrived"
    assert {"frame_ts_ms", "width", "height", "detections"} <= set(got)


def test_without_the_token_the_camera_refuses_and_detect_says_how_to_get_it(rig):
    core, agent, c = rig
    env = {k: v for k, v in os.environ.items() if k != "GOPIGO_CAMERA_TOKEN"}
    for extra in ([], ["--camera-token", "0" * 64]):
        r = subprocess.run([GOPIGO, "detect", agent.camera, "--max-frames", "1", *extra],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode != 0
        assert "401" in r.stderr and "--camera-token" in r.stderr, r.stderr


def test_a_url_that_is_not_mjpeg_is_a_clear_error(tmp_path):
    from conftest import free_port

    (tmp_path / "index.html").write_text("<p>not a camera</p>")
    port = free_port()
    web = subprocess.Popen(["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                           cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        t = time.time()
        r = subprocess.run([GOPIGO, "detect", f"http://127.0.0.1:{port}/", "--max-frames", "1"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert "not an MJPEG stream" in r.stderr, r.stderr
        assert time.time() - t < 10, "a wrong URL must fail at once, not after the start-up grace"
    finally:
        web.terminate()
        web.wait()
