#!/usr/bin/env bash
# Installs what gopigo-iot's build and tests need on a fresh Debian machine,
# idempotently: Debian packages (openssl, mosquitto + clients) and the Python
# peers in tests/requirements.txt. Safe to run again; does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v mosquitto_sub >/dev/null || need_apt+=(mosquitto-clients)
[ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
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
command -v cargo-nextest >/dev/null || echo "setup: cargo-nextest not found; tests will run with cargo test"
echo "setup: ready"
