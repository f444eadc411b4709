"""Export parity reference tensors for a weights file (docs/model.md, "Files").

Writes
  models/reference/unet_forward.safetensors  one forward pass, batch 2 (row 0 keyframe, row 1 in-between)
  models/reference/ddim_sample.safetensors   DDIM + CFG sample, batch 2, steps=4, guidance=3.0

Usage: /usr/bin/python3 tools/train/export_reference.py [--weights models/pf-scene-v3.safetensors]
                                                          [--out models/reference] [--data tools/train/data]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import alpha_bar_schedule, ddim_timesteps, load_model, sample, save_safetensors  # noqa: E402

STEPS = 4
GUIDANCE = 3.0


def keyframes(data_dir, gen, n=2):
    """Two real frames (A, B) from the dataset when it is there, else smooth seeded images in [-1, 1]."""
    fp = os.path.join(data_dir or "", "frames.u8")
    if data_dir and os.path.exists(fp):
        with open(os.path.join(data_dir, "dataset.json")) as f:
            meta = json.load(f)
        F_ = int(meta.get("frames", 0)) or None
        raw = np.fromfile(fp, dtype=np.uint8)
        Fn = F_ or (raw.size // (64 * 64 * 3) // int(meta.get("clips", 1)))
        clips = raw.reshape(-1, Fn, 64, 64, 3)
        a = torch.from_numpy(clips[0, 0].astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
        b = torch.from_numpy(clips[0, min(4, Fn - 1)].astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
        return a.contiguous(), b.contiguous(), True
    lo = torch.rand(2, 3, 8, 8, generator=gen) * 2 - 1
    up = torch.nn.functional.interpolate(lo, size=(64, 64), mode="bilinear", align_corners=False)
    return up[0].contiguous(), up[1].contiguous(), False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="models/pf-scene-v3.safetensors")
    ap.add_argument("--out", default="models/reference")
    ap.add_argument("--data", default=None, help="dataset dir to take the in-between keyframes from")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    torch.set_num_threads(2)
    model = load_model(args.weights)
    cfg = model.config
    vs = cfg["vocab_sizes"]
    os.makedirs(args.out, exist_ok=True)
    gen = torch.Generator().manual_seed(args.seed)

    A1, B1, real = keyframes(args.data, gen)
    zeros = torch.zeros(3, 64, 64)
    A = torch.stack([zeros, A1])
    B = torch.stack([zeros, B1])
    # row 0: keyframe, all slots named; row 1: in-between, 'colour' slot left unnamed (0)
    slots = torch.tensor([[1, 1, min(2, vs["colour"]), 1],
                          [min(2, vs["background"]), min(3, vs["object"]), 0, min(2, vs["motion"])]],
                         dtype=torch.int64)
    s = torch.tensor([0.25, 0.6], dtype=torch.float32)
    alpha = torch.tensor([0.0, 0.5], dtype=torch.float32)
    m = torch.tensor([0.0, 1.0], dtype=torch.float32)
    ab = alpha_bar_schedule()
    # The object's planned boxes, with partly covered edge pixels as ObjectLayout.RenderBox draws them.
    layout = torch.zeros(2, 1, 64, 64)
    layout[0, 0, 38:50, 9:31] = 1.0
    layout[0, 0, 37, 9:31] = 0.4
    layout[0, 0, 38:50, 31] = 0.7
    layout[1, 0, 20:36, 30:46] = 1.0

    # ---- one forward pass
    x0 = torch.stack([torch.rand(3, 64, 64, generator=gen) * 2 - 1, A1 * 0.5 + B1 * 0.5])
    eps = torch.randn(2, 3, 64, 64, generator=gen)
    t = torch.tensor([999, 437], dtype=torch.int64)
    a_t = ab[t][:, None, None, None]
    x_t = torch.sqrt(a_t) * x0 + torch.sqrt(1 - a_t) * eps
    with torch.no_grad():
        emb = model.embed(t, slots, s, alpha, m)
        v = model(x_t, A, B, t, slots, s, alpha, m, layout)
    meta = {
        "description": "one U-Net forward; row 0 keyframe mode, row 1 in-between mode; output v",
        "weights": os.path.basename(args.weights),
        "config": json.dumps(cfg, sort_keys=True),
        "keyframes_from_dataset": str(real),
    }
    save_safetensors(os.path.join(args.out, "unet_forward.safetensors"), {
        "x_t": x_t, "A": A, "B": B, "t": t, "slots": slots, "s": s, "alpha": alpha, "m": m, "layout": layout,
        "v": v, "emb": emb, "alpha_bar": ab,
    }, meta)

    # ---- DDIM sample
    noise = torch.randn(2, 3, 64, 64, generator=gen)
    out = sample(model, noise, slots, s, alpha, m, A=A, B=B, steps=STEPS, guidance=GUIDANCE, alpha_bar=ab, layout=layout)
    meta2 = {
        "description": "DDIM eta=0 with classifier-free guidance (cond+uncond in one batch); output = final x0",
        "weights": os.path.basename(args.weights),
        "steps": str(STEPS), "guidance": str(GUIDANCE),
        "timesteps": json.dumps(ddim_timesteps(STEPS)),
        "config": json.dumps(cfg, sort_keys=True),
        "keyframes_from_dataset": str(real),
    }
    save_safetensors(os.path.join(args.out, "ddim_sample.safetensors"), {
        "noise": noise, "A": A, "B": B, "slots": slots, "s": s, "alpha": alpha, "m": m, "layout": layout,
        "steps": torch.tensor([STEPS], dtype=torch.int64),
        "guidance": torch.tensor([GUIDANCE], dtype=torch.float32),
        "x0": out,
    }, meta2)
    print(f"wrote {args.out}/unet_forward.safetensors (|v| mean {v.abs().mean():.4f}) "
          f"and ddim_sample.safetensors (x0 mean {out.mean():.4f}, std {out.std():.4f})")


if __name__ == "__main__":
    main()
