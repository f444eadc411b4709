"""PyTorch half of the engine benchmark (fallback used by bench/engine.sh while tools/train/bench_torch.py is absent).

Prints the same line format as the C# bench:
  torch sgemm n=N gflops=G
  torch unet batch=B ms=M gflops=G
  torch keyframe batch=F fps=X steps=S      (F frames; guidance doubles the network batch)
Usage: /usr/bin/python3 bench/torch_engine_bench.py --threads 2 [--steps 20] [--batch 8] [--reps 3]
"""
import argparse
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
from model import load_model, sample, unet_flops  # noqa: E402


def timed(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--weights", default=os.path.join(ROOT, "models", "pf-scene-v1.safetensors"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# torch {torch.__version__} threads={torch.get_num_threads()} blas={torch.__config__.show().count('OpenBLAS') > 0 and 'openblas' or 'other'}")

    for n in (512, 1024):
        a, b = torch.rand(n, n), torch.rand(n, n)
        best = min(timed(lambda: a @ b, 1) for _ in range(args.reps))
        print(f"torch sgemm n={n} gflops={2 * n ** 3 / best / 1e9:.1f}")

    model = load_model(args.weights)
    fl = unet_flops(model.config)
    print(f"# torch flops_per_image={fl}")
    with torch.no_grad():
        for nb in (2, 2 * args.batch):
            x = torch.randn(nb, 3, 64, 64)
            z = torch.zeros_like(x)
            t = torch.full((nb,), 500, dtype=torch.long)
            sl = torch.ones(nb, 4, dtype=torch.long)
            s = torch.full((nb,), 0.5)
            sec = timed(lambda: model(x, z, z, t, sl, s, s * 0, s * 0), args.reps * 5)
            print(f"torch unet batch={nb} ms={sec * 1000:.2f} gflops={fl * nb / sec / 1e9:.1f}")

    for mode in ("keyframe", "inbetween"):
        for f in (1, args.batch):
            noise = torch.randn(f, 3, 64, 64)
            slots = torch.ones(f, 4, dtype=torch.long)
            s = torch.arange(f, dtype=torch.float32) / 10
            if mode == "inbetween":
                A, B = torch.randn(f, 3, 64, 64).clamp(-1, 1), torch.randn(f, 3, 64, 64).clamp(-1, 1)
                alpha = (torch.arange(f, dtype=torch.float32) + 1) / (f + 1)
                m = torch.ones(f)
            else:
                A = B = None
                alpha = torch.zeros(f)
                m = torch.zeros(f)
            sec = timed(lambda: sample(model, noise, slots, s, alpha, m, A=A, B=B, steps=args.steps, guidance=3.0), args.reps)
            print(f"torch {mode} batch={f} fps={f / sec:.3f} steps={args.steps}")


if __name__ == "__main__":
    main()
