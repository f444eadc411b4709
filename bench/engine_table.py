"""Turns the C#, PyTorch and TorchSharp bench outputs into the table printed by bench/engine.sh (best run of each measure)."""
import re
import sys

threads, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
best = {}
for path in sys.argv[4:]:
    for line in open(path):
        m = re.match(r"^(csharp|torch|torchsharp) (sgemm|forward|keyframe|inbetween) (?:batch|n)=(\d+) (.*)$", line.strip())
        if not m:
            continue
        eng, kind, size, rest = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        vals = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
        for metric in ("fps", "gflops"):
            if metric in vals:
                key = (eng, kind, size, metric)
                best[key] = max(best.get(key, 0.0), float(vals[metric]))
        if "ms" in vals:
            key = (eng, kind, size, "ms")
            best[key] = min(best.get(key, float("inf")), float(vals["ms"]))


def get(eng, kind, size, metric):
    return best.get((eng, kind, size, metric), float("nan"))


def roof(eng):
    vals = [v for (e, k, _, m), v in best.items() if e == eng and k == "sgemm" and m == "gflops"]
    return max(vals) if vals else float("nan")


def ratio(a, b, lower_is_better=False):
    if b != b or a != a or a == 0 or b == 0:
        return float("nan")
    return b / a if lower_is_better else a / b


ENGINES = ("csharp", "torch", "torchsharp")
print(f"Diffusion engine, 64x64, {steps} DDIM steps, guidance 3 (cond + uncond in one network batch), {threads} threads, CPU")
print(f"| {'measure':<52} | {'C#':>9} | {'PyTorch':>9} | {'TorchSharp':>10} | {'C#/PyTorch':>10} | {'C#/TorchSharp':>13} |")
print(f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|{'-' * 12}|{'-' * 12}|{'-' * 15}|")


def row(label, vals, fmt="{:.2f}", lower_is_better=False):
    c, t, s = vals
    print(f"| {label:<52} | {fmt.format(c):>9} | {fmt.format(t):>9} | {fmt.format(s):>10} | "
          f"{ratio(c, t, lower_is_better):>10.2f} | {ratio(c, s, lower_is_better):>13.2f} |")


for mode in ("keyframe", "inbetween"):
    for b in sorted({1, batch}):
        row(f"{mode} frames/s, {b} frame(s) (network batch {2 * b})", [get(e, mode, b, "fps") for e in ENGINES])
roofs = [roof(e) for e in ENGINES]
row("SGEMM roof GFLOP/s (n=2048, own SGEMM / torch.mm)", roofs, "{:.1f}")
for b in sorted({1, batch}):
    g = [get(e, "inbetween", b, "gflops") for e in ENGINES]
    row(f"U-Net GFLOP/s while sampling, {b} frame(s)", g, "{:.1f}")
    pct = [f"{100 * x / r:.0f}%" if r == r and x == x else "nan" for x, r in zip(g, roofs)]
    print(f"| {'  (as % of the own SGEMM roof)':<52} | {pct[0]:>9} | {pct[1]:>9} | {pct[2]:>10} | {'':>10} | {'':>13} |")
row("one forward, network batch 2, ms (ratio = speed-up)", [get(e, "forward", 2, "ms") for e in ENGINES], "{:.1f}", True)
fps = [get(e, "inbetween", batch, "fps") for e in ENGINES]
print(f"csharp_vs_torchsharp_throughput_ratio={ratio(fps[0], fps[2]):.2f}")
print(f"csharp_vs_pytorch_throughput_ratio={ratio(fps[0], fps[1]):.2f}")
