#!/usr/bin/env bash
# The test command: sets up what the tests need, checks formatting and lints,
# runs every crate's tests, then the end-to-end tests that start the real
# `gopigo` binary on loopback ports and drive it with real peers (aws CLI,
# boto3, moto, openssl, mosquitto, paho-mqtt, the AWS IoT Device SDK, curl,
# ffmpeg, OpenCV, darknet, Ansible, Paho's interoperability suite), moto's own
# IoT tests against the core, then the dashboard in headless Chromium.
# The dashboard's JavaScript modules have unit tests under node (tests/browser/unit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== unused dependencies (cargo machete)"
cargo machete
echo "== dashboard unit tests (node --test: the page's modules, no browser)"
(cd tests/browser && npm run --silent unit)
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build"
cargo build --workspace --locked --bins
echo "== crate tests"
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
echo "== the Pi build (aarch64 release, ONNX Runtime for aarch64, smoke run under qemu-user) for tests/e2e/test_pi_build.py"
bash scripts/build-pi.sh
echo "== end-to-end tests"
export GOPIGO_BIN="$PWD/target/debug/gopigo"
python3 -m pytest tests/e2e -q -p no:cacheprovider "$@"
echo "== moto 5.2.1's IoT tests against the core (compared with tests/moto/expected.txt)"
python3 tests/moto/run.py
echo "== operation coverage table in docs/core.md"
python3 scripts/coverage.py --check
echo "== browser test (headless Chromium + Playwright against gopigo demo)"
(cd tests/browser && npm test)
