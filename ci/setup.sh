#!/usr/bin/env bash
# Installs what qcnn-bench needs on a fresh Debian/Ubuntu machine; safe to run again.
# Needs: a Rust toolchain (cargo) already present. Installs: Debian's OpenBLAS (libopenblas-dev).
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust first (https://rustup.rs), then re-run" >&2
  exit 1
fi

missing=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || missing+=(libopenblas-dev)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "setup: ready (libopenblas-dev $(dpkg-query -W -f='${Version}' libopenblas-dev))" >&2
