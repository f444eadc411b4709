#!/usr/bin/env bash
# Engine benchmark: the C# diffusion engine against the PyTorch reference model (tools/train/bench_torch.py) and the
# TorchSharp engine (src/ProgrammableFilm.Engine.Torch, TorchSharp-cpu: LibTorch 2.10 with MKL and oneDNN), same
# weights, same thread count, 64x64, DDIM with classifier-free guidance. Builds Release, runs the three in turn ROUNDS
# times (best run of each measure is kept: the machine may be shared), prints a table. Installs python3-torch and
# libopenblas0-pthread if they are missing (as root). Last two lines (frames/s ratios, in-between frames at the worker
# batch):
#   csharp_vs_torchsharp_throughput_ratio=Y   (C# over TorchSharp on the CPU)
#   csharp_vs_pytorch_throughput_ratio=X      (C# over PyTorch)
# The CUDA path of the TorchSharp engine is not measured here (no GPU on these machines).
# Usage: bench/engine.sh [threads]   env: STEPS (20), BATCH (8 = worker batch in frames), REPS (2), ROUNDS (2),
#                                         WEIGHTS (models/pf-scene-v3.safetensors)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${1:-${THREADS:-$(nproc)}}"
STEPS="${STEPS:-20}"
BATCH="${BATCH:-8}"
REPS="${REPS:-2}"
ROUNDS="${ROUNDS:-2}"
WEIGHTS="${WEIGHTS:-models/pf-scene-v3.safetensors}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

# The baseline: Debian's PyTorch on OpenBLAS's threaded build (without libopenblas0-pthread, numpy and torch.mm fall
# back to the reference BLAS).
need=()
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || need+=(python3-torch python3-numpy)
[[ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]] || need+=(libopenblas0-pthread)
if ((${#need[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "missing packages: sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "installing ${need[*]} with apt-get..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# Debian's OpenBLAS 0.3.21 does not know newer Xeons (Sapphire Rapids) and falls back to its generic "Prescott"
# kernels, a quarter of the machine's SGEMM speed; name the newest kernel family the CPU can run so PyTorch gets its
# best BLAS. An OPENBLAS_CORETYPE from the caller wins.
if [[ -z ${OPENBLAS_CORETYPE:-} ]] &&
  OPENBLAS_VERBOSE=2 /usr/bin/python3 -c 'import torch; torch.mm(torch.ones(64, 64), torch.ones(64, 64))' 2>&1 | grep -q 'Core: Prescott'; then
  if grep -qw avx512f /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=Haswell
  fi
fi
echo "OpenBLAS core type for PyTorch: ${OPENBLAS_CORETYPE:-detected by OpenBLAS}" >&2

dotnet build -c Release bench/ProgrammableFilm.Bench.Engine -nologo -v q >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }

for round in $(seq 1 "$ROUNDS"); do
  dotnet bench/ProgrammableFilm.Bench.Engine/bin/Release/net10.0/ProgrammableFilm.Bench.Engine.dll \
    --threads "$THREADS" --steps "$STEPS" --batch "$BATCH" --reps "$REPS" --model "$WEIGHTS" | tee "$OUT/csharp.$round.txt" >&2
  OMP_NUM_THREADS="$THREADS" /usr/bin/python3 tools/train/bench_torch.py --weights "$WEIGHTS" \
    --threads "$THREADS" --steps "$STEPS" --batch "$BATCH" --repeat "$REPS" | tee "$OUT/torch.$round.txt" >&2
  OMP_NUM_THREADS="$THREADS" dotnet bench/ProgrammableFilm.Bench.Engine/bin/Release/net10.0/ProgrammableFilm.Bench.Engine.dll \
    --engine torchsharp --threads "$THREADS" --steps "$STEPS" --batch "$BATCH" --reps "$REPS" --model "$WEIGHTS" | tee "$OUT/torchsharp.$round.txt" >&2
done

/usr/bin/python3 bench/engine_table.py "$THREADS" "$STEPS" "$BATCH" "$OUT"/csharp.*.txt "$OUT"/torch.*.txt "$OUT"/torchsharp.*.txt
