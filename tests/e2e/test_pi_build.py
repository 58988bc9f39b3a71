"""The Pi build under qemu-user: the aarch64 `gopigo` of scripts/build-pi.sh,
with the aarch64 ONNX Runtime it stages from PyPI, detects the same objects
as this machine's build on a few photos, and the aarch64 agent with
`[detect] enabled` publishes detections of its simulated camera to the local
core. Slow (every instruction is emulated) but real.

Needs: qemu-user and libc6-arm64-cross (Debian), and the build:
`scripts/build-pi.sh` (or `PROFILE=dev scripts/build-pi.sh` for a debug
build); GOPIGO_PI_BIN names another aarch64 binary with a vision/ folder
beside it."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import GOPIGO
from mqttc import Client
from test_agent import THING, fleet, write_robot_toml  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
SYSROOT = Path("/usr/aarch64-linux-gnu")
VISION = Path(os.environ.get("GOPIGO_CACHE", Path.home() / ".cache" / "gopigo")) / "vision"
PHOTOS = ["dog.jpg", "person.jpg", "horses.jpg"]


def _pi_bin():
    if os.environ.get("GOPIGO_PI_BIN"):
        return Path(os.environ["GOPIGO_PI_BIN"])
    for profile in ("release", "debug"):
        b = ROOT / "target" / "aarch64-unknown-linux-gnu" / profile / "gopigo"
        if b.is_file():
            return b
    return None


PI_BIN = _pi_bin()


def _missing():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare (a private /proc/cpuinfo for ONNX Runtime under qemu-user)"
    if shutil.which("qemu-aarch64") is None:
        return "needs qemu-aarch64 (apt-get install qemu-user)"
    if not (SYSROOT / "lib" / "ld-linux-aarch64.so.1").exists():
        return "needs the aarch64 C library (apt-get install libc6-arm64-cross)"
    if PI_BIN is None or not PI_BIN.is_file():
        return "needs the aarch64 build: scripts/build-pi.sh (PROFILE=dev for a debug build)"
    if not (PI_BIN.parent / "vision" / "lib" / "libonnxruntime.so").exists():
        return f"needs {PI_BIN.parent}/vision (scripts/build-pi.sh stages it)"
    if not all((VISION / "images" / p).is_file() for p in PHOTOS):
        return "needs the sample photos: crates/vision/setup.sh"
    return None


_MISSING = _missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))


CPUINFO_A72 = "".join(
    f"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
    "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n"
    "CPU revision\t: 3\n\n" for i in range(os.cpu_count() or 1))


def qemu(*args, tmp):
    """The aarch64 gopigo under qemu-user. ONNX Runtime reads /proc/cpuinfo
    when it loads and crashes on the host's x86 one, which qemu-user 7.2
    passes through: the run gets a Cortex-A72's in a private mount namespace.
    The loader and the C library both come from the cross sysroot
    (LD_LIBRARY_PATH): mixed with Debian's arm64 multiarch libc, which
    /etc/ld.so.cache names, the program spins inside glibc."""
    fake = tmp / "cpuinfo"
    fake.write_text(CPUINFO_A72)
    return ["unshare", "-m", "sh", "-c",
            'mount --bind "$0" /proc/cpuinfo && root="$1" && shift && '
            'exec qemu-aarch64 -cpu cortex-a72 -L "$root" -E LD_LIBRARY_PATH="$root/lib" "$@"',
            str(fake), str(SYSROOT), str(PI_BIN), *args]


def detect_lines(cmd, env):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def box(d):
    b = d["bbox"]
    return b["x"], b["y"], b["w"], b["h"]


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / (aw * ah + bw * bh - inter)


def test_the_aarch64_build_detects_what_this_machines_build_does(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in PHOTOS:
        shutil.copy(VISION / "images" / p, photos / p)
    vision = PI_BIN.parent / "vision"
    model = vision / "model" / "yolov3-tiny.onnx"
    args = ["detect", str(photos), "--model", str(model), "--size", "320", "--conf", "0.25"]
    arm = detect_lines(qemu(*args, tmp=tmp_path), dict(os.environ, ORT_DYLIB_PATH=str(vision / "lib" / "libonnxruntime.so")))
    host = detect_lines([GOPIGO, *args], dict(os.environ))
    assert len(arm) == len(host) == len(PHOTOS)
    found = set()
    for a, h in zip(arm, host):
        assert Path(a["source"]).name == Path(h["source"]).name
        # the same objects, with boxes that agree: every detection over 0.35
        # of one build is in the other's (over 0.25; NEON and AVX kernels
        # round differently, so a score at the threshold may land either side)
        for one, other in ((a, h), (h, a)):
            for d in one["detections"]:
                if d["score"] < 0.35:
                    continue
                best = max([iou(box(d), box(o)) for o in other["detections"] if o["class"] == d["class"]],
                           default=0.0)
                assert best > 0.9, (d, other)
        found |= {d["class"] for d in a["detections"] if d["score"] >= 0.35}
    assert {"dog", "person", "horse"} <= found, found


def test_the_aarch64_agent_publishes_detections_of_its_camera(fleet, tmp_path):
    core, robot, ctrl = fleet
    vision = PI_BIN.parent / "vision"
    cfg = write_robot_toml(tmp_path / "robot.toml", core, robot)
    cfg.write_text(cfg.read_text().replace("fps = 10.0", "fps = 2.0")
                   + "[detect]\nenabled = true\n"
                   f'model_dir = "{vision / "model"}"\nruntime = "{vision / "lib" / "libonnxruntime.so"}"\n'
                   "max_fps = 1.0\nthreshold = 0.3\n")
    c = Client(core, ctrl, "controller")
    assert c.sub(f"gopigo/{THING}/detections", qos=0) == [0]
    agent = subprocess.Popen(qemu("agent", "--config", str(cfg), "--sim", tmp=tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        got = []
        deadline = time.time() + 300
        while time.time() < deadline and len(got) < 2 and agent.poll() is None:
            m = c.get(1.0)
            if m is not None and m.topic.endswith("/detections"):
                got.append(json.loads(m.payload))
        assert agent.poll() is None, agent.stderr.read()[-3000:]
        assert len(got) == 2, "no detections from the aarch64 agent in 300 s"
        # facing +x: the wall with darknet's dog.jpg
        classes = {d["class"] for m in got for d in m["detections"]}
        assert classes & {"dog", "bicycle"}, classes
        assert got[0]["width"] == 640 and got[0]["frame_ts_ms"] > 0
    finally:
        c.close()
        agent.terminate()
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
