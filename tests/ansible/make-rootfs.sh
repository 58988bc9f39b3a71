#!/usr/bin/env bash
# Builds (once) the throwaway Debian target the Ansible test installs the
# agent into: a minimal Debian bookworm with python3, made by debootstrap and
# kept as a tarball so each test run only unpacks it (a few seconds).
#
#   tests/ansible/make-rootfs.sh [TARBALL]
#
# TARBALL defaults to $GOPIGO_TEST_ROOTFS, else ~/.cache/gopigo/bookworm-minbase.tar.
# The mirror is $GOPIGO_DEBIAN_MIRROR, else the first deb.debian.org-style URI
# apt is configured with. Needs root and the `debootstrap` package.
set -euo pipefail
out="${1:-${GOPIGO_TEST_ROOTFS:-$HOME/.cache/gopigo/bookworm-minbase.tar}}"
if [[ -s "$out" ]]; then
  echo "$out exists"
  exit 0
fi
mirror="${GOPIGO_DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
    | grep -v security | head -1 | awk '{print $2}' || true)
  mirror="${mirror:-http://deb.debian.org/debian}"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "debootstrap bookworm from $mirror ..."
debootstrap --variant=minbase --include=python3 bookworm "$work/root" "$mirror" >"$work/log" 2>&1 \
  || { tail -20 "$work/log"; exit 1; }
mkdir -p "$(dirname "$out")"
tar -C "$work/root" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "wrote $out"
