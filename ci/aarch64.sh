#!/usr/bin/env bash
# aarch64 without ARM hardware: cross-builds the whole workspace for aarch64-unknown-linux-gnu
# (release, no warnings allowed), then runs under qemu-user the kernel and model tests, the
# quantized network against the authors' golden outputs, and the qcnn program itself
# (info, classify, a tiny reproduce whose meta.json must record the CPU, caches, OpenBLAS
# core and ISA). What it ran and what it left out is printed at the end.
#
# Usage (as root, or with sudo for the packages and the binfmt registration):
#   ci/aarch64.sh            the CI selection (what .ci/run runs)
#   ci/aarch64.sh --all      every test binary of the workspace
#   ci/aarch64.sh --build    packages and the cross build only
# Environment:
#   QCNN_AARCH64_STD=auto|rustup|debian   where the aarch64 standard library comes from:
#       rustup's rust-std for the toolchain in use (`rustup target add`), or Debian's
#       rustc-web/cargo-web with libstd-rust-web-dev:arm64; auto tries rustup, then Debian.
#   QEMU_CPU=cortex-a76    the emulated core (qemu-aarch64 -cpu help lists them; `max` has
#       every extension): the Raspberry Pi 5's core, ARMv8.2 with dotprod and fp16. Debian's
#       OpenBLAS does not know it, so `qcnn` restarts with the neoversen1 kernels (the
#       --blas-core best path) as it would on the board.
#   QCNN_SHARED            the authors' model and golden outputs (default ../shared).
#
# Why `qemu-aarch64 -L /` and not `-L /usr/aarch64-linux-gnu`: the latter mixes the cross
# toolchain's loader with libc6:arm64's libc and every pthread_create spins (OpenBLAS hangs
# as it loads). Tests that start the aarch64 qcnn binary as a child need binfmt_misc:
# without it the child "exits 127" and qemu-user reports no error.
set -euo pipefail
cd "$(dirname "$0")/.."

# ---- the ISA levels the emulated kernel tests must run ------------------------------------
# The kernel tests iterate Isa::available(), so the NEON kernels join every property test by
# themselves; this makes a missing level fail instead of silently testing less.
AARCH64_REQUIRED_ISA=neon
# Emulation runs the property tests ~20× slower than native: 8 random cases per property
# (the x86 suite runs proptest's 256 through the same generic kernel bodies; 32 took the
# emulated tests to 14 minutes); the fixed edge cases and the golden-output tests all run.
export PROPTEST_CASES=${PROPTEST_CASES:-8}

TARGET=aarch64-unknown-linux-gnu
MODE=ci
case "${1:-}" in
  "") ;;
  --all) MODE=all ;;
  --build) MODE=build ;;
  -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
  *) echo "aarch64: unknown option $1 (see ci/aarch64.sh --help)" >&2; exit 2 ;;
esac
export QEMU_CPU=${QEMU_CPU:-cortex-a76}
STD_SOURCE=${QCNN_AARCH64_STD:-auto}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "aarch64: need root or sudo to run: $*" >&2; exit 1
  fi
}
# shellcheck source=ci/lib/apt.sh
source ci/lib/apt.sh
phase_times=()
phase_start=$SECONDS
phase() { echo "== aarch64: $1"; phase_start=$SECONDS; }
phase_done() { phase_times+=("$(printf '%5d s  %s' $((SECONDS - phase_start)) "$1")"); }

# ---- packages -----------------------------------------------------------------------------
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    as_root dpkg --add-architecture arm64
  fi
  echo "aarch64: installing ${missing[*]}" >&2
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

phase "packages (cross gcc, arm64 libc and OpenBLAS, qemu-user)"
apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user qemu-user-binfmt \
  libopenblas-dev:arm64 pkg-config
phase_done packages

