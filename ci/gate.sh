#!/usr/bin/env bash
# The deterministic performance gate: instruction counts (callgrind Ir, via gungraun) of the
# look-up kernels, the dense ops and one quantized AlexNet forward pass, compared with the
# committed baseline results/gate-baseline.json. Fails if any kernel's count grows by more
# than QCNN_GATE_THRESHOLD_PCT (default 2) percent, if a baselined kernel is no longer
# measured, or if a new one has no baseline. Wall-clock times are not gated (±20 % between
# runs on a shared machine); counts are exact for one binary, input and environment.
#
# Usage:
#   ci/gate.sh               run the gate (what .ci/run does)
#   ci/gate.sh --update      run, print the comparison, then write the run as the new
#                            baseline; commit it with the change that explains it
#   ci/gate.sh FILTER        only the benchmarks matching gungraun's FILTER (module path
#                            gate::GROUP::FUNCTION::ID, globs allowed), e.g. 'gate::lookup::*'
#   ci/gate.sh --self-test   prove the gate catches a slowed kernel: runs fc8's AVX2 look-up
#                            kernel twice in its measured call (QCNN_GATE_SLOW) and expects
#                            the gate to fail naming it
#
# Installs what it needs when missing: valgrind (apt) and gungraun-runner at the version
# ci/gate/Cargo.toml pins (cargo install: 1.5–3 min on the 2-core CI machine).
set -euo pipefail
cd "$(dirname "$0")/.."

BASELINE=results/gate-baseline.json
THRESHOLD_PCT=${QCNN_GATE_THRESHOLD_PCT:-2}
OUT_DIR=target/gate
SELF_TEST_KEY=fc8/fc-lut-f32-avx2
SELF_TEST_FILTER='gate::lookup::fc_lut_f32_avx2::fc8'

mode=check
filter=""
case "${1:-}" in
  "") ;;
  --update) mode=update ;;
  --self-test) mode=self-test; filter=$SELF_TEST_FILTER ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  -*) echo "gate: unknown option $1 (see ci/gate.sh --help)" >&2; exit 2 ;;
  *) filter=$1 ;;
esac

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "gate: need root or sudo to run: $*" >&2; exit 1
  fi
}

# shellcheck source=ci/lib/apt.sh
source ci/lib/apt.sh

export PATH="$HOME/.cargo/bin:$PATH"

# --- tools -------------------------------------------------------------------------------
if ! command -v valgrind >/dev/null 2>&1; then
  echo "gate: installing valgrind" >&2
  apt_get update -qq
  apt_get install -y -qq valgrind >/dev/null
fi

# The runner must be exactly the library's version (gungraun refuses a mismatch).
GUNGRAUN_VERSION=$(sed -n 's/^gungraun = "=\([0-9.]*\)"/\1/p' ci/gate/Cargo.toml)
if [ -z "$GUNGRAUN_VERSION" ]; then
  echo "gate: cannot read the pinned gungraun version from ci/gate/Cargo.toml" >&2; exit 1
fi
have=$(gungraun-runner --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$GUNGRAUN_VERSION" ]; then
  echo "gate: installing gungraun-runner $GUNGRAUN_VERSION (found: ${have:-none})" >&2
  start=$SECONDS
  cargo install --locked --quiet gungraun-runner --version "$GUNGRAUN_VERSION"
  echo "gate: gungraun-runner installed in $((SECONDS - start)) s" >&2
fi
# --- provenance: what the counts depend on besides the code --------------------------------
openblas=$(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null \
  || dpkg-query -W -f='${Version}' libopenblas-dev 2>/dev/null || echo unknown)
# (awk reads whole inputs: with pipefail, `| head -1` could kill the writer with SIGPIPE.)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
glibc=$(ldd --version 2>&1 | awk 'NR == 1 {print $NF}')
provenance=(
  --provenance "rustc=$(rustc --version)"
  --provenance "valgrind=$(valgrind --version)"
  --provenance "gungraun=$GUNGRAUN_VERSION"
  --provenance "openblas=$openblas (OPENBLAS_CORETYPE=Haswell, 1 thread)"
  --provenance "glibc=$glibc"
  --provenance "cpu=${cpu:-unknown}"
)

# --- measure -------------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
# The self-test keeps its own file, so the last real run stays on disk for inspection.
run="$OUT_DIR/run.jsonl"
[ "$mode" = self-test ] && run="$OUT_DIR/self-test.jsonl"
echo "gate: building the gate benchmarks and qcnn-gate" >&2
cargo build --release --quiet -p qcnn-gate --bin qcnn-gate
cargo bench --quiet -p qcnn-gate --bench gate --no-run
slow=""
[ "$mode" = self-test ] && slow=$SELF_TEST_KEY
echo "gate: measuring instruction counts under callgrind${filter:+ (filter: $filter)}${slow:+ (deliberately slowed: $slow)}" >&2
start=$SECONDS
# gungraun clears the benchmarks' environment; the bench's config sets OpenBLAS's core and
# thread count itself, and passes QCNN_GATE_SLOW through for the self-test.
QCNN_GATE_SLOW=$slow cargo bench --quiet -p qcnn-gate --bench gate -- \
  --output-format=json --parallel=2 ${filter:+"$filter"} > "$run"
echo "gate: measured $(grep -c '^{' "$run") benchmarks in $((SECONDS - start)) s" >&2

# --- compare -------------------------------------------------------------------------------
gate=target/release/qcnn-gate
args=(compare --baseline "$BASELINE" --run "$run" --threshold-pct "$THRESHOLD_PCT" "${provenance[@]}")
[ -n "$filter" ] && args+=(--partial)
case $mode in
  check)
    echo "gate: comparing with $BASELINE (fail above +$THRESHOLD_PCT% instructions)"
    "$gate" "${args[@]}"
    ;;
  update)
    if [ -n "$filter" ]; then echo "gate: --update needs the full set (no filter)" >&2; exit 2; fi
    "$gate" "${args[@]}" --update
    ;;
  self-test)
    echo "gate self-test: $SELF_TEST_KEY runs twice; the gate must fail and name it"
    set +e
    report=$("$gate" "${args[@]}")
    status=$?
    set -e
    printf '%s\n' "$report" | sed 's/^/  | /'
    if [ "$status" -eq 1 ] && printf '%s\n' "$report" | grep -q "^  $SELF_TEST_KEY: .*above the"; then
      echo "gate self-test passed: the slowed kernel failed the gate, named in the message"
    else
      echo "gate self-test FAILED: expected exit 1 naming $SELF_TEST_KEY, got exit $status" >&2
      exit 1
    fi
    ;;
esac
