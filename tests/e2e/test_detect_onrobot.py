"""Detection on the robot: `gopigo agent --sim` with `[detect] enabled` runs
the YOLO detector on its own simulated camera and publishes what it sees on
gopigo/{thing}/detections (the message `gopigo detect` publishes), with no
`gopigo detect` process and no viewer of the camera. The detector runs at a
lower priority than the rest of the agent and the obstacle stop still works
while it runs. A missing model or runtime stops the agent at start with the
file and the fix. `[detect] precision` picks the int8 or the fp32 model;
left out, int8 when its file is in model_dir, else fp32 with a log line
saying how to get int8.

Needs the model and ONNX Runtime that crates/vision/setup.sh installs (the
same as tests/e2e/test_detect_live.py)."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import GOPIGO
from mqttc import Client
from test_agent import (THING, Agent, command, fleet, result_of, wait_moving,  # noqa: F401 (fixtures)
                        write_robot_toml)

VISION = Path(os.environ.get("GOPIGO_CACHE", Path.home() / ".cache" / "gopigo")) / "vision"
RUNTIME = VISION / "lib" / "libonnxruntime.so"
INT8 = "yolov3-tiny.int8.onnx"
MAX_FPS = 2.0


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A folder with yolov3-tiny.onnx: setup.sh's, or imported from its darknet files."""
    if (VISION / "model" / "yolov3-tiny.onnx").is_file():
        return VISION / "model"
    cfg, weights = VISION / "model" / "yolov3-tiny.cfg", VISION / "model" / "yolov3-tiny.weights"
    if not (cfg.is_file() and weights.is_file() and RUNTIME.exists()):
        pytest.skip("run crates/vision/setup.sh first (model and ONNX Runtime)")
    out = tmp_path_factory.mktemp("model")
    r = subprocess.run([GOPIGO, "model", "import-darknet", str(cfg), str(weights),
                        "--names", str(VISION / "model" / "coco.names"),
                        "-o", str(out / "yolov3-tiny.onnx")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def only(tmp_path, src, name):
    """A model_dir holding just `name` (a link to `src`)."""
    d = tmp_path / f"only-{name}"
    d.mkdir()
    (d / name).symlink_to(src)
    return d


def detect_line(agent):
    """The agent's `detect ...` start line."""
    lines = [line for line in agent.lines if line.startswith("detect ")]
    assert len(lines) == 1, agent.lines
    return lines[0]


def detect_toml(model_dir, runtime=RUNTIME, **over):
    keys = {"enabled": "true", "model_dir": f'"{model_dir}"', "runtime": f'"{runtime}"',
            "input_size": "416", "max_fps": str(MAX_FPS), "threshold": "0.3", "threads": "2"}
    keys.update(over)
    return "[detect]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())


def robot_with_detect(fleet, tmp_path, model_dir, **over):
    core, robot, ctrl = fleet
    cfg = write_robot_toml(tmp_path / "robot.toml", core, robot)
    cfg.write_text(cfg.read_text() + detect_toml(model_dir, **over))
    return cfg


def detections(client, n, after_ms=0, timeout=90):
    """The next `n` detection messages of frames captured after `after_ms`."""
    got = []
    deadline = time.time() + timeout
    while time.time() < deadline and len(got) < n:
        m = client.get(0.5)
        if m is None or not m.topic.endswith("/detections"):
            continue
        doc = json.loads(m.payload)
        if doc["frame_ts_ms"] > after_ms:
            got.append(doc)
    assert len(got) == n, f"{len(got)} of {n} detection messages in {timeout} s"
    return got


def classes(msgs):
    return {d["class"] for m in msgs for d in m["detections"]}


def children(pid):
    """Processes whose parent is `pid`, from /proc."""
    out = []
    for p in Path("/proc").iterdir():
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            out.append(stat)
    return out


def connections_to(port):
    """Established TCP connections to `port` on this machine (/proc/net/tcp, tcp6)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state == "01":
                n += 1
    return n


def threads_nice(pid):
    """(name, nice) of each of the process's threads, from /proc."""
    out = []
    for t in Path(f"/proc/{pid}/task").iterdir():
        stat = (t / "stat").read_text()
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        out.append((name, int(stat[stat.rindex(")") + 2:].split()[16])))
    return out


def test_the_robot_publishes_what_it_faces_with_no_detector_process(fleet, tmp_path, model_dir):
    core, robot, ctrl = fleet
    agent = Agent(robot_with_detect(fleet, tmp_path, model_dir))
    c = Client(core, ctrl, "controller")
    try:
        # left out, the precision is int8 when model_dir holds its file
        if (model_dir / INT8).is_file():
            assert f"{model_dir / INT8} (int8, the default)" in detect_line(agent)
        else:
            assert f"{model_dir / 'yolov3-tiny.onnx'} (fp32: no {INT8}" in detect_line(agent)
        assert c.sub(f"gopigo/{THING}/detections", qos=0) == [0]
        assert c.sub(f"gopigo/{THING}/cmd/result") == [1]
        camera_port = int(agent.camera.rsplit(":", 1)[1].split("/")[0])
        # facing +x: the wall with darknet's dog.jpg (dog, bicycle, truck/car)
        facing_dog = detections(c, 3)
        assert classes(facing_dog) & {"dog", "bicycle"}, classes(facing_dog)
        for m in facing_dog:
            assert (m["width"], m["height"]) == (640, 480) and m["frame_ts_ms"] > 0
            for d in m["detections"]:
                x, y, w, h = d["box"]
                assert 0 <= x <= 640 and 0 <= y <= 480 and w > 0 and h > 0 and d["score"] >= 0.3
        # newest frame only, within its budget: the frames examined are at
        # least about 1/max_fps apart in capture time (the camera makes 10 a second)
        ts = [m["frame_ts_ms"] for m in facing_dog]
        assert all(b > a for a, b in zip(ts, ts[1:])), ts
        assert (ts[-1] - ts[0]) / (len(ts) - 1) >= 0.75 * 1000 / MAX_FPS, ts

        # turn left 90 degrees: the wall with person.jpg (person, dog, horse)
        cid = command(c, action="turn", degrees=-90)
        result_of(c, cid, "done", timeout=15)
        turned_ms = int(time.time() * 1000) + 300
        facing_person = detections(c, 2, after_ms=turned_ms)
        assert "person" in classes(facing_person), classes(facing_person)
        assert classes(facing_person) != classes(facing_dog)

        # the detector and ONNX Runtime's workers run below everything else
        nice = threads_nice(agent.proc.pid)
        assert ("detect", 10) in nice, nice
        assert ("executor", 0) in nice, nice
        assert sum(1 for _, n in nice if n == 10) >= 2, f"ONNX Runtime's workers: {nice}"
        # all of it inside the agent: no helper process, no viewer of the camera
        assert children(agent.proc.pid) == []
        assert connections_to(camera_port) == 0
    finally:
        c.close()
        assert agent.stop() == 0, "".join(agent.err)[-2000:]


def test_the_obstacle_stop_works_while_detecting(fleet, tmp_path, model_dir):
    core, robot, ctrl = fleet
    # threads = 4 and max_fps = 30: the detector asks for all it can get
    agent = Agent(robot_with_detect(fleet, tmp_path, model_dir, max_fps="30.0", threads="4"))
    c = Client(core, ctrl, "controller")
    try:
        assert c.sub(f"gopigo/{THING}/detections", qos=0) == [0]
        assert c.sub(f"gopigo/{THING}/cmd/result") == [1]
        detections(c, 2)
        cid = command(c, action="drive", direction="forward", duration_ms=10000)
        s = wait_moving(agent)
        p = s["pose"]
        agent.obstacle(p["x_mm"] + 60 + 150, p["y_mm"] - 250, 100, 500)
        r = result_of(c, cid, "done", timeout=3)
        assert r["reason"].startswith("obstacle at"), r
        s = agent.sim()
        assert s["wheel_dps"] == {"left": 0.0, "right": 0.0}
        assert not s["bumped"] and s["true_distance_mm"] > 80, s
    finally:
        c.close()
        agent.stop()


def start_fails(cfg):
    r = subprocess.run([GOPIGO, "agent", "--config", str(cfg), "--sim"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stdout
    return r.stderr


def test_a_missing_model_or_runtime_stops_the_start_with_the_file_and_the_fix(fleet, tmp_path, model_dir):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    err = start_fails(robot_with_detect(fleet, tmp_path, empty))
    assert str(empty / "yolov3-tiny.onnx") in err and "model_dir" in err, err
    assert "scripts/build-pi.sh" in err and "enabled = false" in err, err

    err = start_fails(robot_with_detect(fleet, tmp_path, model_dir, runtime=empty / "libonnxruntime.so"))
    assert f"{empty}/libonnxruntime.so" in err and "[detect] runtime" in err, err

    # a library that is not ONNX Runtime for this machine (here: not a library at all)
    bogus = tmp_path / "libonnxruntime.so"
    bogus.write_bytes(b"\x7fELF not really")
    err = start_fails(robot_with_detect(fleet, tmp_path, model_dir, runtime=bogus))
    assert str(bogus) in err and "aarch64" in err, err

    # on, with the camera off
    err = start_fails(_camera_off(robot_with_detect(fleet, tmp_path, model_dir)))
    assert "[detect] enabled" in err and "[camera] enabled = true" in err, err


def _camera_off(cfg):
    cfg.write_text(cfg.read_text().replace("[camera]\n", "[camera]\nenabled = false\n"))
    return cfg


def test_precision_int8_runs_the_int8_model(fleet, tmp_path, model_dir):
    if not (VISION / "model" / INT8).is_file():
        pytest.skip(f"no {INT8} in {VISION / 'model'}: crates/vision/setup.sh makes it (its Python step)")
    # a model_dir with the int8 model alone: no fp32 file to fall back on
    int8_dir = only(tmp_path, VISION / "model" / INT8, INT8)
    agent = Agent(robot_with_detect(fleet, tmp_path, int8_dir, precision='"int8"'))
    core, robot, ctrl = fleet
    c = Client(core, ctrl, "controller")
    try:
        assert f"{int8_dir / INT8} (int8, [detect] precision)" in detect_line(agent)
        assert c.sub(f"gopigo/{THING}/detections", qos=0) == [0]
        # facing the wall with darknet's dog.jpg, as the fp32 model sees it
        got = detections(c, 2)
        assert classes(got) & {"dog", "bicycle"}, classes(got)
        assert not any(INT8 in line for line in agent.err), agent.err
    finally:
        c.close()
        assert agent.stop() == 0, "".join(agent.err)[-2000:]


def test_without_the_int8_model_the_default_is_fp32_and_says_so(fleet, tmp_path, model_dir):
    fp32_dir = only(tmp_path, model_dir / "yolov3-tiny.onnx", "yolov3-tiny.onnx")
    agent = Agent(robot_with_detect(fleet, tmp_path, fp32_dir))
    core, robot, ctrl = fleet
    c = Client(core, ctrl, "controller")
    try:
        assert f"{fp32_dir / 'yolov3-tiny.onnx'} (fp32: no {INT8} in model_dir)" in detect_line(agent)
        assert c.sub(f"gopigo/{THING}/detections", qos=0) == [0]
        assert classes(detections(c, 1)) & {"dog", "bicycle"}
        # one log line: where int8 was looked for, and how to get it
        said = [line for line in agent.err if INT8 in line]
        assert len(said) == 1, agent.err
        assert str(fp32_dir / INT8) in said[0] and "running fp32" in said[0], said
        assert "crates/vision/setup.sh" in said[0] and "scripts/build-pi.sh" in said[0], said
    finally:
        c.close()
        assert agent.stop() == 0, "".join(agent.err)[-2000:]


def test_int8_asked_for_without_its_model_stops_the_start(fleet, tmp_path, model_dir):
    fp32_dir = only(tmp_path, model_dir / "yolov3-tiny.onnx", "yolov3-tiny.onnx")
    err = start_fails(robot_with_detect(fleet, tmp_path, fp32_dir, precision='"int8"'))
    assert f"the int8 model {fp32_dir / INT8} is missing" in err, err
    assert "crates/vision/setup.sh" in err and "scripts/build-pi.sh" in err, err
    assert 'precision = "fp32"' in err, err

    # a value that is neither: the key and the allowed values
    err = start_fails(robot_with_detect(fleet, tmp_path, fp32_dir, precision='"int4"'))
    assert '[detect] precision = "int4"' in err and 'allowed "int8" or "fp32"' in err, err
    assert "robot.toml" in err, err
