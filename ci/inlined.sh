#!/usr/bin/env bash
# The vector kernels' intrinsics must be inlined into their target-feature entries. When an
# intrinsic ends up called as a function (a closure or a helper compiled without the level's
# features sits between the entry and the intrinsic), the kernels stay correct but run 5–30×
# slower: nothing else would notice. This check disassembles the release `qcnn` binary and
# fails if any `core::core_arch` intrinsic is called out of line, except the CPU-feature
# probes (`_xgetbv`, `__cpuid*`), which are meant to be calls.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v objdump >/dev/null || { echo "inlined: objdump (binutils) not found" >&2; exit 1; }
cargo build --release --quiet --bin qcnn -p qcnn-harness
calls=$(objdump -d --no-show-raw-insn -C target/release/qcnn \
  | grep -E 'call.*<core::core_arch::' \
  | grep -Ev '_xgetbv|__cpuid' || true)
if [ -n "$calls" ]; then
  echo "inlined: intrinsics called out of line (each is a vector kernel running without its target features):" >&2
  echo "$calls" | sed 's/.*call *[0-9a-f]* //' | sort | uniq -c | sort -rn | head -20 >&2
  exit 1
fi
echo "inlined: no intrinsic is called out of line in target/release/qcnn"
