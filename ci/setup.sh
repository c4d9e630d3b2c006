#!/usr/bin/env bash
# Installs what qcnn-bench needs on a fresh Debian/Ubuntu machine; safe to run again.
# Needs: a Rust toolchain (cargo) already present. Installs: Debian's OpenBLAS (libopenblas-dev).
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust first (https://rustup.rs), then re-run" >&2
  exit 1
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "setup: need root or sudo to run: $*" >&2; exit 1
  fi
}
# shellcheck source=ci/lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"

# The native package by name: with another architecture's copy installed too (ci/aarch64.sh
# adds arm64's), a bare name is ambiguous to dpkg.
openblas="libopenblas-dev:$(dpkg --print-architecture)"
missing=()
dpkg -s "$openblas" >/dev/null 2>&1 || missing+=("$openblas")

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt_get update -qq
  apt_get install -y -qq "${missing[@]}" >/dev/null
fi
echo "setup: ready ($openblas $(dpkg-query -W -f='${Version}' "$openblas"))" >&2