# ---- the aarch64 standard library: rustup's, else Debian's --------------------------------
phase "aarch64 Rust standard library ($STD_SOURCE)"
CARGO=cargo
use_rustup() {
  command -v rustup >/dev/null 2>&1 || return 1
  rustup target list --installed 2>/dev/null | grep -qx "$TARGET" && return 0
  echo "aarch64: rustup target add $TARGET" >&2
  # A refusal answers at once; a blocked download would hang: give up after 3 minutes.
  timeout 180 rustup target add "$TARGET" >&2
}
use_debian() {
  # Debian's compiler with its own arm64 std; a version of its own, so it never mixes
  # artefacts with the rustup toolchain that builds for x86.
  apt_install rustc-web cargo-web libstd-rust-web-dev:arm64 || return 1
  export RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo
  export CARGO_TARGET_DIR=target/debian-rustc
}
case $STD_SOURCE in
  rustup) use_rustup ;;
  debian) use_debian ;;
  auto)
    if use_rustup; then STD_SOURCE=rustup
    else
      echo "aarch64: rustup could not add $TARGET; falling back to Debian's rustc-web" >&2
      use_debian
      STD_SOURCE=debian
    fi
    ;;
  *) echo "aarch64: QCNN_AARCH64_STD=$STD_SOURCE (expected auto, rustup or debian)" >&2; exit 2 ;;
esac
echo "aarch64: standard library from $STD_SOURCE; $($CARGO --version), $(${RUSTC:-rustc} --version)"
phase_done "standard library ($STD_SOURCE)"


# ---- the cross environment ----------------------------------------------------------------
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
# Children started through binfmt_misc get the same library root as the runner.
export QEMU_LD_PREFIX=/

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- build --------------------------------------------------------------------------------
# One cargo invocation builds the libraries, programs, examples and test binaries of every
# workspace crate (one feature resolution, so nothing is compiled twice); the tests then run
# from the binaries cargo reports, as `cargo test` runs them (in the package's folder).
# Warnings fail the build: x86-only code outside cfg(target_arch) shows up as unused code
# here first. (Read from cargo's output rather than set with -D warnings in RUSTFLAGS, which
# would give every aarch64 artefact a new hash; cargo replays the warnings of cached crates,
# so a warm build still shows them.)
phase "cross build: cargo test --release --workspace --target $TARGET --no-run"
set +e
$CARGO test --release --workspace --target "$TARGET" --no-run \
  --message-format=json-render-diagnostics > "$tmp/artifacts.json" 2> >(tee "$tmp/build.log" >&2)
status=$?
set -e
wait # for tee
[ "$status" -eq 0 ] || { echo "aarch64: the cross build failed" >&2; exit 1; }
if grep -E '^warning: .* generated [0-9]+ warnings?' "$tmp/build.log"; then
  echo "aarch64: the aarch64 build has warnings (above): x86-only code outside cfg(target_arch)?" >&2
  exit 1
fi
# One line per executable: "test <package> <target> <executable> <package folder>", <target>
# being `lib`, `bin:NAME` (a program's unit tests) or an integration test's name; programs
# as "program <name> <executable>".
python3 - "$tmp/artifacts.json" > "$tmp/binaries" <<'PY'
import json, os, sys, tomllib
for line in open(sys.argv[1]):
    a = json.loads(line)
    if a.get("reason") != "compiler-artifact" or not a.get("executable"):
        continue
    folder = os.path.dirname(a["manifest_path"])
    name, kind = a["target"]["name"], a["target"]["kind"][0]
    if not a["profile"]["test"]:
        print("program", name, a["executable"])
        continue
    with open(a["manifest_path"], "rb") as f:
        package = tomllib.load(f)["package"]["name"]
    target = {"lib": "lib", "bin": "bin:" + name}.get(kind, name)
    print("test", package, target, a["executable"], folder)
PY
qcnn_bin=$(awk '$1 == "program" && $2 == "qcnn" {print $3}' "$tmp/binaries")
[ -n "$qcnn_bin" ] || { echo "aarch64: cargo built no qcnn program" >&2; exit 1; }
phase_done "cross build"
[ "$MODE" = build ] && { printf '%s\n' "${phase_times[@]}"; exit 0; }

