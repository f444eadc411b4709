"""Turns the C# and PyTorch bench outputs into the table printed by bench/engine.sh (best run of each measure)."""
import re, sys
threads, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
best = {}
lines = [l for path in sys.argv[4:] for l in open(path)]
for line in lines:
    m = re.match(r"^(csharp|torch) (\w+) (?:batch|n)=(\d+) (.*)$", line.strip())
    if not m:
        continue
    eng, kind, size, rest = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    vals = dict(kv.split("=") for kv in rest.split())
    metric = "fps" if "fps" in vals else "gflops"
    key = (eng, kind, size)
    best[key] = max(best.get(key, 0.0), float(vals[metric]))

def get(eng, kind, size):
    return best.get((eng, kind, size), float("nan"))

print(f"# Diffusion engine benchmark: 64x64, {steps} DDIM steps, guidance 3 (cond+uncond batched), {threads} threads")
print(f"| {'measure':<48} | {'C#':>9} | {'PyTorch':>9} | {'C#/PyTorch':>10} |")
print(f"|{'-'*50}|{'-'*11}|{'-'*11}|{'-'*12}|")
def row(label, c, t, fmt="{:.2f}"):
    print(f"| {label:<48} | {fmt.format(c):>9} | {fmt.format(t):>9} | {c / t:>10.2f} |")
for mode in ("keyframe", "inbetween"):
    for b in (1, batch):
        row(f"{mode} frames/s, batch {b} (network batch {2*b})", get("csharp", mode, b), get("torch", mode, b))
roof_c = max(get("csharp", "sgemm", 512), get("csharp", "sgemm", 1024))
roof_t = max(get("torch", "sgemm", 512), get("torch", "sgemm", 1024))
row("SGEMM roof GFLOP/s (best of n=512,1024)", roof_c, roof_t, "{:.1f}")
for nb in (2, 2 * batch):
    c, t = get("csharp", "unet", nb), get("torch", "unet", nb)
    row(f"U-Net GFLOP/s, network batch {nb}", c, t, "{:.1f}")
    print(f"| {'  ... as % of own SGEMM roof':<48} | {100*c/roof_c:>8.0f}% | {100*t/roof_t:>8.0f}% | {'':>10} |")
ratio = get("csharp", "inbetween", batch) / get("torch", "inbetween", batch)
print(f"csharp_vs_pytorch_throughput_ratio={ratio:.2f}")
