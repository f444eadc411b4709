#!/usr/bin/env bash
# Engine benchmark: the C# diffusion engine against the PyTorch reference model (tools/train/bench_torch.py), same
# weights, same thread count, 64x64, DDIM with classifier-free guidance. Builds Release, runs both engines twice
# (alternating, best run of each measure is kept: the machine may be shared), prints a table. Last line:
#   csharp_vs_pytorch_throughput_ratio=X   (C# frames/s over PyTorch frames/s, in-between frames at the worker batch)
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

dotnet build -c Release bench/ProgrammableFilm.Bench.Engine -nologo -v q >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }

for round in $(seq 1 "$ROUNDS"); do
  dotnet bench/ProgrammableFilm.Bench.Engine/bin/Release/net10.0/ProgrammableFilm.Bench.Engine.dll \
    --threads "$THREADS" --steps "$STEPS" --batch "$BATCH" --reps "$REPS" --model "$WEIGHTS" | tee "$OUT/csharp.$round.txt" >&2
  OMP_NUM_THREADS="$THREADS" /usr/bin/python3 tools/train/bench_torch.py --weights "$WEIGHTS" \
    --threads "$THREADS" --steps "$STEPS" --batch "$BATCH" --repeat "$REPS" | tee "$OUT/torch.$round.txt" >&2
done

/usr/bin/python3 bench/engine_table.py "$THREADS" "$STEPS" "$BATCH" "$OUT"/csharp.*.txt "$OUT"/torch.*.txt