# ---- binfmt_misc, for tests that start the aarch64 qcnn binary ----------------------------
BINFMT=/proc/sys/fs/binfmt_misc
binfmt_ok=true
if [ ! -e $BINFMT/qemu-aarch64 ]; then
  { [ -e $BINFMT/register ] || as_root mount -t binfmt_misc binfmt_misc $BINFMT; } \
    && as_root sh -c "cat /usr/lib/binfmt.d/qemu-aarch64.conf > $BINFMT/register" \
    || binfmt_ok=false
fi
if $binfmt_ok && "$qcnn_bin" --version >/dev/null 2>&1; then
  echo "aarch64: binfmt_misc runs aarch64 programs directly ($("$qcnn_bin" --version))"
else
  binfmt_ok=false
  echo "aarch64: binfmt_misc could not be set up: tests that start qcnn as a child are skipped"
  # qcnn's OpenBLAS restart (--blas-core best) starts qcnn anew: keep the loaded family.
  export QCNN_BLAS_CORE=env
fi

# ---- tests under qemu ---------------------------------------------------------------------
# The CI selection: every test binary of the code that differs by architecture (kernels,
# BLAS, CPU description, pinning, the program) or that proves the network right (the
# authors' golden outputs). Everything else is listed at the end as not run, with why.
SELECTION=(
  "qcnn-kernels lib" "qcnn-kernels dense_ops" "qcnn-kernels lut_conv" "qcnn-kernels lut_fc"
  "qcnn-kernels lut_fc_i16" "qcnn-kernels lut_int8"
  "qcnn-model lib" "qcnn-model format" "qcnn-model preprocess"
  "qcnn-results lib" "qcnn-results run_folder"
  "qcnn-baselines lib" "qcnn-baselines golden" "qcnn-baselines pipeline"
  "qcnn-quantized lib" "qcnn-quantized agreement"
  "qcnn-harness bin:qcnn" "qcnn-harness classify"
)
NEEDS_BINFMT=("qcnn-harness classify" "qcnn-harness reproduce")
declare -A WHY_NOT=(
  ["qcnn-model fuzz_readers"]="mutated-byte fuzzing of the file readers: no architecture-specific code"
  ["qcnn-model synthetic"]="generating the 244 MB synthetic model six times (~4 min emulated): no architecture-specific code"
  ["qcnn-baselines no_alloc"]="allocation counting of whole forward passes (~1 min emulated): no architecture-specific code"
  ["qcnn-baselines peers"]="Python peers: their packages are installed for x86 only"
  ["qcnn-baselines timing"]="wall-clock checks mean nothing under emulation"
  ["qcnn-harness reproduce"]="a dozen reproduce runs, minutes each emulated; one reproduce runs below"
)
default_why="no architecture-specific code (training, ONNX, charts, result files, the x86 gate): built above, tested on x86"

export QCNN_REQUIRE_ISA=$AARCH64_REQUIRED_ISA
shared=${QCNN_SHARED:-../shared}
ran=()
skipped=()

run_binary() {
  local package=$1 target=$2 exe=$3 dir=$4
  local start=$SECONDS log="$tmp/test.log"
  echo "-- $package $target"
  set +e
  (cd "$dir" && qemu-aarch64 -L / "$exe" --nocapture) > "$log" 2>&1
  local status=$?
  set -e
  cat "$log" >> "$tmp/results"
  grep -E '^(test result|SKIPPED|QCNN_REQUIRE_ISA|.*relative error)' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 80 "$log"
    echo "aarch64: FAILED: $package $target (exit $status)" >&2
    exit 1
  fi
  ran+=("$(printf '%5d s  %s %s' $((SECONDS - start)) "$package" "$target")")
}

in_list() {
  local key=$1 x; shift
  for x in "$@"; do [ "$x" = "$key" ] && return 0; done
  return 1
}

phase "tests under qemu-aarch64 -cpu $QEMU_CPU (QCNN_REQUIRE_ISA=$QCNN_REQUIRE_ISA)"
touch "$tmp/results"
while read -r kind package target exe dir; do
  [ "$kind" = test ] || continue
  key="$package $target"
  if [ "$MODE" != all ] && ! in_list "$key" "${SELECTION[@]}"; then
    skipped+=("$key: ${WHY_NOT[$key]:-$default_why}")
  elif ! $binfmt_ok && in_list "$key" "${NEEDS_BINFMT[@]}"; then
    skipped+=("$key: starts qcnn as a child, needs binfmt_misc (not available)")
  else
    run_binary "$package" "$target" "$exe" "$dir"
  fi
