"""`gopigo detect`'s model precision as a user meets it: int8 is the default
when crates/vision/setup.sh made the int8 model; without it (the demo's
set-up skips the Python step that makes it) detection still runs, on fp32,
and says so; asking for int8 by name without the model is an error that
names the file and the set-up script."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import GOPIGO

VISION = Path(os.environ.get("GOPIGO_CACHE", Path.home() / ".cache/gopigo")) / "vision"
DOG = VISION / "images" / "dog.jpg"


def cache_without_int8(tmp_path: Path) -> Path:
    """A GOPIGO_CACHE with the runtime, the fp32 model and the photos of
    the real one, and no int8 model."""
    (tmp_path / "vision" / "model").mkdir(parents=True)
    for name in ("yolov3-tiny.onnx", "coco.names", "yolov3-tiny.cfg", "yolov3-tiny.weights"):
        if (VISION / "model" / name).exists():
            (tmp_path / "vision" / "model" / name).symlink_to(VISION / "model" / name)
    (tmp_path / "vision" / "lib").symlink_to(VISION / "lib")
    return tmp_path


def detect(cache: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GOPIGO_CACHE": str(cache)}
    env.pop("GOPIGO_VISION_MODEL", None)
    return subprocess.run([GOPIGO, "detect", str(DOG), *args], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture
def fp32_only(tmp_path):
    if not (VISION / "model" / "yolov3-tiny.onnx").exists() or not DOG.exists():
        pytest.skip(f"the YOLO model or photos are not set up in {VISION} (run crates/vision/setup.sh)")
    return cache_without_int8(tmp_path)


def test_without_the_int8_model_the_default_falls_back_to_fp32(fp32_only):
    r = detect(fp32_only)
    assert r.returncode == 0, r.stderr
    assert "using fp32" in r.stderr and "yolov3-tiny.int8.onnx" in r.stderr, r.stderr
    classes = {d["class"] for line in r.stdout.splitlines() for d in json.loads(line)["detections"]}
    assert "dog" in classes, r.stdout


def test_int8_asked_for_by_name_without_its_model_names_the_fix(fp32_only):
    r = detect(fp32_only, "--precision", "int8")
    assert r.returncode != 0
    assert "yolov3-tiny.int8.onnx" in r.stderr and "setup.sh" in r.stderr, r.stderr
    assert r.stdout == ""
