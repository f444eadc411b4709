"""Contact sheet of PyTorch DDIM samples (20 steps, guidance 3) for a few prompts -> PNG.

Each row is one prompt (a shot of F frames): keyframes at frames 0, K, 2K, .. F-1 (keyframe mode, own noise per
frame), and one in-between frame in each gap (in-between mode from the two generated keyframes, noise correlated
with the left keyframe's: sqrt(rho) shared + sqrt(1-rho) own, rho 0.9), in frame order. Frame number under nothing:
the leftmost column is frame 0; in-between columns are marked by a grey bar above them. Each row's object boxes (the
model's layout input) are those of the first dataset clip with the row's labels: the C# planner drew them.

  /usr/bin/python3 tools/train/samples.py [--weights models/pf-scene-v3.safetensors] [--card models/pf-scene-v3.json]
        [--data tools/train/data] [--out docs/images/diffusion-samples.png] [--frames 16]
"""
import argparse
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import SLOTS, load_model, sample  # noqa: E402

PROMPTS = [
    ("desert", "car", "red", "left-to-right"),
    ("ocean", "boat", "white", "right-to-left"),
    ("sunset-sky", "bird", "yellow", "rising"),
    ("snow", "ball", "blue", "falling"),
    ("night-city", "car", "green", "approaching"),
    ("forest", "ball", "purple", "static"),
    ("ocean", "bird", "black", "left-to-right"),
    ("desert", "ball", "orange", "right-to-left"),
]


def write_png(path, img):
    """img: uint8 [H, W, 3]."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(png)


def to_u8(x):
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def noise_for(seed, frame):
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed * 100003 + frame))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="models/pf-scene-v3.safetensors")
    ap.add_argument("--card", default="models/pf-scene-v3.json")
    ap.add_argument("--data", default="tools/train/data")
    ap.add_argument("--out", default="docs/images/diffusion-samples.png")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--keys", type=int, default=4, help="keyframes per row")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--rows", type=int, default=len(PROMPTS))
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = load_model(args.weights)
    with open(args.card) as f:
        vocab = json.load(f)["vocabulary"]
    F_ = args.frames
    labels = np.fromfile(os.path.join(args.data, "labels.i32"), dtype="<i4").reshape(-1, 4)
    layouts = np.fromfile(os.path.join(args.data, "layout.u8"), dtype=np.uint8).reshape(len(labels), F_, 64, 64)
    keys = [round(i * (F_ - 1) / (args.keys - 1)) for i in range(args.keys)]
    rho = 0.9
    rows = []
    for r, prompt in enumerate(PROMPTS[:args.rows]):
        idx = [vocab[s].index(p) + 1 if p in vocab[s] else 0 for s, p in zip(SLOTS, prompt)]
        slots = torch.tensor([idx], dtype=torch.long)
        seed = args.seed + r
        clip = int(np.flatnonzero((labels == np.array(idx)).all(axis=1))[0])
        plan = torch.from_numpy(layouts[clip]).float().div(255.0)[:, None]  # [F, 1, 64, 64]
        # keyframes, one batch
        n = len(keys)
        noise = torch.cat([noise_for(seed, k) for k in keys])
        s = torch.tensor([k / (F_ - 1) for k in keys], dtype=torch.float32)
        kf = sample(model, noise, slots.repeat(n, 1), s, torch.zeros(n), torch.zeros(n),
                    steps=args.steps, guidance=args.guidance, layout=plan[keys])
        # one in-between in the middle of each gap
        frames = {k: kf[i] for i, k in enumerate(keys)}
        mids, A, B, al, nz = [], [], [], [], []
        for i in range(n - 1):
            a, b = keys[i], keys[i + 1]
            f = (a + b) // 2
            if f == a:
                continue
            mids.append(f); A.append(kf[i]); B.append(kf[i + 1]); al.append((f - a) / (b - a))
            nz.append(rho ** 0.5 * noise_for(seed, a) + (1 - rho) ** 0.5 * noise_for(seed, f))
        if mids:
            k2 = len(mids)
            ib = sample(model, torch.cat(nz), slots.repeat(k2, 1), torch.tensor([f / (F_ - 1) for f in mids]),
                        torch.tensor(al, dtype=torch.float32), torch.ones(k2),
                        A=torch.stack(A), B=torch.stack(B), steps=args.steps, guidance=args.guidance,
                        layout=plan[mids])
            for i, f in enumerate(mids):
                frames[f] = ib[i]
        order = sorted(frames)
        rows.append([(f, f not in keys, to_u8(frames[f])) for f in order])
        print("row", r, prompt, "slots", idx, "frames", order, flush=True)

    sc, gap, bar = args.scale, 4, 4
    ncol = max(len(r) for r in rows)
    cell = 64 * sc
    H = len(rows) * (cell + gap + bar) + gap
    W = ncol * (cell + gap) + gap
    sheet = np.full((H, W, 3), 255, np.uint8)
    for ri, row in enumerate(rows):
        y = gap + ri * (cell + gap + bar)
        for ci, (f, is_ib, im) in enumerate(row):
            x = gap + ci * (cell + gap)
            if is_ib:
                sheet[y:y + bar - 1, x:x + cell] = 150
            sheet[y + bar:y + bar + cell, x:x + cell] = np.kron(im, np.ones((sc, sc, 1), np.uint8))
    write_png(args.out, sheet)
    print("wrote", args.out, sheet.shape)


if __name__ == "__main__":
    main()