done < <(sort -k2,3 "$tmp/binaries")
[ -d "$shared/golden" ] || skipped+=("golden-output tests: $shared/golden not found (their SKIPPED lines are above)")
$binfmt_ok || skipped+=("qcnn's OpenBLAS restart (--blas-core best): needs binfmt_misc; ran with --blas-core env")
phase_done "tests under qemu"

# ---- the program under qemu ---------------------------------------------------------------
phase "qcnn under qemu: info, classify, reproduce"
qemu_qcnn() { qemu-aarch64 -L / "$qcnn_bin" "$@"; }
qemu_qcnn info
# One classify: the authors' model and image when present (the embedded default's 244 MB
# synthetic model takes a minute to generate emulated; the reproduce below uses it).
if [ -d "$shared/qcnn-alexnet" ]; then
  bmp=$(find "$shared/qcnn-alexnet" \( -name '*.bmp' -o -name '*.BMP' \) | sort | awk 'NR == 1')
  qemu_qcnn classify --mode qcnn --model "$shared/qcnn-alexnet" "$bmp"
else
  qemu_qcnn classify --mode qcnn
  skipped+=("classify on the authors' model: $shared/qcnn-alexnet not found (the embedded default ran)")
fi
runs=$tmp/runs
reproduce_args=(reproduce --repeats 1 --images 1 --warmup 0 --results "$runs")
$binfmt_ok || reproduce_args+=(--no-memory)
qemu_qcnn "${reproduce_args[@]}"
meta=$(ls -d "$runs"/*/meta.json)
python3 - "$meta" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
s, b = m["system"], m["blas"]
want = {
    "system.arch": s.get("arch") == "aarch64",
    "build.target": m["build"].get("target") == "aarch64-unknown-linux-gnu",
    "system.cpu_model": bool(s.get("cpu_model")),
    "system.cpu_flags (neon)": "neon" in s.get("cpu_flags", []),
    "system.caches": bool(s.get("caches")),
    "blas.core_type": bool(b.get("core_type")),
    "modes[].isa": all(mode["isa"] for mode in m["modes"]),
    "pinned_core": m.get("pinned_core") is not None,
}
print("meta.json of the emulated run:")
print(f"  arch {s['arch']}, target {m['build']['target']}, rustc {m['build']['rustc']}")
print(f"  cpu {s['cpu_model']} ({s['cpu_vendor']}), features {' '.join(s['cpu_flags'])}")
caches = ", ".join(f"L{c['level']}{ {'Data': 'd', 'Instruction': 'i'}.get(c['kind'], '')} {c['bytes'] // 1024} KiB" for c in s["caches"])
print(f"  caches of core {s['caches_core']}: {caches}")
print(f"  emulation: {s.get('emulation')}")
print(f"  openblas core {b['core_type']} ({b['version']}); switched by qcnn: {m['notes'].get('blas_core_switched_by_qcnn')}")
print(f"  modes: {', '.join(mode['mode'] + ' isa ' + mode['isa'] for mode in m['modes'])}; pinned core {m['pinned_core']}")
print(f"  notes: lookup_isa {m['notes'].get('lookup_isa')}, isa_levels_available {m['notes'].get('isa_levels_available')}")
missing = [k for k, ok in want.items() if not ok]
if missing:
    sys.exit(f"aarch64: meta.json lacks {', '.join(missing)}")
PY
phase_done "qcnn under qemu"

# ---- what ran -----------------------------------------------------------------------------
echo "== aarch64: what ran under qemu-aarch64 -cpu $QEMU_CPU"
printf '%s\n' "${ran[@]}"
awk '/^test result:/ {p += $4; f += $6; i += $8} END {printf "emulated: %d passed, %d failed, %d ignored\n", p, f, i}' "$tmp/results"
echo "== aarch64: not run under emulation"
printf '  %s\n' "${skipped[@]}"
echo "== aarch64: phase times"
printf '%s\n' "${phase_times[@]}"
