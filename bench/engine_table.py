"""Turns the C# and PyTorch bench outputs into the table printed by bench/engine.sh (best run of each measure)."""
import re
import sys

threads, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
best = {}
for path in sys.argv[4:]:
    for line in open(path):
        m = re.match(r"^(csharp|torch) (sgemm|forward|keyframe|inbetween) (?:batch|n)=(\d+) (.*)$", line.strip())
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


print(f"Diffusion engine, 64x64, {steps} DDIM steps, guidance 3 (cond + uncond in one network batch), {threads} threads")
print(f"| {'measure':<52} | {'C#':>9} | {'PyTorch':>9} | {'C#/PyTorch':>10} |")
print(f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|{'-' * 12}|")


def row(label, c, t, fmt="{:.2f}", lower_is_better=False):
    ratio = t / c if lower_is_better else c / t
    print(f"| {label:<52} | {fmt.format(c):>9} | {fmt.format(t):>9} | {ratio:>10.2f} |")


for mode in ("keyframe", "inbetween"):
    for b in sorted({1, batch}):
        row(f"{mode} frames/s, {b} frame(s) (network batch {2 * b})", get("csharp", mode, b, "fps"), get("torch", mode, b, "fps"))
rc, rt = roof("csharp"), roof("torch")
row("SGEMM roof GFLOP/s (n=2048, own SGEMM / torch.mm)", rc, rt, "{:.1f}")
for b in sorted({1, batch}):
    c, t = get("csharp", "inbetween", b, "gflops"), get("torch", "inbetween", b, "gflops")
    row(f"U-Net GFLOP/s while sampling, {b} frame(s)", c, t, "{:.1f}")
    print(f"| {'  (as % of the own SGEMM roof)':<52} | {100 * c / rc:>8.0f}% | {100 * t / rt:>8.0f}% | {'':>10} |")
row("one forward, network batch 2, ms (ratio = speed-up)", get("csharp", "forward", 2, "ms"), get("torch", "forward", 2, "ms"), "{:.1f}", True)
ratio = get("csharp", "inbetween", batch, "fps") / get("torch", "inbetween", batch, "fps")
print(f"csharp_vs_pytorch_throughput_ratio={ratio:.2f}")
