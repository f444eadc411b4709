#!/usr/bin/env bash
# Engine benchmark: the C# diffusion engine against the PyTorch reference model, same weights, same thread count.
# Builds Release, runs both, prints a table; the last line is csharp_vs_pytorch_throughput_ratio=X
# (C# frames/s over PyTorch frames/s for in-between frames at the worker batch, 20 steps with guidance).
# Usage: bench/engine.sh [threads] ; env STEPS (20), BATCH (8, the worker batch), REPS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${1:-${THREADS:-$(nproc)}}"
STEPS="${STEPS:-20}"
BATCH="${BATCH:-8}"
REPS="${REPS:-3}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

dotnet build -c Release bench/ProgrammableFilm.Bench.Engine -nologo -v q >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }

TORCH_BENCH=tools/train/bench_torch.py
[ -f "$TORCH_BENCH" ] || TORCH_BENCH=bench/torch_engine_bench.py

# Alternate the engines (C#, torch, C#, torch) and keep each one's best run: the machine may be shared.
for round in 1 2; do
  dotnet bench/ProgrammableFilm.Bench.Engine/bin/Release/net10.0/ProgrammableFilm.Bench.Engine.dll \
    --threads "$THREADS" --steps "$STEPS" --batch "$BATCH" --reps "$REPS" >"$OUT/csharp.$round.txt"
  OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS" /usr/bin/python3 "$TORCH_BENCH" \
    --threads "$THREADS" --steps "$STEPS" --batch "$BATCH" --reps "$REPS" >"$OUT/torch.$round.txt"
done

/usr/bin/python3 bench/engine_table.py "$THREADS" "$STEPS" "$BATCH" "$OUT"/csharp.*.txt "$OUT"/torch.*.txt
