#!/usr/bin/env bash
# One command: generate the ClipGen dataset, train pf-scene on the CPU, export weights, model card,
# parity references and the sample contact sheet. Installs nothing.
#   tools/train/train.sh            (from the repository root; ~60 min on a 2-core machine)
# Environment overrides: STEPS, TIME_LIMIT (seconds of training), SEED, CLIPS_PER_SCENE, FRAMES, CHANNELS, BATCH.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
STEPS=${STEPS:-10000}
TIME_LIMIT=${TIME_LIMIT:-2400}
SEED=${SEED:-1}
CLIPS_PER_SCENE=${CLIPS_PER_SCENE:-2}
FRAMES=${FRAMES:-16}
CHANNELS=${CHANNELS:-32,64,64}
BATCH=${BATCH:-16}
LR=${LR:-8e-4}
DATA=tools/train/data
export OMP_NUM_THREADS=2

if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  echo "python3-torch is missing: apt-get install -y python3-torch libopenblas0-pthread" >&2
  exit 1
fi
"$PY" -c 'import torch; assert torch.backends.mkldnn.is_available(), "torch without oneDNN"'

mkdir -p "$DATA"
RECIPE="dotnet run -c Release --project tools/ProgrammableFilm.ClipGen -- --out $DATA --clips-per-scene $CLIPS_PER_SCENE --frames $FRAMES --size 64 --seed 1"
t0=$(date +%s.%N)
echo "== data: $RECIPE"
$RECIPE
t1=$(date +%s.%N)
DATA_SECONDS=$(echo "$t1 - $t0" | bc)
echo "== data generated in ${DATA_SECONDS}s"

echo "== training (steps $STEPS, time limit ${TIME_LIMIT}s, seed $SEED)"
"$PY" tools/train/train.py --data "$DATA" --steps "$STEPS" --time-limit "$TIME_LIMIT" --seed "$SEED" \
  --channels "$CHANNELS" --batch "$BATCH" --lr "$LR" --warmup 100 \
  --out models/pf-scene-v1.safetensors --card models/pf-scene-v1.json \
  --recipe "$RECIPE" --data-seconds "$DATA_SECONDS"

echo "== references"
"$PY" tools/train/export_reference.py --weights models/pf-scene-v1.safetensors --out models/reference --data "$DATA"
echo "== samples"
"$PY" tools/train/samples.py --weights models/pf-scene-v1.safetensors --card models/pf-scene-v1.json \
  --out docs/images/diffusion-samples.png --frames "$FRAMES"
echo "== done in $(echo "$(date +%s.%N) - $t0" | bc)s"
