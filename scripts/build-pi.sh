#!/usr/bin/env bash
# Cross-builds `gopigo` for a Raspberry Pi (64-bit Pi OS Bookworm, glibc 2.36)
# with the real GoPiGo3 board (`--features hardware`), then smoke-runs the
# result under qemu-aarch64. Needs (Debian): gcc-aarch64-linux-gnu
# libc6-dev-arm64-cross qemu-user, and `rustup target add aarch64-unknown-linux-gnu`.
#
#   scripts/build-pi.sh            # release build + smoke run
#   SKIP_SMOKE=1 scripts/build-pi.sh
#
# The linker is set here through the environment rather than in
# .cargo/config.toml, so plain host builds are untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
[ -n "${SKIP_SMOKE:-}" ] || command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-pi: missing Debian packages; install them with:" >&2
  echo "  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
  echo "build-pi: adding the Rust target $TARGET"
  rustup target add "$TARGET"
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# C parts (ring, SQLite) are cross-compiled by the cc crate with these:
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# qemu runs the result with the cross sysroot's loader and libraries
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"

cargo build --release --target "$TARGET" -p gopigo --features hardware "$@"
BIN=target/$TARGET/release/gopigo
file "$BIN" 2>/dev/null || true
ls -l "$BIN"

if [ -z "${SKIP_SMOKE:-}" ]; then
  echo "== smoke run under qemu-aarch64"
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$BIN" --version
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$BIN" agent --help >/dev/null
  echo "build-pi: $BIN runs (--version, agent --help)"
fi
echo "build-pi: copy $BIN to the Pi, e.g. scp $BIN pi@robot1.local:/usr/local/bin/gopigo"
