"""PyTorch half of the engine benchmark (bench/engine.sh calls it).

Prints machine-readable lines (key=value, one measurement a line):
  torch threads=N mkldnn=True
  unet config=[48,96,96] params=... flops_per_forward=... gflop_per_forward=...
  torch sgemm n=2048 gflops=...
  torch forward batch=2 ms=... gflops=...
  torch keyframe batch=1 steps=20 guidance=3.0 fps=... sec_per_frame=...
  torch inbetween batch=1 steps=20 guidance=3.0 fps=... sec_per_frame=...
  torch keyframe batch=8 ...   /  torch inbetween batch=8 ...
"batch" counts frames; classifier-free guidance doubles the network batch (1 frame = 2 rows through the U-Net).

  /usr/bin/python3 tools/train/bench_torch.py [--weights models/pf-scene-v3.safetensors] [--threads 2]
        [--batch 8] [--steps 20] [--guidance 3.0] [--repeat 2]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load_model, sample, unet_flops  # noqa: E402


def best_of(fn, repeat):
    fn()  # warm-up (oneDNN primitive creation)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="models/pf-scene-v3.safetensors")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="worker batch in frames")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sgemm-n", type=int, default=2048)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = load_model(args.weights)
    cfg = model.config
    print(f"torch threads={torch.get_num_threads()} mkldnn={torch.backends.mkldnn.is_available()} "
          f"version={torch.__version__}", flush=True)
    fl = unet_flops(cfg)
    params = sum(p.numel() for p in model.parameters())
    print(f"unet config={json.dumps(cfg['channels'], separators=(',', ':'))} params={params} "
          f"flops_per_forward={fl} gflop_per_forward={fl / 1e9:.4f}", flush=True)

    n = args.sgemm_n
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    sec = best_of(lambda: torch.mm(a, b), max(3, args.repeat))
    print(f"torch sgemm n={n} gflops={2 * n ** 3 / sec / 1e9:.1f}", flush=True)

    def inputs(nb, inbetween):
        x = torch.randn(nb, 3, 64, 64)
        A = torch.rand(nb, 3, 64, 64) * 2 - 1 if inbetween else torch.zeros(nb, 3, 64, 64)
        B = torch.rand(nb, 3, 64, 64) * 2 - 1 if inbetween else torch.zeros(nb, 3, 64, 64)
        slots = torch.ones(nb, 4, dtype=torch.long)
        s = torch.full((nb,), 0.5)
        al = torch.full((nb,), 0.5 if inbetween else 0.0)
        m = torch.full((nb,), 1.0 if inbetween else 0.0)
        return x, A, B, slots, s, al, m

    x, A, B, slots, s, al, m = inputs(2, False)
    t = torch.full((2,), 500, dtype=torch.long)
    with torch.no_grad():
        sec = best_of(lambda: model(x, A, B, t, slots, s, al, m), max(5, args.repeat))
    print(f"torch forward batch=2 ms={sec * 1000:.2f} gflops={2 * fl / sec / 1e9:.1f}", flush=True)

    for nb in sorted({1, args.batch}):
        for mode in ("keyframe", "inbetween"):
            x, A, B, slots, s, al, m = inputs(nb, mode == "inbetween")
            sec = best_of(lambda: sample(model, x, slots, s, al, m, A=A, B=B, steps=args.steps,
                                         guidance=args.guidance), args.repeat)
            print(f"torch {mode} batch={nb} steps={args.steps} guidance={args.guidance} "
                  f"fps={nb / sec:.3f} sec_per_frame={sec / nb:.4f} "
                  f"gflops={2 * nb * args.steps * fl / sec / 1e9:.1f}", flush=True)


if __name__ == "__main__":
    main()
