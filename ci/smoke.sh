#!/usr/bin/env bash
# The wall-time sanity check that cannot flake: a short `qcnn reproduce` (dense and qcnn
# interleaved in one process, pinned, 3 repeats of 20 single-image batches) whose speed-up
# (median dense ms/image over median qcnn ms/image) must stay above a floor. It reports the
# figure either way. It runs at the best look-up ISA the machine has, so it is what covers the
# AVX-512 kernels (valgrind, hence the instruction-count gate, cannot run them).
#
# Why a ratio and these floors: absolute times on this shared 2-core machine move by ±20 %
# between runs, but both modes see the same machine within a repeat, so the ratio barely
# moves. Measured here (2026-11, AMD EPYC, AVX-512): 3.94–4.01x quiet; 3.83–3.98x with a
# busy loop sharing the measured core and a 256 MB memory-streaming loop on the other core
# (absolute times 2–5x slower). The AVX-512 floor, 2.5x, is 35 % below the worst of those,
# more than two ±20 % swings in opposite directions take away (4.0 · 0.8 / 1.2 = 2.7), yet it
# catches a real collapse: the same build with the scalar kernels gives 0.42x. On a machine
# without AVX-512 the AVX2 floor applies: 2.2x, against 3.33-3.36x measured in three smoke-sized
# runs with the AVX2 kernels planned for a 512 KB L2 and OpenBLAS's Haswell kernels (2026-12-07,
# Xeon SPR, `--isa avx2 --blas-core Haswell --caches l1d=32K,l2=512K`), 3.33 · 0.8 / 1.2 = 2.22;
# 2.97-3.09x on 2026-12-06 (before the LRN estimate, the AVX2 strided gathers and the fc row
# shuffles), 2.65x before two subspaces per conv3-5 table and the fused fc planes, 1.81x before
# the cache-derived plans, scalar 0.42x. Override with QCNN_SMOKE_FLOORS="avx512=2.5 avx2=2.2".
set -euo pipefail
cd "$(dirname "$0")/.."

FLOORS=${QCNN_SMOKE_FLOORS:-"avx512=2.5 avx2=2.2"}
REPEATS=3
IMAGES=20
WARMUP=5

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cargo build --release --quiet --bin qcnn -p qcnn-harness
cargo build --release --quiet --bin qcnn-gate -p qcnn-gate
echo "smoke: qcnn reproduce --repeats $REPEATS --images $IMAGES (dense vs qcnn, interleaved, pinned)"
start=$SECONDS
target/release/qcnn reproduce --repeats "$REPEATS" --images "$IMAGES" --warmup "$WARMUP" \
  --no-memory --json --results "$out/runs" > "$out/summary.json" 2> "$out/stderr" || {
  cat "$out/stderr" >&2
  echo "smoke: qcnn reproduce failed" >&2
  exit 1
}
echo "smoke: measured in $((SECONDS - start)) s"
floor_args=()
for f in $FLOORS; do floor_args+=(--floor "$f"); done
target/release/qcnn-gate ratio --summary "$out/summary.json" --mode qcnn "${floor_args[@]}"
